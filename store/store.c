/* store: the LMDB event store. See store.h for the contract of every public function.
 *
 * Layout on disk (everything in dir/): `lock` (our flock, so two servers never share the
 * directory), `data.mdb` and `lock.mdb` (LMDB's own files). Named databases, all opened once in
 * store_open:
 *
 *   meta     "format"  -> u32 BE, STORE_FORMAT_VERSION
 *            "nextseq" -> u64 BE, the next sequence number to assign (a high-water mark, so
 * sequence numbers are never reused even once old events can be deleted) events   u64 BE seq ->
 * event record (below). BE so LMDB's bytewise key order is numeric order. ids      id key -> u64 BE
 * seq of the oldest event with that id (MDB_NOOVERWRITE keeps the oldest) dedupe   SHA-256(source
 * "\0" id) -> u64 BE seq of the stored event byres    resource key -> u64 BE seq,
 * MDB_DUPSORT|MDB_DUPFIXED: the dups of one resource sort by sequence, so a resource scan is an
 * index range scan
 *
 * Reserved names for later features (not created yet): "subscriptions", "deliveries", "retries",
 * "cursor".
 *
 * Id and resource keys: the raw bytes, except that a value that is empty, longer than KEY_RAW_MAX
 * bytes or begins with '#' is stored as "#" followed by its SHA-256. LMDB keys are at most 511
 * bytes and may not be empty; hashing every value that begins with '#' keeps the mapping one-to-one
 * (a raw key never begins with '#').
 *
 * Event record (all integers big-endian, no alignment assumed):
 *
 *   u8   flags      bit 0: subject present, bit 1: alternativesubject present; other bits must be 0
 *   i64  stored_us
 *   then for id, source, type, [subject], [alternativesubject], resource, json, in that order
 * (subject and alternativesubject only when their flag is set): u32  len, then len bytes, then one
 * NUL byte (so that a decoded field can be handed out as a NUL-terminated string pointing into the
 * map, with no copy)
 *
 * The record must end exactly after the last field. Version rule: any change to this layout, to a
 * key encoding or to a value encoding above bumps STORE_FORMAT_VERSION; an older or newer store is
 * refused with STORE_EVERSION, never migrated silently. */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAP_BYTES (16ULL << 30)
#define MAX_DBS 16      /* the five below plus room for the reserved names */
#define KEY_RAW_MAX 400 /* longer id/resource keys are hashed (LMDB's key limit is 511) */
#define HASHED_KEY_LEN (1 + SHA256_DIGEST_LENGTH)
#define REC_FLAG_SUBJECT 0x01u
#define REC_FLAG_ALTSUBJECT 0x02u
#define REC_FLAGS_KNOWN (REC_FLAG_SUBJECT | REC_FLAG_ALTSUBJECT)
#define REC_HEADER_LEN 9 /* flags + stored_us */

struct store {
    MDB_env *env;
    MDB_dbi meta, events, ids, dedupe, byres;
    int lock_fd;
    bool sync_none; /* opened with MDB_NOSYNC: store_close flushes */
    /* The highest sequence number committed (or reserved by the high-water mark). Updated only
     * after a successful commit, so an aborted transaction never leaves it ahead of the disk. */
    uint64_t last_seq;
    /* One read transaction kept reset between calls and renewed at the start of each read: saves
     * the reader-slot setup of mdb_txn_begin. Never left active across a return. rtxn_busy guards
     * against a scan callback that starts another read (it then gets a fresh transaction). */
    MDB_txn *rtxn;
    bool rtxn_busy;
    unsigned char *scratch; /* dedupe_key's message buffer */
    size_t scratch_cap;
    char err[256];
};

/* Scratch space for one event's index keys during a batch. */
typedef struct {
    unsigned char dedupe[SHA256_DIGEST_LENGTH];
    unsigned char id_hash[HASHED_KEY_LEN];
    unsigned char res_hash[HASHED_KEY_LEN];
} keybuf_t;

