//! The reading side of a time window: when each slot was current, the
//! counts at the window's start and what each closed slot added, and the
//! buffers a snapshot merges the stripes' counts into.

use std::sync::Arc;
use std::time::Duration;

use super::bucket_math::Moments;
use super::*;
use crate::metrics::layout;
use crate::metrics::sparse::SparseBuckets;

/// Reader-side state of a time window: when each slot was current, and
/// the cumulative counts at the window's start.
///
/// Writers never read the clock, so a slot's time span is known only from
/// the reads around it: slot `s` holds the values recorded between
/// `starts[s]` (the read that opened it) and `ends[s]` (the read that
/// closed it). A read opens a new slot once the current one is at least
/// `length / slots` old, reusing the oldest slot, and drops a closed slot
/// early once all of its span is older than `length`. With reads at least
/// once per slot length (a reporter, a scrape) the window covers the last
/// (slots − 1) / slots of `length` to all of it: 50–60 s by default. With
/// rarer reads it covers more, and every snapshot reports the span it
/// really covered.
///
/// Writers only ever add to cumulative counters; the window's counts are
/// the cumulative counts now less `base`, the cumulative counts when the
/// oldest live slot opened. Each closed live slot keeps what it added
/// (`deltas`), so that `base` moves on by exactly that when it leaves.
///
/// Sums, min and max cannot be taken as differences (min and max not at
/// all, sums not without rounding), so writers keep them per slot, tagged
/// with the clock word they read. A write that read the word just before a
/// slot turned, and added its count after the reader noted the closing
/// slot's counts, has its count in the next slot and its sum in the closing
/// one: both are in the window until the closing slot leaves it, and the
/// lifetime has both for good. Nothing is lost; for one slot length, one
/// value's sum may leave the window before its count.
pub(super) struct TimeReader {
    pub(super) starts: Box<[Duration]>,
    pub(super) ends: Box<[Duration]>,
    pub(super) live: Box<[bool]>,
    /// The clock word (epoch and slot) each slot was opened with: writers
    /// tag a slot's sum, min and max with it.
    pub(super) tags: Box<[u64]>,
    pub(super) epoch: u64,
    /// Cumulative counts when the oldest live slot opened (moments unused).
    pub(super) base: Merged,
    /// What each closed live slot added to the counts.
    pub(super) deltas: Box<[Option<SlotDelta>]>,
    /// Each stripe's record count at the last read (owned stripes, then
    /// the shared one): when none moved and no slot turned, the last
    /// statistics still hold.
    pub(super) seen: Box<[u64]>,
    pub(super) cached: Option<Cached>,
    /// The window's octaves as last read (ascending), valid unless a slot
    /// turned since: a read re-reads only the octaves whose totals moved.
    pub(super) octaves: Vec<OctaveCache>,
    pub(super) octaves_valid: bool,
    /// Snapshots carry the window's and the lifetime's bucket counts.
    pub(super) lifetime_buckets: bool,
    /// Every read reads every octave: the reference the tests hold the
    /// spliced reads to.
    #[cfg(test)]
    pub(super) every_octave: bool,
    /// Reads that spliced the last lists (the tests check they happen).
    #[cfg(test)]
    pub(super) spliced: u64,
}

/// One octave of the window as last read: its moments, the octave's
/// total over all stripes when they were read, and (with lifetime
/// buckets) how many buckets it has in the last read's window and
/// lifetime lists ([`WINDOW`], [`LIFETIME`]), so that a read finds an
/// octave's run in a list without searching it.
#[derive(Clone, Copy)]
pub(super) struct OctaveCache {
    pub(super) octave: usize,
    pub(super) seen: u64,
    pub(super) moments: Moments,
    pub(super) listed: [u8; 2],
}

/// Which list an [`OctaveCache::listed`] count is of.
pub(super) const WINDOW: usize = 0;
pub(super) const LIFETIME: usize = 1;

