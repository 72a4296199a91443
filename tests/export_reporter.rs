//! The reporter through the public API: final snapshot on shutdown and on
//! drop, nothing lost under concurrent updates, failing and panicking
//! exporters isolated and counted.

mod common;
use common::TempDir;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vitals::export::{
    Exporter, JsonLinesExporter, JsonLinesReader, Reporter, EXPORT_ERRORS_METRIC,
};
use vitals::{Error, MetricsCollector, Snapshot};

fn snapshots(path: &Path) -> Vec<Snapshot> {
    let mut reader = JsonLinesReader::open(path).unwrap();
    let snaps = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert!(reader.skipped().is_empty(), "{:?}", reader.skipped());
    snaps
}

#[test]
fn shutdown_writes_a_final_snapshot_at_once() {
    let dir = TempDir::new("shutdown");
    let path = dir.path().join("m.jsonl");
    let metrics = MetricsCollector::new();
    // An hour-long interval: only the final snapshot can be written, and
    // shutdown must not wait for the tick.
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_secs(3600))
        .exporter(JsonLinesExporter::new(&path).unwrap())
        .start()
        .unwrap();
    metrics.counter("jobs_total", &[]).increment(7);
    let status = reporter.shutdown();
    assert_eq!(status.ticks, 1);
    assert_eq!(status.exporters[0].exported, 1);
    let snaps = snapshots(&path);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].counter("jobs_total", &[]), Some(7.0));
}

#[test]
fn dropping_the_reporter_also_writes_the_final_snapshot() {
    let dir = TempDir::new("drop");
    let path = dir.path().join("m.jsonl");
    let metrics = MetricsCollector::new();
    {
        let _reporter = Reporter::builder(&metrics)
            .interval(Duration::from_secs(3600))
            .exporter(JsonLinesExporter::new(&path).unwrap())
            .start()
            .unwrap();
        metrics.gauge("level", &[]).set(2.5);
    }
    let snaps = snapshots(&path);
    assert_eq!(snaps.last().unwrap().gauge("level", &[]), Some(2.5));
}

#[test]
fn concurrent_updates_while_the_reporter_runs_lose_nothing() {
    let dir = TempDir::new("concurrent");
    let path = dir.path().join("m.jsonl");
    let metrics = MetricsCollector::new();
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_millis(2))
        .exporter(JsonLinesExporter::new(&path).unwrap())
        .start()
        .unwrap();
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 50_000;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let metrics = metrics.clone();
            std::thread::spawn(move || {
                let shard = t.to_string();
                let total = metrics.counter("ops_total", &[]);
                let mine = metrics.counter("ops_by_thread_total", &[("thread", &shard)]);
                let sizes = metrics.histogram("op_size_bytes", &[]);
                for i in 0..PER_THREAD {
                    total.inc();
                    mine.inc();
                    sizes.record((i % 1000) as f64);
                    if i % 10_000 == 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let status = reporter.shutdown();
    assert!(status.exporters[0].last_error.is_none());

    let snaps = snapshots(&path);
    assert!(!snaps.is_empty());
    let last = snaps.last().unwrap();
    assert_eq!(
        last.counter("ops_total", &[]),
        Some((THREADS * PER_THREAD) as f64)
    );
    for t in 0..THREADS {
        let shard = t.to_string();
        assert_eq!(
            last.counter("ops_by_thread_total", &[("thread", &shard)]),
            Some(PER_THREAD as f64)
        );
    }
    let sizes = last.histogram("op_size_bytes", &[]).unwrap();
    assert_eq!(sizes.lifetime.count, THREADS * PER_THREAD);
    // Totals never go backwards from one line to the next.
    let totals: Vec<f64> = snaps
        .iter()
        .map(|s| s.counter("ops_total", &[]).unwrap_or(0.0))
        .collect();
    assert!(totals.windows(2).all(|w| w[0] <= w[1]), "{totals:?}");
}

/// Fails (or panics) on demand, remembering what it saw.
struct Scripted {
    name: &'static str,
    panic: bool,
    failing: Arc<Mutex<bool>>,
    seen: Arc<Mutex<u32>>,
}

impl Exporter for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn export(&mut self, _: &Snapshot) -> Result<(), Error> {
        *self.seen.lock().unwrap() += 1;
        if !*self.failing.lock().unwrap() {
            return Ok(());
        }
        if self.panic {
            panic!("exporter {} exploded", self.name);
        }
        Err(Error::Export {
            exporter: self.name.into(),
            message: "disk on fire".into(),
        })
    }
}

#[test]
fn failing_and_panicking_exporters_are_reported_and_do_not_stop_the_others() {
    let metrics = MetricsCollector::new();
    let failing = Arc::new(Mutex::new(true));
    let seen: Vec<Arc<Mutex<u32>>> = (0..3).map(|_| Arc::new(Mutex::new(0))).collect();
    let make = |name, panic, i: usize, failing: &Arc<Mutex<bool>>| Scripted {
        name,
        panic,
        failing: Arc::clone(failing),
        seen: Arc::clone(&seen[i]),
    };
    let healthy_switch = Arc::new(Mutex::new(false));
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_secs(3600))
        .max_backoff_ticks(1) // retry every tick
        .exporter(make("broken", false, 0, &failing))
        .exporter(make("panicky", true, 1, &failing))
        .exporter(make("healthy", false, 2, &healthy_switch))
        .start()
        .unwrap();
    for _ in 0..3 {
        reporter.tick_now();
    }
    let status = reporter.status();
    assert_eq!(status.ticks, 3);
    assert_eq!(status.exporters[0].failed, 3);
    assert_eq!(status.exporters[1].failed, 3);
    assert_eq!(status.exporters[2].exported, 3);
    let panic_error = status.exporters[1].last_error.clone().unwrap();
    assert!(
        panic_error.to_string().contains("exploded"),
        "{panic_error}"
    );
    let snap = metrics.snapshot();
    assert_eq!(
        snap.counter(EXPORT_ERRORS_METRIC, &[("exporter", "broken")]),
        Some(3.0)
    );
    assert_eq!(
        snap.counter(EXPORT_ERRORS_METRIC, &[("exporter", "panicky")]),
        Some(3.0)
    );

    // Fixed: the next tick succeeds and clears the error.
    *failing.lock().unwrap() = false;
    reporter.tick_now();
    let status = reporter.status();
    assert!(status.exporters[0].last_error.is_none());
    assert_eq!(status.exporters[1].exported, 1);
    assert!(status.exporters[1].latest_error_ever.is_some());
    let final_status = reporter.shutdown();
    assert_eq!(*seen[2].lock().unwrap(), 5);
    assert_eq!(final_status.exporters[2].exported, 5);
}

#[test]
fn a_zero_interval_is_rejected() {
    let metrics = MetricsCollector::new();
    let err = Reporter::builder(&metrics)
        .interval(Duration::ZERO)
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
    let err = Reporter::builder(&metrics)
        .max_backoff_ticks(0)
        .start()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
}
