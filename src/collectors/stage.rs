//! The stage plug-in: runs, errors, durations and throughput per named
//! pipeline stage, with a timing guard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::named::{Named, Slot};
use super::{describe_all, Description};
use crate::clock::Clock;
use crate::error::Error;
use crate::metrics::counter::Counter;
use crate::metrics::histogram::Histogram;
use crate::plugin::{Collector, Samples};
use crate::registry::{MetricsCollector, WeakCollector};
use crate::snapshot::MetricKind;
use crate::unit::Unit;

const DURATION: &str = "stage_duration_seconds";
const ERRORS: &str = "stage_errors_total";

/// The stage plug-in (registered name `stage`): one [`Stage`] handle per
/// named pipeline stage, timing each run into a core histogram.
///
/// Core series: `stage_duration_seconds{stage}` (count, sum, min, max and
/// quantiles over the histogram window and the whole life) and
/// `stage_errors_total{stage}`. Samples: `stage_runs_total{stage}`,
/// `stage_throughput_per_second{stage}` (runs per second over the
/// histogram's window), `stage_duration_avg_seconds{stage}` (over the
/// window), `stage_lifetime_error_ratio{stage}`; averages and ratios are
/// left out while there are no runs.
///
/// ```
/// use vitals::collectors::StageCollector;
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let stages = StageCollector::new(&metrics);
/// metrics.register(stages.clone()).unwrap();
///
/// let parse = stages.stage("parse");
/// let n: Result<u32, std::num::ParseIntError> = parse.run(|| "42".parse());
/// let bad: Result<u32, std::num::ParseIntError> = parse.run(|| "x".parse());
/// assert!(n.is_ok() && bad.is_err());
///
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("stage_errors_total", &[("stage", "parse")]), Some(1.0));
/// assert_eq!(snap.counter("stage_runs_total", &[("stage", "parse")]), Some(2.0));
/// ```
#[derive(Clone)]
pub struct StageCollector {
    inner: Arc<StageSet>,
}

struct StageSet {
    registry: WeakCollector,
    clock: Arc<dyn Clock>,
    stages: Named<Stage>,
}

impl std::fmt::Debug for StageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageCollector").finish_non_exhaustive()
    }
}

impl StageCollector {
    /// A stage plug-in writing to `metrics`. Throughput and averages follow
    /// the window of `stage_duration_seconds` (the collector's default, or
    /// set with [`MetricsCollector::configure_histogram`] before first use).
    ///
    /// ```
    /// use vitals::histogram::Window;
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// let last_100 = Window::Count { values: 100 };
    /// metrics.configure_histogram("stage_duration_seconds", last_100).unwrap();
    /// let stages = vitals::collectors::StageCollector::new(&metrics);
    /// drop(stages.start("load")); // one run, timed into the core histogram
    /// let snap = metrics.snapshot();
    /// let durations = &snap.histogram("stage_duration_seconds", &[("stage", "load")]).unwrap().window;
    /// assert_eq!((durations.window, durations.count), (last_100, 1));
    /// ```
    pub fn new(metrics: &MetricsCollector) -> Self {
        metrics.describe(
            MetricKind::Histogram,
            DURATION,
            Some(Unit::Seconds),
            "Time each run of a pipeline stage took, by stage.",
        );
        metrics.describe(
            MetricKind::Counter,
            ERRORS,
            None,
            "Runs of a pipeline stage that failed or panicked, by stage.",
        );
        StageCollector {
            inner: Arc::new(StageSet {
                registry: metrics.downgrade(),
                clock: Arc::clone(metrics.clock()),
                stages: Named::default(),
            }),
        }
    }

    /// The handle of stage `name`, created on first use: keep it, and a
    /// timed run costs what a histogram timer costs.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let stages = vitals::collectors::StageCollector::new(&metrics);
    /// assert_eq!(stages.stage("load").name(), "load");
    /// ```
    pub fn stage(&self, name: &str) -> Stage {
        self.inner.stages.with(
            name,
            |n| self.new_stage(slot(n)),
            || self.overflow(),
            Stage::clone,
        )
    }

