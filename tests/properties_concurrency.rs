//! Property tests under concurrency: 4 or more threads record while
//! another snapshots repeatedly.
//!
//! * a histogram's window never holds more values than its life, for time
//!   and count windows alike, in every snapshot;
//! * with lifetime buckets, each bucket list holds exactly the count of its
//!   statistics in every snapshot, no lifetime bucket goes down, and the
//!   lifetime list ends exact;
//! * counters never go backwards across snapshots, and end exact;
//! * series registered from many threads at once are one series each,
//!   within the cardinality limit.
//!
//! A race shows itself only in some runs: a failing case is saved in the
//! regressions file like any other, but may need a few runs to fail again.
//! Nothing here measures time.

#[path = "common/gen.rs"]
mod gen;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use vitals::{ManualClock, MetricsCollector, Window};

fn small_window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (1u32..=64).prop_map(|values| Window::Count { values }),
        (1u32..=6, 1u64..=5).prop_map(|(slots, secs)| Window::Time {
            length: Duration::from_secs(secs),
            slots
        }),
    ]
}

proptest! {
    #![proptest_config(gen::config(64))]

    /// 4–6 threads record into one histogram (and a clock thread moves
    /// time on) while the test snapshots: in every snapshot the window
    /// count is at most the lifetime count (and a count window at most its
    /// size), the lifetime count never goes down, and at the end both are
    /// exact.
    ///
    /// Failed before its fix (in some runs): defect 11 (a count window's count can
    /// exceed the lifetime count under concurrent load).
    #[test]
    fn the_window_never_holds_more_than_the_lifetime(
        window in small_window(),
        threads in 4usize..=6,
        per_thread in 200u64..1500,
        value_scale in prop_oneof![Just(1e-3), Just(1.0), Just(1e6)],
    ) {
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder().clock(clock.clone()).histogram_window(window).build();
        let h = m.histogram("h", &[]);
        let done = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(threads + 1));
        let recorders: Vec<_> = (0..threads)
            .map(|t| {
                let (h, start) = (h.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for i in 0..per_thread {
                        h.record(value_scale * (1 + (i + t as u64) % 97) as f64);
                    }
                })
            })
            .collect();
        let ticker = {
            let (clock, done) = (clock.clone(), Arc::clone(&done));
            thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    clock.advance(Duration::from_millis(7));
                    thread::yield_now();
                }
            })
        };
        start.wait();
        let total = threads as u64 * per_thread;
        let mut last_life = 0;
        let mut problem = None;
        loop {
            let finished = recorders.iter().all(|r| r.is_finished());
            let snap = m.snapshot();
            let s = snap.histogram("h", &[]).unwrap();
            if s.window.count > s.lifetime.count {
                problem = Some(format!("window count {} > lifetime count {}", s.window.count, s.lifetime.count));
            } else if let Window::Count { values } = window {
                if s.window.count > u64::from(values) {
                    problem = Some(format!("count window of {values} holds {}", s.window.count));
                }
            }
            if s.lifetime.count < last_life {
                problem = Some(format!("lifetime count went from {last_life} to {}", s.lifetime.count));
            }
            last_life = s.lifetime.count;
            if problem.is_some() || finished {
                break;
            }
        }
        for r in recorders {
            r.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
        let s = m.snapshot().histograms.into_iter().find(|h| &*h.name == "h").unwrap().summary;
        prop_assert_eq!(s.lifetime.count, total);
        prop_assert!(s.window.count <= total);
        if let Window::Count { values } = window {
            prop_assert_eq!(s.window.count, total.min(u64::from(values)));
        }
    }

    /// 4–6 threads record into a time-window histogram while the test
    /// moves the clock on and snapshots, so that slots open and close
    /// under the writers: once they are done, every value is counted in
    /// the lifetime (none lost), and no snapshot saw the window hold more
    /// than the life.
    ///
    /// Failed before its fix (in some runs; new finding B): values recorded while a
    /// snapshot opens a new slot can be lost for good. With 5 threads ×
    /// 1521 values and 250 ms between snapshots of a 60 s / 6-slot window,
    /// about 1 run in 20 ends with the lifetime count 1 to 5 short.
    #[test]
    fn no_record_is_lost_while_time_windows_rotate(
        threads in 4usize..=6,
        per_thread in 200u64..2000,
        // 100–250 ms between snapshots of a 60 s window loses values most
        // often (finding B), so those steps come up most.
        step in prop::sample::select(vec![Duration::from_millis(1), Duration::from_millis(100), Duration::from_millis(250), Duration::from_millis(250), Duration::from_millis(250), Duration::from_secs(1), Duration::from_secs(10)]),
        window in prop_oneof![3 => Just(Window::default()), 1 => (1u32..=6, 1u64..=5).prop_map(|(slots, secs)| Window::Time { length: Duration::from_secs(secs), slots })],
    ) {
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder().clock(clock.clone()).histogram_window(window).build();
        let h = m.histogram("h", &[]);
        let start = Arc::new(Barrier::new(threads + 1));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (h, start) = (h.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for i in 1..=per_thread {
                        h.record(i as f64);
                    }
                })
            })
            .collect();
        start.wait();
        let mut problem = None;
        loop {
            let finished = workers.iter().all(|w| w.is_finished());
            clock.advance(step);
            let snap = m.snapshot();
            let s = &snap.histogram("h", &[]).unwrap();
            if s.window.count > s.lifetime.count {
                problem = Some(format!("window count {} > lifetime count {}", s.window.count, s.lifetime.count));
            }
            if problem.is_some() || finished {
                break;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
        let total = threads as u64 * per_thread;
        let snap = m.snapshot();
        let s = snap.histogram("h", &[]).unwrap();
        prop_assert_eq!(s.lifetime.count, total, "values lost");
        prop_assert_eq!(s.window.count <= total, true);
    }

    /// 4–6 threads record into a histogram of a collector with lifetime
    /// buckets, each thread into a few octaves of its own at a time, while
    /// the test moves the clock on and snapshots (reads that re-read only
    /// the octaves that moved, splicing them into the last lists, and
    /// reads of every octave once a slot leaves the window): in every
    /// snapshot each bucket list holds exactly the count its statistics
    /// give, no lifetime bucket goes down, and at the end the lifetime
    /// list is exactly the values recorded.
    #[test]
    fn spliced_bucket_lists_hold_exactly_the_counts_under_writers(
        threads in 4usize..=6,
        per_thread in 2_000u64..20_000,
        step in prop::sample::select(vec![Duration::from_millis(1), Duration::from_millis(250), Duration::from_secs(3), Duration::from_secs(10)]),
        window in prop_oneof![3 => Just(Window::default()), 1 => (1u32..=6, 1u64..=5).prop_map(|(slots, secs)| Window::Time { length: Duration::from_secs(secs), slots })],
    ) {
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder()
            .clock(clock.clone())
            .histogram_window(window)
            .lifetime_buckets(true)
            .build();
        let h = m.histogram("h", &[]);
        // Thread t writes 1e-6 · 2^(3t + i mod 7 / 2): octaves of its own,
        // a few at a time, some shared with its neighbours.
        let value = |t: usize, i: u64| 1e-6 * 2f64.powf(3.0 * t as f64 + (i % 7) as f64 / 2.0 + (i % 5) as f64 * 0.01);
        let start = Arc::new(Barrier::new(threads + 1));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (h, start) = (h.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for i in 1..=per_thread {
                        h.record(if i % 97 == 0 { 0.0 } else { value(t, i) });
                    }
                })
            })
            .collect();
        start.wait();
        let mut last: Option<Arc<vitals::snapshot::SparseBuckets>> = None;
        loop {
            let finished = workers.iter().all(|w| w.is_finished());
            clock.advance(step);
            let snap = m.snapshot();
            let s = &snap.histogram("h", &[]).unwrap();
            let (lifetime, window) = (
                s.lifetime_buckets.clone().unwrap(),
                s.window_buckets.clone().unwrap(),
            );
            prop_assert_eq!(lifetime.count(), s.lifetime.count);
            prop_assert_eq!(window.count(), s.window.count);
            if let Some(before) = &last {
                for &(i, c) in &before.counts {
                    let now = lifetime.counts.iter().find(|(j, _)| *j == i).map_or(0, |(_, c)| *c);
                    prop_assert!(now >= c, "bucket {} went from {} to {}", i, c, now);
                }
            }
            last = Some(lifetime);
            if finished {
                break;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        let mut want = vitals::snapshot::SparseBuckets::default();
        for t in 0..threads {
            for i in 1..=per_thread {
                want.record(if i % 97 == 0 { 0.0 } else { value(t, i) });
            }
        }
        clock.advance(step);
        let snap = m.snapshot();
        let s = &snap.histogram("h", &[]).unwrap();
        prop_assert_eq!(s.lifetime.count, threads as u64 * per_thread);
        prop_assert_eq!(&**s.lifetime_buckets.as_ref().unwrap(), &want);
    }

    /// 4–6 threads increment counters (by 1, by n, through `absolute` on
    /// their own counter) and raise a `set_max` gauge while the test
    /// snapshots: no counter and no `set_max` gauge ever reads lower than
    /// before, every rate is a finite number at least 0,
    /// and the final totals are exact.
    #[test]
    fn counters_never_go_backwards_across_snapshots(
        threads in 4usize..=6,
        per_thread in 200u64..2000,
        step in 1u64..1000,
    ) {
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder().clock(clock.clone()).build();
        let start = Arc::new(Barrier::new(threads + 1));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (m, start) = (m.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    let shared = m.counter("shared_total", &[]);
                    let by_n = m.counter("by_n_total", &[]);
                    let own = m.counter("absolute_total", &[("thread", &t.to_string())]);
                    let high = m.gauge("high_water", &[]);
                    start.wait();
                    for i in 1..=per_thread {
                        shared.inc();
                        by_n.increment(step);
                        own.absolute(i * step);
                        high.set_max((i * step) as f64);
                        // The macro path lands in the same series.
                        vitals::counter!(collector: m, "shared_total").inc();
                    }
                })
            })
            .collect();
        start.wait();
        let mut last: std::collections::HashMap<String, f64> = Default::default();
        let mut problem = None;
        loop {
            let finished = workers.iter().all(|w| w.is_finished());
            clock.advance(Duration::from_millis(250));
            let snap = m.snapshot();
            let mut readings: Vec<(String, f64)> = snap
                .counters
                .iter()
                .map(|c| (format!("{}{}", c.name, vitals::Labels::to_string(&c.labels)), c.value.as_f64()))
                .collect();
            readings.extend(snap.gauges.iter().map(|g| (g.name.to_string(), g.value)));
            for (key, v) in readings {
                if let Some(before) = last.insert(key.clone(), v) {
                    if v < before {
                        problem = Some(format!("{key} went from {before} to {v}"));
                    }
                }
            }
            for c in &snap.counters {
                if let Some(rate) = c.rate {
                    if !(rate.per_second.is_finite() && rate.per_second >= 0.0) {
                        problem = Some(format!("rate of {} is {:?}", c.name, rate));
                    }
                }
            }
            if problem.is_some() || finished {
                break;
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
        let snap = m.snapshot();
        let n = threads as u64 * per_thread;
        prop_assert_eq!(snap.counter_sample("shared_total", &[]).and_then(|c| c.value.as_u64()), Some(2 * n));
        prop_assert_eq!(snap.counter_sample("by_n_total", &[]).and_then(|c| c.value.as_u64()), Some(n * step));
        for t in 0..threads {
            prop_assert_eq!(snap.counter_sample("absolute_total", &[("thread", &t.to_string())]).and_then(|c| c.value.as_u64()), Some(per_thread * step));
        }
        prop_assert_eq!(snap.gauge("high_water", &[]), Some((per_thread * step) as f64));
    }

    /// 4–6 threads ask for the same label sets at once, through `try_*`,
    /// the plain methods and the macros, in different label orders: each
    /// label set is one series with the exact total, the cardinality limit
    /// holds, and what is past it lands in the one overflow series.
    #[test]
    fn concurrent_registration_gives_one_series_per_label_set(
        threads in 4usize..=6,
        label_sets in 1usize..12,
        limit in 1usize..10,
        rounds in 1u64..50,
    ) {
        let m = MetricsCollector::builder().cardinality_limit(limit).build();
        let start = Arc::new(Barrier::new(threads));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (m, start) = (m.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..rounds {
                        for s in 0..label_sets {
                            let v = s.to_string();
                            let (a, b) = (("a", v.as_str()), ("b", "x"));
                            let labels = if t % 2 == 0 { [a, b] } else { [b, a] };
                            match t % 3 {
                                0 => m.counter("reg_total", &labels).inc(),
                                1 => vitals::counter!(collector: m, "reg_total", labels[0].0 => labels[0].1, labels[1].0 => labels[1].1).inc(),
                                _ => match m.try_counter("reg_total", &labels) {
                                    Ok(c) => c.inc(),
                                    Err(vitals::Error::CardinalityLimit { .. }) => m.counter("reg_total", &labels).inc(),
                                    Err(e) => panic!("unexpected {e}"),
                                },
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let snap = m.snapshot();
        let series: Vec<_> = snap.counters.iter().filter(|c| &*c.name == "reg_total").collect();
        let regular: Vec<_> = series.iter().filter(|c| c.labels.get("vitals_overflow").is_none()).collect();
        prop_assert_eq!(regular.len(), label_sets.min(limit));
        prop_assert_eq!(m.cardinality("reg_total"), Some(label_sets.min(limit)));
        let per_set = threads as u64 * rounds;
        for c in &regular {
            prop_assert_eq!(c.value, per_set, "{:?}", c.labels);
        }
        let total: u64 = series.iter().filter_map(|c| c.value.as_u64()).sum();
        prop_assert_eq!(total, per_set * label_sets as u64);
        let overflowed = series.len() - regular.len();
        prop_assert_eq!(overflowed, usize::from(label_sets > limit));
    }
}

proptest! {
    #![proptest_config(gen::config(16))]

    /// Snapshots that each open a fresh, empty window (a 1 s, one-slot
    /// window and 10 s between snapshots) while 1–4 threads record never
    /// panic, and report a window whose min and max are finite with
    /// min <= max whenever it holds values.
    ///
    /// Failed before its fix (new finding C): a snapshot can read a bucket count of
    /// the fresh slot before the writer has set the slot's min and max, and
    /// then panics in `f64::clamp` ("min > max, or either was NaN. min =
    /// inf, max = 0.0", `bucket_stats` in src/metrics/histogram/time.rs);
    /// about 4 snapshots in 20,000 here, in release builds too (`clamp`
    /// asserts).
    #[test]
    fn snapshots_of_fresh_slots_never_panic(
        threads in 1usize..=4,
        snapshots in 1000usize..2000,
    ) {
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder()
            .clock(clock.clone())
            .histogram_window(Window::Time { length: Duration::from_secs(1), slots: 1 })
            .build();
        let h = m.histogram("h", &[]);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (h, stop) = (h.clone(), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut i = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        i = i.wrapping_add(1);
                        h.record(f64::from(i % 1000 + 1));
                    }
                })
            })
            .collect();
        let mut problem = None;
        for _ in 0..snapshots {
            clock.advance(Duration::from_secs(10));
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.snapshot())) {
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                    problem = Some(format!("the snapshot panicked: {message:?}"));
                }
                Ok(snap) => {
                    let w = &snap.histogram("h", &[]).unwrap().window;
                    let ok = matches!((w.min, w.max), (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo <= hi);
                    if w.count > 0 && !ok {
                        problem = Some(format!("window of {} values with min {:?}, max {:?}", w.count, w.min, w.max));
                    }
                }
            }
            if problem.is_some() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        if let Some(p) = problem {
            return Err(TestCaseError::fail(p));
        }
    }
}
