//! Delivery: a sender thread per push exporter, retries with backoff and
//! jitter, a bounded backlog, and the `vitals_push_*` counts.
//!
//! The exporter's `export` (on the reporter's thread) only encodes and hands
//! the result to the backlog; this thread sends, waits and retries. So a
//! backend that is slow, down or refusing never holds up a snapshot, let
//! alone the instrumented code.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock::deadline_after;
use crate::error::Error;
use crate::registry::MetricsCollector;
use crate::snapshot::MetricKind;

use super::client::{Failure, Response, Timeouts};

/// Points delivered (a 2xx answer), by `exporter`.
pub(crate) const SENT_POINTS_METRIC: &str = "vitals_push_sent_points_total";
/// Requests that failed, by `exporter` and `cause`.
pub(crate) const FAILED_REQUESTS_METRIC: &str = "vitals_push_failed_requests_total";
/// Failed requests that will be sent again, by `exporter`.
pub(crate) const RETRIED_REQUESTS_METRIC: &str = "vitals_push_retried_requests_total";
/// Points that will never be sent, by `exporter` and `reason`.
pub(crate) const DROPPED_POINTS_METRIC: &str = "vitals_push_dropped_points_total";
/// Bytes waiting to be sent, by `exporter`.
pub(crate) const QUEUE_BYTES_METRIC: &str = "vitals_push_queue_bytes";

/// Timeouts, retry timing, the backlog bound and the shutdown deadline of a
/// push exporter.
///
/// Every duration is checked when the exporter is built (1 ms to 1 h;
/// `Duration::MAX` is refused with [`Error::InvalidConfig`]).
///
/// ```
/// use std::time::Duration;
/// use vitals::export::push::DeliveryConfig;
///
/// let config = DeliveryConfig {
///     request_timeout: Duration::from_secs(5),
///     ..DeliveryConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// let bad = DeliveryConfig { connect_timeout: Duration::MAX, ..config };
/// assert!(matches!(bad.validate(), Err(vitals::Error::InvalidConfig(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Per address tried when connecting (default 5 s).
    pub connect_timeout: Duration,
    /// From sending the request to the end of the response head
    /// (default 10 s).
    pub request_timeout: Duration,
    /// Wait before the first retry (default 500 ms); it doubles with each
    /// failure in a row, and each wait is drawn at random between half and
    /// all of it (jitter), so a fleet does not retry in step.
    pub initial_backoff: Duration,
    /// The longest wait between retries (default 30 s).
    pub max_backoff: Duration,
    /// The longest a `Retry-After` header is obeyed for (default 5 min); a
    /// `Retry-After` given as a date, not seconds, falls back to the backoff.
    pub max_retry_after: Duration,
    /// Bytes of encoded data kept while the backend is down (default
    /// 8 MiB). Past it the oldest intermediate points go; the latest value
    /// of every series is always kept, so counts survive any outage. The
    /// backlog exceeds the bound only when the request being sent and the
    /// newest snapshot alone do.
    pub max_backlog_bytes: usize,
    /// How long [`flush`](crate::export::Exporter::flush) (the reporter's
    /// shutdown) waits for the backlog to drain (default 5 s). Dropping the
    /// exporter afterwards still waits for a request already on the wire,
    /// which its two timeouts bound.
    pub shutdown_deadline: Duration,
    /// Certificates (PEM text, any number per entry) of the certificate
    /// authorities an `https://` endpoint may be signed by besides the
    /// Mozilla set that feature `tls` trusts: a private CA. Empty by
    /// default; a certificate that does not parse is refused when the
    /// exporter is built.
    pub extra_root_certificates: Vec<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            max_backlog_bytes: 8 << 20,
            shutdown_deadline: Duration::from_secs(5),
            extra_root_certificates: Vec::new(),
        }
    }
}

