//! Kernel0's command line (PVH `cmdline_paddr`, QEMU `-append`): the
//! timeouts and the number of crash/restart cycles, as space-separated
//! `key=value` words. Unknown keys, malformed numbers and out-of-range
//! values are errors naming the word: a typo must not silently fall back to
//! a default.

use crate::{MemError, PhysMem};

/// Longest command line read (QEMU's PVH loader passes it NUL-terminated).
pub const MAX_LEN: usize = 512;

/// Kernel0's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// A heartbeat stalled this long means the node is dead (`dead_ms`).
    pub dead_ms: u64,
    /// Time from INIT-SIPI-SIPI to the AP's long-mode ack (`ap_start_ms`).
    pub ap_start_ms: u64,
    /// Time from the ack to the node's hello: ready under the epoch kernel0
    /// assigned (`handshake_ms`).
    pub handshake_ms: u64,
    /// Crash/restart cycles to run (`crash_cycles`).
    pub crash_cycles: u64,
}

impl Config {
    /// The settings used when the command line is empty.
    pub const DEFAULT: Config = Config {
        dead_ms: 200,
        ap_start_ms: 1_000,
        handshake_ms: 3_000,
        crash_cycles: 4,
    };
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// The keys, their allowed ranges, and where they go.
const KEYS: [(&str, u64, u64); 4] = [
    ("dead_ms", 5, 60_000),
    ("ap_start_ms", 1, 60_000),
    ("handshake_ms", 1, 60_000),
    ("crash_cycles", 1, 64),
];

/// What is wrong with the command line. `word` is the offending word's
/// byte range in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineError {
    /// A word is not `key=value` with a known key (known: `dead_ms`,
    /// `ap_start_ms`, `handshake_ms`, `crash_cycles`).
    UnknownKey {
        /// Byte range of the word.
        word: (usize, usize),
    },
    /// The value is not a decimal number.
    BadNumber {
        /// Byte range of the word.
        word: (usize, usize),
    },
    /// The value is outside the key's range.
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The same key appears twice.
    Repeated(&'static str),
}

impl core::fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            CmdlineError::UnknownKey { word: (a, b) } => write!(
                f,
                "word at bytes {a}..{b} is not key=value with a known key (dead_ms, ap_start_ms, handshake_ms, crash_cycles)"
            ),
            CmdlineError::BadNumber { word: (a, b) } => {
                write!(
                    f,
                    "word at bytes {a}..{b}: the value is not a decimal number"
                )
            }
            CmdlineError::OutOfRange {
                key,
                value,
                min,
                max,
            } => write!(f, "{key}={value} is outside {min}..={max}"),
            CmdlineError::Repeated(key) => write!(f, "{key} is given twice"),
        }
    }
}

/// Parses `line` (already cut at its NUL). Whitespace separates words;
/// keys not given keep their defaults.
pub fn parse(line: &[u8]) -> Result<Config, CmdlineError> {
    let mut cfg = Config::DEFAULT;
    let mut seen = [false; KEYS.len()];
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        let word = &line[start..i];
        let range = (start, i);
        let eq = word
            .iter()
            .position(|&b| b == b'=')
            .ok_or(CmdlineError::UnknownKey { word: range })?;
        let (key, value) = (&word[..eq], &word[eq + 1..]);
        let k = KEYS
            .iter()
            .position(|(name, _, _)| name.as_bytes() == key)
            .ok_or(CmdlineError::UnknownKey { word: range })?;
        let (name, min, max) = KEYS[k];
        if seen[k] {
            return Err(CmdlineError::Repeated(name));
        }
        seen[k] = true;
        let value = decimal(value).ok_or(CmdlineError::BadNumber { word: range })?;
        if !(min..=max).contains(&value) {
            return Err(CmdlineError::OutOfRange {
                key: name,
                value,
                min,
                max,
            });
        }
        match k {
            0 => cfg.dead_ms = value,
            1 => cfg.ap_start_ms = value,
            2 => cfg.handshake_ms = value,
            _ => cfg.crash_cycles = value,
        }
    }
    Ok(cfg)
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// Reads the NUL-terminated command line at `paddr` into `buf` and returns
/// the bytes before the NUL. A zero address is an empty line. A line
/// longer than `buf` (no NUL within it) is an error, not a truncation.
pub fn read<'b>(
    mem: &impl PhysMem,
    paddr: u64,
    buf: &'b mut [u8; MAX_LEN],
) -> Result<&'b [u8], ReadError> {
    if paddr == 0 {
        return Ok(&[]);
    }
    for i in 0..MAX_LEN {
        let at = paddr
            .checked_add(i as u64)
            .ok_or(ReadError::Unreadable(MemError {
                paddr,
                len: i as u64,
            }))?;
        let mut b = [0u8; 1];
        mem.read(at, &mut b).map_err(ReadError::Unreadable)?;
        if b[0] == 0 {
            return Ok(&buf[..i]);
        }
        buf[i] = b[0];
    }
    Err(ReadError::TooLong)
}

