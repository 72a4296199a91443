//! HdrHistogram interval logs, read back by HdrHistogram's own readers:
//! the `hdrhistogram` crate's `IntervalLogIterator` and V2 deserializer,
//! and PyPI `hdrhistogram` (`hdrh.log.HistogramLogReader`), which is
//! skipped when missing and fails instead with `VITALS_REQUIRE_TOOLS=1`.
#![cfg(feature = "hdrhistogram")]

mod common;

use std::process::Command;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use vitals::export::{Exporter, HdrLogExporter};
use vitals::{ManualClock, MetricsCollector};

/// Log-uniform values from 100 µs to 10 s.
fn values(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1e-4 * 10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 5.0)
        })
        .collect()
}

/// The nearest-rank quantile of `sorted`.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The documented error: 0.55% (bucket) + 0.1% (three digits), plus half a
/// microsecond of rounding.
fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 0.0066 * want + 0.5e-6
}

struct Interval {
    tag: String,
    start: f64,
    length: f64,
    hist: hdrhistogram::Histogram<u64>,
}

fn read(text: &str) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        match entry.unwrap() {
            LogEntry::Interval(h) => {
                let bytes = base64_decode(h.encoded_histogram());
                let hist: hdrhistogram::Histogram<u64> =
                    deserializer.deserialize(&mut bytes.as_slice()).unwrap();
                out.push(Interval {
                    tag: h.tag().unwrap().as_str().to_owned(),
                    start: h.start_timestamp().as_secs_f64(),
                    length: h.duration().as_secs_f64(),
                    hist,
                });
            }
            LogEntry::StartTime(_) | LogEntry::BaseTime(_) => {}
        }
    }
    out
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in text.trim_end_matches('=').as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn each_interval_holds_exactly_the_values_recorded_in_it() {
    let dir = common::TempDir::new("hdr-log");
    let path = dir.path().join("latency.hlog");
    let clock = std::sync::Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let a = metrics.histogram("request_duration_seconds", &[("route", "/a,b c")]);
    let mut log = HdrLogExporter::new(&path).unwrap();
    let mut recorded: Vec<Vec<f64>> = Vec::new();
    for round in 0..3u64 {
        let vals = values(round + 1, 2_000 + 500 * round as usize);
        vals.iter().for_each(|v| a.record(*v));
        if round == 1 {
            a.record(0.0);
        }
        let mut all = vals;
        if round == 1 {
            all.push(0.0);
        }
        recorded.push(all);
        clock.advance(std::time::Duration::from_secs(10));
        log.export(&metrics.snapshot()).unwrap();
    }
    // A series that appears in the last round only.
    log.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let intervals = read(&text);
    assert_eq!(intervals.len(), 3);
    for (k, (interval, vals)) in intervals.iter().zip(&recorded).enumerate() {
        assert_eq!(interval.tag, "request_duration_seconds;route=/a%2Cb%20c");
        assert_eq!(interval.hist.len(), vals.len() as u64, "interval {k}");
        let mut sorted = vals.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 0.9, 0.99] {
            let got = interval.hist.value_at_quantile(q) as f64 / 1e6;
            let want = exact(&sorted, q);
            assert!(close(got, want), "interval {k} p{q}: {got} vs {want}");
        }
        if k > 0 {
            // Contiguous: each interval starts where the one before ended.
            let before = &intervals[k - 1];
            assert!((before.start + before.length - interval.start).abs() < 0.002);
            assert!(
                (interval.length - 10.0).abs() < 0.002,
                "{}",
                interval.length
            );
        }
    }
    // Read back by HdrHistogram's Python implementation.
    let script = r#"
import json, sys
try:
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader
except ImportError:
    sys.exit(3)
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 1000 * 1000, 3))
out = []
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag()
    tag = tag.decode() if isinstance(tag, bytes) else tag
    out.append([tag, h.get_total_count(), [h.get_value_at_percentile(p) for p in (50, 90, 99)]])
print(json.dumps(out))
"#;
    let required = std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1");
    let out = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
    {
        Ok(out) if out.status.code() != Some(3) => out,
        _ => {
            assert!(
                !required,
                "python3 with hdrhistogram is required (VITALS_REQUIRE_TOOLS=1)"
            );
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = read.as_array().unwrap();
    assert_eq!(read.len(), 3, "{read:?}");
    for ((r, interval), vals) in read.iter().zip(&intervals).zip(&recorded) {
        assert_eq!(r[0], "request_duration_seconds;route=/a%2Cb%20c");
        assert_eq!(r[1].as_u64(), Some(vals.len() as u64));
        let mut sorted = vals.clone();
        sorted.sort_by(f64::total_cmp);
        for (p, q) in r[2].as_array().unwrap().iter().zip([0.5, 0.9, 0.99]) {
            let got = p.as_f64().unwrap() / 1e6;
            assert!(close(got, exact(&sorted, q)), "python p{q}: {got}");
            // The same answer as the crate's reader.
            assert_eq!(p.as_u64(), Some(interval.hist.value_at_quantile(q)));
        }
    }
}

#[test]
fn a_new_or_reset_series_starts_from_zero_and_unbucketed_ones_are_counted() {
    let dir = common::TempDir::new("hdr-log-new");
    let path = dir.path().join("x.hlog");
    let clock = std::sync::Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let mut log = HdrLogExporter::with_value_scale(&path, 1.0).unwrap();
    metrics.histogram("size_bytes", &[]).record(1_000.0);
    log.export(&metrics.snapshot()).unwrap();
    metrics.histogram("size_bytes", &[]).record(2_000.0);
    metrics.histogram("late_bytes", &[]).record(5.0);
    // Removed and brought back: counts from zero again.
    metrics.remove("size_bytes", &[]);
    metrics.histogram("size_bytes", &[]).record(3_000.0);
    log.export(&metrics.snapshot()).unwrap();
    log.flush().unwrap();
    let intervals = read(&std::fs::read_to_string(&path).unwrap());
    let by_tag = |tag: &str| -> Vec<u64> {
        intervals
            .iter()
            .filter(|i| i.tag == tag)
            .map(|i| i.hist.len())
            .collect()
    };
    assert_eq!(by_tag("size_bytes"), vec![1, 1]);
    assert_eq!(by_tag("late_bytes"), vec![1]);
    let last = intervals.iter().rfind(|i| i.tag == "size_bytes").unwrap();
    let v = last.hist.value_at_quantile(1.0) as f64;
    assert!((v - 3_000.0).abs() <= 0.0066 * 3_000.0 + 0.5, "{v}");

    let plain = MetricsCollector::new();
    plain.histogram("h", &[]).record(1.0);
    plain.histogram("h", &[("k", "v")]).record(1.0);
    log.export(&plain.snapshot()).unwrap();
    assert_eq!(log.left_out(), 2);
}
