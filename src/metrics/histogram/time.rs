//! The time window: slots of exponential bucket counters, rotated by reads.
//! See [`Histogram`](super::Histogram) for how recording and reading meet.

use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

use super::bucket_math::{bucket_stats, moments, stddev_representative};
use super::reading::{marked_octaves, sparse_of, BucketState, Merged, TimeReader, SCRATCH};
use super::*;
use crate::metrics::layout;
use crate::metrics::{move_thread_index, stripe_count, thread_index};

pub(super) struct TimeWindow {
    pub(super) length: Duration,
    pub(super) slot_len: Duration,
    pub(super) slots: usize,
    pub(super) current: AtomicUsize,
    /// Set by a writer that finished adding to a slot that was no longer
    /// current: the reader may already have read or retired that slot, so
    /// it looks at every slot again (see `record`).
    pub(super) late: AtomicBool,
    pub(super) base: Stripe,
    pub(super) stripes: OnceLock<Box<[Stripe]>>,
    pub(super) reader: Mutex<TimeReader>,
}

/// One thread's (or, before contention, everyone's) counters for every slot.
pub(super) struct Stripe {
    /// Per octave, `slots × SUBS` bucket counters, allocated on first use.
    pub(super) octaves: Box<[OnceLock<Box<[AtomicU32]>>]>,
    pub(super) totals: Box<[SlotTotals]>,
    /// Per slot, the octaves it may hold.
    pub(super) marks: Box<[OctaveMarks]>,
    /// Bucket counters that wrapped past `u32::MAX`: (slot, bucket), one
    /// entry per 2³² values. Needs 4 billion values in one bucket in one slot.
    pub(super) wraps: Mutex<Vec<(usize, usize)>>,
}

pub(super) struct SlotTotals {
    pub(super) sum: AtomicU64,
    pub(super) min: AtomicU64,
    pub(super) max: AtomicU64,
    pub(super) zeros: AtomicU64,
}

/// Words of a slot's octave mask.
pub(super) const TOUCHED_WORDS: usize = OCTAVES.div_ceil(64);

/// One bit per octave that may hold counts in one slot of one stripe, so
/// that readers skip the others. Kept apart from [`SlotTotals`], which
/// every write touches: only a bucket's first write in a slot touches this.
///
/// A writer whose add takes a bucket from zero sets its octave's bit after
/// the add (the add Acquire, the bit Release); retiring a slot clears the
/// bits (AcqRel) before it takes the counters (Release). So every non-zero
/// bucket had a first write since it was last emptied, and that write
/// either set a bit the retiring read saw (and the read takes the bucket),
/// or came after the read emptied the bucket, found the bit clear and set
/// it: a set bit over zero counts costs a read, but no count hides behind a
/// clear bit (beyond the moment between a first add and its bit).
pub(super) struct OctaveMarks {
    words: [AtomicU64; TOUCHED_WORDS],
}

impl OctaveMarks {
    pub(super) fn new() -> Self {
        OctaveMarks {
            words: [const { AtomicU64::new(0) }; TOUCHED_WORDS],
        }
    }

    /// Marks `octave` as holding counts (after the add).
    pub(super) fn touch(&self, octave: usize) {
        let (word, bit) = (&self.words[octave / 64], 1u64 << (octave % 64));
        // A load first: once set, the bit costs writers no store.
        if word.load(Ordering::Relaxed) & bit == 0 {
            word.fetch_or(bit, Ordering::Release);
        }
    }

    /// The octaves marked (`clear`: and unmarks them).
    pub(super) fn read(&self, clear: bool) -> [u64; TOUCHED_WORDS] {
        self.words.each_ref().map(|w| {
            if clear {
                w.swap(0, Ordering::AcqRel)
            } else {
                w.load(Ordering::Acquire)
            }
        })
    }
}

