/* server/audit: the audit trail (records added to the group commit's batches, and
 * GET /events/api/v1/audit) and the retention timer. See audit.h. */
#include "server/audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/text.h"
#include "server/log.h"
#include "server/params.h"

#define AUDIT_SIZE_DEFAULT 50
#define AUDIT_SIZE_MAX 1000
/* The most records one request examines (filters may skip many); past it the answer carries a
 * `next` beyond what was examined, so a request's cost stays bounded. */
#define AUDIT_MAX_EXAMINED 10000
#define RETENTION_PERIOD_US 1000000

/* ---- recording ---- */

static void log_fail(const char *what, int rc)
{
    srv_log(SRV_LOG_ERROR, "audit", "cannot record %s error=\"%s\"", what, store_strerror(rc));
}

void srv_audit_publishes(srv_t *s, store_batch_t *b, const srv_pending_t *p, size_t n)
{
    int64_t now = srv_now_us();
    (void)s;
    for (size_t i = 0; i < n; i++) {
        if (p[i].kind != SRV_PENDING_EVENT || !p[i].ev) continue;
        store_audit_t a = {
            .kind = STORE_AUDIT_PUBLISH,
            .time_us = now,
            .who = p[i].who,
            .event_id = p[i].ev->id,
            .source = p[i].ev->source,
            .resource = p[i].ev->resource,
        };
        int rc = store_batch_put_audit(b, &a);
        if (rc != 0) log_fail("a publish", rc);
    }
}

int srv_audit_sub(store_batch_t *b, const char *action, uint64_t sub_id, const char *who)
{
    store_audit_t a = {
        .kind = STORE_AUDIT_SUB,
        .time_us = srv_now_us(),
        .sub_id = sub_id,
        .who = who,
        .action = action,
    };
    int rc = store_batch_put_audit(b, &a);
    if (rc != 0) log_fail("a subscription change", rc);
    return rc;
}

void srv_audit_on_attempt(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt, int status,
                          const char *error, int64_t duration_us)
{
    srv_t *s = ctx;
    char msg[64];
    if ((!error || !*error) && (status < 200 || status > 299)) {
        /* an answer that was not 2xx: the engine gives no text, the status says it */
        snprintf(msg, sizeof msg, "HTTP %d", status);
        error = msg;
    }
    store_audit_t a = {
        .kind = STORE_AUDIT_DELIVERY,
        .time_us = srv_now_us(),
        .sub_id = sub_id,
        .seq = seq,
        .attempt = attempt,
        .status = status,
        .duration_us = duration_us < 0 ? 0 : duration_us,
        .error = error,
    };
    int rc = store_batch_put_audit(s->batch, &a);
    if (rc != 0)
        log_fail("a delivery attempt", rc);
    else
        srv_arm_commit(s);
}

/* ---- retention ---- */

static void on_prune_timer(evutil_socket_t fd, short what, void *arg)
{
    srv_t *s = arg;
    (void)fd;
    (void)what;
    if (s->stopping) return;
    int64_t older_than = srv_now_us() - s->cfg->retention_us;
    int rc = store_prune_due(s->store, older_than);
    if (rc < 0) {
        srv_log(SRV_LOG_ERROR, "retention", "cannot check for old events error=\"%s\"",
                store_strerror(rc));
        return;
    }
    if (rc == 0) return; /* nothing old: no commit at all */
    rc = store_batch_prune(s->batch, older_than, SRV_PRUNE_MAX);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "retention", "cannot queue a prune pass error=\"%s\"",
                store_strerror(rc));
        return;
    }
    srv_log(SRV_LOG_DEBUG, "retention", "prune pass queued older_than_us=%lld",
            (long long)older_than);
    srv_arm_commit(s);
}

int srv_retention_start(srv_t *s)
{
    struct timeval tv = {RETENTION_PERIOD_US / 1000000, RETENTION_PERIOD_US % 1000000};
    if (s->cfg->retention_us <= 0) return 0;
    s->retention_ev = event_new(s->base, -1, EV_PERSIST, on_prune_timer, s);
    if (!s->retention_ev || event_add(s->retention_ev, &tv) != 0) return -1;
    return 0;
}

void srv_retention_stop(srv_t *s)
{
    if (s->retention_ev) event_free(s->retention_ev);
    s->retention_ev = NULL;
}

/* ---- GET /events/api/v1/audit ---- */

typedef struct {
    const char *after, *size, *event_id, *sub_id; /* decoded values (first of each), or NULL */
    size_t event_id_len;
} audit_query_t;

