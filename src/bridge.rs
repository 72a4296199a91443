//! Bridge for the [`metrics`] crate facade (cargo feature `metrics-bridge`).
//!
//! Libraries instrumented with `metrics::counter!`, `gauge!`, `histogram!`
//! and `describe_*!` record into a vitals [`MetricsCollector`] once a
//! [`VitalsRecorder`] is their recorder: globally with [`install`], or for
//! one closure on one thread with [`metrics::with_local_recorder`].
//! Histograms recorded this way get the collector's rolling windows (its
//! default, or one set with [`MetricsCollector::configure_histogram`] under
//! the translated name before the first value), and everything shows up in
//! [`MetricsCollector::snapshot`] with its labels, help text and unit.
//!
//! **Cost.** `metrics` 0.24 calls the recorder's `register_*` on every
//! macro call. The recorder answers from its own cache, keyed by the
//! `metrics::Key` and its precomputed hash: one read-locked lookup and one
//! reference-count increment, no allocation, no string hashing. A held
//! `metrics::Counter` is the vitals atomic operation behind one dynamic call.
//! Only handles of real series are cached (at most 65,536 keys per kind):
//! a key that the collector rejects or sends to the overflow series is
//! looked up, and counted, on every call, as with vitals' own macros.
//!
//! **Names.** `metrics` accepts any string; Prometheus (and vitals) do not.
//! The bridge translates rather than rejects, because that is what users of
//! `metrics` get from its Prometheus exporter and expect of dashboards:
//!
//! * metric names: every character outside `[a-zA-Z0-9_:]` becomes `_`
//!   (so `http.requests` is `http_requests`, and `é` is one `_`); a name
//!   starting with a digit gets a leading `_`. See [`metric_name`].
//! * label names: the same, with `:` also becoming `_` ([`label_name`]).
//!   Label values are kept as they are.
//! * Names that still break a vitals rule after that (an empty name, a label
//!   starting with the reserved `__`, a repeated label, `le` or `quantile` on
//!   a histogram, a kind clash) get a detached handle and are counted in
//!   `vitals_errors_total{kind}`, exactly as with vitals' own macros.
//! * Two `metrics` names that translate to the same name
//!   (`a.b` and `a_b`) share one series.
//!
//! **Units.** `describe_*!` units are stored as the unit's own word,
//! [`metrics::Unit::as_str`]: `seconds` and `bytes` are Prometheus base
//! units; `Unit::Count` is stored as no unit (Prometheus counts have none).
//! Values are never rescaled: a histogram described in `Unit::Milliseconds`
//! keeps its millisecond values and says so with the unit `milliseconds`.
//! Rescaling would need the unit before the first value, which `metrics`
//! does not promise, and would silently disagree with the library's own
//! documentation of its numbers. Record seconds and bytes to follow the
//! Prometheus conventions.
//!
//! ```
//! use vitals::bridge::VitalsRecorder;
//! use vitals::MetricsCollector;
//!
//! let metrics = MetricsCollector::new();
//! let recorder = VitalsRecorder::new(metrics.clone());
//! metrics::with_local_recorder(&recorder, || {
//!     metrics::describe_counter!("jobs.done", "Jobs finished");
//!     metrics::counter!("jobs.done", "queue" => "mail").increment(3);
//!     metrics::histogram!("job_seconds").record(0.25);
//! });
//! let snap = metrics.snapshot();
//! assert_eq!(snap.counter("jobs_done", &[("queue", "mail")]), Some(3.0));
//! assert_eq!(snap.histogram("job_seconds", &[]).unwrap().window.count, 1);
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use metrics::{CounterFn, GaugeFn, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString};
use parking_lot::RwLock;

use crate::error::Error;
use crate::metrics::counter::Counter;
use crate::metrics::gauge::Gauge;
use crate::metrics::histogram::Histogram;
use crate::registry::MetricsCollector;
use crate::snapshot::MetricKind;
use crate::unit::Unit;

/// Cached `metrics` keys per kind. Past this, a new key is looked up in the
/// collector on every call instead of being cached: several keys can map to
/// one series (`a.b`, `a-b`, `a_b`), so the collector's cardinality limits
/// alone would not bound the cache.
const CACHE_LIMIT: usize = 65_536;

/// Independent locks, so that threads registering different keys rarely
/// share one lock word.
const SHARDS: usize = 16;

