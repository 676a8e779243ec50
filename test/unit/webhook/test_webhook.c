/* Unit tests for webhook/: a real store in a temporary directory and real HTTP(S) receivers
 * (libevent's evhttp server) in this process, on the same event loop as the engine. The test's
 * open_batch hands out one store batch and commits it from a zero-delay event, as the server's
 * group commit does; after every commit the crash-safety invariant is checked against the durable
 * state: every delivery of every event at or below the durable cursor has a 2xx answer, a retry
 * record or a dead letter. */
#include "store/store.h"
#include "tap.h"
#include "webhook/internal.h" /* retry_after_parse */
#include "webhook/webhook.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>

/* ---- clock and loop ---- */

static struct event_base *base;
static int64_t clock_offset_us; /* added to the wall clock given to the engine */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int64_t test_now_us(void)
{
    return wall_us() + clock_offset_us;
}

/* Runs the loop until cond holds or ms pass; a 5 ms tick keeps EVLOOP_ONCE from sleeping long. */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        int64_t end_ = mono_ms() + (ms);                                                           \
        while (!(cond) && mono_ms() < end_)                                                        \
            event_base_loop(base, EVLOOP_ONCE);                                                    \
    } while (0)

static void run_for(int ms)
{
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* ---- log capture ---- */

static char logbuf[1 << 16];
static size_t loglen;

__attribute__((format(printf, 3, 4))) static void test_log(int level, const char *module,
                                                           const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (getenv("WEBHOOK_TEST_VERBOSE")) printf("# log %d %s %s\n", level, module, line);
    size_t n = strlen(line);
    if (loglen + n + 2 >= sizeof(logbuf)) loglen = 0;
    memcpy(logbuf + loglen, line, n);
    logbuf[loglen + n] = '\n';
    loglen += n + 1;
    logbuf[loglen] = '\0';
}

static int log_has(const char *s)
{
    return strstr(logbuf, s) != NULL;
}

/* ---- receivers ---- */

#define MAXREQ 128

typedef struct {
    char method[16], uri[256], host[128], ctype[128], clen[32], ua[128];
    char wid[128], wts[32], wsig[160];
    char body[4096];
    size_t len;
    int answered; /* the status given, 0 if none (hanging) */
    int64_t at_ms;
    int64_t at_us;   /* the engine's clock (test_now_us) when it arrived */
    char hdrs[2048]; /* every header as "name: value\n", in order */
} rreq_t;

enum { MODE_OK, MODE_FAIL, MODE_REDIRECT, MODE_HANG };

typedef struct {
    struct evhttp *http;
    int port;
    int mode;
    int fail_first;   /* answer 500 to this many requests first */
    int status_first; /* then answer status (with retry_after, if set) to this many */
    int status;
    char retry_after[64];
    int count;
    rreq_t reqs[MAXREQ];
    SSL_CTX *tls;
} recv_t;

static void hcopy(char *dst, size_t n, struct evkeyvalq *h, const char *name)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(dst, n, "%s", v ? v : "");
}

static void on_receive(struct evhttp_request *req, void *arg)
{
    recv_t *r = arg;
    rreq_t *q = &r->reqs[r->count < MAXREQ ? r->count : MAXREQ - 1];
    memset(q, 0, sizeof(*q));
    r->count++;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    snprintf(q->method, sizeof(q->method), "%s",
             evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER");
    snprintf(q->uri, sizeof(q->uri), "%s", evhttp_request_get_uri(req));
    hcopy(q->host, sizeof(q->host), h, "Host");
    hcopy(q->ctype, sizeof(q->ctype), h, "Content-Type");
    hcopy(q->clen, sizeof(q->clen), h, "Content-Length");
    hcopy(q->ua, sizeof(q->ua), h, "User-Agent");
    hcopy(q->wid, sizeof(q->wid), h, "webhook-id");
    hcopy(q->wts, sizeof(q->wts), h, "webhook-timestamp");
    hcopy(q->wsig, sizeof(q->wsig), h, "webhook-signature");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    q->len = evbuffer_get_length(in);
    if (q->len >= sizeof(q->body)) q->len = sizeof(q->body) - 1;
    evbuffer_copyout(in, q->body, q->len);
    q->at_ms = mono_ms();
    q->at_us = test_now_us();
    size_t hl = 0;
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        int n = snprintf(q->hdrs + hl, sizeof(q->hdrs) - hl, "%s: %s\n", kv->key, kv->value);
        if (n < 0 || (size_t)n >= sizeof(q->hdrs) - hl) break;
        hl += (size_t)n;
    }
    int mode = r->mode;
    if (r->fail_first > 0) {
        r->fail_first--;
        mode = MODE_FAIL;
    } else if (r->status_first > 0) {
        r->status_first--;
        q->answered = r->status;
        if (r->retry_after[0])
            evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                              r->retry_after);
        evhttp_send_reply(req, r->status, "Status", NULL);
        return;
    }
    switch (mode) {
    case MODE_OK:
        q->answered = 200;
        evhttp_send_reply(req, 200, "OK", NULL);
        break;
    case MODE_FAIL:
        q->answered = 500;
        evhttp_send_reply(req, 500, "Internal Server Error", NULL);
        break;
    case MODE_REDIRECT:
        q->answered = 302;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                          "http://127.0.0.1:1/");
        evhttp_send_reply(req, 302, "Found", NULL);
        break;
    default:
        break; /* hang: never answered (freed with the server) */
    }
}

static struct bufferevent *on_tls_bev(struct event_base *b, void *arg)
{
    recv_t *r = arg;
    return bufferevent_openssl_socket_new(b, -1, SSL_new(r->tls), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void recv_start(recv_t *r, int mode, const char *cert, const char *key)
{
    memset(r, 0, sizeof(*r));
    r->mode = mode;
    r->http = evhttp_new(base);
    evhttp_set_gencb(r->http, on_receive, r);
    if (cert) {
        r->tls = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_chain_file(r->tls, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(r->tls, key, SSL_FILETYPE_PEM) != 1) {
            printf("# cannot load %s\n", cert);
            exit(1);
        }
        evhttp_set_bevcb(r->http, on_tls_bev, r);
    }
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(r->http, "127.0.0.1", 0);
    if (!s) {
        printf("# cannot bind a receiver\n");
        exit(1);
    }
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sin, &sl);
    r->port = ntohs(sin.sin_port);
}

static void recv_stop(recv_t *r)
{
    evhttp_free(r->http);
    if (r->tls) SSL_CTX_free(r->tls);
}

static recv_t rA, rB, rR, rH, rF, rT, rM,
    rS; /* ok, fail, redirect, hang, fail-first, tls, tls-mismatch, status-first */

static int count_path(const recv_t *r, const char *path)
{
    int n = 0;
    size_t pl = strlen(path);
    for (int i = 0; i < r->count && i < MAXREQ; i++)
        if (strncmp(r->reqs[i].uri, path, pl) == 0 &&
            (r->reqs[i].uri[pl] == '\0' || r->reqs[i].uri[pl] == '?'))
            n++;
    return n;
}

static const rreq_t *find_req(const recv_t *r, const char *path, int nth)
{
    size_t pl = strlen(path);
    for (int i = 0; i < r->count && i < MAXREQ; i++)
        if (strncmp(r->reqs[i].uri, path, pl) == 0 &&
            (r->reqs[i].uri[pl] == '\0' || r->reqs[i].uri[pl] == '?') && nth-- == 0)
            return &r->reqs[i];
    return NULL;
}

/* ---- store, batch and commit ---- */

static char root[64];
static store_t *st;
static store_batch_t *batch;
static struct event *commit_ev;
static int commits, violations, opened;

/* Deliveries dispatched in this scenario, to check the invariant. */
#define MAXEXP 256
static struct {
    uint64_t sub, seq;
} expect[MAXEXP];
static int nexpect;
static char event_json[64][256]; /* by seq (small scenarios) */

static const recv_t *all_recv[] = {&rA, &rB, &rR, &rH, &rF, &rT, &rM, &rS};

/* 2xx answers given by test_immediate_write's raw receiver (sub, seq) */
static uint64_t raw_ok[8][2];
static int nraw_ok;

static int answered_2xx(uint64_t sub, uint64_t seq)
{
    for (int i = 0; i < nraw_ok; i++)
        if (raw_ok[i][0] == sub && raw_ok[i][1] == seq) return 1;
    char path[32];
    snprintf(path, sizeof(path), "/s%" PRIu64, sub);
    for (size_t k = 0; k < sizeof(all_recv) / sizeof(all_recv[0]); k++) {
        const recv_t *r = all_recv[k];
        for (int i = 0; i < r->count && i < MAXREQ; i++) {
            const rreq_t *q = &r->reqs[i];
            size_t pl = strlen(path);
            if (strncmp(q->uri, path, pl) == 0 && (q->uri[pl] == '\0' || q->uri[pl] == '?') &&
                q->answered >= 200 && q->answered < 300 && seq < 64 &&
                strcmp(q->body, event_json[seq]) == 0)
                return 1;
        }
    }
    return 0;
}

typedef struct {
    uint64_t sub, seq;
    store_retry_t r;
} retry_rec_t;
static retry_rec_t retries[256];
static int nretries;

static int on_scan_retry(void *ctx, uint64_t sub_id, uint64_t seq, const store_retry_t *r)
{
    (void)ctx;
    if (nretries < 256) retries[nretries++] = (retry_rec_t){sub_id, seq, *r};
    return STORE_SCAN_CONTINUE;
}

static void load_retries(void)
{
    nretries = 0;
    store_scan_retries(st, on_scan_retry, NULL);
}

static const retry_rec_t *find_retry(uint64_t sub, uint64_t seq)
{
    for (int i = 0; i < nretries; i++)
        if (retries[i].sub == sub && retries[i].seq == seq) return &retries[i];
    return NULL;
}

typedef struct {
    uint64_t seq;
    store_dead_t d;
} dead_rec_t;
static dead_rec_t deads[64];
static int ndead;

static int on_scan_dead(void *ctx, uint64_t sub_id, uint64_t seq, const store_dead_t *d)
{
    (void)ctx;
    (void)sub_id;
    if (ndead < 64) deads[ndead++] = (dead_rec_t){seq, *d};
    return STORE_SCAN_CONTINUE;
}

static int load_dead(uint64_t sub)
{
    ndead = 0;
    store_scan_dead(st, sub, on_scan_dead, NULL);
    return ndead;
}

static uint64_t durable_cursor(void)
{
    uint64_t c = 0;
    store_get_cursor(st, &c);
    return c;
}

static void check_invariant(void)
{
    uint64_t c = durable_cursor();
    load_retries();
    for (int i = 0; i < nexpect; i++) {
        if (expect[i].seq > c) continue;
        if (answered_2xx(expect[i].sub, expect[i].seq) || find_retry(expect[i].sub, expect[i].seq))
            continue;
        if (load_dead(expect[i].sub) > 0) {
            int found = 0;
            for (int k = 0; k < ndead; k++)
                found |= deads[k].seq == expect[i].seq;
            if (found) continue;
        }
        violations++;
        printf("# invariant violated: cursor %" PRIu64 " passed sub %" PRIu64 " seq %" PRIu64
               " with no answer, retry or dead letter\n",
               c, expect[i].sub, expect[i].seq);
    }
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!batch || store_batch_empty(batch)) return;
    int rc = store_commit(st, batch, NULL, 0, NULL);
    if (rc != STORE_OK) printf("# store_commit: %s\n", store_strerror(rc));
    commits++;
    check_invariant();
}

