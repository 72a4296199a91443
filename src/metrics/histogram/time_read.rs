//! The time window's reading side: turning slots, and the window taken as
//! the cumulative counts less those at its start, re-reading only the runs
//! of buckets that moved. The writing side is in `time.rs`.

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use super::bucket_math::{bucket_stats, moments, window_stats_of};
use super::reading::{
    cut_octaves, listed, octave_of, recut, refill, splice, BucketState, Cached, Merged,
    OctaveCache, SlotDelta, TimeReader, LIFETIME, SCRATCH, WINDOW,
};
use super::time::{Stripe, TimeWindow, MASK_WORDS, OCTAVE_TOTAL, SLOT_BITS};
use super::*;
use crate::export::native::fitted_copy;
use crate::metrics::layout;

impl TimeWindow {
    /// True when no stripe has taken a value since the last read.
    fn unchanged(&self, reader: &TimeReader) -> bool {
        self.stripes().all(|(i, s)| s.records() == reader.seen[i])
    }

    /// The cumulative counts of every stripe, into `cum` (cleared first),
    /// noting each stripe's record count first.
    fn read_cumulative(&self, reader: &mut TimeReader, cum: &mut Merged) {
        cum.clear();
        let mut position = [usize::MAX; OCTAVES];
        for (i, stripe) in self.stripes() {
            reader.seen[i] = stripe.records();
            stripe.read_into(cum, &mut position);
        }
        if !cum.octaves.is_sorted_by_key(|(o, _)| *o) {
            cum.octaves.sort_unstable_by_key(|(o, _)| *o);
        }
        cum.count = cum.zeros
            + cum
                .octaves
                .iter()
                .map(|(_, c)| c.iter().sum::<u64>())
                .sum::<u64>();
    }

    /// The window's counts: `cum` less `base`, into `window`.
    fn window_counts(base: &Merged, cum: &Merged, window: &mut Merged) {
        window.clear();
        window.zeros = cum.zeros - base.zeros.min(cum.zeros);
        let mut b = base.octaves.iter().peekable();
        for (octave, counts) in &cum.octaves {
            let mut w = *counts;
            while let Some((bo, bc)) = b.next_if(|(bo, _)| bo <= octave) {
                if bo == octave {
                    for (x, y) in w.iter_mut().zip(bc) {
                        *x = x.saturating_sub(*y);
                    }
                }
            }
            let m = moments(&w);
            if m.0 > 0 {
                window.octaves.push((*octave, w));
                window.moments.push(m);
            }
        }
        window.count = window.zeros + window.moments.iter().map(|m| m.0).sum::<u64>();
    }

    /// Opens a new slot if the current one has run for a slot's length,
    /// and drops the closed slots whose whole span has left the window.
    /// True when either happened.
    fn rotate(
        &self,
        reader: &mut TimeReader,
        now: Duration,
        scratch: &mut (Merged, Merged),
    ) -> bool {
        let current = (reader.epoch % self.slots as u64) as usize;
        let mut moved = false;
        if now.saturating_sub(reader.starts[current]) >= self.slot_len {
            // What the closing slot added: the counts now, less the base
            // and the other closed slots.
            let (cum, delta) = scratch;
            self.read_cumulative(reader, cum);
            Self::window_counts(&reader.base, cum, delta);
            for d in reader.deltas.iter().flatten() {
                d.apply(delta, false);
            }
            reader.deltas[current] = Some(SlotDelta::of(delta));
            reader.ends[current] = now;
            let next = (current + 1) % self.slots;
            if reader.live[next] {
                Self::retire(reader, next);
            }
            reader.epoch += 1;
            reader.starts[next] = now;
            reader.live[next] = true;
            reader.tags[next] = reader.epoch << SLOT_BITS | next as u64;
            self.clock.store(reader.tags[next], Ordering::Release);
            moved = true;
        }
        let current = (reader.epoch % self.slots as u64) as usize;
        let horizon = now.saturating_sub(self.length);
        for slot in 0..self.slots {
            if slot != current
                && reader.live[slot]
                && reader.ends[slot] <= horizon
                && now >= self.length
            {
                Self::retire(reader, slot);
                moved = true;
            }
        }
        moved
    }

