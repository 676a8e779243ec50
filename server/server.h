/* server/server: the state shared by the HTTP handlers of one running server, and the helpers they
 * use (authentication, replies). Internal to server/. */
#ifndef HENDELSE_SERVER_SERVER_H
#define HENDELSE_SERVER_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include "server/evhtp_inc.h"

#include "filter/event.h"
#include "filter/json.h"
#include "server/cli.h"
#include "server/jwt.h"
#include "server/metrics.h"
#include "store/store.h"

struct srv_sub;
struct srv_subs;
struct webhook;

/* What a request waiting for the next commit waits for. */
enum {
    SRV_PENDING_EVENT = 0,  /* a publish: ev is appended by the commit */
    SRV_PENDING_SUB_CREATE, /* a new subscription (or a dedupe hit on one not yet committed) */
    SRV_PENDING_SUB_DELETE,
    SRV_PENDING_DONE, /* handled already in this commit */
};

/* One request waiting in the open batch for the commit that answers it. */
typedef struct {
    int kind;
    evhtp_request_t *req; /* NULL once the client has gone away (see on_request_fini) */
    struct srv_req *rctx;
    filter_event_t *ev; /* SRV_PENDING_EVENT */
    size_t group; /* on the entry that carries req: how many entries (events) it answers for */
    const store_result_t *res; /* set by the commit */
    /* app events (POST /events/api/v1/app) answer 201 with the id instead of 200: when
     * created_id[0] is set, the success reply is 201 with created_id (a JSON string) as the body
     * and Location: location (malloc'd, owned by the entry, freed by the commit) */
    char created_id[64];
    char *location;
    char *who; /* an event's publisher, for the audit trail (owned, freed by the commit) */
    struct srv_sub *sub; /* SRV_PENDING_SUB_* */
} srv_pending_t;

typedef struct srv {
    struct event_base *base;
    evhtp_t *htp;
    const srv_config_t *cfg;
    store_t *store;
    srv_jwt_keys_t *keys;
    char base_url[512];

    /* group commit (commit.c): the open batch, the job in the committer's hands */
    struct event *commit_ev;
    srv_pending_t *pending; /* the open batch's waiting requests */
    size_t n_pending, cap_pending;
    srv_pending_t *inflight; /* the committing job's requests */
    size_t n_inflight, cap_inflight;
    struct srv_committer *committer;
    int job_busy;
    store_batch_t *batch; /* delivery state written by the webhook engine, with the events */

    struct srv_subs *subs;
    struct webhook *webhook;
    struct srv_authz *authz;    /* the policy of --authz FILE; NULL = allow-all */
    struct srv_register *reg;   /* the table of --register FILE; NULL = none */
    struct event *retention_ev; /* the prune timer (audit.c); NULL without --retention */

    /* replies recorded while a handler ran, sent by flush_ev (see http.c, finish()) */
    struct event *flush_ev;
    struct srv_req **ready;
    size_t n_ready, cap_ready;

    struct srv_conn *conns; /* open connections (http.c) */
    size_t n_conns;

    int stopping;
    uint64_t n_published, n_duplicates, n_batches;
    srv_metrics_t metrics; /* GET /metrics (metrics.c): loop thread only */
} srv_t;

/* Per-request state, allocated when the headers are in and freed in on_request_fini. */
typedef struct srv_req {
    srv_t *srv;
    struct srv_conn *conn; /* its connection (http.c); NULL once the connection is being freed */
    size_t body_len;
    size_t limit; /* the body limit of this request */
    int too_big;  /* the body passed max-event-bytes: it was drained, the answer will be 413 */
    long pending; /* index into srv->pending (or srv->inflight) while waiting for a commit, else -1
                   */
    int inflight; /* the entry is in srv->inflight: its commit is under way */
    evhtp_request_t *req;
    int in_handler; /* the route handler is running: replies are recorded, not sent */
    int status;     /* the recorded reply status */
    int paused;     /* the request is paused: a reply must resume it */
    long ready;     /* index into srv->ready while a recorded reply waits, else -1 */

    /* for the request log (http.c, log_request) */
    int64_t start_us;  /* when the headers were in */
    int sent_status;   /* the status sent; 0 while none was */
    size_t sent_bytes; /* the body size sent */
} srv_req_t;