impl SlotTotals {
    pub(super) fn new() -> Self {
        SlotTotals {
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(0f64.to_bits()),
            zeros: AtomicU64::new(0),
        }
    }

    #[inline]
    // The writers' read-modify-writes are SeqCst (on x86 the same locked
    // instructions as Relaxed) so that `TimeWindow::record`'s check of the
    // slot index after them is ordered after every one: see there.
    pub(super) fn add_sum(&self, value: f64) -> bool {
        let current = self.sum.load(Ordering::Relaxed);
        let next = (f64::from_bits(current) + value).to_bits();
        self.sum
            .compare_exchange(current, next, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    pub(super) fn add_sum_contended(&self, value: f64) {
        let _ = self
            .sum
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + value).to_bits())
            });
    }

    #[inline]
    pub(super) fn update_extremes(&self, bits: u64) {
        // Loads first: once min and max settle, these lines stay shared.
        if bits < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(bits, Ordering::SeqCst);
        }
        if bits > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(bits, Ordering::SeqCst);
        }
    }
}

impl Stripe {
    pub(super) fn new(slots: usize) -> Self {
        Stripe {
            octaves: (0..OCTAVES).map(|_| OnceLock::new()).collect(),
            totals: (0..slots).map(|_| SlotTotals::new()).collect(),
            marks: (0..slots).map(|_| OctaveMarks::new()).collect(),
            wraps: Mutex::new(Vec::new()),
        }
    }

    #[inline]
    pub(super) fn octave(&self, octave: usize, slots: usize) -> &[AtomicU32] {
        self.octaves[octave].get_or_init(|| (0..slots * SUBS).map(|_| AtomicU32::new(0)).collect())
    }

    pub(super) fn heap_bytes(&self) -> usize {
        let allocated = self.octaves.iter().filter_map(OnceLock::get);
        self.octaves.len() * std::mem::size_of::<OnceLock<Box<[AtomicU32]>>>()
            + self.totals.len() * std::mem::size_of::<SlotTotals>()
            + self.marks.len() * std::mem::size_of::<OctaveMarks>()
            + allocated.map(|o| o.len() * 4).sum::<usize>()
    }
}

impl TimeWindow {
    pub(super) fn new(length: Duration, slots: u32, now: Duration) -> Self {
        let slots = slots as usize;
        TimeWindow {
            length,
            slot_len: length / slots as u32,
            slots,
            current: AtomicUsize::new(0),
            late: AtomicBool::new(false),
            base: Stripe::new(slots),
            stripes: OnceLock::new(),
            reader: Mutex::new(TimeReader {
                starts: vec![now; slots].into(),
                ends: vec![now; slots].into(),
                live: (0..slots).map(|s| s == 0).collect(),
                life_count: 0,
                life_sum: 0.0,
                life_min: f64::INFINITY.to_bits(),
                life_max: 0f64.to_bits(),
                previous: None,
                closed: None,
                life_buckets: None,
            }),
        }
    }

    #[inline]
    pub(super) fn stripe(&self) -> &Stripe {
        match self.stripes.get() {
            Some(stripes) => &stripes[thread_index() & (stripes.len() - 1)],
            None => &self.base,
        }
    }

    #[inline]
    pub(super) fn record(&self, bits: u64) {
        let position = layout::position_of_bits(bits);
        let (octave, sub) = (position / SUBS, position % SUBS);
        let slot = self.current.load(Ordering::Relaxed);
        let stripe = self.stripe();
        let index = slot * SUBS + sub;
        // Acquire (within SeqCst): a retiring read that emptied this counter
        // before the add cleared the slot's octave bits before that (see
        // `OctaveMarks`).
        let before = stripe.octave(octave, self.slots)[index].fetch_add(1, Ordering::SeqCst);
        // The first value in the bucket, or one past u32::MAX.
        if before.wrapping_add(1) <= 1 {
            self.first_or_wrapped(stripe, slot, octave * SUBS + sub, before);
        }
        let totals = &stripe.totals[slot];
        let value = f64::from_bits(bits);
        if !totals.add_sum(value) {
            self.contended(stripe, totals, value);
        }
        totals.update_extremes(bits);
        self.check_slot(slot);
    }

