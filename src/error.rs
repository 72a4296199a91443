//! The one error type of the crate.

use thiserror::Error;

/// Everything that can go wrong when registering or configuring a metric.
///
/// The hot path (incrementing, setting, recording) never fails; errors only
/// come from the `try_*` methods of [`MetricsCollector`](crate::MetricsCollector).
/// The macros and the infallible methods never return them: they hand back a
/// detached handle, count the event in `vitals_errors_total{kind="..."}` and
/// keep the first message for the snapshot.
///
/// ```
/// use vitals::{Error, MetricsCollector};
///
/// let metrics = MetricsCollector::new();
/// let err = metrics.try_counter("bad name", &[]).unwrap_err();
/// assert!(matches!(err, Error::InvalidMetricName { .. }));
/// assert_eq!(err.kind(), "invalid_name");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidMetricName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A label key does not match `[a-zA-Z_][a-zA-Z0-9_]*`, starts with the
    /// reserved `__`, repeats, or is reserved for the metric's kind.
    #[error("invalid label name {label:?} on metric {metric:?}: {reason}")]
    InvalidLabelName {
        /// The metric the label was given for.
        metric: String,
        /// The rejected label key.
        label: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The name is already registered as another kind of metric.
    #[error("metric {name:?} is a {existing}, not a {requested}")]
    KindMismatch {
        /// The metric name.
        name: String,
        /// The kind it was first registered as.
        existing: &'static str,
        /// The kind asked for now.
        requested: &'static str,
    },
    /// Two sources of series want one metric name: a plug-in reports a name
    /// the program's metrics use, or a name plug-in series hold as the
    /// other kind, or a series (name and labels) already reported; or the
    /// program registers a name plug-in series hold. The first holder keeps
    /// the name; the newcomer's series are left out of snapshots. Reported
    /// once per plug-in and name, in
    /// `vitals_errors_total{kind="name_clash"}` and the snapshot's
    /// `first_error`.
    ///
    /// ```
    /// use vitals::{Collector, Error, MetricsCollector, Samples};
    ///
    /// struct Threads;
    /// impl Collector for Threads {
    ///     fn name(&self) -> &str { "threads" }
    ///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
    ///         out.gauge("worker_threads", &[], 8.0)
    ///     }
    /// }
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.register(Threads).unwrap();
    /// let _ = metrics.snapshot(); // the plug-in's series now hold the name
    /// let err = metrics.try_gauge("worker_threads", &[]).unwrap_err();
    /// assert!(matches!(err, Error::NameClash { .. }));
    /// assert_eq!(err.kind(), "name_clash");
    /// ```
    #[error("metric {name:?} is already reported by {holder}; {newcomer} cannot report it too")]
    NameClash {
        /// The metric name.
        name: String,
        /// Who holds it: `the program (as a counter)`, `plug-in "process"`.
        holder: String,
        /// Who was refused.
        newcomer: String,
    },
    /// A new label set would exceed the metric's cardinality limit.
    #[error("metric {name:?} already has {limit} label sets, its cardinality limit")]
    CardinalityLimit {
        /// The metric name.
        name: String,
        /// The limit in force for this name.
        limit: usize,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A `metrics` crate recorder was already installed in this process, so
    /// the vitals bridge could not become the global recorder (the `metrics`
    /// crate allows one, for the whole life of the program). Only returned
    /// by `bridge::install` (cargo feature `metrics-bridge`).
    #[error("a global `metrics` recorder is already installed; it can be set once per process")]
    RecorderAlreadyInstalled,
    /// A plug-in collector could not collect its samples; the text says why.
    /// Plug-ins return it from [`Collector::collect`](crate::Collector::collect).
    #[error("collection failed: {0}")]
    Collection(String),
    /// A value a metric of this kind cannot hold, such as a negative or
    /// NaN counter sample from a plug-in. The value is not recorded.
    ///
    /// ```
    /// let mut out = vitals::Samples::new();
    /// let err = out.counter("bytes_total", &[], -1.0).unwrap_err();
    /// assert_eq!(err.kind(), "invalid_value");
    /// assert!(err.to_string().contains("-1"));
    /// ```
    #[error("metric {name:?} cannot take the value {value}: {expected}")]
    InvalidValue {
        /// The metric name.
        name: String,
        /// The value, as Rust prints it (`NaN`, `-1`, `inf`).
        value: String,
        /// What the metric accepts.
        expected: &'static str,
    },
    /// A plug-in collector with this name is already registered on the
    /// collector.
    #[error("a plug-in collector named {0:?} is already registered")]
    DuplicateCollector(String),
    /// A file or socket operation failed: an exporter's or reader's file,
    /// the HTTP endpoint's address. The operating system's error is the
    /// [`source`](std::error::Error::source).
    ///
    /// ```
    /// use std::error::Error as _;
    /// let err = vitals::export::JsonLinesReader::open("/nonexistent/m.jsonl").unwrap_err();
    /// let io = err.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
    /// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    /// ```
    #[error("{operation} {path:?} failed: {source}")]
    Io {
        /// What was being done (`"open"`, `"write"`, `"rename"`, `"bind"`, ...).
        operation: &'static str,
        /// The file, directory or address involved.
        path: String,
        /// The operating system's error class (`StorageFull`, `NotFound`, ...).
        kind: std::io::ErrorKind,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A history query's time range is empty or inverted (`start >= end`).
    #[error("invalid time range: start {start_ms} ms is not before end {end_ms} ms")]
    InvalidTimeRange {
        /// Start of the range, Unix ms.
        start_ms: u64,
        /// End of the range, Unix ms.
        end_ms: u64,
    },
    /// A history query asked for at most zero points.
    #[error("a query must allow at least one point per series, not 0")]
    ZeroMaxPoints,
    /// A history query's aggregation has no meaning for the metric's kind
    /// (`p95` of a gauge, `last` of a counter, ...).
    #[error("aggregation {aggregation:?} does not apply to {kind} {name:?}")]
    UnsupportedAggregation {
        /// The aggregation asked for.
        aggregation: &'static str,
        /// The metric's kind.
        kind: &'static str,
        /// The metric's name.
        name: String,
    },
    /// An aggregation name that is not one of `sum avg min max count last
    /// rate p50 p90 p95 p99`.
    #[error("unknown aggregation {0:?}")]
    UnknownAggregation(String),
    /// A history level name that is not one of `raw 1m 5m 1h`.
    #[error("unknown history level {0:?}")]
    UnknownLevel(String),
    /// An exemplar's labels break a rule (label names as for series, at
    /// most [`MAX_EXEMPLAR_LABEL_CHARS`](crate::snapshot::MAX_EXEMPLAR_LABEL_CHARS)
    /// characters); the value was recorded all the same.
    #[error("exemplar refused: {reason}")]
    InvalidExemplar {
        /// Which rule it broke.
        reason: String,
    },
    /// An exporter failed for a reason other than I/O, or panicked.
    #[error("exporter {exporter:?} failed: {message}")]
    Export {
        /// The exporter's name.
        exporter: String,
        /// What went wrong.
        message: String,
    },
    /// An environment variable read for configuration (such as
    /// `OTEL_RESOURCE_ATTRIBUTES`) does not parse. The message names the
    /// entry, never the value (headers carry credentials).
    ///
    /// ```
    /// let err = vitals::Error::InvalidEnvVar {
    ///     variable: "OTEL_SERVICE_NAME".into(),
    ///     reason: "empty".into(),
    /// };
    /// assert_eq!(err.kind(), "invalid_env");
    /// assert!(err.to_string().contains("OTEL_SERVICE_NAME"));
    /// ```
    #[error("environment variable {variable}: {reason}")]
    InvalidEnvVar {
        /// The variable's name.
        variable: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// A short, stable label for the error class, used as the `kind` label of
    /// `vitals_errors_total`.
    ///
    /// ```
    /// let err = vitals::Error::InvalidConfig("zero slots".into());
    /// assert_eq!(err.kind(), "invalid_config");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidMetricName { .. } => "invalid_name",
            Error::InvalidLabelName { .. } => "invalid_label",
            Error::KindMismatch { .. } => "kind_mismatch",
            Error::NameClash { .. } => "name_clash",
            Error::CardinalityLimit { .. } => "cardinality_limit",
            Error::InvalidConfig(_) => "invalid_config",
            Error::RecorderAlreadyInstalled => "recorder_already_installed",
            Error::Collection(_) => "collection",
            Error::InvalidValue { .. } => "invalid_value",
            Error::DuplicateCollector(_) => "duplicate_collector",
            Error::Io { .. } => "io",
            Error::InvalidTimeRange { .. } => "invalid_time_range",
            Error::ZeroMaxPoints => "zero_max_points",
            Error::UnsupportedAggregation { .. } => "unsupported_aggregation",
            Error::UnknownAggregation(_) => "unknown_aggregation",
            Error::UnknownLevel(_) => "unknown_level",
            Error::InvalidExemplar { .. } => "invalid_exemplar",
            Error::Export { .. } => "export",
            Error::InvalidEnvVar { .. } => "invalid_env",
        }
    }

    /// An [`Error::Io`] for `operation` on `path`.
    ///
    /// ```
    /// let io = std::io::Error::from(std::io::ErrorKind::NotFound);
    /// let err = vitals::Error::io("open", std::path::Path::new("/nope"), io);
    /// assert!(matches!(err, vitals::Error::Io { kind: std::io::ErrorKind::NotFound, .. }));
    /// assert_eq!(err.kind(), "io");
    /// ```
    pub fn io(operation: &'static str, path: &std::path::Path, err: std::io::Error) -> Self {
        Self::io_on(operation, path.display().to_string(), err)
    }

    /// An [`Error::Io`] on something that is not a path (an address).
    pub(crate) fn io_on(operation: &'static str, target: String, err: std::io::Error) -> Self {
        Error::Io {
            operation,
            path: target,
            kind: err.kind(),
            source: err,
        }
    }
}

/// Two errors are equal when they are of one kind and say the same thing
/// (an I/O error's source is compared by its message).
///
/// ```
/// let a = vitals::MetricsCollector::new().try_counter("bad name", &[]).unwrap_err();
/// let b = vitals::MetricsCollector::new().try_counter("bad name", &[]).unwrap_err();
/// assert_eq!(a, b);
/// ```
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.to_string() == other.to_string()
    }
}

