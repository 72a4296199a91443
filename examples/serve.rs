//! A small web shop's metrics endpoint: what a real service would show
//! Prometheus. Simulated traffic on five routes (about 150 requests per
//! second, latencies with a long tail, a few errors), a product cache,
//! database queries, orders, and the process and system plug-ins; every
//! metric has help text and its unit. `promtool check metrics` is clean,
//! lint included (`scripts/ci_export_checks.sh` checks it).
//!
//! `cargo run --release --features http --example serve -- [--load] [--loop SECONDS]`
//! * `--load`: instead of the shop, a fixed registry of 1,000 counters and
//!   100 histograms (`load_*`, no traffic, no plug-ins), which
//!   `scripts/load_http.sh` drives with wrk.
//! * `--loop N`: first run snapshot + Prometheus render in a loop for N
//!   seconds on this thread and print the rate (the baseline the load test
//!   compares with), then serve.
//! * `VITALS_PORT` (default 9898; 0 picks a free port), `VITALS_TTL_MS`
//!   (shared-snapshot time, default 500), `VITALS_SERVE_SECONDS` (default:
//!   until killed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vitals::collectors::{ApiCollector, CacheCollector};
use vitals::export::{render_prometheus, HttpConfig, HttpServer};
use vitals::{MetricKind, MetricsCollector, Unit};

/// Route, share of the traffic, median latency (s), spread (σ of the
/// log), share of server errors.
const ROUTES: [(&str, f64, f64, f64, f64); 5] = [
    ("/", 0.15, 0.004, 0.4, 0.001),
    ("/static/app.js", 0.40, 0.0008, 0.3, 0.0),
    ("/api/products", 0.25, 0.012, 0.5, 0.002),
    ("/api/cart", 0.12, 0.018, 0.6, 0.005),
    ("/api/orders", 0.08, 0.060, 0.7, 0.01),
];

/// A tiny xorshift generator: the example needs no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal value (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Log-normal around `median`, and one request in 200 stalls ten times
    /// longer (a lock, a GC pause, a slow disk).
    fn latency(&mut self, median: f64, sigma: f64) -> f64 {
        let stall = if self.unit() < 0.005 { 10.0 } else { 1.0 };
        median * (sigma * self.normal()).exp() * stall
    }
}

fn describe(metrics: &MetricsCollector) {
    let d = |kind, name, unit, help| metrics.describe(kind, name, unit, help);
    d(
        MetricKind::Counter,
        "shop_orders_total",
        None,
        "Orders placed, by payment method.",
    );
    d(
        MetricKind::Counter,
        "shop_order_items_total",
        None,
        "Items in placed orders.",
    );
    d(
        MetricKind::Histogram,
        "shop_db_query_duration_seconds",
        Some(Unit::Seconds),
        "Database query time, by query.",
    );
    d(
        MetricKind::Gauge,
        "shop_db_pool_connections",
        None,
        "Database pool connections, by state.",
    );
    d(
        MetricKind::Histogram,
        "shop_response_size_bytes",
        Some(Unit::Bytes),
        "Response body sizes.",
    );
    d(
        MetricKind::Counter,
        "shop_sent_bytes_total",
        Some(Unit::Bytes),
        "Response bytes sent.",
    );
    d(
        MetricKind::Gauge,
        "shop_build_info",
        None,
        "Always 1; the labels say which build runs.",
    );
}

/// The load-test registry: 1,000 counters and 100 histograms.
fn add_load_series(metrics: &MetricsCollector) {
    for name in 0..10 {
        let counter = format!("load_counter_{name}_total");
        let histogram = format!("load_latency_{name}_seconds");
        metrics.describe(MetricKind::Counter, &counter, None, "Load-test counter.");
        metrics.describe(
            MetricKind::Histogram,
            &histogram,
            Some(Unit::Seconds),
            "Load-test latency.",
        );
        for label in 0..100u64 {
            let l = label.to_string();
            metrics
                .counter(&counter, &[("id", &l)])
                .increment(label * 7);
        }
        for label in 0..10 {
            let h = metrics.histogram(&histogram, &[("id", &label.to_string())]);
            for i in 1..=1000u32 {
                h.record(f64::from(i) * 1e-4);
            }
        }
    }
}