impl DeliveryConfig {
    /// Checks every setting: durations 1 ms to 1 h, `initial_backoff` at
    /// most `max_backoff`, a backlog bound of at least 1 KiB.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = vitals::export::push::DeliveryConfig {
    ///     initial_backoff: Duration::from_secs(60),
    ///     max_backoff: Duration::from_secs(1),
    ///     ..Default::default()
    /// };
    /// assert!(config.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        self.timeouts().validate()?;
        for (name, d) in [
            ("initial_backoff", self.initial_backoff),
            ("max_backoff", self.max_backoff),
            ("max_retry_after", self.max_retry_after),
            ("shutdown_deadline", self.shutdown_deadline),
        ] {
            if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be 1 ms to 1 h, not {d:?}"
                )));
            }
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::InvalidConfig(format!(
                "initial_backoff {:?} is longer than max_backoff {:?}",
                self.initial_backoff, self.max_backoff
            )));
        }
        if self.max_backlog_bytes < 1024 {
            return Err(Error::InvalidConfig(format!(
                "max_backlog_bytes must be at least 1024, not {}",
                self.max_backlog_bytes
            )));
        }
        Ok(())
    }

    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.connect_timeout,
            request: self.request_timeout,
        }
    }

    /// The wait before retry number `attempt` (1 for the first), before
    /// jitter: `initial * 2^(attempt-1)`, at most `max_backoff`.
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What a push exporter has done so far.
///
/// ```
/// let stats = vitals::export::push::PushStats::default();
/// assert_eq!(stats.sent_points, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PushStats {
    /// Requests answered with a 2xx.
    pub sent_requests: u64,
    /// Points (series values) in those requests.
    pub sent_points: u64,
    /// Requests that failed: no connection, a timeout, a bad or non-2xx
    /// answer.
    pub failed_requests: u64,
    /// Failed requests that were (or will be) sent again.
    pub retried_requests: u64,
    /// Points that will never be sent: older intermediate points past the
    /// backlog bound, points refused by a 4xx, superseded Pushgateway
    /// bodies, what was left at shutdown.
    pub dropped_points: u64,
    /// Bytes waiting to be sent.
    pub queue_bytes: u64,
    /// Points waiting to be sent.
    pub queue_points: u64,
    /// The most recent failure, as text.
    pub last_error: Option<String>,
}

/// One request body ready to go.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Identifies what [`Backlog::complete`] must remove.
    pub(crate) ticket: u64,
    pub(crate) body: Vec<u8>,
    pub(crate) points: u64,
}

/// What an exporter keeps while sending: the data not yet delivered.
pub(crate) trait Backlog: Send + 'static {
    /// The next request, or `None` when nothing is pending.
    fn next(&mut self) -> Option<Outgoing>;
    /// The request with this ticket was delivered or refused for good:
    /// forget what it carried (if it is still there).
    fn complete(&mut self, ticket: u64);
    fn bytes(&self) -> usize;
    fn points(&self) -> u64;
    /// Points dropped since the last call where no `Dropped` could be
    /// returned (while choosing the next request); asked after every
    /// `next` and before the sender's state is dropped.
    fn take_dropped(&mut self) -> Option<Dropped> {
        None
    }
}

/// Points an exporter dropped while adding to its backlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub(crate) points: u64,
    pub(crate) reason: &'static str,
}

type SendFn = Box<dyn FnMut(&[u8]) -> Result<Response, Failure> + Send>;

/// The sender thread of one exporter and the backlog it shares with it.
pub(crate) struct Delivery<B: Backlog> {
    shared: Arc<Shared<B>>,
    thread: Option<JoinHandle<()>>,
}

struct Shared<B> {
    name: String,
    config: DeliveryConfig,
    metrics: Option<MetricsCollector>,
    state: Mutex<State<B>>,
    wake: Condvar,
}

struct State<B> {
    backlog: B,
    in_flight: bool,
    stop: bool,
    /// Bumped by `flush`: the sender cuts its current wait short and
    /// restarts its backoff, so a backend that is back is seen at once.
    hurry: u64,
    stats: PushStats,
    /// Failure causes already reported through `export`'s error, since the
    /// last delivery.
    reported: Vec<&'static str>,
    /// Messages to report at the next `export`.
    unreported: Vec<String>,
}

