/* The CESQL conformance kit (cloudevents/spec cesql/cesql_tck, Apache-2.0; copied beside this file
 * in cesql-tck/) run against filter/cesql: every case of every *.yaml file in the directory given
 * as argv[1] (default test/unit/filter/cesql-tck). One TAP line per case, then
 * "# cesql tck: N/M passed".
 *
 * The files are read with a small YAML-subset reader written for them: block maps and lists
 * (including "- key: value" items), plain, single-quoted and double-quoted scalars (with escapes),
 * block scalars (| and >), comments and blank lines. Anything else is reported as an error rather
 * than guessed at. Plain scalars are typed as YAML 1.2's core schema does for what the kit uses:
 * true/True/TRUE and false/False/FALSE are booleans, [-+]?[0-9]+ integers, the rest strings. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "filter/cesql.h"

/* ---- YAML subset ---- */

enum { Y_NULL, Y_SCALAR, Y_MAP, Y_LIST };

typedef struct ynode ynode_t;
struct ynode {
    int kind;
    char *str; /* Y_SCALAR, NUL-terminated (may contain no NUL) */
    int quoted;
    size_t n;
    char **keys; /* Y_MAP */
    ynode_t **vals;
};

typedef struct {
    char *text; /* the line without its indentation and line break */
    int indent;
    int blank; /* empty or a comment */
} yline_t;

