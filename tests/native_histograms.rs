//! The Prometheus protobuf exposition, checked by its real consumers: the
//! protobuf runtime (PyPI `protobuf`, message descriptors built from
//! client_model's field numbers in `scripts/decode_metric_families.py`)
//! decodes every value, and Debian's `prometheus` started with
//! `--enable-feature=native-histograms` scrapes the HTTP endpoint over
//! protobuf and answers `histogram_count`, `histogram_sum` and
//! `histogram_quantile(0.99, sum(rate(...)))` with vitals' numbers. Each
//! test skips when its tool is missing, and fails instead with
//! `VITALS_REQUIRE_TOOLS=1` (as in CI).
#![cfg(feature = "http")]

mod common;
mod push_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::decode_with_python;
use push_support::{get, require_tool, start_prometheus, url_encode};
use serde_json::Value;
use vitals::export::{render_protobuf, PROTOBUF_CONTENT_TYPE};
use vitals::layout::{lower_bound, upper_bound, DEFAULT_MAX_BUCKETS};
use vitals::snapshot::{HistogramSummary, SparseBuckets};
use vitals::{MetricKind, MetricsCollector, Snapshot, Unit, Window};

const ROUTES: [&str; 3] = ["/api/orders", "/api/users", "/static"];

/// A deterministic spread of latencies over four decades (log-uniform from
/// `lo` to `lo * 10^decades`), with an occasional exact zero.
fn latencies(seed: u64, n: usize, lo: f64, decades: f64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            if k % 97 == 0 {
                0.0
            } else {
                lo * 10f64.powf(u * decades)
            }
        })
        .collect()
}

/// A service's collector: histograms with exponential buckets (one with
/// classic bounds too), counters, gauges, and help and units.
fn service() -> MetricsCollector {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.describe(
        MetricKind::Histogram,
        "request_duration_seconds",
        Some(Unit::Seconds),
        "Time to answer a request.",
    );
    m.describe(
        MetricKind::Histogram,
        "payload_bytes",
        Some(Unit::Bytes),
        "Sizes of request bodies (\"payloads\"),\nby route.",
    );
    m.configure_histogram_buckets("payload_bytes", &[100.0, 1_000.0, 10_000.0])
        .unwrap();
    m.configure_histogram("batch_size", Window::Count { values: 50 })
        .unwrap();
    m
}

fn record_traffic(m: &MetricsCollector, instance: u64) -> Vec<f64> {
    let mut all = Vec::new();
    for (k, route) in ROUTES.iter().enumerate() {
        let h = m.histogram("request_duration_seconds", &[("route", route)]);
        let values = latencies(
            k as u64 + 1 + 100 * instance,
            4_000 + 1_000 * k,
            0.0005 * (k + 1) as f64,
            4.0,
        );
        values.iter().for_each(|v| h.record(*v));
        all.extend(values);
        m.counter("requests_total", &[("route", route)])
            .increment(4_000 + 1_000 * k as u64);
        let p = m.histogram("payload_bytes", &[("route", route)]);
        latencies(k as u64 + 7, 300, 10.0, 3.0)
            .iter()
            .for_each(|v| p.record(*v));
    }
    let b = m.histogram("batch_size", &[]);
    (1..=80).for_each(|v| b.record(f64::from(v)));
    m.gauge("queue_depth", &[("queue", "a \"quoted\"\\ name\n")])
        .set(-3.5);
    m.gauge("temperature_celsius", &[]).set(f64::NAN);
    m.gauge("headroom", &[]).set(f64::INFINITY);
    all
}

/// Runs the protobuf runtime on `body` (see `decode_with_python`).
fn decode(body: &[u8]) -> Option<Vec<Value>> {
    let decoded = decode_with_python("decode_metric_families.py", body)?;
    Some(decoded.as_array().unwrap().clone())
}