/// The non-empty buckets of one octave's counts.
pub(super) fn listed(counts: &[u64; SUBS]) -> u8 {
    counts.iter().filter(|&&c| c > 0).count() as u8
}

/// The statistics of the last read, and when its window started.
pub(super) struct Cached {
    pub(super) window: WindowStats,
    pub(super) lifetime: LifetimeStats,
    pub(super) buckets: Option<BucketState>,
}

/// The counts one closed slot added, octave by octave, each octave in the
/// narrowest integers that hold it (a slot of a busy series may hold more
/// than 2¹⁶ values in a bucket; one of a quiet series rarely more than a
/// few).
#[derive(Default)]
pub(super) struct SlotDelta {
    pub(super) zeros: u64,
    pub(super) octaves: Vec<(usize, Lane)>,
}

/// One octave's counts of a [`SlotDelta`].
pub(super) enum Lane {
    Narrow(Box<[u16; SUBS]>),
    Wide(Box<[u32; SUBS]>),
    Full(Box<[u64; SUBS]>),
}

impl Lane {
    /// The narrowest lane that holds `counts` exactly.
    pub(super) fn of(counts: &[u64; SUBS]) -> Lane {
        let most = counts.iter().copied().max().unwrap_or(0);
        if most <= u64::from(u16::MAX) {
            Lane::Narrow(Box::new(counts.map(|c| c as u16)))
        } else if most <= u64::from(u32::MAX) {
            Lane::Wide(Box::new(counts.map(|c| c as u32)))
        } else {
            Lane::Full(Box::new(*counts))
        }
    }

    /// Adds (`add`) or subtracts these counts to or from `into`.
    pub(super) fn apply(&self, into: &mut [u64; SUBS], add: bool) {
        fn go<T: Copy + Into<u64>>(from: &[T; SUBS], into: &mut [u64; SUBS], add: bool) {
            for (total, &c) in into.iter_mut().zip(from) {
                *total = if add {
                    total.wrapping_add(c.into())
                } else {
                    total.wrapping_sub(c.into())
                };
            }
        }
        match self {
            Lane::Narrow(c) => go(c, into, add),
            Lane::Wide(c) => go(c, into, add),
            Lane::Full(c) => go(c, into, add),
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Lane::Narrow(_) => SUBS * 2,
            Lane::Wide(_) => SUBS * 4,
            Lane::Full(_) => SUBS * 8,
        }
    }
}

impl SlotDelta {
    /// The non-empty octaves of `counts` (ascending), compacted.
    pub(super) fn of(counts: &Merged) -> SlotDelta {
        SlotDelta {
            zeros: counts.zeros,
            octaves: counts
                .octaves
                .iter()
                .filter(|(_, c)| c.iter().any(|&c| c > 0))
                .map(|(o, c)| (*o, Lane::of(c)))
                .collect(),
        }
    }

