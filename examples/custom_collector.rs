//! A custom plug-in in a few lines: report the length of a work queue and
//! the age of its oldest item. Then the runner's behaviour with a plug-in
//! that hangs: the snapshot still comes back on time.
//!
//! Run with `cargo run --release --example custom_collector`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vitals::{Collector, Error, MetricsCollector, Samples};

/// The plug-in: a name and a `collect` that adds samples.
struct QueueCollector {
    queue: Arc<Mutex<VecDeque<Instant>>>,
}

impl Collector for QueueCollector {
    fn name(&self) -> &str {
        "work_queue"
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        let queue = self
            .queue
            .lock()
            .map_err(|_| Error::Collection("queue lock poisoned".into()))?;
        out.gauge(
            "work_queue_length",
            &[("queue", "jobs")],
            queue.len() as f64,
        )?;
        let oldest = queue.front().map_or(0.0, |t| t.elapsed().as_secs_f64());
        out.gauge(
            "work_queue_oldest_age_seconds",
            &[("queue", "jobs")],
            oldest,
        )
    }
}

/// A plug-in stuck on a dead resource.
struct Hangs;

impl Collector for Hangs {
    fn name(&self) -> &str {
        "nfs_mount"
    }

    fn collect(&self, _: &mut Samples) -> Result<(), Error> {
        std::thread::sleep(Duration::from_secs(2));
        Ok(())
    }
}

fn main() {
    let metrics = MetricsCollector::new();
    let queue = Arc::new(Mutex::new(VecDeque::new()));
    metrics
        .register(QueueCollector {
            queue: Arc::clone(&queue),
        })
        .unwrap();
    let hang = metrics.register(Hangs).unwrap();
    hang.set_deadline(Duration::from_millis(100)).unwrap();

    for _ in 0..5 {
        queue.lock().unwrap().push_back(Instant::now());
        std::thread::sleep(Duration::from_millis(30));
    }

    let start = Instant::now();
    let snap = metrics.snapshot();
    println!(
        "snapshot took {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    for report in &snap.plugins {
        println!(
            "{}: {:?}, {} series",
            report.name, report.status, report.stats.series
        );
    }
    // A plug-in's values are ordinary series.
    for g in &snap.gauges {
        println!("  {}{} = {:.3}", g.name, g.labels, g.value);
    }
    // What a JSON-Lines reader sees of the stuck plug-in.
    println!(
        "{}",
        serde_json::to_string(&snap.plugin("nfs_mount")).unwrap()
    );
}
