//! [`RemoteWriteExporter`]: Prometheus remote write 1.0 (protobuf
//! `WriteRequest`, snappy block compression).
//!
//! # Mapping
//!
//! | vitals | series sent |
//! |---|---|
//! | counter `x_total` or `x` | `x_total` (the name a scrape of vitals shows) |
//! | gauge `x` | `x` |
//! | histogram `x` | `x{quantile="0.5"…"0.999"}` over the rolling window, `x_sum` and `x_count` over the life (as the text summary) |
//! | histogram `x` with bucket bounds | `x_bucket{le=…}` (cumulative, ending with `+Inf`), `x_sum`, `x_count` |
//!
//! A family whose names clash with an earlier family's (a counter `x` and
//! a gauge `x_total`) is left out whole, as in the text formats.
//!
//! Every series carries `__name__`, its labels and the configured external
//! labels (a series' own label wins over an external one of the same
//! name), sorted by name as the protocol requires. One sample per series
//! per snapshot, stamped with the snapshot's time (kept strictly
//! increasing, so two snapshots in one millisecond never collide).
//!
//! Native histograms and exemplars go in the `histograms` (4) and
//! `exemplars` (3) fields of the same `TimeSeries` message: the encoder
//! writes each series in one place (`SeriesOut::series`), where they will be added.
//! What plug-ins collect is ordinary counter and gauge series of the
//! snapshot, sent like any other (a float counter as its float).
//!
//! ```
//! let metrics = vitals::MetricsCollector::new();
//! metrics.counter("jobs", &[]).increment(2);
//! let body = vitals::export::push::encode_write_request(&metrics.snapshot(), &[])?;
//! // A counter is sent under its scrape name, with `_total`.
//! assert!(body.windows(10).any(|w| w == b"jobs_total"));
//! # Ok::<(), vitals::Error>(())
//! ```

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::error::Error;
use crate::export::prometheus::counter_base;
use crate::export::proto::ProtoWriter;
use crate::export::Exporter;
use crate::key::Labels;
use crate::metrics::histogram::Quantiles;
use crate::registry::MetricsCollector;
use crate::snapshot::{CounterSample, Snapshot};

use super::client::{Endpoint, HttpClient, Request};
use super::delivery::{Backlog, Delivery, DeliveryConfig, Dropped, Outgoing, PushStats};
use super::{base64, check_header_value};

/// Field numbers of prompb (`prompb/remote.proto`, `prompb/types.proto`).
mod field {
    /// `WriteRequest.timeseries`.
    pub(super) const TIMESERIES: u32 = 1;
    /// `TimeSeries.labels`, `.samples`.
    pub(super) const LABELS: u32 = 1;
    pub(super) const SAMPLES: u32 = 2;
    /// `Label.name`, `.value`.
    pub(super) const LABEL_NAME: u32 = 1;
    pub(super) const LABEL_VALUE: u32 = 2;
    /// `Sample.value` (double), `.timestamp` (int64, ms).
    pub(super) const SAMPLE_VALUE: u32 = 1;
    pub(super) const SAMPLE_TIMESTAMP: u32 = 2;
    /// `TimeSeries.exemplars`, `.histograms`.
    pub(super) const EXEMPLARS: u32 = 3;
    pub(super) const HISTOGRAMS: u32 = 4;
    /// `Exemplar.labels` (= 1, as `TimeSeries.labels`), `.value`,
    /// `.timestamp` (int64, ms).
    pub(super) const EXEMPLAR_VALUE: u32 = 2;
    pub(super) const EXEMPLAR_TIMESTAMP: u32 = 3;
    /// `Histogram`: integer counts, delta-encoded positive buckets.
    pub(super) const HISTOGRAM_COUNT_INT: u32 = 1;
    pub(super) const HISTOGRAM_SUM: u32 = 3;
    pub(super) const HISTOGRAM_SCHEMA: u32 = 4;
    pub(super) const HISTOGRAM_ZERO_THRESHOLD: u32 = 5;
    pub(super) const HISTOGRAM_ZERO_COUNT_INT: u32 = 6;
    pub(super) const HISTOGRAM_POSITIVE_SPANS: u32 = 11;
    pub(super) const HISTOGRAM_POSITIVE_DELTAS: u32 = 12;
    pub(super) const HISTOGRAM_TIMESTAMP: u32 = 15;
    /// `BucketSpan.offset` (sint32), `.length` (uint32).
    pub(super) const SPAN_OFFSET: u32 = 1;
    pub(super) const SPAN_LENGTH: u32 = 2;
}

const QUANTILE_LABELS: [&str; 5] = ["0.5", "0.9", "0.95", "0.99", "0.999"];

/// Series per request unless told otherwise (Prometheus' own
/// `max_samples_per_send` default).
const DEFAULT_MAX_SERIES_PER_REQUEST: usize = 2000;

/// A counter's value as the float remote write sends. The one place the
/// exporter reads a counter value.
fn counter_value(sample: &CounterSample) -> f64 {
    sample.value.as_f64()
}