static store_batch_t *test_open_batch(void *ctx)
{
    (void)ctx;
    opened++;
    event_active(commit_ev, EV_TIMEOUT, 1);
    return batch;
}

static uint64_t validated[32];
static int nvalidated;

static void test_on_validated(void *ctx, uint64_t sub_id)
{
    (void)ctx;
    if (nvalidated < 32) validated[nvalidated++] = sub_id;
}

static int was_validated(uint64_t sub)
{
    for (int i = 0; i < nvalidated; i++)
        if (validated[i] == sub) return 1;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int scenario_no;

static void scenario_begin(void)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/store%d", root, ++scenario_no);
    store_opts_t so = {.map_bytes = 64u << 20, .sync = STORE_SYNC_NONE};
    if (store_open(dir, &so, &st) != STORE_OK) {
        printf("# store_open failed\n");
        exit(1);
    }
    batch = store_batch_new();
    nexpect = 0;
    nvalidated = 0;
    clock_offset_us = 0;
    memset(event_json, 0, sizeof(event_json));
}

static void scenario_end(webhook_t *wh)
{
    webhook_free(wh);
    on_commit(-1, 0, NULL);
    store_batch_free(batch);
    batch = NULL;
    store_close(st);
    st = NULL;
}

static uint64_t add_event(void)
{
    static int n;
    char id[32], json[256];
    snprintf(id, sizeof(id), "ev-%d", ++n);
    snprintf(json, sizeof(json),
             "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"urn:test\",\"type\":\"t\","
             "\"resource\":\"urn:altinn:resource:r\",\"data\":{\"n\":%d}}",
             id, n);
    store_event_in_t ev = {.id = id,
                           .source = "urn:test",
                           .type = "t",
                           .resource = "urn:altinn:resource:r",
                           .json = json,
                           .json_len = strlen(json),
                           .stored_us = wall_us()};
    store_result_t res;
    if (store_commit(st, NULL, &ev, 1, &res) != STORE_OK || res.res != STORE_RES_STORED) {
        printf("# append failed\n");
        exit(1);
    }
    if (res.seq < 64) snprintf(event_json[res.seq], sizeof(event_json[0]), "%s", json);
    return res.seq;
}

static int dispatch(webhook_t *wh, uint64_t seq, const uint64_t *subs, size_t n)
{
    for (size_t i = 0; i < n && nexpect < MAXEXP; i++)
        expect[nexpect++].sub = subs[i], expect[nexpect - 1].seq = seq;
    return webhook_dispatch(wh, seq, event_json[seq], strlen(event_json[seq]), subs, n);
}

/* As the server does: forget the subscription, and its durable records go with del_sub. */
static void remove_sub(webhook_t *wh, uint64_t sub)
{
    webhook_sub_remove(wh, sub);
    store_batch_del_sub(batch, sub);
    int k = 0;
    for (int i = 0; i < nexpect; i++)
        if (expect[i].sub != sub) expect[k++] = expect[i];
    nexpect = k;
}

static webhook_opts_t base_opts(void)
{
    webhook_opts_t o = {0};
    o.allow_http = 1;
    o.allow_private = 1;
    o.ctx = NULL;
    o.open_batch = test_open_batch;
    o.on_validated = test_on_validated;
    o.log = test_log;
    o.now_us = test_now_us;
    return o;
}

static webhook_t *new_engine(const webhook_opts_t *o)
{
    char err[256] = "";
    webhook_t *wh = webhook_new(base, st, o, err, sizeof(err));
    if (!wh) printf("# webhook_new: %s\n", err);
    return wh;
}

static void url(char *buf, size_t n, const char *scheme, const char *host, int port, uint64_t sub,
                const char *query)
{
    snprintf(buf, n, "%s://%s:%d/s%" PRIu64 "%s", scheme, host, port, sub, query ? query : "");
}

static int sign_ok(const rreq_t *q, const unsigned char *key, size_t keylen)
{
    char msg[8192];
    int n = snprintf(msg, sizeof(msg), "%s.%s.", q->wid, q->wts);
    memcpy(msg + n, q->body, q->len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)msg, (size_t)n + q->len, mac, &ml);
    char b64[128] = "v1,";
    EVP_EncodeBlock((unsigned char *)b64 + 3, mac, (int)ml);
    return strcmp(b64, q->wsig) == 0;
}

/* ---- scenarios ---- */

static const unsigned char key1[] = "a-test-signing-key-of-some-length";

static void test_success(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    webhook_t *wh = new_engine(&o);
    ok(wh != NULL, "webhook_new");
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 1, "?x=1&y=2");
    ok(webhook_sub_set(wh, 1, u, key1, sizeof(key1) - 1) == 0, "sub_set with a secret");
    url(u, sizeof(u), "http", "localhost", rA.port, 2, NULL);
    ok(webhook_sub_set(wh, 2, u, NULL, 0) == 0, "sub_set without a secret");
    ok(webhook_sub_set(wh, 3, "ftp://x/", NULL, 0) == WEBHOOK_EINVAL, "ftp endpoint refused");
    ok(webhook_sub_set(wh, 3, "https://user@host/", NULL, 0) == WEBHOOK_EINVAL, "userinfo refused");
    ok(webhook_sub_set(wh, 3, "https://ho st/", NULL, 0) == WEBHOOK_EINVAL, "space refused");
    ok(webhook_sub_set(wh, 3, "https://h:99999/", NULL, 0) == WEBHOOK_EINVAL, "bad port refused");
    uint64_t cur = 99;
    ok(webhook_start(wh, &cur) == 0 && cur == 0, "start on an empty store: cursor 0");

    uint64_t s1 = add_event(), s2 = add_event();
    uint64_t subs[] = {1, 2};
    int64_t t0 = wall_us() / 1000000;
    ok(dispatch(wh, s1, subs, 2) == 0, "dispatch to two subscriptions");
    ok(dispatch(wh, s2, NULL, 0) == 0, "dispatch with no subscription");
    RUN_UNTIL(rA.count >= 2 && durable_cursor() == s2, 3000);
    ok(rA.count == 2, "both delivered (%d)", rA.count);
    const rreq_t *q = find_req(&rA, "/s1", 0);
    ok(q != NULL, "sub 1 got its request");
    if (q) {
        char host[64], clen[32];
        snprintf(host, sizeof(host), "127.0.0.1:%d", rA.port);
        snprintf(clen, sizeof(clen), "%zu", strlen(event_json[s1]));
        ok(strcmp(q->method, "POST") == 0, "method POST");
        ok(strcmp(q->uri, "/s1?x=1&y=2") == 0, "path and query (%s)", q->uri);
        ok(strcmp(q->host, host) == 0, "Host header (%s)", q->host);
        ok(strcmp(q->ctype, "application/json; charset=utf-8") == 0, "Content-Type");
        ok(strcmp(q->clen, clen) == 0, "Content-Length");
        ok(strcmp(q->ua, "hendelse") == 0, "User-Agent (%s)", q->ua);
        ok(q->len == strlen(event_json[s1]) && memcmp(q->body, event_json[s1], q->len) == 0,
           "body is the event JSON exactly");
        char wid[64];
        snprintf(wid, sizeof(wid), "msg_1_%" PRIu64, s1);
        ok(strcmp(q->wid, wid) == 0, "webhook-id (%s)", q->wid);
        int64_t ts = atoll(q->wts);
        ok(ts >= t0 - 1 && ts <= t0 + 5, "webhook-timestamp is now");
        ok(strncmp(q->wsig, "v1,", 3) == 0 && sign_ok(q, key1, sizeof(key1) - 1),
           "webhook-signature verifies");
    }
    q = find_req(&rA, "/s2", 0);
    ok(q && q->wid[0] == '\0' && q->wsig[0] == '\0', "no signature headers without a secret");
    if (q) {
        char host[64];
        snprintf(host, sizeof(host), "localhost:%d", rA.port);
        ok(strcmp(q->host, host) == 0, "Host header keeps the URL's host name (%s)", q->host);
    }
    ok(durable_cursor() == s2, "durable cursor moved to the last event");
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.delivered == 2 && sts.failed == 0 && sts.in_flight == 0 && sts.cursor == s2,
       "stats after success");
    int before = opened;
    run_for(30);
    ok(opened == before, "no batch opened when nothing changed");
    scenario_end(wh);
}

