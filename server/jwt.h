/* server/jwt: JSON Web Tokens for authentication: verification (HS256 now; the key set is built to
 * take RS256/ES256 public keys later) and minting for `hendelse token`. Uses OpenSSL EVP/HMAC only.
 */
#ifndef HENDELSE_SERVER_JWT_H
#define HENDELSE_SERVER_JWT_H

#include <stddef.h>
#include <stdint.h>

enum {
    SRV_JWT_OK = 0,
    SRV_JWT_EMALFORMED = -1, /* not three base64url parts, or header/claims not JSON objects */
    SRV_JWT_EALG = -2,       /* alg missing, "none", or not allowed for the configured keys */
    SRV_JWT_ESIG = -3,       /* signature does not verify */
    SRV_JWT_EEXPIRED = -4,   /* exp <= now */
    SRV_JWT_ENOTYET = -5,    /* nbf > now */
    SRV_JWT_ENOKEY = -6,     /* verification asked for but no key configured */
    SRV_JWT_ENOMEM = -7,
    SRV_JWT_EIO = -8, /* a key file could not be read */
};

typedef enum {
    SRV_JWT_VERIFY = 0, /* check the signature against the key set */
    SRV_JWT_UNVERIFIED =
        1, /* read the claims without checking the signature (exp/nbf still hold) */
} srv_jwt_mode_t;

/* The verification keys. Owned by the caller of srv_jwt_keys_new; freed with srv_jwt_keys_free. */
typedef struct srv_jwt_keys srv_jwt_keys_t;

srv_jwt_keys_t *srv_jwt_keys_new(void);
void srv_jwt_keys_free(srv_jwt_keys_t *keys);
/* Adds an HS256 secret read from a file (the whole file, one trailing "\n" or "\r\n" removed; an
 * empty secret is an error). Returns 0 or SRV_JWT_EIO/ENOMEM; on error err gets a one-line reason.
 */
int srv_jwt_keys_add_hs256_file(srv_jwt_keys_t *keys, const char *path, char *err, size_t errlen);
/* Reads a secret file the same way; the caller frees *out. */
int srv_jwt_read_secret_file(const char *path, unsigned char **out, size_t *out_len, char *err,
                             size_t errlen);
/* Adds a PEM public key ("BEGIN PUBLIC KEY"): an RSA key of at least 2048 bits verifies only RS256,
 * a P-256 EC key only ES256. Returns 0 or SRV_JWT_EIO (unreadable, not a key, unsupported type or
 * curve)/ENOMEM; on error err gets a one-line reason. */
int srv_jwt_keys_add_public_key_file(srv_jwt_keys_t *keys, const char *path, char *err,
                                     size_t errlen);

/* The claims hendelse reads. Strings are NUL-terminated and owned by the struct (NULL when absent).
 */
typedef struct {
    char *scope;      /* "scope" or "urn:altinn:scope": space-separated */
    char *org;        /* urn:altinn:org */
    char *orgno;      /* urn:altinn:orgNumber */
    char *userid;     /* urn:altinn:userid (numbers are kept as their decimal text) */
    char *partyid;    /* urn:altinn:partyid */
    char *systemuser; /* authorization_details.systemuser_id (first element if an array) */
    char *iss;        /* iss (the org of a PlatformAccessToken) */
    char *app;        /* urn:altinn:app */
    int64_t exp;      /* 0 when absent */
    int64_t nbf;      /* 0 when absent */
} srv_claims_t;

/* Verifies token[0..len) (the part after "Bearer ") at time now (Unix seconds) and fills *out on
 * success (release with srv_claims_fini). alg must be exactly "HS256" for HS256 keys; "none" and
 * any other value are SRV_JWT_EALG in VERIFY mode. A token is accepted if any configured key
 * verifies it. On failure *out is zeroed. */
int srv_jwt_verify(const char *token, size_t len, const srv_jwt_keys_t *keys, srv_jwt_mode_t mode,
                   int64_t now, srv_claims_t *out);

void srv_claims_fini(srv_claims_t *c);

/* 1 if the space-separated scope list contains scope (ASCII case-insensitive), else 0. */
int srv_claims_has_scope(const srv_claims_t *c, const char *scope);

const char *srv_jwt_strerror(int code);

/* Signs claims_json (a JSON object text) as an HS256 JWT with header {"alg":"HS256","typ":"JWT"}.
 * Returns a malloc'd NUL-terminated token, or NULL on allocation failure. */
char *srv_jwt_sign_hs256(const unsigned char *secret, size_t secret_len, const char *claims_json,
                         size_t claims_len);

/* Signs claims_json with a private key (an OpenSSL EVP_PKEY; the struct tag keeps OpenSSL headers
 * out of this one): RS256 for RSA (>= 2048 bits), ES256 for P-256 EC with the signature in the raw
 * 64-byte r||s JOSE form. Header {"alg":"RS256"|"ES256","typ":"JWT"}. Returns a malloc'd token, or
 * NULL with a one-line reason in err (unsupported key, signing failure, allocation failure). */
struct evp_pkey_st;
char *srv_jwt_sign_pkey(struct evp_pkey_st *pkey, const char *claims_json, size_t claims_len,
                        char *err, size_t errlen);

/* `hendelse token [options]`: argv[0] is "token". Prints the token and a newline on stdout. Returns
 * the process exit status (0, or 2 for bad usage with one line on stderr). */
int srv_token_main(int argc, char **argv);

#endif
