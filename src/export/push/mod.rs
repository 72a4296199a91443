//! Push exporters: send snapshots to a backend instead of waiting to be
//! scraped (cargo features `push`, `remote-write` and `otlp`).
//!
//! * [`PushgatewayExporter`] (feature `push`) PUTs (or POSTs) the Prometheus
//!   text of every snapshot to a Pushgateway group, and can delete the
//!   group at shutdown: for batch jobs that end before a scrape.
//! * `RemoteWriteExporter` (feature `remote-write`) sends Prometheus remote
//!   write 1.0 requests (protobuf, snappy) to Prometheus, Mimir, Thanos
//!   Receive, VictoriaMetrics, Grafana Alloy and the like.
//!
//! * `OtlpExporter` (feature `otlp`) sends OpenTelemetry metrics over
//!   OTLP/HTTP (protobuf or JSON) to a Collector, an agent or a backend.
//!
//! All are [`Exporter`](crate::export::Exporter)s fed by a
//! [`Reporter`](crate::export::Reporter), and share one delivery machinery:
//!
//! * **Off the hot path.** `export` only renders the snapshot and hands it
//!   to the exporter's own sender thread; the network is never waited on
//!   by the reporter, let alone by instrumented code.
//! * **Timeouts** for connecting and for each request
//!   ([`DeliveryConfig`]).
//! * **Retries** with exponential backoff and jitter after a connection
//!   failure, a timeout, a malformed answer, a 5xx, or a 429 (which waits
//!   as long as its `Retry-After` says, up to a bound). Other 4xx answers
//!   are not retried: the data is dropped and counted. Each failure cause
//!   is reported once (as the error of the next `export`, which the
//!   reporter records in its status and `vitals_export_errors_total`)
//!   until a delivery succeeds again.
//! * **Coalescing, bounded.** While the backend is down, remote write keeps
//!   every snapshot's points up to [`DeliveryConfig::max_backlog_bytes`]
//!   and then drops the oldest intermediate ones, always keeping the
//!   latest value of every series: counters are cumulative, so an outage
//!   costs resolution, never counts. A Pushgateway keeps only the latest
//!   push of a group anyway, so only the newest body waits.
//! * **Counted** on the collector given to the builder's `record_into`:
//!   `vitals_push_sent_points_total{exporter}`,
//!   `vitals_push_failed_requests_total{exporter,cause}` (cause:
//!   `connect`, `timeout`, `io`, `bad_response`, `status_429`,
//!   `status_5xx`, `status_4xx`, `status_other`),
//!   `vitals_push_retried_requests_total{exporter}`,
//!   `vitals_push_dropped_points_total{exporter,reason}` (reason: `bound`,
//!   `superseded`, `rejected`, `shutdown`; `duplicate` for a remote
//!   write series that external labels made another's twin, `reserved`
//!   for a series the Pushgateway would replace with its own) and the gauge
//!   `vitals_push_queue_bytes{exporter}`; the same figures are in
//!   [`PushStats`].
//! * **Shutdown flushes** with a deadline
//!   ([`DeliveryConfig::shutdown_deadline`]): the reporter's final
//!   snapshot is delivered if the backend answers in time.
//!
//! The transport is HTTP/1.1 on `std::net` (one connection per request),
//! with `httparse` reading the answers: no async runtime; `https://` URLs
//! with the `tls` feature (rustls).
//!
//! ```no_run
//! use std::time::Duration;
//! use vitals::export::push::PushgatewayExporter;
//! use vitals::export::Reporter;
//!
//! let metrics = vitals::MetricsCollector::new();
//! let push = PushgatewayExporter::builder("http://127.0.0.1:9091", "nightly_backup")
//!     .grouping_label("instance", "db-1")
//!     .delete_on_shutdown(true)
//!     .record_into(&metrics)
//!     .build()?;
//! let reporter = Reporter::builder(&metrics)
//!     .interval(Duration::from_secs(10))
//!     .exporter(push)
//!     .start()?;
//! metrics.counter("backup_bytes_total", &[]).increment(1 << 20);
//! let status = reporter.shutdown(); // final push, then DELETE of the group
//! assert!(status.exporters[0].last_error.is_none());
//! # Ok::<(), vitals::Error>(())
//! ```

pub(crate) mod client;
pub(crate) mod delivery;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod pushgateway;
#[cfg(feature = "remote-write")]
pub mod remote_write;
#[cfg(feature = "tls")]
pub(crate) mod tls;

pub use delivery::{DeliveryConfig, PushStats};
#[cfg(feature = "otlp")]
pub use otlp::{
    encode_otlp, OtlpBuilder, OtlpExporter, OtlpFormat, Temporality, DEFAULT_OTLP_ENDPOINT,
};
pub use pushgateway::{PushMethod, PushgatewayBuilder, PushgatewayExporter};
#[cfg(feature = "remote-write")]
pub use remote_write::{encode_write_request, RemoteWriteBuilder, RemoteWriteExporter};

use crate::error::Error;

pub(crate) use crate::export::base64::base64;

/// Checks a header value a user configured (a token, a password): no line
/// breaks or other control characters, which would end the header early.
pub(crate) fn check_header_value(what: &str, value: &str) -> Result<(), Error> {
    if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(Error::InvalidConfig(format!(
            "{what} contains a control character (a line break or NUL)"
        )));
    }
    Ok(())
}

/// Headers the exporters write themselves: a user's copy would frame the
/// request twice (`Content-Length` and `Transfer-Encoding`), send it to
/// another `Host`, or state its type twice.
const OWN_HEADERS: [&str; 12] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "content-type",
    "content-encoding",
    "user-agent",
];

/// Checks a header a user configured: its name an HTTP token and not one
/// the exporter writes itself, its value as [`check_header_value`].
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), Error> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Error::InvalidConfig(format!(
            "header name {name:?} is not an HTTP token"
        )));
    }
    if OWN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
        return Err(Error::InvalidConfig(format!(
            "header {name:?} is written by the exporter itself"
        )));
    }
    check_header_value(&format!("header {name:?}"), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_that_frame_the_request_are_refused() {
        assert!(check_header("x-api-key", "k").is_ok());
        assert!(check_header("Authorization", "Bearer t").is_ok());
        for name in [
            "Content-Length",
            "host",
            "TRANSFER-ENCODING",
            "content-type",
        ] {
            let err = check_header(name, "1").unwrap_err();
            assert!(err.to_string().contains("exporter itself"), "{err}");
        }
        for name in ["", "bad key", "a:b", "a\r\nb"] {
            let err = check_header(name, "1").unwrap_err();
            assert!(err.to_string().contains("HTTP token"), "{err}");
        }
        assert!(check_header("x", "a\r\nHost: evil").is_err());
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        assert!(check_header_value("token", "abc\tdef").is_ok());
        for bad in ["a\r\nX-Evil: 1", "a\0", "a\n"] {
            assert!(matches!(
                check_header_value("token", bad),
                Err(Error::InvalidConfig(_))
            ));
        }
    }
}
