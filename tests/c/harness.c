/* The runner's helpers, the C host (store, mail, clock), the sans-IO driver, JSON and TOTP
 * helpers. See harness.h. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char sentinel_byte;

/* ---- checks ------------------------------------------------------------------------------- */

static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
extern _Atomic int current_test_failures; /* defined by the runner */

void check_failed(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&report_mu);
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&report_mu);
    atomic_fetch_add(&current_test_failures, 1);
}

void jfree(char *json) {
    if (json != NULL && json != SENT) twofa_string_free(json);
}

void check_error(const char *file, int line, twofa_status status, twofa_status want, twofa_error **err,
                 const char *callback) {
    /* Read the thread's last message first: it is valid until the next libtwofa call. */
    const char *last = twofa_last_error_message();
    char *last_copy = strdup(last ? last : "(null)");
    if (status != want) {
        check_failed(file, line, "status %d (%s), expected %d (%s): %s", status, twofa_status_name(status), want,
                     twofa_status_name(want), *err && (*err)->message ? (*err)->message : "(no error)");
    }
    if (*err == NULL) {
        check_failed(file, line, "no twofa_error was stored");
        free(last_copy);
        return;
    }
    twofa_error *e = *err;
    if (e->code != status) check_failed(file, line, "err->code %d != status %d", e->code, status);
    if (e->name == NULL || strcmp(e->name, twofa_status_name(want)) != 0)
        check_failed(file, line, "err->name \"%s\", expected \"%s\"", e->name ? e->name : "(null)",
                     twofa_status_name(want));
    if (e->message == NULL || e->message[0] == '\0') check_failed(file, line, "err->message is empty");
    else if (strcmp(e->message, last_copy) != 0)
        check_failed(file, line, "twofa_last_error_message() \"%s\" != err->message \"%s\"", last_copy, e->message);
    int timed = want == TWOFA_RATE_LIMITED || want == TWOFA_LOCKED_OUT;
    if (timed && e->retry_after == 0) check_failed(file, line, "retry_after is 0 for %s", e->name);
    if (!timed && e->retry_after != 0)
        check_failed(file, line, "retry_after %llu for %s", (unsigned long long)e->retry_after, e->name);
    if (callback == NULL) {
        if (e->callback != NULL) check_failed(file, line, "err->callback \"%s\", expected NULL", e->callback);
    } else if (strcmp(callback, "*") != 0) {
        if (e->callback == NULL || strcmp(e->callback, callback) != 0)
            check_failed(file, line, "err->callback \"%s\", expected \"%s\"", e->callback ? e->callback : "(null)",
                         callback);
    }
    free(last_copy);
    twofa_error_free(e);
    *err = NULL;
}

int check_ok(const char *file, int line, twofa_status status, twofa_error **err) {
    if (status != TWOFA_OK) {
        check_failed(file, line, "status %d (%s): %s%s%s", status, twofa_status_name(status),
                     *err && (*err)->message ? (*err)->message : "(no error)",
                     *err && (*err)->callback ? " callback " : "", *err && (*err)->callback ? (*err)->callback : "");
    } else if (*err != NULL) {
        check_failed(file, line, "success left a twofa_error behind");
    }
    twofa_error_free(*err);
    *err = NULL;
    return status == TWOFA_OK;
}

void check_status_contains(const char *file, int line, twofa_engine *eng, const char *user, ...) {
    char *json = SENT;
    twofa_error *err = NULL;
    if (!check_ok(file, line, twofa_security_status(eng, user, &json, &err), &err)) return;
    va_list needles;
    va_start(needles, user);
    for (const char *needle; (needle = va_arg(needles, const char *)) != NULL;)
        if (strstr(json, needle) == NULL)
            check_failed(file, line, "the status of %s does not contain \"%s\": %.400s", user, needle, json);
    va_end(needles);
    jfree(json);
}

/* ---- store -------------------------------------------------------------------------------- */

static _Atomic uint64_t version_counter = 1000;

static uint64_t next_version(void) { return atomic_fetch_add(&version_counter, 1) + 1; }

