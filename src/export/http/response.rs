//! Answering requests: the routes, the `/health` body, and writing a
//! response. The page and the query API have their own modules
//! ([`super::page`], [`super::api`]), access control too ([`super::auth`]).

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::Arc;

use super::super::prometheus::TextFormat;
use super::request::Request;
use super::{Body, Shared};
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
            let openmetrics = request.accept.contains("application/openmetrics-text");
            let (kind, format) = if openmetrics {
                (Body::OpenMetrics, TextFormat::OpenMetrics)
            } else {
                (Body::Prometheus, TextFormat::Prometheus)
            };
            Response::shared(200, format.content_type(), shared.body(kind, arrived))
        }
        "/metrics.json" => Response::shared(200, JSON, shared.body(Body::Json, arrived)),
        "/health" => health(&shared.snapshot(arrived)),
        _ => Response::text(
            404,
            "not found: try /, /metrics, /metrics.json, /health or /api/query\n",
        ),
    }
}

const JSON: &str = "application/json";

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
    pub(super) body: Arc<String>,
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
        response.body.len(),
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
        out.write_all(response.body.as_bytes())?;
    }
    out.flush()
}
