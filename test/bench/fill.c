/* Fills a data directory with N events straight through store/ (much faster than HTTP), so that
 * query and start-up benchmarks can run against a big store.
 *   usage: bench-fill DIR N [RESOURCES]
 * Events go round-robin over RESOURCES resources (default 1): urn:altinn:resource:bench-K. The
 * first resource is urn:altinn:resource:bench (K = 0), as publish.lua uses. At the end the dispatch
 * cursor is set to the last sequence, as a server that had published (and dispatched) the events
 * itself would have left it, so a server started on the directory does not re-dispatch them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "store/store.h"

#define BATCH 2000

int main(int argc, char **argv)
{
    store_t *st;
    store_opts_t o = {0, STORE_SYNC_NONE};
    static store_event_in_t evs[BATCH];
    static store_result_t res[BATCH];
    static char ids[BATCH][48], srcs[BATCH][64], ress[BATCH][64], json[BATCH][1200];
    long n, nres;
    struct timeval tv;
    static char pad[701]; /* the same 700-byte note as publish.lua: ~1 KiB events */

    memset(pad, 'x', 700);
    if (argc < 3) {
        fprintf(stderr, "usage: bench-fill DIR N [RESOURCES]\n");
        return 2;
    }
    n = atol(argv[2]);
    nres = argc > 3 ? atol(argv[3]) : 1;
    if (nres < 1) nres = 1;
    if (store_open(argv[1], &o, &st) != 0) {
        fprintf(stderr, "cannot open store in %s\n", argv[1]);
        return 1;
    }
    gettimeofday(&tv, NULL);
    for (long done = store_last_seq(st), k = 0; done < n;) {
        size_t m = 0;
        for (; m < BATCH && done + (long)m < n; m++, k++) {
            long i = done + (long)m;
            long r = i % nres;
            snprintf(ids[m], sizeof ids[m], "fill-%ld", i);
            snprintf(srcs[m], sizeof srcs[m], "https://bench.example/orders/%ld", i);
            if (r == 0)
                snprintf(ress[m], sizeof ress[m], "urn:altinn:resource:bench");
            else
                snprintf(ress[m], sizeof ress[m], "urn:altinn:resource:bench-%ld", r);
            int len =
                snprintf(json[m], sizeof json[m],
                         "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\","
                         "\"type\":\"bench.order.created\",\"subject\":\"/party/50001\","
                         "\"time\":\"2026-01-01T10:00:00Z\",\"datacontenttype\":"
                         "\"application/json\",\"resource\":\"%s\",\"data\":{\"note\":\"%.*s\"}}",
                         ids[m], srcs[m], ress[m], 700, pad);
            evs[m] = (store_event_in_t){
                ids[m],         srcs[m],     "bench.order.created",
                "/party/50001", NULL,        ress[m],
                json[m],        (size_t)len, (int64_t)tv.tv_sec * 1000000 - 3600LL * 1000000};
        }
        if (store_append_batch(st, evs, m, res) != 0) {
            fprintf(stderr, "append failed at %ld\n", done);
            store_close(st);
            return 1;
        }
        done += (long)m;
    }
    {
        store_batch_t *b = store_batch_new();
        int rc = b ? store_batch_set_cursor(b, store_last_seq(st)) : STORE_ENOMEM;
        if (rc == 0) rc = store_commit(st, b, NULL, 0, NULL);
        store_batch_free(b);
        if (rc != 0) {
            fprintf(stderr, "setting the cursor failed: %s\n", store_strerror(rc));
            store_close(st);
            return 1;
        }
    }
    printf("%llu events in %s\n", (unsigned long long)store_last_seq(st), argv[1]);
    store_close(st);
    return 0;
}
