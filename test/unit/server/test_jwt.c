/* Unit tests for server/jwt.c and server/token.c: verification (including forgeries), claims,
 * key files, HS256/RS256/ES256 minting and the `hendelse token` command line. */
#include "server/jwt.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

static char tmpdir[256];
static const unsigned char SECRET[] = "test-secret-0123456789abcdef-0123";
#define SECRET_LEN (sizeof SECRET - 1)

/* ---- helpers ---- */

/* base64url without padding, built on OpenSSL's standard base64 so the test does not share the
 * encoder under test. */
static char *b64url(const void *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++) {
        if (out[i] == '+') out[i] = '-';
        if (out[i] == '/') out[i] = '_';
    }
    return out;
}

static long b64url_dec(const char *s, size_t n, unsigned char *out)
{
    char buf[4096];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        buf[m++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    size_t pad = (4 - m % 4) % 4;
    for (size_t i = 0; i < pad; i++)
        buf[m++] = '=';
    int len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m);
    return len < 0 ? -1 : len - (long)pad;
}

/* Builds "b64(header).b64(claims).sig" where sig is the HS256 MAC with key (when key is non-NULL),
 * or the given literal sig text. */
static char *craft(const char *header, const char *claims, const unsigned char *key, size_t keylen,
                   const char *sig_text)
{
    char *h = b64url(header, strlen(header));
    char *c = b64url(claims, strlen(claims));
    size_t n = strlen(h) + strlen(c) + 200;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s", h, c);
    if (key) {
        unsigned char mac[32];
        unsigned int maclen = 0;
        HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)t, strlen(t), mac, &maclen);
        char *s = b64url(mac, maclen);
        strcat(t, ".");
        strcat(t, s);
        free(s);
    } else if (sig_text) {
        strcat(t, ".");
        strcat(t, sig_text);
    }
    free(h);
    free(c);
    return t;
}

static srv_jwt_keys_t *keys_with_secret(const unsigned char *secret, size_t len)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/secret-%zu", tmpdir, len);
    FILE *f = fopen(path, "wb");
    fwrite(secret, 1, len, f);
    fclose(f);
    srv_jwt_keys_t *k = srv_jwt_keys_new();
    if (srv_jwt_keys_add_hs256_file(k, path, err, sizeof err) != 0) {
        printf("# %s\n", err);
        srv_jwt_keys_free(k);
        return NULL;
    }
    return k;
}

static int verify_str(const char *tok, const srv_jwt_keys_t *keys, srv_jwt_mode_t mode, int64_t now)
{
    srv_claims_t c;
    int rc = srv_jwt_verify(tok, strlen(tok), keys, mode, now, &c);
    srv_claims_fini(&c);
    return rc;
}

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static char *read_all(FILE *f)
{
    fflush(f);
    rewind(f);
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    n = fread(s, 1, cap - 1, f);
    s[n] = '\0';
    return s;
}

/* Runs srv_token_main with stdout and stderr captured. */
static int run_token(char **argv, char **out, char **errout)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile(), *fe = tmpfile();
    int so = dup(1), se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = srv_token_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    char *o = read_all(fo), *e = read_all(fe);
    fclose(fo);
    fclose(fe);
    if (out)
        *out = o;
    else
        free(o);
    if (errout)
        *errout = e;
    else
        free(e);
    return rc;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Verifies an RS256/ES256 token with the public key directly through EVP_DigestVerify. */
