//! The ring of recent snapshots a server keeps for `/api/query` when it has
//! no `History`, the thread that fills it, and queries over it.
//!
//! Each snapshot is one raw point per series: a counter's increase since
//! the previous snapshot (a total that went down is a reset: its increase
//! is the new total), a gauge's reading, a histogram's rolling-window
//! statistics and its lifetime count and sum. Steps of `range / points`
//! reduce them: `sum` and `count` add up, `rate` divides the increase by
//! the time it took, `avg`/`min`/`max`/`last` of gauges read the readings,
//! and a histogram step's quantiles, `min` and `max` are those of the
//! rolling window at the step's last snapshot (with `merge`, of every
//! selected series' windows merged, exact when the collector keeps
//! exponential buckets).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::{Agg, Answer, ApiError, ApiQuery, MAX_SERIES};
use super::Shared;
use crate::key::Labels;
use crate::metrics::histogram::HistogramSummary;
use crate::snapshot::{MetricKind, Snapshot};

/// Takes a snapshot into the ring every `recent_interval` until `stop`.
pub(super) fn sample(shared: &Shared, stop: &AtomicBool) {
    let interval = shared.config.recent_interval;
    let mut next = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next = now + interval;
        let shared_snapshot = shared.snapshot(now);
        // A snapshot shared with scrapes may be the one already kept (an
        // interval shorter than `snapshot_ttl`): once is enough.
        let taken = shared_snapshot.timestamp_unix_ms;
        if shared
            .recent
            .lock()
            .back()
            .is_some_and(|s| s.timestamp_unix_ms == taken)
        {
            continue;
        }
        let mut snapshot = (*shared_snapshot).clone();
        // Lifetime bucket counts are what a history needs, not the ring:
        // dropping them halves what it holds.
        for h in &mut snapshot.histograms {
            h.summary.lifetime_buckets = None;
            h.summary.memo = Default::default();
        }
        let mut ring = shared.recent.lock();
        if ring.len() == shared.config.recent_snapshots {
            ring.pop_front();
        }
        ring.push_back(Arc::new(snapshot));
    }
}

/// One series' reading in one snapshot.
#[derive(Clone, Copy)]
enum Reading<'a> {
    Counter(f64),
    Gauge(f64),
    Histogram(&'a HistogramSummary),
}

/// The readings of every series of `name` (of `kind`) that `q` selects in
/// one snapshot.
fn readings_of<'a>(
    s: &'a Snapshot,
    kind: MetricKind,
    q: &ApiQuery,
) -> BTreeMap<&'a Labels, Reading<'a>> {
    let name = q.name.as_str();
    let mut out = BTreeMap::new();
    let mut add = |labels: &'a Labels, reading: Reading<'a>| {
        if q.selects(labels) {
            out.insert(labels, reading);
        }
    };
    match kind {
        MetricKind::Counter => {
            for c in named(&s.counters, name, |c| &c.name) {
                add(&c.labels, Reading::Counter(c.value.as_f64()));
            }
        }
        MetricKind::Gauge => {
            for g in named(&s.gauges, name, |g| &g.name) {
                add(&g.labels, Reading::Gauge(g.value));
            }
        }
        MetricKind::Histogram => {
            for h in named(&s.histograms, name, |h| &h.name) {
                add(&h.labels, Reading::Histogram(&h.summary));
            }
        }
    }
    out
}

/// The series named `name`: a binary search, as a collector's snapshot
/// lists series in name order, or a pass over all of them when that finds
/// none (a snapshot made otherwise).
fn named<'a, T>(series: &'a [T], name: &str, name_of: impl Fn(&T) -> &str) -> &'a [T] {
    let from = series.partition_point(|s| name_of(s) < name);
    let len = series[from..].partition_point(|s| name_of(s) == name);
    if len > 0 {
        return &series[from..from + len];
    }
    match series.iter().position(|s| name_of(s) == name) {
        Some(i) => {
            let len = series[i..]
                .iter()
                .take_while(|s| name_of(s) == name)
                .count();
            &series[i..i + len]
        }
        None => &[],
    }
}

/// One raw point: what happened between the previous snapshot and this one.
struct Raw<'a> {
    t: u64,
    /// Milliseconds since the previous snapshot (0 for the first).
    dt: u64,
    /// Counter increase, or histogram lifetime count increase.
    increase: f64,
    /// Histogram lifetime sum increase.
    sum: f64,
    /// Gauge reading.
    value: f64,
    /// Histogram window (merged, when several series are merged).
    window: Option<Cow<'a, HistogramSummary>>,
}

