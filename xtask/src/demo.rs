//! `cargo xtask demo`: the main job.
//!
//! Boots kernel 0 and its secondaries in QEMU (`kernels/`), each on its own CPU,
//! talking through mkipc rings; kernel 0 crashes and restarts a secondary while
//! the others keep serving. `--threads` runs the two-thread userspace demo instead.

use std::process::Command;

use crate::run::{StatusOk, cargo, root};
use crate::setup;

const USAGE: &str = "usage: cargo xtask demo [--smp N (2..=8, default 2)] [--kvm] [--threads]";

pub fn run(args: Vec<String>) -> Result<(), String> {
    let mut smp = 2u32;
    let mut kvm = false;
    let mut threads = false;
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
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if threads {
        return cargo(&["run", "--quiet", "--release", "-p", "mkipc-examples"])
            .args(["--example", "two_threads"])
            .status_ok("two-thread demo");
    }
    qemu(smp, kvm)
}

/// Boots `smp` CPUs: kernel 0 plus `smp - 1` secondary kernels.
pub fn qemu(smp: u32, kvm: bool) -> Result<(), String> {
    setup::qemu()?;
    let mut cmd = Command::new(root().join("kernels/run.sh"));
    cmd.arg(smp.to_string());
    if kvm {
        cmd.env("QEMU_ACCEL", "kvm");
    }
    cmd.status_ok(&format!(
        "{smp}-CPU QEMU run (kernel 0 reports why in its log above)"
    ))
}
