//! The server's limits, timings, credential and recent-snapshot ring.

use std::time::Duration;

use super::auth::HttpAuth;
use crate::error::Error;

/// Limits and timings of an [`HttpServer`](super::HttpServer).
///
/// ```
/// use std::time::Duration;
/// let config = vitals::export::HttpConfig {
///     workers: 4,
///     snapshot_ttl: Duration::from_millis(250),
///     auth: Some(vitals::export::HttpAuth::bearer("s3cret")),
///     ..Default::default()
/// };
/// assert_eq!(config.max_request_bytes, 8 * 1024);
/// assert_eq!(config.recent_snapshots, 180);
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
    /// The credential every request must carry (default none: anyone who
    /// can connect may read). Set one before binding beyond loopback.
    pub auth: Option<HttpAuth>,
    /// Snapshots kept for the query API (`/api/query`) and the page's
    /// charts when the server has no [`History`](crate::history::History)
    /// (0..=10,000; default 180: with the default interval, the page's 15
    /// minutes; 0 keeps none and starts no thread). Memory: this many
    /// snapshots, without their lifetime bucket counts.
    pub recent_snapshots: usize,
    /// How often a snapshot is put in that ring (100 ms to 1 h; default
    /// 5 s). It is taken through the scrapes' shared snapshot, so a scrape
    /// and the ring within [`snapshot_ttl`](Self::snapshot_ttl) share one
    /// (and an interval shorter than that TTL keeps one snapshot per TTL).
    pub recent_interval: Duration,
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
            auth: None,
            recent_snapshots: 180,
            recent_interval: Duration::from_secs(5),
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), Error> {
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
        if self.recent_snapshots > 10_000 {
            return bad("recent_snapshots must be at most 10,000");
        }
        if self.recent_interval < Duration::from_millis(100)
            || self.recent_interval > Duration::from_secs(3600)
        {
            return bad("recent_interval must be 100 ms to 1 h");
        }
        if let Some(auth) = &self.auth {
            auth.validate()?;
        }
        Ok(())
    }
}
