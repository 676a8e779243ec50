/* filter/text: URN, time, URI, media type and base64 checks, and the LIKE matcher. */
#include "text.h"

#include <stdio.h>
#include <string.h>

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* ---- URN ---- */

static int urn_nid_char(int c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-';
}

static int urn_nss_char(int c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || (c && strchr("()+,.-;$_!/", c));
}

/* ^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}$ : neither class holds ':', so the text
 * splits at every ':' and each piece is checked on its own; no backtracking is ever needed. */
int filter_urn_valid(const char *s, size_t n)
{
    if (n < 4 || memcmp(s, "urn:", 4)) return 0;
    size_t i = 4, start = i;
    while (i < n && urn_nid_char((unsigned char)s[i]))
        i++;
    if (i - start < 1 || i - start > 30) return 0;
    int segs = 0;
    while (i < n) {
        if (s[i] != ':' || ++segs > 10) return 0;
        start = ++i;
        while (i < n && urn_nss_char((unsigned char)s[i]))
            i++;
        if (i - start < 1 || i - start > 100) return 0;
    }
    return segs >= 1;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (the era-based algorithm: exact for any year,
 * no tables, no loops). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly k digits at s[*i]; -1 if they are not all there. */
static int digits(const char *s, size_t n, size_t *i, int k)
{
    if (n - *i < (size_t)k) return -1;
    int v = 0;
    for (int j = 0; j < k; j++) {
        if (!is_digit((unsigned char)s[*i + j])) return -1;
        v = v * 10 + (s[*i + j] - '0');
    }
    *i += (size_t)k;
    return v;
}

static int expect(const char *s, size_t n, size_t *i, char c)
{
    if (*i >= n || s[*i] != c) return 0;
    (*i)++;
    return 1;
}

/* Writes v (0 <= v < 10^width) as exactly width decimal digits; returns the end. */
static char *put_digits(char *o, int v, int width)
{
    for (int k = width - 1; k >= 0; k--) {
        o[k] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + width;
}

static int parse_time(const char *s, size_t n, int zone_required, int64_t *us_out, char *out,
                      size_t outlen, int *has_zone)
{
    size_t i = 0;
    if (!s) return -1;
    int y = digits(s, n, &i, 4);
    if (y < 0 || !expect(s, n, &i, '-')) return -1;
    int mo = digits(s, n, &i, 2);
    if (mo < 1 || mo > 12 || !expect(s, n, &i, '-')) return -1;
    int d = digits(s, n, &i, 2);
    if (d < 1 || d > days_in_month(y, mo)) return -1;
    if (i >= n || (s[i] != 'T' && s[i] != 't')) return -1;
    i++;
    int h = digits(s, n, &i, 2);
    if (h < 0 || h > 23 || !expect(s, n, &i, ':')) return -1;
    int mi = digits(s, n, &i, 2);
    if (mi < 0 || mi > 59 || !expect(s, n, &i, ':')) return -1;
    int sec = digits(s, n, &i, 2);
    if (sec < 0 || sec > 60) return -1;

    const char *frac = NULL;
    size_t frac_len = 0;
    int64_t frac_us = 0;
    if (i < n && s[i] == '.') {
        frac = s + ++i;
        while (i < n && is_digit((unsigned char)s[i]))
            i++;
        frac_len = (size_t)(s + i - frac);
        if (frac_len < 1 || frac_len > 9) return -1;
        for (size_t k = 0; k < 6; k++)
            frac_us = frac_us * 10 + (k < frac_len ? frac[k] - '0' : 0);
    }

    int off = 0, zone = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
        zone = 1;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int oh = digits(s, n, &i, 2);
        if (oh < 0 || oh > 23 || !expect(s, n, &i, ':')) return -1;
        int om = digits(s, n, &i, 2);
        if (om < 0 || om > 59) return -1;
        off = sign * (oh * 60 + om);
        zone = 1;
    }
    if (i != n || (zone_required && !zone)) return -1;
    if (has_zone) *has_zone = zone;

    /* Normalise to UTC on a plain second count; the calendar conversion handles every day, month
     * and year boundary and leap day the offset may cross. */
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + (sec == 60 ? 59 : sec) -
                (int64_t)off * 60;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sod = t - days * 86400;
    int64_t uy;
    int um, ud;
    civil_from_days(days, &uy, &um, &ud);
    if (uy < 0 || uy > 9999) return -1;
    if (sec == 60) {
        /* A leap second can only be the last second of June or December, in UTC. */
        if (sod != 86399 || !((um == 6 && ud == 30) || (um == 12 && ud == 31))) return -1;
        t += 1; /* counted as the next second: POSIX time has no room for it */
    }
    if (us_out) *us_out = t * 1000000 + frac_us;
    if (out) {
        /* "YYYY-MM-DDTHH:MM:SS[.frac]Z", formatted by hand: this runs for every published event
         * and snprintf was a large part of the cost */
        size_t w = 20 + (frac ? 1 + frac_len : 0);
        char *o = out;
        if (w >= outlen) return -1;
        o = put_digits(o, (int)uy, 4);
        *o++ = '-';
        o = put_digits(o, um, 2);
        *o++ = '-';
        o = put_digits(o, ud, 2);
        *o++ = 'T';
        o = put_digits(o, (int)(sod / 3600), 2);
        *o++ = ':';
        o = put_digits(o, (int)(sod / 60 % 60), 2);
        *o++ = ':';
        o = put_digits(o, sec == 60 ? 60 : (int)(sod % 60), 2);
        if (frac) {
            *o++ = '.';
            memcpy(o, frac, frac_len);
            o += frac_len;
        }
        *o++ = 'Z';
        *o = '\0';
    }
    return 0;
}

int filter_time_parse(const char *s, size_t n, int64_t *us_out, char *out, size_t outlen)
{
    return parse_time(s, n, 1, us_out, out, outlen, NULL);
}

int filter_time_parse_zone_optional(const char *s, size_t n, int64_t *us_out, int *has_zone)
{
    return parse_time(s, n, 0, us_out, NULL, 0, has_zone);
}

void filter_time_format(int64_t us, char *out, size_t outlen)
{
    int64_t secs = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ", (long long)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (long long)rem);
}

/* ---- URI (RFC 3986) ---- */

static int is_unreserved(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_subdelim(int c)
{
    return c && strchr("!$&'()*+,;=", c) != NULL;
}

/* s[0..n) made of unreserved, sub-delims, percent escapes and the characters in extra. */
static int span_ok(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (n - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
                return 0;
            i += 2;
        } else if (!is_unreserved(c) && !is_subdelim(c) && !(c && strchr(extra, c))) {
            return 0;
        }
    }
    return 1;
}

static size_t find_any(const char *s, size_t from, size_t n, const char *set)
{
    for (size_t i = from; i < n; i++)
        if (strchr(set, s[i]) && s[i]) return i;
    return n;
}

static int authority_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at) {
        if (!span_ok(s, (size_t)(at - s), ":")) return 0;
        n -= (size_t)(at - s) + 1;
        s = at + 1;
    }
    size_t i;
    if (n && s[0] == '[') {
        /* IP-literal: IPv6 or IPvFuture. Checked for legal characters only. */
        const char *close = memchr(s, ']', n);
        if (!close || close == s + 1) return 0;
        for (const char *p = s + 1; p < close; p++)
            if (!is_unreserved((unsigned char)*p) && !is_subdelim((unsigned char)*p) && *p != ':')
                return 0;
        i = (size_t)(close - s) + 1;
    } else {
        i = find_any(s, 0, n, ":");
        if (!span_ok(s, i, "")) return 0;
    }
    if (i == n) return 1;
    if (s[i] != ':') return 0;
    for (i++; i < n; i++)
        if (!is_digit((unsigned char)s[i])) return 0;
    return 1;
}

