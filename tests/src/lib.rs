//! Shared helpers for mkipc's integration tests: sequenced, checksummed messages.
//!
//! A message is `seq: u64 LE | body | checksum: u64 LE`, where the body length and
//! bytes follow from `seq` and the checksum covers `seq` and the body, so the
//! receiver can detect loss, duplication, reordering and corruption.

/// Smallest message (sequence number and checksum, empty body).
pub const MIN_LEN: usize = 16;

/// FNV-1a over `bytes`, starting from `hash`.
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Writes message `seq` (of at most `max_len` bytes) into `buf`; returns its length.
pub fn encode(seq: u64, max_len: usize, buf: &mut [u8]) -> usize {
    let body = (seq as usize * 7) % (max_len - MIN_LEN + 1);
    let len = MIN_LEN + body;
    buf[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in buf[8..8 + body].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    let sum = fnv1a(0xcbf2_9ce4_8422_2325, &buf[..8 + body]);
    buf[8 + body..len].copy_from_slice(&sum.to_le_bytes());
    len
}

/// Checks that `msg` is intact message number `expected`.
pub fn verify(expected: u64, msg: &[u8]) -> Result<(), String> {
    if msg.len() < MIN_LEN {
        return Err(format!("message {expected}: only {} bytes", msg.len()));
    }
    let (front, sum) = msg.split_at(msg.len() - 8);
    let seq = u64::from_le_bytes(front[..8].try_into().unwrap());
    if seq != expected {
        return Err(format!("expected message {expected}, got {seq}"));
    }
    let want = fnv1a(0xcbf2_9ce4_8422_2325, front);
    if want.to_le_bytes() != sum {
        return Err(format!("message {seq}: checksum mismatch"));
    }
    Ok(())
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
