use std::sync::Arc;
use std::time::{Duration, Instant};
use vitals::history::{History, Level};
use vitals::{ManualClock, MetricsCollector};

fn main() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).lifetime_buckets(true).build();
    let mut counters = Vec::new();
    let mut histograms = Vec::new();
    for name in 0..10 {
        for id in 0..100 {
            counters.push(metrics.counter(&format!("counter_{name}_total"), &[("id", &id.to_string())]));
        }
        for id in 0..10 {
            histograms.push(metrics.histogram(&format!("histogram_{name}_seconds"), &[("id", &id.to_string())]));
        }
    }
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut snaps = Vec::new();
    for _ in 0..400 {
        for (i, c) in counters.iter().enumerate() {
            c.increment(i as u64 % 7 + 1);
        }
        for h in &histograms {
            for _ in 0..100 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                h.record(10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 4.0) / 1e4);
            }
        }
        clock.advance(Duration::from_secs(10));
        snaps.push(metrics.snapshot());
    }
    let only_counters = std::env::args().any(|a| a == "counters");
    if only_counters {
        for s in &mut snaps {
            s.histograms.clear();
        }
    }
    for _round in 0..5 {
        let history = History::builder().retention(Level::Raw, Duration::from_secs(3600)).build().unwrap();
        let t = Instant::now();
        for s in &snaps {
            history.ingest(s).unwrap();
        }
        println!("{:.3} ms per snapshot", t.elapsed().as_secs_f64() * 1e3 / snaps.len() as f64);
    }
}
