/* Unit tests for filter/: the bounded JSON reader and writer, the text checks, the CloudEvent
 * model. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "filter/event.h"
#include "filter/json.h"
#include "filter/text.h"

/* ---- helpers ---- */

static int jparse_n(const char *s, size_t n, const filter_json_limits_t *lim)
{
    filter_json_doc_t *doc = NULL;
    char err[160];
    int rc = filter_json_parse(s, n, lim, &doc, err, sizeof err);
    if (rc == 0) {
        if (!doc || !filter_json_root(doc)) return 99;
        filter_json_doc_free(doc);
    } else if (doc) {
        return 98; /* *out must be untouched on failure */
    }
    return rc;
}

static int jparse(const char *s, const filter_json_limits_t *lim)
{
    return jparse_n(s, strlen(s), lim);
}

/* Parses and re-serialises; returns a malloc'd string or NULL. */
static char *roundtrip(const char *s)
{
    filter_json_doc_t *doc = NULL;
    filter_json_limits_t lim = {0, 1000, 0};
    if (filter_json_parse(s, strlen(s), &lim, &doc, NULL, 0)) return NULL;
    filter_buf_t b = {0};
    filter_buf_json_value(&b, filter_json_root(doc));
    filter_json_doc_free(doc);
    return filter_buf_steal(&b, NULL);
}

static int str_is(const char *got, const char *want)
{
    if (got && want && !strcmp(got, want)) return 1;
    printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)", want ? want : "(null)");
    return 0;
}

static char *nested(const char *open, const char *close, size_t depth)
{
    size_t lo = strlen(open), lc = strlen(close);
    char *s = malloc(depth * (lo + lc) + 1), *p = s;
    for (size_t i = 0; i < depth; i++, p += lo)
        memcpy(p, open, lo);
    for (size_t i = 0; i < depth; i++, p += lc)
        memcpy(p, close, lc);
    *p = '\0';
    return s;
}

/* ---- JSON reader ---- */

static void test_json_basic(void)
{
    const char *s = "{\"b\":[1,-1.5e3,true,false,null],\"a\":\"x\",\"c\":{}}";
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse(s, strlen(s), NULL, &doc, NULL, 0) == 0, "json: object parses");
    const filter_json_t *r = filter_json_root(doc);
    ok(r && r->type == FILTER_JSON_OBJECT && r->count == 3, "json: root object, 3 members");
    ok(!strcmp(r->keys[0], "b") && !strcmp(r->keys[1], "a") && r->key_lens[2] == 1,
       "json: member order kept");
    const filter_json_t *b = filter_json_get(r, "b");
    ok(b && b->type == FILTER_JSON_ARRAY && b->count == 5 && b->keys == NULL, "json: array");
    ok(b->items[1]->type == FILTER_JSON_NUMBER && b->items[1]->len == 6 &&
           !strcmp(b->items[1]->str, "-1.5e3"),
       "json: number literal kept as written");
    ok(b->items[2]->type == FILTER_JSON_TRUE && b->items[3]->type == FILTER_JSON_FALSE &&
           b->items[4]->type == FILTER_JSON_NULL,
       "json: literals");
    const filter_json_t *a = filter_json_get(r, "a");
    ok(a && a->type == FILTER_JSON_STRING && a->len == 1 && a->str[1] == '\0', "json: string");
    ok(filter_json_get(r, "c")->count == 0, "json: empty object");
    ok(filter_json_get(r, "zz") == NULL && filter_json_get(a, "a") == NULL, "json: get misses");
    filter_json_doc_free(doc);
    filter_json_doc_free(NULL);

    ok(jparse("1", NULL) == 0, "json: top-level number");
    ok(jparse("\"x\"", NULL) == 0 && jparse("null", NULL) == 0 && jparse(" true ", NULL) == 0,
       "json: top-level scalars");
    ok(jparse("[]", NULL) == 0 && jparse("{}\n", NULL) == 0, "json: empty containers");
}

static void test_json_nul(void)
{
    const char s[] = "[\"a\\u0000b\"]";
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse(s, sizeof s - 1, NULL, &doc, NULL, 0) == 0, "json: \\u0000 in string");
    const filter_json_t *v = filter_json_root(doc)->items[0];
    ok(v->len == 3 && !memcmp(v->str, "a\0b", 4), "json: \\u0000 decodes to a NUL, len counts it");
    filter_json_doc_free(doc);

    const char k[] = "{\"a\\u0000\":1,\"a\":2}";
    ok(filter_json_parse(k, sizeof k - 1, NULL, &doc, NULL, 0) == 0,
       "json: names differing after a NUL are distinct");
    const filter_json_t *r = filter_json_root(doc);
    ok(r->key_lens[0] == 2 && filter_json_get(r, "a") == r->items[1], "json: NUL in a member name");
    filter_json_doc_free(doc);

    ok(jparse_n("[\"a\0b\"]", 7, NULL) == FILTER_JSON_ESYNTAX, "json: raw NUL byte in string");
    ok(jparse_n("[1]\0", 4, NULL) == FILTER_JSON_ESYNTAX, "json: raw NUL byte after the value");
    ok(jparse("[\"\x01\"]", NULL) == FILTER_JSON_ESYNTAX, "json: raw control char in string");
}

static void test_json_limits(void)
{
    char *s = nested("[", "]", 64);
    ok(jparse(s, NULL) == 0, "json: depth 64 accepted by default");
    free(s);
    s = nested("[", "]", 65);
    ok(jparse(s, NULL) == FILTER_JSON_EDEPTH, "json: depth 65 is EDEPTH");
    free(s);
    s = nested("{\"a\":", "}", 65);
    ok(jparse(s, NULL) == FILTER_JSON_EDEPTH, "json: object depth 65 is EDEPTH");
    free(s);
    filter_json_limits_t l3 = {0, 3, 0};
    ok(jparse("[[[1]]]", &l3) == 0 && jparse("[[[[1]]]]", &l3) == FILTER_JSON_EDEPTH,
       "json: custom max_depth");
    s = nested("[", "]", 100000);
    ok(jparse(s, NULL) == FILTER_JSON_EDEPTH, "json: very deep input stops early");
    free(s);

    filter_json_limits_t lb = {7, 0, 0};
    ok(jparse("[1,2,3]", &lb) == 0, "json: max_bytes exact fits");
    ok(jparse("[1,2,3] ", &lb) == FILTER_JSON_ETOOBIG, "json: max_bytes + 1 is ETOOBIG");

    filter_json_limits_t ln = {0, 0, 4};
    ok(jparse("[1,2,3]", &ln) == 0, "json: max_nodes exact fits (array + 3)");
    ok(jparse("[1,2,3,4]", &ln) == FILTER_JSON_ETOOBIG, "json: max_nodes exceeded is ETOOBIG");
    ok(jparse("{\"a\":{\"b\":{}},\"c\":1}", &ln) == 0 &&
           jparse("{\"a\":{\"b\":{}},\"c\":[]}", &ln) == 0 &&
           jparse("{\"a\":{\"b\":{}},\"c\":[1]}", &ln) == FILTER_JSON_ETOOBIG,
       "json: containers count as nodes");

    /* A large document exercises arena chunk growth and big one-off chunks. */
    filter_buf_t b = {0};
    filter_buf_puts(&b, "[");
    for (int i = 0; i < 20000; i++)
        filter_buf_printf(&b, "%s{\"k%d\":\"%0300d\"}", i ? "," : "", i, i);
    filter_buf_puts(&b, ",\"");
    for (int i = 0; i < 300000; i++)
        filter_buf_append(&b, "x", 1);
    filter_buf_puts(&b, "\"]");
    ok(!filter_buf_failed(&b) && jparse(b.data, NULL) == 0, "json: large document");
    filter_buf_fini(&b);
}

