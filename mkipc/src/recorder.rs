//! Flight recorder: each channel end keeps a small ring of its recent events
//! (connect, accept, fault, reset, epoch change, close) in its own node section, so
//! they stay readable after that node crashes.
//!
//! One writer per recorder (the end's owner). An event is a little seqlock: the
//! writer clears `seq`, writes the fields, then stores `seq = index + 1`; a reader
//! keeps an event only if it finds the same, expected `seq` before and after
//! reading the fields, so a torn or overwritten event is skipped, never misreported.

use core::fmt;
use core::mem::{offset_of, size_of};

use crate::manifest::wire::{EndControl, EventRecord, RECORDER_LEN};
use crate::shm::{AccessError, Region};
use crate::sync::Ordering;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// This end offered a connection (value: its feature bits).
    Offer,
    /// The connection was accepted (value: the agreed feature bits).
    Connect,
    /// A peer wrote something invalid (value: this end's fault count).
    Fault,
    /// The peer was declared dead (value: its epoch).
    PeerDead,
    /// This end reclaimed and reset the channel after its peer died (value: the
    /// position the next incarnation resumes at).
    Reset,
    /// The peer's epoch changed (value: the new epoch).
    EpochChange,
    /// This end closed the channel (value: messages it sent or received).
    Close,
    /// The peer closed the channel.
    PeerClose,
    /// A kind this build does not know (from a newer peer).
    Other(u32),
}

impl EventKind {
    const fn to_wire(self) -> u32 {
        match self {
            EventKind::Offer => 1,
            EventKind::Connect => 2,
            EventKind::Fault => 3,
            EventKind::PeerDead => 4,
            EventKind::Reset => 5,
            EventKind::EpochChange => 6,
            EventKind::Close => 7,
            EventKind::PeerClose => 8,
            EventKind::Other(n) => n,
        }
    }

    const fn from_wire(n: u32) -> EventKind {
        match n {
            1 => EventKind::Offer,
            2 => EventKind::Connect,
            3 => EventKind::Fault,
            4 => EventKind::PeerDead,
            5 => EventKind::Reset,
            6 => EventKind::EpochChange,
            7 => EventKind::Close,
            8 => EventKind::PeerClose,
            n => EventKind::Other(n),
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Its position in the end's event sequence (0 for the first ever).
    pub index: u64,
    /// What happened.
    pub kind: EventKind,
    /// The writer's epoch when it happened.
    pub epoch: u64,
    /// Detail; see [`EventKind`].
    pub value: u64,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} epoch {} {:?} {:#x}",
            self.index, self.epoch, self.kind, self.value
        )
    }
}

/// The recorder of one channel end, located by its end block.
#[derive(Debug, Clone)]
pub struct FlightRecorder {
    region: Region,
    /// Offset of the end's `EndControl`; the events follow it.
    block: usize,
}

impl FlightRecorder {
    /// The recorder of the end whose block starts at `end_block`
    /// ([`GrantInfo::end_block`](crate::manifest::GrantInfo::end_block)).
    pub fn new(region: Region, end_block: usize) -> FlightRecorder {
        FlightRecorder {
            region,
            block: end_block,
        }
    }

    fn counter(&self) -> usize {
        self.block + offset_of!(EndControl, events)
    }

    fn slot(&self, index: u64) -> usize {
        let i = (index % RECORDER_LEN as u64) as usize;
        self.block + size_of::<EndControl>() + i * size_of::<EventRecord>()
    }

