//! mkipc SPSC: a request ring and a reply ring in one region, polling; and one
//! ring streaming in batches (`reserve`/`commit`, `peek`/`release`).

use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry, ProduceError, Producer};

use super::echo::{ByteEnds, EchoClient, EchoServer};
use super::{BATCH, LARGE, STREAM_CAPACITY};
use crate::harness::{Receiver, Sender};

/// 56 payload bytes: with the 8-byte slot tag, one 64-byte line per message.
/// Eight slots: a round trip keeps one message in flight, and a shallow ring keeps
/// its lines hot in both caches (deeper rings measured 20-40% slower per round trip
/// on the development machine; the same holds for a hand-written raw ring).
const GEOMETRY: Geometry = Geometry::new(8, 56);

/// One side's ends: it sends on one ring and polls the other.
pub struct SpscEnds {
    tx: Producer,
    rx: Consumer,
}

/// A connected echo pair over a fresh heap region.
pub fn pair() -> (EchoClient<SpscEnds>, EchoServer<SpscEnds>) {
    let ring = GEOMETRY.ring_size().expect("valid geometry");
    let region = Region::new_heap(2 * ring);
    let (req_tx, req_rx) = spsc::channel(&region, 0, GEOMETRY).expect("request ring");
    let (rep_tx, rep_rx) = spsc::channel(&region, ring, GEOMETRY).expect("reply ring");
    (
        EchoClient(SpscEnds {
            tx: req_tx,
            rx: rep_rx,
        }),
        EchoServer(SpscEnds {
            tx: rep_tx,
            rx: req_rx,
        }),
    )
}

impl ByteEnds for SpscEnds {
    #[inline]
    fn send(&mut self, msg: &[u8]) {
        loop {
            match self.tx.push(msg) {
                Ok(()) => return,
                Err(ProduceError::Full) => std::hint::spin_loop(),
                Err(e) => panic!("mkipc send: {e}"),
            }
        }
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> usize {
        loop {
            match self.rx.pop(buf) {
                Ok(n) => return n,
                Err(ConsumeError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("mkipc receive: {e}"),
            }
        }
    }
}

/// The stream ring: 64-byte messages in dense 72-byte slots (8-byte tag), about
/// 1.1 cache lines per message.
const STREAM_GEOMETRY: Geometry = Geometry::new(STREAM_CAPACITY as u32, LARGE as u32).dense();

/// Builds batches of messages word by word in their slots (as rtrb's chunks are
/// filled in place) and commits each batch with one stamp pass.
pub struct SpscSender(Producer);

/// Checks batches of messages word by word in their slots, without copying, and
/// releases each batch at once.
pub struct SpscReceiver(Consumer);

/// A connected stream pair over a fresh heap region.
pub fn stream_pair() -> (SpscSender, SpscReceiver) {
    let region = Region::new_heap(STREAM_GEOMETRY.ring_size().expect("valid geometry"));
    let (tx, rx) = spsc::channel(&region, 0, STREAM_GEOMETRY).expect("stream ring");
    (SpscSender(tx), SpscReceiver(rx))
}

impl Sender for SpscSender {
    fn send(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let want = (end - seq).min(BATCH as u64) as usize;
            let batch = match self.0.reserve(want) {
                Ok(batch) => batch,
                Err(ProduceError::Full) => {
                    std::hint::spin_loop();
                    continue;
                }
                Err(e) => panic!("mkipc reserve: {e}"),
            };
            let len = batch.len();
            for i in 0..len {
                let value = seq + i as u64;
                batch
                    .slot(i)
                    .fill_words(LARGE / 8, |_| value)
                    .expect("message fits its slot");
            }
            assert_eq!(batch.commit(len), len, "mkipc commit");
            seq += len as u64;
        }
    }
}

impl Receiver for SpscReceiver {
    fn receive(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let want = (end - seq).min(BATCH as u64) as usize;
            let mut batch = match self.0.peek(want) {
                Ok(batch) => batch,
                Err(ConsumeError::Empty) => {
                    std::hint::spin_loop();
                    continue;
                }
                Err(e) => panic!("mkipc peek: {e}"),
            };
            let len = batch.len();
            for i in 0..len {
                let view = batch.get(i).expect("published message");
                let value = seq + i as u64;
                let whole = view.len() == LARGE
                    && view
                        .fold_words(true, |ok, word| ok & (word == value))
                        .expect("message in its slot");
                assert!(
                    whole,
                    "streamed message {value} arrived wrong or out of order"
                );
            }
            batch.release(len);
            seq += len as u64;
        }
    }
}
