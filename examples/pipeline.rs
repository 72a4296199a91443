//! A three-stage data pipeline timed with the stage plug-in, with a lookup
//! cache tracked by the cache plug-in; prints what they measured.
//!
//! Run with `cargo run --release --example pipeline`.

use std::collections::HashMap;
use std::time::Duration;

use vitals::collectors::{CacheCollector, StageCollector};
use vitals::MetricsCollector;

fn main() {
    let metrics = MetricsCollector::new();
    let stages = StageCollector::new(&metrics);
    let caches = CacheCollector::new(&metrics);
    metrics.register(stages.clone()).unwrap();
    metrics.register(caches.clone()).unwrap();

    let (parse, enrich, write) = (
        stages.stage("parse"),
        stages.stage("enrich"),
        stages.stage("write"),
    );
    let lookups = caches.cache("customer_lookup");
    let mut cache: HashMap<u64, String> = HashMap::new();
    const CAPACITY: usize = 64;

    let mut written = 0u64;
    for record in 0..20_000u64 {
        // Parse: one in 500 records is malformed.
        let parsed: Result<u64, String> = parse.run(|| {
            if record % 500 == 499 {
                Err(format!("record {record}: bad field"))
            } else {
                Ok(record % 200)
            }
        });
        let Ok(customer) = parsed else { continue };

        // Enrich: a cache in front of a slow lookup, evicting when full.
        let run = enrich.start();
        if cache.contains_key(&customer) {
            lookups.hit();
        } else {
            lookups.miss();
            std::thread::sleep(Duration::from_micros(20));
            if cache.len() >= CAPACITY {
                let victim = *cache.keys().next().unwrap();
                cache.remove(&victim);
                lookups.evicted(1);
            }
            cache.insert(customer, format!("customer-{customer}"));
        }
        lookups.set_entries(cache.len() as u64);
        lookups.set_size_bytes(cache.values().map(|v| v.len() as u64 + 8).sum());
        run.finish();

        // Write.
        write.record(Duration::from_micros(5 + record % 7), true);
        written += 1;
    }

    let snap = metrics.snapshot();
    println!("records written: {written}");
    println!(
        "{:<7} {:>6} {:>6} {:>10} {:>10} {:>10} {:>8}",
        "stage", "runs", "errors", "avg µs", "p99 µs", "max µs", "runs/s"
    );
    for name in ["parse", "enrich", "write"] {
        let s = [("stage", name)];
        let h = snap.histogram("stage_duration_seconds", &s).unwrap();
        println!(
            "{:<7} {:>6} {:>6} {:>10.2} {:>10.2} {:>10.2} {:>8.0}",
            name,
            h.lifetime.count,
            snap.counter("stage_errors_total", &s).unwrap_or(0.0),
            snap.gauge("stage_duration_avg_seconds", &s).unwrap_or(0.0) * 1e6,
            h.window.quantiles.map_or(0.0, |q| q.p99) * 1e6,
            h.lifetime.max.unwrap_or(0.0) * 1e6,
            snap.gauge("stage_throughput_per_second", &s).unwrap_or(0.0),
        );
    }
    let c = [("cache", "customer_lookup")];
    println!(
        "cache: {} hits, {} misses, {} evictions, hit ratio {:.1}%, {} entries, {} bytes",
        snap.counter("cache_hits_total", &c).unwrap_or(0.0),
        snap.counter("cache_misses_total", &c).unwrap_or(0.0),
        snap.counter("cache_evictions_total", &c).unwrap_or(0.0),
        100.0 * snap.gauge("cache_lifetime_hit_ratio", &c).unwrap_or(0.0),
        snap.gauge("cache_entries", &c).unwrap_or(0.0),
        snap.gauge("cache_size_bytes", &c).unwrap_or(0.0),
    );
}
