/*
 * The C test suite of libtwofa: a tiny test runner, a host written in C (a versioned store,
 * a mail capture and a settable clock), a sans-IO driver, and small JSON and oathtool helpers
 * (JSON is read with the C host example's json.h).
 */
#ifndef TWOFA_C_TESTS_HARNESS_H
#define TWOFA_C_TESTS_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h" /* examples/c-host/json.h */
#include "twofa.h"

/* ---- the runner --------------------------------------------------------------------------- */

typedef void (*test_fn)(void);

/* Registers a test (called by each file's register_* function). */
void add_test(const char *name, test_fn fn);

/* Records a failed check of the running test (thread-safe). */
void check_failed(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) check_failed(__FILE__, __LINE__, "CHECK(%s)", #cond);                         \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) check_failed(__FILE__, __LINE__, __VA_ARGS__);                                \
    } while (0)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                            \
        if (a_ != e_) check_failed(__FILE__, __LINE__, "%s == %lld, expected %lld", #actual, a_, e_); \
    } while (0)

#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *a_ = (actual), *e_ = (expected);                                               \
        if (a_ == NULL || e_ == NULL || strcmp(a_, e_) != 0)                                       \
            check_failed(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #actual,             \
                         a_ ? a_ : "(null)", e_ ? e_ : "(null)");                                  \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                           \
    do {                                                                                           \
        const char *h_ = (haystack), *n_ = (needle);                                               \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                                  \
            check_failed(__FILE__, __LINE__, "%s does not contain \"%s\": %.400s", #haystack, n_,  \
                         h_ ? h_ : "(null)");                                                      \
    } while (0)

/* A pointer no libtwofa call returns: out-parameters start as SENT so a test sees whether a
 * failing call wrote them. It points at a zero byte, so SENT also reads as an empty string. */
extern char sentinel_byte;
#define SENT ((char *)&sentinel_byte)
#define SENT_PTR ((void *)&sentinel_byte)

/* Frees a JSON string unless it is NULL or SENT. */
void jfree(char *json);

/*
 * Checks a failure: `status` is `want`, `*err` was set with the same code, its name, a message
 * equal to twofa_last_error_message(), retry_after > 0 exactly for rate_limited/locked_out, and
 * `callback` (NULL: must be NULL; "*": any). Frees and clears `*err`.
 */
void check_error(const char *file, int line, twofa_status status, twofa_status want, twofa_error **err,
                 const char *callback);
#define EXPECT_ERR(status, want, errp) check_error(__FILE__, __LINE__, (status), (want), (errp), NULL)
#define EXPECT_ERR_CB(status, want, errp, cb) check_error(__FILE__, __LINE__, (status), (want), (errp), (cb))

/* Checks a success (prints the error otherwise); frees and clears `*err`. Returns status == OK. */
int check_ok(const char *file, int line, twofa_status status, twofa_error **err);
#define EXPECT_OK(status, errp) check_ok(__FILE__, __LINE__, (status), (errp))

/* Checks that twofa_security_status answers for `user` with JSON containing every one of the
 * strings that follow (one call, however many strings). */
void check_status_contains(const char *file, int line, twofa_engine *eng, const char *user, ...);
#define CHECK_STATUS_CONTAINS(eng, user, ...)                                                      \
    check_status_contains(__FILE__, __LINE__, (eng), (user), __VA_ARGS__, (const char *)NULL)

/* ---- the C host ------------------------------------------------------------------------------ */

/* A key-value store with compare-and-swap, versions from one global counter. */
typedef struct kv_entry {
    char *key;
    uint8_t *bytes;
    size_t len;
    uint64_t version;
    struct kv_entry *next;
} kv_entry;

#define STORE_BUCKETS 61

typedef struct {
    pthread_mutex_t mu;
    kv_entry *buckets[STORE_BUCKETS];
    /* Counters (under mu). */
    long calls, gets, puts, deletes;
    long conflicts; /* CAS mismatches answered with TWOFA_CALLBACK_CONFLICT (never reset) */
    /* Fault injection: the calls numbered fail_at .. fail_at + fail_count - 1 (1-based, counted
     * over get/put/delete since the last store_arm) return fail_rc; the kind of the last failed
     * call ("store.get", "store.put", "store.delete") goes to failed_kind. */
    long fail_at;
    long fail_count; /* how many calls fail from fail_at on (store_arm sets 1) */
    int fail_rc;
    char failed_kind[16];
    /* Broken behaviours, for twofa_check_store. */
    int no_cas;          /* put and delete ignore versions */
    int put_no_version;  /* put returns OK without reporting a version */
    /* Probe the argument checks of twofa_store_value_set*. */
    int probe;
    int probe_failures;
} c_store;

