/* store: the only owner of LMDB. One environment per data directory, opened with MDB_NOTLS, named
 * databases opened once at open, a format version, events keyed by a monotonically increasing
 * sequence number, an id index (event id -> its sequences, which also serves dedupe on
 * (source, id)), a resource index (resource -> sequences). Writes go through a batch committed in
 * one transaction with one durable sync. Never prints: every function returns an int code (0 = ok),
 * see store_strerror(). Threads: every call but the writes is made from one thread (the event
 * loop); store_commit and store_append_batch may run on one other thread (a committer) at the same
 * time as those reads, one write at a time. LMDB serves readers and one writer concurrently; the
 * little shared state (last sequence, next subscription id) is atomic and store_last_error is per
 * thread.
 */
#ifndef HENDELSE_STORE_STORE_H
#define HENDELSE_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store_t;

enum {
    STORE_OK = 0,
    STORE_ENOTFOUND = -30001, /* no such key: a normal outcome, not an error to log */
    STORE_EMAPFULL = -30002,  /* the map (--max-store-bytes) is full: HTTP 507 */
    STORE_ELOCKED = -30003,   /* another process holds the data directory */
    STORE_EVERSION = -30004,  /* the on-disk format version is not one this build reads */
    STORE_ECORRUPT = -30005,  /* a record does not decode */
    STORE_EIO = -30006,       /* an OS or LMDB error; see store_last_error() */
    STORE_ENOMEM = -30007,
    STORE_EINVAL = -30008, /* a caller error (e.g. a field too long) */
};

/* The on-disk format version this build writes and reads. Rule: bump it on any change to key or
 * value encodings; a store with another version is refused with STORE_EVERSION (no silent
 * migration). */
#define STORE_FORMAT_VERSION 4

typedef enum { STORE_SYNC_FSYNC = 0, STORE_SYNC_NONE = 1 } store_sync_t;

typedef struct {
    uint64_t map_bytes; /* LMDB map size; 0 = 16 GiB */
    store_sync_t sync;  /* FSYNC: every commit is durable before store_commit returns */
} store_opts_t;

/* Opens (creating the directory and files if missing) the store in dir. Takes an exclusive lock
 * file (dir/lock, flock) so two processes never share the directory: STORE_ELOCKED if held. On
 * success sets *out; the caller closes with store_close. */
int store_open(const char *dir, const store_opts_t *opts, store_t **out);

/* Commits nothing that is pending (an open batch is aborted), releases the lock, frees. NULL ok. */
void store_close(store_t *st);

const char *store_strerror(int code);
/* A more detailed description of the last STORE_EIO/STORE_ECORRUPT of the calling thread
 * (thread-local storage, overwritten by its next failing call). */
const char *store_last_error(const store_t *st);

/* ---- events: write batch ---- */

/* The fields of an event to append. All strings are NUL-terminated and borrowed for the call only.
 * subject and alternativesubject may be NULL. json is the canonical serialisation (json_len bytes).
 */
typedef struct {
    const char *id;
    const char *source;
    const char *type;
    const char *subject;
    const char *alternativesubject;
    const char *resource;
    const char *json;
    size_t json_len;
    int64_t stored_us; /* the server's wall clock at append, microseconds since the epoch */
} store_event_in_t;

/* Per-event outcome of a batch commit. */
typedef enum {
    STORE_RES_STORED = 0, /* new, stored with seq */
    STORE_RES_DUP = 1,    /* (source, id) already stored (also earlier in the same batch): seq is
                             the stored one's */
    STORE_RES_FULL = 2,   /* not stored: the map is full */
    STORE_RES_ERROR = 3,  /* not stored: the transaction failed (see the returned code) */
} store_res_t;

typedef struct {
    store_res_t res;
    uint64_t seq;
} store_result_t;

/* Writes n events in order in one write transaction and commits it (with one durable sync unless
 * opts.sync is NONE), filling res[i] for each. Sequence numbers are assigned consecutively to new
 * events and never reused. If the map fills up part-way, the events that fit are committed and the
 * rest get STORE_RES_FULL (the function then returns STORE_EMAPFULL after committing what fitted).
 * On any other failure nothing is committed, every res is STORE_RES_ERROR and the code is returned.
 * Returns 0 when every event is STORED or DUP. */
