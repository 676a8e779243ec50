/* Unit tests for the audit trail and retention in store/: store_batch_put_audit (publish records
 * completed by the commit with their event's sequence and outcome, delivery records with their
 * event's id), store_scan_audit, the audit sequence high-water mark, store_batch_prune (events and
 * their index entries, dead letters of pruned events, old audit records, the max bound) and
 * store_prune_due. Raw LMDB is used to tamper with the files between opens. */
#include "store/store.h"
#include "tap.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000000LL /* a fixed "now" in microseconds */
#define SEC 1000000LL

static char root[64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static const char *newdir(const char *name)
{
    static char buf[8][128];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 128, "%s/%s", root, name);
    return p;
}

static store_t *open_ok(const char *dir)
{
    store_opts_t o = {.map_bytes = 0, .sync = STORE_SYNC_NONE};
    store_t *st = NULL;
    int rc = store_open(dir, &o, &st);
    if (rc != 0) printf("# store_open(%s): %s\n", dir, store_strerror(rc));
    return st;
}

static store_event_in_t mkev(const char *id, const char *source, const char *resource,
                             int64_t stored_us)
{
    store_event_in_t e = {
        .id = id,
        .source = source,
        .type = "test.type",
        .resource = resource,
        .json = "{}",
        .json_len = 2,
        .stored_us = stored_us,
    };
    return e;
}

