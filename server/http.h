/* server/http: creates the libevhtp server on the event base and routes requests to handlers. */
#ifndef HENDELSE_SERVER_HTTP_H
#define HENDELSE_SERVER_HTTP_H

struct srv;

/* Creates s->htp on s->base with timeouts, the body limit hooks and the routes. 0 or -1. */
int srv_http_init(struct srv *s);

/* Closes every open connection (at shutdown, after the loop has stopped). */
void srv_http_close_all(struct srv *s);

#endif
