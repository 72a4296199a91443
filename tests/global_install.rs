//! The global collector installed with settings (its own test binary, so
//! that no other test creates the global collector first), and the
//! runtime-label call-site cache against those settings.

use vitals::{counter, MetricsCollector};

#[test]
fn installed_global_settings_apply_to_macro_call_sites() {
    let global = vitals::install_global(MetricsCollector::builder().cardinality_limit(5))
        .expect("first install");
    assert!(
        vitals::install_global(MetricsCollector::builder()).is_err(),
        "installed once"
    );
    assert!(std::ptr::eq(global, vitals::global()));

    // 40 label values through one call site: more than its cache holds and
    // more than the limit allows. Each call counts exactly once.
    let values: Vec<String> = (0..40).map(|i| format!("user{i}")).collect();
    for round in 0..3 {
        for v in &values {
            counter!("site_cache_total", "user" => v).inc();
        }
        let snap = vitals::global().snapshot();
        for v in &values[..5] {
            assert_eq!(
                snap.counter("site_cache_total", &[("user", v)]),
                Some(f64::from(round + 1))
            );
        }
        // The other 35 label sets overflow, on every call (overflow handles
        // are never cached at the call site).
        assert_eq!(
            snap.counter("site_cache_total", &[("vitals_overflow", "true")]),
            Some(35.0 * f64::from(round + 1))
        );
        assert_eq!(
            snap.counter(
                "vitals_cardinality_overflow_total",
                &[("metric", "site_cache_total")]
            ),
            Some(35.0 * f64::from(round + 1))
        );
    }
    assert_eq!(vitals::global().cardinality("site_cache_total"), Some(5));

    // A call site with literal labels past the limit: the overflow series
    // too, counted on every call, and no error.
    let errors = |snap: &vitals::Snapshot| {
        snap.counter("vitals_errors_total", &[("kind", "cardinality_limit")])
            .unwrap_or(0.0)
    };
    let before = vitals::global().snapshot();
    for _ in 0..2 {
        counter!("site_cache_total", "user" => "literal").inc();
    }
    let after = vitals::global().snapshot();
    let overflow = |snap: &vitals::Snapshot| {
        snap.counter("site_cache_total", &[("vitals_overflow", "true")])
            .unwrap()
    };
    assert_eq!(overflow(&after), overflow(&before) + 2.0);
    assert_eq!(
        after.counter(
            "vitals_cardinality_overflow_total",
            &[("metric", "site_cache_total")]
        ),
        Some(35.0 * 3.0 + 2.0)
    );
    assert_eq!(errors(&after), errors(&before));
    assert_eq!(
        after.counter("site_cache_total", &[("user", "literal")]),
        None
    );
}
