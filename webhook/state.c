/* webhook/state.c: the plain data structures of the delivery engine (shared bodies, hash tables,
 * the retry heap, the cursor ring) and the endpoint URL parser. No libevent, no I/O. */
#include "webhook/internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void wh_check_failed(const char *what, const char *file, int line)
{
    fprintf(stderr, "webhook: invariant failed: %s (%s:%d)\n", what, file, line);
    abort();
}

/* ---- blob ---- */

blob_t *blob_new(const char *data, size_t len)
{
    blob_t *b = malloc(sizeof(*b) + len + 1);
    if (!b) return NULL;
    b->refs = 1;
    b->len = len;
    if (len && data) memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

void blob_unref(blob_t *b)
{
    if (b && --b->refs == 0) free(b);
}

/* ---- hash table ---- */

static size_t hslot(const htab_t *t, uint64_t k1, uint64_t k2)
{
    /* splitmix-style finaliser: sequential ids must not land in neighbouring buckets only */
    uint64_t x = k1 * 0x9e3779b97f4a7c15ULL ^ (k2 + 0x632be59bd9b4e019ULL);
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 29;
    return (size_t)x & (t->nb - 1);
}

hnode_t *htab_get(const htab_t *t, uint64_t k1, uint64_t k2)
{
    if (!t->nb) return NULL;
    for (hnode_t *n = t->b[hslot(t, k1, k2)]; n; n = n->next)
        if (n->k1 == k1 && n->k2 == k2) return n;
    return NULL;
}

static int htab_grow(htab_t *t)
{
    size_t nb = t->nb ? t->nb * 2 : 16;
    hnode_t **b = calloc(nb, sizeof(*b));
    if (!b) return -1;
    htab_t nt = {b, nb, t->n};
    for (size_t i = 0; i < t->nb; i++) {
        hnode_t *n = t->b[i];
        while (n) {
            hnode_t *next = n->next;
            size_t s = hslot(&nt, n->k1, n->k2);
            n->next = b[s];
            b[s] = n;
            n = next;
        }
    }
    free(t->b);
    *t = nt;
    return 0;
}

int htab_put(htab_t *t, hnode_t *n)
{
    if (t->n >= t->nb && htab_grow(t) != 0) {
        if (!t->nb) return -1; /* a full table still works, only slower */
    }
    size_t s = hslot(t, n->k1, n->k2);
    n->next = t->b[s];
    t->b[s] = n;
    t->n++;
    return 0;
}

void htab_del(htab_t *t, hnode_t *n)
{
    hnode_t **pp = &t->b[hslot(t, n->k1, n->k2)];
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    WH_CHECK(*pp == n);
    *pp = n->next;
    n->next = NULL;
    t->n--;
}

void htab_fini(htab_t *t)
{
    free(t->b);
    memset(t, 0, sizeof(*t));
}

/* ---- retry heap ---- */

static void rheap_set(rheap_t *h, size_t i, retry_t *r)
{
    h->a[i] = r;
    r->heap_idx = i;
}

static void rheap_up(rheap_t *h, size_t i)
{
    retry_t *r = h->a[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p]->due_us <= r->due_us) break;
        rheap_set(h, i, h->a[p]);
        i = p;
    }
    rheap_set(h, i, r);
}

static void rheap_down(rheap_t *h, size_t i)
{
    retry_t *r = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1]->due_us < h->a[c]->due_us) c++;
        if (h->a[c]->due_us >= r->due_us) break;
        rheap_set(h, i, h->a[c]);
        i = c;
    }
    rheap_set(h, i, r);
}

int rheap_push(rheap_t *h, retry_t *r)
{
    WH_CHECK(r->heap_idx == NOT_IN_HEAP);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        retry_t **a = realloc(h->a, cap * sizeof(*a));
        if (!a) return -1;
        h->a = a;
        h->cap = cap;
    }
    rheap_set(h, h->n++, r);
    rheap_up(h, h->n - 1);
    return 0;
}

retry_t *rheap_top(const rheap_t *h)
{
    return h->n ? h->a[0] : NULL;
}

void rheap_remove(rheap_t *h, retry_t *r)
{
    size_t i = r->heap_idx;
    WH_CHECK(i < h->n && h->a[i] == r);
    r->heap_idx = NOT_IN_HEAP;
    h->n--;
    if (i == h->n) return;
    retry_t *m = h->a[h->n];
    rheap_set(h, i, m);
    rheap_up(h, i);
    rheap_down(h, m->heap_idx); /* a no-op when it moved up */
}

void rheap_fini(rheap_t *h)
{
    free(h->a);
    memset(h, 0, sizeof(*h));
}

/* ---- cursor ring ---- */

int ring_reserve(ring_t *r)
{
    if (r->n < r->cap) return 0;
    size_t cap = r->cap ? r->cap * 2 : 256;
    ring_ent_t *a = malloc(cap * sizeof(*a));
    if (!a) return -1;
    for (size_t i = 0; i < r->n; i++)
        a[i] = r->a[(r->head + i) & (r->cap - 1)];
    free(r->a);
    r->a = a;
    r->cap = cap;
    r->head = 0;
    return 0;
}

