/* server/app: the Altinn app events API (api.md §3). See app.h for the contract. */
#include "server/app.h"
#include "server/params.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "filter/text.h"
#include "server/authz.h"
#include "server/log.h"
#include "server/register.h"

#define MAX_PATTERNS 32
/* The most events one GET examines (as in query.c): a bounded cost per request, and a `next` past
 * what was examined so that skipped events never stall the cursor. */
#define MAX_EXAMINED 10000
#define DEFAULT_SIZE 50
#define MAX_SIZE 1000

static const char base_path[] = "/events/api/v1/app";
static const char app_resource_prefix[] = "urn:altinn:resource:app_";
static const char json_utf8[] = "application/json; charset=utf-8";

enum { ROUTE_NONE, ROUTE_POST, ROUTE_ORG, ROUTE_PARTY };

/* ---- small helpers ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 1 if s is exactly n ASCII digits. */
static int all_digits(const char *s, size_t n)
{
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

static void ascii_lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (char)tolower((unsigned char)s[i]);
}

static void set_header(evhtp_request_t *req, const char *k, const char *v)
{
    evhtp_headers_add_header(req->headers_out, evhtp_header_new(k, v, 0, 1));
}

static void reply_unauthenticated(evhtp_request_t *req)
{
    set_header(req, "WWW-Authenticate", "Bearer");
    srv_reply_empty(req, 401);
}

/* Answers with a JSON string body (Altinn's StatusCode(n, "text")). */
static void reply_json_string(evhtp_request_t *req, int status, const char *text)
{
    filter_buf_t b = {0};
    if (filter_buf_json_string(&b, text, strlen(text)) != 0 || filter_buf_failed(&b)) {
        filter_buf_fini(&b);
        srv_reply_empty(req, 500);
        return;
    }
    srv_reply_text(req, status, json_utf8, b.data, b.len);
    filter_buf_fini(&b);
}

static void reply_bad_request(evhtp_request_t *req, const char *detail)
{
    srv_reply_problem(req, 400, "Bad Request", detail);
}

/* Classifies a path. For ROUTE_ORG, *org and *app span the two route values (still encoded). */
static int classify(const char *path, const char **org, size_t *org_n, const char **app,
                    size_t *app_n)
{
    size_t bl = sizeof base_path - 1, n1, n2;
    const char *rest, *seg1, *seg2;

    if (strncasecmp(path, base_path, bl) != 0) return ROUTE_NONE;
    rest = path + bl;
    if (*rest == '\0' || strcmp(rest, "/") == 0) return ROUTE_POST;
    if (*rest != '/') return ROUTE_NONE; /* "/events/api/v1/apple" */
    seg1 = ++rest;
    n1 = strcspn(seg1, "/");
    if (n1 == 0) return ROUTE_NONE;
    rest = seg1 + n1;
    if (*rest == '\0' || strcmp(rest, "/") == 0)
        return n1 == 5 && strncasecmp(seg1, "party", 5) == 0 ? ROUTE_PARTY : ROUTE_NONE;
    seg2 = ++rest;
    n2 = strcspn(seg2, "/");
    if (n2 == 0) return ROUTE_NONE;
    rest = seg2 + n2;
    if (*rest != '\0' && strcmp(rest, "/") != 0) return ROUTE_NONE;
    *org = seg1;
    *org_n = n1;
    *app = seg2;
    *app_n = n2;
    return ROUTE_ORG;
}

/* Appends a percent-encoded path segment decoded (a malformed escape is kept as written). */
static void append_decoded_segment(filter_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            char c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            filter_buf_append(b, &c, 1);
            i += 2;
        } else {
            filter_buf_append(b, &s[i], 1);
        }
    }
}

/* ---- POST /events/api/v1/app ---- */

