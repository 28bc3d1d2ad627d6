/* CRC32C (Castagnoli): crc32c(0, "123456789", 9) == 0xE3069283. */
#ifndef RVM_CRC32C_H
#define RVM_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC over buf; start with crc = 0.  Thread-safe. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
#endif
