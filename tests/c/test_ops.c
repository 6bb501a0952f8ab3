/* Every canonical operation end to end, through an engine on the C host. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs login_begin + login_verify(kind, proof); returns the status and the JSON in *out. */
static twofa_status login(fixture *f, const char *user, const char *kind, const char *proof, char **out,
                          twofa_error **err) {
    char *challenge = begin_challenge(f->eng, user);
    if (!challenge) return -1;
    twofa_status st = twofa_login_verify(f->eng, user, challenge, kind, proof, out, err);
    free(challenge);
    return st;
}

static void test_security_status_and_contact_email(void) {
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    CHECK_STATUS_CONTAINS(f.eng, "alice",
                          "\"type\":\"status\"",
                          "\"methods\":[]",
                          "\"two_factor_required\":false",
                          "\"contact_email\":null",
                          "\"locked_until\":null");
    CHECK_INT(store_count(&f.e->store), 0); /* a read writes nothing */

    json = SENT;
    /* No method yet: no step-up token is needed. The first address is not mailed. */
    EXPECT_OK(twofa_set_contact_email(f.eng, "alice", "alice@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"done\"");
    CHECK_CONTAINS(json, "\"sent\":0");
    CHECK_CONTAINS(json, "\"failed\":[]");
    jfree(json);
    CHECK(store_has(&f.e->store, "user/alice"));
    CHECK_INT(mail_count(&f.e->mail), 0);

    /* Changing it tells the previous address and the new one. */
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(f.eng, "alice", "alice2@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"sent\":2");
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 2);
    CHECK_STR(f.e->mail.msgs[0].to, "alice@example.com");
    CHECK_CONTAINS(f.e->mail.msgs[0].text, "alice2@example.com");
    char *to = mail_last_field(&f.e->mail, 0);
    CHECK_STR(to, "alice2@example.com");
    free(to);
    char *text = mail_last_field(&f.e->mail, 2);
    CHECK_CONTAINS(text, "alice2@example.com");
    free(text);

    /* A notice that cannot be delivered is reported, never fatal. */
    f.e->mail.fail_at = -1;
    json = SENT;
    EXPECT_OK(twofa_set_contact_email(f.eng, "alice", "alice3@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"sent\":0");
    CHECK_CONTAINS(json, "\"failed\":[\"alice2@example.com: ");
    CHECK_CONTAINS(json, "\"alice3@example.com: ");
    jfree(json);
    f.e->mail.fail_at = 0;

    /* A malformed address changes nothing. */
    snapshot *before = store_snapshot(&f.e->store);
    json = SENT;
    EXPECT_ERR(twofa_set_contact_email(f.eng, "alice", "not an address", NULL, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    CHECK(json == SENT);
    CHECK_UNCHANGED(&f.e->store, before);

    CHECK_STATUS_CONTAINS(f.eng, "alice", "\"contact_email\":\"alice3@example.com\"");
    teardown(&f);
}

static void test_mark_order_created(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    /* Without orders and methods, sign-in needs no second factor. */
    EXPECT_OK(twofa_login_begin(f.eng, "bob", &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"challenge\"");
    CHECK_CONTAINS(json, "\"challenge_id\":null");
    CHECK_CONTAINS(json, "\"second_factor_required\":false");
    CHECK_CONTAINS(json, "\"enrollment_required\":false");
    jfree(json);

    EXPECT_OK(twofa_mark_order_created(f.eng, "bob", &err), &err);
    EXPECT_OK(twofa_mark_order_created(f.eng, "bob", &err), &err); /* idempotent */
    CHECK_STATUS_CONTAINS(f.eng, "bob", "\"two_factor_required\":true", "\"compliant\":false");
    json = SENT;
    EXPECT_OK(twofa_login_begin(f.eng, "bob", &json, &err), &err);
    CHECK_CONTAINS(json, "\"enrollment_required\":true");
    CHECK_CONTAINS(json, "\"challenge_id\":null");
    jfree(json);
    teardown(&f);
}

static void test_totp_import_known_vector(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    EXPECT_OK(twofa_admin_totp_import(f.adm, "carol", SECRET_A, "SHA1", 6, 30, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    CHECK_CONTAINS(json, "\"kind\":\"totp\"");
    CHECK_CONTAINS(json, "\"step_up\":null"); /* an import is not a sign-in */
    char *id = json_str(json, "id");
    CHECK_STR(id, "totp-1");
    free(id);
    jfree(json);

    char *challenge = begin_challenge(f.eng, "carol");
    json = SENT;
    EXPECT_OK(twofa_login_verify(f.eng, "carol", challenge, "totp", CODE_A_T0, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    CHECK_CONTAINS(json, "\"method\":\"totp\"");
    CHECK_CONTAINS(json, "\"method_id\":\"totp-1\"");
    CHECK_CONTAINS(json, "\"recovery_codes_left\":null");
    char *token = json_str(json, "token");
    CHECK(token != NULL && strlen(token) > 16);
    uint64_t exp = 0;
    CHECK(json_u64(json_find(json, "expires_at"), &exp) && exp == T0 + 600);
    free(token);
    jfree(json);

    /* The challenge is consumed; the same code is a replay on a new challenge. */
    json = SENT;
    EXPECT_ERR(twofa_login_verify(f.eng, "carol", challenge, "totp", CODE_A_T0, &json, &err), TWOFA_NOT_FOUND, &err);
    free(challenge);
    EXPECT_ERR(login(&f, "carol", "totp", CODE_A_T0, &json, &err), TWOFA_REPLAYED, &err);
    CHECK(json == SENT);

    /* Malformed codes are invalid input; a wrong one is invalid_code. */
    EXPECT_ERR(login(&f, "carol", "totp", "12345", &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(login(&f, "carol", "totp", "abcdef", &json, &err), TWOFA_INVALID_INPUT, &err);
    env_set_now(f.e, T0 + 30);
    char code[16];
    wrong_code(SECRET_A, T0 + 30, 6, code);
    EXPECT_ERR(login(&f, "carol", "totp", code, &json, &err), TWOFA_INVALID_CODE, &err);
    /* The next step's code works. */
    CHECK(oath_code(SECRET_A, T0 + 30, 6, "SHA1", code));
    EXPECT_OK(login(&f, "carol", "totp", code, &json, &err), &err);
    jfree(json);
    /* An email proof for a user without email: not enrolled. */
    json = SENT;
    EXPECT_ERR(login(&f, "carol", "email", "123456", &json, &err), TWOFA_NOT_ENROLLED, &err);
    CHECK_STATUS_CONTAINS(f.eng, "carol", "\"last_used\":1700000030", "\"locked_until\":null");
    teardown(&f);
}

static void rfc_vector(const char *secret, const char *algorithm, const char *expected) {
    fixture f = setup(CONFIG, 59);
    twofa_error *err = NULL;
    char *json = SENT;
    char code[16];
    /* oathtool agrees with the RFC. */
    CHECK(oath_code(secret, 59, 8, algorithm, code));
    CHECK_STR(code, expected);
    EXPECT_OK(twofa_admin_totp_import(f.adm, "rfc", secret, algorithm, 8, 30, &json, &err), &err);
    jfree(json);
    json = SENT;
    EXPECT_OK(login(&f, "rfc", "totp", expected, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    jfree(json);
    teardown(&f);
}

static void test_totp_rfc6238_vectors(void) {
    rfc_vector(RFC_SHA1, "SHA1", "94287082");
    rfc_vector(RFC_SHA256, "SHA256", "46119246");
    rfc_vector(RFC_SHA512, "SHA512", "90693936");
}

static void test_admin_import_errors_and_delete(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "MD5", 6, 30, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "sha1", 6, 30, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "SHA1", 5, 30, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "SHA1", 9, 30, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "SHA1", 6, 0, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", SECRET_A, "SHA1", 6, 301, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", "not base32!", "SHA1", 6, 30, &json, &err), TWOFA_INVALID_INPUT,
               &err);
    EXPECT_ERR(twofa_admin_totp_import(f.adm, "dan", "JBSWY3DP", "SHA1", 6, 30, &json, &err), TWOFA_INVALID_INPUT,
               &err); /* 40 bits */
    CHECK(json == SENT);
    CHECK_INT(store_count(&f.e->store), 0);

    EXPECT_ERR(twofa_admin_delete_user(f.adm, "dan", &err), TWOFA_NOT_FOUND, &err);
    IMPORT_TOTP(f.adm, "dan", SECRET_A);
    SET_CONTACT(f.eng, "erin", "erin@example.com");
    CHECK_INT(store_count(&f.e->store), 2);
    EXPECT_OK(twofa_admin_delete_user(f.adm, "dan", &err), &err);
    CHECK(!store_has(&f.e->store, "user/dan"));
    CHECK(store_has(&f.e->store, "user/erin"));
    EXPECT_ERR(twofa_admin_delete_user(f.adm, "dan", &err), TWOFA_NOT_FOUND, &err);
    CHECK_STATUS_CONTAINS(f.eng, "dan", "\"methods\":[]");
    teardown(&f);
}

static void test_lockout_and_retry_after(void) {
    fixture f = setup(CONFIG_LOCKOUT, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    IMPORT_TOTP(f.adm, "lock", SECRET_A);
    char *challenge = begin_challenge(f.eng, "lock");
    char bad[16];
    wrong_code(SECRET_A, T0, 6, bad);
    for (int i = 0; i < 3; i++) {
        json = SENT;
        EXPECT_ERR(twofa_login_verify(f.eng, "lock", challenge, "totp", bad, &json, &err), TWOFA_INVALID_CODE, &err);
    }
    /* Locked: even the right code is refused, with retry_after. */
    twofa_status st = twofa_login_verify(f.eng, "lock", challenge, "totp", CODE_A_T0, &json, &err);
    CHECK(err != NULL && err->retry_after == 60);
    EXPECT_ERR(st, TWOFA_LOCKED_OUT, &err);
    CHECK(json == SENT);
    env_set_now(f.e, T0 + 20);
    st = twofa_login_verify(f.eng, "lock", challenge, "totp", CODE_A_T0, &json, &err);
    CHECK(err != NULL && err->retry_after == 40);
    CHECK_CONTAINS(err ? err->message : NULL, "40");
    EXPECT_ERR(st, TWOFA_LOCKED_OUT, &err);
    CHECK_STATUS_CONTAINS(f.eng, "lock", "\"locked_until\":1700000060");
    /* After the lockout the right code works. */
    env_set_now(f.e, T0 + 61);
    char code[16];
    CHECK(oath_code(SECRET_A, T0 + 61, 6, "SHA1", code));
    json = SENT;
    EXPECT_OK(twofa_login_verify(f.eng, "lock", challenge, "totp", code, &json, &err), &err);
    jfree(json);
    free(challenge);
    teardown(&f);
}

static void test_expired_challenge(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    IMPORT_TOTP(f.adm, "exp", SECRET_A);
    char *challenge = begin_challenge(f.eng, "exp");
    env_set_now(f.e, T0 + 300);
    char code[16];
    CHECK(oath_code(SECRET_A, T0 + 300, 6, "SHA1", code));
    json = SENT;
    EXPECT_ERR(twofa_login_verify(f.eng, "exp", challenge, "totp", code, &json, &err), TWOFA_EXPIRED, &err);
    EXPECT_ERR(twofa_login_verify(f.eng, "exp", "no-such-challenge", "totp", code, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);
    free(challenge);
    teardown(&f);
}

static void test_totp_enroll_begin_confirm(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    /* Nothing pending. */
    EXPECT_ERR(twofa_totp_enroll_confirm(f.eng, "fay", "123456", NULL, &json, &err), TWOFA_NOT_ENROLLED, &err);
    EXPECT_OK(twofa_totp_enroll_begin(f.eng, "fay", "fay@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"totp_setup\"");
    CHECK_CONTAINS(json, "\"uri\":\"otpauth://totp/");
    CHECK_CONTAINS(json, "<svg");
    uint64_t exp = 0;
    CHECK(json_u64(json_find(json, "expires_at"), &exp) && exp == T0 + 900);
    char *secret = json_str(json, "secret");
    CHECK(secret != NULL && strlen(secret) >= 32);
    char *uri = json_str(json, "uri");
    CHECK_CONTAINS(uri, secret ? secret : "?");
    CHECK_CONTAINS(uri, "issuer=Example");
    free(uri);
    jfree(json);
    CHECK_STATUS_CONTAINS(f.eng, "fay", "\"pending\":{\"totp\":true", "\"methods\":[]");

    env_set_now(f.e, T0 + 100);
    char code[16] = "", bad[16] = "";
    if (secret) {
        CHECK(oath_code(secret, T0 + 100, 6, "SHA1", code));
        wrong_code(secret, T0 + 100, 6, bad);
    }
    json = SENT;
    EXPECT_ERR(twofa_totp_enroll_confirm(f.eng, "fay", bad, NULL, &json, &err), TWOFA_INVALID_CODE, &err);
    EXPECT_ERR(twofa_totp_enroll_confirm(f.eng, "fay", "1234", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_totp_enroll_confirm(f.eng, "fay", code, NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    CHECK_CONTAINS(json, "\"kind\":\"totp\"");
    CHECK_CONTAINS(json, "\"label\":\"Authenticator app\"");
    char *token = json_str(json, "token"); /* the first method yields a step-up token */
    CHECK(token != NULL);
    jfree(json);

    /* A second enrolment needs the step-up token. */
    json = SENT;
    EXPECT_ERR(twofa_totp_enroll_begin(f.eng, "fay", "fay@example.com", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_totp_enroll_begin(f.eng, "fay", "fay@example.com", "forged", &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_totp_enroll_begin(f.eng, "fay", "fay@example.com", token, &json, &err), &err);
    char *secret2 = json_str(json, "secret");
    CHECK(secret2 && secret && strcmp(secret, secret2) != 0);
    jfree(json);
    /* The pending enrolment lapses after 900 s. */
    env_set_now(f.e, T0 + 100 + 900);
    if (secret2) CHECK(oath_code(secret2, T0 + 1000, 6, "SHA1", code));
    json = SENT;
    EXPECT_ERR(twofa_totp_enroll_confirm(f.eng, "fay", code, token, &json, &err), TWOFA_EXPIRED, &err);
    /* The app enrolled first still signs in. */
    CHECK(oath_code(secret, T0 + 1000, 6, "SHA1", code));
    EXPECT_OK(login(&f, "fay", "totp", code, &json, &err), &err);
    jfree(json);
    free(secret);
    free(secret2);
    free(token);
    teardown(&f);
}

static void test_email_enroll_and_sign_in(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    char code[16];
    EXPECT_ERR(twofa_email_enroll_confirm(f.eng, "gina", "123456", NULL, &json, &err), TWOFA_NOT_FOUND, &err);
    EXPECT_OK(twofa_email_enroll_begin(f.eng, "gina", "gina@example.com", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"code_sent\"");
    CHECK_CONTAINS(json, "\"sent_to\":[\"gina@example.com\"]");
    uint64_t v = 0;
    CHECK(json_u64(json_find(json, "expires_at"), &v) && v == T0 + 600);
    CHECK(json_u64(json_find(json, "resend_after"), &v) && v == T0 + 60);
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 1);
    CHECK(mail_last_code(&f.e->mail, "gina@example.com", code));
    CHECK_INT(strlen(code), 6);
    char *subject = mail_last_field(&f.e->mail, 1);
    char *html = mail_last_field(&f.e->mail, 3);
    CHECK(subject && strlen(subject) > 0);
    CHECK_CONTAINS(html, code);
    free(subject);
    free(html);

    /* Within the cooldown: rate limited, with retry_after. */
    env_set_now(f.e, T0 + 10);
    json = SENT;
    twofa_status st = twofa_email_enroll_begin(f.eng, "gina", "gina@example.com", NULL, &json, &err);
    CHECK(err != NULL && err->retry_after == 50);
    EXPECT_ERR(st, TWOFA_RATE_LIMITED, &err);
    CHECK(json == SENT);
    CHECK_INT(mail_count(&f.e->mail), 1);

    CHECK_STATUS_CONTAINS(f.eng, "gina", "\"email\":\"gina@example.com\"");

    /* Wrong, malformed, then the right code. */
    char bad[16];
    snprintf(bad, sizeof bad, "%06d", (atoi(code) + 1) % 1000000);
    json = SENT;
    EXPECT_ERR(twofa_email_enroll_confirm(f.eng, "gina", bad, NULL, &json, &err), TWOFA_INVALID_CODE, &err);
    EXPECT_ERR(twofa_email_enroll_confirm(f.eng, "gina", "12x456", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_OK(twofa_email_enroll_confirm(f.eng, "gina", code, NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    CHECK_CONTAINS(json, "\"kind\":\"email\"");
    CHECK_CONTAINS(json, "\"label\":\"gina@example.com\"");
    char *token = json_str(json, "token");
    CHECK(token != NULL);
    jfree(json);
    /* The code is single-use. */
    json = SENT;
    EXPECT_ERR(twofa_email_enroll_confirm(f.eng, "gina", code, token, &json, &err), TWOFA_NOT_FOUND, &err);

    /* Sign in with an emailed code. */
    CHECK_INT(mail_count(&f.e->mail), 2); /* the code, then the method_added notice */
    char *challenge = begin_challenge(f.eng, "gina");
    json = SENT;
    EXPECT_ERR(twofa_login_send_email_code(f.eng, "gina", "nope", &json, &err), TWOFA_NOT_FOUND, &err);
    EXPECT_OK(twofa_login_send_email_code(f.eng, "gina", challenge, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"code_sent\"");
    CHECK_CONTAINS(json, "\"sent_to\":[\"g***@example.com\"]");
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), 3);
    CHECK(mail_last_code(&f.e->mail, "gina@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_login_verify(f.eng, "gina", challenge, "email", code, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    CHECK_CONTAINS(json, "\"method\":\"email\"");
    CHECK_CONTAINS(json, "\"method_id\":\"email-1\"");
    jfree(json);
    free(challenge);
    /* A used sign-in code is a replay. */
    json = SENT;
    EXPECT_ERR(login(&f, "gina", "email", code, &json, &err), TWOFA_REPLAYED, &err);
    /* An email method is named by its address. */
    EXPECT_ERR(twofa_rename_method(f.eng, "gina", "email-1", "Work", token, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    free(token);
    teardown(&f);
}

static int recovery_shape(const char *c) {
    if (!c || strlen(c) != 11 || c[5] != '-') return 0;
    for (int i = 0; i < 11; i++)
        if (i != 5 && !isalnum((unsigned char)c[i])) return 0;
    return 1;
}

static void test_recovery_rename_remove_step_up(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    /* No method yet: no recovery codes. */
    EXPECT_ERR(twofa_recovery_codes_generate(f.eng, "hal", NULL, &json, &err), TWOFA_NOT_ENROLLED, &err);
    char *token = import_and_login(f.e, f.eng, "hal", SECRET_A);
    CHECK(token != NULL);

    EXPECT_ERR(twofa_recovery_codes_generate(f.eng, "hal", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    EXPECT_ERR(twofa_recovery_codes_generate(f.eng, "hal", "garbage", &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_recovery_codes_generate(f.eng, "hal", token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"recovery_codes\"");
    CHECK_INT(json_array_len(json, "codes"), 10);
    char *c0 = json_array_str(json, "codes", 0);
    char *c1 = json_array_str(json, "codes", 1);
    CHECK(recovery_shape(c0));
    CHECK(recovery_shape(c1));
    jfree(json);
    CHECK_STATUS_CONTAINS(f.eng, "hal", "\"recovery_codes_left\":10");

    /* Sign in with a recovery code; it is single-use; case and hyphens do not matter. */
    json = SENT;
    EXPECT_OK(login(&f, "hal", "recovery", c0, &json, &err), &err);
    CHECK_CONTAINS(json, "\"method\":\"recovery\"");
    CHECK_CONTAINS(json, "\"method_id\":null");
    CHECK_CONTAINS(json, "\"recovery_codes_left\":9");
    jfree(json);
    json = SENT;
    EXPECT_ERR(login(&f, "hal", "recovery", c0, &json, &err), TWOFA_INVALID_CODE, &err);
    EXPECT_ERR(login(&f, "hal", "recovery", "not a code!", &json, &err), TWOFA_INVALID_INPUT, &err);
    char c1b[16] = "";
    if (c1) {
        size_t k = 0;
        for (const char *p = c1; *p; p++)
            if (*p != '-') c1b[k++] = (char)toupper((unsigned char)*p);
        c1b[k] = '\0';
    }
    EXPECT_OK(login(&f, "hal", "recovery", c1b, &json, &err), &err);
    CHECK_CONTAINS(json, "\"recovery_codes_left\":8");
    jfree(json);
    free(c0);
    free(c1);

    /* Rename. */
    json = SENT;
    EXPECT_ERR(twofa_rename_method(f.eng, "hal", "totp-1", "My phone", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED,
               &err);
    EXPECT_ERR(twofa_rename_method(f.eng, "hal", "totp-9", "My phone", token, &json, &err), TWOFA_NOT_FOUND, &err);
    EXPECT_ERR(twofa_rename_method(f.eng, "hal", "totp-1", "   ", token, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    EXPECT_OK(twofa_rename_method(f.eng, "hal", "totp-1", "My phone", token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"method\"");
    CHECK_CONTAINS(json, "\"id\":\"totp-1\"");
    CHECK_CONTAINS(json, "\"label\":\"My phone\"");
    CHECK_CONTAINS(json, "\"flagged\":false");
    jfree(json);

    /* Remove: refused while it is the only method of a user who must have 2FA. */
    EXPECT_OK(twofa_mark_order_created(f.eng, "hal", &err), &err);
    json = SENT;
    EXPECT_ERR(twofa_remove_method(f.eng, "hal", "totp-1", token, &json, &err), TWOFA_POLICY_VIOLATION, &err);
    EXPECT_ERR(twofa_remove_method(f.eng, "hal", "totp-1", NULL, &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    EXPECT_ERR(twofa_remove_method(f.eng, "hal", "nope", token, &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);
    /* Add an email method (step-up), then the app may go; the email address is told. */
    EXPECT_OK(twofa_email_enroll_begin(f.eng, "hal", "hal@example.com", token, &json, &err), &err);
    jfree(json);
    char code[16];
    CHECK(mail_last_code(&f.e->mail, "hal@example.com", code));
    json = SENT;
    EXPECT_OK(twofa_email_enroll_confirm(f.eng, "hal", code, token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"step_up\":null"); /* not the first method */
    jfree(json);
    size_t mails = mail_count(&f.e->mail);
    json = SENT;
    EXPECT_OK(twofa_remove_method(f.eng, "hal", "totp-1", token, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"done\"");
    CHECK_CONTAINS(json, "\"sent\":1");
    jfree(json);
    CHECK_INT(mail_count(&f.e->mail), mails + 1);
    json = SENT;
    EXPECT_OK(twofa_security_status(f.eng, "hal", &json, &err), &err);
    CHECK(strstr(json, "totp-1") == NULL);
    CHECK_CONTAINS(json, "\"id\":\"email-");
    jfree(json);
    /* Removing a method revokes the step-up tokens. */
    json = SENT;
    EXPECT_ERR(twofa_recovery_codes_generate(f.eng, "hal", token, &json, &err), TWOFA_STEP_UP_REQUIRED, &err);
    free(token);
    teardown(&f);
}

static void test_webauthn_error_paths(void) {
    twofa_error *err = NULL;
    char *json = SENT;
    /* Without a webauthn config. */
    fixture f = setup(CONFIG, T0);
    EXPECT_ERR(twofa_webauthn_register_begin(f.eng, "ivy", "YubiKey", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_CONTAINS(twofa_last_error_message(), "webauthn");
    EXPECT_ERR(twofa_webauthn_register_finish(f.eng, "ivy", "garbage", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    char *token = import_and_login(f.e, f.eng, "ivy", SECRET_A);
    EXPECT_ERR(login(&f, "ivy", "webauthn", "{}", &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(json == SENT);
    free(token);
    teardown(&f);

    /* With one: begin works, a garbage response is rejected and changes nothing. */
    f = setup(CONFIG_WEBAUTHN, T0);
    EXPECT_ERR(twofa_webauthn_register_finish(f.eng, "ivy", "{}", NULL, &json, &err), TWOFA_NOT_ENROLLED, &err);
    EXPECT_ERR(twofa_webauthn_register_begin(f.eng, "ivy", "", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_OK(twofa_webauthn_register_begin(f.eng, "ivy", "YubiKey", NULL, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"webauthn_registration\"");
    char *options = json_str(json, "options_json");
    CHECK_CONTAINS(options, "publicKey");
    CHECK_CONTAINS(options, "example.com");
    free(options);
    jfree(json);
    snapshot *before = store_snapshot(&f.e->store);
    /* One string per element: the last is split across two lines, so it is built apart (clang
       warns about adjacent literals inside an initializer list). */
    const char *forged = "{\"id\":\"AAAA\",\"rawId\":\"AAAA\",\"type\":\"public-key\","
                         "\"response\":{\"clientDataJSON\":\"e30\",\"attestationObject\":\"oA\"}}";
    const char *garbage[] = {"garbage", "{}", "[]", forged};
    for (size_t i = 0; i < 4; i++) {
        json = SENT;
        twofa_status st = twofa_webauthn_register_finish(f.eng, "ivy", garbage[i], NULL, &json, &err);
        CHECK_MSG(st == TWOFA_WEBAUTHN_REJECTED || st == TWOFA_INVALID_INPUT, "register_finish(%s): %d", garbage[i],
                  st);
        EXPECT_ERR(st, st, &err);
        CHECK(json == SENT);
    }
    CHECK_UNCHANGED(&f.e->store, before);
    CHECK_STATUS_CONTAINS(f.eng, "ivy", "\"webauthn\":true");
    teardown(&f);
}

/* twofa_engine_run / twofa_admin_run: any request as the core's request JSON, with the outcome
 * JSON of twofa_operation_finish; a malformed request changes nothing. */
static void test_run_request_json(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;

    /* The same JSON as the typed export and as the sans-IO operation. */
    EXPECT_OK(twofa_engine_run(f.eng, "rita", "{\"op\":\"security_status\"}", &json, &err), &err);
    char *typed = SENT;
    EXPECT_OK(twofa_security_status(f.eng, "rita", &typed, &err), &err);
    CHECK_STR(json, typed);
    jfree(typed);
    twofa_core *core = NULL;
    twofa_operation *op = NULL;
    char *finished = SENT;
    EXPECT_OK(twofa_core_new(CONFIG, &core, &err), &err);
    EXPECT_OK(twofa_operation_new(core, "rita", "{\"op\":\"security_status\"}", T0, &op, &err), &err);
    EXPECT_OK(drive_op(op, f.e, NULL, &finished, &err), &err);
    CHECK_STR(json, finished);
    jfree(finished);
    twofa_operation_free(op);
    twofa_core_free(core);
    jfree(json);

    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "rita", "{\"op\":\"set_contact_email\",\"address\":\"rita@example.com\"}",
                               &json, &err),
              &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":0,\"failed\":[]}");
    jfree(json);
    CHECK(store_has(&f.e->store, "user/rita"));
    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "rita", "{\"op\":\"mark_order_created\"}", &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":0,\"failed\":[]}");
    jfree(json);

    /* Admin: import, then sign in through twofa_engine_run. */
    json = SENT;
    EXPECT_OK(twofa_admin_run(f.adm, "rita",
                              "{\"op\":\"totp_import\",\"secret\":\"" SECRET_A
                              "\",\"algorithm\":\"SHA1\",\"digits\":6,\"period\":30}",
                              &json, &err),
              &err);
    CHECK_CONTAINS(json, "{\"type\":\"method_added\",\"method\":{\"id\":\"totp-1\",\"kind\":\"totp\"");
    CHECK_CONTAINS(json, "\"step_up\":null");
    jfree(json);
    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "rita", "{\"op\":\"login_begin\"}", &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"challenge\"");
    char *challenge = json_str(json, "challenge_id");
    CHECK(challenge != NULL);
    jfree(json);
    char request[256];
    snprintf(request, sizeof request,
             "{\"op\":\"login_verify\",\"challenge\":\"%s\",\"proof\":{\"kind\":\"totp\",\"value\":\"%s\"}}",
             challenge ? challenge : "", CODE_A_T0);
    free(challenge);
    json = SENT;
    EXPECT_OK(twofa_engine_run(f.eng, "rita", request, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"login_success\"");
    CHECK_CONTAINS(json, "\"method_id\":\"totp-1\"");
    jfree(json);
    /* The operation's own errors come back as from the typed exports. */
    json = SENT;
    EXPECT_ERR(twofa_engine_run(f.eng, "rita", request, &json, &err), TWOFA_NOT_FOUND, &err);
    EXPECT_ERR(twofa_engine_run(f.eng, "rita", "{\"op\":\"recovery_codes_generate\"}", &json, &err),
               TWOFA_STEP_UP_REQUIRED, &err);
    CHECK(json == SENT);

    /* Malformed requests: TWOFA_INVALID_INPUT with a message, nothing read or written, out_json
     * untouched, not even the clock read. */
    static const char *const bad_user[] = {
        "not json",
        "",
        "{\"op\":\"no_such_op\"}",
        "{\"op\":\"security_status\",\"extra\":1}",
        "{\"op\":\"set_contact_email\",\"address\":\"a@example.com\",\"address\":\"b@example.com\"}",
        "{\"op\":\"login_verify\",\"challenge\":\"c\",\"proof\":{\"kind\":\"sms\",\"value\":\"1\"}}",
        "{\"op\":\"set_contact_email\",\"address\":7}",
        "{\"op\":\"delete_user\"}", /* an admin request is not a user request */
        "[]",
    };
    static const char *const bad_admin[] = {
        "{\"op\":\"security_status\"}", /* a user request is not an admin request */
        "{\"op\":\"totp_import\",\"secret\":\"" SECRET_A "\"}",
        "{\"op\":\"delete_user\",\"user\":\"x\"}",
        "{",
    };
    snapshot *before = store_snapshot(&f.e->store);
    size_t mails = mail_count(&f.e->mail);
    store_arm(&f.e->store, 0);
    atomic_store(&f.e->now_calls, 0);
    for (size_t i = 0; i < sizeof bad_user / sizeof bad_user[0]; i++) {
        json = SENT;
        twofa_status st = twofa_engine_run(f.eng, "rita", bad_user[i], &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "engine_run(%s): %d", bad_user[i], st);
        CHECK_MSG(err != NULL && err->message != NULL && strstr(err->message, "request") != NULL,
                  "engine_run(%s): message %s", bad_user[i], err && err->message ? err->message : "(none)");
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        CHECK(json == SENT);
    }
    for (size_t i = 0; i < sizeof bad_admin / sizeof bad_admin[0]; i++) {
        json = SENT;
        twofa_status st = twofa_admin_run(f.adm, "rita", bad_admin[i], &json, &err);
        CHECK_MSG(st == TWOFA_INVALID_INPUT, "admin_run(%s): %d", bad_admin[i], st);
        EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
        CHECK(json == SENT);
    }
    json = SENT;
    EXPECT_ERR(twofa_engine_run(f.eng, "rita", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_STR(twofa_last_error_message(), "invalid input: request_json is NULL");
    EXPECT_ERR(twofa_admin_run(f.adm, "rita", NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_run(f.eng, "rita", "{\"op\":\"security_status\"}", NULL, &err), TWOFA_INVALID_INPUT,
               &err);
    CHECK(json == SENT);
    CHECK_INT(f.e->store.calls, 0);
    CHECK_INT(atomic_load(&f.e->now_calls), 0);
    CHECK_INT(mail_count(&f.e->mail), mails);
    CHECK_UNCHANGED(&f.e->store, before);

    /* delete_user, then it is gone. */
    json = SENT;
    EXPECT_OK(twofa_admin_run(f.adm, "rita", "{\"op\":\"delete_user\"}", &json, &err), &err);
    CHECK_STR(json, "{\"type\":\"done\",\"sent\":0,\"failed\":[]}");
    jfree(json);
    CHECK(!store_has(&f.e->store, "user/rita"));
    json = SENT;
    EXPECT_ERR(twofa_admin_run(f.adm, "rita", "{\"op\":\"delete_user\"}", &json, &err), TWOFA_NOT_FOUND, &err);
    CHECK(json == SENT);
    teardown(&f);
}

void register_ops(void) {
    add_test("security_status, set_contact_email", test_security_status_and_contact_email);
    add_test("mark_order_created, login_begin without methods", test_mark_order_created);
    add_test("admin_totp_import + login: 406058 at 1700000000", test_totp_import_known_vector);
    add_test("TOTP RFC 6238 vectors (SHA1/256/512, 8 digits, t=59)", test_totp_rfc6238_vectors);
    add_test("admin_totp_import errors, admin_delete_user", test_admin_import_errors_and_delete);
    add_test("lockout: locked_out with retry_after", test_lockout_and_retry_after);
    add_test("login_verify: expired and unknown challenge", test_expired_challenge);
    add_test("totp_enroll_begin/confirm with oathtool codes", test_totp_enroll_begin_confirm);
    add_test("email enrol + sign-in with the captured code", test_email_enroll_and_sign_in);
    add_test("recovery codes, rename, remove, step-up", test_recovery_rename_remove_step_up);
    add_test("webauthn: error paths", test_webauthn_error_paths);
    add_test("engine_run/admin_run: request JSON in, outcome JSON out", test_run_request_json);
}