    /// Starts timing a run of stage `name` (one lookup, then the guard).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let stages = vitals::collectors::StageCollector::new(&metrics);
    /// {
    ///     let _run = stages.start("load");
    /// }
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.histogram("stage_duration_seconds", &[("stage", "load")]).unwrap().lifetime.count, 1);
    /// ```
    pub fn start(&self, name: &str) -> StageGuard {
        self.inner.stages.with(
            name,
            |n| self.new_stage(slot(n)),
            || self.overflow(),
            Stage::start,
        )
    }

    fn overflow(&self) -> Stage {
        self.new_stage(Slot::Overflow)
            .unwrap_or_else(|| Stage::detached(""))
    }

    /// A new stage, or `None` past the cardinality limit (the overflow slot
    /// never is).
    fn new_stage(&self, slot: Slot<'_>) -> Option<Stage> {
        let name = match slot {
            Slot::Name { value, .. } => value,
            Slot::Overflow => "",
        };
        let Some(metrics) = self.inner.registry.upgrade() else {
            return Some(Stage::detached(name));
        };
        let duration = slot.first_histogram(&metrics, DURATION)?;
        Some(Stage {
            inner: Arc::new(StageInner {
                name: name.into(),
                overflow: matches!(slot, Slot::Overflow),
                duration,
                errors: slot.counter(&metrics, ERRORS, &[]),
            }),
        })
    }
}

/// The slot of stage `name`.
fn slot(name: &str) -> Slot<'_> {
    Slot::Name {
        key: "stage",
        value: name,
    }
}

/// The plug-in's series, their units and help texts.
const DESCRIPTIONS: [Description; 4] = [
    (
        "stage_runs_total",
        None,
        "Runs of the stage since the start.",
    ),
    (
        "stage_throughput_per_second",
        None,
        "Runs per second over the stage's window.",
    ),
    (
        "stage_duration_avg_seconds",
        Some(Unit::Seconds),
        "Mean run time over the stage's window.",
    ),
    (
        "stage_lifetime_error_ratio",
        Some(Unit::Ratio),
        "Share of runs that failed since the start.",
    ),
];

impl Collector for StageCollector {
    fn name(&self) -> &str {
        "stage"
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        describe_all(out, &DESCRIPTIONS)?;
        let now = self.inner.clock.monotonic();
        for stage in self.inner.stages.list() {
            let s = &stage.inner;
            let summary = s.duration.summary(now);
            let labels = [if s.overflow {
                Slot::Overflow.label()
            } else {
                slot(&s.name).label()
            }];
            let runs = summary.lifetime.count;
            out.counter("stage_runs_total", &labels, runs as f64)?;
            if summary.window.span_seconds > 0.0 {
                out.gauge(
                    "stage_throughput_per_second",
                    &labels,
                    summary.window.count as f64 / summary.window.span_seconds,
                )?;
            }
            if let Some(mean) = summary.window.mean {
                out.gauge("stage_duration_avg_seconds", &labels, mean)?;
            }
            if runs > 0 {
                let ratio = s.errors.value() as f64 / runs as f64;
                out.gauge("stage_lifetime_error_ratio", &labels, ratio.min(1.0))?;
            }
        }
        Ok(())
    }
}

/// One stage's pre-resolved handles. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// let metrics = vitals::MetricsCollector::new();
/// let write = vitals::collectors::StageCollector::new(&metrics).stage("write");
/// write.record(Duration::from_millis(5), true);
/// write.record(Duration::from_millis(7), false);
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("stage_errors_total", &[("stage", "write")]), Some(1.0));
/// ```
#[derive(Clone)]
pub struct Stage {
    inner: Arc<StageInner>,
}

