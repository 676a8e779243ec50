#include "server/cli.h"

#include "filter/subindex.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "  --base-url URL                public base URL for links (default http://HOST:PORT)\n"
    "  --dev                         development profile (auth unverified, http webhooks)\n"
    "  --auth jwt|unverified|none    how bearer tokens are checked\n"
    "  --jwt-hs256-secret-file FILE  HS256 secret for --auth jwt (repeatable)\n"
    "  --jwt-public-key-file FILE    RS256/ES256 public key (PEM) for --auth jwt (repeatable)\n"
    "  --dev-identity ID             identity for --auth none (default /org/ttd)\n"
    "  --authz allow-all|FILE        authorization: allow everything, or a policy file\n"
    "  --register FILE               register table: persons, units, parties, main units\n"
    "  --max-event-bytes N           largest accepted event (default 262144)\n"
    "  --max-store-bytes N           store map size, e.g. 16g (default 16 GiB)\n"
    "  --settle DUR                  hide events newer than DUR from queries (default 0)\n"
    "  --sync fsync|none             durability of commits (default fsync)\n"
    "  --webhook-ca-file FILE        extra trusted CA (PEM) for https webhook endpoints\n"
    "  --webhook-timeout DUR         limit of one webhook request (default 45s)\n"
    "  --retry-schedule LIST         delays between delivery attempts\n"
    "                                (default 10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h)\n"
    "  --validation-schedule LIST    delays between handshake attempts\n"
    "                                (default 1s,5s,10s,30s,60s,120s,120s,120s)\n"
    "  --log-level info|debug        log verbosity on stderr (default info)\n"
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

/* Options that later work fills in; they are recognised so that the error says so plainly. */
static const char *const later_opts[] = {
    "config", "tls-cert", "tls-key", "tls-client-ca", "retention", NULL,
};

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