typedef struct {
    char *to, *subject, *text, *html;
} mail_msg;

typedef struct {
    pthread_mutex_t mu;
    mail_msg *msgs;
    size_t n, cap;
    long calls;
    long fail_at; /* the delivery with this number (1-based) fails; -1: every delivery fails */
} mailbox;

/* The audit events the emit_event callback received (JSON copies, in order). */
typedef struct {
    pthread_mutex_t mu;
    char **json;
    size_t n, cap;
} event_log;

typedef struct env {
    c_store store;
    mailbox mail;
    event_log events;
    _Atomic uint64_t now;
    _Atomic int now_fail;
    _Atomic long now_calls;
    twofa_host host;
} env;

env *env_new(uint64_t now);
void env_free(env *e);
void env_set_now(env *e, uint64_t t);

/* Opens an engine on e's callbacks (fails the test and returns NULL on error). */
twofa_engine *env_engine(env *e, const char *config);
twofa_admin *admin_of(twofa_engine *engine);

/* Most tests' start: a fresh env at `now`, an engine on its callbacks and an admin handle (the
 * config must grant it). teardown frees all three. */
typedef struct {
    env *e;
    twofa_engine *eng;
    twofa_admin *adm;
} fixture;
fixture setup(const char *config, uint64_t now);
void teardown(fixture *f);

/* Store operations (the same ones the callbacks and the sans-IO driver perform). */
#define RC_FAILED 7 /* what a failing callback returns */
int32_t store_get(c_store *s, const char *key, twofa_store_value *out, const uint8_t **bytes, size_t *len,
                  uint64_t *version);
int32_t store_put(c_store *s, const char *key, const uint8_t *bytes, size_t len, uint64_t expected,
                  uint64_t *new_version);
int32_t store_delete(c_store *s, const char *key, uint64_t expected);

/* Resets the counters and arms the fault injection (0: no failure). */
void store_arm(c_store *s, long fail_at);
/* Number of entries, and whether `key` exists. */
size_t store_count(c_store *s);
int store_has(c_store *s, const char *key);
size_t store_count_prefix(c_store *s, const char *prefix);

/* A copy of every key and its bytes (versions excluded), sorted by key. */
typedef struct {
    size_t n;
    char **keys;
    uint8_t **bytes;
    size_t *lens;
} snapshot;
snapshot *store_snapshot(c_store *s);
int snapshot_equal(const snapshot *a, const snapshot *b);
/* As snapshot_equal, ignoring the keys that start with `prefix` (e.g. "email-address/": an
 * address budget is charged before a code is mailed, and stays charged whatever follows). */
int snapshot_equal_except(const snapshot *a, const snapshot *b, const char *prefix);
void snapshot_free(snapshot *s);
/* Checks that the store holds the keys and bytes `before` recorded, apart from the keys that
 * start with `except` (NULL: every key counts), then frees `before`. */
void check_unchanged(const char *file, int line, c_store *s, snapshot *before, const char *except);
#define CHECK_UNCHANGED(s, before) check_unchanged(__FILE__, __LINE__, (s), (before), NULL)
#define CHECK_UNCHANGED_EXCEPT(s, before, except) check_unchanged(__FILE__, __LINE__, (s), (before), (except))

/* Mail. */
void mail_clear(mailbox *m);
size_t mail_count(mailbox *m);
/* The one-time code ("... code is 123456 ...") of the last message to `to` (NULL: any), copied
 * into out (at least 16 bytes). Returns 1 if found. */
int mail_last_code(mailbox *m, const char *to, char *out);
/* The last message's field copies (caller frees), or NULL. */
char *mail_last_field(mailbox *m, int field /* 0 to, 1 subject, 2 text, 3 html */);

/* Audit events. */
void events_clear(event_log *l);
size_t events_count(event_log *l);
/* The kinds of the events received so far, comma-separated ("method_added,login_succeeded"),
 * into out (truncated to cap). */
void events_kinds(event_log *l, char *out, size_t cap);
/* Whether any event received contains `needle`. */
int events_contain(event_log *l, const char *needle);
/* A copy of the i-th event (caller frees), or NULL. */
char *event_at(event_log *l, size_t i);

/* ---- sans-IO ------------------------------------------------------------------------------ */

