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

/* Sets `user`'s notice address while they have no method (no step-up token needed), then gives
 * them SECRET_A and signs them in; returns the step-up token (malloc'd) or NULL. */
static char *address_then_method(fixture *f, const char *user, const char *address) {
    SET_CONTACT(f->eng, user, address);
    char *token = import_and_login(f->e, f->eng, user, SECRET_A);
    CHECK(token != NULL);
    return token;
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
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    char *token = address_then_method(&f, "ann", "old@example.com"); /* NULL did before the method */
    char *other = import_and_login(f.e, f.eng, "bob", SECRET_A);
    CHECK(other != NULL);

    mail_clear(&f.e->mail);
    events_clear(&f.e->events);
    snapshot *before = store_snapshot(&f.e->store);
    json = SENT;
    EXPECT_ERR(twofa_set_contact_email(f.eng, "ann", "new@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_set_contact_email(f.eng, "ann", "new@example.com", "not-a-token", &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    /* Another user's token is no token for ann. */
    EXPECT_ERR(twofa_set_contact_email(f.eng, "ann", "new@example.com", other, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    free(other);
    /* The same through the request JSON. */
    EXPECT_ERR(
        twofa_engine_run(f.eng, "ann", "{\"op\":\"set_contact_email\",\"address\":\"new@example.com\"}", &json, &err),
        TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    CHECK_INT(mails_to(&f.e->mail, "new@example.com"), 0);
    CHECK_INT(mails_to(&f.e->mail, "old@example.com"), 0);
    CHECK(!events_contain(&f.e->events, "contact_email_changed"));
    CHECK_UNCHANGED(&f.e->store, before);
    CHECK_CONTACT(f.eng, "ann", "old@example.com");

    /* With the token: both addresses are told. */
    mail_clear(&f.e->mail);
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(f.eng, "ann", "new@example.com", token, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":2,\"failed\":[]}");
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 2);
    CHECK_INT(mails_to(&f.e->mail, "old@example.com"), 1);
    CHECK_INT(mails_to(&f.e->mail, "new@example.com"), 1);
    for (size_t i = 0; i < f.e->mail.n; i++) CHECK_CONTAINS(f.e->mail.msgs[i].text, "new@example.com");
    CHECK(events_contain(&f.e->events, "\"kind\":\"contact_email_changed\""));
    CHECK_CONTACT(f.eng, "ann", "new@example.com");
    free(token);
    teardown(&f);
}

/* A user whose last method was removed has none again (and no recovery codes: they go with the
 * last method): NULL is enough once more, never a dead end. */
static void test_set_contact_email_after_last_method_removed(void) {
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    char *token = import_and_login(f.e, f.eng, "cleo", SECRET_A);
    CHECK(token != NULL);
    EXPECT_OK(twofa_recovery_codes_generate(f.eng, "cleo", token, &json, &err), &err);
    jfree(json);
    json = SENT;
    EXPECT_ERR(twofa_set_contact_email(f.eng, "cleo", "cleo@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_contact_email_begin(f.eng, "cleo", "cleo@example.com", NULL, &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_remove_method(f.eng, "cleo", "totp-1", token, &json, &err), &err);
    jfree(json);
    free(token);
    SET_CONTACT(f.eng, "cleo", "cleo@example.com");
    CHECK_CONTACT(f.eng, "cleo", "cleo@example.com");
    teardown(&f);
}

/* contact_email_begin mails a code to the new address only; confirm with it makes the address
 * the notice address and tells both; a wrong code changes nothing but is refused. */
static void test_contact_email_begin_confirm(void) {
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    char *token = address_then_method(&f, "dora", "dora@example.com");
    mail_clear(&f.e->mail);

    /* Begin: step-up needed, then a code to the new address. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(f.eng, "dora", "dora2@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&f.e->mail), 0);
    EXPECT_OK(twofa_contact_email_begin(f.eng, "dora", "dora2@example.com", token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"code_sent\"");
    CHECK_CONTAINS(json, "\"sent_to\":[\"dora2@example.com\"]");
    uint64_t expires = 0, resend = 0;
    CHECK(json_u64(json_find(json, "expires_at"), &expires) && expires == T0 + 600);
    CHECK(json_u64(json_find(json, "resend_after"), &resend) && resend == T0 + 60);
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 1);
    CHECK_INT(mails_to(&f.e->mail, "dora2@example.com"), 1);
    char code[16];
    CHECK(mail_last_code(&f.e->mail, "dora2@example.com", code));
    /* Nothing changed yet; a budget entry for the address exists (a keyed hash, not the address). */
    CHECK_CONTACT(f.eng, "dora", "dora@example.com");
    CHECK_INT(store_count_prefix(&f.e->store, "email-address/"), 1);

    /* Another code within the cooldown: rate_limited. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(f.eng, "dora", "dora3@example.com", token, &json, &err), TWOFA_RATE_LIMITED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&f.e->mail), 1);

    /* A wrong code: invalid_code, the address stays. */
    char bad[16];
    snprintf(bad, sizeof bad, "%06d", (atoi(code) + 1) % 1000000);
    EXPECT_ERR(twofa_contact_email_confirm(f.eng, "dora", bad, token, &json, &err), TWOFA_INVALID_CODE, &err);
    EXPECT_ERR(twofa_contact_email_confirm(f.eng, "dora", "12x456", token, &json, &err), TWOFA_INVALID_INPUT, &err);
    /* The right code without the token: step_up_required. */
    EXPECT_ERR(twofa_contact_email_confirm(f.eng, "dora", code, NULL, &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    CHECK_CONTACT(f.eng, "dora", "dora@example.com");
    CHECK_INT(mail_count(&f.e->mail), 1);

    /* The right code with the token: done, the previous and the new address are told. */
    events_clear(&f.e->events);
    EXPECT_OK(twofa_contact_email_confirm(f.eng, "dora", code, token, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":2,\"failed\":[]}");
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 3);
    CHECK_INT(mails_to(&f.e->mail, "dora@example.com"), 1);
    CHECK_INT(mails_to(&f.e->mail, "dora2@example.com"), 2);
    CHECK(events_contain(&f.e->events, "\"kind\":\"contact_email_changed\""));
    CHECK_CONTACT(f.eng, "dora", "dora2@example.com");
    /* The code is used up. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_confirm(f.eng, "dora", code, token, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);

    /* Without a method, NULL tokens do, also through the request JSON. */
    mail_clear(&f.e->mail);
    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "eve", "{\"op\":\"contact_email_begin\",\"address\":\"eve@example.com\"}", &json,
                               &err),
              &err);
    CHECK_CONTAINS(json, "\"sent_to\":[\"eve@example.com\"]");
    jfree(json);
    CHECK(mail_last_code(&f.e->mail, "eve@example.com", code));
    char request[128];
    snprintf(request, sizeof request, "{\"op\":\"contact_email_confirm\",\"code\":\"%s\",\"step_up\":null}", code);
    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "eve", request, &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":0,\"failed\":[]}");
    jfree(json);
    CHECK_CONTACT(f.eng, "eve", "eve@example.com");
    /* Confirm without any begin: not_found. */
    json = SENT;
    EXPECT_ERR(twofa_contact_email_confirm(f.eng, "fay", "123456", NULL, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);
    free(token);
    teardown(&f);
}

/* A code that reached no one: TWOFA_MAIL (callback send_mail), nothing pending. */
static void test_contact_email_begin_mail_failure(void) {
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    f.e->mail.fail_at = -1;
    EXPECT_ERR_CB(twofa_contact_email_begin(f.eng, "gil", "gil@example.com", NULL, &json, &err), TWOFA_MAIL, &err,
                  "send_mail");
    CHECK(json == SENT);
    f.e->mail.fail_at = 0;
    /* The failed code lifted the cooldown: a new one goes out at once. */
    EXPECT_OK(twofa_contact_email_begin(f.eng, "gil", "gil@example.com", NULL, &json, &err), &err);
    jfree(json);
    CHECK_CONTACT(f.eng, "gil", "null");
    teardown(&f);
}

/* Codes to one address are limited across users (email_code.address_limit). */
static void test_contact_email_address_budget(void) {
    fixture f = setup("{" CONFIG_BODY ",\"email_code\":{\"address_limit\":2,\"address_window_secs\":3600}}", T0);
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_contact_email_begin(f.eng, "u1", "target@example.com", NULL, &json, &err), &err);
    jfree(json);
    EXPECT_OK(twofa_email_enroll_begin(f.eng, "u2", "TARGET@example.com", NULL, &json, &err), &err);
    jfree(json);
    json = SENT;
    EXPECT_ERR(twofa_contact_email_begin(f.eng, "u3", "target@example.com", NULL, &json, &err), TWOFA_RATE_LIMITED,
               &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&f.e->mail), 2);
    /* Another address is not affected; after the window the address may receive again. */
    EXPECT_OK(twofa_contact_email_begin(f.eng, "u3", "other@example.com", NULL, &json, &err), &err);
    jfree(json);
    env_set_now(f.e, T0 + 3601);
    EXPECT_OK(twofa_contact_email_begin(f.eng, "u4", "target@example.com", NULL, &json, &err), &err);
    jfree(json);
    teardown(&f);
}

/* Addresses with Unicode format characters (U+202E, U+200B, U+FEFF) or line/paragraph separators
 * are invalid input for every operation that takes one: nothing stored, nothing mailed. */
static void test_invisible_characters_in_addresses_refused(void) {
    fixture f = setup(CONFIG, T0);
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
        twofa_status st = twofa_set_contact_email(f.eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "set_contact_email #%zu: %d", i, st);
        CHECK_CONTAINS(err ? err->message : NULL, "email address");
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        st = twofa_contact_email_begin(f.eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "contact_email_begin #%zu: %d", i, st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        st = twofa_email_enroll_begin(f.eng, "hal", bad[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "email_enroll_begin #%zu: %d", i, st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    }
    /* The U+202E address as request JSON (escaped and raw). */
    EXPECT_ERR(twofa_engine_run(f.eng, "hal", "{\"op\":\"set_contact_email\",\"address\":\"ev\\u202eil@example.com\"}",
                                &json, &err),
               TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_run(f.eng, "hal",
                                "{\"op\":\"contact_email_begin\",\"address\":\"ev\xe2\x80\xaeil@example.com\"}", &json,
                                &err),
               TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    CHECK_INT(store_count(&f.e->store), 0);
    CHECK_INT(mail_count(&f.e->mail), 0);
    /* The plain address is fine. */
    SET_CONTACT(f.eng, "hal", "evil@example.com");
    teardown(&f);
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