static void test_retries_dead_redeliver(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {40000, 80000};
    o.retry_us = sched;
    o.n_retry = 2;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rB.port, 3, NULL);
    webhook_sub_set(wh, 3, u, NULL, 0);
    url(u, sizeof(u), "http", "127.0.0.1", rR.port, 4, NULL);
    webhook_sub_set(wh, 4, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    int b0 = rB.count, r0 = rR.count;
    uint64_t s1 = add_event();
    uint64_t subs[] = {3, 4};
    dispatch(wh, s1, subs, 2);
    /* after the first failures: retries recorded, cursor past the event */
    RUN_UNTIL(rB.count - b0 >= 1 && rR.count - r0 >= 1 && durable_cursor() == s1, 2000);
    load_retries();
    const retry_rec_t *r3 = find_retry(3, s1), *r4 = find_retry(4, s1);
    ok(r3 && r3->r.attempts == 1 && r3->r.last_status == 500, "retry recorded after a 500");
    ok(r4 && r4->r.attempts == 1 && r4->r.last_status == 302, "a redirect is a failure (302)");
    ok(r4 && strstr(r4->r.last_error, "redirect"), "redirect reason recorded");
    ok(durable_cursor() == s1, "cursor passed the event once its retries were recorded");
    webhook_stats_t sts;
    RUN_UNTIL((webhook_get_stats(wh, &sts), sts.dead_lettered == 2) && durable_cursor() == s1 &&
                  (load_retries(), nretries == 0),
              3000);
    ok(sts.dead_lettered == 2, "both dead-lettered");
    ok(rB.count - b0 == 3 && count_path(&rB, "/s3") >= 3, "1 + 2 retries = 3 attempts (%d)",
       rB.count - b0);
    ok(rR.count - r0 == 3, "redirect: 3 attempts, never followed (%d)", rR.count - r0);
    const rreq_t *a1 = &rB.reqs[b0], *a2 = &rB.reqs[b0 + 1], *a3 = &rB.reqs[b0 + 2];
    ok(a2->at_ms - a1->at_ms >= 39 && a2->at_ms - a1->at_ms < 1000,
       "2nd attempt after the 1st delay (%" PRId64 " ms)", a2->at_ms - a1->at_ms);
    ok(a3->at_ms - a2->at_ms >= 79 && a3->at_ms - a2->at_ms < 1000,
       "3rd attempt after the 2nd delay (%" PRId64 " ms)", a3->at_ms - a2->at_ms);
    ok(load_dead(3) == 1 && deads[0].seq == s1 && deads[0].d.attempts == 3 &&
           deads[0].d.last_status == 500,
       "dead letter record: 3 attempts, last status 500");
    ok(load_dead(4) == 1 && deads[0].d.last_status == 302, "dead letter of the redirecting one");
    load_retries();
    ok(nretries == 0, "no retry record left");
    ok(log_has("dead-lettered sub=3"), "dead letter logged");
    ok(sts.failed == 6 && sts.retries_pending == 0, "stats: 6 failed attempts");

    /* redeliver the dead letter of sub 3 to a now healthy endpoint */
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 3, NULL);
    ok(webhook_sub_set(wh, 3, u, NULL, 0) == 0, "endpoint changed");
    ok(webhook_redeliver(wh, 99, s1) == WEBHOOK_EINVAL, "redeliver of an unknown sub: EINVAL");
    int a0 = rA.count;
    ok(webhook_redeliver(wh, 3, s1) == 0, "redeliver");
    RUN_UNTIL(rA.count > a0 && load_dead(3) == 0 && (load_retries(), nretries == 0), 2000);
    ok(rA.count == a0 + 1, "redelivered to the new endpoint");
    ok(load_dead(3) == 0, "dead letter deleted");
    load_retries();
    ok(nretries == 0, "the retry record of the redelivery is gone after success");
    scenario_end(wh);
}

static void test_timeout_isolation(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {10 * 1000000};
    o.retry_us = sched;
    o.n_retry = 1;
    o.timeout_us = 400000;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rH.port, 5, NULL);
    webhook_sub_set(wh, 5, u, NULL, 0);
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 6, NULL);
    webhook_sub_set(wh, 6, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    int a0 = rA.count;
    uint64_t subs[] = {5, 6}, last = 0, first = 0;
    int64_t t0 = mono_ms();
    for (int i = 0; i < 6; i++) {
        last = add_event();
        if (!first) first = last;
        dispatch(wh, last, subs, 2);
    }
    RUN_UNTIL(rA.count - a0 >= 6, 2000);
    int64_t t_ok = mono_ms() - t0;
    ok(rA.count - a0 == 6 && t_ok < 300,
       "the healthy receiver got all 6 promptly (%" PRId64 " ms) while the other hangs", t_ok);
    run_for(20);
    ok(durable_cursor() < first, "cursor holds before the hanging deliveries (%" PRIu64 ")",
       durable_cursor());
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.in_flight == 4 && sts.queued == 2,
       "pool of 4 in flight, 2 queued (%" PRIu64 " in flight, %" PRIu64 " queued)", sts.in_flight,
       sts.queued);
    RUN_UNTIL(durable_cursor() == last, 3000);
    int64_t t_to = mono_ms() - t0;
    ok(durable_cursor() == last && t_to >= 390,
       "after the timeouts the cursor moves (%" PRId64 " ms)", t_to);
    load_retries();
    int timeouts = 0;
    for (int i = 0; i < nretries; i++)
        timeouts += retries[i].sub == 5 && strcmp(retries[i].r.last_error, "timeout") == 0 &&
                    retries[i].r.last_status == 0 && retries[i].r.attempts == 1;
    ok(timeouts == 6, "6 retries recorded with last_error \"timeout\" (%d)", timeouts);
    ok(log_has("error=\"timeout\""), "timeout logged");
    scenario_end(wh); /* frees with nothing in flight; the next scenario reuses the receivers */
}

static void test_start_reload(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {5 * 1000000, 5 * 1000000};
    o.retry_us = sched;
    o.n_retry = 2;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rB.port, 7, NULL);
    webhook_sub_set(wh, 7, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    uint64_t s1 = add_event(), subs[] = {7};
    dispatch(wh, s1, subs, 1);
    RUN_UNTIL(durable_cursor() == s1 && (load_retries(), nretries == 1), 2000);
    ok(nretries == 1 && durable_cursor() == s1, "retry recorded, cursor durable");
    webhook_free(wh);
    on_commit(-1, 0, NULL);

    /* records the engine must drop: an unknown subscription's, and one of a deleted event */
    store_retry_t orphan = {.due_us = test_now_us(), .attempts = 1, .last_status = 500};
    store_batch_put_retry(batch, 98, s1, &orphan);
    store_batch_put_retry(batch, 7, 999, &orphan);
    on_commit(-1, 0, NULL);

    /* "restart": a new engine, the clock 10 s later so the retry is due */
    clock_offset_us = 10 * 1000000;
    wh = new_engine(&o);
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 7, NULL);
    webhook_sub_set(wh, 7, u, NULL, 0);
    int a0 = rA.count;
    cur = 0;
    ok(webhook_start(wh, &cur) == 0 && cur == s1, "start returns the durable cursor");
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.retries_pending == 3, "the retries were reloaded (%" PRIu64 ")", sts.retries_pending);
    RUN_UNTIL(rA.count > a0 && (load_retries(), nretries == 0), 2000);
    ok(rA.count == a0 + 1 && strcmp(rA.reqs[a0].body, event_json[s1]) == 0,
       "the reloaded retry fired with the stored event");
    ok(nretries == 0, "its record was deleted, and those of the unknown sub and event too");
    ok(log_has("retry dropped: unknown sub=98") && log_has("retry dropped: event gone sub=7"),
       "dropped retries logged");
    scenario_end(wh);
}

