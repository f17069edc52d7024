//! Ring geometry: where every word of an SPSC ring lives, and its validation.
//!
//! ```text
//!  ring offset (section-aligned)
//!  +0                 descriptor (creator writes once; both validate)
//!  +consumer_offset   consumer section: head, need_wakeup, faults   (consumer writes)
//!  +producer_offset   producer section: tail, faults                (producer writes)
//!  +slots_offset      slot 0 .. slot N-1, each `stride` bytes        (producer writes)
//!                     | tag u64: len 24 bits, stamp 40 bits | payload (slot_size) ... |
//! ```

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::FromZeros;

use crate::descriptor::{self, expect};
use crate::layout::{
    CACHE_LINE, ConsumerControl, MIN_SLOT_ALIGN, PAGE, ProducerControl, SLOT_ALIGN, SLOT_HEADER,
    SPSC_MAGIC, STAMP_BITS, SlotHeader, SpscDescriptor,
};
use crate::shm::{AccessError, Region, WORD};
use crate::sync::Ordering;

/// Largest slot count a ring may have.
pub const MAX_SLOTS: u32 = 1 << 24;
/// Largest payload capacity of one slot (the length must fit a tag's 24 bits).
pub const MAX_SLOT_SIZE: u32 = (1 << 24) - 8;

/// Mask of a tag's stamp bits.
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

/// The shape of a ring: how many slots, how big, how its sections are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Number of slots: a power of two, 1 ..= [`MAX_SLOTS`].
    pub slot_count: u32,
    /// Payload bytes per slot: a multiple of 8, 8 ..= [`MAX_SLOT_SIZE`].
    pub slot_size: u32,
    /// Alignment of each side's section: a power of two from 128 bytes (compact)
    /// to 2 MiB. Page alignment (the default) lets a platform map the peer's
    /// section read-only.
    pub section_align: u32,
    /// Alignment of each slot: a power of two from 8 (dense) to 4096. The default,
    /// 128, keeps round trips free of false sharing; streams prefer dense slots.
    pub slot_align: u32,
}

impl Geometry {
    /// `slot_count` slots of `slot_size` payload bytes, page-aligned sections.
    pub const fn new(slot_count: u32, slot_size: u32) -> Geometry {
        Geometry {
            slot_count,
            slot_size,
            section_align: PAGE as u32,
            slot_align: SLOT_ALIGN as u32,
        }
    }

    /// The same geometry with slots packed back to back (8-byte aligned): fewer
    /// cache lines per message for streams; round trips prefer the default.
    pub const fn dense(self) -> Geometry {
        Geometry {
            slot_align: MIN_SLOT_ALIGN as u32,
            ..self
        }
    }

    /// The same geometry with cache-line-aligned sections (smaller, but the
    /// sections cannot be protected separately).
    pub const fn compact(self) -> Geometry {
        Geometry {
            section_align: CACHE_LINE as u32,
            ..self
        }
    }

    /// Bytes this ring occupies in a region.
    pub fn ring_size(&self) -> Result<usize, GeometryError> {
        Ok(self.offsets()?.ring_size)
    }

    fn offsets(&self) -> Result<Offsets, GeometryError> {
        let count = self.slot_count;
        if count == 0 || count > MAX_SLOTS || !count.is_power_of_two() {
            return Err(GeometryError::SlotCount(count));
        }
        let size = self.slot_size;
        if size == 0 || size > MAX_SLOT_SIZE || !(size as usize).is_multiple_of(WORD) {
            return Err(GeometryError::SlotSize(size));
        }
        let align = self.section_align;
        if !align.is_power_of_two() || (align as usize) < CACHE_LINE || align > 2 << 20 {
            return Err(GeometryError::SectionAlign(align));
        }
        let slot_align = self.slot_align;
        if !slot_align.is_power_of_two()
            || (slot_align as usize) < MIN_SLOT_ALIGN
            || slot_align > 4096
        {
            return Err(GeometryError::SlotAlign(slot_align));
        }
        let align = align as usize;
        let section = |bytes: usize| bytes.next_multiple_of(align);
        let consumer = section(size_of::<SpscDescriptor>());
        let producer = consumer + section(size_of::<ConsumerControl>());
        let slots = producer + section(size_of::<ProducerControl>());
        let stride = (SLOT_HEADER + size as usize).next_multiple_of(slot_align as usize);
        // count <= 2^24 and stride <= 2^24 + 4096: no overflow on 64-bit usize, and on
        // 32-bit targets the checked arithmetic refuses rings that cannot exist.
        let slot_bytes = stride.checked_mul(count as usize);
        let ring_size = slot_bytes.and_then(|b| section(b).checked_add(slots));
        Ok(Offsets {
            consumer,
            producer,
            slots,
            stride,
            ring_size: ring_size.ok_or(GeometryError::SlotSize(size))?,
        })
    }
}

