//! The cache plug-in: hits, misses, evictions, size and hit ratio per named
//! cache.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::named::{Named, Slot};
use super::DEFAULT_WINDOW;
use super::{describe_all, Description};
use crate::clock::Clock;
use crate::error::Error;
use crate::metrics::counter::Counter;
use crate::metrics::gauge::Gauge;
use crate::plugin::{Collector, Samples};
use crate::registry::rate::Trailing;
use crate::registry::{MetricsCollector, WeakCollector};
use crate::snapshot::MetricKind;
use crate::unit::Unit;

const HITS: &str = "cache_hits_total";
const MISSES: &str = "cache_misses_total";
const EVICTIONS: &str = "cache_evictions_total";
const SIZE: &str = "cache_size_bytes";
const ENTRIES: &str = "cache_entries";

/// The cache plug-in (registered name `cache`): one [`Cache`] handle per
/// named cache, over core metrics, plus hit ratios at collection.
///
/// Core series: `cache_hits_total{cache}`, `cache_misses_total{cache}`,
/// `cache_evictions_total{cache}`, `cache_size_bytes{cache}`,
/// `cache_entries{cache}`. Samples: `cache_hit_ratio{cache}` over the
/// window, `cache_lifetime_hit_ratio{cache}`, `cache_requests_per_second{cache}`
/// (hits + misses). A ratio is left out while there have been no lookups.
///
/// ```
/// use vitals::collectors::CacheCollector;
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let caches = CacheCollector::new(&metrics);
/// metrics.register(caches.clone()).unwrap();
///
/// let users = caches.cache("users");
/// users.hit();
/// users.hit();
/// users.hit();
/// users.miss();
/// users.set_entries(120);
///
/// let snap = metrics.snapshot();
/// assert_eq!(snap.gauge("cache_lifetime_hit_ratio", &[("cache", "users")]), Some(0.75));
/// assert_eq!(snap.gauge("cache_entries", &[("cache", "users")]), Some(120.0));
/// ```
#[derive(Clone)]
pub struct CacheCollector {
    inner: Arc<CacheSet>,
}

struct CacheSet {
    registry: WeakCollector,
    clock: Arc<dyn Clock>,
    window: Duration,
    caches: Named<Cache>,
}

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheCollector")
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

impl CacheCollector {
    /// A cache plug-in writing to `metrics`, with ratios over the last
    /// [`DEFAULT_WINDOW`](super::DEFAULT_WINDOW).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let caches = vitals::collectors::CacheCollector::new(&metrics);
    /// metrics.register(caches.clone()).unwrap();
    /// caches.hit("pages");
    /// caches.miss("pages");
    /// assert_eq!(metrics.snapshot().gauge("cache_hit_ratio", &[("cache", "pages")]), Some(0.5));
    /// ```
    pub fn new(metrics: &MetricsCollector) -> Self {
        Self::with_window(metrics, DEFAULT_WINDOW)
    }

    /// As [`new`](Self::new), with ratios over `window` (at least 1 s).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::collectors::CacheCollector;
    /// use vitals::{ManualClock, MetricsCollector};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    /// let caches = CacheCollector::with_window(&metrics, Duration::from_secs(10));
    /// metrics.register(caches.clone()).unwrap();
    /// let pages = caches.cache("pages");
    ///
    /// pages.miss();
    /// clock.advance(Duration::from_secs(5));
    /// metrics.snapshot(); // collections mark where windows start
    /// clock.advance(Duration::from_secs(10));
    /// pages.hit();
    /// let snap = metrics.snapshot();
    /// let labels = [("cache", "pages")];
    /// assert_eq!(snap.gauge("cache_hit_ratio", &labels), Some(1.0)); // the last 10 s
    /// assert_eq!(snap.gauge("cache_lifetime_hit_ratio", &labels), Some(0.5));
    /// ```
    pub fn with_window(metrics: &MetricsCollector, window: Duration) -> Self {
        describe(metrics);
        CacheCollector {
            inner: Arc::new(CacheSet {
                registry: metrics.downgrade(),
                clock: Arc::clone(metrics.clock()),
                window: window.max(Duration::from_secs(1)),
                caches: Named::default(),
            }),
        }
    }

    /// The handle of cache `name`, created on first use: keep it, and a hit
    /// costs one counter increment.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let caches = vitals::collectors::CacheCollector::new(&metrics);
    /// assert_eq!(caches.cache("pages").name(), "pages");
    /// ```
    pub fn cache(&self, name: &str) -> Cache {
        self.with_cache(name, Cache::clone)
    }

