//! The live page and the query API of the HTTP endpoint, through real
//! sockets on loopback: the page's document and headers, every typed error
//! of `/api/query` and its limits, HEAD beside GET, answers from recent
//! snapshots and from a `History`.
#![cfg(feature = "http")]

mod http_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_support::{get, populated, quick, request};
use serde_json::Value;
use vitals::export::http::MAX_SERIES;
use vitals::export::{HttpConfig, HttpServer};
use vitals::MetricsCollector;

#[test]
fn the_page_is_one_self_contained_document() {
    let m = populated();
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(None)).unwrap();
    let page = get(server.local_addr(), "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page.header("Content-Security-Policy").unwrap();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = &page.body;
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.len() < 48 * 1024, "{} bytes", html.len());
    // Nothing outside this server: no scripts, styles, fonts or images by
    // address, no imports.
    for outside in ["src=", "href=", "@import", "url(", "//cdn", "fonts.g"] {
        assert!(!html.contains(outside), "the page holds {outside:?}");
    }
    // It reads this server's own JSON, relatively.
    assert!(html.contains("getJSON(\"metrics.json\")"));
    assert!(html.contains("api/query?name="));
    // HEAD: the same head, no body.
    let head = request(server.local_addr(), "HEAD", "/", "");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(
        head.header("Content-Length"),
        Some(html.len().to_string().as_str())
    );
    assert_eq!(head.header("Content-Security-Policy"), Some(policy));
}

