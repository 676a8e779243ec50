/* Fuzz target: the CloudEvent parser and validator (filter/event.c, filter/text.c).
 *
 * The input goes through filter_event_parse with the server's limits (structured mode) and, when
 * it is a JSON array, each element through filter_event_from_json (batch mode). On success:
 * - every attribute string is free of control characters, resource is set, specversion is "1.0";
 * - the canonical JSON (ev->json) parses again to an equal event whose canonical JSON is the same
 *   bytes (a fixed point). Extension kinds are the exception, by design: the canonical JSON holds
 *   every extension as a string ("coerced extensions"), so the re-parsed event has string kinds;
 * - filter_event_attr finds every attribute;
 * - an object parsed through filter_event_from_json gives the same result as filter_event_parse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/event.h"
#include "filter/json.h"
#include "fuzz.h"

static const filter_event_limits_t lim = {1 << 20, 64};

static int streq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void no_controls(const char *s)
{
    if (!s) return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
        FUZZ_CHECK(!(p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F));
    }
    FUZZ_CHECK(filter_utf8_valid(s, strlen(s)));
}

static void check_equal(const filter_event_t *a, const filter_event_t *b)
{
    FUZZ_CHECK(streq(a->specversion, b->specversion));
    FUZZ_CHECK(streq(a->id, b->id));
    FUZZ_CHECK(streq(a->source, b->source));
    FUZZ_CHECK(streq(a->type, b->type));
    FUZZ_CHECK(streq(a->subject, b->subject));
    FUZZ_CHECK(streq(a->time, b->time));
    FUZZ_CHECK(streq(a->dataschema, b->dataschema));
    FUZZ_CHECK(streq(a->datacontenttype, b->datacontenttype));
    FUZZ_CHECK(streq(a->resource, b->resource));
    FUZZ_CHECK(streq(a->resourceinstance, b->resourceinstance));
    FUZZ_CHECK(streq(a->alternativesubject, b->alternativesubject));
    FUZZ_CHECK(a->n_exts == b->n_exts);
    for (size_t i = 0; i < a->n_exts; i++) {
        FUZZ_CHECK(streq(a->exts[i].name, b->exts[i].name));
        FUZZ_CHECK(streq(a->exts[i].value, b->exts[i].value));
    }
    FUZZ_CHECK(a->data_json_len == b->data_json_len);
    FUZZ_CHECK((a->data_json == NULL) == (b->data_json == NULL));
    if (a->data_json) FUZZ_CHECK(memcmp(a->data_json, b->data_json, a->data_json_len) == 0);
    FUZZ_CHECK(streq(a->data_base64, b->data_base64));
}

static void check_event(const filter_event_t *ev)
{
    char msg[512];
    filter_event_t *ev2 = NULL, *ev3 = NULL;
    int rc;

    FUZZ_CHECK(streq(ev->specversion, "1.0"));
    FUZZ_CHECK(ev->id && ev->id[0] && ev->source && ev->source[0] && ev->type && ev->type[0]);
    FUZZ_CHECK(ev->resource && ev->resource[0]);
    FUZZ_CHECK(!(ev->data_json && ev->data_base64));
    if (ev->data_json) FUZZ_CHECK(ev->datacontenttype);
    const char *core[] = {ev->specversion, ev->id,   ev->source,          ev->type,
                          ev->subject,     ev->time, ev->datacontenttype, ev->dataschema};
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++)
        no_controls(core[i]);
    for (size_t i = 0; i < ev->n_exts; i++) {
        no_controls(ev->exts[i].name);
        no_controls(ev->exts[i].value);
        FUZZ_CHECK(filter_event_attr(ev, ev->exts[i].name) != NULL);
    }
    FUZZ_CHECK(filter_event_attr(ev, "id") == ev->id);
    FUZZ_CHECK(ev->json && ev->json[ev->json_len] == '\0');

    /* the canonical form is a fixed point */
    rc = filter_event_parse(ev->json, ev->json_len, NULL, &ev2, msg, sizeof msg);
    if (rc != FILTER_EVENT_OK) {
        fprintf(stderr, "canonical %.*s does not parse again: %s\n", (int)ev->json_len, ev->json,
                msg);
        FUZZ_CHECK(0);
    }
    check_equal(ev, ev2);
    for (size_t i = 0; i < ev2->n_exts; i++)
        FUZZ_CHECK(ev2->exts[i].kind == FILTER_EXT_STRING);
    if (ev2->json_len != ev->json_len || memcmp(ev2->json, ev->json, ev->json_len) != 0) {
        fprintf(stderr, "canonical not stable:\n%.*s\n%.*s\n", (int)ev->json_len, ev->json,
                (int)ev2->json_len, ev2->json);
        FUZZ_CHECK(0);
    }
    rc = filter_event_parse(ev2->json, ev2->json_len, NULL, &ev3, msg, sizeof msg);
    FUZZ_CHECK(rc == FILTER_EVENT_OK);
    check_equal(ev2, ev3);
    filter_event_free(ev3);
    filter_event_free(ev2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    filter_event_t *ev = NULL;
    char msg[512];
    int rc;

    memset(msg, 0x55, sizeof msg);
    rc = filter_event_parse((const char *)data, size, &lim, &ev, msg, sizeof msg);
    if (rc == FILTER_EVENT_OK) {
        check_event(ev);
    } else {
        FUZZ_CHECK(ev == NULL);
        /* the message goes into a JSON problem body: NUL-terminated, valid UTF-8 */
        FUZZ_CHECK(memchr(msg, '\0', sizeof msg) != NULL);
        FUZZ_CHECK(msg[0] && filter_utf8_valid(msg, strlen(msg)));
    }

    /* the same text through the JSON reader and filter_event_from_json */
    filter_json_limits_t jl = {1 << 20, 65, 0};
    filter_json_doc_t *doc;
    if (filter_json_parse((const char *)data, size, &jl, &doc, NULL, 0) == 0) {
        const filter_json_t *root = filter_json_root(doc);
        if (root->type == FILTER_JSON_OBJECT) {
            filter_event_t *e2 = NULL;
            int rc2 = filter_event_from_json(root, &e2, msg, sizeof msg);
            /* the depth limits differ by one (a batch's array is a level) */
            if (rc != FILTER_EVENT_OK && rc2 == FILTER_EVENT_OK) {
                /* only the nesting limit of filter_event_parse can make the difference */
                FUZZ_CHECK(rc == FILTER_EVENT_EINVALID);
            } else {
                FUZZ_CHECK(rc == rc2);
            }
            if (rc == 0 && rc2 == 0) {
                check_equal(ev, e2);
                FUZZ_CHECK(ev->json_len == e2->json_len &&
                           memcmp(ev->json, e2->json, ev->json_len) == 0);
            }
            filter_event_free(e2);
        } else if (root->type == FILTER_JSON_ARRAY) {
            for (size_t i = 0; i < root->count && i < 1000; i++) {
                filter_event_t *e = NULL;
                if (filter_event_from_json(root->items[i], &e, msg, sizeof msg) == 0) {
                    check_event(e);
                    filter_event_free(e);
                } else {
                    FUZZ_CHECK(msg[0] && filter_utf8_valid(msg, strlen(msg)));
                }
            }
        }
        filter_json_doc_free(doc);
    }
    filter_event_free(ev);
    return 0;
}
