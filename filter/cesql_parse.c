/* filter/cesql_parse: the CESQL parser (the lexer is cesql_lex.c). It compiles expression text into
 * the flat tree of cesql_int.h, resolving functions and checking their arity on the way, so that
 * evaluation never looks at text again. Precedence climbing; see cesql.h for the precedence and
 * grouping rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cesql_int.h"
#include "cesql_lex.h"
#include "json.h"
#include "util.h"

/* Binding levels, loosest first. NOT and unary minus take an operand at L_UNARY, so no infix or
 * postfix operator binds inside them: NOT a LIKE 'x' is (NOT a) LIKE 'x', as spec 3.6 orders it. */
enum { L_NONE, L_LOGIC, L_CMP, L_ADD, L_MUL, L_IN, L_LIKE, L_UNARY };

#define NONE UINT32_MAX

typedef struct {
    cesql_lexer_t lx; /* the text, and the first error */
    size_t pos;       /* lexer position, just past tok */
    cesql_tok_t tok;

    node_t *nodes;
    uint16_t *depth; /* per node: height of its subtree */
    size_t nn, capn;
    uint32_t *kids;
    size_t nk, capk;
    pat_t *pats;
    size_t np, capp;
    char *pool; /* reserved once from the source length, so pointers into it stay valid */
    size_t pool_len, pool_cap;
    uint32_t *stack; /* operands gathered for n-ary nodes (calls, IN sets, AND/OR chains) */
    size_t ns, caps;

    int nesting;
    int fn_err; /* a function error waits until the whole text has parsed */
    char fn_msg[160];
} parser_t;

#define say(p, ...) filter_cesql_say(&(p)->lx, __VA_ARGS__)

static void advance(parser_t *p)
{
    if (p->lx.rc) return;
    p->pos = filter_cesql_scan(&p->lx, p->pos, &p->tok);
}

static int peek_kind(parser_t *p)
{
    cesql_tok_t t;
    filter_cesql_scan(&p->lx, p->pos, &t);
    return t.kind;
}

static uint32_t expected(parser_t *p, const char *what)
{
    char found[48];
    filter_cesql_describe(&p->lx, &p->tok, found, sizeof found);
    say(p, -FILTER_CESQL_E_PARSE, "syntax error at %zu: expected %s but found %s", p->tok.start + 1,
        what, found);
    return NONE;
}

/* ---- output ---- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*arr, nc * elem);
    if (!q) return -1;
    *arr = q;
    *cap = nc;
    return 0;
}

static uint32_t oom(parser_t *p)
{
    say(p, -FILTER_CESQL_E_GENERIC, "out of memory");
    return NONE;
}

/* Appends a node whose children are kids[0..nk); checks the node and depth limits. */
static uint32_t emit(parser_t *p, node_t n, const uint32_t *kids, size_t nk)
{
    if (p->lx.rc) return NONE;
    if (p->nn >= FILTER_CESQL_MAX_NODES) {
        say(p, -FILTER_CESQL_E_PARSE, "expression too long: more than %d nodes",
            FILTER_CESQL_MAX_NODES);
        return NONE;
    }
    unsigned h = 0;
    for (size_t i = 0; i < nk; i++)
        if (p->depth[kids[i]] > h) h = p->depth[kids[i]];
    if (h + 1 > FILTER_CESQL_MAX_DEPTH) {
        say(p, -FILTER_CESQL_E_PARSE, "expression nested too deeply: more than %d levels",
            FILTER_CESQL_MAX_DEPTH);
        return NONE;
    }
    if (grow((void **)&p->kids, &p->capk, p->nk + nk, sizeof *p->kids)) return oom(p);
    size_t capn = p->capn;
    if (grow((void **)&p->nodes, &p->capn, p->nn + 1, sizeof *p->nodes)) return oom(p);
    if (p->capn != capn) {
        uint16_t *d = realloc(p->depth, p->capn * sizeof *d);
        if (!d) return oom(p);
        p->depth = d;
    }
    n.kid = (uint32_t)p->nk;
    n.nkids = (uint32_t)nk;
    if (nk) memcpy(p->kids + p->nk, kids, nk * sizeof *kids);
    p->nk += nk;
    p->nodes[p->nn] = n;
    p->depth[p->nn] = (uint16_t)(h + 1);
    return (uint32_t)p->nn++;
}