    /// Drops `slot` from the window: the base moves on by what it added.
    fn retire(reader: &mut TimeReader, slot: usize) {
        if let Some(delta) = reader.deltas[slot].take() {
            delta.apply(&mut reader.base, true);
            let base = &mut reader.base;
            base.count = base.zeros
                + base
                    .octaves
                    .iter()
                    .map(|(_, c)| c.iter().sum::<u64>())
                    .sum::<u64>();
        }
        reader.live[slot] = false;
        reader.octaves_valid = false;
    }

    /// The cumulative counts of one octave: every stripe's.
    fn octave_cumulative(&self, octave: usize) -> [u64; SUBS] {
        let mut cum = [0u64; SUBS];
        for (_, stripe) in self.stripes() {
            if let Some(counts) = stripe.octaves.get(octave).and_then(OnceLock::get) {
                for (total, c) in cum.iter_mut().zip(counts.iter()) {
                    *total += c.load(Ordering::Relaxed);
                }
            }
        }
        cum
    }

    /// The window's counts of one octave: every stripe's, less the base.
    fn octave_window(&self, octave: usize, base: &Merged) -> [u64; SUBS] {
        less_base(self.octave_cumulative(octave), octave, base)
    }

    /// Brings the window's per-octave moments up to date, re-reading only
    /// the octaves whose totals moved (all of them after a slot turned);
    /// their window counts go into `fresh`, and with `keep_cumulative`
    /// their cumulative counts into `life`. The stripes' zeros, sums and
    /// extremes since the start go into `life`.
    fn read_changed(
        &self,
        reader: &mut TimeReader,
        fresh: &mut Merged,
        life: &mut Merged,
        keep_cumulative: bool,
    ) {
        fresh.clear();
        life.clear();
        let mut union = [0u64; MASK_WORDS];
        for (i, stripe) in self.stripes() {
            reader.seen[i] = stripe.records();
            for (u, w) in union.iter_mut().zip(&stripe.allocated) {
                *u |= w.load(Ordering::Acquire);
            }
            let head = &stripe.head;
            life.zeros += head.zeros.load(Ordering::Relaxed);
            life.sum += f64::from_bits(head.sum.load(Ordering::Relaxed));
            life.min = life.min.min(head.min.load(Ordering::Relaxed));
            life.max = life.max.max(head.max.load(Ordering::Relaxed));
        }
        // Both ascending: the octaves' cache is walked once, in step.
        let mut at = 0;
        for (w, mut bits) in union.into_iter().enumerate() {
            while bits != 0 {
                let octave = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let total: u64 = self
                    .stripes()
                    .filter_map(|(_, s)| s.octaves.get(octave).and_then(OnceLock::get))
                    .map(|c| c[OCTAVE_TOTAL].load(Ordering::Acquire))
                    .sum();
                while reader.octaves.get(at).is_some_and(|c| c.octave < octave) {
                    at += 1;
                }
                if reader.octaves.get(at).is_none_or(|c| c.octave != octave) {
                    let new = OctaveCache {
                        octave,
                        seen: u64::MAX,
                        moments: (0, 0.0, 0.0),
                        listed: [0; 2],
                    };
                    reader.octaves.insert(at, new);
                }
                if reader.octaves_valid && reader.octaves[at].seen == total {
                    continue;
                }
                let cum = self.octave_cumulative(octave);
                let counts = less_base(cum, octave, &reader.base);
                if keep_cumulative {
                    life.octaves.push((octave, cum));
                }
                let cache = &mut reader.octaves[at];
                cache.seen = total;
                cache.moments = moments(&counts);
                fresh.octaves.push((octave, counts));
            }
        }
        reader.octaves_valid = true;
    }

    pub(super) fn summary(
        &self,
        now: Duration,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        let mut own = None;
        SCRATCH.with(|cell| {
            let mut shared = cell.try_borrow_mut();
            let scratch = match &mut shared {
                Ok(m) => &mut **m,
                Err(_) => own.get_or_insert_with(|| (Merged::empty(), Merged::empty())),
            };
            self.summary_with(now, scratch)
        })
    }

    fn summary_with(
        &self,
        now: Duration,
        scratch: &mut (Merged, Merged),
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        let mut guard = self.reader.lock();
        let reader = &mut *guard;
        let moved = self.rotate(reader, now, scratch);
        let oldest = (0..self.slots)
            .filter(|&s| reader.live[s])
            .map(|s| reader.starts[s])
            .min()
            .unwrap_or(now);
        let span_seconds = now.saturating_sub(oldest).as_secs_f64();
        if !moved && self.unchanged(reader) {
            if let Some(c) = &reader.cached {
                let mut window = c.window.clone();
                window.span_seconds = span_seconds;
                return (window, c.lifetime.clone(), c.buckets.clone());
            }
        }
        let (stats, lifetime, buckets) = if reader.lifetime_buckets {
            self.read_spliced(reader, scratch, span_seconds)
        } else {
            self.read_moved(reader, scratch, span_seconds)
        };
        reader.cached = Some(Cached {
            window: stats.clone(),
            lifetime: lifetime.clone(),
            buckets: buckets.clone(),
        });
        (stats, lifetime, buckets)
    }

