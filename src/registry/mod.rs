//! `MetricsCollector`: the registry of series, their metadata, and the
//! global collector.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::key::{
    hash_labels, labels_match, validate_labels, validate_metric_name, Labels, NameHasher,
    PrehashedHasher,
};
use crate::metrics::counter::{Counter, CounterCore};
use crate::metrics::gauge::{Gauge, GaugeCore};
use crate::metrics::histogram::{validate_bucket_bounds, Histogram, HistogramCore, Window};
use crate::metrics::Storage;
use crate::plugin::{check_period, Collector, Plugin, PluginSet, DEFAULT_PLUGIN_DEADLINE};
use crate::snapshot::{
    CounterSample, GaugeSample, HistogramSample, MetricInfo, MetricKind, Rate, Snapshot,
    SCHEMA_VERSION,
};
use crate::unit::Unit;

mod builder;
mod global;
mod lifecycle;
pub(crate) mod rate;

use lifecycle::{Activity, Base, HistogramBase, Life, Step};

pub use builder::Builder;
pub use global::{global, install_global};

/// Label sets allowed per metric name unless configured otherwise.
///
/// ```
/// assert_eq!(vitals::DEFAULT_CARDINALITY_LIMIT, 1000);
/// ```
pub const DEFAULT_CARDINALITY_LIMIT: usize = 1000;

/// Metric names allowed per collector unless configured otherwise.
///
/// ```
/// assert_eq!(vitals::DEFAULT_MAX_METRICS, 10_000);
/// ```
pub const DEFAULT_MAX_METRICS: usize = 10_000;

/// The label every overflow series carries (reserved: users cannot set it).
///
/// ```
/// assert_eq!(vitals::OVERFLOW_LABEL, "vitals_overflow");
/// ```
pub const OVERFLOW_LABEL: &str = "vitals_overflow";

/// Counts registration errors by `kind` (see [`Error::kind`]).
const ERRORS_METRIC: &str = "vitals_errors_total";
/// Counts values sent to an overflow series, by `metric`.
const OVERFLOW_METRIC: &str = "vitals_cardinality_overflow_total";
/// Times each plug-in collection, by `collector`.
const COLLECTION_METRIC: &str = "vitals_collection_duration_seconds";
/// The families every collector creates for itself (errors, overflow,
/// collection time); they do not count against `max_metrics`.
const INTERNAL_FAMILIES: usize = 3;
/// Series of `vitals_errors_total`: one per [`Error::kind`], with room.
const ERROR_KINDS_LIMIT: usize = 64;

/// The registry: hands out metric handles by name and labels, keeps their
/// metadata, and takes [`Snapshot`]s.
///
/// Cloning a collector is cheap and shares the same series. Handles stay
/// valid (and keep counting) for as long as any handle or clone exists.
///
/// * **Lookup**: one order-independent hash of the borrowed labels and one
///   read-locked map lookup; an existing series costs no allocation.
/// * **Errors**: the `try_*` methods return an [`Error`]; the plain methods
///   (and the macros) never fail: they return a detached handle that records
///   nowhere, count the error in `vitals_errors_total{kind}` and keep the first
///   message for [`Snapshot::first_error`].
/// * **Cardinality** (per name, [`DEFAULT_CARDINALITY_LIMIT`] label sets by
///   default): a new label set beyond the limit is an error for `try_*`; the
///   plain methods send its values to one overflow series (label
///   `vitals_overflow="true"`) and count them in
///   `vitals_cardinality_overflow_total{metric}`. Metric names are capped too
///   ([`DEFAULT_MAX_METRICS`]), so memory stays bounded whatever the input.
///
/// ```
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let hits = metrics.counter("cache_hits_total", &[("cache", "users")]);
/// hits.inc();
/// metrics.gauge("cache_entries", &[("cache", "users")]).set(120.0);
/// metrics.histogram("lookup_seconds", &[]).record(0.002);
///
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("cache_hits_total", &[("cache", "users")]), Some(1));
/// assert_eq!(snap.gauge("cache_entries", &[("cache", "users")]), Some(120.0));
/// ```
#[derive(Clone)]
pub struct MetricsCollector {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    created: Duration,
    /// Series storage is leaked (global collector only: it is never dropped).
    leak: bool,
    seed: u64,
    cardinality_limit: usize,
    max_metrics: usize,
    default_window: Window,
    rate_window: Duration,
    expire_after: Option<Duration>,
    lifetime_buckets: bool,
    families: RwLock<HashMap<Arc<str>, Arc<Family>, BuildHasherDefault<NameHasher>>>,
    first_error: Mutex<Option<String>>,
    plugin_deadline: Duration,
    plugins: PluginSet,
}

