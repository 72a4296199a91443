//! The `metrics` facade bridge, through the public API only: code that
//! knows nothing of vitals, instrumented with `metrics::` macros, shows up
//! in a vitals snapshot.
//!
//! One test installs the global `metrics` recorder; every other test uses a
//! local recorder (which takes precedence on its thread), so the tests do
//! not depend on each other's order.
#![cfg(feature = "metrics-bridge")]

use std::sync::Arc;
use std::thread;

use vitals::bridge::{self, VitalsRecorder};
use vitals::{Error, MetricKind, MetricsCollector, Snapshot, Window};

/// Stands for a third-party library: it only knows the `metrics` crate.
mod instrumented {
    use std::time::Duration;

    pub fn describe() {
        metrics::describe_counter!("http.requests", "Requests handled");
        metrics::describe_gauge!(
            "http_in_flight",
            metrics::Unit::Count,
            "Requests being handled"
        );
        metrics::describe_histogram!(
            "http.request.duration",
            metrics::Unit::Seconds,
            "Time to handle a request"
        );
        metrics::describe_counter!("http_response_bytes", metrics::Unit::Bytes, "Bytes sent");
        metrics::describe_histogram!("db_query_ms", metrics::Unit::Milliseconds, "Query time");
    }

    pub fn handle_request(route: &str, status: u16, elapsed: Duration, bytes: u64) {
        metrics::gauge!("http_in_flight").increment(1.0);
        // Static label and dynamic labels.
        metrics::counter!(
            "http.requests",
            "service" => "api",
            "route" => route.to_owned(),
            "status" => status.to_string()
        )
        .increment(1);
        metrics::counter!("http_response_bytes").increment(bytes);
        metrics::histogram!("http.request.duration", "route" => route.to_owned())
            .record(elapsed.as_secs_f64());
        metrics::histogram!("db_query_ms").record(2.5);
        metrics::gauge!("http_in_flight").decrement(1.0);
        metrics::gauge!("last_status", "route" => route.to_owned()).set(f64::from(status));
    }
}

fn info<'a>(snap: &'a Snapshot, name: &str) -> &'a vitals::snapshot::MetricInfo {
    snap.metadata
        .iter()
        .find(|m| &*m.name == name)
        .unwrap_or_else(|| panic!("no metadata for {name}"))
}

#[test]
fn a_metrics_instrumented_function_shows_up_with_exact_values_help_and_units() {
    let metrics = MetricsCollector::new();
    let recorder = VitalsRecorder::new(metrics.clone());
    metrics::with_local_recorder(&recorder, || {
        instrumented::describe();
        for i in 0..10u64 {
            let route = if i % 2 == 0 { "/users" } else { "/orders" };
            instrumented::handle_request(route, 200, std::time::Duration::from_millis(i + 1), 100);
        }
        instrumented::handle_request("/users", 500, std::time::Duration::from_millis(50), 7);
    });

    let snap = metrics.snapshot();
    let ok_users = [("service", "api"), ("route", "/users"), ("status", "200")];
    assert_eq!(snap.counter("http_requests", &ok_users), Some(5.0));
    let ok_orders = [("service", "api"), ("route", "/orders"), ("status", "200")];
    assert_eq!(snap.counter("http_requests", &ok_orders), Some(5.0));
    let failed = [("status", "500"), ("route", "/users"), ("service", "api")];
    assert_eq!(snap.counter("http_requests", &failed), Some(1.0));
    assert_eq!(snap.counter("http_response_bytes", &[]), Some(1007.0));
    assert_eq!(snap.gauge("http_in_flight", &[]), Some(0.0));
    assert_eq!(
        snap.gauge("last_status", &[("route", "/users")]),
        Some(500.0)
    );
    assert_eq!(
        snap.gauge("last_status", &[("route", "/orders")]),
        Some(200.0)
    );

    let users = snap
        .histogram("http_request_duration", &[("route", "/users")])
        .unwrap();
    assert_eq!(users.window.count, 6);
    assert_eq!(users.lifetime.count, 6);
    assert_eq!(users.window.min, Some(0.001));
    assert_eq!(users.window.max, Some(0.05));
    // 1 + 3 + 5 + 7 + 9 + 50 ms, summed exactly.
    assert!((users.window.sum - 0.075).abs() < 1e-12);
    let orders = snap
        .histogram("http_request_duration", &[("route", "/orders")])
        .unwrap();
    assert_eq!(orders.window.count, 5);
    assert!(
        orders.window.quantiles.is_some(),
        "bridged histograms get rolling-window quantiles"
    );

    let requests = info(&snap, "http_requests");
    assert_eq!(requests.kind, MetricKind::Counter);
    assert_eq!(requests.help.as_deref(), Some("Requests handled"));
    assert_eq!(requests.unit, None);
    let in_flight = info(&snap, "http_in_flight");
    assert_eq!(in_flight.kind, MetricKind::Gauge);
    assert_eq!(in_flight.unit, None, "Unit::Count is no unit");
    let duration = info(&snap, "http_request_duration");
    assert_eq!(duration.help.as_deref(), Some("Time to handle a request"));
    assert_eq!(duration.unit.as_deref(), Some("seconds"));
    assert_eq!(
        info(&snap, "http_response_bytes").unit.as_deref(),
        Some("bytes")
    );
    // Not a Prometheus base unit: kept as said, values not rescaled.
    assert_eq!(
        info(&snap, "db_query_ms").unit.as_deref(),
        Some("milliseconds")
    );
    assert_eq!(
        snap.histogram("db_query_ms", &[]).unwrap().window.max,
        Some(2.5)
    );
    assert_eq!(snap.first_error, None);
}

