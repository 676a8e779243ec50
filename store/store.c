/* store: the LMDB event store. See store.h for the contract of every public function, and
 * internal.h for how store/ is split into files.
 *
 * Layout on disk (everything in dir/): `lock` (our flock, so two servers never share the
 * directory), `data.mdb` and `lock.mdb` (LMDB's own files). Named databases, all opened once in
 * store_open. All integers are big-endian, so LMDB's bytewise key order is numeric order, and no
 * alignment is assumed anywhere.
 *
 *   meta     "format"    -> u32, STORE_FORMAT_VERSION
 *            "nextseq"   -> u64, the next sequence number to assign (a high-water mark, so sequence
 *                           numbers are never reused even once old events can be deleted)
 *            "cursor"    -> u64, the dispatch cursor (absent = 0); only ever written larger
 *            "nextsubid" -> u64, the next subscription id (a high-water mark: max put id + 1, so
 *                           deleting the newest subscription never frees its id)
 *            "nextaudit" -> u64, the next audit sequence number (a high-water mark: pruning every
 *                           audit record never lets a number be used twice)
 *   events   u64 seq -> event record (below)
 *   ids      id key -> u64 seq, MDB_DUPSORT|MDB_DUPFIXED: every stored event with that id, sorted
 *            by sequence (the first dup is the oldest). It is also the dedupe index: an event with
 *            the same (source, id) is found by reading the source of each dup (store_find_event).
 *            Keys in id order, not hashed, so that producers whose ids grow (counters, time-based
 *            ids) add to the same few pages batch after batch (each page a commit dirties is a
 *            random write to sync).
 *   byres    resource key -> u64 seq, MDB_DUPSORT|MDB_DUPFIXED: the dups of one resource sort by
 *            sequence, so a resource scan is an index range scan
 *   subs     u64 subscription id -> the caller's opaque subscription record (any length, also 0)
 *   retries  u64 sub_id, u64 seq (16 bytes) -> retry record (below); the sub_id prefix keeps one
 *            subscription's entries together, so deleting a subscription is a range delete
 *   dead     u64 sub_id, u64 seq (16 bytes) -> dead-letter record (below)
 *   audit    u64 audit sequence -> audit record (below), written in order (MDB_APPEND)
 *
 * Id and resource keys: the raw bytes, except that a value that is empty, longer than KEY_RAW_MAX
 * bytes or begins with '#' is stored as "#" followed by its SHA-256. LMDB keys are at most 511
 * bytes and may not be empty; hashing every value that begins with '#' keeps the mapping one-to-one
 * (a raw key never begins with '#').
 *
 * Event record:
 *
 *   u8   flags      bit 0: subject present, bit 1: alternativesubject present; other bits must be 0
 *   i64  stored_us
 *   then for id, source, type, [subject], [alternativesubject], resource, json, in that order
 *   (subject and alternativesubject only when their flag is set): u32 len, then len bytes, then
 *   one NUL byte (so that a decoded field can be handed out as a NUL-terminated string pointing
 *   into the map, with no copy)
 *
 * The record must end exactly after the last field.
 *
 * Retry record and dead-letter record (the same fixed layout, 18 to 145 bytes):
 *
 *   i64  due_us (retry) or dead_us (dead letter)
 *   u32  attempts
 *   i32  last_status (two's complement)
 *   u16  len of last_error, at most 127
 *   len bytes of last_error, no NUL (one is added on decode)
 *
 * The record must be exactly 18 + len bytes.
 *
 * Audit record (store_audit_t; 41 bytes of header, then six strings):
 *
 *   u8   kind       1 publish, 2 subscription change, 3 delivery attempt
 *   i64  time_us    when it happened
 *   u64  sub_id     subscription (0 for a publish)
 *   u64  seq        the event's sequence number (0 for a subscription change)
 *   u32  attempt    delivery attempt number, 1 for the first (else 0)
 *   i32  status     HTTP status of a delivery attempt, 0 if none (else 0)
 *   i64  duration_us  of a delivery attempt (else 0)
 *   then who, event_id, source, resource, action, error in that order, each as u32 len, len
 *   bytes, one NUL byte (as in the event record); an absent one is empty
 *
 * The record must end exactly after the last string. Both event and audit records keep their time
 * at byte offset 1, which a prune pass and store_prune_due read without decoding the rest.
 *
 * Version rule: any change to this layout, to a key encoding, to a value encoding or to the set of
 * databases above bumps STORE_FORMAT_VERSION; an older or newer store is refused with
 * STORE_EVERSION, never migrated silently. Version 1 had no subs/retries/dead databases and no
 * cursor/nextsubid meta keys; version 2 had no audit database and no nextaudit meta key; version 3
 * had ids keeping only the oldest event of an id, plus a dedupe database keyed by SHA-256(source
 * "\0" id). */
