/* server/publish: POST /events/api/v1/events and the group commit (architecture.md, "The write
 * path"). A publish is parsed and validated at once, then waits (paused) in the open batch; one
 * commit event per loop pass writes the whole batch in one transaction with one durable sync and
 * only then answers every waiting request. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/util.h"
#include "server/log.h"
#include "server/server.h"
#include "server/authz.h"
#include "server/binary.h"
#include "server/subs.h"
#include "webhook/webhook.h"

#define BATCH_LIMIT_FACTOR 64 /* a batch body may be this many times --max-event-bytes */
#define BATCH_MAX_EVENTS 1000

enum { MODE_STRUCTURED, MODE_BATCH, MODE_BINARY };

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

/* The body limit of a publish request: a batch may hold many events (each still limited). */
size_t srv_publish_body_limit(const srv_t *s, const char *content_type)
{
    if (content_type && media_type_is(content_type, "application/cloudevents-batch+json"))
        return s->cfg->max_event_bytes * BATCH_LIMIT_FACTOR;
    return s->cfg->max_event_bytes;
}

static void reply_too_large(srv_t *s, evhtp_request_t *req, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "%s is larger than the limit of %zu bytes.", what,
             s->cfg->max_event_bytes);
    srv_reply_problem(req, 413, "Content Too Large", msg);
}

/* Answers a parse or validation failure of filter_event_*. */
static void reply_event_error(srv_t *s, evhtp_request_t *req, int rc, const char *msg)
{
    switch (rc) {
    case FILTER_EVENT_EINVALID: {
        const char *k = "RequestBody";
        srv_reply_validation(req, &k, &msg, 1);
        return;
    }
    case FILTER_EVENT_EALTINN:
        srv_reply_problem(req, 400, "Bad Request", msg);
        return;
    case FILTER_EVENT_ETOOBIG:
        reply_too_large(s, req, "The event");
        return;
    default:
        srv_reply_empty(req, 500);
        return;
    }
}

/* Binary mode (CloudEvents HTTP binding §3.1): the request's headers, Content-Type and body go to
 * srv_binary_event (binary.c), which needs no evhtp. */
typedef struct {
    srv_header_t *v;
    size_t n, cap;
} hdr_list_t;

static int count_header(evhtp_kv_t *kv, void *arg)
{
    (void)kv;
    ((hdr_list_t *)arg)->cap++;
    return 0;
}

static int take_header(evhtp_kv_t *kv, void *arg)
{
    hdr_list_t *l = arg;
    if (l->n < l->cap)
        l->v[l->n++] = (srv_header_t){kv->key, kv->klen, kv->val, kv->val ? kv->vlen : 0};
    return 0;
}

static int binary_event(evhtp_request_t *req, const char *ct, const char *body, size_t len,
                        filter_event_t **out, char *msg, size_t msglen)
{
    hdr_list_t l = {NULL, 0, 0};
    int rc;
    evhtp_kvs_for_each(req->headers_in, count_header, &l);
    l.v = calloc(l.cap ? l.cap : 1, sizeof *l.v);
    if (!l.v) return FILTER_EVENT_ENOMEM;
    evhtp_kvs_for_each(req->headers_in, take_header, &l);
    rc = srv_binary_event(l.v, l.n, ct, body, len, out, msg, msglen);
    free(l.v);
    return rc;
}

/* Batch mode: a JSON array of structured events, all valid or none stored. Returns the number of
 * events (>= 0) in *evs, or -1 after answering the request. */
static long batch_events(srv_t *s, evhtp_request_t *req, const char *body, size_t len,
                         filter_event_t ***evs_out)
{
    filter_json_limits_t lim = {s->cfg->max_event_bytes * BATCH_LIMIT_FACTOR, 65, 0};
    filter_json_doc_t *doc;
    const filter_json_t *root;
    filter_event_t **evs;
    char err[256], msg[400];
    size_t n;

    if (filter_json_parse(body, len, &lim, &doc, err, sizeof err) != 0) {
        const char *k = "RequestBody", *m = msg;
        snprintf(msg, sizeof msg, "Invalid JSON: %s", err);
        srv_reply_validation(req, &k, &m, 1);
        return -1;
    }
    root = filter_json_root(doc);
    if (root->type != FILTER_JSON_ARRAY) {
        const char *k = "RequestBody", *m = "A batch must be a JSON array of CloudEvents.";
        srv_reply_validation(req, &k, &m, 1);
        filter_json_doc_free(doc);
        return -1;
    }
    n = root->count;
    if (n > BATCH_MAX_EVENTS) {
        const char *k = "RequestBody", *m = msg;
        snprintf(msg, sizeof msg, "A batch holds at most %d events.", BATCH_MAX_EVENTS);
        srv_reply_validation(req, &k, &m, 1);
        filter_json_doc_free(doc);
        return -1;
    }
    evs = calloc(n ? n : 1, sizeof *evs);
    if (!evs) {
        filter_json_doc_free(doc);
        srv_reply_empty(req, 500);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = filter_event_from_json(root->items[i], &evs[i], err, sizeof err);
        if (rc == 0 && evs[i]->json_len > s->cfg->max_event_bytes) {
            snprintf(msg, sizeof msg, "Event at index %zu is larger than the limit of %zu bytes.",
                     i, s->cfg->max_event_bytes);
            srv_reply_problem(req, 413, "Content Too Large", msg);
        } else if (rc != 0) {
            snprintf(msg, sizeof msg, "Event at index %zu: %s", i, err);
            reply_event_error(s, req, rc, msg);
        } else {
            continue;
        }
        for (size_t j = 0; j <= i; j++)
            filter_event_free(evs[j]);
        free(evs);
        filter_json_doc_free(doc);
        return -1;
    }
    filter_json_doc_free(doc);
    *evs_out = evs;
    return (long)n;
}