/// Why the command line could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Part of it is not readable memory.
    Unreadable(MemError),
    /// No NUL within [`MAX_LEN`] bytes.
    TooLong,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SliceMem;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse(b""), Ok(Config::DEFAULT));
        assert_eq!(parse(b"  \t "), Ok(Config::DEFAULT));
        let c = parse(b"dead_ms=50  handshake_ms=700 ap_start_ms=9 crash_cycles=6\n").unwrap();
        assert_eq!(
            c,
            Config {
                dead_ms: 50,
                ap_start_ms: 9,
                handshake_ms: 700,
                crash_cycles: 6
            }
        );
    }

    #[test]
    fn rejects_malformed_words() {
        assert_eq!(
            parse(b"dead_ms=50 deadms=3"),
            Err(CmdlineError::UnknownKey { word: (11, 19) })
        );
        assert_eq!(
            parse(b"dead_ms"),
            Err(CmdlineError::UnknownKey { word: (0, 7) })
        );
        assert_eq!(parse(b"=5"), Err(CmdlineError::UnknownKey { word: (0, 2) }));
        for bad in [
            &b"dead_ms="[..],
            b"dead_ms=-1",
            b"dead_ms=0x10",
            b"dead_ms=1e3",
            b"dead_ms=99999999999999999999",
            b"dead_ms=5=5",
        ] {
            assert!(
                matches!(parse(bad), Err(CmdlineError::BadNumber { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse(b"dead_ms=1"),
            Err(CmdlineError::OutOfRange {
                key: "dead_ms",
                value: 1,
                min: 5,
                max: 60_000
            })
        );
        assert!(matches!(
            parse(b"crash_cycles=0"),
            Err(CmdlineError::OutOfRange { .. })
        ));
        assert_eq!(
            parse(b"dead_ms=10 dead_ms=10"),
            Err(CmdlineError::Repeated("dead_ms"))
        );
        // Arbitrary bytes never panic.
        for seed in 0u32..2000 {
            let mut x = seed.wrapping_mul(2_654_435_761);
            let line: Vec<u8> = (0..(seed % 40))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    b"dead_ms=0123456789 \x00\xff_ak"[(x % 22) as usize]
                })
                .collect();
            let _ = parse(&line);
        }
    }

    #[test]
    fn reads_nul_terminated_lines() {
        let mut bytes = [b'x'; 600];
        bytes[..12].copy_from_slice(b"dead_ms=20\0\0");
        let mem = SliceMem {
            base: 0x1000,
            bytes: &bytes,
        };
        let mut buf = [0u8; MAX_LEN];
        assert_eq!(read(&mem, 0x1000, &mut buf), Ok(&b"dead_ms=20"[..]));
        assert_eq!(read(&mem, 0, &mut buf), Ok(&b""[..]));
        // No NUL within MAX_LEN bytes.
        assert_eq!(read(&mem, 0x1000 + 12, &mut buf), Err(ReadError::TooLong));
        // Runs off the end of readable memory before a NUL.
        assert!(matches!(
            read(&mem, 0x1000 + 300, &mut buf),
            Err(ReadError::Unreadable(_))
        ));
        assert!(matches!(
            read(&mem, u64::MAX, &mut buf),
            Err(ReadError::Unreadable(_))
        ));
    }
}
