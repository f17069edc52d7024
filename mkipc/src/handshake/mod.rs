//! Connecting the two ends of an SPSC channel named in the manifest: the producer
//! offers, the consumer accepts; then lifecycle (reclaim after a peer's death,
//! reconnect under a new epoch, orderly close).
//!
//! Each end writes only its own end block (in its node's section); it reads the
//! peer's block once per step and validates the copy. The producer may push before
//! the consumer accepts: messages queue in the ring.
//!
//! ```text
//!  producer (its block)                    consumer (its block)
//!  connect: hello fields, state=Offered    try_accept: read offer (Acquire), check
//!  push ... (queued)                         magic, ABI, layout, epoch, type, size;
//!  poll: sees Accepted for its epoch  <--    hello fields, peer_epoch, agreed
//!        -> Connected(agreed features)       features, state=Accepted (Release)
//!  close: state=Closed (after commits) -->  recv drains, then Closed; reclaimed_epoch
//!
//!  peer died: observer's Watchdog says gone (dead+fenced, or epoch grew)
//!  consumer reclaim: drain committed, resume_at=head, reclaimed_epoch=dead, Idle
//!  restarted producer connect: waits for reclaimed_epoch >= its old epoch,
//!        re-stamps its slots from resume_at, tail=resume_at, offers again
//! ```

mod link;
mod receiver;
mod sender;

pub use link::{Agreement, ConnectError, Hello, LinkStatus, ReclaimError};
pub use receiver::{Receiver, RecvError};
pub use sender::{Offer, SendError, Sender};

#[cfg(all(test, feature = "alloc"))]
mod tests;
