//! Ping-pong over each node's pair of mkipc SPSC rings: kernel0 pushes a
//! request on the node's request ring, the node answers on its response
//! ring. In poll mode both sides spin on their consumer end; in IPI mode
//! both sleep in `hlt`. Either way the sender follows mkipc's need-wakeup
//! protocol: it rings the receiver's doorbell IPI only when the receiver
//! announced a sleep in its ring's `need_wakeup` word, so in poll mode
//! every notification is suppressed.

use crate::error::Error;
use crate::nodes::Node;
use crate::stats::Samples;
use bootparse::layout::control as c;
use bootparse::wire::{OP_PING, Request, Response, ping_answer};
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use mkipc::doorbell::{WaitError, WaitStats};
use mkipc::spsc::{ConsumeError, Consumer};
use platform::channels::has_message;
use platform::control::Control;
use platform::{cpu, idt, tsc, wait};

/// How long one ping may take before it counts as lost.
pub const PING_TIMEOUT_US: u64 = 500_000;

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

/// Pushes a request on `node`'s request ring and notifies the node (the
/// doorbell rings only if it announced a sleep); returns its sequence
/// number.
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
        .send(&req.encode())
        .map_err(|e| Error::HandshakeSend(id, e))?;
    link.tx_bell.notify().map_err(Error::Apic)?;
    Ok(node.seq)
}

/// True when the consumer has something to report: a message or a fault
/// (`false` before the handshake gave kernel0 a consumer).
fn has_news(rx: Option<&mut Consumer>) -> bool {
    rx.is_some_and(|rx| !matches!(rx.peek(1), Err(ConsumeError::Empty)))
}

/// Sends one request and waits for its response; returns the response
/// value and the round trip in TSC cycles.
pub fn call(node: &mut Node, mode: Mode, op: u64, arg: u64) -> Result<(u64, u64), Error> {
    let t0 = cpu::rdtsc();
    let seq = send(node, op, arg)?;
    let (val, t1) = answer_of(node, mode, seq)?;
    Ok((val, t1 - t0))
}

/// Waits for the answer to request `seq` (already sent) and returns its
/// value.
pub fn await_answer(node: &mut Node, mode: Mode, seq: u64) -> Result<u64, Error> {
    answer_of(node, mode, seq).map(|(val, _)| val)
}

/// Waits for, pops and checks the answer to `seq`; returns its value and
/// the TSC when it was taken.
fn answer_of(node: &mut Node, mode: Mode, seq: u64) -> Result<(u64, u64), Error> {
    let id = node.id;
    let link = node.link.as_mut().ok_or(Error::NoLink(id))?;
    let deadline = tsc::deadline_after_us(PING_TIMEOUT_US);
    let ok = match mode {
        Mode::Poll => {
            let mut ok = false;
            while !tsc::passed(deadline) {
                if has_news(link.rx.consumer()) {
                    ok = true;
                    break;
                }
                cpu::pause();
            }
            ok
        }
        // Announce the sleep in the response ring's need_wakeup word and
        // sleep in `hlt` until the node's doorbell (the core's Sleeper).
        Mode::Ipi => {
            let (rx, sleep) = (&mut link.rx, &mut link.rx_sleep);
            let timeout = Duration::from_micros(PING_TIMEOUT_US);
            match sleep.wait_until(|| has_message(rx.consumer()), timeout) {
                Ok(()) => true,
                Err(WaitError::TimedOut) => false,
                Err(WaitError::Check(e)) => return Err(Error::Receive(id, e)),
                Err(WaitError::Waiter(e)) => return Err(Error::Apic(e)),
            }
        }
    };
    if !ok {
        return Err(Error::PingTimeout(id, seq));
    }
    let mut buf = [0u8; bootparse::layout::RING_SLOT_SIZE as usize];
    let n = link
        .rx
        .consumer()
        .ok_or(Error::NoLink(id))?
        .pop(&mut buf)
        .map_err(|e| Error::Receive(id, e))?;
    let t1 = cpu::rdtsc();
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

/// Doorbell accounting over the whole run, need-wakeup protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bells {
    /// Doorbells kernel0 rang to nodes (request rings).
    pub to_nodes_rung: u64,
    /// Notifications to nodes that rang nothing (the node was awake).
    pub to_nodes_suppressed: u64,
    /// Doorbells nodes rang to kernel0 (response rings, all epochs).
    pub to_kernel0_rung: u64,
    /// Notifications to kernel0 that rang nothing.
    pub to_kernel0_suppressed: u64,
    /// Doorbells nodes rang to kernel0 after fan-in pushes (all epochs).
    pub fanin_rung: u64,
    /// Fan-in notifications that rang nothing (kernel0 was not asleep on
    /// the channel, or already rung for this sleep).
    pub fanin_suppressed: u64,
    /// Doorbell IPIs kernel0 took.
    pub taken: u64,
    /// Sleeps kernel0 took waiting on response rings.
    pub sleeps: u64,
    /// Of those, ended by a doorbell with the answer there.
    pub woken: u64,
    /// Sleep announcements whose re-check found the answer already there.
    pub rechecks_ready: u64,
    /// Wake-ups that found no answer (a doorbell for another ring, or the
    /// APIC timer slice); kernel0 slept again.
    pub spurious: u64,
    /// Kernel0's waits on the fan-in channel (its need_wakeup word).
    pub fanin: WaitStats,
}

