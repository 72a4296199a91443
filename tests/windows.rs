//! Rolling windows and rates, driven by a manual clock.

use std::sync::Arc;
use std::time::Duration;

use vitals::{Clock, ManualClock, MetricsCollector, Window};

fn with_clock() -> (Arc<ManualClock>, MetricsCollector) {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    (clock, metrics)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Reads every `step` seconds until `until`, as a reporter would.
fn read_until(clock: &ManualClock, metrics: &MetricsCollector, until: f64, step: f64) {
    while clock.monotonic().as_secs_f64() + step <= until + 1e-9 {
        clock.advance(secs(step));
        metrics.snapshot();
    }
}

#[test]
fn values_leave_the_time_window_slot_by_slot() {
    let (clock, metrics) = with_clock();
    let h = metrics.histogram("latency_seconds", &[]);
    for _ in 0..10 {
        h.record(1.0); // in the slot opened at 0 s, closed by the read at 10 s
    }
    read_until(&clock, &metrics, 25.0, 5.0);
    for _ in 0..5 {
        h.record(2.0); // in the slot opened at 20 s, closed at 30 s
    }
    let w = metrics
        .snapshot()
        .histogram("latency_seconds", &[])
        .unwrap()
        .window
        .clone();
    assert_eq!((w.count, w.sum), (15, 20.0));
    assert_eq!(w.span_seconds, 25.0);

    read_until(&clock, &metrics, 55.0, 5.0);
    let w = metrics.snapshot().histograms[0].summary.window.clone();
    assert_eq!(w.count, 15, "six slots: [0, 10) .. [50, 55]");
    assert_eq!(w.span_seconds, 55.0);

    read_until(&clock, &metrics, 60.0, 5.0);
    let s = metrics.snapshot().histograms[0].summary.clone();
    assert_eq!(
        (s.window.count, s.window.sum),
        (5, 10.0),
        "the first slot was reused at 60 s"
    );
    assert_eq!((s.window.min, s.window.max), (Some(2.0), Some(2.0)));
    assert_eq!(
        s.window.span_seconds, 50.0,
        "from the oldest slot still in the window"
    );
    assert_eq!((s.lifetime.count, s.lifetime.sum), (15, 20.0));
    assert_eq!((s.lifetime.min, s.lifetime.max), (Some(1.0), Some(2.0)));

    read_until(&clock, &metrics, 80.0, 5.0);
    let s = metrics.snapshot().histograms[0].summary.clone();
    assert_eq!(s.window.count, 0);
    assert_eq!(s.window.quantiles, None);
    assert_eq!(s.window.mean, None);
    assert_eq!(s.lifetime.count, 15, "nothing is lost from the life totals");
}

#[test]
fn a_long_gap_between_reads_is_reported_as_the_span() {
    let (clock, metrics) = with_clock();
    let h = metrics.histogram("latency_seconds", &[]);
    h.record(1.0);
    clock.advance(secs(3600.0));
    h.record(2.0);
    // Without reads the window cannot tell when in the hour each value came,
    // so it keeps both and says it covered the whole hour.
    let w = metrics.snapshot().histograms[0].summary.window.clone();
    assert_eq!((w.count, w.span_seconds), (2, 3600.0));
    // A reporter reading once per window length still sees every value.
    h.record(3.0);
    clock.advance(secs(60.0));
    let w = metrics.snapshot().histograms[0].summary.window.clone();
    assert_eq!((w.count, w.sum, w.span_seconds), (1, 3.0, 60.0));
}

#[test]
fn a_custom_time_window_is_honoured() {
    let (clock, metrics) = with_clock();
    metrics
        .configure_histogram(
            "batch",
            Window::Time {
                length: secs(4.0),
                slots: 2,
            },
        )
        .unwrap();
    let h = metrics.histogram("batch", &[]);
    h.record(7.0);
    clock.advance(secs(2.0));
    metrics.snapshot(); // opens the second slot
    h.record(9.0);
    assert_eq!(metrics.snapshot().histograms[0].summary.window.count, 2);
    clock.advance(secs(2.0));
    let w = metrics.snapshot().histograms[0].summary.window.clone();
    assert_eq!((w.count, w.max), (1, Some(9.0)));
    assert_eq!(
        w.window,
        Window::Time {
            length: secs(4.0),
            slots: 2
        }
    );
}

#[test]
fn the_count_window_keeps_exactly_the_last_n() {
    let (clock, metrics) = with_clock();
    metrics
        .configure_histogram("sizes", Window::Count { values: 100 })
        .unwrap();
    let h = metrics.histogram("sizes", &[]);
    for v in 1..=250 {
        h.record(f64::from(v));
    }
    let s = metrics.snapshot().histograms[0].summary.clone();
    assert_eq!(s.window.count, 100);
    assert_eq!((s.window.min, s.window.max), (Some(151.0), Some(250.0)));
    assert_eq!(s.window.sum, (151..=250).sum::<u32>() as f64);
    let q = s.window.quantiles.unwrap();
    // Exact nearest-rank quantiles of 151..=250.
    assert_eq!(
        (q.p50, q.p90, q.p95, q.p99, q.p999),
        (200.0, 240.0, 245.0, 249.0, 250.0)
    );
    assert_eq!(s.lifetime.count, 250);
    assert_eq!(s.lifetime.sum, (1..=250).sum::<u32>() as f64);
    assert_eq!((s.lifetime.min, s.lifetime.max), (Some(1.0), Some(250.0)));
    // Time does not push values out of a count window.
    clock.advance(secs(86_400.0));
    assert_eq!(metrics.snapshot().histograms[0].summary.window.count, 100);
}

#[test]
fn the_count_window_span_reaches_back_to_its_oldest_value() {
    let (clock, metrics) = with_clock();
    metrics
        .configure_histogram("sizes", Window::Count { values: 10 })
        .unwrap();
    let h = metrics.histogram("sizes", &[]);
    for _ in 0..10 {
        h.record(1.0);
    }
    clock.advance(secs(5.0));
    assert_eq!(
        metrics.snapshot().histograms[0].summary.window.span_seconds,
        5.0
    );
    clock.advance(secs(5.0));
    for _ in 0..10 {
        h.record(2.0); // the oldest value now was recorded after the t = 5 snapshot
    }
    clock.advance(secs(1.0));
    let w = metrics.snapshot().histograms[0].summary.window.clone();
    assert_eq!(w.sum, 20.0);
    assert_eq!(
        w.span_seconds, 6.0,
        "upper bound: since the snapshot at t = 5"
    );
}

#[test]
fn counter_rates_follow_the_clock() {
    let (clock, metrics) = with_clock();
    let c = metrics.counter("requests_total", &[]);
    assert_eq!(
        metrics.snapshot().counters[0].rate,
        None,
        "no time has passed"
    );
    c.increment(100);
    clock.advance(secs(10.0));
    let r = metrics.snapshot().counters[0].rate.unwrap();
    assert_eq!((r.per_second, r.span_seconds), (10.0, 10.0));
    c.increment(50);
    clock.advance(secs(10.0));
    let r = metrics.snapshot().counters[0].rate.unwrap();
    assert_eq!((r.per_second, r.span_seconds), (7.5, 20.0));
    // Snapshot every 10 s for a while at 20/s: the rate settles on the last 60 s.
    for _ in 0..8 {
        c.increment(200);
        clock.advance(secs(10.0));
        metrics.snapshot();
    }
    let r = metrics.snapshot().counters[0].rate.unwrap();
    assert_eq!((r.per_second, r.span_seconds), (20.0, 60.0));
    // The counter stops: the rate falls to zero once the window has passed.
    clock.advance(secs(61.0));
    let r = metrics.snapshot().counters[0].rate.unwrap();
    assert_eq!(r.per_second, 0.0);
}

#[test]
fn uptime_and_timestamp_come_from_the_clock() {
    let (clock, metrics) = with_clock();
    let first = metrics.snapshot();
    clock.advance(secs(90.0));
    let later = metrics.snapshot();
    assert_eq!(later.uptime_seconds, 90.0);
    assert_eq!(later.timestamp_unix_ms - first.timestamp_unix_ms, 90_000);
}