    /// Counts a hit in cache `name` (one lookup, then the increment).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let caches = vitals::collectors::CacheCollector::new(&metrics);
    /// caches.hit("pages");
    /// assert_eq!(metrics.snapshot().counter("cache_hits_total", &[("cache", "pages")]), Some(1.0));
    /// ```
    #[inline]
    pub fn hit(&self, name: &str) {
        self.with_cache(name, Cache::hit);
    }

    /// Counts a miss in cache `name`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let caches = vitals::collectors::CacheCollector::new(&metrics);
    /// caches.miss("pages");
    /// assert_eq!(metrics.snapshot().counter("cache_misses_total", &[("cache", "pages")]), Some(1.0));
    /// ```
    #[inline]
    pub fn miss(&self, name: &str) {
        self.with_cache(name, Cache::miss);
    }

    #[inline]
    fn with_cache<R>(&self, name: &str, f: impl FnOnce(&Cache) -> R) -> R {
        self.inner
            .caches
            .with(name, |n| self.new_cache(slot(n)), || self.overflow(), f)
    }

    fn overflow(&self) -> Cache {
        self.new_cache(Slot::Overflow)
            .unwrap_or_else(|| Cache::detached("", &self.inner))
    }

    /// A new cache, or `None` past the cardinality limit (the overflow slot
    /// never is).
    fn new_cache(&self, slot: Slot<'_>) -> Option<Cache> {
        let name = match slot {
            Slot::Name { value, .. } => value,
            Slot::Overflow => "",
        };
        let Some(metrics) = self.inner.registry.upgrade() else {
            return Some(Cache::detached(name, &self.inner));
        };
        let hits = slot.first_counter(&metrics, HITS, &[])?;
        Some(Cache {
            inner: Arc::new(CacheInner {
                name: name.into(),
                overflow: matches!(slot, Slot::Overflow),
                hits,
                misses: slot.counter(&metrics, MISSES, &[]),
                evictions: slot.counter(&metrics, EVICTIONS, &[]),
                size: slot.gauge(&metrics, SIZE),
                entries: slot.gauge(&metrics, ENTRIES),
                trailing: Mutex::new(Trailing::new(
                    self.inner.window,
                    self.inner.clock.monotonic(),
                )),
            }),
        })
    }
}

fn describe(metrics: &MetricsCollector) {
    for (kind, name, unit, help) in [
        (
            MetricKind::Counter,
            HITS,
            None,
            "Lookups that found their entry, by cache.",
        ),
        (
            MetricKind::Counter,
            MISSES,
            None,
            "Lookups that did not, by cache.",
        ),
        (
            MetricKind::Counter,
            EVICTIONS,
            None,
            "Entries evicted, by cache.",
        ),
        (
            MetricKind::Gauge,
            SIZE,
            Some(Unit::Bytes),
            "Size of the cached data, by cache.",
        ),
        (MetricKind::Gauge, ENTRIES, None, "Entries held, by cache."),
    ] {
        metrics.describe(kind, name, unit, help);
    }
}

impl Collector for CacheCollector {
    fn name(&self) -> &str {
        "cache"
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        describe_all(out, &DESCRIPTIONS)?;
        let now = self.inner.clock.monotonic();
        for cache in self.inner.caches.list() {
            let c = &cache.inner;
            let life = [c.hits.value(), c.misses.value()];
            let recent = c.trailing.lock().update(now, life);
            let labels = [slot_of(&c.name, c.overflow).label()];
            if let Some(r) = hit_ratio(recent.by) {
                out.gauge("cache_hit_ratio", &labels, r)?;
            }
            if let Some(r) = hit_ratio(life) {
                out.gauge("cache_lifetime_hit_ratio", &labels, r)?;
            }
            if !recent.span.is_zero() {
                let lookups = recent.by[0].saturating_add(recent.by[1]);
                out.gauge(
                    "cache_requests_per_second",
                    &labels,
                    lookups as f64 / recent.span.as_secs_f64(),
                )?;
            }
        }
        Ok(())
    }
}

