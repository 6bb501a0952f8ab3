/* Version, status names, frees, the error conventions, configs, engine constructors, panics. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_version(void) {
    const char *v = twofa_version();
    CHECK(v != NULL);
    CHECK_STR(v, "0.1.0");
    CHECK(twofa_version() == v); /* static */
}

static void test_status_names(void) {
    static const char *names[] = {"ok",       "invalid_input",   "invalid_code", "expired",          "replayed",
                                  "rate_limited", "locked_out",  "not_enrolled", "step_up_required", "policy_violation",
                                  "not_found", "webauthn_rejected", "storage",   "conflict",         "mail",
                                  "unsupported_schema", "panic",  "internal",     "forbidden"};
    CHECK_INT(TWOFA_OK, 0);
    CHECK_INT(TWOFA_INTERNAL, 17);
    CHECK_INT(TWOFA_FORBIDDEN, 18);
    for (int i = 0; i < 19; i++) CHECK_STR(twofa_status_name(i), names[i]);
    CHECK_STR(twofa_status_name(TWOFA_INVALID_INPUT), "invalid_input");
    CHECK_STR(twofa_status_name(TWOFA_LOCKED_OUT), "locked_out");
    CHECK_STR(twofa_status_name(-1), "unknown");
    CHECK_STR(twofa_status_name(19), "unknown");
    CHECK_STR(twofa_status_name(1000), "unknown");
    CHECK_STR(twofa_status_name(INT32_MIN), "unknown");
}

static void test_free_null_is_noop(void) {
    twofa_string_free(NULL);
    twofa_engine_free(NULL);
    twofa_admin_free(NULL);
    twofa_error_free(NULL);
    twofa_core_free(NULL);
    twofa_operation_free(NULL);
    twofa_store_free(NULL);
    twofa_bytes_free(NULL, 5);
    CHECK(1);
}

static void *fresh_thread_last_error(void *arg) {
    const char **out = arg;
    *out = strdup(twofa_last_error_message());
    return NULL;
}

