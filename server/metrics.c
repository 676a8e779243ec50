/* server/metrics: see metrics.h. The families, their help texts and their buckets live here;
 * promtext.c knows the format. */
#include "server/metrics.h"

#include <string.h>

#include "server/server.h"
#include "server/subs.h"
#include "webhook/webhook.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* An fsync on an SSD takes from tens of microseconds to a few milliseconds; seconds mean trouble.
 */
static const double fsync_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                  0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
/* The batch grows with the load: powers of two up to a few thousand events per commit. */
static const double batch_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};
/* A first attempt lands in milliseconds; retries (the default schedule runs for about 36 hours)
 * push the tail to hours. */
static const double delivery_le[] = {0.001, 0.0025, 0.005, 0.01,  0.025, 0.05, 0.1, 0.25,
                                     0.5,   1,      2.5,   5,     10,    30,   60,  300,
                                     1800,  3600,   10800, 21600, 43200, 86400};

_Static_assert(N(fsync_le) <= SRV_HISTO_MAX && N(batch_le) <= SRV_HISTO_MAX &&
                   N(delivery_le) <= SRV_HISTO_MAX,
               "too many buckets");

void srv_metrics_commit(srv_t *s, size_t n_events, int committed, double seconds)
{
    if (!committed) return;
    s->metrics.commits++;
    if (n_events)
        srv_histo_observe(&s->metrics.batch_size, batch_le, N(batch_le), (double)n_events);
    srv_histo_observe(&s->metrics.fsync, fsync_le, N(fsync_le), seconds);
}

void srv_metrics_publish_answered(srv_t *s, int status)
{
    if (status >= 400 && status < 500)
        s->metrics.published[SRV_PUB_REJECTED]++;
    else if (status >= 500)
        s->metrics.published[SRV_PUB_ERROR]++;
}

void srv_metrics_on_delivered(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt,
                              int64_t stored_us)
{
    srv_t *s = ctx;
    int64_t d;
    (void)sub_id;
    (void)seq;
    (void)attempt;
    if (stored_us <= 0) return; /* unknown */
    d = srv_now_us() - stored_us;
    if (d < 0) d = 0; /* the wall clock stepped back */
    srv_histo_observe(&s->metrics.delivery, delivery_le, N(delivery_le), (double)d / 1e6);
}

