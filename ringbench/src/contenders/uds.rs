//! Unix domain sockets: one connected stream socket pair, blocking reads and
//! writes of 32 bytes.

use std::os::unix::net::UnixStream;

use super::bytestream::{StreamClient, StreamServer};

/// One end of the socket pair (read and write through the same socket).
pub type UdsClient = StreamClient<UnixStream, UnixStream>;
/// The other end.
pub type UdsServer = StreamServer<UnixStream, UnixStream>;

/// A connected echo pair.
pub fn pair() -> (UdsClient, UdsServer) {
    let (client, server) = UnixStream::pair().expect("socket pair");
    (
        StreamClient {
            rx: client.try_clone().expect("duplicate client socket"),
            tx: client,
        },
        StreamServer {
            rx: server.try_clone().expect("duplicate server socket"),
            tx: server,
        },
    )
}
