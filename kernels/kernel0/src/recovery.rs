//! Crash, detection, fencing and restart of one node while the others keep
//! answering.
//!
//! Kernel0 asks the target to write somewhere it must not: kernel0's own
//! image (unmapped for the node), the producer section of its own request
//! ring (mapped read-only: only kernel0 writes it), or another node's status
//! page (unmapped). The node's page tables turn the write into a page fault
//! and the node halts. Kernel0 learns of this only by the target's heartbeat
//! stalling for `DEAD_TIMEOUT_US` (measured with the TSC), then fences the
//! CPU with INIT, checks the fault the node reported and that the target
//! memory is unchanged, reloads the image into the partition and restarts
//! the node under a new epoch.

use crate::error::Error;
use crate::nodes::{Node, Starter, fence};
use crate::pingpong::{self, Mode};
use bootparse::layout::{self, control as c};
use bootparse::wire::OP_CRASH;
use core::sync::atomic::Ordering;
use platform::{console, cpu, tsc, wait};

/// A heartbeat that has not moved for this long means the node is dead.
pub const DEAD_TIMEOUT_US: u64 = 200_000;
/// Bound on the whole wait for the target to stop beating.
const CRASH_TIMEOUT_US: u64 = 5_000_000;
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
}

/// The stray write to perform, seen from both sides.
struct Target {
    /// Virtual address in the node's address space.
    node_addr: u64,
    /// The same memory in kernel0's (identity) map.
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
            let off = layout::RING_REGION_OFFSET + link.tx.layout().tail_word() as u64;
            let (n, k) = shared(off);
            (n, k, PF_PRESENT | PF_WRITE)
        }
        Stray::OtherNodeStatus => {
            let other = u64::from(node.id % (layout::MAX_NODES as u32 - 1) + 1);
            let (n, k) = shared(c::node_word(other, c::EPOCH));
            (n, k, PF_WRITE)
        }
    };
    Ok(Target {
        node_addr,
        kernel0_addr,
        error,
    })
}

/// What one crash/restart cycle observed.
pub struct Cycle {
    /// Microseconds from the crash command to the death verdict.
    pub detect_us: u64,
    /// Heartbeat value it stalled at.
    pub last_beat: u64,
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
}

fn read_word(kernel0_addr: u64) -> u64 {
    // SAFETY: the address is in kernel0's image or the shared region, both
    // identity-mapped for kernel0 for good; the node that could write it is
    // halted or fenced, and an atomic load is how shared words are read.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(kernel0_addr as *mut u64).load(Ordering::Acquire)
    }
}

/// Crashes `nodes[target]` with a stray write of `kind`, detects, fences
/// and restarts it.
pub fn cycle(
    starter: &Starter,
    nodes: &mut [Node],
    target: usize,
    kind: Stray,
) -> Result<Cycle, Error> {
    let ctl = &starter.ctl;
    let id = nodes.get(target).map(|n| n.id).ok_or(Error::NoSecondary)?;
    let stray = target_of(kind, nodes.get(target).ok_or(Error::NoSecondary)?)?;
    // What the target word must still hold afterwards. Kernel0 itself
    // moves the request ring's tail when it sends the crash request, so
    // that one is kernel0's private count of published requests.
    let mut want_word = read_word(stray.kernel0_addr);
    let beat = ctl.node(id, c::HEARTBEAT);
    let t0 = cpu::rdtsc();
    if let Some(n) = nodes.get_mut(target) {
        pingpong::set_mode(ctl, n, Mode::Poll);
        pingpong::send(n, OP_CRASH, stray.node_addr)?;
        if kind == Stray::RequestRingProducer {
            want_word = n.link.as_ref().map_or(0, |l| l.tx.published());
        }
    }
    let overall = tsc::deadline_after_us(CRASH_TIMEOUT_US);
    let stall = tsc::cycles_from_us(DEAD_TIMEOUT_US);
    let mut last = beat.load(Ordering::Relaxed);
    let mut last_change = cpu::rdtsc();
    let mut others = 0u64;
    let mut arg = t0;
    let now = loop {
        for (i, n) in nodes.iter_mut().enumerate() {
            if i != target {
                arg = arg.rotate_left(7) ^ 0x5555;
                pingpong::ping(n, Mode::Ipi, arg)?;
                others += 1;
            }
        }
        if nodes.len() == 1 {
            // Nobody else to serve: sleep a millisecond between looks.
            wait::until(tsc::deadline_after_us(1_000), || false);
        }
        let now = cpu::rdtsc();
        let v = beat.load(Ordering::Relaxed);
        if v != last {
            last = v;
            last_change = now;
        } else if now - last_change > stall {
            break now;
        }
        if tsc::passed(overall) {
            return Err(Error::NotDead(id));
        }
    };
    let detect_us = tsc::ns_from_cycles(now - t0) / 1000;
    // Acquire pairs with the Release store of the vector in the node's
    // exception handler: the address is written first.
    let vector = ctl.node(id, c::FAULT_VECTOR).load(Ordering::Acquire);
    let fault_addr = ctl.node(id, c::FAULT_ADDR).load(Ordering::Relaxed);
    let node = nodes.get_mut(target).ok_or(Error::NoSecondary)?;
    fence(node)?;
    if console::release_if_held_by(id) {
        platform::println!("node {id} died holding the console lock; released");
    }
    let want_fault = FAULT_REPORTED | stray.error << 16 | 14;
    // Only the present and write bits are compared (bit 2+ say user/rsvd/...).
    if vector & !(0xfffc << 16) != want_fault || fault_addr != stray.node_addr {
        return Err(Error::WrongFault(id, vector, fault_addr));
    }
    if read_word(stray.kernel0_addr) != want_word {
        return Err(Error::Corrupted(stray.kernel0_addr));
    }
    let started = starter.start(node)?;
    Ok(Cycle {
        detect_us,
        last_beat: last,
        fault_addr,
        fault_error: (vector >> 16) & 0xffff,
        others_answered: others,
        restart_us: started.ready_us,
        epoch: node.epoch,
    })
}
