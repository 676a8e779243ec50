/* Unit tests for the delivery state and subscriptions of store/: store_batch_t operations committed
 * with events in one transaction, reopen, the cursor rule, subscription deletion with its retries
 * and dead letters, subscription ids, scan order, map-full handling of batches, store_get_event and
 * corrupt records, and releasing the map's pages from the resident set. Raw LMDB is used to tamper
 * with the files between opens. */
#include "store/store.h"
#include "tap.h"

#include <ftw.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

static store_t *open_ok(const char *dir, uint64_t map_bytes)
{
    store_opts_t o = {.map_bytes = map_bytes, .sync = STORE_SYNC_NONE};
    store_t *st = NULL;
    int rc = store_open(dir, &o, &st);
    if (rc != 0) printf("# store_open(%s): %s\n", dir, store_strerror(rc));
    return st;
}

static store_event_in_t mkev(const char *id, const char *resource, const char *json)
{
    store_event_in_t e = {
        .id = id,
        .source = "urn:s",
        .type = "test.type",
        .resource = resource,
        .json = json,
        .json_len = strlen(json),
        .stored_us = 1700000000000000LL,
    };
    return e;
}

static store_retry_t mkretry(int64_t due, uint32_t attempts, int32_t status, const char *err)
{
    store_retry_t r = {.due_us = due, .attempts = attempts, .last_status = status};
    snprintf(r.last_error, sizeof r.last_error, "%s", err);
    return r;
}

static store_dead_t mkdead(int64_t when, uint32_t attempts, int32_t status, const char *err)
{
    store_dead_t d = {.dead_us = when, .attempts = attempts, .last_status = status};
    snprintf(d.last_error, sizeof d.last_error, "%s", err);
    return d;
}

/* ---- raw LMDB access (the store must be closed) ---- */

static int raw_op(const char *dir, const char *db, const void *k, size_t kl, const void *v,
                  size_t vl, bool del)
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
    if (!rc) rc = del ? mdb_del(txn, dbi, &mk, NULL) : mdb_put(txn, dbi, &mk, &mv, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc;
}

static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

static void subseq_key(unsigned char k[16], uint64_t sub, uint64_t seq)
{
    be64(k, sub);
    be64(k + 8, seq);
}

/* ---- collectors ---- */

typedef struct {
    size_t n;
    uint64_t ids[32];
    char recs[32][32];
    size_t lens[32];
    size_t stop_at;
} subs_t;

static int on_sub(void *ctx, uint64_t id, const void *rec, size_t len)
{
    subs_t *c = ctx;
    if (c->n < 32) {
        c->ids[c->n] = id;
        c->lens[c->n] = len;
        snprintf(c->recs[c->n], sizeof c->recs[0], "%.*s", (int)len, (const char *)rec);
    }
    c->n++;
    return c->stop_at && c->n == c->stop_at ? STORE_SCAN_STOP : STORE_SCAN_CONTINUE;
}

typedef struct {
    size_t n;
    uint64_t sub[32], seq[32];
    int64_t when[32];
    uint32_t attempts[32];
    int32_t status[32];
    char err[32][128];
    size_t stop_at;
    store_t *st; /* when set, each callback also reads the event (a nested read) */
    size_t nested_found;
} subseq_t;

static int on_event_found(void *ctx, const store_event_t *ev)
{
    (void)ev;
    (*(size_t *)ctx)++;
    return STORE_SCAN_CONTINUE;
}

static void subseq_add(subseq_t *c, uint64_t sub, uint64_t seq, int64_t when, uint32_t attempts,
                       int32_t status, const char *err)
{
    if (c->n < 32) {
        c->sub[c->n] = sub;
        c->seq[c->n] = seq;
        c->when[c->n] = when;
        c->attempts[c->n] = attempts;
        c->status[c->n] = status;
        memcpy(c->err[c->n], err, 128);
    }
    c->n++;
    if (c->st) store_get_event(c->st, seq, on_event_found, &c->nested_found);
}

static int on_retry(void *ctx, uint64_t sub, uint64_t seq, const store_retry_t *r)
{
    subseq_t *c = ctx;
    subseq_add(c, sub, seq, r->due_us, r->attempts, r->last_status, r->last_error);
    return c->stop_at && c->n == c->stop_at ? STORE_SCAN_STOP : STORE_SCAN_CONTINUE;
}

