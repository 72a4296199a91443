//! Series lifecycle: `remove`, `retain`, idle expiry, and handles that
//! outlive their series (L1–L3), with a manual clock.

use std::sync::Arc;
use std::time::Duration;

use vitals::{ManualClock, MetricsCollector, Snapshot, Window};

const IDLE: Duration = Duration::from_secs(300);

fn expiring() -> (Arc<ManualClock>, MetricsCollector) {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .expire_after(IDLE)
        .build();
    (clock, metrics)
}

fn user_series(snap: &Snapshot) -> usize {
    let user = |name: &str| !name.starts_with("vitals_");
    snap.counters.iter().filter(|s| user(&s.name)).count()
        + snap.gauges.iter().filter(|s| user(&s.name)).count()
        + snap.histograms.iter().filter(|s| user(&s.name)).count()
}

#[test]
fn a_removed_series_leaves_and_its_held_handle_brings_it_back_from_zero() {
    let metrics = MetricsCollector::new();
    let c = metrics.counter("jobs_total", &[("job", "a")]);
    let g = metrics.gauge("queue_depth", &[("q", "a")]);
    let h = metrics.histogram("job_seconds", &[("job", "a")]);
    c.increment(5);
    g.set(7.0);
    h.record(1.0);
    h.record(2.0);
    assert!(metrics.remove("jobs_total", &[("job", "a")]));
    assert!(metrics.remove("queue_depth", &[("q", "a")]));
    assert!(metrics.remove("job_seconds", &[("job", "a")]));
    assert!(
        !metrics.remove("jobs_total", &[("job", "a")]),
        "already removed"
    );
    let snap = metrics.snapshot();
    assert_eq!(user_series(&snap), 0, "{snap:?}");

    // Still removed while nothing updates it, snapshot after snapshot.
    assert_eq!(user_series(&metrics.snapshot()), 0);

    c.inc();
    g.set(7.0); // the same value: still an update
    h.record(4.0);
    let snap = metrics.snapshot();
    assert_eq!(snap.counter("jobs_total", &[("job", "a")]), Some(1.0));
    assert_eq!(snap.gauge("queue_depth", &[("q", "a")]), Some(7.0));
    let s = snap.histogram("job_seconds", &[("job", "a")]).unwrap();
    assert_eq!((s.lifetime.count, s.lifetime.sum), (1, 4.0));
    // The handle kept its whole count; the series counts from its return.
    assert_eq!(c.value(), 6);
    // A lookup finds the same storage as the held handle.
    assert!(c.same_series(&metrics.counter("jobs_total", &[("job", "a")])));
}

#[test]
fn a_removed_series_nobody_holds_is_freed_and_starts_afresh() {
    let metrics = MetricsCollector::new();
    metrics.counter("jobs_total", &[("job", "a")]).increment(5);
    assert!(metrics.remove("jobs_total", &[("job", "a")]));
    let again = metrics.counter("jobs_total", &[("job", "a")]);
    assert_eq!(again.value(), 0, "a new series, not the removed one");
    again.inc();
    assert_eq!(
        metrics.snapshot().counter("jobs_total", &[("job", "a")]),
        Some(1.0)
    );
}

#[test]
fn removal_frees_cardinality_slots() {
    let metrics = MetricsCollector::builder().cardinality_limit(2).build();
    for peer in ["a", "b"] {
        metrics.counter("peer_bytes_total", &[("peer", peer)]).inc();
    }
    assert!(metrics
        .try_counter("peer_bytes_total", &[("peer", "c")])
        .is_err());
    let removed = metrics
        .retain(|name, labels| name != "peer_bytes_total" || labels.get("peer") != Some("a"));
    assert_eq!(removed, 1);
    metrics
        .try_counter("peer_bytes_total", &[("peer", "c")])
        .unwrap()
        .inc();
    let snap = metrics.snapshot();
    assert_eq!(snap.counter("peer_bytes_total", &[("peer", "a")]), None);
    assert_eq!(
        snap.counter("peer_bytes_total", &[("peer", "c")]),
        Some(1.0)
    );
}

#[test]
fn retain_may_use_the_collector_inside_its_predicate() {
    let metrics = MetricsCollector::new();
    metrics.gauge("g", &[("k", "1")]).set(1.0);
    metrics.gauge("g", &[("k", "2")]).set(2.0);
    let removed = metrics.retain(|_, labels| {
        // Creating a series from the predicate must not deadlock.
        metrics.counter("retain_calls_total", &[]).inc();
        labels.get("k") != Some("2")
    });
    assert_eq!(removed, 1);
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("g", &[("k", "1")]), Some(1.0));
    assert_eq!(snap.gauge("g", &[("k", "2")]), None);
    assert!(snap.counter("retain_calls_total", &[]).unwrap() >= 2.0);
}

