//! The system plug-in: CPU, memory, swap, load, uptime and network totals of
//! the machine, through `sysinfo`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Networks, System};

use crate::error::Error;
use crate::plugin::{Collector, Samples};
use crate::unit::Unit;

use super::{describe_all, Description};

/// Every metric of the plug-in, its unit and help text.
const DESCRIPTIONS: [Description; 15] = [
    (
        "system_cpu_cores",
        None,
        "Logical CPU cores of the machine.",
    ),
    (
        "system_cpu_usage_percent",
        None,
        "CPU used on all cores since the previous reading, 0 to 100.",
    ),
    (
        "system_cpu_core_usage_percent",
        None,
        "CPU used on one core since the previous reading, 0 to 100.",
    ),
    (
        "system_memory_total_bytes",
        Some(Unit::Bytes),
        "Memory of the machine.",
    ),
    (
        "system_memory_used_bytes",
        Some(Unit::Bytes),
        "Memory in use.",
    ),
    (
        "system_memory_available_bytes",
        Some(Unit::Bytes),
        "Memory available to new programs.",
    ),
    ("system_swap_total_bytes", Some(Unit::Bytes), "Swap space."),
    (
        "system_swap_used_bytes",
        Some(Unit::Bytes),
        "Swap space in use.",
    ),
    ("system_load1", None, "Load average over 1 minute."),
    ("system_load5", None, "Load average over 5 minutes."),
    ("system_load15", None, "Load average over 15 minutes."),
    (
        "system_uptime_seconds",
        Some(Unit::Seconds),
        "Time since the machine booted.",
    ),
    (
        "system_boot_time_seconds",
        Some(Unit::Seconds),
        "Boot time of the machine since the Unix epoch.",
    ),
    (
        "system_network_received_bytes_total",
        Some(Unit::Bytes),
        "Bytes received on all interfaces.",
    ),
    (
        "system_network_transmitted_bytes_total",
        Some(Unit::Bytes),
        "Bytes sent on all interfaces.",
    ),
];

/// The system plug-in (registered name `system`), sampled in the background
/// every second by default.
///
/// It keeps one `sysinfo::System` between collections and refreshes only
/// what it reports (CPU usage, memory, network counters), never everything;
/// on Linux it reads network counts from `/proc/net/dev` in one file rather
/// than sysinfo's several files per interface.
/// CPU usage is the average since the previous CPU reading, and needs one:
/// the first collection only takes the baseline and reports no CPU samples
/// (not 0 %); a collection sooner than `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`
/// after the last reading repeats it.
///
/// Samples: `system_cpu_usage_percent` (0–100, all cores), optionally
/// `system_cpu_core_usage_percent{core}`, `system_cpu_cores`,
/// `system_memory_total_bytes`, `system_memory_used_bytes`,
/// `system_memory_available_bytes`, `system_swap_total_bytes`,
/// `system_swap_used_bytes`, `system_load1`, `system_load5`, `system_load15`
/// (Unix), `system_uptime_seconds`, `system_boot_time_seconds`,
/// `system_network_received_bytes_total` and
/// `system_network_transmitted_bytes_total` (all interfaces, loopback
/// included; an interface that goes away keeps what it counted, so the
/// totals never go down).
///
/// ```
/// use vitals::collectors::SystemCollector;
/// use vitals::{Collector, Samples};
///
/// let system = SystemCollector::new();
/// let mut out = Samples::new();
/// system.collect(&mut out).unwrap();
/// let total = out.as_slice().iter().find(|s| &*s.name == "system_memory_total_bytes");
/// assert!(total.unwrap().value > 0.0);
/// // The first reading is a baseline: no CPU figure yet.
/// assert!(!out.as_slice().iter().any(|s| &*s.name == "system_cpu_usage_percent"));
/// ```
#[derive(Debug)]
pub struct SystemCollector {
    per_core: bool,
    state: Mutex<SystemState>,
}

struct SystemState {
    system: System,
    networks: Networks,
    /// When CPU usage was last refreshed (the baseline of the next reading).
    cpu_read_at: Option<Instant>,
    /// The latest CPU figures: total and per core, in percent.
    cpu: Option<(f64, Vec<f64>)>,
    /// Read once: it does not change while the machine runs.
    boot_time: Option<u64>,
    /// Each interface's byte counts at the last reading.
    interfaces: HashMap<String, (u64, u64)>,
    /// Bytes received and transmitted, summed over interfaces.
    network: (u64, u64),
}

impl std::fmt::Debug for SystemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemState")
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

impl SystemState {
    /// Bytes received and transmitted over all interfaces. Each interface
    /// adds its whole count when first seen and then what it grew by; one
    /// that went away keeps what it added, and one whose counts restarted
    /// adds from zero, so the totals never go down.
    fn network_totals(&mut self) -> (u64, u64) {
        for (name, rx, tx) in self.interface_counts() {
            let before = self.interfaces.insert(name, (rx, tx));
            let (rx0, tx0) = before.unwrap_or((0, 0));
            let grew = |now: u64, then: u64| if now >= then { now - then } else { now };
            self.network.0 = self.network.0.saturating_add(grew(rx, rx0));
            self.network.1 = self.network.1.saturating_add(grew(tx, tx0));
        }
        self.network
    }

