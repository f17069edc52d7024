//! Typed and byte channels over the buffer pool.
//!
//! A channel is a [`pool`](crate::pool) whose descriptor records the message type
//! ([`MessageType`]: size, alignment, type-name hash). Each end checks it when
//! attaching and refuses a mismatch with [`ChannelError::TypeMismatch`]. Messages
//! that fit a submission slot travel inline; larger ones travel through pool
//! buffers, split over several when needed, all of it invisible to the user.
//!
//! ```
//! use mkipc::{Region, pool::PoolGeometry, typed};
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(Debug, PartialEq, FromBytes, IntoBytes, Immutable, KnownLayout)]
//! #[repr(C)]
//! struct Frame { seq: u64, pixels: [u8; 8192] }
//!
//! let geometry = PoolGeometry::new(8, 4096);
//! let region = Region::new_heap(geometry.pool_size().unwrap());
//! let (mut tx, mut rx) = typed::channel::<Frame>(&region, 0, geometry).unwrap();
//! tx.send(&Frame { seq: 7, pixels: [3; 8192] }).unwrap(); // spans 3 buffers
//! assert_eq!(rx.recv().unwrap().seq, 7);
//! ```

use core::fmt;
use core::marker::PhantomData;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::fault::Fault;
use crate::message_type::MessageType;
use crate::pool::{
    PoolError, PoolGeometry, PoolLayout, PoolReceiver, PoolSender, RecvError, SendError,
};
use crate::shm::Region;

/// Why a channel could not be created or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The pool underneath could not be created or attached.
    Pool(PoolError),
    /// The channel carries another message type than this end expects.
    TypeMismatch {
        /// The type this end was built for.
        expected: MessageType,
        /// The type recorded in the channel.
        found: MessageType,
    },
    /// The message type is larger than the pool's geometry carries.
    TooLarge {
        /// Size of one message.
        size: usize,
        /// Largest message the geometry carries.
        max: usize,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Pool(e) => write!(f, "{e}"),
            ChannelError::TypeMismatch { expected, found } => write!(
                f,
                "channel carries messages of {} bytes, align {}, type hash {:#x}; this end \
                 expects {} bytes, align {}, type hash {:#x}: both ends must use the same type \
                 (and the same toolchain)",
                found.size,
                found.align,
                found.name_hash,
                expected.size,
                expected.align,
                expected.name_hash
            ),
            ChannelError::TooLarge { size, max } => write!(
                f,
                "{size}-byte messages exceed the {max} bytes this pool carries; \
                 use more or larger buffers"
            ),
        }
    }
}

impl core::error::Error for ChannelError {}

impl From<PoolError> for ChannelError {
    fn from(e: PoolError) -> Self {
        ChannelError::Pool(e)
    }
}

/// Checks what a channel records against what this end expects.
fn expect(layout: &PoolLayout, expected: MessageType) -> Result<(), ChannelError> {
    let found = layout.message_type();
    if !expected.accepts(&found) {
        return Err(ChannelError::TypeMismatch { expected, found });
    }
    Ok(())
}

fn create_typed(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
    message_type: MessageType,
) -> Result<PoolLayout, ChannelError> {
    let max = geometry.max_message_size();
    let size = message_type.size as usize;
    if size > max {
        return Err(ChannelError::TooLarge { size, max });
    }
    Ok(PoolLayout::create(region, offset, geometry, message_type)?)
}

/// Formats a channel of `T` at `offset` (done once, by the region's owner).
pub fn create<T>(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
) -> Result<PoolLayout, ChannelError> {
    create_typed(region, offset, geometry, MessageType::of::<T>())
}

/// Formats a channel of `T` at `offset` and attaches both ends (in-process use).
pub fn channel<T>(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
) -> Result<(Sender<T>, Receiver<T>), ChannelError>
where
    T: IntoBytes + FromBytes + Immutable + KnownLayout,
{
    create::<T>(region, offset, geometry)?;
    Ok((
        Sender::attach(region.clone(), offset)?,
        Receiver::attach(region.clone(), offset)?,
    ))
}

/// Formats a byte channel at `offset`: messages of any length up to the pool's
/// [`PoolGeometry::max_message_size`].
pub fn create_bytes(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
) -> Result<PoolLayout, ChannelError> {
    let max = geometry.max_message_size().min(u32::MAX as usize) as u32;
    create_typed(region, offset, geometry, MessageType::bytes(max))
}

/// Formats a byte channel and attaches both ends (in-process use).
pub fn byte_channel(
    region: &Region,
    offset: usize,
    geometry: PoolGeometry,
) -> Result<(ByteSender, ByteReceiver), ChannelError> {
    create_bytes(region, offset, geometry)?;
    Ok((
        ByteSender::attach(region.clone(), offset)?,
        ByteReceiver::attach(region.clone(), offset)?,
    ))
}

/// Sends values of the plain-old-data type `T`.
#[derive(Debug)]
pub struct Sender<T> {
    pool: PoolSender,
    _type: PhantomData<fn(&T)>,
}

