//! A small synchronous HTTP endpoint (cargo feature `http`): `/metrics`,
//! `/metrics.json` and `/health`, with no async runtime.
//!
//! Requests are parsed by `httparse`; everything around it is plain
//! `std::net` with hard bounds, because an endpoint that any client on the
//! network can reach must not be held hostage by one:
//!
//! * a fixed pool of worker threads, one connection each; when all are busy
//!   a new connection gets `503` and is closed unless a worker frees up
//!   within 50 ms (that wait is off the accepting thread: refusing never
//!   delays accepting),
//! * a request head larger than [`HttpConfig::max_request_bytes`] gets `431`,
//! * a request head must arrive within [`HttpConfig::read_timeout`] (a client
//!   sending one byte a second is cut off), and an idle keep-alive
//!   connection is closed after [`HttpConfig::idle_timeout`],
//! * request bodies are refused (`413`, and the connection closed): none of
//!   the routes takes one; a request whose length is ambiguous (conflicting
//!   or invalid `Content-Length`, or one beside `Transfer-Encoding`) gets
//!   `400` (RFC 9112 §6.3),
//! * requests a client sends before reading the previous response
//!   (pipelining) are answered in order, each as if it came alone.
//!
//! Concurrent scrapes share one snapshot for [`HttpConfig::snapshot_ttl`]
//! (and its renderings), so a burst of scrapes costs one snapshot.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::prometheus::{TextFormat, TextRenderer};
use crate::error::Error;
use crate::registry::MetricsCollector;
use crate::snapshot::Snapshot;

/// Limits and timings of an [`HttpServer`].
///
/// ```
/// use std::time::Duration;
/// let config = vitals::export::HttpConfig {
///     workers: 4,
///     snapshot_ttl: Duration::from_millis(250),
///     ..Default::default()
/// };
/// assert_eq!(config.max_request_bytes, 8 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Worker threads, and so the number of connections served at once
    /// (1..=1024; default 16). Further connections get `503`.
    pub workers: usize,
    /// Largest request head accepted (default 8 KiB); larger gets `431`.
    pub max_request_bytes: usize,
    /// Time a client has to send a whole request head (default 5 s).
    pub read_timeout: Duration,
    /// Time an idle keep-alive connection may hold a worker (default 10 s).
    pub idle_timeout: Duration,
    /// Time a response may take to be written (default 10 s).
    pub write_timeout: Duration,
    /// How long scrapes share one snapshot (default 500 ms; zero: never).
    pub snapshot_ttl: Duration,
    /// Requests served on one connection before it is closed (default 1000).
    pub max_requests_per_connection: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            workers: 16,
            max_request_bytes: 8 * 1024,
            read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            snapshot_ttl: Duration::from_millis(500),
            max_requests_per_connection: 1000,
        }
    }
}

impl HttpConfig {
    fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| Err(Error::InvalidConfig(format!("http: {what}")));
        if !(1..=1024).contains(&self.workers) {
            return bad("workers must be 1 to 1024");
        }
        if !(256..=1 << 20).contains(&self.max_request_bytes) {
            return bad("max_request_bytes must be 256 B to 1 MiB");
        }
        for (name, d) in [
            ("read_timeout", self.read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
                return bad(&format!("{name} must be 1 ms to 1 h"));
            }
        }
        if self.max_requests_per_connection == 0 {
            return bad("max_requests_per_connection must be at least 1");
        }
        Ok(())
    }
}

/// Serves `collector` on `addr` with the default [`HttpConfig`].
///
/// Pass `"127.0.0.1:0"` for an ephemeral port ([`HttpServer::local_addr`]
/// tells which). Binding to all interfaces (`0.0.0.0`) is the caller's
/// explicit choice; nothing here defaults to it.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("requests_total", &[]).inc();
/// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
/// println!("scrape http://{}/metrics", server.local_addr());
/// drop(server); // stops it
/// ```
pub fn serve(collector: &MetricsCollector, addr: impl ToSocketAddrs) -> Result<HttpServer, Error> {
    HttpServer::start(collector, addr, HttpConfig::default())
}

