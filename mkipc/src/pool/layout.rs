//! Pool geometry: where the descriptor, both rings and the buffers live, and the
//! validation both endpoints run before they use a pool.
//!
//! ```text
//!  pool offset P (section-aligned)
//!  P + 0                  PoolDescriptor (creator writes once; both validate)
//!  P + submit_offset      submission SPSC ring: sender -> receiver, PoolRecord (+ inline bytes)
//!  P + completion_offset  completion SPSC ring: receiver -> sender, one u64 buffer offset
//!  P + buffers_offset     buffer 0 | buffer 1 | ... buffer N-1     (sender's section)
//! ```

use core::fmt;
use core::mem::size_of;

use zerocopy::FromZeros;

use crate::descriptor::{self, expect};
use crate::layout::{PAGE, POOL_MAGIC, PoolDescriptor, PoolRecord};
use crate::message_type::MessageType;
use crate::shm::{AccessError, Region, WORD};
use crate::spsc::{Geometry, GeometryError, MAX_SLOT_SIZE, MAX_SLOTS, RingError, RingLayout};
use crate::sync::Ordering;

/// Most buffers a pool may have: the sender's private record of loans is a
/// fixed-size bitmap of this many bits (no allocator).
pub const MAX_BUFFERS: u32 = 1024;

/// Largest buffer a pool may have (1 GiB).
pub const MAX_BUFFER_SIZE: u32 = 1 << 30;

/// Most buffers one message may span (bounds the receiver's stack record).
pub const MAX_FRAGMENTS: usize = 64;

/// Bytes of the record at the start of every submission slot.
pub const RECORD: usize = size_of::<PoolRecord>();

/// The shape of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Number of buffers: 1 ..= [`MAX_BUFFERS`].
    pub buffer_count: u32,
    /// Bytes per buffer: a multiple of 8, 8 ..= [`MAX_BUFFER_SIZE`].
    pub buffer_size: u32,
    /// Slots of the submission ring: a power of two.
    pub ring_slots: u32,
    /// Bytes a submission slot carries inline (messages this small skip the
    /// buffers): a multiple of 8, may be 0.
    pub inline_size: u32,
    /// Alignment of each section (as [`Geometry::section_align`]); page by default.
    pub section_align: u32,
}

impl PoolGeometry {
    /// `buffer_count` buffers of `buffer_size` bytes, a submission ring with one
    /// slot per buffer (rounded up to a power of two, at least 8), 48 bytes inline
    /// (a record and its bytes fill one 64-byte line), page-aligned sections.
    pub const fn new(buffer_count: u32, buffer_size: u32) -> PoolGeometry {
        let slots = if buffer_count <= 8 {
            8
        } else if buffer_count > MAX_SLOTS {
            buffer_count
        } else {
            buffer_count.next_power_of_two()
        };
        PoolGeometry {
            buffer_count,
            buffer_size,
            ring_slots: slots,
            inline_size: 48,
            section_align: PAGE as u32,
        }
    }

    /// The same geometry with cache-line-aligned sections (small, but the sides'
    /// sections cannot be protected separately).
    pub const fn compact(self) -> PoolGeometry {
        PoolGeometry {
            section_align: crate::layout::CACHE_LINE as u32,
            ..self
        }
    }

    /// The same geometry carrying `inline_size` bytes inline per submission slot.
    pub const fn with_inline(self, inline_size: u32) -> PoolGeometry {
        PoolGeometry {
            inline_size,
            ..self
        }
    }

    /// The same geometry with `ring_slots` submission slots.
    pub const fn with_ring_slots(self, ring_slots: u32) -> PoolGeometry {
        PoolGeometry { ring_slots, ..self }
    }

    /// Bytes the pool occupies in a region.
    pub fn pool_size(&self) -> Result<usize, PoolGeometryError> {
        Ok(self.offsets()?.size)
    }

    /// Largest message the pool carries: inline, or spread over buffers (at most
    /// [`MAX_FRAGMENTS`], all in flight at once).
    pub fn max_message_size(&self) -> usize {
        let fragments = (self.buffer_count as usize)
            .min(self.ring_slots as usize)
            .min(MAX_FRAGMENTS);
        (self.inline_size as usize).max(fragments * self.buffer_size as usize)
    }

    fn submit_ring(&self) -> Geometry {
        Geometry {
            section_align: self.section_align,
            ..Geometry::new(self.ring_slots, RECORD as u32 + self.inline_size)
        }
    }

