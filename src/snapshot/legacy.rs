//! Reading snapshots written by older versions: the JSON shape on the wire,
//! and the move of version-2 plug-in samples into ordinary series.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;

use super::{
    merge_by_name, CounterSample, CounterValue, GaugeSample, HistogramSample, MetricInfo,
    MetricKind, Snapshot,
};
use crate::key::Labels;
use crate::plugin::{PluginReport, PluginStats, PluginStatus, Sample, SampleKind};

/// A snapshot as any version wrote it.
#[derive(Deserialize)]
pub(crate) struct Wire {
    schema_version: u32,
    timestamp_unix_ms: u64,
    uptime_seconds: f64,
    counters: Vec<CounterSample>,
    gauges: Vec<GaugeSample>,
    histograms: Vec<HistogramSample>,
    metadata: Vec<MetricInfo>,
    first_error: Option<String>,
    #[serde(default)]
    plugins: Vec<WirePlugin>,
}

/// A plug-in's entry; up to version 2 it carried the plug-in's values.
#[derive(Deserialize)]
struct WirePlugin {
    name: Arc<str>,
    status: PluginStatus,
    #[serde(default)]
    samples: Vec<Sample>,
    stats: PluginStats,
}

/// The process plug-in's per-reading disk gauges before version 3: their
/// names clashed with its disk counters in the Prometheus formats.
const RENAMED: [(&str, &str); 2] = [
    (
        "process_disk_read_bytes",
        "process_disk_interval_read_bytes",
    ),
    (
        "process_disk_written_bytes",
        "process_disk_interval_written_bytes",
    ),
];

impl TryFrom<Wire> for Snapshot {
    type Error = String;

    /// The snapshot, if it is one a collector could have taken (see
    /// [`check`]).
    fn try_from(w: Wire) -> Result<Self, String> {
        let snap = Snapshot::from_wire(w);
        check(&snap)?;
        Ok(snap)
    }
}

/// Refuses what no collector writes and every exporter would have to
/// guess about: a metric or label name that is not a Prometheus name (a
/// `__name__` label, an empty one), or a series listed twice.
fn check(snap: &Snapshot) -> Result<(), String> {
    fn series<'a>(
        kind: &str,
        seen: &mut HashSet<(&'a str, &'a Labels)>,
        name: &'a str,
        labels: &'a Labels,
    ) -> Result<(), String> {
        crate::key::validate_metric_name(name).map_err(|e| format!("{kind}: {e}"))?;
        for (key, _) in labels.iter() {
            if let Some(reason) = crate::key::label_name_problem(key) {
                return Err(format!("{kind} {name:?}: label {key:?}: {reason}"));
            }
        }
        if !seen.insert((name, labels)) {
            return Err(format!("{kind} {name:?} {labels:?} is listed twice"));
        }
        Ok(())
    }
    let mut seen = HashSet::new();
    for c in &snap.counters {
        series("counter", &mut seen, &c.name, &c.labels)?;
    }
    seen.clear();
    for g in &snap.gauges {
        series("gauge", &mut seen, &g.name, &g.labels)?;
    }
    seen.clear();
    for h in &snap.histograms {
        series("histogram", &mut seen, &h.name, &h.labels)?;
    }
    Ok(())
}

impl Snapshot {
    fn from_wire(w: Wire) -> Self {
        let mut snap = Snapshot {
            schema_version: w.schema_version,
            timestamp_unix_ms: w.timestamp_unix_ms,
            uptime_seconds: w.uptime_seconds,
            counters: w.counters,
            gauges: w.gauges,
            histograms: w.histograms,
            metadata: w.metadata,
            first_error: w.first_error,
            plugins: Vec::with_capacity(w.plugins.len()),
        };
        let mut samples = Vec::new();
        for mut p in w.plugins {
            if p.stats.series == 0 {
                p.stats.series = p.samples.len() as u64;
            }
            samples.push((Arc::clone(&p.name), std::mem::take(&mut p.samples)));
            snap.plugins.push(PluginReport {
                name: p.name,
                status: p.status,
                stats: p.stats,
            });
        }
        adopt_samples(&mut snap, samples);
        snap
    }
}

/// Turns version-2 plug-in samples into series: counters as float totals
/// (rate unknown), gauges as they were. A name the program's series already
/// use, a name an earlier plug-in used with another kind, and a repeated
/// series are left out, as the registry does for live plug-ins.
fn adopt_samples(snap: &mut Snapshot, plugins: Vec<(Arc<str>, Vec<Sample>)>) {
    if plugins.iter().all(|(_, s)| s.is_empty()) {
        return;
    }
    let mut taken: HashMap<Arc<str>, MetricKind> = snap
        .metadata
        .iter()
        .map(|m| (Arc::clone(&m.name), m.kind))
        .chain(
            snap.counters
                .iter()
                .map(|c| (Arc::clone(&c.name), MetricKind::Counter)),
        )
        .chain(
            snap.gauges
                .iter()
                .map(|g| (Arc::clone(&g.name), MetricKind::Gauge)),
        )
        .chain(
            snap.histograms
                .iter()
                .map(|h| (Arc::clone(&h.name), MetricKind::Histogram)),
        )
        .collect();
    let program: HashSet<Arc<str>> = taken.keys().cloned().collect();
    let mut seen: HashSet<(Arc<str>, Labels)> = HashSet::new();
    let (mut counters, mut gauges, mut metadata) = (Vec::new(), Vec::new(), Vec::new());
    for (plugin, list) in plugins {
        for sample in list {
            let name = match RENAMED.iter().find(|(old, _)| *old == &*sample.name) {
                Some((_, new)) if &*plugin == "process" && sample.kind == SampleKind::Gauge => {
                    Arc::from(*new)
                }
                _ => sample.name,
            };
            let kind = match sample.kind {
                SampleKind::Counter => MetricKind::Counter,
                SampleKind::Gauge => MetricKind::Gauge,
            };
            if program.contains(&name) {
                continue;
            }
            match taken.get(&name) {
                Some(k) if *k != kind => continue,
                Some(_) => {}
                None => {
                    taken.insert(Arc::clone(&name), kind);
                    metadata.push(MetricInfo {
                        name: Arc::clone(&name),
                        kind,
                        help: None,
                        unit: None,
                    });
                }
            }
            if !seen.insert((Arc::clone(&name), sample.labels.clone())) {
                continue;
            }
            match sample.kind {
                SampleKind::Counter if sample.value.is_finite() && sample.value >= 0.0 => {
                    counters.push(CounterSample {
                        name,
                        labels: sample.labels,
                        value: CounterValue::Float(sample.value.abs()),
                        rate: None,
                        exemplar: None,
                    });
                }
                // A counter no reader would take: left out, as the plug-in
                // API refuses it today.
                SampleKind::Counter => {}
                SampleKind::Gauge => gauges.push(GaugeSample {
                    name,
                    labels: sample.labels,
                    value: sample.value,
                }),
            }
        }
    }
    counters.sort_by(|a, b| a.name.cmp(&b.name));
    gauges.sort_by(|a, b| a.name.cmp(&b.name));
    metadata.sort_by(|a, b| a.name.cmp(&b.name));
    merge_by_name(&mut snap.counters, counters, |c| &c.name);
    merge_by_name(&mut snap.gauges, gauges, |g| &g.name);
    merge_by_name(&mut snap.metadata, metadata, |m| &m.name);
}