/* The media type of a Content-Type value, without parameters, is application/json. */
static int is_application_json(const char *ct)
{
    size_t n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* The value of the member whose name equals name case-insensitively (the last one, as
 * System.Text.Json binds), or NULL. */
static const filter_json_t *member_ci(const filter_json_t *obj, const char *name)
{
    const filter_json_t *v = NULL;
    for (size_t i = 0; i < obj->count; i++)
        if (strcasecmp(obj->keys[i], name) == 0) v = obj->items[i];
    return v;
}

/* The path of a URI reference as .NET's Uri.AbsolutePath has it for an absolute URI: after
 * "scheme://authority" up to '?' or '#' ("/" when empty); after "scheme:" for a URI without an
 * authority; a reference without a scheme is its own path. *authority says whether there was one.
 */
static void uri_path(const char *u, const char **p, size_t *n, int *authority)
{
    size_t i = 0;
    const char *path = u;
    *authority = 0;
    if (isalpha((unsigned char)u[0])) {
        i = 1;
        while (isalnum((unsigned char)u[i]) || u[i] == '+' || u[i] == '-' || u[i] == '.')
            i++;
        if (u[i] == ':') {
            path = u + i + 1;
            if (path[0] == '/' && path[1] == '/') {
                path += 2 + strcspn(path + 2, "/?#");
                *authority = 1;
            }
        }
    }
    *p = path;
    *n = strcspn(path, "?#");
    if (*authority && *n == 0) {
        *p = "/";
        *n = 1;
    }
}

/* A new random (version 4) UUID in its 36-character form. 0, or -1 if the generator failed. */
static int new_uuid(char out[37])
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof r) != 1) return -1;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return 0;
}

/* Reads the PlatformAccessToken header into *c. 1 if it is there and names an org and an app, 0
 * if the header is absent or empty, -1 if it is there but does not verify or lacks either claim. */
static int platform_token(srv_t *s, evhtp_request_t *req, srv_claims_t *c)
{
    const char *h = evhtp_header_find(req->headers_in, "PlatformAccessToken");
    memset(c, 0, sizeof *c);
    if (!h || !*h) return 0;
    if (srv_jwt_verify(h, strlen(h), s->keys,
                       s->cfg->auth == SRV_AUTH_JWT ? SRV_JWT_VERIFY : SRV_JWT_UNVERIFIED,
                       srv_now_us() / 1000000, c) != 0)
        return -1;
    if (!c->iss || !*c->iss || !c->app || !*c->app) {
        srv_claims_fini(c);
        return -1;
    }
    return 1;
}

/* The request body's string members. */
typedef struct {
    const char *source, *specversion, *type, *subject, *altsubject;
    size_t source_n, subject_n, type_n, altsubject_n;
} app_body_t;

/* Reads the string members of the body object. NULL or absent members stay NULL. 0, or -1 with
 * the message in msg when a member has another JSON type. */
static int read_body(const filter_json_t *root, app_body_t *b, char *msg, size_t msglen)
{
    static const char *const names[] = {"source", "specversion", "type", "subject",
                                        "alternativesubject"};
    const char **slots[] = {&b->source, &b->specversion, &b->type, &b->subject, &b->altsubject};
    size_t *lens[] = {&b->source_n, NULL, &b->type_n, &b->subject_n, &b->altsubject_n};
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const filter_json_t *v = member_ci(root, names[i]);
        if (!v || v->type == FILTER_JSON_NULL) continue;
        if (v->type != FILTER_JSON_STRING) {
            snprintf(msg, msglen, "The '%s' property must be a string.", names[i]);
            return -1;
        }
        *slots[i] = v->str;
        if (lens[i]) *lens[i] = v->len;
    }
    return 0;
}

/* Answers a failure of filter_event_parse as a publish does. */
static void reply_event_error(srv_t *s, evhtp_request_t *req, int rc, const char *msg)
{
    char big[160];
    switch (rc) {
    case FILTER_EVENT_EINVALID: {
        const char *k = "RequestBody";
        srv_reply_validation(req, &k, &msg, 1);
        return;
    }
    case FILTER_EVENT_EALTINN:
        reply_bad_request(req, msg);
        return;
    case FILTER_EVENT_ETOOBIG:
        snprintf(big, sizeof big, "The event is larger than the limit of %zu bytes.",
                 s->cfg->max_event_bytes);
        srv_reply_problem(req, 413, "Content Too Large", big);
        return;
    default:
        srv_reply_empty(req, 500);
        return;
    }
}

/* Appends ,"resourceinstance":"{party}/{guid}" when the source is
 * scheme://host/{org}/{app}/instances/{party}/{guid}. */
