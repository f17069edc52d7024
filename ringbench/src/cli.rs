//! Command-line options of the `ringbench` binary.

use std::path::PathBuf;

/// How to call the binary.
pub const USAGE: &str = "usage: ringbench [--quick] [--reps N] [--only NAME,...] [--json PATH] [--plot PATH.svg] [--cross-process]
  --cross-process: each server runs in a separate process (this binary re-executed,
  pinned to the other CPU); the table, JSON and plot then hold only the cross-process
  contenders (floor/xp, mkipc-spsc/xp, eventfd/xp, pipe/xp, uds/xp,
  mkipc-spsc-futex/xp, mkipc-spsc-eventfd/xp, mkipc-spsc-futex-spin/xp, iceoryx2/xp),
  with ratios to floor/xp of the same run; --only takes their names with or without /xp.";

/// What to run and where to write it.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Repetitions; every contender runs once in each, interleaved.
    pub reps: usize,
    /// Round trips sampled per contender per repetition.
    pub samples: usize,
    /// Messages streamed per throughput contender per repetition.
    pub stream_messages: u64,
    /// 1 MiB transfers per bulk contender per repetition.
    pub bulk_transfers: u64,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Where to draw the SVG chart.
    pub plot: Option<PathBuf>,
    /// Contenders to run (empty: all); the floor always runs.
    pub only: Vec<String>,
    /// Run the cross-process contenders instead (servers in a child process).
    pub cross_process: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            reps: 7,
            samples: 100_000,
            stream_messages: 2_000_000,
            bulk_transfers: 1000,
            json: None,
            plot: None,
            only: Vec::new(),
            cross_process: false,
        }
    }
}

/// What the arguments ask for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Measure.
    Run(Options),
    /// Print the usage.
    Help,
}

/// Parses the arguments (without the program name); an error names the problem.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut opts = Options::default();
    let mut reps = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                opts.reps = 3;
                opts.samples = 20_000;
                opts.stream_messages = 500_000;
                opts.bulk_transfers = 250;
            }
            "--reps" => {
                let v = args.next().ok_or("--reps needs a number")?;
                reps = Some(
                    v.parse()
                        .ok()
                        .filter(|&n: &usize| n > 0)
                        .ok_or(format!("--reps needs a positive number, got `{v}`"))?,
                );
            }
            "--json" => {
                let v = args.next().ok_or("--json needs a file path")?;
                opts.json = Some(PathBuf::from(v));
            }
            "--plot" => {
                let v = args
                    .next()
                    .ok_or("--plot needs a file path ending in .svg")?;
                if !v.ends_with(".svg") || v.len() <= ".svg".len() {
                    return Err(format!(
                        "--plot draws SVG: the path must end in .svg, got `{v}`"
                    ));
                }
                opts.plot = Some(PathBuf::from(v));
            }
            "--only" => {
                let v = args
                    .next()
                    .ok_or("--only needs contender names, e.g. rtrb,pipe")?;
                opts.only = v.split(',').map(str::to_string).collect();
            }
            "--cross-process" => opts.cross_process = true,
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let Some(r) = reps {
        opts.reps = r;
    }
    Ok(Command::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(o),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_quick_and_paths() {
        assert_eq!(run(&[]).unwrap(), Options::default());
        let q = run(&["--quick", "--json", "out.json", "--plot", "out.svg"]).unwrap();
        assert_eq!(q.reps, 3);
        assert!(q.samples < Options::default().samples);
        assert_eq!(q.json, Some(PathBuf::from("out.json")));
        assert_eq!(q.plot, Some(PathBuf::from("out.svg")));
        // --reps wins over --quick whatever the order.
        assert_eq!(run(&["--reps", "5", "--quick"]).unwrap().reps, 5);
        assert_eq!(parse(["--help".to_string()]), Ok(Command::Help));
        assert!(!q.cross_process);
        assert!(run(&["--cross-process", "--quick"]).unwrap().cross_process);
    }

    #[test]
    fn bad_input_is_rejected_with_the_problem_named() {
        let err = |args: &[&str]| run(args).unwrap_err();
        assert!(err(&["--frobnicate"]).contains("--frobnicate"));
        assert!(err(&["--reps"]).contains("--reps"));
        assert!(err(&["--only"]).contains("--only"));
        assert_eq!(run(&["--only", "a,b"]).unwrap().only, ["a", "b"]);
        assert!(err(&["--reps", "0"]).contains("`0`"));
        assert!(err(&["--reps", "many"]).contains("`many`"));
        assert!(err(&["--json"]).contains("--json"));
        assert!(err(&["--plot"]).contains("--plot"));
        assert!(err(&["--plot", "chart.png"]).contains("chart.png"));
        assert!(err(&["--plot", ".svg"]).contains(".svg"));
    }
}
