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
/// metrics.histogram("batch_size", &[]).record(8.0);
/// let snap = metrics.snapshot();
/// let window = snap.histogram("batch_size", &[]).unwrap().window.window;
/// assert_eq!(window, Window::Time { length: Duration::from_secs(300), slots: 10 });
/// assert!(Window::Time { length: Duration::from_secs(1), slots: 0 }.validate().is_err());
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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// The window's values in exponential buckets (scale 6, see
    /// [`layout`](crate::layout)), for collectors built with
    /// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets): what
    /// makes [`merge`](HistogramSummary::merge) exact. Absent otherwise,
    /// and from JSON written before schema version 3.
    ///
    /// Both bucket lists are shared (`Arc`): snapshots taken while a series
    /// did not move hold the same lists, and the collector rewrites its
    /// lists in place once no snapshot holds them, so a reporter's ticks
    /// copy and allocate none. `Arc::make_mut` gives a list of one's own
    /// to change.
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
    /// m.histogram("latency_seconds", &[]).record(0.25);
    /// let (a, b) = (m.snapshot(), m.snapshot());
    /// let lists = |s: &vitals::Snapshot| s.histograms[0].summary.lifetime_buckets.clone().unwrap();
    /// assert!(std::sync::Arc::ptr_eq(&lists(&a), &lists(&b)));
    /// assert_eq!(lists(&a).count(), 1);
    /// ```
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_buckets: Option<Arc<SparseBuckets>>,
    /// Cumulative counts per exponential bucket over the series' life, for
    /// collectors built with
    /// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets) (time
    /// windows only; absent otherwise, and from JSON written before schema
    /// version 2; log-linear buckets of version 2 are migrated, see
    /// [`SparseBuckets`]). Two snapshots' difference is the exact
    /// distribution of the values recorded between them, which is what
    /// `History` (feature `history`) keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_buckets: Option<Arc<SparseBuckets>>,
    /// Lifetime counts per configured bucket bound, for histograms given
    /// bounds with
    /// [`configure_histogram_buckets`](crate::MetricsCollector::configure_histogram_buckets);
    /// absent otherwise (and from JSON written before buckets existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<BucketCounts>,
    /// What exporters derived from `lifetime_buckets` (not data: skipped
    /// when written, compared and printed).
    #[serde(skip)]
    pub(crate) memo: LifetimeMemo,
}

impl std::fmt::Debug for HistogramSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramSummary")
            .field("window", &self.window)
            .field("lifetime", &self.lifetime)
            .field("saturated", &self.saturated)
            .field("dropped", &self.dropped)
            .field("window_buckets", &self.window_buckets)
            .field("lifetime_buckets", &self.lifetime_buckets)
            .field("buckets", &self.buckets)
            .finish()
    }
}

impl HistogramSummary {
    /// Adds `other` (the same series in another process or collector, or
    /// another series) to this summary, as if one histogram had recorded
    /// the values of both.
    ///
    /// Exact: counts, sums, minima and maxima, `saturated` and `dropped`,
    /// and the exponential buckets (window and lifetime, when both sides
    /// carry them; a finer scale is downscaled to the coarser). Window
    /// quantiles are taken from the merged window buckets; when either side
    /// has none (count windows, collectors without
    /// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets)) they
    /// cannot be merged and become `None`, as do the buckets themselves.
    /// The standard deviation is pooled from both sides' (exact given
    /// theirs). Configured bucket counts merge when their bounds are equal
    /// (else `None`). The window's configuration and span are this
    /// summary's (the span the longer of the two).
    ///
    /// ```
    /// let collect = |values: &[f64]| {
    ///     let m = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
    ///     let h = m.histogram("latency_seconds", &[]);
    ///     values.iter().for_each(|v| h.record(*v));
    ///     m.snapshot().histogram("latency_seconds", &[]).unwrap().clone()
    /// };
    /// let mut a = collect(&[0.1, 0.2]);
    /// a.merge(&collect(&[0.3, 0.4, 0.5]));
    /// let all = collect(&[0.1, 0.2, 0.3, 0.4, 0.5]);
    /// assert_eq!(a.window.count, 5);
    /// assert_eq!(a.window_buckets, all.window_buckets);
    /// assert_eq!(a.window.quantiles, all.window.quantiles);
    /// ```
    pub fn merge(&mut self, other: &HistogramSummary) {
        let (a, b) = (&mut self.window, &other.window);
        let n = a.count.saturating_add(b.count);
        let sum = a.sum + b.sum;
        let pooled = match (a.mean, a.stddev, b.mean, b.stddev) {
            (Some(ma), Some(sa), Some(mb), Some(sb)) if n > 0 => {
                let mean = sum / n as f64;
                let squares = a.count as f64 * (sa * sa + (ma - mean) * (ma - mean))
                    + b.count as f64 * (sb * sb + (mb - mean) * (mb - mean));
                Some((squares / n as f64).max(0.0).sqrt())
            }
            (None, _, _, _) => b.stddev,
            (_, _, None, _) => a.stddev,
            _ => None,
        };
        a.min = min_of(a.min, b.min);
        a.max = max_of(a.max, b.max);
        a.count = n;
        a.sum = sum;
        a.mean = (n > 0).then(|| sum / n as f64);
        a.stddev = pooled;
        a.span_seconds = a.span_seconds.max(b.span_seconds);
        self.window_buckets = merged(&self.window_buckets, &other.window_buckets, b.count, a);
        a.quantiles = match &self.window_buckets {
            Some(buckets) if n > 0 => {
                let (lo, hi) = (a.min.unwrap_or(0.0), a.max.unwrap_or(f64::MAX));
                // max/min rather than clamp: a hand-made summary may hold
                // min > max, which must not panic.
                let q = Quantiles::LEVELS
                    .map(|q| buckets.quantile(q).map_or(hi, |v| v.max(lo).min(hi)));
                Some(Quantiles::from_values(q))
            }
            _ if b.count == 0 => a.quantiles,
            _ if n == b.count => b.quantiles,
            _ => None,
        };
        let (l, r) = (&mut self.lifetime, &other.lifetime);
        l.count = l.count.saturating_add(r.count);
        l.sum += r.sum;
        l.min = min_of(l.min, r.min);
        l.max = max_of(l.max, r.max);
        self.saturated = self.saturated.saturating_add(other.saturated);
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.memo = LifetimeMemo::default();
        self.lifetime_buckets = match (&self.lifetime_buckets, &other.lifetime_buckets) {
            (Some(x), Some(y)) => {
                let mut x = SparseBuckets::clone(x);
                x.merge(y);
                Some(Arc::new(x))
            }
            _ => None,
        };
        self.buckets = match (&self.buckets, &other.buckets) {
            (Some(x), Some(y)) if x.bounds == y.bounds => Some(BucketCounts {
                bounds: x.bounds.clone(),
                cumulative: x
                    .cumulative
                    .iter()
                    .zip(&y.cumulative)
                    .map(|(p, q)| p.saturating_add(*q))
                    .collect(),
                count: x.count.saturating_add(y.count),
            }),
            _ => None,
        };
    }

