//! Counters: monotonic `u64` totals.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::exemplar::{exemplar_labels, CounterExemplar, Exemplar};
use super::{move_thread_index, stripe_count, thread_index, Storage};

/// A monotonically increasing `u64` total, such as requests served.
///
/// Uncontended, an increment is one compare-and-swap on one word. The first
/// time two threads collide on it, the counter grows a set of cache-line
/// sized stripes and each thread adds to its own from then on (the idea of
/// Java's `LongAdder`), so a hot counter shared by many threads scales while
/// a quiet one stays 8 bytes of state. Reading sums the stripes.
///
/// Totals wrap at `u64::MAX` (at a billion increments a second, after 584
/// years).
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let requests = metrics.counter("requests_total", &[("method", "GET")]);
/// requests.inc();
/// requests.increment(4);
/// assert_eq!(requests.value(), 5);
/// ```
#[derive(Clone)]
#[must_use = "a handle does nothing until it is used; to register a series without updating it, bind it: `let _ = ...`"]
pub struct Counter {
    core: Storage<CounterCore>,
}

#[derive(Default)]
pub(crate) struct CounterCore {
    base: AtomicU64,
    stripes: OnceLock<Box<[Stripe]>>,
    /// Allocated by the first exemplar; `increment` never looks at it.
    exemplar: OnceLock<Box<CounterExemplar>>,
}

/// One stripe per cache line pair, so that two threads' stripes never share
/// a line (adjacent-line prefetch pulls lines in pairs on x86).
#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

impl Counter {
    /// True when a handle other than this one may exist.
    pub(crate) fn shared(&self) -> bool {
        self.core.shared()
    }

    pub(crate) fn from_storage(core: Storage<CounterCore>) -> Self {
        Counter { core }
    }

    /// A handle attached to no collector: it counts, but nothing reads it.
    /// The macros hand one out when registration fails.
    pub(crate) fn detached() -> Self {
        Counter {
            core: Storage::new(CounterCore::default(), false),
        }
    }

    /// Adds `n` to the total.
    ///
    /// ```
    /// let c = vitals::MetricsCollector::new().counter("bytes_sent_total", &[]);
    /// c.increment(512);
    /// assert_eq!(c.value(), 512);
    /// ```
    #[inline]
    pub fn increment(&self, n: u64) {
        // Hot path: one load to see whether stripes exist, then one CAS.
        let core = &*self.core;
        if let Some(stripes) = core.stripes.get() {
            add_to_stripe(stripes, n);
            return;
        }
        let current = core.base.load(Ordering::Relaxed);
        if core
            .base
            .compare_exchange(
                current,
                current.wrapping_add(n),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            core.contended(n);
        }
    }

    /// Adds `n` with an exemplar: labels that point at an example of what
    /// was counted, such as the trace of a request.
    ///
    /// `n` is added as by [`increment`](Counter::increment) whatever
    /// happens to the exemplar. The counter keeps the latest exemplar, with
    /// `n` as its value; the snapshot carries it
    /// ([`CounterSample::exemplar`](crate::snapshot::CounterSample::exemplar)),
    /// and OpenMetrics text and the protobuf format write it. Storage is
    /// allocated on the first exemplar: [`increment`](Counter::increment)
    /// pays nothing for it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidExemplar`](crate::Error::InvalidExemplar) when a
    /// label name is invalid or repeated, or names and values have more
    /// than [`MAX_EXEMPLAR_LABEL_CHARS`](crate::snapshot::MAX_EXEMPLAR_LABEL_CHARS)
    /// characters together; `n` is added.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let errors = metrics.counter("errors_total", &[]);
    /// errors.increment_with_exemplar(1, &[("trace_id", "a1b2")]).unwrap();
    /// assert!(errors.increment_with_exemplar(1, &[("__reserved", "x")]).is_err());
    /// assert_eq!(errors.value(), 2);
    /// let snap = metrics.snapshot();
    /// let e = snap.counters[0].exemplar.as_ref().unwrap();
    /// assert_eq!(e.labels.get("trace_id"), Some("a1b2"));
    /// ```
    pub fn increment_with_exemplar(
        &self,
        n: u64,
        labels: &[(&str, &str)],
    ) -> Result<(), crate::Error> {
        let checked = exemplar_labels(labels);
        self.increment(n);
        self.core
            .exemplar
            .get_or_init(Box::default)
            .offer(checked?, n as f64);
        Ok(())
    }

