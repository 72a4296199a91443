//! Exponential buckets cut to an export's bucket limit, straight from a
//! snapshot's full-resolution lifetime buckets (OTLP's exponential
//! histograms, Prometheus' native histograms); and native histograms as
//! Prometheus encodes them, in the scrape's protobuf and in remote write
//! alike: spans of consecutive bucket indexes and each count as a delta
//! from the one before.

use std::sync::Arc;

use crate::layout::DEFAULT_MAX_BUCKETS;
use crate::snapshot::{HistogramSummary, SparseBuckets};

/// The width of the zero bucket stated in native histograms: 2⁻¹²⁸, as
/// client_golang states by default. vitals' zero bucket holds exact zeros
/// only ([`ZERO_THRESHOLD`](crate::layout::ZERO_THRESHOLD)); stating a
/// positive width changes nothing, since no positive value below
/// [`MIN_TRACKABLE`](crate::histogram::MIN_TRACKABLE) is recorded as such,
/// and it is what tells Prometheus before 2.49 that a histogram without
/// observations is native.
pub(crate) const STATED_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;

/// A native histogram's buckets, ready to write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NativeBuckets {
    pub(crate) scale: i8,
    pub(crate) zeros: u64,
    /// Every value counted: the zeros and the buckets'.
    pub(crate) count: u64,
    /// `(offset, length)` as written: the first span's offset is its first
    /// index, each later one's the gap after the span before. Never empty:
    /// a histogram without observations gets one empty span, the marker of
    /// a native histogram.
    pub(crate) spans: Vec<(i32, u32)>,
    /// One per bucket of the spans.
    pub(crate) deltas: Vec<i64>,
}

impl NativeBuckets {
    /// `buckets` cut to at most [`DEFAULT_MAX_BUCKETS`] by exact
    /// downscaling. Gaps of up to two empty buckets stay inside a span (two
    /// zero deltas cost less than a new span).
    #[cfg(test)]
    pub(crate) fn of(buckets: &SparseBuckets) -> Self {
        Self::of_fitted(&fitted_copy(buckets, DEFAULT_MAX_BUCKETS, &mut Vec::new()))
    }

    /// `summary`'s lifetime buckets, cut as [`fitted_lifetime`] does.
    pub(crate) fn of_lifetime(summary: &HistogramSummary) -> Option<Self> {
        fitted_lifetime(summary, DEFAULT_MAX_BUCKETS, &mut Vec::new()).map(|b| Self::of_fitted(&b))
    }

    /// From buckets already cut: normalised, at most the limit.
    fn of_fitted(b: &SparseBuckets) -> Self {
        // Normalised: ascending, no empty bucket, within range.
        let mut spans: Vec<(i32, u32)> = Vec::with_capacity(8);
        let mut deltas = Vec::with_capacity(b.counts.len() + 8);
        let mut end: Option<i32> = None;
        let mut previous = 0i64;
        for &(i, c) in &b.counts {
            match (end, spans.last_mut()) {
                (Some(e), Some(span)) if i - e <= 2 => {
                    // The empty buckets between join the span.
                    for _ in e..i {
                        deltas.push(-previous);
                        previous = 0;
                    }
                    span.1 += (i - e) as u32 + 1;
                }
                _ => spans.push((end.map_or(i, |e| i - e), 1)),
            }
            // Counts beyond i64 (never reached by a real histogram) are
            // capped so that the deltas stay in range.
            let c = i64::try_from(c).unwrap_or(i64::MAX);
            deltas.push(c.wrapping_sub(previous));
            previous = c;
            end = Some(i + 1);
        }
        if spans.is_empty() {
            spans.push((0, 0));
        }
        NativeBuckets {
            scale: b.scale,
            zeros: b.zeros,
            count: b.count(),
            spans,
            deltas,
        }
    }
}

/// `(first index, length)` of each run of `dense` (counts from index
/// `first` on) that holds non-empty buckets, runs closer than three empty
/// buckets joined.
#[cfg(test)]
fn runs(first: i32, dense: &[u64]) -> Vec<(i32, u32)> {
    let mut runs: Vec<(i32, u32)> = Vec::new();
    let mut zeros = 0usize;
    for (k, &c) in dense.iter().enumerate() {
        if c == 0 {
            zeros += 1;
            continue;
        }
        let index = first + k as i32;
        match runs.last_mut() {
            Some((start, len)) if zeros <= 2 => *len = (index - *start) as u32 + 1,
            _ => runs.push((index, 1)),
        }
        zeros = 0;
    }
    runs
}

