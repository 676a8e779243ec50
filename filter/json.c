/* filter/json: the bounded JSON reader over yajl's streaming parser (the writer is json_write.c).
 */
#include "json.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* ---- arena ----
 *
 * Every node, string and array of a document lives in a list of chunks. The tree is immutable once
 * built, so nothing is ever freed on its own and the whole document goes in one walk of the chunk
 * list (no recursion over the tree, whatever its shape). */

struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
};

typedef struct {
    struct chunk *head;
    size_t next_cap;
} arena_t;

#define CHUNK_MIN 4096
#define CHUNK_MAX (256 * 1024)

static void arena_release(struct chunk *c)
{
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
}

static void *arena_alloc(arena_t *a, size_t n, size_t align)
{
    struct chunk *c = a->head;
    if (c) {
        uintptr_t base = (uintptr_t)(c + 1);
        size_t off = c->used;
        size_t pad = (align - ((base + off) & (align - 1))) & (align - 1);
        if (off + pad <= c->cap && n <= c->cap - off - pad) {
            c->used = off + pad + n;
            return (char *)(c + 1) + off + pad;
        }
    }
    /* A new chunk: sizes double so a large document needs few chunks. An allocation bigger than the
     * usual chunk gets a chunk of its own, linked behind the current one so that the current one's
     * free tail still serves the next small allocations. */
    size_t normal = a->next_cap ? a->next_cap : CHUNK_MIN;
    int big = n > normal - align;
    size_t cap = big ? n + align : normal;
    if (n > SIZE_MAX - align - sizeof(struct chunk)) return NULL;
    struct chunk *nc = malloc(sizeof(struct chunk) + cap);
    if (!nc) return NULL;
    nc->cap = cap;
    if (big && c) {
        nc->next = c->next;
        c->next = nc;
    } else {
        if (!big && normal < CHUNK_MAX) a->next_cap = normal * 2;
        nc->next = c;
        a->head = nc;
    }
    uintptr_t base = (uintptr_t)(nc + 1);
    size_t pad = (align - (base & (align - 1))) & (align - 1);
    nc->used = pad + n;
    return (char *)(nc + 1) + pad;
}

/* ---- reader ---- */

struct filter_json_doc {
    struct chunk *chunks;
    const filter_json_t *root;
};

typedef struct {
    const filter_json_t *val;
    const char *key;
    size_t key_len;
} slot_t;

typedef struct {
    filter_json_t *node;
    size_t start;    /* first slot of this container in ctx.slots */
    const char *key; /* objects: the member name waiting for its value */
    size_t key_len;
} frame_t;

typedef struct {
    const char *key;
    size_t len;
} keyref_t;

typedef struct {
    arena_t arena;
    /* Children of the open containers, innermost last; copied into the arena when a container ends,
     * so each container's arrays are allocated once with their exact size. */
    slot_t *slots;
    size_t nslots, cap_slots;
    frame_t *frames;
    size_t depth, cap_frames;
    keyref_t *sortbuf;
    size_t cap_sort;
    size_t max_depth, max_nodes, nodes;
    const filter_json_t *root;
    /* the input and the parser, so containers can record where their text is (raw) */
    const char *buf;
    yajl_handle h;
    int err; /* set when a callback stops the parse */
    char why[160];
    /* the first slots and frames, so that a small document needs no allocation for them */
    slot_t slot0[32];
    frame_t frame0[8];
    /* yajl's own allocations (handle, lexer, stacks, buffers: a few hundred bytes, a few KiB when
     * strings have escapes) come from here while they fit (see ya_malloc) */
    size_t yused;
    _Alignas(max_align_t) unsigned char ybuf[6144];
} ctx_t;

/* ---- yajl's allocator: a bump allocator over ctx.ybuf, the heap past it ----
 *
 * Every block carries its size in a header so that realloc can copy it; the last block grows in
 * place. Blocks in ybuf are never freed on their own (the whole buffer goes with the parse). */

typedef struct {
    size_t size;
    size_t pad; /* keeps the block max_align_t-aligned after the header */
} yhdr_t;

_Static_assert(sizeof(yhdr_t) == 16, "blocks stay 16-byte aligned after their header");

static int in_ybuf(const ctx_t *c, const void *p)
{
    return (const unsigned char *)p >= c->ybuf &&
           (const unsigned char *)p < c->ybuf + sizeof c->ybuf;
}

