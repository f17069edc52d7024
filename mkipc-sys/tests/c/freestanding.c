/*
 * A tiny freestanding C "kernel" linked against the no_std mkipc staticlib built
 * for x86_64-unknown-none (no libc, no allocator). Built with
 *   gcc -ffreestanding -nostdlib -static -fno-pic -no-pie -mno-red-zone
 *       -mgeneral-regs-only -DMKIPC_PANIC_HANDLER -DMKIPC_BARE_METAL
 * it runs as a plain Linux static process: `_start` stands in for the kernel's
 * entry, two raw syscalls (write, exit) for its console and power-off. It opens
 * a region over a static buffer, formats it, and drives a ring and a byte
 * channel through every kind of call a kernel makes, with platform hooks.
 * Exit status 0 and "freestanding: ok" only when every check passed.
 */
#include <stddef.h>
#include <stdint.h>

#include "mkipc.h"

static long syscall3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static size_t length(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static void print(const char *s) { syscall3(1 /* write */, 1, (long)s, (long)length(s)); }

__attribute__((noreturn)) static void halt(int code) {
    for (;;) syscall3(60 /* exit */, code, 0, 0);
}

static int failures;

static void expect(int32_t got, int32_t want, const char *what) {
    if (got != want) {
        print("freestanding: FAILED: ");
        print(what);
        print(": ");
        print(mkipc_status_str(got));
        print("\n");
        failures++;
    }
}

/* The shared window: in a real kernel, memory both kernels map. */
static uint64_t window[64 * 1024 / 8];

/* Platform hooks: a doorbell counter and a fake clock advancing 1 us per read. */
static uint64_t doorbells, ticks;
static void ring_doorbell(void *ctx) { (*(uint64_t *)ctx)++; }
static uint64_t now_ns(void *ctx) {
    (void)ctx;
    return ticks += 1000;
}
/* A sleeping consumer: `wait` stands in for `sti; hlt` until an IPI. The peer
   kernel's producer publishes during the sleep (when `peer_sends` is set), and
   its doorbell counts as the IPI; otherwise the sleep lasts to the deadline. */
static mkipc_producer *peer;
static int peer_sends;
static uint64_t waits, prepared;
static uint64_t wait_prepare(void *ctx) {
    (void)ctx;
    return ++prepared;
}
static void wait(void *ctx, uint64_t token, uint64_t deadline_ns) {
    (void)ctx;
    waits++;
    if (token != prepared) return;
    if (peer_sends) {
        static const uint8_t ping[] = "ping";
        peer_sends = 0;
        mkipc_producer_push(peer, ping, sizeof ping);
        return;
    }
    if (ticks < deadline_ns) ticks = deadline_ns;
}
static void on_panic(const char *message) {
    print(message);
    halt(70);
}

static int equal(const uint8_t *a, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static int kmain(void) {
    mkipc_set_panic_hook(on_panic);
    static mkipc_region region;
    expect(mkipc_region_from_memory(&region, 0, sizeof window), MKIPC_STATUS_NULL, "null memory");
    expect(mkipc_region_from_memory(&region, (uint8_t *)window + 4, 64), MKIPC_STATUS_INVALID_ARGUMENT,
           "misaligned memory");
    expect(mkipc_region_from_memory(&region, window, sizeof window), MKIPC_STATUS_OK, "region");
    expect(mkipc_region_check(&region, 0), MKIPC_STATUS_NOT_INITIALIZED, "unformatted");
    expect(mkipc_region_format(&region, 7), MKIPC_STATUS_OK, "format");
    uint64_t generation = 0;
    expect(mkipc_region_check(&region, &generation), MKIPC_STATUS_OK, "check");
    if (generation != 7) failures++;

    size_t ring_size = 0, chan_size = 0;
    expect(mkipc_ring_size(8, 56, MKIPC_LAYOUT_COMPACT, &ring_size), MKIPC_STATUS_OK, "ring size");
    expect(mkipc_ring_size(3, 56, 0, &ring_size), MKIPC_STATUS_INVALID_ARGUMENT, "bad slot count");
    expect(mkipc_channel_size(4, 256, MKIPC_LAYOUT_COMPACT, &chan_size), MKIPC_STATUS_OK, "chan size");
    const size_t ring_at = MKIPC_HEADER_SIZE;
    const size_t chan_at = (ring_at + ring_size + MKIPC_COMPACT_ALIGN - 1) / MKIPC_COMPACT_ALIGN * MKIPC_COMPACT_ALIGN;
    expect(mkipc_ring_create(&region, ring_at, 8, 56, MKIPC_LAYOUT_COMPACT), MKIPC_STATUS_OK, "ring");
    expect(mkipc_channel_create(&region, chan_at, 4, 256, MKIPC_LAYOUT_COMPACT), MKIPC_STATUS_OK, "chan");
    expect(mkipc_channel_create(&region, sizeof window - 128, 4, 256, MKIPC_LAYOUT_COMPACT),
           MKIPC_STATUS_DOES_NOT_FIT, "chan past the end");

    /* Ring: hooks, push, pop, empty, timed pop on the fake clock. */
    static mkipc_producer tx;
    static mkipc_consumer rx;
    expect(mkipc_producer_attach(&tx, &region, ring_at), MKIPC_STATUS_OK, "producer");
    expect(mkipc_consumer_attach(&rx, &region, ring_at), MKIPC_STATUS_OK, "consumer");
    mkipc_hooks hooks = {.ctx = &doorbells, .ring_doorbell = ring_doorbell, .now_ns = now_ns};
    expect(mkipc_producer_set_hooks(&tx, &hooks), MKIPC_STATUS_OK, "producer hooks");
    expect(mkipc_consumer_set_hooks(&rx, &hooks), MKIPC_STATUS_OK, "consumer hooks");
    static const uint8_t hello[] = "hello from a freestanding kernel";
    uint8_t buf[64];
    size_t len = 0;
    for (int i = 0; i < 3; i++)
        expect(mkipc_producer_push(&tx, hello, sizeof hello), MKIPC_STATUS_OK, "push");
    expect(mkipc_producer_push(&tx, buf, 57), MKIPC_STATUS_TOO_LARGE, "push too large");
    /* Need-wakeup: the consumer never announced a sleep, so nothing rang. */
    if (doorbells != 0) failures++;
    expect(mkipc_consumer_pop(&rx, buf, 8, &len), MKIPC_STATUS_BUFFER_TOO_SMALL, "pop small");
    if (len != sizeof hello) failures++;
    for (int i = 0; i < 3; i++) {
        expect(mkipc_consumer_pop(&rx, buf, sizeof buf, &len), MKIPC_STATUS_OK, "pop");
        if (len != sizeof hello || !equal(buf, hello, len)) failures++;
    }
    expect(mkipc_consumer_pop(&rx, buf, sizeof buf, &len), MKIPC_STATUS_EMPTY, "pop empty");
    uint64_t before = ticks;
    expect(mkipc_consumer_pop_timeout(&rx, buf, sizeof buf, &len, 50000), MKIPC_STATUS_TIMED_OUT,
           "timed pop");
    if (ticks - before < 50000) failures++;

    /* With wait hooks the consumer sleeps after announcing it; a message
       published during the sleep rings the doorbell once and ends the wait. */
    mkipc_hooks sleepy = {.ctx = &doorbells, .now_ns = now_ns, .wait_prepare = wait_prepare,
                          .wait = wait};
    expect(mkipc_consumer_set_hooks(&rx, &sleepy), MKIPC_STATUS_OK, "sleeping hooks");
    peer = &tx;
    peer_sends = 1;
    expect(mkipc_consumer_pop_timeout(&rx, buf, sizeof buf, &len, 1000000000), MKIPC_STATUS_OK,
           "woken pop");
    if (len != 5 || !equal(buf, (const uint8_t *)"ping", 5)) failures++;
    if (doorbells != 1 || waits != 1) {
        print("freestanding: FAILED: a sleeping consumer was not rung exactly once\n");
        failures++;
    }
    /* Awake again: publishing rings nothing. */
    expect(mkipc_producer_push(&tx, hello, sizeof hello), MKIPC_STATUS_OK, "push awake");
    if (doorbells != 1) failures++;
    expect(mkipc_consumer_pop(&rx, buf, sizeof buf, &len), MKIPC_STATUS_OK, "pop awake");
    /* Nobody publishes: the sleep lasts to the deadline. */
    before = ticks;
    expect(mkipc_consumer_pop_timeout(&rx, buf, sizeof buf, &len, 50000), MKIPC_STATUS_TIMED_OUT,
           "sleeping timed pop");
    if (ticks - before < 50000 || waits < 2) failures++;

    /* Byte channel: zero-copy loan and hold, copied inline message, returns. */
    static mkipc_sender sender;
    static mkipc_receiver receiver;
    expect(mkipc_sender_attach(&sender, &region, chan_at), MKIPC_STATUS_OK, "sender");
    expect(mkipc_receiver_attach(&receiver, &region, chan_at), MKIPC_STATUS_OK, "receiver");
    mkipc_loan loan;
    expect(mkipc_sender_loan(&sender, &loan), MKIPC_STATUS_OK, "loan");
    if (loan.capacity != 256) failures++;
    static uint8_t block[200];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (uint8_t)(i * 3);
    expect(mkipc_sender_loan_write(&sender, &loan, 0, block, sizeof block), MKIPC_STATUS_OK, "loan write");
    expect(mkipc_sender_loan_write(&sender, &loan, 200, block, 57), MKIPC_STATUS_TOO_LARGE, "loan overrun");
    expect(mkipc_sender_send_loan(&sender, &loan, sizeof block), MKIPC_STATUS_OK, "send loan");
    expect(mkipc_sender_send_loan(&sender, &loan, sizeof block), MKIPC_STATUS_FOREIGN, "resend loan");
    /* The buffer is where the loan said: a kernel could have written it in place. */
    if (!equal((const uint8_t *)window + loan.region_offset, block, sizeof block)) failures++;
    mkipc_held held;
    expect(mkipc_receiver_hold(&receiver, &held), MKIPC_STATUS_OK, "hold");
    if (held.len != sizeof block || held.index != loan.index) failures++;
    static uint8_t copy[200];
    expect(mkipc_receiver_read(&receiver, &held, 0, copy, sizeof copy), MKIPC_STATUS_OK, "read held");
    expect(mkipc_receiver_read(&receiver, &held, 1, copy, sizeof copy), MKIPC_STATUS_INVALID_ARGUMENT,
           "read past the message");
    if (!equal(copy, block, sizeof block)) failures++;
    expect(mkipc_receiver_release(&receiver, &held), MKIPC_STATUS_OK, "release");
    expect(mkipc_receiver_release(&receiver, &held), MKIPC_STATUS_FOREIGN, "double release");
    expect(mkipc_sender_send(&sender, hello, sizeof hello), MKIPC_STATUS_OK, "send inline");
    expect(mkipc_receiver_hold(&receiver, &held), MKIPC_STATUS_NEEDS_COPY, "hold inline");
    expect(mkipc_receiver_recv(&receiver, buf, sizeof buf, &len), MKIPC_STATUS_OK, "recv inline");
    if (len != sizeof hello || !equal(buf, hello, len)) failures++;
    size_t collected = 0;
    expect(mkipc_sender_collect(&sender, &collected), MKIPC_STATUS_OK, "collect");
    if (collected != 1) failures++;

    /* Bad handles: null, wrong kind, closed. */
    expect(mkipc_producer_push(0, hello, 1), MKIPC_STATUS_NULL, "null handle");
    expect(mkipc_producer_push((mkipc_producer *)&rx, hello, 1), MKIPC_STATUS_BAD_HANDLE, "wrong kind");
    expect(mkipc_producer_close(&tx), MKIPC_STATUS_OK, "close producer");
    expect(mkipc_producer_push(&tx, hello, 1), MKIPC_STATUS_BAD_HANDLE, "closed handle");
    expect(mkipc_consumer_close(&rx), MKIPC_STATUS_OK, "close consumer");
    expect(mkipc_sender_close(&sender), MKIPC_STATUS_OK, "close sender");
    expect(mkipc_receiver_close(&receiver), MKIPC_STATUS_OK, "close receiver");
    expect(mkipc_region_close(&region), MKIPC_STATUS_OK, "close region");
    return failures;
}

__attribute__((force_align_arg_pointer, noreturn)) void _start(void) {
    int failed = kmain();
    print(failed ? "freestanding: FAILED\n" : "freestanding: ok\n");
    halt(failed ? 1 : 0);
}
