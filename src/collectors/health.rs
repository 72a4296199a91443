//! The health plug-in: up/degraded/down status, consecutive failures,
//! success rate and availability of named dependencies.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::named::{Named, Slot};
use crate::clock::Clock;
use crate::error::Error;
use crate::metrics::counter::Counter;
use crate::plugin::{Collector, Samples};
use crate::unit::Unit;

use super::{describe_all, Description};
use crate::registry::{MetricsCollector, WeakCollector};
use crate::snapshot::MetricKind;

const CHECKS: &str = "health_checks_total";

/// The state of a dependency, from its consecutive failed checks.
///
/// ```
/// use vitals::collectors::HealthStatus;
/// assert_eq!(HealthStatus::Degraded.as_str(), "degraded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// No check recorded yet.
    Unknown,
    /// The latest check succeeded.
    Up,
    /// Failing, but fewer times in a row than the "down" threshold.
    Degraded,
    /// Failed at least the "down" threshold of times in a row.
    Down,
}

impl HealthStatus {
    /// The label value.
    ///
    /// ```
    /// assert_eq!(vitals::collectors::HealthStatus::Up.as_str(), "up");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "unknown",
            HealthStatus::Up => "up",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Down => "down",
        }
    }

    /// Up or degraded: the dependency still answers.
    fn available(self) -> bool {
        matches!(self, HealthStatus::Up | HealthStatus::Degraded)
    }
}

/// The health plug-in (registered name `health`): the outcome of checks of
/// named dependencies (a database, a downstream service), kept as a status.
///
/// A dependency is `up` after a successful check, `degraded` after
/// `degraded_after` failed checks in a row (default 1) and `down` after
/// `down_after` (default 3).
///
/// Core series: `health_checks_total{dependency,result}` (`result` is
/// `success` or `failure`). Samples per dependency, once checked:
/// `health_status{dependency,status}` (1 for the current status among `up`,
/// `degraded`, `down`, 0 for the others), `health_consecutive_failures`,
/// `health_success_ratio` (all checks), and `health_uptime_ratio`: the
/// share of the time since the first check that the dependency was up or
/// degraded (multiply by 100 for a percentage).
///
/// ```
/// use vitals::collectors::{HealthCollector, HealthStatus};
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let health = HealthCollector::new(&metrics);
/// metrics.register(health.clone()).unwrap();
///
/// let db = health.dependency("postgres");
/// db.success();
/// db.failure();
/// assert_eq!(db.status(), HealthStatus::Degraded);
///
/// let snap = metrics.snapshot();
/// let labels = [("dependency", "postgres")];
/// assert_eq!(snap.gauge("health_success_ratio", &labels), Some(0.5));
/// assert_eq!(snap.gauge("health_consecutive_failures", &labels), Some(1.0));
/// ```
#[derive(Clone)]
pub struct HealthCollector {
    inner: Arc<HealthSet>,
}

struct HealthSet {
    registry: WeakCollector,
    clock: Arc<dyn Clock>,
    degraded_after: u32,
    down_after: u32,
    dependencies: Named<Dependency>,
}

impl std::fmt::Debug for HealthCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCollector")
            .field("degraded_after", &self.inner.degraded_after)
            .field("down_after", &self.inner.down_after)
            .finish_non_exhaustive()
    }
}

impl HealthCollector {
    /// A health plug-in writing to `metrics`: degraded after 1 failure in a
    /// row, down after 3.
    ///
    /// ```
    /// use vitals::collectors::{HealthCollector, HealthStatus};
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// let db = HealthCollector::new(&metrics).dependency("postgres");
    /// db.failure();
    /// assert_eq!(db.status(), HealthStatus::Degraded);
    /// db.failure();
    /// db.failure();
    /// assert_eq!(db.status(), HealthStatus::Down);
    /// ```
    pub fn new(metrics: &MetricsCollector) -> Self {
        Self::build(metrics, 1, 3)
    }

    /// As [`new`](Self::new) with other thresholds; fails unless
    /// `1 <= degraded_after <= down_after`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// use vitals::collectors::HealthCollector;
    /// assert!(HealthCollector::with_thresholds(&metrics, 2, 5).is_ok());
    /// assert!(HealthCollector::with_thresholds(&metrics, 0, 5).is_err());
    /// assert!(HealthCollector::with_thresholds(&metrics, 4, 3).is_err());
    /// ```
    pub fn with_thresholds(
        metrics: &MetricsCollector,
        degraded_after: u32,
        down_after: u32,
    ) -> Result<Self, Error> {
        if degraded_after == 0 || degraded_after > down_after {
            return Err(Error::InvalidConfig(format!(
                "health thresholds need 1 <= degraded_after <= down_after, \
                 not {degraded_after} and {down_after}"
            )));
        }
        Ok(Self::build(metrics, degraded_after, down_after))
    }

