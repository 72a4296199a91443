//! Push exporters against the real receivers: Debian's `prometheus` with
//! its remote-write receiver, and `prometheus-pushgateway`. Each test
//! skips when its program is missing, and fails instead with
//! `VITALS_REQUIRE_TOOLS=1` (as in CI, which installs both).
#![cfg(feature = "remote-write")]

mod common;
mod push_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::decode_with_python;
use push_support::{
    expected_series, free_port, get, require_tool, start_prometheus, url_encode, wait_ready, Child,
    Labels,
};
use vitals::export::push::{DeliveryConfig, PushgatewayExporter, RemoteWriteExporter};
use vitals::export::Exporter;
use vitals::MetricsCollector;

/// A collector with counters, gauges and summaries, label values that need
/// escaping included.
fn populated(round: u64) -> MetricsCollector {
    let m = MetricsCollector::new();
    m.configure_histogram_buckets("request_duration_seconds", &[0.01, 0.1, 1.0, 2.5])
        .unwrap();
    update(&m, round);
    m
}

fn update(m: &MetricsCollector, round: u64) {
    m.counter(
        "requests_total",
        &[("route", "/a \"b\"\\c"), ("code", "200")],
    )
    .increment(10 + round);
    m.counter("requests_total", &[("route", "/"), ("code", "500")])
        .increment(round);
    m.counter("bytes", &[]).increment(1 << 40);
    m.gauge("temperature_celsius", &[("room", "caf\u{e9}")])
        .set(21.5 + round as f64);
    m.gauge("queue_depth", &[]).set(-3.25);
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    for i in 1..=100 {
        h.record(i as f64 / 1000.0 + round as f64);
    }
    let b = m.histogram("request_duration_seconds", &[("route", "/")]);
    for v in [0.005, 0.05, 0.5, 0.5, 2.0, 7.0] {
        b.record(v * (round + 1) as f64);
    }
}

