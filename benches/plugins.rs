//! Plug-in costs, each beside the core operation it wraps, in one run per
//! group: a request record next to a counter increment plus a histogram
//! record, a cache hit next to a counter increment, a stage guard next to a
//! histogram timer (each through a kept handle and through a lookup by
//! name); and one snapshot that collects every built-in plug-in.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use vitals::collectors::{ApiCollector, CacheCollector, HealthCollector, Method, StageCollector};
use vitals::MetricsCollector;

fn api(c: &mut Criterion) {
    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let endpoint = api.endpoint("/users");
    let labels = [("endpoint", "/core"), ("method", "GET"), ("status", "2xx")];
    let counter = metrics.counter("core_requests_total", &labels);
    let histogram = metrics.histogram("core_request_duration_seconds", &[("endpoint", "/core")]);
    let took = Duration::from_micros(1234);

    let mut g = c.benchmark_group("api_record_request");
    g.bench_function("core_counter_inc+histogram_record", |b| {
        b.iter(|| {
            counter.inc();
            histogram.record_duration(black_box(took));
        })
    });
    g.bench_function("endpoint_handle_record", |b| {
        b.iter(|| endpoint.record(Method::Get, black_box(200), black_box(took)))
    });
    g.bench_function("core_lookup_counter+histogram", |b| {
        b.iter(|| {
            metrics.counter("core_requests_total", &labels).inc();
            metrics
                .histogram("core_request_duration_seconds", &[("endpoint", "/core")])
                .record_duration(black_box(took));
        })
    });
    g.bench_function("api_record_request_by_name", |b| {
        b.iter(|| api.record_request(black_box("/users"), "GET", black_box(200), took))
    });
    g.finish();
}

fn cache(c: &mut Criterion) {
    let metrics = MetricsCollector::new();
    let caches = CacheCollector::new(&metrics);
    let users = caches.cache("users");
    let counter = metrics.counter("core_hits_total", &[("cache", "core")]);

    let mut g = c.benchmark_group("cache_hit");
    g.bench_function("core_counter_inc", |b| b.iter(|| counter.inc()));
    g.bench_function("cache_handle_hit", |b| b.iter(|| users.hit()));
    g.bench_function("core_lookup_counter_inc", |b| {
        b.iter(|| {
            metrics
                .counter("core_hits_total", &[("cache", black_box("core"))])
                .inc()
        })
    });
    g.bench_function("cache_hit_by_name", |b| {
        b.iter(|| caches.hit(black_box("users")))
    });
    g.finish();
}

fn stage(c: &mut Criterion) {
    let metrics = MetricsCollector::new();
    let stages = StageCollector::new(&metrics);
    let parse = stages.stage("parse");
    let histogram = metrics.histogram("core_stage_seconds", &[("stage", "core")]);

    let mut g = c.benchmark_group("stage_guard");
    g.bench_function("core_histogram_timer", |b| {
        b.iter(|| drop(black_box(histogram.start_timer())))
    });
    g.bench_function("stage_handle_guard", |b| {
        b.iter(|| drop(black_box(parse.start())))
    });
    g.bench_function("stage_guard_by_name", |b| {
        b.iter(|| drop(black_box(stages.start(black_box("parse")))))
    });
    g.finish();
}

/// A registry with every built-in plug-in registered and a few names in
/// each event plug-in, as a small service would have.
fn service(with_plugins: bool, polling_on_demand: bool) -> MetricsCollector {
    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let caches = CacheCollector::new(&metrics);
    let stages = StageCollector::new(&metrics);
    let health = HealthCollector::new(&metrics);
    for i in 0..10 {
        let path = format!("/route/{i}");
        for status in [200, 404, 500] {
            api.record_request(&path, Method::Get, status, Duration::from_millis(i + 1));
        }
        caches.cache(&format!("cache{i}")).hit();
        stages
            .stage(&format!("stage{i}"))
            .record(Duration::from_millis(i + 1), true);
    }
    for dep in ["db", "queue", "auth"] {
        health.dependency(dep).success();
    }
    // Without the `system` feature there are no polling plug-ins to set.
    #[cfg(not(feature = "system"))]
    let _ = polling_on_demand;
    if with_plugins {
        metrics.register(api).unwrap();
        metrics.register(caches).unwrap();
        metrics.register(stages).unwrap();
        metrics.register(health).unwrap();
        #[cfg(feature = "system")]
        {
            let system = metrics
                .register(vitals::collectors::SystemCollector::new())
                .unwrap();
            let process = metrics
                .register(vitals::collectors::ProcessCollector::new())
                .unwrap();
            if polling_on_demand {
                // So that every snapshot collects them too.
                system.set_interval(None).unwrap();
                process.set_interval(None).unwrap();
            }
        }
    }
    // Warm-up: baselines taken, series created.
    metrics.snapshot();
    std::thread::sleep(Duration::from_millis(250));
    metrics.snapshot();
    metrics
}

fn collection(c: &mut Criterion) {
    let bare = service(false, false);
    let full = service(true, true);
    let defaults = service(true, false);
    let mut g = c.benchmark_group("snapshot");
    g.bench_function("same_series_without_plugins", |b| {
        b.iter(|| black_box(bare.snapshot()))
    });
    g.bench_function("collect_all_builtin_plugins", |b| {
        b.iter(|| black_box(full.snapshot()))
    });
    // As registered by default: system and process sample in the background
    // and the snapshot reads their latest samples.
    g.bench_function("builtin_plugins_polling_in_background", |b| {
        b.iter(|| black_box(defaults.snapshot()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = api, cache, stage, collection
}
criterion_main!(benches);
