/*
 * The argument conventions of every export: NULL for each pointer argument, invalid UTF-8 and
 * over-long strings give TWOFA_INVALID_INPUT, leave out-parameters untouched and change nothing
 * (no store call, no mail, not even a clock read).
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef twofa_status (*op_call)(twofa_engine *e, twofa_admin *a, const char **s, char **out, twofa_error **err);

typedef struct {
    const char *name;
    int nargs;              /* strings in s[] (s[0] is the user) */
    const char *valid[6];   /* well-formed values */
    unsigned optional;      /* bit i: s[i] may be NULL */
    unsigned step_up;       /* bit i: s[i] is a step-up token (capped at 1024 bytes) */
    int has_out;            /* takes out_json */
    int admin;              /* called on the admin capability */
    op_call call;
    unsigned big;           /* bit i: s[i] is capped at TWOFA_MAX_CONFIG bytes (a document) */
} op_desc;

#define W(fn, body)                                                                                 \
    static twofa_status w_##fn(twofa_engine *e, twofa_admin *a, const char **s, char **out,         \
                               twofa_error **err) {                                                  \
        (void)e;                                                                                    \
        (void)a;                                                                                    \
        (void)s;                                                                                    \
        (void)out;                                                                                  \
        return body;                                                                                \
    }

W(security_status, twofa_security_status(e, s[0], out, err))
W(set_contact_email, twofa_set_contact_email(e, s[0], s[1], s[2], out, err))
W(contact_email_begin, twofa_contact_email_begin(e, s[0], s[1], s[2], out, err))
W(contact_email_confirm, twofa_contact_email_confirm(e, s[0], s[1], s[2], out, err))
W(mark_order_created, twofa_mark_order_created(e, s[0], err))
W(totp_enroll_begin, twofa_totp_enroll_begin(e, s[0], s[1], s[2], out, err))
W(totp_enroll_confirm, twofa_totp_enroll_confirm(e, s[0], s[1], s[2], out, err))
W(email_enroll_begin, twofa_email_enroll_begin(e, s[0], s[1], s[2], out, err))
W(email_enroll_confirm, twofa_email_enroll_confirm(e, s[0], s[1], s[2], out, err))
W(webauthn_register_begin, twofa_webauthn_register_begin(e, s[0], s[1], s[2], out, err))
W(webauthn_register_finish, twofa_webauthn_register_finish(e, s[0], s[1], s[2], out, err))
W(rename_method, twofa_rename_method(e, s[0], s[1], s[2], s[3], out, err))
W(remove_method, twofa_remove_method(e, s[0], s[1], s[2], out, err))
W(recovery_codes_generate, twofa_recovery_codes_generate(e, s[0], s[1], out, err))
W(login_begin, twofa_login_begin(e, s[0], out, err))
W(login_send_email_code, twofa_login_send_email_code(e, s[0], s[1], out, err))
W(login_verify, twofa_login_verify(e, s[0], s[1], s[2], s[3], out, err))
W(admin_totp_import, twofa_admin_totp_import(a, s[0], s[1], s[2], 6, 30, out, err))
W(admin_delete_user, twofa_admin_delete_user(a, s[0], err))
W(engine_run, twofa_engine_run(e, s[0], s[1], out, err))
W(admin_run, twofa_admin_run(a, s[0], s[1], out, err))
W(login_begin_remembered, twofa_login_begin_remembered(e, s[0], s[1], out, err))
W(login_verify_remembering, twofa_login_verify_remembering(e, s[0], s[1], s[2], s[3], true, out, err))
W(revoke_remembered_device, twofa_revoke_remembered_device(e, s[0], s[1], err))
W(revoke_remembered_devices, twofa_revoke_remembered_devices(e, s[0], err))
W(admin_reset_user, twofa_admin_reset_user(a, s[0], s[1], s[2], out, err))
W(admin_export_user, twofa_admin_export_user(a, s[0], s[1], out, err))
W(admin_import_user, twofa_admin_import_user(a, s[0], s[1], s[2], out, err))