void srv_handle_publish(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    srv_identity_t id;
    const char *ct;
    filter_event_limits_t lim;
    filter_event_t *ev = NULL, **evs = NULL;
    char msg[512];
    size_t len;
    long n = 1;
    int rc, admin, mode;
    char *body, consumer[300];
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
    if (srv_identity_consumer(&id, consumer, sizeof consumer) != 0) consumer[0] = '\0';
    srv_identity_fini(&id);

    /* The content type decides the mode (api.md §1): structured, batch, or binary when ce-
     * headers carry the attributes; anything else is 415. */
    ct = evhtp_header_find(req->headers_in, "Content-Type");
    if (ct && media_type_is(ct, "application/cloudevents+json"))
        mode = MODE_STRUCTURED;
    else if (ct && media_type_is(ct, "application/cloudevents-batch+json"))
        mode = MODE_BATCH;
    else if (evhtp_header_find(req->headers_in, "ce-specversion") &&
             (!ct || strncasecmp(ct, "application/cloudevents", 23) != 0))
        mode = MODE_BINARY; /* without Content-Type: an event without data, or opaque bytes */
    else {
        srv_reply_problem(req, 415, "Unsupported Media Type",
                          "Content-Type must be application/cloudevents+json, "
                          "application/cloudevents-batch+json, or the data's media type with "
                          "ce- headers (binary mode).");
        return;
    }
    if (!rctx || rctx->too_big) {
        reply_too_large(s, req, mode == MODE_BATCH ? "The batch" : "The event");
        return;
    }

    len = evbuffer_get_length(req->buffer_in);
    body = len ? (char *)evbuffer_pullup(req->buffer_in, (ev_ssize_t)len) : (char *)"";
    if (mode == MODE_BATCH) {
        n = batch_events(s, req, body, len, &evs);
        if (n < 0) return;
    } else {
        if (mode == MODE_STRUCTURED) {
            lim.max_bytes = s->cfg->max_event_bytes;
            lim.max_depth = 64;
            rc = filter_event_parse(body, len, &lim, &ev, msg, sizeof msg);
        } else {
            rc = binary_event(req, ct, body, len, &ev, msg, sizeof msg);
        }
        if (rc != FILTER_EVENT_OK) {
            reply_event_error(s, req, rc, msg);
            return;
        }
        evs = &ev;
    }

    /* Publish authorization (api.md §6), per event; the admin scope skips it. */
    for (long i = 0; !admin && s->authz && i < n; i++) {
        if (srv_authz_check(s->authz, SRV_AUTHZ_PUBLISH, evs[i]->resource, consumer,
                            evs[i]->subject ? evs[i]->subject : ""))
            continue;
        for (long j = 0; j < n; j++)
            filter_event_free(evs[j]);
        if (evs != &ev) free(evs);
        srv_reply_empty(req, 403);
        return;
    }

    if (s->stopping || n == 0) {
        for (long i = 0; i < n; i++)
            filter_event_free(evs[i]);
        if (evs != &ev) free(evs);
        if (n == 0)
            srv_reply_empty(req, 200); /* an empty batch stores nothing */
        else
            srv_reply_problem(req, 503, "Service Unavailable", "The server is shutting down.");
        return;
    }
    for (long i = 0; i < n; i++) {
        /* the first entry carries the request and answers for the whole group */
        p = i == 0 ? srv_pending_add(s, req, rctx) : srv_pending_add(s, NULL, NULL);
        if (!p) {
            /* entries already added stay and are stored: answer for them is lost only if the
             * very first failed, which then answers here */
            for (long j = i; j < n; j++)
                filter_event_free(evs[j]);
            if (i == 0) srv_reply_empty(req, 500);
            break;
        }
        p->kind = SRV_PENDING_EVENT;
        p->ev = evs[i];
        p->group = i == 0 ? (size_t)n : 0;
        p->who = consumer[0] ? strdup(consumer) : NULL; /* NULL: recorded as "" */
    }
    if (evs != &ev) free(evs);
}
