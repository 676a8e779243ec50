/* server/audit: the audit trail and retention.
 *
 * Audit records (store_audit_t) are added to the batches of the group commit, never committed on
 * their own: a publish's record rides the commit of its event (srv_audit_publishes, from the
 * commit's start), a subscription change's the commit of the subscription record (srv_audit_sub,
 * into the subscription batch), a delivery attempt's the commit of the delivery state the engine
 * writes anyway (srv_audit_on_attempt, the webhook engine's on_attempt hook, into s->batch).
 * GET /events/api/v1/audit reads them (scope altinn:events.admin).
 *
 * Retention (--retention DUR, 0 = keep everything): a timer on the loop, once a second, checks with
 * one short read whether anything is older than the window and if so adds one bounded prune pass
 * (store_batch_prune, at most SRV_PRUNE_MAX events and audit records) to s->batch, so that pruning
 * runs inside the ordinary group commit, a little at a time, and never as a separate commit. */
#ifndef HENDELSE_SERVER_AUDIT_H
#define HENDELSE_SERVER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "server/server.h"

/* Events (and audit records) deleted at most per prune pass. */
#define SRV_PRUNE_MAX 1000

/* Arms the prune timer when s->cfg->retention_us > 0 (s->batch must exist). 0 or -1. */
int srv_retention_start(srv_t *s);
/* Stops and frees the timer. Safe when never started. */
void srv_retention_stop(srv_t *s);

/* Adds a publish record for each event entry of p[0..n) (who: the entry's who) to b, the batch
 * that is committed with those events. Failures are logged: the publish itself goes on. */
void srv_audit_publishes(srv_t *s, store_batch_t *b, const srv_pending_t *p, size_t n);

/* Adds a subscription-change record (action: "created", "deleted", "validated", "disabled",
 * "enabled") to b, the batch that commits the change. who: the consumer, or NULL for the server
 * itself. 0 or a store code (logged). */
int srv_audit_sub(store_batch_t *b, const char *action, uint64_t sub_id, const char *who);

/* webhook_opts_t.on_attempt: records a delivery attempt in the next commit (ctx: srv_t). */
void srv_audit_on_attempt(void *ctx, uint64_t sub_id, uint64_t seq, uint32_t attempt, int status,
                          const char *error, int64_t duration_us);

/* Routes GET /events/api/v1/audit; returns 0 if path is not it. */
int srv_audit_route(srv_t *s, evhtp_request_t *req, const char *path);

#endif
