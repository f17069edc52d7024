//! Unit tests of the MPSC channel (small enough for Miri).

use super::*;
use crate::Fault;
use crate::spsc::ProduceError;
use crate::sync::Ordering;

fn chan(lanes: u32, slots: u32, size: u32) -> (Region, Consumer) {
    let g = Geometry::new(lanes, slots, size).compact();
    let region = Region::new_heap(g.channel_size().unwrap());
    let rx = channel(&region, 0, g).unwrap();
    (region, rx)
}

fn producer(region: &Region, lane: usize) -> Producer {
    Producer::attach(region.clone(), 0, lane).unwrap()
}

fn pop(rx: &mut Consumer) -> Result<(usize, std::vec::Vec<u8>), RecvError> {
    let mut buf = [0u8; 64];
    let got = rx.pop(&mut buf)?;
    Ok((got.lane, buf[..got.len].to_vec()))
}

#[test]
fn every_lane_delivers_in_order_with_its_lane_id() {
    let (region, mut rx) = chan(3, 4, 16);
    let mut tx: std::vec::Vec<Producer> = (0..3).map(|l| producer(&region, l)).collect();
    for round in 0..3u8 {
        for (lane, p) in tx.iter_mut().enumerate() {
            p.push(&[lane as u8, round]).unwrap();
        }
    }
    let mut next = [0u8; 3];
    for _ in 0..9 {
        let (lane, msg) = pop(&mut rx).unwrap();
        assert_eq!(msg, [lane as u8, next[lane]]);
        next[lane] += 1;
    }
    assert_eq!(next, [3; 3]);
    assert_eq!(pop(&mut rx), Err(RecvError::Empty));
    assert_eq!(rx.released(1), 3);
}

#[test]
fn a_flooding_lane_cannot_starve_a_quiet_one() {
    let slots = 2 * QUANTUM;
    let (region, mut rx) = chan(2, slots, 8);
    let mut busy = producer(&region, 0);
    let mut quiet = producer(&region, 1);
    for i in 0..slots {
        busy.push(&i.to_le_bytes()).unwrap();
    }
    quiet.push(b"me").unwrap();
    let mut served_before_quiet = 0;
    loop {
        let (lane, _) = pop(&mut rx).unwrap();
        if lane == 1 {
            break;
        }
        served_before_quiet += 1;
    }
    assert!(served_before_quiet <= QUANTUM, "{served_before_quiet}");
    // Batches alternate between lanes with messages waiting.
    quiet.push(b"again").unwrap();
    let lanes: std::vec::Vec<usize> = (0..2)
        .map(|_| {
            let batch = rx.peek(4).unwrap();
            let lane = batch.lane();
            batch.release(1);
            lane
        })
        .collect();
    assert!(lanes.contains(&1), "{lanes:?}");
}

#[test]
fn batches_reserve_commit_peek_release() {
    let (region, mut rx) = chan(2, 8, 16);
    let mut p = producer(&region, 1);
    let batch = p.reserve(5).unwrap();
    for i in 0..5 {
        batch.slot(i).write(&[i as u8; 3]).unwrap();
    }
    assert_eq!(batch.commit(4), 4);
    let mut batch = rx.peek(8).unwrap();
    assert_eq!((batch.lane(), batch.len()), (1, 4));
    let mut out = [0u8; 16];
    for i in 0..4 {
        let view = batch.get(i).unwrap();
        assert_eq!(view.copy_to(&mut out).unwrap(), [i as u8; 3]);
    }
    assert_eq!(batch.release(4), 4);
    assert!(matches!(rx.peek(8), Err(RecvError::Empty)));
}

