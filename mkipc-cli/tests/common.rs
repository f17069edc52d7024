//! Helpers for the `mkipc` binary's integration tests.

#![allow(dead_code, missing_docs)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test.
pub const MKIPC: &str = env!("CARGO_BIN_EXE_mkipc");

/// A region path unique to this test process and call, removed (with its lock
/// files) on drop.
pub struct TempRegion(pub PathBuf);

impl TempRegion {
    pub fn new(tag: &str) -> TempRegion {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempRegion(dir.join(format!("mkipc-test-{}-{tag}-{n}", std::process::id())))
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempRegion {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let (Some(dir), Some(name)) = (self.0.parent(), self.0.file_name()) {
            let prefix = format!("{}.", name.to_string_lossy());
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }
}

/// Runs `mkipc ARGS` to completion with `stdin` as input.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(MKIPC)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mkipc");
    let mut input = child.stdin.take().unwrap();
    let running = Running::start(child);
    // The process may exit without reading its input.
    let _ = input.write_all(stdin);
    drop(input);
    wait_bounded(running, Duration::from_secs(60))
}

/// A background `mkipc` whose output is read as it comes (so a full pipe never
/// blocks it).
pub struct Running {
    /// The process.
    pub child: Child,
    out: JoinHandle<Vec<u8>>,
    err: JoinHandle<Vec<u8>>,
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

impl Running {
    fn start(mut child: Child) -> Running {
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        Running { child, out, err }
    }
}

/// Starts `mkipc ARGS` in the background, stdin closed.
pub fn spawn(args: &[&str]) -> Running {
    Running::start(
        Command::new(MKIPC)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mkipc"),
    )
}

/// Waits for `running` at most `limit` (then kills it and fails).
pub fn wait_bounded(mut running: Running, limit: Duration) -> Output {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = running.child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = running.child.kill();
            let _ = running.child.wait();
            panic!(
                "mkipc did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&running.err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: running.out.join().unwrap(),
        stderr: running.err.join().unwrap(),
    }
}

/// The exit code, failing the test if the process died of a signal.
pub fn code(out: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match out.status.code() {
        Some(c) => c,
        None => panic!(
            "mkipc died of signal {:?}; stderr: {}",
            out.status.signal(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mkipc create REGION ARGS`, which must succeed.
pub fn create(region: &TempRegion, args: &[&str]) {
    let mut all = vec!["create", region.path()];
    all.extend_from_slice(args);
    let out = run(&all, b"");
    assert_eq!(code(&out), 0, "create failed: {}", stderr(&out));
}

/// `mkipc inspect --json` as a JSON value.
pub fn inspect(region: &TempRegion) -> serde_json::Value {
    let out = run(
        &["inspect", region.path(), "--json", "--sample-ms", "50"],
        b"",
    );
    assert_eq!(code(&out), 0, "inspect failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

/// Positions printed by `recv --count`: one `POSITION LENGTH` line per message.
pub fn positions(out: &Output) -> Vec<u64> {
    stdout(out)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}
