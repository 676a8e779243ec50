/* filter/subindex: the subscription index, the source prefix match and the schedule parser.
 *
 * Layout. Three open-addressing tables of pointers (linear probing, backward-shift deletion,
 * power-of-two capacity, at most 7/8 full): subscriptions by id; resource buckets by
 * resourceFilter; subject buckets by (resource bucket, subjectFilter).
 *
 * The subject tables of all resources are one shared table keyed by (resource bucket, subject)
 * rather than one small table per resource: with many resources holding one or two subjects each,
 * a per-resource table would cost an extra allocation plus slack per resource, while a shared table
 * costs one pointer slot per subject bucket and grows by a single rehash. Lookups are O(1) either
 * way.
 *
 * A subscription with a subject filter sits in its subject bucket's list, one without in its
 * resource bucket's "any subject" list. Matching looks up the resource bucket and the (resource,
 * subject) bucket and walks those two lists only, so its cost follows the subscriptions that could
 * match, not the total.
 *
 * Memory. Each subscription is one allocation of 40 bytes (the three "has a filter" flags share the
 * owner pointer's low bits) holding its type and source filters inline; each
 * bucket is one allocation holding its key inline; the resource string lives only in its bucket.
 * Tables start empty, grow by doubling, shrink when an eighth full, and empty buckets are freed, so
 * memory returns after removals.
 *
 * Hashing is deterministic (FNV-1a with a murmur3 finaliser), not keyed: subscriptions are created
 * by authenticated callers, and a keyed hash would need a seed from outside this pure module. */
#include "subindex.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct rbucket rbucket_t;
typedef struct sbucket sbucket_t;
typedef struct sub sub_t;

/* A subscription is 40 bytes plus its type and source filters (a 48-byte malloc chunk when it has
 * neither): the three flags live in the low bits of the owner pointer, which buckets, being
 * malloc'd, leave zero. */
enum { F_SUBJECT = 1, F_TYPE = 2, F_SOURCE = 4, F_MASK = 7 };

struct sub {
    uint64_t id;
    void *user;
    sub_t *next;     /* in the subject bucket's list, or in the resource's any-subject list */
    sub_t **pprev;   /* what points at this sub: O(1) unlink without a list walk */
    uintptr_t owner; /* its sbucket_t if F_SUBJECT, else its rbucket_t; | the F_ flags */
    char str[];      /* the type filter if F_TYPE, then the source filter if F_SOURCE */
};

static unsigned sub_flags(const sub_t *s)
{
    return (unsigned)(s->owner & F_MASK);
}

static void *sub_owner(const sub_t *s)
{
    return (void *)(s->owner & ~(uintptr_t)F_MASK);
}

static void sub_set_owner(sub_t *s, void *owner)
{
    HND_CHECK(((uintptr_t)owner & F_MASK) == 0);
    s->owner = (uintptr_t)owner | sub_flags(s);
}

static const char *sub_source(const sub_t *s)
{
    return sub_flags(s) & F_TYPE ? s->str + strlen(s->str) + 1 : s->str;
}

struct rbucket {
    sub_t *any; /* subscriptions without a subject filter */
    uint32_t hash;
    uint32_t nsubs; /* all subscriptions on this resource; the bucket is freed at 0 */
    char key[];
};

struct sbucket {
    rbucket_t *rb;
    sub_t *head;
    uint32_t hash; /* of (rb->hash, key) */
    char key[];
};

typedef struct {
    void **slot; /* NULL when cap is 0 */
    size_t cap;  /* 0 or a power of two */
    size_t used;
} tab_t;

struct filter_subindex {
    tab_t by_id, by_res, by_subj;
};

/* ---- hashing ---- */

/* The murmur3 finaliser: FNV-1a alone leaves the low bits (which pick the slot) weakly mixed. */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* 32 bits are stored per bucket to keep buckets small; that still spreads 2^32 slots. */
static uint32_t str_hash(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return (uint32_t)mix64(h);
}

