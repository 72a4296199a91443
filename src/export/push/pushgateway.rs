//! [`PushgatewayExporter`]: the Prometheus text of each snapshot, pushed to
//! a Pushgateway group.
//!
//! ```
//! use vitals::export::push::PushgatewayExporter;
//!
//! let exporter = PushgatewayExporter::builder("http://127.0.0.1:9091", "batch")
//!     .grouping_label("instance", "")
//!     .build()
//!     .unwrap();
//! // The empty value takes the Pushgateway's base64 spelling.
//! assert_eq!(exporter.group_path(), "/metrics/job/batch/instance@base64/=");
//! ```

use crate::error::Error;
use crate::export::prometheus::{TextFormat, TextRenderer, PROMETHEUS_CONTENT_TYPE};
use crate::export::Exporter;
use crate::registry::MetricsCollector;
use crate::snapshot::Snapshot;

use super::client::{Endpoint, HttpClient, Request};
use super::delivery::{Backlog, Delivery, DeliveryConfig, Dropped, Outgoing, PushStats};
use super::{base64, check_header_value};

/// How a push replaces what the group held.
///
/// ```
/// assert_eq!(vitals::export::push::PushMethod::default(), vitals::export::push::PushMethod::Put);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PushMethod {
    /// `PUT`: the group's metrics become exactly those pushed (series no
    /// longer in the snapshot disappear from the group).
    #[default]
    Put,
    /// `POST`: only the metric names pushed are replaced; others pushed
    /// earlier to the group stay.
    Post,
}

impl PushMethod {
    fn as_str(self) -> &'static str {
        match self {
            PushMethod::Put => "PUT",
            PushMethod::Post => "POST",
        }
    }
}

/// Settings for a [`PushgatewayExporter`].
///
/// ```
/// use vitals::export::push::{PushMethod, PushgatewayExporter};
///
/// let exporter = PushgatewayExporter::builder("http://127.0.0.1:9091", "backup")
///     .grouping_label("instance", "db-1")
///     .method(PushMethod::Post)
///     .build()
///     .unwrap();
/// assert_eq!(exporter.group_path(), "/metrics/job/backup/instance/db-1");
/// ```
#[derive(Debug, Clone)]
pub struct PushgatewayBuilder {
    url: String,
    job: String,
    grouping: Vec<(String, String)>,
    method: PushMethod,
    delete_on_shutdown: bool,
    bearer_token: Option<String>,
    config: DeliveryConfig,
    metrics: Option<MetricsCollector>,
    name: String,
}

