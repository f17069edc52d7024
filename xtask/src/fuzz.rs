//! `cargo xtask fuzz [--seconds N]`: every fuzz target, longer than `xtask test`
//! does, each seeded from `fuzz/seeds/<target>/` (checked in) besides its own
//! `fuzz/corpus/<target>/` (not checked in).

use std::path::Path;

use crate::run::StatusOk;
use crate::setup;

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u32 = 300;

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or("`--seconds` needs a number")?;
                seconds = value
                    .parse()
                    .map_err(|_| format!("`--seconds {value}`: give a whole number of seconds"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument `{other}`; usage: cargo xtask fuzz [--seconds N]"
                ));
            }
        }
    }
    setup::cargo_fuzz()?;
    run_all(seconds)
}

/// The targets `cargo fuzz list` reports.
fn targets(dir: &Path) -> Result<Vec<String>, String> {
    let list = std::process::Command::new("cargo")
        .args(["+nightly", "fuzz", "list"])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    let targets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        return Err("cargo fuzz list found no targets".into());
    }
    Ok(targets)
}

/// Runs every target for `seconds`, with its corpus and its checked-in seeds.
pub fn run_all(seconds: u32) -> Result<(), String> {
    let dir = crate::run::root().join("fuzz");
    for target in targets(&dir)? {
        let corpus = format!("corpus/{target}");
        std::fs::create_dir_all(dir.join(&corpus))
            .map_err(|e| format!("cannot create fuzz/{corpus}: {e}"))?;
        let mut cmd = std::process::Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "run", &target, &corpus]);
        let seeds = format!("seeds/{target}");
        if dir.join(&seeds).is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .current_dir(&dir)
            .status_ok(&format!("fuzz target {target}"))?;
    }
    Ok(())
}
