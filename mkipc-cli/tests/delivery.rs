//! Cross-process delivery through the `mkipc` binary.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn generated_messages_cross_processes_receiver_first_and_sender_first() {
    let region = TempRegion::new("deliver");
    create(&region, &["--slots", "64", "--slot-size", "128"]);
    let r = region.path();
    // Receiver waiting first: it sleeps on the doorbell until the sender comes.
    let rx = spawn(&["recv", r, "--count", "20000", "--timeout", "20"]);
    std::thread::sleep(Duration::from_millis(100));
    let tx = run(&["send", r, "--count", "20000", "--timeout", "20"], b"");
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
    let rx = wait_bounded(rx, Duration::from_secs(30));
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert_eq!(positions(&rx), (0..20000).collect::<Vec<_>>());
    assert!(stderr(&rx).contains("all verified"), "{}", stderr(&rx));

    // Sender first: it fills the ring and waits for room; the next receiver
    // continues at the channel's position (20000).
    let tx = spawn(&["send", r, "--count", "5000", "--timeout", "20"]);
    std::thread::sleep(Duration::from_millis(200));
    let rx = run(&["recv", r, "--count", "5000", "--timeout", "20"], b"");
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert_eq!(positions(&rx), (20000..25000).collect::<Vec<_>>());
    let tx = wait_bounded(tx, Duration::from_secs(30));
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));

    let report = inspect(&region);
    let ring = &report["channels"][0]["ring"];
    assert_eq!(ring["head"], 25000);
    assert_eq!(ring["tail"], 25000);
    // Both ends recorded their connects in their flight recorders.
    let ends = report["ends"].as_array().unwrap();
    for end in ends {
        let events = end["flight_recorder"].as_array().unwrap();
        assert!(
            events.iter().any(|e| e["kind"] == "Connect"),
            "no Connect event for {end}"
        );
    }
}

#[test]
fn stdin_lines_arrive_as_lines_on_two_channels_at_once() {
    let region = TempRegion::new("lines");
    create(
        &region,
        &["--channel", "up", "--channel", "down", "--slots", "4"],
    );
    let r = region.path();
    let up_rx = spawn(&["recv", r, "--channel", "up", "--timeout", "20"]);
    let down_rx = spawn(&["recv", r, "--channel", "down", "--timeout", "20"]);
    let text: String = (0..100)
        .map(|i| format!("line {i} of the up channel\n"))
        .collect();
    let up = run(&["send", r, "--channel", "up"], text.as_bytes());
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    let down = run(
        &["send", r, "--channel", "down"],
        b"one\n\ntwo without newline",
    );
    assert_eq!(code(&down), 0, "{}", stderr(&down));
    let up_rx = wait_bounded(up_rx, Duration::from_secs(30));
    let down_rx = wait_bounded(down_rx, Duration::from_secs(30));
    assert_eq!(code(&up_rx), 0, "{}", stderr(&up_rx));
    assert_eq!(code(&down_rx), 0, "{}", stderr(&down_rx));
    assert_eq!(stdout(&up_rx), text);
    assert_eq!(stdout(&down_rx), "one\n\ntwo without newline\n");
}

#[test]
fn a_receiver_verifies_what_a_sender_left_queued_before_it_started() {
    let region = TempRegion::new("queued");
    create(&region, &["--slots", "16"]);
    let r = region.path();
    let tx = run(&["send", r, "--count", "10"], b"");
    assert_eq!(code(&tx), 0, "{}", stderr(&tx));
    let rx = run(&["recv", r, "--count", "10", "--timeout", "5"], b"");
    assert_eq!(code(&rx), 0, "{}", stderr(&rx));
    assert_eq!(positions(&rx), (0..10).collect::<Vec<_>>());
}
