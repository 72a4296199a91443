//! What a histogram reports: its window configuration and the plain-data
//! statistics of a snapshot.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::*;

/// Which values a histogram's window holds.
///
/// ```
/// use std::time::Duration;
/// use vitals::{MetricsCollector, Window};
///
/// let metrics = MetricsCollector::new();
/// metrics
///     .configure_histogram("latency_seconds", Window::Count { values: 1000 })
///     .unwrap();
/// metrics
///     .configure_histogram(
///         "batch_size",
///         Window::Time { length: Duration::from_secs(300), slots: 10 },
///     )
///     .unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Window {
    /// Values recorded in the last `length`, kept in `slots` slots (1..=64)
    /// that leave the window one at a time; `length / slots` is the
    /// granularity with which old values leave.
    Time {
        /// How far back the window reaches (at least 1 ms per slot).
        #[serde(with = "duration_seconds", rename = "length_seconds")]
        length: Duration,
        /// Number of slots (1..=64).
        slots: u32,
    },
    /// The last `values` values recorded (1..=1,000,000), kept exactly.
    Count {
        /// How many values the window holds.
        values: u32,
    },
}

impl Default for Window {
    /// The last 60 s in 6 slots of 10 s.
    fn default() -> Self {
        Window::Time {
            length: Duration::from_secs(60),
            slots: 6,
        }
    }
}

impl Window {
    /// Checks the bounds given on each variant.
    ///
    /// ```
    /// use vitals::Window;
    /// assert!(Window::default().validate().is_ok());
    /// assert!(Window::Count { values: 0 }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Window::Time { length, slots } => {
                if !(1..=64).contains(&slots) {
                    return Err(Error::InvalidConfig(format!(
                        "a time window needs 1 to 64 slots, not {slots}"
                    )));
                }
                if length < Duration::from_millis(u64::from(slots)) {
                    return Err(Error::InvalidConfig(format!(
                        "a time window of {slots} slots needs at least {slots} ms, not {length:?}"
                    )));
                }
                if length > Duration::from_secs(366 * 24 * 3600) {
                    return Err(Error::InvalidConfig(format!(
                        "a time window may span at most a year, not {length:?}"
                    )));
                }
                Ok(())
            }
            Window::Count { values } => {
                if !(1..=1_000_000).contains(&values) {
                    return Err(Error::InvalidConfig(format!(
                        "a count window holds 1 to 1,000,000 values, not {values}"
                    )));
                }
                Ok(())
            }
        }
    }
}

mod duration_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// What a histogram's window and life hold, as plain data.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.histogram("size_bytes", &[]).record(100.0);
/// let snap = metrics.snapshot();
/// let summary = &snap.histograms[0].summary;
/// assert_eq!(summary.window.count, 1);
/// assert_eq!(summary.lifetime.count, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSummary {
    /// Statistics over the rolling window.
    pub window: WindowStats,
    /// Count, sum, min and max over the whole life of the series.
    pub lifetime: LifetimeStats,
    /// Values outside [`MIN_TRACKABLE`], [`MAX_TRACKABLE`] that were clamped
    /// to the nearest trackable value and recorded (time windows only).
    pub saturated: u64,
    /// NaN and negative values, which were counted here and not recorded.
    pub dropped: u64,
    /// Cumulative counts per bucket over the series' life, for collectors
    /// built with [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets)
    /// (time windows only; absent otherwise, and from JSON written before
    /// schema version 2). Two snapshots' difference is the exact
    /// distribution of the values recorded between them, which is what
    /// `History` (feature `history`) keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_buckets: Option<SparseBuckets>,
    /// Lifetime counts per configured bucket bound, for histograms given
    /// bounds with
    /// [`configure_histogram_buckets`](crate::MetricsCollector::configure_histogram_buckets);
    /// absent otherwise (and from JSON written before buckets existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<BucketCounts>,
}

/// Statistics over a histogram's rolling window.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let h = metrics.histogram("latency_seconds", &[]);
/// for v in [0.1, 0.2, 0.3] {
///     h.record(v);
/// }
/// let w = &metrics.snapshot().histograms[0].summary.window;
/// assert_eq!(w.count, 3);
/// assert!((w.mean.unwrap() - 0.2).abs() < 1e-9);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// The window's configuration.
    pub window: Window,
    /// The real time the window covered, in seconds: from the start of its
    /// oldest slot (or the series' creation, if later) to the snapshot. For
    /// a count window, an upper bound: from the last snapshot before its
    /// oldest value was recorded (or creation).
    pub span_seconds: f64,
    /// Values in the window.
    pub count: u64,
    /// Sum of the values in the window (exact).
    pub sum: f64,
    /// Smallest value (exact); `None` when the window is empty.
    pub min: Option<f64>,
    /// Largest value (exact); `None` when the window is empty.
    pub max: Option<f64>,
    /// `sum / count`; `None` when the window is empty.
    pub mean: Option<f64>,
    /// Standard deviation: exact for a count window, from bucket midpoints
    /// (within 0.79% per value) for a time window; `None` when empty.
    pub stddev: Option<f64>,
    /// Nearest-rank quantiles; `None` when the window is empty.
    pub quantiles: Option<Quantiles>,
}

/// Nearest-rank quantiles of a window: exact for a count window, within
/// 0.79% relative error for a time window.
///
/// ```
/// let q = vitals::Quantiles { p50: 1.0, p90: 2.0, p95: 3.0, p99: 4.0, p999: 5.0 };
/// assert_eq!(q.get(0.99), Some(4.0));
/// assert_eq!(q.get(0.42), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
}

impl Quantiles {
    /// The quantile levels reported, in the order of the fields.
    pub const LEVELS: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

    /// The value at one of [`Quantiles::LEVELS`], or `None` for another level.
    ///
    /// ```
    /// let q = vitals::Quantiles { p50: 1.0, p90: 2.0, p95: 3.0, p99: 4.0, p999: 5.0 };
    /// assert_eq!(q.get(0.5), Some(1.0));
    /// ```
    pub fn get(&self, level: f64) -> Option<f64> {
        let values = [self.p50, self.p90, self.p95, self.p99, self.p999];
        Self::LEVELS
            .iter()
            .position(|l| *l == level)
            .map(|i| values[i])
    }

    pub(super) fn from_values(v: [f64; 5]) -> Self {
        Quantiles {
            p50: v[0],
            p90: v[1],
            p95: v[2],
            p99: v[3],
            p999: v[4],
        }
    }
}

/// Totals over the whole life of a histogram series.
///
/// ```
/// let s = vitals::LifetimeStats { count: 2, sum: 3.0, min: Some(1.0), max: Some(2.0) };
/// assert_eq!(s.mean(), Some(1.5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifetimeStats {
    /// Values ever recorded.
    pub count: u64,
    /// Sum of every value ever recorded.
    pub sum: f64,
    /// Smallest value ever recorded.
    pub min: Option<f64>,
    /// Largest value ever recorded.
    pub max: Option<f64>,
}

impl LifetimeStats {
    /// `sum / count`, or `None` before the first value.
    ///
    /// ```
    /// let s = vitals::LifetimeStats { count: 0, sum: 0.0, min: None, max: None };
    /// assert_eq!(s.mean(), None);
    /// ```
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}
