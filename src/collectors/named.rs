//! Per-name handles of the event plug-ins (endpoints, caches, stages,
//! dependencies), bounded by the core's cardinality limit.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

use parking_lot::RwLock;

use crate::error::Error;
use crate::key::NameHasher;
use crate::metrics::histogram::Histogram;
use crate::registry::MetricsCollector;

/// The label value under which an event plug-in records the names that
/// came after its metrics reached the cardinality limit (see
/// [`DEFAULT_CARDINALITY_LIMIT`](crate::registry::DEFAULT_CARDINALITY_LIMIT)).
///
/// ```
/// use vitals::collectors::{CacheCollector, OVERFLOW_NAME};
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::builder().cardinality_limit(1).build();
/// let caches = CacheCollector::new(&metrics);
/// assert_eq!(caches.cache("first").name(), "first");
/// assert_eq!(caches.cache("second").name(), OVERFLOW_NAME);
/// ```
pub const OVERFLOW_NAME: &str = "__overflow__";

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

/// The histogram for one name of an event plug-in. With `overflow` (the
/// plug-in's overflow name) it never fails; otherwise `None` says the
/// metric is at its cardinality limit, so the caller moves the name to its
/// overflow handle. Any other error is counted on the collector and gives a
/// detached handle.
pub(crate) fn bounded_histogram(
    metrics: &MetricsCollector,
    name: &str,
    labels: &[(&str, &str)],
    overflow: bool,
) -> Option<Histogram> {
    if overflow {
        return Some(metrics.histogram(name, labels));
    }
    match metrics.try_histogram(name, labels) {
        Ok(h) => Some(h),
        Err(Error::CardinalityLimit { .. }) => None,
        Err(err) => {
            metrics.report_error(err);
            Some(Histogram::detached())
        }
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