impl PushgatewayBuilder {
    /// Adds a label of the grouping key (after `job`). A value that is
    /// empty or has characters other than ASCII letters, digits and `-._~`
    /// is sent in the `@base64` form, as the Pushgateway documents.
    ///
    /// ```
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .grouping_label("path", "/var/tmp")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.group_path(), "/metrics/job/j/path@base64/L3Zhci90bXA=");
    /// ```
    pub fn grouping_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.grouping.push((name.into(), value.into()));
        self
    }

    /// `PUT` (the default) or `POST`.
    ///
    /// ```
    /// use vitals::export::push::{PushMethod, PushgatewayExporter};
    /// let b = PushgatewayExporter::builder("http://h:9091", "j").method(PushMethod::Post);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn method(mut self, method: PushMethod) -> Self {
        self.method = method;
        self
    }

    /// Deletes the group when the exporter is flushed at shutdown, after
    /// the final push (for a job whose metrics should not outlive it).
    ///
    /// ```
    /// let b = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .delete_on_shutdown(true);
    /// assert!(b.build().is_ok());
    /// ```
    pub fn delete_on_shutdown(mut self, delete: bool) -> Self {
        self.delete_on_shutdown = delete;
        self
    }

    /// Sends `Authorization: Bearer <token>` (for a Pushgateway behind an
    /// authenticating proxy).
    ///
    /// ```
    /// let b = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .bearer_token("line\nbreak");
    /// assert!(matches!(b.build(), Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    /// Timeouts, retries, backlog bound and shutdown deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::export::push::{DeliveryConfig, PushgatewayExporter};
    /// let config = DeliveryConfig { request_timeout: Duration::MAX, ..Default::default() };
    /// let b = PushgatewayExporter::builder("http://h:9091", "j").delivery(config);
    /// assert!(matches!(b.build(), Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn delivery(mut self, config: DeliveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Counts deliveries in the `vitals_push_*` series of `metrics`
    /// (usually the collector being pushed).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let _e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .record_into(&metrics)
    ///     .build()
    ///     .unwrap();
    /// let snap = metrics.snapshot();
    /// assert!(snap.metadata("vitals_push_sent_points_total").is_some());
    /// ```
    pub fn record_into(mut self, metrics: &MetricsCollector) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The exporter's name in reports and the `exporter` label (default
    /// `pushgateway`).
    ///
    /// ```
    /// use vitals::export::Exporter;
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .name("pgw_eu")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.name(), "pgw_eu");
    /// let nul = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .name("a\0b")
    ///     .build();
    /// assert!(matches!(nul, Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the settings and starts the sender thread.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a URL that is not `http://host[:port][/path]`,
    /// an empty job, a bad delivery setting or token;
    /// [`Error::InvalidLabelName`] for a grouping label name that is not a
    /// Prometheus label name (or is `job`); [`Error::Io`] if the thread
    /// cannot be spawned.
    ///
    /// ```
    /// use vitals::export::push::PushgatewayExporter;
    /// let err = PushgatewayExporter::builder("http://h:9091", "j")
    ///     .grouping_label("bad-name", "x")
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), "invalid_label");
    /// ```
    pub fn build(self) -> Result<PushgatewayExporter, Error> {
        let endpoint = Endpoint::parse(&self.url)?;
        if self.job.is_empty() {
            return Err(Error::InvalidConfig(
                "the Pushgateway job name must not be empty".into(),
            ));
        }
        let pairs: Vec<(&str, &str)> = self
            .grouping
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        crate::key::validate_labels("pushgateway grouping key", &pairs, &["job"])?;
        let mut group_path = String::from("/metrics");
        push_segment(&mut group_path, "job", &self.job);
        for (name, value) in &pairs {
            push_segment(&mut group_path, name, value);
        }
        let authorization = match &self.bearer_token {
            Some(token) => {
                check_header_value("the bearer token", token)?;
                Some(format!("Bearer {token}"))
            }
            None => None,
        };
        self.config.validate()?;
        let client = HttpClient::new(endpoint, &self.config)?;
        let method = self.method.as_str();
        let send = {
            let client = client.clone();
            let path = group_path.clone();
            let authorization = authorization.clone();
            Box::new(move |body: &[u8]| {
                let mut headers = vec![("Content-Type", PROMETHEUS_CONTENT_TYPE)];
                if let Some(a) = &authorization {
                    headers.push(("Authorization", a));
                }
                client.send(&Request {
                    method,
                    path: &path,
                    headers: &headers,
                    body,
                })
            })
        };
        let delivery = Delivery::start(
            &self.name,
            self.config,
            self.metrics,
            LatestBody::default(),
            send,
        )?;
        Ok(PushgatewayExporter {
            delivery,
            client,
            group_path,
            authorization,
            delete_on_shutdown: self.delete_on_shutdown,
            renderer: TextRenderer::new(TextFormat::Prometheus),
            text: String::new(),
        })
    }
}

/// Pushes each snapshot's Prometheus text (0.0.4) to a Pushgateway group
/// `/metrics/job/<job>{/<label>/<value>}`; see the [module](super) for
/// delivery. Feature `push`.
///
/// ```no_run
/// use vitals::export::push::PushgatewayExporter;
/// use vitals::export::Exporter;
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("rows_total", &[]).increment(42);
/// let mut push = PushgatewayExporter::builder("http://127.0.0.1:9091", "import")
///     .record_into(&metrics)
///     .build()?;
/// push.export(&metrics.snapshot())?;
/// push.flush()?; // waits (up to the shutdown deadline) for the push
/// assert_eq!(push.stats().sent_requests, 1);
/// # Ok::<(), vitals::Error>(())
/// ```
pub struct PushgatewayExporter {
    delivery: Delivery<LatestBody>,
    client: HttpClient,
    group_path: String,
    authorization: Option<String>,
    delete_on_shutdown: bool,
    renderer: TextRenderer,
    text: String,
}

impl std::fmt::Debug for PushgatewayExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushgatewayExporter")
            .field("name", &self.delivery.name())
            .field("group_path", &self.group_path)
            .field("stats", &self.delivery.stats())
            .finish_non_exhaustive()
    }
}

impl PushgatewayExporter {
    /// Settings for pushing to the Pushgateway at `url` (such as
    /// `http://pushgateway:9091`) as job `job`.
    ///
    /// ```
    /// let b = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j");
    /// assert!(b.build().is_ok());
    /// ```
    pub fn builder(url: impl Into<String>, job: impl Into<String>) -> PushgatewayBuilder {
        PushgatewayBuilder {
            url: url.into(),
            job: job.into(),
            grouping: Vec::new(),
            method: PushMethod::Put,
            delete_on_shutdown: false,
            bearer_token: None,
            config: DeliveryConfig::default(),
            metrics: None,
            name: "pushgateway".into(),
        }
    }

