/* server/binary: binary-mode CloudEvents (HTTP binding §3.1) without HTTP: the ce- headers are the
 * attributes, the body is the data and Content-Type its datacontenttype. Pure (no libevhtp, no
 * I/O), so that it can be tested and fuzzed on its own; publish.c hands it the request's headers.
 */
#ifndef HENDELSE_SERVER_BINARY_H
#define HENDELSE_SERVER_BINARY_H

#include <stddef.h>

#include "filter/event.h"

/* One request header as received: name and value are not NUL-terminated. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* may be NULL when value_len is 0 */
    size_t value_len;
} srv_header_t;

/* Assembles the event from the headers (those named ce-*, case-insensitively; the others are
 * ignored), the Content-Type value (NUL-terminated, or NULL when the request has none) and the
 * body, and runs it through filter_event_parse like a structured event. Header values are
 * percent-decoded (§3.1.3.2) and must then be UTF-8. A JSON Content-Type (application/json,
 * text/json, +json) makes the body the JSON value of data, another text/ type a string, anything
 * else (or none, with a body) data_base64. Returns a filter_event_rc_t code with *out and msg as
 * filter_event_parse has them. */
int srv_binary_event(const srv_header_t *headers, size_t n, const char *content_type,
                     const char *body, size_t len, filter_event_t **out, char *msg, size_t msglen);

#endif
