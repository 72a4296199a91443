//! Sparse exponential bucket counts: a distribution that can be added to,
//! subtracted from, merged and downscaled exactly, so that quantiles of a
//! merged interval (or of several processes) are quantiles of every value
//! in it. The layout is [`layout`](crate::layout)'s.

use serde::{Deserialize, Serialize};

use super::layout::{self, MAX_INDEX, MIN_INDEX, MIN_SCALE, SCALE};

/// Counts of values per exponential bucket, sparse: only non-empty buckets
/// are kept.
///
/// Bucket `i` at `scale` holds the values in (2^((i−1)/2^scale),
/// 2^(i/2^scale)], the OpenTelemetry and Prometheus native-histogram
/// definition (see [`layout`](crate::layout)); histograms count at scale 6,
/// and [`downscale`](SparseBuckets::downscale) /
/// [`fit`](SparseBuckets::fit) lower the scale exactly. Zeros are counted
/// apart (the zero bucket, threshold
/// [`ZERO_THRESHOLD`](crate::layout::ZERO_THRESHOLD)).
///
/// Carried by [`HistogramSummary`](crate::snapshot::HistogramSummary) for the window
/// and the series' life, and used by `History` (feature `history`) as the
/// distribution of each interval.
///
/// In JSON: `{"scale": 6, "zeros": 0, "counts": [[index, count], ...]}`.
/// Lines written before schema version 3 carry no `scale`: their buckets
/// were log-linear (64 linear sub-buckets per power of two, indexed from
/// 2⁻³⁰). Each such bucket is read into the exponential bucket holding its
/// midpoint; an old bucket can straddle two new ones, so quantiles of data
/// migrated this way are within 1.4% (not 0.55%) of the exact values.
///
/// ```
/// use vitals::snapshot::SparseBuckets;
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
/// assert!((p50 - 0.030).abs() / 0.030 < 0.0055);
/// assert_eq!(hour.checked_sub(&other).unwrap().count(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WireBuckets")]
pub struct SparseBuckets {
    /// The scale: 6 as recorded, lower once downscaled
    /// ([`MIN_SCALE`](crate::layout::MIN_SCALE) ..= 6).
    pub scale: i8,
    /// Values that were exactly zero.
    pub zeros: u64,
    /// `(index, count)` pairs of the non-empty buckets, ascending by index.
    /// Input from elsewhere (JSON) is normalised by
    /// [`normalize`](SparseBuckets::normalize) before use.
    pub counts: Vec<(i32, u64)>,
}

impl Default for SparseBuckets {
    /// No values, at scale 6.
    fn default() -> Self {
        SparseBuckets {
            scale: SCALE,
            zeros: 0,
            counts: Vec::new(),
        }
    }
}

/// What JSON holds: the current form, or the log-linear form of schema
/// versions 1 and 2 (no `scale`).
#[derive(Deserialize)]
struct WireBuckets {
    #[serde(default)]
    scale: Option<i64>,
    #[serde(default)]
    zeros: u64,
    #[serde(default)]
    counts: Vec<(i64, u64)>,
}

impl TryFrom<WireBuckets> for SparseBuckets {
    type Error = String;

    fn try_from(w: WireBuckets) -> Result<Self, String> {
        let Some(scale) = w.scale else {
            let mut b = SparseBuckets {
                zeros: w.zeros,
                counts: w
                    .counts
                    .iter()
                    .filter_map(|&(p, c)| Some((layout::legacy_index(u16::try_from(p).ok()?)?, c)))
                    .collect(),
                ..SparseBuckets::default()
            };
            b.normalize();
            return Ok(b);
        };
        let scale = i8::try_from(scale)
            .ok()
            .filter(|s| (MIN_SCALE..=SCALE).contains(s))
            .ok_or_else(|| format!("bucket scale {scale} outside {MIN_SCALE}..={SCALE}"))?;
        // Indexes beyond i32 are past every layout: kept as an index that
        // `normalize` drops.
        let counts = w
            .counts
            .into_iter()
            .map(|(i, c)| (i32::try_from(i).unwrap_or(i32::MAX), c))
            .collect();
        Ok(SparseBuckets {
            scale,
            zeros: w.zeros,
            counts,
        })
    }
}

