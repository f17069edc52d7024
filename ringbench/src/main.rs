//! `ringbench`: every contender interleaved in one run on two pinned cores,
//! reported as ratios to the cache-line floor measured in the same run.
//!
//! ```text
//! cargo run --release -p ringbench -- [--quick] [--reps N] [--json PATH]
//! ```

use std::process::ExitCode;

use ringbench::clock::Clock;
use ringbench::contenders::{floor, mkipc_spsc};
use ringbench::harness::{Client, Cpus, Running, Server};
use ringbench::stats::{median, summarize};
use serde::Serialize;

const USAGE: &str = "usage: ringbench [--quick] [--reps N] [--json PATH]";

struct Options {
    reps: usize,
    samples: usize,
    json: Option<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        reps: 7,
        samples: 100_000,
        json: None,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                opts.reps = 3;
                opts.samples = 20_000;
            }
            "--reps" => {
                let v = args.next().ok_or("--reps needs a number")?;
                opts.reps = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--reps needs a positive number, got `{v}`"))?;
            }
            "--json" => opts.json = Some(args.next().ok_or("--json needs a file path")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(opts)
}

/// One contender's figures.
#[derive(Serialize)]
struct Entry {
    name: &'static str,
    rtt_p50_ns: f64,
    rtt_p99_ns: f64,
    rtt_p999_ns: f64,
    ratio_to_floor: f64,
}

#[derive(Serialize)]
struct Report {
    floor_rtt_ns: f64,
    results: Vec<Entry>,
}

/// Samples of one contender across repetitions.
struct Series {
    name: &'static str,
    samples: Vec<f64>,
    p50_per_rep: Vec<f64>,
}

fn measure<C: Client, S: Server>(pair: (C, S), cpus: Cpus, n: usize, clock: &Clock) -> Vec<f64> {
    let mut running = Running::start(pair, cpus);
    let samples = running.sample(n, clock);
    running.finish();
    samples
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ringbench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cpus = match Cpus::first_two() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringbench: {e}");
            return ExitCode::from(2);
        }
    };
    let clock = Clock::calibrate(std::time::Duration::from_millis(50));
    let names = ["floor", "mkipc-spsc"];
    let mut series: Vec<Series> = names
        .iter()
        .map(|&name| Series {
            name,
            samples: Vec::new(),
            p50_per_rep: Vec::new(),
        })
        .collect();
    for rep in 0..opts.reps {
        for s in series.iter_mut() {
            eprint!("\rrep {}/{}: {:<12}", rep + 1, opts.reps, s.name);
            let mut samples = match s.name {
                "floor" => measure(floor::pair(), cpus, opts.samples, &clock),
                _ => measure(mkipc_spsc::pair(), cpus, opts.samples, &clock),
            };
            s.p50_per_rep.push(summarize(&mut samples).p50);
            s.samples.extend(samples);
        }
    }
    eprintln!();
    let floor_per_rep = series[0].p50_per_rep.clone();
    let results: Vec<Entry> = series
        .iter_mut()
        .map(|s| {
            let sum = summarize(&mut s.samples);
            let ratios: Vec<f64> = s
                .p50_per_rep
                .iter()
                .zip(&floor_per_rep)
                .map(|(c, f)| c / f)
                .collect();
            Entry {
                name: s.name,
                rtt_p50_ns: sum.p50,
                rtt_p99_ns: sum.p99,
                rtt_p999_ns: sum.p999,
                ratio_to_floor: median(&ratios),
            }
        })
        .collect();
    let report = Report {
        floor_rtt_ns: results[0].rtt_p50_ns,
        results,
    };
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>9}",
        "contender", "p50 ns", "p99 ns", "p99.9 ns", "x floor"
    );
    for e in &report.results {
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>10.1} {:>9.2}",
            e.name, e.rtt_p50_ns, e.rtt_p99_ns, e.rtt_p999_ns, e.ratio_to_floor
        );
    }
    println!(
        "({} repetitions x {} round trips each, interleaved; ratio = median over repetitions of p50 / floor p50)",
        opts.reps, opts.samples
    );
    if let Some(path) = opts.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("ringbench: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