/// A JSON number, or json_format's spelling of a 64-bit integer or of a
/// non-finite double.
fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            s => s.parse().unwrap(),
        },
        Value::Null => 0.0,
        other => panic!("not a number: {other}"),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn labels_of(metric: &Value) -> Vec<(String, String)> {
    metric["label"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .map(|p| {
                    let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
                    (s("name"), s("value"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Native buckets as `(index, count)` from a decoded histogram's spans and
/// deltas.
fn native_of(h: &Value) -> (i64, u64, Vec<(i32, u64)>) {
    let spans = h["positive_span"].as_array().cloned().unwrap_or_default();
    let deltas: Vec<i64> = h["positive_delta"]
        .as_array()
        .map(|d| d.iter().map(|v| num(v) as i64).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    let (mut index, mut count, mut k) = (0i32, 0i64, 0usize);
    for (n, span) in spans.iter().enumerate() {
        let offset = num(&span["offset"]) as i32;
        index = if n == 0 { offset } else { index + offset };
        for _ in 0..num(&span["length"]) as usize {
            count += deltas[k];
            k += 1;
            assert!(count >= 0, "a bucket count below zero");
            if count > 0 {
                out.push((index, count as u64));
            }
            index += 1;
        }
    }
    assert_eq!(k, deltas.len(), "deltas left over after the spans");
    (num(&h["schema"]) as i64, num(&h["zero_count"]) as u64, out)
}

/// What a native histogram of `summary` must carry: its lifetime buckets
/// cut to the export limit.
fn exported(summary: &HistogramSummary) -> SparseBuckets {
    let mut b = summary.lifetime_buckets.as_deref().cloned().unwrap();
    b.fit(DEFAULT_MAX_BUCKETS);
    b
}

/// Every family, series and value of the decoded body against the
/// snapshot.
fn check_against(snap: &Snapshot, families: &[Value]) {
    let family = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {families:?}"))
    };
    let series = |f: &Value, labels: &vitals::Labels| {
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let found: Vec<&Value> = f["metric"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| labels_of(m) == want)
            .collect();
        assert_eq!(found.len(), 1, "{want:?} in {f}");
        found[0].clone()
    };
    let mut seen = 0;
    for c in &snap.counters {
        let f = family(&c.name);
        assert_eq!(f["type"], "COUNTER");
        let m = series(f, &c.labels);
        assert_eq!(num(&m["counter"]["value"]), c.value.as_f64());
        seen += 1;
    }
    for g in &snap.gauges {
        let f = family(&g.name);
        assert_eq!(f["type"], "GAUGE");
        let m = series(f, &g.labels);
        assert!(
            same(num(&m["gauge"]["value"]), g.value),
            "{m} vs {}",
            g.value
        );
        seen += 1;
    }
    for h in &snap.histograms {
        let f = family(&h.name);
        let m = series(f, &h.labels);
        let s = &h.summary;
        if s.lifetime_buckets.is_none() {
            assert_eq!(f["type"], "SUMMARY", "{}", h.name);
            let sm = &m["summary"];
            assert_eq!(num(&sm["sample_count"]) as u64, s.lifetime.count);
            assert_eq!(num(&sm["sample_sum"]), s.lifetime.sum);
            let q = s.window.quantiles.unwrap();
            let levels: Vec<(f64, f64)> = sm["quantile"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| (num(&q["quantile"]), num(&q["value"])))
                .collect();
            assert_eq!(
                levels,
                vec![
                    (0.5, q.p50),
                    (0.9, q.p90),
                    (0.95, q.p95),
                    (0.99, q.p99),
                    (0.999, q.p999)
                ]
            );
        } else {
            assert_eq!(f["type"], "HISTOGRAM", "{}", h.name);
            let hm = &m["histogram"];
            let want = exported(s);
            assert_eq!(num(&hm["sample_count"]) as u64, want.count());
            assert_eq!(
                want.count(),
                s.lifetime.count,
                "no value outside the buckets"
            );
            assert_eq!(num(&hm["sample_sum"]), s.lifetime.sum);
            assert!(num(&hm["zero_threshold"]) > 0.0);
            assert_eq!(
                native_of(hm),
                (i64::from(want.scale), want.zeros, want.counts)
            );
            match &s.buckets {
                Some(classic) => {
                    let got: Vec<(f64, u64)> = hm["bucket"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| (num(&b["upper_bound"]), num(&b["cumulative_count"]) as u64))
                        .collect();
                    let want: Vec<(f64, u64)> = classic
                        .bounds
                        .iter()
                        .copied()
                        .zip(classic.cumulative.iter().copied())
                        .collect();
                    assert_eq!(got, want);
                }
                None => assert_eq!(hm["bucket"], Value::Null),
            }
        }
        seen += 1;
    }
    let written: usize = families
        .iter()
        .map(|f| f["metric"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(written, seen, "a series the snapshot does not have");
    for name in ["request_duration_seconds", "payload_bytes"] {
        assert!(family(name)["help"].as_str().unwrap().len() > 10);
    }
    assert_eq!(family("request_duration_seconds")["unit"], "seconds");
}

#[test]
fn the_protobuf_runtime_decodes_every_value_of_the_snapshot() {
    let m = service();
    record_traffic(&m, 0);
    let snap = m.snapshot();
    let (body, report) = render_protobuf(&snap);
    assert_eq!(report.clashing_families, Vec::<String>::new());
    assert_eq!(report.duplicate_series, 0);
    // Four decades of latencies need more than 160 buckets at scale 6.
    let latency = snap
        .histogram("request_duration_seconds", &[("route", ROUTES[0])])
        .unwrap();
    assert!(exported(latency).scale < 6);
    let Some(families) = decode(&body) else {
        return;
    };
    check_against(&snap, &families);
}

#[test]
fn an_empty_native_histogram_says_it_is_native() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let _ = m.histogram("idle_seconds", &[]);
    let (body, _) = render_protobuf(&m.snapshot());
    let Some(families) = decode(&body) else {
        return;
    };
    let h = &families[0]["metric"][0]["histogram"];
    assert_eq!(num(&h["schema"]), 6.0);
    // One empty span (how Prometheus tells a native histogram without
    // observations from a classic one), and a positive zero threshold.
    assert_eq!(h["positive_span"].as_array().unwrap().len(), 1);
    assert!(num(&h["zero_threshold"]) > 0.0);
}

/// `GET /metrics` with an `Accept` header: status, content type, body.
fn scrape(addr: SocketAddr, accept: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, raw[split + 4..].to_vec())
}

#[test]
fn the_endpoint_serves_protobuf_to_a_scraper_that_asks_for_it() {
    let m = service();
    record_traffic(&m, 0);
    let server = vitals::export::serve(&m, "127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // Prometheus 2.42's header with native histograms on.
    let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    let (status, content_type, body) = scrape(addr, accept);
    assert_eq!(status, 200);
    assert_eq!(content_type, PROTOBUF_CONTENT_TYPE);
    // Nothing moves in this collector, so the server's snapshot renders
    // like this one.
    assert_eq!(body, render_protobuf(&m.snapshot()).0);
    let (_, text_type, text) = scrape(addr, "text/plain;version=0.0.4");
    assert!(text_type.starts_with("text/plain"));
    assert!(String::from_utf8(text)
        .unwrap()
        .contains("# TYPE request_duration_seconds summary"));
    if let Some(families) = decode(&body) {
        check_against(&m.snapshot(), &families);
    }
}

/// An instant query's float results: labels (without `__name__`) → value.
fn query(prometheus: SocketAddr, promql: &str) -> Vec<(Vec<(String, String)>, f64)> {
    let (status, body) = get(
        prometheus,
        &format!("/api/v1/query?query={}", url_encode(promql)),
    )
    .unwrap();
    assert_eq!(status, 200, "{promql}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "success", "{body}");
    json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "job" | "instance"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (labels, r["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

/// Polls `promql` until `done` holds for its result, within `limit`.
fn wait_for(
    prometheus: SocketAddr,
    promql: &str,
    limit: Duration,
    done: impl Fn(&[(Vec<(String, String)>, f64)]) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let result = query(prometheus, promql);
        if done(&result) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{promql} did not reach what the test waits for within {limit:?}: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_native_histograms_and_aggregates_them_across_instances() {
    let Some(prometheus) = require_tool("prometheus") else {
        return;
    };
    // Two instances of one service, each with its routes.
    let instances = [service(), service()];
    // The series exist, empty, before Prometheus' first scrape, so that
    // `rate` sees every value arrive.
    for m in &instances {
        for route in ROUTES {
            let _ = m.histogram("request_duration_seconds", &[("route", route)]);
        }
    }
    let servers: Vec<_> = instances
        .iter()
        .map(|m| vitals::export::serve(m, "127.0.0.1:0").unwrap())
        .collect();
    let dir = common::TempDir::new("native-histograms");
    let config = format!(
        "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\nscrape_configs:\n  - job_name: vitals\n    static_configs:\n      - targets: ['{}', '{}']\n",
        servers[0].local_addr(),
        servers[1].local_addr()
    );
    let (addr, _prometheus) = start_prometheus(
        &prometheus,
        dir.path(),
        &config,
        &["--enable-feature=native-histograms"],
    );
    let limit = Duration::from_secs(120);
    // Native (a summary has no histogram_count), and empty, on both
    // instances.
    wait_for(
        addr,
        "histogram_count(request_duration_seconds)",
        limit,
        |r| r.len() == instances.len() * ROUTES.len() && r.iter().all(|(_, v)| *v == 0.0),
    );

    let mut values = record_traffic(&instances[0], 0);
    values.extend(record_traffic(&instances[1], 1));
    let total = values.len() as f64;
    wait_for(
        addr,
        "sum(histogram_count(request_duration_seconds))",
        limit,
        |r| r.first().is_some_and(|(_, v)| *v == total),
    );
    // One more scrape after the last change, then read.
    std::thread::sleep(Duration::from_millis(2_500));
    let snaps = [instances[0].snapshot(), instances[1].snapshot()];

    for (n, (snap, server)) in snaps.iter().zip(&servers).enumerate() {
        let instance = server.local_addr().to_string();
        let counts = query(
            addr,
            &format!("histogram_count(request_duration_seconds{{instance=\"{instance}\"}})"),
        );
        assert_eq!(counts.len(), ROUTES.len(), "instance {n}: {counts:?}");
        for (labels, count) in counts {
            let route = &labels[0].1;
            let s = snap
                .histogram("request_duration_seconds", &[("route", route)])
                .unwrap();
            assert_eq!(count, s.lifetime.count as f64, "{route}");
            let sum = query(
                addr,
                &format!("histogram_sum(request_duration_seconds{{instance=\"{instance}\",route=\"{route}\"}})"),
            );
            assert!(
                (sum[0].1 - s.lifetime.sum).abs() <= 1e-9 * s.lifetime.sum,
                "{route}: {} vs {}",
                sum[0].1,
                s.lifetime.sum
            );
        }
    }

    // The service-wide p99: every route of both instances merged, in
    // Prometheus and in vitals.
    let p99 = query(
        addr,
        "histogram_quantile(0.99, sum(rate(request_duration_seconds[1m])))",
    );
    assert_eq!(p99.len(), 1, "{p99:?}");
    let prometheus_p99 = p99[0].1;
    let routes: Vec<&HistogramSummary> = snaps
        .iter()
        .flat_map(|s| &s.histograms)
        .filter(|h| &*h.name == "request_duration_seconds")
        .map(|h| &h.summary)
        .collect();
    let mut merged = routes[0].clone();
    routes[1..].iter().for_each(|s| merged.merge(s));
    let mut all = merged.lifetime_buckets.as_deref().cloned().unwrap();
    assert_eq!(all.count(), values.len() as u64);
    let vitals_p99 = all.quantile(0.99).unwrap();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let exact = sorted[(0.99 * sorted.len() as f64).ceil() as usize - 1];
    // Both answers lie in the exported bucket that holds the 99th
    // percentile value: the bucket error of the scale Prometheus was given.
    all.fit(DEFAULT_MAX_BUCKETS);
    let scale = all.scale;
    let holding = all
        .counts
        .iter()
        .map(|&(i, _)| i)
        .find(|&i| lower_bound(i, scale) < exact && exact <= upper_bound(i, scale))
        .unwrap();
    let (lo, hi) = (lower_bound(holding, scale), upper_bound(holding, scale));
    eprintln!(
        "p99 of {} values: exact {exact}, prometheus {prometheus_p99}, vitals {vitals_p99}, bucket ({lo}, {hi}] at scale {scale}",
        values.len()
    );
    for (who, v) in [("prometheus", prometheus_p99), ("vitals", vitals_p99)] {
        assert!(
            lo <= v && v <= hi,
            "{who} p99 {v} outside the bucket ({lo}, {hi}] that holds the exact p99 {exact} (scale {scale})"
        );
    }
    // And the window quantile vitals reports for the merged service agrees
    // with its bucket count at scale 6 (0.55%).
    let window_p99 = merged.window.quantiles.unwrap().p99;
    assert!(
        (window_p99 - exact).abs() <= 0.0055 * exact + 1e-12,
        "{window_p99} vs {exact}"
    );
}
