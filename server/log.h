/* server/log: one line per event on stderr, as text ("time level module message key=value ...") or
 * as one JSON object per line ({"time":..,"level":..,"module":..,"msg":.., plus the key=value pairs
 * as members}); and the sampler of the request log. The settings are made once at start-up; srv_log
 * itself may be called from any thread. */
#ifndef HENDELSE_SERVER_LOG_H
#define HENDELSE_SERVER_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SRV_LOG_DEBUG = 0, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR } srv_log_level_t;

/* --request-log: every request, none, or sampled at high rates (the default). */
typedef enum { SRV_REQLOG_SAMPLE = 0, SRV_REQLOG_ON, SRV_REQLOG_OFF } srv_reqlog_mode_t;

/* Lines below this level are dropped. Default SRV_LOG_INFO. */
void srv_log_set_level(srv_log_level_t level);

/* json != 0: one JSON object per line; else text (the default). */
void srv_log_set_format(int json);

/* Writes one line: UTC time with microseconds, the level, the module, then the formatted message.
 * The message should be "what happened key=value ..."; a value with spaces is written key="..."
 * (see srv_log_token). In JSON the words before the first key=value are "msg" and each pair is a
 * member (an integer value as a number). It must not contain secrets. */
void srv_log(srv_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s into out (at most outlen bytes, NUL-terminated) as one key=value value: as it is when it
 * holds only printable ASCII other than space, '"' and '\\'; else quoted, with '"' and '\\' escaped
 * and other bytes outside printable ASCII as \xNN. Returns out. */
const char *srv_log_token(const char *s, char *out, size_t outlen);

void srv_log_set_request_mode(srv_reqlog_mode_t mode);

/* Whether the request finishing at now_us is logged: 0 if not, else the sample rate N (the line
 * stands for N requests). Sampling: within each second of the clock, the first 100 requests are
 * logged, then one in 10 up to the 1000th, one in 100 up to the 10000th, and so on. Costs a few
 * comparisons; loop thread only. */
unsigned srv_log_request_sample(int64_t now_us);

#endif
