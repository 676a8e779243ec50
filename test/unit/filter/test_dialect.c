/* Unit tests for filter/dialect: every Subscriptions API dialect, nesting, matching on a real
 * filter_event_t, and each compile error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "filter/dialect.h"
#include "filter/event.h"

static filter_event_t *ev;

/* Compiles filters (JSON text) and matches them against ev: 1/0, or -1 when they do not compile
 * (the message is printed). */
static int match(const char *filters)
{
    filter_json_doc_t *doc = NULL;
    if (filter_json_parse(filters, strlen(filters), NULL, &doc, NULL, 0)) {
        printf("#   bad JSON in the test: %s\n", filters);
        return -2;
    }
    filter_dialect_t *d = NULL;
    char err[300];
    int rc = filter_dialect_compile(filter_json_root(doc), &d, err, sizeof err);
    filter_json_doc_free(doc); /* the compiled form must not need the JSON */
    if (rc) {
        printf("#   %s: %s\n", filters, err);
        return -1;
    }
    int m = filter_dialect_match(d, filter_cesql_event_attr, ev);
    filter_dialect_free(d);
    return m;
}

/* Expects a compile failure whose message contains want. */
static int fails(const char *filters, const char *want)
{
    filter_json_doc_t *doc = NULL;
    if (filter_json_parse(filters, strlen(filters), NULL, &doc, NULL, 0)) return 0;
    filter_dialect_t *d = (filter_dialect_t *)&d;
    filter_dialect_t *const sentinel = d;
    char err[300] = "";
    int rc = filter_dialect_compile(filter_json_root(doc), &d, err, sizeof err);
    filter_json_doc_free(doc);
    int good = rc == FILTER_DIALECT_EINVALID && d == sentinel && strstr(err, want) &&
               filter_utf8_valid(err, strlen(err));
    if (!good) printf("#   rc %d, message \"%s\"\n", rc, err);
    if (!rc) filter_dialect_free(d);
    return good;
}

