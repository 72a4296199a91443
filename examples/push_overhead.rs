//! What pushing costs: a registry of 1,000 counters and 100 histograms
//! (exponential buckets on) pushed by Prometheus remote write and OTLP
//! every 10 s to receivers in this process for two minutes; then the CPU
//! time spent, per push and as a share of one core.
//!
//! A load thread keeps the registry busy meanwhile (every 10 ms, ten new
//! values in each histogram, spread over its whole range, and one increment
//! of each counter), so that no push finds a series unchanged; its own CPU
//! time is left out. The receivers only read each
//! request and answer `204`: their work (a small part) is counted with the
//! exporters', so the figure errs high.
//!
//! Run with `cargo run --release --features remote-write,otlp --example
//! push_overhead`; `VITALS_OVERHEAD_SECS` (default 120) sets the length,
//! `VITALS_OVERHEAD_INTERVAL_SECS` (default 10) the push interval,
//! `VITALS_OVERHEAD_EXPORTERS` (`remote-write`, `otlp`, default both) the
//! exporters. Linux only: each thread's CPU time is read, in nanoseconds,
//! from `/proc/self/task/*/schedstat` (a plug-in sampling it would add its
//! own cost to the figure).

use std::collections::BTreeMap;
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
    let serve = move || {
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
    };
    thread::Builder::new()
        .name("receiver".into())
        .spawn(serve)
        .expect("spawn the receiver");
    format!("http://{addr}")
}

/// CPU time of each thread of this process, by thread id: its name and
/// the nanoseconds it has run (`/proc/self/task/*/schedstat`, exact where
/// `/proc/*/stat` counts in 10 ms ticks). Empty where there is no /proc.
fn thread_cpu() -> BTreeMap<String, (String, u64)> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let ran = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ran) = ran {
            let tid = task.file_name().to_string_lossy().into_owned();
            threads.insert(tid, (name.trim().to_owned(), ran));
        }
    }
    threads
}

/// The calling thread's id, as `/proc/self/task` lists it.
fn thread_id() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default()
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
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let load = {
        let (metrics, stop) = (metrics.clone(), stop.clone());
        thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                let _ = tid_tx.send(thread_id());
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
                        metrics
                            .counter(&format!("counter_{name}_total"), &[("id", &id.to_string())])
                    })
                    .collect();
                let mut k = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for h in &histograms {
                        for _ in 0..10 {
                            k = k % 1000 + 97;
                            h.record(f64::from(k) * 1e-4);
                        }
                    }
                    counters.iter().for_each(|c| c.inc());
                    thread::sleep(Duration::from_millis(10));
                }
            })
            .expect("spawn the load thread")
    };
    let load_tid = tid_rx.recv().unwrap_or_default();

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
    let (before, start) = (thread_cpu(), Instant::now());
    thread::sleep(Duration::from_secs(secs));
    let (after, wall) = (thread_cpu(), start.elapsed().as_secs_f64());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.join();
    let status = reporter.shutdown();

    let pushes = (wall / interval as f64).round().max(1.0);
    println!("series: 1,000 counters + 100 histograms, a push every {interval} s");
    for e in &status.exporters {
        println!("  {}: {} exports, {} failed", e.name, e.exported, e.failed);
    }
    // Every thread's CPU time over the measured span; all but the load
    // thread's are the cost of pushing (the main thread only sleeps).
    let mut spent = 0.0;
    println!("CPU time over {wall:.1} s, by thread:");
    for (tid, (name, ran)) in &after {
        let ran = ran.saturating_sub(before.get(tid).map_or(0, |(_, r)| *r)) as f64 / 1e9;
        let left_out = *tid == load_tid;
        if !left_out {
            spent += ran;
        }
        println!(
            "  {name:<16} {:>8.2} ms per push{}",
            ran / pushes * 1e3,
            if left_out {
                " (the load: left out)"
            } else {
                ""
            }
        );
    }
    println!(
        "per push (snapshot, encodings, sending, receiving): {:.1} ms",
        spent / pushes * 1e3
    );
    println!("{:.3} % of one core", 100.0 * spent / wall);
    Ok(())
}
