//! One conformance suite, run against every Linux doorbell backend (the shared
//! futex on a region word and the eventfd). A new backend gets the same checks by
//! adding one `conformance!` line.

#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use mkipc::Region;
use mkipc::doorbell::{
    BlockingConsumer, Doorbell, NotifyingProducer, RecvError, SpinPolicy, Waiter, Wake,
};
use mkipc::spsc::{Geometry, RingLayout};
use mkipc_sys::linux::{EventFd, FutexDoorbell, FutexWaiter};

/// Long enough never to pass on a working backend, even on a loaded machine: a
/// lost wake-up shows up as this timeout.
const LONG: Duration = Duration::from_secs(20);

/// A backend: makes a connected (doorbell, waiter) pair, given a region in which
/// it may use the word at `word` (futex) or ignore it (eventfd).
trait Backend {
    type Bell: Doorbell + Send + 'static;
    type Wait: Waiter + Send + 'static;
    fn pair(region: &Region, word: usize) -> (Self::Bell, Self::Wait);
}

struct Futex;
impl Backend for Futex {
    type Bell = FutexDoorbell;
    type Wait = FutexWaiter;
    fn pair(region: &Region, word: usize) -> (FutexDoorbell, FutexWaiter) {
        (
            FutexDoorbell::new(region.clone(), word).unwrap(),
            FutexWaiter::new(region.clone(), word).unwrap(),
        )
    }
}

struct Eventfd;
impl Backend for Eventfd {
    type Bell = EventFd;
    type Wait = EventFd;
    fn pair(_: &Region, _: usize) -> (EventFd, EventFd) {
        let e = EventFd::new().unwrap();
        (e.try_clone().unwrap(), e)
    }
}

fn bare<B: Backend>() -> (B::Bell, B::Wait) {
    let region = Region::new_heap(64);
    B::pair(&region, 0)
}

const GEOMETRY: Geometry = Geometry::new(16, 16).compact();

/// A ring at 0 and the doorbell word after it.
fn ring<B: Backend>(policy: SpinPolicy) -> (NotifyingProducer<B::Bell>, BlockingConsumer<B::Wait>) {
    let size = GEOMETRY.ring_size().unwrap();
    let region = Region::new_heap(size + 128);
    RingLayout::create(&region, 0, GEOMETRY).unwrap();
    let (bell, wait) = B::pair(&region, size);
    (
        NotifyingProducer::attach(region.clone(), 0, bell).unwrap(),
        BlockingConsumer::attach(region, 0, wait, policy).unwrap(),
    )
}

/// Published and rung before the receiver waits: received at once through the
/// re-check, without sleeping. (A ring from before the waiter's snapshot answers
/// a publication the re-check sees, so the waiter may drop it: see the
/// `Waiter::wait_unless` contract.)
fn ring_then_wait<B: Backend>() {
    let (mut tx, mut rx) = ring::<B>(SpinPolicy::sleep_at_once());
    tx.push(b"early").unwrap();
    tx.ring().unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv(&mut buf, LONG).unwrap(), 5);
    assert!(start.elapsed() < LONG / 2);
    assert_eq!(rx.stats().sleeps, 0);
    // At the waiter level: a pending ring never hides work the re-check finds.
    let (bell, wait) = bare::<B>();
    bell.ring().unwrap();
    assert_eq!(wait.wait_unless(|| true, LONG).unwrap(), Wake::Ready);
}

/// A ring from another thread ends a sleep in progress.
fn wait_then_ring<B: Backend>() {
    let (bell, wait) = bare::<B>();
    let asleep = Arc::new(Barrier::new(2));
    let a = asleep.clone();
    let waiter = thread::spawn(move || {
        let mut first = true;
        let start = Instant::now();
        let wake = wait
            .wait_unless(
                || {
                    if first {
                        first = false;
                        a.wait();
                    }
                    false
                },
                LONG,
            )
            .unwrap();
        (wake, start.elapsed())
    });
    asleep.wait();
    thread::sleep(Duration::from_millis(20));
    bell.ring().unwrap();
    let (wake, took) = waiter.join().unwrap();
    assert_eq!(wake, Wake::Rung);
    assert!(took < LONG / 2, "woken after {took:?}");
}

/// A ring between the waiter's snapshot and its sleep (here: during the
/// re-check) is not lost: the exact window the snapshot exists for.
fn ring_during_recheck_is_kept<B: Backend>() {
    let (bell, wait) = bare::<B>();
    let wake = wait
        .wait_unless(
            || {
                bell.ring().unwrap();
                false
            },
            LONG,
        )
        .unwrap();
    assert_eq!(wake, Wake::Rung);
}

/// Work found by the re-check means no sleep.
fn ready_means_no_sleep<B: Backend>() {
    let (_bell, wait) = bare::<B>();
    assert_eq!(wait.wait_unless(|| true, LONG).unwrap(), Wake::Ready);
}

