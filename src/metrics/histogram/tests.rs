//! Unit tests of histograms: buckets, edge values, the time window's
//! writers and reader, memory.

use super::*;

fn time_histogram() -> Histogram {
    Histogram::from_storage(Storage::new(
        HistogramCore::new(Window::default(), Duration::ZERO, None),
        false,
    ))
}

#[test]
fn bucket_midpoints_are_within_bound_of_their_values() {
    for v in [
        MIN_TRACKABLE,
        1e-6,
        0.5,
        1.0,
        1.015625,
        3.0,
        1e6,
        123456.789,
        MAX_TRACKABLE,
    ] {
        let p = crate::metrics::layout::position_of_bits(v.to_bits());
        let mid = bucket_midpoint(p / SUBS, p % SUBS);
        assert!(((mid - v) / v).abs() <= 0.00543, "{v} -> {mid}");
    }
}

/// The standard deviation of a time window is that of the bucket
/// midpoints (to 2⁻¹⁶), whether the values spread over decades or
/// crowd around the mean, where the moments' terms cancel.
#[test]
fn stddev_is_that_of_the_bucket_midpoints() {
    let spread: Vec<f64> = (1..=5000).map(|i| f64::from(i).powf(2.1) * 1e-6).collect();
    let crowd: Vec<f64> = (0..5000).map(|i| 3.0 + f64::from(i % 7) * 1e-3).collect();
    let mixed: Vec<f64> = (0..5000)
        .map(|i| {
            if i % 100 == 0 {
                1e6
            } else {
                0.01 * (1.0 + f64::from(i % 3))
            }
        })
        .collect();
    for values in [spread, crowd, mixed] {
        let h = time_histogram();
        values.iter().for_each(|v| h.record(*v));
        let w = h.summary(Duration::ZERO).window;
        let mean = w.sum / values.len() as f64;
        // The representative the standard deviation takes: the
        // midpoint within 2⁻¹⁶ (see `bucket_math::W1`).
        let mid = |v: f64| {
            let p = crate::metrics::layout::position_of_bits(v.to_bits());
            bucket_math::stddev_representative(bucket_midpoint(p / SUBS, 0), p % SUBS)
        };
        let squares: f64 = values.iter().map(|v| (mid(*v) - mean).powi(2)).sum();
        let want = (squares / values.len() as f64).sqrt();
        let got = w.stddev.unwrap();
        assert!((got - want).abs() <= 1e-6 * want, "{got} vs {want}");
    }
}

#[test]
fn edge_values_are_clamped_counted_or_dropped() {
    let h = time_histogram();
    h.record(0.0);
    h.record(-0.0);
    h.record(1e-300);
    h.record(f64::INFINITY);
    h.record(1e300);
    h.record(-1.0);
    h.record(f64::NAN);
    h.record(f64::NEG_INFINITY);
    let s = h.summary(Duration::ZERO);
    assert_eq!(s.window.count, 5);
    assert_eq!(s.saturated, 3);
    assert_eq!(s.dropped, 3);
    assert_eq!(s.window.min, Some(0.0));
    assert_eq!(s.window.max, Some(MAX_TRACKABLE));
    let q = s.window.quantiles.unwrap();
    assert!((q.p50 - MIN_TRACKABLE).abs() / MIN_TRACKABLE <= 0.0055);
    assert!((MAX_TRACKABLE - q.p999) / MAX_TRACKABLE <= 0.0055);
}

#[test]
fn window_config_bounds_are_checked() {
    assert!(Window::Time {
        length: Duration::from_secs(1),
        slots: 0
    }
    .validate()
    .is_err());
    assert!(Window::Time {
        length: Duration::from_secs(1),
        slots: 65
    }
    .validate()
    .is_err());
    assert!(Window::Time {
        length: Duration::from_micros(10),
        slots: 2
    }
    .validate()
    .is_err());
    assert!(Window::Count { values: 1_000_001 }.validate().is_err());
    assert!(Window::Count { values: 1 }.validate().is_ok());
}

