//! Plug-in collectors: the [`Collector`] trait, the [`Sample`]s they produce,
//! the report each one leaves in a snapshot, and the time-limited runner that
//! calls them.
//!
//! # How a collection runs
//!
//! Each registered plug-in gets one worker thread of its own, started at
//! registration. A snapshot asks every due plug-in to collect, all at once,
//! then waits for each until that plug-in's deadline and no longer. A
//! plug-in still running then is reported `timed_out`; its worker is left to
//! finish (a thread cannot be stopped from outside), and while it is busy no
//! second collection is started for that plug-in: later snapshots report it
//! `timed_out` at once, until it comes back. A panic inside `collect` is
//! caught on the worker and reported with its message; the worker survives.
//!
//! A plug-in with an interval (the polling ones, such as the system and
//! process plug-ins) is collected by its worker on that interval, and a
//! snapshot reads its latest samples without waiting; only the very first
//! collection is waited for, so that the first snapshot has numbers. A
//! plug-in without an interval (the default) is collected by every snapshot.
//!
//! Every finished collection is timed into the histogram
//! `vitals_collection_duration_seconds{collector="<name>"}` of the registry.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::clock::{instant_after, Clock};
use crate::error::Error;
use crate::key::{validate_labels, validate_metric_name, Labels};
use crate::metrics::histogram::Histogram;

/// How long a snapshot waits for one plug-in unless told otherwise.
///
/// ```
/// assert_eq!(vitals::DEFAULT_PLUGIN_DEADLINE, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_PLUGIN_DEADLINE: Duration = Duration::from_secs(1);

/// Samples one plug-in may report per collection; more are refused with
/// [`Error::CardinalityLimit`], so that a runaway plug-in cannot grow the
/// snapshot without bound.
///
/// ```
/// assert_eq!(vitals::MAX_PLUGIN_SAMPLES, 10_000);
/// ```
pub const MAX_PLUGIN_SAMPLES: usize = 10_000;

/// The shortest interval and deadline accepted: below it the worker would
/// spin rather than sample.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A plug-in: something that reports a set of values when asked, such as
/// the state of the machine, of the process, or of a dependency.
///
/// Register one with [`MetricsCollector::register`](crate::MetricsCollector::register);
/// its samples and status then appear in every [`Snapshot`](crate::Snapshot).
/// `collect` runs on a worker thread of its own under a deadline, so it may
/// block (read a file, ask a server) without holding up a snapshot.
///
/// ```
/// use vitals::{Collector, Error, MetricsCollector, Samples};
///
/// struct QueueDepth;
///
/// impl Collector for QueueDepth {
///     fn name(&self) -> &str {
///         "queue"
///     }
///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
///         out.gauge("queue_depth", &[("queue", "mail")], 12.0)
///     }
/// }
///
/// let metrics = MetricsCollector::new();
/// metrics.register(QueueDepth).unwrap();
/// let snap = metrics.snapshot();
/// assert_eq!(snap.plugin("queue").unwrap().sample("queue_depth", &[("queue", "mail")]), Some(12.0));
/// ```
pub trait Collector: Send + Sync {
    /// The plug-in's name, unique within one collector; it labels the
    /// plug-in's report and its `vitals_collection_duration_seconds` series.
    fn name(&self) -> &str;

    /// Adds this moment's samples to `out`, or says why it cannot.
    ///
    /// Samples added before an error are discarded with the collection.
    fn collect(&self, out: &mut Samples) -> Result<(), Error>;

    /// False when the plug-in cannot work here (an OS it does not support, a
    /// device that is absent): it is then reported `unavailable` and its
    /// `collect` is not called. Checked before each collection.
    fn is_available(&self) -> bool {
        true
    }

    /// The interval at which the plug-in wants to be sampled in the
    /// background, or `None` (the default) to be collected by each snapshot.
    /// [`Plugin::set_interval`] overrides it.
    fn default_interval(&self) -> Option<Duration> {
        None
    }
}

impl<T: Collector + ?Sized> Collector for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        (**self).collect(out)
    }
    fn is_available(&self) -> bool {
        (**self).is_available()
    }
    fn default_interval(&self) -> Option<Duration> {
        (**self).default_interval()
    }
}

