/*
 * Account lifecycle: audit events through the emit_event callback and the EMIT action,
 * remembered devices, the admin capability (forbidden without "admin": true), reset, export
 * and import.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An export key: standard base64 of 32 bytes ("export-key-export-key-export-key"). */
#define EXPORT_KEY "ZXhwb3J0LWtleS1leHBvcnQta2V5LWV4cG9ydC1rZXk="
#define OTHER_KEY "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktLS0="

/* Checks that no audit event received by `e` contains `secret` (when not NULL). */
static void check_no_event_contains(const char *file, int line, env *e, const char *secret) {
    if (secret && *secret && events_contain(&e->events, secret))
        check_failed(file, line, "an audit event contains the secret \"%s\"", secret);
}
#define NO_EVENT_CONTAINS(e, s) check_no_event_contains(__FILE__, __LINE__, (e), (s))

/* Checks that no audit event contains the one-time `code` as a number of its own (the digits
 * of a timestamp such as 1700000090 may contain any code). */
static void check_no_event_has_code(const char *file, int line, env *e, const char *code) {
    size_t len = strlen(code);
    for (size_t i = 0; i < events_count(&e->events); i++) {
        char *ev = event_at(&e->events, i);
        for (const char *p = ev ? strstr(ev, code) : NULL; p; p = strstr(p + 1, code)) {
            int digit_before = p > ev && p[-1] >= '0' && p[-1] <= '9';
            int digit_after = p[len] >= '0' && p[len] <= '9';
            if (!digit_before && !digit_after) check_failed(file, line, "an audit event contains the code %s", code);
        }
        free(ev);
    }
}
#define NO_EVENT_HAS_CODE(e, c) check_no_event_has_code(__FILE__, __LINE__, (e), (c))

/* The TOTP code of `secret` at the env's clock (the test fails if oathtool does). */
static void code_now(env *e, const char *secret, char out[16]) {
    if (!oath_code(secret, atomic_load(&e->now), 6, "SHA1", out)) {
        check_failed(__FILE__, __LINE__, "oathtool failed");
        strcpy(out, "000000");
    }
}

static void test_events_for_enrol_sign_in_and_wrong_code(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    twofa_error *err = NULL;
    char *json = SENT;
    char kinds[512];

    EXPECT_OK(twofa_totp_enroll_begin(eng, "alice", "alice@example.com", NULL, &json, &err), &err);
    char *secret = json_str(json, "secret");
    CHECK(secret != NULL);
    jfree(json);
    if (!secret) goto out;
    CHECK_INT(events_count(&e->events), 0); /* a pending enrolment is not an event yet */

    char enrol_code[16], wrong[16], login_code[16];
    code_now(e, secret, enrol_code);
    json = SENT;
    EXPECT_OK(twofa_totp_enroll_confirm(eng, "alice", enrol_code, NULL, &json, &err), &err);
    char *enrol_token = json_str(json, "token");
    jfree(json);
    events_kinds(&e->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "method_added");

    env_set_now(e, T0 + 90);
    char *challenge = begin_challenge(eng, "alice");
    wrong_code(secret, T0 + 90, 6, wrong);
    json = SENT;
    EXPECT_ERR(twofa_login_verify(eng, "alice", challenge ? challenge : "x", "totp", wrong, &json, &err),
               TWOFA_INVALID_CODE, &err);
    CHECK(json == SENT);
    code_now(e, secret, login_code);
    EXPECT_OK(twofa_login_verify(eng, "alice", challenge ? challenge : "x", "totp", login_code, &json, &err), &err);
    char *login_token = json_str(json, "token");
    CHECK(login_token != NULL);
    jfree(json);

    events_kinds(&e->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "method_added,login_failed,login_succeeded");
    for (size_t i = 0; i < events_count(&e->events); i++) {
        char *ev = event_at(&e->events, i);
        CHECK_CONTAINS(ev, "\"user\":\"alice\"");
        CHECK_CONTAINS(ev, "\"method\":\"totp\"");
        free(ev);
    }
    char *last = event_at(&e->events, 2);
    CHECK_CONTAINS(last, "\"at\":1700000090");
    free(last);
    NO_EVENT_CONTAINS(e, secret);
    NO_EVENT_HAS_CODE(e, enrol_code);
    NO_EVENT_HAS_CODE(e, wrong);
    NO_EVENT_HAS_CODE(e, login_code);
    NO_EVENT_CONTAINS(e, enrol_token);
    NO_EVENT_CONTAINS(e, login_token);
    NO_EVENT_CONTAINS(e, challenge);

    /* A read-only operation emits nothing; an engine without the callback works the same. */
    size_t n = events_count(&e->events);
    json = SENT;
    EXPECT_OK(twofa_security_status(eng, "alice", &json, &err), &err);
    jfree(json);
    CHECK_INT(events_count(&e->events), n);
    twofa_host quiet = e->host;
    quiet.emit_event = NULL;
    twofa_engine *eng2 = (twofa_engine *)SENT_PTR;
    EXPECT_OK(twofa_engine_new(CONFIG, &quiet, &eng2, &err), &err);
    env_set_now(e, T0 + 180);
    char *c2 = begin_challenge(eng2, "alice");
    code_now(e, secret, login_code);
    json = SENT;
    EXPECT_OK(twofa_login_verify(eng2, "alice", c2 ? c2 : "x", "totp", login_code, &json, &err), &err);
    jfree(json);
    CHECK_INT(events_count(&e->events), n);
    free(c2);
    twofa_engine_free(eng2);

    free(challenge);
    free(enrol_token);
    free(login_token);
    free(secret);
out:
    twofa_engine_free(eng);
    env_free(e);
}