static void test_handshake(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t vs[] = {30000, 30000};
    o.validation_us = vs;
    o.n_validation = 2;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rF.port, 8, NULL);
    webhook_sub_set(wh, 8, u, key1, sizeof(key1) - 1);
    url(u, sizeof(u), "http", "127.0.0.1", rB.port, 9, NULL);
    webhook_sub_set(wh, 9, u, NULL, 0);
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 10, NULL);
    webhook_sub_set(wh, 10, u, NULL, 0);
    const char *hs = "{\"specversion\":\"1.0\",\"id\":\"x\",\"type\":"
                     "\"platform.events.validatesubscription\"}";
    ok(webhook_handshake(wh, 77, hs, strlen(hs)) == WEBHOOK_EINVAL, "handshake of unknown sub");
    rF.fail_first = 1;
    int b0 = count_path(&rB, "/s9");
    ok(webhook_handshake(wh, 8, hs, strlen(hs)) == 0, "handshake started (fails once)");
    ok(webhook_handshake(wh, 9, hs, strlen(hs)) == 0, "handshake started (always fails)");
    ok(webhook_handshake(wh, 10, hs, strlen(hs)) == 0, "handshake started (succeeds)");
    RUN_UNTIL(was_validated(8) && was_validated(10) && log_has("handshake given up sub=9"), 3000);
    ok(was_validated(10), "validated at once");
    ok(was_validated(8), "validated on the retry");
    ok(count_path(&rF, "/s8") == 2, "two handshake attempts (%d)", count_path(&rF, "/s8"));
    const rreq_t *q = find_req(&rF, "/s8", 1);
    ok(q && q->len == strlen(hs) && memcmp(q->body, hs, q->len) == 0 &&
           strcmp(q->ctype, "application/json; charset=utf-8") == 0,
       "handshake body and content type");
    ok(q && strncmp(q->wid, "msg_hs_8_", 9) == 0 && sign_ok(q, key1, sizeof(key1) - 1),
       "handshake signed (%s)", q ? q->wid : "");
    const rreq_t *q0 = find_req(&rF, "/s8", 0);
    ok(q && q0 && strcmp(q->wid, q0->wid) == 0, "same webhook-id for the handshake's retries");
    ok(!was_validated(9), "never validated");
    ok(count_path(&rB, "/s9") - b0 == 3, "1 + 2 handshake attempts, then given up (%d)",
       count_path(&rB, "/s9") - b0);
    ok(log_has("handshake validated sub=8"), "validation logged");
    /* a restarted handshake cancels the old schedule; a removed sub's handshake stops */
    rF.fail_first = 100;
    int f0 = count_path(&rF, "/s8");
    webhook_handshake(wh, 8, hs, strlen(hs));
    RUN_UNTIL(count_path(&rF, "/s8") > f0, 1000);
    remove_sub(wh, 8);
    run_for(150);
    ok(count_path(&rF, "/s8") == f0 + 1, "no handshake attempts after sub_remove");
    rF.fail_first = 0;
    scenario_end(wh);
}

static void test_private_and_http(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    o.allow_private = 0;
    int64_t sched[] = {0};
    o.retry_us = sched;
    o.n_retry = 0; /* one attempt, then dead */
    webhook_t *wh = new_engine(&o);
    const char *hosts[] = {"127.0.0.1",          "localhost",       "[::1]",
                           "[::ffff:127.0.0.1]", "10.1.2.3",        "169.254.169.254",
                           "[fd00:ec2::254]",    "100.100.100.200", "0.0.0.0",
                           "[fe80::1]",          "192.168.1.1",     "[::ffff:10.0.0.1]",
                           "255.255.255.255",    "224.0.0.1",       "172.20.0.1"};
    size_t nh = sizeof(hosts) / sizeof(hosts[0]);
    uint64_t subs[32];
    char u[256];
    for (size_t i = 0; i < nh; i++) {
        subs[i] = 40 + i;
        url(u, sizeof(u), "http", hosts[i], rA.port, subs[i], NULL);
        ok(webhook_sub_set(wh, subs[i], u, NULL, 0) == 0, "sub on %s", hosts[i]);
    }
    uint64_t cur;
    webhook_start(wh, &cur);
    int a0 = rA.count;
    uint64_t s1 = add_event();
    dispatch(wh, s1, subs, nh);
    webhook_stats_t sts;
    RUN_UNTIL((webhook_get_stats(wh, &sts), sts.dead_lettered == nh) && durable_cursor() == s1,
              3000);
    ok(rA.count == a0, "nothing was sent");
    for (size_t i = 0; i < nh; i++)
        ok(load_dead(subs[i]) == 1 &&
               strcmp(deads[0].d.last_error, "target address not allowed") == 0 &&
               deads[0].d.last_status == 0,
           "%s refused (%s)", hosts[i], ndead ? deads[0].d.last_error : "none");
    ok(log_has("target address not allowed"), "refusal logged");
    webhook_free(wh);

    o.allow_private = 1;
    o.allow_http = 0;
    wh = new_engine(&o);
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 60, NULL);
    webhook_sub_set(wh, 60, u, NULL, 0);
    uint64_t s2 = add_event(), sub60[] = {60};
    dispatch(wh, s2, sub60, 1);
    RUN_UNTIL(load_dead(60) == 1, 2000);
    ok(ndead == 1 && strcmp(deads[0].d.last_error, "http endpoints are not allowed") == 0,
       "http endpoint refused without allow_http (%s)", ndead ? deads[0].d.last_error : "none");
    ok(rA.count == a0, "still nothing sent");
    scenario_end(wh);
}

static void test_tls(const char *ca, const char *garbage)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {0};
    o.retry_us = sched;
    o.n_retry = 0;
    char err[256] = "";
    o.ca_file = "/nonexistent/ca.pem";
    ok(webhook_new(base, st, &o, err, sizeof(err)) == NULL && strstr(err, "CA file"),
       "a missing CA file fails webhook_new (%s)", err);
    o.ca_file = garbage;
    err[0] = '\0';
    ok(webhook_new(base, st, &o, err, sizeof(err)) == NULL && err[0], "a bad CA file too (%s)",
       err);
    o.ca_file = ca;
    o.allow_http = 0;
    webhook_t *wh = new_engine(&o);
    ok(wh != NULL, "webhook_new with a CA file");
    char u[256];
    url(u, sizeof(u), "https", "localhost", rT.port, 20, NULL);
    webhook_sub_set(wh, 20, u, key1, sizeof(key1) - 1);
    url(u, sizeof(u), "https", "127.0.0.1", rT.port, 21, NULL);
    webhook_sub_set(wh, 21, u, NULL, 0);
    url(u, sizeof(u), "https", "localhost", rM.port, 22, NULL);
    webhook_sub_set(wh, 22, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    uint64_t s1 = add_event(), s2 = add_event(), subs[] = {20, 21, 22};
    dispatch(wh, s1, subs, 3);
    dispatch(wh, s2, subs, 2);
    webhook_stats_t sts;
    RUN_UNTIL((webhook_get_stats(wh, &sts), sts.delivered == 4 && sts.dead_lettered == 1), 3000);
    ok(count_path(&rT, "/s20") == 2 && count_path(&rT, "/s21") == 2,
       "https to a name and to an address literal delivered");
    const rreq_t *q = find_req(&rT, "/s20", 0);
    /* two connections of the pool race: either event may arrive first */
    ok(q && sign_ok(q, key1, sizeof(key1) - 1) &&
           (strcmp(q->body, event_json[s1]) == 0 || strcmp(q->body, event_json[s2]) == 0),
       "signed body over TLS");
    ok(count_path(&rM, "/s22") == 0, "nothing sent to a certificate for another name");
    RUN_UNTIL(load_dead(22) == 1, 1000);
    ok(ndead == 1 && strncmp(deads[0].d.last_error, "TLS: certificate verify failed", 30) == 0,
       "hostname mismatch fails verification (%s)", ndead ? deads[0].d.last_error : "none");
    webhook_free(wh);

    o.ca_file = NULL;
    wh = new_engine(&o);
    url(u, sizeof(u), "https", "localhost", rT.port, 23, NULL);
    webhook_sub_set(wh, 23, u, NULL, 0);
    uint64_t s3 = add_event(), sub23[] = {23};
    int t0 = rT.count;
    dispatch(wh, s3, sub23, 1);
    RUN_UNTIL(load_dead(23) == 1, 2000);
    ok(ndead == 1 && strncmp(deads[0].d.last_error, "TLS: certificate verify failed", 30) == 0,
       "without the CA file: %s", ndead ? deads[0].d.last_error : "none");
    ok(rT.count == t0, "no request reached the receiver");
    scenario_end(wh);
}

static void test_overflow_and_remove(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {10 * 1000000};
    o.retry_us = sched;
    o.n_retry = 1;
    o.pool_size = 1;
    o.max_queued = 2;
    o.timeout_us = 10 * 1000000;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rH.port, 30, NULL);
    webhook_sub_set(wh, 30, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    int h0 = rH.count;
    uint64_t sub30[] = {30}, seqs[5];
    for (int i = 0; i < 5; i++) {
        seqs[i] = add_event();
        dispatch(wh, seqs[i], sub30, 1);
    }
    RUN_UNTIL(rH.count > h0 && (load_retries(), nretries == 2), 2000);
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.in_flight == 1 && sts.queued == 2 && sts.retries_pending == 2,
       "pool 1, queue 2, the rest recorded as retries (%" PRIu64 "/%" PRIu64 "/%" PRIu64 ")",
       sts.in_flight, sts.queued, sts.retries_pending);
    ok(nretries == 2 && retries[0].r.attempts == 0 &&
           strcmp(retries[0].r.last_error, "queue full") == 0,
       "overflow retries: no attempt counted");
    ok(durable_cursor() < seqs[0], "cursor holds before the in-flight delivery");
    remove_sub(wh, 30);
    webhook_get_stats(wh, &sts);
    ok(sts.in_flight == 0 && sts.queued == 0 && sts.retries_pending == 0,
       "sub_remove cancels in-flight, queued and retries");
    ok(sts.cursor == seqs[4], "cancelled deliveries count as done for the cursor");
    run_for(100);
    ok(durable_cursor() == seqs[4], "durable cursor moved");
    ok(rH.count == h0 + 1, "only the one request was ever sent");
    webhook_sub_remove(wh, 30); /* twice: a no-op */

    /* free with work in flight: no callbacks after return (ASan watches) */
    url(u, sizeof(u), "http", "127.0.0.1", rH.port, 31, NULL);
    webhook_sub_set(wh, 31, u, NULL, 0);
    uint64_t s6 = add_event(), sub31[] = {31};
    dispatch(wh, s6, sub31, 1);
    webhook_handshake(wh, 31, "{}", 2);
    RUN_UNTIL(rH.count >= h0 + 2, 1000);
    webhook_get_stats(wh, &sts);
    ok(rH.count == h0 + 2 && sts.in_flight == 1 && sts.queued == 1,
       "delivery in flight, handshake queued behind it");
    scenario_end(wh);
    run_for(50);
    ok(1, "loop runs on after webhook_free with requests in flight");
}

