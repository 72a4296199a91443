//! Histograms over a rolling window: by time (the last 60 s in 6 slots by
//! default) or by count (the last N values, exact quantiles).
//!
//! # Layout of a time window
//!
//! Values are counted in base-2 exponential buckets at scale 6 (bucket `i`
//! holds (2^((i−1)/64), 2^(i/64)], see [`layout`](crate::layout)), whose
//! index comes from the bits of the `f64` (exponent, a table on the top
//! mantissa bits, one compare; no logarithm). A bucket's geometric midpoint
//! is within 0.543% of any value in it: quantiles are within 0.55% of the
//! exact nearest-rank quantile. The buckets cover 2⁻³⁰ (about 1 ns when
//! recording seconds) to 2⁵⁰ (about 10¹⁵).
//!
//! The counters are stored in "octaves" of 64 consecutive buckets (one
//! power of two's worth); each octave's counters (64 × `u64` per writing
//! thread) are allocated the first time a value lands in it, so a series
//! only pays for the range it uses. Values over four decades touch 14
//! octaves: about 28 KiB with 6 slots all in use, the reader's record of
//! what each slot added included (kept in 16-bit counts when they fit).
//!
//! `record` never reads the clock, never locks and uses no atomic
//! read-modify-write. Each thread that writes holds a writer slot (a small
//! number, given back when the thread exits) and owns that stripe of every
//! histogram it writes: cumulative bucket counts, and the sum, min and max,
//! both since the start and per time slot (tagged with the slot's clock
//! word, and reset by the writer itself when the word moves on). Only the
//! owner writes a stripe, so it adds with plain loads and stores. Threads
//! that find every writer slot taken share one stripe with atomic adds.
//!
//! Readers (snapshots) never write a stripe. They turn the slots when the
//! clock says a slot has ended, noting what the closing slot added (the
//! cumulative counts less those at the window's start and the other closed
//! slots); the window's counts are the cumulative counts now less those
//! when its oldest slot opened, and the lifetime's are the cumulative
//! counts. A write racing with a turn is counted either way, never lost.
//! When no stripe took a value since the last read and no slot turned, a
//! snapshot reuses the last statistics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::counter::Counter;
use super::exemplar::{exemplar_labels, Exemplar, HistogramExemplars, Place};
use super::sparse::SparseBuckets;
use super::Storage;
use crate::error::Error;
use crate::key::Labels;

/// Sub-buckets per storage octave: a run of 64 consecutive buckets of the
/// layout (one power of two's worth, from [`MIN_INDEX`](super::layout::MIN_INDEX) on).
const SUBS: usize = 1 << 6;
/// Storage octaves: the positions of the layout's range, 64 at a time.
const OCTAVES: usize = super::layout::POSITIONS.div_ceil(SUBS);
use super::layout::{MAX_BITS, MIN_BITS};
pub use super::layout::{MAX_TRACKABLE, MIN_TRACKABLE};
/// Marks an unwritten cell of a count window (NaN is never recorded).
const EMPTY: u64 = u64::MAX;

mod bucket_math;
mod buckets;
mod count;
mod memo;
mod reading;
mod summary;
mod time;
mod time_read;

#[cfg(test)]
use bucket_math::bucket_midpoint;
pub(crate) use buckets::validate_bucket_bounds;
use buckets::BucketCounters;
pub use buckets::{BucketCounts, MAX_BUCKETS};
use count::CountWindow;
pub(crate) use memo::LifetimeMemo;
pub use summary::{HistogramSummary, LifetimeStats, Quantiles, Window, WindowStats};
use time::TimeWindow;

/// A distribution of values over a rolling window, such as request latency.
///
/// **How it works.** Values are counted in base-2 exponential buckets at
/// scale 6, the OpenTelemetry and Prometheus native-histogram layout (see
/// [`layout`](crate::layout)), so summaries of several processes merge
/// exactly ([`HistogramSummary::merge`]) and a bucket's midpoint is within
/// 0.55% of every value in it; the bucket comes from the bits of the `f64`,
/// without a logarithm. Counters are allocated 64 buckets (one power of
/// two) at a time on first use (values over four decades: about 28 KiB per
/// series with the default window). `record` never reads the clock, never
/// locks and uses no atomic read-modify-write: each writing thread adds to
/// its own stripe of cumulative counters with plain loads and stores, and
/// snapshots take the window as differences of those counts.
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
#[must_use = "a handle does nothing until it is used; to register a series without updating it, bind it: `let _ = ...`"]
pub struct Histogram {
    core: Storage<HistogramCore>,
}

pub(crate) struct HistogramCore {
    kind: WindowCore,
    dropped: AtomicU64,
    saturated: AtomicU64,
    buckets: Option<Box<BucketCounters>>,
    /// Allocated by the first exemplar; `record` never looks at it.
    exemplars: OnceLock<Box<HistogramExemplars>>,
}

// One per series, its variant fixed at creation: boxing the larger one
// would add a pointer chase to every `record`.
#[allow(clippy::large_enum_variant)]
enum WindowCore {
    Time(TimeWindow),
    Count(CountWindow),
}

