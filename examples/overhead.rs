//! Overhead of background collection: every built-in plug-in sampled once a
//! second, plus one snapshot a second as a reporter would take, for a
//! minute; then the CPU time this process spent doing it.
//!
//! Run with `cargo run --release --example overhead`; set
//! `VITALS_OVERHEAD_SECS` (default 60) for a shorter or longer run.

use std::thread;
use std::time::{Duration, Instant};

use vitals::collectors::{
    ApiCollector, CacheCollector, HealthCollector, Method, ProcessCollector, StageCollector,
    SystemCollector,
};
use vitals::{MetricsCollector, Snapshot};

fn cpu_seconds(snap: &Snapshot) -> f64 {
    snap.counter("process_cpu_seconds_total", &[])
        .unwrap_or(f64::NAN)
}

fn main() {
    let secs: u64 = std::env::var("VITALS_OVERHEAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    let metrics = MetricsCollector::new();
    let api = ApiCollector::new(&metrics);
    let caches = CacheCollector::new(&metrics);
    let stages = StageCollector::new(&metrics);
    let health = HealthCollector::new(&metrics);
    // Some state in each event plug-in, so that collection has work to do.
    for i in 0..10 {
        let path = format!("/route/{i}");
        api.record_request(&path, Method::Get, 200, Duration::from_millis(i + 1));
        caches.cache(&format!("cache{i}")).hit();
        stages
            .stage(&format!("stage{i}"))
            .record(Duration::from_millis(i + 1), true);
    }
    health.dependency("db").success();

    let plugins = [
        metrics.register(api).unwrap(),
        metrics.register(caches).unwrap(),
        metrics.register(stages).unwrap(),
        metrics.register(health).unwrap(),
        metrics.register(SystemCollector::new()).unwrap(),
        metrics.register(ProcessCollector::new()).unwrap(),
    ];
    for plugin in &plugins {
        plugin.set_interval(Some(Duration::from_secs(1))).unwrap();
    }
    // The process plug-in reads its own CPU time; take it after start-up
    // (thread spawns, first readings) so that only steady state is counted.
    thread::sleep(Duration::from_millis(1500));
    let before = metrics.snapshot();
    let start = Instant::now();
    for _ in 0..secs {
        thread::sleep(Duration::from_secs(1));
        let _ = metrics.snapshot();
    }
    // Let the process plug-in take one more reading of its own.
    thread::sleep(Duration::from_millis(1100));
    let after = metrics.snapshot();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&after) - cpu_seconds(&before);
    let collections: u64 = after.plugins.iter().map(|p| p.stats.collections).sum();
    println!("plug-ins: {}", after.plugins.len());
    println!("collections: {collections} over {wall:.1} s");
    println!(
        "CPU time spent: {:.3} s ({:.3} % of one core; resolution 10 ms)",
        cpu,
        100.0 * cpu / wall
    );
    for p in &after.plugins {
        println!(
            "  {:<8} {:?}, last collection {:.1} µs",
            p.name,
            p.status,
            p.stats.last_duration_seconds.unwrap_or(0.0) * 1e6
        );
    }
}