impl Eq for Error {}

/// A copy; an I/O error's source is copied as its kind and message (the
/// operating system's error code stays with the original).
///
/// ```
/// let io = std::io::Error::from(std::io::ErrorKind::StorageFull);
/// let err = vitals::Error::io("write", std::path::Path::new("m.jsonl"), io);
/// assert_eq!(err.clone(), err);
/// ```
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::InvalidMetricName { name, reason } => Error::InvalidMetricName {
                name: name.clone(),
                reason,
            },
            Error::InvalidLabelName {
                metric,
                label,
                reason,
            } => Error::InvalidLabelName {
                metric: metric.clone(),
                label: label.clone(),
                reason,
            },
            Error::KindMismatch {
                name,
                existing,
                requested,
            } => Error::KindMismatch {
                name: name.clone(),
                existing,
                requested,
            },
            Error::NameClash {
                name,
                holder,
                newcomer,
            } => Error::NameClash {
                name: name.clone(),
                holder: holder.clone(),
                newcomer: newcomer.clone(),
            },
            Error::CardinalityLimit { name, limit } => Error::CardinalityLimit {
                name: name.clone(),
                limit: *limit,
            },
            Error::InvalidConfig(m) => Error::InvalidConfig(m.clone()),
            Error::RecorderAlreadyInstalled => Error::RecorderAlreadyInstalled,
            Error::Collection(m) => Error::Collection(m.clone()),
            Error::InvalidValue {
                name,
                value,
                expected,
            } => Error::InvalidValue {
                name: name.clone(),
                value: value.clone(),
                expected,
            },
            Error::DuplicateCollector(n) => Error::DuplicateCollector(n.clone()),
            Error::Io {
                operation,
                path,
                kind,
                source,
            } => Error::Io {
                operation,
                path: path.clone(),
                kind: *kind,
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::InvalidTimeRange { start_ms, end_ms } => Error::InvalidTimeRange {
                start_ms: *start_ms,
                end_ms: *end_ms,
            },
            Error::ZeroMaxPoints => Error::ZeroMaxPoints,
            Error::UnsupportedAggregation {
                aggregation,
                kind,
                name,
            } => Error::UnsupportedAggregation {
                aggregation,
                kind,
                name: name.clone(),
            },
            Error::UnknownAggregation(a) => Error::UnknownAggregation(a.clone()),
            Error::UnknownLevel(l) => Error::UnknownLevel(l.clone()),
            Error::InvalidExemplar { reason } => Error::InvalidExemplar {
                reason: reason.clone(),
            },
            Error::Export { exporter, message } => Error::Export {
                exporter: exporter.clone(),
                message: message.clone(),
            },
            Error::InvalidEnvVar { variable, reason } => Error::InvalidEnvVar {
                variable: variable.clone(),
                reason: reason.clone(),
            },
        }
    }
}