static void test_json_malformed(void)
{
    static const char *bad[] = {
        "",
        "   \n\t",
        "{",
        "{\"a\":",
        "[1,2",
        "\"abc",
        "tru",
        "nul",
        "{} x",
        "{}{}",
        "1 2",
        "[1] [2]",
        "/* c */ {}",
        "{} // c",
        "{\"a\":1 /* c */}",
        "// c\n1",
        "hello",
        "{a:1}",
        "'a'",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        "-",
        ".5",
        "+1",
        "[\"\\x\"]",
        "{\"a\" 1}",
        "{1:2}",
        "[\"\\u12\"]",
        "NaN",
        "Infinity",
        "]",
        "\xEF\xBB\xBF{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(jparse(bad[i], NULL) == FILTER_JSON_ESYNTAX, "json: malformed #%zu is ESYNTAX", i);

    char err[160] = "";
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse("[1] x", 5, NULL, &doc, err, sizeof err) == FILTER_JSON_ESYNTAX &&
           strstr(err, "byte") && !doc,
       "json: error message names the byte (%s)", err);
    ok(filter_json_parse("", 0, NULL, &doc, err, sizeof err) == FILTER_JSON_ESYNTAX &&
           strstr(err, "empty"),
       "json: empty input message (%s)", err);
    ok(filter_json_parse(NULL, 0, NULL, &doc, err, 8) == FILTER_JSON_ESYNTAX && strlen(err) < 8,
       "json: NULL empty buffer, short errlen");
    ok(!strcmp(filter_json_strerror(FILTER_JSON_EDUPKEY), "duplicate member name in a JSON object"),
       "json: strerror");
}

static void test_json_utf8(void)
{
    static const struct {
        const char *s;
        const char *what;
    } bad[] = {
        {"[\"\xC0\x80\"]", "overlong 2-byte NUL"},
        {"[\"\xC1\xBF\"]", "overlong 2-byte"},
        {"[\"\xE0\x80\xAF\"]", "overlong 3-byte"},
        {"[\"\xF0\x80\x80\xAF\"]", "overlong 4-byte"},
        {"[\"\xED\xA0\x80\"]", "raw high surrogate"},
        {"[\"\xED\xBF\xBF\"]", "raw low surrogate"},
        {"[\"\xF4\x90\x80\x80\"]", "above U+10FFFF"},
        {"[\"\xF5\x80\x80\x80\"]", "F5 lead byte"},
        {"[\"\xFF\"]", "FF byte"},
        {"[\"\xE2\x82\"]", "truncated 3-byte sequence"},
        {"[\"\xE2\x82", "truncated sequence at end of input"},
        {"[\"\x80\"]", "stray continuation byte"},
        {"[\"\\ud800\"]", "escaped lone high surrogate"},
        {"[\"\\ud800x\"]", "escaped high surrogate then a letter"},
        {"[\"\\ud800\\u0041\"]", "escaped high surrogate then a non-surrogate"},
        {"[\"\\udc00\"]", "escaped lone low surrogate"},
        {"[\"\\udc00\\ud800\"]", "escaped surrogates in the wrong order"},
        {"{\"\xC0\x80\":1}", "overlong in a member name"},
        {"{\"\\udfff\":1}", "lone surrogate escape in a member name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(jparse(bad[i].s, NULL) == FILTER_JSON_ESYNTAX, "json utf8: %s rejected", bad[i].what);

    const char *pair =
        "[\"\\ud83d\\ude00\",\"\xF0\x9F\x98\x80\",\"\xF4\x8F\xBF\xBF\",\"\xEF\xBF\xBF\"]";
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse(pair, strlen(pair), NULL, &doc, NULL, 0) == 0,
       "json utf8: surrogate pair escape, 4-byte chars, U+10FFFF, U+FFFF accepted");
    const filter_json_t *r = filter_json_root(doc);
    ok(r->items[0]->len == 4 && !memcmp(r->items[0]->str, "\xF0\x9F\x98\x80", 4),
       "json utf8: surrogate pair decodes to U+1F600");
    filter_json_doc_free(doc);
    ok(jparse("[\"a\\\\ud800\"]", NULL) == 0,
       "json utf8: escaped backslash before 'ud800' is text");

    ok(filter_utf8_valid("", 0) && filter_utf8_valid("abc\xC3\xA9", 5),
       "utf8_valid: ascii, e-acute");
    ok(!filter_utf8_valid("\xC3", 1) && !filter_utf8_valid("\xED\xA0\x80", 3) &&
           !filter_utf8_valid("\xF8\x88\x80\x80\x80", 5),
       "utf8_valid: truncated, surrogate, 5-byte rejected");
}

static void test_json_dupkeys(void)
{
    ok(jparse("{\"a\":1,\"a\":2}", NULL) == FILTER_JSON_EDUPKEY, "json: duplicate key");
    ok(jparse("{\"a\":1,\"b\":{\"a\":2}}", NULL) == 0, "json: same name at different levels");
    ok(jparse("[{\"a\":1},{\"a\":1}]", NULL) == 0, "json: same name in sibling objects");
    ok(jparse("{\"a\":{\"x\":1,\"x\":2},\"b\":1}", NULL) == FILTER_JSON_EDUPKEY,
       "json: duplicate in nested object");
    ok(jparse("{\"\\u0061\":1,\"a\":2}", NULL) == FILTER_JSON_EDUPKEY,
       "json: duplicate after unescaping");

    filter_buf_t b = {0};
    filter_buf_puts(&b, "{");
    for (int i = 0; i < 5000; i++)
        filter_buf_printf(&b, "%s\"key%d\":%d", i ? "," : "", i, i);
    size_t mark = b.len;
    filter_buf_puts(&b, "}");
    ok(jparse(b.data, NULL) == 0, "json: 5000 distinct members");
    b.len = mark;
    filter_buf_puts(&b, ",\"key2500\":0}");
    char err[160];
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse(b.data, b.len, NULL, &doc, err, sizeof err) == FILTER_JSON_EDUPKEY &&
           strstr(err, "key2500"),
       "json: duplicate in a large object (%s)", err);
    filter_buf_fini(&b);
}

