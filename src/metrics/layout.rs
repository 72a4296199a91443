//! The bucket layout: base-2 exponential buckets at scale 6, the definition
//! OpenTelemetry's exponential histograms and Prometheus' native histograms
//! share, so that every merge and every export is exact.
//!
//! Bucket `i` at scale `s` holds the values in (2^((i−1)/2^s), 2^(i/2^s)]:
//! the upper bound is inclusive. At the native scale 6 a bucket is
//! 2^(1/64) ≈ 1.0109 times as wide as its lower bound, and its
//! representative value (see [`midpoint`]) is within
//! 2^(1/128) − 1 ≈ 0.543% of every value in it.
//!
//! This module is the one place that knows the layout: the histograms'
//! record path and windows, [`SparseBuckets`](crate::snapshot::SparseBuckets), the
//! snapshot and `History` all take bucket indexes, bounds, midpoints,
//! nearest ranks and quantiles from here.
//!
//! # The index without a logarithm
//!
//! For a positive normal `f64` with biased exponent `e` and 52-bit mantissa
//! `m`, the value is 2^(e−1023)·(1 + m/2⁵²), so its index is
//! 64·(e − 1023) + c, where `c` counts the edges 2^(k/64), `k` in 0..64,
//! that the mantissa lies strictly above. Those edges are irrational (but
//! for `k = 0`), so "above the edge" is "above the largest mantissa below
//! it", `T[k]`, a table of 64 integers computed exactly (integer 64th
//! roots, checked by the tests with exact big-integer arithmetic). The
//! edges are more than 2⁴⁵ apart in mantissa units, so the top 7 mantissa
//! bits pick a range holding at most one edge: one load from a 128-word
//! table gives the edges below the range and the one edge that may lie in
//! it, and one compare with that edge finishes.
//!
//! # Range and the zero bucket
//!
//! Values from [`MIN_TRACKABLE`] (2⁻³⁰) to [`MAX_TRACKABLE`] (2⁵⁰), buckets
//! [`MIN_INDEX`] ..= [`MAX_INDEX`], are told apart. The zero bucket holds
//! exactly the zeros: its threshold, [`ZERO_THRESHOLD`], is 0. Positive
//! values below the range (subnormals included) are clamped to
//! [`MIN_TRACKABLE`], larger ones (+∞ included) to [`MAX_TRACKABLE`]; the
//! histograms count both as saturated.
//!
//! ```
//! use vitals::layout;
//!
//! let i = layout::index_of(1.5).unwrap();
//! assert!(layout::lower_bound(i, 6) < 1.5 && 1.5 <= layout::upper_bound(i, 6));
//! // Powers of two are upper bounds: 2 is the last value of its bucket.
//! assert_eq!(layout::index_of(2.0), Some(64));
//! assert_eq!(layout::upper_bound(64, 6), 2.0);
//! ```

/// The native scale: 2⁶ = 64 buckets per power of two.
///
/// ```
/// assert_eq!(vitals::layout::SCALE, 6);
/// ```
pub const SCALE: i8 = 6;

/// The lowest scale buckets can be downscaled to (OpenTelemetry's limit):
/// at scale −10 one bucket spans a factor of 2¹⁰²⁴.
///
/// ```
/// assert_eq!(vitals::layout::MIN_SCALE, -10);
/// ```
pub const MIN_SCALE: i8 = -10;

/// Values at or below this count in the zero bucket: only exact zeros
/// (`0.0` and `-0.0`). Positive values too small to track are clamped to
/// [`MIN_TRACKABLE`] instead (and counted as saturated by a histogram).
///
/// ```
/// assert_eq!(vitals::layout::ZERO_THRESHOLD, 0.0);
/// ```
pub const ZERO_THRESHOLD: f64 = 0.0;

/// The bucket-count limit exporters apply by downscaling (OpenTelemetry's
/// default `MaxSize`): see
/// [`SparseBuckets::fit`](crate::snapshot::SparseBuckets::fit).
///
/// ```
/// assert_eq!(vitals::layout::DEFAULT_MAX_BUCKETS, 160);
/// ```
pub const DEFAULT_MAX_BUCKETS: usize = 160;

/// Biased exponent of [`MIN_TRACKABLE`] (2⁻³⁰).
const MIN_EXP_BIASED: u64 = 1023 - 30;
/// Biased exponent of [`MAX_TRACKABLE`] (2⁵⁰).
const MAX_EXP_BIASED: u64 = 1023 + 50;

