//! Push delivery against a scripted fake receiver on loopback: outage and
//! recovery, 500, 429 with Retry-After, 400, garbage, early close, a peer
//! that never answers; the headers and paths each protocol requires.
#![cfg(feature = "remote-write")]

mod push_support;

use std::time::Duration;

use push_support::{decode_write_request, free_port, label, Behaviour, FakeReceiver};
use vitals::export::push::{DeliveryConfig, PushMethod, PushgatewayExporter, RemoteWriteExporter};
use vitals::export::{Exporter, Reporter};
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

fn remote(addr: &str, metrics: &MetricsCollector, config: DeliveryConfig) -> RemoteWriteExporter {
    RemoteWriteExporter::builder(format!("http://{addr}/api/v1/write"))
        .external_label("job", "faults")
        .record_into(metrics)
        .delivery(config)
        .build()
        .unwrap()
}

/// A counter of the remote-write exporter, 0 when absent. The one place
/// these tests read a counter value.
fn counter(metrics: &MetricsCollector, name: &str, labels: &[(&str, &str)]) -> u64 {
    let mut all = vec![("exporter", "remote_write")];
    all.extend_from_slice(labels);
    metrics
        .snapshot()
        .counter_sample(name, &all)
        .and_then(|c| c.value.as_u64())
        .unwrap_or(0)
}

fn push_counter(metrics: &MetricsCollector, cause: &str, name: &str, label: &str) -> u64 {
    counter(metrics, name, &[(label, cause)])
}

#[test]
fn an_outage_costs_resolution_never_counts_and_memory_stays_bounded() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let metrics = MetricsCollector::new();
    let bound = 4096;
    let mut exporter = remote(
        &addr,
        &metrics,
        DeliveryConfig {
            max_backlog_bytes: bound,
            ..quick()
        },
    );
    let requests = metrics.counter("requests_total", &[("route", "/a")]);
    let depth = metrics.gauge("queue_depth", &[]);
    // Nothing listens: every snapshot waits in the backlog.
    for i in 0..200u64 {
        requests.increment(i);
        depth.set(i as f64);
        exporter.export(&metrics.snapshot()).ok();
        let stats = exporter.stats();
        assert!(
            stats.queue_bytes <= bound as u64,
            "backlog {} bytes over the {bound}-byte bound",
            stats.queue_bytes
        );
    }
    let total: u64 = (0..200).sum();
    // Let the sender meet the closed port at least once.
    while exporter.stats().failed_requests == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let during = exporter.stats();
    assert!(during.dropped_points > 0, "{during:?}");
    assert!(
        push_counter(
            &metrics,
            "connect",
            "vitals_push_failed_requests_total",
            "cause"
        ) >= 1
    );

    // The receiver comes back on the same port.
    let receiver = FakeReceiver::start_on(&addr, vec![]);
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!((stats.queue_bytes, stats.queue_points), (0, 0), "{stats:?}");

    let mut delivered = Vec::new();
    for request in receiver.seen() {
        delivered.extend(decode_write_request(&request.body));
    }
    let last_requests = delivered
        .iter()
        .rfind(|s| label(s, "__name__") == Some("requests_total"))
        .unwrap();
    assert_eq!(last_requests.1, total as f64, "the final total arrived");
    assert_eq!(label(last_requests, "route"), Some("/a"));
    let last_depth = delivered
        .iter()
        .rfind(|s| label(s, "__name__") == Some("queue_depth"))
        .unwrap();
    assert_eq!(last_depth.1, 199.0);
    // Every point is either delivered or counted as dropped.
    assert_eq!(stats.sent_points as usize, delivered.len());
    assert_eq!(
        stats.dropped_points,
        push_counter(
            &metrics,
            "bound",
            "vitals_push_dropped_points_total",
            "reason"
        )
    );
    // Per series, samples arrive in time order.
    let mut last_ts = std::collections::HashMap::new();
    for s in &delivered {
        let previous = last_ts.insert(s.0.clone(), s.2);
        assert!(previous.is_none_or(|p| p < s.2), "out of order: {s:?}");
    }
}

#[test]
fn a_500_is_retried_until_it_succeeds_and_reported_once() {
    let receiver = FakeReceiver::start(vec![
        Behaviour::Reply(500, "", "boom"),
        Behaviour::Reply(503, "", ""),
    ]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    metrics.counter("jobs_total", &[]).increment(3);
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
    assert_eq!(
        push_counter(
            &metrics,
            "status_5xx",
            "vitals_push_failed_requests_total",
            "cause"
        ),
        2
    );
    assert_eq!(
        counter(&metrics, "vitals_push_retried_requests_total", &[]),
        2
    );
    // The three attempts carried the same data.
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.windows(2).all(|w| w[0].body == w[1].body));
    // The failure is reported by the next export, once.
    let err = exporter.export(&metrics.snapshot()).unwrap_err();
    assert!(err.to_string().contains("HTTP 500: boom"), "{err}");
    exporter.flush().unwrap();
    assert!(exporter.export(&metrics.snapshot()).is_ok());
}

