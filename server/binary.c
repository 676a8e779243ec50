/* server/binary: a binary-mode CloudEvent assembled from its headers and body (see binary.h). The
 * event is written as structured JSON and then goes through exactly the same validation as a
 * structured one. */
#include "server/binary.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "filter/json.h"
#include "filter/util.h"

static int hexdig(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Appends a ce- header value percent-decoded (HTTP binding §3.1.3.2) as a JSON string. 0 or -1 if
 * an escape is malformed or the result is not UTF-8. */
static int put_decoded(filter_buf_t *b, const char *v, size_t n)
{
    size_t o = 0;
    /* optional whitespace around a field value is not part of it (RFC 9110 §5.5) */
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    char *tmp = malloc(n + 1);
    int rc = 0;
    if (!tmp) return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '%') {
            int hi = i + 2 < n ? hexdig(v[i + 1]) : -1, lo = hi >= 0 ? hexdig(v[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                rc = -1;
                break;
            }
            tmp[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            tmp[o++] = v[i];
        }
    }
    if (rc == 0) rc = filter_buf_json_string(b, tmp, o);
    free(tmp);
    return rc;
}

static int is_json_media(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n == 9 && strncasecmp(ct, "text/json", 9) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

/* Appends one ce- header as a member; other headers are skipped. NULL or the message of an error.
 */
static const char *put_ce_header(filter_buf_t *b, const srv_header_t *h)
{
    char name[64];
    size_t i;
    if (h->name_len <= 3 || strncasecmp(h->name, "ce-", 3) != 0) return NULL;
    if (h->name_len - 3 >= sizeof name) return "A ce- header name is too long.";
    for (i = 0; i < h->name_len - 3; i++)
        name[i] = (char)tolower((unsigned char)h->name[3 + i]);
    name[i] = '\0';
    if (strcmp(name, "data") == 0 || strcmp(name, "data_base64") == 0 ||
        strcmp(name, "datacontenttype") == 0)
        return "In binary mode the data is the body and its type is the Content-Type header.";
    filter_buf_puts(b, ",");
    filter_buf_json_string(b, name, strlen(name));
    filter_buf_puts(b, ":");
    if (put_decoded(b, h->value ? h->value : "", h->value ? h->value_len : 0) != 0)
        return "A ce- header value is not valid percent-encoded UTF-8.";
    return NULL;
}

int srv_binary_event(const srv_header_t *headers, size_t n, const char *ct, const char *body,
                     size_t len, filter_event_t **out, char *msg, size_t msglen)
{
    filter_buf_t b = {0};
    char ctbuf[256];
    int rc;

    if (ct) { /* whitespace around the value is not part of it (RFC 9110 §5.5) */
        size_t cl;
        while (*ct == ' ' || *ct == '\t')
            ct++;
        cl = strlen(ct);
        while (cl && (ct[cl - 1] == ' ' || ct[cl - 1] == '\t'))
            cl--;
        if (cl >= sizeof ctbuf) {
            snprintf(msg, msglen, "The Content-Type header is too long.");
            return FILTER_EVENT_EINVALID;
        }
        memcpy(ctbuf, ct, cl);
        ctbuf[cl] = '\0';
        ct = cl ? ctbuf : NULL;
    }
    filter_buf_puts(&b, "{\"_\":0"); /* a placeholder first member, dropped below */
    for (size_t i = 0; i < n; i++) {
        const char *err = put_ce_header(&b, &headers[i]);
        if (err) {
            filter_buf_fini(&b);
            snprintf(msg, msglen, "%s", err);
            return FILTER_EVENT_EINVALID;
        }
    }
    if (ct) {
        filter_buf_puts(&b, ",\"datacontenttype\":");
        if (filter_buf_json_string(&b, ct, strlen(ct)) != 0) {
            filter_buf_fini(&b);
            snprintf(msg, msglen, "The Content-Type header is not valid.");
            return FILTER_EVENT_EINVALID;
        }
    }
    if (len > 0) {
        if (ct && is_json_media(ct)) {
            /* the body is the JSON value of data; checked on its own first so that it cannot
             * add members to the event around it */
            filter_json_doc_t *doc;
            char err[128];
            if (filter_json_parse(body, len, NULL, &doc, err, sizeof err) != 0) {
                filter_buf_fini(&b);
                snprintf(msg, msglen, "The body is not valid JSON: %s", err);
                return FILTER_EVENT_EINVALID;
            }
            filter_json_doc_free(doc);
            filter_buf_puts(&b, ",\"data\":");
            filter_buf_json_compact(&b, body, len);
        } else if (ct && strncasecmp(ct, "text/", 5) == 0) {
            filter_buf_puts(&b, ",\"data\":");
            if (filter_buf_json_string(&b, body, len) != 0) {
                filter_buf_fini(&b);
                snprintf(msg, msglen, "A text body must be valid UTF-8.");
                return FILTER_EVENT_EINVALID;
            }
        } else {
            size_t enc = 4 * ((len + 2) / 3);
            char *b64 = malloc(enc + 1);
            if (!b64) {
                filter_buf_fini(&b);
                return FILTER_EVENT_ENOMEM;
            }
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)body, (int)len);
            filter_buf_puts(&b, ",\"data_base64\":\"");
            filter_buf_append(&b, b64, enc);
            filter_buf_puts(&b, "\"");
            free(b64);
        }
    }
    filter_buf_puts(&b, "}");
    if (filter_buf_failed(&b)) {
        filter_buf_fini(&b);
        return FILTER_EVENT_ENOMEM;
    }
    /* drop the placeholder: "{\"_\":0," -> "{". With no member after it (no ce- header and no
     * body: publish.c never gets here without ce-specversion, a direct caller may) the event is
     * "{}", which filter_event_parse refuses for its missing attributes. */
    HND_CHECK(b.len >= 7);
    if (b.data[6] == ',') {
        b.data[6] = '{';
        rc = filter_event_parse(b.data + 6, b.len - 6, NULL, out, msg, msglen);
    } else {
        rc = filter_event_parse("{}", 2, NULL, out, msg, msglen);
    }
    filter_buf_fini(&b);
    return rc;
}
