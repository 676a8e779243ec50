/* server/query: GET /events/api/v1/events (api.md §2), the Altinn polling API. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter/text.h"
#include "server/authz.h"
#include "server/log.h"
#include "server/params.h"
#include "server/server.h"

#define MAX_TYPES 32
/* The most events one request examines; past it the answer carries a `next` that points beyond
 * what was examined, so skipped events never stall the cursor and a request's cost is bounded. */
#define MAX_EXAMINED 10000

typedef struct {
    srv_t *s;
    char consumer[300];
    const char *subject, *altsubject;
    const char *types[MAX_TYPES];
    size_t n_types;
    size_t size;
    int64_t visible_before; /* stored_us must be below this (settle window); 0 = no window */
    filter_buf_t body;
    size_t count;
    filter_buf_t last_id, last_examined_id; /* reused buffers: no allocation per event */
    char *first_subject;
    int settled_stop, page_full, failed;
} scan_ctx_t;

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int on_event(void *arg, const store_event_t *ev)
{
    scan_ctx_t *c = arg;
    if (c->visible_before && ev->stored_us >= c->visible_before) {
        /* newer events are newer still: the rest of the scan is inside the window too */
        c->settled_stop = 1;
        return STORE_SCAN_STOP;
    }
    filter_buf_reset(&c->last_examined_id);
    filter_buf_puts(&c->last_examined_id, ev->id);
    if (c->subject && (!ev->subject || strcmp(ev->subject, c->subject) != 0))
        return STORE_SCAN_CONTINUE;
    if (c->altsubject &&
        (!ev->alternativesubject || strcmp(ev->alternativesubject, c->altsubject) != 0))
        return STORE_SCAN_CONTINUE;
    if (c->n_types) {
        size_t i;
        for (i = 0; i < c->n_types; i++)
            if (filter_like_match(c->types[i], strlen(c->types[i]), ev->type, strlen(ev->type)))
                break;
        if (i == c->n_types) return STORE_SCAN_CONTINUE;
    }
    /* Subscribe authorization per event (api.md §6): others are skipped, the scan goes on */
    if (c->s->authz && !srv_authz_check(c->s->authz, SRV_AUTHZ_SUBSCRIBE, ev->resource, c->consumer,
                                        ev->subject ? ev->subject : ""))
        return STORE_SCAN_CONTINUE;
    filter_buf_puts(&c->body, c->count ? "," : "[");
    filter_buf_append(&c->body, ev->json, ev->json_len);
    if (c->count == 0) c->first_subject = xstrdup(ev->subject ? ev->subject : "");
    filter_buf_reset(&c->last_id);
    filter_buf_puts(&c->last_id, ev->id);
    if (!c->first_subject || filter_buf_failed(&c->last_id) ||
        filter_buf_failed(&c->last_examined_id))
        c->failed = 1;
    if (++c->count >= c->size) {
        c->page_full = 1;
        return STORE_SCAN_STOP;
    }
    return STORE_SCAN_CONTINUE;
}

