#include "server/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "filter/json.h"

static srv_log_level_t min_level = SRV_LOG_INFO;
static int json_lines;
static srv_reqlog_mode_t request_mode = SRV_REQLOG_SAMPLE;

void srv_log_set_level(srv_log_level_t level)
{
    min_level = level;
}

void srv_log_set_format(int json)
{
    json_lines = json != 0;
}

void srv_log_set_request_mode(srv_reqlog_mode_t mode)
{
    request_mode = mode;
}

/* ---- the request log sampler ---- */

static int64_t sample_sec = -1;
static uint64_t sample_count;

unsigned srv_log_request_sample(int64_t now_us)
{
    uint64_t n, limit = 100;
    unsigned rate = 1;
    if (request_mode == SRV_REQLOG_OFF || min_level > SRV_LOG_INFO) return 0;
    if (request_mode == SRV_REQLOG_ON) return 1;
    if (now_us / 1000000 != sample_sec) {
        sample_sec = now_us / 1000000;
        sample_count = 0;
    }
    n = ++sample_count;
    while (n > limit && rate < 1000000000u) {
        rate *= 10;
        limit *= 10;
    }
    return n % rate == 0 ? rate : 0;
}

/* ---- text values ---- */

const char *srv_log_token(const char *s, char *out, size_t outlen)
{
    size_t o = 0, i;
    int plain = *s != '\0';
    static const char hex[] = "0123456789abcdef";

    if (outlen == 0) return out;
    for (i = 0; s[i] && plain; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' ||
            s[i] == '\\')
            plain = 0;
    if (plain) {
        snprintf(out, outlen, "%s", s);
        return out;
    }
    if (outlen < 3) {
        out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (o + 2 >= outlen) break;
            out[o++] = (char)c;
        } else if (c == '"' || c == '\\') {
            if (o + 3 >= outlen) break;
            out[o++] = '\\';
            out[o++] = (char)c;
        } else {
            if (o + 5 >= outlen) break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* ---- JSON lines ---- */

/* A bounded line buffer: an append that does not fit is dropped whole (the caller rolls back). */
typedef struct {
    char *p;
    size_t len, cap;
    int full;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (l->full || n > l->cap - l->len) {
        l->full = 1;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Appends s[0..n) as a JSON string; bytes that are not UTF-8 become U+FFFD. With unescape, the
 * \" \\ and \xNN escapes of srv_log_token are decoded first. */
static void put_json_str(line_t *l, const char *s, size_t n, int unescape)
{
    static const char hex[] = "0123456789abcdef";
    put(l, "\"", 1);
    for (size_t i = 0; i < n && !l->full;) {
        unsigned char c = (unsigned char)s[i];
        if (unescape && c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'x' && i + 3 < n && isxdigit((unsigned char)s[i + 2]) &&
                isxdigit((unsigned char)s[i + 3])) {
                char h[3] = {s[i + 2], s[i + 3], 0};
                unsigned char b = (unsigned char)strtol(h, NULL, 16);
                if (b < 0x20 || b == 0x7f) {
                    char e[7] = {'\\', 'u', '0', '0', hex[b >> 4], hex[b & 15], 0};
                    put(l, e, 6);
                } else {
                    put(l, "\\ufffd", 6);
                }
                i += 4;
                continue;
            }
            if (s[i + 1] == '"' || s[i + 1] == '\\') {
                put(l, s[i + 1] == '"' ? "\\\"" : "\\\\", 2);
                i += 2;
                continue;
            }
        }
        if (c == '"' || c == '\\') {
            put(l, c == '"' ? "\\\"" : "\\\\", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char e[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
            put(l, e, 6);
            i++;
        } else if (c < 0x80) {
            put(l, (const char *)&s[i], 1);
            i++;
        } else {
            size_t k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            if (k > 1 && i + k <= n && filter_utf8_valid(s + i, k)) {
                put(l, s + i, k);
                i += k;
            } else {
                put(l, "\\ufffd", 6);
                i++;
            }
        }
    }
    put(l, "\"", 1);
}

/* Length of "key=" at s (a name of letters, digits, '_', '.', '-' and then '='), or 0. */
static size_t key_at(const char *s)
{
    size_t n = 0;
    if (!isalpha((unsigned char)s[0]) && s[0] != '_') return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.' || s[n] == '-')
        n++;
    return s[n] == '=' ? n + 1 : 0;
}

/* Where the next " key=" starts after s (at the space), or the end. */
static const char *next_pair(const char *s)
{
    for (; *s; s++)
        if (*s == ' ' && key_at(s + 1)) return s;
    return s;
}

static int is_int(const char *s, size_t n)
{
    size_t i = s[0] == '-' ? 1 : 0;
    if (n <= i || n - i > 18 || (s[i] == '0' && n - i > 1)) return 0;
    for (; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return 1;
}

/* Turns "message key=value key=\"quoted value\" ..." into members of the open JSON object. */
static void json_members(line_t *l, const char *msg)
{
    const char *p = msg, *end;
    size_t mark;

    end = key_at(p) ? p : next_pair(p);
    mark = l->len;
    puts_(l, ",\"msg\":");
    put_json_str(l, p, (size_t)(end - p), 0);
    if (l->full) {
        l->len = mark;
        l->full = 0;
        puts_(l, ",\"msg\":\"(too long)\"");
        return;
    }
    p = *end == ' ' ? end + 1 : end;
    while (*p && !l->full) {
        size_t kl = key_at(p) - 1;
        const char *k = p, *v = p + kl + 1, *ve;
        int quoted = *v == '"';
        if (quoted) { /* to the closing quote that ends the text or comes before " key=" */
            const char *q = v + 1;
            ve = NULL;
            for (; *q; q++) {
                if (*q == '\\' && q[1]) {
                    q++;
                    continue;
                }
                if (*q == '"' && (q[1] == '\0' || (q[1] == ' ' && key_at(q + 2)))) {
                    ve = q;
                    break;
                }
            }
            if (!ve) quoted = 0; /* no closing quote: the rest as it is */
        }
        if (!quoted) ve = next_pair(v);
        mark = l->len;
        puts_(l, ",");
        if ((kl == 4 && (memcmp(k, "time", 4) == 0)) || (kl == 5 && memcmp(k, "level", 5) == 0) ||
            (kl == 6 && memcmp(k, "module", 6) == 0) || (kl == 3 && memcmp(k, "msg", 3) == 0))
            put(l, "\"x_", 3), put(l, k, kl), put(l, "\":", 2);
        else
            put(l, "\"", 1), put(l, k, kl), put(l, "\":", 2);
        if (quoted)
            put_json_str(l, v + 1, (size_t)(ve - v - 1), 1);
        else if (is_int(v, (size_t)(ve - v)))
            put(l, v, (size_t)(ve - v));
        else
            put_json_str(l, v, (size_t)(ve - v), 0);
        if (l->full) { /* drop the member that did not fit; the line stays an object */
            l->len = mark;
            break;
        }
        if (quoted) ve++;
        p = next_pair(ve);
        if (*p == ' ') p++;
    }
    l->full = 0;
}

void srv_log(srv_log_level_t level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[2048], stamp[80], out[6144];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    if (level < min_level) return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (json_lines) {
        line_t l = {out, 0, sizeof out - 2, 0};
        puts_(&l, "{\"time\":\"");
        puts_(&l, stamp);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, names[level]);
        puts_(&l, "\",\"module\":");
        put_json_str(&l, module, strlen(module), 0);
        json_members(&l, msg);
        memcpy(out + l.len, "}\n", 2);
        /* One write of a whole line keeps lines whole even if stderr is shared. */
        fwrite(out, 1, l.len + 2, stderr);
        return;
    }
    fprintf(stderr, "%s %s %s %s\n", stamp, names[level], module, msg);
}
