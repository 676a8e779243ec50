/* A minimal TAP producer for the unit tests: ok(cond, name...), done_testing(). Header-only. */
#ifndef HENDELSE_TEST_TAP_H
#define HENDELSE_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 3, 4))) static int tap_ok(int cond, int line, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at line %d\n", line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __LINE__, __VA_ARGS__)

static int done_testing(void)
{
    printf("1..%d\n", tap_n);
    if (tap_failed) printf("# failed %d of %d\n", tap_failed, tap_n);
    return tap_failed ? 1 : 0;
}

#endif
