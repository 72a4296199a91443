//! Families and series: get-or-create by name and labels, limits, the
//! overflow series, and the handle types the registry hands out.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::lifecycle::{Activity, Base, HistogramBase, Life};
use super::snapshot::histogram_activity;
use super::*;
use crate::key::{
    hash_labels, labels_match, validate_labels, validate_metric_name, Labels, PrehashedHasher,
};
use crate::metrics::counter::CounterCore;
use crate::metrics::gauge::GaugeCore;
use crate::metrics::histogram::HistogramCore;
use crate::metrics::Storage;

/// All series of one metric name.
#[doc(hidden)]
pub struct Family {
    pub(super) name: Arc<str>,
    pub(super) kind: MetricKind,
    pub(super) limit: usize,
    pub(super) meta: Mutex<Meta>,
    pub(super) series: RwLock<SeriesSet>,
    pub(super) overflow: OnceLock<Metric>,
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
pub(super) struct Meta {
    pub(super) help: Option<String>,
    pub(super) unit: Option<String>,
    pub(super) window: Option<Window>,
    pub(super) buckets: Option<Arc<[f64]>>,
}

/// Series in creation order, indexed by label hash. Colliding hashes chain
/// through `Series::next`, so the index stores one `usize` per hash.
#[derive(Default)]
pub(super) struct SeriesSet {
    pub(super) index: HashMap<u64, usize, BuildHasherDefault<PrehashedHasher>>,
    pub(super) list: Vec<Series>,
    /// Series counted against the limit (the overflow series is not).
    pub(super) counted: usize,
}

pub(super) struct Series {
    pub(super) labels: Labels,
    /// The label hash (the index's key), kept to rebuild the index.
    pub(super) hash: u64,
    pub(super) metric: Metric,
    pub(super) next: Option<usize>,
    /// The family's overflow series (not in the index, never counted).
    pub(super) overflow: bool,
    /// Rate marks and lifecycle state.
    pub(super) life: Mutex<Life>,
}

/// A series handle of any kind (public, unreachable from outside, only so
/// that [`Handle`] can name it).
#[derive(Clone, Debug)]
pub enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// The three handle types ([`Counter`], [`Gauge`], [`Histogram`]), so that
/// the registry and the macros are written once for all of them. Public
/// (and hidden) only so that the macros' call sites can name it.
#[doc(hidden)]
pub trait Handle: Clone + Sized {
    /// The kind of metric the handle updates.
    const KIND: MetricKind;
    /// The handle inside a series of any kind, if it is of this kind.
    fn from_metric(metric: Metric) -> Option<Self>;
    /// A handle that records nowhere.
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
pub(super) fn reserved_labels(kind: MetricKind) -> &'static [&'static str] {
    match kind {
        MetricKind::Histogram => &[OVERFLOW_LABEL, "quantile", "le"],
        _ => &[OVERFLOW_LABEL],
    }
}

/// The handle inside `metric`. A family holds only its own kind and callers
/// ask by kind, so a mismatch cannot happen; if it ever did, it is reported
/// as one rather than a panic.
pub(super) fn extract<H: Handle>(metric: Metric) -> Result<H, Error> {
    let found = metric.kind();
    H::from_metric(metric).ok_or_else(|| Error::KindMismatch {
        name: String::from("(series)"),
        existing: found.as_str(),
        requested: H::KIND.as_str(),
    })
}

impl Metric {
    /// True when a handle to this series may exist outside the registry.
    pub(super) fn shared(&self) -> bool {
        match self {
            Metric::Counter(c) => c.shared(),
            Metric::Gauge(g) => g.shared(),
            Metric::Histogram(h) => h.shared(),
        }
    }

    /// The series' activity signature and its raw state now.
    pub(super) fn observe(&self, now: Duration) -> (Activity, Base) {
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

    pub(super) fn kind(&self) -> MetricKind {
        match self {
            Metric::Counter(_) => MetricKind::Counter,
            Metric::Gauge(_) => MetricKind::Gauge,
            Metric::Histogram(_) => MetricKind::Histogram,
        }
    }
}

impl Inner {
    pub(super) fn new_family(&self, name: &str, kind: MetricKind) -> Arc<Family> {
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
    pub(super) fn family(
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
        // A plug-in's series hold this name (lock order: families, then
        // observed, as when a snapshot adds plug-in series).
        if let Some(holder) = self.observed.lock().holder(name) {
            return Err(Error::NameClash {
                name: name.to_owned(),
                holder,
                newcomer: format!("the program (as a {})", kind.as_str()),
            });
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

    pub(super) fn metric(
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
    pub(super) fn find(&self, family: &Family, labels: &[(&str, &str)]) -> Option<Metric> {
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
    pub(super) fn in_family(
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
    pub(super) fn create(
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

    pub(super) fn new_metric(&self, family: &Family) -> Metric {
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

    pub(super) fn new_series(
        &self,
        labels: Labels,
        hash: u64,
        metric: Metric,
        next: Option<usize>,
    ) -> Series {
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
    pub(super) fn overflow_series(&self, family: &Family) -> Metric {
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
}

pub(super) fn check_kind(family: &Family, kind: MetricKind) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freeing_removed_series_rebuilds_the_index_and_the_count() {
        let metrics = MetricsCollector::new();
        let keys: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        for k in &keys {
            metrics.counter("c_total", &[("k", k)]).inc();
        }
        let removed = metrics.retain(|_, labels| labels.get("k").is_some_and(|k| k.len() != 2));
        assert_eq!(removed, 90);
        let family = Arc::clone(metrics.inner.families.read().get("c_total").unwrap());
        let set = family.series.read();
        assert_eq!((set.list.len(), set.counted), (110, 110));
        // Every remaining series is found through the rebuilt index, in
        // creation order, and the removed ones are gone.
        for (position, series) in set.list.iter().enumerate() {
            let pairs: Vec<(&str, &str)> = series.labels.iter().collect();
            let found = metrics.inner.find(&family, &pairs).unwrap();
            assert!(
                matches!((&found, &series.metric), (Metric::Counter(a), Metric::Counter(b)) if a.same_series(b))
            );
            assert!(
                position == 0
                    || series.labels.get("k").unwrap().parse::<u32>().unwrap()
                        > set.list[position - 1]
                            .labels
                            .get("k")
                            .unwrap()
                            .parse::<u32>()
                            .unwrap()
            );
        }
        assert!(metrics.inner.find(&family, &[("k", "42")]).is_none());
    }
}