impl SparseBuckets {
    /// The scale-6 bucket of a value (`None` for zero, NaN and negatives;
    /// positive values outside the trackable range are clamped to it): see
    /// [`layout::index_of`](crate::layout::index_of).
    ///
    /// ```
    /// let b = vitals::snapshot::SparseBuckets::default();
    /// let i = vitals::snapshot::SparseBuckets::bucket_of(1.0).unwrap();
    /// let (lo, hi) = b.bounds(i);
    /// assert!(lo < 1.0 && 1.0 <= hi);
    /// ```
    pub fn bucket_of(value: f64) -> Option<i32> {
        layout::index_of(value)
    }

    /// The lower (exclusive) and upper (inclusive) bound of bucket `index`
    /// at this scale.
    ///
    /// ```
    /// let b = vitals::snapshot::SparseBuckets::default();
    /// assert_eq!(b.bounds(0), (2f64.powf(-1.0 / 64.0), 1.0));
    /// ```
    pub fn bounds(&self, index: i32) -> (f64, f64) {
        (
            layout::lower_bound(index, self.scale),
            layout::upper_bound(index, self.scale),
        )
    }

    /// The indexes a bucket may have at this scale: those of the trackable
    /// range.
    fn index_range(&self) -> (i32, i32) {
        let k = steps(SCALE, self.scale);
        (
            layout::downscale_index(MIN_INDEX, k),
            layout::downscale_index(MAX_INDEX, k),
        )
    }

    /// Adds one value (zero counts apart; NaN and negatives are ignored;
    /// positive values outside the trackable range are clamped to it).
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// b.record(0.0);
    /// b.record(f64::NAN);
    /// b.record(2.0);
    /// assert_eq!((b.zeros, b.count()), (1, 2));
    /// ```
    pub fn record(&mut self, value: f64) {
        if value == 0.0 {
            self.zeros = self.zeros.saturating_add(1);
        } else if let Some(index) = layout::index_of(value) {
            let index = layout::downscale_index(index, steps(SCALE, self.scale));
            self.add(index, 1);
        }
    }

    /// Adds `count` to bucket `index` (kept sorted).
    fn add(&mut self, index: i32, count: u64) {
        // Appending is the common case (values arriving in order).
        if let Some(last) = self.counts.last_mut() {
            if last.0 == index {
                last.1 = last.1.saturating_add(count);
                return;
            }
            if last.0 < index {
                self.counts.push((index, count));
                return;
            }
        }
        match self.counts.binary_search_by_key(&index, |(b, _)| *b) {
            Ok(i) => self.counts[i].1 = self.counts[i].1.saturating_add(count),
            Err(i) => self.counts.insert(i, (index, count)),
        }
    }