static void test_json_numbers(void)
{
    filter_json_doc_t *doc = NULL;
    const char *s = "[1e400,-1e-400,9223372036854775807,9223372036854775808,-9223372036854775808,"
                    "-9223372036854775809,1.0,1e2,-0,123456789012345678901234567890]";
    ok(filter_json_parse(s, strlen(s), NULL, &doc, NULL, 0) == 0,
       "json: out-of-range numbers parse, literal kept");
    const filter_json_t *const *it = filter_json_root(doc)->items;
    int64_t v = 42;
    ok(!strcmp(it[0]->str, "1e400"), "json: 1e400 kept as written");
    ok(filter_json_int64(it[2], &v) && v == INT64_MAX, "json: int64 max");
    v = 42;
    ok(!filter_json_int64(it[3], &v) && v == 42, "json: int64 max + 1 rejected, out untouched");
    ok(filter_json_int64(it[4], &v) && v == INT64_MIN, "json: int64 min");
    ok(!filter_json_int64(it[5], &v), "json: int64 min - 1 rejected");
    ok(!filter_json_int64(it[6], &v) && !filter_json_int64(it[7], &v),
       "json: 1.0 and 1e2 are not integers");
    ok(filter_json_int64(it[8], &v) && v == 0, "json: -0 is 0");
    ok(!filter_json_int64(it[9], &v), "json: 30 digits rejected");
    ok(!filter_json_int64(filter_json_root(doc), &v), "json: int64 of a non-number");
    filter_json_doc_free(doc);
}

/* ---- JSON writer ---- */

static void test_writer(void)
{
    filter_buf_t b = {0};
    ok(filter_buf_json_string(&b, "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/\xC3\xA9", 16) == 0,
       "writer: escapes");
    ok(str_is(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\xC3\xA9\""),
       "writer: escaped text");
    filter_buf_reset(&b);
    ok(filter_buf_json_string(&b, "a\0b", 3) == 0 && str_is(b.data, "\"a\\u0000b\""),
       "writer: NUL escaped as \\u0000");
    filter_buf_reset(&b);
    ok(filter_buf_json_string(&b, "x\xC0\x80", 3) == -1 && b.len == 0,
       "writer: invalid UTF-8 rejected, nothing appended");
    ok(filter_buf_json_string(&b, "\xED\xA0\x80", 3) == -1, "writer: surrogate rejected");
    ok(filter_buf_json_string(&b, "", 0) == 0 && str_is(b.data, "\"\""), "writer: empty string");
    filter_buf_fini(&b);

    filter_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        filter_buf_printf(&b, "%d,", i);
    filter_buf_printf(&b, "%s", "");
    ok(!filter_buf_failed(&b) && b.len == 3890 && !strncmp(b.data + b.len - 4, "999,", 4),
       "writer: printf grows");
    size_t len = 0;
    char *p = filter_buf_steal(&b, &len);
    ok(p && len == 3890 && b.data == NULL && b.len == 0, "writer: steal");
    free(p);
    p = filter_buf_steal(&b, &len);
    ok(p && len == 0 && p[0] == '\0', "writer: steal of an empty buffer gives \"\"");
    free(p);
    b.failed = 1;
    filter_buf_puts(&b, "x");
    ok(b.len == 0 && filter_buf_steal(&b, NULL) == NULL, "writer: failed is sticky, steal NULL");
    filter_buf_fini(&b);

    p = roundtrip(" { \"a\" : [ 1 , 2.50 , -3e+2 , true , false , null , { } , [ ] ] ,\n"
                  "  \"b\\u00e9\" : \"\\u0000\\n\\/\" } ");
    ok(str_is(p, "{\"a\":[1,2.50,-3e+2,true,false,null,{},[]],\"b\xC3\xA9\":\"\\u0000\\n/\"}"),
       "writer: compact serialisation of a tree");
    free(p);
    p = roundtrip("\"x\"");
    ok(str_is(p, "\"x\""), "writer: scalar root");
    free(p);

    char *deep = nested("{\"k\":[", "]}", 300);
    p = roundtrip(deep);
    ok(p && !strcmp(p, deep), "writer: 600 levels serialise iteratively");
    free(p);
    free(deep);
}

/* ---- URN ---- */

static int urn(const char *s)
{
    return filter_urn_valid(s, strlen(s));
}

static void test_urn(void)
{
    ok(urn("urn:altinn:resource:super-simple-service"), "urn: typical");
    ok(urn("urn:a:b"), "urn: minimal");
    ok(urn("urn:altinn:resource:app_ttd_x()+,.-;$_!/"), "urn: every allowed punctuation");
    ok(urn("urn:a:1:2:3:4:5:6:7:8:9:10"), "urn: 10 segments");
    ok(!urn("urn:a:1:2:3:4:5:6:7:8:9:10:11"), "urn: 11 segments rejected");
    ok(urn("urn:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:b"), "urn: NID of 30");
    ok(!urn("urn:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:b"), "urn: NID of 31 rejected");
    char s[200] = "urn:a:";
    memset(s + 6, 'x', 100);
    s[106] = '\0';
    ok(urn(s), "urn: segment of 100");
    s[106] = 'x';
    s[107] = '\0';
    ok(!urn(s), "urn: segment of 101 rejected");
    ok(!urn("URN:altinn:resource:x"), "urn: upper-case prefix rejected");
    ok(!urn("urn:Altinn:resource:x"), "urn: upper-case NID rejected");
    ok(!urn("urn:altinn:resource:Foo"), "urn: upper-case segment rejected");
    ok(!urn("urn:altinn"), "urn: no segment rejected");
    ok(!urn("urn:altinn:"), "urn: empty last segment rejected");
    ok(!urn("urn:altinn::x"), "urn: empty middle segment rejected");
    ok(!urn("urn::x"), "urn: empty NID rejected");
    ok(!urn("urn:") && !urn("") && !urn("urn"), "urn: too short");
    ok(!urn("urn:altinn:res ource") && !urn("urn:altinn:a#b") && !urn("urn:altinn:a?b") &&
           !urn("urn:al_tinn:x") && !urn("urn:altinn:\xC3\xA9"),
       "urn: bad characters rejected");
    ok(!filter_urn_valid("urn:a:b\0c", 9), "urn: embedded NUL rejected");
    ok(!urn(" urn:a:b") && !urn("urn:a:b "), "urn: surrounding space rejected");
}

/* ---- time ---- */

static int tnorm(const char *in, const char *want)
{
    char out[64] = "";
    int rc = filter_time_parse(in, strlen(in), NULL, out, sizeof out);
    if (rc) {
        printf("#   %s rejected\n", in);
        return 0;
    }
    return str_is(out, want);
}

static int tbad(const char *in)
{
    char out[64];
    int64_t us;
    return filter_time_parse(in, strlen(in), &us, out, sizeof out) == -1;
}