static uint32_t res_hash(const char *resource)
{
    return str_hash(resource, 0);
}

/* The subject key is seeded with the resource's hash so equal subjects on different resources
 * spread over the shared table. */
static uint32_t subj_hash(const rbucket_t *rb, const char *subject)
{
    return str_hash(subject, (rb->hash + 1ULL) * 0x9e3779b97f4a7c15ULL);
}

static uint64_t hash_of_sub(const void *e)
{
    return mix64(((const sub_t *)e)->id);
}

static uint64_t hash_of_rb(const void *e)
{
    return ((const rbucket_t *)e)->hash;
}

static uint64_t hash_of_sb(const void *e)
{
    return ((const sbucket_t *)e)->hash;
}

typedef uint64_t (*hash_fn)(const void *);

/* ---- open-addressing pointer table ---- */

#define TAB_MIN 8

/* Places e in the first free slot from its home; the caller has made room. */
static void tab_place(void **slot, size_t cap, void *e, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (slot[i])
        i = (i + 1) & (cap - 1);
    slot[i] = e;
}

static int tab_rehash(tab_t *t, size_t cap, hash_fn hf)
{
    if (cap == 0) {
        HND_CHECK(t->used == 0);
        free(t->slot);
        t->slot = NULL;
        t->cap = 0;
        return 0;
    }
    void **ns = calloc(cap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i]) tab_place(ns, cap, t->slot[i], hf(t->slot[i]));
    free(t->slot);
    t->slot = ns;
    t->cap = cap;
    return 0;
}

/* Makes room for extra more entries without passing 7/8 full. Leaves t as it was on failure.
 * Why 7/8 and not the usual 3/4: there are three tables at 8 bytes a slot, so the tables cost
 * between 24/0.75 = 32 and 64 bytes a subscription at 3/4, between 27 and 55 at 7/8. The price is
 * longer probe runs near the top: a miss reads about 9 slots (and their buckets' hashes) at 0.75
 * full and 32 at 0.875, against 2.5 at half full; a few microseconds at worst per publish. */
static int tab_reserve(tab_t *t, size_t extra, hash_fn hf)
{
    size_t need = t->used + extra;
    if (need < t->used || need > SIZE_MAX / 8) return -1;
    if (need * 8 <= t->cap * 7) return 0;
    size_t cap = t->cap ? t->cap : TAB_MIN;
    while (need * 8 > cap * 7) {
        if (cap > SIZE_MAX / 2 / sizeof(void *)) return -1;
        cap *= 2;
    }
    return tab_rehash(t, cap, hf);
}

static void tab_insert(tab_t *t, void *e, uint64_t h)
{
    HND_CHECK((t->used + 1) * 8 <= t->cap * 7);
    tab_place(t->slot, t->cap, e, h);
    t->used++;
}

/* The slot holding e, found by pointer identity. */
static size_t tab_slot_of(const tab_t *t, const void *e, uint64_t h)
{
    HND_CHECK(t->cap);
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slot[i] != e) {
        HND_CHECK(t->slot[i]);
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

/* Shrinks when an eighth full (to half full), so a table that was large once does not keep its
 * memory. The gap between the grow and shrink thresholds stops add/remove from thrashing. A failed
 * shrink is harmless: the table just stays larger. */
static void tab_maybe_shrink(tab_t *t, hash_fn hf)
{
    if (t->used == 0) {
        tab_rehash(t, 0, hf);
        return;
    }
    if (t->cap <= TAB_MIN || t->used * 8 > t->cap) return;
    size_t cap = t->cap;
    while (cap > TAB_MIN && t->used * 2 <= cap / 2)
        cap /= 2;
    tab_rehash(t, cap, hf);
}

/* Removes the entry at slot i. Backward-shift deletion: later entries of the same probe run move
 * back, so lookups never need tombstones and the table never silts up after many removals. */
static void tab_remove_at(tab_t *t, size_t i, hash_fn hf)
{
    size_t mask = t->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slot[j]) break;
        size_t home = (size_t)hf(t->slot[j]) & mask;
        /* The entry at j may move to the hole at i only if its home is not in (i, j] cyclically. */
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (in_range) continue;
        t->slot[i] = t->slot[j];
        i = j;
    }
    t->slot[i] = NULL;
    t->used--;
    tab_maybe_shrink(t, hf);
}

