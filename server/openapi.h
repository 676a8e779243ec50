/* server/openapi: GET /events/api/v1/openapi.json, the OpenAPI document of the whole API. The
 * document is docs/openapi.json, embedded at build time (tools/embed.py), so what is served is
 * always the file in the repository. */
#ifndef HENDELSE_SERVER_OPENAPI_H
#define HENDELSE_SERVER_OPENAPI_H

#include "server/evhtp_inc.h"

struct srv;

/* The path the document is served at. */
#define SRV_OPENAPI_PATH "/events/api/v1/openapi.json"

/* Answers req when path is SRV_OPENAPI_PATH (compared case-insensitively, one trailing slash
 * allowed): 200 with the document (Content-Type application/json) to GET and HEAD, 405 with Allow
 * to other methods; no authentication. Returns 1 when it answered, 0 when the path is another. */
int srv_openapi_route(struct srv *s, evhtp_request_t *req, const char *path);

#endif
