//! What reopening a persisted history costs: time, memory counted by the
//! store, and the process's resident and peak memory.
//!
//! `build` writes a store of 130 series (100 counters, 20 gauges and 10
//! histograms with lifetime buckets) fed every 10 s of a manual clock for
//! a number of days; `reopen` builds a `History` on it, in a fresh process
//! so that the peak memory is the reopen's own, and asks one query that
//! reaches past what memory holds.
//!
//! ```text
//! cargo run --release --example history_reopen -- build /tmp/store 7
//! cargo run --release --example history_reopen -- reopen /tmp/store 4
//! ```
//!
//! The last argument of `reopen` is the memory limit in MiB (default: the
//! history's default limit).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vitals::history::{Aggregation, History, Level, Query};
use vitals::{ManualClock, MetricsCollector};

const MIB: f64 = 1048576.0;

fn main() -> Result<(), vitals::Error> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: history_reopen build DIR DAYS | reopen DIR [LIMIT_MIB]";
    let (Some(mode), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        return Ok(());
    };
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    match mode.as_str() {
        "build" => build(Path::new(dir), number(3).unwrap_or(7)),
        "reopen" => reopen(Path::new(dir), number(3)),
        _ => {
            eprintln!("{usage}");
            Ok(())
        }
    }
}

fn build(dir: &Path, days: u64) -> Result<(), vitals::Error> {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let history = History::builder().persist(dir).build()?;
    let counters: Vec<_> = (0..100)
        .map(|i| {
            let name = format!("requests_{}_total", i / 10);
            metrics.counter(&name, &[("id", &(i % 10).to_string())])
        })
        .collect();
    let gauges: Vec<_> = (0..20)
        .map(|i| metrics.gauge("queue_depth", &[("queue", &i.to_string())]))
        .collect();
    let histograms: Vec<_> = (0..10)
        .map(|i| metrics.histogram("latency_seconds", &[("route", &i.to_string())]))
        .collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let ticks = days * 8640;
    for tick in 0..ticks {
        for (i, c) in counters.iter().enumerate() {
            c.increment(i as u64 % 7 + 1);
        }
        for g in &gauges {
            g.set((next() * 100.0).floor());
        }
        for h in &histograms {
            for _ in 0..20 {
                // Log-uniform over 1 ms .. 1 s.
                h.record(10f64.powf(next() * 3.0) / 1000.0);
            }
        }
        clock.advance(Duration::from_secs(10));
        history.ingest(&metrics.snapshot())?;
        if tick % 8640 == 8639 {
            eprintln!("day {} written", tick / 8640 + 1);
        }
    }
    println!(
        "built {days} days of 130 series in {}: {:.0} MiB on disk",
        dir.display(),
        disk_bytes(dir) as f64 / MIB
    );
    Ok(())
}

fn reopen(dir: &Path, limit_mib: Option<u64>) -> Result<(), vitals::Error> {
    let rss_before = status_kib("VmRSS:");
    let mut builder = History::builder().persist(dir);
    if let Some(mib) = limit_mib {
        builder = builder.memory_limit(usize::try_from(mib << 20).unwrap_or(usize::MAX));
    }
    let start = Instant::now();
    let history = builder.build()?;
    let took = start.elapsed();
    let stats = history.stats();
    let limit = history.memory_limit().unwrap_or(0) as f64 / MIB;
    println!(
        "reopened {:.0} MiB on disk in {:.2} s: {:.1} MiB counted (limit {limit:.0} MiB), \
         process RSS {:.0} MiB (grew {:.0} MiB), peak {:.0} MiB; {} series, points {:?}, \
         resident spans (min) {:?}",
        disk_bytes(dir) as f64 / MIB,
        took.as_secs_f64(),
        stats.memory_bytes as f64 / MIB,
        status_kib("VmRSS:") / 1024.0,
        (status_kib("VmRSS:") - rss_before) / 1024.0,
        status_kib("VmHWM:") / 1024.0,
        stats.series,
        stats.points,
        stats.resident_ms.map(|ms| ms / 60_000)
    );
    // A day of one counter at 5 min, from three days back: from the files.
    if let Some(now) = history.newest_unix_ms().or_else(|| {
        let q = Query::new("requests_3_total", Aggregation::Sum)
            .label("id", "7")
            .level(Level::Raw);
        let result = history.query(&q).ok()?;
        result
            .series
            .first()?
            .points
            .last()
            .map(|p| p.timestamp_unix_ms)
    }) {
        let day = 86_400_000;
        let q = Query::new("requests_3_total", Aggregation::Rate)
            .label("id", "7")
            .level(Level::FiveMinutes)
            .range(now.saturating_sub(3 * day), now.saturating_sub(2 * day));
        let start = Instant::now();
        let result = history.query(&q)?;
        let points = result.series.first().map_or(0, |s| s.points.len());
        let rate = result
            .series
            .first()
            .and_then(|s| s.points.first())
            .map_or(f64::NAN, |p| p.value);
        println!(
            "a day at 5 min from three days back: {points} points (first rate {rate:.2}/s) in {:.1} ms",
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// A field of `/proc/self/status`, KiB (Linux; 0 elsewhere).
fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        total += if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}