    /// Statistics and both bucket lists from every octave's counts, the
    /// lists of the last read (`last`) rewritten; notes each octave's
    /// total and window moments, for the next read to re-read only the
    /// octaves that moved.
    fn read_all(
        &self,
        reader: &mut TimeReader,
        (cum, window): &mut (Merged, Merged),
        span_seconds: f64,
        last: Option<BucketState>,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        // The totals first: a write that lands between them and the
        // counts has its count read and its total not, so that the next
        // read sees the octave moved (a total is stored after its count).
        let mut totals = [0u64; OCTAVES];
        for (_, stripe) in self.stripes() {
            stripe.add_octave_totals(&mut totals);
        }
        self.read_cumulative(reader, cum);
        Self::window_counts(&reader.base, cum, window);
        reader.octaves.clear();
        let mut moments = window.octaves.iter().zip(&window.moments).peekable();
        for (octave, counts) in &cum.octaves {
            let (moments, windowed) = moments
                .next_if(|((o, _), _)| o == octave)
                .map_or(((0, 0.0, 0.0), 0), |((_, w), m)| (*m, listed(w)));
            reader.octaves.push(OctaveCache {
                octave: *octave,
                seen: totals[*octave],
                moments,
                listed: [windowed, listed(counts)],
            });
        }
        reader.octaves_valid = true;
        for (_, stripe) in self.stripes() {
            stripe.read_slots(reader, window);
        }
        let stats = self.window_stats(
            window.count,
            window.sum,
            window.min,
            window.max,
            span_seconds,
            |lo, hi, mean| bucket_stats(window, lo, hi, mean),
        );
        let lifetime = settle_extremes(cum, &stats);
        // The last read's lists, rewritten in place once its snapshot is
        // gone.
        let mut buckets = match last {
            Some(last) => last,
            None => BucketState {
                window: Arc::default(),
                lifetime: Arc::default(),
                memo: LifetimeMemo::default(),
            },
        };
        // An exporter asked for the last list's cut: it will ask for this
        // one's, cut here from the dense counts (cheaper than from the
        // list). The old memo holds the list too: let go of it first, so
        // that a list no snapshot holds is rewritten in place.
        let asked = buckets.memo.asked();
        buckets.memo = LifetimeMemo::default();
        refill(&mut buckets.window, window.zeros, &window.octaves);
        refill(&mut buckets.lifetime, cum.zeros, &cum.octaves);
        buckets.memo = LifetimeMemo::new(&buckets.lifetime);
        if asked {
            let cut = cut_octaves(&buckets.lifetime, &cum.octaves, layout::DEFAULT_MAX_BUCKETS);
            if let Some(cut) = cut {
                buckets.memo.keep(Arc::new(cut));
            }
        }
        (stats, lifetime, Some(buckets))
    }