/// A running endpoint; dropping it (or [`shutdown`](HttpServer::shutdown))
/// stops accepting, lets the workers finish their current request, and joins
/// every thread.
///
/// ```
/// use vitals::export::{HttpConfig, HttpServer};
///
/// let metrics = vitals::MetricsCollector::new();
/// let config = HttpConfig { workers: 2, ..Default::default() };
/// let server = HttpServer::start(&metrics, "127.0.0.1:0", config).unwrap();
/// assert!(server.local_addr().ip().is_loopback());
/// server.shutdown();
/// ```
pub struct HttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    refuser: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

/// Counts kept by a server, for tests and status pages.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
/// assert_eq!(server.stats().requests, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpServerStats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Connections turned away with `503` because every worker was busy.
    pub rejected_connections: u64,
    /// Snapshots taken for scrapes (fewer than scrapes when they share).
    pub snapshots: u64,
}

#[derive(Debug, Default)]
struct HttpStats {
    requests: AtomicU64,
    rejected: AtomicU64,
    snapshots: AtomicU64,
}

impl HttpServer {
    /// Binds `addr` and starts the acceptor and worker threads.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let bad = vitals::export::HttpConfig { workers: 0, ..Default::default() };
    /// assert!(vitals::export::HttpServer::start(&metrics, "127.0.0.1:0", bad).is_err());
    /// ```
    pub fn start(
        collector: &MetricsCollector,
        addr: impl ToSocketAddrs,
        config: HttpConfig,
    ) -> Result<HttpServer, Error> {
        config.validate()?;
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| io_error("resolve", "the address", e))?
            .collect();
        let named = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| io_error("bind", &named, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| io_error("local_addr", &named, e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            collector: collector.clone(),
            config: config.clone(),
            cache: Mutex::new(None),
            stats: HttpStats::default(),
            active: AtomicUsize::new(0),
            open: (0..config.workers).map(|_| Mutex::new(None)).collect(),
        });
        // The acceptor and the refuser count connections in service
        // (`active`) and hand one over only while that is below the number
        // of workers,
        // so the queue never holds more than the workers can take at once.
        let (tx, rx) = sync_channel::<TcpStream>(config.workers);
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(config.workers);
        for i in 0..config.workers {
            let (rx, shared, stop) = (Arc::clone(&rx), Arc::clone(&shared), Arc::clone(&stop));
            let handle = std::thread::Builder::new()
                .name(format!("vitals-http-{i}"))
                .spawn(move || worker(i, &rx, &shared, &stop))
                .map_err(|e| io_error("spawn", "worker thread", e))?;
            workers.push(handle);
        }
        let (waiting_tx, waiting_rx) = sync_channel::<(Instant, TcpStream)>(WAITING);
        let refuser = {
            let (stop, shared, tx) = (Arc::clone(&stop), Arc::clone(&shared), tx.clone());
            std::thread::Builder::new()
                .name("vitals-http-refuse".into())
                .spawn(move || refuse_unless_freed(waiting_rx, tx, &shared, &stop))
                .map_err(|e| io_error("spawn", "refuser thread", e))?
        };
        let acceptor = {
            let (stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("vitals-http-accept".into())
                .spawn(move || accept(listener, tx, waiting_tx, &shared, &stop))
                .map_err(|e| io_error("spawn", "acceptor thread", e))?
        };
        Ok(HttpServer {
            addr,
            stop,
            acceptor: Some(acceptor),
            refuser: Some(refuser),
            workers,
            shared,
        })
    }

    /// The address the server listens on.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts so far.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
    /// assert_eq!(server.stats().snapshots, 0);
    /// ```
    pub fn stats(&self) -> HttpServerStats {
        let stats = &self.shared.stats;
        HttpServerStats {
            requests: stats.requests.load(Ordering::Relaxed),
            rejected_connections: stats.rejected.load(Ordering::Relaxed),
            snapshots: stats.snapshots.load(Ordering::Relaxed),
        }
    }

