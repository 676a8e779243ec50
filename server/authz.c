/* server/authz: policy file loading, glob compilation, rule index and decisions. See authz.h. */
#include "server/authz.h"
#include "server/fileutil.h"

#include "filter/json.h"
#include "filter/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POLICY_BYTES ((size_t)16 << 20)
#define NACTIONS 3
#define NO_RULE UINT32_MAX
#define PLACEHOLDER "{consumer}"
#define PLACEHOLDER_LEN (sizeof PLACEHOLDER - 1)

/* ---- compiled globs ----
 *
 * A glob is split at its '*'s into segments: segs[0] must match at the start of the text,
 * segs[nseg-1] at its end, and the ones in between are found left to right, each at its leftmost
 * occurrence after the previous one. Taking the leftmost occurrence is always safe for '*'-only
 * globs (a later occurrence leaves less room for the rest), so matching never backtracks and costs
 * one pass of memmem per segment whatever the pattern looks like.
 *
 * A segment is a list of pieces so that a subject glob can hold "{consumer}" placeholders, which
 * are only known at check time; resource and consumer globs have at most one literal piece per
 * segment. */

typedef struct {
    const char *lit; /* NULL for the {consumer} placeholder */
    size_t len;
} piece_t;

typedef struct {
    const piece_t *pieces;
    size_t npieces;
    size_t litlen; /* literal bytes in the segment */
    size_t ncons;  /* placeholders in the segment */
} seg_t;

typedef struct {
    char *text; /* the pattern as written; pieces point into it */
    size_t len;
    seg_t *segs;
    size_t nseg; /* number of '*' plus one */
    piece_t *pieces;
} pattern_t;

static void pattern_fini(pattern_t *p)
{
    free(p->text);
    free(p->segs);
    free(p->pieces);
    memset(p, 0, sizeof *p);
}

/* Compiles s[0..len) (no NUL inside). With placeholders set, "{consumer}" becomes a placeholder
 * piece. Returns 0, or -1 when out of memory (p is then left empty). */
static int pattern_compile(pattern_t *p, const char *s, size_t len, int placeholders)
{
    memset(p, 0, sizeof *p);
    size_t nseg = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '*') nseg++;
    p->text = malloc(len + 1);
    p->segs = calloc(nseg, sizeof *p->segs);
    /* Every piece is a non-empty literal or a placeholder, both at least one byte of pattern. */
    p->pieces = calloc(len + 1, sizeof *p->pieces);
    if (!p->text || !p->segs || !p->pieces) {
        pattern_fini(p);
        return -1;
    }
    memcpy(p->text, s, len);
    p->text[len] = '\0';
    p->len = len;
    p->nseg = nseg;

    size_t np = 0, b = 0;
    for (size_t k = 0; k < nseg; k++) {
        size_t e = b;
        while (e < len && p->text[e] != '*')
            e++;
        seg_t *sg = &p->segs[k];
        sg->pieces = &p->pieces[np];
        const char *cur = p->text + b, *end = p->text + e;
        while (cur < end) {
            const char *q = placeholders
                                ? memmem(cur, (size_t)(end - cur), PLACEHOLDER, PLACEHOLDER_LEN)
                                : NULL;
            const char *litend = q ? q : end;
            if (litend > cur) {
                p->pieces[np++] = (piece_t){cur, (size_t)(litend - cur)};
                sg->litlen += (size_t)(litend - cur);
            }
            if (!q) break;
            p->pieces[np++] = (piece_t){NULL, 0};
            sg->ncons++;
            cur = q + PLACEHOLDER_LEN;
        }
        sg->npieces = (size_t)(&p->pieces[np] - sg->pieces);
        b = e + 1;
    }
    return 0;
}

static size_t seg_len(const seg_t *sg, size_t idlen)
{
    return sg->litlen + sg->ncons * idlen;
}

/* Whether the segment equals s[0..seg_len) (the caller guarantees that many bytes). */
static int seg_eq(const seg_t *sg, const char *s, const char *id, size_t idlen)
{
    for (size_t i = 0; i < sg->npieces; i++) {
        const piece_t *pc = &sg->pieces[i];
        const char *want = pc->lit ? pc->lit : id;
        size_t n = pc->lit ? pc->len : idlen;
        if (memcmp(s, want, n) != 0) return 0;
        s += n;
    }
    return 1;
}

