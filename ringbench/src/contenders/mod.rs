//! The contenders: each is a client/server pair echoing small messages.

pub mod floor;
pub mod mkipc_spsc;

/// Payload bytes of a small round-trip message (written and read by both sides).
pub const SMALL: usize = 32;

/// Fills a message with `seq` in every word.
#[inline]
pub fn fill(buf: &mut [u8; SMALL], seq: u64) {
    for chunk in buf.chunks_exact_mut(8) {
        chunk.copy_from_slice(&seq.to_le_bytes());
    }
}

/// Reads every word of a message back, checking each holds `seq`.
#[inline]
pub fn check(buf: &[u8], seq: u64) {
    let ok = buf.len() == SMALL
        && buf
            .chunks_exact(8)
            .all(|c| u64::from_le_bytes(c.try_into().unwrap()) == seq);
    assert!(ok, "echo of message {seq} came back wrong");
}
