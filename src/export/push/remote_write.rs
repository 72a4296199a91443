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
        let client = HttpClient::new(endpoint, self.config.timeouts());
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
    };
    Ok(writer.encode(snapshot).bytes)
}

/// One snapshot's series, encoded as the `timeseries` entries of a
/// `WriteRequest` (any run of them is itself a valid `WriteRequest`).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    bytes: Vec<u8>,
    series: Vec<Span>,
}

/// Where one series' entry and its labels are in a batch.
#[derive(Debug, Clone, Copy)]
struct Span {
    entry: (usize, usize),
    labels: (usize, usize),
}

/// Encodes snapshots into batches.
#[derive(Debug)]
pub(crate) struct SeriesWriter {
    /// Sorted by name.
    external: Vec<(String, String)>,
    last_timestamp: i64,
}

impl SeriesWriter {
    pub(crate) fn encode(&mut self, snapshot: &Snapshot) -> Batch {
        let ts = i64::try_from(snapshot.timestamp_unix_ms)
            .unwrap_or(i64::MAX)
            .max(self.last_timestamp.saturating_add(1));
        self.last_timestamp = ts;
        let mut out = SeriesOut {
            w: ProtoWriter::from_vec(Vec::with_capacity(64 * snapshot.counters.len().max(16))),
            series: Vec::new(),
            pairs: Vec::new(),
            name: String::new(),
            external: &self.external,
            ts,
        };
        let mut claims = Claims::default();
        for c in &snapshot.counters {
            let base = counter_base(&c.name);
            if !claims.allow(Family::Counter, &c.name, base) {
                continue;
            }
            out.series(base, "_total", &c.labels, None, counter_value(c));
        }
        for g in &snapshot.gauges {
            if !claims.allow(Family::Gauge, &g.name, &g.name) {
                continue;
            }
            out.series(&g.name, "", &g.labels, None, g.value);
        }
        let mut bound_text = Vec::new();
        for h in &snapshot.histograms {
            let (name, labels, life) = (&*h.name, &h.labels, &h.summary.lifetime);
            let family = match h.summary.buckets {
                Some(_) => Family::Histogram,
                None => Family::Summary,
            };
            if !claims.allow(family, &h.name, name) {
                continue;
            }
            let count = match &h.summary.buckets {
                Some(b) => {
                    bound_text.clear();
                    let mut floats = zmij::Buffer::new();
                    bound_text.extend(b.bounds.iter().map(|v| {
                        if v.is_finite() {
                            floats.format_finite(*v).to_owned()
                        } else {
                            "+Inf".to_owned()
                        }
                    }));
                    let mut last = 0u64;
                    for (text, &c) in bound_text.iter().zip(&b.cumulative) {
                        // Cumulative even for a malformed snapshot.
                        last = last.max(c).min(b.count);
                        out.series(name, "_bucket", labels, Some(("le", text)), last as f64);
                    }
                    out.series(
                        name,
                        "_bucket",
                        labels,
                        Some(("le", "+Inf")),
                        b.count as f64,
                    );
                    b.count
                }
                None => {
                    let q = h.summary.window.quantiles;
                    for (level, text) in Quantiles::LEVELS.into_iter().zip(QUANTILE_LABELS) {
                        let v = q.and_then(|q| q.get(level)).unwrap_or(f64::NAN);
                        out.series(name, "", labels, Some(("quantile", text)), v);
                    }
                    life.count
                }
            };
            out.series(name, "_sum", labels, None, life.sum);
            out.series(name, "_count", labels, None, count as f64);
        }
        Batch {
            bytes: out.w.into_vec(),
            series: out.series,
        }
    }
}

/// The kind of family a series belongs to, for name claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Family {
    /// Names a family exposes, as suffixes of its base: the same claims as
    /// the text renderer's, so both outputs leave out the same families.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Family::Counter => &["", "_total", "_created"],
            Family::Gauge => &[""],
            Family::Summary => &["", "_sum", "_count", "_created"],
            Family::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
        }
    }
}

