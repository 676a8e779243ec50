/* Fuzz target: HTTP request handling of the publish endpoint, in process, through the real server
 * code: libevhtp, server/http.c (connection hooks, request-line guard, limits, routing, replies),
 * publish.c (structured, batch and binary mode, auth, authz), the group commit (commit.c, its
 * committer thread, LMDB in a temporary directory) and the webhook engine with no subscriptions.
 *
 * Set-up (once, as `hendelse serve` does in main.c): srv_cli_parse on
 *   serve --data TMP --auth unverified --authz TMP/policy.json --sync none --max-event-bytes 4096
 *         --max-store-bytes 4g --log-level error --request-log off
 * then store_open, srv_http_init, srv_commit_init and the delivery start of main.c; the server
 * listens on a Unix socket in TMP (a TCP client per input would run out of ports in TIME_WAIT).
 * Only the routes of this endpoint (and /health, /metrics) are served: a wrapper around the
 * project's request callback rewrites any other path to one the project answers 404 (the
 * subscription routes would make the webhook engine call out to the endpoints given).
 *
 * Input: the first byte says how the rest is written: bits 0-3 = k, the rest goes in pieces of
 * 2^(k-1) bytes (k = 0: in one write), with the event loop run between pieces, so that requests
 * split across reads are tried; the remaining bytes are the raw byte stream of one client
 * connection (requests, pipelined or not). Then the loop runs until it settles (no bytes moving,
 * no request waiting for a commit), the client half-closes, the loop settles again, the client
 * closes and the loop runs until the connection is gone.
 *
 * FUZZ_HTTP_SHOW=1 prints what the server sent back (to see what a seed gets).
 *
 * Checks (besides ASan/UBSan/LSan on everything): the server never answers 500; while the fuzzed
 * connection is still open, GET /health on a second connection is answered 200; after the client
 * has gone no request is left in the open batch, in a commit, or waiting for a deferred reply, and
 * the connection is freed; libevhtp logs no "ODDITY" (an unexpected state: the CRLF stall fixed
 * in http.c, drop_empty_lines, showed only as such log lines, thousands in a run, and this check
 * found the stall on an LF right after a request line, lf_after_line). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "server/audit.h"
#include "server/authz.h"
#include "server/cli.h"
#include "server/http.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/subs.h"
#include "webhook/webhook.h"
#include "fuzz.h"

static char dir[64], sockpath[108];
static srv_config_t cfg;
static srv_t s;
static evhtp_callback_cb project_cb;

static const char policy[] =
    "{\"rules\":[{\"effect\":\"deny\",\"actions\":[\"publish\"],"
    "\"resource\":\"urn:altinn:resource:secret*\",\"consumer\":\"*\"},"
    "{\"effect\":\"permit\",\"actions\":[\"publish\",\"read\"],"
    "\"resource\":\"urn:altinn:resource:*\",\"consumer\":\"/org/ttd\"},"
    "{\"effect\":\"permit\",\"actions\":[\"read\"],\"resource\":\"*\",\"consumer\":\"/user/*\","
    "\"subject\":\"/user/{consumer}\"}]}";

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_http: could not remove %s\n", dir);
}

static store_batch_t *open_batch(void *ctx)
{
    srv_t *sv = ctx;
    srv_arm_commit(sv);
    return sv->batch;
}

static void log_int(int level, const char *module, const char *fmt, ...)
{
    (void)level;
    (void)module;
    (void)fmt;
}

/* The route of the project's callback (exact, case-insensitive, one trailing slash). */
static int path_is(const char *path, const char *want)
{
    size_t n = strlen(want);
    if (strncasecmp(path, want, n) != 0) return 0;
    return path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0');
}

