//! Answering requests: the routes, the `/health` body, and writing a
//! response. The page and the query API have their own modules
//! ([`super::page`], [`super::api`]), access control too ([`super::auth`]).

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use super::super::prometheus::{TextFormat, PROTOBUF_CONTENT_TYPE};
use super::request::Request;
use super::{Body, Payload, Shared};
use crate::snapshot::Snapshot;

pub(super) fn route(request: &Request, shared: &Shared) -> Response {
    let arrived = request.arrived;
    // Access control comes first: without the credential a client learns
    // nothing, not even which paths or methods exist.
    if let Some(auth) = &shared.config.auth {
        if !auth.accepts(request.authorization.as_deref()) {
            return auth.refusal();
        }
    }
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n").header("Allow", "GET, HEAD");
    }
    match request.path.as_str() {
        "/" => super::page::page(),
        "/api/query" => super::api::query(&request.query, shared, arrived),
        "/metrics" => {
            let kind = negotiate(&request.accept);
            let content_type = match kind {
                Body::OpenMetrics => TextFormat::OpenMetrics.content_type(),
                Body::Protobuf => PROTOBUF_CONTENT_TYPE,
                _ => TextFormat::Prometheus.content_type(),
            };
            Response::payload(200, content_type, shared.body(kind, arrived))
        }
        "/metrics.json" => Response::payload(200, JSON, shared.body(Body::Json, arrived)),
        "/health" => health(&shared.snapshot(arrived)),
        _ => Response::text(
            404,
            "not found: try /, /metrics, /metrics.json, /health or /api/query\n",
        ),
    }
}

const JSON: &str = "application/json";

/// The format of `/metrics` for an `Accept` header: the media range with
/// the highest `q` among those served (Prometheus' protobuf exposition,
/// OpenMetrics text, Prometheus text), the first listed on a tie; a range
/// with `q=0` is refused. Prometheus text when nothing served is asked
/// for, as for a client that sends no `Accept` at all.
fn negotiate(accept: &str) -> Body {
    let mut best: Option<(f64, Body)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut q = 1.0;
        let (mut proto, mut encoding) = (None, None);
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = value
                        .parse::<f64>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "proto" => proto = Some(value.to_owned()),
                "encoding" => encoding = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        let kind = match media.as_str() {
            "application/vnd.google.protobuf"
                if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
                    && encoding.as_deref() == Some("delimited") =>
            {
                Body::Protobuf
            }
            "application/openmetrics-text" => Body::OpenMetrics,
            "text/plain" | "text/*" | "*/*" => Body::Prometheus,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, kind));
        }
    }
    best.map_or(Body::Prometheus, |(_, kind)| kind)
}

/// `/health`: every dependency reported by a health plug-in (gauges named
/// `health_status{dependency,status}`), 503 when any is down.
fn health(snapshot: &Snapshot) -> Response {
    let mut dependencies: Vec<(String, String)> = Vec::new();
    for gauge in snapshot
        .gauges
        .iter()
        .filter(|g| &*g.name == "health_status")
    {
        if gauge.value == 1.0 {
            if let (Some(dep), Some(status)) =
                (gauge.labels.get("dependency"), gauge.labels.get("status"))
            {
                dependencies.push((dep.to_owned(), status.to_owned()));
            }
        }
    }
    let worst = if dependencies.iter().any(|(_, s)| s == "down") {
        "down"
    } else if dependencies.iter().any(|(_, s)| s == "degraded") {
        "degraded"
    } else {
        "up"
    };
    let body = serde_json::json!({
        "status": worst,
        "dependencies": dependencies
            .iter()
            .map(|(name, status)| serde_json::json!({"name": name, "status": status}))
            .collect::<Vec<_>>(),
    });
    let code = if worst == "down" { 503 } else { 200 };
    Response::shared(code, JSON, Arc::new(body.to_string()))
}

pub(crate) struct Response {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) body: Payload,
    pub(super) extra: Vec<(&'static str, &'static str)>,
}

impl Response {
    pub(super) fn text(status: u16, body: &str) -> Self {
        Response::shared(
            status,
            "text/plain; charset=utf-8",
            Arc::new(body.to_owned()),
        )
    }

    pub(super) fn shared(status: u16, content_type: &'static str, body: Arc<String>) -> Self {
        Response::payload(status, content_type, body)
    }

    pub(super) fn payload(status: u16, content_type: &'static str, body: Payload) -> Self {
        Response {
            status,
            content_type,
            body,
            extra: Vec::new(),
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra.push((name, value));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub(super) fn write_response(
    stream: &TcpStream,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        (*response.body).as_ref().len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &response.extra {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = stream;
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all((*response.body).as_ref())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_format_is_the_best_served_media_range() {
        // What Prometheus 2.42 sends with and without native histograms.
        let native = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let plain = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(native), Body::Protobuf);
        assert_eq!(negotiate(plain), Body::OpenMetrics);
        assert_eq!(negotiate(""), Body::Prometheus);
        assert_eq!(negotiate("*/*"), Body::Prometheus);
        assert_eq!(negotiate("text/html"), Body::Prometheus);
        // q decides, not order; a tie goes to the first listed.
        assert_eq!(
            negotiate("text/plain;q=0.5, application/openmetrics-text"),
            Body::OpenMetrics
        );
        assert_eq!(
            negotiate("text/plain, application/openmetrics-text"),
            Body::Prometheus
        );
        // Refused (q=0) or malformed ranges are not chosen.
        assert_eq!(
            negotiate("application/openmetrics-text;q=0, text/plain;q=0.1"),
            Body::Prometheus
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=abc"),
            Body::Prometheus
        );
        // Protobuf only for the MetricFamily message, delimited.
        assert_eq!(negotiate("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"), Body::Prometheus);
        assert_eq!(
            negotiate("application/vnd.google.protobuf;proto=other.Message;encoding=delimited"),
            Body::Prometheus
        );
        assert_eq!(negotiate("APPLICATION/VND.GOOGLE.PROTOBUF; proto=\"io.prometheus.client.MetricFamily\"; encoding=delimited"), Body::Protobuf);
    }
}
