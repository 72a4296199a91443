//! Series lifecycle (L1–L3): removal, `retain`, idle expiry, and revival
//! by a handle that outlived its series.
//!
//! A removed series leaves snapshots at once. Its storage is freed as soon
//! as no handle to it is left outside the registry. While one is, the
//! series stays in its family marked removed (invisible, and still the one
//! series for its labels, so a lookup finds the same storage), and the
//! handle's next update brings it back at the next snapshot, counting from
//! zero: the registry keeps what the series held when it was removed and
//! subtracts it from then on (a counter's total, a histogram's lifetime
//! counts and sum). Readers see what they see for a restarted process: a
//! counter that went back towards zero. A gauge is a level, not a count: it
//! comes back with the value its handle gave it.
//!
//! Activity is read without touching the hot path: a counter's total and a
//! histogram's lifetime count (plus dropped values) change with every
//! update; a gauge carries a `touched` flag its updates set and the
//! registry clears.

use std::sync::Arc;
use std::time::Duration;

use super::family::{Family, SeriesSet};
use super::rate::Trailing;
use super::MetricsCollector;
use crate::key::{hash_labels, labels_match, Labels};
use crate::metrics::histogram::HistogramSummary;
use crate::metrics::sparse::SparseBuckets;

impl MetricsCollector {
    /// Removes the series `name` with these labels (in any order) from the
    /// collector: it leaves the next snapshot, and its memory is freed once
    /// no handle to it is left. A handle still held keeps working: its next
    /// update brings the series back, counting from zero (a counter, a
    /// histogram's lifetime counts; a gauge keeps the value it is given).
    /// Returns whether a series was removed.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let job = metrics.counter("job_runs_total", &[("job", "backup")]);
    /// job.increment(3);
    /// assert!(metrics.remove("job_runs_total", &[("job", "backup")]));
    /// assert_eq!(metrics.snapshot().counter("job_runs_total", &[("job", "backup")]), None);
    ///
    /// job.inc(); // the handle brings its series back, from zero
    /// assert_eq!(metrics.snapshot().counter("job_runs_total", &[("job", "backup")]), Some(1.0));
    /// assert!(!metrics.remove("no_such_metric", &[]));
    /// ```
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let Some(family) = self.inner.families.read().get(name).cloned() else {
            return false;
        };
        let hash = hash_labels(self.inner.seed, labels);
        let removed = remove_where(&self.inner.clock.monotonic(), &family, |set| {
            position(set, hash, labels).into_iter().collect()
        });
        removed > 0
    }

    /// Removes every series for which `keep(name, labels)` is false, as
    /// [`remove`](Self::remove) does, and returns how many. `keep` runs
    /// without any lock held, so it may use the collector.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// for peer in ["a", "b", "c"] {
    ///     metrics.gauge("peer_lag_seconds", &[("peer", peer)]).set(0.5);
    /// }
    /// let departed = ["b"];
    /// let removed = metrics.retain(|name, labels| {
    ///     name != "peer_lag_seconds" || !departed.contains(&labels.get("peer").unwrap_or(""))
    /// });
    /// assert_eq!(removed, 1);
    /// assert_eq!(metrics.snapshot().gauges.len(), 2);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&str, &Labels) -> bool) -> usize {
        let families: Vec<Arc<Family>> = self.inner.families.read().values().cloned().collect();
        let now = self.inner.clock.monotonic();
        let mut removed = 0;
        for family in families {
            // Copies of the live label sets, so that `keep` runs unlocked.
            let live: Vec<(u64, Labels)> = {
                let set = family.series.read();
                set.list
                    .iter()
                    .filter(|s| !s.life.lock().is_removed())
                    .map(|s| (s.hash, s.labels.clone()))
                    .collect()
            };
            let gone: Vec<(u64, Labels)> = live
                .into_iter()
                .filter(|(_, labels)| !keep(&family.name, labels))
                .collect();
            if gone.is_empty() {
                continue;
            }
            removed += remove_where(&now, &family, |set| {
                gone.iter()
                    .filter_map(|(hash, labels)| {
                        let pairs: Vec<(&str, &str)> = labels.iter().collect();
                        position(set, *hash, &pairs)
                    })
                    .collect()
            });
        }
        removed
    }
}

/// Marks removed the series of `family` at the positions `which` picks
/// (under the family's read lock), frees those no handle holds, and
/// returns how many were removed.
fn remove_where(
    now: &Duration,
    family: &Family,
    which: impl FnOnce(&SeriesSet) -> Vec<usize>,
) -> usize {
    let removed = {
        let set = family.series.read();
        which(&set)
            .into_iter()
            .filter(|&i| {
                let series = &set.list[i];
                let (activity, base) = series.metric.observe(*now);
                series.life.lock().remove(activity, base)
            })
            .count()
    };
    if removed > 0 {
        free_removed(family);
    }
    removed
}

