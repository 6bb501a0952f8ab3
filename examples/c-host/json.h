/*
 * json.h: a small reader for the JSON that libtwofa returns (results, events, errors).
 *
 * It reads the text in place. A value is a `const char *` pointing at the value's first
 * character; every function takes NULL for "no value" and passes it on, so lookups chain:
 *
 *     const char *step_up = json_member(result, "step_up");       // an object, null or NULL
 *     uint64_t expires_at;
 *     if (json_u64(json_member(step_up, "expires_at"), &expires_at))
 *         ...
 *     for (const char *m = json_first(json_member(status, "methods")); m; m = json_next(m)) {
 *         char *id = json_string(json_member(m, "id"));           // a copy: free() it
 *         ...
 *     }
 *
 * Only json_string copies (it decodes the escapes); everything else points into the text. It
 * checks the structure (quotes, brackets, colons, commas) but not how numbers and literals are
 * spelt, and compares keys as written (libtwofa's keys are plain ASCII). It trusts its input as
 * far as nesting goes (json_skip recurses once per level), which suits libtwofa's output; an
 * application that reads other JSON would use a JSON library (cJSON, jansson, ...).
 *
 * Every function is `static inline`, so the header is all there is: a program includes it and
 * compiles nothing else. The C host example (main.c), libtwofa's C tests (tests/c) and the C
 * adapter of the fault harness (tests/faults/adapters/c_adapter.c) all read JSON with it.
 */
#ifndef TWOFA_EXAMPLE_JSON_H
#define TWOFA_EXAMPLE_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- finding the end of a value ------------------------------------------------------------ */

/* Skips white space; NULL stays NULL. */
static inline const char *json_skip_space(const char *p)
{
    while (p != NULL && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* With p at a string's opening quote: the position after its closing quote, or NULL. */
static inline const char *json_skip_string(const char *p)
{
    if (p == NULL || *p != '"')
        return NULL;
    for (p++; *p != '"'; p++) {
        if (*p == '\0' || (*p == '\\' && *++p == '\0'))
            return NULL;
    }
    return p + 1;
}

/* With p at a value (white space before it is skipped): the position after the value, or NULL
 * if it is malformed. Objects and arrays are checked member by member, element by element. */
static inline const char *json_skip(const char *p)
{
    p = json_skip_space(p);
    if (p == NULL)
        return NULL;
    if (*p == '"')
        return json_skip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = json_skip_space(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') { /* a member: "key": value */
                p = json_skip_space(json_skip_string(p));
                if (p == NULL || *p != ':')
                    return NULL;
                p++;
            }
            p = json_skip_space(json_skip(p));
            if (p == NULL)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p = json_skip_space(p + 1);
        }
    }
    /* A number, true, false or null: a run of lowercase letters, digits, 'E', '+', '-', '.'. */
    const char *start = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '+' ||
           *p == '.' || *p == 'E')
        p++;
    return p == start ? NULL : p;
}

/* Whether `text` is one well-formed JSON object and nothing else (white space aside). */
static inline bool json_is_object(const char *text)
{
    const char *start = json_skip_space(text);
    const char *end = json_skip_space(json_skip(start));
    return start != NULL && *start == '{' && end != NULL && *end == '\0';
}

/* ---- walking arrays and objects ------------------------------------------------------------ */

/* The first element of the array at p, or the first member of the object at p; NULL when it is
 * empty or p is neither. A member is its key (json_key_is, json_value_of). */
static inline const char *json_first(const char *p)
{
    p = json_skip_space(p);
    if (p == NULL || (*p != '[' && *p != '{'))
        return NULL;
    p = json_skip_space(p + 1);
    return *p == ']' || *p == '}' ? NULL : p;
}

/* The element or member after the one at `item`, or NULL after the last one. */
static inline const char *json_next(const char *item)
{
    const char *p = json_skip_space(json_skip(item));
    if (p != NULL && *p == ':') /* `item` is a member's key: skip its value too */
        p = json_skip_space(json_skip(p + 1));
    return p != NULL && *p == ',' ? json_skip_space(p + 1) : NULL;
}

