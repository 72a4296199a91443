//! Per-name handles of the event plug-ins (endpoints, caches, stages,
//! dependencies), bounded by the core's cardinality limit.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

use parking_lot::RwLock;

use crate::error::Error;
use crate::key::NameHasher;
use crate::metrics::counter::Counter;
use crate::metrics::gauge::Gauge;
use crate::metrics::histogram::Histogram;
use crate::registry::{MetricsCollector, OVERFLOW_LABEL};

/// Where one name of an event plug-in records: the series labelled with it,
/// or, for the names that came past the cardinality limit, each metric's
/// overflow series (`{vitals_overflow="true"}`, the core's one convention).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Slot<'a> {
    /// The series with label `key` = `value`.
    Name { key: &'static str, value: &'a str },
    /// The overflow series.
    Overflow,
}

impl<'a> Slot<'a> {
    /// The label the plug-in's own samples for this name carry.
    pub(crate) fn label(self) -> (&'a str, &'a str) {
        match self {
            Slot::Name { key, value } => (key, value),
            Slot::Overflow => (OVERFLOW_LABEL, "true"),
        }
    }

    /// The counter `metric` for this name, with `extra` labels beside it
    /// (dropped for the overflow, whose one series takes everything).
    pub(crate) fn counter(
        self,
        metrics: &MetricsCollector,
        metric: &str,
        extra: &[(&str, &str)],
    ) -> Counter {
        match self {
            Slot::Name { key, value } => {
                let mut labels = Vec::with_capacity(1 + extra.len());
                labels.push((key, value));
                labels.extend_from_slice(extra);
                metrics.counter(metric, &labels)
            }
            Slot::Overflow => metrics.overflow_of(metric),
        }
    }

    /// The gauge `metric` for this name.
    pub(crate) fn gauge(self, metrics: &MetricsCollector, metric: &str) -> Gauge {
        match self {
            Slot::Name { key, value } => metrics.gauge(metric, &[(key, value)]),
            Slot::Overflow => metrics.overflow_of(metric),
        }
    }

    /// The histogram `metric` for a new name: `None` when the metric is at
    /// its cardinality limit, so that the caller moves the name to the
    /// overflow slot. Any other error is counted on the collector and gives
    /// a detached handle.
    pub(crate) fn first_histogram(
        self,
        metrics: &MetricsCollector,
        metric: &str,
    ) -> Option<Histogram> {
        match self {
            Slot::Name { key, value } => match metrics.try_histogram(metric, &[(key, value)]) {
                Ok(h) => Some(h),
                Err(Error::CardinalityLimit { .. }) => None,
                Err(err) => {
                    metrics.report_error(err);
                    Some(Histogram::detached())
                }
            },
            Slot::Overflow => Some(metrics.overflow_of(metric)),
        }
    }

    /// The counter `metric` for a new name, as [`Slot::first_histogram`].
    pub(crate) fn first_counter(
        self,
        metrics: &MetricsCollector,
        metric: &str,
        extra: &[(&str, &str)],
    ) -> Option<Counter> {
        match self {
            Slot::Name { key, value } => {
                let mut labels = vec![(key, value)];
                labels.extend_from_slice(extra);
                match metrics.try_counter(metric, &labels) {
                    Ok(c) => Some(c),
                    Err(Error::CardinalityLimit { .. }) => None,
                    Err(err) => {
                        metrics.report_error(err);
                        Some(Counter::detached())
                    }
                }
            }
            Slot::Overflow => Some(metrics.overflow_of(metric)),
        }
    }
}

/// Handles by name. Lookups take a read lock and do not allocate; a new
/// name takes the write lock once.
pub(crate) struct Named<H> {
    map: RwLock<HashMap<Box<str>, H, BuildHasherDefault<NameHasher>>>,
    overflow: OnceLock<H>,
}

impl<H> Default for Named<H> {
    fn default() -> Self {
        Named {
            map: RwLock::new(HashMap::default()),
            overflow: OnceLock::new(),
        }
    }
}

impl<H: Clone> Named<H> {
    /// Runs `f` on the handle for `name`. A new name gets `create(name)`,
    /// or, when that says the limit is reached (`None`), the shared
    /// overflow handle made by `overflow`.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        name: &str,
        create: impl FnOnce(&str) -> Option<H>,
        overflow: impl FnOnce() -> H,
        f: impl FnOnce(&H) -> R,
    ) -> R {
        if let Some(handle) = self.map.read().get(name) {
            return f(handle);
        }
        let handle = self.insert(name, create, overflow);
        f(&handle)
    }

    #[cold]
    fn insert(
        &self,
        name: &str,
        create: impl FnOnce(&str) -> Option<H>,
        overflow: impl FnOnce() -> H,
    ) -> H {
        let mut map = self.map.write();
        if let Some(handle) = map.get(name) {
            return handle.clone();
        }
        match create(name) {
            Some(handle) => {
                map.insert(name.into(), handle.clone());
                handle
            }
            None => {
                drop(map);
                self.overflow.get_or_init(overflow).clone()
            }
        }
    }

    /// Every handle, by name, then the overflow handle if used.
    pub(crate) fn list(&self) -> Vec<H> {
        let map = self.map.read();
        let mut named: Vec<(&str, &H)> = map.iter().map(|(k, v)| (&**k, v)).collect();
        named.sort_unstable_by_key(|(k, _)| *k);
        let mut out: Vec<H> = named.into_iter().map(|(_, h)| h.clone()).collect();
        out.extend(self.overflow.get().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_limit_share_the_overflow_handle() {
        let named = Named::<String>::default();
        let limit = 2;
        let make = |n: &str| n.to_owned();
        let count = std::cell::Cell::new(0);
        let create = |n: &str| {
            count.set(count.get() + 1);
            (count.get() <= limit).then(|| make(n))
        };
        assert_eq!(named.with("a", create, || "over".into(), Clone::clone), "a");
        assert_eq!(
            named.with("a", |_| None, || "over".into(), Clone::clone),
            "a"
        );
        assert_eq!(named.with("b", create, || "over".into(), Clone::clone), "b");
        assert_eq!(
            named.with("c", create, || "over".into(), Clone::clone),
            "over"
        );
        assert_eq!(named.list(), vec!["a", "b", "over"]);
    }
}