static int pkey_verifies(EVP_PKEY *pub, const char *tok, const char *alg_expected)
{
    const char *d2 = strrchr(tok, '.');
    const char *d1 = strchr(tok, '.');
    if (!d1 || !d2 || d1 == d2) return 0;
    unsigned char hdr[256];
    long hl = b64url_dec(tok, (size_t)(d1 - tok), hdr);
    if (hl < 0) return 0;
    hdr[hl] = '\0';
    char want[64];
    snprintf(want, sizeof want, "\"alg\":\"%s\"", alg_expected);
    if (!strstr((char *)hdr, want)) return 0;
    unsigned char sig[1024];
    long sl = b64url_dec(d2 + 1, strlen(d2 + 1), sig);
    if (sl <= 0) return 0;
    unsigned char *der = NULL;
    size_t derlen = (size_t)sl;
    const unsigned char *s = sig;
    if (strcmp(alg_expected, "ES256") == 0) {
        if (sl != 64) return 0;
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
        int dl = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (dl <= 0) return 0;
        s = der;
        derlen = (size_t)dl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int good =
        EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
        EVP_DigestVerify(ctx, s, derlen, (const unsigned char *)tok, (size_t)(d2 - tok)) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return good;
}

static void write_keypair(EVP_PKEY *k, const char *priv_path, const char *pub_path)
{
    FILE *f = fopen(priv_path, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    f = fopen(pub_path, "w");
    PEM_write_PUBKEY(f, k);
    fclose(f);
}

/* ---- tests ---- */

static void test_round_trip(void)
{
    int64_t now = 1700000000;
    srv_jwt_keys_t *keys = keys_with_secret(SECRET, SECRET_LEN);
    ok(keys != NULL, "HS256 key set from a secret file");
    const char *claims =
        "{\"scope\":\"altinn:events.publish altinn:events.subscribe\",\"urn:altinn:org\":\"ttd\","
        "\"urn:altinn:orgNumber\":\"991825827\",\"urn:altinn:userid\":\"1337\","
        "\"urn:altinn:partyid\":\"50001\",\"iss\":\"ttd\",\"urn:altinn:app\":\"my-app\","
        "\"exp\":1700000100,\"nbf\":1700000000}";
    char *tok = srv_jwt_sign_hs256(SECRET, SECRET_LEN, claims, strlen(claims));
    ok(tok && !strchr(tok, '='), "sign_hs256 produces an unpadded token");
    srv_claims_t c;
    int rc = srv_jwt_verify(tok, strlen(tok), keys, SRV_JWT_VERIFY, now, &c);
    ok(rc == SRV_JWT_OK, "round trip verifies (%s)", srv_jwt_strerror(rc));
    ok(c.scope && strcmp(c.scope, "altinn:events.publish altinn:events.subscribe") == 0, "scope");
    ok(c.org && strcmp(c.org, "ttd") == 0, "org");
    ok(c.orgno && strcmp(c.orgno, "991825827") == 0, "orgNumber");
    ok(c.userid && strcmp(c.userid, "1337") == 0, "userid");
    ok(c.partyid && strcmp(c.partyid, "50001") == 0, "partyid");
    ok(c.iss && strcmp(c.iss, "ttd") == 0, "iss");
    ok(c.app && strcmp(c.app, "my-app") == 0, "app");
    ok(c.systemuser == NULL, "no systemuser");
    ok(c.exp == 1700000100 && c.nbf == 1700000000, "exp and nbf");
    ok(srv_claims_has_scope(&c, "altinn:events.subscribe"), "has_scope second scope");
    srv_claims_fini(&c);
    ok(c.scope == NULL, "claims_fini clears");

    /* the header our signer writes */
    const char *d1 = strchr(tok, '.');
    unsigned char hdr[128];
    long hl = b64url_dec(tok, (size_t)(d1 - tok), hdr);
    ok(hl > 0 && (size_t)hl == strlen("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") &&
           memcmp(hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", (size_t)hl) == 0,
       "HS256 header text");

    /* the token verifies against any of several keys */
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/other", tmpdir);
    write_file(path, "another-secret", 14);
    srv_jwt_keys_t *two = srv_jwt_keys_new();
    ok(srv_jwt_keys_add_hs256_file(two, path, err, sizeof err) == 0 &&
           srv_jwt_keys_add_hs256_file(two, path, err, sizeof err) == 0,
       "two keys added");
    ok(verify_str(tok, two, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG, "not accepted by other keys");
    srv_jwt_keys_free(two);
    free(tok);
    srv_jwt_keys_free(keys);
}

static void test_forgeries(void)
{
    int64_t now = 1700000000;
    const char *claims = "{\"scope\":\"altinn:events.publish\",\"exp\":1800000000}";
    srv_jwt_keys_t *keys = keys_with_secret(SECRET, SECRET_LEN);
    char *good = craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(good, keys, SRV_JWT_VERIFY, now) == SRV_JWT_OK, "crafted HS256 token verifies");

    char *t = craft("{\"alg\":\"none\"}", claims, NULL, 0, "");
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg none, empty signature");
    free(t);
    t = craft("{\"alg\":\"none\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg none with a valid MAC");
    free(t);
    t = craft("{\"alg\":\"none\"}", claims, NULL, 0, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "alg none, two parts");
    free(t);
    t = craft("{\"alg\":\"HS384\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg HS384 header");
    free(t);
    t = craft("{\"alg\":\"RS256\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg RS256 header, HS256 key");
    free(t);
    t = craft("{\"alg\":\"hs256\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg is case-sensitive");
    free(t);
    t = craft("{\"alg\":\"HS256\\u0000\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg with a NUL");
    free(t);
    t = craft("{\"typ\":\"JWT\"}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg missing");
    free(t);
    t = craft("{\"alg\":256}", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "alg not a string");
    free(t);
    t = craft("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", claims, SECRET, SECRET_LEN,
              NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "crit header refused");
    free(t);

    /* tampered payload: keep header and signature, swap the claims */
    char *evil =
        craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
              "{\"scope\":\"altinn:events.publish.admin\",\"exp\":1800000000}", NULL, 0, NULL);
    char *gd2 = strrchr(good, '.');
    char buf[2048];
    snprintf(buf, sizeof buf, "%s%s", evil, gd2);
    ok(strncmp(buf, good, (size_t)(strchr(good, '.') - good)) == 0 &&
           verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG,
       "tampered payload");
    free(evil);

    /* tampered signature: change the first signature character */
    snprintf(buf, sizeof buf, "%s", good);
    char *s = strrchr(buf, '.') + 1;
    s[0] = s[0] == 'A' ? 'B' : 'A';
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG, "tampered signature");

    t = craft("{\"alg\":\"HS256\"}", claims, (const unsigned char *)"wrong", 5, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG, "wrong secret");
    free(t);

    /* truncated in various places */
    size_t gl = strlen(good);
    int all_rejected = 1;
    for (size_t cut = 1; cut < gl; cut++) {
        srv_claims_t c;
        if (srv_jwt_verify(good, gl - cut, keys, SRV_JWT_VERIFY, now, &c) == SRV_JWT_OK)
            all_rejected = 0;
        srv_claims_fini(&c);
    }
    ok(all_rejected, "every truncation is rejected");
    snprintf(buf, sizeof buf, "%.*s", (int)(strrchr(good, '.') - good), good);
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "two parts");
    snprintf(buf, sizeof buf, "%s.", good);
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "four parts (empty)");
    snprintf(buf, sizeof buf, "%s.AAAA", good);
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "four parts");
    ok(verify_str("", keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "empty token");
    ok(verify_str("..", keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "only dots");
    snprintf(buf, sizeof buf, "%s", good);
    buf[gd2 - good] = '\0';
    ok(srv_jwt_verify(buf, gl, keys, SRV_JWT_VERIFY, now, &(srv_claims_t){0}) == SRV_JWT_EMALFORMED,
       "NUL instead of the second dot");

    /* bad base64url */
    snprintf(buf, sizeof buf, "%s", good);
    buf[2] = '+';
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "'+' in the header");
    char *hp = b64url("{\"alg\":\"HS256\" }", 16);
    snprintf(buf, sizeof buf, "%s==.%s", hp, strchr(good, '.') + 1);
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "padded header");
    free(hp);
    snprintf(buf, sizeof buf, "%s", good);
    s = strrchr(buf, '.') + 1;
    s[3] = '/';
    ok(verify_str(buf, keys, SRV_JWT_VERIFY, now) != SRV_JWT_OK, "'/' in the signature");

    t = craft("not json", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "non-JSON header");
    free(t);
    t = craft("[\"HS256\"]", claims, SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "header is an array");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "[1,2,3]", SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "claims are an array");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{\"exp\":1800000000", SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "claims not JSON");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{\"urn:altinn:org\":\"ttd\\u0000x\"}", SECRET, SECRET_LEN,
              NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "claim with a NUL");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{\"a\":1,\"a\":2}", SECRET, SECRET_LEN, NULL);
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EMALFORMED, "duplicate claim");
    free(t);

    srv_jwt_keys_t *empty = srv_jwt_keys_new();
    ok(verify_str(good, empty, SRV_JWT_VERIFY, now) == SRV_JWT_ENOKEY, "no keys: ENOKEY");
    ok(verify_str(good, NULL, SRV_JWT_VERIFY, now) == SRV_JWT_ENOKEY, "NULL keys: ENOKEY");
    srv_jwt_keys_free(empty);
    free(good);
    srv_jwt_keys_free(keys);
}