/* ---- small helpers ---- */

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void set_err(store_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(store_t *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
}

/* Maps an LMDB (or errno) code to a store code and records "what: detail" for store_last_error. */
static int mdb_fail(store_t *st, const char *what, int rc)
{
    set_err(st, "%s: %s", what, mdb_strerror(rc));
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

/* The LMDB key of an id or resource: the raw bytes, or "#" + SHA-256 (see the top of the file). out
 * must hold HASHED_KEY_LEN bytes; the returned MDB_val may point at s or at out. */
static MDB_val text_key(const char *s, size_t len, unsigned char *out)
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

/* dedupe key: SHA-256 of source "\0" id. Neither string can contain a NUL, so the pair is
 * unambiguous. The message is assembled in the store's scratch buffer (grown as needed, kept for
 * the next call) so the one-shot, non-deprecated SHA256() can hash it. */
static int dedupe_key(store_t *st, const char *source, const char *id,
                      unsigned char out[SHA256_DIGEST_LENGTH])
{
    size_t ls = strlen(source), li = strlen(id);
    size_t total = ls + 1 + li;
    if (total > st->scratch_cap) {
        size_t cap = total < 1024 ? 1024 : total;
        unsigned char *p = realloc(st->scratch, cap);
        if (!p) {
            set_err(st, "dedupe key: out of memory");
            return STORE_ENOMEM;
        }
        st->scratch = p;
        st->scratch_cap = cap;
    }
    memcpy(st->scratch, source, ls);
    st->scratch[ls] = 0;
    memcpy(st->scratch + ls + 1, id, li);
    SHA256(st->scratch, total, out);
    return STORE_OK;
}

/* ---- record encoding ---- */

static bool field_len_ok(size_t len)
{
    /* u32 length prefix; keep one spare so len + NUL never wraps in 32 bits either. */
    return len < UINT32_MAX;
}

/* Size of the encoded record, or 0 if a field is missing or too long. */
static size_t record_size(const store_event_in_t *e)
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

/* Writes the record into p, which holds exactly record_size(e) bytes. */
static void record_encode(const store_event_in_t *e, unsigned char *p)
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
static int record_decode(store_t *st, uint64_t seq, const MDB_val *v, store_event_t *ev)
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
    set_err(st, "decode: event record at seq %llu: %s", (unsigned long long)seq, what);
    memset(ev, 0, sizeof *ev);
    return STORE_ECORRUPT;
}

/* ---- read transactions ---- */

/* Starts a read transaction: the cached one (renewed) if it is free, else a fresh one (only when a
 * scan callback reads again while the outer scan holds the cached one). */
static int read_begin(store_t *st, MDB_txn **txn)
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
            return mdb_fail(st, "mdb_txn_begin(read)", rc);
        }
        st->rtxn_busy = true;
        *txn = st->rtxn;
        return STORE_OK;
    }
    rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
    if (rc != 0) return mdb_fail(st, "mdb_txn_begin(read)", rc);
    return STORE_OK;
}

/* Ends a read transaction before the caller returns: the cached one is reset (it releases its
 * snapshot, so it pins no pages while the loop runs), any other is aborted. */
static void read_end(store_t *st, MDB_txn *txn)
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
        set_err(st, "open %s: %s", path, strerror(errno));
        free(path);
        return STORE_EIO;
    }
    /* flock locks belong to the open file description: another store_open, even in this process,
     * opens its own description and is refused. */
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        set_err(st, "flock %s: %s", path, strerror(e));
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
        set_err(st, "%s: %s", what, mdb_strerror(rc));
        return STORE_EVERSION;
    }
    return mdb_fail(st, what, rc);
}

static const MDB_val META_FORMAT = {sizeof "format" - 1, (void *)"format"};
static const MDB_val META_NEXTSEQ = {sizeof "nextseq" - 1, (void *)"nextseq"};

/* Inside the open transaction: checks (or, for a new store, writes) the format version and reads
 * the last sequence number. */
