/* server/metrics: GET /metrics, the server's counters in the Prometheus text format 0.0.4.
 *
 * Everything here is kept and read on the loop thread only: the hot paths do plain increments (or
 * one histogram observation) on srv_t's metrics, and the committer thread never touches them (it
 * times its commit into the job, and the loop records that when the job is done). Gauges (store
 * size, subscriptions by state, open connections, pending retries) are read when scraped. The
 * endpoint needs no authentication, like /health: it tells counts, never event or subscription
 * contents. */
#ifndef HENDELSE_SERVER_METRICS_H
#define HENDELSE_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/promtext.h"

struct srv;

/* Outcomes of publishes: the first four are store_res_t's values, per event; REJECTED counts
 * publish requests answered 4xx (a rejected batch counts once). */
enum {
    SRV_PUB_STORED = 0,
    SRV_PUB_DUPLICATE = 1,
    SRV_PUB_FULL = 2,
    SRV_PUB_ERROR = 3,
    SRV_PUB_REJECTED = 4,
    SRV_PUB_N
};

/* The counters and histograms that the server keeps (embedded in srv_t, zero-initialised). */
typedef struct srv_metrics {
    uint64_t published[SRV_PUB_N];
    uint64_t commits; /* commit jobs done (each is one durable sync, or two with subscriptions) */
    srv_histo_t batch_size; /* events per commit that carried events */
    srv_histo_t fsync;      /* seconds a commit job spent writing and syncing */
    srv_histo_t delivery;   /* seconds from an event's stored time to a successful delivery */
} srv_metrics_t;

/* A commit job is done: n_events events were in it; if committed, the committer spent seconds
 * writing and syncing. */
void srv_metrics_commit(struct srv *s, size_t n_events, int committed, double seconds);

/* A publish request's handler answered status (called for the ones answered by the handler
 * itself, not by a commit): 4xx counts as rejected, 5xx as error. */
void srv_metrics_publish_answered(struct srv *s, int status);

/* webhook_opts_t.on_delivered: observes the publish-to-delivery latency. */
void srv_metrics_on_delivered(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt,
                              int64_t stored_us);

/* Renders every family into b (the caller owns b). */
void srv_metrics_render(struct srv *s, filter_buf_t *b);

/* GET /metrics (other methods: 405). */
struct evhtp_request;
void srv_metrics_handle(struct srv *s, struct evhtp_request *req);

#endif
