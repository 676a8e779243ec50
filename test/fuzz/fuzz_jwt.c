/* Fuzz target: the JWT parser and verifier (server/jwt.c), with two keys: an HS256 secret and a
 * P-256 public key (ES256; its private key, made at start, signs tokens of mode 3).
 *
 * The first input byte picks how the rest becomes a token:
 *   0 (mod 4)  the rest is the token as it would follow "Bearer "
 *   1          the rest is a claims text, signed with the HS256 key by srv_jwt_sign_hs256
 *   2          the rest is "header\nclaims": both base64url-encoded as given and signed with
 *              HMAC-SHA256 and the key here, so the fuzzer controls a correctly signed header
 *   3          the rest is a claims text, signed with the P-256 key by srv_jwt_sign_pkey (ES256)
 * and the token is verified in SRV_JWT_UNVERIFIED and SRV_JWT_VERIFY modes at a fixed time.
 * Checks:
 * - VERIFY accepting a token implies the header's alg is exactly "HS256" or "ES256" with no
 *   "crit", and that UNVERIFIED accepts it too with the same claims;
 * - a token signed with a key (1, 3, and 2 with alg HS256 and no crit) gets the same answer in
 *   both modes; with the first signature character changed, VERIFY refuses it (ESIG);
 * - a failed verify leaves the claims zeroed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "filter/json.h"
#include "server/jwt.h"
#include "fuzz.h"

#define NOW 1700000000
static const char secret[] = "fuzz-secret-0123456789abcdef0123456789";
static srv_jwt_keys_t *keys;
static EVP_PKEY *eckey;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[64], err[256];
    int fd = memfd_create("hs256", 0);
    if (fd < 0 || write(fd, secret, sizeof secret - 1) != (ssize_t)(sizeof secret - 1)) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    keys = srv_jwt_keys_new();
    if (!keys || srv_jwt_keys_add_hs256_file(keys, path, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
    close(fd);

    /* a P-256 key pair: the public half as a PEM "file" for the key set */
    eckey = EVP_EC_gen("P-256");
    fd = memfd_create("es256", 0);
    FILE *f = fd >= 0 ? fdopen(dup(fd), "w") : NULL;
    if (!eckey || !f || PEM_write_PUBKEY(f, eckey) != 1 || fclose(f) != 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (srv_jwt_keys_add_public_key_file(keys, path, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_jwt: %s\n", err);
        abort();
    }
    close(fd);
    return 0;
}

static int streq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static void claims_equal(const srv_claims_t *a, const srv_claims_t *b)
{
    FUZZ_CHECK(streq(a->scope, b->scope) && streq(a->org, b->org) && streq(a->orgno, b->orgno) &&
               streq(a->userid, b->userid) && streq(a->partyid, b->partyid) &&
               streq(a->systemuser, b->systemuser) && streq(a->iss, b->iss) &&
               streq(a->app, b->app) && a->exp == b->exp && a->nbf == b->nbf);
}

static int is_zero(const srv_claims_t *c)
{
    static const srv_claims_t z;
    return memcmp(c, &z, sizeof z) == 0;
}

static char *b64url(const unsigned char *p, size_t n, char *o)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = al[v >> 18 & 63], *o++ = al[v >> 12 & 63], *o++ = al[v >> 6 & 63], *o++ = al[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = al[v >> 18 & 63], *o++ = al[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = al[v >> 18 & 63], *o++ = al[v >> 12 & 63], *o++ = al[v >> 6 & 63];
    }
    return o;
}

/* 1 if the header's alg is exactly "HS256", 2 if "ES256" (what the keys accept), and it has no
 * crit; else 0. */
static int header_alg(const char *tok, size_t len)
{
    const char *dot = memchr(tok, '.', len);
    if (!dot) return 0;
    size_t n = (size_t)(dot - tok);
    unsigned char *raw = malloc(n + 4);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = memchr(al, tok[i], 64);
        if (!p || !tok[i]) {
            free(raw);
            return 0;
        }
        acc = acc << 6 | (uint32_t)(p - al);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (unsigned char)(acc >> bits);
        }
    }
    filter_json_doc_t *doc;
    int ok = 0;
    if (filter_json_parse((const char *)raw, o, NULL, &doc, NULL, 0) == 0) {
        const filter_json_t *alg = filter_json_get(filter_json_root(doc), "alg");
        if (alg && alg->type == FILTER_JSON_STRING && alg->len == 5 &&
            !filter_json_get(filter_json_root(doc), "crit"))
            ok = memcmp(alg->str, "HS256", 5) == 0 ? 1 : memcmp(alg->str, "ES256", 5) == 0 ? 2 : 0;
        filter_json_doc_free(doc);
    }
    free(raw);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int how = data[0] % 4;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    char *tok = NULL;
    size_t len = 0;
    int signed_by_us = 0;

    if (how == 0) {
        tok = malloc(n + 1);
        memcpy(tok, in, n);
        tok[n] = '\0';
        len = n;
    } else if (how == 1) {
        tok = srv_jwt_sign_hs256((const unsigned char *)secret, sizeof secret - 1, in, n);
        FUZZ_CHECK(tok != NULL);
        len = strlen(tok);
        signed_by_us = 1;
    } else if (how == 3) {
        char err[128];
        tok = srv_jwt_sign_pkey(eckey, in, n, err, sizeof err);
        FUZZ_CHECK(tok != NULL);
        len = strlen(tok);
        signed_by_us = 1;
    } else {
        const char *nl = memchr(in, '\n', n);
        size_t hl = nl ? (size_t)(nl - in) : n, cl = nl ? n - hl - 1 : 0;
        tok = malloc((n + 3) / 3 * 4 + 64);
        char *o = b64url((const unsigned char *)in, hl, tok);
        *o++ = '.';
        o = b64url((const unsigned char *)in + hl + (nl ? 1 : 0), cl, o);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        FUZZ_CHECK(HMAC(EVP_sha256(), secret, (int)sizeof secret - 1, (unsigned char *)tok,
                        (size_t)(o - tok), mac, &maclen));
        *o++ = '.';
        o = b64url(mac, maclen, o);
        *o = '\0';
        len = (size_t)(o - tok);
        signed_by_us = header_alg(tok, len) == 1; /* HMAC-signed: right only for HS256 */
    }

    srv_claims_t cu, cv;
    int ru = srv_jwt_verify(tok, len, keys, SRV_JWT_UNVERIFIED, NOW, &cu);
    int rv = srv_jwt_verify(tok, len, keys, SRV_JWT_VERIFY, NOW, &cv);
    FUZZ_CHECK(ru <= 0 && ru >= SRV_JWT_EIO && rv <= 0 && rv >= SRV_JWT_EIO);
    FUZZ_CHECK(srv_jwt_strerror(ru) && srv_jwt_strerror(rv));
    if (ru != 0) FUZZ_CHECK(is_zero(&cu));
    if (rv != 0) FUZZ_CHECK(is_zero(&cv));
    if (rv == 0) {
        FUZZ_CHECK(header_alg(tok, len) != 0);
        FUZZ_CHECK(ru == 0);
        claims_equal(&cu, &cv);
        (void)srv_claims_has_scope(&cv, "altinn:events.publish");
    }
    if (signed_by_us) {
        /* the signature is right: only the claims decide, the same way in both modes */
        if (ru != rv) {
            fprintf(stderr, "signed token %s: unverified %s, verify %s\n", tok,
                    srv_jwt_strerror(ru), srv_jwt_strerror(rv));
            FUZZ_CHECK(0);
        }
        if (rv == 0) {
            char *sig = strrchr(tok, '.') + 1;
            srv_claims_t cx;
            sig[0] = sig[0] == 'A' ? 'B' : 'A';
            int rx = srv_jwt_verify(tok, len, keys, SRV_JWT_VERIFY, NOW, &cx);
            FUZZ_CHECK(rx == SRV_JWT_ESIG);
            FUZZ_CHECK(is_zero(&cx));
        }
    }
    srv_claims_fini(&cu);
    srv_claims_fini(&cv);
    free(tok);
    return 0;
}
