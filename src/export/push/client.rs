//! A minimal HTTP/1.1 client on `std::net`: one request per connection,
//! connect and whole-request timeouts, responses parsed with `httparse`;
//! `https://` with rustls (feature `tls`).
//!
//! Push exporters send a request every few seconds at most, so a new
//! connection per request costs nothing that matters and leaves no pooled
//! socket to go stale behind a load balancer.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::clock::deadline_after;
use crate::error::Error;

/// Longest response head read (status line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most of an error response's body kept for the error message.
const MAX_BODY_BYTES: usize = 1024;
/// Headers parsed without an allocation; a head with more gets room for
/// as many as it has lines.
const MAX_HEADERS: usize = 64;
/// Most bytes of interim (`1xx`) responses read before the final one.
const MAX_INTERIM_BYTES: usize = 4 * MAX_HEAD_BYTES;

/// Where requests go: parsed once from the configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Host name or address, without brackets (for resolving).
    host: String,
    port: u16,
    /// `Host` header value (`host`, `host:port`, `[::1]:port`).
    authority: String,
    /// Path prefix without a trailing `/` (empty for the root).
    pub(crate) path: String,
    /// `https://`.
    tls: bool,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`. The path keeps what the user
    /// wrote (already URL-encoded), less a trailing `/`.
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Err(Error::InvalidConfig(format!("push URL {url:?}: {why}")));
        let (rest, tls) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            if !cfg!(feature = "tls") {
                return bad("https needs the `tls` feature of vitals");
            }
            (rest, true)
        } else {
            return bad("must start with http:// or https://");
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return bad("no query or fragment allowed");
        }
        if authority.contains('@') {
            return bad("credentials in the URL are not supported (use the auth settings)");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some(end) = v6.find(']') else {
                return bad("unclosed [ in the host");
            };
            let port = &v6[end + 1..];
            let port = match port.strip_prefix(':') {
                Some(p) => Some(p),
                None if port.is_empty() => None,
                None => return bad("junk after ]"),
            };
            if v6[..end].parse::<std::net::Ipv6Addr>().is_err() {
                return bad("what is in [ ] is not an IPv6 address");
            }
            (&v6[..end], port)
        } else {
            match authority.split_once(':') {
                // A second colon: an IPv6 address without its brackets.
                Some((_, p)) if p.contains(':') => {
                    return bad("an IPv6 address must be in [ ]");
                }
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad("no host");
        }
        if host
            .bytes()
            .any(|b| b.is_ascii_control() || b" []<>\\^`{|}\"".contains(&b) || b > 0x7e)
        {
            return bad("the host has a space, a control, a non-ASCII or a reserved character");
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            // Digits only: `parse` alone would take `+80`, which the
            // `Host` header would then carry.
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return bad("the port must be 1 to 65535"),
            },
        };
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b > 0x7e)
        {
            return bad("the path has a space, a control or a non-ASCII character");
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path: path.trim_end_matches('/').to_owned(),
            tls,
        })
    }
}

/// Timeouts of every request an exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Per address tried.
    pub(crate) connect: Duration,
    /// From the first byte written to the end of the response head.
    pub(crate) request: Duration,
}

impl Timeouts {
    /// Checks both are 1 ms to 1 h (`Duration::MAX` is refused, not
    /// overflowed).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (name, d) in [
            ("connect_timeout", self.connect),
            ("request_timeout", self.request),
        ] {
            if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be 1 ms to 1 h, not {d:?}"
                )));
            }
        }
        Ok(())
    }
}

/// One request to send.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'static str,
    /// Path (and nothing else) appended to the endpoint's path.
    pub(crate) path: &'a str,
    /// Extra headers; `Host`, `Content-Length`, `Connection` and
    /// `User-Agent` are added.
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: &'a [u8],
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub(crate) retry_after: Option<Duration>,
    /// The start of the body of a non-2xx response, for the error message.
    pub(crate) body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No address of the host accepted a connection (or none resolved).
    Connect(String),
    /// The connection was made but the response did not come in time.
    Timeout,
    /// Reading or writing failed, or the peer closed early.
    Io(String),
    /// The peer answered something that is not an HTTP/1.x response.
    BadResponse(String),
}

impl Failure {
    /// The `cause` label of `vitals_push_failed_requests_total`.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Timeout => "timeout",
            Failure::Io(_) => "io",
            Failure::BadResponse(_) => "bad_response",
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Connect(m) => format!("cannot connect: {m}"),
            Failure::Timeout => "no response within the request timeout".into(),
            Failure::Io(m) => format!("connection failed: {m}"),
            Failure::BadResponse(m) => format!("not an HTTP response: {m}"),
        }
    }
}

