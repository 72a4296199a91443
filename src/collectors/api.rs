//! The API plug-in: requests by endpoint, method and status class, latency
//! per endpoint, requests in flight, success rate and requests per second.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::named::{Named, Slot};
use super::DEFAULT_WINDOW;
use super::{describe_all, Description};
use crate::clock::Clock;
use crate::error::Error;
use crate::metrics::counter::Counter;
use crate::metrics::gauge::Gauge;
use crate::metrics::histogram::Histogram;
use crate::plugin::{Collector, Samples};
use crate::registry::rate::Trailing;
use crate::registry::{MetricsCollector, WeakCollector};
use crate::snapshot::MetricKind;
use crate::unit::Unit;

const REQUESTS: &str = "api_requests_total";
const ERRORS: &str = "api_errors_total";
const DURATION: &str = "api_request_duration_seconds";
const IN_FLIGHT: &str = "api_requests_in_flight";

/// An HTTP method, as a label value. Anything else is [`Method::Other`], so
/// that the method label stays bounded whatever clients send.
///
/// ```
/// use vitals::collectors::Method;
///
/// assert_eq!(Method::from("GET"), Method::Get);
/// assert_eq!(Method::from("get"), Method::Get);
/// assert_eq!(Method::from("BREW"), Method::Other);
/// assert_eq!(Method::Post.as_str(), "POST");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `CONNECT`
    Connect,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `PATCH`
    Patch,
    /// Any other method (label value `OTHER`).
    Other,
}

const METHODS: [Method; 10] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Connect,
    Method::Options,
    Method::Trace,
    Method::Patch,
    Method::Other,
];

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

impl Method {
    /// The label value: the method in capitals, or `OTHER`.
    ///
    /// ```
    /// assert_eq!(vitals::collectors::Method::Other.as_str(), "OTHER");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other => "OTHER",
        }
    }
}

impl From<&str> for Method {
    fn from(s: &str) -> Self {
        METHODS
            .iter()
            .copied()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .unwrap_or(Method::Other)
    }
}

/// The status class index: `1xx`..`5xx`, or `other` for codes outside
/// 100..=599.
#[inline]
fn class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => 5,
    }
}

/// Server errors (5xx) and codes outside 100..=599 count as errors; 4xx are
/// the client's and count as served.
#[inline]
fn is_error(status: u16) -> bool {
    !(100..500).contains(&status)
}

/// The API plug-in (registered name `api`): records requests into core
/// metrics and adds success rates and requests per second at collection.
///
/// Core series (in the same registry):
/// `api_requests_total{endpoint,method,status}` (status is the class,
/// `2xx`...), `api_errors_total{endpoint}`,
/// `api_request_duration_seconds{endpoint}` (rolling-window quantiles) and
/// `api_requests_in_flight{endpoint}`. Samples: `api_requests_per_second`,
/// `api_success_ratio` (over the window) and `api_lifetime_success_ratio`,
/// per endpoint and, without the `endpoint` label, over all endpoints. A
/// ratio is left out while there have been no requests.
///
/// ```
/// use std::time::Duration;
/// use vitals::collectors::ApiCollector;
/// use vitals::MetricsCollector;
///
/// let metrics = MetricsCollector::new();
/// let api = ApiCollector::new(&metrics);
/// metrics.register(api.clone()).unwrap();
///
/// api.record_request("/login", "POST", 200, Duration::from_millis(30));
/// api.record_request("/login", "POST", 503, Duration::from_millis(900));
///
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("api_errors_total", &[("endpoint", "/login")]), Some(1.0));
/// assert_eq!(snap.gauge("api_lifetime_success_ratio", &[("endpoint", "/login")]), Some(0.5));
/// ```
#[derive(Clone)]
pub struct ApiCollector {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    registry: WeakCollector,
    clock: Arc<dyn Clock>,
    window: Duration,
    endpoints: Named<Endpoint>,
    all: Mutex<Trailing<2>>,
}

impl std::fmt::Debug for ApiCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCollector")
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

impl ApiCollector {
    /// An API plug-in writing to `metrics`, with rates and ratios over the
    /// last [`DEFAULT_WINDOW`](super::DEFAULT_WINDOW). Register it with
    /// [`MetricsCollector::register`] to get its samples in snapshots.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// let api = vitals::collectors::ApiCollector::new(&metrics);
    /// api.record_request("/", "GET", 200, Duration::from_millis(5));
    /// // The core series are there at once; the ratios come with registration.
    /// assert!(metrics.snapshot().gauge("api_lifetime_success_ratio", &[]).is_none());
    /// metrics.register(api.clone()).unwrap();
    /// assert_eq!(metrics.snapshot().gauge("api_lifetime_success_ratio", &[]), Some(1.0));
    /// ```
    pub fn new(metrics: &MetricsCollector) -> Self {
        Self::with_window(metrics, DEFAULT_WINDOW)
    }

