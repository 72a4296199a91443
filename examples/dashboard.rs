//! A live terminal dashboard: redraws in place every second with the busiest
//! counters and their rates, histogram p99s with a sparkline of their
//! recent history, each plug-in's status, and a system/process line.
//!
//! Plain ANSI escapes (alternate screen, cursor home), so it works over SSH
//! in any terminal; Ctrl-C restores the terminal and exits.
//!
//! Run with `cargo run --release --example dashboard`
//! (`VITALS_DASHBOARD_SECONDS=N` stops it after N seconds).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vitals::collectors::{ApiCollector, ProcessCollector, SystemCollector};
use vitals::{MetricsCollector, Snapshot};

const HISTORY: usize = 30;
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Puts the terminal back however the program ends (Ctrl-C, a panic, the
/// end of the run).
struct Screen;

impl Screen {
    fn enter() -> Screen {
        print!("\x1b[?1049h\x1b[?25l");
        let _ = std::io::stdout().flush();
        Screen
    }

    fn draw(&self, frame: &str) {
        let mut out = std::io::stdout().lock();
        // Home, draw, clear whatever the previous (longer) frame left below.
        let _ = write!(out, "\x1b[H{}\x1b[J", frame.replace('\n', "\x1b[K\n"));
        let _ = out.flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
    }
}

fn sparkline(values: &VecDeque<f64>) -> String {
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                SPARKS[0]
            } else {
                SPARKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

fn human_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{:.0}µs", s * 1e6)
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

fn plugin_value(snap: &Snapshot, plugin: &str, sample: &str) -> Option<f64> {
    snap.plugin(plugin)?;
    snap.gauge(sample, &[])
        .or_else(|| snap.counter(sample, &[]))
}

fn frame(
    snap: &Snapshot,
    p99s: &HashMap<String, VecDeque<f64>>,
    rates: &HashMap<String, VecDeque<f64>>,
) -> String {
    let mut f = String::new();
    let _ = writeln!(
        f,
        "vitals dashboard — uptime {:.0}s — Ctrl-C to quit\n",
        snap.uptime_seconds
    );
    let cpu = plugin_value(snap, "system", "system_cpu_usage_percent");
    let mem = plugin_value(snap, "system", "system_memory_used_bytes");
    let total = plugin_value(snap, "system", "system_memory_total_bytes");
    let pcpu = plugin_value(snap, "process", "process_cpu_usage_percent");
    let rss = plugin_value(snap, "process", "process_resident_memory_bytes");
    let threads = plugin_value(snap, "process", "process_threads");
    let _ = writeln!(
        f,
        "system  CPU {}  Mem {} / {}    process  CPU {}  RSS {}  threads {}\n",
        cpu.map_or("warming up".into(), |c| format!("{c:.1}%")),
        mem.map_or("-".into(), human_bytes),
        total.map_or("-".into(), human_bytes),
        pcpu.map_or("warming up".into(), |c| format!("{c:.1}%")),
        rss.map_or("-".into(), human_bytes),
        threads.map_or("-".into(), |t| format!("{t:.0}")),
    );

    let _ = writeln!(
        f,
        "{:<64} {:>14} {:>10}  rate, last {HISTORY}s",
        "counter", "total", "per sec"
    );
    let mut counters: Vec<_> = snap
        .counters
        .iter()
        .filter(|c| !c.name.starts_with("vitals_"))
        .collect();
    counters.sort_by(|a, b| {
        let rate = |c: &vitals::snapshot::CounterSample| c.rate.map_or(0.0, |r| r.per_second);
        rate(b).total_cmp(&rate(a))
    });
    for c in counters.iter().take(8) {
        let key = format!("{}{}", c.name, c.labels);
        let history = rates.get(&key).map(sparkline).unwrap_or_default();
        let rate = c
            .rate
            .map_or("-".into(), |r| format!("{:.1}", r.per_second));
        let _ = writeln!(f, "{key:<64} {:>14} {rate:>10}  {history}", c.value);
    }

    let _ = writeln!(
        f,
        "\n{:<64} {:>10} {:>10} {:>10}  p99, last {HISTORY}s",
        "histogram", "count", "p50", "p99"
    );
    for h in snap
        .histograms
        .iter()
        .filter(|h| !h.name.starts_with("vitals_"))
        .take(8)
    {
        let key = format!("{}{}", h.name, h.labels);
        let w = &h.summary.window;
        let (p50, p99) = w.quantiles.map_or(("-".into(), "-".into()), |q| {
            (human_seconds(q.p50), human_seconds(q.p99))
        });
        let history = p99s.get(&key).map(sparkline).unwrap_or_default();
        let _ = writeln!(
            f,
            "{key:<64} {:>10} {p50:>10} {p99:>10}  {history}",
            w.count
        );
    }

    let _ = writeln!(
        f,
        "\n{:<12} {:<12} {:>12} {:>8}  last error",
        "plug-in", "status", "collections", "errors"
    );
    for p in &snap.plugins {
        let _ = writeln!(
            f,
            "{:<12} {:<12} {:>12} {:>8}  {}",
            // Outside text: escaped, so that it cannot drive the terminal.
            p.name.escape_debug().to_string(),
            format!("{:?}", p.status).to_lowercase(),
            p.stats.collections,
            p.stats.errors,
            p.stats.last_error.as_deref().unwrap_or("").escape_debug()
        );
    }
    f
}

fn main() -> Result<(), vitals::Error> {
    let quit = Arc::new(AtomicBool::new(false));
    {
        let quit = Arc::clone(&quit);
        // Without a handler the process would die with the terminal still on
        // the alternate screen; with it, the loop ends and `Screen` restores.
        if let Err(e) = ctrlc::set_handler(move || quit.store(true, Ordering::SeqCst)) {
            eprintln!("no Ctrl-C handler ({e}); the dashboard stops after its duration");
        }
    }
    let seconds: u64 = std::env::var("VITALS_DASHBOARD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX);

    let metrics = MetricsCollector::new();
    metrics.register(SystemCollector::new())?;
    metrics.register(ProcessCollector::new())?;
    let api = ApiCollector::new(&metrics);
    metrics.register(api.clone())?;

    // A simulated service: a few endpoints with different latencies.
    let worker_quit = Arc::clone(&quit);
    let worker = std::thread::spawn(move || {
        let endpoints = [("/", 0.002), ("/api/users", 0.008), ("/api/orders", 0.02)];
        let handles: Vec<_> = endpoints.iter().map(|(e, _)| api.endpoint(e)).collect();
        let mut n: u64 = 0;
        while !worker_quit.load(Ordering::SeqCst) {
            n += 1;
            let i = (n % 3) as usize;
            let wobble = ((n as f64) / 500.0).sin().abs() + 0.2;
            let latency =
                Duration::from_secs_f64(endpoints[i].1 * wobble * (1.0 + (n % 7) as f64 / 7.0));
            let status = if n % 97 == 0 { 500 } else { 200 };
            handles[i].record("GET", status, latency);
            std::thread::sleep(Duration::from_micros(300));
        }
    });

    let screen = Screen::enter();
    let mut p99s: HashMap<String, VecDeque<f64>> = HashMap::new();
    let mut rates: HashMap<String, VecDeque<f64>> = HashMap::new();
    let started = Instant::now();
    while !quit.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(seconds) {
        let snap = metrics.snapshot();
        for h in &snap.histograms {
            if let Some(q) = h.summary.window.quantiles {
                let history = p99s.entry(format!("{}{}", h.name, h.labels)).or_default();
                history.push_back(q.p99);
                if history.len() > HISTORY {
                    history.pop_front();
                }
            }
        }
        for c in &snap.counters {
            if let Some(r) = c.rate {
                let history = rates.entry(format!("{}{}", c.name, c.labels)).or_default();
                history.push_back(r.per_second);
                if history.len() > HISTORY {
                    history.pop_front();
                }
            }
        }
        screen.draw(&frame(&snap, &p99s, &rates));
        // Sleep in short steps so Ctrl-C is answered at once.
        let tick = Instant::now();
        while tick.elapsed() < Duration::from_secs(1) && !quit.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(screen);
    quit.store(true, Ordering::SeqCst);
    let _ = worker.join();
    println!(
        "dashboard stopped after {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
