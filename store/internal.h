/* store internals shared by the files of store/ (never included outside store/ and its tests).
 *
 *   store.c     open/close, error codes, read transactions, event reads
 *   record.c    event record codec, the id/resource key encodings and the dedupe lookup
 *   commit.c    the write transaction: store_commit and store_append_batch (group commit)
 *   batch.c     store_batch_t (operations collected in memory), their value codecs, and applying
 *               them inside the write transaction
 *   delivery.c  reads of the delivery state and subscriptions, subscription id allocation
 *   audit.c     the audit record codec, writing audit records and pruning (retention) inside the
 *               write transaction, and the audit reads
 *
 * The on-disk layout is described at the top of store.c. Functions declared here carry the store_
 * prefix only because they are external symbols of the static library; they are not API. */
#ifndef HENDELSE_STORE_INTERNAL_H
#define HENDELSE_STORE_INTERNAL_H

#include "store/store.h"

#include <lmdb.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_RAW_MAX 400 /* longer id/resource keys are hashed (LMDB's key limit is 511) */
#define HASHED_KEY_LEN (1 + SHA256_DIGEST_LENGTH)
#define SUBSEQ_KEY_LEN 16 /* retries/dead key: u64 BE sub_id + u64 BE seq */

struct store {
    MDB_env *env;
    MDB_dbi meta, events, ids, byres;
    MDB_dbi subs, retries, dead;
    MDB_dbi audit;
    int lock_fd;
    bool sync_none; /* opened with MDB_NOSYNC: store_close flushes */
    /* The highest sequence number committed (or reserved by the high-water mark). Updated only
     * after a successful commit, so an aborted transaction never leaves it ahead of the disk.
     * Written by store_commit and read by store_last_seq, possibly on different threads: accessed
     * with __atomic builtins. */
    uint64_t last_seq;
    /* The next subscription id store_sub_next_id hands out. Only ever grows in this process, so an
     * id is never handed out twice even if its commit failed or it was deleted again. */
    uint64_t next_sub_id;
    /* The highest audit sequence number committed (or reserved by its high-water mark). Written
     * by store_commit after a successful commit (__atomic, like last_seq). */
    uint64_t last_audit;
    /* One read transaction kept reset between calls and renewed at the start of each read: saves
     * the reader-slot setup of mdb_txn_begin. Never left active across a return. rtxn_busy guards
     * against a scan callback that starts another read (it then gets a fresh transaction). */
    MDB_txn *rtxn;
    bool rtxn_busy;
};

/* Scratch space for one event's index keys during a batch. */
typedef struct {
    unsigned char id_hash[HASHED_KEY_LEN];
    unsigned char res_hash[HASHED_KEY_LEN];
} keybuf_t;

/* Meta keys (the meta database). */
extern const MDB_val store_meta_format, store_meta_nextseq, store_meta_cursor, store_meta_nextsubid,
    store_meta_nextaudit;

/* ---- big-endian integers: no alignment assumed, bytewise key order is numeric order ---- */

static inline void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static inline void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static inline uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ---- errors and read transactions (store.c) ---- */

/* Records a detail for store_last_error. */
void store_set_err(store_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps an LMDB (or errno) code to a store code and records "what: detail". */
int store_mdb_fail(store_t *st, const char *what, int rc);
/* A short read transaction; every store_read_begin is paired with store_read_end before the
 * caller returns (no read transaction is ever held across a return to the loop). */
int store_read_begin(store_t *st, MDB_txn **txn);
void store_read_end(store_t *st, MDB_txn *txn);

/* ---- event records and keys (record.c) ---- */

/* The LMDB key of an id or resource: the raw bytes, or "#" + SHA-256. out must hold
 * HASHED_KEY_LEN bytes; the returned MDB_val may point at s or at out. */
MDB_val store_text_key(const char *s, size_t len, unsigned char *out);
/* Inside txn: the sequence number of the stored event with exactly this source and id (the
 * dedupe identity, api.md) into *seq_out. STORE_OK, STORE_ENOTFOUND, or STORE_ECORRUPT/STORE_EIO
 * with a detail. id_hash is scratch for the id's key (HASHED_KEY_LEN bytes). */
int store_find_event(store_t *st, MDB_txn *txn, const char *source, const char *id,
                     unsigned char id_hash[HASHED_KEY_LEN], uint64_t *seq_out);
/* Size of the encoded record, or 0 if a field is missing or too long. */
size_t store_record_size(const store_event_in_t *e);
/* Writes the record into p, which holds exactly store_record_size(e) bytes. */
void store_record_encode(const store_event_in_t *e, unsigned char *p);
/* Decodes a record into ev (pointers into v). STORE_ECORRUPT with a detail on any inconsistency. */
int store_record_decode(store_t *st, uint64_t seq, const MDB_val *v, store_event_t *ev);

/* ---- batch operations inside the write transaction (batch.c) ---- */

/* Applies b's operations, cursor and subscription-id high-water mark in txn. Returns 0 or a store
 * code (STORE_EMAPFULL when the map filled up); after a failure txn must be aborted. */
int store_batch_apply(store_t *st, MDB_txn *txn, const store_batch_t *b);
/* After the transaction that applied b committed: updates in-memory state (the subscription id
 * counter) and empties b. */
void store_batch_committed(store_t *st, store_batch_t *b);
/* Decodes a retry or dead-letter value (same layout): STORE_ECORRUPT on any length mismatch. */
int store_subseq_decode(store_t *st, const MDB_val *v, int64_t *when_us, uint32_t *attempts,
                        int32_t *last_status, char last_error[128]);

/* Applies b's audit records in txn, after the events of the same commit: events with sequence
 * above seq_before were appended by it. *aseq is the last audit sequence used (in: before, out:
 * after); the high-water mark is written when a record was. 0 or a store code. */
int store_batch_apply_audit(store_t *st, MDB_txn *txn, const store_batch_t *b, uint64_t seq_before,
                            uint64_t *aseq);

/* ---- audit records and pruning (audit.c) ---- */

/* Size of the encoded audit record, or 0 if a field is too long. */
size_t store_audit_size(const store_audit_t *a);
/* Writes the record into p, which holds exactly store_audit_size(a) bytes. */
void store_audit_encode(const store_audit_t *a, unsigned char *p);
/* Decodes a record into a (pointers into v). STORE_ECORRUPT on any inconsistency. */
int store_audit_decode(store_t *st, const MDB_val *v, store_audit_t *a);
/* Completes the input record enc[0..len) (an encoded store_audit_t, see store_batch_put_audit)
 * and writes it under *aseq + 1 (then incremented), or leaves it out. 0 or a store code. */
int store_audit_write(store_t *st, MDB_txn *txn, const unsigned char *enc, size_t len,
                      uint64_t seq_before, uint64_t *aseq);
/* One prune pass in txn (see store_batch_prune). 0 or a store code. */
int store_prune_apply(store_t *st, MDB_txn *txn, int64_t older_than_us, size_t max);
/* Inside the open transaction: initialises st->last_audit. */
int store_audit_load(store_t *st, MDB_txn *txn);

/* ---- delivery state (delivery.c) ---- */

/* Inside the open transaction: checks the cursor record and initialises st->next_sub_id
 * (STORE_ECORRUPT if either meta record does not decode). */
int store_delivery_load(store_t *st, MDB_txn *txn);
/* Reads a u64 meta value in txn: 0 and *out (0 when the key is absent), STORE_ECORRUPT if the
 * value is not 8 bytes, or another store code. */
int store_meta_get_u64(store_t *st, MDB_txn *txn, const MDB_val *key, uint64_t *out);

#endif