    /// The group's path under the Pushgateway URL.
    ///
    /// ```
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "")
    ///     .build();
    /// assert!(e.is_err()); // an empty job is refused
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "a b")
    ///     .grouping_label("shard", "")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.group_path(), "/metrics/job@base64/YSBi/shard@base64/=");
    /// ```
    pub fn group_path(&self) -> &str {
        &self.group_path
    }

    /// Deliveries so far.
    ///
    /// ```
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://h:9091", "j")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(e.stats().sent_requests, 0);
    /// ```
    pub fn stats(&self) -> PushStats {
        self.delivery.stats()
    }

    /// Deletes the group now (all its metrics), waiting for the answer.
    ///
    /// # Errors
    ///
    /// [`Error::Export`] when the Pushgateway cannot be reached in time or
    /// answers other than 2xx.
    ///
    /// ```
    /// // Nothing listens on port 1: the delete fails with an error, not a panic.
    /// let e = vitals::export::push::PushgatewayExporter::builder("http://127.0.0.1:1", "j")
    ///     .build()
    ///     .unwrap();
    /// assert!(matches!(e.delete_group(), Err(vitals::Error::Export { .. })));
    /// ```
    pub fn delete_group(&self) -> Result<(), Error> {
        let mut headers = Vec::new();
        if let Some(a) = &self.authorization {
            headers.push(("Authorization", a.as_str()));
        }
        let failed = |message: String| Error::Export {
            exporter: self.delivery.name().to_owned(),
            message: format!("delete of {}: {message}", self.group_path),
        };
        match self.client.send(&Request {
            method: "DELETE",
            path: &self.group_path,
            headers: &headers,
            body: &[],
        }) {
            Ok(r) if (200..300).contains(&r.status) => Ok(()),
            Ok(r) => Err(failed(format!(
                "HTTP {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body).trim()
            ))),
            Err(f) => Err(failed(f.message())),
        }
    }
}

impl Exporter for PushgatewayExporter {
    fn name(&self) -> &str {
        self.delivery.name()
    }

    /// Renders the snapshot and hands it to the sender thread; a body not
    /// sent yet is replaced (the Pushgateway would only keep the newest).
    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        // The Pushgateway's own series of every group: a pushed series of
        // either name would be replaced by its value without a word.
        let own = |name: &str| PUSHGATEWAY_OWN.contains(&name);
        // (A counter goes out as `<name>_total`: no clash.)
        let clashes = snapshot.gauges.iter().filter(|g| own(&g.name)).count()
            + snapshot.histograms.iter().filter(|h| own(&h.name)).count();
        let kept;
        let snapshot = if clashes > 0 {
            let mut s = snapshot.clone();
            s.gauges.retain(|g| !own(&g.name));
            s.histograms.retain(|h| !own(&h.name));
            self.delivery.left_out(Dropped {
                points: clashes as u64,
                reason: "reserved",
            });
            kept = s;
            &kept
        } else {
            snapshot
        };
        self.text.clear();
        let report = self.renderer.render_into(snapshot, &mut self.text);
        let body = self.text.as_bytes().to_vec();
        self.delivery
            .add(|backlog, _| backlog.replace(body, report.series as u64))
    }

    /// Waits (up to the shutdown deadline) for the latest body to be
    /// delivered, then deletes the group if asked to.
    fn flush(&mut self) -> Result<(), Error> {
        let delivered = self.delivery.flush();
        if self.delete_on_shutdown {
            self.delete_group()?;
        }
        delivered
    }
}

/// The series the Pushgateway adds to every group itself.
const PUSHGATEWAY_OWN: [&str; 2] = ["push_time_seconds", "push_failure_time_seconds"];

/// Appends `/<name>/<value>`, or `/<name>@base64/<url-safe base64>` when
/// the value is empty or has a character outside the URL's unreserved set.
fn push_segment(path: &mut String, name: &str, value: &str) {
    let plain = !value.is_empty()
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    path.push('/');
    path.push_str(name);
    if plain {
        path.push('/');
        path.push_str(value);
    } else if value.is_empty() {
        // The Pushgateway's spelling of the empty value.
        path.push_str("@base64/=");
    } else {
        path.push_str("@base64/");
        path.push_str(&base64(value.as_bytes(), true));
    }
}

/// The newest body not yet delivered.
#[derive(Debug, Default)]
struct LatestBody {
    pending: Option<(u64, Vec<u8>, u64)>,
    seq: u64,
    /// The ticket and points of the body last handed to the sender, until
    /// it is delivered or refused.
    on_wire: Option<(u64, u64)>,
    /// Points superseded where no `Dropped` could be returned.
    unreported: u64,
}

impl LatestBody {
    fn replace(&mut self, body: Vec<u8>, points: u64) -> Option<Dropped> {
        self.seq += 1;
        let old = self.pending.replace((self.seq, body, points));
        match old {
            // The one handed to the sender is not lost here: it is on its
            // way, or waiting for its retry; if it does not go, `next` (or
            // `take_dropped` at the end) counts it, once.
            Some((seq, _, _)) if self.on_wire.is_some_and(|(t, _)| t == seq) => None,
            Some((_, _, points)) => Some(Dropped {
                points,
                reason: "superseded",
            }),
            None => None,
        }
    }
}

