/* filter/json: the JSON writer (growable buffer, string escaping, tree serialisation) and the UTF-8
 * check that both the reader and the writer rely on. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void filter_buf_init(filter_buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void filter_buf_fini(filter_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Reset discards the content, so a failure that spoiled it is forgotten too. */
void filter_buf_reset(filter_buf_t *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data) b->data[0] = '\0';
}

int filter_buf_failed(const filter_buf_t *b)
{
    return b->failed;
}

/* Makes room for n more bytes plus the terminating NUL. */
static int reserve(filter_buf_t *b, size_t n)
{
    if (b->failed) return -1;
    if (n > SIZE_MAX - b->len - 1) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) {
            nc = need;
            break;
        }
        nc *= 2;
    }
    char *p = realloc(b->data, nc);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = nc;
    return 0;
}

void filter_buf_append(filter_buf_t *b, const void *p, size_t n)
{
    if (reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void filter_buf_puts(filter_buf_t *b, const char *s)
{
    filter_buf_append(b, s, strlen(s));
}

void filter_buf_printf(filter_buf_t *b, const char *fmt, ...)
{
    if (b->failed) return;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < room) {
        b->len += (size_t)n;
    } else if (!reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

char *filter_buf_steal(filter_buf_t *b, size_t *len)
{
    if (b->failed) {
        filter_buf_fini(b);
        return NULL;
    }
    char *p = b->data;
    if (!p) {
        p = malloc(1);
        if (!p) return NULL;
        p[0] = '\0';
    }
    if (len) *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

/* 1 for the bytes a JSON string must escape: control characters, '"' and '\\'. */
static const unsigned char must_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

void filter_buf_json_compact(filter_buf_t *b, const char *json, size_t len)
{
    size_t i = 0, start = 0;
    if (reserve(b, len)) return;
    while (i < len) {
        char ch = json[i];
        if (ch == '"') {
            /* skip the string: it ends at the first '"' not escaped, i.e. not preceded by an odd
             * run of backslashes (memchr is far faster than a byte loop on long strings) */
            size_t open = i, j = i + 1;
            for (;;) {
                const char *q = j < len ? memchr(json + j, '"', len - j) : NULL;
                size_t k, bs = 0;
                if (!q) {
                    j = len;
                    break;
                }
                k = (size_t)(q - json);
                while (k - bs > open + 1 && json[k - bs - 1] == '\\')
                    bs++;
                j = k + 1;
                if (!(bs & 1)) break;
            }
            i = j;
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            if (i > start) filter_buf_append(b, json + start, i - start);
            while (i < len &&
                   (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r'))
                i++;
            start = i;
        } else {
            i++;
        }
    }
    if (len > start) filter_buf_append(b, json + start, (i < len ? i : len) - start);
}

int filter_buf_json_string(filter_buf_t *b, const char *s, size_t n)
{
    if (n && !filter_utf8_valid(s, n)) return -1;
    filter_buf_json_string_valid(b, s, n);
    return 0;
}

void filter_buf_json_string_valid(filter_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    if (!n) s = "";
    if (reserve(b, n + 2)) return; /* failed: sticky, nothing more appended */
    filter_buf_append(b, "\"", 1);
    while (i < n) {
        size_t start = i;
        /* copy runs of bytes that need no escape in one go (non-ASCII UTF-8 is copied as is) */
        while (i < n && !must_escape[(unsigned char)s[i]])
            i++;
        if (i > start) filter_buf_append(b, s + start, i - start);
        if (i == n) break;
        unsigned char ch = (unsigned char)s[i++];
        const char *esc = NULL;
        switch (ch) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            break;
        }
        if (esc) {
            filter_buf_append(b, esc, 2);
        } else {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            filter_buf_append(b, u, 6);
        }
    }
    filter_buf_append(b, "\"", 1);
}

int filter_buf_reserve(filter_buf_t *b, size_t n)
{
    return reserve(b, n);
}

typedef struct {
    const filter_json_t *node;
    size_t next; /* index of the next child to write */
} wframe_t;

/* Iterative so that no tree, however deep, can exhaust the C stack. */
void filter_buf_json_value(filter_buf_t *b, const filter_json_t *v)
{
    wframe_t local[64];
    wframe_t *st = local;
    size_t cap = sizeof local / sizeof local[0], depth = 0;
    const filter_json_t *cur = v;

    for (;;) {
        if (cur) {
            switch (cur->type) {
            case FILTER_JSON_NULL:
                filter_buf_append(b, "null", 4);
                break;
            case FILTER_JSON_FALSE:
                filter_buf_append(b, "false", 5);
                break;
            case FILTER_JSON_TRUE:
                filter_buf_append(b, "true", 4);
                break;
            case FILTER_JSON_NUMBER:
                filter_buf_append(b, cur->str, cur->len);
                break;
            case FILTER_JSON_STRING:
                if (filter_buf_json_string(b, cur->str, cur->len)) b->failed = 1;
                break;
            case FILTER_JSON_ARRAY:
            case FILTER_JSON_OBJECT:
                filter_buf_append(b, cur->type == FILTER_JSON_ARRAY ? "[" : "{", 1);
                if (depth == cap) {
                    wframe_t *ns = NULL;
                    if (cap <= SIZE_MAX / 2 / sizeof *st)
                        ns = st == local ? malloc(cap * 2 * sizeof *st)
                                         : realloc(st, cap * 2 * sizeof *st);
                    if (!ns) {
                        b->failed = 1;
                        goto out;
                    }
                    if (st == local) memcpy(ns, local, sizeof local);
                    st = ns;
                    cap *= 2;
                }
                st[depth++] = (wframe_t){cur, 0};
                break;
            }
            cur = NULL;
        }
        if (!depth || b->failed) break;
        wframe_t *f = &st[depth - 1];
        const filter_json_t *c = f->node;
        if (f->next == c->count) {
            filter_buf_append(b, c->type == FILTER_JSON_ARRAY ? "]" : "}", 1);
            depth--;
            continue;
        }
        if (f->next) filter_buf_append(b, ",", 1);
        if (c->type == FILTER_JSON_OBJECT) {
            if (filter_buf_json_string(b, c->keys[f->next], c->key_lens[f->next])) b->failed = 1;
            filter_buf_append(b, ":", 1);
        }
        cur = c->items[f->next++];
    }
out:
    if (st != local) free(st);
}

int filter_utf8_valid(const char *s, size_t n)
{
    if (!n) return 1;
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        /* ASCII, the common case, eight bytes at a time */
        while (e - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL) break;
            p += 8;
        }
        if (p == e) break;
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t more;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c == 0xE0) {
            more = 2;
            lo = 0xA0; /* overlong below */
        } else if (c == 0xED) {
            more = 2;
            hi = 0x9F; /* surrogates above */
        } else if (c >= 0xE1 && c <= 0xEF) {
            more = 2;
        } else if (c == 0xF0) {
            more = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            more = 3;
        } else if (c == 0xF4) {
            more = 3;
            hi = 0x8F; /* > U+10FFFF above */
        } else {
            return 0;
        }
        if ((size_t)(e - p) <= more) return 0;
        if (p[1] < lo || p[1] > hi) return 0;
        for (size_t i = 2; i <= more; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += more + 1;
    }
    return 1;
}
