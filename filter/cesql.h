/* filter/cesql: CloudEvents SQL Expression Language (CESQL 1.0): compile once, evaluate many times.
 *
 * Pure: no I/O, no clocks, no globals. A compiled expression is immutable, so one expression may be
 * evaluated from several threads at once. Evaluation never parses and allocates only when a String
 * computed on the way (CONCAT, LOWER, ...) outgrows a small buffer on the stack.
 *
 * Language notes (where the spec leaves a choice, or where its test kit decides):
 * - Keywords, boolean literals, function names and attribute names are case-insensitive; attribute
 *   names are looked up in lower case. Identifiers are [A-Za-z0-9]+, function names
 * [A-Za-z][A-Za-z_]*.
 * - Precedence (spec 3.6), tightest first: function call; NOT and unary -; LIKE; EXISTS; IN; * / %;
 *   + -; comparisons; AND OR XOR. Operators of equal precedence group left to right, as the spec's
 *   text says (the informative ANTLR grammar groups AND/OR/XOR to the right); so a AND b OR c is
 *   (a AND b) OR c. Parentheses are the way to say anything else.
 * - Integer literals are 32-bit; "-2147483648" is a literal (a '-' directly before a number folds
 *   into it). Strings: '...' or "..."; \' \" and \\ stand for the character, a doubled delimiter
 *   ('' inside '...') for one delimiter; any other backslash pair is kept as written, so LIKE
 *   patterns keep their \% and \_ escapes. The LIKE pattern must be a string literal.
 * - Errors follow "fail fast" per operand: an operator whose operand returns an error stops and
 *   returns the zero value of its own result type (false, 0, "") with that error; AND and OR still
 *   short-circuit first. An operator's own failure (a cast of an operand, a division by zero, a bad
 *   function argument) yields the value the spec defines for it, and evaluation goes on with it:
 *   NOT 10 is TRUE with a cast error. The first error is the one reported.
 * - Implicit casts follow spec 3.7; Integer -> Boolean is a cast error when implicit (as the test
 * kit requires: NOT 10), and allowed through BOOL(x). Integer overflow of + - * and unary - is a
 * math error: + - * return 0, unary - of -2147483648 returns 2147483647 (as ABS does).
 * - IN compares left to right with = semantics (elements cast to the left operand's type) and stops
 *   at the first equal element.
 * - Built-in functions: LENGTH, CONCAT, CONCAT_WS, LOWER, UPPER, TRIM, LEFT, RIGHT, SUBSTRING (2
 * and 3 arguments), ABS, and the casts INT, BOOL, STRING with IS_BOOL, IS_INT. Lengths and
 * positions count Unicode code points. LOWER/UPPER map ASCII, Latin-1, Latin Extended-A, Greek and
 * Cyrillic letters (simple one-to-one mappings); other characters are left as they are. TRIM
 * removes Unicode White_Space characters. */
#ifndef HENDELSE_FILTER_CESQL_H
#define HENDELSE_FILTER_CESQL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The error kinds of the spec (3.3). filter_cesql_eval returns one of them (0 = no error);
 * filter_cesql_compile returns minus one of them (PARSE, MISSING_FUNCTION or GENERIC). */
enum {
    FILTER_CESQL_OK = 0,
    FILTER_CESQL_E_PARSE = 1,
    FILTER_CESQL_E_MATH = 2,
    FILTER_CESQL_E_CAST = 3,
    FILTER_CESQL_E_MISSING_FUNCTION = 4,
    FILTER_CESQL_E_FUNCTION_EVALUATION = 5,
    FILTER_CESQL_E_MISSING_ATTRIBUTE = 6,
    FILTER_CESQL_E_GENERIC = 7, /* also: out of memory */
};

/* Limits checked by filter_cesql_compile (a parse error beyond them). They bound the recursion of
 * both the parser and the evaluator. */
enum {
    FILTER_CESQL_MAX_LEN = 65536, /* bytes of expression text */
    FILTER_CESQL_MAX_DEPTH = 128, /* nesting of sub-expressions */
    FILTER_CESQL_MAX_NODES = 4096,
};

typedef enum {
    FILTER_CESQL_ANY = 0, /* only from filter_cesql_type: known at evaluation time */
    FILTER_CESQL_BOOLEAN = 1,
    FILTER_CESQL_INTEGER = 2,
    FILTER_CESQL_STRING = 3,
} filter_cesql_type_t;

