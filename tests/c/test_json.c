/* The JSON reader the C host example, these tests and the fault adapter share
 * (examples/c-host/json.h), on hand-written JSON and on a real result. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Checks that the JSON string at `value` decodes to `want` (NULL: is not a string). */
static void check_string(const char *file, int line, const char *value, const char *want) {
    char *got = json_string(value);
    if (want == NULL ? got != NULL : got == NULL || strcmp(got, want) != 0)
        check_failed(file, line, "json_string(%s) == \"%s\", expected \"%s\"", value ? value : "NULL",
                     got ? got : "(null)", want ? want : "(null)");
    free(got);
}
#define CHECK_STRING(value, want) check_string(__FILE__, __LINE__, (value), (want))

static void test_json_structure(void) {
    /* json_skip: the end of one value, or NULL when it is malformed. */
    const char *text = "{\"a\": [1, \"x]\", {\"b\": null}], \"c\": true} tail";
    const char *end = json_skip(text);
    CHECK(end != NULL && strcmp(end, " tail") == 0);
    static const char *const malformed[] = {
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":}", "{1:2}", "[1 2]", "\"open", "{\"a\":1,}", "]",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        CHECK_MSG(json_skip(malformed[i]) == NULL, "json_skip(%s) is not NULL", malformed[i]);
    CHECK(json_skip(NULL) == NULL);

    /* json_is_object: one object and nothing else. */
    CHECK(json_is_object(" {\"a\":{\"b\":[]}} \n"));
    CHECK(!json_is_object("{\"a\":1} {}"));
    CHECK(!json_is_object("[]"));
    CHECK(!json_is_object("{\"a\":1"));
    CHECK(!json_is_object(NULL));

    /* Walking: elements of an array, members of an object. */
    const char *array = json_member(text, "a");
    const char *item = json_first(array);
    CHECK(item != NULL && *item == '1');
    item = json_next(item);
    CHECK_STRING(item, "x]");
    item = json_next(item);
    CHECK(item != NULL && *item == '{');
    CHECK(json_next(item) == NULL);
    CHECK(json_first("[]") == NULL && json_first("{ }") == NULL && json_first("7") == NULL);
    const char *member = json_first(text);
    CHECK(json_key_is(member, "a") && !json_key_is(member, "ab") && !json_key_is(member, ""));
    member = json_next(member);
    CHECK(json_key_is(member, "c"));
    CHECK(json_is_true(json_value_of(member)));
    CHECK(json_next(member) == NULL);
}

static void test_json_lookup(void) {
    const char *text = "{\"outer\":{\"id\":\"inner\",\"n\":7},\"id\":\"top\",\"label\":\"\\\"id\\\":\\\"no\\\"\"}";
    /* json_member: direct members only; json_find: the first anywhere, in the order of the text. */
    CHECK_STRING(json_member(text, "id"), "top");
    CHECK_STRING(json_find(text, "id"), "inner");
    CHECK_STRING(json_member(json_member(text, "outer"), "id"), "inner");
    CHECK(json_member(text, "n") == NULL);
    uint64_t n = 0;
    CHECK(json_u64(json_find(text, "n"), &n) && n == 7);
    CHECK(json_find(text, "no") == NULL); /* inside a string, not a key */
    CHECK_STRING(json_member(text, "label"), "\"id\":\"no\"");
    /* NULL passes through every lookup. */
    CHECK(json_member(NULL, "id") == NULL && json_find(NULL, "id") == NULL);
    CHECK(json_member(json_member(text, "missing"), "id") == NULL);
    CHECK(!json_u64(NULL, &n) && !json_u64("null", &n) && !json_u64("-1", &n) && n == 7);
    CHECK(!json_is_true(NULL) && !json_is_true("false") && json_is_true(" true"));
    /* White space between the tokens is fine. */
    CHECK_STRING(json_member("{ \"k\" :\n \"v\" }", "k"), "v");
}

static void test_json_strings(void) {
    CHECK_STRING("\"plain\"", "plain");
    CHECK_STRING("\"\"", "");
    CHECK_STRING("\"q\\\" b\\\\ s\\/ n\\n t\\t r\\r b\\b f\\f\"", "q\" b\\ s/ n\n t\t r\r b\b f\f");
    CHECK_STRING("\"\\u0041\\u00e9\\u20ac\"", "A\xc3\xa9\xe2\x82\xac"); /* A, e-acute, euro sign */
    CHECK_STRING("\"\\ud83d\"", "\xef\xbf\xbd");                        /* a surrogate: U+FFFD */
    CHECK_STRING("\"\\u12\"", "?12");                                   /* a malformed escape */
    CHECK_STRING("\"caf\xc3\xa9\"", "caf\xc3\xa9");                     /* raw UTF-8 is kept */
    CHECK_STRING("7", NULL);
    CHECK_STRING("\"unterminated", NULL);
    CHECK_STRING(NULL, NULL);
}

/* A real result: the fields the tests and the C host read, with the helpers of harness.c. */
static void test_json_on_a_result(void) {
    fixture f = setup(CONFIG, T0);
    twofa_error *err = NULL;
    char *json = SENT;
    EXPECT_OK(twofa_email_enroll_begin(f.eng, "jo", "jo@example.com", NULL, &json, &err), &err);
    CHECK(json_is_object(json));
    CHECK_STRING(json_member(json, "type"), "code_sent");
    CHECK_INT(json_array_len(json, "sent_to"), 1);
    char *to = json_array_str(json, "sent_to", 0);
    CHECK_STR(to, "jo@example.com");
    free(to);
    CHECK(json_array_str(json, "sent_to", 1) == NULL);
    CHECK_INT(json_array_len(json, "expires_at"), -1); /* not an array */
    jfree(json);
    CHECK(json_str(SENT, "type") == NULL && json_str(NULL, "type") == NULL);
    teardown(&f);
}

void register_json(void) {
    add_test("json.h: structure, walking arrays and objects", test_json_structure);
    add_test("json.h: json_member, json_find, numbers, literals", test_json_lookup);
    add_test("json.h: strings and their escapes", test_json_strings);
    add_test("json.h: a real result, json_str and the array helpers", test_json_on_a_result);
}