int srv_cli_parse(int argc, char **argv, srv_config_t *cfg)
{
    int auth_set = 0;
    memset(cfg, 0, sizeof *cfg);
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 5080;
    cfg->data_dir = "./hendelse-data";
    cfg->dev_identity = "/org/ttd";
    cfg->authz = "allow-all";
    cfg->max_event_bytes = 262144;

    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *arg = argv[i], *val = NULL, *eq;
        size_t nlen;

        if (strncmp(arg, "--", 2) != 0) return bad("unexpected argument '%s'", arg);
        arg += 2;
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen == 0 || nlen >= sizeof name) return bad("unknown option '%s'", argv[i]);
        memcpy(name, arg, nlen);
        name[nlen] = '\0';

        if (strcmp(name, "help") == 0) {
            srv_cli_usage(stdout);
            return 1;
        }
        if (strcmp(name, "dev") == 0) {
            if (eq) return bad("option --dev takes no value");
            cfg->dev = 1;
            continue;
        }
        /* every other option takes a value */
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) return bad("option --%s needs a value", name);
            val = argv[++i];
        }
        for (int k = 0; later_opts[k]; k++)
            if (strcmp(name, later_opts[k]) == 0)
                return bad("option --%s is not yet supported by this build", name);

        if (strcmp(name, "listen") == 0) {
            if (parse_listen(val, cfg) != 0)
                return bad("invalid --listen '%s': expected HOST:PORT", val);
        } else if (strcmp(name, "data") == 0) {
            if (!*val) return bad("--data needs a directory");
            cfg->data_dir = val;
        } else if (strcmp(name, "base-url") == 0) {
            size_t l = strlen(val);
            if (!(strncmp(val, "http://", 7) == 0 || strncmp(val, "https://", 8) == 0) || l < 9)
                return bad("invalid --base-url '%s': expected an http:// or https:// URL", val);
            cfg->base_url = val;
        } else if (strcmp(name, "auth") == 0) {
            if (strcmp(val, "jwt") == 0)
                cfg->auth = SRV_AUTH_JWT;
            else if (strcmp(val, "unverified") == 0)
                cfg->auth = SRV_AUTH_UNVERIFIED;
            else if (strcmp(val, "none") == 0)
                cfg->auth = SRV_AUTH_NONE;
            else
                return bad("invalid --auth '%s': expected jwt, unverified or none", val);
            auth_set = 1;
        } else if (strcmp(name, "jwt-hs256-secret-file") == 0) {
            if (cfg->n_hs256_files >= SRV_MAX_KEY_FILES)
                return bad("too many --jwt-hs256-secret-file options");
            cfg->hs256_files[cfg->n_hs256_files++] = val;
        } else if (strcmp(name, "jwt-public-key-file") == 0) {
            if (cfg->n_pubkey_files >= SRV_MAX_KEY_FILES)
                return bad("too many --jwt-public-key-file options");
            cfg->pubkey_files[cfg->n_pubkey_files++] = val;
        } else if (strcmp(name, "dev-identity") == 0) {
            if (val[0] != '/')
                return bad("invalid --dev-identity '%s': expected e.g. /org/ttd", val);
            cfg->dev_identity = val;
        } else if (strcmp(name, "authz") == 0) {
            if (!*val) return bad("--authz needs allow-all or a policy file");
            cfg->authz = val;
        } else if (strcmp(name, "register") == 0) {
            if (!*val) return bad("--register needs a file");
            cfg->register_file = val;
        } else if (strcmp(name, "max-event-bytes") == 0) {
            uint64_t v;
            if (srv_parse_bytes(val, &v) != 0 || v < 64 || v > (64u << 20))
                return bad("invalid --max-event-bytes '%s': expected 64 to 64m", val);
            cfg->max_event_bytes = (size_t)v;
        } else if (strcmp(name, "max-store-bytes") == 0) {
            uint64_t v;
            if (srv_parse_bytes(val, &v) != 0 || v < (1u << 20))
                return bad("invalid --max-store-bytes '%s': expected at least 1m", val);
            cfg->max_store_bytes = v;
        } else if (strcmp(name, "settle") == 0) {
            if (srv_parse_duration(val, &cfg->settle_us) != 0)
                return bad("invalid --settle '%s': expected a duration like 30s", val);
        } else if (strcmp(name, "sync") == 0) {
            if (strcmp(val, "fsync") == 0)
                cfg->sync_none = 0;
            else if (strcmp(val, "none") == 0)
                cfg->sync_none = 1;
            else
                return bad("invalid --sync '%s': expected fsync or none", val);
        } else if (strcmp(name, "webhook-ca-file") == 0) {
            if (!*val) return bad("--webhook-ca-file needs a file");
            cfg->webhook_ca_file = val;
        } else if (strcmp(name, "webhook-timeout") == 0) {
            if (srv_parse_duration(val, &cfg->webhook_timeout_us) != 0 ||
                cfg->webhook_timeout_us <= 0)
                return bad("invalid --webhook-timeout '%s': expected a duration like 45s", val);
        } else if (strcmp(name, "retry-schedule") == 0) {
            int n = filter_schedule_parse(val, cfg->retry_us, 31);
            if (n < 1)
                return bad("invalid --retry-schedule '%s': expected delays like 10s,30s,1m", val);
            cfg->n_retry = (size_t)n;
        } else if (strcmp(name, "validation-schedule") == 0) {
            int n = filter_schedule_parse(val, cfg->validation_us, 31);
            if (n < 1)
                return bad("invalid --validation-schedule '%s': expected delays like 1s,5s,10s",
                           val);
            cfg->n_validation = (size_t)n;
        } else if (strcmp(name, "log-level") == 0) {
            if (strcmp(val, "debug") == 0)
                cfg->log_debug = 1;
            else if (strcmp(val, "info") == 0)
                cfg->log_debug = 0;
            else
                return bad("invalid --log-level '%s': expected info or debug", val);
        } else {
            return bad("unknown option '--%s'", name);
        }
    }
    if (!auth_set) cfg->auth = cfg->dev ? SRV_AUTH_UNVERIFIED : SRV_AUTH_JWT;
    if (cfg->auth == SRV_AUTH_JWT && cfg->n_hs256_files == 0 && cfg->n_pubkey_files == 0)
        return bad("--auth jwt needs --jwt-hs256-secret-file FILE or --jwt-public-key-file FILE "
                   "(or use --dev for the "
                   "development profile)");
    return 0;
}
