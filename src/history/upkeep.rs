//! Upkeep of a store: closing and expiring at each minute's sweep, the
//! memory limit, and reloading a persisted store.

use std::collections::HashMap;
use std::sync::Arc;

use super::column::Column;
use super::point::Point;
use super::series::{Reading, Series};
use super::{persist, Family, FastMap, History, Inner, Level, Sink};
use crate::error::Error;
use crate::key::Labels;
use crate::snapshot::MetricKind;

impl History {
    /// Shrinks the resident spans while memory is over 15/16 of `limit`, or lets
    /// them grow back (10% a minute, up to the configured spans) while it
    /// is under 80% of it.
    pub(super) fn hold_to(&self, limit: usize, inner: &mut Inner, now: u64) {
        // A minute's points arrive before the next check: keep 1/16 of the
        // limit for them.
        let target = limit - limit / 16;
        for round in 0.. {
            let bytes = memory_of(inner);
            if bytes <= target {
                if round == 0 && bytes < limit / 10 * 8 {
                    for (now_span, span) in inner.resident_now.iter_mut().zip(self.resident_ms) {
                        *now_span = span.min(now_span.saturating_add(*now_span / 10));
                    }
                }
                return;
            }
            if round == 16 {
                return;
            }
            // Points spread evenly over time: memory follows the spans.
            let factor = (target as f64 * 0.8 / bytes as f64).clamp(0.1, 0.9);
            let mut shrunk = false;
            for (i, level) in Level::ALL.into_iter().enumerate() {
                let least = level.interval_ms().unwrap_or(10_000);
                let span = inner.resident_now[i];
                let next = ((span as f64 * factor) as u64).max(least).min(span);
                shrunk |= next < span;
                inner.resident_now[i] = next;
            }
            if !shrunk {
                return; // one interval per level: the rest does not shrink
            }
            inner.stats.shrinks += 1;
            let horizon = inner.resident_now.map(|r| now.saturating_sub(r));
            Self::note_horizon(inner, &horizon);
            for family in inner.names.values_mut() {
                for s in family.series.values_mut() {
                    s.expire(&horizon);
                    // Under pressure, partly expired chunks are cut too.
                    s.levels.iter_mut().for_each(Column::trim);
                }
            }
        }
    }

    /// Records that memory lacks the points before `horizon`.
    pub(super) fn note_horizon(inner: &mut Inner, horizon: &[u64; 4]) {
        for (i, h) in horizon.iter().enumerate() {
            let span = Level::ALL[i].interval_ms().unwrap_or(0);
            let from = h.saturating_sub(span);
            inner.memory_from[i] = inner.memory_from[i].max(from);
        }
    }

    pub(super) fn close_and_expire(&self, inner: &mut Inner, now: u64) {
        let horizon = inner.resident_now.map(|r| now.saturating_sub(r));
        Self::note_horizon(inner, &horizon);
        let Inner { names, disk, .. } = inner;
        let retention_horizon = self.retention_ms[0];
        names.retain(|name, family| {
            family.series.retain(|labels, s| {
                let mut sink = Sink {
                    disk: disk.as_mut(),
                    name,
                    labels,
                };
                s.roll(now, &mut sink);
                s.expire(&horizon);
                // A series that stopped reporting is forgotten once every
                // level has let its points go from memory.
                s.levels.iter().any(|l| !l.is_empty())
                    || s.open.iter().any(Option::is_some)
                    || s.previous_ms >= now.saturating_sub(retention_horizon)
            });
            !family.series.is_empty()
        });
    }

