//! OTLP delivery against a scripted fake receiver on loopback: an outage
//! and recovery (cumulative totals and delta sums arrive whole), 500, 429
//! with Retry-After, 400, a peer that never answers. Bodies are sent as
//! OTLP/JSON here so the test reads them with serde_json.
#![cfg(all(feature = "otlp", feature = "remote-write"))]

mod push_support;

use std::time::Duration;

use push_support::{free_port, Behaviour, FakeReceiver, Seen};
use serde_json::Value;
use vitals::export::push::{DeliveryConfig, OtlpExporter, OtlpFormat, Temporality};
use vitals::export::Exporter;
use vitals::MetricsCollector;

/// Quick retries, so the tests do not wait on the default backoff.
fn quick() -> DeliveryConfig {
    DeliveryConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        shutdown_deadline: Duration::from_secs(30),
        ..DeliveryConfig::default()
    }
}

fn otlp(
    addr: &str,
    metrics: &MetricsCollector,
    temporality: Temporality,
    config: DeliveryConfig,
) -> OtlpExporter {
    OtlpExporter::builder(format!("http://{addr}"))
        .format(OtlpFormat::Json)
        .temporality(temporality)
        .name("otlp")
        .record_into(metrics)
        .delivery(config)
        .build()
        .unwrap()
}

/// A `vitals_push_*` counter of the exporter, 0 when absent.
fn push_counter(metrics: &MetricsCollector, name: &str, label: Option<(&str, &str)>) -> u64 {
    let mut labels = vec![("exporter", "otlp")];
    labels.extend(label);
    metrics
        .snapshot()
        .counter(name, &labels)
        .map_or(0, |v| v as u64)
}

/// One data point received: metric name, start, time, and the value (a
/// sum's value, a histogram's count).
#[derive(Debug, Clone)]
struct Got {
    name: String,
    start: u64,
    time: u64,
    value: f64,
}

fn int(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

fn points(seen: &[Seen]) -> Vec<Got> {
    let mut out = Vec::new();
    for request in seen {
        assert_eq!(request.path, "/v1/metrics");
        assert_eq!(request.headers["content-type"], "application/json");
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        for m in body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
        {
            let name = m["name"].as_str().unwrap().to_owned();
            let data = ["sum", "gauge", "exponentialHistogram", "histogram"]
                .iter()
                .find_map(|k| m.get(*k))
                .unwrap();
            for p in data["dataPoints"].as_array().unwrap() {
                let value = match (p.get("asInt"), p.get("asDouble"), p.get("count")) {
                    (Some(v), _, _) => int(v) as f64,
                    (_, Some(v), _) => v.as_f64().unwrap(),
                    (_, _, Some(c)) => int(c) as f64,
                    _ => panic!("{p}"),
                };
                out.push(Got {
                    name: name.clone(),
                    start: int(&p["startTimeUnixNano"]),
                    time: int(&p["timeUnixNano"]),
                    value,
                });
            }
        }
    }
    out
}

#[test]
fn an_outage_loses_no_count_cumulative_or_delta() {
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    let ports = [free_port(), free_port()];
    let addrs = ports.map(|p| format!("127.0.0.1:{p}"));
    let mut cumulative = otlp(&addrs[0], &metrics, Temporality::Cumulative, quick());
    let mut delta = otlp(
        &addrs[1],
        &MetricsCollector::new(),
        Temporality::Delta,
        quick(),
    );
    let requests = metrics.counter("requests_total", &[("route", "/a")]);
    let latency = metrics.histogram("latency_seconds", &[]);
    let depth = metrics.gauge("queue_depth", &[]);
    // Nothing listens: every snapshot waits.
    for i in 0..100u64 {
        requests.increment(i);
        latency.record(i as f64 / 100.0);
        depth.set(i as f64);
        let snap = metrics.snapshot();
        let _ = cumulative.export(&snap);
        let _ = delta.export(&snap);
        // At most one point per series waiting, and one in the request
        // that failed, however long the outage.
        let series = snap.counters.len() + snap.gauges.len() + snap.histograms.len();
        for stats in [cumulative.stats(), delta.stats()] {
            assert!(stats.queue_points <= 2 * series as u64, "{stats:?}");
        }
    }
    let total: u64 = (0..100).sum();
    while cumulative.stats().failed_requests == 0 || delta.stats().failed_requests == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        push_counter(
            &metrics,
            "vitals_push_failed_requests_total",
            Some(("cause", "connect"))
        ) >= 1
    );
    // Superseded cumulative points are counted, and only those.
    let stats = cumulative.stats();
    assert!(stats.dropped_points > 0);
    assert_eq!(
        stats.dropped_points,
        push_counter(
            &metrics,
            "vitals_push_dropped_points_total",
            Some(("reason", "superseded"))
        )
    );

    // The receivers come back on the same ports.
    let back = addrs.clone().map(|a| FakeReceiver::start_on(&a, vec![]));
    cumulative.flush().unwrap();
    delta.flush().unwrap();
    for e in [&cumulative, &delta] {
        let s = e.stats();
        assert_eq!((s.queue_points, s.queue_bytes), (0, 0), "{s:?}");
    }

    let got = points(&back[0].seen());
    let last = got.iter().rfind(|g| g.name == "requests_total").unwrap();
    assert_eq!(last.value, total as f64, "the cumulative total arrived");
    let hist = got.iter().rfind(|g| g.name == "latency_seconds").unwrap();
    assert_eq!(hist.value, 100.0);
    assert_eq!(
        got.iter().rfind(|g| g.name == "queue_depth").unwrap().value,
        99.0
    );

    let got = points(&back[1].seen());
    let deltas: Vec<&Got> = got.iter().filter(|g| g.name == "requests_total").collect();
    let sum: f64 = deltas.iter().map(|g| g.value).sum();
    assert_eq!(sum, total as f64, "the delta sums arrived");
    let counts: f64 = got
        .iter()
        .filter(|g| g.name == "latency_seconds")
        .map(|g| g.value)
        .sum();
    assert_eq!(counts, 100.0);
    // The merged windows still touch and never overlap.
    for w in deltas.windows(2) {
        assert_eq!(w[1].start, w[0].time, "{w:?}");
    }
    assert!(deltas.iter().all(|g| g.start < g.time));
}