/// Bits of [`MIN_TRACKABLE`].
pub(crate) const MIN_BITS: u64 = MIN_EXP_BIASED << 52;
/// Bits of [`MAX_TRACKABLE`].
pub(crate) const MAX_BITS: u64 = MAX_EXP_BIASED << 52;

/// The smallest positive value told apart from others (2⁻³⁰ ≈ 9.3e-10,
/// about 1 ns when recording seconds), the upper bound of bucket
/// [`MIN_INDEX`]. Smaller positive values are recorded as this.
///
/// ```
/// assert_eq!(vitals::histogram::MIN_TRACKABLE, 2f64.powi(-30));
/// ```
pub const MIN_TRACKABLE: f64 = f64::from_bits(MIN_BITS);

/// The largest value tracked (2⁵⁰ ≈ 1.1e15), the upper bound of bucket
/// [`MAX_INDEX`]. Larger values, +∞ included, are recorded as this.
///
/// ```
/// assert_eq!(vitals::histogram::MAX_TRACKABLE, 2f64.powi(50));
/// ```
pub const MAX_TRACKABLE: f64 = f64::from_bits(MAX_BITS);

/// The bucket of [`MIN_TRACKABLE`] at scale 6: −30 · 64.
///
/// ```
/// use vitals::layout;
/// assert_eq!(layout::index_of(vitals::histogram::MIN_TRACKABLE), Some(layout::MIN_INDEX));
/// ```
pub const MIN_INDEX: i32 = -30 * 64;

/// The bucket of [`MAX_TRACKABLE`] at scale 6: 50 · 64.
///
/// ```
/// use vitals::layout;
/// assert_eq!(layout::index_of(f64::INFINITY), Some(layout::MAX_INDEX));
/// ```
pub const MAX_INDEX: i32 = 50 * 64;

/// Buckets of the native range: positions `0 .. POSITIONS` stand for the
/// indexes `MIN_INDEX ..= MAX_INDEX` in the crate's dense stores.
pub(crate) const POSITIONS: usize = (MAX_INDEX - MIN_INDEX) as usize + 1;

const MANTISSA: u64 = (1 << 52) - 1;

/// `floor(2^(53 + k/64)) − 2⁵³` for `k` in 0..64: the edges 2^(k/64) with
/// 53 fraction bits, computed with exact integer arithmetic (the 64th root
/// of 2^(64·53 + k), six integer square roots); the tests check every
/// entry with big-integer powers.
const EDGES_53: [u64; 64] = [
    0x00000000000000,
    0x0059347cef00c1,
    0x00b361a62b0ae8,
    0x010e8a30eb3790,
    0x016ab0d9f3121e,
    0x01c7d865a7a344,
    0x022603a024b6a1,
    0x0285355d525bbf,
    0x02e57078faa2f5,
    0x0346b7d6df96ea,
    0x03a90e62d17354,
    0x040c7710c519ac,
    0x0470f4dceac470,
    0x04d68acbc4f9ba,
    0x053d3bea3fbdc2,
    0x05a50b4dc80616,
    0x060dfc14636e2a,
    0x06781164c82dfe,
    0x06e34e6e755395,
    0x074fb669cb3fed,
    0x07bd4c98246844,
    0x082c1443ee5c53,
    0x089c10c0c3125a,
    0x090d456b8279a0,
    0x097fb5aa6c544e,
    0x09f364ed3a594d,
    0x0a6856ad3a9f03,
    0x0ade8e6d6a4fb4,
    0x0b560fba90a852,
    0x0bcede2b5a4290,
    0x0c48fd6074ab09,
    0x0cc47104aa4449,
    0x0d413cccfe7799,
    0x0dbf6478ca345d,
    0x0e3eebd1d8bee7,
    0x0ebfd6ac84cf91,
    0x0f4228e7d6030d,
    0x0fc5e66d9e9cc4,
    0x104b1332999c25,
    0x10d1b3368925d9,
    0x1159ca845541b6,
    0x11e35d322aee6c,
    0x126e6f619b8bc9,
    0x12fb053fbc9c9f,
    0x1389230547e120,
    0x1418ccf6bbcac9,
    0x14aa07647c4ab9,
    0x153cd6aaf3fb7e,
    0x15d13f32b5a75a,
    0x166745709e2bf5,
    0x16feede5f6bc8d,
    0x17983d209783a4,
    0x183337bb0aa538,
    0x18cfe25cafa296,
    0x196e41b9df20d2,
    0x1a0e5a940f12f7,
    0x1ab031b9f7490e,
    0x1b53cc07b6650a,
    0x1bf92e66f736bd,
    0x1ca05dcf167fec,
    0x1d495f454921b3,
    0x1df437dcc2b44e,
    0x1ea0ecb6dc8a80,
    0x1f4f83033d21b0,
];