/* A fixture on `config` where alice and bob each have SECRET_A (imported by the admin). */
static fixture with_alice_and_bob(const char *config) {
    fixture f = setup(config, T0);
    if (f.adm) {
        IMPORT_TOTP(f.adm, "alice", SECRET_A);
        IMPORT_TOTP(f.adm, "bob", SECRET_A);
    }
    return f;
}

/* Signs `user` in with SECRET_A at the env's clock, asking to remember the browser; returns the
 * login_success JSON (caller frees with jfree) or NULL. */
static char *sign_in_remembering(env *e, twofa_engine *eng, const char *user, bool remember) {
    char *challenge = begin_challenge(eng, user);
    if (!challenge) return NULL;
    char code[16];
    code_now(e, SECRET_A, code);
    char *json = SENT;
    twofa_error *err = NULL;
    int ok = EXPECT_OK(twofa_login_verify_remembering(eng, user, challenge, "totp", code, remember, &json, &err), &err);
    free(challenge);
    return ok ? json : NULL;
}

/* login_begin_remembered with `token`; returns 1 if the second factor is skipped. */
static int skips_second_factor(twofa_engine *eng, const char *user, const char *token) {
    char *json = SENT;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_login_begin_remembered(eng, user, token, &json, &err), &err)) return -1;
    int skipped = strstr(json, "\"second_factor_required\":false") != NULL;
    if (skipped) {
        CHECK_CONTAINS(json, "\"remembered_device\":\"");
    } else {
        CHECK_CONTAINS(json, "\"second_factor_required\":true");
        CHECK_CONTAINS(json, "\"remembered_device\":null");
    }
    jfree(json);
    return skipped;
}

