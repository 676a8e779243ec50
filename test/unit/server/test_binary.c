/* Unit tests for server/binary: binary-mode events from header pairs, Content-Type and body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "server/binary.h"

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof n - 1, v, sizeof v - 1                                                           \
    }

static const srv_header_t base[] = {
    H("ce-specversion", "1.0"),
    H("Ce-Id", " e1 "),
    H("CE-SOURCE", "/s"),
    H("ce-type", "t"),
    H("ce-resource", "urn:altinn:resource:r"),
    H("Accept", "*/*"),
};
#define NBASE (sizeof base / sizeof base[0])

static int make(const srv_header_t *extra, size_t nextra, const char *ct, const char *body,
                size_t len, filter_event_t **ev, char *msg)
{
    srv_header_t hs[16];
    memcpy(hs, base, sizeof base);
    if (nextra) memcpy(hs + NBASE, extra, nextra * sizeof *extra);
    *ev = NULL;
    return srv_binary_event(hs, NBASE + nextra, ct, body, len, ev, msg, 256);
}

int main(void)
{
    filter_event_t *ev;
    char msg[256];

    ok(make(NULL, 0, " application/json ", "{ \"a\" : 1 }", 11, &ev, msg) == 0 &&
           !strcmp(ev->id, "e1") && !strcmp(ev->datacontenttype, "application/json") &&
           ev->data_json_len == 7 && !memcmp(ev->data_json, "{\"a\":1}", 7),
       "JSON body: data is the compacted value, attributes from ce- headers (trimmed)");
    filter_event_free(ev);

    ok(make(NULL, 0, "text/plain", "h\xc3\xa9", 3, &ev, msg) == 0 &&
           !strcmp(ev->data_json, "\"h\xc3\xa9\""),
       "text body: data is a string");
    filter_event_free(ev);
    ok(make(NULL, 0, "text/plain", "\xff", 1, &ev, msg) == FILTER_EVENT_EINVALID &&
           strstr(msg, "UTF-8"),
       "text body that is not UTF-8: 400");

    ok(make(NULL, 0, NULL, "\0\1\2", 3, &ev, msg) == 0 && !strcmp(ev->data_base64, "AAEC") &&
           !ev->datacontenttype,
       "no Content-Type: the bytes as data_base64");
    filter_event_free(ev);

    srv_header_t pct[] = {H("ce-myext", "caf%C3%A9%20%25")};
    ok(make(pct, 1, NULL, "", 0, &ev, msg) == 0 &&
           !strcmp(filter_event_attr(ev, "myext"), "caf\xc3\xa9 %"),
       "percent-decoded values");
    filter_event_free(ev);
    srv_header_t bad[] = {H("ce-myext", "100%")};
    ok(make(bad, 1, NULL, "", 0, &ev, msg) == FILTER_EVENT_EINVALID && strstr(msg, "percent"),
       "a malformed escape: 400");
    srv_header_t data[] = {H("ce-data", "x")};
    ok(make(data, 1, NULL, "", 0, &ev, msg) == FILTER_EVENT_EINVALID && strstr(msg, "body"),
       "ce-data: 400");
    ok(make(NULL, 0, "application/json", "{", 1, &ev, msg) == FILTER_EVENT_EINVALID &&
           strstr(msg, "not valid JSON"),
       "a JSON Content-Type with a body that is not JSON: 400");

    /* found while writing the fuzz target: called on its own (publish.c only calls it when there
     * is a ce-specversion header), no ce- header and no body left nothing after the placeholder
     * member, and an invariant check aborted */
    srv_header_t none[] = {H("Accept", "*/*")};
    ok(srv_binary_event(none, 1, NULL, "", 0, &ev, msg, sizeof msg) == FILTER_EVENT_EINVALID &&
           strstr(msg, "missing required attributes"),
       "no ce- headers at all: missing attributes, no abort");
    ok(srv_binary_event(NULL, 0, "  ", "", 0, &ev, msg, sizeof msg) == FILTER_EVENT_EINVALID,
       "nothing at all");
    return done_testing();
}
