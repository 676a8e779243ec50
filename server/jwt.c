/* server/jwt: JWT verification and HS256 minting. See jwt.h for the contract.
 *
 * Verification order matters: the header is parsed only far enough to pick the algorithm, the
 * signature is checked over the raw "header.payload" text, and only then are the claims decoded. A
 * token's alg is never trusted to choose *how* a key is used: every key carries its own type, and a
 * key type accepts exactly one alg, so an HS256 token can never be checked with a public key's
 * bytes (the classic RS256→HS256 confusion) and "none" never matches anything. */
#include "server/jwt.h"

#include "filter/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

/* Limits on what a request controls, checked before anything is allocated from it. A real Altinn
 * token is a few KiB; 16 KiB of JSON per part leaves generous room. */
#define PART_MAX_DECODED (16 * 1024)
#define PART_MAX_ENCODED ((PART_MAX_DECODED / 3 + 1) * 4)
#define SIG_MAX_DECODED 1024 /* RSA-8192 is 1024 bytes; anything longer is not a signature */
#define SIG_MAX_ENCODED ((SIG_MAX_DECODED / 3 + 1) * 4)
#define JSON_MAX_DEPTH 16
#define JSON_MAX_NODES 2048
#define SECRET_FILE_MAX (64 * 1024)

typedef enum {
    KEY_HS256 = 0, /* a shared secret */
    KEY_RSA_PUB,   /* an RSA public key (>= 2048 bits) */
    KEY_EC_P256,   /* a P-256 public key */
} key_type_t;

/* The allow-list: the one alg each key type verifies. Adding a type (say, Ed25519) means one row
 * here and one case in verify_with_key; nothing else decides which alg a key accepts. */
static const struct {
    key_type_t type;
    const char *alg;
} alg_for_key[] = {
    {KEY_HS256, "HS256"},
    {KEY_RSA_PUB, "RS256"},
    {KEY_EC_P256, "ES256"},
};

typedef struct {
    key_type_t type;
    unsigned char *secret; /* KEY_HS256 */
    size_t secret_len;
    EVP_PKEY *pkey; /* KEY_RSA_PUB, KEY_EC_P256 */
} jwt_key_t;

struct srv_jwt_keys {
    jwt_key_t *v;
    size_t n, cap;
};

static const char *key_alg(key_type_t t)
{
    for (size_t i = 0; i < sizeof alg_for_key / sizeof alg_for_key[0]; i++)
        if (alg_for_key[i].type == t) return alg_for_key[i].alg;
    return NULL;
}

srv_jwt_keys_t *srv_jwt_keys_new(void)
{
    return calloc(1, sizeof(srv_jwt_keys_t));
}

void srv_jwt_keys_free(srv_jwt_keys_t *keys)
{
    if (!keys) return;
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->v[i].secret) {
            OPENSSL_cleanse(keys->v[i].secret, keys->v[i].secret_len);
            free(keys->v[i].secret);
        }
        EVP_PKEY_free(keys->v[i].pkey);
    }
    free(keys->v);
    free(keys);
}

/* Appends k; on failure the caller still owns k's resources. */
static int keys_push(srv_jwt_keys_t *keys, const jwt_key_t *k)
{
    if (keys->n == keys->cap) {
        size_t cap = keys->cap ? keys->cap * 2 : 4;
        jwt_key_t *v = realloc(keys->v, cap * sizeof *v);
        if (!v) return SRV_JWT_ENOMEM;
        keys->v = v;
        keys->cap = cap;
    }
    keys->v[keys->n++] = *k;
    return SRV_JWT_OK;
}

/* ---- key files ---- */

int srv_jwt_read_secret_file(const char *path, unsigned char **out, size_t *out_len, char *err,
                             size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return SRV_JWT_EIO;
    }
    /* Read up to one byte past the limit instead of trusting st_size, so pipes and /proc files
     * behave and a file growing under us cannot overrun the buffer. */
    unsigned char *buf = malloc(SECRET_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory reading %s", path);
        return SRV_JWT_ENOMEM;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, len);
            free(buf);
            return SRV_JWT_EIO;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > SECRET_FILE_MAX) {
            snprintf(err, errlen, "secret file %s is larger than %d bytes", path, SECRET_FILE_MAX);
            close(fd);
            OPENSSL_cleanse(buf, len);
            free(buf);
            return SRV_JWT_EIO;
        }
    }
    close(fd);
    /* Editors and `echo` add a newline the secret does not mean to contain; strip exactly one so a
     * secret that really ends in whitespace can still be expressed. */
    if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
        len -= 2;
    else if (len >= 1 && buf[len - 1] == '\n')
        len -= 1;
    if (len == 0) {
        snprintf(err, errlen, "secret file %s is empty", path);
        free(buf);
        return SRV_JWT_EIO;
    }
    *out = buf;
    *out_len = len;
    return SRV_JWT_OK;
}

