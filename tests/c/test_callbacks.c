/*
 * Host callbacks that fail: a store failing on its N-th call (for N = 1, 2, ... until the
 * operation succeeds), failing mail, a failing clock, a store that reports no version, the
 * store value setters, and the store conformance suite (twofa_check_store).
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    env *e;
    twofa_engine *eng;
    twofa_admin *adm;
    const char *user;
    const char *arg;   /* address, code, ... */
    char *token;       /* step-up token */
    char *challenge;
} ctx;

typedef twofa_status (*attempt_fn)(ctx *c, char **out, twofa_error **err);

/*
 * Runs `fn` with the store failing on call 1, then 2, ... Each failure must be TWOFA_STORAGE
 * naming the callback that failed, write no out_json and leave the stored bytes exactly as
 * before, except an address budget (email-address/...): charged before a code is mailed, it
 * stays charged once the mail may have gone. Stops at the first success (whose call count must
 * be below N). Returns the N that succeeded (0 if none did).
 */
static long fail_each_call(ctx *c, const char *what, attempt_fn fn, long min_calls) {
    for (long n = 1; n <= 64; n++) {
        snapshot *before = store_snapshot(&c->e->store);
        store_arm(&c->e->store, n);
        char *out = SENT;
        twofa_error *err = NULL;
        twofa_status st = fn(c, &out, &err);
        long calls = c->e->store.calls;
        char kind[16];
        snprintf(kind, sizeof kind, "%s", c->e->store.failed_kind);
        store_arm(&c->e->store, 0);
        if (st == TWOFA_OK) {
            CHECK_MSG(calls < n, "%s: succeeded although call %ld failed", what, n);
            CHECK_MSG(n > min_calls, "%s: succeeded after only %ld calls", what, n - 1);
            CHECK(err == NULL);
            jfree(out);
            snapshot_free(before);
            return n;
        }
        CHECK_MSG(kind[0] != '\0', "%s: failed (%d) before store call %ld", what, st, n);
        if (st != TWOFA_STORAGE)
            check_failed(__FILE__, __LINE__, "%s, store call %ld (%s) failing: status %d", what, n, kind, st);
        check_error(__FILE__, __LINE__, st, TWOFA_STORAGE, &err, kind);
        CHECK_MSG(out == SENT, "%s: out_json written on failure", what);
        snapshot *after = store_snapshot(&c->e->store);
        CHECK_MSG(snapshot_equal_except(before, after, "email-address/"),
                  "%s: the store changed although call %ld (%s) failed", what, n, kind);
        snapshot_free(before);
        snapshot_free(after);
    }
    check_failed(__FILE__, __LINE__, "%s never succeeded", what);
    return 0;
}

static ctx make_ctx(const char *config) {
    ctx c = {0};
    c.e = env_new(T0);
    c.eng = env_engine(c.e, config);
    c.adm = admin_of(c.eng);
    return c;
}

static void free_ctx(ctx *c) {
    free(c->token);
    free(c->challenge);
    twofa_admin_free(c->adm);
    twofa_engine_free(c->eng);
    env_free(c->e);
}

static twofa_status do_email_enroll_begin(ctx *c, char **out, twofa_error **err) {
    return twofa_email_enroll_begin(c->eng, c->user, c->arg, c->token, out, err);
}

