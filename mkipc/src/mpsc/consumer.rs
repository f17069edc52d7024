//! The single consumer of an MPSC channel: serves the lanes round-robin, latches
//! a hostile lane's fault without stopping the others, and recovers the lane of a
//! fenced (dead) producer.

use core::fmt;

use super::channel::{ChannelError, ChannelLayout, LANE_OPEN, closed_state, open_state};
use crate::fault::Fault;
use crate::layout::MAX_LANES;
use crate::shm::Region;
use crate::spsc::{self, ConsumeError, ReadBatch, RingError, RingLayout, SlotView};
use crate::sync::Ordering;

/// Messages [`Consumer::pop`] takes from one lane before it moves on to the next
/// (a busy producer cannot starve the others).
pub const QUANTUM: u32 = 32;

/// Why the consumer could not receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// No lane has a published message.
    Empty,
    /// The caller's buffer is shorter than the next message of `lane` (which
    /// stays queued).
    BufferTooSmall {
        /// The lane holding the message.
        lane: usize,
        /// Length of the message.
        needed: usize,
    },
    /// The producer of `lane` corrupted its lane. Reported once, when detected:
    /// the lane is latched faulted and skipped from then on; the other lanes keep
    /// flowing. Fence its producer and [`Consumer::reset_lane`] to reuse it.
    LaneBroken {
        /// The faulted lane (the producer's identity).
        lane: usize,
        /// What the producer did wrong.
        fault: Fault,
    },
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "no producer has a message waiting"),
            RecvError::BufferTooSmall { lane, needed } => write!(
                f,
                "buffer too small: the next message of lane {lane} has {needed} bytes"
            ),
            RecvError::LaneBroken { lane, fault } => write!(
                f,
                "the producer of lane {lane} broke its lane ({fault}); the lane is skipped \
                 until its producer is fenced and the lane reset"
            ),
        }
    }
}

impl core::error::Error for RecvError {}

/// Why a lane could not be fenced or reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneError {
    /// The lane index is not below the channel's lane count.
    NoSuchLane {
        /// The lane asked for.
        lane: usize,
        /// The channel's lane count.
        lanes: usize,
    },
    /// Reset refused: the platform has not declared the lane's producer dead
    /// ([`Consumer::fence_lane`]); resetting under a live producer would lose its
    /// messages.
    NotFenced {
        /// The lane.
        lane: usize,
    },
    /// Reset refused: the lane still holds committed messages; receive them first.
    NotDrained {
        /// The lane.
        lane: usize,
    },
    /// Formatting the lane's ring again failed.
    Ring {
        /// The lane.
        lane: usize,
        /// What went wrong.
        error: RingError,
    },
    /// Publishing the lane's state failed (the control words lie outside the region).
    Access(crate::shm::AccessError),
}

impl fmt::Display for LaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LaneError::NoSuchLane { lane, lanes } => write!(
                f,
                "lane {lane} does not exist: the channel has lanes 0 to {}",
                lanes - 1
            ),
            LaneError::NotFenced { lane } => write!(
                f,
                "lane {lane} cannot be reset while its producer may be alive; fence it first"
            ),
            LaneError::NotDrained { lane } => write!(
                f,
                "lane {lane} still holds committed messages; receive them before the reset"
            ),
            LaneError::Ring { lane, error } => write!(f, "resetting lane {lane}: {error}"),
            LaneError::Access(e) => write!(f, "publishing a lane state failed: {e}"),
        }
    }
}

impl core::error::Error for LaneError {}

/// Where a lane stands, as the consumer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneStatus {
    /// Open to its producer in `epoch`.
    Open {
        /// The lane's epoch.
        epoch: u64,
    },
    /// Its producer was fenced; the consumer still delivers what it committed.
    Draining {
        /// The lane's epoch.
        epoch: u64,
    },
    /// Latched faulted: skipped until fenced and reset.
    Faulted {
        /// The lane's epoch.
        epoch: u64,
        /// The first fault detected.
        fault: Fault,
    },
}

/// A message copied out by [`Consumer::pop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The lane (producer) it came from.
    pub lane: usize,
    /// Its length in bytes.
    pub len: usize,
}

