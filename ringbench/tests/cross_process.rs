//! Cross-process pairs against the real `ringbench` binary as the server process:
//! every pair echoes checked round trips; a server killed, stopped or failing is
//! reported (naming what happened), never waited for forever; `--serve` rejects
//! bad arguments and descriptors with clear errors.
//!
//! Unpinned: tests share the machine. One test per scenario runs the pairs one
//! after another, so that at most one spinning pair runs per test.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringbench::clock::Clock;
use ringbench::cross_process::{XP_ALL, XpEchoing, XpError};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ringbench"))
}

fn start(c: &ringbench::cross_process::XpContender) -> Box<dyn XpEchoing> {
    (c.start)(exe(), None).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

#[test]
fn every_pair_echoes_checked_round_trips_and_stops_cleanly() {
    let clock = Clock::calibrate(Duration::from_millis(5));
    for c in XP_ALL {
        eprintln!("contender {}", c.name);
        let mut running = start(c);
        running
            .time(300)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let samples = running
            .sample(100, &clock)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(samples.len(), 100);
        assert!(samples.iter().all(|s| s.is_finite() && *s >= 0.0));
        running
            .finish()
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill takes a pid and a signal number; the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

#[test]
fn a_killed_server_is_reported_not_waited_for() {
    for c in XP_ALL {
        eprintln!("contender {}", c.name);
        let mut running = start(c);
        signal(running.server_pid(), libc::SIGKILL);
        let t = Instant::now();
        let err = running
            .time(1_000_000)
            .expect_err("round trips to a killed server must fail");
        assert!(t.elapsed() < Duration::from_secs(5), "{}: too slow", c.name);
        let msg = err.to_string();
        assert!(
            matches!(err, XpError::RoundTrip { .. }) && msg.contains("SIGKILL"),
            "{}: {msg}",
            c.name
        );
    }
}

#[test]
fn a_silent_server_is_killed_after_the_stall_limit() {
    for c in XP_ALL {
        eprintln!("contender {}", c.name);
        let mut running = start(c);
        running.set_stall_limit(Duration::from_millis(300));
        signal(running.server_pid(), libc::SIGSTOP);
        let t = Instant::now();
        let err = running
            .time(10)
            .expect_err("round trips to a stopped server must fail");
        assert!(t.elapsed() < Duration::from_secs(5), "{}: too slow", c.name);
        let msg = err.to_string();
        assert!(msg.contains("gave no reply within"), "{}: {msg}", c.name);
    }
}

fn serve(args: &[&str], stdin: Stdio) -> Output {
    Command::new(exe())
        .arg("--serve")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run ringbench --serve")
}

fn usage_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn serve_rejects_bad_arguments_with_the_problem_named() {
    let err = |args: &[&str]| usage_error(&serve(args, Stdio::null()));
    assert!(err(&[]).contains("needs a contender name"));
    assert!(err(&["nope"]).contains("`nope`"));
    assert!(err(&["nope"]).contains("mkipc-spsc"));
    assert!(err(&["floor", "--cpu", "x"]).contains("`x`"));
    assert!(err(&["floor", "--frob"]).contains("`--frob`"));
    // Run by hand: /dev/null is no shared memory file, pipe or socket.
    for (name, what) in [
        ("floor", "shared memory file"),
        ("mkipc-spsc", "shared memory file"),
        ("eventfd", "shared memory file"),
        ("pipe", "a pipe"),
        ("uds", "a Unix socket"),
        ("mkipc-spsc-futex", "shared memory file"),
        ("mkipc-spsc-eventfd", "shared memory file"),
        ("mkipc-spsc-futex-spin", "shared memory file"),
        ("iceoryx2", "a pipe"),
    ] {
        let msg = err(&[name]);
        assert!(
            msg.contains("fd 0 must be") && msg.contains(what),
            "{name}: {msg}"
        );
        assert!(msg.contains("/dev/null"), "{name}: {msg}");
    }
}

#[test]
fn a_server_handed_no_ring_fails_with_a_clear_error() {
    // A zeroed page where the rings should be: the server validates what it maps
    // as it would a hostile peer's memory, and says what is wrong.
    let path = std::env::temp_dir().join(format!("ringbench-xp-test-{}", std::process::id()));
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.write_all(&[0u8; 4096]).unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = serve(&["mkipc-spsc"], Stdio::from(file));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("cannot attach the request ring"), "{msg}");
}

/// A zero-filled unlinked file of `len` bytes, as a server's stdin.
fn zero_file(len: usize) -> std::fs::File {
    let path = std::env::temp_dir().join(format!("ringbench-xp-test-{}-{len}", std::process::id()));
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    file.write_all(&vec![0u8; len]).unwrap();
    std::fs::remove_file(&path).unwrap();
    file
}

#[test]
fn a_doorbell_server_checks_its_eventfds_and_its_rings() {
    // The eventfd doorbells must arrive as fd 1 and fd 3: /dev/null is refused.
    let out = serve(&["mkipc-spsc-eventfd"], Stdio::from(zero_file(8192)));
    let msg = usage_error(&out);
    assert!(
        msg.contains("fd 1 must be an eventfd") && msg.contains("request eventfd"),
        "{msg}"
    );
    // The futex words lie in the mapping, but the rings are zeroes: refused like
    // a hostile peer's.
    let out = serve(&["mkipc-spsc-futex"], Stdio::from(zero_file(1 << 16)));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("cannot attach the request ring"), "{msg}");
    // Too short for the futex words: the word is named.
    let out = serve(&["mkipc-spsc-futex"], Stdio::from(zero_file(64)));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("futex"), "{msg}");
}

#[test]
fn cross_process_run_rejects_unknown_contenders() {
    let out = Command::new(exe())
        .args(["--cross-process", "--only", "rtrb"])
        .output()
        .expect("run ringbench");
    let msg = usage_error(&out);
    assert!(
        msg.contains("`rtrb`") && msg.contains("mkipc-spsc/xp"),
        "{msg}"
    );
}
