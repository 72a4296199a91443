//! History store: roll-over and retention on snapshot time, counter resets,
//! label filters, level choice, empty results and bad queries.

#![cfg(feature = "history")]

use std::sync::Arc;
use std::time::Duration;

use vitals::history::{Aggregation, History, Latest, Level, Query};
use vitals::snapshot::{CounterSample, GaugeSample};
use vitals::{Error, ManualClock, MetricsCollector, Snapshot};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
/// An hour-aligned start, so that interval boundaries are easy to reason on.
const T0: u64 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR;

/// A counter sample: name, labels, total.
type CounterSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], u64);

/// A hand-made snapshot at `t` ms with the given counters and gauges.
fn snap(t: u64, uptime: f64, counters: &[CounterSpec], gauges: &[(&str, f64)]) -> Snapshot {
    let mut s = MetricsCollector::new().snapshot();
    s.timestamp_unix_ms = t;
    s.uptime_seconds = uptime;
    s.counters = counters
        .iter()
        .map(|(name, labels, value)| CounterSample::new(name, labels, *value))
        .collect();
    s.gauges = gauges
        .iter()
        .map(|(name, value)| GaugeSample::new(name, &[], *value))
        .collect();
    s
}

fn values(history: &History, q: &Query) -> Vec<(u64, f64)> {
    let r = history.query(q).unwrap();
    assert_eq!(r.series.len(), 1, "{r:?}");
    r.series[0]
        .points
        .iter()
        .map(|p| (p.timestamp_unix_ms, p.value))
        .collect()
}

#[test]
fn gauges_roll_up_into_minutes_five_minutes_and_hours() {
    let history = History::new();
    // A gauge read every 10 s for 2 h, its value the minute's index.
    for i in 1..=720u64 {
        let t = T0 + i * 10_000;
        let minute = ((t - 1 - T0) / MIN) as f64;
        history
            .ingest(&snap(
                t,
                i as f64 * 10.0,
                &[],
                &[("temp", minute + (i % 6) as f64 / 10.0)],
            ))
            .unwrap();
    }
    let raw = values(
        &history,
        &Query::new("temp", Aggregation::Last).level(Level::Raw),
    );
    assert_eq!(raw.len(), 720);
    let minutes = values(
        &history,
        &Query::new("temp", Aggregation::Avg).level(Level::Minute),
    );
    assert_eq!(minutes.len(), 120);
    assert_eq!(minutes[0].0, T0);
    // Six readings per minute: m + {0.1 .. 0.5, 0.0}, mean m + 0.25.
    for (k, (t, v)) in minutes.iter().enumerate() {
        assert_eq!(*t, T0 + k as u64 * MIN);
        assert!((v - (k as f64 + 0.25)).abs() < 1e-9, "{k}: {v}");
    }
    let five_max = values(
        &history,
        &Query::new("temp", Aggregation::Max).level(Level::FiveMinutes),
    );
    assert_eq!(five_max.len(), 24);
    assert_eq!(five_max[1], (T0 + 5 * MIN, 9.5));
    let hours = values(
        &history,
        &Query::new("temp", Aggregation::Count).level(Level::Hour),
    );
    assert_eq!(hours, [(T0, 360.0), (T0 + HOUR, 360.0)]);
    let min = values(
        &history,
        &Query::new("temp", Aggregation::Min).level(Level::Hour),
    );
    assert_eq!(min, [(T0, 0.0), (T0 + HOUR, 60.0)]);
    // The first hour is closed, the second still open (a snapshot exactly
    // on its end does not close it).
    let stats = history.stats();
    assert_eq!(stats.points, [720, 120, 24, 2]);
}

