/* filter/subindex: the in-memory subscription index that maps an event to the subscriptions whose
 * filters hold (api.md §5 "matching"). Pure: no I/O, no clocks, no globals. Not thread-safe.
 *
 * Matching cost follows the number of subscriptions that could match, not the total: subscriptions
 * are hashed by resourceFilter, and within a resource by subjectFilter (a subscription without a
 * subject filter sits in the resource's "any subject" list). The type filter and source filter are
 * then checked on that small set. */
#ifndef HENDELSE_FILTER_SUBINDEX_H
#define HENDELSE_FILTER_SUBINDEX_H

#include <stddef.h>
#include <stdint.h>

/* The filters of one subscription. Strings are copied by filter_subindex_add. */
typedef struct {
    uint64_t id;          /* > 0, unique in the index */
    const char *resource; /* resourceFilter, required; compared exactly with the event's resource */
    const char *subject; /* subjectFilter or NULL (any); an event without subject matches only "" */
    const char *type;    /* typeFilter or NULL (any); exact */
    const char *source;  /* sourceFilter or NULL (any): see filter_source_prefix_match */
} filter_sub_spec_t;

/* The attributes of an event that matching reads (NUL-terminated; subject may be NULL). */
typedef struct {
    const char *resource;
    const char *subject;
    const char *type;
    const char *source;
} filter_match_event_t;

typedef struct filter_subindex filter_subindex_t;

/* A new empty index, or NULL on allocation failure. */
filter_subindex_t *filter_subindex_new(void);
void filter_subindex_free(filter_subindex_t *idx);

/* Adds (or, if spec->id is present, replaces) a subscription. user is an opaque pointer handed back
 * by filter_subindex_match. Returns 0, or -1 on allocation failure or a missing id/resource (the
 * index is then unchanged). */
int filter_subindex_add(filter_subindex_t *idx, const filter_sub_spec_t *spec, void *user);

/* Removes a subscription; returns 0, or -1 if it was not there. */
int filter_subindex_remove(filter_subindex_t *idx, uint64_t id);

/* The user pointer of a subscription, or NULL. */
void *filter_subindex_get(const filter_subindex_t *idx, uint64_t id);

/* Calls fn(ctx, id, user) for every subscription whose filters all hold for ev, and returns how
 * many matched. The order is unspecified. fn must not change the index. */
typedef void (*filter_match_fn)(void *ctx, uint64_t id, void *user);
size_t filter_subindex_match(const filter_subindex_t *idx, const filter_match_event_t *ev,
                             filter_match_fn fn, void *ctx);

size_t filter_subindex_count(const filter_subindex_t *idx);

/* 1 if the source filter URL is a prefix of source in whole path segments with the same scheme,
 * host and port (scheme and host compared case-insensitively; a default port equals its absence:
 * https://h/a matches https://h:443/a/b but not https://h/ab or http://h/a). Query and fragment of
 * source are ignored for the path comparison. */
int filter_source_prefix_match(const char *filter, const char *source);

/* Parses a schedule "10s,30s,1m,5m" (durations as integers with ms, s, m, h or d; a bare integer is
 * seconds) into out[0..max). Returns the number of entries (>= 1), or -1 on a syntax error, an
 * empty entry, a zero or negative value, or more than max entries. */
int filter_schedule_parse(const char *s, int64_t *out_us, size_t max);

#endif
