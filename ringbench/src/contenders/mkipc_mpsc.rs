//! mkipc MPSC: a request channel and a reply channel (the client and the server
//! each the producer of lane 0 of a [`LANES`]-lane channel, the other lanes idle,
//! so every receive sweeps them), polling; one producer streaming in batches; and
//! a fan-in of [`PRODUCERS`] producers, one lane each, in batches.

use mkipc::Region;
use mkipc::mpsc::{self, Consumer, Geometry, Producer, RecvError};
use mkipc::spsc::ProduceError;

use super::echo::{ByteEnds, EchoClient, EchoServer};
use super::fan_in::{Backoff, FanInReceiver, FanInSender, PRODUCERS, check_fan_in, tag};
use super::{BATCH, LARGE, Large, RTT_CAPACITY, STREAM_CAPACITY, check_large, message};
use crate::harness::{Receiver, Sender};

/// Lanes of every channel here: one per fan-in producer.
const LANES: u32 = PRODUCERS as u32;

/// Round trip: 48-byte slots (one 64-byte line with the slot header), a shallow
/// lane as for `mkipc-spsc`.
const RTT_GEOMETRY: Geometry = Geometry::new(LANES, RTT_CAPACITY as u32, 48);

/// Single-producer stream: lane 0 as deep as the other contenders' queues.
const STREAM_GEOMETRY: Geometry = Geometry::new(LANES, STREAM_CAPACITY as u32, LARGE as u32);

/// Fan-in: the same total capacity as the other contenders' one queue, split
/// over the lanes.
const FAN_IN_GEOMETRY: Geometry =
    Geometry::new(LANES, (STREAM_CAPACITY / PRODUCERS) as u32, LARGE as u32);

fn channel(geometry: Geometry) -> (Region, Consumer) {
    let region = Region::new_heap(geometry.channel_size().expect("valid geometry"));
    let rx = mpsc::channel(&region, 0, geometry).expect("channel");
    (region, rx)
}

fn producer(region: &Region, lane: usize) -> Producer {
    Producer::attach(region.clone(), 0, lane).expect("lane attach")
}

/// One side's ends: lane 0 of one channel out, the whole other channel in.
pub struct MpscEnds {
    tx: Producer,
    rx: Consumer,
}

/// A connected echo pair over two fresh heap regions.
pub fn pair() -> (EchoClient<MpscEnds>, EchoServer<MpscEnds>) {
    let (req, req_rx) = channel(RTT_GEOMETRY);
    let (rep, rep_rx) = channel(RTT_GEOMETRY);
    (
        EchoClient(MpscEnds {
            tx: producer(&req, 0),
            rx: rep_rx,
        }),
        EchoServer(MpscEnds {
            tx: producer(&rep, 0),
            rx: req_rx,
        }),
    )
}

impl ByteEnds for MpscEnds {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        loop {
            match self.tx.push(msg) {
                Ok(()) => return,
                Err(ProduceError::Full) => std::hint::spin_loop(),
                Err(e) => panic!("mkipc-mpsc send: {e}"),
            }
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> usize {
        loop {
            match self.rx.pop(buf) {
                Ok(got) => return got.len,
                Err(RecvError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("mkipc-mpsc receive: {e}"),
            }
        }
    }
}

/// Writes batches of messages in place on its lane.
pub struct MpscSender {
    tx: Producer,
    producer: Option<usize>,
}

/// Reads batches of messages in place, lane by lane.
pub struct MpscReceiver(Consumer);

/// A connected single-producer stream pair over a fresh heap region.
pub fn stream_pair() -> (MpscSender, MpscReceiver) {
    let (region, rx) = channel(STREAM_GEOMETRY);
    let tx = MpscSender {
        tx: producer(&region, 0),
        producer: None,
    };
    (tx, MpscReceiver(rx))
}

/// A fan-in: one sender per lane, one receiver.
pub fn fan_in() -> (Vec<MpscSender>, MpscReceiver) {
    let (region, rx) = channel(FAN_IN_GEOMETRY);
    let senders = (0..PRODUCERS)
        .map(|p| MpscSender {
            tx: producer(&region, p),
            producer: Some(p),
        })
        .collect();
    (senders, MpscReceiver(rx))
}

impl MpscSender {
    /// Sends messages `first..first + n`, each filled with `label(k)`.
    fn send_labelled(&mut self, first: u64, n: u64, label: impl Fn(u64) -> u64) {
        let end = first + n;
        let mut k = first;
        let mut backoff = Backoff::default();
        while k < end {
            let want = (end - k).min(BATCH as u64) as usize;
            let batch = match self.tx.reserve(want) {
                Ok(batch) => batch,
                Err(ProduceError::Full) => {
                    backoff.wait();
                    continue;
                }
                Err(e) => panic!("mkipc-mpsc reserve: {e}"),
            };
            backoff.reset();
            let len = batch.len();
            for i in 0..len {
                let msg: Large = message(label(k + i as u64));
                batch.slot(i).write(&msg).expect("message fits its slot");
            }
            assert_eq!(batch.commit(len), len, "mkipc-mpsc commit");
            k += len as u64;
        }
    }
}

impl Sender for MpscSender {
    fn send(&mut self, first: u64, n: u64) {
        self.send_labelled(first, n, |k| k);
    }
}

impl FanInSender for MpscSender {
    fn send(&mut self, first: u64, n: u64) {
        let p = self.producer.expect("a fan-in sender");
        self.send_labelled(first, n, |k| tag(p, k));
    }
}

impl MpscReceiver {
    /// Receives `n` messages in batches, handing each to `check`.
    #[inline]
    fn receive_with(&mut self, n: u64, mut check: impl FnMut(&[u8])) {
        let mut buf = [0u8; LARGE];
        let mut got = 0;
        while got < n {
            let want = (n - got).min(BATCH as u64) as usize;
            let mut batch = match self.0.peek(want) {
                Ok(batch) => batch,
                Err(RecvError::Empty) => {
                    std::hint::spin_loop();
                    continue;
                }
                Err(e) => panic!("mkipc-mpsc peek: {e}"),
            };
            let len = batch.len();
            for i in 0..len {
                let view = batch.get(i).expect("published message");
                check(view.copy_to(&mut buf).expect("message fits"));
            }
            batch.release(len);
            got += len as u64;
        }
    }
}

impl Receiver for MpscReceiver {
    fn receive(&mut self, first: u64, n: u64) {
        let mut seq = first;
        self.receive_with(n, |msg| {
            check_large(msg, seq);
            seq += 1;
        });
    }
}

impl FanInReceiver for MpscReceiver {
    fn receive(&mut self, n: u64, next: &mut [u64; PRODUCERS]) {
        self.receive_with(n, |msg| {
            check_fan_in(msg, next);
        });
    }
}
