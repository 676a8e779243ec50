/* webhook/handshake.c: the validation handshake (api.md §4: POST, any 2xx validates, else retry on
 * the validation schedule, then give up; not persisted) and the Standard Webhooks signature that
 * deliveries and handshakes carry when their subscription has a secret.
 *
 * A handshake is always sent as application/json (the structured mode), whatever the
 * subscription's content mode: its body is the validation event the receiver must recognise. Any
 * non-2xx answer, 410 Gone included, is a failed attempt; a 429/503 Retry-After stretches the wait
 * before the next one. */
#include "webhook/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ---- Standard Webhooks signature ---- */

int job_sign(webhook_t *wh, const job_t *job, const char *body, size_t len, struct evkeyvalq *hdrs)
{
    const sub_t *sub = job->sub;
    if (!sub->secret) return 0;
    char id[64], ts[24];
    if (job->kind == JOB_HANDSHAKE)
        snprintf(id, sizeof(id), "msg_hs_%" PRIu64 "_%" PRIu64, sub->h.k1, job->seq);
    else
        snprintf(id, sizeof(id), "msg_%" PRIu64 "_%" PRIu64, sub->h.k1, job->seq);
    snprintf(ts, sizeof(ts), "%" PRId64, wh_now_us(wh) / 1000000);
    size_t il = strlen(id), tl = strlen(ts), n = il + 1 + tl + 1 + len;
    unsigned char *msg = malloc(n);
    if (!msg) return -1;
    memcpy(msg, id, il);
    msg[il] = '.';
    memcpy(msg + il + 1, ts, tl);
    msg[il + 1 + tl] = '.';
    if (len) memcpy(msg + il + tl + 2, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    unsigned char *r = HMAC(EVP_sha256(), sub->secret, (int)sub->secret_len, msg, n, mac, &maclen);
    free(msg);
    if (!r) return -1;
    char sig[3 + 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1] = "v1,";
    EVP_EncodeBlock((unsigned char *)sig + 3, mac, (int)maclen);
    if (evhttp_add_header(hdrs, "webhook-id", id) != 0 ||
        evhttp_add_header(hdrs, "webhook-timestamp", ts) != 0 ||
        evhttp_add_header(hdrs, "webhook-signature", sig) != 0)
        return -1;
    return 0;
}

/* ---- handshakes ---- */

static void hs_start(webhook_t *wh, sub_t *sub);

static void on_hs_timer(evutil_socket_t fd, short what, void *arg);

/* Arms the handshake retry timer of sub (which has a handshake), creating it if needed. 0, or -1
 * without memory. */
static int hs_arm(webhook_t *wh, sub_t *sub, const struct timeval *tv)
{
    hs_t *hs = sub->hs;
    if (!hs->timer) hs->timer = evtimer_new(wh->base, on_hs_timer, sub);
    return hs->timer ? event_add(hs->timer, tv) : -1;
}

/* Frees sub's handshake state (its job, if any, must already be gone). The state, and its retry
 * timer, exist only while a handshake is pending: with 100,000 validated subscriptions they would
 * cost megabytes for nothing. */
static void hs_free(sub_t *sub)
{
    hs_t *hs = sub->hs;
    if (!hs) return;
    WH_CHECK(!hs->job);
    if (hs->timer) event_free(hs->timer);
    blob_unref(hs->body);
    free(hs);
    sub->hs = NULL;
}

void handshake_done(webhook_t *wh, job_t *job, int status, const char *err)
{
    sub_t *sub = job->sub;
    hs_t *hs = sub->hs;
    uint64_t id = sub->h.k1;
    int64_t retry_after = job->retry_after_us;
    WH_CHECK(hs && hs->job == job);
    hs->job = NULL;
    job_free(job);
    if (status >= 200 && status < 300) {
        hs_free(sub);
        wh_log(wh, 1, "handshake validated sub=%" PRIu64 " status=%d", id, status);
        /* last: the server may change this subscription from inside the hook */
        if (wh->opts.on_validated) wh->opts.on_validated(wh->opts.ctx, id);
        return;
    }
    hs->failed++;
    if (hs->failed <= wh->opts.n_validation) {
        int64_t d = wh->validation_us[hs->failed - 1];
        if (retry_after > wh->opts.max_retry_after_us) retry_after = wh->opts.max_retry_after_us;
        if (retry_after > d) d = retry_after;
        wh_log(wh, 2, "handshake failed sub=%" PRIu64 " attempt=%zu status=%d error=\"%s\"", id,
               hs->failed, status, err);
        struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
        if (hs_arm(wh, sub, &tv) != 0) {
            wh_log(wh, 3, "out of memory: handshake sub=%" PRIu64 " given up", id);
            hs_free(sub);
        }
    } else {
        wh_log(wh, 2, "handshake given up sub=%" PRIu64 " attempts=%zu status=%d error=\"%s\"", id,
               hs->failed, status, err);
        hs_free(sub);
    }
}

void hs_cancel(webhook_t *wh, sub_t *sub)
{
    hs_t *hs = sub->hs;
    if (!hs) return;
    if (hs->job) {
        pool_cancel(wh, hs->job);
        job_free(hs->job);
        hs->job = NULL;
    }
    hs_free(sub);
}

static void hs_start(webhook_t *wh, sub_t *sub)
{
    hs_t *hs = sub->hs;
    job_t *job = job_new(wh, sub, JOB_HANDSHAKE, hs->n, hs->body, 0);
    if (!job) {
        /* treat like a failed attempt: the schedule tries again */
        struct timeval tv = {1, 0};
        wh_log(wh, 3, "out of memory: handshake sub=%" PRIu64 " postponed", sub->h.k1);
        if (hs_arm(wh, sub, &tv) != 0) {
            /* given up; the state goes with the subscription or its next handshake (this may run
             * inside the timer's own callback, which must not free the timer) */
            blob_unref(hs->body);
            hs->body = NULL;
        }
        return;
    }
    hs->job = job;
    pool_submit(wh, job, 0); /* handshakes are few: they do not count against max_queued */
}

static void on_hs_timer(evutil_socket_t fd, short what, void *arg)
{
    sub_t *sub = arg;
    (void)fd;
    (void)what;
    if (sub->hs && sub->hs->body && !sub->hs->job) hs_start(sub->hs->wh, sub);
}

int webhook_handshake(webhook_t *wh, uint64_t sub_id, const char *body, size_t len)
{
    sub_t *sub = sub_find(wh, sub_id);
    if (!sub || (!body && len)) return WEBHOOK_EINVAL;
    blob_t *b = blob_new(body, len);
    hs_t *hs = calloc(1, sizeof(*hs));
    if (!b || !hs) {
        blob_unref(b);
        free(hs);
        return WEBHOOK_ENOMEM;
    }
    hs_cancel(wh, sub);
    hs->wh = wh;
    hs->body = b;
    hs->n = ++wh->hs_counter;
    sub->hs = hs;
    hs_start(wh, sub);
    return WEBHOOK_OK;
}
