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
use ringbench::contenders::bulk::{self, BULK};
use ringbench::contenders::fan_in::{self, FAN_IN, PRODUCERS};
use ringbench::contenders::{ALL, BATCH, Contender, LARGE, SMALL};
use ringbench::cross_process;
use ringbench::harness::Cpus;
use ringbench::report::{BulkEntry, Entry, FanInEntry, Report};
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
    let mut bulk_per_rep: Vec<Vec<f64>> = BULK.iter().map(|_| Vec::new()).collect();
    let mut fan_in_rates: Vec<Vec<f64>> = FAN_IN.iter().map(|_| Vec::new()).collect();
    let t0 = Instant::now();
    for rep in 0..opts.reps {
        for (c, rates) in FAN_IN.iter().zip(fan_in_rates.iter_mut()) {
            eprint!(
                "\r[{:>5.1}s] rep {}/{}: fan-in {:<15}",
                t0.elapsed().as_secs_f64(),
                rep + 1,
                opts.reps,
                c.name
            );
            let t = (c.run)(Some(cpus), opts.stream_messages);
            let secs = t.max(Duration::from_nanos(1)).as_secs_f64();
            rates.push(opts.stream_messages as f64 / secs);
        }
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
        for (c, s) in BULK.iter().zip(bulk_per_rep.iter_mut()) {
            eprint!(
                "\r[{:>5.1}s] rep {}/{}: {:<22}",
                t0.elapsed().as_secs_f64(),
                rep + 1,
                opts.reps,
                c.name
            );
            let t = (c.run)(Some(cpus), bulk::MIB, opts.bulk_transfers);
            let secs = t.max(Duration::from_nanos(1)).as_secs_f64();
            s.push((bulk::MIB as u64 * opts.bulk_transfers) as f64 / secs);
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
    let bulk = BULK
        .iter()
        .zip(&bulk_per_rep)
        .map(|(c, s)| BulkEntry {
            name: format!("{}-{}", c.name, bulk::size_label(bulk::MIB)),
            bytes_per_s: median(s),
        })
        .collect();
    let baseline = FAN_IN
        .iter()
        .position(|c| c.name == fan_in::BASELINE)
        .expect("the fan-in baseline is listed");
    let fan_in = FAN_IN
        .iter()
        .zip(&fan_in_rates)
        .map(|(c, rates)| {
            let ratios: Vec<f64> = rates
                .iter()
                .zip(&fan_in_rates[baseline])
                .map(|(r, b)| r / b)
                .collect();
            FanInEntry {
                name: c.name.to_string(),
                producers: PRODUCERS,
                msgs_per_s: median(rates),
                ratio_to_baseline: median(&ratios),
            }
        })
        .collect();
    Report {
        floor_rtt_ns: results[0].rtt_p50_ns,
        results,
        bulk,
        fan_in,
    }
}

/// Doorbells rung per message in a saturated stream, for each doorbell contender
/// (median over repetitions; the target is at most 0.01).
fn print_doorbell_rates(opts: &Options, cpus: Cpus) {
    use ringbench::contenders::DEFAULT_SPIN_BUDGET;
    use ringbench::contenders::mkipc_doorbell::{Eventfd, Futex, stream_doorbells};
    type Run = fn(Option<Cpus>, u64) -> (Duration, f64, mkipc::doorbell::NotifyStats);
    let runs: [(&str, Run); 3] = [
        ("mkipc-spsc-futex", |c, n| {
            stream_doorbells::<Futex>(0, c, n)
        }),
        ("mkipc-spsc-eventfd", |c, n| {
            stream_doorbells::<Eventfd>(0, c, n)
        }),
        ("mkipc-spsc-futex-spin", |c, n| {
            stream_doorbells::<Futex>(DEFAULT_SPIN_BUDGET, c, n)
        }),
    ];
    println!(
        "doorbells rung per message, saturated stream of {} {LARGE}-byte messages:",
        opts.stream_messages
    );
    for (name, run) in runs {
        let mut rates: Vec<f64> = (0..opts.reps)
            .map(|_| run(Some(cpus), opts.stream_messages).1)
            .collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "  {name:<22} median {:.5}  (min {:.5}, max {:.5}; target <= 0.01)",
            median(&rates),
            rates[0],
            rates[rates.len() - 1]
        );
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
         batches of {BATCH} where the API has them; bulk: median over repetitions of {} \
         1 MiB transfers one way, every byte written and read)",
        opts.stream_messages, opts.bulk_transfers
    );
    print_doorbell_rates(&opts, cpus);
    println!(
        "(fan-in: median over repetitions of {} {LARGE}-byte messages from {PRODUCERS} producer \
         threads sharing CPU {} into one receiver on CPU {}; x baseline: median of the \
         per-repetition ratio to {})",
        opts.stream_messages,
        cpus.server,
        cpus.client,
        fan_in::BASELINE
    );
    let subtitle = format!("{setup}; floor p50 {:.0} ns", report.floor_rtt_ns);
    if let Err(e) = report.save(opts.json.as_deref(), opts.plot.as_deref(), &subtitle) {
        eprintln!("ringbench: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
