/* server/cli: the command line of `hendelse serve` (architecture.md, "Command line and config"). */
#ifndef HENDELSE_SERVER_CLI_H
#define HENDELSE_SERVER_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "server/log.h"

typedef enum { SRV_AUTH_JWT = 0, SRV_AUTH_UNVERIFIED, SRV_AUTH_NONE } srv_auth_mode_t;

#define SRV_MAX_KEY_FILES 8

/* The effective configuration. Strings point into argv, to copies of the config file's and the
 * environment's values, or to static defaults; none is ever freed. */
typedef struct {
    const char *listen_host; /* default "127.0.0.1" */
    int listen_port;         /* default 5080; 0 = pick a free port */
    const char *data_dir;    /* default "./hendelse-data" */
    const char *base_url;    /* NULL = http://HOST:PORT as bound */
    int dev;                 /* --dev: development profile */
    srv_auth_mode_t auth;    /* default: unverified with --dev, else jwt */
    const char *hs256_files[SRV_MAX_KEY_FILES];
    size_t n_hs256_files;
    const char *pubkey_files[SRV_MAX_KEY_FILES]; /* --jwt-public-key-file: RS256/ES256 PEM */
    size_t n_pubkey_files;
    const char *dev_identity;  /* for --auth none; default "/org/ttd" */
    const char *authz;         /* "allow-all" or a policy file */
    const char *register_file; /* --register FILE, or NULL */
    size_t max_event_bytes;    /* default 262144 */
    int64_t read_timeout_us;   /* --read-timeout: a whole request must arrive within it; 30 s */
    size_t max_connections;    /* --max-connections: open client connections; default 10000 */
    size_t max_header_bytes;   /* --max-header-bytes: request line and headers; default 64 KiB */
    int64_t settle_us;         /* default 0 */
    int64_t retention_us;      /* --retention: prune events older than this; 0 = keep all */
    int sync_none;             /* --sync none */
    uint64_t max_store_bytes;  /* LMDB map size; 0 = store default */
    srv_log_level_t log_level; /* --log-level; default info */
    int log_json;              /* --log-format json */
    srv_reqlog_mode_t request_log; /* --request-log; default sample */
    const char *webhook_ca_file;   /* extra CA for webhook endpoints */
    const char *tls_cert;          /* --tls-cert FILE: serve https (with tls_key) */
    const char *tls_key;           /* --tls-key FILE */
    const char *tls_client_ca;     /* --tls-client-ca FILE: require client certificates */
    int64_t webhook_timeout_us;    /* default 45 s */
    size_t webhook_connections;    /* per destination; default 16 */
    int64_t max_retry_after_us;    /* cap on a receiver's Retry-After; default 1 h */
    int64_t retry_us[32];          /* --retry-schedule; n_retry == 0: the default */
    size_t n_retry;
    int64_t validation_us[32]; /* --validation-schedule */
    size_t n_validation;
} srv_config_t;

/* Builds the configuration of `serve` (argv[0] is "serve") into *cfg by applying settings in order
 * of precedence, each checked by the same rules: the defaults, then the JSON config file (--config
 * FILE or HENDELSE_CONFIG), then the environment (HENDELSE_<NAME>), then the command line. Returns
 * 0 on success; 1 if --help or --print-config was given (its text printed on stdout, nothing to
 * serve); or 2 after printing one clear line on stderr for a bad option, key or value. */
int srv_cli_parse(int argc, char **argv, srv_config_t *cfg);

/* Prints the usage text of the whole program to f. */
void srv_cli_usage(void *f);

/* Parses a duration: an integer followed by ms, s, m, h or d (a bare integer is seconds), or a sum
 * of such ("1h30m"). Writes microseconds to *us. Returns 0 or -1. */
int srv_parse_duration(const char *s, int64_t *us);

/* Parses a byte count: an integer with an optional suffix k, m, g (KiB, MiB, GiB). Returns 0 or -1.
 */
int srv_parse_bytes(const char *s, uint64_t *out);

#endif
