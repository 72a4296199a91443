//! [`OtlpExporter`]: OpenTelemetry metrics over OTLP/HTTP (protobuf or
//! JSON), to a Collector, an agent, or any backend that takes OTLP.
//!
//! # Mapping
//!
//! | vitals | OTLP metric |
//! |---|---|
//! | counter | monotonic `Sum` (`as_int`; `as_double` for float totals and totals past 2^63) |
//! | gauge | `Gauge` |
//! | histogram, collector built with [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets) | `ExponentialHistogram`: the lifetime buckets, exactly, downscaled to at most [`max_buckets`](OtlpBuilder::max_buckets) (160) buckets |
//! | histogram with configured bucket bounds | explicit-bucket `Histogram` |
//! | histogram without buckets (count windows, collectors without lifetime buckets) | `Histogram` with no bounds: count and sum in the one overflow bucket |
//! | window quantiles, if [asked for](OtlpBuilder::window_quantiles) | a `Summary` named `<name>_summary`: the window's quantiles, the life's count and sum |
//!
//! Labels become string attributes; help text the description; units
//! their UCUM code (`s`, `By`, `1`, ...). Every request carries the
//! resource attributes (`service.name`, `telemetry.sdk.*` and those
//! configured) and the instrumentation scope `vitals` with the crate's
//! version.
//!
//! # Temporality and time
//!
//! * **Cumulative** (the default): every point carries the series' total
//!   since a start time that stays fixed for the series: the collector's
//!   start for the series of the first snapshot, the previous snapshot's
//!   time for a series that appeared later, and the previous snapshot's
//!   time again after a reset (a total that went down).
//! * **Delta**: every point carries the change since the previous
//!   snapshot, over the window from that snapshot to this one; the windows
//!   of a series are contiguous and never overlap. Histogram points in
//!   delta have no min and max (the life's are not the window's).
//!
//! Point times are the snapshot's, kept strictly increasing.
//!
//! # Delivery
//!
//! The [push delivery](super) machinery: timeouts, retries with backoff,
//! `vitals_push_*` counts, a flush at shutdown. While the backend is down
//! the exporter keeps **one point per series**: a cumulative point (and a
//! gauge, a summary) replaces the older one, which is counted as dropped
//! with reason `superseded`; a delta point is added to the waiting one,
//! its window widened. So an outage of any length costs resolution, never
//! counts, and the backlog never holds more than one snapshot's worth of
//! series (the byte bound of [`DeliveryConfig`] does not come into play).
//!
//! ```
//! let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
//! metrics.counter("jobs_total", &[]).increment(2);
//! let body = vitals::export::push::encode_otlp(&metrics.snapshot(), vitals::export::push::OtlpFormat::Json)?;
//! let text = String::from_utf8(body).unwrap();
//! assert!(text.contains(r#""name":"jobs_total""#) && text.contains(r#""asInt":"2""#));
//! # Ok::<(), vitals::Error>(())
//! ```

use crate::error::Error;
use crate::export::Exporter;
use crate::registry::MetricsCollector;
use crate::snapshot::Snapshot;

use super::check_header;
use super::client::{Endpoint, HttpClient, Request};
use super::delivery::{Delivery, DeliveryConfig, PushStats};

mod arrival;
mod backlog;
mod encode;
mod env;
mod json;
mod points;
mod set;
#[cfg(test)]
mod tests;

use backlog::OtlpBacklog;
use encode::Head;
use points::PointMaker;

/// The path OTLP/HTTP receivers take metrics on.
const METRICS_PATH: &str = "/v1/metrics";

/// Where [`OtlpExporter::from_env`] sends when no endpoint is set.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318";

/// How sums and histograms report: totals since a fixed start, or changes
/// since the previous export.
///
/// ```
/// use vitals::export::push::Temporality;
/// assert_eq!(Temporality::default(), Temporality::Cumulative);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// Totals since a start time fixed per series (the OTLP default).
    #[default]
    Cumulative,
    /// Changes over contiguous, non-overlapping windows.
    Delta,
}

