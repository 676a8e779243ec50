/* filter/event: the CloudEvent model: parse, validate (CloudEvents 1.0 + Altinn rules), normalise
 * and serialise. Pure: no I/O, no clocks, no globals. */
#ifndef HENDELSE_FILTER_EVENT_H
#define HENDELSE_FILTER_EVENT_H

#include <stddef.h>
#include "json.h"

/* The JSON kind an extension value had before it was coerced to a string; CESQL uses it to type the
 * attribute (Boolean, Integer or String). Zero is a string, so zero-initialised entries stay
 * strings. */
typedef enum {
    FILTER_EXT_STRING = 0,
    FILTER_EXT_BOOLEAN,
    FILTER_EXT_INTEGER, /* value is the decimal text of a 32-bit signed integer */
} filter_ext_kind_t;

/* One extension attribute, value coerced to a string (JSON strings as is, true/false as
 * "true"/"false", integers as their decimal text); kind says which it was. */
typedef struct {
    const char *name;
    const char *value;
    filter_ext_kind_t kind;
} filter_ext_t;

/* A validated, normalised event. Every string is NUL-terminated, free of control characters and
 * owned by the event (one allocation block freed by filter_event_free). Optional attributes are
 * NULL when absent. */
typedef struct filter_event {
    const char *specversion; /* always "1.0" */
    const char *id;
    const char *source;
    const char *type;
    const char *subject;
    const char
        *time; /* RFC 3339 normalised to UTC with 'Z', fraction kept as written; NULL if absent */
    const char *dataschema;
    const char *datacontenttype; /* "application/json" when data is present and it was absent */
    /* Altinn extensions, also present in exts[] */
    const char *resource; /* never NULL after a successful parse */
    const char *resourceinstance;
    const char *alternativesubject;
    const filter_ext_t *exts; /* every extension attribute (resource etc. included), input order */
    size_t n_exts;
    /* The data: either data_json (the compact JSON text of "data") or data_base64 (the string), or
     * neither. */
    const char *data_json;
    size_t data_json_len;
    const char *data_base64;
    /* The canonical structured-mode JSON of the whole event (compact, normalised time, coerced
     * extensions, datacontenttype default applied). This is what is stored and delivered. */
    const char *json;
    size_t json_len;
} filter_event_t;

typedef enum {
    FILTER_EVENT_OK = 0,
    FILTER_EVENT_EINVALID = -1, /* JSON or CloudEvents validation error: HTTP 400 with
                                   errors.RequestBody = [msg] */
    FILTER_EVENT_EALTINN = -2,  /* an Altinn rule (resource): HTTP 400 with detail = msg */
    FILTER_EVENT_ETOOBIG = -3,  /* over max_bytes: HTTP 413 */
    FILTER_EVENT_ENOMEM = -4,
} filter_event_rc_t;

typedef struct {
    size_t max_bytes; /* the body limit (--max-event-bytes); 0 = no limit */
    size_t max_depth; /* JSON nesting limit; 0 = 64 */
} filter_event_limits_t;

/* Parses and validates one structured-mode CloudEvent from buf[0..len). On success returns 0 and
 * sets *out (caller frees with filter_event_free). On failure returns a filter_event_rc_t code,
 * leaves *out untouched and writes the message for the client into msg (NUL-terminated, at most
 * msglen bytes). Messages: a missing required attribute gives "CloudEvent is missing required
 * attributes: id" (names comma-separated when several); the Altinn resource rules give exactly "A
 * 'resource' property must be defined." and "'Resource' must be a valid urn.". */
int filter_event_parse(const char *buf, size_t len, const filter_event_limits_t *lim,
                       filter_event_t **out, char *msg, size_t msglen);

/* As filter_event_parse, from an already parsed JSON value (used for batches): a value of a
 * document from filter_json_parse, whose strings are known to be valid UTF-8. */
int filter_event_from_json(const filter_json_t *obj, filter_event_t **out, char *msg,
                           size_t msglen);

void filter_event_free(filter_event_t *ev);

/* Returns the value of the named attribute (core or extension) or NULL. */
const char *filter_event_attr(const filter_event_t *ev, const char *name);

#endif
