//! The reporter: a background thread that snapshots a collector every
//! interval and feeds every exporter, isolating their failures.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock::instant_after;
use crate::error::Error;
use crate::registry::MetricsCollector;
use crate::snapshot::{MetricKind, Snapshot};

use super::Exporter;

/// How often a reporter snapshots unless told otherwise: 60 s.
///
/// ```
/// assert_eq!(vitals::export::DEFAULT_INTERVAL.as_secs(), 60);
/// ```
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The counter, on the reporter's collector, of failed exports by
/// `exporter` name.
///
/// ```
/// assert_eq!(vitals::export::EXPORT_ERRORS_METRIC, "vitals_export_errors_total");
/// ```
pub const EXPORT_ERRORS_METRIC: &str = "vitals_export_errors_total";

/// After `n` consecutive failures an exporter sits out `2^(n-1) - 1` ticks,
/// at most this many minus one, so a broken disk is not hammered every tick
/// and a fixed one is picked up again soon.
const DEFAULT_MAX_BACKOFF_TICKS: u32 = 16;

/// Settings for a [`Reporter`].
///
/// ```
/// use std::time::Duration;
/// use vitals::export::{Reporter, TableExporter};
///
/// let metrics = vitals::MetricsCollector::new();
/// let reporter = Reporter::builder(&metrics)
///     .interval(Duration::from_secs(5))
///     .max_backoff_ticks(8)
///     .exporter(TableExporter::new(std::io::sink()))
///     .start()
///     .unwrap();
/// let status = reporter.shutdown();
/// assert_eq!(status.exporters[0].exported, 1); // the final snapshot
/// ```
pub struct ReporterBuilder {
    collector: MetricsCollector,
    interval: Duration,
    max_backoff_ticks: u32,
    exporters: Vec<Box<dyn Exporter>>,
}

impl std::fmt::Debug for ReporterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReporterBuilder")
            .field("interval", &self.interval)
            .field("max_backoff_ticks", &self.max_backoff_ticks)
            .field("exporters", &self.exporters.len())
            .finish_non_exhaustive()
    }
}

impl ReporterBuilder {
    /// Time between snapshots (default [`DEFAULT_INTERVAL`]; at least 1 ms).
    /// An interval too long for the platform's clock to add (such as
    /// `Duration::MAX`) means no periodic snapshots: only those asked for
    /// with [`Reporter::tick_now`] and the final one at shutdown.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = vitals::export::Reporter::builder(&metrics)
    ///     .interval(Duration::MAX) // only on demand
    ///     .start()
    ///     .unwrap();
    /// reporter.tick_now();
    /// assert_eq!(reporter.shutdown().ticks, 2); // tick_now, then the final one
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The longest an exporter that keeps failing waits between attempts,
    /// in ticks (default 16; at least 1, which retries every tick).
    ///
    /// ```
    /// use vitals::export::{Exporter, Reporter};
    /// use vitals::{Error, Snapshot};
    ///
    /// struct Broken;
    /// impl Exporter for Broken {
    ///     fn name(&self) -> &str {
    ///         "broken"
    ///     }
    ///     fn export(&mut self, _: &Snapshot) -> Result<(), Error> {
    ///         Err(Error::InvalidConfig("always fails".into()))
    ///     }
    /// }
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = Reporter::builder(&metrics).max_backoff_ticks(1).exporter(Broken).start().unwrap();
    /// for _ in 0..3 {
    ///     reporter.tick_now();
    /// }
    /// let broken = &reporter.status().exporters[0];
    /// assert_eq!((broken.failed, broken.skipped), (3, 0)); // retried every tick
    /// ```
    pub fn max_backoff_ticks(mut self, ticks: u32) -> Self {
        self.max_backoff_ticks = ticks;
        self
    }

    /// Adds an exporter; each tick feeds them in the order added.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let b = vitals::export::Reporter::builder(&metrics)
    ///     .exporter(vitals::export::TableExporter::new(std::io::sink()));
    /// let status = b.start().unwrap().shutdown();
    /// assert_eq!((status.exporters[0].name.as_str(), status.exporters[0].exported), ("table", 1));
    /// ```
    pub fn exporter(mut self, exporter: impl Exporter + 'static) -> Self {
        self.exporters.push(Box::new(exporter));
        self
    }

