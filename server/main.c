/* hendelse: main, the command dispatch, and the life of `serve`: open the store, bind, print the
 * ready line, run the one event loop, stop cleanly on SIGTERM/SIGINT. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "server/cli.h"
#include "server/http.h"
#include "server/jwt.h"
#include "server/log.h"
#include "server/server.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/register.h"
#include "server/subs.h"
#include "server/tls.h"
#include "webhook/webhook.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    srv_t *s = arg;
    struct timeval flush = {0, 200000};
    (void)what;
    if (s->stopping) return;
    s->stopping = 1;
    srv_log(SRV_LOG_INFO, "server", "stopping signal=%d", (int)sig);
    /* Stop accepting, answer what is waiting for a commit, and give the replies a moment to be
     * written before the loop ends. */
    evhtp_unbind_socket(s->htp);
    srv_commit_now(s);
    event_base_loopexit(s->base, &flush);
}

static store_batch_t *open_batch(void *ctx)
{
    srv_t *s = ctx;
    srv_arm_commit(s);
    return s->batch;
}

/* srv_log's signature with the level as an int, as webhook_opts_t wants it. */
__attribute__((format(printf, 3, 4))) static void log_int(int level, const char *module,
                                                          const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    srv_log((srv_log_level_t)level, module, "%s", line);
}

static int start_delivery(srv_t *s, const srv_config_t *cfg)
{
    webhook_opts_t o;
    char err[256];

    memset(&o, 0, sizeof o);
    o.allow_http = cfg->dev;
    o.allow_private = cfg->dev;
    o.ca_file = cfg->webhook_ca_file;
    o.timeout_us = cfg->webhook_timeout_us;
    o.retry_us = cfg->n_retry ? cfg->retry_us : NULL;
    o.n_retry = cfg->n_retry;
    o.validation_us = cfg->n_validation ? cfg->validation_us : NULL;
    o.n_validation = cfg->n_validation;
    o.user_agent = "hendelse/" HENDELSE_VERSION;
    o.pool_size = cfg->webhook_connections;
    o.max_retry_after_us = cfg->max_retry_after_us;
    o.ctx = s;
    o.open_batch = open_batch;
    o.on_validated = srv_subs_on_validated;
    o.on_gone = srv_subs_on_gone;
    o.on_attempt = srv_audit_on_attempt;
    o.log = log_int;
    o.log_level = (int)cfg->log_level;
    o.now_us = srv_now_us;
    o.on_delivered = srv_metrics_on_delivered;
    s->batch = store_batch_new();
    if (!s->batch) return 1;
    s->webhook = webhook_new(s->base, s->store, &o, err, sizeof err);
    if (!s->webhook) {
        fprintf(stderr, "hendelse serve: %s\n", err);
        return 2;
    }
    if (srv_subs_open(s) != 0 || srv_deliver_start(s) != 0) {
        fprintf(stderr, "hendelse serve: cannot start delivery (see the log above)\n");
        return 1;
    }
    return 0;
}

static int bind_listen(srv_t *s, const srv_config_t *cfg, char *bound, size_t boundlen)
{
    struct addrinfo hints, *ai = NULL;
    char port[16];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    int rc, fd, bport;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    rc = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "hendelse serve: cannot resolve listen host '%s': %s\n", cfg->listen_host,
                gai_strerror(rc));
        return 2;
    }
    rc = evhtp_bind_sockaddr(s->htp, ai->ai_addr, ai->ai_addrlen, 1024);
    freeaddrinfo(ai);
    if (rc != 0) {
        fprintf(stderr, "hendelse serve: cannot listen on %s:%d: %s\n", cfg->listen_host,
                cfg->listen_port, strerror(errno));
        return 1;
    }
    fd = evconnlistener_get_fd(s->htp->server);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 1;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        bport = ntohs(a->sin6_port);
        snprintf(bound, boundlen, "[%s]:%d", host, bport);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        bport = ntohs(a->sin_port);
        snprintf(bound, boundlen, "%s:%d", host, bport);
    }
    return 0;
}

