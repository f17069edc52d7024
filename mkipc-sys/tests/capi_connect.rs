//! Connecting by channel name through the C ABI (nodes, the manifest handshake,
//! a status per refusal), and the need-wakeup doorbell of the C hooks: a
//! saturated exchange rings far fewer doorbells than it sends messages, and a
//! sleeping consumer is still woken.

#![cfg(feature = "capi")]

use core::ffi::c_void;
use core::ptr::null;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use mkipc::Region;
use mkipc::manifest::{ChannelSpec, End, GrantSpec, ManifestBuilder, NodeSpec, Rights};
use mkipc::spsc::Geometry;
use mkipc_sys::capi::Status;
use mkipc_sys::capi::hooks::MkipcHooks;
use mkipc_sys::capi::node::*;
use mkipc_sys::capi::region::*;
use mkipc_sys::capi::ring::*;

const OK: i32 = Status::Ok as i32;
const MS: u64 = 1_000_000;

fn zeroed<T>() -> Box<T> {
    // SAFETY: the handle structs are arrays of u64; all-zero is their initial state.
    Box::new(unsafe { core::mem::zeroed() })
}

/// A region in test memory with a manifest: nodes `tx` (1) and `rx` (2), SPSC
/// channel `ch` (8 slots of 64 bytes) granted tx -> rx, and channel `other`
/// granted to nobody.
struct Fixture {
    _memory: Vec<u64>,
    region: Box<MkipcRegion>,
}

impl Fixture {
    fn new(slots: u32) -> Fixture {
        let geometry = Geometry::new(slots, 64).compact();
        let nodes = [
            NodeSpec { id: 1, name: "tx" },
            NodeSpec { id: 2, name: "rx" },
        ];
        let channels = [
            ChannelSpec::spsc("ch", geometry),
            ChannelSpec::spsc("other", geometry),
        ];
        let grants = [
            GrantSpec {
                node: 1,
                channel: "ch",
                end: End::Producer,
                rights: Rights::SEND,
            },
            GrantSpec {
                node: 2,
                channel: "ch",
                end: End::Consumer,
                rights: Rights::RECEIVE,
            },
        ];
        let builder = ManifestBuilder::new(&nodes, &channels, &grants);
        let size = builder.required_size().unwrap();
        let mut memory = vec![0u64; size.div_ceil(8)];
        let len = memory.len() * 8;
        let base: *mut c_void = memory.as_mut_ptr().cast();
        // SAFETY: the vector lives as long as the fixture, which outlives every
        // handle made from it; all access is through whole-word atomics.
        let peer = unsafe { Region::from_raw_parts(base.cast(), len) }.unwrap();
        builder.write(&peer, 1).unwrap();
        let mut region = zeroed::<MkipcRegion>();
        // SAFETY: as above.
        let st = unsafe { mkipc_region_from_memory(&mut *region, base, len) };
        assert_eq!(st, OK);
        Fixture {
            _memory: memory,
            region,
        }
    }

    fn boot(&self, name: &core::ffi::CStr) -> Box<MkipcNode> {
        let mut node = zeroed::<MkipcNode>();
        // SAFETY: live storage and region.
        let st = unsafe { mkipc_node_boot(&mut *node, &*self.region, name.as_ptr()) };
        assert_eq!(st, OK);
        node
    }
}

