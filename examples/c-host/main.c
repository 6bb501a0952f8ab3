/*
 * c-host: a small C program that embeds libtwofa.
 *
 * It brings its own store (an in-memory key-value table with versions), its own mail system
 * (messages are printed and kept in a mailbox) and its own clock (a number the program moves
 * forward), and walks through what a shop does with twofa:
 *
 *   1. checks that its store behaves as twofa needs (twofa_check_store);
 *   2. records that the account placed an order, so 2FA becomes required;
 *   3. enrols an authenticator app (`oathtool` stands in for the app on the user's phone);
 *   4. signs in with it, and sees the same code refused a second time;
 *   5. enrols an email address and signs in with an emailed code;
 *   6. proves a new address for security notices with a code (twofa_contact_email_begin and
 *      twofa_contact_email_confirm, with the sign-in's step-up token);
 *   7. shows the Security tab;
 *   8. prints the audit events libtwofa hands to its emit_event callback along the way.
 *
 * Build and run it with `make -f examples/c-host/c-host.mk c-host-check`; docs/c-api.md
 * describes the API. Every libtwofa call is checked: on an unexpected error the program prints
 * the error's name and message and exits with status 1. libtwofa's results are JSON; json.h,
 * next to this file, is the small reader this program uses for them.
 */
#define _POSIX_C_SOURCE 200809L /* popen, strdup */

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <twofa.h>

#include "json.h"

/* Only "issuer" and "keys" are required; every other setting has a default. The key is a fixed
 * example: a real application keeps a random one (`openssl rand -base64 32`) in its secrets. */
static const char CONFIG_JSON[] =
    "{\"issuer\": \"Example Shop\","
    " \"keys\": [{\"id\": \"k1\", \"secret\": \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"}]}";

static const char USER[] = "user-42";            /* the shop's own user id */
static const char EMAIL[] = "alice@example.com"; /* the user's email address */
static const char NOTICE_EMAIL[] = "security@alice.example"; /* where she wants notices */
#define START_TIME UINT64_C(1700000000)           /* 2023-11-14 22:13:20 UTC */

/* ---------------------------------------------------------------------------------------------
 * The host: everything libtwofa calls back into. One struct, passed as `user_data` to every
 * callback. libtwofa may call the callbacks from several threads at once (twofa_check_store
 * does), so the store and the mailbox have a mutex.
 * ------------------------------------------------------------------------------------------ */

struct entry {
    char *key;
    uint8_t *bytes;
    size_t len;
    uint64_t version;
    struct entry *next;
};

struct app {
    /* The store: a linked list. Versions come from one counter, so a version is never 0 and
     * never reused for a key, not even after a delete. */
    pthread_mutex_t store_lock;
    struct entry *entries;
    uint64_t last_version;

    /* The mailbox: the text of the last message, where this program reads emailed codes. */
    pthread_mutex_t mail_lock;
    char *last_mail;

    /* The clock: the time the program says it is. */
    uint64_t now;
};

/* What a callback returns when something outside twofa's contract fails (here: malloc). Any
 * value other than TWOFA_CALLBACK_OK and TWOFA_CALLBACK_CONFLICT is a failure. */
#define CALLBACK_FAILED (-1)

