/* webhook/pool.c: destinations (scheme, host, port), their keep-alive connection pools and FIFO
 * queues, name resolution with the target address check, and TLS client set-up.
 *
 * Rules this file keeps (each one a trap of libevent's HTTP client):
 * - Every name is resolved through the one evdns_base (a lookup inside evhttp would block the loop)
 *   and the connection is made to the IP literal that passed the address check, so a DNS answer
 *   that changes between check and connect (rebinding) cannot reach a refused address.
 * - One request per evhttp_connection at a time.
 * - A connection that failed or was closed is never used again: evhttp would reconnect it
 *   internally, reusing the SSL object. It is moved to the graveyard and freed from the cleanup
 *   event, never from inside one of its own callbacks.
 * - Queues are pumped from a per-destination event, never from inside a caller or an evhttp
 *   callback, so a request that fails synchronously cannot recurse into the pump.
 * - A plain connection's request is written to the socket in the pass that sends it (conn_flush),
 *   not when the loop next polls the socket: one loop pass per delivery per connection, not three.
 */
#include "webhook/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

/* Answer bodies are of no interest: they are drained as they arrive (on_body_chunk), so this only
 * bounds how long a receiver may keep talking; the request timeout bounds it too. */
#define MAX_RESPONSE_BODY (64 * 1024 * 1024)
#define MAX_RESPONSE_HEADERS (16 * 1024)
#define DNS_CACHE_US (60 * 1000000LL)
#define DEFAULT_QUEUE_BYTES (64u << 20)
#define RESUME_BATCH 256 /* parked retries moved back per pump pass (each reads the store) */

enum { ADDR_NONE = 0, ADDR_OK, ADDR_REFUSED, ADDR_FAILED };

/* A pending evdns lookup. It outlives its destination when that is freed first (d = NULL then),
 * because evdns calls back later in any case. */
typedef struct lookup {
    dest_t *d;
} lookup_t;

struct dest {
    dest_t *next;
    webhook_t *wh;
    int https;
    char *host;
    uint16_t port;
    size_t refs;  /* subscriptions pointing here */
    size_t njobs; /* jobs queued here or in flight to here */
    job_t *qhead, *qtail;
    size_t nqueued;
    size_t qbytes;          /* sum of the queued jobs' qbytes */
    retry_t *phead, *ptail; /* parked retries, oldest first */
    size_t nparked;
    conn_t *conns; /* live connections (idle or busy) */
    size_t nconns;
    struct event *pump_ev;
    int addr_state;
    int64_t addr_expiry; /* monotonic microseconds */
    char ip[INET6_ADDRSTRLEN];
    char addr_err[128];
    lookup_t *lookup;
};

