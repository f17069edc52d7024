//! Crash, detection, fencing and restart of one node in the middle of
//! traffic while the others keep answering.
//!
//! Kernel0 queues a few pings on the target's request ring, then the crash
//! command, then more pings. The crash is a write somewhere the node must
//! not write: kernel0's own image (unmapped for the node), the producer
//! section of its own request ring (mapped read-only: only kernel0 writes
//! it), another node's status page (unmapped); or a runaway recursion into
//! the unmapped guard page below its stack, which ends in a double fault
//! handled on its IST stack. The node reports the fault and halts. Kernel0
//! learns of this only by the target's heartbeat stalling for the
//! configured `dead_ms`: the core's `Watchdog` on the node's heartbeat in
//! its manifest section (measured with the TSC), serving the other nodes
//! meanwhile. It checks that every ping queued before the crash was
//! answered, fences the CPU with INIT (the watchdog's fence hook, after
//! which the incarnation counts as gone), checks the fault the node
//! reported and that the target memory is unchanged, reclaims both of the
//! node's rings through the core handshake (the response ring resets to
//! where kernel0 stopped reading; the request ring keeps the requests
//! queued behind the crash for the next incarnation), loads the newest
//! image into the partition and restarts the node, which boots its next
//! epoch and reconnects; it then answers the requests that waited behind
//! the crash.

use crate::error::Error;
use crate::nodes::{Node, Starter, fence, now};
use crate::pingpong::{self, Mode};
use bootparse::layout::{self, control as c, names};
use bootparse::wire::{OP_CRASH, OP_FANIN, OP_OVERFLOW, OP_PING, Response, ping_answer};
use core::sync::atomic::Ordering;
use mkipc::handshake::Agreement;
use mkipc::lifecycle::PeerStatus;
use mkipc::spsc::ConsumeError;
use platform::{console, cpu, tsc, wait};

/// Bound on the whole wait for the target to stop beating, beyond the
/// configured death delay.
const CRASH_TIMEOUT_US: u64 = 5_000_000;
/// Pings queued on the target's ring before the crash command.
pub const BEFORE_CRASH: u64 = 4;
/// Pings queued behind the crash command (kept in the request ring across
/// the restart and answered by the next incarnation).
pub const BEHIND_CRASH: u64 = 3;
/// Double fault vector.
const DOUBLE_FAULT: u64 = 8;
/// Page fault vector.
const PAGE_FAULT: u64 = 14;
/// Bit 63 of a node's fault word marks "a fault was reported".
const FAULT_REPORTED: u64 = 1 << 63;
/// Page-fault error code bits: the page was present / the access a write.
const PF_PRESENT: u64 = 1;
const PF_WRITE: u64 = 2;

/// Where a crash cycle tells the node to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stray {
    /// Kernel0's first image page (not mapped for the node).
    Kernel0Image,
    /// The published-position word in the producer section of the node's
    /// request ring (read-only for the node: only kernel0 writes it).
    RequestRingProducer,
    /// Another node's status page (not mapped for the node).
    OtherNodeStatus,
    /// Below the stack: unbounded recursion into the guard page.
    StackOverflow,
}

impl Stray {
    /// The kinds in the order the cycles use them.
    pub const ALL: [Stray; 4] = [
        Stray::Kernel0Image,
        Stray::RequestRingProducer,
        Stray::OtherNodeStatus,
        Stray::StackOverflow,
    ];
}

/// The stray write to perform, seen from both sides.
struct Target {
    /// Virtual address in the node's address space.
    node_addr: u64,
    /// The same memory in kernel0's (identity) map (0: nothing to check).
    kernel0_addr: u64,
    /// Expected page-fault error code bits (present, write).
    error: u64,
}

