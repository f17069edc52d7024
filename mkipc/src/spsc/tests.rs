//! Unit tests of the SPSC ring (small enough for Miri).

use super::*;
use crate::Fault;
use crate::sync::Ordering;

fn ring(slots: u32, size: u32) -> (Region, Producer, Consumer) {
    let g = Geometry::new(slots, size).compact();
    let region = Region::new_heap(g.ring_size().unwrap());
    let (tx, rx) = channel(&region, 0, g).unwrap();
    (region, tx, rx)
}

#[test]
fn messages_arrive_in_order_across_laps() {
    let (_r, mut tx, mut rx) = ring(4, 24);
    let mut buf = [0u8; 24];
    for lap in 0u8..5 {
        for i in 0..3u8 {
            tx.push(&[lap, i, lap ^ i]).unwrap();
        }
        for i in 0..3u8 {
            let n = rx.pop(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[lap, i, lap ^ i]);
        }
    }
    assert_eq!(tx.published(), 15);
    assert_eq!(rx.released(), 15);
}

#[test]
fn full_and_empty_are_reported() {
    let (_r, mut tx, mut rx) = ring(2, 8);
    let mut buf = [0u8; 8];
    assert_eq!(rx.pop(&mut buf), Err(ConsumeError::Empty));
    tx.push(b"a").unwrap();
    tx.push(b"b").unwrap();
    assert_eq!(tx.push(b"c"), Err(ProduceError::Full));
    assert_eq!(tx.free_slots(), Ok(0));
    rx.pop(&mut buf).unwrap();
    assert_eq!(tx.free_slots(), Ok(1));
    tx.push(b"c").unwrap();
}

#[test]
fn size_errors_leave_the_ring_usable() {
    let (_r, mut tx, mut rx) = ring(2, 8);
    assert_eq!(
        tx.push(&[0; 9]),
        Err(ProduceError::TooLarge {
            len: 9,
            capacity: 8
        })
    );
    tx.push(b"12345678").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        rx.pop(&mut small),
        Err(ConsumeError::BufferTooSmall { needed: 8 })
    );
    let mut buf = [0u8; 8];
    assert_eq!(rx.pop(&mut buf), Ok(8), "the message stayed queued");
    assert_eq!(&buf, b"12345678");
}

#[test]
fn batches_commit_and_release_partially() {
    let (_r, mut tx, mut rx) = ring(8, 16);
    let batch = tx.reserve(5).unwrap();
    assert_eq!(batch.len(), 5);
    for i in 0..5 {
        batch.slot(i).write(&[i as u8; 3]).unwrap();
    }
    assert_eq!(batch.commit(3), 3);
    // Uncommitted slots are invisible and reusable.
    assert!(matches!(rx.peek(8).map(|b| b.len()), Ok(3)));
    let mut batch = rx.peek(8).unwrap();
    let mut out = [0u8; 16];
    for i in 0..3 {
        let view = batch.get(i).unwrap();
        assert_eq!(view.position(), i as u64);
        assert_eq!(view.copy_to(&mut out).unwrap(), &[i as u8; 3]);
    }
    assert_eq!(batch.release(2), 2);
    assert_eq!(rx.released(), 2);
    let mut batch = rx.peek(8).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch.get(0).unwrap().position(), 2);
    batch.release(1);
    assert_eq!(rx.pop(&mut out), Err(ConsumeError::Empty));
}

#[test]
fn dropped_reservation_publishes_nothing() {
    let (_r, mut tx, mut rx) = ring(4, 8);
    {
        let r = tx.reserve(2).unwrap();
        r.slot(0).write(b"lost").unwrap();
    }
    assert_eq!(rx.pop(&mut [0u8; 8]), Err(ConsumeError::Empty));
    tx.push(b"kept").unwrap();
    let mut buf = [0u8; 8];
    let n = rx.pop(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"kept");
}