    fn interface_counts(&mut self) -> Vec<(String, u64, u64)> {
        #[cfg(target_os = "linux")]
        if let Some(counts) = super::procfs::read_net_dev() {
            return counts;
        }
        self.networks.refresh(false);
        self.networks
            .iter()
            .map(|(name, n)| (name.clone(), n.total_received(), n.total_transmitted()))
            .collect()
    }
}

impl Default for SystemCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemCollector {
    /// A system plug-in reporting total CPU usage (not per core).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.register(vitals::collectors::SystemCollector::new()).unwrap();
    /// let snap = metrics.snapshot();
    /// assert!(snap.gauge("system_cpu_cores", &[]).unwrap() >= 1.0);
    /// assert!(snap.gauge("system_memory_total_bytes", &[]).unwrap() > 0.0);
    /// ```
    pub fn new() -> Self {
        SystemCollector {
            per_core: false,
            // Empty until the first collection: construction stays cheap and
            // reads nothing the plug-in will not report.
            state: Mutex::new(SystemState {
                system: System::new(),
                networks: Networks::new(),
                cpu_read_at: None,
                cpu: None,
                boot_time: None,
                interfaces: HashMap::new(),
                network: (0, 0),
            }),
        }
    }

    /// Also reports each core's usage (`system_cpu_core_usage_percent{core}`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::collectors::SystemCollector;
    /// use vitals::{Collector, Samples};
    ///
    /// let system = SystemCollector::new().per_core(true);
    /// system.collect(&mut Samples::new()).unwrap(); // the CPU baseline
    /// std::thread::sleep(Duration::from_secs(1));
    /// let mut out = Samples::new();
    /// system.collect(&mut out).unwrap();
    /// let core0 = out.as_slice().iter().find(|s| &*s.name == "system_cpu_core_usage_percent");
    /// assert!((0.0..=100.0).contains(&core0.unwrap().value));
    /// ```
    pub fn per_core(mut self, per_core: bool) -> Self {
        self.per_core = per_core;
        self
    }
}

impl Collector for SystemCollector {
    fn name(&self) -> &str {
        "system"
    }

    fn is_available(&self) -> bool {
        sysinfo::IS_SUPPORTED_SYSTEM
    }

    fn default_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        let mut st = self.state.lock();
        let st = &mut *st;
        let cpu_due = st
            .cpu_read_at
            .is_none_or(|at| at.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        if cpu_due {
            if st.cpu_read_at.is_none() {
                // Lists the cores once; later reads refresh usage only.
                st.system
                    .refresh_cpu_list(CpuRefreshKind::nothing().with_cpu_usage());
            } else {
                st.system.refresh_cpu_usage();
                let total = f64::from(st.system.global_cpu_usage());
                let cores = st
                    .system
                    .cpus()
                    .iter()
                    .map(|c| f64::from(c.cpu_usage()))
                    .collect();
                st.cpu = Some((total, cores));
            }
            st.cpu_read_at = Some(Instant::now());
        }
        describe_all(out, &DESCRIPTIONS)?;
        out.gauge("system_cpu_cores", &[], st.system.cpus().len() as f64)?;
        if let Some((total, cores)) = &st.cpu {
            out.gauge("system_cpu_usage_percent", &[], total.clamp(0.0, 100.0))?;
            if self.per_core {
                for (i, usage) in cores.iter().enumerate() {
                    let core = i.to_string();
                    out.gauge(
                        "system_cpu_core_usage_percent",
                        &[("core", &core)],
                        usage.clamp(0.0, 100.0),
                    )?;
                }
            }
        }

        st.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let sys = &st.system;
        out.gauge("system_memory_total_bytes", &[], sys.total_memory() as f64)?;
        out.gauge("system_memory_used_bytes", &[], sys.used_memory() as f64)?;
        out.gauge(
            "system_memory_available_bytes",
            &[],
            sys.available_memory() as f64,
        )?;
        out.gauge("system_swap_total_bytes", &[], sys.total_swap() as f64)?;
        out.gauge("system_swap_used_bytes", &[], sys.used_swap() as f64)?;

        if cfg!(unix) {
            let load = System::load_average();
            out.gauge("system_load1", &[], load.one)?;
            out.gauge("system_load5", &[], load.five)?;
            out.gauge("system_load15", &[], load.fifteen)?;
        }
        out.gauge("system_uptime_seconds", &[], System::uptime() as f64)?;
        let boot = *st.boot_time.get_or_insert_with(System::boot_time);
        out.gauge("system_boot_time_seconds", &[], boot as f64)?;

        let (rx, tx) = st.network_totals();
        out.counter("system_network_received_bytes_total", &[], rx as f64)?;
        out.counter("system_network_transmitted_bytes_total", &[], tx as f64)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(out: &Samples, name: &str) -> Option<f64> {
        out.as_slice()
            .iter()
            .find(|s| &*s.name == name)
            .map(|s| s.value)
    }

    #[test]
    fn a_quick_second_reading_repeats_the_first_cpu_figure() {
        let system = SystemCollector::new().per_core(true);
        let mut out = Samples::new();
        system.collect(&mut out).unwrap();
        assert_eq!(value(&out, "system_cpu_usage_percent"), None);
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let mut second = Samples::new();
        system.collect(&mut second).unwrap();
        let cpu = value(&second, "system_cpu_usage_percent").unwrap();
        let mut third = Samples::new();
        system.collect(&mut third).unwrap();
        assert_eq!(value(&third, "system_cpu_usage_percent"), Some(cpu));
    }
}
