/* server/publish: POST /events/api/v1/events and the group commit (architecture.md, "The write
 * path"). A publish is parsed and validated at once, then waits (paused) in the open batch; one
 * commit event per loop pass writes the whole batch in one transaction with one durable sync and
 * only then answers every waiting request. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/log.h"
#include "server/server.h"
#include "server/subs.h"
#include "webhook/webhook.h"

/* The media type of a Content-Type value without parameters, compared case-insensitively. */
static int media_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, want, n) != 0) return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int grow_pending(srv_t *s)
{
    size_t cap = s->cap_pending ? s->cap_pending * 2 : 256;
    srv_pending_t *p = realloc(s->pending, cap * sizeof *p);
    store_event_in_t *ins;
    store_result_t *res;
    if (!p) return -1;
    s->pending = p;
    ins = realloc(s->ins, cap * sizeof *ins);
    if (!ins) return -1;
    s->ins = ins;
    res = realloc(s->res, cap * sizeof *res);
    if (!res) return -1;
    s->res = res;
    s->cap_pending = cap;
    return 0;
}

void srv_publish_forget(srv_t *s, srv_req_t *rctx)
{
    /* The event stays in the batch: it was accepted for storing, only the answer has no one to go
     * to (the client may retry; dedupe makes that safe). */
    if (rctx->pending >= 0 && (size_t)rctx->pending < s->n_pending) {
        s->pending[rctx->pending].req = NULL;
        s->pending[rctx->pending].rctx = NULL;
    }
    rctx->pending = -1;
}

static void on_commit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_commit_now(arg);
}

void srv_arm_commit(srv_t *s)
{
    /* activating an event that is already active only merges flags: safe to call often */
    event_active(s->commit_ev, 0, 0);
}

srv_pending_t *srv_pending_add(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    srv_pending_t *p;
    if (s->n_pending == s->cap_pending && grow_pending(s) != 0) return NULL;
    p = &s->pending[s->n_pending];
    memset(p, 0, sizeof *p);
    p->req = req;
    p->rctx = rctx;
    if (rctx) {
        rctx->pending = (long)s->n_pending;
        rctx->paused = 1;
    }
    s->n_pending++;
    srv_arm_commit(s);
    evhtp_request_pause(req);
    return p;
}

/* Hands a stored event to delivery: the matching, validated subscriptions. */
static void dispatch(srv_t *s, uint64_t seq, const char *resource, const char *subject,
                     const char *type, const char *source, const char *json, size_t len)
{
    size_t n = srv_subs_match(s, resource, subject, type, source);
    if (webhook_dispatch(s->webhook, seq, json, len, srv_subs_match_ids(s), n) != 0)
        srv_log(SRV_LOG_ERROR, "deliver", "out of memory dispatching seq=%llu",
                (unsigned long long)seq);
}

void srv_commit_now(srv_t *s)
{
    size_t n = s->n_pending, n_ev = 0;
    int64_t now = srv_now_us();
    int rc = 0;

    if (n == 0 && store_batch_empty(s->batch) && srv_subs_batch_empty(s)) return;

    /* Subscription changes first, in a commit of their own (rare): their answers and their
     * effect on matching must not depend on the events' commit. */
    srv_subs_commit(s);

    for (size_t i = 0; i < n; i++) {
        const filter_event_t *ev = s->pending[i].ev;
        store_event_in_t *in;
        if (s->pending[i].kind != SRV_PENDING_EVENT) continue;
        in = &s->ins[n_ev++];
        in->id = ev->id;
        in->source = ev->source;
        in->type = ev->type;
        in->subject = ev->subject;
        in->alternativesubject = ev->alternativesubject;
        in->resource = ev->resource;
        in->json = ev->json;
        in->json_len = ev->json_len;
        in->stored_us = now;
    }
    if (n_ev || !store_batch_empty(s->batch)) {
        rc = store_commit(s->store, s->batch, s->ins, n_ev, s->res);
        s->n_batches++;
        if (rc != 0 && rc != STORE_EMAPFULL)
            srv_log(SRV_LOG_ERROR, "store", "commit failed events=%zu error=\"%s\" detail=\"%s\"",
                    n_ev, store_strerror(rc), store_last_error(s->store));
        else if (rc == STORE_EMAPFULL)
            srv_log(SRV_LOG_WARN, "store", "store is full: publishes refused until space is freed");
    }

    /* Detach the batch before answering: a reply may free a connection, whose fini hook then
     * looks for its pending slot. */
    s->n_pending = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        srv_pending_t *p = &s->pending[i];
        if (p->rctx) p->rctx->pending = -1;
        if (p->kind != SRV_PENDING_EVENT) continue;
        const store_result_t *r = &s->res[k++];
        if (r->res == STORE_RES_STORED) {
            s->n_published++;
            dispatch(s, r->seq, p->ev->resource, p->ev->subject, p->ev->type, p->ev->source,
                     p->ev->json, p->ev->json_len);
        }
        if (r->res == STORE_RES_DUP) s->n_duplicates++;
        if (p->req) {
            evhtp_request_t *req = p->req;
            switch (r->res) {
            case STORE_RES_STORED:
            case STORE_RES_DUP:
                srv_reply_empty(req, 200);
                break;
            case STORE_RES_FULL:
                srv_reply_problem(req, 507, "Insufficient Storage",
                                  "The event store is full; the event was not stored.");
                break;
            default:
                srv_reply_problem(req, 500, "Internal Server Error",
                                  "The event could not be stored.");
                break;
            }
        }
        filter_event_free(p->ev);
    }
}