static void put_resourceinstance(filter_buf_t *b, const char *path, size_t n, int authority,
                                 const char *org, const char *app)
{
    static const char inst[] = "instances/";
    size_t ol = strlen(org), al = strlen(app), k = 0, party_n, guid_n;
    const char *party, *guid;
    if (!authority) return;
    /* "/" org "/" app "/instances/" party "/" guid, nothing after */
    if (n < 1 + ol + 1 + al + 1 || path[0] != '/' || memcmp(path + 1, org, ol) != 0 ||
        path[1 + ol] != '/' || memcmp(path + 2 + ol, app, al) != 0 || path[2 + ol + al] != '/')
        return;
    k = 3 + ol + al;
    if (n - k < sizeof inst - 1 || memcmp(path + k, inst, sizeof inst - 1) != 0) return;
    k += sizeof inst - 1;
    party = path + k;
    party_n = 0;
    while (k + party_n < n && party[party_n] != '/')
        party_n++;
    if (party_n == 0 || k + party_n == n) return;
    guid = party + party_n + 1;
    guid_n = n - (k + party_n + 1);
    if (guid_n == 0 || memchr(guid, '/', guid_n)) return;
    filter_buf_puts(b, ",\"resourceinstance\":");
    {
        filter_buf_t v = {0};
        filter_buf_append(&v, party, party_n);
        filter_buf_puts(&v, "/");
        filter_buf_append(&v, guid, guid_n);
        if (filter_buf_failed(&v) || filter_buf_json_string(b, v.data, v.len) != 0) b->failed = 1;
        filter_buf_fini(&v);
    }
}

/* Makes the event as the server does (api.md §3): a new id, the time now, the resource of the
 * app and, for an instance source, the resourceinstance; data, dataschema and contenttype are not
 * kept. It then goes through the validation of every publish. Returns a filter_event_rc_t code;
 * on success *out is the event (the caller owns it), else msg holds the message. */