/// Exposed names taken by earlier families. A family whose names clash
/// with another's (a counter `x` and a gauge `x_total`) is left out whole,
/// as in the text formats: sending both would give the receiver two
/// values for one series at one time, and it would refuse the request.
#[derive(Debug, Default)]
struct Claims {
    owner: HashMap<String, (Family, Arc<str>)>,
    /// The family of the previous series and the verdict on it: the series
    /// of a family are contiguous, so this settles nearly every lookup.
    last: Option<(Family, Arc<str>, bool)>,
}

impl Claims {
    fn allow(&mut self, family: Family, name: &Arc<str>, base: &str) -> bool {
        if let Some((f, n, verdict)) = &self.last {
            if *f == family && n == name {
                return *verdict;
            }
        }
        let mut key = String::new();
        let mut verdict = true;
        for suffix in family.suffixes() {
            key.clear();
            key.push_str(base);
            key.push_str(suffix);
            if let Some((f, n)) = self.owner.get(&key) {
                if *f != family || n != name {
                    verdict = false;
                    break;
                }
            }
        }
        if verdict {
            for suffix in family.suffixes() {
                key.clear();
                key.push_str(base);
                key.push_str(suffix);
                self.owner
                    .entry(key.clone())
                    .or_insert_with(|| (family, Arc::clone(name)));
            }
        }
        self.last = Some((family, Arc::clone(name), verdict));
        verdict
    }
}

struct SeriesOut<'a> {
    w: ProtoWriter,
    series: Vec<Span>,
    pairs: Vec<(&'a str, &'a str)>,
    name: String,
    external: &'a [(String, String)],
    ts: i64,
}

impl<'a> SeriesOut<'a> {
    /// Writes one `TimeSeries` with one sample. Native histograms and
    /// exemplars of the series will be written here too.
    fn series(
        &mut self,
        base: &str,
        suffix: &str,
        labels: &'a Labels,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        self.name.clear();
        self.name.push_str(base);
        self.name.push_str(suffix);
        let extra_key = extra.map(|(k, _)| k);
        self.pairs.clear();
        // The exporter's own label (`quantile`, `le`) wins over a series
        // label of that name, and a series label over an external one.
        self.pairs
            .extend(labels.iter().filter(|(k, _)| Some(*k) != extra_key));
        for (k, v) in self.external {
            if Some(k.as_str()) != extra_key && labels.get(k).is_none() {
                self.pairs.push((k, v));
            }
        }
        self.pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // `__name__` and the exporter's label, merged in by name.
        let mut specials = [("__name__", self.name.as_str()), extra.unwrap_or(("", ""))];
        let specials = match extra {
            Some(_) => {
                specials.sort_unstable_by(|a, b| a.0.cmp(b.0));
                &specials[..]
            }
            None => &specials[..1],
        };

        let w = &mut self.w;
        let start = w.len();
        let entry = w.begin(field::TIMESERIES);
        let labels_start = w.len();
        let mut next_special = 0;
        for &(k, v) in &self.pairs {
            while next_special < specials.len() && specials[next_special].0 < k {
                write_label(w, specials[next_special].0, specials[next_special].1);
                next_special += 1;
            }
            write_label(w, k, v);
        }
        for &(k, v) in &specials[next_special..] {
            write_label(w, k, v);
        }
        let labels_end = w.len();
        let sample = w.begin(field::SAMPLES);
        w.double(field::SAMPLE_VALUE, value);
        w.int64(field::SAMPLE_TIMESTAMP, self.ts);
        w.end(sample);
        let before = w.len();
        w.end(entry);
        // `end` may have moved the entry right to lengthen its prefix.
        let shift = w.len() - before;
        self.series.push(Span {
            entry: (start, w.len()),
            labels: (labels_start + shift, labels_end + shift),
        });
    }
}

fn write_label(w: &mut ProtoWriter, name: &str, value: &str) {
    let label = w.begin(field::LABELS);
    w.string(field::LABEL_NAME, name);
    w.string(field::LABEL_VALUE, value);
    w.end(label);
}