/// The single consumer of an MPSC channel.
#[derive(Debug)]
pub struct Consumer {
    region: Region,
    channel: ChannelLayout,
    /// The consuming end of each lane's ring (`None` past the lane count, or for a
    /// lane whose ring no longer validates).
    lanes: [Option<spsc::Consumer>; MAX_LANES],
    /// Lanes the sweep visits: open or draining, not faulted.
    serving: u64,
    /// Lanes whose producer was declared dead (closed, draining or awaiting reset).
    fenced: u64,
    /// Lanes latched faulted.
    faulted: u64,
    lane_faults: [Option<Fault>; MAX_LANES],
    epochs: [u64; MAX_LANES],
    fault_count: u64,
    /// Next lane to serve.
    cursor: usize,
    /// Messages [`Consumer::pop`] took from the cursor lane in this turn.
    turn: u32,
}

#[inline]
fn bit(lane: usize) -> u64 {
    1 << lane
}

impl Consumer {
    /// Attaches to the channel at `offset`, resuming every lane from its
    /// released position.
    ///
    /// A lane whose ring descriptor no longer validates is latched faulted
    /// ([`Fault::BadDescriptor`]) instead of refusing the whole channel.
    pub fn attach(region: Region, offset: usize) -> Result<Consumer, ChannelError> {
        let channel = ChannelLayout::read(&region, offset)?;
        let mut consumer = Consumer {
            region: region.clone(),
            channel,
            lanes: core::array::from_fn(|_| None),
            serving: 0,
            fenced: 0,
            faulted: 0,
            lane_faults: [None; MAX_LANES],
            epochs: [0; MAX_LANES],
            fault_count: 0,
            cursor: 0,
            turn: 0,
        };
        for lane in 0..channel.lane_count() {
            // Relaxed: our own word, written only by the consumer.
            let state = region.load(channel.lane_state_word(lane), Ordering::Relaxed)?;
            consumer.epochs[lane] = state >> 1;
            if state & LANE_OPEN == 0 {
                consumer.fenced |= bit(lane);
            }
            match spsc::Consumer::attach(region.clone(), channel.lane_offset(lane)) {
                Ok(ring) if ring.layout().geometry() == channel.geometry().lane => {
                    consumer.lanes[lane] = Some(ring);
                    consumer.serving |= bit(lane);
                }
                _ => {
                    consumer.latch(lane, Fault::BadDescriptor);
                }
            }
        }
        Ok(consumer)
    }

    /// The channel's layout.
    pub fn channel(&self) -> &ChannelLayout {
        &self.channel
    }

    /// Number of producer lanes.
    pub fn lane_count(&self) -> usize {
        self.channel.lane_count()
    }

