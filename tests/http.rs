//! The HTTP endpoint, through real sockets on loopback: routes, content
//! negotiation, every limit, health, shared snapshots, and the scraped text
//! checked by promtool and the Python prometheus_client parsers when they are
//! installed (CI installs them and sets VITALS_REQUIRE_TOOLS=1).
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use vitals::collectors::HealthCollector;
use vitals::export::{
    serve, HttpConfig, HttpServer, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE,
};
use vitals::{MetricsCollector, Snapshot};

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
}

/// Sends `raw` on a new connection and reads until the server closes it.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(bytes).into_owned();
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
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
    exchange(addr, raw.as_bytes())
}

fn populated() -> MetricsCollector {
    use vitals::MetricKind::{Counter, Gauge, Histogram};
    let m = MetricsCollector::new();
    // promtool's linter wants help text on every family.
    m.describe(Counter, "requests_total", None, "Requests served");
    m.describe(
        Gauge,
        "temperature_celsius",
        Some(vitals::Unit::Celsius),
        "Room temperature",
    );
    m.describe(Gauge, "broken_ratio", None, "A sensor that reads NaN");
    m.describe(
        Histogram,
        "latency_seconds",
        Some(vitals::Unit::Seconds),
        "Request latency",
    );
    m.counter("requests_total", &[("path", "/a \"quoted\" \\ path\nnext")])
        .increment(42);
    m.gauge("temperature_celsius", &[("room", "küche")])
        .set(21.5);
    m.gauge("broken_ratio", &[]).set(f64::NAN);
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    for ms in 1..=100 {
        h.record(f64::from(ms) / 1000.0);
    }
    m
}

fn quick(workers: usize) -> HttpConfig {
    HttpConfig {
        workers,
        read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        ..Default::default()
    }
}

#[test]
fn metrics_are_served_as_prometheus_text_by_default() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let reply = get(server.local_addr(), "/metrics", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    assert_eq!(
        reply
            .header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        reply.body.len()
    );
    assert!(reply.body.contains("requests_total{"), "{}", reply.body);
    assert!(reply.body.contains(" 42\n"));
    assert!(!reply.body.contains("# EOF"));
    // A query string does not change the route.
    assert_eq!(get(server.local_addr(), "/metrics?x=1", "").status, 200);
}

#[test]
fn openmetrics_is_served_when_the_accept_header_asks_for_it() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let accept =
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n";
    let reply = get(server.local_addr(), "/metrics", accept);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(reply.body.ends_with("# EOF\n"));
    let plain = get(server.local_addr(), "/metrics", "Accept: text/plain\r\n");
    assert_eq!(plain.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
}

#[test]
fn the_snapshot_is_served_as_json() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let reply = get(server.local_addr(), "/metrics.json", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let snap: Snapshot = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        snap.counter("requests_total", &[("path", "/a \"quoted\" \\ path\nnext")]),
        Some(42.0)
    );
}

#[test]
fn head_has_the_headers_and_no_body() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let full = get(server.local_addr(), "/metrics", "");
    let raw = "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let head = exchange(server.local_addr(), raw.as_bytes());
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.header("content-length"), full.header("content-length"));
}

#[test]
fn other_methods_unknown_paths_and_malformed_requests_are_refused() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let post = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    for method in ["PUT", "DELETE", "OPTIONS"] {
        let raw = format!("{method} /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(exchange(addr, raw.as_bytes()).status, 405, "{method}");
    }
    assert_eq!(get(addr, "/nope", "").status, 404);
    // `/` is the live page (tests/http_page.rs); paths beside it are not.
    assert_eq!(get(addr, "/", "").status, 200);
    assert_eq!(get(addr, "/index.html", "").status, 404);
    assert_eq!(exchange(addr, b"GARBAGE\r\n\r\n").status, 400);
    assert_eq!(
        exchange(addr, b"GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n").status,
        400
    );
    let with_body = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(with_body.status, 413);
}

#[test]
fn an_oversized_request_head_gets_431() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(exchange(server.local_addr(), big.as_bytes()).status, 431);
    // The server is still fine afterwards.
    assert_eq!(get(server.local_addr(), "/metrics", "").status, 200);
}

