/* server/intern: shared strings in a chained hash table. Each entry is one allocation holding its
 * string inline; the pointer handed out is that string, so srv_intern_put finds its entry by
 * subtracting the header size (no lookup by content). */
#include "server/intern.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/util.h"

typedef struct ent {
    struct ent *next;
    uint32_t hash;
    uint32_t refs;
    char str[];
} ent_t;

struct srv_intern {
    ent_t **b;
    size_t nb; /* 0 or a power of two */
    size_t n;
};

static uint32_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

srv_intern_t *srv_intern_new(void)
{
    return calloc(1, sizeof(srv_intern_t));
}

void srv_intern_free(srv_intern_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nb; i++) {
        ent_t *e = t->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->b);
    free(t);
}

static ent_t *find(const srv_intern_t *t, const char *s, uint32_t h)
{
    if (!t->nb) return NULL;
    for (ent_t *e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->str, s) == 0) return e;
    return NULL;
}

/* Doubles the buckets (a failure is harmless: chains just get longer). */
static void grow(srv_intern_t *t)
{
    size_t nb = t->nb ? t->nb * 2 : 16;
    ent_t **b = calloc(nb, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < t->nb; i++) {
        ent_t *e = t->b[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

const char *srv_intern_get(srv_intern_t *t, const char *s)
{
    if (!s) return NULL;
    uint32_t h = hash_str(s);
    ent_t *e = find(t, s, h);
    if (e) {
        if (e->refs == UINT32_MAX) return NULL;
        e->refs++;
        return e->str;
    }
    if (t->n >= t->nb) grow(t);
    if (!t->nb) return NULL;
    size_t len = strlen(s) + 1;
    e = malloc(offsetof(ent_t, str) + len);
    if (!e) return NULL;
    memcpy(e->str, s, len);
    e->hash = h;
    e->refs = 1;
    e->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = e;
    t->n++;
    return e->str;
}

const char *srv_intern_find(const srv_intern_t *t, const char *s)
{
    ent_t *e = s ? find(t, s, hash_str(s)) : NULL;
    return e ? e->str : NULL;
}

void srv_intern_put(srv_intern_t *t, const char *p)
{
    if (!p) return;
    ent_t *e = (ent_t *)(void *)(p - offsetof(ent_t, str)), **pp;
    HND_CHECK(e->refs > 0);
    if (--e->refs) return;
    for (pp = &t->b[e->hash & (t->nb - 1)]; *pp != e; pp = &(*pp)->next)
        HND_CHECK(*pp);
    *pp = e->next;
    t->n--;
    free(e);
}

size_t srv_intern_count(const srv_intern_t *t)
{
    return t ? t->n : 0;
}