/* ---- lookups ---- */

static sub_t *find_sub(const filter_subindex_t *idx, uint64_t id)
{
    const tab_t *t = &idx->by_id;
    if (!t->cap) return NULL;
    for (size_t i = (size_t)mix64(id) & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1)) {
        sub_t *s = t->slot[i];
        if (s->id == id) return s;
    }
    return NULL;
}

static rbucket_t *find_rb(const filter_subindex_t *idx, const char *resource, uint32_t h)
{
    const tab_t *t = &idx->by_res;
    if (!t->cap) return NULL;
    for (size_t i = (size_t)h & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1)) {
        rbucket_t *rb = t->slot[i];
        if (rb->hash == h && strcmp(rb->key, resource) == 0) return rb;
    }
    return NULL;
}

static sbucket_t *find_sb(const filter_subindex_t *idx, const rbucket_t *rb, const char *subject,
                          uint32_t h)
{
    const tab_t *t = &idx->by_subj;
    if (!t->cap) return NULL;
    for (size_t i = (size_t)h & (t->cap - 1); t->slot[i]; i = (i + 1) & (t->cap - 1)) {
        sbucket_t *sb = t->slot[i];
        if (sb->hash == h && sb->rb == rb && strcmp(sb->key, subject) == 0) return sb;
    }
    return NULL;
}

/* ---- lists ---- */

static void list_push(sub_t **head, sub_t *s)
{
    s->next = *head;
    if (s->next) s->next->pprev = &s->next;
    s->pprev = head;
    *head = s;
}

static void list_unlink(sub_t *s)
{
    *s->pprev = s->next;
    if (s->next) s->next->pprev = s->pprev;
    s->next = NULL;
    s->pprev = NULL;
}

/* ---- index ---- */

filter_subindex_t *filter_subindex_new(void)
{
    return calloc(1, sizeof(filter_subindex_t));
}

void filter_subindex_free(filter_subindex_t *idx)
{
    if (!idx) return;
    for (size_t i = 0; i < idx->by_id.cap; i++)
        free(idx->by_id.slot[i]);
    for (size_t i = 0; i < idx->by_subj.cap; i++)
        free(idx->by_subj.slot[i]);
    for (size_t i = 0; i < idx->by_res.cap; i++)
        free(idx->by_res.slot[i]);
    free(idx->by_id.slot);
    free(idx->by_subj.slot);
    free(idx->by_res.slot);
    free(idx);
}

/* One allocation: the struct, then the type and source filters, each NUL-terminated. */
static sub_t *sub_alloc(const filter_sub_spec_t *spec, void *user)
{
    size_t tl = spec->type ? strlen(spec->type) + 1 : 0;
    size_t sl = spec->source ? strlen(spec->source) + 1 : 0;
    if (tl > SIZE_MAX / 4 || sl > SIZE_MAX / 4) return NULL;
    sub_t *s = malloc(sizeof *s + tl + sl);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->id = spec->id;
    s->user = user;
    s->owner = (spec->subject ? F_SUBJECT : 0u) | (spec->type ? F_TYPE : 0u) |
               (spec->source ? F_SOURCE : 0u);
    if (tl) memcpy(s->str, spec->type, tl);
    if (sl) memcpy(s->str + tl, spec->source, sl);
    return s;
}

/* A bucket: header bytes (offsetof its key field), then key; at least size bytes. */
static void *key_alloc(size_t header, size_t size, const char *key)
{
    size_t n = strlen(key) + 1;
    if (n > SIZE_MAX - header) return NULL;
    char *p = malloc(header + n > size ? header + n : size);
    if (!p) return NULL;
    memset(p, 0, header);
    memcpy(p + header, key, n);
    return p;
}