/* A name other than localhost that /etc/hosts maps to 127.0.0.1, to exercise the evdns path. */
static int hosts_name(char *out, size_t n)
{
    FILE *f = fopen("/etc/hosts", "r");
    char line[512];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || strcmp(tok, "127.0.0.1") != 0) continue;
        while (!found && (tok = strtok_r(NULL, " \t\r\n", &save)) != NULL) {
            size_t l = strlen(tok);
            if (tok[0] == '#') break;
            if (strcmp(tok, "localhost") == 0 || (l > 10 && !strcmp(tok + l - 10, ".localhost")) ||
                l >= n)
                continue;
            snprintf(out, n, "%s", tok);
            found = 1;
        }
    }
    if (f) fclose(f);
    return found;
}

static void test_dns(void)
{
    char name[128];
    if (!hosts_name(name, sizeof(name))) {
        ok(1, "# SKIP no name for 127.0.0.1 in /etc/hosts");
        return;
    }
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {0};
    o.retry_us = sched;
    o.n_retry = 0;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", name, rA.port, 70, NULL);
    webhook_sub_set(wh, 70, u, NULL, 0);
    uint64_t cur, s1 = add_event(), sub70[] = {70};
    webhook_start(wh, &cur);
    dispatch(wh, s1, sub70, 1);
    RUN_UNTIL(count_path(&rA, "/s70") == 1, 3000);
    const rreq_t *q = find_req(&rA, "/s70", 0);
    char host[200];
    snprintf(host, sizeof(host), "%s:%d", name, rA.port);
    ok(q && strcmp(q->host, host) == 0, "resolved %s through evdns and delivered (Host %s)", name,
       q ? q->host : "-");
    webhook_free(wh);
    o.allow_private = 0;
    wh = new_engine(&o);
    url(u, sizeof(u), "http", name, rA.port, 71, NULL);
    webhook_sub_set(wh, 71, u, NULL, 0);
    uint64_t s2 = add_event(), sub71[] = {71};
    dispatch(wh, s2, sub71, 1);
    RUN_UNTIL(load_dead(71) == 1, 3000);
    ok(ndead == 1 && strcmp(deads[0].d.last_error, "target address not allowed") == 0,
       "a name that resolves to loopback is refused (%s)", ndead ? deads[0].d.last_error : "-");
    scenario_end(wh);
}

