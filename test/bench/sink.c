/* The fan-out sink of the benchmarks: a fast keep-alive HTTP responder (libevent's evhttp server on
 * one loop) that answers 200 to every POST, counts deliveries, and measures publish-to-delivery
 * latency from the event's "time" attribute (the publisher stamps it with microseconds). The
 * handshake (platform.events.validatesubscription) is answered but not counted.
 *   usage: bench-sink PORT [SAMPLES_FILE]
 * It prints its ready line, then on SIGTERM or SIGINT one JSON line:
 *   {"deliveries":N,"first_us":T0,"last_us":T1,"p50_ms":..,"p99_ms":..,"max_ms":..}
 * first_us/last_us are the arrival times of the first and last counted delivery. With SAMPLES_FILE
 * it also writes every latency sample (milliseconds, ascending, one a line) there, for the chart.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#define MAX_SAMPLES (4u << 20)

static uint64_t deliveries;
static int64_t first_us, last_us;
static float *lat_ms;
static size_t n_lat;

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

/* "2026-01-01T10:00:00.123456Z" -> microseconds since the epoch, or -1. */
static int64_t parse_time(const char *p)
{
    struct tm tm;
    int us = 0, digits = 0;
    const char *f;
    memset(&tm, 0, sizeof tm);
    if (sscanf(p, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    f = p + 19;
    if (*f == '.')
        for (f++; *f >= '0' && *f <= '9'; f++)
            if (digits < 6) {
                us = us * 10 + (*f - '0');
                digits++;
            }
    while (digits++ < 6)
        us *= 10;
    return (int64_t)timegm(&tm) * 1000000 + us;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = (char *)evbuffer_pullup(in, (ev_ssize_t)len);
    (void)arg;
    if (body && len && !memmem(body, len, "validatesubscription", 20)) {
        int64_t t = now_us();
        char *tp = memmem(body, len, "\"time\":\"", 8);
        deliveries++;
        if (!first_us) first_us = t;
        last_us = t;
        if (tp && n_lat < MAX_SAMPLES && (size_t)(tp - body) + 40 < len) {
            int64_t sent = parse_time(tp + 8);
            if (sent > 0) lat_ms[n_lat++] = (float)(t - sent) / 1000.0f;
        }
    }
    evhttp_send_reply(req, 200, "OK", NULL);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    struct event *ev_term, *ev_int;
    int port = argc > 1 ? atoi(argv[1]) : 5091;

    lat_ms = malloc(MAX_SAMPLES * sizeof *lat_ms);
    signal(SIGPIPE, SIG_IGN);
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    if (!lat_ms || evhttp_bind_socket(http, "127.0.0.1", (uint16_t)port) != 0) {
        perror("bind");
        return 1;
    }
    ev_term = evsignal_new(base, SIGTERM, on_signal, base);
    ev_int = evsignal_new(base, SIGINT, on_signal, base);
    evsignal_add(ev_term, NULL);
    evsignal_add(ev_int, NULL);
    printf("sink listening on http://127.0.0.1:%d\n", port);
    fflush(stdout);
    event_base_dispatch(base);

    qsort(lat_ms, n_lat, sizeof *lat_ms, cmp_float);
    if (argc > 2) {
        FILE *f = fopen(argv[2], "w");
        for (size_t i = 0; f && i < n_lat; i++)
            fprintf(f, "%.3f\n", lat_ms[i]);
        if (f) fclose(f);
    }
    printf("{\"deliveries\":%llu,\"first_us\":%lld,\"last_us\":%lld,\"samples\":%zu,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
           (unsigned long long)deliveries, (long long)first_us, (long long)last_us, n_lat,
           n_lat ? lat_ms[n_lat / 2] : 0.0, n_lat ? lat_ms[(size_t)(n_lat * 0.99)] : 0.0,
           n_lat ? lat_ms[n_lat - 1] : 0.0);
    fflush(stdout);
    event_free(ev_term);
    event_free(ev_int);
    evhttp_free(http);
    event_base_free(base);
    free(lat_ms);
    return 0;
}