/// `T[k]`: the largest 52-bit mantissa below the edge 2^(k/64) (`T[0] = 0`,
/// whose mantissa is the edge 1 itself), and `T[64] = u64::MAX`, above
/// every mantissa.
const THRESHOLDS: [u64; 65] = {
    let mut t = [u64::MAX; 65];
    let mut k = 0;
    while k < 64 {
        t[k] = EDGES_53[k] >> 1;
        k += 1;
    }
    t
};

/// The mantissas of the `f64`s nearest to the edges 2^(k/64) (ties cannot
/// happen: the edges are irrational but for `k = 0`).
const NEAREST: [u64; 64] = {
    let mut t = [0u64; 64];
    let mut k = 0;
    while k < 64 {
        t[k] = (EDGES_53[k] + 1) >> 1;
        k += 1;
    }
    t
};

/// Per range of the top 7 mantissa bits, the edges (`k` in 0..64) whose
/// threshold lies below the range: `c` starts there, and one compare with
/// `THRESHOLDS[c]` (the only threshold that may lie in the range) ends.
const FIRST: [u8; 128] = {
    let mut f = [0u8; 128];
    let mut r = 0;
    while r < 128 {
        let start = (r as u64) << 45;
        let mut c = 0;
        while c < 64 && THRESHOLDS[c] < start {
            c += 1;
        }
        f[r] = c as u8;
        r += 1;
    }
    f
};

/// [`FIRST`] and the one threshold that may follow it in one word per
/// range, so that the record path makes one table load, not two
/// dependent ones: the edge count in the low 7 bits, `THRESHOLDS[c]` above
/// them (`THRESHOLDS[64]`, above every mantissa, becomes `u64::MAX >> 7`,
/// still above every mantissa).
const RANGES: [u64; 128] = {
    let mut t = [0u64; 128];
    let mut r = 0;
    while r < 128 {
        let c = FIRST[r] as usize;
        let threshold = if c < 64 { THRESHOLDS[c] } else { u64::MAX >> 7 };
        t[r] = threshold << 7 | c as u64;
        r += 1;
    }
    t
};

/// 2^(k/64) for `k` in 0..64, the nearest `f64`: the factor from the
/// upper bound of bucket `64·e` to that of bucket `64·e + k`.
pub(crate) const fn edge_factor(k: usize) -> f64 {
    f64::from_bits((1023u64 << 52) | NEAREST[k % 64])
}

/// `2^(1/128)`'s inverse: the geometric midpoint of a bucket is its upper
/// bound times this.
const HALF_BUCKET_DOWN: f64 = 0.994_599_423_483_633_2;

/// The position (index − [`MIN_INDEX`]) of the bits of a value within
/// [`MIN_TRACKABLE`] ..= [`MAX_TRACKABLE`]: the record path.
///
/// The caller guarantees the range (one compare on the bits).
#[inline(always)]
pub(crate) fn position_of_bits(bits: u64) -> usize {
    let m = bits & MANTISSA;
    let range = RANGES[(m >> 45) as usize];
    let c = (range & 127) + u64::from(m > range >> 7);
    (((bits >> 52) - MIN_EXP_BIASED) << 6) as usize + c as usize
}

/// The scale-6 index of any positive normal `f64` (no clamping): for the
/// tests and for the range checks of callers.
#[inline]
fn index_of_normal(bits: u64) -> i32 {
    let m = bits & MANTISSA;
    let range = RANGES[(m >> 45) as usize];
    let c = (range & 127) + u64::from(m > range >> 7);
    ((bits >> 52) as i32 - 1023) * 64 + c as i32
}

/// The scale-6 bucket of a value: `None` for zero (the zero bucket), NaN
/// and negatives; positive values outside the trackable range are clamped
/// to it first.
///
/// ```
/// use vitals::layout::index_of;
/// assert_eq!(index_of(1.0), Some(0));
/// assert_eq!(index_of(1.0 + f64::EPSILON), Some(1));
/// assert_eq!(index_of(0.0), None);
/// assert_eq!(index_of(-1.0), None);
/// ```
pub fn index_of(value: f64) -> Option<i32> {
    if value.is_nan() || value <= ZERO_THRESHOLD {
        return None;
    }
    let bits = value.to_bits().clamp(MIN_BITS, MAX_BITS);
    Some(index_of_normal(bits))
}