static void *ya_malloc(void *ctx, size_t sz)
{
    ctx_t *c = ctx;
    size_t need = sizeof(yhdr_t) + ((sz + 15) & ~(size_t)15);
    if (sz < sizeof c->ybuf && need <= sizeof c->ybuf - c->yused) {
        yhdr_t *h = (yhdr_t *)(c->ybuf + c->yused);
        h->size = sz;
        c->yused += need;
        return h + 1;
    }
    return malloc(sz);
}

static void ya_free(void *ctx, void *p)
{
    if (!in_ybuf(ctx, p)) free(p);
}

static void *ya_realloc(void *ctx, void *p, size_t sz)
{
    ctx_t *c = ctx;
    yhdr_t *h;
    void *np;
    if (!p) return ya_malloc(ctx, sz);
    if (!in_ybuf(c, p)) return realloc(p, sz);
    h = (yhdr_t *)p - 1;
    /* the last block grows (or shrinks) in place when it still fits */
    if ((unsigned char *)p + ((h->size + 15) & ~(size_t)15) == c->ybuf + c->yused) {
        size_t start = (size_t)((unsigned char *)p - c->ybuf);
        size_t rounded = (sz + 15) & ~(size_t)15;
        if (sz < sizeof c->ybuf && rounded <= sizeof c->ybuf - start) {
            h->size = sz;
            c->yused = start + rounded;
            return p;
        }
    }
    np = ya_malloc(ctx, sz);
    if (np) memcpy(np, p, h->size < sz ? h->size : sz);
    return np;
}

/* Grows *p (which starts out as the fixed array first, never freed) to hold need elements. */
static int grow(void **p, size_t *cap, size_t need, size_t elem, const void *first)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return -1;
        nc *= 2;
    }
    void *np;
    if (*p == first) {
        np = malloc(nc * elem);
        if (np && *cap) memcpy(np, *p, *cap * elem);
    } else {
        np = realloc(*p, nc * elem);
    }
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

