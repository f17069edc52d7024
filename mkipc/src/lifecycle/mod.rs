//! Node liveness: each node's state word, heartbeat and epoch (in its own section),
//! and the observer's view of a peer: alive, dead after a bounded delay without a
//! heartbeat change (measured in the observer's own time), fenced, or restarted
//! under a new epoch.
//!
//! ```text
//!  node writes (own section)            observer decides (private, its own clock)
//!  boot:  epoch += 1, state = Alive      Unknown --beat seen--> Alive
//!  beat:  heartbeat += 1                 Alive --no change for `timeout`--> Dead
//!  stop:  state = Stopped                Dead --Fence hook says yes--> Fenced
//!                                        Dead/Fenced/Alive --epoch grew--> Restarted
//!                                        Restarted --next observation--> Alive
//! ```
//!
//! A dead node cannot write, so death is never stored in shared memory: each
//! observer decides it for itself. Reclaiming a dead node's channel ends needs the
//! platform to fence it first ([`Fence`]), unless its epoch already moved on (the
//! old incarnation is gone).

use core::fmt;
use core::mem::offset_of;

use crate::manifest::wire::NodeControl;
use crate::manifest::{Manifest, ManifestError, NodeInfo};
use crate::shm::{AccessError, Region};
use crate::sync::Ordering;

/// The caller's monotonic time (the core has no clock). Any unit; timeouts use it.
pub trait Clock {
    /// The current time.
    fn now(&self) -> u64;
}

impl<F: Fn() -> u64> Clock for F {
    fn now(&self) -> u64 {
        self()
    }
}

/// The platform's way to stop a node from writing shared memory (unmap its
/// sections, hold its CPUs in reset, kill the process).
pub trait Fence {
    /// Fences `node`'s incarnation `epoch`; true once it can no longer write.
    fn fence(&mut self, node: &NodeInfo, epoch: u64) -> bool;
}

/// Upper half of a node state word: `"NODE"`.
const NODE_TAG: u64 = (u32::from_le_bytes(*b"NODE") as u64) << 32;

/// What a node says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Never booted (the word is zero).
    Absent,
    /// Booted and running.
    Alive,
    /// Shut down in order.
    Stopped,
}

impl NodeState {
    const fn to_wire(self) -> u64 {
        match self {
            NodeState::Absent => 0,
            NodeState::Alive => NODE_TAG | 1,
            NodeState::Stopped => NODE_TAG | 2,
        }
    }

    const fn from_wire(w: u64) -> Option<NodeState> {
        match w {
            0 => Some(NodeState::Absent),
            w if w == NODE_TAG | 1 => Some(NodeState::Alive),
            w if w == NODE_TAG | 2 => Some(NodeState::Stopped),
            _ => None,
        }
    }
}

/// Why a liveness operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleError {
    /// The manifest lookup failed.
    Manifest(ManifestError),
    /// A region access failed.
    Access(AccessError),
    /// The node's state word holds no valid state.
    BadState {
        /// The word found.
        found: u64,
    },
    /// The node's epoch went backwards (or its own old epoch is exhausted).
    BadEpoch {
        /// The epoch found.
        found: u64,
        /// The lowest acceptable one.
        expected: u64,
    },
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LifecycleError::Manifest(e) => write!(f, "{e}"),
            LifecycleError::Access(e) => write!(f, "node section access failed: {e}"),
            LifecycleError::BadState { found } => {
                write!(f, "node state word holds garbage {found:#018x}")
            }
            LifecycleError::BadEpoch { found, expected } => write!(
                f,
                "node epoch {found} is invalid (expected at least {expected}); \
                 its section is corrupt or was reset"
            ),
        }
    }
}

impl core::error::Error for LifecycleError {}

impl From<AccessError> for LifecycleError {
    fn from(e: AccessError) -> Self {
        LifecycleError::Access(e)
    }
}

impl From<ManifestError> for LifecycleError {
    fn from(e: ManifestError) -> Self {
        LifecycleError::Manifest(e)
    }
}

/// Offsets of a node's liveness words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeWords {
    pub state: usize,
    pub heartbeat: usize,
    pub epoch: usize,
}

impl NodeWords {
    pub(crate) const fn of(node: &NodeInfo) -> NodeWords {
        NodeWords {
            state: node.section + offset_of!(NodeControl, state),
            heartbeat: node.section + offset_of!(NodeControl, heartbeat),
            epoch: node.section + offset_of!(NodeControl, epoch),
        }
    }

    /// The node's current epoch (read once).
    pub(crate) fn epoch(&self, region: &Region) -> Result<u64, AccessError> {
        // Acquire: pairs with the Release store of the epoch in `LocalNode::boot`.
        region.load(self.epoch, Ordering::Acquire)
    }
}

/// This node: the one that writes its own liveness words.
#[derive(Debug, Clone)]
pub struct LocalNode {
    region: Region,
    info: NodeInfo,
    words: NodeWords,
    epoch: u64,
    heartbeat: u64,
}

impl LocalNode {
    /// Boots node `id`: starts a new epoch (one above the last incarnation's) and
    /// declares it alive.
    pub fn boot(manifest: &Manifest, id: u32) -> Result<LocalNode, LifecycleError> {
        let info = manifest.find_node(id)?;
        let region = manifest.region().clone();
        let words = NodeWords::of(&info);
        // Relaxed: our own words, last written by our previous incarnation.
        let old = region.load(words.epoch, Ordering::Relaxed)?;
        let epoch = old.checked_add(1).ok_or(LifecycleError::BadEpoch {
            found: old,
            expected: 0,
        })?;
        let heartbeat = region.load(words.heartbeat, Ordering::Relaxed)?;
        // Release: pairs with the Acquire epoch load in `NodeWords::epoch`: a peer
        // that sees the new epoch sees everything this node wrote before it.
        region.store(words.epoch, epoch, Ordering::Release)?;
        region.store(words.state, NodeState::Alive.to_wire(), Ordering::Release)?;
        Ok(LocalNode {
            region,
            info,
            words,
            epoch,
            heartbeat,
        })
    }