    fn completion_ring(&self) -> Geometry {
        Geometry {
            section_align: self.section_align,
            ..Geometry::new(self.buffer_count.next_power_of_two(), WORD as u32)
        }
    }

    fn offsets(&self) -> Result<Offsets, PoolGeometryError> {
        let count = self.buffer_count;
        if count == 0 || count > MAX_BUFFERS {
            return Err(PoolGeometryError::BufferCount(count));
        }
        let size = self.buffer_size;
        if size == 0 || size > MAX_BUFFER_SIZE || !(size as usize).is_multiple_of(WORD) {
            return Err(PoolGeometryError::BufferSize(size));
        }
        if !(self.inline_size as usize).is_multiple_of(WORD)
            || self.inline_size > MAX_SLOT_SIZE - RECORD as u32
        {
            return Err(PoolGeometryError::InlineSize(self.inline_size));
        }
        let submit_size = self.submit_ring().ring_size()?;
        let completion_size = self.completion_ring().ring_size()?;
        let align = self.section_align as usize;
        let section = |bytes: usize| bytes.next_multiple_of(align);
        let submit = section(size_of::<PoolDescriptor>());
        let completion = submit + submit_size;
        let buffers = completion + completion_size;
        let area = (count as usize)
            .checked_mul(size as usize)
            .ok_or(PoolGeometryError::BufferSize(size))?;
        let total = section(area)
            .checked_add(buffers)
            .ok_or(PoolGeometryError::BufferSize(size))?;
        Ok(Offsets {
            submit,
            completion,
            buffers,
            size: total,
        })
    }
}

struct Offsets {
    submit: usize,
    completion: usize,
    buffers: usize,
    size: usize,
}

/// A pool geometry that cannot exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolGeometryError {
    /// Buffer count zero or above [`MAX_BUFFERS`].
    BufferCount(u32),
    /// Buffer size zero, above [`MAX_BUFFER_SIZE`], or not a multiple of 8.
    BufferSize(u32),
    /// Inline size not a multiple of 8, or too large for a ring slot.
    InlineSize(u32),
    /// One of the two rings is invalid (ring slots, section alignment).
    Ring(GeometryError),
}

impl From<GeometryError> for PoolGeometryError {
    fn from(e: GeometryError) -> Self {
        PoolGeometryError::Ring(e)
    }
}

impl fmt::Display for PoolGeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PoolGeometryError::BufferCount(n) => write!(
                f,
                "buffer count {n} is invalid: use 1 to {MAX_BUFFERS} buffers"
            ),
            PoolGeometryError::BufferSize(n) => write!(
                f,
                "buffer size {n} is invalid: use a multiple of 8 from 8 to {MAX_BUFFER_SIZE}"
            ),
            PoolGeometryError::InlineSize(n) => write!(
                f,
                "inline size {n} is invalid: use a multiple of 8 below {}",
                MAX_SLOT_SIZE as usize - RECORD
            ),
            PoolGeometryError::Ring(e) => write!(f, "pool ring: {e}"),
        }
    }
}

/// Why a pool could not be created or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// A region access failed.
    Access(AccessError),
    /// The geometry is invalid (asked for, or found in the descriptor).
    Geometry(PoolGeometryError),
    /// One of the pool's rings could not be created or attached.
    Ring(RingError),
    /// No descriptor yet: the pool was not created (or not yet).
    NotInitialized,
    /// The descriptor's magic is wrong: no pool lives at this offset.
    BadMagic {
        /// The word found.
        found: u64,
    },
    /// A derived descriptor field disagrees with the geometry it records.
    LayoutMismatch {
        /// Which field.
        field: &'static str,
        /// Value found.
        found: u64,
        /// Value the geometry implies.
        expected: u64,
    },
    /// The pool offset is not aligned to its section alignment.
    Misplaced {
        /// The pool offset.
        offset: usize,
        /// The required alignment.
        align: usize,
    },
    /// The pool does not fit in the region.
    DoesNotFit {
        /// The pool offset.
        offset: usize,
        /// The pool size.
        size: usize,
        /// The region size.
        region_len: usize,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PoolError::Access(e) => write!(f, "pool access failed: {e}"),
            PoolError::Geometry(e) => write!(f, "{e}"),
            PoolError::Ring(e) => write!(f, "pool ring: {e}"),
            PoolError::NotInitialized => {
                write!(
                    f,
                    "no pool has been created at this offset yet; create it first"
                )
            }
            PoolError::BadMagic { found } => write!(
                f,
                "no buffer pool at this offset: magic {found:#018x}, expected {POOL_MAGIC:#018x}"
            ),
            PoolError::LayoutMismatch {
                field,
                found,
                expected,
            } => write!(
                f,
                "pool descriptor field `{field}` is {found}, its geometry implies {expected}; \
                 the pool was written by an incompatible build or corrupted"
            ),
            PoolError::Misplaced { offset, align } => write!(
                f,
                "pool offset {offset:#x} is not a multiple of its section alignment {align:#x}"
            ),
            PoolError::DoesNotFit {
                offset,
                size,
                region_len,
            } => write!(
                f,
                "a {size}-byte pool at {offset:#x} does not fit the {region_len}-byte region; \
                 use a larger region or fewer/smaller buffers"
            ),
        }
    }
}