typedef struct {
    yline_t *lines;
    size_t n, i;
    char err[200];
    const char *file;
} yparser_t;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *r = xmalloc(n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

static ynode_t *ynew(int kind)
{
    ynode_t *y = xmalloc(sizeof *y);
    memset(y, 0, sizeof *y);
    y->kind = kind;
    return y;
}

static void yfree(ynode_t *y)
{
    if (!y) return;
    free(y->str);
    for (size_t i = 0; i < y->n; i++) {
        if (y->keys) free(y->keys[i]);
        yfree(y->vals[i]);
    }
    free(y->keys);
    free(y->vals);
    free(y);
}

static void yadd(ynode_t *y, char *key, ynode_t *val)
{
    y->vals = realloc(y->vals, (y->n + 1) * sizeof *y->vals);
    if (y->kind == Y_MAP) y->keys = realloc(y->keys, (y->n + 1) * sizeof *y->keys);
    if (!y->vals || (y->kind == Y_MAP && !y->keys)) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (y->kind == Y_MAP) y->keys[y->n] = key;
    y->vals[y->n++] = val;
}

static const ynode_t *yget(const ynode_t *map, const char *key)
{
    if (!map || map->kind != Y_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->vals[i];
    return NULL;
}

static void yerr(yparser_t *p, const char *msg)
{
    if (!p->err[0])
        snprintf(p->err, sizeof p->err, "%s:%zu: %s", p->file, p->i < p->n ? p->i + 1 : p->n, msg);
}

static void put_utf8(char *out, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(const char *s, int n, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return 0;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* After a quoted scalar only spaces and a comment may follow on the line. */
static int only_comment(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0' || *s == '#';
}

/* Parses the scalar that makes up the rest of a line. */
static ynode_t *scalar(yparser_t *p, const char *s)
{
    ynode_t *y = ynew(Y_SCALAR);
    size_t len = strlen(s);
    char *out = xmalloc(len + 1);
    size_t o = 0;
    if (s[0] == '"') {
        size_t i = 1;
        for (;;) {
            if (s[i] == '\0') {
                yerr(p, "unterminated double-quoted scalar (multi-line scalars are not supported)");
                break;
            }
            if (s[i] == '"') {
                if (!only_comment(s + i + 1)) yerr(p, "text after a quoted scalar");
                break;
            }
            if (s[i] != '\\') {
                out[o++] = s[i++];
                continue;
            }
            char e = s[i + 1];
            uint32_t cp;
            i += 2;
            switch (e) {
            case '\\':
                out[o++] = '\\';
                break;
            case '"':
                out[o++] = '"';
                break;
            case '/':
                out[o++] = '/';
                break;
            case ' ':
                out[o++] = ' ';
                break;
            case '0':
                out[o++] = '\0';
                break;
            case 'a':
                out[o++] = '\a';
                break;
            case 'b':
                out[o++] = '\b';
                break;
            case 't':
                out[o++] = '\t';
                break;
            case 'n':
                out[o++] = '\n';
                break;
            case 'v':
                out[o++] = '\v';
                break;
            case 'f':
                out[o++] = '\f';
                break;
            case 'r':
                out[o++] = '\r';
                break;
            case 'e':
                out[o++] = 0x1b;
                break;
            case 'x':
            case 'u':
            case 'U': {
                int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                if ((int)strnlen(s + i, (size_t)n) < n || !hexval(s + i, n, &cp) || cp > 0x10FFFF) {
                    yerr(p, "bad escape in double-quoted scalar");
                    cp = '?';
                }
                /* The output never outgrows the input: \xXX is 4 bytes for at most 2, \uXXXX 6
                 * for at most 3, \UXXXXXXXX 10 for at most 4. */
                put_utf8(out, &o, cp);
                i += (size_t)n;
                break;
            }
            default:
                yerr(p, "unknown escape in double-quoted scalar");
                i--;
                break;
            }
        }
        y->quoted = 1;
    } else if (s[0] == '\'') {
        size_t i = 1;
        for (;;) {
            if (s[i] == '\0') {
                yerr(p, "unterminated single-quoted scalar (multi-line scalars are not supported)");
                break;
            }
            if (s[i] == '\'') {
                if (s[i + 1] == '\'') {
                    out[o++] = '\'';
                    i += 2;
                    continue;
                }
                if (!only_comment(s + i + 1)) yerr(p, "text after a quoted scalar");
                break;
            }
            out[o++] = s[i++];
        }
        y->quoted = 1;
    } else {
        if (s[0] == '[' || s[0] == '{' || s[0] == '&' || s[0] == '*' || s[0] == '!')
            yerr(p, "flow collections, anchors, aliases and tags are not supported");
        /* A comment starts at " #". */
        size_t n = 0;
        while (s[n] && !(s[n] == '#' && n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')))
            n++;
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        memcpy(out, s, n);
        o = n;
    }
    out[o] = '\0';
    y->str = out;
    return y;
}

/* A block scalar (| or >) whose header is hdr, in the lines below the current one that are more
 * indented than parent (or blank). */
static ynode_t *block_scalar(yparser_t *p, const char *hdr, int parent)
{
    char style = hdr[0];
    char chomp = hdr[1] == '-' || hdr[1] == '+' ? hdr[1] : 'c';
    size_t start = p->i, end = p->i;
    int ind = -1;
    while (end < p->n && (p->lines[end].text[0] == '\0' || p->lines[end].indent > parent)) {
        if (ind < 0 && p->lines[end].text[0]) ind = p->lines[end].indent;
        end++;
    }
    /* Trailing blank lines belong to the chomping, not to the content. */
    size_t last = end;
    while (last > start && p->lines[last - 1].text[0] == '\0')
        last--;
    size_t cap = 1;
    for (size_t k = start; k < end; k++)
        cap += strlen(p->lines[k].text) +
               (size_t)(p->lines[k].indent > 0 ? p->lines[k].indent : 0) + 1;
    char *out = xmalloc(cap);
    size_t o = 0;
    for (size_t k = start; k < last; k++) {
        const yline_t *l = &p->lines[k];
        if (k > start) {
            /* Folding joins adjacent non-empty lines with a space; a blank line is a newline. */
            int fold = style == '>' && l->text[0] && p->lines[k - 1].text[0] && l->indent == ind &&
                       p->lines[k - 1].indent == ind;
            out[o++] = fold ? ' ' : '\n';
        }
        for (int sp = ind; sp < l->indent; sp++)
            out[o++] = ' ';
        size_t tl = strlen(l->text);
        memcpy(out + o, l->text, tl);
        o += tl;
    }
    if (last > start && chomp != '-') out[o++] = '\n';
    if (chomp == '+')
        for (size_t k = last; k < end && o + 1 < cap; k++)
            out[o++] = '\n';
    out[o] = '\0';
    p->i = end;
    ynode_t *y = ynew(Y_SCALAR);
    y->str = out;
    y->quoted = 1; /* block scalars are always strings */
    return y;
}

static ynode_t *block(yparser_t *p, int indent);

static int is_item(const yline_t *l)
{
    return l->text[0] == '-' && (l->text[1] == ' ' || l->text[1] == '\0');
}

/* Skips blank and comment lines. */
static void skip_blank(yparser_t *p)
{
    while (p->i < p->n && p->lines[p->i].blank)
        p->i++;
}

/* The value after "key:" or "- ": a scalar on the same line, or a block below. */
static ynode_t *value(yparser_t *p, const char *rest, int indent, int in_list)
{
    if (rest[0] && rest[0] != '#') {
        if (rest[0] == '|' || rest[0] == '>') {
            p->i++;
            return block_scalar(p, rest, indent);
        }
        ynode_t *y = scalar(p, rest);
        p->i++;
        return y;
    }
    p->i++;
    skip_blank(p);
    if (p->i < p->n) {
        const yline_t *l = &p->lines[p->i];
        /* A list under a map key may sit at the key's own indentation. */
        if (l->indent > indent || (!in_list && l->indent == indent && is_item(l)))
            return block(p, l->indent);
    }
    return ynew(Y_NULL);
}

/* Where the ':' of "key: value" is, or -1. Keys here are plain. */
static long key_colon(const char *s)
{
    if (s[0] == '"' || s[0] == '\'') return -1;
    for (long i = 0; s[i]; i++) {
        if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return -1;
        if (s[i] == ':' && (s[i + 1] == ' ' || s[i + 1] == '\0')) return i;
    }
    return -1;
}

static ynode_t *map_at(yparser_t *p, int indent)
{
    ynode_t *m = ynew(Y_MAP);
    for (;;) {
        skip_blank(p);
        if (p->i >= p->n || p->err[0]) break;
        yline_t *l = &p->lines[p->i];
        if (l->indent < indent || (l->indent == indent && is_item(l))) break;
        if (l->indent > indent) {
            yerr(p, "unexpected indentation");
            break;
        }
        long c = key_colon(l->text);
        if (c <= 0) {
            yerr(p, "expected 'key: value'");
            break;
        }
        size_t kl = (size_t)c;
        while (kl && l->text[kl - 1] == ' ')
            kl--;
        char *key = xstrndup(l->text, kl);
        if (yget(m, key)) yerr(p, "duplicate key");
        const char *rest = l->text + c + 1;
        while (*rest == ' ')
            rest++;
        yadd(m, key, value(p, rest, indent, 0));
    }
    return m;
}

static ynode_t *list_at(yparser_t *p, int indent)
{
    ynode_t *ls = ynew(Y_LIST);
    for (;;) {
        skip_blank(p);
        if (p->i >= p->n || p->err[0]) break;
        yline_t *l = &p->lines[p->i];
        if (l->indent != indent || !is_item(l)) {
            if (l->indent > indent) yerr(p, "unexpected indentation");
            break;
        }
        const char *rest = l->text + 1;
        int off = 1;
        while (*rest == ' ')
            rest++, off++;
        if (*rest && key_colon(rest) > 0) {
            /* "- key: value": a map whose keys line up with this first one. */
            l->text += off;
            l->indent += off;
            yadd(ls, NULL, map_at(p, l->indent));
        } else {
            yadd(ls, NULL, value(p, rest, indent, 1));
        }
    }
    return ls;
}

static ynode_t *block(yparser_t *p, int indent)
{
    skip_blank(p);
    if (p->i >= p->n) return ynew(Y_NULL);
    if (is_item(&p->lines[p->i])) return list_at(p, indent);
    return map_at(p, indent);
}

/* Parses a whole document; returns NULL with p->err set on an error. */
static ynode_t *yaml_parse(char *text, const char *file, char *err, size_t errlen)
{
    yparser_t p;
    memset(&p, 0, sizeof p);
    p.file = file;
    size_t cap = 16;
    p.lines = xmalloc(cap * sizeof *p.lines);
    char *s = text;
    while (*s) {
        char *nl = strchr(s, '\n');
        char *end = nl ? nl : s + strlen(s);
        if (end > s && end[-1] == '\r') end[-1] = '\0';
        *end = '\0';
        if (p.n == cap) {
            cap *= 2;
            p.lines = realloc(p.lines, cap * sizeof *p.lines);
            if (!p.lines) exit(2);
        }
        yline_t *l = &p.lines[p.n++];
        int ind = 0;
        while (s[ind] == ' ')
            ind++;
        if (s[ind] == '\t') snprintf(p.err, sizeof p.err, "%s:%zu: tab indentation", file, p.n);
        l->indent = ind;
        l->text = s + ind;
        /* Trailing spaces are never content in this subset. */
        size_t tl = strlen(l->text);
        while (tl && (l->text[tl - 1] == ' ' || l->text[tl - 1] == '\t'))
            l->text[--tl] = '\0';
        l->blank = l->text[0] == '\0' || l->text[0] == '#' || !strcmp(l->text, "---");
        if (!nl) break;
        s = nl + 1;
    }
    ynode_t *root = NULL;
    if (!p.err[0]) {
        root = block(&p, 0);
        skip_blank(&p);
        if (!p.err[0] && p.i < p.n) yerr(&p, "unexpected content");
    }
    free(p.lines);
    if (p.err[0]) {
        snprintf(err, errlen, "%s", p.err);
        yfree(root);
        return NULL;
    }
    return root;
}

/* ---- typing of plain scalars ---- */

static int scalar_bool(const ynode_t *y, int *b)
{
    if (!y || y->kind != Y_SCALAR || y->quoted) return 0;
    const char *t[] = {"true", "True", "TRUE"}, *f[] = {"false", "False", "FALSE"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(y->str, t[i])) return *b = 1, 1;
        if (!strcmp(y->str, f[i])) return *b = 0, 1;
    }
    return 0;
}

static int scalar_int(const ynode_t *y, int64_t *v)
{
    if (!y || y->kind != Y_SCALAR || y->quoted) return 0;
    const char *s = y->str;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (!s[i] || strlen(s + i) > 12) return 0;
    for (size_t k = i; s[k]; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    *v = strtoll(s, NULL, 10);
    return 1;
}

/* The CESQL value of a YAML scalar. Returns 0 for a node that is not a scalar. */
static int to_value(const ynode_t *y, filter_cesql_value_t *out)
{
    int b;
    int64_t i;
    memset(out, 0, sizeof *out);
    if (!y || y->kind != Y_SCALAR) return 0;
    if (scalar_bool(y, &b)) {
        out->type = FILTER_CESQL_BOOLEAN;
        out->b = b;
    } else if (scalar_int(y, &i) && i >= INT32_MIN && i <= INT32_MAX) {
        out->type = FILTER_CESQL_INTEGER;
        out->i = (int32_t)i;
    } else {
        out->type = FILTER_CESQL_STRING;
        out->s = y->str;
        out->len = strlen(y->str);
    }
    return 1;
}

/* ---- the kit's events ---- */

typedef struct {
    const ynode_t *event;     /* the case's event, or NULL for the default one */
    const ynode_t *overrides; /* eventOverrides, or NULL */
    ynode_t *defaults;
} tck_event_t;

/* "any valid event" when a case gives none: the required attributes only. */
static ynode_t *default_event(void)
{
    static const char *const kv[][2] = {
        {"specversion", "1.0"}, {"id", "tck-id"}, {"source", "tck-source"}, {"type", "tck.type"}};
    ynode_t *m = ynew(Y_MAP);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        ynode_t *v = ynew(Y_SCALAR);
        v->str = xstrndup(kv[i][1], strlen(kv[i][1]));
        v->quoted = 1;
        yadd(m, xstrndup(kv[i][0], strlen(kv[i][0])), v);
    }
    return m;
}

static int tck_attr(void *ctx, const char *name, filter_cesql_value_t *out)
{
    const tck_event_t *ev = ctx;
    const ynode_t *v = yget(ev->overrides, name);
    if (!v) v = yget(ev->event ? ev->event : ev->defaults, name);
    if (!v || v->kind != Y_SCALAR) return 0;
    return to_value(v, out);
}

/* ---- running ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) exit(2);
        }
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void show(const filter_cesql_value_t *v, char *buf, size_t n)
{
    switch (v->type) {
    case FILTER_CESQL_BOOLEAN:
        snprintf(buf, n, "Boolean %s", v->b ? "true" : "false");
        break;
    case FILTER_CESQL_INTEGER:
        snprintf(buf, n, "Integer %d", (int)v->i);
        break;
    case FILTER_CESQL_STRING:
        snprintf(buf, n, "String \"%.*s\"", (int)v->len, v->s);
        break;
    default:
        snprintf(buf, n, "(no type)");
        break;
    }
}

static int same(const filter_cesql_value_t *a, const filter_cesql_value_t *b)
{
    if (a->type != b->type) return 0;
    switch (a->type) {
    case FILTER_CESQL_BOOLEAN:
        return !a->b == !b->b;
    case FILTER_CESQL_INTEGER:
        return a->i == b->i;
    default:
        return a->len == b->len && !memcmp(a->s, b->s, a->len);
    }
}

static int passed, total;

static void run_case(const char *file, const ynode_t *t, ynode_t *defaults)
{
    const ynode_t *name = yget(t, "name"), *expr = yget(t, "expression");
    const ynode_t *result = yget(t, "result"), *error = yget(t, "error");
    const char *nm = name && name->kind == Y_SCALAR ? name->str : "(unnamed)";
    total++;
    if (!expr || expr->kind != Y_SCALAR) {
        ok(0, "%s: %s: the case has no expression", file, nm);
        return;
    }
    tck_event_t ev = {yget(t, "event"), yget(t, "eventOverrides"), defaults};
    filter_cesql_t *e = NULL;
    char msg[200] = "";
    int rc = filter_cesql_compile(expr->str, strlen(expr->str), &e, msg, sizeof msg);
    filter_cesql_value_t got;
    int err;
    if (rc < 0) {
        /* A compile error: the spec's value for an expression that could not run is false. */
        err = -rc;
        memset(&got, 0, sizeof got);
        got.type = FILTER_CESQL_BOOLEAN;
    } else {
        err = filter_cesql_eval(e, tck_attr, &ev, &got);
    }
    const char *want_err = error && error->kind == Y_SCALAR ? error->str : "";
    int err_ok = !strcmp(want_err, filter_cesql_strerror(err));
    filter_cesql_value_t want;
    int res_ok = 1;
    if (result) res_ok = to_value(result, &want) && same(&want, &got);
    char g[120], w[120] = "(any)";
    show(&got, g, sizeof g);
    if (result) show(&want, w, sizeof w);
    if (ok(err_ok && res_ok, "%s: %s", file, nm)) {
        passed++;
    } else {
        printf("#   expression: %s\n#   want %s, error '%s'\n#   got  %s, error '%s'%s%s\n",
               expr->str, w, want_err, g, filter_cesql_strerror(err), msg[0] ? ": " : "", msg);
    }
    filter_cesql_value_fini(&got);
    filter_cesql_free(e);
}

/* Counts the "- name:" items in the raw text: a cross-check that the reader saw every case. */
static size_t count_items(const char *text)
{
    size_t n = 0;
    for (const char *s = text; (s = strstr(s, "- name:")); s++) {
        const char *b = s;
        while (b > text && b[-1] == ' ')
            b--;
        if (b == text || b[-1] == '\n') n++;
    }
    return n;
}

static void run_file(const char *dir, const char *fname)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, fname);
    char *text = slurp(path);
    if (!text) {
        ok(0, "%s: readable", fname);
        return;
    }
    size_t expect = count_items(text);
    char err[256];
    ynode_t *doc = yaml_parse(text, fname, err, sizeof err);
    if (!doc) {
        ok(0, "%s: parses as YAML: %s", fname, err);
        free(text);
        return;
    }
    const ynode_t *tests = yget(doc, "tests");
    if (!tests || tests->kind != Y_LIST) {
        ok(0, "%s: has a list of tests", fname);
    } else {
        ok(tests->n == expect, "%s: read all %zu cases (%zu in the text)", fname, tests->n, expect);
        ynode_t *defaults = default_event();
        for (size_t i = 0; i < tests->n; i++)
            run_case(fname, tests->vals[i], defaults);
        yfree(defaults);
    }
    yfree(doc);
    free(text);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "test/unit/filter/cesql-tck";
    DIR *d = opendir(dir);
    if (!d) {
        ok(0, "open the kit directory %s", dir);
        return done_testing();
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml")) continue;
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names) return 2;
        names[n++] = xstrndup(de->d_name, l);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    ok(n > 0, "the kit directory has YAML files (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        run_file(dir, names[i]);
        free(names[i]);
    }
    free(names);
    printf("# cesql tck: %d/%d passed\n", passed, total);
    return done_testing();
}