fn target_of(kind: Stray, node: &Node) -> Result<Target, Error> {
    let shared = |off: u64| (layout::SEC_SHARED_VIRT + off, layout::SHARED_PHYS + off);
    let (node_addr, kernel0_addr, error) = match kind {
        Stray::Kernel0Image => (layout::KERNEL0_BASE, layout::KERNEL0_BASE, PF_WRITE),
        Stray::RequestRingProducer => {
            let link = node.link.as_ref().ok_or(Error::NoLink(node.id))?;
            let off = layout::RING_REGION_OFFSET + link.request.tail_word() as u64;
            let (n, k) = shared(off);
            (n, k, PF_PRESENT | PF_WRITE)
        }
        Stray::OtherNodeStatus => {
            let other = u64::from(node.id % (layout::MAX_NODES as u32 - 1) + 1);
            let (n, k) = shared(c::node_word(other, c::EPOCH));
            (n, k, PF_WRITE)
        }
        Stray::StackOverflow => (node.stack_guard, 0, 0),
    };
    Ok(Target {
        node_addr,
        kernel0_addr,
        error,
    })
}

/// What one crash/restart cycle observed.
pub struct Cycle {
    /// Node id of the target.
    pub node: u32,
    /// Vector of the fault the node reported (14 or 8).
    pub vector: u64,
    /// Pings queued before the crash and answered.
    pub answered_before: u64,
    /// Requests queued behind the crash, answered by the restarted node.
    pub behind_answered: u64,
    /// Build the node ran before the restart.
    pub old_build: u64,
    /// Build it runs now.
    pub new_build: u64,
    /// Features it gained.
    pub new_features: u64,
    /// Microseconds from the crash command to the death verdict.
    pub detect_us: u64,
    /// The epoch the watchdog declared dead.
    pub dead_epoch: u64,
    /// Where the response ring resumed after the reclaim (messages kernel0
    /// had read from it over all epochs).
    pub resumed_at: u64,
    /// What the reconnect agreed (request ring, response ring).
    pub agreed: (Agreement, Agreement),
    /// Fault address the node reported.
    pub fault_addr: u64,
    /// Page-fault error code the node reported.
    pub fault_error: u64,
    /// Pings the other nodes answered meanwhile.
    pub others_answered: u64,
    /// Microseconds from INIT to the restarted node's ready state.
    pub restart_us: u64,
    /// Epoch the node runs under after the restart.
    pub epoch: u64,
    /// Bulk buffers the dead node had lent, accounted for after the fence.
    pub reclaimed: crate::bulk::Reclaimed,
    /// Fan-in messages the node sent before the crash command (all
    /// delivered in sequence).
    pub fanin_before: u64,
    /// Of those, delivered after the fence (the drain).
    pub fanin_drained: u64,
    /// Lane epoch after the reset.
    pub fanin_epoch: u64,
    /// Fan-in messages from the other nodes verified while it was down.
    pub fanin_others: u64,
}

/// Fan-in messages the target sends just before its crash command.
pub const FANIN_BEFORE_CRASH: u64 = 16;
/// Fan-in burst asked of each other node per round while one is down.
const FANIN_WHILE_DOWN: u64 = 8;

fn read_word(kernel0_addr: u64) -> u64 {
    if kernel0_addr == 0 {
        return 0;
    }
    // SAFETY: the address is in kernel0's image or the shared region, both
    // identity-mapped for kernel0 for good; the node that could write it is
    // halted or fenced, and an atomic load is how shared words are read.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(kernel0_addr as *mut u64).load(Ordering::Acquire)
    }
}

/// Takes every answer waiting on the target's response ring and checks it
/// against the pings queued before the crash (`args`, from sequence
/// `first_seq`). Returns how many of them are answered so far.
fn drain(node: &mut Node, first_seq: u64, args: &[u64], answered: &mut u64) -> Result<(), Error> {
    let id = node.id;
    let Some(rx) = node.link.as_mut().and_then(|l| l.rx.consumer()) else {
        return Ok(());
    };
    let mut buf = [0u8; layout::RING_SLOT_SIZE as usize];
    loop {
        match rx.pop(&mut buf) {
            Ok(n) => {
                let resp = buf
                    .get(..n)
                    .and_then(|b| Response::decode(b).ok())
                    .ok_or(Error::BadResponse(id, first_seq + *answered))?;
                let want_seq = first_seq + *answered;
                let arg = args
                    .get(*answered as usize)
                    .copied()
                    .ok_or(Error::WrongAnswer(id, want_seq, resp.seq))?;
                if resp.seq != want_seq || resp.val != ping_answer(u64::from(id), arg) {
                    return Err(Error::WrongAnswer(id, want_seq, resp.val));
                }
                *answered += 1;
            }
            Err(ConsumeError::Empty) => return Ok(()),
            Err(e) => return Err(Error::Receive(id, e)),
        }
    }
}

