//! One series of the history: its previous reading, its finished points
//! per level and its open intervals (the roll-up cascade), how a new
//! reading becomes the difference from the previous one, and how the open
//! intervals are gathered again from finished points (after a reload or a
//! clock stepped back).

use std::borrow::Cow;
use std::sync::Arc;

use super::column::Column;
use super::dense::position16;
use super::dense::Dense;
use super::persist::Disk;
use super::point::Point;
use super::{Family, FastMap, Level};
use crate::error::Error;
use crate::key::Labels;
use crate::metrics::layout;
use crate::metrics::sparse::SparseBuckets;
use crate::snapshot::{CounterValue, MetricKind};

#[derive(Debug)]
pub(super) struct Series {
    /// `None` for a series reloaded from disk, until its next reading.
    pub(super) previous: Option<Reading>,
    pub(super) previous_ms: u64,
    /// Finished points per level.
    pub(super) levels: [Column; 4],
    /// The open interval of each roll-up level, as a cascade: raw points
    /// merge into the open minute only; a minute that ends is merged into
    /// the open 5 minutes, and those into the open hour. The open hour
    /// therefore lacks the minutes still open below it:
    /// [`open_points`](Series::open_points) adds them back for queries.
    pub(super) open: [Option<Point>; 3],
    /// Counts of points a clock stepped back disowned, added to the
    /// series' next point (see [`History::ingest`](super::History::ingest)).
    pub(super) carry: Option<Box<Point>>,
}

impl Series {
    /// Closes the open intervals that ended before `now`, finest first,
    /// each merged into the open interval above it.
    pub(super) fn roll(&mut self, now: u64, sink: &mut Sink<'_>) {
        for i in 0..3 {
            let interval = Level::ALL[i + 1].interval_ms().unwrap_or(1);
            if self.open[i]
                .as_ref()
                .is_some_and(|p| p.t_ms.saturating_add(interval) < now)
            {
                self.close(i, sink);
            }
        }
    }

    /// Finishes open interval `i`: into its level, and into the open
    /// interval above (closing that one first if it is of an earlier
    /// interval).
    pub(super) fn close(&mut self, i: usize, sink: &mut Sink<'_>) {
        let Some(mut done) = self.open[i].take() else {
            return;
        };
        let level = Level::ALL[i + 1];
        sink.push(level, &done);
        self.levels[i + 1].push(&done);
        let Some(above) = Level::ALL.get(i + 2) else {
            return;
        };
        let up = above.interval_ms().unwrap_or(1);
        let start = done.t_ms / up * up;
        if self.open[i + 1].as_ref().is_some_and(|p| p.t_ms != start) {
            self.close(i + 1, sink);
        }
        match &mut self.open[i + 1] {
            Some(open) => open.merge(&done),
            slot => {
                done.t_ms = start;
                *slot = Some(done);
            }
        }
    }

    /// What a query of roll-up `level` reads beyond the finished points:
    /// its open interval with the open intervals below it merged in, or,
    /// when the finest ones already started the next interval, one point
    /// per interval.
    pub(super) fn open_points(&self, level: Level) -> Vec<Point> {
        let Some(interval) = level.interval_ms() else {
            return Vec::new();
        };
        let mut out: Vec<Point> = Vec::new();
        for open in self.open[..level.index()].iter().rev().flatten() {
            let start = open.t_ms / interval * interval;
            match out.last_mut() {
                Some(last) if last.t_ms == start => last.merge(open),
                _ => out.push(Point {
                    t_ms: start,
                    ..open.clone()
                }),
            }
        }
        out
    }

    /// Lets go of the points whose interval ends before `horizon` (per
    /// level).
    pub(super) fn expire(&mut self, horizon: &[u64; 4]) {
        for (i, level) in self.levels.iter_mut().enumerate() {
            // A point stays while its interval reaches the horizon.
            let span = Level::ALL[i].interval_ms().unwrap_or(0);
            level.expire_before(horizon[i].saturating_sub(span));
        }
        for (i, open) in self.open.iter_mut().enumerate() {
            let span = Level::ALL[i + 1].interval_ms().unwrap_or(0);
            if open
                .as_ref()
                .is_some_and(|p| p.t_ms.saturating_add(span) < horizon[i + 1])
            {
                *open = None;
            }
        }
    }
}

