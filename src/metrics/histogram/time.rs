//! The time window: slots of exponential bucket counters, rotated by reads.
//! See [`Histogram`](super::Histogram) for how recording and reading meet.

use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::metrics::layout;
use crate::metrics::sparse::SparseBuckets;
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

/// Reader-side state of a time window: when each slot was current.
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
pub(super) struct TimeReader {
    pub(super) starts: Box<[Duration]>,
    pub(super) ends: Box<[Duration]>,
    pub(super) live: Box<[bool]>,
    pub(super) life_count: u64,
    pub(super) life_sum: f64,
    pub(super) life_min: u64,
    pub(super) life_max: u64,
    /// The slot that was current before the last rotation. Writers that
    /// read the slot index just before a rotation still add to it, so it is
    /// read afresh at every snapshot, like the current one.
    pub(super) previous: Option<usize>,
    /// The other live slots, merged when first needed after a rotation:
    /// with it a snapshot reads two slots instead of all of them. Only a
    /// write delayed across two rotations (a thread descheduled for a whole
    /// slot length between reading the slot index and adding) could land in
    /// a cached slot; it then shows from the next rotation on, and is never
    /// lost: retiring a slot takes its counters with atomic swaps.
    pub(super) closed: Option<Merged>,
    /// Counts of the retired slots, per octave, when snapshots carry
    /// lifetime buckets.
    pub(super) life_buckets: Option<Box<LifeBuckets>>,
}

/// Bucket counts of every retired slot, kept only by collectors built with
/// `lifetime_buckets(true)`: 520 bytes per octave the series has used.
#[derive(Default)]
pub(super) struct LifeBuckets {
    /// (octave, counts of its sub-buckets), ascending by octave.
    pub(super) octaves: Vec<(usize, [u64; SUBS])>,
    pub(super) zeros: u64,
}

impl LifeBuckets {
    pub(super) fn add(&mut self, gone: &Merged) {
        self.zeros += gone.zeros;
        for (octave, counts) in &gone.octaves {
            let at = match self.octaves.binary_search_by_key(octave, |(o, _)| *o) {
                Ok(at) => at,
                Err(at) => {
                    self.octaves.insert(at, (*octave, [0; SUBS]));
                    at
                }
            };
            for (total, c) in self.octaves[at].1.iter_mut().zip(counts) {
                *total += c;
            }
        }
    }

    /// These counts plus the live slots' (the cached closed ones and the
    /// fresh ones, whose `zeros` already counts the closed slots' too), as
    /// sparse buckets.
    pub(super) fn with_live(&self, closed: &Merged, fresh: &Merged) -> SparseBuckets {
        sparse_of(
            self.zeros + fresh.zeros,
            [&self.octaves[..], &closed.octaves, &fresh.octaves],
        )
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.octaves.capacity() * std::mem::size_of::<(usize, [u64; SUBS])>()
    }
}

/// The counts of the octave lists added up, as sparse buckets at scale 6.
pub(super) fn sparse_of<const N: usize>(
    zeros: u64,
    lists: [&[(usize, [u64; SUBS])]; N],
) -> SparseBuckets {
    let mut all = SparseBuckets {
        zeros,
        ..SparseBuckets::default()
    };
    for_each_octave(lists, |octave, at| {
        let mut counts = [0u64; SUBS];
        for (list, i) in lists.iter().zip(at) {
            if let Some(i) = i {
                for (total, c) in counts.iter_mut().zip(&list[i].1) {
                    *total += c;
                }
            }
        }
        for (sub, &c) in counts.iter().enumerate() {
            if c > 0 {
                all.counts.push((layout::index_at(octave * SUBS + sub), c));
            }
        }
    });
    all
}

/// Calls `f` with each octave that any of the lists (each ascending by
/// octave) holds, in ascending order, and where it is in each list.
pub(super) fn for_each_octave<const N: usize>(
    lists: [&[(usize, [u64; SUBS])]; N],
    mut f: impl FnMut(usize, [Option<usize>; N]),
) {
    let mut next = [0usize; N];
    loop {
        let octave = (0..N)
            .filter_map(|l| lists[l].get(next[l]).map(|(o, _)| *o))
            .min();
        let Some(octave) = octave else { break };
        let mut at = [None; N];
        for l in 0..N {
            if lists[l].get(next[l]).is_some_and(|(o, _)| *o == octave) {
                at[l] = Some(next[l]);
                next[l] += 1;
            }
        }
        f(octave, at);
    }
}

