//! Quantiles of the time window against exact sorted quantiles, and the
//! memory a histogram series takes.

use std::sync::Arc;
use std::time::Duration;

use vitals::snapshot::Quantiles;
use vitals::{ManualClock, MetricsCollector};

/// xorshift64*: deterministic and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-300), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Nearest-rank quantile of sorted values.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn check(name: &str, values: Vec<f64>) {
    let metrics = MetricsCollector::new();
    let h = metrics.histogram("data", &[]);
    for &v in &values {
        h.record(v);
    }
    let mut sorted = values;
    sorted.sort_by(f64::total_cmp);
    let summary = metrics.snapshot().histogram("data", &[]).unwrap().clone();
    let q = summary.window.quantiles.unwrap();
    for level in Quantiles::LEVELS {
        let (got, want) = (q.get(level).unwrap(), exact(&sorted, level));
        let err = (got - want).abs() / want;
        assert!(
            err <= 0.01,
            "{name} p{level}: got {got}, exact {want}, error {err:.4}"
        );
    }
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    let var = sorted.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / sorted.len() as f64;
    let sd = summary.window.stddev.unwrap();
    assert!(
        (sd - var.sqrt()).abs() / var.sqrt() <= 0.01,
        "{name} stddev {sd} vs {}",
        var.sqrt()
    );
    assert!(
        (summary.window.mean.unwrap() - mean).abs() / mean < 1e-9,
        "{name} mean is exact"
    );
    assert_eq!(summary.window.min, Some(sorted[0]));
    assert_eq!(summary.window.max, Some(sorted[sorted.len() - 1]));
}

#[test]
fn uniform_data_quantiles_are_within_one_percent() {
    let mut rng = Rng(1);
    check(
        "uniform",
        (0..200_000).map(|_| 1.0 + rng.next_f64() * 999.0).collect(),
    );
}

#[test]
fn log_normal_data_quantiles_are_within_one_percent() {
    let mut rng = Rng(2);
    // Latencies around 20 ms with a long tail.
    check(
        "log-normal",
        (0..200_000)
            .map(|_| (0.02f64.ln() + 0.8 * rng.normal()).exp())
            .collect(),
    );
}

#[test]
fn bimodal_data_quantiles_are_within_one_percent() {
    let mut rng = Rng(3);
    // 70% fast around 2 ms, 30% slow around 300 ms.
    let values = (0..200_000)
        .map(|_| {
            let (centre, spread) = if rng.next_f64() < 0.7 {
                (0.002, 0.0002)
            } else {
                (0.3, 0.03)
            };
            (centre + spread * rng.normal()).max(1e-6)
        })
        .collect();
    check("bimodal", values);
}

#[test]
fn a_default_series_over_four_decades_stays_under_32_kib() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let h = metrics.histogram("latency_seconds", &[]);
    // Values from 1 ms to 10 s in every slot of the window.
    for _slot in 0..6 {
        let mut v = 0.001;
        while v < 10.0 {
            h.record(v);
            v *= 1.003;
        }
        clock.advance(Duration::from_secs(10));
        metrics.snapshot();
    }
    let bytes = metrics
        .histogram_heap_bytes("latency_seconds", &[])
        .unwrap();
    println!("histogram series over four decades: {bytes} bytes");
    assert!(bytes <= 32 * 1024, "{bytes} bytes");
}