#[test]
fn a_429_waits_as_long_as_retry_after_says() {
    let receiver = FakeReceiver::start(vec![Behaviour::Reply(429, "Retry-After: 1\r\n", "")]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    // The backoff alone would retry after 1 ms; the server asked for 1 s.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    assert_eq!(
        push_counter(
            &metrics,
            "status_429",
            "vitals_push_failed_requests_total",
            "cause"
        ),
        1
    );
}

#[test]
fn a_flush_does_not_cut_a_retry_after_short() {
    let receiver = FakeReceiver::start(vec![Behaviour::Reply(429, "Retry-After: 3600\r\n", "")]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(
        &receiver.addr.to_string(),
        &metrics,
        DeliveryConfig {
            shutdown_deadline: Duration::from_millis(300),
            ..quick()
        },
    );
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    // Until the 429 has been answered, the flush waits for the request.
    while receiver.seen().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let err = exporter.flush().unwrap_err();
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    // Capped at max_retry_after (5 min), still longer than the flush.
    assert_eq!(receiver.seen().len(), 1);
}

#[test]
fn a_400_is_not_retried_its_points_are_counted_and_it_is_reported_once() {
    let receiver = FakeReceiver::start(
        (0..10)
            .map(|_| Behaviour::Reply(400, "", "out of order sample"))
            .collect(),
    );
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    metrics.counter("jobs_total", &[]).inc();
    let mut errors = Vec::new();
    for _ in 0..4 {
        if let Err(e) = exporter.export(&metrics.snapshot()) {
            errors.push(e.to_string());
        }
        exporter.flush().unwrap();
    }
    let stats = exporter.stats();
    assert_eq!(receiver.seen().len(), 4, "one attempt per snapshot");
    assert_eq!((stats.failed_requests, stats.retried_requests), (4, 0));
    assert_eq!(stats.sent_points, 0);
    assert!(stats.dropped_points > 0);
    assert_eq!(
        stats.dropped_points,
        push_counter(
            &metrics,
            "rejected",
            "vitals_push_dropped_points_total",
            "reason"
        )
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("out of order sample"), "{errors:?}");
}

#[test]
fn garbage_and_early_close_are_counted_and_retried() {
    let receiver = FakeReceiver::start(vec![
        Behaviour::Raw(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
        Behaviour::Raw(b"HTTP/1.1 200 OK\r\nContent-Le"),
        Behaviour::Close,
    ]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    metrics.gauge("g", &[]).set(f64::NAN);
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    assert_eq!(
        push_counter(
            &metrics,
            "bad_response",
            "vitals_push_failed_requests_total",
            "cause"
        ),
        2
    );
    assert_eq!(
        push_counter(&metrics, "io", "vitals_push_failed_requests_total", "cause"),
        1
    );
    let last = receiver.seen().pop().unwrap();
    let series = decode_write_request(&last.body);
    let g = series
        .iter()
        .find(|s| label(s, "__name__") == Some("g"))
        .unwrap();
    assert!(g.1.is_nan());
}

#[test]
fn a_peer_that_never_answers_blocks_neither_export_nor_the_hot_path() {
    let receiver = FakeReceiver::start(vec![Behaviour::Hold]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(
        &receiver.addr.to_string(),
        &metrics,
        DeliveryConfig {
            // Long enough that only the release ends the held request.
            request_timeout: Duration::from_secs(3600),
            ..quick()
        },
    );
    let c = metrics.counter("work_total", &[]);
    c.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    // Wait until the sender is stuck in the held request.
    while receiver.seen().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Meanwhile: updates and exports go on.
    for _ in 0..5 {
        c.inc();
        exporter.export(&metrics.snapshot()).unwrap();
    }
    let stats = exporter.stats();
    assert_eq!(receiver.seen().len(), 1);
    assert!(stats.queue_points >= 6, "{stats:?}");
    receiver.release();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(stats.queue_points, 0);
    assert_eq!(
        push_counter(&metrics, "io", "vitals_push_failed_requests_total", "cause"),
        1
    );
    let last = receiver.seen().pop().unwrap();
    let series = decode_write_request(&last.body);
    let work = series
        .iter()
        .find(|s| label(s, "__name__") == Some("work_total"))
        .unwrap();
    assert_eq!(work.1, 6.0);
}

#[test]
fn a_silent_peer_times_out_and_is_counted() {
    // Accepted by the kernel's backlog, never read, never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let metrics = MetricsCollector::new();
    let mut exporter = remote(
        &addr,
        &metrics,
        DeliveryConfig {
            request_timeout: Duration::from_millis(50),
            shutdown_deadline: Duration::from_millis(300),
            ..quick()
        },
    );
    metrics.counter("x_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    let err = exporter.flush().unwrap_err();
    assert!(err.to_string().contains("not delivered"), "{err}");
    assert!(
        push_counter(
            &metrics,
            "timeout",
            "vitals_push_failed_requests_total",
            "cause"
        ) >= 1
    );
    drop(exporter);
    // What was left at shutdown is counted as dropped.
    assert!(
        push_counter(
            &metrics,
            "shutdown",
            "vitals_push_dropped_points_total",
            "reason"
        ) >= 1
    );
}

#[test]
fn remote_write_sends_the_protocols_headers_and_credentials() {
    let receiver = FakeReceiver::start(vec![]);
    let metrics = MetricsCollector::new();
    let mut exporter = RemoteWriteExporter::builder(format!("http://{}/receive", receiver.addr))
        .basic_auth("alice", "pa:ss")
        .delivery(quick())
        .build()
        .unwrap();
    metrics.counter("a_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let seen = receiver.seen();
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/receive"));
    let h = |k: &str| r.headers.get(k).map(String::as_str);
    assert_eq!(h("content-encoding"), Some("snappy"));
    assert_eq!(h("content-type"), Some("application/x-protobuf"));
    assert_eq!(h("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert!(h("user-agent").unwrap().starts_with("vitals/"));
    // base64("alice:pa:ss")
    assert_eq!(h("authorization"), Some("Basic YWxpY2U6cGE6c3M="));

    let receiver = FakeReceiver::start(vec![]);
    let mut exporter = RemoteWriteExporter::builder(format!("http://{}/", receiver.addr))
        .bearer_token("t0k3n")
        .delivery(quick())
        .build()
        .unwrap();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let seen = receiver.seen();
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        "Bearer t0k3n"
    );
}

#[test]
fn pushgateway_puts_text_to_the_group_and_deletes_it_at_shutdown() {
    let receiver = FakeReceiver::start(vec![Behaviour::Reply(503, "", "")]);
    let metrics = MetricsCollector::new();
    let exporter = PushgatewayExporter::builder(format!("http://{}", receiver.addr), "backup")
        .grouping_label("dir", "/var/tmp")
        .delete_on_shutdown(true)
        .record_into(&metrics)
        .delivery(quick())
        .build()
        .unwrap();
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_secs(3600))
        .exporter(exporter)
        .start()
        .unwrap();
    metrics.counter("bytes_total", &[]).increment(42);
    reporter.tick_now();
    let status = reporter.shutdown();
    // The 503 is reported by the export after it (if it came before the
    // final tick), once; the flush (final push and delete) succeeded.
    let st = &status.exporters[0];
    assert!(st.failed <= 1, "{status:?}");
    if let Some(e) = &st.latest_error_ever {
        assert!(e.to_string().contains("HTTP 503"), "{status:?}");
    }
    let seen = receiver.seen();
    let methods: Vec<&str> = seen.iter().map(|r| r.method.as_str()).collect();
    // 503 retried, then the tick's push is superseded or sent, the final
    // push, then the delete.
    assert_eq!(methods.first(), Some(&"PUT"));
    assert_eq!(methods.last(), Some(&"DELETE"));
    for r in &seen {
        assert_eq!(r.path, "/metrics/job/backup/dir@base64/L3Zhci90bXA=");
    }
    let last_put = seen.iter().rfind(|r| r.method == "PUT").unwrap();
    assert_eq!(
        last_put.headers.get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(last_put.body.clone()).unwrap();
    assert!(text.contains("\nbytes_total 42\n"), "{text}");
}

#[test]
fn a_retry_after_of_zero_waits_the_backoff_not_a_busy_loop() {
    let receiver = FakeReceiver::start(
        (0..3)
            .map(|_| Behaviour::Reply(503, "Retry-After: 0\r\n", ""))
            .collect(),
    );
    let metrics = MetricsCollector::new();
    let config = DeliveryConfig {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
        ..quick()
    };
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, config);
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    // No flush meanwhile: a flush would cut the backoff short on purpose.
    let start = std::time::Instant::now();
    while receiver.seen().len() < 4 && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 4, "three 503s, then the 204");
    // Jitter draws each wait from half to all of the 100 ms backoff.
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(45), "retried after {gap:?}");
    }
}

#[test]
fn a_long_response_head_and_many_interim_responses_are_still_answers() {
    let many_headers: String = (0..70).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers = format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{many_headers}\r\n");
    let interims = format!(
        "{}HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n".repeat(9)
    );
    let receiver = FakeReceiver::start(vec![
        Behaviour::Raw(Box::leak(many_headers.into_boxed_str()).as_bytes()),
        Behaviour::Raw(Box::leak(interims.into_boxed_str()).as_bytes()),
    ]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    let c = metrics.counter("jobs_total", &[]);
    for _ in 0..2 {
        c.inc();
        exporter.export(&metrics.snapshot()).unwrap();
        exporter.flush().unwrap();
    }
    let stats = exporter.stats();
    assert_eq!(receiver.seen().len(), 2, "each body sent once");
    assert_eq!(
        (stats.sent_requests, stats.failed_requests),
        (2, 0),
        "{stats:?}"
    );
    assert_eq!(stats.last_error, None);
}

#[test]
fn a_pushgateway_body_replaced_while_another_is_on_the_wire_is_counted() {
    let receiver = FakeReceiver::start(vec![Behaviour::Slow(Duration::from_millis(800), 200)]);
    let metrics = MetricsCollector::new();
    let c = metrics.counter("c", &[]);
    let mut exporter = PushgatewayExporter::builder(format!("http://{}", receiver.addr), "j")
        .delivery(quick())
        .build()
        .unwrap();
    // The first body waits on the wire; the second replaces nothing sent,
    // the third replaces the second, which never goes.
    for wait in [200, 50, 50] {
        c.inc();
        exporter.export(&metrics.snapshot()).unwrap();
        std::thread::sleep(Duration::from_millis(wait));
    }
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(receiver.seen().len(), 2, "the first body and the last");
    assert_eq!(
        (stats.sent_points, stats.dropped_points),
        (2, 1),
        "every point delivered or counted: {stats:?}"
    );
}

#[cfg(feature = "otlp")]
#[test]
fn an_otlp_point_replaced_during_a_retry_is_counted_by_the_flush() {
    use vitals::export::push::OtlpExporter;
    let receiver = FakeReceiver::start(vec![Behaviour::Slow(Duration::from_millis(500), 503)]);
    let metrics = MetricsCollector::new();
    let g = metrics.gauge("g", &[]);
    let mut exporter = OtlpExporter::builder(format!("http://{}", receiver.addr))
        .delivery(quick())
        .build()
        .unwrap();
    g.set(1.0);
    exporter.export(&metrics.snapshot()).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    // While the first request is on the wire (and fails): its point is
    // superseded by this one when the retry goes.
    g.set(2.0);
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (stats.sent_points, stats.dropped_points),
        (1, 1),
        "every point delivered or counted: {stats:?}"
    );
    assert_eq!(receiver.seen().len(), 2);
}

#[test]
fn a_series_made_anothers_twin_by_the_external_labels_is_counted() {
    let receiver = FakeReceiver::start(vec![]);
    let metrics = MetricsCollector::new();
    // `remote` adds the external label job="faults".
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    let source = MetricsCollector::new();
    source.counter("c_total", &[]).increment(7);
    source.counter("c_total", &[("job", "faults")]).increment(5);
    exporter.export(&source.snapshot()).unwrap();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (stats.sent_points, stats.dropped_points),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        push_counter(
            &metrics,
            "duplicate",
            "vitals_push_dropped_points_total",
            "reason"
        ),
        1
    );
    let series = decode_write_request(&receiver.seen()[0].body);
    let c: Vec<_> = series
        .iter()
        .filter(|s| label(s, "__name__") == Some("c_total"))
        .collect();
    assert_eq!(c.len(), 1, "one series per label set: {series:?}");
}

#[test]
fn series_the_pushgateway_keeps_for_itself_are_left_out_and_counted() {
    let receiver = FakeReceiver::start(vec![]);
    let metrics = MetricsCollector::new();
    metrics.gauge("push_time_seconds", &[]).set(1.0);
    metrics
        .gauge("push_failure_time_seconds", &[("x", "1")])
        .set(2.0);
    metrics.gauge("rows", &[]).set(3.0);
    let counted = MetricsCollector::new();
    let mut exporter = PushgatewayExporter::builder(format!("http://{}", receiver.addr), "j")
        .delivery(quick())
        .record_into(&counted)
        .build()
        .unwrap();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let reserved = counted
        .snapshot()
        .counter_sample(
            "vitals_push_dropped_points_total",
            &[("exporter", "pushgateway"), ("reason", "reserved")],
        )
        .and_then(|c| c.value.as_u64());
    assert_eq!(reserved, Some(2));
    let body = String::from_utf8(receiver.seen()[0].body.clone()).unwrap();
    assert!(body.contains("rows 3"), "{body}");
    assert!(!body.contains("push_time_seconds"), "{body}");
    assert!(!body.contains("push_failure_time_seconds"), "{body}");
    assert_eq!(exporter.stats().dropped_points, 2);
}

#[test]
fn pushgateway_can_post_instead_of_put() {
    let receiver = FakeReceiver::start(vec![]);
    let metrics = MetricsCollector::new();
    metrics.gauge("rows", &[]).set(1.0);
    let mut exporter = PushgatewayExporter::builder(format!("http://{}", receiver.addr), "j")
        .method(PushMethod::Post)
        .delivery(quick())
        .build()
        .unwrap();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let seen = receiver.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/metrics/job/j")
    );
}

#[test]
fn a_retry_after_is_capped_at_max_retry_after() {
    let receiver = FakeReceiver::start(vec![Behaviour::Reply(429, "Retry-After: 3600\r\n", "")]);
    let metrics = MetricsCollector::new();
    let config = DeliveryConfig {
        max_retry_after: Duration::from_millis(200),
        ..quick()
    };
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, config);
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    exporter.flush().unwrap();
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(150) && gap < Duration::from_secs(30),
        "retried after {gap:?}"
    );
}

