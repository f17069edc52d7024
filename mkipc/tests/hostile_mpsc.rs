//! A hostile producer writes garbage into every word of its own lane; the consumer
//! must latch that lane's fault (reporting the lane), keep delivering every other
//! producer's messages intact and in order, and never write outside the channel.

use mkipc::mock::{Scribbler, producer_words};
use mkipc::mpsc::{self, Consumer, Geometry, LaneStatus, Producer, RecvError};
use mkipc::spsc::ProduceError;
use mkipc::{Fault, Region};
use std::sync::atomic::Ordering;

const LANES: u32 = 3;
const SLOTS: u32 = 8;
const SLOT: u32 = 24;
const HOSTILE: usize = 1;
const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;
/// Miri runs a slice of each sweep; native runs all of it.
const SWEEP: u64 = if cfg!(miri) { 1 } else { 12 };

struct Rig {
    region: Region,
    rx: Consumer,
    tx: Vec<Producer>,
    at: usize,
    size: usize,
    /// Next sequence number each honest lane sends and expects.
    sent: [u32; LANES as usize],
    seen: [u32; LANES as usize],
}

fn rig() -> Rig {
    let g = Geometry::new(LANES, SLOTS, SLOT).compact();
    let size = g.channel_size().unwrap();
    let at = 256;
    let region = Region::new_heap(at + size + 256);
    for w in (0..region.len()).step_by(8) {
        region.store(w, CANARY, Ordering::Relaxed).unwrap();
    }
    let rx = mpsc::channel(&region, at, g).unwrap();
    let tx = (0..LANES as usize)
        .map(|l| Producer::attach(region.clone(), at, l).unwrap())
        .collect();
    Rig {
        region,
        rx,
        tx,
        at,
        size,
        sent: [0; LANES as usize],
        seen: [0; LANES as usize],
    }
}

impl Rig {
    fn canaries_intact(&self) -> bool {
        (0..self.at)
            .chain(self.at + self.size..self.region.len())
            .step_by(8)
            .all(|w| self.region.load(w, Ordering::Relaxed).unwrap() == CANARY)
    }

    /// Each honest lane sends one message `[lane, seq]` (if it has room).
    fn honest_send(&mut self) {
        for lane in 0..LANES as usize {
            if lane == HOSTILE {
                continue;
            }
            let msg = [lane as u32, self.sent[lane]];
            let bytes: Vec<u8> = msg.iter().flat_map(|w| w.to_le_bytes()).collect();
            match self.tx[lane].push(&bytes) {
                Ok(()) => self.sent[lane] += 1,
                Err(ProduceError::Full) => {}
                Err(e) => panic!("honest lane {lane}: {e}"),
            }
        }
    }

