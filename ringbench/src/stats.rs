//! Percentiles and medians of samples.

/// Summary of one set of round-trip samples, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Summarises samples (sorting them in place).
pub fn summarize(samples: &mut [f64]) -> Summary {
    samples.sort_by(f64::total_cmp);
    Summary {
        p50: quantile(samples, 0.5),
        p99: quantile(samples, 0.99),
        p999: quantile(samples, 0.999),
    }
}

/// Median of a few values (e.g. one figure per repetition).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_nearest_ranks() {
        let mut s: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let sum = summarize(&mut s);
        assert_eq!(sum.p50, 501.0);
        assert_eq!(sum.p99, 990.0);
        assert_eq!(sum.p999, 999.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