int store_append_batch(store_t *st, const store_event_in_t *evs, size_t n, store_result_t *res);

/* ---- events: reads ---- */

/* A stored event as seen by a scan. Pointers are valid only during the callback (they may point
 * into the memory map); strings are NUL-terminated; subject/alternativesubject NULL if absent. */
typedef struct {
    uint64_t seq;
    int64_t stored_us;
    const char *id;
    const char *source;
    const char *type;
    const char *subject;
    const char *alternativesubject;
    const char *resource;
    const char *json;
    size_t json_len;
} store_event_t;

/* Return values of a scan callback. */
enum { STORE_SCAN_CONTINUE = 0, STORE_SCAN_STOP = 1 };
typedef int (*store_scan_fn)(void *ctx, const store_event_t *ev);

/* The sequence number of the oldest stored event with this id: 0 and *seq_out set, or
 * STORE_ENOTFOUND. */
int store_seq_of_id(store_t *st, const char *id, size_t id_len, uint64_t *seq_out);

/* Calls fn for each event of the resource with seq > after_seq, in sequence order, until fn returns
 * STORE_SCAN_STOP, max_examined events have been passed to fn (0 = no limit), or the end is
 * reached. Runs in one read transaction that ends before the function returns. The cost is that of
 * the events of this resource visited (an index range scan), not of all events. If examined_out is
 * non-NULL it gets the number of events passed to fn. Returns 0 or an error code. */
int store_scan_resource(store_t *st, const char *resource, uint64_t after_seq, size_t max_examined,
                        store_scan_fn fn, void *ctx, size_t *examined_out);

/* As store_scan_resource over all events regardless of resource (used for re-matching). */
int store_scan_all(store_t *st, uint64_t after_seq, size_t max_examined, store_scan_fn fn,
                   void *ctx, size_t *examined_out);

/* The highest sequence number assigned so far (0 for an empty store). */
uint64_t store_last_seq(const store_t *st);

/* 0 if a read transaction can be opened and the format record read (used by /health). */
int store_check(store_t *st);

/* ---- delivery state and subscriptions (one write batch shared with event appends) ----
 *
 * Crash safety of deliveries rests on three records kept here: the dispatch cursor (every delivery
 * of every event at or below it is done, or recorded as a retry or a dead letter), the retry table
 * and the dead letters. The webhook engine adds cursor moves and retry records to the same batch,
 * so a cursor is never durable before the retries it depends on; after a crash the server delivers
 * every event above the cursor again and reloads the retries (duplicates possible, losses not).
 *
 * A store_batch_t collects operations in memory (each call copies its arguments); store_commit
 * applies them, in the order they were added, and then appends the events, all in one write
 * transaction with one durable sync. So the delivery cursor, retry records and subscription changes
 * become durable together with (or before) whatever depends on them. */

typedef struct store_batch store_batch_t;

/* A pending retry of one delivery (subscription, event). */
typedef struct {
    int64_t due_us;    /* when the next attempt is due (wall clock, microseconds) */
    uint32_t attempts; /* attempts made so far */
    int32_t
        last_status; /* HTTP status of the last attempt, 0 if none (connection error, timeout) */
    char last_error[128]; /* NUL-terminated; "" if none */
} store_retry_t;

/* A dead-lettered delivery. */
typedef struct {
    int64_t dead_us;
    uint32_t attempts;
    int32_t last_status;
    char last_error[128];
} store_dead_t;

/* A new empty batch (NULL on allocation failure). */
store_batch_t *store_batch_new(void);
void store_batch_free(store_batch_t *b);
/* 1 if the batch holds no operation. */
int store_batch_empty(const store_batch_t *b);
/* Drops every operation (after a successful store_commit the batch is already empty). */
void store_batch_clear(store_batch_t *b);