/// All series of one metric name.
#[doc(hidden)]
pub struct Family {
    name: Arc<str>,
    kind: MetricKind,
    limit: usize,
    meta: Mutex<Meta>,
    series: RwLock<SeriesSet>,
    overflow: OnceLock<Metric>,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Meta {
    help: Option<String>,
    unit: Option<String>,
    window: Option<Window>,
    buckets: Option<Arc<[f64]>>,
}

/// Series in creation order, indexed by label hash. Colliding hashes chain
/// through `Series::next`, so the index stores one `usize` per hash.
#[derive(Default)]
struct SeriesSet {
    index: HashMap<u64, usize, BuildHasherDefault<PrehashedHasher>>,
    list: Vec<Series>,
    /// Series counted against the limit (the overflow series is not).
    counted: usize,
}

struct Series {
    labels: Labels,
    /// The label hash (the index's key), kept to rebuild the index.
    hash: u64,
    metric: Metric,
    next: Option<usize>,
    /// The family's overflow series (not in the index, never counted).
    overflow: bool,
    /// Rate marks and lifecycle state.
    life: Mutex<Life>,
}

#[derive(Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Default for MetricsCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("metrics", &self.inner.families.read().len())
            .finish_non_exhaustive()
    }
}

impl MetricsCollector {
    /// A collector with default settings and the system clock.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.snapshot().counters.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Settings for a new collector.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::builder().build();
    /// # let _ = metrics;
    /// ```
    pub fn builder() -> Builder {
        Builder {
            clock: None,
            cardinality_limit: DEFAULT_CARDINALITY_LIMIT,
            max_metrics: DEFAULT_MAX_METRICS,
            default_window: Window::default(),
            rate_window: Duration::from_secs(60),
            expire_after: None,
            plugin_deadline: DEFAULT_PLUGIN_DEADLINE,
            lifetime_buckets: false,
        }
    }