    /// As [`new`](Self::new), with rates and ratios over `window` (at least
    /// 1 s: shorter windows are raised to 1 s).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::collectors::ApiCollector;
    /// use vitals::{ManualClock, MetricsCollector};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    /// let api = ApiCollector::with_window(&metrics, Duration::from_secs(10));
    /// metrics.register(api.clone()).unwrap();
    ///
    /// api.record_request("/", "GET", 503, Duration::from_millis(5));
    /// clock.advance(Duration::from_secs(5));
    /// metrics.snapshot(); // collections mark where windows start
    /// clock.advance(Duration::from_secs(10));
    /// api.record_request("/", "GET", 200, Duration::from_millis(5));
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.gauge("api_success_ratio", &[]), Some(1.0)); // the last 10 s
    /// assert_eq!(snap.gauge("api_lifetime_success_ratio", &[]), Some(0.5));
    /// ```
    pub fn with_window(metrics: &MetricsCollector, window: Duration) -> Self {
        describe(metrics);
        let clock = Arc::clone(metrics.clock());
        let window = window.max(Duration::from_secs(1));
        ApiCollector {
            inner: Arc::new(ApiInner {
                registry: metrics.downgrade(),
                all: Mutex::new(Trailing::new(window, clock.monotonic())),
                clock,
                window,
                endpoints: Named::default(),
            }),
        }
    }

    /// The handle of `endpoint`, created on first use: keep it, and each
    /// request costs only the metric updates.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let api = vitals::collectors::ApiCollector::new(&metrics);
    /// let users = api.endpoint("/users");
    /// assert_eq!(users.name(), "/users");
    /// ```
    pub fn endpoint(&self, endpoint: &str) -> Endpoint {
        self.with_endpoint(endpoint, Endpoint::clone)
    }

    /// Records one finished request to `endpoint`. Looks the endpoint up
    /// each time; see [`endpoint`](Self::endpoint) to skip that.
    ///
    /// ```
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let api = vitals::collectors::ApiCollector::new(&metrics);
    /// api.record_request("/users", "GET", 404, Duration::from_millis(3));
    /// let snap = metrics.snapshot();
    /// let labels = [("endpoint", "/users"), ("method", "GET"), ("status", "4xx")];
    /// assert_eq!(snap.counter("api_requests_total", &labels), Some(1.0));
    /// ```
    #[inline]
    pub fn record_request(
        &self,
        endpoint: &str,
        method: impl Into<Method>,
        status: u16,
        duration: Duration,
    ) {
        let method = method.into();
        self.with_endpoint(endpoint, |e| e.record(method, status, duration));
    }

    /// Counts a request to `endpoint` in flight until the guard is finished
    /// or dropped.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let api = vitals::collectors::ApiCollector::new(&metrics);
    /// let request = api.in_flight("/upload");
    /// assert_eq!(metrics.snapshot().gauge("api_requests_in_flight", &[("endpoint", "/upload")]), Some(1.0));
    /// request.finish("PUT", 201);
    /// assert_eq!(metrics.snapshot().gauge("api_requests_in_flight", &[("endpoint", "/upload")]), Some(0.0));
    /// ```
    pub fn in_flight(&self, endpoint: &str) -> InFlight {
        self.endpoint(endpoint).start()
    }

    #[inline]
    fn with_endpoint<R>(&self, endpoint: &str, f: impl FnOnce(&Endpoint) -> R) -> R {
        self.inner.endpoints.with(
            endpoint,
            |name| {
                self.new_endpoint(Slot::Name {
                    key: "endpoint",
                    value: name,
                })
            },
            || {
                self.new_endpoint(Slot::Overflow)
                    .unwrap_or_else(|| Endpoint::detached(&self.inner))
            },
            f,
        )
    }

    /// A new endpoint, or `None` past the cardinality limit (the overflow
    /// slot never is).
    fn new_endpoint(&self, slot: Slot<'_>) -> Option<Endpoint> {
        let Some(metrics) = self.inner.registry.upgrade() else {
            return Some(Endpoint::detached(&self.inner));
        };
        let duration = slot.first_histogram(&metrics, DURATION)?;
        Some(Endpoint {
            inner: Arc::new(EndpointInner {
                name: match slot {
                    Slot::Name { value, .. } => value.into(),
                    Slot::Overflow => "".into(),
                },
                overflow: matches!(slot, Slot::Overflow),
                registry: self.inner.registry.clone(),
                requests: std::array::from_fn(|_| OnceLock::new()),
                errors: slot.counter(&metrics, ERRORS, &[]),
                in_flight: slot.gauge(&metrics, IN_FLIGHT),
                duration,
                trailing: Mutex::new(Trailing::new(
                    self.inner.window,
                    self.inner.clock.monotonic(),
                )),
            }),
        })
    }
}