static size_t bucket_of(const char *key) {
    size_t h = 5381;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = h * 33 + *p;
    return h % STORE_BUCKETS;
}

static kv_entry **find_slot(c_store *s, const char *key) {
    kv_entry **slot = &s->buckets[bucket_of(key)];
    while (*slot && strcmp((*slot)->key, key) != 0) slot = &(*slot)->next;
    return slot;
}

/* Counts a call; returns non-zero if this call must fail (under s->mu). */
static int count_call(c_store *s, const char *kind) {
    long n = ++s->calls;
    if (s->fail_at > 0 && n >= s->fail_at && n < s->fail_at + s->fail_count) {
        snprintf(s->failed_kind, sizeof s->failed_kind, "%s", kind);
        return 1;
    }
    return 0;
}

int32_t store_get(c_store *s, const char *key, twofa_store_value *out, const uint8_t **bytes, size_t *len,
                  uint64_t *version) {
    s->gets++;
    if (count_call(s, "store.get")) return s->fail_rc;
    kv_entry *e = *find_slot(s, key);
    if (version) *version = e ? e->version : 0;
    if (bytes) *bytes = e ? e->bytes : NULL;
    if (len) *len = e ? e->len : 0;
    if (e && out) {
        if (s->probe) {
            static const uint8_t one = 1;
            if (twofa_store_value_set(NULL, e->bytes, e->len, e->version) != TWOFA_INVALID_INPUT) s->probe_failures++;
            if (twofa_store_value_set(out, NULL, 5, e->version) != TWOFA_INVALID_INPUT) s->probe_failures++;
            if (twofa_store_value_set(out, &one, 1, 0) != TWOFA_INVALID_INPUT) s->probe_failures++;
        }
        if (twofa_store_value_set(out, e->bytes, e->len, e->version) != TWOFA_OK) return 99;
    }
    return TWOFA_CALLBACK_OK;
}

int32_t store_put(c_store *s, const char *key, const uint8_t *bytes, size_t len, uint64_t expected,
                  uint64_t *new_version) {
    s->puts++;
    if (count_call(s, "store.put")) return s->fail_rc;
    kv_entry **slot = find_slot(s, key);
    kv_entry *e = *slot;
    if (!s->no_cas && ((expected == 0 && e != NULL) || (expected != 0 && (e == NULL || e->version != expected)))) {
        s->conflicts++;
        return TWOFA_CALLBACK_CONFLICT;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return 98;
    if (len) memcpy(copy, bytes, len);
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (!e) {
            free(copy);
            return 98;
        }
        e->key = strdup(key);
        *slot = e;
    } else {
        free(e->bytes);
    }
    e->bytes = copy;
    e->len = len;
    e->version = next_version();
    *new_version = e->version;
    return TWOFA_CALLBACK_OK;
}

int32_t store_delete(c_store *s, const char *key, uint64_t expected) {
    s->deletes++;
    if (count_call(s, "store.delete")) return s->fail_rc;
    kv_entry **slot = find_slot(s, key);
    kv_entry *e = *slot;
    if (e == NULL || (!s->no_cas && e->version != expected)) {
        if (e == NULL && s->no_cas) return TWOFA_CALLBACK_OK;
        s->conflicts++;
        return TWOFA_CALLBACK_CONFLICT;
    }
    *slot = e->next;
    free(e->key);
    free(e->bytes);
    free(e);
    return TWOFA_CALLBACK_OK;
}

void store_arm(c_store *s, long fail_at) {
    pthread_mutex_lock(&s->mu);
    s->calls = s->gets = s->puts = s->deletes = 0;
    s->fail_at = fail_at;
    s->fail_count = 1;
    s->fail_rc = RC_FAILED;
    s->failed_kind[0] = '\0';
    pthread_mutex_unlock(&s->mu);
}

