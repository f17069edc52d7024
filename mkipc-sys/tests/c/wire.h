/*
 * The checked message format both peers of the C ABI tests speak:
 *   +0  seq      u64 LE
 *   +8  len      u32 LE  (whole message, checksum included)
 *   +12 stream   u32 LE  (which channel it was sent on)
 *   +16 payload  len - 24 bytes, byte i = (seq * 31 + i * 7 + stream) & 0xff
 *   +len-8 fnv   u64 LE  FNV-1a 64 over bytes 0 .. len - 8
 * The Rust side (mkipc-sys/tests/c_abi.rs) implements the same format.
 */
#ifndef MKIPC_TEST_WIRE_H
#define MKIPC_TEST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "le_bytes.h"

#define WIRE_MIN 24u

/* Length of message `seq` on a stream whose messages are at most `max` bytes. */
static inline uint32_t wire_len(uint64_t seq, uint32_t max) {
    uint32_t span = max - WIRE_MIN + 1;
    return WIRE_MIN + (uint32_t)((seq * 7919u) % span);
}

/* Writes message `seq` of `len` bytes (>= WIRE_MIN) into `p`. */
static inline void wire_fill(uint8_t *p, uint64_t seq, uint32_t len, uint32_t stream) {
    le_put64(p, seq);
    le_put32(p + 8, len);
    le_put32(p + 12, stream);
    for (uint32_t i = 0; i < len - WIRE_MIN; i++)
        p[16 + i] = (uint8_t)(seq * 31u + i * 7u + stream);
    le_put64(p + len - 8, le_fnv(p, len - 8));
}

/* 0 when `p` (n bytes) is message `seq` of `stream`, else a reason code. */
static inline int wire_check(const uint8_t *p, size_t n, uint64_t seq, uint32_t stream) {
    if (n < WIRE_MIN) return 1;
    if (le_get64(p) != seq) return 2;
    if (le_get32(p + 8) != n) return 3;
    if (le_get32(p + 12) != stream) return 4;
    if (le_get64(p + n - 8) != le_fnv(p, n - 8)) return 5;
    for (size_t i = 0; i < n - WIRE_MIN; i++)
        if (p[16 + i] != (uint8_t)(seq * 31u + i * 7u + stream)) return 6;
    return 0;
}

#endif
