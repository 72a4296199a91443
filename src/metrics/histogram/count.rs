//! The count window: the last N values in a ring, exact quantiles.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::metrics::layout::nearest_rank;

pub(super) struct CountWindow {
    pub(super) ring: Box<[AtomicU64]>,
    pub(super) next: AtomicU64,
    pub(super) life_sum: AtomicU64,
    pub(super) life_min: AtomicU64,
    pub(super) life_max: AtomicU64,
    pub(super) reader: Mutex<CountReader>,
    /// Snapshots carry the window's values in exponential buckets.
    pub(super) buckets: bool,
}

pub(super) struct CountReader {
    pub(super) created: Duration,
    /// (time, values recorded so far) at recent snapshots, oldest first.
    pub(super) marks: VecDeque<(Duration, u64)>,
}

pub(super) const COUNT_MARKS: usize = 64;

impl CountWindow {
    pub(super) fn new(values: u32, now: Duration) -> Self {
        CountWindow {
            ring: (0..values).map(|_| AtomicU64::new(EMPTY)).collect(),
            next: AtomicU64::new(0),
            life_sum: AtomicU64::new(0f64.to_bits()),
            life_min: AtomicU64::new(f64::INFINITY.to_bits()),
            life_max: AtomicU64::new(0),
            reader: Mutex::new(CountReader {
                created: now,
                marks: VecDeque::new(),
            }),
            buckets: false,
        }
    }

    #[inline]
    pub(super) fn record(&self, bits: u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        // Release: a reader that sees this value also sees the claim above,
        // so a window never counts more values than the lifetime.
        self.ring[(i % self.ring.len() as u64) as usize].store(bits, Ordering::Release);
        let _ = self
            .life_sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + f64::from_bits(bits)).to_bits())
            });
        if bits < self.life_min.load(Ordering::Relaxed) {
            self.life_min.fetch_min(bits, Ordering::Relaxed);
        }
        if bits > self.life_max.load(Ordering::Relaxed) {
            self.life_max.fetch_max(bits, Ordering::Relaxed);
        }
    }

    pub(super) fn summary(
        &self,
        now: Duration,
    ) -> (WindowStats, LifetimeStats, Option<SparseBuckets>) {
        let mut reader = self.reader.lock();
        // A writer that has claimed a cell but not yet stored its value
        // leaves EMPTY (or the value it replaces) for this one read. The
        // ring is read before the total (with Acquire, pairing with the
        // writers' Release): every value seen was claimed before the total
        // is read, so the window's count never exceeds the lifetime's.
        let mut values: Vec<f64> = self
            .ring
            .iter()
            .map(|a| a.load(Ordering::Acquire))
            .filter(|&b| b != EMPTY)
            .map(f64::from_bits)
            .collect();
        let total = self.next.load(Ordering::Relaxed);
        let life_sum = f64::from_bits(self.life_sum.load(Ordering::Relaxed));
        let (life_min, life_max) = (
            self.life_min.load(Ordering::Relaxed),
            self.life_max.load(Ordering::Relaxed),
        );
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len() as u64;
        let oldest_index = total.saturating_sub(self.ring.len() as u64);
        let start = reader
            .marks
            .iter()
            .rev()
            .find(|(_, recorded)| *recorded <= oldest_index)
            .map_or(reader.created, |(t, _)| *t);
        if reader.marks.back().is_none_or(|(_, r)| *r != total) {
            if reader.marks.len() == COUNT_MARKS {
                reader.marks.pop_front();
            }
            reader.marks.push_back((now, total));
        }
        let sum: f64 = values.iter().sum();
        let mean = (n > 0).then(|| sum / n as f64);
        let stddev = mean.map(|mean| {
            let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
            (squares / n as f64).sqrt()
        });
        let quantiles = (n > 0).then(|| {
            Quantiles::from_values(
                Quantiles::LEVELS.map(|q| values[(nearest_rank(q, n) - 1) as usize]),
            )
        });
        let window = WindowStats {
            window: Window::Count {
                values: self.ring.len() as u32,
            },
            span_seconds: now.saturating_sub(start).as_secs_f64(),
            count: n,
            sum,
            min: values.first().copied(),
            max: values.last().copied(),
            mean,
            stddev,
            quantiles,
        };
        let lifetime = LifetimeStats {
            count: total,
            sum: life_sum,
            min: (total > 0).then(|| f64::from_bits(life_min)),
            max: (total > 0).then(|| f64::from_bits(life_max)),
        };
        // Sorted values append to the buckets in order.
        let buckets = self.buckets.then(|| {
            let mut b = SparseBuckets::default();
            values.iter().for_each(|v| b.record(*v));
            b
        });
        (window, lifetime, buckets)
    }
}
