/* server/subs: the subscriptions API (api.md §4) and the registry behind it.
 *
 * A create or delete is checked at once, recorded in the subscription batch and answered after the
 * group commit that makes it durable (srv_subs_finish); only then does it enter, or leave, the
 * match index and the delivery engine, in that same loop pass. */
#include "server/subs.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "filter/cesql.h"
#include "filter/dialect.h"
#include "filter/event.h"
#include "filter/json.h"
#include "filter/subindex.h"
#include "filter/text.h"
#include "filter/util.h"
#include "server/audit.h"
#include "server/authz.h"
#include "server/intern.h"
#include "server/log.h"
#include "server/register.h"
#include "server/server.h"
#include "webhook/webhook.h"

#define APPS_DOMAIN "apps.altinn.no"
#define APP_RESOURCE_PREFIX "urn:altinn:resource:app_"

/* The strings of a subscription (NULL when absent). */
typedef struct {
    const char *endpoint, *resource, *subject, *type, *source, *altsubject, *consumer, *created_by,
        *created, *secret, *filters_json;
} sub_fields_t;

#define N_FIELDS 11

struct srv_sub {
    uint64_t id;
    const char *consumer;           /* interned in srv_subs.names (NULL when absent) */
    const char *created_by;         /* interned */
    struct filter_dialect *filters; /* the compiled "filters" extension, or NULL */
    /* A copy of every field (one allocation) while the create waits for its commit; NULL once it
     * is stored: the store's record is then the one copy of the strings. */
    sub_fields_t *pending;
    struct srv_sub *dedupe_next;
    uint32_t dhash;        /* dedupe_hash of its identity */
    uint32_t refs : 24;    /* waiting requests (creates and dedupe hits) that point at it */
    uint32_t mode : 2;     /* contentMode: webhook_mode_t */
    uint32_t disabled : 1; /* a delivery got 410 Gone: no more deliveries until posted again */
    uint32_t validated : 1;
    uint32_t include_subunits : 1;
    uint32_t deleting : 1;  /* a delete is waiting for its commit */
    uint32_t committed : 1; /* stored: visible to matching (a create waits for its commit) */
    uint32_t
        failed : 1; /* its create failed to commit: freed when no waiting request points at it */
};

#define MAX_REFS ((1u << 24) - 1)

struct srv_subs {
    srv_sub_t **all; /* by id, ascending (ids only grow) */
    size_t n, cap;
    srv_sub_t **dedupe; /* buckets of chains through dedupe_next; dcap is a power of two */
    size_t dcap;
    srv_intern_t *names; /* consumers and creators */
    filter_subindex_t *index;
    store_batch_t *batch; /* subscription writes for the next commit */
    uint64_t *match_ids;
    size_t match_cap, n_match;
};

/* ---- the record ---- */

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char **field_slot(sub_fields_t *f, size_t i)
{
    const char **slots[N_FIELDS] = {&f->endpoint, &f->resource,   &f->subject,     &f->type,
                                    &f->source,   &f->altsubject, &f->consumer,    &f->created_by,
                                    &f->created,  &f->secret,     &f->filters_json};
    return slots[i];
}

/* A copy of f whose strings live in the same allocation. NULL on ENOMEM. */
static sub_fields_t *fields_copy(const sub_fields_t *f)
{
    size_t total = sizeof(sub_fields_t);
    sub_fields_t src = *f, *c;
    char *p;
    for (size_t i = 0; i < N_FIELDS; i++)
        total += slen(*field_slot(&src, i));
    c = calloc(1, total);
    if (!c) return NULL;
    p = (char *)(c + 1);
    for (size_t i = 0; i < N_FIELDS; i++) {
        const char *v = *field_slot(&src, i);
        if (!v) continue;
        size_t l = strlen(v) + 1;
        memcpy(p, v, l);
        *field_slot(c, i) = p;
        p += l;
    }
    return c;
}

