//! Reopening a persisted store: the newest time on disk (a line far beyond
//! the rest does not count), the open intervals, and as much of each level
//! as the memory limit allows, newest first, read line by line.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::column::Column;
use super::persist::{Disk, StoredPoint};
use super::series::{reloaded, reopen_from_disk, REOPEN_WINDOW_MS};
use super::timeline::jump_bound;
use super::upkeep::{memory_of, series_bytes};
use super::{Family, FastMap, History, Inner, Level};
use crate::error::Error;
use crate::key::Labels;
use crate::snapshot::MetricKind;

/// The fraction of the resident spans read first; later reads grow with
/// what memory is left.
const FIRST_SLICE: f64 = 1.0 / 64.0;
/// The smallest step worth another read of the files.
const LEAST_SLICE: f64 = 1.0 / 1024.0;

type Key = (Arc<str>, Labels);

impl History {
    /// Reads back the resident part of each persisted level, within the
    /// memory limit.
    pub(super) fn reload(&self) -> Result<(), Error> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let Some(mut disk) = inner.disk.take() else {
            return Ok(());
        };
        let result = self.reload_from(inner, &mut disk);
        inner.disk = Some(disk);
        result
    }

    fn reload_from(&self, inner: &mut Inner, disk: &mut Disk) -> Result<(), Error> {
        let Some(newest) = newest_on_disk(inner, disk)? else {
            return Ok(());
        };
        reopen(inner, disk, newest)?;
        // The oldest point within each level's resident span, as if all of
        // it had been read: queries reaching further back start there.
        for level in Level::ALL {
            if let Some(t) = disk.oldest_time(level)? {
                let span = self.resident_ms[level.index()];
                let t = t.max(newest.saturating_sub(span)).min(newest);
                inner.first = Some(inner.first.map_or(t, |f| f.min(t)));
            }
        }
        // Older snapshots than the newest point are out of order.
        inner.floor = Some(newest);
        self.load_resident(inner, disk, newest)
    }

    /// Reads the levels back from the newest point, a slice of every
    /// level's resident span at a time, while the store stays within 15/16
    /// of the memory limit (as [`hold_to`](History::hold_to) keeps it):
    /// the spans end where [`hold_to`](History::hold_to) would have shrunk
    /// them to, and nothing older is read.
    fn load_resident(&self, inner: &mut Inner, disk: &Disk, newest: u64) -> Result<(), Error> {
        let target = self.memory_limit.map_or(usize::MAX, |l| l - l / 16);
        let spans = |f: f64| {
            let mut out = [0; 4];
            for (i, level) in Level::ALL.into_iter().enumerate() {
                let least = level.interval_ms().unwrap_or(10_000);
                let full = self.resident_ms[i];
                out[i] = ((full as f64 * f) as u64).max(least).min(full);
            }
            out
        };
        // Read so far: [from, newest] per level.
        let mut from = [newest.saturating_add(1); 4];
        let mut loaded = Loaded::default();
        let base = memory_of(inner);
        let mut used = base;
        let (mut f, mut step, mut slice) = (0.0, FIRST_SLICE, 0u32);
        while f < 1.0 {
            let next = (f + step).min(1.0);
            let want = spans(next).map(|s| newest.saturating_sub(s));
            slice += 1;
            for level in Level::ALL {
                let i = level.index();
                if want[i] < from[i] {
                    let window = newest.saturating_sub(REOPEN_WINDOW_MS[i]);
                    let skipped = read_counted(disk, level, want[i], from[i], window, |p| {
                        loaded.add(slice, level, p);
                    })?;
                    inner.stats.skipped_lines += skipped;
                }
            }
            let added = loaded.bytes(slice, &inner.names);
            if used.saturating_add(added) > target {
                loaded.discard(slice);
                if step <= LEAST_SLICE {
                    break;
                }
                step = (step / 4.0).max(LEAST_SLICE);
                continue;
            }
            used += added;
            (f, from) = (next, want);
            // Points spread evenly over time: memory follows the spans.
            let per_fraction = (used - base) as f64 / f;
            let room = target.saturating_sub(used) as f64;
            step = if per_fraction > 0.0 {
                (room / per_fraction / 2.0).clamp(LEAST_SLICE, 1.0)
            } else {
                1.0
            };
        }
        loaded.into_store(inner);
        inner.resident_now = spans(f);
        inner.memory_from = from;
        // The slices' sizes were close estimates of the columns they make:
        // the limit holds as at the end of any minute.
        if let Some(limit) = self.memory_limit {
            self.hold_to(limit, inner, newest);
        }
        Ok(())
    }
}

/// Reads `[start, end)` of `level`, counting the torn lines only below
/// `counted_until` (the part above was read, and counted, for the open
/// intervals).
fn read_counted(
    disk: &Disk,
    level: Level,
    start: u64,
    end: u64,
    counted_until: u64,
    mut each: impl FnMut(StoredPoint),
) -> Result<u64, Error> {
    let split = counted_until.clamp(start, end);
    let skipped = disk.read(level, start, split, None, &mut each)?;
    if split < end {
        disk.read(level, split, end, None, &mut each)?;
    }
    Ok(skipped)
}

