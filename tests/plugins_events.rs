//! The event plug-ins (API, cache, stage, health) through the public API:
//! exact counts and ratios from known event sequences, windowed values with
//! a manual clock, cardinality, and exact totals under concurrency.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use vitals::collectors::{
    ApiCollector, CacheCollector, HealthCollector, HealthStatus, Method, StageCollector,
    OVERFLOW_NAME,
};
use vitals::{ManualClock, MetricsCollector, Snapshot};

const S: Duration = Duration::from_secs(1);

fn manual() -> (MetricsCollector, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    (metrics, clock)
}

/// A plug-in's series: present only while the plug-in reports it.
fn sample(snap: &Snapshot, plugin: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    assert!(snap.plugin(plugin).is_some(), "{plugin} not registered");
    snap.gauge(name, labels)
        .or_else(|| snap.counter(name, labels))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn api_counts_ratios_and_rates_follow_the_events() {
    let (metrics, clock) = manual();
    let api = ApiCollector::new(&metrics);
    metrics.register(api.clone()).unwrap();
    let a = api.endpoint("/a");
    for _ in 0..3 {
        a.record(Method::Get, 200, Duration::from_millis(10));
    }
    api.record_request("/a", "POST", 201, Duration::from_millis(20));
    api.record_request("/a", "get", 404, Duration::from_millis(5));
    a.record("GET", 500, Duration::from_millis(100));
    a.record("GET", 503, Duration::from_millis(100));

    clock.advance(10 * S);
    let snap = metrics.snapshot();
    let by = |m: &str, s: &str| {
        snap.counter(
            "api_requests_total",
            &[("endpoint", "/a"), ("method", m), ("status", s)],
        )
    };
    assert_eq!(by("GET", "2xx"), Some(3.0));
    assert_eq!(by("POST", "2xx"), Some(1.0));
    assert_eq!(by("GET", "4xx"), Some(1.0));
    assert_eq!(by("GET", "5xx"), Some(2.0));
    assert_eq!(by("PUT", "2xx"), None, "unused combinations make no series");
    assert_eq!(
        snap.counter("api_errors_total", &[("endpoint", "/a")]),
        Some(2.0)
    );
    let latency = snap
        .histogram("api_request_duration_seconds", &[("endpoint", "/a")])
        .unwrap();
    assert_eq!(latency.window.count, 7);
    assert!(close(latency.window.max, 0.1));
    let e = [("endpoint", "/a")];
    assert!(close(
        sample(&snap, "api", "api_requests_per_second", &e),
        0.7
    ));
    assert!(close(
        sample(&snap, "api", "api_success_ratio", &e),
        5.0 / 7.0
    ));
    assert!(close(
        sample(&snap, "api", "api_lifetime_success_ratio", &e),
        5.0 / 7.0
    ));
    assert!(close(
        sample(&snap, "api", "api_requests_per_second", &[]),
        0.7
    ));

    // A minute later the window holds only the new requests.
    clock.advance(60 * S);
    for _ in 0..4 {
        a.record(Method::Get, 200, Duration::from_millis(10));
    }
    let snap = metrics.snapshot();
    assert!(close(
        sample(&snap, "api", "api_requests_per_second", &e),
        4.0 / 60.0
    ));
    assert!(close(sample(&snap, "api", "api_success_ratio", &e), 1.0));
    assert!(close(
        sample(&snap, "api", "api_lifetime_success_ratio", &e),
        9.0 / 11.0
    ));
}

#[test]
fn api_in_flight_guards_count_until_finished_or_dropped() {
    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let up = api.endpoint("/upload");
    let first = up.start();
    let second = api.in_flight("/upload");
    let gauge = |m: &MetricsCollector| {
        m.snapshot()
            .gauge("api_requests_in_flight", &[("endpoint", "/upload")])
    };
    assert_eq!(gauge(&metrics), Some(2.0));
    first.finish(Method::Put, 201);
    drop(second);
    assert_eq!(gauge(&metrics), Some(0.0));
    let snap = metrics.snapshot();
    let labels = [
        ("endpoint", "/upload"),
        ("method", "PUT"),
        ("status", "2xx"),
    ];
    assert_eq!(snap.counter("api_requests_total", &labels), Some(1.0));
}

#[test]
fn endpoints_past_the_cardinality_limit_share_the_overflow_endpoint() {
    let metrics = MetricsCollector::builder().cardinality_limit(2).build();
    let api = ApiCollector::new(&metrics);
    metrics.register(api.clone()).unwrap();
    for path in ["/a", "/b", "/c", "/d"] {
        api.record_request(path, Method::Get, 200, Duration::from_millis(1));
    }
    assert_eq!(api.endpoint("/b").name(), "/b");
    assert_eq!(api.endpoint("/c").name(), OVERFLOW_NAME);
    assert_eq!(metrics.cardinality("api_request_duration_seconds"), Some(2));
    let snap = metrics.snapshot();
    let over = [("endpoint", OVERFLOW_NAME)];
    assert!(close(
        sample(&snap, "api", "api_lifetime_success_ratio", &over),
        1.0
    ));
    let overflowed = snap
        .counter(
            "vitals_cardinality_overflow_total",
            &[("metric", "api_request_duration_seconds")],
        )
        .unwrap();
    assert!(overflowed >= 1.0);
}

#[test]
fn cache_hit_ratios_over_the_window_and_the_life() {
    let (metrics, clock) = manual();
    let caches = CacheCollector::new(&metrics);
    metrics.register(caches.clone()).unwrap();
    let users = caches.cache("users");
    for _ in 0..30 {
        users.hit();
    }
    for _ in 0..10 {
        caches.miss("users");
    }
    users.evicted(4);
    users.set_size_bytes(1 << 20);
    users.set_entries(512);

    clock.advance(10 * S);
    let snap = metrics.snapshot();
    let c = [("cache", "users")];
    assert_eq!(snap.counter("cache_hits_total", &c), Some(30.0));
    assert_eq!(snap.counter("cache_misses_total", &c), Some(10.0));
    assert_eq!(snap.counter("cache_evictions_total", &c), Some(4.0));
    assert_eq!(snap.gauge("cache_size_bytes", &c), Some(1_048_576.0));
    assert_eq!(snap.gauge("cache_entries", &c), Some(512.0));
    assert!(close(sample(&snap, "cache", "cache_hit_ratio", &c), 0.75));
    assert!(close(
        sample(&snap, "cache", "cache_lifetime_hit_ratio", &c),
        0.75
    ));
    assert!(close(
        sample(&snap, "cache", "cache_requests_per_second", &c),
        4.0
    ));

    clock.advance(60 * S);
    for _ in 0..10 {
        users.miss();
    }
    let snap = metrics.snapshot();
    assert!(close(sample(&snap, "cache", "cache_hit_ratio", &c), 0.0));
    assert!(close(
        sample(&snap, "cache", "cache_lifetime_hit_ratio", &c),
        0.6
    ));

    // A cache with no lookups has no ratio rather than a made-up one.
    caches.cache("cold");
    let snap = metrics.snapshot();
    assert_eq!(
        sample(
            &snap,
            "cache",
            "cache_lifetime_hit_ratio",
            &[("cache", "cold")]
        ),
        None
    );
}

#[test]
fn stage_counts_errors_durations_and_throughput() {
    let (metrics, clock) = manual();
    let stages = StageCollector::new(&metrics);
    metrics.register(stages.clone()).unwrap();
    let parse = stages.stage("parse");
    for ms in [10, 20, 30] {
        parse.record(Duration::from_millis(ms), true);
    }
    let r: Result<(), &str> = parse.run(|| Err("bad input"));
    assert!(r.is_err());
    {
        let mut run = stages.start("parse");
        run.fail();
    }
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _run = parse.start();
        panic!("stage blew up");
    }));
    assert!(panicked.is_err());
    let ok_guard = parse.start();
    ok_guard.finish();

    clock.advance(10 * S);
    let snap = metrics.snapshot();
    let st = [("stage", "parse")];
    assert_eq!(snap.counter("stage_errors_total", &st), Some(3.0));
    let h = snap.histogram("stage_duration_seconds", &st).unwrap();
    assert_eq!(h.lifetime.count, 7);
    // The guarded runs are timed by the real clock (the panicking one
    // includes the panic hook), so only the recorded runs are exact.
    assert!(h.lifetime.max.unwrap() >= 0.03);
    assert!(h.lifetime.sum >= 0.06);
    assert!(close(sample(&snap, "stage", "stage_runs_total", &st), 7.0));
    assert!(close(
        sample(&snap, "stage", "stage_throughput_per_second", &st),
        0.7
    ));
    assert!(close(
        sample(&snap, "stage", "stage_lifetime_error_ratio", &st),
        3.0 / 7.0
    ));
    let avg = sample(&snap, "stage", "stage_duration_avg_seconds", &st);
    assert!(close(avg, h.window.sum / 7.0));
}