/* Whether the member at `member` (as json_first and json_next give it) is named `key`. */
static inline bool json_key_is(const char *member, const char *key)
{
    size_t n = strlen(key);
    return member != NULL && *member == '"' && strncmp(member + 1, key, n) == 0 &&
           member[n + 1] == '"';
}

/* The value of the member at `member`, or NULL if `member` is not a key followed by a colon. */
static inline const char *json_value_of(const char *member)
{
    const char *p = json_skip_space(json_skip_string(member));
    return p != NULL && *p == ':' ? json_skip_space(p + 1) : NULL;
}

/* The value of the member `key` of the object at `object`, or NULL. */
static inline const char *json_member(const char *object, const char *key)
{
    object = json_skip_space(object);
    if (object == NULL || *object != '{')
        return NULL;
    for (const char *m = json_first(object); m != NULL; m = json_next(m)) {
        if (json_key_is(m, key))
            return json_value_of(m);
    }
    return NULL;
}

/* The value of the first member named `key` anywhere in `text`, at any depth, in the order of
 * the text; NULL if there is none. It reads from `text` to the end of the string. */
static inline const char *json_find(const char *text, const char *key)
{
    /* Every quote outside a string opens one, so hopping from string to string visits them all;
     * a string followed by a colon is a key. */
    for (const char *p = text != NULL ? strchr(text, '"') : NULL; p != NULL;) {
        const char *end = json_skip_string(p);
        if (end == NULL)
            return NULL;
        const char *value = json_key_is(p, key) ? json_value_of(p) : NULL;
        if (value != NULL)
            return value;
        p = strchr(end, '"');
    }
    return NULL;
}

/* ---- reading values ------------------------------------------------------------------------ */

/* The value of the four hex digits at p, or -1 if they are not four hex digits. */
static inline long json_hex4(const char *p)
{
    long value = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int digit = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
        if (digit < 0) /* also stops at the closing quote or the end of the text */
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

/* Writes the code point c (below U+10000) as UTF-8 at o; returns the position after it. */
static inline char *json_put_utf8(char *o, long c)
{
    if (c < 0x80) {
        *o++ = (char)c;
    } else if (c < 0x800) {
        *o++ = (char)(0xC0 | c >> 6);
        *o++ = (char)(0x80 | (c & 0x3F));
    } else {
        *o++ = (char)(0xE0 | c >> 12);
        *o++ = (char)(0x80 | (c >> 6 & 0x3F));
        *o++ = (char)(0x80 | (c & 0x3F));
    }
    return o;
}

/* A copy of the string at `value` with its escapes decoded (free() it), or NULL if `value` is
 * not a string (or memory ran out). A \uXXXX escape becomes UTF-8 (libtwofa escapes only
 * control characters this way), a surrogate U+FFFD; a malformed escape becomes '?'. */
static inline char *json_string(const char *value)
{
    value = json_skip_space(value);
    const char *end = json_skip_string(value);
    if (end == NULL)
        return NULL;
    /* Decoding never lengthens: the room for both quotes holds the final NUL. */
    char *out = malloc((size_t)(end - value)), *o = out;
    if (out == NULL)
        return NULL;
    for (const char *p = value + 1; p < end - 1; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        switch (*++p) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            long c = json_hex4(p + 1);
            if (c < 0) {
                *o++ = '?';
                break;
            }
            p += 4;
            o = json_put_utf8(o, c >= 0xD800 && c <= 0xDFFF ? 0xFFFD : c);
            break;
        }
        default: *o++ = *p; break; /* \" \\ \/ */
        }
    }
    *o = '\0';
    return out;
}

/* Reads the unsigned integer at `value` into *out. Returns false (and leaves *out alone) if
 * `value` is not a number that starts with a digit. */
static inline bool json_u64(const char *value, uint64_t *out)
{
    value = json_skip_space(value);
    if (value == NULL || *value < '0' || *value > '9')
        return false;
    *out = (uint64_t)strtoull(value, NULL, 10);
    return true;
}

/* Whether the value at `value` is `true` (false for false, null, anything else, and NULL). */
static inline bool json_is_true(const char *value)
{
    value = json_skip_space(value);
    return value != NULL && strncmp(value, "true", 4) == 0;
}

#endif
