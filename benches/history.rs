//! History costs: ingesting a snapshot of 1,100 series (1,000 counters,
//! 100 histograms with lifetime buckets), a 24-hour query of one series at
//! 1-minute resolution, and replay throughput of JSON-Lines snapshot files
//! (lines per second).
//!
//! Memory per series and per level is printed when the bench starts, from
//! an hour of 10 s snapshots of the same registry, with the extrapolation to
//! the default retentions.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use vitals::export::JsonLinesExporter;
use vitals::history::{Aggregation, History, Level, Query};
use vitals::{Counter, Histogram, ManualClock, MetricsCollector, Snapshot};

/// 1,000 counters (10 names × 100 ids) and 100 histograms (10 × 10) on a
/// manual clock, with lifetime buckets on.
struct Registry {
    clock: Arc<ManualClock>,
    metrics: MetricsCollector,
    counters: Vec<Counter>,
    histograms: Vec<Histogram>,
    x: u64,
}

impl Registry {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new());
        let metrics = MetricsCollector::builder()
            .clock(clock.clone())
            .lifetime_buckets(true)
            .build();
        let mut counters = Vec::new();
        let mut histograms = Vec::new();
        for name in 0..10 {
            for id in 0..100 {
                counters.push(
                    metrics.counter(&format!("counter_{name}_total"), &[("id", &id.to_string())]),
                );
            }
            for id in 0..10 {
                histograms.push(metrics.histogram(
                    &format!("histogram_{name}_seconds"),
                    &[("id", &id.to_string())],
                ));
            }
        }
        Registry {
            clock,
            metrics,
            counters,
            histograms,
            x: 0x2545_F491_4F6C_DD1D,
        }
    }

    /// Ten seconds of traffic, then a snapshot.
    fn tick(&mut self) -> Snapshot {
        for (i, c) in self.counters.iter().enumerate() {
            c.increment(i as u64 % 7 + 1);
        }
        for h in &self.histograms {
            for _ in 0..100 {
                self.x ^= self.x << 13;
                self.x ^= self.x >> 7;
                self.x ^= self.x << 17;
                // Log-uniform over 100 µs .. 1 s.
                h.record(10f64.powf((self.x >> 11) as f64 / (1u64 << 53) as f64 * 4.0) / 1e4);
            }
        }
        self.clock.advance(Duration::from_secs(10));
        self.metrics.snapshot()
    }
}

fn print_memory() {
    let mut registry = Registry::new();
    let history = History::new();
    for _ in 0..360 {
        history.ingest(&registry.tick()).unwrap();
    }
    let stats = history.stats();
    let bytes = history.memory_bytes();
    let points: usize = stats.points.iter().sum();
    let per_point = bytes as f64 / points as f64;
    // Histogram points dominate: measure them apart.
    let counters_only = History::new();
    let mut registry = Registry::new();
    for _ in 0..360 {
        let mut snap = registry.tick();
        snap.histograms.clear();
        counters_only.ingest(&snap).unwrap();
    }
    let counter_point = counters_only.memory_bytes() as f64
        / counters_only.stats().points.iter().sum::<usize>() as f64;
    let histogram_point = (bytes as f64 - counters_only.memory_bytes() as f64)
        / (points - counters_only.stats().points.iter().sum::<usize>()) as f64;
    // Points per series over the default retentions with 10 s snapshots.
    let full = [8640.0, 10080.0, 8640.0, 8760.0f64];
    let total: f64 = full.iter().sum();
    println!(
        "history memory after 1 h of 1,100 series: {:.1} MiB, {} points, {:.0} B/point \
         (counter point {:.0} B, histogram point {:.0} B)",
        bytes as f64 / 1048576.0,
        points,
        per_point,
        counter_point,
        histogram_point
    );
    println!(
        "extrapolated to the default retentions, all resident ({} points per series): \
         1,000 counters {:.0} MiB + 100 histograms {:.0} MiB",
        total,
        1000.0 * total * counter_point / 1048576.0,
        100.0 * total * histogram_point / 1048576.0
    );
}

