#pragma once
#include <stddef.h>
#include <stdint.h>
// libFuzzer's driver (compiler-rt FuzzerInterface.h); `-sanitize=fuzzer` links it.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
