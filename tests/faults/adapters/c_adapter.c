/*
 * The fault-injection adapter of the C ABI (tests/faults/README.md): one twofa_engine opened with
 * twofa_engine_new on host callbacks written here in C (a versioned in-memory store, a mailer
 * that records every message, a settable clock), driven by the harness's line protocol: one
 * command per line on stdin, one JSON object per line on stdout (diagnostics go to stderr).
 * `run`/`admin` hand the request JSON to twofa_engine_run / twofa_admin_run unchanged; the audit
 * events the engine emits during one (its `emit_event` callback) are listed in the answer. It
 * reads libtwofa's JSON with examples/c-host/json.h and writes its answers with the buf_json_*
 * functions below.
 *
 * Faults, each firing once at the n-th call of its domain (the call is not performed):
 *   fail       get/put/delete return ADAPTER_CALLBACK_FAILED, a failure the header defines
 *              ("any other value" than TWOFA_CALLBACK_OK and TWOFA_CALLBACK_CONFLICT)
 *   crash      get/put/delete return 77, a value nothing defines (a bug's garbage)
 *   conflict   put/delete return TWOFA_CALLBACK_CONFLICT although the version matched
 *   corrupt    get hands back "{\"corrupt" + 0xFF with the record's version (100 if missing)
 *   stale      get hands back the record with its version - 1 (a missing key stays missing)
 *   mail-fail  send_mail returns ADAPTER_CALLBACK_FAILED
 *   mail-crash send_mail returns 77
 * libtwofa treats every status other than OK and CONFLICT as the callback's failure: a store
 * callback's becomes TWOFA_STORAGE naming the callback, a send_mail's an undelivered message
 * (TWOFA_MAIL for a one-time code). So `crash` ends in "storage", as `fail` does.
 *
 * Build: make -f Makefile -f tests/faults/adapters/c_adapter.mk c-fault-adapter
 * (target/faults/c_adapter, linked against target/release/libtwofa.so).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h" /* examples/c-host/json.h */
#include "twofa.h"

/* What `fail` and `mail-fail` return: a failure (the header: any value but OK and CONFLICT). */
#define ADAPTER_CALLBACK_FAILED 2
/* What `crash` and `mail-crash` return: a status no contract defines. */
#define ADAPTER_CALLBACK_GARBAGE 77
/* The first version the store hands out (the protocol's counter starts at 100). */
#define FIRST_VERSION 100

/* ---- small utilities ------------------------------------------------------------------------ */

/* Lets the compiler check the format strings of the printf-like functions below. */
#if defined(__GNUC__)
#define PRINTF_LIKE(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define PRINTF_LIKE(fmt_index, first_arg)
#endif