static void test_refused_port(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {0};
    o.retry_us = sched;
    o.n_retry = 0;
    webhook_t *wh = new_engine(&o);
    /* a port nobody listens on: bind one, note it, close it */
    struct evhttp *h = evhttp_new(base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    evhttp_free(h);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", ntohs(sin.sin_port), 80, NULL);
    webhook_sub_set(wh, 80, u, NULL, 0);
    uint64_t s1 = add_event(), s2 = add_event(), sub80[] = {80};
    dispatch(wh, s1, sub80, 1);
    dispatch(wh, s2, sub80, 1);
    RUN_UNTIL(load_dead(80) == 2, 3000);
    ok(ndead == 2 && strncmp(deads[0].d.last_error, "connection", 10) == 0 &&
           deads[0].d.last_status == 0,
       "a refused connection fails the attempt (%s)", ndead ? deads[0].d.last_error : "-");
    scenario_end(wh);
}

/* Reads what is waiting on fd (non-blocking) into buf at *len; returns 1 once buf holds want. */
static int raw_read_until(int fd, char *buf, size_t cap, size_t *len, const char *want)
{
    ssize_t n;
    while (*len + 1 < cap && (n = recv(fd, buf + *len, cap - 1 - *len, MSG_DONTWAIT)) > 0)
        *len += (size_t)n;
    buf[*len] = '\0';
    return strstr(buf, want) != NULL;
}

/* The next request on a keep-alive connection is on the wire when the pass that read the previous
 * response ends, not one pass later (the socket bufferevent would write it only once the loop
 * polls the socket again): a receiver talking raw TCP sees it without the loop running again. */
static void test_immediate_write(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    o.pool_size = 1;
    webhook_t *wh = new_engine(&o);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    ok(lfd >= 0 && bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(lfd, 4) == 0 &&
           getsockname(lfd, (struct sockaddr *)&sin, &sl) == 0,
       "a raw TCP receiver listens");
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", ntohs(sin.sin_port), 90, NULL);
    webhook_sub_set(wh, 90, u, NULL, 0);
    uint64_t cur = 0;
    webhook_start(wh, &cur);
    uint64_t s1 = add_event(), s2 = add_event(), s3 = add_event(), sub90[] = {90};
    dispatch(wh, s1, sub90, 1);
    int cfd = -1;
    RUN_UNTIL((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0, 2000);
    ok(cfd >= 0, "the engine connects");
    static char buf[16384];
    size_t len = 0;
    RUN_UNTIL(raw_read_until(cfd, buf, sizeof(buf), &len, event_json[s1]), 2000);
    ok(strstr(buf, event_json[s1]) != NULL, "first request received");
    /* two more queue up behind it (one connection): each must follow its predecessor's answer
     * within the same loop pass */
    dispatch(wh, s2, sub90, 1);
    dispatch(wh, s3, sub90, 1);
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    uint64_t seqs[] = {s2, s3};
    for (int i = 0; i < 2; i++) {
        webhook_stats_t sts;
        webhook_get_stats(wh, &sts);
        uint64_t d0 = sts.delivered;
        raw_ok[nraw_ok][0] = 90, raw_ok[nraw_ok++][1] = i == 0 ? s1 : s2;
        ok(send(cfd, resp, sizeof(resp) - 1, 0) == (ssize_t)sizeof(resp) - 1, "answer %d", i + 1);
        int64_t end = mono_ms() + 2000;
        while ((webhook_get_stats(wh, &sts), sts.delivered == d0) && mono_ms() < end)
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        ok(sts.delivered == d0 + 1, "answer %d read", i + 1);
        /* no further loop pass: the next request must already be in the socket */
        len = 0;
        ok(raw_read_until(cfd, buf, sizeof(buf), &len, event_json[seqs[i]]),
           "request %d was written in the pass that read the previous answer", i + 2);
    }
    raw_ok[nraw_ok][0] = 90, raw_ok[nraw_ok++][1] = s3;
    send(cfd, resp, sizeof(resp) - 1, 0);
    RUN_UNTIL(durable_cursor() == s3, 2000);
    ok(durable_cursor() == s3, "all three delivered, cursor at the last");
    close(cfd);
    close(lfd);
    scenario_end(wh);
}

static void test_literal_check(void)
{
    ok(webhook_literal_host_refused("127.0.0.1") && webhook_literal_host_refused("[::1]") &&
           webhook_literal_host_refused("169.254.169.254") &&
           webhook_literal_host_refused("[::ffff:192.168.0.1]") &&
           webhook_literal_host_refused("[fd00:ec2::254]"),
       "literal check refuses loopback, metadata, mapped private");
    ok(!webhook_literal_host_refused("8.8.8.8") &&
           !webhook_literal_host_refused("[2001:4860:4860::8888]") &&
           !webhook_literal_host_refused("example.com"),
       "literal check allows public addresses and leaves names alone");
}

/* ---- content modes, Retry-After, 410 Gone ---- */

/* Stores an event with the given JSON (the store does not look inside). */
static uint64_t add_event_json(const char *json)
{
    static int n;
    char id[32];
    snprintf(id, sizeof(id), "raw-%d", ++n);
    store_event_in_t ev = {.id = id,
                           .source = "urn:test",
                           .type = "t",
                           .resource = "urn:altinn:resource:r",
                           .json = json,
                           .json_len = strlen(json),
                           .stored_us = wall_us()};
    store_result_t res;
    if (store_commit(st, NULL, &ev, 1, &res) != STORE_OK || res.res != STORE_RES_STORED) {
        printf("# append failed\n");
        exit(1);
    }
    return res.seq;
}

/* The ce- header lines of q, in order. */
static const char *ce_lines(const rreq_t *q)
{
    static char out[2048];
    size_t o = 0;
    const char *p = q->hdrs;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (strncasecmp(p, "ce-", 3) == 0 && o + n < sizeof(out)) {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return out;
}

static int has_header(const rreq_t *q, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "%s: ", name);
    size_t pl = strlen(pat);
    for (const char *p = q->hdrs; *p;) {
        if (strncasecmp(p, pat, pl) == 0) return 1;
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

static int body_is(const rreq_t *q, const void *b, size_t n)
{
    return q && q->len == n && memcmp(q->body, b, n) == 0;
}

static void test_retry_after_parse(void)
{
    int64_t now = 784111777LL * 1000000; /* Sun, 06 Nov 1994 08:49:37 GMT */
    int64_t d = -1;
    ok(retry_after_parse("120", now, &d) == 0 && d == 120000000, "Retry-After: 120 seconds");
    ok(retry_after_parse(" 0 ", now, &d) == 0 && d == 0, "Retry-After: 0 with white space");
    ok(retry_after_parse("99999999999999999999", now, &d) == 0 && d > 0,
       "a huge delta saturates instead of overflowing");
    ok(retry_after_parse("Sun, 06 Nov 1994 08:51:37 GMT", now, &d) == 0 && d == 120000000,
       "IMF-fixdate");
    ok(retry_after_parse("Sunday, 06-Nov-94 08:52:37 GMT", now, &d) == 0 && d == 180000000,
       "RFC 850 date (two-digit year)");
    ok(retry_after_parse("Sun Nov  6 08:53:37 1994", now, &d) == 0 && d == 240000000,
       "asctime date");
    ok(retry_after_parse("Tue, 29 Feb 2000 00:00:00 GMT", now, &d) == 0 &&
           d == (951782400LL - 784111777LL) * 1000000,
       "a leap day");
    ok(retry_after_parse("Sat, 05 Nov 1994 08:49:37 GMT", now, &d) == 0 && d == 0,
       "a date in the past: no delay");
    int64_t now2 = 1700000000LL * 1000000; /* 2023 */
    ok(retry_after_parse("Friday, 01-Jan-60 00:00:00 GMT", now2, &d) == 0 &&
           d == (2840140800LL - 1700000000LL) * 1000000,
       "RFC 850: 60 is 2060 when that is within 50 years");
    ok(retry_after_parse("Friday, 01-Jan-99 00:00:00 GMT", now2, &d) == 0 && d == 0,
       "RFC 850: 99 is 1999 (2099 is over 50 years ahead)");
    const char *bad[] = {"",
                         "soon",
                         "-5",
                         "1.5",
                         "12 s",
                         "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 UTC",
                         "Sun, 31 Feb 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT x",
                         "Sun Nov 6 08:49:37 1994",
                         "Fun, 06 Nov 1994 08:49:37 GMT"};
    int nbad = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        nbad += retry_after_parse(bad[i], now, &d) != 0;
    ok(nbad == (int)(sizeof(bad) / sizeof(bad[0])), "malformed values refused (%d)", nbad);
}

static void test_content_modes(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {0};
    o.retry_us = sched;
    o.n_retry = 0;
    webhook_t *wh = new_engine(&o);
    char u[256];
    webhook_sub_opts_t so = {u, NULL, 0, WEBHOOK_MODE_CLOUDEVENTS};
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 101, NULL);
    ok(webhook_sub_config(wh, 101, &so) == 0, "sub_config cloudevents");
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 102, NULL);
    so.mode = WEBHOOK_MODE_BINARY;
    so.secret = key1;
    so.secret_len = sizeof(key1) - 1;
    ok(webhook_sub_config(wh, 102, &so) == 0, "sub_config binary, signed");
    so.mode = (webhook_mode_t)7;
    ok(webhook_sub_config(wh, 103, &so) == WEBHOOK_EINVAL, "an unknown mode: EINVAL");
    ok(webhook_sub_config(wh, 103, NULL) == WEBHOOK_EINVAL, "no options: EINVAL");
    uint64_t cur;
    webhook_start(wh, &cur);

    /* cloudevents: the event JSON as is, its own media type */
    uint64_t s1 = add_event(), sub101[] = {101};
    dispatch(wh, s1, sub101, 1);
    RUN_UNTIL(count_path(&rA, "/s101") == 1, 2000);
    const rreq_t *q = find_req(&rA, "/s101", 0);
    ok(q && strcmp(q->ctype, "application/cloudevents+json; charset=utf-8") == 0,
       "cloudevents: Content-Type (%s)", q ? q->ctype : "-");
    ok(q && body_is(q, event_json[s1], strlen(event_json[s1])) && ce_lines(q)[0] == '\0',
       "cloudevents: the body is the event JSON, no ce- headers");

    /* binary: one event per data shape, all to sub 102 (signed) */
    static const char *ev[] = {
        /* JSON data (spaced out, sent compact), JSON content type with a parameter */
        "{\"specversion\":\"1.0\",\"id\":\"b-1\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"time\":\"2024-01-02T03:04:05Z\",\"resource\":\"urn:altinn:resource:r\","
        "\"datacontenttype\":\"application/json; charset=utf-8\","
        "\"data\": { \"a\" : [1, 2.5e3, {\"b\":\"x y\\u00e5\"}], \"c\": null }}",
        /* text data; non-ASCII, '%', '"' and space in attribute values; typed extensions */
        "{\"specversion\":\"1.0\",\"id\":\"b-2\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"subject\":\"bl\\u00e5b\\u00e6r 100%\",\"quote\":\"a\\\"b\",\"flag\":true,"
        "\"count\":42,\"nothing\":null,\"datacontenttype\":\"text/plain\","
        "\"data\":\"hello \\\"world\\\"\\nline 2\"}",
        /* data_base64 with a NUL and 0xff */
        "{\"specversion\":\"1.0\",\"id\":\"b-3\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"datacontenttype\":\"image/png\",\"data_base64\":\"AAEC/w==\"}",
        /* no data, no datacontenttype */
        "{\"specversion\":\"1.0\",\"id\":\"b-4\",\"source\":\"urn:test\",\"type\":\"t\"}",
        /* a JSON string as data without datacontenttype: application/json, the JSON text */
        "{\"specversion\":\"1.0\",\"id\":\"b-5\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"data\":\"just \\\"text\\\"\"}",
        /* a +json media type */
        "{\"specversion\":\"1.0\",\"id\":\"b-6\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"datacontenttype\":\"application/vnd.x+json\",\"data\":\"s\"}",
        /* data_base64 without datacontenttype */
        "{\"specversion\":\"1.0\",\"id\":\"b-7\",\"source\":\"urn:test\",\"type\":\"t\","
        "\"data_base64\":\"aGk\"}",
    };
    enum { NEV = sizeof(ev) / sizeof(ev[0]) };
    uint64_t seq[NEV], sub102[] = {102};
    for (int i = 0; i < NEV; i++) {
        seq[i] = add_event_json(ev[i]);
        webhook_dispatch(wh, seq[i], ev[i], strlen(ev[i]), sub102, 1);
    }
    RUN_UNTIL(count_path(&rA, "/s102") == NEV && durable_cursor() == seq[NEV - 1], 3000);
    ok(count_path(&rA, "/s102") == NEV, "binary: %d deliveries (%d)", NEV,
       count_path(&rA, "/s102"));
    const rreq_t *b[NEV];
    for (int i = 0; i < NEV; i++) {
        b[i] = NULL;
        char id[16];
        snprintf(id, sizeof(id), "ce-id: b-%d\n", i + 1);
        for (int k = 0; k < count_path(&rA, "/s102"); k++) {
            const rreq_t *x = find_req(&rA, "/s102", k);
            if (x && strstr(x->hdrs, id)) b[i] = x;
        }
    }
    ok(b[0] && strcmp(ce_lines(b[0]), "ce-specversion: 1.0\nce-id: b-1\nce-source: urn:test\n"
                                      "ce-type: t\nce-time: 2024-01-02T03:04:05Z\n"
                                      "ce-resource: urn:altinn:resource:r\n") == 0,
       "binary: every attribute but data and datacontenttype as a ce- header, in order");
    ok(b[0] && strcmp(b[0]->ctype, "application/json; charset=utf-8") == 0,
       "binary: Content-Type is the datacontenttype");
    const char *j1 = "{\"a\":[1,2.5e3,{\"b\":\"x y\xc3\xa5\"}],\"c\":null}";
    ok(body_is(b[0], j1, strlen(j1)), "binary: JSON data as compact JSON text (%s)",
       b[0] ? b[0]->body : "-");
    ok(b[0] && !has_header(b[0], "ce-datacontenttype") && !has_header(b[0], "ce-data"),
       "binary: no ce-datacontenttype, no ce-data");
    ok(b[0] && sign_ok(b[0], key1, sizeof(key1) - 1), "binary: the signature covers the body sent");
    ok(b[1] && strcmp(ce_lines(b[1]), "ce-specversion: 1.0\nce-id: b-2\nce-source: urn:test\n"
                                      "ce-type: t\nce-subject: bl%C3%A5b%C3%A6r%20100%25\n"
                                      "ce-quote: a%22b\nce-flag: true\nce-count: 42\n") == 0,
       "binary: values percent-encoded (non-ASCII, space, '%%', '\"'), typed extensions as "
       "text, null left out");
    const char *t2 = "hello \"world\"\nline 2";
    ok(b[1] && strcmp(b[1]->ctype, "text/plain") == 0 && body_is(b[1], t2, strlen(t2)),
       "binary: text data as the string's bytes");
    static const unsigned char bin[] = {0, 1, 2, 0xff};
    ok(b[2] && strcmp(b[2]->ctype, "image/png") == 0 && body_is(b[2], bin, 4) &&
           strcmp(b[2]->clen, "4") == 0,
       "binary: data_base64 decoded to the body");
    ok(b[2] && sign_ok(b[2], key1, sizeof(key1) - 1) && !has_header(b[2], "ce-data_base64"),
       "binary: the signature covers the decoded bytes exactly");
    ok(b[3] && b[3]->len == 0 && strcmp(b[3]->clen, "0") == 0 && b[3]->ctype[0] == '\0',
       "binary: no data: empty body, no Content-Type (%s)", b[3] ? b[3]->ctype : "-");
    ok(b[4] && strcmp(b[4]->ctype, "application/json") == 0 &&
           body_is(b[4], "\"just \\\"text\\\"\"", 15),
       "binary: a string without datacontenttype is JSON text (%s)", b[4] ? b[4]->body : "-");
    ok(b[5] && body_is(b[5], "\"s\"", 3), "binary: +json counts as JSON");
    ok(b[6] && strcmp(b[6]->ctype, "application/octet-stream") == 0 && body_is(b[6], "hi", 2),
       "binary: data_base64 without datacontenttype (unpadded)");

    /* an event the binary mode cannot express is dead-lettered at once */
    const char *badev = "{\"specversion\":\"1.0\",\"id\":\"b-8\",\"source\":\"urn:test\","
                        "\"type\":\"t\",\"obj\":{\"a\":1}}";
    uint64_t s8 = add_event_json(badev);
    int n102 = count_path(&rA, "/s102");
    webhook_dispatch(wh, s8, badev, strlen(badev), sub102, 1);
    RUN_UNTIL(load_dead(102) == 1 && durable_cursor() == s8, 2000);
    ok(ndead == 1 && deads[0].seq == s8 && deads[0].d.attempts == 1 &&
           strcmp(deads[0].d.last_error, "binary mode: attribute is not a scalar: obj") == 0,
       "binary: an object attribute is dead-lettered at once (%s)",
       ndead ? deads[0].d.last_error : "-");
    ok(count_path(&rA, "/s102") == n102, "nothing was sent for it");

    /* the handshake of a binary subscription is structured */
    const char *hs = "{\"specversion\":\"1.0\",\"id\":\"h\",\"source\":\"urn:x\","
                     "\"type\":\"platform.events.validatesubscription\"}";
    webhook_handshake(wh, 102, hs, strlen(hs));
    RUN_UNTIL(was_validated(102), 2000);
    q = find_req(&rA, "/s102", count_path(&rA, "/s102") - 1);
    ok(was_validated(102) && q && strcmp(q->ctype, "application/json; charset=utf-8") == 0 &&
           body_is(q, hs, strlen(hs)) && ce_lines(q)[0] == '\0' &&
           sign_ok(q, key1, sizeof(key1) - 1),
       "handshake of a binary subscription: structured JSON, signed");

    /* webhook_sub_set on the same endpoint: back to structured from the next attempt */
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 102, NULL);
    ok(webhook_sub_set(wh, 102, u, NULL, 0) == 0, "sub_set keeps working (structured)");
    uint64_t s9 = add_event();
    n102 = count_path(&rA, "/s102");
    dispatch(wh, s9, sub102, 1);
    RUN_UNTIL(count_path(&rA, "/s102") == n102 + 1, 2000);
    q = find_req(&rA, "/s102", n102);
    ok(q && strcmp(q->ctype, "application/json; charset=utf-8") == 0 &&
           body_is(q, event_json[s9], strlen(event_json[s9])) && q->wsig[0] == '\0',
       "structured again, unsigned");
    scenario_end(wh);
}

static void test_retry_after(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {40000, 40000, 40000};
    o.retry_us = sched;
    o.n_retry = 3;
    webhook_t *wh = new_engine(&o);
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rS.port, 110, NULL);
    webhook_sub_set(wh, 110, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);

    /* 429 with delta-seconds */
    rS.status_first = 1;
    rS.status = 429;
    snprintf(rS.retry_after, sizeof(rS.retry_after), "1");
    uint64_t s1 = add_event(), sub110[] = {110};
    dispatch(wh, s1, sub110, 1);
    RUN_UNTIL(count_path(&rS, "/s110") == 1 && (load_retries(), nretries == 1), 2000);
    const retry_rec_t *r = find_retry(110, s1);
    const rreq_t *q0 = find_req(&rS, "/s110", 0);
    ok(r && r->r.attempts == 1 && r->r.last_status == 429, "429: a failed attempt, recorded");
    ok(r && q0 && r->r.due_us >= q0->at_us + 1000000 && r->r.due_us < q0->at_us + 1500000,
       "429 Retry-After: 1: due a second later (%" PRId64 " ms)",
       r && q0 ? (r->r.due_us - q0->at_us) / 1000 : -1);
    RUN_UNTIL(count_path(&rS, "/s110") == 2, 3000);
    const rreq_t *q1 = find_req(&rS, "/s110", 1);
    ok(q0 && q1 && q1->at_ms - q0->at_ms >= 995 && q1->at_ms - q0->at_ms < 2000,
       "the next attempt waited for Retry-After, not the 40 ms schedule (%" PRId64 " ms)",
       q0 && q1 ? q1->at_ms - q0->at_ms : -1);
    RUN_UNTIL((load_retries(), nretries == 0), 1000);
    ok(nretries == 0 && q1 && q1->answered == 200, "then delivered");

    /* 503 with an HTTP-date two seconds ahead */
    int64_t t = test_now_us() / 1000000 + 2;
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(rS.retry_after, sizeof(rS.retry_after), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    rS.status_first = 1;
    rS.status = 503;
    uint64_t s2 = add_event();
    dispatch(wh, s2, sub110, 1);
    RUN_UNTIL(count_path(&rS, "/s110") == 3 && (load_retries(), nretries == 1), 2000);
    r = find_retry(110, s2);
    ok(r && r->r.last_status == 503 && r->r.attempts == 1 && r->r.due_us >= t * 1000000 &&
           r->r.due_us < t * 1000000 + 200000,
       "503 Retry-After: %s: due at that time", rS.retry_after);
    RUN_UNTIL(count_path(&rS, "/s110") == 4, 4000);
    const rreq_t *q3 = find_req(&rS, "/s110", 3);
    ok(q3 && q3->at_us >= t * 1000000, "the next attempt came after the date (%" PRId64 " ms)",
       q3 ? (q3->at_us - t * 1000000) / 1000 : -1);
    scenario_end(wh);

    /* the cap, and a schedule longer than Retry-After */
    scenario_begin();
    o.max_retry_after_us = 300000;
    int64_t sched2[] = {40000, 600000};
    o.retry_us = sched2;
    o.n_retry = 2;
    wh = new_engine(&o);
    url(u, sizeof(u), "http", "127.0.0.1", rS.port, 111, NULL);
    webhook_sub_set(wh, 111, u, NULL, 0);
    webhook_start(wh, &cur);
    rS.status_first = 2;
    rS.status = 429;
    snprintf(rS.retry_after, sizeof(rS.retry_after), "3600");
    uint64_t s3 = add_event(), sub111[] = {111};
    dispatch(wh, s3, sub111, 1);
    RUN_UNTIL(count_path(&rS, "/s111") == 3, 4000);
    q0 = find_req(&rS, "/s111", 0);
    q1 = find_req(&rS, "/s111", 1);
    const rreq_t *q2 = find_req(&rS, "/s111", 2);
    ok(q0 && q1 && q1->at_ms - q0->at_ms >= 295 && q1->at_ms - q0->at_ms < 1000,
       "Retry-After: 3600 capped at max_retry_after_us 300 ms (%" PRId64 " ms)",
       q0 && q1 ? q1->at_ms - q0->at_ms : -1);
    ok(q1 && q2 && q2->at_ms - q1->at_ms >= 595 && q2->at_ms - q1->at_ms < 1500,
       "a schedule delay longer than the capped Retry-After wins (%" PRId64 " ms)",
       q1 && q2 ? q2->at_ms - q1->at_ms : -1);
    ok(q2 && q2->answered == 200, "then delivered");

    /* without on_gone a 410 is an ordinary failure */
    rS.status_first = 1;
    rS.status = 410;
    rS.retry_after[0] = '\0';
    uint64_t s4 = add_event();
    dispatch(wh, s4, sub111, 1);
    RUN_UNTIL((load_retries(), find_retry(111, s4) != NULL), 2000);
    r = find_retry(111, s4);
    ok(r && r->r.last_status == 410 && r->r.attempts == 1,
       "without on_gone, 410 is retried like any failure");
    RUN_UNTIL((load_retries(), nretries == 0), 2000);
    scenario_end(wh);
}

static uint64_t gone_subs[8];
static int ngone, gone_remove;
static webhook_t *gone_wh;

static void test_on_gone(void *ctx, uint64_t sub_id)
{
    (void)ctx;
    if (ngone < 8) gone_subs[ngone++] = sub_id;
    if (gone_remove) remove_sub(gone_wh, sub_id); /* calls back into the engine */
}

static void test_gone(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {10 * 1000000, 10 * 1000000};
    o.retry_us = sched;
    o.n_retry = 2;
    int64_t vs[] = {30000};
    o.validation_us = vs;
    o.n_validation = 1;
    o.pool_size = 1;
    o.on_gone = test_on_gone;
    webhook_t *wh = gone_wh = new_engine(&o);
    ngone = 0;
    gone_remove = 0;
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rS.port, 120, NULL);
    webhook_sub_set(wh, 120, u, NULL, 0);
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 121, NULL);
    webhook_sub_set(wh, 121, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);

    /* a first failure leaves a retry record (due in 10 s) */
    rS.fail_first = 1;
    uint64_t s1 = add_event(), both[] = {120, 121};
    webhook_dispatch(wh, s1, event_json[s1], strlen(event_json[s1]), both, 2);
    RUN_UNTIL(durable_cursor() == s1 && (load_retries(), find_retry(120, s1)), 2000);
    ok(find_retry(120, s1) != NULL, "a retry is pending for sub 120");
    /* then 410: one on the wire, two queued behind it (pool of 1) */
    rS.status_first = 100;
    rS.status = 410;
    rS.retry_after[0] = '\0';
    uint64_t s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = add_event();
        webhook_dispatch(wh, s[i], event_json[s[i]], strlen(event_json[s[i]]), both, 2);
    }
    RUN_UNTIL(ngone > 0 && durable_cursor() == s[2], 2000);
    run_for(100);
    ok(ngone == 1 && gone_subs[0] == 120, "on_gone called once, for sub 120 (%d)", ngone);
    ok(count_path(&rS, "/s120") == 2, "no attempt after the 410 (%d requests)",
       count_path(&rS, "/s120"));
    ok(count_path(&rA, "/s121") == 4, "the other subscription got all 4 events");
    ok(load_dead(120) == 0, "no dead letter");
    load_retries();
    ok(find_retry(120, s1) == NULL && nretries == 0, "its retry records were deleted (%d left)",
       nretries);
    ok(durable_cursor() == s[2], "the cursor passed every event");
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.retries_pending == 0 && sts.queued == 0 && sts.in_flight == 0,
       "nothing pending, queued or in flight");
    ok(log_has("endpoint gone sub=120"), "logged");

    /* a 410 to a handshake is only a failed handshake */
    webhook_handshake(wh, 120, "{}", 2);
    RUN_UNTIL(log_has("handshake given up sub=120"), 2000);
    ok(count_path(&rS, "/s120") == 4 && ngone == 1 && !was_validated(120),
       "handshake: 410 retried on the validation schedule, on_gone not called");

    /* calling into the engine from on_gone: the hook removes the subscription */
    gone_remove = 1;
    url(u, sizeof(u), "http", "127.0.0.1", rS.port, 122, NULL);
    webhook_sub_set(wh, 122, u, NULL, 0);
    uint64_t s5 = add_event(), s6 = add_event(), sub122[] = {122};
    webhook_dispatch(wh, s5, event_json[s5], strlen(event_json[s5]), sub122, 1);
    webhook_dispatch(wh, s6, event_json[s6], strlen(event_json[s6]), sub122, 1);
    RUN_UNTIL(ngone == 2 && durable_cursor() == s6, 2000);
    ok(ngone == 2 && gone_subs[1] == 122 && durable_cursor() == s6,
       "on_gone may remove the subscription");
    ok(webhook_redeliver(wh, 122, s5) == WEBHOOK_EINVAL && count_path(&rS, "/s122") == 1,
       "it is gone, after one request");
    rS.status_first = 0;
    gone_remove = 0;
    scenario_end(wh);
}