/// `summary`'s lifetime buckets downscaled to at most `max` buckets (as
/// [`fitted_copy`]). At the exporters' default limit, the list is cut once
/// and kept with it ([`LifetimeMemo`](crate::metrics::histogram::LifetimeMemo)): snapshots of a series that did not
/// move since, and every exporter sending one snapshot (OTLP, remote write,
/// the protobuf scrape), get that copy. `dense` is scratch space.
pub(crate) fn fitted_lifetime(
    summary: &HistogramSummary,
    max: usize,
    dense: &mut Vec<u64>,
) -> Option<Arc<SparseBuckets>> {
    let list = summary.lifetime_buckets.as_ref()?;
    if max == DEFAULT_MAX_BUCKETS {
        Some(summary.memo.fitted(list, || fitted_copy(list, max, dense)))
    } else {
        Some(Arc::new(fitted_copy(list, max, dense)))
    }
}

/// `b` downscaled to at most `max` buckets (as
/// [`SparseBuckets::fit`]), built without copying the full-resolution
/// buckets: a snapshot's lifetime buckets run to a thousand and more, a
/// point has at most `max`. `dense` is scratch space, kept between calls.
pub(crate) fn fitted_copy(b: &SparseBuckets, max: usize, dense: &mut Vec<u64>) -> SparseBuckets {
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
    let (Some(&(first, c_first)), Some(&(last, c_last))) = (b.counts.first(), b.counts.last())
    else {
        return b.clone();
    };
    // Empty end buckets would be dropped by `normalize`, moving the span.
    if c_first == 0 || c_last == 0 {
        return slow();
    }
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
    // the coarser bucket of each one. Ascending input (checked on the
    // way, else start over) never goes back to a bucket, so each bucket
    // ends up holding the total up to its last count, and a bucket's
    // count is the difference from the previous one's. No step waits for
    // a store before it. This pass is about a third of an OTLP encoding of
    // the peer bench's registry (perf): every bucket of every histogram.
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
        normalized &= i > previous;
        previous = i;
        let (t, o) = total.overflowing_add(c);
        (total, overflow) = (t, overflow | o);
        let j = (((i64::from(i) - 1) >> k) - below) as usize;
        match dense.get_mut(j) {
            Some(d) => *d = total,
            None => return slow(),
        }
    }
    // Out of order, repeated buckets, or counts past u64 (which `fit`
    // saturates): the long way.
    if !normalized || overflow {
        return slow();
    }
    let mut counts = Vec::with_capacity(span.min(b.counts.len()));
    let mut before = 0;
    for (j, &t) in dense.iter().enumerate() {
        // Totals never go down: a bucket left untouched (0) or touched by
        // empty buckets only (the total before it) has nothing.
        if t > before {
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

    #[test]
    fn runs_join_short_gaps_and_split_long_ones() {
        assert_eq!(runs(0, &[]), vec![]);
        assert_eq!(runs(-3, &[1, 0, 0, 2]), vec![(-3, 4)]);
        assert_eq!(runs(5, &[1, 0, 0, 0, 2, 3]), vec![(5, 1), (9, 2)]);
        assert_eq!(runs(5, &[0, 0, 7]), vec![(7, 1)]);
    }

    #[test]
    fn spans_are_gaps_and_deltas_are_differences() {
        let b = SparseBuckets {
            scale: 6,
            zeros: 2,
            counts: vec![(-3, 1), (0, 4), (5, 2), (6, 2)],
        };
        let n = NativeBuckets::of(&b);
        assert_eq!(n.spans, vec![(-3, 4), (4, 2)]);
        assert_eq!(n.deltas, vec![1, -1, 0, 4, -2, 0]);
        assert_eq!((n.count, n.zeros, n.scale), (11, 2, 6));
        let empty = NativeBuckets::of(&SparseBuckets::default());
        assert_eq!((empty.spans, empty.deltas), (vec![(0, 0)], vec![]));
    }

    /// The dense way the spans were first made, as the reference.
    fn of_dense(buckets: &SparseBuckets) -> NativeBuckets {
        let mut b = buckets.clone();
        b.normalize();
        b.fit(DEFAULT_MAX_BUCKETS);
        let (first, dense) = b.offset_counts();
        let mut spans = Vec::new();
        let mut deltas = Vec::new();
        let mut previous_end = None;
        let mut previous = 0i64;
        for &(start, len) in &runs(first, &dense) {
            spans.push((previous_end.map_or(start, |end| start - end), len));
            previous_end = Some(start + len as i32);
            let from = (start - first) as usize;
            for &c in &dense[from..from + len as usize] {
                let c = i64::try_from(c).unwrap_or(i64::MAX);
                deltas.push(c.wrapping_sub(previous));
                previous = c;
            }
        }
        if spans.is_empty() {
            spans.push((0, 0));
        }
        NativeBuckets {
            scale: b.scale,
            zeros: b.zeros,
            count: b.count(),
            spans,
            deltas,
        }
    }

    /// What `fitted_copy` must equal: a clone, normalised and fitted.
    fn fitted_clone(b: &SparseBuckets, max: usize) -> SparseBuckets {
        let mut want = b.clone();
        want.normalize();
        want.fit(max);
        want
    }

    /// A collector's series over four decades, and its lifetime list.
    fn wide_series() -> (crate::MetricsCollector, crate::Histogram) {
        let m = crate::MetricsCollector::builder()
            .lifetime_buckets(true)
            .build();
        let h = m.histogram("latency_seconds", &[]);
        for k in 0..2_000 {
            h.record(1e-6 * 1.005f64.powi(k));
        }
        (m, h)
    }

    fn summary_of(m: &crate::MetricsCollector) -> HistogramSummary {
        m.snapshot().histograms[0].summary.clone()
    }

    #[test]
    fn a_series_that_did_not_move_is_cut_once() {
        let (m, h) = wide_series();
        let (a, b) = (summary_of(&m), summary_of(&m));
        let fa = fitted_lifetime(&a, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        let fb = fitted_lifetime(&b, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert!(Arc::ptr_eq(&fa, &fb));
        let list = a.lifetime_buckets.as_deref().unwrap();
        assert!(list.counts.len() > DEFAULT_MAX_BUCKETS);
        assert_eq!(*fa, fitted_clone(list, DEFAULT_MAX_BUCKETS));
        // Another limit is cut apart, every time, and not kept.
        let fresh = summary_of(&m);
        let f100 = fitted_lifetime(&fresh, 100, &mut Vec::new()).unwrap();
        assert_eq!(*f100, fitted_clone(list, 100));
        assert_eq!(fresh.memo.heap_bytes(), a.memo.heap_bytes());
        let twice = fitted_lifetime(&fresh, 100, &mut Vec::new()).unwrap();
        assert!(!Arc::ptr_eq(&f100, &twice));
        // A moved series is another list, cut anew.
        h.record(5.0);
        let c = summary_of(&m);
        let fc = fitted_lifetime(&c, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert_eq!(fc.count(), fa.count() + 1);
        assert_eq!(
            *fc,
            fitted_clone(c.lifetime_buckets.as_deref().unwrap(), DEFAULT_MAX_BUCKETS)
        );
        // Native histograms come from the same cut.
        assert_eq!(
            NativeBuckets::of_lifetime(&c).unwrap(),
            NativeBuckets::of(c.lifetime_buckets.as_deref().unwrap())
        );
    }

    #[test]
    fn once_asked_the_collector_cuts_the_next_lists_as_it_reads_them() {
        let (m, h) = wide_series();
        let a = summary_of(&m);
        // Nobody asked yet: nothing cut.
        assert_eq!(a.memo.heap_bytes(), 0);
        fitted_lifetime(&a, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        for v in [5.0, 1e-7, 3e4] {
            h.record(v);
            let b = summary_of(&m);
            assert!(b.memo.heap_bytes() > 0);
            let list = b.lifetime_buckets.as_deref().unwrap();
            let cut = fitted_lifetime(&b, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
            assert_eq!(*cut, fitted_clone(list, DEFAULT_MAX_BUCKETS));
        }
    }

    #[test]
    fn the_collector_stops_cutting_when_no_exporter_asks_any_more() {
        let (m, h) = wide_series();
        let a = summary_of(&m);
        fitted_lifetime(&a, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        drop(a);
        // Asked for the last list: this one is cut as it is read.
        h.record(1.0);
        assert!(summary_of(&m).memo.heap_bytes() > 0);
        // Nobody asked for that one: the next ones are not cut.
        for v in [2.0, 3.0, 4.0] {
            h.record(v);
            assert_eq!(summary_of(&m).memo.heap_bytes(), 0, "{v}");
        }
    }

    #[test]
    fn a_summary_that_let_go_of_its_list_does_not_keep_its_counts() {
        let (m, h) = wide_series();
        let mut kept = summary_of(&m);
        fitted_lifetime(&kept, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        let list = Arc::downgrade(kept.lifetime_buckets.as_ref().unwrap());
        kept.lifetime_buckets = None;
        h.record(5.0);
        let next = summary_of(&m);
        assert!(list.upgrade().is_none(), "the old counts are still held");
        assert_eq!(next.lifetime_buckets.as_ref().unwrap().count(), 2_001);
        // The memo it still holds is no other list's.
        let mut other = next.clone();
        other.memo = kept.memo.clone();
        let cut = fitted_lifetime(&other, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert_eq!(cut.count(), 2_001);
    }

    #[test]
    fn a_list_changed_after_the_snapshot_is_cut_as_it_is_now() {
        let (m, _h) = wide_series();
        let a = summary_of(&m);
        let before = fitted_lifetime(&a, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        // Changed in place by its user: a copy of its own, not the memo's.
        let mut b = a.clone();
        Arc::make_mut(b.lifetime_buckets.as_mut().unwrap()).counts[0].1 += 7;
        let fb = fitted_lifetime(&b, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert_eq!(fb.count(), before.count() + 7);
        // Replaced by a list of equal counts: cut apart all the same.
        let mut c = a.clone();
        c.lifetime_buckets = Some(Arc::new(SparseBuckets::clone(
            a.lifetime_buckets.as_deref().unwrap(),
        )));
        let fc = fitted_lifetime(&c, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert!(!Arc::ptr_eq(&fc, &before));
        assert_eq!(*fc, *before);
        // Merged: the sum's cut.
        let mut d = a.clone();
        d.merge(&a);
        let fd = fitted_lifetime(&d, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        assert_eq!(fd.count(), 2 * before.count());
        // Gone: nothing to cut.
        let mut e = a.clone();
        e.lifetime_buckets = None;
        assert!(fitted_lifetime(&e, DEFAULT_MAX_BUCKETS, &mut Vec::new()).is_none());
    }

    #[test]
    fn a_cut_list_does_not_keep_the_collector_from_rewriting_its_list_in_place() {
        let (m, h) = wide_series();
        let a = summary_of(&m);
        fitted_lifetime(&a, DEFAULT_MAX_BUCKETS, &mut Vec::new()).unwrap();
        let at = Arc::as_ptr(a.lifetime_buckets.as_ref().unwrap());
        drop(a);
        h.record(5.0);
        let b = summary_of(&m);
        assert_eq!(Arc::as_ptr(b.lifetime_buckets.as_ref().unwrap()), at);
        assert_eq!(b.lifetime_buckets.as_ref().unwrap().count(), 2_001);
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
        /// Spans and deltas made from the sparse pairs: as the dense way.
        #[test]
        fn spans_from_pairs_equal_the_dense_way(
            scale in -10i8..=6,
            zeros in 0u64..3,
            start in -3_000i32..3_000,
            steps in prop::collection::vec((0i32..6, 0u64..100), 0..400),
            big in any::<bool>(),
        ) {
            let mut at = start;
            let counts = steps
                .iter()
                .map(|&(gap, c)| {
                    at += gap;
                    (at, if big { c << 60 } else { c })
                })
                .collect();
            let b = SparseBuckets { scale, zeros, counts };
            prop_assert_eq!(NativeBuckets::of(&b), of_dense(&b));
        }


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