    /// Up to `max` published messages (at least one) of the next lane that has
    /// any, to read in place and release.
    ///
    /// Lanes are served round-robin, one batch per lane per call, so every
    /// producer with messages waiting is served within one sweep of the lanes.
    #[inline]
    pub fn peek(&mut self, max: usize) -> Result<LaneBatch<'_>, RecvError> {
        let lane = self.next_ready()?;
        self.cursor = self.after(lane);
        self.turn = 0;
        let Some(ring) = self.lanes[lane].as_mut() else {
            return Err(RecvError::Empty);
        };
        // A lane that turns empty or faulty between the probe and here (only a
        // hostile producer can do that) reads as empty now; its ring latched
        // any fault, which the next sweep reports.
        match ring.peek(max) {
            Ok(batch) => Ok(LaneBatch { lane, batch }),
            Err(_) => Err(RecvError::Empty),
        }
    }

    /// Copies the next message into `buf` and releases it.
    ///
    /// Takes up to [`QUANTUM`] messages from one lane in a row, then moves on.
    pub fn pop(&mut self, buf: &mut [u8]) -> Result<Received, RecvError> {
        if self.turn >= QUANTUM {
            self.cursor = self.after(self.cursor);
            self.turn = 0;
        }
        let start = self.cursor;
        for lane in self.rotation() {
            let Some(ring) = self.lanes[lane].as_mut() else {
                continue;
            };
            match ring.pop(buf) {
                Ok(len) => {
                    if lane != start {
                        self.cursor = lane;
                        self.turn = 0;
                    }
                    self.turn += 1;
                    return Ok(Received { lane, len });
                }
                Err(ConsumeError::Empty) => {}
                Err(ConsumeError::BufferTooSmall { needed }) => {
                    return Err(RecvError::BufferTooSmall { lane, needed });
                }
                Err(ConsumeError::Broken(fault)) => {
                    self.cursor = self.after(lane);
                    self.turn = 0;
                    let fault = self.latch(lane, fault);
                    return Err(RecvError::LaneBroken { lane, fault });
                }
            }
        }
        Err(RecvError::Empty)
    }

    /// Lanes with at least one published message (bit `i` for lane `i`), in one
    /// sweep. A lane that reads as corrupt counts as pending, so that a caller
    /// about to sleep receives (and is told of) the fault first.
    ///
    /// This is the re-check a need-wakeup protocol makes after setting
    /// [`Consumer::set_need_wakeup`].
    pub fn pending(&mut self) -> u64 {
        let mut mask = 0;
        for lane in self.rotation() {
            if let Some(ring) = self.lanes[lane].as_mut()
                && !matches!(ring.peek(1), Err(ConsumeError::Empty))
            {
                mask |= bit(lane);
            }
        }
        mask
    }

    /// Sets or clears the channel-wide `need_wakeup` word, the consumer's
    /// request that the next producer to publish rings its doorbell.
    ///
    /// SeqCst: pairs with the SeqCst load in [`super::Producer::needs_wakeup`].
    /// The doorbell protocol (a full fence, then [`Consumer::pending`], before
    /// sleeping) lives with the doorbells, see DESIGN.md.
    pub fn set_need_wakeup(&self, wanted: bool) {
        // Our own word; the layout was checked at attach, so the store lands.
        let _ = self.region.store(
            self.channel.need_wakeup_word(),
            u64::from(wanted),
            Ordering::SeqCst,
        );
    }

    /// The platform declares lane `lane`'s producer dead **and fenced** (it can no
    /// longer write the lane). Closes the lane to attaches; the consumer keeps
    /// delivering every message the producer committed until the lane is empty,
    /// then [`Consumer::reset_lane`] reopens it. Idempotent.
    pub fn fence_lane(&mut self, lane: usize) -> Result<(), LaneError> {
        self.check_lane(lane)?;
        self.fenced |= bit(lane);
        // Release: pairs with the Acquire loads of the lane state in
        // `Producer::attach` and `Producer::is_current`.
        self.region
            .store(
                self.channel.lane_state_word(lane),
                closed_state(self.epochs[lane]),
                Ordering::Release,
            )
            .map_err(LaneError::Access)
    }

    /// Whether lane `lane` holds no committed message (a faulted lane counts as
    /// drained: what is left in it is not trusted).
    pub fn is_drained(&mut self, lane: usize) -> Result<bool, LaneError> {
        self.check_lane(lane)?;
        if self.faulted & bit(lane) != 0 {
            return Ok(true);
        }
        Ok(match self.lanes[lane].as_mut() {
            Some(ring) => match ring.peek(1) {
                Ok(_) => false,
                Err(ConsumeError::Empty) => true,
                Err(ConsumeError::Broken(fault)) => {
                    self.latch(lane, fault);
                    true
                }
                Err(ConsumeError::BufferTooSmall { .. }) => false,
            },
            None => true,
        })
    }

    /// Resets the lane of a fenced producer once it is drained: formats its ring
    /// again (a reserved but never committed message is discarded with it),
    /// clears any latched fault, and reopens it in the next epoch so a restarted
    /// producer can attach. Returns the new epoch.
    pub fn reset_lane(&mut self, lane: usize) -> Result<u64, LaneError> {
        self.check_lane(lane)?;
        if self.fenced & bit(lane) == 0 {
            return Err(LaneError::NotFenced { lane });
        }
        if !self.is_drained(lane)? {
            return Err(LaneError::NotDrained { lane });
        }
        let at = self.channel.lane_offset(lane);
        let ring_error = |error| LaneError::Ring { lane, error };
        RingLayout::create(&self.region, at, self.channel.geometry().lane).map_err(ring_error)?;
        let ring = spsc::Consumer::attach(self.region.clone(), at).map_err(ring_error)?;
        self.lanes[lane] = Some(ring);
        self.epochs[lane] += 1;
        self.fenced &= !bit(lane);
        self.faulted &= !bit(lane);
        self.lane_faults[lane] = None;
        self.serving |= bit(lane);
        self.publish_faults();
        // Release: pairs with the Acquire load of the lane state in
        // `Producer::attach`: a producer that sees the lane open sees the
        // freshly formatted ring (whose magic `RingLayout::create` also
        // published with Release).
        self.region
            .store(
                self.channel.lane_state_word(lane),
                open_state(self.epochs[lane]),
                Ordering::Release,
            )
            .map_err(LaneError::Access)?;
        Ok(self.epochs[lane])
    }

    /// Where lane `lane` stands.
    pub fn lane_status(&self, lane: usize) -> Result<LaneStatus, LaneError> {
        self.check_lane(lane)?;
        let epoch = self.epochs[lane];
        Ok(match self.lane_faults[lane] {
            Some(fault) if self.faulted & bit(lane) != 0 => LaneStatus::Faulted { epoch, fault },
            _ if self.fenced & bit(lane) != 0 => LaneStatus::Draining { epoch },
            _ => LaneStatus::Open { epoch },
        })
    }

    /// The fault latched for lane `lane`, if its producer broke it.
    pub fn lane_fault(&self, lane: usize) -> Option<Fault> {
        self.lane_faults.get(lane).copied().flatten()
    }

    /// Bit `i` set: lane `i` is latched faulted.
    pub fn faulted_lanes(&self) -> u64 {
        self.faulted
    }

    /// Lane faults detected since attach, all lanes.
    pub fn fault_count(&self) -> u64 {
        self.fault_count
    }

    /// Messages released on lane `lane` in its current epoch.
    pub fn released(&self, lane: usize) -> u64 {
        self.lanes
            .get(lane)
            .and_then(Option::as_ref)
            .map_or(0, spsc::Consumer::released)
    }

    fn check_lane(&self, lane: usize) -> Result<(), LaneError> {
        self.channel
            .check_lane(lane)
            .map_err(|_| LaneError::NoSuchLane {
                lane,
                lanes: self.lane_count(),
            })
    }

    /// The lane after `lane`, wrapping.
    #[inline]
    fn after(&self, lane: usize) -> usize {
        let next = lane + 1;
        if next >= self.lane_count() { 0 } else { next }
    }

    /// The served lanes, starting at the cursor and wrapping once.
    #[inline]
    fn rotation(&self) -> Rotation {
        let below = bit(self.cursor) - 1;
        Rotation {
            first: self.serving & !below,
            then: self.serving & below,
        }
    }

    /// The first lane in rotation order with a published message.
    #[inline]
    fn next_ready(&mut self) -> Result<usize, RecvError> {
        for lane in self.rotation() {
            let Some(ring) = self.lanes[lane].as_mut() else {
                continue;
            };
            match ring.peek(1) {
                Ok(_) => return Ok(lane),
                Err(ConsumeError::Broken(fault)) => {
                    self.cursor = self.after(lane);
                    let fault = self.latch(lane, fault);
                    return Err(RecvError::LaneBroken { lane, fault });
                }
                Err(_) => {}
            }
        }
        Err(RecvError::Empty)
    }

    /// Latches `fault` for `lane` (the first one stays), stops serving the lane,
    /// counts the fault and publishes the counters in our own section.
    fn latch(&mut self, lane: usize, fault: Fault) -> Fault {
        self.fault_count += 1;
        self.faulted |= bit(lane);
        self.serving &= !bit(lane);
        let fault = *self.lane_faults[lane].get_or_insert(fault);
        self.publish_faults();
        fault
    }

    fn publish_faults(&self) {
        // Relaxed: statistics for observers; nothing is ordered by them.
        let _ = self.region.store(
            self.channel.faults_word(),
            self.fault_count,
            Ordering::Relaxed,
        );
        let _ = self.region.store(
            self.channel.faulted_lanes_word(),
            self.faulted,
            Ordering::Relaxed,
        );
    }
}