static void test_remembered_devices(void) {
    fixture f = with_alice_and_bob(CONFIG_REMEMBER);
    twofa_error *err = NULL;
    char *json = SENT;
    if (!f.adm) goto out;

    /* Remembering issues a device token. */
    char *success = sign_in_remembering(f.e, f.eng, "alice", true);
    CHECK_CONTAINS(success, "\"type\":\"login_success\"");
    char *token = success ? json_str(success, "token") : NULL; /* the step-up token comes later */
    char *device_token = NULL, *device_id = NULL;
    const char *dt = success ? strstr(success, "\"device_token\":{") : NULL;
    CHECK_MSG(dt != NULL, "no device_token in %s", success ? success : "(null)");
    if (dt) {
        device_token = json_str(dt, "token");
        device_id = json_str(dt, "device_id");
    }
    jfree(success);
    free(token);
    if (!device_token || !device_id) goto out;
    char kinds[512];
    events_kinds(&f.e->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "method_added,method_added,login_succeeded,device_remembered");
    NO_EVENT_CONTAINS(f.e, device_token);

    /* With the token, the second factor is skipped; without it, another user's, or garbage: not. */
    env_set_now(f.e, T0 + 60);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 1);
    CHECK_INT(skips_second_factor(f.eng, "alice", NULL), 0);
    CHECK_INT(skips_second_factor(f.eng, "bob", device_token), 0);
    CHECK_INT(skips_second_factor(f.eng, "alice", "not-a-token"), 0);
    json = SENT;
    EXPECT_OK(twofa_login_begin(f.eng, "alice", &json, &err), &err);
    CHECK_CONTAINS(json, "\"second_factor_required\":true");
    jfree(json);
    CHECK_STATUS_CONTAINS(f.eng, "alice", device_id);

    /* Without remember_device, no token. */
    env_set_now(f.e, T0 + 120);
    success = sign_in_remembering(f.e, f.eng, "bob", false);
    CHECK_CONTAINS(success, "\"device_token\":null");
    jfree(success);

    /* Revoking that device: its token is ignored. */
    EXPECT_ERR(twofa_revoke_remembered_device(f.eng, "alice", "no-such-device", &err), TWOFA_NOT_FOUND, &err);
    EXPECT_OK(twofa_revoke_remembered_device(f.eng, "alice", device_id, &err), &err);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 0);
    free(device_token);
    free(device_id);

    /* Revoking all devices. */
    env_set_now(f.e, T0 + 180);
    success = sign_in_remembering(f.e, f.eng, "alice", true);
    device_token = success ? json_str(strstr(success, "\"device_token\":{"), "token") : NULL;
    jfree(success);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 1);
    EXPECT_OK(twofa_revoke_remembered_devices(f.eng, "alice", &err), &err);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 0);
    free(device_token);

    /* Removing a method revokes them too: add an email method, remember, remove the email. */
    env_set_now(f.e, T0 + 240);
    success = sign_in_remembering(f.e, f.eng, "alice", true);
    device_token = success ? json_str(strstr(success, "\"device_token\":{"), "token") : NULL;
    char *step_up = success ? json_str(strstr(success, "\"step_up\":{"), "token") : NULL;
    jfree(success);
    json = SENT;
    EXPECT_OK(twofa_email_enroll_begin(f.eng, "alice", "alice@example.com", step_up, &json, &err), &err);
    jfree(json);
    char mail_code[16] = "";
    CHECK(mail_last_code(&f.e->mail, "alice@example.com", mail_code));
    json = SENT;
    EXPECT_OK(twofa_email_enroll_confirm(f.eng, "alice", mail_code, step_up, &json, &err), &err);
    char *email_id = json_str(json, "id");
    jfree(json);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 1);
    json = SENT;
    EXPECT_OK(twofa_remove_method(f.eng, "alice", email_id ? email_id : "x", step_up, &json, &err), &err);
    jfree(json);
    CHECK_INT(skips_second_factor(f.eng, "alice", device_token), 0);
    events_kinds(&f.e->events, kinds, sizeof kinds);
    CHECK_CONTAINS(kinds, "method_removed");
    CHECK_CONTAINS(kinds, "remembered_devices_revoked");
    NO_EVENT_CONTAINS(f.e, device_token);
    NO_EVENT_CONTAINS(f.e, step_up);
    NO_EVENT_HAS_CODE(f.e, mail_code);
    free(email_id);
    free(step_up);
    free(device_token);
out:
    teardown(&f);
}