typedef struct {
    int conflict_writes; /* answer this many WRITEs with TWOFA_CALLBACK_CONFLICT first */
    int fail_send;       /* answer SENDs with a failure */
    int fail_load_at;    /* answer the LOAD with this number (1-based) with a failure */
    char trace[128];     /* one letter per action: L W D S E, then '.' for DONE */
    char events[1024];   /* the kinds of the EMIT actions, comma-separated */
    int steps;
} drive_opts;

/* Drives `op` to DONE against e's store and mailbox, then finishes it. */
twofa_status drive_op(twofa_operation *op, env *e, drive_opts *o, char **out_json, twofa_error **err);

/* ---- JSON and TOTP helpers ----------------------------------------------------------------- */

/* JSON is read with json.h (examples/c-host/json.h, the C host example's reader): json_find
 * looks a key up anywhere in a result, json_u64 reads a number, and so on. A NULL or SENT
 * result reads as empty: no key is found in it. */

/* The string value of the first member named `key` (unescaped, malloc'd), or NULL. */
char *json_str(const char *json, const char *key);
/* The n-th string of the first array named `key` (malloc'd), or NULL. */
char *json_array_str(const char *json, const char *key, size_t n);
/* The number of elements of the first array named `key` if they are all strings, or -1. */
long json_array_len(const char *json, const char *key);

/* The TOTP code of `secret` (base32) at Unix time t, computed by oathtool. Returns 1 on success. */
int oath_code(const char *secret, uint64_t t, int digits, const char *algorithm, char out[16]);
/* A well-formed code that is none of the codes accepted around t (steps t-2..t+2). */
void wrong_code(const char *secret, uint64_t t, int digits, char out[16]);

/* Long / invalid strings. */
char *repeat_char(char c, size_t n); /* malloc'd, NUL-terminated */

/* Common configs. */
#define MASTER_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
/* The common configs grant the admin capability ("admin": true) so the tests can open admin
 * handles; CONFIG_NO_ADMIN does not. */
#define CONFIG_KEYS "\"issuer\":\"Example\",\"keys\":[{\"id\":\"k1\",\"secret\":\"" MASTER_KEY "\"}]"
#define CONFIG_BODY CONFIG_KEYS ",\"admin\":true"
#define CONFIG "{" CONFIG_BODY "}"
#define CONFIG_NO_ADMIN "{" CONFIG_KEYS "}"
#define CONFIG_REMEMBER "{" CONFIG_BODY ",\"remember_device\":{\"enabled\":true}}"
#define CONFIG_WEBAUTHN                                                                            \
    "{" CONFIG_BODY ",\"webauthn\":{\"rp_id\":\"example.com\",\"rp_name\":\"Example\","            \
    "\"origins\":[\"https://example.com\"]}}"
#define CONFIG_LOCKOUT                                                                             \
    "{" CONFIG_BODY ",\"lockout\":{\"threshold\":3,\"base_delay_secs\":60,\"max_delay_secs\":3600}}"

/* The known TOTP vectors. */
#define T0 1700000000ULL
#define SECRET_A "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
#define CODE_A_T0 "406058"
#define RFC_SHA1 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
#define RFC_SHA256 "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA===="
#define RFC_SHA512                                                                                 \
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3T" \
    "QOJQGEZDGNA="

/* Sets `user`'s notice address with no step-up token (enough while the user has no method) and
 * frees the result; returns 1 on success. */
int set_contact(const char *file, int line, twofa_engine *eng, const char *user, const char *address);
#define SET_CONTACT(eng, user, address) set_contact(__FILE__, __LINE__, (eng), (user), (address))
/* Imports `secret` (SHA1, 6 digits, 30 s) for `user` through `admin` and frees the result;
 * returns 1 on success. */
int import_totp(const char *file, int line, twofa_admin *admin, const char *user, const char *secret);
#define IMPORT_TOTP(admin, user, secret) import_totp(__FILE__, __LINE__, (admin), (user), (secret))
/* Imports `secret` for `user` and signs in at the env's clock; returns the step-up token
 * (malloc'd) or NULL. */
char *import_and_login(env *e, twofa_engine *eng, const char *user, const char *secret);
/* login_begin → the challenge id (malloc'd) or NULL. */
char *begin_challenge(twofa_engine *eng, const char *user);

/* Temporary directory (mkdtemp) for SQLite files, removed at exit. */
const char *temp_dir(void);

/* Registration of each file's tests. */
void register_basics(void);
void register_args(void);
void register_ops(void);
void register_callbacks(void);
void register_sansio(void);
void register_threads(void);
void register_account(void);
void register_contact(void);
void register_json(void);

#endif
