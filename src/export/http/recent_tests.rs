//! Queries over the ring of recent snapshots, on snapshots taken at known
//! times (a manual clock), against values worked out by hand.

use std::sync::Arc;
use std::time::Duration;

use super::super::api::{parse, Agg, ApiQuery, MAX_SERIES};
use super::answer_from_ring;
use crate::snapshot::{CounterValue, MetricKind, Snapshot};
use crate::{ManualClock, MetricsCollector};

fn q(query: &str) -> ApiQuery {
    parse(query).unwrap()
}

/// Eleven snapshots one second apart; between two, `requests_total{route}`
/// grows by 10 (`/a`) and 30 (`/b`), `depth` reads 1, 2, … 11 and
/// `latency_seconds{route}` records one value per route.
fn ring(lifetime_buckets: bool) -> Vec<Arc<Snapshot>> {
    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(lifetime_buckets)
        .build();
    let mut out = Vec::new();
    for i in 0..11u64 {
        m.counter("requests_total", &[("route", "/a")])
            .increment(10);
        m.counter("requests_total", &[("route", "/b")])
            .increment(30);
        m.gauge("depth", &[]).set((i + 1) as f64);
        m.histogram("latency_seconds", &[("route", "/a")])
            .record(0.001 * (i + 1) as f64);
        m.histogram("latency_seconds", &[("route", "/b")])
            .record(0.1 * (i + 1) as f64);
        out.push(Arc::new(m.snapshot()));
        clock.advance(Duration::from_secs(1));
    }
    out
}

fn points(ring: &[Arc<Snapshot>], query: &str, kind: MetricKind, agg: Agg) -> Vec<Vec<f64>> {
    let a = answer_from_ring(ring, &q(query), kind, agg)
        .map_err(|e| e.1)
        .unwrap();
    a.series
        .into_iter()
        .map(|(_, p)| p.into_iter().map(|(_, v)| v).collect())
        .collect()
}

#[test]
fn counter_rates_and_increases_are_exact() {
    let r = ring(false);
    let rate = points(
        &r,
        "name=requests_total&range=5s&points=5&agg=rate",
        MetricKind::Counter,
        Agg::Rate,
    );
    assert_eq!(rate, vec![vec![10.0; 5], vec![30.0; 5]]);
    // Ten seconds in one step: ten increases (the snapshot before the
    // range's first gives the first).
    let sum = points(
        &r,
        "name=requests_total&range=10s&points=1&agg=sum",
        MetricKind::Counter,
        Agg::Sum,
    );
    assert_eq!(sum, vec![vec![100.0], vec![300.0]]);
    let merged = points(
        &r,
        "name=requests_total&range=4s&points=2&agg=rate&merge=true",
        MetricKind::Counter,
        Agg::Rate,
    );
    assert_eq!(merged, vec![vec![40.0, 40.0]]);
    let one = points(
        &r,
        "name=requests_total&label=route=/b&range=4s&points=4&agg=sum",
        MetricKind::Counter,
        Agg::Sum,
    );
    assert_eq!(one, vec![vec![30.0; 4]]);
}

#[test]
fn a_counter_that_goes_down_was_reset() {
    let mut r = ring(false);
    // The last snapshot reads 7 for /a (it was 100): a restart, 7 since.
    let mut last = (*r[10]).clone();
    for c in &mut last.counters {
        if c.labels.get("route") == Some("/a") {
            c.value = CounterValue::Int(7);
        }
    }
    r[10] = Arc::new(last);
    let sum = points(
        &r,
        "name=requests_total&label=route=/a&range=2s&points=2&agg=sum",
        MetricKind::Counter,
        Agg::Sum,
    );
    assert_eq!(sum, vec![vec![10.0, 7.0]]);
}

#[test]
fn gauges_reduce_each_step() {
    let r = ring(false);
    let run = |agg: &str, a: Agg| {
        points(
            &r,
            &format!("name=depth&range=4s&points=2&agg={agg}"),
            MetricKind::Gauge,
            a,
        )
    };
    // Readings 8, 9 | 10, 11 (at 7 s … 10 s; the range starts at 6 s).
    assert_eq!(run("last", Agg::Last), vec![vec![9.0, 11.0]]);
    assert_eq!(run("min", Agg::Min), vec![vec![8.0, 10.0]]);
    assert_eq!(run("max", Agg::Max), vec![vec![9.0, 11.0]]);
    assert_eq!(run("avg", Agg::Avg), vec![vec![8.5, 10.5]]);
    assert_eq!(run("sum", Agg::Sum), vec![vec![17.0, 21.0]]);
    assert_eq!(run("count", Agg::Count), vec![vec![2.0, 2.0]]);
}