/// A [`metrics::Recorder`] that records into a vitals [`MetricsCollector`].
///
/// Each distinct `metrics::Key` is translated (see the [module](self) for
/// the name rules) and looked up in the collector once; the vitals handle is
/// cached and handed out inside the `metrics` handle, so every later
/// increment, set or record is the vitals atomic operation.
///
/// ```
/// use vitals::bridge::VitalsRecorder;
///
/// let metrics = vitals::MetricsCollector::new();
/// let recorder = VitalsRecorder::new(metrics.clone());
/// let held = metrics::with_local_recorder(&recorder, || metrics::counter!("ticks_total"));
/// held.increment(2);
/// held.absolute(10);
/// assert_eq!(metrics.snapshot().counter("ticks_total", &[]), Some(10.0));
/// ```
pub struct VitalsRecorder {
    collector: MetricsCollector,
    counters: HandleCache<Counter>,
    gauges: HandleCache<Gauge>,
    histograms: HandleCache<Histogram>,
}

impl VitalsRecorder {
    /// A recorder writing into `collector` (a clone shares its series).
    ///
    /// ```
    /// let recorder = vitals::bridge::VitalsRecorder::new(vitals::global().clone());
    /// metrics::with_local_recorder(&recorder, || metrics::counter!("jobs_total").increment(3));
    /// assert_eq!(vitals::global().snapshot().counter("jobs_total", &[]), Some(3.0));
    /// ```
    pub fn new(collector: MetricsCollector) -> Self {
        VitalsRecorder {
            collector,
            counters: HandleCache::default(),
            gauges: HandleCache::default(),
            histograms: HandleCache::default(),
        }
    }

    /// The collector this recorder writes into.
    ///
    /// ```
    /// let recorder = vitals::bridge::VitalsRecorder::new(vitals::MetricsCollector::new());
    /// metrics::with_local_recorder(&recorder, || metrics::gauge!("depth").set(4.0));
    /// assert_eq!(recorder.collector().snapshot().gauge("depth", &[]), Some(4.0));
    /// ```
    pub fn collector(&self) -> &MetricsCollector {
        &self.collector
    }

    /// The vitals handle for `key`, its name and labels translated, and
    /// whether it belongs to a real series (and so may be cached). Only on a
    /// cache miss, so the allocations here are off the hot path.
    #[cold]
    fn series<H>(&self, key: &Key, try_get: Lookup<Result<H, Error>>, get: Lookup<H>) -> (H, bool) {
        let name = metric_name(key.name());
        let keys: Vec<(Cow<'_, str>, &str)> = key
            .labels()
            .map(|label| (label_name(label.key()), label.value()))
            .collect();
        let labels: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        match try_get(&self.collector, &name, &labels) {
            Ok(handle) => (handle, true),
            // The infallible lookup counts the error (or sends the value to
            // the overflow series) and hands back a handle that still works.
            Err(_) => (get(&self.collector, &name, &labels), false),
        }
    }

    fn describe(&self, kind: MetricKind, key: &KeyName, unit: Option<metrics::Unit>, help: &str) {
        let unit = unit.and_then(unit_of);
        self.collector
            .describe(kind, &metric_name(key.as_str()), unit, help);
    }
}

impl std::fmt::Debug for VitalsRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VitalsRecorder")
            .field(
                "cached_counters",
                &self.counters.len.load(Ordering::Relaxed),
            )
            .field("cached_gauges", &self.gauges.len.load(Ordering::Relaxed))
            .field(
                "cached_histograms",
                &self.histograms.len.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl Recorder for VitalsRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<metrics::Unit>, help: SharedString) {
        self.describe(MetricKind::Counter, &key, unit, &help);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<metrics::Unit>, help: SharedString) {
        self.describe(MetricKind::Gauge, &key, unit, &help);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<metrics::Unit>, help: SharedString) {
        self.describe(MetricKind::Histogram, &key, unit, &help);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        // Hot path: `metrics` calls this on every `counter!`.
        let handle = self.counters.get_or_insert(key, || {
            self.series(
                key,
                MetricsCollector::try_counter,
                MetricsCollector::counter,
            )
        });
        metrics::Counter::from_arc(handle)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        // Hot path: `metrics` calls this on every `gauge!`.
        let handle = self.gauges.get_or_insert(key, || {
            self.series(key, MetricsCollector::try_gauge, MetricsCollector::gauge)
        });
        metrics::Gauge::from_arc(handle)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        // Hot path: `metrics` calls this on every `histogram!`.
        let handle = self.histograms.get_or_insert(key, || {
            self.series(
                key,
                MetricsCollector::try_histogram,
                MetricsCollector::histogram,
            )
        });
        metrics::Histogram::from_arc(handle)
    }
}

