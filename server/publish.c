/* server/publish: POST /events/api/v1/events and the group commit (architecture.md, "The write
 * path"). A publish is parsed and validated at once, then waits (paused) in the open batch; one
 * commit event per loop pass writes the whole batch in one transaction with one durable sync and
 * only then answers every waiting request. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/log.h"
#include "server/server.h"

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

void srv_commit_now(srv_t *s)
{
    size_t n = s->n_pending;
    int64_t now = srv_now_us();
    int rc;

    if (n == 0) return;
    for (size_t i = 0; i < n; i++) {
        const filter_event_t *ev = s->pending[i].ev;
        store_event_in_t *in = &s->ins[i];
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
    rc = store_append_batch(s->store, s->ins, n, s->res);
    s->n_batches++;
    if (rc != 0 && rc != STORE_EMAPFULL)
        srv_log(SRV_LOG_ERROR, "store", "commit failed events=%zu error=\"%s\" detail=\"%s\"", n,
                store_strerror(rc), store_last_error(s->store));
    else if (rc == STORE_EMAPFULL)
        srv_log(SRV_LOG_WARN, "store", "store is full: publishes refused until space is freed");

    /* Detach the batch before answering: a reply may free a connection, whose fini hook then
     * looks for its pending slot. */
    s->n_pending = 0;
    for (size_t i = 0; i < n; i++) {
        srv_pending_t *p = &s->pending[i];
        if (s->res[i].res == STORE_RES_STORED) s->n_published++;
        if (s->res[i].res == STORE_RES_DUP) s->n_duplicates++;
        if (p->rctx) p->rctx->pending = -1;
        if (p->req) {
            evhtp_request_t *req = p->req;
            switch (s->res[i].res) {
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
    if (s->n_pending == s->cap_pending && grow_pending(s) != 0) {
        filter_event_free(ev);
        srv_reply_empty(req, 500);
        return;
    }
    s->pending[s->n_pending].req = req;
    s->pending[s->n_pending].rctx = rctx;
    s->pending[s->n_pending].ev = ev;
    rctx->pending = (long)s->n_pending;
    if (s->n_pending++ == 0) event_active(s->commit_ev, 0, 0);
    rctx->paused = 1;
    evhtp_request_pause(req);
}

int srv_publish_init(srv_t *s)
{
    s->commit_ev = event_new(s->base, -1, 0, on_commit, s);
    return s->commit_ev ? 0 : -1;
}