    pub(super) fn record_zero(&self) {
        let slot = self.current.load(Ordering::Relaxed);
        let totals = &self.stripe().totals[slot];
        totals.zeros.fetch_add(1, Ordering::SeqCst);
        totals.min.fetch_min(0, Ordering::SeqCst);
        self.check_slot(slot);
    }

    /// After a write to `slot`: if a read moved the window on meanwhile,
    /// the reader may have read (or retired) the slot before the write
    /// landed, so it is told to look at every slot again.
    ///
    /// Why this is enough: the writes above and this load are SeqCst; a
    /// read stores the new slot index SeqCst, then (at every snapshot)
    /// issues a SeqCst fence before reading slots. Either a write comes
    /// before that fence in the single total order, and the read sees it,
    /// or the fence, hence the index store, comes before the write, and
    /// this load sees the new index. Hot path: one load of a line that
    /// changes once a slot length.
    #[inline]
    fn check_slot(&self, slot: usize) {
        if self.current.load(Ordering::SeqCst) != slot {
            self.mark_late();
        }
    }

    #[cold]
    #[inline(never)]
    fn mark_late(&self) {
        self.late.store(true, Ordering::SeqCst);
    }

    /// A bucket's counter went from zero (its octave is marked as written
    /// in the slot) or wrapped past `u32::MAX` (the wrap is kept aside).
    #[cold]
    #[inline(never)]
    pub(super) fn first_or_wrapped(
        &self,
        stripe: &Stripe,
        slot: usize,
        bucket: usize,
        before: u32,
    ) {
        if before == 0 {
            stripe.marks[slot].touch(bucket / SUBS);
        } else {
            stripe.wraps.lock().push((slot, bucket));
        }
    }

    /// Another thread wrote the same sum between our load and CAS.
    #[cold]
    #[inline(never)]
    pub(super) fn contended(&self, stripe: &Stripe, totals: &SlotTotals, value: f64) {
        totals.add_sum_contended(value);
        if std::ptr::eq(stripe, &self.base) {
            self.stripes.get_or_init(|| {
                (0..stripe_count(1, 16))
                    .map(|_| Stripe::new(self.slots))
                    .collect()
            });
        } else {
            move_thread_index();
        }
    }

    pub(super) fn all_stripes(&self) -> impl Iterator<Item = &Stripe> {
        std::iter::once(&self.base).chain(self.stripes.get().into_iter().flat_map(|s| s.iter()))
    }

    /// Opens a new slot if the current one has run for a slot's length, and
    /// drops the closed slots whose whole span has left the window, folding
    /// what they held into the lifetime totals.
    pub(super) fn rotate(&self, reader: &mut TimeReader, now: Duration) {
        let current = self.current.load(Ordering::Relaxed);
        if now.saturating_sub(reader.starts[current]) >= self.slot_len {
            reader.ends[current] = now;
            let next = (current + 1) % self.slots;
            if reader.live[next] {
                self.retire(reader, next);
            }
            reader.starts[next] = now;
            reader.live[next] = true;
            // The slot is empty before writers are sent to it.
            self.current.store(next, Ordering::SeqCst);
            reader.previous = Some(current);
            reader.closed = None;
        }
        let current = self.current.load(Ordering::Relaxed);
        let horizon = now.saturating_sub(self.length);
        for slot in 0..self.slots {
            if slot != current
                && reader.live[slot]
                && reader.ends[slot] <= horizon
                && now >= self.length
            {
                self.retire(reader, slot);
                reader.closed = None;
            }
        }
    }

