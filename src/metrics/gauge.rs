//! Gauges: `f64` values that go up and down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::Storage;

/// A value that goes up and down, such as queue depth or temperature.
///
/// Stored as the bits of an `f64` in one atomic word: [`set`](Gauge::set) is
/// one store, the read-modify-write operations are short CAS loops.
///
/// **Non-finite values.** NaN and ±infinity are stored as given.
/// [`increment`](Gauge::increment) on a NaN gauge stays NaN until the next
/// `set`. [`set_max`](Gauge::set_max) and [`set_min`](Gauge::set_min) ignore
/// a NaN argument and replace a NaN current value. Snapshots keep the value;
/// JSON, which has no NaN, spells non-finite numbers as the strings `"NaN"`,
/// `"+Inf"` and `"-Inf"` (the Prometheus spellings), and reads them back.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let depth = metrics.gauge("queue_depth", &[]);
/// depth.set(10.0);
/// depth.increment(2.5);
/// depth.decrement(0.5);
/// assert_eq!(depth.value(), 12.0);
/// ```
#[derive(Clone)]
#[must_use = "a handle does nothing until it is used; to register a series without updating it, bind it: `let _ = ...`"]
pub struct Gauge {
    core: Storage<GaugeCore>,
}

pub(crate) struct GaugeCore {
    bits: AtomicU64,
    /// Set by every update, cleared by the registry when it checks for
    /// activity: a gauge set to the value it already has was still updated,
    /// which its value alone cannot tell (idle expiry, revival).
    touched: AtomicBool,
}

impl Default for GaugeCore {
    fn default() -> Self {
        GaugeCore {
            bits: AtomicU64::new(0f64.to_bits()),
            touched: AtomicBool::new(true),
        }
    }
}

impl GaugeCore {
    pub(crate) fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// Whether the gauge was updated since the last call.
    pub(crate) fn take_touched(&self) -> bool {
        self.touched.swap(false, Ordering::Relaxed)
    }

    #[inline]
    fn touch(&self) {
        // A plain store to the line the value is on: no read-modify-write.
        self.touched.store(true, Ordering::Relaxed);
    }

    fn update(&self, f: impl Fn(f64) -> Option<f64>) {
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                f(f64::from_bits(bits)).map(f64::to_bits)
            });
        self.touch();
    }
}

impl Gauge {
    /// True when a handle other than this one may exist.
    pub(crate) fn shared(&self) -> bool {
        self.core.shared()
    }

    /// Whether any handle updated the gauge since the last call.
    pub(crate) fn take_touched(&self) -> bool {
        self.core.take_touched()
    }

    pub(crate) fn from_storage(core: Storage<GaugeCore>) -> Self {
        Gauge { core }
    }

    /// A handle attached to no collector (see [`Counter`](crate::Counter)).
    pub(crate) fn detached() -> Self {
        Gauge {
            core: Storage::new(GaugeCore::default(), false),
        }
    }

    /// Sets the value.
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("temperature_celsius", &[]);
    /// g.set(21.5);
    /// assert_eq!(g.value(), 21.5);
    /// ```
    #[inline]
    pub fn set(&self, value: f64) {
        self.core.bits.store(value.to_bits(), Ordering::Relaxed);
        self.core.touch();
    }

    /// Adds `delta` (which may be negative).
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("connections", &[]);
    /// g.increment(3.0);
    /// assert_eq!(g.value(), 3.0);
    /// ```
    #[inline]
    pub fn increment(&self, delta: f64) {
        self.core.update(|v| Some(v + delta));
    }

    /// Subtracts `delta`.
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("connections", &[]);
    /// g.set(3.0);
    /// g.decrement(1.0);
    /// assert_eq!(g.value(), 2.0);
    /// ```
    #[inline]
    pub fn decrement(&self, delta: f64) {
        self.core.update(|v| Some(v - delta));
    }

    /// Raises the value to `value` if it is higher (a high-water mark).
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("peak_rss_bytes", &[]);
    /// g.set_max(10.0);
    /// g.set_max(4.0);
    /// g.set_max(f64::NAN); // ignored
    /// assert_eq!(g.value(), 10.0);
    /// ```
    pub fn set_max(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.core
            .update(|v| (v.is_nan() || value > v).then_some(value));
    }

    /// Lowers the value to `value` if it is lower (a low-water mark).
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("min_free_bytes", &[]);
    /// g.set(100.0);
    /// g.set_min(40.0);
    /// g.set_min(90.0);
    /// assert_eq!(g.value(), 40.0);
    /// ```
    pub fn set_min(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.core
            .update(|v| (v.is_nan() || value < v).then_some(value));
    }

    /// The current value.
    ///
    /// ```
    /// let g = vitals::MetricsCollector::new().gauge("ratio", &[]);
    /// assert_eq!(g.value(), 0.0);
    /// ```
    pub fn value(&self) -> f64 {
        self.core.value()
    }

    /// True when both handles update the same series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let a = metrics.gauge("g", &[]);
    /// assert!(a.same_series(&metrics.gauge("g", &[])));
    /// ```
    pub fn same_series(&self, other: &Gauge) -> bool {
        self.core.same(&other.core)
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge")
            .field("value", &self.value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_follow_the_documented_rule() {
        let g = Gauge::detached();
        g.set(f64::NAN);
        assert!(g.value().is_nan());
        g.increment(1.0);
        assert!(g.value().is_nan(), "NaN is sticky under increment");
        g.set_max(3.0);
        assert_eq!(g.value(), 3.0, "set_max replaces NaN");
        g.set_min(f64::NAN);
        assert_eq!(g.value(), 3.0, "NaN argument ignored");
        g.set(f64::INFINITY);
        g.set_min(1.0);
        assert_eq!(g.value(), 1.0);
        g.set(f64::NEG_INFINITY);
        assert_eq!(g.value(), f64::NEG_INFINITY);
    }

    #[test]
    fn concurrent_increments_are_exact() {
        let g = Gauge::detached();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        g.increment(1.0);
                        g.decrement(0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(g.value(), 20_000.0);
    }
}
