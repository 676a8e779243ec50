/* Micro-benchmark of CESQL evaluation: one compiled three-clause filter evaluated N times (default
 * 10 million) against one filter_event_t, and the same filter written as Subscriptions API
 * dialects. usage: bench-cesql [N] Prints nanoseconds per evaluation. Built on demand: ninja -C
 * BUILD test/bench/bench-cesql */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter/cesql.h"
#include "filter/dialect.h"
#include "filter/event.h"

static const char *const EXPR = "type = 'order.created' AND subject LIKE '/party/%' AND "
                                "source IN ('a','b','https://x.example/o')";

static const char *const DIALECT =
    "[{\"exact\":{\"type\":\"order.created\"}},{\"prefix\":{\"subject\":\"/party/\"}},"
    "{\"any\":[{\"exact\":{\"source\":\"a\"}},{\"exact\":{\"source\":\"b\"}},"
    "{\"exact\":{\"source\":\"https://x.example/o\"}}]}]";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    if (n <= 0) {
        fprintf(stderr, "usage: bench-cesql [N]\n");
        return 2;
    }
    const char *json =
        "{\"specversion\":\"1.0\",\"id\":\"0b8f6c1e-1\",\"source\":\"https://x.example/o\","
        "\"type\":\"order.created\",\"subject\":\"/party/50001234\","
        "\"time\":\"2026-01-01T00:00:00Z\",\"resource\":\"urn:altinn:resource:bench\","
        "\"resourceinstance\":\"50001234/abc\",\"alternativesubject\":\"/person/01017012345\","
        "\"data\":{\"n\":1}}";
    filter_event_t *ev = NULL;
    char msg[200];
    if (filter_event_parse(json, strlen(json), NULL, &ev, msg, sizeof msg)) {
        fprintf(stderr, "event: %s\n", msg);
        return 1;
    }
    filter_cesql_t *e = NULL;
    if (filter_cesql_compile(EXPR, strlen(EXPR), &e, msg, sizeof msg)) {
        fprintf(stderr, "compile: %s\n", msg);
        return 1;
    }
    filter_json_doc_t *doc = NULL;
    filter_dialect_t *d = NULL;
    if (filter_json_parse(DIALECT, strlen(DIALECT), NULL, &doc, msg, sizeof msg) ||
        filter_dialect_compile(filter_json_root(doc), &d, msg, sizeof msg)) {
        fprintf(stderr, "dialect: %s\n", msg);
        return 1;
    }
    filter_json_doc_free(doc);

    /* Warm up caches and branch predictors first. */
    long hits = 0;
    for (long i = 0; i < n / 100 + 1; i++)
        hits += filter_cesql_matches(e, filter_cesql_event_attr, ev);

    hits = 0;
    double t0 = now();
    for (long i = 0; i < n; i++)
        hits += filter_cesql_matches(e, filter_cesql_event_attr, ev);
    double t1 = now();
    printf("cesql:   %s\n", EXPR);
    printf("cesql:   %ld evaluations, %ld matched, %.1f ns per evaluation\n", n, hits,
           (t1 - t0) / (double)n);

    hits = 0;
    t0 = now();
    for (long i = 0; i < n; i++)
        hits += filter_dialect_match(d, filter_cesql_event_attr, ev);
    t1 = now();
    printf("dialect: the same as exact + prefix + any of three exact\n");
    printf("dialect: %ld evaluations, %ld matched, %.1f ns per evaluation\n", n, hits,
           (t1 - t0) / (double)n);

    filter_dialect_free(d);
    filter_cesql_free(e);
    filter_event_free(ev);
    return 0;
}
