/* server/fileutil: helpers shared by the loaders of the server's input files. */
#ifndef HENDELSE_SERVER_FILEUTIL_H
#define HENDELSE_SERVER_FILEUTIL_H

#include <stddef.h>

/* Reads the whole file at path, of at most max bytes. Returns a malloc'd NUL-terminated buffer (the
 * caller frees it) with its length in *len, or NULL with a one-line reason naming the file in err.
 */
char *srv_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

/* Writes s[0..n) into out (at most outlen bytes, NUL-terminated) fit for a one-line message:
 * control bytes and quotes replaced, cut at 40 bytes with "...". */
void srv_printable(char *out, size_t outlen, const char *s, size_t n);

#endif
