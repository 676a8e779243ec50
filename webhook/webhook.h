/* webhook: outbound delivery of events to subscription endpoints (api.md §4 handshake, §5 delivery).
 *
 * Runs on the server's one event loop: DNS through one evdns_base, per destination (scheme, host,
 * port) a small bounded pool of keep-alive evhttp connections, TLS with peer and hostname
 * verification and SNI, retry timers on the loop. It never blocks and never prints (it logs through
 * the function it is given). Durable delivery state (the dispatch cursor, retries, dead letters) is
 * written through store/ by adding operations to the batch of the server's next group commit.
 *
 * Crash safety (how "an event answered 200 reaches every subscription" holds across kill -9): the
 * server hands every committed event to webhook_dispatch in sequence order. The dispatch cursor is
 * the highest sequence S such that every delivery of every event <= S has either succeeded or been
 * recorded as a retry or a dead letter; it is written into the commit batch together with those
 * records, so it is never durable before them. At start the server re-dispatches every event after
 * the durable cursor and webhook_start reloads the pending retries. A crash can repeat a delivery,
 * never lose one. */
#ifndef HENDELSE_WEBHOOK_WEBHOOK_H
#define HENDELSE_WEBHOOK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct event_base;

typedef struct webhook webhook_t;

enum {
    WEBHOOK_OK = 0,
    WEBHOOK_EINVAL = -1, /* a bad argument (e.g. an endpoint that is not an http(s) URL) */
    WEBHOOK_ENOMEM = -2,
    WEBHOOK_ETLS = -3,   /* the TLS context or the CA file could not be set up */
    WEBHOOK_ESTORE = -4, /* reading the store failed */
};

typedef struct {
    int allow_http;       /* development profile: http:// endpoints are delivered to */
    int allow_private;    /* development profile: targets that resolve to loopback, private,
                             link-local or metadata addresses are allowed */
    const char *ca_file;  /* extra trusted CA certificates (PEM), besides the system store; NULL */
    int64_t timeout_us;   /* one request's limit (connect + send + response); 0 = 45 s */
    const int64_t *retry_us; /* delays before the 2nd, 3rd, ... attempt; NULL = Altinn's:
                                10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h (12 attempts in all) */
    size_t n_retry;
    const int64_t *validation_us; /* handshake retry delays; NULL = 1s,5s,10s,30s,60s,120s,120s,120s */
    size_t n_validation;
    size_t pool_size;  /* keep-alive connections per destination; 0 = 4 */
    size_t max_queued; /* deliveries queued in memory per destination before further ones are
                          recorded as retries instead; 0 = 10000 */
    const char *user_agent; /* NULL = "hendelse" */

    /* Hooks into the server. */
    void *ctx;
    /* Returns the batch of the server's next commit (and makes sure that commit will run soon). */
    store_batch_t *(*open_batch)(void *ctx);
    /* A handshake of sub_id got a 2xx: the server marks the subscription validated. */
    void (*on_validated)(void *ctx, uint64_t sub_id);
    /* Logging, same signature as the server's srv_log (level 0 debug .. 3 error). */
    void (*log)(int level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Wall clock in microseconds since the epoch (tests may pass their own). */
    int64_t (*now_us)(void);
} webhook_opts_t;

/* Creates the delivery engine on base. The options are copied (arrays too). st is borrowed and must
 * outlive the engine. On failure returns NULL and writes a one-line reason into err. */
webhook_t *webhook_new(struct event_base *base, store_t *st, const webhook_opts_t *opts, char *err,
                       size_t errlen);

/* Cancels everything in flight (nothing is written) and frees. NULL ok. */
void webhook_free(webhook_t *wh);

/* Sets (or updates) the endpoint of subscription sub_id, and its Standard Webhooks signing secret
 * (the decoded key bytes; NULL when deliveries are unsigned). Copies everything. When a secret is
 * set, every delivery and handshake carries webhook-id (the same for every attempt of one delivery),
 * webhook-timestamp (Unix seconds of the attempt) and webhook-signature ("v1," + base64 of
 * HMAC-SHA256(secret, id "." timestamp "." body)). Returns 0, WEBHOOK_EINVAL or WEBHOOK_ENOMEM. */
int webhook_sub_set(webhook_t *wh, uint64_t sub_id, const char *endpoint,
                    const unsigned char *secret, size_t secret_len);

/* Forgets subscription sub_id: cancels its handshake, its queued and in-flight deliveries and its
 * retry timers. Its in-flight deliveries count as done for the cursor. (Its durable records are
 * deleted by the server with store_batch_del_sub.) */
void webhook_sub_remove(webhook_t *wh, uint64_t sub_id);

/* Starts, or restarts from the first attempt, the validation handshake of sub_id (which must have
 * been set): POST body[0..len) with Content-Type application/json; charset=utf-8; any 2xx calls
 * opts.on_validated; otherwise it retries on the validation schedule, then gives up (logged). */
int webhook_handshake(webhook_t *wh, uint64_t sub_id, const char *body, size_t len);

/* Loads the durable cursor and every pending retry from the store and arms the retry timers (retries
 * already due run at once). Sets *cursor_out to the cursor: the server then dispatches every stored
 * event after it. Call once, after the subscriptions are set and before the first dispatch. */
int webhook_start(webhook_t *wh, uint64_t *cursor_out);

/* Dispatches one stored event with sequence seq to the subscriptions sub_ids[0..n) (already matched,
 * validated and authorized by the server). Must be called for every stored event in increasing
 * sequence order, also with n == 0, so that the cursor can move. json[0..len) is copied once and
 * shared by the event's deliveries. Returns 0 or WEBHOOK_ENOMEM. */
int webhook_dispatch(webhook_t *wh, uint64_t seq, const char *json, size_t len,
                     const uint64_t *sub_ids, size_t n);

/* Requeues the dead letter (sub_id, seq): deletes it and records a retry due now with the attempt
 * count reset. Returns 0, or WEBHOOK_EINVAL if sub_id is not set. */
int webhook_redeliver(webhook_t *wh, uint64_t sub_id, uint64_t seq);

typedef struct {
    uint64_t delivered;      /* 2xx answers to deliveries */
    uint64_t failed;         /* failed attempts (each retry counts) */
    uint64_t dead_lettered;
    uint64_t retries_pending; /* now */
    uint64_t in_flight;       /* requests on the wire now */
    uint64_t queued;          /* deliveries waiting for a connection now */
    uint64_t cursor;          /* the dispatch cursor as computed (may be ahead of the durable one) */
} webhook_stats_t;

void webhook_get_stats(const webhook_t *wh, webhook_stats_t *out);

const char *webhook_strerror(int code);

/* 1 if host (as written in a URL: a name, an IPv4 literal or a bracketed IPv6 literal) is an IP
 * literal that the production profile refuses as a target (loopback, private, link-local, metadata,
 * ...), else 0. Names are judged when they are resolved, at connect time. */
int webhook_literal_host_refused(const char *host);

#endif