    /// After a late write: empties every retired slot into the lifetime
    /// totals again and drops the cache of closed slots.
    #[cold]
    fn sweep(&self, reader: &mut TimeReader) {
        for slot in 0..self.slots {
            if !reader.live[slot] {
                self.retire(reader, slot);
            }
        }
        reader.closed = None;
    }

    /// Empties `slot` into the lifetime totals (atomic swaps: a racing write
    /// is either taken here or stays for the slot's next use).
    pub(super) fn retire(&self, reader: &mut TimeReader, slot: usize) {
        let gone = self.take_slots(&[slot], true);
        reader.life_count += gone.count;
        reader.life_sum += gone.sum;
        reader.life_min = reader.life_min.min(gone.min);
        reader.life_max = reader.life_max.max(gone.max);
        if let Some(life) = &mut reader.life_buckets {
            life.add(&gone);
        }
        reader.live[slot] = false;
        if reader.previous == Some(slot) {
            reader.previous = None;
        }
    }

    /// Reads (and, with `clear`, empties by atomic swaps) the given slots of
    /// every stripe.
    pub(super) fn take_slots(&self, slots: &[usize], clear: bool) -> Merged {
        let mut merged = Merged::empty();
        self.add_slots(&mut merged, slots, clear);
        merged
    }

    /// Adds the given slots of every stripe into `merged`, counts and
    /// moments.
    pub(super) fn add_slots(&self, merged: &mut Merged, slots: &[usize], clear: bool) {
        let read64 = |a: &AtomicU64, empty: u64| {
            if clear {
                a.swap(empty, Ordering::Relaxed)
            } else {
                a.load(Ordering::Relaxed)
            }
        };
        let mut position = [usize::MAX; OCTAVES];
        for (i, (octave, _)) in merged.octaves.iter().enumerate() {
            position[*octave] = i;
        }
        let mut added = 0u64;
        let mut marks = [[0u64; TOUCHED_WORDS]; 2];
        let mut more_marks = Vec::new();
        for stripe in self.all_stripes() {
            // The octaves each slot may hold (a snapshot reads one or two
            // slots, a retirement one; the cache of closed slots more).
            let marked: &[[u64; TOUCHED_WORDS]] = if slots.len() <= marks.len() {
                for (m, &slot) in marks.iter_mut().zip(slots) {
                    *m = stripe.marks[slot].read(clear);
                }
                &marks[..slots.len()]
            } else {
                more_marks.clear();
                more_marks.extend(slots.iter().map(|&s| stripe.marks[s].read(clear)));
                &more_marks
            };
            let is_marked =
                |i: usize, octave: usize| marked[i][octave / 64] >> (octave % 64) & 1 != 0;
            // One load per cache line of the counters first: these loads are
            // independent, so their cache misses overlap rather than come
            // one octave at a time in the loop below.
            let mut any = [0u64; TOUCHED_WORDS];
            for m in marked {
                for (a, w) in any.iter_mut().zip(m) {
                    *a |= w;
                }
            }
            let octaves = marked_octaves(any);
            let mut first = 0u32;
            for octave in octaves.clone() {
                let Some(counts) = stripe.octaves[octave].get() else {
                    continue;
                };
                for (i, &slot) in slots.iter().enumerate() {
                    if is_marked(i, octave) {
                        for line in (slot * SUBS..(slot + 1) * SUBS).step_by(16) {
                            first |= counts[line].load(Ordering::Relaxed);
                        }
                    }
                }
            }
            std::hint::black_box(first);
            for octave in octaves {
                let Some(counts) = stripe.octaves[octave].get() else {
                    continue;
                };
                if position[octave] == usize::MAX {
                    position[octave] = merged.octaves.len();
                    merged.octaves.push((octave, [0; SUBS]));
                    merged.moments.push((0, 0.0, 0.0));
                }
                let into = &mut merged.octaves[position[octave]].1;
                let into_moments = &mut merged.moments[position[octave]];
                for (i, &slot) in slots.iter().enumerate() {
                    if !is_marked(i, octave) {
                        continue;
                    }
                    let from = &counts[slot * SUBS..(slot + 1) * SUBS];
                    // Atomic loads one by one, then plain (vectorised) adds.
                    let mut read = [0u32; SUBS];
                    if clear {
                        // Release: a write that comes after this swap finds
                        // the octave's bit cleared (see `OctaveMarks`).
                        for (r, c) in read.iter_mut().zip(from) {
                            *r = c.swap(0, Ordering::Release);
                        }
                    } else {
                        for (r, c) in read.iter_mut().zip(from) {
                            *r = c.load(Ordering::Relaxed);
                        }
                    }
                    for (total, &c) in into.iter_mut().zip(read.iter()) {
                        *total += u64::from(c);
                    }
                    let (c0, c1, c2) = moments(&read);
                    into_moments.0 += c0;
                    into_moments.1 += c1;
                    into_moments.2 += c2;
                    added += c0;
                }
            }
            for &slot in slots {
                let t = &stripe.totals[slot];
                merged.sum += f64::from_bits(read64(&t.sum, 0f64.to_bits()));
                let zeros = read64(&t.zeros, 0);
                merged.zeros += zeros;
                added += zeros;
                merged.min = merged.min.min(read64(&t.min, f64::INFINITY.to_bits()));
                merged.max = merged.max.max(read64(&t.max, 0));
            }
            let mut wraps = stripe.wraps.lock();
            wraps.retain(|&(slot, bucket)| {
                if !slots.contains(&slot) {
                    return true;
                }
                let (octave, sub) = (bucket / SUBS, bucket % SUBS);
                if let Some(p) = position.get_mut(octave) {
                    if *p == usize::MAX {
                        *p = merged.octaves.len();
                        merged.octaves.push((octave, [0; SUBS]));
                        merged.moments.push((0, 0.0, 0.0));
                    }
                    merged.octaves[*p].1[sub] += 1 << 32;
                    let m = &mut merged.moments[*p];
                    let wrapped = (1u64 << 32) as f64;
                    m.0 += 1 << 32;
                    let w = stddev_representative(1.0, sub);
                    m.1 += w * wrapped;
                    m.2 += w * w * wrapped;
                    added += 1 << 32;
                }
                !clear
            });
        }
        if !merged.octaves.is_sorted_by_key(|(o, _)| *o) {
            let mut both: Vec<_> = merged
                .octaves
                .drain(..)
                .zip(merged.moments.drain(..))
                .collect();
            both.sort_unstable_by_key(|((o, _), _)| *o);
            (merged.octaves, merged.moments) = both.into_iter().unzip();
        }
        merged.count += added;
    }

