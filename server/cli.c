#include "server/cli.h"

#include "filter/json.h"
#include "filter/subindex.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
    "usage:\n"
    "  hendelse serve [--config FILE] [--listen HOST:PORT] [--data DIR] [--base-url URL] [--dev] "
    "[options]\n"
    "  hendelse token [options]   print a signed JWT for local development and tests\n"
    "  hendelse --help | --version\n"
    "\n"
    "serve options:\n"
    "  --listen HOST:PORT            address to serve (default 127.0.0.1:5080; port 0 picks one)\n"
    "  --data DIR                    data directory (default ./hendelse-data)\n"
    "  --base-url URL                public base URL for links (default http(s)://HOST:PORT)\n"
    "  --dev                         development profile (auth unverified, http webhooks)\n"
    "  --auth jwt|unverified|none    how bearer tokens are checked\n"
    "  --jwt-hs256-secret-file FILE  HS256 secret for --auth jwt (repeatable)\n"
    "  --jwt-public-key-file FILE    RS256/ES256 public key (PEM) for --auth jwt (repeatable)\n"
    "  --dev-identity ID             identity for --auth none (default /org/ttd)\n"
    "  --authz allow-all|FILE        authorization: allow everything, or a policy file\n"
    "  --register FILE               register table: persons, units, parties, main units\n"
    "  --max-event-bytes N           largest accepted event (default 262144)\n"
    "  --max-store-bytes N           store map size, e.g. 16g (default 16 GiB)\n"
    "  --read-timeout DUR            drop a client that has not sent a whole request in DUR\n"
    "                                (default 30s)\n"
    "  --max-connections N           open client connections; more are closed at once\n"
    "                                (default 10000)\n"
    "  --max-header-bytes N          largest request line and headers; more closes the\n"
    "                                connection (default 64k)\n"
    "  --settle DUR                  hide events newer than DUR from queries (default 0)\n"
    "  --retention DUR               delete events and audit records older than DUR (default 90d;\n"
    "                                0 keeps everything)\n"
    "  --sync fsync|none             durability of commits (default fsync)\n"
    "  --webhook-ca-file FILE        extra trusted CA (PEM) for https webhook endpoints\n"
    "  --tls-cert FILE               serve https with this PEM certificate (and chain)\n"
    "  --tls-key FILE                the certificate's PEM private key (SIGHUP reloads both)\n"
    "  --tls-client-ca FILE          require client certificates issued by this CA (mTLS)\n"
    "  --webhook-timeout DUR         limit of one webhook request (default 45s)\n"
    "  --webhook-connections N       keep-alive connections per webhook destination (default 16)\n"
    "  --max-retry-after DUR         cap on a receiver's Retry-After delay (default 1h)\n"
    "  --retry-schedule LIST         delays between delivery attempts\n"
    "                                (default 10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h)\n"
    "  --validation-schedule LIST    delays between handshake attempts\n"
    "                                (default 1s,5s,10s,30s,60s,120s,120s,120s)\n"
    "  --log-level LEVEL             debug, info, warn or error (default info)\n"
    "  --log-format text|json        log lines on stderr as text or JSON objects (default text)\n"
    "  --request-log on|off|sample   a log line per request; sample: all below 100/s, then 1 in N\n"
    "                                (default sample)\n"
    "  --config FILE                 JSON object of options by long name, e.g. {\"listen\": ...};\n"
    "                                flags win over HENDELSE_<NAME> variables, which win over "
    "FILE\n"
    "  --print-config                print the effective configuration as JSON and exit\n"
    "\n"
    "token options:\n"
    "  --secret-file FILE | --key-file FILE, --scope S (repeatable), --org ORG, --orgno N,\n"
    "  --userid N, --partyid N, --systemuser UUID, --app ORG/APP, --ttl SECONDS (default 3600)\n";

void srv_cli_usage(void *f)
{
    fputs(usage_text, (FILE *)f);
}

