//! Sparse bucket counts in the layout of a time window: a distribution that
//! can be added to, subtracted from and merged exactly, so that quantiles of
//! a merged interval are quantiles of every value in it.
//!
//! Bucket `i` is octave `i / 64` (the value's binary exponent, from 2⁻³⁰)
//! and sub-bucket `i % 64` (the top 6 bits of its mantissa): the same layout
//! as [`Histogram`](crate::Histogram)'s time windows, so a bucket's midpoint
//! is within 0.79% of every value in it.

use serde::{Deserialize, Serialize};

use super::histogram::{MAX_TRACKABLE, MIN_TRACKABLE};

const SUB_BITS: u32 = 6;
const SUBS: usize = 1 << SUB_BITS;
const OCTAVES: usize = 80;
/// Number of buckets in the layout (80 octaves × 64 sub-buckets).
pub(crate) const BUCKETS: usize = OCTAVES * SUBS;

/// Counts of values per bucket, sparse: only non-empty buckets are kept.
///
/// Carried by [`HistogramSummary::lifetime_buckets`](crate::HistogramSummary)
/// as cumulative counts over a series' life, and used by
/// `History` (feature `history`) as the distribution of each
/// interval. Zero is counted apart; positive values outside
/// [`MIN_TRACKABLE`]..=[`MAX_TRACKABLE`] are clamped to the range.
///
/// In JSON: `{"zeros": 0, "counts": [[bucket, count], ...]}`.
///
/// ```
/// use vitals::SparseBuckets;
///
/// let mut hour = SparseBuckets::default();
/// for v in [0.010, 0.020, 0.030, 0.040] {
///     hour.record(v);
/// }
/// let mut other = SparseBuckets::default();
/// other.record(1.0);
/// hour.merge(&other);
/// assert_eq!(hour.count(), 5);
/// let p50 = hour.quantile(0.5).unwrap();
/// assert!((p50 - 0.030).abs() / 0.030 < 0.008);
/// assert_eq!(hour.checked_sub(&other).unwrap().count(), 4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseBuckets {
    /// Values that were exactly zero.
    #[serde(default)]
    pub zeros: u64,
    /// `(bucket, count)` pairs of the non-empty buckets, ascending by bucket.
    /// Input from elsewhere (JSON) is normalised by
    /// [`normalize`](SparseBuckets::normalize) before use.
    #[serde(default)]
    pub counts: Vec<(u16, u64)>,
}

impl SparseBuckets {
    /// The bucket of a value (`None` for zero, NaN and negatives).
    ///
    /// ```
    /// let b = vitals::SparseBuckets::bucket_of(1.0).unwrap();
    /// let (lo, hi) = vitals::SparseBuckets::bucket_bounds(b);
    /// assert!(lo <= 1.0 && 1.0 < hi);
    /// ```
    pub fn bucket_of(value: f64) -> Option<u16> {
        if value.is_nan() || value <= 0.0 {
            return None;
        }
        let bits = value.clamp(MIN_TRACKABLE, MAX_TRACKABLE).to_bits();
        let octave = (bits >> 52) - (MIN_TRACKABLE.to_bits() >> 52);
        let sub = (bits >> (52 - SUB_BITS)) & (SUBS as u64 - 1);
        u16::try_from(octave * SUBS as u64 + sub).ok()
    }

    /// The lower (inclusive) and upper (exclusive) bound of a bucket; an
    /// index past the layout reads as the last bucket.
    ///
    /// ```
    /// let (lo, hi) = vitals::SparseBuckets::bucket_bounds(0);
    /// assert_eq!(lo, vitals::MIN_TRACKABLE);
    /// assert!(hi > lo);
    /// ```
    pub fn bucket_bounds(bucket: u16) -> (f64, f64) {
        let i = u64::from(bucket).min(BUCKETS as u64 - 1);
        let lower = MIN_TRACKABLE.to_bits() + (i << (52 - SUB_BITS));
        let upper = lower + (1 << (52 - SUB_BITS));
        (f64::from_bits(lower), f64::from_bits(upper))
    }