    /// Adds (`add`) or subtracts these counts to or from `into` (whose
    /// octaves must include all of these when subtracting).
    pub(super) fn apply(&self, into: &mut Merged, add: bool) {
        if add {
            into.zeros = into.zeros.wrapping_add(self.zeros);
        } else {
            into.zeros = into.zeros.wrapping_sub(self.zeros);
        }
        for (octave, lane) in &self.octaves {
            let at = match into.octaves.binary_search_by_key(octave, |(o, _)| *o) {
                Ok(at) => at,
                Err(at) => {
                    into.octaves.insert(at, (*octave, [0; SUBS]));
                    at
                }
            };
            lane.apply(&mut into.octaves[at].1, add);
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.octaves.capacity() * std::mem::size_of::<(usize, Lane)>()
            + self
                .octaves
                .iter()
                .map(|(_, l)| l.heap_bytes())
                .sum::<usize>()
    }
}

/// `shared` (the non-empty buckets of every octave, as [`sparse_into`]
/// writes them) brought up to date where only `octaves` (ascending) and
/// the zero count moved: each one's run of buckets replaced by its
/// non-empty counts. In place when nothing else holds the list (as
/// [`refill`]), else on a copy. `runs` (every octave of the list,
/// ascending) says how many buckets each octave has in it (`listed[list]`),
/// and is brought up to date too.
pub(super) fn splice(
    shared: &mut Arc<SparseBuckets>,
    zeros: u64,
    octaves: &[(usize, [u64; SUBS])],
    runs: &mut [OctaveCache],
    list_no: usize,
) {
    let list = Arc::make_mut(shared);
    list.zeros = zeros;
    let mut moved = octaves.iter().peekable();
    let mut at = 0;
    for run in runs {
        let old = usize::from(run.listed[list_no]);
        let Some((octave, counts)) = moved.next_if(|(o, _)| *o == run.octave) else {
            at += old;
            continue;
        };
        let first = layout::index_at(octave * SUBS);
        let mut fresh = [(0i32, 0u64); SUBS];
        let mut n = 0;
        for (sub, &c) in counts.iter().enumerate() {
            if c > 0 {
                fresh[n] = (first + sub as i32, c);
                n += 1;
            }
        }
        let range = run_at(&list.counts, at, old, first);
        list.counts.splice(range, fresh[..n].iter().copied());
        run.listed[list_no] = n as u8;
        at += n;
    }
    debug_assert!(moved.next().is_none(), "a moved octave without a run");
}

/// Where octave `first..first + 64`'s run lies in `counts`: `len` buckets
/// from `at`, as the runs say; searched for if they do not hold (they
/// always do: a fault would show in the tests, and not corrupt a list).
fn run_at(counts: &[(i32, u64)], at: usize, len: usize, first: i32) -> std::ops::Range<usize> {
    let last = first + SUBS as i32 - 1;
    let within = |i: usize| {
        counts
            .get(i)
            .is_some_and(|&(j, _)| (first..=last).contains(&j))
    };
    let before = |i: usize| i == 0 || counts.get(i - 1).is_some_and(|&(j, _)| j < first);
    let after = |i: usize| counts.get(i).is_none_or(|&(j, _)| j > last);
    let holds = before(at) && after(at + len) && (len == 0 || (within(at) && within(at + len - 1)));
    debug_assert!(holds, "run of {first} at {at}, {len} long");
    if holds {
        return at..at + len;
    }
    let (from, to) = run_of(counts, first, last);
    from..to
}

/// Where the buckets with indices `first..=last` lie in `counts`
/// (ascending by index).
fn run_of(counts: &[(i32, u64)], first: i32, last: i32) -> (usize, usize) {
    let from = counts.partition_point(|&(i, _)| i < first);
    let to = from + counts[from..].partition_point(|&(i, _)| i <= last);
    (from, to)
}

/// One octave's counts in `list` (a scale-6 list, as [`sparse_into`]
/// writes them), whose runs `runs` gives (as [`splice`]).
pub(super) fn octave_of(
    list: &SparseBuckets,
    octave: usize,
    runs: &[OctaveCache],
    list_no: usize,
) -> [u64; SUBS] {
    let first = layout::index_at(octave * SUBS);
    let mut at = 0;
    let mut len = 0;
    for run in runs {
        if run.octave == octave {
            len = usize::from(run.listed[list_no]);
            break;
        }
        at += usize::from(run.listed[list_no]);
    }
    let mut counts = [0u64; SUBS];
    for &(i, c) in &list.counts[run_at(&list.counts, at, len, first)] {
        counts[(i - first) as usize] = c;
    }
    counts
}

/// `cut`, the last lifetime list's cut to `max` buckets (as `fitted_copy`
/// cuts it), brought up to date with `list`, which differs from the last
/// list only in the buckets of `octaves` and the zero count: the coarse
/// buckets over those octaves summed again from `list`. False when `list`
/// needs another scale, or a sum would pass `u64`: then `cut` is left
/// half done, and `list` is to be cut whole. `runs` gives the octaves'
/// runs in `list` (as [`splice`] leaves them).
pub(super) fn recut(
    cut: &mut SparseBuckets,
    list: &SparseBuckets,
    octaves: &[(usize, [u64; SUBS])],
    runs: &[OctaveCache],
    max: usize,
) -> bool {
    use layout::downscale_index;
    let (Some(&(first, _)), Some(&(last, _))) = (list.counts.first(), list.counts.last()) else {
        return false;
    };
    if list.scale != layout::SCALE {
        return false;
    }
    let k = cut_level(first, last, max);
    if i32::from(cut.scale) != i32::from(layout::SCALE) - k as i32 {
        return false;
    }
    cut.zeros = list.zeros;
    let (mut run_no, mut at) = (0, 0);
    for (octave, _) in octaves {
        let start = layout::index_at(octave * SUBS);
        while runs.get(run_no).is_some_and(|r| r.octave < *octave) {
            at += usize::from(runs[run_no].listed[LIFETIME]);
            run_no += 1;
        }
        let len = runs
            .get(run_no)
            .filter(|r| r.octave == *octave)
            .map_or(0, |r| usize::from(r.listed[LIFETIME]));
        // The coarse buckets over the octave, and the fine ones they hold.
        let (low, high) = (
            downscale_index(start, k),
            downscale_index(start + SUBS as i32 - 1, k),
        );
        let fine_low = ((i64::from(low) - 1) << k) + 1;
        let fine_high = i64::from(high) << k;
        // The octave's run, and the neighbours' buckets in its coarse
        // buckets next to it.
        let range = run_at(&list.counts, at, len, start);
        let (mut from, mut to) = (range.start, range.end);
        while from > 0 && i64::from(list.counts[from - 1].0) >= fine_low {
            from -= 1;
        }
        while list
            .counts
            .get(to)
            .is_some_and(|&(i, _)| i64::from(i) <= fine_high)
        {
            to += 1;
        }
        let mut run = [(0i32, 0u64); SUBS];
        let mut n = 0;
        for &(i, c) in &list.counts[from..to] {
            let j = downscale_index(i, k);
            if n > 0 && run[n - 1].0 == j {
                let Some(total) = run[n - 1].1.checked_add(c) else {
                    return false;
                };
                run[n - 1].1 = total;
            } else if n < SUBS {
                run[n] = (j, c);
                n += 1;
            } else {
                return false;
            }
        }
        let (from, to) = run_of(&cut.counts, low, high);
        cut.counts.splice(from..to, run[..n].iter().copied());
    }
    true
}

/// The steps `fitted_copy` takes down from scale 6 to fit a list whose
/// buckets run from index `first` to `last` in `max` buckets.
fn cut_level(first: i32, last: i32, max: usize) -> u32 {
    use layout::{downscale_index, MIN_SCALE, SCALE};
    let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
    let floor = (SCALE - MIN_SCALE) as u32;
    let mut k = 0u32;
    while k < floor
        && i64::from(downscale_index(last, k)) - i64::from(downscale_index(first, k)) + 1 > max
    {
        k += 1;
    }
    k
}

/// `shared` made the counts of `octaves` (ascending by octave): rewritten
/// in place when nothing else holds it (the last snapshot was dropped, as
/// a reporter does), so that a steady reader allocates nothing; else a new
/// allocation, leaving the holders theirs. Weak holders (the memos of
/// summaries that let go of the list) do not hold the counts: the list
/// then moves out from under them, its pairs' allocation kept.
pub(super) fn refill(
    shared: &mut Arc<SparseBuckets>,
    zeros: u64,
    octaves: &[(usize, [u64; SUBS])],
) {
    if Arc::strong_count(shared) == 1 {
        // Copies nothing: unique, or moved to a new `Arc` past weak holders.
        sparse_into(Arc::make_mut(shared), zeros, octaves);
    } else {
        let mut fresh = SparseBuckets::default();
        sparse_into(&mut fresh, zeros, octaves);
        *shared = Arc::new(fresh);
    }
}

/// `into` rewritten as the non-empty buckets of `octaves`, at scale 6.
fn sparse_into(into: &mut SparseBuckets, zeros: u64, octaves: &[(usize, [u64; SUBS])]) {
    into.scale = layout::SCALE;
    into.zeros = zeros;
    into.counts.clear();
    for (octave, counts) in octaves {
        for (sub, &c) in counts.iter().enumerate() {
            if c > 0 {
                into.counts.push((layout::index_at(octave * SUBS + sub), c));
            }
        }
    }
}

/// `list` (the non-empty buckets of `octaves`, as [`sparse_into`] writes
/// them) cut to at most `max` buckets, exactly as `fitted_copy` cuts it,
/// but from the dense counts: sums of runs of buckets, where `fitted_copy`
/// takes a step per pair. For the next snapshot of a series whose last cut
/// an exporter asked for. `None` when counts are so large that sums might
/// pass `u64` (then the exporter cuts the list, saturating).
pub(super) fn cut_octaves(
    list: &SparseBuckets,
    octaves: &[(usize, [u64; SUBS])],
    max: usize,
) -> Option<SparseBuckets> {
    use layout::{MIN_INDEX, SCALE};
    let (Some(&(first, _)), Some(&(last, _))) = (list.counts.first(), list.counts.last()) else {
        return Some(list.clone());
    };
    // Under 2⁵¹ each: the sum of all 5,121 buckets stays within u64.
    let widest = octaves
        .iter()
        .flat_map(|(_, c)| c.iter())
        .fold(0u64, |a, &c| a | c);
    if widest >= 1 << 51 || list.scale != SCALE {
        return None;
    }
    let k = cut_level(first, last, max);
    // Bucket `i` goes to `((i - 1) >> k) + 1`. An octave's buckets 1..=63
    // and the next octave's bucket 0 are one run of 64 that starts on a
    // multiple of 64, so of 2^k when k ≤ 6: runs of `width` in it each go
    // to one coarse bucket (all 64 to one when k > 6).
    let width = 1usize << k.min(6);
    let mut counts: Vec<(i32, u64)> = Vec::with_capacity(max.min(256));
    let mut put = |j: i64, c: u64| {
        if c == 0 {
            return;
        }
        // Within i32: j lies between a scale-6 index and 0.
        let j = j as i32;
        match counts.last_mut() {
            Some((last, total)) if *last == j => *total += c,
            _ => counts.push((j, c)),
        }
    };
    for (at, (octave, subs)) in octaves.iter().enumerate() {
        let start = i64::from(MIN_INDEX) + 64 * *octave as i64;
        if at == 0 || octaves[at - 1].0 + 1 != *octave {
            // Bucket 0 without the octave before: the end of that one's run.
            put(((start - 1) >> k) + 1, subs[0]);
        }
        let mut run = [0u64; SUBS];
        run[..SUBS - 1].copy_from_slice(&subs[1..]);
        if let Some((next, next_subs)) = octaves.get(at + 1) {
            if *next == octave + 1 {
                run[SUBS - 1] = next_subs[0];
            }
        }
        let base = (start >> k) + 1;
        for (g, chunk) in run.chunks_exact(width).enumerate() {
            put(base + ((g as i64 * width as i64) >> k), chunk.iter().sum());
        }
    }
    Some(SparseBuckets {
        scale: SCALE - k as i8,
        zeros: list.zeros,
        counts,
    })
}

thread_local! {
    /// The cumulative counts and the window's, read at every snapshot of a
    /// time window whose counts moved: one pair of buffers per
    /// snapshotting thread, reused, rather than allocations per series per
    /// snapshot.
    pub(super) static SCRATCH: std::cell::RefCell<(Merged, Merged)> =
        const { std::cell::RefCell::new((Merged::empty(), Merged::empty())) };
}

/// The exponential bucket counts a snapshot carries: the window's and the
/// lifetime's.
#[derive(Clone)]
pub(super) struct BucketState {
    pub(super) window: Arc<SparseBuckets>,
    pub(super) lifetime: Arc<SparseBuckets>,
    /// What exporters derived from `lifetime`.
    pub(super) memo: LifetimeMemo,
}

/// Bucket counts and totals, merged across stripes: cumulative, a
/// window's, or a window's base.
#[derive(Clone)]
pub(super) struct Merged {
    /// (octave, counts of its sub-buckets), ascending by octave.
    pub(super) octaves: Vec<(usize, [u64; SUBS])>,
    /// The [`moments`] of each octave's counts, in the same order: summed
    /// as the counts are read, so that statistics need not scan the counts.
    pub(super) moments: Vec<Moments>,
    pub(super) zeros: u64,
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) min: u64,
    pub(super) max: u64,
}

