//! loom models of the connect and reset races: both ends connecting at once, and a
//! producer that dies in the middle of traffic, is reclaimed and reconnects under a
//! new epoch. Every interleaving (up to the preemption bound) must deliver each
//! committed message exactly once, in order.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p mkipc --test loom_handshake --release`

#![cfg(loom)]

use loom::thread;
use mkipc::MessageType;
use mkipc::Region;
use mkipc::handshake::{ConnectError, Hello, LinkStatus, Receiver, RecvError, Sender};
use mkipc::lifecycle::{Fence, LocalNode, PeerStatus, Watchdog};
use mkipc::manifest::{
    ChannelSpec, End, GrantSpec, Manifest, ManifestBuilder, NodeInfo, NodeSpec, Rights,
};
use mkipc::spsc::{Geometry, ProduceError};

const TX: u32 = 1;
const RX: u32 = 2;

fn manifest() -> Manifest {
    let nodes = [
        NodeSpec { id: TX, name: "tx" },
        NodeSpec { id: RX, name: "rx" },
    ];
    let channels = [ChannelSpec::spsc("c", Geometry::new(2, 8).compact())];
    let grants = [
        GrantSpec {
            node: TX,
            channel: "c",
            end: End::Producer,
            rights: Rights::SEND,
        },
        GrantSpec {
            node: RX,
            channel: "c",
            end: End::Consumer,
            rights: Rights::RECEIVE | Rights::ADMIN,
        },
    ];
    let b = ManifestBuilder::new(&nodes, &channels, &grants).section_align(128);
    let region = Region::new_heap(b.required_size().unwrap());
    b.write(&region, 1).unwrap()
}

fn hello(features: u64) -> Hello {
    Hello::new(MessageType::bytes(8)).with_features(features)
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    // Building the region is a few thousand atomic steps before any thread starts.
    b.max_branches = 100_000;
    b.check(f);
}

fn send_spin(tx: &mut Sender, v: u8) {
    loop {
        match tx.send(&[v]) {
            Ok(()) => return,
            Err(mkipc::handshake::SendError::Ring(ProduceError::Full)) => thread::yield_now(),
            Err(e) => panic!("send: {e}"),
        }
    }
}

fn recv_spin(rx: &mut Receiver) -> u8 {
    let mut buf = [0u8; 8];
    loop {
        match rx.recv(&mut buf) {
            Ok(1) => return buf[0],
            Err(RecvError::Empty) => thread::yield_now(),
            other => panic!("recv: {other:?}"),
        }
    }
}

struct Joined;
impl Fence for Joined {
    fn fence(&mut self, _: &NodeInfo, _: u64) -> bool {
        // The model joins the producer's thread before fencing: it writes no more.
        true
    }
}

/// Producer offers and sends while the consumer opens and accepts: whatever the
/// order, the consumer accepts exactly the running incarnation, the message sent
/// before the accept arrives, and the producer sees the agreed features.
#[test]
fn both_ends_connect_at_once() {
    model(|| {
        let m = manifest();
        let a = LocalNode::boot(&m, TX).unwrap();
        let b = LocalNode::boot(&m, RX).unwrap();
        // Name look-ups happen before the race; the threads race on the writes.
        let offer = Sender::prepare(&m, &a, "c", hello(0b101)).unwrap();
        let mut rx = Receiver::open(&m, &b, "c", hello(0b110)).unwrap();
        let producer = thread::spawn(move || {
            let mut tx = offer.offer().unwrap();
            send_spin(&mut tx, 7);
            loop {
                match tx.poll().unwrap() {
                    LinkStatus::Connected(agreed) => return agreed.features,
                    LinkStatus::Pending => thread::yield_now(),
                    LinkStatus::PeerClosed => panic!("closed"),
                }
            }
        });
        let agreed = loop {
            match rx.try_accept() {
                Ok(agreed) => break agreed,
                Err(ConnectError::NoOffer) => thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!((agreed.features, agreed.peer_epoch), (0b100, 1));
        assert_eq!(recv_spin(&mut rx), 7);
        assert_eq!(producer.join().unwrap(), 0b100);
    });
}

/// The producer dies after sending two messages while the consumer is receiving;
/// the consumer declares it dead, drains what was committed, resets, and the
/// restarted producer (newer build, more features) reconnects and resumes: every
/// message arrives once, in order.
#[test]
fn reset_in_the_middle_of_traffic() {
    model(|| {
        let m = manifest();
        let a = LocalNode::boot(&m, TX).unwrap();
        let b = LocalNode::boot(&m, RX).unwrap();
        let mut tx = Sender::connect(&m, &a, "c", hello(1)).unwrap();
        let mut rx = Receiver::open(&m, &b, "c", hello(3)).unwrap();
        rx.try_accept().unwrap();
        let producer = thread::spawn(move || {
            send_spin(&mut tx, 1);
            send_spin(&mut tx, 2);
            // Dies here: no close, no more beats.
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        if let Ok(1) = rx.recv(&mut buf) {
            got.push(buf[0]);
        }
        producer.join().unwrap();
        let mut dog = Watchdog::new(&m, TX, 0, 0).unwrap();
        assert_eq!(dog.observe(1).unwrap(), PeerStatus::Dead { epoch: 1 });
        assert_eq!(dog.fence(&mut Joined), PeerStatus::Fenced { epoch: 1 });
        // Drain what the dead incarnation committed (it writes no more).
        let mut buf = [0u8; 8];
        while let Ok(1) = rx.recv(&mut buf) {
            got.push(buf[0]);
        }
        // The producer's kernel restarts and reconnects while the consumer reclaims.
        let a2 = LocalNode::boot(&m, TX).unwrap();
        let m2 = m.clone();
        let producer = thread::spawn(move || {
            let mut tx = loop {
                match Sender::connect(&m2, &a2, "c", hello(0b111)) {
                    Ok(tx) => break tx,
                    Err(ConnectError::ReclaimPending { old_epoch: 1 }) => thread::yield_now(),
                    Err(e) => panic!("connect: {e}"),
                }
            };
            send_spin(&mut tx, 3);
        });
        assert_eq!(rx.reclaim(&dog), Ok(2));
        let agreed = loop {
            match rx.try_accept() {
                Ok(agreed) => break agreed,
                Err(ConnectError::NoOffer | ConnectError::StaleEpoch { .. }) => thread::yield_now(),
                Err(e) => panic!("accept: {e}"),
            }
        };
        assert_eq!((agreed.features, agreed.peer_epoch), (3, 2));
        got.push(recv_spin(&mut rx));
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}