void srv_metrics_render(srv_t *s, filter_buf_t *b)
{
    static const char *const pub_outcome[SRV_PUB_N] = {"stored", "duplicate", "full", "error",
                                                       "rejected"};
    const srv_metrics_t *m = &s->metrics;
    webhook_stats_t ws;
    store_stat_t st;
    size_t validated = 0, unvalidated = 0, disabled = 0;

    memset(&ws, 0, sizeof ws);
    if (s->webhook) webhook_get_stats(s->webhook, &ws);
    if (s->subs) srv_subs_count(s, &validated, &unvalidated, &disabled);

    srv_prom_family(b, "hendelse_build_info", "gauge",
                    "Always 1; the version label is the hendelse version.");
    srv_prom_u64(b, "hendelse_build_info", "version", HENDELSE_VERSION, 1);

    srv_prom_family(b, "hendelse_events_published_total", "counter",
                    "Published events by outcome: stored, duplicate (already stored), full (store "
                    "full, 507), error (not stored, 5xx); rejected counts publish requests "
                    "answered 4xx.");
    for (size_t i = 0; i < SRV_PUB_N; i++)
        srv_prom_u64(b, "hendelse_events_published_total", "outcome", pub_outcome[i],
                     m->published[i]);

    if (s->store && store_stat(s->store, &st) == 0) {
        srv_prom_family(b, "hendelse_store_bytes", "gauge",
                        "Bytes of the store's data file in use (up to its high-water mark).");
        srv_prom_u64(b, "hendelse_store_bytes", NULL, NULL, st.used_bytes);
        srv_prom_family(b, "hendelse_store_max_bytes", "gauge",
                        "The store's map size: the most its data file may grow to.");
        srv_prom_u64(b, "hendelse_store_max_bytes", NULL, NULL, st.map_bytes);
    }

    srv_prom_family(b, "hendelse_commit_batches_total", "counter",
                    "Group commits written to the store (each ends with one durable sync).");
    srv_prom_u64(b, "hendelse_commit_batches_total", NULL, NULL, m->commits);

    srv_prom_family(b, "hendelse_commit_batch_size", "histogram",
                    "Events per group commit (commits that carried events).");
    srv_prom_histo(b, "hendelse_commit_batch_size", &m->batch_size, batch_le, N(batch_le));

    srv_prom_family(b, "hendelse_fsync_seconds", "histogram",
                    "Seconds a group commit spent writing and syncing the store.");
    srv_prom_histo(b, "hendelse_fsync_seconds", &m->fsync, fsync_le, N(fsync_le));

    srv_prom_family(b, "hendelse_subscriptions", "gauge",
                    "Subscriptions by state: validated, unvalidated (handshake pending), disabled "
                    "(the endpoint answered 410 Gone).");
    srv_prom_u64(b, "hendelse_subscriptions", "state", "validated", validated);
    srv_prom_u64(b, "hendelse_subscriptions", "state", "unvalidated", unvalidated);
    srv_prom_u64(b, "hendelse_subscriptions", "state", "disabled", disabled);

    srv_prom_family(b, "hendelse_deliveries_total", "counter",
                    "Webhook delivery attempts by outcome: success (2xx), failure (every failed "
                    "attempt, retries included), dead_letter (deliveries given up).");
    srv_prom_u64(b, "hendelse_deliveries_total", "outcome", "success", ws.delivered);
    srv_prom_u64(b, "hendelse_deliveries_total", "outcome", "failure", ws.failed);
    srv_prom_u64(b, "hendelse_deliveries_total", "outcome", "dead_letter", ws.dead_lettered);

    srv_prom_family(b, "hendelse_retries_pending", "gauge", "Deliveries waiting for a retry.");
    srv_prom_u64(b, "hendelse_retries_pending", NULL, NULL, ws.retries_pending);

    srv_prom_family(b, "hendelse_deliveries_in_flight", "gauge", "Webhook requests on the wire.");
    srv_prom_u64(b, "hendelse_deliveries_in_flight", NULL, NULL, ws.in_flight);

    srv_prom_family(b, "hendelse_deliveries_queued", "gauge",
                    "Deliveries waiting for a connection to their endpoint.");
    srv_prom_u64(b, "hendelse_deliveries_queued", NULL, NULL, ws.queued);

    srv_prom_family(b, "hendelse_dead_letters_total", "counter",
                    "Deliveries dead-lettered after their last attempt failed.");
    srv_prom_u64(b, "hendelse_dead_letters_total", NULL, NULL, ws.dead_lettered);

    srv_prom_family(b, "hendelse_publish_to_delivery_seconds", "histogram",
                    "Seconds from an event's stored time to its successful delivery to a "
                    "subscription (retries included).");
    srv_prom_histo(b, "hendelse_publish_to_delivery_seconds", &m->delivery, delivery_le,
                   N(delivery_le));

    srv_prom_family(b, "hendelse_open_connections", "gauge", "Open inbound HTTP connections.");
    srv_prom_u64(b, "hendelse_open_connections", NULL, NULL, s->n_conns);
}

void srv_metrics_handle(srv_t *s, evhtp_request_t *req)
{
    filter_buf_t b = {0};
    if (evhtp_request_get_method(req) != htp_method_GET) {
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("Allow", "GET", 0, 0));
        srv_reply_empty(req, 405);
        return;
    }
    srv_metrics_render(s, &b);
    if (filter_buf_failed(&b)) {
        filter_buf_fini(&b);
        srv_reply_empty(req, 500);
        return;
    }
    srv_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    filter_buf_fini(&b);
}
