//! A hostile peer on either ring of a buffer pool: garbage records, foreign,
//! misaligned and double returns, returns of buffers never lent, and scribbled
//! ring words. The honest side answers with errors and latched, counted faults,
//! never a panic, a hang or an access outside the pool.

use mkipc::mock::Scribbler;
use mkipc::pool::{self, PoolGeometry, PoolReceiver, PoolSender, RecvError, SendError};
use mkipc::spsc::Producer;
use mkipc::{Fault, MessageType, Region};
use std::sync::atomic::Ordering;

const BUFFERS: u32 = 4;
const SIZE: u32 = 64;
const CANARY: u64 = 0xC0FF_EE00_DEAD_BEEF;
const SWEEP: u64 = if cfg!(miri) { 6 } else { 400 };

struct Rig {
    region: Region,
    at: usize,
    size: usize,
    tx: PoolSender,
    rx: PoolReceiver,
}

fn rig() -> Rig {
    let g = PoolGeometry::new(BUFFERS, SIZE).compact();
    let size = g.pool_size().unwrap();
    let at = 128;
    let region = Region::new_heap(at + size + 128);
    for w in (0..region.len()).step_by(8) {
        region.store(w, CANARY, Ordering::Relaxed).unwrap();
    }
    let (tx, rx) = pool::channel(&region, at, g, MessageType::bytes(256)).unwrap();
    Rig {
        region,
        at,
        size,
        tx,
        rx,
    }
}

impl Rig {
    fn canaries_intact(&self) -> bool {
        (0..self.at)
            .chain(self.at + self.size..self.region.len())
            .step_by(8)
            .all(|w| self.region.load(w, Ordering::Relaxed).unwrap() == CANARY)
    }

    /// A hostile sender: a second producer on the submission ring.
    fn fake_sender(&self) -> Producer {
        Producer::attach(self.region.clone(), self.tx.layout().submit_ring()).unwrap()
    }

    /// A hostile receiver: a second producer on the completion ring.
    fn fake_returns(&self) -> Producer {
        Producer::attach(self.region.clone(), self.tx.layout().completion_ring()).unwrap()
    }
}

fn record(offset: u64, len: u32, flags: u32) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&offset.to_le_bytes());
    r[8..12].copy_from_slice(&len.to_le_bytes());
    r[12..].copy_from_slice(&flags.to_le_bytes());
    r
}

