use super::*;
use crate::MessageType;
use crate::header::HeaderError;
use crate::lifecycle::{Fence, LocalNode, PeerStatus, Watchdog};
use crate::manifest::wire::EndControl;
use crate::manifest::{
    ChannelSpec, End, GrantSpec, Manifest, ManifestBuilder, NodeInfo, NodeSpec, Rights,
};
use crate::recorder::{EventKind, NO_EVENT};
use crate::shm::Region;
use crate::spsc::Geometry;
use crate::sync::Ordering;
use core::cell::Cell;
use core::mem::offset_of;

const TX: u32 = 1;
const RX: u32 = 2;
const SLOT: u32 = 16;

fn manifest() -> Manifest {
    let nodes = [
        NodeSpec {
            id: TX,
            name: "producer",
        },
        NodeSpec {
            id: RX,
            name: "consumer",
        },
        NodeSpec {
            id: 3,
            name: "bystander",
        },
    ];
    let channels = [ChannelSpec::spsc("data", Geometry::new(4, SLOT).compact())];
    let grants = [
        GrantSpec {
            node: TX,
            channel: "data",
            end: End::Producer,
            rights: Rights::SEND,
        },
        GrantSpec {
            node: RX,
            channel: "data",
            end: End::Consumer,
            rights: Rights::RECEIVE | Rights::ADMIN,
        },
    ];
    let b = ManifestBuilder::new(&nodes, &channels, &grants).section_align(128);
    let region = Region::new_heap(b.required_size().unwrap());
    b.write(&region, 1).unwrap()
}

fn hello() -> Hello {
    Hello::new(MessageType::bytes(SLOT))
}

struct Yes;
impl Fence for Yes {
    fn fence(&mut self, _: &NodeInfo, _: u64) -> bool {
        true
    }
}

fn recv(rx: &mut Receiver) -> Result<u8, RecvError> {
    let mut buf = [0u8; SLOT as usize];
    rx.recv(&mut buf).map(|n| {
        assert_eq!(n, 1);
        buf[0]
    })
}

#[test]
fn messages_queue_before_accept_and_features_intersect() {
    let m = manifest();
    let (a, b) = (
        LocalNode::boot(&m, TX).unwrap(),
        LocalNode::boot(&m, RX).unwrap(),
    );
    let mut tx = Sender::connect(&m, &a, "data", hello().with_features(0b1011)).unwrap();
    tx.send(&[1]).unwrap();
    tx.send(&[2]).unwrap();
    assert_eq!(tx.poll(), Ok(LinkStatus::Pending));
    let mut rx = Receiver::open(&m, &b, "data", hello().with_features(0b0110)).unwrap();
    assert_eq!(recv(&mut rx), Err(RecvError::NotConnected));
    let agreed = rx.try_accept().unwrap();
    assert_eq!(agreed.features, 0b0010);
    assert_eq!(agreed.peer_epoch, 1);
    assert_eq!((recv(&mut rx), recv(&mut rx)), (Ok(1), Ok(2)));
    assert_eq!(recv(&mut rx), Err(RecvError::Empty));
    match tx.poll().unwrap() {
        LinkStatus::Connected(a) => assert_eq!((a.features, a.peer_epoch), (0b0010, 1)),
        other => panic!("{other:?}"),
    }
    // A timeout in the caller's clock.
    let t = Cell::new(0u64);
    let clock = || {
        t.set(t.get() + 1);
        t.get()
    };
    assert_eq!(
        tx.wait_connected(&clock, 10).map(|a| a.features),
        Ok(0b0010)
    );
}