impl Bells {
    /// Every doorbell the nodes rang to kernel0.
    pub fn rung_to_kernel0(&self) -> u64 {
        self.to_kernel0_rung + self.fanin_rung
    }
}

/// How long the final accounting waits for IPIs still pending (kernel0
/// takes them only while asleep) and for the nodes' last counter updates.
const SETTLE_US: u64 = 100_000;

/// Checks kernel0's doorbell IPIs against what the nodes say they rang
/// (none spurious, none missing but for merges into a pending IPI, see
/// below), and gathers the counters. Kernel0 sleeps while it waits, so
/// IPIs that arrived while it ran with interrupts masked are taken.
/// `fanin` is kernel0's sleeper statistics on the fan-in channel.
pub fn check_bells(ctl: &Control, nodes: &[Node], fanin: WaitStats) -> Result<Bells, Error> {
    let rung_by_nodes = || {
        nodes.iter().fold(0, |sum, n| {
            sum + n.bells_past.0
                + crate::nodes::bells_of(ctl, n.id).0
                + n.fanin_bells_past.0
                + crate::nodes::fanin_bells_of(ctl, n.id).0
        })
    };
    wait::until(tsc::deadline_after_us(SETTLE_US), || {
        idt::ipi_count() == rung_by_nodes()
    });
    let mut b = Bells {
        taken: idt::ipi_count(),
        fanin,
        ..Bells::default()
    };
    for n in nodes {
        let (rung, suppressed) = crate::nodes::bells_of(ctl, n.id);
        b.to_kernel0_rung += n.bells_past.0 + rung;
        b.to_kernel0_suppressed += n.bells_past.1 + suppressed;
        let (rung, suppressed) = crate::nodes::fanin_bells_of(ctl, n.id);
        b.fanin_rung += n.fanin_bells_past.0 + rung;
        b.fanin_suppressed += n.fanin_bells_past.1 + suppressed;
        if let Some(link) = n.link.as_ref() {
            let (s, w) = (link.tx_bell.stats(), link.rx_sleep.stats());
            b.to_nodes_rung += s.rung;
            b.to_nodes_suppressed += s.suppressed;
            b.sleeps += w.sleeps;
            b.woken += w.woken;
            b.rechecks_ready += w.rechecks_ready;
            b.spurious += w.spurious;
        }
    }
    // Not one IPI more than rung (none spurious). Fewer only by merges: the
    // local APIC keeps one pending interrupt per vector, so a doorbell that
    // arrives while an earlier one is still pending (kernel0 runs with
    // interrupts masked except in `hlt`) is merged into it. On a response
    // ring an IPI is left pending only when kernel0 announced a sleep and
    // its re-check found the answer already there, so at most one merge per
    // such re-check. On the fan-in channel several producers may ring for
    // the same announced sleep: of those rings, one per sleep that ended
    // woken was taken; the others (and any for a re-check that found work)
    // may merge.
    let rung = b.rung_to_kernel0();
    let fanin_slack = b.fanin_rung.saturating_sub(b.fanin.woken) + b.fanin.rechecks_ready;
    if b.taken > rung || rung - b.taken > b.rechecks_ready + fanin_slack {
        return Err(Error::IpiCount(rung, b.taken));
    }
    Ok(b)
}