struct conn {
    conn_t *next;
    webhook_t *wh;
    dest_t *dest; /* NULL once dead */
    struct evhttp_connection *evcon;
    struct bufferevent *bev; /* TLS only (plain ones belong to evcon) */
    SSL *ssl;                /* TLS only, freed with bev */
    job_t *job;              /* the request on the wire, or NULL */
    struct event *timer;     /* the job's overall time limit */
    int dead;
    int err;        /* 1 + enum evhttp_request_error of the last failure, 0 if none reported */
    int nodelay_fd; /* the socket TCP_NODELAY was set on (a reconnect makes a new one), or -1 */
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval us_to_tv(int64_t us)
{
    if (us < 0) us = 0;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    return tv;
}

/* ---- queue ---- */

static void schedule_pump(dest_t *d)
{
    event_active(d->pump_ev, EV_TIMEOUT, 1);
}

static void schedule_cleanup(webhook_t *wh)
{
    event_active(wh->cleanup_ev, EV_TIMEOUT, 1);
}

static void enqueue(dest_t *d, job_t *job)
{
    job->qnext = NULL;
    job->qprev = d->qtail;
    if (d->qtail)
        d->qtail->qnext = job;
    else
        d->qhead = job;
    d->qtail = job;
    job->queued = 1;
    d->nqueued++;
    d->qbytes += job->qbytes;
    d->wh->queued++;
}

static void dequeue(dest_t *d, job_t *job)
{
    WH_CHECK(job->queued);
    if (job->qprev)
        job->qprev->qnext = job->qnext;
    else
        d->qhead = job->qnext;
    if (job->qnext)
        job->qnext->qprev = job->qprev;
    else
        d->qtail = job->qprev;
    job->qprev = job->qnext = NULL;
    job->queued = 0;
    d->nqueued--;
    d->qbytes -= job->qbytes;
    d->wh->queued--;
}

/* The job no longer needs its destination. */
static void leave_dest(webhook_t *wh, job_t *job)
{
    dest_t *d = job->dest;
    if (!d) return;
    job->dest = NULL;
    d->njobs--;
    if (d->refs == 0 && d->njobs == 0 && d->nparked == 0) {
        wh->cleanup_dests = 1;
        schedule_cleanup(wh);
    }
}

/* Ends the attempt of a job that is neither queued nor on a connection. */
static void finish(webhook_t *wh, job_t *job, int status, const char *err)
{
    leave_dest(wh, job);
    job_done(wh, job, status, err);
}

/* Fails every queued job of d. job_done may re-enter (a hook removing a subscription cancels jobs
 * of this queue), so always take the current head. */
static void fail_queued(dest_t *d, const char *err)
{
    job_t *job;
    while ((job = d->qhead) != NULL) {
        dequeue(d, job);
        finish(d->wh, job, 0, err);
    }
}

/* ---- connections ---- */

static void conn_free(conn_t *c)
{
    if (c->evcon) {
        /* evhttp_connection_free calls the close callback of a connected connection */
        evhttp_connection_set_closecb(c->evcon, NULL, NULL);
        evhttp_connection_free(c->evcon); /* frees bev, SSL and any pending request, no callbacks */
    }
    if (c->timer) event_free(c->timer);
    free(c);
}

/* Takes c out of service; it is freed from the cleanup event. Safe inside c's own callbacks. */
static void conn_kill(conn_t *c)
{
    if (c->dead) return;
    webhook_t *wh = c->wh;
    dest_t *d = c->dest;
    c->dead = 1;
    conn_t **pp = &d->conns;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    d->nconns--;
    c->dest = NULL;
    c->next = wh->graveyard;
    wh->graveyard = c;
    schedule_cleanup(wh);
    /* a slot is free: another connection may take the queue */
    if (d->qhead) schedule_pump(d);
}

static void unbind(conn_t *c, job_t *job)
{
    c->job = NULL;
    job->conn = NULL;
    event_del(c->timer);
    c->wh->stats.in_flight--;
}

static void describe_failure(const conn_t *c, char *buf, size_t n)
{
    if (c->ssl) {
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            snprintf(buf, n, "TLS: certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
            return;
        }
        unsigned long e = bufferevent_get_openssl_error(c->bev), last = 0;
        while (e) { /* the last one is the most specific */
            last = e;
            e = bufferevent_get_openssl_error(c->bev);
        }
        if (last) {
            const char *r = ERR_reason_error_string(last);
            snprintf(buf, n, "TLS: %s", r ? r : "handshake failed");
            return;
        }
    }
    switch (c->err - 1) {
    case EVREQ_HTTP_TIMEOUT:
        snprintf(buf, n, "timeout");
        break;
    case EVREQ_HTTP_EOF:
        snprintf(buf, n, "connection closed");
        break;
    case EVREQ_HTTP_INVALID_HEADER:
        snprintf(buf, n, "invalid response");
        break;
    case EVREQ_HTTP_DATA_TOO_LONG:
        snprintf(buf, n, "response too large");
        break;
    case EVREQ_HTTP_BUFFER_ERROR:
        snprintf(buf, n, "connection error");
        break;
    default:
        /* evhttp reports a failed connect with no error code; errno is all there is */
        snprintf(buf, n, errno == ECONNREFUSED ? "connection refused" : "connection failed");
        break;
    }
}

static void on_request_error(enum evhttp_request_error e, void *arg)
{
    conn_t *c = arg;
    c->err = (int)e + 1;
}

/* evhttp is done with the request: a response (req set, status > 0) or a failure (req NULL, or a
 * request with status 0 when the connect failed). The job may already have been taken off c
 * (cancelled or timed out): then there is nothing to do. */
static void on_request_done(struct evhttp_request *req, void *arg)
{
    conn_t *c = arg;
    webhook_t *wh = c->wh;
    job_t *job = c->job;
    if (!job) return;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    char err[160] = "";
    unbind(c, job);
    if (status <= 0) {
        status = 0;
        describe_failure(c, err, sizeof(err));
        ERR_clear_error();
        conn_kill(c);
    } else if (status >= 300 && status < 400) {
        snprintf(err, sizeof(err), "redirect not followed");
    } else if (status < 200) {
        snprintf(err, sizeof(err), "unexpected informational response");
        conn_kill(c);
    } else if (status == 429 || status == 503) {
        /* the receiver asks for a pause: delay the next attempt (webhook.h) */
        const char *ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
        int64_t d = 0;
        if (ra && retry_after_parse(ra, wh_now_us(wh), &d) == 0) job->retry_after_us = d;
    }
    if (!c->dead) schedule_pump(c->dest); /* idle again: take the next queued job */
    finish(wh, job, status, err);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    conn_kill(arg);
}

static void on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    job_t *job = c->job;
    if (!job) return;
    unbind(c, job);
    conn_kill(c); /* the request is dropped with the connection */
    finish(c->wh, job, 0, "timeout");
}