static int redispatch_one(void *ctx, const store_event_t *ev)
{
    dispatch(ctx, ev->seq, ev->resource, ev->subject, ev->type, ev->source, ev->json, ev->json_len);
    return STORE_SCAN_CONTINUE;
}

int srv_deliver_start(srv_t *s)
{
    uint64_t cursor = 0;
    int rc = webhook_start(s->webhook, &cursor);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "deliver", "cannot load delivery state error=\"%s\"",
                webhook_strerror(rc));
        return -1;
    }
    /* Every event after the durable cursor may have deliveries that were neither done nor
     * recorded when the process last stopped: deliver them again (duplicates, never losses). */
    rc = store_scan_all(s->store, cursor, 0, redispatch_one, s, NULL);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "deliver", "cannot re-dispatch events error=\"%s\"",
                store_strerror(rc));
        return -1;
    }
    if (store_last_seq(s->store) > cursor)
        srv_log(SRV_LOG_INFO, "deliver", "re-dispatched events after cursor=%llu last=%llu",
                (unsigned long long)cursor, (unsigned long long)store_last_seq(s->store));
    return 0;
}

void srv_handle_publish(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    srv_identity_t id;
    const char *ct;
    filter_event_limits_t lim;
    filter_event_t *ev = NULL;
    char msg[512];
    size_t len;
    int rc, admin;
    char *body;
    srv_pending_t *p;

    if (srv_authenticate(s, req, &id) != 0) {
        evhtp_headers_add_header(req->headers_out,
                                 evhtp_header_new("WWW-Authenticate", "Bearer", 0, 0));
        srv_reply_empty(req, 401);
        return;
    }
    admin = srv_identity_has_scope(&id, "altinn:events.publish.admin");
    if (!admin && !srv_identity_has_scope(&id, "altinn:events.publish") &&
        !srv_has_platform_access_token(s, req)) {
        srv_identity_fini(&id);
        srv_reply_empty(req, 403);
        return;
    }
    srv_identity_fini(&id);

    ct = evhtp_header_find(req->headers_in, "Content-Type");
    if (!ct || !media_type_is(ct, "application/cloudevents+json")) {
        srv_reply_problem(req, 415, "Unsupported Media Type",
                          "Content-Type must be application/cloudevents+json.");
        return;
    }
    if (!rctx || rctx->too_big) {
        snprintf(msg, sizeof msg, "The event is larger than the limit of %zu bytes.",
                 s->cfg->max_event_bytes);
        srv_reply_problem(req, 413, "Content Too Large", msg);
        return;
    }

    len = evbuffer_get_length(req->buffer_in);
    body = (char *)evbuffer_pullup(req->buffer_in, (ev_ssize_t)len);
    lim.max_bytes = s->cfg->max_event_bytes;
    lim.max_depth = 64;
    rc = filter_event_parse(body ? body : "", len, &lim, &ev, msg, sizeof msg);
    switch (rc) {
    case FILTER_EVENT_OK:
        break;
    case FILTER_EVENT_EINVALID: {
        const char *k = "RequestBody", *m = msg;
        srv_reply_validation(req, &k, (const char *const *)&m, 1);
        return;
    }
    case FILTER_EVENT_EALTINN:
        srv_reply_problem(req, 400, "Bad Request", msg);
        return;
    case FILTER_EVENT_ETOOBIG:
        snprintf(msg, sizeof msg, "The event is larger than the limit of %zu bytes.",
                 s->cfg->max_event_bytes);
        srv_reply_problem(req, 413, "Content Too Large", msg);
        return;
    default:
        srv_reply_empty(req, 500);
        return;
    }

    /* Publish authorization (api.md §6) is allow-all in this build; the admin scope skips it. */
    (void)admin;

    if (s->stopping) {
        filter_event_free(ev);
        srv_reply_problem(req, 503, "Service Unavailable", "The server is shutting down.");
        return;
    }
    p = srv_pending_add(s, req, rctx);
    if (!p) {
        filter_event_free(ev);
        srv_reply_empty(req, 500);
        return;
    }
    p->kind = SRV_PENDING_EVENT;
    p->ev = ev;
}

int srv_publish_init(srv_t *s)
{
    s->commit_ev = event_new(s->base, -1, 0, on_commit, s);
    return s->commit_ev ? 0 : -1;
}
