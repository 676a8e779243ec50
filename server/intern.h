/* server/intern: a table of shared, reference-counted strings. Many subscriptions carry the same
 * consumer and createdBy; interned, each distinct string is stored once and equal strings are the
 * same pointer (so they compare with ==). Pure: no I/O. Not thread-safe. */
#ifndef HENDELSE_SERVER_INTERN_H
#define HENDELSE_SERVER_INTERN_H

#include <stddef.h>

typedef struct srv_intern srv_intern_t;

/* A new empty table, or NULL on allocation failure. */
srv_intern_t *srv_intern_new(void);

/* Frees the table and every string in it, referenced or not (pointers into it become invalid).
 * NULL ok. */
void srv_intern_free(srv_intern_t *t);

/* The table's copy of s with one more reference: the same pointer for every equal s while any
 * reference is held. The copy is owned by the table: release it with srv_intern_put. s NULL gives
 * NULL; otherwise NULL means out of memory (nothing changed). */
const char *srv_intern_get(srv_intern_t *t, const char *s);

/* The table's copy of s without taking a reference, or NULL if s is not in the table. */
const char *srv_intern_find(const srv_intern_t *t, const char *s);

/* Drops one reference to p, a pointer returned by srv_intern_get; the copy is freed with its last
 * reference. NULL ok. */
void srv_intern_put(srv_intern_t *t, const char *p);

/* How many distinct strings the table holds. */
size_t srv_intern_count(const srv_intern_t *t);

#endif