#[test]
fn retention_drops_points_per_level_as_snapshot_time_passes() {
    let history = History::builder()
        .retention(Level::Raw, Duration::from_secs(120))
        .retention(Level::Minute, Duration::from_secs(600))
        .retention(Level::FiveMinutes, Duration::from_secs(1800))
        .retention(Level::Hour, Duration::from_secs(7200))
        .build()
        .unwrap();
    for i in 1..=(3 * 360u64) {
        history
            .ingest(&snap(T0 + i * 10_000, i as f64 * 10.0, &[], &[("g", 1.0)]))
            .unwrap();
    }
    let now = history.newest_unix_ms().unwrap();
    assert_eq!(now, T0 + 3 * HOUR);
    let stats = history.stats();
    // raw: points newer than now - 120 s (and the one at the edge) ...
    assert_eq!(stats.points[0], 13);
    // 1m: intervals ending after now - 10 min; 5m: after now - 30 min;
    // 1h: the last two hours and the open one.
    assert_eq!(stats.points[1], 11);
    assert_eq!(stats.points[2], 7);
    assert_eq!(stats.points[3], 3);
    let raw = values(
        &history,
        &Query::new("g", Aggregation::Last).level(Level::Raw),
    );
    assert!(raw.iter().all(|(t, _)| *t >= now - 120_000));
    // With the defaults nothing of these three hours would be gone.
    let keep = History::new();
    for i in 1..=(3 * 360u64) {
        keep.ingest(&snap(T0 + i * 10_000, i as f64 * 10.0, &[], &[("g", 1.0)]))
            .unwrap();
    }
    assert_eq!(keep.stats().points, [1080, 180, 36, 3]);
}

#[test]
fn retention_follows_a_manual_clock_through_a_collector() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let history = History::builder()
        .retention(Level::Raw, Duration::from_secs(60))
        .build()
        .unwrap();
    let c = metrics.counter("jobs_total", &[]);
    for _ in 0..30 {
        c.increment(2);
        clock.advance(Duration::from_secs(10));
        history.ingest(&metrics.snapshot()).unwrap();
    }
    let raw = history
        .query(&Query::new("jobs_total", Aggregation::Sum).level(Level::Raw))
        .unwrap();
    assert_eq!(raw.series[0].points.len(), 7);
    assert!(raw.series[0].points.iter().all(|p| p.value == 2.0));
    assert_eq!(
        history.latest("jobs_total", &[]),
        Some(Latest::Counter {
            timestamp_unix_ms: history.newest_unix_ms().unwrap(),
            total: 60.into()
        })
    );
}

#[test]
fn counter_resets_count_the_new_total_as_increase() {
    let history = History::new();
    let c = |t: u64, up: f64, v: u64| snap(T0 + t * 10_000, up, &[("req_total", &[], v)], &[]);
    history.ingest(&c(1, 10.0, 1000)).unwrap(); // baseline only
    history.ingest(&c(2, 20.0, 1100)).unwrap(); // +100
    history.ingest(&c(3, 30.0, 40)).unwrap(); // went down: reset, +40
    history.ingest(&c(4, 40.0, 90)).unwrap(); // +50
    history.ingest(&c(5, 5.0, 100)).unwrap(); // uptime went down: restart, +100
    history.ingest(&c(6, 15.0, 130)).unwrap(); // +30
    let raw = values(
        &history,
        &Query::new("req_total", Aggregation::Sum).level(Level::Raw),
    );
    let got: Vec<f64> = raw.iter().map(|p| p.1).collect();
    assert_eq!(got, [100.0, 40.0, 50.0, 100.0, 30.0]);
    let minute = values(
        &history,
        &Query::new("req_total", Aggregation::Sum).level(Level::Minute),
    );
    assert_eq!(minute, [(T0, 320.0)]);
    // 320 over the 50 s between the first and the last snapshot.
    let rate = values(
        &history,
        &Query::new("req_total", Aggregation::Rate).level(Level::Minute),
    );
    assert_eq!(rate, [(T0, 6.4)]);
}

#[test]
fn a_series_born_between_snapshots_counts_from_zero() {
    let history = History::new();
    history
        .ingest(&snap(T0 + 10_000, 10.0, &[("a_total", &[], 5)], &[]))
        .unwrap();
    history
        .ingest(&snap(
            T0 + 20_000,
            20.0,
            &[("a_total", &[], 7), ("b_total", &[], 4)],
            &[],
        ))
        .unwrap();
    let b = values(
        &history,
        &Query::new("b_total", Aggregation::Sum).level(Level::Raw),
    );
    assert_eq!(b, [(T0 + 20_000, 4.0)]);
    let a = values(
        &history,
        &Query::new("a_total", Aggregation::Sum).level(Level::Raw),
    );
    assert_eq!(a, [(T0 + 20_000, 2.0)]);
}

