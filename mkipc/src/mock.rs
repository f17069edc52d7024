//! A scriptable hostile peer for tests and fuzzing (feature `test-utils`).
//!
//! It writes garbage into shared words the way a buggy or malicious kernel could:
//! random words, boundary values, and plausible-but-wrong stamps and indices.

use core::ops::Range;

use crate::shm::{Region, WORD};
use crate::spsc::RingLayout;
use crate::sync::Ordering;

/// Writes garbage into a region.
#[derive(Debug)]
pub struct Scribbler {
    region: Region,
    state: u64,
}

impl Scribbler {
    /// A scribbler over `region`, reproducible from `seed`.
    pub fn new(region: Region, seed: u64) -> Scribbler {
        Scribbler {
            region,
            state: seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The next pseudo-random word (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value likely to trip validation: boundaries, small numbers, near-misses of
    /// `near` (a plausible value such as the expected stamp), or random bits.
    pub fn garbage(&mut self, near: u64) -> u64 {
        match self.next_u64() % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => near.wrapping_add(1),
            3 => near.wrapping_sub(1),
            4 => near.wrapping_add(1 << 32),
            5 => self.next_u64() % 4096,
            6 => 1 << (self.next_u64() % 64),
            _ => self.next_u64(),
        }
    }

    /// Overwrites the word at `offset` with `value` (ignoring refused accesses).
    pub fn poke(&self, offset: usize, value: u64) {
        let _ = self.region.store(offset, value, Ordering::Relaxed);
    }

    /// Overwrites `count` randomly chosen words of `range` with garbage.
    pub fn scribble(&mut self, range: Range<usize>, count: usize) {
        let words = range.len() / WORD;
        if words == 0 {
            return;
        }
        for _ in 0..count {
            let at = range.start + (self.next_u64() as usize % words) * WORD;
            let near = self.region.load(at, Ordering::Relaxed).unwrap_or(0);
            let value = self.garbage(near);
            self.poke(at, value);
        }
    }
}

/// Every word the producer of `ring` writes: its control line and each slot's
/// tag (stamp and length) and first payload word.
pub fn producer_words(ring: &RingLayout) -> impl Iterator<Item = usize> + '_ {
    let control = [ring.tail_word(), ring.producer_faults_word()];
    let slots = (0..ring.capacity()).flat_map(|p| [ring.tag_word(p), ring.payload(p)]);
    control.into_iter().chain(slots)
}

/// Every word the consumer of `ring` writes.
pub fn consumer_words(ring: &RingLayout) -> [usize; 3] {
    [
        ring.head_word(),
        ring.need_wakeup_word(),
        ring.consumer_faults_word(),
    ]
}
