//! MPSC fan-in: every node owns one producer lane of a single mkipc MPSC
//! channel into kernel0 (lane `n - 1` for node n; its page tables map no
//! other lane). Kernel0 asks nodes for bursts of sequenced messages and
//! checks every message it receives: the lane matches the sender, the lane
//! epoch is the current one, the sequence is the next of that lane (no
//! loss, no duplicate, no reordering within a producer), and the value.
//!
//! A crashed node's lane is fenced, drained and reset (next lane epoch);
//! the restarted node attaches to it again while the other lanes keep
//! flowing.

use crate::error::Error;
use crate::nodes::{MAX_SECONDARIES, Node};
use crate::pingpong;
use bootparse::layout;
use bootparse::wire::{FanIn as Msg, OP_FANIN, fanin_value};
use mkipc::Region;
use mkipc::mpsc::{self, Geometry, RecvError};
use platform::{cpu, tsc};

/// Bound on the wait for a burst to arrive completely.
const BURST_TIMEOUT_US: u64 = 2_000_000;

/// Kernel0's consuming end and what it verified per lane.
pub struct FanIn {
    rx: mpsc::Consumer,
    epoch: [u64; MAX_SECONDARIES],
    next: [u64; MAX_SECONDARIES],
    /// Verified messages over the whole run.
    pub verified: u64,
    /// Lane resets after crashes.
    pub resets: u64,
    /// Messages of crashed nodes delivered after their fence.
    pub drained_after_fence: u64,
}

/// Statistics of one burst round.
pub struct Round {
    /// Messages verified.
    pub messages: u64,
    /// TSC cycles the round took.
    pub cycles: u64,
}

impl FanIn {
    /// Formats the channel (one lane per possible node, all open in epoch
    /// 0) and attaches kernel0's consumer.
    pub fn create(region: &Region) -> Result<FanIn, Error> {
        let geometry = Geometry::new(
            MAX_SECONDARIES as u32,
            layout::FANIN_SLOTS,
            layout::FANIN_SLOT_SIZE,
        );
        let fits = geometry
            .channel_size()
            .is_ok_and(|s| s as u64 <= layout::FANIN_SIZE);
        if !fits {
            return Err(Error::Layout("fan-in channel larger than its room"));
        }
        let rx = mpsc::channel(region, layout::FANIN_OFFSET as usize, geometry)
            .map_err(Error::FanInSetup)?;
        Ok(FanIn {
            rx,
            epoch: [0; MAX_SECONDARIES],
            next: [0; MAX_SECONDARIES],
            verified: 0,
            resets: 0,
            drained_after_fence: 0,
        })
    }

    /// Messages verified from node `id` in its current lane epoch.
    pub fn next_of(&self, id: u32) -> u64 {
        self.next.get(id as usize - 1).copied().unwrap_or(0)
    }

    /// Receives and verifies every message waiting; returns how many.
    pub fn pump(&mut self) -> Result<u64, Error> {
        let mut buf = [0u8; layout::FANIN_SLOT_SIZE as usize];
        let mut got = 0;
        loop {
            let r = match self.rx.pop(&mut buf) {
                Ok(r) => r,
                Err(RecvError::Empty) => return Ok(got),
                Err(e) => return Err(Error::FanIn(e)),
            };
            let node = r.lane as u64 + 1;
            let (epoch, next) = (
                self.epoch.get(r.lane).copied().unwrap_or(u64::MAX),
                self.next.get(r.lane).copied().unwrap_or(u64::MAX),
            );
            let m = buf
                .get(..r.len)
                .and_then(|b| Msg::decode(b).ok())
                .ok_or(Error::FanInMessage(node, next, "undecodable"))?;
            let why = if m.node != node {
                Some("sent in another node's lane")
            } else if m.epoch != epoch {
                Some("from another lane epoch")
            } else if m.seq != next {
                Some("out of sequence (lost, duplicated or reordered)")
            } else if m.val != fanin_value(node, epoch, m.seq) {
                Some("wrong value")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::FanInMessage(node, next, why));
            }
            if let Some(n) = self.next.get_mut(r.lane) {
                *n += 1;
            }
            self.verified += 1;
            got += 1;
        }
    }

    /// Pumps until node `id`'s lane has verified `want` messages in its
    /// epoch, or the burst timeout passes.
    pub fn pump_until(&mut self, ids_want: &[(u32, u64)]) -> Result<(), Error> {
        let deadline = tsc::deadline_after_us(BURST_TIMEOUT_US);
        loop {
            self.pump()?;
            if ids_want.iter().all(|&(id, want)| self.next_of(id) >= want) {
                return Ok(());
            }
            if tsc::passed(deadline) {
                let (id, want) = ids_want
                    .iter()
                    .copied()
                    .find(|&(id, want)| self.next_of(id) < want)
                    .unwrap_or((0, 0));
                return Err(Error::FanInMessage(
                    u64::from(id),
                    self.next_of(id),
                    if want == 0 {
                        "timeout"
                    } else {
                        "burst incomplete"
                    },
                ));
            }
            cpu::pause();
        }
    }

    /// One round: every node sends `count` messages at once into its lane;
    /// kernel0 verifies all of them.
    pub fn round(&mut self, nodes: &mut [Node], count: u64) -> Result<Round, Error> {
        let mut want = [(0u32, 0u64); MAX_SECONDARIES];
        let t0 = cpu::rdtsc();
        for (w, n) in want.iter_mut().zip(nodes.iter_mut()) {
            *w = (n.id, self.next_of(n.id) + count);
            pingpong::send(n, OP_FANIN, count)?;
        }
        self.pump_until(&want[..nodes.len()])?;
        Ok(Round {
            messages: count * nodes.len() as u64,
            cycles: cpu::rdtsc() - t0,
        })
    }

    /// After node `id` was fenced: closes its lane, delivers what it
    /// committed before dying (checked in sequence), requires `expected`
    /// messages in its epoch, and resets the lane into the next epoch for
    /// the restarted node. Returns (drained after the fence, new epoch).
    pub fn recover(&mut self, id: u32, expected: u64) -> Result<(u64, u64), Error> {
        let lane = id as usize - 1;
        self.rx.fence_lane(lane).map_err(Error::FanInLane)?;
        let before = self.next_of(id);
        let deadline = tsc::deadline_after_us(BURST_TIMEOUT_US);
        while !self.rx.is_drained(lane).map_err(Error::FanInLane)? {
            self.pump()?;
            if tsc::passed(deadline) {
                return Err(Error::FanInMessage(
                    u64::from(id),
                    self.next_of(id),
                    "drain",
                ));
            }
        }
        let drained = self.next_of(id) - before;
        if self.next_of(id) != expected {
            return Err(Error::FanInMessage(
                u64::from(id),
                self.next_of(id),
                "dead node's lane ended short of what it sent before the crash",
            ));
        }
        let epoch = self.rx.reset_lane(lane).map_err(Error::FanInLane)?;
        if let (Some(e), Some(n)) = (self.epoch.get_mut(lane), self.next.get_mut(lane)) {
            *e = epoch;
            *n = 0;
        }
        self.resets += 1;
        self.drained_after_fence += drained;
        Ok((drained, epoch))
    }
}
