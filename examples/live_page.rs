//! A simulated service with the live page on its HTTP endpoint: open the
//! printed address in a browser.
//!
//! `cargo run --release --features http --example live_page`
//!
//! Three routes with different latency spreads (through the API plug-in),
//! a database whose health check fails now and then, a described queue
//! gauge and byte counter, and the process and system plug-ins (feature
//! `system`). Settings from the environment:
//! * `VITALS_PORT` (default 9899; 0 picks a free one),
//! * `VITALS_SERVE_SECONDS` (default: until killed),
//! * `VITALS_BASIC_AUTH=user:password` to ask for that credential,
//! * `VITALS_RECENT_INTERVAL_MS` (default 1000): how often the page's
//!   charts get a point,
//! * `VITALS_LIFETIME_BUCKETS=0`: a collector without exponential buckets
//!   (the status line's p99 is then a bound: `≤` the highest series'),
//! * `VITALS_HISTORY=1` (feature `history`): the page's charts read a
//!   `History` fed by a `Reporter` at that interval instead of the
//!   server's ring.

use std::time::Duration;

use vitals::collectors::{ApiCollector, HealthCollector, Method};
use vitals::export::{HttpAuth, HttpConfig, HttpServer};
use vitals::{MetricKind, MetricsCollector, Unit};

/// A small deterministic generator (xorshift): no dependency, same run
/// every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A log-normal-ish latency around `median` seconds with a long tail.
    fn latency(&mut self, median: f64) -> f64 {
        let u = self.next().max(1e-12);
        let tail = if self.next() < 0.02 { 8.0 } else { 1.0 };
        median * (-(u.ln()) * 0.35).exp() * tail
    }
}

fn main() -> Result<(), vitals::Error> {
    // Exponential buckets make the page's service-wide p99 exact (the
    // series merged); `VITALS_LIFETIME_BUCKETS=0` shows the bound instead.
    let buckets = std::env::var("VITALS_LIFETIME_BUCKETS").as_deref() != Ok("0");
    let metrics = MetricsCollector::builder()
        .lifetime_buckets(buckets)
        .build();
    let api = ApiCollector::new(&metrics);
    let health = HealthCollector::new(&metrics);
    metrics.register(api.clone())?;
    metrics.register(health.clone())?;
    #[cfg(feature = "system")]
    {
        metrics.register(vitals::collectors::ProcessCollector::new())?;
        metrics.register(vitals::collectors::SystemCollector::new())?;
    }
    metrics.describe(
        MetricKind::Gauge,
        "jobs_queued",
        None,
        "Jobs waiting for a worker",
    );
    metrics.describe(
        MetricKind::Counter,
        "response_bytes_total",
        Some(Unit::Bytes),
        "Bytes of response bodies sent",
    );
    metrics.describe(
        MetricKind::Histogram,
        "db_query_duration_seconds",
        Some(Unit::Seconds),
        "Database query latency",
    );

    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let auth = std::env::var("VITALS_BASIC_AUTH").ok().map(|v| {
        let (user, password) = v.split_once(':').unwrap_or((&v, ""));
        HttpAuth::basic(user, password)
    });
    let config = HttpConfig {
        auth,
        recent_interval: Duration::from_millis(env("VITALS_RECENT_INTERVAL_MS", 1000)),
        ..HttpConfig::default()
    };
    let addr = ("127.0.0.1", env("VITALS_PORT", 9899) as u16);
    #[cfg(feature = "history")]
    let (server, _reporter) = if std::env::var("VITALS_HISTORY").as_deref() == Ok("1") {
        let history = std::sync::Arc::new(vitals::history::History::new());
        let reporter = vitals::export::Reporter::builder(&metrics)
            .interval(config.recent_interval)
            .exporter(std::sync::Arc::clone(&history))
            .start()?;
        let server = HttpServer::start_with_history(&metrics, addr, config, history)?;
        (server, Some(reporter))
    } else {
        (HttpServer::start(&metrics, addr, config)?, None)
    };
    #[cfg(not(feature = "history"))]
    let server = HttpServer::start(&metrics, addr, config)?;
    println!("live page: http://{}/", server.local_addr());

    let routes = [
        (api.endpoint("/api/orders"), Method::Post, 0.040),
        (api.endpoint("/api/search"), Method::Get, 0.012),
        (api.endpoint("/static/app.js"), Method::Get, 0.0008),
    ];
    let db = health.dependency("database");
    let cache = health.dependency("cache");
    let queue = metrics.gauge("jobs_queued", &[]);
    let sent = metrics.counter("response_bytes_total", &[]);
    let query_latency = metrics.histogram("db_query_duration_seconds", &[("db", "primary")]);
    // A label value from outside, as hostile as they come: the page shows
    // its control character escaped and its markup as text.
    metrics.describe(
        MetricKind::Counter,
        "login_failures_total",
        None,
        "Failed logins, by user name as typed",
    );
    let hostile = metrics.counter(
        "login_failures_total",
        &[("user", "mallory\u{1b}[31m<img src=x onerror=alert(1)>")],
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let until = env("VITALS_SERVE_SECONDS", u64::MAX / 4);
    let started = std::time::Instant::now();
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(until) {
        // About 300 requests a second, in 20 ms ticks.
        for _ in 0..6 {
            let (endpoint, method, median) = &routes[(rng.next() * 3.0) as usize % 3];
            let latency = rng.latency(*median);
            let status = if rng.next() < 0.01 { 503 } else { 200 };
            endpoint.record(*method, status, Duration::from_secs_f64(latency));
            sent.increment(200 + (rng.next() * 40_000.0) as u64);
            query_latency.record(rng.latency(0.002));
        }
        queue.set((20.0 + 15.0 * (tick as f64 / 200.0).sin()).round());
        if tick % 10 == 0 {
            hostile.increment(1);
        }
        if tick % 25 == 0 {
            db.record(rng.next() > 0.05);
            cache.record(true);
        }
        tick += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = server.stats();
    println!(
        "served {} requests from {} snapshots",
        stats.requests, stats.snapshots
    );
    Ok(())
}