static void test_time(void)
{
    ok(tnorm("2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"), "time: UTC unchanged");
    ok(tnorm("2025-12-31T23:30:00-01:00", "2026-01-01T00:30:00Z"),
       "time: negative offset crosses into the next year");
    ok(tnorm("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
       "time: positive offset crosses into the previous year");
    ok(tnorm("2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z"),
       "time: offset crosses back to Feb 29 of a leap year");
    ok(tnorm("2023-03-01T00:30:00+01:00", "2023-02-28T23:30:00Z"),
       "time: offset crosses back to Feb 28 of a common year");
    ok(tnorm("2026-04-30T22:00:00-02:30", "2026-05-01T00:30:00Z"), "time: month boundary");
    ok(tnorm("2026-06-15T12:00:00+23:59", "2026-06-14T12:01:00Z"), "time: offset +23:59");
    ok(tnorm("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z"), "time: Feb 29 in a leap year");
    ok(tbad("2023-02-29T12:00:00Z"), "time: Feb 29 in a common year rejected");
    ok(tbad("2100-02-29T12:00:00Z"), "time: Feb 29 2100 rejected");
    ok(tnorm("2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"), "time: Feb 29 2000 accepted");
    ok(tnorm("2026-01-02t03:04:05z", "2026-01-02T03:04:05Z"), "time: lower-case t and z");
    ok(tnorm("2026-01-02T03:04:05.120Z", "2026-01-02T03:04:05.120Z"),
       "time: fraction kept as written");
    ok(tnorm("2026-01-02T03:04:05.123456789+00:00", "2026-01-02T03:04:05.123456789Z"),
       "time: 9 fraction digits");
    ok(tbad("2026-01-02T03:04:05.1234567891Z"), "time: 10 fraction digits rejected");
    ok(tbad("2026-01-02T03:04:05.Z"), "time: empty fraction rejected");
    ok(tbad("2026-01-02T03:04:05"), "time: missing zone rejected");
    ok(tbad("2026-01-02 03:04:05Z") && tbad("2026-01-02"), "time: space separator, date only");
    ok(tbad("2026-13-02T03:04:05Z") && tbad("2026-00-02T03:04:05Z"), "time: bad month");
    ok(tbad("2026-01-32T03:04:05Z") && tbad("2026-04-31T03:04:05Z") && tbad("2026-01-00T03:04:05Z"),
       "time: bad day");
    ok(tbad("2026-01-02T24:00:00Z") && tbad("2026-01-02T23:60:00Z") && tbad("2026-01-02T23:59:61Z"),
       "time: bad hour, minute, second");
    ok(tbad("2026-01-02T03:04:05+24:00") && tbad("2026-01-02T03:04:05+01:60") &&
           tbad("2026-01-02T03:04:05+0100") && tbad("2026-01-02T03:04:05+1"),
       "time: bad offsets");
    ok(tbad("2026-1-02T03:04:05Z") && tbad("2026-01-02T03:04:05Zx") && tbad("") &&
           tbad("20260102T030405Z") && tbad("2026-01-02T03:04:05ZZ"),
       "time: malformed");
    ok(tbad("0000-01-01T00:00:00+00:01"), "time: normalising before year 0 rejected");
    ok(tnorm("2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z"), "time: leap second at year end");
    ok(tnorm("2017-01-01T00:59:60+01:00", "2016-12-31T23:59:60Z"),
       "time: leap second given with an offset");
    ok(tbad("2016-12-30T23:59:60Z") && tbad("2016-12-31T12:00:60Z"),
       "time: second 60 elsewhere rejected");

    int64_t us = 1;
    ok(filter_time_parse("1970-01-01T00:00:00Z", 20, &us, NULL, 0) == 0 && us == 0, "time: epoch");
    ok(filter_time_parse("1969-12-31T23:59:59.5Z", 22, &us, NULL, 0) == 0 && us == -500000,
       "time: before the epoch");
    ok(filter_time_parse("2026-01-02T03:04:05.1234569Z", 28, &us, NULL, 0) == 0 &&
           us == 1767323045123456LL,
       "time: microseconds, extra digits truncated");
    char small[10];
    ok(filter_time_parse("2026-01-02T03:04:05Z", 20, NULL, small, sizeof small) == -1,
       "time: output buffer too small");

    int hz = -1;
    ok(filter_time_parse_zone_optional("2026-01-02T03:04:05", 19, &us, &hz) == 0 && hz == 0 &&
           us == 1767323045000000LL,
       "time: zone optional, absent");
    ok(filter_time_parse_zone_optional("2026-01-02T04:04:05+01:00", 25, &us, &hz) == 0 && hz == 1 &&
           us == 1767323045000000LL,
       "time: zone optional, present");
    ok(filter_time_parse_zone_optional("2026-01-02T03:04", 16, &us, &hz) == -1,
       "time: zone optional, still strict");

    char out[40];
    filter_time_format(0, out, sizeof out);
    ok(str_is(out, "1970-01-01T00:00:00.000000Z"), "time_format: epoch");
    filter_time_format(-1, out, sizeof out);
    ok(str_is(out, "1969-12-31T23:59:59.999999Z"), "time_format: one microsecond before");
    filter_time_format(1767323045123456LL, out, sizeof out);
    ok(str_is(out, "2026-01-02T03:04:05.123456Z"), "time_format: a recent instant");
    filter_time_format(951825600000000LL, out, sizeof out);
    ok(str_is(out, "2000-02-29T12:00:00.000000Z"), "time_format: Feb 29 2000");
    int64_t back = 0;
    ok(filter_time_parse(out, strlen(out), &back, NULL, 0) == 0 && back == 951825600000000LL,
       "time_format: round trip");
}

/* ---- URI, media type, base64 ---- */

static int uref(const char *s)
{
    return filter_uri_reference_valid(s, strlen(s));
}

static int uabs(const char *s)
{
    return filter_uri_absolute_valid(s, strlen(s));
}

static int mt(const char *s)
{
    return filter_media_type_valid(s, strlen(s));
}

static int b64(const char *s)
{
    return filter_base64_valid(s, strlen(s));
}

static void test_uri_media_b64(void)
{
    ok(uref("https://example.com/a/b?x=1&y=%20#frag"), "uri-ref: absolute http");
    ok(uref("/a/b") && uref("a/b") && uref("a") && uref("") && uref("?q") && uref("#f") &&
           uref("./a:b"),
       "uri-ref: relative references");
    ok(uref("urn:altinn:resource:x") && uref("mailto:a@b.c") && uref("//host:8080/p"),
       "uri-ref: urn, mailto, network-path");
    ok(uref("http://[::1]:80/") && uref("http://u:p@h/") && uref("http://h:/"),
       "uri-ref: IPv6 literal, userinfo, empty port");
    ok(!uref("a b") && !uref("http://x/a b") && !uref("http://x/\xC3\xA9"),
       "uri-ref: space and non-ASCII rejected");
    ok(!uref("%zz") && !uref("a%2") && !uref("%"), "uri-ref: bad percent escapes rejected");
    ok(!uref("1http://x") && !uref(":x") && !uref("a_b:c"), "uri-ref: bad scheme rejected");
    ok(!uref("a#b#c") && !uref("http://x/[") && !uref("http://h:8o/") && !uref("http://[::1/") &&
           !uref("a\"b") && !uref("a<b>") && !uref("a\\b"),
       "uri-ref: illegal characters rejected");
    ok(!filter_uri_reference_valid("a\0b", 3), "uri-ref: NUL rejected");
    ok(uabs("https://x") && uabs("urn:a:b") && uabs("https://x.y/s.json#/defs/a"),
       "uri-abs: valid");
    ok(!uabs("/a") && !uabs("a/b") && !uabs("//h/p") && !uabs(""), "uri-abs: relative rejected");

    ok(mt("application/json") && mt("application/cloudevents+json") &&
           mt("text/plain;charset=utf-8") && mt("text/plain ; charset=\"utf-8\"") &&
           mt("text/plain;a=b;c=\"d\\\"e\"") && mt("text/plain;"),
       "media type: valid");
    ok(!mt("json") && !mt("/json") && !mt("text/") && !mt("text/plain ") && !mt(" text/plain") &&
           !mt("text/plain; charset") && !mt("text /plain") && !mt("text/plain;a=\"b") &&
           !mt("text/plain;a=") && !mt("text/pl(ain") && !mt(""),
       "media type: invalid");

    ok(b64("") && b64("Zg==") && b64("Zm8=") && b64("Zm9v") && b64("+/+/"), "base64: valid");
    ok(!b64("Zg=") && !b64("Zg") && !b64("Zh==") && !b64("Zm9=") && !b64("Zm9v\n") &&
           !b64("Z===") && !b64("=Zg=") && !b64("Zg==Zg==") && !b64("Zm9-") && !b64("Zm 9"),
       "base64: invalid or non-canonical rejected");
}

/* ---- LIKE ---- */

static int like(const char *p, const char *s)
{
    return filter_like_match(p, strlen(p), s, strlen(s));
}

static void test_like(void)
{
    ok(like("abc", "abc") && !like("abc", "abd") && !like("abc", "ab") && !like("ab", "abc"),
       "like: exact");
    ok(!like("ABC", "abc"), "like: case-sensitive");
    ok(like("", "") && !like("", "a") && like("%", "") && like("%", "anything"), "like: empty");
    ok(like("a%", "abc") && like("%c", "abc") && like("%b%", "abc") && like("a%c", "ac") &&
           !like("a%c", "ab"),
       "like: %%");
    ok(like("a_c", "abc") && !like("a_c", "ac") && like("___", "abc") && !like("__", "abc"),
       "like: _");
    ok(like("_", "\xC3\xA9") && !like("__", "\xC3\xA9") &&
           like("a_b", "a\xF0\x9F\x98\x80"
                       "b"),
       "like: _ is one UTF-8 code point");
    ok(like("%\xC3\xA9", "x\xC3\xA9") && like("%_x", "\xC3\xA9x"), "like: multi-byte after %%");
    ok(like("no.altinn.%.created", "no.altinn.app.instance.created") &&
           !like("no.altinn.%.created", "no.altinn.app.instance.deleted"),
       "like: event type pattern");
    ok(like("a%b%c%d", "aXbYcZd") && like("%a%a%a", "aaa") && !like("%a%a%a%a", "aaa"),
       "like: several %%");

    /* Patterns that make naive backtracking exponential. */
    static char s[20001], p[64];
    memset(s, 'a', 20000);
    s[20000] = '\0';
    strcpy(p, "%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%b");
    clock_t t0 = clock();
    ok(!like(p, s), "like: pathological %%a%%a...%%b on 20000 a's does not match");
    strcpy(p, "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%a_b");
    ok(!like(p, s), "like: many %% in a row");
    strcpy(p, "%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a");
    ok(like(p, s), "like: pathological pattern that matches");
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    ok(secs < 2.0, "like: pathological cases run in bounded time (%.3fs)", secs);
}

/* ---- CloudEvents ---- */

#define BASE                                                                                       \
    "\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"https://x.test/s\",\"type\":\"t.created\""
#define RES "\"resource\":\"urn:altinn:resource:r1\""

static int ev_rc(const char *json, char *msg, size_t msglen)
{
    filter_event_t *ev = NULL;
    int rc = filter_event_parse(json, strlen(json), NULL, &ev, msg, msglen);
    if (rc == 0)
        filter_event_free(ev);
    else if (ev)
        return 99;
    return rc;
}

/* rc and message of one invalid event */
static int ev_err(const char *json, int want_rc, const char *want_msg)
{
    char msg[256] = "";
    int rc = ev_rc(json, msg, sizeof msg);
    if (rc != want_rc) {
        printf("#   rc %d, want %d (%s)\n", rc, want_rc, msg);
        return 0;
    }
    if (want_msg && strcmp(msg, want_msg)) {
        printf("#   msg:  %s\n#   want: %s\n", msg, want_msg);
        return 0;
    }
    if (!want_msg) printf("#   msg: %s\n", msg);
    return msg[0] != '\0';
}

static filter_event_t *ev_ok(const char *json)
{
    filter_event_t *ev = NULL;
    char msg[256] = "";
    if (filter_event_parse(json, strlen(json), NULL, &ev, msg, sizeof msg)) {
        printf("#   rejected: %s\n", msg);
        return NULL;
    }
    return ev;
}

static void test_event_valid(void)
{
    filter_event_t *ev = ev_ok("{" BASE "," RES "}");
    ok(ev != NULL, "event: minimal valid event");
    if (ev) {
        ok(!strcmp(ev->specversion, "1.0") && !strcmp(ev->id, "e1") &&
               !strcmp(ev->type, "t.created") && !strcmp(ev->resource, "urn:altinn:resource:r1") &&
               ev->subject == NULL && ev->time == NULL && ev->datacontenttype == NULL &&
               ev->data_json == NULL && ev->data_base64 == NULL && ev->n_exts == 1,
           "event: fields of the minimal event");
        ok(str_is(ev->json, "{" BASE "," RES "}") && ev->json_len == strlen(ev->json),
           "event: minimal canonical JSON");
        filter_event_free(ev);
    }
    filter_event_free(NULL);

    const char *in =
        "{\"data\":{\"b\": [1, 2.0, \"x\"], \"a\":null},\"zext\":true,\"type\":\"t\","
        "\"resourceinstance\":\"50001/abc\",\"time\":\"2025-12-31T23:30:00.5-01:00\","
        "\"id\":\"42\",\"num\":-7,\"source\":\"/a/b\",\"resource\":\"urn:altinn:resource:r\","
        "\"gone\":null,\"subject\":\"/party/1\",\"specversion\":\"1.0\","
        "\"dataschema\":\"https://s.test/x.json\",\"alternativesubject\":\"/person/1\","
        "\"f\":false,\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"long\"}";
    ev = ev_ok(in);
    ok(ev != NULL, "event: full event");
    if (ev) {
        ok(str_is(ev->json,
                  "{\"specversion\":\"1.0\",\"id\":\"42\",\"source\":\"/a/b\",\"type\":\"t\","
                  "\"subject\":\"/party/1\",\"time\":\"2026-01-01T00:30:00.5Z\","
                  "\"datacontenttype\":\"application/json\","
                  "\"dataschema\":\"https://s.test/x.json\",\"zext\":\"true\","
                  "\"resourceinstance\":\"50001/abc\",\"num\":\"-7\","
                  "\"resource\":\"urn:altinn:resource:r\",\"alternativesubject\":\"/person/1\","
                  "\"f\":\"false\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":\"long\","
                  "\"data\":{\"b\":[1,2.0,\"x\"],\"a\":null}}"),
           "event: canonical JSON order, normalised time, coerced extensions, default type");
        ok(str_is(ev->time, "2026-01-01T00:30:00.5Z"), "event: time normalised to UTC");
        ok(str_is(ev->datacontenttype, "application/json"), "event: datacontenttype default");
        ok(ev->data_json && ev->data_json_len == 26 &&
               str_is(ev->data_json, "{\"b\":[1,2.0,\"x\"],\"a\":null}"),
           "event: data_json");
        ok(ev->n_exts == 7 && !strcmp(ev->exts[0].name, "zext") &&
               !strcmp(ev->exts[0].value, "true") && !strcmp(ev->exts[2].value, "-7") &&
               !strcmp(ev->exts[5].value, "false"),
           "event: extensions in input order, null dropped, coerced");
        ok(str_is(ev->resourceinstance, "50001/abc") && str_is(ev->alternativesubject, "/person/1"),
           "event: Altinn extensions");
        ok(str_is(filter_event_attr(ev, "id"), "42") &&
               str_is(filter_event_attr(ev, "num"), "-7") &&
               str_is(filter_event_attr(ev, "subject"), "/party/1") &&
               filter_event_attr(ev, "gone") == NULL && filter_event_attr(ev, "data") == NULL &&
               filter_event_attr(ev, "nope") == NULL,
           "event: filter_event_attr");
        filter_event_free(ev);
    }

    ev = ev_ok("{" BASE "," RES ",\"datacontenttype\":\"text/plain\",\"data\":\"hi\"}");
    ok(ev && str_is(ev->datacontenttype, "text/plain") && ev->data_json_len == 4,
       "event: given datacontenttype kept");
    filter_event_free(ev);
    ev = ev_ok("{" BASE "," RES ",\"data_base64\":\"aGk=\"}");
    ok(ev && str_is(ev->data_base64, "aGk=") && ev->datacontenttype == NULL &&
           str_is(ev->json, "{" BASE "," RES ",\"data_base64\":\"aGk=\"}"),
       "event: data_base64 kept, no default datacontenttype");
    filter_event_free(ev);
    ev = ev_ok("{" BASE "," RES ",\"data\":null,\"data_base64\":\"aGk=\"}");
    ok(ev && ev->data_json == NULL && ev->data_base64, "event: null data is absent");
    filter_event_free(ev);
    ev = ev_ok("{" BASE "," RES ",\"subject\":null,\"time\":null}");
    ok(ev && ev->subject == NULL && ev->time == NULL, "event: null optional attributes are absent");
    filter_event_free(ev);
    ev = ev_ok("{" BASE "," RES ",\"data\":\"a\\u0000b\\u2028\"}");
    ok(ev && str_is(ev->data_json, "\"a\\u0000b\xE2\x80\xA8\""),
       "event: control characters inside data are fine");
    filter_event_free(ev);
    ev = ev_ok("{" BASE "," RES ",\"big\":2147483647,\"small\":-2147483648}");
    ok(ev && str_is(filter_event_attr(ev, "big"), "2147483647") &&
           str_is(filter_event_attr(ev, "small"), "-2147483648"),
       "event: int32 extremes");
    filter_event_free(ev);
    ev = ev_ok(
        "{\"specversion\":\"1.0\",\"id\":\"\xC3\xA9\",\"source\":\"urn:x\",\"type\":\"t\"," RES
        ",\"subject\":\"\xE2\x82\xAC\"}");
    ok(ev && str_is(ev->id, "\xC3\xA9"), "event: non-ASCII (non-control) text accepted");
    filter_event_free(ev);

    /* batches: events taken from an already parsed array */
    const char *batch = "[{" BASE "," RES "},{" BASE "," RES ",\"id\":\"e2\"}]";
    filter_json_doc_t *doc = NULL;
    ok(filter_json_parse(batch, strlen(batch), NULL, &doc, NULL, 0) == FILTER_JSON_EDUPKEY,
       "event: duplicate id member in a batch element is a JSON error");
    batch = "[{" BASE "," RES
            "},{\"specversion\":\"1.0\",\"id\":\"e2\",\"source\":\"s\",\"type\":\"t\"," RES "}]";
    ok(filter_json_parse(batch, strlen(batch), NULL, &doc, NULL, 0) == 0, "event: batch parses");
    const filter_json_t *arr = filter_json_root(doc);
    char msg[128];
    int n_ok = 0;
    for (size_t i = 0; i < arr->count; i++) {
        filter_event_t *e = NULL;
        if (filter_event_from_json(arr->items[i], &e, msg, sizeof msg) == 0) {
            n_ok += !strcmp(e->id, i ? "e2" : "e1");
            filter_event_free(e);
        }
    }
    ok(n_ok == 2, "event: filter_event_from_json on batch elements");
    ok(filter_event_from_json(arr, &ev, msg, sizeof msg) == FILTER_EVENT_EINVALID,
       "event: from_json of a non-object");
    filter_json_doc_free(doc);
}

static void test_event_rules(void)
{
    const int INV = FILTER_EVENT_EINVALID, ALT = FILTER_EVENT_EALTINN;
    ok(ev_err("[]", INV, "The CloudEvent must be a JSON object."), "rule: body must be an object");
    ok(ev_err("\"x\"", INV, "The CloudEvent must be a JSON object."), "rule: string body");
    ok(ev_err("{" BASE "," RES "", INV, NULL), "rule: invalid JSON (truncated)");
    ok(ev_err("{" BASE "," RES "} x", INV, "Invalid JSON at byte 116: trailing garbage."),
       "rule: invalid JSON message");
    ok(ev_err("", INV, "Invalid JSON: empty input."), "rule: empty body");
    ok(ev_err("{" BASE "," RES ",\"id\":\"2\"}", INV, "Invalid JSON: duplicate member name 'id'."),
       "rule: duplicate member");
    ok(ev_err("{" BASE "," RES ",\"x\":\"\xC0\x80\"}", INV, NULL), "rule: invalid UTF-8");

    ok(ev_err("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "CloudEvent is missing required attributes: id"),
       "rule: missing id");
    ok(ev_err("{\"specversion\":\"1.0\",\"type\":\"t\"," RES "}", INV,
              "CloudEvent is missing required attributes: id, source"),
       "rule: missing id and source");
    ok(ev_err("{\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "CloudEvent is missing required attributes: specversion"),
       "rule: missing specversion");
    ok(ev_err("{" RES "}", INV,
              "CloudEvent is missing required attributes: specversion, id, source, type"),
       "rule: all required missing, in order");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":null,\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "CloudEvent is missing required attributes: id"),
       "rule: null id counts as missing");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\"}", INV,
              "CloudEvent is missing required attributes: type"),
       "rule: missing type reported before the missing resource");

    ok(ev_err("{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "The 'specversion' attribute must be \"1.0\"."),
       "rule: specversion must be 1.0");
    ok(ev_err("{\"specversion\":1.0,\"id\":\"1\",\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "The 'specversion' attribute must be a string."),
       "rule: specversion must be a string");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "The 'id' attribute must be a non-empty string."),
       "rule: empty id");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":5,\"source\":\"s\",\"type\":\"t\"," RES "}", INV,
              "The 'id' attribute must be a string."),
       "rule: id wrong type");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"\",\"type\":\"t\"," RES "}", INV,
              "The 'source' attribute must be a non-empty string."),
       "rule: empty source");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"a b\",\"type\":\"t\"," RES "}",
              INV, "The 'source' attribute must be a URI-reference."),
       "rule: source must be a URI-reference");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":{},\"type\":\"t\"," RES "}", INV,
              "The 'source' attribute must be a string."),
       "rule: source wrong type");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"\"," RES "}", INV,
              "The 'type' attribute must be a non-empty string."),
       "rule: empty type");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":[]," RES "}", INV,
              "The 'type' attribute must be a string."),
       "rule: type wrong type");
    ok(ev_err("{" BASE "," RES ",\"subject\":\"\"}", INV,
              "The 'subject' attribute must be a non-empty string."),
       "rule: empty subject");
    ok(ev_err("{" BASE "," RES ",\"subject\":1}", INV, "The 'subject' attribute must be a string."),
       "rule: subject wrong type");
    ok(ev_err("{" BASE "," RES ",\"time\":\"2026-01-02T03:04:05\"}", INV,
              "The 'time' attribute must be an RFC 3339 timestamp."),
       "rule: time without zone");
    ok(ev_err("{" BASE "," RES ",\"time\":\"yesterday\"}", INV,
              "The 'time' attribute must be an RFC 3339 timestamp."),
       "rule: time not a timestamp");
    ok(ev_err("{" BASE "," RES ",\"time\":1767323045}", INV,
              "The 'time' attribute must be a string."),
       "rule: time wrong type");
    ok(ev_err("{" BASE "," RES ",\"dataschema\":\"/rel/schema.json\"}", INV,
              "The 'dataschema' attribute must be an absolute URI."),
       "rule: dataschema must be absolute");
    ok(ev_err("{" BASE "," RES ",\"datacontenttype\":\"json\"}", INV,
              "The 'datacontenttype' attribute must be a media type."),
       "rule: datacontenttype must be a media type");
    ok(ev_err("{" BASE "," RES ",\"datacontenttype\":true}", INV,
              "The 'datacontenttype' attribute must be a string."),
       "rule: datacontenttype wrong type");
    ok(ev_err("{" BASE "," RES ",\"data\":{},\"data_base64\":\"aGk=\"}", INV,
              "Only one of 'data' and 'data_base64' may be present."),
       "rule: data and data_base64 together");
    ok(ev_err("{" BASE "," RES ",\"data_base64\":\"aGk\"}", INV,
              "The 'data_base64' attribute must be a base64 string."),
       "rule: data_base64 invalid");
    ok(ev_err("{" BASE "," RES ",\"data_base64\":5}", INV,
              "The 'data_base64' attribute must be a base64 string."),
       "rule: data_base64 wrong type");

    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"a\\u0001\",\"source\":\"s\",\"type\":\"t\"," RES
              "}",
              INV, "The 'id' attribute must not contain control characters."),
       "rule: C0 control character in id");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"a\\u0000\",\"source\":\"s\",\"type\":\"t\"," RES
              "}",
              INV, "The 'id' attribute must not contain control characters."),
       "rule: NUL in id");
    ok(ev_err("{" BASE "," RES ",\"subject\":\"a\\u007f\"}", INV,
              "The 'subject' attribute must not contain control characters."),
       "rule: DEL in subject");
    ok(ev_err("{" BASE "," RES ",\"subject\":\"a\\u0085\"}", INV,
              "The 'subject' attribute must not contain control characters."),
       "rule: C1 control character in subject");
    ok(ev_err("{" BASE "," RES ",\"x\":\"a\\nb\"}", INV,
              "The 'x' attribute must not contain control characters."),
       "rule: control character in an extension value");
    ok(ev_err("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"s\",\"type\":\"t\",\"resource\":"
              "\"urn:a:b\\t\"}",
              INV, "The 'resource' attribute must not contain control characters."),
       "rule: control character in resource is a CloudEvents error");

    ok(ev_err("{" BASE "," RES ",\"Foo\":\"x\"}", INV,
              "Extension attribute name 'Foo' is invalid: names must match ^[a-z0-9]+$."),
       "rule: upper-case extension name");
    ok(ev_err("{" BASE "," RES ",\"my-ext\":\"x\"}", INV,
              "Extension attribute name 'my-ext' is invalid: names must match ^[a-z0-9]+$."),
       "rule: dash in extension name");
    ok(ev_err("{" BASE "," RES ",\"\":\"x\"}", INV,
              "Extension attribute name '' is invalid: names must match ^[a-z0-9]+$."),
       "rule: empty extension name");
    ok(ev_err("{" BASE "," RES ",\"a\\\"\\u0001\":\"x\"}", INV,
              "Extension attribute name 'a?\?' is invalid: names must match ^[a-z0-9]+$."),
       "rule: unprintable extension name shown safely");
    ok(ev_err("{" BASE "," RES ",\"x\":1.5}", INV,
              "Extension attribute 'x' must be a string, a boolean or an integer between "
              "-2147483648 and 2147483647."),
       "rule: non-integer number extension");
    ok(ev_err("{" BASE "," RES ",\"x\":1e2}", INV, NULL), "rule: exponent number extension");
    ok(ev_err("{" BASE "," RES ",\"x\":2147483648}", INV, NULL),
       "rule: integer extension over int32");
    ok(ev_err("{" BASE "," RES ",\"x\":{\"a\":1}}", INV,
              "Extension attribute 'x' must be a string, a boolean or an integer."),
       "rule: object extension");
    ok(ev_err("{" BASE "," RES ",\"x\":[]}", INV,
              "Extension attribute 'x' must be a string, a boolean or an integer."),
       "rule: array extension");

    ok(ev_err("{" BASE "}", ALT, "A 'resource' property must be defined."),
       "altinn: resource missing");
    ok(ev_err("{" BASE ",\"resource\":\"\"}", ALT, "A 'resource' property must be defined."),
       "altinn: resource empty");
    ok(ev_err("{" BASE ",\"resource\":null}", ALT, "A 'resource' property must be defined."),
       "altinn: resource null");
    ok(ev_err("{" BASE ",\"resource\":\"urn:altinn:resource:Foo\"}", ALT,
              "'Resource' must be a valid urn."),
       "altinn: resource upper case");
    ok(ev_err("{" BASE ",\"resource\":\"altinn:resource:x\"}", ALT,
              "'Resource' must be a valid urn."),
       "altinn: resource not a urn");
    ok(ev_err("{" BASE ",\"resource\":true}", ALT, "'Resource' must be a valid urn."),
       "altinn: resource boolean");
    ok(ev_err("{" BASE ",\"resource\":{}}", INV, NULL),
       "altinn: resource object is a CloudEvents error");
    ok(ev_err("{" BASE ",\"time\":\"bad\"}", INV,
              "The 'time' attribute must be an RFC 3339 timestamp."),
       "order: CloudEvents errors before the Altinn rules");
    ok(ev_err("{" BASE ",\"Bad\":1}", INV, NULL),
       "order: bad extension name before missing resource");

    char big[512];
    snprintf(big, sizeof big, "{" BASE "," RES ",\"data\":\"%0300d\"}", 0);
    filter_event_limits_t lim = {strlen(big) - 1, 0};
    filter_event_t *ev = NULL;
    char msg[128];
    ok(filter_event_parse(big, strlen(big), &lim, &ev, msg, sizeof msg) == FILTER_EVENT_ETOOBIG &&
           ev == NULL,
       "size: over max_bytes is ETOOBIG (%s)", msg);
    lim.max_bytes = strlen(big);
    ok(filter_event_parse(big, strlen(big), &lim, &ev, msg, sizeof msg) == 0,
       "size: exactly max_bytes");
    filter_event_free(ev);
    ev = NULL;
    char *deep = nested("[", "]", 10);
    snprintf(big, sizeof big, "{" BASE "," RES ",\"data\":%s}", deep);
    free(deep);
    filter_event_limits_t dl = {0, 8};
    ok(filter_event_parse(big, strlen(big), &dl, &ev, msg, sizeof msg) == FILTER_EVENT_EINVALID &&
           !strcmp(msg, "Invalid JSON: nested deeper than 8 levels."),
       "depth: too deep data is invalid (%s)", msg);
    char tiny[12];
    ok(filter_event_parse("{\"specversion\":\"1.0\"}", 22, NULL, &ev, tiny, sizeof tiny) ==
               FILTER_EVENT_EINVALID &&
           strlen(tiny) == sizeof tiny - 1,
       "msg: truncated to msglen");
    ok(ev_err("{" BASE ",\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"
              "\xC3\xA9\xC3\xA9"
              "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3"
              "\xA9"
              "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3"
              "\xA9"
              "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\":1}",
              INV, NULL),
       "msg: long non-ASCII name");
    char m2[30];
    filter_event_parse(
        "{" BASE ",\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\":1}",
        strlen("{" BASE
               ",\"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\":1}"),
        NULL, &ev, m2, sizeof m2);
    ok(filter_utf8_valid(m2, strlen(m2)), "msg: truncation keeps UTF-8 valid");
}

