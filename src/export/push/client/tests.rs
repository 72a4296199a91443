//! Tests of the push client: URLs, requests, responses, limits.

use super::*;
use std::net::TcpListener;

#[test]
fn urls_parse_or_are_refused_with_the_reason() {
    let e = Endpoint::parse("http://example.com:9091/push/").unwrap();
    assert_eq!(
        (
            e.host.as_str(),
            e.port,
            e.authority.as_str(),
            e.path.as_str()
        ),
        ("example.com", 9091, "example.com:9091", "/push")
    );
    let e = Endpoint::parse("http://[::1]:8080").unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.path.as_str()),
        ("::1", 8080, "")
    );
    assert_eq!(Endpoint::parse("http://h").unwrap().port, 80);
    let https = Endpoint::parse("https://h/");
    match cfg!(feature = "tls") {
        true => assert_eq!(https.unwrap().port, 443),
        false => assert!(https.unwrap_err().to_string().contains("`tls` feature")),
    }
    for bad in [
        "ftp://h",
        "http://",
        "http://h:0",
        "http://h:99999",
        "http://h:x",
        "http://u:p@h/",
        "http://h/a b",
        "http://h/a?q=1",
        "http://[::1",
        "http://h\0st/",
        "http://h/\u{e9}",
        // A sign in the port would reach the `Host` header.
        "http://h:+80/",
        "http://h:-1/",
        // IPv6 needs its brackets, and an address in them.
        "http://::1:9/w",
        "http://[zz]:80/",
        "http://h<x>/",
    ] {
        let err = Endpoint::parse(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig(_)), "{bad}: {err}");
    }
}

#[test]
fn a_chunked_error_body_is_read_without_its_framing() {
    assert_eq!(
        unchunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        b"hello world"
    );
    // Cut short, extensions, garbage sizes: what came whole.
    assert_eq!(unchunk(b"5;x=1\r\nhel"), b"hel");
    assert_eq!(
        unchunk(b"5\r\nhello\r\nffffffffffffffffffffff\r\n"),
        b"hello"
    );
    assert_eq!(unchunk(b"+5\r\nhello\r\n"), b"");
    assert_eq!(unchunk(b""), b"");
}

#[test]
fn timeouts_out_of_range_are_refused() {
    let ok = Timeouts {
        connect: Duration::from_secs(1),
        request: Duration::from_secs(1),
    };
    assert!(ok.validate().is_ok());
    for d in [Duration::ZERO, Duration::MAX, Duration::from_secs(3601)] {
        assert!(Timeouts { connect: d, ..ok }.validate().is_err());
        assert!(Timeouts { request: d, ..ok }.validate().is_err());
    }
}

/// Serves one connection with `reply`, returning what the client sent.
fn one_shot(reply: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read the head and the 5-byte body the tests send.
        while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"hello") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(reply).unwrap();
        got
    });
    (port, thread)
}

fn client(port: u16) -> HttpClient {
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/base")).unwrap();
    let config = super::super::DeliveryConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    HttpClient::new(endpoint, &config).unwrap()
}

fn post(c: &HttpClient) -> Result<Response, Failure> {
    c.send(&Request {
        method: "POST",
        path: "/x",
        headers: &[("Content-Type", "text/plain")],
        body: b"hello",
    })
}

#[test]
fn a_request_is_well_formed_and_the_status_read() {
    let (port, server) = one_shot(b"HTTP/1.1 204 No Content\r\n\r\n");
    let response = post(&client(port)).unwrap();
    assert_eq!(response.status, 204);
    let sent = String::from_utf8(server.join().unwrap()).unwrap();
    assert!(
        sent.starts_with("POST /base/x HTTP/1.1\r\nHost: 127.0.0.1:"),
        "{sent}"
    );
    assert!(sent.contains("\r\nContent-Length: 5\r\n"), "{sent}");
    assert!(sent.contains("\r\nContent-Type: text/plain\r\n"), "{sent}");
    assert!(sent.ends_with("\r\n\r\nhello"), "{sent}");
}

#[test]
fn retry_after_and_error_bodies_are_kept() {
    let (port, server) = one_shot(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nslow",
    );
    let response = post(&client(port)).unwrap();
    server.join().unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(response.body, b"slow");
}

/// Answers one request with `reply`, not minding a client that has
/// stopped reading.
fn answer_with(reply: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"hello") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(&reply);
    });
    port
}

#[test]
fn heads_and_interim_answers_past_their_limits_are_bad_responses() {
    let interim = "HTTP/1.1 100 Continue\r\n\r\n";
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let long_head = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(17 * 1024));
    let err = post(&client(answer_with(long_head.into_bytes()))).unwrap_err();
    assert_eq!(err.cause(), "bad_response", "{}", err.message());
    assert!(err.message().contains("16384"), "{}", err.message());
    // 60 KiB of interim answers are read; 70 KiB are too many.
    let within = format!("{}{ok}", interim.repeat(60 * 1024 / interim.len()));
    let response = post(&client(answer_with(within.into_bytes()))).unwrap();
    assert_eq!(response.status, 200);
    let past = format!("{}{ok}", interim.repeat(70 * 1024 / interim.len()));
    let err = post(&client(answer_with(past.into_bytes()))).unwrap_err();
    assert_eq!(err.cause(), "bad_response", "{}", err.message());
    assert!(err.message().contains("interim"), "{}", err.message());
}

#[test]
fn interim_responses_are_skipped() {
    let (port, server) = one_shot(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let response = post(&client(port)).unwrap();
    server.join().unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn garbage_and_early_close_are_bad_responses_not_panics() {
    let (port, server) = one_shot(b"SSH-2.0-OpenSSH\r\n\r\n");
    let err = post(&client(port)).unwrap_err();
    server.join().unwrap();
    assert_eq!(err.cause(), "bad_response", "{}", err.message());

    let (port, server) = one_shot(b"HTTP/1.1 200 OK\r\nContent-");
    let err = post(&client(port)).unwrap_err();
    server.join().unwrap();
    assert_eq!(err.cause(), "bad_response", "{}", err.message());

    let (port, server) = one_shot(b"");
    let err = post(&client(port)).unwrap_err();
    server.join().unwrap();
    assert_eq!(err.cause(), "io", "{}", err.message());
}

#[test]
fn nothing_listening_is_a_connect_failure() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = post(&client(port)).unwrap_err();
    assert_eq!(err.cause(), "connect", "{}", err.message());
}

#[test]
fn a_silent_peer_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let config = super::super::DeliveryConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let c = HttpClient::new(endpoint, &config).unwrap();
    // Accepted by the kernel (backlog), never answered.
    let err = post(&c).unwrap_err();
    assert_eq!(err.cause(), "timeout", "{}", err.message());
    drop(listener);
}