static uint64_t mix(uint64_t h, const char *s)
{
    /* FNV-1a over the string and a separator, so ("a","bc") and ("ab","c") differ */
    if (s)
        for (; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

/* The identity of a subscription for dedupe (api.md §4 step 10). */
static uint32_t dedupe_hash(const sub_fields_t *f, int include_subunits, int mode)
{
    uint64_t h = 14695981039346656037ULL;
    h = mix(h, f->resource);
    h = mix(h, f->source);
    h = mix(h, f->subject);
    h = mix(h, f->type);
    h = mix(h, f->consumer);
    h = mix(h, f->endpoint);
    h = mix(h, f->filters_json);
    h = mix(h, f->secret);
    h ^= (uint64_t)include_subunits ^ ((uint64_t)mode << 1);
    return (uint32_t)(h ^ (h >> 32));
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_fields(const sub_fields_t *a, const sub_fields_t *b)
{
    return str_eq(a->resource, b->resource) && str_eq(a->source, b->source) &&
           str_eq(a->subject, b->subject) && str_eq(a->type, b->type) &&
           str_eq(a->consumer, b->consumer) && str_eq(a->endpoint, b->endpoint) &&
           str_eq(a->filters_json, b->filters_json) && str_eq(a->secret, b->secret);
}

static const char *const mode_names[] = {"structured", "cloudevents", "binary"};

/* Builds a subscription (flags zero, not in the registry) for fields f: interns its consumer and
 * creator, compiles its filters, and with keep set keeps a copy of f until its commit. */
static srv_sub_t *sub_new(srv_subs_t *r, uint64_t id, const sub_fields_t *f, int include_subunits,
                          int mode, int keep)
{
    srv_sub_t *sub = calloc(1, sizeof *sub);
    char err[200];
    if (!sub) return NULL;
    sub->id = id;
    sub->include_subunits = include_subunits ? 1 : 0;
    sub->mode = (uint32_t)mode;
    sub->dhash = dedupe_hash(f, include_subunits, mode);
    sub->consumer = srv_intern_get(r->names, f->consumer);
    sub->created_by = srv_intern_get(r->names, f->created_by);
    if ((f->consumer && !sub->consumer) || (f->created_by && !sub->created_by)) goto fail;
    if (keep && !(sub->pending = fields_copy(f))) goto fail;
    if (f->filters_json) {
        filter_json_doc_t *doc;
        int rc;
        if (filter_json_parse(f->filters_json, strlen(f->filters_json), NULL, &doc, err,
                              sizeof err) != 0)
            goto fail;
        rc = filter_dialect_compile(filter_json_root(doc), &sub->filters, err, sizeof err);
        filter_json_doc_free(doc);
        if (rc != 0) goto fail;
    }
    return sub;
fail:
    srv_intern_put(r->names, sub->consumer);
    srv_intern_put(r->names, sub->created_by);
    free(sub->pending);
    free(sub);
    return NULL;
}

static void sub_free(srv_subs_t *r, srv_sub_t *sub)
{
    if (!sub) return;
    filter_dialect_free(sub->filters);
    srv_intern_put(r->names, sub->consumer);
    srv_intern_put(r->names, sub->created_by);
    free(sub->pending);
    free(sub);
}

static void put_str(filter_buf_t *b, const char *key, const char *v)
{
    if (!v) return;
    filter_buf_printf(b, ",\"%s\":", key);
    if (filter_buf_json_string(b, v, strlen(v)) != 0) filter_buf_puts(b, "\"\"");
}

/* The JSON of a subscription (its strings f, its flags sub): what GET answers (with_secret 0), and
 * what the store keeps (1). */
static void sub_json(filter_buf_t *b, const srv_sub_t *sub, const sub_fields_t *f, int with_secret)
{
    filter_buf_printf(b, "{\"id\":%llu", (unsigned long long)sub->id);
    put_str(b, "endPoint", f->endpoint);
    put_str(b, "resourceFilter", f->resource);
    put_str(b, "subjectFilter", f->subject);
    put_str(b, "typeFilter", f->type);
    put_str(b, "sourceFilter", f->source);
    put_str(b, "alternativeSubjectFilter", f->altsubject);
    put_str(b, "consumer", f->consumer);
    put_str(b, "createdBy", f->created_by);
    put_str(b, "created", f->created);
    filter_buf_printf(b, ",\"validated\":%s,\"includeSubunits\":%s",
                      sub->validated ? "true" : "false", sub->include_subunits ? "true" : "false");
    if (f->filters_json) {
        filter_buf_puts(b, ",\"filters\":");
        filter_buf_puts(b, f->filters_json);
    }
    if (sub->mode) filter_buf_printf(b, ",\"contentMode\":\"%s\"", mode_names[sub->mode]);
    if (sub->disabled) filter_buf_puts(b, ",\"disabled\":true");
    if (with_secret) put_str(b, "signingSecret", f->secret);
    filter_buf_puts(b, "}");
}

static const char *jstr(const filter_json_t *obj, const char *name)
{
    const filter_json_t *v = filter_json_get(obj, name);
    return v && v->type == FILTER_JSON_STRING ? v->str : NULL;
}

static int jtrue(const filter_json_t *obj, const char *name)
{
    const filter_json_t *v = filter_json_get(obj, name);
    return v && v->type == FILTER_JSON_TRUE;
}

/* A stored record, parsed: f points into doc and fj (rec_fini frees them). */
typedef struct {
    filter_json_doc_t *doc;
    filter_buf_t fj;
    sub_fields_t f;
    int validated, include_subunits, disabled, mode;
    int rc; /* of the store_get_sub callback */
} rec_t;

static void rec_fini(rec_t *r)
{
    filter_buf_fini(&r->fj);
    filter_json_doc_free(r->doc);
    r->doc = NULL;
}

/* Parses a stored record into r (zeroed by the caller). 0, or -1 (rec_fini still needed). */
static int rec_parse(rec_t *r, const void *rec, size_t len)
{
    const filter_json_t *o, *f;
    const char *m;
    if (filter_json_parse(rec, len, NULL, &r->doc, NULL, 0) != 0) return -1;
    o = filter_json_root(r->doc);
    if (o->type != FILTER_JSON_OBJECT || !jstr(o, "endPoint") || !jstr(o, "resourceFilter"))
        return -1;
    f = filter_json_get(o, "filters");
    if (f) filter_buf_json_value(&r->fj, f);
    if (filter_buf_failed(&r->fj)) return -1;
    r->f = (sub_fields_t){
        jstr(o, "endPoint"),      jstr(o, "resourceFilter"), jstr(o, "subjectFilter"),
        jstr(o, "typeFilter"),    jstr(o, "sourceFilter"),   jstr(o, "alternativeSubjectFilter"),
        jstr(o, "consumer"),      jstr(o, "createdBy"),      jstr(o, "created"),
        jstr(o, "signingSecret"), f ? r->fj.data : NULL};
    r->validated = jtrue(o, "validated");
    r->include_subunits = jtrue(o, "includeSubunits");
    r->disabled = jtrue(o, "disabled");
    m = jstr(o, "contentMode");
    for (int i = 0; m && i < 3; i++)
        if (strcmp(m, mode_names[i]) == 0) r->mode = i;
    return 0;
}

static int on_rec(void *ctx, uint64_t id, const void *rec, size_t len)
{
    rec_t *r = ctx;
    (void)id;
    r->rc = rec_parse(r, rec, len);
    return STORE_SCAN_STOP;
}

/* The strings of sub into r->f: its pending copy, or else its stored record read back (the strings
 * of a subscription never change after its create, only its flags, which are in memory). 0, or -1
 * (logged); rec_fini(r) is needed in both cases. */
static int sub_fields(srv_t *s, const srv_sub_t *sub, rec_t *r)
{
    int rc;
    memset(r, 0, sizeof *r);
    if (sub->pending) {
        r->f = *sub->pending;
        return 0;
    }
    r->rc = -1;
    rc = store_get_sub(s->store, sub->id, on_rec, r);
    if (rc != 0 || r->rc != 0) {
        srv_log(SRV_LOG_ERROR, "subs", "cannot read stored subscription id=%llu error=\"%s\"",
                (unsigned long long)sub->id, rc ? store_strerror(rc) : "does not decode");
        return -1;
    }
    return 0;
}

/* ---- the registry ---- */

static int dedupe_grow(srv_subs_t *r)
{
    size_t ncap = r->dcap ? r->dcap * 2 : 1024;
    srv_sub_t **nb = calloc(ncap, sizeof *nb);
    if (!nb) return -1;
    for (size_t i = 0; i < r->dcap; i++) {
        srv_sub_t *s = r->dedupe[i], *next;
        for (; s; s = next) {
            size_t k = s->dhash & (ncap - 1);
            next = s->dedupe_next;
            s->dedupe_next = nb[k];
            nb[k] = s;
        }
    }
    free(r->dedupe);
    r->dedupe = nb;
    r->dcap = ncap;
    return 0;
}

/* The live subscription with the identity f (hash h, flags include_subunits and mode), or NULL.
 * Candidates with the same hash are confirmed field by field (stored ones read back). */
static srv_sub_t *dedupe_find(srv_t *s, const sub_fields_t *f, uint32_t h, int include_subunits,
                              int mode)
{
    const srv_subs_t *r = s->subs;
    if (!r->dcap) return NULL;
    for (srv_sub_t *c = r->dedupe[h & (r->dcap - 1)]; c; c = c->dedupe_next) {
        rec_t rec;
        int same;
        if (c->dhash != h || c->deleting || c->include_subunits != (unsigned)!!include_subunits ||
            c->mode != (unsigned)mode)
            continue;
        same = sub_fields(s, c, &rec) == 0 && same_fields(&rec.f, f);
        rec_fini(&rec);
        if (same) return c;
    }
    return NULL;
}

static long find_pos(const srv_subs_t *r, uint64_t id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->all[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->n && r->all[lo]->id == id ? (long)lo : -1;
}

static srv_sub_t *reg_get(const srv_subs_t *r, uint64_t id)
{
    long pos = find_pos(r, id);
    return pos < 0 ? NULL : r->all[pos];
}

/* Adds sub (its id above every other id) to the list and the dedupe table (chains of about one:
 * the hash is compared before any string). */
static int reg_add(srv_subs_t *r, srv_sub_t *sub)
{
    size_t k;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        srv_sub_t **a = realloc(r->all, cap * sizeof *a);
        if (!a) return -1;
        r->all = a;
        r->cap = cap;
    }
    if (r->n + 1 > r->dcap && dedupe_grow(r) != 0) return -1;
    HND_CHECK(r->n == 0 || r->all[r->n - 1]->id < sub->id);
    r->all[r->n++] = sub;
    k = sub->dhash & (r->dcap - 1);
    sub->dedupe_next = r->dedupe[k];
    r->dedupe[k] = sub;
    return 0;
}

static void reg_remove(srv_subs_t *r, srv_sub_t *sub)
{
    long pos = find_pos(r, sub->id);
    srv_sub_t **pp;
    if (pos >= 0) {
        memmove(&r->all[pos], &r->all[pos + 1], (r->n - (size_t)pos - 1) * sizeof *r->all);
        r->n--;
    }
    for (pp = &r->dedupe[sub->dhash & (r->dcap - 1)]; *pp; pp = &(*pp)->dedupe_next)
        if (*pp == sub) {
            *pp = sub->dedupe_next;
            break;
        }
}

/* Decodes a signing secret "whsec_" + base64 of 24..64 bytes into key; returns its length or -1. */
static int secret_decode(const char *secret, unsigned char key[64])
{
    unsigned char tmp[100];
    size_t n, pad = 0;
    int len;
    if (!secret || strncmp(secret, "whsec_", 6) != 0) return -1;
    secret += 6;
    n = strlen(secret);
    if (n == 0 || n % 4 != 0 || n > 88 || !filter_base64_valid(secret, n)) return -1;
    if (secret[n - 1] == '=') pad++;
    if (secret[n - 2] == '=') pad++;
    len = EVP_DecodeBlock(tmp, (const unsigned char *)secret, (int)n);
    if (len < 0) return -1;
    len -= (int)pad;
    if (len < 24 || len > 64) return -1;
    memcpy(key, tmp, (size_t)len);
    return len;
}

/* Makes a stored subscription live (its strings f): match index and delivery engine, which keep
 * their own copies of what they need. */
static int activate(srv_t *s, srv_sub_t *sub, const sub_fields_t *f)
{
    filter_sub_spec_t spec = {sub->id, f->resource, f->subject, f->type, f->source};
    unsigned char key[64];
    int klen = secret_decode(f->secret, key);
    webhook_sub_opts_t o = {f->endpoint, klen > 0 ? key : NULL, klen > 0 ? (size_t)klen : 0,
                            (webhook_mode_t)sub->mode};
    if (filter_subindex_add(s->subs->index, &spec, sub) != 0) return -1;
    if (webhook_sub_config(s->webhook, sub->id, &o) != 0) {
        filter_subindex_remove(s->subs->index, sub->id);
        return -1;
    }
    sub->committed = 1;
    return 0;
}

static void handshake(srv_t *s, srv_sub_t *sub)
{
    filter_buf_t b = {0};
    unsigned char u[16];
    char uuid[37];

    if (RAND_bytes(u, sizeof u) != 1) return;
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(uuid, sizeof uuid,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
    filter_buf_printf(&b, "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":", uuid);
    {
        char src[600];
        snprintf(src, sizeof src, "%s/events/api/v1/subscriptions/%llu", s->base_url,
                 (unsigned long long)sub->id);
        filter_buf_json_string(&b, src, strlen(src));
    }
    filter_buf_puts(&b, ",\"type\":\"platform.events.validatesubscription\"}");
    if (!filter_buf_failed(&b)) webhook_handshake(s->webhook, sub->id, b.data, b.len);
    filter_buf_fini(&b);
}

static int load_one(void *ctx, uint64_t id, const void *rec, size_t len)
{
    srv_t *s = ctx;
    rec_t r = {0};
    srv_sub_t *sub = NULL;
    int ret = STORE_SCAN_CONTINUE;
    if (rec_parse(&r, rec, len) == 0)
        sub = sub_new(s->subs, id, &r.f, r.include_subunits, r.mode, 0);
    if (!sub) {
        srv_log(SRV_LOG_ERROR, "subs", "stored subscription does not decode id=%llu",
                (unsigned long long)id);
    } else {
        sub->validated = r.validated ? 1 : 0;
        sub->disabled = r.disabled ? 1 : 0;
        if (reg_add(s->subs, sub) != 0) {
            sub_free(s->subs, sub);
            sub = NULL;
        } else if (activate(s, sub, &r.f) != 0) {
            reg_remove(s->subs, sub);
            sub_free(s->subs, sub);
            sub = NULL;
        }
        if (!sub) {
            srv_log(SRV_LOG_ERROR, "subs", "out of memory loading subscriptions");
            ret = STORE_SCAN_STOP;
        }
    }
    rec_fini(&r);
    return ret;
}

int srv_subs_open(srv_t *s)
{
    srv_subs_t *r = calloc(1, sizeof *r);
    int rc;
    if (!r) return -1;
    s->subs = r;
    r->index = filter_subindex_new();
    r->batch = store_batch_new();
    r->names = srv_intern_new();
    if (!r->index || !r->batch || !r->names) return -1;
    rc = store_scan_subs(s->store, load_one, s);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "subs", "cannot read subscriptions error=\"%s\"",
                store_strerror(rc));
        return -1;
    }
    /* Handshakes are not persisted: one that had not succeeded starts over. */
    for (size_t i = 0; i < r->n; i++)
        if (!r->all[i]->validated) handshake(s, r->all[i]);
    srv_log(SRV_LOG_INFO, "subs", "loaded subscriptions=%zu", r->n);
    /* The scan touched every subscription's pages of the store's map; from now on the records are
     * read only for GET, lists and rewrites, so the pages need not stay in the resident set. */
    rc = store_release_pages(s->store);
    if (rc != 0)
        srv_log(SRV_LOG_WARN, "subs", "cannot release store pages error=\"%s\"",
                store_last_error(s->store));
    return 0;
}

void srv_subs_close(srv_t *s)
{
    srv_subs_t *r = s->subs;
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        sub_free(r, r->all[i]);
    free(r->all);
    free(r->dedupe);
    srv_intern_free(r->names);
    free(r->match_ids);
    filter_subindex_free(r->index);
    store_batch_free(r->batch);
    free(r);
    s->subs = NULL;
}

/* ---- matching ---- */

typedef struct {
    srv_t *s;
    const filter_event_t *ev;
    int subunits_only; /* matching a sub-unit's event against its main unit's subscriptions */
} match_ctx_t;

static void on_match(void *ctx, uint64_t id, void *user)
{
    match_ctx_t *m = ctx;
    srv_subs_t *r = m->s->subs;
    srv_sub_t *sub = user;
    (void)id;
    if (!sub->validated || !sub->committed || sub->deleting || sub->disabled) return;
    if (m->subunits_only && !sub->include_subunits) return;
    if (sub->filters && !filter_dialect_match(sub->filters, filter_cesql_event_attr, (void *)m->ev))
        return;
    /* each push is authorized per event and consumer (api.md §6), never cached */
    if (m->s->authz &&
        !srv_authz_check(m->s->authz, SRV_AUTHZ_SUBSCRIBE, m->ev->resource,
                         sub->consumer ? sub->consumer : "", m->ev->subject ? m->ev->subject : ""))
        return;
    if (r->n_match == r->match_cap) {
        size_t cap = r->match_cap ? r->match_cap * 2 : 64;
        uint64_t *ids = realloc(r->match_ids, cap * sizeof *ids);
        if (!ids) return; /* logged by the caller as a short match */
        r->match_ids = ids;
        r->match_cap = cap;
    }
    r->match_ids[r->n_match++] = sub->id;
}

static void on_may_match(void *ctx, uint64_t id, void *user)
{
    (void)id;
    (void)user;
    (*(size_t *)ctx)++;
}

int srv_subs_may_match(srv_t *s, const char *resource, const char *subject, const char *type,
                       const char *source)
{
    filter_match_event_t mev = {resource, subject, type, source};
    size_t n = 0;
    char mains[4][96];
    filter_subindex_match(s->subs->index, &mev, on_may_match, &n);
    if (n == 0 && s->reg && subject) {
        int n_main = srv_register_main_unit_subjects(s->reg, subject, mains, 4);
        for (int i = 0; i < n_main && n == 0; i++) {
            mev.subject = mains[i];
            filter_subindex_match(s->subs->index, &mev, on_may_match, &n);
        }
    }
    return n > 0;
}

size_t srv_subs_match(srv_t *s, const filter_event_t *ev)
{
    filter_match_event_t mev = {ev->resource, ev->subject, ev->type, ev->source};
    match_ctx_t m = {s, ev, 0};
    char mains[4][96];
    int n_main;
    s->subs->n_match = 0;
    filter_subindex_match(s->subs->index, &mev, on_match, &m);
    /* includeSubunits: an event on a sub-unit also reaches the subscriptions on its main unit */
    if (s->reg && ev->subject) {
        n_main = srv_register_main_unit_subjects(s->reg, ev->subject, mains, 4);
        m.subunits_only = 1;
        for (int i = 0; i < n_main; i++) {
            mev.subject = mains[i];
            filter_subindex_match(s->subs->index, &mev, on_match, &m);
        }
    }
    return s->subs->n_match;
}

int srv_subs_batch_empty(srv_t *s)
{
    return store_batch_empty(s->subs->batch);
}

const uint64_t *srv_subs_match_ids(srv_t *s)
{
    return s->subs->match_ids;
}

/* ---- the validated flag ---- */

static int put_record(srv_t *s, const srv_sub_t *sub)
{
    filter_buf_t b = {0};
    rec_t r;
    int rc = -1;
    if (sub_fields(s, sub, &r) == 0) {
        sub_json(&b, sub, &r.f, 1);
        rc = filter_buf_failed(&b) ? -1
                                   : store_batch_put_sub(s->subs->batch, sub->id, b.data, b.len);
    }
    rec_fini(&r);
    filter_buf_fini(&b);
    if (rc == 0) srv_arm_commit(s);
    return rc;
}

void srv_subs_on_validated(void *ctx, uint64_t sub_id)
{
    srv_t *s = ctx;
    srv_sub_t *sub = reg_get(s->subs, sub_id);
    if (!sub || sub->deleting || sub->validated) return;
    sub->validated = 1;
    srv_log(SRV_LOG_INFO, "subs", "subscription validated id=%llu", (unsigned long long)sub_id);
    if (put_record(s, sub) != 0)
        srv_log(SRV_LOG_ERROR, "subs", "cannot record validation id=%llu",
                (unsigned long long)sub_id);
    else
        srv_audit_sub(s->subs->batch, "validated", sub_id, NULL);
}

void srv_subs_on_gone(void *ctx, uint64_t sub_id)
{
    srv_t *s = ctx;
    srv_sub_t *sub = reg_get(s->subs, sub_id);
    if (!sub || sub->deleting || sub->disabled) return;
    sub->disabled = 1;
    srv_log(SRV_LOG_WARN, "subs", "endpoint answered 410 Gone: subscription disabled id=%llu",
            (unsigned long long)sub_id);
    if (put_record(s, sub) != 0)
        srv_log(SRV_LOG_ERROR, "subs", "cannot record disabling id=%llu",
                (unsigned long long)sub_id);
    else /* in the delivery batch: after the record of the attempt answered 410 */
        srv_audit_sub(s->batch, "disabled", sub_id, NULL);
}

void srv_subs_count(srv_t *s, size_t *validated, size_t *unvalidated, size_t *disabled)
{
    srv_subs_t *r = s->subs;
    *validated = *unvalidated = *disabled = 0;
    for (size_t i = 0; r && i < r->n; i++) {
        const srv_sub_t *sub = r->all[i];
        if (!sub->committed || sub->failed)
            continue;
        else if (sub->disabled)
            (*disabled)++;
        else if (sub->validated)
            (*validated)++;
        else
            (*unvalidated)++;
    }
}

/* ---- replies ---- */

static void reply_json_string(evhtp_request_t *req, int status, const char *msg)
{
    filter_buf_t b = {0};
    filter_buf_json_string(&b, msg, strlen(msg));
    if (filter_buf_failed(&b)) {
        srv_reply_empty(req, 500);
    } else {
        srv_reply_text(req, status, "application/json; charset=utf-8", b.data, b.len);
    }
    filter_buf_fini(&b);
}

static void reply_sub(srv_t *s, evhtp_request_t *req, int status, const srv_sub_t *sub)
{
    filter_buf_t b = {0};
    char loc[64];
    rec_t r;
    if (sub_fields(s, sub, &r) != 0) {
        rec_fini(&r);
        srv_reply_empty(req, 500);
        return;
    }
    if (status == 201) {
        snprintf(loc, sizeof loc, "/events/api/v1/subscriptions/%llu", (unsigned long long)sub->id);
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("Location", loc, 0, 1));
    }
    sub_json(&b, sub, &r.f, 0);
    rec_fini(&r);
    if (filter_buf_failed(&b))
        srv_reply_empty(req, 500);
    else
        srv_reply_text(req, status, "application/json; charset=utf-8", b.data, b.len);
    filter_buf_fini(&b);
}

/* ---- the commit ---- */

void srv_subs_swap_batch(srv_t *s, store_batch_t **b)
{
    store_batch_t *t = s->subs->batch;
    HND_CHECK(store_batch_empty(*b));
    s->subs->batch = *b;
    *b = t;
}

void srv_subs_finish(srv_t *s, srv_pending_t *entries, size_t n, int rc)
{
    srv_subs_t *r = s->subs;

    for (size_t i = 0; i < n; i++) {
        srv_pending_t *p = &entries[i];
        srv_sub_t *sub = p->sub;
        if (p->kind == SRV_PENDING_SUB_CREATE) {
            p->kind = SRV_PENDING_DONE;
            sub->refs--;
            if (sub->failed) { /* its create failed in an earlier commit */
                if (p->req) srv_reply_empty(p->req, 500);
                if (sub->refs == 0) sub_free(r, sub);
                continue;
            }
            if (rc == 0 && !sub->committed && activate(s, sub, sub->pending) != 0)
                rc = STORE_ENOMEM;
            if (rc != 0 && !sub->committed) {
                reg_remove(r, sub);
                if (p->req)
                    srv_reply_problem(p->req, rc == STORE_EMAPFULL ? 507 : 500,
                                      rc == STORE_EMAPFULL ? "Insufficient Storage"
                                                           : "Internal Server Error",
                                      "The subscription could not be stored.");
                /* a dedupe hit waiting for a later commit may still point at it */
                sub->failed = 1;
                if (sub->refs == 0) sub_free(r, sub);
                continue;
            }
            if (rc != 0) { /* a dedupe hit on a subscription committed earlier */
                if (p->req) srv_reply_empty(p->req, 500);
                continue;
            }
            if (p->req) reply_sub(s, p->req, 201, sub);
            handshake(s, sub);
            /* stored now: from here on its strings are read back from the store */
            free(sub->pending);
            sub->pending = NULL;
        } else if (p->kind == SRV_PENDING_SUB_DELETE) {
            p->kind = SRV_PENDING_DONE;
            if (rc != 0) {
                sub->deleting = 0;
                if (p->req) srv_reply_empty(p->req, rc == STORE_EMAPFULL ? 507 : 500);
                continue;
            }
            filter_subindex_remove(r->index, sub->id);
            webhook_sub_remove(s->webhook, sub->id);
            /* Retry or dead-letter records of this subscription may already sit in the delivery
             * batch, which commits after this one: delete again behind them there. */
            if (store_batch_del_sub(s->batch, sub->id) != 0)
                srv_log(SRV_LOG_WARN, "subs", "cannot queue cleanup of deleted id=%llu",
                        (unsigned long long)sub->id);
            reg_remove(r, sub);
            sub_free(r, sub);
            if (p->req) srv_reply_empty(p->req, 200);
        }
    }
}

/* ---- handlers ---- */

typedef struct {
    const char *scheme; /* "http" or "https" */
    const char *host;   /* start of the host in the URL */
    size_t host_len;
    const char *path; /* from the first '/' after the authority, or "" */
} url_t;

/* Splits an absolute http(s) URL; 0, or -1 if it is not one (or has userinfo, spaces, no host). */
static int parse_url(const char *u, url_t *out)
{
    const char *p, *auth_end;
    if (strncasecmp(u, "https://", 8) == 0) {
        out->scheme = "https";
        p = u + 8;
    } else if (strncasecmp(u, "http://", 7) == 0) {
        out->scheme = "http";
        p = u + 7;
    } else {
        return -1;
    }
    for (const char *q = u; *q; q++)
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) return -1;
    auth_end = p + strcspn(p, "/?#");
    if (auth_end == p || memchr(p, '@', (size_t)(auth_end - p))) return -1;
    out->host = p;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(auth_end - p));
        if (!rb) return -1;
        out->host_len = (size_t)(rb + 1 - p);
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        out->host_len = (size_t)((colon ? colon : auth_end) - p);
    }
    if (out->host_len == 0) return -1;
    /* a port, when given, is 1..65535 (an empty one means the default) */
    if (p + out->host_len < auth_end) {
        const char *q = p + out->host_len;
        long port = 0;
        if (*q != ':') return -1;
        for (q++; q < auth_end; q++) {
            if (*q < '0' || *q > '9' || port > 65535) return -1;
            port = port * 10 + (*q - '0');
        }
        if (q - (p + out->host_len) > 1 && (port < 1 || port > 65535)) return -1;
    }
    if (!filter_uri_absolute_valid(u, strlen(u))) return -1;
    out->path = *auth_end == '/' ? auth_end : "";
    return 0;
}

