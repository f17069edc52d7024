//! Multi-producer, single-consumer fan-in over shared memory: up to 64 producers
//! into one consumer, each producer on its own SPSC lane.
//!
//! Every producer writes only its own lane (an [`spsc`](crate::spsc) ring whose
//! producer words sit in their own section), so a producer that dies between
//! reserving and committing loses at most its own unpublished messages and blocks
//! no one; a hostile producer can corrupt only its own lane, which the consumer
//! latches, counts and reports by lane while it keeps serving the others. The
//! consumer serves lanes round-robin. After the platform fences a dead producer,
//! the consumer drains what it committed and resets its lane under a new epoch
//! ([`Consumer::fence_lane`], [`Consumer::reset_lane`]). See DESIGN.md,
//! "MPSC fan-in".
//!
//! ```
//! use mkipc::{Region, mpsc::{self, Geometry}};
//!
//! let geometry = Geometry::new(2, 64, 48);
//! let region = Region::new_heap(geometry.channel_size().unwrap());
//! let mut rx = mpsc::channel(&region, 0, geometry).unwrap();
//! let mut a = mpsc::Producer::attach(region.clone(), 0, 0).unwrap();
//! let mut b = mpsc::Producer::attach(region.clone(), 0, 1).unwrap();
//! a.push(b"from a").unwrap();
//! b.push(b"from b").unwrap();
//! let mut buf = [0u8; 48];
//! let first = rx.pop(&mut buf).unwrap();
//! assert_eq!((first.lane, &buf[..first.len]), (0, &b"from a"[..]));
//! let second = rx.pop(&mut buf).unwrap();
//! assert_eq!((second.lane, &buf[..second.len]), (1, &b"from b"[..]));
//! ```

mod channel;
mod consumer;
mod producer;

pub use channel::{ChannelError, ChannelLayout, Geometry, GeometryError};
pub use consumer::{Consumer, LaneBatch, LaneError, LaneStatus, QUANTUM, Received, RecvError};
pub use producer::Producer;

use crate::shm::Region;

/// Creates a channel at `offset` (every lane open in epoch 0) and attaches its
/// consumer. Producers attach with [`Producer::attach`], one per lane.
pub fn channel(
    region: &Region,
    offset: usize,
    geometry: Geometry,
) -> Result<Consumer, ChannelError> {
    ChannelLayout::create(region, offset, geometry)?;
    Consumer::attach(region.clone(), offset)
}

#[cfg(all(test, feature = "alloc"))]
mod tests;