    fn from_builder(b: Builder, leak: bool) -> Self {
        let clock = b.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        let seed = {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x5EED_u64)
        };
        let inner = Inner {
            created: clock.monotonic(),
            clock,
            leak,
            seed,
            cardinality_limit: b.cardinality_limit,
            max_metrics: b.max_metrics,
            default_window: b.default_window,
            rate_window: b.rate_window,
            expire_after: b.expire_after,
            lifetime_buckets: b.lifetime_buckets,
            families: RwLock::new(HashMap::default()),
            first_error: Mutex::new(None),
            plugin_deadline: b.plugin_deadline,
            plugins: PluginSet::default(),
        };
        // The internal families exist from the start, so that reporting an
        // error can never fail on the name limit.
        for (name, help) in [
            (
                ERRORS_METRIC,
                "Registration errors met by this collector, by kind.",
            ),
            (
                OVERFLOW_METRIC,
                "Handles sent to an overflow series by the cardinality limit, by metric.",
            ),
            (
                COLLECTION_METRIC,
                "Time each plug-in collection took, by collector.",
            ),
        ] {
            let kind = if name == COLLECTION_METRIC {
                MetricKind::Histogram
            } else {
                MetricKind::Counter
            };
            let family = inner.new_family(name, kind);
            let mut meta = family.meta.lock();
            meta.help = Some(help.to_owned());
            if kind == MetricKind::Histogram {
                meta.unit = Some("seconds".to_owned());
            }
            drop(meta);
            inner
                .families
                .write()
                .insert(Arc::clone(&family.name), family);
        }
        MetricsCollector {
            inner: Arc::new(inner),
        }
    }

    /// The clock this collector reads.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let _t = metrics.clock().monotonic();
    /// ```
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The counter `name{labels}`, created on first use.
    ///
    /// Never fails: see the type docs for what happens to bad input.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("requests_total", &[("code", "200")]).inc();
    /// metrics.counter("bad name", &[]).inc(); // detached; counted as an error
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.counter("vitals_errors_total", &[("kind", "invalid_name")]), Some(1));
    /// ```
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        self.get(name, labels)
    }

    /// The counter `name{labels}`, or why it cannot be had.
    ///
    /// ```
    /// use vitals::{Error, MetricsCollector};
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.try_gauge("temp", &[]).unwrap();
    /// let err = metrics.try_counter("temp", &[]).unwrap_err();
    /// assert!(matches!(err, Error::KindMismatch { .. }));
    /// ```
    pub fn try_counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<Counter, Error> {
        self.inner
            .metric(name, Counter::KIND, labels, false)
            .and_then(extract)
    }

    /// The gauge `name{labels}`, created on first use. Never fails.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.gauge("threads", &[]).set(8.0);
    /// assert_eq!(metrics.snapshot().gauge("threads", &[]), Some(8.0));
    /// ```
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        self.get(name, labels)
    }

    /// The gauge `name{labels}`, or why it cannot be had.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.try_gauge("temp", &[("__x", "y")]).is_err());
    /// ```
    pub fn try_gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge, Error> {
        self.inner
            .metric(name, Gauge::KIND, labels, false)
            .and_then(extract)
    }

    /// The histogram `name{labels}`, created on first use with the window
    /// configured for `name` (or the collector's default). Never fails.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("latency_seconds", &[]).record(0.25);
    /// assert!(metrics.snapshot().histogram("latency_seconds", &[]).is_some());
    /// ```
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Histogram {
        self.get(name, labels)
    }

    /// The histogram `name{labels}`, or why it cannot be had. The label
    /// names `quantile` and `le` are reserved for histograms (exporters add
    /// them).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.try_histogram("h", &[("quantile", "0.5")]).is_err());
    /// ```
    pub fn try_histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram, Error> {
        self.inner
            .metric(name, Histogram::KIND, labels, false)
            .and_then(extract)
    }

    /// Sets the window of histogram `name`'s series. Only before its first
    /// series exists: changing the window of live series would mix two
    /// meanings in one metric.
    ///
    /// ```
    /// use vitals::{MetricsCollector, Window};
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.configure_histogram("batch", Window::Count { values: 100 }).unwrap();
    /// metrics.histogram("batch", &[]).record(1.0);
    /// assert!(metrics.configure_histogram("batch", Window::default()).is_err());
    /// ```
    pub fn configure_histogram(&self, name: &str, window: Window) -> Result<(), Error> {
        window.validate()?;
        let family = self.inner.family(name, MetricKind::Histogram, &[])?;
        if !family.series.read().list.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "histogram {name:?} already has series; configure its window before first use"
            )));
        }
        family.meta.lock().window = Some(window);
        Ok(())
    }

    /// Gives histogram `name` bucket bounds, so that its series also count
    /// values per bucket over their life and Prometheus exporters render it
    /// as a `histogram` with cumulative `le` buckets (instead of a
    /// `summary`). Bounds are inclusive upper bounds: 1 to
    /// [`MAX_BUCKETS`](crate::MAX_BUCKETS) finite, non-negative, strictly
    /// increasing values; `+Inf` is implied. Only before the histogram's first series
    /// exists, like [`configure_histogram`](Self::configure_histogram).
    ///
    /// Only these histograms pay for bucket counting on the record path.
    ///
    /// ```
    /// use vitals::MetricsCollector;
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics
    ///     .configure_histogram_buckets("request_duration_seconds", &[0.01, 0.1, 1.0])
    ///     .unwrap();
    /// assert!(metrics.configure_histogram_buckets("h", &[1.0, 0.5]).is_err());
    /// assert!(metrics.configure_histogram_buckets("h", &[f64::INFINITY]).is_err());
    /// metrics.histogram("request_duration_seconds", &[]).record(0.05);
    /// let snap = metrics.snapshot();
    /// let buckets = snap.histogram("request_duration_seconds", &[]).unwrap().buckets.as_ref();
    /// assert_eq!(buckets.unwrap().cumulative, [0, 1, 1]);
    /// ```
    pub fn configure_histogram_buckets(&self, name: &str, bounds: &[f64]) -> Result<(), Error> {
        validate_bucket_bounds(name, bounds)?;
        let family = self.inner.family(name, MetricKind::Histogram, &[])?;
        if !family.series.read().list.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "histogram {name:?} already has series; configure its buckets before first use"
            )));
        }
        family.meta.lock().buckets = Some(Arc::from(bounds));
        Ok(())
    }

    /// Sets the help text and unit of metric `name`, registering it as
    /// `kind`, or says why not (a [`Unit::Other`] word must match
    /// `[a-zA-Z0-9_]+`).
    ///
    /// ```
    /// use vitals::{MetricKind, MetricsCollector, Unit};
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics
    ///     .try_describe(MetricKind::Histogram, "req_seconds", Some(Unit::Seconds), "Request time")
    ///     .unwrap();
    /// assert!(metrics.try_describe(MetricKind::Gauge, "req_seconds", None, "x").is_err());
    /// assert!(metrics.try_describe(MetricKind::Gauge, "g", Some(Unit::other("a b")), "x").is_err());
    /// ```
    pub fn try_describe(
        &self,
        kind: MetricKind,
        name: &str,
        unit: Option<Unit>,
        help: &str,
    ) -> Result<(), Error> {
        if let Some(unit) = unit.as_ref().filter(|u| !u.is_valid()) {
            return Err(Error::InvalidConfig(format!(
                "unit {:?} of metric {name:?} must match [a-zA-Z0-9_]+",
                unit.as_str()
            )));
        }
        let family = self.inner.family(name, kind, &[])?;
        let mut meta = family.meta.lock();
        meta.help = Some(help.to_owned());
        if let Some(unit) = unit {
            meta.unit = Some(unit.as_str().to_owned());
        }
        Ok(())
    }

    /// As [`try_describe`](Self::try_describe), counting and keeping an
    /// error instead of returning it.
    ///
    /// ```
    /// use vitals::{MetricKind, MetricsCollector};
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.describe(MetricKind::Counter, "jobs_total", None, "Jobs run");
    /// assert_eq!(metrics.snapshot().metadata("jobs_total").unwrap().help.as_deref(), Some("Jobs run"));
    /// ```
    pub fn describe(&self, kind: MetricKind, name: &str, unit: Option<Unit>, help: &str) {
        if let Err(err) = self.try_describe(kind, name, unit, help) {
            self.inner.report(err);
        }
    }

    /// Every series at this moment. Also advances histogram windows and
    /// counter rates to the clock's time.
    ///
    /// Concurrent snapshots are safe; a counter never reads lower in a later
    /// snapshot than in an earlier one.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("a_total", &[]).inc();
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.counters.len(), 1);
    /// assert!(snap.timestamp_unix_ms > 0);
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        self.inner.snapshot()
    }

    /// Number of label sets registered under `name` (the overflow series
    /// not counted), or `None` for an unknown name.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("a_total", &[("k", "1")]);
    /// metrics.counter("a_total", &[("k", "2")]);
    /// assert_eq!(metrics.cardinality("a_total"), Some(2));
    /// ```
    pub fn cardinality(&self, name: &str) -> Option<usize> {
        let families = self.inner.families.read();
        families.get(name).map(|f| f.series.read().counted)
    }

    /// Heap bytes held by the histogram series `name{labels}`: buckets,
    /// slot totals and any stripes. For checking memory budgets.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("h", &[]).record(1.0);
    /// assert!(metrics.histogram_heap_bytes("h", &[]).unwrap() < 32 * 1024);
    /// ```
    pub fn histogram_heap_bytes(&self, name: &str, labels: &[(&str, &str)]) -> Option<usize> {
        let family = self.inner.families.read().get(name).cloned()?;
        match self.inner.find(&family, labels)? {
            Metric::Histogram(h) => Some(h.heap_bytes()),
            _ => None,
        }
    }

    /// Registers a plug-in collector and starts its worker thread; returns
    /// the handle that enables, disables and tunes it. Its samples and
    /// status appear in every [`Snapshot`] from now on (see
    /// [`Collector`] for how collections run).
    ///
    /// Fails with [`Error::DuplicateCollector`] when a plug-in of that name
    /// is registered already, [`Error::InvalidConfig`] for an empty name or
    /// an interval under 1 ms, and [`Error::Collection`] when the worker
    /// thread cannot be started.
    ///
    /// A plug-in must not own a clone of this collector (that would keep it
    /// alive forever, with its worker threads): hold metric handles instead.
    ///
    /// ```
    /// use vitals::{Collector, Error, MetricsCollector, Samples};
    ///
    /// struct OpenFiles;
    /// impl Collector for OpenFiles {
    ///     fn name(&self) -> &str { "files" }
    ///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
    ///         out.gauge("open_files", &[], 17.0)
    ///     }
    /// }
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.register(OpenFiles).unwrap();
    /// assert!(metrics.register(OpenFiles).is_err());
    /// let boxed: Box<dyn Collector> = Box::new(OpenFiles);
    /// assert!(MetricsCollector::new().register(boxed).is_ok());
    /// assert_eq!(metrics.snapshot().plugin("files").unwrap().sample("open_files", &[]), Some(17.0));
    /// ```
    pub fn register<C: Collector + 'static>(&self, collector: C) -> Result<Plugin, Error> {
        let duration = self.histogram(COLLECTION_METRIC, &[("collector", collector.name())]);
        self.inner.plugins.register(
            Box::new(collector),
            Arc::clone(&self.inner.clock),
            duration,
            self.inner.plugin_deadline,
        )
    }

    /// The control handle of the registered plug-in called `name`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.plugin("system").is_none());
    /// ```
    pub fn plugin(&self, name: &str) -> Option<Plugin> {
        self.inner.plugins.get(name)
    }

    /// A reference that does not keep the collector alive, for plug-ins
    /// that create series as they go.
    pub(crate) fn downgrade(&self) -> WeakCollector {
        WeakCollector(Arc::downgrade(&self.inner))
    }

    // ------------------------------------------------ support for macros

    pub(crate) fn macro_family(
        &self,
        name: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
    ) -> Result<Arc<Family>, Error> {
        self.inner.family(name, kind, labels)
    }

    /// The existing, regular series with these labels: never the overflow
    /// series, never a detached handle, so the result may be cached.
    pub(crate) fn macro_find_counter(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
    ) -> Option<Counter> {
        self.inner
            .find(family, labels)
            .and_then(Counter::from_metric)
    }

    pub(crate) fn macro_find_gauge(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
    ) -> Option<Gauge> {
        self.inner.find(family, labels).and_then(Gauge::from_metric)
    }

    pub(crate) fn macro_find_histogram(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
    ) -> Option<Histogram> {
        self.inner
            .find(family, labels)
            .and_then(Histogram::from_metric)
    }

    #[inline]
    pub(crate) fn macro_counter_in(&self, family: &Family, labels: &[(&str, &str)]) -> Counter {
        // Hot path: the series exists.
        if let Some(Metric::Counter(handle)) = self.inner.find(family, labels) {
            return handle;
        }
        self.or_detached(self.inner.create(family, labels, true))
    }

    #[inline]
    pub(crate) fn macro_gauge_in(&self, family: &Family, labels: &[(&str, &str)]) -> Gauge {
        // Hot path: the series exists.
        if let Some(Metric::Gauge(handle)) = self.inner.find(family, labels) {
            return handle;
        }
        self.or_detached(self.inner.create(family, labels, true))
    }

    #[inline]
    pub(crate) fn macro_histogram_in(&self, family: &Family, labels: &[(&str, &str)]) -> Histogram {
        // Hot path: the series exists.
        if let Some(Metric::Histogram(handle)) = self.inner.find(family, labels) {
            return handle;
        }
        self.or_detached(self.inner.create(family, labels, true))
    }

    pub(crate) fn report_error(&self, err: Error) {
        self.inner.report(err);
    }

    fn get<H: Handle>(&self, name: &str, labels: &[(&str, &str)]) -> H {
        self.or_detached(self.inner.metric(name, H::KIND, labels, true))
    }

    fn or_detached<H: Handle>(&self, found: Result<Metric, Error>) -> H {
        match found.and_then(extract) {
            Ok(handle) => handle,
            Err(err) => {
                self.inner.report(err);
                H::detached()
            }
        }
    }
}