    /// Starts the background thread, or says why it cannot.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let err = vitals::export::Reporter::builder(&metrics)
    ///     .interval(std::time::Duration::ZERO)
    ///     .start()
    ///     .unwrap_err();
    /// assert!(matches!(err, vitals::Error::InvalidConfig(_)));
    /// ```
    pub fn start(self) -> Result<Reporter, Error> {
        if self.interval < Duration::from_millis(1) {
            return Err(Error::InvalidConfig(format!(
                "the reporter interval must be at least 1 ms, not {:?}",
                self.interval
            )));
        }
        if self.max_backoff_ticks == 0 {
            return Err(Error::InvalidConfig(
                "max_backoff_ticks must be at least 1".into(),
            ));
        }
        self.collector.describe(
            MetricKind::Counter,
            EXPORT_ERRORS_METRIC,
            None,
            "Snapshots an exporter of a vitals reporter failed to write, by exporter.",
        );
        let status = ReporterStatus {
            ticks: 0,
            exporters: self
                .exporters
                .iter()
                .map(|e| ExporterStatus::new(e.name()))
                .collect(),
            snapshot_error: None,
        };
        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                stop: false,
                requested: 0,
                completed: 0,
            }),
            wake: Condvar::new(),
            status: Mutex::new(status),
        });
        let worker = Worker {
            collector: self.collector,
            interval: self.interval,
            max_backoff_ticks: self.max_backoff_ticks,
            exporters: self
                .exporters
                .into_iter()
                .map(|exporter| Slot {
                    exporter,
                    failures: 0,
                    sit_out: 0,
                })
                .collect(),
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name("vitals-reporter".into())
            .spawn(move || {
                let shared = Arc::clone(&worker.shared);
                // Whatever happens in the worker, callers of `tick_now` must
                // not wait for it forever.
                let _ = catch_unwind(AssertUnwindSafe(|| worker.run()));
                shared.control.lock().stop = true;
                shared.wake.notify_all();
            })
            .map_err(|e| Error::io("spawn", std::path::Path::new("vitals-reporter"), e))?;
        Ok(Reporter {
            shared,
            thread: Some(thread),
        })
    }
}

/// A background thread that takes a [`Snapshot`] of a collector every
/// interval and hands it to every [`Exporter`].
///
/// * **Failures stay contained.** An exporter's error (or panic) is kept in
///   its [`ExporterStatus`], counted in [`EXPORT_ERRORS_METRIC`] on the
///   collector, and retried: at the next tick, then with exponential backoff
///   in ticks while it keeps failing. The other exporters carry on, and the
///   program never sees a panic.
/// * **Stopping is prompt.** [`shutdown`](Reporter::shutdown) (or drop)
///   wakes the thread at once, takes a final snapshot, gives it to every
///   exporter (backoff or not), flushes them, and joins the thread.
///
/// ```
/// use std::time::Duration;
/// use vitals::export::{JsonLinesExporter, JsonLinesReader, Reporter};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-reporter-{}", std::process::id()));
/// let path = dir.join("metrics.jsonl");
/// let metrics = vitals::MetricsCollector::new();
/// let reporter = Reporter::builder(&metrics)
///     .interval(Duration::from_secs(3600))
///     .exporter(JsonLinesExporter::new(&path).unwrap())
///     .start()
///     .unwrap();
/// metrics.counter("jobs_total", &[]).increment(5);
/// reporter.shutdown();
///
/// let last = JsonLinesReader::open(&path).unwrap().filter_map(Result::ok).last().unwrap();
/// assert_eq!(last.counter("jobs_total", &[]), Some(5.0));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Reporter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("status", &*self.shared.status.lock())
            .finish_non_exhaustive()
    }
}

/// What a reporter has done so far.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let reporter = vitals::export::Reporter::builder(&metrics).start().unwrap();
/// reporter.tick_now();
/// assert_eq!(reporter.status().ticks, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReporterStatus {
    /// Snapshots taken (the final one included once shut down).
    pub ticks: u64,
    /// One entry per exporter, in the order they were added.
    pub exporters: Vec<ExporterStatus>,
    /// Set if taking a snapshot ever panicked (a bug in vitals): that tick
    /// was skipped.
    pub snapshot_error: Option<String>,
}

/// How one exporter is doing.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let reporter = vitals::export::Reporter::builder(&metrics)
///     .exporter(vitals::export::TableExporter::new(std::io::sink()))
///     .start()
///     .unwrap();
/// let status = reporter.shutdown();
/// let table = &status.exporters[0];
/// assert_eq!((table.name.as_str(), table.exported, table.failed), ("table", 1, 0));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExporterStatus {
    /// The exporter's [`name`](Exporter::name).
    pub name: String,
    /// Snapshots it took successfully.
    pub exported: u64,
    /// Attempts that failed (errors and panics).
    pub failed: u64,
    /// Ticks it sat out while backing off.
    pub skipped: u64,
    /// Failures since its last success.
    pub consecutive_failures: u32,
    /// Its most recent error; cleared by the next success.
    pub last_error: Option<Error>,
    /// Its most recent error, kept after a later success.
    pub latest_error_ever: Option<Error>,
}

