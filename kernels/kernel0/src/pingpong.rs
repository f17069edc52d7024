//! Ping-pong over each node's pair of mkipc SPSC rings: kernel0 pushes a
//! request on the node's request ring, the node answers on its response
//! ring. In poll mode both sides spin on their consumer end; in IPI mode
//! both sleep in `hlt` and ring each other with the doorbell IPI.

use crate::error::Error;
use crate::nodes::Node;
use crate::stats::Samples;
use bootparse::layout::control as c;
use bootparse::wire::{OP_PING, Request, Response, ping_answer};
use core::sync::atomic::{AtomicU64, Ordering};
use mkipc::spsc::{ConsumeError, Consumer};
use platform::control::Control;
use platform::{cpu, idt, tsc, wait};

/// How long one ping may take before it counts as lost.
pub const PING_TIMEOUT_US: u64 = 500_000;

/// IPI-mode answers received so far; each comes with one IPI.
static IPI_PINGS: AtomicU64 = AtomicU64::new(0);
/// Verified answers received so far, by mode.
static VERIFIED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Verified ping answers so far: (poll mode, IPI mode).
pub fn verified() -> (u64, u64) {
    (
        VERIFIED[0].load(Ordering::Relaxed),
        VERIFIED[1].load(Ordering::Relaxed),
    )
}

/// How the two sides wait for each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both sides spin on their rings.
    Poll,
    /// Both sides sleep in `hlt` and ring each other with IPIs.
    Ipi,
}

/// Tells `node` how to wait for requests from now on.
pub fn set_mode(ctl: &Control, node: &Node, mode: Mode) {
    let m = match mode {
        Mode::Poll => c::MODE_POLL,
        Mode::Ipi => c::MODE_IPI,
    };
    ctl.node(node.id, c::MODE).store(m, Ordering::Relaxed);
}

/// Pushes a request on `node`'s request ring (no doorbell); returns its
/// sequence number.
pub fn send(node: &mut Node, op: u64, arg: u64) -> Result<u64, Error> {
    let id = node.id;
    let link = node.link.as_mut().ok_or(Error::NoLink(id))?;
    node.seq += 1;
    let req = Request {
        op,
        seq: node.seq,
        arg,
    };
    link.tx
        .push(&req.encode())
        .map_err(|e| Error::Send(id, e))?;
    Ok(node.seq)
}

/// True when the consumer has something to report: a message or a fault.
fn has_news(rx: &mut Consumer) -> bool {
    !matches!(rx.peek(1), Err(ConsumeError::Empty))
}

/// Sends one request and waits for its response; returns the response
/// value and the round trip in TSC cycles.
pub fn call(node: &mut Node, mode: Mode, op: u64, arg: u64) -> Result<(u64, u64), Error> {
    let id = node.id;
    let ipis_before = idt::ipi_count();
    let t0 = cpu::rdtsc();
    let seq = send(node, op, arg)?;
    if mode == Mode::Ipi {
        node.doorbell.ok_or(Error::NoLink(id))?.ring()?;
    }
    let (val, t1) = answer_of(node, mode, seq, ipis_before)?;
    Ok((val, t1 - t0))
}

/// Waits for the answer to request `seq` (already sent, doorbell rung if
/// `mode` is IPI) and returns its value.
pub fn await_answer(node: &mut Node, mode: Mode, seq: u64) -> Result<u64, Error> {
    let ipis_before = idt::ipi_count();
    answer_of(node, mode, seq, ipis_before).map(|(val, _)| val)
}

/// Waits for, pops and checks the answer to `seq`; returns its value and
/// the TSC when it was taken.
fn answer_of(node: &mut Node, mode: Mode, seq: u64, ipis_before: u64) -> Result<(u64, u64), Error> {
    let id = node.id;
    let link = node.link.as_mut().ok_or(Error::NoLink(id))?;
    let deadline = tsc::deadline_after_us(PING_TIMEOUT_US);
    let ok = match mode {
        Mode::Poll => {
            let mut ok = false;
            while !tsc::passed(deadline) {
                if has_news(&mut link.rx) {
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
        Mode::Ipi => wait::until(deadline, || {
            has_news(&mut link.rx) && idt::ipi_count() != ipis_before
        }),
    };
    if !ok {
        return Err(Error::PingTimeout(id, seq));
    }
    let mut buf = [0u8; bootparse::layout::RING_SLOT_SIZE as usize];
    let n = link.rx.pop(&mut buf).map_err(|e| Error::Receive(id, e))?;
    let t1 = cpu::rdtsc();
    if mode == Mode::Ipi {
        IPI_PINGS.fetch_add(1, Ordering::Relaxed);
    }
    let resp = buf
        .get(..n)
        .and_then(|b| Response::decode(b).ok())
        .ok_or(Error::BadResponse(id, seq))?;
    if resp.seq != seq {
        return Err(Error::WrongAnswer(id, seq, resp.seq));
    }
    Ok((resp.val, t1))
}

/// One verified ping round trip; returns its length in TSC cycles.
pub fn ping(node: &mut Node, mode: Mode, arg: u64) -> Result<u64, Error> {
    let (val, cycles) = call(node, mode, OP_PING, arg)?;
    if val != ping_answer(u64::from(node.id), arg) {
        return Err(Error::WrongAnswer(node.id, node.seq, val));
    }
    VERIFIED[usize::from(mode == Mode::Ipi)].fetch_add(1, Ordering::Relaxed);
    Ok(cycles)
}

/// Runs `warmup` unmeasured then `samples`' target count of measured pings.
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
        ping(node, mode, arg)?;
    }
    while !samples.is_full() {
        arg = arg.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        samples.push(ping(node, mode, arg)?);
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