#[test]
fn a_slow_client_is_cut_off_after_the_read_timeout() {
    let m = populated();
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(1)).unwrap();
    let mut slow = TcpStream::connect(server.local_addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    // One header byte at a time, slower than the server allows in total.
    for b in b"Host: slow" {
        std::thread::sleep(Duration::from_millis(60));
        if slow.write_all(&[*b]).is_err() {
            break;
        }
    }
    let mut bytes = Vec::new();
    let _ = slow.read_to_end(&mut bytes);
    let reply = parse(&bytes);
    assert_eq!(reply.status, 408);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The only worker is free again.
    assert_eq!(get(server.local_addr(), "/metrics", "").status, 200);
}

#[test]
fn connections_beyond_the_worker_count_get_503() {
    let m = populated();
    let config = HttpConfig {
        workers: 2,
        read_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    // Two silent connections hold both workers.
    let _a = TcpStream::connect(server.local_addr()).unwrap();
    let _b = TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let third = get(server.local_addr(), "/metrics", "");
    assert_eq!(third.status, 503);
    assert_eq!(third.header("retry-after"), Some("1"));
    assert!(server.stats().rejected_connections >= 1);
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /metrics.json HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // Read the head, then exactly Content-Length bytes.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let reply = parse(&head);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("keep-alive"));
        let len: usize = reply.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).unwrap();
        assert!(serde_json::from_slice::<Snapshot>(&body).is_ok());
    }
}

#[test]
fn concurrent_scrapes_share_one_snapshot() {
    let m = populated();
    let config = HttpConfig {
        snapshot_ttl: Duration::from_secs(30),
        ..Default::default()
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    let addr = server.local_addr();
    let barrier = Arc::new(Barrier::new(8));
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, "/metrics", "").status
            })
        })
        .collect();
    for s in scrapers {
        assert_eq!(s.join().unwrap(), 200);
    }
    assert_eq!(server.stats().snapshots, 1);
    assert_eq!(server.stats().requests, 8);
}

#[test]
fn health_is_503_when_a_dependency_is_down() {
    let m = MetricsCollector::new();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let none = get(server.local_addr(), "/health", "");
    assert_eq!(none.status, 200, "no health plug-in: nothing is down");
    drop(server);

    let health = HealthCollector::new(&m);
    m.register(health.clone()).unwrap();
    let config = HttpConfig {
        snapshot_ttl: Duration::ZERO,
        ..Default::default()
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    let (db, cache) = (health.dependency("postgres"), health.dependency("redis"));
    db.success();
    cache.success();
    let ok = get(server.local_addr(), "/health", "");
    assert_eq!(ok.status, 200);
    let body: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(body["status"], "up");
    assert_eq!(body["dependencies"].as_array().unwrap().len(), 2);

    for _ in 0..3 {
        cache.failure();
    }
    let down = get(server.local_addr(), "/health", "");
    assert_eq!(down.status, 503);
    let body: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(body["status"], "down");
    let redis = body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "redis")
        .unwrap()
        .clone();
    assert_eq!(redis["status"], "down");
}

