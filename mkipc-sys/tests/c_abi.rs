//! C programs against the C ABI, built with the system `gcc`:
//!
//! * `tests/c/exchange.c` (linked against the cdylib, and again against the
//!   staticlib) owns a region in a file under `/dev/shm` and exchanges
//!   sequence-numbered, checksummed messages with the Rust peer in this test, in
//!   both directions, over SPSC rings and byte channels (copies, loans, held
//!   buffers).
//! * `tests/c/freestanding.c` is compiled with `-ffreestanding -nostdlib -static`
//!   and linked against the `no_std` staticlib for `x86_64-unknown-none`, then run
//!   as a plain static process.
//!
//! The libraries are built with `cargo rustc --crate-type ...` into
//! `target/capi` (a target directory of their own, so the outer cargo's lock and
//! fingerprints are untouched). Run with `cargo test -p mkipc-sys --features capi`
//! (`cargo xtask test` does, in its `capi` step).

#![cfg(all(feature = "capi", target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mkipc::pool::PoolGeometry;
use mkipc::pool::{RecvError, SendError};
use mkipc::spsc::{ConsumeError, Consumer, Geometry, ProduceError, Producer};
use mkipc::typed::{ByteReceiver, ByteSender};

/// Geometry shared with `exchange.c`.
const RING_SLOTS: u32 = 64;
const RING_SLOT_SIZE: u32 = 56;
const CHAN_BUFFERS: u32 = 16;
const CHAN_BUFFER_SIZE: u32 = 512;
const CHAN_MAX: u32 = 2000;
const STREAM_RING_C2R: u32 = 1;
const STREAM_RING_R2C: u32 = 2;
const STREAM_CHAN_C2R: u32 = 3;
const STREAM_CHAN_R2C: u32 = 4;
const RING_MESSAGES: u64 = if cfg!(debug_assertions) {
    20_000
} else {
    200_000
};
const CHANNEL_MESSAGES: u64 = if cfg!(debug_assertions) {
    5_000
} else {
    50_000
};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    crate_dir().join("../target/capi")
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what} ({cmd:?}): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Builds the C ABI libraries once per target; returns the directory holding them.
fn libs(target: Option<&str>) -> PathBuf {
    static BUILT: Mutex<Vec<(Option<String>, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = built.iter().find(|(t, _)| t.as_deref() == target) {
        return dir.clone();
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["rustc", "-q", "-p", "mkipc-sys"])
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(crate_dir());
    let dir = match target {
        None => {
            cmd.args(["--features", "capi", "--crate-type", "staticlib"])
                .args(["--crate-type", "cdylib"]);
            target_dir().join("debug")
        }
        Some(t) => {
            cmd.args(["--no-default-features", "--features", "capi,panic-handler"])
                .args(["--target", t, "--crate-type", "staticlib"]);
            target_dir().join(t).join("debug")
        }
    };
    run(&mut cmd, "building the C ABI libraries").unwrap();
    built.push((target.map(str::to_owned), dir.clone()));
    dir
}

fn gcc(args: &[&str], out: &Path) {
    let mut cmd = Command::new("gcc");
    cmd.args(["-O1", "-Wall", "-Wextra", "-Werror", "-std=c11"])
        .arg(format!("-I{}", crate_dir().join("include").display()))
        .arg(format!("-I{}", crate_dir().join("tests/c").display()))
        .args(args)
        .arg("-o")
        .arg(out)
        .current_dir(crate_dir());
    run(&mut cmd, "gcc (install the Debian package `gcc`)").unwrap();
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `wire.h`'s `wire_len`.
fn wire_len(seq: u64, max: u32) -> usize {
    let span = u64::from(max) - 24 + 1;
    24 + ((seq.wrapping_mul(7919)) % span) as usize
}

/// `wire.h`'s `wire_fill`.
fn wire_fill(buf: &mut [u8], seq: u64, len: usize, stream: u32) {
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    buf[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    buf[12..16].copy_from_slice(&stream.to_le_bytes());
    for i in 0..len - 24 {
        buf[16 + i] = (seq as u32)
            .wrapping_mul(31)
            .wrapping_add(i as u32 * 7)
            .wrapping_add(stream) as u8;
    }
    let sum = fnv(&buf[..len - 8]);
    buf[len - 8..len].copy_from_slice(&sum.to_le_bytes());
}

/// `wire.h`'s `wire_check`, with a reason.
fn wire_check(msg: &[u8], seq: u64, stream: u32) -> Result<(), String> {
    let n = msg.len();
    let word = |at: usize| u64::from_le_bytes(msg[at..at + 8].try_into().unwrap());
    let half = |at: usize| u32::from_le_bytes(msg[at..at + 4].try_into().unwrap());
    let fail = |why: &str| Err(format!("stream {stream} message {seq}: {why}"));
    if n < 24 {
        return fail("shorter than 24 bytes");
    }
    if word(0) != seq {
        return fail(&format!("sequence number {}", word(0)));
    }
    if half(8) as usize != n || half(12) != stream {
        return fail("length or stream field wrong");
    }
    if word(n - 8) != fnv(&msg[..n - 8]) {
        return fail("checksum mismatch");
    }
    let mut expected = vec![0u8; n];
    wire_fill(&mut expected, seq, n, stream);
    if msg != expected.as_slice() {
        return fail("payload differs");
    }
    Ok(())
}

fn align_up(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

/// The Rust peer: attaches the other ends and exchanges until both directions
/// are complete (or a deadline passes).
fn rust_peer(path: &Path) -> Result<String, String> {
    let ring = align_up(
        Geometry::new(RING_SLOTS, RING_SLOT_SIZE)
            .ring_size()
            .unwrap(),
        4096,
    );
    let chan = align_up(
        PoolGeometry::new(CHAN_BUFFERS, CHAN_BUFFER_SIZE)
            .pool_size()
            .unwrap(),
        4096,
    );
    let (ring_c2r, ring_r2c) = (4096, 4096 + ring);
    let (chan_c2r, chan_r2c) = (4096 + 2 * ring, 4096 + 2 * ring + chan);
    let total = chan_r2c + chan;
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let region = mkipc_sys::linux::map_file(&file, total).map_err(|e| e.to_string())?;
    mkipc::header::read_header(&region).map_err(|e| e.to_string())?;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let mut rx_ring = Consumer::attach(region.clone(), ring_c2r).map_err(|x| e(&x))?;
    let mut tx_ring = Producer::attach(region.clone(), ring_r2c).map_err(|x| e(&x))?;
    let mut rx_chan = ByteReceiver::attach(region.clone(), chan_c2r).map_err(|x| e(&x))?;
    let mut tx_chan = ByteSender::attach(region.clone(), chan_r2c).map_err(|x| e(&x))?;

    let (mut ring_sent, mut ring_recv, mut chan_sent, mut chan_recv) = (0u64, 0u64, 0u64, 0u64);
    let mut msg = vec![0u8; CHAN_MAX as usize];
    let mut input = vec![0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(60);
    while ring_sent < RING_MESSAGES
        || ring_recv < RING_MESSAGES
        || chan_sent < CHANNEL_MESSAGES
        || chan_recv < CHANNEL_MESSAGES
    {
        if Instant::now() > deadline {
            return Err(format!(
                "rust peer timed out: ring {ring_sent} sent {ring_recv} received, \
                 channel {chan_sent} sent {chan_recv} received"
            ));
        }
        let mut progress = false;
        if ring_sent < RING_MESSAGES {
            let len = wire_len(ring_sent, RING_SLOT_SIZE);
            wire_fill(&mut msg, ring_sent, len, STREAM_RING_R2C);
            match tx_ring.push(&msg[..len]) {
                Ok(()) => (ring_sent, progress) = (ring_sent + 1, true),
                Err(ProduceError::Full) => {}
                Err(x) => return Err(e(&x)),
            }
        }
        if chan_sent < CHANNEL_MESSAGES {
            let len = wire_len(chan_sent, CHAN_MAX);
            wire_fill(&mut msg, chan_sent, len, STREAM_CHAN_R2C);
            match tx_chan.send_bytes(&msg[..len]) {
                Ok(()) => (chan_sent, progress) = (chan_sent + 1, true),
                Err(SendError::Full | SendError::NoBuffer) => {}
                Err(x) => return Err(e(&x)),
            }
        }
        if ring_recv < RING_MESSAGES {
            match rx_ring.pop(&mut input) {
                Ok(n) => {
                    wire_check(&input[..n], ring_recv, STREAM_RING_C2R)?;
                    (ring_recv, progress) = (ring_recv + 1, true);
                }
                Err(ConsumeError::Empty) => {}
                Err(x) => return Err(e(&x)),
            }
        }
        if chan_recv < CHANNEL_MESSAGES {
            match rx_chan.recv_bytes(&mut input) {
                Ok(n) => {
                    wire_check(&input[..n], chan_recv, STREAM_CHAN_C2R)?;
                    (chan_recv, progress) = (chan_recv + 1, true);
                }
                Err(RecvError::Empty) => {}
                Err(x) => return Err(e(&x)),
            }
        }
        if !progress {
            std::thread::yield_now();
        }
    }
    Ok(format!(
        "rust: ring sent {ring_sent} received {ring_recv}, channel sent {chan_sent} \
         received {chan_recv}"
    ))
}

/// Runs the C program `exe` against the Rust peer over a fresh `/dev/shm` file.
///
/// `LD_LIBRARY_PATH` is set to the freshly built libraries only: cargo's test
/// environment points it at the outer target directory, where an older
/// `libmkipc_sys.so` may lie.
fn exchange_with(exe: &Path, name: &str, lib_dir: &Path) {
    let path = PathBuf::from(format!("/dev/shm/mkipc-capi-{name}-{}", std::process::id()));
    let mut child = Command::new(exe)
        .env("LD_LIBRARY_PATH", lib_dir)
        .arg(&path)
        .arg(RING_MESSAGES.to_string())
        .arg(CHANNEL_MESSAGES.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the C program");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    let peer = if ready.trim() == "READY" {
        rust_peer(&path)
    } else {
        Err(format!("the C program did not get ready: {ready:?}"))
    };
    if peer.is_err() {
        // Do not wait for the C side's own deadline.
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let summary = peer.unwrap_or_else(|e| panic!("{e}\nC stderr:\n{errors}"));
    assert!(
        status.success(),
        "C program failed ({status}):\n{rest}{errors}"
    );
    let expected = format!(
        "c: ring sent {RING_MESSAGES} received {RING_MESSAGES}, channel sent {CHANNEL_MESSAGES}"
    );
    assert!(rest.starts_with(&expected), "C summary: {rest:?}");
    assert!(
        rest.contains(&format!("received {CHANNEL_MESSAGES} (")) && rest.contains("failures 0"),
        "C summary: {rest:?}"
    );
    eprintln!("{summary}\n{}", rest.trim());
}

fn exe(name: &str) -> PathBuf {
    let dir = target_dir().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn c_program_on_the_cdylib_exchanges_with_a_rust_peer() {
    let lib = libs(None);
    let out = exe("exchange-dynamic");
    let lib_dir = lib.display().to_string();
    gcc(
        &[
            "tests/c/exchange.c",
            &format!("-L{lib_dir}"),
            "-lmkipc_sys",
            &format!("-Wl,-rpath,{lib_dir}"),
        ],
        &out,
    );
    exchange_with(&out, "dynamic", &lib);
}

#[test]
fn c_program_on_the_staticlib_exchanges_with_a_rust_peer() {
    let lib_dir = libs(None);
    let out = exe("exchange-static");
    let lib = lib_dir.join("libmkipc_sys.a").display().to_string();
    gcc(
        &[
            "tests/c/exchange.c",
            &lib,
            "-lgcc_s",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ],
        &out,
    );
    exchange_with(&out, "static", &lib_dir);
}

#[test]
fn freestanding_kernel_links_the_no_std_staticlib_and_runs() {
    let lib = libs(Some("x86_64-unknown-none")).join("libmkipc_sys.a");
    let out = exe("freestanding");
    gcc(
        &[
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-fno-pic",
            "-no-pie",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-DMKIPC_PANIC_HANDLER",
            "-DMKIPC_BARE_METAL",
            "tests/c/freestanding.c",
            &lib.display().to_string(),
        ],
        &out,
    );
    // Nothing but the kernel and the staticlib: no libc was linked in.
    let nm = Command::new("nm").arg(&out).output().unwrap();
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(symbols.contains(" T mkipc_ring_create"), "mkipc not linked");
    assert!(!symbols.contains("__libc_start_main"), "libc leaked in");
    let run = Command::new(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("freestanding: ok"),
        "freestanding kernel failed ({}):\n{stdout}",
        run.status
    );
}

#[test]
fn the_checked_format_rejects_every_flipped_byte() {
    let mut msg = vec![0u8; 100];
    wire_fill(&mut msg, 42, 100, STREAM_CHAN_C2R);
    wire_check(&msg, 42, STREAM_CHAN_C2R).unwrap();
    assert!(wire_check(&msg, 43, STREAM_CHAN_C2R).is_err());
    assert!(wire_check(&msg, 42, STREAM_CHAN_R2C).is_err());
    for i in 0..msg.len() {
        msg[i] ^= 0x10;
        assert!(wire_check(&msg, 42, STREAM_CHAN_C2R).is_err(), "byte {i}");
        msg[i] ^= 0x10;
    }
}

/// Builds the `mkipc` command-line tool into `target/capi` once.
fn mkipc_tool() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", "mkipc-cli", "--bin", "mkipc"])
            .env("CARGO_TARGET_DIR", target_dir())
            .current_dir(crate_dir());
        run(&mut cmd, "building the mkipc tool").unwrap();
        *built = true;
    }
    target_dir().join("debug/mkipc")
}

/// Generated messages each way between the C program and the tool.
const TOOL_MESSAGES: u64 = 3_000;

/// Waits for `child` (killed after `secs`), returning its status and output.
fn finish(mut child: std::process::Child, secs: u64) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut text).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut text).unwrap();
    }
    (status, text)
}

/// What one run of `tool_peer.c` against `mkipc send` and `mkipc recv` gave.
struct ToolRun {
    c: (std::process::ExitStatus, String),
    recv: (std::process::ExitStatus, String),
    send: (std::process::ExitStatus, String),
}

impl ToolRun {
    fn report(&self) -> String {
        format!(
            "C ({}):\n{}\nmkipc recv ({}):\n{}\nmkipc send ({}):\n{}",
            self.c.0, self.c.1, self.recv.0, self.recv.1, self.send.0, self.send.1
        )
    }
}

/// Builds `tool_peer.c` (with `defines`), creates a region with `mkipc create`
/// and runs the C program against `mkipc recv` (channel c2r) and `mkipc send`
/// (channel r2c), with a 200 ms dead-node timeout on the tool's side.
fn run_with_tool(name: &str, defines: &[&str]) -> ToolRun {
    let lib = libs(None);
    let tool = mkipc_tool();
    let out = exe(name);
    let lib_dir = lib.display().to_string();
    let mut args = defines.to_vec();
    let link = [
        "tests/c/tool_peer.c".to_string(),
        format!("-L{lib_dir}"),
        "-lmkipc_sys".to_string(),
        format!("-Wl,-rpath,{lib_dir}"),
    ];
    args.extend(link.iter().map(String::as_str));
    gcc(&args, &out);
    let path = PathBuf::from(format!("/dev/shm/mkipc-capi-{name}-{}", std::process::id()));
    let region = path.display().to_string();
    let created = Command::new(&tool)
        .args(["create", &region, "--channel", "c2r", "--channel", "r2c"])
        .output()
        .unwrap();
    assert!(created.status.success(), "mkipc create: {created:?}");
    let count = TOOL_MESSAGES.to_string();
    let spawn = |cmd: &mut Command| {
        cmd.env("LD_LIBRARY_PATH", &lib)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A short dead-node timeout: a C side that did not beat is declared dead
    // during its pause (see tool_peer.c).
    let timing = ["--dead-ms", "200", "--timeout", "60"];
    let recv = spawn(
        Command::new(&tool)
            .args([
                "recv",
                &region,
                "--channel",
                "c2r",
                "--count",
                &count,
                "--quiet",
            ])
            .args(timing),
    );
    let send = spawn(
        Command::new(&tool)
            .args(["send", &region, "--channel", "r2c", "--count", &count])
            .args(timing),
    );
    let c = spawn(Command::new(&out).arg(&path).arg(&count));
    let send = finish(send, 90);
    let recv = finish(recv, 30);
    // Without a sender the C program would wait for its own deadline.
    let c = finish(c, if send.0.success() { 30 } else { 0 });
    for lock in ["c2r.tx", "c2r.rx", "r2c.tx", "r2c.rx"] {
        let _ = std::fs::remove_file(format!("{region}.{lock}.lock"));
    }
    let _ = std::fs::remove_file(&path);
    ToolRun { c, recv, send }
}

/// The C program connects by channel name to a region made by `mkipc create`
/// and exchanges generated (sequenced, checksummed) messages with `mkipc send`
/// and `mkipc recv`, both directions, beating its nodes' heartbeats and holding
/// their lock files, so the tool's watchdogs keep it alive through a pause
/// longer than their dead-node timeout.
#[test]
fn c_program_exchanges_with_the_mkipc_tool_by_channel_name() {
    let run = run_with_tool("tool-peer", &[]);
    let report = run.report();
    assert!(run.c.0.success(), "{report}");
    assert!(
        run.c.1.contains(&format!(
            "c: sent {TOOL_MESSAGES} received {TOOL_MESSAGES} verified"
        )) && run.c.1.contains("failures 0"),
        "{report}"
    );
    assert!(run.recv.0.success(), "{report}");
    assert!(
        run.recv
            .1
            .contains(&format!("received {TOOL_MESSAGES} message(s)")),
        "{report}"
    );
    assert!(run.send.0.success(), "{report}");
    assert!(
        run.send
            .1
            .contains(&format!("sent {TOOL_MESSAGES} message(s)")),
        "{report}"
    );
    eprintln!("{report}");
}

/// The same C program built without heartbeats is declared dead by `mkipc send`
/// during its pause: the heartbeat of the run above is what kept it alive.
#[test]
fn a_c_program_that_does_not_beat_is_declared_dead_by_the_tool() {
    let run = run_with_tool("tool-peer-silent", &["-DTOOL_PEER_NO_HEARTBEAT"]);
    let report = run.report();
    assert_eq!(run.send.0.code(), Some(4), "{report}");
    assert!(run.send.1.contains("died"), "{report}");
}