#include "store/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAP_BYTES (16ULL << 30)
#define MAX_DBS 16 /* the nine above plus room to grow without touching the environment setup */

/* ---- errors ---- */

/* The detail of the last failure is kept per thread: store_commit may run on a committer thread
 * while the event loop reads, and neither may clobber the other's message. */
static _Thread_local char last_err[256];

void store_set_err(store_t *st, const char *fmt, ...)
{
    va_list ap;
    (void)st;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
}

/* Maps an LMDB (or errno) code to a store code and records "what: detail" for store_last_error. */
int store_mdb_fail(store_t *st, const char *what, int rc)
{
    store_set_err(st, "%s: %s", what, mdb_strerror(rc));
    switch (rc) {
    case MDB_MAP_FULL:
        return STORE_EMAPFULL;
    case ENOMEM:
        return STORE_ENOMEM;
    case MDB_VERSION_MISMATCH:
        return STORE_EVERSION;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return STORE_ECORRUPT;
    default:
        return STORE_EIO;
    }
}

/* ---- read transactions ---- */

/* Starts a read transaction: the cached one (renewed) if it is free, else a fresh one (only when a
 * scan callback reads again while the outer scan holds the cached one). */
int store_read_begin(store_t *st, MDB_txn **txn)
{
    int rc;
    if (!st->rtxn_busy) {
        if (st->rtxn) {
            rc = mdb_txn_renew(st->rtxn);
            if (rc == 0) {
                st->rtxn_busy = true;
                *txn = st->rtxn;
                return STORE_OK;
            }
            /* A renew failure leaves the handle unusable: drop it and begin afresh. */
            mdb_txn_abort(st->rtxn);
            st->rtxn = NULL;
        }
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
        if (rc != 0) {
            st->rtxn = NULL;
            return store_mdb_fail(st, "mdb_txn_begin(read)", rc);
        }
        st->rtxn_busy = true;
        *txn = st->rtxn;
        return STORE_OK;
    }
    rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    if (rc != 0) return store_mdb_fail(st, "mdb_txn_begin(read)", rc);
    return STORE_OK;
}

/* Ends a read transaction before the caller returns: the cached one is reset (it releases its
 * snapshot, so it pins no pages while the loop runs), any other is aborted. */
void store_read_end(store_t *st, MDB_txn *txn)
{
    if (txn == st->rtxn) {
        mdb_txn_reset(txn);
        st->rtxn_busy = false;
    } else {
        mdb_txn_abort(txn);
    }
}

/* ---- open / close ---- */

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -1;
}

/* Creates dir, and its parent if that is missing too (one level of mkdir -p). */
static int make_dir(const char *dir)
{
    if (mkdir_one(dir) == 0) return 0;
    if (errno != ENOENT) return -1;
    char *parent = strdup(dir);
    if (!parent) return -1;
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = 0; /* "a/b/" -> "a/b" */
    char *slash = strrchr(parent, '/');
    int rc = -1;
    if (slash && slash != parent) {
        *slash = 0;
        rc = mkdir_one(parent);
    }
    free(parent);
    if (rc != 0) return -1;
    return mkdir_one(dir);
}

