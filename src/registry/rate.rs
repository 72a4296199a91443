//! Increases of a few totals over a trailing time window: the counter rates
//! of every snapshot, and the rates and ratios of the event plug-ins. The
//! one rate computation of the crate.

use std::collections::VecDeque;
use std::time::Duration;

/// Remembers `(time, totals)` marks left by collections, at most one per
/// sixth of the window, and reports how much each total grew since the
/// newest mark at or before the window's start (or since creation). Exact
/// when collections come at least once per sixth of the window, as for the
/// core's counter rates.
#[derive(Debug)]
pub(crate) struct Trailing<const N: usize> {
    window: Duration,
    marks: VecDeque<(Duration, [u64; N])>,
}

/// What a window saw: its real span and the increase of each total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Increase<const N: usize> {
    pub(crate) span: Duration,
    pub(crate) by: [u64; N],
}

impl<const N: usize> Increase<N> {
    /// Increase of total `i` per second; `None` over an empty span.
    pub(crate) fn per_second(&self, i: usize) -> Option<f64> {
        (!self.span.is_zero()).then(|| self.by[i] as f64 / self.span.as_secs_f64())
    }
}

impl<const N: usize> Trailing<N> {
    /// Starts at `now` with every total at zero.
    pub(crate) fn new(window: Duration, now: Duration) -> Self {
        let mut marks = VecDeque::with_capacity(8);
        marks.push_back((now, [0; N]));
        Trailing { window, marks }
    }

    /// Starts again at `now` from `totals` (a series that came back after
    /// a removal counts from there).
    pub(crate) fn restart(&mut self, now: Duration, totals: [u64; N]) {
        self.marks.clear();
        self.marks.push_back((now, totals));
    }

    /// The increase of `totals` over the window ending at `now`.
    pub(crate) fn update(&mut self, now: Duration, totals: [u64; N]) -> Increase<N> {
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
        let mut by = [0; N];
        for (i, b) in by.iter_mut().enumerate() {
            // Totals wrap at u64::MAX like the counters they come from.
            *b = totals[i].wrapping_sub(before[i]);
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
    fn an_empty_span_has_no_rate() {
        let mut t = Trailing::<2>::new(60 * S, 5 * S);
        let inc = t.update(5 * S, [3, 4]);
        assert_eq!(inc.by, [3, 4]);
        assert_eq!(inc.per_second(0), None);
    }
}
