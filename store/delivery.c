/* store: reads of the delivery state (dispatch cursor, retries, dead letters) and of the
 * subscriptions, subscription id allocation, and single-event lookup for redelivery. Every read
 * runs in its own short read transaction that ends before the function returns. Writes go through
 * store_batch_t (batch.c) and store_commit (commit.c). */
#include "store/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

int store_meta_get_u64(store_t *st, MDB_txn *txn, const MDB_val *key, uint64_t *out)
{
    MDB_val k = *key, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = 0;
        return STORE_OK;
    }
    if (rc != 0) return store_mdb_fail(st, "mdb_get(meta)", rc);
    if (v.mv_size != 8) {
        store_set_err(st, "meta %.*s has %zu bytes, expected 8", (int)key->mv_size,
                      (const char *)key->mv_data, v.mv_size);
        return STORE_ECORRUPT;
    }
    *out = get_u64(v.mv_data);
    return STORE_OK;
}

int store_delivery_load(store_t *st, MDB_txn *txn)
{
    /* A cursor record that does not decode would make every later commit that moves the cursor
     * fail, publishing included: refuse to open instead, where the operator sees it at once. */
    uint64_t cursor;
    int crc = store_meta_get_u64(st, txn, &store_meta_cursor, &cursor);
    if (crc != 0) return crc;

    /* next = max(nextsubid, highest stored id + 1, 1): the meta record covers deleted
     * subscriptions, the last key covers a record put without its high-water mark. */
    uint64_t next;
    int rc = store_meta_get_u64(st, txn, &store_meta_nextsubid, &next);
    if (rc != 0) return rc;
    if (next < 1) next = 1;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->subs, &cur);
    if (mrc != 0) return store_mdb_fail(st, "mdb_cursor_open(subs)", mrc);
    MDB_val k, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (mrc == 0) {
        if (k.mv_size != 8) {
            store_set_err(st, "subs key of %zu bytes", k.mv_size);
            return STORE_ECORRUPT;
        }
        uint64_t last = get_u64(k.mv_data);
        if (last != UINT64_MAX && last + 1 > next) next = last + 1;
    } else if (mrc != MDB_NOTFOUND) {
        return store_mdb_fail(st, "mdb_cursor_get(subs, MDB_LAST)", mrc);
    }
    st->next_sub_id = next;
    return STORE_OK;
}