impl Backlog for LatestBody {
    fn next(&mut self) -> Option<Outgoing> {
        // A body that was on the wire, failed, and was replaced meanwhile
        // will not be sent again.
        if let Some((ticket, points)) = self.on_wire.take() {
            if self
                .pending
                .as_ref()
                .is_none_or(|(seq, _, _)| *seq != ticket)
            {
                self.unreported += points;
            }
        }
        let (seq, body, points) = self.pending.as_ref()?;
        self.on_wire = Some((*seq, *points));
        Some(Outgoing {
            ticket: *seq,
            body: body.clone(),
            points: *points,
        })
    }

    fn complete(&mut self, ticket: u64) {
        if self.on_wire.is_some_and(|(t, _)| t == ticket) {
            self.on_wire = None;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|(seq, _, _)| *seq == ticket)
        {
            self.pending = None;
        }
    }

    fn bytes(&self) -> usize {
        self.pending.as_ref().map_or(0, |(_, body, _)| body.len())
    }

    fn points(&self) -> u64 {
        self.pending.as_ref().map_or(0, |(_, _, points)| *points)
    }

    fn take_dropped(&mut self) -> Option<Dropped> {
        // Asked with nothing in flight: a body that went on the wire, was
        // replaced, and is not pending any more is lost (at shutdown, after
        // a failed last request).
        if let Some((ticket, points)) = self.on_wire {
            if self
                .pending
                .as_ref()
                .is_none_or(|(seq, _, _)| *seq != ticket)
            {
                self.unreported += points;
                self.on_wire = None;
            }
        }
        let points = std::mem::take(&mut self.unreported);
        (points > 0).then_some(Dropped {
            points,
            reason: "superseded",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_values_use_base64_when_they_must() {
        let cases = [
            ("db-1", "/i/db-1"),
            ("a.b_c~d", "/i/a.b_c~d"),
            ("", "/i@base64/="),
            ("/var/tmp", "/i@base64/L3Zhci90bXA="),
            ("..", "/i@base64/Li4="),
            ("\u{e9}t\u{e9}", "/i@base64/w6l0w6k="),
            ("a\0b", "/i@base64/YQBi"),
            ("??>", "/i@base64/Pz8-"),
        ];
        for (value, want) in cases {
            let mut path = String::new();
            push_segment(&mut path, "i", value);
            assert_eq!(path, want, "{value:?}");
        }
    }

    #[test]
    fn a_pending_body_is_replaced_and_counted_unless_handed_to_the_sender() {
        let mut b = LatestBody::default();
        assert_eq!(b.replace(b"a".to_vec(), 3), None);
        let first = b.next().unwrap();
        assert_eq!((first.body.as_slice(), first.points), (&b"a"[..], 3));
        // Sent while a newer one arrives: the newer one waits.
        assert_eq!(b.replace(b"bb".to_vec(), 4), None);
        b.complete(first.ticket);
        assert_eq!(b.take_dropped(), None);
        assert_eq!(b.points(), 4);
        assert_eq!(
            b.replace(b"ccc".to_vec(), 5),
            Some(Dropped {
                points: 4,
                reason: "superseded"
            })
        );
        assert_eq!(b.bytes(), 3);
        let next = b.next().unwrap();
        b.complete(next.ticket);
        assert!(b.next().is_none());
        assert_eq!(b.take_dropped(), None);
    }

    #[test]
    fn a_failed_body_replaced_during_its_backoff_is_counted_once() {
        let mut b = LatestBody::default();
        b.replace(b"a".to_vec(), 3);
        let failed = b.next().unwrap();
        // Its request failed (no `complete`); a newer body comes in the
        // backoff, then the retry takes the newer one.
        assert_eq!(b.replace(b"bb".to_vec(), 4), None);
        let retry = b.next().unwrap();
        assert_ne!(retry.ticket, failed.ticket);
        assert_eq!(
            b.take_dropped(),
            Some(Dropped {
                points: 3,
                reason: "superseded"
            })
        );
        b.complete(retry.ticket);
        assert_eq!(b.take_dropped(), None);
        // Failed and replaced, then the exporter is dropped: counted once.
        let mut b = LatestBody::default();
        b.replace(b"a".to_vec(), 3);
        b.next().unwrap();
        assert_eq!(b.replace(b"bb".to_vec(), 4), None);
        assert_eq!(b.take_dropped().map(|d| d.points), Some(3));
        assert_eq!(b.take_dropped(), None);
        assert_eq!(b.points(), 4, "the newer body is counted at shutdown");
    }
}
