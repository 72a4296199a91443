//! What pushing costs: a registry of 1,000 counters and 100 histograms
//! (exponential buckets on) pushed by Prometheus remote write and OTLP
//! every 10 s to receivers in this process for two minutes; then the CPU
//! time spent, per push and as a share of one core. Then the same pushes
//! every 50 ms for 10 s; the same reporter and exporters pushing every
//! 10 s over a collector with no series (up to a minute: what a push costs
//! this machine before any work); and what reading memory left alone for
//! 10 s and for 50 ms costs on this machine: the difference between the
//! figures is the machine's, not the work's.
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

/// CPU time of each thread of this process, by thread id: its name, the
/// nanoseconds it has run (`/proc/self/task/*/schedstat`, exact where
/// `/proc/*/stat` counts in 10 ms ticks) and its minor page faults.
/// Empty where there is no /proc.
fn thread_cpu() -> BTreeMap<String, (String, u64, u64)> {
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
        let faults = std::fs::read_to_string(path.join("stat"))
            .ok()
            .and_then(|s| minor_faults(&s))
            .unwrap_or(0);
        if let Some(ran) = ran {
            let tid = task.file_name().to_string_lossy().into_owned();
            threads.insert(tid, (name.trim().to_owned(), ran, faults));
        }
    }
    threads
}

/// Minor page faults from a thread's `stat`: field 10, counted after the
/// name's `)`.
fn minor_faults(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(7)?
        .parse()
        .ok()
}

/// The calling thread's id, as `/proc/self/task` lists it.
fn thread_id() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

/// CPU time and page faults of each thread over a span (by thread id:
/// name, seconds, faults), with the pushes made and exporters' counts.
struct Cost {
    threads: BTreeMap<String, (String, f64, f64)>,
    pushes: f64,
    wall: f64,
    exporters: Vec<String>,
}

/// Pushes `metrics` to `url` every `interval` for `secs` seconds, after
/// the first push, and what it cost.
fn measure(
    metrics: &MetricsCollector,
    url: &str,
    which: &str,
    interval: Duration,
    secs: u64,
) -> Result<Cost, vitals::Error> {
    let mut reporter = Reporter::builder(metrics).interval(interval);
    if which != "otlp" {
        reporter =
            reporter.exporter(RemoteWriteExporter::builder(format!("{url}/api/v1/write")).build()?);
    }
    if which != "remote-write" {
        reporter = reporter.exporter(OtlpExporter::builder(url).build()?);
    }
    let reporter = reporter.start()?;
    // Steady state only: after the first push.
    thread::sleep(Duration::from_millis(1500));
    let (before, start) = (thread_cpu(), Instant::now());
    thread::sleep(Duration::from_secs(secs));
    let (after, wall) = (thread_cpu(), start.elapsed().as_secs_f64());
    let status = reporter.shutdown();
    let threads = after
        .into_iter()
        .map(|(tid, (name, ran, faults))| {
            let (ran_before, faults_before) = before.get(&tid).map_or((0, 0), |(_, r, f)| (*r, *f));
            let ran = ran.saturating_sub(ran_before) as f64 / 1e9;
            let faults = faults.saturating_sub(faults_before) as f64;
            (tid, (name, ran, faults))
        })
        .collect();
    Ok(Cost {
        threads,
        pushes: (wall / interval.as_secs_f64()).round().max(1.0),
        wall,
        exporters: status
            .exporters
            .iter()
            .map(|e| format!("{}: {} exports, {} failed", e.name, e.exported, e.failed))
            .collect(),
    })
}

/// Microseconds to read one byte of each 4 KiB page of 16 MiB that were
/// written, then left alone for `idle`: on a virtual machine whose host
/// reclaims idle guest memory, far more than a cache miss.
/// Also the page faults the read took (none: the cost is the host's).
fn page_cost(idle: Duration) -> (f64, u64) {
    let pages = vec![1u8; 16 << 20];
    thread::sleep(idle);
    let faults = || {
        std::fs::read_to_string("/proc/thread-self/stat")
            .ok()
            .and_then(|s| minor_faults(&s))
            .unwrap_or(0)
    };
    let before = faults();
    let start = Instant::now();
    let sum: u64 = pages.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    let spent = start.elapsed().as_secs_f64();
    let faulted = faults().saturating_sub(before);
    std::hint::black_box(sum);
    (spent * 1e6 / (pages.len() / 4096) as f64, faulted)
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
    let slow = measure(&metrics, &url, &which, Duration::from_secs(interval), secs)?;
    // The same pushes 20 times a second for 10 s: memory has no time to
    // go cold between them.
    let fast = measure(&metrics, &url, &which, Duration::from_millis(50), 10)?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.join();
    // The same reporter and exporters over a collector with no series of
    // its own (only the exporters' `vitals_push_*`): what a push every
    // `interval` costs on this machine before any of the work above.
    let empty = MetricsCollector::builder().lifetime_buckets(true).build();
    let floor_secs = secs.min(60).max(interval);
    let floor = measure(
        &empty,
        &url,
        &which,
        Duration::from_secs(interval),
        floor_secs,
    )?;

    println!("series: 1,000 counters + 100 histograms");
    let mut shares = Vec::new();
    for (cost, every) in [
        (&slow, format!("{interval} s")),
        (&fast, "50 ms".to_owned()),
    ] {
        println!(
            "a push every {every}: {} pushes in {:.1} s",
            cost.pushes, cost.wall
        );
        for e in &cost.exporters {
            println!("  {e}");
        }
        // Every thread's CPU time over the measured span; all but the load
        // thread's are the cost of pushing (the main thread only sleeps).
        let mut spent = 0.0;
        println!("  CPU time by thread:");
        for (tid, (name, ran, faults)) in &cost.threads {
            let left_out = *tid == load_tid;
            if !left_out {
                spent += ran;
            }
            println!(
                "    {name:<16} {:>8.2} ms, {:>7.0} page faults per push{}",
                ran / cost.pushes * 1e3,
                faults / cost.pushes,
                if left_out {
                    " (the load: left out)"
                } else {
                    ""
                }
            );
        }
        println!(
            "  per push (snapshot, encodings, sending, receiving): {:.2} ms",
            spent / cost.pushes * 1e3
        );
        let share = 100.0 * spent / cost.wall;
        println!("  {share:.3} % of one core");
        shares.push(spent / cost.pushes);
    }
    let floor_spent: f64 = floor.threads.values().map(|(_, ran, _)| ran).sum();
    println!(
        "the same pushes every {interval} s with no series: {:.2} ms per push, {:.3} % of one core",
        floor_spent / floor.pushes * 1e3,
        100.0 * floor_spent / floor.wall
    );
    // What this machine charges for memory left alone: the difference
    // between the two figures above comes from here, not from the work.
    let (cold, cold_faults) = page_cost(Duration::from_secs(interval));
    let (warm, warm_faults) = page_cost(Duration::from_millis(50));
    println!(
        "memory: a page left alone {interval} s takes {cold:.2} µs to read again \
         ({cold_faults} page faults for 4,096 pages), one left alone 50 ms {warm:.2} µs \
         ({warm_faults} page faults)"
    );
    println!(
        "a push every {interval} s costs {:.1}x a push every 50 ms",
        shares[0] / shares[1]
    );
    Ok(())
}
