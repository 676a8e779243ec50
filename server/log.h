/* server/log: one line per event on stderr: "time level module message key=value ...". */
#ifndef HENDELSE_SERVER_LOG_H
#define HENDELSE_SERVER_LOG_H

typedef enum { SRV_LOG_DEBUG = 0, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR } srv_log_level_t;

/* Lines below this level are dropped. Default SRV_LOG_INFO. */
void srv_log_set_level(srv_log_level_t level);

/* Writes one line: UTC time with microseconds, the level, the module, then the formatted message.
 * The message should be "what happened key=value ..."; it must not contain secrets. */
void srv_log(srv_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