#[test]
fn each_connect_refusal_has_its_status_and_a_connected_pair_exchanges() {
    let f = Fixture::new(8);
    let mut tx_node = f.boot(c"tx");
    let rx_node = f.boot(c"rx");
    let mut ghost = zeroed::<MkipcNode>();
    let mut tx = zeroed::<MkipcProducer>();
    let mut rx = zeroed::<MkipcConsumer>();
    let mut buf = [0u8; 64];
    let mut len = 0usize;
    // SAFETY: every pointer is live storage of its kind, a C string, or null.
    unsafe {
        assert_eq!(
            mkipc_node_boot(&mut *ghost, &*f.region, c"ghost".as_ptr()),
            Status::NoSuchNode as i32
        );
        assert_eq!(
            mkipc_node_boot_id(&mut *ghost, &*f.region, 9),
            Status::NoSuchNode as i32
        );
        let mut epoch = 0;
        assert_eq!(mkipc_node_epoch(&*tx_node, &mut epoch), OK);
        assert_eq!(epoch, 1);
        let connect_tx = |tx: &mut MkipcProducer, node: &MkipcNode, ch: &core::ffi::CStr| {
            mkipc_producer_connect(tx, node, ch.as_ptr(), null(), 0, 0)
        };
        assert_eq!(
            connect_tx(&mut tx, &tx_node, c"nope"),
            Status::NoSuchChannel as i32
        );
        assert_eq!(
            connect_tx(&mut tx, &tx_node, c"other"),
            Status::NotGranted as i32
        );
        assert_eq!(
            connect_tx(&mut tx, &rx_node, c"ch"),
            Status::NotGranted as i32
        );
        let mut wrong = MkipcMessageType::default();
        assert_eq!(mkipc_message_type_bytes(32, &mut wrong), OK);
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), &wrong, 0, 0),
            Status::TypeMismatch as i32
        );
        let too_large = MkipcMessageType {
            size: 128,
            ..MkipcMessageType::default()
        };
        let mut bytes128 = MkipcMessageType::default();
        assert_eq!(mkipc_message_type_bytes(128, &mut bytes128), OK);
        assert_ne!(too_large, bytes128);
        // No producer yet: the consumer finds no offer within its timeout.
        let t0 = Instant::now();
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 20 * MS),
            Status::PeerNotReady as i32
        );
        assert!(t0.elapsed() >= Duration::from_millis(20));
        // The producer offers; the consumer accepts; messages flow. Nothing is
        // left open by the refusals above.
        assert_eq!(connect_tx(&mut tx, &tx_node, c"ch"), OK);
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 100 * MS),
            OK
        );
        assert_eq!(mkipc_producer_push(&mut *tx, b"hello".as_ptr(), 5), OK);
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), buf.len(), &mut len),
            OK
        );
        assert_eq!(&buf[..len], b"hello");
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), 2, &mut len),
            Status::Empty as i32
        );
        assert_eq!(
            mkipc_producer_push(&mut *tx, buf.as_ptr(), 65),
            Status::TooLarge as i32
        );
        // The producer closes after one more message: it is delivered, then CLOSED.
        assert_eq!(mkipc_producer_push(&mut *tx, b"last".as_ptr(), 4), OK);
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), 2, &mut len),
            Status::BufferTooSmall as i32
        );
        assert_eq!(len, 4);
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), buf.len(), &mut len),
            OK
        );
        assert_eq!(&buf[..len], b"last");
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), buf.len(), &mut len),
            Status::Closed as i32
        );
        assert_eq!(mkipc_consumer_close(&mut *rx), OK);
        // The consumer reset the channel after the close: the producer node's
        // next incarnation connects at once.
        assert_eq!(mkipc_node_close(&mut *tx_node), OK);
        tx_node = f.boot(c"tx");
        let mut epoch = 0;
        assert_eq!(mkipc_node_epoch(&*tx_node, &mut epoch), OK);
        assert_eq!(epoch, 2);
        assert_eq!(connect_tx(&mut tx, &tx_node, c"ch"), OK);
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
    }
}

#[test]
fn a_consumer_refuses_a_stale_offer_and_a_producer_restart_waits_for_the_reclaim() {
    let f = Fixture::new(8);
    let rx_node = f.boot(c"rx");
    let mut tx = zeroed::<MkipcProducer>();
    let mut rx = zeroed::<MkipcConsumer>();
    // SAFETY: live storage, C strings, null type pointers.
    unsafe {
        let tx_node = f.boot(c"tx");
        assert_eq!(
            mkipc_producer_connect(&mut *tx, &*tx_node, c"ch".as_ptr(), null(), 0, 0),
            OK
        );
        // The producer's node reboots (the old incarnation died) before the
        // consumer looked: the offer is from an incarnation no longer running.
        let tx_node = f.boot(c"tx");
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 0),
            Status::StaleEpoch as i32
        );
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 10 * MS),
            Status::StaleEpoch as i32
        );
        // The new incarnation must wait until the consumer reclaims the old one.
        let mut again = zeroed::<MkipcProducer>();
        assert_eq!(
            mkipc_producer_connect(&mut *again, &*tx_node, c"ch".as_ptr(), null(), 0, 0),
            Status::ReclaimPending as i32
        );
        assert_eq!(
            mkipc_producer_connect(&mut *again, &*tx_node, c"ch".as_ptr(), null(), 0, 10 * MS),
            Status::ReclaimPending as i32
        );
        assert_eq!(mkipc_producer_close(&mut *again), Status::BadHandle as i32);
        assert_eq!(mkipc_consumer_close(&mut *rx), Status::BadHandle as i32);
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
    }
}