impl<T: Collector + ?Sized> Collector for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        (**self).collect(out)
    }
    fn is_available(&self) -> bool {
        (**self).is_available()
    }
    fn default_interval(&self) -> Option<Duration> {
        (**self).default_interval()
    }
}

/// Whether a sample is a running total or a value that goes up and down
/// (how exporters should type it).
///
/// ```
/// assert_eq!(vitals::SampleKind::Counter.as_str(), "counter");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// A total that only grows (bytes received, requests served).
    Counter,
    /// A value that goes up and down (memory in use, a ratio).
    Gauge,
}

impl SampleKind {
    /// The lowercase name used in JSON.
    ///
    /// ```
    /// assert_eq!(vitals::SampleKind::Gauge.as_str(), "gauge");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            SampleKind::Counter => "counter",
            SampleKind::Gauge => "gauge",
        }
    }
}

/// One value reported by a plug-in.
///
/// Values are `f64`; non-finite ones are spelled `"NaN"`, `"+Inf"` and
/// `"-Inf"` in JSON, as for gauges.
///
/// ```
/// let mut out = vitals::Samples::new();
/// out.counter("jobs_total", &[], 7.0).unwrap();
/// let s = &out.as_slice()[0];
/// assert_eq!((&*s.name, s.kind, s.value), ("jobs_total", vitals::SampleKind::Counter, 7.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Metric name (Prometheus rules, as for core metrics).
    pub name: Arc<str>,
    /// Label set.
    pub labels: Labels,
    /// Counter or gauge.
    pub kind: SampleKind,
    /// The value.
    #[serde(with = "crate::non_finite")]
    pub value: f64,
}

/// The samples one collection produces; [`Collector::collect`] adds to it.
///
/// Names and label keys are checked against the Prometheus rules: a bad one
/// is refused with an [`Error`] (and no sample is added), so `?` passes it on
/// and the plug-in is reported with that error. At most
/// [`MAX_PLUGIN_SAMPLES`] samples are accepted.
///
/// ```
/// let mut out = vitals::Samples::new();
/// out.gauge("temperature_celsius", &[("sensor", "cpu")], 41.5).unwrap();
/// assert!(out.gauge("bad name", &[], 1.0).is_err());
/// assert_eq!(out.len(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Samples {
    items: Vec<Sample>,
    /// Values refused (a counter that is negative or not finite).
    dropped: u64,
}

impl Samples {
    /// An empty set.
    ///
    /// ```
    /// assert!(vitals::Samples::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Samples::default()
    }

    /// Adds a value that goes up and down.
    ///
    /// ```
    /// let mut out = vitals::Samples::new();
    /// out.gauge("queue_depth", &[], 3.0).unwrap();
    /// assert_eq!(out.as_slice()[0].value, 3.0);
    /// ```
    pub fn gauge(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> Result<(), Error> {
        self.push(name, labels, SampleKind::Gauge, value)
    }

    /// Adds a running total (in `f64`, which is exact for whole numbers up
    /// to 2^53, about 9 PB in bytes).
    ///
    /// A counter is finite and non-negative: any other value (NaN, ±∞, a
    /// negative number) is refused with [`Error::InvalidValue`], left out of
    /// the report, and counted in the plug-in's
    /// [`PluginStats::dropped_samples`], so that no exporter ever writes a
    /// counter its readers reject.
    ///
    /// ```
    /// let mut out = vitals::Samples::new();
    /// out.counter("bytes_total", &[("dir", "rx")], 4096.0).unwrap();
    /// assert_eq!(out.as_slice()[0].value, 4096.0);
    /// assert!(out.counter("bytes_total", &[("dir", "tx")], f64::NAN).is_err());
    /// assert_eq!(out.len(), 1);
    /// ```
    pub fn counter(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), Error> {
        if !(value.is_finite() && value >= 0.0) {
            self.dropped = self.dropped.saturating_add(1);
            return Err(Error::InvalidValue {
                name: name.to_owned(),
                value: value.to_string(),
                expected: "a counter is finite and not negative",
            });
        }
        // -0.0 is a zero; written as "-0" it would read as negative.
        self.push(name, labels, SampleKind::Counter, value.abs())
    }

    fn push(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        kind: SampleKind,
        value: f64,
    ) -> Result<(), Error> {
        if self.items.len() >= MAX_PLUGIN_SAMPLES {
            return Err(Error::CardinalityLimit {
                name: name.to_owned(),
                limit: MAX_PLUGIN_SAMPLES,
            });
        }
        validate_metric_name(name)?;
        validate_labels(name, labels, &[])?;
        self.items.push(Sample {
            name: Arc::from(name),
            labels: Labels::from_pairs(labels),
            kind,
            value,
        });
        Ok(())
    }

    /// Number of samples.
    ///
    /// ```
    /// assert_eq!(vitals::Samples::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are none.
    ///
    /// ```
    /// assert!(vitals::Samples::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The samples, in the order they were added.
    ///
    /// ```
    /// let mut out = vitals::Samples::new();
    /// out.gauge("a", &[], 1.0).unwrap();
    /// assert_eq!(&*out.as_slice()[0].name, "a");
    /// ```
    pub fn as_slice(&self) -> &[Sample] {
        &self.items
    }
}

