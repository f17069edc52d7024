//! The handshake state machine against a hostile peer: the input scripts both ends
//! (connect, send, poll, accept, receive, reclaim, restart, close) and, between the
//! steps, arbitrary writes into every word either peer writes (node liveness words,
//! connect words, recorder, ring control and slots). Nothing may panic or hang, a
//! received message fits its buffer, and an agreement never holds features the
//! local end does not support.

#![no_main]

use core::sync::atomic::Ordering;

use libfuzzer_sys::fuzz_target;
use mkipc::handshake::{Hello, LinkStatus, Receiver, Sender};
use mkipc::lifecycle::{Fence, LocalNode, Watchdog};
use mkipc::manifest::{
    ChannelSpec, End, GrantSpec, Manifest, ManifestBuilder, NodeInfo, NodeSpec, Rights,
};
use mkipc::spsc::Geometry;
use mkipc::{MessageType, Region};

const SLOT: usize = 16;
const TX_FEATURES: u64 = 0b0111;
const RX_FEATURES: u64 = 0b1101;

fn manifest() -> Manifest {
    let nodes = [
        NodeSpec { id: 1, name: "tx" },
        NodeSpec { id: 2, name: "rx" },
    ];
    let channels = [ChannelSpec::spsc(
        "c",
        Geometry::new(4, SLOT as u32).compact(),
    )];
    let grants = [
        GrantSpec {
            node: 1,
            channel: "c",
            end: End::Producer,
            rights: Rights::SEND,
        },
        GrantSpec {
            node: 2,
            channel: "c",
            end: End::Consumer,
            rights: Rights::RECEIVE | Rights::ADMIN,
        },
    ];
    let b = ManifestBuilder::new(&nodes, &channels, &grants).section_align(128);
    let region = Region::new_heap(b.required_size().expect("layout"));
    b.write(&region, 1).expect("manifest")
}

struct Always;
impl Fence for Always {
    fn fence(&mut self, _: &NodeInfo, _: u64) -> bool {
        true
    }
}

fn hello(features: u64) -> Hello {
    Hello::new(MessageType::bytes(SLOT as u32)).with_features(features)
}

fn check(status: LinkStatus) {
    if let LinkStatus::Connected(a) = status {
        assert_eq!(
            a.features & !TX_FEATURES,
            0,
            "producer agreed to unknown features"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let m = manifest();
    let region = m.region().clone();
    // Everything past the manifest tables is written by one node or the other.
    let writable = m.node_section(0).map(|s| s.start).unwrap_or(0)..region.len();
    let Ok(mut a) = LocalNode::boot(&m, 1) else {
        return;
    };
    let Ok(b) = LocalNode::boot(&m, 2) else {
        return;
    };
    let mut tx: Option<Sender> = None;
    let mut rx = Receiver::open(&m, &b, "c", hello(RX_FEATURES)).ok();
    let mut dog = Watchdog::new(&m, 1, 3, 0).ok();
    let mut now = 0u64;
    let mut buf = [0u8; SLOT];
    for op in data.chunks(9) {
        let (&kind, arg) = op.split_first().unwrap_or((&0, &[]));
        now += 1;
        match kind % 10 {
            0 => tx = Sender::connect(&m, &a, "c", hello(TX_FEATURES)).ok(),
            1 => {
                if let Some(tx) = tx.as_mut() {
                    let _ = tx.send(&arg[..arg.len().min(SLOT)]);
                }
            }
            2 => {
                if let Some(tx) = tx.as_mut()
                    && let Ok(s) = tx.poll()
                {
                    check(s);
                }
            }
            3 => {
                if let Some(rx) = rx.as_mut()
                    && let Ok(a) = rx.try_accept()
                {
                    assert_eq!(a.features & !RX_FEATURES, 0);
                }
            }
            4 => {
                if let Some(rx) = rx.as_mut()
                    && let Ok(n) = rx.recv(&mut buf)
                {
                    assert!(n <= SLOT);
                }
            }
            5 if arg.len() == 8 => {
                // Hostile write: word index from the first byte pair, value from all.
                let span = writable.len() / 8;
                let word = usize::from(u16::from_le_bytes([arg[0], arg[1]])) % span.max(1);
                let value = u64::from_le_bytes(arg.try_into().unwrap_or_default());
                let _ = region.store(writable.start + word * 8, value, Ordering::Relaxed);
            }
            6 => {
                if let Some(dog) = dog.as_mut() {
                    let _ = dog.observe(now);
                    dog.fence(&mut Always);
                    if let Some(rx) = rx.as_mut() {
                        let _ = rx.reclaim(dog);
                    }
                    if let Some(tx) = tx.as_mut() {
                        let _ = tx.reclaim(dog);
                    }
                }
            }
            7 => {
                // The producer's kernel restarts.
                tx = None;
                if let Ok(n) = LocalNode::boot(&m, 1) {
                    a = n;
                }
            }
            8 => {
                if arg.first().is_some_and(|b| b & 1 == 1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.close();
                    }
                } else if let Some(rx) = rx.as_mut() {
                    let _ = rx.close();
                }
            }
            _ => {
                let _ = a.beat();
                rx = Receiver::open(&m, &b, "c", hello(RX_FEATURES)).ok();
            }
        }
    }
});