static void test_times(void)
{
    int64_t now = 1700000000;
    srv_jwt_keys_t *keys = keys_with_secret(SECRET, SECRET_LEN);
    struct {
        const char *claims;
        int want;
        const char *name;
    } cases[] = {
        {"{\"exp\":1699999999}", SRV_JWT_EEXPIRED, "exp in the past"},
        {"{\"exp\":1700000000}", SRV_JWT_EEXPIRED, "exp == now"},
        {"{\"exp\":1700000001}", SRV_JWT_OK, "exp == now + 1"},
        {"{\"exp\":1700000000.5}", SRV_JWT_OK, "fractional exp after now"},
        {"{\"exp\":1.7e9}", SRV_JWT_EEXPIRED, "exponent exp == now"},
        {"{\"nbf\":1700000001}", SRV_JWT_ENOTYET, "nbf in the future"},
        {"{\"nbf\":1700000000}", SRV_JWT_OK, "nbf == now"},
        {"{\"exp\":\"1800000000\"}", SRV_JWT_EMALFORMED, "exp as a string"},
        {"{\"nbf\":null}", SRV_JWT_EMALFORMED, "nbf null"},
        {"{}", SRV_JWT_OK, "no exp or nbf"},
        {"{\"exp\":1e400}", SRV_JWT_EMALFORMED, "exp out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = craft("{\"alg\":\"HS256\"}", cases[i].claims, SECRET, SECRET_LEN, NULL);
        int rc = verify_str(t, keys, SRV_JWT_VERIFY, now);
        ok(rc == cases[i].want, "%s (%s)", cases[i].name, srv_jwt_strerror(rc));
        free(t);
    }
    srv_jwt_keys_free(keys);
}

static void test_unverified(void)
{
    int64_t now = 1700000000;
    srv_jwt_keys_t *keys = keys_with_secret(SECRET, SECRET_LEN);
    char *t = craft("{\"alg\":\"RS256\"}", "{\"urn:altinn:org\":\"ttd\",\"exp\":1800000000}", NULL,
                    0, "c2lnbmF0dXJl");
    srv_claims_t c;
    ok(srv_jwt_verify(t, strlen(t), keys, SRV_JWT_UNVERIFIED, now, &c) == SRV_JWT_OK && c.org &&
           strcmp(c.org, "ttd") == 0,
       "unverified accepts a bad signature");
    srv_claims_fini(&c);
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_OK, "unverified needs no keys");
    ok(verify_str(t, keys, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "same token fails VERIFY");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{\"exp\":1600000000}", NULL, 0, "c2ln");
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_EEXPIRED,
       "unverified rejects an expired token");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{\"nbf\":1800000000}", NULL, 0, "c2ln");
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_ENOTYET, "unverified checks nbf");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "{}", NULL, 0, NULL);
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_EMALFORMED,
       "unverified still wants three parts");
    free(t);
    t = craft("{\"alg\":\"HS256\"}", "[]", NULL, 0, "c2ln");
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_EMALFORMED,
       "unverified still wants an object");
    free(t);
    t = craft("nope", "{}", NULL, 0, "c2ln");
    ok(verify_str(t, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_EMALFORMED,
       "unverified still wants a JSON header");
    free(t);
    srv_jwt_keys_free(keys);
}

