/* filter/cesql_eval: evaluation of a compiled CESQL expression: operators, implicit casts, LIKE
 * matching, the error rules, and the attribute accessor for filter_event_t. The tree walk recurses
 * at most FILTER_CESQL_MAX_DEPTH levels (the compiler enforces it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cesql_int.h"

/* Big enough for every string a typical filter computes (casts of integers, LOWER of an attribute),
 * so the common case never calls malloc. */
#define STACK_SCRATCH 512
#define ALIGN 16

typedef struct {
    const filter_cesql_t *e;
    filter_cesql_attr_fn fn;
    void *ctx;
    arena_t *a;
} ectx_t;

char *filter_cesql_arena_alloc(arena_t *a, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < n) return NULL;
    if (need <= a->left) {
        char *r = a->cur;
        a->cur += need;
        a->left -= need;
        return r;
    }
    size_t cap = need > 4096 ? need : 4096;
    if (cap > SIZE_MAX - sizeof(arena_blk_t)) return NULL;
    arena_blk_t *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->next = a->heap;
    b->cap = cap;
    a->heap = b;
    a->cur = b->data + need;
    a->left = cap - need;
    return b->data;
}

static int in_arena(const arena_t *a, const char *p)
{
    uintptr_t u = (uintptr_t)p;
    if (u >= (uintptr_t)a->first && u < (uintptr_t)a->first + a->first_cap) return 1;
    for (const arena_blk_t *b = a->heap; b; b = b->next)
        if (u >= (uintptr_t)b->data && u < (uintptr_t)b->data + b->cap) return 1;
    return 0;
}

static void arena_fini(arena_t *a)
{
    while (a->heap) {
        arena_blk_t *n = a->heap->next;
        free(a->heap);
        a->heap = n;
    }
}

int filter_cesql_parse_int(const char *s, size_t len, int32_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == len) return 0;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
        if (v > (int64_t)INT32_MAX + 1) return 0;
    }
    if (neg) v = -v;
    if (v > INT32_MAX || v < INT32_MIN) return 0;
    *out = (int32_t)v;
    return 1;
}

static int ieq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (len != n) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lit[i]) return 0;
    }
    return 1;
}

int filter_cesql_parse_bool(const char *s, size_t len, int *out)
{
    if (ieq(s, len, "true")) return *out = 1, 1;
    if (ieq(s, len, "false")) return *out = 0, 1;
    return 0;
}

static int cast_fail(val_t *v, int t, int err)
{
    *v = filter_cesql_zero(t);
    return err;
}

