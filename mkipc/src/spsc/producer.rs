//! The producing end: reserve slots, write in place, commit.

use core::fmt;

use super::ring::{RingError, RingLayout};
use crate::fault::{Fault, FaultLatch};
use crate::layout::{SLOT_HEADER, STAMP_BITS};
use crate::shm::{Region, WORD};
use crate::sync::Ordering;

/// Why the producer could not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceError {
    /// Every slot holds an unreleased message; try again later.
    Full,
    /// The message is longer than a slot.
    TooLarge {
        /// Length of the message.
        len: usize,
        /// Payload capacity of a slot.
        capacity: usize,
    },
    /// The consumer corrupted its shared words; the ring is latched broken.
    Broken(Fault),
}

impl fmt::Display for ProduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProduceError::Full => write!(f, "ring is full: the consumer has not released slots"),
            ProduceError::TooLarge { len, capacity } => write!(
                f,
                "a {len}-byte message does not fit a {capacity}-byte slot; \
                 use larger slots or the buffer pool"
            ),
            ProduceError::Broken(fault) => write!(f, "ring is broken: {fault}"),
        }
    }
}

impl core::error::Error for ProduceError {}

/// The single producer of an SPSC ring.
///
/// Owns its position privately; reads the consumer's index only when its cached
/// copy says the ring is full, so a message normally costs the consumer one
/// cache-line transfer (the slot, whose stamp shares the payload's line).
#[derive(Debug)]
pub struct Producer {
    region: Region,
    ring: RingLayout,
    /// Next position to publish (private; published copy in `tail_word`).
    tail: u64,
    /// Last validated value of the consumer's `head`.
    cached_head: u64,
    faults: FaultLatch,
}

impl Producer {
    /// Attaches to the ring at `offset`, resuming from the published position.
    pub fn attach(region: Region, offset: usize) -> Result<Producer, RingError> {
        let ring = RingLayout::read(&region, offset)?;
        // Relaxed: our own word, written only by the producer.
        let tail = region.load(ring.tail_word(), Ordering::Relaxed)?;
        let mut producer = Producer {
            region,
            ring,
            tail,
            cached_head: tail.saturating_sub(ring.capacity()),
            faults: FaultLatch::default(),
        };
        // An impossible head at attach time latches the fault like any other.
        let _ = producer.refresh_head();
        Ok(producer)
    }

    /// The ring's layout.
    pub fn layout(&self) -> &RingLayout {
        &self.ring
    }

    /// Payload capacity of one slot in bytes.
    pub fn slot_size(&self) -> usize {
        self.ring.slot_size()
    }

    /// Messages published so far.
    pub fn published(&self) -> u64 {
        self.tail
    }

    /// The latched fault, if the consumer broke the ring.
    pub fn fault(&self) -> Option<Fault> {
        self.faults.get()
    }

    /// Number of faults detected.
    pub fn fault_count(&self) -> u64 {
        self.faults.count()
    }

    /// Slots free for writing, refreshing the consumer's index.
    pub fn free_slots(&mut self) -> Result<usize, ProduceError> {
        self.check()?;
        self.refresh_head().map_err(ProduceError::Broken)?;
        Ok(self.free_cached())
    }

    /// Reserves up to `max` consecutive slots (at least one) for in-place writing.
    ///
    /// Nothing becomes visible until [`Reservation::commit`]; dropping the
    /// reservation leaves the slots free for the next reserve.
    #[inline]
    pub fn reserve(&mut self, max: usize) -> Result<Reservation<'_>, ProduceError> {
        let len = self.claimable(max.max(1))?;
        Ok(Reservation {
            producer: self,
            len,
        })
    }

    /// Copies `msg` into one slot and publishes it.
    #[inline]
    pub fn push(&mut self, msg: &[u8]) -> Result<(), ProduceError> {
        if msg.len() > self.slot_size() {
            return Err(ProduceError::TooLarge {
                len: msg.len(),
                capacity: self.slot_size(),
            });
        }
        self.claimable(1)?;
        let position = self.tail;
        let slot = self.ring.slot(position);
        let tag = RingLayout::published_tag(position, msg.len());
        // Release (the tag store): pairs with the consumer's Acquire load of the
        // tag in `Consumer::is_published`: the payload copied in before it is
        // visible to the consumer once it sees the stamp.
        let written = self
            .region
            .copy_in(slot + SLOT_HEADER, msg)
            .and_then(|()| self.region.store(slot, tag, Ordering::Release));
        if let Err(e) = written {
            return Err(ProduceError::Broken(self.raise(e.into())));
        }
        self.advance(1);
        Ok(())
    }

    /// Publishes the next `count` written slots, in order, each with the length
    /// its writer left in the tag.
    #[inline]
    fn publish(&mut self, count: u64) -> bool {
        for position in self.tail..self.tail + count {
            let at = self.ring.tag_word(position);
            // Relaxed: our own word, last written by `SlotWriter::set_len`.
            let written = self.region.load(at, Ordering::Relaxed).and_then(|tag| {
                let tag = RingLayout::published_tag(position, RingLayout::tag_len(tag) as usize);
                // Release: pairs with the consumer's Acquire load of this tag in
                // `Consumer::is_published`: the payload written before is
                // visible to it once it sees the stamp.
                self.region.store(at, tag, Ordering::Release)
            });
            if let Err(e) = written {
                self.raise(e.into());
                return false;
            }
        }
        self.advance(count);
        true
    }

    /// Moves the private tail past `count` published messages.
    #[inline]
    fn advance(&mut self, count: u64) {
        self.tail += count;
        // Release: pairs with Acquire loads of `tail` by observers (inspection,
        // wake-up checks); the fast path never reads it.
        if let Err(e) = self
            .region
            .store(self.ring.tail_word(), self.tail, Ordering::Release)
        {
            self.raise(e.into());
        }
    }

    /// How many of `want` slots are free (at least one), looking at the consumer's
    /// index only when the cached view has fewer than `want`.
    #[inline]
    fn claimable(&mut self, want: usize) -> Result<usize, ProduceError> {
        self.check()?;
        let mut free = self.free_cached();
        if free < want {
            self.refresh_head().map_err(ProduceError::Broken)?;
            free = self.free_cached();
        }
        if free == 0 {
            return Err(ProduceError::Full);
        }
        Ok(free.min(want))
    }

    #[inline]
    fn check(&self) -> Result<(), ProduceError> {
        match self.faults.get() {
            Some(fault) => Err(ProduceError::Broken(fault)),
            None => Ok(()),
        }
    }

    #[inline]
    fn free_cached(&self) -> usize {
        (self.ring.capacity() - (self.tail - self.cached_head)) as usize
    }

    /// Reads the consumer's `head` once and validates it.
    fn refresh_head(&mut self) -> Result<(), Fault> {
        // Acquire: pairs with the Release store of `head` in `ReadBatch::release`,
        // so the consumer's reads of the released slots happen before we reuse them.
        let head = match self.region.load(self.ring.head_word(), Ordering::Acquire) {
            Ok(head) => head,
            Err(e) => return Err(self.raise(e.into())),
        };
        if head < self.cached_head || head > self.tail {
            return Err(self.raise(Fault::HeadOutOfRange {
                found: head,
                low: self.cached_head,
                high: self.tail,
            }));
        }
        self.cached_head = head;
        Ok(())
    }

    fn raise(&mut self, fault: Fault) -> Fault {
        let fault = self.faults.raise(fault);
        // Relaxed: a statistic for observers; nothing is ordered by it.
        let _ = self.region.store(
            self.ring.producer_faults_word(),
            self.faults.count(),
            Ordering::Relaxed,
        );
        fault
    }
}

