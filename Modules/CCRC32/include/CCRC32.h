#ifndef SWIFTKEEPER_CCRC32_H
#define SWIFTKEEPER_CCRC32_H

#include <stddef.h>
#include <stdint.h>

/// Whether `sk_crc32_fold` may be called on this CPU (x86-64 with PCLMULQDQ and SSE4.1).
int sk_crc32_fold_supported(void);

/// Continues a CRC-32 (ISO-HDLC, the polynomial of zlib's crc32) over `length` bytes by
/// carry-less multiplication: `crc` and the result are zlib's (pre- and post-inverted)
/// values, so sk_crc32_fold(c, p, n) == crc32_z(c, p, n). `length` must be a multiple of 16
/// and at least 64; call only when `sk_crc32_fold_supported()`.
uint32_t sk_crc32_fold(uint32_t crc, const void *bytes, size_t length);

#endif