#[test]
fn a_500_is_retried_and_a_429_waits_for_retry_after_both_counted() {
    let receiver = FakeReceiver::start(vec![
        Behaviour::Reply(500, "", "boom"),
        Behaviour::Reply(429, "Retry-After: 1\r\n", ""),
    ]);
    let metrics = MetricsCollector::new();
    let mut exporter = otlp(
        &receiver.addr.to_string(),
        &metrics,
        Temporality::Delta,
        quick(),
    );
    let jobs = metrics.counter("jobs_total", &[]);
    jobs.increment(3);
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (
            stats.failed_requests,
            stats.retried_requests,
            stats.sent_requests
        ),
        (2, 2, 1)
    );
    for cause in ["status_5xx", "status_429"] {
        assert_eq!(
            push_counter(
                &metrics,
                "vitals_push_failed_requests_total",
                Some(("cause", cause))
            ),
            1,
            "{cause}"
        );
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    // The backoff alone would retry after a few ms; the server asked for 1 s.
    let gap = seen[2].at - seen[1].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    // Each attempt carried the same delta, delivered once in the end.
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body));
    assert_eq!(points(&seen[2..])[0].value, 3.0);
    // The failures are reported by the next export, once.
    jobs.inc();
    let err = exporter.export(&metrics.snapshot()).unwrap_err();
    assert!(err.to_string().contains("HTTP 500: boom"), "{err}");
    exporter.flush().unwrap();
    assert!(exporter.export(&metrics.snapshot()).is_ok());
}

#[test]
fn a_400_is_not_retried_and_its_points_are_counted() {
    let receiver = FakeReceiver::start(
        (0..10)
            .map(|_| Behaviour::Reply(400, "", "bad data"))
            .collect(),
    );
    let metrics = MetricsCollector::new();
    let mut exporter = otlp(
        &receiver.addr.to_string(),
        &metrics,
        Temporality::Cumulative,
        quick(),
    );
    metrics.counter("jobs_total", &[]).inc();
    let mut errors = Vec::new();
    for _ in 0..3 {
        if let Err(e) = exporter.export(&metrics.snapshot()) {
            errors.push(e.to_string());
        }
        exporter.flush().unwrap();
    }
    let stats = exporter.stats();
    assert_eq!(receiver.seen().len(), 3, "one attempt per snapshot");
    assert_eq!((stats.failed_requests, stats.retried_requests), (3, 0));
    assert_eq!(stats.sent_points, 0);
    assert!(stats.dropped_points > 0);
    assert_eq!(
        stats.dropped_points,
        push_counter(
            &metrics,
            "vitals_push_dropped_points_total",
            Some(("reason", "rejected"))
        )
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("bad data"), "{errors:?}");
}

#[test]
fn a_silent_peer_times_out_is_counted_and_blocks_neither_export_nor_the_hot_path() {
    let receiver = FakeReceiver::start(vec![Behaviour::Hold]);
    let metrics = MetricsCollector::new();
    let mut exporter = otlp(
        &receiver.addr.to_string(),
        &metrics,
        Temporality::Delta,
        DeliveryConfig {
            request_timeout: Duration::from_millis(300),
            ..quick()
        },
    );
    let c = metrics.counter("work_total", &[]);
    c.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    while receiver.seen().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // While the request hangs: updates and exports go on.
    for _ in 0..5 {
        c.inc();
        let _ = exporter.export(&metrics.snapshot());
    }
    while exporter.stats().failed_requests == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    receiver.release();
    exporter.flush().unwrap();
    assert!(
        push_counter(
            &metrics,
            "vitals_push_failed_requests_total",
            Some(("cause", "timeout"))
        ) >= 1
    );
    // The timed-out delta and the later ones arrive merged, in the one
    // request delivered (the last): 6 in all.
    assert_eq!(exporter.stats().sent_requests, 1);
    let seen = receiver.seen();
    let got = points(&seen[seen.len() - 1..]);
    let sum: f64 = got
        .iter()
        .filter(|g| g.name == "work_total")
        .map(|g| g.value)
        .sum();
    assert_eq!(sum, 6.0);
}