/// Snapshots not yet delivered, oldest first, within a byte bound.
#[derive(Debug)]
struct WriteBacklog {
    batches: VecDeque<Pending>,
    next_seq: u64,
    bytes: usize,
    points: u64,
    max_bytes: usize,
    max_series: usize,
    /// The front batch's series sent by the request in flight: (seq, end).
    in_flight: Option<(u64, usize)>,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    batch: Batch,
    /// Series of the batch already delivered.
    sent: usize,
}

impl WriteBacklog {
    fn new(max_bytes: usize, max_series: usize) -> Self {
        WriteBacklog {
            batches: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            points: 0,
            max_bytes,
            max_series,
            in_flight: None,
        }
    }

    /// Queues a batch; past the byte bound, drops the oldest batches that
    /// are neither in flight nor the newest, moving each series' point into
    /// the next batch when that batch has no point of the series (so the
    /// latest value of every series stays).
    fn add(&mut self, batch: Batch, in_flight: bool) -> Option<Dropped> {
        if batch.series.is_empty() {
            return None;
        }
        self.bytes += batch.bytes.len();
        self.points += batch.series.len() as u64;
        self.next_seq += 1;
        self.batches.push_back(Pending {
            seq: self.next_seq,
            batch,
            sent: 0,
        });
        let mut dropped = 0u64;
        let first = usize::from(in_flight);
        while self.bytes > self.max_bytes && self.batches.len() > first + 1 {
            let Some(old) = self.batches.remove(first) else {
                break;
            };
            self.bytes -= old.batch.bytes.len();
            self.points -= (old.batch.series.len() - old.sent) as u64;
            let next = &mut self.batches[first];
            let before = (next.batch.bytes.len(), next.batch.series.len());
            let carried = carry_forward(&old, &mut next.batch);
            self.bytes += next.batch.bytes.len() - before.0;
            self.points += (next.batch.series.len() - before.1) as u64;
            dropped += (old.batch.series.len() - old.sent - carried) as u64;
        }
        (dropped > 0).then_some(Dropped {
            points: dropped,
            reason: "bound",
        })
    }
}

/// Appends to `next` the unsent series of `old` that `next` has no point
/// for; returns how many.
fn carry_forward(old: &Pending, next: &mut Batch) -> usize {
    // Hashed only here, when the backend is down and the bound is reached.
    let present: HashSet<&[u8]> = next
        .series
        .iter()
        .map(|s| &next.bytes[s.labels.0..s.labels.1])
        .collect();
    let missing: Vec<Span> = old.batch.series[old.sent..]
        .iter()
        .filter(|span| !present.contains(&old.batch.bytes[span.labels.0..span.labels.1]))
        .copied()
        .collect();
    for span in &missing {
        let at = next.bytes.len();
        let moved = |(a, b): (usize, usize)| (at + (a - span.entry.0), at + (b - span.entry.0));
        next.bytes
            .extend_from_slice(&old.batch.bytes[span.entry.0..span.entry.1]);
        next.series.push(Span {
            entry: moved(span.entry),
            labels: moved(span.labels),
        });
    }
    missing.len()
}

impl Backlog for WriteBacklog {
    fn next(&mut self) -> Option<Outgoing> {
        let front = self.batches.front()?;
        let series = &front.batch.series;
        let end = (front.sent + self.max_series).min(series.len());
        let raw = &front.batch.bytes[series[front.sent].entry.0..series[end - 1].entry.1];
        // Snappy's block format refuses only inputs over 4 GiB, which one
        // request of at most `max_series` series cannot reach; if it ever
        // did, the receiver's 400 to an empty body drops and counts it.
        let body = snap::raw::Encoder::new()
            .compress_vec(raw)
            .unwrap_or_default();
        self.in_flight = Some((front.seq, end));
        Some(Outgoing {
            ticket: front.seq,
            body,
            points: (end - front.sent) as u64,
        })
    }