struct Offsets {
    consumer: usize,
    producer: usize,
    slots: usize,
    stride: usize,
    ring_size: usize,
}

/// A geometry that no ring may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// Slot count zero, above [`MAX_SLOTS`], or not a power of two.
    SlotCount(u32),
    /// Slot size zero, above [`MAX_SLOT_SIZE`], or not a multiple of 8.
    SlotSize(u32),
    /// Section alignment not a power of two in 128 ..= 2 MiB.
    SectionAlign(u32),
    /// Slot alignment not a power of two in 8 ..= 4096.
    SlotAlign(u32),
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GeometryError::SlotCount(n) => write!(
                f,
                "slot count {n} is invalid: use a power of two from 1 to {MAX_SLOTS}"
            ),
            GeometryError::SlotSize(n) => write!(
                f,
                "slot size {n} is invalid: use a multiple of 8 from 8 to {MAX_SLOT_SIZE}"
            ),
            GeometryError::SectionAlign(n) => write!(
                f,
                "section alignment {n} is invalid: use a power of two from 128 to 2 MiB"
            ),
            GeometryError::SlotAlign(n) => write!(
                f,
                "slot alignment {n} is invalid: use a power of two from 8 to 4096"
            ),
        }
    }
}

/// Why a ring could not be created or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// A region access failed (the ring does not fit).
    Access(AccessError),
    /// The geometry is invalid (asked for, or found in the descriptor).
    Geometry(GeometryError),
    /// No descriptor yet: the ring was not created (or not yet).
    NotInitialized,
    /// The descriptor's magic is wrong: no SPSC ring lives at this offset.
    BadMagic {
        /// The word found.
        found: u64,
    },
    /// A derived descriptor field disagrees with the geometry it records.
    LayoutMismatch {
        /// Which field.
        field: &'static str,
        /// Value found in the descriptor.
        found: u64,
        /// Value the geometry implies.
        expected: u64,
    },
    /// The ring offset is not aligned to the ring's section alignment.
    Misplaced {
        /// The ring offset.
        offset: usize,
        /// The required alignment.
        align: usize,
    },
    /// The ring does not fit in the region.
    DoesNotFit {
        /// The ring offset.
        offset: usize,
        /// The ring size.
        size: usize,
        /// The region size.
        region_len: usize,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RingError::Access(e) => write!(f, "ring access failed: {e}"),
            RingError::Geometry(e) => write!(f, "{e}"),
            RingError::NotInitialized => {
                write!(
                    f,
                    "no ring has been created at this offset yet; create it first"
                )
            }
            RingError::BadMagic { found } => write!(
                f,
                "no SPSC ring at this offset: magic {found:#018x}, expected {SPSC_MAGIC:#018x}"
            ),
            RingError::LayoutMismatch {
                field,
                found,
                expected,
            } => write!(
                f,
                "ring descriptor field `{field}` is {found}, its geometry implies {expected}; \
                 the ring was written by an incompatible build or corrupted"
            ),
            RingError::Misplaced { offset, align } => write!(
                f,
                "ring offset {offset:#x} is not a multiple of its section alignment {align:#x}"
            ),
            RingError::DoesNotFit {
                offset,
                size,
                region_len,
            } => write!(
                f,
                "a {size}-byte ring at {offset:#x} does not fit the {region_len}-byte region; \
                 use a larger region or fewer/smaller slots"
            ),
        }
    }
}

impl core::error::Error for RingError {}

descriptor::impl_from_descriptor_error!(RingError);

impl From<AccessError> for RingError {
    fn from(e: AccessError) -> Self {
        RingError::Access(e)
    }
}

impl From<GeometryError> for RingError {
    fn from(e: GeometryError) -> Self {
        RingError::Geometry(e)
    }
}

/// A validated ring layout: absolute region offsets of every word an endpoint uses.
///
/// Built once from the descriptor and never re-read, so later peer writes to the
/// descriptor cannot change what an endpoint accesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    offset: usize,
    geometry: Geometry,
    consumer: usize,
    producer: usize,
    slots: usize,
    stride: usize,
    size: usize,
    /// `slot_count - 1`: positions map to slots by masking.
    mask: u64,
}

