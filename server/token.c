/* server/token: `hendelse token [options]`, a JWT minter for local development and tests. It builds
 * the claims hendelse reads (api.md §6) and signs them with an HS256 secret file, a PEM private key
 * (RS256/ES256), or, with neither, a throw-away random key that only `--auth unverified` accepts.
 */
#include "server/jwt.h"

#include "filter/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#define TTL_DEFAULT 3600
#define TTL_MAX (10LL * 366 * 24 * 3600) /* keeps now + ttl far from overflow and sane */
#define MAX_SCOPES 64

static const char usage[] =
    "usage: hendelse token [options]\n"
    "  --secret-file FILE   sign HS256 with the secret in FILE (one trailing newline ignored)\n"
    "  --key-file FILE      sign with a PEM private key: RS256 (RSA) or ES256 (P-256)\n"
    "  --scope S            add a scope (repeatable; joined with spaces)\n"
    "  --org ORG            urn:altinn:org\n"
    "  --orgno N            urn:altinn:orgNumber\n"
    "  --userid N           urn:altinn:userid\n"
    "  --partyid N          urn:altinn:partyid\n"
    "  --systemuser UUID    authorization_details with a system user id\n"
    "  --app ORG/APP        a PlatformAccessToken: iss ORG, urn:altinn:app APP\n"
    "  --ttl SECONDS        lifetime (default 3600)\n"
    "Without --secret-file or --key-file the token is signed with a random key and is accepted "
    "only\n"
    "by a server running with --auth unverified (the development default).\n";

typedef struct {
    const char *secret_file;
    const char *key_file;
    const char *scopes[MAX_SCOPES];
    size_t nscopes;
    const char *org, *orgno, *userid, *partyid, *systemuser, *app;
    long long ttl;
} opts_t;

/* Option names that take a value; --help is the only flag. */
static const char *const value_opts[] = {"secret-file", "key-file", "scope",      "org", "orgno",
                                         "userid",      "partyid",  "systemuser", "app", "ttl"};

__attribute__((format(printf, 1, 2))) static int bad_usage(const char *fmt, ...)
{
    va_list ap;
    fputs("hendelse token: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see hendelse token --help)\n", stderr);
    return 2;
}

static int set_opt(opts_t *o, const char *name, const char *val)
{
    if (strcmp(name, "secret-file") == 0)
        o->secret_file = val;
    else if (strcmp(name, "key-file") == 0)
        o->key_file = val;
    else if (strcmp(name, "scope") == 0) {
        if (o->nscopes == MAX_SCOPES) return bad_usage("too many --scope options");
        o->scopes[o->nscopes++] = val;
    } else if (strcmp(name, "org") == 0)
        o->org = val;
    else if (strcmp(name, "orgno") == 0)
        o->orgno = val;
    else if (strcmp(name, "userid") == 0)
        o->userid = val;
    else if (strcmp(name, "partyid") == 0)
        o->partyid = val;
    else if (strcmp(name, "systemuser") == 0)
        o->systemuser = val;
    else if (strcmp(name, "app") == 0) {
        const char *slash = strchr(val, '/');
        if (!slash || slash == val || !slash[1] || strchr(slash + 1, '/'))
            return bad_usage("--app wants ORG/APP, got \"%s\"", val);
        o->app = val;
    } else if (strcmp(name, "ttl") == 0) {
        char *end = NULL;
        errno = 0;
        long long t = strtoll(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-' || val[0] == '+' || t < 1 || t > TTL_MAX)
            return bad_usage("--ttl wants a number of seconds from 1 to %lld, got \"%s\"", TTL_MAX,
                             val);
        o->ttl = t;
    }
    return 0;
}

static int parse_args(opts_t *o, int argc, char **argv, int *help)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return bad_usage("unexpected argument \"%s\"", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *known = NULL;
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++)
            if (strlen(value_opts[k]) == nlen && memcmp(value_opts[k], name, nlen) == 0)
                known = value_opts[k];
        if (!known) return bad_usage("unknown option \"%s\"", arg);
        const char *val;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return bad_usage("option \"%s\" needs a value", arg);
        if (!*val) return bad_usage("option \"%s\" needs a non-empty value", arg);
        int rc = set_opt(o, known, val);
        if (rc) return rc;
    }
    if (o->secret_file && o->key_file)
        return bad_usage("give --secret-file or --key-file, not both");
    return 0;
}

/* Appends ,"name":"value" (or without the comma for the first member). Escaping goes through the
 * JSON writer, which also refuses invalid UTF-8. */
static int put_string(filter_buf_t *b, int *first, const char *name, const char *val)
{
    if (!*first) filter_buf_puts(b, ",");
    *first = 0;
    filter_buf_json_string(b, name, strlen(name));
    filter_buf_puts(b, ":");
    return filter_buf_json_string(b, val, strlen(val));
}