impl Merged {
    /// Empties it, keeping its capacity.
    pub(super) fn clear(&mut self) {
        self.octaves.clear();
        self.moments.clear();
        self.zeros = 0;
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY.to_bits();
        self.max = 0;
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.octaves.capacity() * std::mem::size_of::<(usize, [u64; SUBS])>()
            + self.moments.capacity() * std::mem::size_of::<Moments>()
    }

    pub(super) const fn empty() -> Self {
        Merged {
            octaves: Vec::new(),
            moments: Vec::new(),
            zeros: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY.to_bits(),
            max: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::native::fitted_copy;
    use proptest::prelude::*;

    proptest! {
        /// Any lifetime counts, any limit: the dense cut is the list's cut.
        #[test]
        fn cutting_the_dense_counts_equals_cutting_the_list(
            first in 0usize..=80,
            gaps in prop::collection::vec(1usize..4, 0..30),
            fills in prop::collection::vec(
                prop::collection::vec((0usize..SUBS, 0u64..1_000), 0..40),
                31,
            ),
            zeros in 0u64..3,
            huge in any::<bool>(),
            limits in prop::collection::vec(1usize..400, 1..4),
        ) {
            let mut octaves: Vec<(usize, [u64; SUBS])> = Vec::new();
            let mut octave = first;
            for (n, fill) in fills.iter().enumerate() {
                if octave > 80 {
                    break;
                }
                let mut subs = [0u64; SUBS];
                for &(sub, c) in fill {
                    // Octave 80 holds one bucket: MAX_INDEX.
                    let sub = if octave == 80 { 0 } else { sub };
                    subs[sub] += if huge { c << 40 } else { c };
                }
                octaves.push((octave, subs));
                octave += gaps.get(n).copied().unwrap_or(80);
            }
            let mut list = SparseBuckets::default();
            sparse_into(&mut list, zeros, &octaves);
            for max in limits {
                let want = fitted_copy(&list, max, &mut Vec::new());
                match cut_octaves(&list, &octaves, max) {
                    Some(cut) => prop_assert_eq!(cut, want),
                    None => prop_assert!(list.counts.iter().any(|&(_, c)| c >= 1 << 51)),
                }
            }
        }
    }

    proptest! {
        /// Any list, any octaves moved (new ones among them, and runs
        /// emptied, as a window's are): splicing them into the list is
        /// writing the list anew, and the cut brought up to date is the
        /// new list's cut whenever it keeps the scale.
        #[test]
        fn splicing_moved_octaves_equals_writing_the_list_anew(
            before in prop::collection::btree_map(
                0usize..=80,
                prop::collection::vec((0usize..SUBS, 1u64..1_000), 0..20),
                1..25,
            ),
            moved in prop::collection::btree_map(
                0usize..=80,
                prop::collection::vec((0usize..SUBS, 0u64..1_000), 0..20),
                0..6,
            ),
            zeros in 0u64..3,
            // Counts near 2⁶⁴ too: the cut's sums may pass it.
            huge in any::<bool>(),
            max in prop_oneof![1usize..4, 1usize..400],
        ) {
            let dense = |octave: usize, fill: &Vec<(usize, u64)>| {
                let mut subs = [0u64; SUBS];
                for &(sub, c) in fill {
                    // Octave 80 holds one bucket: MAX_INDEX.
                    let sub = if octave == 80 { 0 } else { sub };
                    let c = if huge { c.saturating_mul(1 << 54) } else { c };
                    subs[sub] = subs[sub].saturating_add(c);
                }
                subs
            };
            let old: Vec<(usize, [u64; SUBS])> =
                before.iter().map(|(o, f)| (*o, dense(*o, f))).collect();
            let moved: Vec<(usize, [u64; SUBS])> =
                moved.iter().map(|(o, f)| (*o, dense(*o, f))).collect();
            let mut new: std::collections::BTreeMap<usize, [u64; SUBS]> =
                old.iter().copied().collect();
            new.extend(moved.iter().copied());
            let new: Vec<(usize, [u64; SUBS])> = new.into_iter().collect();
            let mut list = Arc::new(SparseBuckets::default());
            refill(&mut list, 0, &old);
            let mut cut = fitted_copy(&list, max, &mut Vec::new());
            // The runs as a read keeps them: every octave, new ones empty.
            let mut runs: Vec<OctaveCache> = new
                .iter()
                .map(|(octave, _)| OctaveCache {
                    octave: *octave,
                    seen: 0,
                    moments: (0, 0.0, 0.0),
                    listed: [0, old.iter().find(|(o, _)| o == octave).map_or(0, |(_, c)| listed(c))],
                })
                .collect();
            splice(&mut list, zeros, &moved, &mut runs, LIFETIME);
            let mut want = SparseBuckets::default();
            sparse_into(&mut want, zeros, &new);
            prop_assert_eq!(&*list, &want);
            for (run, (octave, counts)) in runs.iter().zip(&new) {
                prop_assert_eq!(run.listed[LIFETIME], listed(counts));
                prop_assert_eq!(&octave_of(&list, *octave, &runs, LIFETIME), counts);
            }
            if recut(&mut cut, &list, &moved, &runs, max) {
                prop_assert_eq!(cut, fitted_copy(&list, max, &mut Vec::new()));
            } else if let (Some(first), Some(last)) = (list.counts.first(), list.counts.last()) {
                // Refused only for another scale, or for sums past 2⁶⁴.
                let old_cut = fitted_copy(&{
                    let mut l = SparseBuckets::default();
                    sparse_into(&mut l, 0, &old);
                    l
                }, max, &mut Vec::new());
                let rescaled =
                    cut_level(first.0, last.0, max) as i32 != 6 - i32::from(old_cut.scale);
                prop_assert!(rescaled || huge);
            }
        }
    }

    #[test]
    fn the_ends_of_the_range_are_cut_like_the_list() {
        let mut octaves = vec![(0, [0u64; SUBS]), (40, [0u64; SUBS]), (79, [0u64; SUBS])];
        octaves[0].1[0] = 3;
        octaves[1].1[0] = 1;
        octaves[1].1[63] = 2;
        octaves[2].1[63] = 5;
        let mut list = SparseBuckets::default();
        sparse_into(&mut list, 0, &octaves);
        for max in [1, 2, 3, 160, 10_000] {
            let want = fitted_copy(&list, max, &mut Vec::new());
            assert_eq!(cut_octaves(&list, &octaves, max), Some(want), "{max}");
        }
        let empty = SparseBuckets::default();
        assert_eq!(cut_octaves(&empty, &[], 160), Some(empty));
    }
}
