//! Laws of the exponential buckets, with recording every value into one
//! distribution as the exact oracle:
//!
//! * merge is commutative, associative and exact (bucket for bucket what
//!   recording all values into one gives), at any mix of scales;
//! * subtraction undoes merge: `checked_sub(merge(a, b), b) == a`;
//! * downscaling commutes with merge, and `fit` respects its limit without
//!   losing a count;
//! * quantiles are within 0.55% of the exact nearest-rank value;
//! * the summaries of 8 collectors recording disjoint random data merge to
//!   exactly the summary of one collector recording all of it.

#[path = "common/gen.rs"]
mod gen;

use std::sync::Arc;

use proptest::prelude::*;
use vitals::snapshot::{HistogramSummary, SparseBuckets};
use vitals::{layout, MetricsCollector, Window};

/// Values across the trackable range and beyond it, zeros included.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => (-30.0f64..50.0).prop_map(|e| 2f64.powf(e)),
        2 => (1u32..10_000).prop_map(|n| f64::from(n) / 1000.0),
        1 => Just(0.0),
        1 => prop_oneof![Just(1e-300), Just(f64::MAX), Just(f64::INFINITY), Just(5e-324)],
        1 => (-30i32..=50).prop_map(|e| 2f64.powi(e)),
    ]
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(value(), 0..200)
}

fn recorded(values: &[f64]) -> SparseBuckets {
    let mut b = SparseBuckets::default();
    values.iter().for_each(|v| b.record(*v));
    b
}

fn merged(a: &SparseBuckets, b: &SparseBuckets) -> SparseBuckets {
    let mut m = a.clone();
    m.merge(b);
    m
}

fn downscaled(b: &SparseBuckets, k: u32) -> SparseBuckets {
    let mut d = b.clone();
    d.downscale(k);
    d
}