/// The octaves whose bits are set in `mask`, ascending.
fn marked_octaves(mask: [u64; TOUCHED_WORDS]) -> impl Iterator<Item = usize> + Clone {
    (0..TOUCHED_WORDS).flat_map(move |w| {
        let mut bits = mask[w];
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                w * 64 + bit
            })
        })
    })
}

thread_local! {
    /// The fresh slots (the current one and maybe the previous), read at
    /// every snapshot of a time window: one buffer per snapshotting thread,
    /// reused, rather than an allocation per series per snapshot.
    static SCRATCH: std::cell::RefCell<Merged> = const { std::cell::RefCell::new(Merged::empty()) };
}

/// The exponential bucket counts a snapshot carries: the window's and the
/// lifetime's.
pub(super) struct BucketState {
    pub(super) window: SparseBuckets,
    pub(super) lifetime: SparseBuckets,
}

/// Counts and totals of some slots, merged across stripes.
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

impl Merged {
    /// Takes `other`'s totals, and no buckets.
    pub(super) fn totals_from(&mut self, other: &Merged) {
        self.octaves.clear();
        self.moments.clear();
        self.zeros = other.zeros;
        self.count = other.count;
        self.sum = other.sum;
        self.min = other.min;
        self.max = other.max;
    }

    /// Drops the octaves whose counts are all zero.
    pub(super) fn drop_empty_octaves(&mut self) {
        let mut keep = 0;
        for i in 0..self.octaves.len() {
            if self.moments[i].0 > 0 {
                self.octaves.swap(keep, i);
                self.moments.swap(keep, i);
                keep += 1;
            }
        }
        self.octaves.truncate(keep);
        self.moments.truncate(keep);
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

/// The representative value of a bucket (its geometric midpoint, see
/// [`layout::midpoint`]): within 0.543% of any value in it.
pub(super) fn bucket_midpoint(octave: usize, sub: usize) -> f64 {
    layout::position_midpoint(octave * SUBS + sub)
}

/// Σc, Σc·gᵏ and Σc·g²ᵏ over the 64 buckets of an octave (g = 2^(1/64), so
/// that bucket k's midpoint is the first bucket's times gᵏ): what the
/// standard deviation needs, summed as the counters are read.
pub(super) type Moments = (u64, f64, f64);

/// gᵏ = 2^(k/64) for the buckets of an octave.
const GROWTH: [f64; SUBS] = {
    let mut g = [0f64; SUBS];
    let mut k = 0;
    while k < SUBS {
        g[k] = layout::edge_factor(k);
        k += 1;
    }
    g
};

/// The standard deviation's representatives: gᵏ in fixed point,
/// ⌊gᵏ·2¹⁵⌉ (below 2¹⁶, within 2⁻¹⁶ of gᵏ), and their exact squares
/// (below 2³²). With integer weights a slot's moments are sums of
/// 32 × 32 → 64-bit products, which x86-64's baseline vector unit has, and
/// Σc·w² is exactly the square the variance formula needs (independently
/// rounded weights would leave a residue that cancellation exposes).
const WEIGHT_BITS: u32 = 15;
const W1: [u32; SUBS] = {
    let mut w = [0u32; SUBS];
    let mut k = 0;
    while k < SUBS {
        w[k] = (GROWTH[k] * (1u32 << WEIGHT_BITS) as f64 + 0.5) as u32;
        k += 1;
    }
    w
};
const W2: [u32; SUBS] = {
    let mut w = [0u32; SUBS];
    let mut k = 0;
    while k < SUBS {
        w[k] = W1[k] * W1[k];
        k += 1;
    }
    w
};

/// The value the standard deviation takes for bucket `sub` of an octave
/// whose first bucket's midpoint is `m0`: the midpoint within 2⁻¹⁶.
pub(super) fn stddev_representative(m0: f64, sub: usize) -> f64 {
    m0 * f64::from(W1[sub]) / f64::from(1u32 << WEIGHT_BITS)
}

/// The [`Moments`] of one slot's counters of an octave, in units of the
/// octave's first midpoint.
pub(super) fn moments(counts: &[u32; SUBS]) -> Moments {
    let one = f64::from(1u32 << WEIGHT_BITS);
    let (mut c0, mut c1, mut c2) = (0u64, 0u64, 0u64);
    if counts.iter().all(|&c| c < 1 << 26) {
        // Each sum < 64 · 2²⁶ · 2³² = 2⁶⁴: no overflow.
        for k in 0..SUBS {
            let c = u64::from(counts[k]);
            c0 += c;
            c1 += c * u64::from(W1[k]);
            c2 += c * u64::from(W2[k]);
        }
        return (c0, c1 as f64 / one, c2 as f64 / (one * one));
    }
    // 2²⁶ values in one bucket of one slot: the rare wide path.
    let (mut c1, mut c2) = (0u128, 0u128);
    for k in 0..SUBS {
        let c = u128::from(counts[k]);
        c0 += counts[k] as u64;
        c1 += c * u128::from(W1[k]);
        c2 += c * u128::from(W2[k]);
    }
    (c0, c1 as f64 / one, c2 as f64 / (one * one))
}

/// Quantiles and standard deviation of a non-empty window in one pass over
/// the buckets.
///
/// `m` holds the whole window's totals and the fresh slots' buckets; the
/// closed slots' buckets are in `closed`. The moments of a sum of counts are
/// the sums of their moments, so each octave's come from those kept beside
/// the counts, and its counts are summed only to walk an octave that holds a
/// quantile.
pub(super) fn bucket_stats(
    closed: &Merged,
    m: &Merged,
    lo: f64,
    hi: f64,
    mean: f64,
) -> (Quantiles, f64) {
    let ranks = Quantiles::LEVELS.map(|q| layout::nearest_rank(q, m.count));
    let mut out = [hi; 5];
    let mut next = 0;
    let mut seen = m.zeros;
    while next < 5 && ranks[next] <= seen {
        out[next] = 0.0;
        next += 1;
    }
    let mut squares = m.zeros as f64 * mean * mean;
    let lists = [&closed.octaves[..], &m.octaves];
    for_each_octave(lists, |octave, [a, b]| {
        // With m(k) = m₀·wₖ sub-bucket k's representative (wₖ ≈ gᵏ, see
        // `W1`), Σ c·(m(k) − mean)² = m₀²·Σc·wₖ² − 2·mean·m₀·Σc·wₖ +
        // mean²·Σc, from the moments kept beside the counts. Near the mean
        // the terms cancel to within a rounding error of m₀²·Σc·wₖ, some
        // 10⁻¹⁶ of it: far below the buckets' own 0.55%.
        let (mut c0, mut c1, mut c2) = a.map_or((0, 0.0, 0.0), |i| closed.moments[i]);
        if let Some(j) = b {
            let (f0, f1, f2) = m.moments[j];
            (c0, c1, c2) = (c0 + f0, c1 + f1, c2 + f2);
        }
        // An empty octave adds nothing to `squares` and holds no rank.
        if c0 == 0 {
            return;
        }
        let m0 = bucket_midpoint(octave, 0);
        let holds_rank = next < 5 && seen + c0 >= ranks[next];
        squares += (m0 * m0 * c2 - 2.0 * mean * m0 * c1 + mean * mean * c0 as f64).max(0.0);
        if holds_rank {
            let mut counts = [0u64; SUBS];
            for (i, list) in [a, b].into_iter().zip(lists) {
                if let Some(i) = i {
                    for (total, c) in counts.iter_mut().zip(&list[i].1) {
                        *total += c;
                    }
                }
            }
            // Up to the bucket of the last rank in this octave, comparing
            // each running count with the next rank only.
            let end = seen + c0;
            let mut target = ranks[next];
            let mut at = seen;
            for (sub, &c) in counts.iter().enumerate() {
                at += c;
                if at < target {
                    continue;
                }
                while next < 5 && ranks[next] <= at {
                    out[next] = bucket_midpoint(octave, sub).clamp(lo, hi);
                    next += 1;
                }
                if next == 5 || ranks[next] > end {
                    break;
                }
                target = ranks[next];
            }
        }
        seen += c0;
    });
    let stddev = if m.count < 2 {
        0.0
    } else {
        (squares / m.count as f64).sqrt()
    };
    (Quantiles::from_values(out), stddev)
}