#[test]
fn in_place_writes_and_partial_reads() {
    let (_r, mut tx, mut rx) = ring(2, 32);
    let r = tx.reserve(1).unwrap();
    let slot = r.slot(0);
    slot.write_at(5, b"world").unwrap();
    slot.write_at(0, b"hello").unwrap();
    slot.set_len(10).unwrap();
    assert!(slot.set_len(33).is_err());
    assert!(slot.write_at(30, b"abc").is_err());
    r.commit(1);
    let mut batch = rx.peek(1).unwrap();
    let view = batch.get(0).unwrap();
    let mut word = [0u8; 5];
    view.read(5, &mut word).unwrap();
    assert_eq!(&word, b"world");
    assert!(view.read(6, &mut word).is_err());
}

#[test]
fn messages_built_and_checked_word_by_word_in_place() {
    let (_r, mut tx, mut rx) = ring(4, 40);
    let r = tx.reserve(2).unwrap();
    r.slot(0).fill_words(5, |i| 100 + i as u64).unwrap();
    // Six words do not fit 40 bytes: refused, nothing written.
    assert!(matches!(
        r.slot(1).fill_words(6, |_| 0),
        Err(ProduceError::TooLarge {
            len: 48,
            capacity: 40
        })
    ));
    r.slot(1).write(b"abc").unwrap();
    assert_eq!(r.commit(2), 2);
    let mut batch = rx.peek(2).unwrap();
    let view = batch.get(0).unwrap();
    assert_eq!(view.len(), 40);
    let words = view.fold_words(0u64, |n, w| {
        assert_eq!(w, 100 + n);
        n + 1
    });
    assert_eq!(words, Ok(5));
    let mut buf = [0u8; 40];
    assert_eq!(&view.copy_to(&mut buf).unwrap()[..8], &100u64.to_le_bytes());
    // A 3-byte message folds over its one (partly filled) word.
    let short = batch.get(1).unwrap();
    let first = short.fold_words(0u64, |_, w| w).unwrap();
    assert_eq!(&first.to_le_bytes()[..3], b"abc");
    batch.release(2);
}

#[test]
fn endpoints_reattach_where_they_left_off() {
    let (region, mut tx, mut rx) = ring(4, 8);
    for i in 0..6u8 {
        tx.push(&[i]).unwrap();
        rx.pop(&mut [0u8; 8]).unwrap();
    }
    tx.push(&[6]).unwrap();
    drop((tx, rx));
    let mut tx = Producer::attach(region.clone(), 0).unwrap();
    let mut rx = Consumer::attach(region, 0).unwrap();
    assert_eq!((tx.published(), rx.released()), (7, 6));
    tx.push(&[7]).unwrap();
    let mut buf = [0u8; 8];
    for i in 6..8u8 {
        assert_eq!(rx.pop(&mut buf), Ok(1));
        assert_eq!(buf[0], i);
    }
}

#[test]
fn a_bad_head_latches_the_producer() {
    let (region, mut tx, _rx) = ring(2, 8);
    tx.push(b"x").unwrap();
    let head = tx.layout().head_word();
    region.store(head, 5, Ordering::Relaxed).unwrap();
    tx.push(b"y").unwrap(); // one free slot cached: no need to look yet
    let want = Fault::HeadOutOfRange {
        found: 5,
        low: 0,
        high: 2,
    };
    assert_eq!(tx.push(b"z"), Err(ProduceError::Broken(want)));
    region.store(head, 1, Ordering::Relaxed).unwrap();
    assert_eq!(tx.push(b"z"), Err(ProduceError::Broken(want)), "latched");
    assert_eq!(tx.fault_count(), 1);
    let published = region
        .load(tx.layout().producer_faults_word(), Ordering::Relaxed)
        .unwrap();
    assert_eq!(published, 1, "fault count visible to observers");
}