uint64_t store_sub_next_id(store_t *st)
{
    /* 0 marks an exhausted counter (2^64 - 1 ids handed out): never in practice, but never a
     * repeated id either. */
    if (!st) return 0;
    /* the commit (possibly on a committer thread) may raise the counter: take ids atomically */
    uint64_t id = __atomic_load_n(&st->next_sub_id, __ATOMIC_ACQUIRE);
    do {
        if (id == 0) return 0;
    } while (!__atomic_compare_exchange_n(&st->next_sub_id, &id, id == UINT64_MAX ? 0 : id + 1, 0,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    return id;
}

int store_get_cursor(store_t *st, uint64_t *seq_out)
{
    if (!st || !seq_out) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    uint64_t seq;
    rc = store_meta_get_u64(st, txn, &store_meta_cursor, &seq);
    store_read_end(st, txn);
    if (rc == 0) *seq_out = seq;
    return rc;
}

int store_scan_subs(store_t *st, store_sub_fn fn, void *ctx)
{
    if (!st || !fn) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->subs, &cur);
    if (mrc != 0) {
        rc = store_mdb_fail(st, "mdb_cursor_open(subs)", mrc);
        store_read_end(st, txn);
        return rc;
    }
    MDB_val k, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        if (k.mv_size != 8) {
            store_set_err(st, "subs key of %zu bytes", k.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        if (fn(ctx, get_u64(k.mv_data), v.mv_data, v.mv_size) != STORE_SCAN_CONTINUE) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_mdb_fail(st, "mdb_cursor_get(subs)", mrc);
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    return rc;
}

int store_get_sub(store_t *st, uint64_t id, store_sub_fn fn, void *ctx)
{
    if (!st || !fn) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    unsigned char kb[8];
    put_u64(kb, id);
    MDB_val k = {sizeof kb, kb}, v;
    int mrc = mdb_get(txn, st->subs, &k, &v);
    if (mrc == 0)
        (void)fn(ctx, id, v.mv_data, v.mv_size); /* one record: STOP and CONTINUE mean the same */
    else if (mrc == MDB_NOTFOUND)
        rc = STORE_ENOTFOUND;
    else
        rc = store_mdb_fail(st, "mdb_get(subs)", mrc);
    store_read_end(st, txn);
    return rc;
}

/* Scans retries (dead false) or dead letters (dead true): all of them, or with one_sub only those
 * of sub_id (positioned with MDB_SET_RANGE on the 8-byte prefix, stopping when it changes, so the
 * cost is that subscription's entries). Calls rfn or dfn respectively. */
static int scan_subseq(store_t *st, bool dead, bool one_sub, uint64_t sub_id, store_retry_fn rfn,
                       store_dead_fn dfn, void *ctx)
{
    const char *name = dead ? "dead" : "retries";
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, dead ? st->dead : st->retries, &cur);
    if (mrc != 0) {
        rc = store_mdb_fail(st, dead ? "mdb_cursor_open(dead)" : "mdb_cursor_open(retries)", mrc);
        store_read_end(st, txn);
        return rc;
    }
    unsigned char pfx[8];
    put_u64(pfx, sub_id);
    MDB_val k = {sizeof pfx, pfx}, v;
    mrc = mdb_cursor_get(cur, &k, &v, one_sub ? MDB_SET_RANGE : MDB_FIRST);
    while (mrc == 0) {
        if (k.mv_size != SUBSEQ_KEY_LEN) {
            store_set_err(st, "%s key of %zu bytes", name, k.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        if (one_sub && memcmp(k.mv_data, pfx, sizeof pfx) != 0) break;
        const unsigned char *kp = k.mv_data;
        uint64_t sid = get_u64(kp), seq = get_u64(kp + 8);
        int more;
        if (dead) {
            store_dead_t d;
            rc = store_subseq_decode(st, &v, &d.dead_us, &d.attempts, &d.last_status, d.last_error);
            if (rc != 0) break;
            more = dfn(ctx, sid, seq, &d) == STORE_SCAN_CONTINUE;
        } else {
            store_retry_t r;
            rc = store_subseq_decode(st, &v, &r.due_us, &r.attempts, &r.last_status, r.last_error);
            if (rc != 0) break;
            more = rfn(ctx, sid, seq, &r) == STORE_SCAN_CONTINUE;
        }
        if (!more) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == STORE_ECORRUPT && mrc == 0 && k.mv_size == SUBSEQ_KEY_LEN) {
        /* Name the record: the decoder does not know its key. */
        char detail[256];
        snprintf(detail, sizeof detail, "%s", store_last_error(st));
        const unsigned char *kp = k.mv_data;
        store_set_err(st, "%s (sub %llu, seq %llu): %s", name, (unsigned long long)get_u64(kp),
                      (unsigned long long)get_u64(kp + 8), detail);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_mdb_fail(st, dead ? "mdb_cursor_get(dead)" : "mdb_cursor_get(retries)", mrc);
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    return rc;
}

int store_scan_retries(store_t *st, store_retry_fn fn, void *ctx)
{
    if (!st || !fn) return STORE_EINVAL;
    return scan_subseq(st, false, false, 0, fn, NULL, ctx);
}

int store_scan_dead(store_t *st, uint64_t sub_id, store_dead_fn fn, void *ctx)
{
    if (!st || !fn) return STORE_EINVAL;
    return scan_subseq(st, true, true, sub_id, NULL, fn, ctx);
}

int store_get_event(store_t *st, uint64_t seq, store_scan_fn fn, void *ctx)
{
    if (!st || !fn) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    unsigned char kb[8];
    put_u64(kb, seq);
    MDB_val k = {sizeof kb, kb}, v;
    int mrc = mdb_get(txn, st->events, &k, &v);
    if (mrc == 0) {
        store_event_t ev;
        rc = store_record_decode(st, seq, &v, &ev);
        if (rc == 0) (void)fn(ctx, &ev);
    } else if (mrc == MDB_NOTFOUND) {
        rc = STORE_ENOTFOUND;
    } else {
        rc = store_mdb_fail(st, "mdb_get(events)", mrc);
    }
    store_read_end(st, txn);
    return rc;
}

/* The map is mapped PROT_READ, MAP_SHARED (open_env never sets MDB_WRITEMAP): dropping its page
 * table entries loses nothing, the next access maps the page cache's copy again. LMDB does not
 * tell where its map is (mdb_env_info's me_mapaddr is set only with MDB_FIXEDMAP), so the shared
 * mappings of the data file are found in /proc/self/maps by the file's device and inode. */
int store_release_pages(store_t *st)
{
    if (!st) return STORE_EINVAL;
    mdb_filehandle_t fd;
    struct stat sb;
    int mrc = mdb_env_get_fd(st->env, &fd);
    if (mrc != 0) return store_mdb_fail(st, "mdb_env_get_fd", mrc);
    if (fstat(fd, &sb) != 0) {
        store_set_err(st, "fstat(data file): %s", strerror(errno));
        return STORE_EIO;
    }
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) {
        store_set_err(st, "open /proc/self/maps: %s", strerror(errno));
        return STORE_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = STORE_OK;
    while (rc == STORE_OK && getline(&line, &cap, maps) > 0) {
        unsigned long lo, hi, off, ino;
        unsigned maj, mnr;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &maj, &mnr, &ino) !=
                7 ||
            strlen(perms) < 4 || perms[1] == 'w' || perms[3] != 's' ||
            ino != (unsigned long)sb.st_ino || makedev(maj, mnr) != sb.st_dev)
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) {
            store_set_err(st, "madvise(MADV_DONTNEED): %s", strerror(errno));
            rc = STORE_EIO;
        }
    }
    free(line);
    fclose(maps);
    return rc;
}