/// Makes a [`VitalsRecorder`] over `collector` the process-wide `metrics`
/// recorder, for the rest of the program.
///
/// # Errors
///
/// [`Error::RecorderAlreadyInstalled`] if any `metrics` recorder (this one
/// or another crate's) was installed before; the first one stays.
///
/// ```
/// vitals::bridge::install(vitals::global().clone()).unwrap();
/// metrics::counter!("logins_total").increment(1);
/// assert_eq!(vitals::global().snapshot().counter("logins_total", &[]), Some(1.0));
///
/// let again = vitals::bridge::install(vitals::MetricsCollector::new());
/// assert_eq!(again, Err(vitals::Error::RecorderAlreadyInstalled));
/// ```
pub fn install(collector: MetricsCollector) -> Result<(), Error> {
    metrics::set_global_recorder(VitalsRecorder::new(collector))
        .map_err(|_| Error::RecorderAlreadyInstalled)
}

/// The vitals metric name for a `metrics` name: each character outside
/// `[a-zA-Z0-9_:]` becomes `_`, and a leading digit gets a `_` in front.
/// Borrows when nothing changes. An empty name stays empty (and is then
/// rejected and counted by the collector).
///
/// ```
/// use vitals::bridge::metric_name;
///
/// assert_eq!(metric_name("http.server.requests"), "http_server_requests");
/// assert_eq!(metric_name("cache-hits total"), "cache_hits_total");
/// assert_eq!(metric_name("2xx"), "_2xx");
/// assert_eq!(metric_name("ns:ok_total"), "ns:ok_total");
/// assert_eq!(metric_name(""), "_");
/// ```
pub fn metric_name(name: &str) -> Cow<'_, str> {
    translate(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The vitals label name for a `metrics` label key: as [`metric_name`], but
/// `:` is not allowed in label names either. A key that itself starts with
/// the reserved `__` is not rewritten: such a label is rejected and counted
/// by the collector. A key whose translation alone would start with `__`
/// gets an `x` in front.
///
/// ```
/// use vitals::bridge::label_name;
///
/// assert_eq!(label_name("http.method"), "http_method");
/// assert_eq!(label_name("a:b"), "a_b");
/// assert_eq!(label_name(".:host"), "x__host");
/// ```
pub fn label_name(key: &str) -> Cow<'_, str> {
    let name = translate(key, |c| c.is_ascii_alphanumeric() || c == '_');
    if name.starts_with("__") && !key.starts_with("__") {
        return Cow::Owned(format!("x{name}"));
    }
    name
}

fn translate(s: &str, allowed: impl Fn(char) -> bool) -> Cow<'_, str> {
    if s.is_empty() {
        // A name needs a character: the empty name becomes `_`.
        return Cow::Borrowed("_");
    }
    let leading_digit = s.starts_with(|c: char| c.is_ascii_digit());
    if !leading_digit && s.chars().all(&allowed) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 1);
    if leading_digit {
        out.push('_');
    }
    out.extend(s.chars().map(|c| if allowed(c) { c } else { '_' }));
    Cow::Owned(out)
}

/// The vitals unit word for a `metrics` unit; `None` for a plain count.
fn unit_word(unit: metrics::Unit) -> Option<&'static str> {
    match unit {
        metrics::Unit::Count => None,
        other => Some(other.as_str()),
    }
}

/// The vitals unit for a `metrics` unit.
fn unit_of(unit: metrics::Unit) -> Option<Unit> {
    unit_word(unit).map(Unit::from_word)
}

// The vitals handles are the `metrics` handle implementations, so a
// `metrics::Counter` from the bridge calls straight into the vitals atomic.

impl CounterFn for Counter {
    fn increment(&self, value: u64) {
        Counter::increment(self, value);
    }

    fn absolute(&self, value: u64) {
        Counter::absolute(self, value);
    }
}

impl GaugeFn for Gauge {
    fn increment(&self, value: f64) {
        Gauge::increment(self, value);
    }

    fn decrement(&self, value: f64) {
        Gauge::decrement(self, value);
    }

    fn set(&self, value: f64) {
        Gauge::set(self, value);
    }
}

impl HistogramFn for Histogram {
    fn record(&self, value: f64) {
        Histogram::record(self, value);
    }
}

/// A `MetricsCollector` method taking a name and labels.
type Lookup<T> = fn(&MetricsCollector, &str, &[(&str, &str)]) -> T;

type KeyMap<H> = HashMap<Key, Arc<H>, BuildHasherDefault<crate::key::PrehashedHasher>>;

