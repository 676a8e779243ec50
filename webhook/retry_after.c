/* webhook/retry_after.c: the Retry-After header of a 429 or 503 answer (RFC 9110 §10.2.3):
 * delta-seconds, or an HTTP-date (§5.6.7) in the preferred IMF-fixdate form or one of the two
 * obsolete forms recipients must still accept (RFC 850 and asctime). Pure: no clock of its own, no
 * time zone (timegm is avoided on purpose: a civil-date calculation is all it takes). */
#include "webhook/internal.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define MAX_DELTA_S (100LL * 365 * 86400) /* larger values saturate; opts caps them anyway */

typedef struct {
    const char *p, *end;
} scan_t;

static int lit(scan_t *s, const char *l)
{
    size_t n = strlen(l);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, l, n) != 0) return 0;
    s->p += n;
    return 1;
}

/* Exactly n digits. */
static int digits(scan_t *s, int n, int *out)
{
    int v = 0;
    if (s->end - s->p < n) return 0;
    for (int i = 0; i < n; i++) {
        if (s->p[i] < '0' || s->p[i] > '9') return 0;
        v = v * 10 + (s->p[i] - '0');
    }
    s->p += n;
    *out = v;
    return 1;
}

/* One of names[0..n) (compared case-insensitively); its index, or -1. */
static int word(scan_t *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if ((size_t)(s->end - s->p) >= l && strncasecmp(s->p, names[i], l) == 0) {
            s->p += l;
            return i;
        }
    }
    return -1;
}

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/* long names first: "Monday" must not stop at "Mon" */
static const char *const days_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};
static const char *const days_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

/* "HH:MM:SS" */
static int time_of_day(scan_t *s, int *secs)
{
    int h, m, sec;
    if (!digits(s, 2, &h) || !lit(s, ":") || !digits(s, 2, &m) || !lit(s, ":") ||
        !digits(s, 2, &sec))
        return 0;
    if (h > 23 || m > 59 || sec > 60) return 0; /* 60: a leap second */
    *secs = h * 3600 + m * 60 + sec;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int valid_date(int y, int m, int d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return !(m == 2 && d == 29 && !leap);
}

/* The civil year of a Unix time in seconds. */
static int year_of(int64_t t)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int y = 1970;
    while (days_from_civil(y + 1, 1, 1) <= days)
        y++;
    while (days_from_civil(y, 1, 1) > days)
        y--;
    return y;
}

/* An HTTP-date in [p, end) as Unix seconds. */
static int http_date(const char *p, const char *end, int64_t now_s, int64_t *out)
{
    scan_t s = {p, end};
    int y = 0, m, d = 0, secs = 0;
    const char *start = s.p;
    if (word(&s, days_short, 7) >= 0 && lit(&s, ", ")) {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (!digits(&s, 2, &d) || !lit(&s, " ") || (m = word(&s, months, 12)) < 0 ||
            !lit(&s, " ") || !digits(&s, 4, &y) || !lit(&s, " ") || !time_of_day(&s, &secs) ||
            !lit(&s, " GMT"))
            return -1;
    } else if ((s.p = start, word(&s, days_long, 7) >= 0) && lit(&s, ", ")) {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        int yy;
        if (!digits(&s, 2, &d) || !lit(&s, "-") || (m = word(&s, months, 12)) < 0 ||
            !lit(&s, "-") || !digits(&s, 2, &yy) || !lit(&s, " ") || !time_of_day(&s, &secs) ||
            !lit(&s, " GMT"))
            return -1;
        /* RFC 9110: more than 50 years ahead means the most recent past year with those digits */
        int now_y = year_of(now_s);
        y = now_y - now_y % 100 + yy;
        if (y > now_y + 50) y -= 100;
    } else if ((s.p = start, word(&s, days_short, 7) >= 0) && lit(&s, " ")) {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if ((m = word(&s, months, 12)) < 0 || !lit(&s, " ")) return -1;
        if (!(lit(&s, " ") && digits(&s, 1, &d)) && !digits(&s, 2, &d)) return -1;
        if (!lit(&s, " ") || !time_of_day(&s, &secs) || !lit(&s, " ") || !digits(&s, 4, &y))
            return -1;
    } else {
        return -1;
    }
    if (s.p != s.end || !valid_date(y, m + 1, d)) return -1;
    *out = days_from_civil(y, m + 1, d) * 86400 + secs;
    return 0;
}

int retry_after_parse(const char *v, int64_t now_us, int64_t *delay_us)
{
    const char *end = v + strlen(v);
    while (*v == ' ' || *v == '\t')
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (v == end) return -1;
    if (*v >= '0' && *v <= '9') {
        int64_t secs = 0;
        for (const char *p = v; p < end; p++) {
            if (*p < '0' || *p > '9') return -1;
            if (secs < MAX_DELTA_S) secs = secs * 10 + (*p - '0');
        }
        if (secs > MAX_DELTA_S) secs = MAX_DELTA_S;
        *delay_us = secs * 1000000;
        return 0;
    }
    int64_t t;
    if (http_date(v, end, now_us / 1000000, &t) != 0) return -1;
    if (t > now_us / 1000000 + MAX_DELTA_S) t = now_us / 1000000 + MAX_DELTA_S;
    int64_t d = t * 1000000 - now_us;
    *delay_us = d > 0 ? d : 0;
    return 0;
}
