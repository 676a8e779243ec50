/* server/tls: the inbound HTTPS context, its checks, and its reload on SIGHUP.
 *
 * We build the SSL_CTX ourselves rather than through evhtp_ssl_init (1.2.18), which ignores the
 * results of loading the certificate and the key, sets SSL_MODE_RELEASE_BUFFERS as an option, and
 * keeps a pointer to its configuration; libevhtp only reads htp->ssl_ctx when it accepts a
 * connection (SSL_new, which takes its own reference) and frees it in evhtp_free. So a reload is a
 * swap of htp->ssl_ctx: new handshakes get the new context, open connections keep the old one until
 * they close. */
#include "server/tls.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server/log.h"

struct srv_tls {
    char *cert_file, *key_file, *ca_file;
    SSL_CTX *ctx;   /* our reference to the current context */
    char desc[512]; /* the current certificate, for the log */
    evhtp_t *htp;   /* set by srv_tls_attach */
    struct event *ev_hup;
};

/* TLS 1.2: forward secrecy and AEAD only (Mozilla "intermediate" without DHE). TLS 1.3 keeps
 * OpenSSL's default suites, all of which are modern. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls_groups[] = "X25519:P-256:P-384";

/* The reason of the last OpenSSL error, or a generic text; clears the error queue. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown OpenSSL error";
}

/* A key file is read by us, never by a prompt on the terminal: an encrypted key is an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int check_readable(const char *opt, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read --%s %s: %s", opt, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

static void asn1_time_text(const ASN1_TIME *t, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;
    out[0] = '\0';
    if (!b) return;
    if (ASN1_TIME_print(b, t) == 1) n = BIO_read(b, out, (int)outlen - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

/* "subject=... serial=... not_after=..." of a certificate, for the log. */
static void describe(X509 *x, char *out, size_t outlen)
{
    char subject[256] = "", serial[80] = "?", not_after[64];
    ASN1_INTEGER *sn = X509_get_serialNumber(x);
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;

    X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
    if (hex) snprintf(serial, sizeof serial, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    asn1_time_text(X509_get0_notAfter(x), not_after, sizeof not_after);
    snprintf(out, outlen, "subject=\"%s\" serial=%s not_after=\"%s\"", subject, serial, not_after);
}

/* The certificate must be valid now: not expired, not yet to come. */
static int check_validity(const char *path, X509 *x, char *err, size_t errlen)
{
    char when[64];
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        asn1_time_text(X509_get0_notAfter(x), when, sizeof when);
        snprintf(err, errlen, "the certificate in --tls-cert %s has expired (not after %s)", path,
                 when);
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        asn1_time_text(X509_get0_notBefore(x), when, sizeof when);
        snprintf(err, errlen, "the certificate in --tls-cert %s is not valid yet (not before %s)",
                 path, when);
        return -1;
    }
    return 0;
}

static EVP_PKEY *read_key(const char *path, char *err, size_t errlen)
{
    BIO *b = BIO_new_file(path, "r");
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL) : NULL;
    BIO_free(b);
    if (!k)
        snprintf(err, errlen, "no usable PEM private key in --tls-key %s (%s)", path, ssl_reason());
    return k;
}

static int setup_client_ca(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    STACK_OF(X509_NAME) * names;
    if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1 ||
        !(names = SSL_load_client_CA_file(path))) {
        snprintf(err, errlen, "no usable PEM CA certificate in --tls-client-ca %s (%s)", path,
                 ssl_reason());
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return 0;
}

