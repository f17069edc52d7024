//! Whatever bytes a region file holds, every subcommand ends with an exit status
//! and a message (3 for a corrupt region), never a panic or a signal.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::*;

/// Runs every subcommand on the region and returns their exit codes.
fn every_subcommand(region: &TempRegion) -> Vec<(String, i32, String)> {
    let r = region.path();
    let cases: [&[&str]; 5] = [
        &["inspect", r, "--sample-ms", "20"],
        &["inspect", r, "--json", "--sample-ms", "20"],
        &[
            "send",
            r,
            "--count",
            "5",
            "--timeout",
            "1",
            "--dead-ms",
            "100",
        ],
        &[
            "recv",
            r,
            "--count",
            "5",
            "--timeout",
            "1",
            "--dead-ms",
            "100",
        ],
        &["send", r, "--timeout", "1"],
    ];
    cases
        .iter()
        .map(|args| {
            let out = run(args, b"a line\n");
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
            (args.join(" "), code(&out), err)
        })
        .collect()
}

fn assert_corrupt(region: &TempRegion, what: &str) {
    for (args, code, err) in every_subcommand(region) {
        assert_eq!(code, 3, "{what}: `{args}` exited {code}: {err}");
        assert!(err.starts_with("mkipc: "), "{what}: `{args}`: {err}");
        assert!(
            err.contains("recreate") || err.contains("same build"),
            "{what}: `{args}` does not say what to do: {err}"
        );
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn files_that_are_not_regions_exit_3() {
    let region = TempRegion::new("garbage");
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    for len in [0usize, 7, 100, 4096, 53248] {
        let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
        std::fs::write(&region.0, &bytes).unwrap();
        assert_corrupt(&region, &format!("{len} random bytes"));
    }
}

#[test]
fn damaged_regions_exit_3() {
    let region = TempRegion::new("damaged");
    create(&region, &["--slots", "8", "--slot-size", "64"]);
    let pristine = std::fs::read(&region.0).unwrap();
    let report = inspect(&region);
    let ring = usize::from_str_radix(
        report["channels"][0]["offset"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();

    // Truncated: the header's size no longer matches the file.
    std::fs::write(&region.0, &pristine[..pristine.len() / 2]).unwrap();
    assert_corrupt(&region, "truncated");

    // A flipped bit in the manifest's tables or header, in the ring descriptor.
    for (at, what) in [
        (0x100, "node table"),
        (0x90, "manifest header"),
        (ring + 8, "ring descriptor"),
    ] {
        let mut bytes = pristine.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&region.0, &bytes).unwrap();
        assert_corrupt(&region, what);
    }

    // Random garbage over everything after the region header.
    let mut seed = 42;
    let mut bytes = pristine.clone();
    for b in &mut bytes[128..] {
        *b = xorshift(&mut seed) as u8;
    }
    std::fs::write(&region.0, &bytes).unwrap();
    assert_corrupt(&region, "garbage after the header");
}

#[test]
fn a_forged_message_stamp_exits_3() {
    let region = TempRegion::new("forged");
    create(&region, &["--slots", "8", "--slot-size", "64"]);
    let tx = run(&["send", region.path(), "--count", "3"], b"");
    assert_eq!(code(&tx), 0, "{}", stderr(&tx));
    let report = inspect(&region);
    let ring = usize::from_str_radix(
        report["channels"][0]["offset"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    // Slot 1's tag (slots start three pages into the ring, 128 bytes apart):
    // a stamp no correct producer writes, with a valid length.
    let file = OpenOptions::new().write(true).open(&region.0).unwrap();
    let tag: u64 = 0x1234 | (16 << 40);
    file.write_all_at(&tag.to_le_bytes(), (ring + 3 * 4096 + 128) as u64)
        .unwrap();
    let rx = run(
        &["recv", region.path(), "--count", "3", "--timeout", "2"],
        b"",
    );
    assert_eq!(code(&rx), 3, "{}", stderr(&rx));
    assert!(stderr(&rx).contains("corrupted"), "{}", stderr(&rx));
    // Message 0 was intact and was delivered before the forged one.
    assert_eq!(positions(&rx), vec![0]);
}