impl<B: Backlog> Delivery<B> {
    /// Starts the sender thread. `send` sends one body and returns the
    /// answer.
    pub(crate) fn start(
        name: &str,
        config: DeliveryConfig,
        metrics: Option<MetricsCollector>,
        backlog: B,
        send: SendFn,
    ) -> Result<Self, Error> {
        config.validate()?;
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(Error::InvalidConfig(format!(
                "an exporter name must be non-empty without control characters, not {name:?}"
            )));
        }
        if let Some(m) = &metrics {
            describe(m);
        }
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            config,
            metrics,
            state: Mutex::new(State {
                backlog,
                in_flight: false,
                stop: false,
                hurry: 0,
                stats: PushStats::default(),
                reported: Vec::new(),
                unreported: Vec::new(),
            }),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("vitals-push-{name}"))
            .spawn(move || run(&worker, send))
            .map_err(|e| Error::io_on("spawn", format!("vitals-push-{name}"), e))?;
        Ok(Delivery {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// Adds to the backlog with `add(backlog, in_flight)` (in flight: the
    /// oldest data is being sent and must stay), wakes the sender, and
    /// returns the failures not yet reported, once per cause.
    pub(crate) fn add(
        &self,
        add: impl FnOnce(&mut B, bool) -> Option<Dropped>,
    ) -> Result<(), Error> {
        let mut st = self.shared.state.lock();
        let in_flight = st.in_flight;
        if let Some(dropped) = add(&mut st.backlog, in_flight) {
            self.shared.dropped(&mut st, dropped);
        }
        self.shared.queue_changed(&mut st);
        let unreported = std::mem::take(&mut st.unreported);
        drop(st);
        self.shared.wake.notify_all();
        if unreported.is_empty() {
            Ok(())
        } else {
            Err(Error::Export {
                exporter: self.shared.name.clone(),
                message: unreported.join("; "),
            })
        }
    }

    /// Counts points left out before they reached the backlog.
    pub(crate) fn left_out(&self, dropped: Dropped) {
        let mut st = self.shared.state.lock();
        self.shared.dropped(&mut st, dropped);
    }

    /// Waits up to the shutdown deadline for the backlog to drain.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        let deadline = deadline_after(Instant::now(), self.shared.config.shutdown_deadline);
        let mut st = self.shared.state.lock();
        st.hurry += 1;
        self.shared.wake.notify_all();
        while (st.in_flight || st.backlog.points() > 0) && !st.stop {
            if self.shared.wake.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        let points = st.backlog.points();
        if points == 0 && !st.in_flight {
            return Ok(());
        }
        Err(Error::Export {
            exporter: self.shared.name.clone(),
            message: format!(
                "{points} points ({} bytes) not delivered within the shutdown deadline of {:?}{}",
                st.backlog.bytes(),
                self.shared.config.shutdown_deadline,
                st.stats
                    .last_error
                    .as_deref()
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ),
        })
    }

    pub(crate) fn stats(&self) -> PushStats {
        self.shared.state.lock().stats.clone()
    }
}

impl<B: Backlog> Drop for Delivery<B> {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // At most one request's timeouts: the thread checks `stop`
            // before every send and wait.
            let _ = thread.join();
        }
        let mut st = self.shared.state.lock();
        if let Some(dropped) = st.backlog.take_dropped() {
            self.shared.dropped(&mut st, dropped);
        }
        let points = st.backlog.points();
        if points > 0 {
            self.shared.dropped(
                &mut st,
                Dropped {
                    points,
                    reason: "shutdown",
                },
            );
        }
    }
}

impl<B: Backlog> Shared<B> {
    fn counter(&self, name: &str, extra: Option<(&str, &str)>, n: u64) {
        if let Some(m) = &self.metrics {
            match extra {
                Some(kv) => m
                    .counter(name, &[("exporter", &self.name), kv])
                    .increment(n),
                None => m.counter(name, &[("exporter", &self.name)]).increment(n),
            }
        }
    }