    /// Appends an event (only the end's owner calls this).
    pub fn record(&self, kind: EventKind, epoch: u64, value: u64) -> Result<(), AccessError> {
        // Relaxed: our own counter, written only by us.
        let index = self.region.load(self.counter(), Ordering::Relaxed)?;
        let at = self.slot(index);
        self.region.check(at, size_of::<EventRecord>())?;
        // Release on every store: a reader whose Acquire load sees any of the new
        // fields also sees `seq` cleared, so it cannot pair old `seq` with new fields.
        self.region.store(at, 0, Ordering::Release)?;
        self.region
            .store(at + 8, u64::from(kind.to_wire()), Ordering::Release)?;
        self.region.store(at + 16, epoch, Ordering::Release)?;
        self.region.store(at + 24, value, Ordering::Release)?;
        // Release: pairs with the Acquire `seq` load in `events`.
        self.region
            .store(at, index.wrapping_add(1), Ordering::Release)?;
        // Release: pairs with the Acquire counter load in `events`.
        self.region
            .store(self.counter(), index.wrapping_add(1), Ordering::Release)
    }

    /// Number of events ever recorded (as the writer published it).
    pub fn recorded(&self) -> Result<u64, AccessError> {
        self.region.load(self.counter(), Ordering::Acquire)
    }

    /// The most recent events still held, oldest first; torn or overwritten ones
    /// are skipped. At most [`RECORDER_LEN`] are returned into `out`.
    pub fn events(&self, out: &mut [Event; RECORDER_LEN]) -> Result<usize, AccessError> {
        // Acquire: pairs with the Release counter store in `record`.
        let total = self.recorded()?;
        let first = total.saturating_sub(RECORDER_LEN as u64);
        let mut n = 0;
        for index in first..total {
            if let Some(event) = self.read(index)? {
                out[n] = event;
                n += 1;
            }
        }
        Ok(n)
    }

    fn read(&self, index: u64) -> Result<Option<Event>, AccessError> {
        let at = self.slot(index);
        let want = index.wrapping_add(1);
        // Acquire loads throughout: pair with the Release stores in `record`, and
        // keep the second `seq` load after the field loads.
        if self.region.load(at, Ordering::Acquire)? != want {
            return Ok(None);
        }
        let kind = self.region.load(at + 8, Ordering::Acquire)?;
        let epoch = self.region.load(at + 16, Ordering::Acquire)?;
        let value = self.region.load(at + 24, Ordering::Acquire)?;
        if self.region.load(at, Ordering::Acquire)? != want {
            return Ok(None);
        }
        let Ok(kind) = u32::try_from(kind) else {
            return Ok(None);
        };
        Ok(Some(Event {
            index,
            kind: EventKind::from_wire(kind),
            epoch,
            value,
        }))
    }
}

/// An empty event, for filling output arrays.
pub const NO_EVENT: Event = Event {
    index: 0,
    kind: EventKind::Other(0),
    epoch: 0,
    value: 0,
};

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::manifest::wire::END_BLOCK;

    #[test]
    fn keeps_the_latest_events_and_skips_torn_ones() {
        let r = Region::new_heap(END_BLOCK);
        let rec = FlightRecorder::new(r.clone(), 0);
        let mut out = [NO_EVENT; RECORDER_LEN];
        assert_eq!(rec.events(&mut out), Ok(0));
        for i in 0..20u64 {
            rec.record(EventKind::Connect, 1, i).unwrap();
        }
        let n = rec.events(&mut out).unwrap();
        assert_eq!(n, RECORDER_LEN);
        assert_eq!(out[0].index, 4);
        assert_eq!(out[0].value, 4);
        assert_eq!(out[n - 1].value, 19);
        // A torn event (seq cleared mid-write) is skipped.
        r.store(rec.slot(19), 0, Ordering::Relaxed).unwrap();
        assert_eq!(rec.events(&mut out).unwrap(), RECORDER_LEN - 1);
        // A hostile counter or garbage seq never reads outside the block.
        r.store(rec.counter(), u64::MAX, Ordering::Relaxed).unwrap();
        assert_eq!(rec.events(&mut out).unwrap(), 0);
        r.store(rec.slot(3), 0xdead, Ordering::Relaxed).unwrap();
        r.store(rec.counter(), 5, Ordering::Relaxed).unwrap();
        assert!(rec.events(&mut out).unwrap() <= 5);
    }
}
