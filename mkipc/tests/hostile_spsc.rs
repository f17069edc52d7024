//! A hostile producer (or consumer) writes garbage into every word it owns; the
//! other side must answer with errors and latched faults, never a panic, a hang or
//! an access outside the ring.

use mkipc::mock::{Scribbler, consumer_words, producer_words};
use mkipc::spsc::{
    self, ConsumeError, Consumer, Geometry, ProduceError, Producer, RingError, RingLayout,
};
use mkipc::{Fault, Region};
use std::sync::atomic::Ordering;

const SLOTS: u32 = 8;
const SLOT: u32 = 24;
/// Canary pattern around the ring: no endpoint may write it.
const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;
/// Miri runs a slice of each sweep; native runs all of it.
const SWEEP: u64 = if cfg!(miri) { 2 } else { 24 };

struct Rig {
    region: Region,
    tx: Producer,
    rx: Consumer,
    ring_at: usize,
    ring_size: usize,
}

fn rig() -> Rig {
    let g = Geometry::new(SLOTS, SLOT).compact();
    let ring_size = g.ring_size().unwrap();
    let ring_at = 128;
    let region = Region::new_heap(ring_at + ring_size + 128);
    for at in (0..region.len()).step_by(8) {
        region.store(at, CANARY, Ordering::Relaxed).unwrap();
    }
    let (tx, rx) = spsc::channel(&region, ring_at, g).unwrap();
    Rig {
        region,
        tx,
        rx,
        ring_at,
        ring_size,
    }
}

impl Rig {
    fn canaries_intact(&self) -> bool {
        let outside = (0..self.ring_at).chain(self.ring_at + self.ring_size..self.region.len());
        outside
            .step_by(8)
            .all(|at| self.region.load(at, Ordering::Relaxed).unwrap() == CANARY)
    }