/* Unlinks s from its list and buckets, freeing buckets that became empty; s itself stays allocated
 * and stays in the id table. */
static void sub_detach(filter_subindex_t *idx, sub_t *s)
{
    sbucket_t *sb = sub_flags(s) & F_SUBJECT ? sub_owner(s) : NULL;
    rbucket_t *rb = sb ? sb->rb : sub_owner(s);
    list_unlink(s);
    if (sb && !sb->head) {
        tab_remove_at(&idx->by_subj, tab_slot_of(&idx->by_subj, sb, sb->hash), hash_of_sb);
        free(sb);
    }
    HND_CHECK(rb->nsubs > 0);
    if (--rb->nsubs == 0) {
        HND_CHECK(!rb->any);
        tab_remove_at(&idx->by_res, tab_slot_of(&idx->by_res, rb, rb->hash), hash_of_rb);
        free(rb);
    }
    sub_set_owner(s, NULL);
}

/* Every allocation (the sub, new buckets, table growth) happens before anything is linked, so a
 * failure leaves the index as it was. On replace the new sub is linked before the old one is
 * detached: when both share a bucket, detaching first could free the bucket the new one needs. */
int filter_subindex_add(filter_subindex_t *idx, const filter_sub_spec_t *spec, void *user)
{
    if (!idx || !spec || spec->id == 0 || !spec->resource) return -1;
    sub_t *old = find_sub(idx, spec->id);
    uint32_t rh = res_hash(spec->resource);
    rbucket_t *rb = find_rb(idx, spec->resource, rh);
    rbucket_t *new_rb = NULL;
    sbucket_t *sb = NULL, *new_sb = NULL;
    uint32_t sh = 0;
    if (rb && rb->nsubs == UINT32_MAX) return -1; /* never wraps: 4G subs is far past memory */

    sub_t *s = sub_alloc(spec, user);
    if (!s) return -1;
    if (!rb) {
        new_rb = key_alloc(offsetof(rbucket_t, key), sizeof(rbucket_t), spec->resource);
        if (!new_rb) goto fail;
        new_rb->hash = rh;
        rb = new_rb;
    }
    if (spec->subject) {
        sh = subj_hash(rb, spec->subject);
        /* A new resource bucket has no subjects yet, and its address may not be in the table. */
        sb = new_rb ? NULL : find_sb(idx, rb, spec->subject, sh);
        if (!sb) {
            new_sb = key_alloc(offsetof(sbucket_t, key), sizeof(sbucket_t), spec->subject);
            if (!new_sb) goto fail;
            new_sb->hash = sh;
            new_sb->rb = rb;
            sb = new_sb;
        }
    }
    if (tab_reserve(&idx->by_res, new_rb ? 1 : 0, hash_of_rb) ||
        tab_reserve(&idx->by_subj, new_sb ? 1 : 0, hash_of_sb) ||
        tab_reserve(&idx->by_id, old ? 0 : 1, hash_of_sub))
        goto fail;

    /* Nothing below can fail. */
    if (new_rb) tab_insert(&idx->by_res, new_rb, rh);
    if (new_sb) tab_insert(&idx->by_subj, new_sb, sh);
    sub_set_owner(s, sb ? (void *)sb : (void *)rb);
    rb->nsubs++;
    list_push(sb ? &sb->head : &rb->any, s);
    if (old) {
        sub_detach(idx, old);
        idx->by_id.slot[tab_slot_of(&idx->by_id, old, hash_of_sub(old))] = s;
        free(old);
    } else {
        tab_insert(&idx->by_id, s, hash_of_sub(s));
    }
    return 0;

fail:
    free(new_sb);
    free(new_rb);
    free(s);
    return -1;
}

int filter_subindex_remove(filter_subindex_t *idx, uint64_t id)
{
    if (!idx) return -1;
    sub_t *s = find_sub(idx, id);
    if (!s) return -1;
    sub_detach(idx, s);
    tab_remove_at(&idx->by_id, tab_slot_of(&idx->by_id, s, hash_of_sub(s)), hash_of_sub);
    free(s);
    return 0;
}

