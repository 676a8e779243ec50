/* store: the event record codec, the key encodings of the id and resource indexes, and the dedupe
 * lookup through the id index.
 * The layouts are described at the top of store.c. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

#define REC_FLAG_SUBJECT 0x01u
#define REC_FLAG_ALTSUBJECT 0x02u
#define REC_FLAGS_KNOWN (REC_FLAG_SUBJECT | REC_FLAG_ALTSUBJECT)
#define REC_HEADER_LEN 9 /* flags + stored_us */

/* The LMDB key of an id or resource: the raw bytes, or "#" + SHA-256 (see the top of store.c). out
 * must hold HASHED_KEY_LEN bytes; the returned MDB_val may point at s or at out. */
MDB_val store_text_key(const char *s, size_t len, unsigned char *out)
{
    MDB_val k;
    if (len == 0 || len > KEY_RAW_MAX || s[0] == '#') {
        out[0] = '#';
        SHA256((const unsigned char *)s, len, out + 1);
        k.mv_data = out;
        k.mv_size = HASHED_KEY_LEN;
    } else {
        k.mv_data = (void *)s;
        k.mv_size = len;
    }
    return k;
}

/* The dedupe lookup: the ids index lists every stored event with an id (dups sorted by sequence),
 * so (source, id) is found by reading the source of each; there is almost always none or one. */
int store_find_event(store_t *st, MDB_txn *txn, const char *source, const char *id,
                     unsigned char id_hash[HASHED_KEY_LEN], uint64_t *seq_out)
{
    MDB_val k = store_text_key(id, strlen(id), id_hash), v;
    int rc = mdb_get(txn, st->ids, &k, &v);
    if (rc == MDB_NOTFOUND) return STORE_ENOTFOUND;
    if (rc != 0) return store_mdb_fail(st, "mdb_get(ids)", rc);
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, st->ids, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open(ids)", rc);
    int out = STORE_ENOTFOUND;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP)) {
        if (v.mv_size != 8) {
            store_set_err(st, "ids value of %zu bytes", v.mv_size);
            out = STORE_ECORRUPT;
            break;
        }
        uint64_t seq = get_u64(v.mv_data);
        unsigned char sb[8];
        put_u64(sb, seq);
        MDB_val ek = {sizeof sb, sb}, ev;
        int erc = mdb_get(txn, st->events, &ek, &ev);
        if (erc != 0) {
            out = erc == MDB_NOTFOUND ? STORE_ECORRUPT : store_mdb_fail(st, "mdb_get(events)", erc);
            if (erc == MDB_NOTFOUND)
                store_set_err(st, "ids entry for event %llu, which is not stored",
                              (unsigned long long)seq);
            break;
        }
        store_event_t e;
        out = store_record_decode(st, seq, &ev, &e);
        if (out != STORE_OK) break;
        if (strcmp(e.source, source) == 0 && strcmp(e.id, id) == 0) {
            *seq_out = seq;
            break;
        }
        out = STORE_ENOTFOUND;
    }
    if (rc != 0 && rc != MDB_NOTFOUND && out == STORE_ENOTFOUND)
        out = store_mdb_fail(st, "mdb_cursor_get(ids)", rc);
    mdb_cursor_close(cur);
    return out;
}

/* ---- record encoding ---- */

static bool field_len_ok(size_t len)
{
    /* u32 length prefix; keep one spare so len + NUL never wraps in 32 bits either. */
    return len < UINT32_MAX;
}

/* Size of the encoded record, or 0 if a field is missing or too long. */
size_t store_record_size(const store_event_in_t *e)
{
    const char *strs[] = {e->id,      e->source, e->type, e->subject, e->alternativesubject,
                          e->resource};
    size_t total = REC_HEADER_LEN;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (!strs[i]) continue;
        size_t l = strlen(strs[i]);
        if (!field_len_ok(l)) return 0;
        total += 4 + l + 1;
    }
    if (!field_len_ok(e->json_len)) return 0;
    total += 4 + e->json_len + 1;
    return total;
}

static unsigned char *write_field(unsigned char *p, const char *s, size_t len)
{
    put_u32(p, (uint32_t)len);
    memcpy(p + 4, s, len);
    p[4 + len] = 0;
    return p + 4 + len + 1;
}

/* Writes the record into p, which holds exactly store_record_size(e) bytes. */
void store_record_encode(const store_event_in_t *e, unsigned char *p)
{
    unsigned flags =
        (e->subject ? REC_FLAG_SUBJECT : 0) | (e->alternativesubject ? REC_FLAG_ALTSUBJECT : 0);
    p[0] = (unsigned char)flags;
    put_u64(p + 1, (uint64_t)e->stored_us);
    p += REC_HEADER_LEN;
    p = write_field(p, e->id, strlen(e->id));
    p = write_field(p, e->source, strlen(e->source));
    p = write_field(p, e->type, strlen(e->type));
    if (e->subject) p = write_field(p, e->subject, strlen(e->subject));
    if (e->alternativesubject)
        p = write_field(p, e->alternativesubject, strlen(e->alternativesubject));
    p = write_field(p, e->resource, strlen(e->resource));
    write_field(p, e->json ? e->json : "", e->json_len);
}

/* Reads one length-prefixed field at *pos of a record of size n. Every length is checked against
 * what is left before anything is read, and the terminating NUL must be there. */
static bool read_field(const unsigned char *rec, size_t n, size_t *pos, const char **s, size_t *len)
{
    if (n - *pos < 4) return false;
    size_t l = get_u32(rec + *pos);
    *pos += 4;
    if (l >= n - *pos) return false; /* room for l bytes and the NUL; written so nothing wraps */
    if (rec[*pos + l] != 0) return false;
    *s = (const char *)(rec + *pos);
    *len = l;
    *pos += l + 1;
    return true;
}

/* Decodes a record into ev (pointers into rec). STORE_ECORRUPT with a detail on any inconsistency.
 */
int store_record_decode(store_t *st, uint64_t seq, const MDB_val *v, store_event_t *ev)
{
    const unsigned char *rec = v->mv_data;
    size_t n = v->mv_size, pos = REC_HEADER_LEN, len;
    const char *what = "short header";
    memset(ev, 0, sizeof *ev);
    ev->seq = seq;
    if (n < REC_HEADER_LEN) goto bad;
    unsigned flags = rec[0];
    what = "unknown flags";
    if (flags & ~REC_FLAGS_KNOWN) goto bad;
    ev->stored_us = (int64_t)get_u64(rec + 1);
    what = "truncated field";
    if (!read_field(rec, n, &pos, &ev->id, &len)) goto bad;
    if (!read_field(rec, n, &pos, &ev->source, &len)) goto bad;
    if (!read_field(rec, n, &pos, &ev->type, &len)) goto bad;
    if ((flags & REC_FLAG_SUBJECT) && !read_field(rec, n, &pos, &ev->subject, &len)) goto bad;
    if ((flags & REC_FLAG_ALTSUBJECT) && !read_field(rec, n, &pos, &ev->alternativesubject, &len))
        goto bad;
    if (!read_field(rec, n, &pos, &ev->resource, &len)) goto bad;
    if (!read_field(rec, n, &pos, &ev->json, &ev->json_len)) goto bad;
    what = "trailing bytes";
    if (pos != n) goto bad;
    return STORE_OK;
bad:
    store_set_err(st, "decode: event record at seq %llu: %s", (unsigned long long)seq, what);
    memset(ev, 0, sizeof *ev);
    return STORE_ECORRUPT;
}