size_t store_count_prefix(c_store *s, const char *prefix) {
    size_t n = 0, pl = strlen(prefix);
    pthread_mutex_lock(&s->mu);
    for (size_t b = 0; b < STORE_BUCKETS; b++)
        for (kv_entry *e = s->buckets[b]; e; e = e->next)
            if (strncmp(e->key, prefix, pl) == 0) n++;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t store_count(c_store *s) { return store_count_prefix(s, ""); }

int store_has(c_store *s, const char *key) {
    pthread_mutex_lock(&s->mu);
    int has = *find_slot(s, key) != NULL;
    pthread_mutex_unlock(&s->mu);
    return has;
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp((*(kv_entry *const *)a)->key, (*(kv_entry *const *)b)->key);
}

snapshot *store_snapshot(c_store *s) {
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    for (size_t b = 0; b < STORE_BUCKETS; b++)
        for (kv_entry *e = s->buckets[b]; e; e = e->next) n++;
    kv_entry **all = calloc(n ? n : 1, sizeof *all);
    size_t i = 0;
    for (size_t b = 0; b < STORE_BUCKETS; b++)
        for (kv_entry *e = s->buckets[b]; e; e = e->next) all[i++] = e;
    qsort(all, n, sizeof *all, cmp_keys);
    snapshot *snap = calloc(1, sizeof *snap);
    snap->n = n;
    snap->keys = calloc(n ? n : 1, sizeof(char *));
    snap->bytes = calloc(n ? n : 1, sizeof(uint8_t *));
    snap->lens = calloc(n ? n : 1, sizeof(size_t));
    for (i = 0; i < n; i++) {
        snap->keys[i] = strdup(all[i]->key);
        snap->bytes[i] = malloc(all[i]->len ? all[i]->len : 1);
        memcpy(snap->bytes[i], all[i]->bytes, all[i]->len);
        snap->lens[i] = all[i]->len;
    }
    free(all);
    pthread_mutex_unlock(&s->mu);
    return snap;
}

int snapshot_equal(const snapshot *a, const snapshot *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->keys[i], b->keys[i]) != 0 || a->lens[i] != b->lens[i]) return 0;
        if (memcmp(a->bytes[i], b->bytes[i], a->lens[i]) != 0) return 0;
    }
    return 1;
}

int snapshot_equal_except(const snapshot *a, const snapshot *b, const char *prefix) {
    size_t plen = strlen(prefix), i = 0, j = 0;
    for (;;) {
        while (i < a->n && strncmp(a->keys[i], prefix, plen) == 0) i++;
        while (j < b->n && strncmp(b->keys[j], prefix, plen) == 0) j++;
        if (i == a->n || j == b->n) return i == a->n && j == b->n;
        if (strcmp(a->keys[i], b->keys[j]) != 0 || a->lens[i] != b->lens[j]) return 0;
        if (memcmp(a->bytes[i], b->bytes[j], a->lens[i]) != 0) return 0;
        i++;
        j++;
    }
}

void snapshot_free(snapshot *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->keys[i]);
        free(s->bytes[i]);
    }
    free(s->keys);
    free(s->bytes);
    free(s->lens);
    free(s);
}

void check_unchanged(const char *file, int line, c_store *s, snapshot *before, const char *except) {
    snapshot *after = store_snapshot(s);
    if (except == NULL && !snapshot_equal(before, after))
        check_failed(file, line, "the store changed");
    else if (except != NULL && !snapshot_equal_except(before, after, except))
        check_failed(file, line, "the store changed beyond the keys starting with \"%s\"", except);
    snapshot_free(before);
    snapshot_free(after);
}

/* ---- callbacks ------------------------------------------------------------------------------ */