/// What the latest collection of a plug-in came to.
///
/// ```
/// let json = serde_json::to_string(&vitals::PluginStatus::TimedOut).unwrap();
/// assert_eq!(json, r#""timed_out""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginStatus {
    /// The latest collection succeeded.
    Ok,
    /// The latest collection returned an error or panicked
    /// ([`PluginStats::last_error`] says which).
    Error,
    /// A collection has been running for longer than the plug-in's deadline.
    TimedOut,
    /// [`Collector::is_available`] said no.
    Unavailable,
    /// Disabled with [`Plugin::set_enabled`]; not collected.
    Disabled,
    /// No collection has finished yet.
    Pending,
}

/// Running statistics of one plug-in.
///
/// ```
/// use vitals::{Collector, Error, MetricsCollector, Samples};
///
/// struct Broken;
/// impl Collector for Broken {
///     fn name(&self) -> &str { "broken" }
///     fn collect(&self, _: &mut Samples) -> Result<(), Error> {
///         Err(Error::Collection("sensor unplugged".into()))
///     }
/// }
///
/// let metrics = MetricsCollector::new();
/// metrics.register(Broken).unwrap();
/// let snap = metrics.snapshot();
/// let stats = &snap.plugin("broken").unwrap().stats;
/// assert_eq!((stats.collections, stats.errors), (1, 1));
/// assert!(stats.last_error.as_deref().unwrap().contains("sensor unplugged"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStats {
    /// Collections finished (successful or not).
    pub collections: u64,
    /// Collections that returned an error or panicked.
    pub errors: u64,
    /// Collections that ran past the deadline (each counted once, whether
    /// or not it finished later).
    pub timeouts: u64,
    /// The message of the latest error or panic, if any.
    pub last_error: Option<String>,
    /// Seconds the latest finished collection took.
    pub last_duration_seconds: Option<f64>,
    /// Seconds since the latest successful collection (the age of the
    /// samples reported), by the collector's clock; `None` before the first.
    pub last_success_age_seconds: Option<f64>,
    /// The background interval in seconds, `None` when collected on demand.
    pub interval_seconds: Option<f64>,
    /// The deadline in seconds.
    pub deadline_seconds: f64,
    /// Samples refused over the plug-in's life because their value did not
    /// fit their kind (see [`Samples::counter`]).
    #[serde(default)]
    pub dropped_samples: u64,
}

/// One plug-in's part of a [`Snapshot`](crate::Snapshot): its status, its
/// latest good samples and its statistics.
///
/// The samples are those of the latest successful collection: after an
/// error or a timeout they are the older ones, and
/// [`PluginStats::last_success_age_seconds`] tells how old. A disabled
/// plug-in reports none.
///
/// ```
/// use vitals::{Collector, Error, MetricsCollector, PluginStatus, Samples};
///
/// struct Answer;
/// impl Collector for Answer {
///     fn name(&self) -> &str { "answer" }
///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
///         out.gauge("answer", &[], 42.0)
///     }
/// }
///
/// let metrics = MetricsCollector::new();
/// metrics.register(Answer).unwrap();
/// let snap = metrics.snapshot();
/// let report = snap.plugin("answer").unwrap();
/// assert_eq!(report.status, PluginStatus::Ok);
/// assert_eq!(report.sample("answer", &[]), Some(42.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginReport {
    /// The plug-in's name.
    pub name: Arc<str>,
    /// What its latest collection came to.
    pub status: PluginStatus,
    /// Its latest good samples.
    pub samples: Vec<Sample>,
    /// Its running statistics.
    pub stats: PluginStats,
}