static const op_desc ops[] = {
    {"security_status", 1, {"u"}, 0, 0, 1, 0, w_security_status, 0},
    {"set_contact_email", 3, {"u", "a@example.com", "tok"}, 1u << 2, 1u << 2, 1, 0, w_set_contact_email, 0},
    {"contact_email_begin", 3, {"u", "a@example.com", "tok"}, 1u << 2, 1u << 2, 1, 0, w_contact_email_begin, 0},
    {"contact_email_confirm", 3, {"u", "123456", "tok"}, 1u << 2, 1u << 2, 1, 0, w_contact_email_confirm, 0},
    {"mark_order_created", 1, {"u"}, 0, 0, 0, 0, w_mark_order_created, 0},
    {"totp_enroll_begin", 3, {"u", "u@example.com", "tok"}, 1u << 2, 1u << 2, 1, 0, w_totp_enroll_begin, 0},
    {"totp_enroll_confirm", 3, {"u", "123456", "tok"}, 1u << 2, 1u << 2, 1, 0, w_totp_enroll_confirm, 0},
    {"email_enroll_begin", 3, {"u", "a@example.com", "tok"}, 1u << 2, 1u << 2, 1, 0, w_email_enroll_begin, 0},
    {"email_enroll_confirm", 3, {"u", "123456", "tok"}, 1u << 2, 1u << 2, 1, 0, w_email_enroll_confirm, 0},
    {"webauthn_register_begin", 3, {"u", "key", "tok"}, 1u << 2, 1u << 2, 1, 0, w_webauthn_register_begin, 0},
    {"webauthn_register_finish", 3, {"u", "{}", "tok"}, 1u << 2, 1u << 2, 1, 0, w_webauthn_register_finish, 0},
    {"rename_method", 4, {"u", "totp-1", "Phone", "tok"}, 1u << 3, 1u << 3, 1, 0, w_rename_method, 0},
    {"remove_method", 3, {"u", "totp-1", "tok"}, 1u << 2, 1u << 2, 1, 0, w_remove_method, 0},
    {"recovery_codes_generate", 2, {"u", "tok"}, 1u << 1, 1u << 1, 1, 0, w_recovery_codes_generate, 0},
    {"login_begin", 1, {"u"}, 0, 0, 1, 0, w_login_begin, 0},
    {"login_send_email_code", 2, {"u", "chal"}, 0, 0, 1, 0, w_login_send_email_code, 0},
    {"login_verify", 4, {"u", "chal", "totp", "123456"}, 0, 0, 1, 0, w_login_verify, 0},
    {"admin_totp_import", 3, {"u", SECRET_A, "SHA1"}, 0, 0, 1, 1, w_admin_totp_import, 0},
    {"admin_delete_user", 1, {"u"}, 0, 0, 0, 1, w_admin_delete_user, 0},
    {"engine_run", 2, {"u", "{\"op\":\"security_status\"}"}, 0, 0, 1, 0, w_engine_run, 0},
    {"admin_run", 2, {"u", "{\"op\":\"delete_user\"}"}, 0, 0, 1, 1, w_admin_run, 0},
    {"login_begin_remembered", 2, {"u", "dt"}, 1u << 1, 0, 1, 0, w_login_begin_remembered, 0},
    {"login_verify_remembering", 4, {"u", "chal", "totp", "123456"}, 0, 0, 1, 0, w_login_verify_remembering, 0},
    {"revoke_remembered_device", 2, {"u", "dev"}, 0, 0, 0, 0, w_revoke_remembered_device, 0},
    {"revoke_remembered_devices", 1, {"u"}, 0, 0, 0, 0, w_revoke_remembered_devices, 0},
    {"admin_reset_user", 3, {"u", "ops", "lost phone"}, 0, 0, 1, 1, w_admin_reset_user, 0},
    {"admin_export_user", 2, {"u", MASTER_KEY}, 0, 0, 1, 1, w_admin_export_user, 0},
    {"admin_import_user", 3, {"u", "{}", MASTER_KEY}, 0, 0, 1, 1, w_admin_import_user, 1u << 1},
};

/* Calls `d` with `s` (and NULL engine/admin when `null_handle`, NULL out_json when `null_out`),
 * expecting TWOFA_INVALID_INPUT with out untouched, with err given and with err NULL. */
static void expect_invalid(const op_desc *d, twofa_engine *eng, twofa_admin *adm, const char **s, int null_handle,
                           int null_out, const char *what) {
    char *out = SENT;
    twofa_error *err = NULL;
    twofa_engine *e = null_handle ? NULL : eng;
    twofa_admin *a = null_handle ? NULL : adm;
    twofa_status st = d->call(e, a, s, null_out ? NULL : &out, &err);
    if (st != TWOFA_INVALID_INPUT) check_failed(__FILE__, __LINE__, "%s with %s: status %d", d->name, what, st);
    check_error(__FILE__, __LINE__, st, TWOFA_INVALID_INPUT, &err, NULL);
    CHECK_MSG(out == SENT, "%s with %s wrote out_json", d->name, what);
    out = SENT;
    st = d->call(e, a, s, null_out ? NULL : &out, NULL);
    CHECK_MSG(st == TWOFA_INVALID_INPUT, "%s with %s and err NULL: status %d", d->name, what, st);
    CHECK_MSG(out == SENT, "%s with %s wrote out_json", d->name, what);
}

