//! Pipes and Unix sockets across processes: fixed 32-byte messages written with
//! `write_all` and read with `read_exact`, blocking.
//!
//! Handover: for `pipe`, the request pipe's read end as the server's stdin and the
//! reply pipe's write end as its stdout; for `uds`, the server's end of a
//! `socketpair` as its stdin. A server that dies closes its ends, so the client's
//! blocked read ends with end-of-file.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::serve::ServeError;
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, check_echo, launch};
use crate::contenders::{SMALL, STOP, is_stop, message};
use crate::harness::Cpus;

/// Writes requests to `tx`, blocks reading echoes from `rx`.
struct StreamClient<R, W> {
    rx: R,
    tx: W,
}

impl<R: Read + 'static, W: Write + 'static> XpClient for StreamClient<R, W> {
    #[inline]
    fn round_trip(&mut self, seq: u64, _watch: &Watch) -> Result<(), XpError> {
        self.tx
            .write_all(&message::<SMALL>(seq))
            .map_err(|source| XpError::Io {
                what: "writing the request",
                source,
            })?;
        let mut buf = [0u8; SMALL];
        self.rx.read_exact(&mut buf).map_err(|source| XpError::Io {
            what: "reading the echo",
            source,
        })?;
        check_echo(&buf, seq)
    }

    fn stop(&mut self) -> Result<(), XpError> {
        self.tx
            .write_all(&message::<SMALL>(STOP))
            .map_err(|source| XpError::Io {
                what: "writing the stop message",
                source,
            })
    }
}

fn setup(what: &'static str) -> impl Fn(std::io::Error) -> XpError {
    move |source| XpError::Setup { what, source }
}

/// Starts a pipe server process and its client.
pub fn start_pipe(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let (req_rx, req_tx) = std::io::pipe().map_err(setup("creating the request pipe"))?;
    let (rep_rx, rep_tx) = std::io::pipe().map_err(setup("creating the reply pipe"))?;
    let handover = Handover {
        stdin: Some(OwnedFd::from(req_rx)),
        stdout: Some(OwnedFd::from(rep_tx)),
        fd3: None,
    };
    let client = StreamClient {
        rx: rep_rx,
        tx: req_tx,
    };
    launch(exe, "pipe", cpus, handover, None, client)
}

/// Starts a Unix socket server process and its client.
pub fn start_uds(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let (client, server) = UnixStream::pair().map_err(setup("creating the socket pair"))?;
    let client = StreamClient {
        rx: client
            .try_clone()
            .map_err(setup("duplicating the client socket"))?,
        tx: client,
    };
    let handover = Handover {
        stdin: Some(OwnedFd::from(server)),
        ..Handover::default()
    };
    launch(exe, "uds", cpus, handover, None, client)
}

/// Echoes from `rx` to `tx` until the stop message.
fn echo(mut rx: impl Read, mut tx: impl Write) -> Result<(), ServeError> {
    let mut buf = [0u8; SMALL];
    loop {
        rx.read_exact(&mut buf).map_err(|e| {
            ServeError::Failed(format!(
                "reading a request: {e} (the client closed its end before the stop message)"
            ))
        })?;
        if is_stop(&buf) {
            return Ok(());
        }
        tx.write_all(&buf)
            .map_err(|e| ServeError::Failed(format!("writing an echo: {e}")))?;
    }
}

/// The pipe server: requests on stdin, echoes on stdout.
pub fn serve_pipe() -> Result<(), ServeError> {
    let rx = shared::take_fd(0, FdKind::Pipe, "the request pipe's read end")?;
    let tx = shared::take_fd(1, FdKind::Pipe, "the reply pipe's write end")?;
    echo(rx, tx)
}

/// The Unix socket server: one connected socket on stdin.
pub fn serve_uds() -> Result<(), ServeError> {
    let socket = UnixStream::from(OwnedFd::from(shared::take_fd(
        0,
        FdKind::Socket,
        "the server's end of the socket pair",
    )?));
    let tx = socket
        .try_clone()
        .map_err(|e| ServeError::Failed(format!("cannot duplicate the socket: {e}")))?;
    echo(socket, tx)
}
