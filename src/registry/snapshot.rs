//! Taking a snapshot: every family's series in name order, with counter
//! rates, histogram summaries and the lifecycle's say on what is shown.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::family::{Family, Metric};
use super::lifecycle::free_removed;
use super::lifecycle::{Activity, Base, HistogramBase, Step};
use super::*;
use crate::snapshot::{
    CounterSample, CounterValue, GaugeSample, HistogramSample, MetricInfo, Rate, SCHEMA_VERSION,
};

impl Inner {
    pub(super) fn snapshot(&self) -> Snapshot {
        // Plug-ins first: event plug-ins and the collection timer write to
        // series that the rest of the snapshot reads.
        let collected = self.plugins.collect(|| self.clock.monotonic());
        let now = self.clock.monotonic();
        let plugin_series = self.plugin_series(collected, now);
        let wall = self.clock.wall();
        let mut families: Vec<Arc<Family>> = self.families.read().values().cloned().collect();
        families.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Size the sample vectors once instead of growing them by copying.
        let mut sizes = [0usize; 3];
        for family in &families {
            let slot = match family.kind {
                MetricKind::Counter => 0,
                MetricKind::Gauge => 1,
                MetricKind::Histogram => 2,
            };
            sizes[slot] += family.series.read().list.len();
        }
        let mut snap = Snapshot {
            schema_version: SCHEMA_VERSION,
            timestamp_unix_ms: wall
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            uptime_seconds: now.saturating_sub(self.created).as_secs_f64(),
            counters: Vec::with_capacity(sizes[0]),
            gauges: Vec::with_capacity(sizes[1]),
            histograms: Vec::with_capacity(sizes[2]),
            metadata: Vec::with_capacity(families.len()),
            first_error: self.first_error.lock().clone(),
            plugins: Vec::new(),
        };
        for family in &families {
            let meta = family.meta.lock();
            snap.metadata.push(MetricInfo {
                name: Arc::clone(&family.name),
                kind: family.kind,
                help: meta.help.clone(),
                unit: meta.unit.clone(),
            });
            drop(meta);
            let expire_after = self.expire_after.filter(|_| !is_internal(&family.name));
            let mut freeable = false;
            let set = family.series.read();
            for series in &set.list {
                let mut life = series.life.lock();
                let name = Arc::clone(&family.name);
                match &series.metric {
                    Metric::Counter(c) => {
                        let raw = c.value();
                        let step = life.step(Activity::Total(raw), now, expire_after, || {
                            Base::Counter(raw)
                        });
                        if step == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        let value = life.counter_value(raw);
                        let rate = life.rate.as_mut().and_then(|t| {
                            if step == Step::Revived {
                                t.restart(now, [value]);
                            }
                            let increase = t.update(now, [value]);
                            Some(Rate {
                                per_second: increase.per_second(0)?,
                                span_seconds: increase.span.as_secs_f64(),
                            })
                        });
                        snap.counters.push(CounterSample {
                            name,
                            labels: series.labels.clone(),
                            value: CounterValue::Int(value),
                            rate,
                            exemplar: c.exemplar(),
                        });
                    }
                    Metric::Gauge(g) => {
                        let touched = Activity::Touched(g.take_touched());
                        if life.step(touched, now, expire_after, || Base::Gauge) == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        snap.gauges.push(GaugeSample {
                            name,
                            labels: series.labels.clone(),
                            value: g.value(),
                        });
                    }
                    Metric::Histogram(h) => {
                        let mut summary = h.summary(now);
                        let seen = histogram_activity(&summary);
                        let step = life.step(seen, now, expire_after, || {
                            Base::Histogram(Box::new(HistogramBase::of(&summary)))
                        });
                        if step == Step::Hidden {
                            freeable |= !series.metric.shared();
                            continue;
                        }
                        life.histogram_summary(&mut summary);
                        snap.histograms.push(HistogramSample {
                            name,
                            labels: series.labels.clone(),
                            summary,
                            exemplars: h.exemplars(),
                        });
                    }
                }
            }
            drop(set);
            if freeable {
                free_removed(family);
            }
        }
        plugin_series.add_to(&mut snap);
        snap
    }
}

/// A histogram moves with every value it is given: recorded (count) or
/// refused (dropped).
pub(super) fn histogram_activity(
    summary: &crate::metrics::histogram::HistogramSummary,
) -> Activity {
    Activity::Total(summary.lifetime.count.wrapping_add(summary.dropped))
}

/// The families a collector keeps for itself: never expired.
pub(super) fn is_internal(name: &str) -> bool {
    matches!(name, ERRORS_METRIC | OVERFLOW_METRIC | COLLECTION_METRIC)
}
