//! The process plug-in: this process's CPU, memory, threads, disk traffic,
//! start time and uptime, through `sysinfo`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::error::Error;
use crate::plugin::{Collector, Samples};

/// The process plug-in (registered name `process`) for the current
/// process, sampled in the background every second by default.
///
/// It keeps one `sysinfo::System` and refreshes only this process (CPU
/// time, memory, disk counters, threads). CPU usage is the CPU time spent
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
/// `process_disk_written_bytes_total`, `process_disk_read_bytes` and
/// `process_disk_written_bytes` (since the previous collection),
/// `process_start_time_seconds` (Unix time) and `process_uptime_seconds`.
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
    /// ```
    pub fn new() -> Self {
        ProcessCollector {
            pid: sysinfo::get_current_pid().ok(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            state: Mutex::new(ProcessState {
                system: System::new(),
                cpu_base: None,
                cpu_percent: None,
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
        let mut st = self.state.lock();
        let st = &mut *st;
        st.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .with_disk_usage()
                .with_tasks(),
        );
        let now = Instant::now();
        let process = st
            .system
            .process(pid)
            .ok_or_else(|| Error::Collection(format!("process {pid} not found")))?;
        let cpu_ms = process.accumulated_cpu_time();
        match st.cpu_base {
            None => st.cpu_base = Some((now, cpu_ms)),
            Some((then, base_ms)) => {
                let wall = now.duration_since(then);
                if wall >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
                    let spent = cpu_ms.saturating_sub(base_ms) as f64 / 1000.0;
                    st.cpu_percent = Some(100.0 * spent / wall.as_secs_f64());
                    st.cpu_base = Some((now, cpu_ms));
                }
            }
        }

        out.gauge("process_pid", &[], f64::from(pid.as_u32()))?;
        out.counter("process_cpu_seconds_total", &[], cpu_ms as f64 / 1000.0)?;
        if let Some(percent) = st.cpu_percent {
            let max = 100.0 * self.cores as f64;
            let percent = percent.clamp(0.0, max);
            out.gauge("process_cpu_usage_percent", &[], percent)?;
            out.gauge(
                "process_cpu_machine_percent",
                &[],
                percent / self.cores as f64,
            )?;
        }
        out.gauge(
            "process_resident_memory_bytes",
            &[],
            process.memory() as f64,
        )?;
        out.gauge(
            "process_virtual_memory_bytes",
            &[],
            process.virtual_memory() as f64,
        )?;
        if let Some(tasks) = process.tasks() {
            out.gauge("process_threads", &[], tasks.len() as f64)?;
        }
        let disk = process.disk_usage();
        out.counter(
            "process_disk_read_bytes_total",
            &[],
            disk.total_read_bytes as f64,
        )?;
        out.counter(
            "process_disk_written_bytes_total",
            &[],
            disk.total_written_bytes as f64,
        )?;
        out.gauge("process_disk_read_bytes", &[], disk.read_bytes as f64)?;
        out.gauge("process_disk_written_bytes", &[], disk.written_bytes as f64)?;
        out.gauge(
            "process_start_time_seconds",
            &[],
            process.start_time() as f64,
        )?;
        // sysinfo gives whole seconds, which reads 0 in a young process; the
        // wall clock minus the start time keeps the fraction.
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let uptime = (since_epoch - process.start_time() as f64).max(process.run_time() as f64);
        out.gauge("process_uptime_seconds", &[], uptime)?;
        Ok(())
    }
}
