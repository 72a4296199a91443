//! Pushes a small simulated workload every second for a few seconds to
//! the backends named on the command line, then prints what was delivered:
//! Prometheus remote write, an OpenTelemetry Collector (OTLP/HTTP) and a
//! Pushgateway, each optional.
//!
//! ```sh
//! prometheus --web.enable-remote-write-receiver --enable-feature=native-histograms &  # :9090
//! otelcol --config collector.yaml &                                                   # :4318
//! cargo run --features remote-write,otlp --example push -- \
//!     --remote-write http://127.0.0.1:9090/api/v1/write \
//!     --otlp http://127.0.0.1:4318 [--json] [--delta] \
//!     [--pushgateway http://127.0.0.1:9091]
//! ```
//!
//! `--otlp env` takes the endpoint and the rest from the standard
//! variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, ...). `VITALS_DEMO_SECONDS` sets how long it
//! runs (default 5).

use std::time::Duration;

use vitals::export::push::{
    OtlpExporter, OtlpFormat, PushgatewayExporter, RemoteWriteExporter, Temporality,
};
use vitals::export::Reporter;
use vitals::MetricsCollector;

fn main() -> Result<(), vitals::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (remote_write, otlp, pushgateway) = (
        value("--remote-write"),
        value("--otlp"),
        value("--pushgateway"),
    );
    if remote_write.is_none() && otlp.is_none() && pushgateway.is_none() {
        eprintln!(
            "usage: push [--remote-write URL] [--otlp URL|env [--json] [--delta]] [--pushgateway URL]"
        );
        std::process::exit(2);
    }
    let seconds: u64 = std::env::var("VITALS_DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    // Native and exponential histograms need the lifetime buckets.
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    let mut reporter = Reporter::builder(&metrics).interval(Duration::from_secs(1));
    if let Some(url) = &remote_write {
        reporter = reporter.exporter(
            RemoteWriteExporter::builder(url)
                .external_label("job", "vitals_push_example")
                .record_into(&metrics)
                .build()?,
        );
    }
    if let Some(endpoint) = &otlp {
        let mut builder = match endpoint.as_str() {
            "env" => OtlpExporter::from_env()?,
            url => OtlpExporter::builder(url),
        };
        if args.iter().any(|a| a == "--json") {
            builder = builder.format(OtlpFormat::Json);
        }
        if args.iter().any(|a| a == "--delta") {
            builder = builder.temporality(Temporality::Delta);
        }
        let exporter = builder
            .resource_attribute("deployment.environment", "example")
            .record_into(&metrics)
            .build()?;
        println!("OTLP to {}", exporter.url());
        reporter = reporter.exporter(exporter);
    }
    if let Some(url) = &pushgateway {
        reporter = reporter.exporter(
            PushgatewayExporter::builder(url, "vitals_push_example")
                .record_into(&metrics)
                .build()?,
        );
    }
    let reporter = reporter.start()?;

    let requests = metrics.counter("example_requests_total", &[("route", "/")]);
    let latency = metrics.histogram("example_latency_seconds", &[("route", "/")]);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..seconds * 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seconds = (x % 1000) as f64 / 10_000.0;
        if i % 100 == 0 {
            // One request a second leaves its trace id as an exemplar.
            let trace = format!("{x:016x}{:016x}", x.rotate_left(17));
            requests.increment_with_exemplar(1, &[("trace_id", &trace)])?;
            latency.record_with_exemplar(seconds, &[("trace_id", &trace)])?;
        } else {
            requests.inc();
            latency.record(seconds);
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let status = reporter.shutdown();
    for e in &status.exporters {
        println!(
            "{}: {} snapshots handed over, {} failed; last error: {:?}",
            e.name, e.exported, e.failed, e.latest_error_ever
        );
    }
    // The delivery counts, as a scrape would show them.
    let text = vitals::export::render_prometheus(&metrics.snapshot());
    for line in text.lines().filter(|l| l.starts_with("vitals_push_")) {
        println!("{line}");
    }
    Ok(())
}