static void test_every_operation_refuses_bad_arguments(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG_WEBAUTHN);
    twofa_admin *adm = admin_of(eng);
    char *too_long = repeat_char('7', TWOFA_MAX_INPUT + 1);
    char *long_user = repeat_char('u', 257);
    char *long_token = repeat_char('t', 1025);
    char *too_big = repeat_char('7', TWOFA_MAX_CONFIG + 1);
    char what[96];
    store_arm(&e->store, 0);
    atomic_store(&e->now_calls, 0);

    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const op_desc *d = &ops[k];
        const char *s[6];
        memcpy(s, d->valid, sizeof s);
        /* NULL engine / admin. */
        expect_invalid(d, eng, adm, s, 1, 0, d->admin ? "NULL admin" : "NULL engine");
        /* NULL out_json. */
        if (d->has_out) expect_invalid(d, eng, adm, s, 0, 1, "NULL out_json");
        for (int i = 0; i < d->nargs; i++) {
            memcpy(s, d->valid, sizeof s);
            if (!(d->optional & (1u << i))) {
                s[i] = NULL;
                snprintf(what, sizeof what, "NULL argument %d", i);
                expect_invalid(d, eng, adm, s, 0, 0, what);
            }
            s[i] = "bad\xc3\x28utf8";
            snprintf(what, sizeof what, "invalid UTF-8 in argument %d", i);
            expect_invalid(d, eng, adm, s, 0, 0, what);
            s[i] = "\xff";
            expect_invalid(d, eng, adm, s, 0, 0, what);
            s[i] = i == 0                      ? long_user
                   : (d->step_up & (1u << i)) ? long_token
                   : (d->big & (1u << i))     ? too_big
                                              : too_long;
            snprintf(what, sizeof what, "over-long argument %d", i);
            expect_invalid(d, eng, adm, s, 0, 0, what);
        }
    }
    /* Nothing was read or written, no mail sent, not even the clock read. */
    CHECK_INT(atomic_load(&e->now_calls), 0);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        const op_desc *d = &ops[k];
        const char *s[6];
        /* The core's own user checks (empty, control characters) come after the clock is read;
         * they still touch no store and send nothing. */
        memcpy(s, d->valid, sizeof s);
        s[0] = "";
        expect_invalid(d, eng, adm, s, 0, 0, "empty user");
        s[0] = "a\nb";
        expect_invalid(d, eng, adm, s, 0, 0, "user with a control character");
        s[0] = "tab\tuser";
        expect_invalid(d, eng, adm, s, 0, 0, "user with a control character");
    }
    CHECK_INT(e->store.calls, 0);
    CHECK_INT(store_count(&e->store), 0);
    CHECK_INT(mail_count(&e->mail), 0);

    /* The caps are inclusive: a 256-byte user and a TWOFA_MAX_INPUT-byte argument pass the
     * boundary checks (the latter is then refused by the operation's own rules, not the cap). */
    char *user256 = repeat_char('u', 256);
    char *out = SENT;
    twofa_error *err = NULL;
    EXPECT_OK(twofa_security_status(eng, user256, &out, &err), &err);
    jfree(out);
    char *max = repeat_char('x', TWOFA_MAX_INPUT);
    out = SENT;
    twofa_status st = twofa_set_contact_email(eng, "u", max, NULL, &out, &err);
    CHECK(err != NULL && strstr(err->message, "longer than") == NULL);
    CHECK_CONTAINS(err ? err->message : NULL, "email address");
    EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    /* proof_kind must be one of the four kinds. */
    out = SENT;
    EXPECT_ERR(twofa_login_verify(eng, "u", "chal", "sms", "123456", &out, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(out == SENT);
    free(user256);
    free(max);
    free(too_long);
    free(long_user);
    free(long_token);
    free(too_big);
    twofa_admin_free(adm);
    twofa_engine_free(eng);
    env_free(e);
}

static void test_constructors_refuse_null(void) {
    env *e = env_new(T0);
    twofa_error *err = NULL;
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_core *core = (twofa_core *)SENT_PTR;
    char path[700];
    snprintf(path, sizeof path, "%s/null-args.db", temp_dir());
    EXPECT_ERR(twofa_engine_new(NULL, &e->host, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new(CONFIG, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new(CONFIG, &e->host, NULL, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(twofa_engine_new(CONFIG, &e->host, NULL, NULL), TWOFA_INVALID_INPUT);
    EXPECT_ERR(twofa_engine_new_memory(NULL, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new_memory(CONFIG, NULL, NULL, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new_sqlite(NULL, path, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new_sqlite(CONFIG, path, NULL, NULL, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_core_new(NULL, &core, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_core_new(CONFIG, NULL, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_INT(twofa_core_new(NULL, &core, NULL), TWOFA_INVALID_INPUT);
    CHECK(eng == (twofa_engine *)SENT_PTR);
    CHECK(core == (twofa_core *)SENT_PTR);
    /* A NULL out for the sqlite engine must not leave a database behind either. */
    CHECK(access(path, F_OK) != 0);

    /* Store value setters outside a callback / with NULL. */
    static const uint8_t b[2] = {1, 2};
    CHECK_INT(twofa_store_value_set(NULL, b, 2, 1), TWOFA_INVALID_INPUT);
    CHECK_INT(twofa_store_value_set_version(NULL, 1), TWOFA_INVALID_INPUT);

    /* check_store. */
    char *out = SENT;
    EXPECT_ERR(twofa_check_store(NULL, &out, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_check_store(&e->host, NULL, &err), TWOFA_INVALID_INPUT, &err);
    twofa_host h = e->host;
    h.store_put = NULL;
    EXPECT_ERR(twofa_check_store(&h, &out, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(out == SENT);
    CHECK_INT(e->store.calls, 0);
    env_free(e);
}

void register_args(void) {
    add_test("every operation: NULL, bad UTF-8, over-long arguments", test_every_operation_refuses_bad_arguments);
    add_test("constructors, store setters, check_store: NULL", test_constructors_refuse_null);
}
