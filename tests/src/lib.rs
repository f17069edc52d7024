//! Shared helpers for mkipc's integration tests: sequenced, checksummed messages.
//!
//! The format is the `mkipc` tool's generated messages (`mkipc_cli::message`):
//! `seq: u64 LE | body | checksum: u64 LE`, where the body length and bytes follow
//! from `seq` and the checksum covers `seq` and the body, so the receiver can
//! detect loss, duplication, reordering and corruption.

use mkipc_cli::message;
pub use mkipc_cli::message::MIN_LEN;

/// Writes message `seq` (of at most `max_len` bytes) into `buf`; returns its length.
///
/// # Panics
///
/// If `max_len < MIN_LEN` or `buf` is shorter than `max_len` (a test bug).
pub fn encode(seq: u64, max_len: usize, buf: &mut [u8]) -> usize {
    message::encode(seq, max_len, buf).expect("max_len >= MIN_LEN and buf holds max_len")
}

/// Checks that `msg` is intact message number `expected`.
pub fn verify(expected: u64, msg: &[u8]) -> Result<(), String> {
    message::verify(expected, msg).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_messages_verify_and_corruption_is_seen() {
        let mut buf = [0u8; 64];
        for seq in 0..100 {
            let n = encode(seq, 64, &mut buf);
            assert!((MIN_LEN..=64).contains(&n));
            verify(seq, &buf[..n]).unwrap();
            assert!(verify(seq + 1, &buf[..n]).is_err());
            buf[n / 2] ^= 1;
            assert!(verify(seq, &buf[..n]).is_err());
        }
    }
}