proptest! {
    #![proptest_config(gen::config(256))]

    #[test]
    fn merge_is_exact_commutative_and_associative(a in values(), b in values(), c in values()) {
        let (x, y, z) = (recorded(&a), recorded(&b), recorded(&c));
        let all: Vec<f64> = a.iter().chain(&b).chain(&c).copied().collect();
        prop_assert_eq!(merged(&x, &y), merged(&y, &x));
        prop_assert_eq!(merged(&merged(&x, &y), &z), merged(&x, &merged(&y, &z)));
        prop_assert_eq!(merged(&merged(&x, &y), &z), recorded(&all));
    }

    #[test]
    fn subtraction_undoes_merge(a in values(), b in values(), k in 0u32..8) {
        let (x, y) = (recorded(&a), recorded(&b));
        prop_assert_eq!(merged(&x, &y).checked_sub(&y), Some(x.clone()));
        // At a lower scale too.
        let (dx, dy) = (downscaled(&x, k), downscaled(&y, k));
        prop_assert_eq!(merged(&dx, &dy).checked_sub(&dy), Some(dx));
    }

    #[test]
    fn downscale_commutes_with_merge(a in values(), b in values(), k in 0u32..17, j in 0u32..17) {
        let (x, y) = (recorded(&a), recorded(&b));
        let m = merged(&x, &y);
        prop_assert_eq!(downscaled(&m, k), merged(&downscaled(&x, k), &downscaled(&y, k)));
        // Mixed scales merge at the coarser one.
        let mixed = merged(&downscaled(&x, k), &downscaled(&y, j));
        prop_assert_eq!(mixed, downscaled(&m, k.max(j)));
        // Downscaling in two steps is downscaling at once.
        prop_assert_eq!(downscaled(&downscaled(&m, k), j), downscaled(&m, (k + j).min(16)));
    }

    #[test]
    fn fit_respects_the_limit_and_keeps_every_count(a in values(), max in 1usize..300) {
        let x = recorded(&a);
        let mut f = x.clone();
        let k = f.fit(max);
        prop_assert_eq!(&f, &downscaled(&x, k));
        prop_assert_eq!(f.count(), x.count());
        if let (Some(first), Some(last)) = (f.counts.first(), f.counts.last()) {
            prop_assert!(last.0 - first.0 < max as i32 || f.scale == layout::MIN_SCALE);
        }
        // Not downscaled further than needed.
        if k > 0 {
            let finer = downscaled(&x, k - 1);
            let (first, last) = (finer.counts[0].0, finer.counts.last().unwrap().0);
            prop_assert!(last - first + 1 > max as i32);
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_error(a in prop::collection::vec(value(), 1..300), q in 0.001f64..=1.0) {
        let x = recorded(&a);
        let mut exact: Vec<f64> = a
            .iter()
            .map(|v| if *v == 0.0 { 0.0 } else { v.clamp(vitals::histogram::MIN_TRACKABLE, vitals::histogram::MAX_TRACKABLE) })
            .collect();
        exact.sort_by(f64::total_cmp);
        let want = exact[(layout::nearest_rank(q, exact.len() as u64) - 1) as usize];
        let got = x.quantile(q).unwrap();
        if want == 0.0 {
            prop_assert_eq!(got, 0.0);
        } else {
            prop_assert!((got - want).abs() / want <= 0.00543, "{} vs {}", got, want);
        }
    }

    /// 8 collectors record disjoint random data; their summaries merge to
    /// exactly the summary of one collector that recorded everything.
    #[test]
    fn eight_collectors_merge_to_the_histogram_of_all_values(
        parts in prop::collection::vec(values(), 8),
        count_window in any::<bool>(),
    ) {
        let window = if count_window { Window::Count { values: 10_000 } } else { Window::default() };
        let summary = |values: &[f64]| -> HistogramSummary {
            let m = MetricsCollector::builder().lifetime_buckets(true).build();
            m.configure_histogram("h", window).unwrap();
            let h = m.histogram("h", &[]);
            values.iter().for_each(|v| h.record(*v));
            m.snapshot().histogram("h", &[]).unwrap().clone()
        };
        let all: Vec<f64> = parts.iter().flatten().copied().collect();
        let one = summary(&all);
        let mut sum = summary(&parts[0]);
        for p in &parts[1..] {
            sum.merge(&summary(p));
        }
        prop_assert_eq!(&sum.window_buckets, &one.window_buckets);
        prop_assert_eq!(&sum.lifetime_buckets, &one.lifetime_buckets);
        prop_assert_eq!(sum.window.count, one.window.count);
        prop_assert_eq!(sum.lifetime.count, one.lifetime.count);
        prop_assert_eq!((sum.window.min, sum.window.max), (one.window.min, one.window.max));
        prop_assert_eq!((sum.saturated, sum.dropped), (one.saturated, one.dropped));
        // Sums add in another order: equal up to rounding.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
        prop_assert!(close(sum.window.sum, one.window.sum));
        if !count_window {
            // Time windows: quantiles come from the buckets, so they merge exactly.
            prop_assert_eq!(sum.window.quantiles, one.window.quantiles);
            prop_assert_eq!(sum.window_buckets.as_deref().map(SparseBuckets::count), Some(all.len() as u64 - one.dropped));
        } else if let (Some(q), Some(b)) = (sum.window.quantiles, &sum.window_buckets) {
            // Count windows: exact quantiles on each side; the merged ones
            // come from the buckets, within their error.
            let exact = one.window.quantiles.unwrap();
            for (got, want) in [(q.p50, exact.p50), (q.p99, exact.p99)] {
                prop_assert!((got - want).abs() <= 0.00543 * want.abs(), "{} vs {}", got, want);
            }
            prop_assert_eq!(b.count(), one.window.count);
        }
        if let (Some(sd), Some(want)) = (sum.window.stddev, one.window.stddev) {
            prop_assert!((sd - want).abs() <= 1e-6 * want.max(1.0) + 0.011 * want, "{} vs {}", sd, want);
        }
    }
}

proptest! {
    #![proptest_config(gen::config(256))]

    /// Buckets as anyone may write them into the public fields (any scale,
    /// any index, unsorted, repeated): no operation panics, and normalising
    /// leaves only buckets of the trackable range.
    #[test]
    fn any_bucket_contents_are_handled_without_panics(
        scales in (any::<i8>(), any::<i8>()),
        a in prop::collection::vec((any::<i32>(), any::<u64>()), 0..20),
        b in prop::collection::vec((prop_oneof![any::<i32>(), -2000i32..3300], 0u64..1000), 0..20),
        k in any::<u32>(),
        max in any::<usize>(),
        q in any::<f64>(),
    ) {
        let mut x = SparseBuckets { scale: scales.0, zeros: 3, counts: a };
        let y = SparseBuckets { scale: scales.1, zeros: u64::MAX, counts: b };
        let _ = x.checked_sub(&y);
        let _ = x.quantile(q);
        let _ = (x.min_bound(), x.max_bound(), x.offset_counts(), x.count());
        x.merge(&y);
        x.downscale(k);
        x.fit(max);
        x.record(q);
        let _ = x.quantile(q);
        let mut n = y.clone();
        n.normalize();
        if (layout::MIN_SCALE..=layout::SCALE).contains(&n.scale) {
            let k = (layout::SCALE - n.scale) as u32;
            for (i, _) in &n.counts {
                prop_assert!(*i >= layout::downscale_index(layout::MIN_INDEX, k));
                prop_assert!(*i <= layout::downscale_index(layout::MAX_INDEX, k));
            }
        }
    }
}

proptest! {
    #![proptest_config(gen::config(128))]

    /// Summaries as anyone may build them (hand-made fields, min above
    /// max, NaN statistics, buckets at any scale) merge without panics.
    #[test]
    fn any_summaries_merge_without_panics(
        stats in prop::collection::vec(any::<f64>(), 8),
        counts in (any::<u64>(), any::<u64>()),
        scales in (any::<i8>(), any::<i8>()),
        pairs in prop::collection::vec((any::<i32>(), any::<u64>()), 0..8),
    ) {
        let m = MetricsCollector::builder().lifetime_buckets(true).build();
        m.histogram("h", &[]).record(1.0);
        let base = m.snapshot().histogram("h", &[]).unwrap().clone();
        let mut a = base.clone();
        a.window.count = counts.0;
        a.window.min = Some(stats[0]);
        a.window.max = Some(stats[1]);
        a.window.mean = Some(stats[2]);
        a.window.stddev = Some(stats[3]);
        a.window_buckets = Some(Arc::new(SparseBuckets { scale: scales.0, zeros: 1, counts: pairs.clone() }));
        let mut b = base.clone();
        b.window.count = counts.1;
        b.window.min = Some(stats[4]);
        b.window.max = Some(stats[5]);
        b.window.sum = stats[6];
        b.lifetime.sum = stats[7];
        b.window_buckets = Some(Arc::new(SparseBuckets { scale: scales.1, zeros: 0, counts: pairs }));
        let mut c = a.clone();
        c.merge(&b);
        c.limit_buckets(1);
        b.merge(&a);
        prop_assert_eq!(c.window.count, counts.0.saturating_add(counts.1));
    }
}

proptest! {
    #![proptest_config(gen::config(1024))]

    /// Every layout function takes any input without panicking, and the
    /// index of any positive value is the bucket whose bounds hold it.
    #[test]
    fn the_layout_takes_any_input(bits in any::<u64>(), index in any::<i32>(), scale in any::<i8>(), k in any::<u32>(), q in any::<f64>(), n in any::<u64>()) {
        let v = f64::from_bits(bits);
        if let Some(i) = layout::index_of(v) {
            let c = v.clamp(vitals::histogram::MIN_TRACKABLE, vitals::histogram::MAX_TRACKABLE);
            prop_assert!(layout::lower_bound(i, layout::SCALE) <= c && c <= layout::upper_bound(i, layout::SCALE));
        } else {
            prop_assert!(v.is_nan() || v <= 0.0);
        }
        let _ = (layout::upper_bound(index, scale), layout::lower_bound(index, scale));
        let _ = (layout::midpoint(index), layout::midpoint_at(index, scale));
        let j = layout::downscale_index(index, k);
        prop_assert!(j.unsigned_abs() <= index.unsigned_abs().max(1));
        let r = layout::nearest_rank(q, n);
        prop_assert!(r >= 1 && r <= n.max(1));
        let _ = layout::quantile(n, [(index, 1u64)].into_iter(), scale, q);
    }
}
