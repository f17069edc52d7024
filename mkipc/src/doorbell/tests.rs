use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;
use std::vec::Vec;

use super::*;
use crate::Region;
use crate::spsc::{Consumer, Geometry, RingLayout};
use crate::sync::Ordering;

/// A futex-like in-process bell: a counter under a mutex, a condvar to sleep on.
#[derive(Clone, Default)]
struct TestBell(Arc<(Mutex<u64>, Condvar)>, Arc<Mutex<Option<Instant>>>);

impl TestBell {
    fn rings(&self) -> u64 {
        *self.0.0.lock().unwrap()
    }
}

impl Doorbell for TestBell {
    type Error = core::convert::Infallible;

    fn ring(&self) -> Result<(), Self::Error> {
        *self.0.0.lock().unwrap() += 1;
        self.0.1.notify_all();
        Ok(())
    }
}

impl Waiter for TestBell {
    type Error = core::convert::Infallible;

    fn now(&self) -> Duration {
        let mut origin = self.1.lock().unwrap();
        origin.get_or_insert_with(Instant::now).elapsed()
    }

    fn wait_unless<F: FnMut() -> bool>(
        &self,
        mut ready: F,
        timeout: Duration,
    ) -> Result<Wake, Self::Error> {
        let snapshot = self.rings();
        if ready() {
            return Ok(Wake::Ready);
        }
        let guard = self.0.0.lock().unwrap();
        let (_guard, result) = self
            .0
            .1
            .wait_timeout_while(guard, timeout, |n| *n == snapshot)
            .unwrap();
        Ok(if result.timed_out() {
            Wake::TimedOut
        } else {
            Wake::Rung
        })
    }
}

const GEOMETRY: Geometry = Geometry::new(8, 16).compact();
const LONG: Duration = Duration::from_secs(20);

fn pair(
    policy: SpinPolicy,
) -> (
    NotifyingProducer<TestBell>,
    BlockingConsumer<TestBell>,
    TestBell,
    Region,
) {
    let region = Region::new_heap(GEOMETRY.ring_size().unwrap());
    RingLayout::create(&region, 0, GEOMETRY).unwrap();
    let bell = TestBell::default();
    let tx = NotifyingProducer::attach(region.clone(), 0, bell.clone()).unwrap();
    let rx = BlockingConsumer::attach(region.clone(), 0, bell.clone(), policy).unwrap();
    (tx, rx, bell, region)
}

#[test]
fn an_awake_consumer_is_never_rung() {
    let (mut tx, mut rx, bell, _) = pair(SpinPolicy::default());
    for i in 0..5u8 {
        tx.push(&[i]).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(rx.recv(&mut buf, LONG).unwrap(), 1);
        assert_eq!(buf[0], i);
    }
    assert_eq!(
        tx.stats(),
        NotifyStats {
            rung: 0,
            suppressed: 5
        }
    );
    assert_eq!(bell.rings(), 0);
    assert_eq!(rx.stats().sleeps, 0);
}

#[test]
fn a_wait_times_out_and_counts_it() {
    let (_tx, mut rx, _, _) = pair(SpinPolicy::new(10));
    let mut buf = [0u8; 16];
    let start = Instant::now();
    let timeout = Duration::from_millis(30);
    assert_eq!(rx.recv(&mut buf, timeout), Err(RecvError::TimedOut));
    assert!(start.elapsed() >= timeout);
    let stats = rx.stats();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.spins, 10);
    assert!(stats.sleeps >= 1);
}

#[test]
fn a_sleeping_consumer_is_rung_once_per_sleep() {
    let (mut tx, mut rx, bell, region) = pair(SpinPolicy::sleep_at_once());
    let word = rx.layout().need_wakeup_word();
    let sender = std::thread::spawn(move || {
        // Wait for the consumer's announcement, then commit a batch: one ring.
        while region.load(word, Ordering::Relaxed).unwrap() & 1 == 0 {
            std::thread::yield_now();
        }
        let batch = tx.producer().reserve(4).unwrap();
        for i in 0..4u8 {
            batch.slot(usize::from(i)).write(&[i]).unwrap();
        }
        assert_eq!(batch.commit(4), 4);
        assert!(tx.notify().unwrap());
        assert!(!tx.notify().unwrap(), "one ring per announced sleep");
        tx
    });
    let mut buf = [0u8; 16];
    for i in 0..4u8 {
        assert_eq!(rx.recv(&mut buf, LONG).unwrap(), 1);
        assert_eq!(buf[0], i);
    }
    let tx = sender.join().unwrap();
    assert_eq!(
        tx.stats(),
        NotifyStats {
            rung: 1,
            suppressed: 1
        }
    );
    assert_eq!(bell.rings(), 1);
    assert!(rx.stats().sleeps <= 1);
}

#[test]
fn no_wake_up_is_lost_under_ping_pong() {
    let rounds: u32 = if cfg!(miri) { 20 } else { 3000 };
    let (mut req_tx, mut req_rx, _, _) = pair(SpinPolicy::sleep_at_once());
    let (mut rep_tx, mut rep_rx, _, _) = pair(SpinPolicy::new(if cfg!(miri) { 0 } else { 50 }));
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 16];
        for _ in 0..rounds {
            let n = req_rx.recv(&mut buf, LONG).expect("request");
            rep_tx.push(&buf[..n]).unwrap();
        }
        req_rx.stats()
    });
    let mut buf = [0u8; 16];
    for i in 0..rounds {
        req_tx.push(&i.to_le_bytes()).unwrap();
        assert_eq!(rep_rx.recv(&mut buf, LONG).expect("reply"), 4);
        assert_eq!(buf[..4], i.to_le_bytes());
    }
    let server_stats = server.join().unwrap();
    assert_eq!(server_stats.timeouts, 0);
    let stats = req_tx.stats();
    assert_eq!(stats.rung + stats.suppressed, u64::from(rounds));
}

#[test]
fn hostile_flag_values_cost_at_most_one_ring_per_notify() {
    let (mut tx, rx, bell, region) = pair(SpinPolicy::default());
    let word = rx.layout().need_wakeup_word();
    let mut values = Vec::new();
    for v in [u64::MAX, 1, 1, 3, 0, 2, 0x8000_0000_0000_0001] {
        region.store(word, v, Ordering::Relaxed).unwrap();
        values.push(tx.notify().unwrap());
    }
    assert_eq!(values, [true, true, false, true, false, false, true]);
    assert_eq!(bell.rings(), 4);
}

#[test]
fn a_restarted_consumer_resumes_its_epoch() {
    let region = Region::new_heap(GEOMETRY.ring_size().unwrap());
    let layout = RingLayout::create(&region, 0, GEOMETRY).unwrap();
    let word = layout.need_wakeup_word();
    let mut flag = WakeFlag::new(region.clone(), word).unwrap();
    flag.arm();
    flag.arm();
    flag.disarm();
    assert_eq!(region.load(word, Ordering::Relaxed).unwrap(), 2 << 1);
    let mut again = WakeFlag::new(region.clone(), word).unwrap();
    again.arm();
    assert_eq!(again.epoch(), 3, "a new epoch, never one already rung for");
    assert!(Consumer::attach(region, 0).is_ok());
}

#[test]
fn a_broken_ring_ends_the_wait_with_its_fault() {
    let (_tx, mut rx, _, region) = pair(SpinPolicy::new(4));
    let tag = rx.layout().tag_word(0);
    region.store(tag, 0xdead, Ordering::Relaxed).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        rx.recv(&mut buf, LONG),
        Err(RecvError::Consume(crate::spsc::ConsumeError::Broken(_)))
    ));
}