/// Drives the receiver a bounded number of steps; every outcome is a message
/// within bounds, `Empty`/`NeedsCopy`, or a latched fault.
fn drain(rx: &mut PoolReceiver, zero_copy: bool) -> Option<Fault> {
    let mut buf = [0u8; 256];
    for _ in 0..16 {
        let outcome = if zero_copy {
            rx.recv().map(|held| {
                assert!(held.len() <= SIZE as usize);
                let mut b = [0u8; SIZE as usize];
                rx.view(&held).copy_to(&mut b).unwrap();
                rx.give_back(held).map(|()| 0)
            })
        } else {
            Ok(rx.recv_bytes(&mut buf))
        };
        match outcome.and_then(|r| r) {
            Ok(n) => assert!(n <= 256),
            Err(RecvError::Empty) => return None,
            Err(RecvError::NeedsCopy) => {
                if let Err(RecvError::Broken(f)) = rx.recv_bytes(&mut buf) {
                    return Some(f);
                }
            }
            Err(RecvError::Broken(f)) => {
                assert_eq!(rx.recv_bytes(&mut buf), Err(RecvError::Broken(f)));
                assert_eq!(rx.recv().unwrap_err(), RecvError::Broken(f));
                return Some(f);
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    None
}

#[test]
fn garbage_submission_records_are_caught() {
    let mut s = Scribbler::new(Region::new_heap(8), 7);
    let mut faults = 0;
    for seed in 0..SWEEP {
        let mut r = rig();
        let mut fake = r.fake_sender();
        for _ in 0..1 + seed % 3 {
            let offset = match s.next_u64() % 4 {
                0 => (s.next_u64() % BUFFERS as u64) * SIZE as u64,
                1 => s.next_u64() % (2 * BUFFERS as u64 * SIZE as u64),
                _ => s.garbage(SIZE as u64),
            };
            let len = s.garbage(SIZE as u64) as u32 % (if seed % 2 == 0 { 80 } else { u32::MAX });
            let flags = (s.next_u64() % 5) as u32;
            let mut slot = record(offset, len, flags).to_vec();
            slot.extend(std::iter::repeat_n(0xAB, (s.next_u64() % 40) as usize));
            let _ = fake.push(&slot[..slot.len().min(64)]);
        }
        if drain(&mut r.rx, seed % 3 == 0).is_some() {
            faults += 1;
            assert!(r.rx.fault_count() >= 1);
        }
        assert!(r.canaries_intact(), "seed {seed}");
    }
    assert!(
        faults > SWEEP / 4,
        "garbage must mostly be caught: {faults}"
    );
}

#[test]
fn each_bad_record_gets_its_fault() {
    type Case<'a> = (&'a [u8], fn(Fault) -> bool);
    let cases: [Case; 7] = [
        (&record(SIZE as u64 * BUFFERS as u64, 8, 0), |f| {
            matches!(f, Fault::BadBufferOffset { offset: 256 })
        }),
        (&record(12, 8, 0), |f| {
            matches!(f, Fault::BadBufferOffset { offset: 12 })
        }),
        (&record(u64::MAX, 8, 0), |f| {
            matches!(f, Fault::BadBufferOffset { .. })
        }),
        (&record(0, SIZE + 1, 0), |f| {
            matches!(f, Fault::BadLength { found: 65, .. })
        }),
        (&record(0, 8, 0x80), |f| {
            matches!(f, Fault::BadRecord { .. })
        }),
        (&record(0, 40, 1), |f| matches!(f, Fault::BadRecord { .. })), // inline, slot too short
        (&[1, 2, 3], |f| matches!(f, Fault::BadRecord { .. })),
    ];
    for (slot, expected) in cases {
        let mut r = rig();
        r.fake_sender().push(slot).unwrap();
        let fault = drain(&mut r.rx, false).expect("fault");
        assert!(expected(fault), "{slot:?}: {fault}");
    }
}

#[test]
fn a_buffer_lent_twice_is_caught() {
    let mut r = rig();
    let mut fake = r.fake_sender();
    fake.push(&record(64, 8, 0)).unwrap();
    fake.push(&record(64, 8, 0)).unwrap();
    let _held = r.rx.recv().unwrap();
    assert_eq!(
        r.rx.recv(),
        Err(RecvError::Broken(Fault::AlreadyHeld { offset: 64 }))
    );
    // Within one fragmented message, too.
    let mut r = rig();
    let mut fake = r.fake_sender();
    fake.push(&record(0, SIZE, 2)).unwrap();
    fake.push(&record(0, 8, 0)).unwrap();
    assert_eq!(
        drain(&mut r.rx, false),
        Some(Fault::AlreadyHeld { offset: 0 })
    );
}

#[test]
fn endless_fragment_chains_are_caught_and_partial_ones_wait() {
    let mut r = rig();
    let mut fake = r.fake_sender();
    fake.push(&record(0, SIZE, 2)).unwrap();
    let mut buf = [0u8; 512];
    assert_eq!(
        r.rx.recv_bytes(&mut buf),
        Err(RecvError::Empty),
        "rest not published"
    );
    for i in 1..BUFFERS as u64 {
        fake.push(&record(i * SIZE as u64, SIZE, 2)).unwrap();
    }
    assert!(matches!(
        r.rx.recv_bytes(&mut buf),
        Err(RecvError::Broken(Fault::BadRecord { .. }))
    ));
    let mut r = rig();
    let mut fake = r.fake_sender();
    fake.push(&record(0, 8, 2)).unwrap(); // short non-final fragment
    fake.push(&record(64, 8, 0)).unwrap();
    assert!(matches!(
        r.rx.recv_bytes(&mut buf),
        Err(RecvError::Broken(Fault::BadRecord { .. }))
    ));
}

#[test]
fn foreign_misaligned_double_and_unlent_returns_are_faults() {
    let unlent = |r: &mut Rig| {
        let loan = r.tx.loan().unwrap();
        r.tx.send(loan, 8).unwrap();
        r.fake_returns()
            .push(&(2 * SIZE as u64).to_le_bytes())
            .unwrap();
        Fault::NotLent { offset: 128 }
    };
    let double = |r: &mut Rig| {
        let loan = r.tx.loan().unwrap();
        r.tx.send(loan, 8).unwrap();
        let held = r.rx.recv().unwrap();
        r.rx.give_back(held).unwrap();
        r.fake_returns().push(&0u64.to_le_bytes()).unwrap();
        Fault::NotLent { offset: 0 }
    };
    let foreign = |r: &mut Rig| {
        r.fake_returns().push(&(1u64 << 40).to_le_bytes()).unwrap();
        Fault::BadBufferOffset { offset: 1 << 40 }
    };
    let misaligned = |r: &mut Rig| {
        let loan = r.tx.loan().unwrap();
        r.tx.send(loan, 8).unwrap();
        r.fake_returns().push(&8u64.to_le_bytes()).unwrap();
        Fault::BadBufferOffset { offset: 8 }
    };
    let short = |r: &mut Rig| {
        r.fake_returns().push(&[0u8; 4]).unwrap();
        Fault::BadRecord {
            position: 0,
            reason: "a completion must be one 8-byte buffer offset",
        }
    };
    let cases: [&dyn Fn(&mut Rig) -> Fault; 5] = [&unlent, &double, &foreign, &misaligned, &short];
    for case in cases {
        let mut r = rig();
        let fault = case(&mut r);
        assert_eq!(r.tx.collect(), Err(SendError::Broken(fault)));
        assert_eq!(r.tx.loan(), Err(SendError::Broken(fault)), "latched");
        assert_eq!(r.tx.fault_count(), 1);
        let word = r.region.load(
            r.tx.layout().completion_ring() + 128 + 16,
            Ordering::Relaxed,
        );
        assert_eq!(word.unwrap(), 1, "published in the sender's own section");
        assert!(r.canaries_intact());
    }
}

#[test]
fn scribbled_rings_never_panic_or_escape() {
    for seed in 0..SWEEP / 4 {
        let mut r = rig();
        let mut s = Scribbler::new(r.region.clone(), seed);
        for i in 0..2u8 {
            r.tx.send_bytes(&[i; 100]).unwrap();
        }
        let submit = r.tx.layout().submit_ring();
        let completion = r.tx.layout().completion_ring();
        s.scribble(submit + 128..completion, 4);
        let _ = drain(&mut r.rx, seed % 2 == 0);
        s.scribble(completion + 128..r.tx.layout().buffer_area().start, 4);
        for _ in 0..4 {
            let _ = r.tx.collect();
            let _ = r.tx.send_bytes(&[7; 130]);
        }
        assert!(r.canaries_intact(), "seed {seed}");
    }
}
