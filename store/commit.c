/* store: the write transaction. store_commit applies a batch of delivery-state operations and
 * appends events in one LMDB write transaction with one durable sync (group commit);
 * store_append_batch is store_commit without operations. */
#include "store/internal.h"

#include <string.h>

/* Puts one new event and its index entries. Returns an LMDB code; *what names the failing call. */
static int put_event(store_t *st, MDB_txn *txn, const store_event_in_t *e, uint64_t seq,
                     keybuf_t *kb, const char **what)
{
    unsigned char sb[8];
    put_u64(sb, seq);
    MDB_val k = {sizeof sb, sb}, v = {store_record_size(e), NULL};
    /* Sequence keys only grow, so MDB_APPEND skips the search and fills pages completely;
     * MDB_RESERVE lets the record be encoded straight into the page. */
    *what = "mdb_put(events)";
    int rc = mdb_put(txn, st->events, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0) return rc;
    store_record_encode(e, v.mv_data);

    /* Every event is listed under its id (dups sorted by sequence: the first is the oldest). The
     * dedupe lookup goes through this index too, so a new event dirties one index page where the
     * id's neighbours are, not a second page at a random place as a hash-keyed index would. */
    MDB_val ik = store_text_key(e->id, strlen(e->id), kb->id_hash), iv = {sizeof sb, sb};
    *what = "mdb_put(ids)";
    rc = mdb_put(txn, st->ids, &ik, &iv, 0);
    if (rc != 0) return rc;

    MDB_val rk = store_text_key(e->resource, strlen(e->resource), kb->res_hash),
            rv = {sizeof sb, sb};
    *what = "mdb_put(byres)";
    return mdb_put(txn, st->byres, &rk, &rv, 0);
}

/* One attempt in one write transaction: first b's operations (when b is non-NULL), then events
 * [0, limit) are written (or found to be duplicates); events from limit on are only checked against
 * the dedupe lookup (DUP, else FULL), so a duplicate is reported as such even when the map is full.
 * On entry *last_out is the last sequence number before this commit; on success it is the last one
 * used, and *aseq (in: the last audit sequence) the last audit sequence used. On MAP_FULL nothing
 * is committed, and *ops_full is set when the operations alone did not fit, else *full_at is the
 * index of the event whose put failed, or limit when the metadata put or the commit failed. */
static int commit_try(store_t *st, const store_batch_t *b, const store_event_in_t *evs, size_t n,
                      size_t limit, store_result_t *res, size_t *full_at, bool *ops_full,
                      uint64_t *last_out, uint64_t *aseq)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) return store_mdb_fail(st, "mdb_txn_begin(write)", rc);
    if (b) {
        /* Operations go first, so whether they fit does not depend on how many events are tried:
         * if they fail here, no smaller set of events can help. */
        int src = store_batch_apply(st, txn, b);
        if (src != 0) {
            mdb_txn_abort(txn);
            if (src == STORE_EMAPFULL) *ops_full = true;
            return src;
        }
    }
    uint64_t seq = *last_out;
    bool wrote = false;
    for (size_t i = 0; i < n; i++) {
        keybuf_t kb;
        /* A lookup in the write txn sees this batch's own earlier puts: in-batch duplicates too. */
        uint64_t dup_seq = 0;
        int src = store_find_event(st, txn, evs[i].source, evs[i].id, kb.id_hash, &dup_seq);
        if (src == STORE_OK) {
            res[i].res = STORE_RES_DUP;
            res[i].seq = dup_seq;
            continue;
        }
        if (src != STORE_ENOTFOUND) {
            mdb_txn_abort(txn);
            return src;
        }
        if (i >= limit) {
            res[i].res = STORE_RES_FULL;
            res[i].seq = 0;
            continue;
        }
        if (seq == UINT64_MAX) {
            mdb_txn_abort(txn);
            store_set_err(st, "sequence numbers exhausted");
            return STORE_EIO;
        }
        seq++;
        const char *what = "";
        rc = put_event(st, txn, &evs[i], seq, &kb, &what);
        if (rc != 0) {
            /* After a failed put the txn is unusable (MDB_TXN_ERROR): abort, never commit. */
            mdb_txn_abort(txn);
            if (rc == MDB_MAP_FULL) *full_at = i;
            return store_mdb_fail(st, what, rc);
        }
        res[i].res = STORE_RES_STORED;
        res[i].seq = seq;
        wrote = true;
    }
    if (wrote) {
        unsigned char nb[8];
        put_u64(nb, seq + 1);
        MDB_val k = store_meta_nextseq, v = {sizeof nb, nb};
        rc = mdb_put(txn, st->meta, &k, &v, 0);
        if (rc != 0) {
            mdb_txn_abort(txn);
            if (rc == MDB_MAP_FULL) *full_at = limit;
            return store_mdb_fail(st, "mdb_put(meta nextseq)", rc);
        }
    }
    if (b) {
        /* Audit records go after the events, so that a publish record can name its event. */
        int src = store_batch_apply_audit(st, txn, b, *last_out, aseq);
        if (src != 0) {
            mdb_txn_abort(txn);
            if (src == STORE_EMAPFULL) *full_at = limit;
            return src;
        }
    }
    rc = mdb_txn_commit(txn); /* syncs unless MDB_NOSYNC; on failure the txn is already freed */
    if (rc != 0) {
        if (rc == MDB_MAP_FULL) *full_at = limit;
        return store_mdb_fail(st, "mdb_txn_commit", rc);
    }
    *last_out = seq;
    return STORE_OK;
}