void *filter_subindex_get(const filter_subindex_t *idx, uint64_t id)
{
    if (!idx) return NULL;
    sub_t *s = find_sub(idx, id);
    return s ? s->user : NULL;
}

size_t filter_subindex_count(const filter_subindex_t *idx)
{
    return idx ? idx->by_id.used : 0;
}

static int sub_holds(const sub_t *s, const filter_match_event_t *ev)
{
    unsigned f = sub_flags(s);
    if ((f & F_TYPE) && (!ev->type || strcmp(s->str, ev->type) != 0)) return 0;
    if ((f & F_SOURCE) && (!ev->source || !filter_source_prefix_match(sub_source(s), ev->source)))
        return 0;
    return 1;
}

static size_t walk(const sub_t *s, const filter_match_event_t *ev, filter_match_fn fn, void *ctx)
{
    size_t n = 0;
    for (; s; s = s->next) {
        if (!sub_holds(s, ev)) continue;
        n++;
        if (fn) fn(ctx, s->id, s->user);
    }
    return n;
}

/* fn may be NULL to only count. An event without resource matches nothing (resourceFilter is
 * required on every subscription). */
size_t filter_subindex_match(const filter_subindex_t *idx, const filter_match_event_t *ev,
                             filter_match_fn fn, void *ctx)
{
    if (!idx || !ev || !ev->resource) return 0;
    const rbucket_t *rb = find_rb(idx, ev->resource, res_hash(ev->resource));
    if (!rb) return 0;
    const char *subject = ev->subject ? ev->subject : "";
    const sbucket_t *sb = find_sb(idx, rb, subject, subj_hash(rb, subject));
    size_t n = 0;
    if (sb) n += walk(sb->head, ev, fn, ctx);
    n += walk(rb->any, ev, fn, ctx);
    return n;
}

/* ---- source prefix match ---- */

typedef struct {
    const char *scheme, *host, *path;
    size_t scheme_len, host_len, path_len;
    long port;     /* the effective port: explicit, else the scheme default, else -1 */
    int has_extra; /* a query or fragment follows the path */
} url_t;

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ieq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn) return 0;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

static int scheme_char(int c, int first)
{
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (first) return alpha;
    return alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* A path holding "." or ".." segments could name something outside the prefix it textually starts
 * with ("/org/app/../other"), so such URLs are refused rather than resolved. */
static int has_dot_segment(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '/') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.')) return 1;
        i = j;
    }
    return 0;
}

/* scheme "://" [host] [":" port] path [? query] [# fragment]. Returns 0 on success, -1 for anything
 * that is not such a URL (relative references, URNs, userinfo, an empty host, a bad port, control
 * characters or spaces, dot segments). */
static int url_parse(const char *s, url_t *u)
{
    memset(u, 0, sizeof *u);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p == 0x7f) return -1;

    size_t i = 0;
    while (scheme_char((unsigned char)s[i], i == 0))
        i++;
    if (i == 0 || strncmp(s + i, "://", 3) != 0) return -1;
    u->scheme = s;
    u->scheme_len = i;
    i += 3;

    size_t a = i;
    while (s[i] && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    size_t ae = i; /* authority is s[a, ae) */
    if (memchr(s + a, '@', ae - a)) return -1;

    size_t he; /* host end */
    if (a < ae && s[a] == '[') {
        const char *rb = memchr(s + a, ']', ae - a);
        if (!rb) return -1;
        he = (size_t)(rb - s) + 1;
        if (he < ae && s[he] != ':') return -1;
    } else {
        const char *c = memchr(s + a, ':', ae - a);
        he = c ? (size_t)(c - s) : ae;
    }
    if (he == a) return -1;
    u->host = s + a;
    u->host_len = he - a;

    u->port = -1;
    if (he < ae) { /* s[he] == ':' */
        size_t p = he + 1;
        if (p < ae) {
            long v = 0;
            for (; p < ae; p++) {
                if (s[p] < '0' || s[p] > '9') return -1;
                v = v * 10 + (s[p] - '0');
                if (v > 65535) return -1;
            }
            u->port = v;
        }
        /* "host:" with an empty port is the same as no port (RFC 3986 §6.2.3). */
    }
    if (u->port < 0) {
        if (ieq(u->scheme, u->scheme_len, "https", 5))
            u->port = 443;
        else if (ieq(u->scheme, u->scheme_len, "http", 4))
            u->port = 80;
    }

    u->path = s + ae;
    while (s[i] && s[i] != '?' && s[i] != '#')
        i++;
    u->path_len = (size_t)(s + i - u->path);
    u->has_extra = s[i] != '\0';
    if (has_dot_segment(u->path, u->path_len)) return -1;
    return 0;
}

