use super::*;
use crate::fault::Fault;
use crate::layout::PAGE;
use alloc::vec::Vec;

fn small() -> (Region, PoolSender, PoolReceiver) {
    let g = PoolGeometry::new(4, 64).compact();
    let region = Region::new_heap(g.pool_size().unwrap());
    let (tx, rx) = channel(&region, 0, g, MessageType::bytes(256)).unwrap();
    (region, tx, rx)
}

#[test]
fn loan_write_send_view_return_collect() {
    let (_r, mut tx, mut rx) = small();
    let loan = tx.loan().unwrap();
    tx.writer(&loan).fill_words(8, |i| i as u64 * 3).unwrap();
    tx.send(loan, 64).unwrap();
    assert_eq!(tx.lent_buffers(), 1);
    let held = rx.recv().unwrap();
    assert_eq!(held.len(), 64);
    let sum = rx.view(&held).fold_words(0, |a, w| a + w).unwrap();
    assert_eq!(sum, 3 * (0..8).sum::<u64>());
    assert_eq!(rx.recv(), Err(RecvError::Empty));
    rx.give_back(held).unwrap();
    assert_eq!(tx.collect().unwrap(), 1);
    assert_eq!((tx.free_buffers(), tx.lent_buffers()), (4, 0));
}

#[test]
fn buffers_are_never_reused_while_held() {
    let (_r, mut tx, mut rx) = small();
    let mut held = Vec::new();
    for i in 0..4u8 {
        let loan = tx.loan().unwrap();
        tx.writer(&loan).write_at(0, &[i; 64]).unwrap();
        tx.send(loan, 64).unwrap();
        held.push(rx.recv().unwrap());
    }
    assert_eq!(tx.loan(), Err(SendError::NoBuffer));
    for (i, h) in held.iter().enumerate() {
        let mut b = [0u8; 64];
        rx.view(h).read(0, &mut b).unwrap();
        assert_eq!(b, [i as u8; 64]);
    }
    let first = held.remove(0);
    let index = first.index();
    rx.give_back(first).unwrap();
    assert_eq!(
        tx.loan().unwrap().index(),
        index,
        "only the returned buffer is free"
    );
}

#[test]
fn bytes_travel_inline_whole_and_fragmented() {
    let (_r, mut tx, mut rx) = small();
    assert_eq!(tx.max_message_size(), 4 * 64);
    let mut buf = [0u8; 256];
    for len in [0, 1, 48, 49, 64, 65, 200, 256] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        tx.send_bytes(&msg).unwrap();
        assert_eq!(rx.recv_bytes(&mut buf).unwrap(), len);
        assert_eq!(&buf[..len], &msg[..]);
    }
    assert_eq!(
        tx.send_bytes(&[0; 257]),
        Err(SendError::TooLarge {
            len: 257,
            capacity: 256
        })
    );
    tx.send_bytes(&[9; 100]).unwrap();
    assert_eq!(rx.recv(), Err(RecvError::NeedsCopy));
    assert_eq!(
        rx.recv_bytes(&mut buf[..50]),
        Err(RecvError::BufferTooSmall { needed: 100 })
    );
    assert_eq!(rx.recv_bytes(&mut buf).unwrap(), 100);
    assert_eq!(tx.collect().unwrap(), 2);
    assert_eq!(rx.held_buffers(), 0);
}

#[test]
fn fragmented_message_needs_every_buffer_up_front() {
    let (_r, mut tx, mut rx) = small();
    let loan = tx.loan().unwrap();
    assert_eq!(tx.send_bytes(&[1; 256]), Err(SendError::NoBuffer));
    tx.cancel(loan).unwrap();
    tx.send_bytes(&[1; 256]).unwrap();
    let mut buf = [0u8; 256];
    assert_eq!(rx.recv_bytes(&mut buf).unwrap(), 256);
}

#[test]
fn foreign_loans_and_handles_are_refused() {
    let (_r, mut tx, mut rx) = small();
    let g = PoolGeometry::new(4, 64).compact();
    let other = Region::new_heap(g.pool_size().unwrap() + PAGE);
    let (mut tx2, mut rx2) = channel(&other, PAGE, g, MessageType::bytes(256)).unwrap();
    let foreign = tx2.loan().unwrap();
    let failed = tx.send(foreign, 8).unwrap_err();
    assert_eq!(failed.error, SendError::ForeignLoan);
    assert_eq!(tx.cancel(failed.loan), Err(SendError::ForeignLoan));
    let loan = tx.loan().unwrap();
    let failed = tx.send(loan, 65).unwrap_err();
    assert_eq!(
        failed.error,
        SendError::TooLarge {
            len: 65,
            capacity: 64
        }
    );
    tx.send(failed.loan, 8).unwrap();
    let held = rx.recv().unwrap();
    assert_eq!(rx2.give_back(held), Err(RecvError::ForeignHandle));
    assert_eq!(tx.fault(), None);
}

#[test]
fn reclaim_all_frees_loans_of_a_fenced_receiver() {
    let (_r, mut tx, mut rx) = small();
    for _ in 0..3 {
        let loan = tx.loan().unwrap();
        tx.send(loan, 1).unwrap();
    }
    let _held = rx.recv().unwrap();
    drop(rx); // the receiver dies holding one buffer, two more queued
    assert_eq!(tx.lent_buffers(), 3);
    assert_eq!(tx.reclaim_all(), 3);
    assert_eq!((tx.free_buffers(), tx.lent_buffers()), (4, 0));
    let loans: Vec<_> = (0..4).map(|_| tx.loan().unwrap()).collect();
    assert_eq!(loans.len(), 4);
}

#[test]
fn faults_latch_and_count() {
    let (region, mut tx, _rx) = small();
    let loan = tx.loan().unwrap();
    tx.send(loan, 1).unwrap();
    // A completion for buffer 3, which was never lent.
    let mut ret =
        crate::spsc::Producer::attach(region.clone(), tx.layout().completion_ring()).unwrap();
    ret.push(&(3u64 * 64).to_le_bytes()).unwrap();
    let fault = Fault::NotLent { offset: 192 };
    assert_eq!(tx.collect(), Err(SendError::Broken(fault)));
    assert_eq!(tx.loan(), Err(SendError::Broken(fault)));
    assert_eq!(tx.send_bytes(b"x"), Err(SendError::Broken(fault)));
    assert_eq!(tx.fault_count(), 1);
}

#[test]
fn tokens_rebuilt_from_indices_obey_the_ledger() {
    let (_r, mut tx, mut rx) = small();
    assert_eq!(tx.loan_at(0), None, "a free buffer has no loan");
    assert_eq!(tx.loan_at(99), None, "out of range");
    let loan = tx.loan().unwrap();
    let index = loan.index();
    let twin = tx.loan_at(index).unwrap();
    tx.send(loan, 8).unwrap();
    let refused = tx.send(twin, 8).unwrap_err();
    assert_eq!(
        refused.error,
        SendError::ForeignLoan,
        "a sent buffer is lent"
    );
    assert_eq!(tx.loan_at(index), None);

    let held = rx.recv().unwrap();
    assert_eq!(rx.held_at(index, 65), None, "longer than a buffer");
    assert_eq!(rx.held_at(index + 1, 8), None, "not held");
    let twin = rx.held_at(index, 8).unwrap();
    assert_eq!(twin, held);
    rx.give_back(held).unwrap();
    assert_eq!(rx.give_back(twin), Err(RecvError::ForeignHandle));
    assert_eq!(tx.collect().unwrap(), 1);
}
