//! mkipc SPSC: a request ring and a reply ring in one region, polling; and one
//! ring streaming in batches (`reserve`/`commit`, `peek`/`release`).

use mkipc::Region;
use mkipc::spsc::{self, ConsumeError, Consumer, Geometry, ProduceError, Producer};

use super::{BATCH, LARGE, Large, SMALL, STREAM_CAPACITY, check, check_large, fill, message};
use crate::harness::{Client, Receiver, Sender, Server};

/// 56 payload bytes: with the 8-byte slot tag, one 64-byte line per message.
/// Eight slots: a round trip keeps one message in flight, and a shallow ring keeps
/// its lines hot in both caches (deeper rings measured 20-40% slower per round trip
/// on the development machine; the same holds for a hand-written raw ring).
const GEOMETRY: Geometry = Geometry::new(8, 56);

/// Sends on the request ring, waits on the reply ring.
pub struct SpscClient {
    tx: Producer,
    rx: Consumer,
}

/// Echoes from the request ring to the reply ring.
pub struct SpscServer {
    tx: Producer,
    rx: Consumer,
}

/// A connected pair over a fresh heap region.
pub fn pair() -> (SpscClient, SpscServer) {
    let ring = GEOMETRY.ring_size().expect("valid geometry");
    let region = Region::new_heap(2 * ring);
    let (req_tx, req_rx) = spsc::channel(&region, 0, GEOMETRY).expect("request ring");
    let (rep_tx, rep_rx) = spsc::channel(&region, ring, GEOMETRY).expect("reply ring");
    (
        SpscClient {
            tx: req_tx,
            rx: rep_rx,
        },
        SpscServer {
            tx: rep_tx,
            rx: req_rx,
        },
    )
}

#[inline]
fn send(tx: &mut Producer, msg: &[u8]) {
    loop {
        match tx.push(msg) {
            Ok(()) => return,
            Err(ProduceError::Full) => std::hint::spin_loop(),
            Err(e) => panic!("mkipc send: {e}"),
        }
    }
}

#[inline]
fn recv(rx: &mut Consumer, buf: &mut [u8]) -> usize {
    loop {
        match rx.pop(buf) {
            Ok(n) => return n,
            Err(ConsumeError::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("mkipc receive: {e}"),
        }
    }
}

impl Client for SpscClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let mut msg = [0u8; SMALL];
        fill(&mut msg, seq);
        send(&mut self.tx, &msg);
        let mut buf = [0u8; SMALL];
        let n = recv(&mut self.rx, &mut buf);
        check(&buf[..n], seq);
    }

    fn stop(&mut self) {
        send(&mut self.tx, &[]);
    }
}

impl Server for SpscServer {
    fn serve(&mut self) {
        let mut buf = [0u8; SMALL];
        loop {
            let n = recv(&mut self.rx, &mut buf);
            if n == 0 {
                return;
            }
            send(&mut self.tx, &buf[..n]);
        }
    }
}

/// The stream ring: 64-byte messages in dense 72-byte slots (8-byte tag), about
/// 1.1 cache lines per message.
const STREAM_GEOMETRY: Geometry = Geometry::new(STREAM_CAPACITY as u32, LARGE as u32).dense();

/// Writes batches of messages in place and commits each batch with one stamp pass.
pub struct SpscSender(Producer);

/// Reads batches of messages in place and releases each batch at once.
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
                let msg: Large = message(seq + i as u64);
                batch.slot(i).write(&msg).expect("message fits its slot");
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
        let mut buf = [0u8; LARGE];
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
                check_large(
                    view.copy_to(&mut buf).expect("message fits"),
                    seq + i as u64,
                );
            }
            batch.release(len);
            seq += len as u64;
        }
    }
}