static void test_admin_needs_the_capability(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG_NO_ADMIN);
    twofa_admin *admin = (twofa_admin *)SENT_PTR;
    twofa_error *err = NULL;
    twofa_status st = twofa_admin_new(eng, &admin, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "\"admin\": true");
    CHECK_STR(err ? err->name : NULL, "forbidden");
    EXPECT_ERR(st, TWOFA_FORBIDDEN, &err);
    CHECK(admin == (twofa_admin *)SENT_PTR);
    CHECK_INT(twofa_admin_new(eng, &admin, NULL), TWOFA_FORBIDDEN);
    CHECK_CONTAINS(twofa_last_error_message(), "forbidden");
    CHECK(admin == (twofa_admin *)SENT_PTR);
    CHECK_INT(e->store.calls, 0);

    /* The sans-IO admin operation of a core without the capability ends at once, forbidden. */
    twofa_core *core = (twofa_core *)SENT_PTR;
    EXPECT_OK(twofa_core_new(CONFIG_NO_ADMIN, &core, &err), &err);
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    EXPECT_OK(twofa_admin_operation_new(core, "alice", "{\"op\":\"delete_user\"}", T0, &op, &err), &err);
    drive_opts o = {0};
    char *json = SENT;
    EXPECT_ERR(drive_op(op, e, &o, &json, &err), TWOFA_FORBIDDEN, &err);
    CHECK_STR(o.trace, ".");
    CHECK(json == SENT);
    twofa_operation_free(op);
    twofa_core_free(core);
    twofa_engine_free(eng);
    env_free(e);
}

