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

/// Debian package that provides `qemu-system-x86_64` and qboot.
const QEMU_PACKAGE: &str = "qemu-system-x86";

/// Makes sure QEMU and its qboot firmware are installed; installs them with apt
/// when running as root, else says which package is missing.
pub fn qemu() -> Result<(), String> {
    let present = |p: &str| std::path::Path::new(p).exists();
    if present("/usr/bin/qemu-system-x86_64") && present("/usr/share/qemu/qboot.rom") {
        return Ok(());
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root_user {
        return Err(format!(
            "QEMU is missing: install the Debian package `{QEMU_PACKAGE}` \
             (sudo apt-get install -y {QEMU_PACKAGE}), then run this again"
        ));
    }
    eprintln!("xtask: QEMU is missing; installing {QEMU_PACKAGE} with apt-get");
    Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok("apt-get update")?;
    Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", QEMU_PACKAGE])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status_ok(&format!("apt-get install {QEMU_PACKAGE}"))
}

/// Makes sure `cbindgen` (which generates the C ABI header) is installed.
pub fn cbindgen() -> Result<(), String> {
    let present = Command::new("cbindgen")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    Command::new("cargo")
        .args(["install", "cbindgen", "--locked"])
        .status_ok("installing cbindgen")
}