static struct entry *find_entry(struct app *app, const char *key)
{
    for (struct entry *e = app->entries; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* store_get: hand the value back with twofa_store_value_set; a missing key is not an error. */
static int32_t store_get(void *user_data, const char *key, twofa_store_value *out)
{
    struct app *app = user_data;
    int32_t rc = TWOFA_CALLBACK_OK;
    pthread_mutex_lock(&app->store_lock);
    struct entry *e = find_entry(app, key);
    if (e != NULL && twofa_store_value_set(out, e->bytes, e->len, e->version) != TWOFA_OK)
        rc = CALLBACK_FAILED;
    pthread_mutex_unlock(&app->store_lock);
    return rc;
}

/* store_put: insert only when expected_version is 0, otherwise compare-and-swap the version;
 * report the new version with twofa_store_value_set_version. */
static int32_t store_put(void *user_data, const char *key, const uint8_t *bytes, uintptr_t len,
                         uint64_t expected_version, twofa_store_value *out)
{
    struct app *app = user_data;
    int32_t rc = TWOFA_CALLBACK_OK;
    pthread_mutex_lock(&app->store_lock);
    struct entry *e = find_entry(app, key);
    bool matches = expected_version == 0 ? e == NULL : e != NULL && e->version == expected_version;
    uint8_t *copy = matches ? malloc(len > 0 ? len : 1) : NULL;
    if (!matches) {
        rc = TWOFA_CALLBACK_CONFLICT;
    } else if (copy == NULL) {
        rc = CALLBACK_FAILED;
    } else {
        if (e == NULL) { /* a new key */
            e = calloc(1, sizeof *e);
            if (e == NULL || (e->key = strdup(key)) == NULL) {
                free(e);
                free(copy);
                pthread_mutex_unlock(&app->store_lock);
                return CALLBACK_FAILED;
            }
            e->next = app->entries;
            app->entries = e;
        }
        if (len > 0)
            memcpy(copy, bytes, len);
        free(e->bytes);
        e->bytes = copy;
        e->len = len;
        e->version = ++app->last_version;
        if (twofa_store_value_set_version(out, e->version) != TWOFA_OK)
            rc = CALLBACK_FAILED;
    }
    pthread_mutex_unlock(&app->store_lock);
    return rc;
}

/* store_delete: delete only if the version still matches. */
static int32_t store_delete(void *user_data, const char *key, uint64_t expected_version)
{
    struct app *app = user_data;
    int32_t rc = TWOFA_CALLBACK_CONFLICT;
    pthread_mutex_lock(&app->store_lock);
    for (struct entry **link = &app->entries; *link != NULL; link = &(*link)->next) {
        struct entry *e = *link;
        if (strcmp(e->key, key) == 0) {
            if (e->version == expected_version) {
                *link = e->next;
                free(e->key);
                free(e->bytes);
                free(e);
                rc = TWOFA_CALLBACK_OK;
            }
            break;
        }
    }
    pthread_mutex_unlock(&app->store_lock);
    return rc;
}

/* send_mail: "deliver" by printing; the strings are valid only during the call, so keep a copy. */
static int32_t send_mail(void *user_data, const char *to, const char *subject, const char *text,
                         const char *html)
{
    (void)html; /* a real mailer sends both bodies */
    struct app *app = user_data;
    char *copy = strdup(text);
    if (copy == NULL)
        return CALLBACK_FAILED;
    pthread_mutex_lock(&app->mail_lock);
    printf("  [mail to %s] %s\n", to, subject);
    for (const char *line = text; *line != '\0';) {
        size_t n = strcspn(line, "\n");
        printf("  | %.*s\n", (int)n, line);
        line += n + (line[n] == '\n');
    }
    free(app->last_mail);
    app->last_mail = copy;
    pthread_mutex_unlock(&app->mail_lock);
    return TWOFA_CALLBACK_OK;
}

/* emit_event: the audit trail (method added, sign-in succeeded or failed, ...), one JSON object
 * per event, after the change committed. A shop appends it to its security log; this example
 * prints it. It never contains a secret, code or token, and must not call back into libtwofa. */
static void emit_event(void *user_data, const char *event_json)
{
    struct app *app = user_data;
    pthread_mutex_lock(&app->mail_lock); /* keeps lines whole if several threads sign in */
    printf("  [security log] %s\n", event_json);
    pthread_mutex_unlock(&app->mail_lock);
}

static int32_t clock_now(void *user_data, uint64_t *out_unix)
{
    const struct app *app = user_data;
    *out_unix = app->now;
    return TWOFA_CALLBACK_OK;
}

static void app_free(struct app *app)
{
    while (app->entries != NULL) {
        struct entry *e = app->entries;
        app->entries = e->next;
        free(e->key);
        free(e->bytes);
        free(e);
    }
    free(app->last_mail);
    pthread_mutex_destroy(&app->store_lock);
    pthread_mutex_destroy(&app->mail_lock);
}

/* ---------------------------------------------------------------------------------------------
 * Helpers.
 * ------------------------------------------------------------------------------------------ */

/* Stops the program on an unexpected error, printing the name and message of `err`. */
static void check(twofa_status status, twofa_error *err, const char *what)
{
    if (status == TWOFA_OK)
        return;
    fprintf(stderr, "error: %s failed: %s: %s\n", what,
            err != NULL ? err->name : twofa_status_name(status),
            err != NULL ? err->message : twofa_last_error_message());
    twofa_error_free(err);
    exit(1);
}

static void *must(void *p)
{
    if (p == NULL) {
        fprintf(stderr, "error: out of memory\n");
        exit(1);
    }
    return p;
}

static void heading(const char *title)
{
    printf("\n== %s\n", title);
}

/* A copy of the JSON string at `value` (free() it). The results hold every string this program
 * reads, so a missing one is a bug: the program stops. */
static char *string_of(const char *value)
{
    char *s = json_string(value);
    if (s == NULL) {
        fprintf(stderr, "error: a result lacks a string this program reads (or out of memory)\n");
        exit(1);
    }
    return s;
}

/* The JSON number at `value`; as with string_of, a missing one stops the program. */
static uint64_t number_of(const char *value)
{
    uint64_t n = 0;
    if (!json_u64(value, &n)) {
        fprintf(stderr, "error: a result lacks a number this program reads\n");
        exit(1);
    }
    return n;
}

/* The strings of the JSON array at `array` as "a, b, c", or "none" when it is empty (free() it);
 * `count` may be NULL. */
static char *joined(const char *array, size_t *count)
{
    char *out = must(calloc(1, (array != NULL ? strlen(array) : 0) + sizeof "none"));
    size_t n = 0;
    for (const char *item = json_first(array); item != NULL; item = json_next(item), n++) {
        char *s = string_of(item);
        strcat(strcat(out, n > 0 ? ", " : ""), s);
        free(s);
    }
    if (n == 0)
        strcpy(out, "none");
    if (count != NULL)
        *count = n;
    return out;
}

/* The user's authenticator app, played by `oathtool --totp` at the program's time. */
static void authenticator_code(const char *secret, uint64_t now, char code[16])
{
    char command[256];
    snprintf(command, sizeof command, "oathtool --totp -b '%s' -N @%" PRIu64, secret, now);
    FILE *p = popen(command, "r");
    bool ok = p != NULL && fgets(code, 16, p) != NULL;
    if (p != NULL && pclose(p) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "error: `oathtool` failed (Debian: apt-get install oathtool)\n");
        exit(1);
    }
    code[strcspn(code, "\r\n")] = '\0';
}

/* After a {"type":"code_sent",...} result (released here): prints where the code went, with
 * `note` after the address, and plays the user, who types the code from the last message ("...
 * code is 123456. ..." in the default templates) into `code`. */
static void receive_code(struct app *app, char *json, const char *note, char code[16])
{
    char *sent_to = joined(json_member(json, "sent_to"), NULL);
    printf("Code sent to %s%s.\n", sent_to, note);
    free(sent_to);
    twofa_string_free(json);

    size_t n = 0;
    pthread_mutex_lock(&app->mail_lock);
    const char *p = app->last_mail != NULL ? strstr(app->last_mail, "code is ") : NULL;
    if (p != NULL)
        for (p += strlen("code is "); n < 15 && isdigit((unsigned char)p[n]); n++)
            code[n] = p[n];
    pthread_mutex_unlock(&app->mail_lock);
    code[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "error: no code in the last mail\n");
        exit(1);
    }
    printf("The user types the code from the mail: %s\n", code);
}