static void test_dialects(void)
{
    ok(match("[]") == 1, "empty array: every event passes");
    ok(match("[{\"exact\":{\"type\":\"order.created\"}}]") == 1, "exact: match");
    ok(match("[{\"exact\":{\"type\":\"order\"}}]") == 0, "exact: a prefix is not exact");
    ok(match("[{\"exact\":{\"type\":\"Order.created\"}}]") == 0, "exact: case-sensitive");
    ok(match("[{\"exact\":{\"type\":\"order.created\",\"subject\":\"/party/50001\"}}]") == 1,
       "exact: all pairs hold");
    ok(match("[{\"exact\":{\"type\":\"order.created\",\"subject\":\"/party/1\"}}]") == 0,
       "exact: one pair fails");
    ok(match("[{\"exact\":{\"nope\":\"x\"}}]") == 0, "exact: a missing attribute fails");
    ok(match("[{\"exact\":{\"myint\":\"10\"}}]") == 1, "exact: Integer extension as text");
    ok(match("[{\"exact\":{\"mybool\":\"true\"}}]") == 1, "exact: Boolean extension as text");
    ok(match("[{\"exact\":{\"resource\":\"urn:altinn:resource:r\"}}]") == 1,
       "exact: Altinn resource extension");
    ok(match("[{\"prefix\":{\"source\":\"https://x.example/\"}}]") == 1, "prefix: match");
    ok(match("[{\"prefix\":{\"source\":\"http://\"}}]") == 0, "prefix: no match");
    ok(match("[{\"prefix\":{\"type\":\"order.created.more\"}}]") == 0,
       "prefix: longer than the value");
    ok(match("[{\"prefix\":{\"neg\":\"-\"}}]") == 1, "prefix: negative Integer text");
    ok(match("[{\"suffix\":{\"type\":\".created\"}}]") == 1, "suffix: match");
    ok(match("[{\"suffix\":{\"type\":\".deleted\"}}]") == 0, "suffix: no match");
    ok(match("[{\"suffix\":{\"type\":\"xorder.created\"}}]") == 0, "suffix: longer than the value");
    ok(match("[{\"suffix\":{\"subject\":\"50001\",\"type\":\"created\"}}]") == 1,
       "suffix: two pairs");
    ok(match("[{\"all\":[{\"exact\":{\"type\":\"order.created\"}},{\"prefix\":{\"subject\":"
             "\"/party/\"}}]}]") == 1,
       "all: both hold");
    ok(match("[{\"all\":[{\"exact\":{\"type\":\"order.created\"}},{\"prefix\":{\"subject\":"
             "\"/org/\"}}]}]") == 0,
       "all: one fails");
    ok(match("[{\"any\":[{\"exact\":{\"type\":\"x\"}},{\"prefix\":{\"subject\":\"/party/\"}}]}]") ==
           1,
       "any: one holds");
    ok(match("[{\"any\":[{\"exact\":{\"type\":\"x\"}},{\"exact\":{\"type\":\"y\"}}]}]") == 0,
       "any: none holds");
    ok(match("[{\"not\":{\"exact\":{\"type\":\"x\"}}}]") == 1, "not: inverts false");
    ok(match("[{\"not\":{\"exact\":{\"type\":\"order.created\"}}}]") == 0, "not: inverts true");
    ok(match("[{\"not\":{\"exact\":{\"nope\":\"x\"}}}]") == 1, "not: of a missing attribute");
    ok(match("[{\"sql\":\"type = 'order.created' AND subject LIKE '/party/%'\"}]") == 1,
       "sql: match");
    ok(match("[{\"sql\":\"myint > 5 AND mybool\"}]") == 1, "sql: typed extensions");
    ok(match("[{\"sql\":\"type = 'x'\"}]") == 0, "sql: no match");
    ok(match("[{\"sql\":\"nope = 'x'\"}]") == 0, "sql: an error does not match");
    ok(match("[{\"sql\":\"NOT (nope = 'x')\"}]") == 0, "sql: an error does not match, negated");
    ok(match("[{\"not\":{\"sql\":\"nope = 'x'\"}}]") == 1,
       "not of a failing sql filter holds (the sql filter is false)");
    ok(match("[{\"sql\":\"mybool\"}]") == 1, "sql: a bare Boolean attribute");
    ok(match("[{\"sql\":\"mystr\"}]") == 0, "sql: a bare String attribute is not a Boolean");
    ok(match("[{\"exact\":{\"type\":\"order.created\"}},{\"exact\":{\"type\":\"x\"}}]") == 0,
       "top level: every filter must hold");
    ok(match("[{\"exact\":{\"type\":\"order.created\"}},{\"suffix\":{\"source\":\"/o\"}}]") == 1,
       "top level: all hold");
    ok(match("[{\"all\":[{\"any\":[{\"not\":{\"exact\":{\"type\":\"x\"}}},{\"sql\":\"FALSE\"}]},"
             "{\"not\":{\"not\":{\"prefix\":{\"id\":\"4\"}}}}]}]") == 1,
       "nesting: all/any/not/sql mixed");

    /* 16 levels is the limit, counted from the top level. */
    char deep[1200] = "[";
    for (int i = 0; i < 15; i++)
        strcat(deep, "{\"not\":");
    strcat(deep, "{\"exact\":{\"type\":\"x\"}}");
    for (int i = 0; i < 15; i++)
        strcat(deep, "}");
    strcat(deep, "]");
    ok(match(deep) == 1, "nesting: 16 levels compile (15 nots of a false filter hold)");
    strcpy(deep, "[");
    for (int i = 0; i < 16; i++)
        strcat(deep, "{\"not\":");
    strcat(deep, "{\"exact\":{\"type\":\"x\"}}");
    for (int i = 0; i < 16; i++)
        strcat(deep, "}");
    strcat(deep, "]");
    ok(fails(deep, "filters[0].not.not.not.not.not.not.not.not.not.not.not.not.not.not.not.not: "
                   "filters nested more than 16 levels deep"),
       "error: 17 levels");

    /* 256 filter objects is the limit. */
    size_t cap = 20000;
    char *many = malloc(cap);
    strcpy(many, "[");
    for (int i = 0; i < 256; i++)
        strcat(many, i ? ",{\"exact\":{\"type\":\"order.created\"}}"
                       : "{\"exact\":{\"type\":\"order.created\"}}");
    strcat(many, "]");
    ok(match(many) == 1, "limits: 256 filters compile");
    strcpy(many, "[{\"any\":[");
    for (int i = 0; i < 256; i++)
        strcat(many, i ? ",{\"exact\":{\"type\":\"x\"}}" : "{\"exact\":{\"type\":\"x\"}}");
    strcat(many, "]}]");
    ok(fails(many, "filters[0].any[255]: more than 256 filters"), "error: 257 filters");
    free(many);
}