/// How far back from the newest point each level is read to gather the
/// open intervals again. An interval still open at the stop had not ended
/// when the last sweep ran, at most a minute before the newest point: the
/// open minute started at most 2 minutes before it, the open 5 minutes 6,
/// the open hour 61; each level is read that far for the intervals it
/// opens above. The level above is read one of its intervals further, so
/// that the check that it closed an interval sees the interval's start.
pub(super) const REOPEN_WINDOW_MS: [u64; 4] = [3 * MINUTE, 7 * MINUTE, 62 * MINUTE, 125 * MINUTE];
const MINUTE: u64 = 60_000;

/// The open intervals of one series gathered again from its newest
/// finished points, after a reload or a clock stepped back: what the store
/// held in memory only. Open interval `i` gathers the newest interval of
/// level `i` (raw, minute, 5 minutes) unless level `i + 1` already reaches
/// it (the interval was closed).
///
/// Points come level by level, each level's in time order, and only the
/// newest interval is kept: a reload streams them from the files.
#[derive(Debug, Default)]
pub(super) struct Reopening {
    open: [Option<Point>; 3],
    newest: [Option<u64>; 4],
}

impl Reopening {
    /// Takes one finished point of level `level`.
    pub(super) fn add(&mut self, level: Level, point: Point) {
        let i = level.index();
        self.newest[i] = self.newest[i].max(Some(point.t_ms));
        let Some(above) = Level::ALL.get(i + 1).and_then(|l| l.interval_ms()) else {
            return;
        };
        // Raw points belong to the interval holding their time minus a
        // millisecond; roll-ups start on their interval.
        let start = point.t_ms.saturating_sub(u64::from(i == 0)) / above * above;
        match &mut self.open[i] {
            Some(open) if open.t_ms == start => open.merge(&point),
            Some(open) if open.t_ms > start => {}
            slot => {
                *slot = Some(Point {
                    t_ms: start,
                    ..point
                })
            }
        }
    }

    /// The newest point of level `level` seen.
    pub(super) fn newest(&self, level: Level) -> Option<u64> {
        self.newest[level.index()]
    }

    /// The open intervals: those the level above has not reached.
    pub(super) fn finish(mut self) -> [Option<Point>; 3] {
        for i in 0..3 {
            let closed = match (&self.open[i], self.newest[i + 1]) {
                (Some(open), Some(above)) => above >= open.t_ms,
                _ => false,
            };
            if closed {
                self.open[i] = None;
            }
        }
        self.open
    }
}

/// Per series (name and labels), its kind and [`Reopening`].
pub(super) type Reopenings = FastMap<(Arc<str>, Labels), (MetricKind, Reopening)>;

/// Every series' [`Reopening`] from the files: each level read from its
/// window before `newest` (the newest point kept) on. Returns them with
/// the torn lines met.
pub(super) fn reopen_from_disk(disk: &Disk, newest: u64) -> Result<(Reopenings, u64), Error> {
    let mut reopening = Reopenings::default();
    let mut skipped = 0;
    for level in Level::ALL {
        let from = newest.saturating_sub(REOPEN_WINDOW_MS[level.index()]);
        skipped += disk.read(level, from, newest.saturating_add(1), None, |p| {
            let kind = p.agg.kind();
            let (name, labels, point) = p.into_point();
            let (_, open) = reopening
                .entry((name, labels))
                .or_insert_with(|| (kind, Reopening::default()));
            open.add(level, point);
        })?;
    }
    Ok((reopening, skipped))
}

/// The series a point read back from disk belongs to, created without a
/// reading; `None` when its name is held as another kind.
pub(super) fn reloaded(
    names: &mut FastMap<Arc<str>, Family>,
    name: Arc<str>,
    labels: Labels,
    kind: MetricKind,
) -> Option<&mut Series> {
    let family = names.entry(name).or_insert_with(|| Family {
        kind,
        series: FastMap::default(),
    });
    if family.kind != kind {
        return None;
    }
    Some(family.series.entry(labels).or_insert_with(|| Series {
        previous: None,
        previous_ms: 0,
        levels: Default::default(),
        open: Default::default(),
        carry: None,
    }))
}

/// A series' cumulative reading in its latest snapshot.
#[derive(Debug, Clone)]
pub(super) enum Reading {
    Counter(CounterValue),
    Gauge(f64),
    Histogram {
        count: u64,
        sum: f64,
        /// Lifetime bucket counts, dense so that the next reading's
        /// difference is one pass over its pairs.
        buckets: Option<Dense>,
        /// The sum of `buckets`' counts (zeros apart): a bucket that
        /// vanished from the next reading shows as a shortfall.
        in_buckets: u64,
    },
}