impl PluginReport {
    /// The value of the sample `name` with exactly these labels.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let snap = metrics.snapshot();
    /// assert!(snap.plugin("nothing").is_none());
    /// ```
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                &*s.name == name
                    && s.labels.len() == labels.len()
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| s.value)
    }
}

/// The control handle of a registered plug-in: enable or disable it, change
/// its interval or deadline, at run time. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use vitals::{Collector, Error, MetricsCollector, PluginStatus, Samples};
///
/// struct Tick;
/// impl Collector for Tick {
///     fn name(&self) -> &str { "tick" }
///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
///         out.gauge("tick", &[], 1.0)
///     }
/// }
///
/// let metrics = MetricsCollector::new();
/// let plugin = metrics.register(Tick).unwrap();
/// plugin.set_deadline(Duration::from_millis(200)).unwrap();
/// plugin.set_enabled(false);
/// assert_eq!(metrics.snapshot().plugin("tick").unwrap().status, PluginStatus::Disabled);
/// ```
#[derive(Clone)]
pub struct Plugin {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.entry.name)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plug-in's name.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().name(), "p");
    /// ```
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Turns collection on or off. A disabled plug-in is not collected, and
    /// snapshots report it `disabled` with no samples; its statistics are
    /// kept.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, out: &mut Samples) -> Result<(), Error> { out.gauge("v", &[], 1.0) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_enabled(false);
    /// assert!(metrics.snapshot().plugin("p").unwrap().samples.is_empty());
    /// p.set_enabled(true);
    /// assert_eq!(metrics.snapshot().plugin("p").unwrap().sample("v", &[]), Some(1.0));
    /// ```
    pub fn set_enabled(&self, enabled: bool) {
        let mut st = self.entry.state.lock();
        st.enabled = enabled;
        if !enabled {
            st.samples.clear();
            // A request left waiting would count its age against the
            // deadline once enabled again.
            st.requested = None;
        }
        drop(st);
        self.entry.wake.notify_all();
    }

    /// True unless disabled.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.register(P).unwrap().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.entry.state.lock().enabled
    }

    /// Samples in the background every `interval` (at least 1 ms), or with
    /// `None`, at each snapshot. Takes effect at once: the worker is woken
    /// and plans its next collection from its last one.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_interval(Some(Duration::from_secs(5))).unwrap();
    /// assert!(p.set_interval(Some(Duration::ZERO)).is_err());
    /// ```
    pub fn set_interval(&self, interval: Option<Duration>) -> Result<(), Error> {
        if let Some(i) = interval {
            check_period("interval", i)?;
        }
        self.entry.state.lock().interval = interval;
        self.entry.wake.notify_all();
        Ok(())
    }

    /// The background interval, or `None` when collected on demand.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().interval(), None);
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        self.entry.state.lock().interval
    }

    /// How long a snapshot waits for this plug-in (at least 1 ms; default
    /// [`DEFAULT_PLUGIN_DEADLINE`] or the collector's setting). A deadline
    /// too long for the platform's clock to add (such as `Duration::MAX`)
    /// means the snapshot waits until the collection finishes.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_deadline(Duration::from_millis(50)).unwrap();
    /// assert_eq!(p.deadline(), Duration::from_millis(50));
    /// ```
    pub fn set_deadline(&self, deadline: Duration) -> Result<(), Error> {
        check_period("deadline", deadline)?;
        self.entry.state.lock().deadline = deadline;
        Ok(())
    }

    /// The deadline.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().deadline(), vitals::DEFAULT_PLUGIN_DEADLINE);
    /// ```
    pub fn deadline(&self) -> Duration {
        self.entry.state.lock().deadline
    }
}