#[test]
fn remote_write_reaches_a_real_prometheus_with_every_value() {
    let Some(prometheus) = require_tool("prometheus") else {
        return;
    };
    let dir = common::TempDir::new("remote-write");
    let (addr, _prometheus) = start_prometheus(
        &prometheus,
        dir.path(),
        "global:\n  scrape_interval: 1h\n",
        &["--web.enable-remote-write-receiver"],
    );

    let metrics = populated(0);
    let mut exporter = RemoteWriteExporter::builder(format!("http://{addr}/api/v1/write"))
        .external_label("job", "vitals_rw")
        .external_label("instance", "test:1")
        .record_into(&metrics)
        .delivery(DeliveryConfig {
            shutdown_deadline: Duration::from_secs(60),
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap();
    let mut last = None;
    for round in 1..=3 {
        update(&metrics, round);
        let snap = metrics.snapshot();
        exporter.export(&snap).unwrap();
        exporter.flush().unwrap();
        last = Some(snap);
    }
    let snap = last.unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (stats.failed_requests, stats.dropped_points),
        (0, 0),
        "{stats:?}"
    );

    // Evaluate just after the last snapshot (its samples may be stamped a
    // few ms later if snapshots shared a millisecond).
    let at = (snap.timestamp_unix_ms + 1_000) as f64 / 1000.0;
    let query = format!(
        "/api/v1/query?query={}&time={at}",
        url_encode("{job=\"vitals_rw\"}")
    );
    let (status, body) = get(addr, &query).unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{body}");
    let mut got = BTreeMap::new();
    for r in json["data"]["result"].as_array().unwrap() {
        let labels: Labels = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        got.insert(labels, value);
    }
    let want: BTreeMap<Labels, f64> =
        expected_series(&snap, &[("job", "vitals_rw"), ("instance", "test:1")])
            .into_iter()
            .collect();
    let names =
        |m: &BTreeMap<Labels, f64>| -> Vec<String> { m.keys().map(|l| format!("{l:?}")).collect() };
    assert_eq!(names(&got), names(&want));
    for (labels, v) in &want {
        assert_eq!(
            got[labels].to_bits(),
            v.to_bits(),
            "{labels:?}: {} != {v}",
            got[labels]
        );
    }
    assert!(want.len() >= 12, "{}", want.len());
}

/// An instant query at `at` (seconds): `(labels, value)` of each float
/// result.
fn instant(addr: SocketAddr, promql: &str, at: f64) -> Vec<(Labels, f64)> {
    let query = format!("/api/v1/query?query={}&time={at}", url_encode(promql));
    let (status, body) = get(addr, &query).unwrap();
    assert_eq!(status, 200, "{promql}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{body}");
    json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels: Labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (labels, r["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

#[test]
fn remote_write_delivers_native_histograms_and_exemplars() {
    let Some(prometheus) = require_tool("prometheus") else {
        return;
    };
    let dir = common::TempDir::new("remote-write-native");
    let (addr, _prometheus) = start_prometheus(
        &prometheus,
        dir.path(),
        "global:\n  scrape_interval: 1h\n",
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms,exemplar-storage",
        ],
    );

    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    metrics
        .configure_histogram_buckets("upload_bytes", &[1e3, 1e6])
        .unwrap();
    let latency = metrics.histogram("request_duration_seconds", &[("route", "/a")]);
    let uploads = metrics.histogram("upload_bytes", &[]);
    let requests = metrics.counter("requests_total", &[("route", "/a")]);
    for k in 0..2_000u32 {
        // Four decades of latencies: downscaled to fit 160 buckets.
        latency.record(1e-4 * 10f64.powf(f64::from(k % 400) / 100.0));
        uploads.record(f64::from(k) * 997.0);
    }
    latency
        .record_with_exemplar(0.042, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
        .unwrap();
    requests
        .increment_with_exemplar(5, &[("trace_id", "00f067aa0ba902b7")])
        .unwrap();
    uploads
        .record_with_exemplar(5e5, &[("trace_id", "5b8aa5a2d2c872e8")])
        .unwrap();
    let mut exporter = RemoteWriteExporter::builder(format!("http://{addr}/api/v1/write"))
        .external_label("job", "native")
        .delivery(DeliveryConfig {
            shutdown_deadline: Duration::from_secs(60),
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap();
    let snap = metrics.snapshot();
    exporter.export(&snap).unwrap();
    exporter.flush().unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (stats.failed_requests, stats.dropped_points),
        (0, 0),
        "{stats:?}"
    );

    let at = (snap.timestamp_unix_ms + 1_000) as f64 / 1000.0;
    for (name, labels) in [
        ("request_duration_seconds", &[("route", "/a")][..]),
        ("upload_bytes", &[][..]),
    ] {
        let life = &snap.histogram(name, labels).unwrap().lifetime;
        let count = instant(addr, &format!("histogram_count({name})"), at);
        assert_eq!(count.len(), 1, "{name}: {count:?}");
        assert_eq!(count[0].1, life.count as f64, "{name}");
        let sum = instant(addr, &format!("histogram_sum({name})"), at);
        assert!(
            (sum[0].1 - life.sum).abs() <= 1e-9 * life.sum,
            "{name}: {sum:?}"
        );
    }
    // The classic series of the histogram given bounds go too.
    let classic = instant(addr, "upload_bytes_bucket", at);
    assert_eq!(classic.len(), 3, "{classic:?}");
    // The median of the native histogram lies in the exported bucket that
    // holds the exact median.
    let p50 = instant(
        addr,
        "histogram_quantile(0.5, request_duration_seconds)",
        at,
    )[0]
    .1;
    let buckets = snap
        .histogram("request_duration_seconds", &[("route", "/a")])
        .unwrap()
        .lifetime_buckets
        .as_deref()
        .cloned()
        .unwrap();
    let mut fitted = buckets.clone();
    fitted.fit(vitals::layout::DEFAULT_MAX_BUCKETS);
    assert!(fitted.scale < 6);
    let median = buckets.quantile(0.5).unwrap();
    let index = fitted
        .counts
        .iter()
        .map(|&(i, _)| i)
        .find(|&i| vitals::layout::upper_bound(i, fitted.scale) >= median)
        .unwrap();
    let (lo, hi) = (
        vitals::layout::lower_bound(index, fitted.scale),
        vitals::layout::upper_bound(index, fitted.scale),
    );
    assert!(lo <= p50 && p50 <= hi, "{p50} outside ({lo}, {hi}]");

    // Exemplars, as the receiver stored them.
    let query = format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        url_encode("{job=\"native\"}"),
        at - 600.0,
        at + 600.0
    );
    let (status, body) = get(addr, &query).unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut seen = BTreeMap::new();
    for series in json["data"].as_array().unwrap() {
        let name = series["seriesLabels"]["__name__"]
            .as_str()
            .unwrap()
            .to_owned();
        for e in series["exemplars"].as_array().unwrap() {
            let id = e["labels"]["trace_id"].as_str().unwrap().to_owned();
            let value: f64 = e["value"].as_str().unwrap().parse().unwrap();
            seen.insert(name.clone(), (id, value));
        }
    }
    assert_eq!(
        seen.get("requests_total"),
        Some(&("00f067aa0ba902b7".to_owned(), 5.0)),
        "{body}"
    );
    // A classic bucket's exemplar rides on its `_bucket` series. (Prometheus
    // 2.42 keeps no exemplars of native histogram series, so the one sent
    // with `request_duration_seconds` is not asked back here.)
    assert_eq!(
        seen.get("upload_bytes_bucket"),
        Some(&("5b8aa5a2d2c872e8".to_owned(), 5e5)),
        "{body}"
    );
}

/// Parses the Prometheus text a Pushgateway serves into series (name and
/// labels) and values, for the lines whose labels include `job`.
fn parse_text(text: &str, job: &str) -> BTreeMap<Labels, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, rest) = series.split_once('{').unwrap_or((series, "}"));
        let mut labels = Labels::new();
        let mut chars = rest.strip_suffix('}').unwrap().chars().peekable();
        while chars.peek().is_some() {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'));
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape in {line}"),
                    },
                    c => value.push(c),
                }
            }
            if chars.peek() == Some(&',') {
                chars.next();
            }
            if key == "le" && value != "+Inf" {
                // The Pushgateway re-renders bounds Go's way (`1`, not `1.0`).
                value = format!("{:?}", value.parse::<f64>().unwrap());
            }
            labels.insert(key, value);
        }
        if labels.get("job").map(String::as_str) != Some(job)
            || name.starts_with("push_time_seconds")
            || name.starts_with("push_failure_time_seconds")
        {
            continue;
        }
        labels.insert("__name__".into(), name.into());
        out.insert(labels, value.parse().unwrap());
    }
    out
}

