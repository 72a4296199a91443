//! Clock jumps: which snapshots the history takes when their times leap
//! ahead or go back, and how it moves to a new timeline. The rule is
//! stated on [`History::ingest`].

use std::sync::Arc;

use super::persist::StoredPoint;
use super::point::Point;
use super::series::{reloaded, reopen_from_disk, Reopening, Reopenings, REOPEN_WINDOW_MS};
use super::{FastMap, History, HistoryStats, Inner, Level};
use crate::error::Error;
use crate::key::Labels;
use crate::snapshot::{MetricKind, Snapshot};

const HOUR: u64 = 3_600_000;

/// Snapshots in a row behind the newest accepted one, each after the one
/// before, that show the clock was stepped back: the last of them moves
/// the history to their timeline.
pub(super) const STEPPED_BACK_AFTER: u32 = 3;

/// How far past the newest accepted snapshot the next may come before it
/// is held as a possible clock jump: an hour, or four times the step
/// between the two newest accepted snapshots when that is longer (a
/// history fed every few hours is not jumping).
pub(super) fn jump_bound(step: Option<u64>) -> u64 {
    HOUR.max(step.unwrap_or(0).saturating_mul(4))
}

/// The state of the rule between snapshots.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    /// The step between the two newest accepted snapshots, ms.
    pub(super) step: Option<u64>,
    /// A snapshot far ahead of the newest accepted, held until the next
    /// one says whether the clock jumped.
    held: Option<Box<Snapshot>>,
    /// Snapshots in a row behind the newest accepted, each after the one
    /// before: how many, and the time of the last.
    behind: Option<(u32, u64)>,
}

/// What [`Timeline::judge`] decided for a snapshot.
pub(super) enum Verdict {
    /// On the timeline: ingest it.
    Accept,
    /// It continues from the held snapshot: the clock jumped ahead.
    /// Ingest the held one, then it.
    AcceptHeldFirst(Box<Snapshot>),
    /// Far ahead: held until the next snapshot.
    Hold,
    /// Behind the newest accepted: dropped (counted).
    Behind,
    /// The last of [`STEPPED_BACK_AFTER`] behind in a row: rewind to it
    /// and ingest it.
    SteppedBack,
}

impl Timeline {
    /// Decides what becomes of `snapshot`, given the newest accepted time
    /// (and that snapshot's uptime, unless it was reloaded from disk), and
    /// counts what is dropped.
    pub(super) fn judge(
        &mut self,
        newest: Option<(u64, Option<f64>)>,
        snapshot: &Snapshot,
        stats: &mut HistoryStats,
    ) -> Verdict {
        let t = snapshot.timestamp_unix_ms;
        let Some((newest, uptime)) = newest else {
            return Verdict::Accept;
        };
        let bound = jump_bound(self.step);
        if let Some(held) = self.held.take() {
            if t > held.timestamp_unix_ms {
                stats.clock_jumps += 1;
                self.behind = None;
                return Verdict::AcceptHeldFirst(held);
            }
            stats.jumps_dropped += 1;
        }
        if t > newest.saturating_add(bound) {
            self.held = Some(Box::new(snapshot.clone()));
            self.behind = None;
            return Verdict::Hold;
        }
        if t > newest {
            self.behind = None;
            return Verdict::Accept;
        }
        // A clock stepped back leaves the process's uptime going on; a
        // snapshot of another (or an earlier) process never moves the
        // history back.
        let same_process = uptime.is_none_or(|u| snapshot.uptime_seconds >= u);
        let run = match self.behind {
            _ if !same_process => 0,
            Some((n, last)) if t > last && t - last <= bound => n + 1,
            _ => 1,
        };
        if run >= STEPPED_BACK_AFTER {
            self.behind = None;
            stats.clock_jumps += 1;
            return Verdict::SteppedBack;
        }
        self.behind = (run > 0).then_some((run, t));
        stats.out_of_order += 1;
        Verdict::Behind
    }
}

type Key = (Arc<str>, Labels);

