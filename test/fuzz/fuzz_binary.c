/* Fuzz target: binary-mode events (server/binary.c, srv_binary_event: ce- headers + Content-Type +
 * body -> filter_event_t), the part of the publish handler that needs no HTTP.
 *
 * Input: header lines "name:value" up to the first empty line ("\n\n"), then the body. A
 * content-type line (any case; the first one) is also the Content-Type. Every line goes into the
 * header list, as publish.c passes the request's whole header table. On success:
 * - every ce-NAME header's value, with surrounding blanks trimmed and percent-decoded, is the
 *   attribute NAME (except time, which is normalised);
 * - the body is the data: compacted JSON for a JSON Content-Type, the string for text/..., base64
 *   of the bytes otherwise; datacontenttype is the trimmed Content-Type;
 * - the canonical JSON parses again to the same canonical JSON. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "filter/json.h"
#include "server/binary.h"
#include "fuzz.h"

static int hexv(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* trimmed, percent-decoded; NULL if an escape is bad */
static char *decode(const char *v, size_t n, size_t *outlen)
{
    while (n && (*v == ' ' || *v == '\t'))
        v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    char *o = malloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != '%') {
            o[k++] = v[i];
            continue;
        }
        if (i + 2 >= n || hexv((unsigned char)v[i + 1]) < 0 || hexv((unsigned char)v[i + 2]) < 0) {
            free(o);
            return NULL;
        }
        o[k++] = (char)(hexv((unsigned char)v[i + 1]) * 16 + hexv((unsigned char)v[i + 2]));
        i += 2;
    }
    o[k] = '\0';
    *outlen = k;
    return o;
}

static int json_media(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n == 9 && !strncasecmp(ct, "text/json", 9)) ||
           (n > 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size;
    const char *sep = memmem(in, size, "\n\n", 2);
    const char *hend = sep ? sep : end;
    const char *body = sep ? sep + 2 : end;
    size_t blen = (size_t)(end - body);
    srv_header_t hs[64];
    size_t n = 0;
    char *ct = NULL;

    for (const char *p = in; p < hend && n < 64;) {
        const char *nl = memchr(p, '\n', (size_t)(hend - p));
        const char *le = nl ? nl : hend;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon) {
            hs[n] = (srv_header_t){p, (size_t)(colon - p), colon + 1, (size_t)(le - colon - 1)};
            if (!ct && hs[n].name_len == 12 && !strncasecmp(p, "content-type", 12)) {
                ct = strndup(hs[n].value, hs[n].value_len); /* a NUL inside cuts it, as in C */
            }
            n++;
        }
        p = le + 1;
    }

    filter_event_t *ev = NULL;
    char msg[512];
    memset(msg, 0x55, sizeof msg);
    int rc = srv_binary_event(hs, n, ct, body, blen, &ev, msg, sizeof msg);
    if (rc != FILTER_EVENT_OK) {
        FUZZ_CHECK(ev == NULL);
        FUZZ_CHECK(memchr(msg, '\0', sizeof msg) && msg[0]);
        free(ct);
        return 0;
    }

    /* the attributes are the decoded ce- headers */
    for (size_t i = 0; i < n; i++) {
        if (hs[i].name_len <= 3 || strncasecmp(hs[i].name, "ce-", 3)) continue;
        char name[64];
        size_t k;
        FUZZ_CHECK(hs[i].name_len - 3 < sizeof name);
        for (k = 0; k < hs[i].name_len - 3; k++)
            name[k] = (char)tolower((unsigned char)hs[i].name[3 + k]);
        name[k] = '\0';
        size_t vl;
        char *v = decode(hs[i].value, hs[i].value_len, &vl);
        FUZZ_CHECK(v != NULL);
        const char *got = filter_event_attr(ev, name);
        if (strcmp(name, "time") != 0) {
            if (!got || strlen(got) != vl || memcmp(got, v, vl) != 0) {
                fprintf(stderr, "attribute %s: got '%s', header gave '%s'\n", name,
                        got ? got : "(none)", v);
                FUZZ_CHECK(0);
            }
        } else {
            FUZZ_CHECK(got != NULL);
        }
        free(v);
    }

    /* the data */
    const char *t = ct;
    size_t tl = 0;
    if (t) {
        while (*t == ' ' || *t == '\t')
            t++;
        tl = strlen(t);
        while (tl && (t[tl - 1] == ' ' || t[tl - 1] == '\t'))
            tl--;
    }
    if (tl) {
        FUZZ_CHECK(ev->datacontenttype && strlen(ev->datacontenttype) == tl &&
                   memcmp(ev->datacontenttype, t, tl) == 0);
    }
    if (blen == 0) {
        FUZZ_CHECK(!ev->data_json && !ev->data_base64);
    } else if (tl && json_media(t)) {
        filter_buf_t b = {0};
        filter_buf_json_compact(&b, body, blen);
        FUZZ_CHECK(ev->data_json && ev->data_json_len == b.len &&
                   memcmp(ev->data_json, b.data, b.len) == 0);
        filter_buf_fini(&b);
    } else if (tl && !strncasecmp(t, "text/", 5)) {
        filter_json_doc_t *doc;
        FUZZ_CHECK(ev->data_json &&
                   filter_json_parse(ev->data_json, ev->data_json_len, NULL, &doc, NULL, 0) == 0);
        const filter_json_t *s = filter_json_root(doc);
        FUZZ_CHECK(s->type == FILTER_JSON_STRING && s->len == blen && !memcmp(s->str, body, blen));
        filter_json_doc_free(doc);
    } else {
        char *b64 = malloc(4 * ((blen + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)body, (int)blen);
        FUZZ_CHECK(ev->data_base64 && strcmp(ev->data_base64, b64) == 0);
        free(b64);
    }

    /* the canonical JSON is a fixed point */
    filter_event_t *ev2 = NULL;
    FUZZ_CHECK(filter_event_parse(ev->json, ev->json_len, NULL, &ev2, msg, sizeof msg) == 0);
    FUZZ_CHECK(ev2->json_len == ev->json_len && !memcmp(ev2->json, ev->json, ev->json_len));
    filter_event_free(ev2);
    filter_event_free(ev);
    free(ct);
    return 0;
}