static void test_errors(void)
{
    ok(fails("{}", "filters: must be an array of filter objects, not an object"),
       "error: not an array");
    ok(fails("[1]", "filters[0]: a filter must be an object with one dialect key"),
       "error: element not an object");
    ok(fails("[{}]", "filters[0]: empty filter object: it needs one dialect key"),
       "error: empty filter object");
    ok(fails("[{\"foo\":{}}]", "filters[0]: unknown filter dialect 'foo'"), "error: unknown");
    ok(fails("[{\"Exact\":{\"type\":\"x\"}}]", "unknown filter dialect 'Exact'"),
       "error: dialect names are case-sensitive");
    ok(fails("[{\"exact\":{\"type\":\"x\"},\"prefix\":{\"type\":\"x\"}}]",
             "filters[0]: more than one dialect key in one filter object ('exact', 'prefix')"),
       "error: two dialect keys");
    ok(fails("[{\"exact\":\"type\"}]", "filters[0]: 'exact' needs an object of string values, "
                                       "not a string"),
       "error: exact not an object");
    ok(fails("[{\"prefix\":{\"type\":1}}]",
             "'prefix' needs an object of string values: 'type' is a number"),
       "error: prefix value a number");
    ok(fails("[{\"suffix\":{\"type\":null}}]", "'suffix' needs an object of string values: "
                                               "'type' is null"),
       "error: suffix value null");
    ok(fails("[{\"exact\":{}}]", "filters[0]: 'exact' needs at least one attribute"),
       "error: empty exact object");
    ok(fails("[{\"exact\":{\"\":\"x\"}}]", "'exact' has an empty attribute name"),
       "error: empty attribute name");
    ok(fails("[{\"exact\":{\"type\":\"\"}}]", "'exact': the value for 'type' is empty"),
       "error: empty value");
    ok(fails("[{\"exact\":{\"Type\":\"x\"}}]",
             "'exact': 'Type' is not a CloudEvents attribute name"),
       "error: upper-case attribute name");
    ok(fails("[{\"all\":{}}]", "filters[0]: 'all' needs an array of filters, not an object"),
       "error: all not an array");
    ok(fails("[{\"any\":[]}]", "filters[0]: 'any' needs at least one filter"), "error: empty any");
    ok(fails("[{\"all\":[{\"exact\":{\"type\":\"x\"}},{\"bar\":1}]}]",
             "filters[0].all[1]: unknown filter dialect 'bar'"),
       "error: path into all");
    ok(fails("[{\"not\":[]}]", "filters[0]: 'not' needs one filter object, not an array"),
       "error: not of an array");
    ok(fails("[{\"not\":{}}]", "filters[0].not: empty filter object"), "error: not of {}");
    ok(fails("[{\"sql\":1}]", "'sql' needs a string (a CESQL expression), not a number"),
       "error: sql not a string");
    ok(fails("[{\"sql\":\"type = \"}]",
             "filters[0]: 'sql': syntax error at 8: expected an expression but found end of "
             "expression"),
       "error: sql syntax error");
    ok(fails("[{\"sql\":\"FOO(type)\"}]", "'sql': unknown function FOO"),
       "error: sql unknown function");
    ok(fails("[{\"sql\":\"LEFT(type) = 'a'\"}]", "'sql': function LEFT takes 2 arguments, got 1"),
       "error: sql wrong number of arguments");
    ok(fails("[{\"sql\":\"1 + 2\"}]", "'sql': the expression gives an Integer, a filter needs a "
                                      "Boolean"),
       "error: sql of type Integer");
    ok(fails("[{\"sql\":\"UPPER(type)\"}]", "gives a String"), "error: sql of type String");
    ok(fails("[{\"exact\":{\"type\":\"x\"}},{\"any\":[{\"not\":{\"sql\":\"(\"}}]}]",
             "filters[1].any[0].not: 'sql': syntax error at 2"),
       "error: path through any and not");
    ok(fails("[{\"\xc3\xa6\xc3\xb8\xc3\xa5\xc3\xa6\xc3\xb8\xc3\xa5\xc3\xa6\xc3\xb8\xc3\xa5\xc3\xa6"
             "\xc3\xb8\xc3\xa5\xc3\xa6\xc3\xb8\xc3\xa5\xc3\xa6\xc3\xb8\xc3\xa5\xc3\xa6\xc3\xb8\xc3"
             "\xa5"
             "\":1}]",
             "unknown filter dialect"),
       "error: a long non-ASCII name is shown cut at a character boundary");

    filter_dialect_t *d = NULL;
    char err[300];
    ok(filter_dialect_compile(NULL, &d, err, sizeof err) == FILTER_DIALECT_EINVALID &&
           strstr(err, "not missing"),
       "error: NULL array");
    char tiny[12];
    filter_json_doc_t *doc = NULL;
    filter_json_parse("[{\"foo\":1}]", 11, NULL, &doc, NULL, 0);
    ok(filter_dialect_compile(filter_json_root(doc), &d, tiny, sizeof tiny) ==
               FILTER_DIALECT_EINVALID &&
           strlen(tiny) == 11,
       "error: message truncated to errlen");
    ok(filter_dialect_compile(filter_json_root(doc), &d, NULL, 0) == FILTER_DIALECT_EINVALID,
       "error: NULL err buffer");
    filter_json_doc_free(doc);
    filter_dialect_free(NULL);
}

int main(void)
{
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"42\",\"source\":\"https://x.example/o\","
        "\"type\":\"order.created\",\"subject\":\"/party/50001\","
        "\"resource\":\"urn:altinn:resource:r\",\"myint\":10,\"neg\":-7,\"mybool\":true,"
        "\"mystr\":\"true\"}";
    char msg[200];
    if (filter_event_parse(json, strlen(json), NULL, &ev, msg, sizeof msg)) {
        ok(0, "the test event parses: %s", msg);
        return done_testing();
    }
    test_dialects();
    test_errors();
    filter_event_free(ev);
    return done_testing();
}
