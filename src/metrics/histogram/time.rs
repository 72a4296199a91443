//! The time window's writing side: cumulative counters, one stripe per
//! writing thread. The reader, which takes the window as differences, is
//! in `time_read.rs`. See [`Histogram`](super::Histogram) for how
//! recording and reading meet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

use super::reading::{Merged, TimeReader};
use super::*;
use crate::metrics::layout;
use crate::metrics::writers::{writer_slot, writer_slots};

/// The clock word's low bits: the slot index (slots ≤ 64).
pub(super) const SLOT_BITS: u32 = 8;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// A slot tag no clock word has: the slot was never written.
const NEVER: u64 = u64::MAX;
/// Words of an octave mask.
pub(super) const MASK_WORDS: usize = OCTAVES.div_ceil(64);
/// An octave's counters: its 64 buckets, then how many values it took in
/// all (so that readers re-read only the octaves that moved).
const LANES: usize = SUBS + 1;
pub(super) const OCTAVE_TOTAL: usize = SUBS;
type OctaveCounts = [AtomicU64; LANES];

pub(super) struct TimeWindow {
    pub(super) length: Duration,
    pub(super) slot_len: Duration,
    pub(super) slots: usize,
    /// `epoch << 8 | slot`: the slot writers put sums, min and max in, and
    /// the tag they mark it with. Stored by the reader when a slot opens.
    pub(super) clock: AtomicU64,
    /// One stripe per writer slot (see [`crate::metrics::writers`]),
    /// allocated on that slot's first write to this series. Only the
    /// thread holding the writer slot writes it.
    pub(super) owned: Box<[OnceLock<Box<Stripe>>]>,
    /// Threads without a writer slot: atomic adds, and a lock around the
    /// sums.
    pub(super) shared: OnceLock<Box<Shared>>,
    pub(super) reader: Mutex<TimeReader>,
}

/// One writer's counters: cumulative since the series was created, never
/// reset by anyone, so its writer needs no atomic read-modify-write.
pub(super) struct Stripe {
    pub(super) head: Head,
    /// Per octave, the 64 buckets' cumulative counts and their total,
    /// allocated on first use.
    pub(super) octaves: Box<[OnceLock<Box<OctaveCounts>>]>,
    /// The octaves allocated, so that readers visit only those.
    pub(super) allocated: [AtomicU64; MASK_WORDS],
    /// Per slot: sum, min and max of the values written while it was
    /// current, tagged with its clock word.
    pub(super) slots: Box<[SlotTotals]>,
}

/// What every write touches, in one line.
#[repr(align(64))]
pub(super) struct Head {
    /// Zeros written: stored last by a zero's write, Release, as an
    /// octave's total is by other values.
    pub(super) zeros: AtomicU64,
    pub(super) sum: AtomicU64,
    pub(super) min: AtomicU64,
    pub(super) max: AtomicU64,
}

pub(super) struct SlotTotals {
    pub(super) tag: AtomicU64,
    pub(super) sum: AtomicU64,
    pub(super) min: AtomicU64,
    pub(super) max: AtomicU64,
}

/// The stripe of threads without a writer slot.
pub(super) struct Shared {
    pub(super) stripe: Stripe,
    /// Held around the sums, min and max (the counts are atomic adds).
    pub(super) lock: Mutex<()>,
}

/// A plain add of one to a counter only this thread writes.
#[inline(always)]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

#[inline(always)]
fn add_f64(total: &AtomicU64, value: f64) {
    let sum = f64::from_bits(total.load(Ordering::Relaxed)) + value;
    total.store(sum.to_bits(), Ordering::Relaxed);
}

/// Min and max of non-negative floats, which order as their bits.
#[inline(always)]
fn extremes(min: &AtomicU64, max: &AtomicU64, bits: u64) {
    if bits < min.load(Ordering::Relaxed) {
        min.store(bits, Ordering::Relaxed);
    }
    if bits > max.load(Ordering::Relaxed) {
        max.store(bits, Ordering::Relaxed);
    }
}