static int push(parser_t *p, uint32_t idx)
{
    if (grow((void **)&p->stack, &p->caps, p->ns + 1, sizeof *p->stack)) {
        oom(p);
        return -1;
    }
    p->stack[p->ns++] = idx;
    return 0;
}

/* Emits a node over the operands stacked since base, and pops them. */
static uint32_t emit_stacked(parser_t *p, node_t n, size_t base)
{
    /* no operands (a call without arguments, e.g. "ABS()") may come before anything was ever
     * stacked, with the stack still NULL: NULL + 0 is undefined behaviour (found by fuzzing) */
    uint32_t r = emit(p, n, p->ns > base ? p->stack + base : NULL, p->ns - base);
    p->ns = base;
    return r;
}

static char *pool_put(parser_t *p, size_t n)
{
    HND_CHECK(p->pool_len + n <= p->pool_cap);
    char *r = p->pool + p->pool_len;
    p->pool_len += n;
    return r;
}

static node_t mk(int kind, int type)
{
    node_t n;
    memset(&n, 0, sizeof n);
    n.kind = (uint8_t)kind;
    n.type = (uint8_t)type;
    return n;
}

/* Decodes the string literal token t into the pool: \\ \' \" give the character, a doubled
 * delimiter one delimiter, other backslash pairs stay as written (LIKE patterns need \% and \_). */
static void decode_string(parser_t *p, const cesql_tok_t *t, const char **s, size_t *len)
{
    const char *src = p->lx.src;
    char q = src[t->start];
    size_t i = t->start + 1, end = t->end - 1;
    char *out = pool_put(p, 0);
    size_t n = 0;
    while (i < end) {
        if (src[i] == '\\' && i + 1 < end &&
            (src[i + 1] == '\\' || src[i + 1] == '\'' || src[i + 1] == '"')) {
            out[n++] = src[i + 1];
            i += 2;
        } else if (src[i] == q) { /* the lexer only lets doubled delimiters through */
            out[n++] = q;
            i += 2;
        } else {
            out[n++] = src[i++];
        }
    }
    pool_put(p, n + 1);
    out[n] = '\0';
    *s = out;
    *len = n;
}

/* Compiles a LIKE pattern: % any run, _ one character, \% \_ \\ the character itself; a backslash
 * before anything else is a literal backslash. Consecutive literal characters form one run. */
static int compile_pattern(parser_t *p, const char *s, size_t len, node_t *n)
{
    n->pat = (uint32_t)p->np;
    char *run = NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int kind = PAT_LIT;
        if (c == '%')
            kind = PAT_ANY;
        else if (c == '_')
            kind = PAT_ONE;
        else if (c == '\\' && i + 1 < len &&
                 (s[i + 1] == '%' || s[i + 1] == '_' || s[i + 1] == '\\'))
            c = s[++i];
        if (kind == PAT_LIT && run) {
            *pool_put(p, 1) = c;
            p->pats[p->np - 1].len++;
            continue;
        }
        if (kind == PAT_ANY && p->np > n->pat && p->pats[p->np - 1].kind == PAT_ANY) continue;
        if (grow((void **)&p->pats, &p->capp, p->np + 1, sizeof *p->pats)) {
            oom(p);
            return -1;
        }
        pat_t *e = &p->pats[p->np++];
        e->kind = (uint8_t)kind;
        e->len = 0;
        e->s = NULL;
        run = NULL;
        if (kind == PAT_LIT) {
            run = pool_put(p, 1);
            *run = c;
            e->s = run;
            e->len = 1;
        }
    }
    n->npat = (uint32_t)(p->np - n->pat);
    return 0;
}

/* ---- parser ---- */

static uint32_t parse_expr(parser_t *p, int min);