/* The production profile refuses endpoints that name a local or private target outright; names
 * that resolve to one are refused by the delivery engine when it connects. */
static int host_is_local(const url_t *u)
{
    char host[256];
    if (u->host_len >= sizeof host) return 0;
    memcpy(host, u->host, u->host_len);
    host[u->host_len] = '\0';
    if (strcasecmp(host, "localhost") == 0 ||
        (strlen(host) > 10 && strcasecmp(host + strlen(host) - 10, ".localhost") == 0))
        return 1;
    return webhook_literal_host_refused(host);
}

static int endpoint_ok(srv_t *s, const char *ep)
{
    url_t u;
    if (!ep || parse_url(ep, &u) != 0) return 0;
    if (strcmp(u.scheme, "https") != 0 && !s->cfg->dev) return 0;
    if (!s->cfg->dev && host_is_local(&u)) return 0;
    return 1;
}

static int ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && strncasecmp(s + n - l, suffix, l) == 0;
}

/* The request body's fields, matched case-insensitively. */
typedef struct {
    const char *endpoint, *resource, *subject, *type, *source, *altsubject, *secret, *mode;
    const filter_json_t *filters;
    int include_subunits;
} sub_req_t;

static const char *bad_field_type(const filter_json_t *root, sub_req_t *q)
{
    static const char *const names[] = {
        "endpoint",     "resourcefilter",           "subjectfilter", "typefilter",
        "sourcefilter", "alternativesubjectfilter", "signingsecret", "contentmode"};
    const char **slots[] = {&q->endpoint, &q->resource,   &q->subject, &q->type,
                            &q->source,   &q->altsubject, &q->secret,  &q->mode};
    memset(q, 0, sizeof *q);
    for (size_t i = 0; i < root->count; i++) {
        const char *k = root->keys[i];
        const filter_json_t *v = root->items[i];
        size_t j;
        for (j = 0; j < 8; j++) {
            if (strcasecmp(k, names[j]) != 0) continue;
            if (v->type == FILTER_JSON_NULL) break;
            if (v->type != FILTER_JSON_STRING || memchr(v->str, '\0', v->len)) return k;
            *slots[j] = v->str;
            break;
        }
        if (j < 8) continue;
        if (strcasecmp(k, "filters") == 0) {
            if (v->type != FILTER_JSON_NULL) q->filters = v;
        } else if (strcasecmp(k, "includesubunits") == 0) {
            if (v->type == FILTER_JSON_TRUE)
                q->include_subunits = 1;
            else if (v->type != FILTER_JSON_FALSE && v->type != FILTER_JSON_NULL)
                return k;
        }
        /* server-set fields (id, consumer, createdBy, created, validated) and unknown ones are
         * ignored, as Altinn does */
    }
    /* an empty string is no filter, as in Altinn's string.IsNullOrEmpty checks */
    if (q->resource && !*q->resource) q->resource = NULL;
    if (q->subject && !*q->subject) q->subject = NULL;
    if (q->type && !*q->type) q->type = NULL;
    if (q->altsubject && !*q->altsubject) q->altsubject = NULL;
    return NULL;
}

