//! Generated messages: sequenced and checksummed, so a receiver detects loss,
//! duplication, reordering and corruption.
//!
//! The format (also used by the integration tests in `tests/`): `seq: u64 LE |
//! body | checksum: u64 LE`, the body's length and bytes a function of `seq`, the
//! checksum FNV-1a over `seq` and the body. `mkipc send --count` numbers each message with its position
//! in the ring, so a restarted sender continues the sequence where the channel was
//! reset, and `mkipc recv --count` expects exactly its own read position.

use std::fmt;

/// Smallest message (sequence number and checksum, empty body).
pub const MIN_LEN: usize = 16;

/// FNV-1a offset basis.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, starting from `hash`.
fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Why a received message is not the one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadMessage {
    /// Shorter than a sequence number and a checksum.
    TooShort {
        /// Its length.
        len: usize,
    },
    /// Another sequence number: a message was lost, duplicated or reordered.
    WrongSequence {
        /// The one expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The checksum does not match the contents.
    Checksum {
        /// The message's sequence number.
        seq: u64,
    },
}

impl fmt::Display for BadMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BadMessage::TooShort { len } => write!(
                f,
                "a {len}-byte message is too short to be a generated one (at least {MIN_LEN})"
            ),
            BadMessage::WrongSequence { expected, found } => write!(
                f,
                "expected message {expected}, got {found} (lost, duplicated or reordered)"
            ),
            BadMessage::Checksum { seq } => write!(f, "message {seq} fails its checksum"),
        }
    }
}

/// Writes message `seq` of at most `max_len` bytes (`>= MIN_LEN`) into `buf`
/// (at least `max_len` long); returns its length, or `None` if `max_len` or `buf`
/// is too small.
pub fn encode(seq: u64, max_len: usize, buf: &mut [u8]) -> Option<usize> {
    if max_len < MIN_LEN || buf.len() < max_len {
        return None;
    }
    let body = (seq.wrapping_mul(13) % (max_len - MIN_LEN + 1) as u64) as usize;
    let len = MIN_LEN + body;
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in buf[8..8 + body].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let sum = fnv1a(FNV_BASIS, &buf[..8 + body]);
    buf[8 + body..len].copy_from_slice(&sum.to_le_bytes());
    Some(len)
}

/// The sequence number of `msg`, if it is long enough to have one.
pub fn sequence(msg: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = msg.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Checks that `msg` is intact message number `expected`.
pub fn verify(expected: u64, msg: &[u8]) -> Result<(), BadMessage> {
    if msg.len() < MIN_LEN {
        return Err(BadMessage::TooShort { len: msg.len() });
    }
    let (front, sum) = msg.split_at(msg.len() - 8);
    let seq = sequence(front).ok_or(BadMessage::TooShort { len: msg.len() })?;
    if seq != expected {
        return Err(BadMessage::WrongSequence {
            expected,
            found: seq,
        });
    }
    if fnv1a(FNV_BASIS, front).to_le_bytes() != sum {
        return Err(BadMessage::Checksum { seq });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_verify_and_every_kind_of_damage_is_seen() {
        let mut buf = [0u8; 64];
        for seq in [0, 1, 2, 47, 48, 1000, u64::MAX - 1] {
            let n = encode(seq, 64, &mut buf).unwrap();
            assert!((MIN_LEN..=64).contains(&n));
            assert_eq!(verify(seq, &buf[..n]), Ok(()));
            assert_eq!(
                verify(seq.wrapping_add(1), &buf[..n]),
                Err(BadMessage::WrongSequence {
                    expected: seq.wrapping_add(1),
                    found: seq
                })
            );
            buf[n / 2] ^= 1;
            assert!(verify(seq, &buf[..n]).is_err());
        }
        assert_eq!(verify(0, &buf[..15]), Err(BadMessage::TooShort { len: 15 }));
    }

    #[test]
    fn lengths_vary_and_small_limits_are_refused() {
        let mut buf = [0u8; 64];
        let lens: std::collections::BTreeSet<usize> =
            (0..100).map(|s| encode(s, 64, &mut buf).unwrap()).collect();
        assert!(lens.len() > 10, "lengths should vary: {lens:?}");
        assert_eq!(encode(0, 15, &mut buf), None);
        assert_eq!(encode(0, 64, &mut buf[..32]), None);
        assert_eq!(encode(5, 16, &mut buf), Some(16));
    }
}