/* A new context from t's files, checked; NULL with err. desc gets the certificate's description. */
static SSL_CTX *build(const srv_tls_t *t, char *desc, size_t desclen, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "hendelse";
    SSL_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf;

    if (check_readable("tls-cert", t->cert_file, err, errlen) != 0 ||
        check_readable("tls-key", t->key_file, err, errlen) != 0 ||
        (t->ca_file && check_readable("tls-client-ca", t->ca_file, err, errlen) != 0))
        return NULL;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, tls_groups) != 1 ||
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) != 1) {
        snprintf(err, errlen, "cannot set up TLS (%s)", ssl_reason());
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* idle keep-alive connections give their buffers back */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);

    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1 ||
        !(leaf = SSL_CTX_get0_certificate(ctx))) {
        snprintf(err, errlen, "no usable PEM certificate in --tls-cert %s (%s)", t->cert_file,
                 ssl_reason());
        goto fail;
    }
    if (check_validity(t->cert_file, leaf, err, errlen) != 0) goto fail;
    if (!(key = read_key(t->key_file, err, errlen))) goto fail;
    if (X509_check_private_key(leaf, key) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen,
                 "the key in --tls-key %s does not match the certificate in --tls-cert %s",
                 t->key_file, t->cert_file);
        goto fail;
    }
    EVP_PKEY_free(key);
    key = NULL;
    if (t->ca_file && setup_client_ca(ctx, t->ca_file, err, errlen) != 0) goto fail;
    describe(leaf, desc, desclen);
    return ctx;

fail:
    EVP_PKEY_free(key);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *p;
    if (!s) return NULL;
    p = strdup(s);
    if (!p) *failed = 1;
    return p;
}

srv_tls_t *srv_tls_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                       char *err, size_t errlen)
{
    srv_tls_t *t = calloc(1, sizeof *t);
    int failed = 0;
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->cert_file = dup_or_null(cert_file, &failed);
    t->key_file = dup_or_null(key_file, &failed);
    t->ca_file = dup_or_null(client_ca_file, &failed);
    if (failed || !t->cert_file || !t->key_file) {
        snprintf(err, errlen, failed ? "out of memory" : "TLS needs --tls-cert and --tls-key");
        srv_tls_free(t);
        return NULL;
    }
    t->ctx = build(t, t->desc, sizeof t->desc, err, errlen);
    if (!t->ctx) {
        srv_tls_free(t);
        return NULL;
    }
    return t;
}

/* Makes ctx the context of new handshakes: htp gets a reference of its own. */
static void install(srv_tls_t *t, SSL_CTX *ctx)
{
    SSL_CTX *old = t->htp->ssl_ctx;
    SSL_CTX_up_ref(ctx);
    t->htp->ssl_ctx = ctx;
    SSL_CTX_free(old); /* connections using it hold their own references */
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    srv_tls_t *t = arg;
    char err[512];
    (void)sig;
    (void)what;
    if (srv_tls_reload(t, err, sizeof err) != 0)
        srv_log(SRV_LOG_ERROR, "tls",
                "reload failed, keeping the current certificate reason=\"%s\"", err);
    else
        srv_log(SRV_LOG_INFO, "tls", "reloaded certificate %s", t->desc);
}

int srv_tls_attach(srv_tls_t *t, evhtp_t *htp, struct event_base *base)
{
    t->htp = htp;
    install(t, t->ctx);
    t->ev_hup = evsignal_new(base, SIGHUP, on_sighup, t);
    if (!t->ev_hup || evsignal_add(t->ev_hup, NULL) != 0) return -1;
    srv_log(SRV_LOG_INFO, "tls", "serving https certificate %s client_ca=%s", t->desc,
            t->ca_file ? t->ca_file : "none");
    return 0;
}

int srv_tls_reload(srv_tls_t *t, char *err, size_t errlen)
{
    char desc[sizeof t->desc];
    SSL_CTX *ctx = build(t, desc, sizeof desc, err, errlen);
    if (!ctx) return -1;
    if (t->htp) install(t, ctx);
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    memcpy(t->desc, desc, sizeof desc);
    return 0;
}

void srv_tls_free(srv_tls_t *t)
{
    if (!t) return;
    if (t->ev_hup) event_free(t->ev_hup);
    SSL_CTX_free(t->ctx);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    free(t);
}
