//! Many threads, exact totals; snapshots never see a counter go backwards;
//! no histogram value is lost to a racing window rotation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use vitals::{counter, histogram, ManualClock, MetricsCollector};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 1_000_000;

#[test]
fn eight_threads_a_million_each_give_exact_totals() {
    let metrics = MetricsCollector::new();
    let counter = metrics.counter("ops_total", &[]);
    let histogram = metrics.histogram("op_size", &[]);
    let gauge = metrics.gauge("level", &[]);
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (c, h, g, b) = (
                counter.clone(),
                histogram.clone(),
                gauge.clone(),
                barrier.clone(),
            );
            thread::spawn(move || {
                b.wait();
                for i in 0..PER_THREAD {
                    c.inc();
                    h.record(((i + t) % 1000 + 1) as f64);
                    if i % 100 == 0 {
                        g.increment(1.0);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let snap = metrics.snapshot();
    assert_eq!(
        snap.counter("ops_total", &[]),
        Some((THREADS * PER_THREAD) as f64)
    );
    let h = snap.histogram("op_size", &[]).unwrap();
    assert_eq!(h.window.count, THREADS * PER_THREAD);
    assert_eq!(h.lifetime.count, THREADS * PER_THREAD);
    // Each thread records every value 1..=1000 exactly 1000 times.
    assert_eq!(h.window.sum, (THREADS * 1000 * 500_500) as f64);
    assert_eq!((h.window.min, h.window.max), (Some(1.0), Some(1000.0)));
    assert_eq!(
        snap.gauge("level", &[]),
        Some((THREADS * PER_THREAD / 100) as f64)
    );
}

#[test]
fn macros_from_many_threads_give_exact_totals() {
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let parity = if t % 2 == 0 { "even" } else { "odd" };
                for _ in 0..100_000 {
                    counter!("conc_macro_total").inc();
                    counter!("conc_macro_labeled_total", "parity" => parity).inc();
                    histogram!("conc_macro_seconds").record(0.5);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let snap = vitals::global().snapshot();
    assert_eq!(snap.counter("conc_macro_total", &[]), Some(800_000.0));
    assert_eq!(
        snap.counter("conc_macro_labeled_total", &[("parity", "even")]),
        Some(400_000.0)
    );
    assert_eq!(
        snap.counter("conc_macro_labeled_total", &[("parity", "odd")]),
        Some(400_000.0)
    );
    assert_eq!(
        snap.histogram("conc_macro_seconds", &[])
            .unwrap()
            .lifetime
            .count,
        800_000
    );
}

#[test]
fn counters_never_go_backwards_across_concurrent_snapshots() {
    let metrics = MetricsCollector::new();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let c = metrics.counter("mono_total", &[]);
            thread::spawn(move || {
                for _ in 0..500_000 {
                    c.inc();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (m, done) = (metrics.clone(), done.clone());
            thread::spawn(move || {
                let mut last = 0.0;
                let mut reads = 0u32;
                while !done.load(Ordering::Relaxed) || reads < 10 {
                    let v = m.snapshot().counter("mono_total", &[]).unwrap_or(0.0);
                    assert!(v >= last, "counter went from {last} to {v}");
                    last = v;
                    reads += 1;
                }
                last
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() <= 2_000_000.0);
    }
    assert_eq!(
        metrics.snapshot().counter("mono_total", &[]),
        Some(2_000_000.0)
    );
}

#[test]
fn no_record_is_lost_while_the_window_rotates() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let h = metrics.histogram("rotating_seconds", &[]);
    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (m, clock, done) = (metrics.clone(), clock.clone(), done.clone());
        thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                clock.advance(Duration::from_secs(3));
                let life = m
                    .snapshot()
                    .histogram("rotating_seconds", &[])
                    .unwrap()
                    .lifetime
                    .count;
                assert!(life >= last, "lifetime count went from {last} to {life}");
                last = life;
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..250_000u32 {
                    h.record(f64::from(i % 100 + 1));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    rotator.join().unwrap();
    // This clock rotates the window every few microseconds, so a writer
    // descheduled inside `record` can straddle two rotations and land in a
    // slot whose merged counts are cached; it shows from the next rotation.
    // (With a real clock that takes a stall of a whole slot, 10 s.)
    clock.advance(Duration::from_secs(10));
    let life = &metrics.snapshot().histograms[0].summary.lifetime;
    assert_eq!(life.count, 1_000_000);
    assert_eq!(life.sum, 4.0 * 2500.0 * 5050.0);
}

#[test]
fn no_record_is_lost_across_octaves_while_slots_are_retired() {
    // Readers skip the octaves a slot has not marked as written; writers
    // mark them, and retiring a slot unmarks them. Values over 30 octaves
    // while a reader opens a slot (and retires one) at every snapshot: no
    // count may hide behind a mark cleared by a racing retirement.
    const WRITERS: u64 = 4;
    const EACH: u64 = 250_000;
    // Mostly a few octaves; every 97th value in one of 20 more, each of
    // those written rarely, so that a hidden count would stay hidden.
    let value = |t: u64, i: u64| {
        let octave = if i % 97 == 0 {
            10 + (i / 97 + t) % 20
        } else {
            (i + t) % 10
        };
        (1u64 << octave) as f64
    };
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let h = metrics.histogram("wide_bytes", &[]);
    let done = Arc::new(AtomicBool::new(false));
    let rotator = {
        let (m, clock, done) = (metrics.clone(), clock.clone(), done.clone());
        thread::spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                clock.advance(Duration::from_secs(10));
                let snap = m.snapshot();
                let life = snap.histogram("wide_bytes", &[]).unwrap().lifetime.count;
                assert!(life >= last, "lifetime count went from {last} to {life}");
                last = life;
            }
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    h.record(value(t, i));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    rotator.join().unwrap();
    // Every partial sum is an integer below 2^53: the float sums are exact.
    let sum: f64 = (0..WRITERS)
        .flat_map(|t| (0..EACH).map(move |i| value(t, i)))
        .sum();
    // As in the test above, a write delayed across two rotations shows from
    // the next one; then the window, then the retired slots, hold it all.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(10));
        let snap = metrics.snapshot();
        let s = snap.histogram("wide_bytes", &[]).unwrap();
        assert_eq!(s.lifetime.count, WRITERS * EACH);
        assert_eq!(s.lifetime.sum, sum);
        let buckets = s.lifetime_buckets.as_ref().unwrap();
        let in_buckets: u64 = buckets.counts.iter().map(|(_, c)| c).sum();
        assert_eq!(in_buckets + buckets.zeros, WRITERS * EACH);
    }
    clock.advance(Duration::from_secs(120));
    let snap = metrics.snapshot();
    let s = snap.histogram("wide_bytes", &[]).unwrap();
    assert_eq!((s.window.count, s.lifetime.count), (0, WRITERS * EACH));
    assert_eq!(s.lifetime.sum, sum);
}

#[test]
fn handles_and_collectors_are_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<vitals::Counter>();
    assert_traits::<vitals::Gauge>();
    assert_traits::<vitals::Histogram>();
    assert_traits::<MetricsCollector>();
    assert_traits::<vitals::Snapshot>();
    // Handles are small: a tag and a pointer.
    assert!(std::mem::size_of::<vitals::Counter>() <= 16);
    assert!(std::mem::size_of::<vitals::Histogram>() <= 16);
}