/// Crashes `nodes[target]` with a stray access of `kind` in the middle of
/// traffic, detects, fences and restarts it on the newest image.
pub fn cycle(
    starter: &Starter,
    nodes: &mut [Node],
    target: usize,
    kind: Stray,
    fanin: &mut crate::fanin::FanIn,
) -> Result<Cycle, Error> {
    let ctl = &starter.ctl;
    let id = nodes.get(target).map(|n| n.id).ok_or(Error::NoSecondary)?;
    let stray = target_of(kind, nodes.get(target).ok_or(Error::NoSecondary)?)?;
    // What the target word must still hold afterwards. Kernel0 itself
    // moves the request ring's tail when it sends the requests, so that
    // one is kernel0's private count of published requests.
    let mut want_word = read_word(stray.kernel0_addr);
    let mut args = [0u64; BEFORE_CRASH as usize];
    // Leave a bulk transfer unfinished: buffers lent by the node, some held
    // by kernel0, some still queued, when the crash comes.
    let in_flight = {
        let n = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
        crate::bulk::leave_in_flight(ctl, n)?
    };
    let t0 = cpu::rdtsc();
    let first_seq;
    let fanin_expected = fanin.next_of(id) + FANIN_BEFORE_CRASH;
    let fanin_verified_before = fanin.verified;
    {
        let n = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
        pingpong::set_mode(ctl, n, Mode::Poll);
        pingpong::send(n, OP_FANIN, FANIN_BEFORE_CRASH)?;
        first_seq = n.seq + 1;
        for (i, a) in args.iter_mut().enumerate() {
            *a = t0.rotate_left(i as u32 * 9) ^ 0xa5a5;
            pingpong::send(n, OP_PING, *a)?;
        }
        let op = if kind == Stray::StackOverflow {
            OP_OVERFLOW
        } else {
            OP_CRASH
        };
        pingpong::send(n, op, stray.node_addr)?;
        for i in 0..BEHIND_CRASH {
            pingpong::send(n, OP_PING, i)?;
        }
        if kind == Stray::RequestRingProducer {
            want_word = n.link.as_mut().map_or(0, |l| l.tx.producer().published());
        }
    }
    let overall = tsc::deadline_after_us(starter.config.dead_ms * 1000 + CRASH_TIMEOUT_US);
    let mut others = 0u64;
    let mut answered = 0u64;
    let mut arg = t0;
    let (now, dead_epoch) = loop {
        for (i, n) in nodes.iter_mut().enumerate() {
            if i == target {
                drain(n, first_seq, &args, &mut answered)?;
            } else {
                pingpong::send(n, OP_FANIN, FANIN_WHILE_DOWN)?;
                arg = arg.rotate_left(7) ^ 0x5555;
                pingpong::ping(n, Mode::Ipi, arg)?;
                others += 1;
            }
        }
        fanin.pump()?;
        if nodes.len() == 1 {
            // Nobody else to serve: sleep a millisecond between looks.
            wait::until(tsc::deadline_after_us(1_000), || false);
        }
        // The core watchdog decides, in kernel0's clock: no heartbeat change
        // in the node's section for dead_ms means dead. The others must
        // stay alive meanwhile.
        let mut dead = None;
        for (i, n) in nodes.iter_mut().enumerate() {
            let id = n.id;
            let watch = n.watch.as_mut().ok_or(Error::NoLink(id))?;
            match watch.observe(now()).map_err(|e| Error::Lifecycle(id, e))? {
                PeerStatus::Alive { .. } => {}
                PeerStatus::Dead { epoch } if i == target => dead = Some(epoch),
                _ => return Err(Error::Liveness(id, "not alive while another node was down")),
            }
        }
        if let Some(epoch) = dead {
            break (cpu::rdtsc(), epoch);
        }
        if tsc::passed(overall) {
            return Err(Error::NotDead(id));
        }
    };
    let detect_us = tsc::ns_from_cycles(now - t0) / 1000;
    if nodes.len() > 1 && others == 0 {
        return Err(Error::OthersStalled(id));
    }
    let node = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
    // Answers pushed before the crash are visible by now.
    drain(node, first_seq, &args, &mut answered)?;
    if answered != BEFORE_CRASH {
        return Err(Error::LostBeforeCrash(id, BEFORE_CRASH, answered));
    }
    // Acquire pairs with the Release store of the vector in the node's
    // exception handler: the address is written first.
    let report = ctl.node(id, c::FAULT_VECTOR).load(Ordering::Acquire);
    let fault_addr = ctl.node(id, c::FAULT_ADDR).load(Ordering::Relaxed);
    fence(node)?;
    let resumed_at = reclaim_rings(node)?;
    // Kernel0's end of the old pool goes with this scope; the restart
    // formats a fresh pool under the new epoch.
    let mut old_pool = node.pool.take().ok_or(Error::NoLink(id))?;
    let reclaimed = crate::bulk::reclaim(id, &mut old_pool, in_flight)?;
    let (fanin_drained, fanin_epoch) = fanin.recover(id, fanin_expected)?;
    let fanin_others = fanin.verified - fanin_verified_before - FANIN_BEFORE_CRASH;
    if console::release_if_held_by(id) {
        platform::println!("node {id} died holding the console lock; released");
    }
    let vector = report & 0xff;
    let ok = if kind == Stray::StackOverflow {
        // A #DF (error code 0) taken on its IST stack, after a #PF inside
        // the guard page.
        report == FAULT_REPORTED | DOUBLE_FAULT
            && (stray.node_addr..stray.node_addr + 0x1000).contains(&fault_addr)
    } else {
        // Only the present and write bits are compared (bit 2+ say
        // user/rsvd/...).
        report & !(0xfffc << 16) == FAULT_REPORTED | stray.error << 16 | PAGE_FAULT
            && fault_addr == stray.node_addr
    };
    if !ok {
        return Err(Error::WrongFault(id, report, fault_addr));
    }
    if read_word(stray.kernel0_addr) != want_word {
        return Err(Error::Corrupted(stray.kernel0_addr));
    }
    let old_build = node.build;
    let started = starter.start(node, starter.newest())?;
    // The requests queued behind the crash stayed in the request ring (the
    // dead incarnation had released only what it read); the new one
    // resumes from there and answers them, in order.
    let behind_first = first_seq + BEFORE_CRASH + 1;
    for i in 0..BEHIND_CRASH {
        let val = pingpong::await_answer(node, Mode::Poll, behind_first + i)?;
        if val != ping_answer(u64::from(id), i) {
            return Err(Error::WrongAnswer(id, behind_first + i, val));
        }
    }
    Ok(Cycle {
        node: id,
        vector,
        answered_before: answered,
        behind_answered: BEHIND_CRASH,
        old_build,
        new_build: node.build,
        new_features: started.new_features,
        detect_us,
        dead_epoch,
        resumed_at,
        agreed: started.agreed,
        fault_addr,
        fault_error: (report >> 16) & 0xffff,
        others_answered: others,
        restart_us: started.ready_us,
        epoch: node.epoch,
        reclaimed,
        fanin_before: FANIN_BEFORE_CRASH,
        fanin_drained,
        fanin_epoch,
        fanin_others,
    })
}

/// Reclaims both of a fenced node's rings through the core handshake: the
/// response ring (kernel0 consumes, holds the admin right) resets to where
/// kernel0 stopped reading, so the next incarnation resumes there and
/// re-stamps its slots; kernel0's producer end of the request ring forgets
/// the dead consumer and keeps what is queued for the next one. Returns the
/// response ring's resume position.
fn reclaim_rings(node: &mut Node) -> Result<u64, Error> {
    let id = node.id;
    let (req, resp, _) = names::channels(id).ok_or(Error::Layout("node id"))?;
    let (link, watch) = match (node.link.as_mut(), node.watch.as_ref()) {
        (Some(l), Some(w)) => (l, w),
        _ => return Err(Error::NoLink(id)),
    };
    let resume = link
        .rx
        .reclaim(watch)
        .map_err(|e| Error::ReclaimEnd(id, resp, e))?;
    link.tx
        .reclaim(watch)
        .map_err(|e| Error::ReclaimEnd(id, req, e))?;
    Ok(resume)
}
