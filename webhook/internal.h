/* webhook/internal.h: what webhook.c (deliveries, retries, cursor), handshake.c (handshakes,
 * signatures), pool.c (destinations, connections, TLS, DNS), addr.c (target address check),
 * state.c (tables, retry heap, cursor ring), modes.c (content modes) and retry_after.c (the
 * Retry-After header) share. Not installed, not used outside webhook/.
 *
 * Ownership in one paragraph: the engine owns subscriptions (sub_t), destinations (dest_t) and
 * connections (conn_t). A job_t is one attempt of one delivery or handshake; it belongs to its
 * subscription (listed on sub->jobs) and, while it exists, sits either in its destination's queue
 * or on one connection (never both). Bodies (blob_t) are reference counted because one event is
 * shared by all its deliveries and by the evbuffers of requests still on the wire. */
#ifndef HENDELSE_WEBHOOK_INTERNAL_H
#define HENDELSE_WEBHOOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "webhook/webhook.h"

struct event;
struct event_base;
struct evdns_base;
struct evkeyvalq;
struct sockaddr;

/* An always-on invariant check (assert() vanishes under NDEBUG). */
#define WH_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) wh_check_failed(#cond, __FILE__, __LINE__);                                   \
    } while (0)
__attribute__((noreturn)) void wh_check_failed(const char *what, const char *file, int line);

/* ---- small shared pieces (state.c) ---- */

typedef struct blob {
    size_t refs;
    size_t len;
    char data[];
} blob_t;

/* refs = 1, data[len] = 0; data NULL: the bytes are left for the caller to fill; NULL on ENOMEM */
blob_t *blob_new(const char *data, size_t len);
void blob_unref(blob_t *b); /* NULL ok */

/* An intrusive hash table keyed by two 64-bit integers (subscriptions use k2 = 0). */
typedef struct hnode {
    struct hnode *next;
    uint64_t k1, k2;
} hnode_t;

typedef struct {
    hnode_t **b;
    size_t nb; /* buckets, a power of two (0 before the first insert) */
    size_t n;
} htab_t;

hnode_t *htab_get(const htab_t *t, uint64_t k1, uint64_t k2);
int htab_put(htab_t *t, hnode_t *n); /* 0 or -1 (ENOMEM); the key must not be present */
void htab_del(htab_t *t, hnode_t *n);
void htab_fini(htab_t *t); /* frees the buckets, not the nodes */

/* A pending retry of delivery (sub = h.k1, seq = h.k2). Durable twin: the store's retry record. */
typedef struct retry {
    hnode_t h;
    int64_t due_us;
    uint32_t attempts; /* attempts made so far */
    size_t heap_idx;   /* position in the heap, or NOT_IN_HEAP while its attempt runs or parked */
    struct job *job;   /* the attempt running for it, or NULL */
    /* Parked: waiting for room in a destination's full queue (pool_park), neither in the heap
     * nor running. */
    struct dest *parked_at; /* NULL when not parked */
    struct retry *pprev, *pnext;
} retry_t;

#define NOT_IN_HEAP SIZE_MAX

/* A binary min-heap of retries by due time. */
typedef struct {
    retry_t **a;
    size_t n, cap;
} rheap_t;

int rheap_push(rheap_t *h, retry_t *r); /* 0 or -1 (ENOMEM) */
retry_t *rheap_top(const rheap_t *h);
void rheap_remove(rheap_t *h, retry_t *r); /* r must be in the heap */
void rheap_fini(rheap_t *h);

/* The cursor ring: dispatched events in sequence order with their count of first attempts not yet
 * done (succeeded or durably recorded). */
typedef struct {
    uint64_t seq;
    size_t remaining;
} ring_ent_t;

typedef struct {
    ring_ent_t *a;
    size_t cap, head, n; /* cap is a power of two */
} ring_t;

int ring_reserve(ring_t *r);                               /* room for one push: 0 or -1 (ENOMEM) */
void ring_push(ring_t *r, uint64_t seq, size_t remaining); /* after ring_reserve */
ring_ent_t *ring_find(ring_t *r, uint64_t seq);            /* NULL if not in the ring */
ring_ent_t *ring_front(ring_t *r);                         /* NULL if empty */
void ring_pop(ring_t *r);
void ring_fini(ring_t *r);