static void test_last_error_message_and_null_err(void) {
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    /* err == NULL is accepted: the status still says what happened. */
    CHECK_INT(twofa_engine_new_memory("{", NULL, &eng, NULL), TWOFA_INVALID_INPUT);
    CHECK(eng == (twofa_engine *)SENT_PTR);
    const char *m = twofa_last_error_message();
    CHECK(m != NULL && strlen(m) > 0);
    CHECK_CONTAINS(m, "config");
    /* The message is per thread: a new thread starts with "". */
    const char *other = NULL;
    pthread_t t;
    pthread_create(&t, NULL, fresh_thread_last_error, &other);
    pthread_join(t, NULL);
    CHECK_STR(other, "");
    free((void *)other);
    /* With err given, err->message equals the thread's last message (check_error verifies). */
    twofa_error *err = NULL;
    EXPECT_ERR(twofa_engine_new_memory(NULL, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    CHECK_CONTAINS(twofa_last_error_message(), "config_json is NULL");
    /* A success does not change the last message. */
    CHECK_INT(twofa_engine_new_memory(CONFIG, NULL, &eng, NULL), TWOFA_OK);
    CHECK_CONTAINS(twofa_last_error_message(), "config_json is NULL");
    /* err == NULL on an operation failure. */
    char *json = SENT;
    CHECK_INT(twofa_login_verify(eng, "u", "nope", "totp", "123456", &json, NULL), TWOFA_NOT_FOUND);
    CHECK(json == SENT);
    CHECK_CONTAINS(twofa_last_error_message(), "not found");
    twofa_engine_free(eng);
}

/* Every config error is TWOFA_INVALID_INPUT from each of the four constructors. */
static void expect_bad_config(const char *config, const char *needle) {
    env *e = env_new(T0);
    twofa_error *err = NULL;
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_core *core = (twofa_core *)SENT_PTR;
    char path[600];
    snprintf(path, sizeof path, "%s/bad-config.db", temp_dir());

    CHECK_INT(twofa_engine_new(config, &e->host, &eng, &err), TWOFA_INVALID_INPUT);
    if (needle) CHECK_CONTAINS(err ? err->message : NULL, needle);
    EXPECT_ERR(TWOFA_INVALID_INPUT, TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new_memory(config, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_engine_new_sqlite(config, path, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_core_new(config, &core, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(eng == (twofa_engine *)SENT_PTR);
    CHECK(core == (twofa_core *)SENT_PTR);
    CHECK_INT(e->store.calls, 0);
    env_free(e);
}

static void test_config_errors(void) {
    expect_bad_config("", NULL);
    expect_bad_config("{", NULL);
    expect_bad_config("{\"issuer\":\"Example\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "\"}],}", NULL);
    expect_bad_config("[]", NULL);
    expect_bad_config("{\"issuer\":\"Example\"}", "keys");
    /* Unknown fields, at the top and nested. */
    expect_bad_config("{" CONFIG_BODY ",\"nope\":1}", "nope");
    expect_bad_config("{" CONFIG_BODY ",\"totp\":{\"digitz\":6}}", "digitz");
    expect_bad_config("{\"issuer\":\"Example\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "\",\"x\":1}]}", "x");
    /* Duplicate keys. */
    expect_bad_config("{\"issuer\":\"A\"," CONFIG_BODY "}", "duplicate");
    expect_bad_config("{" CONFIG_BODY ",\"recovery_codes\":10,\"recovery_codes\":12}", "duplicate");
    /* Invalid values name the field. */
    expect_bad_config("{" CONFIG_BODY ",\"totp\":{\"digits\":7}}", "totp.digits");
    expect_bad_config("{\"issuer\":\"Example\",\"keys\":[{\"id\":\"k1\",\"secret\":\"c2hvcnQ=\"}]}", "keys[0].secret");
    expect_bad_config("{\"issuer\":\"\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "\"}]}", "issuer");
    expect_bad_config("{" CONFIG_BODY ",\"lockout\":{\"threshold\":101}}", "lockout.threshold");
    expect_bad_config("{" CONFIG_BODY ",\"webauthn\":{\"rp_id\":\"\",\"rp_name\":\"x\",\"origins\":[]}}", NULL);
    /* Invalid UTF-8. */
    expect_bad_config("{\"issuer\":\"Ex\xff\xfe\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "\"}]}", "UTF-8");
    /* Over TWOFA_MAX_CONFIG: a valid config padded with spaces to one byte too many. */
    size_t n = TWOFA_MAX_CONFIG + 1;
    char *big = repeat_char(' ', n);
    memcpy(big, CONFIG, strlen(CONFIG));
    expect_bad_config(big, "longer than");
    /* Exactly TWOFA_MAX_CONFIG bytes is accepted. */
    big[TWOFA_MAX_CONFIG] = '\0';
    twofa_engine *eng = NULL;
    twofa_error *err = NULL;
    if (EXPECT_OK(twofa_engine_new_memory(big, NULL, &eng, &err), &err)) twofa_engine_free(eng);
    free(big);
}

static void test_engine_new_memory(void) {
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_error *err = NULL;
    /* NULL host: system clock, mail fails. */
    if (EXPECT_OK(twofa_engine_new_memory(CONFIG, NULL, &eng, &err), &err)) {
        CHECK(eng != NULL && eng != (twofa_engine *)SENT_PTR);
        CHECK_STATUS_CONTAINS(eng, "alice", "\"type\":\"status\"");
        /* No send_mail: a code cannot be delivered. */
        char *json = SENT;
        EXPECT_ERR_CB(twofa_email_enroll_begin(eng, "alice", "alice@example.com", NULL, &json, &err), TWOFA_MAIL,
                      &err, "send_mail");
        CHECK(json == SENT);
        twofa_engine_free(eng);
    }
    /* With a host: its mail and clock are used, its store callbacks are not. */
    env *e = env_new(T0);
    eng = NULL;
    if (EXPECT_OK(twofa_engine_new_memory(CONFIG, &e->host, &eng, &err), &err)) {
        char *json = SENT;
        EXPECT_OK(twofa_email_enroll_begin(eng, "alice", "alice@example.com", NULL, &json, &err), &err);
        uint64_t expires = 0;
        CHECK(json_u64(json_find(json, "expires_at"), &expires));
        CHECK_INT(expires, T0 + 600);
        jfree(json);
        CHECK_INT(mail_count(&e->mail), 1);
        CHECK_INT(e->store.calls, 0);
        CHECK(atomic_load(&e->now_calls) >= 1);
        twofa_engine_free(eng);
    }
    env_free(e);
}

static void test_engine_new_callbacks(void) {
    env *e = env_new(T0);
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_error *err = NULL;
    /* The store callbacks are required. */
    twofa_host h = e->host;
    h.store_delete = NULL;
    EXPECT_ERR(twofa_engine_new(CONFIG, &h, &eng, &err), TWOFA_INVALID_INPUT, &err);
    h = e->host;
    h.store_get = NULL;
    EXPECT_ERR(twofa_engine_new(CONFIG, &h, &eng, &err), TWOFA_INVALID_INPUT, &err);
    h = e->host;
    h.store_put = NULL;
    EXPECT_ERR(twofa_engine_new(CONFIG, &h, &eng, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(eng == (twofa_engine *)SENT_PTR);
    /* Mail and clock may be NULL: system clock, failing delivery. */
    h = e->host;
    h.send_mail = NULL;
    h.now = NULL;
    if (EXPECT_OK(twofa_engine_new(CONFIG, &h, &eng, &err), &err)) {
        SET_CONTACT(eng, "bob", "bob@example.com");
        CHECK(store_has(&e->store, "user/bob"));
        char *json = SENT;
        EXPECT_ERR_CB(twofa_email_enroll_begin(eng, "bob", "bob2@example.com", NULL, &json, &err), TWOFA_MAIL, &err,
                      "send_mail");
        CHECK_INT(atomic_load(&e->now_calls), 0);
        twofa_engine_free(eng);
    }
    /* The struct is copied: changing it after the call changes nothing. */
    h = e->host;
    if (EXPECT_OK(twofa_engine_new(CONFIG, &h, &eng, &err), &err)) {
        memset(&h, 0, sizeof h);
        CHECK_STATUS_CONTAINS(eng, "bob", "\"contact_email\":\"bob@example.com\"");
        twofa_engine_free(eng);
    }
    env_free(e);
}

static void test_engine_new_sqlite(void) {
    env *e = env_new(T0);
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_error *err = NULL;
    char path[700];
    snprintf(path, sizeof path, "%s/engine.db", temp_dir());
    /* NULL path and no config.sqlite_path. */
    EXPECT_ERR(twofa_engine_new_sqlite(CONFIG, NULL, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    /* A directory that does not exist. */
    char bad[800];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", temp_dir());
    EXPECT_ERR(twofa_engine_new_sqlite(CONFIG, bad, NULL, &eng, &err), TWOFA_STORAGE, &err);
    /* Over 4096 bytes, invalid UTF-8. */
    char *longp = repeat_char('a', 4097);
    EXPECT_ERR(twofa_engine_new_sqlite(CONFIG, longp, NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    free(longp);
    EXPECT_ERR(twofa_engine_new_sqlite(CONFIG, "/tmp/\xff.db", NULL, &eng, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(eng == (twofa_engine *)SENT_PTR);

    /* With a path: data persists across engines; the host's store callbacks are ignored. */
    if (EXPECT_OK(twofa_engine_new_sqlite(CONFIG, path, &e->host, &eng, &err), &err)) {
        SET_CONTACT(eng, "carol", "carol@example.com");
        twofa_engine_free(eng);
    }
    CHECK_INT(e->store.calls, 0);
    CHECK(atomic_load(&e->now_calls) >= 1);
    /* NULL path: the config's sqlite_path. */
    char config[1200];
    snprintf(config, sizeof config, "{" CONFIG_BODY ",\"sqlite_path\":\"%s\"}", path);
    eng = NULL;
    if (EXPECT_OK(twofa_engine_new_sqlite(config, NULL, NULL, &eng, &err), &err)) {
        CHECK_STATUS_CONTAINS(eng, "carol", "\"contact_email\":\"carol@example.com\"");
        twofa_engine_free(eng);
    }
    env_free(e);
}

static void test_admin_new_and_lifetime(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    twofa_admin *admin = (twofa_admin *)SENT_PTR;
    twofa_error *err = NULL;
    EXPECT_ERR(twofa_admin_new(NULL, &admin, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_admin_new(eng, NULL, &err), TWOFA_INVALID_INPUT, &err);
    CHECK(admin == (twofa_admin *)SENT_PTR);
    admin = admin_of(eng);
    /* The engine may be freed first: the admin keeps its store, mail and clock. */
    twofa_engine_free(eng);
    char *json = SENT;
    EXPECT_OK(twofa_admin_totp_import(admin, "dave", SECRET_A, "SHA1", 6, 30, &json, &err), &err);
    CHECK_CONTAINS(json, "\"type\":\"method_added\"");
    jfree(json);
    CHECK(store_has(&e->store, "user/dave"));
    EXPECT_OK(twofa_admin_delete_user(admin, "dave", &err), &err);
    CHECK(!store_has(&e->store, "user/dave"));
    twofa_admin_free(admin);
    env_free(e);
}

static void test_force_panics(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    twofa_error *err = NULL;
    char *json = SENT;
    /* Rust's panic hook prints each forced panic to stderr: keep the test output readable. */
    fflush(stderr);
    int saved_stderr = dup(2), devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, 2);
        close(devnull);
    }
    uint64_t before = twofa_testing_force_panics(true);
    twofa_status st = twofa_security_status(eng, "erin", &json, &err);
    uint64_t during = twofa_testing_force_panics(true);
    /* Infallible getters return their fallback, and are counted too. */
    const char *v = twofa_version();
    uint64_t after_version = twofa_testing_force_panics(false);
    if (saved_stderr >= 0) {
        dup2(saved_stderr, 2);
        close(saved_stderr);
    }
    EXPECT_ERR(st, TWOFA_PANIC, &err);
    CHECK(json == SENT);
    CHECK_INT(during, before + 1);
    CHECK(v == NULL);
    CHECK_INT(after_version, before + 2);
    CHECK_INT(e->store.calls, 0);
    /* Disabled again: everything works. */
    CHECK_STATUS_CONTAINS(eng, "erin", "\"type\":\"status\"");
    CHECK_STR(twofa_version(), "0.1.0");
    CHECK_INT(twofa_testing_force_panics(false), before + 2);
    twofa_engine_free(eng);
    env_free(e);
}

/* Calls twofa_core_new(config) and checks that the error message does not contain `secret`. */
static void config_message_hides(const char *config, const char *secret) {
    twofa_core *core = (twofa_core *)SENT_PTR;
    twofa_error *err = NULL;
    twofa_status st = twofa_core_new(config, &core, &err);
    CHECK_MSG(err && !strstr(err->message, secret), "the message shows a secret: %s", err ? err->message : "-");
    EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
}

static void test_messages_without_secrets(void) {
    /* Validation errors name the field, never its value. */
    config_message_hides("{\"issuer\":\"x\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "!\"}]}", MASTER_KEY);
    config_message_hides("{\"issuer\":\"x\",\"keys\":[{\"id\":\"k1\",\"secret\":\"c2VjcmV0LXNob3J0\"}]}",
                         "c2VjcmV0LXNob3J0");
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    twofa_admin *adm = admin_of(eng);
    char *json = SENT;
    twofa_error *err = NULL;
    twofa_status st = twofa_admin_totp_import(adm, "u", "JBSWY3DPEHPK3PX1", "SHA1", 6, 30, &json, &err);
    CHECK(err && !strstr(err->message, "JBSWY3DPEHPK3PX1"));
    EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
    IMPORT_TOTP(adm, "u", SECRET_A);
    char *challenge = begin_challenge(eng, "u");
    char bad[16];
    wrong_code(SECRET_A, T0, 6, bad);
    json = SENT;
    st = twofa_login_verify(eng, "u", challenge, "totp", bad, &json, &err);
    CHECK(err && !strstr(err->message, bad));
    EXPECT_ERR(st, TWOFA_INVALID_CODE, &err);
    free(challenge);
    twofa_admin_free(adm);
    twofa_engine_free(eng);
    env_free(e);

    /* serde_json's type errors quote the offending value: the messages must not (a master key
     * in the wrong place, a code given as a number). */
    {
        config_message_hides("{\"issuer\":\"x\",\"keys\":[\"" MASTER_KEY "\"]}", MASTER_KEY);
        config_message_hides("{" CONFIG_BODY ",\"recovery_codes\":\"" MASTER_KEY "\"}", MASTER_KEY);
        twofa_core *core = NULL;
        if (EXPECT_OK(twofa_core_new(CONFIG, &core, &err), &err)) {
            twofa_operation *op = (twofa_operation *)SENT_PTR;
            st = twofa_operation_new(core, "u", "{\"op\":\"totp_enroll_confirm\",\"code\":918273}", T0, &op, &err);
            CHECK_MSG(err && !strstr(err->message, "918273"), "the message shows the code: %s",
                      err ? err->message : "-");
            EXPECT_ERR(st, TWOFA_INVALID_INPUT, &err);
            twofa_core_free(core);
        }
    }
}

/* Built-in store handles: shared by engines, the versioned contract, conformance, NULLs. */
static void test_store_handles(void) {
    twofa_error *err = NULL;
    twofa_store *mem = (twofa_store *)SENT_PTR;
    EXPECT_ERR(twofa_store_new_memory(NULL, &err), TWOFA_INVALID_INPUT, &err);
    if (!EXPECT_OK(twofa_store_new_memory(&mem, &err), &err)) return;

    /* Two engines on one store see each other's writes; the store outlives its handle. */
    twofa_engine *a = NULL, *b = NULL;
    EXPECT_ERR(twofa_engine_new_with_store(CONFIG, NULL, NULL, &a, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_OK(twofa_engine_new_with_store(CONFIG, mem, NULL, &a, &err), &err);
    EXPECT_OK(twofa_engine_new_with_store(CONFIG, mem, NULL, &b, &err), &err);
    char *json = SENT;
    SET_CONTACT(a, "dave", "dave@example.com");

    /* get: a copy of the record and its version; a missing key is NULL / 0 / 0. */
    uint8_t *bytes = (uint8_t *)SENT_PTR;
    uintptr_t len = 7;
    uint64_t version = 7;
    EXPECT_OK(twofa_store_get(mem, "user/dave", &bytes, &len, &version, &err), &err);
    CHECK(bytes != NULL && len > 0 && version != 0);
    char *text = strndup((const char *)bytes, len);
    CHECK_CONTAINS(text, "dave@example.com");
    free(text);
    twofa_bytes_free(bytes, len);
    EXPECT_OK(twofa_store_get(mem, "user/nobody", &bytes, &len, &version, &err), &err);
    CHECK(bytes == NULL && len == 0 && version == 0);
    EXPECT_ERR(twofa_store_get(mem, "k", NULL, &len, &version, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_store_get(NULL, "k", &bytes, &len, &version, &err), TWOFA_INVALID_INPUT, &err);

    /* put: insert-only with 0, compare-and-swap otherwise; delete if the version matches. */
    uint64_t v1 = 0, v2 = 0;
    EXPECT_OK(twofa_store_put(mem, "k", (const uint8_t *)"one", 3, 0, &v1, &err), &err);
    EXPECT_ERR(twofa_store_put(mem, "k", (const uint8_t *)"two", 3, 0, &v2, &err), TWOFA_CONFLICT, &err);
    EXPECT_ERR(twofa_store_put(mem, "k", (const uint8_t *)"two", 3, v1 + 1000, &v2, &err), TWOFA_CONFLICT, &err);
    EXPECT_OK(twofa_store_put(mem, "k", (const uint8_t *)"two", 3, v1, &v2, &err), &err);
    CHECK(v2 != 0 && v2 != v1);
    EXPECT_ERR(twofa_store_put(mem, "k", NULL, 3, v2, &v1, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_store_delete(mem, "k", v1, &err), TWOFA_CONFLICT, &err);
    EXPECT_OK(twofa_store_delete(mem, "k", v2, &err), &err);
    EXPECT_ERR(twofa_store_delete(mem, "k", v2, &err), TWOFA_CONFLICT, &err);
    EXPECT_OK(twofa_store_put(mem, "k", NULL, 0, 0, &v1, &err), &err);
    CHECK(v1 != v2);

    twofa_store_free(mem);
    CHECK_STATUS_CONTAINS(b, "dave", "\"contact_email\":\"dave@example.com\"");
    twofa_engine_free(a);
    twofa_engine_free(b);

    /* SQLite handles: errors, shared file, conformance. */
    char path[700], bad[800];
    snprintf(path, sizeof path, "%s/handles.db", temp_dir());
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.db", temp_dir());
    twofa_store *db = (twofa_store *)SENT_PTR;
    EXPECT_ERR(twofa_store_new_sqlite(NULL, &db, &err), TWOFA_INVALID_INPUT, &err);
    EXPECT_ERR(twofa_store_new_sqlite(bad, &db, &err), TWOFA_STORAGE, &err);
    CHECK(db == (twofa_store *)SENT_PTR);
    if (EXPECT_OK(twofa_store_new_sqlite(path, &db, &err), &err)) {
        json = SENT;
        EXPECT_OK(twofa_store_check(db, &json, &err), &err);
        CHECK_CONTAINS(json, "\"passed\":[");
        jfree(json);
        EXPECT_ERR(twofa_store_check(db, NULL, &err), TWOFA_INVALID_INPUT, &err);
        twofa_store_free(db);
    }
    EXPECT_ERR(twofa_store_check(NULL, &json, &err), TWOFA_INVALID_INPUT, &err);
}

void register_basics(void) {
    add_test("version", test_version);
    add_test("status_name: every code, unknown codes", test_status_names);
    add_test("*_free(NULL) are no-ops", test_free_null_is_noop);
    add_test("last_error_message per thread; err == NULL accepted", test_last_error_message_and_null_err);
    add_test("config errors: syntax, unknown/duplicate keys, values, size", test_config_errors);
    add_test("engine_new_memory: NULL host, host mail and clock", test_engine_new_memory);
    add_test("engine_new: required callbacks, optional mail/clock", test_engine_new_callbacks);
    add_test("engine_new_sqlite: path, config path, errors", test_engine_new_sqlite);
    add_test("store handles: shared, versioned contract, conformance", test_store_handles);
    add_test("admin_new: NULLs; outlives its engine", test_admin_new_and_lifetime);
    add_test("testing_force_panics: TWOFA_PANIC, counted", test_force_panics);
    add_test("error messages carry no secrets", test_messages_without_secrets);
}
