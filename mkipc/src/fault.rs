//! Faults: what a peer did wrong, detected in words it writes.
//!
//! A fault is never a panic. The endpoint that sees one latches it (every later
//! call fails with the same fault, like virtio's `broken` flag), counts it, and
//! publishes the count in its own section so an observer can see it.

use core::fmt;

use crate::shm::AccessError;

/// A violation of the protocol by the peer (or memory it corrupted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The consumer's released count moved backwards or past what was published.
    HeadOutOfRange {
        /// The value found.
        found: u64,
        /// Lowest acceptable value (the last one seen).
        low: u64,
        /// Highest acceptable value (what we have published).
        high: u64,
    },
    /// A slot's stamp is neither "published" nor "previous lap".
    BadStamp {
        /// Position of the slot in the message sequence.
        position: u64,
        /// The stamp found.
        found: u64,
    },
    /// A slot claims more bytes than it can hold.
    BadLength {
        /// Position of the slot in the message sequence.
        position: u64,
        /// The length found.
        found: u64,
        /// The slot's payload capacity.
        capacity: u64,
    },
    /// A shared access fell outside the region: the layout no longer fits.
    OutOfBounds,
    /// A buffer offset (submitted or returned) is outside the pool or not at a
    /// buffer boundary: a foreign or misaligned buffer.
    BadBufferOffset {
        /// The offset found, relative to the pool's buffer area.
        offset: u64,
    },
    /// A returned buffer is not on loan to the peer: a double return, or a return
    /// of a buffer that was never lent.
    NotLent {
        /// The offset returned, relative to the pool's buffer area.
        offset: u64,
    },
    /// A buffer was submitted while the receiver still holds it.
    AlreadyHeld {
        /// The offset submitted, relative to the pool's buffer area.
        offset: u64,
    },
    /// The completion ring is full although it has a slot per buffer: the sender
    /// stopped collecting returns, or lent a buffer it had not taken back.
    ReturnsNotCollected,
    /// A pool submission record is malformed.
    BadRecord {
        /// Position of the record in the submission ring.
        position: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A ring descriptor in peer-writable memory no longer validates (found when
    /// re-attaching to a ring the peer could have written).
    BadDescriptor,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::HeadOutOfRange { found, low, high } => write!(
                f,
                "peer corrupted the consumer index: {found} is outside {low}..={high}"
            ),
            Fault::BadStamp { position, found } => write!(
                f,
                "peer corrupted the stamp of message {position}: found {found:#x}"
            ),
            Fault::BadLength {
                position,
                found,
                capacity,
            } => write!(
                f,
                "peer wrote length {found} into message {position}, slot holds {capacity}"
            ),
            Fault::OutOfBounds => write!(f, "a shared access fell outside the region"),
            Fault::BadBufferOffset { offset } => write!(
                f,
                "peer named buffer offset {offset:#x}, which is outside the pool or not at a \
                 buffer boundary"
            ),
            Fault::NotLent { offset } => write!(
                f,
                "peer returned buffer {offset:#x}, which is not on loan to it \
                 (double return or never lent)"
            ),
            Fault::AlreadyHeld { offset } => write!(
                f,
                "peer submitted buffer {offset:#x} again while it is still held here"
            ),
            Fault::ReturnsNotCollected => write!(
                f,
                "completion ring full: the peer lent buffers it never took back"
            ),
            Fault::BadRecord { position, reason } => {
                write!(
                    f,
                    "peer wrote a malformed pool record at {position}: {reason}"
                )
            }
            Fault::BadDescriptor => write!(
                f,
                "a ring descriptor the peer can write no longer validates; fence the peer \
                 and reset the ring"
            ),
        }
    }
}

impl core::error::Error for Fault {}

impl From<AccessError> for Fault {
    fn from(_: AccessError) -> Self {
        Fault::OutOfBounds
    }
}

/// The latch and counter every endpoint keeps privately.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FaultLatch {
    latched: Option<Fault>,
    count: u64,
}

impl FaultLatch {
    /// The latched fault, if any.
    #[inline]
    pub(crate) fn get(&self) -> Option<Fault> {
        self.latched
    }

    /// Records a newly detected fault (the first one stays latched).
    pub(crate) fn raise(&mut self, fault: Fault) -> Fault {
        self.count += 1;
        *self.latched.get_or_insert(fault)
    }

    /// Number of faults detected.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}