/* Prints the Security tab: twofa_security_status → {"type":"status",...}. */
static void print_security_tab(const twofa_engine *engine)
{
    char *json = NULL;
    twofa_error *err = NULL;
    check(twofa_security_status(engine, USER, &json, &err), err, "twofa_security_status");

    /* "methods": [{"id":...,"kind":...,"label":...,"created":...,"last_used":...}, ...] */
    const char *methods = json_first(json_member(json, "methods"));
    printf("Methods:%s\n", methods == NULL ? "         none" : "");
    for (const char *m = methods; m != NULL; m = json_next(m)) {
        char *id = string_of(json_member(m, "id"));
        char *kind = string_of(json_member(m, "kind"));
        char *label = string_of(json_member(m, "label"));
        uint64_t last_used; /* null until the first sign-in with the method */
        printf("  %-8s %-6s %-20s last used: ", id, kind, label);
        if (json_u64(json_member(m, "last_used"), &last_used))
            printf("%" PRIu64 "\n", last_used);
        else
            printf("never\n");
        free(id);
        free(kind);
        free(label);
    }
    char *recommendations = joined(json_member(json, "recommendations"), NULL);
    char *warnings = joined(json_member(json, "warnings"), NULL);
    bool required = json_is_true(json_member(json, "two_factor_required"));
    bool compliant = json_is_true(json_member(json, "compliant"));
    printf("2FA required:    %s\n", required ? "yes" : "no");
    printf("Compliant:       %s\n", compliant ? "yes" : "no");
    printf("Recommendations: %s\n", recommendations);
    printf("Warnings:        %s\n", warnings);
    free(recommendations);
    free(warnings);
    twofa_string_free(json);
}