static int raw_put(const char *dir, const char *db, const void *k, size_t kl, const void *v,
                   size_t vl)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (rc) return rc;
    mdb_env_set_maxdbs(env, 16);
    rc = mdb_env_open(env, dir, 0, 0644);
    if (!rc) rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc) {
        mdb_env_close(env);
        return rc;
    }
    rc = mdb_dbi_open(txn, db, 0, &dbi);
    MDB_val mk = {kl, (void *)k}, mv = {vl, (void *)v};
    if (!rc) rc = mdb_put(txn, dbi, &mk, &mv, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

/* ---- collectors ---- */

#define MAXREC 64

typedef struct {
    size_t n;
    uint64_t aseq[MAXREC];
    store_audit_kind_t kind[MAXREC];
    uint64_t sub_id[MAXREC], seq[MAXREC];
    uint32_t attempt[MAXREC];
    int32_t status[MAXREC];
    int64_t time_us[MAXREC], duration_us[MAXREC];
    char who[MAXREC][64], event_id[MAXREC][64], source[MAXREC][64], resource[MAXREC][64],
        action[MAXREC][32], error[MAXREC][64];
    size_t stop_after; /* 0 = never */
} audits_t;

static int on_audit(void *ctx, uint64_t aseq, const store_audit_t *a)
{
    audits_t *c = ctx;
    if (c->n < MAXREC) {
        size_t i = c->n;
        c->aseq[i] = aseq;
        c->kind[i] = a->kind;
        c->sub_id[i] = a->sub_id;
        c->seq[i] = a->seq;
        c->attempt[i] = a->attempt;
        c->status[i] = a->status;
        c->time_us[i] = a->time_us;
        c->duration_us[i] = a->duration_us;
        snprintf(c->who[i], 64, "%s", a->who);
        snprintf(c->event_id[i], 64, "%s", a->event_id);
        snprintf(c->source[i], 64, "%s", a->source);
        snprintf(c->resource[i], 64, "%s", a->resource);
        snprintf(c->action[i], 32, "%s", a->action);
        snprintf(c->error[i], 64, "%s", a->error);
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? STORE_SCAN_STOP : STORE_SCAN_CONTINUE;
}

typedef struct {
    size_t n;
    uint64_t seq[MAXREC];
} seqs_t;

static int on_event(void *ctx, const store_event_t *ev)
{
    seqs_t *c = ctx;
    if (c->n < MAXREC) c->seq[c->n] = ev->seq;
    c->n++;
    return STORE_SCAN_CONTINUE;
}

static int on_dead(void *ctx, uint64_t sub_id, uint64_t seq, const store_dead_t *d)
{
    seqs_t *c = ctx;
    (void)sub_id;
    (void)d;
    if (c->n < MAXREC) c->seq[c->n] = seq;
    c->n++;
    return STORE_SCAN_CONTINUE;
}

static store_audit_t publish_rec(const char *who, const char *id, const char *source,
                                 const char *resource, int64_t t)
{
    store_audit_t a = {.kind = STORE_AUDIT_PUBLISH,
                       .time_us = t,
                       .who = who,
                       .event_id = id,
                       .source = source,
                       .resource = resource,
                       /* ignored on input: the commit sets them */
                       .seq = 999,
                       .action = "bogus"};
    return a;
}

/* ---- tests ---- */

static void test_records(void)
{
    const char *dir = newdir("records");
    store_t *st = open_ok(dir);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    ok(store_last_audit(st) == 0, "records: empty store: last audit 0");

    /* a subscription change and two publishes ride the commit of the events */
    store_audit_t sub = {.kind = STORE_AUDIT_SUB,
                         .time_us = T0,
                         .sub_id = 7,
                         .who = "/org/ttd",
                         .action = "created"};
    ok(store_batch_put_audit(b, &sub) == 0, "records: put sub record");
    store_audit_t p1 = publish_rec("/org/ttd", "e1", "https://s", "urn:altinn:resource:r", T0 + 1);
    store_audit_t p2 = publish_rec("/org/ttd", "e2", "https://s", "urn:altinn:resource:r", T0 + 2);
    ok(store_batch_put_audit(b, &p1) == 0 && store_batch_put_audit(b, &p2) == 0,
       "records: put publish records");
    ok(!store_batch_empty(b), "records: the batch is not empty");
    store_event_in_t evs[2] = {mkev("e1", "https://s", "urn:altinn:resource:r", T0),
                               mkev("e2", "https://s", "urn:altinn:resource:r", T0)};
    store_result_t res[2];
    int rc = store_commit(st, b, evs, 2, res);
    ok(rc == 0 && res[0].res == STORE_RES_STORED && res[1].res == STORE_RES_STORED,
       "records: commit with events");
    ok(store_batch_empty(b), "records: the batch is emptied");
    ok(store_last_audit(st) == 3, "records: last audit 3 (got %llu)",
       (unsigned long long)store_last_audit(st));

    /* a duplicate publish, a delivery of e1, a delivery of an event never stored, and a publish
     * whose event is not in any commit */
    store_audit_t p3 =
        publish_rec("/org/other", "e1", "https://s", "urn:altinn:resource:r", T0 + 3);
    store_audit_t d1 = {.kind = STORE_AUDIT_DELIVERY,
                        .time_us = T0 + 4,
                        .sub_id = 7,
                        .seq = res[0].seq,
                        .attempt = 2,
                        .status = 503,
                        .duration_us = 1234,
                        .error = "HTTP 503",
                        .event_id = "ignored"};
    store_audit_t d2 = {
        .kind = STORE_AUDIT_DELIVERY, .time_us = T0 + 5, .sub_id = 7, .seq = 4242, .attempt = 1};
    store_audit_t p4 = publish_rec("/org/ttd", "never", "https://s", "urn:altinn:resource:r", T0);
    ok(store_batch_put_audit(b, &p3) == 0 && store_batch_put_audit(b, &d1) == 0 &&
           store_batch_put_audit(b, &d2) == 0 && store_batch_put_audit(b, &p4) == 0,
       "records: put more");
    store_event_in_t dup = mkev("e1", "https://s", "urn:altinn:resource:r", T0);
    rc = store_commit(st, b, &dup, 1, res);
    ok(rc == 0 && res[0].res == STORE_RES_DUP, "records: duplicate publish committed");
    ok(store_last_audit(st) == 6, "records: the publish of an unstored event is left out (%llu)",
       (unsigned long long)store_last_audit(st));

    audits_t c = {0};
    rc = store_scan_audit(st, 0, 0, on_audit, &c, NULL);
    ok(rc == 0 && c.n == 6, "records: scan finds 6 (got %zu)", c.n);
    ok(c.aseq[0] == 1 && c.aseq[5] == 6, "records: numbered 1..6");
    ok(c.kind[0] == STORE_AUDIT_SUB && c.sub_id[0] == 7 && strcmp(c.action[0], "created") == 0 &&
           strcmp(c.who[0], "/org/ttd") == 0 && c.time_us[0] == T0,
       "records: sub record round-trips");
    ok(c.kind[1] == STORE_AUDIT_PUBLISH && c.seq[1] == 1 && strcmp(c.action[1], "stored") == 0 &&
           strcmp(c.event_id[1], "e1") == 0 && strcmp(c.source[1], "https://s") == 0 &&
           strcmp(c.resource[1], "urn:altinn:resource:r") == 0,
       "records: publish record gets seq 1 and 'stored'");
    ok(c.seq[2] == 2 && strcmp(c.action[2], "stored") == 0, "records: second publish seq 2");
    ok(c.kind[3] == STORE_AUDIT_PUBLISH && c.seq[3] == 1 && strcmp(c.action[3], "duplicate") == 0 &&
           strcmp(c.who[3], "/org/other") == 0,
       "records: a duplicate publish names the stored event, 'duplicate'");
    ok(c.kind[4] == STORE_AUDIT_DELIVERY && c.seq[4] == 1 && c.attempt[4] == 2 &&
           c.status[4] == 503 && c.duration_us[4] == 1234 && strcmp(c.error[4], "HTTP 503") == 0 &&
           strcmp(c.event_id[4], "e1") == 0 && strcmp(c.resource[4], "urn:altinn:resource:r") == 0,
       "records: delivery record round-trips with its event's id and resource");
    ok(c.kind[5] == STORE_AUDIT_DELIVERY && c.seq[5] == 4242 && c.event_id[5][0] == 0 &&
           c.who[5][0] == 0,
       "records: delivery of an unknown event: empty event id");

    /* paging, max_examined and stop */
    audits_t c2 = {0};
    size_t ex = 0;
    rc = store_scan_audit(st, 2, 2, on_audit, &c2, &ex);
    ok(rc == 0 && c2.n == 2 && ex == 2 && c2.aseq[0] == 3 && c2.aseq[1] == 4,
       "records: after 2, max 2: records 3 and 4");
    audits_t c3 = {.stop_after = 1};
    rc = store_scan_audit(st, 0, 0, on_audit, &c3, &ex);
    ok(rc == 0 && c3.n == 1 && ex == 1, "records: STOP after one");
    audits_t c4 = {0};
    rc = store_scan_audit(st, 6, 0, on_audit, &c4, &ex);
    ok(rc == 0 && c4.n == 0 && ex == 0, "records: nothing after the last");
    rc = store_scan_audit(st, UINT64_MAX, 0, on_audit, &c4, NULL);
    ok(rc == 0 && c4.n == 0, "records: after UINT64_MAX: nothing");

    /* bad input */
    store_audit_t bad = {.kind = 9};
    ok(store_batch_put_audit(b, &bad) == STORE_EINVAL, "records: unknown kind: EINVAL");
    ok(store_batch_put_audit(NULL, &sub) == STORE_EINVAL, "records: NULL batch: EINVAL");
    ok(store_batch_empty(b), "records: a refused record leaves the batch empty");

    /* audit-only commit (no events) */
    ok(store_batch_put_audit(b, &sub) == 0 && store_commit(st, b, NULL, 0, NULL) == 0 &&
           store_last_audit(st) == 7,
       "records: an audit-only commit");

    store_close(st);
    st = open_ok(dir);
    ok(st && store_last_audit(st) == 7, "records: last audit survives a reopen");
    store_batch_free(b);
    store_close(st);
}

/* n events at times T0 + i s (i = 0..n-1), ids e0.., resource r, one source. */
static void fill(store_t *st, int n, const char *prefix)
{
    store_event_in_t evs[32];
    char ids[32][16];
    store_result_t res[32];
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s%d", prefix, i);
        evs[i] = mkev(ids[i], "https://s",
                      i % 2 ? "urn:altinn:resource:odd" : "urn:altinn:resource:even", T0 + i * SEC);
    }
    int rc = store_commit(st, NULL, evs, (size_t)n, res);
    if (rc != 0) printf("# fill: %s\n", store_strerror(rc));
}

static void test_prune(void)
{
    const char *dir = newdir("prune");
    store_t *st = open_ok(dir);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    fill(st, 10, "e"); /* seq 1..10 at T0 .. T0+9s */

    /* dead letters of sub 1 and 2 at several events; audit records at T0 .. T0+9s */
    store_dead_t d = {.dead_us = T0, .attempts = 3, .last_status = 500};
    uint64_t dead_seqs[] = {1, 3, 6, 9};
    for (size_t i = 0; i < 4; i++) {
        store_batch_put_dead(b, 1, dead_seqs[i], &d);
        store_batch_put_dead(b, 2, dead_seqs[i], &d);
    }
    for (int i = 0; i < 10; i++) {
        store_audit_t a = {
            .kind = STORE_AUDIT_SUB, .time_us = T0 + i * SEC, .sub_id = 1, .action = "x"};
        store_batch_put_audit(b, &a);
    }
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "prune: setup committed");

    ok(store_prune_due(st, T0) == 0, "prune: nothing older than the oldest: not due");
    ok(store_prune_due(st, T0 + 1) == 1, "prune: due once the bound passes the oldest");
    ok(store_batch_prune(b, T0, 0) == STORE_EINVAL, "prune: max 0: EINVAL");

    /* older than T0 + 5s, at most 3 per pass: seq 1..3 go */
    ok(store_batch_prune(b, T0 + 5 * SEC, 3) == 0, "prune: queue a pass");
    ok(!store_batch_empty(b), "prune: a pass is an operation");
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "prune: pass 1 committed");
    seqs_t c = {0};
    store_scan_all(st, 0, 0, on_event, &c, NULL);
    ok(c.n == 7 && c.seq[0] == 4, "prune: max bounds the pass: 7 left from seq 4 (got %zu, %llu)",
       c.n, (unsigned long long)c.seq[0]);
    uint64_t seq;
    ok(store_seq_of_id(st, "e2", 2, &seq) == STORE_ENOTFOUND, "prune: id index entry gone");
    ok(store_seq_of_id(st, "e3", 2, &seq) == 0 && seq == 4, "prune: kept id still found");
    seqs_t ce = {0};
    store_scan_resource(st, "urn:altinn:resource:even", 0, 0, on_event, &ce, NULL);
    ok(ce.n == 3 && ce.seq[0] == 5, "prune: resource index: even has 5,7,9 (got %zu)", ce.n);
    seqs_t d1 = {0}, d2 = {0};
    store_scan_dead(st, 1, on_dead, &d1);
    store_scan_dead(st, 2, on_dead, &d2);
    ok(d1.n == 2 && d1.seq[0] == 6 && d2.n == 2 && d2.seq[0] == 6,
       "prune: dead letters of pruned events 1 and 3 gone for both subscriptions");
    audits_t a = {0};
    store_scan_audit(st, 0, 0, on_audit, &a, NULL);
    ok(a.n == 7 && a.aseq[0] == 4, "prune: audit records: the 3 oldest gone (got %zu)", a.n);

    /* pass 2, no max reached: seq 4 and 5 go (older than T0 + 5s), 6 stays */
    store_batch_prune(b, T0 + 5 * SEC, 1000);
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "prune: pass 2 committed");
    seqs_t c2 = {0};
    store_scan_all(st, 0, 0, on_event, &c2, NULL);
    ok(c2.n == 5 && c2.seq[0] == 6, "prune: stops at the first newer event (got %zu)", c2.n);
    ok(store_prune_due(st, T0 + 5 * SEC) == 0, "prune: nothing more due at that bound");

    /* the dedupe entry went with the event: the same (source, id) is new again, with a new seq */
    store_event_in_t again = mkev("e0", "https://s", "urn:altinn:resource:even", T0 + 20 * SEC);
    store_result_t r;
    ok(store_commit(st, NULL, &again, 1, &r) == 0 && r.res == STORE_RES_STORED && r.seq == 11,
       "prune: a pruned event's (source, id) stores anew with seq 11 (got %llu)",
       (unsigned long long)r.seq);
    /* a kept one is still a duplicate */
    store_event_in_t kept = mkev("e7", "https://s", "urn:altinn:resource:odd", T0);
    ok(store_commit(st, NULL, &kept, 1, &r) == 0 && r.res == STORE_RES_DUP && r.seq == 8,
       "prune: a kept event still dedupes");

    /* a pass with events in the same commit: the new ones (recent) are never pruned */
    store_batch_prune(b, T0 + 100 * SEC, 1000);
    store_event_in_t fresh = mkev("f1", "https://s", "urn:altinn:resource:even", T0 + 200 * SEC);
    ok(store_commit(st, b, &fresh, 1, &r) == 0 && r.res == STORE_RES_STORED && r.seq == 12,
       "prune: pass and append in one commit");
    seqs_t c3 = {0};
    store_scan_all(st, 0, 0, on_event, &c3, NULL);
    ok(c3.n == 1 && c3.seq[0] == 12, "prune: only the fresh event is left");
    seqs_t d3 = {0};
    store_scan_dead(st, 1, on_dead, &d3);
    ok(d3.n == 0, "prune: every dead letter below the oldest kept event is gone");
    audits_t a2 = {0};
    store_scan_audit(st, 0, 0, on_audit, &a2, NULL);
    ok(a2.n == 0, "prune: every old audit record gone");

    /* high-water marks: nothing is reused after pruning everything, across a reopen */
    store_batch_prune(b, T0 + 1000 * SEC, 1000);
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "prune: prune everything");
    store_close(st);
    st = open_ok(dir);
    if (!st) return;
    ok(store_last_seq(st) == 12 && store_last_audit(st) == 10,
       "prune: sequence high-water marks survive (seq %llu, audit %llu)",
       (unsigned long long)store_last_seq(st), (unsigned long long)store_last_audit(st));
    store_event_in_t next = mkev("n", "https://s", "urn:altinn:resource:even", T0);
    store_audit_t sa = {.kind = STORE_AUDIT_SUB, .time_us = T0, .action = "y"};
    store_batch_put_audit(b, &sa);
    ok(store_commit(st, b, &next, 1, &r) == 0 && r.seq == 13 && store_last_audit(st) == 11,
       "prune: next event 13, next audit record 11");
    store_batch_free(b);
    store_close(st);
}

