/* server/params: the query string of a request, decoded as ASP.NET does for Altinn's API, and the
 * values of the `next` links built from it. */
#ifndef HENDELSE_SERVER_PARAMS_H
#define HENDELSE_SERVER_PARAMS_H

#include <stddef.h>

#include "filter/json.h"

/* The most parameters a query may have (more is a 400). */
#define SRV_MAX_PARAMS 64

/* One decoded name=value pair. Both point into the storage of srv_params_parse. */
typedef struct {
    char *name; /* decoded, NUL-terminated */
    char *value;
    size_t value_len;
} srv_param_t;

/* Splits the raw query (may be NULL) into decoded pairs, in order: '+' is a space, %XX a byte, a
 * malformed escape stays as written. The strings live in *storage, which the caller frees (also on
 * failure). Returns the number of pairs, or -1 with more than max pairs or without memory. */
int srv_params_parse(const char *raw, srv_param_t *out, int max, char **storage);

/* Appends a decoded value to a `next` link as it is (Altinn does not re-encode), except bytes that
 * cannot be in a header value, which are percent-encoded. */
void srv_params_link_value(filter_buf_t *b, const char *v, size_t n);

#endif