    /// Every value counted, zeros included.
    ///
    /// ```
    /// assert_eq!(vitals::snapshot::SparseBuckets::default().count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.zeros, |n, (_, c)| n.saturating_add(*c))
    }

    /// Sorts the pairs, adds up repeated buckets, drops empty buckets and
    /// buckets past the trackable range: what any input is turned into
    /// before use.
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets { scale: 6, zeros: 0, counts: vec![(9, 1), (3, 0), (9, 2), (60000, 5)] };
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
        let (lo, hi) = self.index_range();
        self.counts.retain(|(b, c)| *c > 0 && (lo..=hi).contains(b));
    }

    /// True when the pairs are as [`normalize`](SparseBuckets::normalize)
    /// leaves them: ascending, no repeats, no empty buckets, all within the
    /// range.
    #[cfg(feature = "history")]
    pub(crate) fn is_normalized(&self) -> bool {
        let (lo, hi) = self.index_range();
        self.counts.windows(2).all(|w| w[0].0 < w[1].0)
            && self
                .counts
                .iter()
                .all(|&(b, c)| c > 0 && (lo..=hi).contains(&b))
    }

    /// Lowers the scale by `k` (not below
    /// [`MIN_SCALE`](crate::layout::MIN_SCALE)): each run of 2^k buckets
    /// becomes one, exactly (see
    /// [`downscale_index`](crate::layout::downscale_index)).
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// for v in [1.5, 1.9, 3.0] {
    ///     b.record(v);
    /// }
    /// b.downscale(6);
    /// assert_eq!((b.scale, b.counts.clone()), (0, vec![(1, 2), (2, 1)]));
    /// ```
    pub fn downscale(&mut self, k: u32) {
        let k = k.min(steps(self.scale, MIN_SCALE));
        if k == 0 {
            return;
        }
        // k ≤ scale − MIN_SCALE: the result is at least MIN_SCALE.
        self.scale = (i32::from(self.scale) - k as i32) as i8;
        let mut out: Vec<(i32, u64)> = Vec::with_capacity(self.counts.len());
        for &(i, c) in &self.counts {
            let j = layout::downscale_index(i, k);
            match out.last_mut() {
                Some(last) if last.0 == j => last.1 = last.1.saturating_add(c),
                _ => out.push((j, c)),
            }
        }
        self.counts = out;
    }

    /// Downscales just enough that the buckets from the lowest to the
    /// highest non-empty one number at most `max_buckets` (at least 1):
    /// the bucket-count limit of exporters
    /// ([`DEFAULT_MAX_BUCKETS`](crate::layout::DEFAULT_MAX_BUCKETS) = 160,
    /// OpenTelemetry's). Returns how far the scale went down.
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// let mut v = 0.001;
    /// while v < 1000.0 {
    ///     b.record(v);
    ///     v *= 1.01;
    /// }
    /// let n = b.count();
    /// b.fit(vitals::layout::DEFAULT_MAX_BUCKETS);
    /// let (first, last) = (b.counts[0].0, b.counts.last().unwrap().0);
    /// assert!(last - first < 160);
    /// assert!(b.scale < 6);
    /// assert_eq!(b.count(), n);
    /// ```
    pub fn fit(&mut self, max_buckets: usize) -> u32 {
        let k = self.fit_steps(max_buckets);
        self.downscale(k);
        k
    }

    /// How far [`fit`](SparseBuckets::fit) would take the scale down: 0
    /// when the buckets already fit.
    pub(crate) fn fit_steps(&self, max_buckets: usize) -> u32 {
        let max = i64::try_from(max_buckets.max(1)).unwrap_or(i64::MAX);
        let mut k = 0;
        while let (Some(&(first, _)), Some(&(last, _))) = (self.counts.first(), self.counts.last())
        {
            let span = i64::from(layout::downscale_index(last, k))
                - i64::from(layout::downscale_index(first, k))
                + 1;
            if span <= max || k >= steps(self.scale, MIN_SCALE) {
                break;
            }
            k += 1;
        }
        k
    }

    /// The buckets as OpenTelemetry and Prometheus spans want them: the
    /// first non-empty index and the counts from it to the last non-empty
    /// one, empty buckets between included (`(0, [])` when none). Buckets
    /// outside the trackable range (only unnormalised input has them) are
    /// left out, so the list is at most 5,121 long.
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// b.record(1.0);
    /// b.record(2f64.powf(3.0 / 64.0));
    /// assert_eq!(b.offset_counts(), (0, vec![1, 0, 0, 1]));
    /// ```
    pub fn offset_counts(&self) -> (i32, Vec<u64>) {
        let (lo, hi) = self.index_range();
        let inside = || self.counts.iter().filter(|(i, _)| (lo..=hi).contains(i));
        let (Some(first), Some(last)) = (inside().map(|p| p.0).min(), inside().map(|p| p.0).max())
        else {
            return (0, Vec::new());
        };
        let mut dense = vec![0u64; (last - first) as usize + 1];
        for &(i, c) in inside() {
            let at = &mut dense[(i - first) as usize];
            *at = at.saturating_add(c);
        }
        (first, dense)
    }

    /// A copy of `other` at this scale, when it is finer.
    fn at_scale_of(&self, other: &SparseBuckets) -> Option<SparseBuckets> {
        (other.scale > self.scale).then(|| {
            let mut o = other.clone();
            o.downscale(steps(other.scale, self.scale));
            o
        })
    }

    /// Adds `other`'s counts to these (both normalised), exactly: a finer
    /// scale is downscaled to the coarser one first. An `other` at a scale
    /// outside [`MIN_SCALE`](crate::layout::MIN_SCALE) ..= 6 (which JSON
    /// input refuses; only a field set by hand has one) adds its zeros only.
    ///
    /// ```
    /// let mut a = vitals::snapshot::SparseBuckets::default();
    /// a.record(1.0);
    /// a.merge(&a.clone());
    /// assert_eq!(a.count(), 2);
    /// ```
    pub fn merge(&mut self, other: &SparseBuckets) {
        if !(MIN_SCALE..=SCALE).contains(&other.scale) {
            self.zeros = self.zeros.saturating_add(other.zeros);
            return;
        }
        if other.scale < self.scale {
            self.downscale(steps(self.scale, other.scale));
        }
        let coarser = self.at_scale_of(other);
        let other = coarser.as_ref().unwrap_or(other);
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

    /// These counts minus `earlier`'s (both normalised), at the coarser of
    /// the two scales: the values recorded between two cumulative readings.
    /// `None` when some bucket went down, which means the counts were reset
    /// (the process restarted), or when a scale is outside
    /// [`MIN_SCALE`](crate::layout::MIN_SCALE) ..= 6.
    ///
    /// ```
    /// let mut early = vitals::snapshot::SparseBuckets::default();
    /// early.record(1.0);
    /// let mut late = early.clone();
    /// late.record(5.0);
    /// assert_eq!(late.checked_sub(&early).unwrap().count(), 1);
    /// assert!(early.checked_sub(&late).is_none());
    /// ```
    pub fn checked_sub(&self, earlier: &SparseBuckets) -> Option<SparseBuckets> {
        let valid = MIN_SCALE..=SCALE;
        if !valid.contains(&self.scale) || !valid.contains(&earlier.scale) {
            return None;
        }
        if earlier.scale < self.scale {
            let mut me = self.clone();
            me.downscale(steps(self.scale, earlier.scale));
            return me.checked_sub(earlier);
        }
        let coarser = self.at_scale_of(earlier);
        let earlier = coarser.as_ref().unwrap_or(earlier);
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
        Some(SparseBuckets {
            scale: self.scale,
            zeros,
            counts,
        })
    }

    /// The nearest-rank quantile `q` (0 < q ≤ 1) as its bucket's geometric
    /// midpoint (within 0.543% of the exact value at scale 6; see
    /// [`layout::quantile`](crate::layout::quantile)); `None` when empty or
    /// `q` is out of range.
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// (1..=100).for_each(|v| b.record(f64::from(v)));
    /// let p99 = b.quantile(0.99).unwrap();
    /// assert!((p99 - 99.0).abs() / 99.0 < 0.0055);
    /// assert_eq!(b.quantile(1.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<f64> {
        layout::quantile(self.zeros, self.counts.iter().copied(), self.scale, q)
    }

    /// Lower bound of the smallest non-empty bucket (0 with zeros).
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// b.record(3.0);
    /// assert!(b.min_bound().unwrap() <= 3.0);
    /// ```
    pub fn min_bound(&self) -> Option<f64> {
        if self.zeros > 0 {
            return Some(0.0);
        }
        self.counts.first().map(|&(b, _)| self.bounds(b).0)
    }

    /// Upper bound of the largest non-empty bucket (0 with only zeros).
    ///
    /// ```
    /// let mut b = vitals::snapshot::SparseBuckets::default();
    /// b.record(3.0);
    /// assert!(b.max_bound().unwrap() >= 3.0);
    /// ```
    pub fn max_bound(&self) -> Option<f64> {
        match self.counts.last() {
            Some(&(b, _)) => Some(self.bounds(b).1),
            None => (self.zeros > 0).then_some(0.0),
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<(i32, u64)>()
    }
}

