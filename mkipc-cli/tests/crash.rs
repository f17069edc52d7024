//! `kill -9` of the sender mid-stream: the receiver keeps every committed
//! message, reports the dead peer (exit 4) within a bounded time, and a
//! restarted sender reconnects under a new epoch and continues the sequence.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_killed_sender_is_reported_and_a_restarted_one_continues() {
    let region = TempRegion::new("crash");
    create(&region, &["--slots", "32", "--slot-size", "64"]);
    let r = region.path();
    let rx = spawn(&[
        "recv",
        r,
        "--count",
        "1000000",
        "--timeout",
        "20",
        "--dead-ms",
        "300",
    ]);
    let mut tx = spawn(&["send", r, "--count", "1000000", "--rate", "20000"]);
    std::thread::sleep(Duration::from_millis(400));
    tx.child.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    tx.child.wait().unwrap();
    let rx = wait_bounded(rx, Duration::from_secs(20));
    let took = killed.elapsed();
    assert_eq!(code(&rx), 4, "recv: {}", stderr(&rx));
    // Bounded: the 300 ms heartbeat timeout plus polling, far below this.
    assert!(
        took < Duration::from_secs(5),
        "dead peer reported after {took:?}"
    );
    let err = stderr(&rx);
    assert!(err.contains("died"), "{err}");
    assert!(err.contains("restarted `mkipc send` continues"), "{err}");

    // Every message the sender committed was received, in order, verified.
    let got = positions(&rx);
    let k = got.len() as u64;
    assert!(k > 100, "only {k} messages before the kill");
    assert_eq!(got, (0..k).collect::<Vec<_>>());
    let report = inspect(&region);
    let tail = report["channels"][0]["ring"]["tail"].as_u64().unwrap();
    // The tail is stored right after each commit: a kill between the two leaves
    // it one behind the last committed message.
    assert!(tail == k || tail + 1 == k, "committed {tail}, received {k}");
    assert_eq!(report["ends"][1]["resume_at"], k);

    // A restarted sender reconnects under a new epoch and continues at k.
    let rx = spawn(&["recv", r, "--count", "3000", "--timeout", "20"]);
    let tx = run(&["send", r, "--count", "3000", "--timeout", "20"], b"");
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
    assert!(stderr(&tx).contains("sender epoch 2"), "{}", stderr(&tx));
    let rx = wait_bounded(rx, Duration::from_secs(30));
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert_eq!(positions(&rx), (k..k + 3000).collect::<Vec<_>>());
    let report = inspect(&region);
    let sender = &report["ends"][0]["flight_recorder"];
    assert!(
        sender
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "Reset" && e["epoch"] == 2),
        "restarted sender recorded no reset: {sender}"
    );
}

#[test]
fn a_sender_restarted_before_any_receiver_reclaims_waits_and_continues() {
    let region = TempRegion::new("restart");
    create(&region, &["--slots", "16", "--slot-size", "64"]);
    let r = region.path();
    // The first sender fills the ring and dies with 16 messages queued.
    let mut tx = spawn(&["send", r, "--count", "100000"]);
    std::thread::sleep(Duration::from_millis(300));
    tx.child.kill().unwrap();
    tx.child.wait().unwrap();
    // Its successor starts at once: it must wait for a receiver to reclaim.
    let tx = spawn(&["send", r, "--count", "100", "--timeout", "20"]);
    std::thread::sleep(Duration::from_millis(200));
    let rx = run(&["recv", r, "--count", "116", "--timeout", "20"], b"");
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert_eq!(positions(&rx), (0..116).collect::<Vec<_>>());
    let tx = wait_bounded(tx, Duration::from_secs(30));
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
}