static int on_dead(void *ctx, uint64_t sub, uint64_t seq, const store_dead_t *d)
{
    subseq_t *c = ctx;
    subseq_add(c, sub, seq, d->dead_us, d->attempts, d->last_status, d->last_error);
    return c->stop_at && c->n == c->stop_at ? STORE_SCAN_STOP : STORE_SCAN_CONTINUE;
}

static subs_t scan_subs(store_t *st, int *rc)
{
    subs_t c = {0};
    *rc = store_scan_subs(st, on_sub, &c);
    return c;
}

static subseq_t scan_retries(store_t *st, int *rc)
{
    subseq_t c = {0};
    *rc = store_scan_retries(st, on_retry, &c);
    return c;
}

static subseq_t scan_dead(store_t *st, uint64_t sub, int *rc)
{
    subseq_t c = {0};
    *rc = store_scan_dead(st, sub, on_dead, &c);
    return c;
}

static uint64_t cursor_of(store_t *st)
{
    uint64_t c = 12345;
    int rc = store_get_cursor(st, &c);
    return rc == 0 ? c : 99999;
}

/* ---- tests ---- */

/* The state written by test_together, checked right after the commit and after reopen. */
static void check_together_state(store_t *st, const char *when)
{
    int rc;
    subs_t s = scan_subs(st, &rc);
    ok(rc == 0 && s.n == 3 && s.ids[0] == 1 && s.ids[1] == 2 && s.ids[2] == 3, "%s: subs 1, 2, 3",
       when);
    ok(!strcmp(s.recs[0], "rec-a2") && !strcmp(s.recs[1], "rec-b") && s.lens[2] == 0,
       "%s: records (replace kept the last put; empty record)", when);
    subseq_t r = scan_retries(st, &rc);
    ok(rc == 0 && r.n == 2, "%s: 2 retries", when);
    ok(r.sub[0] == 1 && r.seq[0] == 1 && r.when[0] == -7 && r.attempts[0] == 3 &&
           r.status[0] == 503 && !strcmp(r.err[0], "service unavailable"),
       "%s: retry (1, 1) round-trips", when);
    ok(r.sub[1] == 2 && r.seq[1] == 2 && r.status[1] == -1 && r.err[1][0] == 0,
       "%s: retry (2, 2): negative status, empty error", when);
    subseq_t d = scan_dead(st, 2, &rc);
    ok(rc == 0 && d.n == 1 && d.seq[0] == 1 && d.when[0] == 1700000000000001LL &&
           d.attempts[0] == 9 && d.status[0] == 410 && strlen(d.err[0]) == 127 &&
           d.err[0][126] == 'x',
       "%s: dead letter (2, 1), error truncated to 127 bytes and NUL-terminated", when);
    ok(cursor_of(st) == 2, "%s: cursor 2", when);
    ok(store_last_seq(st) == 2, "%s: last seq 2", when);
}

