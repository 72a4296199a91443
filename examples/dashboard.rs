//! A live terminal dashboard: redraws in place every second with the status
//! line, the plug-ins, the busiest counters and their rates, and histogram
//! p50/p99 with a sparkline of their recent history (`vitals::export::Dashboard`).
//!
//! The frame follows the terminal's size (`COLUMNS`/`LINES` when set, else
//! the size `stty` reports, else 80×24), read again every second, so a
//! resized window is redrawn to fit. Plain ANSI escapes (alternate screen,
//! cursor home), so it works over SSH in any terminal; Ctrl-C restores the
//! terminal and exits.
//!
//! Run with `cargo run --release --example dashboard`
//! (`VITALS_DASHBOARD_SECONDS=N` stops it after N seconds).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vitals::collectors::{ApiCollector, ProcessCollector, SystemCollector};
use vitals::export::Dashboard;
use vitals::MetricsCollector;

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
        // Home, each line then clear to its end, clear below. No newline
        // after the last line: on the bottom row it would scroll the
        // title away.
        let mut text = String::from("\x1b[H");
        for (i, line) in frame.lines().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(line);
            text.push_str("\x1b[K");
        }
        text.push_str("\x1b[J");
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        print!("\x1b[?25h\x1b[?1049l");
        let _ = std::io::stdout().flush();
    }
}

/// Columns and lines of the terminal.
fn terminal_size() -> (usize, usize) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse().ok());
    if let (Some(w), Some(h)) = (env("COLUMNS"), env("LINES")) {
        return (w, h);
    }
    // `stty size` prints "lines columns" for the terminal on its stdin.
    let stty = std::fs::File::open("/dev/tty").ok().and_then(|tty| {
        std::process::Command::new("stty")
            .arg("size")
            .stdin(tty)
            .output()
            .ok()
    });
    let size = stty.and_then(|out| {
        let text = String::from_utf8(out.stdout).ok()?;
        let mut it = text.split_whitespace().map(|n| n.parse::<usize>().ok());
        Some((it.next()??, it.next()??))
    });
    match size {
        Some((h, w)) if w > 0 && h > 0 => (w, h),
        _ => (env("COLUMNS").unwrap_or(80), env("LINES").unwrap_or(24)),
    }
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

    // Bucket state in snapshots: the status line's p99 merges the routes exactly.
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    metrics.register(SystemCollector::new())?;
    metrics.register(ProcessCollector::new())?;
    let api = ApiCollector::new(&metrics);
    metrics.register(api.clone())?;

    // A simulated service: a few endpoints with different latencies.
    let worker_quit = Arc::clone(&quit);
    let worker = std::thread::spawn(move || {
        let endpoints = [
            ("/", 0.002),
            ("/api/users", 0.008),
            ("/api/orders", 0.02),
            ("/static/app.js", 0.001),
        ];
        let handles: Vec<_> = endpoints.iter().map(|(e, _)| api.endpoint(e)).collect();
        let mut n: u64 = 0;
        while !worker_quit.load(Ordering::SeqCst) {
            n += 1;
            let i = (n % 4) as usize;
            let wobble = ((n as f64) / 500.0).sin().abs() + 0.2;
            let latency =
                Duration::from_secs_f64(endpoints[i].1 * wobble * (1.0 + (n % 7) as f64 / 7.0));
            let status = if n % 97 == 0 { 500 } else { 200 };
            handles[i].record("GET", status, latency);
            std::thread::sleep(Duration::from_micros(300));
        }
    });

    let screen = Screen::enter();
    let mut dashboard = Dashboard::new().title("vitals dashboard — Ctrl-C quits");
    let started = Instant::now();
    while !quit.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(seconds) {
        let snap = metrics.snapshot();
        dashboard.update(&snap);
        let (width, height) = terminal_size();
        screen.draw(&dashboard.render(&snap, width, height));
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