static int make_event(srv_t *s, const app_body_t *body, const char *org, const char *app,
                      const char *path, size_t path_n, int authority, filter_event_t **out,
                      char *msg, size_t msglen)
{
    filter_buf_t b = {0}, r = {0};
    filter_event_limits_t lim;
    char uuid[37], now[40];
    int rc;

    if (new_uuid(uuid) != 0) {
        srv_log(SRV_LOG_ERROR, "app", "random generator failed");
        snprintf(msg, msglen, "The random generator failed.");
        return FILTER_EVENT_ENOMEM;
    }
    filter_time_format(srv_now_us(), now, sizeof now);
    filter_buf_printf(&b, "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":", uuid);
    filter_buf_json_string(&b, body->source, body->source_n);
    filter_buf_puts(&b, ",\"type\":");
    filter_buf_json_string(&b, body->type, body->type_n);
    filter_buf_puts(&b, ",\"subject\":");
    filter_buf_json_string(&b, body->subject, body->subject_n);
    filter_buf_printf(&b, ",\"time\":\"%s\",\"resource\":", now);
    filter_buf_printf(&r, "%s%s_%s", app_resource_prefix, org, app);
    if (filter_buf_failed(&r) || filter_buf_json_string(&b, r.data, r.len) != 0) b.failed = 1;
    put_resourceinstance(&b, path, path_n, authority, org, app);
    if (body->altsubject && *body->altsubject) {
        filter_buf_puts(&b, ",\"alternativesubject\":");
        filter_buf_json_string(&b, body->altsubject, body->altsubject_n);
    }
    filter_buf_puts(&b, "}");
    if (filter_buf_failed(&b)) {
        snprintf(msg, msglen, "Out of memory.");
        rc = FILTER_EVENT_ENOMEM;
    } else {
        lim.max_bytes = s->cfg->max_event_bytes;
        lim.max_depth = 64;
        rc = filter_event_parse(b.data, b.len, &lim, out, msg, msglen);
    }
    filter_buf_fini(&b);
    filter_buf_fini(&r);
    return rc;
}

static void handle_post(srv_t *s, evhtp_request_t *req, srv_req_t *rctx)
{
    srv_identity_t id;
    srv_claims_t pat;
    filter_json_limits_t jlim = {0, 64, 0};
    filter_json_doc_t *doc = NULL;
    const filter_json_t *root;
    filter_buf_t b = {0};
    filter_event_t *ev = NULL;
    app_body_t body;
    const char *ct, *path, *org, *app;
    char *org_own = NULL, *app_own = NULL, *location, *raw;
    char msg[512];
    size_t len, path_n;
    int have_pat, authority, rc;
    srv_pending_t *p;

    if (srv_authenticate(s, req, &id) != 0) {
        reply_unauthenticated(req);
        return;
    }
    srv_identity_fini(&id);
    have_pat = platform_token(s, req, &pat);
    if (have_pat < 0 || (have_pat == 0 && s->cfg->auth != SRV_AUTH_NONE)) {
        srv_reply_empty(req, 403);
        return;
    }
    ct = evhtp_header_find(req->headers_in, "Content-Type");
    if (!ct || !is_application_json(ct)) {
        srv_reply_problem(req, 415, "Unsupported Media Type",
                          "Content-Type must be application/json.");
        goto out;
    }
    if (!rctx || rctx->too_big) {
        snprintf(msg, sizeof msg, "The event is larger than the limit of %zu bytes.",
                 s->cfg->max_event_bytes);
        srv_reply_problem(req, 413, "Content Too Large", msg);
        goto out;
    }

    len = evbuffer_get_length(req->buffer_in);
    raw = len ? (char *)evbuffer_pullup(req->buffer_in, (ev_ssize_t)len) : (char *)"";
    jlim.max_bytes = s->cfg->max_event_bytes;
    rc = filter_json_parse(raw, len, &jlim, &doc, msg + 200, sizeof msg - 200);
    if (rc != FILTER_JSON_OK) {
        const char *k = "RequestBody", *m = msg;
        if (rc == FILTER_JSON_ENOMEM) {
            srv_reply_empty(req, 500);
            goto out;
        }
        snprintf(msg, 200, "Invalid JSON: %.150s.", msg + 200);
        srv_reply_validation(req, &k, &m, 1);
        goto out;
    }
    root = filter_json_root(doc);
    if (root->type != FILTER_JSON_OBJECT) {
        const char *k = "RequestBody", *m = "The request body must be a JSON object.";
        srv_reply_validation(req, &k, &m, 1);
        goto out;
    }
    if (read_body(root, &body, msg, sizeof msg) != 0) {
        const char *k = "RequestBody", *m = msg;
        srv_reply_validation(req, &k, &m, 1);
        goto out;
    }
    if (!body.source || !*body.source || !body.specversion || !*body.specversion || !body.type ||
        !*body.type || !body.subject || !*body.subject) {
        reply_bad_request(req, "Missing parameter values: source, subject and type cannot be null");
        goto out;
    }

    uri_path(body.source, &path, &path_n, &authority);
    if (have_pat) {
        org = pat.iss;
        app = pat.app;
    } else {
        /* --auth none without a token: the app is the one the source names */
        size_t on, an;
        const char *seg = path_n && path[0] == '/' ? path + 1 : NULL;
        on = seg ? strcspn(seg, "/?#") : 0;
        an = on && seg[on] == '/' ? strcspn(seg + on + 1, "/?#") : 0;
        if (!an) {
            srv_reply_empty(req, 403);
            goto out;
        }
        org_own = strndup(seg, on);
        app_own = strndup(seg + on + 1, an);
        if (!org_own || !app_own) {
            srv_reply_empty(req, 500);
            goto out;
        }
        org = org_own;
        app = app_own;
    }
    {
        /* Altinn: Source.AbsolutePath.StartsWith("/" + org + "/" + app), ordinal */
        size_t ol = strlen(org), al = strlen(app);
        if (path_n < 2 + ol + al || path[0] != '/' || memcmp(path + 1, org, ol) != 0 ||
            path[1 + ol] != '/' || memcmp(path + 2 + ol, app, al) != 0) {
            filter_buf_printf(&b, "%s/%s is not authorized to create events for %s", org, app,
                              body.source);
            if (filter_buf_failed(&b))
                srv_reply_empty(req, 500);
            else
                reply_json_string(req, 401, b.data);
            goto out;
        }
    }

    rc = make_event(s, &body, org, app, path, path_n, authority, &ev, msg, sizeof msg);
    if (rc != FILTER_EVENT_OK) {
        reply_event_error(s, req, rc, msg);
        goto out;
    }
    if (s->stopping) {
        srv_reply_problem(req, 503, "Service Unavailable", "The server is shutting down.");
        goto out;
    }
    location = strdup(ev->subject);
    p = location ? srv_pending_add(s, req, rctx) : NULL;
    if (!p) {
        free(location);
        srv_reply_empty(req, 500);
        goto out;
    }
    /* The commit answers: 201, the id as a JSON string, Location: the subject. */
    p->kind = SRV_PENDING_EVENT;
    p->ev = ev;
    p->group = 1;
    snprintf(p->created_id, sizeof p->created_id, "\"%s\"", ev->id);
    p->location = location;                         /* freed by the commit */
    p->who = malloc(strlen(org) + strlen(app) + 7); /* the app, for the audit trail */
    if (p->who) sprintf(p->who, "/app/%s/%s", org, app);
    ev = NULL; /* owned by the batch now */

out:
    filter_event_free(ev);
    filter_buf_fini(&b);
    filter_json_doc_free(doc);
    free(org_own);
    free(app_own);
    if (have_pat > 0) srv_claims_fini(&pat);
}

/* ---- GET: query parameters ---- */

/* The parameters of both GET endpoints. */
typedef struct {
    const char *after, *from, *to, *party, *unit, *size, *person;
    const char *types[MAX_PATTERNS];
    size_t n_types;
    const char *sources[MAX_PATTERNS];
    size_t n_sources;
} app_params_t;

/* Sorts the pairs into *q (the first of a repeated scalar counts, as ASP.NET binds; empty values
 * are absent). 0, or -1 after answering when a pattern list is too long. */
static int collect_params(evhtp_request_t *req, const srv_param_t *params, int np, int route,
                          app_params_t *q)
{
    struct {
        const char *name;
        const char **slot;
    } scalars[] = {{"after", &q->after}, {"from", &q->from}, {"to", &q->to},
                   {"party", &q->party}, {"unit", &q->unit}, {"size", &q->size}};
    memset(q, 0, sizeof *q);
    for (int i = 0; i < np; i++) {
        const char *n = params[i].name, *v = params[i].value;
        size_t k;
        if (!*v) continue;
        for (k = 0; k < sizeof scalars / sizeof scalars[0]; k++)
            if (strcasecmp(n, scalars[k].name) == 0) {
                if (!*scalars[k].slot) *scalars[k].slot = v;
                break;
            }
        if (k < sizeof scalars / sizeof scalars[0]) continue;
        if (strcasecmp(n, "type") == 0 || (route == ROUTE_PARTY && strcasecmp(n, "source") == 0)) {
            int is_type = n[0] == 't' || n[0] == 'T';
            size_t *cnt = is_type ? &q->n_types : &q->n_sources;
            if (*cnt == MAX_PATTERNS) {
                reply_bad_request(req, is_type ? "Too many 'type' parameters."
                                               : "Too many 'source' parameters.");
                return -1;
            }
            (is_type ? q->types : q->sources)[(*cnt)++] = v;
        }
    }
    q->person = evhtp_header_find(req->headers_in, "person");
    if (q->person && !*q->person) q->person = NULL;
    return 0;
}

/* Parses a 32-bit signed integer (ASP.NET's int binding). 0 or -1. */
static int parse_int32(const char *s, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v > INT32_MAX || v < INT32_MIN) return -1;
    *out = v;
    return 0;
}

