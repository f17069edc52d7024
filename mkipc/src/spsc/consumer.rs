//! The consuming end: peek at published slots, read them in place, release.

use core::fmt;

use super::ring::{RingError, RingLayout};
use crate::fault::{Fault, FaultLatch};
use crate::shm::{Region, WORD};
use crate::sync::Ordering;

/// Why the consumer could not receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeError {
    /// No published message is waiting.
    Empty,
    /// The caller's buffer is shorter than the message (which stays queued).
    BufferTooSmall {
        /// Length of the message.
        needed: usize,
    },
    /// The producer corrupted its shared words; the ring is latched broken.
    Broken(Fault),
}

impl fmt::Display for ConsumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumeError::Empty => write!(f, "ring is empty"),
            ConsumeError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: the message has {needed} bytes")
            }
            ConsumeError::Broken(fault) => write!(f, "ring is broken: {fault}"),
        }
    }
}

impl core::error::Error for ConsumeError {}

/// The single consumer of an SPSC ring.
///
/// Polls the stamp in the next slot's own cache line rather than the producer's
/// index; publishes its own index once per release.
#[derive(Debug)]
pub struct Consumer {
    region: Region,
    ring: RingLayout,
    /// Next position to read (private; published copy in `head_word`).
    head: u64,
    faults: FaultLatch,
}

impl Consumer {
    /// Attaches to the ring at `offset`, resuming from the released position.
    pub fn attach(region: Region, offset: usize) -> Result<Consumer, RingError> {
        let ring = RingLayout::read(&region, offset)?;
        // Relaxed: our own word, written only by the consumer.
        let head = region.load(ring.head_word(), Ordering::Relaxed)?;
        Ok(Consumer {
            region,
            ring,
            head,
            faults: FaultLatch::default(),
        })
    }

    /// The ring's layout.
    pub fn layout(&self) -> &RingLayout {
        &self.ring
    }

    /// Messages released so far.
    pub fn released(&self) -> u64 {
        self.head
    }

    /// The latched fault, if the producer broke the ring.
    pub fn fault(&self) -> Option<Fault> {
        self.faults.get()
    }

    /// Number of faults detected.
    pub fn fault_count(&self) -> u64 {
        self.faults.count()
    }

    /// Up to `max` published messages (at least one), to read in place and release.
    #[inline]
    pub fn peek(&mut self, max: usize) -> Result<ReadBatch<'_>, ConsumeError> {
        self.check()?;
        let limit = (max.max(1) as u64).min(self.ring.capacity());
        let mut ready = 0;
        while ready < limit && self.published_len(self.head + ready)?.is_some() {
            ready += 1;
        }
        if ready == 0 {
            return Err(ConsumeError::Empty);
        }
        Ok(ReadBatch {
            consumer: self,
            len: ready as usize,
        })
    }

    /// Copies the next message into `buf` and releases it; returns its length.
    #[inline]
    pub fn pop(&mut self, buf: &mut [u8]) -> Result<usize, ConsumeError> {
        self.check()?;
        let position = self.head;
        let Some(len) = self.published_len(position)? else {
            return Err(ConsumeError::Empty);
        };
        let dst = buf
            .get_mut(..len)
            .ok_or(ConsumeError::BufferTooSmall { needed: len })?;
        if let Err(e) = self.region.copy_out(self.ring.payload(position), dst) {
            return Err(ConsumeError::Broken(self.raise(e.into())));
        }
        self.advance(1);
        Ok(len)
    }

    #[inline]
    fn check(&self) -> Result<(), ConsumeError> {
        match self.faults.get() {
            Some(fault) => Err(ConsumeError::Broken(fault)),
            None => Ok(()),
        }
    }

    /// Reads the tag of `position`'s slot once: the validated length when the
    /// message is published, `None` while the slot is empty, or a fault.
    #[inline]
    fn published_len(&mut self, position: u64) -> Result<Option<usize>, ConsumeError> {
        // Acquire: pairs with the Release store of the tag in `Producer::push` /
        // `Producer::publish`: the payload is visible after it.
        let tag = match self
            .region
            .load(self.ring.tag_word(position), Ordering::Acquire)
        {
            Ok(tag) => tag,
            Err(e) => return Err(ConsumeError::Broken(self.raise(e.into()))),
        };
        let stamp = RingLayout::tag_stamp(tag);
        if stamp == RingLayout::published_stamp(position) {
            self.check_len(position, RingLayout::tag_len(tag)).map(Some)
        } else if stamp == self.ring.empty_stamp(position) {
            Ok(None)
        } else {
            let fault = Fault::BadStamp {
                position,
                found: tag,
            };
            Err(ConsumeError::Broken(self.raise(fault)))
        }
    }

    /// Reads the length of published message `position` once and validates it.
    #[inline]
    fn read_len(&mut self, position: u64) -> Result<usize, ConsumeError> {
        // Relaxed: ordered by the Acquire tag load in `published_len`.
        let len = match self
            .region
            .load(self.ring.tag_word(position), Ordering::Relaxed)
        {
            Ok(tag) => RingLayout::tag_len(tag),
            Err(e) => return Err(ConsumeError::Broken(self.raise(e.into()))),
        };
        self.check_len(position, len)
    }

    /// A length read from a tag, if it fits the slot.
    #[inline]
    fn check_len(&mut self, position: u64, len: u64) -> Result<usize, ConsumeError> {
        let capacity = self.ring.slot_size() as u64;
        if len > capacity {
            let fault = Fault::BadLength {
                position,
                found: len,
                capacity,
            };
            return Err(ConsumeError::Broken(self.raise(fault)));
        }
        Ok(len as usize)
    }

    /// Hands `count` messages back to the producer.
    #[inline]
    fn advance(&mut self, count: u64) {
        self.head += count;
        // Release: pairs with the producer's Acquire load of `head` in
        // `Producer::refresh_head`: our reads of these slots happen before it
        // overwrites them.
        if let Err(e) = self
            .region
            .store(self.ring.head_word(), self.head, Ordering::Release)
        {
            self.raise(e.into());
        }
    }

    fn raise(&mut self, fault: Fault) -> Fault {
        let fault = self.faults.raise(fault);
        // Relaxed: a statistic for observers; nothing is ordered by it.
        let _ = self.region.store(
            self.ring.consumer_faults_word(),
            self.faults.count(),
            Ordering::Relaxed,
        );
        fault
    }
}

