/* server/http: libevhtp setup, exact routing, per-request state, authentication and replies. */
#include "server/http.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "server/audit.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/app.h"
#include "server/subs.h"
#include "server/openapi.h"

int64_t srv_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* ---- replies ---- */

const char *srv_problem_type(int status)
{
    switch (status) {
    case 400:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.1";
    case 401:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.2";
    case 403:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.4";
    case 404:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.5";
    case 405:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.6";
    case 413:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.14";
    case 415:
        return "https://tools.ietf.org/html/rfc9110#section-15.5.16";
    case 507:
        return "https://tools.ietf.org/html/rfc4918#section-11.5";
    default:
        return "https://tools.ietf.org/html/rfc9110#section-15.6.1";
    }
}

static void set_header(evhtp_request_t *req, const char *k, const char *v)
{
    evhtp_headers_add_header(req->headers_out, evhtp_header_new(k, v, 0, 1));
}

static srv_req_t *req_ctx(evhtp_request_t *req)
{
    evhtp_hooks_t *hooks = evhtp_request_get_hooks(req);
    return hooks ? hooks->on_request_fini_arg : NULL;
}

/* Every reply goes out here: it notes the status and body size for the request log. */
/* RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) received before a request
 * line. libevhtp stalls on one instead, and input already buffered when a reply goes out is parsed
 * by libevhtp directly, past on_read's guard: a request followed by a stray CRLF and a pipelined
 * request left that one unanswered until the timeout (found by fuzzing, test/fuzz/fuzz_http.c).
 * A request is answered only once it has been read in full, so what is buffered now follows it. */
static void drop_empty_lines(evhtp_request_t *req)
{
    evhtp_connection_t *conn = evhtp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhtp_connection_get_bev(conn) : NULL;
    struct evbuffer *in = bev ? bufferevent_get_input(bev) : NULL;
    unsigned char *p;
    while (in && (p = evbuffer_pullup(in, 1)) && (*p == '\r' || *p == '\n'))
        evbuffer_drain(in, 1);
}

static void send_reply(evhtp_request_t *req, srv_req_t *rctx, int status)
{
    if (rctx) {
        rctx->sent_status = status;
        rctx->sent_bytes = evbuffer_get_length(req->buffer_out);
    }
    drop_empty_lines(req);
    evhtp_send_reply(req, (evhtp_res)status);
}

/* Sends a response. libevhtp (1.2.18) does not go on to a pipelined request that is already in the
 * input buffer after a reply sent from inside the request callback; it does after a paused request
 * is answered and resumed. So a reply made while the handler runs is only recorded here, and
 * on_request pauses the request and sends it from the flush event; a reply made later (a publish
 * answered by its commit) is sent and resumed at once. */
static void finish(evhtp_request_t *req, int status)
{
    srv_req_t *rctx = req_ctx(req);
    if (rctx && rctx->in_handler) {
        rctx->status = status;
        return;
    }
    send_reply(req, rctx, status);
    if (rctx && rctx->paused) evhtp_request_resume(req);
}

void srv_reply_empty(evhtp_request_t *req, int status)
{
    finish(req, status);
}

void srv_reply_text(evhtp_request_t *req, int status, const char *ctype, const char *body,
                    size_t len)
{
    if (ctype) set_header(req, "Content-Type", ctype);
    if (len) evbuffer_add(req->buffer_out, body, len);
    finish(req, status);
}

static void reply_buf(evhtp_request_t *req, int status, const char *ctype, filter_buf_t *b)
{
    if (filter_buf_failed(b)) {
        filter_buf_fini(b);
        srv_reply_empty(req, 500);
        return;
    }
    srv_reply_text(req, status, ctype, b->data, b->len);
    filter_buf_fini(b);
}

static void problem_head(filter_buf_t *b, int status, const char *title)
{
    filter_buf_puts(b, "{\"type\":");
    filter_buf_json_string(b, srv_problem_type(status), strlen(srv_problem_type(status)));
    filter_buf_puts(b, ",\"title\":");
    filter_buf_json_string(b, title, strlen(title));
    filter_buf_printf(b, ",\"status\":%d", status);
}

/* A message that is not valid UTF-8 (it may quote client bytes) is replaced rather than dropped. */
static void json_str_lossy(filter_buf_t *b, const char *s)
{
    if (filter_buf_json_string(b, s, strlen(s)) != 0)
        filter_buf_json_string(b, "(invalid UTF-8)", 15);
}