pub(crate) fn check_period(what: &str, period: Duration) -> Result<(), Error> {
    if period < MIN_PERIOD {
        return Err(Error::InvalidConfig(format!(
            "a plug-in {what} must be at least 1 ms, not {period:?}"
        )));
    }
    Ok(())
}

/// One registered plug-in, shared by the registry and its worker thread.
struct Entry {
    name: Arc<str>,
    collector: Box<dyn Collector>,
    clock: Arc<dyn Clock>,
    duration: Histogram,
    state: Mutex<State>,
    /// Wakes the worker: a request, a new interval, enabling, shutdown.
    wake: Condvar,
    /// Wakes waiting snapshots when a collection finishes.
    done: Condvar,
}

struct State {
    enabled: bool,
    interval: Option<Duration>,
    deadline: Duration,
    shutdown: bool,
    /// When a snapshot asked for a collection that has not started yet.
    requested: Option<Instant>,
    /// Since when the collection in flight counts against the deadline:
    /// the snapshot's request, or the start of a background collection.
    /// `None` when idle.
    running_since: Option<Instant>,
    /// The in-flight collection has already been counted as a timeout.
    timeout_counted: bool,
    last_start: Option<Instant>,
    /// Finished collections; waiters watch it change.
    finished: u64,
    status: PluginStatus,
    samples: Vec<Sample>,
    last_good_at: Option<Duration>,
    errors: u64,
    timeouts: u64,
    last_error: Option<String>,
    last_duration: Option<Duration>,
    dropped_samples: u64,
}

enum Outcome {
    Ok(Samples),
    /// The error, and the samples refused before it.
    Failed(String, u64),
    Unavailable,
}

impl Entry {
    /// The worker: waits for a request or its interval, collects, records.
    fn work(&self) {
        loop {
            let mut st = self.state.lock();
            loop {
                if st.shutdown {
                    return;
                }
                if st.enabled && st.requested.is_some() {
                    break;
                }
                match (st.enabled, st.interval, st.last_start) {
                    (true, Some(_), None) => break,
                    (true, Some(every), Some(last)) => match instant_after(last, every) {
                        Some(due) if Instant::now() >= due => break,
                        Some(due) => {
                            self.wake.wait_until(&mut st, due);
                        }
                        None => self.wake.wait(&mut st),
                    },
                    _ => self.wake.wait(&mut st),
                }
            }
            let started = Instant::now();
            // The deadline runs from the request: that is what the waiting
            // snapshot sees, however late this thread got to run.
            st.running_since = Some(st.requested.take().unwrap_or(started));
            st.timeout_counted = false;
            st.last_start = Some(started);
            drop(st);

            let outcome = self.run_once();
            let elapsed = started.elapsed();
            self.duration.record_duration(elapsed);

            let mut st = self.state.lock();
            let since = st.running_since.take().unwrap_or(started);
            st.finished += 1;
            st.last_duration = Some(elapsed);
            if !st.timeout_counted && since.elapsed() >= st.deadline {
                st.timeouts += 1;
            }
            match outcome {
                Outcome::Ok(samples) => {
                    st.status = PluginStatus::Ok;
                    st.dropped_samples = st.dropped_samples.saturating_add(samples.dropped);
                    if st.enabled {
                        st.samples = samples.items;
                    }
                    st.last_good_at = Some(self.clock.monotonic());
                }
                Outcome::Failed(message, dropped) => {
                    st.status = PluginStatus::Error;
                    st.dropped_samples = st.dropped_samples.saturating_add(dropped);
                    st.errors += 1;
                    st.last_error = Some(message);
                }
                Outcome::Unavailable => {
                    st.status = PluginStatus::Unavailable;
                    st.samples.clear();
                }
            }
            drop(st);
            self.done.notify_all();
        }
    }