void srv_handle_query(srv_t *s, evhtp_request_t *req)
{
    srv_param_t params[SRV_MAX_PARAMS];
    char *storage = NULL;
    int np;
    srv_identity_t id;
    const char *resource = NULL, *after = NULL, *size_s = NULL, *alt_hdr;
    const char *vkeys[2], *vmsgs[2];
    char size_msg[160];
    size_t nv = 0;
    long size = 50;
    scan_ctx_t c;
    uint64_t after_seq = 0;
    size_t examined = 0;
    int rc, reached_end;
    filter_buf_t link = {0};

    if (srv_authenticate(s, req, &id) != 0) {
        evhtp_headers_add_header(req->headers_out,
                                 evhtp_header_new("WWW-Authenticate", "Bearer", 0, 0));
        srv_reply_empty(req, 401);
        return;
    }
    if (!srv_identity_has_scope(&id, "altinn:events.subscribe")) {
        srv_identity_fini(&id);
        srv_reply_empty(req, 403);
        return;
    }
    memset(&c, 0, sizeof c);
    if (srv_identity_consumer(&id, c.consumer, sizeof c.consumer) != 0) c.consumer[0] = '\0';
    srv_identity_fini(&id);

    np = srv_params_parse(req->uri ? (const char *)req->uri->query_raw : NULL, params,
                          SRV_MAX_PARAMS, &storage);
    if (np < 0) {
        free(storage);
        srv_reply_problem(req, 400, "Bad Request", "Too many query parameters.");
        return;
    }
    for (int i = 0; i < np; i++) {
        const char *n = params[i].name;
        if (strcasecmp(n, "resource") == 0) {
            if (!resource) resource = params[i].value;
        } else if (strcasecmp(n, "after") == 0) {
            if (!after) after = params[i].value;
        } else if (strcasecmp(n, "subject") == 0) {
            if (!c.subject) c.subject = params[i].value;
        } else if (strcasecmp(n, "size") == 0) {
            if (!size_s) size_s = params[i].value;
        } else if (strcasecmp(n, "type") == 0) {
            if (c.n_types == MAX_TYPES) {
                free(storage);
                srv_reply_problem(req, 400, "Bad Request", "Too many 'type' parameters.");
                return;
            }
            c.types[c.n_types++] = params[i].value;
        }
    }
    if (resource && !*resource) resource = NULL;
    if (c.subject && !*c.subject) c.subject = NULL;
    if (after && !*after) after = NULL;

    /* Model validation first, all problems together, as ASP.NET Core does. */
    if (!resource) {
        vkeys[nv] = "resource";
        vmsgs[nv++] = "The resource field is required.";
    }
    if (size_s && *size_s) {
        char *end;
        errno = 0;
        long v = strtol(size_s, &end, 10);
        if (errno || *end || end == size_s || v > INT32_MAX || v < INT32_MIN) {
            snprintf(size_msg, sizeof size_msg, "The value '%.100s' is not valid for size.",
                     size_s);
            vkeys[nv] = "size";
            vmsgs[nv++] = size_msg;
        } else {
            size = v;
        }
    }
    if (nv) {
        srv_reply_validation(req, vkeys, vmsgs, nv);
        free(storage);
        return;
    }
    if (strncmp(resource, "urn:altinn:resource:", 20) != 0) {
        srv_reply_problem(req, 400, "Bad Request",
                          "The 'resource' parameter must begin with `urn:altinn:resource:`");
        free(storage);
        return;
    }
    if (!after) {
        srv_reply_problem(req, 400, "Bad Request", "The 'after' parameter must be defined.");
        free(storage);
        return;
    }
    alt_hdr = evhtp_header_find(req->headers_in, "Altinn-AlternativeSubject");
    if (alt_hdr && !*alt_hdr) alt_hdr = NULL;
    if (c.subject && alt_hdr) {
        srv_reply_problem(req, 400, "Bad Request",
                          "Only one of 'subject' or 'alternativeSubject' can be defined.");
        free(storage);
        return;
    }
    c.altsubject = alt_hdr;
    if (size <= 0) size = 50;
    if (size > 1000) size = 1000;
    c.size = (size_t)size;
    c.s = s;
    if (s->cfg->settle_us > 0) c.visible_before = srv_now_us() - s->cfg->settle_us;

    if (strcmp(after, "0") != 0 && store_seq_of_id(s->store, after, strlen(after), &after_seq) != 0)
        after_seq = 0; /* an id that is not stored means from the beginning */

    rc = store_scan_resource(s->store, resource, after_seq, MAX_EXAMINED, on_event, &c, &examined);
    if (rc != 0 || c.failed || filter_buf_failed(&c.body)) {
        srv_log(SRV_LOG_ERROR, "query", "scan failed error=\"%s\"", store_strerror(rc));
        srv_reply_problem(req, 500, "Internal Server Error", "The events could not be read.");
        goto out;
    }
    reached_end = !c.page_full && !c.settled_stop && examined < MAX_EXAMINED;
    if (c.count == 0) filter_buf_puts(&c.body, "[");
    filter_buf_puts(&c.body, "]");

    /* next: after the last event returned, or, when the bounded scan stopped early, after the last
     * event examined; none for an empty page that reached the end. */
    {
        const char *next_after = NULL;
        if (!reached_end && !c.page_full && !c.settled_stop && c.last_examined_id.len)
            next_after = c.last_examined_id.data;
        else if (c.count)
            next_after = c.last_id.data;
        if (next_after) {
            filter_buf_printf(&link, "%s/events/api/v1/events?after=", s->base_url);
            srv_params_link_value(&link, next_after, strlen(next_after));
            /* every other parameter of the request, in the order it came */
            for (int i = 0; i < np; i++) {
                if (strcasecmp(params[i].name, "after") == 0) continue;
                filter_buf_puts(&link, "&");
                srv_params_link_value(&link, params[i].name, strlen(params[i].name));
                filter_buf_puts(&link, "=");
                srv_params_link_value(&link, params[i].value, params[i].value_len);
            }
            if (c.altsubject && c.first_subject) {
                filter_buf_puts(&link, "&subject=");
                srv_params_link_value(&link, c.first_subject, strlen(c.first_subject));
            }
            if (filter_buf_failed(&link)) {
                srv_reply_empty(req, 500);
                goto out;
            }
            evhtp_headers_add_header(req->headers_out, evhtp_header_new("next", link.data, 0, 1));
        }
    }
    srv_reply_text(req, 200, "application/cloudevents+json; charset=utf-8", c.body.data,
                   c.body.len);
out:
    filter_buf_fini(&c.body);
    filter_buf_fini(&link);
    filter_buf_fini(&c.last_id);
    filter_buf_fini(&c.last_examined_id);
    free(c.first_subject);
    free(storage);
}
