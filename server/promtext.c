/* server/promtext: see promtext.h. Format reference: Prometheus "Exposition formats", text format
 * 0.0.4 (one sample per line, label values in double quotes, floats in Go's ParseFloat syntax). */
#include "server/promtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void srv_histo_observe(srv_histo_t *h, const double *le, size_t n, double v)
{
    size_t i = 0;
    /* NaN goes to +Inf alone; the sum would become NaN for good, so it is left out of the sum */
    if (n > SRV_HISTO_MAX) n = SRV_HISTO_MAX;
    while (i < n && !(v <= le[i]))
        i++;
    h->counts[i]++;
    h->count++;
    if (!isnan(v)) h->sum += v;
}

void srv_prom_family(filter_buf_t *b, const char *name, const char *type, const char *help)
{
    filter_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label_value(filter_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            filter_buf_puts(b, "\\\\");
        else if (*v == '"')
            filter_buf_puts(b, "\\\"");
        else if (*v == '\n')
            filter_buf_puts(b, "\\n");
        else
            filter_buf_append(b, v, 1);
    }
}

static void sample_head(filter_buf_t *b, const char *name, const char *label, const char *value)
{
    filter_buf_puts(b, name);
    if (!label) return;
    filter_buf_printf(b, "{%s=\"", label);
    label_value(b, value ? value : "");
    filter_buf_puts(b, "\"}");
}

/* A float as the format wants it: shortest round-trip text, +Inf/-Inf/NaN spelled out. */
static void put_double(filter_buf_t *b, double v)
{
    if (isnan(v))
        filter_buf_puts(b, "NaN");
    else if (isinf(v))
        filter_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else {
        char t[40];
        snprintf(t, sizeof t, "%.15g", v);
        if (strtod(t, NULL) != v) snprintf(t, sizeof t, "%.17g", v);
        filter_buf_puts(b, t);
    }
}

void srv_prom_u64(filter_buf_t *b, const char *name, const char *label, const char *value,
                  uint64_t v)
{
    sample_head(b, name, label, value);
    filter_buf_printf(b, " %" PRIu64 "\n", v);
}

void srv_prom_double(filter_buf_t *b, const char *name, const char *label, const char *value,
                     double v)
{
    sample_head(b, name, label, value);
    filter_buf_puts(b, " ");
    put_double(b, v);
    filter_buf_puts(b, "\n");
}

void srv_prom_histo(filter_buf_t *b, const char *name, const srv_histo_t *h, const double *le,
                    size_t n)
{
    uint64_t cum = 0;
    if (n > SRV_HISTO_MAX) n = SRV_HISTO_MAX;
    for (size_t i = 0; i <= n; i++) {
        cum += h->counts[i];
        filter_buf_printf(b, "%s_bucket{le=\"", name);
        /* bounds as short decimals ("0.0005", "2.5"): %.17g would print 0.0005 as
         * 0.00050000000000000001, which is the same number but unreadable */
        if (i < n)
            filter_buf_printf(b, "%.15g", le[i]);
        else
            filter_buf_puts(b, "+Inf");
        filter_buf_printf(b, "\"} %" PRIu64 "\n", cum);
    }
    filter_buf_printf(b, "%s_sum ", name);
    put_double(b, h->sum);
    filter_buf_printf(b, "\n%s_count %" PRIu64 "\n", name, h->count);
}
