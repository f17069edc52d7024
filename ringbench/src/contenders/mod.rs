//! The contenders: each is a client/server pair echoing small messages, and some
//! also a sender/receiver pair streaming larger ones one way.
//!
//! [`ALL`] lists them in the order the CLI runs and reports them.

use std::time::Duration;

use crate::harness::{self, Cpus, Echoing};

pub mod arrayqueue;
mod bounded_channel;
pub mod bulk;
pub mod bytestream;
pub mod channel;
pub mod echo;
pub mod eventfd;
pub mod fan_in;
pub mod floor;
pub mod iceoryx2_pubsub;
pub mod mkipc_doorbell;
pub mod mkipc_mpsc;
pub mod mkipc_spsc;
pub mod pipe;
pub mod rtrb_ring;
pub mod std_mpsc;
pub mod uds;

/// Payload bytes of a small round-trip message (written and read by both sides).
pub const SMALL: usize = 32;

/// Payload bytes of a streamed message (written by the sender, read by the receiver).
pub const LARGE: usize = 64;

/// Slots of the request and reply queues of the polling round-trip contenders.
/// A round trip keeps one message in flight; a shallow ring keeps its lines hot in
/// both caches (see [`mkipc_spsc`]).
pub const RTT_CAPACITY: usize = 8;

/// Slots of every bounded queue in the throughput streams.
pub const STREAM_CAPACITY: usize = 256;

/// Messages written or read per reservation/peek by the contenders with batch APIs.
pub const BATCH: usize = 32;

/// A small round-trip message.
pub type Small = [u8; SMALL];

/// A streamed message.
pub type Large = [u8; LARGE];

/// The sequence number that tells a server to stop (round trips never carry it).
pub const STOP: u64 = 0;

/// Fills a message with `seq` in every word.
#[inline]
pub fn fill<const N: usize>(buf: &mut [u8; N], seq: u64) {
    for chunk in buf.chunks_exact_mut(8) {
        chunk.copy_from_slice(&seq.to_le_bytes());
    }
}

/// A message holding `seq` in every word.
#[inline]
pub fn message<const N: usize>(seq: u64) -> [u8; N] {
    let mut buf = [0u8; N];
    fill(&mut buf, seq);
    buf
}

/// Whether `buf` is `len` bytes holding `seq` in every word (reads every word).
#[inline]
fn holds(buf: &[u8], len: usize, seq: u64) -> bool {
    buf.len() == len
        && buf
            .chunks_exact(8)
            .all(|c| u64::from_le_bytes(c.try_into().unwrap()) == seq)
}

/// Reads every word of a small message back, checking each holds `seq`.
#[inline]
pub fn check(buf: &[u8], seq: u64) {
    assert!(
        holds(buf, SMALL, seq),
        "echo of message {seq} came back wrong"
    );
}

/// Reads every word of a streamed message, checking each holds `seq`.
#[inline]
pub fn check_large(buf: &[u8], seq: u64) {
    assert!(
        holds(buf, LARGE, seq),
        "streamed message {seq} arrived wrong or out of order"
    );
}

/// Whether a received small message is the stop message.
#[inline]
pub fn is_stop(buf: &[u8]) -> bool {
    buf.get(..8) == Some(&STOP.to_le_bytes()[..])
}

/// One contender: how to start its round-trip pair, and its throughput stream if
/// it has one.
pub struct Contender {
    /// Name in tables, JSON and plots.
    pub name: &'static str,
    /// Starts the echo pair (pinned to `cpus` when given) and warms it up.
    pub start: fn(Option<Cpus>) -> Box<dyn Echoing>,
    /// Streams `n` [`LARGE`] messages one way; returns the receiver's wall time.
    pub stream: Option<fn(Option<Cpus>, u64) -> Duration>,
}