/// The plug-in's gauges, their units and help texts.
const DESCRIPTIONS: [Description; 3] = [
    (
        "cache_hit_ratio",
        Some(Unit::Ratio),
        "Share of lookups that hit over the trailing window.",
    ),
    (
        "cache_lifetime_hit_ratio",
        Some(Unit::Ratio),
        "Share of lookups that hit since the start.",
    ),
    (
        "cache_requests_per_second",
        None,
        "Lookups per second over the trailing window.",
    ),
];

/// The slot of cache `name`.
fn slot(name: &str) -> Slot<'_> {
    Slot::Name {
        key: "cache",
        value: name,
    }
}

/// The slot of a cache handle.
fn slot_of(name: &str, overflow: bool) -> Slot<'_> {
    if overflow {
        Slot::Overflow
    } else {
        slot(name)
    }
}

fn hit_ratio([hits, misses]: [u64; 2]) -> Option<f64> {
    let lookups = hits.saturating_add(misses);
    (lookups > 0).then(|| hits as f64 / lookups as f64)
}

/// One cache's pre-resolved handles. `hit` and `miss` are one counter
/// increment each: no lock, no allocation. Cheap to clone.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let sessions = vitals::collectors::CacheCollector::new(&metrics).cache("sessions");
/// sessions.miss();
/// sessions.evicted(3);
/// sessions.set_size_bytes(65_536);
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("cache_evictions_total", &[("cache", "sessions")]), Some(3.0));
/// assert_eq!(snap.gauge("cache_size_bytes", &[("cache", "sessions")]), Some(65536.0));
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    name: Box<str>,
    /// The shared handle of the names past the cardinality limit.
    overflow: bool,
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    size: Gauge,
    entries: Gauge,
    trailing: Mutex<Trailing<2>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Cache {
    fn detached(name: &str, set: &CacheSet) -> Self {
        Cache {
            inner: Arc::new(CacheInner {
                name: name.into(),
                overflow: name.is_empty(),
                hits: Counter::detached(),
                misses: Counter::detached(),
                evictions: Counter::detached(),
                size: Gauge::detached(),
                entries: Gauge::detached(),
                trailing: Mutex::new(Trailing::new(set.window, Duration::ZERO)),
            }),
        }
    }

    /// The cache label value (empty for the shared overflow cache).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(vitals::collectors::CacheCollector::new(&metrics).cache("c").name(), "c");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True for the handle the names past the cardinality limit share: it
    /// records into each metric's `{vitals_overflow="true"}` series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::builder().cardinality_limit(1).build();
    /// let caches = vitals::collectors::CacheCollector::new(&metrics);
    /// assert!(!caches.cache("users").is_overflow());
    /// assert!(caches.cache("pages").is_overflow());
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.inner.overflow
    }

    /// Counts a lookup that found its entry.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::collectors::CacheCollector::new(&metrics).cache("c").hit();
    /// assert_eq!(metrics.snapshot().counter("cache_hits_total", &[("cache", "c")]), Some(1.0));
    /// ```
    #[inline]
    pub fn hit(&self) {
        // Hot path: one counter increment.
        self.inner.hits.inc();
    }

    /// Counts a lookup that did not.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::collectors::CacheCollector::new(&metrics).cache("c").miss();
    /// assert_eq!(metrics.snapshot().counter("cache_misses_total", &[("cache", "c")]), Some(1.0));
    /// ```
    #[inline]
    pub fn miss(&self) {
        self.inner.misses.inc();
    }

    /// Counts `n` evicted entries.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::collectors::CacheCollector::new(&metrics).cache("c").evicted(2);
    /// assert_eq!(metrics.snapshot().counter("cache_evictions_total", &[("cache", "c")]), Some(2.0));
    /// ```
    #[inline]
    pub fn evicted(&self, n: u64) {
        self.inner.evictions.increment(n);
    }

    /// Sets the size of the cached data in bytes.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::collectors::CacheCollector::new(&metrics).cache("c").set_size_bytes(10);
    /// assert_eq!(metrics.snapshot().gauge("cache_size_bytes", &[("cache", "c")]), Some(10.0));
    /// ```
    pub fn set_size_bytes(&self, bytes: u64) {
        self.inner.size.set(bytes as f64);
    }

    /// Sets the number of entries held.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::collectors::CacheCollector::new(&metrics).cache("c").set_entries(4);
    /// assert_eq!(metrics.snapshot().gauge("cache_entries", &[("cache", "c")]), Some(4.0));
    /// ```
    pub fn set_entries(&self, entries: u64) {
        self.inner.entries.set(entries as f64);
    }
}