#[test]
fn a_restarted_producer_waits_for_the_reclaim_of_its_dead_incarnation() {
    let f = Fixture::new(8);
    let tx_node = f.boot(c"tx");
    let rx_node = f.boot(c"rx");
    let mut tx = zeroed::<MkipcProducer>();
    let mut rx = zeroed::<MkipcConsumer>();
    // SAFETY: live storage, C strings, null type pointers.
    unsafe {
        assert_eq!(
            mkipc_producer_connect(&mut *tx, &*tx_node, c"ch".as_ptr(), null(), 0, 0),
            OK
        );
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 100 * MS),
            OK
        );
        assert_eq!(mkipc_producer_push(&mut *tx, b"x".as_ptr(), 1), OK);
        // The producer "dies": its node reboots with the handle never closed.
        let tx_node = f.boot(c"tx");
        let mut again = zeroed::<MkipcProducer>();
        assert_eq!(
            mkipc_producer_connect(&mut *again, &*tx_node, c"ch".as_ptr(), null(), 0, 0),
            Status::ReclaimPending as i32
        );
        assert_eq!(mkipc_producer_close(&mut *again), Status::BadHandle as i32);
        // The consumer still receives what the dead incarnation committed.
        let mut buf = [0u8; 8];
        let mut len = 0;
        assert_eq!(
            mkipc_consumer_pop(&mut *rx, buf.as_mut_ptr(), buf.len(), &mut len),
            OK
        );
        assert_eq!(&buf[..len], b"x");
    }
}

/// Platform hooks in Rust: a doorbell counted and remembered in a condition
/// variable, and a `wait` that sleeps on it (the snapshot is the ring count).
#[derive(Default)]
struct Bell {
    rung: Mutex<u64>,
    cv: Condvar,
    prepares: AtomicU64,
    waits: AtomicU64,
}

static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

unsafe extern "C" fn now_ns(_ctx: *mut c_void) -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// # Safety
///
/// `ctx` is a live `Bell`.
unsafe fn bell<'a>(ctx: *mut c_void) -> &'a Bell {
    // SAFETY: by the contract.
    unsafe { &*ctx.cast::<Bell>() }
}

unsafe extern "C" fn ring(ctx: *mut c_void) {
    // SAFETY: the hooks' ctx is a live Bell in every test.
    let b = unsafe { bell(ctx) };
    *b.rung.lock().unwrap() += 1;
    b.cv.notify_all();
}

unsafe extern "C" fn wait_prepare(ctx: *mut c_void) -> u64 {
    // SAFETY: as in `ring`.
    let b = unsafe { bell(ctx) };
    b.prepares.fetch_add(1, Ordering::Relaxed);
    *b.rung.lock().unwrap()
}

unsafe extern "C" fn wait(ctx: *mut c_void, token: u64, deadline_ns: u64) {
    // SAFETY: as in `ring`.
    let b = unsafe { bell(ctx) };
    b.waits.fetch_add(1, Ordering::Relaxed);
    let mut rung = b.rung.lock().unwrap();
    while *rung == token {
        // SAFETY: no context needed.
        let now = unsafe { now_ns(ctx) };
        if now >= deadline_ns {
            return;
        }
        rung =
            b.cv.wait_timeout(rung, Duration::from_nanos(deadline_ns - now))
                .unwrap()
                .0;
    }
}

fn hooks(b: &Bell) -> MkipcHooks {
    MkipcHooks {
        ctx: (b as *const Bell).cast_mut().cast(),
        ring_doorbell: Some(ring),
        now_ns: Some(now_ns),
        relax: None,
        wait_prepare: Some(wait_prepare),
        wait: Some(wait),
    }
}

/// A raw handle pointer moved into a scoped thread (each handle is used by one
/// thread only).
struct Mine<T>(*mut T);
// SAFETY: the pointee is used by the receiving thread alone until it ends.
unsafe impl<T> Send for Mine<T> {}

/// A connected producer and consumer on `f` with the bell's hooks.
fn connected_pair(f: &Fixture, b: &Bell) -> (Box<MkipcProducer>, Box<MkipcConsumer>) {
    let tx_node = f.boot(c"tx");
    let rx_node = f.boot(c"rx");
    let mut tx = zeroed::<MkipcProducer>();
    let mut rx = zeroed::<MkipcConsumer>();
    let h = hooks(b);
    // SAFETY: live storage, C strings, null type pointers, hooks with a live ctx
    // (the bell outlives the endpoints in every test).
    unsafe {
        assert_eq!(
            mkipc_producer_connect(&mut *tx, &*tx_node, c"ch".as_ptr(), null(), 0, 0),
            OK
        );
        assert_eq!(
            mkipc_consumer_connect(&mut *rx, &*rx_node, c"ch".as_ptr(), null(), 0, 100 * MS),
            OK
        );
        assert_eq!(mkipc_producer_set_hooks(&mut *tx, &h), OK);
        assert_eq!(mkipc_consumer_set_hooks(&mut *rx, &h), OK);
    }
    (tx, rx)
}