/* A filter with a query or fragment matches nothing: "prefix" has no sensible meaning for those
 * parts, and failing closed is safer than silently ignoring part of the filter (the server refuses
 * such filters anyway). Paths are compared byte for byte: no percent-decoding, so "%2F" is never a
 * segment boundary. */
int filter_source_prefix_match(const char *filter, const char *source)
{
    if (!filter || !source) return 0;
    url_t f, s;
    if (url_parse(filter, &f) || url_parse(source, &s)) return 0;
    if (f.has_extra) return 0;
    if (!ieq(f.scheme, f.scheme_len, s.scheme, s.scheme_len)) return 0;
    if (!ieq(f.host, f.host_len, s.host, s.host_len)) return 0;
    if (f.port != s.port) return 0;

    if (f.path_len == 0 || (f.path_len == 1 && f.path[0] == '/')) return 1;
    if (s.path_len < f.path_len || memcmp(s.path, f.path, f.path_len) != 0) return 0;
    if (f.path[f.path_len - 1] == '/') return 1;
    return s.path_len == f.path_len || s.path[f.path_len] == '/';
}

/* ---- schedule ---- */

static int is_blank(int c)
{
    return c == ' ' || c == '\t';
}

/* One pass over s; writes out_us only when write is set, so a failed parse leaves out untouched. */
static int schedule_pass(const char *s, int64_t *out_us, size_t max, int write)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        while (is_blank((unsigned char)*p))
            p++;
        if (*p < '0' || *p > '9') return -1; /* empty entry, sign or junk */
        int64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            int d = *p - '0';
            if (v > (INT64_MAX - d) / 10) return -1;
            v = v * 10 + d;
            p++;
        }
        int64_t mult;
        if (p[0] == 'm' && p[1] == 's') {
            mult = 1000;
            p += 2;
        } else if (*p == 's') {
            mult = 1000000;
            p++;
        } else if (*p == 'm') {
            mult = 60 * INT64_C(1000000);
            p++;
        } else if (*p == 'h') {
            mult = 3600 * INT64_C(1000000);
            p++;
        } else if (*p == 'd') {
            mult = 86400 * INT64_C(1000000);
            p++;
        } else {
            mult = 1000000; /* a bare integer is seconds */
        }
        if (v == 0 || v > INT64_MAX / mult) return -1;
        if (n >= max) return -1;
        if (write) out_us[n] = v * mult;
        n++;
        while (is_blank((unsigned char)*p))
            p++;
        if (*p == '\0') break;
        if (*p != ',') return -1; /* a compound "1h30m", a unit typo, or a space inside */
        p++;
    }
    HND_CHECK(n <= INT_MAX);
    return (int)n;
}

/* Each entry is one integer with one optional unit; compound entries ("1h30m") are refused so a
 * typo is never read as something else. */
int filter_schedule_parse(const char *s, int64_t *out_us, size_t max)
{
    if (!s || (max && !out_us)) return -1;
    if (max > INT_MAX) max = INT_MAX;
    int n = schedule_pass(s, out_us, max, 0);
    if (n < 0) return -1;
    return schedule_pass(s, out_us, max, 1);
}