static int serve(int argc, char **argv)
{
    srv_config_t cfg;
    srv_t s;
    store_opts_t sopts;
    char bound[128], err[256];
    struct event *ev_term = NULL, *ev_int = NULL;
    srv_tls_t *tls = NULL; /* --tls-cert: serve https */
    int rc;

    rc = srv_cli_parse(argc, argv, &cfg);
    if (rc == 1) return 0;
    if (rc != 0) return rc;
    srv_log_set_level(cfg.log_level);
    srv_log_set_format(cfg.log_json);
    srv_log_set_request_mode(cfg.request_log);
    if (cfg.tls_cert &&
        !(tls = srv_tls_new(cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca, err, sizeof err))) {
        fprintf(stderr, "hendelse serve: %s\n", err);
        return 2;
    }

    memset(&s, 0, sizeof s);
    s.cfg = &cfg;
    s.keys = srv_jwt_keys_new();
    if (!s.keys) return 1;
    for (size_t i = 0; i < cfg.n_hs256_files; i++) {
        if (srv_jwt_keys_add_hs256_file(s.keys, cfg.hs256_files[i], err, sizeof err) != 0) {
            fprintf(stderr, "hendelse serve: %s\n", err);
            srv_jwt_keys_free(s.keys);
            return 2;
        }
    }
    for (size_t i = 0; i < cfg.n_pubkey_files; i++) {
        if (srv_jwt_keys_add_public_key_file(s.keys, cfg.pubkey_files[i], err, sizeof err) != 0) {
            fprintf(stderr, "hendelse serve: %s\n", err);
            srv_jwt_keys_free(s.keys);
            return 2;
        }
    }

    if (strcmp(cfg.authz, "allow-all") != 0) {
        s.authz = srv_authz_load(cfg.authz, err, sizeof err);
        if (!s.authz) {
            fprintf(stderr, "hendelse serve: %s\n", err);
            srv_jwt_keys_free(s.keys);
            return 2;
        }
    }
    if (cfg.register_file) {
        s.reg = srv_register_load(cfg.register_file, err, sizeof err);
        if (!s.reg) {
            fprintf(stderr, "hendelse serve: %s\n", err);
            srv_authz_free(s.authz);
            srv_jwt_keys_free(s.keys);
            return 2;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    sopts.map_bytes = cfg.max_store_bytes;
    sopts.sync = cfg.sync_none ? STORE_SYNC_NONE : STORE_SYNC_FSYNC;
    rc = store_open(cfg.data_dir, &sopts, &s.store);
    if (rc != 0) {
        if (rc == STORE_ELOCKED)
            fprintf(stderr,
                    "hendelse serve: data directory %s is in use by another hendelse process\n",
                    cfg.data_dir);
        else
            fprintf(stderr, "hendelse serve: cannot open the store in %s: %s (%s)\n", cfg.data_dir,
                    store_strerror(rc), s.store ? store_last_error(s.store) : "");
        srv_jwt_keys_free(s.keys);
        return 1;
    }

    s.base = event_base_new();
    /* Two priorities: the committer's done event (commit.c) runs first in a pass, so that finished
     * publishes are answered and the next commit starts before the pass's connection callbacks
     * run; every other event (connections, timers, the webhook engine) has the default, 1. Each
     * pass runs the done event and then all the other active events, so nothing starves. */
    if (s.base && event_base_priority_init(s.base, 2) != 0) {
        fprintf(stderr, "hendelse serve: cannot set up the event loop priorities\n");
        return 1;
    }
    if (!s.base || srv_http_init(&s) != 0 || srv_commit_init(&s) != 0) {
        fprintf(stderr, "hendelse serve: cannot set up the event loop\n");
        return 1;
    }
    if (tls && srv_tls_attach(tls, s.htp, s.base) != 0) {
        fprintf(stderr, "hendelse serve: cannot set up https\n");
        return 1;
    }
    rc = bind_listen(&s, &cfg, bound, sizeof bound);
    if (rc != 0) return rc;
    if (cfg.base_url) {
        size_t l = strlen(cfg.base_url);
        while (l && cfg.base_url[l - 1] == '/')
            l--;
        snprintf(s.base_url, sizeof s.base_url, "%.*s", (int)l, cfg.base_url);
    } else {
        snprintf(s.base_url, sizeof s.base_url, "%s://%s", tls ? "https" : "http", bound);
    }

    rc = start_delivery(&s, &cfg);
    if (rc != 0) return rc;
    if (srv_retention_start(&s) != 0) {
        fprintf(stderr, "hendelse serve: cannot start the retention timer\n");
        return 1;
    }

    ev_term = evsignal_new(s.base, SIGTERM, on_signal, &s);
    ev_int = evsignal_new(s.base, SIGINT, on_signal, &s);
    if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) != 0 ||
        evsignal_add(ev_int, NULL) != 0) {
        fprintf(stderr, "hendelse serve: cannot install signal handlers\n");
        return 1;
    }

    srv_log(SRV_LOG_INFO, "server",
            "started version=%s data=%s auth=%s profile=%s sync=%s last_seq=%llu", HENDELSE_VERSION,
            cfg.data_dir,
            cfg.auth == SRV_AUTH_JWT    ? "jwt"
            : cfg.auth == SRV_AUTH_NONE ? "none"
                                        : "unverified",
            cfg.dev ? "development" : "production", cfg.sync_none ? "none" : "fsync",
            (unsigned long long)store_last_seq(s.store));
    printf("hendelse listening on %s://%s\n", tls ? "https" : "http", bound);
    fflush(stdout);

    event_base_dispatch(s.base);
    srv_retention_stop(&s);

    /* Anything that arrived after the signal is committed and answered before the store closes. */
    srv_commit_fini(&s);
    srv_log(SRV_LOG_INFO, "server", "stopped published=%llu duplicates=%llu batches=%llu",
            (unsigned long long)s.n_published, (unsigned long long)s.n_duplicates,
            (unsigned long long)s.n_batches);
    srv_http_close_all(&s);
    webhook_free(s.webhook);
    srv_subs_close(&s);
    store_batch_free(s.batch);
    event_free(ev_term);
    event_free(ev_int);
    event_free(s.flush_ev);
    free(s.ready);
    evhtp_free(s.htp);
    srv_tls_free(tls);
    event_base_free(s.base);
    store_close(s.store);
    srv_jwt_keys_free(s.keys);
    srv_authz_free(s.authz);
    srv_register_free(s.reg);
    free(s.pending);
    free(s.inflight);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        srv_cli_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        srv_cli_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("hendelse %s\n", HENDELSE_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0) return serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0) return srv_token_main(argc - 1, argv + 1);
    fprintf(stderr, "hendelse: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
