//! `cargo xtask demo`: the main job.
//!
//! Boots kernel 0 and its secondaries in QEMU (`kernels/`), each on its own CPU,
//! talking through mkipc rings; kernel 0 crashes and restarts a secondary while
//! the others keep serving. `--threads` runs the two-thread userspace demo instead.
//! Kernel 0's timeouts and cycle count pass through to its command line; the run
//! passes only when QEMU reports success and the console shows every summary line.

use std::process::Command;

use crate::run::{StatusOk, cargo, root};
use crate::setup;

const USAGE: &str = "usage: cargo xtask demo [--smp N (2..=8, default 2)] [--kvm] [--threads]
       [--dead-ms N (default 200)] [--ap-start-ms N (default 1000)]
       [--handshake-ms N (default 3000)] [--crash-cycles N (default 4)]";

/// Lines kernel 0's summary must contain, each at the start of a line.
pub const SUMMARY_KEYS: [&str; 5] = [
    "kernels:",
    "handshake:",
    "traffic:",
    "latency:",
    "recovery:",
];

/// Kernel 0 command-line settings: flag, environment variable of `kernels/run.sh`.
const SETTINGS: [(&str, &str); 4] = [
    ("--dead-ms", "DEAD_MS"),
    ("--ap-start-ms", "AP_START_MS"),
    ("--handshake-ms", "HANDSHAKE_MS"),
    ("--crash-cycles", "CRASH_CYCLES"),
];

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut smp = 2u32;
    let mut kvm = false;
    let mut threads = false;
    let mut settings = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smp" => {
                let v = args
                    .next()
                    .ok_or(format!("--smp needs a CPU count\n{USAGE}"))?;
                smp = v
                    .parse()
                    .ok()
                    .filter(|n| (2..=8).contains(n))
                    .ok_or(format!("--smp takes 2 to 8 CPUs, got `{v}`\n{USAGE}"))?;
            }
            "--kvm" => kvm = true,
            "--threads" => threads = true,
            flag if SETTINGS.iter().any(|(f, _)| *f == flag) => {
                let v = args
                    .next()
                    .filter(|v| v.parse::<u64>().is_ok())
                    .ok_or(format!("{flag} needs a whole number\n{USAGE}"))?;
                let env = SETTINGS.iter().find(|(f, _)| *f == flag).map(|(_, e)| *e);
                settings.extend(env.map(|e| (e, v)));
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if threads {
        return cargo(&["run", "--quiet", "--release", "-p", "mkipc-examples"])
            .args(["--example", "two_threads"])
            .status_ok("two-thread demo");
    }
    qemu(smp, kvm, &settings)
}

/// Boots `smp` CPUs: kernel 0 plus `smp - 1` secondary kernels, with kernel 0
/// settings given as `kernels/run.sh` environment variables; then checks the
/// summary lines in the console log.
pub fn qemu(smp: u32, kvm: bool, settings: &[(&str, String)]) -> Result<(), String> {
    setup::qemu()?;
    let log = root().join(format!("kernels/target/qemu-demo-smp{smp}.log"));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new(root().join("kernels/run.sh"));
    cmd.arg(smp.to_string()).env("QEMU_LOG", &log);
    for (env, value) in settings {
        cmd.env(env, value);
    }
    if kvm {
        cmd.env("QEMU_ACCEL", "kvm");
    }
    cmd.status_ok(&format!(
        "{smp}-CPU QEMU run (kernel 0 reports why in its log above)"
    ))?;
    // run.sh has already failed the run unless the `handshake:` line says
    // every secondary connected through the core manifest and handshake.
    check_summary(&log)
}

/// Fails unless the console log at `log` has every summary line.
fn check_summary(log: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| format!("cannot read the console log {}: {e}", log.display()))?;
    let missing: Vec<&str> = SUMMARY_KEYS
        .iter()
        .copied()
        .filter(|key| !text.lines().any(|l| l.starts_with(key)))
        .collect();
    if missing.is_empty() {
        println!("xtask demo: summary verified ({})", SUMMARY_KEYS.join(" "));
        Ok(())
    } else {
        Err(format!(
            "the console log {} lacks the summary line(s) {}",
            log.display(),
            missing.join(" ")
        ))
    }
}
