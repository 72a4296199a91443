//! The OTLP exporter against a real OTLP/HTTP receiver on loopback
//! (`scripts/otlp_receiver.py`), which decodes every request strictly with
//! PyPI `opentelemetry-proto` (protobuf, and JSON through
//! `json_format.Parse` without ignoring unknown fields) and checks bucket
//! counts, start times and delta windows. Skips when python3 or the package
//! is missing; fails instead with `VITALS_REQUIRE_TOOLS=1` (as in CI).
#![cfg(all(feature = "otlp", feature = "remote-write"))]

mod push_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use push_support::{get, require_tool, wait_ready, Child};
use serde_json::Value;
use vitals::export::push::{DeliveryConfig, OtlpExporter, OtlpFormat, Temporality};
use vitals::export::Exporter;
use vitals::snapshot::{CounterSample, CounterValue, SparseBuckets};
use vitals::{MetricsCollector, Snapshot, Unit, Window};

/// Starts the receiver; `None` (skip) when python3 or opentelemetry-proto
/// is missing and tools are not required.
fn receiver() -> Option<(Child, SocketAddr)> {
    let python = require_tool("python3")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/otlp_receiver.py");
    let mut child = Child(
        Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(3), "the receiver failed to start");
        assert!(
            std::env::var("VITALS_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "PyPI opentelemetry-proto is required (VITALS_REQUIRE_TOOLS=1) but not installed"
        );
        eprintln!("skipped: PyPI opentelemetry-proto is not installed");
        return None;
    }
    let port: u16 = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_ready(addr, "/ready", &mut child, Duration::from_secs(30));
    Some((child, addr))
}

fn report(addr: SocketAddr) -> (Vec<Value>, Vec<Value>) {
    let (status, body) = get(addr, "/report").unwrap();
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    (
        json["points"].as_array().unwrap().clone(),
        json["problems"].as_array().unwrap().clone(),
    )
}

fn collector() -> MetricsCollector {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.configure_histogram_buckets("request_duration_seconds", &[0.01, 0.1, 1.0])
        .unwrap();
    m.configure_histogram("batch_size", Window::Count { values: 100 })
        .unwrap();
    vitals::describe_histogram!(collector: m, "latency_seconds", Unit::Seconds, "Request latency");
    m
}

fn update(m: &MetricsCollector, round: u64) {
    m.counter(
        "requests_total",
        &[("route", "/a \"b\"\\c"), ("code", "200")],
    )
    .increment(10 + round);
    m.counter("requests_total", &[("route", "/"), ("code", "500")])
        .increment_with_exemplar(
            round,
            &[
                ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
                ("span_id", "00f067aa0ba902b7"),
                ("user", "caf\u{e9}"),
            ],
        )
        .unwrap();
    m.counter("bytes_total", &[]).increment(1 << 40);
    m.gauge("temperature_celsius", &[("room", "caf\u{e9}")])
        .set(21.5 + round as f64);
    m.gauge("queue_depth", &[]).set(-3.25);
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    for i in 0..=100 {
        h.record(i as f64 / 1000.0 * (round + 1) as f64);
    }
    // Not hex: stays an attribute.
    h.record_with_exemplar(0.042, &[("trace_id", "not-hex")])
        .unwrap();
    let b = m.histogram("request_duration_seconds", &[]);
    for v in [0.005, 0.05, 0.5, 2.0] {
        b.record(v * (round + 1) as f64);
    }
    m.histogram("batch_size", &[]).record(round as f64 + 1.0);
}

/// Adds a float counter, as plug-ins report (`process_cpu_seconds_total`).
fn with_float_counter(mut snap: Snapshot, round: u64) -> Snapshot {
    snap.counters.push(CounterSample::new(
        "process_cpu_seconds_total",
        &[],
        CounterValue::Float(0.25 * (round + 1) as f64),
    ));
    snap
}

fn attributes(p: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p["attributes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    v.sort();
    v
}

fn labels(l: &vitals::Labels) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = l.iter().map(|(k, v)| (k.into(), v.into())).collect();
    v.sort();
    v
}