/* Each returns 0 or STORE_ENOMEM (then the batch is unchanged). */
/* Puts the opaque subscription record rec[0..len) under id (insert or replace). */
int store_batch_put_sub(store_batch_t *b, uint64_t id, const void *rec, size_t len);
/* Deletes subscription id, and with it its pending retries and dead letters. */
int store_batch_del_sub(store_batch_t *b, uint64_t id);
int store_batch_put_retry(store_batch_t *b, uint64_t sub_id, uint64_t seq, const store_retry_t *r);
int store_batch_del_retry(store_batch_t *b, uint64_t sub_id, uint64_t seq);
int store_batch_put_dead(store_batch_t *b, uint64_t sub_id, uint64_t seq, const store_dead_t *d);
int store_batch_del_dead(store_batch_t *b, uint64_t sub_id, uint64_t seq);
/* Sets the dispatch cursor: every delivery of every event with sequence <= seq is done or recorded
 * as a retry or a dead letter. The cursor never moves backwards (a lower value is ignored). */
int store_batch_set_cursor(store_batch_t *b, uint64_t seq);

/* Applies batch b (may be NULL or empty) and appends evs[0..n) (n may be 0) in one write
 * transaction with one durable sync (unless sync is NONE). On success b is emptied and the results
 * of the events are as for store_append_batch. If the map is full: the batch's operations are tried
 * first; if they do not fit, nothing is committed, b is left as it was (to be tried again), every
 * event gets STORE_RES_FULL and STORE_EMAPFULL is returned; if they fit, the events that fit are
 * committed with them as store_append_batch describes. On any other failure nothing is committed
 * and b is left as it was. */
int store_commit(store_t *st, store_batch_t *b, const store_event_in_t *evs, size_t n,
                 store_result_t *res);

/* Allocates the next subscription id (1, 2, ...). Ids are never reused: the high-water mark is
 * persisted by the commit that puts a subscription with that id; an id allocated but never
 * committed is simply skipped. */
uint64_t store_sub_next_id(store_t *st);

/* The dispatch cursor (0 if never set). */
int store_get_cursor(store_t *st, uint64_t *seq_out);

/* Calls fn for each stored subscription in id order; rec is valid during the call only. fn returns
 * STORE_SCAN_CONTINUE or STORE_SCAN_STOP. */
typedef int (*store_sub_fn)(void *ctx, uint64_t id, const void *rec, size_t len);
int store_scan_subs(store_t *st, store_sub_fn fn, void *ctx);
/* Gets one subscription record: fn is called once, or STORE_ENOTFOUND. */
int store_get_sub(store_t *st, uint64_t id, store_sub_fn fn, void *ctx);

/* Drops the store's memory-mapped pages from this process's resident set (madvise MADV_DONTNEED
 * on the whole map), e.g. after reading every subscription at start. Safe at any time: the map is
 * a read-only MAP_SHARED file mapping (no MDB_WRITEMAP), so its pages are clean copies of the page
 * cache; a later read faults them in again from there (no disk read while they stay cached). Data
 * and open transactions are unaffected. Linux: the map is found through /proc/self/maps. 0, or
 * STORE_EIO (store_last_error says why; the pages may then be partly released). */
int store_release_pages(store_t *st);

/* Calls fn for every pending retry (order: by subscription, then sequence). */
typedef int (*store_retry_fn)(void *ctx, uint64_t sub_id, uint64_t seq, const store_retry_t *r);
int store_scan_retries(store_t *st, store_retry_fn fn, void *ctx);

/* Calls fn for each dead letter of one subscription, in sequence order. */
typedef int (*store_dead_fn)(void *ctx, uint64_t sub_id, uint64_t seq, const store_dead_t *d);
int store_scan_dead(store_t *st, uint64_t sub_id, store_dead_fn fn, void *ctx);

/* Calls fn once with the event of sequence seq, or returns STORE_ENOTFOUND. */
int store_get_event(store_t *st, uint64_t seq, store_scan_fn fn, void *ctx);

/* ---- size ---- */

typedef struct {
    uint64_t map_bytes;  /* the map size: the most the data file may grow to (--max-store-bytes) */
    uint64_t used_bytes; /* pages up to the data file's high-water mark, in bytes (pages freed by
                            deletes and waiting for reuse included) */
} store_stat_t;

/* Fills *out (only on success). Reads the environment's last committed meta page without a
 * transaction, so it may be called on the loop thread while a commit runs on another. Returns 0,
 * STORE_EINVAL or STORE_EIO. */
int store_stat(store_t *st, store_stat_t *out);

