//! loom models of the buffer pool's ownership protocol: loan, write in place,
//! send, read in place, give back, collect. The payload ordering rides on the two
//! SPSC rings' stamp/head pairs; these models check that the receiver sees every
//! word the sender wrote, and that a buffer is never rewritten while it is held.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mkipc --test loom_pool --release`

#![cfg(loom)]

use loom::thread;
use mkipc::pool::{self, PoolGeometry, PoolReceiver, PoolSender, RecvError, SendError};
use mkipc::{MessageType, Region};

fn pool(buffers: u32, size: u32) -> (PoolSender, PoolReceiver) {
    let g = PoolGeometry::new(buffers, size)
        .compact()
        .with_ring_slots(2)
        .with_inline(0);
    let region = Region::new_heap(g.pool_size().unwrap());
    pool::channel(&region, 0, g, MessageType::bytes(64)).unwrap()
}

fn loan_spin(tx: &mut PoolSender) -> pool::Loan {
    loop {
        match tx.loan() {
            Ok(loan) => return loan,
            Err(SendError::NoBuffer) => thread::yield_now(),
            Err(e) => panic!("sender: {e}"),
        }
    }
}

fn recv_spin(rx: &mut PoolReceiver) -> pool::Held {
    loop {
        match rx.recv() {
            Ok(held) => return held,
            Err(RecvError::Empty) => thread::yield_now(),
            Err(e) => panic!("receiver: {e}"),
        }
    }
}

/// One buffer, two rounds: the second loan can only succeed after the receiver
/// gave the first back, and the receiver sees each round's words complete.
#[test]
fn loan_send_return_reuse() {
    loom::model(|| {
        let (mut tx, mut rx) = pool(1, 16);
        let sender = thread::spawn(move || {
            for round in 1..=2u64 {
                let loan = loan_spin(&mut tx);
                tx.writer(&loan)
                    .fill_words(2, |i| round * 10 + i as u64)
                    .unwrap();
                tx.send(loan, 16).unwrap();
            }
        });
        for round in 1..=2u64 {
            let held = recv_spin(&mut rx);
            let view = rx.view(&held);
            // Read twice: a reuse while held would change the words between reads.
            for _ in 0..2 {
                let mut words = [0u64; 2];
                let mut i = 0;
                view.fold_words((), |(), w| {
                    words[i] = w;
                    i += 1;
                })
                .unwrap();
                assert_eq!(words, [round * 10, round * 10 + 1]);
            }
            rx.give_back(held).unwrap();
        }
        sender.join().unwrap();
    });
}

/// A message over two buffers, committed at once: the receiver sees all of it or
/// nothing, never a fragment.
#[test]
fn fragmented_message_arrives_whole() {
    loom::model(|| {
        let (mut tx, mut rx) = pool(2, 8);
        let sender = thread::spawn(move || {
            tx.send_bytes(&[0xA5; 16]).unwrap();
        });
        let mut buf = [0u8; 16];
        loop {
            match rx.recv_bytes(&mut buf) {
                Ok(n) => {
                    assert_eq!(n, 16);
                    assert_eq!(buf, [0xA5; 16]);
                    break;
                }
                Err(RecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("receiver: {e}"),
            }
        }
        sender.join().unwrap();
    });
}