/* A CESQL value. Which member is meaningful depends on type: b (0 or 1) for BOOLEAN, i for INTEGER,
 * s/len for STRING (UTF-8, not necessarily NUL-terminated). owned is private to filter_cesql_eval.
 */
typedef struct {
    filter_cesql_type_t type;
    int b;
    int32_t i;
    const char *s;
    size_t len;
    char *owned;
} filter_cesql_value_t;

typedef struct filter_cesql filter_cesql_t;

/* Attribute accessor. name is the attribute's lower-case name, NUL-terminated. Returns 1 and fills
 * *out (type and value; owned untouched) when the event has the attribute, 0 when it does not. A
 * String it returns must stay valid until the filter_cesql_eval/matches call that asked returns. */
typedef int (*filter_cesql_attr_fn)(void *ctx, const char *name, filter_cesql_value_t *out);

/* Compiles expr[0..len) (UTF-8; NUL bytes are not allowed in it). Parses, resolves every function
 * and checks its number of arguments, so nothing of this is left for evaluation. On success returns
 * 0 and sets *out (free with filter_cesql_free). On failure returns -FILTER_CESQL_E_PARSE (syntax,
 * limits: "syntax error at 12: expected ')'", positions are 1-based byte offsets),
 * -FILTER_CESQL_E_MISSING_FUNCTION ("unknown function FOO", "function LEFT takes 2 arguments, got
 * 1") or -FILTER_CESQL_E_GENERIC ("out of memory"), leaves *out untouched and, when err is not
 * NULL, writes the message (NUL-terminated, at most errlen bytes). */
int filter_cesql_compile(const char *expr, size_t len, filter_cesql_t **out, char *err,
                         size_t errlen);

/* Frees a compiled expression. NULL is allowed. */
void filter_cesql_free(filter_cesql_t *e);

/* The static result type of the expression: BOOLEAN, INTEGER or STRING, or ANY when it is a bare
 * attribute reference, whose type comes from the event. */
filter_cesql_type_t filter_cesql_type(const filter_cesql_t *e);

/* Evaluates e against the attributes fn reports (ctx is passed through). Always fills *result (its
 * owned member included); returns 0 or the first error kind met (FILTER_CESQL_E_*), with result
 * holding the value the spec prescribes then (e.g. 5 / 0 gives Integer 0 and FILTER_CESQL_E_MATH; a
 * missing attribute gives the zero value of the enclosing operator's type and
 * FILTER_CESQL_E_MISSING_ATTRIBUTE). A String result points into e (a literal), into memory fn
 * returned, or into memory owned by *result: call filter_cesql_value_fini(result) when done (a
 * no-op for other results). Allocates when a string computed on the way outgrows the stack buffer
 * (freed before returning) and for the owned copy of a computed String result; if an allocation
 * fails the error is FILTER_CESQL_E_GENERIC. */
int filter_cesql_eval(const filter_cesql_t *e, filter_cesql_attr_fn fn, void *ctx,
                      filter_cesql_value_t *result);

/* Releases what filter_cesql_eval may have allocated for a String result. Safe on any value. */
void filter_cesql_value_fini(filter_cesql_value_t *v);

/* The filter use (spec 1.2 and the Subscriptions API 'sql' dialect): returns 1 when the expression
 * evaluates to Boolean TRUE with no error, else 0. A result of another type does not match, not
 * even the String "true": the spec says a filter's output MUST be a Boolean, and no cast is
 * applied. Errors are not reported (the filter just does not match); use filter_cesql_eval to see
 * them. Allocates nothing unless a string computed on the way outgrows the stack buffer; a failed
 * allocation is an error, so no match. */
int filter_cesql_matches(const filter_cesql_t *e, filter_cesql_attr_fn fn, void *ctx);

/* A ready-made accessor for a filter_event_t (pass the event as ctx). Core attributes are Strings
 * (time as normalised by filter/event); extensions are typed by their JSON kind: Boolean, Integer
 * or String. data is not an attribute. */
int filter_cesql_event_attr(void *ctx, const char *name, filter_cesql_value_t *out);

/* The test kit's name for an error kind ("parse", "math", "cast", "missingFunction",
 * "functionEvaluation", "missingAttribute", "generic"); accepts the negative compile codes too;
 * "" for 0. */
const char *filter_cesql_strerror(int code);

#endif
