/* webhook/modes.c: the content modes (webhook.h, webhook_mode_t): what one delivery attempt puts
 * on the wire. Structured and cloudevents send the stored event JSON as it is and differ only in
 * the Content-Type; binary (CloudEvents HTTP binding §3.1) parses the event and maps its
 * attributes to ce- headers and its data to the body.
 *
 * The stored event was validated and canonicalised when it was published, so the checks here only
 * guard against what the binary mapping cannot express; such an event fails for good (WIRE_EPERM)
 * rather than being retried for days. */
#include "webhook/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "filter/json.h"

#define CT_STRUCTURED "application/json; charset=utf-8"
#define CT_CLOUDEVENTS "application/cloudevents+json; charset=utf-8"
#define MAX_DEPTH 256 /* deeper than the publish limit can allow */

void wire_fini(wire_t *w)
{
    blob_unref(w->body);
    free(w->own);
    free(w->hdrs);
    memset(w, 0, sizeof(*w));
}

int wire_add_headers(const wire_t *w, struct evkeyvalq *hdrs)
{
    if (w->ctype && evhttp_add_header(hdrs, "Content-Type", w->ctype) != 0) return -1;
    const char *p = w->hdrs;
    for (size_t i = 0; i < w->nhdrs; i++) {
        const char *name = p, *value = p + strlen(p) + 1;
        if (evhttp_add_header(hdrs, name, value) != 0) return -1;
        p = value + strlen(value) + 1;
    }
    return 0;
}

/* ---- pieces of the binary mapping ---- */

/* RFC 9110 tchar: what a header name may hold. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* 1 if s[0..n) can be sent as it is as a header value (Content-Type is not percent-encoded). */
static int header_value_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
    }
    return 1;
}

/* Appends v[0..n) percent-encoded as the HTTP binding (§3.1.3.2) requires: space, '"', '%' and
 * everything outside printable ASCII. UTF-8 is encoded byte by byte, which is the same as
 * encoding each character's UTF-8 bytes. */
static void pct_encode(filter_buf_t *b, const char *v, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '%') {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            filter_buf_append(b, e, 3);
        } else {
            filter_buf_append(b, &v[i], 1);
        }
    }
}

/* 1 if the media type (parameters ignored) is JSON: application/json, text/json or a +json
 * structured syntax suffix (RFC 6839). */