/* ---- GET: the scan ---- */

typedef struct {
    srv_t *s;
    int party_route;           /* match app resources by prefix (store_scan_all) */
    const char *subject;       /* "/party/{id}" or NULL */
    char *types[MAX_PATTERNS]; /* lower-cased copies */
    size_t n_types;
    char *sources[MAX_PATTERNS];
    size_t n_sources;
    int has_from, has_to;
    int64_t from_us, to_us;
    const char *consumer;
    size_t size;
    int64_t visible_before; /* settle window: stored_us must be below this; 0 = none */
    filter_buf_t body, last_id, last_examined_id, fold;
    size_t count;
    int page_full, settled_stop, failed;
} scan_t;

/* 1 if s matches any of the lower-cased patterns, compared case-insensitively. */
static int like_any_ci(scan_t *c, char *const *pats, size_t n, const char *s)
{
    size_t sl = strlen(s);
    filter_buf_reset(&c->fold);
    filter_buf_append(&c->fold, s, sl);
    if (filter_buf_failed(&c->fold)) {
        c->failed = 1;
        return 0;
    }
    ascii_lower(c->fold.data, sl);
    for (size_t i = 0; i < n; i++)
        if (filter_like_match(pats[i], strlen(pats[i]), c->fold.data, sl)) return 1;
    return 0;
}

/* Skips one JSON value of a valid compact document starting at j[i]; the index after it. */
static size_t skip_value(const char *j, size_t n, size_t i)
{
    int depth = 0;
    while (i < n) {
        char ch = j[i];
        if (ch == '"') {
            for (i++; i < n && j[i] != '"'; i++)
                if (j[i] == '\\') i++;
            i++;
        } else if (ch == '{' || ch == '[') {
            depth++;
            i++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) return i;
            depth--;
            i++;
        } else if (ch == ',' && depth == 0) {
            return i;
        } else {
            i++;
        }
    }
    return i;
}

/* The raw text of the top-level string member name of a stored event (canonical, compact JSON),
 * found without building a tree (a "time" inside data is not top-level). 0, or -1 if absent. */
