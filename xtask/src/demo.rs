//! `cargo xtask demo`: the main job.
//!
//! Until the two-kernel QEMU demo lands, it runs the two-thread SPSC demo on two
//! pinned CPUs and says so.

use crate::run::{StatusOk, cargo};

pub fn run(args: Vec<String>) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!(
            "`cargo xtask demo` takes no arguments yet, got `{a}`"
        ));
    }
    cargo(&[
        "run",
        "--quiet",
        "--release",
        "-p",
        "mkipc-examples",
        "--example",
        "two_threads",
    ])
    .status_ok("two-thread demo")
}