static int json_media_type(const char *ct)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    const char *slash = memchr(ct, '/', n);
    if (!slash || slash == ct || slash + 1 == ct + n) return 0;
    if ((n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
        (n == 9 && strncasecmp(ct, "text/json", 9) == 0))
        return 1;
    size_t sub = (size_t)(ct + n - (slash + 1));
    return sub > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes standard base64 (RFC 4648 §4; the padding may be left out) into a new blob. Returns 0,
 * WIRE_EPERM or WEBHOOK_ENOMEM. */
static int b64_decode(const char *s, size_t n, blob_t **out)
{
    while (n && s[n - 1] == '=' && n % 4 != 1)
        n--;
    if (n % 4 == 1) return WIRE_EPERM;
    blob_t *b = blob_new(NULL, n / 4 * 3 + 2);
    if (!b) return WEBHOOK_ENOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) {
            blob_unref(b);
            return WIRE_EPERM;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b->data[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    /* the leftover bits of a short last quantum must be zero (canonical encoding) */
    if (bits && (acc & ((1u << bits) - 1))) {
        blob_unref(b);
        return WIRE_EPERM;
    }
    b->len = o;
    *out = b;
    return 0;
}

/* The canonical string of a scalar attribute value, or NULL for null (left out) and for objects
 * and arrays (*bad set). */
static const char *attr_string(const filter_json_t *v, size_t *len, int *bad)
{
    switch (v->type) {
    case FILTER_JSON_STRING:
    case FILTER_JSON_NUMBER:
        *len = v->len;
        return v->str;
    case FILTER_JSON_TRUE:
        *len = 4;
        return "true";
    case FILTER_JSON_FALSE:
        *len = 5;
        return "false";
    case FILTER_JSON_NULL:
        return NULL;
    default:
        *bad = 1;
        return NULL;
    }
}

static int fail(char *err, size_t errlen, const char *what, const char *name)
{
    snprintf(err, errlen, "binary mode: %s%s%s", what, name ? " " : "", name ? name : "");
    return WIRE_EPERM;
}

/* Builds the binary-mode request of the event ev[0..len). */
static int build_binary(const blob_t *ev, wire_t *w, char *err, size_t errlen)
{
    filter_json_limits_t lim = {.max_depth = MAX_DEPTH};
    filter_json_doc_t *doc = NULL;
    char perr[96];
    int rc = filter_json_parse(ev->data, ev->len, &lim, &doc, perr, sizeof(perr));
    if (rc == FILTER_JSON_ENOMEM) return WEBHOOK_ENOMEM;
    if (rc != FILTER_JSON_OK) return fail(err, errlen, "stored event unreadable:", perr);
    const filter_json_t *root = filter_json_root(doc);
    filter_buf_t hb = {0}, body = {0};
    const filter_json_t *data = NULL, *data64 = NULL;
    const char *dct = NULL;
    rc = 0;
    if (root->type != FILTER_JSON_OBJECT) {
        rc = fail(err, errlen, "stored event is not an object", NULL);
        goto out;
    }
    for (size_t i = 0; i < root->count && rc == 0; i++) {
        const char *name = root->keys[i];
        const filter_json_t *v = root->items[i];
        if (strcmp(name, "data") == 0) {
            data = v->type == FILTER_JSON_NULL ? NULL : v;
            continue;
        }
        if (strcmp(name, "data_base64") == 0) {
            if (v->type == FILTER_JSON_STRING)
                data64 = v;
            else if (v->type != FILTER_JSON_NULL)
                rc = fail(err, errlen, "data_base64 is not a string", NULL);
            continue;
        }
        if (strcmp(name, "datacontenttype") == 0) {
            if (v->type == FILTER_JSON_STRING && header_value_ok(v->str, v->len))
                dct = v->str;
            else if (v->type != FILTER_JSON_NULL)
                rc = fail(err, errlen, "datacontenttype is not a header value", NULL);
            continue;
        }
        size_t vl = 0;
        int bad = 0;
        const char *s = attr_string(v, &vl, &bad);
        if (bad) {
            rc = fail(err, errlen, "attribute is not a scalar:", name);
            break;
        }
        if (!s) continue;
        if (!root->key_lens[i]) {
            rc = fail(err, errlen, "empty attribute name", NULL);
            break;
        }
        for (size_t k = 0; k < root->key_lens[i]; k++)
            if (!is_tchar((unsigned char)name[k])) {
                rc = fail(err, errlen, "attribute name is not an HTTP token:", name);
                break;
            }
        if (rc) break;
        filter_buf_puts(&hb, "ce-");
        filter_buf_append(&hb, name, root->key_lens[i] + 1); /* with its NUL */
        pct_encode(&hb, s, vl);
        filter_buf_append(&hb, "", 1);
        w->nhdrs++;
    }
    if (rc) goto out;
    if (data && data64) {
        rc = fail(err, errlen, "both data and data_base64", NULL);
        goto out;
    }
    if (data64) {
        w->ctype = dct ? dct : "application/octet-stream";
        rc = b64_decode(data64->str, data64->len, &w->body);
        if (rc == WIRE_EPERM) fail(err, errlen, "data_base64 is not base64", NULL);
        if (rc) goto out;
    } else {
        if (data) {
            w->ctype = dct ? dct : "application/json";
            if (data->type == FILTER_JSON_STRING && !json_media_type(w->ctype))
                filter_buf_append(&body, data->str, data->len);
            else
                filter_buf_json_value(&body, data);
        } else {
            w->ctype = dct; /* none without data and datacontenttype */
        }
        if (!filter_buf_failed(&body) && !(w->body = blob_new(body.data, body.len)))
            rc = WEBHOOK_ENOMEM;
    }
    if (!rc && (filter_buf_failed(&hb) || filter_buf_failed(&body))) rc = WEBHOOK_ENOMEM;
    if (!rc && w->ctype && !(w->own = strdup(w->ctype))) rc = WEBHOOK_ENOMEM;
    if (!rc) {
        if (w->own) w->ctype = w->own; /* it pointed into doc */
        if (w->nhdrs) w->hdrs = filter_buf_steal(&hb, NULL);
        if (w->nhdrs && !w->hdrs) rc = WEBHOOK_ENOMEM;
    }
out:
    if (rc) w->ctype = NULL;
    filter_buf_fini(&hb);
    filter_buf_fini(&body);
    filter_json_doc_free(doc);
    return rc;
}

int wire_build(const job_t *job, wire_t *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    int mode = job->kind == JOB_HANDSHAKE ? WEBHOOK_MODE_STRUCTURED : (int)job->sub->mode;
    if (mode == WEBHOOK_MODE_BINARY) return build_binary(job->body, w, err, errlen);
    w->body = job->body;
    w->body->refs++;
    w->ctype = mode == WEBHOOK_MODE_CLOUDEVENTS ? CT_CLOUDEVENTS : CT_STRUCTURED;
    return 0;
}
