//! Helpers of the push tests: a scripted fake HTTP receiver on loopback, a
//! remote-write body decoder written from the .proto field numbers, a
//! plain GET, and the tool check of `VITALS_REQUIRE_TOOLS`.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fake receiver does with one request.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answers with this status, extra head lines and body.
    Reply(u16, &'static str, &'static str),
    /// Writes these raw bytes and closes.
    Raw(&'static [u8]),
    /// Reads the request, then closes without a word.
    Close,
    /// Reads the request, then waits for the test's `release()` before
    /// closing without an answer.
    Hold,
    /// Waits, then answers with this status (no body).
    Slow(Duration, u16),
}

/// One request the fake receiver read.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

pub struct FakeReceiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Behaviour>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Mutex<Option<mpsc::Sender<()>>>,
    held: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeReceiver {
    /// Listens on a free loopback port; answers `script` in order, then
    /// `204` to everything.
    pub fn start(script: Vec<Behaviour>) -> Self {
        Self::start_on("127.0.0.1:0", script)
    }

    /// Listens on `addr` (to bring a receiver back on the port of one
    /// that was down).
    pub fn start_on(addr: &str, script: Vec<Behaviour>) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let receiver = FakeReceiver {
            addr,
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
            release: Mutex::new(Some(tx)),
            held: Arc::new(Mutex::new(Some(rx))),
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let (script, seen, held, stop) = (
            Arc::clone(&receiver.script),
            Arc::clone(&receiver.seen),
            Arc::clone(&receiver.held),
            Arc::clone(&receiver.stop),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                seen.lock().unwrap().push(request);
                let behaviour = script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Behaviour::Reply(204, "", ""));
                match behaviour {
                    Behaviour::Reply(status, head, body) => {
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Behaviour::Raw(bytes) => {
                        let _ = stream.write_all(bytes);
                    }
                    Behaviour::Close => {}
                    Behaviour::Slow(wait, status) => {
                        std::thread::sleep(wait);
                        let reply = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Behaviour::Hold => {
                        if let Some(rx) = held.lock().unwrap().take() {
                            let _ = rx.recv();
                        }
                    }
                }
            }
        });
        receiver
    }

    /// Requests read so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Lets a `Hold` go.
    pub fn release(&self) {
        let _ = self.release.lock().unwrap().take().map(|tx| tx.send(()));
    }
}

impl Drop for FakeReceiver {
    fn drop(&mut self) {
        self.release();
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees `stop` and frees the port.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

/// A port nothing listens on (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One series of a remote-write request: sorted labels, value, timestamp.
pub type Series = (Vec<(String, String)>, f64, i64);

/// Decodes a snappy-compressed `WriteRequest` (prompb field numbers:
/// WriteRequest.timeseries = 1; TimeSeries.labels = 1, .samples = 2;
/// Label.name = 1, .value = 2; Sample.value = 1 (double), .timestamp = 2).
#[cfg(feature = "remote-write")]
pub fn decode_write_request(body: &[u8]) -> Vec<Series> {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    let mut out = Vec::new();
    for (field, ts) in fields(&raw) {
        assert_eq!(field, 1, "WriteRequest has only timeseries here");
        let Value::Bytes(ts) = ts else {
            panic!("timeseries is a message")
        };
        let mut labels = Vec::new();
        let mut samples = Vec::new();
        for (field, v) in fields(ts) {
            let Value::Bytes(m) = v else {
                panic!("fields 1, 2 are messages")
            };
            match field {
                1 => {
                    let l = fields(m);
                    let text = |v: &Value| match v {
                        Value::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
                        _ => panic!("a label is strings"),
                    };
                    labels.push((text(&l[0].1), text(&l[1].1)));
                }
                2 => {
                    let (mut value, mut ts) = (0.0, 0);
                    for (f, v) in fields(m) {
                        match (f, v) {
                            (1, Value::Fixed64(bits)) => value = f64::from_bits(bits),
                            (2, Value::Varint(t)) => ts = t as i64,
                            other => panic!("unexpected sample field {other:?}"),
                        }
                    }
                    samples.push((value, ts));
                }
                f => panic!("unexpected TimeSeries field {f}"),
            }
        }
        let mut sorted = labels.clone();
        sorted.sort();
        assert_eq!(labels, sorted, "labels must be sorted by name");
        assert_eq!(samples.len(), 1);
        out.push((labels, samples[0].0, samples[0].1));
    }
    out
}

#[derive(Debug)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
}

fn fields(mut b: &[u8]) -> Vec<(u64, Value<'_>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b);
        let value = match tag & 7 {
            0 => Value::Varint(varint(&mut b)),
            1 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap());
                b = &b[8..];
                Value::Fixed64(v)
            }
            2 => {
                let len = varint(&mut b) as usize;
                let (m, rest) = b.split_at(len);
                b = rest;
                Value::Bytes(m)
            }
            t => panic!("wire type {t}"),
        };
        out.push((tag >> 3, value));
    }
    out
}