/* The leftmost occurrence of a non-empty segment in s[0..n), or NULL. */
static const char *seg_find(const seg_t *sg, const char *s, size_t n, const char *id, size_t idlen)
{
    size_t L = seg_len(sg, idlen);
    if (L > n) return NULL;
    if (sg->ncons == 0) return memmem(s, n, sg->pieces[0].lit, sg->pieces[0].len);
    /* Placeholder segments only occur in subject globs, whose texts are short: a plain scan. */
    for (size_t i = 0; i + L <= n; i++)
        if (seg_eq(sg, s + i, id, idlen)) return s + i;
    return NULL;
}

static int pattern_match(const pattern_t *p, const char *s, size_t n, const char *id, size_t idlen)
{
    const seg_t *head = &p->segs[0];
    size_t hl = seg_len(head, idlen);
    if (p->nseg == 1) return hl == n && seg_eq(head, s, id, idlen);
    const seg_t *tail = &p->segs[p->nseg - 1];
    size_t tl = seg_len(tail, idlen);
    if (hl > n || tl > n - hl) return 0;
    if (!seg_eq(head, s, id, idlen) || !seg_eq(tail, s + n - tl, id, idlen)) return 0;
    const char *cur = s + hl, *end = s + n - tl;
    for (size_t k = 1; k + 1 < p->nseg; k++) {
        const seg_t *sg = &p->segs[k];
        size_t L = seg_len(sg, idlen);
        if (L == 0) continue; /* "**" */
        const char *f = seg_find(sg, cur, (size_t)(end - cur), id, idlen);
        if (!f) return 0;
        cur = f + L;
    }
    return 1;
}

/* ---- rules and the index ----
 *
 * Each action has its own index. A rule is filed under exactly one key: the exact text or the
 * literal prefix (before the first '*') of either its resource glob (dimension 0) or its consumer
 * glob (dimension 1), whichever key fewer rules share, so that neither "1,000 rules on one
 * resource" nor "1,000 rules for one consumer" degenerates into a scan. Rules whose two globs both
 * start with '*' go to a wildcard list. A check looks up every key the request's resource and
 * consumer could match (the exact text and each indexed prefix length), and each list is in rule
 * order, so the lowest-numbered matching rule across the lists is exactly the first match. */

enum { DIM_RESOURCE = 0, DIM_CONSUMER = 1, NDIMS = 2 };

typedef struct {
    uint8_t actions; /* bit (1 << action) */
    uint8_t permit;
    uint8_t has_subject;
    pattern_t resource, consumer, subject;
} rule_t;

typedef struct {
    int used;
    uint8_t dim, exact;
    uint64_t h;
    const char *key; /* into a rule's pattern text */
    size_t len;
    uint32_t sharers; /* rules that could be filed here (load only) */
    uint32_t *ids;    /* rules filed here, ascending */
    uint32_t n, cap;
} entry_t;

typedef struct {
    entry_t *tab;
    size_t mask;
    uint32_t *wild; /* ascending */
    uint32_t nwild;
    uint8_t *plen[NDIMS]; /* plen[d][L]: some prefix key of length L has rules */
    size_t maxplen[NDIMS];
    int has_exact[NDIMS];
    uint32_t min_id[NDIMS]; /* lowest rule filed in the dimension; NO_RULE if none */
} index_t;

struct srv_authz {
    rule_t *rules;
    size_t nrules;
    index_t idx[NACTIONS];
};

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

/* FNV-1a, so that the hash of every prefix falls out of one pass over the request text. */
static uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = fnv_step(h, (unsigned char)s[i]);
    return h;
}

static size_t slot_of(const index_t *ix, uint64_t h, unsigned dim, unsigned exact)
{
    uint64_t x = h ^ ((uint64_t)(dim * 2 + exact + 1) * 0x9E3779B97F4A7C15ULL);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & ix->mask;
}

static entry_t *lookup(const index_t *ix, unsigned dim, unsigned exact, uint64_t h, const char *s,
                       size_t n)
{
    for (size_t i = slot_of(ix, h, dim, exact);; i = (i + 1) & ix->mask) {
        entry_t *e = &ix->tab[i];
        if (!e->used) return NULL;
        if (e->h == h && e->dim == dim && e->exact == exact && e->len == n &&
            memcmp(e->key, s, n) == 0)
            return e;
    }
}