#[test]
fn pushgateway_serves_the_pushed_values_and_forgets_them_after_delete() {
    let Some(pushgateway) = require_tool("prometheus-pushgateway") else {
        return;
    };
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Child(
        Command::new(pushgateway)
            .arg(format!("--web.listen-address={addr}"))
            // In memory only: Debian's default file would hand this
            // gateway the groups of every earlier run.
            .arg("--persistence.file=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(addr, "/-/ready", &mut child, Duration::from_secs(60));

    let metrics = populated(1);
    let mut exporter = PushgatewayExporter::builder(format!("http://{addr}"), "vitals_pgw")
        .grouping_label("instance", "host/1")
        .delete_on_shutdown(true)
        .build()
        .unwrap();
    let mut last = None;
    for round in 2..=3 {
        update(&metrics, round);
        let snap = metrics.snapshot();
        exporter.export(&snap).unwrap();
        // Without deleting: wait for the push alone.
        while exporter.stats().queue_points > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        last = Some(snap);
    }
    let stats = exporter.stats();
    assert_eq!(
        (stats.failed_requests, stats.sent_requests),
        (0, 2),
        "{stats:?}"
    );

    let (status, text) = get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    let got = parse_text(&text, "vitals_pgw");
    let want: BTreeMap<Labels, f64> = expected_series(
        &last.unwrap(),
        &[("job", "vitals_pgw"), ("instance", "host/1")],
    )
    .into_iter()
    .collect();
    let names =
        |m: &BTreeMap<Labels, f64>| -> Vec<String> { m.keys().map(|l| format!("{l:?}")).collect() };
    assert_eq!(names(&got), names(&want));
    for (labels, v) in &want {
        assert_eq!(got[labels].to_bits(), v.to_bits(), "{labels:?}");
    }

    // A series label named like a grouping label gets the group's value
    // (the Pushgateway's rule, which the README states).
    let own = vitals::MetricsCollector::new();
    own.gauge("vitals_pgw_own", &[("instance", "x")]).set(4.0);
    let mut other = PushgatewayExporter::builder(format!("http://{addr}"), "vitals_pgw2")
        .grouping_label("instance", "host/2")
        .delete_on_shutdown(true)
        .build()
        .unwrap();
    other.export(&own.snapshot()).unwrap();
    while other.stats().queue_points > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(other.stats().failed_requests, 0, "{:?}", other.stats());
    let (_, text) = get(addr, "/metrics").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("vitals_pgw_own{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(r#"instance="host/2""#) && !line.contains(r#"instance="x""#),
        "{line}"
    );
    other.flush().unwrap();

    // Shutdown: the pending nothing is flushed, then the group deleted.
    // The gateway answers a delete with 202 and applies it after: polled.
    exporter.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = get(addr, "/metrics").unwrap();
        if parse_text(&text, "vitals_pgw").is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group is still there 10 s after its delete:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn remote_write_body_decodes_with_the_python_protobuf_runtime() {
    let metrics = populated(2);
    let snap = metrics.snapshot();
    let external = [("job", "caf\u{e9} \"x\""), ("zone", "a\nb")];
    let body = vitals::export::push::encode_write_request(&snap, &external).unwrap();
    let Some(decoded) = decode_with_python("decode_write_request.py", &body) else {
        return;
    };
    let mut got: Vec<(Labels, u64)> = Vec::new();
    for series in decoded.as_array().unwrap() {
        let pairs: Vec<(String, String)> = series["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut sorted = pairs.clone();
        sorted.sort();
        assert_eq!(pairs, sorted, "labels sorted by name");
        let samples = series["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0][1].as_u64(), Some(snap.timestamp_unix_ms));
        got.push((pairs.into_iter().collect(), samples[0][0].as_u64().unwrap()));
    }
    got.sort();
    let mut want: Vec<(Labels, u64)> = expected_series(&snap, &external)
        .into_iter()
        .map(|(l, v)| (l, v.to_bits()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}
