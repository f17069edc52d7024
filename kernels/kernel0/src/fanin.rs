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
//!
//! The channel is found in the manifest by name (`fanin`); a node's lane is
//! the position of its producer grant among the channel's producer grants.
//! In IPI mode kernel0 waits for a burst with mkipc's need-wakeup protocol
//! on the channel's `need_wakeup` word: it announces its sleep there and
//! sleeps in `hlt`; a node rings kernel0's doorbell after a push only when
//! it sees the announcement (once per announced sleep), so pushes while
//! kernel0 is awake ring nothing.

use crate::error::Error;
use crate::nodes::{MAX_SECONDARIES, Node};
use crate::pingpong::{self, Mode};
use bootparse::layout::{self, names};
use bootparse::wire::{FanIn as Msg, OP_FANIN, fanin_value};
use core::time::Duration;
use mkipc::Region;
use mkipc::doorbell::{Sleeper, SpinPolicy, WaitError, WaitStats, WakeFlag};
use mkipc::manifest::Manifest;
use mkipc::mpsc::{self, RecvError};
use platform::channels::{fanin_geometry, fanin_lane};
use platform::doorbell::IpiWaiter;
use platform::{cpu, tsc, wait};

/// Bound on the wait for a burst to arrive completely.
const BURST_TIMEOUT_US: u64 = 2_000_000;

/// Kernel0's consuming end and what it verified per lane.
pub struct FanIn {
    rx: mpsc::Consumer,
    /// Kernel0's sleeps on the channel's need_wakeup word (IPI mode).
    sleep: Sleeper<IpiWaiter>,
    /// Node id of each lane (0: no node).
    node_of_lane: [u32; MAX_SECONDARIES],
    /// Lane of node id n at index n - 1.
    lane_of_node: [usize; MAX_SECONDARIES],
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
    /// Formats the channel the manifest places under `fanin` (one lane per
    /// possible node, all open in epoch 0), attaches kernel0's consumer and
    /// learns each node's lane from the grants.
    pub fn create(region: &Region, manifest: &Manifest, nodes: &[Node]) -> Result<FanIn, Error> {
        let ch = manifest
            .find_channel(names::FANIN)
            .map_err(Error::ManifestRead)?;
        let geometry = fanin_geometry();
        let fits = geometry.channel_size().is_ok_and(|s| s <= ch.size);
        if !fits {
            return Err(Error::Layout(
                "fan-in channel larger than its manifest entry",
            ));
        }
        let rx = mpsc::channel(region, ch.offset, geometry).map_err(Error::FanInSetup)?;
        let mut node_of_lane = [0; MAX_SECONDARIES];
        let mut lane_of_node = [usize::MAX; MAX_SECONDARIES];
        for n in nodes {
            let lane = fanin_lane(manifest, ch.index, n.id)
                .map_err(Error::ManifestRead)?
                .filter(|&l| l < MAX_SECONDARIES)
                .ok_or(Error::Layout("a node holds no fan-in lane"))?;
            node_of_lane[lane] = n.id;
            lane_of_node[n.id as usize - 1] = lane;
        }
        let flag = WakeFlag::new(region.clone(), rx.channel().need_wakeup_word())
            .map_err(Error::Region)?;
        let waiter = wait::waiter().ok_or(Error::Layout("IDT not loaded"))?;
        Ok(FanIn {
            rx,
            sleep: Sleeper::new(flag, waiter, SpinPolicy::sleep_at_once()),
            node_of_lane,
            lane_of_node,
            epoch: [0; MAX_SECONDARIES],
            next: [0; MAX_SECONDARIES],
            verified: 0,
            resets: 0,
            drained_after_fence: 0,
        })
    }

    /// Offset of the channel in the region (for the console).
    pub fn offset(&self) -> usize {
        self.rx.channel().offset()
    }

    /// Kernel0's waits on the channel so far.
    pub fn wait_stats(&self) -> WaitStats {
        self.sleep.stats()
    }

    /// The lane of node `id`.
    fn lane(&self, id: u32) -> Option<usize> {
        let lane = *self.lane_of_node.get((id as usize).checked_sub(1)?)?;
        (lane < MAX_SECONDARIES).then_some(lane)
    }

    /// Messages verified from node `id` in its current lane epoch.
    pub fn next_of(&self, id: u32) -> u64 {
        self.lane(id)
            .and_then(|l| self.next.get(l).copied())
            .unwrap_or(0)
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
            let node = u64::from(self.node_of_lane.get(r.lane).copied().unwrap_or(0));
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

    /// Pumps until each node `id`'s lane has verified `want` messages in
    /// its epoch, or the burst timeout passes. Between pumps kernel0 spins
    /// (poll mode) or sleeps until a producer's doorbell (IPI mode).
    pub fn pump_until(&mut self, ids_want: &[(u32, u64)], mode: Mode) -> Result<(), Error> {
        let deadline = tsc::deadline_after_us(BURST_TIMEOUT_US);
        loop {
            self.pump()?;
            if ids_want.iter().all(|&(id, want)| self.next_of(id) >= want) {
                return Ok(());
            }
            if mode == Mode::Ipi && !tsc::passed(deadline) {
                let left = deadline.saturating_sub(cpu::rdtsc());
                let timeout = Duration::from_nanos(tsc::ns_from_cycles(left));
                let rx = &mut self.rx;
                match self.sleep.wait_until(
                    || Ok::<bool, core::convert::Infallible>(rx.pending() > 0),
                    timeout,
                ) {
                    Ok(()) | Err(WaitError::TimedOut) => {}
                    Err(WaitError::Waiter(e)) => return Err(Error::Apic(e)),
                    Err(WaitError::Check(never)) => match never {},
                }
                continue;
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
    /// kernel0 verifies all of them, waiting as `mode` says.
    pub fn round(&mut self, nodes: &mut [Node], count: u64, mode: Mode) -> Result<Round, Error> {
        let mut want = [(0u32, 0u64); MAX_SECONDARIES];
        let t0 = cpu::rdtsc();
        for (w, n) in want.iter_mut().zip(nodes.iter_mut()) {
            *w = (n.id, self.next_of(n.id) + count);
            pingpong::send(n, OP_FANIN, count)?;
        }
        self.pump_until(&want[..nodes.len()], mode)?;
        Ok(Round {
            messages: count * nodes.len() as u64,
            cycles: cpu::rdtsc() - t0,
        })
    }

    /// `count` rounds in which every node sends one message at once, each
    /// round waited for in IPI mode: kernel0 is asleep on the channel when
    /// the messages come, so producers ring it (once per announced sleep).
    /// Returns the messages verified.
    pub fn trickle(&mut self, nodes: &mut [Node], count: u64) -> Result<u64, Error> {
        let mut total = 0;
        for _ in 0..count {
            total += self.round(nodes, 1, Mode::Ipi)?.messages;
        }
        Ok(total)
    }

    /// After node `id` was fenced: closes its lane, delivers what it
    /// committed before dying (checked in sequence), requires `expected`
    /// messages in its epoch, and resets the lane into the next epoch for
    /// the restarted node. Returns (drained after the fence, new epoch).
    pub fn recover(&mut self, id: u32, expected: u64) -> Result<(u64, u64), Error> {
        let lane = self.lane(id).ok_or(Error::NoLink(id))?;
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
