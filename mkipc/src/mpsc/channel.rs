//! Channel geometry: where the descriptor, the consumer's control words and every
//! lane of an MPSC channel live, and their validation.
//!
//! ```text
//!  channel offset (section-aligned)
//!  +0               MpscDescriptor (creator writes once; both ends validate)
//!  +control_offset  MpscControl: need_wakeup, faults, faulted_lanes,   (consumer writes)
//!                   lane_state[64]
//!  +lanes_offset    lane 0: an SPSC ring (its own descriptor, consumer and
//!                   producer sections)
//!  + lane_stride    lane 1 ...
//! ```

use core::fmt;
use core::mem::{offset_of, size_of};

use zerocopy::FromZeros;

use crate::descriptor::{self, expect};
use crate::layout::{MAX_LANES, MPSC_MAGIC, MpscControl, MpscDescriptor};
use crate::shm::{AccessError, Region, WORD};
use crate::spsc::{self, RingError, RingLayout};
use crate::sync::Ordering;

/// Bit 0 of a lane state word: the lane is open to its producer.
pub(crate) const LANE_OPEN: u64 = 1;

/// The state word of an open lane in `epoch`.
#[inline]
pub(crate) fn open_state(epoch: u64) -> u64 {
    (epoch << 1) | LANE_OPEN
}

/// The state word of a closed (fenced, not yet reset) lane in `epoch`.
#[inline]
pub(crate) fn closed_state(epoch: u64) -> u64 {
    epoch << 1
}

/// The shape of an MPSC channel: how many producer lanes, and each lane's ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Number of producer lanes: 1 ..= 64.
    pub lanes: u32,
    /// The SPSC ring geometry every lane has (its section alignment is also the
    /// channel's).
    pub lane: spsc::Geometry,
}

impl Geometry {
    /// `lanes` lanes of `slot_count` slots of `slot_size` bytes, page-aligned sections.
    pub const fn new(lanes: u32, slot_count: u32, slot_size: u32) -> Geometry {
        Geometry {
            lanes,
            lane: spsc::Geometry::new(slot_count, slot_size),
        }
    }

    /// The same geometry with cache-line-aligned sections (smaller, but the
    /// sections cannot be protected separately).
    pub const fn compact(self) -> Geometry {
        Geometry {
            lane: self.lane.compact(),
            ..self
        }
    }

    /// Bytes the channel occupies in a region.
    pub fn channel_size(&self) -> Result<usize, GeometryError> {
        Ok(self.offsets()?.size)
    }

    fn offsets(&self) -> Result<Offsets, GeometryError> {
        if self.lanes == 0 || self.lanes as usize > MAX_LANES {
            return Err(GeometryError::LaneCount(self.lanes));
        }
        let stride = self.lane.ring_size().map_err(GeometryError::Lane)?;
        let align = self.lane.section_align as usize;
        let section = |bytes: usize| bytes.next_multiple_of(align);
        let control = section(size_of::<MpscDescriptor>());
        let lanes = control + section(size_of::<MpscControl>());
        let size = stride
            .checked_mul(self.lanes as usize)
            .and_then(|b| b.checked_add(lanes))
            .ok_or(GeometryError::TooLarge)?;
        Ok(Offsets {
            control,
            lanes,
            stride,
            size,
        })
    }
}

struct Offsets {
    control: usize,
    lanes: usize,
    stride: usize,
    size: usize,
}

/// A geometry no MPSC channel may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryError {
    /// Lane count zero or above 64.
    LaneCount(u32),
    /// The lane geometry is not a valid SPSC ring geometry.
    Lane(spsc::GeometryError),
    /// The channel's size overflows the address space.
    TooLarge,
}

impl fmt::Display for GeometryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GeometryError::LaneCount(n) => write!(
                f,
                "lane count {n} is invalid: use 1 to {MAX_LANES} producer lanes"
            ),
            GeometryError::Lane(e) => write!(f, "lane geometry: {e}"),
            GeometryError::TooLarge => {
                write!(f, "the channel is too large for this address space")
            }
        }
    }
}