    /// One call of the plug-in, with its panics caught.
    fn run_once(&self) -> Outcome {
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            if !self.collector.is_available() {
                return Outcome::Unavailable;
            }
            let mut out = Samples::new();
            match self.collector.collect(&mut out) {
                Ok(()) => Outcome::Ok(out),
                Err(err) => Outcome::Failed(err.to_string(), out.dropped),
            }
        }));
        attempt.unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
            Outcome::Failed(format!("panicked: {message}"), 0)
        })
    }

    fn report(&self, now: Duration) -> PluginReport {
        let mut st = self.state.lock();
        let overdue = st
            .running_since
            .or(st.requested)
            .is_some_and(|since| since.elapsed() >= st.deadline);
        if overdue && !st.timeout_counted {
            st.timeout_counted = true;
            st.timeouts += 1;
        }
        let status = if !st.enabled {
            PluginStatus::Disabled
        } else if overdue {
            PluginStatus::TimedOut
        } else {
            st.status
        };
        PluginReport {
            name: Arc::clone(&self.name),
            status,
            samples: if st.enabled {
                st.samples.clone()
            } else {
                Vec::new()
            },
            stats: PluginStats {
                collections: st.finished,
                errors: st.errors,
                timeouts: st.timeouts,
                last_error: st.last_error.clone(),
                last_duration_seconds: st.last_duration.map(|d| d.as_secs_f64()),
                last_success_age_seconds: st
                    .last_good_at
                    .map(|at| now.saturating_sub(at).as_secs_f64()),
                interval_seconds: st.interval.map(|d| d.as_secs_f64()),
                deadline_seconds: st.deadline.as_secs_f64(),
                dropped_samples: st.dropped_samples,
            },
        }
    }
}

/// The plug-ins of one registry, and the runner that collects them.
#[derive(Default)]
pub(crate) struct PluginSet {
    entries: RwLock<Vec<Arc<Entry>>>,
}