static int add_pending(srv_t *s, evhtp_request_t *req, srv_req_t *rctx, int kind, srv_sub_t *sub)
{
    srv_pending_t *p;
    if (kind == SRV_PENDING_SUB_CREATE && sub->refs == MAX_REFS) return -1;
    p = srv_pending_add(s, req, rctx);
    if (!p) return -1;
    p->kind = kind;
    p->sub = sub;
    if (kind == SRV_PENDING_SUB_CREATE) sub->refs++;
    return 0;
}

static void handle_create(srv_t *s, evhtp_request_t *req, srv_req_t *rctx, const srv_identity_t *id)
{
    const char *ct = evhtp_header_find(req->headers_in, "Content-Type");
    filter_json_doc_t *doc = NULL;
    filter_json_limits_t lim = {65536, 32, 4096};
    const filter_json_t *root;
    sub_req_t q;
    char consumer[300], err[300], app_resource[600], created[40], party_subject[48];
    const char *bad, *resource;
    int is_app = 0, mode = 0;
    unsigned char key[64];
    filter_buf_t filters_json = {0};
    url_t src;
    size_t len;
    srv_sub_t *sub, *dup;

    if (!ct || !(strncasecmp(ct, "application/json", 16) == 0 &&
                 (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' '))) {
        srv_reply_problem(req, 415, "Unsupported Media Type",
                          "Content-Type must be application/json.");
        return;
    }
    if (rctx && rctx->too_big) {
        srv_reply_problem(req, 413, "Content Too Large", "The request body is too large.");
        return;
    }
    len = evbuffer_get_length(req->buffer_in);
    if (filter_json_parse((const char *)evbuffer_pullup(req->buffer_in, (ev_ssize_t)len), len, &lim,
                          &doc, err, sizeof err) != 0) {
        const char *k = "$", *m = err;
        srv_reply_validation(req, &k, &m, 1);
        return;
    }
    root = filter_json_root(doc);
    if (root->type != FILTER_JSON_OBJECT) {
        const char *k = "$", *m = "The request body must be a JSON object.";
        srv_reply_validation(req, &k, &m, 1);
        goto out;
    }
    if ((bad = bad_field_type(root, &q)) != NULL) {
        const char *k = bad, *m = "The value has the wrong JSON type.";
        srv_reply_validation(req, &k, &m, 1);
        goto out;
    }

    /* api.md §4, checks in order */
    if (!endpoint_ok(s, q.endpoint)) {
        reply_json_string(req, 400, "Missing or invalid endpoint to push events towards");
        goto out;
    }
    if (q.source && (parse_url(q.source, &src) != 0 || strcmp(src.scheme, "https") != 0)) {
        reply_json_string(req, 400, "SourceFilter must be an absolute URL with the https scheme.");
        goto out;
    }
    if (q.resource &&
        strncasecmp(q.resource, APP_RESOURCE_PREFIX, strlen(APP_RESOURCE_PREFIX)) == 0)
        is_app = 1;
    else if (q.source && ends_with_ci(src.host, src.host_len, APPS_DOMAIN))
        is_app = 1;
    if (!is_app && !srv_identity_has_scope(id, "altinn:events.subscribe")) {
        srv_reply_empty(req, 403);
        goto out;
    }
    if (q.resource && !filter_urn_valid(q.resource, strlen(q.resource))) {
        reply_json_string(req, 400, "Resource filter must be a valid urn");
        goto out;
    }
    if (srv_identity_consumer(id, consumer, sizeof consumer) != 0) {
        reply_json_string(req, 400, "Missing event consumer");
        goto out;
    }
    resource = q.resource;
    if (is_app) {
        /* an alternativeSubjectFilter becomes a /party/{id} subject through the register table;
         * one that does not resolve is refused like a missing subject, as Altinn does */
        if (q.altsubject && !q.subject) {
            int64_t party = 0;
            if (strncmp(q.altsubject, "/person/", 8) == 0)
                party = srv_register_party_by_ssn(s->reg, q.altsubject + 8);
            else if (strncmp(q.altsubject, "/organisation/", 14) == 0)
                party = srv_register_party_by_orgno(s->reg, q.altsubject + 14);
            else if (strncmp(q.altsubject, "/org/", 5) == 0)
                party = srv_register_party_by_orgno(s->reg, q.altsubject + 5);
            if (party > 0) {
                snprintf(party_subject, sizeof party_subject, "/party/%lld", (long long)party);
                q.subject = party_subject;
            }
        }
        if (!q.subject && !(id->claims.org && *id->claims.org)) {
            reply_json_string(req, 400,
                              "A valid subject to the authenticated identity is required");
            goto out;
        }
        if (q.altsubject && !q.subject) {
            reply_json_string(req, 400,
                              "A valid subject to the authenticated identity is required");
            goto out;
        }
        if (q.include_subunits && !q.subject) {
            reply_json_string(req, 400, "IncludeSubunits requires a subject filter.");
            goto out;
        }
        if (q.source) {
            /* the path must be exactly /{org}/{app} */
            const char *p = src.path, *q1, *q2;
            size_t plen = strcspn(p, "?#");
            q1 = plen > 1 ? memchr(p + 1, '/', plen - 1) : NULL;
            q2 = q1 ? memchr(q1 + 1, '/', plen - (size_t)(q1 + 1 - p)) : NULL;
            if (plen < 4 || p[0] != '/' || !q1 || q1 == p + 1 || q2 || q1 + 1 == p + plen) {
                reply_json_string(
                    req, 400,
                    "A valid app id is required in source filter {environment}/{org}/{app}");
                goto out;
            }
            snprintf(app_resource, sizeof app_resource, APP_RESOURCE_PREFIX "%.*s_%.*s",
                     (int)(q1 - p - 1), p + 1, (int)(p + plen - q1 - 1), q1 + 1);
            if (resource && strcmp(resource, app_resource) != 0) {
                reply_json_string(req, 400,
                                  "Provided resource filter and source filter are not compatible");
                goto out;
            }
            if (!resource) resource = app_resource;
        }
        if (!resource) { /* an app subscription found by its source host alone has one */
            reply_json_string(req, 400, "Resource filter is required.");
            goto out;
        }
    } else {
        if (!q.resource) {
            reply_json_string(req, 400, "Resource filter is required.");
            goto out;
        }
        if (q.source) {
            reply_json_string(req, 400,
                              "Source filter is not supported for subscriptions on this resource.");
            goto out;
        }
        if (q.altsubject) {
            reply_json_string(
                req, 400,
                "AlternativeSubject filter is not supported for subscriptions on this resource.");
            goto out;
        }
        if (q.include_subunits && !q.subject) {
            reply_json_string(req, 400, "IncludeSubunits requires a subject filter.");
            goto out;
        }
    }
    /* Extensions: signed deliveries, content mode, filter dialects. */
    if (q.secret && secret_decode(q.secret, key) < 0) {
        reply_json_string(req, 400,
                          "signingSecret must be whsec_ followed by the base64 of 24 to 64 bytes.");
        goto out;
    }
    if (q.mode) {
        for (mode = 0; mode < 3 && strcmp(q.mode, mode_names[mode]) != 0; mode++)
            ;
        if (mode == 3) {
            reply_json_string(req, 400,
                              "contentMode must be one of structured, cloudevents, binary.");
            goto out;
        }
    }
    if (q.filters) {
        filter_dialect_t *fd;
        if (filter_dialect_compile(q.filters, &fd, err, sizeof err) != 0) {
            char msg[340];
            snprintf(msg, sizeof msg, "Invalid filters: %s", err);
            reply_json_string(req, 400, msg);
            goto out;
        }
        filter_dialect_free(fd);
        filter_buf_json_value(&filters_json, q.filters);
        if (filter_buf_failed(&filters_json)) {
            srv_reply_empty(req, 500);
            goto out;
        }
    }
    /* Authorization to subscribe to the resource (api.md §6); a subject rule is checked against
     * the subject filter when there is one (else each push is checked per event). */
    if (!srv_authz_check(s->authz, SRV_AUTHZ_SUBSCRIBE, resource, consumer, q.subject)) {
        char msg[700];
        snprintf(msg, sizeof msg, "Not authorized to create a subscription for resource %s.",
                 resource);
        reply_json_string(req, 403, msg);
        goto out;
    }

    filter_time_format(srv_now_us(), created, sizeof created);
    {
        sub_fields_t f = {q.endpoint,
                          resource,
                          q.subject,
                          q.type,
                          q.source,
                          q.altsubject,
                          consumer,
                          consumer,
                          created,
                          q.secret,
                          q.filters ? filters_json.data : NULL};
        uint64_t new_id = store_sub_next_id(s->store); /* taken even by a dedupe hit, as always */
        dup =
            dedupe_find(s, &f, dedupe_hash(&f, q.include_subunits, mode), q.include_subunits, mode);
        sub = dup ? NULL : sub_new(s->subs, new_id, &f, q.include_subunits, mode, 1);
    }
    if (dup) {
        if (dup->committed) {
            if (dup->disabled) { /* posting it again re-enables it, after a new handshake */
                dup->disabled = 0;
                dup->validated = 0;
                if (put_record(s, dup) != 0)
                    srv_log(SRV_LOG_ERROR, "subs", "cannot record re-enabling id=%llu",
                            (unsigned long long)dup->id);
                else
                    srv_audit_sub(s->subs->batch, "enabled", dup->id, consumer);
            }
            reply_sub(s, req, 201, dup);
            handshake(s, dup); /* posting it again restarts the handshake */
        } else if (add_pending(s, req, rctx, SRV_PENDING_SUB_CREATE, dup) != 0) {
            srv_reply_empty(req, 500);
        }
        goto out;
    }
    if (!sub) {
        srv_reply_empty(req, 500);
        goto out;
    }
    if (reg_add(s->subs, sub) != 0) {
        sub_free(s->subs, sub);
        srv_reply_empty(req, 500);
        goto out;
    }
    if (put_record(s, sub) != 0) {
        reg_remove(s->subs, sub);
        sub_free(s->subs, sub);
        srv_reply_empty(req, 500);
    } else if (add_pending(s, req, rctx, SRV_PENDING_SUB_CREATE, sub) != 0) {
        /* the record is in the batch already: delete it again behind itself */
        store_batch_del_sub(s->subs->batch, sub->id);
        reg_remove(s->subs, sub);
        sub_free(s->subs, sub);
        srv_reply_empty(req, 500);
    } else {
        srv_audit_sub(s->subs->batch, "created", sub->id, consumer);
    }
out:
    filter_buf_fini(&filters_json);
    filter_json_doc_free(doc);
}

