//! Helpers of the HTTP page, query API and access-control tests: a plain
//! HTTP/1.1 exchange on loopback, a populated collector, a quick config.
#![allow(dead_code)] // each test binary uses part of it

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use serde_json::Value;
use vitals::export::{HttpAuth, HttpConfig};
use vitals::MetricsCollector;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}
impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Reply {
    try_request(addr, method, path, extra).unwrap()
}

/// `None` when the connection fails (a server still starting).
pub fn try_request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(raw.as_bytes()).ok()?;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, "")
}

pub fn populated() -> MetricsCollector {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.describe(
        vitals::MetricKind::Counter,
        "requests_total",
        None,
        "Requests",
    );
    m.describe(
        vitals::MetricKind::Histogram,
        "latency_seconds",
        Some(vitals::Unit::Seconds),
        "Latency",
    );
    m.counter("requests_total", &[("route", "/a")]).increment(5);
    m.gauge("queue_depth", &[]).set(4.0);
    let h = m.histogram("latency_seconds", &[("route", "/a")]);
    for i in 1..=100 {
        h.record(f64::from(i) / 1000.0);
    }
    m
}

pub fn quick(auth: Option<HttpAuth>) -> HttpConfig {
    HttpConfig {
        workers: 4,
        auth,
        recent_interval: Duration::from_millis(100),
        snapshot_ttl: Duration::ZERO,
        ..HttpConfig::default()
    }
}

/// A port nothing listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn require_tool(program: &str) -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{program} is required (VITALS_REQUIRE_TOOLS=1) but not installed");
    }
    found.map(|p| p.display().to_string())
}

pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