static conn_t *conn_new(dest_t *d)
{
    webhook_t *wh = d->wh;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->nodelay_fd = -1;
    c->wh = wh;
    c->timer = evtimer_new(wh->base, on_conn_timeout, c);
    if (!c->timer) goto fail;
    if (d->https) {
        /* a new SSL for every connection: a session object is never carried across reconnects */
        c->ssl = SSL_new(wh->ssl_ctx);
        if (!c->ssl) goto fail;
        unsigned char tmp[16];
        int literal =
            inet_pton(AF_INET, d->host, tmp) == 1 || inet_pton(AF_INET6, d->host, tmp) == 1;
        if (literal) {
            /* no SNI for address literals (RFC 6066); verify the address against IP SANs */
            if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), d->host) != 1) goto fail;
        } else {
            if (SSL_set_tlsext_host_name(c->ssl, d->host) != 1) goto fail;
            if (SSL_set1_host(c->ssl, d->host) != 1) goto fail;
        }
        c->bev = bufferevent_openssl_socket_new(wh->base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev) goto fail; /* c->ssl is still ours */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    }
    c->evcon = evhttp_connection_base_bufferevent_new(wh->base, NULL, c->bev, d->ip, d->port);
    if (!c->evcon) {
        if (c->bev) bufferevent_free(c->bev); /* frees the SSL too */
        c->bev = NULL;
        c->ssl = NULL;
        goto fail;
    }
    struct timeval tv = us_to_tv(wh->opts.timeout_us);
    evhttp_connection_set_timeout_tv(c->evcon, &tv);
    evhttp_connection_set_max_body_size(c->evcon, MAX_RESPONSE_BODY);
    evhttp_connection_set_max_headers_size(c->evcon, MAX_RESPONSE_HEADERS);
    evhttp_connection_set_retries(c->evcon, 0);
    evhttp_connection_set_closecb(c->evcon, on_conn_close, c);
    c->dest = d;
    c->next = d->conns;
    d->conns = c;
    d->nconns++;
    return c;