/// The latest point of one series, which must be of the snapshot's time
/// (or later, when snapshots shared a millisecond).
fn find<'a>(
    points: &'a [Value],
    time_ms: u64,
    name: &str,
    kind: &str,
    l: &vitals::Labels,
) -> &'a Value {
    let latest = points
        .iter()
        .filter(|p| p["name"] == name && p["kind"] == kind && attributes(p) == labels(l))
        .max_by_key(|p| p["time"].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no {name} {kind} {l:?}"));
    assert!(
        latest["time"].as_u64().unwrap() / 1_000_000 >= time_ms,
        "{latest}"
    );
    latest
}

fn float(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Checks the last round's points against the snapshot, cumulative.
fn check_cumulative(points: &[Value], snap: &Snapshot) {
    let t = snap.timestamp_unix_ms;
    for c in &snap.counters {
        let p = find(points, t, &c.name, "sum", &c.labels);
        assert_eq!(p["temporality"], 2);
        match c.value {
            CounterValue::Int(v) => {
                assert_eq!(p["int"], true, "{p}");
                assert_eq!(p["value"].as_u64(), Some(v), "{p}");
            }
            CounterValue::Float(v) => {
                assert_eq!(p["int"], false, "{p}");
                assert_eq!(float(&p["value"]), v, "{p}");
            }
        }
    }
    for g in &snap.gauges {
        let p = find(points, t, &g.name, "gauge", &g.labels);
        assert_eq!(float(&p["value"]), g.value);
    }
    check_exemplars(points, snap);
    for h in &snap.histograms {
        let s = &h.summary;
        let life = &s.lifetime;
        if let Some(b) = &s.buckets {
            let p = find(points, t, &h.name, "histogram", &h.labels);
            assert_eq!(p["count"].as_u64(), Some(b.count));
            let bounds: Vec<f64> = p["bounds"].as_array().unwrap().iter().map(float).collect();
            assert_eq!(bounds, b.bounds);
            // Cumulative again, the snapshot's form.
            let mut run = 0;
            let buckets = p["buckets"].as_array().unwrap();
            for (i, c) in b.cumulative.iter().enumerate() {
                run += buckets[i].as_u64().unwrap();
                assert_eq!(run, *c, "{p}");
            }
            assert_eq!(float(&p["sum"]), life.sum);
        } else if let Some(lb) = &s.lifetime_buckets {
            let p = find(points, t, &h.name, "exponential_histogram", &h.labels);
            assert_eq!(p["count"].as_u64(), Some(life.count), "{p}");
            assert_eq!(float(&p["sum"]), life.sum);
            assert_eq!(p["min"].as_f64(), life.min);
            assert_eq!(p["max"].as_f64(), life.max);
            // The snapshot's buckets at the scale sent.
            let scale = p["scale"].as_i64().unwrap();
            let mut expect = SparseBuckets::clone(lb);
            expect.downscale((6 - scale) as u32);
            let (offset, counts) = expect.offset_counts();
            let got: Vec<u64> = p["buckets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect();
            // OpenTelemetry's bucket index is one less than vitals'.
            assert_eq!(
                (p["offset"].as_i64().unwrap(), got.clone()),
                (i64::from(offset) - 1, counts)
            );
            // And by OpenTelemetry's own definition, bucket `i` holds
            // (base^i, base^(i+1)]: the smallest and largest values lie in
            // the first and last buckets sent.
            let base = 2f64.powf(2f64.powi(-(scale as i32)));
            let first = p["offset"].as_i64().unwrap() as i32;
            let last = first + got.len() as i32 - 1;
            for (v, i) in [(life.min, first), (life.max, last)] {
                let v = v.unwrap();
                if v > 0.0 {
                    let (lo, hi) = (base.powi(i), base.powi(i + 1));
                    assert!(
                        lo < v * (1.0 + 1e-12) && v <= hi * (1.0 + 1e-12),
                        "{v} outside OTLP bucket {i} ({lo}, {hi}] at scale {scale}"
                    );
                }
            }
            assert_eq!(p["zero_count"].as_u64(), Some(expect.zeros));
        } else {
            let p = find(points, t, &h.name, "histogram", &h.labels);
            assert_eq!(p["count"].as_u64(), Some(life.count));
            assert_eq!(p["bounds"].as_array().unwrap().len(), 0);
            assert_eq!(float(&p["sum"]), life.sum);
        }
    }
}

/// Every exemplar of the snapshot's counters and histograms arrives: hex
/// `trace_id`/`span_id` labels as the ids, other labels as attributes, the
/// value and the time.
fn check_exemplars(points: &[Value], snap: &Snapshot) {
    let t = snap.timestamp_unix_ms;
    let expected = |e: &vitals::snapshot::Exemplar| {
        let mut attributes = serde_json::Map::new();
        let (mut trace, mut span) = (String::new(), String::new());
        for (k, v) in e.labels.iter() {
            match k {
                "trace_id" if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    trace = v.to_owned()
                }
                "span_id" if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    span = v.to_owned()
                }
                _ => {
                    attributes.insert(k.to_owned(), Value::from(v));
                }
            }
        }
        serde_json::json!({
            "attributes": attributes,
            "value": e.value,
            "time": e.timestamp_unix_ms * 1_000_000,
            "trace_id": trace,
            "span_id": span,
        })
    };
    let mut seen = 0;
    for c in &snap.counters {
        if let Some(e) = &c.exemplar {
            let p = find(points, t, &c.name, "sum", &c.labels);
            assert_eq!(p["exemplars"], Value::Array(vec![expected(e)]), "{p}");
            seen += 1;
        }
    }
    for h in snap.histograms.iter().filter(|h| !h.exemplars.is_empty()) {
        let kind = match h.summary.lifetime_buckets.is_some() && h.summary.buckets.is_none() {
            true => "exponential_histogram",
            false => "histogram",
        };
        let p = find(points, t, &h.name, kind, &h.labels);
        let want: Vec<Value> = h.exemplars.iter().map(expected).collect();
        assert_eq!(p["exemplars"], Value::Array(want), "{p}");
        seen += 1;
    }
    assert!(
        seen >= 2,
        "the test records exemplars on a counter and a histogram"
    );
}

