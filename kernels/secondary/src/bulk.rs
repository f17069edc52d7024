//! The node's half of a bulk transfer: loan a pool buffer, fill it in
//! place, send it, and repeat, while kernel0 reads each buffer in place and
//! gives it back. The node keeps beating its heartbeat while it waits for
//! buffers, and gives up (answering `BULK_FAILED`) when none comes back in
//! time.

use crate::serve::Heart;
use bootparse::wire::{BULK_FAILED, BULK_FOLD_INIT, BulkWriter, bulk_decode, bulk_fold};
use mkipc::pool::{PoolSender, SendError};
use platform::{cpu, println, tsc};

/// Longest wait for a buffer to come back (or a submission slot to free).
const BUFFER_TIMEOUT_US: u64 = 500_000;

/// Sends the messages an `OP_BULK` request with `arg` asks for; returns
/// the fold of their checksums or `BULK_FAILED`.
pub fn send(heart: &mut Heart, pool: &mut PoolSender, arg: u64) -> u64 {
    let (count, seed) = bulk_decode(arg);
    let words = pool.buffer_size() / 8;
    let mut total = BULK_FOLD_INIT;
    for msg in 0..count {
        let deadline = tsc::deadline_after_us(BUFFER_TIMEOUT_US);
        let loan = loop {
            heart.beat_if_due();
            match pool.loan() {
                Ok(l) => break l,
                Err(SendError::NoBuffer) if !tsc::passed(deadline) => cpu::pause(),
                Err(e) => {
                    println!("bulk message {msg} of {count}: no buffer: {e}");
                    return BULK_FAILED;
                }
            }
        };
        let mut writer = BulkWriter::new(seed, msg, words);
        if let Err(e) = pool.writer(&loan).fill_words(words, |i| writer.word(i)) {
            println!("bulk message {msg}: fill failed: {e}");
            return BULK_FAILED;
        }
        total = bulk_fold(total, writer.checksum());
        // Every buffer is loaned before it is sent, and the submission ring
        // has a slot per buffer, so a send can only fail on a broken pool.
        if let Err(failed) = pool.send(loan, words * 8) {
            println!("bulk message {msg}: send failed: {}", failed.error);
            return BULK_FAILED;
        }
    }
    total
}