/* The caller of a request. */
typedef struct {
    srv_claims_t claims;
    int all_scopes; /* --auth none: the dev identity holds every scope */
} srv_identity_t;

/* Authenticates the request's bearer token by the configured mode. Returns 0 and fills *id (release
 * with srv_identity_fini), or -1 (the caller answers 401). */
int srv_authenticate(srv_t *s, evhtp_request_t *req, srv_identity_t *id);
void srv_identity_fini(srv_identity_t *id);
/* The consumer of a caller (api.md §4 step 6): "/org/{org}", else "/user/{id}", else
 * "/systemuser/{uuid}", else "/organisation/{orgno}", written into out. 0, or -1 if there is none.
 */
int srv_identity_consumer(const srv_identity_t *id, char *out, size_t outlen);
int srv_identity_has_scope(const srv_identity_t *id, const char *scope);
/* 1 if the request carries a PlatformAccessToken that verifies and names an org and an app. */
int srv_has_platform_access_token(srv_t *s, evhtp_request_t *req);

/* Replies. Each sends the response; the request must not be touched afterwards. */
void srv_reply_empty(evhtp_request_t *req, int status);
void srv_reply_text(evhtp_request_t *req, int status, const char *ctype, const char *body,
                    size_t len);
/* RFC 9457 problem: {"type":...,"title":...,"status":N,"detail":...} (detail omitted when NULL). */
void srv_reply_problem(evhtp_request_t *req, int status, const char *title, const char *detail);
/* ASP.NET-style validation problem with errors = {key: [msg]} for n pairs. */
void srv_reply_validation(evhtp_request_t *req, const char *const *keys, const char *const *msgs,
                          size_t n);

/* The problem "type" URI for a status, as ASP.NET Core writes it. */
const char *srv_problem_type(int status);

/* Handlers (publish.c, query.c). */
void srv_handle_publish(srv_t *s, evhtp_request_t *req, srv_req_t *rctx);
void srv_handle_query(srv_t *s, evhtp_request_t *req);
/* The body limit of a publish with this Content-Type (a batch may be larger). */
size_t srv_publish_body_limit(const srv_t *s, const char *content_type);
typedef struct srv_committer srv_committer_t;
/* Creates the commit events on s->base and starts the committer thread (s->store must be open).
 * 0 or -1. */
int srv_commit_init(srv_t *s);
/* Commits and answers everything waiting, stops the committer thread, frees. */
void srv_commit_fini(srv_t *s);
/* Loads the delivery state and re-dispatches the events after the durable cursor. 0 or -1. */
int srv_deliver_start(srv_t *s);
/* Makes sure the group commit runs at the end of this loop pass. */
void srv_arm_commit(srv_t *s);
/* Adds a request to the open batch and pauses it: the commit answers it. NULL on failure. */
srv_pending_t *srv_pending_add(srv_t *s, evhtp_request_t *req, struct srv_req *rctx);
/* Commits and answers everything waiting before returning, blocking the loop (at shutdown). */
void srv_commit_now(srv_t *s);
/* The request went away: forget it in the open batch. */
void srv_publish_forget(srv_t *s, srv_req_t *rctx);

/* Pauses a request whose reply is sent later (http.c): libevhtp parses nothing more on its
 * connection until the reply is sent and the request resumed (evhtp_request_resume). Unlike
 * evhtp_request_pause it leaves the socket readable (no epoll change); input that arrives meanwhile
 * is held in the connection's buffer. */
void srv_request_pause(evhtp_request_t *req);

/* Microseconds since the Unix epoch (wall clock). */
int64_t srv_now_us(void);

#endif
