//! Property test of the remote-write encoding over arbitrary registries:
//! any label values (every Unicode class, NUL, 1 KiB long), any values
//! (NaN, ±∞, extremes), external labels that collide with series labels,
//! families whose names clash.
//! The body, decoded field by field from the .proto numbers, holds exactly
//! the series the documented mapping gives, labels sorted, one sample each
//! at the snapshot's time.
#![cfg(feature = "remote-write")]

mod push_support;

use proptest::prelude::*;
use push_support::{decode_write_request, expected_series, Labels};
use vitals::export::push::encode_write_request;
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
    // A few short names, so that families clash (`x` beside `x_total`,
    // `h` beside `h_sum`), and any others.
    let name = prop_oneof![
        prop::sample::select(vec!["x", "x_total", "h", "h_sum", "h_count", "b_bucket"])
            .prop_map(String::from),
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,15}",
    ];
    prop_oneof![
        (name.clone(), labels(), any::<u64>()).prop_map(|(n, l, v)| Op::Counter(n, l, v)),
        (
            name.clone(),
            labels(),
            prop_oneof![
                any::<f64>(),
                Just(f64::NAN),
                Just(f64::INFINITY),
                Just(-0.0)
            ]
        )
            .prop_map(|(n, l, v)| Op::Gauge(n, l, v)),
        (name, labels(), prop::collection::vec(any::<f64>(), 0..20))
            .prop_map(|(n, l, v)| Op::Histogram(n, l, v)),
    ]
}

fn pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_body_holds_exactly_the_documented_series(
        ops in prop::collection::vec(op(), 0..30),
        external in prop::collection::vec(("[a-z][a-z0-9_]{0,5}", ".{0,20}"), 0..3),
    ) {
        let metrics = MetricsCollector::new();
        for op in &ops {
            // Refused registrations (bad names, kind clashes) are the
            // registry's business; whatever it keeps must be encoded.
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
                        for v in values {
                            h.record(*v);
                        }
                    }
                }
            }
        }
        let mut external: Vec<(String, String)> = external;
        external.sort();
        external.dedup_by(|a, b| a.0 == b.0);
        let snap = metrics.snapshot();
        let body = encode_write_request(&snap, &pairs(&external)).unwrap();
        let compressed = snap::raw::Encoder::new().compress_vec(&body).unwrap();
        let decoded = decode_write_request(&compressed);

        let ts = snap.timestamp_unix_ms as i64;
        prop_assert!(decoded.iter().all(|s| s.2 == ts));
        let mut got: Vec<(Labels, f64)> = decoded
            .into_iter()
            .map(|(labels, value, _)| (labels.into_iter().collect(), value))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let want = expected_series(&snap, &pairs(&external));
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!(&g.0, &w.0);
            prop_assert!(
                g.1.to_bits() == w.1.to_bits() || (g.1.is_nan() && w.1.is_nan()),
                "{:?}: {} != {}", g.0, g.1, w.1
            );
        }
    }
}