static int take_lock(store_t *st, const char *dir)
{
    size_t len = strlen(dir) + sizeof "/lock";
    char *path = malloc(len);
    if (!path) return STORE_ENOMEM;
    snprintf(path, len, "%s/lock", dir);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        store_set_err(st, "open %s: %s", path, strerror(errno));
        free(path);
        return STORE_EIO;
    }
    /* flock locks belong to the open file description: another store_open, even in this process,
     * opens its own description and is refused. */
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        store_set_err(st, "flock %s: %s", path, strerror(e));
        free(path);
        return e == EWOULDBLOCK ? STORE_ELOCKED : STORE_EIO;
    }
    free(path);
    return STORE_OK;
}

static int open_dbi(store_t *st, MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
    int rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, dbi);
    if (rc == 0) return STORE_OK;
    char what[64];
    snprintf(what, sizeof what, "mdb_dbi_open(%s)", name);
    /* An existing database with other flags is a layout this build does not read. */
    if (rc == MDB_INCOMPATIBLE) {
        store_set_err(st, "%s: %s", what, mdb_strerror(rc));
        return STORE_EVERSION;
    }
    return store_mdb_fail(st, what, rc);
}

const MDB_val store_meta_format = {sizeof "format" - 1, (void *)"format"};
const MDB_val store_meta_nextseq = {sizeof "nextseq" - 1, (void *)"nextseq"};
const MDB_val store_meta_cursor = {sizeof "cursor" - 1, (void *)"cursor"};
const MDB_val store_meta_nextsubid = {sizeof "nextsubid" - 1, (void *)"nextsubid"};
const MDB_val store_meta_nextaudit = {sizeof "nextaudit" - 1, (void *)"nextaudit"};

/* Inside the open transaction, before the databases whose layout depends on it are opened: checks
 * (or, for a new store, writes) the format version. */
static int check_format(store_t *st, MDB_txn *txn)
{
    MDB_val k = store_meta_format, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4) {
            store_set_err(st, "format record has %zu bytes, expected 4", v.mv_size);
            return STORE_EVERSION;
        }
        uint32_t ver = get_u32(v.mv_data);
        if (ver != STORE_FORMAT_VERSION) {
            store_set_err(st, "on-disk format version %u, this build reads %u", ver,
                          (unsigned)STORE_FORMAT_VERSION);
            return STORE_EVERSION;
        }
    } else if (rc == MDB_NOTFOUND) {
        MDB_stat ms;
        rc = mdb_stat(txn, st->events, &ms);
        if (rc != 0) return store_mdb_fail(st, "mdb_stat(events)", rc);
        if (ms.ms_entries != 0) {
            store_set_err(st, "events present but no format record");
            return STORE_ECORRUPT;
        }
        unsigned char buf[4];
        put_u32(buf, STORE_FORMAT_VERSION);
        v.mv_size = sizeof buf;
        v.mv_data = buf;
        rc = mdb_put(txn, st->meta, &k, &v, 0);
        if (rc != 0) return store_mdb_fail(st, "mdb_put(meta format)", rc);
    } else {
        return store_mdb_fail(st, "mdb_get(meta format)", rc);
    }
    return STORE_OK;
}

/* Inside the open transaction: reads the last sequence number and loads the subscription id
 * counter and the delivery and audit state. */