/// A [`MetricsCollector`] that may have been dropped. The built-in
/// plug-ins are owned by the registry they write to, so a strong reference
/// would be a cycle.
#[derive(Clone)]
pub(crate) struct WeakCollector(Weak<Inner>);

impl WeakCollector {
    pub(crate) fn upgrade(&self) -> Option<MetricsCollector> {
        self.0.upgrade().map(|inner| MetricsCollector { inner })
    }
}

/// The three handle types, so that the registry code is written once.
trait Handle: Sized {
    const KIND: MetricKind;
    fn from_metric(metric: Metric) -> Option<Self>;
    fn detached() -> Self;
}

impl Handle for Counter {
    const KIND: MetricKind = MetricKind::Counter;
    fn from_metric(metric: Metric) -> Option<Self> {
        match metric {
            Metric::Counter(c) => Some(c),
            _ => None,
        }
    }
    fn detached() -> Self {
        Counter::detached()
    }
}

impl Handle for Gauge {
    const KIND: MetricKind = MetricKind::Gauge;
    fn from_metric(metric: Metric) -> Option<Self> {
        match metric {
            Metric::Gauge(g) => Some(g),
            _ => None,
        }
    }
    fn detached() -> Self {
        Gauge::detached()
    }
}

impl Handle for Histogram {
    const KIND: MetricKind = MetricKind::Histogram;
    fn from_metric(metric: Metric) -> Option<Self> {
        match metric {
            Metric::Histogram(h) => Some(h),
            _ => None,
        }
    }
    fn detached() -> Self {
        Histogram::detached()
    }
}