fail:
    if (c->bev)
        bufferevent_free(c->bev);
    else if (c->ssl)
        SSL_free(c->ssl);
    if (c->timer) event_free(c->timer);
    free(c);
    ERR_clear_error();
    return NULL;
}

static void on_body_free(const void *data, size_t len, void *arg)
{
    blob_unref(arg);
}

/* libevent drains the input after this callback: memory stays bounded whatever the body size. */
static void on_body_chunk(struct evhttp_request *req, void *arg)
{
    (void)req;
    (void)arg;
}

/* Writes the request evhttp has just queued on a connected plain connection now, not a loop pass
 * later. A socket bufferevent only writes when the loop next polls the socket writable, and the
 * response can only be read in the pass after that: two passes per request, and a pass that also
 * parses publishes and commit replies takes ~0.5 ms, so a connection carried one delivery every
 * ~3 passes. Written here, the response is read (and the next request sent) in the next pass.
 * Once the output is empty, the bufferevent's write callback (evhttp's: "request written, read
 * the response") is run as the bufferevent would run it. Anything left (EAGAIN, a large body) or
 * an error stays with the bufferevent, which writes or reports it as before. TLS connections are
 * left alone: the bytes must go through the SSL object. Not connected yet: evhttp queues the
 * request only once the connect completes, so the output is empty and nothing happens. The
 * bufferevent writes its output the same way (unfreeze the start, write, freeze again). */
static void conn_flush(conn_t *c)
{
    if (c->ssl) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
    if (!bev) return;
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    if (fd < 0 || evbuffer_get_length(out) == 0) return;
    /* the socket bufferevent keeps its output's start frozen except while it writes itself */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (n <= 0) return;
    if (evbuffer_get_length(out) == 0) bufferevent_trigger(bev, EV_WRITE, 0);
}

/* Puts job on the wire over c. Any failure ends the job (job_done) before returning. */
static void conn_send(conn_t *c, job_t *job)
{
    webhook_t *wh = c->wh;
    const sub_t *s = job->sub;
    struct evhttp_request *req = evhttp_request_new(on_request_done, c);
    if (!req) {
        finish(wh, job, 0, "out of memory");
        return;
    }
    evhttp_request_set_error_cb(req, on_request_error);
    evhttp_request_set_chunked_cb(req, on_body_chunk);
    /* the request in the subscription's content mode, built for this attempt */
    wire_t w;
    char werr[160] = "";
    int rc = wire_build(job, &w, werr, sizeof(werr));
    if (rc != 0) {
        wire_fini(&w);
        evhttp_request_free(req);
        if (rc == WIRE_EPERM) {
            job->permanent = 1;
            wh_log(wh, 2, "cannot encode sub=%" PRIu64 " seq=%" PRIu64 ": %s", s->h.k1, job->seq,
                   werr);
        }
        finish(wh, job, 0, rc == WIRE_EPERM ? werr : "out of memory");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char clen[24], *p = clen + sizeof(clen);
    size_t n = w.body->len;
    *--p = '\0';
    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    if (evhttp_add_header(h, "Host", s->ep.host_header) != 0 || wire_add_headers(&w, h) != 0 ||
        evhttp_add_header(h, "Content-Length", p) != 0 ||
        evhttp_add_header(h, "User-Agent", wh->user_agent) != 0 ||
        job_sign(wh, job, w.body->data, w.body->len, h) != 0) {
        wire_fini(&w);
        evhttp_request_free(req);
        finish(wh, job, 0, "out of memory");
        return;
    }
    if (w.body->len) {
        /* the body bytes are shared, not copied (structured: by every delivery of the event) */
        w.body->refs++;
        if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), w.body->data, w.body->len,
                                   on_body_free, w.body) != 0) {
            w.body->refs--;
            wire_fini(&w);
            evhttp_request_free(req);
            finish(wh, job, 0, "out of memory");
            return;
        }
    }
    wire_fini(&w);
    job->ep_gen = s->ep_gen;
    job->start_us = wh_now_us(wh);
    c->job = job;
    c->err = 0;
    job->conn = c;
    wh->stats.in_flight++;
    event_add(c->timer, wh->req_tv);
    /* A connect that fails at once calls on_request_done from inside this call; then c->job is
     * already NULL. A -1 return means libevent dropped the request without calling back. */
    if (evhttp_make_request(c->evcon, req, EVHTTP_REQ_POST, s->ep.path) != 0 && c->job == job) {
        unbind(c, job);
        conn_kill(c);
        finish(wh, job, 0, "request failed");
        return;
    }
    /* evhttp writes the headers and the body separately: without TCP_NODELAY the body waits for
     * the ACK of the headers, which a receiver may delay by 40 ms. The socket exists once the
     * request has started the connect. */
    if (c->job == job) {
        struct bufferevent *bev = evhttp_connection_get_bufferevent(c->evcon);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0 && fd != c->nodelay_fd) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->nodelay_fd = fd;
        }
        conn_flush(c);
    }
}