static int init_contents(store_t *st, MDB_txn *txn)
{
    MDB_val k, v;
    int rc;
    /* last_seq = max(highest event key, nextseq - 1): the high-water mark covers events that were
     * stored and later deleted. */
    uint64_t last = 0;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, st->events, &cur);
    if (rc != 0) return store_mdb_fail(st, "mdb_cursor_open(events)", rc);
    MDB_val ck, cv;
    rc = mdb_cursor_get(cur, &ck, &cv, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == 0) {
        if (ck.mv_size != 8) {
            store_set_err(st, "events key of %zu bytes", ck.mv_size);
            return STORE_ECORRUPT;
        }
        last = get_u64(ck.mv_data);
    } else if (rc != MDB_NOTFOUND) {
        return store_mdb_fail(st, "mdb_cursor_get(events, MDB_LAST)", rc);
    }
    k = store_meta_nextseq;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8) {
            store_set_err(st, "nextseq record has %zu bytes", v.mv_size);
            return STORE_ECORRUPT;
        }
        uint64_t next = get_u64(v.mv_data);
        if (next > 0 && next - 1 > last) last = next - 1;
    } else if (rc != MDB_NOTFOUND) {
        return store_mdb_fail(st, "mdb_get(meta nextseq)", rc);
    }
    st->last_seq = last;
    int drc = store_delivery_load(st, txn);
    return drc ? drc : store_audit_load(st, txn);
}

static int open_env(store_t *st, const char *dir, const store_opts_t *o)
{
    uint64_t map = o->map_bytes ? o->map_bytes : DEFAULT_MAP_BYTES;
    if (map > SIZE_MAX) {
        store_set_err(st, "map size too large for this platform");
        return STORE_EINVAL;
    }
    int rc = mdb_env_create(&st->env);
    if (rc != 0) {
        st->env = NULL;
        return store_mdb_fail(st, "mdb_env_create", rc);
    }
    rc = mdb_env_set_mapsize(st->env, (size_t)map);
    if (rc != 0) return store_mdb_fail(st, "mdb_env_set_mapsize", rc);
    rc = mdb_env_set_maxdbs(st->env, MAX_DBS);
    if (rc != 0) return store_mdb_fail(st, "mdb_env_set_maxdbs", rc);
    /* MDB_NOTLS: read transactions are not tied to a thread-local slot, so the cached read txn and
     * a nested read work. In FSYNC mode no sync flag is relaxed: every commit is durable before it
     * returns, which the server relies on before answering 200. */
    unsigned flags = MDB_NOTLS | (o->sync == STORE_SYNC_NONE ? MDB_NOSYNC : 0);
    rc = mdb_env_open(st->env, dir, flags, 0644);
    if (rc != 0) return store_mdb_fail(st, "mdb_env_open", rc);

    MDB_txn *txn;
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) return store_mdb_fail(st, "mdb_txn_begin(open)", rc);
    int src = open_dbi(st, txn, "meta", 0, &st->meta);
    if (src == 0) src = open_dbi(st, txn, "events", 0, &st->events);
    if (src == 0) src = check_format(st, txn);
    if (src == 0) src = open_dbi(st, txn, "ids", MDB_DUPSORT | MDB_DUPFIXED, &st->ids);
    if (src == 0) src = open_dbi(st, txn, "byres", MDB_DUPSORT | MDB_DUPFIXED, &st->byres);
    if (src == 0) src = open_dbi(st, txn, "subs", 0, &st->subs);
    if (src == 0) src = open_dbi(st, txn, "retries", 0, &st->retries);
    if (src == 0) src = open_dbi(st, txn, "dead", 0, &st->dead);
    if (src == 0) src = open_dbi(st, txn, "audit", 0, &st->audit);
    if (src == 0) src = init_contents(st, txn);
    if (src != 0) {
        mdb_txn_abort(txn);
        return src;
    }
    rc = mdb_txn_commit(txn); /* on failure the txn is already freed */
    if (rc != 0) return store_mdb_fail(st, "mdb_txn_commit(open)", rc);
    return STORE_OK;
}