static int fail(ctx_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(ctx_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    c->err = code;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
    return 0; /* the yajl callback result: stop */
}

static int oom(ctx_t *c)
{
    return fail(c, FILTER_JSON_ENOMEM, "out of memory");
}

static filter_json_t *new_node(ctx_t *c, filter_json_type_t t)
{
    if (c->max_nodes && c->nodes >= c->max_nodes) {
        fail(c, FILTER_JSON_ETOOBIG, "more than %zu values", c->max_nodes);
        return NULL;
    }
    filter_json_t *n = arena_alloc(&c->arena, sizeof *n, sizeof(void *));
    if (!n) {
        oom(c);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->type = t;
    c->nodes++;
    return n;
}

static char *copy_str(ctx_t *c, const unsigned char *s, size_t len)
{
    if (len == SIZE_MAX) return NULL;
    char *p = arena_alloc(&c->arena, len + 1, 1);
    if (!p) return NULL;
    if (len) memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Attaches a finished (or just opened) value to its parent, or makes it the root. */
static int add_value(ctx_t *c, const filter_json_t *v)
{
    if (c->depth == 0) {
        c->root = v;
        return 1;
    }
    frame_t *f = &c->frames[c->depth - 1];
    if (grow((void **)&c->slots, &c->cap_slots, c->nslots + 1, sizeof *c->slots, c->slot0))
        return oom(c);
    c->slots[c->nslots++] = (slot_t){v, f->key, f->key_len};
    f->key = NULL;
    f->key_len = 0;
    return 1;
}

static int add_scalar(ctx_t *c, filter_json_type_t t, const unsigned char *s, size_t len)
{
    filter_json_t *n = new_node(c, t);
    if (!n) return 0;
    if (s) {
        char *p = copy_str(c, s, len);
        if (!p) return oom(c);
        n->str = p;
        n->len = len;
    }
    return add_value(c, n);
}

static int on_null(void *ud)
{
    return add_scalar(ud, FILTER_JSON_NULL, NULL, 0);
}

static int on_boolean(void *ud, int b)
{
    return add_scalar(ud, b ? FILTER_JSON_TRUE : FILTER_JSON_FALSE, NULL, 0);
}

static int on_number(void *ud, const char *s, size_t len)
{
    return add_scalar(ud, FILTER_JSON_NUMBER, (const unsigned char *)s, len);
}

static int on_string(void *ud, const unsigned char *s, size_t len)
{
    /* yajl only checks the shape of multi-byte sequences and encodes lone \uDC00-style escapes as
     * surrogates, so the decoded text is checked here (overlongs, surrogates, > U+10FFFF). */
    if (!filter_utf8_valid((const char *)s, len))
        return fail(ud, FILTER_JSON_ESYNTAX, "invalid UTF-8 in a string");
    return add_scalar(ud, FILTER_JSON_STRING, s, len);
}

static int open_container(ctx_t *c, filter_json_type_t t)
{
    if (c->depth >= c->max_depth)
        return fail(c, FILTER_JSON_EDEPTH, "nested deeper than %zu levels", c->max_depth);
    filter_json_t *n = new_node(c, t);
    if (!n) return 0;
    if (!add_value(c, n)) return 0;
    /* yajl calls back right after consuming the '{' or '[' */
    n->raw = c->buf + yajl_get_bytes_consumed(c->h) - 1;
    if (grow((void **)&c->frames, &c->cap_frames, c->depth + 1, sizeof *c->frames, c->frame0))
        return oom(c);
    c->frames[c->depth++] = (frame_t){n, c->nslots, NULL, 0};
    return 1;
}

static int on_start_map(void *ud)
{
    return open_container(ud, FILTER_JSON_OBJECT);
}

static int on_start_array(void *ud)
{
    return open_container(ud, FILTER_JSON_ARRAY);
}

static int on_map_key(void *ud, const unsigned char *s, size_t len)
{
    ctx_t *c = ud;
    if (!filter_utf8_valid((const char *)s, len))
        return fail(c, FILTER_JSON_ESYNTAX, "invalid UTF-8 in a member name");
    char *k = copy_str(c, s, len);
    if (!k) return oom(c);
    frame_t *f = &c->frames[c->depth - 1];
    f->key = k;
    f->key_len = len;
    return 1;
}

static int keyref_cmp(const void *a, const void *b)
{
    const keyref_t *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->key, y->key, x->len);
}

/* Writes a member name into c->why for an error message: control bytes and quotes replaced, cut
 * short on a character boundary, so the message stays printable UTF-8. */
static void dup_message(ctx_t *c, const char *k, size_t len)
{
    char shown[64];
    size_t o = 0, i = 0;
    while (i < len && o < sizeof shown - 4) {
        unsigned char ch = (unsigned char)k[i];
        size_t cl = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
        if (o + cl >= sizeof shown - 4) break;
        if (ch < 0x20 || ch == 0x7f || ch == '\'' || ch == '"' || ch == '\\') {
            shown[o++] = '?';
            i++;
            continue;
        }
        memcpy(shown + o, k + i, cl);
        o += cl;
        i += cl;
    }
    if (i < len) {
        memcpy(shown + o, "...", 3);
        o += 3;
    }
    shown[o] = '\0';
    fail(c, FILTER_JSON_EDUPKEY, "duplicate member name '%s'", shown);
}

/* Duplicate names: small objects are compared pairwise (cheaper than any setup), large ones are
 * sorted, which is O(n log n) whatever the names are (a fixed hash could be flooded by crafted
 * keys). */
static int check_dups(ctx_t *c, const slot_t *s, size_t n)
{
    if (n <= 16) {
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (s[i].key_len == s[j].key_len && !memcmp(s[i].key, s[j].key, s[i].key_len)) {
                    dup_message(c, s[i].key, s[i].key_len);
                    return 0;
                }
        return 1;
    }
    if (grow((void **)&c->sortbuf, &c->cap_sort, n, sizeof *c->sortbuf, NULL)) return oom(c);
    for (size_t i = 0; i < n; i++)
        c->sortbuf[i] = (keyref_t){s[i].key, s[i].key_len};
    qsort(c->sortbuf, n, sizeof *c->sortbuf, keyref_cmp);
    for (size_t i = 1; i < n; i++)
        if (!keyref_cmp(&c->sortbuf[i - 1], &c->sortbuf[i])) {
            dup_message(c, c->sortbuf[i].key, c->sortbuf[i].len);
            return 0;
        }
    return 1;
}

static int close_container(ctx_t *c)
{
    frame_t *f = &c->frames[c->depth - 1];
    filter_json_t *node = f->node;
    size_t n = c->nslots - f->start;
    const slot_t *s = n ? c->slots + f->start : NULL;
    if (node->type == FILTER_JSON_OBJECT && !check_dups(c, s, n)) return 0;
    if (n) {
        if (n > SIZE_MAX / sizeof(void *)) return oom(c);
        const filter_json_t **items = arena_alloc(&c->arena, n * sizeof *items, sizeof(void *));
        if (!items) return oom(c);
        for (size_t i = 0; i < n; i++)
            items[i] = s[i].val;
        node->items = items;
        if (node->type == FILTER_JSON_OBJECT) {
            const char **keys = arena_alloc(&c->arena, n * sizeof *keys, sizeof(void *));
            size_t *lens = arena_alloc(&c->arena, n * sizeof *lens, sizeof(size_t));
            if (!keys || !lens) return oom(c);
            for (size_t i = 0; i < n; i++) {
                keys[i] = s[i].key;
                lens[i] = s[i].key_len;
            }
            node->keys = keys;
            node->key_lens = lens;
        }
    }
    node->count = n;
    node->raw_len = (size_t)(c->buf + yajl_get_bytes_consumed(c->h) - node->raw);
    c->nslots = f->start;
    c->depth--;
    return 1;
}

static int on_end_map(void *ud)
{
    return close_container(ud);
}

static int on_end_array(void *ud)
{
    return close_container(ud);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static long hex4(const char *p, size_t avail)
{
    if (avail < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* yajl 2.1 decodes a lone high-surrogate escape to '?' and pairs a high surrogate with any
 * following \u escape, silently changing the text. Surrogate escapes are therefore checked on the
 * raw input: a high one must be followed by a low one, and a low one may not stand alone. Returns
 * the byte offset of a bad escape, or (size_t)-1 if there is none. Malformed JSON elsewhere is left
 * to yajl. */
static size_t bad_surrogate_escape(const char *b, size_t len)
{
    int in_str = 0;
    /* most texts have no \u escape at all: one memmem instead of a byte loop over the input */
    if (!memmem(b, len, "\\u", 2)) return (size_t)-1;
    for (size_t i = 0; i < len; i++) {
        char ch = b[i];
        if (!in_str) {
            if (ch == '"') in_str = 1;
            continue;
        }
        if (ch == '"') {
            in_str = 0;
        } else if (ch == '\\' && i + 1 < len) {
            if (b[i + 1] != 'u') {
                i++;
                continue;
            }
            long cp = hex4(b + i + 2, len - i - 2);
            if (cp < 0) return (size_t)-1; /* yajl reports this one */
            if (cp >= 0xDC00 && cp <= 0xDFFF) return i;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                size_t j = i + 6;
                long lo = (j + 1 < len && b[j] == '\\' && b[j + 1] == 'u')
                              ? hex4(b + j + 2, len - j - 2)
                              : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return i;
                i = j + 5;
            } else {
                i += 5;
            }
        }
    }
    return (size_t)-1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* yajl's error text is "parse error: trailing garbage\n" or "lexical error: ...\n": keep the
 * reason. */
static void yajl_reason(yajl_handle h, char *out, size_t outlen)
{
    unsigned char *e = yajl_get_error(h, 0, NULL, 0);
    const char *s = e ? (const char *)e : "syntax error";
    const char *colon = strstr(s, ": ");
    if (colon) s = colon + 2;
    snprintf(out, outlen, "%s", s);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' ' || out[n - 1] == '.'))
        out[--n] = '\0';
    if (e) yajl_free_error(h, e);
}

int filter_json_parse(const char *buf, size_t len, const filter_json_limits_t *lim,
                      filter_json_doc_t **out, char *err, size_t errlen)
{
    filter_json_limits_t dl = {0, 0, 0};
    if (!lim) lim = &dl;
    if (lim->max_bytes && len > lim->max_bytes) {
        set_err(err, errlen, "JSON text larger than %zu bytes", lim->max_bytes);
        return FILTER_JSON_ETOOBIG;
    }
    if (!buf) buf = "";
    size_t bad = bad_surrogate_escape(buf, len);
    if (bad != (size_t)-1) {
        set_err(err, errlen, "invalid JSON at byte %zu: unpaired surrogate escape", bad);
        return FILTER_JSON_ESYNTAX;
    }
    /* yajl takes vertical tab and form feed for whitespace; JSON (RFC 8259) does not, and a raw one
     * is not allowed inside a string either, so any such byte makes the text invalid. Letting them
     * through would put them into stored events (data is copied as written) that other parsers
     * refuse. */
    {
        const char *vt = memchr(buf, '\v', len), *ff = memchr(buf, '\f', len);
        const char *hit = vt && (!ff || vt < ff) ? vt : ff;
        if (hit) {
            set_err(err, errlen, "invalid JSON at byte %zu: control character",
                    (size_t)(hit - buf));
            return FILTER_JSON_ESYNTAX;
        }
    }

    ctx_t c;
    memset(&c, 0, offsetof(ctx_t, slot0)); /* the fixed arrays need no clearing */
    c.slots = c.slot0;
    c.cap_slots = sizeof c.slot0 / sizeof c.slot0[0];
    c.frames = c.frame0;
    c.cap_frames = sizeof c.frame0 / sizeof c.frame0[0];
    c.max_depth = lim->max_depth ? lim->max_depth : 64;
    c.max_nodes = lim->max_nodes;

    int rc = FILTER_JSON_OK;
    yajl_alloc_funcs af = {ya_malloc, ya_realloc, ya_free, &c};
    c.yused = 0;
    yajl_handle h = yajl_alloc(&callbacks, &af, &c);
    if (!h) {
        set_err(err, errlen, "out of memory");
        return FILTER_JSON_ENOMEM;
    }
    c.buf = buf;
    c.h = h;
    yajl_config(h, yajl_allow_comments, 0);
    yajl_config(h, yajl_dont_validate_strings, 0);
    yajl_config(h, yajl_allow_trailing_garbage, 0);
    yajl_config(h, yajl_allow_multiple_values, 0);
    yajl_config(h, yajl_allow_partial_values, 0);

    yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
    size_t at = yajl_get_bytes_consumed(h);
    if (st == yajl_status_ok) {
        /* Always finish: a top-level number or a truncated text is only seen as such here. */
        st = yajl_complete_parse(h);
        at = len;
    }
    if (st == yajl_status_client_canceled || c.err) {
        rc = c.err ? c.err : FILTER_JSON_ESYNTAX;
        set_err(err, errlen, "%s%s", rc == FILTER_JSON_ESYNTAX ? "invalid JSON: " : "", c.why);
    } else if (st != yajl_status_ok) {
        char why[128];
        yajl_reason(h, why, sizeof why);
        rc = FILTER_JSON_ESYNTAX;
        size_t i = 0;
        while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
            i++;
        if (i == len)
            set_err(err, errlen, "invalid JSON: empty input");
        else
            set_err(err, errlen, "invalid JSON at byte %zu: %s", at, why);
    } else if (!c.root || c.depth != 0) {
        rc = FILTER_JSON_ESYNTAX;
        set_err(err, errlen, "invalid JSON: empty input");
    }
    yajl_free(h);

    filter_json_doc_t *doc = NULL;
    if (rc == FILTER_JSON_OK) {
        doc = arena_alloc(&c.arena, sizeof *doc, sizeof(void *));
        if (!doc) {
            rc = FILTER_JSON_ENOMEM;
            set_err(err, errlen, "out of memory");
        }
    }
    if (c.slots != c.slot0) free(c.slots);
    if (c.frames != c.frame0) free(c.frames);
    free(c.sortbuf);
    if (rc != FILTER_JSON_OK) {
        arena_release(c.arena.head);
        return rc;
    }
    doc->root = c.root;
    doc->chunks = c.arena.head;
    *out = doc;
    return FILTER_JSON_OK;
}

const filter_json_t *filter_json_root(const filter_json_doc_t *doc)
{
    return doc ? doc->root : NULL;
}

void filter_json_doc_free(filter_json_doc_t *doc)
{
    /* The document itself lives in one of its chunks: read the list head before releasing. */
    if (doc) arena_release(doc->chunks);
}

const filter_json_t *filter_json_get(const filter_json_t *obj, const char *name)
{
    if (!obj || obj->type != FILTER_JSON_OBJECT || !name) return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < obj->count; i++)
        if (obj->key_lens[i] == n && !memcmp(obj->keys[i], name, n)) return obj->items[i];
    return NULL;
}

int filter_json_int64(const filter_json_t *n, int64_t *out)
{
    if (!n || n->type != FILTER_JSON_NUMBER || !n->len) return 0;
    const char *s = n->str;
    size_t i = 0, len = n->len;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len) return 0;
    /* Accumulate as a negative number so INT64_MIN fits. */
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10) return 0;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN) return 0;
        v = -v;
    }
    *out = v;
    return 1;
}

const char *filter_json_strerror(int code)
{
    switch (code) {
    case FILTER_JSON_OK:
        return "ok";
    case FILTER_JSON_ESYNTAX:
        return "invalid JSON";
    case FILTER_JSON_EDEPTH:
        return "JSON nested too deeply";
    case FILTER_JSON_ETOOBIG:
        return "JSON text too large";
    case FILTER_JSON_EDUPKEY:
        return "duplicate member name in a JSON object";
    case FILTER_JSON_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}