static int enter(parser_t *p)
{
    if (++p->nesting > FILTER_CESQL_MAX_DEPTH) {
        say(p, -FILTER_CESQL_E_PARSE, "expression nested too deeply: more than %d levels",
            FILTER_CESQL_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static uint32_t int_literal(parser_t *p, int negative)
{
    int64_t v = negative ? -p->tok.ival : p->tok.ival;
    if (v > INT32_MAX || v < INT32_MIN) {
        say(p, -FILTER_CESQL_E_PARSE,
            "syntax error at %zu: integer literal out of the 32-bit range", p->tok.start + 1);
        return NONE;
    }
    node_t n = mk(N_LIT, FILTER_CESQL_INTEGER);
    n.lit.type = FILTER_CESQL_INTEGER;
    n.lit.i = (int32_t)v;
    advance(p);
    return emit(p, n, NULL, 0);
}

/* An attribute name: letters and digits, stored lower-case (CloudEvents names are). */
static const char *attr_name(parser_t *p)
{
    size_t len = p->tok.end - p->tok.start;
    const char *s = p->lx.src + p->tok.start;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '_') {
            say(p, -FILTER_CESQL_E_PARSE,
                "syntax error at %zu: '%.*s' is not an attribute name (letters and digits only)",
                p->tok.start + 1, (int)len, s);
            return NULL;
        }
    char *name = pool_put(p, len + 1);
    for (size_t i = 0; i < len; i++)
        name[i] = (char)filter_cesql_lower((unsigned char)s[i]);
    name[len] = '\0';
    return name;
}

static void arity_text(const cesql_func_t *f, char *buf, size_t n)
{
    if (f->max_args == VARIADIC)
        snprintf(buf, n, "at least %u argument%s", f->min_args, f->min_args == 1 ? "" : "s");
    else if (f->min_args == f->max_args)
        snprintf(buf, n, "%u argument%s", f->min_args, f->min_args == 1 ? "" : "s");
    else if (f->max_args == f->min_args + 1)
        snprintf(buf, n, "%u or %u arguments", f->min_args, f->max_args);
    else
        snprintf(buf, n, "%u to %u arguments", f->min_args, f->max_args);
}

static uint32_t parse_call(parser_t *p)
{
    cesql_tok_t name = p->tok;
    size_t nlen = name.end - name.start;
    advance(p); /* the name */
    advance(p); /* ( */
    size_t base = p->ns;
    if (p->tok.kind != T_RPAREN) {
        for (;;) {
            uint32_t a = parse_expr(p, L_NONE + 1);
            if (p->lx.rc || push(p, a)) return NONE;
            if (p->tok.kind == T_COMMA) {
                advance(p);
                continue;
            }
            if (p->tok.kind != T_RPAREN) return expected(p, "',' or ')'");
            break;
        }
    }
    advance(p); /* ) */
    size_t argc = p->ns - base;
    int fi = filter_cesql_func_find(p->lx.src + name.start, nlen);
    char shown[40];
    int sl = nlen > 32 ? 32 : (int)nlen;
    for (int i = 0; i < sl; i++)
        shown[i] = (char)filter_cesql_upper((unsigned char)p->lx.src[name.start + i]);
    shown[sl] = '\0';
    node_t n = mk(N_CALL, FILTER_CESQL_BOOLEAN);
    if (fi < 0) {
        if (!p->fn_err) {
            p->fn_err = 1;
            snprintf(p->fn_msg, sizeof p->fn_msg, "unknown function %s%s", shown,
                     (size_t)sl < nlen ? "..." : "");
        }
    } else {
        const cesql_func_t *f = &filter_cesql_funcs[fi];
        if (argc < f->min_args || (f->max_args != VARIADIC && argc > f->max_args)) {
            if (!p->fn_err) {
                char ar[48];
                arity_text(f, ar, sizeof ar);
                p->fn_err = 1;
                snprintf(p->fn_msg, sizeof p->fn_msg, "function %s takes %s, got %zu", f->name, ar,
                         argc);
            }
        }
        n.op = (uint8_t)fi;
        n.type = f->ret;
    }
    return emit_stacked(p, n, base);
}

static uint32_t parse_unary(parser_t *p)
{
    if (p->lx.rc || enter(p)) return NONE;
    uint32_t r = NONE;
    node_t n;
    switch (p->tok.kind) {
    case T_NOT:
    case T_MINUS: {
        int kind = p->tok.kind == T_NOT ? N_NOT : N_NEG;
        advance(p);
        /* A '-' right before a number is part of the literal, which lets -2147483648 be one. */
        if (kind == N_NEG && p->tok.kind == T_INT) {
            r = int_literal(p, 1);
            break;
        }
        uint32_t k = parse_unary(p);
        if (p->lx.rc) break;
        r = emit(p, mk(kind, kind == N_NOT ? FILTER_CESQL_BOOLEAN : FILTER_CESQL_INTEGER), &k, 1);
        break;
    }
    case T_PLUS:
        advance(p);
        if (p->tok.kind != T_INT) {
            r = expected(p, "a number after '+'");
            break;
        }
        r = int_literal(p, 0);
        break;
    case T_INT:
        r = int_literal(p, 0);
        break;
    case T_STR:
        n = mk(N_LIT, FILTER_CESQL_STRING);
        n.lit.type = FILTER_CESQL_STRING;
        decode_string(p, &p->tok, &n.lit.s, &n.lit.len);
        advance(p);
        r = emit(p, n, NULL, 0);
        break;
    case T_TRUE:
    case T_FALSE:
        n = mk(N_LIT, FILTER_CESQL_BOOLEAN);
        n.lit.type = FILTER_CESQL_BOOLEAN;
        n.lit.b = p->tok.kind == T_TRUE;
        advance(p);
        r = emit(p, n, NULL, 0);
        break;
    case T_LPAREN:
        advance(p);
        r = parse_expr(p, L_NONE + 1);
        if (p->lx.rc) break;
        if (p->tok.kind != T_RPAREN) {
            r = expected(p, "')'");
            break;
        }
        advance(p);
        break;
    case T_EXISTS:
        advance(p);
        if (p->tok.kind != T_WORD && p->tok.kind != T_INT) {
            r = expected(p, "an attribute name after EXISTS");
            break;
        }
        n = mk(N_EXISTS, FILTER_CESQL_BOOLEAN);
        n.name = attr_name(p);
        if (!n.name) break;
        advance(p);
        r = emit(p, n, NULL, 0);
        break;
    case T_WORD:
        if (peek_kind(p) == T_LPAREN) {
            r = parse_call(p);
            break;
        }
        n = mk(N_ATTR, FILTER_CESQL_ANY);
        n.name = attr_name(p);
        if (!n.name) break;
        advance(p);
        r = emit(p, n, NULL, 0);
        break;
    default:
        r = expected(p, "an expression");
        break;
    }
    p->nesting--;
    return p->lx.rc ? NONE : r;
}

/* The infix or postfix operator at the current token: its level and node kind, or L_NONE. */
static int infix(parser_t *p, int *kind, int *op, int *neg)
{
    *neg = 0;
    *op = 0;
    switch (p->tok.kind) {
    case T_STAR:
        *kind = N_ARITH, *op = OP_MUL;
        return L_MUL;
    case T_SLASH:
        *kind = N_ARITH, *op = OP_DIV;
        return L_MUL;
    case T_PERCENT:
        *kind = N_ARITH, *op = OP_MOD;
        return L_MUL;
    case T_PLUS:
        *kind = N_ARITH, *op = OP_ADD;
        return L_ADD;
    case T_MINUS:
        *kind = N_ARITH, *op = OP_SUB;
        return L_ADD;
    case T_EQ:
        *kind = N_EQ, *op = OP_EQ;
        return L_CMP;
    case T_NE:
        *kind = N_EQ, *op = OP_NE;
        return L_CMP;
    case T_LT:
        *kind = N_ORD, *op = OP_LT;
        return L_CMP;
    case T_LE:
        *kind = N_ORD, *op = OP_LE;
        return L_CMP;
    case T_GT:
        *kind = N_ORD, *op = OP_GT;
        return L_CMP;
    case T_GE:
        *kind = N_ORD, *op = OP_GE;
        return L_CMP;
    case T_AND:
        *kind = N_AND;
        return L_LOGIC;
    case T_OR:
        *kind = N_OR;
        return L_LOGIC;
    case T_XOR:
        *kind = N_XOR;
        return L_LOGIC;
    case T_LIKE:
        *kind = N_LIKE;
        return L_LIKE;
    case T_IN:
        *kind = N_IN;
        return L_IN;
    case T_NOT: {
        int k = peek_kind(p);
        *neg = 1;
        if (k == T_LIKE) return *kind = N_LIKE, L_LIKE;
        if (k == T_IN) return *kind = N_IN, L_IN;
        return L_NONE;
    }
    default:
        return L_NONE;
    }
}

static uint32_t parse_like(parser_t *p, uint32_t left, int neg)
{
    if (neg) advance(p); /* NOT */
    advance(p);          /* LIKE */
    if (p->tok.kind != T_STR) return expected(p, "a string literal pattern after LIKE");
    node_t n = mk(N_LIKE, FILTER_CESQL_BOOLEAN);
    n.neg = (uint8_t)neg;
    const char *s;
    size_t len;
    decode_string(p, &p->tok, &s, &len);
    if (compile_pattern(p, s, len, &n)) return NONE;
    advance(p);
    return emit(p, n, &left, 1);
}

static uint32_t parse_in(parser_t *p, uint32_t left, int neg)
{
    if (neg) advance(p); /* NOT */
    advance(p);          /* IN */
    if (p->tok.kind != T_LPAREN) return expected(p, "'(' after IN");
    advance(p);
    size_t base = p->ns;
    if (push(p, left)) return NONE;
    for (;;) {
        uint32_t e = parse_expr(p, L_NONE + 1);
        if (p->lx.rc || push(p, e)) return NONE;
        if (p->tok.kind == T_COMMA) {
            advance(p);
            continue;
        }
        if (p->tok.kind != T_RPAREN) return expected(p, "',' or ')'");
        break;
    }
    advance(p);
    node_t n = mk(N_IN, FILTER_CESQL_BOOLEAN);
    n.neg = (uint8_t)neg;
    return emit_stacked(p, n, base);
}

/* AND, OR and XOR share the loosest level and group left to right. A run of the same operator
 * becomes one n-ary node: the value, the short-circuit and the error are those of the left-nested
 * form, and the tree stays shallow for long filters. */
static uint32_t parse_logic_chain(parser_t *p, uint32_t left)
{
    size_t base = p->ns;
    if (push(p, left)) return NONE;
    int cur, op, neg;
    infix(p, &cur, &op, &neg);
    for (;;) {
        int kind;
        if (infix(p, &kind, &op, &neg) != L_LOGIC) break;
        if (kind != cur) {
            uint32_t l = emit_stacked(p, mk(cur, FILTER_CESQL_BOOLEAN), base);
            if (p->lx.rc || push(p, l)) return NONE;
            cur = kind;
        }
        advance(p);
        uint32_t r = parse_expr(p, L_CMP);
        if (p->lx.rc || push(p, r)) return NONE;
    }
    return emit_stacked(p, mk(cur, FILTER_CESQL_BOOLEAN), base);
}

static uint32_t parse_expr(parser_t *p, int min)
{
    if (p->lx.rc || enter(p)) return NONE;
    uint32_t left = parse_unary(p);
    while (!p->lx.rc) {
        int kind, op, neg;
        int lvl = infix(p, &kind, &op, &neg);
        if (lvl == L_NONE || lvl < min) break;
        if (lvl == L_LOGIC) {
            left = parse_logic_chain(p, left);
        } else if (kind == N_LIKE) {
            left = parse_like(p, left, neg);
        } else if (kind == N_IN) {
            left = parse_in(p, left, neg);
        } else {
            advance(p);
            uint32_t right = parse_expr(p, lvl + 1);
            if (p->lx.rc) break;
            uint32_t kids[2] = {left, right};
            node_t n = mk(kind, kind == N_ARITH ? FILTER_CESQL_INTEGER : FILTER_CESQL_BOOLEAN);
            n.op = (uint8_t)op;
            left = emit(p, n, kids, 2);
        }
    }
    p->nesting--;
    return p->lx.rc ? NONE : left;
}

static void parser_fini(parser_t *p)
{
    free(p->nodes);
    free(p->depth);
    free(p->kids);
    free(p->pats);
    free(p->pool);
    free(p->stack);
}

int filter_cesql_compile(const char *expr, size_t len, filter_cesql_t **out, char *err,
                         size_t errlen)
{
    parser_t p;
    memset(&p, 0, sizeof p);
    p.lx.src = expr ? expr : "";
    p.lx.len = expr ? len : 0;
    p.lx.err = err;
    p.lx.errlen = errlen;
    if (err && errlen) err[0] = '\0';
    if (p.lx.len > FILTER_CESQL_MAX_LEN) {
        say(&p, -FILTER_CESQL_E_PARSE, "expression longer than %d bytes", FILTER_CESQL_MAX_LEN);
        return p.lx.rc;
    }
    if (memchr(p.lx.src, '\0', p.lx.len)) {
        say(&p, -FILTER_CESQL_E_PARSE, "syntax error at %zu: NUL byte in expression",
            (size_t)((const char *)memchr(p.lx.src, '\0', p.lx.len) - p.lx.src) + 1);
        return p.lx.rc;
    }
    if (!filter_utf8_valid(p.lx.src, p.lx.len)) {
        say(&p, -FILTER_CESQL_E_PARSE, "expression is not valid UTF-8");
        return p.lx.rc;
    }
    /* Every string the tree keeps (decoded literals, lower-cased names, LIKE runs) is no longer
     * than the source text it came from plus a NUL, so 3 * len bounds the pool. */
    p.pool_cap = 3 * p.lx.len + 16;
    p.pool = malloc(p.pool_cap);
    if (!p.pool) {
        say(&p, -FILTER_CESQL_E_GENERIC, "out of memory");
        return p.lx.rc;
    }
    advance(&p);
    uint32_t root = NONE;
    if (!p.lx.rc) {
        if (p.tok.kind == T_EOF) {
            say(&p, -FILTER_CESQL_E_PARSE, "syntax error at %zu: empty expression", p.lx.len + 1);
        } else {
            root = parse_expr(&p, L_NONE + 1);
            if (!p.lx.rc && p.tok.kind != T_EOF) expected(&p, "an operator or end of expression");
        }
    }
    if (!p.lx.rc && p.fn_err) say(&p, -FILTER_CESQL_E_MISSING_FUNCTION, "%s", p.fn_msg);
    /* The evaluator takes kids + n->kid and pats + n->pat for every call and LIKE node, also with
     * no arguments ("CONCAT()") or an empty pattern (x LIKE ''): without any such array those
     * would be NULL + 0, which is undefined behaviour (found by fuzzing). Never leave them NULL. */
    if (!p.lx.rc && !p.kids) p.kids = malloc(sizeof *p.kids);
    if (!p.lx.rc && !p.pats) p.pats = malloc(sizeof *p.pats);
    filter_cesql_t *e = p.lx.rc || !p.kids || !p.pats ? NULL : calloc(1, sizeof *e);
    if (!p.lx.rc && !e) say(&p, -FILTER_CESQL_E_GENERIC, "out of memory");
    if (p.lx.rc) {
        parser_fini(&p);
        return p.lx.rc;
    }
    e->nodes = p.nodes;
    e->kids = p.kids;
    e->pats = p.pats;
    e->pool = p.pool;
    e->root = root;
    free(p.depth);
    free(p.stack);
    *out = e;
    return 0;
}

void filter_cesql_free(filter_cesql_t *e)
{
    if (!e) return;
    free(e->nodes);
    free(e->kids);
    free(e->pats);
    free(e->pool);
    free(e);
}

filter_cesql_type_t filter_cesql_type(const filter_cesql_t *e)
{
    return (filter_cesql_type_t)e->nodes[e->root].type;
}