/// Without a ring the wait ends at its timeout, not before; the blocking
/// consumer counts it.
fn timeout<B: Backend>() {
    let (_bell, wait) = bare::<B>();
    let t = Duration::from_millis(30);
    let start = Instant::now();
    assert_eq!(wait.wait_unless(|| false, t).unwrap(), Wake::TimedOut);
    assert!(start.elapsed() >= t);
    let (_tx, mut rx) = ring::<B>(SpinPolicy::new(16));
    let mut buf = [0u8; 16];
    assert!(matches!(rx.recv(&mut buf, t), Err(RecvError::TimedOut)));
    assert_eq!(rx.stats().timeouts, 1);
    assert_eq!(rx.stats().spins, 16);
}

/// Ping-pong through two rings, both sides sleeping whenever idle (no spin):
/// every message needs a wake-up, and a lost one hangs a side until `LONG`.
fn no_lost_wake_up_under_stress<B: Backend>() {
    let rounds = 20_000u32;
    let (mut req_tx, mut req_rx) = ring::<B>(SpinPolicy::sleep_at_once());
    let (mut rep_tx, mut rep_rx) = ring::<B>(SpinPolicy::sleep_at_once());
    let server = thread::spawn(move || {
        let mut buf = [0u8; 16];
        for _ in 0..rounds {
            let n = req_rx.recv(&mut buf, LONG).expect("request lost");
            rep_tx.push(&buf[..n]).unwrap();
        }
        (req_rx.stats(), rep_tx.stats())
    });
    let mut buf = [0u8; 16];
    for i in 0..rounds {
        req_tx.push(&i.to_le_bytes()).unwrap();
        let n = rep_rx.recv(&mut buf, LONG).expect("reply lost");
        assert_eq!(buf[..n], i.to_le_bytes());
    }
    let (server_wait, server_notify) = server.join().unwrap();
    for (wait, notify) in [
        (server_wait, req_tx.stats()),
        (rep_rx.stats(), server_notify),
    ] {
        assert_eq!(wait.timeouts, 0);
        assert_eq!(notify.rung + notify.suppressed, u64::from(rounds));
        // Every ring answered one announced sleep (the ringer rings once per epoch).
        assert!(
            notify.rung <= wait.sleeps + wait.rechecks_ready,
            "{notify:?} {wait:?}"
        );
    }
}

/// Counters: a streaming sender that outpaces nothing still delivers every
/// message; rung + suppressed covers every notify, and an awake receiver (long
/// spin budget, pre-filled ring) is never rung.
fn counters<B: Backend>() {
    let (mut tx, mut rx) = ring::<B>(SpinPolicy::new(1 << 20));
    for i in 0..8u8 {
        tx.push(&[i]).unwrap();
    }
    let mut buf = [0u8; 16];
    for i in 0..8u8 {
        assert_eq!(rx.recv(&mut buf, LONG).unwrap(), 1);
        assert_eq!(buf[0], i);
    }
    assert_eq!(tx.stats().rung, 0);
    assert_eq!(tx.stats().suppressed, 8);
    assert_eq!(rx.stats().sleeps, 0);

    // A stream through a 16-slot ring with a sleeping receiver.
    let (mut tx, mut rx) = ring::<B>(SpinPolicy::new(64));
    let n = 50_000u32;
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let sender = thread::spawn(move || {
        for i in 0..n {
            loop {
                match tx.push(&i.to_le_bytes()) {
                    Ok(()) => break,
                    Err(_) => thread::yield_now(),
                }
            }
        }
        d.store(true, Ordering::Release);
        tx.stats()
    });
    for i in 0..n {
        let len = rx.recv(&mut buf, LONG).expect("stream message lost");
        assert_eq!(buf[..len], i.to_le_bytes());
    }
    let sent = sender.join().unwrap();
    assert!(done.load(Ordering::Acquire));
    assert_eq!(sent.rung + sent.suppressed, u64::from(n));
    let got = rx.stats();
    assert!(
        sent.rung <= got.sleeps + got.rechecks_ready,
        "{sent:?} {got:?}"
    );
    assert_eq!(got.timeouts, 0);
}

macro_rules! conformance {
    ($module:ident = $backend:ident: $($case:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $case() {
                    super::$case::<super::$backend>();
                }
            )*
        }
    };
}

conformance!(futex = Futex: ring_then_wait, wait_then_ring, ring_during_recheck_is_kept,
    ready_means_no_sleep, timeout, no_lost_wake_up_under_stress, counters);
conformance!(eventfd = Eventfd: ring_then_wait, wait_then_ring, ring_during_recheck_is_kept,
    ready_means_no_sleep, timeout, no_lost_wake_up_under_stress, counters);
