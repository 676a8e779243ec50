/* filter/dialect: CloudEvents Subscriptions API filters (subscriptions/spec.md 3.2.4): a JSON array
 * of filter objects compiled into one predicate that holds when every filter in the array holds.
 *
 * Dialects: {"exact": {attr: value, ...}}, {"prefix": {...}}, {"suffix": {...}} (every pair must
 * hold; values are non-empty strings compared case-sensitively with the attribute's string form:
 * Integers in decimal, Booleans as "true"/"false"; a missing attribute does not match),
 * {"all": [filter, ...]}, {"any": [filter, ...]} (non-empty arrays), {"not": filter}, and
 * {"sql": "<CESQL expression>"} (compiled once with filter_cesql_compile; holds per
 * filter_cesql_matches: Boolean TRUE without error). An empty top-level array holds for every
 * event.
 *
 * Pure: no I/O, no clocks, no globals. A compiled predicate is immutable and may be matched from
 * several threads at once. */
#ifndef HENDELSE_FILTER_DIALECT_H
#define HENDELSE_FILTER_DIALECT_H

#include <stddef.h>

#include "cesql.h"
#include "json.h"

typedef struct filter_dialect filter_dialect_t;

enum {
    FILTER_DIALECT_OK = 0,
    FILTER_DIALECT_EINVALID = -1, /* the filters are wrong; err says what and where */
    FILTER_DIALECT_ENOMEM = -2,
};

/* Limits, checked before anything is built for the part beyond them. */
enum {
    FILTER_DIALECT_MAX_DEPTH = 16,  /* filter objects nested in all/any/not, the top level is 1 */
    FILTER_DIALECT_MAX_NODES = 256, /* filter objects in all */
};

/* Compiles array (a JSON array of filter objects; the caller keeps ownership, and may free it once
 * this returns). On success returns 0 and sets *out (free with filter_dialect_free). On failure
 * returns FILTER_DIALECT_EINVALID or FILTER_DIALECT_ENOMEM, leaves *out untouched and writes into
 * err (NUL-terminated, at most errlen bytes, valid UTF-8) where and what, e.g.
 * "filters[1].any[0]: unknown filter dialect 'foo'", "filters[0]: 'exact' needs an object of string
 * values", "filters[0]: 'sql': syntax error at 12: expected ')' but found end of expression",
 * "filters[0]: more than one dialect key in one filter object ('exact', 'prefix')". */
int filter_dialect_compile(const filter_json_t *array, filter_dialect_t **out, char *err,
                           size_t errlen);

/* Returns 1 when the event whose attributes fn reports (ctx passed through) passes every filter,
 * else 0. */
int filter_dialect_match(const filter_dialect_t *d, filter_cesql_attr_fn fn, void *ctx);

/* Frees a compiled predicate. NULL is allowed. */
void filter_dialect_free(filter_dialect_t *d);

#endif
