//! Histograms over a rolling window: by time (the last 60 s in 6 slots by
//! default) or by count (the last N values, exact quantiles).
//!
//! # Layout of a time window
//!
//! A value's bucket comes straight from the bits of its `f64`: the exponent
//! picks an octave (a power of two) and the top 6 mantissa bits one of 64
//! linear sub-buckets in it. A bucket is at most 1/64 of its lower bound wide,
//! so its midpoint is within 0.79% of any value in it: quantiles are within
//! 0.79% of the exact nearest-rank quantile. Octaves cover 2⁻³⁰ (about 1 ns
//! when recording seconds) to 2⁵⁰ (about 10¹⁵).
//!
//! Each octave's counters (`slots × 64` × `u32`) are allocated the first time
//! a value lands in it, so a series only pays for the range it uses: values
//! over four decades touch 14 octaves, about 21 KiB with 6 slots.
//!
//! `record` never reads the clock and never locks: it reads the current slot
//! index, adds one to a bucket, adds the value to the slot's sum with one CAS,
//! and touches min/max only when they change. Readers (snapshots) rotate the
//! slots when the clock says a slot has ended, folding the slot that leaves
//! the window into the lifetime totals with atomic swaps, so a write racing
//! with rotation lands in the old or the new slot and is never lost.
//!
//! When two threads collide on the same histogram (a failed CAS on the sum),
//! it grows per-thread stripes, as [`Counter`](crate::Counter) does, so that
//! contended threads stop sharing cache lines.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::counter::Counter;
use super::sparse::SparseBuckets;
use super::{move_thread_index, stripe_count, thread_index, Storage};
use crate::error::Error;

const SUB_BITS: u32 = 6;
const SUBS: usize = 1 << SUB_BITS;
const MIN_EXP: i64 = -30;
const MAX_EXP: i64 = 50;
const OCTAVES: usize = (MAX_EXP - MIN_EXP) as usize;
const EXP_BIAS: i64 = 1023;
const MIN_BITS: u64 = ((MIN_EXP + EXP_BIAS) as u64) << 52;
const MAX_BITS: u64 = (((MAX_EXP + EXP_BIAS) as u64) << 52) - 1;
/// Marks an unwritten cell of a count window (NaN is never recorded).
const EMPTY: u64 = u64::MAX;

/// The smallest positive value a time window tells apart (2⁻³⁰ ≈ 9.3e-10).
/// Smaller positive values are recorded as this and counted as saturated;
/// zero is recorded exactly.
///
/// ```
/// assert!(vitals::MIN_TRACKABLE < 1e-9);
/// ```
pub const MIN_TRACKABLE: f64 = f64::from_bits(MIN_BITS);

/// The largest value a time window tracks (just under 2⁵⁰ ≈ 1.1e15). Larger
/// values, +∞ included, are recorded as this and counted as saturated.
///
/// ```
/// assert!(vitals::MAX_TRACKABLE > 1e15);
/// ```
pub const MAX_TRACKABLE: f64 = f64::from_bits(MAX_BITS);

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
    /// [`History`](crate::history::History) keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_buckets: Option<SparseBuckets>,
    /// Lifetime counts per configured bucket bound, for histograms given
    /// bounds with
    /// [`configure_histogram_buckets`](crate::MetricsCollector::configure_histogram_buckets);
    /// absent otherwise (and from JSON written before buckets existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<BucketCounts>,
}

/// The most bucket bounds one histogram may configure. Each bound costs an
/// atomic counter per series and a line per series in Prometheus output.
///
/// ```
/// assert_eq!(vitals::MAX_BUCKETS, 128);
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
struct BucketCounters {
    bounds: Box<[f64]>,
    /// One per bound plus the overflow (`+Inf`) bucket; not cumulative.
    counts: Box<[AtomicU64]>,
}

