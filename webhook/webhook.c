/* webhook/webhook.c: the delivery engine's public API: subscriptions, dispatch, the retry schedule,
 * dead letters and the dispatch cursor. Connections live in pool.c, handshakes and signatures in
 * handshake.c, the address check in addr.c.
 *
 * The one rule everything here serves (see webhook.h): the cursor may only pass an event once each
 * of its first attempts has succeeded or been written into the commit batch as a retry or a dead
 * letter. Records are added to the batch first and the cursor after, in the same batch, so they
 * are durable together. When a record cannot be added the cursor stays put: a restart then
 * delivers once more, which is allowed; skipping a delivery is not. */
#include "webhook/internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <event2/http.h>

#define RETRY_BATCH                                                                                \
    1000 /* retries started per timer callback, so a backlog cannot stall the loop */

static const int64_t default_retry_us[] = {
    10 * 1000000LL,       30 * 1000000LL,        60 * 1000000LL,        300 * 1000000LL,
    600 * 1000000LL,      1800 * 1000000LL,      3600 * 1000000LL,      3 * 3600 * 1000000LL,
    6 * 3600 * 1000000LL, 12 * 3600 * 1000000LL, 12 * 3600 * 1000000LL,
};

static const int64_t default_validation_us[] = {
    1000000LL, 5000000LL, 10000000LL, 30000000LL, 60000000LL, 120000000LL, 120000000LL, 120000000LL,
};

void wh_log(const webhook_t *wh, int level, const char *fmt, ...)
{
    if (!wh->opts.log || level < wh->opts.log_level) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    wh->opts.log(level, "webhook", "%s", buf);
}

static int64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t wh_now_us(const webhook_t *wh)
{
    return wh->opts.now_us ? wh->opts.now_us() : wall_us();
}

const char *webhook_strerror(int code)
{
    switch (code) {
    case WEBHOOK_OK:
        return "ok";
    case WEBHOOK_EINVAL:
        return "invalid argument";
    case WEBHOOK_ENOMEM:
        return "out of memory";
    case WEBHOOK_ETLS:
        return "TLS set-up failed";
    case WEBHOOK_ESTORE:
        return "store read failed";
    default:
        return "unknown error";
    }
}

sub_t *sub_find(const webhook_t *wh, uint64_t id)
{
    return (sub_t *)htab_get(&wh->subs, id, 0);
}

/* ---- the commit batch ---- */

static store_batch_t *batch(webhook_t *wh)
{
    store_batch_t *b = wh->opts.open_batch(wh->opts.ctx);
    if (!b) wh_log(wh, 3, "no commit batch: delivery state not recorded");
    return b;
}

/* ---- jobs ---- */

job_t *job_new(webhook_t *wh, sub_t *sub, int kind, uint64_t seq, blob_t *body, uint32_t attempts)
{
    job_t *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->sub = sub;
    job->kind = kind;
    job->seq = seq;
    job->body = body;
    body->refs++;
    job->attempts = attempts;
    job->qbytes = sizeof(*job) + body->len;
    job->start_us = wh_now_us(wh);
    job->snext = sub->jobs;
    if (sub->jobs) sub->jobs->sprev = job;
    sub->jobs = job;
    return job;
}

void job_free(job_t *job)
{
    sub_t *sub = job->sub;
    WH_CHECK(!job->dest && !job->conn && !job->queued);
    if (job->sprev)
        job->sprev->snext = job->snext;
    else
        sub->jobs = job->snext;
    if (job->snext) job->snext->sprev = job->sprev;
    blob_unref(job->body);
    free(job);
}

/* ---- retries ---- */

static void arm_retry_timer(webhook_t *wh)
{
    retry_t *top = rheap_top(&wh->heap);
    if (!top) {
        event_del(wh->retry_timer);
        return;
    }
    int64_t d = top->due_us - wh_now_us(wh);
    if (d < 0) d = 0;
    struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
    event_add(wh->retry_timer, &tv);
}