static void test_shared_id(void)
{
    /* two events with one id from two sources: pruning the older keeps the newer's id entry (which
     * is also its dedupe entry) and its resource entry */
    const char *dir = newdir("shared");
    store_t *st = open_ok(dir);
    if (!st) return;
    store_event_in_t evs[2] = {mkev("x", "https://a", "urn:altinn:resource:r", T0),
                               mkev("x", "https://b", "urn:altinn:resource:r", T0 + 10 * SEC)};
    store_result_t res[2];
    store_commit(st, NULL, evs, 2, res);
    store_batch_t *b = store_batch_new();
    store_batch_prune(b, T0 + SEC, 10);
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "shared id: prune committed");
    uint64_t seq;
    ok(store_seq_of_id(st, "x", 1, &seq) == 0 && seq == 2,
       "shared id: the id now finds the newer event");
    store_event_in_t again = mkev("x", "https://b", "urn:altinn:resource:r", T0);
    store_result_t r;
    ok(store_commit(st, NULL, &again, 1, &r) == 0 && r.res == STORE_RES_DUP && r.seq == 2,
       "shared id: the newer event still dedupes");
    seqs_t c = {0};
    store_scan_resource(st, "urn:altinn:resource:r", 0, 0, on_event, &c, NULL);
    ok(c.n == 1 && c.seq[0] == 2, "shared id: resource scan finds the newer");
    store_event_in_t old = mkev("x", "https://a", "urn:altinn:resource:r", T0);
    store_result_t r0;
    ok(store_commit(st, NULL, &old, 1, &r0) == 0 && r0.res == STORE_RES_STORED && r0.seq == 3,
       "shared id: the pruned (source, id) is new again");
    store_batch_free(b);
    store_close(st);
}

