//! Pushes a small simulated workload by Prometheus remote write (and to a
//! Pushgateway if given) every second for a few seconds, then prints what
//! was delivered.
//!
//! ```sh
//! prometheus --web.enable-remote-write-receiver &   # listens on :9090
//! cargo run --features remote-write --example push -- \
//!     http://127.0.0.1:9090/api/v1/write [http://127.0.0.1:9091]
//! ```
//!
//! `VITALS_DEMO_SECONDS` sets how long it runs (default 5).

use std::time::Duration;

use vitals::export::push::{PushgatewayExporter, RemoteWriteExporter};
use vitals::export::Reporter;
use vitals::MetricsCollector;

fn main() -> Result<(), vitals::Error> {
    let mut args = std::env::args().skip(1);
    let remote_url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:9090/api/v1/write".into());
    let pushgateway_url = args.next();
    let seconds: u64 = std::env::var("VITALS_DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    let metrics = MetricsCollector::new();
    let mut reporter = Reporter::builder(&metrics).interval(Duration::from_secs(1));
    reporter = reporter.exporter(
        RemoteWriteExporter::builder(&remote_url)
            .external_label("job", "vitals_push_example")
            .record_into(&metrics)
            .build()?,
    );
    if let Some(url) = &pushgateway_url {
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
    for _ in 0..seconds * 100 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        requests.inc();
        latency.record((x % 1000) as f64 / 10_000.0);
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
