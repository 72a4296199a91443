//! Writes every output format of one awkward registry into a directory, for
//! the external checkers in `scripts/ci_export_checks.sh` (`promtool check
//! metrics`, the Python `prometheus_client` parsers, `json`).
//!
//! ```text
//! cargo run --example exposition -- OUT_DIR
//! ```
//!
//! Writes `OUT_DIR/metrics.prom` (Prometheus 0.0.4), `OUT_DIR/metrics.om`
//! (OpenMetrics 1.0), `OUT_DIR/snapshot.json` (the snapshot both were
//! rendered from) and `OUT_DIR/snapshots.jsonl` (several snapshots through
//! the JSON-Lines exporter).

use std::path::PathBuf;

use vitals::export::{render_openmetrics, render_prometheus, Exporter, JsonLinesExporter};
use vitals::{MetricKind, MetricsCollector, Window};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: exposition OUT_DIR")?);
    std::fs::create_dir_all(&out)?;
    let metrics = registry()?;
    plugins(&metrics)?;
    // CPU figures need a baseline reading and a second one.
    let _ = metrics.snapshot();
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let mut jsonl = JsonLinesExporter::new(out.join("snapshots.jsonl"))?;
    for round in 0..3 {
        metrics
            .counter("http_requests_total", &[("method", "GET"), ("path", "/")])
            .increment(round);
        jsonl.export(&metrics.snapshot())?;
    }

    let snapshot = metrics.snapshot();
    std::fs::write(out.join("metrics.prom"), render_prometheus(&snapshot))?;
    std::fs::write(out.join("metrics.om"), render_openmetrics(&snapshot))?;
    std::fs::write(
        out.join("snapshot.json"),
        serde_json::to_string_pretty(&snapshot)?,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Every built-in plug-in, each with some activity, so that the checkers
/// see every series the README lists for them.
fn plugins(m: &MetricsCollector) -> Result<(), vitals::Error> {
    use std::time::Duration;
    use vitals::collectors::{
        ApiCollector, CacheCollector, HealthCollector, Method, StageCollector,
    };
    let api = ApiCollector::new(m);
    let caches = CacheCollector::new(m);
    let stages = StageCollector::new(m);
    let health = HealthCollector::new(m);
    m.register(api.clone())?;
    m.register(caches.clone())?;
    m.register(stages.clone())?;
    m.register(health.clone())?;
    #[cfg(feature = "system")]
    {
        use vitals::collectors::{ProcessCollector, SystemCollector};
        m.register(SystemCollector::new().per_core(true))?;
        m.register(ProcessCollector::new())?;
    }
    let users = api.endpoint("/users");
    users.record(Method::Get, 200, Duration::from_millis(4));
    users.record(Method::Post, 503, Duration::from_millis(40));
    let _in_flight = users.start();
    let cache = caches.cache("sessions");
    cache.hit();
    cache.miss();
    cache.evicted(1);
    cache.set_size_bytes(4096);
    cache.set_entries(3);
    let stage = stages.stage("parse");
    stage.record(Duration::from_millis(2), true);
    stage.record(Duration::from_millis(3), false);
    let db = health.dependency("database");
    db.success();
    db.failure();
    Ok(())
}

/// Every kind, described and not, with labels that need escaping,
/// non-finite gauges, empty and bucketed histograms.
fn registry() -> Result<MetricsCollector, vitals::Error> {
    let m = MetricsCollector::new();
    m.try_describe(
        MetricKind::Counter,
        "http_requests_total",
        None,
        "HTTP requests served, by method and path.",
    )?;
    for (method, path, n) in [
        ("GET", "/", 120),
        ("POST", "/api/\"quoted\"", 7),
        ("GET", "C:\\windows\\path", 3),
        ("GET", "line\nbreak", 1),
        ("GET", "ünïcödé ✓ 日本", 42),
    ] {
        m.try_counter("http_requests_total", &[("method", method), ("path", path)])?
            .increment(n);
    }
    // Named without `_total` (the exporters add it).
    m.try_describe(MetricKind::Counter, "jobs_processed", None, "Jobs done.")?;
    m.try_counter("jobs_processed", &[])?.increment(9);
    m.try_describe(
        MetricKind::Counter,
        "sent_bytes_total",
        Some(vitals::Unit::Bytes),
        "Bytes sent.",
    )?;
    m.try_counter("sent_bytes_total", &[])?.increment(1 << 40);

    m.try_describe(
        MetricKind::Gauge,
        "temperature_celsius",
        Some(vitals::Unit::Celsius),
        "Sensor readings; help with a \\ backslash,\na newline and \"quotes\".",
    )?;
    m.try_gauge("temperature_celsius", &[("sensor", "ok")])?
        .set(21.5);
    m.try_gauge("temperature_celsius", &[("sensor", "nan")])?
        .set(f64::NAN);
    m.try_gauge("temperature_celsius", &[("sensor", "hot")])?
        .set(f64::INFINITY);
    m.try_gauge("temperature_celsius", &[("sensor", "cold")])?
        .set(f64::NEG_INFINITY);
    m.try_gauge("temperature_celsius", &[("sensor", "tiny")])?
        .set(1e-300);
    m.try_describe(MetricKind::Gauge, "queue_depth", None, "Jobs waiting.")?;
    m.try_gauge("queue_depth", &[])?.set(-3.0);

    m.try_describe(
        MetricKind::Histogram,
        "request_duration_seconds",
        Some(vitals::Unit::Seconds),
        "Request latency over the last minute.",
    )?;
    let latency = m.try_histogram("request_duration_seconds", &[("path", "/")])?;
    for i in 1..=1000 {
        latency.record(f64::from(i) / 10_000.0);
    }
    // Empty histograms: a summary and a bucketed one.
    let _registered = m.try_histogram("request_duration_seconds", &[("path", "/idle")])?;
    m.try_describe(
        MetricKind::Histogram,
        "payload_size_bytes",
        Some(vitals::Unit::Bytes),
        "Request payload sizes.",
    )?;
    m.configure_histogram_buckets("payload_size_bytes", &[100.0, 1_000.0, 10_000.0])?;
    let sizes = m.try_histogram("payload_size_bytes", &[("kind", "upload")])?;
    for v in [0.0, 50.0, 100.0, 150.0, 5_000.0, 1e9] {
        sizes.record(v);
    }
    let _registered = m.try_histogram("payload_size_bytes", &[("kind", "empty")])?;
    m.configure_histogram("batch_size", Window::Count { values: 100 })?;
    m.try_describe(
        MetricKind::Histogram,
        "batch_size",
        None,
        "Items per batch.",
    )?;
    let batch = m.try_histogram("batch_size", &[])?;
    for v in [1.0, 2.0, 3.0, 5.0, 8.0] {
        batch.record(v);
    }
    Ok(m)
}
