//! The reading side of a time window: when each slot was current, the
//! lifetime buckets of retired slots, and slots' counts merged across
//! stripes for a snapshot.

use std::time::Duration;

use super::bucket_math::Moments;
use super::time::TOUCHED_WORDS;
use super::*;
use crate::metrics::layout;
use crate::metrics::sparse::SparseBuckets;

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
pub(super) fn marked_octaves(mask: [u64; TOUCHED_WORDS]) -> impl Iterator<Item = usize> + Clone {
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
    pub(super) static SCRATCH: std::cell::RefCell<Merged> = const { std::cell::RefCell::new(Merged::empty()) };
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
