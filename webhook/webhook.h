/* webhook: outbound delivery of events to subscription endpoints (api.md §4 handshake, §5
 * delivery).
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
    int allow_http;      /* development profile: http:// endpoints are delivered to */
    int allow_private;   /* development profile: targets that resolve to loopback, private,
                            link-local or metadata addresses are allowed */
    const char *ca_file; /* extra trusted CA certificates (PEM), besides the system store; NULL */
    int64_t timeout_us;  /* one request's limit (connect + send + response); 0 = 45 s */
    const int64_t *retry_us; /* delays before the 2nd, 3rd, ... attempt; NULL = Altinn's:
                                10s,30s,1m,5m,10m,30m,1h,3h,6h,12h,12h (12 attempts in all) */
    size_t n_retry;
    const int64_t
        *validation_us; /* handshake retry delays; NULL = 1s,5s,10s,30s,60s,120s,120s,120s */
    size_t n_validation;
    size_t pool_size; /* keep-alive connections per destination; 0 = 4 */
    /* Back-pressure. Deliveries wait in memory, in a per-destination FIFO, for a free connection;
     * waiting is not an attempt. The queue is bounded in bytes (an event's body shared by several
     * queued deliveries is counted once across them) and, optionally, in deliveries. Past either
     * bound further deliveries to that destination wait durably instead: each is recorded in the
     * retry table (attempts unchanged, due at once, last_error "queue full") and parked, and the
     * parked ones move back into the queue, oldest first, when it has drained below half its
     * bounds. A parked delivery is still a retry record (webhook_stats_t.retries_pending) but
     * never a failed attempt and never delayed by the retry schedule. */
    size_t max_queued;       /* deliveries; 0 = no bound but the bytes */
    size_t max_queued_bytes; /* 0 = 64 MiB */
    const char *user_agent;  /* NULL = "hendelse" */
    /* The longest delay a receiver's Retry-After may impose on the next attempt; 0 = 1 h. */
    int64_t max_retry_after_us;

    /* Hooks into the server. */
    void *ctx;
    /* Returns the batch of the server's next commit (and makes sure that commit will run soon). */
    store_batch_t *(*open_batch)(void *ctx);
    /* A handshake of sub_id got a 2xx: the server marks the subscription validated. */
    void (*on_validated)(void *ctx, uint64_t sub_id);
    /* A delivery of sub_id was answered 410 Gone (by the endpoint the subscription still has):
     * the engine has already dropped that delivery (no retry, no dead letter; it counts as done
     * for the cursor), cancelled every queued and in-flight delivery and the handshake of sub_id,
     * and added the deletion of all its retry records to the commit batch. The server then
     * disables the subscription (stops matching it), recording that in the same commit batch
     * (open_batch) so that it is durable together with the cursor. The engine keeps the
     * subscription set: the server may leave it so, or call webhook_sub_remove. Inside this hook
     * every webhook_ function except webhook_free may be called (the engine calls it last, with
     * its state consistent). Called once per 410; a later 410 from an attempt that was already
     * answered can only come from a delivery started after the hook (e.g. a redelivery). NULL: a
     * 410 is an ordinary failed attempt (retried on the schedule). A 410 to a handshake is always
     * just a failed handshake attempt. */
    void (*on_gone)(void *ctx, uint64_t sub_id);
    /* Every delivery attempt that ends (handshakes and attempts cancelled with their subscription
     * excepted): attempt is 1 for the first, status the HTTP status or 0 when there was none,
     * error "" for a 2xx, duration_us from the start of the attempt (when it was sent; for one
     * that never got on the wire, when it was queued) to its end. Called before the engine
     * records the outcome; it may add to the commit batch (open_batch) but must not call back
     * into the engine. NULL: not called. */
    void (*on_attempt)(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt, int status,
                       const char *error, int64_t duration_us);
    /* Logging, same signature as the server's srv_log (level 0 debug .. 3 error). Only lines at
     * log_level or above are formatted and passed on (the hot path logs at debug). */
    void (*log)(int level, const char *module, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Wall clock in microseconds since the epoch (tests may pass their own). */
    int64_t (*now_us)(void);
    int log_level; /* 0 = everything */
    /* A delivery of event seq to sub_id was answered 2xx on attempt number attempt (1 = the
     * first). stored_us: the event's stored time (as given to webhook_dispatch_at, or read from
     * the store for a retry), 0 when unknown. For metrics; must not call back into the engine.
     * NULL: not called. */
    void (*on_delivered)(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt,
                         int64_t stored_us);
} webhook_opts_t;

