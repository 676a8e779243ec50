/* store: store_batch_t, the delivery-state and subscription operations collected in memory for the
 * next store_commit, the codec of retry and dead-letter records, and applying a batch inside the
 * write transaction. Layouts: see the top of store.c. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

#define SUBSEQ_HDR_LEN 18  /* i64 when + u32 attempts + i32 status + u16 error length */
#define LAST_ERROR_MAX 127 /* bytes of last_error kept: store_retry_t.last_error minus its NUL */

typedef enum {
    OP_PUT_SUB,
    OP_DEL_SUB,
    OP_PUT_RETRY,
    OP_DEL_RETRY,
    OP_PUT_DEAD,
    OP_DEL_DEAD,
    OP_PUT_AUDIT, /* val: the encoded input record; applied after the events */
    OP_PRUNE,     /* seq: older_than_us (as u64), id: max */
} op_kind_t;

typedef struct {
    op_kind_t kind;
    uint64_t id;        /* subscription id */
    uint64_t seq;       /* event sequence (retry and dead-letter operations) */
    unsigned char *val; /* owned: the encoded value of a put, NULL for a delete */
    size_t val_len;
} op_t;

struct store_batch {
    op_t *ops;
    size_t n, cap;
    /* The cursor is not an operation in the list: only the highest value asked for matters, and
     * the commit compares it with the stored one, so it never moves backwards. */
    bool has_cursor;
    uint64_t cursor;
};

/* ---- retry / dead-letter records ---- */

/* Encodes into p (SUBSEQ_HDR_LEN + LAST_ERROR_MAX bytes); returns the length. last_error is read
 * only up to its first NUL or LAST_ERROR_MAX bytes, so an unterminated array is still safe. */
static size_t subseq_encode(unsigned char *p, int64_t when_us, uint32_t attempts,
                            int32_t last_status, const char *last_error)
{
    size_t len = strnlen(last_error, LAST_ERROR_MAX);
    put_u64(p, (uint64_t)when_us);
    put_u32(p + 8, attempts);
    put_u32(p + 12, (uint32_t)last_status);
    put_u16(p + 16, (uint16_t)len);
    memcpy(p + SUBSEQ_HDR_LEN, last_error, len);
    return SUBSEQ_HDR_LEN + len;
}

int store_subseq_decode(store_t *st, const MDB_val *v, int64_t *when_us, uint32_t *attempts,
                        int32_t *last_status, char last_error[128])
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < SUBSEQ_HDR_LEN) {
        store_set_err(st, "retry/dead record of %zu bytes, shorter than its header", v->mv_size);
        return STORE_ECORRUPT;
    }
    size_t len = get_u16(p + 16);
    if (len > LAST_ERROR_MAX || v->mv_size != SUBSEQ_HDR_LEN + len) {
        store_set_err(st, "retry/dead record of %zu bytes with an error text of %zu", v->mv_size,
                      len);
        return STORE_ECORRUPT;
    }
    *when_us = (int64_t)get_u64(p);
    *attempts = get_u32(p + 8);
    *last_status = (int32_t)get_u32(p + 12);
    memcpy(last_error, p + SUBSEQ_HDR_LEN, len);
    last_error[len] = 0;
    return STORE_OK;
}

/* ---- the batch object ---- */

store_batch_t *store_batch_new(void)
{
    return calloc(1, sizeof(store_batch_t));
}

void store_batch_clear(store_batch_t *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++)
        free(b->ops[i].val);
    b->n = 0; /* the array is kept for the next batch */
    b->has_cursor = false;
    b->cursor = 0;
}

void store_batch_free(store_batch_t *b)
{
    if (!b) return;
    store_batch_clear(b);
    free(b->ops);
    free(b);
}

int store_batch_empty(const store_batch_t *b)
{
    return !b || (b->n == 0 && !b->has_cursor);
}

/* Appends one operation. val (owned, may be NULL for a delete) passes to the batch on success; on
 * STORE_ENOMEM it is freed and the batch is as it was. */
static int add_op(store_batch_t *b, op_kind_t kind, uint64_t id, uint64_t seq, unsigned char *val,
                  size_t val_len)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        op_t *ops = cap <= SIZE_MAX / sizeof *ops ? realloc(b->ops, cap * sizeof *ops) : NULL;
        if (!ops) {
            free(val);
            return STORE_ENOMEM;
        }
        b->ops = ops;
        b->cap = cap;
    }
    b->ops[b->n++] = (op_t){.kind = kind, .id = id, .seq = seq, .val = val, .val_len = val_len};
    return STORE_OK;
}

