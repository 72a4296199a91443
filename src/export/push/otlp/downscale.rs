//! Exponential buckets brought down to the bucket limit of a point
//! (160 by default, the OpenTelemetry SDK's) straight from a snapshot's
//! full-resolution lifetime buckets.

use crate::snapshot::SparseBuckets;

/// `b` downscaled to at most `max` buckets (as
/// [`SparseBuckets::fit`]), built without copying the full-resolution
/// buckets: a snapshot's lifetime buckets run to a thousand and more, a
/// point has at most `max`. `dense` is scratch space, kept between calls.
pub(super) fn fitted_copy(b: &SparseBuckets, max: usize, dense: &mut Vec<u64>) -> SparseBuckets {
    use crate::layout::{downscale_index, MAX_INDEX, MIN_INDEX, MIN_SCALE, SCALE};
    let slow = || {
        let mut b = b.clone();
        b.normalize();
        b.fit(max);
        b
    };
    if !(MIN_SCALE..=SCALE).contains(&b.scale) {
        return slow();
    }
    let (Some(&(first, _)), Some(&(last, _))) = (b.counts.first(), b.counts.last()) else {
        return b.clone();
    };
    let steps = (SCALE - b.scale) as u32;
    let (lo, hi) = (
        downscale_index(MIN_INDEX, steps),
        downscale_index(MAX_INDEX, steps),
    );
    if first < lo || last > hi || first > last {
        return slow();
    }
    let max = i64::try_from(max.max(1)).unwrap_or(i64::MAX);
    let floor = (i32::from(b.scale) - i32::from(MIN_SCALE)).max(0) as u32;
    let mut k = 0u32;
    while k < floor
        && i64::from(downscale_index(last, k)) - i64::from(downscale_index(first, k)) + 1 > max
    {
        k += 1;
    }
    // Hot path (every histogram of every export): one pass, with no
    // branch on the data, storing the running total of the counts into
    // the coarser bucket of each one. Input as `normalize` leaves it
    // (ascending, no empty bucket; checked on the way, else start over)
    // never goes back to a bucket, so each bucket ends up holding the
    // total up to its last count, and a bucket's count is the difference
    // from the previous one's. No step waits for a store before it.
    let base = downscale_index(first, k);
    let span = i64::from(downscale_index(last, k)) - i64::from(base) + 1;
    // Within the trackable range, so at most 5,121 long.
    let Ok(span) = usize::try_from(span) else {
        return slow();
    };
    dense.clear();
    dense.resize(span, 0);
    let dense = &mut dense[..];
    // `downscale_index(i, k) - base`, written out (k < 32: k ≤ 16 here).
    let below = i64::from(base) - 1;
    let mut previous = i32::MIN;
    let mut normalized = true;
    let mut overflow = false;
    let mut total = 0u64;
    for &(i, c) in &b.counts {
        normalized &= (c != 0) & (i > previous);
        previous = i;
        let (t, o) = total.overflowing_add(c);
        (total, overflow) = (t, overflow | o);
        let j = (((i64::from(i) - 1) >> k) - below) as usize;
        match dense.get_mut(j) {
            Some(d) => *d = total,
            None => return slow(),
        }
    }
    // Out of order, empty buckets, or counts past u64 (which `fit`
    // saturates): the long way.
    if !normalized || overflow {
        return slow();
    }
    let mut counts = Vec::with_capacity(dense.iter().filter(|&&t| t != 0).count());
    let mut before = 0;
    for (j, &t) in dense.iter().enumerate() {
        // Totals only grow (no count is 0): an untouched bucket is 0.
        if t != 0 {
            counts.push((base + j as i32, t - before));
            before = t;
        }
    }
    SparseBuckets {
        scale: (i32::from(b.scale) - k as i32) as i8,
        zeros: b.zeros,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `fitted_copy` must equal: a clone, normalised and fitted.
    fn fitted_clone(b: &SparseBuckets, max: usize) -> SparseBuckets {
        let mut want = b.clone();
        want.normalize();
        want.fit(max);
        want
    }

    #[test]
    fn counts_past_u64_saturate_as_fit_does() {
        let b = SparseBuckets {
            scale: 6,
            zeros: 0,
            counts: vec![(10, u64::MAX - 1), (11, 5), (900, 1)],
        };
        for max in [1, 2, 160] {
            assert_eq!(fitted_copy(&b, max, &mut Vec::new()), fitted_clone(&b, max));
        }
    }

    proptest! {
        /// Any input, normalised or not, at any scale and limit, with one
        /// scratch vector reused throughout: the same as fitting a clone.
        #[test]
        fn equals_fitting_a_clone(
            scale in -10i8..=6,
            zeros in 0u64..3,
            start in -2_000i32..2_000,
            steps in prop::collection::vec((0i32..12, 0u64..1_000), 0..300),
            shuffled in any::<bool>(),
            limits in prop::collection::vec(1usize..400, 1..4),
        ) {
            let mut at = start;
            let mut counts: Vec<(i32, u64)> = steps
                .iter()
                .map(|&(gap, c)| {
                    at += gap;
                    (at, c)
                })
                .collect();
            if shuffled {
                counts.reverse();
            }
            let b = SparseBuckets { scale, zeros, counts };
            let mut dense = Vec::new();
            for max in limits {
                prop_assert_eq!(fitted_copy(&b, max, &mut dense), fitted_clone(&b, max));
            }
        }
    }
}
