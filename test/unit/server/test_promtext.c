/* Unit tests for server/promtext.c (the Prometheus text format 0.0.4): histogram bucketing at and
 * between bounds, +Inf and NaN, cumulative bucket lines, sum and count, family headers, label
 * escaping and float spelling. */
#include "filter/json.h"
#include "server/promtext.h"
#include "tap.h"

#include <math.h>
#include <string.h>

static const double le3[] = {0.001, 0.5, 2};

/* Compares b's text with want and resets b. */
static int text_is(filter_buf_t *b, const char *want)
{
    int same =
        !filter_buf_failed(b) && b->len == strlen(want) && memcmp(b->data, want, b->len) == 0;
    if (!same) printf("# got:\n%.*s# want:\n%s", (int)b->len, b->data ? b->data : "", want);
    filter_buf_reset(b);
    return same;
}

static void test_observe(void)
{
    srv_histo_t h;
    memset(&h, 0, sizeof h);
    srv_histo_observe(&h, le3, 3, 0);     /* first bucket */
    srv_histo_observe(&h, le3, 3, 0.001); /* on a bound: that bucket (le = less or equal) */
    srv_histo_observe(&h, le3, 3, 0.1);   /* between */
    srv_histo_observe(&h, le3, 3, 2.5);   /* above the last: +Inf */
    ok(h.counts[0] == 2 && h.counts[1] == 1 && h.counts[2] == 0 && h.counts[3] == 1,
       "observe: per-bucket counts %llu %llu %llu %llu", (unsigned long long)h.counts[0],
       (unsigned long long)h.counts[1], (unsigned long long)h.counts[2],
       (unsigned long long)h.counts[3]);
    ok(h.count == 4, "observe: count");
    ok(fabs(h.sum - 2.601) < 1e-12, "observe: sum %.17g", h.sum);
    srv_histo_observe(&h, le3, 3, NAN);
    ok(h.count == 5 && h.counts[3] == 2 && !isnan(h.sum), "NaN: counted in +Inf, not summed");
    srv_histo_observe(&h, le3, 3, INFINITY);
    ok(h.counts[3] == 3 && isinf(h.sum), "+Inf: in +Inf and in the sum");
}

static void test_histo_text(void)
{
    filter_buf_t b = {0};
    srv_histo_t h;
    memset(&h, 0, sizeof h);
    srv_prom_histo(&b, "x_seconds", &h, le3, 3);
    ok(text_is(&b, "x_seconds_bucket{le=\"0.001\"} 0\n"
                   "x_seconds_bucket{le=\"0.5\"} 0\n"
                   "x_seconds_bucket{le=\"2\"} 0\n"
                   "x_seconds_bucket{le=\"+Inf\"} 0\n"
                   "x_seconds_sum 0\n"
                   "x_seconds_count 0\n"),
       "empty histogram");
    srv_histo_observe(&h, le3, 3, 0.0005);
    srv_histo_observe(&h, le3, 3, 0.25);
    srv_histo_observe(&h, le3, 3, 0.25);
    srv_histo_observe(&h, le3, 3, 100);
    srv_prom_histo(&b, "x_seconds", &h, le3, 3);
    ok(text_is(&b, "x_seconds_bucket{le=\"0.001\"} 1\n"
                   "x_seconds_bucket{le=\"0.5\"} 3\n"
                   "x_seconds_bucket{le=\"2\"} 3\n"
                   "x_seconds_bucket{le=\"+Inf\"} 4\n"
                   "x_seconds_sum 100.5005\n"
                   "x_seconds_count 4\n"),
       "cumulative buckets, sum, count");
    {
        static const double small[] = {0.0001, 0.00025, 0.0005, 2.5};
        srv_histo_t z;
        memset(&z, 0, sizeof z);
        srv_prom_histo(&b, "y", &z, small, 4);
        ok(strstr(b.data, "le=\"0.0001\"") && strstr(b.data, "le=\"0.00025\"") &&
               strstr(b.data, "le=\"0.0005\"") && strstr(b.data, "le=\"2.5\""),
           "bounds are short decimals");
        filter_buf_reset(&b);
    }
    filter_buf_fini(&b);
}

static void test_samples(void)
{
    filter_buf_t b = {0};
    srv_prom_family(&b, "a_total", "counter", "Things done.");
    ok(text_is(&b, "# HELP a_total Things done.\n# TYPE a_total counter\n"), "family header");
    srv_prom_u64(&b, "a_total", NULL, NULL, 18446744073709551615ull);
    ok(text_is(&b, "a_total 18446744073709551615\n"), "u64 without labels");
    srv_prom_u64(&b, "a_total", "outcome", "stored", 7);
    ok(text_is(&b, "a_total{outcome=\"stored\"} 7\n"), "u64 with a label");
    srv_prom_u64(&b, "i", "version", "1.0 \"x\"\\y\nz", 1);
    ok(text_is(&b, "i{version=\"1.0 \\\"x\\\"\\\\y\\nz\"} 1\n"), "label value escaped");
    srv_prom_double(&b, "g", NULL, NULL, 0.1);
    ok(text_is(&b, "g 0.1\n"), "0.1 stays short");
    srv_prom_double(&b, "g", NULL, NULL, 1.0 / 3.0);
    ok(text_is(&b, "g 0.33333333333333331\n"), "a third round-trips");
    srv_prom_double(&b, "g", NULL, NULL, INFINITY);
    ok(text_is(&b, "g +Inf\n"), "+Inf");
    srv_prom_double(&b, "g", NULL, NULL, -INFINITY);
    ok(text_is(&b, "g -Inf\n"), "-Inf");
    srv_prom_double(&b, "g", NULL, NULL, NAN);
    ok(text_is(&b, "g NaN\n"), "NaN");
    srv_prom_double(&b, "g", NULL, NULL, 1e-7);
    ok(text_is(&b, "g 1e-07\n"), "small numbers in exponent form");
    filter_buf_fini(&b);
}

int main(void)
{
    test_observe();
    test_histo_text();
    test_samples();
    return done_testing();
}