    /// Stops the server and waits for its threads.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::export::serve(&metrics, "127.0.0.1:0").unwrap().shutdown();
    /// ```
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the acceptor blocked in accept(); it sees the flag and drops
        // the channel, which releases idle workers.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // With the acceptor gone the refuser's queue ends; it drops what is
        // still waiting, and its end of the workers' channel.
        if let Some(refuser) = self.refuser.take() {
            let _ = refuser.join();
        }
        // Workers blocked reading a slow or idle client are released by
        // closing their sockets under them.
        for open in self.shared.open.iter() {
            if let Some(stream) = open.lock().as_ref() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A failure to set the server up: binding its address, starting a thread.
fn io_error(operation: &'static str, target: impl std::fmt::Display, e: io::Error) -> Error {
    Error::io_on(operation, target.to_string(), e)
}

struct Shared {
    collector: MetricsCollector,
    config: HttpConfig,
    cache: Mutex<Option<Rendered>>,
    stats: HttpStats,
    /// Connections handed to workers and not yet finished.
    active: AtomicUsize,
    /// Each worker's current connection, so that shutdown can close it.
    open: Box<[Mutex<Option<TcpStream>>]>,
}

/// One snapshot and whichever renderings of it were asked for.
struct Rendered {
    taken: Instant,
    snapshot: Arc<Snapshot>,
    prometheus: Option<Arc<String>>,
    openmetrics: Option<Arc<String>>,
    json: Option<Arc<String>>,
}

#[derive(Clone, Copy)]
enum Body {
    Prometheus,
    OpenMetrics,
    Json,
}

impl Shared {
    /// Counts one more connection in service if a worker is free for it.
    fn take_slot(&self) -> bool {
        let workers = self.config.workers;
        self.active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < workers).then_some(n + 1)
            })
            .is_ok()
    }

    /// The body for `kind`, from a snapshot at most `snapshot_ttl` old or
    /// one started after this request `arrived`. Holding the lock while
    /// rendering is deliberate: scrapes arriving together wait for one
    /// snapshot instead of each taking their own, even with a zero TTL.
    fn body(&self, kind: Body, arrived: Instant) -> Arc<String> {
        let mut cache = self.cache.lock();
        let stale = cache
            .as_ref()
            .is_none_or(|r| r.taken.elapsed() >= self.config.snapshot_ttl && r.taken < arrived);
        if stale {
            self.stats.snapshots.fetch_add(1, Ordering::Relaxed);
            *cache = Some(Rendered {
                taken: Instant::now(),
                snapshot: Arc::new(self.collector.snapshot()),
                prometheus: None,
                openmetrics: None,
                json: None,
            });
        }
        let Some(r) = cache.as_mut() else {
            return Arc::new(String::new());
        };
        let snapshot = Arc::clone(&r.snapshot);
        let slot = match kind {
            Body::Prometheus => &mut r.prometheus,
            Body::OpenMetrics => &mut r.openmetrics,
            Body::Json => &mut r.json,
        };
        Arc::clone(slot.get_or_insert_with(|| {
            Arc::new(match kind {
                Body::Prometheus => render_text(&snapshot, TextFormat::Prometheus),
                Body::OpenMetrics => render_text(&snapshot, TextFormat::OpenMetrics),
                Body::Json => serde_json::to_string(&*snapshot)
                    .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
            })
        }))
    }

    fn snapshot(&self, arrived: Instant) -> Arc<Snapshot> {
        self.body(Body::Json, arrived);
        match self.cache.lock().as_ref() {
            Some(r) => Arc::clone(&r.snapshot),
            None => Arc::new(self.collector.snapshot()),
        }
    }
}

fn render_text(snapshot: &Snapshot, format: TextFormat) -> String {
    let mut out = String::with_capacity(64 * 1024);
    TextRenderer::new(format).render_into(snapshot, &mut out);
    out
}