/* A heap copy of len bytes; never NULL for len 0 (so that LMDB is never handed a NULL value). */
static unsigned char *copy_bytes(const void *p, size_t len)
{
    unsigned char *c = malloc(len ? len : 1);
    if (c && len) memcpy(c, p, len);
    return c;
}

int store_batch_put_sub(store_batch_t *b, uint64_t id, const void *rec, size_t len)
{
    if (!b || (!rec && len)) return STORE_EINVAL;
    unsigned char *val = copy_bytes(rec, len);
    if (!val) return STORE_ENOMEM;
    return add_op(b, OP_PUT_SUB, id, 0, val, len);
}

int store_batch_del_sub(store_batch_t *b, uint64_t id)
{
    if (!b) return STORE_EINVAL;
    return add_op(b, OP_DEL_SUB, id, 0, NULL, 0);
}

static int put_subseq(store_batch_t *b, op_kind_t kind, uint64_t sub_id, uint64_t seq,
                      int64_t when_us, uint32_t attempts, int32_t last_status,
                      const char *last_error)
{
    unsigned char buf[SUBSEQ_HDR_LEN + LAST_ERROR_MAX];
    size_t len = subseq_encode(buf, when_us, attempts, last_status, last_error);
    unsigned char *val = copy_bytes(buf, len);
    if (!val) return STORE_ENOMEM;
    return add_op(b, kind, sub_id, seq, val, len);
}

int store_batch_put_retry(store_batch_t *b, uint64_t sub_id, uint64_t seq, const store_retry_t *r)
{
    if (!b || !r) return STORE_EINVAL;
    return put_subseq(b, OP_PUT_RETRY, sub_id, seq, r->due_us, r->attempts, r->last_status,
                      r->last_error);
}

int store_batch_del_retry(store_batch_t *b, uint64_t sub_id, uint64_t seq)
{
    if (!b) return STORE_EINVAL;
    return add_op(b, OP_DEL_RETRY, sub_id, seq, NULL, 0);
}

int store_batch_put_dead(store_batch_t *b, uint64_t sub_id, uint64_t seq, const store_dead_t *d)
{
    if (!b || !d) return STORE_EINVAL;
    return put_subseq(b, OP_PUT_DEAD, sub_id, seq, d->dead_us, d->attempts, d->last_status,
                      d->last_error);
}

int store_batch_del_dead(store_batch_t *b, uint64_t sub_id, uint64_t seq)
{
    if (!b) return STORE_EINVAL;
    return add_op(b, OP_DEL_DEAD, sub_id, seq, NULL, 0);
}

int store_batch_put_audit(store_batch_t *b, const store_audit_t *a)
{
    if (!b || !a || a->kind < STORE_AUDIT_PUBLISH || a->kind > STORE_AUDIT_DELIVERY)
        return STORE_EINVAL;
    size_t len = store_audit_size(a);
    if (len == 0) return STORE_EINVAL;
    unsigned char *val = malloc(len);
    if (!val) return STORE_ENOMEM;
    store_audit_encode(a, val);
    return add_op(b, OP_PUT_AUDIT, 0, 0, val, len);
}

int store_batch_prune(store_batch_t *b, int64_t older_than_us, size_t max)
{
    if (!b || max == 0) return STORE_EINVAL;
    return add_op(b, OP_PRUNE, (uint64_t)max, (uint64_t)older_than_us, NULL, 0);
}

int store_batch_set_cursor(store_batch_t *b, uint64_t seq)
{
    if (!b) return STORE_EINVAL;
    if (!b->has_cursor || seq > b->cursor) b->cursor = seq;
    b->has_cursor = true;
    return STORE_OK;
}

/* ---- applying a batch in the write transaction ---- */

/* Deletes one key; a missing key is not an error (deleting twice, or something never stored, is
 * what a retry of the caller's bookkeeping may well do). Returns an LMDB code. */
static int del_key(MDB_txn *txn, MDB_dbi dbi, MDB_val *k)
{
    int rc = mdb_del(txn, dbi, k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Deletes every key of dbi that begins with the 8-byte prefix of sub_id. Re-seeks after each
 * delete instead of relying on where mdb_cursor_del leaves the cursor: each step is a plain
 * MDB_SET_RANGE, whose meaning does not depend on page boundaries. Returns an LMDB code. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, uint64_t sub_id)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) return rc;
    unsigned char pfx[8];
    put_u64(pfx, sub_id);
    for (;;) {
        MDB_val k = {sizeof pfx, pfx}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) break;
        if (k.mv_size < sizeof pfx || memcmp(k.mv_data, pfx, sizeof pfx) != 0) break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) break;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Writes meta key := v if v is larger than the stored value (absent = 0): the cursor and the
 * subscription-id high-water mark only ever grow. */