    fn build(metrics: &MetricsCollector, degraded_after: u32, down_after: u32) -> Self {
        metrics.describe(
            MetricKind::Counter,
            CHECKS,
            None,
            "Checks of a dependency, by dependency and result.",
        );
        HealthCollector {
            inner: Arc::new(HealthSet {
                registry: metrics.downgrade(),
                clock: Arc::clone(metrics.clock()),
                degraded_after,
                down_after,
                dependencies: Named::default(),
            }),
        }
    }

    /// The handle of dependency `name`, created on first use.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let health = vitals::collectors::HealthCollector::new(&metrics);
    /// assert_eq!(health.dependency("redis").name(), "redis");
    /// ```
    pub fn dependency(&self, name: &str) -> Dependency {
        self.inner.dependencies.with(
            name,
            |n| self.new_dependency(slot(n)),
            || {
                self.new_dependency(Slot::Overflow)
                    .unwrap_or_else(|| self.detached(""))
            },
            Dependency::clone,
        )
    }

    fn detached(&self, name: &str) -> Dependency {
        self.dependency_with(name, Counter::detached(), Counter::detached())
    }

    /// A new dependency, or `None` past the cardinality limit (the overflow
    /// slot never is). The overflow's checks go to the one overflow series
    /// of `health_checks_total`, successes and failures together.
    fn new_dependency(&self, slot: Slot<'_>) -> Option<Dependency> {
        let name = match slot {
            Slot::Name { value, .. } => value,
            Slot::Overflow => "",
        };
        let Some(metrics) = self.inner.registry.upgrade() else {
            return Some(self.detached(name));
        };
        let ok = slot.first_counter(&metrics, CHECKS, &[("result", "success")])?;
        let failed = slot.counter(&metrics, CHECKS, &[("result", "failure")]);
        Some(self.dependency_with(name, ok, failed))
    }

    fn dependency_with(&self, name: &str, ok: Counter, failed: Counter) -> Dependency {
        Dependency {
            inner: Arc::new(DependencyInner {
                name: name.into(),
                overflow: name.is_empty(),
                ok,
                failed,
                clock: Arc::clone(&self.inner.clock),
                degraded_after: self.inner.degraded_after,
                down_after: self.inner.down_after,
                state: Mutex::new(DependencyState {
                    consecutive_failures: 0,
                    status: HealthStatus::Unknown,
                    first_check: None,
                    last_change: Duration::ZERO,
                    available: Duration::ZERO,
                }),
            }),
        }
    }
}

impl Collector for HealthCollector {
    fn name(&self) -> &str {
        "health"
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        describe_all(out, &DESCRIPTIONS)?;
        let now = self.inner.clock.monotonic();
        for dependency in self.inner.dependencies.list() {
            let d = &dependency.inner;
            let st = *d.state.lock();
            if st.status == HealthStatus::Unknown {
                continue;
            }
            let label = if d.overflow {
                Slot::Overflow.label()
            } else {
                slot(&d.name).label()
            };
            for s in [HealthStatus::Up, HealthStatus::Degraded, HealthStatus::Down] {
                let value = if s == st.status { 1.0 } else { 0.0 };
                out.gauge("health_status", &[label, ("status", s.as_str())], value)?;
            }
            let labels = [label];
            out.gauge(
                "health_consecutive_failures",
                &labels,
                f64::from(st.consecutive_failures),
            )?;
            let (ok, failed) = (d.ok.value(), d.failed.value());
            let checks = ok.saturating_add(failed);
            // The overflow's one checks series holds both results.
            if checks > 0 && !d.overflow {
                out.gauge("health_success_ratio", &labels, ok as f64 / checks as f64)?;
            }
            if let Some(ratio) = st.uptime_ratio(now) {
                out.gauge("health_uptime_ratio", &labels, ratio)?;
            }
        }
        Ok(())
    }
}

/// The slot of dependency `name`.
fn slot(name: &str) -> Slot<'_> {
    Slot::Name {
        key: "dependency",
        value: name,
    }
}

/// The plug-in's gauges, their units and help texts.
const DESCRIPTIONS: [Description; 4] = [
    (
        "health_status",
        None,
        "1 for the dependency's current status, 0 for the others.",
    ),
    (
        "health_consecutive_failures",
        None,
        "Failed checks in a row.",
    ),
    (
        "health_success_ratio",
        Some(Unit::Ratio),
        "Share of checks that passed since the start.",
    ),
    (
        "health_uptime_ratio",
        Some(Unit::Ratio),
        "Share of the tracked time the dependency was up.",
    ),
];