/// The body encoding of OTLP/HTTP requests.
///
/// ```
/// use vitals::export::push::OtlpFormat;
/// assert_eq!(OtlpFormat::default(), OtlpFormat::Protobuf);
/// assert_eq!(OtlpFormat::Json.content_type(), "application/json");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpFormat {
    /// Binary protobuf (`application/x-protobuf`), the default.
    #[default]
    Protobuf,
    /// OTLP/JSON (`application/json`).
    Json,
}

impl OtlpFormat {
    /// The `Content-Type` of request bodies.
    ///
    /// ```
    /// assert_eq!(vitals::export::push::OtlpFormat::Protobuf.content_type(), "application/x-protobuf");
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            OtlpFormat::Protobuf => "application/x-protobuf",
            OtlpFormat::Json => "application/json",
        }
    }
}

/// Settings for an [`OtlpExporter`].
///
/// ```
/// use vitals::export::push::{OtlpExporter, OtlpFormat, Temporality};
///
/// let exporter = OtlpExporter::builder("http://127.0.0.1:4318")
///     .service_name("checkout")
///     .resource_attribute("deployment.environment", "prod")
///     .header("x-api-key", "s3cret")
///     .temporality(Temporality::Delta)
///     .format(OtlpFormat::Json)
///     .build()
///     .unwrap();
/// assert_eq!(exporter.stats().sent_requests, 0);
/// ```
#[derive(Debug, Clone)]
pub struct OtlpBuilder {
    url: String,
    append_path: bool,
    headers: Vec<(String, String)>,
    resource: Vec<(String, String)>,
    scope_name: String,
    scope_version: String,
    temporality: Temporality,
    format: OtlpFormat,
    window_quantiles: bool,
    max_buckets: usize,
    gzip: bool,
    config: DeliveryConfig,
    metrics: Option<MetricsCollector>,
    name: String,
}

