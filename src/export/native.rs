//! Native histograms as Prometheus encodes them, in the scrape's protobuf
//! and in remote write alike: a histogram's exponential buckets cut to the
//! export limit, as spans of consecutive bucket indexes and each count as a
//! delta from the one before.

use crate::layout::DEFAULT_MAX_BUCKETS;
use crate::snapshot::SparseBuckets;

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
    pub(crate) fn of(buckets: &SparseBuckets) -> Self {
        let mut b = buckets.clone();
        b.normalize();
        b.fit(DEFAULT_MAX_BUCKETS);
        let (first, dense) = b.offset_counts();
        let runs = runs(first, &dense);
        let mut spans = Vec::with_capacity(runs.len().max(1));
        let mut deltas = Vec::new();
        let mut previous_end = None;
        let mut previous = 0i64;
        for &(start, len) in &runs {
            spans.push((previous_end.map_or(start, |end| start - end), len));
            previous_end = Some(start + len as i32);
            let from = (start - first) as usize;
            for &c in &dense[from..from + len as usize] {
                // Counts beyond i64 (never reached by a real histogram) are
                // capped so that the deltas stay in range.
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
}

/// `(first index, length)` of each run of `dense` (counts from index
/// `first` on) that holds non-empty buckets, runs closer than three empty
/// buckets joined.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