/// Adds a disowned point to its series' carry: counters and histograms
/// only (their counts happened; a gauge reading at a disowned time is
/// just dropped).
fn carry_into(carry: &mut Option<Box<Point>>, point: Point) {
    if point.agg.kind() == MetricKind::Gauge {
        return;
    }
    match carry {
        Some(c) => c.merge(&point),
        None => *carry = Some(Box::new(point)),
    }
}

impl History {
    /// Moves the store back to a clock stepped back to `r`: the points at
    /// `r` or later are removed from memory and the level files (their
    /// counts are carried into each series' next point), roll-up intervals
    /// reaching past `r` are opened again from the finer points before it,
    /// and the store goes on from just before `r`.
    pub(super) fn rewind(&self, inner: &mut Inner, r: u64) -> Result<(), Error> {
        let disowned_until = inner.last.map(|(t, _)| t).or(inner.floor).unwrap_or(r);
        // A raw point belongs to the minute holding its time minus a
        // millisecond; every roll-up interval from the one holding `r` on
        // goes.
        let mut cuts = [r; 4];
        for i in 1..4 {
            let interval = Level::ALL[i].interval_ms().unwrap_or(1);
            let t = if i == 1 {
                r.saturating_sub(1)
            } else {
                cuts[i - 1]
            };
            cuts[i] = t / interval * interval;
        }
        let kept_until = r.saturating_sub(1);
        let mut carried: FastMap<Key, Option<Box<Point>>> = FastMap::default();
        let mut reopening = Reopenings::default();
        if let Some(disk) = inner.disk.as_mut() {
            let mut carry = |p: StoredPoint| {
                if p.t_ms <= disowned_until {
                    let (name, labels, point) = p.into_point();
                    carry_into(carried.entry((name, labels)).or_default(), point);
                }
            };
            disk.truncate(Level::Raw, cuts[0], Some(&mut carry))?;
            for level in &Level::ALL[1..] {
                disk.truncate(*level, cuts[level.index()], None)?;
            }
            // Torn lines were counted when they were first met.
            (reopening, _) = reopen_from_disk(disk, kept_until)?;
        }
        let in_memory_only = inner.disk.is_none();
        for family in inner.names.values_mut() {
            for s in family.series.values_mut() {
                if in_memory_only {
                    let disowned: Vec<_> = s.levels[0]
                        .iter_from(r)
                        .take_while(|p| p.t_ms <= disowned_until)
                        .collect();
                    for p in disowned {
                        carry_into(&mut s.carry, p);
                    }
                }
                for (column, cut) in s.levels.iter_mut().zip(cuts) {
                    column.truncate_from(cut);
                }
                s.open = Default::default();
                let mut newest_raw = None;
                if in_memory_only {
                    let mut open = Reopening::default();
                    for level in Level::ALL {
                        let from = kept_until.saturating_sub(REOPEN_WINDOW_MS[level.index()]);
                        for p in s.levels[level.index()].iter_from(from) {
                            open.add(level, p);
                        }
                    }
                    newest_raw = open.newest(Level::Raw);
                    s.open = open.finish();
                }
                s.previous_ms = s.previous_ms.min(newest_raw.unwrap_or(r));
            }
        }
        for ((name, labels), (kind, open)) in reopening {
            let Some(s) = reloaded(&mut inner.names, name, labels, kind) else {
                continue;
            };
            let newest_raw = open.newest(Level::Raw);
            s.previous_ms = s.previous_ms.min(newest_raw.unwrap_or(r));
            s.open = open.finish();
        }
        for ((name, labels), carry) in carried {
            let Some(point) = carry else { continue };
            let kind = point.agg.kind();
            if let Some(s) = reloaded(&mut inner.names, name, labels, kind) {
                carry_into(&mut s.carry, *point);
            }
        }
        inner.last = inner.last.map(|(_, uptime)| (kept_until, uptime));
        inner.floor = inner.floor.map(|f| f.min(kept_until));
        Ok(())
    }
}