static int uri_check(const char *s, size_t n, int need_scheme)
{
    if (!s) return 0;
    size_t i = 0;
    size_t k = find_any(s, 0, n, ":/?#");
    if (k < n && s[k] == ':') {
        /* A colon before any '/', '?' or '#' can only end a scheme (a relative path's first segment
         * may not hold one). */
        if (k == 0 || !is_alpha((unsigned char)s[0])) return 0;
        for (size_t j = 1; j < k; j++) {
            int c = (unsigned char)s[j];
            if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return 0;
        }
        i = k + 1;
    } else if (need_scheme) {
        return 0;
    }
    if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t e = find_any(s, i + 2, n, "/?#");
        if (!authority_ok(s + i + 2, e - i - 2)) return 0;
        i = e;
    }
    size_t q = find_any(s, i, n, "?#");
    if (!span_ok(s + i, q - i, ":@/")) return 0;
    if (q < n && s[q] == '?') {
        size_t f = find_any(s, q + 1, n, "#");
        if (!span_ok(s + q + 1, f - q - 1, ":@/?")) return 0;
        q = f;
    }
    if (q < n && !span_ok(s + q + 1, n - q - 1, ":@/?")) return 0;
    return 1;
}

int filter_uri_reference_valid(const char *s, size_t n)
{
    return uri_check(s, n, 0);
}

