//! Installing what a fresh machine lacks (idempotent, quick when present).

use std::process::Command;

use crate::run::{StatusOk, root};

/// Targets the no_std core must build for.
pub const BARE_TARGETS: [&str; 3] = [
    "x86_64-unknown-none",
    "aarch64-unknown-none",
    "riscv64gc-unknown-none-elf",
];

/// Adds the bare-metal targets to the pinned toolchain.
pub fn targets() -> Result<(), String> {
    Command::new("rustup")
        .args(["target", "add"])
        .args(BARE_TARGETS)
        .current_dir(root())
        .status_ok("rustup target add (needs rustup on PATH)")
}

/// Makes sure nightly with Miri is installed (Miri only exists on nightly).
pub fn miri() -> Result<(), String> {
    let has_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new("rustup");
    if has_nightly {
        cmd.args([
            "component",
            "add",
            "--toolchain",
            "nightly",
            "miri",
            "rust-src",
        ]);
    } else {
        cmd.args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .args(["--component", "miri", "--component", "rust-src"]);
    }
    cmd.status_ok("installing nightly Miri")?;
    Command::new("cargo")
        .args(["+nightly", "miri", "setup"])
        .current_dir(root())
        .status_ok("cargo miri setup")
}

/// Makes sure `cargo fuzz` is installed (built from crates.io with nightly).
pub fn cargo_fuzz() -> Result<(), String> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    Command::new("cargo")
        .args(["+nightly", "install", "cargo-fuzz", "--locked"])
        .status_ok("installing cargo-fuzz")
}