static int claims_of(const char *claims_json, srv_claims_t *c)
{
    char *t = craft("{\"alg\":\"HS256\"}", claims_json, NULL, 0, "c2ln");
    int rc = srv_jwt_verify(t, strlen(t), NULL, SRV_JWT_UNVERIFIED, 1700000000, c);
    free(t);
    return rc;
}

static void test_claims(void)
{
    srv_claims_t c;
    ok(claims_of("{\"urn:altinn:scope\":\"altinn:events.publish\"}", &c) == 0 && c.scope &&
           strcmp(c.scope, "altinn:events.publish") == 0,
       "scope from urn:altinn:scope");
    srv_claims_fini(&c);
    ok(claims_of("{\"scope\":\"a\",\"urn:altinn:scope\":\"b\"}", &c) == 0 && c.scope &&
           strcmp(c.scope, "a") == 0,
       "scope wins over urn:altinn:scope");
    srv_claims_fini(&c);
    ok(claims_of("{\"urn:altinn:userid\":1337,\"urn:altinn:partyid\":-5}", &c) == 0 && c.userid &&
           strcmp(c.userid, "1337") == 0 && c.partyid && strcmp(c.partyid, "-5") == 0,
       "userid and partyid as integers");
    srv_claims_fini(&c);
    ok(claims_of("{\"urn:altinn:userid\":1.5,\"urn:altinn:org\":7}", &c) == 0 && !c.userid &&
           !c.org,
       "wrong-typed claims are absent");
    srv_claims_fini(&c);
    ok(claims_of("{\"authorization_details\":[{\"type\":\"x\"},{\"type\":\"urn:altinn:systemuser\","
                 "\"systemuser_id\":[\"a1b2\",\"c3\"]}]}",
                 &c) == 0 &&
           c.systemuser && strcmp(c.systemuser, "a1b2") == 0,
       "systemuser from an array of details");
    srv_claims_fini(&c);
    ok(claims_of("{\"authorization_details\":{\"systemuser_id\":[\"d4\"]}}", &c) == 0 &&
           c.systemuser && strcmp(c.systemuser, "d4") == 0,
       "systemuser from one details object");
    srv_claims_fini(&c);
    ok(claims_of("{\"authorization_details\":{\"systemuser_id\":\"e5\"}}", &c) == 0 &&
           c.systemuser && strcmp(c.systemuser, "e5") == 0,
       "systemuser_id as a string");
    srv_claims_fini(&c);
    ok(claims_of("{\"authorization_details\":\"x\"}", &c) == 0 && !c.systemuser,
       "authorization_details of the wrong type");
    srv_claims_fini(&c);

    srv_claims_t s = {0};
    s.scope = "altinn:events.publish.admin  ALTINN:Events.Subscribe";
    ok(!srv_claims_has_scope(&s, "altinn:events.publish"), "no prefix match");
    ok(srv_claims_has_scope(&s, "altinn:events.publish.admin"), "exact match");
    ok(srv_claims_has_scope(&s, "altinn:events.subscribe"), "case-insensitive match");
    ok(!srv_claims_has_scope(&s, "events.subscribe"), "no suffix match");
    ok(!srv_claims_has_scope(&s, ""), "empty scope never matches");
    s.scope = "altinn:events.publish";
    ok(!srv_claims_has_scope(&s, "altinn:events.publish.admin"), "no extension match");
    ok(srv_claims_has_scope(&s, "ALTINN:EVENTS.PUBLISH"), "upper-case query");
    s.scope = NULL;
    ok(!srv_claims_has_scope(&s, "altinn:events.publish"), "no scope claim");
}