/* ---- name resolution ---- */

static void set_addr(dest_t *d, const struct sockaddr *sa)
{
    webhook_t *wh = d->wh;
    const void *a = sa->sa_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    evutil_inet_ntop(sa->sa_family, a, d->ip, sizeof(d->ip));
    d->addr_expiry = mono_us() + DNS_CACHE_US;
    if (!wh->opts.allow_private && addr_refused(sa)) {
        d->addr_state = ADDR_REFUSED;
        wh_log(wh, 2, "target address not allowed host=%s address=%s", d->host, d->ip);
    } else {
        d->addr_state = ADDR_OK;
    }
}

static void on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
    lookup_t *l = arg;
    dest_t *d = l->d;
    free(l);
    if (!d) {
        if (res) evutil_freeaddrinfo(res);
        return;
    }
    d->lookup = NULL;
    if (result != 0) {
        d->addr_state = ADDR_FAILED;
        snprintf(d->addr_err, sizeof(d->addr_err), "DNS: %s", evutil_gai_strerror(result));
    } else {
        /* take the first allowed address (IPv4 first: more often reachable); refuse if none */
        const struct evutil_addrinfo *pick = NULL, *first = NULL;
        for (int pass = 0; pass < 2 && !pick; pass++)
            for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family != (pass == 0 ? AF_INET : AF_INET6)) continue;
                if (!first) first = ai;
                if (d->wh->opts.allow_private || !addr_refused(ai->ai_addr)) {
                    pick = ai;
                    break;
                }
            }
        if (pick || first) {
            set_addr(d, (pick ? pick : first)->ai_addr);
        } else {
            d->addr_state = ADDR_FAILED;
            snprintf(d->addr_err, sizeof(d->addr_err), "DNS: no address");
        }
    }
    if (res) evutil_freeaddrinfo(res);
    schedule_pump(d);
}

/* Starts resolving d->host unless a lookup is under way. Address literals and "localhost" are
 * answered here, without DNS. */
static void start_lookup(dest_t *d)
{
    if (d->lookup) return;
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    size_t hl = strlen(d->host);
    if (inet_pton(AF_INET, d->host, &s4.sin_addr) == 1) {
        set_addr(d, (struct sockaddr *)&s4);
    } else if (inet_pton(AF_INET6, d->host, &s6.sin6_addr) == 1) {
        set_addr(d, (struct sockaddr *)&s6);
    } else if (strcmp(d->host, "localhost") == 0 ||
               (hl > 10 && strcmp(d->host + hl - 10, ".localhost") == 0)) {
        s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        set_addr(d, (struct sockaddr *)&s4);
    } else {
        lookup_t *l = calloc(1, sizeof(*l));
        if (!l) {
            d->addr_state = ADDR_FAILED;
            snprintf(d->addr_err, sizeof(d->addr_err), "DNS: out of memory");
        } else {
            struct evutil_addrinfo hints = {0};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_protocol = IPPROTO_TCP;
            l->d = d;
            d->lookup = l;
            /* may call on_dns before returning (then l is gone and the pump is scheduled) */
            evdns_getaddrinfo(d->wh->dns, d->host, NULL, &hints, on_dns, l);
            return;
        }
    }
    schedule_pump(d);
}