#[test]
fn health_status_failures_success_rate_and_uptime() {
    let (metrics, clock) = manual();
    let health = HealthCollector::new(&metrics);
    metrics.register(health.clone()).unwrap();
    let db = health.dependency("db");
    assert_eq!(db.status(), HealthStatus::Unknown);
    assert_eq!(metrics.snapshot().plugin("health").unwrap().stats.series, 0);

    db.success();
    clock.advance(30 * S);
    db.failure();
    assert_eq!(db.status(), HealthStatus::Degraded);
    db.failure();
    db.failure();
    assert_eq!(db.status(), HealthStatus::Down);
    clock.advance(10 * S);

    let snap = metrics.snapshot();
    let d = [("dependency", "db")];
    let state = |s: &str| {
        sample(
            &snap,
            "health",
            "health_status",
            &[("dependency", "db"), ("status", s)],
        )
    };
    assert_eq!(
        (state("up"), state("degraded"), state("down")),
        (Some(0.0), Some(0.0), Some(1.0))
    );
    assert!(close(
        sample(&snap, "health", "health_consecutive_failures", &d),
        3.0
    ));
    assert!(close(
        sample(&snap, "health", "health_success_ratio", &d),
        0.25
    ));
    assert!(close(
        sample(&snap, "health", "health_uptime_ratio", &d),
        0.75
    ));
    let checks = |r: &str| {
        snap.counter(
            "health_checks_total",
            &[("dependency", "db"), ("result", r)],
        )
    };
    assert_eq!(
        (checks("success"), checks("failure")),
        (Some(1.0), Some(3.0))
    );

    db.success();
    clock.advance(10 * S);
    let snap = metrics.snapshot();
    assert!(close(
        sample(&snap, "health", "health_uptime_ratio", &d),
        0.8
    ));
    assert!(close(
        sample(&snap, "health", "health_consecutive_failures", &d),
        0.0
    ));
    assert_eq!(db.status(), HealthStatus::Up);
}

