/* filter/dialect: compile and match Subscriptions API filter objects. The compiled form is a small
 * tree (at most FILTER_DIALECT_MAX_NODES nodes, FILTER_DIALECT_MAX_DEPTH deep, so the recursion in
 * compile, match and free is bounded). */
#include "dialect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D_EXACT, D_PREFIX, D_SUFFIX, D_ALL, D_ANY, D_NOT, D_SQL };

static const char *const dialect_names[] = {"exact", "prefix", "suffix", "all",
                                            "any",   "not",    "sql"};

typedef struct {
    char *name; /* lower-case CloudEvents attribute name */
    char *value;
    size_t len;
} pair_t;

typedef struct dnode dnode_t;
struct dnode {
    int kind;
    size_t n;       /* pairs or kids */
    pair_t *pairs;  /* D_EXACT, D_PREFIX, D_SUFFIX */
    dnode_t **kids; /* D_ALL, D_ANY, D_NOT (one) */
    filter_cesql_t *sql;
};

struct filter_dialect {
    dnode_t *root; /* a D_ALL over the top-level array */
};

typedef struct {
    size_t nodes;
    char path[320]; /* where we are, for messages: filters[0].all[1] */
    size_t plen;
    int rc;
    char *err;
    size_t errlen;
} cctx_t;

static void fail(cctx_t *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error as "<path>: <message>". The message may quote user text; cutting it short
 * must not leave half a UTF-8 character behind. */
static void fail(cctx_t *c, int rc, const char *fmt, ...)
{
    if (c->rc) return;
    c->rc = rc;
    if (!c->err || !c->errlen) return;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    size_t n = strlen(c->err);
    while (n && !filter_utf8_valid(c->err, n))
        c->err[--n] = '\0';
}

/* Quotes user text for a message: at most 40 bytes, cut at a character boundary. */
static void shown(char *buf, size_t bufn, const char *s, size_t len)
{
    size_t n = len > 40 ? 40 : len;
    while (n && !filter_utf8_valid(s, n))
        n--;
    snprintf(buf, bufn, "%.*s%s", (int)n, s, n < len ? "..." : "");
}

static const char *json_kind(const filter_json_t *v)
{
    switch (v->type) {
    case FILTER_JSON_NULL:
        return "null";
    case FILTER_JSON_FALSE:
    case FILTER_JSON_TRUE:
        return "a boolean";
    case FILTER_JSON_NUMBER:
        return "a number";
    case FILTER_JSON_STRING:
        return "a string";
    case FILTER_JSON_ARRAY:
        return "an array";
    default:
        return "an object";
    }
}

static size_t path_push(cctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(cctx_t *c, const char *fmt, ...)
{
    size_t old = c->plen;
    if (c->plen < sizeof c->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, ap);
        va_end(ap);
        if (w > 0) c->plen += (size_t)w;
        if (c->plen > sizeof c->path - 1) c->plen = sizeof c->path - 1;
    }
    return old;
}

static void path_pop(cctx_t *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

static void node_free(dnode_t *n)
{
    if (!n) return;
    for (size_t i = 0; n->pairs && i < n->n; i++) {
        free(n->pairs[i].name);
        free(n->pairs[i].value);
    }
    free(n->pairs);
    for (size_t i = 0; n->kids && i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    filter_cesql_free(n->sql);
    free(n);
}

static dnode_t *node_new(cctx_t *c, int kind)
{
    dnode_t *n = calloc(1, sizeof *n);
    if (!n)
        fail(c, FILTER_DIALECT_ENOMEM, "out of memory");
    else
        n->kind = kind;
    return n;
}

static int attr_name_ok(const char *s, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))) return 0;
    return 1;
}