/// One dependency's checks. Cheap to clone.
///
/// ```
/// use vitals::collectors::{HealthCollector, HealthStatus};
///
/// let metrics = vitals::MetricsCollector::new();
/// let api = HealthCollector::new(&metrics).dependency("payments");
/// for _ in 0..3 {
///     api.failure();
/// }
/// assert_eq!(api.status(), HealthStatus::Down);
/// api.success();
/// assert_eq!((api.status(), api.consecutive_failures()), (HealthStatus::Up, 0));
/// ```
#[derive(Clone)]
pub struct Dependency {
    inner: Arc<DependencyInner>,
}

struct DependencyInner {
    name: Box<str>,
    /// The shared handle of the names past the cardinality limit.
    overflow: bool,
    ok: Counter,
    failed: Counter,
    clock: Arc<dyn Clock>,
    degraded_after: u32,
    down_after: u32,
    state: Mutex<DependencyState>,
}

#[derive(Clone, Copy)]
struct DependencyState {
    consecutive_failures: u32,
    status: HealthStatus,
    first_check: Option<Duration>,
    /// When the status last changed (or was last confirmed).
    last_change: Duration,
    /// Time spent up or degraded between the first check and `last_change`.
    available: Duration,
}

impl DependencyState {
    fn uptime_ratio(&self, now: Duration) -> Option<f64> {
        let first = self.first_check?;
        let total = now.saturating_sub(first);
        if total.is_zero() {
            return None;
        }
        let mut available = self.available;
        if self.status.available() {
            available += now.saturating_sub(self.last_change);
        }
        Some((available.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0))
    }
}

impl std::fmt::Debug for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependency")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Dependency {
    /// The dependency label value (empty for the shared overflow
    /// dependency).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(vitals::collectors::HealthCollector::new(&metrics).dependency("d").name(), "d");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True for the handle the names past the cardinality limit share: it
    /// records into the `{vitals_overflow="true"}` series, and its samples
    /// carry that label (without a success ratio: its one checks series
    /// holds successes and failures together).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::builder().cardinality_limit(1).build();
    /// let health = vitals::collectors::HealthCollector::new(&metrics);
    /// assert!(!health.dependency("db").is_overflow());
    /// assert!(health.dependency("cache").is_overflow());
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.inner.overflow
    }

    /// Records a successful check.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("d");
    /// d.success();
    /// assert_eq!(d.status(), vitals::collectors::HealthStatus::Up);
    /// ```
    pub fn success(&self) {
        self.record(true);
    }

    /// Records a failed check.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("d");
    /// d.failure();
    /// assert_eq!(d.consecutive_failures(), 1);
    /// ```
    pub fn failure(&self) {
        self.record(false);
    }

    /// Records a check that succeeded when `ok`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("d");
    /// d.record(true);
    /// assert_eq!(metrics.snapshot().counter("health_checks_total", &[("dependency", "d"), ("result", "success")]), Some(1.0));
    /// ```
    pub fn record(&self, ok: bool) {
        let d = &*self.inner;
        if ok {
            d.ok.inc();
        } else {
            d.failed.inc();
        }
        // Checks are rare next to requests: a clock read and a short lock
        // are fine here, and keep status and availability consistent.
        let now = d.clock.monotonic();
        let mut guard = d.state.lock();
        let st = &mut *guard;
        match st.first_check {
            None => st.first_check = Some(now),
            Some(_) => {
                if st.status.available() {
                    st.available += now.saturating_sub(st.last_change);
                }
            }
        }
        st.last_change = now;
        if ok {
            st.consecutive_failures = 0;
            st.status = HealthStatus::Up;
        } else {
            st.consecutive_failures = st.consecutive_failures.saturating_add(1);
            st.status = if st.consecutive_failures >= d.down_after {
                HealthStatus::Down
            } else if st.consecutive_failures >= d.degraded_after {
                HealthStatus::Degraded
            } else {
                HealthStatus::Up
            };
        }
    }

    /// Runs `check` and records whether it returned `Ok`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("dns");
    /// let r: Result<(), String> = d.check(|| Err("NXDOMAIN".into()));
    /// assert!(r.is_err());
    /// assert_eq!(d.consecutive_failures(), 1);
    /// ```
    pub fn check<T, E>(&self, check: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let out = check();
        self.record(out.is_ok());
        out
    }

    /// The current status.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("d");
    /// assert_eq!(d.status(), vitals::collectors::HealthStatus::Unknown);
    /// ```
    pub fn status(&self) -> HealthStatus {
        self.inner.state.lock().status
    }

    /// Failed checks since the last success.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let d = vitals::collectors::HealthCollector::new(&metrics).dependency("d");
    /// assert_eq!(d.consecutive_failures(), 0);
    /// ```
    pub fn consecutive_failures(&self) -> u32 {
        self.inner.state.lock().consecutive_failures
    }
}