static void test_together(void)
{
    const char *dir = newdir("together");
    store_t *st = open_ok(dir, 0);
    ok(st != NULL, "together: open");
    if (!st) return;
    ok(cursor_of(st) == 0, "new store: cursor 0");
    store_batch_t *b = store_batch_new();
    ok(b && store_batch_empty(b), "new batch is empty");
    char rec[] = "rec-a";
    ok(store_batch_put_sub(b, 1, rec, 5) == 0, "put sub 1");
    rec[0] = 'X'; /* the batch holds a copy */
    ok(!store_batch_empty(b), "batch not empty after a put");
    store_batch_put_sub(b, 2, "rec-b", 5);
    store_batch_put_sub(b, 1, "rec-a2", 6);
    store_batch_put_sub(b, 3, NULL, 0);
    store_retry_t r1 = mkretry(-7, 3, 503, "service unavailable");
    store_batch_put_retry(b, 1, 1, &r1);
    store_retry_t r2 = mkretry(5, 1, -1, "");
    store_batch_put_retry(b, 2, 2, &r2);
    store_dead_t d = {.dead_us = 1700000000000001LL, .attempts = 9, .last_status = 410};
    memset(d.last_error, 'x', sizeof d.last_error); /* no NUL at all: 127 bytes are kept */
    store_batch_put_dead(b, 2, 1, &d);
    store_batch_set_cursor(b, 2);
    store_event_in_t evs[2] = {mkev("e1", "urn:r", "{}"), mkev("e2", "urn:r", "{\"x\":1}")};
    store_result_t res[2];
    int rc = store_commit(st, b, evs, 2, res);
    ok(rc == 0, "commit ops + 2 events: %s", store_strerror(rc));
    ok(res[0].res == STORE_RES_STORED && res[0].seq == 1 && res[1].res == STORE_RES_STORED &&
           res[1].seq == 2,
       "events stored as 1, 2");
    ok(store_batch_empty(b), "batch emptied by the commit");
    check_together_state(st, "same process");
    store_close(st);

    st = open_ok(dir, 0);
    ok(st != NULL, "together: reopen");
    if (!st) {
        store_batch_free(b);
        return;
    }
    check_together_state(st, "after reopen");

    /* ops only (no events); a duplicate event with ops still applies the ops */
    store_batch_del_retry(b, 1, 1);
    store_batch_del_retry(b, 1, 1);  /* twice: a missing key is not an error */
    store_batch_del_dead(b, 77, 77); /* never existed */
    store_batch_del_sub(b, 99);      /* never existed */
    rc = store_commit(st, b, NULL, 0, NULL);
    ok(rc == 0 && store_batch_empty(b), "ops-only commit with deletes of missing keys: 0");
    subseq_t rs = scan_retries(st, &rc);
    ok(rc == 0 && rs.n == 1 && rs.sub[0] == 2, "retry (1, 1) deleted");

    /* within one batch the order of operations is kept */
    store_retry_t r = mkretry(1, 1, 0, "a");
    store_batch_put_retry(b, 5, 1, &r);
    store_batch_del_retry(b, 5, 1);
    store_batch_del_retry(b, 5, 2);
    store_batch_put_retry(b, 5, 2, &r);
    store_event_in_t dup = mkev("e1", "urn:r", "{}");
    rc = store_commit(st, b, &dup, 1, res);
    ok(rc == 0 && res[0].res == STORE_RES_DUP && res[0].seq == 1, "dup event with ops: DUP of 1");
    rs = scan_retries(st, &rc);
    ok(rs.n == 2 && rs.sub[1] == 5 && rs.seq[1] == 2, "put,del -> absent; del,put -> present");

    /* store_commit with a NULL or empty batch is store_append_batch */
    store_event_in_t e3 = mkev("e3", "urn:r", "{}");
    rc = store_commit(st, NULL, &e3, 1, res);
    ok(rc == 0 && res[0].res == STORE_RES_STORED && res[0].seq == 3, "NULL batch: event 3");
    store_event_in_t e4 = mkev("e4", "urn:r", "{}");
    rc = store_commit(st, b, &e4, 1, res);
    ok(rc == 0 && res[0].seq == 4 && store_batch_empty(b), "empty batch: event 4");
    ok(store_commit(st, b, NULL, 0, NULL) == 0, "empty batch, no events: 0");
    ok(store_append_batch(st, NULL, 0, NULL) == 0, "store_append_batch of nothing: 0");
    store_event_in_t e5[2] = {mkev("e5", "urn:r", "{}"), mkev("e5", "urn:r", "{}")};
    rc = store_append_batch(st, e5, 2, res);
    ok(rc == 0 && res[0].res == STORE_RES_STORED && res[0].seq == 5 &&
           res[1].res == STORE_RES_DUP && res[1].seq == 5,
       "store_append_batch as before: stored 5, in-batch DUP");

    /* a caller error in the events: nothing committed, the batch kept */
    store_batch_set_cursor(b, 4);
    store_batch_put_sub(b, 9, "nine", 4);
    store_event_in_t bad = mkev("bad", "urn:r", "{}");
    bad.type = NULL;
    rc = store_commit(st, b, &bad, 1, res);
    ok(rc == STORE_EINVAL && res[0].res == STORE_RES_ERROR, "bad event: EINVAL, ERROR");
    ok(!store_batch_empty(b) && cursor_of(st) == 2, "batch kept, nothing committed");
    store_batch_clear(b);
    ok(store_batch_empty(b), "store_batch_clear empties");
    subs_t s = scan_subs(st, &rc);
    ok(s.n == 3, "sub 9 was not stored");

    ok(store_batch_put_sub(NULL, 1, "x", 1) == STORE_EINVAL &&
           store_batch_put_retry(b, 1, 1, NULL) == STORE_EINVAL,
       "NULL arguments: EINVAL");
    ok(store_batch_empty(NULL), "NULL batch counts as empty");
    store_batch_free(NULL);
    store_batch_free(b);
    store_close(st);
}

