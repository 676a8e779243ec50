/* filter/cesql_int: what the CESQL compiler, evaluator and built-in functions share. Not a public
 * header: only filter/cesql*.c include it. Its functions carry the filter_cesql_ prefix only
 * because they cross files. */
#ifndef HENDELSE_FILTER_CESQL_INT_H
#define HENDELSE_FILTER_CESQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cesql.h"

typedef filter_cesql_value_t val_t;

/* Node kinds of the compiled tree. */
enum {
    N_LIT,    /* lit */
    N_ATTR,   /* name */
    N_EXISTS, /* name */
    N_NOT,    /* kids[0] */
    N_NEG,    /* kids[0] */
    N_ARITH,  /* op: OP_ADD..OP_MOD; kids[0], kids[1] */
    N_EQ,     /* op: OP_EQ or OP_NE; kids[0], kids[1] */
    N_ORD,    /* op: OP_LT..OP_GE; kids[0], kids[1] */
    N_AND,    /* nkids >= 2, chains of the same operator are flattened */
    N_OR,
    N_XOR,
    N_LIKE, /* kids[0]; pat/npat; neg */
    N_IN,   /* kids[0] is the value, kids[1..] the set; neg */
    N_CALL, /* op: function index; kids are the arguments */
};

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

/* A LIKE pattern, compiled into literal runs and wildcards. */
enum { PAT_LIT, PAT_ONE, PAT_ANY };
typedef struct {
    uint8_t kind;
    uint32_t len; /* PAT_LIT */
    const char *s;
} pat_t;

typedef struct {
    uint8_t kind;
    uint8_t op;
    uint8_t neg;
    uint8_t type; /* static result type (filter_cesql_type_t), ANY for N_ATTR */
    uint32_t kid; /* index of the first child in kids[] */
    uint32_t nkids;
    uint32_t pat; /* N_LIKE: index of the first element in pats[] */
    uint32_t npat;
    val_t lit;        /* N_LIT */
    const char *name; /* N_ATTR, N_EXISTS: lower-case, NUL-terminated */
} node_t;

struct filter_cesql {
    node_t *nodes;
    uint32_t root;
    uint32_t *kids;
    pat_t *pats;
    char *pool; /* every string the nodes point at */
};

/* Scratch memory for one evaluation: a bump allocator over a buffer on the caller's stack, then
 * heap blocks, all released when the evaluation ends. */
typedef struct arena_blk {
    struct arena_blk *next;
    size_t cap;
    char data[];
} arena_blk_t;

typedef struct {
    char *cur;
    size_t left;
    char *first; /* the stack buffer */
    size_t first_cap;
    arena_blk_t *heap;
} arena_t;

/* Returns n bytes of scratch, or NULL when out of memory. */
char *filter_cesql_arena_alloc(arena_t *a, size_t n);

/* Parameter types of a built-in function. ANY means "no implicit cast". */
#define MAX_FIXED_PARAMS 3
typedef struct {
    const char *name; /* upper case */
    uint8_t min_args;
    uint8_t max_args; /* VARIADIC: no maximum */
    uint8_t ret;
    uint8_t nparams;
    uint8_t params[MAX_FIXED_PARAMS]; /* types of the first nparams arguments */
    uint8_t rest;                     /* type of any argument after those */
    /* Computes the result from arguments already cast to their parameter types. Returns 0 or an
     * error kind; always sets *out. */
    int (*fn)(const val_t *args, size_t n, arena_t *a, val_t *out);
} cesql_func_t;

#define VARIADIC 255

extern const cesql_func_t filter_cesql_funcs[];
extern const size_t filter_cesql_n_funcs;

/* Finds a built-in by case-insensitive name; -1 if none. */
int filter_cesql_func_find(const char *name, size_t len);

/* Casts v in place to type t (BOOLEAN, INTEGER, STRING). Returns 0, FILTER_CESQL_E_CAST (v becomes
 * the zero value of t) or FILTER_CESQL_E_GENERIC (out of scratch memory; v becomes the zero value).
 * explicit_cast allows Integer -> Boolean, which an implicit cast refuses. */
int filter_cesql_cast(val_t *v, int t, int explicit_cast, arena_t *a);

/* String -> Integer per spec 3.7: optional sign, decimal digits, 32-bit range. Returns 1 and sets
 * *out, or 0. */
int filter_cesql_parse_int(const char *s, size_t len, int32_t *out);

/* String -> Boolean per spec 3.7: "true"/"false" in any case. Returns 1 and sets *out, or 0. */
int filter_cesql_parse_bool(const char *s, size_t len, int *out);

/* The zero value of a type (Boolean false for ANY). Inline: the evaluator makes one per operator.
 */
static inline val_t filter_cesql_zero(int t)
{
    val_t v = {FILTER_CESQL_BOOLEAN, 0, 0, "", 0, NULL};
    if (t == FILTER_CESQL_INTEGER || t == FILTER_CESQL_STRING) v.type = (filter_cesql_type_t)t;
    return v;
}

/* An implicit cast, with the common case (nothing to do) kept out of the call. */
static inline int filter_cesql_cast_to(val_t *v, int t, arena_t *a)
{
    if (t == FILTER_CESQL_ANY || (int)v->type == t) return 0;
    return filter_cesql_cast(v, t, 0, a);
}

#endif