static int32_t cb_get(void *ud, const char *key, twofa_store_value *out) {
    c_store *s = &((env *)ud)->store;
    pthread_mutex_lock(&s->mu);
    int32_t rc = store_get(s, key, out, NULL, NULL, NULL);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int32_t cb_put(void *ud, const char *key, const uint8_t *bytes, uintptr_t len, uint64_t expected,
                      twofa_store_value *out) {
    c_store *s = &((env *)ud)->store;
    pthread_mutex_lock(&s->mu);
    uint64_t v = 0;
    int32_t rc = store_put(s, key, bytes, len, expected, &v);
    if (rc == TWOFA_CALLBACK_OK && !s->put_no_version) {
        if (s->probe) {
            if (twofa_store_value_set_version(NULL, v) != TWOFA_INVALID_INPUT) s->probe_failures++;
            if (twofa_store_value_set_version(out, 0) != TWOFA_INVALID_INPUT) s->probe_failures++;
        }
        if (twofa_store_value_set_version(out, v) != TWOFA_OK) rc = 99;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int32_t cb_delete(void *ud, const char *key, uint64_t expected) {
    c_store *s = &((env *)ud)->store;
    pthread_mutex_lock(&s->mu);
    int32_t rc = store_delete(s, key, expected);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int mail_add(mailbox *m, const char *to, const char *subject, const char *text, const char *html) {
    pthread_mutex_lock(&m->mu);
    long n = ++m->calls;
    if (m->fail_at == -1 || (m->fail_at > 0 && n == m->fail_at)) {
        pthread_mutex_unlock(&m->mu);
        return 1;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->msgs = realloc(m->msgs, m->cap * sizeof *m->msgs);
    }
    mail_msg *msg = &m->msgs[m->n++];
    msg->to = strdup(to);
    msg->subject = strdup(subject);
    msg->text = strdup(text);
    msg->html = strdup(html);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int32_t cb_send(void *ud, const char *to, const char *subject, const char *text, const char *html) {
    return mail_add(&((env *)ud)->mail, to, subject, text, html) ? 5 : TWOFA_CALLBACK_OK;
}

static int32_t cb_now(void *ud, uint64_t *out) {
    env *e = ud;
    atomic_fetch_add(&e->now_calls, 1);
    if (atomic_load(&e->now_fail)) return 3;
    *out = atomic_load(&e->now);
    return TWOFA_CALLBACK_OK;
}

static void cb_emit(void *ud, const char *event_json) {
    event_log *l = &((env *)ud)->events;
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->json = realloc(l->json, l->cap * sizeof *l->json);
    }
    l->json[l->n++] = strdup(event_json);
    pthread_mutex_unlock(&l->mu);
}

void events_clear(event_log *l) {
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) free(l->json[i]);
    l->n = 0;
    pthread_mutex_unlock(&l->mu);
}

size_t events_count(event_log *l) {
    pthread_mutex_lock(&l->mu);
    size_t n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Appends `kind` to the comma-separated list in out (of size cap). */
static void append_kind(char *out, size_t cap, const char *kind) {
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s", len ? "," : "", kind ? kind : "?");
}

void events_kinds(event_log *l, char *out, size_t cap) {
    out[0] = '\0';
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++) {
        char *kind = json_str(l->json[i], "kind");
        append_kind(out, cap, kind);
        free(kind);
    }
    pthread_mutex_unlock(&l->mu);
}

int events_contain(event_log *l, const char *needle) {
    int found = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && !found; i++) found = strstr(l->json[i], needle) != NULL;
    pthread_mutex_unlock(&l->mu);
    return found;
}

char *event_at(event_log *l, size_t i) {
    pthread_mutex_lock(&l->mu);
    char *copy = i < l->n ? strdup(l->json[i]) : NULL;
    pthread_mutex_unlock(&l->mu);
    return copy;
}

env *env_new(uint64_t now) {
    env *e = calloc(1, sizeof *e);
    pthread_mutex_init(&e->store.mu, NULL);
    pthread_mutex_init(&e->mail.mu, NULL);
    pthread_mutex_init(&e->events.mu, NULL);
    e->store.fail_rc = RC_FAILED;
    atomic_store(&e->now, now);
    e->host.user_data = e;
    e->host.store_get = cb_get;
    e->host.store_put = cb_put;
    e->host.store_delete = cb_delete;
    e->host.send_mail = cb_send;
    e->host.now = cb_now;
    e->host.emit_event = cb_emit;
    return e;
}

void mail_clear(mailbox *m) {
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        free(m->msgs[i].to);
        free(m->msgs[i].subject);
        free(m->msgs[i].text);
        free(m->msgs[i].html);
    }
    m->n = 0;
    m->calls = 0;
    m->fail_at = 0;
    pthread_mutex_unlock(&m->mu);
}

void env_free(env *e) {
    if (!e) return;
    for (size_t b = 0; b < STORE_BUCKETS; b++) {
        kv_entry *x = e->store.buckets[b];
        while (x) {
            kv_entry *next = x->next;
            free(x->key);
            free(x->bytes);
            free(x);
            x = next;
        }
    }
    mail_clear(&e->mail);
    free(e->mail.msgs);
    events_clear(&e->events);
    free(e->events.json);
    pthread_mutex_destroy(&e->events.mu);
    pthread_mutex_destroy(&e->store.mu);
    pthread_mutex_destroy(&e->mail.mu);
    free(e);
}

void env_set_now(env *e, uint64_t t) { atomic_store(&e->now, t); }

twofa_engine *env_engine(env *e, const char *config) {
    twofa_engine *eng = (twofa_engine *)SENT_PTR;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_engine_new(config, &e->host, &eng, &err), &err)) return NULL;
    return eng;
}