static void test_cursor(void)
{
    const char *dir = newdir("cursor");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    store_batch_set_cursor(b, 10);
    store_batch_set_cursor(b, 5); /* lower: ignored, the batch keeps 10 */
    int rc = store_commit(st, b, NULL, 0, NULL);
    ok(rc == 0 && cursor_of(st) == 10, "cursor 10 (the max of the batch)");
    store_batch_set_cursor(b, 3);
    rc = store_commit(st, b, NULL, 0, NULL);
    ok(rc == 0 && cursor_of(st) == 10, "a later lower cursor does not move it back");
    store_batch_set_cursor(b, 0);
    ok(!store_batch_empty(b), "cursor 0 still counts as an operation");
    store_commit(st, b, NULL, 0, NULL);
    ok(cursor_of(st) == 10, "cursor 0 ignored");
    store_batch_set_cursor(b, 12);
    store_commit(st, b, NULL, 0, NULL);
    ok(cursor_of(st) == 12, "cursor moves forward to 12");
    store_close(st);
    st = open_ok(dir, 0);
    if (!st) {
        store_batch_free(b);
        return;
    }
    ok(cursor_of(st) == 12, "cursor 12 after reopen");
    store_batch_set_cursor(b, 11);
    store_commit(st, b, NULL, 0, NULL);
    ok(cursor_of(st) == 12, "after reopen a lower cursor is still ignored");
    uint64_t c = 0;
    ok(store_get_cursor(st, NULL) == STORE_EINVAL && store_get_cursor(NULL, &c) == STORE_EINVAL,
       "store_get_cursor NULL arguments: EINVAL");
    store_batch_free(b);
    store_close(st);
}

static void test_del_sub(void)
{
    const char *dir = newdir("delsub");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    /* subs 1, 2, 3 and 256 (whose key shares no prefix byte with 1 but sorts after it), each with
     * retries and dead letters, plus enough of sub 2's to span more than one LMDB page */
    uint64_t subs[] = {1, 2, 3, 256};
    store_retry_t r = mkretry(100, 1, 500, "internal server error, and a longer text for size");
    store_dead_t d = mkdead(200, 5, 404, "not found");
    for (size_t i = 0; i < 4; i++) {
        store_batch_put_sub(b, subs[i], "rec", 3);
        size_t nrec = subs[i] == 2 ? 500 : 3;
        for (uint64_t seq = 1; seq <= nrec; seq++) {
            store_batch_put_retry(b, subs[i], seq, &r);
            store_batch_put_dead(b, subs[i], seq + 1000, &d);
        }
    }
    int rc = store_commit(st, b, NULL, 0, NULL);
    ok(rc == 0, "del_sub: setup commit");
    subseq_t rs = scan_retries(st, &rc);
    ok(rc == 0 && rs.n == 509, "509 retries before");
    store_batch_del_sub(b, 2);
    rc = store_commit(st, b, NULL, 0, NULL);
    ok(rc == 0, "commit del_sub(2)");
    rs = scan_retries(st, &rc);
    bool no2 = true;
    for (size_t i = 0; i < rs.n && i < 32; i++)
        no2 = no2 && rs.sub[i] != 2;
    ok(rc == 0 && rs.n == 9 && no2, "sub 2's 500 retries gone, the other 9 kept");
    subseq_t ds = scan_dead(st, 2, &rc);
    ok(rc == 0 && ds.n == 0, "sub 2's dead letters gone");
    ds = scan_dead(st, 1, &rc);
    ok(rc == 0 && ds.n == 3, "sub 1's dead letters kept");
    ds = scan_dead(st, 3, &rc);
    ok(rc == 0 && ds.n == 3, "sub 3's dead letters kept");
    ds = scan_dead(st, 256, &rc);
    ok(rc == 0 && ds.n == 3 && ds.sub[0] == 256, "sub 256's dead letters kept");
    subs_t s = {0};
    ok(store_get_sub(st, 2, on_sub, &s) == STORE_ENOTFOUND && s.n == 0, "sub 2: ENOTFOUND");
    ok(store_get_sub(st, 3, on_sub, &s) == 0 && s.n == 1 && s.ids[0] == 3 &&
           !strcmp(s.recs[0], "rec"),
       "sub 3 still there");

    /* delete then re-create in one batch: the new sub starts clean */
    store_batch_del_sub(b, 3);
    store_batch_put_sub(b, 3, "new", 3);
    store_batch_put_retry(b, 3, 7, &r);
    store_commit(st, b, NULL, 0, NULL);
    rs = scan_retries(st, &rc);
    size_t of3 = 0;
    for (size_t i = 0; i < rs.n && i < 32; i++)
        if (rs.sub[i] == 3) of3++;
    ok(rc == 0 && of3 == 1, "del then put in one batch: only the new retry of sub 3");
    store_batch_free(b);
    store_close(st);
}