/// `metrics::Key` → vitals handle, sharded by the key's hash.
struct HandleCache<H> {
    shards: [RwLock<KeyMap<H>>; SHARDS],
    len: AtomicUsize,
}

impl<H> Default for HandleCache<H> {
    fn default() -> Self {
        HandleCache {
            shards: std::array::from_fn(|_| RwLock::new(KeyMap::default())),
            len: AtomicUsize::new(0),
        }
    }
}

impl<H> HandleCache<H> {
    /// The cached handle for `key`, or the one `create` makes. `create`
    /// says whether its handle may be cached: only handles of real series
    /// are, so that (as with vitals' own macros) a bad key or a label set
    /// past the cardinality limit is counted on every call, and a flood of
    /// such keys takes no memory here.
    #[inline]
    fn get_or_insert(&self, key: &Key, create: impl FnOnce() -> (H, bool)) -> Arc<H> {
        // Middle bits pick the shard: the map uses the low bits for its
        // index and the top seven for its tags, which should stay varied.
        let shard = &self.shards[(key.get_hash() >> 32) as usize % SHARDS];
        if let Some(handle) = shard.read().get(key) {
            return Arc::clone(handle);
        }
        self.insert(shard, key, create)
    }

    #[cold]
    #[inline(never)]
    fn insert(
        &self,
        shard: &RwLock<KeyMap<H>>,
        key: &Key,
        create: impl FnOnce() -> (H, bool),
    ) -> Arc<H> {
        // Created outside the write lock: the collector takes its own locks
        // and may report an error, and a racing thread creating the same
        // handle gets the same vitals series anyway.
        let (handle, cacheable) = create();
        let handle = Arc::new(handle);
        if !cacheable || self.len.load(Ordering::Relaxed) >= CACHE_LIMIT {
            return handle;
        }
        let mut map = shard.write();
        if let Some(existing) = map.get(key) {
            return Arc::clone(existing);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
        map.insert(key.clone(), Arc::clone(&handle));
        handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_translate_to_prometheus_rules() {
        assert!(matches!(metric_name("ok_name:x"), Cow::Borrowed(_)));
        assert_eq!(metric_name("a.b-c d/e"), "a_b_c_d_e");
        assert_eq!(metric_name("é"), "_");
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(metric_name(""), "_");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("é:"), "x__");
        assert_eq!(label_name("x:y.z"), "x_y_z");
        assert_eq!(label_name("1st"), "_1st");
    }

    #[test]
    fn units_keep_their_word_and_count_has_none() {
        assert_eq!(unit_word(metrics::Unit::Seconds), Some("seconds"));
        assert_eq!(unit_word(metrics::Unit::Bytes), Some("bytes"));
        assert_eq!(unit_word(metrics::Unit::Milliseconds), Some("milliseconds"));
        assert_eq!(unit_word(metrics::Unit::Count), None);
        for unit in [
            metrics::Unit::Percent,
            metrics::Unit::Microseconds,
            metrics::Unit::Nanoseconds,
            metrics::Unit::Tebibytes,
            metrics::Unit::Gibibytes,
            metrics::Unit::Mebibytes,
            metrics::Unit::Kibibytes,
            metrics::Unit::TerabitsPerSecond,
            metrics::Unit::GigabitsPerSecond,
            metrics::Unit::MegabitsPerSecond,
            metrics::Unit::KilobitsPerSecond,
            metrics::Unit::BitsPerSecond,
            metrics::Unit::CountPerSecond,
        ] {
            let word = unit_word(unit).unwrap();
            assert!(word.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn cache_stops_growing_at_its_limit_but_keeps_answering() {
        let cache: HandleCache<u32> = HandleCache::default();
        cache.len.store(CACHE_LIMIT, Ordering::Relaxed);
        let key = Key::from_name("k");
        assert_eq!(*cache.get_or_insert(&key, || (7, true)), 7);
        assert_eq!(
            *cache.get_or_insert(&key, || (8, true)),
            8,
            "not cached past the limit"
        );
        cache.len.store(0, Ordering::Relaxed);
        assert_eq!(*cache.get_or_insert(&key, || (9, false)), 9);
        assert_eq!(
            *cache.get_or_insert(&key, || (10, true)),
            10,
            "uncacheable not kept"
        );
        assert_eq!(
            *cache.get_or_insert(&key, || (11, true)),
            10,
            "cached below the limit"
        );
        assert_eq!(cache.len.load(Ordering::Relaxed), 1);
    }
}