void srv_reply_problem(evhtp_request_t *req, int status, const char *title, const char *detail)
{
    filter_buf_t b = {0};
    problem_head(&b, status, title);
    if (detail) {
        filter_buf_puts(&b, ",\"detail\":");
        json_str_lossy(&b, detail);
    }
    filter_buf_puts(&b, "}");
    reply_buf(req, status, "application/problem+json", &b);
}

void srv_reply_validation(evhtp_request_t *req, const char *const *keys, const char *const *msgs,
                          size_t n)
{
    filter_buf_t b = {0};
    problem_head(&b, 400, "One or more validation errors occurred.");
    filter_buf_puts(&b, ",\"errors\":{");
    for (size_t i = 0; i < n; i++) {
        if (i) filter_buf_puts(&b, ",");
        json_str_lossy(&b, keys[i]);
        filter_buf_puts(&b, ":[");
        json_str_lossy(&b, msgs[i]);
        filter_buf_puts(&b, "]");
    }
    filter_buf_puts(&b, "}}");
    reply_buf(req, 400, "application/problem+json", &b);
}

/* ---- authentication ---- */

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* --auth none: the configured identity ("/org/ttd", "/organisation/N", "/user/N",
 * "/systemuser/UUID") with every scope. */
static int dev_identity(const char *ident, srv_identity_t *id)
{
    static const struct {
        const char *prefix;
        size_t off;
    } kinds[] = {
        {"/org/", offsetof(srv_claims_t, org)},
        {"/organisation/", offsetof(srv_claims_t, orgno)},
        {"/user/", offsetof(srv_claims_t, userid)},
        {"/systemuser/", offsetof(srv_claims_t, systemuser)},
        {"/party/", offsetof(srv_claims_t, partyid)},
    };
    memset(id, 0, sizeof *id);
    id->all_scopes = 1;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (strncmp(ident, kinds[i].prefix, pl) == 0 && ident[pl]) {
            char **slot = (char **)((char *)&id->claims + kinds[i].off);
            *slot = dupn(ident + pl, strlen(ident + pl));
            return *slot ? 0 : -1;
        }
    }
    return 0; /* an identity of another shape: no consumer claims, still every scope */
}