/* ---- retention ---- */

/* Adds a prune pass to the batch; the commit applies it inside its write transaction (before the
 * batch's events are appended). It deletes, oldest first, at most max events whose stored_us is
 * below older_than_us (stopping at the first newer one), each with its index entries (its id
 * entry and its resource entry). Then every dead
 * letter of an event below the oldest event kept (those of the pruned events, and any left from
 * earlier passes); and at most max of the oldest audit records whose time_us is below
 * older_than_us. Pending retries are left to the delivery engine, which drops a retry whose event
 * is gone. Sequence numbers and audit sequence numbers stay high-water marks: never reused. An id
 * shared by two stored events (from different sources) keeps the newer one's entry when the older
 * one is pruned (a lookup of it then finds the newer event). 0, STORE_EINVAL (max 0) or
 * STORE_ENOMEM. */
int store_batch_prune(store_batch_t *b, int64_t older_than_us, size_t max);

/* 1 if a prune pass with this bound would delete an event or an audit record (the oldest of
 * either is older), 0 if not, or a negative store code. One short read: the caller uses it to
 * avoid a commit when there is nothing to prune. */
int store_prune_due(store_t *st, int64_t older_than_us);

/* ---- audit trail ----
 *
 * Audit records are numbered by their own sequence (1, 2, ..., never reused), assigned inside the
 * commit that writes them, in the order they were added to the batch; the records of one batch are
 * written after its events, so a publish record can name the event's sequence number. */

typedef enum {
    STORE_AUDIT_PUBLISH = 1, /* who, event_id, source, resource; seq and action set by the commit */
    STORE_AUDIT_SUB = 2,     /* who, sub_id, action (created, deleted, validated, ...) */
    STORE_AUDIT_DELIVERY = 3, /* sub_id, seq, attempt, status, error, duration_us; event_id,
                                 source and resource set by the commit from the stored event */
} store_audit_kind_t;

/* One audit record. As input (store_batch_put_audit) strings are borrowed for the call and NULL
 * means ""; as output (store_scan_audit) they point into the map, valid during the callback only,
 * NUL-terminated, never NULL. */
typedef struct {
    store_audit_kind_t kind;
    int64_t time_us;     /* when it happened (the caller's clock) */
    uint64_t sub_id;     /* SUB, DELIVERY; else 0 */
    uint64_t seq;        /* PUBLISH, DELIVERY: the event's sequence number; else 0 */
    uint32_t attempt;    /* DELIVERY: 1 for the first attempt */
    int32_t status;      /* DELIVERY: the HTTP status, 0 when there was none */
    int64_t duration_us; /* DELIVERY: how long the attempt took */
    const char *who;     /* PUBLISH, SUB: the consumer that acted; "" for the server itself */
    const char *event_id;
    const char *source;
    const char *resource;
    const char *action; /* SUB: what happened; PUBLISH: "stored" or "duplicate" */
    const char *error;  /* DELIVERY: why it failed; "" on success */
} store_audit_t;

/* Adds an audit record to the batch (copied). The commit completes it: a PUBLISH record gets the
 * sequence number of the stored event with (source, event_id) and action "stored" when that event
 * was appended by the same commit, else "duplicate" (input seq and action are ignored); when no
 * such event is stored (it did not fit), the record is left out. A DELIVERY record gets event_id,
 * source and resource of the stored event seq ("" once that event is gone; input values are
 * ignored). 0, STORE_EINVAL (unknown kind) or STORE_ENOMEM. */
int store_batch_put_audit(store_batch_t *b, const store_audit_t *a);

/* Calls fn for each audit record with audit sequence > after, in order, until fn returns
 * STORE_SCAN_STOP, max_examined records were passed (0 = no limit) or the end. examined_out (may
 * be NULL) gets the number passed. One read transaction, ended before returning. */
typedef int (*store_audit_fn)(void *ctx, uint64_t aseq, const store_audit_t *a);
int store_scan_audit(store_t *st, uint64_t after, size_t max_examined, store_audit_fn fn, void *ctx,
                     size_t *examined_out);

/* The highest audit sequence number assigned so far (0 for none). */
uint64_t store_last_audit(const store_t *st);

#endif