/* exact, prefix, suffix: a non-empty object of non-empty strings keyed by attribute names. */
static int compile_pairs(cctx_t *c, dnode_t *n, const filter_json_t *v)
{
    const char *d = dialect_names[n->kind];
    if (v->type != FILTER_JSON_OBJECT) {
        fail(c, FILTER_DIALECT_EINVALID, "'%s' needs an object of string values, not %s", d,
             json_kind(v));
        return -1;
    }
    if (!v->count) {
        fail(c, FILTER_DIALECT_EINVALID, "'%s' needs at least one attribute", d);
        return -1;
    }
    n->pairs = calloc(v->count, sizeof *n->pairs);
    if (!n->pairs) {
        fail(c, FILTER_DIALECT_ENOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < v->count; i++) {
        const char *k = v->keys[i];
        size_t kl = v->key_lens[i];
        const filter_json_t *s = v->items[i];
        char ks[48];
        shown(ks, sizeof ks, k, kl);
        if (!kl) {
            fail(c, FILTER_DIALECT_EINVALID, "'%s' has an empty attribute name", d);
            return -1;
        }
        if (!attr_name_ok(k, kl)) {
            fail(c, FILTER_DIALECT_EINVALID,
                 "'%s': '%s' is not a CloudEvents attribute name (lower-case letters and digits)",
                 d, ks);
            return -1;
        }
        if (s->type != FILTER_JSON_STRING) {
            fail(c, FILTER_DIALECT_EINVALID, "'%s' needs an object of string values: '%s' is %s", d,
                 ks, json_kind(s));
            return -1;
        }
        if (!s->len) {
            fail(c, FILTER_DIALECT_EINVALID, "'%s': the value for '%s' is empty", d, ks);
            return -1;
        }
        pair_t *p = &n->pairs[n->n];
        p->name = malloc(kl + 1);
        p->value = malloc(s->len + 1);
        n->n++; /* counted now, so node_free releases a half-made pair */
        if (!p->name || !p->value) {
            fail(c, FILTER_DIALECT_ENOMEM, "out of memory");
            return -1;
        }
        memcpy(p->name, k, kl + 1);
        memcpy(p->value, s->str, s->len + 1);
        p->len = s->len;
    }
    return 0;
}

static dnode_t *compile_filter(cctx_t *c, const filter_json_t *f, int depth);

/* all, any: a non-empty array of filters. */
static int compile_list(cctx_t *c, dnode_t *n, const filter_json_t *v, int depth)
{
    const char *d = dialect_names[n->kind];
    if (v->type != FILTER_JSON_ARRAY) {
        fail(c, FILTER_DIALECT_EINVALID, "'%s' needs an array of filters, not %s", d, json_kind(v));
        return -1;
    }
    if (!v->count) {
        fail(c, FILTER_DIALECT_EINVALID, "'%s' needs at least one filter", d);
        return -1;
    }
    n->kids = calloc(v->count, sizeof *n->kids);
    if (!n->kids) {
        fail(c, FILTER_DIALECT_ENOMEM, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < v->count; i++) {
        size_t old = path_push(c, ".%s[%zu]", d, i);
        n->kids[n->n] = compile_filter(c, v->items[i], depth + 1);
        if (c->rc) return -1;
        n->n++;
        path_pop(c, old);
    }
    return 0;
}

static int compile_sql(cctx_t *c, dnode_t *n, const filter_json_t *v)
{
    if (v->type != FILTER_JSON_STRING) {
        fail(c, FILTER_DIALECT_EINVALID, "'sql' needs a string (a CESQL expression), not %s",
             json_kind(v));
        return -1;
    }
    char msg[200];
    int rc = filter_cesql_compile(v->str, v->len, &n->sql, msg, sizeof msg);
    if (rc == -FILTER_CESQL_E_GENERIC) {
        fail(c, FILTER_DIALECT_ENOMEM, "'sql': %s", msg);
        return -1;
    }
    if (rc) {
        fail(c, FILTER_DIALECT_EINVALID, "'sql': %s", msg);
        return -1;
    }
    /* A filter's expression MUST give a Boolean (CESQL 1.2); one that never can is a mistake
     * better told now than a filter that silently matches nothing. */
    filter_cesql_type_t t = filter_cesql_type(n->sql);
    if (t == FILTER_CESQL_INTEGER || t == FILTER_CESQL_STRING) {
        fail(c, FILTER_DIALECT_EINVALID, "'sql': the expression gives %s, a filter needs a Boolean",
             t == FILTER_CESQL_INTEGER ? "an Integer" : "a String");
        return -1;
    }
    return 0;
}

static dnode_t *compile_filter(cctx_t *c, const filter_json_t *f, int depth)
{
    if (depth > FILTER_DIALECT_MAX_DEPTH) {
        fail(c, FILTER_DIALECT_EINVALID, "filters nested more than %d levels deep",
             FILTER_DIALECT_MAX_DEPTH);
        return NULL;
    }
    if (++c->nodes > FILTER_DIALECT_MAX_NODES) {
        fail(c, FILTER_DIALECT_EINVALID, "more than %d filters", FILTER_DIALECT_MAX_NODES);
        return NULL;
    }
    if (f->type != FILTER_JSON_OBJECT) {
        fail(c, FILTER_DIALECT_EINVALID,
             "a filter must be an object with one dialect key, e.g. {\"exact\": {...}}, not %s",
             json_kind(f));
        return NULL;
    }
    if (f->count == 0) {
        fail(c, FILTER_DIALECT_EINVALID,
             "empty filter object: it needs one dialect key (exact, prefix, suffix, all, any, "
             "not or sql)");
        return NULL;
    }
    if (f->count > 1) {
        char a[48], b[48];
        shown(a, sizeof a, f->keys[0], f->key_lens[0]);
        shown(b, sizeof b, f->keys[1], f->key_lens[1]);
        fail(c, FILTER_DIALECT_EINVALID,
             "more than one dialect key in one filter object ('%s', '%s'); combine filters "
             "with 'all' or 'any'",
             a, b);
        return NULL;
    }
    int kind = -1;
    for (int k = 0; k < (int)(sizeof dialect_names / sizeof dialect_names[0]); k++)
        if (strlen(dialect_names[k]) == f->key_lens[0] && !strcmp(dialect_names[k], f->keys[0]))
            kind = k;
    if (kind < 0) {
        char k[48];
        shown(k, sizeof k, f->keys[0], f->key_lens[0]);
        fail(c, FILTER_DIALECT_EINVALID, "unknown filter dialect '%s'", k);
        return NULL;
    }
    const filter_json_t *v = f->items[0];
    dnode_t *n = node_new(c, kind);
    if (!n) return NULL;
    int rc = 0;
    switch (kind) {
    case D_EXACT:
    case D_PREFIX:
    case D_SUFFIX:
        rc = compile_pairs(c, n, v);
        break;
    case D_ALL:
    case D_ANY:
        rc = compile_list(c, n, v, depth);
        break;
    case D_SQL:
        rc = compile_sql(c, n, v);
        break;
    case D_NOT:
        if (v->type != FILTER_JSON_OBJECT) {
            fail(c, FILTER_DIALECT_EINVALID, "'not' needs one filter object, not %s", json_kind(v));
            rc = -1;
            break;
        }
        n->kids = calloc(1, sizeof *n->kids);
        if (!n->kids) {
            fail(c, FILTER_DIALECT_ENOMEM, "out of memory");
            rc = -1;
            break;
        }
        size_t old = path_push(c, ".not");
        n->kids[0] = compile_filter(c, v, depth + 1);
        if (c->rc) {
            rc = -1;
            break;
        }
        n->n = 1;
        path_pop(c, old);
        break;
    }
    if (rc) {
        node_free(n);
        return NULL;
    }
    return n;
}

int filter_dialect_compile(const filter_json_t *array, filter_dialect_t **out, char *err,
                           size_t errlen)
{
    cctx_t c;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    path_push(&c, "filters");
    if (!array || array->type != FILTER_JSON_ARRAY) {
        fail(&c, FILTER_DIALECT_EINVALID, "must be an array of filter objects, not %s",
             array ? json_kind(array) : "missing");
        return c.rc;
    }
    filter_dialect_t *d = calloc(1, sizeof *d);
    dnode_t *root = d ? node_new(&c, D_ALL) : NULL;
    if (!root) {
        free(d);
        fail(&c, FILTER_DIALECT_ENOMEM, "out of memory");
        return c.rc;
    }
    d->root = root;
    if (array->count) {
        root->kids = calloc(array->count, sizeof *root->kids);
        if (!root->kids) fail(&c, FILTER_DIALECT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !c.rc && i < array->count; i++) {
        size_t old = path_push(&c, "[%zu]", i);
        root->kids[root->n] = compile_filter(&c, array->items[i], 1);
        if (c.rc) break;
        root->n++;
        path_pop(&c, old);
    }
    if (c.rc) {
        filter_dialect_free(d);
        return c.rc;
    }
    *out = d;
    return 0;
}

void filter_dialect_free(filter_dialect_t *d)
{
    if (!d) return;
    node_free(d->root);
    free(d);
}

/* The attribute's string form (spec: filter values compare with it), or NULL when it is missing.
 * buf holds the text of an Integer. */
static const char *attr_string(filter_cesql_attr_fn fn, void *ctx, const char *name, char *buf,
                               size_t *len)
{
    filter_cesql_value_t v;
    memset(&v, 0, sizeof v);
    if (!fn(ctx, name, &v)) return NULL;
    switch (v.type) {
    case FILTER_CESQL_STRING:
        *len = v.s ? v.len : 0;
        return v.s ? v.s : "";
    case FILTER_CESQL_BOOLEAN:
        *len = v.b ? 4 : 5;
        return v.b ? "true" : "false";
    case FILTER_CESQL_INTEGER:
        *len = (size_t)snprintf(buf, 16, "%d", (int)v.i);
        return buf;
    default:
        return NULL;
    }
}

static int match_pairs(const dnode_t *n, filter_cesql_attr_fn fn, void *ctx)
{
    for (size_t i = 0; i < n->n; i++) {
        const pair_t *p = &n->pairs[i];
        char buf[16];
        size_t len = 0;
        const char *s = attr_string(fn, ctx, p->name, buf, &len);
        if (!s || len < p->len) return 0;
        size_t off = n->kind == D_SUFFIX ? len - p->len : 0;
        if (n->kind == D_EXACT && len != p->len) return 0;
        if (memcmp(s + off, p->value, p->len)) return 0;
    }
    return 1;
}

static int match_node(const dnode_t *n, filter_cesql_attr_fn fn, void *ctx)
{
    switch (n->kind) {
    case D_EXACT:
    case D_PREFIX:
    case D_SUFFIX:
        return match_pairs(n, fn, ctx);
    case D_ALL:
        for (size_t i = 0; i < n->n; i++)
            if (!match_node(n->kids[i], fn, ctx)) return 0;
        return 1;
    case D_ANY:
        for (size_t i = 0; i < n->n; i++)
            if (match_node(n->kids[i], fn, ctx)) return 1;
        return 0;
    case D_NOT:
        return !match_node(n->kids[0], fn, ctx);
    case D_SQL:
        return filter_cesql_matches(n->sql, fn, ctx);
    }
    return 0;
}

int filter_dialect_match(const filter_dialect_t *d, filter_cesql_attr_fn fn, void *ctx)
{
    return match_node(d->root, fn, ctx);
}