    /// Reads back the resident part of each persisted level.
    pub(super) fn reload(&self) -> Result<(), Error> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some(disk) = &inner.disk else {
            return Ok(());
        };
        // The newest point of any level: from the last segment of each.
        let mut newest = None::<u64>;
        for level in Level::ALL {
            if let Some((start, _)) = disk.segments(level)?.last() {
                disk.read(level, *start, u64::MAX, None, |p| {
                    newest = Some(newest.map_or(p.t_ms, |n| n.max(p.t_ms)));
                })?;
            }
        }
        let Some(newest) = newest else {
            return Ok(());
        };
        let mut skipped = 0;
        let mut loaded: Vec<(Level, persist::StoredPoint)> = Vec::new();
        for level in Level::ALL {
            let from = newest.saturating_sub(self.resident_ms[level.index()]);
            inner.memory_from[level.index()] = from;
            skipped += disk.read(level, from, u64::MAX, None, |p| loaded.push((level, p)))?;
        }
        inner.stats.skipped_lines += skipped;
        loaded.sort_by_key(|(level, p)| (*level, p.t_ms));
        let mut floor = None::<u64>;
        for (level, p) in loaded {
            let (name, labels, point) = p.into_point();
            floor = Some(floor.map_or(point.t_ms, |f| f.max(point.t_ms)));
            inner.first = Some(inner.first.map_or(point.t_ms, |f| f.min(point.t_ms)));
            let Some(series) = reloaded(&mut inner.names, name, labels, point.agg.kind()) else {
                continue;
            };
            series.previous_ms = series.previous_ms.max(point.t_ms);
            series.levels[level.index()].push(&point);
        }
        // A raw point carries its snapshot's time; a roll-up its start.
        inner.floor = floor;
        // The open intervals are rebuilt from the newest points of every
        // level's files, whatever part of them is resident. An interval
        // still open at the stop ended at most a minute (the sweep) before
        // the newest point, so the hour it belongs to, and the 5 minutes
        // and minutes in it, start less than two hours before; four hours
        // leave room for the closed check of the level above.
        let mut recent: HashMap<(Arc<str>, Labels), [Vec<Point>; 4]> = HashMap::new();
        for level in Level::ALL {
            let from = newest.saturating_sub(4 * 3_600_000);
            // Torn lines were counted by the first pass.
            disk.read(level, from, u64::MAX, None, |p| {
                let (name, labels, point) = p.into_point();
                recent.entry((name, labels)).or_default()[level.index()].push(point);
            })?;
        }
        for ((name, labels), mut points) in recent {
            points.iter_mut().for_each(|l| l.sort_by_key(|p| p.t_ms));
            let Some(kind) = points.iter().flatten().next().map(|p| p.agg.kind()) else {
                continue;
            };
            let Some(series) = reloaded(&mut inner.names, name, labels, kind) else {
                continue;
            };
            let newest = points.iter().flatten().map(|p| p.t_ms).max();
            series.previous_ms = series.previous_ms.max(newest.unwrap_or(0));
            series.reopen(&points);
        }
        Ok(())
    }
}

/// The series a point read back from disk belongs to, created without a
/// reading; `None` when its name is held as another kind.
fn reloaded(
    names: &mut FastMap<Arc<str>, Family>,
    name: Arc<str>,
    labels: Labels,
    kind: MetricKind,
) -> Option<&mut Series> {
    let family = names.entry(name).or_insert_with(|| Family {
        kind,
        series: FastMap::default(),
    });
    if family.kind != kind {
        return None;
    }
    Some(family.series.entry(labels).or_insert_with(|| Series {
        previous: None,
        previous_ms: 0,
        levels: Default::default(),
        open: Default::default(),
    }))
}

/// What [`History::memory_bytes`] reports: sizes and capacities of the
/// maps, series, chunks and distributions (not the allocator's overhead).
pub(super) fn memory_of(inner: &Inner) -> usize {
    let mut bytes = std::mem::size_of::<History>()
        + inner.names.capacity() * std::mem::size_of::<(Arc<str>, Family)>();
    for (name, family) in &inner.names {
        bytes +=
            name.len() + family.series.capacity() * (std::mem::size_of::<(Labels, Series)>() + 1);
        for (labels, s) in &family.series {
            bytes += labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 32)
                .sum::<usize>();
            if let Some(Reading::Histogram {
                buckets: Some(b), ..
            }) = &s.previous
            {
                bytes += b.heap_bytes();
            }
            bytes += s.levels.iter().map(Column::heap_bytes).sum::<usize>();
            bytes += s
                .open
                .iter()
                .flatten()
                .map(|p| p.agg.heap_bytes())
                .sum::<usize>();
        }
    }
    bytes
}