void ring_push(ring_t *r, uint64_t seq, size_t remaining)
{
    WH_CHECK(r->n < r->cap);
    r->a[(r->head + r->n) & (r->cap - 1)] = (ring_ent_t){seq, remaining};
    r->n++;
}

ring_ent_t *ring_find(ring_t *r, uint64_t seq)
{
    /* entries are in increasing sequence order: binary search */
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        ring_ent_t *e = &r->a[(r->head + mid) & (r->cap - 1)];
        if (e->seq == seq) return e;
        if (e->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

ring_ent_t *ring_front(ring_t *r)
{
    return r->n ? &r->a[r->head] : NULL;
}

void ring_pop(ring_t *r)
{
    WH_CHECK(r->n > 0);
    r->head = (r->head + 1) & (r->cap - 1);
    r->n--;
}

void ring_fini(ring_t *r)
{
    free(r->a);
    memset(r, 0, sizeof(*r));
}

/* ---- endpoint URLs ---- */

void endpoint_fini(endpoint_t *ep)
{
    free(ep->host); /* the block holding all three strings */
    memset(ep, 0, sizeof(*ep));
}

int endpoint_same(const endpoint_t *a, const endpoint_t *b)
{
    return a->https == b->https && a->port == b->port && strcmp(a->host, b->host) == 0 &&
           strcmp(a->host_header, b->host_header) == 0 && strcmp(a->path, b->path) == 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int host_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Strict on purpose: the URL becomes a request line and a Host header, so anything that is not
 * plain printable ASCII, and userinfo (a classic way to disguise the real host), is refused. */
int endpoint_parse(const char *url, endpoint_t *out)
{
    endpoint_t ep = {0};
    const char *p;
    if (!url) return WEBHOOK_EINVAL;
    size_t len = strlen(url);
    if (len == 0 || len > 4096) return WEBHOOK_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) return WEBHOOK_EINVAL;
    if (strncasecmp(url, "https://", 8) == 0) {
        ep.https = 1;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else {
        return WEBHOOK_EINVAL;
    }
    size_t alen = strcspn(p, "/?#");
    const char *aend = p + alen;
    if (memchr(p, '@', alen)) return WEBHOOK_EINVAL;

    char host[256];
    const char *hend;
    size_t hlen;
    if (*p == '[') {
        const char *rb = memchr(p, ']', alen);
        if (!rb) return WEBHOOK_EINVAL;
        hlen = (size_t)(rb - p - 1);
        if (hlen == 0 || hlen >= sizeof(host)) return WEBHOOK_EINVAL;
        memcpy(host, p + 1, hlen);
        host[hlen] = '\0';
        unsigned char a6[16];
        if (inet_pton(AF_INET6, host, a6) != 1) return WEBHOOK_EINVAL;
        hend = rb + 1;
    } else {
        hend = memchr(p, ':', alen);
        if (!hend) hend = aend;
        hlen = (size_t)(hend - p);
        if (hlen == 0 || hlen >= sizeof(host)) return WEBHOOK_EINVAL;
        for (size_t i = 0; i < hlen; i++) {
            host[i] = (char)lower((unsigned char)p[i]);
            if (!host_char((unsigned char)host[i])) return WEBHOOK_EINVAL;
        }
        host[hlen] = '\0';
    }
    for (char *c = host; *c; c++)
        *c = (char)lower((unsigned char)*c);

    unsigned port = ep.https ? 443 : 80;
    if (hend < aend) {
        if (*hend != ':') return WEBHOOK_EINVAL;
        const char *d = hend + 1;
        if (d < aend) {
            port = 0;
            for (; d < aend; d++) {
                if (*d < '0' || *d > '9') return WEBHOOK_EINVAL;
                port = port * 10 + (unsigned)(*d - '0');
                if (port > 65535) return WEBHOOK_EINVAL;
            }
            if (port == 0) return WEBHOOK_EINVAL;
        }
    }
    ep.port = (uint16_t)port;

    /* path and query, without the fragment (never sent) */
    const char *q = aend;
    size_t plen = strcspn(q, "#");
    int slash = plen == 0 || q[0] != '/'; /* a path is at least "/" */
    /* one block: host, host_header, path (each NUL-terminated) */
    char *blk = malloc(hlen + 1 + alen + 1 + (size_t)slash + plen + 1);
    if (!blk) return WEBHOOK_ENOMEM;
    ep.host = blk;
    memcpy(ep.host, host, hlen + 1);
    ep.host_header = ep.host + hlen + 1;
    memcpy(ep.host_header, p, alen);
    ep.host_header[alen] = '\0';
    ep.path = ep.host_header + alen + 1;
    if (slash) ep.path[0] = '/';
    memcpy(ep.path + slash, q, plen);
    ep.path[slash + plen] = '\0';
    /* a trailing ':' with no port is legal in a URL but not useful in a Host header */
    if (alen && ep.host_header[alen - 1] == ':') ep.host_header[alen - 1] = '\0';
    *out = ep;
    return WEBHOOK_OK;
}