impl<T: IntoBytes + Immutable> Sender<T> {
    /// Attaches to the channel at `offset`, refusing one of another type.
    pub fn attach(region: Region, offset: usize) -> Result<Sender<T>, ChannelError> {
        let pool = PoolSender::attach(region, offset)?;
        expect(pool.layout(), MessageType::of::<T>())?;
        Ok(Sender {
            pool,
            _type: PhantomData,
        })
    }

    /// Sends a copy of `value` (inline or through pool buffers, by its size).
    pub fn send(&mut self, value: &T) -> Result<(), SendError> {
        self.pool.send_bytes(value.as_bytes())
    }

    /// Largest message the channel carries (at least `size_of::<T>()`).
    pub fn max_message_size(&self) -> usize {
        self.pool.max_message_size()
    }

    /// The pool underneath (for fault inspection and [`PoolSender::reclaim_all`]).
    pub fn pool(&mut self) -> &mut PoolSender {
        &mut self.pool
    }
}

/// Receives values of the plain-old-data type `T`.
#[derive(Debug)]
pub struct Receiver<T> {
    pool: PoolReceiver,
    _type: PhantomData<fn() -> T>,
}

impl<T: IntoBytes + FromBytes + KnownLayout> Receiver<T> {
    /// Attaches to the channel at `offset`, refusing one of another type.
    pub fn attach(region: Region, offset: usize) -> Result<Receiver<T>, ChannelError> {
        let pool = PoolReceiver::attach(region, offset)?;
        expect(pool.layout(), MessageType::of::<T>())?;
        Ok(Receiver {
            pool,
            _type: PhantomData,
        })
    }

    /// Receives the next value (copied out; any bit pattern is a valid `T`).
    ///
    /// A message whose length is not `size_of::<T>()` latches a fault.
    pub fn recv(&mut self) -> Result<T, RecvError> {
        let mut value = T::new_zeroed();
        self.recv_into(&mut value)?;
        Ok(value)
    }

    /// Receives the next value into `value` (no large stack temporary).
    pub fn recv_into(&mut self, value: &mut T) -> Result<(), RecvError> {
        let size = size_of::<T>();
        let position = self.pool.position();
        let wrong = |found: usize| Fault::BadLength {
            position,
            found: found as u64,
            capacity: size as u64,
        };
        match self.pool.recv_bytes(value.as_mut_bytes()) {
            Ok(n) if n == size => Ok(()),
            Ok(n) => Err(self.pool.fail(wrong(n))),
            Err(RecvError::BufferTooSmall { needed }) => Err(self.pool.fail(wrong(needed))),
            Err(e) => Err(e),
        }
    }

    /// Largest message the channel carries.
    pub fn max_message_size(&self) -> usize {
        self.pool.max_message_size()
    }

    /// The pool underneath (for fault inspection).
    pub fn pool(&mut self) -> &mut PoolReceiver {
        &mut self.pool
    }
}

/// Sends variable-length byte messages.
#[derive(Debug)]
pub struct ByteSender {
    pool: PoolSender,
}

impl ByteSender {
    /// Attaches to the byte channel at `offset`, refusing a typed one.
    pub fn attach(region: Region, offset: usize) -> Result<ByteSender, ChannelError> {
        let pool = PoolSender::attach(region, offset)?;
        let max = pool.max_message_size().min(u32::MAX as usize) as u32;
        expect(pool.layout(), MessageType::bytes(max))?;
        Ok(ByteSender { pool })
    }

    /// Sends a copy of `msg` (up to [`ByteSender::max_message_size`] bytes).
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.pool.send_bytes(msg)
    }

    /// Largest message the channel carries.
    pub fn max_message_size(&self) -> usize {
        self.pool.max_message_size()
    }

    /// The pool underneath (zero-copy loans, faults, reclaim).
    pub fn pool(&mut self) -> &mut PoolSender {
        &mut self.pool
    }
}

/// Receives variable-length byte messages.
#[derive(Debug)]
pub struct ByteReceiver {
    pool: PoolReceiver,
}

impl ByteReceiver {
    /// Attaches to the byte channel at `offset`, refusing a typed one.
    pub fn attach(region: Region, offset: usize) -> Result<ByteReceiver, ChannelError> {
        let pool = PoolReceiver::attach(region, offset)?;
        let max = pool.max_message_size().min(u32::MAX as usize) as u32;
        expect(pool.layout(), MessageType::bytes(max))?;
        Ok(ByteReceiver { pool })
    }

    /// Copies the next message into `dst` and returns its length.
    pub fn recv_bytes(&mut self, dst: &mut [u8]) -> Result<usize, RecvError> {
        self.pool.recv_bytes(dst)
    }

    /// Largest message the channel carries.
    pub fn max_message_size(&self) -> usize {
        self.pool.max_message_size()
    }

    /// The pool underneath (zero-copy receive, faults).
    pub fn pool(&mut self) -> &mut PoolReceiver {
        &mut self.pool
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests;