/// Slots reserved for writing; publish them with [`Reservation::commit`].
#[derive(Debug)]
pub struct Reservation<'a> {
    producer: &'a mut Producer,
    len: usize,
}

impl Reservation<'_> {
    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a reservation holds at least one slot.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A writer for the `index`-th reserved slot.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()` (a caller bug, never caused by the peer).
    #[inline]
    pub fn slot(&self, index: usize) -> SlotWriter<'_> {
        assert!(
            index < self.len,
            "slot {index} of a {}-slot reservation",
            self.len
        );
        let p = &*self.producer;
        let position = p.tail + index as u64;
        SlotWriter {
            region: &p.region,
            payload: p.ring.payload(position),
            tag_word: p.ring.tag_word(position),
            empty_stamp: p.ring.empty_stamp(position),
            capacity: p.ring.slot_size(),
        }
    }

    /// Publishes the first `count` reserved slots (at most `len()`), in order.
    ///
    /// Returns how many were published.
    #[inline]
    pub fn commit(self, count: usize) -> usize {
        let count = count.min(self.len);
        if self.producer.publish(count as u64) {
            count
        } else {
            0
        }
    }
}

/// In-place writer for one reserved slot.
#[derive(Debug)]
pub struct SlotWriter<'a> {
    region: &'a Region,
    payload: usize,
    tag_word: usize,
    /// The slot's stamp until commit: the length is stored beside it early.
    empty_stamp: u64,
    capacity: usize,
}

impl SlotWriter<'_> {
    /// Payload capacity of the slot.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes `msg` as the whole message (payload and length).
    #[inline]
    pub fn write(&self, msg: &[u8]) -> Result<(), ProduceError> {
        self.write_at(0, msg)?;
        self.set_len(msg.len())
    }

    /// Writes `bytes` at `offset` within the payload, leaving the length alone.
    #[inline]
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<(), ProduceError> {
        let end = offset.saturating_add(bytes.len());
        if end > self.capacity {
            return Err(ProduceError::TooLarge {
                len: end,
                capacity: self.capacity,
            });
        }
        // Relaxed: published by the Release tag store in `Reservation::commit`.
        self.region
            .copy_in(self.payload + offset, bytes)
            .map_err(|e| ProduceError::Broken(e.into()))
    }

    /// Builds the message in place: writes `f(i)` into each of the first `words`
    /// 8-byte words (little-endian) and sets the length to `words * 8`.
    #[inline]
    pub fn fill_words(
        &self,
        words: usize,
        f: impl FnMut(usize) -> u64,
    ) -> Result<(), ProduceError> {
        let len = words.saturating_mul(WORD);
        if len > self.capacity {
            return Err(ProduceError::TooLarge {
                len,
                capacity: self.capacity,
            });
        }
        // Relaxed: published by the Release tag store in `Reservation::commit`.
        self.region
            .store_words(self.payload, words, f)
            .map_err(|e| ProduceError::Broken(e.into()))?;
        self.set_len(len)
    }

    /// Sets the message length (for messages built with [`SlotWriter::write_at`]).
    #[inline]
    pub fn set_len(&self, len: usize) -> Result<(), ProduceError> {
        if len > self.capacity {
            return Err(ProduceError::TooLarge {
                len,
                capacity: self.capacity,
            });
        }
        // Relaxed: published by the Release tag store in `Reservation::commit`.
        // The stamp stays "empty" until then.
        let tag = self.empty_stamp | (len as u64) << STAMP_BITS;
        self.region
            .store(self.tag_word, tag, Ordering::Relaxed)
            .map_err(|e| ProduceError::Broken(e.into()))
    }
}