static void die(const char *what) {
    fprintf(stderr, "c adapter: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) die("malloc");
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (p == NULL) die("realloc");
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static uint8_t *xmemdup(const uint8_t *bytes, size_t len) {
    uint8_t *d = xmalloc(len);
    if (len) memcpy(d, bytes, len);
    return d;
}

/* A growing byte buffer, always NUL-terminated. */
typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void buf_put(buf *b, const void *bytes, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->n, bytes, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void buf_puts(buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_putc(buf *b, char c) { buf_put(b, &c, 1); }

static void buf_printf(buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void buf_printf(buf *b, const char *fmt, ...) {
    char small[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        buf_put(b, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_put(b, big, (size_t)n);
    free(big);
}

/* The length of the valid UTF-8 sequence at s (at most `left` bytes), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t left) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, cp = c & 0x07;
    else return 0;
    if (n > left) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, out of range, or a surrogate */
    return n;
}

/* Appends `len` bytes as a JSON string: quotes, backslashes and control characters escaped,
 * valid UTF-8 kept, each byte of an invalid sequence as U+FFFD (JSON text must be Unicode). */
static void buf_json_bytes(buf *b, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)c);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            switch (c) {
            case '\n': buf_puts(b, "\\n"); break;
            case '\r': buf_puts(b, "\\r"); break;
            case '\t': buf_puts(b, "\\t"); break;
            case '\b': buf_puts(b, "\\b"); break;
            case '\f': buf_puts(b, "\\f"); break;
            default: buf_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            size_t n = utf8_len(u + i, len - i);
            if (n == 0) {
                buf_puts(b, "\\ufffd");
                i++;
            } else {
                buf_put(b, u + i, n);
                i += n;
            }
        }
    }
    buf_putc(b, '"');
}

static void buf_json_str(buf *b, const char *s) {
    if (s == NULL) buf_puts(b, "null");
    else buf_json_bytes(b, s, strlen(s));
}

/* Appends `len` bytes as a base64 JSON string (RFC 4648, padded). */
static void buf_json_base64(buf *b, const uint8_t *bytes, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_putc(b, '"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        if (i + 1 < len) v |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < len) v |= bytes[i + 2];
        char q[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], i + 1 < len ? alphabet[(v >> 6) & 63] : '=',
                     i + 2 < len ? alphabet[v & 63] : '='};
        buf_put(b, q, 4);
    }
    buf_putc(b, '"');
}

/* ---- reading libtwofa's JSON (examples/c-host/json.h) ------------------------------------- */

/* Appends the JSON object `json` without its top-level "type" member. Returns 0, or -1 (nothing
 * appended) if `json` is not an object. */
static int buf_outcome_without_type(buf *b, const char *json) {
    if (!json_is_object(json)) return -1;
    buf_putc(b, '{');
    bool first = true;
    for (const char *member = json_first(json); member != NULL; member = json_next(member)) {
        if (json_key_is(member, "type")) continue;
        if (!first) buf_putc(b, ',');
        first = false;
        buf_put(b, member, (size_t)(json_skip(json_value_of(member)) - member)); /* "key":value */
    }
    buf_putc(b, '}');
    return 0;
}

/* ---- the store ------------------------------------------------------------------------------ */

typedef struct {
    char *key;
    uint8_t *bytes;
    size_t len;
    uint64_t version;
} record;

typedef struct {
    record *items;
    size_t n, cap;
} table;

static void table_clear(table *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].key);
        free(t->items[i].bytes);
    }
    t->n = 0;
}

static void table_free(table *t) {
    table_clear(t);
    free(t->items);
    t->items = NULL;
    t->cap = 0;
}

static record *table_find(table *t, const char *key) {
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].key, key) == 0) return &t->items[i];
    return NULL;
}

static void table_add(table *t, const char *key, const uint8_t *bytes, size_t len, uint64_t version) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->items = xrealloc(t->items, t->cap * sizeof *t->items);
    }
    record *r = &t->items[t->n++];
    r->key = xstrdup(key);
    r->bytes = xmemdup(bytes, len);
    r->len = len;
    r->version = version;
}

static void table_remove(table *t, record *r) {
    free(r->key);
    free(r->bytes);
    *r = t->items[--t->n];
}

static void table_copy(table *to, const table *from) {
    table_clear(to);
    for (size_t i = 0; i < from->n; i++) {
        const record *r = &from->items[i];
        table_add(to, r->key, r->bytes, r->len, r->version);
    }
}

static int record_cmp(const void *a, const void *b) {
    return strcmp((*(const record *const *)a)->key, (*(const record *const *)b)->key);
}

/* ---- the adapter's state ------------------------------------------------------------------ */

typedef enum { F_NONE, F_FAIL, F_CRASH, F_CONFLICT, F_CORRUPT, F_STALE, F_MAIL_FAIL, F_MAIL_CRASH } fault_kind;

static const char *const KIND_NAMES[] = {"none", "fail", "crash", "conflict", "corrupt", "stale", "mail-fail", "mail-crash"};

/* The domains a call belongs to. */
enum { D_GET = 1, D_PUT = 2, D_DELETE = 4, D_SEND = 8 };

static const int KIND_DOMAINS[] = {
    [F_NONE] = 0,
    [F_FAIL] = D_GET | D_PUT | D_DELETE,
    [F_CRASH] = D_GET | D_PUT | D_DELETE,
    [F_CONFLICT] = D_PUT | D_DELETE,
    [F_CORRUPT] = D_GET,
    [F_STALE] = D_GET,
    [F_MAIL_FAIL] = D_SEND,
    [F_MAIL_CRASH] = D_SEND,
};

static const uint8_t CORRUPT[] = {'{', '"', 'c', 'o', 'r', 'r', 'u', 'p', 't', 0xFF};

typedef struct {
    char *to, *subject, *text;
    bool delivered;
} mail;

typedef struct {
    char *name;
    table records;
} slot;