/// How many halvings lead from scale `from` down to `to` (0 when `to` is
/// not below `from`): in `i32`, so that any `i8` scales a caller wrote
/// into the public field subtract without overflow.
fn steps(from: i8, to: i8) -> u32 {
    (i32::from(from) - i32::from(to)).max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        let b = SparseBuckets::default();
        for v in [MIN_TRACKABLE, 1e-6, 0.5, 1.0, 3.0, 1e6, MAX_TRACKABLE] {
            let i = SparseBuckets::bucket_of(v).unwrap();
            let (lo, hi) = b.bounds(i);
            assert!(lo < v && v <= hi, "{v}: {lo}..{hi}");
            assert!((hi - lo) / lo <= 2f64.powf(1.0 / 64.0) - 1.0 + 1e-12);
        }
        assert_eq!(SparseBuckets::bucket_of(-1.0), None);
        assert_eq!(
            SparseBuckets::bucket_of(f64::INFINITY),
            SparseBuckets::bucket_of(MAX_TRACKABLE)
        );
    }

    use super::super::layout::{MAX_TRACKABLE, MIN_TRACKABLE};

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

    #[test]
    fn merging_scales_downscales_the_finer() {
        let mut fine = SparseBuckets::default();
        let mut coarse = SparseBuckets::default();
        for v in [0.3, 1.7, 40.0] {
            fine.record(v);
            coarse.record(v * 1.3);
        }
        coarse.downscale(3);
        let mut both = fine.clone();
        both.merge(&coarse);
        assert_eq!(both.scale, 3);
        let mut expected = fine.clone();
        expected.downscale(3);
        expected.merge(&coarse);
        assert_eq!(both, expected);
        assert_eq!(both.count(), 6);
        // The other way round gives the same.
        let mut other = coarse.clone();
        other.merge(&fine);
        assert_eq!(other, both);
        assert_eq!(both.checked_sub(&fine).unwrap(), coarse);
    }

    #[test]
    fn legacy_json_is_migrated_and_bad_scales_refused() {
        // Schema 2: octave 30 (values 1 ..< 2), sub-buckets 0 and 32.
        let old = r#"{"zeros":2,"counts":[[1920,3],[1952,1],[99999,4]]}"#;
        let b: SparseBuckets = serde_json::from_str(old).unwrap();
        assert_eq!(b.scale, 6);
        assert_eq!(b.zeros, 2);
        // 1 + 1/128 and 1.5 + 1/128: buckets 1 and 38 of scale 6.
        assert_eq!(b.counts, [(1, 3), (38, 1)]);
        let new = serde_json::to_string(&b).unwrap();
        assert_eq!(new, r#"{"scale":6,"zeros":2,"counts":[[1,3],[38,1]]}"#);
        assert_eq!(serde_json::from_str::<SparseBuckets>(&new).unwrap(), b);
        assert!(serde_json::from_str::<SparseBuckets>(r#"{"scale":7}"#).is_err());
        assert!(serde_json::from_str::<SparseBuckets>(r#"{"scale":-11}"#).is_err());
        let mut far: SparseBuckets =
            serde_json::from_str(r#"{"scale":6,"counts":[[99999999999,1],[5,1]]}"#).unwrap();
        far.normalize();
        assert_eq!(far.counts, [(5, 1)]);
    }
}
