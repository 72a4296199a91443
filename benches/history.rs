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

/// Memory and points of a store after `hours` more hours of 10 s
/// snapshots.
fn grow(history: &History, registry: &mut Registry, hours: u32, counters_only: bool) -> (f64, f64) {
    for _ in 0..hours * 360 {
        let mut snap = registry.tick();
        if counters_only {
            snap.histograms.clear();
        }
        history.ingest(&snap).unwrap();
    }
    let points: usize = history.stats().points.iter().sum();
    (history.memory_bytes() as f64, points as f64)
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
fn rss() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn print_memory() {
    const MIB: f64 = 1048576.0;
    // What one more point costs, everything resident: the growth from the
    // first to the second hour (the fixed part per series, previous
    // readings and open intervals, is in both).
    let mut per_point = [0.0; 2];
    let mut fixed = [0.0; 2];
    for (i, counters_only) in [true, false].into_iter().enumerate() {
        let history = History::new();
        let mut registry = Registry::new();
        let (m1, p1) = grow(&history, &mut registry, 1, counters_only);
        let (m2, p2) = grow(&history, &mut registry, 1, counters_only);
        per_point[i] = (m2 - m1) / (p2 - p1);
        fixed[i] = m1 - p1 * per_point[i];
    }
    let counter_point = per_point[0];
    let histogram_point = (per_point[1] * 1100.0 - counter_point * 1000.0) / 100.0;
    // Points per series over the default retentions with 10 s snapshots.
    let full: f64 = [8640.0, 10080.0, 8640.0, 8760.0f64].iter().sum();
    println!(
        "history, everything resident: {counter_point:.1} B a counter point, {histogram_point:.0} B a histogram point (mean over levels), fixed part {:.1} MiB for 1,100 series; default retentions ({full} points a series) would take {:.0} MiB for the 1,000 counters + {:.0} MiB for the 100 histograms",
        fixed[1] / MIB,
        1000.0 * full * counter_point / MIB,
        100.0 * full * histogram_point / MIB
    );
    // Persisted with the default retentions and memory limit: six hours.
    let dir = std::env::temp_dir().join(format!("vitals-bench-persist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let before = rss();
    let history = History::builder().persist(&dir).build().unwrap();
    let mut registry = Registry::new();
    let (bytes, _) = grow(&history, &mut registry, 6, false);
    let stats = history.stats();
    let minutes = stats.resident_ms.map(|ms| ms as f64 / 60_000.0);
    println!(
        "history, persisted with default retentions and limit, after 6 h of 10 s snapshots of 1,100 series: {:.1} MiB in memory (limit {:.0} MiB), process RSS grew {:.1} MiB, {:.0} MiB on disk; resident now raw {:.0} min, 1m {:.0} min, 5m {:.0} min, 1h {:.0} min ({} shrinks)",
        bytes / MIB,
        vitals::history::DEFAULT_MEMORY_LIMIT as f64 / MIB,
        (rss() - before) / MIB,
        disk_bytes(&dir) as f64 / MIB,
        minutes[0],
        minutes[1],
        minutes[2],
        minutes[3],
        stats.shrinks
    );
    // A query reaching past what is resident reads the level's files.
    let now = history.newest_unix_ms().unwrap();
    for (name, agg) in [
        ("counter_3_total", Aggregation::Rate),
        ("histogram_3_seconds", Aggregation::P95),
    ] {
        let q = Query::new(name, agg)
            .label("id", "7")
            .range(now - 6 * 3_600_000, now + 1)
            .level(Level::Minute);
        let start = std::time::Instant::now();
        let points = history.query(&q).unwrap().series[0].points.len();
        println!(
            "history, persisted: 6 h of {name} {} at 1 min ({points} points, all but the resident \
             {:.0} min from disk): {:.1} ms",
            agg.as_str(),
            minutes[1],
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    drop(history);
    let _ = std::fs::remove_dir_all(&dir);
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