static struct {
    table records;
    uint64_t next_version;
    slot *slots;
    size_t n_slots;
    uint64_t now;
    /* The armed fault. */
    fault_kind kind;
    long n, seen;
    bool fired;
    /* What the current operation did. */
    char **calls;
    size_t n_calls, cap_calls;
    mail *mails;
    size_t n_mails, cap_mails;
    /* The audit events emitted (the core's SecurityEvent JSON texts, in order). */
    char **events;
    size_t n_events, cap_events;
    twofa_engine *engine;
    twofa_admin *admin;
} A = {.next_version = FIRST_VERSION};

static void note_call(const char *what, const char *arg) {
    if (A.n_calls == A.cap_calls) {
        A.cap_calls = A.cap_calls ? A.cap_calls * 2 : 16;
        A.calls = xrealloc(A.calls, A.cap_calls * sizeof *A.calls);
    }
    size_t n = strlen(what) + 1 + strlen(arg) + 1;
    char *s = xmalloc(n);
    snprintf(s, n, "%s %s", what, arg);
    A.calls[A.n_calls++] = s;
}

static void clear_operation(void) {
    for (size_t i = 0; i < A.n_calls; i++) free(A.calls[i]);
    A.n_calls = 0;
    for (size_t i = 0; i < A.n_mails; i++) {
        free(A.mails[i].to);
        free(A.mails[i].subject);
        free(A.mails[i].text);
    }
    A.n_mails = 0;
    for (size_t i = 0; i < A.n_events; i++) free(A.events[i]);
    A.n_events = 0;
    A.fired = false;
}

/* Counts a call of `domain`; returns the armed kind if the fault fires at this call, else
 * F_NONE. */
static fault_kind fires(int domain) {
    if (A.kind == F_NONE || !(KIND_DOMAINS[A.kind] & domain)) return F_NONE;
    if (++A.seen != A.n) return F_NONE;
    A.fired = true;
    return A.kind;
}

/* Notes a put or delete (`what`) of `key` and counts it in `domain`; returns what a fault firing
 * at this call answers, or TWOFA_CALLBACK_OK when none fires and the call goes ahead. */
static int32_t write_fault(const char *what, int domain, const char *key) {
    note_call(what, key);
    switch (fires(domain)) {
    case F_FAIL: return ADAPTER_CALLBACK_FAILED;
    case F_CRASH: return ADAPTER_CALLBACK_GARBAGE;
    case F_CONFLICT: return TWOFA_CALLBACK_CONFLICT;
    default: return TWOFA_CALLBACK_OK;
    }
}

/* ---- the host callbacks ------------------------------------------------------------------- */

static int32_t cb_store_get(void *user_data, const char *key, twofa_store_value *out) {
    (void)user_data;
    note_call("get", key);
    record *r = table_find(&A.records, key);
    switch (fires(D_GET)) {
    case F_FAIL: return ADAPTER_CALLBACK_FAILED;
    case F_CRASH: return ADAPTER_CALLBACK_GARBAGE;
    case F_CORRUPT:
        if (twofa_store_value_set(out, CORRUPT, sizeof CORRUPT, r ? r->version : FIRST_VERSION) != TWOFA_OK)
            return ADAPTER_CALLBACK_FAILED;
        return TWOFA_CALLBACK_OK;
    case F_STALE:
        if (r && twofa_store_value_set(out, r->bytes, r->len, r->version - 1) != TWOFA_OK)
            return ADAPTER_CALLBACK_FAILED;
        return TWOFA_CALLBACK_OK;
    default: break;
    }
    if (r && twofa_store_value_set(out, r->bytes, r->len, r->version) != TWOFA_OK) return ADAPTER_CALLBACK_FAILED;
    return TWOFA_CALLBACK_OK;
}

static int32_t cb_store_put(void *user_data, const char *key, const uint8_t *bytes, uintptr_t len,
                            uint64_t expected_version, twofa_store_value *out) {
    (void)user_data;
    int32_t fault = write_fault("put", D_PUT, key);
    if (fault != TWOFA_CALLBACK_OK) return fault;
    record *r = table_find(&A.records, key);
    if (r ? r->version != expected_version : expected_version != 0) return TWOFA_CALLBACK_CONFLICT;
    uint64_t version = A.next_version++;
    if (twofa_store_value_set_version(out, version) != TWOFA_OK) return ADAPTER_CALLBACK_FAILED;
    if (r) {
        free(r->bytes);
        r->bytes = xmemdup(bytes, len);
        r->len = len;
        r->version = version;
    } else {
        table_add(&A.records, key, bytes, len, version);
    }
    return TWOFA_CALLBACK_OK;
}