    pub(super) fn summary(
        &self,
        now: Duration,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        let mut guard = self.reader.lock();
        let reader = &mut *guard;
        self.rotate(reader, now);
        // Orders the slot index stores before the reads below (see
        // `check_slot`); then, if a writer finished in a slot the window
        // had left, take what it added: into the lifetime from a retired
        // slot, into the window by reading the closed slots afresh.
        fence(Ordering::SeqCst);
        if self.late.swap(false, Ordering::SeqCst) {
            self.sweep(reader);
        }
        let current = self.current.load(Ordering::Relaxed);
        let oldest = (0..self.slots)
            .filter(|&s| reader.live[s])
            .map(|s| reader.starts[s])
            .min()
            .unwrap_or(now);
        // The current slot and the one current before the last rotation
        // (late writers may still add to it) are read afresh; the others
        // come from the cache.
        let previous = reader.previous.filter(|&p| p != current);
        let fresh_slots = [current, previous.unwrap_or(current)];
        let fresh = &fresh_slots[..if previous.is_some() { 2 } else { 1 }];
        if reader.closed.is_none() {
            let others: Vec<usize> = (0..self.slots)
                .filter(|&s| reader.live[s] && !fresh.contains(&s))
                .collect();
            let mut closed = self.take_slots(&others, false);
            closed.drop_empty_octaves();
            // Kept for a whole slot length: no spare capacity.
            closed.octaves.shrink_to_fit();
            closed.moments.shrink_to_fit();
            reader.closed = Some(closed);
        }
        let reader: &TimeReader = reader;
        let nothing_closed = Merged::empty();
        let closed = reader.closed.as_ref().unwrap_or(&nothing_closed);
        let mut own = None;
        SCRATCH.with(|cell| {
            let mut shared = cell.try_borrow_mut();
            let m = match &mut shared {
                Ok(m) => &mut **m,
                Err(_) => own.get_or_insert_with(Merged::empty),
            };
            // The closed slots' totals, then the fresh slots' added to them
            // (in the order a full merge would add them); the fresh buckets
            // alone.
            m.totals_from(closed);
            self.add_slots(m, fresh, false);
            self.stats(reader, closed, m, now, oldest)
        })
    }