#[test]
fn label_filters_select_exact_values_and_any_value() {
    let history = History::new();
    for i in 1..=6u64 {
        history
            .ingest(&snap(
                T0 + i * 10_000,
                i as f64 * 10.0,
                &[
                    ("http_total", &[("route", "/a"), ("code", "200")], i * 10),
                    ("http_total", &[("route", "/b"), ("code", "200")], i * 20),
                    ("http_total", &[("route", "/a"), ("code", "500")], i),
                    ("http_total", &[], i * 1000),
                ],
                &[],
            ))
            .unwrap();
    }
    let q = Query::new("http_total", Aggregation::Sum).level(Level::Minute);
    let all = history.query(&q).unwrap();
    assert_eq!(all.series.len(), 4);
    let route_a = history.query(&q.clone().label("route", "/a")).unwrap();
    let got: Vec<(String, f64)> = route_a
        .series
        .iter()
        .map(|s| (s.labels.to_string(), s.points[0].value))
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().any(|(_, v)| *v == 50.0) && got.iter().any(|(_, v)| *v == 5.0));
    let a_200 = history
        .query(&q.clone().label("route", "/a").label("code", "200"))
        .unwrap();
    assert_eq!(a_200.series.len(), 1);
    assert_eq!(a_200.series[0].points[0].value, 50.0);
    let any_route = history.query(&q.clone().any_label("route")).unwrap();
    assert_eq!(any_route.series.len(), 3);
    let none = history.query(&q.clone().label("route", "/zzz")).unwrap();
    assert!(none.series.is_empty());
}

#[test]
fn the_level_is_chosen_from_the_range_and_the_point_limit() {
    let history = History::new();
    let day = 24 * HOUR;
    let now = T0 + 40 * day;
    history
        .ingest(&snap(now - 40 * day, 1.0, &[], &[("g", 1.0)]))
        .unwrap();
    // Forty days on, a jump of the clock for the history: the snapshot
    // after it confirms it.
    history
        .ingest(&snap(now - 10_000, 2.0, &[], &[("g", 1.0)]))
        .unwrap();
    history.ingest(&snap(now, 3.0, &[], &[("g", 1.0)])).unwrap();
    assert_eq!(history.newest_unix_ms(), Some(now));
    let q = |start: u64| Query::new("g", Aggregation::Avg).range(start, now);
    // Within 24 h: raw; within 7 d: 1 min; within 30 d: 5 min; else 1 h.
    assert_eq!(history.query(&q(now - HOUR)).unwrap().level, Level::Raw);
    assert_eq!(
        history.query(&q(now - 2 * day)).unwrap().level,
        Level::Minute
    );
    assert_eq!(
        history.query(&q(now - 10 * day)).unwrap().level,
        Level::FiveMinutes
    );
    assert_eq!(
        history.query(&q(now - 35 * day)).unwrap().level,
        Level::Hour
    );
    // A point limit picks the coarsest level that still fits it.
    let r = history.query(&q(now - day).max_points(100)).unwrap();
    assert_eq!((r.level, r.step_ms), (Level::FiveMinutes, Some(15 * MIN)));
    let r = history.query(&q(now - day).max_points(24)).unwrap();
    assert_eq!((r.level, r.step_ms), (Level::Hour, Some(HOUR)));
    let r = history.query(&q(now - HOUR).max_points(60)).unwrap();
    assert_eq!((r.level, r.step_ms), (Level::Minute, Some(MIN)));
    // Naming a level overrides the choice.
    let r = history.query(&q(now - HOUR).level(Level::Hour)).unwrap();
    assert_eq!(r.level, Level::Hour);
}

