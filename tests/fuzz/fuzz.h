/* fuzz.h — the libFuzzer entry point every target in this folder defines. */
#ifndef KESC_TESTS_FUZZ_H
#define KESC_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