/* ---- the engine ---- */

/* A parsed endpoint URL. The three strings are one allocation (host is its start): 100,000
 * subscriptions cost one small block each, not three. */
typedef struct {
    char *host;        /* lower case, IPv6 without brackets */
    char *host_header; /* host[:port] as in the URL (IPv6 in brackets) */
    char *path;        /* path and query, at least "/" */
    int https;
    uint16_t port;
} endpoint_t;

int endpoint_parse(const char *url, endpoint_t *out); /* 0, WEBHOOK_EINVAL or WEBHOOK_ENOMEM */
void endpoint_fini(endpoint_t *ep);
/* 1 if a and b send the same requests to the same place (scheme, host, port, Host, path). */
int endpoint_same(const endpoint_t *a, const endpoint_t *b);

typedef struct dest dest_t;
typedef struct conn conn_t;
typedef struct sub sub_t;

enum { JOB_DELIVERY = 0, JOB_HANDSHAKE = 1 };

typedef struct job {
    struct job *qprev, *qnext; /* in dest->queue */
    struct job *sprev, *snext; /* in sub->jobs */
    sub_t *sub;
    dest_t *dest; /* the destination it is queued at or in flight to */
    conn_t *conn; /* in flight on this connection, or NULL */
    int kind;
    int queued;
    uint64_t seq; /* deliveries: the event; handshakes: the handshake number */
    blob_t *body;
    uint32_t attempts; /* attempts made before this one */
    int tracked;       /* a first attempt counted in the cursor ring */
    retry_t *retry;    /* the retry entry this attempt runs for, or NULL */
    /* Set by pool.c before the attempt ends: */
    int64_t retry_after_us; /* the receiver's Retry-After (429/503) as a delay, or 0 */
    int64_t start_us;       /* when this attempt was queued, then when it was sent */
    int permanent;          /* the event cannot be sent in the subscription's mode: no retries */
    uint32_t ep_gen;        /* sub->ep_gen when the request was sent */
    int64_t stored_us;      /* deliveries: the event's stored time, 0 if unknown */
    size_t qbytes;          /* what it counts against its queue's byte bound (set before submit) */
} job_t;

/* The validation handshake of a subscription (not persisted). It exists from webhook_handshake
 * until the handshake succeeds, is given up or cancelled: validated subscriptions, the many, carry
 * no handshake state and no timer. */
typedef struct hs {
    webhook_t *wh; /* for the retry timer's callback */
    blob_t *body;  /* NULL when no attempt is pending */
    uint64_t n;    /* which handshake (for webhook-id) */
    size_t failed; /* failed attempts of this handshake so far */
    struct event *timer;
    job_t *job;
} hs_t;

/* Field order keeps it at 104 bytes (a 112-byte malloc chunk): one per subscription. */
struct sub {
    hnode_t h; /* k1 = id */
    endpoint_t ep;
    unsigned char *secret; /* NULL: unsigned */
    uint32_t secret_len;
    webhook_mode_t mode;
    uint32_t ep_gen; /* bumped when the endpoint changes (a 410 from an old one is no signal) */
    dest_t *dest;
    job_t *jobs; /* every job of this subscription (queued or in flight) */
    hs_t *hs;    /* the pending handshake, or NULL */
};

struct webhook {
    struct event_base *base;
    store_t *st;
    webhook_opts_t opts; /* arrays and strings point at the copies below */
    int64_t *retry_us;
    int64_t *validation_us;
    char *ca_file;
    char *user_agent;

    htab_t subs;
    htab_t retries;
    rheap_t heap;
    struct event *retry_timer;
    ring_t ring;
    uint64_t last_seq;       /* the last dispatched sequence number */
    uint64_t cursor;         /* as computed */
    uint64_t cursor_written; /* the last value given to store_batch_set_cursor */
    uint64_t hs_counter;
    int freeing;

    /* pool.c */
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    dest_t *dests;
    conn_t *graveyard; /* dead connections waiting for the cleanup event */
    struct event *cleanup_ev;
    int cleanup_dests; /* a destination may have become unused */
    /* the request time limit as a libevent common timeout (O(1) timer adds) */
    const struct timeval *req_tv;
    size_t max_queued_bytes;

