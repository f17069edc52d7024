//! Each end maps its peer's sections read-only: a stray write there faults in the
//! writer (checked in a child process), while its own words stay writable and
//! normal traffic works (see `delivery.rs`, whose ends map the same way).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use common::*;
use mkipc_cli::regionfile::{Role, open_end};

const CHILD: &str = "MKIPC_READONLY_CHILD";

/// In the child: map as `role`, write own words, then one word of the peer's.
#[test]
fn child_writes_into_the_peer_section() {
    let Ok(spec) = std::env::var(CHILD) else {
        return; // only meaningful when run by the test below
    };
    let (path, role, target) = {
        let mut it = spec.split(',');
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    };
    let role = if role == "receiver" {
        Role::Receiver
    } else {
        Role::Sender
    };
    let end = open_end(Path::new(&path), "main", role).unwrap();
    assert!(!end.read_only.is_empty(), "nothing mapped read-only");
    let ring = &end.ring;
    let (own, peer) = match role {
        Role::Receiver => (ring.head_word(), ring.tail_word()),
        Role::Sender => (ring.tail_word(), ring.head_word()),
    };
    let at = match target.as_str() {
        "own" => own,
        "peer-ring" => peer,
        "peer-node" => end.peer.section,
        "manifest" => 128,
        _ => unreachable!(),
    };
    let value = end.region.load(at, Ordering::Relaxed).unwrap();
    end.region.store(at, value, Ordering::Relaxed).unwrap();
    println!("WROTE {target}");
}

fn child(region: &TempRegion, role: &str, target: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writes_into_the_peer_section",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD, format!("{},{role},{target}", region.path()))
        .output()
        .unwrap()
}

#[test]
fn writes_into_the_peer_sections_fault_and_own_words_do_not() {
    let region = TempRegion::new("readonly");
    create(&region, &["--slots", "8", "--slot-size", "64"]);
    for role in ["receiver", "sender"] {
        let out = child(&region, role, "own");
        assert!(
            out.status.success(),
            "{role} own: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("WROTE own"));
        for target in ["peer-ring", "peer-node", "manifest"] {
            let out = child(&region, role, target);
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGSEGV),
                "{role} writing {target}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    // Traffic still works after the faulting children (they wrote nothing).
    let tx = run(&["send", region.path(), "--count", "8"], b"");
    assert_eq!(code(&tx), 0, "{}", stderr(&tx));
    let rx = run(
        &["recv", region.path(), "--count", "8", "--timeout", "5"],
        b"",
    );
    assert_eq!(code(&rx), 0, "{}", stderr(&rx));
    assert_eq!(positions(&rx), (0..8).collect::<Vec<_>>());
}
