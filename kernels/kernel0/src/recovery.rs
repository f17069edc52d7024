//! Crash, detection, fencing and restart of one node while the others keep
//! answering.
//!
//! Kernel0 asks the target to write to kernel0's own image (outside the
//! target's partition). The target's page tables do not map it, so the write
//! faults and the target halts. Kernel0 only learns of this by the target's
//! heartbeat stalling for `DEAD_TIMEOUT_US` (measured with the TSC), then
//! fences the CPU with INIT, checks that its own memory is intact, reloads
//! the image into the partition and restarts the node under a new epoch.

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
/// The address the target is told to write: kernel0's first image page.
pub const STRAY_ADDR: u64 = layout::KERNEL0_BASE;
/// Fault vector a page fault reports (bit 63 marks "reported").
const PAGE_FAULT_REPORT: u64 = 14 | 1 << 63;

/// What one crash/restart cycle observed.
pub struct Cycle {
    /// Microseconds from the crash command to the death verdict.
    pub detect_us: u64,
    /// Heartbeat value it stalled at.
    pub last_beat: u64,
    /// Fault address the node reported.
    pub fault_addr: u64,
    /// Pings the other nodes answered meanwhile.
    pub others_answered: u64,
    /// Microseconds from INIT to the restarted node's ready state.
    pub restart_us: u64,
    /// Epoch the node runs under after the restart.
    pub epoch: u64,
}

fn read_canary() -> u64 {
    // SAFETY: STRAY_ADDR is in kernel0's image, identity-mapped and always
    // readable; a volatile read keeps the comparison honest.
    unsafe { (STRAY_ADDR as *const u64).read_volatile() }
}

/// Crashes `nodes[target]`, detects, fences and restarts it.
pub fn cycle(starter: &Starter, nodes: &mut [Node], target: usize) -> Result<Cycle, Error> {
    let ctl = &starter.ctl;
    let canary = read_canary();
    let id = nodes.get(target).map(|n| n.id).ok_or(Error::NoSecondary)?;
    let beat = ctl.node(id, c::HEARTBEAT);
    let t0 = cpu::rdtsc();
    if let Some(n) = nodes.get_mut(target) {
        pingpong::set_mode(ctl, n, Mode::Poll);
        pingpong::send(n, OP_CRASH, STRAY_ADDR)?;
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
    if vector != PAGE_FAULT_REPORT || fault_addr != STRAY_ADDR {
        return Err(Error::WrongFault(id, vector, fault_addr));
    }
    if read_canary() != canary {
        return Err(Error::Corrupted(STRAY_ADDR));
    }
    let started = starter.start(node)?;
    Ok(Cycle {
        detect_us,
        last_beat: last,
        fault_addr,
        others_answered: others,
        restart_us: started.ready_us,
        epoch: node.epoch,
    })
}