/* The table has at least twice as many slots as keys can exist, so there is always a free one. */
static entry_t *lookup_or_add(index_t *ix, unsigned dim, unsigned exact, const char *s, size_t n)
{
    uint64_t h = fnv(s, n);
    size_t i = slot_of(ix, h, dim, exact);
    for (;; i = (i + 1) & ix->mask) {
        entry_t *e = &ix->tab[i];
        if (!e->used) break;
        if (e->h == h && e->dim == dim && e->exact == exact && e->len == n &&
            memcmp(e->key, s, n) == 0)
            return e;
    }
    entry_t *e = &ix->tab[i];
    e->used = 1;
    e->dim = (uint8_t)dim;
    e->exact = (uint8_t)exact;
    e->h = h;
    e->key = s;
    e->len = n;
    return e;
}

/* The key a rule can be filed under in dimension dim; 0 if the glob starts with '*'. */
static int rule_key(const rule_t *r, unsigned dim, const char **key, size_t *len, unsigned *exact)
{
    const pattern_t *p = dim == DIM_RESOURCE ? &r->resource : &r->consumer;
    *key = p->text;
    *exact = p->nseg == 1;
    *len = *exact ? p->len : p->segs[0].litlen;
    return *exact || *len > 0;
}

static int push_id(uint32_t **ids, uint32_t *n, uint32_t *cap, uint32_t id)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 4;
        uint32_t *p = realloc(*ids, nc * sizeof *p);
        if (!p) return -1;
        *ids = p;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

static void index_fini(index_t *ix)
{
    if (ix->tab)
        for (size_t i = 0; i <= ix->mask; i++)
            free(ix->tab[i].ids);
    free(ix->tab);
    free(ix->wild);
    for (int d = 0; d < NDIMS; d++)
        free(ix->plen[d]);
    memset(ix, 0, sizeof *ix);
}

static int index_build(index_t *ix, const rule_t *rules, size_t nrules, unsigned action)
{
    size_t cap = 4;
    while (cap < 4 * nrules + 4)
        cap *= 2;
    ix->tab = calloc(cap, sizeof *ix->tab);
    if (!ix->tab) return -1;
    ix->mask = cap - 1;
    uint8_t bit = (uint8_t)(1u << action);

    /* Pass 1: how many rules share each candidate key. */
    for (size_t r = 0; r < nrules; r++) {
        if (!(rules[r].actions & bit)) continue;
        for (unsigned d = 0; d < NDIMS; d++) {
            const char *k;
            size_t kl;
            unsigned ex;
            if (rule_key(&rules[r], d, &k, &kl, &ex)) lookup_or_add(ix, d, ex, k, kl)->sharers++;
        }
    }
    /* Pass 2: file each rule under its less shared key (ties: exact keys, then the resource). */
    uint32_t nwcap = 0;
    for (size_t r = 0; r < nrules; r++) {
        if (!(rules[r].actions & bit)) continue;
        entry_t *best = NULL;
        for (unsigned d = 0; d < NDIMS; d++) {
            const char *k;
            size_t kl;
            unsigned ex;
            if (!rule_key(&rules[r], d, &k, &kl, &ex)) continue;
            entry_t *e = lookup_or_add(ix, d, ex, k, kl);
            if (!best || e->sharers < best->sharers ||
                (e->sharers == best->sharers && e->exact > best->exact))
                best = e;
        }
        int rc = best ? push_id(&best->ids, &best->n, &best->cap, (uint32_t)r)
                      : push_id(&ix->wild, &ix->nwild, &nwcap, (uint32_t)r);
        if (rc) return -1;
    }
    /* Which prefix lengths a check has to look up, per dimension. */
    for (int d = 0; d < NDIMS; d++)
        ix->min_id[d] = NO_RULE;
    for (size_t i = 0; i <= ix->mask; i++) {
        const entry_t *e = &ix->tab[i];
        if (!e->used || !e->n) continue;
        if (e->ids[0] < ix->min_id[e->dim]) ix->min_id[e->dim] = e->ids[0];
        if (e->exact)
            ix->has_exact[e->dim] = 1;
        else if (e->len > ix->maxplen[e->dim])
            ix->maxplen[e->dim] = e->len;
    }
    for (int d = 0; d < NDIMS; d++) {
        if (!ix->maxplen[d]) continue;
        ix->plen[d] = calloc(ix->maxplen[d] + 1, 1);
        if (!ix->plen[d]) return -1;
    }
    for (size_t i = 0; i <= ix->mask; i++) {
        const entry_t *e = &ix->tab[i];
        if (e->used && e->n && !e->exact) ix->plen[e->dim][e->len] = 1;
    }
    return 0;
}

/* ---- decisions ---- */

typedef struct {
    const rule_t *rules;
    const char *res, *cons, *subj, *id;
    size_t rlen, clen, slen, idlen;
    uint32_t best;
} query_t;

