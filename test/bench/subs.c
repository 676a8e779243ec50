/* Loads N validated subscriptions straight into a data directory through store/ (much faster than N
 * HTTP creates and handshakes), for the "many subscriptions" benchmark. Each record is the JSON the
 * server itself stores (server/subs.c sub_json with the secret): distinct resources
 * (urn:altinn:resource:bench-sub-K) and subjects (/party/K), validated, none matching the
 * resource publish.lua uses (urn:altinn:resource:bench), so publishing measures the match index and
 * not deliveries.
 *   usage: bench-subs DIR N [ENDPOINT]
 * ENDPOINT (default https://bench.example/hook) gets "/K" appended. Run it while no server holds
 * DIR; the server loads the subscriptions at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define BATCH 5000

int main(int argc, char **argv)
{
    store_t *st;
    store_opts_t o = {0, STORE_SYNC_NONE};
    const char *endpoint;
    long n;
    char rec[1024];

    if (argc < 3) {
        fprintf(stderr, "usage: bench-subs DIR N [ENDPOINT]\n");
        return 2;
    }
    n = atol(argv[2]);
    endpoint = argc > 3 ? argv[3] : "https://bench.example/hook";
    if (store_open(argv[1], &o, &st) != 0) {
        fprintf(stderr, "cannot open store in %s\n", argv[1]);
        return 1;
    }
    for (long done = 0; done < n;) {
        store_batch_t *b = store_batch_new();
        int rc = b ? 0 : STORE_ENOMEM;
        for (long m = 0; rc == 0 && m < BATCH && done < n; m++, done++) {
            uint64_t id = store_sub_next_id(st);
            int len =
                snprintf(rec, sizeof rec,
                         "{\"id\":%llu,\"endPoint\":\"%s/%ld\",\"resourceFilter\":"
                         "\"urn:altinn:resource:bench-sub-%ld\",\"subjectFilter\":"
                         "\"/party/%ld\",\"consumer\":\"/org/ttd\",\"createdBy\":\"/org/ttd\","
                         "\"created\":\"2026-01-01T10:00:00.000000Z\",\"validated\":true,"
                         "\"includeSubunits\":false}",
                         (unsigned long long)id, endpoint, done, done, 100000 + done);
            if (len <= 0 || (size_t)len >= sizeof rec) rc = STORE_EINVAL;
            if (rc == 0) rc = store_batch_put_sub(b, id, rec, (size_t)len);
        }
        if (rc == 0) rc = store_commit(st, b, NULL, 0, NULL);
        store_batch_free(b);
        if (rc != 0) {
            fprintf(stderr, "writing subscriptions failed at %ld: %s\n", done, store_strerror(rc));
            store_close(st);
            return 1;
        }
    }
    printf("%ld subscriptions in %s\n", n, argv[1]);
    store_close(st);
    return 0;
}