#[test]
fn event_plugins_keep_exact_totals_across_threads() {
    const THREADS: u64 = 4;
    const EACH: u64 = 20_000;
    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let caches = CacheCollector::new(&metrics);
    let stages = StageCollector::new(&metrics);
    let health = HealthCollector::new(&metrics);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (api, caches, stages, health) =
                (api.clone(), caches.clone(), stages.clone(), health.clone());
            thread::spawn(move || {
                let endpoint = api.endpoint("/shared");
                let cache = caches.cache("shared");
                let stage = stages.stage("shared");
                let dep = health.dependency("shared");
                for i in 0..EACH {
                    // Half through the pre-resolved handles, half by name.
                    if (i + t) % 2 == 0 {
                        endpoint.record(Method::Get, 200, Duration::from_micros(i));
                        cache.hit();
                        stage.record(Duration::from_micros(i), true);
                    } else {
                        api.record_request("/shared", "GET", 500, Duration::from_micros(i));
                        caches.miss("shared");
                        drop(stages.start("shared"));
                    }
                    if i % 100 == 0 {
                        dep.record(i % 200 == 0);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let snap = metrics.snapshot();
    let half = THREADS * EACH / 2;
    let req = |s: &str| {
        snap.counter(
            "api_requests_total",
            &[("endpoint", "/shared"), ("method", "GET"), ("status", s)],
        )
    };
    assert_eq!(
        (req("2xx"), req("5xx")),
        (Some(half as f64), Some(half as f64))
    );
    assert_eq!(
        snap.counter("api_errors_total", &[("endpoint", "/shared")]),
        Some(half as f64)
    );
    let c = [("cache", "shared")];
    assert_eq!(snap.counter("cache_hits_total", &c), Some(half as f64));
    assert_eq!(snap.counter("cache_misses_total", &c), Some(half as f64));
    let runs = snap
        .histogram("stage_duration_seconds", &[("stage", "shared")])
        .unwrap()
        .lifetime
        .count;
    assert_eq!(runs, THREADS * EACH);
    let checks = |r: &str| {
        snap.counter(
            "health_checks_total",
            &[("dependency", "shared"), ("result", r)],
        )
    };
    let each_kind = THREADS * EACH / 200;
    assert_eq!(
        (checks("success"), checks("failure")),
        (Some(each_kind as f64), Some(each_kind as f64))
    );
}
