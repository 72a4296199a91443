//! The system and process plug-ins report plausible values on this machine,
//! and no CPU figure before they have a baseline.
#![cfg(feature = "system")]

use std::thread;
use std::time::{Duration, Instant};

use vitals::collectors::{ProcessCollector, SystemCollector};
use vitals::plugin::{PluginStatus, SampleKind};
use vitals::{Collector, MetricsCollector, Samples};

/// sysinfo's minimum CPU update interval is 200 ms or less on every OS it
/// supports; waiting a little longer is always enough for a second reading.
const BASELINE_WAIT: Duration = Duration::from_millis(300);

fn collect(plugin: &dyn Collector) -> Samples {
    let mut out = Samples::new();
    plugin.collect(&mut out).unwrap();
    out
}

fn value(out: &Samples, name: &str) -> Option<f64> {
    out.as_slice()
        .iter()
        .find(|s| &*s.name == name)
        .map(|s| s.value)
}

fn cores() -> f64 {
    thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// Keeps one core busy for a while, so that CPU figures have something to see.
fn spin(for_: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < for_ {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

#[test]
fn system_reports_memory_uptime_and_cpu_after_a_baseline() {
    let system = SystemCollector::new().per_core(true);
    assert!(system.is_available());
    let first = collect(&system);
    assert_eq!(
        value(&first, "system_cpu_usage_percent"),
        None,
        "no baseline yet"
    );
    let total = value(&first, "system_memory_total_bytes").unwrap();
    let used = value(&first, "system_memory_used_bytes").unwrap();
    let available = value(&first, "system_memory_available_bytes").unwrap();
    assert!(total > 0.0 && used > 0.0 && used <= total);
    assert!(available > 0.0 && available <= total);
    assert!(value(&first, "system_uptime_seconds").unwrap() > 0.0);
    assert!(value(&first, "system_cpu_cores").unwrap() >= 1.0);
    assert!(value(&first, "system_network_received_bytes_total").is_some());
    if cfg!(unix) {
        assert!(value(&first, "system_load1").unwrap() >= 0.0);
    }
    let rx = first
        .as_slice()
        .iter()
        .find(|s| &*s.name == "system_network_received_bytes_total")
        .unwrap();
    assert_eq!(rx.kind, SampleKind::Counter);

    thread::sleep(BASELINE_WAIT);
    spin(Duration::from_millis(50));
    let second = collect(&system);
    let cpu = value(&second, "system_cpu_usage_percent").unwrap();
    assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
    let per_core: Vec<f64> = second
        .as_slice()
        .iter()
        .filter(|s| &*s.name == "system_cpu_core_usage_percent")
        .map(|s| s.value)
        .collect();
    assert!(!per_core.is_empty());
    assert!(per_core.iter().all(|c| (0.0..=100.0).contains(c)));
}

#[test]
fn process_reports_itself_and_cpu_after_a_baseline() {
    let process = ProcessCollector::new();
    assert!(process.is_available());
    let first = collect(&process);
    assert_eq!(
        value(&first, "process_cpu_usage_percent"),
        None,
        "no baseline yet"
    );
    assert_eq!(
        value(&first, "process_pid"),
        Some(f64::from(std::process::id()))
    );
    assert!(value(&first, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(value(&first, "process_virtual_memory_bytes").unwrap() > 0.0);
    assert!(value(&first, "process_uptime_seconds").unwrap() > 0.0);
    let start = value(&first, "process_start_time_seconds").unwrap();
    assert!(
        start > 1.5e9,
        "start time {start} is not a plausible Unix time"
    );
    assert!(value(&first, "process_disk_read_bytes_total").unwrap() >= 0.0);
    if cfg!(target_os = "linux") {
        assert!(value(&first, "process_threads").unwrap() >= 1.0);
    }

    thread::sleep(BASELINE_WAIT);
    spin(Duration::from_millis(200));
    let second = collect(&process);
    let one_core = value(&second, "process_cpu_usage_percent").unwrap();
    assert!(
        (0.0..=100.0 * cores()).contains(&one_core),
        "cpu {one_core} of one core"
    );
    let machine = value(&second, "process_cpu_machine_percent").unwrap();
    assert!(
        (0.0..=100.0).contains(&machine),
        "cpu {machine} of the machine"
    );
    let cpu_seconds = value(&second, "process_cpu_seconds_total").unwrap();
    assert!(cpu_seconds >= value(&first, "process_cpu_seconds_total").unwrap());
}

#[test]
fn registered_polling_plugins_report_in_snapshots() {
    let metrics = MetricsCollector::new();
    let system = metrics.register(SystemCollector::new()).unwrap();
    let process = metrics.register(ProcessCollector::new()).unwrap();
    assert_eq!(system.interval(), Some(Duration::from_secs(1)));
    assert_eq!(process.interval(), Some(Duration::from_secs(1)));
    let snap = metrics.snapshot();
    for name in ["system", "process"] {
        let report = snap.plugin(name).unwrap();
        assert_eq!(report.status, PluginStatus::Ok, "{name}: {report:?}");
        assert!(report.stats.series > 0, "{name}: {report:?}");
    }
    assert!(snap.gauge("process_resident_memory_bytes", &[]).unwrap() > 0.0);
    assert!(snap.counter("process_cpu_seconds_total", &[]).unwrap() > 0.0);
}