#[test]
fn downsampling_merges_intervals_into_at_most_n_points() {
    let history = History::new();
    for i in 1..=360u64 {
        history
            .ingest(&snap(
                T0 + i * 10_000,
                i as f64 * 10.0,
                &[("c_total", &[], i * 3)],
                &[("g", i as f64)],
            ))
            .unwrap();
    }
    let r = history
        .query(
            &Query::new("c_total", Aggregation::Sum)
                .range(T0, T0 + HOUR)
                .level(Level::Minute)
                .max_points(7),
        )
        .unwrap();
    let pts = &r.series[0].points;
    assert!(pts.len() <= 7, "{}", pts.len());
    assert_eq!(r.step_ms, Some(9 * MIN));
    // Every increase is kept: 359 intervals of 3.
    assert_eq!(pts.iter().map(|p| p.value).sum::<f64>(), 359.0 * 3.0);
    let raw = history
        .query(
            &Query::new("g", Aggregation::Max)
                .range(T0, T0 + HOUR)
                .level(Level::Raw)
                .max_points(10),
        )
        .unwrap();
    assert_eq!(raw.series[0].points.len(), 10);
    // The range ends before the snapshot at T0 + 1 h.
    assert_eq!(raw.series[0].points[9].value, 359.0);
}

#[test]
fn missing_names_and_empty_ranges_give_empty_results() {
    let history = History::new();
    let r = history
        .query(&Query::new("nothing", Aggregation::P99))
        .unwrap();
    assert!(r.series.is_empty());
    history
        .ingest(&snap(T0 + 1000, 1.0, &[], &[("g", 1.0)]))
        .unwrap();
    let r = history
        .query(&Query::new("g", Aggregation::Avg).range(T0 + HOUR, T0 + 2 * HOUR))
        .unwrap();
    assert_eq!(r.series.len(), 1);
    assert!(r.series[0].points.is_empty());
    assert_eq!(history.latest("g", &[("x", "y")]), None);
    assert_eq!(history.latest("nothing", &[]), None);
}

#[test]
fn bad_queries_get_typed_errors() {
    let history = History::new();
    history
        .ingest(&snap(T0 + 1000, 1.0, &[("c_total", &[], 1)], &[("g", 1.0)]))
        .unwrap();
    let inverted = history.query(&Query::new("g", Aggregation::Avg).range(T0 + 10, T0 + 5));
    assert_eq!(
        inverted.unwrap_err(),
        Error::InvalidTimeRange {
            start_ms: T0 + 10,
            end_ms: T0 + 5
        }
    );
    let empty = history.query(&Query::new("g", Aggregation::Avg).range(T0, T0));
    assert!(matches!(empty, Err(Error::InvalidTimeRange { .. })));
    let zero = history.query(&Query::new("g", Aggregation::Avg).max_points(0));
    assert_eq!(zero.unwrap_err(), Error::ZeroMaxPoints);
    let p99_of_gauge = history
        .query(&Query::new("g", Aggregation::P99))
        .unwrap_err();
    assert_eq!(
        p99_of_gauge,
        Error::UnsupportedAggregation {
            aggregation: "p99",
            kind: "gauge",
            name: "g".into()
        }
    );
    assert_eq!(p99_of_gauge.kind(), "unsupported_aggregation");
    let last_of_counter = history.query(&Query::new("c_total", Aggregation::Last));
    assert!(matches!(
        last_of_counter,
        Err(Error::UnsupportedAggregation {
            kind: "counter",
            ..
        })
    ));
    assert_eq!(
        "p42".parse::<Aggregation>().unwrap_err(),
        Error::UnknownAggregation("p42".into())
    );
    assert_eq!(
        "2m".parse::<Level>().unwrap_err(),
        Error::UnknownLevel("2m".into())
    );
    // Validation comes first, even for a missing metric.
    assert!(history
        .query(&Query::new("nothing", Aggregation::Sum).range(9, 1))
        .is_err());
}

#[test]
fn out_of_order_snapshots_and_kind_clashes_are_counted_not_applied() {
    let history = History::new();
    history
        .ingest(&snap(T0 + 20_000, 20.0, &[("x", &[], 1)], &[]))
        .unwrap();
    history
        .ingest(&snap(T0 + 10_000, 10.0, &[("x", &[], 5)], &[]))
        .unwrap();
    history
        .ingest(&snap(T0 + 30_000, 30.0, &[("x", &[], 3)], &[("x", 1.0)]))
        .unwrap();
    let stats = history.stats();
    assert_eq!(
        (stats.snapshots, stats.out_of_order, stats.kind_conflicts),
        (2, 1, 1)
    );
    assert_eq!(
        values(
            &history,
            &Query::new("x", Aggregation::Sum).level(Level::Raw)
        ),
        [(T0 + 30_000, 2.0)]
    );
}