/* Prints a {"type":"method_added","method":{...},"step_up":...,"notices":{...}} result. */
static void print_method_added(const char *json)
{
    const char *method = json_member(json, "method");
    char *id = string_of(json_member(method, "id"));
    char *label = string_of(json_member(method, "label"));
    uint64_t sent = number_of(json_member(json_member(json, "notices"), "sent"));
    printf("Added %s \"%s\"; notices sent: %" PRIu64 ".\n", id, label, sent);
    const char *step_up = json_member(json, "step_up"); /* null unless this is the first method */
    uint64_t expires_at;
    if (json_u64(json_member(step_up, "expires_at"), &expires_at))
        printf("First method: it comes with a step-up token, valid until %" PRIu64 ".\n",
               expires_at);
    free(id);
    free(label);
}

/* Prints a {"type":"login_success","method":...,"step_up":{"token":...},...} result and returns
 * its step-up token (free() it). */
static char *print_login_success(const char *json)
{
    char *method = string_of(json_member(json, "method"));
    char *method_id = string_of(json_member(json, "method_id"));
    const char *step_up = json_member(json, "step_up");
    printf("Signed in with %s (%s); step-up token valid until %" PRIu64 ".\n", method, method_id,
           number_of(json_member(step_up, "expires_at")));
    free(method);
    free(method_id);
    return string_of(json_member(step_up, "token"));
}

/* Starts a sign-in (after the shop checked the password) and returns the challenge id. */
static char *begin_sign_in(const twofa_engine *engine)
{
    char *json = NULL;
    twofa_error *err = NULL;
    check(twofa_login_begin(engine, USER, &json, &err), err, "twofa_login_begin");
    char *methods = joined(json_member(json, "methods"), NULL);
    char *challenge = string_of(json_member(json, "challenge_id"));
    bool required = json_is_true(json_member(json, "second_factor_required"));
    printf("Password checked. Second factor required: %s; methods offered: %s.\n",
           required ? "yes" : "no", methods);
    free(methods);
    twofa_string_free(json);
    return challenge;
}

/* ---------------------------------------------------------------------------------------------
 * The walk-through.
 * ------------------------------------------------------------------------------------------ */

