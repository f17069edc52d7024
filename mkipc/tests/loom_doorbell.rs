//! loom model of the need-wakeup protocol: no wake-up is lost.
//!
//! The model waiter sleeps like a futex: it snapshots a doorbell word (Acquire),
//! re-checks for work, then blocks on a condition variable until the word moves,
//! **with no timeout**. A lost wake-up therefore leaves the consumer blocked for
//! ever while the producer has finished, which loom reports as a deadlock. Every
//! interleaving (up to the preemption bound) and every value a relaxed load may
//! return is explored, including the store-buffering outcome the two SeqCst
//! fences exist to forbid (removing either fence makes these models fail).
//!
//! A second model waiter works like an eventfd (a counter kept until read, no
//! snapshot, no drain before the re-check), so stale rings meet later sleeps.
//!
//! The protocol ([`Sleeper`], [`Notifier`]) only sees "is there work" and the
//! `need_wakeup` word, so this proof covers any ring that supplies those two; the
//! SPSC ring is modelled here.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mkipc --test loom_doorbell --release`

#![cfg(loom)]

use std::time::Duration;

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use mkipc::Region;
use mkipc::doorbell::{
    BlockingConsumer, Doorbell, Notifier, NotifyingProducer, Sleeper, SpinPolicy, Waiter, Wake,
    WakeFlag,
};
use mkipc::spsc::{Geometry, RingLayout};
use std::sync::atomic::Ordering;

const GEOMETRY: Geometry = Geometry::new(2, 8).compact();
const FOREVER: Duration = Duration::from_secs(3600);

/// A futex in miniature: the ringer bumps a region word and wakes sleepers; the
/// waiter sleeps while the word still holds its snapshot.
#[derive(Clone)]
struct ModelBell {
    region: Region,
    word: usize,
    park: Arc<(Mutex<()>, Condvar)>,
}

impl ModelBell {
    fn new(region: Region, word: usize) -> ModelBell {
        ModelBell {
            region,
            word,
            park: Arc::new((Mutex::new(()), Condvar::new())),
        }
    }
}

impl Doorbell for ModelBell {
    type Error = std::convert::Infallible;

    fn ring(&self) -> Result<(), Self::Error> {
        // One ringer: load + store is its increment. Release: pairs with the
        // waiter's Acquire snapshot, as a futex word update does.
        let seq = self.region.load(self.word, Ordering::Relaxed).unwrap();
        self.region
            .store(self.word, seq + 1, Ordering::Release)
            .unwrap();
        let _guard = self.park.0.lock().unwrap();
        self.park.1.notify_all();
        Ok(())
    }
}

impl Waiter for ModelBell {
    type Error = std::convert::Infallible;

    fn now(&self) -> Duration {
        Duration::ZERO
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        _timeout: Duration,
    ) -> Result<Wake, Self::Error> {
        let snapshot = self.region.load(self.word, Ordering::Acquire).unwrap();
        if ready() {
            return Ok(Wake::Ready);
        }
        // The kernel's "compare and queue" of FUTEX_WAIT, atomic under its lock.
        let mut guard = self.park.0.lock().unwrap();
        while self.region.load(self.word, Ordering::Acquire).unwrap() == snapshot {
            guard = self.park.1.wait(guard).unwrap();
        }
        Ok(Wake::Rung)
    }
}

/// A ring plus one doorbell word after it.
fn setup() -> (Region, usize) {
    let ring = GEOMETRY.ring_size().unwrap();
    let region = Region::new_heap(ring + 128);
    RingLayout::create(&region, 0, GEOMETRY).unwrap();
    (region, ring)
}

/// Two messages, each notified; the consumer sleeps at once whenever the ring is
/// empty. Both must arrive: a lost wake-up deadlocks the model.
#[test]
fn spsc_no_lost_wake_up() {
    loom::model(|| {
        let (region, bell_word) = setup();
        let bell = ModelBell::new(region.clone(), bell_word);
        let mut tx = NotifyingProducer::attach(region.clone(), 0, bell.clone()).unwrap();
        let mut rx =
            BlockingConsumer::attach(region, 0, bell, SpinPolicy::sleep_at_once()).unwrap();
        let producer = thread::spawn(move || {
            tx.push(&[1; 8]).unwrap();
            tx.push(&[2; 8]).unwrap();
            tx.stats()
        });
        let mut buf = [0u8; 8];
        for i in 1..=2u8 {
            assert_eq!(rx.recv(&mut buf, FOREVER).unwrap(), 8);
            assert_eq!(buf, [i; 8]);
        }
        let sent = producer.join().unwrap();
        assert_eq!(sent.rung + sent.suppressed, 2);
        let got = rx.stats();
        assert_eq!(got.timeouts, 0);
        // A ring is never wasted on an awake consumer that found work before it
        // announced a sleep: every ring answers one announcement.
        assert!(sent.rung <= got.rechecks_ready + got.sleeps);
    });
}