#[test]
fn each_refusal_has_its_own_error() {
    let m = manifest();
    let (a, b) = (
        LocalNode::boot(&m, TX).unwrap(),
        LocalNode::boot(&m, RX).unwrap(),
    );
    let other = LocalNode::boot(&m, 3).unwrap();
    assert_eq!(
        Sender::connect(&m, &other, "data", hello()).err(),
        Some(ConnectError::NotGranted {
            end: End::Producer,
            needed: Rights::SEND
        })
    );
    assert!(matches!(
        Sender::connect(&m, &a, "nope", hello()),
        Err(ConnectError::Manifest(_))
    ));
    let typed = Hello::new(MessageType::of::<u64>());
    assert!(matches!(
        Sender::connect(&m, &a, "data", typed),
        Err(ConnectError::IncompatibleType { .. })
    ));
    let mut rx = Receiver::open(&m, &b, "data", hello()).unwrap();
    assert_eq!(rx.try_accept(), Err(ConnectError::NoOffer));
    let t = Cell::new(0u64);
    let clock = || {
        t.set(t.get() + 5);
        t.get()
    };
    assert_eq!(
        rx.accept_within(&clock, 20),
        Err(ConnectError::PeerNotReady { waited: 20 })
    );
    let _tx = Sender::connect(&m, &a, "data", hello()).unwrap();
    let g = m.grant_of(0, 0, End::Producer).unwrap().unwrap();
    let r = m.region();
    let word = |f: usize| g.end_block + f;
    let poke = |f: usize, v: u64| r.store(word(f), v, Ordering::Relaxed).unwrap();
    let peek = |f: usize| r.load(word(f), Ordering::Relaxed).unwrap();
    let cases: [(usize, u64); 6] = [
        (offset_of!(EndControl, state), 0x1234),
        (offset_of!(EndControl, abi_version), 99),
        (offset_of!(EndControl, layout_hash), 7),
        (offset_of!(EndControl, message_type), 8 | 1 << 32),
        (offset_of!(EndControl, max_message), 4096),
        (offset_of!(EndControl, epoch), 9),
    ];
    for (field, value) in cases {
        let old = peek(field);
        poke(field, value);
        let e = rx.try_accept().unwrap_err();
        let ok = match field {
            0 => e == ConnectError::Peer(HeaderError::BadMagic { found: 0x1234 }),
            48 => matches!(
                e,
                ConnectError::Peer(HeaderError::VersionMismatch { theirs: 99, .. })
            ),
            56 => matches!(
                e,
                ConnectError::Peer(HeaderError::LayoutMismatch { theirs: 7, .. })
            ),
            32 => matches!(e, ConnectError::IncompatibleType { .. }),
            24 => {
                e == ConnectError::TooLarge {
                    offered: 4096,
                    limit: 16,
                }
            }
            _ => {
                e == ConnectError::BadWord {
                    field: "epoch",
                    found: 9,
                }
            }
        };
        assert!(ok, "field at {field}: {e:?}");
        poke(field, old);
    }
    assert!(rx.peer_faults() >= 4);
    // The producer's node restarts but its offer is still the old one: stale.
    let a2 = LocalNode::boot(&m, TX).unwrap();
    assert_eq!(
        rx.try_accept(),
        Err(ConnectError::StaleEpoch {
            found: 1,
            current: 2
        })
    );
    let _ = a2;
}

#[test]
fn producer_death_reclaim_and_restart_with_newer_features() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let mut b = LocalNode::boot(&m, RX).unwrap();
    let mut tx = Sender::connect(&m, &a, "data", hello().with_features(1)).unwrap();
    let mut rx = Receiver::open(&m, &b, "data", hello().with_features(0b11)).unwrap();
    assert_eq!(rx.try_accept().unwrap().features, 1);
    let mut dog = Watchdog::new(&m, TX, 50, 0).unwrap();
    for i in 1..=4u8 {
        tx.send(&[i]).unwrap();
    }
    assert_eq!(recv(&mut rx), Ok(1));
    // A torn fifth message: payload written, never committed.
    {
        let batch = tx.producer().reserve(1).unwrap();
        batch.slot(0).write(&[99]).unwrap();
    }
    drop(tx); // the producer's kernel stops beating
    assert_eq!(dog.observe(0), Ok(PeerStatus::Alive { epoch: 1 }));
    b.beat().unwrap();
    assert_eq!(rx.reclaim(&dog), Err(ReclaimError::NotGone { epoch: 1 }));
    assert_eq!(dog.observe(60), Ok(PeerStatus::Dead { epoch: 1 }));
    assert_eq!(rx.reclaim(&dog), Err(ReclaimError::NotGone { epoch: 1 }));
    assert_eq!(dog.fence(&mut Yes), PeerStatus::Fenced { epoch: 1 });
    // Committed messages first.
    assert_eq!(rx.reclaim(&dog), Err(ReclaimError::NotDrained));
    assert_eq!(
        (recv(&mut rx), recv(&mut rx), recv(&mut rx)),
        (Ok(2), Ok(3), Ok(4))
    );
    assert_eq!(recv(&mut rx), Err(RecvError::Empty));
    // Restarted before the reclaim: it must wait.
    let a2 = LocalNode::boot(&m, TX).unwrap();
    assert_eq!(
        Sender::connect(&m, &a2, "data", hello()).err(),
        Some(ConnectError::ReclaimPending { old_epoch: 1 })
    );
    assert_eq!(rx.reclaim(&dog), Ok(4));
    let mut tx = Sender::connect(&m, &a2, "data", hello().with_features(0b111)).unwrap();
    tx.send(&[5]).unwrap();
    let agreed = rx.try_accept().unwrap();
    assert_eq!((agreed.features, agreed.peer_epoch), (0b11, 2));
    assert_eq!(recv(&mut rx), Ok(5));
    assert_eq!(recv(&mut rx), Err(RecvError::Empty));
    assert!(matches!(tx.poll(), Ok(LinkStatus::Connected(_))));
    // The consumer's recorder tells the story, readable by anyone.
    let mut ev = [NO_EVENT; crate::manifest::wire::RECORDER_LEN];
    let n = rx.recorder().events(&mut ev).unwrap();
    let kinds = [
        EventKind::Connect,
        EventKind::PeerDead,
        EventKind::Reset,
        EventKind::Connect,
    ];
    assert_eq!(n, kinds.len());
    assert!(ev[..n].iter().zip(kinds).all(|(e, k)| e.kind == k));
}

