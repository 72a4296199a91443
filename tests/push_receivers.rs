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

use push_support::{
    expected_series, free_port, get, require_tool, url_encode, wait_ready, Child, Labels,
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
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Child(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(addr, "/-/ready", &mut child, Duration::from_secs(120));

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

    // Shutdown: the pending nothing is flushed, then the group deleted.
    exporter.flush().unwrap();
    let (_, text) = get(addr, "/metrics").unwrap();
    assert!(parse_text(&text, "vitals_pgw").is_empty(), "{text}");
}

#[test]
fn remote_write_body_decodes_with_the_python_protobuf_runtime() {
    let Some(python) = require_tool("python3") else {
        return;
    };
    let dir = common::TempDir::new("remote-write-python");
    let metrics = populated(2);
    let snap = metrics.snapshot();
    let external = [("job", "caf\u{e9} \"x\""), ("zone", "a\nb")];
    let body = vitals::export::push::encode_write_request(&snap, &external).unwrap();
    let path = dir.path().join("body.bin");
    std::fs::write(&path, &body).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/decode_write_request.py"
    );
    let out = Command::new(python)
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    if out.status.code() == Some(3) {
        assert!(
            std::env::var("VITALS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "python protobuf is required (VITALS_REQUIRE_TOOLS=1) but not installed"
        );
        return;
    }
    assert!(
        out.status.success(),
        "the protobuf runtime rejected the body: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
