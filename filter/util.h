/* Small shared helpers for every module: an always-on invariant check. */
#ifndef HENDELSE_FILTER_UTIL_H
#define HENDELSE_FILTER_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* HND_CHECK(cond): an invariant that holds unless the program is wrong. Unlike assert() it stays on
 * under NDEBUG; on failure it prints the location to stderr and aborts. */
#define HND_CHECK(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
