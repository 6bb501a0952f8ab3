/*
 * The notice address (issue 17): twofa_set_contact_email needs a step-up token once the user has
 * a method and tells the previous and the new address; twofa_contact_email_begin /
 * twofa_contact_email_confirm prove a new address with a code; addresses with invisible or
 * bidirectional characters are refused everywhere.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many messages went to `to`. */
static size_t mails_to(mailbox *m, const char *to) {
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->msgs[i].to, to) == 0) n++;
    return n;
}

/* The user's contact_email as security_status reports it ("null" when unset; malloc'd). */
static char *contact_of(twofa_engine *eng, const char *user) {
    char *json = SENT;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_security_status(eng, user, &json, &err), &err)) return NULL;
    char *address = json_str(json, "contact_email");
    jfree(json);
    return address ? address : strdup("null");
}

#define CHECK_CONTACT(eng, user, want)                                                             \
    do {                                                                                           \
        char *contact_ = contact_of((eng), (user));                                                \
        CHECK_STR(contact_, (want));                                                               \
        free(contact_);                                                                            \
    } while (0)

/* A user with a TOTP method cannot change the notice address without a valid step-up token of
 * their own, and the refusal changes nothing; with one, the old and the new address are told. */
static void test_set_contact_email_needs_step_up(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    /* Without a method, NULL is enough. */
    EXPECT_OK(twofa_set_contact_email(eng, "ann", "old@example.com", NULL, &json, &err), &err);
    jfree(json);
    char *token = import_and_login(e, eng, "ann", SECRET_A);
    CHECK(token != NULL);
    char *other = import_and_login(e, eng, "bob", SECRET_A);
    CHECK(other != NULL);

    mail_clear(&e->mail);
    events_clear(&e->events);
    snapshot *before = store_snapshot(&e->store);
    json = SENT;
    EXPECT_ERR(twofa_set_contact_email(eng, "ann", "new@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_set_contact_email(eng, "ann", "new@example.com", "not-a-token", &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    /* Another user's token is no token for ann. */
    EXPECT_ERR(twofa_set_contact_email(eng, "ann", "new@example.com", other, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    free(other);
    /* The same through the request JSON. */
    EXPECT_ERR(
        twofa_engine_run(eng, "ann", "{\"op\":\"set_contact_email\",\"address\":\"new@example.com\"}", &json, &err),
        TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    CHECK_INT(mails_to(&e->mail, "new@example.com"), 0);
    CHECK_INT(mails_to(&e->mail, "old@example.com"), 0);
    CHECK(!events_contain(&e->events, "contact_email_changed"));
    snapshot *after = store_snapshot(&e->store);
    CHECK(snapshot_equal(before, after));
    snapshot_free(before);
    snapshot_free(after);
    CHECK_CONTACT(eng, "ann", "old@example.com");

    /* With the token: both addresses are told. */
    mail_clear(&e->mail);
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(eng, "ann", "new@example.com", token, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":2,\"failed\":[]}");
    jfree(json);
    CHECK_INT(mail_count(&e->mail), 2);
    CHECK_INT(mails_to(&e->mail, "old@example.com"), 1);
    CHECK_INT(mails_to(&e->mail, "new@example.com"), 1);
    for (size_t i = 0; i < e->mail.n; i++) CHECK_CONTAINS(e->mail.msgs[i].text, "new@example.com");
    CHECK(events_contain(&e->events, "\"kind\":\"contact_email_changed\""));
    CHECK_CONTACT(eng, "ann", "new@example.com");
    free(token);
    twofa_engine_free(eng);
    env_free(e);
}

/* A user whose last method was removed has none again (and no recovery codes: they go with the
 * last method): NULL is enough once more, never a dead end. */
static void test_set_contact_email_after_last_method_removed(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    char *token = import_and_login(e, eng, "cleo", SECRET_A);
    CHECK(token != NULL);
    EXPECT_OK(twofa_recovery_codes_generate(eng, "cleo", token, &json, &err), &err);
    jfree(json);
    json = SENT;
    EXPECT_ERR(twofa_set_contact_email(eng, "cleo", "cleo@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_contact_email_begin(eng, "cleo", "cleo@example.com", NULL, &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_remove_method(eng, "cleo", "totp-1", token, &json, &err), &err);
    jfree(json);
    free(token);
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(eng, "cleo", "cleo@example.com", NULL, &json, &err), &err);
    jfree(json);
    CHECK_CONTACT(eng, "cleo", "cleo@example.com");
    twofa_engine_free(eng);
    env_free(e);
}

/* contact_email_begin mails a code to the new address only; confirm with it makes the address
 * the notice address and tells both; a wrong code changes nothing but is refused. */
static void test_contact_email_begin_confirm(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_set_contact_email(eng, "dora", "dora@example.com", NULL, &json, &err), &err);
    jfree(json);
    char *token = import_and_login(e, eng, "dora", SECRET_A);
    CHECK(token != NULL);
    mail_clear(&e->mail);

    /* Begin: step-up needed, then a code to the new address. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(eng, "dora", "dora2@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&e->mail), 0);
    EXPECT_OK(twofa_contact_email_begin(eng, "dora", "dora2@example.com", token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"code_sent\"");
    CHECK_CONTAINS(json, "\"sent_to\":[\"dora2@example.com\"]");
    uint64_t expires = 0, resend = 0;
    CHECK(json_u64(json, "expires_at", &expires) && expires == T0 + 600);
    CHECK(json_u64(json, "resend_after", &resend) && resend == T0 + 60);
    jfree(json);
    CHECK_INT(mail_count(&e->mail), 1);
    CHECK_INT(mails_to(&e->mail, "dora2@example.com"), 1);
    char code[16];
    CHECK(mail_last_code(&e->mail, "dora2@example.com", code));
    /* Nothing changed yet; a budget entry for the address exists (a keyed hash, not the address). */
    CHECK_CONTACT(eng, "dora", "dora@example.com");
    CHECK_INT(store_count_prefix(&e->store, "email-address/"), 1);

    /* Another code within the cooldown: rate_limited. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(eng, "dora", "dora3@example.com", token, &json, &err), TWOFA_RATE_LIMITED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&e->mail), 1);

    /* A wrong code: invalid_code, the address stays. */
    char bad[16];
    snprintf(bad, sizeof bad, "%06d", (atoi(code) + 1) % 1000000);
    EXPECT_ERR(twofa_contact_email_confirm(eng, "dora", bad, token, &json, &err), TWOFA_INVALID_CODE, &err);
    EXPECT_ERR(twofa_contact_email_confirm(eng, "dora", "12x456", token, &json, &err), TWOFA_INVALID_INPUT, &err);
    /* The right code without the token: step_up_required. */
    EXPECT_ERR(twofa_contact_email_confirm(eng, "dora", code, NULL, &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    CHECK_CONTACT(eng, "dora", "dora@example.com");
    CHECK_INT(mail_count(&e->mail), 1);

    /* The right code with the token: done, the previous and the new address are told. */
    events_clear(&e->events);
    EXPECT_OK(twofa_contact_email_confirm(eng, "dora", code, token, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":2,\"failed\":[]}");
    jfree(json);
    CHECK_INT(mail_count(&e->mail), 3);
    CHECK_INT(mails_to(&e->mail, "dora@example.com"), 1);
    CHECK_INT(mails_to(&e->mail, "dora2@example.com"), 2);
    CHECK(events_contain(&e->events, "\"kind\":\"contact_email_changed\""));
    CHECK_CONTACT(eng, "dora", "dora2@example.com");
    /* The code is used up. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_confirm(eng, "dora", code, token, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);

    /* Without a method, NULL tokens do, also through the request JSON. */
    mail_clear(&e->mail);
    json = SENT;
    EXPECT_OK(twofa_engine_run(eng, "eve", "{\"op\":\"contact_email_begin\",\"address\":\"eve@example.com\"}", &json,
                               &err),
              &err);
    CHECK_CONTAINS(json, "\"sent_to\":[\"eve@example.com\"]");
    jfree(json);
    CHECK(mail_last_code(&e->mail, "eve@example.com", code));
    char request[128];
    snprintf(request, sizeof request, "{\"op\":\"contact_email_confirm\",\"code\":\"%s\",\"step_up\":null}", code);
    json = SENT;
    EXPECT_OK(twofa_engine_run(eng, "eve", request, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":0,\"failed\":[]}");
    jfree(json);
    CHECK_CONTACT(eng, "eve", "eve@example.com");
    /* Confirm without any begin: not_found. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_confirm(eng, "fay", "123456", NULL, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);
    free(token);
    twofa_engine_free(eng);
    env_free(e);
}

/* A code that reached no one: TWOFA_MAIL (callback send_mail), nothing pending. */
static void test_contact_email_begin_mail_failure(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    e->mail.fail_at = -1;
    EXPECT_ERR_CB(twofa_contact_email_begin(eng, "gil", "gil@example.com", NULL, &json, &err), TWOFA_MAIL, &err,
                  "send_mail");
    CHECK(json == SENT);
    e->mail.fail_at = 0;
    /* The failed code lifted the cooldown: a new one goes out at once. */
    EXPECT_OK(twofa_contact_email_begin(eng, "gil", "gil@example.com", NULL, &json, &err), &err);
    jfree(json);
    CHECK_CONTACT(eng, "gil", "null");
    twofa_engine_free(eng);
    env_free(e);
}

/* Codes to one address are limited across users (email_code.address_limit). */
static void test_contact_email_address_budget(void) {
    env *e = env_new(T0);
    twofa_engine *eng =
        env_engine(e, "{" CONFIG_BODY ",\"email_code\":{\"address_limit\":2,\"address_window_secs\":3600}}");
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_contact_email_begin(eng, "u1", "target@example.com", NULL, &json, &err), &err);
    jfree(json);
    EXPECT_OK(twofa_email_enroll_begin(eng, "u2", "TARGET@example.com", NULL, &json, &err), &err);
    jfree(json);
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(eng, "u3", "target@example.com", NULL, &json, &err), TWOFA_RATE_LIMITED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&e->mail), 2);
    /* Another address is not affected; after the window the address may receive again. */
    EXPECT_OK(twofa_contact_email_begin(eng, "u3", "other@example.com", NULL, &json, &err), &err);
    jfree(json);
    env_set_now(e, T0 + 3601);
    EXPECT_OK(twofa_contact_email_begin(eng, "u4", "target@example.com", NULL, &json, &err), &err);
    jfree(json);
    twofa_engine_free(eng);
    env_free(e);
}

/* Addresses with Unicode format characters (U+202E, U+200B, U+FEFF) or line/paragraph separators
 * are invalid input for every operation that takes one: nothing stored, nothing mailed. */
static void test_invisible_characters_in_addresses_refused(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    static const char *const bad[] = {
        "ev\xe2\x80\xaeil@example.com",   /* U+202E RIGHT-TO-LEFT OVERRIDE */
        "\xe2\x80\xae" "moc.elpmaxe@a",   /* U+202E first */
        "a@exa\xe2\x80\x8bmple.com",      /* U+200B ZERO WIDTH SPACE */
        "\xef\xbb\xbf" "a@example.com",   /* U+FEFF BYTE ORDER MARK */
        "a\xe2\x80\xa8" "b@example.com",  /* U+2028 LINE SEPARATOR */
        "a@example.com\xe2\x80\xa9",      /* U+2029 PARAGRAPH SEPARATOR */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        twofa_status st = twofa_set_contact_email(eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "set_contact_email #%zu: %d", i, st);
        CHECK_CONTAINS(err ? err->message : NULL, "email address");
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        st = twofa_contact_email_begin(eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "contact_email_begin #%zu: %d", i, st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        st = twofa_email_enroll_begin(eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "email_enroll_begin #%zu: %d", i, st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    }
    /* The U+202E address as request JSON (escaped and raw). */
    EXPECT_ERR(twofa_engine_run(eng, "hal", "{\"op\":\"set_contact_email\",\"address\":\"ev\\u202eil@example.com\"}",
                                &json, &err),
               TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_run(eng, "hal",
                                "{\"op\":\"contact_email_begin\",\"address\":\"ev\xe2\x80\xaeil@example.com\"}", &json,
                                &err),
               TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    CHECK_INT(store_count(&e->store), 0);
    CHECK_INT(mail_count(&e->mail), 0);
    /* The plain address is fine. */
    EXPECT_OK(twofa_set_contact_email(eng, "hal", "evil@example.com", NULL, &json, &err), &err);
    jfree(json);
    twofa_engine_free(eng);
    env_free(e);
}

void register_contact(void) {
    add_test("set_contact_email: step-up once the user has a method", test_set_contact_email_needs_step_up);
    add_test("set_contact_email: no step-up after the last method went",
             test_set_contact_email_after_last_method_removed);
    add_test("contact_email_begin/confirm: code, wrong code, step-up", test_contact_email_begin_confirm);
    add_test("contact_email_begin: undelivered code lifts the cooldown", test_contact_email_begin_mail_failure);
    add_test("contact/enrol codes: per-address budget across users", test_contact_email_address_budget);
    add_test("addresses with U+202E/U+200B/U+FEFF/U+2028 refused", test_invisible_characters_in_addresses_refused);
}