    /// Drives the consumer for a bounded number of steps; every outcome must be
    /// a message that fits, `Empty`, or a latched fault.
    fn drain(&mut self) -> Option<Fault> {
        let mut buf = [0u8; SLOT as usize];
        for _ in 0..4 * SLOTS {
            match self.rx.pop(&mut buf) {
                Ok(n) => assert!(n <= SLOT as usize),
                Err(ConsumeError::Empty) => return None,
                Err(ConsumeError::Broken(f)) => {
                    assert_eq!(self.rx.pop(&mut buf), Err(ConsumeError::Broken(f)));
                    return Some(f);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        None
    }
}

/// Values for each producer word that a correct producer could never write there.
#[test]
fn every_producer_word_garbage_is_caught_or_harmless() {
    let mut checked = 0;
    let ring = *rig().tx.layout();
    for word in producer_words(&ring) {
        for seed in 0..SWEEP {
            let mut r = rig();
            // Some history first, so stamps hold non-trivial laps.
            for i in 0..(seed % 11) as u8 {
                r.tx.push(&[i; 5]).unwrap();
                if i % 3 != 0 {
                    r.drain();
                }
            }
            let mut s = Scribbler::new(r.region.clone(), seed * 7919 + word as u64);
            let near = r.region.load(word, Ordering::Relaxed).unwrap();
            let value = s.garbage(near);
            s.poke(word, value);
            let _ = r.tx.push(b"after");
            r.drain();
            assert!(r.canaries_intact(), "word {word:#x} seed {seed}");
            checked += 1;
        }
    }
    // Two control words, then a tag and a payload word per slot.
    let words = 2 + 2 * u64::from(SLOTS);
    assert_eq!(checked, words * SWEEP, "every word swept");
}

#[test]
fn a_forged_next_stamp_is_a_bad_stamp_fault() {
    let mut r = rig();
    r.tx.push(b"one").unwrap();
    assert_eq!(r.drain(), None);
    let next = r.tx.layout().tag_word(1);
    // 0 would be legitimate ("not yet published" on the first lap).
    for forged in [3u64, u64::MAX, 1 + SLOTS as u64 + 1] {
        let mut r2 = rig();
        r2.tx.push(b"one").unwrap();
        r2.drain();
        r2.region.store(next, forged, Ordering::Relaxed).unwrap();
        assert_eq!(
            r2.drain(),
            Some(Fault::BadStamp {
                position: 1,
                found: forged
            })
        );
        assert_eq!(r2.rx.fault_count(), 1);
    }
    let _ = r;
}

#[test]
fn oversized_lengths_are_bad_length_faults() {
    // The tag's 24 length bits hold at most 2^24 - 1.
    for len in [SLOT as u64 + 1, 4096, (1 << 24) - 1] {
        let mut r = rig();
        r.tx.push(b"x").unwrap();
        let at = r.tx.layout().tag_word(0);
        let tag = RingLayout::published_tag(0, len as usize);
        r.region.store(at, tag, Ordering::Relaxed).unwrap();
        assert_eq!(
            r.drain(),
            Some(Fault::BadLength {
                position: 0,
                found: len,
                capacity: SLOT as u64
            })
        );
    }
}

#[test]
fn every_consumer_word_garbage_is_caught_or_harmless() {
    let ring = *rig().tx.layout();
    for word in consumer_words(&ring) {
        for seed in 0..SWEEP * 3 {
            let mut r = rig();
            let mut s = Scribbler::new(r.region.clone(), seed);
            let value = s.garbage(0);
            s.poke(word, value);
            let mut broke = None;
            for i in 0..3 * SLOTS {
                match r.tx.push(&[i as u8]) {
                    Ok(()) | Err(ProduceError::Full) => {}
                    Err(ProduceError::Broken(f)) => {
                        broke = Some(f);
                        break;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            // No head above what the producer could ever publish here is plausible.
            let head = r.region.load(word, Ordering::Relaxed).unwrap();
            if word == ring.head_word() && head > 3 * SLOTS as u64 {
                assert!(
                    matches!(broke, Some(Fault::HeadOutOfRange { .. })),
                    "seed {seed}: {broke:?}"
                );
            }
            assert!(r.canaries_intact());
        }
    }
}

#[test]
fn a_consumer_racing_ahead_of_the_producer_is_caught() {
    let mut r = rig();
    r.tx.push(b"a").unwrap();
    let head = r.tx.layout().head_word();
    // Claims more released messages than the producer will have published when
    // it next looks (it looks only once its cached view says full).
    r.region.store(head, 21, Ordering::Relaxed).unwrap();
    let mut fault = None;
    for _ in 0..SLOTS {
        if let Err(ProduceError::Broken(f)) = r.tx.push(b"b") {
            fault = Some(f);
            break;
        }
    }
    assert_eq!(
        fault,
        Some(Fault::HeadOutOfRange {
            found: 21,
            low: 0,
            high: SLOTS as u64
        })
    );
}

#[test]
fn garbage_descriptors_are_refused_at_attach() {
    let r = rig();
    let mut s = Scribbler::new(r.region.clone(), 42);
    let mut refused = 0;
    for word in (r.ring_at..r.ring_at + 128).step_by(8) {
        for _ in 0..SWEEP {
            let r2 = rig();
            let near = r2.region.load(word, Ordering::Relaxed).unwrap();
            let v = s.garbage(near);
            r2.region.store(word, v, Ordering::Relaxed).unwrap();
            match Consumer::attach(r2.region.clone(), r2.ring_at) {
                Ok(rx) => assert_eq!(rx.layout(), r.tx.layout(), "reserved words only"),
                Err(
                    RingError::BadMagic { .. }
                    | RingError::NotInitialized
                    | RingError::Geometry(_)
                    | RingError::LayoutMismatch { .. }
                    | RingError::DoesNotFit { .. }
                    | RingError::Misplaced { .. },
                ) => refused += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert!(refused > 4 * SWEEP, "only {refused} refusals");
}

/// A peer thread scribbles over the producer's section while the consumer runs.
#[test]
fn consumer_survives_a_concurrent_scribbler() {
    let r = rig();
    let Rig {
        region, mut rx, tx, ..
    } = r;
    let section = tx.layout().producer_section();
    let ring_at = tx.layout().offset();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut scribbler = Scribbler::new(region.clone(), 7);
            while !stop.load(Ordering::Relaxed) {
                scribbler.scribble(section.clone(), 4);
            }
        });
        let mut buf = [0u8; SLOT as usize];
        for _ in 0..SWEEP * 10_000 {
            match rx.pop(&mut buf) {
                Ok(n) => assert!(n <= SLOT as usize),
                Err(ConsumeError::Empty | ConsumeError::Broken(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(rx.fault().is_some(), "garbage went unnoticed");
    let outside = (0..ring_at).step_by(8);
    assert!(
        outside
            .into_iter()
            .all(|at| region.load(at, Ordering::Relaxed).unwrap() == CANARY)
    );
}
