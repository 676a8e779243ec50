/* Shared by the fuzz targets: an oracle check that aborts (libFuzzer then saves the input). */
#ifndef HENDELSE_TEST_FUZZ_H
#define HENDELSE_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed: %s at %s:%d\n", #cond, __FILE__, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