static int top_string_member(const char *j, size_t n, const char *name, const char **v, size_t *vn)
{
    size_t nl = strlen(name), i = 1;
    if (n < 2 || j[0] != '{') return -1;
    while (i < n && j[i] == '"') {
        size_t ks = ++i, ke;
        for (; i < n && j[i] != '"'; i++)
            if (j[i] == '\\') i++;
        ke = i++;
        if (i >= n || j[i] != ':') return -1;
        i++;
        if (ke - ks == nl && memcmp(j + ks, name, nl) == 0) {
            size_t vs;
            if (i >= n || j[i] != '"') return -1;
            vs = ++i;
            for (; i < n && j[i] != '"'; i++)
                if (j[i] == '\\') i++;
            if (i >= n) return -1;
            *v = j + vs;
            *vn = i - vs;
            return 0;
        }
        i = skip_value(j, n, i);
        if (i >= n || j[i] != ',') return -1;
        i++;
    }
    return -1;
}

static int on_event(void *arg, const store_event_t *ev)
{
    scan_t *c = arg;
    if (c->visible_before && ev->stored_us >= c->visible_before) {
        c->settled_stop = 1; /* the rest is newer still */
        return STORE_SCAN_STOP;
    }
    filter_buf_reset(&c->last_examined_id);
    filter_buf_puts(&c->last_examined_id, ev->id);
    if (c->party_route && (!ev->resource || strncmp(ev->resource, app_resource_prefix,
                                                    sizeof app_resource_prefix - 1) != 0))
        return STORE_SCAN_CONTINUE;
    if (c->subject && (!ev->subject || strcmp(ev->subject, c->subject) != 0))
        return STORE_SCAN_CONTINUE;
    if (c->n_types && !like_any_ci(c, c->types, c->n_types, ev->type)) return STORE_SCAN_CONTINUE;
    if (c->n_sources && !like_any_ci(c, c->sources, c->n_sources, ev->source))
        return STORE_SCAN_CONTINUE;
    if (c->has_from || c->has_to) {
        const char *t;
        size_t tn;
        int64_t us;
        if (top_string_member(ev->json, ev->json_len, "time", &t, &tn) != 0 ||
            filter_time_parse(t, tn, &us, NULL, 0) != 0)
            return STORE_SCAN_CONTINUE;
        if ((c->has_from && us < c->from_us) || (c->has_to && us > c->to_us))
            return STORE_SCAN_CONTINUE;
    }
    if (!srv_authz_check(c->s->authz, SRV_AUTHZ_READ, ev->resource, c->consumer,
                         ev->subject ? ev->subject : ""))
        return STORE_SCAN_CONTINUE;
    filter_buf_puts(&c->body, c->count ? "," : "[");
    filter_buf_append(&c->body, ev->json, ev->json_len);
    filter_buf_reset(&c->last_id);
    filter_buf_puts(&c->last_id, ev->id);
    if (filter_buf_failed(&c->last_id) || filter_buf_failed(&c->last_examined_id)) c->failed = 1;
    if (++c->count >= c->size) {
        c->page_full = 1;
        return STORE_SCAN_STOP;
    }
    return STORE_SCAN_CONTINUE;
}

/* Copies and lower-cases n patterns into out. 0 or -1 (no memory; the copies made stay in out). */
static int fold_patterns(const char *const *in, size_t n, char **out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(in[i]);
        if (!out[i]) return -1;
        ascii_lower(out[i], strlen(out[i]));
    }
    return 0;
}

/* The parameters after binding. */
typedef struct {
    long size, party;
    int64_t from_us, to_us;
    int from_zone, to_zone;
} bound_t;

/* Binds the typed parameters. Binding errors are answered all together, as ASP.NET Core's model
 * validation does before the action runs. 0, or -1 after answering. */
static int bind_params(evhtp_request_t *req, const app_params_t *q, bound_t *b)
{
    char msg[4][200];
    const char *keys[4], *msgs[4];
    size_t n = 0;

    memset(b, 0, sizeof *b);
    b->size = DEFAULT_SIZE;
    if (q->from &&
        filter_time_parse_zone_optional(q->from, strlen(q->from), &b->from_us, &b->from_zone)) {
        snprintf(msg[n], sizeof msg[n], "The value '%.100s' is not valid for from.", q->from);
        keys[n++] = "from";
    }
    if (q->to && filter_time_parse_zone_optional(q->to, strlen(q->to), &b->to_us, &b->to_zone)) {
        snprintf(msg[n], sizeof msg[n], "The value '%.100s' is not valid for to.", q->to);
        keys[n++] = "to";
    }
    if (q->party && parse_int32(q->party, &b->party) != 0) {
        snprintf(msg[n], sizeof msg[n], "The value '%.100s' is not valid for party.", q->party);
        keys[n++] = "party";
    }
    if (q->size && parse_int32(q->size, &b->size) != 0) {
        snprintf(msg[n], sizeof msg[n], "The value '%.100s' is not valid for size.", q->size);
        keys[n++] = "size";
    }
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        msgs[i] = msg[i];
    srv_reply_validation(req, keys, msgs, n);
    return -1;
}

