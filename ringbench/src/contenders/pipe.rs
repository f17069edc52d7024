//! Pipes: one each way, blocking reads and writes of 32 bytes.

use std::io::{PipeReader, PipeWriter, pipe};

use super::bytestream::{StreamClient, StreamServer};

/// Writes to the request pipe, reads the reply pipe.
pub type PipeClient = StreamClient<PipeReader, PipeWriter>;
/// Reads the request pipe, writes the reply pipe.
pub type PipeServer = StreamServer<PipeReader, PipeWriter>;

/// A connected echo pair.
pub fn pair() -> (PipeClient, PipeServer) {
    let (req_rx, req_tx) = pipe().expect("request pipe");
    let (rep_rx, rep_tx) = pipe().expect("reply pipe");
    (
        StreamClient {
            rx: rep_rx,
            tx: req_tx,
        },
        StreamServer {
            rx: req_rx,
            tx: rep_tx,
        },
    )
}
