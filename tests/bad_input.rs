//! Every bad-input rule, through the `try_*` methods (typed errors) and
//! through the macros and plain methods (detached handles, counted errors).

use std::time::Duration;

use vitals::{counter, gauge, histogram, Error, MetricKind, MetricsCollector, Window};

fn errors(metrics: &MetricsCollector, kind: &str) -> u64 {
    metrics
        .snapshot()
        .counter_sample("vitals_errors_total", &[("kind", kind)])
        .and_then(|c| c.value.as_u64())
        .unwrap_or(0)
}

#[test]
fn invalid_metric_names_are_typed_errors() {
    let m = MetricsCollector::new();
    for bad in [
        "",
        "1abc",
        "has space",
        "dash-ed",
        "dot.ted",
        "ünïcode",
        "a{b}",
    ] {
        assert!(
            matches!(
                m.try_counter(bad, &[]),
                Err(Error::InvalidMetricName { .. })
            ),
            "{bad:?}"
        );
        assert!(
            matches!(m.try_gauge(bad, &[]), Err(Error::InvalidMetricName { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(
                m.try_histogram(bad, &[]),
                Err(Error::InvalidMetricName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(m.try_counter("ok:name_1", &[]).is_ok());
    assert!(
        m.snapshot().first_error.is_none(),
        "try_* does not record errors"
    );
}

#[test]
fn invalid_label_names_are_typed_errors() {
    let m = MetricsCollector::new();
    let cases: &[&[(&str, &str)]] = &[
        &[("", "v")],
        &[("1a", "v")],
        &[("a-b", "v")],
        &[("a:b", "v")],
        &[("__reserved", "v")],
        &[("dup", "1"), ("dup", "2")],
        &[("vitals_overflow", "true")],
    ];
    for labels in cases {
        let err = m.try_counter("c_total", labels).unwrap_err();
        assert!(
            matches!(err, Error::InvalidLabelName { .. }),
            "{labels:?}: {err}"
        );
    }
    for reserved in ["quantile", "le"] {
        let err = m
            .try_histogram("h_seconds", &[(reserved, "0.5")])
            .unwrap_err();
        assert!(matches!(err, Error::InvalidLabelName { .. }), "{reserved}");
        assert!(
            m.try_counter("c_total", &[(reserved, "x")]).is_ok(),
            "only histograms reserve {reserved}"
        );
    }
    // Label values are any UTF-8.
    let odd = [("path", "/ä\"\\\n{}=,")];
    m.try_counter("c_total", &odd).unwrap().inc();
    assert_eq!(m.snapshot().counter("c_total", &odd), Some(1.0));
}

#[test]
fn a_name_reused_as_another_kind_is_a_typed_error() {
    let m = MetricsCollector::new();
    let _ = m.try_counter("thing", &[]).unwrap();
    let err = m.try_gauge("thing", &[("other", "labels")]).unwrap_err();
    assert_eq!(
        err,
        Error::KindMismatch {
            name: "thing".into(),
            existing: "counter",
            requested: "gauge"
        }
    );
    assert!(matches!(
        m.try_histogram("thing", &[]),
        Err(Error::KindMismatch { .. })
    ));
    assert!(matches!(
        m.try_describe(MetricKind::Histogram, "thing", None, "help"),
        Err(Error::KindMismatch { .. })
    ));
}

#[test]
fn the_cardinality_limit_is_a_typed_error_then_an_overflow_series() {
    let m = MetricsCollector::builder().cardinality_limit(3).build();
    for i in 0..3 {
        m.try_counter("req_total", &[("user", &i.to_string())])
            .unwrap()
            .inc();
    }
    let err = m.try_counter("req_total", &[("user", "3")]).unwrap_err();
    assert_eq!(
        err,
        Error::CardinalityLimit {
            name: "req_total".into(),
            limit: 3
        }
    );
    // Existing label sets still work past the limit.
    m.try_counter("req_total", &[("user", "0")]).unwrap().inc();
    // The plain method (and the macros) send new label sets to one overflow series.
    for i in 3..10 {
        m.counter("req_total", &[("user", &i.to_string())])
            .increment(10);
    }
    let snap = m.snapshot();
    assert_eq!(
        snap.counter("req_total", &[("vitals_overflow", "true")]),
        Some(70.0)
    );
    assert_eq!(snap.counter("req_total", &[("user", "0")]), Some(2.0));
    assert_eq!(
        snap.counter(
            "vitals_cardinality_overflow_total",
            &[("metric", "req_total")]
        ),
        Some(7.0)
    );
    assert_eq!(m.cardinality("req_total"), Some(3));
    assert_eq!(
        snap.counters
            .iter()
            .filter(|c| &*c.name == "req_total")
            .count(),
        4
    );
}

#[test]
fn the_number_of_metric_names_is_capped() {
    let m = MetricsCollector::builder().max_metrics(5).build();
    for i in 0..5 {
        let _ = m.try_gauge(&format!("g{i}"), &[]).unwrap();
    }
    assert!(matches!(
        m.try_gauge("g5", &[]),
        Err(Error::CardinalityLimit { .. })
    ));
    m.gauge("g6", &[]).set(1.0); // detached, counted
    assert_eq!(errors(&m, "cardinality_limit"), 1);
    assert!(m.snapshot().gauge("g6", &[]).is_none());
}

#[test]
fn plain_methods_hand_back_detached_handles_and_count_errors() {
    let m = MetricsCollector::new();
    m.counter("bad name", &[]).inc();
    m.counter("ok_total", &[("bad-label", "v")]).inc();
    m.counter("ok_total", &[]).inc();
    m.gauge("ok_total", &[]).set(1.0); // kind clash with the counter family
    m.histogram("h", &[("le", "1")]).record(1.0);
    let snap = m.snapshot();
    assert_eq!(
        snap.counter("vitals_errors_total", &[("kind", "invalid_name")]),
        Some(1.0)
    );
    assert_eq!(
        snap.counter("vitals_errors_total", &[("kind", "invalid_label")]),
        Some(2.0)
    );
    assert_eq!(
        snap.counter("vitals_errors_total", &[("kind", "kind_mismatch")]),
        Some(1.0)
    );
    assert!(
        snap.first_error.as_deref().unwrap().contains("bad name"),
        "the first message is kept"
    );
    assert!(snap.gauges.is_empty() && snap.histograms.is_empty());
    // A detached handle still works, it just reports nowhere.
    let detached = m.counter("another bad", &[]);
    detached.increment(5);
    assert_eq!(detached.value(), 5);
}

#[test]
fn macros_never_panic_on_bad_input() {
    let runtime_bad = String::from("bad name");
    counter!(runtime_bad).inc();
    counter!("bad name literal").inc();
    counter!("macro_ok_total", "bad-key" => "v").inc();
    let v = String::from("x");
    counter!("macro_ok_total", "bad-key" => v).inc();
    gauge!("macro_kind_clash_total").set(1.0);
    counter!("macro_kind_clash_total").inc();
    histogram!("macro_h", "quantile" => "0.5").record(1.0);
    let snap = vitals::global().snapshot();
    let errors = |kind: &str| {
        snap.counter("vitals_errors_total", &[("kind", kind)])
            .unwrap_or(0.0)
    };
    assert!(errors("invalid_name") >= 2.0);
    assert!(errors("invalid_label") >= 3.0);
    assert!(errors("kind_mismatch") >= 1.0);
    assert!(snap.first_error.is_some());
}

#[test]
fn explicit_collector_macros_count_errors_on_that_collector() {
    let m = MetricsCollector::new();
    counter!(collector: m, "bad name").inc();
    vitals::describe_gauge!(collector: m, "g", vitals::Unit::other("bad unit!"), "help");
    assert_eq!(errors(&m, "invalid_name"), 1);
    assert_eq!(errors(&m, "invalid_config"), 1);
}

#[test]
fn nan_and_infinite_gauges_are_kept_and_spelled_in_json() {
    let m = MetricsCollector::new();
    m.gauge("g", &[("v", "nan")]).set(f64::NAN);
    m.gauge("g", &[("v", "inf")]).set(f64::INFINITY);
    m.gauge("g", &[("v", "-inf")]).set(f64::NEG_INFINITY);
    let snap = m.snapshot();
    assert!(snap.gauge("g", &[("v", "nan")]).unwrap().is_nan());
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.contains(r#""value":"NaN""#));
    assert!(json.contains(r#""value":"+Inf""#));
    assert!(json.contains(r#""value":"-Inf""#));
    let back: vitals::Snapshot = serde_json::from_str(&json).unwrap();
    assert!(back.gauge("g", &[("v", "nan")]).unwrap().is_nan());
    assert_eq!(back.gauge("g", &[("v", "inf")]), Some(f64::INFINITY));
    assert_eq!(back.gauge("g", &[("v", "-inf")]), Some(f64::NEG_INFINITY));
    // `set_max` and `set_min` ignore a NaN argument.
    let g = m.gauge("peak", &[]);
    g.set(3.0);
    g.set_max(f64::NAN);
    g.set_min(f64::NAN);
    assert_eq!(g.value(), 3.0);
}

#[test]
fn bad_histogram_values_are_dropped_or_clamped_and_counted() {
    let m = MetricsCollector::new();
    let h = m.histogram("h", &[]);
    for v in [f64::NAN, -1.0, -1e-300, f64::NEG_INFINITY] {
        h.record(v);
    }
    for v in [1e300, f64::INFINITY, 1e-20] {
        h.record(v);
    }
    h.record(0.0);
    h.record(2.0);
    let s = m.snapshot().histogram("h", &[]).unwrap().clone();
    assert_eq!(s.dropped, 4);
    assert_eq!(s.saturated, 3);
    assert_eq!(s.window.count, 5);
    assert_eq!(s.lifetime.count, 5);
    assert_eq!(s.window.max, Some(vitals::histogram::MAX_TRACKABLE));
    assert_eq!(s.window.min, Some(0.0));
    assert!(s.window.sum.is_finite());
    // Count windows clamp to the same range, so their sums stay finite.
    m.configure_histogram("exact", Window::Count { values: 10 })
        .unwrap();
    let e = m.histogram("exact", &[]);
    for v in [1e-20, 1e300, f64::INFINITY, f64::NAN, -3.0, 0.5] {
        e.record(v);
    }
    let s = m.snapshot().histogram("exact", &[]).unwrap().clone();
    assert_eq!((s.window.count, s.saturated, s.dropped), (4, 3, 2));
    assert_eq!(s.window.min, Some(vitals::histogram::MIN_TRACKABLE));
    assert_eq!(s.window.max, Some(vitals::histogram::MAX_TRACKABLE));
    assert_eq!(s.window.quantiles.unwrap().p50, 0.5);
}

#[test]
fn bad_configuration_is_a_typed_error_or_a_documented_fallback() {
    let bad_windows = [
        Window::Time {
            length: Duration::from_secs(60),
            slots: 0,
        },
        Window::Time {
            length: Duration::from_secs(60),
            slots: 65,
        },
        Window::Time {
            length: Duration::from_micros(1),
            slots: 6,
        },
        Window::Time {
            length: Duration::from_secs(400 * 86_400),
            slots: 6,
        },
        Window::Count { values: 0 },
        Window::Count { values: 2_000_000 },
    ];
    let m = MetricsCollector::new();
    for w in bad_windows {
        assert!(
            matches!(m.configure_histogram("h", w), Err(Error::InvalidConfig(_))),
            "{w:?}"
        );
        assert!(MetricsCollector::builder()
            .histogram_window(w)
            .try_build()
            .is_err());
        // build() falls back to the default window and records the error.
        let fallback = MetricsCollector::builder().histogram_window(w).build();
        fallback.histogram("h", &[]).record(1.0);
        let snap = fallback.snapshot();
        assert_eq!(snap.histograms[0].summary.window.window, Window::default());
        assert!(snap.first_error.is_some());
    }
    assert!(MetricsCollector::builder()
        .rate_window(Duration::from_millis(10))
        .try_build()
        .is_err());
    assert!(MetricsCollector::builder()
        .max_metrics(0)
        .try_build()
        .is_err());
    assert!(matches!(
        m.try_describe(
            MetricKind::Counter,
            "c_total",
            Some(vitals::Unit::other("not a unit")),
            "help"
        ),
        Err(Error::InvalidConfig(_))
    ));
    // Configuring a histogram after its first series is refused.
    m.histogram("late", &[]).record(1.0);
    assert!(m
        .configure_histogram("late", Window::Count { values: 5 })
        .is_err());
    assert!(m
        .configure_histogram("late counter", Window::default())
        .is_err());
}
