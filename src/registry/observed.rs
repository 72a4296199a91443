//! Plug-in series: the samples of each plug-in's latest good collection
//! become ordinary counter and gauge series of the snapshot, with their
//! help text, unit and (for counters) rate, and no name is ever reported by
//! two sources.
//!
//! # Who holds a name
//!
//! The program's metrics hold their names from registration. Plug-in series
//! take a name, as a counter or a gauge, the first time a snapshot sees
//! them, and hold it for as long as some plug-in keeps reporting it (several
//! plug-ins may add series to one name, as two instances of one plug-in
//! type do). A plug-in sample is left out when its name is the program's,
//! or held as the other kind, or when its series (name and labels) was
//! already reported in this snapshot; and the program cannot register a name
//! plug-in series hold. Each clash is reported once per plug-in and name as
//! [`Error::NameClash`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::rate::Trailing;
use super::Inner;
use crate::error::Error;
use crate::key::Labels;
use crate::plugin::{Collected, PluginReport, SampleKind};
use crate::snapshot::{
    merge_by_name, CounterSample, CounterValue, GaugeSample, MetricInfo, MetricKind, Rate, Snapshot,
};

/// What the registry remembers of plug-in series between snapshots.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// The plug-in that reported each name first, and the kind.
    holders: HashMap<Arc<str>, Holder>,
    /// Rates of plug-in counters, by series; dropped with the series.
    rates: HashMap<(Arc<str>, Labels), Trailing<1, f64>>,
    /// `(plug-in, name)` clashes already reported.
    reported: HashSet<(Arc<str>, Arc<str>)>,
}

#[derive(Debug, Clone)]
struct Holder {
    plugin: Arc<str>,
    kind: MetricKind,
}

impl Observed {
    /// The plug-in holding `name`, if one does: the program may not
    /// register it.
    pub(super) fn holder(&self, name: &str) -> Option<String> {
        self.holders
            .get(name)
            .map(|h| format!("plug-in {:?} (as a {})", h.plugin, h.kind.as_str()))
    }
}

fn kind_of(kind: SampleKind) -> MetricKind {
    match kind {
        SampleKind::Counter => MetricKind::Counter,
        SampleKind::Gauge => MetricKind::Gauge,
    }
}

/// The plug-ins' part of a snapshot, ready to join the program's series.
pub(super) struct PluginSeries {
    reports: Vec<PluginReport>,
    counters: Vec<CounterSample>,
    gauges: Vec<GaugeSample>,
    metadata: Vec<MetricInfo>,
}

impl PluginSeries {
    /// Adds the plug-ins' series to `snap` (which holds the program's, in
    /// name order), and their reports.
    pub(super) fn add_to(self, snap: &mut Snapshot) {
        snap.plugins = self.reports;
        merge_by_name(&mut snap.counters, self.counters, |c| &c.name);
        merge_by_name(&mut snap.gauges, self.gauges, |g| &g.name);
        merge_by_name(&mut snap.metadata, self.metadata, |m| &m.name);
    }
}