impl SlotTotals {
    fn new() -> Self {
        SlotTotals {
            tag: AtomicU64::new(NEVER),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Empties the slot for the clock word `tag`: the totals first, then
    /// the tag (Release), so a reader that sees the tag sees them reset.
    #[cold]
    #[inline(never)]
    fn reset(&self, tag: u64) {
        self.sum.store(0f64.to_bits(), Ordering::Relaxed);
        self.min.store(f64::INFINITY.to_bits(), Ordering::Relaxed);
        self.max.store(0f64.to_bits(), Ordering::Relaxed);
        self.tag.store(tag, Ordering::Release);
    }

    /// The writer's update of the slot of clock word `clock`.
    #[inline(always)]
    fn add(&self, clock: u64, value: f64, bits: u64) {
        if self.tag.load(Ordering::Relaxed) != clock {
            self.reset(clock);
        }
        add_f64(&self.sum, value);
        extremes(&self.min, &self.max, bits);
    }
}

impl Stripe {
    fn new(slots: usize) -> Self {
        Stripe {
            head: Head {
                zeros: AtomicU64::new(0),
                sum: AtomicU64::new(0f64.to_bits()),
                min: AtomicU64::new(f64::INFINITY.to_bits()),
                max: AtomicU64::new(0f64.to_bits()),
            },
            octaves: (0..OCTAVES).map(|_| OnceLock::new()).collect(),
            allocated: [const { AtomicU64::new(0) }; MASK_WORDS],
            slots: (0..slots).map(|_| SlotTotals::new()).collect(),
        }
    }

    #[inline(always)]
    fn octave(&self, octave: usize) -> &OctaveCounts {
        match self.octaves[octave].get() {
            Some(counts) => counts,
            None => self.allocate(octave),
        }
    }

    #[cold]
    #[inline(never)]
    fn allocate(&self, octave: usize) -> &OctaveCounts {
        let counts =
            self.octaves[octave].get_or_init(|| Box::new([const { AtomicU64::new(0) }; LANES]));
        self.allocated[octave / 64].fetch_or(1 << (octave % 64), Ordering::Release);
        counts
    }

    /// The slot totals of clock word `clock` (its slot index is in range:
    /// the reader only publishes such words).
    #[inline(always)]
    fn slot(&self, clock: u64) -> &SlotTotals {
        let at = (clock & SLOT_MASK) as usize;
        self.slots.get(at).unwrap_or(&self.slots[0])
    }

    /// The owner's write of a value in bucket `position`.
    #[inline(always)]
    pub(super) fn add_owned(&self, position: usize, bits: u64, clock: u64) {
        let counts = self.octave(position / SUBS);
        bump(&counts[position % SUBS]);
        let value = f64::from_bits(bits);
        self.slot(clock).add(clock, value, bits);
        add_f64(&self.head.sum, value);
        extremes(&self.head.min, &self.head.max, bits);
        // Last, Release: a reader that sees the total moved sees the rest.
        let total = counts[OCTAVE_TOTAL].load(Ordering::Relaxed);
        counts[OCTAVE_TOTAL].store(total + 1, Ordering::Release);
    }

    /// Values this stripe took, zeros included: its zeros and octave totals,
    /// each stored last by a write (Acquire: the rest of those writes shows).
    pub(super) fn records(&self) -> u64 {
        let mut records = self.head.zeros.load(Ordering::Acquire);
        for (w, word) in self.allocated.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let octave = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(counts) = self.octaves.get(octave).and_then(OnceLock::get) {
                    records += counts[OCTAVE_TOTAL].load(Ordering::Acquire);
                }
            }
        }
        records
    }

    /// Adds each allocated octave's total (Acquire: the counts of those
    /// writes show) into `totals`, by octave.
    pub(super) fn add_octave_totals(&self, totals: &mut [u64; OCTAVES]) {
        for (w, word) in self.allocated.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let octave = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let (Some(counts), Some(total)) = (
                    self.octaves.get(octave).and_then(OnceLock::get),
                    totals.get_mut(octave),
                ) {
                    *total += counts[OCTAVE_TOTAL].load(Ordering::Acquire);
                }
            }
        }
    }

    /// Adds every allocated octave's counts into `cum`; `position` maps an
    /// octave to its place in `cum.octaves`.
    pub(super) fn read_into(&self, cum: &mut Merged, position: &mut [usize; OCTAVES]) {
        for (w, word) in self.allocated.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let octave = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(counts) = self.octaves.get(octave).and_then(OnceLock::get) else {
                    continue;
                };
                if position[octave] == usize::MAX {
                    position[octave] = cum.octaves.len();
                    cum.octaves.push((octave, [0; SUBS]));
                }
                let into = &mut cum.octaves[position[octave]].1;
                for (total, c) in into.iter_mut().zip(counts.iter()) {
                    *total += c.load(Ordering::Relaxed);
                }
            }
        }
        cum.zeros += self.head.zeros.load(Ordering::Relaxed);
        cum.sum += f64::from_bits(self.head.sum.load(Ordering::Relaxed));
        cum.min = cum.min.min(self.head.min.load(Ordering::Relaxed));
        cum.max = cum.max.max(self.head.max.load(Ordering::Relaxed));
    }

    /// Adds the sums, min and max of the live slots (tagged with the clock
    /// word each was opened with) into `window`.
    pub(super) fn read_slots(&self, reader: &TimeReader, window: &mut Merged) {
        for (slot, totals) in self.slots.iter().enumerate() {
            if !reader.live[slot] || totals.tag.load(Ordering::Acquire) != reader.tags[slot] {
                continue;
            }
            window.sum += f64::from_bits(totals.sum.load(Ordering::Relaxed));
            window.min = window.min.min(totals.min.load(Ordering::Relaxed));
            window.max = window.max.max(totals.max.load(Ordering::Relaxed));
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        let allocated = self.octaves.iter().filter(|o| o.get().is_some()).count();
        std::mem::size_of::<Stripe>()
            + self.octaves.len() * std::mem::size_of::<OnceLock<Box<OctaveCounts>>>()
            + allocated * LANES * 8
            + self.slots.len() * std::mem::size_of::<SlotTotals>()
    }
}

