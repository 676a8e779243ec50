/* server/tls: inbound HTTPS. Builds the OpenSSL server context from PEM files (TLS 1.2 and 1.3
 * only, modern ciphers, no compression, no renegotiation, optional client certificates), hands it
 * to libevhtp, and swaps in a freshly loaded one on SIGHUP. */
#ifndef HENDELSE_SERVER_TLS_H
#define HENDELSE_SERVER_TLS_H

#include <stddef.h>

#include <event2/event.h>
#include "server/evhtp_inc.h"

typedef struct srv_tls srv_tls_t;

/* Loads the server's TLS context: cert_file holds the certificate (optionally followed by its
 * chain), key_file its private key, client_ca_file NULL or the CA(s) that client certificates must
 * chain to (mutual TLS: a handshake without a valid client certificate fails). The certificate must
 * be valid now and the key must match it. The paths are copied. Returns a new object (release with
 * srv_tls_free), or NULL with one line in err. */
srv_tls_t *srv_tls_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                       char *err, size_t errlen);

/* Makes htp serve TLS with t's context (new connections handshake with it) and watches SIGHUP on
 * base to reload it. htp holds its own reference to the context (evhtp_free releases it); t must
 * outlive base's loop. Returns 0 or -1. */
int srv_tls_attach(srv_tls_t *t, evhtp_t *htp, struct event_base *base);

/* Reads the files again and, if they pass the checks of srv_tls_new, makes the new context the one
 * that new handshakes use; connections already open keep theirs. Returns 0, or -1 with one line in
 * err (the current context stays). */
int srv_tls_reload(srv_tls_t *t, char *err, size_t errlen);

/* Releases t, its SIGHUP event and its reference to the context. NULL is allowed. */
void srv_tls_free(srv_tls_t *t);

#endif
