/* server/register: register file loading and O(1) lookups. See register.h. */
#include "server/register.h"
#include "server/fileutil.h"

#include "filter/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGISTER_BYTES ((size_t)16 << 20)
#define SSN_LEN 11
#define ORGNO_LEN 9
#define PARTY_PREFIX "/party/"
#define ORG_URN_PREFIX "urn:altinn:organization:identifier-no:"

typedef struct {
    int64_t id;
    int64_t main_unit;         /* 0: not a sub-unit */
    char ssn[SSN_LEN + 1];     /* "" when absent */
    char orgno[ORGNO_LEN + 1]; /* "" when absent */
} party_t;

/* Three open-addressing tables over the same party array. A slot holds a party index plus one;
 * 0 is empty. Each table has at least twice as many slots as parties, so probes stay short and
 * there is always a free slot. */
struct srv_register {
    party_t *parties;
    size_t n;
    size_t mask;
    uint32_t *by_id, *by_ssn, *by_orgno;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return mix(h);
}

/* The index of the party with this id, or -1. */
static long find_id(const srv_register_t *r, int64_t id)
{
    for (size_t i = mix((uint64_t)id) & r->mask;; i = (i + 1) & r->mask) {
        uint32_t s = r->by_id[i];
        if (!s) return -1;
        if (r->parties[s - 1].id == id) return (long)s - 1;
    }
}

/* ssn and orgNo keys have a fixed length, so a key of any other length is simply unknown. */
static long find_str(const srv_register_t *r, const uint32_t *tab, const char *key, size_t keylen,
                     int orgno)
{
    size_t n = strlen(key);
    if (n != keylen) return -1;
    for (size_t i = hash_str(key, n) & r->mask;; i = (i + 1) & r->mask) {
        uint32_t s = tab[i];
        if (!s) return -1;
        const party_t *p = &r->parties[s - 1];
        if (!memcmp(orgno ? p->orgno : p->ssn, key, n)) return (long)s - 1;
    }
}

static void insert(uint32_t *tab, size_t mask, uint64_t h, size_t idx)
{
    size_t i = h & mask;
    while (tab[i])
        i = (i + 1) & mask;
    tab[i] = (uint32_t)(idx + 1);
}

size_t srv_register_count(const srv_register_t *r)
{
    return r ? r->n : 0;
}

int64_t srv_register_party_by_ssn(const srv_register_t *r, const char *ssn)
{
    if (!r || !ssn) return 0;
    long i = find_str(r, r->by_ssn, ssn, SSN_LEN, 0);
    return i < 0 ? 0 : r->parties[i].id;
}

int64_t srv_register_party_by_orgno(const srv_register_t *r, const char *orgno)
{
    if (!r || !orgno) return 0;
    long i = find_str(r, r->by_orgno, orgno, ORGNO_LEN, 1);
    return i < 0 ? 0 : r->parties[i].id;
}

const char *srv_register_orgno_of_party(const srv_register_t *r, int64_t party)
{
    if (!r) return NULL;
    long i = find_id(r, party);
    return i < 0 || !r->parties[i].orgno[0] ? NULL : r->parties[i].orgno;
}

