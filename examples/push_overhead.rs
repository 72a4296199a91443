//! What pushing costs: a registry of 1,000 counters and 100 histograms
//! (exponential buckets on) pushed by Prometheus remote write and OTLP
//! every 10 s to receivers in this process for two minutes; then the CPU
//! time spent, per push and as a share of one core.
//!
//! A load thread keeps the registry busy meanwhile (every 10 ms, ten new
//! values in each histogram, spread over its whole range, and one increment
//! of each counter), so that no push finds a series unchanged; its own CPU
//! time is measured apart and left out. The receivers only read each
//! request and answer `204`: their work (a small part) is counted with the
//! exporters', so the figure errs high.
//!
//! Run with `cargo run --release --features remote-write,otlp --example
//! push_overhead`; `VITALS_OVERHEAD_SECS` (default 120) sets the length,
//! `VITALS_OVERHEAD_INTERVAL_SECS` (default 10) the push interval,
//! `VITALS_OVERHEAD_EXPORTERS` (`remote-write`, `otlp`, default both) the
//! exporters. Linux only: the CPU time is read from `/proc/self/stat`
//! (a plug-in sampling it would add its own cost to the figure).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use vitals::export::push::{OtlpExporter, RemoteWriteExporter};
use vitals::export::Reporter;
use vitals::MetricsCollector;

/// A receiver that answers every request with `204` after reading its body.
fn receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            // Head, then as many body bytes as Content-Length says.
            let (head_end, length) = loop {
                let Ok(n) = stream.read(&mut chunk) else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (at + 4, length);
                }
            };
            while head_end > 0 && buf.len() < head_end + length {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    format!("http://{addr}")
}

/// User + system CPU time of this process, from `/proc/self/stat` (fields
/// 14 and 15, in the kernel's fixed 100 ticks a second); NaN elsewhere.
fn process_cpu_seconds() -> f64 {
    cpu_seconds("/proc/self/stat")
}

/// The same for the calling thread.
fn thread_cpu_seconds() -> f64 {
    cpu_seconds("/proc/thread-self/stat")
}

fn cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return f64::NAN;
    };
    // The command name (field 2) may hold spaces: count from its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // Fields 14 and 15 are the 12th and 13th after the name.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

fn main() -> Result<(), vitals::Error> {
    let secs: u64 = std::env::var("VITALS_OVERHEAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let interval: u64 = std::env::var("VITALS_OVERHEAD_INTERVAL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&s| s > 0)
        .unwrap_or(10);

    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    for name in 0..10 {
        for id in 0..100u64 {
            let (n, l) = (format!("counter_{name}_total"), id.to_string());
            metrics.counter(&n, &[("id", &l)]).increment(id);
        }
        for id in 0..10 {
            let (n, l) = (format!("histogram_{name}_seconds"), id.to_string());
            let h = metrics.histogram(&n, &[("id", &l)]);
            for k in 1..=1000 {
                h.record(f64::from(k) * 1e-4);
            }
        }
    }
    let cpu = process_cpu_seconds;
    // 0: warming up, 1: measuring, 2: stop.
    let phase = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let load = {
        let (metrics, phase) = (metrics.clone(), phase.clone());
        thread::spawn(move || {
            let histograms: Vec<_> = (0..10)
                .flat_map(|name| (0..10).map(move |id| (name, id)))
                .map(|(name, id)| {
                    metrics.histogram(
                        &format!("histogram_{name}_seconds"),
                        &[("id", &id.to_string())],
                    )
                })
                .collect();
            let counters: Vec<_> = (0..10)
                .flat_map(|name| (0..100).map(move |id| (name, id)))
                .map(|(name, id)| {
                    metrics.counter(&format!("counter_{name}_total"), &[("id", &id.to_string())])
                })
                .collect();
            let mut k = 0u32;
            let mut measured_from = None;
            loop {
                match phase.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => {}
                    1 => {
                        measured_from.get_or_insert_with(thread_cpu_seconds);
                    }
                    _ => break,
                }
                for h in &histograms {
                    for _ in 0..10 {
                        k = k % 1000 + 97;
                        h.record(f64::from(k) * 1e-4);
                    }
                }
                counters.iter().for_each(|c| c.inc());
                thread::sleep(Duration::from_millis(10));
            }
            // Its CPU time over the measured span (from within 10 ms of
            // its start).
            thread_cpu_seconds() - measured_from.unwrap_or(f64::NAN)
        })
    };

    let url = receiver();
    // `VITALS_OVERHEAD_EXPORTERS`: `remote-write`, `otlp` or both (default).
    let which = std::env::var("VITALS_OVERHEAD_EXPORTERS").unwrap_or_default();
    let mut reporter = Reporter::builder(&metrics).interval(Duration::from_secs(interval));
    if which != "otlp" {
        reporter =
            reporter.exporter(RemoteWriteExporter::builder(format!("{url}/api/v1/write")).build()?);
    }
    if which != "remote-write" {
        reporter = reporter.exporter(OtlpExporter::builder(url.as_str()).build()?);
    }
    let reporter = reporter.start()?;
    // Steady state only: after the first push.
    thread::sleep(Duration::from_millis(1500));
    let (cpu_before, start) = (cpu(), Instant::now());
    phase.store(1, std::sync::atomic::Ordering::Relaxed);
    thread::sleep(Duration::from_secs(secs));
    let (cpu_after, wall) = (cpu(), start.elapsed().as_secs_f64());
    phase.store(2, std::sync::atomic::Ordering::Relaxed);
    let load_cpu = load.join().unwrap_or(f64::NAN);
    let status = reporter.shutdown();

    let pushes = (wall / interval as f64).round().max(1.0);
    let spent = cpu_after - cpu_before - load_cpu;
    println!("series: 1,000 counters + 100 histograms, a push every {interval} s");
    for e in &status.exporters {
        println!("  {}: {} exports, {} failed", e.name, e.exported, e.failed);
    }
    println!("load thread (left out): {load_cpu:.3} s of CPU");
    println!("CPU time over {wall:.1} s: {spent:.3} s (resolution 10 ms)");
    println!(
        "per push (snapshot, encodings, sending): {:.1} ms",
        spent / pushes * 1e3
    );
    println!("{:.3} % of one core", 100.0 * spent / wall);
    Ok(())
}
