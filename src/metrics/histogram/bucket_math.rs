//! What readers compute from bucket counts: each bucket's representative
//! value, and the moments behind the standard deviation, summed as the
//! counters are read (integer weights, so that the sums vectorise).

use super::reading::Merged;
use super::*;
use crate::metrics::layout;

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
#[cfg(test)]
pub(super) fn stddev_representative(m0: f64, sub: usize) -> f64 {
    m0 * f64::from(W1[sub]) / f64::from(1u32 << WEIGHT_BITS)
}

/// The [`Moments`] of one octave's counts, in units of the octave's
/// first midpoint.
pub(super) fn moments(counts: &[u64; SUBS]) -> Moments {
    let one = f64::from(1u32 << WEIGHT_BITS);
    let (mut c0, mut c1, mut c2) = (0u64, 0u64, 0u64);
    if counts.iter().all(|&c| c < 1 << 26) {
        // Each sum < 64 · 2²⁶ · 2³² = 2⁶⁴: no overflow.
        // In u32 so that the products are 32 × 32 → 64 bits (one vector
        // instruction per two buckets on x86-64's baseline).
        for k in 0..SUBS {
            let c = u64::from(counts[k] as u32);
            c0 += c;
            c1 += c * u64::from(W1[k]);
            c2 += c * u64::from(W2[k]);
        }
        return (c0, c1 as f64 / one, c2 as f64 / (one * one));
    }
    // 2²⁶ values in one bucket of the window: the rare wide path.
    let (mut c1, mut c2) = (0u128, 0u128);
    for k in 0..SUBS {
        let c = u128::from(counts[k]);
        c0 = c0.saturating_add(counts[k]);
        c1 += c * u128::from(W1[k]);
        c2 += c * u128::from(W2[k]);
    }
    (c0, c1 as f64 / one, c2 as f64 / (one * one))
}

/// Quantiles and standard deviation of a non-empty window in one pass over
/// the buckets.
///
/// `m` holds the window's counts, totals and each octave's moments, kept
/// beside the counts so that statistics need not scan them; an octave's
/// counts are walked only when it holds a quantile.
pub(super) fn bucket_stats(m: &Merged, lo: f64, hi: f64, mean: f64) -> (Quantiles, f64) {
    let octaves = m.octaves.iter().zip(&m.moments).map(|((o, _), m)| (*o, *m));
    let counts_of = |octave: usize| {
        m.octaves
            .binary_search_by_key(&octave, |(o, _)| *o)
            .map_or([0; SUBS], |at| m.octaves[at].1)
    };
    window_stats_of(octaves, counts_of, m.count, m.zeros, lo, hi, mean)
}

/// [`bucket_stats`] of a window given as each octave's moments (ascending
/// by octave), a way to fetch an octave's counts (asked only for the
/// octaves that hold a quantile), the count and the zeros.
pub(super) fn window_stats_of(
    octaves: impl Iterator<Item = (usize, Moments)>,
    mut counts_of: impl FnMut(usize) -> [u64; SUBS],
    count: u64,
    zeros: u64,
    lo: f64,
    hi: f64,
    mean: f64,
) -> (Quantiles, f64) {
    let ranks = Quantiles::LEVELS.map(|q| layout::nearest_rank(q, count));
    let mut out = [hi; 5];
    let mut next = 0;
    let mut seen = zeros;
    while next < 5 && ranks[next] <= seen {
        out[next] = 0.0;
        next += 1;
    }
    let mut squares = zeros as f64 * mean * mean;
    for (octave, (c0, c1, c2)) in octaves {
        // With m(k) = m₀·wₖ sub-bucket k's representative (wₖ ≈ gᵏ, see
        // `W1`), Σ c·(m(k) − mean)² = m₀²·Σc·wₖ² − 2·mean·m₀·Σc·wₖ +
        // mean²·Σc, from the moments kept beside the counts. Near the mean
        // the terms cancel to within a rounding error of m₀²·Σc·wₖ, some
        // 10⁻¹⁶ of it: far below the buckets' own 0.55%.
        // An empty octave adds nothing to `squares` and holds no rank.
        if c0 == 0 {
            continue;
        }
        let m0 = bucket_midpoint(octave, 0);
        let holds_rank = next < 5 && seen + c0 >= ranks[next];
        squares += (m0 * m0 * c2 - 2.0 * mean * m0 * c1 + mean * mean * c0 as f64).max(0.0);
        if holds_rank {
            let counts = counts_of(octave);
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
    }
    let stddev = if count < 2 {
        0.0
    } else {
        (squares / count as f64).sqrt()
    };
    (Quantiles::from_values(out), stddev)
}