/// More threads than writer slots, all alive at once: the threads
/// without a slot take the atomic path, and every value is counted,
/// in the window and the lifetime, with the exact sum.
#[test]
fn more_threads_than_writer_slots_lose_nothing() {
    let h = time_histogram();
    let threads = crate::metrics::writers::writer_slots() + 4;
    let start = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (h, start) = (h.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                for i in 0..1000u32 {
                    h.record(f64::from(1 + (i + t as u32) % 50));
                }
                h.record(0.0);
                // Hold the slot until every thread has written.
                start.wait();
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = h.summary(Duration::ZERO);
    let count = threads as u64 * 1001;
    let sum: u64 = (0..threads as u32)
        .map(|t| {
            (0..1000u32)
                .map(|i| u64::from(1 + (i + t) % 50))
                .sum::<u64>()
        })
        .sum();
    assert_eq!((s.window.count, s.lifetime.count), (count, count));
    assert_eq!((s.window.sum, s.lifetime.sum), (sum as f64, sum as f64));
    assert_eq!((s.window.min, s.window.max), (Some(0.0), Some(50.0)));
    let WindowCore::Time(w) = &h.core.kind else {
        unreachable!()
    };
    assert!(w.shared.get().is_some(), "some thread took the atomic path");
}

/// A writer that read the clock word before a rotation and writes
/// after it: its count and sum show in the next snapshot's window and
/// lifetime. (Its count then belongs to the slot after the one its sum
/// is tagged with: see `TimeReader`.)
#[test]
fn a_write_with_a_stale_clock_word_is_counted() {
    let h = time_histogram();
    h.record(2.0);
    let WindowCore::Time(w) = &h.core.kind else {
        unreachable!()
    };
    let stale = w.clock.load(Ordering::Relaxed);
    assert_eq!(h.summary(Duration::from_secs(10)).window.count, 1);
    assert_ne!(w.clock.load(Ordering::Relaxed), stale);
    // The one stripe that took the first value (this thread's own, or the
    // shared one if every writer slot was taken meanwhile).
    let (_, stripe) = w.stripes().next().unwrap();
    let bits = 2f64.to_bits();
    stripe.add_owned(crate::metrics::layout::position_of_bits(bits), bits, stale);
    let s = h.summary(Duration::from_secs(11));
    assert_eq!((s.window.count, s.window.sum), (2, 4.0));
    assert_eq!((s.lifetime.count, s.lifetime.sum), (2, 4.0));
    // Once the window has moved past both, the lifetime keeps them.
    h.summary(Duration::from_secs(75));
    let s = h.summary(Duration::from_secs(140));
    assert_eq!((s.window.count, s.window.sum), (0, 0.0));
    assert_eq!((s.lifetime.count, s.lifetime.sum), (2, 4.0));
}

/// A thread that exits gives its writer slot back; the next thread
/// to take it continues the same counters.
#[test]
fn a_reused_writer_slot_continues_the_counts() {
    let h = time_histogram();
    for round in 1..=4u64 {
        let h2 = h.clone();
        std::thread::spawn(move || {
            for _ in 0..100 {
                h2.record(3.0);
            }
        })
        .join()
        .unwrap();
        let s = h.summary(Duration::ZERO);
        assert_eq!(
            (s.lifetime.count, s.window.sum),
            (100 * round, 300.0 * round as f64)
        );
    }
}

/// Reading twice with no write in between gives the same statistics
/// (the second from the cache); a write, or a slot turning, is seen.
#[test]
fn unchanged_reads_repeat_and_changes_show() {
    let h = time_histogram();
    for v in [1.0, 2.0, 4.0] {
        h.record(v);
    }
    let a = h.summary(Duration::from_secs(1));
    let b = h.summary(Duration::from_secs(2));
    assert_eq!(a.window.quantiles, b.window.quantiles);
    assert_eq!((a.window.count, b.window.count), (3, 3));
    assert_eq!(b.window.span_seconds, 2.0);
    h.record(8.0);
    assert_eq!(h.summary(Duration::from_secs(3)).window.count, 4);
    // The slot open since 0 s closes at 70 s and leaves the window a
    // window's length later; the lifetime keeps its values.
    assert_eq!(h.summary(Duration::from_secs(70)).window.count, 4);
    let s = h.summary(Duration::from_secs(130));
    assert_eq!((s.window.count, s.lifetime.count), (0, 4));
}

#[test]
fn memory_stays_small_for_four_decades() {
    let h = time_histogram();
    let mut v = 0.001;
    while v < 10.0 {
        h.record(v);
        v *= 1.01;
    }
    // A snapshot caches the closed slots; it counts too.
    let _ = h.summary(Duration::from_secs(30));
    let bytes = h.heap_bytes();
    eprintln!("four decades, default window: {bytes} bytes");
    assert!(bytes <= 31 * 1024, "{bytes} bytes");
}

#[test]
fn bucket_bounds_are_validated() {
    assert!(validate_bucket_bounds("h", &[]).is_err());
    assert!(validate_bucket_bounds("h", &[1.0, f64::INFINITY]).is_err());
    assert!(validate_bucket_bounds("h", &[f64::NAN]).is_err());
    assert!(validate_bucket_bounds("h", &[1.0, 1.0]).is_err());
    assert!(validate_bucket_bounds("h", &[2.0, 1.0]).is_err());
    assert!(validate_bucket_bounds("h", &[-1.0, 1.0]).is_err());
    assert!(validate_bucket_bounds("h", &vec![1.0; MAX_BUCKETS + 1]).is_err());
    let many: Vec<f64> = (0..MAX_BUCKETS).map(|i| i as f64).collect();
    assert!(validate_bucket_bounds("h", &many).is_ok());
}

#[test]
fn buckets_count_edges_inclusively_and_skip_dropped_values() {
    let h = Histogram::from_storage(Storage::new(
        HistogramCore::new(Window::default(), Duration::ZERO, Some(&[0.0, 1.0, 2.0])),
        false,
    ));
    for v in [
        0.0,
        1.0,
        1.5,
        2.0,
        3.0,
        f64::INFINITY,
        f64::NAN,
        -1.0,
        1e-300,
    ] {
        h.record(v);
    }
    let b = h.summary(Duration::ZERO).buckets.unwrap();
    assert_eq!(b.cumulative, [1, 3, 5]);
    assert_eq!(b.count, 7);
}

/// A read that re-reads only the octaves that moved gives the statistics
/// of a read of every octave (a collector with lifetime buckets reads them
/// all), through writes, slots turning and slots leaving the window.
#[test]
fn reading_moved_octaves_equals_reading_all() {
    let partial = time_histogram();
    let full = Histogram::from_storage(Storage::new(
        HistogramCore::new(Window::default(), Duration::ZERO, None).with_lifetime_buckets(),
        false,
    ));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for step in 0..60u64 {
        // Some steps write nothing; others a few values, or many.
        let n = [0, 1, 3, 200][(step % 4) as usize];
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = 10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 6.0);
            partial.record(v);
            full.record(v);
        }
        if step % 7 == 0 {
            partial.record(0.0);
            full.record(0.0);
        }
        let now = Duration::from_secs(step * 3);
        let (a, b) = (partial.summary(now), full.summary(now));
        assert_eq!(a.window, b.window, "step {step}");
        assert_eq!(a.lifetime, b.lifetime, "step {step}");
        assert!(b.lifetime_buckets.is_some() && a.lifetime_buckets.is_none());
    }
}