/// The simulated shop: about 150 requests per second until `stop`.
fn run_traffic(
    metrics: MetricsCollector,
    api: ApiCollector,
    caches: CacheCollector,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let endpoints: Vec<_> = ROUTES.iter().map(|r| api.endpoint(r.0)).collect();
    let products = caches.cache("products");
    products.set_entries(1_200);
    products.set_size_bytes(3 << 20);
    let sizes = metrics.histogram("shop_response_size_bytes", &[]);
    let sent = metrics.counter("shop_sent_bytes_total", &[]);
    let select = metrics.histogram(
        "shop_db_query_duration_seconds",
        &[("query", "select_product")],
    );
    let insert = metrics.histogram(
        "shop_db_query_duration_seconds",
        &[("query", "insert_order")],
    );
    let items = metrics.counter("shop_order_items_total", &[]);
    let pool = |state| metrics.gauge("shop_db_pool_connections", &[("state", state)]);
    let (busy, idle) = (pool("busy"), pool("idle"));
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // Pick a route by its share of the traffic.
        let mut pick = rng.unit();
        let i = ROUTES
            .iter()
            .position(|r| {
                pick -= r.1;
                pick < 0.0
            })
            .unwrap_or(ROUTES.len() - 1);
        let (route, _, median, sigma, errors) = ROUTES[i];
        let latency = rng.latency(median, sigma);
        let status = if rng.unit() < errors {
            503
        } else if route.starts_with("/api") && rng.unit() < 0.01 {
            404
        } else {
            200
        };
        // Orders are placed, carts changed or read; the rest is read.
        let method = match route {
            "/api/orders" => "POST",
            "/api/cart" if rng.unit() < 0.4 => "PUT",
            _ => "GET",
        };
        endpoints[i].record(method, status, Duration::from_secs_f64(latency));
        let size = if route == "/static/app.js" {
            48_213.0
        } else {
            (2_000.0 * (0.8 * rng.normal()).exp()).round()
        };
        sizes.record(size);
        sent.increment(size as u64);
        if route.starts_with("/api") {
            if rng.unit() < 0.85 {
                products.hit();
            } else {
                products.miss();
                select.record(rng.latency(0.003, 0.5));
            }
        }
        if route == "/api/orders" && status == 200 {
            insert.record(rng.latency(0.009, 0.4));
            let payment = if rng.unit() < 0.7 { "card" } else { "invoice" };
            metrics
                .counter("shop_orders_total", &[("payment", payment)])
                .inc();
            items.increment(1 + rng.next() % 5);
        }
        let in_use = (4.0 + 3.0 * (n as f64 / 900.0).sin()).round();
        busy.set(in_use);
        idle.set(10.0 - in_use);
        std::thread::sleep(Duration::from_micros(6_600));
    }
}

fn main() -> Result<(), vitals::Error> {
    let args: Vec<String> = std::env::args().collect();
    // Bucket state in snapshots: exact service-wide quantiles for the page.
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    let load = args.iter().any(|a| a == "--load");
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = None;
    if load {
        add_load_series(&metrics);
    } else {
        describe(&metrics);
        metrics
            .gauge("shop_build_info", &[("version", env!("CARGO_PKG_VERSION"))])
            .set(1.0);
        #[cfg(feature = "system")]
        {
            metrics.register(vitals::collectors::SystemCollector::new())?;
            metrics.register(vitals::collectors::ProcessCollector::new())?;
        }
        let api = ApiCollector::new(&metrics);
        metrics.register(api.clone())?;
        let caches = CacheCollector::new(&metrics);
        metrics.register(caches.clone())?;
        let (metrics, stop) = (metrics.clone(), Arc::clone(&stop));
        traffic = Some(std::thread::spawn(move || {
            run_traffic(metrics, api, caches, stop)
        }));
    }
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
    let port = u16::try_from(env("VITALS_PORT", 9898)).unwrap_or(9898);
    let server = HttpServer::start(&metrics, ("127.0.0.1", port), config)?;
    let base = format!("http://{}", server.local_addr());
    println!("serving {base}/metrics (Prometheus text; OpenMetrics by Accept)");
    println!("live page: {base}/   snapshot: {base}/metrics.json   health: {base}/health");
    std::thread::sleep(Duration::from_secs(env(
        "VITALS_SERVE_SECONDS",
        u64::MAX / 4,
    )));
    stop.store(true, Ordering::Relaxed);
    if let Some(traffic) = traffic {
        let _ = traffic.join();
    }
    let stats = server.stats();
    println!(
        "served {} requests from {} snapshots; {} connections turned away",
        stats.requests, stats.snapshots, stats.rejected_connections
    );
    Ok(())
}
