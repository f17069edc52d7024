//! The echo and stream pair shared by the two bounded-channel contenders
//! (crossbeam-channel and std's `sync_channel` have the same shape of API).
//!
//! `bounded_channel_contender!()` expands in a module that has imported the
//! channel's `Tx`, `Rx` and `bounded`.

macro_rules! bounded_channel_contender {
    () => {
        /// Sends on the request channel, blocks on the reply channel.
        pub struct EchoClient {
            tx: Tx<Small>,
            rx: Rx<Small>,
        }

        /// Echoes from the request channel to the reply channel.
        pub struct EchoServer {
            tx: Tx<Small>,
            rx: Rx<Small>,
        }

        /// A connected echo pair.
        pub fn pair() -> (EchoClient, EchoServer) {
            let (req_tx, req_rx) = bounded(RTT_CAPACITY);
            let (rep_tx, rep_rx) = bounded(RTT_CAPACITY);
            (
                EchoClient {
                    tx: req_tx,
                    rx: rep_rx,
                },
                EchoServer {
                    tx: rep_tx,
                    rx: req_rx,
                },
            )
        }

        impl Client for EchoClient {
            #[inline]
            fn round_trip(&mut self, seq: u64) {
                self.tx.send(message(seq)).expect("server alive");
                check(&self.rx.recv().expect("server alive"), seq);
            }

            fn stop(&mut self) {
                self.tx.send(message(STOP)).expect("server alive");
            }
        }

        impl Server for EchoServer {
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
        pub struct StreamSender(Tx<Large>);

        /// Receives streamed messages.
        pub struct StreamReceiver(Rx<Large>);

        /// A connected stream pair.
        pub fn stream_pair() -> (StreamSender, StreamReceiver) {
            let (tx, rx) = bounded(STREAM_CAPACITY);
            (StreamSender(tx), StreamReceiver(rx))
        }

        impl Sender for StreamSender {
            fn send(&mut self, first: u64, n: u64) {
                for seq in first..first + n {
                    self.0.send(message(seq)).expect("receiver alive");
                }
            }
        }

        impl Receiver for StreamReceiver {
            fn receive(&mut self, first: u64, n: u64) {
                for seq in first..first + n {
                    check_large(&self.0.recv().expect("sender alive"), seq);
                }
            }
        }
    };
}

pub(crate) use bounded_channel_contender;