int srv_parse_duration(const char *s, int64_t *us)
{
    int64_t total = 0;
    if (!s || !*s) return -1;
    while (*s) {
        char *end;
        int64_t mult;
        long long v;
        if (!isdigit((unsigned char)*s)) return -1;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || v < 0) return -1;
        if (strncmp(end, "ms", 2) == 0) {
            mult = 1000;
            end += 2;
        } else if (*end == 's') {
            mult = 1000000;
            end++;
        } else if (*end == 'm') {
            mult = 60LL * 1000000;
            end++;
        } else if (*end == 'h') {
            mult = 3600LL * 1000000;
            end++;
        } else if (*end == 'd') {
            mult = 86400LL * 1000000;
            end++;
        } else if (*end == '\0' && total == 0) {
            mult = 1000000;
        } else {
            return -1;
        }
        if (v > INT64_MAX / mult || total > INT64_MAX - v * mult) return -1;
        total += v * mult;
        s = end;
    }
    *us = total;
    return 0;
}

int srv_parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;
    if (!s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno) return -1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        mult = 1024;
        end++;
        break;
    case 'm':
        mult = 1024 * 1024;
        end++;
        break;
    case 'g':
        mult = 1024ULL * 1024 * 1024;
        end++;
        break;
    default:
        return -1;
    }
    if (*end == 'i' || *end == 'I') end++;
    if ((*end == 'b' || *end == 'B') && mult > 1) end++;
    if (*end) return -1;
    if (v > UINT64_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

static int parse_listen(const char *s, srv_config_t *cfg)
{
    static char host[256];
    const char *colon;
    char *end;
    long port;
    size_t hlen;

    if (s[0] == '[') { /* [v6]:port */
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') return -1;
        hlen = (size_t)(rb - s - 1);
        if (hlen == 0 || hlen >= sizeof host) return -1;
        memcpy(host, s + 1, hlen);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return -1;
        hlen = (size_t)(colon - s);
        if (hlen == 0 || hlen >= sizeof host || memchr(s, ':', hlen)) return -1;
        memcpy(host, s, hlen);
    }
    host[hlen] = '\0';
    if (!isdigit((unsigned char)colon[1])) return -1;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || port < 0 || port > 65535) return -1;
    cfg->listen_host = host;
    cfg->listen_port = (int)port;
    return 0;
}

/* ---- the options: one table for the command line, the environment and the config file ---- */

/* Where a setting came from, in rising precedence. */
enum { FROM_DEFAULT = 0, FROM_FILE, FROM_ENV, FROM_FLAG };
static const char *const from_names[] = {"default", "file", "env", "flag"};

enum {
    OPT_BOOL = 1,    /* true or false; on the command line --NAME alone means true */
    OPT_REPEAT = 2,  /* may be given more than once; the file may give an array */
    OPT_NUMBER = 4,  /* the file may give a JSON integer */
    OPT_LIST = 8,    /* a comma-separated list; the file may give an array of strings */
    OPT_SECRET = 16, /* the value itself is a secret: never echoed in errors nor printed */
    OPT_META = 32,   /* about the command line itself: not a key of the file */
};

/* Checks val and stores it in cfg. Returns NULL, or what was expected instead (for the error line).
 * A repeatable option is cleared by val == NULL. */
typedef const char *(*set_fn)(srv_config_t *cfg, const char *val);

typedef struct {
    const char *name;
    unsigned flags;
    const char *def; /* the default as --print-config shows it; NULL: unset */
    set_fn set;
} opt_t;

static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

static const char *set_listen(srv_config_t *cfg, const char *v)
{
    return parse_listen(v, cfg) == 0 ? NULL : "expected HOST:PORT";
}

static const char *set_data(srv_config_t *cfg, const char *v)
{
    if (!*v) return "expected a directory";
    cfg->data_dir = v;
    return NULL;
}

static const char *set_base_url(srv_config_t *cfg, const char *v)
{
    if (!(strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) || strlen(v) < 9)
        return "expected an http:// or https:// URL";
    cfg->base_url = v;
    return NULL;
}

static const char *set_dev(srv_config_t *cfg, const char *v)
{
    return parse_bool(v, &cfg->dev) == 0 ? NULL : "expected true or false";
}

static const char *set_auth(srv_config_t *cfg, const char *v)
{
    if (strcmp(v, "jwt") == 0)
        cfg->auth = SRV_AUTH_JWT;
    else if (strcmp(v, "unverified") == 0)
        cfg->auth = SRV_AUTH_UNVERIFIED;
    else if (strcmp(v, "none") == 0)
        cfg->auth = SRV_AUTH_NONE;
    else
        return "expected jwt, unverified or none";
    return NULL;
}

