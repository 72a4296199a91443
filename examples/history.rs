//! History from a day of snapshots: a simulated service writes a JSON-Lines
//! file every 10 s of a manual clock (a day takes a few seconds), the file
//! is replayed into a `History`, and a few queries print as text charts.
//!
//! ```text
//! cargo run --release --example history
//! ```

use std::sync::Arc;
use std::time::Duration;

use vitals::collectors::ProcessCollector;
use vitals::export::{Exporter, JsonLinesExporter};
use vitals::history::{Aggregation, History, Level, Query, QueryResult};
use vitals::{ManualClock, MetricsCollector};

/// xorshift64*: deterministic traffic.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn main() -> Result<(), vitals::Error> {
    let dir = std::env::temp_dir().join(format!("vitals-history-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| vitals::Error::io("create", &dir, e))?;
    let path = dir.join("metrics.jsonl");

    // A day of a small web service, one snapshot every 10 s.
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    // The real process plug-in: its CPU and memory are series like any
    // other, so the history keeps them (here a simulated day passes in a
    // few real seconds, so they barely move).
    metrics.register(ProcessCollector::new())?;
    let mut exporter = JsonLinesExporter::builder(&path)
        .clock(clock.clone())
        .build()?;
    let mut rng = Rng(42);
    let routes = ["/", "/search", "/checkout"];
    for tick in 0..8640u32 {
        let hour = f64::from(tick) / 360.0;
        // Traffic follows the day: quiet at night, busy in the afternoon.
        let load = 1.0 + (std::f64::consts::PI * (hour - 4.0) / 12.0).sin().max(-0.8);
        for (i, route) in routes.iter().enumerate() {
            let requests = (20.0 * load / (i + 1) as f64) as u64;
            metrics
                .counter("http_requests_total", &[("route", route)])
                .increment(requests);
            let latency = metrics.histogram("http_request_duration_seconds", &[("route", route)]);
            for _ in 0..requests {
                // Slower under load, with a tail.
                let base = 0.010 * (i + 1) as f64 * (0.5 + load);
                let tail = if rng.next_f64() < 0.02 { 10.0 } else { 1.0 };
                latency.record(base * (0.5 + rng.next_f64()) * tail);
            }
        }
        clock.advance(Duration::from_secs(10));
        exporter.export(&metrics.snapshot())?;
    }
    drop(exporter);

    let started = std::time::Instant::now();
    let history = History::new();
    let report = history.replay_files(&path)?;
    let elapsed = started.elapsed();
    println!(
        "replayed {} snapshots in {:.2} s ({:.0} lines/s), {} lines skipped; {} series, {:.1} MiB in memory\n",
        report.snapshots,
        elapsed.as_secs_f64(),
        report.snapshots as f64 / elapsed.as_secs_f64(),
        report.skipped.len(),
        history.stats().series,
        history.memory_bytes() as f64 / 1048576.0
    );

    let now = history.newest_unix_ms().unwrap_or(0);
    let day = 24 * 3_600_000;
    let rate = Query::new("http_requests_total", Aggregation::Rate)
        .range(now - day, now + 1)
        .max_points(48);
    chart(
        "requests per second, by route (30 min steps)",
        &history.query(&rate)?,
    );
    let p95 = Query::new("http_request_duration_seconds", Aggregation::P95)
        .label("route", "/checkout")
        .range(now - day, now + 1)
        .max_points(24);
    chart(
        "p95 latency of /checkout, seconds (1 h steps)",
        &history.query(&p95)?,
    );
    let p99_6h = Query::new("http_request_duration_seconds", Aggregation::P99)
        .any_label("route")
        .range(now - day, now + 1)
        .level(Level::Hour)
        .max_points(4);
    chart(
        "p99 latency, seconds (6 h steps, merged from hourly buckets)",
        &history.query(&p99_6h)?,
    );
    let cpu = Query::new("process_cpu_seconds_total", Aggregation::Rate)
        .range(now - day, now + 1)
        .max_points(48);
    chart(
        "process CPU, seconds per second (30 min steps)",
        &history.query(&cpu)?,
    );
    let memory = Query::new("process_resident_memory_bytes", Aggregation::Max)
        .range(now - day, now + 1)
        .max_points(48);
    chart(
        "resident memory, bytes (max per 30 min)",
        &history.query(&memory)?,
    );
    if let Some(latest) = history.latest("http_requests_total", &[("route", "/")]) {
        println!(
            "latest: {}",
            serde_json::to_string(&latest).unwrap_or_default()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One sparkline per series, with its range.
fn chart(title: &str, result: &QueryResult) {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    println!("{title} [level {}]", result.level.as_str());
    for series in &result.series {
        let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let line: String = values
            .iter()
            .map(|v| {
                let x = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                BARS[((x * 7.0).round() as usize).min(7)]
            })
            .collect();
        println!(
            "  {:<20} {line}  {lo:.4} .. {hi:.4}",
            series.labels.to_string()
        );
    }
    println!();
}
