//! Project automation, run as `cargo xtask <command>`.
//!
//! * `demo`: the main job (see README).
//! * `test`: everything CI runs; installs what a fresh machine lacks.
//! * `bench [ARGS]`: the ringbench comparison (`--quick`, `--json PATH`).
//! * `fuzz [--seconds N]`: every fuzz target for N seconds (default 300).

mod demo;
mod fuzz;
mod run;
mod setup;
mod test;

use run::StatusOk;

use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask <demo | test | bench [ringbench args] | fuzz [--seconds N]>";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("demo") => demo::run(args.collect()),
        Some("test") => test::run(args.collect()),
        Some("fuzz") => fuzz::run(args.collect()),
        Some("bench") => run::cargo(&["run", "--release", "-p", "ringbench", "--"])
            .args(args)
            .status_ok("ringbench"),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
        None => Err(format!("no command given\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