int filter_uri_absolute_valid(const char *s, size_t n)
{
    return uri_check(s, n, 1);
}

/* ---- media type (RFC 9110 §8.3.1) ---- */

static int is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t token(const char *s, size_t i, size_t n)
{
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    return i;
}

static size_t ows(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* type "/" subtype *( OWS ";" OWS [ parameter ] ), parameter = token "=" ( token / quoted-string ).
 * Like RFC 9110, an empty parameter ("text/plain;") is allowed; whitespace around the whole is not.
 */
int filter_media_type_valid(const char *s, size_t n)
{
    if (!s) return 0;
    size_t i = token(s, 0, n);
    if (i == 0 || i >= n || s[i] != '/') return 0;
    size_t j = token(s, i + 1, n);
    if (j == i + 1) return 0;
    i = j;
    while (i < n) {
        i = ows(s, i, n);
        if (i >= n || s[i] != ';') return 0;
        i = ows(s, i + 1, n);
        if (i >= n || s[i] == ';') continue;
        j = token(s, i, n);
        if (j == i || j >= n || s[j] != '=') {
            if (j == i) continue; /* empty parameter; what follows must be OWS ";" or the end */
            return 0;
        }
        i = j + 1;
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i >= n) return 0;
                unsigned char c = (unsigned char)s[i];
                if (c == '"') break;
                if (c == '\\') {
                    if (++i >= n) return 0;
                    c = (unsigned char)s[i];
                    if (c != '\t' && (c < 0x20 || c == 0x7f)) return 0;
                } else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
                    return 0;
                }
            }
            i++;
        } else {
            j = token(s, i, n);
            if (j == i) return 0;
            i = j;
        }
    }
    return 1;
}

/* ---- base64 ---- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (is_digit(c)) return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Canonical: length a multiple of 4, at most two '=' and only at the end, and the bits the padding
 * leaves over are zero (RFC 4648 §3.5), so each byte string has exactly one accepted encoding. */
int filter_base64_valid(const char *s, size_t n)
{
    if (!s || n % 4) return 0;
    size_t pad = 0;
    if (n && s[n - 1] == '=') pad = n >= 2 && s[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (b64val((unsigned char)s[i]) < 0) return 0;
    if (pad) {
        int last = b64val((unsigned char)s[n - pad - 1]);
        if (pad == 1 && (last & 3)) return 0;
        if (pad == 2 && (last & 15)) return 0;
    }
    return 1;
}

/* ---- LIKE ---- */

/* Bytes in the UTF-8 sequence at s (1 for a stray byte, never past the end). */
static size_t cp_len(const char *s, size_t avail)
{
    unsigned char c = (unsigned char)s[0];
    size_t l = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (l > avail) return 1;
    for (size_t i = 1; i < l; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) return 1;
    return l;
}

/* Greedy two-pointer wildcard matching: on a mismatch, retry from the last '%' one character
 * further on. Only the last '%' matters (an earlier one could absorb anything a later retry needs),
 * so the work is at most O(plen * slen) whatever the pattern. */
int filter_like_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    size_t p = 0, i = 0, star_p = 0, star_i = 0;
    int have_star = 0;
    while (i < slen) {
        if (p < plen && pat[p] == '%') {
            have_star = 1;
            star_p = ++p;
            star_i = i;
        } else if (p < plen && pat[p] == '_') {
            p++;
            i += cp_len(s + i, slen - i);
        } else if (p < plen && pat[p] == s[i]) {
            p++;
            i++;
        } else if (have_star) {
            p = star_p;
            star_i += cp_len(s + star_i, slen - star_i);
            i = star_i;
        } else {
            return 0;
        }
    }
    while (p < plen && pat[p] == '%')
        p++;
    return p == plen;
}