/// Why an MPSC channel could not be created or attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// A region access failed.
    Access(AccessError),
    /// The geometry is invalid (asked for, or found in the descriptor).
    Geometry(GeometryError),
    /// No descriptor yet: the channel was not created (or not yet).
    NotInitialized,
    /// The descriptor's magic is wrong: no MPSC channel lives at this offset.
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
    /// The channel offset is not aligned to its section alignment.
    Misplaced {
        /// The channel offset.
        offset: usize,
        /// The required alignment.
        align: usize,
    },
    /// The channel does not fit in the region.
    DoesNotFit {
        /// The channel offset.
        offset: usize,
        /// The channel size.
        size: usize,
        /// The region size.
        region_len: usize,
    },
    /// A lane's SPSC ring could not be created or attached.
    Lane {
        /// The lane.
        lane: usize,
        /// What went wrong.
        error: RingError,
    },
    /// The lane index is not below the channel's lane count.
    NoSuchLane {
        /// The lane asked for.
        lane: usize,
        /// The channel's lane count.
        lanes: usize,
    },
    /// The lane is closed: its previous producer was fenced and the consumer has
    /// not reset the lane yet.
    LaneClosed {
        /// The lane.
        lane: usize,
        /// The lane's current epoch.
        epoch: u64,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ChannelError::Access(e) => write!(f, "channel access failed: {e}"),
            ChannelError::Geometry(e) => write!(f, "{e}"),
            ChannelError::NotInitialized => write!(
                f,
                "no MPSC channel has been created at this offset yet; create it first"
            ),
            ChannelError::BadMagic { found } => write!(
                f,
                "no MPSC channel at this offset: magic {found:#018x}, expected {MPSC_MAGIC:#018x}"
            ),
            ChannelError::LayoutMismatch {
                field,
                found,
                expected,
            } => write!(
                f,
                "channel descriptor field `{field}` is {found}, its geometry implies \
                 {expected}; the channel was written by an incompatible build or corrupted"
            ),
            ChannelError::Misplaced { offset, align } => write!(
                f,
                "channel offset {offset:#x} is not a multiple of its section alignment {align:#x}"
            ),
            ChannelError::DoesNotFit {
                offset,
                size,
                region_len,
            } => write!(
                f,
                "a {size}-byte channel at {offset:#x} does not fit the {region_len}-byte \
                 region; use a larger region, fewer lanes or smaller lanes"
            ),
            ChannelError::Lane { lane, error } => write!(f, "lane {lane}: {error}"),
            ChannelError::NoSuchLane { lane, lanes } => write!(
                f,
                "lane {lane} does not exist: the channel has lanes 0 to {}",
                lanes - 1
            ),
            ChannelError::LaneClosed { lane, epoch } => write!(
                f,
                "lane {lane} is closed (epoch {epoch}): its previous producer was fenced; \
                 attach again after the consumer resets the lane"
            ),
        }
    }
}

impl core::error::Error for ChannelError {}

descriptor::impl_from_descriptor_error!(ChannelError);

impl From<AccessError> for ChannelError {
    fn from(e: AccessError) -> Self {
        ChannelError::Access(e)
    }
}

impl From<GeometryError> for ChannelError {
    fn from(e: GeometryError) -> Self {
        ChannelError::Geometry(e)
    }
}

/// A validated channel layout: absolute offsets of the channel's words and lanes.
///
/// Built once from the descriptor and never re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLayout {
    offset: usize,
    geometry: Geometry,
    control: usize,
    lanes: usize,
    stride: usize,
    size: usize,
}