    /// Window and lifetime statistics from the closed slots and `m`: the
    /// fresh slots' buckets, with the totals of the whole window.
    pub(super) fn stats(
        &self,
        reader: &TimeReader,
        closed: &Merged,
        m: &Merged,
        now: Duration,
        oldest: Duration,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        let empty = m.count == 0;
        let mean = (!empty).then(|| m.sum / m.count as f64);
        // A writer adds its count before its extremes: a read in between
        // sees a count with the extremes of before (at first, min +inf and
        // max 0). Then the quantiles are not clamped to them, and the
        // missing extreme comes from the quantiles.
        let (lo, hi) = (f64::from_bits(m.min), f64::from_bits(m.max));
        let settled = lo <= hi;
        let (mut min, mut max, mut quantiles, mut stddev) = (None, None, None, None);
        if let Some(mean) = mean {
            let (clamp_lo, clamp_hi) = if settled { (lo, hi) } else { (0.0, f64::MAX) };
            let (q, sd) = bucket_stats(closed, m, clamp_lo, clamp_hi, mean);
            (min, max) = if settled {
                (Some(lo), Some(hi))
            } else {
                (Some(lo.min(q.p50)), Some(hi.max(q.p999)))
            };
            (quantiles, stddev) = (Some(q), Some(sd));
        }
        let window = WindowStats {
            window: Window::Time {
                length: self.length,
                slots: self.slots as u32,
            },
            span_seconds: now.saturating_sub(oldest).as_secs_f64(),
            count: m.count,
            sum: m.sum,
            min,
            max,
            mean,
            stddev,
            quantiles,
        };
        let life_count = reader.life_count + m.count;
        let mut life_min = f64::from_bits(reader.life_min.min(m.min));
        let mut life_max = f64::from_bits(reader.life_max.max(m.max));
        if let (Some(lo), Some(hi)) = (min, max) {
            life_min = life_min.min(lo);
            life_max = life_max.max(hi);
        }
        let lifetime = LifetimeStats {
            count: life_count,
            sum: reader.life_sum + m.sum,
            min: (life_count > 0).then_some(life_min),
            max: (life_count > 0).then_some(life_max),
        };
        let buckets = reader.life_buckets.as_ref().map(|life| BucketState {
            window: sparse_of(m.zeros, [&closed.octaves[..], &m.octaves]),
            lifetime: life.with_live(closed, m),
        });
        (window, lifetime, buckets)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        let reader = self.reader.lock();
        let cache = reader.closed.as_ref().map_or(0, Merged::heap_bytes)
            + reader.life_buckets.as_ref().map_or(0, |l| l.heap_bytes());
        drop(reader);
        cache
            + self.all_stripes().map(Stripe::heap_bytes).sum::<usize>()
            + self
                .stripes
                .get()
                .map_or(0, |s| s.len() * std::mem::size_of::<Stripe>())
    }
}