/// The index a position of the native range stands for.
#[inline]
pub(crate) fn index_at(position: usize) -> i32 {
    MIN_INDEX + position as i32
}

/// The position of a scale-6 index in the native range, if within it.
#[inline]
#[cfg_attr(not(any(feature = "history", test)), allow(dead_code))]
pub(crate) fn position(index: i32) -> Option<usize> {
    usize::try_from(index.checked_sub(MIN_INDEX)?)
        .ok()
        .filter(|p| *p < POSITIONS)
}

/// 2^e as an `f64` (0 below the subnormals, +∞ above `f64::MAX`).
fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        0.0
    }
}

/// The scale-6 index of bucket `index` at `scale`'s upper edge, and
/// whether it is beyond any `f64` range (`None` for a scale above 6).
fn native_edge(index: i32, scale: i8) -> Option<i64> {
    let shift = 6i32.checked_sub(i32::from(scale))?;
    if !(0..=16).contains(&shift) {
        return None;
    }
    Some(i64::from(index) << shift)
}

/// The upper (inclusive) bound of bucket `index` at `scale`: 2^(index/2^scale)
/// rounded to the nearest `f64` (+∞ above the `f64` range, 0 below it, NaN
/// for a scale outside [`MIN_SCALE`] ..= [`SCALE`]). At scale 6 these are
/// Prometheus' native-histogram bounds for schema 6.
///
/// ```
/// use vitals::layout::upper_bound;
/// assert_eq!(upper_bound(0, 6), 1.0);
/// assert_eq!(upper_bound(32, 6), std::f64::consts::SQRT_2);
/// assert_eq!(upper_bound(1, 0), 2.0);
/// ```
pub fn upper_bound(index: i32, scale: i8) -> f64 {
    let Some(edge) = native_edge(index, scale) else {
        return f64::NAN;
    };
    let (e, k) = (edge.div_euclid(64), edge.rem_euclid(64) as usize);
    if e > 1023 {
        return f64::INFINITY;
    }
    let mantissa = f64::from_bits((1023u64 << 52) | NEAREST[k]);
    mantissa * pow2(e)
}

/// The lower (exclusive) bound of bucket `index` at `scale`: the upper
/// bound of the bucket below.
///
/// ```
/// use vitals::layout::lower_bound;
/// assert_eq!(lower_bound(1, 6), 1.0);
/// assert_eq!(lower_bound(65, 6), 2.0);
/// assert_eq!(lower_bound(2, 0), 2.0);
/// ```
pub fn lower_bound(index: i32, scale: i8) -> f64 {
    upper_bound(index.saturating_sub(1), scale)
}

/// The representative value of bucket `index` at scale 6, which quantiles
/// report: its geometric midpoint 2^((index − ½)/64), within
/// 2^(1/128) − 1 ≈ 0.543% of every value in the bucket (relative to the
/// value). Lower scales: [`midpoint_at`].
///
/// ```
/// use vitals::layout::{midpoint, lower_bound, upper_bound};
/// let m = midpoint(10);
/// assert!(lower_bound(10, 6) < m && m < upper_bound(10, 6));
/// assert!((m * m - lower_bound(10, 6) * upper_bound(10, 6)).abs() < 1e-12);
/// ```
pub fn midpoint(index: i32) -> f64 {
    upper_bound(index, SCALE) * HALF_BUCKET_DOWN
}

/// [`midpoint`] of the bucket at a position of the native range, with
/// plain bit arithmetic: the readers' path (every bucket there is a
/// normal `f64`, and `MIN_INDEX` is a multiple of 64).
#[inline]
pub(crate) fn position_midpoint(position: usize) -> f64 {
    let e = (position / 64) as u64 + MIN_EXP_BIASED;
    f64::from_bits(e << 52 | NEAREST[position % 64]) * HALF_BUCKET_DOWN
}

/// The geometric midpoint of bucket `index` at `scale`: √(lower · upper),
/// within 2^(2^−scale / 2) − 1 of every value in the bucket (NaN for a
/// scale outside [`MIN_SCALE`] ..= [`SCALE`]).
///
/// ```
/// use vitals::layout::midpoint_at;
/// assert!((midpoint_at(1, 0) - 2f64.sqrt()).abs() < 1e-15);
/// assert_eq!(midpoint_at(7, 6), vitals::layout::midpoint(7));
/// ```
pub fn midpoint_at(index: i32, scale: i8) -> f64 {
    if scale == SCALE {
        return midpoint(index);
    }
    let (lo, hi) = (lower_bound(index, scale), upper_bound(index, scale));
    if lo.is_nan() || hi.is_nan() {
        return f64::NAN; // a scale outside MIN_SCALE ..= SCALE
    }
    if lo == 0.0 || hi.is_infinite() {
        return if lo == 0.0 { hi } else { lo };
    }
    (lo.sqrt() * hi.sqrt()).clamp(lo, hi)
}