static const char *add_file(const char **files, size_t *n, const char *v)
{
    if (!v) {
        *n = 0;
        return NULL;
    }
    if (!*v) return "expected a file";
    if (*n >= SRV_MAX_KEY_FILES) return "too many files (at most 8)";
    files[(*n)++] = v;
    return NULL;
}

static const char *set_hs256(srv_config_t *cfg, const char *v)
{
    return add_file(cfg->hs256_files, &cfg->n_hs256_files, v);
}

static const char *set_pubkey(srv_config_t *cfg, const char *v)
{
    return add_file(cfg->pubkey_files, &cfg->n_pubkey_files, v);
}

static const char *set_dev_identity(srv_config_t *cfg, const char *v)
{
    if (v[0] != '/') return "expected e.g. /org/ttd";
    cfg->dev_identity = v;
    return NULL;
}

static const char *set_authz(srv_config_t *cfg, const char *v)
{
    if (!*v) return "expected allow-all or a policy file";
    cfg->authz = v;
    return NULL;
}

/* A file option: any non-empty path (whether it can be read is checked where it is used). */
#define FILE_SETTER(fn, field)                                                                     \
    static const char *fn(srv_config_t *cfg, const char *v)                                        \
    {                                                                                              \
        if (!*v) return "expected a file";                                                         \
        cfg->field = v;                                                                            \
        return NULL;                                                                               \
    }
FILE_SETTER(set_register, register_file)
FILE_SETTER(set_webhook_ca, webhook_ca_file)
FILE_SETTER(set_tls_cert, tls_cert)
FILE_SETTER(set_tls_key, tls_key)
FILE_SETTER(set_tls_client_ca, tls_client_ca)

static const char *set_max_event_bytes(srv_config_t *cfg, const char *v)
{
    uint64_t n;
    if (srv_parse_bytes(v, &n) != 0 || n < 64 || n > (64u << 20)) return "expected 64 to 64m";
    cfg->max_event_bytes = (size_t)n;
    return NULL;
}

static const char *set_max_store_bytes(srv_config_t *cfg, const char *v)
{
    uint64_t n;
    if (srv_parse_bytes(v, &n) != 0 || n < (1u << 20)) return "expected at least 1m";
    cfg->max_store_bytes = n;
    return NULL;
}

static const char *set_read_timeout(srv_config_t *cfg, const char *v)
{
    int64_t us;
    if (srv_parse_duration(v, &us) != 0 || us < 1000 || us > 86400LL * 1000000)
        return "expected a duration like 30s (1ms to 1d)";
    cfg->read_timeout_us = us;
    return NULL;
}

static const char *set_max_connections(srv_config_t *cfg, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 1000000) return "expected a number from 1 to 1000000";
    cfg->max_connections = (size_t)n;
    return NULL;
}

static const char *set_max_header_bytes(srv_config_t *cfg, const char *v)
{
    uint64_t n;
    if (srv_parse_bytes(v, &n) != 0 || n < 1024 || n > (16u << 20)) return "expected 1k to 16m";
    cfg->max_header_bytes = (size_t)n;
    return NULL;
}

static const char *set_settle(srv_config_t *cfg, const char *v)
{
    return srv_parse_duration(v, &cfg->settle_us) == 0 ? NULL : "expected a duration like 30s";
}

static const char *set_retention(srv_config_t *cfg, const char *v)
{
    return srv_parse_duration(v, &cfg->retention_us) == 0 ? NULL
                                                          : "expected a duration like 90d, or 0";
}

static const char *set_sync(srv_config_t *cfg, const char *v)
{
    if (strcmp(v, "fsync") == 0)
        cfg->sync_none = 0;
    else if (strcmp(v, "none") == 0)
        cfg->sync_none = 1;
    else
        return "expected fsync or none";
    return NULL;
}

static const char *set_webhook_timeout(srv_config_t *cfg, const char *v)
{
    int64_t us;
    if (srv_parse_duration(v, &us) != 0 || us <= 0) return "expected a duration like 45s";
    cfg->webhook_timeout_us = us;
    return NULL;
}

static const char *set_max_retry_after(srv_config_t *cfg, const char *v)
{
    int64_t us;
    if (srv_parse_duration(v, &us) != 0 || us <= 0) return "expected a duration like 1h";
    cfg->max_retry_after_us = us;
    return NULL;
}