struct StageInner {
    name: Box<str>,
    /// The shared handle of the names past the cardinality limit.
    overflow: bool,
    duration: Histogram,
    errors: Counter,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Stage {
    fn detached(name: &str) -> Self {
        Stage {
            inner: Arc::new(StageInner {
                name: name.into(),
                overflow: name.is_empty(),
                duration: Histogram::detached(),
                errors: Counter::detached(),
            }),
        }
    }

    /// The stage label value (empty for the shared overflow stage).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(vitals::collectors::StageCollector::new(&metrics).stage("s").name(), "s");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True for the handle the names past the cardinality limit share: it
    /// records into each metric's `{vitals_overflow="true"}` series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::builder().cardinality_limit(1).build();
    /// let stages = vitals::collectors::StageCollector::new(&metrics);
    /// assert!(!stages.stage("parse").is_overflow());
    /// assert!(stages.stage("write").is_overflow());
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.inner.overflow
    }

    /// Starts timing a run: the guard records the elapsed time when
    /// finished or dropped, and an error when marked failed or dropped
    /// during a panic.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let stage = vitals::collectors::StageCollector::new(&metrics).stage("index");
    /// let mut run = stage.start();
    /// run.fail();
    /// drop(run);
    /// assert_eq!(metrics.snapshot().counter("stage_errors_total", &[("stage", "index")]), Some(1.0));
    /// ```
    #[inline]
    pub fn start(&self) -> StageGuard {
        StageGuard {
            stage: self.clone(),
            started: Instant::now(),
            failed: false,
            recorded: false,
        }
    }

    /// Runs `work` as one timed run of the stage; an `Err` or a panic
    /// counts as an error (the panic goes on unwinding).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let stage = vitals::collectors::StageCollector::new(&metrics).stage("fetch");
    /// let r: Result<(), &str> = stage.run(|| Err("404"));
    /// assert!(r.is_err());
    /// assert_eq!(metrics.snapshot().counter("stage_errors_total", &[("stage", "fetch")]), Some(1.0));
    /// ```
    pub fn run<T, E>(&self, work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let mut guard = self.start();
        let out = work();
        if out.is_err() {
            guard.fail();
        }
        out
    }

    /// Records a run measured elsewhere.
    ///
    /// ```
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let stage = vitals::collectors::StageCollector::new(&metrics).stage("s");
    /// stage.record(Duration::from_millis(2), true);
    /// assert_eq!(metrics.snapshot().histogram("stage_duration_seconds", &[("stage", "s")]).unwrap().window.count, 1);
    /// ```
    #[inline]
    pub fn record(&self, elapsed: Duration, ok: bool) {
        self.inner.duration.record_duration(elapsed);
        if !ok {
            self.inner.errors.inc();
        }
    }
}

/// One timed run of a stage; records when [`finish`](StageGuard::finish)ed
/// or dropped. A run marked with [`fail`](StageGuard::fail), or dropped
/// while its thread panics, also counts as an error.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let stage = vitals::collectors::StageCollector::new(&metrics).stage("s");
/// let elapsed = stage.start().finish();
/// assert!(elapsed.as_secs() < 60);
/// ```
#[must_use = "the run is recorded when the guard is dropped; bind it to a variable"]
#[derive(Debug)]
pub struct StageGuard {
    stage: Stage,
    started: Instant,
    failed: bool,
    recorded: bool,
}

impl StageGuard {
    /// Marks the run as failed.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let mut run = vitals::collectors::StageCollector::new(&metrics).stage("s").start();
    /// run.fail();
    /// drop(run);
    /// assert_eq!(metrics.snapshot().counter("stage_errors_total", &[("stage", "s")]), Some(1.0));
    /// ```
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Records the run now and returns its duration.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let run = vitals::collectors::StageCollector::new(&metrics).stage("s").start();
    /// let elapsed = run.finish();
    /// let snap = metrics.snapshot();
    /// let durations = &snap.histogram("stage_duration_seconds", &[("stage", "s")]).unwrap().window;
    /// assert_eq!(durations.count, 1);
    /// assert_eq!(durations.sum, elapsed.as_secs_f64());
    /// ```
    pub fn finish(mut self) -> Duration {
        let elapsed = self.started.elapsed();
        self.stage.record(elapsed, !self.failed);
        self.recorded = true;
        elapsed
    }
}

impl Drop for StageGuard {
    #[inline]
    fn drop(&mut self) {
        if !self.recorded {
            let ok = !self.failed && !std::thread::panicking();
            self.stage.record(self.started.elapsed(), ok);
        }
    }
}