/// The value of label `name` in a series.
pub fn label<'a>(series: &'a Series, name: &str) -> Option<&'a str> {
    series
        .0
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `GET path` on `addr`; status and body.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query parameter.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The path of an installed program, or `None`; with
/// `VITALS_REQUIRE_TOOLS=1` (as in CI) a missing program fails the test.
pub fn require_tool(program: &str) -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{program} is required (VITALS_REQUIRE_TOOLS=1) but not installed");
    }
    found.map(|p| p.display().to_string())
}

/// A child process killed (and reaped) on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `GET path` until it answers 200 or `limit` passes (a real server
/// starting up; the wait is a deadline, not a measurement).
pub fn wait_ready(addr: SocketAddr, path: &str, child: &mut Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok((200, _)) = get(addr, path) {
            return;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("the server exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{addr}{path} not ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts `prometheus` (the path `require_tool` gave) with `config` as
/// its configuration, its data in `dir`, on a free loopback port, with
/// `flags` added; returns once it is ready.
pub fn start_prometheus(
    prometheus: &str,
    dir: &std::path::Path,
    config: &str,
    flags: &[&str],
) -> (SocketAddr, Child) {
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Child(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(flags)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(addr, "/-/ready", &mut child, Duration::from_secs(120));
    (addr, child)
}

/// Reads one quantile of a summary.
type QuantileOf = fn(&vitals::snapshot::Quantiles) -> f64;

/// A series' labels, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// A counter's value as a float: the one place these tests read one.
pub fn counter_value(c: &vitals::snapshot::CounterSample) -> f64 {
    c.value.as_f64()
}

/// Every series a snapshot should produce in Prometheus, by the mapping
/// the README documents, worked out here independently of the exporter,
/// with `extra` labels added where the series has no label of that name;
/// sorted.
pub fn expected_series(snap: &vitals::Snapshot, extra: &[(&str, &str)]) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    let series = |name: String, labels: &vitals::Labels, more: Option<(&str, &str)>| {
        let mut l: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (k, v) in extra {
            l.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        if let Some((k, v)) = more {
            l.insert(k.into(), v.into());
        }
        l.insert("__name__".into(), name);
        l
    };
    // A family whose exposed names another family took first is left out
    // (counters, then gauges, then histograms, each in snapshot order).
    let mut owner: std::collections::HashMap<String, (usize, String)> = Default::default();
    let mut allow = |kind: usize, name: &str, base: &str| {
        let suffixes: &[&str] = [
            &["", "_total", "_created"][..],
            &[""],
            &["", "_sum", "_count", "_created"],
            &["", "_bucket", "_sum", "_count", "_created"],
        ][kind];
        let exposed: Vec<String> = suffixes.iter().map(|s| format!("{base}{s}")).collect();
        let me = (kind, name.to_owned());
        if exposed
            .iter()
            .any(|n| owner.get(n).is_some_and(|o| *o != me))
        {
            return false;
        }
        for n in exposed {
            owner.entry(n).or_insert_with(|| me.clone());
        }
        true
    };
    for c in &snap.counters {
        let base = match c.name.strip_suffix("_total") {
            Some(b) if !b.is_empty() => b,
            _ => &c.name,
        };
        if !allow(0, &c.name, base) {
            continue;
        }
        let name = format!("{base}_total");
        out.push((series(name, &c.labels, None), counter_value(c)));
    }
    for g in &snap.gauges {
        if !allow(1, &g.name, &g.name) {
            continue;
        }
        out.push((series(g.name.to_string(), &g.labels, None), g.value));
    }
    for h in &snap.histograms {
        let (name, labels) = (&h.name, &h.labels);
        let kind = if h.summary.buckets.is_some() { 3 } else { 2 };
        if !allow(kind, name, name) {
            continue;
        }
        let count = match &h.summary.buckets {
            Some(b) => {
                for (bound, c) in b.bounds.iter().zip(&b.cumulative) {
                    let le = format!("{bound:?}");
                    let s = series(format!("{name}_bucket"), labels, Some(("le", &le)));
                    out.push((s, *c as f64));
                }
                let s = series(format!("{name}_bucket"), labels, Some(("le", "+Inf")));
                out.push((s, b.count as f64));
                b.count
            }
            None => {
                let q = h.summary.window.quantiles;
                let levels: [(&str, QuantileOf); 5] = [
                    ("0.5", |q| q.p50),
                    ("0.9", |q| q.p90),
                    ("0.95", |q| q.p95),
                    ("0.99", |q| q.p99),
                    ("0.999", |q| q.p999),
                ];
                for (text, get) in levels {
                    let s = series(name.to_string(), labels, Some(("quantile", text)));
                    out.push((s, q.as_ref().map_or(f64::NAN, get)));
                }
                h.summary.lifetime.count
            }
        };
        out.push((
            series(format!("{name}_sum"), labels, None),
            h.summary.lifetime.sum,
        ));
        out.push((series(format!("{name}_count"), labels, None), count as f64));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out
}