/// Sends requests to one endpoint.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    pub(crate) endpoint: Endpoint,
    timeouts: Timeouts,
    user_agent: String,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::Tls>,
}

impl HttpClient {
    /// A client of `endpoint` with the config's timeouts and, for an
    /// `https://` endpoint, its trusted certificates.
    pub(crate) fn new(endpoint: Endpoint, config: &super::DeliveryConfig) -> Result<Self, Error> {
        #[cfg(feature = "tls")]
        let tls = match endpoint.tls {
            true => Some(super::tls::Tls::new(
                &endpoint.host,
                &config.extra_root_certificates,
            )?),
            false => None,
        };
        Ok(HttpClient {
            endpoint,
            timeouts: config.timeouts(),
            user_agent: format!("vitals/{}", env!("CARGO_PKG_VERSION")),
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// Sends one request on a new connection and reads the response head
    /// (and up to 1 KiB of a non-2xx body).
    pub(crate) fn send(&self, request: &Request<'_>) -> Result<Response, Failure> {
        let mut stream = self.connect()?;
        let deadline = deadline_after(Instant::now(), self.timeouts.request);
        stream.timed().deadline = deadline;
        let _ = stream.timed().tcp.set_nodelay(true);

        let mut head = String::with_capacity(256);
        head.push_str(request.method);
        head.push(' ');
        head.push_str(&self.endpoint.path);
        head.push_str(request.path);
        if self.endpoint.path.is_empty() && request.path.is_empty() {
            head.push('/');
        }
        head.push_str(" HTTP/1.1\r\nHost: ");
        head.push_str(&self.endpoint.authority);
        head.push_str("\r\nUser-Agent: ");
        head.push_str(&self.user_agent);
        head.push_str("\r\nConnection: close\r\nContent-Length: ");
        head.push_str(itoa::Buffer::new().format(request.body.len()));
        head.push_str("\r\n");
        for (name, value) in request.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        write_all(&mut stream, head.as_bytes(), deadline)?;
        write_all(&mut stream, request.body, deadline)?;
        stream.flush().map_err(|e| match is_timeout(&e) {
            true => Failure::Timeout,
            false => Failure::Io(e.to_string()),
        })?;
        read_response(&mut stream, deadline)
    }

    fn connect(&self) -> Result<Stream, Failure> {
        let addrs = (self.endpoint.host.as_str(), self.endpoint.port)
            .to_socket_addrs()
            .map_err(|e| Failure::Connect(format!("{}: {e}", self.endpoint.host)))?;
        let mut last = None;
        for addr in addrs {
            let timed = |tcp| Timed {
                tcp,
                // Set by `send` once connected.
                deadline: Instant::now(),
            };
            match TcpStream::connect_timeout(&addr, self.timeouts.connect).map(timed) {
                #[cfg(feature = "tls")]
                Ok(tcp) if self.tls.is_some() => {
                    let tls = self.tls.as_ref().map(|t| t.wrap(tcp));
                    return match tls {
                        Some(Ok(stream)) => Ok(Stream::Tls(Box::new(stream))),
                        Some(Err(e)) => Err(Failure::Connect(e)),
                        None => Err(Failure::Connect("no TLS configuration".into())),
                    };
                }
                Ok(tcp) => return Ok(Stream::Plain(tcp)),
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        Err(Failure::Connect(last.unwrap_or_else(|| {
            format!("{}: no address", self.endpoint.host)
        })))
    }
}

/// A connection: plain TCP, or TLS over it.
enum Stream {
    Plain(Timed),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
}

impl Stream {
    /// The socket.
    fn timed(&mut self) -> &mut Timed {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_mut(),
        }
    }
}

/// A socket of which every read and write may take only the time left
/// before the request's deadline. One read or write of a TLS stream
/// reads and writes the socket many times (the handshake): each of them
/// must not be given the whole timeout afresh, or a peer trickling bytes
/// holds the request far beyond it.
struct Timed {
    tcp: TcpStream,
    deadline: Instant,
}

impl Timed {
    fn left(&self) -> std::io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request timeout passed",
            )),
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A server that closes after its response without a TLS
            // close_notify (common with `Connection: close`) ends the
            // stream like a plain close: the response head is complete or
            // the parser says it is not.
            #[cfg(feature = "tls")]
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, Failure> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(Failure::Timeout),
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Writes all of `bytes` (the socket's own reads and writes stop at the
/// deadline: see [`Timed`]).
fn write_all(stream: &mut Stream, mut bytes: &[u8], deadline: Instant) -> Result<(), Failure> {
    while !bytes.is_empty() {
        remaining(deadline)?;
        match stream.write(bytes) {
            Ok(0) => return Err(Failure::Io("the peer stopped reading".into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(Failure::Timeout),
            Err(e) => return Err(Failure::Io(e.to_string())),
        }
    }
    Ok(())
}

/// Reads into `buf` once; `Ok(0)` is end of stream.
fn read_some(stream: &mut Stream, buf: &mut [u8], deadline: Instant) -> Result<usize, Failure> {
    loop {
        remaining(deadline)?;
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(Failure::Timeout),
            Err(e) => return Err(Failure::Io(e.to_string())),
        }
    }
}

/// What a complete response head says.
struct Head {
    /// Its length in bytes.
    len: usize,
    status: u16,
    retry_after: Option<Duration>,
    content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    chunked: bool,
}

/// Parses the response head at the start of `buf`: `None` while it is
/// incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, httparse::Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse_head_into(buf, &mut headers) {
        Err(httparse::Error::TooManyHeaders) => {
            // No more headers than lines; `buf` is at most 16 KiB.
            let lines = buf.iter().filter(|&&b| b == b'\n').count();
            let mut headers = vec![httparse::EMPTY_HEADER; lines + 1];
            parse_head_into(buf, &mut headers)
        }
        other => other,
    }
}

fn parse_head_into<'b>(
    buf: &'b [u8],
    headers: &mut [httparse::Header<'b>],
) -> Result<Option<Head>, httparse::Error> {
    let mut parsed = httparse::Response::new(headers);
    let httparse::Status::Complete(len) = parsed.parse(buf)? else {
        return Ok(None);
    };
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    // Seconds as digits only (`+5` is not a delay).
    let number = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| v.parse::<u64>().ok())
            .flatten()
    };
    Ok(Some(Head {
        len,
        status: parsed.code.unwrap_or(0),
        retry_after: header("retry-after")
            .and_then(number)
            .map(Duration::from_secs),
        content_length: header("content-length")
            .and_then(number)
            .and_then(|n| usize::try_from(n).ok()),
        chunked: header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().ends_with("chunked")),
    }))
}

