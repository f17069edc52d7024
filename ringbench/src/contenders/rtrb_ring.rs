//! rtrb: a wait-free SPSC ring of fixed-size messages each way, polling; and one
//! ring streaming in chunks (`write_chunk_uninit`, `read_chunk`).

use rtrb::chunks::ChunkError;
use rtrb::{Consumer, Producer, PushError, RingBuffer};

use super::{
    BATCH, Large, RTT_CAPACITY, STOP, STREAM_CAPACITY, Small, check, check_large, is_stop, message,
};
use crate::harness::{Client, Receiver, Sender, Server};

/// Sends on the request ring, polls the reply ring.
pub struct RtrbClient {
    tx: Producer<Small>,
    rx: Consumer<Small>,
}

/// Echoes from the request ring to the reply ring.
pub struct RtrbServer {
    tx: Producer<Small>,
    rx: Consumer<Small>,
}

/// A connected echo pair.
pub fn pair() -> (RtrbClient, RtrbServer) {
    let (req_tx, req_rx) = RingBuffer::new(RTT_CAPACITY);
    let (rep_tx, rep_rx) = RingBuffer::new(RTT_CAPACITY);
    (
        RtrbClient {
            tx: req_tx,
            rx: rep_rx,
        },
        RtrbServer {
            tx: rep_tx,
            rx: req_rx,
        },
    )
}

#[inline]
fn send<T>(tx: &mut Producer<T>, mut msg: T) {
    loop {
        match tx.push(msg) {
            Ok(()) => return,
            Err(PushError::Full(back)) => {
                msg = back;
                std::hint::spin_loop();
            }
        }
    }
}

#[inline]
fn recv<T>(rx: &mut Consumer<T>) -> T {
    loop {
        match rx.pop() {
            Ok(msg) => return msg,
            Err(_empty) => std::hint::spin_loop(),
        }
    }
}

impl Client for RtrbClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        send(&mut self.tx, message(seq));
        let echo = recv(&mut self.rx);
        check(&echo, seq);
    }

    fn stop(&mut self) {
        send(&mut self.tx, message(STOP));
    }
}

impl Server for RtrbServer {
    fn serve(&mut self) {
        loop {
            let msg = recv(&mut self.rx);
            if is_stop(&msg) {
                return;
            }
            send(&mut self.tx, msg);
        }
    }
}

/// Writes chunks of up to [`BATCH`] messages.
pub struct RtrbSender(Producer<Large>);

/// Reads chunks of up to [`BATCH`] messages.
pub struct RtrbReceiver(Consumer<Large>);

/// A connected stream pair.
pub fn stream_pair() -> (RtrbSender, RtrbReceiver) {
    let (tx, rx) = RingBuffer::new(STREAM_CAPACITY);
    (RtrbSender(tx), RtrbReceiver(rx))
}

/// rtrb hands out exactly the chunk size asked for: ask for `want`, and when fewer
/// slots are free (the error says how many), ask again for those.
fn available(result: Result<usize, ChunkError>) -> usize {
    match result {
        Ok(n) => n,
        Err(ChunkError::TooFewSlots(free)) => free,
    }
}

impl Sender for RtrbSender {
    fn send(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let want = (end - seq).min(BATCH as u64) as usize;
            let len = available(self.0.write_chunk_uninit(want).map(|c| c.len()));
            if len == 0 {
                std::hint::spin_loop();
                continue;
            }
            let chunk = self.0.write_chunk_uninit(len).expect("slots just counted");
            let written = chunk.fill_from_iter((seq..seq + len as u64).map(message));
            seq += written as u64;
        }
    }
}

impl Receiver for RtrbReceiver {
    fn receive(&mut self, first: u64, n: u64) {
        let end = first + n;
        let mut seq = first;
        while seq < end {
            let want = (end - seq).min(BATCH as u64) as usize;
            let len = available(self.0.read_chunk(want).map(|c| c.len()));
            if len == 0 {
                std::hint::spin_loop();
                continue;
            }
            let chunk = self.0.read_chunk(len).expect("messages just counted");
            let (a, b) = chunk.as_slices();
            for msg in a.iter().chain(b) {
                check_large(msg, seq);
                seq += 1;
            }
            chunk.commit_all();
        }
    }
}