int store_open(const char *dir, const store_opts_t *opts, store_t **out)
{
    if (!dir || !*dir || !out) return STORE_EINVAL;
    store_opts_t o = {0};
    if (opts) o = *opts;
    if (o.sync != STORE_SYNC_FSYNC && o.sync != STORE_SYNC_NONE) return STORE_EINVAL;
    store_t *st = calloc(1, sizeof *st);
    if (!st) return STORE_ENOMEM;
    st->lock_fd = -1;
    st->sync_none = o.sync == STORE_SYNC_NONE;
    int rc;
    if (make_dir(dir) != 0) {
        store_set_err(st, "mkdir %s: %s", dir, strerror(errno));
        rc = STORE_EIO;
    } else {
        rc = take_lock(st, dir);
        if (rc == 0) rc = open_env(st, dir, &o);
    }
    if (rc != 0) {
        store_close(st);
        return rc;
    }
    *out = st;
    return STORE_OK;
}

void store_close(store_t *st)
{
    if (!st) return;
    if (st->rtxn) mdb_txn_abort(st->rtxn);
    if (st->env) {
        /* In NONE mode commits were not synced; a clean close still flushes them. Nothing to report
         * to: a failure here is what NONE mode accepted. */
        if (st->sync_none) (void)mdb_env_sync(st->env, 1);
        mdb_env_close(st->env);
    }
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the flock */
    free(st);
}

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK:
        return "ok";
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_EMAPFULL:
        return "store is full (map size reached)";
    case STORE_ELOCKED:
        return "data directory is locked by another process";
    case STORE_EVERSION:
        return "unsupported on-disk format version";
    case STORE_ECORRUPT:
        return "corrupt record";
    case STORE_EIO:
        return "I/O or database error";
    case STORE_ENOMEM:
        return "out of memory";
    case STORE_EINVAL:
        return "invalid argument";
    default:
        return "unknown store error";
    }
}

const char *store_last_error(const store_t *st)
{
    (void)st;
    return last_err[0] ? last_err : "no error";
}

/* ---- reads ---- */

int store_seq_of_id(store_t *st, const char *id, size_t id_len, uint64_t *seq_out)
{
    if (!st || (!id && id_len) || !seq_out) return STORE_EINVAL;
    if (!id) id = "";
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    unsigned char hb[HASHED_KEY_LEN];
    MDB_val k = store_text_key(id, id_len, hb), v;
    int mrc = mdb_get(txn, st->ids, &k, &v);
    if (mrc == 0) {
        if (v.mv_size == 8) {
            *seq_out = get_u64(v.mv_data);
            rc = STORE_OK;
        } else {
            store_set_err(st, "ids value of %zu bytes", v.mv_size);
            rc = STORE_ECORRUPT;
        }
    } else if (mrc == MDB_NOTFOUND) {
        rc = STORE_ENOTFOUND;
    } else {
        rc = store_mdb_fail(st, "mdb_get(ids)", mrc);
    }
    store_read_end(st, txn);
    return rc;
}

/* Fetches and decodes the event seq and hands it to fn. When resource is non-NULL the event must
 * have that resource (an index entry pointing elsewhere is corruption). Sets *stop when fn asks. */
static int visit_seq(store_t *st, MDB_txn *txn, uint64_t seq, const char *resource,
                     store_scan_fn fn, void *ctx, bool *stop)
{
    unsigned char sb[8];
    put_u64(sb, seq);
    MDB_val k = {sizeof sb, sb}, v;
    int rc = mdb_get(txn, st->events, &k, &v);
    if (rc == MDB_NOTFOUND) {
        store_set_err(st, "byres index names seq %llu, which is not stored",
                      (unsigned long long)seq);
        return STORE_ECORRUPT;
    }
    if (rc != 0) return store_mdb_fail(st, "mdb_get(events)", rc);
    store_event_t ev;
    rc = store_record_decode(st, seq, &v, &ev);
    if (rc != 0) return rc;
    if (resource && strcmp(ev.resource, resource) != 0) {
        store_set_err(st, "byres index names seq %llu of another resource",
                      (unsigned long long)seq);
        return STORE_ECORRUPT;
    }
    *stop = fn(ctx, &ev) != STORE_SCAN_CONTINUE;
    return STORE_OK;
}

