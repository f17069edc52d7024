//! Several producer threads stream sequenced, checksummed messages through one
//! MPSC channel into one consumer: every producer's messages arrive intact, in its
//! own order, none lost or duplicated. And a producer that dies mid-publish
//! (reserved, written, never committed, its thread gone) costs only its own
//! unpublished message: the others keep flowing and its lane is recovered.

use std::sync::atomic::{AtomicBool, Ordering};

use mkipc::Region;
use mkipc::mpsc::{self, Consumer, Geometry, LaneStatus, Producer, RecvError};
use mkipc::spsc::ProduceError;
use mkipc_tests::{encode, verify};

const SLOT: usize = 56;

/// Sequence numbers carry the producer in their top bits, so one checksum
/// covers the producer's identity too.
fn tagged(lane: usize, n: u64) -> u64 {
    ((lane as u64) << 40) | n
}

/// Sends messages `first..end` of `lane` in batches of 1 to 16, yielding when the
/// lane is full (the producers share two cores with the consumer).
fn produce(tx: &mut Producer, first: u64, end: u64) {
    let lane = tx.lane();
    let mut buf = [0u8; SLOT];
    let mut n = first;
    while n < end {
        let want = (1 + n % 16).min(end - n) as usize;
        let batch = match tx.reserve(want) {
            Ok(batch) => batch,
            Err(ProduceError::Full) => {
                std::thread::yield_now();
                continue;
            }
            Err(e) => panic!("producer {lane}: {e}"),
        };
        for i in 0..batch.len() {
            let len = encode(tagged(lane, n + i as u64), SLOT, &mut buf);
            batch.slot(i).write(&buf[..len]).unwrap();
        }
        n += batch.commit(usize::MAX) as u64;
    }
}

/// Receives one batch (if any), checking each message against `next[lane]`.
/// Returns how many arrived.
fn consume(rx: &mut Consumer, next: &mut [u64]) -> usize {
    let mut buf = [0u8; SLOT];
    let mut batch = match rx.peek(32) {
        Ok(batch) => batch,
        Err(RecvError::Empty) => {
            std::thread::yield_now();
            return 0;
        }
        Err(e) => panic!("consumer: {e}"),
    };
    let lane = batch.lane();
    let n = batch.len();
    for i in 0..n {
        let view = batch.get(i).unwrap();
        let msg = view.copy_to(&mut buf).unwrap();
        if let Err(e) = verify(tagged(lane, next[lane]), msg) {
            panic!("lane {lane}: {e}");
        }
        next[lane] += 1;
    }
    batch.release(n)
}

#[test]
fn ten_million_messages_from_four_producers_arrive_intact_and_in_order() {
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: u64 = 2_500_000;
    let geometry = Geometry::new(PRODUCERS as u32, 128, SLOT as u32);
    let region = Region::new_heap(geometry.channel_size().unwrap());
    let mut rx = mpsc::channel(&region, 0, geometry).unwrap();
    std::thread::scope(|s| {
        for lane in 0..PRODUCERS {
            let mut tx = Producer::attach(region.clone(), 0, lane).unwrap();
            s.spawn(move || produce(&mut tx, 0, PER_PRODUCER));
        }
        let mut next = [0u64; PRODUCERS];
        let mut total = 0;
        while total < PRODUCERS as u64 * PER_PRODUCER {
            total += consume(&mut rx, &mut next) as u64;
        }
        assert_eq!(next, [PER_PRODUCER; PRODUCERS]);
    });
    for lane in 0..PRODUCERS {
        assert_eq!(rx.released(lane), PER_PRODUCER);
    }
    assert_eq!(rx.fault_count(), 0);
    assert!(matches!(rx.peek(1), Err(RecvError::Empty)));
}

/// Producer 1 commits some messages, then reserves and writes one more and its
/// thread ends without committing it. Producers 0 and 2 stream throughout. The
/// platform notices the death (here: the thread's exit flag), fences the lane;
/// the consumer drains the committed messages, resets the lane, and a restarted
/// producer 1 streams again in epoch 1.
#[test]
fn a_producer_dying_mid_publish_costs_only_its_own_message() {
    const LIVE_MESSAGES: u64 = 400_000;
    const BEFORE_DEATH: u64 = 1_000;
    const AFTER_RESTART: u64 = 50_000;
    let geometry = Geometry::new(3, 64, SLOT as u32);
    let region = Region::new_heap(geometry.channel_size().unwrap());
    let mut rx = mpsc::channel(&region, 0, geometry).unwrap();
    let died = AtomicBool::new(false);
    std::thread::scope(|s| {
        for lane in [0, 2] {
            let mut tx = Producer::attach(region.clone(), 0, lane).unwrap();
            s.spawn(move || produce(&mut tx, 0, LIVE_MESSAGES));
        }
        let mut doomed = Producer::attach(region.clone(), 0, 1).unwrap();
        let died = &died;
        s.spawn(move || {
            produce(&mut doomed, 0, BEFORE_DEATH);
            let mut buf = [0u8; SLOT];
            let batch = loop {
                match doomed.reserve(1) {
                    Ok(batch) => break batch,
                    Err(ProduceError::Full) => std::thread::yield_now(),
                    Err(e) => panic!("doomed producer: {e}"),
                }
            };
            let len = encode(tagged(1, BEFORE_DEATH), SLOT, &mut buf);
            batch.slot(0).write(&buf[..len]).unwrap();
            // The thread dies here, its message reserved and written but never
            // committed; the platform's liveness check sees it gone.
            died.store(true, Ordering::Release);
        });

        let mut next = [0u64; 3];
        let mut recovered = false;
        let mut restarted = None;
        while next[0] < LIVE_MESSAGES
            || next[2] < LIVE_MESSAGES
            || next[1] < BEFORE_DEATH + AFTER_RESTART
        {
            consume(&mut rx, &mut next);
            if !recovered && died.load(Ordering::Acquire) {
                // Fence, then keep receiving until lane 1 is drained (the others
                // are served meanwhile), then reset it.
                rx.fence_lane(1).unwrap();
                while !rx.is_drained(1).unwrap() {
                    consume(&mut rx, &mut next);
                }
                assert_eq!(
                    next[1], BEFORE_DEATH,
                    "every committed message, not the torn one"
                );
                assert_eq!(rx.reset_lane(1), Ok(1));
                assert_eq!(rx.lane_status(1), Ok(LaneStatus::Open { epoch: 1 }));
                recovered = true;
                let mut again = Producer::attach(region.clone(), 0, 1).unwrap();
                assert_eq!(again.epoch(), 1);
                restarted = Some(s.spawn(move || {
                    produce(&mut again, BEFORE_DEATH, BEFORE_DEATH + AFTER_RESTART)
                }));
            }
        }
        // The restarted producer counts on from where the committed ones ended:
        // the torn message's sequence number went out again, intact.
        assert!(recovered);
        restarted.unwrap().join().unwrap();
        assert_eq!(
            next,
            [LIVE_MESSAGES, BEFORE_DEATH + AFTER_RESTART, LIVE_MESSAGES]
        );
    });
    assert_eq!(rx.fault_count(), 0);
    assert_eq!(rx.faulted_lanes(), 0);
}
