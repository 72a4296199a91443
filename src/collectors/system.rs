//! The system plug-in: CPU, memory, swap, load, uptime and network totals of
//! the machine, through `sysinfo`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, Networks, System};

use crate::error::Error;
use crate::plugin::{Collector, Samples};

/// The system plug-in (registered name `system`), sampled in the background
/// every second by default.
///
/// It keeps one `sysinfo::System` between collections and refreshes only
/// what it reports (CPU usage, memory, network counters), never everything.
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
/// `system_network_transmitted_bytes_total` (all interfaces).
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
}

impl std::fmt::Debug for SystemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemState")
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
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
            }),
        }
    }

    /// Also reports each core's usage (`system_cpu_core_usage_percent{core}`).
    ///
    /// ```
    /// let system = vitals::collectors::SystemCollector::new().per_core(true);
    /// # let _ = system;
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
        out.gauge("system_boot_time_seconds", &[], System::boot_time() as f64)?;

        // `true` drops interfaces that went away, so the totals follow the
        // interfaces that exist.
        st.networks.refresh(true);
        let (rx, tx) = st.networks.iter().fold((0u64, 0u64), |(rx, tx), (_, n)| {
            (
                rx.saturating_add(n.total_received()),
                tx.saturating_add(n.total_transmitted()),
            )
        });
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