impl Inner {
    /// Turns each plug-in's latest samples into series. Clashes are
    /// reported before the snapshot reads the collector's own counters, so
    /// that the snapshot that meets a clash already counts it.
    pub(super) fn plugin_series(&self, collected: Vec<Collected>, now: Duration) -> PluginSeries {
        let mut clashes = Vec::new();
        let mut counters = Vec::new();
        let mut gauges = Vec::new();
        let mut metadata: Vec<MetricInfo> = Vec::new();
        let mut reports = Vec::with_capacity(collected.len());
        {
            // Lock order: the family map, then `observed` (as in
            // `Inner::family`), so that no registration slips in between.
            let program = self.families.read();
            let mut observed = self.observed.lock();
            let Observed {
                holders,
                rates,
                reported,
            } = &mut *observed;
            let mut held_now: HashSet<Arc<str>> = HashSet::new();
            let mut series_now: HashMap<(Arc<str>, Labels), Arc<str>> = HashMap::new();
            let mut clashing_now: HashSet<(Arc<str>, Arc<str>)> = HashSet::new();
            for Collected {
                mut report,
                samples,
                described,
            } in collected
            {
                let plugin = Arc::clone(&report.name);
                let mut kept = 0u64;
                for sample in samples.iter() {
                    let kind = kind_of(sample.kind);
                    let refused = if let Some(family) = program.get(&*sample.name) {
                        Some(format!("the program (as a {})", family.kind.as_str()))
                    } else {
                        match holders.get(&*sample.name) {
                            Some(h) if h.kind != kind => {
                                Some(format!("plug-in {:?} (as a {})", h.plugin, h.kind.as_str()))
                            }
                            _ => None,
                        }
                    };
                    let key = (Arc::clone(&sample.name), sample.labels.clone());
                    let refused = refused.or_else(|| {
                        series_now
                            .get(&key)
                            .map(|first| format!("plug-in {first:?} (the same series)"))
                    });
                    if let Some(holder) = refused {
                        let clash = (Arc::clone(&plugin), Arc::clone(&sample.name));
                        clashing_now.insert(clash.clone());
                        if reported.insert(clash) {
                            clashes.push(Error::NameClash {
                                name: sample.name.to_string(),
                                holder,
                                newcomer: format!("plug-in {plugin:?}"),
                            });
                        }
                        continue;
                    }
                    if held_now.insert(Arc::clone(&sample.name)) {
                        holders.insert(
                            Arc::clone(&sample.name),
                            Holder {
                                plugin: Arc::clone(&plugin),
                                kind,
                            },
                        );
                        let description = described.get(&sample.name);
                        metadata.push(MetricInfo {
                            name: Arc::clone(&sample.name),
                            kind,
                            // promtool's lint wants a help text for every
                            // family: an undescribed one names its source.
                            help: Some(description.map_or_else(
                                || format!("Reported by the {plugin} plug-in."),
                                |d| d.help.clone(),
                            )),
                            unit: description
                                .and_then(|d| d.unit.as_ref())
                                .map(|u| u.as_str().to_owned()),
                        });
                    }
                    kept += 1;
                    match sample.kind {
                        SampleKind::Counter => {
                            let total = [sample.value];
                            let rate = match rates.get_mut(&key) {
                                Some(trailing) => {
                                    let increase = trailing.update(now, total);
                                    increase.per_second(0).map(|per_second| Rate {
                                        per_second,
                                        span_seconds: increase.span.as_secs_f64(),
                                    })
                                }
                                None => {
                                    let trailing = Trailing::starting(self.rate_window, now, total);
                                    rates.insert(key.clone(), trailing);
                                    None
                                }
                            };
                            counters.push(CounterSample {
                                name: Arc::clone(&sample.name),
                                labels: sample.labels.clone(),
                                value: CounterValue::Float(sample.value),
                                rate,
                                exemplar: None,
                            });
                        }
                        SampleKind::Gauge => gauges.push(GaugeSample {
                            name: Arc::clone(&sample.name),
                            labels: sample.labels.clone(),
                            value: sample.value,
                        }),
                    }
                    series_now.insert(key, Arc::clone(&plugin));
                }
                report.stats.series = kept;
                reports.push(report);
            }
            // A name no plug-in reports any more is free again; a series no
            // longer reported forgets its rate.
            holders.retain(|name, _| held_now.contains(name));
            rates.retain(|key, _| series_now.contains_key(key));
            // A clash that stopped is reported again if it comes back.
            reported.retain(|clash| clashing_now.contains(clash));
        }
        for err in clashes {
            self.report(err);
        }
        counters.sort_by(|a, b| a.name.cmp(&b.name));
        gauges.sort_by(|a, b| a.name.cmp(&b.name));
        metadata.sort_by(|a, b| a.name.cmp(&b.name));
        PluginSeries {
            reports,
            counters,
            gauges,
            metadata,
        }
    }
}