#[test]
fn shutdown_is_prompt_even_with_an_idle_client() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let _idle = TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    server.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_configuration_and_unbindable_addresses_are_errors() {
    let m = MetricsCollector::new();
    for bad in [
        HttpConfig {
            workers: 0,
            ..Default::default()
        },
        HttpConfig {
            max_request_bytes: 10,
            ..Default::default()
        },
        HttpConfig {
            read_timeout: Duration::ZERO,
            ..Default::default()
        },
        HttpConfig {
            max_requests_per_connection: 0,
            ..Default::default()
        },
    ] {
        assert!(HttpServer::start(&m, "127.0.0.1:0", bad).is_err());
    }
    let taken = serve(&m, "127.0.0.1:0").unwrap();
    let err = serve(&m, taken.local_addr()).unwrap_err();
    // A failed bind is an I/O error naming the address, with the
    // operating system's error as its source.
    match &err {
        vitals::Error::Io {
            operation,
            path,
            kind,
            ..
        } => {
            assert_eq!(*operation, "bind");
            assert_eq!(*path, taken.local_addr().to_string());
            assert_eq!(*kind, std::io::ErrorKind::AddrInUse);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

/// Runs an external checker if it is installed; with VITALS_REQUIRE_TOOLS=1
/// (as in CI) a missing tool fails the test.
fn tool(program: &str) -> Option<Command> {
    let present = Command::new(program).arg("--version").output().is_ok();
    if !present && std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{program} is required (VITALS_REQUIRE_TOOLS=1) but not installed");
    }
    present.then(|| Command::new(program))
}

#[test]
fn the_scraped_text_passes_promtool_and_the_python_parsers() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let text = get(server.local_addr(), "/metrics", "").body;
    let open = get(
        server.local_addr(),
        "/metrics",
        "Accept: application/openmetrics-text\r\n",
    )
    .body;
    let dir = std::env::temp_dir().join(format!("vitals-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (prom_path, om_path) = (dir.join("scrape.prom"), dir.join("scrape.om"));
    std::fs::write(&prom_path, &text).unwrap();
    std::fs::write(&om_path, &open).unwrap();
    if let Some(mut promtool) = tool("promtool") {
        let out = promtool
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&prom_path).unwrap())
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.trim().is_empty(),
            "promtool: {said}"
        );
    }
    if let Some(mut python) = tool("python3") {
        let script = r#"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families as classic
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as strict
except ImportError:
    sys.exit(3)
prom = open(sys.argv[1]).read()
om = open(sys.argv[2]).read()
fams = list(classic(prom))
list(strict(om))
values = {s.name: s.value for f in fams for s in f.samples}
assert values.get("requests_total") == 42.0, values
assert values.get("temperature_celsius") == 21.5, values
"#;
        let out = python
            .arg("-c")
            .arg(script)
            .arg(&prom_path)
            .arg(&om_path)
            .output()
            .unwrap();
        let code = out.status.code();
        let required = std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1");
        if code == Some(3) {
            assert!(
                !required,
                "python prometheus_client is required but not installed"
            );
        } else {
            assert!(
                out.status.success(),
                "python parsers: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Splits what a server sent into its responses (each head, then exactly
/// `Content-Length` bytes of body; none for `HEAD`), in order.
fn responses(mut bytes: &[u8], heads: &[bool]) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let mut reply = parse(&bytes[..end + 4]);
        let len: usize = reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body_len = if heads.get(i).copied().unwrap_or(false) {
            0
        } else {
            len
        };
        let body = &bytes[end + 4..(end + 4 + body_len).min(bytes.len())];
        reply.body = String::from_utf8_lossy(body).into_owned();
        out.push(reply);
        bytes = &bytes[(end + 4 + body_len).min(bytes.len())..];
        i += 1;
    }
    out
}

/// Three requests in one write (HTTP pipelining): each gets its response,
/// in order, and the last one's `Connection: close` ends the connection
/// at once instead of leaving it idle.
#[test]
fn pipelined_requests_each_get_a_response_in_order() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(
            b"GET /metrics.json HTTP/1.1\r\nHost: t\r\n\r\n\
              HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let replies = responses(&bytes, &[false, true, false]);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 404],
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(serde_json::from_str::<Snapshot>(&replies[0].body).is_ok());
    assert_eq!(replies[1].header("content-type"), Some("application/json"));
    assert!(replies[1].body.is_empty());
    assert!(replies[2].body.starts_with("not found"));
    assert_eq!(replies[2].header("connection"), Some("close"));
    // Closed after the last response, not after the idle timeout (10 s).
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(server.stats().requests, 3);
}

/// A pipelined request split across writes anywhere (even inside its
/// head) is put together, and one after a refused request is not served.
#[test]
fn pipelined_requests_split_across_writes_are_reassembled() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let all: &[u8] = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHo\
                       st: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    for cut in [10, 33, 40, 60, all.len() - 2] {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(&all[..cut]).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        stream.write_all(&all[cut..]).unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let statuses: Vec<u16> = responses(&bytes, &[]).iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 200], "cut at {cut}");
    }
    // A malformed request ends the connection: what follows it is not
    // read as a request.
    let replies = {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\n\r\nBAD\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        responses(&bytes, &[])
    };
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 400]);
}

