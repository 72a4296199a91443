//! Configured bucket bounds: Prometheus-style cumulative counts over a
//! histogram's life, kept only by histograms that configure them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::*;

/// The most bucket bounds one histogram may configure. Each bound costs an
/// atomic counter per series and a line per series in Prometheus output.
///
/// ```
/// assert_eq!(vitals::histogram::MAX_BUCKETS, 128);
/// ```
pub const MAX_BUCKETS: usize = 128;

/// Cumulative bucket counts over a histogram's life, as Prometheus
/// histograms expose them.
///
/// `cumulative[i]` counts the values `<= bounds[i]`; `count` counts every
/// value recorded (the `+Inf` bucket). Values dropped as NaN or negative are
/// in none; values clamped as saturated are counted at their original value
/// (so `+Inf` lands only in the `+Inf` bucket).
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.configure_histogram_buckets("size_bytes", &[10.0, 100.0]).unwrap();
/// let h = metrics.histogram("size_bytes", &[]);
/// for v in [5.0, 10.0, 50.0, 500.0] {
///     h.record(v);
/// }
/// let snap = metrics.snapshot();
/// let b = snap.histogram("size_bytes", &[]).unwrap().buckets.clone().unwrap();
/// assert_eq!(b.bounds, [10.0, 100.0]);
/// assert_eq!(b.cumulative, [2, 3]);
/// assert_eq!(b.count, 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketCounts {
    /// Upper bounds (inclusive), finite and strictly increasing.
    pub bounds: Vec<f64>,
    /// Values at or below each bound, one per bound.
    pub cumulative: Vec<u64>,
    /// All values counted (the `+Inf` bucket).
    pub count: u64,
}

/// Checks bucket bounds: 1 to [`MAX_BUCKETS`] finite, non-negative,
/// strictly increasing values.
pub(crate) fn validate_bucket_bounds(name: &str, bounds: &[f64]) -> Result<(), Error> {
    if bounds.is_empty() || bounds.len() > MAX_BUCKETS {
        return Err(Error::InvalidConfig(format!(
            "histogram {name:?} needs 1 to {MAX_BUCKETS} bucket bounds, not {}",
            bounds.len()
        )));
    }
    if let Some(bad) = bounds.iter().find(|b| !b.is_finite()) {
        return Err(Error::InvalidConfig(format!(
            "bucket bound {bad} of histogram {name:?} is not finite (+Inf is implied)"
        )));
    }
    // Negative values are never recorded, and OpenMetrics forbids a `_sum`
    // beside negative buckets.
    if let Some(bad) = bounds.iter().find(|b| **b < 0.0) {
        return Err(Error::InvalidConfig(format!(
            "bucket bound {bad} of histogram {name:?} is negative; histograms record values >= 0"
        )));
    }
    if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
        return Err(Error::InvalidConfig(format!(
            "bucket bounds of histogram {name:?} must strictly increase: {} then {}",
            w[0], w[1]
        )));
    }
    Ok(())
}

/// Per-bound lifetime counters; only histograms that configured bounds
/// have them, so the default record path pays one never-taken branch.
pub(super) struct BucketCounters {
    pub(super) bounds: Box<[f64]>,
    /// One per bound plus the overflow (`+Inf`) bucket; not cumulative.
    pub(super) counts: Box<[AtomicU64]>,
}

impl BucketCounters {
    pub(super) fn new(bounds: &[f64]) -> Self {
        BucketCounters {
            bounds: bounds.into(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The bucket of `value`: the first whose bound is at least `value`,
    /// or the `+Inf` one.
    #[inline]
    pub(super) fn index_of(&self, value: f64) -> usize {
        self.bounds.partition_point(|b| *b < value)
    }

    #[inline]
    pub(super) fn record(&self, value: f64) {
        let i = self.index_of(value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn read(&self) -> BucketCounts {
        let mut running = 0u64;
        let mut cumulative = Vec::with_capacity(self.bounds.len());
        for c in &self.counts[..self.bounds.len()] {
            running += c.load(Ordering::Relaxed);
            cumulative.push(running);
        }
        let overflow = self.counts.last().map_or(0, |c| c.load(Ordering::Relaxed));
        BucketCounts {
            bounds: self.bounds.to_vec(),
            cumulative,
            count: running + overflow,
        }
    }
}
