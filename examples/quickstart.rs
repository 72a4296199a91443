//! Quickstart: instrument a small simulated workload with the macros, then
//! read the numbers back from a snapshot.
//!
//! Run with `cargo run --release --example quickstart`.

use std::thread;
use std::time::{Duration, Instant};

use vitals::{counter, describe_counter, describe_histogram, gauge, histogram, timed};

fn handle(request: u64) -> Result<usize, String> {
    // Pretend work: a few microseconds of hashing, and one request in 50 fails.
    let mut x = request.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..(200 + request % 800) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    if request % 50 == 0 {
        Err(format!("request {request} failed"))
    } else {
        Ok((x % 4096) as usize)
    }
}

fn main() {
    describe_counter!("requests_total", "Requests handled, by route");
    describe_histogram!(
        "request_duration_seconds",
        vitals::Unit::Seconds,
        "Time to handle a request"
    );
    describe_histogram!(
        "response_size_bytes",
        vitals::Unit::Bytes,
        "Size of successful responses"
    );

    let routes = ["/", "/api/users", "/api/orders"];
    let started = Instant::now();
    let workers: Vec<_> = (0..4u64)
        .map(|worker| {
            thread::spawn(move || {
                let mut n = worker;
                while started.elapsed() < Duration::from_secs(2) {
                    let route = routes[(n % 3) as usize];
                    gauge!("in_flight_requests").increment(1.0);
                    let result = timed!("request_duration_seconds", "route" => route;
                        errors = "request_errors_total";
                        { handle(n) });
                    gauge!("in_flight_requests").decrement(1.0);
                    counter!("requests_total", "route" => route).inc();
                    if let Ok(size) = result {
                        histogram!("response_size_bytes").record(size as f64);
                    }
                    n += 4;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker thread");
    }

    let snap = vitals::global().snapshot();
    println!(
        "after {:.1} s of simulated traffic on 4 threads:\n",
        snap.uptime_seconds
    );
    println!("{:<46} {:>12} {:>12}", "counter", "value", "per second");
    for c in &snap.counters {
        let rate = c
            .rate
            .map_or(String::from("-"), |r| format!("{:.0}", r.per_second));
        println!(
            "{:<46} {:>12} {:>12}",
            format!("{}{}", c.name, c.labels),
            c.value,
            rate
        );
    }
    println!(
        "\n{:<46} {:>9} {:>10} {:>10} {:>10}",
        "histogram", "count", "mean", "p50", "p99"
    );
    for h in &snap.histograms {
        let w = &h.summary.window;
        if let (Some(mean), Some(q)) = (w.mean, w.quantiles) {
            let scale = if h.name.ends_with("_seconds") {
                1e6
            } else {
                1.0
            };
            let unit = if scale > 1.0 { "µs" } else { "" };
            println!(
                "{:<46} {:>9} {:>8.1}{unit:<2} {:>8.1}{unit:<2} {:>8.1}{unit:<2}",
                format!("{}{}", h.name, h.labels),
                w.count,
                mean * scale,
                q.p50 * scale,
                q.p99 * scale
            );
        }
    }
    let one = snap
        .histograms
        .iter()
        .find(|h| &*h.name == "response_size_bytes");
    if let Some(h) = one {
        println!(
            "\none series as JSON:\n{}",
            serde_json::to_string_pretty(h).unwrap_or_default()
        );
    }
}
