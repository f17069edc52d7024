//! loom models of the SPSC protocol: every interleaving (up to the preemption
//! bound) and every value a relaxed load may legally return are explored, so a
//! missing Release/Acquire pair shows up as a stale payload or a false fault.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mkipc --test loom_spsc --release`

#![cfg(loom)]

use loom::thread;
use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry, ProduceError, Producer};

fn ring(slots: u32) -> (Producer, Consumer) {
    let g = Geometry::new(slots, 8).compact();
    let region = Region::new_heap(g.ring_size().unwrap());
    spsc::channel(&region, 0, g).unwrap()
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

fn pop_spin(rx: &mut Consumer) -> Vec<u8> {
    let mut buf = [0u8; 8];
    loop {
        match rx.pop(&mut buf) {
            Ok(n) => return buf[..n].to_vec(),
            Err(ConsumeError::Empty) => thread::yield_now(),
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

/// Three messages through two slots: publish, consume, wrap around, and reuse a
/// slot only after the consumer released it.
#[test]
fn publish_consume_and_wrap() {
    loom::model(|| {
        let (mut tx, mut rx) = ring(2);
        let producer = thread::spawn(move || {
            for i in 1..=3u8 {
                push_spin(&mut tx, &[i, i, i, i, i, i, i, i + 1]);
            }
        });
        for i in 1..=3u8 {
            assert_eq!(pop_spin(&mut rx), [i, i, i, i, i, i, i, i + 1]);
        }
        producer.join().unwrap();
    });
}

/// A batch of two committed together: the consumer may see one or both, but every
/// message it sees is complete.
#[test]
fn batch_commit_is_seen_in_order_and_complete() {
    loom::model(|| {
        let (mut tx, mut rx) = ring(4);
        let producer = thread::spawn(move || {
            let batch = tx.reserve(2).unwrap();
            assert_eq!(batch.len(), 2);
            batch.slot(0).write(&[0xA1; 8]).unwrap();
            batch.slot(1).write(&[0xB2; 5]).unwrap();
            batch.commit(2);
        });
        let mut seen = 0;
        let mut buf = [0u8; 8];
        while seen < 2 {
            match rx.peek(4) {
                Ok(mut batch) => {
                    let n = batch.len();
                    for i in 0..n {
                        let view = batch.get(i).unwrap();
                        let msg = view.copy_to(&mut buf).unwrap();
                        match seen + i {
                            0 => assert_eq!(msg, [0xA1; 8]),
                            _ => assert_eq!(msg, [0xB2; 5]),
                        }
                    }
                    seen += batch.release(n);
                }
                Err(ConsumeError::Empty) => thread::yield_now(),
                Err(e) => panic!("consumer: {e}"),
            }
        }
        producer.join().unwrap();
    });
}

/// The producer must not overwrite a slot the consumer is still reading: with one
/// slot, the second message may only land after the first was copied out.
#[test]
fn slot_reuse_waits_for_release() {
    loom::model(|| {
        let (mut tx, mut rx) = ring(1);
        let producer = thread::spawn(move || {
            push_spin(&mut tx, &[1; 8]);
            push_spin(&mut tx, &[2; 8]);
        });
        assert_eq!(pop_spin(&mut rx), [1; 8]);
        assert_eq!(pop_spin(&mut rx), [2; 8]);
        producer.join().unwrap();
    });
}
