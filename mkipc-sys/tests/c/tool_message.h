/*
 * The generated messages of `mkipc send --count` / `mkipc recv --count`
 * (mkipc-cli/src/message.rs), in C:
 *   +0       seq       u64 LE, the message's ring position
 *   +8       body      (seq * 13) % (max_len - 15) bytes, byte i = (u8)seq * 31 + i
 *   +8+body  checksum  u64 LE, FNV-1a 64 over seq and body
 * `max_len` is the channel's largest message (its slot size for `mkipc create`).
 */
#ifndef MKIPC_TEST_TOOL_MESSAGE_H
#define MKIPC_TEST_TOOL_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "le_bytes.h"

#define TOOL_MSG_MIN 16u

/* Writes message `seq` of at most `max_len` (>= TOOL_MSG_MIN) bytes into `p`
   (`max_len` bytes long); returns its length. */
static inline size_t tool_msg_encode(uint64_t seq, size_t max_len, uint8_t *p) {
    size_t body = (size_t)((seq * 13u) % (uint64_t)(max_len - TOOL_MSG_MIN + 1));
    le_put64(p, seq);
    for (size_t i = 0; i < body; i++) p[8 + i] = (uint8_t)((uint8_t)seq * 31u + (uint8_t)i);
    le_put64(p + 8 + body, le_fnv(p, 8 + body));
    return TOOL_MSG_MIN + body;
}

enum { TOOL_MSG_TOO_SHORT = 1, TOOL_MSG_WRONG_SEQUENCE = 2, TOOL_MSG_CHECKSUM = 3 };

/* 0 when `p` (n bytes) is intact message `expected`, else why not. */
static inline int tool_msg_verify(uint64_t expected, const uint8_t *p, size_t n) {
    if (n < TOOL_MSG_MIN) return TOOL_MSG_TOO_SHORT;
    if (le_get64(p) != expected) return TOOL_MSG_WRONG_SEQUENCE;
    if (le_get64(p + n - 8) != le_fnv(p, n - 8)) return TOOL_MSG_CHECKSUM;
    return 0;
}

static inline const char *tool_msg_why(int bad) {
    switch (bad) {
    case TOOL_MSG_TOO_SHORT: return "shorter than a sequence number and a checksum";
    case TOOL_MSG_WRONG_SEQUENCE: return "wrong sequence number: lost, duplicated or reordered";
    case TOOL_MSG_CHECKSUM: return "checksum mismatch";
    default: return "intact";
    }
}

#endif