static int32_t cb_store_delete(void *user_data, const char *key, uint64_t expected_version) {
    (void)user_data;
    int32_t fault = write_fault("delete", D_DELETE, key);
    if (fault != TWOFA_CALLBACK_OK) return fault;
    record *r = table_find(&A.records, key);
    if (r == NULL || r->version != expected_version) return TWOFA_CALLBACK_CONFLICT;
    table_remove(&A.records, r);
    return TWOFA_CALLBACK_OK;
}

static int32_t cb_send_mail(void *user_data, const char *to, const char *subject, const char *text,
                            const char *html) {
    (void)user_data;
    (void)html;
    note_call("send", to);
    if (A.n_mails == A.cap_mails) {
        A.cap_mails = A.cap_mails ? A.cap_mails * 2 : 8;
        A.mails = xrealloc(A.mails, A.cap_mails * sizeof *A.mails);
    }
    mail *m = &A.mails[A.n_mails++];
    m->to = xstrdup(to);
    m->subject = xstrdup(subject);
    m->text = xstrdup(text);
    m->delivered = false;
    switch (fires(D_SEND)) {
    case F_MAIL_FAIL: return ADAPTER_CALLBACK_FAILED;
    case F_MAIL_CRASH: return ADAPTER_CALLBACK_GARBAGE;
    default: break;
    }
    m->delivered = true;
    return TWOFA_CALLBACK_OK;
}

static int32_t cb_now(void *user_data, uint64_t *out_unix) {
    (void)user_data;
    *out_unix = A.now;
    return TWOFA_CALLBACK_OK;
}

/* Called by libtwofa during twofa_engine_run / twofa_admin_run, possibly on another thread; the
 * adapter runs one operation at a time and waits for it, so no two callbacks overlap and the
 * list is read only after the call returned. */
static void cb_emit_event(void *user_data, const char *event_json) {
    (void)user_data;
    if (A.n_events == A.cap_events) {
        A.cap_events = A.cap_events ? A.cap_events * 2 : 8;
        A.events = xrealloc(A.events, A.cap_events * sizeof *A.events);
    }
    A.events[A.n_events++] = xstrdup(event_json);
}

/* ---- commands ------------------------------------------------------------------------------- */