/// The data of the whole chunks at the start of a chunked body (the error
/// message's text, without the framing); stops at the last chunk, at
/// anything malformed, or where `raw` was cut.
fn unchunk(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") {
        // `size[;extensions]`, in hex.
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|l| l.split(';').next())
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|l| usize::from_str_radix(l, 16).ok());
        let Some(size) = size.filter(|&n| n > 0) else {
            break;
        };
        let data = &rest[line_end + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        rest = &data[size + 2..];
    }
    out
}

fn read_response(stream: &mut Stream, deadline: Instant) -> Result<Response, Failure> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    // Whether `buf` may hold a complete head not parsed yet (after an
    // interim 1xx response was taken off its front).
    let mut parse_first = false;
    let mut interim_bytes = 0;
    loop {
        if !parse_first {
            let n = read_some(stream, &mut chunk, deadline)?;
            if n == 0 {
                return Err(if buf.is_empty() && interim_bytes == 0 {
                    Failure::Io("the peer closed the connection without answering".into())
                } else {
                    Failure::BadResponse(
                        "the peer closed the connection inside the response head".into(),
                    )
                });
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse_first = false;
        match parse_head(&buf) {
            Ok(Some(head)) => {
                let status = head.status;
                if status < 100 {
                    return Err(Failure::BadResponse(format!("status {status}")));
                }
                // An interim response (`100 Continue`, `103 Early Hints`):
                // the final one follows on the same connection. As many
                // as fit in 64 KiB, within the request timeout.
                if status < 200 && status != 101 {
                    interim_bytes += head.len;
                    if interim_bytes > MAX_INTERIM_BYTES {
                        return Err(Failure::BadResponse(format!(
                            "more than {MAX_INTERIM_BYTES} bytes of interim responses"
                        )));
                    }
                    buf.drain(..head.len);
                    parse_first = !buf.is_empty();
                    continue;
                }
                let mut body = buf.split_off(head.len);
                if !(200..300).contains(&status) {
                    // Keep the start of the body for the error message; a
                    // failure to read it costs only the message.
                    let want = head
                        .content_length
                        .unwrap_or(MAX_BODY_BYTES)
                        .min(MAX_BODY_BYTES);
                    while body.len() < want {
                        match read_some(stream, &mut chunk, deadline) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&chunk[..n]),
                        }
                    }
                    body.truncate(want);
                    if head.chunked {
                        body = unchunk(&body);
                    }
                } else {
                    body.clear();
                }
                return Ok(Response {
                    status,
                    retry_after: head.retry_after,
                    body,
                });
            }
            Ok(None) if buf.len() < MAX_HEAD_BYTES => {}
            Ok(None) => {
                return Err(Failure::BadResponse(format!(
                    "response head longer than {MAX_HEAD_BYTES} bytes"
                )))
            }
            Err(e) => return Err(Failure::BadResponse(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