    pub(crate) fn exemplar(&self) -> Option<Exemplar> {
        self.core.exemplar()
    }

    /// Adds one.
    ///
    /// ```
    /// let c = vitals::MetricsCollector::new().counter("jobs_total", &[]);
    /// c.inc();
    /// assert_eq!(c.value(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.increment(1);
    }

    /// Raises the total to `value` if it is lower; never lowers it.
    ///
    /// For mirroring a total kept elsewhere (bytes read from `/proc`, a
    /// library's own count). A counter must not go backwards, so a smaller
    /// value is ignored.
    ///
    /// ```
    /// let c = vitals::MetricsCollector::new().counter("disk_reads_total", &[]);
    /// c.absolute(100);
    /// c.absolute(40); // ignored: counters never go backwards
    /// assert_eq!(c.value(), 100);
    /// ```
    pub fn absolute(&self, value: u64) {
        let core = &*self.core;
        let _ = core
            .base
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |base| {
                let others = core.stripe_sum();
                let total = base.wrapping_add(others);
                (total < value).then(|| value.wrapping_sub(others))
            });
    }

    /// The current total.
    ///
    /// ```
    /// let c = vitals::MetricsCollector::new().counter("events_total", &[]);
    /// assert_eq!(c.value(), 0);
    /// ```
    pub fn value(&self) -> u64 {
        self.core.value()
    }

    /// True when both handles update the same series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let a = metrics.counter("hits_total", &[]);
    /// assert!(a.same_series(&metrics.counter("hits_total", &[])));
    /// ```
    pub fn same_series(&self, other: &Counter) -> bool {
        self.core.same(&other.core)
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value())
            .finish()
    }
}

impl CounterCore {
    pub(crate) fn exemplar(&self) -> Option<Exemplar> {
        self.exemplar.get().and_then(|e| e.read())
    }

    pub(crate) fn value(&self) -> u64 {
        self.base
            .load(Ordering::Relaxed)
            .wrapping_add(self.stripe_sum())
    }

    fn stripe_sum(&self) -> u64 {
        self.stripes.get().map_or(0, |stripes| {
            stripes
                .iter()
                .fold(0u64, |acc, s| acc.wrapping_add(s.0.load(Ordering::Relaxed)))
        })
    }

    /// Another thread changed the base between our load and CAS: from now on
    /// every thread adds to a stripe.
    #[cold]
    #[inline(never)]
    fn contended(&self, n: u64) {
        let stripes = self.stripes.get_or_init(|| {
            (0..stripe_count(2, 64))
                .map(|_| Stripe::default())
                .collect()
        });
        add_to_stripe(stripes, n);
    }
}

#[inline]
fn add_to_stripe(stripes: &[Stripe], n: u64) {
    let stripe = &stripes[thread_index() & (stripes.len() - 1)].0;
    let current = stripe.load(Ordering::Relaxed);
    if stripe
        .compare_exchange(
            current,
            current.wrapping_add(n),
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .is_err()
    {
        // Two threads share this stripe: count, then move this thread on.
        stripe.fetch_add(n, Ordering::Relaxed);
        move_thread_index();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn increments_add_up_on_one_thread() {
        let c = Counter::detached();
        for _ in 0..1000 {
            c.inc();
        }
        c.increment(24);
        assert_eq!(c.value(), 1024);
        assert!(c.core.stripes.get().is_none(), "no contention, no stripes");
    }

    #[test]
    fn contention_grows_stripes_and_keeps_exact_totals() {
        let c = Counter::detached();
        c.core.contended(5); // as if a collision had happened
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        c.inc();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.value(), 400_005);
        assert!(c.core.stripes.get().is_some());
    }

    #[test]
    fn absolute_only_raises_including_with_stripes() {
        let c = Counter::detached();
        c.absolute(10);
        assert_eq!(c.value(), 10);
        c.core.contended(3);
        assert_eq!(c.value(), 13);
        c.absolute(12);
        assert_eq!(c.value(), 13);
        c.absolute(50);
        assert_eq!(c.value(), 50);
        c.inc();
        assert_eq!(c.value(), 51);
    }

    #[test]
    fn concurrent_reads_never_go_backwards() {
        let c = Arc::new(Counter::detached());
        let writer = {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    c.inc();
                }
            })
        };
        let mut last = 0;
        while !writer.is_finished() {
            c.inc();
            let v = c.value();
            assert!(v >= last);
            last = v;
        }
        writer.join().unwrap();
    }
}