impl TimeWindow {
    pub(super) fn new(length: Duration, slots: u32, now: Duration) -> Self {
        let slots = slots as usize;
        let writers = writer_slots();
        TimeWindow {
            length,
            slot_len: length / slots as u32,
            slots,
            clock: AtomicU64::new(0),
            owned: (0..writers).map(|_| OnceLock::new()).collect(),
            shared: OnceLock::new(),
            reader: Mutex::new(TimeReader {
                starts: vec![now; slots].into(),
                ends: vec![now; slots].into(),
                live: (0..slots).map(|s| s == 0).collect(),
                tags: vec![0; slots].into(),
                epoch: 0,
                base: Merged::empty(),
                deltas: (0..slots).map(|_| None).collect(),
                seen: vec![0; writers + 1].into(),
                cached: None,
                octaves: Vec::new(),
                octaves_valid: false,
                lifetime_buckets: false,
                #[cfg(test)]
                every_octave: false,
                #[cfg(test)]
                spliced: 0,
            }),
        }
    }

    /// Records a positive value (its bits within the trackable range).
    #[inline]
    pub(super) fn record(&self, bits: u64) {
        let position = layout::position_of_bits(bits);
        match writer_slot().and_then(|k| self.owned.get(k)) {
            Some(stripe) => {
                let stripe = stripe.get_or_init(|| Box::new(Stripe::new(self.slots)));
                stripe.add_owned(position, bits, self.clock.load(Ordering::Relaxed));
            }
            None => self.record_shared(Some(position), bits),
        }
    }

    pub(super) fn record_zero(&self) {
        match writer_slot().and_then(|k| self.owned.get(k)) {
            Some(stripe) => {
                let stripe = stripe.get_or_init(|| Box::new(Stripe::new(self.slots)));
                let clock = self.clock.load(Ordering::Relaxed);
                stripe.slot(clock).add(clock, 0.0, 0);
                extremes(&stripe.head.min, &stripe.head.max, 0);
                // Last, Release (see `add_owned`).
                let zeros = stripe.head.zeros.load(Ordering::Relaxed);
                stripe.head.zeros.store(zeros + 1, Ordering::Release);
            }
            None => self.record_shared(None, 0),
        }
    }

    /// A write from a thread without a writer slot (`position` None: a
    /// zero).
    #[inline(never)]
    fn record_shared(&self, position: Option<usize>, bits: u64) {
        let shared = self.shared.get_or_init(|| {
            Box::new(Shared {
                stripe: Stripe::new(self.slots),
                lock: Mutex::new(()),
            })
        });
        let stripe = &shared.stripe;
        let counts = position.map(|p| {
            let counts = stripe.octave(p / SUBS);
            counts[p % SUBS].fetch_add(1, Ordering::Relaxed);
            counts
        });
        let value = f64::from_bits(bits);
        {
            let _held = shared.lock.lock();
            let clock = self.clock.load(Ordering::Relaxed);
            stripe.slot(clock).add(clock, value, bits);
            add_f64(&stripe.head.sum, value);
            extremes(&stripe.head.min, &stripe.head.max, bits);
        }
        // Last, Release (see `Stripe::add_owned`).
        match counts {
            Some(counts) => counts[OCTAVE_TOTAL].fetch_add(1, Ordering::Release),
            None => stripe.head.zeros.fetch_add(1, Ordering::Release),
        };
    }

    pub(super) fn stripes(&self) -> impl Iterator<Item = (usize, &Stripe)> {
        self.owned
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.get().map(|s| (i, &**s)))
            .chain(self.shared.get().map(|s| (self.owned.len(), &s.stripe)))
    }
}