/* Creates the delivery engine on base. The options are copied (arrays too). st is borrowed and must
 * outlive the engine. On failure returns NULL and writes a one-line reason into err. */
webhook_t *webhook_new(struct event_base *base, store_t *st, const webhook_opts_t *opts, char *err,
                       size_t errlen);

/* Cancels everything in flight (nothing is written) and frees. NULL ok. */
void webhook_free(webhook_t *wh);

/* Sets (or updates) the endpoint of subscription sub_id, and its Standard Webhooks signing secret
 * (the decoded key bytes; NULL when deliveries are unsigned). Copies everything. When a secret is
 * set, every delivery and handshake carries webhook-id (the same for every attempt of one
 * delivery), webhook-timestamp (Unix seconds of the attempt) and webhook-signature ("v1," + base64
 * of HMAC-SHA256(secret, id "." timestamp "." body)). Returns 0, WEBHOOK_EINVAL or WEBHOOK_ENOMEM.
 */
int webhook_sub_set(webhook_t *wh, uint64_t sub_id, const char *endpoint,
                    const unsigned char *secret, size_t secret_len);

/* How a subscription's deliveries are put on the wire (api.md: "CloudEvents beyond Altinn"). */
typedef enum {
    /* Altinn's: body = the stored event JSON, Content-Type: application/json; charset=utf-8. */
    WEBHOOK_MODE_STRUCTURED = 0,
    /* CloudEvents HTTP binding, structured mode: the same body, Content-Type:
     * application/cloudevents+json; charset=utf-8. */
    WEBHOOK_MODE_CLOUDEVENTS,
    /* CloudEvents HTTP binding, binary mode: every attribute except data, data_base64 and
     * datacontenttype as a "ce-<name>" header (null ones left out; numbers and booleans as their
     * JSON text), its value percent-encoded as the binding requires (space, '"', '%' and every
     * byte outside 0x21..0x7E as %XX, upper case). Content-Type = datacontenttype; without one it
     * is application/json when there is "data", application/octet-stream when there is
     * "data_base64", and left out when there is neither. Body: for "data" with a JSON media type
     * (application/json, text/json, a +json suffix, or none) the compact JSON text of data;
     * otherwise a JSON string's bytes (other values: their compact JSON text); for "data_base64"
     * the decoded bytes; nothing without data. The event is parsed once per attempt. An event
     * that cannot be put in binary mode (an object- or array-valued attribute, an attribute name
     * that is not an HTTP token, a datacontenttype with control characters, bad base64, both data
     * and data_base64) is dead-lettered at once with last_error saying why (it can be redelivered
     * after changing the mode). */
    WEBHOOK_MODE_BINARY,
} webhook_mode_t;

typedef struct {
    const char *endpoint;        /* http(s) URL */
    const unsigned char *secret; /* Standard Webhooks key bytes; NULL: unsigned */
    size_t secret_len;
    webhook_mode_t mode;
} webhook_sub_opts_t;

/* Sets (or updates) subscription sub_id as webhook_sub_set does, with a content mode. In every
 * mode the signature covers the exact body bytes sent. Handshakes are always sent as
 * WEBHOOK_MODE_STRUCTURED (application/json) whatever the mode. A new mode or secret applies from
 * the next attempt; requests on the wire finish as they were sent. webhook_sub_set(wh, id, e, s,
 * n) is webhook_sub_config with {e, s, n, WEBHOOK_MODE_STRUCTURED}. Returns 0, WEBHOOK_EINVAL (also
 * for an unknown mode) or WEBHOOK_ENOMEM. */