/* Parses the id segment: 1 and *id, or 0 if it is not a positive integer. */
static int parse_id(const char *p, size_t n, uint64_t *id)
{
    uint64_t v = 0;
    if (n == 0 || n > 19) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *id = v;
    return v > 0;
}

typedef struct {
    srv_t *s;
    filter_buf_t *b;
    size_t n;
} dead_ctx_t;

static int on_dead_event(void *ctx, const store_event_t *ev)
{
    filter_buf_t *b = ctx;
    filter_buf_puts(b, "\"eventId\":");
    filter_buf_json_string(b, ev->id, strlen(ev->id));
    return STORE_SCAN_STOP;
}

static int on_dead(void *ctx, uint64_t sub_id, uint64_t seq, const store_dead_t *d)
{
    dead_ctx_t *c = ctx;
    char t[40];
    (void)sub_id;
    filter_buf_puts(c->b, c->n++ ? ",{" : "{");
    if (store_get_event(c->s->store, seq, on_dead_event, c->b) != 0)
        filter_buf_puts(c->b, "\"eventId\":null");
    filter_buf_printf(c->b, ",\"sequence\":%llu,\"attempts\":%u", (unsigned long long)seq,
                      d->attempts);
    if (d->last_status) filter_buf_printf(c->b, ",\"lastStatus\":%d", d->last_status);
    if (d->last_error[0]) {
        filter_buf_puts(c->b, ",\"lastError\":");
        if (filter_buf_json_string(c->b, d->last_error, strlen(d->last_error)) != 0)
            filter_buf_puts(c->b, "\"\"");
    }
    filter_time_format(d->dead_us, t, sizeof t);
    filter_buf_printf(c->b, ",\"deadAt\":\"%s\"}", t);
    return STORE_SCAN_CONTINUE;
}

