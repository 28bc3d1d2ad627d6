/*
 * libFuzzer target: arbitrary log files fed to recovery.  Built only with
 * clang (see meson.build); docs/reliability.md has the commands.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_recovery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_recovery_one(data, size);
}