int webhook_sub_config(webhook_t *wh, uint64_t sub_id, const webhook_sub_opts_t *o);

/* Receiver signals, for every mode:
 * - 429 or 503 with Retry-After (delta-seconds, or an HTTP-date: IMF-fixdate, RFC 850 or asctime
 *   form): the attempt fails as any other (same attempt numbering, last_status 429/503), and the
 *   next one is due no earlier than max(the schedule's delay, Retry-After capped at
 *   opts.max_retry_after_us). Handshake retries honour it the same way. An unparsable value is
 *   ignored.
 * - 410 Gone to a delivery: see opts.on_gone. */

/* Forgets subscription sub_id: cancels its handshake, its queued and in-flight deliveries and its
 * retry timers. Its in-flight deliveries count as done for the cursor. (Its durable records are
 * deleted by the server with store_batch_del_sub.) */
void webhook_sub_remove(webhook_t *wh, uint64_t sub_id);

/* Starts, or restarts from the first attempt, the validation handshake of sub_id (which must have
 * been set): POST body[0..len) with Content-Type application/json; charset=utf-8; any 2xx calls
 * opts.on_validated; otherwise it retries on the validation schedule, then gives up (logged). */
int webhook_handshake(webhook_t *wh, uint64_t sub_id, const char *body, size_t len);

/* Loads the durable cursor and every pending retry from the store and arms the retry timers
 * (retries already due run at once). Sets *cursor_out to the cursor: the server then dispatches
 * every stored event after it. Call once, after the subscriptions are set and before the first
 * dispatch. */
int webhook_start(webhook_t *wh, uint64_t *cursor_out);

/* Dispatches one stored event with sequence seq to the subscriptions sub_ids[0..n) (already
 * matched, validated and authorized by the server). Must be called for every stored event in
 * increasing sequence order, also with n == 0, so that the cursor can move. json[0..len) is copied
 * once and shared by the event's deliveries. Returns 0 or WEBHOOK_ENOMEM. */
int webhook_dispatch(webhook_t *wh, uint64_t seq, const char *json, size_t len,
                     const uint64_t *sub_ids, size_t n);

/* As webhook_dispatch, with the event's stored time (wall clock, microseconds since the epoch),
 * which opts.on_delivered reports with each successful delivery of it. */
int webhook_dispatch_at(webhook_t *wh, uint64_t seq, int64_t stored_us, const char *json,
                        size_t len, const uint64_t *sub_ids, size_t n);

/* Requeues the dead letter (sub_id, seq): deletes it and records a retry due now with the attempt
 * count reset. Returns 0, or WEBHOOK_EINVAL if sub_id is not set. */
int webhook_redeliver(webhook_t *wh, uint64_t sub_id, uint64_t seq);

typedef struct {
    uint64_t delivered; /* 2xx answers to deliveries */
    uint64_t failed;    /* failed attempts (each retry counts) */
    uint64_t dead_lettered;
    uint64_t retries_pending; /* now */
    uint64_t in_flight;       /* requests on the wire now */
    uint64_t queued;          /* deliveries waiting for a connection now */
    uint64_t cursor; /* the dispatch cursor as computed (may be ahead of the durable one) */
} webhook_stats_t;

void webhook_get_stats(const webhook_t *wh, webhook_stats_t *out);

const char *webhook_strerror(int code);

/* 1 if host (as written in a URL: a name, an IPv4 literal or a bracketed IPv6 literal) is an IP
 * literal that the production profile refuses as a target (loopback, private, link-local, metadata,
 * ...), else 0. Names are judged when they are resolved, at connect time. */
int webhook_literal_host_refused(const char *host);

#endif
