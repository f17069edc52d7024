//! `ringbench --cross-process`: every cross-process contender interleaved in one
//! run, like the in-process run, reported as ratios to `floor/xp` of the same run.
//! The report (table, JSON, plot) holds only the cross-process contenders.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::{XP_ALL, XpContender, XpError, find};
use crate::cli::Options;
use crate::clock::Clock;
use crate::contenders::SMALL;
use crate::harness::Cpus;
use crate::report::{Entry, Report};
use crate::stats::{median, summarize};

/// The contenders `--only` names (by report or server name; all by default), the
/// floor always first.
pub fn chosen(only: &[String]) -> Result<Vec<&'static XpContender>, String> {
    if let Some(unknown) = only.iter().find(|n| find(n).is_none()) {
        let names: Vec<_> = XP_ALL.iter().map(|c| c.name).collect();
        return Err(format!(
            "no cross-process contender named `{unknown}`; choose from {}",
            names.join(", ")
        ));
    }
    Ok(XP_ALL
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            *i == 0
                || only.is_empty()
                || only
                    .iter()
                    .any(|n| find(n).is_some_and(|f| std::ptr::eq(f, *c)))
        })
        .map(|(_, c)| c)
        .collect())
}

/// A contender that failed, and how.
#[derive(Debug)]
pub struct Failure {
    /// The contender's report name.
    pub contender: &'static str,
    /// What went wrong.
    pub error: XpError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cross-process contender `{}` failed: {}",
            self.contender, self.error
        )
    }
}

/// Runs `opts.reps` repetitions of every contender in `contenders` (servers
/// started from `exe`), interleaved; the first contender is the floor.
pub fn measure(
    opts: &Options,
    contenders: &[&'static XpContender],
    exe: &Path,
    cpus: Option<Cpus>,
    clock: &Clock,
) -> Result<Report, Failure> {
    let mut samples: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    let mut p50s: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    let t0 = Instant::now();
    for rep in 0..opts.reps {
        for (i, c) in contenders.iter().enumerate() {
            eprint!(
                "\r[{:>5.1}s] rep {}/{}: {:<24}",
                t0.elapsed().as_secs_f64(),
                rep + 1,
                opts.reps,
                c.name
            );
            let failed = |error| Failure {
                contender: c.name,
                error,
            };
            let mut running = (c.start)(exe, cpus).map_err(failed)?;
            let mut s = running.sample(opts.samples, clock).map_err(failed)?;
            running.finish().map_err(failed)?;
            p50s[i].push(summarize(&mut s).p50);
            samples[i].extend(s);
        }
    }
    eprintln!(
        "\r[{:>5.1}s] {} repetitions done{:30}",
        t0.elapsed().as_secs_f64(),
        opts.reps,
        ""
    );
    let floor = p50s[0].clone();
    let results: Vec<Entry> = contenders
        .iter()
        .zip(samples.iter_mut().zip(&p50s))
        .map(|(c, (s, p50))| {
            let sum = summarize(s);
            let ratios: Vec<f64> = p50.iter().zip(&floor).map(|(c, f)| c / f).collect();
            Entry {
                name: c.name.to_string(),
                rtt_p50_ns: sum.p50,
                rtt_p99_ns: sum.p99,
                rtt_p999_ns: sum.p999,
                ratio_to_floor: median(&ratios),
                throughput_msgs_per_s: None,
            }
        })
        .collect();
    Ok(Report {
        floor_rtt_ns: results[0].rtt_p50_ns,
        results,
        bulk: Vec::new(),
        fan_in: Vec::new(),
    })
}

/// The `--cross-process` command: measures with servers re-executed from this
/// binary, prints the table, writes the JSON and the plot.
pub fn main(opts: &Options, cpus: Cpus) -> ExitCode {
    let contenders = match chosen(&opts.only) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringbench: {e}");
            return ExitCode::from(2);
        }
    };
    let exe = PathBuf::from("/proc/self/exe");
    let clock = Clock::calibrate(Duration::from_millis(50));
    let report = match measure(opts, &contenders, &exe, Some(cpus), &clock) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("\nringbench: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    let setup = format!(
        "cross-process: servers in a separate process; {} repetitions, interleaved, \
         CPUs {} (client process) and {} (server process); round trip: {} x {SMALL}-byte \
         echoes per repetition",
        opts.reps, cpus.client, cpus.server, opts.samples
    );
    println!("({setup})");
    println!(
        "(x floor: median over repetitions of p50 / floor/xp p50 of the same repetition; \
         no streams in this mode)"
    );
    let subtitle = format!("{setup}; floor/xp p50 {:.0} ns", report.floor_rtt_ns);
    if let Err(e) = report.save(opts.json.as_deref(), opts.plot.as_deref(), &subtitle) {
        eprintln!("ringbench: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(only: &[&str]) -> Result<Vec<&'static str>, String> {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        chosen(&only).map(|c| c.iter().map(|c| c.name).collect())
    }

    #[test]
    fn only_selects_by_either_name_and_keeps_the_floor_first() {
        assert_eq!(names(&[]).unwrap().len(), XP_ALL.len());
        assert_eq!(names(&["pipe"]).unwrap(), ["floor/xp", "pipe/xp"]);
        assert_eq!(
            names(&["uds/xp", "mkipc-spsc"]).unwrap(),
            ["floor/xp", "mkipc-spsc/xp", "uds/xp"]
        );
        let err = names(&["rtrb"]).unwrap_err();
        assert!(
            err.contains("`rtrb`") && err.contains("mkipc-spsc/xp"),
            "{err}"
        );
    }
}