static void test_admin_reset_export_import(void) {
    fixture f = with_alice_and_bob(CONFIG);
    twofa_error *err = NULL;
    char *json = SENT;
    if (!f.adm) goto out;

    /* Export alice's second factors. */
    json = SENT;
    EXPECT_OK(twofa_admin_export_user(f.adm, "alice", EXPORT_KEY, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"exported\"");
    char *document = json_str(json, "document");
    jfree(json);
    CHECK(document != NULL && strstr(document, "\"sealed\":\"") != NULL);
    if (!document) goto out;
    CHECK(strstr(document, SECRET_A) == NULL); /* sealed, not in clear */
    json = SENT;
    EXPECT_ERR(twofa_admin_export_user(f.adm, "alice", "c2hvcnQ=", &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);

    /* A fresh in-memory engine (the same clock and event callback). */
    env *e2 = env_new(T0 + 300);
    twofa_engine *fresh = (twofa_engine *)SENT_PTR;
    EXPECT_OK(twofa_engine_new_memory(CONFIG, &e2->host, &fresh, &err), &err);
    twofa_admin *fresh_admin = admin_of(fresh);

    /* A tampered document, a wrong key, another user: refused, nothing stored. */
    char *tampered = strdup(document);
    char *p = strstr(tampered, "\"sealed\":\"") + strlen("\"sealed\":\"") + 4;
    *p = *p == 'A' ? 'B' : 'A';
    json = SENT;
    EXPECT_ERR(twofa_admin_import_user(fresh_admin, "alice", tampered, EXPORT_KEY, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    CHECK(json == SENT);
    EXPECT_ERR(twofa_admin_import_user(fresh_admin, "alice", document, OTHER_KEY, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    EXPECT_ERR(twofa_admin_import_user(fresh_admin, "carol", document, EXPORT_KEY, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    EXPECT_ERR(twofa_admin_import_user(fresh_admin, "alice", "{}", EXPORT_KEY, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    CHECK(json == SENT);
    CHECK_STATUS_CONTAINS(fresh, "alice", "\"methods\":[]");
    CHECK_INT(events_count(&e2->events), 0);

    /* The real document: imported, and alice signs in there with her authenticator. */
    json = SENT;
    EXPECT_OK(twofa_admin_import_user(fresh_admin, "alice", document, EXPORT_KEY, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"imported\"");
    CHECK_CONTAINS(json, "\"kind\":\"totp\"");
    CHECK_CONTAINS(json, "\"skipped\":[]");
    jfree(json);
    char *challenge = begin_challenge(fresh, "alice");
    char code[16];
    code_now(e2, SECRET_A, code);
    json = SENT;
    EXPECT_OK(twofa_login_verify(fresh, "alice", challenge ? challenge : "x", "totp", code, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    jfree(json);
    free(challenge);
    /* Importing again (alice now has a second factor) is refused. */
    json = SENT;
    twofa_status st = twofa_admin_import_user(fresh_admin, "alice", document, EXPORT_KEY, &json, &err);
    CHECK_CONTAINS(err ? err->message : NULL, "already has second factors");
    EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    char kinds[512];
    events_kinds(&e2->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "user_imported,login_succeeded");
    events_kinds(&f.e->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "method_added,method_added,user_exported");
    NO_EVENT_CONTAINS(f.e, EXPORT_KEY);
    NO_EVENT_CONTAINS(e2, EXPORT_KEY);
    NO_EVENT_CONTAINS(f.e, SECRET_A);
    NO_EVENT_CONTAINS(e2, SECRET_A);
    twofa_admin_free(fresh_admin);
    twofa_engine_free(fresh);
    env_free(e2);
    free(tampered);
    free(document);

    /* Reset: every method goes, the actor and reason are recorded, the user can enrol again. */
    json = SENT;
    EXPECT_ERR(twofa_admin_reset_user(f.adm, "nobody", "helpdesk", "lost phone", &json, &err), TWOFA_NOT_FOUND, &err);
    EXPECT_ERR(twofa_admin_reset_user(f.adm, "bob", "", "lost phone", &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_admin_reset_user(f.adm, "bob", "helpdesk", "lost phone", &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"reset\"");
    CHECK_CONTAINS(json, "\"methods_removed\":1");
    jfree(json);
    CHECK_STATUS_CONTAINS(f.eng, "bob", "\"methods\":[]", "\"last_reset\":{");
    events_kinds(&f.e->events, kinds, sizeof kinds);
    CHECK_STR(kinds, "method_added,method_added,user_exported,admin_reset,method_removed");
    int found = 0;
    for (size_t i = 0; i < events_count(&f.e->events); i++) {
        char *ev = event_at(&f.e->events, i);
        if (strstr(ev, "\"kind\":\"admin_reset\"")) {
            found = 1;
            CHECK_CONTAINS(ev, "\"actor\":\"helpdesk\"");
            CHECK_CONTAINS(ev, "\"user\":\"bob\"");
            CHECK_CONTAINS(ev, "\"reason\":\"lost phone\"");
        }
        free(ev);
    }
    CHECK_MSG(found, "no admin_reset event: %s", kinds);

    /* The same through twofa_admin_run. */
    json = SENT;
    EXPECT_OK(twofa_admin_run(f.adm, "alice", "{\"op\":\"export_user\",\"key\":\"" EXPORT_KEY "\"}", &json, &err),
              &err);
    CHECK_CONTAINS(json, "\"type\":\"exported\"");
    jfree(json);
out:
    teardown(&f);
}

static void test_emit_action(void) {
    env *e = env_new(T0);
    twofa_core *core = (twofa_core *)SENT_PTR;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_core_new(CONFIG, &core, &err), &err);
    drive_opts o = {0};
    char *json = SENT;

    /* An admin import: the event comes after the write, right before DONE. */
    twofa_operation *op = (twofa_operation *)SENT_PTR;
    EXPECT_OK(twofa_admin_operation_new(core, "alice",
                                        "{\"op\":\"totp_import\",\"secret\":\"" SECRET_A
                                        "\",\"algorithm\":\"SHA1\",\"digits\":6,\"period\":30}",
                                        T0, &op, &err),
              &err);
    EXPECT_OK(drive_op(op, e, &o, &json, &err), &err);
    twofa_operation_free(op);
    CHECK_STR(o.trace, "LWE.");
    CHECK_STR(o.events, "method_added");
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    jfree(json);
    CHECK_INT(events_count(&e->events), 0); /* the env's callback is not involved */

    /* A sign-in: the challenge, then the verification and its event. */
    op = (twofa_operation *)SENT_PTR;
    EXPECT_OK(twofa_operation_new(core, "alice", "{\"op\":\"login_begin\"}", T0, &op, &err), &err);
    json = SENT;
    EXPECT_OK(drive_op(op, e, &o, &json, &err), &err);
    twofa_operation_free(op);
    CHECK_STR(o.events, "");
    char *challenge = json_str(json, "challenge_id");
    jfree(json);
    char request[512];
    snprintf(request, sizeof request,
             "{\"op\":\"login_verify\",\"challenge\":\"%s\",\"proof\":{\"kind\":\"totp\",\"value\":\"%s\"}}",
             challenge ? challenge : "x", CODE_A_T0);
    EXPECT_OK(twofa_operation_new(core, "alice", request, T0, &op, &err), &err);

    /* Step by step: LOAD, WRITE, then EMIT with the event JSON. */
    twofa_action a;
    for (int i = 0; i < 10; i++) {
        memset(&a, 0, sizeof a);
        EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
        if (a.kind == TWOFA_ACTION_EMIT || a.kind == TWOFA_ACTION_DONE) break;
        CHECK(a.event_json == NULL);
        if (a.kind == TWOFA_ACTION_LOAD) {
            pthread_mutex_lock(&e->store.mu);
            const uint8_t *bytes = NULL;
            size_t len = 0;
            uint64_t version = 0;
            int32_t rc = store_get(&e->store, a.key, NULL, &bytes, &len, &version);
            CHECK_INT(twofa_operation_feed_load(op, rc, NULL, bytes, len, version), TWOFA_OK);
            pthread_mutex_unlock(&e->store.mu);
        } else if (a.kind == TWOFA_ACTION_WRITE) {
            pthread_mutex_lock(&e->store.mu);
            uint64_t v = 0;
            int32_t rc = store_put(&e->store, a.key, a.bytes, a.len, a.expected_version, &v);
            pthread_mutex_unlock(&e->store.mu);
            CHECK_INT(twofa_operation_feed_write(op, rc, NULL, v), TWOFA_OK);
        } else {
            check_failed(__FILE__, __LINE__, "unexpected action %d", a.kind);
            break;
        }
    }
    CHECK_INT(a.kind, TWOFA_ACTION_EMIT);
    CHECK(a.key == NULL && a.to == NULL && a.bytes == NULL && a.len == 0);
    CHECK_CONTAINS(a.event_json, "\"kind\":\"login_succeeded\"");
    CHECK_CONTAINS(a.event_json, "\"user\":\"alice\"");
    CHECK_CONTAINS(a.event_json, "\"at\":1700000000");
    CHECK(a.event_json && strstr(a.event_json, CODE_A_T0) == NULL);
    /* finish before the event is taken: refused, the operation goes on. */
    json = SENT;
    EXPECT_ERR(twofa_operation_finish(op, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    EXPECT_ERR(twofa_operation_feed_emitted(NULL, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(twofa_operation_feed_emitted(NULL, NULL), TWOFA_INVALID_INPUT);
    EXPECT_OK(twofa_operation_feed_emitted(op, &err), &err);
    EXPECT_OK(twofa_operation_next(op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE);
    CHECK(a.event_json == NULL);
    EXPECT_OK(twofa_operation_finish(op, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    char *token = json_str(json, "token");
    jfree(json);
    EXPECT_ERR(twofa_operation_feed_emitted(op, &err), TWOFA_INVALID_INPUT, &err); /* finished */
    twofa_operation_free(op);
    free(challenge);
    free(token);

    /* On a built-in store, twofa_store_run_operation stops at the EMIT. */
    twofa_store *store = (twofa_store *)SENT_PTR;
    EXPECT_OK(twofa_store_new_memory(&store, &err), &err);
    op = (twofa_operation *)SENT_PTR;
    EXPECT_OK(twofa_operation_new(core, "bob", "{\"op\":\"mark_order_created\"}", T0, &op, &err), &err);
    EXPECT_OK(twofa_store_run_operation(store, op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_EMIT);
    CHECK_CONTAINS(a.event_json, "\"kind\":\"two_factor_required\"");
    EXPECT_OK(twofa_operation_feed_emitted(op, &err), &err);
    EXPECT_OK(twofa_store_run_operation(store, op, &a, &err), &err);
    CHECK_INT(a.kind, TWOFA_ACTION_DONE);
    json = SENT;
    EXPECT_OK(twofa_operation_finish(op, &json, &err), &err);
    jfree(json);
    twofa_operation_free(op);
    twofa_store_free(store);
    twofa_core_free(core);
    env_free(e);
}

void register_account(void) {
    add_test("events: TOTP enrol, sign-in, wrong code; no secrets", test_events_for_enrol_sign_in_and_wrong_code);
    add_test("remembered devices: token, other user, revoke, remove", test_remembered_devices);
    add_test("admin: TWOFA_FORBIDDEN without \"admin\": true", test_admin_needs_the_capability);
    add_test("admin: export, tampered import, import, reset", test_admin_reset_export_import);
    add_test("sans-IO: the EMIT action and feed_emitted", test_emit_action);
}