static const char *set_webhook_connections(srv_config_t *cfg, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 1 || n > 256) return "expected a number of connections from 1 to 256";
    cfg->webhook_connections = (size_t)n;
    return NULL;
}

static const char *set_retry(srv_config_t *cfg, const char *v)
{
    int n = filter_schedule_parse(v, cfg->retry_us, 31);
    if (n < 1) return "expected delays like 10s,30s,1m";
    cfg->n_retry = (size_t)n;
    return NULL;
}

static const char *set_validation(srv_config_t *cfg, const char *v)
{
    int n = filter_schedule_parse(v, cfg->validation_us, 31);
    if (n < 1) return "expected delays like 1s,5s,10s";
    cfg->n_validation = (size_t)n;
    return NULL;
}

static const char *set_log_level(srv_config_t *cfg, const char *v)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(v, names[i]) == 0) {
            cfg->log_level = (srv_log_level_t)i;
            return NULL;
        }
    }
    return "expected debug, info, warn or error";
}

static const char *set_log_format(srv_config_t *cfg, const char *v)
{
    if (strcmp(v, "text") == 0)
        cfg->log_json = 0;
    else if (strcmp(v, "json") == 0)
        cfg->log_json = 1;
    else
        return "expected text or json";
    return NULL;
}

static const char *set_request_log(srv_config_t *cfg, const char *v)
{
    if (strcmp(v, "sample") == 0)
        cfg->request_log = SRV_REQLOG_SAMPLE;
    else if (strcmp(v, "on") == 0)
        cfg->request_log = SRV_REQLOG_ON;
    else if (strcmp(v, "off") == 0)
        cfg->request_log = SRV_REQLOG_OFF;
    else
        return "expected on, off or sample";
    return NULL;
}

/* Every option, in the order --print-config shows them. A new option is one row and a setter. */
static const opt_t opts[] = {
    {"config", OPT_META, NULL, NULL},
    {"print-config", OPT_META | OPT_BOOL, NULL, NULL},
    {"help", OPT_META | OPT_BOOL, NULL, NULL},
    {"listen", 0, "127.0.0.1:5080", set_listen},
    {"data", 0, "./hendelse-data", set_data},
    {"base-url", 0, NULL, set_base_url},
    {"dev", OPT_BOOL, "false", set_dev},
    {"auth", 0, NULL /* depends on dev */, set_auth},
    {"jwt-hs256-secret-file", OPT_REPEAT, NULL, set_hs256},
    {"jwt-public-key-file", OPT_REPEAT, NULL, set_pubkey},
    {"dev-identity", 0, "/org/ttd", set_dev_identity},
    {"authz", 0, "allow-all", set_authz},
    {"register", 0, NULL, set_register},
    {"max-event-bytes", OPT_NUMBER, "262144", set_max_event_bytes},
    {"max-store-bytes", OPT_NUMBER, "16g", set_max_store_bytes},
    {"read-timeout", OPT_NUMBER, "30s", set_read_timeout},
    {"max-connections", OPT_NUMBER, "10000", set_max_connections},
    {"max-header-bytes", OPT_NUMBER, "64k", set_max_header_bytes},
    {"settle", OPT_NUMBER, "0", set_settle},
    {"retention", OPT_NUMBER, "90d", set_retention},
    {"sync", 0, "fsync", set_sync},
    {"tls-cert", 0, NULL, set_tls_cert},
    {"tls-key", 0, NULL, set_tls_key},
    {"tls-client-ca", 0, NULL, set_tls_client_ca},
    {"webhook-ca-file", 0, NULL, set_webhook_ca},
    {"webhook-timeout", OPT_NUMBER, "45s", set_webhook_timeout},
    {"webhook-connections", OPT_NUMBER, "16", set_webhook_connections},
    {"max-retry-after", OPT_NUMBER, "1h", set_max_retry_after},
    {"retry-schedule", OPT_LIST, "10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h", set_retry},
    {"validation-schedule", OPT_LIST, "1s,5s,10s,30s,60s,120s,120s,120s", set_validation},
    {"log-level", 0, "info", set_log_level},
    {"log-format", 0, "text", set_log_format},
    {"request-log", 0, "sample", set_request_log},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* Options that later work fills in; they are recognised so that the error says so plainly. */
static const char *const later_opts[] = {
    NULL,
};

/* What each option was last set to and by whom, for the precedence of repeatable options and for
 * --print-config. */
typedef struct {
    int from;
    const char *vals[SRV_MAX_KEY_FILES];
    size_t n;
} seen_t;

/* A parse in progress. */
typedef struct {
    srv_config_t *cfg;
    seen_t seen[N_OPTS];
    const char *file; /* the config file, while it is applied */
} parse_t;

static const opt_t *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0) return &opts[i];
    return NULL;
}