/* An answer that reports a problem of the adapter or the command itself. */
static void adapter_error(buf *out, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void adapter_error(buf *out, const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    fprintf(stderr, "c adapter: %s\n", message);
    out->n = 0;
    buf_puts(out, "{\"error\":{\"name\":\"adapter\",\"code\":null,\"message\":");
    buf_json_str(out, message);
    buf_puts(out, ",\"callback\":null}}");
}

static void close_engine(void) {
    twofa_admin_free(A.admin);
    twofa_engine_free(A.engine);
    A.admin = NULL;
    A.engine = NULL;
}

static void buf_twofa_error(buf *out, twofa_status status, const twofa_error *err) {
    buf_puts(out, "{\"name\":");
    buf_json_str(out, err && err->name ? err->name : twofa_status_name(status));
    buf_printf(out, ",\"code\":%" PRId32 ",\"message\":", (int32_t)(err ? err->code : status));
    buf_json_str(out, err && err->message ? err->message : twofa_last_error_message());
    buf_puts(out, ",\"callback\":");
    buf_json_str(out, err ? err->callback : NULL);
    buf_putc(out, '}');
}

static void cmd_config(buf *out, const char *json) {
    close_engine();
    table_clear(&A.records);
    twofa_host host = {
        .user_data = NULL,
        .store_get = cb_store_get,
        .store_put = cb_store_put,
        .store_delete = cb_store_delete,
        .send_mail = cb_send_mail,
        .now = cb_now,
        .emit_event = cb_emit_event,
    };
    twofa_error *err = NULL;
    twofa_engine *engine = NULL;
    twofa_status st = twofa_engine_new(json, &host, &engine, &err);
    if (st == TWOFA_OK) {
        /* A config without "admin": true gives no admin handle: `admin` commands then report
         * the core's forbidden error (see cmd_run). */
        st = twofa_admin_new(engine, &A.admin, &err);
        if (st == TWOFA_FORBIDDEN) {
            A.admin = NULL;
            twofa_error_free(err);
            err = NULL;
            st = TWOFA_OK;
        }
    }
    if (st != TWOFA_OK) {
        twofa_engine_free(engine);
        buf_puts(out, "{\"error\":");
        buf_twofa_error(out, st, err);
        buf_putc(out, '}');
        fprintf(stderr, "c adapter: config: %s\n", err && err->message ? err->message : "?");
        twofa_error_free(err);
        return;
    }
    A.engine = engine;
    buf_puts(out, "{\"ok\":true}");
}

static void cmd_run(buf *out, bool admin, const char *user, const char *request) {
    if (A.engine == NULL) {
        adapter_error(out, "no engine: send config first");
        return;
    }
    clear_operation();
    char *json = NULL;
    twofa_error *err = NULL;
    twofa_status st;
    if (admin && A.admin == NULL) {
        twofa_admin *none = NULL;
        st = twofa_admin_new(A.engine, &none, &err); /* TWOFA_FORBIDDEN, with the core's message */
        twofa_admin_free(none);
    } else {
        st = admin ? twofa_admin_run(A.admin, user, request, &json, &err)
                   : twofa_engine_run(A.engine, user, request, &json, &err);
    }
    A.kind = F_NONE; /* disarmed after every operation */
    buf_puts(out, "{\"outcome\":");
    if (st == TWOFA_OK) {
        if (json == NULL || buf_outcome_without_type(out, json) != 0) {
            fprintf(stderr, "c adapter: libtwofa returned an outcome that is not a JSON object: %s\n",
                    json ? json : "(null)");
            buf_puts(out, json ? json : "null");
        }
        buf_puts(out, ",\"error\":null");
    } else {
        buf_puts(out, "null,\"error\":");
        buf_twofa_error(out, st, err);
    }
    buf_printf(out, ",\"fired\":%s,\"calls\":[", A.fired ? "true" : "false");
    for (size_t i = 0; i < A.n_calls; i++) {
        if (i) buf_putc(out, ',');
        buf_json_str(out, A.calls[i]);
    }
    buf_puts(out, "],\"mails\":[");
    for (size_t i = 0; i < A.n_mails; i++) {
        const mail *m = &A.mails[i];
        if (i) buf_putc(out, ',');
        buf_puts(out, "{\"to\":");
        buf_json_str(out, m->to);
        buf_puts(out, ",\"subject\":");
        buf_json_str(out, m->subject);
        buf_puts(out, ",\"text\":");
        buf_json_str(out, m->text);
        buf_printf(out, ",\"delivered\":%s}", m->delivered ? "true" : "false");
    }
    buf_puts(out, "],\"events\":[");
    for (size_t i = 0; i < A.n_events; i++) {
        if (i) buf_putc(out, ',');
        const char *event = A.events[i];
        if (json_is_object(event)) {
            buf_puts(out, event);
        } else {
            /* Passed on as a string, so that the harness reports it instead of a broken line. */
            fprintf(stderr, "c adapter: libtwofa emitted an event that is not a JSON object: %s\n", event);
            buf_json_str(out, event);
        }
    }
    buf_puts(out, "]}");
    twofa_string_free(json);
    twofa_error_free(err);
    clear_operation();
}

static void cmd_dump(buf *out) {
    const record **sorted = xmalloc(A.records.n * sizeof *sorted);
    for (size_t i = 0; i < A.records.n; i++) sorted[i] = &A.records.items[i];
    qsort(sorted, A.records.n, sizeof *sorted, record_cmp);
    buf_puts(out, "{\"records\":{");
    for (size_t i = 0; i < A.records.n; i++) {
        if (i) buf_putc(out, ',');
        buf_json_str(out, sorted[i]->key);
        buf_puts(out, ":{\"value\":");
        buf_json_base64(out, sorted[i]->bytes, sorted[i]->len);
        buf_printf(out, ",\"version\":%" PRIu64 "}", sorted[i]->version);
    }
    buf_puts(out, "}}");
    free(sorted);
}

static slot *find_slot(const char *name) {
    for (size_t i = 0; i < A.n_slots; i++)
        if (strcmp(A.slots[i].name, name) == 0) return &A.slots[i];
    return NULL;
}

static void cmd_save(buf *out, const char *name) {
    slot *s = find_slot(name);
    if (s == NULL) {
        A.slots = xrealloc(A.slots, (A.n_slots + 1) * sizeof *A.slots);
        s = &A.slots[A.n_slots++];
        s->name = xstrdup(name);
        s->records = (table){0};
    }
    table_copy(&s->records, &A.records);
    buf_puts(out, "{\"ok\":true}");
}

static void cmd_load(buf *out, const char *name) {
    slot *s = find_slot(name);
    if (s == NULL) {
        adapter_error(out, "no slot %.200s", name);
        return;
    }
    table_copy(&A.records, &s->records);
    buf_puts(out, "{\"ok\":true}");
}

static void cmd_fault(buf *out, const char *args) {
    char kind[32];
    long n = 0;
    int used = 0;
    if (sscanf(args, "%31s %ld %n", kind, &n, &used) != 2 || args[used] != '\0') {
        adapter_error(out, "fault: expected `fault <kind> <n>`, got `%.200s`", args);
        return;
    }
    for (size_t k = 0; k < sizeof KIND_NAMES / sizeof KIND_NAMES[0]; k++) {
        if (strcmp(kind, KIND_NAMES[k]) != 0) continue;
        if (k != F_NONE && n < 1) break;
        A.kind = (fault_kind)k;
        A.n = n;
        A.seen = 0;
        buf_puts(out, "{\"ok\":true}");
        return;
    }
    adapter_error(out, "fault: unknown kind or n < 1: `%.200s`", args);
}

static void cmd_time(buf *out, const char *arg) {
    char *end = NULL;
    errno = 0;
    unsigned long long t = strtoull(arg, &end, 10);
    if (errno || end == arg || *end != '\0' || arg[0] == '-') {
        adapter_error(out, "time: not an unsigned integer: `%.200s`", arg);
        return;
    }
    A.now = (uint64_t)t;
    buf_puts(out, "{\"ok\":true}");
}

static void cmd_hello(buf *out) {
    buf_puts(out, "{\"surface\":\"c\",\"kinds\":[");
    for (size_t k = 1; k < sizeof KIND_NAMES / sizeof KIND_NAMES[0]; k++) {
        if (k > 1) buf_putc(out, ',');
        buf_json_str(out, KIND_NAMES[k]);
    }
    /* A store callback's undefined status is a failure like any other: TWOFA_STORAGE. */
    buf_printf(out, "],\"crash_error\":");
    buf_json_str(out, twofa_status_name(TWOFA_STORAGE));
    buf_putc(out, '}');
}

/* Splits off the first space-separated word of *rest (modifies the line). */
static char *word(char **rest) {
    char *p = *rest;
    while (*p == ' ') p++;
    char *start = p;
    while (*p && *p != ' ') p++;
    if (*p) *p++ = '\0';
    *rest = p;
    return start;
}

static void command(buf *out, char *line) {
    char *rest = line;
    char *name = word(&rest);
    while (*rest == ' ') rest++;
    if (strcmp(name, "hello") == 0) cmd_hello(out);
    else if (strcmp(name, "config") == 0) cmd_config(out, rest);
    else if (strcmp(name, "time") == 0) cmd_time(out, rest);
    else if (strcmp(name, "save") == 0) cmd_save(out, rest);
    else if (strcmp(name, "load") == 0) cmd_load(out, rest);
    else if (strcmp(name, "dump") == 0) cmd_dump(out);
    else if (strcmp(name, "fault") == 0) cmd_fault(out, rest);
    else if (strcmp(name, "run") == 0 || strcmp(name, "admin") == 0) {
        char *user = word(&rest);
        while (*rest == ' ') rest++;
        if (*user == '\0' || *rest == '\0') adapter_error(out, "%s: expected `%s <user> <request json>`", name, name);
        else cmd_run(out, name[0] == 'a', user, rest);
    } else adapter_error(out, "unknown command `%.100s`", name);
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    buf out = {0};
    while ((len = getline(&line, &cap, stdin)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (strlen(line) != (size_t)len) {
            out.n = 0;
            adapter_error(&out, "the command line contains a NUL byte");
        } else {
            char *p = line;
            while (*p == ' ' || *p == '\t') p++;
            if (*p == '\0') continue;
            out.n = 0;
            command(&out, p);
        }
        buf_putc(&out, '\n');
        if (fwrite(out.p, 1, out.n, stdout) != out.n || fflush(stdout) != 0) die("stdout");
    }
    close_engine();
    clear_operation();
    free(A.calls);
    free(A.mails);
    free(A.events);
    table_free(&A.records);
    for (size_t i = 0; i < A.n_slots; i++) {
        free(A.slots[i].name);
        table_free(&A.slots[i].records);
    }
    free(A.slots);
    free(out.p);
    free(line);
    return 0;
}
