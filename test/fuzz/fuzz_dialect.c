/* Fuzz target: the Subscriptions API filter dialects (filter/dialect.c, and CESQL through "sql").
 *
 * The input is parsed as JSON (with the limits of a subscription body) and, when it parses,
 * compiled with filter_dialect_compile. The JSON is freed before matching (the compiled form must
 * not need it). A compiled predicate is matched against two fixed events. When the array has
 * exactly one filter X, the wrappers [{"not":X}], [{"all":[X]}] and [{"any":[X]}] are compiled too
 * (if within the nesting limit) and must match the negation, the same, and the same. A failed
 * compile leaves *out alone and says why in valid UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/dialect.h"
#include "filter/event.h"
#include "filter/json.h"
#include "fuzz.h"

static filter_event_t *events[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const json[2] = {
        "{\"specversion\":\"1.0\",\"id\":\"id-1\",\"source\":\"urn:altinn:app:ttd:app\","
        "\"type\":\"app.instance.created\",\"subject\":\"/party/50001\","
        "\"time\":\"2024-01-02T03:04:05Z\",\"resource\":\"urn:altinn:resource:ttd-app\","
        "\"count\":42,\"flag\":true,\"word\":\"Ærlig\"}",
        "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\","
        "\"resource\":\"urn:altinn:resource:r\"}",
    };
    char msg[256];
    for (int i = 0; i < 2; i++)
        if (filter_event_parse(json[i], strlen(json[i]), NULL, &events[i], msg, sizeof msg) != 0) {
            fprintf(stderr, "fuzz_dialect: fixed event %d: %s\n", i, msg);
            abort();
        }
    return 0;
}

static const filter_json_limits_t lim = {1 << 20, 64, 100000};

/* Compiles text; 1 and *out on success, 0 on failure (checked). */
static int compile(const char *text, size_t len, filter_dialect_t **out)
{
    filter_json_doc_t *doc;
    if (filter_json_parse(text, len, &lim, &doc, NULL, 0) != 0) return -1;
    filter_dialect_t *d = (filter_dialect_t *)&d, *const sentinel = d;
    char err[300];
    memset(err, 0x55, sizeof err);
    int rc = filter_dialect_compile(filter_json_root(doc), &d, err, sizeof err);
    filter_json_doc_free(doc);
    if (rc != FILTER_DIALECT_OK) {
        FUZZ_CHECK(rc == FILTER_DIALECT_EINVALID || rc == FILTER_DIALECT_ENOMEM);
        FUZZ_CHECK(d == sentinel);
        FUZZ_CHECK(memchr(err, '\0', sizeof err) && err[0]);
        FUZZ_CHECK(filter_utf8_valid(err, strlen(err)));
        return 0;
    }
    FUZZ_CHECK(d && d != sentinel);
    *out = d;
    return 1;
}

static void wrapped(const char *pre, const char *x, size_t xl, const char *post, int want[2])
{
    size_t pl = strlen(pre), ql = strlen(post);
    char *t = malloc(pl + xl + ql);
    memcpy(t, pre, pl);
    memcpy(t + pl, x, xl);
    memcpy(t + pl + xl, post, ql);
    filter_dialect_t *d;
    if (compile(t, pl + xl + ql, &d) == 1) {
        for (int i = 0; i < 2; i++) {
            int m = filter_dialect_match(d, filter_cesql_event_attr, events[i]);
            if (m != want[i]) {
                fprintf(stderr, "%.*s matches event %d: %d, expected %d\n", (int)(pl + xl + ql), t,
                        i, m, want[i]);
                FUZZ_CHECK(0);
            }
        }
        filter_dialect_free(d);
    }
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    filter_dialect_t *d;
    if (compile((const char *)data, size, &d) != 1) return 0;
    int m[2];
    for (int i = 0; i < 2; i++) {
        m[i] = filter_dialect_match(d, filter_cesql_event_attr, events[i]);
        FUZZ_CHECK(m[i] == 0 || m[i] == 1);
        FUZZ_CHECK(filter_dialect_match(d, filter_cesql_event_attr, events[i]) == m[i]);
    }
    filter_dialect_free(d);

    /* one filter X: not/all/any around it */
    filter_json_doc_t *doc;
    FUZZ_CHECK(filter_json_parse((const char *)data, size, &lim, &doc, NULL, 0) == 0);
    const filter_json_t *root = filter_json_root(doc);
    if (root->type == FILTER_JSON_ARRAY && root->count == 1 && root->items[0]->raw) {
        const filter_json_t *x = root->items[0];
        int neg[2] = {!m[0], !m[1]};
        wrapped("[{\"not\":", x->raw, x->raw_len, "}]", neg);
        wrapped("[{\"all\":[", x->raw, x->raw_len, "]}]", m);
        wrapped("[{\"any\":[", x->raw, x->raw_len, "]}]", m);
    }
    filter_json_doc_free(doc);
    return 0;
}
