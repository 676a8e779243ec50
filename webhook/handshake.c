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

/* Arms the handshake retry timer of sub, creating it if needed. 0, or -1 without memory. */
static int hs_arm(webhook_t *wh, sub_t *sub, const struct timeval *tv)
{
    if (!sub->hs_timer) sub->hs_timer = evtimer_new(wh->base, on_hs_timer, sub);
    return sub->hs_timer ? event_add(sub->hs_timer, tv) : -1;
}

void handshake_done(webhook_t *wh, job_t *job, int status, const char *err)
{
    sub_t *sub = job->sub;
    uint64_t id = sub->h.k1;
    int64_t retry_after = job->retry_after_us;
    sub->hs_job = NULL;
    job_free(job);
    if (status >= 200 && status < 300) {
        blob_unref(sub->hs_body);
        sub->hs_body = NULL;
        hs_timer_drop(sub);
        wh_log(wh, 1, "handshake validated sub=%" PRIu64 " status=%d", id, status);
        /* last: the server may change this subscription from inside the hook */
        if (wh->opts.on_validated) wh->opts.on_validated(wh->opts.ctx, id);
        return;
    }
    sub->hs_failed++;
    if (sub->hs_failed <= wh->opts.n_validation) {
        int64_t d = wh->validation_us[sub->hs_failed - 1];
        if (retry_after > wh->opts.max_retry_after_us) retry_after = wh->opts.max_retry_after_us;
        if (retry_after > d) d = retry_after;
        wh_log(wh, 2, "handshake failed sub=%" PRIu64 " attempt=%zu status=%d error=\"%s\"", id,
               sub->hs_failed, status, err);
        struct timeval tv = {(time_t)(d / 1000000), (suseconds_t)(d % 1000000)};
        if (hs_arm(wh, sub, &tv) != 0) {
            wh_log(wh, 3, "out of memory: handshake sub=%" PRIu64 " given up", id);
            blob_unref(sub->hs_body);
            sub->hs_body = NULL;
        }
    } else {
        wh_log(wh, 2, "handshake given up sub=%" PRIu64 " attempts=%zu status=%d error=\"%s\"", id,
               sub->hs_failed, status, err);
        blob_unref(sub->hs_body);
        sub->hs_body = NULL;
        hs_timer_drop(sub);
    }
}

/* The retry timer of a handshake exists only while a handshake is pending: with 100,000
 * validated subscriptions a timer each would cost megabytes for nothing. */
void hs_timer_drop(sub_t *sub)
{
    if (sub->hs_timer) {
        event_free(sub->hs_timer);
        sub->hs_timer = NULL;
    }
}

void hs_cancel(webhook_t *wh, sub_t *sub)
{
    if (sub->hs_job) {
        pool_cancel(wh, sub->hs_job);
        job_free(sub->hs_job);
        sub->hs_job = NULL;
    }
    if (sub->hs_timer) event_del(sub->hs_timer);
    blob_unref(sub->hs_body);
    sub->hs_body = NULL;
}

static void hs_start(webhook_t *wh, sub_t *sub)
{
    job_t *job = job_new(sub, JOB_HANDSHAKE, sub->hs_n, sub->hs_body, 0);
    if (!job) {
        /* treat like a failed attempt: the schedule tries again */
        struct timeval tv = {1, 0};
        wh_log(wh, 3, "out of memory: handshake sub=%" PRIu64 " postponed", sub->h.k1);
        if (hs_arm(wh, sub, &tv) != 0) {
            blob_unref(sub->hs_body);
            sub->hs_body = NULL;
        }
        return;
    }
    sub->hs_job = job;
    pool_submit(wh, job, 0); /* handshakes are few: they do not count against max_queued */
}

static void on_hs_timer(evutil_socket_t fd, short what, void *arg)
{
    sub_t *sub = arg;
    if (sub->hs_body && !sub->hs_job) hs_start(sub->wh, sub);
}

int webhook_handshake(webhook_t *wh, uint64_t sub_id, const char *body, size_t len)
{
    sub_t *sub = sub_find(wh, sub_id);
    if (!sub || (!body && len)) return WEBHOOK_EINVAL;
    blob_t *b = blob_new(body, len);
    if (!b) return WEBHOOK_ENOMEM;
    hs_cancel(wh, sub);
    sub->hs_body = b;
    sub->hs_n = ++wh->hs_counter;
    sub->hs_failed = 0;
    hs_start(wh, sub);
    return WEBHOOK_OK;
}