twofa_admin *admin_of(twofa_engine *engine) {
    twofa_admin *admin = (twofa_admin *)SENT_PTR;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_admin_new(engine, &admin, &err), &err)) return NULL;
    return admin;
}

fixture setup(const char *config, uint64_t now) {
    fixture f;
    f.e = env_new(now);
    f.eng = env_engine(f.e, config);
    f.adm = f.eng ? admin_of(f.eng) : NULL;
    return f;
}

void teardown(fixture *f) {
    twofa_admin_free(f->adm);
    twofa_engine_free(f->eng);
    env_free(f->e);
}

size_t mail_count(mailbox *m) {
    pthread_mutex_lock(&m->mu);
    size_t n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int mail_last_code(mailbox *m, const char *to, char *out) {
    int found = 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = m->n; i-- > 0 && !found;) {
        if (to && strcmp(m->msgs[i].to, to) != 0) continue;
        const char *p = strstr(m->msgs[i].text, "code is ");
        if (!p) continue;
        p += strlen("code is ");
        size_t k = 0;
        while (isdigit((unsigned char)p[k]) && k < 15) {
            out[k] = p[k];
            k++;
        }
        out[k] = '\0';
        found = k > 0;
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

char *mail_last_field(mailbox *m, int field) {
    char *r = NULL;
    pthread_mutex_lock(&m->mu);
    if (m->n) {
        mail_msg *msg = &m->msgs[m->n - 1];
        const char *f = field == 0 ? msg->to : field == 1 ? msg->subject : field == 2 ? msg->text : msg->html;
        r = strdup(f);
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

/* ---- sans-IO driver --------------------------------------------------------------------------- */

twofa_status drive_op(twofa_operation *op, env *e, drive_opts *o, char **out_json, twofa_error **err) {
    drive_opts none = {0};
    if (!o) o = &none;
    int loads = 0;
    o->steps = 0;
    o->trace[0] = '\0';
    o->events[0] = '\0';
    for (;;) {
        twofa_action a;
        memset(&a, 0x5a, sizeof a);
        twofa_status st = twofa_operation_next(op, &a, err);
        if (st != TWOFA_OK) return st;
        size_t tl = strlen(o->trace);
        if (tl + 1 < sizeof o->trace) {
            o->trace[tl] = "DLWDS?E"[a.kind >= 0 && a.kind <= 6 ? a.kind : 0];
            if (a.kind == TWOFA_ACTION_DONE) o->trace[tl] = '.';
            o->trace[tl + 1] = '\0';
        }
        if (++o->steps > 200) {
            check_failed(__FILE__, __LINE__, "the operation does not finish: %s", o->trace);
            return -1;
        }
        c_store *s = &e->store;
        switch (a.kind) {
        case TWOFA_ACTION_DONE:
            CHECK(a.key == NULL && a.bytes == NULL && a.len == 0 && a.to == NULL && a.event_json == NULL);
            return twofa_operation_finish(op, out_json, err);
        case TWOFA_ACTION_EMIT: {
            CHECK(a.event_json != NULL && a.key == NULL && a.to == NULL && a.bytes == NULL);
            char *kind = a.event_json ? json_str(a.event_json, "kind") : NULL;
            append_kind(o->events, sizeof o->events, kind);
            free(kind);
            CHECK_INT(twofa_operation_feed_emitted(op, err), TWOFA_OK);
            break;
        }
        case TWOFA_ACTION_LOAD: {
            CHECK(a.key != NULL && a.to == NULL && a.bytes == NULL && a.event_json == NULL);
            loads++;
            if (o->fail_load_at == loads) {
                CHECK_INT(twofa_operation_feed_load(op, RC_FAILED, "the C store is down", NULL, 0, 0), TWOFA_OK);
                break;
            }
            pthread_mutex_lock(&s->mu);
            const uint8_t *bytes = NULL;
            size_t len = 0;
            uint64_t version = 0;
            int32_t rc = store_get(s, a.key, NULL, &bytes, &len, &version);
            CHECK_INT(twofa_operation_feed_load(op, rc, NULL, bytes, len, version), TWOFA_OK);
            pthread_mutex_unlock(&s->mu);
            break;
        }
        case TWOFA_ACTION_WRITE: {
            CHECK(a.key != NULL && a.bytes != NULL && a.len > 0 && a.to == NULL);
            if (o->conflict_writes > 0) {
                o->conflict_writes--;
                CHECK_INT(twofa_operation_feed_write(op, TWOFA_CALLBACK_CONFLICT, NULL, 0), TWOFA_OK);
                break;
            }
            pthread_mutex_lock(&s->mu);
            uint64_t v = 0;
            int32_t rc = store_put(s, a.key, a.bytes, a.len, a.expected_version, &v);
            pthread_mutex_unlock(&s->mu);
            CHECK_INT(twofa_operation_feed_write(op, rc, rc ? "put failed" : NULL, v), TWOFA_OK);
            break;
        }
        case TWOFA_ACTION_DELETE: {
            CHECK(a.key != NULL && a.expected_version != 0);
            pthread_mutex_lock(&s->mu);
            int32_t rc = store_delete(s, a.key, a.expected_version);
            pthread_mutex_unlock(&s->mu);
            CHECK_INT(twofa_operation_feed_delete(op, rc, NULL), TWOFA_OK);
            break;
        }
        case TWOFA_ACTION_SEND: {
            CHECK(a.to && a.subject && a.text && a.html && a.key == NULL && a.event_json == NULL);
            if (o->fail_send) {
                CHECK_INT(twofa_operation_feed_send(op, 1, "the C mailer is down"), TWOFA_OK);
                break;
            }
            mail_add(&e->mail, a.to, a.subject, a.text, a.html);
            CHECK_INT(twofa_operation_feed_send(op, TWOFA_CALLBACK_OK, NULL), TWOFA_OK);
            break;
        }
        default:
            check_failed(__FILE__, __LINE__, "unknown action kind %d", a.kind);
            return -1;
        }
    }
}

/* ---- JSON (read with examples/c-host/json.h) ---------------------------------------------- */

char *json_str(const char *json, const char *key) { return json_string(json_find(json, key)); }

/* The value of the first member named `key` if it is an array, or NULL. */
static const char *json_array(const char *json, const char *key) {
    const char *value = json_find(json, key);
    return value != NULL && *value == '[' ? value : NULL;
}

char *json_array_str(const char *json, const char *key, size_t n) {
    const char *item = json_first(json_array(json, key));
    for (size_t i = 0; item != NULL && i < n; i++) item = json_next(item);
    return json_string(item);
}

long json_array_len(const char *json, const char *key) {
    const char *array = json_array(json, key);
    if (array == NULL) return -1;
    long n = 0;
    for (const char *item = json_first(array); item != NULL; item = json_next(item), n++)
        if (*item != '"') return -1;
    return n;
}

/* ---- TOTP by oathtool ------------------------------------------------------------------------ */

int oath_code(const char *secret, uint64_t t, int digits, const char *algorithm, char out[16]) {
    for (const char *p = secret; *p; p++)
        if (!(isupper((unsigned char)*p) || (*p >= '2' && *p <= '7') || *p == '=')) return 0;
    char cmd[512];
    const char *algo = strcmp(algorithm, "SHA256") == 0 ? "sha256" : strcmp(algorithm, "SHA512") == 0 ? "sha512" : "sha1";
    snprintf(cmd, sizeof cmd, "oathtool --totp=%s -d %d -b %s -N @%llu 2>/dev/null", algo, digits, secret,
             (unsigned long long)t);
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[64] = {0};
    int ok = fgets(line, sizeof line, f) != NULL;
    int rc = pclose(f);
    if (!ok || rc != 0) return 0;
    size_t k = 0;
    while (isdigit((unsigned char)line[k]) && k < 15) {
        out[k] = line[k];
        k++;
    }
    out[k] = '\0';
    return (int)k == digits;
}

void wrong_code(const char *secret, uint64_t t, int digits, char out[16]) {
    char window[5][16];
    for (int i = 0; i < 5; i++)
        if (!oath_code(secret, t + (uint64_t)(i - 2) * 30, digits, "SHA1", window[i])) window[i][0] = '\0';
    for (unsigned candidate = 0;; candidate++) {
        snprintf(out, 16, "%0*u", digits, candidate * 1111u % 100000000u);
        out[digits] = '\0';
        int clash = 0;
        for (int i = 0; i < 5; i++) clash |= strcmp(out, window[i]) == 0;
        if (!clash) return;
    }
}

char *repeat_char(char c, size_t n) {
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- flows -------------------------------------------------------------------------------- */

char *begin_challenge(twofa_engine *eng, const char *user) {
    char *json = SENT;
    twofa_error *err = NULL;
    if (!EXPECT_OK(twofa_login_begin(eng, user, &json, &err), &err)) return NULL;
    char *id = json_str(json, "challenge_id");
    CHECK_MSG(id != NULL, "no challenge_id in %s", json);
    jfree(json);
    return id;
}

int set_contact(const char *file, int line, twofa_engine *eng, const char *user, const char *address) {
    char *json = SENT;
    twofa_error *err = NULL;
    int ok = check_ok(file, line, twofa_set_contact_email(eng, user, address, NULL, &json, &err), &err);
    jfree(json);
    return ok;
}

int import_totp(const char *file, int line, twofa_admin *admin, const char *user, const char *secret) {
    char *json = SENT;
    twofa_error *err = NULL;
    int ok = check_ok(file, line, twofa_admin_totp_import(admin, user, secret, "SHA1", 6, 30, &json, &err), &err);
    jfree(json);
    return ok;
}

char *import_and_login(env *e, twofa_engine *eng, const char *user, const char *secret) {
    twofa_admin *admin = admin_of(eng);
    if (!admin) return NULL;
    int ok = IMPORT_TOTP(admin, user, secret);
    twofa_admin_free(admin);
    if (!ok) return NULL;
    char *challenge = begin_challenge(eng, user);
    if (!challenge) return NULL;
    char code[16];
    if (!oath_code(secret, atomic_load(&e->now), 6, "SHA1", code)) {
        check_failed(__FILE__, __LINE__, "oathtool failed");
        free(challenge);
        return NULL;
    }
    char *json = SENT;
    twofa_error *err = NULL;
    ok = EXPECT_OK(twofa_login_verify(eng, user, challenge, "totp", code, &json, &err), &err);
    free(challenge);
    char *token = ok ? json_str(json, "token") : NULL;
    jfree(json);
    return token;
}

/* ---- temp dir ------------------------------------------------------------------------------ */

static char temp_path[512];

static void remove_temp_dir(void) {
    if (!temp_path[0]) return;
    DIR *d = opendir(temp_path);
    if (d) {
        struct dirent *ent;
        char path[1024];
        while ((ent = readdir(d)) != NULL) {
            if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", temp_path, ent->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(temp_path);
}

const char *temp_dir(void) {
    if (!temp_path[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(temp_path, sizeof temp_path, "%s/twofa-c-tests-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(temp_path)) {
            perror("mkdtemp");
            exit(2);
        }
        atexit(remove_temp_dir);
    }
    return temp_path;
}