/// A backoff of an hour: only a flush can bring the retry forward.
fn patient() -> DeliveryConfig {
    DeliveryConfig {
        initial_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        shutdown_deadline: Duration::from_secs(20),
        ..quick()
    }
}

#[test]
fn a_flush_cuts_the_backoff_short_so_a_backend_back_is_tried_at_once() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&addr, &metrics, patient());
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    // Nothing listens: the first attempt fails, then an hour's wait.
    while exporter.stats().failed_requests == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let receiver = FakeReceiver::start_on(&addr, vec![]);
    exporter.flush().unwrap();
    assert_eq!(receiver.seen().len(), 1);
    assert_eq!(exporter.stats().sent_points, 1);
}

#[test]
fn a_flush_while_a_request_is_on_the_wire_cuts_the_backoff_after_it() {
    let receiver = FakeReceiver::start(vec![Behaviour::Slow(Duration::from_millis(400), 503)]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, patient());
    metrics.counter("jobs_total", &[]).inc();
    exporter.export(&metrics.snapshot()).unwrap();
    while receiver.seen().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The 503 comes after this flush began: its retry must not wait.
    exporter.flush().unwrap();
    assert_eq!(receiver.seen().len(), 2);
}

#[test]
fn a_failure_is_reported_again_after_a_delivery_succeeded() {
    let receiver = FakeReceiver::start(vec![
        Behaviour::Reply(500, "", "down"),
        Behaviour::Reply(204, "", ""),
        Behaviour::Reply(500, "", "down"),
    ]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    let c = metrics.counter("jobs_total", &[]);
    let mut errors = Vec::new();
    for _ in 0..3 {
        c.inc();
        if let Err(e) = exporter.export(&metrics.snapshot()) {
            errors.push(e.to_string());
        }
        exporter.flush().unwrap();
    }
    // The first 500 is reported by the second export; the delivery after
    // it clears the record, so the second 500 is reported by the third.
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.contains("HTTP 500")), "{errors:?}");
}

#[test]
fn sent_points_and_queue_bytes_are_on_the_collector() {
    let receiver = FakeReceiver::start(vec![Behaviour::Hold]);
    let metrics = MetricsCollector::new();
    let mut exporter = remote(&receiver.addr.to_string(), &metrics, quick());
    let source = MetricsCollector::new();
    source.counter("jobs_total", &[]).inc();
    source.gauge("rows", &[]).set(2.0);
    exporter.export(&source.snapshot()).unwrap();
    while receiver.seen().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let queue = |m: &MetricsCollector| {
        m.snapshot()
            .gauge("vitals_push_queue_bytes", &[("exporter", "remote_write")])
            .unwrap()
    };
    assert!(queue(&metrics) > 0.0, "held request's bytes are queued");
    receiver.release();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(stats.sent_points, 2);
    assert_eq!(
        counter(&metrics, "vitals_push_sent_points_total", &[]),
        stats.sent_points
    );
    assert_eq!(queue(&metrics), 0.0);
}
