/* store: the audit trail and retention. The audit record codec, completing and writing audit
 * records inside the write transaction (after the events of the same commit), one prune pass of
 * old events, their index entries, their dead letters and old audit records, and the audit reads.
 * Layouts: see the top of store.c. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

#define AUDIT_HDR_LEN 41 /* kind + time + sub_id + seq + attempt + status + duration */
#define AUDIT_NSTR 6     /* who, event_id, source, resource, action, error */
#define EVENT_TIME_OFF 1 /* stored_us in an event record: after the flags byte */

/* ---- the record codec ---- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void audit_strs(const store_audit_t *a, const char *out[AUDIT_NSTR])
{
    out[0] = nz(a->who);
    out[1] = nz(a->event_id);
    out[2] = nz(a->source);
    out[3] = nz(a->resource);
    out[4] = nz(a->action);
    out[5] = nz(a->error);
}

size_t store_audit_size(const store_audit_t *a)
{
    const char *s[AUDIT_NSTR];
    size_t total = AUDIT_HDR_LEN;
    audit_strs(a, s);
    for (int i = 0; i < AUDIT_NSTR; i++) {
        size_t l = strlen(s[i]);
        if (l >= UINT32_MAX) return 0;
        total += 4 + l + 1;
    }
    return total;
}

void store_audit_encode(const store_audit_t *a, unsigned char *p)
{
    const char *s[AUDIT_NSTR];
    audit_strs(a, s);
    p[0] = (unsigned char)a->kind;
    put_u64(p + 1, (uint64_t)a->time_us);
    put_u64(p + 9, a->sub_id);
    put_u64(p + 17, a->seq);
    put_u32(p + 25, a->attempt);
    put_u32(p + 29, (uint32_t)a->status);
    put_u64(p + 33, (uint64_t)a->duration_us);
    p += AUDIT_HDR_LEN;
    for (int i = 0; i < AUDIT_NSTR; i++) {
        size_t l = strlen(s[i]);
        put_u32(p, (uint32_t)l);
        memcpy(p + 4, s[i], l);
        p[4 + l] = 0;
        p += 4 + l + 1;
    }
}

int store_audit_decode(store_t *st, const MDB_val *v, store_audit_t *a)
{
    const unsigned char *rec = v->mv_data;
    size_t n = v->mv_size, pos = AUDIT_HDR_LEN;
    const char **strs[AUDIT_NSTR] = {&a->who,      &a->event_id, &a->source,
                                     &a->resource, &a->action,   &a->error};
    memset(a, 0, sizeof *a);
    if (n < AUDIT_HDR_LEN) goto bad;
    a->kind = (store_audit_kind_t)rec[0];
    if (a->kind < STORE_AUDIT_PUBLISH || a->kind > STORE_AUDIT_DELIVERY) goto bad;
    a->time_us = (int64_t)get_u64(rec + 1);
    a->sub_id = get_u64(rec + 9);
    a->seq = get_u64(rec + 17);
    a->attempt = get_u32(rec + 25);
    a->status = (int32_t)get_u32(rec + 29);
    a->duration_us = (int64_t)get_u64(rec + 33);
    for (int i = 0; i < AUDIT_NSTR; i++) {
        if (n - pos < 4) goto bad;
        size_t l = get_u32(rec + pos);
        pos += 4;
        if (l >= n - pos || rec[pos + l] != 0) goto bad; /* l bytes and the NUL must fit */
        *strs[i] = (const char *)(rec + pos);
        pos += l + 1;
    }
    if (pos != n) goto bad;
    return STORE_OK;
bad:
    store_set_err(st, "decode: audit record of %zu bytes does not decode", n);
    memset(a, 0, sizeof *a);
    return STORE_ECORRUPT;
}

/* ---- writing, inside the commit ---- */