impl ExporterStatus {
    fn new(name: &str) -> Self {
        ExporterStatus {
            name: name.to_owned(),
            exported: 0,
            failed: 0,
            skipped: 0,
            consecutive_failures: 0,
            last_error: None,
            latest_error_ever: None,
        }
    }
}

struct Shared {
    control: Mutex<Control>,
    /// Wakes the worker (stop, tick requests) and the callers of
    /// `tick_now` (tick done); everyone re-checks `control` after waking.
    wake: Condvar,
    status: Mutex<ReporterStatus>,
}

struct Control {
    stop: bool,
    /// Ticks asked for by `tick_now`, and the last one served.
    requested: u64,
    completed: u64,
}

struct Worker {
    collector: MetricsCollector,
    interval: Duration,
    max_backoff_ticks: u32,
    exporters: Vec<Slot>,
    shared: Arc<Shared>,
}

struct Slot {
    exporter: Box<dyn Exporter>,
    failures: u32,
    sit_out: u32,
}

impl Reporter {
    /// Settings for a reporter of `collector`'s snapshots (the collector
    /// is cloned: clones share their series).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = vitals::export::Reporter::builder(&metrics).start().unwrap();
    /// // The reporter's clone shares the series: it described its error counter here.
    /// assert!(metrics.snapshot().metadata(vitals::export::EXPORT_ERRORS_METRIC).is_some());
    /// drop(reporter); // stops the thread
    /// ```
    pub fn builder(collector: &MetricsCollector) -> ReporterBuilder {
        ReporterBuilder {
            collector: collector.clone(),
            interval: DEFAULT_INTERVAL,
            max_backoff_ticks: DEFAULT_MAX_BACKOFF_TICKS,
            exporters: Vec::new(),
        }
    }

    /// A copy of the current status.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = vitals::export::Reporter::builder(&metrics).start().unwrap();
    /// assert_eq!(reporter.status().ticks, 0);
    /// ```
    pub fn status(&self) -> ReporterStatus {
        self.shared.status.lock().clone()
    }

    /// Runs one tick now, out of schedule, and waits for it to finish
    /// (returns at once if the reporter is stopping).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = vitals::export::Reporter::builder(&metrics).start().unwrap();
    /// reporter.tick_now();
    /// reporter.tick_now();
    /// assert_eq!(reporter.status().ticks, 2);
    /// ```
    pub fn tick_now(&self) {
        let mut control = self.shared.control.lock();
        control.requested += 1;
        let target = control.requested;
        self.shared.wake.notify_all();
        while !control.stop && control.completed < target {
            self.shared.wake.wait(&mut control);
        }
    }

    /// Stops the thread: it takes a final snapshot, gives it to every
    /// exporter, flushes them, and exits. Returns the final status.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let reporter = vitals::export::Reporter::builder(&metrics).start().unwrap();
    /// assert_eq!(reporter.shutdown().ticks, 1);
    /// ```
    pub fn shutdown(mut self) -> ReporterStatus {
        self.stop();
        self.status()
    }