impl ChannelLayout {
    /// Formats a channel at `offset`: zeroes it, creates every lane, opens every
    /// lane in epoch 0 and writes the descriptor.
    ///
    /// Only the region's owner (or the consumer) does this, before anyone attaches.
    pub fn create(
        region: &Region,
        offset: usize,
        geometry: Geometry,
    ) -> Result<ChannelLayout, ChannelError> {
        let o = geometry.offsets()?;
        let layout = ChannelLayout::place(region, offset, geometry, &o)?;
        region.store(offset, 0, Ordering::Relaxed)?;
        region.zero(offset + WORD, o.lanes - WORD)?;
        for lane in 0..layout.lane_count() {
            RingLayout::create(region, layout.lane_offset(lane), geometry.lane)
                .map_err(|error| ChannelError::Lane { lane, error })?;
            // Relaxed: published by the Release store of the magic below.
            region.store(
                layout.lane_state_word(lane),
                open_state(0),
                Ordering::Relaxed,
            )?;
        }
        let mut d = MpscDescriptor::new_zeroed();
        d.lane_count.set(geometry.lanes);
        d.section_align.set(geometry.lane.section_align);
        d.slot_count.set(geometry.lane.slot_count);
        d.slot_size.set(geometry.lane.slot_size);
        d.control_offset.set(o.control as u64);
        d.lanes_offset.set(o.lanes as u64);
        d.lane_stride.set(o.stride as u64);
        d.channel_size.set(o.size as u64);
        // An endpoint that sees the magic sees the lanes and their open states.
        descriptor::publish(region, offset, MPSC_MAGIC, &d)?;
        Ok(layout)
    }

    /// Reads and validates the descriptor of the channel at `offset`.
    pub fn read(region: &Region, offset: usize) -> Result<ChannelLayout, ChannelError> {
        let d: MpscDescriptor = descriptor::read(region, offset, MPSC_MAGIC)?;
        let geometry = Geometry {
            lanes: d.lane_count.get(),
            // Lanes use the default slot alignment (round trips prefer it).
            lane: spsc::Geometry {
                section_align: d.section_align.get(),
                ..spsc::Geometry::new(d.slot_count.get(), d.slot_size.get())
            },
        };
        let o = geometry.offsets()?;
        expect("control_offset", d.control_offset.get(), o.control)?;
        expect("lanes_offset", d.lanes_offset.get(), o.lanes)?;
        expect("lane_stride", d.lane_stride.get(), o.stride)?;
        expect("channel_size", d.channel_size.get(), o.size)?;
        ChannelLayout::place(region, offset, geometry, &o)
    }

    fn place(
        region: &Region,
        offset: usize,
        geometry: Geometry,
        o: &Offsets,
    ) -> Result<ChannelLayout, ChannelError> {
        let align = geometry.lane.section_align as usize;
        descriptor::check_place(region, offset, align, o.size)?;
        Ok(ChannelLayout {
            offset,
            geometry,
            control: offset + o.control,
            lanes: offset + o.lanes,
            stride: o.stride,
            size: o.size,
        })
    }

    /// The channel's geometry.
    #[inline]
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Offset of the channel in its region.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes the channel occupies.
    #[inline]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of producer lanes.
    #[inline]
    pub fn lane_count(&self) -> usize {
        self.geometry.lanes as usize
    }

    /// Region offset of lane `lane`'s SPSC ring (`lane < lane_count()`).
    #[inline]
    pub fn lane_offset(&self, lane: usize) -> usize {
        self.lanes + lane * self.stride
    }

    /// Region range of lane `lane`'s SPSC ring.
    #[inline]
    pub fn lane_range(&self, lane: usize) -> core::ops::Range<usize> {
        let at = self.lane_offset(lane);
        at..at + self.stride
    }

    /// Region range written only by the consumer (channel-wide words, lane states).
    #[inline]
    pub fn control_section(&self) -> core::ops::Range<usize> {
        self.control..self.lanes
    }

    /// The consumer's channel-wide "wake me" flag.
    #[inline]
    pub fn need_wakeup_word(&self) -> usize {
        self.control + offset_of!(MpscControl, need_wakeup)
    }

    /// The consumer's published count of lane faults.
    #[inline]
    pub fn faults_word(&self) -> usize {
        self.control + offset_of!(MpscControl, faults)
    }

