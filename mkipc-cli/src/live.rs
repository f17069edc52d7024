//! Liveness of a CLI process: its node's heartbeat (beaten from a thread), its
//! lock file, and the fence a peer uses before reclaiming its channel end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mkipc::lifecycle::{Fence, LocalNode};
use mkipc::manifest::{Manifest, NodeInfo};
use mkipc_sys::linux::{LivenessLock, PeerLiveness};

use crate::failure::{CliResult, Failure};

/// How often a live process beats.
pub const HEARTBEAT: Duration = Duration::from_millis(20);

/// Milliseconds since the process started: the clock of watchdogs and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct Millis(Instant);

impl Millis {
    /// A clock starting now.
    pub fn start() -> Millis {
        Millis(Instant::now())
    }

    /// Milliseconds since the start.
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// This process as a node of the region: booted (new epoch), beating, holding its
/// lock file, until [`Alive::stop`] (or death).
#[derive(Debug)]
pub struct Alive {
    node: LocalNode,
    stop: Arc<AtomicBool>,
    beater: Option<JoinHandle<()>>,
    _lock: LivenessLock,
}

impl Alive {
    /// Takes the lock file `lock` (refused while another live process holds it),
    /// boots node `node` and starts beating.
    pub fn boot(manifest: &Manifest, node: &NodeInfo, lock: &Path, what: &str) -> CliResult<Alive> {
        let lock_held = LivenessLock::hold(lock).map_err(|e| {
            Failure::other(format!(
                "cannot become the {what}: {e}; another process is probably the {what} already \
                 (it holds {}); stop it first",
                lock.display()
            ))
        })?;
        let local = LocalNode::boot(manifest, node.id).map_err(|e| {
            Failure::corrupt(format!(
                "cannot start node {:?}: {e}; recreate the region",
                node.name.as_str()
            ))
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut beating = local.clone();
        let flag = stop.clone();
        let beater = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if beating.beat().is_err() {
                        return;
                    }
                    std::thread::sleep(HEARTBEAT);
                }
            })
            .map_err(|e| Failure::other(format!("cannot start the heartbeat thread: {e}")))?;
        Ok(Alive {
            node: local,
            stop,
            beater: Some(beater),
            _lock: lock_held,
        })
    }

    /// The booted node.
    pub fn node(&self) -> &LocalNode {
        &self.node
    }

    /// This incarnation's epoch.
    pub fn epoch(&self) -> u64 {
        self.node.epoch()
    }

    /// Stops beating and declares the node stopped (an orderly exit, not a death).
    pub fn stop(mut self) {
        self.halt_beating();
        let _ = self.node.clone().stop();
    }

    fn halt_beating(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(b) = self.beater.take() {
            let _ = b.join();
        }
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.halt_beating();
    }
}

/// Fences a peer process: it is fenced once it no longer holds its lock file (the
/// kernel drops the lock when the process dies, so it can no longer write).
#[derive(Debug)]
pub struct LockFence {
    path: PathBuf,
}

impl LockFence {
    /// A fence over the lock file at `path`.
    pub fn new(path: PathBuf) -> LockFence {
        LockFence { path }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a live process holds the lock now.
    pub fn held(&self) -> bool {
        match PeerLiveness::lock_file(&self.path) {
            Ok(watch) => watch.is_alive().unwrap_or(true),
            // No lock file: no process ever held it. One we cannot open counts as
            // held: never fence what we cannot check.
            Err(_) => self.path.exists(),
        }
    }
}

impl Fence for LockFence {
    fn fence(&mut self, _node: &NodeInfo, _epoch: u64) -> bool {
        !self.held()
    }
}
