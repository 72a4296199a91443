//! Hot paths of vitals against the raw atomic floor, in one run per group:
//! counter increments (macro, handle, runtime label, two threads), gauge
//! sets, histogram
//! records (one and two threads), the exemplar paths, and a snapshot of
//! 1,000 counters + 100 histograms. The comparison with peer crates is in `benches/peers`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use vitals::{counter, histogram, MetricsCollector};

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Log-uniform values over 1..1e6 from a xorshift generator.
fn values() -> Vec<f64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10f64
                .powf((x >> 11) as f64 / (1u64 << 53) as f64 * 6.0)
                .floor()
        })
        .collect()
}

/// Runs `op(i)` `iters` times on each of two threads released together;
/// returns the wall time, so criterion reports wall time per op per thread.
fn two_threads<F: Fn(u64) + Send + Sync + 'static>(iters: u64, op: Arc<F>) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (barrier, op) = (Arc::clone(&barrier), Arc::clone(&op));
            thread::spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    op(i);
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    start.elapsed()
}

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc_1thread");
    let raw = AtomicU64::new(0);
    g.bench_function("raw_atomic", |b| {
        b.iter(|| raw.fetch_add(1, Ordering::Relaxed))
    });
    g.bench_function("vitals_macro", |b| {
        b.iter(|| counter!("bench_c").increment(1))
    });
    let handle = vitals::global().counter("bench_c_handle", &[]);
    g.bench_function("vitals_handle", |b| b.iter(|| handle.increment(1)));
    g.finish();

    let mut g = c.benchmark_group("counter_inc_runtime_label");
    let mut i = 0usize;
    g.bench_function("vitals_macro", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            counter!("bench_l", "method" => METHODS[i & 3]).increment(1)
        })
    });
    let local = MetricsCollector::new();
    g.bench_function("vitals_explicit_collector", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            local
                .counter("bench_l", &[("method", METHODS[i & 3])])
                .increment(1)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("counter_inc_2threads_same");
    let shared = Arc::new(AtomicU64::new(0));
    g.bench_function("raw_atomic", |b| {
        b.iter_custom(|n| {
            let s = Arc::clone(&shared);
            two_threads(
                n,
                Arc::new(move |_| {
                    s.fetch_add(1, Ordering::Relaxed);
                }),
            )
        })
    });
    let handle = vitals::global().counter("bench_c2", &[]);
    g.bench_function("vitals_handle", |b| {
        b.iter_custom(|n| {
            let h = handle.clone();
            two_threads(n, Arc::new(move |_| h.increment(1)))
        })
    });
    g.bench_function("vitals_macro", |b| {
        b.iter_custom(|n| two_threads(n, Arc::new(|_| counter!("bench_c2m").increment(1))))
    });
    g.finish();
}

fn gauges(c: &mut Criterion) {
    let mut g = c.benchmark_group("gauge_set_1thread");
    let raw = AtomicU64::new(0);
    let mut x = 0.0f64;
    g.bench_function("raw_atomic", |b| {
        b.iter(|| {
            x += 1.0;
            raw.store(black_box(x).to_bits(), Ordering::Relaxed)
        })
    });
    let gauge = vitals::global().gauge("bench_g", &[]);
    g.bench_function("vitals_handle", |b| {
        b.iter(|| {
            x += 1.0;
            gauge.set(black_box(x))
        })
    });
    g.finish();
}

fn histograms(c: &mut Criterion) {
    let vals = Arc::new(values());
    let mut g = c.benchmark_group("histogram_record_1thread");
    let h = vitals::global().histogram("bench_h", &[]);
    let mut i = 0usize;
    g.bench_function("vitals_handle", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            h.record(vals[i & 4095])
        })
    });
    g.bench_function("vitals_macro", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            histogram!("bench_hm").record(vals[i & 4095])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("histogram_record_2threads_same");
    let h = vitals::global().histogram("bench_h2", &[]);
    g.bench_function("vitals_handle", |b| {
        b.iter_custom(|n| {
            let (h, vals) = (h.clone(), Arc::clone(&vals));
            two_threads(n, Arc::new(move |i| h.record(vals[i as usize & 4095])))
        })
    });
    g.finish();
}

/// Exemplars cost nothing on the plain paths: `record` and `increment` on
/// a series that never had one against a series whose exemplar storage
/// exists, and what the exemplar calls themselves cost.
fn exemplars(c: &mut Criterion) {
    let vals = values();
    let metrics = MetricsCollector::new();
    let (plain_h, with_h) = (
        metrics.histogram("plain_seconds", &[]),
        metrics.histogram("with_exemplars_seconds", &[]),
    );
    let (plain_c, with_c) = (
        metrics.counter("plain_total", &[]),
        metrics.counter("with_exemplars_total", &[]),
    );
    let trace = [("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")];
    with_h.record_with_exemplar(1.0, &trace).unwrap();
    with_c.increment_with_exemplar(1, &trace).unwrap();

    let mut g = c.benchmark_group("exemplars_histogram");
    let mut i = 0usize;
    g.bench_function("record_never_had_exemplars", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            plain_h.record(vals[i & 4095])
        })
    });
    g.bench_function("record_with_exemplar_storage", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            with_h.record(vals[i & 4095])
        })
    });
    g.bench_function("record_with_exemplar", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            with_h.record_with_exemplar(vals[i & 4095], &trace)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("exemplars_counter");
    g.bench_function("increment_never_had_exemplars", |b| {
        b.iter(|| plain_c.increment(1))
    });
    g.bench_function("increment_with_exemplar_storage", |b| {
        b.iter(|| with_c.increment(1))
    });
    g.bench_function("increment_with_exemplar", |b| {
        b.iter(|| with_c.increment_with_exemplar(1, &trace))
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let metrics = MetricsCollector::new();
    let vals = values();
    for name in 0..10 {
        for label in 0..100 {
            let (n, l) = (format!("counter_{name}_total"), label.to_string());
            metrics.counter(&n, &[("id", &l)]).increment(label);
        }
        for label in 0..10 {
            let (n, l) = (format!("histogram_{name}_seconds"), label.to_string());
            let h = metrics.histogram(&n, &[("id", &l)]);
            for v in &vals[..1000] {
                h.record(v / 1e6);
            }
        }
    }
    let mut g = c.benchmark_group("snapshot");
    g.bench_function("1000_counters_100_histograms", |b| {
        b.iter(|| black_box(metrics.snapshot()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = counters, gauges, histograms, exemplars, snapshots
}
criterion_main!(benches);
