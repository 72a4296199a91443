//! The snapshot's JSON shape: the documented fields, a round trip, and
//! determinism of series order.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vitals::snapshot::SCHEMA_VERSION;
use vitals::{ManualClock, MetricKind, MetricsCollector, Snapshot, Window};

fn populated() -> (Arc<ManualClock>, MetricsCollector) {
    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder().clock(clock.clone()).build();
    m.describe(
        MetricKind::Counter,
        "requests_total",
        None,
        "Requests served",
    );
    m.describe(
        MetricKind::Histogram,
        "latency_seconds",
        Some(vitals::Unit::Seconds),
        "Latency",
    );
    m.counter("requests_total", &[("method", "GET"), ("code", "200")])
        .increment(42);
    m.counter("requests_total", &[("method", "POST"), ("code", "500")])
        .inc();
    m.gauge("queue_depth", &[]).set(7.5);
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    for ms in 1..=100 {
        h.record(f64::from(ms) / 1000.0);
    }
    m.configure_histogram("sizes", Window::Count { values: 10 })
        .unwrap();
    m.histogram("sizes", &[]).record(3.0);
    clock.advance(Duration::from_secs(12));
    (clock, m)
}

#[test]
fn the_json_has_the_documented_fields() {
    let (_clock, m) = populated();
    let json: Value = serde_json::to_value(m.snapshot()).unwrap();
    assert_eq!(json["schema_version"], SCHEMA_VERSION);
    assert!(json["timestamp_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(json["uptime_seconds"], 12.0);
    let c = &json["counters"][0];
    assert_eq!(c["name"], "requests_total");
    assert_eq!(
        c["labels"],
        serde_json::json!({"code": "200", "method": "GET"})
    );
    assert_eq!(c["value"], 42);
    assert_eq!(c["rate"]["per_second"], 3.5);
    assert_eq!(c["rate"]["span_seconds"], 12.0);
    assert_eq!(json["gauges"][0]["value"], 7.5);
    let h = &json["histograms"][0];
    assert_eq!(h["name"], "latency_seconds");
    let w = &h["summary"]["window"];
    assert_eq!(
        w["window"],
        serde_json::json!({"type": "time", "length_seconds": 60.0, "slots": 6})
    );
    assert_eq!(w["span_seconds"], 12.0);
    assert_eq!(w["count"], 100);
    for field in ["sum", "min", "max", "mean", "stddev"] {
        assert!(w[field].is_number(), "{field}");
    }
    for q in ["p50", "p90", "p95", "p99", "p999"] {
        assert!(w["quantiles"][q].is_number(), "{q}");
    }
    assert_eq!(h["summary"]["lifetime"]["count"], 100);
    assert_eq!(h["summary"]["saturated"], 0);
    assert_eq!(h["summary"]["dropped"], 0);
    let sizes = &json["histograms"][1]["summary"]["window"]["window"];
    assert_eq!(sizes, &serde_json::json!({"type": "count", "values": 10}));
    let meta: Vec<&Value> = json["metadata"].as_array().unwrap().iter().collect();
    let latency = meta
        .iter()
        .find(|m| m["name"] == "latency_seconds")
        .unwrap();
    assert_eq!(latency["kind"], "histogram");
    assert_eq!(latency["unit"], "seconds");
    assert_eq!(latency["help"], "Latency");
    assert!(json["first_error"].is_null());
}

#[test]
fn a_snapshot_round_trips_through_json() {
    let (_clock, m) = populated();
    let snap = m.snapshot();
    let line = serde_json::to_string(&snap).unwrap();
    assert!(!line.contains('\n'), "one snapshot fits on one JSON line");
    let back: Snapshot = serde_json::from_str(&line).unwrap();
    assert_eq!(back, snap);
}

#[test]
fn series_come_grouped_by_name_in_a_stable_order() {
    let (_clock, m) = populated();
    let a = m.snapshot();
    let b = m.snapshot();
    let names = |s: &Snapshot| {
        s.counters
            .iter()
            .map(|c| (c.name.to_string(), c.labels.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    let meta: Vec<&str> = a.metadata.iter().map(|m| &*m.name).collect();
    let mut sorted = meta.clone();
    sorted.sort_unstable();
    assert_eq!(meta, sorted, "metadata is sorted by name");
}

#[test]
fn an_empty_histogram_serialises_nulls_not_nans() {
    let m = MetricsCollector::new();
    let _ = m.histogram("idle_seconds", &[]);
    let json: Value = serde_json::to_value(m.snapshot()).unwrap();
    let w = &json["histograms"][0]["summary"]["window"];
    assert_eq!(w["count"], 0);
    for field in ["min", "max", "mean", "stddev", "quantiles"] {
        assert!(w[field].is_null(), "{field}");
    }
}

/// A schema-2 line carries log-linear lifetime buckets (64 linear
/// sub-buckets per power of two, positions from 2⁻³⁰): it still reads, its
/// buckets moved to the exponential layout, with quantiles within the
/// documented 1.4%.
#[test]
fn a_schema_2_line_reads_with_its_buckets_migrated() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = m.histogram("latency_seconds", &[]);
    let values: Vec<f64> = (1..=2000).map(|i| f64::from(i).powf(1.3) * 1e-4).collect();
    values.iter().for_each(|v| h.record(*v));
    let mut json: Value = serde_json::to_value(m.snapshot()).unwrap();
    // The same values in the version-2 layout, as that writer put them.
    let mut old = std::collections::BTreeMap::<u64, u64>::new();
    for v in &values {
        let bits = v.to_bits();
        let position = ((bits >> 52) - (1023 - 30)) * 64 + ((bits >> 46) & 63);
        *old.entry(position).or_default() += 1;
    }
    json["schema_version"] = 2.into();
    let summary = &mut json["histograms"][0]["summary"];
    summary.as_object_mut().unwrap().remove("window_buckets");
    summary["lifetime_buckets"] =
        serde_json::json!({"zeros": 0, "counts": old.into_iter().collect::<Vec<_>>()});
    let line = serde_json::to_string(&json).unwrap();
    let snap: Snapshot = serde_json::from_str(&line).unwrap();
    let s = snap.histogram("latency_seconds", &[]).unwrap();
    assert_eq!(s.window_buckets, None);
    let b = s.lifetime_buckets.as_ref().unwrap();
    assert_eq!((b.scale, b.count()), (vitals::layout::SCALE, 2000));
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
        let exact = sorted[(vitals::layout::nearest_rank(q, 2000) - 1) as usize];
        let got = b.quantile(q).unwrap();
        assert!(
            (got - exact).abs() / exact <= 0.014,
            "p{q}: {got} vs {exact}"
        );
    }
    // Written again, it reads back unchanged.
    let again: Snapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
    assert_eq!(again.histogram("latency_seconds", &[]), Some(s));
}
