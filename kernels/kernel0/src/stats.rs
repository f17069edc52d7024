//! Round-trip samples and their percentiles.

use platform::tsc;

/// Most samples one measurement keeps.
pub const CAPACITY: usize = 4096;

/// A fixed-capacity sample buffer.
pub struct Samples {
    buf: [u64; CAPACITY],
    len: usize,
    want: usize,
}

/// Percentiles of a sample set, in TSC cycles.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Minimum.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
}

impl Samples {
    /// An empty buffer that is full after `want` samples (at most CAPACITY).
    pub const fn new(want: usize) -> Self {
        Samples {
            buf: [0; CAPACITY],
            len: 0,
            want: if want < CAPACITY { want } else { CAPACITY },
        }
    }

    /// Forgets all samples.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Changes the target count (at most CAPACITY) and clears.
    pub fn reset(&mut self, want: usize) {
        self.want = want.min(CAPACITY);
        self.len = 0;
    }

    /// True once the target count is reached.
    pub fn is_full(&self) -> bool {
        self.len >= self.want
    }

    /// Adds one sample (ignored when full).
    pub fn push(&mut self, v: u64) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }

    /// Sorts the samples and summarises them.
    pub fn summary(&mut self) -> Summary {
        let s = &mut self.buf[..self.len];
        s.sort_unstable();
        let at = |q: usize| {
            s.get((s.len().saturating_sub(1)) * q / 100)
                .copied()
                .unwrap_or(0)
        };
        Summary {
            n: s.len(),
            min: s.first().copied().unwrap_or(0),
            p50: at(50),
            p99: at(99),
            max: s.last().copied().unwrap_or(0),
        }
    }
}

impl Summary {
    /// Prints "what: n=.. cycles min/p50/p99/max = ..  ns = ..".
    pub fn print(&self, what: core::fmt::Arguments) {
        let ns = tsc::ns_from_cycles;
        platform::println!(
            "{what}: n={} cycles min/p50/p99/max = {}/{}/{}/{}  ns = {}/{}/{}/{}",
            self.n,
            self.min,
            self.p50,
            self.p99,
            self.max,
            ns(self.min),
            ns(self.p50),
            ns(self.p99),
            ns(self.max)
        );
    }
}
