/* server/app: the Altinn app events API (api.md §3), for Altinn Studio apps:
 *
 *   POST /events/api/v1/app                  an app publishes an event about one of its instances
 *   GET  /events/api/v1/app/{org}/{app}      an org reads the events of one app
 *   GET  /events/api/v1/app/party            any caller reads the app events about one party
 *
 * Paths are matched case-insensitively and may end in one slash, like every other route.
 *
 * POST: the app is named by the PlatformAccessToken header (a JWT whose iss is the org and
 * urn:altinn:app the app), verified like the bearer token (signature checked under --auth jwt,
 * read unverified otherwise). Under --auth none the header may be left out: the org and the app
 * are then the first two segments of the event's source path (a source with fewer is a 403, as a
 * missing token is). The server makes the CloudEvent (id, time, resource, resourceinstance), runs
 * it through the same validation as a publish (filter_event_parse) and adds it to the group commit;
 * the commit answers 201 with the id as a JSON string and Location: {subject}. That answer needs
 * two fields of srv_pending_t that the commit reads: created_id (the JSON-string body; empty for
 * every other pending entry) and location (a malloc'd copy of the subject the commit frees).
 *
 * GET: results are read through a bounded scan (at most 10 000 events examined per request; the
 * `next` link then points past what was examined, as in §2), each event checked against the
 * authorizer with action "read" for the caller's consumer; unauthorized events are skipped.
 * `from`/`to` are compared as instants with the event's time (events without one never match
 * them). `type` and `source` are SQL LIKE patterns ('%' any run, '_' one character) compared
 * case-insensitively (ASCII letters). */
#ifndef HENDELSE_SERVER_APP_H
#define HENDELSE_SERVER_APP_H

#include "server/server.h"

/* Handles the request if path is one of the app events paths: answers it fully (also 405 with
 * Allow for a method the path does not take) and returns 1. Returns 0, touching nothing, for any
 * other path. rctx is the request's state (NULL only when it could not be allocated). */
int srv_app_route(srv_t *s, evhtp_request_t *req, srv_req_t *rctx, const char *path);

#endif
