/* server/promtext: the Prometheus text exposition format 0.0.4 (families, samples, histograms)
 * written into a filter_buf_t. Pure: no server state, no I/O, so it is unit-tested on its own.
 * Label values given here are written escaped (backslash, double quote, newline). */
#ifndef HENDELSE_SERVER_PROMTEXT_H
#define HENDELSE_SERVER_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "filter/json.h"

/* The most finite buckets a histogram may have (the +Inf bucket comes on top). */
#define SRV_HISTO_MAX 24

/* A histogram's observations. Zero-initialised it is empty; its bucket bounds are not stored in
 * it but passed to every call (they are static arrays of the family), so observing is a short
 * scan and an add. counts[i] counts the observations in bucket i alone (not cumulative);
 * counts[n] those above the last bound. */
typedef struct {
    uint64_t counts[SRV_HISTO_MAX + 1];
    uint64_t count;
    double sum;
} srv_histo_t;

/* Adds v to h, whose finite upper bounds are le[0..n) in ascending order (n <= SRV_HISTO_MAX). */
void srv_histo_observe(srv_histo_t *h, const double *le, size_t n, double v);

/* "# HELP name help\n# TYPE name type\n" (type: "counter", "gauge", "histogram"). help must not
 * contain a newline or a backslash. */
void srv_prom_family(filter_buf_t *b, const char *name, const char *type, const char *help);

/* One sample line: name{label="value"} v, or name v when label is NULL. */
void srv_prom_u64(filter_buf_t *b, const char *name, const char *label, const char *value,
                  uint64_t v);
void srv_prom_double(filter_buf_t *b, const char *name, const char *label, const char *value,
                     double v);

/* The sample lines of histogram h with bounds le[0..n): name_bucket{le="..."} (cumulative, +Inf
 * last), name_sum, name_count. The family header is the caller's. */
void srv_prom_histo(filter_buf_t *b, const char *name, const srv_histo_t *h, const double *le,
                    size_t n);

#endif