    /// Statistics and both bucket lists from the octaves that moved since
    /// the last read: the last read's lists, with the runs of those
    /// octaves replaced, and its cut, with the coarse buckets over them
    /// summed again. Every octave is read ([`read_all`](Self::read_all))
    /// after a slot left the window (the window's counts all moved), on
    /// the first read, and while a write is halfway (the lifetime's
    /// extremes then come from the buckets).
    fn read_spliced(
        &self,
        reader: &mut TimeReader,
        scratch: &mut (Merged, Merged),
        span_seconds: f64,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        // The last lists go to `read_all` too: rewritten in place, and
        // their memo says whether to cut the new one.
        let last = reader.cached.take().and_then(|c| c.buckets);
        #[cfg(test)]
        let every_octave = reader.every_octave;
        #[cfg(not(test))]
        let every_octave = false;
        if !reader.octaves_valid || every_octave {
            return self.read_all(reader, scratch, span_seconds, last);
        }
        let Some(mut buckets) = last else {
            return self.read_all(reader, scratch, span_seconds, None);
        };
        #[cfg(test)]
        {
            reader.spliced += 1;
        }
        let (fresh, life) = scratch;
        self.read_changed(reader, fresh, life, true);
        for (_, stripe) in self.stripes() {
            stripe.read_slots(reader, fresh);
        }
        let zeros = life.zeros.saturating_sub(reader.base.zeros);
        let count = zeros + reader.octaves.iter().map(|c| c.moments.0).sum::<u64>();
        life.count = reader.base.count + count;
        if !settled(life) {
            return self.read_all(reader, scratch, span_seconds, Some(buckets));
        }
        // As in `read_all`: the old memo lets go of the list first.
        let asked = buckets.memo.asked();
        let last_cut = if asked { buckets.memo.cut() } else { None };
        buckets.memo = LifetimeMemo::default();
        splice(
            &mut buckets.window,
            zeros,
            &fresh.octaves,
            &mut reader.octaves,
            WINDOW,
        );
        splice(
            &mut buckets.lifetime,
            life.zeros,
            &life.octaves,
            &mut reader.octaves,
            LIFETIME,
        );
        buckets.memo = LifetimeMemo::new(&buckets.lifetime);
        if asked {
            let max = layout::DEFAULT_MAX_BUCKETS;
            let cut = last_cut
                .and_then(|mut cut| {
                    recut(
                        Arc::make_mut(&mut cut),
                        &buckets.lifetime,
                        &life.octaves,
                        &reader.octaves,
                        max,
                    )
                    .then_some(cut)
                })
                .unwrap_or_else(|| Arc::new(fitted_copy(&buckets.lifetime, max, &mut Vec::new())));
            buckets.memo.keep(cut);
        }
        let reader: &TimeReader = reader;
        let window_list = &buckets.window;
        let stats = self.kept_window_stats(reader, fresh, count, zeros, span_seconds, |octave| {
            octave_of(window_list, octave, &reader.octaves, WINDOW)
        });
        let lifetime = settle_extremes(life, &stats);
        (stats, lifetime, Some(buckets))
    }

    /// Statistics from the octaves that moved since the last read and the
    /// moments kept of the others.
    fn read_moved(
        &self,
        reader: &mut TimeReader,
        (fresh, life): &mut (Merged, Merged),
        span_seconds: f64,
    ) -> (WindowStats, LifetimeStats, Option<BucketState>) {
        self.read_changed(reader, fresh, life, false);
        for (_, stripe) in self.stripes() {
            stripe.read_slots(reader, fresh);
        }
        let zeros = life.zeros.saturating_sub(reader.base.zeros);
        let count = zeros + reader.octaves.iter().map(|c| c.moments.0).sum::<u64>();
        let reader: &TimeReader = reader;
        let stats =
            self.kept_window_stats(
                reader,
                fresh,
                count,
                zeros,
                span_seconds,
                |octave| match fresh.octaves.binary_search_by_key(&octave, |(o, _)| *o) {
                    Ok(at) => fresh.octaves[at].1,
                    Err(_) => self.octave_window(octave, &reader.base),
                },
            );
        life.count = reader.base.count + count;
        let lifetime = settle_extremes(life, &stats);
        (stats, lifetime, None)
    }

    /// Window statistics from the moments kept of each octave
    /// (`reader.octaves`), the window's sum and extremes read into
    /// `fresh`, and `counts_of`: an octave's counts, asked only for the
    /// octaves that hold a quantile.
    fn kept_window_stats(
        &self,
        reader: &TimeReader,
        fresh: &Merged,
        count: u64,
        zeros: u64,
        span_seconds: f64,
        counts_of: impl FnMut(usize) -> [u64; SUBS],
    ) -> WindowStats {
        self.window_stats(
            count,
            fresh.sum,
            fresh.min,
            fresh.max,
            span_seconds,
            |lo, hi, mean| {
                let octaves = reader
                    .octaves
                    .iter()
                    .filter(|c| c.moments.0 > 0)
                    .map(|c| (c.octave, c.moments));
                window_stats_of(octaves, counts_of, count, zeros, lo, hi, mean)
            },
        )
    }

