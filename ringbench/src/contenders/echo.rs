//! The echo shape the mkipc round-trip contenders share: the client sends a
//! filled [`SMALL`]-byte request and checks the echo; the server echoes until an
//! empty message stops it. A contender supplies only how its ends move bytes.

use super::{SMALL, check, fill};
use crate::harness::{Client, Server};

/// One side's request and reply ends, moving byte messages (spinning or sleeping
/// until done; a protocol error panics, which fails the run).
pub trait ByteEnds: Send + 'static {
    /// Sends `msg` on this side's outgoing end.
    fn send(&mut self, msg: &[u8]);
    /// Receives the next message of this side's incoming end into `buf`.
    fn recv(&mut self, buf: &mut [u8]) -> usize;
}

/// Sends requests, waits for their echoes.
pub struct EchoClient<E>(pub E);

/// Echoes requests until stopped.
pub struct EchoServer<E>(pub E);

impl<E: ByteEnds> Client for EchoClient<E> {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        let mut msg = [0u8; SMALL];
        fill(&mut msg, seq);
        self.0.send(&msg);
        let mut buf = [0u8; SMALL];
        let n = self.0.recv(&mut buf);
        check(&buf[..n], seq);
    }

    fn stop(&mut self) {
        self.0.send(&[]);
    }
}

impl<E: ByteEnds> Server for EchoServer<E> {
    fn serve(&mut self) {
        let mut buf = [0u8; SMALL];
        loop {
            let n = self.0.recv(&mut buf);
            if n == 0 {
                return;
            }
            self.0.send(&buf[..n]);
        }
    }
}