/// Label names a series of `kind` may not use: the exporters write them.
fn reserved_labels(kind: MetricKind) -> &'static [&'static str] {
    match kind {
        MetricKind::Histogram => &[OVERFLOW_LABEL, "quantile", "le"],
        _ => &[OVERFLOW_LABEL],
    }
}

/// The handle inside `metric`. A family holds only its own kind and callers
/// ask by kind, so a mismatch cannot happen; if it ever did, it is reported
/// as one rather than a panic.
fn extract<H: Handle>(metric: Metric) -> Result<H, Error> {
    let found = metric.kind();
    H::from_metric(metric).ok_or_else(|| Error::KindMismatch {
        name: String::from("(series)"),
        existing: found.as_str(),
        requested: H::KIND.as_str(),
    })
}

impl Metric {
    /// True when a handle to this series may exist outside the registry.
    fn shared(&self) -> bool {
        match self {
            Metric::Counter(c) => c.shared(),
            Metric::Gauge(g) => g.shared(),
            Metric::Histogram(h) => h.shared(),
        }
    }

    /// The series' activity signature and its raw state now.
    fn observe(&self, now: Duration) -> (Activity, Base) {
        match self {
            Metric::Counter(c) => {
                let raw = c.value();
                (Activity::Total(raw), Base::Counter(raw))
            }
            Metric::Gauge(g) => (Activity::Touched(g.take_touched()), Base::Gauge),
            Metric::Histogram(h) => {
                let summary = h.summary(now);
                (
                    histogram_activity(&summary),
                    Base::Histogram(Box::new(HistogramBase::of(&summary))),
                )
            }
        }
    }