/// Raw points of one series (or of the merge of several) from readings in
/// time order, `None` where the series was absent.
fn raw_points<'a>(readings: &[(u64, Vec<Reading<'a>>)]) -> Vec<Raw<'a>> {
    let mut out = Vec::new();
    let mut previous: Option<(u64, &[Reading<'a>])> = None;
    for (t, now) in readings {
        if now.is_empty() {
            continue;
        }
        let dt = previous.as_ref().map_or(0, |(p, _)| t.saturating_sub(*p));
        let mut raw = Raw {
            t: *t,
            dt,
            increase: 0.0,
            sum: 0.0,
            value: 0.0,
            window: None,
        };
        let before = previous.map(|(_, r)| r);
        for (i, r) in now.iter().enumerate() {
            let prev = before.and_then(|b| b.get(i));
            match (r, prev) {
                (Reading::Counter(v), Some(Reading::Counter(p))) => {
                    raw.increase += if v >= p { v - p } else { *v };
                }
                (Reading::Counter(_), _) => {}
                (Reading::Gauge(v), _) => raw.value += v,
                (Reading::Histogram(h), prev) => {
                    if let Some(Reading::Histogram(p)) = prev {
                        let (c, pc) = (h.lifetime.count, p.lifetime.count);
                        if c >= pc {
                            raw.increase += (c - pc) as f64;
                            raw.sum += h.lifetime.sum - p.lifetime.sum;
                        } else {
                            raw.increase += c as f64;
                            raw.sum += h.lifetime.sum;
                        }
                    }
                    match &mut raw.window {
                        None => raw.window = Some(Cow::Borrowed(*h)),
                        Some(w) => w.to_mut().merge(h),
                    }
                }
            }
        }
        out.push(raw);
        previous = Some((*t, now.as_slice()));
    }
    out
}

/// The steps of one series (or merge) from its readings; a reading at or
/// before `start` only gives the first increase.
fn points_of(
    readings: &[(u64, Vec<Reading>)],
    kind: MetricKind,
    agg: Agg,
    start: u64,
    step: u64,
) -> Vec<(u64, f64)> {
    let mut raw = raw_points(readings);
    raw.retain(|r| r.t > start);
    reduce(&raw, kind, agg, start, step)
}

/// Reduces raw points to steps of `step` ms counted from `start`.
fn reduce(raw: &[Raw], kind: MetricKind, agg: Agg, start: u64, step: u64) -> Vec<(u64, f64)> {
    // Steps cover (start, start + step], (start + step, start + 2 step], …
    // so that the newest snapshot, at the range's end, falls in the last of
    // `points` steps; each is named by its start.
    let step_of = |t: u64| start + (t.saturating_sub(start).saturating_sub(1)) / step * step;
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let key = step_of(raw[i].t);
        let mut j = i;
        while j < raw.len() && step_of(raw[j].t) == key {
            j += 1;
        }
        let group = &raw[i..j];
        i = j;
        // The first raw point has no predecessor: no increase to speak of.
        let with_dt: Vec<&Raw> = group.iter().filter(|r| r.dt > 0).collect();
        let increase: f64 = with_dt.iter().map(|r| r.increase).sum();
        let dt: u64 = with_dt.iter().map(|r| r.dt).sum();
        let values = || group.iter().map(|r| r.value);
        let last_window = group.last().and_then(|r| r.window.as_deref());
        let value = match (kind, agg) {
            (MetricKind::Counter | MetricKind::Histogram, Agg::Rate) => {
                (dt > 0).then(|| increase / (dt as f64 / 1000.0))
            }
            (MetricKind::Counter, Agg::Sum) | (MetricKind::Histogram, Agg::Count) => {
                (!with_dt.is_empty()).then_some(increase)
            }
            (MetricKind::Histogram, Agg::Sum) => {
                (!with_dt.is_empty()).then(|| with_dt.iter().map(|r| r.sum).sum())
            }
            (MetricKind::Histogram, Agg::Avg) => {
                let sum: f64 = with_dt.iter().map(|r| r.sum).sum();
                (increase > 0.0).then(|| sum / increase)
            }
            (MetricKind::Histogram, Agg::Min) => last_window.and_then(|w| w.window.min),
            (MetricKind::Histogram, Agg::Max) => last_window.and_then(|w| w.window.max),
            (MetricKind::Histogram, q) => last_window
                .and_then(|w| w.window.quantiles.as_ref())
                .and_then(|qs| qs.get(q.level()?)),
            (MetricKind::Gauge, Agg::Sum) => Some(values().sum()),
            (MetricKind::Gauge, Agg::Count) => Some(group.len() as f64),
            (MetricKind::Gauge, Agg::Avg) => Some(values().sum::<f64>() / group.len() as f64),
            (MetricKind::Gauge, Agg::Min) => values().reduce(f64::min),
            (MetricKind::Gauge, Agg::Max) => values().reduce(f64::max),
            (MetricKind::Gauge, Agg::Last) => group.last().map(|r| r.value),
            _ => None,
        };
        if let Some(v) = value {
            out.push((key, v));
        }
    }
    out
}