fn ingest(c: &mut Criterion) {
    print_memory();
    let mut registry = Registry::new();
    // A day of raw points for 1,100 series would not fit a bench machine:
    // keep one hour (the ingest work does not depend on it).
    let history = History::builder()
        .retention(Level::Raw, Duration::from_secs(3600))
        .build()
        .unwrap();
    history.ingest(&registry.tick()).unwrap();
    let mut group = c.benchmark_group("history");
    group.throughput(Throughput::Elements(1100));
    group.bench_function("ingest_1100_series", |b| {
        b.iter_batched(
            || registry.tick(),
            // The snapshot is returned, so that criterion drops it outside
            // the timed part.
            |snap| {
                history.ingest(black_box(&snap)).unwrap();
                snap
            },
            BatchSize::SmallInput,
        )
    });
    // The 1,000 counters alone, to show what the 100 histograms cost.
    let counters_only = History::builder()
        .retention(Level::Raw, Duration::from_secs(3600))
        .build()
        .unwrap();
    group.throughput(Throughput::Elements(1000));
    group.bench_function("ingest_1000_counters", |b| {
        b.iter_batched(
            || {
                let mut snap = registry.tick();
                snap.histograms.clear();
                snap
            },
            |snap| {
                counters_only.ingest(black_box(&snap)).unwrap();
                snap
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn query(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let counter = metrics.counter("requests_total", &[("route", "/")]);
    let gauge = metrics.gauge("queue_depth", &[]);
    let latency = metrics.histogram("latency_seconds", &[("route", "/")]);
    let history = History::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..8640u64 {
        counter.increment(i % 13);
        gauge.set((i % 100) as f64);
        for _ in 0..20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            latency.record(10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 4.0) / 1e4);
        }
        clock.advance(Duration::from_secs(10));
        history.ingest(&metrics.snapshot()).unwrap();
    }
    let now = history.newest_unix_ms().unwrap();
    let day = 24 * 3_600_000;
    let mut group = c.benchmark_group("history_query_24h_1m");
    for (name, agg) in [
        ("requests_total", Aggregation::Rate),
        ("queue_depth", Aggregation::Avg),
        ("latency_seconds", Aggregation::P95),
    ] {
        let q = Query::new(name, agg)
            .range(now - day, now + 1)
            .level(Level::Minute);
        assert!(history.query(&q).unwrap().series[0].points.len() >= 1439);
        group.bench_function(format!("{name}_{}", agg.as_str()), |b| {
            b.iter(|| history.query(black_box(&q)).unwrap())
        });
    }
    let q = Query::new("latency_seconds", Aggregation::P99)
        .range(now - day, now + 1)
        .max_points(24);
    group.bench_function("latency_seconds_p99_auto_24_points", |b| {
        b.iter(|| history.query(black_box(&q)).unwrap())
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    // One hour of 10 s snapshots of the 1,100-series registry (a day is
    // 24 times this; the file would be about 24 times larger).
    const LINES: u64 = 360;
    let dir = std::env::temp_dir().join(format!("vitals-bench-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("metrics.jsonl");
    let mut registry = Registry::new();
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut line = Vec::new();
        for _ in 0..LINES {
            line.clear();
            JsonLinesExporter::encode_line(&registry.tick(), &mut line).unwrap();
            file.write_all(&line).unwrap();
        }
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "replay file: {LINES} lines, {:.1} MiB ({:.0} KiB per line)",
        size as f64 / 1048576.0,
        size as f64 / LINES as f64 / 1024.0
    );
    let mut group = c.benchmark_group("history_replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LINES));
    group.bench_function("jsonl_1100_series_lines", |b| {
        b.iter(|| {
            let history = History::new();
            let report = history.replay_files(&path).unwrap();
            assert_eq!(report.snapshots, LINES);
            history
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, ingest, query, replay);
criterion_main!(benches);