    fn kind(&self) -> MetricKind {
        match self {
            Metric::Counter(_) => MetricKind::Counter,
            Metric::Gauge(_) => MetricKind::Gauge,
            Metric::Histogram(_) => MetricKind::Histogram,
        }
    }
}

impl Inner {
    fn new_family(&self, name: &str, kind: MetricKind) -> Arc<Family> {
        // The collector's own families are bounded by what they count, not
        // by the user's limit: an error must never be lost because the
        // user set a small one.
        let limit = match name {
            OVERFLOW_METRIC => self.max_metrics,
            ERRORS_METRIC => ERROR_KINDS_LIMIT,
            // One series per registered plug-in.
            COLLECTION_METRIC => usize::MAX,
            _ => self.cardinality_limit,
        };
        Arc::new(Family {
            name: Arc::from(name),
            kind,
            limit,
            meta: Mutex::new(Meta::default()),
            series: RwLock::new(SeriesSet::default()),
            overflow: OnceLock::new(),
        })
    }

    /// The family for `name`, created if new; checks the kind. `labels`
    /// are the first series' labels: a new family is created only when
    /// they are valid too, so that a refused registration leaves no trace
    /// (no kind claimed, no `max_metrics` slot used).
    fn family(
        &self,
        name: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
    ) -> Result<Arc<Family>, Error> {
        if let Some(family) = self.families.read().get(name) {
            return check_kind(family, kind).map(|()| Arc::clone(family));
        }
        validate_metric_name(name)?;
        validate_labels(name, labels, reserved_labels(kind))?;
        let mut families = self.families.write();
        if let Some(family) = families.get(name) {
            return check_kind(family, kind).map(|()| Arc::clone(family));
        }
        if families.len() >= self.max_metrics.saturating_add(INTERNAL_FAMILIES) {
            return Err(Error::CardinalityLimit {
                name: name.to_owned(),
                limit: self.max_metrics,
            });
        }
        let family = self.new_family(name, kind);
        families.insert(Arc::clone(&family.name), Arc::clone(&family));
        Ok(family)
    }

    fn metric(
        &self,
        name: &str,
        kind: MetricKind,
        labels: &[(&str, &str)],
        overflow: bool,
    ) -> Result<Metric, Error> {
        {
            // Hot path: look up under the read lock, without taking a
            // reference count on the family.
            let families = self.families.read();
            if let Some(family) = families.get(name) {
                check_kind(family, kind)?;
                if let Some(metric) = self.find(family, labels) {
                    return Ok(metric);
                }
            }
        }
        let family = self.family(name, kind, labels)?;
        self.in_family(&family, labels, overflow)
    }

    /// The existing series with these labels (no allocation).
    #[inline]
    fn find(&self, family: &Family, labels: &[(&str, &str)]) -> Option<Metric> {
        let hash = hash_labels(self.seed, labels);
        let set = family.series.read();
        let mut at = set.index.get(&hash).copied();
        while let Some(i) = at {
            let series = &set.list[i];
            if labels_match(series.labels.pairs(), labels) {
                return Some(series.metric.clone());
            }
            at = series.next;
        }
        None
    }

