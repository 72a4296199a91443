//! The process plug-in: this process's CPU, memory, threads, disk traffic,
//! start time and uptime, through `sysinfo`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::error::Error;
use crate::plugin::{Collector, Samples};
use crate::unit::Unit;

use super::{describe_all, Description};

/// Every metric of the plug-in, its unit and help text.
const DESCRIPTIONS: [Description; 13] = [
    ("process_pid", None, "Process id."),
    (
        "process_cpu_seconds_total",
        Some(Unit::Seconds),
        "CPU time the process used, user and system.",
    ),
    (
        "process_cpu_usage_percent",
        None,
        "CPU the process used since the previous reading, in percent of one core.",
    ),
    (
        "process_cpu_machine_percent",
        None,
        "CPU the process used since the previous reading, in percent of the whole machine.",
    ),
    (
        "process_resident_memory_bytes",
        Some(Unit::Bytes),
        "Resident memory.",
    ),
    (
        "process_virtual_memory_bytes",
        Some(Unit::Bytes),
        "Virtual memory.",
    ),
    ("process_threads", None, "Threads of the process."),
    (
        "process_disk_read_bytes_total",
        Some(Unit::Bytes),
        "Bytes the process read from storage.",
    ),
    (
        "process_disk_written_bytes_total",
        Some(Unit::Bytes),
        "Bytes the process wrote to storage.",
    ),
    (
        "process_disk_interval_read_bytes",
        Some(Unit::Bytes),
        "Bytes read from storage since the previous reading.",
    ),
    (
        "process_disk_interval_written_bytes",
        Some(Unit::Bytes),
        "Bytes written to storage since the previous reading.",
    ),
    (
        "process_start_time_seconds",
        Some(Unit::Seconds),
        "Start time of the process since the Unix epoch.",
    ),
    (
        "process_uptime_seconds",
        Some(Unit::Seconds),
        "Time since the process started.",
    ),
];

/// The process plug-in (registered name `process`) for the current
/// process, sampled in the background every second by default.
///
/// It keeps one `sysinfo::System` and refreshes only this process (CPU
/// time, memory, disk counters, threads). On Linux, after the first
/// reading, it reads `/proc/self` directly instead: sysinfo's refresh of one
/// process walks all of `/proc`, which costs more than the rest of the
/// plug-ins together. CPU usage is the CPU time spent
/// between two readings divided by the wall time between them, so it needs
/// a baseline: the first collection reports no CPU usage (not 0 %), and a
/// collection sooner than `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL` after the
/// last reading repeats it.
///
/// Samples: `process_pid`, `process_cpu_seconds_total`,
/// `process_cpu_usage_percent` (of one core: up to 100 × cores),
/// `process_cpu_machine_percent` (of the whole machine: 0–100),
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_threads` (Linux), `process_disk_read_bytes_total`,
/// `process_disk_written_bytes_total`, `process_disk_interval_read_bytes`
/// and `process_disk_interval_written_bytes` (since the previous
/// collection), `process_start_time_seconds` (Unix time) and
/// `process_uptime_seconds`; each described with a help text and unit.
///
/// ```
/// use vitals::collectors::ProcessCollector;
/// use vitals::{Collector, Samples};
///
/// let process = ProcessCollector::new();
/// let mut out = Samples::new();
/// process.collect(&mut out).unwrap();
/// let rss = out.as_slice().iter().find(|s| &*s.name == "process_resident_memory_bytes");
/// assert!(rss.unwrap().value > 0.0);
/// ```
#[derive(Debug)]
pub struct ProcessCollector {
    pid: Option<Pid>,
    cores: usize,
    state: Mutex<ProcessState>,
}

struct ProcessState {
    system: System,
    /// The previous CPU reading: when, and CPU milliseconds spent by then.
    cpu_base: Option<(Instant, u64)>,
    /// The latest CPU usage, in percent of one core.
    cpu_percent: Option<f64>,
    /// Disk byte totals at the previous collection.
    disk_before: Option<(u64, u64)>,
    /// Unix time the process started (whole seconds), from the first reading.
    start_time: Option<u64>,
}

impl std::fmt::Debug for ProcessState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessState")
            .field("cpu_percent", &self.cpu_percent)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    /// A process plug-in for the current process.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.register(vitals::collectors::ProcessCollector::new()).unwrap();
    /// let pid = metrics.snapshot().gauge("process_pid", &[]);
    /// assert_eq!(pid, Some(f64::from(std::process::id())));
    /// ```
    pub fn new() -> Self {
        ProcessCollector {
            pid: sysinfo::get_current_pid().ok(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            state: Mutex::new(ProcessState {
                system: System::new(),
                cpu_base: None,
                cpu_percent: None,
                disk_before: None,
                start_time: None,
            }),
        }
    }
}