/* Finds "Bearer <token>" in the Authorization header; 0 and the token span, or -1. */
static int bearer_token(evhtp_request_t *req, const char **tok, size_t *len)
{
    const char *h = evhtp_header_find(req->headers_in, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return -1;
    h += 7;
    while (*h == ' ')
        h++;
    *tok = h;
    *len = strlen(h);
    while (*len && (h[*len - 1] == ' ' || h[*len - 1] == '\t'))
        (*len)--;
    return *len ? 0 : -1;
}

int srv_authenticate(srv_t *s, evhtp_request_t *req, srv_identity_t *id)
{
    const char *tok;
    size_t len;
    int rc;

    memset(id, 0, sizeof *id);
    if (s->cfg->auth == SRV_AUTH_NONE) return dev_identity(s->cfg->dev_identity, id);
    if (bearer_token(req, &tok, &len) != 0) return -1;
    rc = srv_jwt_verify(tok, len, s->keys,
                        s->cfg->auth == SRV_AUTH_JWT ? SRV_JWT_VERIFY : SRV_JWT_UNVERIFIED,
                        srv_now_us() / 1000000, &id->claims);
    if (rc != 0) {
        srv_log(SRV_LOG_DEBUG, "auth", "token refused reason=\"%s\"", srv_jwt_strerror(rc));
        return -1;
    }
    return 0;
}

int srv_has_platform_access_token(srv_t *s, evhtp_request_t *req)
{
    srv_claims_t c;
    const char *h = evhtp_header_find(req->headers_in, "PlatformAccessToken");
    int ok;
    if (!h || !*h) return 0;
    if (srv_jwt_verify(h, strlen(h), s->keys,
                       s->cfg->auth == SRV_AUTH_JWT ? SRV_JWT_VERIFY : SRV_JWT_UNVERIFIED,
                       srv_now_us() / 1000000, &c) != 0)
        return 0;
    ok = c.iss && *c.iss && c.app && *c.app;
    srv_claims_fini(&c);
    return ok;
}

int srv_identity_consumer(const srv_identity_t *id, char *out, size_t outlen)
{
    const srv_claims_t *c = &id->claims;
    int n;
    if (c->org && *c->org)
        n = snprintf(out, outlen, "/org/%s", c->org);
    else if (c->userid && *c->userid)
        n = snprintf(out, outlen, "/user/%s", c->userid);
    else if (c->systemuser && *c->systemuser)
        n = snprintf(out, outlen, "/systemuser/%s", c->systemuser);
    else if (c->orgno && *c->orgno)
        n = snprintf(out, outlen, "/organisation/%s", c->orgno);
    else
        return -1;
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

void srv_identity_fini(srv_identity_t *id)
{
    srv_claims_fini(&id->claims);
}

int srv_identity_has_scope(const srv_identity_t *id, const char *scope)
{
    return id->all_scopes || srv_claims_has_scope(&id->claims, scope);
}

/* ---- routing ---- */

/* Exact, case-insensitive path comparison that also accepts one trailing slash (as ASP.NET
 * routing does); evhtp_set_cb would match prefixes, so we route ourselves. */
static int path_is(const char *path, const char *want)
{
    size_t n = strlen(want);
    if (strncasecmp(path, want, n) != 0) return 0;
    return path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0');
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    srv_t *s = arg;
    size_t n = s->n_ready;
    (void)fd;
    (void)what;
    /* Detach first: sending may free a connection, whose fini hook clears its slot. */
    for (size_t i = 0; i < n; i++) {
        srv_req_t *rctx = s->ready[i];
        if (!rctx) continue;
        rctx->ready = -1;
        s->ready[i] = NULL;
        send_reply(rctx->req, rctx, rctx->status);
        evhtp_request_resume(rctx->req);
    }
    s->n_ready = 0;
}

/* Queues a reply recorded during the handler for the flush event (see finish()). */
static void defer_reply(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    if (s->n_ready == s->cap_ready) {
        size_t cap = s->cap_ready ? s->cap_ready * 2 : 256;
        srv_req_t **r = realloc(s->ready, cap * sizeof *r);
        if (!r) { /* cannot defer: answer now (a pipelined next request then waits for input) */
            send_reply(req, rctx, rctx->status);
            return;
        }
        s->ready = r;
        s->cap_ready = cap;
    }
    rctx->req = req;
    rctx->ready = (long)s->n_ready;
    s->ready[s->n_ready] = rctx;
    if (s->n_ready++ == 0) event_active(s->flush_ev, 0, 0);
    rctx->paused = 1;
    srv_request_pause(req);
}

static void route(srv_t *s, evhtp_request_t *req, srv_req_t *rctx);
static void request_read(srv_req_t *rctx);

static void on_request(evhtp_request_t *req, void *arg)
{
    srv_t *s = arg;
    srv_req_t *rctx = req_ctx(req);
    if (!rctx) {
        route(s, req, NULL);
        return;
    }
    request_read(rctx);
    rctx->req = req;
    rctx->in_handler = 1;
    route(s, req, rctx);
    rctx->in_handler = 0;
    if (rctx->status) defer_reply(s, req, rctx);
}

static void route(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    const char *path =
        req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "";
    htp_method m = evhtp_request_get_method(req);

    if (s->stopping) evhtp_request_set_keepalive(req, 0);

    if (path_is(path, "/events/api/v1/events")) {
        if (m == htp_method_POST) {
            srv_handle_publish(s, req, rctx);
            /* with rctx the handler's own replies are only recorded (see finish()) */
            if (rctx) srv_metrics_publish_answered(s, rctx->status);
            return;
        }
        if (m == htp_method_GET) {
            srv_handle_query(s, req);
            return;
        }
        set_header(req, "Allow", "GET, POST");
        srv_reply_empty(req, 405);
        return;
    }
    if (path_is(path, "/metrics")) {
        srv_metrics_handle(s, req);
        return;
    }
    if (path_is(path, "/health")) {
        if (m != htp_method_GET && m != htp_method_HEAD) {
            set_header(req, "Allow", "GET");
            srv_reply_empty(req, 405);
            return;
        }
        if (store_check(s->store) == 0)
            srv_reply_text(req, 200, "text/plain; charset=utf-8", "Healthy", 7);
        else
            srv_reply_text(req, 503, "text/plain; charset=utf-8", "Unhealthy", 9);
        return;
    }
    if (srv_openapi_route(s, req, path)) return;
    if (srv_subs_route(s, req, rctx, path)) return;
    if (srv_audit_route(s, req, path)) return;
    if (srv_app_route(s, req, rctx, path)) return;
    srv_reply_empty(req, 404);
}

/* ---- per-request hooks ---- */

/* Open connections are kept on a list so that shutdown can close the idle keep-alive ones
 * (evhtp_free does not) and so that they can be counted (--max-connections). */
typedef struct srv_conn {
    srv_t *srv;
    evhtp_connection_t *conn;
    struct srv_conn *prev, *next;
    /* --read-timeout. libevhtp's own read timeout (a bufferevent timeout) measures idle time
     * between two reads only: a client trickling one byte every few seconds is never dropped by
     * it. So each connection also has a deadline for the whole next request: armed when the
     * connection opens and when a request is done, cleared when a request has been read in full,
     * and when it fires the connection is closed. */
    struct event *deadline;
    srv_req_t *cur;   /* the request being read or handled, whose rctx->conn points back here */
    size_t hdr_bytes; /* --max-header-bytes: what the current request's headers took so far */
    int in_line;      /* a request line may be arriving: hold input back until it is whole */
    int reject;       /* the status to tell the client when the connection is closed on it */
    /* A request was paused (srv_request_pause) and its reply is not yet written out: input that
     * arrives meanwhile stays in the buffer (see on_read). Cleared when the reply has gone out. */
    int held;
    struct event *kick; /* runs on_read for input held behind a reply (see on_write) */
    /* the parser's byte count at a request line's end with nothing after it read yet, else 0
     * (lf_after_line) */
    uint64_t line_end;
} srv_conn_t;

static evhtp_res on_body(evhtp_request_t *req, struct evbuffer *buf, void *arg)
{
    srv_req_t *rctx = arg;
    size_t n = evbuffer_get_length(buf);
    rctx->body_len += n;
    /* Over the limit: keep reading (so that the answer can be a proper 413 after the auth checks)
     * but keep nothing; the hard cap in evhtp's max_body_size bounds how long we read. */
    if (rctx->too_big || rctx->body_len > rctx->limit) {
        rctx->too_big = 1;
        evbuffer_drain(buf, n);
        evbuffer_drain(req->buffer_in, evbuffer_get_length(req->buffer_in));
    }
    return EVHTP_RES_OK;
}

/* The request log line (--request-log), written when the request is done. Nothing is formatted
 * for a request the sampler skips; the query string and the body are never logged. */
static void log_request(evhtp_request_t *req, const srv_req_t *rctx)
{
    int64_t now = srv_now_us();
    unsigned sample = srv_log_request_sample(now);
    char path[512];
    if (!sample) return;
    srv_log_token(req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : "",
                  path, sizeof path);
    srv_log(SRV_LOG_INFO, "http",
            "request method=%s path=%s status=%d bytes=%zu duration_us=%lld sample=%u",
            htparser_get_methodstr_m(evhtp_request_get_method(req)), path, rctx->sent_status,
            rctx->sent_bytes, (long long)(now - rctx->start_us), sample);
}

static void request_done(srv_req_t *rctx);

static evhtp_res on_request_fini(evhtp_request_t *req, void *arg)
{
    srv_req_t *rctx = arg;
    log_request(req, rctx);
    request_done(rctx);
    if (rctx->pending >= 0) srv_publish_forget(rctx->srv, rctx);
    if (rctx->ready >= 0 && (size_t)rctx->ready < rctx->srv->n_ready)
        rctx->srv->ready[rctx->ready] = NULL;
    free(rctx);
    return EVHTP_RES_OK;
}

static void request_started(srv_conn_t *c, srv_req_t *rctx);

static evhtp_res on_headers(evhtp_request_t *req, evhtp_headers_t *hdrs, void *arg)
{
    srv_conn_t *c = arg;
    srv_t *s = c->srv;
    srv_req_t *rctx = calloc(1, sizeof *rctx);
    const char *cl;
    (void)hdrs;
    /* A request line without a version (HTTP/0.9 style) got no answer at all from libevhtp and
     * the connection hung; HTTP/9.9 was answered as "HTTP/9.9 200". Refuse both. */
    if (htparser_get_major(c->conn->parser) != 1) {
        free(rctx);
        c->reject = htparser_get_major(c->conn->parser) == 0 ? 400 : 505;
        return EVHTP_RES_ERROR;
    }
    if (!rctx) return EVHTP_RES_SERVERR;
    request_started(c, rctx);
    rctx->srv = s;
    rctx->pending = -1;
    rctx->ready = -1;
    rctx->start_us = srv_now_us();
    evhtp_request_set_hook(req, evhtp_hook_on_read, (evhtp_hook)on_body, rctx);
    evhtp_request_set_hook(req, evhtp_hook_on_request_fini, (evhtp_hook)on_request_fini, rctx);
    /* A declared length over the limit needs no reading to decide. */
    rctx->limit = srv_publish_body_limit(s, evhtp_header_find(req->headers_in, "Content-Type"));
    cl = evhtp_header_find(req->headers_in, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > rctx->limit) rctx->too_big = 1;
    /* A client that waits for "100 Continue" before sending a body we would only throw away is
     * told 413 at once instead (libevhtp would send the 100 right after this hook). */
    if (rctx->too_big && evhtp_header_find(req->headers_in, "Expect")) {
        c->reject = 413;
        return EVHTP_RES_ERROR;
    }
    return EVHTP_RES_OK;
}

static void arm_deadline(srv_conn_t *c)
{
    int64_t us = c->srv->cfg->read_timeout_us > 0 ? c->srv->cfg->read_timeout_us : 30000000;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    if (c->deadline) evtimer_add(c->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    srv_conn_t *c = arg;
    (void)fd;
    (void)what;
    srv_log(SRV_LOG_DEBUG, "http", "read timeout: closing a connection without a whole request");
    /* an idle keep-alive connection just closes; a request begun and not finished gets a 408 */
    if (c->cur || !c->in_line ||
        evbuffer_get_length(bufferevent_get_input(evhtp_connection_get_bev(c->conn))))
        c->reject = 408;
    evhtp_connection_free(c->conn); /* its fini hooks unlink c and free the request */
}

static const char *reject_reason(int status)
{
    switch (status) {
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

/* libevhtp closes a connection whose request it cannot parse (or that a hook refused) without a
 * word. A client is better served by a status: write a minimal response straight to the socket
 * just before it closes. Plain TCP only (a TLS connection cannot be written to past its
 * bufferevent), and only when no earlier response is still queued (it would come out after it). */
static void send_reject(evhtp_connection_t *conn, int status)
{
    char msg[192];
    int n;
    if (!conn || conn->ssl || conn->sock < 0) return;
    if (conn->bev && evbuffer_get_length(bufferevent_get_output(conn->bev))) return;
    n = snprintf(msg, sizeof msg,
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n%s\r\n",
                 status, reject_reason(status), status == 503 ? "Retry-After: 1\r\n" : "");
    if (n > 0 && (size_t)n < sizeof msg)
        (void)send(conn->sock, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* libevhtp 1.2.18's parser neither ends the headers nor fails on a bare LF right after a request
 * line (parser.c, state s_done: it returns without an error): it stops reading there, libevhtp logs
 * "ODDITY, resuming when not paused" and leaves the rest unread, and the request was answered only
 * by the read timeout (found by fuzzing, test/fuzz/fuzz_http.c). An LF ending the headers after a
 * header line is refused (400), so this is refused too. Called from on_headers_start (the request
 * line has just been parsed, in a parser run over `in`, which starts at this request: on_read and
 * drop_empty_lines dropped the empty lines before it, and a line split between runs has no LF
 * before its end) and from on_read (a later read, while the parser has not moved past the line:
 * its byte count is still line_end). Returns 1 if the request is to be refused. */
static int lf_after_line(srv_conn_t *c, struct evbuffer *in, int line_parsed)
{
    size_t len = evbuffer_get_length(in), i = 0;
    const unsigned char *p, *nl;
    if (!line_parsed) {
        /* any byte the parser takes after the line moves it on: one look is enough */
        int at_end = c->line_end && c->line_end == htparser_get_total_bytes_read(c->conn->parser);
        c->line_end = 0;
        p = at_end ? evbuffer_pullup(in, 1) : NULL;
        return p && p[0] == '\n';
    }
    c->line_end = 0;
    p = len ? evbuffer_pullup(in, -1) : NULL; /* libevhtp's read callback pulled it up already */
    while (i < len && (p[i] == '\r' || p[i] == '\n'))
        i++;
    nl = i < len ? memchr(p + i, '\n', len - i) : NULL;
    if (nl && nl + 1 < p + len) return nl[1] == '\n';
    c->line_end = htparser_get_total_bytes_read(c->conn->parser);
    return 0;
}

/* Longer than any request line libevhtp accepts (its parser stops at 8 KiB). */
#define LINE_HOLD_MAX 16384
/* How much input a connection may send ahead while its request waits for its reply; past it,
 * reading stops until the reply is out. */
#define HOLD_MAX (64 * 1024)

/* libevhtp's own read and event callbacks, which on_read and on_event wrap (the same for every
 * connection). */
static bufferevent_data_cb evhtp_readcb;
static bufferevent_event_cb evhtp_eventcb;

static srv_conn_t *conn_ctx(evhtp_connection_t *conn)
{
    evhtp_hooks_t *hooks = conn ? evhtp_connection_get_hooks(conn) : NULL;
    return hooks ? hooks->on_connection_fini_arg : NULL;
}

/* libevhtp's pause (evhtp_request_pause) turns reading off and its resume turns it back on: two
 * epoll_ctl calls for every request answered later, the largest kernel cost of a publish. Here only
 * its flag is set. With the flag libevhtp stops parsing after this request (anything pipelined
 * behind it stays in the input buffer) and its read callback does nothing; on_read and on_event
 * hold back what arrives meanwhile, as a paused socket would, until the reply has been written
 * (on_write). Reading stops only when a client sends more than HOLD_MAX bytes ahead; libevhtp's
 * resume turns it back on. */
void srv_request_pause(evhtp_request_t *req)
{
    evhtp_connection_t *conn = evhtp_request_get_connection(req);
    srv_conn_t *c = conn_ctx(conn);
    if (!c || !c->kick) { /* not a connection whose callbacks we wrap */
        evhtp_request_pause(req);
        return;
    }
    req->status = EVHTP_RES_PAUSE; /* what evhtp_request_pause does, without disabling EV_READ */
    conn->flags |= EVHTP_CONN_FLAG_PAUSED;
    c->held = 1;
}

/* The reply of a held request has been written out (libevhtp runs this hook from its write
 * callback once the output is empty, and never while paused). libevhtp would go on to input held
 * behind the reply by calling its read callback right away, past on_read's checks (a stray CRLF,
 * a request line not yet whole): so its WAITING state is cleared here and on_read gets that input
 * on the next pass instead, once libevhtp is done with the request. */
static evhtp_res on_write(evhtp_connection_t *conn, void *arg)
{
    srv_conn_t *c = arg;
    struct bufferevent *bev;
    if (!c->held) return EVHTP_RES_OK;
    c->held = 0;
    bev = evhtp_connection_get_bev(conn);
    if ((conn->flags & EVHTP_CONN_FLAG_WAITING) &&
        evbuffer_get_length(bufferevent_get_input(bev))) {
        conn->flags &= (uint16_t)~EVHTP_CONN_FLAG_WAITING;
        if (!(bufferevent_get_enabled(bev) & EV_READ)) bufferevent_enable(bev, EV_READ);
        event_active(c->kick, 0, 0);
    }
    return EVHTP_RES_OK;
}

static void on_read(struct bufferevent *bev, void *arg);

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    srv_conn_t *c = arg;
    (void)fd;
    (void)what;
    on_read(evhtp_connection_get_bev(c->conn), c->conn); /* may free the connection and c */
}

/* While a reply is pending, the end of the input (or a read error or timeout) waits like the
 * input: libevent has turned reading off, and it is seen again once the reply is written and
 * reading is back on. Passed on now, libevhtp would drop the connection without the reply (a
 * client that half-closes after its request). */
static void on_event(struct bufferevent *bev, short what, void *arg)
{
    srv_conn_t *c = conn_ctx(arg);
    if (c && c->held && (what & BEV_EVENT_READING)) return;
    evhtp_eventcb(bev, what, arg);
}

/* Whether the whole request line in `in` (its LF at *nl) ends in " HTTP/" DIGIT "." DIGIT and then
 * CRLF or a lone LF, as RFC 9112 section 3 has it: nothing else may follow the version. */
static int version_ends_line(struct evbuffer *in, const struct evbuffer_ptr *nl)
{
    struct evbuffer_ptr v = evbuffer_search_range(in, " HTTP/", 6, NULL, nl);
    char tail[5];
    size_t n;
    if (v.pos < 0 || evbuffer_ptr_set(in, &v, 6, EVBUFFER_PTR_ADD) != 0) return 0;
    n = (size_t)(nl->pos - v.pos);
    if (n < 3 || n > sizeof tail || evbuffer_copyout_from(in, &v, tail, n) != (ev_ssize_t)n)
        return 0;
    if (n == 4 && tail[3] != '\r') return 0;
    return n <= 4 && tail[0] >= '0' && tail[0] <= '9' && tail[1] == '.' && tail[2] >= '0' &&
           tail[2] <= '9';
}

/* libevhtp 1.2.18's parser corrupts a request target that is split between two reads: its URI
 * loops (s_check_uri, s_uri in parser.c) read one byte past the end of the data and then parse
 * that stray byte as part of the path ("/events/api/v1/ev" + "ents" became "/eveents", a 404).
 * So a request line is handed to libevhtp only once it is whole. (libevhtp also feeds itself
 * pipelined input directly, past this callback; a pipelined request split inside its request
 * target can still hit the bug.) arg is libevhtp's connection. */
static void on_read(struct bufferevent *bev, void *arg)
{
    srv_conn_t *c = conn_ctx(arg);
    if (c && c->held) {
        if (evbuffer_get_length(bufferevent_get_input(bev)) > HOLD_MAX)
            bufferevent_disable(bev, EV_READ);
        return;
    }
    if (c && c->in_line) {
        struct evbuffer *in = bufferevent_get_input(bev);
        unsigned char *first;
        /* Empty lines before a request line are to be ignored (RFC 9112, 2.2); libevhtp instead
         * stalls on them until the read timeout, so they are dropped here. */
        while ((first = evbuffer_pullup(in, 1)) && (*first == '\r' || *first == '\n'))
            evbuffer_drain(in, 1);
        /* what cannot start a method (a TLS hello, binary junk) goes to the parser to be refused
         * at once rather than held */
        if (first && !((*first >= 'A' && *first <= 'Z') || *first == '_')) first = NULL;
        if (first) {
            struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
            if (nl.pos < 0) {
                if (evbuffer_get_length(in) < LINE_HOLD_MAX) return;
            } else if (!version_ends_line(in, &nl)) {
                /* no version (an HTTP/0.9 style line) or more after it: libevhtp hangs on such a
                 * line when it ends in a lone LF (also "HTTP/1.1 \n"), and never answers it
                 * otherwise; RFC 9112 section 3 makes it a 400 */
                c->reject = 400;
                evhtp_connection_free(arg); /* as libevhtp's own read callback does on errors */
                return;
            }
        }
    } else if (c && lf_after_line(c, bufferevent_get_input(bev), 0)) {
        c->reject = 400;
        evhtp_connection_free(arg);
        return;
    }
    evhtp_readcb(bev, arg); /* may free the connection and c */
}

static void request_started(srv_conn_t *c, srv_req_t *rctx)
{
    rctx->conn = c;
    c->cur = rctx;
}

/* The request has been read in full: from here on its handler decides how long it takes. */
static void request_read(srv_req_t *rctx)
{
    if (rctx->conn && rctx->conn->deadline) evtimer_del(rctx->conn->deadline);
}

/* The request is finished (answered or abandoned): the next one has read-timeout to arrive. */
static void request_done(srv_req_t *rctx)
{
    srv_conn_t *c = rctx->conn;
    if (!c) return; /* the connection is going away */
    if (c->cur == rctx) c->cur = NULL;
    c->held = 0; /* normally cleared by on_write already */
    c->in_line = 1;
    arm_deadline(c);
}

static evhtp_res on_headers_start(evhtp_request_t *req, void *arg)
{
    srv_conn_t *c = arg;
    (void)req;
    c->hdr_bytes = 0;
    c->in_line = 0; /* the request line is parsed */
    if (lf_after_line(c, bufferevent_get_input(evhtp_connection_get_bev(c->conn)), 1)) {
        c->reject = 400;
        return EVHTP_RES_ERROR;
    }
    return EVHTP_RES_OK;
}

/* libevhtp's parser refuses a single header name or value over 8 KiB, but not a great many
 * headers: count them here. Over the limit the connection is closed (the parser stops on a hook
 * error and libevhtp frees the connection; it has no way to answer 431 from here). */
static evhtp_res on_header(evhtp_request_t *req, evhtp_header_t *hdr, void *arg)
{
    srv_conn_t *c = arg;
    size_t limit = c->srv->cfg->max_header_bytes ? c->srv->cfg->max_header_bytes : 65536;
    (void)req;
    c->hdr_bytes += hdr->klen + hdr->vlen + 4; /* ": " and CRLF */
    if (c->hdr_bytes > limit) {
        srv_log(SRV_LOG_DEBUG, "http", "request headers over %zu bytes: closing the connection",
                limit);
        c->reject = 431;
        return EVHTP_RES_ERROR;
    }
    return EVHTP_RES_OK;
}

static evhtp_res on_connection_fini(evhtp_connection_t *conn, void *arg)
{
    srv_conn_t *c = arg;
    /* closed because the parser stopped: a body over the hard cap (413), or a malformed request;
     * never after the request was answered (libevhtp may leave the parser in error then) */
    if (!c->reject && conn->parser && htparser_get_error(conn->parser) != htparse_error_none)
        c->reject = c->cur && c->cur->too_big ? 413 : 400;
    if (c->reject && !(c->cur && c->cur->sent_status)) send_reject(conn, c->reject);
    /* libevhtp runs this before it frees the connection's request: that request's fini hook must
     * not touch c any more */
    if (c->cur) c->cur->conn = NULL;
    if (c->deadline) event_free(c->deadline);
    if (c->kick) event_free(c->kick);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->srv->n_conns--;
    free(c);
    return EVHTP_RES_OK;
}

static evhtp_res on_post_accept(evhtp_connection_t *conn, void *arg)
{
    static int64_t warned_us;
    srv_t *s = arg;
    size_t max = s->cfg->max_connections ? s->cfg->max_connections : 10000;
    srv_conn_t *c;
    if (s->n_conns >= max) {
        /* refused: libevhtp closes the socket when this hook fails */
        int64_t now = srv_now_us();
        if (now - warned_us > 10000000) {
            warned_us = now;
            srv_log(SRV_LOG_WARN, "http", "connection refused: max-connections=%zu reached", max);
        }
        send_reject(conn, 503);
        return EVHTP_RES_ERROR;
    }
    c = calloc(1, sizeof *c);
    if (!c) return EVHTP_RES_ERROR;
    c->srv = s;
    c->conn = conn;
    c->deadline = evtimer_new(s->base, on_deadline, c);
    if (!c->deadline) {
        free(c);
        return EVHTP_RES_ERROR;
    }
    arm_deadline(c);
    c->next = s->conns;
    if (c->next) c->next->prev = c;
    s->conns = c;
    s->n_conns++;
    evhtp_connection_set_hook(conn, evhtp_hook_on_connection_fini, (evhtp_hook)on_connection_fini,
                              c);
    evhtp_connection_set_hook(conn, evhtp_hook_on_headers, (evhtp_hook)on_headers, c);
    evhtp_connection_set_hook(conn, evhtp_hook_on_headers_start, (evhtp_hook)on_headers_start, c);
    evhtp_connection_set_hook(conn, evhtp_hook_on_header, (evhtp_hook)on_header, c);
    {
        struct bufferevent *bev = evhtp_connection_get_bev(conn);
        bufferevent_data_cb rcb, wcb;
        bufferevent_event_cb ecb;
        void *cbarg;
        bufferevent_getcb(bev, &rcb, &wcb, &ecb, &cbarg);
        if (rcb && ecb && (!evhtp_readcb || rcb == evhtp_readcb) &&
            (!evhtp_eventcb || ecb == evhtp_eventcb)) {
            evhtp_readcb = rcb;
            evhtp_eventcb = ecb;
            c->in_line = 1;
            c->kick = event_new(s->base, -1, 0, on_kick, c);
            if (c->kick) {
                bufferevent_setcb(bev, on_read, wcb, on_event, cbarg);
                evhtp_connection_set_hook(conn, evhtp_hook_on_write, (evhtp_hook)on_write, c);
            } else {
                bufferevent_setcb(bev, on_read, wcb, ecb, cbarg);
            }
        }
    }
    return EVHTP_RES_OK;
}

void srv_http_close_all(srv_t *s)
{
    while (s->conns)
        evhtp_connection_free(s->conns->conn); /* its fini hook unlinks it */
}

int srv_http_init(srv_t *s)
{
    /* the idle timeout of a read or a write; the whole request has its own deadline (srv_conn_t) */
    int64_t rus = s->cfg->read_timeout_us > 0 ? s->cfg->read_timeout_us : 30000000;
    struct timeval rtmo = {(time_t)(rus / 1000000), (suseconds_t)(rus % 1000000)};
    struct timeval wtmo = {30, 0};
    uint64_t hard_cap;

    s->htp = evhtp_new(s->base, s);
    s->flush_ev = event_new(s->base, -1, 0, on_flush, s);
    if (!s->htp || !s->flush_ev) return -1;
    /* 100-continue is answered by evhtp; nodelay keeps small replies from waiting on Nagle. */
    evhtp_enable_flag(s->htp, EVHTP_FLAG_ENABLE_100_CONT | EVHTP_FLAG_ENABLE_NODELAY);
    evhtp_set_timeouts(s->htp, &rtmo, &wtmo);
    /* Up to the hard cap an oversized body is read and thrown away so that the client gets its 413
     * (clients that send the whole body before reading, like most, would otherwise see a reset);
     * past it the connection is dropped. The read timeout bounds how long that may take. */
    hard_cap = (uint64_t)srv_publish_body_limit(s, "application/cloudevents-batch+json") * 2;
    if (hard_cap < (64u << 20)) hard_cap = 64u << 20;
    evhtp_set_max_body_size(s->htp, hard_cap);
    evhtp_set_post_accept_cb(s->htp, on_post_accept, s);
    evhtp_set_gencb(s->htp, on_request, s);
    return 0;
}
