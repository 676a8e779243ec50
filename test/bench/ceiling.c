/* The ceiling of the benchmarks: a trivial libevhtp responder on one event loop that reads the
 * whole POST body and answers 200 with an empty body, the way hendelse answers a publish. Whatever
 * hendelse does beyond this (parse, validate, store, fsync) is measured as a ratio to it.
 *   usage: bench-ceiling PORT */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>

#include <event2/event.h>
#include "server/evhtp_inc.h"

static void on_request(evhtp_request_t *req, void *arg)
{
    (void)arg;
    evbuffer_drain(req->buffer_in, evbuffer_get_length(req->buffer_in));
    evhtp_send_reply(req, EVHTP_RES_OK);
}

int main(int argc, char **argv)
{
    struct event_base *base = event_base_new();
    evhtp_t *htp = evhtp_new(base, NULL);
    int port = argc > 1 ? atoi(argv[1]) : 5090;

    signal(SIGPIPE, SIG_IGN);
    evhtp_enable_flag(htp, EVHTP_FLAG_ENABLE_NODELAY);
    evhtp_set_gencb(htp, on_request, NULL);
    if (evhtp_bind_socket(htp, "127.0.0.1", (uint16_t)port, 1024) != 0) {
        perror("bind");
        return 1;
    }
    printf("ceiling listening on http://127.0.0.1:%d\n", port);
    fflush(stdout);
    event_base_dispatch(base);
    return 0;
}