impl core::error::Error for PoolError {}

descriptor::impl_from_descriptor_error!(PoolError);

impl From<AccessError> for PoolError {
    fn from(e: AccessError) -> Self {
        PoolError::Access(e)
    }
}

impl From<PoolGeometryError> for PoolError {
    fn from(e: PoolGeometryError) -> Self {
        PoolError::Geometry(e)
    }
}

impl From<RingError> for PoolError {
    fn from(e: RingError) -> Self {
        PoolError::Ring(e)
    }
}

/// A validated pool layout: absolute offsets, read once and never re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLayout {
    offset: usize,
    geometry: PoolGeometry,
    submit: usize,
    completion: usize,
    buffers: usize,
    size: usize,
    message_type: MessageType,
}

impl PoolLayout {
    /// Formats a pool at `offset`: creates both rings, zeroes the buffers and writes
    /// the descriptor carrying `message_type`. Only the region's owner does this,
    /// before any endpoint attaches.
    pub fn create(
        region: &Region,
        offset: usize,
        geometry: PoolGeometry,
        message_type: MessageType,
    ) -> Result<Self, PoolError> {
        let o = geometry.offsets()?;
        let layout = PoolLayout::place(region, offset, geometry, &o, message_type)?;
        region.store(offset, 0, Ordering::Relaxed)?;
        RingLayout::create(region, layout.submit, geometry.submit_ring())?;
        RingLayout::create(region, layout.completion, geometry.completion_ring())?;
        region.zero(layout.buffers, offset + o.size - layout.buffers)?;
        let mut d = PoolDescriptor::new_zeroed();
        d.buffer_count.set(geometry.buffer_count);
        d.buffer_size.set(geometry.buffer_size);
        d.ring_slots.set(geometry.ring_slots);
        d.inline_size.set(geometry.inline_size);
        d.section_align.set(geometry.section_align);
        d.submit_offset.set(o.submit as u64);
        d.completion_offset.set(o.completion as u64);
        d.buffers_offset.set(o.buffers as u64);
        d.pool_size.set(o.size as u64);
        let [w0, w1] = message_type.to_wire();
        d.message_type[0].set(w0);
        d.message_type[1].set(w1);
        // An endpoint that sees the magic sees both rings.
        descriptor::publish(region, offset, POOL_MAGIC, &d)?;
        Ok(layout)
    }

    /// Reads and validates the descriptor of the pool at `offset`.
    pub fn read(region: &Region, offset: usize) -> Result<Self, PoolError> {
        let d: PoolDescriptor = descriptor::read(region, offset, POOL_MAGIC)?;
        let geometry = PoolGeometry {
            buffer_count: d.buffer_count.get(),
            buffer_size: d.buffer_size.get(),
            ring_slots: d.ring_slots.get(),
            inline_size: d.inline_size.get(),
            section_align: d.section_align.get(),
        };
        let o = geometry.offsets()?;
        expect("submit_offset", d.submit_offset.get(), o.submit)?;
        expect("completion_offset", d.completion_offset.get(), o.completion)?;
        expect("buffers_offset", d.buffers_offset.get(), o.buffers)?;
        expect("pool_size", d.pool_size.get(), o.size)?;
        let message_type =
            MessageType::from_wire([d.message_type[0].get(), d.message_type[1].get()]);
        PoolLayout::place(region, offset, geometry, &o, message_type)
    }