impl RingLayout {
    /// Formats a ring at `offset`: zeroes it and writes its descriptor.
    ///
    /// Only the region's owner does this, before any endpoint attaches.
    pub fn create(region: &Region, offset: usize, geometry: Geometry) -> Result<Self, RingError> {
        let o = geometry.offsets()?;
        let layout = RingLayout::place(region, offset, geometry, &o)?;
        region.store(offset, 0, Ordering::Relaxed)?;
        region.zero(offset + WORD, layout.size - WORD)?;
        let mut d = SpscDescriptor::new_zeroed();
        d.slot_count.set(geometry.slot_count);
        d.slot_size.set(geometry.slot_size);
        d.slot_stride.set(o.stride as u32);
        d.section_align.set(geometry.section_align);
        d.consumer_offset.set(o.consumer as u64);
        d.producer_offset.set(o.producer as u64);
        d.slots_offset.set(o.slots as u64);
        d.ring_size.set(o.ring_size as u64);
        d.slot_align.set(geometry.slot_align);
        descriptor::publish(region, offset, SPSC_MAGIC, &d)?;
        Ok(layout)
    }

    /// Reads and validates the descriptor of the ring at `offset`.
    pub fn read(region: &Region, offset: usize) -> Result<Self, RingError> {
        let d: SpscDescriptor = descriptor::read(region, offset, SPSC_MAGIC)?;
        let geometry = Geometry {
            slot_count: d.slot_count.get(),
            slot_size: d.slot_size.get(),
            section_align: d.section_align.get(),
            slot_align: d.slot_align.get(),
        };
        let o = geometry.offsets()?;
        expect("slot_stride", d.slot_stride.get().into(), o.stride)?;
        expect("consumer_offset", d.consumer_offset.get(), o.consumer)?;
        expect("producer_offset", d.producer_offset.get(), o.producer)?;
        expect("slots_offset", d.slots_offset.get(), o.slots)?;
        expect("ring_size", d.ring_size.get(), o.ring_size)?;
        RingLayout::place(region, offset, geometry, &o)
    }

    fn place(
        region: &Region,
        offset: usize,
        geometry: Geometry,
        o: &Offsets,
    ) -> Result<Self, RingError> {
        let align = geometry.section_align as usize;
        descriptor::check_place(region, offset, align, o.ring_size)?;
        Ok(RingLayout {
            offset,
            geometry,
            consumer: offset + o.consumer,
            producer: offset + o.producer,
            slots: offset + o.slots,
            stride: o.stride,
            size: o.ring_size,
            mask: u64::from(geometry.slot_count) - 1,
        })
    }

    /// The ring's geometry.
    #[inline]
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Offset of the ring in its region.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes the ring occupies.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of slots.
    #[inline]
    pub fn capacity(&self) -> u64 {
        u64::from(self.geometry.slot_count)
    }

    /// Payload capacity of one slot.
    #[inline]
    pub fn slot_size(&self) -> usize {
        self.geometry.slot_size as usize
    }

    /// Region range written only by the consumer.
    #[inline]
    pub fn consumer_section(&self) -> core::ops::Range<usize> {
        self.consumer..self.producer
    }

    /// Region range written only by the producer (control words and slots).
    #[inline]
    pub fn producer_section(&self) -> core::ops::Range<usize> {
        self.producer..self.offset + self.size
    }

    /// The consumer's released count.
    #[inline]
    pub fn head_word(&self) -> usize {
        self.consumer + offset_of!(ConsumerControl, head)
    }

    /// The consumer's "wake me" flag.
    #[inline]
    pub fn need_wakeup_word(&self) -> usize {
        self.consumer + offset_of!(ConsumerControl, need_wakeup)
    }

    /// The consumer's published fault count.
    #[inline]
    pub fn consumer_faults_word(&self) -> usize {
        self.consumer + offset_of!(ConsumerControl, faults)
    }

    /// The producer's published count.
    #[inline]
    pub fn tail_word(&self) -> usize {
        self.producer + offset_of!(ProducerControl, tail)
    }

    /// The producer's published fault count.
    #[inline]
    pub fn producer_faults_word(&self) -> usize {
        self.producer + offset_of!(ProducerControl, faults)
    }

