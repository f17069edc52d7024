//! `FutexWake`: a doorbell that only wakes, on the SPSC ring's own `tail` word
//! (which every commit changes). A lost wake-up shows up as a 20 s timeout.

#![cfg(target_os = "linux")]

use std::thread;
use std::time::Duration;

use mkipc::Region;
use mkipc::doorbell::{BlockingConsumer, Notifier, SpinPolicy};
use mkipc::spsc::{Geometry, Producer, RingLayout};
use mkipc_sys::linux::{FutexWaiter, FutexWake};

const LONG: Duration = Duration::from_secs(20);

#[test]
fn waking_on_the_tail_word_loses_no_wake_up() {
    let g = Geometry::new(8, 16);
    let region = Region::new_heap(g.ring_size().unwrap());
    let ring = RingLayout::create(&region, 0, g).unwrap();
    let waiter = FutexWaiter::new(region.clone(), ring.tail_word()).unwrap();
    let mut rx =
        BlockingConsumer::attach(region.clone(), 0, waiter, SpinPolicy::sleep_at_once()).unwrap();
    let tx_region = region.clone();
    let sender = thread::spawn(move || {
        let mut tx = Producer::attach(tx_region.clone(), 0).unwrap();
        let bell = FutexWake::new(tx_region.clone(), ring.tail_word()).unwrap();
        let mut notifier = Notifier::new(tx_region, ring.need_wakeup_word(), bell).unwrap();
        for i in 0..5000u64 {
            while tx.push(&i.to_le_bytes()).is_err() {
                thread::yield_now();
            }
            notifier.notify().unwrap();
            if i % 64 == 0 {
                // Let the receiver fall asleep now and then.
                thread::sleep(Duration::from_micros(50));
            }
        }
        notifier.stats()
    });
    let mut buf = [0u8; 16];
    for i in 0..5000u64 {
        let n = rx.recv(&mut buf, LONG).expect("a wake-up was lost");
        assert_eq!(&buf[..n], &i.to_le_bytes());
    }
    let rung = sender.join().unwrap();
    let stats = rx.stats();
    assert!(stats.sleeps > 0, "the receiver never slept: {stats:?}");
    assert!(rung.rung > 0, "never rung: {rung:?}");
}