#[test]
fn a_bad_stamp_or_length_latches_the_consumer() {
    let (region, mut tx, mut rx) = ring(4, 8);
    tx.push(b"ok").unwrap();
    region
        .store(
            tx.layout().tag_word(0),
            RingLayout::published_tag(0, 9),
            Ordering::Relaxed,
        )
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        rx.pop(&mut buf),
        Err(ConsumeError::Broken(Fault::BadLength {
            position: 0,
            found: 9,
            capacity: 8
        }))
    );
    assert!(matches!(rx.pop(&mut buf), Err(ConsumeError::Broken(_))));

    let (region, mut tx, mut rx) = ring(4, 8);
    tx.push(b"ok").unwrap();
    region
        .store(tx.layout().tag_word(1), 77, Ordering::Relaxed)
        .unwrap();
    let mut batch = rx.peek(1).unwrap();
    assert_eq!(batch.get(0).unwrap().len(), 2);
    batch.release(1);
    assert_eq!(
        rx.pop(&mut buf),
        Err(ConsumeError::Broken(Fault::BadStamp {
            position: 1,
            found: 77
        }))
    );
    assert_eq!(rx.fault_count(), 1);
}

#[test]
fn two_threads_deliver_every_message_once() {
    const COUNT: u64 = if cfg!(miri) { 300 } else { 100_000 };
    let (_r, mut tx, mut rx) = ring(8, 16);
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..COUNT {
                let msg = i.to_le_bytes();
                while let Err(e) = tx.push(&msg) {
                    assert_eq!(e, ProduceError::Full);
                    std::thread::yield_now();
                }
            }
        });
        let mut buf = [0u8; 16];
        for i in 0..COUNT {
            let n = loop {
                match rx.pop(&mut buf) {
                    Ok(n) => break n,
                    Err(ConsumeError::Empty) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(n, 8);
            assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), i);
        }
    });
}

#[test]
fn dense_slots_pack_tag_and_payload_back_to_back() {
    let g = Geometry::new(8, 64).compact().dense();
    let region = Region::new_heap(g.ring_size().unwrap());
    let (mut tx, mut rx) = channel(&region, 0, g).unwrap();
    let layout = *tx.layout();
    assert_eq!(layout.slot(1) - layout.slot(0), 72, "8-byte tag + 64 bytes");
    let mut buf = [0u8; 64];
    for i in 0..20u8 {
        tx.push(&[i; 64]).unwrap();
        assert_eq!(rx.pop(&mut buf), Ok(64));
        assert_eq!(buf, [i; 64]);
    }
    let err = Geometry::new(8, 64).dense().ring_size();
    assert!(err.is_ok());
    let bad = Geometry {
        slot_align: 12,
        ..Geometry::new(8, 64)
    };
    assert_eq!(bad.ring_size(), Err(GeometryError::SlotAlign(12)));
}

/// Stamps are positions modulo 2^40: a ring that has carried that many messages
/// keeps working across the wrap (set up by resuming both ends just before it).
#[test]
fn stamps_wrap_at_forty_bits() {
    const SLOTS: u64 = 4;
    let start = (1u64 << 40) - 6;
    let g = Geometry::new(SLOTS as u32, 8).compact();
    let region = Region::new_heap(g.ring_size().unwrap());
    let layout = RingLayout::create(&region, 0, g).unwrap();
    // Resume as if `start` messages had been sent and released: each slot holds
    // the stamp of the previous lap's message.
    for position in start..start + SLOTS {
        let previous = position - SLOTS;
        let tag = RingLayout::published_tag(previous, 0);
        region
            .store(layout.tag_word(position), tag, Ordering::Relaxed)
            .unwrap();
    }
    region
        .store(layout.tail_word(), start, Ordering::Relaxed)
        .unwrap();
    region
        .store(layout.head_word(), start, Ordering::Relaxed)
        .unwrap();
    let mut tx = Producer::attach(region.clone(), 0).unwrap();
    let mut rx = Consumer::attach(region.clone(), 0).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(rx.pop(&mut buf), Err(ConsumeError::Empty));
    for i in 0..3 * SLOTS {
        let msg = (start + i).to_le_bytes();
        tx.push(&msg).unwrap();
        assert_eq!(rx.pop(&mut buf), Ok(8));
        assert_eq!(buf, msg, "message {i} after the wrap");
        assert_eq!(rx.pop(&mut buf), Err(ConsumeError::Empty));
    }
    assert!(tx.fault().is_none() && rx.fault().is_none());
}