#[test]
fn protobuf_cumulative_points_equal_the_snapshot_with_fixed_start_times() {
    let Some((_child, addr)) = receiver() else {
        return;
    };
    let metrics = collector();
    let mut exporter = OtlpExporter::builder(format!("http://{addr}"))
        .service_name("otlp-test")
        .resource_attribute("deployment.environment", "ci")
        .record_into(&metrics)
        .delivery(DeliveryConfig {
            shutdown_deadline: Duration::from_secs(60),
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap();
    let mut last = None;
    for round in 0..3 {
        update(&metrics, round);
        let snap = with_float_counter(metrics.snapshot(), round);
        exporter.export(&snap).unwrap();
        exporter.flush().unwrap();
        last = Some(snap);
    }
    let stats = exporter.stats();
    assert_eq!(
        (stats.failed_requests, stats.sent_requests),
        (0, 3),
        "{stats:?}"
    );
    let (points, problems) = report(addr);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(points.iter().all(|p| p["format"] == "protobuf"));
    check_cumulative(&points, &last.unwrap());
    let p = &points[0];
    assert_eq!(p["resource"]["service.name"], "otlp-test");
    assert_eq!(p["resource"]["deployment.environment"], "ci");
    assert_eq!(p["resource"]["telemetry.sdk.name"], "vitals");
    assert_eq!(p["scope"], "vitals");
    let latency = points
        .iter()
        .find(|p| p["name"] == "latency_seconds")
        .unwrap();
    assert_eq!(
        (&latency["unit"], &latency["description"]),
        (&Value::from("s"), &Value::from("Request latency"))
    );
    // Every series' start is the same in all three rounds (the receiver
    // checks it too), and before its first time.
    let starts: std::collections::BTreeSet<u64> = points
        .iter()
        .filter(|p| p["name"] == "requests_total")
        .map(|p| p["start"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 1, "{starts:?}");
}

#[test]
fn json_delta_windows_are_contiguous_and_add_up_to_the_totals() {
    let Some((_child, addr)) = receiver() else {
        return;
    };
    let metrics = collector();
    let mut exporter = OtlpExporter::builder(format!("http://{addr}"))
        .format(OtlpFormat::Json)
        .temporality(Temporality::Delta)
        .window_quantiles(true)
        .env_from(|name| {
            (name == "OTEL_RESOURCE_ATTRIBUTES").then(|| "team=pay%20ments".to_owned())
        })
        .unwrap()
        .build()
        .unwrap();
    let mut last = None;
    for round in 0..4 {
        update(&metrics, round);
        let snap = with_float_counter(metrics.snapshot(), round);
        exporter.export(&snap).unwrap();
        exporter.flush().unwrap();
        last = Some(snap);
    }
    let snap = last.unwrap();
    let stats = exporter.stats();
    assert_eq!(
        (stats.failed_requests, stats.sent_requests),
        (0, 4),
        "{stats:?}"
    );
    let (points, problems) = report(addr);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(points.iter().all(|p| p["format"] == "json"));
    assert_eq!(points[0]["resource"]["team"], "pay ments");
    let of = |name: &str, kind: &str, l: &vitals::Labels| -> Vec<&Value> {
        points
            .iter()
            .filter(|p| p["name"] == name && p["kind"] == kind && attributes(p) == labels(l))
            .collect()
    };
    for c in &snap.counters {
        let deltas = of(&c.name, "sum", &c.labels);
        assert_eq!(deltas.len(), 4, "{}", c.name);
        assert!(deltas.iter().all(|p| p["temporality"] == 1));
        let total: f64 = deltas.iter().map(|p| float(&p["value"])).sum();
        assert_eq!(total, c.value.as_f64(), "{}", c.name);
    }
    for h in &snap.histograms {
        let life = &h.summary.lifetime;
        let kind = if h.summary.lifetime_buckets.is_some() && h.summary.buckets.is_none() {
            "exponential_histogram"
        } else {
            "histogram"
        };
        let deltas = of(&h.name, kind, &h.labels);
        assert_eq!(deltas.len(), 4, "{}", h.name);
        let count: u64 = deltas.iter().map(|p| p["count"].as_u64().unwrap()).sum();
        assert_eq!(count, life.count, "{}", h.name);
        let sum: f64 = deltas.iter().map(|p| float(&p["sum"])).sum();
        assert!(
            (sum - life.sum).abs() <= 1e-9 * life.sum.abs(),
            "{}",
            h.name
        );
        assert!(deltas.iter().all(|p| p["min"].is_null()));
        // The window quantiles, as a summary beside.
        let summary = of(&format!("{}_summary", h.name), "summary", &h.labels);
        let q = summary.last().unwrap()["quantiles"].as_array().unwrap();
        assert_eq!(float(&q[0][1]), h.summary.window.quantiles.unwrap().p50);
    }
    // Windows touch: the receiver found no gap and no overlap; the first
    // window opens at the collector's start.
    let first = of("bytes_total", "sum", &vitals::Labels::default())[0];
    let origin = snap.timestamp_unix_ms as f64 * 1e6 - snap.uptime_seconds * 1e9;
    assert!((first["start"].as_f64().unwrap() - origin).abs() < 2e9);
}

#[cfg(feature = "otlp-gzip")]
#[test]
fn gzip_bodies_are_unpacked_by_the_receiver_with_the_same_points() {
    let Some((_child, addr)) = receiver() else {
        return;
    };
    let metrics = collector();
    let mut exporter = OtlpExporter::builder("http://unused:1")
        .env_from(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://{addr}/")),
            "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".to_owned()),
            "OTEL_SERVICE_NAME" => Some("zipped".to_owned()),
            _ => None,
        })
        .unwrap()
        .build()
        .unwrap();
    update(&metrics, 0);
    let snap = metrics.snapshot();
    exporter.export(&snap).unwrap();
    exporter.flush().unwrap();
    let (points, problems) = report(addr);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(points.iter().all(|p| p["encoding"] == "gzip"));
    assert_eq!(points[0]["resource"]["service.name"], "zipped");
    check_cumulative(&points, &snap);
}