/* ---- the pump ---- */

/* 1 if d's queue is at a bound (a bounded submit is refused). Jobs about to take a free connection
 * slot are not "waiting", so the count bound leaves room for them. */
static int at_bound(const webhook_t *wh, const dest_t *d)
{
    if (d->qbytes >= wh->max_queued_bytes) return 1;
    if (!wh->opts.max_queued) return 0;
    size_t busy = 0;
    for (const conn_t *c = d->conns; c; c = c->next)
        busy += c->job != NULL;
    size_t slots = wh->opts.pool_size > busy ? wh->opts.pool_size - busy : 0;
    return d->nqueued >= wh->opts.max_queued + slots;
}

/* 1 if d's queue has drained below half its bounds: parked retries may come back. */
static int resume_room(const webhook_t *wh, const dest_t *d)
{
    return d->qbytes < wh->max_queued_bytes / 2 &&
           (!wh->opts.max_queued || d->nqueued * 2 < wh->opts.max_queued);
}

/* Moves parked retries back (retry_resume queues their attempts), oldest first, while the queue
 * has room; a bounded number per pass so that a long backlog cannot stall the loop. */
static void resume_parked(dest_t *d)
{
    webhook_t *wh = d->wh;
    for (int budget = RESUME_BATCH; d->phead && resume_room(wh, d); budget--) {
        if (budget == 0) {
            schedule_pump(d);
            return;
        }
        retry_t *r = d->phead;
        pool_unpark(wh, r);
        retry_resume(wh, r);
    }
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    dest_t *d = arg;
    webhook_t *wh = d->wh;
    if (d->phead) resume_parked(d);
    if (!d->qhead) return;
    if (!d->https && !wh->opts.allow_http) {
        fail_queued(d, "http endpoints are not allowed");
        return;
    }
    if ((d->addr_state == ADDR_OK || d->addr_state == ADDR_REFUSED) && mono_us() >= d->addr_expiry)
        d->addr_state = ADDR_NONE;
    switch (d->addr_state) {
    case ADDR_NONE:
        start_lookup(d); /* pumps again when it has an answer */
        return;
    case ADDR_FAILED: {
        char err[sizeof(d->addr_err)];
        memcpy(err, d->addr_err, sizeof(err));
        d->addr_state = ADDR_NONE; /* not cached: the next attempt asks again */
        wh_log(wh, 2, "resolving failed host=%s error=%s", d->host, err);
        fail_queued(d, err);
        return;
    }
    case ADDR_REFUSED:
        fail_queued(d, "target address not allowed");
        return;
    default:
        break;
    }
    while (d->qhead) {
        conn_t *c = d->conns;
        while (c && c->job)
            c = c->next;
        if (!c) {
            if (d->nconns >= wh->opts.pool_size) break;
            c = conn_new(d);
        }
        job_t *job = d->qhead;
        dequeue(d, job);
        if (!c)
            finish(wh, job, 0, "connection setup failed");
        else
            conn_send(c, job);
    }
}

/* ---- destinations ---- */

static void dest_free(webhook_t *wh, dest_t *d)
{
    WH_CHECK(d->njobs == 0 && d->refs == 0 && !d->qhead && !d->phead);
    dest_t **pp = &wh->dests;
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    while (d->conns)
        conn_kill(d->conns);
    if (d->lookup) d->lookup->d = NULL;
    event_free(d->pump_ev);
    free(d->host);
    free(d);
}

