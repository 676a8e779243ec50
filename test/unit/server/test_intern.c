/* Unit tests for server/intern.c (shared, reference-counted strings): equal strings give one
 * pointer, references keep a string alive, the last put frees it, find takes no reference, NULL
 * handling, and many strings through table growth and removal. */
#include "server/intern.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static void test_basics(void)
{
    srv_intern_t *t = srv_intern_new();
    char a[] = "/org/ttd", b[] = "/org/ttd";
    const char *p, *q, *r;
    ok(t && srv_intern_count(t) == 0, "new: empty");
    p = srv_intern_get(t, a);
    q = srv_intern_get(t, b);
    ok(p && p == q && p != a && strcmp(p, "/org/ttd") == 0, "equal strings: one copy, one pointer");
    ok(srv_intern_count(t) == 1, "count 1");
    ok(srv_intern_find(t, "/org/ttd") == p, "find: the same pointer");
    ok(srv_intern_find(t, "/org/other") == NULL, "find: absent is NULL");
    r = srv_intern_get(t, "/org/other");
    ok(r && r != p && srv_intern_count(t) == 2, "a different string: another copy");
    srv_intern_put(t, p);
    ok(srv_intern_find(t, "/org/ttd") == q, "one reference left: still there");
    srv_intern_put(t, q);
    ok(srv_intern_find(t, "/org/ttd") == NULL && srv_intern_count(t) == 1,
       "last put: gone, the other stays");
    ok(srv_intern_get(t, NULL) == NULL, "get(NULL) is NULL");
    srv_intern_put(t, NULL);
    ok(srv_intern_find(t, NULL) == NULL, "find(NULL) is NULL");
    p = srv_intern_get(t, "");
    ok(p && *p == '\0' && srv_intern_get(t, "") == p, "the empty string interns too");
    srv_intern_free(t); /* frees what is still referenced */
    srv_intern_free(NULL);
    ok(1, "free with live strings, free(NULL)");
}

static void test_many(void)
{
    enum { N = 5000 };
    static const char *ptr[N];
    srv_intern_t *t = srv_intern_new();
    char s[32];
    int same = 1, found = 1;
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof s, "/party/%d", i);
        ptr[i] = srv_intern_get(t, s);
    }
    ok(srv_intern_count(t) == N, "many: %d distinct strings", N);
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof s, "/party/%d", i);
        if (srv_intern_get(t, s) != ptr[i]) same = 0;
    }
    ok(same, "many: a second get of each gives the same pointer after growth");
    for (int i = 0; i < N; i += 2) {
        srv_intern_put(t, ptr[i]);
        srv_intern_put(t, ptr[i]);
    }
    ok(srv_intern_count(t) == N / 2, "many: half released twice are gone");
    for (int i = 0; i < N; i++) {
        snprintf(s, sizeof s, "/party/%d", i);
        if ((srv_intern_find(t, s) != NULL) != (i % 2 == 1)) found = 0;
    }
    ok(found, "many: exactly the odd ones are found");
    for (int i = 1; i < N; i += 2) {
        srv_intern_put(t, ptr[i]);
        srv_intern_put(t, ptr[i]);
    }
    ok(srv_intern_count(t) == 0, "many: all released");
    srv_intern_free(t);
}

int main(void)
{
    test_basics();
    test_many();
    return done_testing();
}