/// Where the series with these labels sits in `set` (removed or not; the
/// overflow series too).
fn position(set: &SeriesSet, hash: u64, labels: &[(&str, &str)]) -> Option<usize> {
    let mut at = set.index.get(&hash).copied();
    while let Some(i) = at {
        if labels_match(set.list[i].labels.pairs(), labels) {
            return Some(i);
        }
        at = set.list[i].next;
    }
    set.list
        .iter()
        .position(|s| s.overflow && labels_match(s.labels.pairs(), labels))
}

/// What a series held when it was removed; once it is back, what is
/// subtracted from what it reports.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Base {
    Counter(u64),
    Gauge,
    Histogram(Box<HistogramBase>),
}

/// The cumulative parts of a histogram summary.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HistogramBase {
    count: u64,
    sum: f64,
    saturated: u64,
    dropped: u64,
    lifetime_buckets: Option<Arc<SparseBuckets>>,
    cumulative: Option<Vec<u64>>,
}

impl HistogramBase {
    pub(super) fn of(summary: &HistogramSummary) -> Self {
        HistogramBase {
            count: summary.lifetime.count,
            sum: summary.lifetime.sum,
            saturated: summary.saturated,
            dropped: summary.dropped,
            lifetime_buckets: summary.lifetime_buckets.clone(),
            cumulative: summary.buckets.as_ref().map(|b| b.cumulative.clone()),
        }
    }
}

/// How a series showed activity since the last look.
#[derive(Debug, Clone, Copy)]
pub(super) enum Activity {
    /// A value that every update changes (a counter's total, a histogram's
    /// count of values seen).
    Total(u64),
    /// Whether the gauge was updated.
    Touched(bool),
}

/// The registry's side of one series: rate marks and lifecycle.
#[derive(Debug)]
pub(super) struct Life {
    /// A counter's rate over the collector's rate window.
    pub(super) rate: Option<Trailing<1>>,
    /// The last total seen, and when the series last showed activity.
    seen: u64,
    active_at: Duration,
    /// Set while the series is removed: what it held then.
    removed: Option<Base>,
    /// Subtracted from what the series reports, since it last came back.
    offset: Option<Base>,
}

/// What a snapshot does with a series after [`Life::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// In the snapshot.
    Show,
    /// Back after a removal: in the snapshot, counting from zero.
    Revived,
    /// Removed (now or earlier): not in the snapshot.
    Hidden,
}

impl Life {
    /// A series created at `now`; counters pass their rate window.
    pub(super) fn new(now: Duration, rate_window: Option<Duration>) -> Self {
        Life {
            rate: rate_window.map(|window| Trailing::new(window, now)),
            seen: 0,
            active_at: now,
            removed: None,
            offset: None,
        }
    }

    pub(super) fn is_removed(&self) -> bool {
        self.removed.is_some()
    }

    /// Marks the series removed, holding `base` (its raw state now) and
    /// `activity` (read at the same moment). False if it already was.
    pub(super) fn remove(&mut self, activity: Activity, base: Base) -> bool {
        if self.removed.is_some() {
            return false;
        }
        if let Activity::Total(total) = activity {
            self.seen = total;
        }
        self.removed = Some(base);
        true
    }

    /// One snapshot's look at the series: notes activity, brings a removed
    /// series back when it moved, expires an idle one after `expire_after`.
    /// `base` gives the series' raw state, read with `activity`.
    pub(super) fn step(
        &mut self,
        activity: Activity,
        now: Duration,
        expire_after: Option<Duration>,
        base: impl FnOnce() -> Base,
    ) -> Step {
        let moved = match activity {
            Activity::Total(total) => {
                let moved = total != self.seen;
                self.seen = total;
                moved
            }
            Activity::Touched(touched) => touched,
        };
        if self.removed.is_some() {
            if !moved {
                return Step::Hidden;
            }
            self.offset = self.removed.take();
            self.active_at = now;
            return Step::Revived;
        }
        if moved {
            self.active_at = now;
        } else if expire_after.is_some_and(|d| now.saturating_sub(self.active_at) >= d) {
            self.removed = Some(base());
            return Step::Hidden;
        }
        Step::Show
    }

    /// A counter's total as reported: counting from its last revival.
    pub(super) fn counter_value(&self, raw: u64) -> u64 {
        match self.offset {
            Some(Base::Counter(base)) => raw.wrapping_sub(base),
            _ => raw,
        }
    }

