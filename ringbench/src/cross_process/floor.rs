//! The cross-process floor: one cache line each way in a memfd both processes map,
//! the least any cross-process round trip costs (the same as across threads: the
//! line moves between the same two cores).
//!
//! Handover: the memfd as the server's stdin.

use std::path::Path;
use std::sync::atomic::Ordering;

use mkipc::Region;

use super::serve::{self, ServeError};
use super::shared::{self, FdKind};
use super::{Handover, Watch, XpClient, XpEchoing, XpError, launch, spin_until};
use crate::harness::Cpus;

/// The client's word. Two lines apart from `PONG`, as `CachePadded` places them in
/// the in-process floor (the adjacent-line prefetcher pairs lines).
const PING: usize = 0;
/// The server's word.
const PONG: usize = 128;
/// The shared file: one page.
const LEN: usize = 4096;
/// The value that stops the server (round trips never carry it).
const STOP: u64 = u64::MAX;

/// Writes `PING`, spins until `PONG` echoes it.
struct FloorClient(Region);

impl XpClient for FloorClient {
    #[inline]
    fn round_trip(&mut self, seq: u64, watch: &Watch) -> Result<(), XpError> {
        // Release/Acquire pair with the server's loads and stores of the same words.
        self.0
            .store(PING, seq, Ordering::Release)
            .map_err(XpError::Shared)?;
        spin_until(watch, || {
            let pong = self.0.load(PONG, Ordering::Acquire);
            Ok((pong.map_err(XpError::Shared)? == seq).then_some(()))
        })
    }

    fn stop(&mut self) -> Result<(), XpError> {
        // Release: pairs with the server's Acquire load of `PING`.
        self.0
            .store(PING, STOP, Ordering::Release)
            .map_err(XpError::Shared)
    }
}

/// Starts a floor server process and its client.
pub fn start(exe: &Path, cpus: Option<Cpus>) -> Result<Box<dyn XpEchoing>, XpError> {
    let (file, region) = shared::shared_memory(LEN)?;
    let handover = Handover {
        stdin: Some(file.into()),
        ..Handover::default()
    };
    launch(exe, "floor", cpus, handover, None, FloorClient(region))
}

/// The server: copies `PING` to `PONG` until it reads [`STOP`].
pub fn serve() -> Result<(), ServeError> {
    let file = shared::take_fd(0, FdKind::SharedMemory, "the shared page")?;
    let region = shared::map_handed(&file)?;
    let fault = |e| ServeError::Failed(format!("the shared page: {e}"));
    let mut last = 0;
    loop {
        let v = serve::spin_until(|| {
            // Acquire pairs with the client's Release store of `PING`.
            let v = region.load(PING, Ordering::Acquire).map_err(fault)?;
            Ok((v != last).then_some(v))
        })?;
        if v == STOP {
            return Ok(());
        }
        // Release pairs with the client's Acquire load of `PONG`.
        region.store(PONG, v, Ordering::Release).map_err(fault)?;
        last = v;
    }
}
