//! The physical floor of any message passing between kernel0 and a node:
//! one control-page word each way (kernel0 writes round i, the node echoes
//! i), measured between the same two CPUs in the same run as the rings, so
//! ring round trips can be reported as a multiple of it.

use crate::error::Error;
use crate::nodes::Node;
use crate::pingpong::{self, Mode};
use crate::stats::Samples;
use bootparse::layout::control as c;
use bootparse::wire::OP_FLOOR;
use core::sync::atomic::Ordering;
use platform::control::Control;
use platform::{cpu, tsc};

/// Bound on one floor round.
const ROUND_TIMEOUT_US: u64 = 100_000;

/// Measures `samples`' target count of raw round trips with `node`.
pub fn run(
    ctl: &Control,
    node: &mut Node,
    samples: &mut Samples,
    rounds: u64,
) -> Result<(), Error> {
    let ping = ctl.node(node.id, c::FLOOR_PING);
    let pong = ctl.node(node.id, c::FLOOR_PONG);
    ping.store(0, Ordering::Relaxed);
    pingpong::set_mode(ctl, node, Mode::Poll);
    let (ack, _) = pingpong::call(node, Mode::Poll, OP_FLOOR, rounds)?;
    if ack != rounds {
        return Err(Error::WrongAnswer(node.id, node.seq, ack));
    }
    samples.clear();
    for i in 1..=rounds {
        let deadline = tsc::deadline_after_us(ROUND_TIMEOUT_US);
        let t0 = cpu::rdtsc();
        // Release/Acquire pair with the node's Acquire load of FLOOR_PING
        // and Release store of FLOOR_PONG.
        ping.store(i, Ordering::Release);
        let mut spins = 0u32;
        while pong.load(Ordering::Acquire) != i {
            spins = spins.wrapping_add(1);
            // Reading the TSC every spin would slow the loop being measured.
            if spins.is_multiple_of(256) && tsc::passed(deadline) {
                return Err(Error::PingTimeout(node.id, i));
            }
            cpu::pause();
        }
        samples.push(cpu::rdtsc() - t0);
    }
    Ok(())
}
