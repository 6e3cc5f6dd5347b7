/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of WAL records and
 * segment files.  Chosen over zlib's CRC-32 because it detects more error
 * patterns at the record sizes we write and has a hardware instruction
 * (SSE 4.2), used when the CPU has it.
 */
#ifndef VECLOG_CRC32C_H
#define VECLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (start with 0) over n bytes. Thread-safe. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t n);

static inline uint32_t crc32c_value(const void *data, size_t n)
{
    return crc32c_extend(0, data, n);
}

#endif
