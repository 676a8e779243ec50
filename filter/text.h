/* filter/text: pure string checks and conversions used across the modules. No I/O, no clocks. */
#ifndef HENDELSE_FILTER_TEXT_H
#define HENDELSE_FILTER_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 1 if s is a valid Altinn URN: ^urn:[a-z0-9-]{1,30}(:[a-z0-9()+,.\-;$_!/]{1,100}){1,10}$ */
int filter_urn_valid(const char *s, size_t n);

/* Parses an RFC 3339 date-time ("2026-01-02T03:04:05.123+01:00", 'T'/'t' and 'Z'/'z' accepted, a
 * zone is required). On success returns 0, writes the instant as microseconds since the Unix epoch
 * to *us_out (may be NULL), and if out is non-NULL writes the UTC form
 * "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (fraction digits kept as written) NUL-terminated into
 * out[outlen] (outlen >= 40 suffices). Returns -1 if s is not a valid date-time (month/day ranges,
 * leap years, hour 00-23, minute and second 00-59, second 60 allowed only as a leap second, offsets
 * within +-23:59). */
int filter_time_parse(const char *s, size_t n, int64_t *us_out, char *out, size_t outlen);

/* Like filter_time_parse but the zone is optional; *has_zone tells whether one was given. */
int filter_time_parse_zone_optional(const char *s, size_t n, int64_t *us_out, int *has_zone);

/* Formats microseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.ffffffZ" into out (>= 32 bytes). */
void filter_time_format(int64_t us, char *out, size_t outlen);

/* 1 if s is a URI-reference (RFC 3986): any relative or absolute reference made of legal characters
 * with well-formed percent escapes; an absolute URI needs a valid scheme. */
int filter_uri_reference_valid(const char *s, size_t n);
/* 1 if s is an absolute URI (scheme ":" ...). */
int filter_uri_absolute_valid(const char *s, size_t n);
/* 1 if s is an RFC 2045/9110 media type: type "/" subtype *( OWS ";" OWS parameter ). */
int filter_media_type_valid(const char *s, size_t n);
/* 1 if s is canonical standard base64 (RFC 4648 §4, padding required, no whitespace). */
int filter_base64_valid(const char *s, size_t n);

/* SQL LIKE-style pattern match used by the events query's type filter: '%' matches any run of
 * characters (also empty), '_' exactly one character (one UTF-8 code point), everything else
 * itself, case-sensitive. Linear-time-bounded (no exponential backtracking). Returns 1 on match. */
int filter_like_match(const char *pat, size_t plen, const char *s, size_t slen);

#endif