impl Collector for ProcessCollector {
    fn name(&self) -> &str {
        "process"
    }

    fn is_available(&self) -> bool {
        sysinfo::IS_SUPPORTED_SYSTEM && self.pid.is_some()
    }

    fn default_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        let pid = self
            .pid
            .ok_or_else(|| Error::Collection("the current pid is unknown here".into()))?;
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let figures = match st.start_time {
            Some(_) => fast_reading().map_or_else(|| st.sysinfo_reading(pid), Ok)?,
            None => st.sysinfo_reading(pid)?,
        };
        let start_time = st.start_time.unwrap_or(0);
        let now = Instant::now();

        match st.cpu_base {
            None => st.cpu_base = Some((now, figures.cpu_ms)),
            Some((then, base_ms)) => {
                let wall = now.duration_since(then);
                if wall >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
                    let spent = figures.cpu_ms.saturating_sub(base_ms) as f64 / 1000.0;
                    st.cpu_percent = Some(100.0 * spent / wall.as_secs_f64());
                    st.cpu_base = Some((now, figures.cpu_ms));
                }
            }
        }
        let (read_before, written_before) = st
            .disk_before
            .unwrap_or((figures.read_bytes, figures.written_bytes));
        st.disk_before = Some((figures.read_bytes, figures.written_bytes));

        describe_all(out, &DESCRIPTIONS)?;
        out.gauge("process_pid", &[], f64::from(pid.as_u32()))?;
        out.counter(
            "process_cpu_seconds_total",
            &[],
            figures.cpu_ms as f64 / 1000.0,
        )?;
        if let Some(percent) = st.cpu_percent {
            let cores = self.cores as f64;
            let percent = percent.clamp(0.0, 100.0 * cores);
            out.gauge("process_cpu_usage_percent", &[], percent)?;
            out.gauge("process_cpu_machine_percent", &[], percent / cores)?;
        }
        out.gauge(
            "process_resident_memory_bytes",
            &[],
            figures.resident_bytes as f64,
        )?;
        out.gauge(
            "process_virtual_memory_bytes",
            &[],
            figures.virtual_bytes as f64,
        )?;
        if let Some(threads) = figures.threads {
            out.gauge("process_threads", &[], threads as f64)?;
        }
        out.counter(
            "process_disk_read_bytes_total",
            &[],
            figures.read_bytes as f64,
        )?;
        out.counter(
            "process_disk_written_bytes_total",
            &[],
            figures.written_bytes as f64,
        )?;
        out.gauge(
            "process_disk_interval_read_bytes",
            &[],
            figures.read_bytes.saturating_sub(read_before) as f64,
        )?;
        out.gauge(
            "process_disk_interval_written_bytes",
            &[],
            figures.written_bytes.saturating_sub(written_before) as f64,
        )?;
        out.gauge("process_start_time_seconds", &[], start_time as f64)?;
        // sysinfo's start time is in whole seconds; the wall clock keeps the
        // fraction, so a young process does not read an uptime of 0.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        out.gauge(
            "process_uptime_seconds",
            &[],
            (since_epoch - start_time as f64).max(0.0),
        )?;
        Ok(())
    }
}

/// One reading of the figures the plug-in reports.
struct Figures {
    cpu_ms: u64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: Option<u64>,
    read_bytes: u64,
    written_bytes: u64,
}

#[cfg(target_os = "linux")]
fn fast_reading() -> Option<Figures> {
    super::procfs::read_self().map(|f| Figures {
        cpu_ms: f.cpu_ms,
        resident_bytes: f.resident_bytes,
        virtual_bytes: f.virtual_bytes,
        threads: Some(f.threads),
        read_bytes: f.read_bytes,
        written_bytes: f.written_bytes,
    })
}

#[cfg(not(target_os = "linux"))]
fn fast_reading() -> Option<Figures> {
    None
}

impl ProcessState {
    /// A reading through sysinfo, refreshing this process only.
    fn sysinfo_reading(&mut self, pid: Pid) -> Result<Figures, Error> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_disk_usage()
                .with_tasks(),
        );
        let process = self
            .system
            .process(pid)
            .ok_or_else(|| Error::Collection(format!("process {pid} not found")))?;
        self.start_time = Some(process.start_time());
        let disk = process.disk_usage();
        Ok(Figures {
            cpu_ms: process.accumulated_cpu_time(),
            resident_bytes: process.memory(),
            virtual_bytes: process.virtual_memory(),
            threads: process.tasks().map(|t| t.len() as u64),
            read_bytes: disk.total_read_bytes,
            written_bytes: disk.total_written_bytes,
        })
    }
}
