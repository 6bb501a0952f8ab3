/* The sans-IO API: twofa_core, twofa_operation driven by a C loop against the C store. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static twofa_core *new_core(const char *config) {
    twofa_core *core = (twofa_core *)SENT_PTR;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_core_new(config, &core, &err), &err)) return NULL;
    CHECK(core != NULL && core != (twofa_core *)SENT_PTR);
    return core;
}

static twofa_operation *new_op(twofa_core *core, const char *user, const char *request, uint64_t now) {
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_operation_new(core, user, request, now, &op, &err), &err)) return NULL;
    return op;
}

/* Starts, drives and frees one operation; returns its status, the JSON in *out. */
static twofa_status run_op(twofa_core *core, env *e, const char *user, const char *request, uint64_t now,
                           drive_opts *o, char **out, twofa_error **err) {
    twofa_operation *op = new_op(core, user, request, now);
    if (!op) return -1;
    twofa_status st = drive_op(op, e, o, out, err);
    twofa_operation_free(op);
    return st;
}

static void test_core_new(void) {
    twofa_core *core = new_core(CONFIG);
    twofa_core_free(core);
    core = (twofa_core *)SENT_PTR;
    twofa_error *err = NULL;
    EXPECT_ERR(twofa_core_new("{\"issuer\":\"x\"}", &core, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_core_new("not json", &core, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(core == (twofa_core *)SENT_PTR);
}

static void test_security_status_op(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(run_op(core, e, "alice", "{\"op\":\"security_status\"}", T0, &o, &json, &err), &err);
    CHECK_STR(o.trace, "L.");
    CHECK_CONTAINS(json, "\"type\":\"status\"");
    CHECK_CONTAINS(json, "\"methods\":[]");
    jfree(json);
    /* set_contact_email writes the record: load, write, its event (the first address is not mailed). */
    json = SENT;
    EXPECT_OK(run_op(core, e, "alice", "{\"op\":\"set_contact_email\",\"address\":\"a@example.com\"}", T0, &o, &json,
                     &err),
              &err);
    CHECK_STR(o.trace, "LWE.");
    CHECK_CONTAINS(json, "\"type\":\"done\"");
    jfree(json);
    CHECK(store_has(&e->store, "user/alice"));
    json = SENT;
    EXPECT_OK(run_op(core, e, "alice", "{\"op\":\"security_status\"}", T0, &o, &json, &err), &err);
    CHECK_CONTAINS(json, "\"contact_email\":\"a@example.com\"");
    jfree(json);
    twofa_core_free(core);
    env_free(e);
}

/* contact_email_begin / contact_email_confirm as operations (issue 17): the code goes to the new
 * address after the address budget is charged; the confirm tells the old and the new address;
 * set_contact_email and both ops take "step_up" once the user has a method. */
static void test_contact_email_ops(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(run_op(core, e, "kim", "{\"op\":\"set_contact_email\",\"address\":\"k@example.com\",\"step_up\":null}",
                     T0, &o, &json, &err),
              &err);
    jfree(json);
    json = SENT;
    EXPECT_OK(run_op(core, e, "kim", "{\"op\":\"contact_email_begin\",\"address\":\"k2@example.com\"}", T0, &o, &json,
                     &err),
              &err);
    CHECK_STR(o.trace, "LWLWSLW."); /* pending write, address budget, send, arm */
    CHECK_CONTAINS(json, "\"sent_to\":[\"k2@example.com\"]");
    jfree(json);
    char code[16], request[160];
    CHECK(mail_last_code(&e->mail, "k2@example.com", code));
    snprintf(request, sizeof request, "{\"op\":\"contact_email_confirm\",\"code\":\"%s\"}", code);
    size_t mails = mail_count(&e->mail);
    json = SENT;
    EXPECT_OK(run_op(core, e, "kim", request, T0 + 5, &o, &json, &err), &err);
    CHECK_STR(o.trace, "LWESS."); /* contact_email_changed, then the old and the new address */
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":2,\"failed\":[]}");
    CHECK_CONTAINS(o.events, "contact_email_changed");
    jfree(json);
    CHECK_INT(mail_count(&e->mail), mails + 2);
    /* With a method, each needs a step-up token. */
    const char *import = "{\"op\":\"totp_import\",\"secret\":\"" SECRET_A "\",\"algorithm\":\"SHA1\",\"digits\":6,"
                         "\"period\":30}";
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    if (EXPECT_OK(twofa_admin_operation_new(core, "kim", import, T0, &op, &err), &err)) {
        EXPECT_OK(drive_op(op, e, &o, &json, &err), &err);
        jfree(json);
        twofa_operation_free(op);
    }
    static const char *const need_step_up[] = {
        "{\"op\":\"set_contact_email\",\"address\":\"k3@example.com\"}",
        "{\"op\":\"contact_email_begin\",\"address\":\"k3@example.com\",\"step_up\":null}",
        "{\"op\":\"contact_email_confirm\",\"code\":\"123456\"}",
    };
    for (size_t i = 0; i < sizeof need_step_up / sizeof need_step_up[0]; i++) {
        json = SENT;
        twofa_status st = run_op(core, e, "kim", need_step_up[i], T0 + 10, &o, &json, &err);
        CHECK_MSG(st == TWOFA_STEP_UP_REQUIRED, "%s: %d", need_step_up[i], st);
        EXPECT_ERR(st, TWOFA_STEP_UP_REQUIRED, &err);
        CHECK_STR(o.trace, "L.");
        CHECK(json == SENT);
    }
    twofa_core_free(core);
    env_free(e);
}

static void test_email_enroll_ops(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    char *json = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(run_op(core, e, "bea", "{\"op\":\"email_enroll_begin\",\"address\":\"a@example.com\"}", T0, &o, &json,
                     &err),
              &err);
    CHECK_STR(o.trace, "LWLWSLW."); /* pending write, address budget, send, arm */
    CHECK_CONTAINS(json, "\"type\":\"code_sent\"");
    CHECK_CONTAINS(json, "\"sent_to\":[\"a@example.com\"]");
    jfree(json);
    char code[16], request[160];
    CHECK(mail_last_code(&e->mail, "a@example.com", code));
    snprintf(request, sizeof request, "{\"op\":\"email_enroll_confirm\",\"code\":\"%s\"}", code);
    json = SENT;
    EXPECT_OK(run_op(core, e, "bea", request, T0 + 5, &o, &json, &err), &err);
    CHECK_STR(o.trace, "LWES."); /* its event, then the method_added notice to the new address */
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    CHECK_CONTAINS(json, "\"kind\":\"email\"");
    char *token = json_str(json, "token");
    CHECK(token != NULL);
    jfree(json);
    /* With step_up in the request. */
    snprintf(request, sizeof request, "{\"op\":\"recovery_codes_generate\",\"step_up\":\"%s\"}", token ? token : "");
    json = SENT;
    EXPECT_OK(run_op(core, e, "bea", request, T0 + 6, &o, &json, &err), &err);
    CHECK_STR(o.trace, "LWES."); /* its event, then the notice to a@example.com */
    CHECK_INT(json_array_len(json, "codes"), 10);
    CHECK_CONTAINS(json, "\"sent\":1");
    jfree(json);
    free(token);

    /* A failed delivery: the record is restored, the result is TWOFA_MAIL. */
    snapshot *before = store_snapshot(&e->store);
    o.fail_send = 1;
    json = SENT;
    EXPECT_ERR(run_op(core, e, "carl", "{\"op\":\"email_enroll_begin\",\"address\":\"c@example.com\"}", T0, &o, &json,
                      &err),
               TWOFA_MAIL, &err);
    /* pending write, address budget, failed send, delete the record it created */
    CHECK_STR(o.trace, "LWLWSLD.");
    CHECK(json == SENT);
    CHECK_UNCHANGED_EXCEPT(&e->store, before, "email-address/"); /* the budget stays charged */
    twofa_core_free(core);
    env_free(e);
}

static void test_conflict_then_success(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    char *json = SENT;
    twofa_error *err = NULL;
    /* One conflict: reload and decide again. */
    o.conflict_writes = 1;
    EXPECT_OK(run_op(core, e, "dora", "{\"op\":\"mark_order_created\"}", T0, &o, &json, &err), &err);
    CHECK_STR(o.trace, "LWLWE.");
    jfree(json);
    /* Conflicts beyond conflict_retries (here 2): TWOFA_CONFLICT, nothing written. */
    twofa_core *core2 = new_core("{" CONFIG_BODY ",\"conflict_retries\":2}");
    o.conflict_writes = 3;
    json = SENT;
    EXPECT_ERR(run_op(core2, e, "ella", "{\"op\":\"mark_order_created\"}", T0, &o, &json, &err), TWOFA_CONFLICT, &err);
    CHECK_STR(o.trace, "LWLWLW.");
    CHECK(!store_has(&e->store, "user/ella"));
    o.conflict_writes = 2;
    EXPECT_OK(run_op(core2, e, "ella", "{\"op\":\"mark_order_created\"}", T0, &o, &json, &err), &err);
    CHECK_STR(o.trace, "LWLWLWE.");
    jfree(json);
    CHECK(store_has(&e->store, "user/ella"));
    twofa_core_free(core2);
    twofa_core_free(core);
    env_free(e);
}

static void test_load_failure_and_feed_checks(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    twofa_error *err = NULL;
    char *json = SENT;
    /* A failed load: TWOFA_STORAGE with the host's message, no callback name. */
    drive_opts o = {0};
    o.fail_load_at = 1;
    twofa_status st = run_op(core, e, "fred", "{\"op\":\"security_status\"}", T0, &o, &json, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "the C store is down");
    EXPECT_ERR(st, TWOFA_STORAGE, &err);
    CHECK(json == SENT);

    /* Argument checks of the feeds: refused without advancing the operation. */
    twofa_operation *op = new_op(core, "fred", "{\"op\":\"set_contact_email\",\"address\":\"f@example.com\"}", T0);
    twofa_action a;
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_LOAD);
    CHECK_STR(a.key, "user/fred");
    CHECK_INT(twofa_operation_feed_load(NULL, 0, NULL, NULL, 0, 0), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_load(op, 0, NULL, NULL, 5, 7), TWOFA_INVALID_INPUT); /* NULL bytes, len 5 */
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_LOAD); /* unchanged */
    /* finish before DONE: refused, the operation goes on. */
    json = SENT;
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    CHECK_INT(twofa_operation_feed_load(op, 0, NULL, NULL, 0, 0), TWOFA_OK); /* missing key */
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_WRITE);
    CHECK_STR(a.key, "user/fred");
    CHECK_INT(a.expected_version, 0);
    CHECK(a.bytes != NULL && a.len > 0);
    CHECK(a.to == NULL && a.subject == NULL && a.text == NULL && a.html == NULL);
    CHECK_INT(twofa_operation_feed_write(NULL, 0, NULL, 5), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_write(op, 0, NULL, 0), TWOFA_INVALID_INPUT); /* version 0 */
    CHECK_INT(twofa_operation_feed_delete(NULL, 0, NULL), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_send(NULL, 0, NULL), TWOFA_INVALID_INPUT);
    EXPECT_ERR(twofa_operation_next(NULL, &a, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_next(op, NULL, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_finish(NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_finish(op, NULL, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    /* Still at the WRITE: perform it and finish. */
    drive_opts o2 = {0};
    EXPECT_OK(drive_op(op, e, &o2, &json, &err), &err);
    CHECK_STR(o2.trace, "WE."); /* its event (the first address is not mailed) */
    CHECK_CONTAINS(json, "\"type\":\"done\"");
    jfree(json);
    /* After finish: everything is refused. */
    json = SENT;
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_next(op, &a, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(twofa_operation_feed_load(op, 0, NULL, NULL, 0, 0), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_write(op, 0, NULL, 9), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_delete(op, 0, NULL), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_operation_feed_send(op, 0, NULL), TWOFA_INVALID_INPUT);
    CHECK(json == SENT);
    twofa_operation_free(op);

    /* Feedback of the wrong kind ends the operation with an internal error (no crash). */
    op = new_op(core, "fred", "{\"op\":\"security_status\"}", T0);
    CHECK_INT(twofa_operation_feed_write(op, 0, NULL, 5), TWOFA_OK);
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE);
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INTERNAL, &err);
    twofa_operation_free(op);

    /* A user the core refuses: DONE at once, then invalid_input. */
    op = new_op(core, "bad\x01user", "{\"op\":\"security_status\"}", T0);
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE);
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    twofa_operation_free(op);

    /* An operation outlives its core. */
    op = new_op(core, "fred", "{\"op\":\"security_status\"}", T0);
    twofa_core_free(core);
    EXPECT_OK(drive_op(op, e, NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"contact_email\":\"f@example.com\"");
    jfree(json);
    twofa_operation_free(op);
    env_free(e);
}

static void test_operation_new_refuses_bad_requests(void) {
    twofa_core *core = new_core(CONFIG);
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    twofa_error *err = NULL;
    const char *bad[] = {
        "",
        "{",
        "{}",
        "{\"op\":\"nope\"}",
        "{\"op\":\"security_status\",\"extra\":1}",
        "{\"op\":\"set_contact_email\"}",
        "{\"op\":\"set_contact_email\",\"address\":\"a@example.com\",\"address\":\"b@example.com\"}",
        "{\"op\":\"security_status\",\"op\":\"login_begin\"}",
        "{\"op\":\"totp_enroll_confirm\",\"code\":123456}",
        "{\"op\":\"login_verify\",\"challenge\":\"c\",\"proof\":{\"kind\":\"sms\",\"value\":\"1\"}}",
        "{\"op\":\"totp_import\",\"secret\":\"" SECRET_A "\",\"algorithm\":\"SHA1\",\"digits\":6,\"period\":30}",
        "{\"op\":\"delete_user\"}",
        "{\"op\":\"set_contact_email\",\"address\":\"\xff@example.com\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        twofa_status st = twofa_operation_new(core, "u", bad[i], T0, &op, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "request %s: status %d", bad[i], st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    }
    const char *ok = "{\"op\":\"security_status\"}";
    EXPECT_ERR(twofa_operation_new(NULL, "u", ok, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_new(core, NULL, ok, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_new(core, "u", NULL, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_new(core, "u", ok, T0, NULL, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(twofa_operation_new(core, "u", ok, T0, NULL, NULL), TWOFA_INVALID_INPUT);
    EXPECT_ERR(twofa_operation_new(core, "\xc3\x28", ok, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    char *long_user = repeat_char('u', 257);
    EXPECT_ERR(twofa_operation_new(core, long_user, ok, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    free(long_user);
    /* Over TWOFA_MAX_INPUT: a valid request padded with spaces. */
    char *big = repeat_char(' ', TWOFA_MAX_INPUT + 1);
    memcpy(big, ok, strlen(ok));
    EXPECT_ERR(twofa_operation_new(core, "u", big, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(op == (twofa_operation *)SENT_PTR);
    big[TWOFA_MAX_INPUT] = '\0';
    op = NULL;
    if (EXPECT_OK(twofa_operation_new(core, "u", big, T0, &op, &err), &err)) twofa_operation_free(op);
    free(big);
    twofa_core_free(core);
}

static void test_callback_name_does_not_leak_into_sans_io(void) {
    /* A callback failure that did not fail its call (an undeliverable notice) must not be
     * named by a later, unrelated error on this thread. */
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    char *json = SENT;
    twofa_error *err = NULL;
    SET_CONTACT(eng, "gus", "gus@example.com");
    e->mail.fail_at = -1;
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(eng, "gus", "gus2@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"failed\":[\"gus@example.com");
    jfree(json);
    /* Now a sans-IO operation whose load fails: no callback was involved. */
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    o.fail_load_at = 1;
    json = SENT;
    EXPECT_ERR(run_op(core, e, "gus", "{\"op\":\"security_status\"}", T0, &o, &json, &err), TWOFA_STORAGE, &err);
    twofa_core_free(core);
    twofa_engine_free(eng);
    env_free(e);
}

/* The admin operations in sans-IO form: import a known secret, sign in with it, delete. */
static void test_admin_operations(void) {
    env *e = env_new(T0);
    twofa_core *core = new_core(CONFIG);
    drive_opts o = {0};
    char *json = SENT;
    twofa_error *err = NULL;
    const char *import = "{\"op\":\"totp_import\",\"secret\":\"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\","
                         "\"algorithm\":\"SHA1\",\"digits\":6,\"period\":30}";
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    /* A user request is not an admin request, and the reverse. */
    EXPECT_ERR(twofa_admin_operation_new(core, "alice", "{\"op\":\"login_begin\"}", T0, &op, &err),
               TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_operation_new(core, "alice", import, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_operation_new(NULL, "alice", import, T0, &op, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(op == (twofa_operation *)SENT_PTR);

    if (EXPECT_OK(twofa_admin_operation_new(core, "alice", import, T0, &op, &err), &err)) {
        EXPECT_OK(drive_op(op, e, &o, &json, &err), &err);
        CHECK_STR(o.trace, "LWE.");
        CHECK_CONTAINS(json, "\"type\":\"method_added\"");
        jfree(json);
        twofa_operation_free(op);
    }
    json = SENT;
    EXPECT_OK(run_op(core, e, "alice", "{\"op\":\"login_begin\"}", T0, &o, &json, &err), &err);
    char *challenge = json_str(json, "challenge_id");
    jfree(json);
    char code[16] = "", request[256];
    CHECK_INT(oath_code("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", T0, 6, "sha1", code), 1);
    CHECK_STR(code, "406058");
    snprintf(request, sizeof request,
             "{\"op\":\"login_verify\",\"challenge\":\"%s\",\"proof\":{\"kind\":\"totp\",\"value\":\"%s\"}}",
             challenge ? challenge : "", code);
    free(challenge);
    json = SENT;
    EXPECT_OK(run_op(core, e, "alice", request, T0, &o, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    jfree(json);

    op = NULL;
    if (EXPECT_OK(twofa_admin_operation_new(core, "alice", "{\"op\":\"delete_user\"}", T0, &op, &err), &err)) {
        json = SENT;
        EXPECT_OK(drive_op(op, e, &o, &json, &err), &err);
        jfree(json);
        twofa_operation_free(op);
    }
    CHECK(!store_has(&e->store, "user/alice"));
    twofa_core_free(core);
    env_free(e);
}

/* One outstanding action of a conformance run, copied (its pointers die at the next call). */
typedef struct {
    uint64_t id;
    int32_t kind;
    char *key;
    uint8_t *bytes;
    size_t len;
    uint64_t expected;
} held_action;

static void answer(twofa_conformance *c, c_store *store, held_action *h) {
    twofa_status st = TWOFA_INTERNAL;
    if (h->kind == TWOFA_ACTION_LOAD) {
        const uint8_t *bytes = NULL;
        size_t len = 0;
        uint64_t version = 0;
        int32_t rc = store_get(store, h->key, NULL, &bytes, &len, &version);
        st = twofa_conformance_feed_load(c, h->id, rc, NULL, bytes, len, version);
    } else if (h->kind == TWOFA_ACTION_WRITE) {
        uint64_t version = 0;
        int32_t rc = store_put(store, h->key, h->bytes, h->len, h->expected, &version);
        st = twofa_conformance_feed_write(c, h->id, rc, NULL, version);
    } else if (h->kind == TWOFA_ACTION_DELETE) {
        st = twofa_conformance_feed_delete(c, h->id, store_delete(store, h->key, h->expected), NULL);
    }
    CHECK_INT(st, TWOFA_OK);
    free(h->key);
    free(h->bytes);
}

/* The conformance suite driven like an async host: up to 4 actions outstanding, answered last
 * first; WAIT when all of them are outstanding. */
static void test_conformance_session(void) {
    env *e = env_new(T0);
    twofa_conformance *c = NULL;
    twofa_error *err = NULL;
    EXPECT_ERR(twofa_conformance_new(NULL, &err), TWOFA_INVALID_INPUT, &err);
    if (!EXPECT_OK(twofa_conformance_new(&c, &err), &err)) return;
    held_action held[4];
    size_t n = 0, most = 0;
    twofa_action a;
    uint64_t id = 0;
    for (;;) {
        if (!EXPECT_OK(twofa_conformance_next(c, &a, &id, &err), &err)) break;
        if (a.kind == TWOFA_ACTION_DONE) break;
        if (a.kind == TWOFA_ACTION_WAIT) {
            CHECK(n > 0);
        } else {
            CHECK(id != 0 && a.key != NULL);
            held_action *h = &held[n++];
            h->id = id;
            h->kind = a.kind;
            h->key = strdup(a.key);
            h->len = a.len;
            h->bytes = a.len ? malloc(a.len) : NULL;
            if (a.len) memcpy(h->bytes, a.bytes, a.len);
            h->expected = a.expected_version;
            if (n > most) most = n;
            if (n < 4) continue;
        }
        while (n > 0) answer(c, &e->store, &held[--n]);
    }
    CHECK_INT(n, 0);
    CHECK(most > 1);
    /* Unknown ids are refused. */
    CHECK_INT(twofa_conformance_feed_delete(c, 999999, TWOFA_CALLBACK_OK, NULL), TWOFA_INVALID_INPUT);
    char *json = SENT;
    EXPECT_OK(twofa_conformance_finish(c, &json, &err), &err);
    CHECK_CONTAINS(json, "\"concurrent_increments\"");
    jfree(json);
    json = SENT;
    EXPECT_ERR(twofa_conformance_finish(c, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    CHECK_INT(store_count_prefix(&e->store, "twofa-conformance/"), 0);
    twofa_conformance_free(c);
    /* A run abandoned in the middle is freed cleanly. */
    if (EXPECT_OK(twofa_conformance_new(&c, &err), &err)) {
        EXPECT_OK(twofa_conformance_next(c, &a, &id, &err), &err);
        CHECK_INT(a.kind, TWOFA_ACTION_LOAD);
        twofa_conformance_free(c);
    }
    env_free(e);
}

/* twofa_store_run_operation: the store actions run on a built-in store; only SEND reaches the host. */
static void test_store_run_operation(void) {
    twofa_core *core = new_core(CONFIG);
    twofa_store *mem = NULL;
    twofa_error *err = NULL;
    if (!core || !EXPECT_OK(twofa_store_new_memory(&mem, &err), &err)) return;
    twofa_operation *op = new_op(core, "ines", "{\"op\":\"email_enroll_begin\",\"address\":\"i@example.com\"}", T0);
    twofa_action a;
    memset(&a, 0, sizeof a);
    EXPECT_OK(twofa_store_run_operation(mem, op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_SEND); /* the pending code was written; now the mail */
    CHECK_STR(a.to, "i@example.com");
    CHECK_INT(twofa_operation_feed_send(op, TWOFA_CALLBACK_OK, NULL), TWOFA_OK);
    EXPECT_OK(twofa_store_run_operation(mem, op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE); /* armed */
    char *json = SENT;
    EXPECT_OK(twofa_operation_finish(op, &json, &err), &err);
    CHECK_CONTAINS(json, "\"sent_to\":[\"i@example.com\"]");
    jfree(json);
    /* Argument errors leave the output untouched; a finished operation is refused. */
    a.kind = 77;
    EXPECT_ERR(twofa_store_run_operation(mem, op, &a, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_store_run_operation(NULL, op, &a, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_store_run_operation(mem, NULL, &a, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(a.kind, 77);
    twofa_operation_free(op);
    op = new_op(core, "ines", "{\"op\":\"security_status\"}", T0);
    EXPECT_ERR(twofa_store_run_operation(mem, op, NULL, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_OK(twofa_store_run_operation(mem, op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE);
    json = SENT;
    EXPECT_OK(twofa_operation_finish(op, &json, &err), &err);
    CHECK_CONTAINS(json, "\"pending\":{\"totp\":false,\"email\":\"i@example.com\"");
    jfree(json);
    /* The record is in the store handle. */
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t version = 0;
    EXPECT_OK(twofa_store_get(mem, "user/ines", &bytes, &len, &version, &err), &err);
    CHECK(version > 0 && len > 0);
    twofa_bytes_free(bytes, len);
    twofa_operation_free(op);
    twofa_store_free(mem);
    twofa_core_free(core);
}

void register_sansio(void) {
    add_test("core_new", test_core_new);
    add_test("admin_operation_new: import, sign in, delete", test_admin_operations);
    add_test("conformance session: out-of-order async host", test_conformance_session);
    add_test("operation: security_status, set_contact_email", test_security_status_op);
    add_test("operation: email enrol with mail capture; failed send", test_email_enroll_ops);
    add_test("operation: contact_email_begin/confirm with step_up", test_contact_email_ops);
    add_test("operation: conflict then success; too many conflicts", test_conflict_then_success);
    add_test("operation: failed load, feed checks, finish early/twice", test_load_failure_and_feed_checks);
    add_test("operation_new: bad request JSON, NULLs, caps", test_operation_new_refuses_bad_requests);
    add_test("operation: no stale callback name (known bug)", test_callback_name_does_not_leak_into_sans_io);
    add_test("store_run_operation: store actions on a built-in store", test_store_run_operation);
}
