//! A small synchronous HTTP endpoint (cargo feature `http`): `/metrics`,
//! `/metrics.json`, `/health`, a live page at `/` and the JSON query API
//! behind its charts at `/api/query`, with no async runtime.
//!
//! With [`HttpConfig::auth`] set, every route asks for that bearer token or
//! basic-auth credential ([`HttpAuth`]) and answers `401` without it.
//!
//! The page and the query API read a [`History`](crate::history::History)
//! when the server was started with one
//! ([`HttpServer::start_with_history`], feature `history`), otherwise a ring
//! of the last [`HttpConfig::recent_snapshots`] snapshots, one taken every
//! [`HttpConfig::recent_interval`] by a thread of the server's.
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

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::prometheus::{render_protobuf, TextFormat, TextRenderer};
use crate::error::Error;
use crate::registry::MetricsCollector;
use crate::snapshot::Snapshot;

mod api;
mod auth;
mod config;
#[cfg(feature = "history")]
mod history;
mod page;
mod recent;
pub(crate) mod request;
mod response;

pub use api::MAX_SERIES;
pub use auth::HttpAuth;
pub use config::HttpConfig;

use request::RequestReader;
use response::{route, write_response, Response};

/// Serves `collector` on `addr` with the default [`HttpConfig`].
///
/// Pass `"127.0.0.1:0"` for an ephemeral port ([`HttpServer::local_addr`]
/// tells which). Binding to all interfaces (`0.0.0.0`) is the caller's
/// explicit choice; nothing here defaults to it.
///
/// ```
/// use std::io::{Read, Write};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("requests_total", &[]).inc();
/// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
///
/// // Scrape it the way Prometheus would:
/// let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
/// let mut reply = String::new();
/// conn.read_to_string(&mut reply).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 200"));
/// assert!(reply.contains("requests_total 1"));
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
    sampler: Option<JoinHandle<()>>,
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
#[non_exhaustive]
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
        Self::start_inner(collector, addr, config, None)
    }

    /// Like [`start`](Self::start), with the page's charts and
    /// `/api/query` answered from `history` (which the program feeds, for
    /// example through a [`Reporter`](crate::export::Reporter)) instead of
    /// a ring of recent snapshots: no ring is kept and no thread takes
    /// snapshots for it.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use vitals::history::History;
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.gauge("queue_depth", &[]).set(3.0);
    /// let history = Arc::new(History::new());
    /// history.ingest(&metrics.snapshot()).unwrap();
    /// let config = vitals::export::HttpConfig::default();
    /// let server = vitals::export::HttpServer::start_with_history(
    ///     &metrics, "127.0.0.1:0", config, Arc::clone(&history)).unwrap();
    ///
    /// let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// conn.write_all(b"GET /api/query?name=queue_depth HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    /// let mut reply = String::new();
    /// conn.read_to_string(&mut reply).unwrap();
    /// let body: serde_json::Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    /// assert_eq!(body["source"], "history");
    /// assert_eq!(body["series"][0]["points"][0][1], 3.0);
    /// ```
    #[cfg(feature = "history")]
    pub fn start_with_history(
        collector: &MetricsCollector,
        addr: impl ToSocketAddrs,
        config: HttpConfig,
        history: Arc<crate::history::History>,
    ) -> Result<HttpServer, Error> {
        Self::start_inner(collector, addr, config, Some(history))
    }

    fn start_inner(
        collector: &MetricsCollector,
        addr: impl ToSocketAddrs,
        config: HttpConfig,
        #[cfg(feature = "history")] history: Option<Arc<crate::history::History>>,
        #[cfg(not(feature = "history"))] _history: Option<std::convert::Infallible>,
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
            recent: recent::ring(config.recent_snapshots),
            #[cfg(feature = "history")]
            history,
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
        #[cfg(feature = "history")]
        let ring_wanted = shared.history.is_none();
        #[cfg(not(feature = "history"))]
        let ring_wanted = true;
        let sampler = if ring_wanted && config.recent_snapshots > 0 {
            let (stop, shared) = (Arc::clone(&stop), Arc::clone(&shared));
            let handle = std::thread::Builder::new()
                .name("vitals-http-recent".into())
                .spawn(move || recent::sample(&shared, &stop))
                .map_err(|e| io_error("spawn", "snapshot ring thread", e))?;
            Some(handle)
        } else {
            None
        };
        Ok(HttpServer {
            addr,
            stop,
            acceptor: Some(acceptor),
            refuser: Some(refuser),
            sampler,
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
    /// let server = vitals::export::serve(&metrics, "127.0.0.1:0").unwrap();
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err()); // no longer listening
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
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
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
    /// Recent snapshots, oldest first (see [`recent`]).
    recent: Mutex<VecDeque<Arc<Snapshot>>>,
    #[cfg(feature = "history")]
    history: Option<Arc<crate::history::History>>,
}

/// One snapshot and whichever renderings of it were asked for.
struct Rendered {
    taken: Instant,
    snapshot: Arc<Snapshot>,
    prometheus: Option<Payload>,
    openmetrics: Option<Payload>,
    protobuf: Option<Payload>,
    json: Option<Payload>,
}

/// A response body, shared by the responses that send the same one.
type Payload = Arc<dyn AsRef<[u8]> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Prometheus,
    OpenMetrics,
    Protobuf,
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
    fn body(&self, kind: Body, arrived: Instant) -> Payload {
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
                protobuf: None,
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
            Body::Protobuf => &mut r.protobuf,
            Body::Json => &mut r.json,
        };
        Arc::clone(slot.get_or_insert_with(|| {
            match kind {
                Body::Prometheus => Arc::new(render_text(&snapshot, TextFormat::Prometheus)),
                Body::OpenMetrics => Arc::new(render_text(&snapshot, TextFormat::OpenMetrics)),
                Body::Protobuf => Arc::new(render_protobuf(&snapshot).0),
                Body::Json => Arc::new(
                    serde_json::to_string(&*snapshot)
                        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
                ),
            }
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