/* Altinn's parameter checks, in its order (ValidateQueryParams, then the party endpoint's subject
 * rule), then the register lookup of a person or unit. Writes the party of the subject (0: none)
 * to *party_id. 0, or -1 after answering. */
static int check_params(srv_t *s, evhtp_request_t *req, int route, const app_params_t *q,
                        const bound_t *b, int64_t *party_id)
{
    const char *bad = NULL;
    if (!q->after && !q->from)
        bad = "The 'From' or 'After' parameter must be defined.";
    else if (q->from && !b->from_zone)
        bad = "The 'From' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC";
    else if (q->to && !b->to_zone)
        bad = "The 'To' parameter must specify timezone. E.g. 2022-07-07T11:00:53.3917Z for UTC";
    else if (b->size < 1)
        bad = "The 'Size' parameter must be a number larger that 0.";
    else if (q->person && b->party > 0)
        bad = "Only one of 'Party' or 'Person' can be defined.";
    else if (q->person && !all_digits(q->person, 11))
        bad = "Value of 'Person' needs to be exactly 11 digits.";
    else if (q->unit && b->party > 0)
        bad = "Only one of 'Party' or 'Unit' can be defined.";
    else if (q->unit && !all_digits(q->unit, 9))
        bad = "Value of 'Unit' needs to be exactly 9 digits.";
    else if (route == ROUTE_PARTY && !q->person && !q->unit && b->party <= 0)
        bad = "Subject must be specified using either query params party or unit or header value "
              "person.";
    if (bad) {
        reply_bad_request(req, bad);
        return -1;
    }
    /* a party, or the party of a person or unit (the person wins, as in Altinn) */
    *party_id = b->party > 0 ? b->party : 0;
    if (!*party_id && (q->person || q->unit)) {
        *party_id = q->person ? srv_register_party_by_ssn(s->reg, q->person)
                              : srv_register_party_by_orgno(s->reg, q->unit);
        if (*party_id <= 0) {
            srv_reply_empty(req, 404);
            return -1;
        }
    }
    return 0;
}

/* Answers with the page the scan collected and its `next` link (api.md §2): after the last event
 * returned or, when the bounded scan stopped early, after the last one examined; none on an empty
 * page that reached the end. The link repeats the request path and every other parameter. */
static void send_page(srv_t *s, evhtp_request_t *req, scan_t *c, size_t examined,
                      const srv_param_t *params, int np)
{
    filter_buf_t link = {0};
    const char *next_after = NULL;
    const char *rpath =
        req->uri && req->uri->path && req->uri->path->full ? req->uri->path->full : base_path;
    int reached_end = !c->page_full && !c->settled_stop && examined < MAX_EXAMINED;

    if (c->count == 0) filter_buf_puts(&c->body, "[");
    filter_buf_puts(&c->body, "]");
    if (!reached_end && !c->page_full && !c->settled_stop && c->last_examined_id.len)
        next_after = c->last_examined_id.data;
    else if (c->count)
        next_after = c->last_id.data;
    if (next_after) {
        filter_buf_printf(&link, "%s%s?after=", s->base_url, rpath);
        srv_params_link_value(&link, next_after, strlen(next_after));
        for (int i = 0; i < np; i++) {
            if (strcasecmp(params[i].name, "after") == 0) continue;
            filter_buf_puts(&link, "&");
            srv_params_link_value(&link, params[i].name, strlen(params[i].name));
            filter_buf_puts(&link, "=");
            srv_params_link_value(&link, params[i].value, params[i].value_len);
        }
    }
    if (filter_buf_failed(&link) || filter_buf_failed(&c->body)) {
        srv_reply_empty(req, 500);
    } else {
        if (next_after) set_header(req, "next", link.data);
        srv_reply_text(req, 200, "application/cloudevents+json; charset=utf-8", c->body.data,
                       c->body.len);
    }
    filter_buf_fini(&link);
}