static void fill_res(store_result_t *res, size_t n, store_res_t r)
{
    for (size_t i = 0; i < n; i++) {
        res[i].res = r;
        res[i].seq = 0;
    }
}

int store_commit(store_t *st, store_batch_t *b, const store_event_in_t *evs, size_t n,
                 store_result_t *res)
{
    if (b && store_batch_empty(b)) b = NULL; /* nothing to apply: a plain event append */
    if (n == 0 && !b) return STORE_OK;       /* as store_append_batch always did */
    if (n && !res) return STORE_EINVAL;
    if (!st || (n && !evs)) {
        fill_res(res, n, STORE_RES_ERROR);
        return STORE_EINVAL;
    }
    /* Caller errors fail the whole commit before any transaction, as the contract asks. */
    for (size_t i = 0; i < n; i++) {
        const store_event_in_t *e = &evs[i];
        if (!e->id || !e->source || !e->type || !e->resource || (!e->json && e->json_len) ||
            store_record_size(e) == 0) {
            store_set_err(st, "event %zu of the batch: missing or too long field", i);
            fill_res(res, n, STORE_RES_ERROR);
            return STORE_EINVAL;
        }
    }

    /* Map full: retry with only the events that fitted (they are known to fit as puts), or with
     * half as many when the failure came at the end (nextseq or commit), down to none. Each attempt
     * is a fresh transaction, so nothing of a failed one is ever committed. When even the
     * operations with no event do not fit, nothing is committed and b stays as it is. */
    size_t limit = n;
    for (;;) {
        size_t full_at = limit;
        bool ops_full = false;
        uint64_t last = __atomic_load_n(&st->last_seq, __ATOMIC_ACQUIRE);
        uint64_t aseq = __atomic_load_n(&st->last_audit, __ATOMIC_ACQUIRE);
        int rc = commit_try(st, b, evs, n, limit, res, &full_at, &ops_full, &last, &aseq);
        if (rc == STORE_OK) {
            __atomic_store_n(&st->last_seq, last, __ATOMIC_RELEASE);
            __atomic_store_n(&st->last_audit, aseq, __ATOMIC_RELEASE);
            break;
        }
        if (rc != STORE_EMAPFULL || limit == 0 || ops_full) {
            fill_res(res, n, rc == STORE_EMAPFULL ? STORE_RES_FULL : STORE_RES_ERROR);
            return rc;
        }
        limit = full_at < limit ? full_at : limit / 2;
    }
    if (b) store_batch_committed(st, b);
    for (size_t i = 0; i < n; i++)
        if (res[i].res == STORE_RES_FULL) return STORE_EMAPFULL;
    return STORE_OK;
}

int store_append_batch(store_t *st, const store_event_in_t *evs, size_t n, store_result_t *res)
{
    return store_commit(st, NULL, evs, n, res);
}