/* Binds the known parameters of the query (a copy in *storage, freed by the caller): the first of
 * each name counts. 0, or -1 with too many parameters or no memory. */
static int parse_query(const char *raw, audit_query_t *q, char **storage)
{
    srv_param_t params[SRV_MAX_PARAMS];
    int np = srv_params_parse(raw, params, SRV_MAX_PARAMS, storage);
    memset(q, 0, sizeof *q);
    if (np < 0) return -1;
    for (int i = 0; i < np; i++) {
        const char *k = params[i].name;
        char *v = params[i].value;
        if (strcasecmp(k, "after") == 0 && !q->after)
            q->after = v;
        else if (strcasecmp(k, "size") == 0 && !q->size)
            q->size = v;
        else if (strcasecmp(k, "eventId") == 0 && !q->event_id) {
            q->event_id = v;
            q->event_id_len = params[i].value_len;
        } else if (strcasecmp(k, "subscriptionId") == 0 && !q->sub_id)
            q->sub_id = v;
    }
    return 0;
}

/* A decimal u64 (no sign, no spaces): 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

typedef struct {
    uint64_t sub_id;
    int by_sub;
    const char *event_id;
    size_t size, count;
    uint64_t last_returned, last_examined;
    filter_buf_t body;
} scan_ctx_t;

static void put_str(filter_buf_t *b, const char *key, const char *v)
{
    filter_buf_printf(b, ",\"%s\":", key);
    if (filter_buf_json_string(b, v, strlen(v)) != 0)
        filter_buf_json_string(b, "(invalid UTF-8)", 15);
}

static void record_json(filter_buf_t *b, uint64_t aseq, const store_audit_t *a)
{
    char t[48];
    filter_time_format(a->time_us, t, sizeof t);
    filter_buf_printf(b, "{\"id\":%llu,\"time\":\"%s\"", (unsigned long long)aseq, t);
    switch (a->kind) {
    case STORE_AUDIT_PUBLISH:
        filter_buf_puts(b, ",\"kind\":\"publish\"");
        if (*a->who) put_str(b, "who", a->who);
        put_str(b, "eventId", a->event_id);
        put_str(b, "source", a->source);
        put_str(b, "resource", a->resource);
        filter_buf_printf(b, ",\"sequence\":%llu", (unsigned long long)a->seq);
        put_str(b, "outcome", a->action);
        break;
    case STORE_AUDIT_SUB:
        filter_buf_puts(b, ",\"kind\":\"subscription\"");
        if (*a->who) put_str(b, "who", a->who);
        put_str(b, "action", a->action);
        filter_buf_printf(b, ",\"subscriptionId\":%llu", (unsigned long long)a->sub_id);
        break;
    case STORE_AUDIT_DELIVERY:
        filter_buf_puts(b, ",\"kind\":\"delivery\"");
        filter_buf_printf(b, ",\"subscriptionId\":%llu", (unsigned long long)a->sub_id);
        if (*a->event_id) put_str(b, "eventId", a->event_id);
        if (*a->source) put_str(b, "source", a->source);
        if (*a->resource) put_str(b, "resource", a->resource);
        filter_buf_printf(b, ",\"sequence\":%llu,\"attempt\":%u,\"status\":%d",
                          (unsigned long long)a->seq, (unsigned)a->attempt, (int)a->status);
        if (*a->error) put_str(b, "error", a->error);
        filter_buf_printf(b, ",\"durationMs\":%.3f", (double)a->duration_us / 1000.0);
        break;
    }
    filter_buf_puts(b, "}");
}

static int on_record(void *ctx, uint64_t aseq, const store_audit_t *a)
{
    scan_ctx_t *c = ctx;
    c->last_examined = aseq;
    if (c->by_sub && (a->kind == STORE_AUDIT_PUBLISH || a->sub_id != c->sub_id))
        return STORE_SCAN_CONTINUE;
    if (c->event_id && (a->kind == STORE_AUDIT_SUB || strcmp(a->event_id, c->event_id) != 0))
        return STORE_SCAN_CONTINUE;
    filter_buf_puts(&c->body, c->count ? "," : "[");
    record_json(&c->body, aseq, a);
    c->count++;
    c->last_returned = aseq;
    return c->count >= c->size ? STORE_SCAN_STOP : STORE_SCAN_CONTINUE;
}

/* Appends s percent-encoded for a query value (unreserved characters kept). */
static void put_encoded(filter_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == ':' || ch == '/') {
            filter_buf_append(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            filter_buf_append(b, e, 3);
        }
    }
}