    /// Window statistics from its count, sum and extremes, and `spread`:
    /// the quantiles and standard deviation given the clamp and the mean.
    fn window_stats(
        &self,
        count: u64,
        sum: f64,
        min: u64,
        max: u64,
        span_seconds: f64,
        spread: impl FnOnce(f64, f64, f64) -> (Quantiles, f64),
    ) -> WindowStats {
        let mean = (count > 0).then(|| sum / count as f64);
        // A writer adds its count before its sum and extremes: a read in
        // between sees a count with the extremes of before (at first, min
        // +inf and max 0). Then the quantiles are not clamped to them, and
        // the missing extreme comes from the quantiles.
        let (lo, hi) = (f64::from_bits(min), f64::from_bits(max));
        let settled = lo <= hi;
        let (mut min, mut max, mut quantiles, mut stddev) = (None, None, None, None);
        if let Some(mean) = mean {
            let (clamp_lo, clamp_hi) = if settled { (lo, hi) } else { (0.0, f64::MAX) };
            let (q, sd) = spread(clamp_lo, clamp_hi, mean);
            (min, max) = if settled {
                (Some(lo), Some(hi))
            } else {
                (Some(lo.min(q.p50)), Some(hi.max(q.p999)))
            };
            (quantiles, stddev) = (Some(q), Some(sd));
        }
        WindowStats {
            window: Window::Time {
                length: self.length,
                slots: self.slots as u32,
            },
            span_seconds,
            count,
            sum,
            min,
            max,
            mean,
            stddev,
            quantiles,
        }
    }

    pub(super) fn heap_bytes(&self) -> usize {
        let reader = self.reader.lock();
        let cache = reader.base.heap_bytes()
            + reader.octaves.capacity() * std::mem::size_of::<OctaveCache>()
            + reader
                .deltas
                .iter()
                .flatten()
                .map(SlotDelta::heap_bytes)
                .sum::<usize>()
            + reader
                .cached
                .as_ref()
                .and_then(|c| c.buckets.as_ref())
                .map_or(0, |b| {
                    b.window.heap_bytes() + b.lifetime.heap_bytes() + b.memo.heap_bytes()
                });
        drop(reader);
        cache
            + self.owned.len() * std::mem::size_of::<OnceLock<Box<Stripe>>>()
            + self.stripes().map(|(_, s)| s.heap_bytes()).sum::<usize>()
    }
}

/// `cum`, one octave's cumulative counts, less the window's base.
fn less_base(mut cum: [u64; SUBS], octave: usize, base: &Merged) -> [u64; SUBS] {
    if let Ok(at) = base.octaves.binary_search_by_key(&octave, |(o, _)| *o) {
        for (w, b) in cum.iter_mut().zip(&base.octaves[at].1) {
            *w = w.saturating_sub(*b);
        }
    }
    cum
}

/// True when the lifetime's extremes (`cum`: count, zeros, min, max) are
/// there for every value counted: false while a write has added its count
/// and not yet its extremes.
fn settled(cum: &Merged) -> bool {
    let (lo, hi) = (f64::from_bits(cum.min), f64::from_bits(cum.max));
    cum.count == cum.zeros || (lo <= hi && hi > 0.0)
}

/// The lifetime's statistics from the stripes' totals (`cum`: count, sum,
/// extremes, and maybe the buckets), the extremes widened by the window's.
/// A write in progress has added its count before its extremes; then the
/// extremes come from the lowest and highest buckets known to hold counts,
/// so that a count never shows without them.
fn settle_extremes(cum: &Merged, window: &WindowStats) -> LifetimeStats {
    let mut life = LifetimeStats {
        count: cum.count,
        sum: cum.sum,
        min: None,
        max: None,
    };
    if cum.count == 0 {
        return life;
    }
    let (mut lo, mut hi) = (f64::from_bits(cum.min), f64::from_bits(cum.max));
    if let (Some(wlo), Some(whi)) = (window.min, window.max) {
        (lo, hi) = (lo.min(wlo), hi.max(whi));
    }
    let held = |(octave, counts): &(usize, [u64; SUBS])| {
        let first = counts.iter().position(|&c| c > 0)?;
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(first);
        let at = |sub: usize| layout::position_midpoint(octave * SUBS + sub);
        Some((at(first), at(last)))
    };
    if lo == f64::INFINITY {
        lo = if cum.zeros > 0 {
            0.0
        } else {
            cum.octaves
                .iter()
                .find_map(held)
                .map_or(0.0, |(first, _)| first)
        };
    }
    if hi < lo || (hi == 0.0 && cum.count > cum.zeros) {
        hi = cum
            .octaves
            .iter()
            .rev()
            .find_map(held)
            .map_or(lo, |(_, last)| last)
            .max(lo);
    }
    life.min = Some(lo);
    life.max = Some(hi);
    life
}
