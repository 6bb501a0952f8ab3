/*
 * Concurrency: 16 threads, each with its own sign-in challenge for the same user, submit the
 * same TOTP code at once. Exactly one may succeed; the others see replayed / invalid_code /
 * conflict. Once through one engine on the C store, once through two engines sharing one
 * SQLite file.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RACERS 16

typedef struct {
    twofa_engine *eng;
    const char *user;
    pthread_barrier_t *barrier;
    twofa_status begin_status;
    twofa_status verify_status;
    char *token;
} racer;

static void *race(void *p) {
    racer *r = p;
    char *json = SENT;
    twofa_error *err = NULL;
    char *challenge = NULL;
    r->begin_status = twofa_login_begin(r->eng, r->user, &json, &err);
    if (r->begin_status == TWOFA_OK) challenge = json_str(json, "challenge_id");
    jfree(json);
    twofa_error_free(err);
    err = NULL;
    pthread_barrier_wait(r->barrier);
    if (!challenge) {
        r->verify_status = -1;
        return NULL;
    }
    json = SENT;
    r->verify_status = twofa_login_verify(r->eng, r->user, challenge, "totp", CODE_A_T0, &json, &err);
    if (r->verify_status == TWOFA_OK) r->token = json_str(json, "token");
    else if (err == NULL || err->code != r->verify_status) r->verify_status = -2;
    jfree(json);
    twofa_error_free(err);
    free(challenge);
    return NULL;
}

/* Runs the race with engines[i % n_engines]; checks exactly one success. */
static void run_race(twofa_engine **engines, int n_engines, const char *user) {
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, RACERS);
    racer r[RACERS];
    pthread_t t[RACERS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < RACERS; i++) {
        r[i].eng = engines[i % n_engines];
        r[i].user = user;
        r[i].barrier = &barrier;
        CHECK_INT(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    int ok = 0, replayed = 0, invalid = 0, conflict = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(r[i].begin_status == TWOFA_OK, "thread %d: login_begin status %d", i, r[i].begin_status);
        switch (r[i].verify_status) {
        case TWOFA_OK:
            ok++;
            CHECK(r[i].token != NULL);
            break;
        case TWOFA_REPLAYED: replayed++; break;
        case TWOFA_INVALID_CODE: invalid++; break;
        case TWOFA_CONFLICT: conflict++; break;
        default: check_failed(__FILE__, __LINE__, "thread %d: login_verify status %d", i, r[i].verify_status);
        }
        free(r[i].token);
    }
    pthread_barrier_destroy(&barrier);
    printf("    outcomes: ok %d, replayed %d, invalid_code %d, conflict %d\n", ok, replayed, invalid, conflict);
    CHECK_MSG(ok == 1, "%d successes (replayed %d, invalid_code %d, conflict %d)", ok, replayed, invalid, conflict);
    CHECK_INT(ok + replayed + invalid + conflict, RACERS);
}

static void test_race_shared_engine_c_store(void) {
    fixture f = setup(CONFIG, T0);
    char *json = SENT;
    twofa_error *err = NULL;
    IMPORT_TOTP(f.adm, "racer", SECRET_A);
    long conflicts = f.e->store.conflicts;
    run_race(&f.eng, 1, "racer");
    printf("    compare-and-swap conflicts in the C store: %ld\n", f.e->store.conflicts - conflicts);
    /* The code is spent for everyone. */
    char *challenge = begin_challenge(f.eng, "racer");
    json = SENT;
    EXPECT_ERR(twofa_login_verify(f.eng, "racer", challenge, "totp", CODE_A_T0, &json, &err), TWOFA_REPLAYED, &err);
    free(challenge);
    teardown(&f);
}

static void test_race_two_engines_one_sqlite_file(void) {
    env *e = env_new(T0);
    char path[700];
    snprintf(path, sizeof path, "%s/race.db", temp_dir());
    twofa_engine *engines[2] = {NULL, NULL};
    twofa_error *err = NULL;
    for (int i = 0; i < 2; i++) EXPECT_OK(twofa_engine_new_sqlite(CONFIG, path, &e->host, &engines[i], &err), &err);
    if (engines[0] && engines[1]) {
        twofa_admin *adm = admin_of(engines[0]);
        char *json = SENT;
        IMPORT_TOTP(adm, "racer", SECRET_A);
        twofa_admin_free(adm);
        run_race(engines, 2, "racer");
        /* Both engines see the spent code. */
        for (int i = 0; i < 2; i++) {
            char *challenge = begin_challenge(engines[i], "racer");
            json = SENT;
            EXPECT_ERR(twofa_login_verify(engines[i], "racer", challenge, "totp", CODE_A_T0, &json, &err),
                       TWOFA_REPLAYED, &err);
            free(challenge);
        }
    }
    CHECK_INT(e->store.calls, 0); /* the C store callbacks are not used by SQLite engines */
    twofa_engine_free(engines[0]);
    twofa_engine_free(engines[1]);
    env_free(e);
}

/* Many threads on distinct users through one engine: no interference. */
typedef struct {
    twofa_engine *eng;
    env *e;
    int index;
    int failures;
} worker;

static void *work(void *p) {
    worker *w = p;
    char user[32], address[64];
    snprintf(user, sizeof user, "worker-%d", w->index);
    snprintf(address, sizeof address, "worker-%d@example.com", w->index);
    char *json = SENT;
    twofa_error *err = NULL;
    for (int k = 0; k < 3; k++) {
        json = SENT;
        if (twofa_set_contact_email(w->eng, user, address, NULL, &json, &err) != TWOFA_OK) w->failures++;
        jfree(json);
        json = SENT;
        if (twofa_security_status(w->eng, user, &json, &err) != TWOFA_OK || !strstr(json, address)) w->failures++;
        jfree(json);
    }
    twofa_error_free(err);
    return NULL;
}

static void test_parallel_users(void) {
    env *e = env_new(T0);
    twofa_engine *eng = env_engine(e, CONFIG);
    worker w[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        w[i] = (worker){eng, e, i, 0};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(w[i].failures == 0, "worker %d: %d failures", i, w[i].failures);
    }
    CHECK_INT(store_count_prefix(&e->store, "user/worker-"), RACERS);
    printf("    compare-and-swap conflicts in the C store: %ld\n", e->store.conflicts);
    twofa_engine_free(eng);
    env_free(e);
}

void register_threads(void) {
    add_test("16 threads, one code, one engine on the C store", test_race_shared_engine_c_store);
    add_test("16 threads, one code, two engines on one SQLite file", test_race_two_engines_one_sqlite_file);
    add_test("16 threads on distinct users", test_parallel_users);
}
