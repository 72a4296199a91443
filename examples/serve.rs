//! Serves a registry of 1,000 counters and 100 histograms over HTTP, for
//! load tests (`scripts/load_http.sh` drives it with wrk).
//!
//! `cargo run --release --features http --example serve -- [--loop SECONDS]`
//! * `--loop N`: first run snapshot + Prometheus render in a loop for N
//!   seconds on this thread and print the rate (the baseline the load test
//!   compares with), then serve.
//! * `VITALS_PORT` (default 9898), `VITALS_TTL_MS` (shared-snapshot time,
//!   default 500), `VITALS_SERVE_SECONDS` (default: until killed).

use std::time::{Duration, Instant};

use vitals::export::{render_prometheus, HttpConfig, HttpServer};
use vitals::MetricsCollector;

fn main() -> Result<(), vitals::Error> {
    let metrics = MetricsCollector::new();
    for name in 0..10 {
        for label in 0..100u64 {
            let (n, l) = (format!("load_counter_{name}_total"), label.to_string());
            metrics.counter(&n, &[("id", &l)]).increment(label * 7);
        }
        for label in 0..10 {
            let (n, l) = (format!("load_latency_{name}_seconds"), label.to_string());
            let h = metrics.histogram(&n, &[("id", &l)]);
            for i in 1..=1000u32 {
                h.record(f64::from(i) * 1e-4);
            }
        }
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let secs: f64 = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(5.0);
        let started = Instant::now();
        let (mut n, mut bytes) = (0u64, 0usize);
        while started.elapsed().as_secs_f64() < secs {
            bytes = render_prometheus(&metrics.snapshot()).len();
            n += 1;
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        println!("loop: {rate:.0} snapshot+render per second on one core ({bytes} bytes each)");
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let config = HttpConfig {
        snapshot_ttl: Duration::from_millis(env("VITALS_TTL_MS", 500)),
        ..Default::default()
    };
    let server = HttpServer::start(
        &metrics,
        ("127.0.0.1", env("VITALS_PORT", 9898) as u16),
        config,
    )?;
    println!("serving http://{}/metrics", server.local_addr());
    std::thread::sleep(Duration::from_secs(env(
        "VITALS_SERVE_SECONDS",
        u64::MAX / 4,
    )));
    let stats = server.stats();
    println!(
        "served {} requests from {} snapshots; {} connections turned away",
        stats.requests, stats.snapshots, stats.rejected_connections
    );
    Ok(())
}