impl Histogram {
    /// True when a handle other than this one may exist.
    pub(crate) fn shared(&self) -> bool {
        self.core.shared()
    }

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
            // The common series (a time window, no configured buckets)
            // inline; the others one call away, so that their code does
            // not crowd this path's registers.
            match (&core.kind, &core.buckets) {
                (WindowCore::Time(w), None) => w.record(bits),
                _ => core.record_in_range(value),
            }
        } else {
            core.record_unusual(value);
        }
    }

    /// Records one value with an exemplar: labels that point at an example
    /// of it, such as the trace that took this long.
    ///
    /// The value is recorded as by [`record`](Histogram::record) whatever
    /// happens to the exemplar. The histogram keeps the latest exemplar of
    /// each of its buckets that got one recently
    /// ([`MAX_NATIVE_EXEMPLARS`](crate::snapshot::MAX_NATIVE_EXEMPLARS)),
    /// and of each configured bucket; the snapshot carries them
    /// ([`HistogramSample::exemplars`](crate::snapshot::HistogramSample::exemplars)),
    /// OpenMetrics text writes them on `_bucket` lines and the protobuf
    /// format on buckets and native histograms. NaN and negative values,
    /// which are dropped, keep no exemplar. Storage is allocated on the
    /// first exemplar: [`record`](Histogram::record) pays nothing for it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidExemplar`] when a label name is invalid or repeated,
    /// or names and values have more than
    /// [`MAX_EXEMPLAR_LABEL_CHARS`](crate::snapshot::MAX_EXEMPLAR_LABEL_CHARS)
    /// characters together (the OpenMetrics limit); the value is recorded.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let latency = metrics.histogram("request_duration_seconds", &[]);
    /// latency.record_with_exemplar(0.250, &[("trace_id", "4bf92f3577b34da6")]).unwrap();
    /// assert!(latency.record_with_exemplar(0.1, &[("bad-name", "x")]).is_err());
    /// let snap = metrics.snapshot();
    /// let sample = &snap.histograms[0];
    /// assert_eq!(sample.summary.lifetime.count, 2); // both values recorded
    /// assert_eq!(sample.exemplars.len(), 1);
    /// assert_eq!(sample.exemplars[0].value, 0.250);
    /// ```
    pub fn record_with_exemplar(&self, value: f64, labels: &[(&str, &str)]) -> Result<(), Error> {
        let checked = exemplar_labels(labels);
        self.record(value);
        let labels = checked?;
        if value >= 0.0 {
            self.core.offer_exemplar(value, labels);
        }
        Ok(())
    }

    pub(crate) fn exemplars(&self) -> Vec<Exemplar> {
        self.core.exemplars()
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

    /// Reads that spliced the octaves that moved into the last lists.
    #[cfg(test)]
    pub(crate) fn spliced_reads(&self) -> u64 {
        match &self.core.kind {
            WindowCore::Time(w) => w.reader.lock().spliced,
            WindowCore::Count(_) => 0,
        }
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
    /// assert_eq!(metrics.snapshot().histogram("t_seconds", &[]).unwrap().lifetime.count, 0);
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
            exemplars: OnceLock::new(),
        }
    }

    fn offer_exemplar(&self, value: f64, labels: Labels) {
        let classic = self.buckets.as_ref().map(|b| b.index_of(value));
        let exemplars = self.exemplars.get_or_init(|| {
            let classic = self.buckets.as_ref().map_or(0, |b| b.bounds.len() + 1);
            Box::new(HistogramExemplars::new(classic))
        });
        // The bucket the value was counted in (clamped into the range).
        let native = (value > 0.0)
            .then(|| super::layout::index_of(value.clamp(MIN_TRACKABLE, MAX_TRACKABLE)))
            .flatten();
        exemplars.offer(labels, value, Place { native, classic });
    }

    pub(crate) fn exemplars(&self) -> Vec<Exemplar> {
        self.exemplars.get().map(|e| e.read()).unwrap_or_default()
    }

    #[inline]
    fn record_bits(&self, bits: u64) {
        match &self.kind {
            WindowCore::Time(w) => w.record(bits),
            WindowCore::Count(w) => w.record(bits),
        }
    }

    /// A value in range, for a count window or a series with configured
    /// buckets.
    #[inline(never)]
    fn record_in_range(&self, value: f64) {
        self.record_bits(value.to_bits());
        if let Some(buckets) = &self.buckets {
            buckets.record(value);
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
        } else {
            // Both windows clamp to the same range, so that sums of any
            // number of values stay finite and the JSON stays readable.
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
    pub(crate) fn with_lifetime_buckets(mut self) -> Self {
        match &mut self.kind {
            WindowCore::Time(w) => w.reader.lock().lifetime_buckets = true,
            WindowCore::Count(w) => w.buckets = true,
        }
        self
    }

    /// Reads every octave at every read (time windows with lifetime
    /// buckets): the reference for the reads that splice the last lists.
    #[cfg(test)]
    pub(crate) fn reading_every_octave(self) -> Self {
        if let WindowCore::Time(w) = &self.kind {
            w.reader.lock().every_octave = true;
        }
        self
    }

    fn summary(&self, now: Duration) -> HistogramSummary {
        let (window, lifetime, window_buckets, lifetime_buckets, memo) = match &self.kind {
            WindowCore::Time(w) => {
                let (window, lifetime, state) = w.summary(now);
                match state {
                    Some(s) => (window, lifetime, Some(s.window), Some(s.lifetime), s.memo),
                    None => (window, lifetime, None, None, LifetimeMemo::default()),
                }
            }
            WindowCore::Count(w) => {
                let (window, lifetime, buckets) = w.summary(now);
                let memo = LifetimeMemo::default();
                (window, lifetime, buckets.map(Arc::new), None, memo)
            }
        };
        HistogramSummary {
            window,
            lifetime,
            saturated: self.saturated.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            window_buckets,
            lifetime_buckets,
            buckets: self.buckets.as_ref().map(|b| b.read()),
            memo,
        }
    }

    fn heap_bytes(&self) -> usize {
        match &self.kind {
            WindowCore::Time(w) => w.heap_bytes(),
            WindowCore::Count(w) => w.ring.len() * 8,
        }
    }
}

#[cfg(test)]
mod tests;
