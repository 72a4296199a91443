//! Unit tests of the store's internals: differences of readings, open
//! intervals, retention between sweeps.

use super::*;
use crate::metrics::sparse::SparseBuckets;

fn sparse(zeros: u64, counts: &[(i32, u64)]) -> SparseBuckets {
    SparseBuckets {
        zeros,
        counts: counts.to_vec(),
        ..SparseBuckets::default()
    }
}

fn dense_of(b: &SparseBuckets) -> (Dense, u64) {
    (Dense::from(b), b.count() - b.zeros)
}

#[test]
fn advance_returns_what_grew_and_moves_the_reading() {
    let (mut prev, mut total) = dense_of(&sparse(1, &[(3, 2), (9, 5)]));
    let now = sparse(2, &[(3, 2), (7, 1), (9, 8)]);
    let Advanced::Added(d) = advance(&mut prev, &mut total, &now) else {
        panic!("expected a difference");
    };
    assert_eq!(d, sparse(1, &[(7, 1), (9, 3)]));
    assert_eq!((prev, total), dense_of(&now));
}

#[test]
fn a_bucket_that_went_down_or_vanished_is_a_reset() {
    for now in [
        sparse(1, &[(3, 1), (9, 9)]), // 3 went down
        sparse(1, &[(9, 9)]),         // 3 vanished, count still grew
        sparse(0, &[(3, 2), (9, 9)]), // zeros went down
    ] {
        let (mut prev, mut total) = dense_of(&sparse(1, &[(3, 2), (9, 5)]));
        assert!(matches!(
            advance(&mut prev, &mut total, &now),
            Advanced::Reset
        ));
        // The reading is `now`, and nothing of the old one is left.
        assert_eq!((prev, total), dense_of(&now));
    }
}

#[test]
fn unordered_pairs_change_nothing_and_are_reported() {
    for bad in [
        sparse(0, &[(9, 6), (3, 2)]),
        sparse(0, &[(3, 2), (3, 1)]),
        sparse(0, &[(3, 0)]),
        sparse(0, &[(i32::MAX, 1)]),
    ] {
        let (mut prev, mut total) = dense_of(&sparse(0, &[(3, 2), (9, 5)]));
        let before = (prev.clone(), total);
        assert!(matches!(
            advance(&mut prev, &mut total, &bad),
            Advanced::Unordered
        ));
        assert_eq!((prev, total), before);
    }
}

/// A snapshot written by another program may list lifetime buckets in
/// any order, repeated or empty: the history sorts a copy and gets the
/// same distribution as from the sorted pairs.
#[test]
fn unordered_lifetime_buckets_in_a_snapshot_give_the_same_history() {
    use crate::{ManualClock, MetricsCollector};
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let h = metrics.histogram("latency_seconds", &[]);
    let (sorted, shuffled) = (History::new(), History::new());
    for i in 0..30u32 {
        for v in 1..=20 {
            h.record(f64::from(v * (i % 3 + 1)) / 1000.0);
        }
        clock.advance(Duration::from_secs(10));
        let snap = metrics.snapshot();
        sorted.ingest(&snap).unwrap();
        let mut snap = snap;
        if let Some(b) = &mut snap.histograms[0].summary.lifetime_buckets {
            let b = std::sync::Arc::make_mut(b);
            b.counts.reverse();
            let first = b.counts[0];
            b.counts.push((first.0, 0));
        }
        shuffled.ingest(&snap).unwrap();
    }
    for agg in [Aggregation::P50, Aggregation::P99, Aggregation::Count] {
        let q = Query::new("latency_seconds", agg).level(Level::Minute);
        let (a, b) = (sorted.query(&q).unwrap(), shuffled.query(&q).unwrap());
        assert!(!a.series[0].points.is_empty());
        assert_eq!(a.series[0].points, b.series[0].points, "{agg:?}");
    }
}

/// Open intervals cascade (raw → minute → 5 min → hour), yet every
/// level answers for the interval in progress as if it had absorbed
/// each raw point itself.
#[test]
fn open_intervals_answer_for_everything_since_they_began() {
    use crate::{ManualClock, MetricsCollector};
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let c = metrics.counter("c_total", &[]);
    let history = History::new();
    history.ingest(&metrics.snapshot()).unwrap();
    let mut raw: Vec<(u64, u64)> = Vec::new();
    for i in 0..800u64 {
        c.increment(i % 5 + 1);
        // Uneven steps: some snapshots land exactly on boundaries.
        clock.advance(Duration::from_secs(if i % 3 == 0 { 10 } else { 5 }));
        let snap = metrics.snapshot();
        raw.push((snap.timestamp_unix_ms, i % 5 + 1));
        history.ingest(&snap).unwrap();
        if i % 7 != 0 {
            continue;
        }
        for level in [Level::Minute, Level::FiveMinutes, Level::Hour] {
            let interval = level.interval_ms().unwrap();
            let q = Query::new("c_total", Aggregation::Sum).level(level);
            let result = history.query(&q).unwrap();
            let points = &result.series[0].points;
            // Every step, finished or open, holds exactly its raw points.
            for p in points {
                let start = p.timestamp_unix_ms;
                let want: u64 = raw
                    .iter()
                    .filter(|(t, _)| (t - 1) / interval * interval == start)
                    .map(|(_, v)| v)
                    .sum();
                assert_eq!(p.value, want as f64, "{level:?} at {start}, after {i}");
            }
            let total: f64 = points.iter().map(|p| p.value).sum();
            assert_eq!(total, raw.iter().map(|(_, v)| *v as f64).sum::<f64>());
        }
    }
}

/// Retention holds in every query right after each snapshot, although
/// the roll-up levels let go of their old points only when a minute's
/// sweep passes.
#[test]
fn queries_apply_retention_between_sweeps() {
    use crate::{ManualClock, MetricsCollector};
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let c = metrics.counter("c_total", &[]);
    let history = History::builder()
        // Not whole minutes, so that points pass their retention
        // between two sweeps.
        .retention(Level::Raw, Duration::from_secs(125))
        .retention(Level::Minute, Duration::from_secs(630))
        .retention(Level::FiveMinutes, Duration::from_secs(1830))
        .build()
        .unwrap();
    let mut start = None;
    for i in 0..400u64 {
        c.increment(1);
        clock.advance(Duration::from_secs(if i % 4 == 0 { 7 } else { 10 }));
        history.ingest(&metrics.snapshot()).unwrap();
        let now = history.newest_unix_ms().unwrap();
        let start = *start.get_or_insert(now);
        for level in [Level::Raw, Level::Minute, Level::FiveMinutes] {
            let span = level.interval_ms().unwrap_or(0);
            let kept = history.retention(level).as_millis() as u64;
            let horizon = now.saturating_sub(kept);
            let q = Query::new("c_total", Aggregation::Sum).level(level);
            let result = history.query(&q).unwrap();
            let Some(points) = result.series.first().map(|s| &s.points) else {
                continue;
            };
            assert!(
                points.iter().all(|p| p.timestamp_unix_ms + span >= horizon),
                "{level:?} after {i}: {points:?}"
            );
            // Once the store is older than the retention, nothing
            // within it is missing: the first point reaches back to
            // the horizon (within an interval, or a snapshot's step).
            if now > start + kept + span {
                let first = points[0].timestamp_unix_ms;
                assert!(
                    first < horizon + span.max(10_001),
                    "{level:?} after {i}: first {first}, horizon {horizon}"
                );
            }
        }
    }
}
