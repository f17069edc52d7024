//! Zero-copy buffer pool: large payloads cross without copies.
//!
//! The sender owns a pool of fixed-size buffers inside the region (a section-
//! aligned area in its own section). It loans a buffer, writes it in place through
//! [`BufferWriter`], and sends `(offset, length)` through the submission SPSC ring.
//! The receiver validates the record against the pool geometry, reads the buffer
//! in place through [`BufferView`] (or copies it out with
//! [`PoolReceiver::recv_bytes`]) and gives it back through the completion ring.
//! The sender keeps a private record of what it lent and accepts back only those
//! buffers; see DESIGN.md, "Buffer pool and typed channels".
//!
//! ```
//! use mkipc::{MessageType, Region, pool::{self, PoolGeometry}};
//!
//! let geometry = PoolGeometry::new(4, 4096);
//! let region = Region::new_heap(geometry.pool_size().unwrap());
//! let (mut tx, mut rx) = pool::channel(&region, 0, geometry, MessageType::bytes(4096)).unwrap();
//! let loan = tx.loan().unwrap();
//! tx.writer(&loan).write_at(0, b"in place").unwrap();
//! tx.send(loan, 8).unwrap();
//! let held = rx.recv().unwrap();
//! let mut buf = [0u8; 8];
//! rx.view(&held).read(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"in place");
//! rx.give_back(held).unwrap();
//! assert_eq!(tx.collect().unwrap(), 1);
//! ```

mod layout;
mod ledger;
mod receiver;
mod sender;

pub use layout::{
    MAX_BUFFER_SIZE, MAX_BUFFERS, MAX_FRAGMENTS, PoolError, PoolGeometry, PoolGeometryError,
    PoolLayout, RECORD,
};
pub use receiver::{BufferView, Held, PoolReceiver, RecvError};
pub use sender::{BufferWriter, Loan, PoolSender, SendError, SendFailed};

use crate::message_type::MessageType;
use crate::shm::Region;

/// Creates a pool at `offset` and attaches both ends (in-process use and tests;
/// across kernels each side attaches on its own mapping).
pub fn channel(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
    message_type: MessageType,
) -> Result<(PoolSender, PoolReceiver), PoolError> {
    PoolLayout::create(region, offset, geometry, message_type)?;
    Ok((
        PoolSender::attach(region.clone(), offset)?,
        PoolReceiver::attach(region.clone(), offset)?,
    ))
}

#[cfg(all(test, feature = "alloc"))]
mod tests;
