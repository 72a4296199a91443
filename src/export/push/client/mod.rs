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

mod endpoint;
pub(crate) use endpoint::Endpoint;

/// Longest response head read (status line and headers).
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most of an error response's body kept for the error message.
const MAX_BODY_BYTES: usize = 1024;
/// Headers parsed without an allocation; a head with more gets room for
/// as many as it has lines.
const MAX_HEADERS: usize = 64;
/// Most bytes of interim (`1xx`) responses read before the final one.
const MAX_INTERIM_BYTES: usize = 4 * MAX_HEAD_BYTES;

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
mod tests;