/* Returns 0, or a bad_usage status if a value is not valid UTF-8. */
static int build_claims(const opts_t *o, int64_t now, filter_buf_t *b)
{
    int first = 1;
    filter_buf_puts(b, "{");
    char *app_org = NULL;
    const char *app_name = NULL;
    if (o->app) {
        const char *slash = strchr(o->app, '/');
        app_org = strndup(o->app, (size_t)(slash - o->app));
        if (!app_org) return 1;
        app_name = slash + 1;
    }
    /* A PlatformAccessToken names its org in iss; other tokens say who minted them. */
    int bad = put_string(b, &first, "iss", app_org ? app_org : "hendelse");
    if (app_name) bad |= put_string(b, &first, "urn:altinn:app", app_name);
    free(app_org);
    if (o->nscopes) {
        filter_buf_puts(b, ",\"scope\":");
        filter_buf_t joined = {0};
        for (size_t i = 0; i < o->nscopes; i++) {
            if (i) filter_buf_puts(&joined, " ");
            filter_buf_puts(&joined, o->scopes[i]);
        }
        if (filter_buf_failed(&joined))
            bad = 1;
        else
            bad |= filter_buf_json_string(b, joined.data, joined.len);
        filter_buf_fini(&joined);
    }
    if (o->org) bad |= put_string(b, &first, "urn:altinn:org", o->org);
    if (o->orgno) bad |= put_string(b, &first, "urn:altinn:orgNumber", o->orgno);
    if (o->userid) bad |= put_string(b, &first, "urn:altinn:userid", o->userid);
    if (o->partyid) bad |= put_string(b, &first, "urn:altinn:partyid", o->partyid);
    if (o->systemuser) {
        /* The shape Altinn issues for system users: an array of detail objects. */
        filter_buf_puts(b, ",\"authorization_details\":[{\"type\":\"urn:altinn:systemuser\","
                           "\"systemuser_id\":[");
        bad |= filter_buf_json_string(b, o->systemuser, strlen(o->systemuser));
        filter_buf_puts(b, "]");
        if (o->orgno) {
            filter_buf_puts(b, ",\"systemuser_org\":{\"authority\":\"iso6523-actorid-upis\","
                               "\"ID\":");
            filter_buf_t id = {0};
            filter_buf_printf(&id, "0192:%s", o->orgno);
            if (filter_buf_failed(&id))
                bad = 1;
            else
                bad |= filter_buf_json_string(b, id.data, id.len);
            filter_buf_fini(&id);
            filter_buf_puts(b, "}");
        }
        filter_buf_puts(b, "}]");
    }
    filter_buf_printf(b, ",\"iat\":%" PRId64 ",\"nbf\":%" PRId64 ",\"exp\":%" PRId64 "}", now, now,
                      now + (int64_t)o->ttl);
    return bad ? 2 : 0;
}

/* Refuses to prompt for a passphrase: this command runs in scripts and tests. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static char *sign_with_key_file(const char *path, const char *claims, size_t len, int *status)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        fprintf(stderr, "hendelse token: cannot read %s: %s\n", path, strerror(errno));
        *status = 2;
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!pkey) {
        fprintf(stderr, "hendelse token: %s is not an unencrypted PEM private key\n", path);
        *status = 2;
        return NULL;
    }
    char err[200];
    char *tok = srv_jwt_sign_pkey(pkey, claims, len, err, sizeof err);
    EVP_PKEY_free(pkey);
    if (!tok) {
        fprintf(stderr, "hendelse token: %s: %s\n", path, err);
        *status = 2;
    }
    return tok;
}

int srv_token_main(int argc, char **argv)
{
    opts_t o = {.ttl = TTL_DEFAULT};
    int help = 0;
    int rc = parse_args(&o, argc, argv, &help);
    if (rc) return rc;
    if (help) {
        fputs(usage, stdout);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    filter_buf_t claims = {0};
    rc = build_claims(&o, (int64_t)time(NULL), &claims);
    if (rc == 0 && filter_buf_failed(&claims)) rc = 1;
    if (rc) {
        filter_buf_fini(&claims);
        if (rc == 2) return bad_usage("option values must be valid UTF-8");
        fputs("hendelse token: out of memory\n", stderr);
        return 1;
    }

    char *tok = NULL;
    int status = 1;
    if (o.key_file) {
        tok = sign_with_key_file(o.key_file, claims.data, claims.len, &status);
    } else {
        unsigned char *secret = NULL;
        size_t secret_len = 0;
        unsigned char random_key[32];
        if (o.secret_file) {
            char err[300];
            if (srv_jwt_read_secret_file(o.secret_file, &secret, &secret_len, err, sizeof err) !=
                SRV_JWT_OK) {
                fprintf(stderr, "hendelse token: %s\n", err);
                filter_buf_fini(&claims);
                return 2;
            }
        } else {
            if (RAND_bytes(random_key, sizeof random_key) != 1) {
                fputs("hendelse token: cannot get random bytes for a signing key\n", stderr);
                filter_buf_fini(&claims);
                return 1;
            }
            secret = random_key;
            secret_len = sizeof random_key;
            fputs("hendelse token: note: no --secret-file or --key-file, so this token is signed "
                  "with a random key; only a server running with --auth unverified (the "
                  "development default) accepts it\n",
                  stderr);
        }
        tok = srv_jwt_sign_hs256(secret, secret_len, claims.data, claims.len);
        OPENSSL_cleanse(secret, secret_len);
        if (secret != random_key) free(secret);
        if (!tok) fputs("hendelse token: signing failed (out of memory)\n", stderr);
    }
    filter_buf_fini(&claims);
    if (!tok) return status;

    int out_ok = printf("%s\n", tok) >= 0 && fflush(stdout) == 0;
    free(tok);
    if (!out_ok) {
        fprintf(stderr, "hendelse token: cannot write the token: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
