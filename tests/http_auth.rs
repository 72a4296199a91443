//! Access control of the HTTP endpoint, through real sockets on loopback:
//! every route and method with a missing, wrong and right bearer token or
//! basic-auth credential, credentials refused at start, and a real
//! Prometheus scraping with `authorization` credentials (when installed;
//! CI installs it and sets VITALS_REQUIRE_TOOLS=1).
#![cfg(feature = "http")]

mod http_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_support::{free_port, populated, quick, request, require_tool, try_request, Child};
use serde_json::Value;
use vitals::export::{HttpAuth, HttpConfig, HttpServer};
use vitals::MetricsCollector;

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