static void test_corrupt_and_version(void)
{
    const char *dir = newdir("corrupt");
    store_t *st = open_ok(dir);
    if (!st) return;
    store_close(st);
    unsigned char k[8] = {0, 0, 0, 0, 0, 0, 0, 5};
    ok(raw_put(dir, "audit", k, 8, "\x01short", 6) == 0, "corrupt: raw short audit record");
    st = open_ok(dir);
    ok(st && store_last_audit(st) == 5, "corrupt: the last key counts for the high-water mark");
    audits_t a = {0};
    ok(st && store_scan_audit(st, 0, 0, on_audit, &a, NULL) == STORE_ECORRUPT,
       "corrupt: a record that does not decode: ECORRUPT");
    store_close(st);

    /* a version-2 store (before the audit trail) is refused */
    const char *d2 = newdir("v2");
    st = open_ok(d2);
    if (!st) return;
    store_close(st);
    unsigned char v[4] = {0, 0, 0, 2};
    raw_put(d2, "meta", "format", 6, v, 4);
    st = NULL;
    int rc = store_open(d2, NULL, &st);
    ok(rc == STORE_EVERSION && st == NULL, "version: format 2 refused with EVERSION");
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/hendelse-storeaudit-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_records();
    test_prune();
    test_shared_id();
    test_corrupt_and_version();
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