int srv_jwt_keys_add_hs256_file(srv_jwt_keys_t *keys, const char *path, char *err, size_t errlen)
{
    jwt_key_t k = {.type = KEY_HS256};
    int rc = srv_jwt_read_secret_file(path, &k.secret, &k.secret_len, err, errlen);
    if (rc != SRV_JWT_OK) return rc;
    rc = keys_push(keys, &k);
    if (rc != SRV_JWT_OK) {
        OPENSSL_cleanse(k.secret, k.secret_len);
        free(k.secret);
        if (err && errlen) snprintf(err, errlen, "out of memory adding %s", path);
    }
    return rc;
}

/* Classifies a key for JWS use: RS256 for RSA of at least 2048 bits, ES256 for P-256. Returns 0 and
 * sets *type, or -1 with a reason. Shared by public-key loading here and private keys in token.c.
 */
static int pkey_alg(EVP_PKEY *pkey, const char **alg, char *err, size_t errlen)
{
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            snprintf(err, errlen, "RSA key has %d bits; at least 2048 are required",
                     EVP_PKEY_get_bits(pkey));
            return -1;
        }
        *alg = "RS256";
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64];
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) != 1) {
            snprintf(err, errlen, "EC key without a named curve");
            return -1;
        }
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0) {
            snprintf(err, errlen, "EC key on curve %s; only P-256 (ES256) is supported", group);
            return -1;
        }
        *alg = "ES256";
        return 0;
    }
    snprintf(err, errlen, "unsupported key type %s (RSA or P-256 EC expected)",
             EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    return -1;
}

int srv_jwt_keys_add_public_key_file(srv_jwt_keys_t *keys, const char *path, char *err,
                                     size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return SRV_JWT_EIO;
    }
    EVP_PKEY *pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey) {
        snprintf(err, errlen, "%s: not a PEM public key (\"BEGIN PUBLIC KEY\")", path);
        return SRV_JWT_EIO;
    }
    const char *alg = NULL;
    char why[160];
    if (pkey_alg(pkey, &alg, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        EVP_PKEY_free(pkey);
        return SRV_JWT_EIO;
    }
    jwt_key_t k = {.type = strcmp(alg, "RS256") == 0 ? KEY_RSA_PUB : KEY_EC_P256, .pkey = pkey};
    int rc = keys_push(keys, &k);
    if (rc != SRV_JWT_OK) {
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "out of memory adding %s", path);
    }
    return rc;
}

/* ---- base64url ---- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

static char *b64url_encode(const void *data, size_t n, size_t *out_len)
{
    const unsigned char *p = data;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3) return NULL;
    size_t cap = (n + 2) / 3 * 4 + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    if (out_len) *out_len = o;
    return out;
}

/* Decodes unpadded base64url s[0..n) into out (room for n*3/4 bytes). Rejects '=', characters
 * outside the alphabet, an impossible length (n % 4 == 1) and non-zero leftover bits, so each byte
 * string has exactly one accepted encoding. Returns the decoded length or -1. */
static long b64url_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return -1; /* leftover bits must be zero */
    return (long)o;
}

/* ---- minting ---- */

/* Returns a malloc'd "b64(header).b64(claims)" with room for sig_room more characters, and its
 * length in *inlen. */
static char *signing_input(const char *alg, const char *claims_json, size_t claims_len,
                           size_t sig_room, size_t *inlen)
{
    char header[64];
    int n = snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    if (n < 0 || (size_t)n >= sizeof header) return NULL;
    size_t hlen, clen;
    char *h = b64url_encode(header, (size_t)n, &hlen);
    char *c = b64url_encode(claims_json, claims_len, &clen);
    char *tok = NULL;
    if (h && c && SIZE_MAX - hlen - clen > sig_room + 3)
        tok = malloc(hlen + 1 + clen + 1 + sig_room + 1);
    if (tok) {
        memcpy(tok, h, hlen);
        tok[hlen] = '.';
        memcpy(tok + hlen + 1, c, clen);
        tok[hlen + 1 + clen] = '\0';
        *inlen = hlen + 1 + clen;
    }
    free(h);
    free(c);
    return tok;
}

