/* server/fileutil: helpers shared by the loaders of the server's input files. */
#ifndef HENDELSE_SERVER_FILEUTIL_H
#define HENDELSE_SERVER_FILEUTIL_H

#include <stddef.h>

#include "filter/json.h"

/* Writes a printf-style message into err[errlen] (NUL-terminated); nothing if err is NULL. */
void srv_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads the whole file at path, of at most max bytes. Returns a malloc'd NUL-terminated buffer (the
 * caller frees it) with its length in *len, or NULL with a one-line reason naming the file in err.
 */
char *srv_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Writes s[0..n) into out (at most outlen bytes, NUL-terminated) fit for a one-line message:
 * control bytes and quotes replaced, cut at 40 bytes with "...". */
void srv_printable(char *out, size_t outlen, const char *s, size_t n);

/* Reads a JSON file of at most max bytes whose top level is an object with exactly one member,
 * `member`, holding an array: {"member":[...]}. Returns the parsed document (the caller frees it
 * with filter_json_doc_free) and the array in *list, or NULL with a one-line reason naming the file
 * in err ("F: not valid JSON at byte N: ...", "F: unknown top-level key 'k' (expected member)",
 * "F: missing 'member'", "F: 'member' must be an array", ...). */
filter_json_doc_t *srv_read_json_list(const char *path, size_t max, const char *member,
                                      const filter_json_t **list, char *err, size_t errlen);

#endif