static int on_redeliver(void *ctx, uint64_t sub_id, uint64_t seq, const store_dead_t *d)
{
    dead_ctx_t *c = ctx;
    (void)d;
    if (webhook_redeliver(c->s->webhook, sub_id, seq) == 0) c->n++;
    return STORE_SCAN_CONTINUE;
}

int srv_subs_route(srv_t *s, evhtp_request_t *req, srv_req_t *rctx, const char *path)
{
    static const char base[] = "/events/api/v1/subscriptions";
    size_t bl = sizeof base - 1;
    const char *rest, *idp;
    size_t idn;
    uint64_t sid = 0;
    htp_method m = evhtp_request_get_method(req);
    srv_identity_t id;
    char consumer[300];
    srv_sub_t *sub;
    int has_consumer;
    enum { R_LIST, R_ONE, R_DEAD, R_REDELIVER } route;

    if (strncasecmp(path, base, bl) != 0 || (path[bl] != '\0' && path[bl] != '/')) return 0;
    rest = path + bl;
    if (*rest == '/') rest++;
    if (*rest == '\0') {
        route = R_LIST;
    } else {
        idp = rest;
        idn = strcspn(rest, "/");
        rest += idn;
        if (*rest == '/') rest++;
        if (*rest == '\0')
            route = R_ONE;
        else if (strcasecmp(rest, "deadletters") == 0 || strcasecmp(rest, "deadletters/") == 0)
            route = R_DEAD;
        else if (strcasecmp(rest, "deadletters/redeliver") == 0 ||
                 strcasecmp(rest, "deadletters/redeliver/") == 0)
            route = R_REDELIVER;
        else
            return 0;
        if (!parse_id(idp, idn, &sid)) {
            srv_reply_empty(req, 404);
            return 1;
        }
    }

    /* methods */
    if ((route == R_LIST && m != htp_method_GET && m != htp_method_POST) ||
        (route == R_ONE && m != htp_method_GET && m != htp_method_DELETE) ||
        (route == R_DEAD && m != htp_method_GET) ||
        (route == R_REDELIVER && m != htp_method_POST)) {
        evhtp_headers_add_header(req->headers_out, evhtp_header_new("Allow",
                                                                    route == R_LIST  ? "GET, POST"
                                                                    : route == R_ONE ? "GET, DELETE"
                                                                    : route == R_DEAD ? "GET"
                                                                                      : "POST",
                                                                    0, 0));
        srv_reply_empty(req, 405);
        return 1;
    }
    if (srv_authenticate(s, req, &id) != 0) {
        evhtp_headers_add_header(req->headers_out,
                                 evhtp_header_new("WWW-Authenticate", "Bearer", 0, 0));
        srv_reply_empty(req, 401);
        return 1;
    }
    if (route == R_LIST && m == htp_method_POST) {
        handle_create(s, req, rctx, &id);
        srv_identity_fini(&id);
        return 1;
    }
    has_consumer = srv_identity_consumer(&id, consumer, sizeof consumer) == 0;
    srv_identity_fini(&id);

    if (route == R_LIST) {
        filter_buf_t b = {0};
        size_t n = 0;
        int failed = 0;
        /* created_by is interned: one pointer comparison per subscription */
        const char *mine = has_consumer ? srv_intern_find(s->subs->names, consumer) : NULL;
        filter_buf_puts(&b, "{\"count\":");
        /* count first: written after the list is built */
        filter_buf_puts(&b, "0000000000,\"subscriptions\":[");
        for (size_t i = 0; mine && !failed && i < s->subs->n; i++) {
            rec_t rec;
            sub = s->subs->all[i];
            if (!sub->committed || sub->deleting || sub->created_by != mine) continue;
            if (n++) filter_buf_puts(&b, ",");
            if (sub_fields(s, sub, &rec) == 0)
                sub_json(&b, sub, &rec.f, 0);
            else
                failed = 1;
            rec_fini(&rec);
        }
        filter_buf_puts(&b, "]}");
        if (failed || filter_buf_failed(&b)) {
            filter_buf_fini(&b);
            srv_reply_empty(req, 500);
            return 1;
        }
        {
            /* put the count in place of the zeros without moving the rest */
            char num[24];
            int l = snprintf(num, sizeof num, "%zu", n);
            memmove(b.data + 9 + l, b.data + 19, b.len - 19 + 1);
            memcpy(b.data + 9, num, (size_t)l);
            b.len -= (size_t)(10 - l);
        }
        srv_reply_text(req, 200, "application/json; charset=utf-8", b.data, b.len);
        filter_buf_fini(&b);
        return 1;
    }

    sub = reg_get(s->subs, sid);
    if (!sub || !sub->committed || sub->deleting) {
        srv_reply_empty(req, 404);
        return 1;
    }
    if (!has_consumer || !sub->created_by || strcmp(sub->created_by, consumer) != 0) {
        srv_reply_empty(req, 403);
        return 1;
    }
    if (route == R_ONE && m == htp_method_GET) {
        reply_sub(s, req, 200, sub);
    } else if (route == R_ONE) {
        if (store_batch_del_sub(s->subs->batch, sub->id) != 0 ||
            add_pending(s, req, rctx, SRV_PENDING_SUB_DELETE, sub) != 0) {
            srv_reply_empty(req, 500);
            return 1;
        }
        sub->deleting = 1;
        srv_audit_sub(s->subs->batch, "deleted", sub->id, consumer);
        srv_arm_commit(s);
    } else if (route == R_DEAD) {
        filter_buf_t b = {0};
        dead_ctx_t c = {s, &b, 0};
        int rc;
        filter_buf_puts(&b, "[");
        rc = store_scan_dead(s->store, sub->id, on_dead, &c);
        filter_buf_puts(&b, "]");
        if (rc != 0 || filter_buf_failed(&b))
            srv_reply_empty(req, 500);
        else
            srv_reply_text(req, 200, "application/json; charset=utf-8", b.data, b.len);
        filter_buf_fini(&b);
    } else {
        dead_ctx_t c = {s, NULL, 0};
        char body[64];
        int rc = store_scan_dead(s->store, sub->id, on_redeliver, &c);
        if (rc != 0) {
            srv_reply_empty(req, 500);
            return 1;
        }
        snprintf(body, sizeof body, "{\"requeued\":%zu}", c.n);
        srv_reply_text(req, 202, "application/json; charset=utf-8", body, strlen(body));
    }
    return 1;
}