    /// The node's manifest entry.
    pub fn info(&self) -> &NodeInfo {
        &self.info
    }

    /// This incarnation's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Proves liveness: observers declare the node dead when this stops.
    pub fn beat(&mut self) -> Result<(), AccessError> {
        self.heartbeat = self.heartbeat.wrapping_add(1);
        // Relaxed: observers only look for a change; nothing is ordered by it.
        self.region
            .store(self.words.heartbeat, self.heartbeat, Ordering::Relaxed)
    }

    /// Shuts down in order (observers see `Stopped`, not a death).
    pub fn stop(self) -> Result<(), AccessError> {
        self.region.store(
            self.words.state,
            NodeState::Stopped.to_wire(),
            Ordering::Release,
        )
    }
}

/// What an observer concludes about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// The peer has not booted yet.
    NotBooted,
    /// Beating (or within the timeout since its last beat).
    Alive {
        /// Its epoch.
        epoch: u64,
    },
    /// Shut down in order.
    Stopped {
        /// Its last epoch.
        epoch: u64,
    },
    /// No heartbeat change for the timeout: declared dead (not yet fenced).
    Dead {
        /// The dead incarnation.
        epoch: u64,
    },
    /// Dead and fenced by the platform: its channel ends may be reclaimed.
    Fenced {
        /// The dead incarnation.
        epoch: u64,
    },
    /// Its epoch grew: the incarnation `old` is gone, `new` is running.
    Restarted {
        /// The previous incarnation (reclaimable).
        old: u64,
        /// The running one.
        new: u64,
    },
}

/// An observer of one peer node: declares it dead after `timeout` (in the
/// observer's clock) without a heartbeat change.
#[derive(Debug, Clone)]
pub struct Watchdog {
    region: Region,
    node: NodeInfo,
    words: NodeWords,
    timeout: u64,
    epoch: u64,
    heartbeat: u64,
    last_change: u64,
    status: PeerStatus,
    /// Latest incarnation known to be gone (dead and fenced, or superseded).
    gone: u64,
}

impl Watchdog {
    /// Watches node `id`, starting at time `now`.
    pub fn new(
        manifest: &Manifest,
        id: u32,
        timeout: u64,
        now: u64,
    ) -> Result<Watchdog, LifecycleError> {
        let node = manifest.find_node(id)?;
        Ok(Watchdog {
            region: manifest.region().clone(),
            words: NodeWords::of(&node),
            node,
            timeout,
            epoch: 0,
            heartbeat: 0,
            last_change: now,
            status: PeerStatus::NotBooted,
            gone: 0,
        })
    }

    /// The watched node.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// The last conclusion.
    pub fn status(&self) -> PeerStatus {
        self.status
    }

    /// The latest incarnation known to be gone (0 if none): its channel ends may
    /// be reclaimed.
    pub fn gone_epoch(&self) -> u64 {
        self.gone
    }

    /// Whether incarnation `epoch` is gone: declared dead and fenced, or
    /// superseded by a newer epoch (a node that rebooted no longer runs the old one).
    pub fn is_gone(&self, epoch: u64) -> bool {
        epoch != 0 && (epoch <= self.gone || epoch < self.epoch)
    }

    /// Reads the peer's words once and updates the verdict at time `now`.
    pub fn observe(&mut self, now: u64) -> Result<PeerStatus, LifecycleError> {
        let epoch = self.words.epoch(&self.region)?;
        // Relaxed: only compared for change.
        let beat = self.region.load(self.words.heartbeat, Ordering::Relaxed)?;
        let raw = self.region.load(self.words.state, Ordering::Acquire)?;
        let state = NodeState::from_wire(raw).ok_or(LifecycleError::BadState { found: raw })?;
        if epoch < self.epoch {
            return Err(LifecycleError::BadEpoch {
                found: epoch,
                expected: self.epoch,
            });
        }
        if epoch > self.epoch {
            let old = self.epoch;
            self.epoch = epoch;
            self.heartbeat = beat;
            self.last_change = now;
            if old != 0 {
                self.gone = old;
                self.status = PeerStatus::Restarted { old, new: epoch };
                return Ok(self.status);
            }
        }
        if beat != self.heartbeat {
            self.heartbeat = beat;
            self.last_change = now;
        }
        self.status = match (state, self.status) {
            _ if epoch == 0 => PeerStatus::NotBooted,
            (NodeState::Stopped, _) => PeerStatus::Stopped { epoch },
            // Death is latched for the incarnation: a late beat does not revive it.
            (_, s @ (PeerStatus::Dead { .. } | PeerStatus::Fenced { .. })) => s,
            _ if now.saturating_sub(self.last_change) >= self.timeout => PeerStatus::Dead { epoch },
            _ => PeerStatus::Alive { epoch },
        };
        Ok(self.status)
    }

    /// Asks the platform to fence a peer declared dead; on success its ends may be
    /// reclaimed.
    pub fn fence(&mut self, hook: &mut impl Fence) -> PeerStatus {
        if let PeerStatus::Dead { epoch } = self.status
            && hook.fence(&self.node, epoch)
        {
            self.gone = epoch;
            self.status = PeerStatus::Fenced { epoch };
        }
        self.status
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests;