    fn complete(&mut self, ticket: u64) {
        let Some((seq, end)) = self.in_flight.take() else {
            return;
        };
        let Some(front) = self.batches.front_mut() else {
            return;
        };
        if seq != ticket || front.seq != seq {
            return;
        }
        self.points -= (end - front.sent) as u64;
        front.sent = end;
        if front.sent == front.batch.series.len() {
            self.bytes -= front.batch.bytes.len();
            self.batches.pop_front();
        }
    }

    fn bytes(&self) -> usize {
        self.bytes
    }

    fn points(&self) -> u64 {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{GaugeSample, SCHEMA_VERSION};
    use std::sync::Arc;

    /// A counter series: name, labels, value.
    type CounterSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], u64);
    /// A decoded series: labels, value, timestamp.
    type Decoded = (Vec<(String, String)>, f64, i64);

    fn snapshot(ts: u64, counters: &[CounterSpec<'_>]) -> Snapshot {
        Snapshot {
            schema_version: SCHEMA_VERSION,
            timestamp_unix_ms: ts,
            uptime_seconds: 1.0,
            counters: counters
                .iter()
                .map(|(name, labels, value)| CounterSample {
                    name: Arc::from(*name),
                    labels: Labels::from_pairs(labels),
                    value: (*value).into(),
                    rate: None,
                })
                .collect(),
            gauges: vec![],
            histograms: vec![],
            metadata: vec![],
            first_error: None,
            plugins: vec![],
        }
    }

    fn writer(external: &[(&str, &str)]) -> SeriesWriter {
        let mut external: Vec<(String, String)> = external
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        external.sort();
        SeriesWriter {
            external,
            last_timestamp: i64::MIN,
        }
    }

    /// Labels and samples of every series in a batch, decoded by hand.
    fn decode(bytes: &[u8]) -> Vec<Decoded> {
        fn varint(b: &[u8], i: &mut usize) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[*i];
                *i += 1;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        fn fields(b: &[u8]) -> Vec<(u64, &[u8], u64)> {
            let mut i = 0;
            let mut out = Vec::new();
            while i < b.len() {
                let tag = varint(b, &mut i);
                match tag & 7 {
                    0 => out.push((tag >> 3, &b[0..0], varint(b, &mut i))),
                    1 => {
                        let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                        i += 8;
                        out.push((tag >> 3, &b[0..0], v));
                    }
                    2 => {
                        let len = varint(b, &mut i) as usize;
                        out.push((tag >> 3, &b[i..i + len], 0));
                        i += len;
                    }
                    t => panic!("wire type {t}"),
                }
            }
            out
        }
        let mut series = Vec::new();
        for (f, ts_bytes, _) in fields(bytes) {
            assert_eq!(f, 1);
            let mut labels = Vec::new();
            let (mut value, mut ts) = (f64::NAN, 0);
            for (f, b, _) in fields(ts_bytes) {
                match f {
                    1 => {
                        let l = fields(b);
                        labels.push((
                            String::from_utf8(l[0].1.to_vec()).unwrap(),
                            String::from_utf8(l[1].1.to_vec()).unwrap(),
                        ));
                    }
                    2 => {
                        for (f, _, v) in fields(b) {
                            match f {
                                1 => value = f64::from_bits(v),
                                2 => ts = v as i64,
                                _ => panic!("sample field {f}"),
                            }
                        }
                    }
                    _ => panic!("series field {f}"),
                }
            }
            series.push((labels, value, ts));
        }
        series
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_are_sorted_with_the_name_and_external_labels() {
        let mut w = writer(&[("job", "api"), ("zone", "ext"), ("A", "first")]);
        let snap = snapshot(
            1_000,
            &[("requests", &[("zone", "own"), ("code", "200")], 7)],
        );
        let batch = w.encode(&snap);
        let series = decode(&batch.bytes);
        assert_eq!(
            series,
            vec![(
                l(&[
                    ("A", "first"),
                    ("__name__", "requests_total"),
                    ("code", "200"),
                    ("job", "api"),
                    ("zone", "own"),
                ]),
                7.0,
                1_000
            )]
        );
    }

    #[test]
    fn summaries_buckets_and_gauges_become_series() {
        let metrics = MetricsCollector::new();
        metrics.gauge("temp", &[]).set(-1.5);
        let h = metrics.histogram("lat_seconds", &[("r", "/")]);
        h.record(0.5);
        h.record(1.5);
        let mut snap = metrics.snapshot();
        snap.gauges.push(GaugeSample {
            name: "temp".into(),
            labels: Labels::from_pairs(&[("quantile", "x")]),
            value: 2.0,
        });
        let series = decode(&writer(&[]).encode(&snap).bytes);
        let names: Vec<String> = series
            .iter()
            .map(|(labels, _, _)| {
                let name = &labels.iter().find(|(k, _)| k == "__name__").unwrap().1;
                match labels.iter().find(|(k, _)| k == "quantile") {
                    Some((_, q)) => format!("{name}{{{q}}}"),
                    None => name.clone(),
                }
            })
            .collect();
        assert_eq!(
            names,
            [
                "temp",
                "temp{x}",
                "lat_seconds{0.5}",
                "lat_seconds{0.9}",
                "lat_seconds{0.95}",
                "lat_seconds{0.99}",
                "lat_seconds{0.999}",
                "lat_seconds_sum",
                "lat_seconds_count"
            ]
        );
        assert_eq!(series[0].1, -1.5);
        assert_eq!(series[7].1, 2.0);
        assert_eq!(series[8].1, 2.0);
    }

    #[test]
    fn clashing_families_are_left_out_as_in_the_text_formats() {
        let metrics = MetricsCollector::new();
        metrics.counter("x", &[]).increment(1);
        metrics.gauge("x_total", &[]).set(2.0);
        metrics.counter("y_total", &[("a", "1")]).increment(3);
        metrics.counter("y", &[]).increment(4);
        metrics.gauge("h_sum", &[]).set(5.0);
        metrics.histogram("h", &[]).record(1.0);
        let snap = metrics.snapshot();
        let series = decode(&writer(&[]).encode(&snap).bytes);
        let names: Vec<(&str, f64)> = series
            .iter()
            .map(|(labels, v, _)| (labels[0].1.as_str(), *v))
            .collect();
        // Counters come first, then by name: the gauge `x_total`, the
        // counter `y_total` (after `y`, of the same base) and the histogram
        // `h` (its `h_sum` is a gauge's) are left out. The text renderer
        // agrees.
        assert_eq!(names, [("x_total", 1.0), ("y_total", 4.0), ("h_sum", 5.0)]);
        let text = crate::export::render_prometheus(&snap);
        assert!(!text.contains("x_total 2"), "{text}");
        assert!(!text.contains("y_total{a=\"1\"}"), "{text}");
        assert!(!text.contains("h_count"), "{text}");
    }

    #[test]
    fn plug_in_values_are_sent_like_any_series() {
        struct Pool;
        impl crate::Collector for Pool {
            fn name(&self) -> &str {
                "pool"
            }
            fn collect(&self, out: &mut crate::Samples) -> Result<(), Error> {
                out.counter("pool_seconds_total", &[], 1.5)?;
                out.gauge("pool_size", &[("pool", "db")], 8.0)
            }
        }
        let metrics = MetricsCollector::new();
        metrics.register(Pool).unwrap();
        let series = decode(&writer(&[]).encode(&metrics.snapshot()).bytes);
        let find = |name: &str| {
            series
                .iter()
                .find(|(labels, _, _)| labels.iter().any(|(k, v)| k == "__name__" && v == name))
                .map(|s| s.1)
        };
        assert_eq!(find("pool_seconds_total"), Some(1.5));
        assert_eq!(find("pool_size"), Some(8.0));
    }

    #[test]
    fn timestamps_strictly_increase() {
        let mut w = writer(&[]);
        let snap = snapshot(5, &[("c", &[], 1)]);
        let a = decode(&w.encode(&snap).bytes)[0].2;
        let b = decode(&w.encode(&snap).bytes)[0].2;
        assert_eq!((a, b), (5, 6));
        let far = snapshot(u64::MAX, &[("c", &[], 1)]);
        assert_eq!(decode(&w.encode(&far).bytes)[0].2, i64::MAX);
        assert_eq!(decode(&w.encode(&far).bytes)[0].2, i64::MAX);
    }

    #[test]
    fn long_label_values_keep_their_spans_right() {
        let long = "v".repeat(300);
        let mut w = writer(&[]);
        let batch = w.encode(&snapshot(1, &[("a", &[("k", &long)], 1), ("b", &[], 2)]));
        for span in &batch.series {
            let entry = &batch.bytes[span.entry.0..span.entry.1];
            assert_eq!(decode(entry).len(), 1);
        }
        let labels = &batch.bytes[batch.series[0].labels.0..batch.series[0].labels.1];
        assert!(labels.windows(300).any(|w| w == long.as_bytes()));
    }

    #[test]
    fn past_the_bound_old_points_go_but_every_series_keeps_its_latest() {
        let mut w = writer(&[]);
        let one = w
            .encode(&snapshot(1, &[("a", &[], 1), ("b", &[], 1)]))
            .bytes
            .len();
        let mut backlog = WriteBacklog::new(one * 3, 1000);
        let mut w = writer(&[]);
        let mut dropped = 0;
        // Series `b` disappears after the second snapshot.
        for i in 0..10u64 {
            let counters: Vec<CounterSpec<'_>> = if i < 2 {
                vec![("a", &[], i), ("b", &[], 100 + i)]
            } else {
                vec![("a", &[], i)]
            };
            let batch = w.encode(&snapshot(1_000 + i, &counters));
            if let Some(d) = backlog.add(batch, false) {
                dropped += d.points;
            }
            assert!(backlog.bytes() <= one * 3, "{}", backlog.bytes());
        }
        let mut delivered = Vec::new();
        while let Some(out) = backlog.next() {
            let raw = snap::raw::Decoder::new().decompress_vec(&out.body).unwrap();
            delivered.extend(decode(&raw));
            backlog.complete(out.ticket);
        }
        assert_eq!((backlog.bytes(), backlog.points()), (0, 0));
        let last_b = delivered
            .iter()
            .rfind(|(labels, _, _)| labels[0].1 == "b_total")
            .unwrap();
        assert_eq!((last_b.1, last_b.2), (101.0, 1_001));
        let last_a = delivered.last().unwrap();
        assert_eq!((last_a.1, last_a.2), (9.0, 1_009));
        // 12 points in, every one delivered or counted as dropped.
        assert_eq!(delivered.len() as u64 + dropped, 12);
        // Per series, samples in time order.
        for name in ["a_total", "b_total"] {
            let ts: Vec<i64> = delivered
                .iter()
                .filter(|(labels, _, _)| labels[0].1 == name)
                .map(|s| s.2)
                .collect();
            assert!(ts.windows(2).all(|p| p[0] < p[1]), "{name}: {ts:?}");
        }
    }

    #[test]
    fn large_batches_go_in_several_requests_and_in_flight_data_stays() {
        let mut w = writer(&[]);
        let counters: Vec<(String, u64)> = (0..5).map(|i| (format!("c{i}"), i)).collect();
        let refs: Vec<CounterSpec<'_>> = counters
            .iter()
            .map(|(n, v)| (n.as_str(), &[][..], *v))
            .collect();
        let mut backlog = WriteBacklog::new(1024, 2);
        backlog.add(w.encode(&snapshot(1, &refs)), false);
        let first = backlog.next().unwrap();
        assert_eq!(first.points, 2);
        // A new batch arrives while the first request is in flight, over
        // the bound: the in-flight batch stays.
        backlog.max_bytes = 1;
        assert_eq!(backlog.add(w.encode(&snapshot(2, &refs)), true), None);
        backlog.complete(first.ticket);
        let mut sizes = Vec::new();
        while let Some(out) = backlog.next() {
            sizes.push(out.points);
            backlog.complete(out.ticket);
        }
        assert_eq!(sizes, [2, 1, 2, 2, 1]);
        // A stale ticket changes nothing.
        backlog.complete(first.ticket);
        assert_eq!(backlog.points(), 0);
    }
}