/// Published messages lent to the consumer until [`ReadBatch::release`].
#[derive(Debug)]
pub struct ReadBatch<'a> {
    consumer: &'a mut Consumer,
    len: usize,
}

impl ReadBatch<'_> {
    /// Number of messages in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a batch holds at least one message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A view of the `index`-th message; its length is read once and validated.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()` (a caller bug, never caused by the peer).
    #[inline]
    pub fn get(&mut self, index: usize) -> Result<SlotView<'_>, ConsumeError> {
        assert!(
            index < self.len,
            "message {index} of a {}-message batch",
            self.len
        );
        let c = &mut *self.consumer;
        let position = c.head + index as u64;
        let len = c.read_len(position)?;
        Ok(SlotView {
            region: &c.region,
            payload: c.ring.payload(position),
            len,
            position,
        })
    }

    /// Hands the first `count` messages (at most `len()`) back to the producer.
    ///
    /// Returns how many were released.
    #[inline]
    pub fn release(self, count: usize) -> usize {
        let count = count.min(self.len);
        self.consumer.advance(count as u64);
        count
    }
}

/// A received message, readable in place while its batch is held.
///
/// The bytes live in memory the producer can still write: read what you need
/// (or copy out) first, then validate the copy.
#[derive(Debug)]
pub struct SlotView<'a> {
    region: &'a Region,
    payload: usize,
    len: usize,
    position: u64,
}

impl SlotView<'_> {
    /// Length of the message in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Position of the message in the ring's sequence.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Copies `dst.len()` bytes from `offset` within the message.
    ///
    /// Fails with [`ConsumeError::BufferTooSmall`] when the range passes the end.
    #[inline]
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ConsumeError> {
        let end = offset.saturating_add(dst.len());
        if end > self.len {
            return Err(ConsumeError::BufferTooSmall { needed: end });
        }
        self.region
            .copy_out(self.payload + offset, dst)
            .map_err(|e| ConsumeError::Broken(e.into()))
    }

    /// Folds `f` over the message's words in place, each loaded once (`len`
    /// rounded up to whole words; bytes past `len` in the last word are whatever
    /// the slot holds). Nothing is copied: validate what `f` computes.
    #[inline]
    pub fn fold_words<A>(&self, init: A, f: impl FnMut(A, u64) -> A) -> Result<A, ConsumeError> {
        // Relaxed loads: ordered by the Acquire tag load in `Consumer::peek`.
        self.region
            .fold_words(self.payload, self.len.div_ceil(WORD), init, f)
            .map_err(|e| ConsumeError::Broken(e.into()))
    }

    /// Copies the whole message into the front of `buf`, returning that part.
    #[inline]
    pub fn copy_to<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], ConsumeError> {
        let dst = buf
            .get_mut(..self.len)
            .ok_or(ConsumeError::BufferTooSmall { needed: self.len })?;
        self.read(0, dst)?;
        Ok(dst)
    }
}
