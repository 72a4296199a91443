//! Increases of a few totals over a trailing time window: the counter rates
//! of every snapshot, and the rates and ratios of the event plug-ins. The
//! one rate computation of the crate.

use std::collections::VecDeque;
use std::time::Duration;

/// A running total a [`Trailing`] window follows.
pub(crate) trait Total: Copy + Default {
    /// How much the total grew from `before` to `self`.
    fn since(self, before: Self) -> Self;
    /// As a float, for rates.
    fn as_f64(self) -> f64;
}

impl Total for u64 {
    /// Totals wrap at `u64::MAX` like the counters they come from.
    fn since(self, before: Self) -> Self {
        self.wrapping_sub(before)
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Total for f64 {
    /// A float total (a plug-in's) that went down was restarted: it grew by
    /// its whole value since, as Prometheus' `rate` reads a reset.
    fn since(self, before: Self) -> Self {
        if self >= before {
            self - before
        } else {
            self
        }
    }
    fn as_f64(self) -> f64 {
        self
    }
}

/// Remembers `(time, totals)` marks left by collections, at most one per
/// sixth of the window, and reports how much each total grew since the
/// newest mark at or before the window's start (or since creation). Exact
/// when collections come at least once per sixth of the window, as for the
/// core's counter rates.
#[derive(Debug)]
pub(crate) struct Trailing<const N: usize, T: Total = u64> {
    window: Duration,
    marks: VecDeque<(Duration, [T; N])>,
}

/// What a window saw: its real span and the increase of each total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Increase<const N: usize, T: Total = u64> {
    pub(crate) span: Duration,
    pub(crate) by: [T; N],
}

impl<const N: usize, T: Total> Increase<N, T> {
    /// Increase of total `i` per second; `None` over an empty span.
    pub(crate) fn per_second(&self, i: usize) -> Option<f64> {
        (!self.span.is_zero()).then(|| self.by[i].as_f64() / self.span.as_secs_f64())
    }
}

impl<const N: usize, T: Total> Trailing<N, T> {
    /// Starts at `now` with every total at zero.
    pub(crate) fn new(window: Duration, now: Duration) -> Self {
        Self::starting(window, now, [T::default(); N])
    }

    /// Starts at `now` from `totals` (a plug-in's total first seen).
    pub(crate) fn starting(window: Duration, now: Duration, totals: [T; N]) -> Self {
        let mut marks = VecDeque::with_capacity(8);
        marks.push_back((now, totals));
        Trailing { window, marks }
    }

    /// Starts again at `now` from `totals` (a series that came back after
    /// a removal counts from there).
    pub(crate) fn restart(&mut self, now: Duration, totals: [T; N]) {
        self.marks.clear();
        self.marks.push_back((now, totals));
    }

    /// The increase of `totals` over the window ending at `now`.
    pub(crate) fn update(&mut self, now: Duration, totals: [T; N]) -> Increase<N, T> {
        let start = now.saturating_sub(self.window);
        while self.marks.len() > 1 && self.marks[1].0 <= start {
            self.marks.pop_front();
        }
        let (then, before) = self.marks.front().copied().unwrap_or((now, totals));
        if self
            .marks
            .back()
            .is_none_or(|(t, _)| now.saturating_sub(*t) >= self.window / 6)
        {
            self.marks.push_back((now, totals));
        }
        let mut by = [T::default(); N];
        for (i, b) in by.iter_mut().enumerate() {
            *b = totals[i].since(before[i]);
        }
        Increase {
            span: now.saturating_sub(then),
            by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn old_increases_leave_the_window() {
        let mut t = Trailing::<1>::new(60 * S, Duration::ZERO);
        assert_eq!(t.update(60 * S, [100]).by, [100]);
        let later = t.update(120 * S, [130]);
        assert_eq!((later.by, later.span), ([30], 60 * S));
        assert_eq!(later.per_second(0), Some(0.5));
    }

    #[test]
    fn a_float_total_that_goes_down_restarted() {
        let mut t = Trailing::<1, f64>::starting(60 * S, Duration::ZERO, [10.0]);
        assert_eq!(t.update(10 * S, [12.5]).by, [2.5]);
        // Marks are kept once per sixth of the window: the restart is seen
        // against the mark at 0 s (10.0), so the increase is the new total.
        assert_eq!(t.update(20 * S, [1.5]).by, [1.5]);
    }

    #[test]
    fn an_empty_span_has_no_rate() {
        let mut t = Trailing::<2>::new(60 * S, 5 * S);
        let inc = t.update(5 * S, [3, 4]);
        assert_eq!(inc.by, [3, 4]);
        assert_eq!(inc.per_second(0), None);
    }
}