fn describe(metrics: &MetricsCollector) {
    metrics.describe(
        MetricKind::Counter,
        REQUESTS,
        None,
        "Requests served, by endpoint, method and status class.",
    );
    metrics.describe(
        MetricKind::Counter,
        ERRORS,
        None,
        "Requests that ended in a server error (5xx) or an invalid status, by endpoint.",
    );
    metrics.describe(
        MetricKind::Histogram,
        DURATION,
        Some(Unit::Seconds),
        "Request latency, by endpoint.",
    );
    metrics.describe(
        MetricKind::Gauge,
        IN_FLIGHT,
        None,
        "Requests being served, by endpoint.",
    );
}

impl Collector for ApiCollector {
    fn name(&self) -> &str {
        "api"
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        describe_all(out, &DESCRIPTIONS)?;
        let now = self.inner.clock.monotonic();
        let (mut total, mut errors) = (0, 0);
        for endpoint in self.inner.endpoints.list() {
            let e = &endpoint.inner;
            let (t, err) = (e.total(), e.errors.value());
            total += t;
            errors += err;
            let recent = e.trailing.lock().update(now, [t, err]);
            push_rates(out, &[e.slot().label()], recent, [t, err])?;
        }
        let recent = self.inner.all.lock().update(now, [total, errors]);
        push_rates(out, &[], recent, [total, errors])
    }
}

/// The plug-in's gauges, their units and help texts.
const DESCRIPTIONS: [Description; 3] = [
    (
        "api_requests_per_second",
        None,
        "Requests per second over the trailing window.",
    ),
    (
        "api_success_ratio",
        Some(Unit::Ratio),
        "Share of requests without error over the trailing window.",
    ),
    (
        "api_lifetime_success_ratio",
        Some(Unit::Ratio),
        "Share of requests without error since the start.",
    ),
];

fn push_rates(
    out: &mut Samples,
    labels: &[(&str, &str)],
    recent: crate::registry::rate::Increase<2>,
    life: [u64; 2],
) -> Result<(), Error> {
    if let Some(rps) = recent.per_second(0) {
        out.gauge("api_requests_per_second", labels, rps)?;
    }
    if let Some(r) = success_ratio(recent.by) {
        out.gauge("api_success_ratio", labels, r)?;
    }
    if let Some(r) = success_ratio(life) {
        out.gauge("api_lifetime_success_ratio", labels, r)?;
    }
    Ok(())
}

fn success_ratio([total, errors]: [u64; 2]) -> Option<f64> {
    (total > 0).then(|| total.saturating_sub(errors) as f64 / total as f64)
}

/// One endpoint's pre-resolved metric handles: recording a request is a
/// counter increment and a histogram record (plus one increment for an
/// error), with no lock and no allocation. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use vitals::collectors::{ApiCollector, Method};
///
/// let metrics = vitals::MetricsCollector::new();
/// let orders = ApiCollector::new(&metrics).endpoint("/orders");
/// orders.record(Method::Post, 201, Duration::from_millis(8));
/// orders.record("GET", 500, Duration::from_millis(2));
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("api_errors_total", &[("endpoint", "/orders")]), Some(1.0));
/// ```
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<EndpointInner>,
}

struct EndpointInner {
    name: Box<str>,
    /// The shared handle of the names past the cardinality limit.
    overflow: bool,
    registry: WeakCollector,
    /// Counters by `method × status class`, resolved on first use so that
    /// unused combinations create no series.
    requests: [OnceLock<Counter>; METHODS.len() * CLASSES.len()],
    errors: Counter,
    duration: Histogram,
    in_flight: Gauge,
    trailing: Mutex<Trailing<2>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint whose registry is gone: it records nowhere.
    fn detached(api: &ApiInner) -> Self {
        Endpoint {
            inner: Arc::new(EndpointInner {
                name: "".into(),
                overflow: true,
                registry: api.registry.clone(),
                requests: std::array::from_fn(|_| OnceLock::new()),
                errors: Counter::detached(),
                duration: Histogram::detached(),
                in_flight: Gauge::detached(),
                trailing: Mutex::new(Trailing::new(api.window, Duration::ZERO)),
            }),
        }
    }

