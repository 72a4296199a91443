//! The main demo: a simulated web service instrumented with vitals, a
//! reporter writing JSON-Lines snapshots, and the table on the terminal.
//!
//! ```text
//! cargo run --release --example demo
//! VITALS_DEMO_SECONDS=60 cargo run --release --example demo   # run longer
//! ```
//!
//! No configuration: it runs for about 10 seconds, prints the table every
//! 2 seconds, writes a snapshot per second to a JSON-Lines file under the
//! system temp directory, and ends by printing where that file is and the
//! last status line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use vitals::export::display::shorten;
use vitals::export::table::render_table_width;
use vitals::export::{status_line, JsonLinesExporter, JsonLinesReader, Reporter};
use vitals::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

const ROUTES: [&str; 4] = ["/", "/api/users", "/api/orders", "/static/app.js"];

/// A tiny xorshift generator: the demo needs no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One simulated request: a latency drawn from a long-tailed distribution
/// that depends on the route, a response size, and an occasional error.
fn serve(rng: &mut Rng, route: &str) {
    let base_ms = match route {
        "/" => 2.0,
        "/api/users" => 8.0,
        "/api/orders" => 20.0,
        _ => 0.5,
    };
    // Mostly fast, sometimes ten times slower.
    let tail = if rng.unit() < 0.02 { 10.0 } else { 1.0 };
    let seconds = base_ms * tail * (0.5 + rng.unit()) / 1000.0;
    let status = if rng.unit() < 0.01 { "500" } else { "200" };
    gauge!("http_in_flight_requests").increment(1.0);
    // Stand-in for real work: sleep a sliver of the simulated latency.
    thread::sleep(Duration::from_secs_f64(seconds / 4.0));
    histogram!("http_request_duration_seconds", "route" => route).record(seconds);
    histogram!("http_response_size_bytes").record(200.0 + rng.unit() * 50_000.0);
    counter!("http_requests_total", "route" => route, "status" => status).inc();
    gauge!("http_in_flight_requests").decrement(1.0);
}

/// The terminal's width: `COLUMNS`, else what `stty` reports, else 100.
fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return w;
    }
    let tty = std::fs::File::open("/dev/tty").ok();
    let out = tty.and_then(|tty| {
        std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .output()
            .ok()
    });
    out.and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.split_whitespace().nth(1)?.parse().ok())
        .filter(|w| *w > 0)
        .unwrap_or(100)
}

fn main() -> Result<(), vitals::Error> {
    // Snapshots carry bucket state, so the status line's p99 merges the
    // routes exactly.
    vitals::install_global(vitals::MetricsCollector::builder().lifetime_buckets(true))?;
    let seconds: u64 = std::env::var("VITALS_DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    describe_counter!(
        "http_requests_total",
        "Requests served, by route and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        vitals::Unit::Seconds,
        "Time to serve a request, by route."
    );
    describe_histogram!(
        "http_response_size_bytes",
        vitals::Unit::Bytes,
        "Response body sizes."
    );
    describe_gauge!("http_in_flight_requests", "Requests being served now.");

    let dir = std::env::temp_dir().join(format!("vitals-demo-{}", std::process::id()));
    let path = dir.join("metrics.jsonl");
    let metrics = vitals::global();
    // CPU and memory for the status line come from the built-in plug-ins.
    #[cfg(feature = "system")]
    {
        metrics.register(vitals::collectors::SystemCollector::new())?;
        metrics.register(vitals::collectors::ProcessCollector::new())?;
    }
    let reporter = Reporter::builder(metrics)
        .interval(Duration::from_secs(1))
        .exporter(JsonLinesExporter::builder(&path).build()?)
        .start()?;

    println!(
        "vitals demo: {seconds} s of simulated traffic, snapshots to {}\n",
        path.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                while !stop.load(Ordering::Relaxed) {
                    let route = ROUTES[(rng.next() % ROUTES.len() as u64) as usize];
                    serve(&mut rng, route);
                }
            })
        })
        .collect();

    let started = Instant::now();
    let mut next_table = started + Duration::from_secs(2);
    while started.elapsed() < Duration::from_secs(seconds) {
        thread::sleep(Duration::from_millis(250));
        if Instant::now() >= next_table {
            next_table += Duration::from_secs(2);
            let snap = metrics.snapshot();
            println!("--- after {:.0} s ---", started.elapsed().as_secs_f64());
            let width = terminal_width();
            print!("{}", render_table_width(&snap, width));
            println!("{}\n", shorten(&status_line(&snap), width));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let status = reporter.shutdown();

    let mut reader = JsonLinesReader::open_rotated(&path)?;
    let snapshots: Vec<_> = reader.by_ref().filter_map(Result::ok).collect();
    println!(
        "wrote {} snapshots ({} exporter errors) to {}",
        snapshots.len(),
        status.exporters.iter().map(|e| e.failed).sum::<u64>(),
        path.display()
    );
    if let Some(last) = snapshots.last() {
        println!("last status: {}", status_line(last));
    }
    Ok(())
}