/* Appends ".b64(sig)" to the signing input tok[0..inlen), which has room for it. */
static char *finish_token(char *tok, size_t inlen, const unsigned char *sig, size_t siglen)
{
    size_t slen;
    char *s = b64url_encode(sig, siglen, &slen);
    if (!s) {
        free(tok);
        return NULL;
    }
    tok[inlen] = '.';
    memcpy(tok + inlen + 1, s, slen + 1);
    free(s);
    return tok;
}

char *srv_jwt_sign_hs256(const unsigned char *secret, size_t secret_len, const char *claims_json,
                         size_t claims_len)
{
    if (secret_len > INT32_MAX) return NULL;
    size_t inlen = 0;
    char *tok = signing_input("HS256", claims_json, claims_len, 44, &inlen);
    if (!tok) return NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    static const unsigned char empty_key[1];
    if (!HMAC(EVP_sha256(), secret_len ? secret : empty_key, (int)secret_len,
              (const unsigned char *)tok, inlen, mac, &maclen)) {
        free(tok);
        return NULL;
    }
    tok = finish_token(tok, inlen, mac, maclen);
    OPENSSL_cleanse(mac, sizeof mac);
    return tok;
}

/* ES256 in JWS is raw r||s, each left-padded to 32 bytes (RFC 7518 §3.4); OpenSSL signs DER. */
static int es256_der_to_raw(const unsigned char *der, size_t derlen, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (!sig) return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int ok = r && s && BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? 0 : -1;
}

char *srv_jwt_sign_pkey(struct evp_pkey_st *pkey, const char *claims_json, size_t claims_len,
                        char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    const char *alg = NULL;
    if (pkey_alg(pkey, &alg, err, errlen) != 0) return NULL;
    size_t maxsig = (size_t)EVP_PKEY_get_size(pkey);
    if (maxsig == 0 || maxsig > SIG_MAX_DECODED) {
        snprintf(err, errlen, "unusable key size");
        return NULL;
    }
    size_t inlen = 0;
    char *tok = signing_input(alg, claims_json, claims_len, (maxsig + 2) / 3 * 4 + 1, &inlen);
    unsigned char *sig = malloc(maxsig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t siglen = maxsig;
    if (!tok || !sig || !ctx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, inlen) != 1) {
        snprintf(err, errlen, "signing with the %s key failed", alg);
        goto fail;
    }
    if (strcmp(alg, "ES256") == 0) {
        unsigned char raw[64];
        if (es256_der_to_raw(sig, siglen, raw) != 0) {
            snprintf(err, errlen, "cannot convert the ECDSA signature");
            goto fail;
        }
        memcpy(sig, raw, sizeof raw); /* maxsig for P-256 is 72 (DER), so 64 fits */
        siglen = sizeof raw;
    }
    EVP_MD_CTX_free(ctx);
    tok = finish_token(tok, inlen, sig, siglen);
    free(sig);
    if (!tok) snprintf(err, errlen, "out of memory");
    return tok;
fail:
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(tok);
    return NULL;
}

/* ---- verification ---- */

/* Decodes one base64url part and parses it as a JSON object. */
static int decode_json_object(const char *s, size_t n, filter_json_doc_t **out)
{
    if (n == 0 || n > PART_MAX_ENCODED) return SRV_JWT_EMALFORMED;
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return SRV_JWT_ENOMEM;
    long dlen = b64url_decode(s, n, buf);
    if (dlen < 0 || dlen > PART_MAX_DECODED) {
        free(buf);
        return SRV_JWT_EMALFORMED;
    }
    filter_json_limits_t lim = {
        .max_bytes = PART_MAX_DECODED, .max_depth = JSON_MAX_DEPTH, .max_nodes = JSON_MAX_NODES};
    filter_json_doc_t *doc = NULL;
    int rc = filter_json_parse((const char *)buf, (size_t)dlen, &lim, &doc, NULL, 0);
    free(buf);
    if (rc == FILTER_JSON_ENOMEM) return SRV_JWT_ENOMEM;
    if (rc != FILTER_JSON_OK) return SRV_JWT_EMALFORMED;
    const filter_json_t *root = filter_json_root(doc);
    if (!root || root->type != FILTER_JSON_OBJECT) {
        filter_json_doc_free(doc);
        return SRV_JWT_EMALFORMED;
    }
    *out = doc;
    return SRV_JWT_OK;
}

