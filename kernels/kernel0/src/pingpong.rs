//! Ping-pong over the control-page mailbox: kernel0 posts a command line
//! (arg, op, then seq with Release), the node answers on its response line.
//! In poll mode both sides spin; in IPI mode both sleep in `hlt` and wake
//! each other with the doorbell IPI.

use crate::error::Error;
use crate::nodes::Node;
use crate::stats::Samples;
use bootparse::layout::control::{self as c, ping_answer};
use core::sync::atomic::{AtomicU64, Ordering};
use platform::control::Control;
use platform::{cpu, idt, lapic, tsc, wait};

/// How long one ping may take before it counts as lost.
pub const PING_TIMEOUT_US: u64 = 500_000;

/// IPI-mode pings answered so far; each answer comes with one IPI.
static IPI_PINGS: AtomicU64 = AtomicU64::new(0);

/// How the two sides wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both sides spin on the mailbox.
    Poll,
    /// Both sides sleep in `hlt` and ring each other with IPIs.
    Ipi,
}

/// Tells `node` how to wait for commands from now on.
pub fn set_mode(ctl: &Control, node: &Node, mode: Mode) {
    let m = match mode {
        Mode::Poll => c::MODE_POLL,
        Mode::Ipi => c::MODE_IPI,
    };
    ctl.node(node.id, c::CMD_MODE).store(m, Ordering::Relaxed);
}

/// Posts a command to `node` (no doorbell).
pub fn post(ctl: &Control, node: &mut Node, op: u64, arg: u64) -> u64 {
    node.seq += 1;
    ctl.node(node.id, c::CMD_OP).store(op, Ordering::Relaxed);
    ctl.node(node.id, c::CMD_ARG).store(arg, Ordering::Relaxed);
    // Release pairs with the node's Acquire load of CMD_SEQ: op and arg are
    // visible once the new sequence number is.
    ctl.node(node.id, c::CMD_SEQ)
        .store(node.seq, Ordering::Release);
    node.seq
}

/// One verified round trip; returns its length in TSC cycles.
pub fn ping(ctl: &Control, node: &mut Node, mode: Mode, arg: u64) -> Result<u64, Error> {
    let ipis_before = idt::ipi_count();
    let t0 = cpu::rdtsc();
    let seq = post(ctl, node, c::OP_PING, arg);
    if mode == Mode::Ipi {
        lapic::send_ipi(node.apic_id, platform::IPI_VECTOR)?;
    }
    let resp = ctl.node(node.id, c::RESP_SEQ);
    // Acquire pairs with the node's Release store of RESP_SEQ.
    let answered = || resp.load(Ordering::Acquire) == seq;
    let deadline = tsc::deadline_after_us(PING_TIMEOUT_US);
    let ok = match mode {
        Mode::Poll => {
            let mut ok = false;
            while !tsc::passed(deadline) {
                if answered() {
                    ok = true;
                    break;
                }
                cpu::pause();
            }
            ok
        }
        // Wait for the doorbell itself too, not only the answer: every
        // round trip then includes a delivered IPI, and no IPI is left
        // pending to merge with the next one.
        Mode::Ipi => wait::until(deadline, || answered() && idt::ipi_count() != ipis_before),
    };
    let t1 = cpu::rdtsc();
    if !ok {
        return Err(Error::PingTimeout(node.id, seq));
    }
    if mode == Mode::Ipi {
        IPI_PINGS.fetch_add(1, Ordering::Relaxed);
    }
    let got = ctl.node(node.id, c::RESP_VAL).load(Ordering::Relaxed);
    if got != ping_answer(u64::from(node.id), arg) {
        return Err(Error::WrongAnswer(node.id, seq, got));
    }
    Ok(t1 - t0)
}

/// Runs `warmup` unmeasured then `samples.capacity()` measured pings.
pub fn run(
    ctl: &Control,
    node: &mut Node,
    mode: Mode,
    warmup: u32,
    samples: &mut Samples,
) -> Result<(), Error> {
    set_mode(ctl, node, mode);
    samples.clear();
    let mut arg = 0x1234_5678_9abc_def0 ^ u64::from(node.id);
    for _ in 0..warmup {
        arg = arg.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        ping(ctl, node, mode, arg)?;
    }
    while !samples.is_full() {
        arg = arg.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        samples.push(ping(ctl, node, mode, arg)?);
    }
    Ok(())
}

/// Checks that kernel0 took exactly one doorbell IPI per IPI-mode answer
/// (no IPI lost, none spurious).
pub fn check_ipis_received() -> Result<u64, Error> {
    let expected = IPI_PINGS.load(Ordering::Relaxed);
    let got = idt::ipi_count();
    if got != expected {
        return Err(Error::IpiCount(expected, got));
    }
    Ok(got)
}
