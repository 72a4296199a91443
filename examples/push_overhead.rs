//! What pushing costs: a registry of 1,000 counters and 100 histograms
//! (exponential buckets on) pushed by Prometheus remote write and OTLP
//! every second to receivers in this process for a minute; then the CPU
//! time spent, per push and as a share of one core at a push every 10 s.
//!
//! The receivers only read each request and answer `204`: their work (a
//! small part) is counted with the exporters', so the figure errs high.
//!
//! Run with `cargo run --release --features remote-write,otlp --example
//! push_overhead`; `VITALS_OVERHEAD_SECS` (default 60) sets the length.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use vitals::collectors::ProcessCollector;
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

fn main() -> Result<(), vitals::Error> {
    let secs: u64 = std::env::var("VITALS_OVERHEAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

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
    // The CPU clock, read from a collector of its own.
    let clock = MetricsCollector::new();
    clock.register(ProcessCollector::new())?;
    let cpu = || {
        clock
            .snapshot()
            .counter("process_cpu_seconds_total", &[])
            .unwrap_or(f64::NAN)
    };

    let url = receiver();
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::from_secs(1))
        .exporter(RemoteWriteExporter::builder(format!("{url}/api/v1/write")).build()?)
        .exporter(OtlpExporter::builder(url.as_str()).build()?)
        .start()?;
    // Steady state only: after the first pushes.
    thread::sleep(Duration::from_millis(2500));
    let (cpu_before, start) = (cpu(), Instant::now());
    thread::sleep(Duration::from_secs(secs));
    let (cpu_after, wall) = (cpu(), start.elapsed().as_secs_f64());
    let status = reporter.shutdown();

    let pushes = wall.floor();
    let spent = cpu_after - cpu_before;
    let per_push = spent / pushes;
    println!("series: 1,000 counters + 100 histograms; exporters: remote write and OTLP");
    for e in &status.exporters {
        println!("  {}: {} exports, {} failed", e.name, e.exported, e.failed);
    }
    println!("CPU time over {wall:.1} s: {spent:.3} s (resolution 10 ms)");
    println!(
        "per push (snapshot + both encodings + sending): {:.2} ms",
        per_push * 1e3
    );
    println!(
        "at one push every 10 s: {:.3} % of one core",
        100.0 * per_push / 10.0
    );
    Ok(())
}