#[test]
fn a_producer_dead_mid_publish_loses_only_its_unpublished_message() {
    let (region, mut rx) = chan(2, 4, 16);
    let mut live = producer(&region, 0);
    {
        let mut dead = producer(&region, 1);
        dead.push(b"committed").unwrap();
        let batch = dead.reserve(1).unwrap();
        batch.slot(0).write(b"half-written").unwrap();
        // Dies here: the reservation is never committed.
        let _ = batch;
    }
    live.push(b"live 1").unwrap();
    rx.fence_lane(1).unwrap();
    assert!(matches!(
        Producer::attach(region.clone(), 0, 1),
        Err(ChannelError::LaneClosed { lane: 1, epoch: 0 })
    ));
    assert_eq!(rx.lane_status(1), Ok(LaneStatus::Draining { epoch: 0 }));
    assert_eq!(rx.reset_lane(1), Err(LaneError::NotDrained { lane: 1 }));
    let mut got = std::vec::Vec::new();
    while let Ok(m) = pop(&mut rx) {
        got.push(m);
    }
    got.sort();
    assert_eq!(
        got,
        [(0, b"live 1".to_vec()), (1, b"committed".to_vec())],
        "the committed message is delivered, the half-written one is not"
    );
    assert_eq!(rx.reset_lane(1), Ok(1));
    assert_eq!(rx.lane_status(1), Ok(LaneStatus::Open { epoch: 1 }));
    let mut restarted = producer(&region, 1);
    assert_eq!(restarted.epoch(), 1);
    assert_eq!(restarted.published(), 0);
    restarted.push(b"back").unwrap();
    live.push(b"live 2").unwrap();
    let mut got = [pop(&mut rx).unwrap(), pop(&mut rx).unwrap()];
    got.sort();
    assert_eq!(got, [(0, b"live 2".to_vec()), (1, b"back".to_vec())]);
    assert_eq!(pop(&mut rx), Err(RecvError::Empty));
}

#[test]
fn lane_operations_check_their_preconditions() {
    let (region, mut rx) = chan(2, 4, 8);
    assert_eq!(
        Producer::attach(region.clone(), 0, 2).err(),
        Some(ChannelError::NoSuchLane { lane: 2, lanes: 2 })
    );
    assert_eq!(
        rx.fence_lane(5),
        Err(LaneError::NoSuchLane { lane: 5, lanes: 2 })
    );
    assert_eq!(rx.reset_lane(0), Err(LaneError::NotFenced { lane: 0 }));
    let p = producer(&region, 0);
    assert!(p.is_current());
    rx.fence_lane(0).unwrap();
    assert!(
        !p.is_current(),
        "a fenced producer learns it was declared dead"
    );
    assert_eq!(rx.reset_lane(0), Ok(1));
    assert!(!p.is_current(), "a new epoch is not the old producer's");
}

#[test]
fn a_corrupt_lane_is_reported_once_and_the_others_keep_flowing() {
    let (region, mut rx) = chan(3, 4, 8);
    let mut good = producer(&region, 0);
    let mut bad = producer(&region, 2);
    bad.push(b"x").unwrap();
    let tag = bad.lane_layout().tag_word(0);
    region.store(tag, 0xdead, Ordering::Relaxed).unwrap();
    good.push(b"ok").unwrap();
    let mut saw_fault = 0;
    let mut saw_good = 0;
    for _ in 0..4 {
        match pop(&mut rx) {
            Ok((0, m)) => {
                assert_eq!(m, b"ok");
                saw_good += 1;
            }
            Err(RecvError::LaneBroken { lane: 2, fault }) => {
                assert_eq!(
                    fault,
                    Fault::BadStamp {
                        position: 0,
                        found: 0xdead
                    }
                );
                saw_fault += 1;
            }
            Err(RecvError::Empty) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((saw_fault, saw_good), (1, 1));
    assert_eq!(rx.faulted_lanes(), 0b100);
    assert_eq!(rx.fault_count(), 1);
    let ch = *rx.channel();
    assert_eq!(
        region.load(ch.faulted_lanes_word(), Ordering::Relaxed),
        Ok(0b100)
    );
    assert_eq!(region.load(ch.faults_word(), Ordering::Relaxed), Ok(1));
    assert!(matches!(rx.lane_status(2), Ok(LaneStatus::Faulted { .. })));
    // Still flowing, and the broken lane recovers once fenced and reset.
    good.push(b"ok").unwrap();
    assert_eq!(pop(&mut rx).unwrap().0, 0);
    rx.fence_lane(2).unwrap();
    assert_eq!(rx.reset_lane(2), Ok(1));
    assert_eq!(rx.faulted_lanes(), 0);
    producer(&region, 2).push(b"fine").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), (2, b"fine".to_vec()));
}