    /// The series with these labels in `family`, created if new. With
    /// `overflow`, a label set beyond the limit gets the overflow series
    /// instead of an error.
    #[inline]
    fn in_family(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
        overflow: bool,
    ) -> Result<Metric, Error> {
        match self.find(family, labels) {
            Some(metric) => Ok(metric),
            None => self.create(family, labels, overflow),
        }
    }

    #[cold]
    #[inline(never)]
    fn create(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
        overflow: bool,
    ) -> Result<Metric, Error> {
        validate_labels(&family.name, labels, reserved_labels(family.kind))?;
        let hash = hash_labels(self.seed, labels);
        let mut set = family.series.write();
        // Another thread may have created it between our read and write lock.
        let mut at = set.index.get(&hash).copied();
        while let Some(i) = at {
            if labels_match(set.list[i].labels.pairs(), labels) {
                return Ok(set.list[i].metric.clone());
            }
            at = set.list[i].next;
        }
        if set.counted >= family.limit {
            drop(set);
            let err = Error::CardinalityLimit {
                name: family.name.to_string(),
                limit: family.limit,
            };
            if !overflow {
                return Err(err);
            }
            return Ok(self.overflow_series(family));
        }
        let metric = self.new_metric(family);
        let position = set.list.len();
        let next = set.index.insert(hash, position);
        set.list
            .push(self.new_series(Labels::from_pairs(labels), hash, metric.clone(), next));
        set.counted += 1;
        Ok(metric)
    }

    fn new_metric(&self, family: &Family) -> Metric {
        match family.kind {
            MetricKind::Counter => Metric::Counter(Counter::from_storage(Storage::new(
                CounterCore::default(),
                self.leak,
            ))),
            MetricKind::Gauge => Metric::Gauge(Gauge::from_storage(Storage::new(
                GaugeCore::default(),
                self.leak,
            ))),
            MetricKind::Histogram => {
                let (window, buckets) = {
                    let meta = family.meta.lock();
                    (
                        meta.window.unwrap_or(self.default_window),
                        meta.buckets.clone(),
                    )
                };
                let mut core =
                    HistogramCore::new(window, self.clock.monotonic(), buckets.as_deref());
                if self.lifetime_buckets {
                    core = core.with_lifetime_buckets();
                }
                Metric::Histogram(Histogram::from_storage(Storage::new(core, self.leak)))
            }
        }
    }

    fn new_series(&self, labels: Labels, hash: u64, metric: Metric, next: Option<usize>) -> Series {
        let rate_window = matches!(metric, Metric::Counter(_)).then_some(self.rate_window);
        let life = Life::new(self.clock.monotonic(), rate_window);
        Series {
            labels,
            hash,
            metric,
            next,
            overflow: false,
            life: Mutex::new(life),
        }
    }

    /// The one series that takes every label set past the limit.
    #[cold]
    fn overflow_series(&self, family: &Family) -> Metric {
        if family.name.as_ref() != OVERFLOW_METRIC {
            if let Ok(Metric::Counter(c)) = self.metric(
                OVERFLOW_METRIC,
                MetricKind::Counter,
                &[("metric", &family.name)],
                false,
            ) {
                c.inc();
            }
        }
        family
            .overflow
            .get_or_init(|| {
                let metric = self.new_metric(family);
                let labels = Labels::from_pairs(&[(OVERFLOW_LABEL, "true")]);
                let mut series = self.new_series(labels, 0, metric.clone(), None);
                series.overflow = true;
                family.series.write().list.push(series);
                metric
            })
            .clone()
    }

    /// Counts the error and keeps the first message. Never fails: the
    /// errors family exists from the start and `kind` has a handful of values.
    #[cold]
    fn report(&self, err: Error) {
        {
            let mut first = self.first_error.lock();
            if first.is_none() {
                *first = Some(err.to_string());
            }
        }
        if let Ok(Metric::Counter(c)) = self.metric(
            ERRORS_METRIC,
            MetricKind::Counter,
            &[("kind", err.kind())],
            false,
        ) {
            c.inc();
        }
    }