static void test_secret_files(void)
{
    char path[512], err[256];
    unsigned char *sec = NULL;
    size_t len = 0;
    struct {
        const char *data;
        size_t n;
        const char *want;
        size_t want_n;
        const char *name;
    } cases[] = {
        {"abc\n", 4, "abc", 3, "one trailing \\n stripped"},
        {"abc\r\n", 5, "abc", 3, "one trailing \\r\\n stripped"},
        {"abc\n\n", 5, "abc\n", 4, "only one newline stripped"},
        {"abc", 3, "abc", 3, "no newline kept as is"},
        {"a\0b\n", 4, "a\0b", 3, "binary secret"},
        {"abc \n", 5, "abc ", 4, "trailing space kept"},
    };
    snprintf(path, sizeof path, "%s/sf", tmpdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(path, cases[i].data, cases[i].n);
        int rc = srv_jwt_read_secret_file(path, &sec, &len, err, sizeof err);
        ok(rc == 0 && len == cases[i].want_n && memcmp(sec, cases[i].want, len) == 0, "%s",
           cases[i].name);
        if (rc == 0) free(sec);
    }
    write_file(path, "", 0);
    int rc = srv_jwt_read_secret_file(path, &sec, &len, err, sizeof err);
    ok(rc == SRV_JWT_EIO && strstr(err, "is empty") && strstr(err, path) && !strchr(err, '\n'),
       "empty file: %s", err);
    write_file(path, "\r\n", 2);
    rc = srv_jwt_read_secret_file(path, &sec, &len, err, sizeof err);
    ok(rc == SRV_JWT_EIO && strstr(err, "is empty"), "newline-only file is empty");
    srv_jwt_keys_t *k = srv_jwt_keys_new();
    write_file(path, "\n", 1);
    ok(srv_jwt_keys_add_hs256_file(k, path, err, sizeof err) == SRV_JWT_EIO, "empty key refused");
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    rc = srv_jwt_read_secret_file(path, &sec, &len, err, sizeof err);
    ok(rc == SRV_JWT_EIO && strncmp(err, "cannot read ", 12) == 0 && strstr(err, "No such file"),
       "missing file: %s", err);
    ok(srv_jwt_keys_add_hs256_file(k, path, err, sizeof err) == SRV_JWT_EIO, "missing key file");
    snprintf(path, sizeof path, "%s/big", tmpdir);
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    write_file(path, big, 70000);
    free(big);
    rc = srv_jwt_read_secret_file(path, &sec, &len, err, sizeof err);
    ok(rc == SRV_JWT_EIO && strstr(err, "larger"), "oversized file: %s", err);

    /* a secret file written by `echo` signs like the bare secret */
    snprintf(path, sizeof path, "%s/echoed", tmpdir);
    write_file(path, "s3cret\n", 7);
    ok(srv_jwt_keys_add_hs256_file(k, path, err, sizeof err) == 0, "key with newline added");
    char *t = srv_jwt_sign_hs256((const unsigned char *)"s3cret", 6, "{}", 2);
    ok(verify_str(t, k, SRV_JWT_VERIFY, 1) == SRV_JWT_OK, "newline-stripped key verifies");
    free(t);
    srv_jwt_keys_free(k);
}