    /// Start of the slot that holds message `position`.
    #[inline]
    pub fn slot(&self, position: u64) -> usize {
        let index = (position & self.mask) as usize;
        self.slots + index * self.stride
    }

    /// The tag word (stamp and length) of message `position`'s slot.
    #[inline]
    pub fn tag_word(&self, position: u64) -> usize {
        self.slot(position) + offset_of!(SlotHeader, tag)
    }

    /// First payload byte of message `position`'s slot.
    #[inline]
    pub fn payload(&self, position: u64) -> usize {
        self.slot(position) + SLOT_HEADER
    }

    /// The stamp a slot holds once message `position` is published.
    #[inline]
    pub fn published_stamp(position: u64) -> u64 {
        position.wrapping_add(1) & STAMP_MASK
    }

    /// The tag that publishes a `len`-byte message at `position`.
    #[inline]
    pub fn published_tag(position: u64, len: usize) -> u64 {
        Self::published_stamp(position) | (len as u64) << STAMP_BITS
    }

    /// The stamp part of a tag.
    #[inline]
    pub fn tag_stamp(tag: u64) -> u64 {
        tag & STAMP_MASK
    }

    /// The length part of a tag (not yet validated against the slot size).
    #[inline]
    pub fn tag_len(tag: u64) -> u64 {
        tag >> STAMP_BITS
    }

    /// The stamp a slot holds while message `position` is not yet published: the
    /// previous lap's, or 0 on the first lap. (Stamps are positions modulo 2^40;
    /// a slot only ever holds this lap's or the previous lap's, so no two that
    /// can meet are equal.)
    #[inline]
    pub fn empty_stamp(&self, position: u64) -> u64 {
        match position.checked_sub(self.capacity()) {
            Some(previous) => Self::published_stamp(previous),
            None => 0,
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn page_aligned_sections_are_separate_pages() {
        let g = Geometry::new(64, 48);
        let r = Region::new_heap(g.ring_size().unwrap() + PAGE);
        let l = RingLayout::create(&r, PAGE, g).unwrap();
        assert_eq!(l.consumer_section(), 2 * PAGE..3 * PAGE);
        assert_eq!(l.producer_section().start, 3 * PAGE);
        assert_eq!(l.slot(0), 4 * PAGE);
        assert_eq!(
            l.slot(65) - l.slot(0),
            128,
            "one slot per adjacent-line pair"
        );
        assert_eq!(RingLayout::read(&r, PAGE), Ok(l));
    }

    #[test]
    fn bad_geometries_are_refused() {
        for (count, size) in [(0, 8), (3, 8), (1 << 25, 8), (4, 0), (4, 12), (4, 1 << 25)] {
            assert!(
                Geometry::new(count, size).ring_size().is_err(),
                "{count} x {size}"
            );
        }
        let mut g = Geometry::new(4, 8);
        g.section_align = 64;
        assert_eq!(g.ring_size(), Err(GeometryError::SectionAlign(64)));
    }

    #[test]
    fn placement_is_checked() {
        let g = Geometry::new(4, 8).compact();
        let r = Region::new_heap(1024);
        assert!(matches!(
            RingLayout::create(&r, 64, g),
            Err(RingError::Misplaced { .. })
        ));
        assert!(matches!(
            RingLayout::create(&r, 768, g),
            Err(RingError::DoesNotFit { .. })
        ));
        assert_eq!(RingLayout::read(&r, 0), Err(RingError::NotInitialized));
        RingLayout::create(&r, 0, g).unwrap();
    }

    #[test]
    fn tampered_descriptors_are_refused() {
        let g = Geometry::new(8, 8).compact();
        let r = Region::new_heap(4096);
        RingLayout::create(&r, 0, g).unwrap();
        let slots_at = offset_of!(SpscDescriptor, slots_offset);
        r.store(slots_at, 1 << 40, Ordering::Relaxed).unwrap();
        assert!(matches!(
            RingLayout::read(&r, 0),
            Err(RingError::LayoutMismatch {
                field: "slots_offset",
                ..
            })
        ));
        RingLayout::create(&r, 0, g).unwrap();
        r.store(8, 3 | (8 << 32), Ordering::Relaxed).unwrap();
        assert_eq!(
            RingLayout::read(&r, 0),
            Err(RingError::Geometry(GeometryError::SlotCount(3)))
        );
        r.store(0, 42, Ordering::Relaxed).unwrap();
        assert_eq!(
            RingLayout::read(&r, 0),
            Err(RingError::BadMagic { found: 42 })
        );
    }
}
