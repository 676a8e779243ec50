/* server/fileutil: small helpers shared by the loaders of the server's input files (policy,
 * register). */
#include "server/fileutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void srv_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A member name fit for a one-line message: control bytes and quotes replaced, cut at 40 bytes. */
void srv_printable(char *out, size_t outlen, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c < 0x20 || c == 0x7f || c == '\'') ? '?' : (char)c;
        if (i == 39 && i + 1 < n) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
    }
    out[k] = '\0';
}

/* Reads a whole file of at most max bytes. Returns a malloc'd buffer (NUL-terminated) or NULL with
 * a reason in err. */
char *srv_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        srv_set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            srv_set_err(err, errlen, "%s: out of memory", path);
            break;
        }
        if (n == cap - 1) {
            if (cap > max + 1) {
                srv_set_err(err, errlen, "%s: larger than %zu MiB", path, max >> 20);
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                continue;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                srv_set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
                break;
            }
            if (n > max) {
                srv_set_err(err, errlen, "%s: larger than %zu MiB", path, max >> 20);
                break;
            }
            fclose(f);
            buf[n] = '\0';
            *len = n;
            return buf;
        }
    }
    free(buf);
    fclose(f);
    return NULL;
}

filter_json_doc_t *srv_read_json_list(const char *path, size_t max, const char *member,
                                      const filter_json_t **list, char *err, size_t errlen)
{
    size_t len = 0, mlen = strlen(member);
    char *text = srv_read_file(path, max, &len, err, errlen);
    filter_json_limits_t lim = {max, 16, 0};
    filter_json_doc_t *doc = NULL;
    const filter_json_t *root, *found = NULL;
    char why[160];
    int rc;

    if (!text) return NULL;
    rc = filter_json_parse(text, len, &lim, &doc, why, sizeof why);
    free(text);
    if (rc != FILTER_JSON_OK) {
        /* The parser says "invalid JSON at byte N: reason"; say it as "not valid JSON ...". */
        const char *rest = strncmp(why, "invalid JSON", 12) == 0 ? why + 12 : NULL;
        if (rest)
            srv_set_err(err, errlen, "%s: not valid JSON%s", path, rest);
        else
            srv_set_err(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    root = filter_json_root(doc);
    if (root->type != FILTER_JSON_OBJECT) {
        srv_set_err(err, errlen, "%s: the top level must be an object {\"%s\":[...]}", path,
                    member);
        goto fail;
    }
    for (size_t i = 0; i < root->count; i++) {
        if (root->key_lens[i] == mlen && !memcmp(root->keys[i], member, mlen)) {
            found = root->items[i];
        } else {
            char pk[64];
            srv_printable(pk, sizeof pk, root->keys[i], root->key_lens[i]);
            srv_set_err(err, errlen, "%s: unknown top-level key '%s' (expected %s)", path, pk,
                        member);
            goto fail;
        }
    }
    if (!found) {
        srv_set_err(err, errlen, "%s: missing '%s'", path, member);
        goto fail;
    }
    if (found->type != FILTER_JSON_ARRAY) {
        srv_set_err(err, errlen, "%s: '%s' must be an array", path, member);
        goto fail;
    }
    *list = found;
    return doc;
fail:
    filter_json_doc_free(doc);
    return NULL;
}