static void test_sub_ids(void)
{
    const char *dir = newdir("subids");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    uint64_t a = store_sub_next_id(st), b2 = store_sub_next_id(st), c = store_sub_next_id(st);
    ok(a == 1 && b2 == 2 && c == 3, "ids 1, 2, 3 on a new store");
    store_batch_t *b = store_batch_new();
    store_batch_put_sub(b, a, "a", 1);
    store_batch_put_sub(b, c, "c", 1);
    store_commit(st, b, NULL, 0, NULL);
    store_batch_del_sub(b, c); /* the highest one */
    store_commit(st, b, NULL, 0, NULL);
    ok(store_sub_next_id(st) == 4, "next id 4");
    store_close(st);

    st = open_ok(dir, 0);
    if (!st) {
        store_batch_free(b);
        return;
    }
    uint64_t n = store_sub_next_id(st);
    ok(n == 4, "after reopen: 4, the deleted 3 is not reused (got %llu)", (unsigned long long)n);
    /* a caller-chosen id above the counter pushes it up, in memory and on disk */
    store_batch_put_sub(b, 100, "h", 1);
    store_commit(st, b, NULL, 0, NULL);
    ok(store_sub_next_id(st) == 101, "after putting id 100: 101");
    store_batch_del_sub(b, 100);
    store_commit(st, b, NULL, 0, NULL);
    store_close(st);
    st = open_ok(dir, 0);
    if (!st) {
        store_batch_free(b);
        return;
    }
    ok(store_sub_next_id(st) == 101, "after reopen: 101");
    store_close(st);

    /* without the meta record the highest stored id still counts */
    ok(raw_op(dir, "meta", "nextsubid", 9, NULL, 0, true) == 0, "raw: delete meta nextsubid");
    st = open_ok(dir, 0);
    if (!st) {
        store_batch_free(b);
        return;
    }
    ok(store_sub_next_id(st) == 2, "no meta: highest stored sub (1) + 1");
    ok(store_sub_next_id(NULL) == 0, "store_sub_next_id(NULL): 0");
    store_close(st);
    store_batch_free(b);
}

static void test_scan_order(void)
{
    const char *dir = newdir("order");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    uint64_t ids[] = {5, 1, 300, 2};
    for (size_t i = 0; i < 4; i++)
        store_batch_put_sub(b, ids[i], "s", 1);
    struct {
        uint64_t sub, seq;
    } rk[] = {{2, 9}, {1, 300}, {1, 2}, {256, 1}, {1, 256}};
    for (size_t i = 0; i < 5; i++) {
        store_retry_t r = mkretry((int64_t)i, 1, 0, "");
        store_batch_put_retry(b, rk[i].sub, rk[i].seq, &r);
        store_dead_t d = mkdead((int64_t)i, 1, 0, "");
        store_batch_put_dead(b, rk[i].sub, rk[i].seq, &d);
    }
    store_event_in_t evs[3] = {mkev("o1", "urn:r", "{}"), mkev("o2", "urn:r", "{}"),
                               mkev("o3", "urn:r", "{}")};
    store_result_t res[3];
    int rc = store_commit(st, b, evs, 3, res);
    ok(rc == 0, "order: commit");
    subs_t s = scan_subs(st, &rc);
    ok(rc == 0 && s.n == 4 && s.ids[0] == 1 && s.ids[1] == 2 && s.ids[2] == 5 && s.ids[3] == 300,
       "subs in id order 1, 2, 5, 300");
    s = (subs_t){.stop_at = 2};
    rc = store_scan_subs(st, on_sub, &s);
    ok(rc == 0 && s.n == 2, "subs scan stops on STOP");
    subseq_t r = {.st = st};
    rc = store_scan_retries(st, on_retry, &r);
    ok(rc == 0 && r.n == 5 && r.sub[0] == 1 && r.seq[0] == 2 && r.sub[1] == 1 && r.seq[1] == 256 &&
           r.sub[2] == 1 && r.seq[2] == 300 && r.sub[3] == 2 && r.seq[3] == 9 && r.sub[4] == 256 &&
           r.seq[4] == 1,
       "retries by subscription, then sequence");
    ok(r.nested_found == 2, "store_get_event inside a scan callback (nested read) works");
    r = (subseq_t){.stop_at = 1};
    rc = store_scan_retries(st, on_retry, &r);
    ok(rc == 0 && r.n == 1, "retries scan stops on STOP");
    subseq_t d = scan_dead(st, 1, &rc);
    ok(rc == 0 && d.n == 3 && d.seq[0] == 2 && d.seq[1] == 256 && d.seq[2] == 300,
       "dead letters of sub 1 only, in sequence order");
    d = scan_dead(st, 256, &rc);
    ok(rc == 0 && d.n == 1 && d.sub[0] == 256 && d.seq[0] == 1, "dead letters of the last sub");
    d = scan_dead(st, 3, &rc);
    ok(rc == 0 && d.n == 0, "a sub without dead letters: none");
    d = scan_dead(st, 1000, &rc);
    ok(rc == 0 && d.n == 0, "a sub after every key: none");
    d = (subseq_t){.stop_at = 2};
    rc = store_scan_dead(st, 1, on_dead, &d);
    ok(rc == 0 && d.n == 2, "dead scan stops on STOP");
    store_batch_free(b);
    store_close(st);
}