#[test]
fn small_buffers_leave_the_message_queued() {
    let (region, mut rx) = chan(1, 2, 16);
    producer(&region, 0).push(&[7; 12]).unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        rx.pop(&mut small),
        Err(RecvError::BufferTooSmall {
            lane: 0,
            needed: 12
        })
    );
    assert_eq!(pop(&mut rx).unwrap(), (0, [7; 12].to_vec()));
}

#[test]
fn need_wakeup_and_pending_summary() {
    let (region, mut rx) = chan(4, 2, 8);
    let mut p1 = producer(&region, 1);
    let mut p3 = producer(&region, 3);
    assert!(!p1.needs_wakeup());
    rx.set_need_wakeup(true);
    assert!(p1.needs_wakeup() && p3.needs_wakeup());
    assert_eq!(rx.pending(), 0);
    p1.push(b"a").unwrap();
    p3.push(b"b").unwrap();
    assert_eq!(rx.pending(), 0b1010);
    rx.set_need_wakeup(false);
    assert!(!p3.needs_wakeup());
    assert_eq!(
        region.load(rx.channel().need_wakeup_word(), Ordering::Relaxed),
        Ok(0)
    );
}

#[test]
fn a_restarted_consumer_resumes_every_lane() {
    let (region, mut rx) = chan(2, 4, 8);
    let mut p0 = producer(&region, 0);
    let mut p1 = producer(&region, 1);
    p0.push(b"0a").unwrap();
    p1.push(b"1a").unwrap();
    p1.push(b"1b").unwrap();
    let first = pop(&mut rx).unwrap();
    rx.fence_lane(0).unwrap_or(());
    drop(rx);
    let mut rx = Consumer::attach(region.clone(), 0).unwrap();
    let mut rest = std::vec::Vec::new();
    while let Ok(m) = pop(&mut rx) {
        rest.push(m);
    }
    assert_eq!(rest.len(), 2, "{first:?} then {rest:?}");
    assert_eq!(rx.lane_status(0), Ok(LaneStatus::Draining { epoch: 0 }));
    assert_eq!(rx.reset_lane(0), Ok(1));
}

#[test]
fn a_trashed_lane_descriptor_faults_only_that_lane_at_attach() {
    let (region, rx) = chan(2, 4, 8);
    let at = rx.channel().lane_offset(1);
    drop(rx);
    region.store(at, 1234, Ordering::Relaxed).unwrap();
    let mut rx = Consumer::attach(region.clone(), 0).unwrap();
    assert_eq!(rx.lane_fault(1), Some(Fault::BadDescriptor));
    producer(&region, 0).push(b"still").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), (0, b"still".to_vec()));
    assert!(matches!(
        Producer::attach(region.clone(), 0, 1),
        Err(ChannelError::Lane { lane: 1, .. })
    ));
    rx.fence_lane(1).unwrap();
    rx.reset_lane(1).unwrap();
    producer(&region, 1).push(b"fixed").unwrap();
    assert_eq!(pop(&mut rx).unwrap(), (1, b"fixed".to_vec()));
}

#[test]
fn full_lanes_report_full_to_their_producer_only() {
    let (region, mut rx) = chan(2, 2, 8);
    let mut a = producer(&region, 0);
    let mut b = producer(&region, 1);
    a.push(b"1").unwrap();
    a.push(b"2").unwrap();
    assert_eq!(a.push(b"3"), Err(ProduceError::Full));
    b.push(b"b").unwrap();
    let mut batch = rx.peek(4).unwrap();
    assert_eq!((batch.lane(), batch.len()), (0, 2));
    assert!(batch.get(1).is_ok());
    batch.release(2);
    assert_eq!(a.push(b"3"), Ok(()), "lane 0 has room again");
    assert_eq!(pop(&mut rx).unwrap(), (1, b"b".to_vec()));
}