int store_audit_write(store_t *st, MDB_txn *txn, const unsigned char *enc, size_t len,
                      uint64_t seq_before, uint64_t *aseq)
{
    MDB_val in = {len, (void *)enc};
    store_audit_t a;
    int rc = store_audit_decode(st, &in, &a);
    if (rc != 0) return rc;
    if (a.kind == STORE_AUDIT_PUBLISH) {
        unsigned char ih[HASHED_KEY_LEN];
        uint64_t seq = 0;
        rc = store_find_event(st, txn, a.source, a.event_id, ih, &seq);
        if (rc == STORE_ENOTFOUND) return STORE_OK; /* not stored (map full): nothing to record */
        if (rc != STORE_OK) return rc;
        a.seq = seq;
        a.action = a.seq > seq_before ? "stored" : "duplicate";
    } else if (a.kind == STORE_AUDIT_DELIVERY) {
        unsigned char sb[8];
        put_u64(sb, a.seq);
        MDB_val k = {sizeof sb, sb}, v;
        store_event_t ev;
        int mrc = mdb_get(txn, st->events, &k, &v);
        a.event_id = a.source = a.resource = "";
        if (mrc == 0) {
            rc = store_record_decode(st, a.seq, &v, &ev);
            if (rc != 0) return rc;
            a.event_id = ev.id;
            a.source = ev.source;
            a.resource = ev.resource;
        } else if (mrc != MDB_NOTFOUND) {
            return store_mdb_fail(st, "mdb_get(events)", mrc);
        }
    }
    /* Encoded into a heap buffer first: the strings may point into the map, which the put may
     * change under them. */
    size_t sz = store_audit_size(&a);
    if (sz == 0) {
        store_set_err(st, "audit record field too long");
        return STORE_EINVAL;
    }
    unsigned char *buf = malloc(sz);
    if (!buf) return STORE_ENOMEM;
    store_audit_encode(&a, buf);
    unsigned char kb[8];
    put_u64(kb, *aseq + 1);
    MDB_val k = {sizeof kb, kb}, v = {sz, buf};
    int mrc = mdb_put(txn, st->audit, &k, &v, MDB_APPEND);
    free(buf);
    if (mrc != 0) return store_mdb_fail(st, "mdb_put(audit)", mrc);
    (*aseq)++;
    return STORE_OK;
}

/* ---- retention ---- */

/* Deletes one event (cur is on it; seq, ev decoded) and its index entries. ev's strings are copied
 * first: they may point into pages the deletes change. */
static int prune_event(store_t *st, MDB_txn *txn, MDB_cursor *cur, uint64_t seq,
                       const store_event_t *ev)
{
    size_t li = strlen(ev->id), lr = strlen(ev->resource);
    char *buf = malloc(li + lr + 2);
    if (!buf) return STORE_ENOMEM;
    char *id = buf, *res = buf + li + 1;
    memcpy(id, ev->id, li + 1);
    memcpy(res, ev->resource, lr + 1);

    const char *what = "mdb_cursor_del(events)";
    int rc = mdb_cursor_del(cur, 0);
    unsigned char sb[8], ih[HASHED_KEY_LEN], rh[HASHED_KEY_LEN];
    put_u64(sb, seq);
    if (rc == 0) {
        MDB_val ik = store_text_key(id, li, ih), iv = {sizeof sb, sb};
        what = "mdb_del(ids)";
        rc = mdb_del(txn, st->ids, &ik, &iv);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc == 0) {
        MDB_val rk = store_text_key(res, lr, rh), rv = {sizeof sb, sb};
        what = "mdb_del(byres)";
        rc = mdb_del(txn, st->byres, &rk, &rv);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    free(buf);
    return rc ? store_mdb_fail(st, what, rc) : STORE_OK;
}

/* Deletes every dead letter whose event sequence is below boundary. One seek per subscription
 * that has dead letters, plus one per letter deleted. */
static int prune_dead(store_t *st, MDB_txn *txn, uint64_t boundary)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->dead, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open(dead)", rc);
    uint64_t sub = 0;
    for (;;) {
        unsigned char kb[SUBSEQ_KEY_LEN];
        put_u64(kb, sub);
        put_u64(kb + 8, 0);
        MDB_val k = {sizeof kb, kb}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) break;
        if (k.mv_size != SUBSEQ_KEY_LEN) {
            mdb_cursor_close(cur);
            store_set_err(st, "dead key of %zu bytes", k.mv_size);
            return STORE_ECORRUPT;
        }
        sub = get_u64(k.mv_data);
        if (get_u64((const unsigned char *)k.mv_data + 8) < boundary) {
            rc = mdb_cursor_del(cur, 0);
            if (rc != 0) break;
            continue; /* the next one of the same subscription */
        }
        if (sub == UINT64_MAX) break;
        sub++; /* this subscription keeps the rest: go on with the next one */
    }
    mdb_cursor_close(cur);
    return rc ? store_mdb_fail(st, "prune dead letters", rc) : STORE_OK;
}

static int prune_audit(store_t *st, MDB_txn *txn, int64_t older_than_us, size_t max)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->audit, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open(audit)", rc);
    for (size_t n = 0; n < max; n++) {
        MDB_val k, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0) break;
        if (v.mv_size < AUDIT_HDR_LEN) {
            mdb_cursor_close(cur);
            store_set_err(st, "audit record of %zu bytes", v.mv_size);
            return STORE_ECORRUPT;
        }
        if ((int64_t)get_u64((const unsigned char *)v.mv_data + 1) >= older_than_us) break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) break;
    }
    mdb_cursor_close(cur);
    return rc ? store_mdb_fail(st, "prune audit", rc) : STORE_OK;
}