int filter_cesql_cast(val_t *v, int t, int explicit_cast, arena_t *a)
{
    if (t == FILTER_CESQL_ANY || (int)v->type == t) return 0;
    switch (t) {
    case FILTER_CESQL_INTEGER: {
        int32_t i = 0;
        if (v->type == FILTER_CESQL_BOOLEAN)
            i = v->b != 0;
        else if (!filter_cesql_parse_int(v->s, v->len, &i))
            return cast_fail(v, t, FILTER_CESQL_E_CAST);
        *v = filter_cesql_zero(t);
        v->i = i;
        return 0;
    }
    case FILTER_CESQL_BOOLEAN: {
        int b = 0;
        if (v->type == FILTER_CESQL_INTEGER) {
            /* The spec's table allows it, but its test kit wants NOT 10 to be a cast error; so
             * only BOOL(x) converts an Integer. */
            if (!explicit_cast) return cast_fail(v, t, FILTER_CESQL_E_CAST);
            b = v->i != 0;
        } else if (!filter_cesql_parse_bool(v->s, v->len, &b)) {
            return cast_fail(v, t, FILTER_CESQL_E_CAST);
        }
        *v = filter_cesql_zero(t);
        v->b = b;
        return 0;
    }
    case FILTER_CESQL_STRING: {
        if (v->type == FILTER_CESQL_BOOLEAN) {
            int b = v->b;
            *v = filter_cesql_zero(t);
            v->s = b ? "true" : "false";
            v->len = b ? 4 : 5;
            return 0;
        }
        char *buf = filter_cesql_arena_alloc(a, 12);
        if (!buf) return cast_fail(v, t, FILTER_CESQL_E_GENERIC);
        /* Digits backwards into the end of buf; int64 so that -2147483648 negates safely. */
        int64_t x = v->i;
        int neg = x < 0;
        if (neg) x = -x;
        char *p = buf + 12;
        do {
            *--p = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        if (neg) *--p = '-';
        *v = filter_cesql_zero(t);
        v->s = p;
        v->len = (size_t)(buf + 12 - p);
        return 0;
    }
    default:
        return cast_fail(v, FILTER_CESQL_BOOLEAN, FILTER_CESQL_E_GENERIC);
    }
}

/* ---- LIKE ---- */

static size_t cp_next(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

/* Wildcard matching with one backtracking point, the last %: when the rest fails, that % takes one
 * more character. Literal runs and _ between two %s form a fixed sequence, so trying each start
 * left to right is complete; the cost is O(len(text) * len(pattern)) at worst, without recursion.
 */
static int like(const pat_t *pat, size_t np, const char *s, size_t len)
{
    size_t pi = 0, ti = 0;
    size_t star = SIZE_MAX, star_t = 0;
    for (;;) {
        if (pi < np) {
            const pat_t *e = &pat[pi];
            if (e->kind == PAT_ANY) {
                if (pi + 1 == np) return 1; /* a trailing % takes the rest */
                star = pi++;
                star_t = ti;
                continue;
            }
            if (e->kind == PAT_ONE && ti < len) {
                ti = cp_next(s, len, ti);
                pi++;
                continue;
            }
            if (e->kind == PAT_LIT && len - ti >= e->len && !memcmp(s + ti, e->s, e->len)) {
                ti += e->len;
                pi++;
                continue;
            }
        } else if (ti == len) {
            return 1;
        }
        if (star == SIZE_MAX || star_t >= len) return 0;
        star_t = cp_next(s, len, star_t);
        ti = star_t;
        pi = star + 1;
    }
}

/* ---- evaluation ---- */

static int ev(const ectx_t *c, uint32_t idx, val_t *out);

/* An operand came back with an error: the operator stops and gives its own zero value. */
static int stop(const node_t *n, int err, val_t *out)
{
    *out = filter_cesql_zero(n->type);
    return err;
}

static void keep_first(int *first, int err)
{
    if (!*first) *first = err;
}

static int ev_arith(const ectx_t *c, const node_t *n, val_t *out)
{
    const uint32_t *k = c->e->kids + n->kid;
    val_t l, r;
    int err = ev(c, k[0], &l);
    if (err) return stop(n, err, out);
    err = ev(c, k[1], &r);
    if (err) return stop(n, err, out);
    int first = 0;
    keep_first(&first, filter_cesql_cast_to(&l, FILTER_CESQL_INTEGER, c->a));
    keep_first(&first, filter_cesql_cast_to(&r, FILTER_CESQL_INTEGER, c->a));
    int64_t a = l.i, b = r.i, v = 0;
    switch (n->op) {
    case OP_ADD:
        v = a + b;
        break;
    case OP_SUB:
        v = a - b;
        break;
    case OP_MUL:
        v = a * b;
        break;
    case OP_DIV:
    case OP_MOD:
        if (b == 0) {
            keep_first(&first, FILTER_CESQL_E_MATH);
            v = 0;
        } else {
            /* int64 keeps -2147483648 / -1 defined; C truncates toward zero as the spec asks. */
            v = n->op == OP_DIV ? a / b : a % b;
        }
        break;
    }
    if (v > INT32_MAX || v < INT32_MIN) {
        keep_first(&first, FILTER_CESQL_E_MATH);
        v = 0;
    }
    *out = filter_cesql_zero(FILTER_CESQL_INTEGER);
    out->i = (int32_t)v;
    return first;
}

static int equal(const val_t *a, const val_t *b)
{
    switch (a->type) {
    case FILTER_CESQL_BOOLEAN:
        return a->b == b->b;
    case FILTER_CESQL_INTEGER:
        return a->i == b->i;
    default:
        return a->len == b->len && !memcmp(a->s, b->s, a->len);
    }
}

static int ev_eq(const ectx_t *c, const node_t *n, val_t *out)
{
    const uint32_t *k = c->e->kids + n->kid;
    val_t l, r;
    int err = ev(c, k[0], &l);
    if (err) return stop(n, err, out);
    err = ev(c, k[1], &r);
    if (err) return stop(n, err, out);
    /* = is ambiguous (Boolean, Integer, String): the right operand's type picks the definition
     * and the left operand is cast to it (spec 3.7). */
    int first = filter_cesql_cast_to(&l, r.type, c->a);
    *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
    out->b = equal(&l, &r) ^ (n->op == OP_NE);
    return first;
}

static int ev_ord(const ectx_t *c, const node_t *n, val_t *out)
{
    const uint32_t *k = c->e->kids + n->kid;
    val_t l, r;
    int err = ev(c, k[0], &l);
    if (err) return stop(n, err, out);
    err = ev(c, k[1], &r);
    if (err) return stop(n, err, out);
    int first = 0;
    keep_first(&first, filter_cesql_cast_to(&l, FILTER_CESQL_INTEGER, c->a));
    keep_first(&first, filter_cesql_cast_to(&r, FILTER_CESQL_INTEGER, c->a));
    int b = 0;
    switch (n->op) {
    case OP_LT:
        b = l.i < r.i;
        break;
    case OP_LE:
        b = l.i <= r.i;
        break;
    case OP_GT:
        b = l.i > r.i;
        break;
    case OP_GE:
        b = l.i >= r.i;
        break;
    }
    *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
    out->b = b;
    return first;
}

/* AND, OR (short-circuit) and XOR over n operands. */
static int ev_logic(const ectx_t *c, const node_t *n, val_t *out)
{
    const uint32_t *k = c->e->kids + n->kid;
    int first = 0;
    int acc = n->kind == N_AND;
    for (uint32_t i = 0; i < n->nkids; i++) {
        val_t v;
        int err = ev(c, k[i], &v);
        if (err) return stop(n, err, out);
        keep_first(&first, filter_cesql_cast_to(&v, FILTER_CESQL_BOOLEAN, c->a));
        if (n->kind == N_AND) {
            if (!v.b) {
                acc = 0;
                break;
            }
        } else if (n->kind == N_OR) {
            if (v.b) {
                acc = 1;
                break;
            }
        } else {
            acc ^= v.b;
        }
    }
    *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
    out->b = acc;
    return first;
}

static int ev_in(const ectx_t *c, const node_t *n, val_t *out)
{
    const uint32_t *k = c->e->kids + n->kid;
    val_t x;
    int err = ev(c, k[0], &x);
    if (err) return stop(n, err, out);
    int first = 0, found = 0;
    for (uint32_t i = 1; i < n->nkids && !found; i++) {
        val_t y;
        err = ev(c, k[i], &y);
        if (err) return stop(n, err, out);
        /* IN's own rule: the set elements are cast to the left operand's type. */
        keep_first(&first, filter_cesql_cast_to(&y, x.type, c->a));
        found = equal(&x, &y);
    }
    *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
    out->b = found ^ n->neg;
    return first;
}

static int ev_call(const ectx_t *c, const node_t *n, val_t *out)
{
    const cesql_func_t *f = &filter_cesql_funcs[n->op];
    const uint32_t *k = c->e->kids + n->kid;
    val_t small[4];
    val_t *args = small;
    if (n->nkids > 4) {
        args = (val_t *)filter_cesql_arena_alloc(c->a, n->nkids * sizeof *args);
        if (!args) return stop(n, FILTER_CESQL_E_GENERIC, out);
    }
    int first = 0;
    for (uint32_t i = 0; i < n->nkids; i++) {
        int err = ev(c, k[i], &args[i]);
        if (err) return stop(n, err, out);
        int t = i < f->nparams ? f->params[i] : f->rest;
        keep_first(&first, filter_cesql_cast_to(&args[i], t, c->a));
    }
    keep_first(&first, f->fn(args, n->nkids, c->a, out));
    return first;
}

static int ev(const ectx_t *c, uint32_t idx, val_t *out)
{
    const node_t *n = &c->e->nodes[idx];
    int err;
    switch (n->kind) {
    case N_LIT:
        *out = n->lit;
        return 0;
    case N_ATTR:
        if (!c->fn(c->ctx, n->name, out)) {
            /* The attribute has no type to take a zero value from: Boolean, as spec 3.2 says. */
            *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
            return FILTER_CESQL_E_MISSING_ATTRIBUTE;
        }
        out->owned = NULL;
        if (out->type == FILTER_CESQL_STRING && !out->s) out->s = "", out->len = 0;
        if (out->type < FILTER_CESQL_BOOLEAN || out->type > FILTER_CESQL_STRING) {
            *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
            return FILTER_CESQL_E_GENERIC;
        }
        return 0;
    case N_EXISTS: {
        val_t tmp = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
        int has = c->fn(c->ctx, n->name, &tmp) != 0;
        *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
        out->b = has;
        return 0;
    }
    case N_NOT:
        err = ev(c, c->e->kids[n->kid], out);
        if (err) return stop(n, err, out);
        err = filter_cesql_cast_to(out, FILTER_CESQL_BOOLEAN, c->a);
        out->b = !out->b;
        return err;
    case N_NEG:
        err = ev(c, c->e->kids[n->kid], out);
        if (err) return stop(n, err, out);
        err = filter_cesql_cast_to(out, FILTER_CESQL_INTEGER, c->a);
        if (out->i == INT32_MIN) {
            /* Like ABS: the nearest value and a math error. */
            out->i = INT32_MAX;
            return err ? err : FILTER_CESQL_E_MATH;
        }
        out->i = -out->i;
        return err;
    case N_ARITH:
        return ev_arith(c, n, out);
    case N_EQ:
        return ev_eq(c, n, out);
    case N_ORD:
        return ev_ord(c, n, out);
    case N_AND:
    case N_OR:
    case N_XOR:
        return ev_logic(c, n, out);
    case N_LIKE: {
        err = ev(c, c->e->kids[n->kid], out);
        if (err) return stop(n, err, out);
        err = filter_cesql_cast_to(out, FILTER_CESQL_STRING, c->a);
        int m = like(c->e->pats + n->pat, n->npat, out->s, out->len);
        *out = filter_cesql_zero(FILTER_CESQL_BOOLEAN);
        out->b = m ^ n->neg;
        return err;
    }
    case N_IN:
        return ev_in(c, n, out);
    case N_CALL:
        return ev_call(c, n, out);
    }
    return stop(n, FILTER_CESQL_E_GENERIC, out);
}

/* One evaluation. keep: copy a String result that lives in the scratch memory to the heap, so it
 * outlives the call. */
static int run(const filter_cesql_t *e, filter_cesql_attr_fn fn, void *ctx, val_t *result, int keep)
{
    _Alignas(ALIGN) char scratch[STACK_SCRATCH];
    arena_t a = {scratch, sizeof scratch, scratch, sizeof scratch, NULL};
    ectx_t c = {e, fn, ctx, &a};
    val_t v;
    int err = ev(&c, e->root, &v);
    v.owned = NULL;
    if (keep && v.type == FILTER_CESQL_STRING && v.len && in_arena(&a, v.s)) {
        char *copy = malloc(v.len);
        if (copy) {
            memcpy(copy, v.s, v.len);
            v.s = copy;
            v.owned = copy;
        } else {
            v = filter_cesql_zero(FILTER_CESQL_STRING);
            if (!err) err = FILTER_CESQL_E_GENERIC;
        }
    }
    arena_fini(&a);
    *result = v;
    return err;
}

int filter_cesql_eval(const filter_cesql_t *e, filter_cesql_attr_fn fn, void *ctx,
                      filter_cesql_value_t *result)
{
    return run(e, fn, ctx, result, 1);
}

void filter_cesql_value_fini(filter_cesql_value_t *v)
{
    if (!v) return;
    free(v->owned);
    v->owned = NULL;
}

int filter_cesql_matches(const filter_cesql_t *e, filter_cesql_attr_fn fn, void *ctx)
{
    val_t v;
    int err = run(e, fn, ctx, &v, 0);
    return !err && v.type == FILTER_CESQL_BOOLEAN && v.b;
}

/* ---- filter_event_t ---- */

/* Returns 1 and sets *value (NULL when absent) if name is a core attribute, 0 if it is not. */
static int core_attr(const filter_event_t *ev, const char *name, const char **value)
{
    /* Switch on the first letter: this runs for every attribute reference of every evaluation. */
    switch (name[0]) {
    case 'i':
        if (!strcmp(name, "id")) return *value = ev->id, 1;
        break;
    case 's':
        if (!strcmp(name, "source")) return *value = ev->source, 1;
        if (!strcmp(name, "subject")) return *value = ev->subject, 1;
        if (!strcmp(name, "specversion")) return *value = ev->specversion, 1;
        break;
    case 't':
        if (!strcmp(name, "type")) return *value = ev->type, 1;
        if (!strcmp(name, "time")) return *value = ev->time, 1;
        break;
    case 'd':
        if (!strcmp(name, "datacontenttype")) return *value = ev->datacontenttype, 1;
        if (!strcmp(name, "dataschema")) return *value = ev->dataschema, 1;
        break;
    }
    return 0;
}

int filter_cesql_event_attr(void *ctx, const char *name, filter_cesql_value_t *out)
{
    const filter_event_t *ev = ctx;
    const char *v = NULL;
    if (core_attr(ev, name, &v)) {
        if (!v) return 0;
        out->type = FILTER_CESQL_STRING;
        out->s = v;
        out->len = strlen(v);
        return 1;
    }
    for (size_t i = 0; i < ev->n_exts; i++) {
        const filter_ext_t *x = &ev->exts[i];
        if (strcmp(x->name, name)) continue;
        size_t len = strlen(x->value);
        int32_t iv;
        if (x->kind == FILTER_EXT_INTEGER && filter_cesql_parse_int(x->value, len, &iv)) {
            out->type = FILTER_CESQL_INTEGER;
            out->i = iv;
        } else if (x->kind == FILTER_EXT_BOOLEAN) {
            out->type = FILTER_CESQL_BOOLEAN;
            out->b = x->value[0] == 't';
        } else {
            out->type = FILTER_CESQL_STRING;
            out->s = x->value;
            out->len = len;
        }
        return 1;
    }
    return 0;
}

const char *filter_cesql_strerror(int code)
{
    switch (code < 0 ? -code : code) {
    case 0:
        return "";
    case FILTER_CESQL_E_PARSE:
        return "parse";
    case FILTER_CESQL_E_MATH:
        return "math";
    case FILTER_CESQL_E_CAST:
        return "cast";
    case FILTER_CESQL_E_MISSING_FUNCTION:
        return "missingFunction";
    case FILTER_CESQL_E_FUNCTION_EVALUATION:
        return "functionEvaluation";
    case FILTER_CESQL_E_MISSING_ATTRIBUTE:
        return "missingAttribute";
    default:
        return "generic";
    }
}