/* ES256 signatures travel as raw r||s (32 bytes each, RFC 7518 §3.4); OpenSSL verifies DER. */
static unsigned char *es256_raw_to_der(const unsigned char *raw, size_t rawlen, size_t *derlen)
{
    if (rawlen != 64) return NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL);
    BIGNUM *s = BN_bin2bn(raw + 32, 32, NULL);
    unsigned char *der = NULL;
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return NULL;
    }
    /* sig owns r and s now */
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0) return NULL;
    *derlen = (size_t)len;
    return der;
}

static int verify_pkey(EVP_PKEY *pkey, const unsigned char *msg, size_t msglen,
                       const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return SRV_JWT_ENOMEM;
    int rc = SRV_JWT_ESIG;
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1)
        rc = SRV_JWT_OK;
    EVP_MD_CTX_free(ctx);
    return rc;
}

static int verify_with_key(const jwt_key_t *k, const unsigned char *msg, size_t msglen,
                           const unsigned char *sig, size_t siglen)
{
    switch (k->type) {
    case KEY_HS256: {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (siglen != 32) return SRV_JWT_ESIG;
        if (!HMAC(EVP_sha256(), k->secret, (int)k->secret_len, msg, msglen, mac, &maclen) ||
            maclen != 32)
            return SRV_JWT_ESIG;
        int same = CRYPTO_memcmp(mac, sig, 32) == 0;
        OPENSSL_cleanse(mac, sizeof mac);
        return same ? SRV_JWT_OK : SRV_JWT_ESIG;
    }
    case KEY_RSA_PUB:
        return verify_pkey(k->pkey, msg, msglen, sig, siglen);
    case KEY_EC_P256: {
        size_t derlen = 0;
        unsigned char *der = es256_raw_to_der(sig, siglen, &derlen);
        if (!der) return SRV_JWT_ESIG;
        int rc = verify_pkey(k->pkey, msg, msglen, der, derlen);
        OPENSSL_free(der);
        return rc;
    }
    }
    return SRV_JWT_ESIG;
}

/* Checks the header's alg against the allow-list and the signature against every key of the
 * matching type. EALG if no configured key accepts the alg, ESIG if some do but none verifies. */
static int check_signature(const filter_json_t *hdr, const srv_jwt_keys_t *keys, const char *token,
                           size_t signed_len, const char *sig_b64, size_t sig_b64_len)
{
    const filter_json_t *alg = filter_json_get(hdr, "alg");
    if (!alg || alg->type != FILTER_JSON_STRING) return SRV_JWT_EALG;
    /* "crit" names header extensions the verifier must understand (RFC 7515 §4.1.11); we
     * understand none, so a token that depends on one cannot be accepted. */
    if (filter_json_get(hdr, "crit")) return SRV_JWT_EMALFORMED;

    int candidates = 0;
    for (size_t i = 0; i < keys->n; i++) {
        const char *a = key_alg(keys->v[i].type);
        if (a && strlen(a) == alg->len && memcmp(a, alg->str, alg->len) == 0) candidates++;
    }
    if (candidates == 0) return SRV_JWT_EALG;

    if (sig_b64_len == 0 || sig_b64_len > SIG_MAX_ENCODED) return SRV_JWT_ESIG;
    unsigned char sig[SIG_MAX_DECODED + 3];
    long siglen = b64url_decode(sig_b64, sig_b64_len, sig);
    if (siglen < 0) return SRV_JWT_EMALFORMED;

    for (size_t i = 0; i < keys->n; i++) {
        const char *a = key_alg(keys->v[i].type);
        if (!a || strlen(a) != alg->len || memcmp(a, alg->str, alg->len) != 0) continue;
        int rc = verify_with_key(&keys->v[i], (const unsigned char *)token, signed_len, sig,
                                 (size_t)siglen);
        if (rc == SRV_JWT_OK || rc == SRV_JWT_ENOMEM) return rc;
    }
    return SRV_JWT_ESIG;
}

/* Reads a NumericDate (RFC 7519 §2: seconds, possibly fractional). Returns 1 and sets *d if present
 * and a number, 0 if absent, -1 if present but not a number. */
