//! A day of synthetic latency through a collector with a manual clock into
//! the history: hourly and 6-hour quantiles against exact ones.

#![cfg(feature = "history")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vitals::history::{Aggregation, History, Level, Query};
use vitals::{ManualClock, MetricsCollector};

const HOUR: u64 = 3_600_000;

/// xorshift64*: deterministic and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-300), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[test]
fn hourly_and_six_hour_quantiles_are_within_one_percent_of_exact() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let latency = metrics.histogram("request_duration_seconds", &[("route", "/")]);
    let history = History::new();
    let mut rng = Rng(7);
    // Values recorded before each snapshot belong to the interval holding
    // (snapshot time - 1 ms): group the exact values the same way.
    let mut by_hour: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut by_six: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut first = None;
    for tick in 0..8640u64 {
        let hour_of_day = tick / 360;
        // The median drifts over the day; one minute in ten has a slow tail.
        let median = 0.02 * (1.0 + hour_of_day as f64 / 6.0);
        let slow = (tick / 6) % 10 == 3;
        for _ in 0..25 {
            let mut v = (median.ln() + 0.6 * rng.normal()).exp();
            if slow && rng.next_f64() < 0.3 {
                v *= 8.0;
            }
            latency.record(v);
            pending.push(v);
        }
        clock.advance(Duration::from_secs(10));
        let snap = metrics.snapshot();
        let t = snap.timestamp_unix_ms;
        first.get_or_insert(t);
        by_hour
            .entry((t - 1) / HOUR * HOUR)
            .or_default()
            .extend(&pending);
        by_six
            .entry((t - 1) / (6 * HOUR) * (6 * HOUR))
            .or_default()
            .extend(&pending);
        pending.clear();
        history.ingest(&snap).unwrap();
    }
    // The very first snapshot is the baseline: its values are not in any
    // interval of the store (it saw no earlier reading).
    let first = first.unwrap();
    let first_values = 25;
    for map in [&mut by_hour, &mut by_six] {
        for v in map.values_mut() {
            v.sort_by(f64::total_cmp);
        }
    }
    let mut checked = 0;
    let hourly = history
        .query(&Query::new("request_duration_seconds", Aggregation::P95).level(Level::Hour))
        .unwrap();
    assert_eq!(hourly.series.len(), 1);
    for agg in [
        Aggregation::P50,
        Aggregation::P95,
        Aggregation::P99,
        Aggregation::Count,
    ] {
        let r = history
            .query(&Query::new("request_duration_seconds", agg).level(Level::Hour))
            .unwrap();
        let points = &r.series[0].points;
        assert!(points.len() >= 24, "{}", points.len());
        for p in points {
            let exact_values = &by_hour[&p.timestamp_unix_ms];
            if p.timestamp_unix_ms == (first - 1) / HOUR * HOUR {
                // The first hour lacks the baseline snapshot's values.
                if agg == Aggregation::Count {
                    assert_eq!(p.value as usize, exact_values.len() - first_values);
                }
                continue;
            }
            let want = match agg {
                Aggregation::P50 => exact(exact_values, 0.5),
                Aggregation::P95 => exact(exact_values, 0.95),
                Aggregation::P99 => exact(exact_values, 0.99),
                _ => exact_values.len() as f64,
            };
            let err = (p.value - want).abs() / want;
            assert!(
                err <= 0.01,
                "{agg:?} at {}: {} vs exact {want} ({err:.4})",
                p.timestamp_unix_ms,
                p.value
            );
            checked += 1;
        }
    }
    assert!(checked >= 4 * 23, "{checked}");
    // Six-hour steps: the hourly level downsampled to steps of 6 h from a
    // 6-hour boundary, quantiles merged from buckets, not averaged.
    let start = (first - 1) / (6 * HOUR) * (6 * HOUR) + 6 * HOUR;
    for (agg, q) in [
        (Aggregation::P50, 0.5),
        (Aggregation::P95, 0.95),
        (Aggregation::P99, 0.99),
    ] {
        let r = history
            .query(
                &Query::new("request_duration_seconds", agg)
                    .level(Level::Hour)
                    .range(start, start + 18 * HOUR)
                    .max_points(3),
            )
            .unwrap();
        assert_eq!(r.step_ms, Some(6 * HOUR));
        let points = &r.series[0].points;
        assert_eq!(points.len(), 3);
        for p in points {
            let want = exact(&by_six[&p.timestamp_unix_ms], q);
            let err = (p.value - want).abs() / want;
            assert!(
                err <= 0.01,
                "6h {agg:?} at {}: {} vs {want} ({err:.4})",
                p.timestamp_unix_ms,
                p.value
            );
        }
        // An average of the per-minute values would be far off.
        if agg == Aggregation::P99 {
            let minutes = history
                .query(
                    &Query::new("request_duration_seconds", agg)
                        .level(Level::Minute)
                        .range(start, start + 6 * HOUR),
                )
                .unwrap();
            let points = &minutes.series[0].points;
            assert_eq!(points.len(), 360);
            let mean: f64 = points.iter().map(|p| p.value).sum::<f64>() / 360.0;
            let want = exact(&by_six[&start], q);
            assert!(
                (mean - want).abs() / want > 0.02,
                "averaging would have passed: {mean} vs {want}"
            );
        }
    }
}
