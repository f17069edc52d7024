/*
 * A C service talking to the Rust `mkipc` command-line tool over a region it
 * made with
 *   mkipc create REGION --channel c2r --channel r2c
 * The C side boots as the nodes `c2r.tx` and `r2c.rx` (the names `mkipc create`
 * gives those ends), holds their lock files, connects both channels by name
 * through the manifest handshake, and then, while beating both nodes' heartbeats,
 *   - sends COUNT generated messages on c2r (checked by `mkipc recv --count`),
 *   - receives and verifies COUNT generated messages on r2c (sent by
 *     `mkipc send --count`): sequence number = ring position, FNV-1a checksum.
 * Half-way it stops receiving for PAUSE_NS (longer than the tool's dead-node
 * timeout in the test) while still beating: `mkipc send` finds the ring full,
 * consults its watchdog, and must find the C node alive, not dead.
 * Before all that it checks the connect refusals a C caller can provoke by
 * mistake.
 * Exit status 0 only when every check passed.
 *
 * Built with -DTOOL_PEER_NO_HEARTBEAT it never beats: the test then expects
 * `mkipc send` to declare it dead during the pause.
 *
 * usage: tool_peer REGION COUNT
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "mkipc.h"
#include "tool_message.h"

#define SECONDS 60
#define HEARTBEAT_NS 20000000ull /* the tool beats every 20 ms, too */
#define PAUSE_NS 600000000ull
#ifdef TOOL_PEER_NO_HEARTBEAT
#define BEATING 0
#else
#define BEATING 1
#endif

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Boots `name` and holds its lock file REGION.NAME.lock, as the tool does. */
static void boot(mkipc_node *node, mkipc_region *region, const char *path, const char *name) {
    char lock[512];
    snprintf(lock, sizeof lock, "%s.%s.lock", path, name);
    CHECK(mkipc_node_boot(node, region, name));
    CHECK(mkipc_node_hold_lock(node, lock));
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s REGION COUNT\n", argv[0]);
        return 64;
    }
    const char *path = argv[1];
    const uint64_t count = strtoull(argv[2], NULL, 10);

    mkipc_region region = {0};
    CHECK(mkipc_region_open_file(&region, path, 0, 0));
    CHECK(mkipc_region_check(&region, NULL));

    mkipc_node tx_node = {0}, rx_node = {0}, ghost = {0};
    EXPECT(mkipc_node_boot(&ghost, &region, "ghost"), MKIPC_STATUS_NO_SUCH_NODE);
    boot(&tx_node, &region, path, "c2r.tx");
    boot(&rx_node, &region, path, "r2c.rx");

    /* Refusals: no such channel, an end this node holds no grant for, a message
       type other than the channel's. Nothing is opened by any of them. */
    mkipc_producer tx = {0};
    mkipc_consumer rx = {0};
    EXPECT(mkipc_producer_connect(&tx, &tx_node, "nope", NULL, 0, 0),
           MKIPC_STATUS_NO_SUCH_CHANNEL);
    EXPECT(mkipc_producer_connect(&tx, &tx_node, "r2c", NULL, 0, 0), MKIPC_STATUS_NOT_GRANTED);
    EXPECT(mkipc_consumer_connect(&rx, &tx_node, "c2r", NULL, 0, 0), MKIPC_STATUS_NOT_GRANTED);
    mkipc_message_type other = {0};
    CHECK(mkipc_message_type_bytes(128, &other));
    EXPECT(mkipc_consumer_connect(&rx, &rx_node, "r2c", &other, 0, 0),
           MKIPC_STATUS_TYPE_MISMATCH);

    /* The producer offers at once (messages queue until `mkipc recv` accepts);
       the consumer waits for `mkipc send`'s offer. */
    CHECK(mkipc_producer_connect(&tx, &tx_node, "c2r", NULL, 0, 0));
    CHECK(mkipc_consumer_connect(&rx, &rx_node, "r2c", NULL, 0, SECONDS * 1000000000ull));
    /* Endpoints keep the mapping: the region handle may go. */
    CHECK(mkipc_region_close(&region));

    size_t slot = 0;
    CHECK(mkipc_producer_slot_size(&tx, &slot));
    static uint8_t msg[4096], in[4096];
    if (slot > sizeof msg || slot < TOOL_MSG_MIN) {
        fprintf(stderr, "c: unexpected slot size %zu\n", slot);
        return 2;
    }

    uint64_t sent = 0, received = 0, beats = 0;
    uint64_t next_beat = 0, pause_until = 0;
    int paused = 0;
    const uint64_t deadline = now_ns() + SECONDS * 1000000000ull;
    while (sent < count || received < count) {
        uint64_t now = now_ns();
        if (now > deadline) {
            fprintf(stderr, "c: timed out: sent %llu, received %llu of %llu\n",
                    (unsigned long long)sent, (unsigned long long)received,
                    (unsigned long long)count);
            return 3;
        }
        if (BEATING && now >= next_beat) {
            CHECK(mkipc_node_beat(&tx_node));
            CHECK(mkipc_node_beat(&rx_node));
            beats++;
            next_beat = now + HEARTBEAT_NS;
        }
        int progress = 0;
        if (sent < count) {
            size_t len = tool_msg_encode(sent, slot, msg);
            int32_t st = mkipc_producer_push(&tx, msg, len);
            if (st == MKIPC_STATUS_OK) sent++, progress = 1;
            else if (st != MKIPC_STATUS_FULL) CHECK(st);
        }
        if (!paused && received == count / 2) {
            paused = 1;
            pause_until = now + PAUSE_NS;
        }
        if (received < count && now >= pause_until) {
            size_t len = 0;
            /* Short sleeps (need-wakeup, futex) when idle, so the beats go on. */
            uint64_t wait = progress ? 0 : 1000000;
            int32_t st = mkipc_consumer_pop_timeout(&rx, in, sizeof in, &len, wait);
            if (st == MKIPC_STATUS_OK) {
                int bad = tool_msg_verify(received, in, len);
                if (bad) {
                    fprintf(stderr, "c: message at position %llu is bad (%s)\n",
                            (unsigned long long)received, tool_msg_why(bad));
                    return 4;
                }
                received++;
            } else if (st != MKIPC_STATUS_EMPTY && st != MKIPC_STATUS_TIMED_OUT) {
                CHECK(st);
            }
        } else if (!progress) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
    }

    /* `mkipc send` closes after its last message: the next pop says so. */
    size_t len = 0;
    int32_t st;
    do {
        if (BEATING) CHECK(mkipc_node_beat(&rx_node));
        st = mkipc_consumer_pop_timeout(&rx, in, sizeof in, &len, 10000000);
    } while (st == MKIPC_STATUS_TIMED_OUT && now_ns() < deadline);
    EXPECT(st, MKIPC_STATUS_CLOSED);

    uint64_t faults = 1;
    CHECK(mkipc_producer_fault_count(&tx, &faults));
    if (faults) failures++;
    CHECK(mkipc_consumer_fault_count(&rx, &faults));
    if (faults) failures++;
    CHECK(mkipc_producer_close(&tx));
    CHECK(mkipc_consumer_close(&rx));
    CHECK(mkipc_node_close(&tx_node));
    CHECK(mkipc_node_close(&rx_node));
    EXPECT(mkipc_node_beat(&tx_node), MKIPC_STATUS_BAD_HANDLE);

    printf("c: sent %llu received %llu verified, heartbeats %llu, failures %d\n",
           (unsigned long long)sent, (unsigned long long)received, (unsigned long long)beats,
           failures);
    return failures ? 1 : 0;
}