/// A second thread writing a series adds its own counters (the runs it
/// touches and its slot totals, about 9 KiB over four decades), not a copy
/// of the window.
#[test]
fn a_second_writing_thread_adds_only_its_own_counters() {
    let h = time_histogram();
    let fill = |h: &Histogram| {
        let (mut v, mut n) = (0.001, 0u64);
        while v < 10.0 {
            h.record(v);
            v *= 1.01;
            n += 1;
        }
        n
    };
    let n = fill(&h);
    let one = h.heap_bytes();
    let h2 = h.clone();
    std::thread::spawn(move || fill(&h2)).join().unwrap();
    let added = h.heap_bytes() - one;
    eprintln!("second writing thread: {added} bytes more");
    assert!((7 * 1024..=10 * 1024).contains(&added), "{added} bytes");
    assert_eq!(h.summary(Duration::ZERO).lifetime.count, 2 * n);
}

/// The bucket lists a summary hands out are shared, never changed under
/// a holder: a summary kept while the series moves keeps its counts, and
/// once every holder is gone the next read rewrites the lists in place
/// (the same allocation) with the new counts.
#[test]
fn shared_bucket_lists_change_only_when_nobody_holds_them() {
    let h = Histogram::from_storage(Storage::new(
        HistogramCore::new(Window::default(), Duration::ZERO, None).with_lifetime_buckets(),
        false,
    ));
    let mut expected = SparseBuckets::default();
    let record = |h: &Histogram, expected: &mut SparseBuckets, v: f64| {
        h.record(v);
        expected.record(v);
    };
    record(&h, &mut expected, 0.5);
    let lifetime = |s: &HistogramSummary| Arc::clone(s.lifetime_buckets.as_ref().unwrap());
    let held = h.summary(Duration::ZERO);
    let held_list = lifetime(&held);
    // Unchanged: the same list, not a copy.
    assert!(Arc::ptr_eq(
        &held_list,
        &lifetime(&h.summary(Duration::ZERO))
    ));
    // Changed while held: a new list; the held one keeps its count.
    record(&h, &mut expected, 2.0);
    let moved = h.summary(Duration::ZERO);
    assert!(!Arc::ptr_eq(&held_list, &lifetime(&moved)));
    assert_eq!((held_list.count(), lifetime(&moved).count()), (1, 2));
    assert_eq!(*lifetime(&moved), expected);
    // Limiting the buckets copies a shared list only when it must change.
    let mut limited = moved.clone();
    limited.limit_buckets(100_000);
    assert!(Arc::ptr_eq(&lifetime(&limited), &lifetime(&moved)));
    limited.limit_buckets(1);
    assert!(lifetime(&limited).scale < 6 && lifetime(&limited).count() == 2);
    assert_eq!(*lifetime(&moved), expected);
    drop(limited);
    // Nobody holds the lists any more: rewritten in place.
    let address = Arc::as_ptr(&lifetime(&moved));
    drop((held, held_list, moved));
    for v in [3.0, 1e-3, 1e3] {
        record(&h, &mut expected, v);
        let s = h.summary(Duration::ZERO);
        assert_eq!(Arc::as_ptr(&lifetime(&s)), address);
        assert_eq!(*lifetime(&s), expected);
        assert_eq!(s.window_buckets.as_ref().unwrap().count(), expected.count());
    }
}