static retry_t *retry_get(webhook_t *wh, uint64_t sub_id, uint64_t seq)
{
    retry_t *r = (retry_t *)htab_get(&wh->retries, sub_id, seq);
    if (r) return r;
    r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->h.k1 = sub_id;
    r->h.k2 = seq;
    r->heap_idx = NOT_IN_HEAP;
    if (htab_put(&wh->retries, &r->h) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* (Re)places r in the heap at r->due_us. */
static void retry_schedule(webhook_t *wh, retry_t *r)
{
    if (r->parked_at) pool_unpark(wh, r);
    if (r->heap_idx != NOT_IN_HEAP) rheap_remove(&wh->heap, r);
    if (rheap_push(&wh->heap, r) != 0)
        wh_log(wh, 3, "out of memory: retry sub=%" PRIu64 " seq=%" PRIu64 " waits for a restart",
               r->h.k1, r->h.k2);
}

static void retry_drop(webhook_t *wh, retry_t *r)
{
    if (r->parked_at) pool_unpark(wh, r);
    if (r->heap_idx != NOT_IN_HEAP) rheap_remove(&wh->heap, r);
    if (r->job) r->job->retry = NULL;
    htab_del(&wh->retries, &r->h);
    free(r);
}

static int64_t first_delay(const webhook_t *wh)
{
    return wh->opts.n_retry ? wh->retry_us[0] : 1000000;
}

/* ---- cursor ---- */

static void cursor_advance(webhook_t *wh)
{
    ring_ent_t *e;
    while ((e = ring_front(&wh->ring)) != NULL && e->remaining == 0) {
        if (e->seq > wh->cursor) wh->cursor = e->seq;
        ring_pop(&wh->ring);
    }
    if (wh->cursor <= wh->cursor_written) return;
    store_batch_t *b = batch(wh);
    if (b && store_batch_set_cursor(b, wh->cursor) == 0)
        wh->cursor_written = wh->cursor;
    else
        wh_log(wh, 3, "cursor not recorded seq=%" PRIu64, wh->cursor);
}

static void cursor_done(webhook_t *wh, uint64_t seq)
{
    ring_ent_t *e = ring_find(&wh->ring, seq);
    WH_CHECK(e && e->remaining > 0);
    e->remaining--;
    cursor_advance(wh);
}

/* ---- delivery outcomes ---- */

static void put_retry(webhook_t *wh, uint64_t sub_id, uint64_t seq, int64_t due, uint32_t attempts,
                      int status, const char *err, int *recorded)
{
    store_retry_t rec = {.due_us = due, .attempts = attempts, .last_status = status};
    snprintf(rec.last_error, sizeof(rec.last_error), "%s", err ? err : "");
    store_batch_t *b = batch(wh);
    if (!b || store_batch_put_retry(b, sub_id, seq, &rec) != 0) {
        *recorded = 0;
        wh_log(wh, 3, "retry not recorded sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
    }
}

static void del_retry(webhook_t *wh, uint64_t sub_id, uint64_t seq)
{
    store_batch_t *b = batch(wh);
    /* a leftover record only means one more (duplicate) delivery after a restart */
    if (!b || store_batch_del_retry(b, sub_id, seq) != 0)
        wh_log(wh, 3, "retry not deleted sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
}

static void sub_cancel_all(webhook_t *wh, sub_t *sub, int count_cursor);

/* Forgets every retry of sub_id; with del_records their durable records are deleted too. */
static void drop_sub_retries(webhook_t *wh, uint64_t sub_id, int del_records)
{
    for (size_t i = 0; i < wh->retries.nb; i++) {
        hnode_t *n = wh->retries.b[i];
        while (n) {
            hnode_t *next = n->next;
            if (n->k1 == sub_id) {
                if (del_records) del_retry(wh, sub_id, n->k2);
                retry_drop(wh, (retry_t *)n);
            }
            n = next;
        }
    }
}

/* A delivery of sub was answered 410 Gone (its job already freed): drop everything of sub that
 * is pending, then tell the server (last, so that it may call back into the engine). */
static void sub_gone(webhook_t *wh, sub_t *sub, uint64_t seq, uint32_t attempts, int tracked)
{
    uint64_t sub_id = sub->h.k1;
    wh->stats.failed++;
    wh_log(wh, 2,
           "endpoint gone sub=%" PRIu64 " seq=%" PRIu64 " attempt=%" PRIu32
           " status=410: deliveries cancelled, subscription to be disabled",
           sub_id, seq, attempts);
    if (tracked) {
        ring_ent_t *e = ring_find(&wh->ring, seq);
        WH_CHECK(e && e->remaining > 0);
        e->remaining--;
    }
    /* queued and in-flight deliveries (and the handshake) go; their first attempts count as
     * done, which is right: the subscription is disabled in the same commit */
    sub_cancel_all(wh, sub, 1);
    drop_sub_retries(wh, sub_id, 1);
    cursor_advance(wh);
    arm_retry_timer(wh);
    wh->opts.on_gone(wh->opts.ctx, sub_id);
}

static void delivery_done(webhook_t *wh, job_t *job, int status, const char *err)
{
    sub_t *sub = job->sub;
    uint64_t sub_id = sub->h.k1, seq = job->seq;
    uint32_t attempts = job->attempts + 1;
    int tracked = job->tracked, recorded = 1, permanent = job->permanent;
    int64_t retry_after = job->retry_after_us, stored_us = job->stored_us;
    /* a 410 from an endpoint the subscription has since left says nothing about the new one */
    int is_gone = status == 410 && wh->opts.on_gone && job->ep_gen == sub->ep_gen;
    if (wh->opts.on_attempt)
        wh->opts.on_attempt(wh->opts.ctx, sub_id, seq, attempts, status,
                            status >= 200 && status < 300 ? "" : err,
                            wh_now_us(wh) - job->start_us);
    retry_t *r = job->retry;
    if (r) r->job = NULL;
    job_free(job);
    if (is_gone) {
        sub_gone(wh, sub, seq, attempts, tracked);
        return;
    }
    /* A retry of this same delivery from an earlier run (reloaded at start) may exist too. */
    retry_t *other = r ? NULL : (retry_t *)htab_get(&wh->retries, sub_id, seq);

    if (status >= 200 && status < 300) {
        wh->stats.delivered++;
        wh_log(wh, 0, "delivered sub=%" PRIu64 " seq=%" PRIu64 " attempt=%" PRIu32 " status=%d",
               sub_id, seq, attempts, status);
        retry_t *gone = r ? r : (other && !other->job ? other : NULL);
        if (gone) {
            del_retry(wh, sub_id, seq);
            retry_drop(wh, gone);
        }
        if (wh->opts.on_delivered)
            wh->opts.on_delivered(wh->opts.ctx, sub_id, seq, attempts, stored_us);
    } else {
        wh->stats.failed++;
        wh_log(wh, 2,
               "delivery failed sub=%" PRIu64 " seq=%" PRIu64 " attempt=%" PRIu32
               " status=%d error=\"%s\"",
               sub_id, seq, attempts, status, err);
        int64_t now = wh_now_us(wh);
        if (other) {
            /* that recorded retry already covers this delivery */
        } else if (attempts > wh->opts.n_retry || permanent) {
            store_dead_t d = {.dead_us = now, .attempts = attempts, .last_status = status};
            snprintf(d.last_error, sizeof(d.last_error), "%s", err);
            store_batch_t *b = batch(wh);
            if (!b || (r && store_batch_del_retry(b, sub_id, seq) != 0) ||
                store_batch_put_dead(b, sub_id, seq, &d) != 0) {
                recorded = 0;
                wh_log(wh, 3, "dead letter not recorded sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
            }
            wh->stats.dead_lettered++;
            wh_log(wh, 2,
                   "dead-lettered sub=%" PRIu64 " seq=%" PRIu64 " attempts=%" PRIu32
                   " status=%d error=\"%s\"",
                   sub_id, seq, attempts, status, err);
            if (r) retry_drop(wh, r);
        } else {
            int64_t delay = wh->retry_us[attempts - 1];
            if (retry_after > wh->opts.max_retry_after_us)
                retry_after = wh->opts.max_retry_after_us;
            if (retry_after > delay) {
                delay = retry_after;
                wh_log(wh, 1,
                       "retry-after honoured sub=%" PRIu64 " seq=%" PRIu64 " delay_ms=%" PRId64,
                       sub_id, seq, delay / 1000);
            }
            int64_t due = now + delay;
            put_retry(wh, sub_id, seq, due, attempts, status, err, &recorded);
            if (!r) r = retry_get(wh, sub_id, seq);
            if (r) {
                r->due_us = due;
                r->attempts = attempts;
                retry_schedule(wh, r);
            } else {
                wh_log(wh, 3,
                       "out of memory: retry sub=%" PRIu64 " seq=%" PRIu64 " waits for a restart",
                       sub_id, seq);
            }
        }
    }
    if (tracked && recorded) cursor_done(wh, seq);
    arm_retry_timer(wh);
}

void job_done(webhook_t *wh, job_t *job, int status, const char *err)
{
    if (!err) err = "";
    if (job->kind == JOB_HANDSHAKE)
        handshake_done(wh, job, status, err);
    else
        delivery_done(wh, job, status, err);
}

/* ---- subscriptions ---- */

/* Cancels every job of sub (queued, in flight, handshake); their first attempts count as done. */
static void sub_cancel_all(webhook_t *wh, sub_t *sub, int count_cursor)
{
    hs_cancel(wh, sub);
    while (sub->jobs) {
        job_t *job = sub->jobs;
        uint64_t seq = job->seq;
        int tracked = job->tracked;
        pool_cancel(wh, job);
        if (job->retry) job->retry->job = NULL;
        job_free(job);
        if (tracked && count_cursor) {
            ring_ent_t *e = ring_find(&wh->ring, seq);
            WH_CHECK(e && e->remaining > 0);
            e->remaining--;
        }
    }
}

static void sub_free(sub_t *sub)
{
    WH_CHECK(!sub->hs); /* sub_cancel_all has run */
    endpoint_fini(&sub->ep);
    free(sub->secret);
    free(sub);
}

int webhook_sub_set(webhook_t *wh, uint64_t sub_id, const char *endpoint,
                    const unsigned char *secret, size_t secret_len)
{
    webhook_sub_opts_t o = {endpoint, secret, secret_len, WEBHOOK_MODE_STRUCTURED};
    return webhook_sub_config(wh, sub_id, &o);
}

int webhook_sub_config(webhook_t *wh, uint64_t sub_id, const webhook_sub_opts_t *o)
{
    endpoint_t ep;
    if (!wh || !o || !o->endpoint) return WEBHOOK_EINVAL;
    const char *endpoint = o->endpoint;
    const unsigned char *secret = o->secret;
    size_t secret_len = o->secret_len;
    webhook_mode_t mode = o->mode;
    if ((secret_len && !secret) || secret_len > INT_MAX ||
        (mode != WEBHOOK_MODE_STRUCTURED && mode != WEBHOOK_MODE_CLOUDEVENTS &&
         mode != WEBHOOK_MODE_BINARY))
        return WEBHOOK_EINVAL;
    int rc = endpoint_parse(endpoint, &ep);
    if (rc != WEBHOOK_OK) return rc;
    unsigned char *sec = NULL;
    if (secret && secret_len) {
        sec = malloc(secret_len);
        if (sec) memcpy(sec, secret, secret_len);
    }
    if (secret_len && !sec) goto nomem;

    sub_t *sub = sub_find(wh, sub_id);
    if (sub && endpoint_same(&sub->ep, &ep)) {
        /* same endpoint (the URL is not kept: an equal parse sends the same requests): only the
         * secret and the mode change (from the next attempt on) */
        endpoint_fini(&ep);
        free(sub->secret);
        sub->secret = sec;
        sub->secret_len = sec ? (uint32_t)secret_len : 0;
        sub->mode = mode;
        return WEBHOOK_OK;
    }
    dest_t *d = pool_dest_get(wh, &ep);
    if (!d) goto nomem;
    if (!sub) {
        sub = calloc(1, sizeof(*sub));
        if (sub) {
            sub->h.k1 = sub_id;
        }
        if (!sub || htab_put(&wh->subs, &sub->h) != 0) {
            free(sub);
            pool_dest_release(wh, d);
            goto nomem;
        }
    } else {
        endpoint_fini(&sub->ep);
        free(sub->secret);
    }
    dest_t *old = sub->dest;
    sub->ep = ep;
    sub->secret = sec;
    sub->secret_len = sec ? (uint32_t)secret_len : 0;
    sub->mode = mode;
    sub->ep_gen++;
    sub->dest = d;
    if (old) {
        /* waiting jobs follow the subscription to its new destination; those on the wire finish
         * where they are */
        for (job_t *job = sub->jobs; job; job = job->snext)
            if (job->queued) {
                pool_cancel(wh, job);
                pool_submit(wh, job, 0);
            }
        pool_dest_release(wh, old);
    }
    return WEBHOOK_OK;
nomem:
    endpoint_fini(&ep);
    free(sec);
    return WEBHOOK_ENOMEM;
}

void webhook_sub_remove(webhook_t *wh, uint64_t sub_id)
{
    sub_t *sub = wh ? sub_find(wh, sub_id) : NULL;
    if (!sub) return;
    sub_cancel_all(wh, sub, 1);
    /* its retries go with it (the server deletes the durable ones with store_batch_del_sub) */
    drop_sub_retries(wh, sub_id, 0);
    htab_del(&wh->subs, &sub->h);
    pool_dest_release(wh, sub->dest);
    sub_free(sub);
    cursor_advance(wh);
    arm_retry_timer(wh);
}

/* ---- dispatch ---- */

int webhook_dispatch(webhook_t *wh, uint64_t seq, const char *json, size_t len,
                     const uint64_t *sub_ids, size_t n)
{
    return webhook_dispatch_at(wh, seq, 0, json, len, sub_ids, n);
}

int webhook_dispatch_at(webhook_t *wh, uint64_t seq, int64_t stored_us, const char *json,
                        size_t len, const uint64_t *sub_ids, size_t n)
{
    int track = seq > wh->last_seq;
    if (!track)
        wh_log(wh, 2, "dispatch out of order seq=%" PRIu64 " last=%" PRIu64, seq, wh->last_seq);
    if (track && ring_reserve(&wh->ring) != 0) return WEBHOOK_ENOMEM;
    blob_t *body = NULL;
    size_t pending = 0;
    int rc = WEBHOOK_OK;
    int64_t now = 0;
    for (size_t i = 0; i < n; i++) {
        sub_t *sub = sub_find(wh, sub_ids[i]);
        if (!sub) {
            wh_log(wh, 0, "dispatch to unknown sub=%" PRIu64 " ignored", sub_ids[i]);
            continue;
        }
        if (!body && !(body = blob_new(json, len))) {
            rc = WEBHOOK_ENOMEM;
            pending++; /* never done: the cursor stays before this event */
            break;
        }
        job_t *job = job_new(wh, sub, JOB_DELIVERY, seq, body, 0);
        if (!job) {
            rc = WEBHOOK_ENOMEM;
            pending++;
            break;
        }
        job->tracked = track;
        job->stored_us = stored_us;
        /* the body is shared by the event's deliveries: each counts its share of it */
        job->qbytes = sizeof(*job) + len / n;
        if (pool_submit(wh, job, 1) == 0) {
            pending += (size_t)track;
            continue;
        }
        /* queue full: keep memory bounded by waiting durably in the retry table instead. This
         * is no attempt (attempts 0) and no back-off: it is parked and comes back as soon as the
         * queue has room (or at once after a restart). */
        job_free(job);
        int recorded = 1;
        if (!now) now = wh_now_us(wh);
        put_retry(wh, sub->h.k1, seq, now, 0, 0, "queue full", &recorded);
        if (!recorded) pending += (size_t)track;
        retry_t *r = (retry_t *)htab_get(&wh->retries, sub->h.k1, seq);
        if (!r) r = retry_get(wh, sub->h.k1, seq);
        if (r && !r->job && !r->parked_at) {
            if (r->heap_idx != NOT_IN_HEAP) rheap_remove(&wh->heap, r);
            r->due_us = now;
            r->attempts = 0;
            pool_park(wh, sub, r);
        } else if (!r) {
            wh_log(wh, 3, "out of memory: sub=%" PRIu64 " seq=%" PRIu64 " waits for a restart",
                   sub->h.k1, seq);
        }
    }
    blob_unref(body);
    if (track) {
        ring_push(&wh->ring, seq, pending);
        wh->last_seq = seq;
        cursor_advance(wh);
    }
    if (now) arm_retry_timer(wh);
    return rc;
}

/* ---- retry timer ---- */

typedef struct {
    blob_t *body;
    int64_t stored_us;
} fetch_t;

static int on_fetch(void *ctx, const store_event_t *ev)
{
    fetch_t *f = ctx;
    if (!f->body) f->body = blob_new(ev->json, ev->json_len);
    f->stored_us = ev->stored_us;
    return STORE_SCAN_STOP;
}

/* Starts the attempt of retry r (already out of the heap, not parked). With bounded set, a full
 * queue parks r instead (before reading the event: parking is cheap). */
static void retry_fire(webhook_t *wh, retry_t *r, int64_t now, int bounded)
{
    uint64_t sub_id = r->h.k1, seq = r->h.k2;
    sub_t *sub = sub_find(wh, sub_id);
    if (!sub) {
        /* The subscription is gone (subscriptions are all set before webhook_start). Its
         * records normally go with store_batch_del_sub, but one written by a commit after that
         * deletion would be reloaded at every start: delete it. */
        wh_log(wh, 1, "retry dropped: unknown sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
        del_retry(wh, sub_id, seq);
        retry_drop(wh, r);
        return;
    }
    if (bounded && pool_full(wh, sub)) {
        pool_park(wh, sub, r); /* its durable record stays as it is */
        return;
    }
    fetch_t f = {NULL, 0};
    int rc = store_get_event(wh->st, seq, on_fetch, &f);
    if (rc == STORE_ENOTFOUND) {
        wh_log(wh, 2, "retry dropped: event gone sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
        del_retry(wh, sub_id, seq);
        retry_drop(wh, r);
        return;
    }
    if (rc != STORE_OK || !f.body) {
        wh_log(wh, 3, "retry postponed sub=%" PRIu64 " seq=%" PRIu64 ": %s", sub_id, seq,
               rc ? store_strerror(rc) : "out of memory");
        blob_unref(f.body);
        r->due_us = now + first_delay(wh);
        retry_schedule(wh, r);
        return;
    }
    job_t *job = job_new(wh, sub, JOB_DELIVERY, seq, f.body, r->attempts);
    blob_unref(f.body);
    if (job) {
        job->retry = r;
        job->stored_us = f.stored_us;
        r->job = job;
        pool_submit(wh, job, 0); /* room was checked above (or the pump made it) */
        return;
    }
    /* no memory: try again later, the durable record stays as it is */
    r->due_us = now + first_delay(wh);
    retry_schedule(wh, r);
}

void retry_resume(webhook_t *wh, retry_t *r)
{
    retry_fire(wh, r, wh_now_us(wh), 0);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    webhook_t *wh = arg;
    int64_t now = wh_now_us(wh);
    retry_t *r;
    for (int budget = RETRY_BATCH; budget > 0 && (r = rheap_top(&wh->heap)) && r->due_us <= now;
         budget--) {
        rheap_remove(&wh->heap, r);
        retry_fire(wh, r, now, 1);
    }
    arm_retry_timer(wh);
}

/* ---- start, redeliver, stats ---- */

typedef struct {
    webhook_t *wh;
    int nomem;
} load_t;

static int on_load_retry(void *ctx, uint64_t sub_id, uint64_t seq, const store_retry_t *rec)
{
    load_t *l = ctx;
    retry_t *r = retry_get(l->wh, sub_id, seq);
    if (!r) {
        l->nomem = 1;
        return STORE_SCAN_STOP;
    }
    r->due_us = rec->due_us;
    r->attempts = rec->attempts;
    retry_schedule(l->wh, r);
    return STORE_SCAN_CONTINUE;
}

int webhook_start(webhook_t *wh, uint64_t *cursor_out)
{
    uint64_t c = 0;
    int rc = store_get_cursor(wh->st, &c);
    if (rc != STORE_OK && rc != STORE_ENOTFOUND) {
        wh_log(wh, 3, "reading the cursor failed: %s", store_strerror(rc));
        return WEBHOOK_ESTORE;
    }
    if (rc == STORE_ENOTFOUND) c = 0;
    load_t l = {wh, 0};
    rc = store_scan_retries(wh->st, on_load_retry, &l);
    if (l.nomem) return WEBHOOK_ENOMEM;
    if (rc != STORE_OK) {
        wh_log(wh, 3, "reading the retries failed: %s", store_strerror(rc));
        return WEBHOOK_ESTORE;
    }
    if (c > wh->cursor) wh->cursor = c;
    if (c > wh->cursor_written) wh->cursor_written = c;
    if (c > wh->last_seq) wh->last_seq = c;
    wh_log(wh, 1, "started cursor=%" PRIu64 " retries=%zu", c, wh->retries.n);
    arm_retry_timer(wh);
    *cursor_out = c;
    return WEBHOOK_OK;
}

int webhook_redeliver(webhook_t *wh, uint64_t sub_id, uint64_t seq)
{
    if (!sub_find(wh, sub_id)) return WEBHOOK_EINVAL;
    int64_t now = wh_now_us(wh);
    store_retry_t rec = {.due_us = now};
    store_batch_t *b = batch(wh);
    if (!b || store_batch_del_dead(b, sub_id, seq) != 0 ||
        store_batch_put_retry(b, sub_id, seq, &rec) != 0)
        return WEBHOOK_ENOMEM;
    retry_t *r = retry_get(wh, sub_id, seq);
    if (!r) return WEBHOOK_ENOMEM; /* recorded: it runs after a restart */
    if (!r->job) {
        r->due_us = now;
        r->attempts = 0;
        retry_schedule(wh, r);
        arm_retry_timer(wh);
    }
    wh_log(wh, 1, "redeliver sub=%" PRIu64 " seq=%" PRIu64, sub_id, seq);
    return WEBHOOK_OK;
}

void webhook_get_stats(const webhook_t *wh, webhook_stats_t *out)
{
    *out = wh->stats;
    out->retries_pending = wh->retries.n;
    out->queued = wh->queued;
    out->cursor = wh->cursor;
}

/* ---- new, free ---- */

static int64_t *copy_delays(const int64_t *src, size_t n)
{
    int64_t *a = malloc((n ? n : 1) * sizeof(*a));
    if (a && n) memcpy(a, src, n * sizeof(*a));
    return a;
}

webhook_t *webhook_new(struct event_base *base, store_t *st, const webhook_opts_t *opts, char *err,
                       size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    if (!base || !st || !opts || !opts->open_batch) {
        snprintf(err, errlen, "webhook: base, store and open_batch are required");
        return NULL;
    }
    const int64_t *ru = opts->retry_us, *vu = opts->validation_us;
    size_t nr = opts->n_retry, nv = opts->n_validation;
    if (!ru) {
        ru = default_retry_us;
        nr = sizeof(default_retry_us) / sizeof(default_retry_us[0]);
    }
    if (!vu) {
        vu = default_validation_us;
        nv = sizeof(default_validation_us) / sizeof(default_validation_us[0]);
    }
    for (size_t i = 0; i < nr; i++)
        if (ru[i] < 0) {
            snprintf(err, errlen, "webhook: negative retry delay");
            return NULL;
        }
    for (size_t i = 0; i < nv; i++)
        if (vu[i] < 0) {
            snprintf(err, errlen, "webhook: negative validation delay");
            return NULL;
        }
    if (opts->timeout_us < 0 || opts->max_retry_after_us < 0) {
        snprintf(err, errlen, "webhook: negative timeout");
        return NULL;
    }

    webhook_t *wh = calloc(1, sizeof(*wh));
    if (!wh) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    wh->base = base;
    wh->st = st;
    wh->opts = *opts;
    wh->retry_us = copy_delays(ru, nr);
    wh->validation_us = copy_delays(vu, nv);
    wh->ca_file = opts->ca_file ? strdup(opts->ca_file) : NULL;
    wh->user_agent = strdup(opts->user_agent ? opts->user_agent : "hendelse");
    wh->retry_timer = evtimer_new(base, on_retry_timer, wh);
    if (!wh->retry_us || !wh->validation_us || (opts->ca_file && !wh->ca_file) || !wh->user_agent ||
        !wh->retry_timer) {
        snprintf(err, errlen, "out of memory");
        webhook_free(wh);
        return NULL;
    }
    wh->opts.retry_us = wh->retry_us;
    wh->opts.n_retry = nr;
    wh->opts.validation_us = wh->validation_us;
    wh->opts.n_validation = nv;
    wh->opts.ca_file = wh->ca_file;
    wh->opts.user_agent = wh->user_agent;
    if (!wh->opts.timeout_us) wh->opts.timeout_us = 45 * 1000000LL;
    if (!wh->opts.pool_size) wh->opts.pool_size = 4;
    if (!wh->opts.max_retry_after_us) wh->opts.max_retry_after_us = 3600 * 1000000LL;
    if (pool_init(wh, err, errlen) != WEBHOOK_OK) {
        webhook_free(wh);
        return NULL;
    }
    return wh;
}

void webhook_free(webhook_t *wh)
{
    if (!wh) return;
    wh->freeing = 1;
    for (size_t i = 0; i < wh->subs.nb; i++) {
        hnode_t *n = wh->subs.b[i];
        while (n) {
            hnode_t *next = n->next;
            sub_t *sub = (sub_t *)n;
            sub_cancel_all(wh, sub, 0);
            pool_dest_release(wh, sub->dest);
            sub_free(sub);
            n = next;
        }
    }
    htab_fini(&wh->subs);
    for (size_t i = 0; i < wh->retries.nb; i++) {
        hnode_t *n = wh->retries.b[i];
        while (n) {
            hnode_t *next = n->next;
            free(n);
            n = next;
        }
    }
    htab_fini(&wh->retries);
    rheap_fini(&wh->heap);
    ring_fini(&wh->ring);
    if (wh->retry_timer) event_free(wh->retry_timer);
    pool_fini(wh);
    free(wh->retry_us);
    free(wh->validation_us);
    free(wh->ca_file);
    free(wh->user_agent);
    free(wh);
}
