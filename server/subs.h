/* server/subs: subscriptions (api.md §4): the in-memory registry (by id, by owner, dedupe), the
 * stored record (JSON), the HTTP handlers, and the wiring of validation handshakes. */
#ifndef HENDELSE_SERVER_SUBS_H
#define HENDELSE_SERVER_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "server/evhtp_inc.h"
#include "server/server.h"

struct srv;
struct srv_req;

/* One subscription as the server knows it (private to subs.c). Memory: the registry keeps only
 * what matching, ownership checks and dedupe need (flags, the interned consumer and createdBy, the
 * compiled "filters", a dedupe hash); the full record lives in the store and is read back for GET,
 * lists and rewrites, except while a create waits for its commit. */
typedef struct srv_sub srv_sub_t;

typedef struct srv_subs srv_subs_t;

/* Creates the registry and loads every stored subscription into it, the match index and the
 * delivery engine (which must exist). Unvalidated ones restart their handshake. 0 or -1. */
int srv_subs_open(struct srv *s);
void srv_subs_close(struct srv *s);

/* Routes /events/api/v1/subscriptions[/...]; returns 0 if path is not one of its routes. */
int srv_subs_route(struct srv *s, evhtp_request_t *req, struct srv_req *rctx, const char *path);

struct store_batch;
/* Hands the subscription batch to a commit: swaps the open batch with *b (which must be empty). */
void srv_subs_swap_batch(struct srv *s, struct store_batch **b);

/* After the commit of a subscription batch (rc its result): answers the subscription requests among
 * entries[0..n) and applies them to the registry, the match index and the delivery engine. */
void srv_subs_finish(struct srv *s, srv_pending_t *entries, size_t n, int rc);

/* Called by the delivery engine: a handshake of sub_id succeeded. */
void srv_subs_on_validated(void *ctx, uint64_t sub_id);

/* 1 if no subscription change waits for a commit. */
int srv_subs_batch_empty(struct srv *s);

/* The ids collected by the last srv_subs_match. */
const uint64_t *srv_subs_match_ids(struct srv *s);

/* Collects the ids of the validated, enabled subscriptions whose filters all hold for ev (the
 * Altinn filters through the index, then the "filters" extension), into s->match_ids. */
struct filter_event;
size_t srv_subs_match(struct srv *s, const struct filter_event *ev);

/* 1 if some subscription's Altinn filters (the index) could match an event with these attributes;
 * 0 means srv_subs_match would find nothing, so the event need not be parsed. */
int srv_subs_may_match(struct srv *s, const char *resource, const char *subject, const char *type,
                       const char *source);

/* Called by the delivery engine: a delivery to sub_id got 410 Gone. */
void srv_subs_on_gone(void *ctx, uint64_t sub_id);

/* Counts the committed subscriptions by state (for metrics): disabled ones (410 Gone), else
 * validated or not yet validated. */
void srv_subs_count(struct srv *s, size_t *validated, size_t *unvalidated, size_t *disabled);

#endif