    /// Adds one value (zero counts apart; NaN and negatives are ignored).
    ///
    /// ```
    /// let mut b = vitals::SparseBuckets::default();
    /// b.record(0.0);
    /// b.record(f64::NAN);
    /// b.record(2.0);
    /// assert_eq!((b.zeros, b.count()), (1, 2));
    /// ```
    pub fn record(&mut self, value: f64) {
        if value == 0.0 {
            self.zeros += 1;
        } else if let Some(bucket) = Self::bucket_of(value) {
            match self.counts.binary_search_by_key(&bucket, |(b, _)| *b) {
                Ok(i) => self.counts[i].1 = self.counts[i].1.saturating_add(1),
                Err(i) => self.counts.insert(i, (bucket, 1)),
            }
        }
    }

    /// Every value counted, zeros included.
    ///
    /// ```
    /// assert_eq!(vitals::SparseBuckets::default().count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.zeros, |n, (_, c)| n.saturating_add(*c))
    }

    /// Sorts the pairs, adds up repeated buckets, drops empty buckets and
    /// buckets past the layout: what any input is turned into before use.
    ///
    /// ```
    /// let mut b = vitals::SparseBuckets { zeros: 0, counts: vec![(9, 1), (3, 0), (9, 2), (60000, 5)] };
    /// b.normalize();
    /// assert_eq!(b.counts, [(9, 3)]);
    /// ```
    pub fn normalize(&mut self) {
        let sorted = self.counts.windows(2).all(|w| w[0].0 < w[1].0);
        if !sorted {
            self.counts.sort_unstable_by_key(|(b, _)| *b);
            self.counts.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    kept.1 = kept.1.saturating_add(later.1);
                    true
                } else {
                    false
                }
            });
        }
        self.counts
            .retain(|(b, c)| *c > 0 && usize::from(*b) < BUCKETS);
    }

    /// True when the pairs are as [`normalize`](SparseBuckets::normalize)
    /// leaves them: ascending, no repeats, no empty buckets, all within the
    /// layout.
    #[cfg(feature = "history")]
    pub(crate) fn is_normalized(&self) -> bool {
        self.counts.windows(2).all(|w| w[0].0 < w[1].0)
            && self
                .counts
                .iter()
                .all(|&(b, c)| c > 0 && usize::from(b) < BUCKETS)
    }

    /// Adds `other`'s counts to these (both normalised).
    ///
    /// ```
    /// let mut a = vitals::SparseBuckets::default();
    /// a.record(1.0);
    /// a.merge(&a.clone());
    /// assert_eq!(a.count(), 2);
    /// ```
    pub fn merge(&mut self, other: &SparseBuckets) {
        self.zeros = self.zeros.saturating_add(other.zeros);
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts.extend_from_slice(&other.counts);
            return;
        }
        // The common case when an interval keeps absorbing short deltas:
        // every bucket of `other` is already here, so add in place.
        if self.add_in_place(other) {
            return;
        }
        let mut out = Vec::with_capacity(self.counts.len() + other.counts.len());
        let (mut a, mut b) = (
            self.counts.iter().peekable(),
            other.counts.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.counts = out;
    }

    /// Adds `other` without allocating when all of its buckets are present;
    /// returns false (and changes nothing) otherwise.
    fn add_in_place(&mut self, other: &SparseBuckets) -> bool {
        let mut at = Vec::with_capacity(other.counts.len());
        let mut i = 0;
        for &(bucket, _) in &other.counts {
            while i < self.counts.len() && self.counts[i].0 < bucket {
                i += 1;
            }
            if i == self.counts.len() || self.counts[i].0 != bucket {
                return false;
            }
            at.push(i);
        }
        for (&i, &(_, c)) in at.iter().zip(&other.counts) {
            self.counts[i].1 = self.counts[i].1.saturating_add(c);
        }
        true
    }

    /// These counts minus `earlier`'s (both normalised): the values recorded
    /// between two cumulative readings. `None` when some bucket went down,
    /// which means the counts were reset (the process restarted).
    ///
    /// ```
    /// let mut early = vitals::SparseBuckets::default();
    /// early.record(1.0);
    /// let mut late = early.clone();
    /// late.record(5.0);
    /// assert_eq!(late.checked_sub(&early).unwrap().count(), 1);
    /// assert!(early.checked_sub(&late).is_none());
    /// ```
    pub fn checked_sub(&self, earlier: &SparseBuckets) -> Option<SparseBuckets> {
        let zeros = self.zeros.checked_sub(earlier.zeros)?;
        let mut counts = Vec::new();
        let mut old = earlier.counts.iter().peekable();
        for &(bucket, count) in &self.counts {
            let mut before = 0;
            if let Some(&&(b, c)) = old.peek() {
                if b < bucket {
                    return None; // a bucket vanished
                }
                if b == bucket {
                    before = c;
                    old.next();
                }
            }
            let diff = count.checked_sub(before)?;
            if diff > 0 {
                counts.push((bucket, diff));
            }
        }
        if old.next().is_some() {
            return None;
        }
        Some(SparseBuckets { zeros, counts })
    }

    /// The nearest-rank quantile `q` (0 < q ≤ 1) as its bucket's midpoint,
    /// within 0.79% of the exact value; `None` when empty or `q` is out of
    /// range.
    ///
    /// ```
    /// let mut b = vitals::SparseBuckets::default();
    /// (1..=100).for_each(|v| b.record(f64::from(v)));
    /// let p99 = b.quantile(0.99).unwrap();
    /// assert!((p99 - 99.0).abs() / 99.0 < 0.008);
    /// assert_eq!(b.quantile(1.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 || !(q > 0.0 && q <= 1.0) {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        if rank <= self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for &(bucket, count) in &self.counts {
            seen = seen.saturating_add(count);
            if seen >= rank {
                let (lo, hi) = Self::bucket_bounds(bucket);
                return Some((lo + hi) / 2.0);
            }
        }
        self.counts.last().map(|&(b, _)| Self::bucket_bounds(b).1)
    }

    /// Lower bound of the smallest non-empty bucket (0 with zeros).
    ///
    /// ```
    /// let mut b = vitals::SparseBuckets::default();
    /// b.record(3.0);
    /// assert!(b.min_bound().unwrap() <= 3.0);
    /// ```
    pub fn min_bound(&self) -> Option<f64> {
        if self.zeros > 0 {
            return Some(0.0);
        }
        self.counts.first().map(|&(b, _)| Self::bucket_bounds(b).0)
    }

    /// Upper bound of the largest non-empty bucket (0 with only zeros).
    ///
    /// ```
    /// let mut b = vitals::SparseBuckets::default();
    /// b.record(3.0);
    /// assert!(b.max_bound().unwrap() >= 3.0);
    /// ```
    pub fn max_bound(&self) -> Option<f64> {
        match self.counts.last() {
            Some(&(b, _)) => Some(Self::bucket_bounds(b).1),
            None => (self.zeros > 0).then_some(0.0),
        }
    }

    /// Heap bytes held.
    #[cfg(feature = "history")]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<(u16, u64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_the_time_window_layout() {
        for v in [MIN_TRACKABLE, 1e-6, 0.5, 1.0, 3.0, 1e6, MAX_TRACKABLE] {
            let b = SparseBuckets::bucket_of(v).unwrap();
            let (lo, hi) = SparseBuckets::bucket_bounds(b);
            assert!(lo <= v && v < hi, "{v}: {lo}..{hi}");
            assert!((hi - lo) / lo <= 1.0 / 64.0 + 1e-12);
        }
        assert_eq!(SparseBuckets::bucket_of(-1.0), None);
        assert_eq!(
            SparseBuckets::bucket_of(f64::INFINITY),
            SparseBuckets::bucket_of(MAX_TRACKABLE)
        );
        assert!(usize::from(SparseBuckets::bucket_of(MAX_TRACKABLE).unwrap()) < BUCKETS);
    }

    #[test]
    fn sub_detects_resets_and_merge_adds() {
        let mut a = SparseBuckets::default();
        let mut b = SparseBuckets::default();
        for v in [1.0, 2.0, 2.0, 8.0] {
            a.record(v);
        }
        for v in [2.0, 4.0, 0.0] {
            b.record(v);
        }
        let mut sum = a.clone();
        sum.merge(&b);
        assert_eq!(sum.count(), 7);
        assert_eq!(sum.checked_sub(&a).unwrap(), b);
        assert_eq!(sum.checked_sub(&b).unwrap(), a);
        assert!(a.checked_sub(&sum).is_none());
        assert!(a.checked_sub(&b).is_none());
    }
}