#[test]
fn idle_series_expire_and_active_ones_stay() {
    let (clock, metrics) = expiring();
    let busy = metrics.counter("busy_total", &[]);
    let idle = metrics.counter("idle_total", &[]);
    let steady = metrics.gauge("steady", &[]);
    let lat = metrics.histogram("lat_seconds", &[]);
    idle.inc();
    lat.record(0.1);
    for _ in 0..10 {
        busy.inc();
        steady.set(1.0); // never changes value, but is updated
        clock.advance(Duration::from_secs(60));
        metrics.snapshot();
    }
    let snap = metrics.snapshot();
    assert_eq!(snap.counter("busy_total", &[]), Some(10.0));
    assert_eq!(snap.gauge("steady", &[]), Some(1.0));
    assert_eq!(snap.counter("idle_total", &[]), None, "idle for 10 min");
    assert!(snap.histogram("lat_seconds", &[]).is_none());
    // The collector's own series never expire.
    metrics.counter("bad name", &[]).inc();
    clock.advance(IDLE * 2);
    let snap = metrics.snapshot();
    assert!(snap
        .counter("vitals_errors_total", &[("kind", "invalid_name")])
        .is_some());

    lat.record(0.2);
    idle.increment(2);
    let snap = metrics.snapshot();
    assert_eq!(snap.counter("idle_total", &[]), Some(2.0));
    let h = snap.histogram("lat_seconds", &[]).unwrap();
    assert_eq!(h.lifetime.count, 1);
    // The sum since the return is a difference of two float sums.
    assert!((h.lifetime.sum - 0.2).abs() < 1e-12, "{}", h.lifetime.sum);
}

#[test]
fn expire_after_must_be_positive() {
    let err = MetricsCollector::builder()
        .expire_after(Duration::ZERO)
        .try_build()
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_config");
    // `build` falls back to no expiry and keeps the error.
    let m = MetricsCollector::builder()
        .expire_after(Duration::ZERO)
        .build();
    assert!(m.snapshot().first_error.unwrap().contains("expire"));
}

#[test]
fn bucketed_histograms_count_their_buckets_from_zero_after_coming_back() {
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    metrics
        .configure_histogram_buckets("size_bytes", &[10.0, 100.0])
        .unwrap();
    let h = metrics.histogram("size_bytes", &[]);
    for v in [5.0, 50.0, 500.0] {
        h.record(v);
    }
    assert!(metrics.remove("size_bytes", &[]));
    h.record(50.0);
    let snap = metrics.snapshot();
    let s = snap.histogram("size_bytes", &[]).unwrap();
    let b = s.buckets.as_ref().unwrap();
    assert_eq!(b.cumulative, [0, 1]);
    assert_eq!(b.count, 1);
    assert_eq!(s.lifetime_buckets.as_ref().unwrap().count(), 1);
}

#[test]
fn updates_racing_expiry_are_never_lost() {
    let (clock, metrics) = expiring();
    let counter = metrics.counter("racing_total", &[]);
    let count_window = {
        metrics
            .configure_histogram("racing_values", Window::Count { values: 100 })
            .unwrap();
        metrics.histogram("racing_values", &[])
    };
    const THREADS: u64 = 4;
    const EACH: u64 = 20_000;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (c, h) = (counter.clone(), count_window.clone());
            std::thread::spawn(move || {
                for i in 0..EACH {
                    c.inc();
                    h.record(1.0);
                    // Bursts and pauses, so that idle spells happen.
                    if (i + t) % 2_000 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
        })
        .collect();
    // Each epoch (from a series' appearance to its disappearance) reports
    // a count from zero; the epochs add up to every update.
    let (mut counter_total, mut counter_now) = (0u64, None::<u64>);
    let (mut hist_total, mut hist_now) = (0u64, None::<u64>);
    let mut observe = |snap: &Snapshot| {
        let c = snap
            .counter_sample("racing_total", &[])
            .and_then(|c| c.value.as_u64());
        if c.is_none() {
            counter_total += counter_now.take().unwrap_or(0);
        }
        if let Some(v) = c {
            assert!(
                counter_now.is_none_or(|before| v >= before),
                "went backwards"
            );
            counter_now = Some(v);
        }
        let h = snap
            .histogram("racing_values", &[])
            .map(|h| h.lifetime.count);
        if h.is_none() {
            hist_total += hist_now.take().unwrap_or(0);
        }
        if let Some(v) = h {
            hist_now = Some(v);
        }
    };
    let mut expiries = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        clock.advance(IDLE);
        let snap = metrics.snapshot();
        expiries += usize::from(snap.counter("racing_total", &[]).is_none());
        observe(&snap);
    }
    for w in writers {
        w.join().unwrap();
    }
    // The last updates show up at the next snapshot.
    let snap = metrics.snapshot();
    observe(&snap);
    counter_total += counter_now.unwrap_or(0);
    hist_total += hist_now.unwrap_or(0);
    assert_eq!(counter_total, THREADS * EACH, "after {expiries} expiries");
    eprintln!("{expiries} expiries while the writers ran");
    assert_eq!(hist_total, THREADS * EACH);
    assert_eq!(counter.value(), THREADS * EACH);
}