int main(void)
{
    static struct app app; /* static: zero-initialised, and it outlives the engine */
    pthread_mutex_init(&app.store_lock, NULL);
    pthread_mutex_init(&app.mail_lock, NULL);
    app.now = START_TIME;

    /* libtwofa copies this struct; `user_data` must stay valid until the engine is freed. */
    const twofa_host host = {
        .user_data = &app,
        .store_get = store_get,
        .store_put = store_put,
        .store_delete = store_delete,
        .send_mail = send_mail,
        .now = clock_now,
        .emit_event = emit_event,
    };

    twofa_engine *engine = NULL;
    twofa_error *err = NULL; /* filled by a failed call; check() prints and frees it */
    char *json = NULL;       /* each result; released with twofa_string_free */
    char code[16];

    printf("twofa C host example (libtwofa %s)\n", twofa_version());
    printf("The clock starts at %" PRIu64 ".\n", app.now);

    heading("Checking the store");
    size_t checks = 0;
    check(twofa_check_store(&host, &json, &err), err, "twofa_check_store");
    free(joined(json_member(json, "passed"), &checks));
    twofa_string_free(json);
    printf("The in-memory store passed all %zu conformance checks.\n", checks);

    check(twofa_engine_new(CONFIG_JSON, &host, &engine, &err), err, "twofa_engine_new");

    heading("The account places its first order");
    check(twofa_mark_order_created(engine, USER, &err), err, "twofa_mark_order_created");
    print_security_tab(engine);

    heading("Enrolling an authenticator app");
    check(twofa_totp_enroll_begin(engine, USER, EMAIL, NULL, &json, &err), err,
          "twofa_totp_enroll_begin");
    char *secret = string_of(json_member(json, "secret"));
    char *uri = string_of(json_member(json, "uri"));
    printf("Scan the QR code (qr_svg in the result) or enter this in the app:\n  %s\n", uri);
    free(uri);
    twofa_string_free(json);
    authenticator_code(secret, app.now, code);
    printf("The app shows %s (time %" PRIu64 ").\n", code, app.now);
    /* No step-up token: the user has no method yet. */
    check(twofa_totp_enroll_confirm(engine, USER, code, NULL, &json, &err), err,
          "twofa_totp_enroll_confirm");
    print_method_added(json);
    twofa_string_free(json);

    app.now += 30; /* a new 30-second step: the enrolment's code is spent */
    heading("Signing in with the app, 30 seconds later");
    char *challenge = begin_sign_in(engine);
    authenticator_code(secret, app.now, code);
    printf("The app shows %s (time %" PRIu64 ").\n", code, app.now);
    check(twofa_login_verify(engine, USER, challenge, "totp", code, &json, &err), err,
          "twofa_login_verify");
    char *step_up = print_login_success(json);
    twofa_string_free(json);
    free(challenge);

    printf("Someone tries the same code again:\n");
    challenge = begin_sign_in(engine);
    twofa_status status = twofa_login_verify(engine, USER, challenge, "totp", code, &json, &err);
    if (status != TWOFA_REPLAYED) {
        check(status, err, "twofa_login_verify");
        fprintf(stderr, "error: a used code was accepted twice\n");
        return 1;
    }
    printf("Refused: %s (%s).\n", err->name, err->message);
    twofa_error_free(err);
    err = NULL;
    free(challenge);

    heading("Enrolling an email address");
    /* The user has a method now: changes need the step-up token from the sign-in. */
    check(twofa_email_enroll_begin(engine, USER, EMAIL, step_up, &json, &err), err,
          "twofa_email_enroll_begin");
    char expiry[64];
    snprintf(expiry, sizeof expiry, "; it expires at %" PRIu64,
             number_of(json_member(json, "expires_at")));
    receive_code(&app, json, expiry, code);
    check(twofa_email_enroll_confirm(engine, USER, code, step_up, &json, &err), err,
          "twofa_email_enroll_confirm");
    print_method_added(json);
    twofa_string_free(json);
    free(step_up);

    app.now += 60;
    heading("Signing in with an emailed code, a minute later");
    challenge = begin_sign_in(engine);
    check(twofa_login_send_email_code(engine, USER, challenge, &json, &err), err,
          "twofa_login_send_email_code");
    receive_code(&app, json, " (masked at sign-in)", code);
    check(twofa_login_verify(engine, USER, challenge, "email", code, &json, &err), err,
          "twofa_login_verify");
    step_up = print_login_success(json);
    twofa_string_free(json);
    free(challenge);

    heading("Proving an address for security notices");
    /* The notice address is a security setting too: it needs the step-up token, and a code
     * proves that the user reads the new address before notices go there. */
    check(twofa_contact_email_begin(engine, USER, NOTICE_EMAIL, step_up, &json, &err), err,
          "twofa_contact_email_begin");
    receive_code(&app, json, "", code);
    check(twofa_contact_email_confirm(engine, USER, code, step_up, &json, &err), err,
          "twofa_contact_email_confirm");
    printf("Notices go to %s now; notices sent: %" PRIu64 ".\n", NOTICE_EMAIL,
           number_of(json_member(json, "sent")));
    twofa_string_free(json);
    free(step_up);

    heading("The Security tab");
    print_security_tab(engine);

    twofa_engine_free(engine);
    free(secret);
    app_free(&app);
    printf("\nDone: every call succeeded and everything was freed.\n");
    return 0;
}