static void test_store_failing_email_enroll_begin(void) {
    ctx c = make_ctx(CONFIG);
    twofa_error *err = NULL;
    char *json = SENT;
    /* Some other data in the store, which must stay as it is. */
    SET_CONTACT(c.eng, "other", "other@example.com");

    /* A user without a record: a failed operation leaves no record. */
    c.user = "fresh";
    c.arg = "fresh@example.com";
    long n = fail_each_call(&c, "email_enroll_begin (new user)", do_email_enroll_begin, 4);
    CHECK_INT(n, 7); /* get, put (pending), get, put (address budget), [send], get, put (armed) */
    CHECK(mail_count(&c.e->mail) >= 1);

    /* A user with a record (a contact address): restored byte for byte. */
    SET_CONTACT(c.eng, "kept", "kept@example.com");
    c.user = "kept";
    c.arg = "kept-2fa@example.com";
    fail_each_call(&c, "email_enroll_begin (existing record)", do_email_enroll_begin, 4);
    /* The code that finally went out confirms the address. */
    char code[16];
    CHECK(mail_last_code(&c.e->mail, "kept-2fa@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_email_enroll_confirm(c.eng, "kept", code, NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"kind\":\"email\"");
    jfree(json);
    free_ctx(&c);
}

static twofa_status do_import(ctx *c, char **out, twofa_error **err) {
    return twofa_admin_totp_import(c->adm, c->user, SECRET_A, "SHA1", 6, 30, out, err);
}

static twofa_status do_login_verify(ctx *c, char **out, twofa_error **err) {
    return twofa_login_verify(c->eng, c->user, c->challenge, "totp", c->arg, out, err);
}

static void test_store_failing_totp_import_and_verify(void) {
    ctx c = make_ctx(CONFIG);
    c.user = "tom";
    CHECK_INT(fail_each_call(&c, "admin_totp_import", do_import, 2), 3);
    c.challenge = begin_challenge(c.eng, "tom");
    c.arg = CODE_A_T0;
    CHECK_INT(fail_each_call(&c, "login_verify (totp)", do_login_verify, 2), 3);
    /* The one success consumed the code: it is a replay now. */
    char *json = SENT;
    twofa_error *err = NULL;
    free(c.challenge);
    c.challenge = begin_challenge(c.eng, "tom");
    EXPECT_ERR(twofa_login_verify(c.eng, "tom", c.challenge, "totp", CODE_A_T0, &json, &err), TWOFA_REPLAYED, &err);

    free_ctx(&c);
}

static twofa_status do_totp_confirm(ctx *c, char **out, twofa_error **err) {
    return twofa_totp_enroll_confirm(c->eng, c->user, c->arg, NULL, out, err);
}

static void test_store_failing_totp_enroll_confirm(void) {
    ctx c = make_ctx(CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_totp_enroll_begin(c.eng, "tina", "tina@example.com", NULL, &json, &err), &err);
    char *secret = json_str(json, "secret");
    jfree(json);
    char code[16] = "";
    CHECK(secret && oath_code(secret, T0, 6, "SHA1", code));
    free(secret);
    c.user = "tina";
    c.arg = code;
    CHECK_INT(fail_each_call(&c, "totp_enroll_confirm", do_totp_confirm, 2), 3);
    free_ctx(&c);
}

static twofa_status do_recovery(ctx *c, char **out, twofa_error **err) {
    return twofa_recovery_codes_generate(c->eng, c->user, c->token, out, err);
}

static void test_store_failing_recovery_codes_generate(void) {
    ctx c = make_ctx(CONFIG);
    c.user = "rita";
    SET_CONTACT(c.eng, "rita", "rita@example.com");
    c.token = import_and_login(c.e, c.eng, "rita", SECRET_A);
    CHECK(c.token != NULL);
    size_t mails = mail_count(&c.e->mail);
    CHECK_INT(fail_each_call(&c, "recovery_codes_generate", do_recovery, 2), 3);
    /* Only the success sent its notice. */
    CHECK(mail_count(&c.e->mail) > mails);
    free_ctx(&c);
}

static void test_failing_send_mail(void) {
    ctx c = make_ctx(CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    SET_CONTACT(c.eng, "mia", "mia@example.com");
    size_t mails = mail_count(&c.e->mail); /* the notice to mia@example.com */
    c.e->mail.fail_at = -1;
    const char *users[] = {"nobody-yet", "mia"};
    for (int i = 0; i < 2; i++) {
        snapshot *before = store_snapshot(&c.e->store);
        store_arm(&c.e->store, 0);
        json = SENT;
        EXPECT_ERR_CB(twofa_email_enroll_begin(c.eng, users[i], "new@example.com", NULL, &json, &err), TWOFA_MAIL,
                      &err, "send_mail");
        CHECK(json == SENT);
        CHECK(c.e->store.puts >= 1); /* it was written, then restored */
        CHECK_UNCHANGED_EXCEPT(&c.e->store, before, "email-address/"); /* the budget stays charged */
        CHECK_INT(store_count_prefix(&c.e->store, "email-address/"), 1);
    }
    CHECK_INT(mail_count(&c.e->mail), mails);
    /* No rate limit was armed by the failed delivery. */
    c.e->mail.fail_at = 0;
    json = SENT;
    EXPECT_OK(twofa_email_enroll_begin(c.eng, "mia", "new@example.com", NULL, &json, &err), &err);
    jfree(json);

    /* Sign-in codes too: the challenge survives a failed delivery. */
    char *token = NULL;
    char code[16];
    CHECK(mail_last_code(&c.e->mail, "new@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_email_enroll_confirm(c.eng, "mia", code, NULL, &json, &err), &err);
    token = json_str(json, "token");
    jfree(json);
    free(token);
    char *challenge = begin_challenge(c.eng, "mia");
    snapshot *before = store_snapshot(&c.e->store);
    c.e->mail.fail_at = -1;
    json = SENT;
    EXPECT_ERR_CB(twofa_login_send_email_code(c.eng, "mia", challenge, &json, &err), TWOFA_MAIL, &err, "send_mail");
    CHECK_UNCHANGED(&c.e->store, before);
    c.e->mail.fail_at = 0;
    json = SENT;
    EXPECT_OK(twofa_login_send_email_code(c.eng, "mia", challenge, &json, &err), &err);
    jfree(json);
    CHECK(mail_last_code(&c.e->mail, "new@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_login_verify(c.eng, "mia", challenge, "email", code, &json, &err), &err);
    jfree(json);
    free(challenge);
    free_ctx(&c);
}

static void test_mail_failure_then_restore_failure(void) {
    ctx c = make_ctx(CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    SET_CONTACT(c.eng, "quin", "quin@example.com");
    /* The delivery fails, and so does every store call after the pending write and the address
     * budget (calls 5...): the record cannot be restored. The call reports the first failure,
     * TWOFA_MAIL. */
    c.e->mail.fail_at = -1;
    store_arm(&c.e->store, 5);
    c.e->store.fail_count = 1000;
    json = SENT;
    twofa_status st = twofa_email_enroll_begin(c.eng, "quin", "quin2@example.com", NULL, &json, &err);
    CHECK(json == SENT);
    CHECK_STR(c.e->store.failed_kind, "store.get");
    store_arm(&c.e->store, 0);
    c.e->mail.fail_at = 0;
    /* The reported TWOFA_MAIL names send_mail, even though restoring the record failed too. */
    EXPECT_ERR_CB(st, TWOFA_MAIL, &err, "send_mail");
    /* The code was never armed, but its pending entry could not be discarded: it holds the
     * cooldown like any issued code (a burst must not outrun it), and once the cooldown is over
     * it is replaced, so nothing is stuck for a code's lifetime. */
    json = SENT;
    EXPECT_ERR(twofa_email_enroll_begin(c.eng, "quin", "quin2@example.com", NULL, &json, &err), TWOFA_RATE_LIMITED,
               &err);
    CHECK(json == SENT);
    env_set_now(c.e, T0 + 60);
    EXPECT_OK(twofa_email_enroll_begin(c.eng, "quin", "quin2@example.com", NULL, &json, &err), &err);
    jfree(json);
    char code[16];
    CHECK(mail_last_code(&c.e->mail, "quin2@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_email_enroll_confirm(c.eng, "quin", code, NULL, &json, &err), &err);
    jfree(json);
    free_ctx(&c);
}

static void test_failing_now(void) {
    ctx c = make_ctx(CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    atomic_store(&c.e->now_fail, 1);
    store_arm(&c.e->store, 0);
    EXPECT_ERR_CB(twofa_security_status(c.eng, "nora", &json, &err), TWOFA_INTERNAL, &err, "now");
    CHECK_CONTAINS(twofa_last_error_message(), "now");
    EXPECT_ERR_CB(twofa_set_contact_email(c.eng, "nora", "nora@example.com", NULL, &json, &err), TWOFA_INTERNAL, &err,
                  "now");
    EXPECT_ERR_CB(twofa_mark_order_created(c.eng, "nora", &err), TWOFA_INTERNAL, &err, "now");
    EXPECT_ERR_CB(twofa_admin_totp_import(c.adm, "nora", SECRET_A, "SHA1", 6, 30, &json, &err), TWOFA_INTERNAL, &err,
                  "now");
    CHECK(json == SENT);
    CHECK_INT(c.e->store.calls, 0);
    /* The next call after a callback failure does not inherit its callback name. */
    atomic_store(&c.e->now_fail, 0);
    EXPECT_ERR(twofa_login_verify(c.eng, "nora", "x", "totp", "123456", &json, &err), TWOFA_NOT_FOUND, &err);
    free_ctx(&c);
}

static void test_put_without_version_and_value_setters(void) {
    ctx c = make_ctx(CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    /* store_put returning OK without reporting a version is a store failure. */
    c.e->store.put_no_version = 1;
    EXPECT_ERR_CB(twofa_set_contact_email(c.eng, "olga", "olga@example.com", NULL, &json, &err), TWOFA_STORAGE, &err,
                  "store.put");
    CHECK(json == SENT);
    c.e->store.put_no_version = 0;
    /* The setters refuse NULL, NULL bytes with a length, and version 0, during a callback. */
    c.e->store.probe = 1;
    char *token = import_and_login(c.e, c.eng, "olga", SECRET_A);
    CHECK(token != NULL);
    CHECK_INT(c.e->store.probe_failures, 0);
    free(token);
    /* A value of 0 bytes with NULL is accepted by twofa_store_value_set (a record that cannot be
     * parsed is then a storage error, not a crash). */
    free_ctx(&c);
}

static int32_t empty_get(void *ud, const char *key, twofa_store_value *out) {
    (void)ud;
    (void)key;
    return twofa_store_value_set(out, NULL, 0, 42) == TWOFA_OK ? TWOFA_CALLBACK_OK : 99;
}

static void test_unreadable_record(void) {
    ctx c = make_ctx(CONFIG);
    twofa_host h = c.e->host;
    h.store_get = empty_get;
    twofa_engine *eng = NULL;
    twofa_error *err = NULL;
    char *json = SENT;
    if (EXPECT_OK(twofa_engine_new(CONFIG, &h, &eng, &err), &err)) {
        EXPECT_ERR(twofa_security_status(eng, "pia", &json, &err), TWOFA_STORAGE, &err);
        CHECK(json == SENT);
        twofa_engine_free(eng);
    }
    free_ctx(&c);
}

static void test_check_store(void) {
    env *e = env_new(T0);
    char *json = SENT;
    twofa_error *err = NULL;
    /* Some data that must survive. */
    uint64_t v;
    CHECK_INT(store_put(&e->store, "user/keep", (const uint8_t *)"x", 1, 0, &v), 0);
    if (EXPECT_OK(twofa_check_store(&e->host, &json, &err), &err)) {
        CHECK_INT(json_array_len(json, "passed"), 13);
        char *first = json_array_str(json, "passed", 0);
        CHECK_STR(first, "get_missing");
        free(first);
        CHECK_CONTAINS(json, "\"concurrent_increments\"");
        CHECK_CONTAINS(json, "\"cleanup\"");
    }
    jfree(json);
    CHECK_INT(store_count_prefix(&e->store, "twofa-conformance/"), 0);
    CHECK_INT(store_count(&e->store), 1);
    env_free(e);

    /* No compare-and-swap. */
    e = env_new(T0);
    e->store.no_cas = 1;
    json = SENT;
    twofa_status st = twofa_check_store(&e->host, &json, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "insert_existing_conflicts");
    EXPECT_ERR(st, TWOFA_STORAGE, &err);
    CHECK(json == SENT);
    env_free(e);

    /* No version reported. */
    e = env_new(T0);
    e->store.put_no_version = 1;
    st = twofa_check_store(&e->host, &json, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "insert_round_trip");
    EXPECT_ERR_CB(st, TWOFA_STORAGE, &err, "store.put");
    CHECK(json == SENT);
    env_free(e);

    /* A failing get. */
    e = env_new(T0);
    store_arm(&e->store, 1);
    st = twofa_check_store(&e->host, &json, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "get_missing");
    EXPECT_ERR_CB(st, TWOFA_STORAGE, &err, "store.get");
    CHECK(json == SENT);
    env_free(e);
}

void register_callbacks(void) {
    add_test("store failing on call N: email_enroll_begin", test_store_failing_email_enroll_begin);
    add_test("store failing on call N: totp import, login_verify", test_store_failing_totp_import_and_verify);
    add_test("store failing on call N: totp_enroll_confirm", test_store_failing_totp_enroll_confirm);
    add_test("store failing on call N: recovery_codes_generate", test_store_failing_recovery_codes_generate);
    add_test("send_mail failing: TWOFA_MAIL, store unchanged", test_failing_send_mail);
    add_test("send_mail failing, then the restore failing", test_mail_failure_then_restore_failure);
    add_test("now failing: error names \"now\"", test_failing_now);
    add_test("store.put without version; value setter probes", test_put_without_version_and_value_setters);
    add_test("store.get with an unreadable record", test_unreadable_record);
    add_test("check_store: conforming and broken C stores", test_check_store);
}
