//! A simulated web service recording its requests with the API plug-in, a
//! dependency check with the health plug-in, and the process plug-in beside
//! them; prints what they measured.
//!
//! Run with `cargo run --release --example web_service`.

use std::thread;
use std::time::{Duration, Instant};

use vitals::collectors::{ApiCollector, HealthCollector, Method};
use vitals::MetricsCollector;

/// Pretend work: a few hundred microseconds, longer for some routes, and a
/// server error now and then.
fn serve(route: &str, n: u64) -> u16 {
    let spin = match route {
        "/search" => 600,
        "/login" => 300,
        _ => 100,
    };
    let start = Instant::now();
    let mut x = n;
    while start.elapsed() < Duration::from_micros(spin + n % 200) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    std::hint::black_box(x);
    match n % 40 {
        0 => 503,
        7 | 19 => 404,
        _ => 200,
    }
}

fn main() {
    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let health = HealthCollector::new(&metrics);
    metrics.register(api.clone()).unwrap();
    metrics.register(health.clone()).unwrap();
    #[cfg(feature = "system")]
    metrics
        .register(vitals::collectors::ProcessCollector::new())
        .unwrap();

    // Two worker threads, each keeping its endpoint handles (resolved once).
    let routes = [
        ("/users", Method::Get),
        ("/search", Method::Get),
        ("/login", Method::Post),
    ];
    let started = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let api = api.clone();
            thread::spawn(move || {
                let endpoints: Vec<_> = routes
                    .iter()
                    .map(|(path, method)| (api.endpoint(path), *method, *path))
                    .collect();
                for n in 0..1500u64 {
                    let (endpoint, method, path) = &endpoints[(n as usize + w) % endpoints.len()];
                    let request = endpoint.start();
                    let status = serve(path, n);
                    request.finish(*method, status);
                }
            })
        })
        .collect();
    let db = health.dependency("database");
    for n in 0..20 {
        db.record(n % 9 != 4);
        thread::sleep(Duration::from_millis(20));
    }
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = started.elapsed();

    let snap = metrics.snapshot();
    println!("served 3000 requests in {:.2} s", elapsed.as_secs_f64());
    println!(
        "{:<8} {:>6} {:>7} {:>9} {:>9} {:>9}",
        "endpoint", "req/s", "success", "p50 ms", "p99 ms", "errors"
    );
    for (path, _) in routes {
        let e = [("endpoint", path)];
        let latency = snap.histogram("api_request_duration_seconds", &e).unwrap();
        let q = latency.window.quantiles.unwrap();
        println!(
            "{:<8} {:>6.0} {:>6.1}% {:>9.3} {:>9.3} {:>9}",
            path,
            snap.gauge("api_requests_per_second", &e).unwrap_or(0.0),
            100.0 * snap.gauge("api_success_ratio", &e).unwrap_or(0.0),
            q.p50 * 1e3,
            q.p99 * 1e3,
            snap.counter("api_errors_total", &e).unwrap_or(0.0),
        );
    }
    let not_found: f64 = snap
        .counters
        .iter()
        .filter(|c| &*c.name == "api_requests_total" && c.labels.get("status") == Some("4xx"))
        .map(|c| c.value.as_f64())
        .sum();
    println!("4xx responses (counted as served): {not_found}");
    let d = [("dependency", "database")];
    println!(
        "database: success {:.0}%, up {:.1}% of the time, {} failures in a row",
        100.0 * snap.gauge("health_success_ratio", &d).unwrap_or(0.0),
        100.0 * snap.gauge("health_uptime_ratio", &d).unwrap_or(0.0),
        snap.gauge("health_consecutive_failures", &d).unwrap_or(0.0),
    );
    if snap.plugin("process").is_some() {
        println!(
            "process: {:.1} MiB resident, {} threads, {:.2} s CPU",
            snap.gauge("process_resident_memory_bytes", &[])
                .unwrap_or(0.0)
                / 1048576.0,
            snap.gauge("process_threads", &[]).unwrap_or(0.0),
            snap.counter("process_cpu_seconds_total", &[])
                .unwrap_or(0.0),
        );
    }
}