static int init_contents(store_t *st, MDB_txn *txn)
{
    MDB_val k = META_FORMAT, v;
    int rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4) {
            set_err(st, "format record has %zu bytes, expected 4", v.mv_size);
            return STORE_EVERSION;
        }
        uint32_t ver = get_u32(v.mv_data);
        if (ver != STORE_FORMAT_VERSION) {
            set_err(st, "on-disk format version %u, this build reads %u", ver,
                    (unsigned)STORE_FORMAT_VERSION);
            return STORE_EVERSION;
        }
    } else if (rc == MDB_NOTFOUND) {
        MDB_stat ms;
        rc = mdb_stat(txn, st->events, &ms);
        if (rc != 0) return mdb_fail(st, "mdb_stat(events)", rc);
        if (ms.ms_entries != 0) {
            set_err(st, "events present but no format record");
            return STORE_ECORRUPT;
        }
        unsigned char buf[4];
        put_u32(buf, STORE_FORMAT_VERSION);
        v.mv_size = sizeof buf;
        v.mv_data = buf;
        rc = mdb_put(txn, st->meta, &k, &v, 0);
        if (rc != 0) return mdb_fail(st, "mdb_put(meta format)", rc);
    } else {
        return mdb_fail(st, "mdb_get(meta format)", rc);
    }

    /* last_seq = max(highest event key, nextseq - 1): the high-water mark covers events that were
     * stored and later deleted. */
    uint64_t last = 0;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, st->events, &cur);
    if (rc != 0) return mdb_fail(st, "mdb_cursor_open(events)", rc);
    MDB_val ck, cv;
    rc = mdb_cursor_get(cur, &ck, &cv, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == 0) {
        if (ck.mv_size != 8) {
            set_err(st, "events key of %zu bytes", ck.mv_size);
            return STORE_ECORRUPT;
        }
        last = get_u64(ck.mv_data);
    } else if (rc != MDB_NOTFOUND) {
        return mdb_fail(st, "mdb_cursor_get(events, MDB_LAST)", rc);
    }
    k = META_NEXTSEQ;
    rc = mdb_get(txn, st->meta, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8) {
            set_err(st, "nextseq record has %zu bytes", v.mv_size);
            return STORE_ECORRUPT;
        }
        uint64_t next = get_u64(v.mv_data);
        if (next > 0 && next - 1 > last) last = next - 1;
    } else if (rc != MDB_NOTFOUND) {
        return mdb_fail(st, "mdb_get(meta nextseq)", rc);
    }
    st->last_seq = last;
    return STORE_OK;
}

static int open_env(store_t *st, const char *dir, const store_opts_t *o)
{
    uint64_t map = o->map_bytes ? o->map_bytes : DEFAULT_MAP_BYTES;
    if (map > SIZE_MAX) {
        set_err(st, "map size too large for this platform");
        return STORE_EINVAL;
    }
    int rc = mdb_env_create(&st->env);
    if (rc != 0) {
        st->env = NULL;
        return mdb_fail(st, "mdb_env_create", rc);
    }
    rc = mdb_env_set_mapsize(st->env, (size_t)map);
    if (rc != 0) return mdb_fail(st, "mdb_env_set_mapsize", rc);
    rc = mdb_env_set_maxdbs(st->env, MAX_DBS);
    if (rc != 0) return mdb_fail(st, "mdb_env_set_maxdbs", rc);
    /* MDB_NOTLS: read transactions are not tied to a thread-local slot, so the cached read txn and
     * a nested read work. In FSYNC mode no sync flag is relaxed: every commit is durable before it
     * returns, which the server relies on before answering 200. */
    unsigned flags = MDB_NOTLS | (o->sync == STORE_SYNC_NONE ? MDB_NOSYNC : 0);
    rc = mdb_env_open(st->env, dir, flags, 0644);
    if (rc != 0) return mdb_fail(st, "mdb_env_open", rc);

    MDB_txn *txn;
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) return mdb_fail(st, "mdb_txn_begin(open)", rc);
    int src = open_dbi(st, txn, "meta", 0, &st->meta);
    if (src == 0) src = open_dbi(st, txn, "events", 0, &st->events);
    if (src == 0) src = open_dbi(st, txn, "ids", 0, &st->ids);
    if (src == 0) src = open_dbi(st, txn, "dedupe", 0, &st->dedupe);
    if (src == 0) src = open_dbi(st, txn, "byres", MDB_DUPSORT | MDB_DUPFIXED, &st->byres);
    if (src == 0) src = init_contents(st, txn);
    if (src != 0) {
        mdb_txn_abort(txn);
        return src;
    }
    rc = mdb_txn_commit(txn); /* on failure the txn is already freed */
    if (rc != 0) return mdb_fail(st, "mdb_txn_commit(open)", rc);
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
        set_err(st, "mkdir %s: %s", dir, strerror(errno));
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
    free(st->scratch);
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
    if (!st) return "no store";
    return st->err[0] ? st->err : "no error";
}