    /// Downscales the window and lifetime buckets until each spans at most
    /// `max_buckets` buckets (see [`SparseBuckets::fit`]): the bucket-count
    /// limit exporters apply, by default
    /// [`DEFAULT_MAX_BUCKETS`](crate::layout::DEFAULT_MAX_BUCKETS). Exact:
    /// no value changes bucket other than by the downscaling.
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
    /// let h = m.histogram("size_bytes", &[]);
    /// for v in [1.0, 1e3, 1e6, 1e9] {
    ///     h.record(v);
    /// }
    /// let mut s = m.snapshot().histogram("size_bytes", &[]).unwrap().clone();
    /// s.limit_buckets(vitals::layout::DEFAULT_MAX_BUCKETS);
    /// let w = s.window_buckets.as_ref().unwrap();
    /// assert!(w.scale < 6 && w.count() == 4);
    /// ```
    pub fn limit_buckets(&mut self, max_buckets: usize) {
        // The memo holds the lifetime list too: a list changed here is
        // another list.
        if self
            .lifetime_buckets
            .as_ref()
            .is_some_and(|b| b.fit_steps(max_buckets) > 0)
        {
            self.memo = LifetimeMemo::default();
        }
        for b in [&mut self.window_buckets, &mut self.lifetime_buckets]
            .into_iter()
            .flatten()
        {
            // A shared list that already fits stays shared.
            if b.fit_steps(max_buckets) > 0 {
                Arc::make_mut(b).fit(max_buckets);
            }
        }
    }
}

fn min_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Two sides' window buckets merged: kept while both have them, or the one
/// side that has them when the other recorded nothing.
fn merged(
    mine: &Option<Arc<SparseBuckets>>,
    theirs: &Option<Arc<SparseBuckets>>,
    their_count: u64,
    merged_window: &WindowStats,
) -> Option<Arc<SparseBuckets>> {
    match (mine, theirs) {
        (Some(x), Some(y)) => {
            let mut x = SparseBuckets::clone(x);
            x.merge(y);
            Some(Arc::new(x))
        }
        (Some(x), None) if their_count == 0 => Some(x.clone()),
        (None, Some(y)) if merged_window.count == their_count => Some(y.clone()),
        _ => None,
    }
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
    /// (within 0.55% per value) for a time window; `None` when empty.
    pub stddev: Option<f64>,
    /// Nearest-rank quantiles; `None` when the window is empty.
    pub quantiles: Option<Quantiles>,
}

/// Nearest-rank quantiles of a window: exact for a count window, within
/// 0.55% relative error for a time window (the bucket's geometric midpoint,
/// clamped to the window's min and max).
///
/// ```
/// let q = vitals::snapshot::Quantiles { p50: 1.0, p90: 2.0, p95: 3.0, p99: 4.0, p999: 5.0 };
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
    /// let q = vitals::snapshot::Quantiles { p50: 1.0, p90: 2.0, p95: 3.0, p99: 4.0, p999: 5.0 };
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
/// let s = vitals::snapshot::LifetimeStats { count: 2, sum: 3.0, min: Some(1.0), max: Some(2.0) };
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
    /// let s = vitals::snapshot::LifetimeStats { count: 0, sum: 0.0, min: None, max: None };
    /// assert_eq!(s.mean(), None);
    /// ```
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}