static int meta_raise(store_t *st, MDB_txn *txn, const MDB_val *key, uint64_t v, const char *what)
{
    uint64_t cur;
    int rc = store_meta_get_u64(st, txn, key, &cur);
    if (rc != 0 || v <= cur) return rc;
    unsigned char b8[8];
    put_u64(b8, v);
    MDB_val k = *key, val = {sizeof b8, b8};
    int mrc = mdb_put(txn, st->meta, &k, &val, 0);
    return mrc ? store_mdb_fail(st, what, mrc) : STORE_OK;
}

int store_batch_apply(store_t *st, MDB_txn *txn, const store_batch_t *b)
{
    bool any_put = false;
    uint64_t max_put = 0;
    for (size_t i = 0; i < b->n; i++) {
        const op_t *op = &b->ops[i];
        unsigned char kb[SUBSEQ_KEY_LEN];
        put_u64(kb, op->id);
        put_u64(kb + 8, op->seq);
        MDB_val k = {SUBSEQ_KEY_LEN, kb}, v = {op->val_len, op->val};
        const char *what = "";
        int rc = 0;
        switch (op->kind) {
        case OP_PUT_SUB:
            k.mv_size = 8;
            what = "mdb_put(subs)";
            rc = mdb_put(txn, st->subs, &k, &v, 0);
            if (!any_put || op->id > max_put) max_put = op->id;
            any_put = true;
            break;
        case OP_DEL_SUB:
            k.mv_size = 8;
            what = "mdb_del(subs)";
            rc = del_key(txn, st->subs, &k);
            if (rc != 0) break;
            what = "delete the retries of a subscription";
            rc = del_prefix(txn, st->retries, op->id);
            if (rc != 0) break;
            what = "delete the dead letters of a subscription";
            rc = del_prefix(txn, st->dead, op->id);
            break;
        case OP_PUT_RETRY:
            what = "mdb_put(retries)";
            rc = mdb_put(txn, st->retries, &k, &v, 0);
            break;
        case OP_DEL_RETRY:
            what = "mdb_del(retries)";
            rc = del_key(txn, st->retries, &k);
            break;
        case OP_PUT_DEAD:
            what = "mdb_put(dead)";
            rc = mdb_put(txn, st->dead, &k, &v, 0);
            break;
        case OP_DEL_DEAD:
            what = "mdb_del(dead)";
            rc = del_key(txn, st->dead, &k);
            break;
        case OP_PUT_AUDIT: /* after the events: store_batch_apply_audit */
            break;
        case OP_PRUNE: {
            int src = store_prune_apply(st, txn, (int64_t)op->seq, (size_t)op->id);
            if (src != 0) return src;
            break;
        }
        }
        if (rc != 0) return store_mdb_fail(st, what, rc);
    }
    int rc = STORE_OK;
    if (b->has_cursor)
        rc = meta_raise(st, txn, &store_meta_cursor, b->cursor, "mdb_put(meta cursor)");
    /* The high-water mark is max put id + 1 (saturating: an id of UINT64_MAX leaves no next). */
    if (rc == 0 && any_put)
        rc =
            meta_raise(st, txn, &store_meta_nextsubid,
                       max_put == UINT64_MAX ? UINT64_MAX : max_put + 1, "mdb_put(meta nextsubid)");
    return rc;
}

int store_batch_apply_audit(store_t *st, MDB_txn *txn, const store_batch_t *b, uint64_t seq_before,
                            uint64_t *aseq)
{
    uint64_t before = *aseq;
    for (size_t i = 0; i < b->n; i++) {
        const op_t *op = &b->ops[i];
        if (op->kind != OP_PUT_AUDIT) continue;
        int rc = store_audit_write(st, txn, op->val, op->val_len, seq_before, aseq);
        if (rc != 0) return rc;
    }
    if (*aseq == before) return STORE_OK;
    unsigned char b8[8];
    put_u64(b8, *aseq + 1);
    MDB_val k = store_meta_nextaudit, v = {sizeof b8, b8};
    int mrc = mdb_put(txn, st->meta, &k, &v, 0);
    return mrc ? store_mdb_fail(st, "mdb_put(meta nextaudit)", mrc) : STORE_OK;
}

void store_batch_committed(store_t *st, store_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const op_t *op = &b->ops[i];
        /* A caller that puts an id it did not get from store_sub_next_id still never sees it
         * handed out later. */
        if (op->kind != OP_PUT_SUB || op->id == UINT64_MAX) continue;
        uint64_t cur = __atomic_load_n(&st->next_sub_id, __ATOMIC_ACQUIRE);
        while (cur != 0 && op->id >= cur &&
               !__atomic_compare_exchange_n(&st->next_sub_id, &cur, op->id + 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
            ;
    }
    store_batch_clear(b);
}