    webhook_stats_t stats; /* retries_pending, queued and cursor are filled in on read */
    uint64_t queued;
};

void wh_log(const webhook_t *wh, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t wh_now_us(const webhook_t *wh);

/* addr.c: 1 if a connection to sa is refused unless opts.allow_private. */
int addr_refused(const struct sockaddr *sa);

/* pool.c */
int pool_init(webhook_t *wh, char *err, size_t errlen);
void pool_fini(webhook_t *wh); /* frees every destination and connection; no callbacks */
/* The destination for ep (found or created), with one more reference; NULL on ENOMEM. */
dest_t *pool_dest_get(webhook_t *wh, const endpoint_t *ep);
void pool_dest_release(webhook_t *wh, dest_t *d);
/* Queues job at its subscription's destination. With bounded set and that queue full (a bound of
 * webhook_opts_t reached, or deliveries parked there) returns 1 and leaves the job alone; else 0.
 * The attempt starts from the loop later, never inside this call. */
int pool_submit(webhook_t *wh, job_t *job, int bounded);
/* 1 if a bounded pool_submit to sub's destination would be refused now. */
int pool_full(const webhook_t *wh, const sub_t *sub);
/* Parks retry r (not in the heap, no attempt running) at sub's destination: once that queue has
 * room, the pump calls retry_resume(r), oldest first. */
void pool_park(webhook_t *wh, const sub_t *sub, retry_t *r);
void pool_unpark(webhook_t *wh, retry_t *r); /* r must be parked */
/* Takes job out of its queue or off its connection (the request is abandoned and the connection
 * closed); no callback follows. */
void pool_cancel(webhook_t *wh, job_t *job);

/* webhook.c, called by pool.c when an attempt ends (job is off its queue and connection).
 * status: the HTTP status, or 0; err: a reason ("" for a plain HTTP status). */
void job_done(webhook_t *wh, job_t *job, int status, const char *err);
sub_t *sub_find(const webhook_t *wh, uint64_t id);
/* Called by the pump with a retry it has just unparked: its attempt is queued (unbounded). */
void retry_resume(webhook_t *wh, retry_t *r);
/* A job of sub, listed on sub->jobs, holding a reference to body; NULL on ENOMEM. */
job_t *job_new(webhook_t *wh, sub_t *sub, int kind, uint64_t seq, blob_t *body, uint32_t attempts);
void job_free(job_t *job); /* the job must be off its queue and connection */

/* handshake.c */
/* Adds the Standard Webhooks headers, signing body[0..len) (the bytes sent), if the job's
 * subscription has a secret. 0 or -1 (ENOMEM). */
int job_sign(webhook_t *wh, const job_t *job, const char *body, size_t len, struct evkeyvalq *hdrs);
void hs_cancel(webhook_t *wh, sub_t *sub); /* stops sub's handshake, if any, and frees its state */
void handshake_done(webhook_t *wh, job_t *job, int status, const char *err);

/* modes.c: the request of one attempt in its subscription's content mode. */
typedef struct {
    blob_t *body;      /* the bytes sent (one reference) */
    const char *ctype; /* the Content-Type, or NULL for none; static or into own */
    char *own;
    char *hdrs; /* further headers: nhdrs pairs "name\0value\0" */
    size_t nhdrs;
} wire_t;

enum { WIRE_EPERM = 1 }; /* the event cannot be sent in this mode (a reason is given) */

/* Builds the request of job (handshakes always structured). Returns 0, WIRE_EPERM (err says why)
 * or WEBHOOK_ENOMEM; *w needs wire_fini in every case. */
int wire_build(const job_t *job, wire_t *w, char *err, size_t errlen);
void wire_fini(wire_t *w);
/* Adds w's Content-Type and further headers to hdrs: 0 or -1 (ENOMEM). */
int wire_add_headers(const wire_t *w, struct evkeyvalq *hdrs);

/* retry_after.c: the delay a Retry-After value (delta-seconds or an HTTP-date, RFC 9110 §10.2.3)
 * asks for, at wall clock now_us; a date in the past is 0. 0, or -1 if v is not one. */
int retry_after_parse(const char *v, int64_t now_us, int64_t *delay_us);

#endif