/// Waits until the ring holds a few snapshots (a deadline, not a measure).
fn wait_for_points(addr: SocketAddr, path: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = get(addr, path).json();
        let have = body["series"][0]["points"].as_array().map_or(0, Vec::len);
        if have >= n {
            return body;
        }
        assert!(Instant::now() < deadline, "no {n} points: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_query_api_answers_from_recent_snapshots() {
    let m = populated();
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(None)).unwrap();
    let addr = server.local_addr();
    let body = wait_for_points(addr, "/api/query?name=queue_depth&range=10s&points=100", 2);
    assert_eq!(body["source"], "recent");
    assert_eq!(
        (body["kind"].as_str(), body["aggregation"].as_str()),
        (Some("gauge"), Some("last"))
    );
    for p in body["series"][0]["points"].as_array().unwrap() {
        assert_eq!(p[1], 4.0);
    }
    let latency = get(
        addr,
        "/api/query?name=latency_seconds&label=route=/a&agg=p99&range=1m",
    )
    .json();
    assert_eq!(latency["unit"], "seconds");
    let snap = m.snapshot();
    let p99 = snap
        .histogram("latency_seconds", &[("route", "/a")])
        .unwrap()
        .window
        .quantiles
        .as_ref()
        .unwrap()
        .p99;
    let last = latency["series"][0]["points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()[1]
        .clone();
    assert_eq!(last.as_f64(), Some(p99));
    let merged = get(
        addr,
        "/api/query?name=latency_seconds&agg=p99&merge=true&range=1m",
    )
    .json();
    assert_eq!(merged["merged"], true);
    assert_eq!(merged["series"].as_array().unwrap().len(), 1);
    // An unknown name: empty, not an error.
    let none = get(addr, "/api/query?name=nothing_here");
    assert_eq!(none.status, 200);
    assert_eq!(none.json()["series"], serde_json::json!([]));
    // HEAD: same length, no body.
    let path = "/api/query?name=nothing_here";
    let head = request(addr, "HEAD", path, "");
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(
        head.header("Content-Length"),
        Some(get(addr, path).body.len().to_string().as_str())
    );
    assert_eq!(head.header("Content-Type"), Some("application/json"));
}

#[test]
fn every_bad_query_gets_its_typed_error() {
    let m = populated();
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(None)).unwrap();
    let many_labels: String = (0..17).map(|i| format!("&label=k{i}=v")).collect();
    let cases: Vec<(String, &str, Value)> = vec![
        ("".into(), "missing_parameter", "name".into()),
        ("name=".into(), "missing_parameter", "name".into()),
        ("agg=p99".into(), "missing_parameter", "name".into()),
        ("name=x&colour=red".into(), "unknown_parameter", Value::Null),
        ("name=x&name=y".into(), "duplicate_parameter", "name".into()),
        (
            "name=queue_depth&agg=last&agg=max".into(),
            "duplicate_parameter",
            "agg".into(),
        ),
        ("name=%zz".into(), "invalid_encoding", "name".into()),
        ("name=%ff".into(), "invalid_encoding", "name".into()),
        (
            "name=x&label=%e2%28".into(),
            "invalid_encoding",
            "label".into(),
        ),
        ("name=x&range=0s".into(), "invalid_range", "range".into()),
        ("name=x&range=32d".into(), "invalid_range", "range".into()),
        ("name=x&range=1y".into(), "invalid_range", "range".into()),
        ("name=x&range=".into(), "invalid_range", "range".into()),
        (
            "name=x&range=99999999999999999999".into(),
            "invalid_range",
            "range".into(),
        ),
        ("name=x&agg=p42".into(), "unknown_aggregation", "agg".into()),
        ("name=x&agg=".into(), "unknown_aggregation", "agg".into()),
        (
            "name=queue_depth&agg=p99".into(),
            "unsupported_aggregation",
            "agg".into(),
        ),
        (
            "name=queue_depth&agg=rate".into(),
            "unsupported_aggregation",
            "agg".into(),
        ),
        (
            "name=requests_total&agg=avg".into(),
            "unsupported_aggregation",
            "agg".into(),
        ),
        (
            "name=latency_seconds&agg=last".into(),
            "unsupported_aggregation",
            "agg".into(),
        ),
        ("name=x&points=0".into(), "invalid_points", "points".into()),
        (
            "name=x&points=1001".into(),
            "invalid_points",
            "points".into(),
        ),
        ("name=x&points=-1".into(), "invalid_points", "points".into()),
        (
            "name=x&points=ten".into(),
            "invalid_points",
            "points".into(),
        ),
        ("name=x&merge=yes".into(), "invalid_merge", "merge".into()),
        ("name=x&label==v".into(), "invalid_label", "label".into()),
        (
            format!("name=x{many_labels}"),
            "too_many_labels",
            "label".into(),
        ),
    ];
    for (query, kind, parameter) in cases {
        for method in ["GET", "HEAD"] {
            let r = request(
                server.local_addr(),
                method,
                &format!("/api/query?{query}"),
                "",
            );
            assert_eq!(r.status, 400, "{method} {query}: {}", r.body);
            assert_eq!(r.header("Content-Type"), Some("application/json"));
            if method == "HEAD" {
                assert_eq!(r.body, "");
                continue;
            }
            let body = r.json();
            assert_eq!(body["error"], kind, "{query}: {body}");
            assert_eq!(body["parameter"], parameter, "{query}: {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
    // Quantiles of a collector without exponential buckets cannot merge.
    let plain = MetricsCollector::new();
    plain
        .histogram("latency_seconds", &[("route", "/a")])
        .record(0.5);
    let server = HttpServer::start(&plain, "127.0.0.1:0", quick(None)).unwrap();
    let path = "/api/query?name=latency_seconds&agg=p99&merge=true";
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        let r = get(server.local_addr(), path);
        if r.status != 200 || Instant::now() > deadline {
            break r; // 200 (empty) only until the ring's first snapshot
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "not_mergeable");
}

#[test]
fn an_answer_holds_at_most_max_series_and_points() {
    let m = MetricsCollector::new();
    for i in 0..MAX_SERIES + 7 {
        m.gauge("wide", &[("i", &format!("{i:03}"))]).set(i as f64);
    }
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(None)).unwrap();
    let addr = server.local_addr();
    wait_for_points(addr, "/api/query?name=wide&range=10s&points=100", 3);
    let body = get(addr, "/api/query?name=wide&range=10s&points=2").json();
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), MAX_SERIES);
    assert_eq!(body["series_total"], MAX_SERIES + 7);
    assert_eq!(body["truncated"], true);
    for s in series {
        assert!(s["points"].as_array().unwrap().len() <= 2);
    }
    let one = get(addr, "/api/query?name=wide&label=i=003&range=1m&points=1").json();
    assert_eq!(one["truncated"], false);
    let points = one["series"][0]["points"].as_array().unwrap();
    assert_eq!((points.len(), points[0][1].as_f64()), (1, Some(3.0)));
}