    fn snapshot(&self) -> Snapshot {
        // Plug-ins first: event plug-ins and the collection timer write to
        // series that the rest of the snapshot reads.
        let plugins = self.plugins.collect(|| self.clock.monotonic());
        let now = self.clock.monotonic();
        let wall = self.clock.wall();
        let mut families: Vec<Arc<Family>> = self.families.read().values().cloned().collect();
        families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Size the sample vectors once instead of growing them by copying.
        let mut sizes = [0usize; 3];
        for family in &families {
            let slot = match family.kind {
                MetricKind::Counter => 0,
                MetricKind::Gauge => 1,
                MetricKind::Histogram => 2,
            };
            sizes[slot] += family.series.read().list.len();
        }
        let mut snap = Snapshot {
            schema_version: SCHEMA_VERSION,
            timestamp_unix_ms: wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            uptime_seconds: now.saturating_sub(self.created).as_secs_f64(),
            counters: Vec::with_capacity(sizes[0]),
            gauges: Vec::with_capacity(sizes[1]),
            histograms: Vec::with_capacity(sizes[2]),
            metadata: Vec::with_capacity(families.len()),
            first_error: self.first_error.lock().clone(),
            plugins,
        };
        for family in &families {
            let meta = family.meta.lock();
            snap.metadata.push(MetricInfo {
                name: Arc::clone(&family.name),
                kind: family.kind,
                help: meta.help.clone(),
                unit: meta.unit.clone(),
            });
            drop(meta);
            let expire_after = self.expire_after.filter(|_| !is_internal(&family.name));
            let mut freeable = false;
            let set = family.series.read();
            for series in &set.list {
                let mut life = series.life.lock();
                let name = Arc::clone(&family.name);
                match &series.metric {
                    Metric::Counter(c) => {
                        let raw = c.value();
                        let step = life.step(Activity::Total(raw), now, expire_after, || {
                            Base::Counter(raw)
                        });
                        if step == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        let value = life.counter_value(raw);
                        let rate = life.rate.as_mut().and_then(|t| {
                            if step == Step::Revived {
                                t.restart(now, [value]);
                            }
                            let increase = t.update(now, [value]);
                            Some(Rate {
                                per_second: increase.per_second(0)?,
                                span_seconds: increase.span.as_secs_f64(),
                            })
                        });
                        snap.counters.push(CounterSample {
                            name,
                            labels: series.labels.clone(),
                            value,
                            rate,
                        });
                    }
                    Metric::Gauge(g) => {
                        let touched = Activity::Touched(g.take_touched());
                        if life.step(touched, now, expire_after, || Base::Gauge) == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        snap.gauges.push(GaugeSample {
                            name,
                            labels: series.labels.clone(),
                            value: g.value(),
                        });
                    }
                    Metric::Histogram(h) => {
                        let mut summary = h.summary(now);
                        let seen = histogram_activity(&summary);
                        let step = life.step(seen, now, expire_after, || {
                            Base::Histogram(Box::new(HistogramBase::of(&summary)))
                        });
                        if step == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        life.histogram_summary(&mut summary);
                        snap.histograms.push(HistogramSample {
                            name,
                            labels: series.labels.clone(),
                            summary,
                        });
                    }
                }
            }
            drop(set);
            if freeable {
                free_removed(family);
            }
        }
        snap
    }
}

/// A histogram moves with every value it is given: recorded (count) or
/// refused (dropped).
fn histogram_activity(summary: &crate::metrics::histogram::HistogramSummary) -> Activity {
    Activity::Total(summary.lifetime.count.wrapping_add(summary.dropped))
}

/// The families a collector keeps for itself: never expired.
fn is_internal(name: &str) -> bool {
    matches!(name, ERRORS_METRIC | OVERFLOW_METRIC | COLLECTION_METRIC)
}

/// Drops the removed series of `family` that no handle outside the
/// registry holds, and rebuilds the index over the rest (creation order
/// kept). Lookups wait on the write lock, so none can take a handle to a
/// series between the check and the drop.
fn free_removed(family: &Family) {
    let mut set = family.series.write();
    let set = &mut *set;
    let before = set.list.len();
    set.list
        .retain_mut(|s| !s.life.get_mut().is_removed() || s.metric.shared());
    if set.list.len() == before {
        return;
    }
    set.index.clear();
    set.counted = 0;
    for (position, series) in set.list.iter_mut().enumerate() {
        if series.overflow {
            continue;
        }
        series.next = set.index.insert(series.hash, position);
        set.counted += 1;
    }
    if set.list.capacity() > 2 * set.list.len().max(8) {
        set.list.shrink_to_fit();
        set.index.shrink_to_fit();
    }
}

fn check_kind(family: &Family, kind: MetricKind) -> Result<(), Error> {
    if family.kind == kind {
        Ok(())
    } else {
        Err(Error::KindMismatch {
            name: family.name.to_string(),
            existing: family.kind.as_str(),
            requested: kind.as_str(),
        })
    }
}