int store_prune_apply(store_t *st, MDB_txn *txn, int64_t older_than_us, size_t max)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, st->events, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open(events)", rc);
    /* The oldest event kept bounds the dead letters to delete; none kept: every dead letter. */
    uint64_t boundary = UINT64_MAX;
    int src = STORE_OK;
    for (size_t n = 0;; n++) {
        MDB_val k, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) break;
        if (rc != 0) {
            src = store_mdb_fail(st, "mdb_cursor_get(events)", rc);
            break;
        }
        if (k.mv_size != 8) {
            store_set_err(st, "events key of %zu bytes", k.mv_size);
            src = STORE_ECORRUPT;
            break;
        }
        uint64_t seq = get_u64(k.mv_data);
        store_event_t ev;
        src = store_record_decode(st, seq, &v, &ev);
        if (src != 0) break;
        if (n >= max || ev.stored_us >= older_than_us) {
            boundary = seq;
            break;
        }
        src = prune_event(st, txn, cur, seq, &ev);
        if (src != 0) break;
    }
    mdb_cursor_close(cur);
    if (src == 0) src = prune_dead(st, txn, boundary);
    if (src == 0) src = prune_audit(st, txn, older_than_us, max);
    return src;
}

/* ---- reads ---- */

/* The time of the first record of dbi (stored at offset 1 in both events and audit records): 0
 * and *found, or a store code. */
static int first_time(store_t *st, MDB_txn *txn, MDB_dbi dbi, int64_t *t, bool *found)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open", rc);
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    mdb_cursor_close(cur);
    *found = false;
    if (rc == MDB_NOTFOUND) return STORE_OK;
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_get(MDB_FIRST)", rc);
    if (v.mv_size < 1 + 8) {
        store_set_err(st, "record of %zu bytes", v.mv_size);
        return STORE_ECORRUPT;
    }
    *t = (int64_t)get_u64((const unsigned char *)v.mv_data + EVENT_TIME_OFF);
    *found = true;
    return STORE_OK;
}

int store_prune_due(store_t *st, int64_t older_than_us)
{
    if (!st) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    int64_t t = 0;
    bool found;
    int due = 0;
    rc = first_time(st, txn, st->events, &t, &found);
    if (rc == 0 && found && t < older_than_us) due = 1;
    if (rc == 0 && !due) {
        rc = first_time(st, txn, st->audit, &t, &found);
        if (rc == 0 && found && t < older_than_us) due = 1;
    }
    store_read_end(st, txn);
    return rc ? rc : due;
}

int store_scan_audit(store_t *st, uint64_t after, size_t max_examined, store_audit_fn fn, void *ctx,
                     size_t *examined_out)
{
    size_t examined = 0;
    if (examined_out) *examined_out = 0;
    if (!st || !fn) return STORE_EINVAL;
    if (after == UINT64_MAX) return STORE_OK;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->audit, &cur);
    if (mrc != 0) {
        rc = store_mdb_fail(st, "mdb_cursor_open(audit)", mrc);
        store_read_end(st, txn);
        return rc;
    }
    unsigned char kb[8];
    put_u64(kb, after + 1);
    MDB_val k = {sizeof kb, kb}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0) {
        if (k.mv_size != 8) {
            store_set_err(st, "audit key of %zu bytes", k.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        store_audit_t a;
        rc = store_audit_decode(st, &v, &a);
        if (rc != 0) break;
        bool stop = fn(ctx, get_u64(k.mv_data), &a) != STORE_SCAN_CONTINUE;
        examined++;
        if (stop || (max_examined && examined >= max_examined)) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_mdb_fail(st, "mdb_cursor_get(audit)", mrc);
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    if (examined_out) *examined_out = examined;
    return rc;
}

uint64_t store_last_audit(const store_t *st)
{
    return st ? __atomic_load_n(&st->last_audit, __ATOMIC_ACQUIRE) : 0;
}

int store_audit_load(store_t *st, MDB_txn *txn)
{
    uint64_t next, last = 0;
    int rc = store_meta_get_u64(st, txn, &store_meta_nextaudit, &next);
    if (rc != 0) return rc;
    if (next > 0) last = next - 1;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->audit, &cur);
    if (mrc != 0) return store_mdb_fail(st, "mdb_cursor_open(audit)", mrc);
    MDB_val k, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (mrc == 0) {
        if (k.mv_size != 8) {
            store_set_err(st, "audit key of %zu bytes", k.mv_size);
            return STORE_ECORRUPT;
        }
        if (get_u64(k.mv_data) > last) last = get_u64(k.mv_data);
    } else if (mrc != MDB_NOTFOUND) {
        return store_mdb_fail(st, "mdb_cursor_get(audit, MDB_LAST)", mrc);
    }
    st->last_audit = last;
    return STORE_OK;
}