/// Every contender, the floor first.
pub static ALL: &[Contender] = &[
    Contender {
        name: "floor",
        start: |cpus| harness::start_boxed(floor::pair(), cpus),
        stream: None,
    },
    Contender {
        name: "mkipc-spsc",
        start: |cpus| harness::start_boxed(mkipc_spsc::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(mkipc_spsc::stream_pair(), cpus, n)),
    },
    Contender {
        name: "mkipc-mpsc",
        start: |cpus| harness::start_boxed(mkipc_mpsc::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(mkipc_mpsc::stream_pair(), cpus, n)),
    },
    Contender {
        name: "rtrb",
        start: |cpus| harness::start_boxed(rtrb_ring::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(rtrb_ring::stream_pair(), cpus, n)),
    },
    Contender {
        name: "crossbeam-arrayqueue",
        start: |cpus| harness::start_boxed(arrayqueue::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(arrayqueue::stream_pair(), cpus, n)),
    },
    Contender {
        name: "crossbeam-channel",
        start: |cpus| harness::start_boxed(channel::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(channel::stream_pair(), cpus, n)),
    },
    Contender {
        name: "std-mpsc",
        start: |cpus| harness::start_boxed(std_mpsc::pair(), cpus),
        stream: Some(|cpus, n| harness::stream(std_mpsc::stream_pair(), cpus, n)),
    },
    Contender {
        name: "iceoryx2",
        start: |cpus| harness::start_boxed(iceoryx2_pubsub::pair(), cpus),
        stream: None,
    },
    Contender {
        name: "eventfd",
        start: |cpus| harness::start_boxed(eventfd::pair(), cpus),
        stream: None,
    },
    Contender {
        name: "pipe",
        start: |cpus| harness::start_boxed(pipe::pair(), cpus),
        stream: None,
    },
    Contender {
        name: "uds",
        start: |cpus| harness::start_boxed(uds::pair(), cpus),
        stream: None,
    },
    Contender {
        name: "mkipc-spsc-futex",
        start: |cpus| harness::start_boxed(mkipc_doorbell::pair::<mkipc_doorbell::Futex>(0), cpus),
        stream: Some(|cpus, n| {
            mkipc_doorbell::stream_doorbells::<mkipc_doorbell::Futex>(0, cpus, n).0
        }),
    },
    Contender {
        name: "mkipc-spsc-eventfd",
        start: |cpus| {
            harness::start_boxed(mkipc_doorbell::pair::<mkipc_doorbell::Eventfd>(0), cpus)
        },
        stream: Some(|cpus, n| {
            mkipc_doorbell::stream_doorbells::<mkipc_doorbell::Eventfd>(0, cpus, n).0
        }),
    },
    Contender {
        name: "mkipc-spsc-futex-spin",
        start: |cpus| {
            harness::start_boxed(
                mkipc_doorbell::pair::<mkipc_doorbell::Futex>(DEFAULT_SPIN_BUDGET),
                cpus,
            )
        },
        stream: Some(|cpus, n| {
            mkipc_doorbell::stream_doorbells::<mkipc_doorbell::Futex>(DEFAULT_SPIN_BUDGET, cpus, n)
                .0
        }),
    },
];

/// The spin budget of the `-spin` doorbell contender (mkipc's default).
pub use mkipc::doorbell::DEFAULT_SPIN_BUDGET;

/// The contender called `name`.
pub fn find(name: &str) -> Option<&'static Contender> {
    ALL.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_fill_and_check() {
        let m: Small = message(7);
        check(&m, 7);
        assert!(!is_stop(&m));
        assert!(is_stop(&message::<SMALL>(STOP)));
        let l: Large = message(9);
        check_large(&l, 9);
        assert!(!holds(&l, LARGE, 8));
        assert!(!holds(&l[..LARGE - 8], LARGE, 9));
        let mut torn = l;
        torn[LARGE - 1] ^= 1;
        assert!(!holds(&torn, LARGE, 9));
    }

    #[test]
    fn names_are_unique_and_floor_comes_first() {
        assert_eq!(ALL[0].name, "floor");
        for (i, c) in ALL.iter().enumerate() {
            assert!(ALL[..i].iter().all(|d| d.name != c.name), "{}", c.name);
            assert!(std::ptr::eq(find(c.name).unwrap(), c));
        }
        assert!(find("nope").is_none());
    }

    /// Every pair echoes 1000 checked round trips (unpinned: tests share the
    /// machine), and every stream delivers 20 000 checked messages in order. One
    /// test, so that at most one spinning pair runs at a time.
    #[test]
    fn every_contender_echoes_and_streams_checked_payloads() {
        for c in ALL {
            // Shown when the test fails: the contender whose check panicked.
            eprintln!("contender {}", c.name);
            let mut running = (c.start)(None);
            running.time(1000);
            running.finish();
            if let Some(stream) = c.stream {
                stream(None, 20_000);
            }
        }
    }
}
