//! Shared helpers for the `vitals` peer benchmarks.
//!
//! This crate exists only to host criterion benchmarks (see `benches/peers.rs`)
//! that measure `vitals` against other Rust metrics crates in the same run, so
//! that every reported ratio compares numbers taken on the same machine, with
//! the same compiler flags, minutes apart. The library part holds the small,
//! dependency-free pieces the benchmarks share: the label values, the
//! deterministic histogram input generator and the two-thread runner.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

/// The runtime label values the labelled-counter benchmarks cycle through.
pub const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Number of precomputed histogram inputs; a power of two so that the
/// benchmarks can cycle through them with [`VALUE_MASK`] instead of a modulo.
pub const VALUE_COUNT: usize = 4096;

/// Mask that maps a running index onto `0..VALUE_COUNT`.
pub const VALUE_MASK: usize = VALUE_COUNT - 1;

/// Upper end of the generated value range (the lower end is 1).
pub const VALUE_MAX: f64 = 1_000_000.0;

/// Returns [`VALUE_COUNT`] integers drawn log-uniformly from `1..=1_000_000`.
///
/// Log-uniform means every decade (1–10, 10–100, …, 100k–1M) gets about the
/// same share of the values, which resembles latency data far better than a
/// plain uniform draw (where 90% of the values would fall in the top decade)
/// and exercises every bucket range of the histograms under test.
///
/// The sequence comes from a fixed-seed xorshift64 generator, so every run and
/// every contender sees exactly the same inputs in the same order.
pub fn log_uniform_values() -> Vec<u64> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let ln_max = VALUE_MAX.ln();
    (0..VALUE_COUNT)
        .map(|_| {
            // xorshift64 (Marsaglia, shifts 13/7/17).
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Top 53 bits -> uniform in [0, 1).
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            let v = (unit * ln_max).exp().round() as u64;
            v.clamp(1, VALUE_MAX as u64)
        })
        .collect()
}

/// Runs `work` on two threads at once and returns the wall time they took.
///
/// Both threads are spawned first and parked on a [`Barrier`], so thread start
/// up is not timed. Each thread is then called as `work(thread_index, iters)`
/// (with `thread_index` 0 or 1) and is expected to perform `iters` operations.
/// The result runs from the earliest moment a thread left the barrier to the
/// latest moment a thread finished its loop; thread teardown and joining are
/// not included.
///
/// Meant for criterion's `iter_custom`: criterion divides the returned time by
/// `iters`, so the reported figure is the wall time for *each* of the two
/// threads to do one operation while the other does the same (two operations
/// complete per reported interval).
pub fn run_two_threads<F>(iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let barrier = Barrier::new(2);
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|index| {
                let barrier = &barrier;
                let work = &work;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    work(index, iters);
                    (start, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark worker panicked"))
            .collect()
    });
    let start = spans.iter().map(|s| s.0).min().expect("two spans");
    let end = spans.iter().map(|s| s.1).max().expect("two spans");
    end - start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_in_range_and_spread_over_decades() {
        let values = log_uniform_values();
        assert_eq!(values.len(), VALUE_COUNT);
        assert!(values.iter().all(|&v| (1..=1_000_000).contains(&v)));
        // Each of the six decades should get roughly a sixth of the values.
        for decade in 0..6u32 {
            let lo = 10u64.pow(decade);
            let hi = 10u64.pow(decade + 1);
            let n = values.iter().filter(|&&v| v >= lo && v < hi).count();
            assert!(n > VALUE_COUNT / 10, "decade {lo}..{hi} has only {n}");
        }
    }

    #[test]
    fn two_threads_each_run_the_work() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let total = AtomicU64::new(0);
        let seen = AtomicU64::new(0);
        run_two_threads(1000, |index, n| {
            seen.fetch_or(1 << index, Ordering::Relaxed);
            for _ in 0..n {
                total.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 2000);
        assert_eq!(seen.load(Ordering::Relaxed), 0b11);
    }
}