static int numeric_date(const filter_json_t *claims, const char *name, double *d)
{
    const filter_json_t *v = filter_json_get(claims, name);
    if (!v) return 0;
    if (v->type != FILTER_JSON_NUMBER) return -1;
    int64_t i;
    if (filter_json_int64(v, &i)) {
        *d = (double)i;
        return 1;
    }
    char tmp[64];
    if (v->len == 0 || v->len >= sizeof tmp) return -1;
    memcpy(tmp, v->str, v->len);
    tmp[v->len] = '\0';
    char *end = NULL;
    double x = strtod(tmp, &end);
    if (*end != '\0' || !isfinite(x)) return -1;
    *d = x;
    return 1;
}

static int64_t clamp_i64(double d)
{
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    int64_t t = (int64_t)d; /* truncates toward zero; step down for negative fractions */
    return (double)t > d ? t - 1 : t;
}

/* Copies a string member. Wrong types count as absent (a claim we cannot read grants nothing); a
 * string with an embedded NUL is malformed because C consumers would see a different value. */
static int take_string(const filter_json_t *v, char **out)
{
    if (!v || v->type != FILTER_JSON_STRING) return SRV_JWT_OK;
    if (memchr(v->str, '\0', v->len)) return SRV_JWT_EMALFORMED;
    char *s = malloc(v->len + 1);
    if (!s) return SRV_JWT_ENOMEM;
    memcpy(s, v->str, v->len);
    s[v->len] = '\0';
    *out = s;
    return SRV_JWT_OK;
}

/* A string, or an integer kept as its decimal text (Altinn issues user and party ids both ways). */
static int take_id(const filter_json_t *v, char **out)
{
    if (!v) return SRV_JWT_OK;
    if (v->type == FILTER_JSON_STRING) return take_string(v, out);
    int64_t i;
    if (v->type == FILTER_JSON_NUMBER && filter_json_int64(v, &i)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRId64, i);
        *out = strdup(buf);
        return *out ? SRV_JWT_OK : SRV_JWT_ENOMEM;
    }
    return SRV_JWT_OK;
}

/* authorization_details is an object or an array of objects; the first systemuser_id wins. */
static int take_systemuser(const filter_json_t *ad, char **out)
{
    if (!ad) return SRV_JWT_OK;
    size_t n = ad->type == FILTER_JSON_ARRAY ? ad->count : 1;
    for (size_t i = 0; i < n; i++) {
        const filter_json_t *o = ad->type == FILTER_JSON_ARRAY ? ad->items[i] : ad;
        if (!o || o->type != FILTER_JSON_OBJECT) continue;
        const filter_json_t *id = filter_json_get(o, "systemuser_id");
        if (id && id->type == FILTER_JSON_ARRAY && id->count > 0) id = id->items[0];
        if (id && id->type == FILTER_JSON_STRING) return take_string(id, out);
    }
    return SRV_JWT_OK;
}

static int read_claims(const filter_json_t *c, srv_claims_t *out)
{
    int rc;
    const filter_json_t *scope = filter_json_get(c, "scope");
    if (!scope || scope->type != FILTER_JSON_STRING) scope = filter_json_get(c, "urn:altinn:scope");
    if ((rc = take_string(scope, &out->scope)) != SRV_JWT_OK) return rc;
    if ((rc = take_string(filter_json_get(c, "urn:altinn:org"), &out->org)) != SRV_JWT_OK)
        return rc;
    if ((rc = take_id(filter_json_get(c, "urn:altinn:orgNumber"), &out->orgno)) != SRV_JWT_OK)
        return rc;
    if ((rc = take_id(filter_json_get(c, "urn:altinn:userid"), &out->userid)) != SRV_JWT_OK)
        return rc;
    if ((rc = take_id(filter_json_get(c, "urn:altinn:partyid"), &out->partyid)) != SRV_JWT_OK)
        return rc;
    if ((rc = take_systemuser(filter_json_get(c, "authorization_details"), &out->systemuser)) !=
        SRV_JWT_OK)
        return rc;
    if ((rc = take_string(filter_json_get(c, "iss"), &out->iss)) != SRV_JWT_OK) return rc;
    if ((rc = take_string(filter_json_get(c, "urn:altinn:app"), &out->app)) != SRV_JWT_OK)
        return rc;
    return SRV_JWT_OK;
}

