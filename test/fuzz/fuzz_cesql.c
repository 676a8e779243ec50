/* Fuzz target: the CESQL compiler and evaluator (filter/cesql_*.c).
 *
 * The input is compiled with filter_cesql_compile; when that succeeds the expression is evaluated
 * with filter_cesql_eval (and filter_cesql_matches) against two fixed events through
 * filter_cesql_event_attr: one with typed extensions and non-ASCII text, one with only the
 * required attributes (so most attributes are missing). Checks:
 * - a failed compile returns -PARSE, -MISSING_FUNCTION or -GENERIC with a message;
 * - the result has a concrete type, equal to filter_cesql_type's when that is not ANY; the error
 *   kind is one of the spec's; a Boolean is 0 or 1; a String is valid UTF-8 (the expression is
 *   UTF-8 and every function works on code points);
 * - filter_cesql_matches agrees with filter_cesql_eval, and evaluating twice gives the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/cesql.h"
#include "filter/event.h"
#include "fuzz.h"

static filter_event_t *events[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const json[2] = {
        "{\"specversion\":\"1.0\",\"id\":\"Ωmega-1\",\"source\":\"urn:altinn:app:ttd:app\","
        "\"type\":\"app.instance.Created\",\"subject\":\"/party/50001\","
        "\"time\":\"2024-01-02T03:04:05.5Z\",\"resource\":\"urn:altinn:resource:ttd-app\","
        "\"resourceinstance\":\"50001/ÆØÅ-Привет\",\"count\":42,\"neg\":-2147483648,"
        "\"flag\":true,\"off\":false,\"word\":\"  ÀÉÎõü ΣΑΣ  \",\"num\":\"123\","
        "\"data\":{\"x\":1}}",
        "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\","
        "\"resource\":\"urn:altinn:resource:r\"}",
    };
    char msg[256];
    for (int i = 0; i < 2; i++)
        if (filter_event_parse(json[i], strlen(json[i]), NULL, &events[i], msg, sizeof msg) != 0) {
            fprintf(stderr, "fuzz_cesql: fixed event %d: %s\n", i, msg);
            abort();
        }
    return 0;
}

static void eval_one(const filter_cesql_t *e, filter_event_t *ev)
{
    filter_cesql_value_t r, r2;
    filter_cesql_type_t st = filter_cesql_type(e);
    int rc = filter_cesql_eval(e, filter_cesql_event_attr, ev, &r);
    FUZZ_CHECK(rc >= 0 && rc <= FILTER_CESQL_E_GENERIC && rc != FILTER_CESQL_E_PARSE);
    FUZZ_CHECK(r.type == FILTER_CESQL_BOOLEAN || r.type == FILTER_CESQL_INTEGER ||
               r.type == FILTER_CESQL_STRING);
    if (st != FILTER_CESQL_ANY) FUZZ_CHECK(r.type == st);
    if (r.type == FILTER_CESQL_BOOLEAN) FUZZ_CHECK(r.b == 0 || r.b == 1);
    if (r.type == FILTER_CESQL_STRING) {
        FUZZ_CHECK(r.s != NULL || r.len == 0);
        FUZZ_CHECK(r.len == 0 || filter_utf8_valid(r.s, r.len));
    }
    int m = filter_cesql_matches(e, filter_cesql_event_attr, ev);
    FUZZ_CHECK(m == (rc == 0 && r.type == FILTER_CESQL_BOOLEAN && r.b == 1));

    int rc2 = filter_cesql_eval(e, filter_cesql_event_attr, ev, &r2);
    FUZZ_CHECK(rc2 == rc && r2.type == r.type);
    switch (r.type) {
    case FILTER_CESQL_BOOLEAN:
        FUZZ_CHECK(r.b == r2.b);
        break;
    case FILTER_CESQL_INTEGER:
        FUZZ_CHECK(r.i == r2.i);
        break;
    default:
        FUZZ_CHECK(r.len == r2.len && (r.len == 0 || memcmp(r.s, r2.s, r.len) == 0));
        break;
    }
    filter_cesql_value_fini(&r);
    filter_cesql_value_fini(&r2);
    filter_cesql_value_fini(&r2); /* "safe on any value" */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    filter_cesql_t *e = NULL;
    char err[256];

    memset(err, 0x55, sizeof err);
    int rc = filter_cesql_compile((const char *)data, size, &e, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(e == NULL);
        FUZZ_CHECK(rc == -FILTER_CESQL_E_PARSE || rc == -FILTER_CESQL_E_MISSING_FUNCTION ||
                   rc == -FILTER_CESQL_E_GENERIC);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0]);
        FUZZ_CHECK(filter_utf8_valid(err, strlen(err)));
        FUZZ_CHECK(filter_cesql_strerror(rc)[0]);
        return 0;
    }
    FUZZ_CHECK(e != NULL);
    FUZZ_CHECK(size <= FILTER_CESQL_MAX_LEN);
    eval_one(e, events[0]);
    eval_one(e, events[1]);
    filter_cesql_free(e);
    return 0;
}