static void gencb(evhtp_request_t *req, void *arg)
{
    const char *path =
        req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "";
    if (path_is(path, "/events/api/v1/events") || path_is(path, "/health") ||
        path_is(path, "/metrics")) {
        project_cb(req, arg);
        return;
    }
    /* Another path: the project's callback answers it (404), as it would any unknown path; a
     * reply sent from here instead would stall pipelined requests behind it (see http.c,
     * finish()). libevhtp allocated the path with malloc. */
    if (req->uri && req->uri->path) {
        free(req->uri->path->full);
        req->uri->path->full = strdup("/not-served-by-this-fuzz-target");
    }
    project_cb(req, arg);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char data[96], pol[96], err[256];
    snprintf(dir, sizeof dir, "/tmp/hendelse-fuzz-http-XXXXXX");
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(pol, sizeof pol, "%s/policy.json", dir);
    snprintf(sockpath, sizeof sockpath, "%s/sock", dir);
    FILE *f = fopen(pol, "w");
    if (!f || fwrite(policy, 1, sizeof policy - 1, f) != sizeof policy - 1 || fclose(f)) abort();

    static char *args[] = {"serve",      "--data",
                           NULL,         "--auth",
                           "unverified", "--authz",
                           NULL,         "--sync",
                           "none",       "--max-event-bytes",
                           "4096",       "--max-store-bytes",
                           "4g",         "--log-level",
                           "error",      "--request-log",
                           "off",        NULL};
    args[2] = data;
    args[6] = pol;
    if (srv_cli_parse(17, args, &cfg) != 0) abort();
    srv_log_set_level(cfg.log_level);
    srv_log_set_request_mode(cfg.request_log);
    signal(SIGPIPE, SIG_IGN);

    memset(&s, 0, sizeof s);
    s.cfg = &cfg;
    s.keys = srv_jwt_keys_new();
    s.authz = srv_authz_load(cfg.authz, err, sizeof err);
    if (!s.keys || !s.authz) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
    store_opts_t so = {0};
    so.map_bytes = cfg.max_store_bytes;
    so.sync = STORE_SYNC_NONE;
    if (store_open(cfg.data_dir, &so, &s.store) != 0) abort();
    s.base = event_base_new();
    if (!s.base || srv_http_init(&s) != 0 || srv_commit_init(&s) != 0) abort();
    char addr[140];
    snprintf(addr, sizeof addr, "unix:%s", sockpath);
    /* TCP_NODELAY does not apply to a Unix socket (libevhtp would warn on every accept) */
    evhtp_disable_flag(s.htp, EVHTP_FLAG_ENABLE_NODELAY);
    if (evhtp_bind_socket(s.htp, addr, 0, 128) != 0) abort();
    snprintf(s.base_url, sizeof s.base_url, "http://127.0.0.1:5080");

    /* the delivery start of main.c (start_delivery) */
    webhook_opts_t o;
    memset(&o, 0, sizeof o);
    o.timeout_us = cfg.webhook_timeout_us;
    o.user_agent = "hendelse/fuzz";
    o.pool_size = cfg.webhook_connections;
    o.ctx = &s;
    o.open_batch = open_batch;
    o.on_validated = srv_subs_on_validated;
    o.on_gone = srv_subs_on_gone;
    o.on_attempt = srv_audit_on_attempt;
    o.log = log_int;
    o.now_us = srv_now_us;
    o.on_delivered = srv_metrics_on_delivered;
    s.batch = store_batch_new();
    s.webhook = s.batch ? webhook_new(s.base, s.store, &o, err, sizeof err) : NULL;
    if (!s.webhook || srv_subs_open(&s) != 0 || srv_deliver_start(&s) != 0) {
        fprintf(stderr, "fuzz_http: cannot start delivery: %s\n", err);
        abort();
    }

    /* only this endpoint's routes */
    project_cb = s.htp->defaults.cb;
    evhtp_set_gencb(s.htp, gencb, s.htp->defaults.cbarg);
    return 0;
}

/* libevhtp reports states it does not expect ("ODDITY, resuming when not paused?!?") with
 * log_error, which is __fprintf_chk(stderr, ...) in Debian's build: the harness defines that
 * function (the dynamic linker binds libevhtp's call to it) to count them, and fails the input. */
static int evhtp_oddities;

int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
    va_list ap;
    int n;
    (void)flag;
    if (fmt && strstr(fmt, "ODDITY")) evhtp_oddities++;
    va_start(ap, fmt);
    n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

/* ---- one client ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} rbuf_t;

static int busy_server(void)
{
    return s.n_pending || s.n_inflight || s.job_busy || s.n_ready;
}

/* One pass of the loop: blocks at most 1 ms (the committer thread answers through it). */
static void loop_once(void)
{
    struct timeval tv = {0, 1000};
    if (busy_server()) {
        event_base_loopexit(s.base, &tv);
        event_base_loop(s.base, EVLOOP_ONCE);
    } else {
        event_base_loop(s.base, EVLOOP_NONBLOCK);
    }
}

