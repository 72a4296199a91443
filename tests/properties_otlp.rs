//! Property test of the OTLP/JSON encoding over arbitrary registries: any
//! label values (every Unicode class, NUL, 1 KiB long), any values (NaN,
//! ±∞, extremes, negatives that histograms drop), names of every kind.
//! The body, read with serde_json, holds every series of the snapshot once
//! with its value; every exponential histogram's buckets plus its zero count
//! equal its count (the snapshot's), in at most 160 buckets; 64-bit
//! integers are strings.
#![cfg(feature = "otlp")]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::Value;
use vitals::export::push::{encode_otlp, OtlpFormat};
use vitals::MetricsCollector;

#[derive(Debug, Clone)]
enum Op {
    Counter(String, Vec<(String, String)>, u64),
    Gauge(String, Vec<(String, String)>, f64),
    Histogram(String, Vec<(String, String)>, Vec<f64>),
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            prop_oneof![
                ".{0,12}",
                "[\\x00-\\x1f\"\\\\\n]{0,4}",
                ".{1000,1024}",
                Just(String::new()),
            ],
        ),
        0..4,
    )
}

fn op() -> impl Strategy<Value = Op> {
    let name = "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}";
    prop_oneof![
        (name, labels(), any::<u64>()).prop_map(|(n, l, v)| Op::Counter(n, l, v)),
        (
            name,
            labels(),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0)
            ]
        )
            .prop_map(|(n, l, v)| Op::Gauge(n, l, v)),
        (
            name,
            labels(),
            prop::collection::vec(
                prop_oneof![any::<f64>(), 0.0..1e3, Just(0.0), 1e-300..1e-290],
                0..40
            )
        )
            .prop_map(|(n, l, v)| Op::Histogram(n, l, v)),
    ]
}

fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

type Key = (String, String, BTreeMap<String, String>);

fn int(v: &Value) -> u64 {
    v.as_str()
        .expect("a 64-bit integer as a string")
        .parse()
        .unwrap()
}

/// A JSON double: a number or one of the three names.
fn double(v: &Value) -> f64 {
    match v.as_str() {
        Some("NaN") => f64::NAN,
        Some("Infinity") => f64::INFINITY,
        Some("-Infinity") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap(),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_json_body_holds_every_series_with_its_value(ops in prop::collection::vec(op(), 0..30)) {
        let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
        for op in &ops {
            match op {
                Op::Counter(n, l, v) => {
                    if let Ok(c) = metrics.try_counter(n, &pairs(l)) {
                        c.increment(*v);
                    }
                }
                Op::Gauge(n, l, v) => {
                    if let Ok(g) = metrics.try_gauge(n, &pairs(l)) {
                        g.set(*v);
                    }
                }
                Op::Histogram(n, l, values) => {
                    if let Ok(h) = metrics.try_histogram(n, &pairs(l)) {
                        values.iter().for_each(|v| h.record(*v));
                    }
                }
            }
        }
        let snap = metrics.snapshot();
        let body: Value = serde_json::from_slice(&encode_otlp(&snap, OtlpFormat::Json).unwrap()).unwrap();
        let mut got: BTreeMap<Key, Value> = BTreeMap::new();
        for m in body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap().to_owned();
            for kind in ["sum", "gauge", "exponentialHistogram", "histogram"] {
                let Some(data) = m.get(kind) else { continue };
                for p in data["dataPoints"].as_array().unwrap() {
                    let attrs: BTreeMap<String, String> = p["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"]["stringValue"].as_str().unwrap().to_owned()))
                        .collect();
                    let before = got.insert((name.clone(), kind.to_owned(), attrs), p.clone());
                    prop_assert!(before.is_none(), "a series twice");
                }
            }
        }
        let key = |name: &str, kind: &str, labels: &vitals::Labels| -> Key {
            (name.to_owned(), kind.to_owned(), labels.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
        };
        let series = snap.counters.len() + snap.gauges.len() + snap.histograms.len();
        prop_assert_eq!(got.len(), series);
        for c in &snap.counters {
            let p = &got[&key(&c.name, "sum", &c.labels)];
            match c.value.as_u64().and_then(|v| i64::try_from(v).ok()) {
                Some(v) => prop_assert_eq!(int(&p["asInt"]), v as u64),
                None => prop_assert_eq!(double(&p["asDouble"]), c.value.as_f64()),
            }
        }
        for g in &snap.gauges {
            let p = &got[&key(&g.name, "gauge", &g.labels)];
            prop_assert!(same(double(&p["asDouble"]), g.value), "{} {}", p, g.value);
        }
        for h in &snap.histograms {
            let p = &got[&key(&h.name, "exponentialHistogram", &h.labels)];
            let count = int(&p["count"]);
            prop_assert_eq!(count, h.summary.lifetime.count);
            let buckets: Vec<u64> = p.get("positive").map_or(vec![], |pos| {
                pos["bucketCounts"].as_array().unwrap().iter().map(int).collect()
            });
            prop_assert!(buckets.len() <= 160);
            prop_assert_eq!(buckets.iter().sum::<u64>() + int(&p["zeroCount"]), count);
            prop_assert!(same(double(&p["sum"]), h.summary.lifetime.sum));
        }
    }
}