int64_t srv_register_main_unit(const srv_register_t *r, int64_t party)
{
    if (!r) return 0;
    long i = find_id(r, party);
    return i < 0 ? 0 : r->parties[i].main_unit;
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* A canonical positive decimal party id (no sign, no leading zero, fits int64), or 0. */
static int64_t parse_party(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 19 || s[0] == '0' || !all_digits(s, n)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v > (uint64_t)INT64_MAX ? 0 : (int64_t)v;
}

int srv_register_main_unit_subjects(const srv_register_t *r, const char *event_subject,
                                    char out[][96], int max)
{
    if (!r || !event_subject || max <= 0) return 0;
    int64_t party = 0;
    if (!strncmp(event_subject, PARTY_PREFIX, sizeof PARTY_PREFIX - 1))
        party = parse_party(event_subject + sizeof PARTY_PREFIX - 1);
    else if (!strncmp(event_subject, ORG_URN_PREFIX, sizeof ORG_URN_PREFIX - 1))
        party = srv_register_party_by_orgno(r, event_subject + sizeof ORG_URN_PREFIX - 1);
    if (!party) return 0;
    int64_t main_unit = srv_register_main_unit(r, party);
    if (!main_unit) return 0;
    int n = 0;
    snprintf(out[n++], 96, PARTY_PREFIX "%" PRId64, main_unit);
    const char *orgno = srv_register_orgno_of_party(r, main_unit);
    if (orgno && n < max) snprintf(out[n++], 96, ORG_URN_PREFIX "%s", orgno);
    return n;
}

void srv_register_free(srv_register_t *r)
{
    if (!r) return;
    free(r->parties);
    free(r->by_id);
    free(r->by_ssn);
    free(r->by_orgno);
    free(r);
}

/* ---- loading ---- */

/* A positive integer member; returns 0 or -1 with err set. */
static int party_int(const filter_json_t *v, const char *name, int64_t *out, const char *path,
                     size_t pn, char *err, size_t errlen)
{
    if (v->type != FILTER_JSON_NUMBER || !filter_json_int64(v, out) || *out <= 0) {
        srv_set_err(err, errlen, "%s: party %zu: '%s' must be an integer > 0", path, pn, name);
        return -1;
    }
    return 0;
}

/* A string of exactly n digits copied into out[n+1]; returns 0 or -1 with err set. */
static int party_digits(const filter_json_t *v, const char *name, size_t n, char *out,
                        const char *path, size_t pn, char *err, size_t errlen)
{
    if (v->type != FILTER_JSON_STRING || v->len != n || !all_digits(v->str, v->len)) {
        srv_set_err(err, errlen, "%s: party %zu: '%s' must be a string of %zu digits", path, pn,
                    name, n);
        return -1;
    }
    memcpy(out, v->str, n + 1);
    return 0;
}

static int read_party(party_t *p, const filter_json_t *o, const char *path, size_t pn, char *err,
                      size_t errlen)
{
    if (o->type != FILTER_JSON_OBJECT) {
        srv_set_err(err, errlen, "%s: party %zu: must be an object", path, pn);
        return -1;
    }
    int have_id = 0;
    for (size_t i = 0; i < o->count; i++) {
        const char *k = o->keys[i];
        size_t kl = o->key_lens[i];
        const filter_json_t *v = o->items[i];
        int rc;
        if (kl == 7 && !memcmp(k, "partyId", 7)) {
            rc = party_int(v, "partyId", &p->id, path, pn, err, errlen);
            have_id = 1;
        } else if (kl == 8 && !memcmp(k, "mainUnit", 8)) {
            rc = party_int(v, "mainUnit", &p->main_unit, path, pn, err, errlen);
        } else if (kl == 3 && !memcmp(k, "ssn", 3)) {
            rc = party_digits(v, "ssn", SSN_LEN, p->ssn, path, pn, err, errlen);
        } else if (kl == 5 && !memcmp(k, "orgNo", 5)) {
            rc = party_digits(v, "orgNo", ORGNO_LEN, p->orgno, path, pn, err, errlen);
        } else {
            char pk[64];
            srv_printable(pk, sizeof pk, k, kl);
            srv_set_err(err, errlen,
                        "%s: party %zu: unknown key '%s' (expected partyId, ssn, orgNo, mainUnit)",
                        path, pn, pk);
            rc = -1;
        }
        if (rc) return -1;
    }
    if (!have_id) {
        srv_set_err(err, errlen, "%s: party %zu: missing 'partyId'", path, pn);
        return -1;
    }
    if (p->main_unit == p->id) {
        srv_set_err(err, errlen, "%s: party %zu: 'mainUnit' must differ from 'partyId'", path, pn);
        return -1;
    }
    return 0;
}

/* Files party idx into the three tables, reporting a duplicate key. Returns 0 or -1. */
static int index_party(srv_register_t *r, size_t idx, const char *path, char *err, size_t errlen)
{
    const party_t *p = &r->parties[idx];
    long dup = find_id(r, p->id);
    if (dup >= 0) {
        srv_set_err(err, errlen, "%s: party %zu: duplicate partyId %" PRId64 " (also party %ld)",
                    path, idx + 1, p->id, dup + 1);
        return -1;
    }
    insert(r->by_id, r->mask, mix((uint64_t)p->id), idx);
    if (p->ssn[0]) {
        dup = find_str(r, r->by_ssn, p->ssn, SSN_LEN, 0);
        if (dup >= 0) {
            srv_set_err(err, errlen, "%s: party %zu: duplicate ssn %s (also party %ld)", path,
                        idx + 1, p->ssn, dup + 1);
            return -1;
        }
        insert(r->by_ssn, r->mask, hash_str(p->ssn, SSN_LEN), idx);
    }
    if (p->orgno[0]) {
        dup = find_str(r, r->by_orgno, p->orgno, ORGNO_LEN, 1);
        if (dup >= 0) {
            srv_set_err(err, errlen, "%s: party %zu: duplicate orgNo %s (also party %ld)", path,
                        idx + 1, p->orgno, dup + 1);
            return -1;
        }
        insert(r->by_orgno, r->mask, hash_str(p->orgno, ORGNO_LEN), idx);
    }
    return 0;
}

srv_register_t *srv_register_load(const char *path, char *err, size_t errlen)
{
    const filter_json_t *parties = NULL;
    filter_json_doc_t *doc =
        srv_read_json_list(path, MAX_REGISTER_BYTES, "parties", &parties, err, errlen);
    if (!doc) return NULL;

    srv_register_t *r = calloc(1, sizeof *r);
    if (!r) {
        srv_set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (parties->count >= UINT32_MAX / 4) {
        srv_set_err(err, errlen, "%s: too many parties", path);
        goto fail;
    }
    size_t cap = 8;
    while (cap < 2 * parties->count)
        cap *= 2;
    r->mask = cap - 1;
    r->parties = calloc(parties->count ? parties->count : 1, sizeof *r->parties);
    r->by_id = calloc(cap, sizeof *r->by_id);
    r->by_ssn = calloc(cap, sizeof *r->by_ssn);
    r->by_orgno = calloc(cap, sizeof *r->by_orgno);
    if (!r->parties || !r->by_id || !r->by_ssn || !r->by_orgno) {
        srv_set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < parties->count; i++) {
        if (read_party(&r->parties[i], parties->items[i], path, i + 1, err, errlen) ||
            index_party(r, i, path, err, errlen))
            goto fail;
        r->n = i + 1;
    }
    filter_json_doc_free(doc);
    return r;

fail:
    filter_json_doc_free(doc);
    srv_register_free(r);
    return NULL;
}
