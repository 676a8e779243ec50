/* server/openapi: serves the embedded OpenAPI document (see openapi.h). */
#include "server/openapi.h"

#include <string.h>
#include <strings.h>

#include "server/server.h"

/* Defined in the file tools/embed.py generates from docs/openapi.json. */
extern const unsigned char srv_openapi_doc[];
extern const size_t srv_openapi_doc_len;

int srv_openapi_route(struct srv *s, evhtp_request_t *req, const char *path)
{
    size_t n = sizeof SRV_OPENAPI_PATH - 1;
    htp_method m = evhtp_request_get_method(req);
    (void)s;
    if (strncasecmp(path, SRV_OPENAPI_PATH, n) != 0 ||
        !(path[n] == '\0' || (path[n] == '/' && path[n + 1] == '\0')))
        return 0;
    if (m != htp_method_GET && m != htp_method_HEAD) {
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("Allow", "GET", 0, 0));
        srv_reply_empty(req, 405);
        return 1;
    }
    srv_reply_text(req, 200, "application/json", (const char *)srv_openapi_doc,
                   srv_openapi_doc_len);
    return 1;
}
