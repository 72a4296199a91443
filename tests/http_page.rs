//! The live page, the query API and access control of the HTTP endpoint,
//! through real sockets on loopback: every route with a missing, wrong and
//! right credential, every typed error of `/api/query` and its limits,
//! HEAD beside GET, the API backed by a `History`, and a real Prometheus
//! scraping with `authorization` credentials (when installed; CI installs
//! it and sets VITALS_REQUIRE_TOOLS=1).
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use vitals::export::http::MAX_SERIES;
use vitals::export::{HttpAuth, HttpConfig, HttpServer};
use vitals::MetricsCollector;

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Reply {
    try_request(addr, method, path, extra).unwrap()
}

/// `None` when the connection fails (a server still starting).
fn try_request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> Option<Reply> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(raw.as_bytes()).ok()?;
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, "")
}

fn populated() -> MetricsCollector {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.describe(
        vitals::MetricKind::Counter,
        "requests_total",
        None,
        "Requests",
    );
    m.describe(
        vitals::MetricKind::Histogram,
        "latency_seconds",
        Some(vitals::Unit::Seconds),
        "Latency",
    );
    m.counter("requests_total", &[("route", "/a")]).increment(5);
    m.gauge("queue_depth", &[]).set(4.0);
    let h = m.histogram("latency_seconds", &[("route", "/a")]);
    for i in 1..=100 {
        h.record(f64::from(i) / 1000.0);
    }
    m
}

fn quick(auth: Option<HttpAuth>) -> HttpConfig {
    HttpConfig {
        workers: 4,
        auth,
        recent_interval: Duration::from_millis(100),
        snapshot_ttl: Duration::ZERO,
        ..HttpConfig::default()
    }
}

/// Every route, and what it answers given the credential (GET).
const ROUTES: [(&str, u16); 7] = [
    ("/", 200),
    ("/metrics", 200),
    ("/metrics.json", 200),
    ("/health", 200),
    ("/api/query?name=queue_depth", 200),
    ("/api/query?agg=p42", 400),
    ("/nowhere", 404),
];

fn check_guarded(addr: SocketAddr, right: &str, wrong: &[&str], challenge: &str) {
    for (path, status) in ROUTES {
        for method in ["GET", "HEAD", "POST"] {
            let missing = request(addr, method, path, "");
            assert_eq!(missing.status, 401, "{method} {path} without a credential");
            assert_eq!(
                missing.header("WWW-Authenticate"),
                Some(challenge),
                "{method} {path}"
            );
            if method != "HEAD" {
                assert_eq!(missing.body, "authorization required\n");
            } else {
                assert_eq!(missing.body, "");
            }
            for bad in wrong {
                let r = request(addr, method, path, &format!("Authorization: {bad}\r\n"));
                assert_eq!(r.status, 401, "{method} {path} with {bad:?}");
                assert_eq!(r.header("WWW-Authenticate"), Some(challenge));
            }
            let ok = request(addr, method, path, &format!("Authorization: {right}\r\n"));
            let want = if method == "POST" { 405 } else { status };
            assert_eq!(ok.status, want, "{method} {path} with the credential");
        }
    }
}

#[test]
fn a_bearer_token_guards_every_route() {
    let m = populated();
    let token = "s3cret-T0ken.with~chars/+==";
    let server =
        HttpServer::start(&m, "127.0.0.1:0", quick(Some(HttpAuth::bearer(token)))).unwrap();
    let wrong = [
        "Bearer s3cret-T0ken.with~chars/+=",   // one byte short
        "Bearer s3cret-T0ken.with~chars/+===", // one byte more
        "Bearer t3cret-T0ken.with~chars/+==",  // first byte differs
        "Bearer s3cret-T0ken.with~chars/+=-",  // last byte differs
        "Bearer ",
        "Basic s3cret-T0ken.with~chars/+==", // right secret, wrong scheme
        "s3cret-T0ken.with~chars/+==",
    ];
    check_guarded(
        server.local_addr(),
        &format!("Bearer {token}"),
        &wrong,
        "Bearer realm=\"vitals\"",
    );
    // The scheme is case-insensitive.
    let r = request(
        server.local_addr(),
        "GET",
        "/metrics",
        &format!("Authorization: bearer {token}\r\n"),
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains("requests_total{route=\"/a\"} 5"));
}