typedef struct {
    int n;
    uint64_t seq;
    char id[16];
    char json[16];
} got_t;

static int on_got(void *ctx, const store_event_t *ev)
{
    got_t *g = ctx;
    g->n++;
    g->seq = ev->seq;
    snprintf(g->id, sizeof g->id, "%s", ev->id);
    snprintf(g->json, sizeof g->json, "%.*s", (int)ev->json_len, ev->json);
    return STORE_SCAN_STOP;
}

static void test_get_event(void)
{
    const char *dir = newdir("getevent");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_event_in_t evs[2] = {mkev("g1", "urn:r", "{\"a\":1}"), mkev("g2", "urn:r", "[]")};
    store_result_t res[2];
    store_append_batch(st, evs, 2, res);
    got_t g = {0};
    int rc = store_get_event(st, 2, on_got, &g);
    ok(rc == 0 && g.n == 1 && g.seq == 2 && !strcmp(g.id, "g2") && !strcmp(g.json, "[]"),
       "store_get_event(2): called once with event g2");
    g = (got_t){0};
    rc = store_get_event(st, 1, on_got, &g);
    ok(rc == 0 && g.n == 1 && !strcmp(g.json, "{\"a\":1}"), "store_get_event(1)");
    g = (got_t){0};
    ok(store_get_event(st, 3, on_got, &g) == STORE_ENOTFOUND && g.n == 0,
       "store_get_event(3): ENOTFOUND, fn not called");
    ok(store_get_event(st, 0, on_got, &g) == STORE_ENOTFOUND, "store_get_event(0): ENOTFOUND");
    ok(store_get_event(st, 1, NULL, NULL) == STORE_EINVAL, "store_get_event without fn: EINVAL");
    store_close(st);
}

static void test_map_full(void)
{
    const char *dir = newdir("full");
    const uint64_t map = 1u << 20;
    store_t *st = open_ok(dir, map);
    ok(st != NULL, "full: open with a 1 MiB map");
    if (!st) return;
    store_event_in_t e1 = mkev("f1", "urn:r", "{}");
    store_result_t res[2];
    store_batch_t *b = store_batch_new();
    store_batch_put_sub(b, 1, "one", 3);
    store_batch_set_cursor(b, 1);
    int rc = store_commit(st, b, &e1, 1, res);
    ok(rc == 0 && res[0].seq == 1, "full: first commit");

    /* operations that cannot fit: a subscription record larger than the map */
    size_t big_len = 2u << 20;
    char *big = malloc(big_len);
    if (!big) {
        store_batch_free(b);
        store_close(st);
        return;
    }
    memset(big, 'B', big_len);
    store_batch_put_sub(b, 2, big, big_len);
    store_batch_set_cursor(b, 5);
    store_event_in_t evs[2] = {mkev("f2", "urn:r", "{}"), mkev("f1", "urn:r", "{}")};
    rc = store_commit(st, b, evs, 2, res);
    ok(rc == STORE_EMAPFULL, "ops that do not fit: EMAPFULL (%s)", store_strerror(rc));
    ok(res[0].res == STORE_RES_FULL && res[1].res == STORE_RES_FULL, "every event FULL");
    ok(!store_batch_empty(b), "the batch is kept");
    subs_t s = {0};
    ok(store_get_sub(st, 2, on_sub, &s) == STORE_ENOTFOUND && cursor_of(st) == 1 &&
           store_last_seq(st) == 1,
       "nothing committed (no sub 2, cursor 1, last seq 1)");
    ok(store_check(st) == 0, "the full store still reads");
    store_close(st);

    /* with a bigger map the same batch commits */
    st = open_ok(dir, 16u << 20);
    ok(st != NULL, "reopen with a 16 MiB map");
    if (!st) {
        free(big);
        store_batch_free(b);
        return;
    }
    rc = store_commit(st, b, evs, 2, res);
    ok(rc == 0 && res[0].res == STORE_RES_STORED && res[0].seq == 2 &&
           res[1].res == STORE_RES_DUP && res[1].seq == 1,
       "the kept batch commits with the events");
    ok(store_batch_empty(b) && cursor_of(st) == 5, "batch emptied, cursor 5");
    s = (subs_t){0};
    ok(store_get_sub(st, 2, on_sub, &s) == 0 && s.n == 1 && s.lens[0] == big_len,
       "the 2 MiB subscription record is there");
    store_close(st);

    /* operations that fit, an event that does not: the ops commit, the event is FULL */
    dir = newdir("full2");
    st = open_ok(dir, map);
    if (!st) {
        free(big);
        store_batch_free(b);
        return;
    }
    store_batch_put_sub(b, 7, "seven", 5);
    store_batch_set_cursor(b, 3);
    store_event_in_t huge = mkev("huge", "urn:r", "");
    huge.json = big;
    huge.json_len = big_len;
    store_event_in_t small = mkev("small", "urn:r", "{}");
    store_event_in_t mixed[2] = {small, huge};
    rc = store_commit(st, b, mixed, 2, res);
    ok(rc == STORE_EMAPFULL && res[0].res == STORE_RES_STORED && res[0].seq == 1 &&
           res[1].res == STORE_RES_FULL,
       "ops fit: the event that fits is stored, the other FULL, EMAPFULL");
    s = (subs_t){0};
    ok(store_get_sub(st, 7, on_sub, &s) == 0 && cursor_of(st) == 3,
       "the ops were committed with it");
    ok(store_batch_empty(b), "and the batch was emptied (its ops are on disk)");
    free(big);
    store_batch_free(b);
    store_close(st);
}