    fn stop(&mut self) {
        self.shared.control.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // The worker catches exporter panics; a join error could only
            // come from a panic in vitals itself, and must not propagate
            // into the program (this can run in Drop).
            let _ = thread.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Worker {
    fn run(mut self) {
        // `None`: an interval too long for an `Instant` (`Duration::MAX`):
        // no periodic ticks, only those asked for and the final one.
        let mut next = instant_after(Instant::now(), self.interval);
        loop {
            let mut control = self.shared.control.lock();
            loop {
                if control.stop || control.requested > control.completed {
                    break;
                }
                match next {
                    Some(next) if Instant::now() >= next => break,
                    Some(next) => {
                        let _ = self.shared.wake.wait_until(&mut control, next);
                    }
                    None => self.shared.wake.wait(&mut control),
                }
            }
            if control.stop {
                break;
            }
            let served = control.requested;
            drop(control);

            self.tick(false);

            let now = Instant::now();
            next = next.and_then(|next| instant_after(next, self.interval));
            if next.is_some_and(|next| next <= now) {
                // Fell behind (a slow exporter, a suspended machine): skip
                // the missed ticks rather than bursting through them.
                next = instant_after(now, self.interval);
            }
            let mut control = self.shared.control.lock();
            control.completed = control.completed.max(served);
            drop(control);
            self.shared.wake.notify_all();
        }
        self.tick(true);
        for i in 0..self.exporters.len() {
            let exporter = &mut self.exporters[i].exporter;
            let name = exporter.name().to_owned();
            let flushed = catch_unwind(AssertUnwindSafe(|| exporter.flush()));
            if let Err(err) = flushed.unwrap_or_else(|panic| Err(panicked(&name, &*panic))) {
                self.record_flush_failure(i, &name, err);
            }
        }
        let mut control = self.shared.control.lock();
        control.completed = control.requested;
        drop(control);
        self.shared.wake.notify_all();
    }

    fn tick(&mut self, last: bool) {
        let collector = &self.collector;
        let snapshot = match catch_unwind(AssertUnwindSafe(|| collector.snapshot())) {
            Ok(snapshot) => snapshot,
            Err(panic) => {
                self.shared.status.lock().snapshot_error = Some(panic_message(&*panic));
                return;
            }
        };
        self.shared.status.lock().ticks += 1;
        for i in 0..self.exporters.len() {
            self.feed(i, &snapshot, last);
        }
    }

    fn feed(&mut self, i: usize, snapshot: &Snapshot, last: bool) {
        let slot = &mut self.exporters[i];
        if slot.sit_out > 0 && !last {
            slot.sit_out -= 1;
            self.shared.status.lock().exporters[i].skipped += 1;
            return;
        }
        let exporter = &mut slot.exporter;
        let result = catch_unwind(AssertUnwindSafe(|| exporter.export(snapshot)))
            .unwrap_or_else(|panic| Err(panicked(exporter.name(), &*panic)));
        let name = slot.exporter.name().to_owned();
        match result {
            Ok(()) => {
                slot.failures = 0;
                slot.sit_out = 0;
                let mut status = self.shared.status.lock();
                let st = &mut status.exporters[i];
                st.exported += 1;
                st.consecutive_failures = 0;
                st.last_error = None;
            }
            Err(err) => {
                slot.failures = slot.failures.saturating_add(1);
                let shift = slot.failures.saturating_sub(1).min(31);
                slot.sit_out = (1u32 << shift).min(self.max_backoff_ticks) - 1;
                self.collector
                    .counter(EXPORT_ERRORS_METRIC, &[("exporter", &name)])
                    .inc();
                let mut status = self.shared.status.lock();
                let st = &mut status.exporters[i];
                st.failed += 1;
                st.consecutive_failures = slot.failures;
                st.latest_error_ever = Some(err.clone());
                st.last_error = Some(err);
            }
        }
    }

    fn record_flush_failure(&self, i: usize, name: &str, err: Error) {
        self.collector
            .counter(EXPORT_ERRORS_METRIC, &[("exporter", name)])
            .inc();
        let mut status = self.shared.status.lock();
        if let Some(st) = status.exporters.get_mut(i) {
            st.failed += 1;
            st.latest_error_ever = Some(err.clone());
            st.last_error = Some(err);
        }
    }
}

fn panicked(exporter: &str, panic: &(dyn std::any::Any + Send)) -> Error {
    Error::Export {
        exporter: exporter.to_owned(),
        message: format!("panicked: {}", panic_message(panic)),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky {
        fail_first: u32,
        calls: Arc<Mutex<u32>>,
    }

    impl Exporter for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn export(&mut self, _: &Snapshot) -> Result<(), Error> {
            let mut calls = self.calls.lock();
            *calls += 1;
            if *calls <= self.fail_first {
                Err(Error::Export {
                    exporter: "flaky".into(),
                    message: format!("failure {calls}"),
                })
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn failing_exporter_backs_off_in_ticks_then_recovers() {
        let metrics = MetricsCollector::new();
        let calls = Arc::new(Mutex::new(0));
        let reporter = Reporter::builder(&metrics)
            .interval(Duration::from_secs(3600))
            .exporter(Flaky {
                fail_first: 3,
                calls: Arc::clone(&calls),
            })
            .start()
            .unwrap();
        // Failures 1, 2, 3 sit out 0, 1 and 3 ticks; the fourth call succeeds.
        for _ in 0..8 {
            reporter.tick_now();
        }
        let status = reporter.status();
        let st = &status.exporters[0];
        assert_eq!(*calls.lock(), 4);
        assert_eq!((st.failed, st.skipped, st.exported), (3, 4, 1));
        assert!(st.last_error.is_none());
        assert!(st.latest_error_ever.is_some());
        assert_eq!(
            metrics
                .snapshot()
                .counter(EXPORT_ERRORS_METRIC, &[("exporter", "flaky")]),
            Some(3.0)
        );
    }
}