static void test_json_vt_ff(void)
{
    /* yajl alone takes \v and \f for whitespace; JSON does not (found by fuzz_binary) */
    static const char *const bad[] = {"\v{}", "{}\f", "[1,\v2]", "{\"a\"\f:1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        filter_json_doc_t *d = NULL;
        int rc = filter_json_parse(bad[i], strlen(bad[i]), NULL, &d, NULL, 0);
        ok(rc == FILTER_JSON_ESYNTAX && !d, "json: vertical tab / form feed refused (%zu)", i);
        filter_json_doc_free(d);
    }
}

static void test_json_compact(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"{ \"a\" : [ 1 , 2 ] }", "{\"a\":[1,2]}"},
        {"\" keep  spaces \"", "\" keep  spaces \""},
        {"[\"x\\\" y\" ,\t\n\"z\"]", "[\"x\\\" y\",\"z\"]"},
        {"[\"\\\\\" , 1]", "[\"\\\\\",1]"},
        {"  7  ", "7"},
        {"{}", "{}"},
        /* a quote after an odd run of backslashes is inside the string, after an even one ends it
         */
        {"[\"a\\\\\\\" b\" , 1]", "[\"a\\\\\\\" b\",1]"},
        {"[\"a\\\\\\\\\" , 1]", "[\"a\\\\\\\\\",1]"},
        {"{ \"\\\\\" : \"\\\\\\\"\" }", "{\"\\\\\":\"\\\\\\\"\"}"},
        {"[\"\" , \"\" ]", "[\"\",\"\"]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        filter_buf_t b = {0};
        filter_buf_json_compact(&b, cases[i].in, strlen(cases[i].in));
        ok(b.len == strlen(cases[i].want) && memcmp(b.data, cases[i].want, b.len) == 0,
           "compact: %s", cases[i].want);
        filter_buf_fini(&b);
    }
}