#[test]
fn a_saturated_exchange_rings_far_fewer_doorbells_than_messages() {
    const MESSAGES: u64 = if cfg!(miri) { 100 } else { 100_000 };
    let f = Fixture::new(64);
    let b = Bell::default();
    let (mut tx, mut rx) = connected_pair(&f, &b);
    let (tx_ptr, rx_ptr) = (
        Mine(&mut *tx as *mut MkipcProducer),
        Mine(&mut *rx as *mut _),
    );
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let tx = tx_ptr;
            for seq in 0..MESSAGES {
                let msg = seq.to_le_bytes();
                // SAFETY: this thread alone uses the producer.
                let st = unsafe { mkipc_producer_push_timeout(tx.0, msg.as_ptr(), 8, 10_000 * MS) };
                assert_eq!(st, OK, "push {seq}");
            }
        });
        let rx = rx_ptr;
        let mut buf = [0u8; 64];
        let mut len = 0;
        for seq in 0..MESSAGES {
            // SAFETY: this thread alone uses the consumer.
            let st = unsafe {
                mkipc_consumer_pop_timeout(rx.0, buf.as_mut_ptr(), 64, &mut len, 10_000 * MS)
            };
            assert_eq!(st, OK, "pop {seq}");
            assert_eq!(buf[..len], seq.to_le_bytes());
        }
        producer.join().unwrap();
    });
    let rung = *b.rung.lock().unwrap();
    let prepares = b.prepares.load(Ordering::Relaxed);
    eprintln!(
        "{MESSAGES} messages: {rung} doorbells, {prepares} announced sleeps, {} waits",
        b.waits.load(Ordering::Relaxed)
    );
    // One ring at most per sleep the consumer announced, and far fewer than one
    // per message (the consumer sleeps only after its spin budget found nothing).
    assert!(
        rung <= prepares,
        "{rung} rings for {prepares} announced sleeps"
    );
    assert!(
        rung * 4 < MESSAGES,
        "{rung} doorbells for {MESSAGES} messages"
    );
    // SAFETY: live handles, no other user left.
    unsafe {
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
        assert_eq!(mkipc_consumer_close(&mut *rx), OK);
    }
}

#[test]
fn a_sleeping_consumer_is_woken_by_the_doorbell() {
    let f = Fixture::new(8);
    let b = Bell::default();
    let (mut tx, mut rx) = connected_pair(&f, &b);
    let rx_ptr = Mine(&mut *rx as *mut MkipcConsumer);
    std::thread::scope(|s| {
        let consumer = s.spawn(move || {
            let rx = rx_ptr;
            let mut buf = [0u8; 64];
            let mut len = 0;
            let t0 = Instant::now();
            // SAFETY: this thread alone uses the consumer.
            let st = unsafe {
                mkipc_consumer_pop_timeout(rx.0, buf.as_mut_ptr(), 64, &mut len, 20_000 * MS)
            };
            (st, buf[..len].to_vec(), t0.elapsed())
        });
        // Wait (bounded) until the consumer is asleep in the `wait` hook.
        let t0 = Instant::now();
        while b.waits.load(Ordering::Relaxed) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the consumer never slept"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // SAFETY: this thread alone uses the producer.
        let st = unsafe { mkipc_producer_push(&mut *tx, b"wake".as_ptr(), 4) };
        assert_eq!(st, OK);
        let (st, got, waited) = consumer.join().unwrap();
        assert_eq!(st, OK);
        assert_eq!(got, b"wake");
        // Woken by the ring, not by the 20 s deadline.
        assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
    });
    assert_eq!(*b.rung.lock().unwrap(), 1, "exactly one ring for one sleep");
    // SAFETY: live handles, no other user left.
    unsafe {
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
        assert_eq!(mkipc_consumer_close(&mut *rx), OK);
    }
}

unsafe extern "C" fn frozen_clock(_ctx: *mut c_void) -> u64 {
    42
}

unsafe extern "C" fn no_sleep(_ctx: *mut c_void, _token: u64, _deadline_ns: u64) {}

#[test]
fn a_sleep_on_a_clock_that_stands_still_ends_with_no_clock() {
    let f = Fixture::new(8);
    let b = Bell::default();
    let (mut tx, mut rx) = connected_pair(&f, &b);
    let frozen = MkipcHooks {
        now_ns: Some(frozen_clock),
        wait: Some(no_sleep),
        ..hooks(&b)
    };
    let mut buf = [0u8; 8];
    let mut len = 0;
    // SAFETY: live handles; the hooks' ctx is the live bell.
    unsafe {
        assert_eq!(mkipc_consumer_set_hooks(&mut *rx, &frozen), OK);
        assert_eq!(
            mkipc_consumer_pop_timeout(&mut *rx, buf.as_mut_ptr(), 8, &mut len, 1_000 * MS),
            Status::NoClock as i32
        );
        assert_eq!(mkipc_producer_close(&mut *tx), OK);
        assert_eq!(mkipc_consumer_close(&mut *rx), OK);
    }
}