/// A series' reading as a snapshot carries it.
pub(super) enum Incoming<'a> {
    Counter(CounterValue),
    Gauge(f64),
    Histogram {
        count: u64,
        sum: f64,
        buckets: Option<Cow<'a, SparseBuckets>>,
    },
}

impl Incoming<'_> {
    /// The reading a series of this kind starts from.
    pub(super) fn zero(&self) -> Reading {
        match self {
            Incoming::Counter(_) => Reading::Counter(CounterValue::Int(0)),
            Incoming::Gauge(v) => Reading::Gauge(*v),
            Incoming::Histogram { .. } => Reading::Histogram {
                count: 0,
                sum: 0.0,
                buckets: Some(Dense::default()),
                in_buckets: 0,
            },
        }
    }

    pub(super) fn kind(&self) -> MetricKind {
        match self {
            Incoming::Counter(_) => MetricKind::Counter,
            Incoming::Gauge(_) => MetricKind::Gauge,
            Incoming::Histogram { .. } => MetricKind::Histogram,
        }
    }
}

/// Where finished points go besides memory: the level files, if any.
pub(super) struct Sink<'a> {
    pub(super) disk: Option<&'a mut Disk>,
    pub(super) name: &'a str,
    pub(super) labels: &'a Labels,
}

impl Sink<'_> {
    pub(super) fn push(&mut self, level: Level, point: &Point) {
        if let Some(disk) = self.disk.as_mut() {
            disk.push(level, self.name, self.labels, point);
        }
    }
}

/// What [`advance`] found.
pub(super) enum Advanced {
    /// The values recorded between the two readings.
    Added(SparseBuckets),
    /// A bucket went down or vanished, which only a reset explains.
    Reset,
    /// `now`'s pairs are not in order: nothing was changed.
    Unordered,
}

/// Moves `previous` (lifetime counts summing to `in_buckets`) to `now`: one
/// pass reads `now` and checks its order, the update then touches only the
/// buckets that grew.
pub(super) fn advance(previous: &mut Dense, in_buckets: &mut u64, now: &SparseBuckets) -> Advanced {
    let mut ok = now.zeros >= previous.zeros;
    let (mut matched, mut total) = (0u64, 0u64);
    let mut counts = Vec::with_capacity(now.counts.len().min(64));
    let (first, before) = previous.range();
    // One past the previous bucket: the next must be at least this.
    let mut next = 0;
    for &(index, n) in &now.counts {
        let Some(bucket) = position16(index).filter(|_| now.scale == layout::SCALE) else {
            return Advanced::Unordered;
        };
        let b = usize::from(bucket);
        if b < next || n == 0 {
            return Advanced::Unordered;
        }
        next = b + 1;
        let was = b
            .checked_sub(first)
            .and_then(|i| before.get(i))
            .copied()
            .unwrap_or(0);
        matched = matched.wrapping_add(was);
        total = total.wrapping_add(n);
        if n > was {
            counts.push((bucket, n - was));
        } else if n < was {
            ok = false;
        }
    }
    // Every earlier count must be found again in `now`.
    ok &= matched == *in_buckets;
    *in_buckets = total;
    if !ok {
        previous.clear();
        previous.zeros = now.zeros;
        for &(index, n) in &now.counts {
            if let Some(bucket) = position16(index) {
                previous.set(bucket, n);
            }
        }
        return Advanced::Reset;
    }
    let zeros = now.zeros - previous.zeros;
    previous.zeros = now.zeros;
    for &(bucket, d) in &counts {
        previous.add(bucket, d);
    }
    let counts = counts
        .into_iter()
        .map(|(p, c)| (layout::index_at(usize::from(p)), c))
        .collect();
    Advanced::Added(SparseBuckets {
        zeros,
        counts,
        ..SparseBuckets::default()
    })
}

/// `b`, sorted (a copy) unless it already is.
pub(super) fn normalized(b: Cow<'_, SparseBuckets>) -> Cow<'_, SparseBuckets> {
    if b.is_normalized() {
        return b;
    }
    let mut b = b.into_owned();
    b.normalize();
    Cow::Owned(b)
}