static int make_certs(const char *dir)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=hendelse-test-ca 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
             "-out srv.csr -subj /CN=localhost 2>/dev/null && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' "
             "> srv.ext && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
             "-days 2 -extfile srv.ext 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout oth.key "
             "-out oth.csr -subj /CN=other.example 2>/dev/null && "
             "printf 'subjectAltName=DNS:other.example\\n' > oth.ext && "
             "openssl x509 -req -in oth.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out oth.pem "
             "-days 2 -extfile oth.ext 2>/dev/null && "
             "echo 'not a certificate' > garbage.pem",
             dir);
    return system(cmd);
}

/* ---- on_attempt: every delivery attempt reported ---- */

typedef struct {
    uint64_t sub, seq;
    uint32_t attempt;
    int status;
    char error[128];
    int64_t duration_us;
} attempt_rec_t;

static attempt_rec_t attempts_seen[16];
static int nattempts;

static void test_on_attempt_hook(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt,
                                 int status, const char *error, int64_t duration_us)
{
    (void)ctx;
    if (nattempts >= 16) return;
    attempt_rec_t *a = &attempts_seen[nattempts++];
    a->sub = sub_id;
    a->seq = seq;
    a->attempt = attempt;
    a->status = status;
    snprintf(a->error, sizeof(a->error), "%s", error ? error : "(null)");
    a->duration_us = duration_us;
}

