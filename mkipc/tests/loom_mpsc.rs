//! loom models of the MPSC fan-in: producers claiming and publishing on their lanes
//! while the consumer sweeps, and dead-producer recovery (fence, drain, reset, a
//! restarted producer re-attaching) racing with a live producer on another lane.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mkipc --test loom_mpsc --release`

#![cfg(loom)]

use loom::thread;
use mkipc::Region;
use mkipc::mpsc::{self, ChannelError, Consumer, Geometry, Producer, RecvError};
use mkipc::spsc::ProduceError;

/// Runs `body` as a loom model on a thread with room for the consumer (it holds
/// an endpoint per possible lane, more than loom's default coroutine stack).
fn model(body: fn()) {
    loom::model(move || {
        thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(body)
            .unwrap()
            .join()
            .unwrap();
    });
}

fn chan() -> (Region, Consumer) {
    let g = Geometry::new(2, 2, 8).compact();
    let region = Region::new_heap(g.channel_size().unwrap());
    let rx = mpsc::channel(&region, 0, g).unwrap();
    (region, rx)
}

fn push_spin(tx: &mut Producer, msg: &[u8]) {
    loop {
        match tx.push(msg) {
            Ok(()) => return,
            Err(ProduceError::Full) => thread::yield_now(),
            Err(e) => panic!("producer: {e}"),
        }
    }
}

/// The next message, spinning while every lane is empty; any fault fails the model.
fn pop_spin(rx: &mut Consumer) -> (usize, Vec<u8>) {
    let mut buf = [0u8; 8];
    loop {
        match rx.pop(&mut buf) {
            Ok(got) => return (got.lane, buf[..got.len].to_vec()),
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

/// Two producers publish concurrently, one a two-message batch through
/// reserve/commit; the consumer sees every message complete, in per-lane order.
#[test]
fn two_lanes_claim_and_publish() {
    model(|| {
        let (region, mut rx) = chan();
        let mut a = Producer::attach(region.clone(), 0, 0).unwrap();
        let mut b = Producer::attach(region.clone(), 0, 1).unwrap();
        let ta = thread::spawn(move || {
            let batch = a.reserve(2).unwrap();
            assert_eq!(batch.len(), 2);
            batch.slot(0).write(&[0xA0; 8]).unwrap();
            batch.slot(1).write(&[0xA1; 3]).unwrap();
            batch.commit(2);
        });
        let tb = thread::spawn(move || push_spin(&mut b, &[0xB0; 5]));
        let mut lane0 = Vec::new();
        let mut lane1 = Vec::new();
        for _ in 0..3 {
            match pop_spin(&mut rx) {
                (0, m) => lane0.push(m),
                (_, m) => lane1.push(m),
            }
        }
        assert_eq!(lane0, [vec![0xA0; 8], vec![0xA1; 3]]);
        assert_eq!(lane1, [vec![0xB0; 5]]);
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(rx.fault_count(), 0);
    });
}

/// Lane 1's producer commits one message, writes a second into a reservation and
/// dies before committing it. The platform fences it (here: its thread is gone).
/// The consumer drains the committed message, resets the lane and a restarted
/// producer publishes in the new epoch, all while lane 0's producer keeps
/// publishing. Lane 0 is never disturbed; lane 1 delivers exactly the committed
/// message and then the restarted producer's, never the half-written one. The
/// restarted producer races the reset: it is refused while the lane is closed
/// and, once it sees the lane open, finds the freshly formatted ring.
#[test]
fn dead_producer_recovery_races_a_live_lane() {
    model(|| {
        let (region, mut rx) = chan();
        let mut live = Producer::attach(region.clone(), 0, 0).unwrap();
        let mut doomed = Producer::attach(region.clone(), 0, 1).unwrap();
        let live_thread = thread::spawn(move || {
            push_spin(&mut live, &[1; 8]);
            push_spin(&mut live, &[2; 8]);
        });
        let dead_thread = thread::spawn(move || {
            doomed.push(&[0xC0; 8]).unwrap();
            let batch = doomed.reserve(1).unwrap();
            batch.slot(0).write(&[0xDE; 8]).unwrap();
            // Dies here: the reservation is never committed.
        });
        let mut got: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        let record = |got: &mut [Vec<Vec<u8>>; 2], (lane, m): (usize, Vec<u8>)| got[lane].push(m);
        // The platform's fence: the dead producer can no longer write.
        dead_thread.join().unwrap();
        rx.fence_lane(1).unwrap();
        // A restarted producer tries to attach at once; it must be refused until
        // the reset has formatted the lane, then see the whole fresh ring.
        let restart_region = region.clone();
        let restarted_thread = thread::spawn(move || {
            let mut restarted = loop {
                match Producer::attach(restart_region.clone(), 0, 1) {
                    Ok(p) => break p,
                    Err(ChannelError::LaneClosed { lane: 1, epoch: 0 }) => thread::yield_now(),
                    Err(e) => panic!("restarted producer: {e}"),
                }
            };
            assert_eq!(restarted.epoch(), 1);
            push_spin(&mut restarted, &[0xF1; 4]);
        });
        // Drain what it committed (lane 0's messages may interleave).
        while !rx.is_drained(1).unwrap() {
            record(&mut got, pop_spin(&mut rx));
        }
        assert_eq!(rx.reset_lane(1), Ok(1));
        while got[0].len() < 2 || got[1].len() < 2 {
            record(&mut got, pop_spin(&mut rx));
        }
        assert_eq!(got[0], [vec![1; 8], vec![2; 8]]);
        assert_eq!(got[1], [vec![0xC0; 8], vec![0xF1; 4]]);
        live_thread.join().unwrap();
        restarted_thread.join().unwrap();
        assert_eq!(rx.fault_count(), 0);
    });
}
