//! Bucket counts held densely over the range of buckets in use: what an
//! open interval and a series' previous reading are kept as, because adding
//! a delta of `m` buckets is then `m` indexed additions, where a sorted
//! sparse list would be rewritten (`O(n)`) whenever a new bucket appears.
//!
//! The range grows a whole octave (64 buckets, 512 bytes) at a time, so a
//! distribution over four decades takes about 7 KiB: half of what the same
//! buckets take as sparse `(u16, u64)` pairs once most are in use. The
//! widest possible range, the whole layout, is 40 KiB.

use crate::metrics::layout::{self, POSITIONS as BUCKETS};
use crate::metrics::sparse::SparseBuckets;

/// Octave-aligned growth step.
const STEP: usize = 64;

/// Counts of the buckets `first .. first + counts.len()`, and of zeros.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Dense {
    pub(crate) zeros: u64,
    first: usize,
    counts: Vec<u64>,
}

impl Dense {
    /// The counts of `pairs` (any order, repeats added up; buckets past the
    /// layout are ignored).
    pub(crate) fn from_pairs(zeros: u64, pairs: impl IntoIterator<Item = (u16, u64)>) -> Self {
        let mut d = Dense {
            zeros,
            ..Dense::default()
        };
        for (bucket, count) in pairs {
            d.add(bucket, count);
        }
        d
    }

    /// Adds `count` to `bucket`.
    pub(crate) fn add(&mut self, bucket: u16, count: u64) {
        if count == 0 {
            return;
        }
        if let Some(slot) = self.slot(bucket) {
            *slot = slot.saturating_add(count);
        }
    }

    /// The count of `bucket`.
    pub(crate) fn get(&self, bucket: u16) -> u64 {
        usize::from(bucket)
            .checked_sub(self.first)
            .and_then(|i| self.counts.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Sets `bucket`'s count.
    pub(crate) fn set(&mut self, bucket: u16, count: u64) {
        if count == 0 && self.get(bucket) == 0 {
            return;
        }
        if let Some(slot) = self.slot(bucket) {
            *slot = count;
        }
    }

    /// Forgets every count, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.zeros = 0;
        self.counts.fill(0);
    }

    /// The non-empty buckets, ascending.
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        let first = self.first;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            // The range never passes the layout, whose indexes fit a u16.
            .map(move |(i, c)| ((first + i) as u16, *c))
    }

    /// The sum of the bucket counts (zeros apart).
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |t, c| t.wrapping_add(*c))
    }

    /// The first bucket of the range and the range's counts.
    pub(crate) fn range(&self) -> (usize, &[u64]) {
        (self.first, &self.counts)
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u64>()
    }

    /// The counter of `bucket`, growing the range to reach it; `None` past
    /// the layout.
    fn slot(&mut self, bucket: u16) -> Option<&mut u64> {
        let b = usize::from(bucket);
        if b >= BUCKETS {
            return None;
        }
        if self.counts.is_empty() {
            self.first = b - b % STEP;
            self.counts.resize(STEP, 0);
        } else if b < self.first {
            let new_first = b - b % STEP;
            let grow = self.first - new_first;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.first = new_first;
        } else if b >= self.first + self.counts.len() {
            let end = (b / STEP + 1) * STEP;
            self.counts.resize(end - self.first, 0);
        }
        self.counts.get_mut(b - self.first)
    }
}

/// The position of a scale-6 index in the layout's range, as the store
/// keeps it (positions fit a u16).
pub(crate) fn position16(index: i32) -> Option<u16> {
    layout::position(index).and_then(|p| u16::try_from(p).ok())
}

impl From<&SparseBuckets> for Dense {
    fn from(b: &SparseBuckets) -> Self {
        // Positions of the native scale (callers hold scale-6 buckets).
        let pairs = b
            .counts
            .iter()
            .filter_map(|&(i, c)| Some((position16(i)?, c)));
        Dense::from_pairs(b.zeros, pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_both_ways_and_lists_buckets_in_order() {
        let mut d = Dense::default();
        assert_eq!(d.pairs().count(), 0);
        d.add(1000, 2);
        d.add(5, 1); // grows at the front
        d.add(4000, 3); // and at the back
        d.add(1000, 1);
        d.add(7, 0); // nothing
        d.add(u16::MAX, 9); // past the layout: ignored
        assert_eq!(
            d.pairs().collect::<Vec<_>>(),
            [(5, 1), (1000, 3), (4000, 3)]
        );
        assert_eq!(
            (d.get(1000), d.get(6), d.get(0), d.get(u16::MAX)),
            (3, 0, 0, 0)
        );
        assert_eq!(d.total(), 7);
        d.set(1000, 7);
        d.set(3, 0); // a zero outside the range does not grow it
        assert_eq!(d.get(1000), 7);
        let bytes = d.heap_bytes();
        d.clear();
        assert_eq!((d.pairs().count(), d.heap_bytes()), (0, bytes));
        let s = SparseBuckets {
            zeros: 4,
            counts: vec![(9, 1), (3, 2), (9, 1)],
            ..SparseBuckets::default()
        };
        let d = Dense::from(&s);
        let at = |i: i32| position16(i).unwrap();
        assert_eq!(
            (d.zeros, d.pairs().collect::<Vec<_>>()),
            (4, vec![(at(3), 2), (at(9), 2)])
        );
    }

    #[test]
    fn the_last_bucket_of_the_layout_fits() {
        let last = u16::try_from(BUCKETS - 1).unwrap();
        let mut d = Dense::default();
        d.add(0, 1);
        d.add(last, 1);
        assert_eq!(d.pairs().collect::<Vec<_>>(), [(0, 1), (last, 1)]);
        assert_eq!(d.heap_bytes(), BUCKETS.next_multiple_of(STEP) * 8);
    }
}