    /// The endpoint label value (empty for the shared overflow endpoint).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let e = vitals::collectors::ApiCollector::new(&metrics).endpoint("/");
    /// assert_eq!(e.name(), "/");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True for the handle the names past the cardinality limit share: it
    /// records into each metric's `{vitals_overflow="true"}` series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::builder().cardinality_limit(1).build();
    /// let api = vitals::collectors::ApiCollector::new(&metrics);
    /// assert!(!api.endpoint("/a").is_overflow());
    /// let b = api.endpoint("/b");
    /// assert!(b.is_overflow());
    /// b.record("GET", 500, std::time::Duration::from_millis(1));
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.counter("api_errors_total", &[("vitals_overflow", "true")]), Some(1.0));
    /// ```
    pub fn is_overflow(&self) -> bool {
        self.inner.overflow
    }

    /// Records one finished request.
    ///
    /// ```
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let e = vitals::collectors::ApiCollector::new(&metrics).endpoint("/");
    /// e.record("GET", 200, Duration::from_micros(250));
    /// assert_eq!(metrics.snapshot().histogram("api_request_duration_seconds", &[("endpoint", "/")]).unwrap().window.count, 1);
    /// ```
    #[inline]
    pub fn record(&self, method: impl Into<Method>, status: u16, duration: Duration) {
        // Hot path: index arithmetic, one load of a resolved handle, the
        // counter's atomic and the histogram's record.
        let i = method.into() as usize * CLASSES.len() + class(status);
        let inner = &*self.inner;
        match inner.requests[i].get() {
            Some(counter) => counter.inc(),
            None => inner.resolve(i).inc(),
        }
        inner.duration.record_duration(duration);
        if is_error(status) {
            inner.errors.inc();
        }
    }

    /// Counts a request in flight until the returned guard is finished or
    /// dropped.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let e = vitals::collectors::ApiCollector::new(&metrics).endpoint("/slow");
    /// let guard = e.start();
    /// drop(guard); // abandoned: no longer in flight, and not recorded
    /// assert_eq!(metrics.snapshot().gauge("api_requests_in_flight", &[("endpoint", "/slow")]), Some(0.0));
    /// ```
    pub fn start(&self) -> InFlight {
        self.inner.in_flight.increment(1.0);
        InFlight {
            endpoint: self.clone(),
            started: Instant::now(),
        }
    }
}

impl EndpointInner {
    #[cold]
    #[inline(never)]
    fn resolve(&self, i: usize) -> &Counter {
        self.requests[i].get_or_init(|| {
            let method = METHODS[i / CLASSES.len()].as_str();
            let status = CLASSES[i % CLASSES.len()];
            match self.registry.upgrade() {
                Some(metrics) => self.slot().counter(
                    &metrics,
                    REQUESTS,
                    &[("method", method), ("status", status)],
                ),
                None => Counter::detached(),
            }
        })
    }

    fn slot(&self) -> Slot<'_> {
        if self.overflow {
            Slot::Overflow
        } else {
            Slot::Name {
                key: "endpoint",
                value: &self.name,
            }
        }
    }

    fn total(&self) -> u64 {
        self.requests
            .iter()
            .filter_map(OnceLock::get)
            .map(Counter::value)
            .fold(0, u64::wrapping_add)
    }
}

/// A request in flight: counted in `api_requests_in_flight` until it is
/// [`finish`](InFlight::finish)ed (which also records it, timed from the
/// start) or dropped (abandoned, not recorded).
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let api = vitals::collectors::ApiCollector::new(&metrics);
/// let req = api.in_flight("/search");
/// let elapsed = req.finish("GET", 200);
/// assert!(elapsed.as_secs() < 60);
/// ```
#[must_use = "the request stops counting as in flight when the guard is dropped"]
#[derive(Debug)]
pub struct InFlight {
    endpoint: Endpoint,
    started: Instant,
}

impl InFlight {
    /// Records the request with the time since the guard was made; returns
    /// that time.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let e = vitals::collectors::ApiCollector::new(&metrics).endpoint("/");
    /// e.start().finish("GET", 204);
    /// let labels = [("endpoint", "/"), ("method", "GET"), ("status", "2xx")];
    /// assert_eq!(metrics.snapshot().counter("api_requests_total", &labels), Some(1.0));
    /// ```
    pub fn finish(self, method: impl Into<Method>, status: u16) -> Duration {
        let elapsed = self.started.elapsed();
        self.endpoint.record(method, status, elapsed);
        elapsed
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.endpoint.inner.in_flight.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_and_errors() {
        assert_eq!(CLASSES[class(204)], "2xx");
        assert_eq!(CLASSES[class(599)], "5xx");
        assert_eq!(CLASSES[class(99)], "other");
        assert_eq!(CLASSES[class(600)], "other");
        assert!(!is_error(404) && is_error(500) && is_error(0) && !is_error(100));
    }

    #[test]
    fn every_method_maps_to_its_own_slot() {
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(*m as usize, i);
            assert_eq!(Method::from(m.as_str()), *m);
        }
    }
}