static void test_json_compact_long(void)
{
    /* long strings with spaces and escaped quotes at many offsets */
    for (size_t at = 0; at < 300; at += 37) {
        filter_buf_t in = {0}, b = {0}, want = {0};
        filter_buf_puts(&in, "{ \"note\" : \"");
        filter_buf_puts(&want, "{\"note\":\"");
        for (size_t i = 0; i < 300; i++) {
            const char *piece = i == at ? "\\\" " : i % 50 == 0 ? "\\\\ " : "x ";
            filter_buf_puts(&in, piece);
            filter_buf_puts(&want, piece);
        }
        filter_buf_puts(&in, "\" , \"n\" : [ 1 , 2 ] }");
        filter_buf_puts(&want, "\",\"n\":[1,2]}");
        filter_buf_json_compact(&b, in.data, in.len);
        ok(b.len == want.len && memcmp(b.data, want.data, b.len) == 0,
           "compact: long string, escaped quote at %zu", at);
        filter_buf_fini(&in);
        filter_buf_fini(&b);
        filter_buf_fini(&want);
    }
}

static void test_json_string_valid(void)
{
    filter_buf_t a = {0}, b = {0};
    const char s[] = "caf\xc3\xa9 \"q\" \\ \n\x01";
    ok(filter_buf_json_string(&a, s, sizeof s - 1) == 0, "json_string: valid");
    filter_buf_json_string_valid(&b, s, sizeof s - 1);
    ok(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
       "json_string_valid: same output as the checking writer");
    filter_buf_reset(&a);
    ok(filter_buf_json_string(&a, "\xff", 1) == -1 && a.len == 0,
       "json_string: invalid UTF-8 still refused");
    filter_buf_fini(&a);
    filter_buf_fini(&b);
    filter_buf_t r = {0};
    ok(filter_buf_reserve(&r, 1000) == 0 && r.cap >= 1001 && r.len == 0, "buf: reserve");
    filter_buf_fini(&r);
}

int main(void)
{
    test_json_compact();
    test_json_compact_long();
    test_json_string_valid();
    test_json_vt_ff();
    test_json_basic();
    test_json_nul();
    test_json_limits();
    test_json_malformed();
    test_json_utf8();
    test_json_dupkeys();
    test_json_numbers();
    test_writer();
    test_urn();
    test_time();
    test_uri_media_b64();
    test_like();
    test_event_valid();
    test_event_rules();
    return done_testing();
}