/// Set bits of two masks, lowest first: the lanes from the cursor up, then the
/// lanes below it.
struct Rotation {
    first: u64,
    then: u64,
}

impl Iterator for Rotation {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.first == 0 {
            core::mem::swap(&mut self.first, &mut self.then);
        }
        if self.first == 0 {
            return None;
        }
        let lane = self.first.trailing_zeros() as usize;
        self.first &= self.first - 1;
        Some(lane)
    }
}

/// Published messages of one lane, lent to the consumer until
/// [`LaneBatch::release`].
#[derive(Debug)]
pub struct LaneBatch<'a> {
    lane: usize,
    batch: ReadBatch<'a>,
}

impl LaneBatch<'_> {
    /// The lane (producer) the messages came from.
    pub fn lane(&self) -> usize {
        self.lane
    }

    /// Number of messages in the batch.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Always false: a batch holds at least one message.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// A view of the `index`-th message; see [`ReadBatch::get`]. A corrupt length
    /// latches the lane's fault, which the next [`Consumer::peek`] reports.
    ///
    /// # Panics
    ///
    /// If `index >= self.len()` (a caller bug, never caused by a producer).
    #[inline]
    pub fn get(&mut self, index: usize) -> Result<SlotView<'_>, ConsumeError> {
        self.batch.get(index)
    }

    /// Hands the first `count` messages (at most `len()`) back to the producer.
    #[inline]
    pub fn release(self, count: usize) -> usize {
        self.batch.release(count)
    }
}