static int is_later(const char *name, size_t len)
{
    for (int k = 0; later_opts[k]; k++)
        if (strlen(later_opts[k]) == len && memcmp(later_opts[k], name, len) == 0) return 1;
    return 0;
}

/* Copies of the values read from the file and the environment. Reachable from here for the life of
 * the process (the configuration points into them), so never freed. */
typedef struct kept {
    struct kept *next;
    char s[];
} kept_t;
static kept_t *kept_strings;

static const char *keep(const char *s, size_t n)
{
    kept_t *k = malloc(sizeof *k + n + 1);
    if (!k) return NULL;
    memcpy(k->s, s, n);
    k->s[n] = '\0';
    k->next = kept_strings;
    kept_strings = k;
    return k->s;
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "hendelse serve: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 2;
}

/* s as it may appear inside an error line: quoted, control characters replaced, at most ~80 bytes.
 */
static const char *shown_q(const char *s, char quote, char *out, size_t outlen)
{
    size_t o = 0, i;
    out[o++] = quote;
    for (i = 0; s[i] && o + 5 < outlen && i < 80; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == quote ? '?' : s[i];
    if (s[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = quote;
    out[o] = '\0';
    return out;
}

static const char *shown(const char *s, char *out, size_t outlen)
{
    return shown_q(s, '\'', out, outlen);
}

/* "HENDELSE_" and the name upper-cased with '-' as '_'. */
static void env_name(const char *name, char *out, size_t outlen)
{
    size_t o = (size_t)snprintf(out, outlen, "HENDELSE_");
    for (; *name && o + 1 < outlen; name++)
        out[o++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[o] = '\0';
}

/* One line for a value that its option refuses, naming where it came from. */
static int bad_value(const parse_t *p, const opt_t *o, int from, const char *val, const char *why)
{
    char q[128], env[80];
    if (o->flags & OPT_SECRET)
        snprintf(q, sizeof q, "(hidden)");
    else
        shown(val, q, sizeof q);
    switch (from) {
    case FROM_FILE:
        return bad("config file %s: invalid value %s for \"%s\": %s", p->file, q, o->name, why);
    case FROM_ENV:
        env_name(o->name, env, sizeof env);
        return bad("invalid %s %s: %s", env, q, why);
    default:
        return bad("invalid --%s %s: %s", o->name, q, why);
    }
}

/* Applies one setting (val NULL: clear a repeatable option). A repeatable option given at a higher
 * precedence replaces what lower ones gave; given twice at the same one, both count. 0 or 2. */
static int apply(parse_t *p, const opt_t *o, int from, const char *val)
{
    seen_t *sn = &p->seen[o - opts];
    const char *why;
    if (!val && (o->flags & OPT_REPEAT) == 0) return 0;
    if ((o->flags & OPT_REPEAT) && (sn->from != from || !val)) {
        o->set(p->cfg, NULL);
        sn->n = 0;
    }
    if (val) {
        why = o->set(p->cfg, val);
        if (why) return bad_value(p, o, from, val, why);
        if ((o->flags & OPT_REPEAT) == 0) sn->n = 0;
        if (sn->n < SRV_MAX_KEY_FILES) sn->vals[sn->n++] = val;
    }
    sn->from = from;
    return 0;
}

/* ---- the config file ---- */

#define CONFIG_MAX_BYTES (1u << 20)

static char *read_file(const char *path, size_t *len, int *err)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (!f) {
        *err = errno;
        return NULL;
    }
    buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        *err = ENOMEM;
        return NULL;
    }
    n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    if (ferror(f)) {
        *err = errno ? errno : EIO;
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    if (n > CONFIG_MAX_BYTES) {
        *err = EFBIG;
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* The text of a scalar member value for option o, copied; NULL with *why set when its JSON type
 * does not fit the option. */
static const char *scalar_text(const opt_t *o, const filter_json_t *v, const char **why)
{
    if (o->flags & OPT_BOOL) {
        if (v->type == FILTER_JSON_TRUE) return "true";
        if (v->type == FILTER_JSON_FALSE) return "false";
        *why = "expected true or false";
        return NULL;
    }
    if (v->type == FILTER_JSON_STRING ||
        (v->type == FILTER_JSON_NUMBER && (o->flags & OPT_NUMBER))) {
        if (strlen(v->str) != v->len) {
            *why = "expected a string without NUL characters";
            return NULL;
        }
        return keep(v->str, v->len);
    }
    *why = (o->flags & OPT_NUMBER)                ? "expected a string or a number"
           : (o->flags & (OPT_REPEAT | OPT_LIST)) ? "expected a string or an array of strings"
                                                  : "expected a string";
    return NULL;
}

static int apply_member(parse_t *p, const opt_t *o, const filter_json_t *v)
{
    const char *why = NULL, *val;

    if (v->type == FILTER_JSON_ARRAY && (o->flags & OPT_REPEAT)) {
        if (apply(p, o, FROM_FILE, NULL) != 0) return 2;
        for (size_t i = 0; i < v->count; i++) {
            if (v->items[i]->type != FILTER_JSON_STRING) {
                why = "expected a string or an array of strings";
                break;
            }
            if (!(val = scalar_text(o, v->items[i], &why))) break;
            if (apply(p, o, FROM_FILE, val) != 0) return 2;
        }
        if (!why) return 0;
    } else if (v->type == FILTER_JSON_ARRAY && (o->flags & OPT_LIST)) {
        filter_buf_t b = {0};
        for (size_t i = 0; i < v->count && !why; i++) {
            if (v->items[i]->type != FILTER_JSON_STRING ||
                strlen(v->items[i]->str) != v->items[i]->len)
                why = "expected a string or an array of strings";
            else
                filter_buf_printf(&b, "%s%s", i ? "," : "", v->items[i]->str);
        }
        if (!why) {
            val = filter_buf_failed(&b) ? NULL : keep(b.data ? b.data : "", b.len);
            filter_buf_fini(&b);
            if (!val) return bad("out of memory reading config file %s", p->file);
            return apply(p, o, FROM_FILE, val);
        }
        filter_buf_fini(&b);
    } else if ((val = scalar_text(o, v, &why))) {
        return apply(p, o, FROM_FILE, val);
    }
    if (!why) return bad("out of memory reading config file %s", p->file);
    return bad("config file %s: wrong type for \"%s\": %s", p->file, o->name, why);
}

static int apply_file(parse_t *p, const char *path)
{
    char *buf, err[160], q[128];
    size_t len = 0;
    int e = 0, rc;
    filter_json_doc_t *doc = NULL;
    const filter_json_t *root;
    filter_json_limits_t lim = {CONFIG_MAX_BYTES, 16, 100000};

    p->file = path;
    buf = read_file(path, &len, &e);
    if (!buf) return bad("cannot read config file %s: %s", path, strerror(e));
    rc = filter_json_parse(buf, len, &lim, &doc, err, sizeof err);
    free(buf);
    if (rc != 0) {
        for (char *c = err; *c; c++) /* one line */
            if ((unsigned char)*c < 0x20) *c = ' ';
        return bad("config file %s is not valid JSON: %s", path, err);
    }
    root = filter_json_root(doc);
    if (root->type != FILTER_JSON_OBJECT) {
        filter_json_doc_free(doc);
        return bad("config file %s: expected a JSON object of options", path);
    }
    rc = 0;
    for (size_t i = 0; i < root->count && rc == 0; i++) {
        const char *k = root->keys[i];
        size_t kl = root->key_lens[i];
        const opt_t *o = find_opt(k, kl);
        if (!o || (o->flags & OPT_META)) {
            rc = is_later(k, kl)
                     ? bad("config file %s: key \"%s\" is not yet supported by this build", path, k)
                     : bad("config file %s: unknown key %s", path, shown_q(k, '"', q, sizeof q));
            break;
        }
        rc = apply_member(p, o, root->items[i]);
    }
    filter_json_doc_free(doc);
    return rc;
}

/* ---- the environment ---- */

static int apply_env(parse_t *p)
{
    char name[80];
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        const char *v, *kv;
        if (o->flags & OPT_META) continue;
        env_name(o->name, name, sizeof name);
        v = getenv(name);
        if (!v || !*v) continue;     /* empty is unset, as container tools often pass it */
        if (o->flags & OPT_REPEAT) { /* comma-separated */
            while (*v) {
                const char *c = strchr(v, ',');
                size_t n = c ? (size_t)(c - v) : strlen(v);
                if (n) {
                    if (!(kv = keep(v, n))) return bad("out of memory");
                    if (apply(p, o, FROM_ENV, kv) != 0) return 2;
                }
                v += n + (c ? 1 : 0);
            }
            continue;
        }
        if (!(kv = keep(v, strlen(v)))) return bad("out of memory");
        if (apply(p, o, FROM_ENV, kv) != 0) return 2;
    }
    return 0;
}

/* ---- the command line ---- */

/* Reads the option at argv[*i] (and its value, moving *i past it). 0, or 2 after the error line. */
static int read_flag(int argc, char **argv, int *i, const opt_t **opt, const char **val)
{
    const char *arg = argv[*i], *eq, *name;
    size_t nlen;
    const opt_t *o;

    if (strncmp(arg, "--", 2) != 0) return bad("unexpected argument '%s'", arg);
    name = arg + 2;
    eq = strchr(name, '=');
    nlen = eq ? (size_t)(eq - name) : strlen(name);
    o = nlen ? find_opt(name, nlen) : NULL;
    if (!o) {
        if (nlen && nlen < 64 && is_later(name, nlen))
            return bad("option --%.*s is not yet supported by this build", (int)nlen, name);
        return bad("unknown option '%s'", arg);
    }
    if (o->flags & OPT_BOOL) {
        *val = eq ? eq + 1 : "true";
    } else if (eq) {
        *val = eq + 1;
    } else {
        if (*i + 1 >= argc) return bad("option --%s needs a value", o->name);
        *val = argv[++*i];
    }
    *opt = o;
    return 0;
}

/* ---- --print-config ---- */

static void put_str(filter_buf_t *b, const char *s)
{
    if (filter_buf_json_string(b, s, strlen(s)) != 0) filter_buf_puts(b, "\"(invalid UTF-8)\"");
}

/* A URL with its password, if it carries one, masked. */
static void put_url(filter_buf_t *b, const char *s)
{
    const char *scheme = strstr(s, "://"), *at, *colon, *end;
    filter_buf_t t = {0};
    if (!scheme) {
        put_str(b, s);
        return;
    }
    end = scheme + 3 + strcspn(scheme + 3, "/?#");
    at = memchr(scheme + 3, '@', (size_t)(end - scheme - 3));
    colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
    if (!colon) {
        put_str(b, s);
        return;
    }
    filter_buf_append(&t, s, (size_t)(colon + 1 - s));
    filter_buf_puts(&t, "********");
    filter_buf_puts(&t, at);
    put_str(b, filter_buf_failed(&t) ? "********" : t.data);
    filter_buf_fini(&t);
}

static void put_value(filter_buf_t *b, const opt_t *o, const char *v)
{
    int t;
    if (!v)
        filter_buf_puts(b, "null");
    else if (o->flags & OPT_SECRET)
        filter_buf_puts(b, "\"********\"");
    else if ((o->flags & OPT_BOOL) && parse_bool(v, &t) == 0)
        filter_buf_puts(b, t ? "true" : "false");
    else if (strcmp(o->name, "base-url") == 0)
        put_url(b, v);
    else
        put_str(b, v);
}

/* Prints every option with its effective value and where it came from. The contents of secret
 * files are never read here: options hold their paths. */
static int print_config(const parse_t *p, const char *config, int config_from)
{
    filter_buf_t b = {0};
    filter_buf_puts(&b, "{\n  \"config\": {\"value\": ");
    if (config)
        put_str(&b, config);
    else
        filter_buf_puts(&b, "null");
    filter_buf_printf(&b, ", \"source\": \"%s\"}", from_names[config_from]);
    for (size_t i = 0; i < N_OPTS; i++) {
        const opt_t *o = &opts[i];
        const seen_t *sn = &p->seen[i];
        if (o->flags & OPT_META) continue;
        filter_buf_puts(&b, ",\n  ");
        put_str(&b, o->name);
        filter_buf_puts(&b, ": {\"value\": ");
        if (o->flags & OPT_REPEAT) {
            filter_buf_puts(&b, "[");
            for (size_t k = 0; k < sn->n; k++) {
                if (k) filter_buf_puts(&b, ", ");
                put_value(&b, o, sn->vals[k]);
            }
            filter_buf_puts(&b, "]");
        } else {
            put_value(&b, o, sn->n ? sn->vals[0] : NULL);
        }
        filter_buf_printf(&b, ", \"source\": \"%s\"}", from_names[sn->from]);
    }
    filter_buf_puts(&b, "\n}\n");
    if (filter_buf_failed(&b)) {
        filter_buf_fini(&b);
        return bad("out of memory");
    }
    fwrite(b.data, 1, b.len, stdout);
    fflush(stdout);
    filter_buf_fini(&b);
    return 1;
}

/* ---- all together ---- */

int srv_cli_parse(int argc, char **argv, srv_config_t *cfg)
{
    parse_t p;
    const char *config = NULL, *val;
    const opt_t *o;
    int config_from = FROM_DEFAULT, print = 0, rc, t;
    size_t ai;

    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = SRV_LOG_INFO;
    cfg->request_log = SRV_REQLOG_SAMPLE;
    cfg->dev_identity = "/org/ttd";
    cfg->authz = "allow-all";

    /* The command line first for what decides the rest: --help, --print-config, --config; every
     * flag's syntax is checked here too, its value in its turn below. */
    for (int i = 1; i < argc; i++) {
        if ((rc = read_flag(argc, argv, &i, &o, &val)) != 0) return rc;
        if (strcmp(o->name, "help") == 0 || strcmp(o->name, "print-config") == 0) {
            if (parse_bool(val, &t) != 0) return bad("option --%s takes no value", o->name);
            if (t && strcmp(o->name, "help") == 0) {
                srv_cli_usage(stdout);
                return 1;
            }
            if (strcmp(o->name, "print-config") == 0) print = t;
        } else if (strcmp(o->name, "config") == 0) {
            if (!*val) return bad("--config needs a file");
            config = val;
            config_from = FROM_FLAG;
        }
    }
    if (!config && (val = getenv("HENDELSE_CONFIG")) && *val) {
        config = val;
        config_from = FROM_ENV;
    }

    /* The defaults go through the same setters as everything else. */
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].def && apply(&p, &opts[i], FROM_DEFAULT, opts[i].def) != 0) return 2;
    cfg->max_store_bytes = 0;             /* the store's own default, which "16g" shows */
    cfg->n_retry = cfg->n_validation = 0; /* the delivery engine's defaults, shown above */
    if (config && (rc = apply_file(&p, config)) != 0) return rc;
    p.file = NULL;
    if ((rc = apply_env(&p)) != 0) return rc;
    for (int i = 1; i < argc; i++) {
        read_flag(argc, argv, &i, &o, &val); /* cannot fail: checked above */
        if (o->flags & OPT_META) continue;
        if ((rc = apply(&p, o, FROM_FLAG, val)) != 0) return rc;
    }

    /* Rules between options. */
    ai = (size_t)(find_opt("auth", 4) - opts);
    if (p.seen[ai].n == 0) {
        cfg->auth = cfg->dev ? SRV_AUTH_UNVERIFIED : SRV_AUTH_JWT;
        p.seen[ai].vals[0] = cfg->dev ? "unverified" : "jwt";
        p.seen[ai].n = 1;
    }
    if (!cfg->tls_cert != !cfg->tls_key)
        return bad("--tls-cert and --tls-key go together: give both to serve https");
    if (cfg->tls_client_ca && !cfg->tls_cert)
        return bad("--tls-client-ca needs --tls-cert and --tls-key");
    if (cfg->auth == SRV_AUTH_JWT && cfg->n_hs256_files == 0 && cfg->n_pubkey_files == 0)
        return bad("--auth jwt needs --jwt-hs256-secret-file FILE or --jwt-public-key-file FILE "
                   "(or use --dev for the development profile)");
    if (print) return print_config(&p, config, config_from);
    return 0;
}