static void handle_get(srv_t *s, evhtp_request_t *req, int route, const char *org, size_t org_n,
                       const char *app, size_t app_n)
{
    srv_param_t params[SRV_MAX_PARAMS];
    char *storage = NULL;
    char consumer[300] = "", subject[40];
    srv_identity_t id;
    app_params_t q;
    bound_t b;
    int64_t party_id;
    uint64_t after_seq = 0;
    size_t examined = 0;
    scan_t c;
    filter_buf_t resource = {0};
    int np, rc;

    memset(&c, 0, sizeof c);
    if (srv_authenticate(s, req, &id) != 0) {
        reply_unauthenticated(req);
        return;
    }
    if (srv_identity_consumer(&id, consumer, sizeof consumer) != 0) consumer[0] = '\0';

    np = srv_params_parse(req->uri ? (const char *)req->uri->query_raw : NULL, params,
                          SRV_MAX_PARAMS, &storage);
    if (np < 0) {
        reply_bad_request(req, "Too many query parameters.");
        goto out;
    }
    if (collect_params(req, params, np, route, &q) != 0 || bind_params(req, &q, &b) != 0) goto out;
    if (route == ROUTE_ORG && (!id.claims.org || !*id.claims.org)) {
        reply_json_string(req, 401, "Only orgs can call this api");
        goto out;
    }
    if (check_params(s, req, route, &q, &b, &party_id) != 0) goto out;

    c.s = s;
    c.party_route = route == ROUTE_PARTY;
    if (party_id) {
        snprintf(subject, sizeof subject, "/party/%lld", (long long)party_id);
        c.subject = subject;
    }
    c.consumer = consumer;
    c.size = b.size > MAX_SIZE ? MAX_SIZE : (size_t)b.size;
    c.has_from = q.from != NULL;
    c.from_us = b.from_us;
    c.has_to = q.to != NULL;
    c.to_us = b.to_us;
    c.n_types = q.n_types;
    c.n_sources = q.n_sources;
    if (fold_patterns(q.types, q.n_types, c.types) != 0 ||
        fold_patterns(q.sources, q.n_sources, c.sources) != 0) {
        srv_reply_empty(req, 500);
        goto out;
    }
    if (s->cfg->settle_us > 0) c.visible_before = srv_now_us() - s->cfg->settle_us;
    if (q.after && strcmp(q.after, "0") != 0 &&
        store_seq_of_id(s->store, q.after, strlen(q.after), &after_seq) != 0)
        after_seq = 0; /* an id that is not stored means from the beginning */

    if (route == ROUTE_ORG) {
        filter_buf_puts(&resource, app_resource_prefix);
        append_decoded_segment(&resource, org, org_n);
        filter_buf_puts(&resource, "_");
        append_decoded_segment(&resource, app, app_n);
        if (filter_buf_failed(&resource)) {
            srv_reply_empty(req, 500);
            goto out;
        }
        rc = store_scan_resource(s->store, resource.data, after_seq, MAX_EXAMINED, on_event, &c,
                                 &examined);
    } else {
        /* no subject index: every event is examined, within the same bound */
        rc = store_scan_all(s->store, after_seq, MAX_EXAMINED, on_event, &c, &examined);
    }
    if (rc != 0 || c.failed) {
        srv_log(SRV_LOG_ERROR, "app", "scan failed error=\"%s\"",
                rc ? store_strerror(rc) : "out of memory");
        srv_reply_problem(req, 500, "Internal Server Error", "The events could not be read.");
        goto out;
    }
    send_page(s, req, &c, examined, params, np);

out:
    for (size_t i = 0; i < MAX_PATTERNS; i++) {
        free(c.types[i]);
        free(c.sources[i]);
    }
    filter_buf_fini(&c.body);
    filter_buf_fini(&c.last_id);
    filter_buf_fini(&c.last_examined_id);
    filter_buf_fini(&c.fold);
    filter_buf_fini(&resource);
    free(storage);
    srv_identity_fini(&id);
}

/* ---- routing ---- */

int srv_app_route(srv_t *s, evhtp_request_t *req, srv_req_t *rctx, const char *path)
{
    const char *org = NULL, *app = NULL;
    size_t org_n = 0, app_n = 0;
    htp_method m = evhtp_request_get_method(req);
    int route = classify(path, &org, &org_n, &app, &app_n);

    switch (route) {
    case ROUTE_NONE:
        return 0;
    case ROUTE_POST:
        if (m != htp_method_POST) {
            set_header(req, "Allow", "POST");
            srv_reply_empty(req, 405);
            return 1;
        }
        handle_post(s, req, rctx);
        return 1;
    default:
        if (m != htp_method_GET) {
            set_header(req, "Allow", "GET");
            srv_reply_empty(req, 405);
            return 1;
        }
        handle_get(s, req, route, org, org_n, app, app_n);
        return 1;
    }
}