/* Reads what the server sent; 1 if anything came. Sets *eof when the server closed. */
static int drain(int fd, rbuf_t *r, int *eof)
{
    int got = 0;
    for (;;) {
        char tmp[16384];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n > 0) {
            got = 1;
            if (r->len + (size_t)n <= (4u << 20)) {
                if (r->len + (size_t)n > r->cap) {
                    r->cap = (r->len + (size_t)n) * 2;
                    r->buf = realloc(r->buf, r->cap);
                    FUZZ_CHECK(r->buf);
                }
                memcpy(r->buf + r->len, tmp, (size_t)n);
                r->len += (size_t)n;
            }
            continue;
        }
        if (n == 0) *eof = 1;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) *eof = 1;
        return got;
    }
}

/* Runs the loop until nothing has moved for a few passes and no request waits on the server. */
static void settle(int fd, const uint8_t *data, size_t size, size_t *off, size_t piece, rbuf_t *r,
                   int *eof)
{
    int idle = 0;
    for (int it = 0; it < 20000 && idle < 4; it++) {
        int moved = 0;
        if (*off < size && fd >= 0) {
            size_t want = piece ? piece : size - *off;
            if (want > size - *off) want = size - *off;
            ssize_t w = send(fd, data + *off, want, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                *off += (size_t)w;
                moved = 1;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                *off = size; /* the server closed: the rest cannot be sent */
            }
        }
        loop_once();
        if (fd >= 0 && !*eof && drain(fd, r, eof)) moved = 1;
        if (moved || busy_server() || (*off < size && !*eof))
            idle = 0;
        else
            idle++;
    }
}

/* The status of every response in the stream (as far as it can be framed by Content-Length). */
static void check_responses(const rbuf_t *r)
{
    size_t i = 0;
    while (i + 12 <= r->len && memcmp(r->buf + i, "HTTP/1.", 7) == 0) {
        int status = atoi(r->buf + i + 9);
        if (status == 500) {
            fprintf(stderr, "fuzz_http: the server answered 500:\n%.*s\n",
                    (int)(r->len - i > 2000 ? 2000 : r->len - i), r->buf + i);
            FUZZ_CHECK(0);
        }
        const char *hend = memmem(r->buf + i, r->len - i, "\r\n\r\n", 4);
        if (!hend) return;
        size_t body = 0;
        for (const char *p = r->buf + i; p < hend; p++) {
            if ((p == r->buf + i || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
                body = strtoul(p + 15, NULL, 10);
        }
        if (status == 100) body = 0;
        i = (size_t)(hend + 4 - r->buf) + body;
    }
}

/* A second client's GET /health is answered 200 while the fuzzed connection is still open. */
static void check_health(void)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    rbuf_t r = {0};
    size_t off = 0;
    int eof = 0;
    settle(fd, (const uint8_t *)req, sizeof req - 1, &off, 0, &r, &eof);
    close(fd);
    if (!(r.len >= 15 && memcmp(r.buf, "HTTP/1.1 200 OK", 15) == 0)) {
        fprintf(stderr, "fuzz_http: GET /health on a second connection got: %.*s\n", (int)r.len,
                r.buf ? r.buf : "");
        FUZZ_CHECK(0);
    }
    free(r.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned k = data[0] & 15;
    size_t piece = k ? (size_t)1 << (k - 1) : 0;
    data++;
    size--;
    evhtp_oddities = 0;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);

    rbuf_t r = {0};
    size_t off = 0;
    int eof = 0;
    settle(fd, data, size, &off, piece, &r, &eof);
    shutdown(fd, SHUT_WR);
    off = size;
    settle(fd, data, size, &off, piece, &r, &eof);
    check_health();
    close(fd);
    for (int it = 0; it < 20000 && (s.conns || busy_server()); it++)
        loop_once();

    if (getenv("FUZZ_HTTP_SHOW")) /* to see what a seed gets: FUZZ_HTTP_SHOW=1 fuzz_http FILE */
        fprintf(stderr, "---- %zu bytes back:\n%.*s\n----\n", r.len, (int)r.len,
                r.buf ? r.buf : "");
    check_responses(&r);
    if (evhtp_oddities) {
        fprintf(stderr, "fuzz_http: libevhtp logged an ODDITY (an unexpected state)\n");
        FUZZ_CHECK(0);
    }
    if (s.conns || busy_server()) {
        fprintf(stderr,
                "fuzz_http: after the client left: conns=%zu pending=%zu inflight=%zu busy=%d "
                "ready=%zu\n",
                s.n_conns, s.n_pending, s.n_inflight, s.job_busy, s.n_ready);
        FUZZ_CHECK(0);
    }
    free(r.buf);
    return 0;
}
