//! `ringbench`: every contender interleaved in one run on two pinned cores,
//! reported as ratios to the cache-line floor measured in the same run.
//!
//! ```text
//! cargo run --release -p ringbench -- [--quick] [--reps N] [--json PATH] [--plot PATH.svg]
//! cargo run --release -p ringbench -- --cross-process [--quick] [--json PATH]
//! ```
//!
//! `--serve NAME` (hidden) is the server side of `--cross-process`, run in the child.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ringbench::cli::{self, Command, Options, USAGE};
use ringbench::clock::Clock;
use ringbench::contenders::{ALL, BATCH, Contender, LARGE, SMALL};
use ringbench::cross_process;
use ringbench::harness::Cpus;
use ringbench::report::{Entry, Report};
use ringbench::stats::{median, summarize};

/// One contender's measurements across repetitions.
#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    p50_per_rep: Vec<f64>,
    msgs_per_s_per_rep: Vec<f64>,
}

/// The contenders `--only` names (all by default), the floor always first.
fn chosen(opts: &Options) -> Result<Vec<&'static Contender>, String> {
    if let Some(unknown) = opts
        .only
        .iter()
        .find(|n| !ALL.iter().any(|c| c.name == **n))
    {
        let names: Vec<_> = ALL.iter().map(|c| c.name).collect();
        return Err(format!(
            "no contender named `{unknown}`; choose from {}",
            names.join(", ")
        ));
    }
    Ok(ALL
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || opts.only.is_empty() || opts.only.iter().any(|n| n == c.name))
        .map(|(_, c)| c)
        .collect())
}

fn measure(opts: &Options, contenders: &[&Contender], cpus: Cpus, clock: &Clock) -> Report {
    let mut series: Vec<Series> = contenders.iter().map(|_| Series::default()).collect();
    let t0 = Instant::now();
    for rep in 0..opts.reps {
        for (c, s) in contenders.iter().zip(series.iter_mut()) {
            eprint!(
                "\r[{:>5.1}s] rep {}/{}: {:<22}",
                t0.elapsed().as_secs_f64(),
                rep + 1,
                opts.reps,
                c.name
            );
            let mut running = (c.start)(Some(cpus));
            let mut samples = running.sample(opts.samples, clock);
            running.finish();
            s.p50_per_rep.push(summarize(&mut samples).p50);
            s.samples.extend(samples);
            if let Some(stream) = c.stream {
                let t = stream(Some(cpus), opts.stream_messages);
                let secs = t.max(Duration::from_nanos(1)).as_secs_f64();
                s.msgs_per_s_per_rep
                    .push(opts.stream_messages as f64 / secs);
            }
        }
    }
    eprintln!(
        "\r[{:>5.1}s] {} repetitions done{:30}",
        t0.elapsed().as_secs_f64(),
        opts.reps,
        ""
    );
    let floor_per_rep = series[0].p50_per_rep.clone();
    let results: Vec<Entry> = contenders
        .iter()
        .zip(series.iter_mut())
        .map(|(c, s)| {
            let sum = summarize(&mut s.samples);
            let ratios: Vec<f64> = s
                .p50_per_rep
                .iter()
                .zip(&floor_per_rep)
                .map(|(c, f)| c / f)
                .collect();
            Entry {
                name: c.name.to_string(),
                rtt_p50_ns: sum.p50,
                rtt_p99_ns: sum.p99,
                rtt_p999_ns: sum.p999,
                ratio_to_floor: median(&ratios),
                throughput_msgs_per_s: (!s.msgs_per_s_per_rep.is_empty())
                    .then(|| median(&s.msgs_per_s_per_rep)),
            }
        })
        .collect();
    Report {
        floor_rtt_ns: results[0].rtt_p50_ns,
        results,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(cross_process::SERVE_FLAG) {
        return cross_process::serve::main(&args[1..]);
    }
    let opts = match cli::parse(args) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Help) => {
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
    if opts.cross_process {
        return cross_process::run::main(&opts, cpus);
    }
    let contenders = match chosen(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringbench: {e}");
            return ExitCode::from(2);
        }
    };
    let clock = Clock::calibrate(Duration::from_millis(50));
    let report = measure(&opts, &contenders, cpus, &clock);
    print!("{}", report.table());
    let setup = format!(
        "{} repetitions, interleaved, CPUs {} and {}; round trip: {} x {SMALL}-byte echoes per repetition",
        opts.reps, cpus.client, cpus.server, opts.samples
    );
    println!("({setup})");
    println!(
        "(x floor: median over repetitions of p50 / floor p50 of the same repetition; \
         msgs/s: median over repetitions of {} {LARGE}-byte messages streamed one way, \
         batches of {BATCH} where the API has them)",
        opts.stream_messages
    );
    if let Some(path) = &opts.json
        && let Err(e) = std::fs::write(path, report.to_json())
    {
        eprintln!("ringbench: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if let Some(path) = &opts.plot {
        let subtitle = format!("{setup}; floor p50 {:.0} ns", report.floor_rtt_ns);
        if let Err(e) = report.plot_svg(path, &subtitle) {
            eprintln!("ringbench: cannot draw {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
