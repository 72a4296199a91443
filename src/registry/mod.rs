//! `MetricsCollector`: the registry of series, their metadata, and the
//! global collector.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::key::NameHasher;
use crate::metrics::counter::Counter;
use crate::metrics::gauge::Gauge;
use crate::metrics::histogram::{validate_bucket_bounds, Histogram, Window};
use crate::plugin::{check_period, Collector, Plugin, PluginSet, DEFAULT_PLUGIN_DEADLINE};
use crate::snapshot::{MetricKind, Snapshot};
use crate::unit::Unit;

mod builder;
pub(crate) mod family;
mod global;
mod lifecycle;
mod observed;
pub(crate) mod rate;
mod snapshot;

pub use family::Family;
use family::{extract, Handle, Metric};

pub use builder::Builder;
pub use global::{global, install_global};

/// Label sets allowed per metric name unless configured otherwise.
///
/// ```
/// assert_eq!(vitals::registry::DEFAULT_CARDINALITY_LIMIT, 1000);
/// ```
pub const DEFAULT_CARDINALITY_LIMIT: usize = 1000;

/// Metric names allowed per collector unless configured otherwise.
///
/// ```
/// assert_eq!(vitals::registry::DEFAULT_MAX_METRICS, 10_000);
/// ```
pub const DEFAULT_MAX_METRICS: usize = 10_000;

/// The label every overflow series carries (reserved: users cannot set it).
///
/// ```
/// assert_eq!(vitals::registry::OVERFLOW_LABEL, "vitals_overflow");
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
/// assert_eq!(snap.counter("cache_hits_total", &[("cache", "users")]), Some(1.0));
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
    /// Plug-in series between snapshots: who holds which name, rates.
    observed: Mutex<observed::Observed>,
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
    /// use vitals::MetricsCollector;
    ///
    /// let metrics = MetricsCollector::builder().cardinality_limit(100).build();
    /// assert!(metrics.snapshot().counters.is_empty());
    /// // Settings are checked when the collector is built:
    /// assert!(MetricsCollector::builder().cardinality_limit(0).try_build().is_err());
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
            observed: Mutex::default(),
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
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::{ManualClock, MetricsCollector};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(metrics.clock().monotonic(), Duration::from_secs(5));
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
    /// assert_eq!(snap.counter("vitals_errors_total", &[("kind", "invalid_name")]), Some(1.0));
    /// ```
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        self.handle(name, labels)
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
        self.try_handle(name, labels)
    }

    /// The gauge `name{labels}`, created on first use. Never fails.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.gauge("threads", &[]).set(8.0);
    /// assert_eq!(metrics.snapshot().gauge("threads", &[]), Some(8.0));
    /// ```
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Gauge {
        self.handle(name, labels)
    }

    /// The gauge `name{labels}`, or why it cannot be had.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.try_gauge("temp", &[("__x", "y")]).is_err());
    /// ```
    pub fn try_gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge, Error> {
        self.try_handle(name, labels)
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
        self.handle(name, labels)
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
        self.try_handle(name, labels)
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
    /// [`MAX_BUCKETS`](crate::histogram::MAX_BUCKETS) finite, non-negative, strictly
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
    /// assert_eq!(metrics.snapshot().gauge("open_files", &[]), Some(17.0));
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
    pub(crate) fn macro_find<H: Handle>(
        &self,
        family: &Family,
        labels: &[(&str, &str)],
    ) -> Option<H> {
        self.inner.find(family, labels).and_then(H::from_metric)
    }

    /// The series with these labels in a known family, created if new;
    /// never fails.
    #[inline]
    pub(crate) fn macro_in<H: Handle>(&self, family: &Family, labels: &[(&str, &str)]) -> H {
        // Hot path: the series exists.
        if let Some(handle) = self.inner.find(family, labels).and_then(H::from_metric) {
            return handle;
        }
        self.or_detached(self.inner.create(family, labels, true))
    }

    /// The handle of any kind: what `counter`, `gauge` and `histogram` do.
    #[inline]
    pub(crate) fn handle<H: Handle>(&self, name: &str, labels: &[(&str, &str)]) -> H {
        self.or_detached(self.inner.metric(name, H::KIND, labels, true))
    }

    /// The handle of any kind, or the error: what the `try_*` methods do.
    pub(crate) fn try_handle<H: Handle>(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<H, Error> {
        self.inner
            .metric(name, H::KIND, labels, false)
            .and_then(extract)
    }

    /// The `{vitals_overflow="true"}` series of metric `name` (its family
    /// created if new): where the event plug-ins record the names that came
    /// past the cardinality limit, as the plain methods do for label sets.
    pub(crate) fn overflow_of<H: Handle>(&self, name: &str) -> H {
        let found = self
            .inner
            .family(name, H::KIND, &[])
            .map(|family| self.inner.overflow_series(&family));
        self.or_detached(found)
    }

    pub(crate) fn report_error(&self, err: Error) {
        self.inner.report(err);
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

impl Inner {
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
}