static int rule_matches(const rule_t *r, const query_t *q)
{
    if (r->has_subject && !q->subj) return 0;
    if (!pattern_match(&r->resource, q->res, q->rlen, NULL, 0)) return 0;
    if (!pattern_match(&r->consumer, q->cons, q->clen, NULL, 0)) return 0;
    if (r->has_subject && !pattern_match(&r->subject, q->subj, q->slen, q->id, q->idlen)) return 0;
    return 1;
}

/* Lowers q->best to the first matching rule of an ascending list, if it comes before q->best. */
static void scan(query_t *q, const uint32_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n && ids[i] < q->best; i++) {
        if (rule_matches(&q->rules[ids[i]], q)) {
            q->best = ids[i];
            return;
        }
    }
}

static void probe_dim(const index_t *ix, unsigned dim, const char *s, size_t n, query_t *q)
{
    size_t maxp = ix->maxplen[dim];
    /* Nothing filed here can come before a rule that already matched (e.g. a leading deny-all). */
    if (q->best <= ix->min_id[dim]) return;
    uint64_t h = FNV_OFFSET;
    size_t L = 0;
    while (L < n) {
        h = fnv_step(h, (unsigned char)s[L]);
        L++;
        if (L <= maxp && ix->plen[dim][L]) {
            const entry_t *e = lookup(ix, dim, 0, h, s, L);
            if (e) scan(q, e->ids, e->n);
        }
        if (L >= maxp && !ix->has_exact[dim]) return;
    }
    if (ix->has_exact[dim]) {
        const entry_t *e = lookup(ix, dim, 1, h, s, n);
        if (e) scan(q, e->ids, e->n);
    }
}

int srv_authz_check(const srv_authz_t *a, srv_authz_action_t action, const char *resource,
                    const char *consumer, const char *subject)
{
    if (!a) return 1;
    HND_CHECK((unsigned)action < NACTIONS);
    query_t q;
    q.rules = a->rules;
    q.res = resource ? resource : "";
    q.cons = consumer ? consumer : "";
    q.subj = subject;
    q.rlen = strlen(q.res);
    q.clen = strlen(q.cons);
    q.slen = subject ? strlen(subject) : 0;
    const char *slash = strrchr(q.cons, '/');
    q.id = slash ? slash + 1 : q.cons;
    q.idlen = q.clen - (size_t)(q.id - q.cons);
    q.best = NO_RULE;

    const index_t *ix = &a->idx[action];
    scan(&q, ix->wild, ix->nwild);
    probe_dim(ix, DIM_RESOURCE, q.res, q.rlen, &q);
    probe_dim(ix, DIM_CONSUMER, q.cons, q.clen, &q);
    return q.best != NO_RULE && a->rules[q.best].permit;
}

size_t srv_authz_rule_count(const srv_authz_t *a)
{
    return a ? a->nrules : 0;
}

void srv_authz_free(srv_authz_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->nrules; i++) {
        pattern_fini(&a->rules[i].resource);
        pattern_fini(&a->rules[i].consumer);
        pattern_fini(&a->rules[i].subject);
    }
    free(a->rules);
    for (int k = 0; k < NACTIONS; k++)
        index_fini(&a->idx[k]);
    free(a);
}

/* ---- loading ---- */

static const char *const action_names[NACTIONS] = {"publish", "subscribe", "read"};

/* Checks one string-valued glob member; returns 0 or -1 with err set. */
static int glob_member(const filter_json_t *v, const char *name, const char *path, size_t rn,
                       char *err, size_t errlen)
{
    if (v->type != FILTER_JSON_STRING) {
        srv_set_err(err, errlen, "%s: rule %zu: '%s' must be a string", path, rn, name);
        return -1;
    }
    if (memchr(v->str, '\0', v->len)) {
        srv_set_err(err, errlen, "%s: rule %zu: '%s' contains a NUL character", path, rn, name);
        return -1;
    }
    return 0;
}

