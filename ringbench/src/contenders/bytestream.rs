//! Echo over any blocking byte stream (pipes, Unix sockets): fixed 32-byte
//! messages written with `write_all` and read with `read_exact`.

use std::io::{Read, Write};

use super::{SMALL, STOP, check, is_stop, message};
use crate::harness::{Client, Server};

/// Writes requests to `tx`, blocks reading echoes from `rx`.
pub struct StreamClient<R, W> {
    pub(crate) rx: R,
    pub(crate) tx: W,
}

/// Reads requests from `rx`, writes them back to `tx`.
pub struct StreamServer<R, W> {
    pub(crate) rx: R,
    pub(crate) tx: W,
}

impl<R: Read, W: Write> Client for StreamClient<R, W> {
    #[inline]
    fn round_trip(&mut self, seq: u64) {
        self.tx
            .write_all(&message::<SMALL>(seq))
            .expect("write request");
        let mut buf = [0u8; SMALL];
        self.rx.read_exact(&mut buf).expect("read echo");
        check(&buf, seq);
    }

    fn stop(&mut self) {
        self.tx
            .write_all(&message::<SMALL>(STOP))
            .expect("write stop");
    }
}

impl<R: Read + Send + 'static, W: Write + Send + 'static> Server for StreamServer<R, W> {
    fn serve(&mut self) {
        let mut buf = [0u8; SMALL];
        loop {
            self.rx.read_exact(&mut buf).expect("read request");
            if is_stop(&buf) {
                return;
            }
            self.tx.write_all(&buf).expect("write echo");
        }
    }
}