/* ---- write batch ---- */

/* Puts one new event and its index entries. Returns an LMDB code; *what names the failing call. */
static int put_event(store_t *st, MDB_txn *txn, const store_event_in_t *e, uint64_t seq,
                     keybuf_t *kb, const char **what)
{
    unsigned char sb[8];
    put_u64(sb, seq);
    MDB_val k = {sizeof sb, sb}, v = {record_size(e), NULL};
    /* Sequence keys only grow, so MDB_APPEND skips the search and fills pages completely;
     * MDB_RESERVE lets the record be encoded straight into the page. */
    *what = "mdb_put(events)";
    int rc = mdb_put(txn, st->events, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0) return rc;
    record_encode(e, v.mv_data);

    /* Separate MDB_vals per put: with MDB_NOOVERWRITE LMDB rewrites the data argument to the
     * existing value on KEYEXIST. */
    MDB_val ik = text_key(e->id, strlen(e->id), kb->id_hash), iv = {sizeof sb, sb};
    *what = "mdb_put(ids)";
    rc = mdb_put(txn, st->ids, &ik, &iv, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) rc = 0; /* an older event has this id: keep the oldest */
    if (rc != 0) return rc;

    MDB_val dk = {sizeof kb->dedupe, kb->dedupe}, dv = {sizeof sb, sb};
    *what = "mdb_put(dedupe)";
    rc = mdb_put(txn, st->dedupe, &dk, &dv, MDB_NOOVERWRITE);
    if (rc != 0) return rc;

    MDB_val rk = text_key(e->resource, strlen(e->resource), kb->res_hash), rv = {sizeof sb, sb};
    *what = "mdb_put(byres)";
    return mdb_put(txn, st->byres, &rk, &rv, 0);
}

/* One attempt at the batch in one write transaction: events [0, limit) are written (or found to be
 * duplicates); events from limit on are only checked against the dedupe index (DUP, else FULL), so
 * a duplicate is reported as such even when the map is full. On success *last_out is the last
 * sequence number used. On MAP_FULL *full_at is the index of the event whose put failed, or limit
 * when the metadata put or the commit failed; nothing is committed then. */