    /// Drives the consumer for a bounded number of steps. Honest messages must be
    /// intact and in order; the hostile lane's may be anything that fits; a fault
    /// may only ever name the hostile lane. Returns the fault, if one was reported.
    fn drain(&mut self) -> Option<Fault> {
        let mut buf = [0u8; SLOT as usize];
        let mut fault = None;
        for _ in 0..4 * LANES * SLOTS {
            match self.rx.pop(&mut buf) {
                Ok(got) if got.lane == HOSTILE => assert!(got.len <= SLOT as usize),
                Ok(got) => {
                    let word =
                        |i: usize| u32::from_le_bytes(buf[4 * i..4 * i + 4].try_into().unwrap());
                    assert_eq!(got.len, 8);
                    assert_eq!(word(0), got.lane as u32);
                    assert_eq!(word(1), self.seen[got.lane], "lane {} order", got.lane);
                    self.seen[got.lane] += 1;
                }
                Err(RecvError::Empty) => return fault,
                Err(RecvError::LaneBroken { lane, fault: f }) => {
                    assert_eq!(lane, HOSTILE, "only the hostile lane may fault");
                    assert!(fault.is_none(), "a lane fault is reported once");
                    fault = Some(f);
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        fault
    }

    fn honest_all_delivered(&self) -> bool {
        (0..LANES as usize)
            .filter(|&l| l != HOSTILE)
            .all(|l| self.sent[l] == self.seen[l])
    }
}

/// Garbage in each producer-owned word of the hostile lane, one word at a time,
/// after some history; the other lanes keep flowing.
#[test]
fn garbage_in_every_word_of_one_lane_leaves_the_others_flowing() {
    let lane = *rig().tx[HOSTILE].lane_layout();
    let mut cases = 0;
    for word in producer_words(&lane) {
        for seed in 0..SWEEP {
            let mut r = rig();
            for i in 0..(seed % 11) as u8 {
                let _ = r.tx[HOSTILE].push(&[i; 5]);
                r.honest_send();
                if i % 3 != 0 {
                    r.drain();
                }
            }
            let mut s = Scribbler::new(r.region.clone(), seed * 7919 + word as u64);
            let near = r.region.load(word, Ordering::Relaxed).unwrap();
            let value = s.garbage(near);
            s.poke(word, value);
            let _ = r.tx[HOSTILE].push(b"after");
            for _ in 0..3 {
                r.honest_send();
                let fault = r.drain();
                if fault.is_some() {
                    assert!(matches!(
                        r.rx.lane_status(HOSTILE),
                        Ok(LaneStatus::Faulted { .. })
                    ));
                    assert_eq!(r.rx.faulted_lanes(), 1 << HOSTILE);
                }
            }
            assert!(r.honest_all_delivered(), "word {word:#x} seed {seed}");
            assert_eq!(r.rx.faulted_lanes() & !(1 << HOSTILE), 0);
            assert!(r.canaries_intact(), "word {word:#x} seed {seed}");
            cases += 1;
        }
    }
    // Two control words, then a tag and a payload word per slot.
    let words = 2 + 2 * SLOTS as usize;
    assert_eq!(cases, words * SWEEP as usize, "every word swept");
}

/// Every producer-owned word of the hostile lane garbage at once (its control
/// line and every slot): the fault is latched, counted, reported by lane; the
/// lane recovers after fence and reset.
#[test]
fn a_wholly_trashed_lane_is_latched_and_recovered() {
    let mut faulted = 0;
    for seed in 0..SWEEP * 2 {
        let mut r = rig();
        let lane = *r.tx[HOSTILE].lane_layout();
        let mut s = Scribbler::new(r.region.clone(), seed);
        let _ = r.tx[HOSTILE].push(b"before");
        for w in producer_words(&lane).collect::<Vec<_>>() {
            let near = r.region.load(w, Ordering::Relaxed).unwrap();
            let value = s.garbage(near);
            s.poke(w, value);
        }
        for _ in 0..4 {
            r.honest_send();
            if r.drain().is_some() {
                faulted += 1;
            }
        }
        assert!(r.honest_all_delivered());
        assert!(r.canaries_intact());
        r.rx.fence_lane(HOSTILE).unwrap();
        for _ in 0..SLOTS {
            if r.rx.is_drained(HOSTILE).unwrap() {
                break;
            }
            r.drain();
        }
        r.rx.reset_lane(HOSTILE).unwrap();
        assert_eq!(r.rx.faulted_lanes(), 0);
        let mut again = Producer::attach(r.region.clone(), r.at, HOSTILE).unwrap();
        again.push(b"clean").unwrap();
        let mut buf = [0u8; SLOT as usize];
        let mut found = false;
        for _ in 0..LANES {
            match r.rx.pop(&mut buf) {
                Ok(got) if got.lane == HOSTILE => {
                    assert_eq!(&buf[..got.len], b"clean");
                    found = true;
                }
                Ok(_) | Err(RecvError::Empty) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(found, "seed {seed}");
        assert!(r.canaries_intact());
    }
    assert!(faulted > 0, "no seed tripped the fault latch");
}

/// The whole lane range (descriptor and consumer words too) trashed before the
/// consumer restarts: only that lane is refused.
#[test]
fn a_restarted_consumer_survives_a_trashed_lane() {
    let r = rig();
    let range = r.rx.channel().lane_range(HOSTILE);
    let mut s = Scribbler::new(r.region.clone(), 5);
    for w in range.step_by(8) {
        let value = s.garbage(0);
        s.poke(w, value);
    }
    let Rig { region, at, .. } = r;
    let mut rx = Consumer::attach(region.clone(), at).unwrap();
    let mut p0 = Producer::attach(region.clone(), at, 0).unwrap();
    p0.push(b"zero").unwrap();
    let mut buf = [0u8; SLOT as usize];
    let mut got_zero = false;
    for _ in 0..4 {
        match rx.pop(&mut buf) {
            Ok(got) => {
                assert_eq!(got.lane, 0);
                got_zero = true;
            }
            Err(RecvError::LaneBroken { lane, .. }) => assert_eq!(lane, HOSTILE),
            Err(RecvError::Empty) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(got_zero);
}

/// A scribbler thread hammers the hostile lane's producer section while two
/// honest producers stream; every honest message arrives intact and in order.
#[test]
fn honest_producers_stream_past_a_concurrent_scribbler() {
    let per_lane: u32 = if cfg!(miri) { 40 } else { 20_000 };
    let r = rig();
    let Rig {
        region, mut rx, tx, ..
    } = r;
    let hostile = tx[HOSTILE].lane_layout().producer_section();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stop = &stop;
    std::thread::scope(|s| {
        let scribbler_region = region.clone();
        s.spawn(move || {
            let mut sc = Scribbler::new(scribbler_region, 99);
            while !stop.load(Ordering::Relaxed) {
                sc.scribble(hostile.clone(), 8);
                std::thread::yield_now();
            }
        });
        let mut handles = Vec::new();
        for (lane, mut p) in tx.into_iter().enumerate() {
            if lane == HOSTILE {
                continue;
            }
            handles.push(s.spawn(move || {
                let mut seq = 0u32;
                while seq < per_lane {
                    let bytes: Vec<u8> = [lane as u32, seq]
                        .iter()
                        .flat_map(|w| w.to_le_bytes())
                        .collect();
                    match p.push(&bytes) {
                        Ok(()) => seq += 1,
                        Err(ProduceError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("honest lane {lane}: {e}"),
                    }
                }
            }));
        }
        let mut seen = [0u32; LANES as usize];
        let mut buf = [0u8; SLOT as usize];
        while seen.iter().sum::<u32>() < 2 * per_lane {
            match rx.pop(&mut buf) {
                Ok(got) if got.lane == HOSTILE => {}
                Ok(got) => {
                    let word =
                        |i: usize| u32::from_le_bytes(buf[4 * i..4 * i + 4].try_into().unwrap());
                    assert_eq!((word(0), word(1)), (got.lane as u32, seen[got.lane]));
                    seen[got.lane] += 1;
                }
                Err(RecvError::Empty) => std::thread::yield_now(),
                Err(RecvError::LaneBroken { lane, .. }) => assert_eq!(lane, HOSTILE),
                Err(e) => panic!("{e}"),
            }
        }
        for h in handles {
            h.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(rx.faulted_lanes() & !(1 << HOSTILE), 0);
}
