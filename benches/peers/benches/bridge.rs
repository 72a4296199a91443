//! The `metrics` facade through the vitals bridge against the same calls
//! through `metrics-exporter-prometheus`'s recorder, in one run.
//!
//! Both recorders live in this process as *local* recorders
//! (`metrics::with_local_recorder`), so neither is the global one and every
//! group measures the same call site against each. The groups:
//!
//! 1. `bridge_counter_macro` — `metrics::counter!("literal").increment(1)`:
//!    `metrics` 0.24 asks the recorder for the handle on every call.
//! 2. `bridge_counter_macro_label` — the same with one literal label.
//! 3. `bridge_counter_macro_runtime_label` — one label whose value is picked
//!    at run time from four (`metrics` builds an owned key on each call).
//! 4. `bridge_counter_handle` — a held `metrics::Counter`, plus the native
//!    vitals handle for reference.
//!
//! Run with `cargo bench -p vitals-peer-benches --bench bridge`; medians are
//! in `<target>/criterion/<group>/<contender>/new/estimates.json`.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use vitals::bridge::VitalsRecorder;
use vitals_peer_benches::METHODS;

fn recorders() -> (VitalsRecorder, PrometheusRecorder) {
    let vitals = VitalsRecorder::new(vitals::MetricsCollector::new());
    let prometheus = PrometheusBuilder::new().build_recorder();
    (vitals, prometheus)
}

fn bridge_counter_macro(c: &mut Criterion) {
    let (vitals, prometheus) = recorders();
    let mut group = c.benchmark_group("bridge_counter_macro");
    group.bench_function("vitals_recorder", |b| {
        metrics::with_local_recorder(&vitals, || {
            b.iter(|| metrics::counter!("bridge_requests_total").increment(1))
        })
    });
    group.bench_function("prometheus_recorder", |b| {
        metrics::with_local_recorder(&prometheus, || {
            b.iter(|| metrics::counter!("bridge_requests_total").increment(1))
        })
    });
    group.finish();
}

fn bridge_counter_macro_label(c: &mut Criterion) {
    let (vitals, prometheus) = recorders();
    let mut group = c.benchmark_group("bridge_counter_macro_label");
    group.bench_function("vitals_recorder", |b| {
        metrics::with_local_recorder(&vitals, || {
            b.iter(|| metrics::counter!("bridge_requests_total", "route" => "/users").increment(1))
        })
    });
    group.bench_function("prometheus_recorder", |b| {
        metrics::with_local_recorder(&prometheus, || {
            b.iter(|| metrics::counter!("bridge_requests_total", "route" => "/users").increment(1))
        })
    });
    group.finish();
}

fn bridge_counter_macro_runtime_label(c: &mut Criterion) {
    let (vitals, prometheus) = recorders();
    let mut group = c.benchmark_group("bridge_counter_macro_runtime_label");
    group.bench_function("vitals_recorder", |b| {
        metrics::with_local_recorder(&vitals, || {
            let mut i = 0usize;
            b.iter(|| {
                let m = METHODS[black_box(i) & 3];
                i = i.wrapping_add(1);
                metrics::counter!("bridge_requests_total", "method" => m).increment(1);
            })
        })
    });
    group.bench_function("prometheus_recorder", |b| {
        metrics::with_local_recorder(&prometheus, || {
            let mut i = 0usize;
            b.iter(|| {
                let m = METHODS[black_box(i) & 3];
                i = i.wrapping_add(1);
                metrics::counter!("bridge_requests_total", "method" => m).increment(1);
            })
        })
    });
    group.finish();
}

fn bridge_counter_handle(c: &mut Criterion) {
    let (vitals, prometheus) = recorders();
    let mut group = c.benchmark_group("bridge_counter_handle");
    let held = metrics::with_local_recorder(&vitals, || metrics::counter!("bridge_held_total"));
    group.bench_function("vitals_recorder", |b| b.iter(|| held.increment(1)));
    let held = metrics::with_local_recorder(&prometheus, || metrics::counter!("bridge_held_total"));
    group.bench_function("prometheus_recorder", |b| b.iter(|| held.increment(1)));
    let native = vitals.collector().counter("bridge_native_total", &[]);
    group.bench_function("vitals_native_handle", |b| b.iter(|| native.increment(1)));
    group.finish();
}

/// Short runs, as in the peers bench: the machine is small and shared.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = bridge;
    config = config();
    targets = bridge_counter_macro,
        bridge_counter_macro_label,
        bridge_counter_macro_runtime_label,
        bridge_counter_handle
}
criterion_main!(bridge);