static void test_corrupt(void)
{
    const char *dir = newdir("corrupt");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_batch_t *b = store_batch_new();
    store_retry_t r = mkretry(1, 1, 200, "ok");
    store_batch_put_retry(b, 1, 1, &r);
    store_batch_put_sub(b, 1, "s", 1);
    store_commit(st, b, NULL, 0, NULL);
    store_batch_free(b);
    store_close(st);

    /* value: i64, u32, i32, u16 len, len bytes */
    unsigned char good[18 + 2] = {0};
    good[17] = 2;
    good[18] = 'h';
    good[19] = 'i';
    unsigned char longer[18 + 3] = {0}; /* says 2 bytes of error, has 3 */
    memcpy(longer, good, sizeof good);
    unsigned char toolong[18 + 200] = {0}; /* says 200 (> 127) and has them */
    toolong[17] = 200;
    unsigned char k[16];
    struct {
        const void *p;
        size_t n;
        const char *name;
    } bad[] = {{good, 17, "shorter than the header"},
               {good, 19, "shorter than its error length"},
               {longer, sizeof longer, "trailing bytes"},
               {toolong, sizeof toolong, "error length above 127"},
               {"", 0, "empty value"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        subseq_key(k, 2, 1);
        raw_op(dir, "retries", k, 16, bad[i].p, bad[i].n, false);
        st = open_ok(dir, 0);
        if (!st) return;
        subseq_t c = {0};
        int rc = store_scan_retries(st, on_retry, &c);
        ok(rc == STORE_ECORRUPT && c.n == 1, "retry %s: ECORRUPT after the good one (%s)",
           bad[i].name, store_last_error(st));
        store_close(st);
    }
    subseq_key(k, 2, 1);
    raw_op(dir, "retries", k, 16, good, sizeof good, false);
    st = open_ok(dir, 0);
    if (!st) return;
    int rc;
    subseq_t c = scan_retries(st, &rc);
    ok(rc == 0 && c.n == 2 && !strcmp(c.err[1], "hi"), "the well-formed raw record decodes");
    store_close(st);

    subseq_key(k, 4, 1);
    raw_op(dir, "dead", k, 16, good, 10, false);
    raw_op(dir, "retries", "short", 5, good, sizeof good, false);
    st = open_ok(dir, 0);
    if (!st) return;
    c = scan_dead(st, 4, &rc);
    ok(rc == STORE_ECORRUPT, "dead letter too short: ECORRUPT");
    c = scan_retries(st, &rc);
    ok(rc == STORE_ECORRUPT, "retries key of the wrong size: ECORRUPT");
    store_close(st);

    /* bad meta records make the store refuse to open rather than fail every later commit or risk
     * reusing ids */
    store_opts_t o = {.sync = STORE_SYNC_NONE};
    raw_op(dir, "meta", "cursor", 6, "1234", 4, false);
    st = NULL;
    rc = store_open(dir, &o, &st);
    ok(rc == STORE_ECORRUPT && st == NULL, "cursor of 4 bytes: open fails with ECORRUPT");
    unsigned char c8[8];
    be64(c8, 3);
    raw_op(dir, "meta", "cursor", 6, c8, 8, false);
    st = open_ok(dir, 0);
    uint64_t cur = 0;
    ok(st && store_get_cursor(st, &cur) == 0 && cur == 3, "a good cursor record opens again");
    store_close(st);

    raw_op(dir, "meta", "nextsubid", 9, "12", 2, false);
    st = NULL;
    rc = store_open(dir, &o, &st);
    ok(rc == STORE_ECORRUPT && st == NULL, "nextsubid of 2 bytes: open fails with ECORRUPT");
}

static void test_version(void)
{
    /* a version-1 store (before delivery state) is refused, and the refusal creates nothing */
    const char *dir = newdir("v1");
    store_t *st = open_ok(dir, 0);
    if (!st) return;
    store_close(st);
    unsigned char v[4] = {0, 0, 0, 1};
    raw_op(dir, "meta", "format", 6, v, 4, false);
    st = NULL;
    int rc = store_open(dir, NULL, &st);
    ok(rc == STORE_EVERSION && st == NULL, "format 1: EVERSION");
    ok(STORE_FORMAT_VERSION == 4, "this build writes format 4");
}

/* ---- releasing the map's pages ---- */

/* Rss (kB) of this process's mappings of the file at path, from /proc/self/smaps; -1 if none. */
static long mapped_rss_kb(const char *path)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long total = -1;
    int in = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        long kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '/')) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            in = strlen(line) >= strlen(path) &&
                 strcmp(line + strlen(line) - strlen(path), path) == 0;
        } else if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in = 0;
        } else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) {
            total = (total < 0 ? 0 : total) + kb;
        }
    }
    fclose(f);
    return total;
}

