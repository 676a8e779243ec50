/* filter/json: a bounded JSON reader over yajl's streaming parser, and a JSON writer.
 *
 * Reader: parses a length-delimited buffer (NUL bytes inside strings are kept: \u0000 decodes to a
 * NUL byte and the length says where the string ends) into an immutable tree allocated from one
 * arena, so freeing is O(1) and never recurses. Comments are rejected, UTF-8 is validated, trailing
 * garbage is an error, nesting depth, input size and node count are limited, duplicate member names
 * in an object are an error. No globals; safe to call from any thread on distinct inputs.
 *
 * Writer: an append-only growable byte buffer with JSON string escaping that validates UTF-8. */
#ifndef HENDELSE_FILTER_JSON_H
#define HENDELSE_FILTER_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FILTER_JSON_NULL = 0,
    FILTER_JSON_FALSE,
    FILTER_JSON_TRUE,
    FILTER_JSON_NUMBER, /* str/len hold the literal as written, e.g. "-1.5e3" */
    FILTER_JSON_STRING, /* str/len hold the decoded UTF-8; str[len] == '\0' */
    FILTER_JSON_ARRAY,
    FILTER_JSON_OBJECT,
} filter_json_type_t;

typedef struct filter_json filter_json_t;

/* A node. Every pointer points into the document's arena and lives until filter_json_free(). */
struct filter_json {
    filter_json_type_t type;
    const char *str; /* NUMBER, STRING */
    size_t len;
    size_t count;                /* ARRAY: items; OBJECT: members */
    const filter_json_t **items; /* ARRAY items, OBJECT member values, in document order */
    const char **keys;           /* OBJECT member names (NUL-terminated decoded UTF-8), in order */
    const size_t *key_lens;      /* OBJECT member name lengths */
    /* ARRAY, OBJECT: the value's exact text in the parsed input (valid JSON, whitespace as
     * written). It points into the caller's buffer, not the document: valid only while that
     * buffer is. NULL for other types. */
    const char *raw;
    size_t raw_len;
};

typedef struct filter_json_doc filter_json_doc_t;

typedef struct {
    size_t max_bytes; /* input longer than this is FILTER_JSON_ETOOBIG; 0 = no limit */
    size_t max_depth; /* containers nested deeper than this are FILTER_JSON_EDEPTH; 0 = 64 */
    size_t max_nodes; /* more values than this is FILTER_JSON_ETOOBIG; 0 = no limit */
} filter_json_limits_t;

enum {
    FILTER_JSON_OK = 0,
    FILTER_JSON_ESYNTAX = -1, /* not JSON (includes comments, bad UTF-8, trailing data, empty) */
    FILTER_JSON_EDEPTH = -2,  /* nested too deeply */
    FILTER_JSON_ETOOBIG = -3, /* over max_bytes or max_nodes */
    FILTER_JSON_EDUPKEY = -4, /* an object has the same member name twice */
    FILTER_JSON_ENOMEM = -5,
};

/* Parses buf[0..len) as one JSON text. On success returns 0 and sets *out to a new document (caller
 * frees with filter_json_doc_free). On failure returns a FILTER_JSON_E* code, leaves *out
 * untouched, and, when err is non-NULL, writes a short human-readable reason (NUL-terminated, at
 * most errlen bytes, e.g. "invalid JSON at byte 17"). lim may be NULL for the defaults. */
int filter_json_parse(const char *buf, size_t len, const filter_json_limits_t *lim,
                      filter_json_doc_t **out, char *err, size_t errlen);

/* The root value of a parsed document; valid until the document is freed. */
const filter_json_t *filter_json_root(const filter_json_doc_t *doc);

/* Frees a document and every node and string in it. NULL is allowed. */
void filter_json_doc_free(filter_json_doc_t *doc);

/* Member lookup by exact name in an OBJECT node; NULL if obj is not an object or has no such
 * member. */
const filter_json_t *filter_json_get(const filter_json_t *obj, const char *name);

/* If n is a NUMBER that is an integer (no fraction or exponent) in int64 range, stores it in *out
 * and returns 1; otherwise returns 0 and leaves *out untouched. */
int filter_json_int64(const filter_json_t *n, int64_t *out);

const char *filter_json_strerror(int code);

/* ---- writer ---- */

/* A growable buffer. Zero-initialise it (filter_buf_t b = {0};) or use filter_buf_init; release
 * with filter_buf_fini. On allocation failure the buffer is marked failed: further appends do
 * nothing and filter_buf_failed() returns 1, so callers can check once at the end. data is
 * NUL-terminated when len > 0 and not failed. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} filter_buf_t;

void filter_buf_init(filter_buf_t *b);
void filter_buf_fini(filter_buf_t *b);
void filter_buf_reset(filter_buf_t *b); /* len = 0, keeps the memory */
int filter_buf_failed(const filter_buf_t *b);
void filter_buf_append(filter_buf_t *b, const void *p, size_t n);
void filter_buf_puts(filter_buf_t *b, const char *s);
void filter_buf_printf(filter_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Takes ownership of the bytes out of b (caller frees with free()); b becomes empty. NULL if
 * failed. */
char *filter_buf_steal(filter_buf_t *b, size_t *len);

/* Appends s[0..n) as a quoted JSON string, escaping '"', '\\', and control characters (as \uXXXX or
 * the short escapes). Returns 0, or -1 if s is not valid UTF-8 (then nothing is appended). */
int filter_buf_json_string(filter_buf_t *b, const char *s, size_t n);

/* As filter_buf_json_string for s[0..n) already known to be valid UTF-8 (a string of a parsed
 * document, which the reader has checked, or ASCII): it is not checked again. */
void filter_buf_json_string_valid(filter_buf_t *b, const char *s, size_t n);

/* Makes room for n more bytes (and the NUL) so that appends up to that much allocate nothing.
 * 0, or -1 when the buffer is (now) failed. */
int filter_buf_reserve(filter_buf_t *b, size_t n);

/* Appends json[0..len), which must be valid JSON text (e.g. a node's raw), without the whitespace
 * outside strings: the compact form, far cheaper than re-serialising a node. */
void filter_buf_json_compact(filter_buf_t *b, const char *json, size_t len);

/* Appends the compact JSON serialisation of a node (strings re-escaped, numbers as written). */
void filter_buf_json_value(filter_buf_t *b, const filter_json_t *v);

/* Returns 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF), else 0. */
int filter_utf8_valid(const char *s, size_t n);

#endif