static void test_token_command(void)
{
    char sf[512];
    snprintf(sf, sizeof sf, "%s/cmd-secret", tmpdir);
    write_file(sf, "cmd-secret\n", 11);
    srv_jwt_keys_t *keys = srv_jwt_keys_new();
    char err[256];
    srv_jwt_keys_add_hs256_file(keys, sf, err, sizeof err);
    char sfarg[600];
    snprintf(sfarg, sizeof sfarg, "--secret-file=%s", sf);

    char *out = NULL, *eout = NULL;
    char *argv1[] = {"token",
                     sfarg,
                     "--scope",
                     "altinn:events.publish",
                     "--scope=altinn:events.subscribe",
                     "--org",
                     "ttd",
                     "--orgno",
                     "991825827",
                     "--userid",
                     "1337",
                     "--partyid=50001",
                     "--systemuser",
                     "f5b0c7d2-1c2b-4a3e-9f00-0123456789ab",
                     "--ttl",
                     "120",
                     NULL};
    int rc = run_token(argv1, &out, &eout);
    ok(rc == 0 && count_lines(out) == 1 && out[strlen(out) - 1] == '\n', "token printed (rc %d)",
       rc);
    ok(eout[0] == '\0', "nothing on stderr with a secret file");
    out[strcspn(out, "\n")] = '\0';
    srv_claims_t c;
    int64_t now = (int64_t)time(NULL);
    rc = srv_jwt_verify(out, strlen(out), keys, SRV_JWT_VERIFY, now, &c);
    ok(rc == SRV_JWT_OK, "minted token verifies (%s)", srv_jwt_strerror(rc));
    ok(c.scope && strcmp(c.scope, "altinn:events.publish altinn:events.subscribe") == 0,
       "scopes joined");
    ok(c.org && strcmp(c.org, "ttd") == 0 && c.orgno && strcmp(c.orgno, "991825827") == 0,
       "org and orgno");
    ok(c.userid && strcmp(c.userid, "1337") == 0 && c.partyid && strcmp(c.partyid, "50001") == 0,
       "userid and partyid");
    ok(c.systemuser && strcmp(c.systemuser, "f5b0c7d2-1c2b-4a3e-9f00-0123456789ab") == 0,
       "systemuser");
    ok(c.exp >= now + 118 && c.exp <= now + 120 && c.nbf <= now, "ttl sets exp");
    ok(c.iss && strcmp(c.iss, "hendelse") == 0 && !c.app, "iss hendelse without --app");
    srv_claims_fini(&c);
    ok(verify_str(out, keys, SRV_JWT_VERIFY, now + 121) == SRV_JWT_EEXPIRED, "expires after ttl");
    free(out);
    free(eout);

    char *argv2[] = {"token", "--secret-file", sf, "--app", "ttd/my-app", "--org", "a\"b\\c", NULL};
    rc = run_token(argv2, &out, NULL);
    out[strcspn(out, "\n")] = '\0';
    rc = rc == 0 ? srv_jwt_verify(out, strlen(out), keys, SRV_JWT_VERIFY, now, &c) : -99;
    ok(rc == 0 && c.iss && strcmp(c.iss, "ttd") == 0 && c.app && strcmp(c.app, "my-app") == 0,
       "--app makes a PlatformAccessToken");
    ok(rc == 0 && c.org && strcmp(c.org, "a\"b\\c") == 0, "values are JSON-escaped");
    ok(rc == 0 && c.exp >= now + 3599 && c.exp <= now + 3601, "default ttl 3600");
    srv_claims_fini(&c);
    free(out);

    /* no key: random secret, a note on stderr, only UNVERIFIED accepts it */
    char *argv3[] = {"token", "--scope", "x", NULL};
    rc = run_token(argv3, &out, &eout);
    out[strcspn(out, "\n")] = '\0';
    ok(rc == 0 && count_lines(eout) == 1 && strstr(eout, "--auth unverified"),
       "random-key note on stderr");
    ok(verify_str(out, NULL, SRV_JWT_UNVERIFIED, now) == SRV_JWT_OK, "random-key token unverified");
    ok(verify_str(out, keys, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG, "random-key token not verified");
    free(out);
    free(eout);

    struct {
        char *argv[6];
        const char *name;
    } bad[] = {
        {{"token", "--bogus", NULL}, "unknown option"},
        {{"token", "--scope", NULL}, "missing value"},
        {{"token", "--ttl", "abc", NULL}, "non-numeric ttl"},
        {{"token", "--ttl=0", NULL}, "zero ttl"},
        {{"token", "--ttl", "-5", NULL}, "negative ttl"},
        {{"token", "--ttl", "10x", NULL}, "ttl with garbage"},
        {{"token", "--app", "ttd", NULL}, "app without slash"},
        {{"token", "--app=/x", NULL}, "app without org"},
        {{"token", "--app=ttd/", NULL}, "app without name"},
        {{"token", "--app=a/b/c", NULL}, "app with two slashes"},
        {{"token", "positional", NULL}, "positional argument"},
        {{"token", "--help=1", NULL}, "--help with a value"},
        {{"token", "--org=", NULL}, "empty value"},
        {{"token", "--secret-file", "/nonexistent/x", NULL}, "unreadable secret file"},
        {{"token", "--secret-file", sf, "--key-file", sf, NULL}, "both key options"},
        {{"token", "--key-file", sf, NULL}, "key file that is not PEM"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = run_token(bad[i].argv, &out, &eout);
        ok(rc == 2 && out[0] == '\0' && count_lines(eout) == 1, "bad usage: %s -> 2, one line",
           bad[i].name);
        if (count_lines(eout) != 1 || rc != 2) printf("# rc %d stderr: %s", rc, eout);
        free(out);
        free(eout);
    }
    char *help[] = {"token", "--help", NULL};
    rc = run_token(help, &out, NULL);
    ok(rc == 0 && strstr(out, "--secret-file") && strstr(out, "--ttl"), "--help");
    free(out);
    srv_jwt_keys_free(keys);
}

static void test_pkey(const char *type, const char *param, const char *alg)
{
    EVP_PKEY *k = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    ok(k != NULL, "%s key generated", alg);
    if (!k) return;
    char priv[512], pub[512], arg[600], err[256];
    snprintf(priv, sizeof priv, "%s/%s.key", tmpdir, alg);
    snprintf(pub, sizeof pub, "%s/%s.pub", tmpdir, alg);
    write_keypair(k, priv, pub);
    snprintf(arg, sizeof arg, "--key-file=%s", priv);
    char *argv[] = {"token", arg, "--org", "ttd", "--scope", "altinn:events.publish", NULL};
    char *out = NULL, *eout = NULL;
    int rc = run_token(argv, &out, &eout);
    ok(rc == 0 && eout[0] == '\0', "%s token minted", alg);
    out[strcspn(out, "\n")] = '\0';
    ok(pkey_verifies(k, out, alg), "%s signature verifies with EVP_DigestVerify", alg);

    int64_t now = (int64_t)time(NULL);
    srv_jwt_keys_t *pk = srv_jwt_keys_new();
    ok(srv_jwt_keys_add_public_key_file(pk, pub, err, sizeof err) == 0, "%s public key added", alg);
    srv_claims_t c;
    rc = srv_jwt_verify(out, strlen(out), pk, SRV_JWT_VERIFY, now, &c);
    ok(rc == 0 && c.org && strcmp(c.org, "ttd") == 0, "%s token verifies with srv_jwt_verify (%s)",
       alg, srv_jwt_strerror(rc));
    srv_claims_fini(&c);

    /* flip a signature bit */
    char *d2 = strrchr(out, '.');
    char orig = d2[1];
    d2[1] = orig == 'A' ? 'B' : 'A';
    ok(verify_str(out, pk, SRV_JWT_VERIFY, now) == SRV_JWT_ESIG, "%s tampered signature", alg);

    /* key confusion: HS256 MAC keyed with the public key PEM bytes */
    FILE *f = fopen(pub, "rb");
    char pem[4096];
    size_t pl = fread(pem, 1, sizeof pem, f);
    fclose(f);
    char *t = craft("{\"alg\":\"HS256\"}", "{\"urn:altinn:org\":\"evil\"}", (unsigned char *)pem,
                    pl, NULL);
    ok(verify_str(t, pk, SRV_JWT_VERIFY, now) == SRV_JWT_EALG,
       "%s key: HS256 with the public key as secret refused", alg);
    free(t);
    /* the other asymmetric alg is not accepted either */
    t = craft(strcmp(alg, "RS256") == 0 ? "{\"alg\":\"ES256\"}" : "{\"alg\":\"RS256\"}", "{}", NULL,
              0, "c2ln");
    ok(verify_str(t, pk, SRV_JWT_VERIFY, now) == SRV_JWT_EALG, "%s key: other alg refused", alg);
    free(t);

    /* an HS256-only server refuses the asymmetric token */
    srv_jwt_keys_t *hk = keys_with_secret(SECRET, SECRET_LEN);
    d2[1] = orig;
    ok(verify_str(out, pk, SRV_JWT_VERIFY, now) == SRV_JWT_OK &&
           verify_str(out, hk, SRV_JWT_VERIFY, now) == SRV_JWT_EALG,
       "%s token refused by HS256 keys", alg);
    srv_jwt_keys_free(hk);
    srv_jwt_keys_free(pk);
    free(out);
    free(eout);
    EVP_PKEY_free(k);
}

static void test_unsupported_keys(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char priv[512], pub[512], err[256];
    snprintf(priv, sizeof priv, "%s/p384.key", tmpdir);
    snprintf(pub, sizeof pub, "%s/p384.pub", tmpdir);
    write_keypair(k, priv, pub);
    srv_jwt_keys_t *pk = srv_jwt_keys_new();
    ok(srv_jwt_keys_add_public_key_file(pk, pub, err, sizeof err) == SRV_JWT_EIO &&
           strstr(err, "P-256"),
       "P-384 public key refused: %s", err);
    char *argv[] = {"token", "--key-file", priv, NULL};
    char *eout = NULL;
    ok(run_token(argv, NULL, &eout) == 2 && count_lines(eout) == 1, "P-384 private key refused");
    free(eout);
    EVP_PKEY_free(k);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    snprintf(priv, sizeof priv, "%s/rsa1024.key", tmpdir);
    snprintf(pub, sizeof pub, "%s/rsa1024.pub", tmpdir);
    write_keypair(k, priv, pub);
    ok(srv_jwt_keys_add_public_key_file(pk, pub, err, sizeof err) == SRV_JWT_EIO, "RSA-1024: %s",
       err);
    ok(srv_jwt_keys_add_public_key_file(pk, priv, err, sizeof err) == SRV_JWT_EIO,
       "private key as public key file refused");
    EVP_PKEY_free(k);
    snprintf(pub, sizeof pub, "%s/nope.pub", tmpdir);
    ok(srv_jwt_keys_add_public_key_file(pk, pub, err, sizeof err) == SRV_JWT_EIO &&
           strncmp(err, "cannot read ", 12) == 0,
       "missing public key file");
    srv_jwt_keys_free(pk);
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/test_jwt.XXXXXX", base);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_forgeries();
    test_times();
    test_unverified();
    test_claims();
    test_secret_files();
    test_token_command();
    test_pkey("RSA", NULL, "RS256");
    test_pkey("EC", "P-256", "ES256");
    test_unsupported_keys();
    cleanup();
    return done_testing();
}