#[test]
fn consumer_restart_keeps_queued_messages() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let b = LocalNode::boot(&m, RX).unwrap();
    let mut tx = Sender::connect(&m, &a, "data", hello()).unwrap();
    let mut rx = Receiver::open(&m, &b, "data", hello()).unwrap();
    rx.try_accept().unwrap();
    for i in 1..=3u8 {
        tx.send(&[i]).unwrap();
    }
    assert_eq!(recv(&mut rx), Ok(1));
    assert!(matches!(tx.poll(), Ok(LinkStatus::Connected(_))));
    drop(rx);
    let b2 = LocalNode::boot(&m, RX).unwrap();
    let mut dog = Watchdog::new(&m, RX, 10, 0).unwrap();
    dog.observe(0).unwrap();
    // The consumer rebooted, so its epoch 1 is gone.
    assert_eq!(tx.reclaim(&dog), Ok(()));
    assert_eq!(tx.status(), LinkStatus::Pending);
    // Sends keep queueing while the consumer is away.
    tx.send(&[4]).unwrap();
    let mut rx = Receiver::open(&m, &b2, "data", hello()).unwrap();
    assert_eq!(rx.try_accept().unwrap().peer_epoch, 1);
    assert_eq!(
        (recv(&mut rx), recv(&mut rx), recv(&mut rx)),
        (Ok(2), Ok(3), Ok(4))
    );
    match tx.poll().unwrap() {
        LinkStatus::Connected(a) => assert_eq!(a.peer_epoch, 2),
        other => panic!("{other:?}"),
    }
    let mut ev = [NO_EVENT; crate::manifest::wire::RECORDER_LEN];
    let n = tx.recorder().events(&mut ev).unwrap();
    assert!(
        ev[..n]
            .iter()
            .any(|e| e.kind == EventKind::EpochChange && e.value == 2)
    );
    let _ = b2;
}

#[test]
fn orderly_close_both_ways() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let b = LocalNode::boot(&m, RX).unwrap();
    // Producer closes: everything sent is delivered, then Closed.
    let mut tx = Sender::connect(&m, &a, "data", hello()).unwrap();
    let mut rx = Receiver::open(&m, &b, "data", hello()).unwrap();
    tx.send(&[1]).unwrap();
    tx.send(&[2]).unwrap();
    tx.close().unwrap();
    rx.try_accept().unwrap();
    assert_eq!((recv(&mut rx), recv(&mut rx)), (Ok(1), Ok(2)));
    assert_eq!(recv(&mut rx), Err(RecvError::Closed));
    assert_eq!(recv(&mut rx), Err(RecvError::Closed));

    // Consumer closes: the producer's next poll sees it and stops.
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let b = LocalNode::boot(&m, RX).unwrap();
    let mut tx = Sender::connect(&m, &a, "data", hello()).unwrap();
    let mut rx = Receiver::open(&m, &b, "data", hello()).unwrap();
    rx.try_accept().unwrap();
    tx.send(&[1]).unwrap();
    rx.close().unwrap();
    assert_eq!(tx.poll(), Ok(LinkStatus::PeerClosed));
    assert_eq!(tx.send(&[2]), Err(SendError::PeerClosed));
    let t = Cell::new(0u64);
    let clock = || {
        t.set(t.get() + 1);
        t.get()
    };
    assert_eq!(tx.wait_connected(&clock, 5), Err(ConnectError::PeerClosed));
}