int store_scan_resource(store_t *st, const char *resource, uint64_t after_seq, size_t max_examined,
                        store_scan_fn fn, void *ctx, size_t *examined_out)
{
    size_t examined = 0;
    if (examined_out) *examined_out = 0;
    if (!st || !resource || !fn) return STORE_EINVAL;
    if (after_seq == UINT64_MAX) return STORE_OK; /* nothing can come after */
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->byres, &cur);
    if (mrc != 0) {
        rc = store_mdb_fail(st, "mdb_cursor_open(byres)", mrc);
        store_read_end(st, txn);
        return rc;
    }
    unsigned char hb[HASHED_KEY_LEN], sb[8];
    put_u64(sb, after_seq + 1);
    MDB_val k = store_text_key(resource, strlen(resource), hb), v = {sizeof sb, sb};
    /* Positions on the first dup >= after_seq + 1 of this resource: the scan never touches other
     * resources' entries or this resource's older ones. */
    mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    rc = STORE_OK;
    while (mrc == 0) {
        if (v.mv_size != 8) {
            store_set_err(st, "byres value of %zu bytes", v.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        bool stop = false;
        rc = visit_seq(st, txn, get_u64(v.mv_data), resource, fn, ctx, &stop);
        if (rc != 0) break;
        examined++;
        if (stop || (max_examined && examined >= max_examined)) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_mdb_fail(st, "mdb_cursor_get(byres)", mrc);
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    if (examined_out) *examined_out = examined;
    return rc;
}

int store_scan_all(store_t *st, uint64_t after_seq, size_t max_examined, store_scan_fn fn,
                   void *ctx, size_t *examined_out)
{
    size_t examined = 0;
    if (examined_out) *examined_out = 0;
    if (!st || !fn) return STORE_EINVAL;
    if (after_seq == UINT64_MAX) return STORE_OK;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->events, &cur);
    if (mrc != 0) {
        rc = store_mdb_fail(st, "mdb_cursor_open(events)", mrc);
        store_read_end(st, txn);
        return rc;
    }
    unsigned char sb[8];
    put_u64(sb, after_seq + 1);
    MDB_val k = {sizeof sb, sb}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = STORE_OK;
    while (mrc == 0) {
        if (k.mv_size != 8) {
            store_set_err(st, "events key of %zu bytes", k.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        store_event_t ev;
        rc = store_record_decode(st, get_u64(k.mv_data), &v, &ev);
        if (rc != 0) break;
        bool stop = fn(ctx, &ev) != STORE_SCAN_CONTINUE;
        examined++;
        if (stop || (max_examined && examined >= max_examined)) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = store_mdb_fail(st, "mdb_cursor_get(events)", mrc);
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    if (examined_out) *examined_out = examined;
    return rc;
}

uint64_t store_last_seq(const store_t *st)
{
    return st ? __atomic_load_n(&st->last_seq, __ATOMIC_ACQUIRE) : 0;
}

int store_check(store_t *st)
{
    if (!st) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_val k = store_meta_format, v;
    int mrc = mdb_get(txn, st->meta, &k, &v);
    if (mrc != 0) {
        rc = store_mdb_fail(st, "mdb_get(meta format)", mrc);
    } else if (v.mv_size != 4 || get_u32(v.mv_data) != STORE_FORMAT_VERSION) {
        store_set_err(st, "format record changed under us");
        rc = STORE_EVERSION;
    }
    store_read_end(st, txn);
    return rc;
}

int store_stat(store_t *st, store_stat_t *out)
{
    MDB_envinfo info;
    MDB_stat ms;
    int rc;
    if (!st || !out) return STORE_EINVAL;
    if ((rc = mdb_env_info(st->env, &info)) != 0) return store_mdb_fail(st, "mdb_env_info", rc);
    if ((rc = mdb_env_stat(st->env, &ms)) != 0) return store_mdb_fail(st, "mdb_env_stat", rc);
    out->map_bytes = (uint64_t)info.me_mapsize;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    return 0;
}