/// Settings for a [`RemoteWriteExporter`].
///
/// ```
/// use vitals::export::push::RemoteWriteExporter;
///
/// let exporter = RemoteWriteExporter::builder("http://127.0.0.1:9090/api/v1/write")
///     .external_label("job", "api")
///     .external_label("instance", "host-1:8080")
///     .bearer_token("s3cret")
///     .build()
///     .unwrap();
/// assert_eq!(exporter.stats().sent_requests, 0);
/// ```
#[derive(Debug, Clone)]
pub struct RemoteWriteBuilder {
    url: String,
    external: Vec<(String, String)>,
    authorization: Option<Authorization>,
    max_series_per_request: usize,
    config: DeliveryConfig,
    metrics: Option<MetricsCollector>,
    name: String,
}

#[derive(Clone)]
enum Authorization {
    Bearer(String),
    Basic(String, String),
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials.
        match self {
            Authorization::Bearer(_) => f.write_str("Bearer(..)"),
            Authorization::Basic(user, _) => write!(f, "Basic({user:?}, ..)"),
        }
    }
}

impl RemoteWriteBuilder {
    /// Adds a label to every series sent (`job`, `instance`, `cluster`...);
    /// a series' own label of the same name wins.
    ///
    /// ```
    /// let err = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .external_label("__name__", "x")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), "invalid_label");
    /// ```
    pub fn external_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.external.push((name.into(), value.into()));
        self
    }

    /// Sends `Authorization: Bearer <token>` (replaces basic auth).
    ///
    /// ```
    /// let b = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .bearer_token("t\r\nX: y");
    /// assert!(matches!(b.build(), Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.authorization = Some(Authorization::Bearer(token.into()));
        self
    }

    /// Sends `Authorization: Basic <base64(user:password)>` (replaces a
    /// bearer token).
    ///
    /// ```
    /// let b = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .basic_auth("user:name", "pw");
    /// assert!(b.build().is_err()); // a ':' cannot be in a basic-auth user name
    /// ```
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.authorization = Some(Authorization::Basic(user.into(), password.into()));
        self
    }

    /// Most series in one request (default 2000); a larger snapshot goes
    /// in several requests.
    ///
    /// ```
    /// let b = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .max_series_per_request(0);
    /// assert!(b.build().is_err());
    /// ```
    pub fn max_series_per_request(mut self, n: usize) -> Self {
        self.max_series_per_request = n;
        self
    }

    /// Timeouts, retries, backlog bound and shutdown deadline.
    ///
    /// ```
    /// use vitals::export::push::{DeliveryConfig, RemoteWriteExporter};
    /// let config = DeliveryConfig { max_backlog_bytes: 64 << 10, ..Default::default() };
    /// assert!(RemoteWriteExporter::builder("http://h/api/v1/write").delivery(config).build().is_ok());
    /// ```
    pub fn delivery(mut self, config: DeliveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Counts deliveries in the `vitals_push_*` series of `metrics`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let _e = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .record_into(&metrics)
    ///     .build()
    ///     .unwrap();
    /// assert!(metrics.snapshot().metadata("vitals_push_queue_bytes").is_some());
    /// ```
    pub fn record_into(mut self, metrics: &MetricsCollector) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The exporter's name in reports and the `exporter` label (default
    /// `remote_write`).
    ///
    /// ```
    /// use vitals::export::Exporter;
    /// let e = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .name("mimir")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.name(), "mimir");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the settings and starts the sender thread.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a URL that is not
    /// `http://host[:port][/path]`, a bad delivery setting, a credential
    /// with a control character; [`Error::InvalidLabelName`] for an
    /// external label name that is not a Prometheus label name;
    /// [`Error::Io`] if the thread cannot be spawned.
    ///
    /// ```
    /// let err = vitals::export::push::RemoteWriteExporter::builder("localhost:9090")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, vitals::Error::InvalidConfig(_)));
    /// ```
    pub fn build(self) -> Result<RemoteWriteExporter, Error> {
        let endpoint = Endpoint::parse(&self.url)?;
        let pairs: Vec<(&str, &str)> = self
            .external
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::key::validate_labels("remote write external labels", &pairs, &[])?;
        if self.max_series_per_request == 0 {
            return Err(Error::InvalidConfig(
                "max_series_per_request must be at least 1".into(),
            ));
        }
        let authorization = match &self.authorization {
            None => None,
            Some(Authorization::Bearer(token)) => {
                check_header_value("the bearer token", token)?;
                Some(format!("Bearer {token}"))
            }
            Some(Authorization::Basic(user, password)) => {
                if user.contains(':') {
                    return Err(Error::InvalidConfig(
                        "a basic-auth user name cannot contain ':'".into(),
                    ));
                }
                let encoded = base64(format!("{user}:{password}").as_bytes(), false);
                Some(format!("Basic {encoded}"))
            }
        };
        self.config.validate()?;
        let client = HttpClient::new(endpoint, &self.config)?;
        let send = Box::new(move |body: &[u8]| {
            let mut headers = vec![
                ("Content-Encoding", "snappy"),
                ("Content-Type", "application/x-protobuf"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ];
            if let Some(a) = &authorization {
                headers.push(("Authorization", a));
            }
            client.send(&Request {
                method: "POST",
                path: "",
                headers: &headers,
                body,
            })
        });
        let mut external = self.external;
        external.sort();
        let backlog = WriteBacklog::new(self.config.max_backlog_bytes, self.max_series_per_request);
        let delivery = Delivery::start(&self.name, self.config, self.metrics, backlog, send)?;
        Ok(RemoteWriteExporter {
            delivery,
            writer: SeriesWriter {
                external,
                last_timestamp: i64::MIN,
                last_len: 0,
            },
        })
    }
}

/// Sends each snapshot as a Prometheus remote write 1.0 request; see the
/// [module](super) for delivery and [this module](self) for the mapping.
/// Feature `remote-write`.
///
/// ```no_run
/// use std::time::Duration;
/// use vitals::export::push::RemoteWriteExporter;
/// use vitals::export::Reporter;
///
/// let metrics = vitals::MetricsCollector::new();
/// let remote = RemoteWriteExporter::builder("http://127.0.0.1:9090/api/v1/write")
///     .external_label("job", "checkout")
///     .record_into(&metrics)
///     .build()?;
/// let reporter = Reporter::builder(&metrics)
///     .interval(Duration::from_secs(15))
///     .exporter(remote)
///     .start()?;
/// metrics.counter("orders_total", &[]).inc();
/// let status = reporter.shutdown(); // the final snapshot is delivered
/// assert!(status.exporters[0].last_error.is_none());
/// # Ok::<(), vitals::Error>(())
/// ```
pub struct RemoteWriteExporter {
    delivery: Delivery<WriteBacklog>,
    writer: SeriesWriter,
}

impl std::fmt::Debug for RemoteWriteExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteExporter")
            .field("name", &self.delivery.name())
            .field("stats", &self.delivery.stats())
            .finish_non_exhaustive()
    }
}