#[test]
fn bridged_histograms_use_the_window_configured_for_their_translated_name() {
    let metrics = MetricsCollector::new();
    metrics
        .configure_histogram("batch_seconds", Window::Count { values: 3 })
        .unwrap();
    let recorder = VitalsRecorder::new(metrics.clone());
    metrics::with_local_recorder(&recorder, || {
        for v in [1.0, 2.0, 3.0, 4.0, 5.0] {
            metrics::histogram!("batch.seconds").record(v);
        }
    });
    let snap = metrics.snapshot();
    let batch = snap.histogram("batch_seconds", &[]).unwrap();
    assert_eq!(batch.window.count, 3, "the last three values");
    assert_eq!(batch.window.min, Some(3.0));
    assert_eq!(batch.lifetime.count, 5);
}

#[test]
fn absolute_raises_a_counter_and_never_lowers_it() {
    let metrics = MetricsCollector::new();
    let recorder = VitalsRecorder::new(metrics.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("mirrored_total").absolute(40);
        metrics::counter!("mirrored_total").absolute(10);
        metrics::counter!("mirrored_total").increment(2);
    });
    assert_eq!(
        metrics.snapshot().counter("mirrored_total", &[]),
        Some(42.0)
    );
}

#[test]
fn threads_through_the_bridge_give_exact_totals() {
    let metrics = MetricsCollector::new();
    let recorder = Arc::new(VitalsRecorder::new(metrics.clone()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let recorder = Arc::clone(&recorder);
            thread::spawn(move || {
                // A local recorder belongs to one thread: each sets it.
                metrics::with_local_recorder(&*recorder, || {
                    let parity = if t % 2 == 0 { "even" } else { "odd" };
                    let held = metrics::counter!("held_total");
                    for i in 0..20_000u32 {
                        metrics::counter!("jobs.done", "thread" => parity).increment(1);
                        metrics::gauge!("balance").increment(1.0);
                        metrics::gauge!("balance").decrement(0.5);
                        metrics::histogram!("work_seconds").record(f64::from(i % 100) / 1000.0);
                        held.increment(2);
                    }
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let snap = metrics.snapshot();
    assert_eq!(
        snap.counter("jobs_done", &[("thread", "even")]),
        Some(40_000.0)
    );
    assert_eq!(
        snap.counter("jobs_done", &[("thread", "odd")]),
        Some(40_000.0)
    );
    assert_eq!(snap.counter("held_total", &[]), Some(160_000.0));
    assert_eq!(snap.gauge("balance", &[]), Some(40_000.0));
    let work = snap.histogram("work_seconds", &[]).unwrap();
    assert_eq!(work.lifetime.count, 80_000);
    assert_eq!(work.window.count, 80_000);
}

#[test]
fn odd_names_follow_the_documented_translation_and_never_panic() {
    let metrics = MetricsCollector::new();
    let recorder = VitalsRecorder::new(metrics.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("http.server-requests total", "http.method" => "GET", "ns:key" => "v")
            .increment(1);
        // Translates to the same name as above: one series.
        metrics::counter!("http_server_requests_total", "http_method" => "GET", "ns_key" => "v")
            .increment(1);
        metrics::gauge!("9lives").set(9.0);
        metrics::gauge!("température").set(21.0);
        // The empty name translates to `_`.
        metrics::counter!("").increment(1);
        // Names still invalid after translation: detached, counted, no panic.
        metrics::counter!("x_total", "__reserved" => "1").increment(1);
        metrics::histogram!("lat_seconds", "le" => "1").record(1.0);
        metrics::counter!("dup_total", "a.b" => "1", "a_b" => "2").increment(1);
        // Kind clash with the counter above.
        metrics::gauge!("http.server.requests.total").set(1.0);
        // Label values are any UTF-8, kept as they are.
        metrics::counter!("values_total", "path" => "/ä b\"\n").increment(3);
        // Describing an odd name lands on the translated one.
        metrics::describe_gauge!("9lives", "Lives left");
    });

    let snap = metrics.snapshot();
    let labels = [("http_method", "GET"), ("ns_key", "v")];
    assert_eq!(
        snap.counter("http_server_requests_total", &labels),
        Some(2.0)
    );
    assert_eq!(snap.gauge("_9lives", &[]), Some(9.0));
    assert_eq!(info(&snap, "_9lives").help.as_deref(), Some("Lives left"));
    assert_eq!(snap.gauge("temp_rature", &[]), Some(21.0));
    assert_eq!(
        snap.counter("values_total", &[("path", "/ä b\"\n")]),
        Some(3.0)
    );
    assert_eq!(snap.counter("x_total", &[("__reserved", "1")]), None);
    assert_eq!(snap.counter("dup_total", &[("a_b", "1")]), None);

    assert_eq!(snap.counter("_", &[]), Some(1.0));
    let errors = |kind| snap.counter("vitals_errors_total", &[("kind", kind)]);
    // Every metric name translates to a valid one.
    assert_eq!(errors("invalid_name"), None);
    assert_eq!(errors("invalid_label"), Some(3.0));
    assert_eq!(errors("kind_mismatch"), Some(1.0));
    assert!(snap.first_error.is_some());
}

#[test]
fn rejected_keys_are_counted_on_every_call_like_vitals_macros() {
    let metrics = MetricsCollector::builder().cardinality_limit(2).build();
    let recorder = VitalsRecorder::new(metrics.clone());
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..3 {
            metrics::counter!("bad name!").increment(1);
            metrics::counter!("x_total", "__r" => "1").increment(1);
            for user in ["a", "b", "c", "d"] {
                metrics::counter!("per_user_total", "user" => user).increment(1);
            }
        }
    });
    let snap = metrics.snapshot();
    assert_eq!(
        snap.counter("vitals_errors_total", &[("kind", "invalid_name")]),
        None,
        "`bad name!` is translated to a valid name"
    );
    assert_eq!(snap.counter("bad_name_", &[]), Some(3.0));
    assert_eq!(
        snap.counter("vitals_errors_total", &[("kind", "invalid_label")]),
        Some(3.0),
        "a rejected key is not cached: counted on each call"
    );
    assert_eq!(snap.counter("per_user_total", &[("user", "a")]), Some(3.0));
    assert_eq!(snap.counter("per_user_total", &[("user", "b")]), Some(3.0));
    assert_eq!(
        snap.counter("per_user_total", &[("vitals_overflow", "true")]),
        Some(6.0)
    );
    assert_eq!(
        snap.counter(
            "vitals_cardinality_overflow_total",
            &[("metric", "per_user_total")]
        ),
        Some(6.0)
    );
}

#[test]
fn global_install_once_then_a_typed_error_and_local_recorders_stay_separate() {
    let global = MetricsCollector::new();
    bridge::install(global.clone()).expect("first install");
    let again = bridge::install(MetricsCollector::new());
    assert_eq!(again, Err(Error::RecorderAlreadyInstalled));
    assert_eq!(again.unwrap_err().kind(), "recorder_already_installed");

    // Other threads use the global recorder.
    let threads: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(|| {
                for _ in 0..1000 {
                    metrics::counter!("global_only_total").increment(1);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    let local = MetricsCollector::new();
    let recorder = VitalsRecorder::new(local.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("scoped_total").increment(5);
    });
    metrics::counter!("scoped_total").increment(1);

    let (g, l) = (global.snapshot(), local.snapshot());
    assert_eq!(g.counter("global_only_total", &[]), Some(2000.0));
    assert_eq!(l.counter("global_only_total", &[]), None);
    assert_eq!(l.counter("scoped_total", &[]), Some(5.0));
    assert_eq!(g.counter("scoped_total", &[]), Some(1.0));
}
