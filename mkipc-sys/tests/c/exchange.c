/*
 * A C service that talks to a Rust peer through an mkipc region in a shared file
 * (under /dev/shm): both directions, SPSC rings and byte channels, every message
 * sequence-numbered and checksummed (wire.h). It owns the region: it creates the
 * file, formats the header, creates the rings and channels, prints READY, then
 * exchanges. Exit status 0 only when every check passed.
 *
 * usage: exchange PATH RING_MESSAGES CHANNEL_MESSAGES
 */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mkipc.h"
#include "wire.h"

/* Geometry shared with the Rust peer (c_abi.rs). */
#define RING_SLOTS 64u
#define RING_SLOT_SIZE 56u
#define CHAN_BUFFERS 16u
#define CHAN_BUFFER_SIZE 512u
#define CHAN_MAX 2000u
enum { STREAM_RING_C2R = 1, STREAM_RING_R2C = 2, STREAM_CHAN_C2R = 3, STREAM_CHAN_R2C = 4 };

#define SECONDS 60

static uint64_t now_ns(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void relax(void *ctx, uint64_t deadline_ns) {
    (void)ctx;
    (void)deadline_ns;
    sched_yield();
}

static void ring_doorbell(void *ctx) { (*(uint64_t *)ctx)++; }

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PATH RING_MESSAGES CHANNEL_MESSAGES\n", argv[0]);
        return 64;
    }
    const char *path = argv[1];
    const uint64_t ring_n = strtoull(argv[2], NULL, 10);
    const uint64_t chan_n = strtoull(argv[3], NULL, 10);

    size_t ring_size = 0, chan_size = 0;
    CHECK(mkipc_ring_size(RING_SLOTS, RING_SLOT_SIZE, 0, &ring_size));
    CHECK(mkipc_channel_size(CHAN_BUFFERS, CHAN_BUFFER_SIZE, 0, &chan_size));
    ring_size = align_up(ring_size, MKIPC_SECTION_ALIGN);
    chan_size = align_up(chan_size, MKIPC_SECTION_ALIGN);
    const size_t ring_c2r = MKIPC_SECTION_ALIGN;
    const size_t ring_r2c = ring_c2r + ring_size;
    const size_t chan_c2r = ring_r2c + ring_size;
    const size_t chan_r2c = chan_c2r + chan_size;
    const size_t total = chan_r2c + chan_size;

    unlink(path);
    mkipc_region region = {0};
    CHECK(mkipc_region_open_file(&region, path, total, MKIPC_OPEN_CREATE));
    EXPECT(mkipc_region_check(&region, NULL), MKIPC_STATUS_NOT_INITIALIZED);
    CHECK(mkipc_region_format(&region, 1));
    uint64_t generation = 0;
    CHECK(mkipc_region_check(&region, &generation));
    if (generation != 1) failures++;
    CHECK(mkipc_ring_create(&region, ring_c2r, RING_SLOTS, RING_SLOT_SIZE, 0));
    CHECK(mkipc_ring_create(&region, ring_r2c, RING_SLOTS, RING_SLOT_SIZE, 0));
    CHECK(mkipc_channel_create(&region, chan_c2r, CHAN_BUFFERS, CHAN_BUFFER_SIZE, 0));
    CHECK(mkipc_channel_create(&region, chan_r2c, CHAN_BUFFERS, CHAN_BUFFER_SIZE, 0));

    static const uint8_t msg_probe[8];
    mkipc_producer tx_ring = {0};
    mkipc_consumer rx_ring = {0};
    mkipc_sender tx_chan = {0};
    mkipc_receiver rx_chan = {0};
    CHECK(mkipc_producer_attach(&tx_ring, &region, ring_c2r));
    CHECK(mkipc_consumer_attach(&rx_ring, &region, ring_r2c));
    CHECK(mkipc_sender_attach(&tx_chan, &region, chan_c2r));
    CHECK(mkipc_receiver_attach(&rx_chan, &region, chan_r2c));
    /* Wrong kinds and a second attach into open storage are refused. */
    EXPECT(mkipc_consumer_attach(&rx_ring, &region, ring_r2c), MKIPC_STATUS_IN_USE);
    EXPECT(mkipc_sender_attach((mkipc_sender *)&rx_chan, &region, chan_c2r),
           MKIPC_STATUS_IN_USE);
    EXPECT(mkipc_sender_send((mkipc_sender *)&rx_chan, msg_probe, 8), MKIPC_STATUS_BAD_HANDLE);
    mkipc_sender scratch = {0};
    EXPECT(mkipc_sender_attach(&scratch, &region, ring_c2r), MKIPC_STATUS_INCOMPATIBLE);
    /* The region handle may go; the endpoints keep the mapping. */
    CHECK(mkipc_region_close(&region));
    EXPECT(mkipc_region_close(&region), MKIPC_STATUS_BAD_HANDLE);

    uint64_t doorbells = 0;
    mkipc_hooks producer_hooks = {.ctx = &doorbells, .ring_doorbell = ring_doorbell};
    CHECK(mkipc_producer_set_hooks(&tx_ring, &producer_hooks));
    mkipc_hooks consumer_hooks = {.now_ns = now_ns, .relax = relax};
    CHECK(mkipc_consumer_set_hooks(&rx_ring, &consumer_hooks));

    printf("READY\n");
    fflush(stdout);

    static uint8_t msg[CHAN_MAX], in[8192];
    uint64_t ring_sent = 0, ring_recv = 0, chan_sent = 0, chan_recv = 0;
    uint64_t loaned = 0, held = 0;
    const uint64_t deadline = now_ns(NULL) + SECONDS * 1000000000ull;
    while (ring_sent < ring_n || ring_recv < ring_n || chan_sent < chan_n || chan_recv < chan_n) {
        int progress = 0;
        if (now_ns(NULL) > deadline) {
            fprintf(stderr, "c: timed out: ring %llu/%llu sent %llu/%llu received, channel "
                            "%llu/%llu sent %llu/%llu received\n",
                    (unsigned long long)ring_sent, (unsigned long long)ring_n,
                    (unsigned long long)ring_recv, (unsigned long long)ring_n,
                    (unsigned long long)chan_sent, (unsigned long long)chan_n,
                    (unsigned long long)chan_recv, (unsigned long long)chan_n);
            return 3;
        }
        if (ring_sent < ring_n) {
            uint32_t len = wire_len(ring_sent, RING_SLOT_SIZE);
            wire_fill(msg, ring_sent, len, STREAM_RING_C2R);
            int32_t st = mkipc_producer_push(&tx_ring, msg, len);
            if (st == MKIPC_STATUS_OK) ring_sent++, progress = 1;
            else if (st != MKIPC_STATUS_FULL) CHECK(st);
        }
        if (chan_sent < chan_n) {
            uint32_t len = wire_len(chan_sent, CHAN_MAX);
            wire_fill(msg, chan_sent, len, STREAM_CHAN_C2R);
            int32_t st;
            if (chan_sent % 3 == 0 && len <= CHAN_BUFFER_SIZE) {
                /* Zero-copy: write the message into a loaned pool buffer. */
                mkipc_loan loan;
                st = mkipc_sender_loan(&tx_chan, &loan);
                if (st == MKIPC_STATUS_OK) {
                    CHECK(mkipc_sender_loan_write(&tx_chan, &loan, 0, msg, len));
                    st = mkipc_sender_send_loan(&tx_chan, &loan, len);
                    if (st == MKIPC_STATUS_OK) loaned++;
                    else CHECK(mkipc_sender_cancel(&tx_chan, &loan));
                }
            } else {
                st = mkipc_sender_send(&tx_chan, msg, len);
            }
            if (st == MKIPC_STATUS_OK) chan_sent++, progress = 1;
            else if (st != MKIPC_STATUS_FULL && st != MKIPC_STATUS_NO_BUFFER) CHECK(st);
        }
        if (ring_recv < ring_n) {
            size_t len = 0;
            int32_t st = mkipc_consumer_pop(&rx_ring, in, sizeof in, &len);
            if (st == MKIPC_STATUS_OK) {
                int bad = wire_check(in, len, ring_recv, STREAM_RING_R2C);
                if (bad) {
                    fprintf(stderr, "c: ring message %llu bad (%d)\n",
                            (unsigned long long)ring_recv, bad);
                    return 4;
                }
                ring_recv++, progress = 1;
            } else if (st != MKIPC_STATUS_EMPTY) CHECK(st);
        }
        if (chan_recv < chan_n) {
            size_t len = 0;
            mkipc_held h;
            int32_t st = mkipc_receiver_hold(&rx_chan, &h);
            if (st == MKIPC_STATUS_OK) {
                /* Zero-copy receive: copy out of the held buffer, then check the copy. */
                len = h.len;
                CHECK(mkipc_receiver_read(&rx_chan, &h, 0, in, len));
                CHECK(mkipc_receiver_release(&rx_chan, &h));
                EXPECT(mkipc_receiver_release(&rx_chan, &h), MKIPC_STATUS_FOREIGN);
                held++;
            } else if (st == MKIPC_STATUS_NEEDS_COPY) {
                st = mkipc_receiver_recv(&rx_chan, in, sizeof in, &len);
            }
            if (st == MKIPC_STATUS_OK) {
                int bad = wire_check(in, len, chan_recv, STREAM_CHAN_R2C);
                if (bad) {
                    fprintf(stderr, "c: channel message %llu bad (%d)\n",
                            (unsigned long long)chan_recv, bad);
                    return 4;
                }
                chan_recv++, progress = 1;
            } else if (st != MKIPC_STATUS_EMPTY) CHECK(st);
        }
        if (!progress) sched_yield();
    }

    /* Hooks: the producer rings only a consumer that announced a sleep in its
       need-wakeup word, and the Rust peer polls without ever announcing one, so
       none of the ring messages rang; a timed pop on an empty ring waits on the
       installed clock and times out. */
    if (doorbells != 0) {
        fprintf(stderr, "c: %llu doorbells for %llu messages to a peer that never slept\n",
                (unsigned long long)doorbells, (unsigned long long)ring_n);
        failures++;
    }
    size_t len = 0;
    uint64_t t0 = now_ns(NULL);
    EXPECT(mkipc_consumer_pop_timeout(&rx_ring, in, sizeof in, &len, 2000000),
           MKIPC_STATUS_TIMED_OUT);
    if (now_ns(NULL) - t0 < 2000000) {
        fprintf(stderr, "c: timed pop returned before its deadline\n");
        failures++;
    }
    uint64_t faults = 1;
    CHECK(mkipc_producer_fault_count(&tx_ring, &faults));
    if (faults) failures++;
    CHECK(mkipc_receiver_fault_count(&rx_chan, &faults));
    if (faults) failures++;

    CHECK(mkipc_producer_close(&tx_ring));
    CHECK(mkipc_consumer_close(&rx_ring));
    CHECK(mkipc_sender_close(&tx_chan));
    CHECK(mkipc_receiver_close(&rx_chan));
    EXPECT(mkipc_producer_push(&tx_ring, msg, 8), MKIPC_STATUS_BAD_HANDLE);

    printf("c: ring sent %llu received %llu, channel sent %llu (%llu loaned) received %llu "
           "(%llu held), doorbells %llu, failures %d\n",
           (unsigned long long)ring_sent, (unsigned long long)ring_recv,
           (unsigned long long)chan_sent, (unsigned long long)loaned,
           (unsigned long long)chan_recv, (unsigned long long)held,
           (unsigned long long)doorbells, failures);
    return failures ? 1 : 0;
}