    fn place(
        region: &Region,
        offset: usize,
        geometry: PoolGeometry,
        o: &Offsets,
        message_type: MessageType,
    ) -> Result<Self, PoolError> {
        let align = geometry.section_align as usize;
        descriptor::check_place(region, offset, align, o.size)?;
        Ok(PoolLayout {
            offset,
            geometry,
            submit: offset + o.submit,
            completion: offset + o.completion,
            buffers: offset + o.buffers,
            size: o.size,
            message_type,
        })
    }

    /// The pool's geometry.
    pub fn geometry(&self) -> PoolGeometry {
        self.geometry
    }

    /// Offset of the pool in its region.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes the pool occupies.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The message type recorded by the creator.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// Region offset of the submission ring (sender to receiver).
    pub fn submit_ring(&self) -> usize {
        self.submit
    }

    /// Region offset of the completion ring (receiver to sender).
    pub fn completion_ring(&self) -> usize {
        self.completion
    }

    /// Region range of the buffer area (written only by the sender).
    pub fn buffer_area(&self) -> core::ops::Range<usize> {
        self.buffers..self.buffers + self.buffer_count() * self.buffer_size()
    }

    /// Number of buffers.
    pub fn buffer_count(&self) -> usize {
        self.geometry.buffer_count as usize
    }

    /// Bytes per buffer.
    pub fn buffer_size(&self) -> usize {
        self.geometry.buffer_size as usize
    }

    /// Region offset of buffer `index` (`index < buffer_count`).
    pub fn buffer(&self, index: usize) -> usize {
        self.buffers + index * self.buffer_size()
    }

    /// The buffer index a peer-supplied offset (relative to the buffer area) names,
    /// or `None` for an offset outside the pool or off a buffer boundary.
    pub fn index_of(&self, offset: u64) -> Option<usize> {
        let size = self.geometry.buffer_size as u64;
        let index = offset / size;
        (offset.is_multiple_of(size) && index < u64::from(self.geometry.buffer_count))
            .then_some(index as usize)
    }

    /// Largest message the pool carries (see [`PoolGeometry::max_message_size`]).
    pub fn max_message_size(&self) -> usize {
        self.geometry.max_message_size()
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn sections_are_page_aligned_and_round_trip() {
        let g = PoolGeometry::new(4, 4096);
        let size = g.pool_size().unwrap();
        let r = Region::new_heap(size + PAGE);
        let t = MessageType::bytes(77);
        let l = PoolLayout::create(&r, PAGE, g, t).unwrap();
        assert_eq!(l.submit_ring() % PAGE, 0);
        assert_eq!(l.completion_ring() % PAGE, 0);
        assert_eq!(l.buffer_area().start % PAGE, 0);
        assert_eq!(l.buffer_area().len(), 4 * 4096);
        assert_eq!(PoolLayout::read(&r, PAGE), Ok(l));
        assert_eq!(l.message_type(), t);
        assert_eq!(l.index_of(8192), Some(2));
        assert_eq!(l.index_of(8191), None);
        assert_eq!(l.index_of(4 * 4096), None);
        assert_eq!(l.index_of(u64::MAX), None);
    }

    #[test]
    fn bad_geometries_and_descriptors_are_refused() {
        for g in [
            PoolGeometry::new(0, 64),
            PoolGeometry::new(MAX_BUFFERS + 1, 64),
            PoolGeometry::new(4, 12),
            PoolGeometry::new(4, 0),
            PoolGeometry::new(4, 64).with_inline(5),
            PoolGeometry::new(4, 64).with_ring_slots(3),
        ] {
            assert!(g.pool_size().is_err(), "{g:?}");
        }
        let g = PoolGeometry::new(2, 64).compact();
        let r = Region::new_heap(g.pool_size().unwrap());
        assert_eq!(PoolLayout::read(&r, 0), Err(PoolError::NotInitialized));
        PoolLayout::create(&r, 0, g, MessageType::bytes(64)).unwrap();
        r.store(48, 1 << 40, Ordering::Relaxed).unwrap();
        assert!(matches!(
            PoolLayout::read(&r, 0),
            Err(PoolError::LayoutMismatch {
                field: "buffers_offset",
                ..
            })
        ));
        r.store(0, 9, Ordering::Relaxed).unwrap();
        assert_eq!(
            PoolLayout::read(&r, 0),
            Err(PoolError::BadMagic { found: 9 })
        );
        let small = Region::new_heap(1024);
        assert!(matches!(
            PoolLayout::create(&small, 0, g, MessageType::bytes(64)),
            Err(PoolError::DoesNotFit { .. })
        ));
    }
}