    /// The consumer's published mask of faulted lanes.
    #[inline]
    pub fn faulted_lanes_word(&self) -> usize {
        self.control + offset_of!(MpscControl, faulted_lanes)
    }

    /// The state word of lane `lane` (`epoch << 1 | open`).
    #[inline]
    pub fn lane_state_word(&self, lane: usize) -> usize {
        self.control + offset_of!(MpscControl, lane_state) + lane * WORD
    }

    /// Checks `lane < lane_count()`.
    pub(crate) fn check_lane(&self, lane: usize) -> Result<(), ChannelError> {
        if lane < self.lane_count() {
            Ok(())
        } else {
            Err(ChannelError::NoSuchLane {
                lane,
                lanes: self.lane_count(),
            })
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::layout::PAGE;

    #[test]
    fn sections_are_page_aligned_and_lanes_follow() {
        let g = Geometry::new(3, 16, 48);
        let size = g.channel_size().unwrap();
        let r = Region::new_heap(size + PAGE);
        let l = ChannelLayout::create(&r, PAGE, g).unwrap();
        assert_eq!(l.control_section(), 2 * PAGE..3 * PAGE);
        assert_eq!(l.lane_offset(0), 3 * PAGE);
        let ring = g.lane.ring_size().unwrap();
        assert_eq!(l.lane_range(2), 3 * PAGE + 2 * ring..3 * PAGE + 3 * ring);
        assert_eq!(l.size(), size);
        assert_eq!(ChannelLayout::read(&r, PAGE), Ok(l));
        for lane in 0..3 {
            assert_eq!(
                RingLayout::read(&r, l.lane_offset(lane))
                    .unwrap()
                    .capacity(),
                16
            );
            assert_eq!(
                r.load(l.lane_state_word(lane), Ordering::Relaxed),
                Ok(open_state(0))
            );
        }
    }

    #[test]
    fn bad_geometries_and_placements_are_refused() {
        assert_eq!(
            Geometry::new(0, 4, 8).channel_size(),
            Err(GeometryError::LaneCount(0))
        );
        assert_eq!(
            Geometry::new(65, 4, 8).channel_size(),
            Err(GeometryError::LaneCount(65))
        );
        assert!(matches!(
            Geometry::new(2, 3, 8).channel_size(),
            Err(GeometryError::Lane(_))
        ));
        let g = Geometry::new(2, 4, 8).compact();
        let r = Region::new_heap(g.channel_size().unwrap());
        assert!(matches!(
            ChannelLayout::create(&r, 128, g),
            Err(ChannelError::DoesNotFit { .. })
        ));
        assert!(matches!(
            ChannelLayout::create(&r, 64, g),
            Err(ChannelError::Misplaced { .. })
        ));
        assert_eq!(
            ChannelLayout::read(&r, 0),
            Err(ChannelError::NotInitialized)
        );
    }

    #[test]
    fn tampered_descriptors_are_refused() {
        let g = Geometry::new(2, 4, 8).compact();
        let r = Region::new_heap(g.channel_size().unwrap());
        ChannelLayout::create(&r, 0, g).unwrap();
        let stride_at = offset_of!(MpscDescriptor, lane_stride);
        r.store(stride_at, 1 << 40, Ordering::Relaxed).unwrap();
        assert!(matches!(
            ChannelLayout::read(&r, 0),
            Err(ChannelError::LayoutMismatch {
                field: "lane_stride",
                ..
            })
        ));
        ChannelLayout::create(&r, 0, g).unwrap();
        r.store(8, 99 | (128 << 32), Ordering::Relaxed).unwrap();
        assert_eq!(
            ChannelLayout::read(&r, 0),
            Err(ChannelError::Geometry(GeometryError::LaneCount(99)))
        );
        r.store(0, 7, Ordering::Relaxed).unwrap();
        assert_eq!(
            ChannelLayout::read(&r, 0),
            Err(ChannelError::BadMagic { found: 7 })
        );
    }
}