impl PluginSet {
    /// Registers `collector` and starts its worker thread.
    pub(crate) fn register(
        &self,
        collector: Box<dyn Collector>,
        clock: Arc<dyn Clock>,
        duration: Histogram,
        deadline: Duration,
    ) -> Result<Plugin, Error> {
        let name: Arc<str> = Arc::from(collector.name());
        if name.is_empty() {
            return Err(Error::InvalidConfig(
                "a plug-in collector needs a non-empty name".into(),
            ));
        }
        let interval = collector.default_interval();
        if let Some(i) = interval {
            check_period("interval", i)?;
        }
        let mut entries = self.entries.write();
        if entries.iter().any(|e| e.name == name) {
            return Err(Error::DuplicateCollector(name.to_string()));
        }
        let entry = Arc::new(Entry {
            name: Arc::clone(&name),
            collector,
            clock,
            duration,
            state: Mutex::new(State {
                enabled: true,
                interval,
                deadline,
                shutdown: false,
                requested: None,
                running_since: None,
                timeout_counted: false,
                last_start: None,
                finished: 0,
                status: PluginStatus::Pending,
                samples: Vec::new(),
                last_good_at: None,
                errors: 0,
                timeouts: 0,
                last_error: None,
                last_duration: None,
                dropped_samples: 0,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&entry);
        std::thread::Builder::new()
            // A thread name cannot hold a NUL; the plug-in's own name can.
            .name(format!("vitals-plugin-{}", name.replace('\0', "\\0")))
            .spawn(move || worker.work())
            .map_err(|e| {
                Error::Collection(format!("cannot start the worker thread of {name:?}: {e}"))
            })?;
        entries.push(Arc::clone(&entry));
        Ok(Plugin { entry })
    }

    /// The control handle of the plug-in called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Plugin> {
        self.entries
            .read()
            .iter()
            .find(|e| &*e.name == name)
            .map(|entry| Plugin {
                entry: Arc::clone(entry),
            })
    }

    /// Collects every due plug-in, each within its deadline, and reports
    /// all of them. `now` reads the registry clock for sample ages.
    pub(crate) fn collect(&self, now: impl Fn() -> Duration) -> Vec<PluginReport> {
        let entries: Vec<Arc<Entry>> = self.entries.read().clone();
        if entries.is_empty() {
            return Vec::new();
        }
        // Ask everyone first, so that slow plug-ins run side by side and the
        // snapshot waits for the slowest, not for the sum.
        let asked = Instant::now();
        let mut waits = Vec::with_capacity(entries.len());
        for entry in &entries {
            let mut st = entry.state.lock();
            if !st.enabled {
                continue;
            }
            let never_ran = st.finished == 0;
            let on_demand = st.interval.is_none() || never_ran;
            if let Some(since) = st.running_since.or(st.requested) {
                // At most one collection asked for or in flight: join it
                // (until its own deadline) rather than start another.
                if on_demand {
                    waits.push((
                        Arc::clone(entry),
                        st.finished,
                        instant_after(since, st.deadline),
                    ));
                }
            } else if on_demand {
                st.requested = Some(asked);
                waits.push((
                    Arc::clone(entry),
                    st.finished,
                    instant_after(asked, st.deadline),
                ));
                drop(st);
                entry.wake.notify_all();
            }
        }
        for (entry, finished, until) in waits {
            let mut st = entry.state.lock();
            while st.finished == finished && !st.shutdown && st.enabled {
                match until {
                    Some(until) => {
                        if entry.done.wait_until(&mut st, until).timed_out() {
                            break;
                        }
                    }
                    // A deadline beyond what an `Instant` holds: wait for the
                    // collection itself.
                    None => entry.done.wait(&mut st),
                }
            }
        }
        let now = now();
        entries.iter().map(|e| e.report(now)).collect()
    }
}

impl Drop for PluginSet {
    fn drop(&mut self) {
        // Workers hold their entry, not the registry: tell them to stop. A
        // worker stuck in a collection stops when that collection returns.
        for entry in self.entries.get_mut().iter() {
            entry.state.lock().shutdown = true;
            entry.wake.notify_all();
            entry.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting {
        calls: Arc<AtomicU32>,
        sleep: Duration,
    }

    impl Collector for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), Error> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(self.sleep);
            out.counter("calls_total", &[], f64::from(n))
        }
    }

    fn set() -> (PluginSet, Arc<AtomicU32>, Plugin) {
        let set = PluginSet::default();
        let calls = Arc::new(AtomicU32::new(0));
        let plugin = set
            .register(
                Box::new(Counting {
                    calls: Arc::clone(&calls),
                    sleep: Duration::ZERO,
                }),
                Arc::new(ManualClock::new()),
                Histogram::detached(),
                DEFAULT_PLUGIN_DEADLINE,
            )
            .unwrap();
        (set, calls, plugin)
    }

    #[test]
    fn each_collection_calls_an_on_demand_plugin_once() {
        let (set, calls, _) = set();
        for i in 1..=3u32 {
            let reports = set.collect(|| Duration::ZERO);
            assert_eq!(reports[0].status, PluginStatus::Ok);
            assert_eq!(reports[0].sample("calls_total", &[]), Some(f64::from(i)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let (set, calls, _) = set();
        let again = set.register(
            Box::new(Counting {
                calls,
                sleep: Duration::ZERO,
            }),
            Arc::new(ManualClock::new()),
            Histogram::detached(),
            DEFAULT_PLUGIN_DEADLINE,
        );
        assert!(matches!(again, Err(Error::DuplicateCollector(n)) if n == "counting"));
    }

    #[test]
    fn samples_refuse_bad_names_and_too_many_values() {
        let mut out = Samples::new();
        assert!(out.gauge("ok_name", &[("1bad", "v")], 1.0).is_err());
        for i in 0..MAX_PLUGIN_SAMPLES {
            out.counter("n_total", &[], i as f64).unwrap();
        }
        assert!(matches!(
            out.gauge("one_more", &[], 1.0),
            Err(Error::CardinalityLimit { .. })
        ));
        assert_eq!(out.len(), MAX_PLUGIN_SAMPLES);
    }

    #[test]
    fn dropping_the_set_stops_idle_workers() {
        struct Flags(Arc<AtomicU32>);
        impl Collector for Flags {
            fn name(&self) -> &str {
                "flags"
            }
            fn collect(&self, _: &mut Samples) -> Result<(), Error> {
                Ok(())
            }
        }
        impl Drop for Flags {
            fn drop(&mut self) {
                self.0.store(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicU32::new(0));
        let set = PluginSet::default();
        let plugin = set
            .register(
                Box::new(Flags(Arc::clone(&dropped))),
                Arc::new(ManualClock::new()),
                Histogram::detached(),
                DEFAULT_PLUGIN_DEADLINE,
            )
            .unwrap();
        set.collect(|| Duration::ZERO);
        drop(plugin);
        drop(set);
        // The plug-in is freed only once its worker thread has let go of it.
        let start = std::time::Instant::now();
        while dropped.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
