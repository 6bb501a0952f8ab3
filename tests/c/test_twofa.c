/*
 * The C test suite of libtwofa. Usage: test_twofa [SUBSTRING...]  (runs the tests whose name
 * contains one of the substrings; all by default). Prints one line per test and finally
 * "N passed, M failed"; exits 1 if any test failed, 2 if the environment is unusable.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Atomic int current_test_failures;

typedef struct {
    const char *name;
    test_fn fn;
} test_case;

static test_case tests[256];
static size_t n_tests;

void add_test(const char *name, test_fn fn) {
    if (n_tests == sizeof tests / sizeof tests[0]) {
        fprintf(stderr, "too many tests\n");
        exit(2);
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

static int selected(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* oathtool computes the codes of the enrolment tests: without it the suite cannot run. */
    if (system("oathtool --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_twofa: oathtool not found: install it (Debian/Ubuntu: apt-get install oathtool)\n");
        return 2;
    }
    register_basics();
    register_args();
    register_ops();
    register_callbacks();
    register_sansio();
    register_threads();
    register_account();
    register_contact();
    register_json();

    int passed = 0, failed = 0;
    for (size_t i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        atomic_store(&current_test_failures, 0);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        tests[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        int f = atomic_load(&current_test_failures);
        if (f == 0) {
            passed++;
            printf("ok   %-58s %5ld ms\n", tests[i].name, ms);
        } else {
            failed++;
            printf("FAIL %-58s %5ld ms (%d failed checks)\n", tests[i].name, ms, f);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