impl Shared {
    /// The kind of `name` in the newest ring snapshot that has it.
    pub(super) fn kind_of(&self, name: &str) -> Option<MetricKind> {
        let ring = self.recent.lock();
        ring.iter()
            .rev()
            .find_map(|s| s.metadata(name).map(|m| m.kind))
    }

    /// Answers `q` from the history when the server has one, else from the
    /// ring.
    pub(super) fn answer(
        &self,
        q: &ApiQuery,
        kind: MetricKind,
        agg: Agg,
    ) -> Result<Answer, (u16, ApiError)> {
        #[cfg(feature = "history")]
        if let Some(history) = &self.history {
            return super::history::answer(history, q, agg);
        }
        // Clone the handles and let the ring go: the work below must not
        // hold up the sampler.
        let ring: Vec<Arc<Snapshot>> = self.recent.lock().iter().cloned().collect();
        answer_from_ring(&ring, q, kind, agg)
    }
}

fn answer_from_ring(
    ring: &[Arc<Snapshot>],
    q: &ApiQuery,
    kind: MetricKind,
    agg: Agg,
) -> Result<Answer, (u16, ApiError)> {
    let end = ring.last().map_or(0, |s| s.timestamp_unix_ms);
    let start = end.saturating_sub(q.range_ms);
    // The range is (start, end]; the snapshot before it (at or before
    // `start`) gives the first increase.
    let first = ring
        .iter()
        .position(|s| s.timestamp_unix_ms > start)
        .unwrap_or(ring.len());
    let window = &ring[first.saturating_sub(1)..];
    // Each snapshot is read once: its selected series by label set.
    let per_snapshot: Vec<(u64, BTreeMap<&Labels, Reading<'_>>)> = window
        .iter()
        .map(|s| (s.timestamp_unix_ms, readings_of(s, kind, q)))
        .collect();
    let in_range = &per_snapshot[first.min(1)..];
    let all: BTreeSet<&Labels> = in_range
        .iter()
        .flat_map(|(_, r)| r.keys().copied())
        .collect();
    let total = all.len();
    let step = q.range_ms.div_ceil(q.points as u64).max(1);
    let mut answer = Answer {
        source: "recent",
        step_ms: Some(step),
        start_ms: start,
        end_ms: end,
        series: Vec::new(),
        total,
    };
    if q.merge {
        if kind == MetricKind::Histogram && agg.level().is_some() {
            let newest = ring.last().map(|s| &**s);
            let unmergeable = newest.is_some_and(|s| {
                s.histograms.iter().any(|h| {
                    *h.name == q.name && q.selects(&h.labels) && h.summary.window_buckets.is_none()
                })
            });
            if unmergeable {
                return Err((
                    400,
                    ApiError::new(
                        "not_mergeable",
                        Some("merge"),
                        format!(
                            "{:?} has no exponential buckets to merge quantiles with: build the collector with lifetime_buckets(true)",
                            q.name
                        ),
                    ),
                ));
            }
        }
        let readings: Vec<(u64, Vec<Reading>)> = per_snapshot
            .iter()
            .map(|(t, r)| {
                // Only a snapshot holding every series adds up right.
                // In the order of `all`, so that consecutive snapshots'
                // readings pair up by position.
                let present: Vec<Reading> = all.iter().filter_map(|l| r.get(l).copied()).collect();
                let complete = present.len() == all.len();
                (*t, if complete { present } else { vec![] })
            })
            .collect();
        let points = points_of(&readings, kind, agg, start, step);
        if !all.is_empty() {
            answer.series.push((Labels::default(), points));
        }
        answer.total = answer.series.len();
        return Ok(answer);
    }
    for labels in all.into_iter().take(MAX_SERIES) {
        let readings: Vec<(u64, Vec<Reading>)> = per_snapshot
            .iter()
            .map(|(t, r)| (*t, r.get(labels).copied().into_iter().collect()))
            .collect();
        let points = points_of(&readings, kind, agg, start, step);
        answer.series.push((labels.clone(), points));
    }
    Ok(answer)
}

/// A ring of at most `capacity` snapshots.
pub(super) fn ring(capacity: usize) -> parking_lot::Mutex<VecDeque<Arc<Snapshot>>> {
    parking_lot::Mutex::new(VecDeque::with_capacity(capacity.min(1024)))
}

#[cfg(test)]
#[path = "recent_tests.rs"]
mod tests;
