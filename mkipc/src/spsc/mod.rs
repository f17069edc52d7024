//! Single-producer, single-consumer ring over shared memory: the fast path.
//!
//! Each slot carries a stamp in the same cache line as its payload's start, so a
//! small message costs one cache-line transfer per direction; each side keeps its
//! own index private and caches the peer's. See DESIGN.md for the ordering table.
//!
//! ```
//! use mkipc::{Region, spsc::{self, Geometry}};
//!
//! let geometry = Geometry::new(64, 48);
//! let region = Region::new_heap(geometry.ring_size().unwrap());
//! let (mut tx, mut rx) = spsc::channel(&region, 0, geometry).unwrap();
//! tx.push(b"hello").unwrap();
//! let mut buf = [0u8; 48];
//! let n = rx.pop(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```

mod consumer;
mod producer;
mod ring;

pub use consumer::{ConsumeError, Consumer, ReadBatch, SlotView};
pub use producer::{ProduceError, Producer, Reservation, SlotWriter};
pub use ring::{Geometry, GeometryError, MAX_SLOT_SIZE, MAX_SLOTS, RingError, RingLayout};

use crate::shm::Region;

/// Creates a ring at `offset` and attaches both ends (for in-process use and tests;
/// across kernels each side calls `attach` on its own mapping).
pub fn channel(
    region: &Region,
    offset: usize,
    geometry: Geometry,
) -> Result<(Producer, Consumer), RingError> {
    RingLayout::create(region, offset, geometry)?;
    Ok((
        Producer::attach(region.clone(), offset)?,
        Consumer::attach(region.clone(), offset)?,
    ))
}

#[cfg(all(test, feature = "alloc"))]
mod tests;