static void handle_audit(srv_t *s, evhtp_request_t *req)
{
    srv_identity_t id;
    audit_query_t q;
    char *storage = NULL;
    uint64_t after = 0;
    long size = AUDIT_SIZE_DEFAULT;
    scan_ctx_t c;
    size_t examined = 0;
    const char *keys[3], *msgs[3];
    size_t nv = 0;
    filter_buf_t link = {0};

    if (srv_authenticate(s, req, &id) != 0) {
        evhtp_headers_add_header(req->headers_out,
                                 evhtp_header_new("WWW-Authenticate", "Bearer", 0, 0));
        srv_reply_empty(req, 401);
        return;
    }
    int admin = srv_identity_has_scope(&id, "altinn:events.admin");
    srv_identity_fini(&id);
    if (!admin) {
        srv_reply_empty(req, 403);
        return;
    }
    memset(&c, 0, sizeof c);
    if (parse_query(req->uri ? (const char *)req->uri->query_raw : NULL, &q, &storage) != 0) {
        /* storage NULL: no memory; otherwise the query had too many parameters */
        if (storage)
            srv_reply_problem(req, 400, "Bad Request", "Too many query parameters.");
        else
            srv_reply_empty(req, 500);
        free(storage);
        return;
    }
    if (q.after && *q.after && parse_u64(q.after, &after) != 0) {
        keys[nv] = "after";
        msgs[nv++] = "The value is not valid for after: expected an audit record number.";
    }
    if (q.size && *q.size) {
        char *end;
        errno = 0;
        long v = strtol(q.size, &end, 10);
        if (errno || *end || end == q.size) {
            keys[nv] = "size";
            msgs[nv++] = "The value is not valid for size.";
        } else {
            size = v;
        }
    }
    if (q.sub_id && *q.sub_id) {
        if (parse_u64(q.sub_id, &c.sub_id) != 0) {
            keys[nv] = "subscriptionId";
            msgs[nv++] = "The value is not valid for subscriptionId.";
        }
        c.by_sub = 1;
    }
    if (nv) {
        srv_reply_validation(req, keys, msgs, nv);
        free(storage);
        return;
    }
    if (q.event_id && *q.event_id) c.event_id = q.event_id;
    if (size <= 0) size = AUDIT_SIZE_DEFAULT;
    if (size > AUDIT_SIZE_MAX) size = AUDIT_SIZE_MAX;
    c.size = (size_t)size;

    int rc = store_scan_audit(s->store, after, AUDIT_MAX_EXAMINED, on_record, &c, &examined);
    if (rc != 0 || filter_buf_failed(&c.body)) {
        srv_log(SRV_LOG_ERROR, "audit", "scan failed error=\"%s\"", store_strerror(rc));
        srv_reply_problem(req, 500, "Internal Server Error", "The audit trail could not be read.");
        goto out;
    }
    filter_buf_puts(&c.body, c.count ? "]" : "[]");

    /* next: after the last record returned, or, when the bounded scan stopped before the page
     * filled, after the last one examined; none for an empty page that reached the end */
    uint64_t next_after = 0;
    if (c.count == c.size)
        next_after = c.last_returned;
    else if (examined >= AUDIT_MAX_EXAMINED)
        next_after = c.last_examined;
    else if (c.count)
        next_after = c.last_returned;
    if (next_after) {
        filter_buf_printf(&link, "%s/events/api/v1/audit?after=%llu&size=%ld", s->base_url,
                          (unsigned long long)next_after, size);
        if (c.event_id) {
            filter_buf_puts(&link, "&eventId=");
            put_encoded(&link, c.event_id);
        }
        if (c.by_sub)
            filter_buf_printf(&link, "&subscriptionId=%llu", (unsigned long long)c.sub_id);
        if (filter_buf_failed(&link)) {
            srv_reply_empty(req, 500);
            goto out;
        }
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("next", link.data, 0, 1));
    }
    srv_reply_text(req, 200, "application/json; charset=utf-8", c.body.data, c.body.len);
out:
    filter_buf_fini(&c.body);
    filter_buf_fini(&link);
    free(storage);
}

/* Exact, case-insensitive path with one optional trailing slash, as the other routes. */
static int path_is(const char *path, const char *want)
{
    size_t n = strlen(want);
    if (strncasecmp(path, want, n) != 0) return 0;
    return path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0');
}

int srv_audit_route(srv_t *s, evhtp_request_t *req, const char *path)
{
    if (!path_is(path, "/events/api/v1/audit")) return 0;
    if (evhtp_request_get_method(req) != htp_method_GET) {
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("Allow", "GET", 0, 0));
        srv_reply_empty(req, 405);
        return 1;
    }
    handle_audit(s, req);
    return 1;
}