    /// A histogram summary as reported: lifetime counts from its last
    /// revival. The lifetime min and max stay those of the handle's whole
    /// life (extremes cannot be subtracted); the window is the window.
    pub(super) fn histogram_summary(&self, summary: &mut HistogramSummary) {
        let Some(Base::Histogram(base)) = &self.offset else {
            return;
        };
        summary.lifetime.count = summary.lifetime.count.saturating_sub(base.count);
        summary.lifetime.sum = if summary.lifetime.count == 0 {
            0.0
        } else {
            (summary.lifetime.sum - base.sum).max(0.0)
        };
        summary.saturated = summary.saturated.saturating_sub(base.saturated);
        summary.dropped = summary.dropped.saturating_sub(base.dropped);
        if let (Some(now), Some(then)) = (&summary.lifetime_buckets, &base.lifetime_buckets) {
            summary.lifetime_buckets = now.checked_sub(then).map(Arc::new);
            summary.memo = Default::default();
        }
        if let (Some(now), Some(then)) = (&mut summary.buckets, &base.cumulative) {
            for (n, t) in now.cumulative.iter_mut().zip(then) {
                *n = n.saturating_sub(*t);
            }
            now.count = summary.lifetime.count;
        }
    }
}

/// Drops the removed series of `family` that no handle outside the
/// registry holds, and rebuilds the index over the rest (creation order
/// kept). Lookups wait on the write lock, so none can take a handle to a
/// series between the check and the drop.
pub(super) fn free_removed(family: &Family) {
    let mut set = family.series.write();
    let set = &mut *set;
    let before = set.list.len();
    set.list
        .retain_mut(|s| !s.life.get_mut().is_removed() || s.metric.shared());
    if set.list.len() == before {
        return;
    }
    set.index.clear();
    set.counted = 0;
    for (position, series) in set.list.iter_mut().enumerate() {
        if series.overflow {
            continue;
        }
        series.next = set.index.insert(series.hash, position);
        set.counted += 1;
    }
    if set.list.capacity() > 2 * set.list.len().max(8) {
        set.list.shrink_to_fit();
        set.index.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn an_idle_series_expires_and_comes_back_from_zero() {
        let mut life = Life::new(Duration::ZERO, Some(60 * S));
        let d = Some(10 * S);
        assert_eq!(
            life.step(Activity::Total(5), S, d, || Base::Counter(5)),
            Step::Show
        );
        assert_eq!(
            life.step(Activity::Total(5), 10 * S, d, || Base::Counter(5)),
            Step::Show
        );
        assert_eq!(
            life.step(Activity::Total(5), 11 * S, d, || Base::Counter(5)),
            Step::Hidden
        );
        assert!(life.is_removed());
        assert_eq!(
            life.step(Activity::Total(5), 30 * S, d, || Base::Counter(5)),
            Step::Hidden
        );
        assert_eq!(
            life.step(Activity::Total(7), 31 * S, d, || Base::Counter(7)),
            Step::Revived
        );
        assert_eq!(life.counter_value(7), 2);
    }

    #[test]
    fn gauges_are_active_when_touched_whatever_their_value() {
        let mut life = Life::new(Duration::ZERO, None);
        let d = Some(10 * S);
        assert_eq!(
            life.step(Activity::Touched(true), 9 * S, d, || Base::Gauge),
            Step::Show
        );
        assert_eq!(
            life.step(Activity::Touched(false), 18 * S, d, || Base::Gauge),
            Step::Show
        );
        assert_eq!(
            life.step(Activity::Touched(false), 19 * S, d, || Base::Gauge),
            Step::Hidden
        );
        assert_eq!(
            life.step(Activity::Touched(true), 20 * S, d, || Base::Gauge),
            Step::Revived
        );
    }

    #[test]
    fn without_expiry_only_removal_hides() {
        let mut life = Life::new(Duration::ZERO, Some(60 * S));
        assert_eq!(
            life.step(Activity::Total(0), 1000 * S, None, || Base::Counter(0)),
            Step::Show
        );
        assert!(life.remove(Activity::Total(3), Base::Counter(3)));
        assert!(!life.remove(Activity::Total(3), Base::Counter(3)));
        assert_eq!(
            life.step(Activity::Total(3), 1001 * S, None, || Base::Counter(3)),
            Step::Hidden
        );
        assert_eq!(
            life.step(Activity::Total(4), 1002 * S, None, || Base::Counter(4)),
            Step::Revived
        );
        assert_eq!(life.counter_value(4), 1);
    }
}