dest_t *pool_dest_get(webhook_t *wh, const endpoint_t *ep)
{
    for (dest_t *d = wh->dests; d; d = d->next)
        if (d->https == ep->https && d->port == ep->port && strcmp(d->host, ep->host) == 0) {
            d->refs++;
            return d;
        }
    dest_t *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->wh = wh;
    d->https = ep->https;
    d->port = ep->port;
    d->host = strdup(ep->host);
    d->pump_ev = event_new(wh->base, -1, 0, on_pump, d);
    if (!d->host || !d->pump_ev) {
        if (d->pump_ev) event_free(d->pump_ev);
        free(d->host);
        free(d);
        return NULL;
    }
    d->refs = 1;
    d->next = wh->dests;
    wh->dests = d;
    return d;
}

void pool_dest_release(webhook_t *wh, dest_t *d)
{
    WH_CHECK(d->refs > 0);
    if (--d->refs == 0 && d->njobs == 0 && d->nparked == 0) {
        wh->cleanup_dests = 1;
        schedule_cleanup(wh);
    }
    /* retries parked here by a subscription that has moved on still come back from here */
    if (d->phead) schedule_pump(d);
}

int pool_full(const webhook_t *wh, const sub_t *sub)
{
    /* while deliveries are parked, new ones queue up behind them: first come, first served */
    return sub->dest->phead != NULL || at_bound(wh, sub->dest);
}

void pool_park(webhook_t *wh, const sub_t *sub, retry_t *r)
{
    dest_t *d = sub->dest;
    WH_CHECK(!r->parked_at && r->heap_idx == NOT_IN_HEAP && !r->job);
    r->parked_at = d;
    r->pnext = NULL;
    r->pprev = d->ptail;
    if (d->ptail)
        d->ptail->pnext = r;
    else
        d->phead = r;
    d->ptail = r;
    if (d->nparked++ == 0)
        wh_log(wh, 2,
               "queue full host=%s port=%u: further deliveries wait in the retry table (not "
               "attempts)",
               d->host, (unsigned)d->port);
    if (resume_room(wh, d)) schedule_pump(d);
}

void pool_unpark(webhook_t *wh, retry_t *r)
{
    dest_t *d = r->parked_at;
    WH_CHECK(d);
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        d->phead = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    else
        d->ptail = r->pprev;
    r->pprev = r->pnext = NULL;
    r->parked_at = NULL;
    if (--d->nparked == 0) {
        wh_log(wh, 1, "queue has room again host=%s port=%u", d->host, (unsigned)d->port);
        if (d->refs == 0 && d->njobs == 0) {
            wh->cleanup_dests = 1;
            schedule_cleanup(wh);
        }
    }
}

int pool_submit(webhook_t *wh, job_t *job, int bounded)
{
    dest_t *d = job->sub->dest;
    WH_CHECK(!job->dest && !job->conn);
    if (bounded && pool_full(wh, job->sub)) return 1;
    job->dest = d;
    d->njobs++;
    enqueue(d, job);
    schedule_pump(d);
    return 0;
}

void pool_cancel(webhook_t *wh, job_t *job)
{
    if (job->conn) {
        conn_t *c = job->conn;
        unbind(c, job);
        conn_kill(c); /* abandons the request: freed with the connection, never called back */
    } else if (job->queued) {
        dequeue(job->dest, job);
    }
    leave_dest(wh, job);
}

/* Frees dead connections and unused destinations. Runs as its own event so that nothing is freed
 * inside a callback of the object being freed. */
static void on_cleanup(evutil_socket_t fd, short what, void *arg)
{
    webhook_t *wh = arg;
    if (wh->cleanup_dests) {
        wh->cleanup_dests = 0;
        dest_t *d = wh->dests;
        while (d) {
            dest_t *next = d->next;
            if (d->refs == 0 && d->njobs == 0 && d->nparked == 0) dest_free(wh, d);
            d = next;
        }
    }
    conn_t *c;
    while ((c = wh->graveyard) != NULL) {
        wh->graveyard = c->next;
        job_t *job = c->job;
        /* evhttp calls back right after closing a connection with a request on it, so a job is
         * normally off by now; should one not be, fail its attempt rather than lose it */
        if (job) {
            unbind(c, job);
            finish(wh, job, 0, "connection closed");
        }
        conn_free(c);
    }
}