impl RemoteWriteExporter {
    /// Settings for sending to the remote-write receiver at `url` (such
    /// as `http://prometheus:9090/api/v1/write`).
    ///
    /// ```
    /// let b = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write");
    /// assert!(b.build().is_ok());
    /// ```
    pub fn builder(url: impl Into<String>) -> RemoteWriteBuilder {
        RemoteWriteBuilder {
            url: url.into(),
            external: Vec::new(),
            authorization: None,
            max_series_per_request: DEFAULT_MAX_SERIES_PER_REQUEST,
            config: DeliveryConfig::default(),
            metrics: None,
            name: "remote_write".into(),
        }
    }

    /// Deliveries so far.
    ///
    /// ```
    /// let e = vitals::export::push::RemoteWriteExporter::builder("http://h/api/v1/write")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.stats().queue_points, 0);
    /// ```
    pub fn stats(&self) -> PushStats {
        self.delivery.stats()
    }
}

impl Exporter for RemoteWriteExporter {
    fn name(&self) -> &str {
        self.delivery.name()
    }

    /// Encodes the snapshot (on the calling thread, without holding the
    /// backlog) and queues it for the sender thread.
    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        let batch = self.writer.encode(snapshot);
        if batch.duplicates > 0 {
            self.delivery.left_out(Dropped {
                points: batch.duplicates,
                reason: "duplicate",
            });
        }
        self.delivery
            .add(|backlog, in_flight| backlog.add(batch, in_flight))
    }

    /// Waits (up to the shutdown deadline) for the backlog to be delivered.
    fn flush(&mut self) -> Result<(), Error> {
        self.delivery.flush()
    }
}

/// Encodes a snapshot as an uncompressed remote write 1.0 `WriteRequest`
/// (what [`RemoteWriteExporter`] sends, before snappy), with
/// `external_labels` on every series; for sending by other means, or
/// inspecting what would be sent.
///
/// # Errors
///
/// [`Error::InvalidLabelName`] for an external label name that is not a
/// Prometheus label name.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[]).inc();
/// let body = vitals::export::push::encode_write_request(&metrics.snapshot(), &[("job", "x")])?;
/// // One TimeSeries (field 1, length-delimited) holding `__name__`.
/// assert_eq!(body[0], 0x0a);
/// assert!(body.windows(10).any(|w| w == b"jobs_total"));
/// # Ok::<(), vitals::Error>(())
/// ```
pub fn encode_write_request(
    snapshot: &Snapshot,
    external_labels: &[(&str, &str)],
) -> Result<Vec<u8>, Error> {
    crate::key::validate_labels("remote write external labels", external_labels, &[])?;
    let mut external: Vec<(String, String)> = external_labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    external.sort();
    let mut writer = SeriesWriter {
        external,
        last_timestamp: i64::MIN,
        last_len: 0,
    };
    Ok(writer.encode(snapshot).bytes)
}

mod backlog;
mod encode;
#[cfg(test)]
mod tests;

use backlog::WriteBacklog;
use encode::{Batch, SeriesWriter};