/// How long a connection that finds every worker busy waits for one to
/// free up before it is refused: a worker that has just finished may not
/// have given its slot back yet when its client reconnects.
const GRACE: Duration = Duration::from_millis(50);

/// Connections waiting out their grace at once; beyond that a connection
/// is refused at once.
const WAITING: usize = 1024;

/// Accepts connections and hands each to a worker, or when every worker is
/// busy to the refuser thread ([`refuse_unless_freed`]). It never sleeps
/// or waits on a client, so a flood of refused connections does not delay
/// the ones behind them.
fn accept(
    listener: TcpListener,
    tx: SyncSender<TcpStream>,
    waiting: SyncSender<(Instant, TcpStream)>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors and the like: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if shared.take_slot() {
            if tx.send(stream).is_err() {
                return;
            }
            continue;
        }
        match waiting.try_send((Instant::now(), stream)) {
            Ok(()) => {}
            Err(TrySendError::Full((_, stream))) => refuse(&stream, shared),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Gives each connection that found every worker busy its [`GRACE`]
/// (counted from when it was accepted, so a queue of them waits 50 ms in
/// all, not 50 ms each), hands it to a worker that frees up in time, and
/// refuses it otherwise.
fn refuse_unless_freed(
    waiting: Receiver<(Instant, TcpStream)>,
    tx: SyncSender<TcpStream>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    while let Ok((accepted, stream)) = waiting.recv() {
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if shared.take_slot() {
                if tx.send(stream).is_err() {
                    return;
                }
                break;
            }
            if accepted.elapsed() >= GRACE {
                refuse(&stream, shared);
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Answers `503` and closes, without waiting on the client: a fresh
/// connection's send buffer takes the short answer at once, and a client
/// that cannot take it loses it.
fn refuse(stream: &TcpStream, shared: &Shared) {
    shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nonblocking(true);
    // Whatever request arrived is read first: closing a socket with unread
    // bytes resets the connection, which can cost the client the answer.
    let mut sink = [0u8; 4096];
    while matches!((&mut &*stream).read(&mut sink), Ok(n) if n > 0) {}
    let busy = Response::text(503, "all workers busy\n").header("Retry-After", "1");
    let _ = write_response(stream, &busy, false, false);
    let _ = stream.shutdown(Shutdown::Both);
}

fn worker(index: usize, rx: &Mutex<Receiver<TcpStream>>, shared: &Shared, stop: &AtomicBool) {
    loop {
        let next = rx.lock().recv();
        let Ok(stream) = next else { return };
        let mut released = false;
        if !stop.load(Ordering::SeqCst) {
            *shared.open[index].lock() = stream.try_clone().ok();
            if stop.load(Ordering::SeqCst) {
                // Shutdown may have passed this slot before it was filled.
                let _ = stream.shutdown(Shutdown::Both);
            }
            released = serve_connection(&stream, shared, stop);
            *shared.open[index].lock() = None;
        }
        if !released {
            shared.active.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = stream.shutdown(Shutdown::Both);
    }
}

/// Serves requests on one connection until it closes, errs, idles out or
/// reaches the per-connection request cap. Returns whether it already gave
/// its worker slot back: it does so before a response that ends the
/// connection, because a client that reconnects as soon as it reads
/// `Connection: close` must not find every worker busy.
fn serve_connection(stream: &TcpStream, shared: &Shared, stop: &AtomicBool) -> bool {
    let release = || {
        shared.active.fetch_sub(1, Ordering::SeqCst);
        true
    };
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.write_timeout));
    let mut requests = RequestReader::default();
    for served in 0..config.max_requests_per_connection {
        let first = served == 0;
        let request = match requests.next(&mut { stream }, config, first) {
            Ok(Some(request)) => request,
            Ok(None) => return false, // closed or idle
            Err(response) => {
                shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                let released = release();
                let _ = write_response(stream, &response, false, false);
                return released;
            }
        };
        let last = served + 1 == config.max_requests_per_connection
            || !request.keep_alive
            || stop.load(Ordering::SeqCst);
        let response = route(&request, shared);
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        if last {
            let released = release();
            let _ = write_response(stream, &response, request.head, false);
            return released;
        }
        if write_response(stream, &response, request.head, true).is_err() {
            return false;
        }
    }
    false
}

pub(crate) struct Request {
    arrived: Instant,
    method: String,
    path: String,
    accept: String,
    keep_alive: bool,
    head: bool,
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
        // `HttpConfig::validate` keeps read_timeout within 1 ms..=1 h, so
        // adding it to an Instant cannot overflow.
        let mut deadline: Option<Instant> =
            (!self.buf.is_empty()).then(|| Instant::now() + config.read_timeout);
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
                deadline = Some(if first {
                    now + config.read_timeout
                } else {
                    Instant::now() + config.read_timeout
                });
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
    let path = target.split('?').next().unwrap_or(target).to_owned();
    Ok(Request {
        arrived: Instant::now(),
        head: method == "HEAD",
        method: method.to_owned(),
        path,
        accept: header("accept").unwrap_or_default(),
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

fn route(request: &Request, shared: &Shared) -> Response {
    let arrived = request.arrived;
    if request.method != "GET" && request.method != "HEAD" {
        return Response::text(405, "only GET and HEAD\n").header("Allow", "GET, HEAD");
    }
    match request.path.as_str() {
        "/metrics" => {
            let openmetrics = request.accept.contains("application/openmetrics-text");
            let (kind, format) = if openmetrics {
                (Body::OpenMetrics, TextFormat::OpenMetrics)
            } else {
                (Body::Prometheus, TextFormat::Prometheus)
            };
            Response::shared(200, format.content_type(), shared.body(kind, arrived))
        }
        "/metrics.json" => Response::shared(200, JSON, shared.body(Body::Json, arrived)),
        "/health" => health(&shared.snapshot(arrived)),
        _ => Response::text(404, "not found: try /metrics, /metrics.json or /health\n"),
    }
}

const JSON: &str = "application/json";

/// `/health`: every dependency reported by a health plug-in (gauges named
/// `health_status{dependency,status}`), 503 when any is down.
fn health(snapshot: &Snapshot) -> Response {
    let mut dependencies: Vec<(String, String)> = Vec::new();
    for gauge in snapshot
        .gauges
        .iter()
        .filter(|g| &*g.name == "health_status")
    {
        if gauge.value == 1.0 {
            if let (Some(dep), Some(status)) =
                (gauge.labels.get("dependency"), gauge.labels.get("status"))
            {
                dependencies.push((dep.to_owned(), status.to_owned()));
            }
        }
    }
    let worst = if dependencies.iter().any(|(_, s)| s == "down") {
        "down"
    } else if dependencies.iter().any(|(_, s)| s == "degraded") {
        "degraded"
    } else {
        "up"
    };
    let body = serde_json::json!({
        "status": worst,
        "dependencies": dependencies
            .iter()
            .map(|(name, status)| serde_json::json!({"name": name, "status": status}))
            .collect::<Vec<_>>(),
    });
    let code = if worst == "down" { 503 } else { 200 };
    Response::shared(code, JSON, Arc::new(body.to_string()))
}

pub(crate) struct Response {
    status: u16,
    content_type: &'static str,
    body: Arc<String>,
    extra: Vec<(&'static str, &'static str)>,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Response::shared(
            status,
            "text/plain; charset=utf-8",
            Arc::new(body.to_owned()),
        )
    }

    fn shared(status: u16, content_type: &'static str, body: Arc<String>) -> Self {
        Response {
            status,
            content_type,
            body,
            extra: Vec::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.extra.push((name, value));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn write_response(
    stream: &TcpStream,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    for (name, value) in &response.extra {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = stream;
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all(response.body.as_bytes())?;
    }
    out.flush()
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
            accept: String,
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
                        accept: request.accept,
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