impl OtlpBuilder {
    /// Sets a resource attribute (replacing one of the same key), such as
    /// `deployment.environment` or `host.name`.
    ///
    /// ```
    /// let b = vitals::export::push::OtlpExporter::builder("http://h:4318")
    ///     .resource_attribute("", "x");
    /// assert!(b.build().is_err()); // an empty key
    /// ```
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.resource.retain(|(k, _)| *k != key);
        self.resource.push((key, value));
        self
    }

    /// Sets `service.name` (by default `unknown_service:<program name>`,
    /// as the OpenTelemetry specification asks).
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318")
    ///     .service_name("api")
    ///     .build()
    ///     .unwrap();
    /// assert!(e.resource().contains(&("service.name".to_owned(), "api".to_owned())));
    /// ```
    pub fn service_name(self, name: impl Into<String>) -> Self {
        self.resource_attribute("service.name", name)
    }

    /// Adds a header to every request (`x-api-key`, `Authorization`...),
    /// replacing one of the same name. Headers the exporter writes itself
    /// (`Host`, `Content-Length`, `Content-Type`, `Content-Encoding`,
    /// `User-Agent`, `Connection`, `Transfer-Encoding` and the other
    /// hop-by-hop ones) are refused by [`build`](Self::build), as are
    /// names that are not HTTP tokens and values with line breaks.
    ///
    /// ```
    /// use vitals::export::push::OtlpExporter;
    /// let b = OtlpExporter::builder("http://h:4318").header("authorization", "Bearer t\r\nX: y");
    /// assert!(matches!(b.build(), Err(vitals::Error::InvalidConfig(_))));
    /// let b = OtlpExporter::builder("http://h:4318").header("Content-Length", "0");
    /// assert!(matches!(b.build(), Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
        self
    }

    /// The instrumentation scope's name and version (default `vitals` and
    /// the crate's version).
    ///
    /// ```
    /// let b = vitals::export::push::OtlpExporter::builder("http://h:4318").scope("checkout", "2.1.0");
    /// assert!(b.build().is_ok());
    /// ```
    pub fn scope(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.scope_name = name.into();
        self.scope_version = version.into();
        self
    }

    /// Cumulative (default) or delta sums and histograms.
    ///
    /// ```
    /// use vitals::export::push::{OtlpExporter, Temporality};
    /// assert!(OtlpExporter::builder("http://h:4318").temporality(Temporality::Delta).build().is_ok());
    /// ```
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }

    /// Protobuf (default) or JSON bodies.
    ///
    /// ```
    /// use vitals::export::push::{OtlpExporter, OtlpFormat};
    /// assert!(OtlpExporter::builder("http://h:4318").format(OtlpFormat::Json).build().is_ok());
    /// ```
    pub fn format(mut self, format: OtlpFormat) -> Self {
        self.format = format;
        self
    }

    /// Also sends each histogram's window quantiles, as a `Summary` named
    /// `<name>_summary` (off by default: OpenTelemetry discourages
    /// summaries, and the exponential histogram holds the distribution).
    ///
    /// ```
    /// let m = vitals::MetricsCollector::new();
    /// m.histogram("latency_seconds", &[]).record(0.25);
    /// let b = vitals::export::push::OtlpExporter::builder("http://h:4318").window_quantiles(true);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn window_quantiles(mut self, on: bool) -> Self {
        self.window_quantiles = on;
        self
    }

    /// Most buckets of an exponential histogram point (default 160, the
    /// OpenTelemetry SDK's): wider histograms are downscaled exactly until
    /// they fit.
    ///
    /// ```
    /// let b = vitals::export::push::OtlpExporter::builder("http://h:4318").max_buckets(1);
    /// assert!(b.build().is_err()); // at least 2
    /// ```
    pub fn max_buckets(mut self, n: usize) -> Self {
        self.max_buckets = n;
        self
    }

    /// Gzip request bodies (`Content-Encoding: gzip`; off by default).
    /// Feature `otlp-gzip`.
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318").gzip(true).build();
    /// assert!(e.is_ok());
    /// ```
    #[cfg(feature = "otlp-gzip")]
    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    /// Timeouts, retries and shutdown deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::export::push::{DeliveryConfig, OtlpExporter};
    /// let config = DeliveryConfig { request_timeout: Duration::from_secs(2), ..Default::default() };
    /// assert!(OtlpExporter::builder("http://h:4318").delivery(config).build().is_ok());
    /// ```
    pub fn delivery(mut self, config: DeliveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Counts deliveries in the `vitals_push_*` series of `metrics`.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let _e = vitals::export::push::OtlpExporter::builder("http://h:4318")
    ///     .record_into(&metrics)
    ///     .build()
    ///     .unwrap();
    /// assert!(metrics.snapshot().metadata("vitals_push_sent_points_total").is_some());
    /// ```
    pub fn record_into(mut self, metrics: &MetricsCollector) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The exporter's name in reports and the `exporter` label (default
    /// `otlp`).
    ///
    /// ```
    /// use vitals::export::Exporter;
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318").name("collector").build().unwrap();
    /// assert_eq!(e.name(), "collector");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Applies the standard environment variables found by `lookup` (what
    /// [`OtlpExporter::from_env`] does with the process environment):
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/metrics` is appended),
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as it is),
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `..._METRICS_HEADERS`,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` and `..._METRICS_PROTOCOL`
    /// (`http/protobuf`, `http/json`), `OTEL_EXPORTER_OTLP_TIMEOUT` and
    /// `..._METRICS_TIMEOUT` (ms),
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`,
    /// `OTEL_EXPORTER_OTLP_COMPRESSION` and `..._METRICS_COMPRESSION`
    /// (`gzip` needs feature `otlp-gzip`; `none`),
    /// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` (which wins over
    /// a `service.name` in the attributes). Settings made after this call
    /// override them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEnvVar`] naming the variable: a list entry without
    /// `=` or with a bad `%`-escape, an unknown protocol (`grpc` included),
    /// temporality or compression, a timeout that is not a number or not
    /// 1 ms to 1 h, an endpoint or a header that
    /// [`build`](Self::build) would refuse.
    ///
    /// ```
    /// use vitals::export::push::OtlpExporter;
    /// let env = |name: &str| match name {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
    ///     "OTEL_SERVICE_NAME" => Some("api".to_owned()),
    ///     "OTEL_RESOURCE_ATTRIBUTES" => Some("service.name=x,team=pay%20ments".to_owned()),
    ///     _ => None,
    /// };
    /// let e = OtlpExporter::builder("http://unused:1").env_from(env)?.build()?;
    /// assert!(e.resource().contains(&("service.name".into(), "api".into())));
    /// assert!(e.resource().contains(&("team".into(), "pay ments".into())));
    /// assert_eq!(e.url(), "http://collector:4318/v1/metrics");
    ///
    /// let bad = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".to_owned());
    /// let err = OtlpExporter::builder("http://h:4318").env_from(bad).unwrap_err();
    /// assert_eq!(err.kind(), "invalid_env");
    /// # Ok::<(), vitals::Error>(())
    /// ```
    pub fn env_from(self, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        env::apply(self, &lookup)
    }

    /// The URL requests go to.
    fn url(&self) -> String {
        if self.append_path {
            format!("{}{METRICS_PATH}", self.url.trim_end_matches('/'))
        } else {
            self.url.clone()
        }
    }

    /// Checks the settings and starts the sender thread.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a URL that is not
    /// `http://host[:port][/path]`, an empty resource attribute key, a
    /// header name that is not a token or a value with a control
    /// character, fewer than 2 `max_buckets`, a bad delivery setting;
    /// [`Error::Io`] if the thread cannot be spawned.
    ///
    /// ```
    /// let err = vitals::export::push::OtlpExporter::builder("localhost:4318").build().unwrap_err();
    /// assert!(matches!(err, vitals::Error::InvalidConfig(_)));
    /// ```
    pub fn build(self) -> Result<OtlpExporter, Error> {
        let url = self.url();
        let endpoint = Endpoint::parse(&url)?;
        if self.resource.iter().any(|(k, _)| k.is_empty()) {
            return Err(Error::InvalidConfig(
                "a resource attribute key cannot be empty".into(),
            ));
        }
        for (name, value) in &self.headers {
            check_header(name, value)?;
        }
        if self.max_buckets < 2 {
            return Err(Error::InvalidConfig(format!(
                "max_buckets must be at least 2, not {}",
                self.max_buckets
            )));
        }
        self.config.validate()?;
        let mut resource = env::default_resource();
        for (k, v) in &self.resource {
            match resource.iter_mut().find(|(rk, _)| rk == k) {
                Some(slot) => slot.1 = v.clone(),
                None => resource.push((k.clone(), v.clone())),
            }
        }
        let client = HttpClient::new(endpoint, &self.config)?;
        let format = self.format;
        let headers = self.headers;
        let gzip = self.gzip;
        let send = Box::new(move |body: &[u8]| {
            let mut h: Vec<(&str, &str)> = vec![("Content-Type", format.content_type())];
            if gzip {
                h.push(("Content-Encoding", "gzip"));
            }
            h.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            client.send(&Request {
                method: "POST",
                path: "",
                headers: &h,
                body,
            })
        });
        let head = Head {
            resource: resource.clone(),
            scope_name: self.scope_name,
            scope_version: self.scope_version,
            temporality: self.temporality,
            max_buckets: self.max_buckets,
        };
        let mut maker = PointMaker::new(self.temporality, self.window_quantiles);
        maker.max_buckets = self.max_buckets;
        let mut backlog = OtlpBacklog::new(head, format);
        backlog.gzip = self.gzip;
        let delivery = Delivery::start(&self.name, self.config, self.metrics, backlog, send)?;
        Ok(OtlpExporter {
            delivery,
            maker,
            resource,
            url,
        })
    }
}

/// Sends each snapshot to an OTLP/HTTP receiver (`POST {endpoint}/v1/metrics`);
/// see [this module](self) for the mapping and the [module above](super)
/// for delivery. Feature `otlp`.
///
/// ```no_run
/// use std::time::Duration;
/// use vitals::export::push::OtlpExporter;
/// use vitals::export::Reporter;
///
/// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
/// // OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ... or localhost:4318.
/// let otlp = OtlpExporter::from_env()?.record_into(&metrics).build()?;
/// let reporter = Reporter::builder(&metrics)
///     .interval(Duration::from_secs(10))
///     .exporter(otlp)
///     .start()?;
/// metrics.counter("orders_total", &[]).inc();
/// let status = reporter.shutdown(); // the final snapshot is delivered
/// assert!(status.exporters[0].last_error.is_none());
/// # Ok::<(), vitals::Error>(())
/// ```
pub struct OtlpExporter {
    delivery: Delivery<OtlpBacklog>,
    maker: PointMaker,
    resource: Vec<(String, String)>,
    url: String,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("name", &self.delivery.name())
            .field("url", &self.url)
            .field("stats", &self.delivery.stats())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Settings for sending to the OTLP/HTTP receiver at `endpoint` (such
    /// as `http://otel-collector:4318`); requests go to
    /// `{endpoint}/v1/metrics`.
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318/").build().unwrap();
    /// assert_eq!(e.url(), "http://h:4318/v1/metrics");
    /// ```
    pub fn builder(endpoint: impl Into<String>) -> OtlpBuilder {
        OtlpBuilder {
            url: endpoint.into(),
            append_path: true,
            headers: Vec::new(),
            resource: Vec::new(),
            scope_name: "vitals".into(),
            scope_version: env!("CARGO_PKG_VERSION").into(),
            temporality: Temporality::Cumulative,
            format: OtlpFormat::Protobuf,
            window_quantiles: false,
            max_buckets: crate::layout::DEFAULT_MAX_BUCKETS,
            gzip: false,
            config: DeliveryConfig::default(),
            metrics: None,
            name: "otlp".into(),
        }
    }

    /// Settings from the standard `OTEL_*` variables of the process
    /// environment (see [`OtlpBuilder::env_from`]), sending to
    /// [`DEFAULT_OTLP_ENDPOINT`] when none is set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidEnvVar`] for a variable that does not parse, is
    /// not UTF-8, or holds what [`OtlpBuilder::build`] would refuse.
    ///
    /// ```
    /// let b = vitals::export::push::OtlpExporter::from_env();
    /// assert!(b.is_ok() || matches!(b, Err(vitals::Error::InvalidEnvVar { .. })));
    /// ```
    pub fn from_env() -> Result<OtlpBuilder, Error> {
        for name in env::VARIABLES {
            env::process_env(name)?;
        }
        Self::builder(DEFAULT_OTLP_ENDPOINT).env_from(|name| std::env::var(name).ok())
    }

    /// Deliveries so far.
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318").build().unwrap();
    /// assert_eq!(e.stats().queue_points, 0);
    /// ```
    pub fn stats(&self) -> PushStats {
        self.delivery.stats()
    }

    /// The resource attributes every request carries.
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318").build().unwrap();
    /// assert!(e.resource().iter().any(|(k, v)| k == "telemetry.sdk.name" && v == "vitals"));
    /// ```
    pub fn resource(&self) -> &[(String, String)] {
        &self.resource
    }

    /// The URL requests go to.
    ///
    /// ```
    /// let e = vitals::export::push::OtlpExporter::builder("http://h:4318").build().unwrap();
    /// assert_eq!(e.url(), "http://h:4318/v1/metrics");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Exporter for OtlpExporter {
    fn name(&self) -> &str {
        self.delivery.name()
    }

    /// Turns the snapshot into points (deltas, start times) and queues them
    /// for the sender thread, which encodes and sends.
    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        let set = self.maker.points(snapshot);
        self.delivery
            .add(|backlog, on_wire| backlog.add(set, on_wire))
    }

    /// Waits (up to the shutdown deadline) for the backlog to be delivered.
    fn flush(&mut self) -> Result<(), Error> {
        self.delivery.flush()
    }
}

/// Encodes one snapshot as an OTLP `ExportMetricsServiceRequest` with the
/// default settings (cumulative, the default resource and scope, at most
/// 160 buckets): what an [`OtlpExporter`]'s first request carries, for
/// sending by other means or inspecting.
///
/// ```
/// use vitals::export::push::{encode_otlp, OtlpFormat};
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("temp", &[]).set(21.5);
/// let body = encode_otlp(&metrics.snapshot(), OtlpFormat::Protobuf)?;
/// assert_eq!(body[0], 0x0a); // resource_metrics, length-delimited
/// assert!(body.windows(4).any(|w| w == b"temp"));
/// # Ok::<(), vitals::Error>(())
/// ```
pub fn encode_otlp(snapshot: &Snapshot, format: OtlpFormat) -> Result<Vec<u8>, Error> {
    let b = OtlpExporter::builder("http://localhost:4318");
    let head = Head {
        resource: env::default_resource(),
        scope_name: b.scope_name,
        scope_version: b.scope_version,
        temporality: Temporality::Cumulative,
        max_buckets: b.max_buckets,
    };
    let set = PointMaker::one_shot(false).points(snapshot);
    Ok(OtlpBacklog::new(head, format).encode(&set))
}
