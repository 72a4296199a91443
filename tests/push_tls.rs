//! HTTPS push (feature `tls`) against a local TLS receiver whose
//! certificate authority and server certificate the test creates with the
//! `openssl` command; the receiver is Python's `ssl` + `http.server`. Both
//! tools skip the test when missing, and fail it with
//! `VITALS_REQUIRE_TOOLS=1` (as in CI).
#![cfg(all(feature = "tls", feature = "remote-write"))]

mod common;
mod push_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use push_support::{decode_write_request, label, require_tool, Child};
use vitals::export::push::{DeliveryConfig, RemoteWriteExporter};
use vitals::export::Exporter;
use vitals::MetricsCollector;

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn certificates(openssl: &str, dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new(openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=vitals test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

/// A one-request-at-a-time HTTPS receiver: answers 204 to every POST and
/// prints, per request, the path and the body's length, then the body as
/// hex, on one line each. Prints its port first.
const RECEIVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        print(self.path, len(body), body.hex(), flush=True)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

#[test]
fn remote_write_over_https_reaches_a_receiver_signed_by_a_private_ca() {
    let (Some(openssl), Some(python)) = (require_tool("openssl"), require_tool("python3")) else {
        return;
    };
    let dir = common::TempDir::new("push-tls");
    certificates(&openssl, dir.path());
    let mut child = Child(
        Command::new(python)
            .arg("-c")
            .arg(RECEIVER)
            .arg(dir.path().join("server.pem"))
            .arg(dir.path().join("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();

    let metrics = MetricsCollector::new();
    metrics
        .counter("jobs_total", &[("queue", "mail")])
        .increment(7);
    let config = |roots: Vec<String>| DeliveryConfig {
        request_timeout: Duration::from_secs(10),
        shutdown_deadline: Duration::from_secs(20),
        max_backoff: Duration::from_secs(1),
        extra_root_certificates: roots,
        ..DeliveryConfig::default()
    };

    // Trusting the private CA: delivered, and the body arrives intact.
    for host in ["127.0.0.1", "localhost"] {
        let mut exporter =
            RemoteWriteExporter::builder(format!("https://{host}:{port}/api/v1/write"))
                .delivery(config(vec![ca.clone()]))
                .build()
                .unwrap();
        exporter.export(&metrics.snapshot()).unwrap();
        exporter.flush().unwrap();
        let stats = exporter.stats();
        assert_eq!(stats.failed_requests, 0, "{host}: {stats:?}");
        assert!(stats.sent_points > 0, "{host}: {stats:?}");
        let line = lines.next().unwrap().unwrap();
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some("/api/v1/write"));
        let len: usize = parts.next().unwrap().parse().unwrap();
        let hex = parts.next().unwrap();
        let body: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(body.len(), len);
        let series = decode_write_request(&body);
        let jobs = series
            .iter()
            .find(|s| label(s, "__name__") == Some("jobs_total"))
            .unwrap();
        assert_eq!(label(jobs, "queue"), Some("mail"));
    }

    // Without the CA the certificate is unknown: the request fails, is
    // counted, and nothing arrives.
    let mut untrusting = RemoteWriteExporter::builder(format!("https://127.0.0.1:{port}/x"))
        .delivery(DeliveryConfig {
            shutdown_deadline: Duration::from_millis(500),
            ..config(Vec::new())
        })
        .build()
        .unwrap();
    untrusting.export(&metrics.snapshot()).unwrap();
    let _ = untrusting.flush();
    let stats = untrusting.stats();
    assert!(stats.failed_requests >= 1, "{stats:?}");
    assert_eq!(stats.sent_points, 0, "{stats:?}");

    // Trusted, but not for this name: the same server reached as
    // [::ffff:127.0.0.1], an address its certificate does not name.
    let misnamed = RemoteWriteExporter::builder(format!("https://[::ffff:127.0.0.1]:{port}/x"))
        .delivery(DeliveryConfig {
            shutdown_deadline: Duration::from_millis(500),
            ..config(vec![ca.clone()])
        })
        .build();
    let mut misnamed = misnamed.unwrap();
    misnamed.export(&metrics.snapshot()).unwrap();
    let _ = misnamed.flush();
    let stats = misnamed.stats();
    assert!(stats.failed_requests >= 1, "{stats:?}");
    assert_eq!(stats.sent_points, 0, "{stats:?}");
    let why = stats.last_error.unwrap_or_default();
    assert!(why.contains("not valid for name"), "{why}");

    // A certificate that does not parse is refused when building.
    let bad = RemoteWriteExporter::builder(format!("https://127.0.0.1:{port}/x"))
        .delivery(config(vec!["not a certificate".into()]))
        .build();
    assert!(matches!(bad, Err(vitals::Error::InvalidConfig(_))));
}

/// A peer that starts a TLS record and then trickles it a byte at a time:
/// the handshake reads the socket again and again inside one call, and
/// the request timeout bounds them all together, so dropping the exporter
/// returns within connect plus request timeout, not after the trickle.
#[test]
fn a_trickling_tls_peer_is_held_to_the_request_timeout() {
    use std::io::{Read, Write};
    use std::time::Instant;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut hello = [0u8; 4096];
        let _ = s.read(&mut hello);
        // A handshake record announcing 200 bytes, then 1 byte per 300 ms
        // for 6 s.
        let _ = s.write_all(&[0x16, 0x03, 0x03, 0x00, 0xc8]);
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(300));
            if s.write_all(&[2]).is_err() {
                return;
            }
        }
    });
    let metrics = MetricsCollector::new();
    metrics.counter("c_total", &[]).inc();
    let mut exporter = RemoteWriteExporter::builder(format!("https://127.0.0.1:{port}/w"))
        .delivery(DeliveryConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(500),
            ..DeliveryConfig::default()
        })
        .build()
        .unwrap();
    exporter.export(&metrics.snapshot()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(exporter);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "drop took {took:?}");
}