#[test]
fn results_are_plain_serde_data() {
    let history = History::new();
    history
        .ingest(&snap(T0 + 1000, 1.0, &[], &[("g", 2.5)]))
        .unwrap();
    let r = history.query(&Query::new("g", Aggregation::Last)).unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["level"], "raw");
    assert_eq!(json["aggregation"], "last");
    assert_eq!(json["series"][0]["points"][0]["value"], 2.5);
    let back: vitals::history::QueryResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn extreme_times_and_limits_do_not_panic() {
    let empty = History::new();
    for q in [
        Query::new("g", Aggregation::Avg).max_points(1),
        Query::new("g", Aggregation::Avg)
            .range(0, u64::MAX)
            .max_points(usize::MAX),
        Query::new("g", Aggregation::Avg)
            .range(u64::MAX - 1, u64::MAX)
            .level(Level::Hour),
    ] {
        assert!(empty.query(&q).unwrap().series.is_empty());
    }
    let history = History::new();
    history
        .ingest(&snap(
            u64::MAX - 10,
            1.0,
            &[("c_total", &[], 1)],
            &[("g", 1.0)],
        ))
        .unwrap();
    history
        .ingest(&snap(
            u64::MAX - 1,
            2.0,
            &[("c_total", &[], u64::MAX)],
            &[("g", f64::NAN)],
        ))
        .unwrap();
    history
        .ingest(&snap(
            u64::MAX,
            3.0,
            &[("c_total", &[], 0)],
            &[("g", f64::INFINITY)],
        ))
        .unwrap();
    for level in Level::ALL {
        for q in [
            Query::new("g", Aggregation::Max).level(level).max_points(1),
            Query::new("g", Aggregation::Last).level(level),
            Query::new("c_total", Aggregation::Rate)
                .level(level)
                .max_points(3),
        ] {
            history.query(&q).unwrap();
        }
    }
    let sum = history
        .query(&Query::new("c_total", Aggregation::Sum).level(Level::Raw))
        .unwrap();
    // u64::MAX - 1 more; the reset at u64::MAX is past the default range's
    // exclusive end.
    assert_eq!(sum.series[0].points.len(), 1);
    assert_eq!(sum.series[0].points[0].value, (u64::MAX - 1) as f64);
}

#[test]
fn histogram_restarts_count_the_new_lifetime_as_the_interval() {
    let history = History::new();
    let first = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = first.histogram("latency_seconds", &[]);
    let at = |metrics: &MetricsCollector, t: u64, uptime: f64| {
        let mut s = metrics.snapshot();
        s.timestamp_unix_ms = T0 + t * 10_000;
        s.uptime_seconds = uptime;
        history.ingest(&s).unwrap();
    };
    h.record(0.5);
    at(&first, 1, 10.0); // baseline
    for _ in 0..3 {
        h.record(1.0);
    }
    at(&first, 2, 20.0); // 3 values of 1.0
    let second = MetricsCollector::builder().lifetime_buckets(true).build();
    let h2 = second.histogram("latency_seconds", &[]);
    h2.record(4.0);
    h2.record(4.0);
    at(&second, 3, 5.0); // restarted: its 2 values of 4.0
    let q = |agg| Query::new("latency_seconds", agg).level(Level::Raw);
    let counts = values(&history, &q(Aggregation::Count));
    assert_eq!(counts, [(T0 + 20_000, 3.0), (T0 + 30_000, 2.0)]);
    let sums = values(&history, &q(Aggregation::Sum));
    assert_eq!(sums, [(T0 + 20_000, 3.0), (T0 + 30_000, 8.0)]);
    let p50: Vec<f64> = values(&history, &q(Aggregation::P50))
        .iter()
        .map(|p| p.1)
        .collect();
    assert!(
        (p50[0] - 1.0).abs() < 0.008 && (p50[1] - 4.0).abs() < 0.032,
        "{p50:?}"
    );
    // The minute merges both: five values, p99 from the restarted process.
    let minute = values(
        &history,
        &Query::new("latency_seconds", Aggregation::P99).level(Level::Minute),
    );
    assert!((minute[0].1 - 4.0).abs() < 0.032, "{minute:?}");
}
