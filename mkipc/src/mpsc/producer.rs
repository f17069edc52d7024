//! One producer of an MPSC channel: the single producer of its own lane.

use super::channel::{ChannelError, ChannelLayout, LANE_OPEN, open_state};
use crate::fault::Fault;
use crate::shm::Region;
use crate::spsc::{self, ProduceError, Reservation};
use crate::sync::Ordering;

/// A producer attached to one lane of an MPSC channel.
///
/// Everything it writes lies in its own lane's producer section, so it can
/// neither block nor corrupt another producer. Sending is the SPSC ring's:
/// [`Producer::reserve`] + [`Reservation::commit`] (zero-copy, batched) or
/// [`Producer::push`].
#[derive(Debug)]
pub struct Producer {
    region: Region,
    channel: ChannelLayout,
    lane: usize,
    epoch: u64,
    ring: spsc::Producer,
}

impl Producer {
    /// Attaches to lane `lane` of the channel at `offset`.
    ///
    /// Only one producer may use a lane at a time (the platform grants lanes);
    /// a lane whose previous producer was fenced is refused with
    /// [`ChannelError::LaneClosed`] until the consumer resets it.
    pub fn attach(region: Region, offset: usize, lane: usize) -> Result<Producer, ChannelError> {
        let channel = ChannelLayout::read(&region, offset)?;
        channel.check_lane(lane)?;
        // Acquire: pairs with the Release store of the lane state in
        // `Consumer::reset_lane` (and of the magic in `ChannelLayout::create`):
        // an open state means the lane's ring is freshly formatted.
        let state = region.load(channel.lane_state_word(lane), Ordering::Acquire)?;
        let epoch = state >> 1;
        if state & LANE_OPEN == 0 {
            return Err(ChannelError::LaneClosed { lane, epoch });
        }
        let lane_error = |error| ChannelError::Lane { lane, error };
        let ring = spsc::Producer::attach(region.clone(), channel.lane_offset(lane))
            .map_err(lane_error)?;
        let found = ring.layout().geometry();
        if found != channel.geometry().lane {
            return Err(ChannelError::LayoutMismatch {
                field: "lane slot_count",
                found: found.slot_count.into(),
                expected: channel.geometry().lane.slot_count.into(),
            });
        }
        Ok(Producer {
            region,
            channel,
            lane,
            epoch,
            ring,
        })
    }

    /// The lane this producer writes.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// The lane epoch this producer attached in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The channel's layout.
    pub fn channel(&self) -> &ChannelLayout {
        &self.channel
    }

    /// The lane's ring layout.
    pub fn lane_layout(&self) -> &spsc::RingLayout {
        self.ring.layout()
    }

    /// Payload capacity of one slot in bytes.
    pub fn slot_size(&self) -> usize {
        self.ring.slot_size()
    }

    /// Messages this producer's lane has published in its current epoch.
    pub fn published(&self) -> u64 {
        self.ring.published()
    }

    /// The latched fault, if the consumer broke this lane.
    pub fn fault(&self) -> Option<Fault> {
        self.ring.fault()
    }

    /// Slots free for writing, refreshing the consumer's index.
    pub fn free_slots(&mut self) -> Result<usize, ProduceError> {
        self.ring.free_slots()
    }

    /// Reserves up to `max` consecutive slots (at least one) of this lane for
    /// in-place writing; see [`spsc::Producer::reserve`].
    ///
    /// A producer that dies holding a reservation loses only those messages:
    /// they were never published, and the consumer discards them when it resets
    /// the lane.
    #[inline]
    pub fn reserve(&mut self, max: usize) -> Result<Reservation<'_>, ProduceError> {
        self.ring.reserve(max)
    }

    /// Copies `msg` into one slot and publishes it.
    #[inline]
    pub fn push(&mut self, msg: &[u8]) -> Result<(), ProduceError> {
        self.ring.push(msg)
    }

    /// Whether the lane is still open in the epoch this producer attached in
    /// (false once the consumer fenced or reset it: this producer was declared
    /// dead and must stop and re-attach).
    pub fn is_current(&self) -> bool {
        // Acquire: pairs with the Release stores of the lane state in
        // `Consumer::fence_lane` and `Consumer::reset_lane`.
        self.region
            .load(self.channel.lane_state_word(self.lane), Ordering::Acquire)
            .is_ok_and(|state| state == open_state(self.epoch))
    }

    /// Reads the consumer's channel-wide `need_wakeup` word (non-zero: ring the
    /// consumer's doorbell after publishing).
    ///
    /// SeqCst: pairs with the SeqCst store in [`super::Consumer::set_need_wakeup`].
    /// A doorbell protocol must put a full fence between its publish and this
    /// load (the consumer one between its store and its re-check), see DESIGN.md.
    pub fn needs_wakeup(&self) -> bool {
        self.region
            .load(self.channel.need_wakeup_word(), Ordering::SeqCst)
            .is_ok_and(|flag| flag != 0)
    }
}