/// The protocol alone, over an arbitrary "is there work" (a counter word written
/// by the sender): the shape any ring (the MPSC ring too) plugs in.
#[test]
fn generic_work_predicate_no_lost_wake_up() {
    loom::model(|| {
        let region = Region::new_heap(3 * 128);
        let (flag_word, work_word, bell_word) = (0, 128, 256);
        let bell = ModelBell::new(region.clone(), bell_word);
        let mut notifier = Notifier::new(region.clone(), flag_word, bell.clone()).unwrap();
        let flag = WakeFlag::new(region.clone(), flag_word).unwrap();
        let mut sleeper = Sleeper::new(flag, bell, SpinPolicy::new(1));
        let sender_region = region.clone();
        let sender = thread::spawn(move || {
            // Release: pairs with the Acquire load in the receiver's predicate.
            sender_region
                .store(work_word, 1, Ordering::Release)
                .unwrap();
            notifier.notify().unwrap();
        });
        sleeper
            .wait_until(
                || region.load(work_word, Ordering::Acquire).map(|w| w != 0),
                FOREVER,
            )
            .unwrap();
        sender.join().unwrap();
    });
}

/// An eventfd in miniature: a ring adds to a counter that stays set until the
/// waiter reads it; the waiter re-checks first (no snapshot, no drain before it,
/// as `mkipc_sys::linux::EventFd` does), then blocks until the counter is non-zero
/// and resets it. Stale rings end a sleep early (a spurious wake-up); none may be
/// lost.
#[derive(Clone)]
struct CounterBell {
    park: Arc<(Mutex<u64>, Condvar)>,
}

impl Doorbell for CounterBell {
    type Error = std::convert::Infallible;

    fn ring(&self) -> Result<(), Self::Error> {
        // The mutex is the eventfd's lock: release here, acquire in the reader.
        *self.park.0.lock().unwrap() += 1;
        self.park.1.notify_all();
        Ok(())
    }
}

impl Waiter for CounterBell {
    type Error = std::convert::Infallible;

    fn now(&self) -> Duration {
        Duration::ZERO
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        _timeout: Duration,
    ) -> Result<Wake, Self::Error> {
        if ready() {
            return Ok(Wake::Ready);
        }
        let mut count = self.park.0.lock().unwrap();
        while *count == 0 {
            count = self.park.1.wait(count).unwrap();
        }
        *count = 0;
        Ok(Wake::Rung)
    }
}

/// The SPSC model of [`spsc_no_lost_wake_up`] with the counter (eventfd) waiter:
/// three messages, so that a ring left over from a re-check that found work meets
/// a later sleep.
#[test]
fn spsc_counter_waiter_no_lost_wake_up() {
    loom::model(|| {
        // Room for all three messages: the producer never waits for a slot.
        let geometry = Geometry::new(4, 8).compact();
        let region = Region::new_heap(geometry.ring_size().unwrap());
        RingLayout::create(&region, 0, geometry).unwrap();
        let bell = CounterBell {
            park: Arc::new((Mutex::new(0), Condvar::new())),
        };
        let mut tx = NotifyingProducer::attach(region.clone(), 0, bell.clone()).unwrap();
        let mut rx =
            BlockingConsumer::attach(region, 0, bell, SpinPolicy::sleep_at_once()).unwrap();
        let producer = thread::spawn(move || {
            for i in 1..=3u8 {
                tx.push(&[i; 8]).unwrap();
            }
            tx.stats()
        });
        let mut buf = [0u8; 8];
        for i in 1..=3u8 {
            assert_eq!(rx.recv(&mut buf, FOREVER).unwrap(), 8);
            assert_eq!(buf, [i; 8]);
        }
        let sent = producer.join().unwrap();
        assert_eq!(sent.rung + sent.suppressed, 3);
        assert_eq!(rx.stats().timeouts, 0);
    });
}
