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
//!
//! This file holds what a plug-in writer and a reader of snapshots see: the
//! trait, the samples, the report; `runner` holds the worker threads, the
//! deadlines and the [`Plugin`] control handle.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::key::{validate_labels, validate_metric_name, Labels};
use crate::unit::Unit;

mod runner;

pub use runner::Plugin;
pub(crate) use runner::{check_period, Collected, PluginSet};

/// How long a snapshot waits for one plug-in unless told otherwise.
///
/// ```
/// assert_eq!(vitals::plugin::DEFAULT_PLUGIN_DEADLINE, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_PLUGIN_DEADLINE: Duration = Duration::from_secs(1);

/// Samples one plug-in may report per collection; more are refused with
/// [`Error::CardinalityLimit`], so that a runaway plug-in cannot grow the
/// snapshot without bound.
///
/// ```
/// assert_eq!(vitals::plugin::MAX_PLUGIN_SAMPLES, 10_000);
/// ```
pub const MAX_PLUGIN_SAMPLES: usize = 10_000;

/// The shortest interval and deadline accepted: below it the worker would
/// spin rather than sample.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A plug-in: something that reports a set of values when asked, such as
/// the state of the machine, of the process, or of a dependency.
///
/// Register one with [`MetricsCollector::register`](crate::MetricsCollector::register);
/// its samples then appear in every [`Snapshot`](crate::Snapshot) as
/// ordinary counter and gauge series (what OpenTelemetry calls observable
/// instruments), and its status among the snapshot's `plugins`.
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
/// assert_eq!(snap.gauge("queue_depth", &[("queue", "mail")]), Some(12.0));
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
/// assert_eq!(vitals::plugin::SampleKind::Counter.as_str(), "counter");
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
    /// assert_eq!(vitals::plugin::SampleKind::Gauge.as_str(), "gauge");
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
/// assert_eq!((&*s.name, s.kind, s.value), ("jobs_total", vitals::plugin::SampleKind::Counter, 7.0));
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
    described: Vec<Description>,
    /// Values refused (a counter that is negative or not finite).
    dropped: u64,
}

/// The help text and unit a plug-in gave a metric name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Description {
    pub(crate) name: Arc<str>,
    pub(crate) unit: Option<Unit>,
    pub(crate) help: String,
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

    /// Gives metric `name` a help text and a unit, as
    /// [`MetricsCollector::describe`](crate::MetricsCollector::describe) does
    /// for the program's metrics. A plug-in may describe its metrics in every
    /// collection or once (the registry keeps the latest description of
    /// each name).
    ///
    /// ```
    /// use vitals::{Collector, Error, MetricsCollector, Samples, Unit};
    ///
    /// struct Disk;
    /// impl Collector for Disk {
    ///     fn name(&self) -> &str { "disk" }
    ///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
    ///         out.describe("disk_free_bytes", Some(Unit::Bytes), "Free space on the data disk")?;
    ///         out.gauge("disk_free_bytes", &[], 5e9)
    ///     }
    /// }
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.register(Disk).unwrap();
    /// let snap = metrics.snapshot();
    /// let info = snap.metadata("disk_free_bytes").unwrap();
    /// assert_eq!((info.unit.as_deref(), info.help.as_deref()), (Some("bytes"), Some("Free space on the data disk")));
    /// assert!(Samples::new().describe("x", Some(Unit::other("a b")), "bad unit").is_err());
    /// ```
    pub fn describe(&mut self, name: &str, unit: Option<Unit>, help: &str) -> Result<(), Error> {
        validate_metric_name(name)?;
        if let Some(unit) = unit.as_ref().filter(|u| !u.is_valid()) {
            return Err(Error::InvalidConfig(format!(
                "unit {:?} of metric {name:?} must match [a-zA-Z0-9_]+",
                unit.as_str()
            )));
        }
        if self.described.len() >= MAX_PLUGIN_SAMPLES {
            return Err(Error::CardinalityLimit {
                name: name.to_owned(),
                limit: MAX_PLUGIN_SAMPLES,
            });
        }
        self.described.push(Description {
            name: Arc::from(name),
            unit,
            help: help.to_owned(),
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
/// let json = serde_json::to_string(&vitals::plugin::PluginStatus::TimedOut).unwrap();
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
#[non_exhaustive]
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
    /// Series the latest good collection reported (all of them in the
    /// snapshot's `counters` and `gauges`, but those whose name another
    /// source already uses: see [`Error::NameClash`]).
    #[serde(default)]
    pub series: u64,
}

/// One plug-in's part of a [`Snapshot`](crate::Snapshot): its status and
/// statistics. Its values are ordinary series among the snapshot's
/// `counters` and `gauges`.
///
/// The values are those of the latest successful collection: after an
/// error or a timeout they are the older ones, and
/// [`PluginStats::last_success_age_seconds`] tells how old. A disabled
/// plug-in reports none.
///
/// ```
/// use vitals::{Collector, Error, MetricsCollector, Samples};
/// use vitals::plugin::PluginStatus;
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
/// assert_eq!((report.status, report.stats.series), (PluginStatus::Ok, 1));
/// assert_eq!(snap.gauge("answer", &[]), Some(42.0));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PluginReport {
    /// The plug-in's name.
    pub name: Arc<str>,
    /// What its latest collection came to.
    pub status: PluginStatus,
    /// Its running statistics.
    pub stats: PluginStats,
}
