//! `cargo xtask test`: every check CI runs, in order of fast feedback.

use std::time::Instant;

use crate::run::{StatusOk, cargo};
use crate::setup;

type Step = (&'static str, fn() -> Result<(), String>);

const STEPS: &[Step] = &[
    ("setup: targets", setup::targets),
    ("fmt", fmt),
    ("clippy", clippy),
    ("atomics facade", facade),
    ("tests", tests),
    ("no_std builds", no_std),
    ("loom models", loom),
    ("setup: cbindgen", setup::cbindgen),
    ("capi: header, lints, C programs", capi),
    ("setup: qemu", setup::qemu),
    ("kernels: lints, host tests, 2- and 4-CPU boots", kernels),
    ("setup: miri", setup::miri),
    ("miri (core)", miri),
    ("setup: cargo-fuzz", setup::cargo_fuzz),
    ("fuzz (short)", fuzz_short),
];

pub fn run(args: Vec<String>) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!("`cargo xtask test` takes no arguments, got `{a}`"));
    }
    let all = Instant::now();
    for (i, (name, step)) in STEPS.iter().enumerate() {
        eprintln!("\n==> [{}/{}] {name}", i + 1, STEPS.len());
        let t = Instant::now();
        if let Err(e) = step() {
            println!("steps: {i} passed, 1 failed");
            return Err(format!("step `{name}` failed: {e}"));
        }
        eprintln!("==> {name} ok in {:.0?}", t.elapsed());
    }
    eprintln!("\nall checks passed in {:.0?}", all.elapsed());
    println!("steps: {} passed, 0 failed", STEPS.len());
    Ok(())
}

fn fmt() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"]).status_ok("cargo fmt --check (run `cargo fmt`)")
}

fn clippy() -> Result<(), String> {
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
    .status_ok("cargo clippy")
}

/// Atomics in the core must come from `mkipc/src/sync.rs`, so loom models them all.
fn facade() -> Result<(), String> {
    let src = crate::run::root().join("mkipc/src");
    let mut offenders = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") && !path.ends_with("sync.rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains("sync::atomic") {
                    offenders.push(path.display().to_string());
                }
            }
        }
    }
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "use crate::sync instead of `sync::atomic` in: {}",
            offenders.join(", ")
        ))
    }
}

fn tests() -> Result<(), String> {
    cargo(&["test", "--workspace"]).status_ok("cargo test")
}

fn no_std() -> Result<(), String> {
    for target in setup::BARE_TARGETS {
        cargo(&[
            "build",
            "-p",
            "mkipc",
            "--no-default-features",
            "--target",
            target,
        ])
        .status_ok(&format!("no_std build of mkipc for {target}"))?;
    }
    cargo(&["build", "-p", "mkipc-sys", "--no-default-features"])
        .args(["--target", "x86_64-unknown-none"])
        .status_ok("no_std build of mkipc-sys")
}

/// The C ABI: the checked-in header must be what cbindgen generates now; lints
/// with the feature on; then the C programs (gcc) against the cdylib, the
/// staticlib and the bare-metal staticlib, and the ABI's Rust-side tests.
fn capi() -> Result<(), String> {
    let root = crate::run::root();
    let header = root.join("mkipc-sys/include/mkipc.h");
    let fresh = root.join("target/capi/mkipc.h");
    std::fs::create_dir_all(root.join("target/capi")).map_err(|e| e.to_string())?;
    std::process::Command::new("cbindgen")
        .args(["-q", "--config", "mkipc-sys/cbindgen.toml", "--output"])
        .arg(&fresh)
        .arg("mkipc-sys/src/capi/mod.rs")
        .current_dir(&root)
        .status_ok("cbindgen")?;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    if read(&header)? != read(&fresh)? {
        return Err(format!(
            "{} is stale: regenerate it with `cbindgen --config mkipc-sys/cbindgen.toml \
             --output mkipc-sys/include/mkipc.h mkipc-sys/src/capi/mod.rs` and commit it",
            header.display()
        ));
    }
    cargo(&[
        "clippy",
        "-p",
        "mkipc-sys",
        "--features",
        "capi",
        "--all-targets",
    ])
    .args(["--", "-D", "warnings"])
    .status_ok("clippy with the capi feature")?;
    cargo(&["clippy", "-p", "mkipc-sys", "--no-default-features"])
        .args([
            "--features",
            "capi,panic-handler",
            "--target",
            "x86_64-unknown-none",
        ])
        .args(["--", "-D", "warnings"])
        .status_ok("clippy of the bare-metal C ABI")?;
    cargo(&["test", "-p", "mkipc-sys", "--features", "capi"]).status_ok("C ABI tests")
}

/// Every `mkipc/tests/loom_*.rs` model, with a preemption bound.
fn loom() -> Result<(), String> {
    let dir = crate::run::root().join("mkipc/tests");
    let mut models: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| Some(n.strip_prefix("loom_")?.strip_suffix(".rs")?.to_string()))
        .collect();
    models.sort();
    if models.is_empty() {
        return Err("no loom models found in mkipc/tests".into());
    }
    let mut cmd = cargo(&["test", "-p", "mkipc", "--release"]);
    for m in &models {
        cmd.args(["--test", &format!("loom_{m}")]);
    }
    cmd.env("RUSTFLAGS", "--cfg loom")
        .env("LOOM_MAX_PREEMPTIONS", "3")
        .env("CARGO_TARGET_DIR", crate::run::root().join("target/loom"))
        .status_ok("loom models")
}

/// The bare-metal workspace's own checks, ending in QEMU boots with 2 and 4 CPUs.
fn kernels() -> Result<(), String> {
    std::process::Command::new(crate::run::root().join("kernels/check.sh"))
        .status_ok("kernels/check.sh")
}

fn miri() -> Result<(), String> {
    cargo(&["+nightly", "miri", "test", "-p", "mkipc"])
        .env("CARGO_TARGET_DIR", crate::run::root().join("target/miri"))
        .status_ok("Miri on the core")
}

/// Seconds each fuzz target runs in `cargo xtask test`.
const FUZZ_SECONDS: u32 = 20;

/// Every fuzz target, briefly (`fuzz/` is its own workspace on nightly), seeded
/// from `fuzz/seeds/`.
fn fuzz_short() -> Result<(), String> {
    crate::fuzz::run_all(FUZZ_SECONDS)
}
