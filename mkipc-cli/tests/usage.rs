//! Usage errors exit with status 2 and say what is wrong.

mod common;

use common::*;

fn usage_error(args: &[&str], expect: &str) {
    let out = run(args, b"");
    assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(expect), "{args:?}: {err:?} lacks {expect:?}");
}

#[test]
fn bad_command_lines_exit_2_with_a_clear_message() {
    let region = TempRegion::new("usage");
    let r = region.path();
    usage_error(&[], "Usage");
    usage_error(&["frobnicate"], "unrecognized subcommand");
    usage_error(&["create"], "REGION");
    usage_error(&["create", r, "--slots", "3"], "power of two");
    usage_error(&["create", r, "--slot-size", "12"], "multiple of 8");
    usage_error(&["create", r, "--slots", "many"], "invalid value");
    usage_error(
        &["create", r, "--channel", "a", "--channel", "a"],
        "given twice",
    );
    usage_error(
        &[
            "create",
            r,
            "--channel",
            "a-name-that-is-much-too-long-for-it",
        ],
        "at most 29 bytes",
    );
    usage_error(&["send", r], "no such region file; create it");
    usage_error(&["recv", r, "--count", "-1"], "unexpected argument");
    usage_error(&["recv", r, "--count", "1e3"], "invalid value");
    usage_error(&["send", r, "--rate", "10"], "--count");
    create(&region, &["--channel", "a", "--slot-size", "8"]);
    usage_error(&["create", r], "already exists; pass --force");
    usage_error(
        &["send", r, "--channel", "b"],
        "no channel named \"b\" (channels: a)",
    );
    usage_error(&["recv", r, "--channel", "b"], "pick one with --channel");
    usage_error(
        &["send", r, "--channel", "a", "--count", "1"],
        "--slot-size",
    );
    let long = run(
        &["send", r, "--channel", "a"],
        b"this line is longer than 8 bytes\n",
    );
    assert_eq!(code(&long), 2, "{}", stderr(&long));
    assert!(
        stderr(&long).contains("takes at most 8"),
        "{}",
        stderr(&long)
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["create", "send", "recv", "inspect"] {
        let out = run(&[sub, "--help"], b"");
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        assert!(text.contains("Usage: mkipc"), "{sub}: {text}");
        assert!(text.contains("Exit status"), "{sub}: {text}");
    }
}