impl BucketCounters {
    fn new(bounds: &[f64]) -> Self {
        BucketCounters {
            bounds: bounds.into(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    #[inline]
    fn record(&self, value: f64) {
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn read(&self) -> BucketCounts {
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

    fn from_values(v: [f64; 5]) -> Self {
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

/// A distribution of values over a rolling window, such as request latency.
///
/// **How it works.** A value's bucket comes from the bits of its `f64`: the
/// exponent picks an octave, the top 6 mantissa bits one of 64 sub-buckets,
/// so a bucket's midpoint is within 0.79% of every value in it; octaves are
/// allocated on first use (values over four decades: about 25 KiB per series
/// with the default window). `record` never reads the clock and never locks:
/// one atomic add on the bucket of the current slot and one CAS on the
/// slot's exact sum. Snapshots rotate the slots and merge them; a contended
/// histogram grows per-thread stripes, as [`Counter`] does.
///
/// Record durations in seconds
/// (the Prometheus base unit): [`record_duration`](Histogram::record_duration)
/// and the timers do.
///
/// **Bad values.** NaN and negative values are dropped and counted
/// ([`HistogramSummary::dropped`]); values beyond the trackable range are
/// clamped and counted ([`HistogramSummary::saturated`]). Neither panics.
///
/// ```
/// use std::time::Duration;
///
/// let metrics = vitals::MetricsCollector::new();
/// let latency = metrics.histogram("request_duration_seconds", &[("route", "/")]);
/// latency.record(0.012);
/// latency.record_duration(Duration::from_millis(30));
/// {
///     let _timer = latency.start_timer(); // records when dropped
/// }
/// let snap = metrics.snapshot();
/// assert_eq!(snap.histograms[0].summary.window.count, 3);
/// ```
#[derive(Clone)]
pub struct Histogram {
    core: Storage<HistogramCore>,
}

pub(crate) struct HistogramCore {
    kind: WindowCore,
    dropped: AtomicU64,
    saturated: AtomicU64,
    buckets: Option<Box<BucketCounters>>,
}

// One per series, its variant fixed at creation: boxing the larger one
// would add a pointer chase to every `record`.
#[allow(clippy::large_enum_variant)]
enum WindowCore {
    Time(TimeWindow),
    Count(CountWindow),
}

impl Histogram {
    pub(crate) fn from_storage(core: Storage<HistogramCore>) -> Self {
        Histogram { core }
    }

    /// A handle attached to no collector (see [`Counter`]).
    pub(crate) fn detached() -> Self {
        Histogram {
            core: Storage::new(
                HistogramCore::new(Window::Count { values: 1 }, Duration::ZERO, None),
                false,
            ),
        }
    }

    /// Records one value.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let h = metrics.histogram("payload_bytes", &[]);
    /// h.record(1500.0);
    /// h.record(f64::NAN); // dropped and counted
    /// let summary = &metrics.snapshot().histograms[0].summary;
    /// assert_eq!((summary.window.count, summary.dropped), (1, 1));
    /// ```
    #[inline]
    pub fn record(&self, value: f64) {
        let core = &*self.core;
        let bits = value.to_bits();
        // Hot path: one range check on the bits covers NaN, negatives, zero,
        // and both ends of the range (non-negative floats order as integers).
        if bits.wrapping_sub(MIN_BITS) <= MAX_BITS - MIN_BITS {
            core.record_bits(bits);
            if let Some(buckets) = &core.buckets {
                buckets.record(value);
            }
        } else {
            core.record_unusual(value);
        }
    }

    /// Records a duration in seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("sleep_seconds", &[]).record_duration(Duration::from_millis(250));
    /// assert_eq!(metrics.snapshot().histograms[0].summary.window.sum, 0.25);
    /// ```
    #[inline]
    pub fn record_duration(&self, elapsed: Duration) {
        self.record(elapsed.as_secs_f64());
    }

    /// Starts a timer that records the elapsed seconds when stopped or
    /// dropped.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let h = metrics.histogram("step_seconds", &[]);
    /// let timer = h.start_timer();
    /// let elapsed = timer.stop();
    /// assert!(elapsed.as_secs() < 60);
    /// assert_eq!(metrics.snapshot().histograms[0].summary.window.count, 1);
    /// ```
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: Some(self.clone()),
            started: Instant::now(),
        }
    }

    /// Runs `work`, records how long it took, and returns its result.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let h = metrics.histogram("parse_seconds", &[]);
    /// let n: u32 = h.time(|| "42".parse().unwrap());
    /// assert_eq!(n, 42);
    /// ```
    pub fn time<T>(&self, work: impl FnOnce() -> T) -> T {
        let timer = self.start_timer();
        let out = work();
        timer.stop();
        out
    }

    /// Runs `work`, records how long it took, and increments `errors` when it
    /// returns `Err`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let h = metrics.histogram("query_seconds", &[]);
    /// let errors = metrics.counter("query_errors_total", &[]);
    /// let r: Result<u8, String> = h.time_result(&errors, || Err("timeout".into()));
    /// assert!(r.is_err());
    /// assert_eq!(errors.value(), 1);
    /// ```
    pub fn time_result<T, E>(
        &self,
        errors: &Counter,
        work: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let out = self.time(work);
        if out.is_err() {
            errors.inc();
        }
        out
    }

    /// True when both handles record into the same series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let a = metrics.histogram("h", &[]);
    /// assert!(a.same_series(&metrics.histogram("h", &[])));
    /// ```
    pub fn same_series(&self, other: &Histogram) -> bool {
        self.core.same(&other.core)
    }

    pub(crate) fn summary(&self, now: Duration) -> HistogramSummary {
        self.core.summary(now)
    }

    /// Bytes of heap this series uses now (counters, buckets, stripes).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.core.heap_bytes()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram").finish_non_exhaustive()
    }
}

/// Records the seconds since it was started into its histogram when
/// [`stop`](HistogramTimer::stop)ped or dropped, unless
/// [`discard`](HistogramTimer::discard)ed.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let h = metrics.histogram("cancelled_seconds", &[]);
/// h.start_timer().discard();
/// assert_eq!(metrics.snapshot().histograms[0].summary.window.count, 0);
/// ```
#[must_use = "a timer records when it is dropped; bind it to a variable"]
pub struct HistogramTimer {
    histogram: Option<Histogram>,
    started: Instant,
}

impl HistogramTimer {
    /// Records the elapsed time and returns it.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let elapsed = metrics.histogram("t_seconds", &[]).start_timer().stop();
    /// assert!(elapsed.as_secs_f64() >= 0.0);
    /// ```
    pub fn stop(mut self) -> Duration {
        let elapsed = self.started.elapsed();
        if let Some(h) = self.histogram.take() {
            h.record_duration(elapsed);
        }
        elapsed
    }

    /// Drops the timer without recording.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("t_seconds", &[]).start_timer().discard();
    /// ```
    pub fn discard(mut self) {
        self.histogram = None;
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        if let Some(h) = self.histogram.take() {
            h.record_duration(self.started.elapsed());
        }
    }
}

impl std::fmt::Debug for HistogramTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistogramTimer")
            .field("started", &self.started)
            .finish()
    }
}

impl HistogramCore {
    /// `window` and `buckets` must have been validated.
    pub(crate) fn new(window: Window, now: Duration, buckets: Option<&[f64]>) -> Self {
        let kind = match window {
            Window::Time { length, slots } => WindowCore::Time(TimeWindow::new(length, slots, now)),
            Window::Count { values } => WindowCore::Count(CountWindow::new(values, now)),
        };
        HistogramCore {
            kind,
            dropped: AtomicU64::new(0),
            saturated: AtomicU64::new(0),
            buckets: buckets.map(|b| Box::new(BucketCounters::new(b))),
        }
    }

    #[inline]
    fn record_bits(&self, bits: u64) {
        match &self.kind {
            WindowCore::Time(w) => w.record(bits),
            WindowCore::Count(w) => w.record(bits),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_unusual(&self, value: f64) {
        if value >= 0.0 {
            if let Some(buckets) = &self.buckets {
                buckets.record(value);
            }
        }
        if value == 0.0 {
            match &self.kind {
                WindowCore::Time(w) => w.record_zero(),
                WindowCore::Count(w) => w.record(0f64.to_bits()),
            }
        } else if value.is_nan() || value < 0.0 {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        } else if let WindowCore::Count(w) = &self.kind {
            // A count window stores values exactly; only +inf is clamped, so
            // that sums stay finite.
            if value.is_finite() {
                w.record(value.to_bits());
            } else {
                self.saturated.fetch_add(1, Ordering::Relaxed);
                w.record(f64::MAX.to_bits());
            }
        } else {
            self.saturated.fetch_add(1, Ordering::Relaxed);
            let clamped = if value < MIN_TRACKABLE {
                MIN_BITS
            } else {
                MAX_BITS
            };
            self.record_bits(clamped);
        }
    }

    /// Makes snapshots carry the lifetime bucket counts (time windows
    /// only: a count window keeps no buckets).
    pub(crate) fn with_lifetime_buckets(self) -> Self {
        if let WindowCore::Time(w) = &self.kind {
            w.reader.lock().life_buckets = Some(Box::default());
        }
        self
    }

    fn summary(&self, now: Duration) -> HistogramSummary {
        let (window, lifetime, lifetime_buckets) = match &self.kind {
            WindowCore::Time(w) => w.summary(now),
            WindowCore::Count(w) => {
                let (window, lifetime) = w.summary(now);
                (window, lifetime, None)
            }
        };
        HistogramSummary {
            window,
            lifetime,
            saturated: self.saturated.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lifetime_buckets,
            buckets: self.buckets.as_ref().map(|b| b.read()),
        }
    }

    fn heap_bytes(&self) -> usize {
        match &self.kind {
            WindowCore::Time(w) => w.heap_bytes(),
            WindowCore::Count(w) => w.ring.len() * 8,
        }
    }
}

// ---------------------------------------------------------------- time window

struct TimeWindow {
    length: Duration,
    slot_len: Duration,
    slots: usize,
    current: AtomicUsize,
    base: Stripe,
    stripes: OnceLock<Box<[Stripe]>>,
    reader: Mutex<TimeReader>,
}

/// One thread's (or, before contention, everyone's) counters for every slot.
struct Stripe {
    /// Per octave, `slots × SUBS` bucket counters, allocated on first use.
    octaves: Box<[OnceLock<Box<[AtomicU32]>>]>,
    totals: Box<[SlotTotals]>,
    /// Bucket counters that wrapped past `u32::MAX`: (slot, bucket), one
    /// entry per 2³² values. Needs 4 billion values in one bucket in one slot.
    wraps: Mutex<Vec<(usize, usize)>>,
}

struct SlotTotals {
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    zeros: AtomicU64,
}

impl SlotTotals {
    fn new() -> Self {
        SlotTotals {
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(0f64.to_bits()),
            zeros: AtomicU64::new(0),
        }
    }

    #[inline]
    fn add_sum(&self, value: f64) -> bool {
        let current = self.sum.load(Ordering::Relaxed);
        let next = (f64::from_bits(current) + value).to_bits();
        self.sum
            .compare_exchange(current, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn add_sum_contended(&self, value: f64) {
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + value).to_bits())
            });
    }

    #[inline]
    fn update_extremes(&self, bits: u64) {
        // Loads first: once min and max settle, these lines stay shared.
        if bits < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(bits, Ordering::Relaxed);
        }
        if bits > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(bits, Ordering::Relaxed);
        }
    }
}