/// RFC 9112 §6.3: a request whose body length is ambiguous gets 400 and
/// the connection is closed, so nothing after it is read as a request
/// (conflicting lengths are how requests are smuggled past a proxy).
#[test]
fn conflicting_or_invalid_content_length_gets_400() {
    let m = populated();
    let server = serve(&m, "127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let ask = |headers: &str| {
        let raw = format!("GET /health HTTP/1.1\r\nHost: t\r\n{headers}\r\nhello");
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        responses(&bytes, &[])
            .iter()
            .map(|r| r.status)
            .collect::<Vec<u16>>()
    };
    for bad in [
        "Content-Length: 0\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 0\r\n",
        "Content-Length: 0, 5\r\n",
        "Content-Length: 0,\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: +0\r\n",
        "Content-Length: 0x0\r\n",
        "Content-Length: \r\n",
        "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    ] {
        assert_eq!(ask(bad), [400], "{bad:?}");
    }
    // One length said twice is one length (RFC 9110 §8.6); a body is
    // refused whatever its framing.
    for (ok, status) in [
        ("Content-Length: 0\r\nContent-Length: 0\r\n", 200),
        ("Content-Length: 0, 0\r\n", 200),
        ("Content-Length: 5, 5\r\n", 413),
        ("Content-Length: 99999999999999999999999\r\n", 413),
        ("Transfer-Encoding: chunked\r\n", 413),
    ] {
        let statuses = ask(&format!("{ok}Connection: close\r\n"));
        assert_eq!(statuses, [status], "{ok:?}");
    }
    // The body of a refused request is not served as a second request.
    let smuggled =
        "Content-Length: 0\r\nContent-Length: 34\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n";
    assert_eq!(ask(smuggled), [400]);
}

/// Refusing a connection must not hold up accepting the next one. With
/// both workers held, 120 connections arrive at once: each is refused
/// after at most the 50 ms grace, counted from when it was accepted, so
/// all are answered in well under a second. When the grace was spent in
/// the accepting thread, one after the other, the last one waited
/// 120 × 50 ms = 6 s at the very least (a sleep never ends early), so the
/// 3 s bound below cannot pass by luck and cannot fail for lack of speed
/// short of a machine 50 times slower than this test needs.
#[test]
fn refusing_connections_never_stalls_accepting() {
    let m = populated();
    let config = HttpConfig {
        workers: 2,
        read_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    let addr = server.local_addr();
    // Two silent connections hold both workers.
    let _a = TcpStream::connect(addr).unwrap();
    let _b = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().rejected_connections == 0 && Instant::now() < deadline {
        // Probe until the workers are taken for sure.
        if get(addr, "/health", "").status == 503 {
            break;
        }
    }
    let before = server.stats().rejected_connections;
    assert!(before >= 1, "the two workers were never both busy");
    // Fewer than the listen backlog (128), so none waits on the kernel.
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for stream in &mut flood {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        assert_eq!(parse(&bytes).status, 503);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "120 refusals took {took:?}: refusing stalls accepting"
    );
    assert_eq!(server.stats().rejected_connections, before + 120);
}

/// A worker that frees up within the grace takes the waiting connection
/// instead of it being refused.
#[test]
fn a_connection_waits_briefly_for_a_worker_that_frees_up() {
    let m = populated();
    let server = HttpServer::start(&m, "127.0.0.1:0", quick(1)).unwrap();
    let addr = server.local_addr();
    for _ in 0..20 {
        // Closing the only connection and reconnecting at once: the worker
        // may not have noticed the close yet.
        let mut held = TcpStream::connect(addr).unwrap();
        held.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = [0u8; 12];
        held.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        drop(held);
        assert_eq!(get(addr, "/health", "").status, 200);
    }
    assert_eq!(server.stats().rejected_connections, 0);
}

/// Found by fuzzing (`fuzz/regressions/http_request_head/`): a head past
/// the size limit with a malformed byte beyond the limit got `400` when it
/// arrived in one read and `431` when it arrived in pieces. Only the first
/// `max_request_bytes` are parsed now: `431` however it arrives.
#[test]
fn a_head_past_the_limit_gets_431_however_it_arrives() {
    let m = populated();
    let config = HttpConfig {
        max_request_bytes: 256,
        ..quick(1)
    };
    let server = HttpServer::start(&m, "127.0.0.1:0", config).unwrap();
    let mut raw = b"GET /metrics HTTP/1.1\r\nX-Long: ".to_vec();
    raw.resize(300, b'a');
    raw.extend_from_slice(b"\x01\r\n\r\n");
    // All at once (one read on loopback), then a byte at a time.
    assert_eq!(exchange(server.local_addr(), &raw).status, 431);
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // Exactly the limit: enough to know, and nothing left unread.
    for b in &raw[..256] {
        stream.write_all(&[*b]).unwrap();
    }
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    assert_eq!(parse(&bytes).status, 431);
}