/// The newest time on disk that belongs to the store's timeline. Per
/// level, the newest line time, unless it is further beyond both the next
/// one and the wall clock than a jump of the clock may be ([`jump_bound`]
/// of the step below it): such a line was written by a jump that nothing
/// continued (a real jump, continued or not, is not ahead of the clock;
/// stores fed from a manual clock ahead of it have the first test).
/// Roll-ups start before the snapshots they hold, so none is newer than the
/// raw level's newest. The lines past the time found are removed from the
/// files (so that reads, which stop at the first line past their range,
/// find what is written after them) and counted in `future_lines`.
fn newest_on_disk(inner: &mut Inner, disk: &mut Disk) -> Result<Option<u64>, Error> {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut times = Vec::new();
    let mut plausible = [None; 4];
    for level in Level::ALL {
        let newest = disk.newest_times(level, 4)?;
        let mut i = 0;
        while let [(t0, _), (t1, _), below @ ..] = &newest[i..] {
            let step_below = below.first().map(|(t2, _)| t1.saturating_sub(*t2));
            let bound = jump_bound(step_below);
            if t0.saturating_sub(*t1) <= bound || t0.saturating_sub(wall) <= bound {
                break;
            }
            i += 1;
        }
        plausible[level.index()] = newest.get(i).map(|(t, _)| *t);
        times.push(newest);
    }
    let newest = match plausible[0] {
        Some(raw) => Some(raw),
        None => plausible.into_iter().flatten().max(),
    };
    if let Some(newest) = newest {
        if times.iter().flatten().any(|(t, _)| *t > newest) {
            for level in Level::ALL {
                inner.stats.future_lines += disk.truncate(level, newest.saturating_add(1), None)?;
            }
        }
    }
    Ok(newest)
}

/// Gathers the open intervals of every series from the newest points of
/// each level's files, whatever part of them becomes resident.
fn reopen(inner: &mut Inner, disk: &Disk, newest: u64) -> Result<(), Error> {
    let (reopening, skipped) = reopen_from_disk(disk, newest)?;
    inner.stats.skipped_lines += skipped;
    for ((name, labels), (kind, r)) in reopening {
        let newest = Level::ALL.into_iter().filter_map(|l| r.newest(l)).max();
        let Some(series) = reloaded(&mut inner.names, name, labels, kind) else {
            continue;
        };
        series.previous_ms = series.previous_ms.max(newest.unwrap_or(0));
        series.open = r.finish();
    }
    Ok(())
}

/// Points read back, per series and level in slices (newest first), until
/// the memory limit says how many slices stay.
#[derive(Default)]
struct Loaded {
    entries: FastMap<Key, Entry>,
}

struct Entry {
    kind: MetricKind,
    /// The slice that first met the series.
    since: u32,
    newest: u64,
    /// Per level, the slices' points, newest slice first.
    slices: [Vec<(u32, Column)>; 4],
}

impl Loaded {
    fn add(&mut self, slice: u32, level: Level, p: StoredPoint) {
        let kind = p.agg.kind();
        let (name, labels, point) = p.into_point();
        let entry = self.entries.entry((name, labels)).or_insert_with(|| Entry {
            kind,
            since: slice,
            newest: 0,
            slices: Default::default(),
        });
        entry.newest = entry.newest.max(point.t_ms);
        let columns = &mut entry.slices[level.index()];
        if columns.last().is_none_or(|(s, _)| *s != slice) {
            columns.push((slice, Column::default()));
        }
        if let Some((_, column)) = columns.last_mut() {
            // Each series' points are in time order in the files; one that
            // is not (a damaged file) is dropped by the column.
            column.push(&point);
        }
    }

    /// The memory that `slice` adds: its points (without spare capacity,
    /// as they will be held), and the series it brings that the store does
    /// not hold yet.
    fn bytes(&mut self, slice: u32, names: &FastMap<Arc<str>, Family>) -> usize {
        let mut bytes = 0;
        for ((name, labels), entry) in &mut self.entries {
            for columns in &mut entry.slices {
                if let Some((_, column)) = columns.last_mut().filter(|(s, _)| *s == slice) {
                    column.trim();
                    bytes += column.heap_bytes();
                }
            }
            let held = names
                .get(&**name)
                .is_some_and(|f| f.series.contains_key(labels));
            if entry.since == slice && !held {
                bytes += series_bytes(labels);
            }
        }
        bytes
    }

    /// Forgets what `slice` read.
    fn discard(&mut self, slice: u32) {
        self.entries.retain(|_, entry| {
            for columns in &mut entry.slices {
                if columns.last().is_some_and(|(s, _)| *s == slice) {
                    columns.pop();
                }
            }
            entry.since != slice
        });
    }

    /// Moves the points into the store's series, each level's slices
    /// joined oldest first into one column.
    fn into_store(self, inner: &mut Inner) {
        for ((name, labels), entry) in self.entries {
            let Some(series) = reloaded(&mut inner.names, name, labels, entry.kind) else {
                continue;
            };
            series.previous_ms = series.previous_ms.max(entry.newest);
            for (i, mut slices) in entry.slices.into_iter().enumerate() {
                if slices.len() == 1 {
                    series.levels[i] = slices.pop().map(|(_, c)| c).unwrap_or_default();
                    continue;
                }
                let mut joined = Column::default();
                for (_, slice) in slices.iter().rev() {
                    for p in slice.iter_from(0) {
                        joined.push(&p);
                    }
                }
                // No spare capacity, as the slices were measured.
                joined.trim();
                series.levels[i] = joined;
            }
        }
    }
}