/// A collector with lifetime buckets re-reads only the octaves that moved
/// and splices them into the last read's lists and cut: through writes
/// into one octave or many, zeros, a second writing thread, reads that
/// find nothing moved, slots turning and leaving the window, and summaries
/// held across reads (the lists then copied, not changed), its statistics,
/// lists and cut are those of a read of every octave.
#[test]
fn splicing_the_moved_octaves_equals_reading_every_octave() {
    use crate::export::native::fitted_copy;
    use crate::metrics::layout;
    let lifetime_histogram =
        || HistogramCore::new(Window::default(), Duration::ZERO, None).with_lifetime_buckets();
    let spliced = Histogram::from_storage(Storage::new(lifetime_histogram(), false));
    let full = Histogram::from_storage(Storage::new(
        lifetime_histogram().reading_every_octave(),
        false,
    ));
    let partial = time_histogram();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut held = Vec::new();
    let mut cuts_reused = 0;
    for step in 0..120u64 {
        // One value, a few in one octave, many over ten decades, none.
        let (n, decades) = [(1, 8.0), (5, 0.2), (300, 10.0), (0, 1.0)][(step % 4) as usize];
        let low = next() * 4.0 - 3.0;
        let values: Vec<f64> = (0..n).map(|_| 10f64.powf(low + next() * decades)).collect();
        if step % 9 == 4 {
            // Another thread: a stripe of its own.
            let (a, b, c) = (spliced.clone(), full.clone(), partial.clone());
            let values = values.clone();
            std::thread::spawn(move || {
                for v in values {
                    a.record(v);
                    b.record(v);
                    c.record(v);
                }
            })
            .join()
            .unwrap();
        } else {
            for &v in &values {
                spliced.record(v);
                full.record(v);
                partial.record(v);
            }
        }
        if step % 11 == 0 {
            for h in [&spliced, &full, &partial] {
                h.record(0.0);
            }
        }
        let now = Duration::from_secs(step * 4);
        let (s, f, p) = (
            spliced.summary(now),
            full.summary(now),
            partial.summary(now),
        );
        assert_eq!(s.window, f.window, "step {step}");
        assert_eq!(s.lifetime, f.lifetime, "step {step}");
        assert_eq!(s.window, p.window, "step {step}");
        assert_eq!(s.window_buckets, f.window_buckets, "step {step}");
        assert_eq!(s.lifetime_buckets, f.lifetime_buckets, "step {step}");
        let list = s.lifetime_buckets.as_ref().unwrap();
        assert_eq!(list.count(), s.lifetime.count, "step {step}");
        // An exporter's cut: the collector's own when it kept one.
        let mut cut_here = false;
        let cut = s.memo.fitted(list, || {
            cut_here = true;
            fitted_copy(list, layout::DEFAULT_MAX_BUCKETS, &mut Vec::new())
        });
        cuts_reused += usize::from(!cut_here);
        let want = fitted_copy(list, layout::DEFAULT_MAX_BUCKETS, &mut Vec::new());
        assert_eq!(*cut, want, "step {step}");
        // Some summaries are held across the next reads.
        if step % 5 == 2 {
            held.push(s);
        } else if step % 5 == 0 {
            held.clear();
        }
    }
    // After the first, every read that found the series moved cut as it
    // read; most of those reads spliced.
    assert!(cuts_reused > 60, "{cuts_reused}");
    assert!(spliced.spliced_reads() > 40, "{}", spliced.spliced_reads());
    assert_eq!(full.spliced_reads(), 0);
}