impl Stripe {
    fn new(slots: usize) -> Self {
        Stripe {
            octaves: (0..OCTAVES).map(|_| OnceLock::new()).collect(),
            totals: (0..slots).map(|_| SlotTotals::new()).collect(),
            wraps: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    fn octave(&self, octave: usize, slots: usize) -> &[AtomicU32] {
        self.octaves[octave].get_or_init(|| (0..slots * SUBS).map(|_| AtomicU32::new(0)).collect())
    }

    fn heap_bytes(&self) -> usize {
        let allocated = self.octaves.iter().filter_map(OnceLock::get);
        self.octaves.len() * std::mem::size_of::<OnceLock<Box<[AtomicU32]>>>()
            + self.totals.len() * std::mem::size_of::<SlotTotals>()
            + allocated.map(|o| o.len() * 4).sum::<usize>()
    }
}

/// Reader-side state of a time window: when each slot was current.
///
/// Writers never read the clock, so a slot's time span is known only from
/// the reads around it: slot `s` holds the values recorded between
/// `starts[s]` (the read that opened it) and `ends[s]` (the read that
/// closed it). A read opens a new slot once the current one is at least
/// `length / slots` old, reusing the oldest slot, and drops a closed slot
/// early once all of its span is older than `length`. With reads at least
/// once per slot length (a reporter, a scrape) the window covers the last
/// (slots − 1) / slots of `length` to all of it: 50–60 s by default. With
/// rarer reads it covers more, and every snapshot reports the span it
/// really covered.
struct TimeReader {
    starts: Box<[Duration]>,
    ends: Box<[Duration]>,
    live: Box<[bool]>,
    life_count: u64,
    life_sum: f64,
    life_min: u64,
    life_max: u64,
    /// The slot that was current before the last rotation. Writers that
    /// read the slot index just before a rotation still add to it, so it is
    /// read afresh at every snapshot, like the current one.
    previous: Option<usize>,
    /// The other live slots, merged when first needed after a rotation:
    /// with it a snapshot reads two slots instead of all of them. Only a
    /// write delayed across two rotations (a thread descheduled for a whole
    /// slot length between reading the slot index and adding) could land in
    /// a cached slot; it then shows from the next rotation on, and is never
    /// lost: retiring a slot takes its counters with atomic swaps.
    closed: Option<Merged>,
    /// Counts of the retired slots, per octave, when snapshots carry
    /// lifetime buckets.
    life_buckets: Option<Box<LifeBuckets>>,
}

/// Bucket counts of every retired slot, kept only by collectors built with
/// `lifetime_buckets(true)`: 520 bytes per octave the series has used.
#[derive(Default)]
struct LifeBuckets {
    /// (octave, counts of its sub-buckets), ascending by octave.
    octaves: Vec<(usize, [u64; SUBS])>,
    zeros: u64,
}

impl LifeBuckets {
    fn add(&mut self, gone: &Merged) {
        self.zeros += gone.zeros;
        for (octave, counts) in &gone.octaves {
            let at = match self.octaves.binary_search_by_key(octave, |(o, _)| *o) {
                Ok(at) => at,
                Err(at) => {
                    self.octaves.insert(at, (*octave, [0; SUBS]));
                    at
                }
            };
            for (total, c) in self.octaves[at].1.iter_mut().zip(counts) {
                *total += c;
            }
        }
    }

    /// These counts plus the live slots', as sparse buckets.
    fn with_live(&self, live: &Merged) -> SparseBuckets {
        let mut all = SparseBuckets {
            zeros: self.zeros + live.zeros,
            counts: Vec::new(),
        };
        let (mut a, mut b) = (
            self.octaves.iter().peekable(),
            live.octaves.iter().peekable(),
        );
        let empty = [0u64; SUBS];
        loop {
            let (octave, x, y) = match (a.peek(), b.peek()) {
                (Some(p), Some(q)) if p.0 == q.0 => (p.0, &p.1, &q.1),
                (Some(p), Some(q)) if p.0 < q.0 => (p.0, &p.1, &empty),
                (Some(p), None) => (p.0, &p.1, &empty),
                (_, Some(q)) => (q.0, &empty, &q.1),
                (None, None) => break,
            };
            if a.peek().is_some_and(|p| p.0 == octave) {
                a.next();
            }
            if b.peek().is_some_and(|q| q.0 == octave) {
                b.next();
            }
            for (sub, (c1, c2)) in x.iter().zip(y).enumerate() {
                let c = c1 + c2;
                if c > 0 {
                    if let Ok(bucket) = u16::try_from(octave * SUBS + sub) {
                        all.counts.push((bucket, c));
                    }
                }
            }
        }
        all
    }

    fn heap_bytes(&self) -> usize {
        self.octaves.capacity() * std::mem::size_of::<(usize, [u64; SUBS])>()
    }
}

thread_local! {
    /// Closed slots plus the current one, rebuilt at every snapshot of a
    /// time window: one buffer per snapshotting thread, reused, rather than
    /// an allocation per series per snapshot or a copy kept per series.
    static SCRATCH: std::cell::RefCell<Merged> = const { std::cell::RefCell::new(Merged::empty()) };
}

/// Counts and totals of some slots, merged across stripes.
#[derive(Clone)]
struct Merged {
    /// (octave, counts of its sub-buckets), ascending by octave.
    octaves: Vec<(usize, [u64; SUBS])>,
    zeros: u64,
    count: u64,
    sum: f64,
    min: u64,
    max: u64,
}

impl TimeWindow {
    fn new(length: Duration, slots: u32, now: Duration) -> Self {
        let slots = slots as usize;
        TimeWindow {
            length,
            slot_len: length / slots as u32,
            slots,
            current: AtomicUsize::new(0),
            base: Stripe::new(slots),
            stripes: OnceLock::new(),
            reader: Mutex::new(TimeReader {
                starts: vec![now; slots].into(),
                ends: vec![now; slots].into(),
                live: (0..slots).map(|s| s == 0).collect(),
                life_count: 0,
                life_sum: 0.0,
                life_min: f64::INFINITY.to_bits(),
                life_max: 0f64.to_bits(),
                previous: None,
                closed: None,
                life_buckets: None,
            }),
        }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        match self.stripes.get() {
            Some(stripes) => &stripes[thread_index() & (stripes.len() - 1)],
            None => &self.base,
        }
    }

    #[inline]
    fn record(&self, bits: u64) {
        let octave = ((bits >> 52) - MIN_BITS.wrapping_shr(52)) as usize;
        let sub = ((bits >> (52 - SUB_BITS)) as usize) & (SUBS - 1);
        let slot = self.current.load(Ordering::Relaxed);
        let stripe = self.stripe();
        let index = slot * SUBS + sub;
        let before = stripe.octave(octave, self.slots)[index].fetch_add(1, Ordering::Relaxed);
        if before == u32::MAX {
            stripe.wraps.lock().push((slot, octave * SUBS + sub));
        }
        let totals = &stripe.totals[slot];
        let value = f64::from_bits(bits);
        if !totals.add_sum(value) {
            self.contended(stripe, totals, value);
        }
        totals.update_extremes(bits);
    }

    fn record_zero(&self) {
        let slot = self.current.load(Ordering::Relaxed);
        let totals = &self.stripe().totals[slot];
        totals.zeros.fetch_add(1, Ordering::Relaxed);
        totals.min.fetch_min(0, Ordering::Relaxed);
    }

    /// Another thread wrote the same sum between our load and CAS.
    #[cold]
    #[inline(never)]
    fn contended(&self, stripe: &Stripe, totals: &SlotTotals, value: f64) {
        totals.add_sum_contended(value);
        if std::ptr::eq(stripe, &self.base) {
            self.stripes.get_or_init(|| {
                (0..stripe_count(1, 16))
                    .map(|_| Stripe::new(self.slots))
                    .collect()
            });
        } else {
            move_thread_index();
        }
    }

    fn all_stripes(&self) -> impl Iterator<Item = &Stripe> {
        std::iter::once(&self.base).chain(self.stripes.get().into_iter().flat_map(|s| s.iter()))
    }

    /// Opens a new slot if the current one has run for a slot's length, and
    /// drops the closed slots whose whole span has left the window, folding
    /// what they held into the lifetime totals.
    fn rotate(&self, reader: &mut TimeReader, now: Duration) {
        let current = self.current.load(Ordering::Relaxed);
        if now.saturating_sub(reader.starts[current]) >= self.slot_len {
            reader.ends[current] = now;
            let next = (current + 1) % self.slots;
            if reader.live[next] {
                self.retire(reader, next);
            }
            reader.starts[next] = now;
            reader.live[next] = true;
            // The slot is empty before writers are sent to it.
            self.current.store(next, Ordering::Release);
            reader.previous = Some(current);
            reader.closed = None;
        }
        let current = self.current.load(Ordering::Relaxed);
        let horizon = now.saturating_sub(self.length);
        for slot in 0..self.slots {
            if slot != current
                && reader.live[slot]
                && reader.ends[slot] <= horizon
                && now >= self.length
            {
                self.retire(reader, slot);
                reader.closed = None;
            }
        }
    }

    /// Empties `slot` into the lifetime totals (atomic swaps: a racing write
    /// is either taken here or stays for the slot's next use).
    fn retire(&self, reader: &mut TimeReader, slot: usize) {
        let gone = self.take_slots(&[slot], true);
        reader.life_count += gone.count;
        reader.life_sum += gone.sum;
        reader.life_min = reader.life_min.min(gone.min);
        reader.life_max = reader.life_max.max(gone.max);
        if let Some(life) = &mut reader.life_buckets {
            life.add(&gone);
        }
        reader.live[slot] = false;
        if reader.previous == Some(slot) {
            reader.previous = None;
        }
    }

    /// Reads (and, with `clear`, empties by atomic swaps) the given slots of
    /// every stripe.
    fn take_slots(&self, slots: &[usize], clear: bool) -> Merged {
        let mut merged = Merged::empty();
        self.add_slots(&mut merged, slots, clear);
        merged
    }

    /// Adds the given slots of every stripe into `merged`.
    fn add_slots(&self, merged: &mut Merged, slots: &[usize], clear: bool) {
        let read64 = |a: &AtomicU64, empty: u64| {
            if clear {
                a.swap(empty, Ordering::Relaxed)
            } else {
                a.load(Ordering::Relaxed)
            }
        };
        let mut position = [usize::MAX; OCTAVES];
        for (i, (octave, _)) in merged.octaves.iter().enumerate() {
            position[*octave] = i;
        }
        let mut added = 0u64;
        for stripe in self.all_stripes() {
            for (octave, cell) in stripe.octaves.iter().enumerate() {
                let Some(counts) = cell.get() else { continue };
                if position[octave] == usize::MAX {
                    position[octave] = merged.octaves.len();
                    merged.octaves.push((octave, [0; SUBS]));
                }
                let into = &mut merged.octaves[position[octave]].1;
                for &slot in slots {
                    let from = &counts[slot * SUBS..(slot + 1) * SUBS];
                    // Atomic loads one by one, then plain (vectorised) adds.
                    let mut read = [0u32; SUBS];
                    if clear {
                        for (r, c) in read.iter_mut().zip(from) {
                            *r = c.swap(0, Ordering::Relaxed);
                        }
                    } else {
                        for (r, c) in read.iter_mut().zip(from) {
                            *r = c.load(Ordering::Relaxed);
                        }
                    }
                    for (total, &c) in into.iter_mut().zip(read.iter()) {
                        *total += u64::from(c);
                    }
                    added += read.iter().map(|&c| u64::from(c)).sum::<u64>();
                }
            }
            for &slot in slots {
                let t = &stripe.totals[slot];
                merged.sum += f64::from_bits(read64(&t.sum, 0f64.to_bits()));
                let zeros = read64(&t.zeros, 0);
                merged.zeros += zeros;
                added += zeros;
                merged.min = merged.min.min(read64(&t.min, f64::INFINITY.to_bits()));
                merged.max = merged.max.max(read64(&t.max, 0));
            }
            let mut wraps = stripe.wraps.lock();
            wraps.retain(|&(slot, bucket)| {
                if !slots.contains(&slot) {
                    return true;
                }
                let (octave, sub) = (bucket / SUBS, bucket % SUBS);
                if let Some(&p) = position.get(octave) {
                    if p != usize::MAX {
                        merged.octaves[p].1[sub] += 1 << 32;
                        added += 1 << 32;
                    }
                }
                !clear
            });
        }
        merged.octaves.sort_unstable_by_key(|(o, _)| *o);
        merged.count += added;
    }

    fn summary(&self, now: Duration) -> (WindowStats, LifetimeStats, Option<SparseBuckets>) {
        let mut guard = self.reader.lock();
        let reader = &mut *guard;
        self.rotate(reader, now);
        let current = self.current.load(Ordering::Relaxed);
        let oldest = (0..self.slots)
            .filter(|&s| reader.live[s])
            .map(|s| reader.starts[s])
            .min()
            .unwrap_or(now);
        // The current slot and the one current before the last rotation
        // (late writers may still add to it) are read afresh; the others
        // come from the cache.
        let previous = reader.previous.filter(|&p| p != current);
        let fresh_slots = [current, previous.unwrap_or(current)];
        let fresh = &fresh_slots[..if previous.is_some() { 2 } else { 1 }];
        if reader.closed.is_none() {
            let others: Vec<usize> = (0..self.slots)
                .filter(|&s| reader.live[s] && !fresh.contains(&s))
                .collect();
            reader.closed = Some(self.take_slots(&others, false));
        }
        let reader: &TimeReader = reader;
        let nothing_closed = Merged::empty();
        let closed = reader.closed.as_ref().unwrap_or(&nothing_closed);
        let mut own = None;
        SCRATCH.with(|cell| {
            let mut shared = cell.try_borrow_mut();
            let m = match &mut shared {
                Ok(m) => &mut **m,
                Err(_) => own.get_or_insert_with(Merged::empty),
            };
            m.copy_from(closed);
            self.add_slots(m, fresh, false);
            self.stats(reader, m, now, oldest)
        })
    }

    /// Window and lifetime statistics from the merged window `m`.
    fn stats(
        &self,
        reader: &TimeReader,
        m: &Merged,
        now: Duration,
        oldest: Duration,
    ) -> (WindowStats, LifetimeStats, Option<SparseBuckets>) {
        let empty = m.count == 0;
        let min = (!empty).then(|| f64::from_bits(m.min));
        let max = (!empty).then(|| f64::from_bits(m.max));
        let mean = (!empty).then(|| m.sum / m.count as f64);
        let (quantiles, stddev) = match (min, max, mean) {
            (Some(lo), Some(hi), Some(mean)) => {
                let (q, sd) = bucket_stats(m, lo, hi, mean);
                (Some(q), Some(sd))
            }
            _ => (None, None),
        };
        let window = WindowStats {
            window: Window::Time {
                length: self.length,
                slots: self.slots as u32,
            },
            span_seconds: now.saturating_sub(oldest).as_secs_f64(),
            count: m.count,
            sum: m.sum,
            min,
            max,
            mean,
            stddev,
            quantiles,
        };
        let life_count = reader.life_count + m.count;
        let life_min = reader.life_min.min(m.min);
        let life_max = reader.life_max.max(m.max);
        let lifetime = LifetimeStats {
            count: life_count,
            sum: reader.life_sum + m.sum,
            min: (life_count > 0).then(|| f64::from_bits(life_min)),
            max: (life_count > 0).then(|| f64::from_bits(life_max)),
        };
        let buckets = reader.life_buckets.as_ref().map(|life| life.with_live(m));
        (window, lifetime, buckets)
    }

    fn heap_bytes(&self) -> usize {
        let reader = self.reader.lock();
        let cache = reader.closed.as_ref().map_or(0, |m| {
            m.octaves.capacity() * std::mem::size_of::<(usize, [u64; SUBS])>()
        }) + reader.life_buckets.as_ref().map_or(0, |l| l.heap_bytes());
        drop(reader);
        cache
            + self.all_stripes().map(Stripe::heap_bytes).sum::<usize>()
            + self
                .stripes
                .get()
                .map_or(0, |s| s.len() * std::mem::size_of::<Stripe>())
    }
}

impl Merged {
    fn copy_from(&mut self, other: &Merged) {
        self.octaves.clear();
        self.octaves.extend_from_slice(&other.octaves);
        self.zeros = other.zeros;
        self.count = other.count;
        self.sum = other.sum;
        self.min = other.min;
        self.max = other.max;
    }

    const fn empty() -> Self {
        Merged {
            octaves: Vec::new(),
            zeros: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY.to_bits(),
            max: 0,
        }
    }
}

/// The midpoint of a bucket: within half a bucket (≤ 1/128 relative) of any
/// value in it.
fn bucket_midpoint(octave: usize, sub: usize) -> f64 {
    let lower = MIN_BITS + ((octave as u64) << 52) + ((sub as u64) << (52 - SUB_BITS));
    let upper = lower + (1 << (52 - SUB_BITS));
    (f64::from_bits(lower) + f64::from_bits(upper)) / 2.0
}

/// The 1-based nearest rank of quantile `q` among `n` values.
fn nearest_rank(q: f64, n: u64) -> u64 {
    ((q * n as f64).ceil() as u64).clamp(1, n)
}

/// Quantiles and standard deviation of a non-empty window in one pass over
/// the buckets.
/// Σc, Σc·k and Σc·k² over the 64 sub-buckets of an octave. Counts almost
/// always fit 32 bits, and then the products are 32 × 32 → 64-bit
/// multiplies, which x86-64's baseline vector unit has (64 × 64 it has not,
/// and emulates with three); otherwise the plain 64-bit loop.
fn moments(counts: &[u64; SUBS]) -> (u64, u64, u64) {
    const K: [u32; SUBS] = {
        let mut k = [0u32; SUBS];
        let mut i = 0;
        while i < SUBS {
            k[i] = i as u32;
            i += 1;
        }
        k
    };
    const K2: [u32; SUBS] = {
        let mut k = [0u32; SUBS];
        let mut i = 0;
        while i < SUBS {
            k[i] = (i * i) as u32;
            i += 1;
        }
        k
    };
    let wide = counts.iter().fold(0u64, |acc, &c| acc | c) >> 32 != 0;
    let (mut c0, mut c1, mut c2) = (0u64, 0u64, 0u64);
    if wide {
        for (k, &c) in (0u64..).zip(counts.iter()) {
            c0 += c;
            c1 += c * k;
            c2 += c * k * k;
        }
    } else {
        for i in 0..SUBS {
            let c = counts[i] as u32;
            c0 += u64::from(c);
            c1 += u64::from(c) * u64::from(K[i]);
            c2 += u64::from(c) * u64::from(K2[i]);
        }
    }
    (c0, c1, c2)
}

fn bucket_stats(m: &Merged, lo: f64, hi: f64, mean: f64) -> (Quantiles, f64) {
    let ranks = Quantiles::LEVELS.map(|q| nearest_rank(q, m.count));
    let mut out = [hi; 5];
    let mut next = 0;
    let mut seen = m.zeros;
    while next < 5 && ranks[next] <= seen {
        out[next] = 0.0;
        next += 1;
    }
    let mut squares = m.zeros as f64 * mean * mean;
    for (octave, counts) in &m.octaves {
        // With d(k) = low + step·k the distance of sub-bucket k's midpoint
        // from the mean, Σ c·d² = low²·Σc + 2·low·step·Σc·k + step²·Σc·k².
        // The three sums are integer (vectorised, no float dependency
        // chain); they cannot overflow: a bucket holds < 2⁴² values
        // (u32 × 64 slots × 16 stripes) and k² < 2¹².
        let (c0, c1, c2) = moments(counts);
        let low = bucket_midpoint(*octave, 0) - mean;
        let step = bucket_midpoint(*octave, 1) - bucket_midpoint(*octave, 0);
        squares += low * low * c0 as f64 + 2.0 * low * step * c1 as f64 + step * step * c2 as f64;
        // Walk the buckets only in an octave that holds the next rank.
        if next < 5 && seen + c0 >= ranks[next] {
            let mut at = seen;
            for (sub, &c) in counts.iter().enumerate() {
                at += c;
                while next < 5 && ranks[next] <= at {
                    out[next] = bucket_midpoint(*octave, sub).clamp(lo, hi);
                    next += 1;
                }
            }
        }
        seen += c0;
    }
    let stddev = if m.count < 2 {
        0.0
    } else {
        (squares / m.count as f64).sqrt()
    };
    (Quantiles::from_values(out), stddev)
}

// --------------------------------------------------------------- count window

struct CountWindow {
    ring: Box<[AtomicU64]>,
    next: AtomicU64,
    life_sum: AtomicU64,
    life_min: AtomicU64,
    life_max: AtomicU64,
    reader: Mutex<CountReader>,
}

struct CountReader {
    created: Duration,
    /// (time, values recorded so far) at recent snapshots, oldest first.
    marks: VecDeque<(Duration, u64)>,
}

const COUNT_MARKS: usize = 64;

impl CountWindow {
    fn new(values: u32, now: Duration) -> Self {
        CountWindow {
            ring: (0..values).map(|_| AtomicU64::new(EMPTY)).collect(),
            next: AtomicU64::new(0),
            life_sum: AtomicU64::new(0f64.to_bits()),
            life_min: AtomicU64::new(f64::INFINITY.to_bits()),
            life_max: AtomicU64::new(0),
            reader: Mutex::new(CountReader {
                created: now,
                marks: VecDeque::new(),
            }),
        }
    }

    #[inline]
    fn record(&self, bits: u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.ring[(i % self.ring.len() as u64) as usize].store(bits, Ordering::Relaxed);
        let _ = self
            .life_sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + f64::from_bits(bits)).to_bits())
            });
        if bits < self.life_min.load(Ordering::Relaxed) {
            self.life_min.fetch_min(bits, Ordering::Relaxed);
        }
        if bits > self.life_max.load(Ordering::Relaxed) {
            self.life_max.fetch_max(bits, Ordering::Relaxed);
        }
    }

    fn summary(&self, now: Duration) -> (WindowStats, LifetimeStats) {
        let mut reader = self.reader.lock();
        let total = self.next.load(Ordering::Relaxed);
        let life_sum = f64::from_bits(self.life_sum.load(Ordering::Relaxed));
        let (life_min, life_max) = (
            self.life_min.load(Ordering::Relaxed),
            self.life_max.load(Ordering::Relaxed),
        );
        // A writer that has claimed a cell but not yet stored its value
        // leaves EMPTY (or the value it replaces) for this one read.
        let mut values: Vec<f64> = self
            .ring
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&b| b != EMPTY)
            .map(f64::from_bits)
            .collect();
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len() as u64;
        let oldest_index = total.saturating_sub(self.ring.len() as u64);
        let start = reader
            .marks
            .iter()
            .rev()
            .find(|(_, recorded)| *recorded <= oldest_index)
            .map_or(reader.created, |(t, _)| *t);
        if reader.marks.back().is_none_or(|(_, r)| *r != total) {
            if reader.marks.len() == COUNT_MARKS {
                reader.marks.pop_front();
            }
            reader.marks.push_back((now, total));
        }
        let sum: f64 = values.iter().sum();
        let mean = (n > 0).then(|| sum / n as f64);
        let stddev = mean.map(|mean| {
            let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (squares / n as f64).sqrt()
        });
        let quantiles = (n > 0).then(|| {
            Quantiles::from_values(
                Quantiles::LEVELS.map(|q| values[(nearest_rank(q, n) - 1) as usize]),
            )
        });
        let window = WindowStats {
            window: Window::Count {
                values: self.ring.len() as u32,
            },
            span_seconds: now.saturating_sub(start).as_secs_f64(),
            count: n,
            sum,
            min: values.first().copied(),
            max: values.last().copied(),
            mean,
            stddev,
            quantiles,
        };
        let lifetime = LifetimeStats {
            count: total,
            sum: life_sum,
            min: (total > 0).then(|| f64::from_bits(life_min)),
            max: (total > 0).then(|| f64::from_bits(life_max)),
        };
        (window, lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time_histogram() -> Histogram {
        Histogram::from_storage(Storage::new(
            HistogramCore::new(Window::default(), Duration::ZERO, None),
            false,
        ))
    }

    #[test]
    fn bucket_midpoints_are_within_bound_of_their_values() {
        for v in [
            MIN_TRACKABLE,
            1e-6,
            0.5,
            1.0,
            1.015625,
            3.0,
            1e6,
            123456.789,
            MAX_TRACKABLE,
        ] {
            let bits = f64::to_bits(v);
            let octave = ((bits >> 52) - (MIN_BITS >> 52)) as usize;
            let sub = ((bits >> (52 - SUB_BITS)) as usize) & (SUBS - 1);
            let mid = bucket_midpoint(octave, sub);
            assert!(((mid - v) / v).abs() <= 1.0 / 128.0 + 1e-12, "{v} -> {mid}");
        }
    }

    #[test]
    fn edge_values_are_clamped_counted_or_dropped() {
        let h = time_histogram();
        h.record(0.0);
        h.record(-0.0);
        h.record(1e-300);
        h.record(f64::INFINITY);
        h.record(1e300);
        h.record(-1.0);
        h.record(f64::NAN);
        h.record(f64::NEG_INFINITY);
        let s = h.summary(Duration::ZERO);
        assert_eq!(s.window.count, 5);
        assert_eq!(s.saturated, 3);
        assert_eq!(s.dropped, 3);
        assert_eq!(s.window.min, Some(0.0));
        assert_eq!(s.window.max, Some(MAX_TRACKABLE));
        let q = s.window.quantiles.unwrap();
        assert!((q.p50 - MIN_TRACKABLE) / MIN_TRACKABLE <= 1.0 / 128.0);
        assert!((MAX_TRACKABLE - q.p999) / MAX_TRACKABLE <= 1.0 / 128.0);
    }

    #[test]
    fn window_config_bounds_are_checked() {
        assert!(Window::Time {
            length: Duration::from_secs(1),
            slots: 0
        }
        .validate()
        .is_err());
        assert!(Window::Time {
            length: Duration::from_secs(1),
            slots: 65
        }
        .validate()
        .is_err());
        assert!(Window::Time {
            length: Duration::from_micros(10),
            slots: 2
        }
        .validate()
        .is_err());
        assert!(Window::Count { values: 1_000_001 }.validate().is_err());
        assert!(Window::Count { values: 1 }.validate().is_ok());
    }

    #[test]
    fn wrapped_bucket_counters_are_not_lost() {
        let h = time_histogram();
        h.record(2.0);
        let WindowCore::Time(w) = &h.core.kind else {
            unreachable!()
        };
        let octave = ((2f64.to_bits() >> 52) - (MIN_BITS >> 52)) as usize;
        // Force the counter to the brink, as 2^32 - 1 records would.
        w.base.octave(octave, w.slots)[0].store(u32::MAX, Ordering::Relaxed);
        h.record(2.0);
        let s = h.summary(Duration::ZERO);
        assert_eq!(s.window.count, u64::from(u32::MAX) + 1);
    }

    #[test]
    fn a_late_write_to_the_previous_slot_shows_in_the_next_snapshot() {
        let h = time_histogram();
        h.record(2.0);
        let WindowCore::Time(w) = &h.core.kind else {
            unreachable!()
        };
        let before = w.current.load(Ordering::Relaxed);
        // A read 10 s later opens a new slot and caches the closed ones.
        assert_eq!(h.summary(Duration::from_secs(10)).window.count, 1);
        assert_ne!(w.current.load(Ordering::Relaxed), before);
        // A writer that read the slot index before that rotation adds now.
        let octave = ((2f64.to_bits() >> 52) - (MIN_BITS >> 52)) as usize;
        w.base.octave(octave, w.slots)[before * SUBS].fetch_add(1, Ordering::Relaxed);
        w.base.totals[before].add_sum_contended(2.0);
        let s = h.summary(Duration::from_secs(11));
        assert_eq!((s.window.count, s.window.sum), (2, 4.0));
        assert_eq!(s.lifetime.count, 2);
    }

    #[test]
    fn memory_stays_small_for_four_decades() {
        let h = time_histogram();
        let mut v = 0.001;
        while v < 10.0 {
            h.record(v);
            v *= 1.01;
        }
        let bytes = h.heap_bytes();
        assert!(bytes <= 32 * 1024, "{bytes} bytes");
    }

    #[test]
    fn bucket_bounds_are_validated() {
        assert!(validate_bucket_bounds("h", &[]).is_err());
        assert!(validate_bucket_bounds("h", &[1.0, f64::INFINITY]).is_err());
        assert!(validate_bucket_bounds("h", &[f64::NAN]).is_err());
        assert!(validate_bucket_bounds("h", &[1.0, 1.0]).is_err());
        assert!(validate_bucket_bounds("h", &[2.0, 1.0]).is_err());
        assert!(validate_bucket_bounds("h", &[-1.0, 1.0]).is_err());
        assert!(validate_bucket_bounds("h", &vec![1.0; MAX_BUCKETS + 1]).is_err());
        let many: Vec<f64> = (0..MAX_BUCKETS).map(|i| i as f64).collect();
        assert!(validate_bucket_bounds("h", &many).is_ok());
    }

    #[test]
    fn buckets_count_edges_inclusively_and_skip_dropped_values() {
        let h = Histogram::from_storage(Storage::new(
            HistogramCore::new(Window::default(), Duration::ZERO, Some(&[0.0, 1.0, 2.0])),
            false,
        ));
        for v in [
            0.0,
            1.0,
            1.5,
            2.0,
            3.0,
            f64::INFINITY,
            f64::NAN,
            -1.0,
            1e-300,
        ] {
            h.record(v);
        }
        let b = h.summary(Duration::ZERO).buckets.unwrap();
        assert_eq!(b.cumulative, [1, 3, 5]);
        assert_eq!(b.count, 7);
    }
}