static int batch_try(store_t *st, const store_event_in_t *evs, size_t n, size_t limit,
                     store_result_t *res, size_t *full_at, uint64_t *last_out)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc != 0) return mdb_fail(st, "mdb_txn_begin(write)", rc);
    uint64_t seq = st->last_seq;
    bool wrote = false;
    for (size_t i = 0; i < n; i++) {
        keybuf_t kb;
        int src = dedupe_key(st, evs[i].source, evs[i].id, kb.dedupe);
        if (src != 0) {
            mdb_txn_abort(txn);
            return src;
        }
        /* A get in the write txn sees this batch's own earlier puts: in-batch duplicates too. */
        MDB_val dk = {sizeof kb.dedupe, kb.dedupe}, dv;
        rc = mdb_get(txn, st->dedupe, &dk, &dv);
        if (rc == 0) {
            if (dv.mv_size != 8) {
                mdb_txn_abort(txn);
                set_err(st, "dedupe value of %zu bytes", dv.mv_size);
                return STORE_ECORRUPT;
            }
            res[i].res = STORE_RES_DUP;
            res[i].seq = get_u64(dv.mv_data);
            continue;
        }
        if (rc != MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            return mdb_fail(st, "mdb_get(dedupe)", rc);
        }
        if (i >= limit) {
            res[i].res = STORE_RES_FULL;
            res[i].seq = 0;
            continue;
        }
        if (seq == UINT64_MAX) {
            mdb_txn_abort(txn);
            set_err(st, "sequence numbers exhausted");
            return STORE_EIO;
        }
        seq++;
        const char *what = "";
        rc = put_event(st, txn, &evs[i], seq, &kb, &what);
        if (rc != 0) {
            /* After a failed put the txn is unusable (MDB_TXN_ERROR): abort, never commit. */
            mdb_txn_abort(txn);
            if (rc == MDB_MAP_FULL) *full_at = i;
            return mdb_fail(st, what, rc);
        }
        res[i].res = STORE_RES_STORED;
        res[i].seq = seq;
        wrote = true;
    }
    if (wrote) {
        unsigned char nb[8];
        put_u64(nb, seq + 1);
        MDB_val k = META_NEXTSEQ, v = {sizeof nb, nb};
        rc = mdb_put(txn, st->meta, &k, &v, 0);
        if (rc != 0) {
            mdb_txn_abort(txn);
            if (rc == MDB_MAP_FULL) *full_at = limit;
            return mdb_fail(st, "mdb_put(meta nextseq)", rc);
        }
    }
    rc = mdb_txn_commit(txn); /* syncs unless MDB_NOSYNC; on failure the txn is already freed */
    if (rc != 0) {
        if (rc == MDB_MAP_FULL) *full_at = limit;
        return mdb_fail(st, "mdb_txn_commit", rc);
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

int store_append_batch(store_t *st, const store_event_in_t *evs, size_t n, store_result_t *res)
{
    if (n == 0) return STORE_OK;
    if (!res) return STORE_EINVAL;
    if (!st || !evs) {
        fill_res(res, n, STORE_RES_ERROR);
        return STORE_EINVAL;
    }
    /* Caller errors fail the whole batch before any transaction, as the contract asks. */
    for (size_t i = 0; i < n; i++) {
        const store_event_in_t *e = &evs[i];
        if (!e->id || !e->source || !e->type || !e->resource || (!e->json && e->json_len) ||
            record_size(e) == 0) {
            set_err(st, "event %zu of the batch: missing or too long field", i);
            fill_res(res, n, STORE_RES_ERROR);
            return STORE_EINVAL;
        }
    }

    /* Map full: retry with only the events that fitted (they are known to fit as puts), or with
     * half as many when the failure came at the end (nextseq or commit), down to none. Each attempt
     * is a fresh transaction, so nothing of a failed one is ever committed. */
    size_t limit = n;
    for (;;) {
        size_t full_at = limit;
        uint64_t last = st->last_seq;
        int rc = batch_try(st, evs, n, limit, res, &full_at, &last);
        if (rc == STORE_OK) {
            st->last_seq = last;
            break;
        }
        if (rc != STORE_EMAPFULL || limit == 0) {
            fill_res(res, n, rc == STORE_EMAPFULL ? STORE_RES_FULL : STORE_RES_ERROR);
            return rc;
        }
        limit = full_at < limit ? full_at : limit / 2;
    }
    for (size_t i = 0; i < n; i++)
        if (res[i].res == STORE_RES_FULL) return STORE_EMAPFULL;
    return STORE_OK;
}

/* ---- reads ---- */

int store_seq_of_id(store_t *st, const char *id, size_t id_len, uint64_t *seq_out)
{
    if (!st || (!id && id_len) || !seq_out) return STORE_EINVAL;
    if (!id) id = "";
    MDB_txn *txn;
    int rc = read_begin(st, &txn);
    if (rc != 0) return rc;
    unsigned char hb[HASHED_KEY_LEN];
    MDB_val k = text_key(id, id_len, hb), v;
    int mrc = mdb_get(txn, st->ids, &k, &v);
    if (mrc == 0) {
        if (v.mv_size == 8) {
            *seq_out = get_u64(v.mv_data);
            rc = STORE_OK;
        } else {
            set_err(st, "ids value of %zu bytes", v.mv_size);
            rc = STORE_ECORRUPT;
        }
    } else if (mrc == MDB_NOTFOUND) {
        rc = STORE_ENOTFOUND;
    } else {
        rc = mdb_fail(st, "mdb_get(ids)", mrc);
    }
    read_end(st, txn);
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
        set_err(st, "byres index names seq %llu, which is not stored", (unsigned long long)seq);
        return STORE_ECORRUPT;
    }
    if (rc != 0) return mdb_fail(st, "mdb_get(events)", rc);
    store_event_t ev;
    rc = record_decode(st, seq, &v, &ev);
    if (rc != 0) return rc;
    if (resource && strcmp(ev.resource, resource) != 0) {
        set_err(st, "byres index names seq %llu of another resource", (unsigned long long)seq);
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
    int rc = read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->byres, &cur);
    if (mrc != 0) {
        rc = mdb_fail(st, "mdb_cursor_open(byres)", mrc);
        read_end(st, txn);
        return rc;
    }
    unsigned char hb[HASHED_KEY_LEN], sb[8];
    put_u64(sb, after_seq + 1);
    MDB_val k = text_key(resource, strlen(resource), hb), v = {sizeof sb, sb};
    /* Positions on the first dup >= after_seq + 1 of this resource: the scan never touches other
     * resources' entries or this resource's older ones. */
    mrc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
    rc = STORE_OK;
    while (mrc == 0) {
        if (v.mv_size != 8) {
            set_err(st, "byres value of %zu bytes", v.mv_size);
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
        rc = mdb_fail(st, "mdb_cursor_get(byres)", mrc);
    mdb_cursor_close(cur);
    read_end(st, txn);
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
    int rc = read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, st->events, &cur);
    if (mrc != 0) {
        rc = mdb_fail(st, "mdb_cursor_open(events)", mrc);
        read_end(st, txn);
        return rc;
    }
    unsigned char sb[8];
    put_u64(sb, after_seq + 1);
    MDB_val k = {sizeof sb, sb}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = STORE_OK;
    while (mrc == 0) {
        if (k.mv_size != 8) {
            set_err(st, "events key of %zu bytes", k.mv_size);
            rc = STORE_ECORRUPT;
            break;
        }
        store_event_t ev;
        rc = record_decode(st, get_u64(k.mv_data), &v, &ev);
        if (rc != 0) break;
        bool stop = fn(ctx, &ev) != STORE_SCAN_CONTINUE;
        examined++;
        if (stop || (max_examined && examined >= max_examined)) break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == STORE_OK && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mdb_fail(st, "mdb_cursor_get(events)", mrc);
    mdb_cursor_close(cur);
    read_end(st, txn);
    if (examined_out) *examined_out = examined;
    return rc;
}

uint64_t store_last_seq(const store_t *st)
{
    return st ? st->last_seq : 0;
}

int store_check(store_t *st)
{
    if (!st) return STORE_EINVAL;
    MDB_txn *txn;
    int rc = read_begin(st, &txn);
    if (rc != 0) return rc;
    MDB_val k = META_FORMAT, v;
    int mrc = mdb_get(txn, st->meta, &k, &v);
    if (mrc != 0) {
        rc = mdb_fail(st, "mdb_get(meta format)", mrc);
    } else if (v.mv_size != 4 || get_u32(v.mv_data) != STORE_FORMAT_VERSION) {
        set_err(st, "format record changed under us");
        rc = STORE_EVERSION;
    }
    read_end(st, txn);
    return rc;
}