int srv_jwt_verify(const char *token, size_t len, const srv_jwt_keys_t *keys, srv_jwt_mode_t mode,
                   int64_t now, srv_claims_t *out)
{
    memset(out, 0, sizeof *out);
    if (mode != SRV_JWT_UNVERIFIED && (!keys || keys->n == 0)) return SRV_JWT_ENOKEY;
    if (!token || len > 2 * PART_MAX_ENCODED + SIG_MAX_ENCODED + 2) return SRV_JWT_EMALFORMED;

    const char *d1 = memchr(token, '.', len);
    if (!d1) return SRV_JWT_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) return SRV_JWT_EMALFORMED;
    size_t hlen = (size_t)(d1 - token);
    size_t plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - token);
    if (hlen == 0 || plen == 0) return SRV_JWT_EMALFORMED;

    filter_json_doc_t *hdoc = NULL, *cdoc = NULL;
    int rc = decode_json_object(token, hlen, &hdoc);
    if (rc != SRV_JWT_OK) return rc;

    if (mode == SRV_JWT_UNVERIFIED) {
        /* No signature check, but the part must still look like one (or be empty, as in tokens
         * some tools emit with alg "none") so the three-part shape means something. */
        for (size_t i = 0; i < slen; i++)
            if (b64url_value((unsigned char)d2[1 + i]) < 0) {
                rc = SRV_JWT_EMALFORMED;
                goto out;
            }
    } else {
        /* An empty signature part (what alg "none" looks like) is EALG via the alg check, or
         * ESIG when the header names an alg we do hold keys for. */
        rc = check_signature(filter_json_root(hdoc), keys, token, (size_t)(d2 - token), d2 + 1,
                             slen);
        if (rc != SRV_JWT_OK) goto out;
    }

    /* Only now, with the signature good (or deliberately unchecked), look at the claims. */
    rc = decode_json_object(d1 + 1, plen, &cdoc);
    if (rc != SRV_JWT_OK) goto out;
    const filter_json_t *claims = filter_json_root(cdoc);

    double exp = 0, nbf = 0;
    int has_exp = numeric_date(claims, "exp", &exp);
    int has_nbf = numeric_date(claims, "nbf", &nbf);
    if (has_exp < 0 || has_nbf < 0) {
        rc = SRV_JWT_EMALFORMED;
        goto out;
    }
    /* No clock skew allowance: the token's issuer and we share the clock in every deployment we
     * support, and a skew would only widen the window of a stolen token. */
    if (has_exp && exp <= (double)now) {
        rc = SRV_JWT_EEXPIRED;
        goto out;
    }
    if (has_nbf && nbf > (double)now) {
        rc = SRV_JWT_ENOTYET;
        goto out;
    }
    rc = read_claims(claims, out);
    if (rc != SRV_JWT_OK) {
        srv_claims_fini(out);
        goto out;
    }
    out->exp = has_exp ? clamp_i64(exp) : 0;
    out->nbf = has_nbf ? clamp_i64(nbf) : 0;
out:
    filter_json_doc_free(hdoc);
    filter_json_doc_free(cdoc);
    return rc;
}

void srv_claims_fini(srv_claims_t *c)
{
    if (!c) return;
    free(c->scope);
    free(c->org);
    free(c->orgno);
    free(c->userid);
    free(c->partyid);
    free(c->systemuser);
    free(c->iss);
    free(c->app);
    memset(c, 0, sizeof *c);
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int srv_claims_has_scope(const srv_claims_t *c, const char *scope)
{
    if (!c || !c->scope || !scope || !*scope) return 0;
    size_t want = strlen(scope);
    const char *p = c->scope;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        /* whole-token match only: a scope that is a prefix of another grants nothing */
        if ((size_t)(p - start) == want) {
            size_t i = 0;
            while (i < want &&
                   ascii_lower((unsigned char)start[i]) == ascii_lower((unsigned char)scope[i]))
                i++;
            if (i == want) return 1;
        }
    }
    return 0;
}

const char *srv_jwt_strerror(int code)
{
    switch (code) {
    case SRV_JWT_OK:
        return "ok";
    case SRV_JWT_EMALFORMED:
        return "malformed token";
    case SRV_JWT_EALG:
        return "token algorithm not allowed";
    case SRV_JWT_ESIG:
        return "token signature does not verify";
    case SRV_JWT_EEXPIRED:
        return "token expired";
    case SRV_JWT_ENOTYET:
        return "token not yet valid";
    case SRV_JWT_ENOKEY:
        return "no token verification key configured";
    case SRV_JWT_ENOMEM:
        return "out of memory";
    case SRV_JWT_EIO:
        return "cannot read key file";
    }
    return "unknown JWT error";
}
