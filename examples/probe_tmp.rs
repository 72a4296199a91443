use std::time::Instant;
fn main() {
    let only_h = std::env::args().nth(1).is_some();
    if !only_h {
    let m = ["GET","POST","PUT","DELETE"];
    let n = 20_000_000u64;
    let t = Instant::now();
    for i in 0..n as usize { vitals::counter!("p_l", "method" => m[i & 3]).increment(1); }
    println!("macro runtime label {:.1} ns", t.elapsed().as_nanos() as f64 / n as f64);
    let c = vitals::MetricsCollector::new();
    let t = Instant::now();
    for i in 0..n as usize { c.counter("p_l", &[("method", m[i & 3])]).increment(1); }
    println!("explicit {:.1} ns", t.elapsed().as_nanos() as f64 / n as f64);
    let metrics = vitals::MetricsCollector::new();
    for name in 0..10 {
        for label in 0..100 {
            let (n, l) = (format!("counter_{name}_total"), label.to_string());
            metrics.counter(&n, &[("id", &l)]).increment(label);
        }
    }
    let t = Instant::now();
    for _ in 0..5000 { std::hint::black_box(metrics.snapshot()); }
    println!("snapshot 1000 counters {:.1} us", t.elapsed().as_nanos() as f64 / 1000.0 / 1000.0);
    }
    let metrics = vitals::MetricsCollector::new();
    for name in 0..10 {
        for label in 0..10 {
            let (n, l) = (format!("histogram_{name}_seconds"), label.to_string());
            let h = metrics.histogram(&n, &[("id", &l)]);
            for v in 0..1000 { h.record(10f64.powf(v as f64 / 1000.0 * 6.0) / 1e6); }
        }
    }
    let t = Instant::now();
    for _ in 0..5000 { std::hint::black_box(metrics.snapshot()); }
    println!("snapshot 100 histograms {:.1} us", t.elapsed().as_nanos() as f64 / 5000.0 / 1000.0);
}