    fn dropped(&self, st: &mut State<B>, dropped: Dropped) {
        if dropped.points == 0 {
            return;
        }
        st.stats.dropped_points += dropped.points;
        self.counter(
            DROPPED_POINTS_METRIC,
            Some(("reason", dropped.reason)),
            dropped.points,
        );
    }

    fn queue_changed(&self, st: &mut State<B>) {
        st.stats.queue_bytes = st.backlog.bytes() as u64;
        st.stats.queue_points = st.backlog.points();
        if let Some(m) = &self.metrics {
            m.gauge(QUEUE_BYTES_METRIC, &[("exporter", &self.name)])
                .set(st.stats.queue_bytes as f64);
        }
    }

    fn failed(&self, st: &mut State<B>, cause: &'static str, message: String) {
        st.stats.failed_requests += 1;
        self.counter(FAILED_REQUESTS_METRIC, Some(("cause", cause)), 1);
        if !st.reported.contains(&cause) {
            st.reported.push(cause);
            st.unreported.push(message.clone());
        }
        st.stats.last_error = Some(message);
    }
}

/// What to do after one attempt.
enum Verdict {
    Delivered,
    /// Refused for good (a 4xx other than 429): drop it.
    Rejected(&'static str, String),
    /// Try again after the backoff, or after this long if the server said.
    Retry(&'static str, String, Option<Duration>),
}

fn judge(result: Result<Response, Failure>) -> Verdict {
    let response = match result {
        Ok(r) => r,
        Err(f) => return Verdict::Retry(f.cause(), f.message(), None),
    };
    let status = response.status;
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    let body = String::from_utf8_lossy(&response.body);
    let body = body.trim();
    let message = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    match status {
        429 => Verdict::Retry("status_429", message, response.retry_after),
        500..=599 => Verdict::Retry("status_5xx", message, response.retry_after),
        400..=499 => Verdict::Rejected("status_4xx", message),
        // 1xx and 3xx: not followed (a redirect would resend the data
        // somewhere not configured); a wrong URL is not transient.
        _ => Verdict::Rejected("status_other", message),
    }
}

fn run<B: Backlog>(shared: &Shared<B>, mut send: SendFn) {
    let mut attempt = 0u32;
    let mut rng = Jitter::seeded();
    loop {
        let (out, hurry) = {
            let mut st = shared.state.lock();
            loop {
                if st.stop {
                    return;
                }
                let out = st.backlog.next();
                if let Some(dropped) = st.backlog.take_dropped() {
                    shared.dropped(&mut st, dropped);
                }
                if let Some(out) = out {
                    st.in_flight = true;
                    // A flush while this request is on the wire cuts the
                    // backoff after it short too.
                    break (out, st.hurry);
                }
                shared.wake.wait(&mut st);
            }
        };
        // Outside the lock: `export` never waits for the network.
        let verdict = judge(send(&out.body));
        let mut st = shared.state.lock();
        st.in_flight = false;
        let wait = match verdict {
            Verdict::Delivered => {
                st.backlog.complete(out.ticket);
                st.stats.sent_requests += 1;
                st.stats.sent_points += out.points;
                shared.counter(SENT_POINTS_METRIC, None, out.points);
                st.reported.clear();
                attempt = 0;
                None
            }
            Verdict::Rejected(cause, message) => {
                st.backlog.complete(out.ticket);
                shared.failed(&mut st, cause, message);
                shared.dropped(
                    &mut st,
                    Dropped {
                        points: out.points,
                        reason: "rejected",
                    },
                );
                attempt = 0;
                None
            }
            Verdict::Retry(cause, message, retry_after) => {
                shared.failed(&mut st, cause, message);
                st.stats.retried_requests += 1;
                shared.counter(RETRIED_REQUESTS_METRIC, None, 1);
                attempt = attempt.saturating_add(1);
                // The server's word is kept even by a flush; only our own
                // backoff is cut short. A `Retry-After` shorter than the
                // backoff (`0`) gets the backoff: never a busy loop.
                let ours = rng.jitter(shared.config.backoff(attempt));
                Some(match retry_after {
                    Some(d) if d.min(shared.config.max_retry_after) > ours => {
                        (d.min(shared.config.max_retry_after), false)
                    }
                    _ => (ours, true),
                })
            }
        };
        shared.queue_changed(&mut st);
        shared.wake.notify_all();
        if let Some((wait, cut_short_by_flush)) = wait {
            let until = deadline_after(Instant::now(), wait);
            while !st.stop && (st.hurry == hurry || !cut_short_by_flush) {
                if shared.wake.wait_until(&mut st, until).timed_out() {
                    break;
                }
            }
            if st.hurry != hurry {
                attempt = 0;
            }
        }
    }
}

fn describe(m: &MetricsCollector) {
    let describe = |kind, name, help| m.describe(kind, name, None, help);
    describe(
        MetricKind::Counter,
        SENT_POINTS_METRIC,
        "Points a vitals push exporter delivered, by exporter.",
    );
    describe(
        MetricKind::Counter,
        FAILED_REQUESTS_METRIC,
        "Push requests that failed, by exporter and cause.",
    );
    describe(
        MetricKind::Counter,
        RETRIED_REQUESTS_METRIC,
        "Failed push requests that are sent again, by exporter.",
    );
    describe(
        MetricKind::Counter,
        DROPPED_POINTS_METRIC,
        "Points a push exporter will never send, by exporter and reason.",
    );
    describe(
        MetricKind::Gauge,
        QUEUE_BYTES_METRIC,
        "Bytes a push exporter holds for sending, by exporter.",
    );
}

/// A small xorshift generator for backoff jitter (no `rand` dependency:
/// the quality needed is "not in step with the other instances").
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Jitter(h.finish() | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[d/2, d]`.
    fn jitter(&mut self, d: Duration) -> Duration {
        let half = d / 2;
        let frac = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        half + half.mul_f64(frac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = DeliveryConfig::default();
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.request_timeout, Duration::from_secs(10));
        assert_eq!(c.initial_backoff, Duration::from_millis(500));
        assert_eq!(c.max_backoff, Duration::from_secs(30));
        assert_eq!(c.max_retry_after, Duration::from_secs(300));
        assert_eq!(c.max_backlog_bytes, 8 * 1024 * 1024);
        assert_eq!(c.shutdown_deadline, Duration::from_secs(5));
        assert!(c.extra_root_certificates.is_empty());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_overflows() {
        let c = DeliveryConfig::default();
        assert_eq!(c.backoff(1), Duration::from_millis(500));
        assert_eq!(c.backoff(2), Duration::from_secs(1));
        assert_eq!(c.backoff(4), Duration::from_secs(4));
        assert_eq!(c.backoff(10), Duration::from_secs(30));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(30));
        let mut j = Jitter(12345);
        for _ in 0..1000 {
            let d = j.jitter(Duration::from_secs(4));
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(4),
                "{d:?}"
            );
        }
    }

    fn response(status: u16, retry_after: Option<u64>) -> Result<Response, Failure> {
        Ok(Response {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: b"why".to_vec(),
        })
    }

    #[test]
    fn statuses_are_judged_by_the_protocols_rules() {
        assert!(matches!(judge(response(200, None)), Verdict::Delivered));
        assert!(matches!(judge(response(204, None)), Verdict::Delivered));
        assert!(matches!(
            judge(response(429, Some(3))),
            Verdict::Retry("status_429", _, Some(d)) if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            judge(response(503, None)),
            Verdict::Retry("status_5xx", _, None)
        ));
        assert!(matches!(
            judge(response(400, None)),
            Verdict::Rejected("status_4xx", m) if m == "HTTP 400: why"
        ));
        assert!(matches!(
            judge(response(301, None)),
            Verdict::Rejected("status_other", _)
        ));
        assert!(matches!(
            judge(Err(Failure::Timeout)),
            Verdict::Retry("timeout", _, None)
        ));
    }
}
