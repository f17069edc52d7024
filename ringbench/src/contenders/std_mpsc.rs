//! std `mpsc::sync_channel`: a bounded channel each way, blocking `recv` (it spins
//! briefly, then parks the thread); and one channel streaming.

use std::sync::mpsc::{Receiver as Rx, SyncSender as Tx, sync_channel as bounded};

use super::{
    Large, RTT_CAPACITY, STOP, STREAM_CAPACITY, Small, check, check_large, is_stop, message,
};
use crate::harness::{Client, Receiver, Sender, Server};

/// Sends on the request channel, blocks on the reply channel.
pub struct MpscClient {
    tx: Tx<Small>,
    rx: Rx<Small>,
}

/// Echoes from the request channel to the reply channel.
pub struct MpscServer {
    tx: Tx<Small>,
    rx: Rx<Small>,
}

/// A connected echo pair.
pub fn pair() -> (MpscClient, MpscServer) {
    let (req_tx, req_rx) = bounded(RTT_CAPACITY);
    let (rep_tx, rep_rx) = bounded(RTT_CAPACITY);
    (
        MpscClient {
            tx: req_tx,
            rx: rep_rx,
        },
        MpscServer {
            tx: rep_tx,
            rx: req_rx,
        },
    )
}

impl Client for MpscClient {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        self.tx.send(message(seq)).expect("server alive");
        check(&self.rx.recv().expect("server alive"), seq);
    }

    fn stop(&mut self) {
        self.tx.send(message(STOP)).expect("server alive");
    }
}

impl Server for MpscServer {
    fn serve(&mut self) {
        loop {
            let msg = self.rx.recv().expect("client alive");
            if is_stop(&msg) {
                return;
            }
            self.tx.send(msg).expect("client alive");
        }
    }
}

/// Sends streamed messages.
pub struct MpscSender(Tx<Large>);

/// Receives streamed messages.
pub struct MpscReceiver(Rx<Large>);

/// A connected stream pair.
pub fn stream_pair() -> (MpscSender, MpscReceiver) {
    let (tx, rx) = bounded(STREAM_CAPACITY);
    (MpscSender(tx), MpscReceiver(rx))
}

impl Sender for MpscSender {
    fn send(&mut self, first: u64, n: u64) {
        for seq in first..first + n {
            self.0.send(message(seq)).expect("receiver alive");
        }
    }
}

impl Receiver for MpscReceiver {
    fn receive(&mut self, first: u64, n: u64) {
        for seq in first..first + n {
            check_large(&self.0.recv().expect("sender alive"), seq);
        }
    }
}