static int on_sub_check(void *ctx, uint64_t id, const void *rec, size_t len)
{
    size_t *bad = ctx;
    char want[1100];
    int n = snprintf(want, sizeof want, "{\"id\":%llu,\"pad\":\"%0900llu\"}",
                     (unsigned long long)id, (unsigned long long)id);
    if ((size_t)n != len || memcmp(rec, want, len) != 0) (*bad)++;
    return STORE_SCAN_CONTINUE;
}

static void test_release_pages(void)
{
    const char *dir = newdir("release");
    char data[200];
    store_t *st = open_ok(dir, 0);
    store_batch_t *b = store_batch_new();
    size_t bad = 0;
    char rec[1100];
    int rc = 0;
    for (uint64_t id = 1; id <= 4000 && rc == 0; id++) {
        int n = snprintf(rec, sizeof rec, "{\"id\":%llu,\"pad\":\"%0900llu\"}",
                         (unsigned long long)id, (unsigned long long)id);
        rc = store_batch_put_sub(b, id, rec, (size_t)n);
    }
    ok(rc == 0 && store_commit(st, b, NULL, 0, NULL) == 0, "release: 4000 subscriptions of ~1 KiB");
    store_batch_free(b);
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    ok(store_scan_subs(st, on_sub_check, &bad) == 0 && bad == 0, "release: scanned");
    long before = mapped_rss_kb(data);
    ok(before >= 1000, "release: the scan made the map resident (%ld kB)", before);
    ok(store_release_pages(st) == 0, "release: store_release_pages ok");
    long after = mapped_rss_kb(data);
    ok(after >= 0 && after < 100, "release: the map's pages left the resident set (%ld kB)", after);
    ok(store_scan_subs(st, on_sub_check, &bad) == 0 && bad == 0,
       "release: every record reads back the same afterwards");
    b = store_batch_new();
    rc = store_batch_put_sub(b, 4001, "{}", 2);
    ok(rc == 0 && store_commit(st, b, NULL, 0, NULL) == 0 && store_sub_next_id(st) == 4002,
       "release: commits still work");
    store_batch_free(b);
    ok(store_release_pages(NULL) == STORE_EINVAL, "release: NULL is EINVAL");
    store_close(st);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/hendelse-storedel-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_together();
    test_cursor();
    test_del_sub();
    test_sub_ids();
    test_scan_order();
    test_get_event();
    test_map_full();
    test_corrupt();
    test_version();
    test_release_pages();
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