static void test_on_attempt(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {20000, 20000};
    o.retry_us = sched;
    o.n_retry = 2;
    o.on_attempt = test_on_attempt_hook;
    webhook_t *wh = new_engine(&o);
    nattempts = 0;
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 130, NULL);
    webhook_sub_set(wh, 130, u, NULL, 0);
    url(u, sizeof(u), "http", "127.0.0.1", rB.port, 131, NULL);
    webhook_sub_set(wh, 131, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    uint64_t s1 = add_event(), both[] = {130, 131};
    webhook_dispatch(wh, s1, event_json[s1], strlen(event_json[s1]), both, 2);
    webhook_stats_t sts;
    RUN_UNTIL((webhook_get_stats(wh, &sts), sts.dead_lettered == 1) && nattempts >= 4, 3000);
    ok(nattempts == 4, "on_attempt: 1 success + 3 failed attempts reported (%d)", nattempts);
    int ok_seen = 0, failed = 0, in_order = 1;
    for (int i = 0; i < nattempts; i++) {
        const attempt_rec_t *a = &attempts_seen[i];
        if (a->seq != s1 || a->duration_us < 0 || a->duration_us > 5000000) in_order = 0;
        if (a->sub == 130) {
            ok_seen += a->attempt == 1 && a->status == 200 && a->error[0] == 0;
        } else if (a->sub == 131) {
            if (a->attempt != (uint32_t)failed + 1 || a->status != 500) in_order = 0;
            failed++;
        }
    }
    ok(ok_seen == 1, "on_attempt: the success: attempt 1, status 200, no error");
    ok(failed == 3 && in_order,
       "on_attempt: failures numbered 1..3 with status 500, durations sane");
    scenario_end(wh);
}

/* Back-pressure: deliveries past the queue bound wait (parked, durably) and come back as the queue
 * drains; none is a failed attempt, none waits for the retry schedule (10 s here). */
static void test_backpressure(void)
{
    scenario_begin();
    webhook_opts_t o = base_opts();
    int64_t sched[] = {10 * 1000000};
    o.retry_us = sched;
    o.n_retry = 1;
    o.pool_size = 1;
    o.max_queued = 2;
    o.on_attempt = test_on_attempt_hook;
    webhook_t *wh = new_engine(&o);
    nattempts = 0;
    char u[256];
    url(u, sizeof(u), "http", "127.0.0.1", rA.port, 140, NULL);
    webhook_sub_set(wh, 140, u, NULL, 0);
    uint64_t cur;
    webhook_start(wh, &cur);
    int a0 = count_path(&rA, "/s140");
    uint64_t sub140[] = {140}, last = 0;
    for (int i = 0; i < 8; i++) {
        last = add_event();
        dispatch(wh, last, sub140, 1);
    }
    webhook_stats_t sts;
    webhook_get_stats(wh, &sts);
    ok(sts.queued == 3 && sts.retries_pending == 5,
       "1 queued for the free connection + 2 waiting; 5 parked (%" PRIu64 "/%" PRIu64 ")",
       sts.queued, sts.retries_pending);
    RUN_UNTIL(count_path(&rA, "/s140") - a0 >= 8 && durable_cursor() == last &&
                  (load_retries(), nretries == 0),
              2000);
    ok(count_path(&rA, "/s140") - a0 == 8, "all 8 delivered well before the 10 s retry delay (%d)",
       count_path(&rA, "/s140") - a0);
    int first = 0;
    for (int i = 0; i < nattempts; i++)
        first += attempts_seen[i].attempt == 1 && attempts_seen[i].status == 200;
    ok(nattempts == 8 && first == 8, "8 attempts reported, each attempt 1 with 200 (%d/%d)",
       nattempts, first);
    webhook_get_stats(wh, &sts);
    ok(nretries == 0 && sts.retries_pending == 0 && sts.failed == 0 && sts.delivered == 8,
       "no retry record left, nothing failed");
    ok(durable_cursor() == last, "durable cursor past the last event");
    scenario_end(wh);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/test_webhook_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    if (make_certs(root) != 0) {
        printf("# openssl failed\n");
        return 1;
    }
    char ca[128], garbage[128], cert[128], key[128], ocert[128], okey[128];
    snprintf(ca, sizeof(ca), "%s/ca.pem", root);
    snprintf(garbage, sizeof(garbage), "%s/garbage.pem", root);
    snprintf(cert, sizeof(cert), "%s/srv.pem", root);
    snprintf(key, sizeof(key), "%s/srv.key", root);
    snprintf(ocert, sizeof(ocert), "%s/oth.pem", root);
    snprintf(okey, sizeof(okey), "%s/oth.key", root);

    base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    commit_ev = event_new(base, -1, 0, on_commit, NULL);
    recv_start(&rA, MODE_OK, NULL, NULL);
    recv_start(&rB, MODE_FAIL, NULL, NULL);
    recv_start(&rR, MODE_REDIRECT, NULL, NULL);
    recv_start(&rH, MODE_HANG, NULL, NULL);
    recv_start(&rF, MODE_OK, NULL, NULL);
    recv_start(&rT, MODE_OK, cert, key);
    recv_start(&rM, MODE_OK, ocert, okey);
    recv_start(&rS, MODE_OK, NULL, NULL);

    test_success();
    test_retries_dead_redeliver();
    test_timeout_isolation();
    test_start_reload();
    test_handshake();
    test_private_and_http();
    test_tls(ca, garbage);
    test_overflow_and_remove();
    test_backpressure();
    test_dns();
    test_refused_port();
    test_immediate_write();
    test_literal_check();
    test_retry_after_parse();
    test_content_modes();
    test_on_attempt();
    test_retry_after();
    test_gone();
    ok(violations == 0, "crash-safety invariant held after all %d commits", commits);

    recv_t *rs[] = {&rA, &rB, &rR, &rH, &rF, &rT, &rM, &rS};
    for (size_t i = 0; i < sizeof(rs) / sizeof(rs[0]); i++)
        recv_stop(rs[i]);
    event_free(commit_ev);
    event_free(tick);
    event_base_free(base);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