/// The bucket at `scale − k` that holds bucket `index` at `scale`: buckets
/// merge in runs of 2^k whose last upper bound is the new bucket's, so the
/// new index is ⌈index / 2^k⌉ (not `index >> k`, which would be right for
/// lower-inclusive buckets).
///
/// ```
/// use vitals::layout::downscale_index;
/// assert_eq!(downscale_index(64, 6), 1); // 2 is the upper bound at every scale
/// assert_eq!(downscale_index(65, 6), 2);
/// assert_eq!(downscale_index(0, 3), 0);
/// assert_eq!(downscale_index(-1, 1), 0);
/// assert_eq!(downscale_index(-2, 1), -1);
/// ```
pub fn downscale_index(index: i32, k: u32) -> i32 {
    if k >= 32 {
        return i32::from(index > 0);
    }
    // In i64: `index − 1` of i32::MIN does not overflow; the result is
    // between the index and 0, so it fits an i32.
    (((i64::from(index) - 1) >> k) + 1) as i32
}

/// The 1-based nearest rank of quantile `q` among `n` values: ⌈q·n⌉,
/// clamped to 1 ..= `n` (`q` ≤ 0 gives the smallest, `q` ≥ 1 or NaN the
/// largest).
///
/// ```
/// use vitals::layout::nearest_rank;
/// assert_eq!(nearest_rank(0.5, 10), 5);
/// assert_eq!(nearest_rank(0.99, 10), 10);
/// assert_eq!(nearest_rank(0.0, 10), 1);
/// ```
pub fn nearest_rank(q: f64, n: u64) -> u64 {
    if q.is_nan() {
        return n.max(1);
    }
    ((q * n as f64).ceil() as u64).clamp(1, n.max(1))
}

/// The nearest-rank quantile `q` (0 < q ≤ 1) over bucket counts: the
/// representative ([`midpoint_at`]) of the bucket holding the rank, or 0
/// when the rank falls among the `zeros`. `pairs` are `(index, count)`
/// ascending by index at `scale`. `None` when there are no values or `q`
/// is out of range.
///
/// ```
/// use vitals::layout::{index_of, quantile, midpoint};
/// let pairs = [(index_of(1.0).unwrap(), 2), (index_of(10.0).unwrap(), 2)];
/// assert_eq!(quantile(0, pairs.iter().copied(), 6, 0.5), Some(midpoint(0)));
/// assert_eq!(quantile(4, pairs.iter().copied(), 6, 0.5), Some(0.0));
/// assert_eq!(quantile(0, std::iter::empty(), 6, 0.5), None);
/// ```
pub fn quantile(
    zeros: u64,
    pairs: impl Iterator<Item = (i32, u64)> + Clone,
    scale: i8,
    q: f64,
) -> Option<f64> {
    if !(q > 0.0 && q <= 1.0) {
        return None;
    }
    let n = pairs.clone().fold(zeros, |n, (_, c)| n.saturating_add(c));
    if n == 0 {
        return None;
    }
    let rank = nearest_rank(q, n);
    if rank <= zeros {
        return Some(0.0);
    }
    let mut seen = zeros;
    let mut last = None;
    for (index, count) in pairs {
        seen = seen.saturating_add(count);
        last = Some(index);
        if seen >= rank {
            return Some(midpoint_at(index, scale));
        }
    }
    last.map(|i| midpoint_at(i, scale))
}

/// The scale-6 bucket for bucket `position` of the log-linear layout that
/// schema versions 1 and 2 wrote (64 linear sub-buckets per power of two,
/// from 2⁻³⁰; 80 powers of two): the bucket holding the old bucket's
/// midpoint. `None` past that layout.
pub(crate) fn legacy_index(position: u16) -> Option<i32> {
    const OLD_BUCKETS: u16 = 80 * 64;
    if position >= OLD_BUCKETS {
        return None;
    }
    let (octave, sub) = (i32::from(position / 64), f64::from(position % 64));
    let mid = (1.0 + (2.0 * sub + 1.0) / 128.0) * pow2(i64::from(octave) - 30);
    index_of(mid)
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod tests;
