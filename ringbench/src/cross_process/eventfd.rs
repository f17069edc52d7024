//! eventfd across processes: one eventfd each way as the doorbell (blocking 8-byte
//! `read`), the 32-byte payload in a memfd both processes map.
//!
//! Handover: the memfd as the server's stdin, the request eventfd as its stdout,
//! the reply eventfd as its fd 3. The watchdog rings the reply eventfd when the
//! server ends, so that a client blocked on it wakes and sees the server gone.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::Ordering;

use mkipc::Region;

use super::serve::ServeError;
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, check_echo, launch};
use crate::contenders::{SMALL, STOP, Small, is_stop, message};
use crate::harness::Cpus;

/// The request payload's offset in the memfd.
const REQUEST: usize = 0;
/// The reply payload's offset, two lines away from the request's.
const REPLY: usize = 128;
/// The shared file: one page.
const LEN: usize = 4096;

/// Writes `msg` at `offset`. Relaxed: ordered before the reader's loads by the
/// eventfd write/read pair that follows (the kernel serialises both under the
/// eventfd's lock, a release/acquire pair outside the Rust model); every word is
/// checked on arrival, so a stale load would fail loudly.
fn put(region: &Region, offset: usize, msg: &Small) -> Result<(), mkipc::AccessError> {
    for (i, bytes) in msg.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(bytes.try_into().expect("8-byte chunk"));
        region.store(offset + 8 * i, word, Ordering::Relaxed)?;
    }
    Ok(())
}

/// Reads a message at `offset`. Relaxed: pairs with `put` through the eventfd.
fn get(region: &Region, offset: usize) -> Result<Small, mkipc::AccessError> {
    let mut msg = [0u8; SMALL];
    for (i, bytes) in msg.chunks_exact_mut(8).enumerate() {
        bytes.copy_from_slice(
            &region
                .load(offset + 8 * i, Ordering::Relaxed)?
                .to_le_bytes(),
        );
    }
    Ok(msg)
}

/// Posts requests, blocks on the reply eventfd.
struct EventFdClient {
    region: Region,
    request_bell: File,
    reply_bell: File,
}

impl EventFdClient {
    fn post(&mut self, msg: &Small) -> Result<(), XpError> {
        put(&self.region, REQUEST, msg).map_err(XpError::Shared)?;
        shared::ring(&mut self.request_bell).map_err(|source| XpError::Io {
            what: "ringing the request eventfd",
            source,
        })
    }
}

impl XpClient for EventFdClient {
    #[inline]
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError> {
        self.post(&message(seq))?;
        shared::wait(&mut self.reply_bell).map_err(|source| XpError::Io {
            what: "waiting on the reply eventfd",
            source,
        })?;
        // The watchdog's ring after the server ended looks like a reply.
        if !watch.server_running() {
            return Err(XpError::ServerGone);
        }
        check_echo(&get(&self.region, REPLY).map_err(XpError::Shared)?, seq)
    }

    fn stop(&mut self) -> Result<(), XpError> {
        self.post(&message(STOP))
    }
}

/// Starts an eventfd server process and its client.
pub fn start(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let (file, region) = shared::shared_memory(LEN)?;
    let request_bell = shared::eventfd()?;
    let reply_bell = shared::eventfd()?;
    let handover = Handover {
        stdin: Some(file.into()),
        stdout: Some(shared::dup(
            &request_bell,
            "duplicating the request eventfd",
        )?),
        fd3: Some(shared::dup(&reply_bell, "duplicating the reply eventfd")?),
    };
    let wake = File::from(shared::dup(&reply_bell, "duplicating the reply eventfd")?);
    let client = EventFdClient {
        region,
        request_bell,
        reply_bell,
    };
    launch(exe, "eventfd", cpus, handover, Some(wake), client)
}

/// The server: waits on the request eventfd, echoes the payload, rings the reply
/// eventfd; exits on the stop message.
pub fn serve() -> Result<(), ServeError> {
    let file = shared::take_fd(0, FdKind::SharedMemory, "the shared payload page")?;
    let mut request_bell = shared::take_fd(1, FdKind::EventFd, "the request eventfd")?;
    let mut reply_bell = shared::take_fd(3, FdKind::EventFd, "the reply eventfd")?;
    let region = shared::map_handed(&file)?;
    let fault = |e| ServeError::Failed(format!("the shared payload page: {e}"));
    loop {
        // Blocks for as long as the parent lives: it kills a server that stops
        // answering, and the death signal ends this one if the parent dies.
        shared::wait(&mut request_bell)
            .map_err(|e| ServeError::Failed(format!("waiting on the request eventfd: {e}")))?;
        let msg = get(&region, REQUEST).map_err(fault)?;
        if is_stop(&msg) {
            return Ok(());
        }
        put(&region, REPLY, &msg).map_err(fault)?;
        shared::ring(&mut reply_bell)
            .map_err(|e| ServeError::Failed(format!("ringing the reply eventfd: {e}")))?;
    }
}