/// A reporter at the slot length (a push every 10 s of the default 60 s
/// window) turns a slot out at every read once the window is full, and
/// then every read reads every octave: the lists are still rewritten in
/// place once the last snapshot is dropped, and the cut an exporter asks
/// for is still made as the collector reads.
#[test]
fn reads_that_turn_slots_out_keep_the_lists_and_the_cut() {
    use crate::export::native::fitted_copy;
    use crate::metrics::layout;
    let h = Histogram::from_storage(Storage::new(
        HistogramCore::new(Window::default(), Duration::ZERO, None).with_lifetime_buckets(),
        false,
    ));
    let mut address = None;
    for step in 0..15u64 {
        h.record(0.001 * (step + 1) as f64);
        let s = h.summary(Duration::from_secs(step * 10));
        let list = Arc::clone(s.lifetime_buckets.as_ref().unwrap());
        let here = Arc::as_ptr(&list);
        assert_eq!(*address.get_or_insert(here), here, "step {step}");
        let mut cut_here = false;
        let cut = s.memo.fitted(&list, || {
            cut_here = true;
            fitted_copy(&list, layout::DEFAULT_MAX_BUCKETS, &mut Vec::new())
        });
        assert_eq!(cut_here, step == 0, "step {step}");
        assert_eq!(cut.count(), step + 1);
        drop((s, list, cut));
    }
    // Reads 1–5 open slots while the window fills (its first minute) and
    // splice; every later read turns a slot out and reads every octave.
    assert_eq!(h.spliced_reads(), 5);
}

/// Lifetime buckets cost a series 16 bytes per non-empty bucket in each
/// of its two lists: 32 KiB over four decades with every bucket used, as
/// the builder's docs and the README say.
#[test]
fn lifetime_buckets_cost_two_lists_of_the_buckets_used() {
    let bytes = |lifetime: bool| {
        let core = HistogramCore::new(Window::default(), Duration::ZERO, None);
        let core = if lifetime {
            core.with_lifetime_buckets()
        } else {
            core
        };
        let h = Histogram::from_storage(Storage::new(core, false));
        let mut v = 0.001;
        while v < 10.0 {
            h.record(v);
            v *= 1.005;
        }
        let s = h.summary(Duration::ZERO);
        let used = s.lifetime_buckets.as_ref().map_or(0, |l| l.counts.len());
        drop(s);
        (h.heap_bytes(), used)
    };
    let ((without, _), (with, used)) = (bytes(false), bytes(true));
    // Every bucket of four decades (13.3 octaves of 64) is used.
    assert!((840..=860).contains(&used), "{used}");
    let added = with - without;
    assert!(
        (2 * 16 * used..=32 * 1024 + 256).contains(&added),
        "{added} bytes for {used} buckets"
    );
}
