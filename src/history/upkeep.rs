//! Upkeep of a store: closing and expiring at each minute's sweep, and
//! the memory limit.

use std::sync::Arc;

use super::column::Column;
use super::point::Point;
use super::series::{Reading, Series};
use super::{Family, History, Inner, Level, Sink};
use crate::key::Labels;

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
            bytes += label_bytes(labels);
            if let Some(carry) = &s.carry {
                bytes += std::mem::size_of::<Point>() + carry.agg.heap_bytes();
            }
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

/// The labels' share of [`memory_of`].
fn label_bytes(labels: &Labels) -> usize {
    labels.iter().map(|(k, v)| k.len() + v.len() + 32).sum()
}

/// What one more series without points adds to [`memory_of`] (its map
/// slot and labels).
pub(super) fn series_bytes(labels: &Labels) -> usize {
    std::mem::size_of::<(Labels, Series)>() + 1 + label_bytes(labels)
}
