//! The measured phase: per node, interleaved repetitions of the raw floor,
//! the ring round trip in poll mode and the ring round trip with IPIs, each
//! summarised; the figures kept are medians over the repetitions.

use crate::error::Error;
use crate::floor;
use crate::nodes::Node;
use crate::pingpong::{self, Mode};
use crate::stats::{Samples, Summary};
use platform::control::Control;
use platform::{println, tsc};

/// Repetitions of each contender per node.
pub const REPS: usize = 5;
/// Floor round trips per repetition.
pub const FLOOR_ROUNDS: usize = 1000;
/// Poll-mode ring round trips per repetition.
pub const POLL_PINGS: usize = 1000;
/// IPI-mode ring round trips per repetition.
pub const IPI_PINGS: usize = 200;

/// Median-of-repetitions figures for one node, in TSC cycles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// One word each way.
    pub floor: Summary,
    /// mkipc rings, both sides spinning.
    pub poll: Summary,
    /// mkipc rings, both sides sleeping, woken by IPIs.
    pub ipi: Summary,
}

fn median(reps: &mut [Summary; REPS]) -> Summary {
    reps.sort_unstable_by_key(|s| s.p50);
    reps[REPS / 2]
}

/// Runs the interleaved repetitions for one node.
pub fn measure(ctl: &Control, node: &mut Node, samples: &mut Samples) -> Result<Figures, Error> {
    let mut floor_reps = [Summary::default(); REPS];
    let mut poll_reps = [Summary::default(); REPS];
    let mut ipi_reps = [Summary::default(); REPS];
    for r in 0..REPS {
        samples.reset(FLOOR_ROUNDS);
        floor::run(ctl, node, samples, FLOOR_ROUNDS as u64)?;
        floor_reps[r] = samples.summary();
        samples.reset(POLL_PINGS);
        pingpong::run(ctl, node, Mode::Poll, 20, samples)?;
        poll_reps[r] = samples.summary();
        samples.reset(IPI_PINGS);
        pingpong::run(ctl, node, Mode::Ipi, 5, samples)?;
        ipi_reps[r] = samples.summary();
        println!(
            "node {} rep {}: p50 floor {} ns, ring poll {} ns, ring+IPI {} ns",
            node.id,
            r + 1,
            tsc::ns_from_cycles(floor_reps[r].p50),
            tsc::ns_from_cycles(poll_reps[r].p50),
            tsc::ns_from_cycles(ipi_reps[r].p50)
        );
    }
    Ok(Figures {
        floor: median(&mut floor_reps),
        poll: median(&mut poll_reps),
        ipi: median(&mut ipi_reps),
    })
}

/// `num / den` with one decimal, as (whole, tenths).
pub fn ratio(num: u64, den: u64) -> (u64, u64) {
    if den == 0 {
        return (0, 0);
    }
    let tenths = (num * 10 + den / 2) / den;
    (tenths / 10, tenths % 10)
}