static int compile_rule(rule_t *r, const filter_json_t *o, const char *path, size_t rn, char *err,
                        size_t errlen)
{
    if (o->type != FILTER_JSON_OBJECT) {
        srv_set_err(err, errlen, "%s: rule %zu: must be an object", path, rn);
        return -1;
    }
    const filter_json_t *effect = NULL, *actions = NULL, *res = NULL, *cons = NULL, *subj = NULL;
    for (size_t i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        size_t kl = o->key_lens[i];
        const filter_json_t *v = o->items[i];
        if (kl == 6 && !memcmp(k, "effect", 6))
            effect = v;
        else if (kl == 7 && !memcmp(k, "actions", 7))
            actions = v;
        else if (kl == 8 && !memcmp(k, "resource", 8))
            res = v;
        else if (kl == 8 && !memcmp(k, "consumer", 8))
            cons = v;
        else if (kl == 7 && !memcmp(k, "subject", 7))
            subj = v;
        else {
            char pk[64];
            srv_printable(pk, sizeof pk, k, kl);
            srv_set_err(
                err, errlen,
                "%s: rule %zu: unknown key '%s' (expected effect, actions, resource, consumer, "
                "subject)",
                path, rn, pk);
            return -1;
        }
    }
    static const char *const required[] = {"effect", "actions", "resource", "consumer"};
    const filter_json_t *present[] = {effect, actions, res, cons};
    for (size_t i = 0; i < 4; i++) {
        if (!present[i]) {
            srv_set_err(err, errlen, "%s: rule %zu: missing '%s'", path, rn, required[i]);
            return -1;
        }
    }
    if (effect->type == FILTER_JSON_STRING && !strcmp(effect->str, "permit") && effect->len == 6)
        r->permit = 1;
    else if (effect->type == FILTER_JSON_STRING && !strcmp(effect->str, "deny") && effect->len == 4)
        r->permit = 0;
    else {
        srv_set_err(err, errlen, "%s: rule %zu: 'effect' must be \"permit\" or \"deny\"", path, rn);
        return -1;
    }
    if (actions->type != FILTER_JSON_ARRAY || actions->count == 0) {
        srv_set_err(
            err, errlen,
            "%s: rule %zu: 'actions' must be a non-empty array of \"publish\", \"subscribe\", "
            "\"read\"",
            path, rn);
        return -1;
    }
    for (size_t i = 0; i < actions->count; i++) {
        const filter_json_t *v = actions->items[i];
        if (v->type != FILTER_JSON_STRING) {
            srv_set_err(err, errlen, "%s: rule %zu: 'actions' item %zu must be a string", path, rn,
                        i + 1);
            return -1;
        }
        int found = -1;
        for (int k = 0; k < NACTIONS; k++)
            if (v->len == strlen(action_names[k]) && !memcmp(v->str, action_names[k], v->len))
                found = k;
        if (found < 0) {
            char pv[64];
            srv_printable(pv, sizeof pv, v->str, v->len);
            srv_set_err(err, errlen,
                        "%s: rule %zu: unknown action '%s' (expected \"publish\", \"subscribe\" or "
                        "\"read\")",
                        path, rn, pv);
            return -1;
        }
        r->actions |= (uint8_t)(1u << found);
    }
    if (glob_member(res, "resource", path, rn, err, errlen) ||
        glob_member(cons, "consumer", path, rn, err, errlen) ||
        (subj && glob_member(subj, "subject", path, rn, err, errlen)))
        return -1;
    if (pattern_compile(&r->resource, res->str, res->len, 0) ||
        pattern_compile(&r->consumer, cons->str, cons->len, 0) ||
        (subj && pattern_compile(&r->subject, subj->str, subj->len, 1))) {
        srv_set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r->has_subject = subj != NULL;
    return 0;
}

srv_authz_t *srv_authz_load(const char *path, char *err, size_t errlen)
{
    const filter_json_t *rules = NULL;
    filter_json_doc_t *doc =
        srv_read_json_list(path, MAX_POLICY_BYTES, "rules", &rules, err, errlen);
    if (!doc) return NULL;

    srv_authz_t *a = calloc(1, sizeof *a);
    if (!a) {
        srv_set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (rules->count >= NO_RULE) {
        srv_set_err(err, errlen, "%s: too many rules", path);
        goto fail;
    }
    a->rules = calloc(rules->count ? rules->count : 1, sizeof *a->rules);
    if (!a->rules) {
        srv_set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < rules->count; i++) {
        a->nrules = i + 1; /* so that srv_authz_free releases a half-compiled rule */
        if (compile_rule(&a->rules[i], rules->items[i], path, i + 1, err, errlen)) goto fail;
    }
    a->nrules = rules->count;
    for (unsigned k = 0; k < NACTIONS; k++) {
        if (index_build(&a->idx[k], a->rules, a->nrules, k)) {
            srv_set_err(err, errlen, "%s: out of memory", path);
            goto fail;
        }
    }
    filter_json_doc_free(doc);
    return a;

fail:
    filter_json_doc_free(doc);
    srv_authz_free(a);
    return NULL;
}