/* ---- set-up ---- */

static void tls_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "%s%s%s", what, r ? ": " : "", r ? r : "");
    ERR_clear_error();
}

int pool_init(webhook_t *wh, char *err, size_t errlen)
{
    /* Without nameservers (no /etc/resolv.conf) evdns still serves address literals; and
     * "localhost" never reaches it. DISABLE_WHEN_INACTIVE: an idle resolver must not keep the
     * loop alive. */
    wh->dns = evdns_base_new(wh->base,
                             EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!wh->dns) {
        wh->dns = evdns_base_new(wh->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        wh_log(wh, 2, "no DNS configuration: only address literals and localhost resolve");
    }
    if (!wh->dns) {
        snprintf(err, errlen, "cannot create the DNS resolver");
        return WEBHOOK_ENOMEM;
    }
    if (evdns_base_count_nameservers(wh->dns) == 0)
        wh_log(wh, 2, "no DNS nameservers: only address literals and localhost resolve");
    struct timeval tv = us_to_tv(wh->opts.timeout_us);
    wh->req_tv = event_base_init_common_timeout(wh->base, &tv);
    if (!wh->req_tv) {
        snprintf(err, errlen, "out of memory");
        return WEBHOOK_ENOMEM;
    }
    wh->max_queued_bytes =
        wh->opts.max_queued_bytes ? wh->opts.max_queued_bytes : DEFAULT_QUEUE_BYTES;
    wh->cleanup_ev = event_new(wh->base, -1, 0, on_cleanup, wh);
    if (!wh->cleanup_ev) {
        snprintf(err, errlen, "out of memory");
        return WEBHOOK_ENOMEM;
    }
    wh->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!wh->ssl_ctx) {
        tls_err(err, errlen, "cannot create the TLS context");
        return WEBHOOK_ETLS;
    }
    SSL_CTX_set_min_proto_version(wh->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(wh->ssl_ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(wh->ssl_ctx) != 1) {
        /* no system store is not fatal: a CA file may be all that is wanted */
        wh_log(wh, 2, "cannot load the system CA certificates");
        ERR_clear_error();
    }
    if (wh->ca_file && SSL_CTX_load_verify_locations(wh->ssl_ctx, wh->ca_file, NULL) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "cannot load the CA file %s", wh->ca_file);
        tls_err(err, errlen, what);
        return WEBHOOK_ETLS;
    }
    return WEBHOOK_OK;
}

void pool_fini(webhook_t *wh)
{
    int lookups = 0;
    while (wh->dests) {
        dest_t *d = wh->dests;
        wh->dests = d->next;
        while (d->conns) {
            conn_t *c = d->conns;
            d->conns = c->next;
            conn_free(c);
        }
        if (d->lookup) {
            d->lookup->d = NULL;
            lookups++;
        }
        event_free(d->pump_ev);
        free(d->host);
        free(d);
    }
    while (wh->graveyard) {
        conn_t *c = wh->graveyard;
        wh->graveyard = c->next;
        conn_free(c);
    }
    if (wh->cleanup_ev) event_free(wh->cleanup_ev);
    wh->cleanup_ev = NULL;
    /* pending lookups are failed; their callbacks find no destination and only free themselves */
    if (wh->dns) evdns_base_free(wh->dns, 1);
    wh->dns = NULL;
    /* libevent runs the failed lookups' callbacks (which free their state) deferred, on the loop's
     * next pass; at shutdown the loop has ended, so give it that one pass. */
    if (lookups) event_base_loop(wh->base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    if (wh->ssl_ctx) SSL_CTX_free(wh->ssl_ctx);
    wh->ssl_ctx = NULL;
}
