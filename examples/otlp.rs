//! Pushes a small simulated workload to an OpenTelemetry Collector (or any
//! OTLP/HTTP receiver) every second for a few seconds, then prints what was
//! delivered.
//!
//! ```sh
//! otelcol --config collector.yaml &   # an otlp receiver on :4318
//! cargo run --features otlp --example otlp -- http://127.0.0.1:4318 [json] [delta]
//! ```
//!
//! Without an endpoint argument the standard variables apply
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, ...), else `http://localhost:4318`.
//! `VITALS_DEMO_SECONDS` sets how long it runs (default 5).

use std::time::Duration;

use vitals::export::push::{OtlpExporter, OtlpFormat, Temporality};
use vitals::export::Reporter;
use vitals::MetricsCollector;

fn main() -> Result<(), vitals::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = std::env::var("VITALS_DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    // Exponential histograms need the lifetime buckets.
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    let mut otlp = OtlpExporter::from_env()?;
    if let Some(endpoint) = args.first() {
        otlp = OtlpExporter::builder(endpoint.as_str());
    }
    if args.iter().any(|a| a == "json") {
        otlp = otlp.format(OtlpFormat::Json);
    }
    if args.iter().any(|a| a == "delta") {
        otlp = otlp.temporality(Temporality::Delta);
    }
    let otlp = otlp
        .resource_attribute("deployment.environment", "example")
        .record_into(&metrics)
        .build()?;
    println!("sending to {}", otlp.url());
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_secs(1))
        .exporter(otlp)
        .start()?;

    let requests = metrics.counter("example_requests_total", &[("route", "/")]);
    let latency = metrics.histogram("example_latency_seconds", &[("route", "/")]);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..seconds * 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        requests.inc();
        latency.record((x % 1000) as f64 / 10_000.0);
        std::thread::sleep(Duration::from_millis(10));
    }

    let status = reporter.shutdown();
    let snap = metrics.snapshot();
    let sent = snap
        .counter("vitals_push_sent_points_total", &[("exporter", "otlp")])
        .unwrap_or(0.0);
    println!("delivered {sent} points");
    for e in &status.exporters {
        match &e.last_error {
            None => println!("{}: ok", e.name),
            Some(err) => println!("{}: {err}", e.name),
        }
    }
    Ok(())
}