#[cfg(feature = "history")]
#[test]
fn the_query_api_answers_from_a_history_as_its_query_does() {
    use std::sync::Arc;
    use vitals::history::{Aggregation, History, Query};
    use vitals::ManualClock;

    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let history = Arc::new(History::new());
    for i in 0..30u64 {
        m.counter("requests_total", &[("route", "/a")]).increment(i);
        m.counter("requests_total", &[("route", "/b")])
            .increment(2 * i);
        m.histogram("latency_seconds", &[])
            .record(0.01 * (i + 1) as f64);
        history.ingest(&m.snapshot()).unwrap();
        clock.advance(Duration::from_secs(10));
    }
    let config = HttpConfig {
        recent_snapshots: 5,
        ..quick(None)
    };
    let server =
        HttpServer::start_with_history(&m, "127.0.0.1:0", config, Arc::clone(&history)).unwrap();
    let addr = server.local_addr();
    let end = history.newest_unix_ms().unwrap();
    let direct = |name: &str, agg: Aggregation, points: usize| {
        history
            .query(
                &Query::new(name, agg)
                    .range(end - 300_000, end + 1)
                    .max_points(points),
            )
            .unwrap()
    };
    let served = get(
        addr,
        "/api/query?name=requests_total&agg=sum&range=5m&points=10",
    )
    .json();
    assert_eq!(served["source"], "history");
    let want = direct("requests_total", Aggregation::Sum, 10);
    assert_eq!(
        served["series"].as_array().unwrap().len(),
        want.series.len()
    );
    for (s, w) in served["series"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&want.series)
    {
        let got: Vec<(u64, f64)> = s["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        let expected: Vec<(u64, f64)> = w
            .points
            .iter()
            .map(|p| (p.timestamp_unix_ms, p.value))
            .collect();
        assert_eq!(got, expected);
        assert!(!got.is_empty());
    }
    // Merged sums add the series step by step.
    let merged = get(
        addr,
        "/api/query?name=requests_total&agg=sum&range=5m&points=10&merge=true",
    )
    .json();
    let total: f64 = merged["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    let want_total: f64 = want
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.value))
        .sum();
    assert_eq!(total, want_total);
    // Quantiles: as the history computes them; merging them is refused.
    let p99 = get(
        addr,
        "/api/query?name=latency_seconds&agg=p99&range=5m&points=5",
    )
    .json();
    let want = direct("latency_seconds", Aggregation::P99, 5);
    let last = p99["series"][0]["points"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()[1]
        .as_f64();
    assert_eq!(last, want.series[0].points.last().map(|p| p.value));
    let r = get(addr, "/api/query?name=latency_seconds&agg=p99&merge=true");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, "merge_unsupported".into())
    );
}

#[test]
fn without_a_ring_the_api_answers_no_points() {
    let m = populated();
    let config = HttpConfig {
        recent_snapshots: 0,
        ..quick(None)
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    // Several sampling intervals pass; nothing is kept.
    std::thread::sleep(Duration::from_millis(500));
    let r = get(server.local_addr(), "/api/query?name=queue_depth");
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["kind"], "gauge");
    assert_eq!(body["series"], serde_json::json!([]));
    assert_eq!(body["series_total"], 0);
}