#[test]
fn a_basic_credential_guards_every_route() {
    let m = populated();
    let server = HttpServer::start(
        &m,
        "127.0.0.1:0",
        quick(Some(HttpAuth::basic("prometheus", "pa:ss wörd"))),
    )
    .unwrap();
    // base64("prometheus:pa:ss wörd") (UTF-8), and near misses.
    let right = "Basic cHJvbWV0aGV1czpwYTpzcyB3w7ZyZA==";
    let wrong = [
        "Basic cHJvbWV0aGV1czpwYTpzcyB3w7ZyZQ==", // last password byte differs
        "Basic cHJvbWV0aGV1czpwYTpzcyB3w7Zy",     // password cut short
        "Basic cHJvbWV0aGV1cw==",                 // user only
        "Basic Og==",                             // ":"
        "Bearer cHJvbWV0aGV1czpwYTpzcyB3w7ZyZA==",
    ];
    check_guarded(
        server.local_addr(),
        right,
        &wrong,
        "Basic realm=\"vitals\", charset=\"UTF-8\"",
    );
}

#[test]
fn credentials_that_cannot_be_sent_are_refused_at_start() {
    let m = MetricsCollector::new();
    for auth in [
        HttpAuth::bearer(""),
        HttpAuth::bearer("has space"),
        HttpAuth::bearer("é"),
        HttpAuth::basic("", "p"),
        HttpAuth::basic("a:b", "p"),
        HttpAuth::basic("user", "line\nbreak"),
    ] {
        let shown = format!("{auth:?}");
        let err = HttpServer::start(&m, "127.0.0.1:0", quick(Some(auth))).unwrap_err();
        assert!(
            matches!(err, vitals::Error::InvalidConfig(_)),
            "{shown}: {err:?}"
        );
    }
    for config in [
        HttpConfig {
            recent_snapshots: 10_001,
            ..HttpConfig::default()
        },
        HttpConfig {
            recent_interval: Duration::from_millis(99),
            ..HttpConfig::default()
        },
        HttpConfig {
            recent_interval: Duration::from_secs(3601),
            ..HttpConfig::default()
        },
    ] {
        assert!(HttpServer::start(&m, "127.0.0.1:0", config).is_err());
    }
    // Debug never shows a secret.
    let shown = format!("{:?}", quick(Some(HttpAuth::basic("u", "hunter2"))));
    assert!(
        !shown.contains("hunter2") && shown.contains("<redacted>"),
        "{shown}"
    );
}

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

/// A port nothing listens on.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require_tool(program: &str) -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{program} is required (VITALS_REQUIRE_TOOLS=1) but not installed");
    }
    found.map(|p| p.display().to_string())
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_with_the_bearer_token_and_is_refused_without() {
    let Some(prometheus) = require_tool("prometheus") else {
        eprintln!("skipped: prometheus is not installed");
        return;
    };
    let m = populated();
    let token = "scrape-token-0123456789";
    let server =
        HttpServer::start(&m, "127.0.0.1:0", quick(Some(HttpAuth::bearer(token)))).unwrap();
    let target = server.local_addr();
    let dir = std::env::temp_dir().join(format!("vitals-page-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The README's scrape configuration, plus a job with a wrong token.
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: vitals\n    authorization:\n      type: Bearer\n      credentials: {token}\n    static_configs:\n      - targets: ['{target}']\n  - job_name: wrong\n    authorization:\n      credentials: not-the-token\n    static_configs:\n      - targets: ['{target}']\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Child(
        std::process::Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Polls until both jobs have been scraped (a deadline, not a measure).
    let deadline = Instant::now() + Duration::from_secs(120);
    let query = |q: &str| -> Option<Value> {
        let r = try_request(addr, "GET", &format!("/api/v1/query?query={q}"), "")?;
        (r.status == 200).then(|| r.json())
    };
    let (up_right, up_wrong, value) = loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("prometheus exited: {status}");
        }
        let up = query("up").unwrap_or(Value::Null);
        let of = |job: &str| {
            up["data"]["result"].as_array().and_then(|r| {
                r.iter()
                    .find(|s| s["metric"]["job"] == job)
                    .and_then(|s| s["value"][1].as_str().map(str::to_owned))
            })
        };
        let value = query("requests_total%7Bjob%3D%22vitals%22%7D").and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_owned)
        });
        if let (Some(a), Some(b), Some(v)) = (of("vitals"), of("wrong"), value) {
            break (a, b, v);
        }
        assert!(
            Instant::now() < deadline,
            "prometheus did not scrape in time: {up}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(up_right, "1");
    assert_eq!(up_wrong, "0");
    assert_eq!(value, "5");
    drop(child);
    let _ = std::fs::remove_dir_all(&dir);
}