#[test]
fn garbage_in_every_consumer_word_never_panics() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let b = LocalNode::boot(&m, RX).unwrap();
    let mut tx = Sender::connect(&m, &a, "data", hello().with_features(3)).unwrap();
    let mut rx = Receiver::open(&m, &b, "data", hello().with_features(3)).unwrap();
    rx.try_accept().unwrap();
    let g = m.grant_of(1, 0, End::Consumer).unwrap().unwrap();
    let node = m.find_node(RX).unwrap();
    let r = m.region().clone();
    let mut s = 0x9e37_79b9u64;
    let rounds = if cfg!(miri) { 2 } else { 30 };
    let words = (g.end_block..g.end_block + 128)
        .step_by(8)
        .chain((node.section..node.section + 32).step_by(8));
    for at in words {
        for k in 0..rounds {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let old = r.load(at, Ordering::Relaxed).unwrap();
            let v = [0, u64::MAX, old ^ 1, s >> 3, old.wrapping_add(1)][k % 5];
            r.store(at, v, Ordering::Relaxed).unwrap();
            let _ = tx.poll();
            let _ = tx.send(&[k as u8]);
            if let Ok(LinkStatus::Connected(agreed)) = tx.poll() {
                assert_eq!(agreed.features & !3, 0, "agreed features stay within ours");
            }
            r.store(at, old, Ordering::Relaxed).unwrap();
        }
    }
    let _ = rx.recv(&mut [0; 16]);
}

#[test]
fn garbage_in_every_producer_word_never_panics() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let b = LocalNode::boot(&m, RX).unwrap();
    let mut tx = Sender::connect(&m, &a, "data", hello().with_features(3)).unwrap();
    tx.send(&[1]).unwrap();
    let g = m.grant_of(0, 0, End::Producer).unwrap().unwrap();
    let node = m.find_node(TX).unwrap();
    let r = m.region().clone();
    let mut s = 0x1234_5678u64;
    let rounds = if cfg!(miri) { 2 } else { 30 };
    let words = (g.end_block..g.end_block + 128)
        .step_by(8)
        .chain((node.section..node.section + 32).step_by(8));
    for at in words {
        for k in 0..rounds {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let old = r.load(at, Ordering::Relaxed).unwrap();
            let v = [0, u64::MAX, old ^ 1, s >> 3, old.wrapping_add(1)][k % 5];
            r.store(at, v, Ordering::Relaxed).unwrap();
            let mut rx = Receiver::open(&m, &b, "data", hello().with_features(1)).unwrap();
            if let Ok(agreed) = rx.try_accept() {
                assert_eq!(agreed.features & !1, 0, "agreed features stay within ours");
                assert!(agreed.max_message <= SLOT);
                let _ = rx.recv(&mut [0; SLOT as usize]);
            }
            r.store(at, old, Ordering::Relaxed).unwrap();
        }
    }
}

#[test]
fn a_dead_peers_recorder_stays_readable() {
    let m = manifest();
    let a = LocalNode::boot(&m, TX).unwrap();
    let tx = Sender::connect(&m, &a, "data", hello().with_features(5)).unwrap();
    drop(tx);
    drop(a);
    // Anyone with the manifest reads the crashed producer's events.
    let g = m.grant_of(0, 0, End::Producer).unwrap().unwrap();
    let rec = crate::recorder::FlightRecorder::new(m.region().clone(), g.end_block);
    let mut ev = [NO_EVENT; crate::manifest::wire::RECORDER_LEN];
    let n = rec.events(&mut ev).unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        (ev[0].kind, ev[0].epoch, ev[0].value),
        (EventKind::Offer, 1, 5)
    );
}
