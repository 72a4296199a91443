//! Reading requests: heads split out of what a client sends (pipelining
//! included), parsed by `httparse`, with the endpoint's bounds.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{HttpConfig, Response};
use crate::clock::deadline_after;

pub(crate) struct Request {
    pub(super) arrived: Instant,
    pub(super) method: String,
    pub(super) path: String,
    /// What follows `?` in the target (empty when none).
    pub(super) query: String,
    pub(super) accept: String,
    /// The `Authorization` header, when sent.
    pub(super) authorization: Option<String>,
    pub(super) keep_alive: bool,
    pub(super) head: bool,
}

/// Where request bytes come from: a socket, or bytes in memory for the
/// fuzzers.
pub(crate) trait Source {
    /// Reads into `buf`, waiting at most `wait` for the first byte.
    fn read_within(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize>;
}

impl Source for &TcpStream {
    fn read_within(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<usize> {
        let _ = self.set_read_timeout(Some(wait));
        self.read(buf)
    }
}

/// Splits what a client sends on one connection into request heads.
/// Bytes received past a head are kept as the start of the next one: a
/// client may send several requests before reading any response
/// (pipelining), and each gets its response, in order.
#[derive(Debug, Default)]
pub(crate) struct RequestReader {
    /// Received and not yet used.
    buf: Vec<u8>,
}

/// How much of [`RequestReader::buf`] holds a request head.
enum Head {
    Complete(Request, usize),
    Partial,
}

impl RequestReader {
    /// Reads the next request head. `Ok(None)`: the client closed or stayed
    /// idle. `Err`: answer with that response and close.
    pub(crate) fn next(
        &mut self,
        source: &mut impl Source,
        config: &HttpConfig,
        first: bool,
    ) -> Result<Option<Request>, Response> {
        let mut chunk = [0u8; 1024];
        // The idle wait for the next request on a kept-alive connection has
        // its own (longer) limit; once a byte arrives the head must be
        // complete within read_timeout. A pipelined request has arrived.
        let mut deadline: Option<Instant> =
            (!self.buf.is_empty()).then(|| deadline_after(Instant::now(), config.read_timeout));
        loop {
            if !self.buf.is_empty() {
                // Only the first max_request_bytes can hold the head: the
                // parser never sees past them, so the answer does not
                // depend on how many more bytes happened to arrive at once.
                let limit = self.buf.len().min(config.max_request_bytes);
                match parse_head(&self.buf[..limit])? {
                    Head::Complete(request, len) => {
                        self.buf.drain(..len);
                        return Ok(Some(request));
                    }
                    Head::Partial if self.buf.len() >= config.max_request_bytes => {
                        return Err(Response::text(431, "request head too large\n"));
                    }
                    Head::Partial => {}
                }
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(now) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Err(Response::text(408, "request head took too long\n")),
                },
                None if first => config.read_timeout,
                None => config.idle_timeout,
            };
            let n = match source.read_within(&mut chunk, wait) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return if self.buf.is_empty() && !first {
                        Ok(None)
                    } else {
                        Err(Response::text(408, "request head took too long\n"))
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(None),
            };
            if deadline.is_none() {
                deadline = Some(deadline_after(
                    if first { now } else { Instant::now() },
                    config.read_timeout,
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The request head at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8]) -> Result<Head, Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(Head::Partial),
        Ok(httparse::Status::Complete(len)) => Ok(Head::Complete(request_from(&parsed)?, len)),
        Err(httparse::Error::TooManyHeaders) => Err(Response::text(431, "too many headers\n")),
        Err(_) => Err(Response::text(400, "malformed request\n")),
    }
}

fn request_from(parsed: &httparse::Request<'_, '_>) -> Result<Request, Response> {
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Response::text(400, "malformed request\n"));
    };
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    match body_length(parsed.headers) {
        Ok(0) => {}
        Ok(_) => return Err(Response::text(413, "request bodies are not accepted\n")),
        Err(why) => return Err(Response::text(400, why)),
    }
    let connection = header("connection")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let keep_alive = if version == 1 {
        !connection.contains("close")
    } else {
        connection.contains("keep-alive")
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        arrived: Instant::now(),
        head: method == "HEAD",
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        accept: header("accept").unwrap_or_default(),
        authorization: header("authorization"),
        keep_alive,
    })
}

/// The length of the request's body, by RFC 9112 §6.3, or why its framing
/// is invalid (answered `400`: a request whose end the server cannot know
/// for sure could smuggle a second one past it). Any body at all is refused
/// with `413` and the connection closed, so a body is never read as the
/// next request.
fn body_length(headers: &[httparse::Header<'_>]) -> Result<u64, &'static str> {
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let chunked = named("transfer-encoding").next().is_some();
    let mut length = None;
    // Every Content-Length field and every element of a list in one must
    // be the same decimal number (RFC 9110 §8.6 allows `5, 5`).
    for field in named("content-length") {
        for value in field.value.split(|b| *b == b',') {
            let value = value.trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err("invalid Content-Length\n");
            }
            // Digits only: past u64 it is merely too large.
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length\n");
            }
            length = Some(n);
        }
    }
    match (chunked, length) {
        (true, Some(_)) => Err("Transfer-Encoding with Content-Length\n"),
        (true, None) => Ok(u64::MAX),
        (false, length) => Ok(length.unwrap_or(0)),
    }
}

/// Reads `data` as everything a client sends on one connection, once in
/// reads of up to 1 KiB and once in reads of `piece` bytes, and panics
/// unless both give the same requests and answers: how bytes are split by
/// the network must not change what the server does (test support for the
/// fuzzers, see [`crate::fuzzing`]).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_requests(data: &[u8], piece: usize, max_request_bytes: usize) {
    /// Bytes in memory, handed out `piece` at a time.
    struct Pieces<'a> {
        data: &'a [u8],
        piece: usize,
    }
    impl Source for Pieces<'_> {
        fn read_within(&mut self, buf: &mut [u8], _wait: Duration) -> io::Result<usize> {
            let n = self.piece.max(1).min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Request {
            method: String,
            path: String,
            query: String,
            accept: String,
            authorization: Option<String>,
            keep_alive: bool,
        },
        Refused(u16),
    }
    let config = HttpConfig {
        max_request_bytes,
        ..HttpConfig::default()
    };
    let read = |piece: usize| {
        let mut source = Pieces { data, piece };
        let mut reader = RequestReader::default();
        let mut outcomes = Vec::new();
        for served in 0..64 {
            match reader.next(&mut source, &config, served == 0) {
                Ok(Some(request)) => {
                    assert!(!request.path.contains('?'), "query left in the path");
                    assert_eq!(request.head, request.method == "HEAD");
                    // What stays buffered never grows past one head and
                    // one read.
                    assert!(reader.buf.len() <= config.max_request_bytes + 1024);
                    let keep_alive = request.keep_alive;
                    outcomes.push(Outcome::Request {
                        method: request.method,
                        path: request.path,
                        query: request.query,
                        accept: request.accept,
                        authorization: request.authorization,
                        keep_alive,
                    });
                    if !keep_alive {
                        break;
                    }
                }
                Ok(None) => break,
                Err(response) => {
                    outcomes.push(Outcome::Refused(response.status));
                    break;
                }
            }
        }
        outcomes
    };
    assert_eq!(read(usize::MAX), read(piece), "piece size {piece}");
}