#[test]
fn histogram_quantiles_are_the_window_at_each_step_end() {
    let r = ring(true);
    let p99 = points(
        &r,
        "name=latency_seconds&label=route=/b&range=2s&points=2&agg=p99",
        MetricKind::Histogram,
        Agg::Quantile(99),
    );
    let window_p99 = |s: &Snapshot| {
        let h = s.histogram("latency_seconds", &[("route", "/b")]).unwrap();
        h.window.quantiles.as_ref().unwrap().p99
    };
    assert_eq!(p99, vec![vec![window_p99(&r[9]), window_p99(&r[10])]]);
    let count = points(
        &r,
        "name=latency_seconds&range=3s&points=1&agg=count",
        MetricKind::Histogram,
        Agg::Count,
    );
    assert_eq!(count, vec![vec![3.0], vec![3.0]]);
    let rate = points(
        &r,
        "name=latency_seconds&range=3s&points=1&agg=rate&merge=true",
        MetricKind::Histogram,
        Agg::Rate,
    );
    assert_eq!(rate, vec![vec![2.0]]);
    // Merged quantiles are those of both windows merged.
    let merged = points(
        &r,
        "name=latency_seconds&range=1s&points=1&agg=p50&merge=true",
        MetricKind::Histogram,
        Agg::Quantile(50),
    );
    let last = &r[10];
    let mut both = last
        .histogram("latency_seconds", &[("route", "/a")])
        .unwrap()
        .clone();
    both.merge(
        last.histogram("latency_seconds", &[("route", "/b")])
            .unwrap(),
    );
    assert_eq!(merged, vec![vec![both.window.quantiles.unwrap().p50]]);
}

#[test]
fn merging_quantiles_without_buckets_is_a_typed_error() {
    let r = ring(false);
    let err = answer_from_ring(
        &r,
        &q("name=latency_seconds&agg=p99&merge=true"),
        MetricKind::Histogram,
        Agg::Quantile(99),
    )
    .err()
    .unwrap();
    assert_eq!((err.0, err.1.kind), (400, "not_mergeable"));
}

#[test]
fn series_and_points_are_bounded() {
    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder().clock(clock.clone()).build();
    let mut ring = Vec::new();
    for _ in 0..40 {
        for i in 0..MAX_SERIES + 10 {
            m.counter("many_total", &[("i", &format!("{i:03}"))])
                .increment(1);
        }
        ring.push(Arc::new(m.snapshot()));
        clock.advance(Duration::from_millis(500));
    }
    for points in [1, 3, 7, 1000] {
        let a = answer_from_ring(
            &ring,
            &q(&format!("name=many_total&range=1h&points={points}&agg=sum")),
            MetricKind::Counter,
            Agg::Sum,
        )
        .map_err(|e| e.1)
        .unwrap();
        assert_eq!((a.series.len(), a.total), (MAX_SERIES, MAX_SERIES + 10));
        // Label order: the first fifty.
        assert_eq!(a.series[0].0.get("i"), Some("000"));
        assert_eq!(a.series[49].0.get("i"), Some("049"));
        for (_, p) in &a.series {
            assert!(!p.is_empty() && p.len() <= points, "{points}: {}", p.len());
            // 39 increases of 1 in all, whatever the steps.
            assert_eq!(p.iter().map(|x| x.1).sum::<f64>(), 39.0);
        }
    }
}

#[test]
fn an_empty_ring_or_unknown_name_gives_no_series() {
    let a = answer_from_ring(&[], &q("name=x"), MetricKind::Gauge, Agg::Last)
        .map_err(|e| e.1)
        .unwrap();
    assert!(a.series.is_empty());
    let r = ring(false);
    let a = answer_from_ring(&r, &q("name=nope"), MetricKind::Gauge, Agg::Last)
        .map_err(|e| e.1)
        .unwrap();
    assert_eq!((a.series.len(), a.total), (0, 0));
}

#[test]
fn a_series_seen_only_before_the_range_does_not_upset_a_merge() {
    let mut r = ring(false);
    // The snapshot before a 5 s range holds a series gone since.
    let mut before = (*r[5]).clone();
    before.counters.insert(
        0,
        crate::snapshot::CounterSample::new("requests_total", &[("route", "/0")], 1_000),
    );
    r[5] = Arc::new(before);
    let merged = points(
        &r,
        "name=requests_total&range=5s&points=5&agg=rate&merge=true",
        MetricKind::Counter,
        Agg::Rate,
    );
    assert_eq!(merged, vec![vec![40.0; 5]]);
}
