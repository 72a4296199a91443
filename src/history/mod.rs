//! History: snapshots rolled up into levels (raw → 1 min → 5 min → 1 h),
//! each kept for its own retention, and queried by name, labels and time.
//!
//! # How it works
//!
//! [`History::ingest`] takes [`Snapshot`]s in time order. Time is the
//! snapshots' own `timestamp_unix_ms`: ingestion reads no clock, so a day of
//! data can be fed in a second (tests use a [`ManualClock`](crate::ManualClock)
//! on the collector).
//!
//! For each series it keeps the previous cumulative reading and turns every
//! snapshot into one raw point: what happened since the previous snapshot.
//!
//! - **Counters**: the increase. A total that went down, or a snapshot whose
//!   `uptime_seconds` went down (the process restarted), is a reset: the
//!   increase is the new total, and the reset is counted.
//! - **Gauges**: the reading (count, sum, min, max, last).
//! - **Histograms**: the values recorded since the previous snapshot, from
//!   the difference of the lifetime count and sum, and, when the collector
//!   was built with
//!   [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets), of the
//!   lifetime bucket counts: the exact distribution of the interval, which
//!   merges exactly. So the p95 of an hour is the p95 of every value
//!   recorded in it (within the buckets' 0.55%), never an average of
//!   per-minute p95s. Rolling windows overlap from one snapshot to the next
//!   and are not used. Count windows carry no bucket state: their history
//!   has count, sum, avg and rate, but no quantiles.
//!
//! Each raw point is also merged into the open minute of its series (the
//! minute holding the snapshot's time, minus a millisecond: a snapshot at
//! 12:01:00 still belongs to the minute 12:00). An interval is closed once
//! a snapshot comes after its end; a closed minute is merged into the open
//! 5 minutes, and a closed 5 minutes into the open hour, and queries add
//! the open intervals below back in. Points leave a level once they are
//! older than its retention (measured from the newest snapshot).
//!
//! # Memory
//!
//! Finished points are held delta-encoded in chunks of 128 (a counter
//! point takes about 5 bytes, a gauge point 6 to 30, a histogram point
//! about 12 plus 2 to 4 bytes per bucket in use). Per series there is also
//! a fixed part: the previous reading, the open intervals (dense bucket
//! counts for histograms, 512 bytes per octave in use) and about 600 bytes
//! of bookkeeping. A persisted history (see [`HistoryBuilder::persist`])
//! keeps at most [`DEFAULT_MEMORY_LIMIT`] by shrinking how much of each
//! level stays resident; the rest is read from the level files by the
//! queries that reach back. [`History::stats`] says what is held.
//!
//! Reopening a persisted history reads the levels back newest first, as
//! much as the memory limit lets stay, streaming the files; older points
//! are read from the files by the queries that reach them.
//!
//! # Clock jumps
//!
//! A clock that jumps costs at most the snapshots that left the timeline.
//! A snapshot more than an hour (or four steps) ahead of the newest is held
//! until the next one: if that one continues from it the clock did jump and
//! both are taken, otherwise it is dropped. Snapshots behind the newest are
//! dropped, but three in a row from the same process mean the clock was
//! stepped back: the history moves to their timeline, carrying the counts
//! of the points it disowns. Reopening skips and removes a newest line far
//! beyond the rest of the files and the wall clock. The rule in full is on
//! [`History::ingest`]; [`HistoryStats`] counts what it dropped.
//!
//! # Queries
//!
//! Queries read one level, the finest whose retention still covers the
//! start of the range and, with a point limit, the coarsest whose interval
//! still fits `range / max_points`; they merge neighbouring intervals into
//! steps and reduce each step with an [`Aggregation`].

mod builder;
mod column;
mod dense;
mod ingest;
mod level;
mod persist;
mod point;
mod query;
mod read;
mod reload;
mod series;
mod timeline;
mod upkeep;
mod varint;

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::export::{Exporter, JsonLinesReader, SkippedLine};
use crate::key::{Labels, NameHasher};
use crate::snapshot::{CounterValue, MetricKind, Snapshot};

pub use builder::{HistoryBuilder, DEFAULT_MEMORY_LIMIT};
pub use level::Level;
pub use query::{Aggregation, LabelMatch, Query, QueryPoint, QueryResult, SeriesResult};

use column::Column;
use dense::Dense;
use persist::Disk;
use point::{Aggregate, Dist, Point};
use series::{advance, normalized, Advanced, Incoming, Reading, Series, Sink};
use timeline::{Timeline, Verdict};
use upkeep::memory_of;

#[cfg(feature = "fuzzing")]
pub(crate) use persist::{line_time, segment_ms};

/// The most recent reading of one series, from the newest snapshot that
/// held it.
///
/// ```
/// use vitals::history::{History, Latest};
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("temp", &[]).set(21.5);
/// let history = History::new();
/// history.ingest(&metrics.snapshot()).unwrap();
/// match history.latest("temp", &[]) {
///     Some(Latest::Gauge { value, .. }) => assert_eq!(value, 21.5),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Latest {
    /// A counter's total.
    Counter {
        /// Snapshot time, Unix ms.
        timestamp_unix_ms: u64,
        /// The total (a float for a plug-in's float total).
        total: CounterValue,
    },
    /// A gauge's value.
    Gauge {
        /// Snapshot time, Unix ms.
        timestamp_unix_ms: u64,
        /// The value.
        value: f64,
    },
    /// A histogram's lifetime count and sum.
    Histogram {
        /// Snapshot time, Unix ms.
        timestamp_unix_ms: u64,
        /// Values recorded over the series' life.
        count: u64,
        /// Their sum.
        sum: f64,
    },
}

/// Counts of what ingestion did, for checking a store's health.
///
/// ```
/// let stats = vitals::history::History::new().stats();
/// assert_eq!(stats.snapshots, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryStats {
    /// Snapshots ingested.
    pub snapshots: u64,
    /// Snapshots dropped because they were not newer than the newest
    /// accepted one (see the clock-jump rule on [`History::ingest`]).
    pub out_of_order: u64,
    /// Snapshots dropped because they were far ahead of the newest
    /// accepted one and the next snapshot did not continue from them (see
    /// [`History::ingest`]).
    pub jumps_dropped: u64,
    /// Times the history moved to a new timeline: a jump ahead that the
    /// next snapshot continued, or a clock stepped back (see
    /// [`History::ingest`]).
    pub clock_jumps: u64,
    /// Series samples ignored because their name was seen as another kind.
    pub kind_conflicts: u64,
    /// Series currently held.
    pub series: usize,
    /// Points currently held in memory, per level (raw, 1m, 5m, 1h), open
    /// intervals included.
    pub points: [usize; 4],
    /// Lines of the level files that did not parse (torn lines), met while
    /// reopening or querying a persisted history.
    pub skipped_lines: u64,
    /// Lines of the level files found, while reopening, far beyond the
    /// rest of the files (a clock jump that was written and never
    /// continued): they do not set the newest time and are removed.
    pub future_lines: u64,
    /// Bytes of memory held, as [`History::memory_bytes`] counts them.
    pub memory_bytes: usize,
    /// How much of each level is in memory now, ms: the configured
    /// resident span, or less while the memory limit holds it down.
    pub resident_ms: [u64; 4],
    /// Times the memory limit shrank the resident spans.
    pub shrinks: u64,
}

/// What [`History::replay_files`] read.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("vitals-replay-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("m.jsonl");
/// std::fs::write(&path, "not a snapshot\n").unwrap();
/// let report = vitals::history::History::new().replay_files(&path).unwrap();
/// assert_eq!((report.snapshots, report.skipped.len()), (0, 1));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayReport {
    /// Snapshots ingested.
    pub snapshots: u64,
    /// Lines skipped (torn or not a snapshot), with file and line number.
    pub skipped: Vec<SkippedLine>,
}

/// A shared history is an [`Exporter`]: give a
/// [`Reporter`](crate::export::Reporter) an `Arc<History>` and every
/// snapshot it takes is ingested.
impl Exporter for Arc<History> {
    fn name(&self) -> &str {
        "history"
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.ingest(snapshot)
    }
}

/// An in-memory history of snapshots, rolled up into levels and queried.
///
/// `Send + Sync`: share it in an `Arc` between the thread that ingests and
/// those that query. See the [module docs](self) for how it works.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use vitals::history::{Aggregation, History, Level, Query};
/// use vitals::{ManualClock, MetricsCollector};
///
/// let clock = Arc::new(ManualClock::new());
/// let metrics = MetricsCollector::builder().clock(clock.clone()).lifetime_buckets(true).build();
/// let history = History::new();
/// let requests = metrics.counter("requests_total", &[("route", "/")]);
/// let latency = metrics.histogram("latency_seconds", &[("route", "/")]);
/// for _ in 0..360 {
///     requests.increment(50);
///     for ms in 1..=50 {
///         latency.record(f64::from(ms) / 1000.0);
///     }
///     clock.advance(Duration::from_secs(10));
///     history.ingest(&metrics.snapshot()).unwrap();
/// }
/// let q = Query::new("requests_total", Aggregation::Rate).label("route", "/").level(Level::Minute);
/// let rates = history.query(&q).unwrap();
/// assert!(rates.series[0].points.iter().all(|p| p.value == 5.0));
/// let p95 = history.query(&Query::new("latency_seconds", Aggregation::P95).level(Level::Hour)).unwrap();
/// assert!((p95.series[0].points[0].value - 0.048).abs() < 0.001);
/// ```
#[derive(Debug)]
pub struct History {
    retention_ms: [u64; 4],
    /// Configured resident spans.
    resident_ms: [u64; 4],
    memory_limit: Option<usize>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Newest snapshot ingested: (time, uptime).
    last: Option<(u64, f64)>,
    /// Time of the oldest snapshot ingested (or point reloaded).
    first: Option<u64>,
    /// Newest point reloaded from disk: older snapshots are out of order.
    floor: Option<u64>,
    disk: Option<Disk>,
    stats: HistoryStats,
    names: FastMap<Arc<str>, Family>,
    /// Resident spans in force: the configured ones, or less under the
    /// memory limit.
    resident_now: [u64; 4],
    /// Per level, the time before which memory may lack points (they
    /// expired or left for the memory limit): queries reaching further
    /// back read the level files.
    memory_from: [u64; 4],
    /// Set when the process feeding a reloaded history restarted since the
    /// newest point on disk: reloaded series count from zero.
    reloaded_counts_from_zero: bool,
    /// What the clock-jump rule holds between snapshots.
    timeline: Timeline,
}

/// Names and label sets come from the program's own registry (bounded by
/// its cardinality limits) or its own files: a fast hash, not SipHash.
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Every series of one metric name.
#[derive(Debug)]
struct Family {
    kind: MetricKind,
    series: FastMap<Labels, Series>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// A store with the default retentions (24 h, 7 d, 30 d, 365 d).
    ///
    /// ```
    /// let history = vitals::history::History::new();
    /// assert_eq!(history.stats().series, 0);
    /// ```
    pub fn new() -> Self {
        // The default retentions are valid and nothing is on disk to reload.
        Self::builder().assemble()
    }

    /// A builder, to set retentions.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::history::{History, Level};
    ///
    /// let history = History::builder()
    ///     .retention(Level::Raw, Duration::from_secs(600))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(history.retention(Level::Raw), Duration::from_secs(600));
    /// ```
    pub fn builder() -> HistoryBuilder {
        HistoryBuilder {
            retention: Level::ALL.map(Level::default_retention),
            resident: [None; 4],
            dir: None,
            memory_limit: None,
        }
    }

    /// How long `level` keeps its points.
    ///
    /// ```
    /// use vitals::history::{History, Level};
    /// assert_eq!(History::new().retention(Level::Raw).as_secs(), 86_400);
    /// ```
    pub fn retention(&self, level: Level) -> Duration {
        Duration::from_millis(self.retention_ms[level.index()])
    }

    /// How much of `level` is kept in memory.
    ///
    /// ```
    /// use vitals::history::{History, Level};
    /// assert_eq!(History::new().resident(Level::Hour), History::new().retention(Level::Hour));
    /// ```
    pub fn resident(&self, level: Level) -> Duration {
        Duration::from_millis(self.resident_ms[level.index()])
    }

    /// The memory limit, if any (see
    /// [`HistoryBuilder::memory_limit`]).
    ///
    /// ```
    /// assert_eq!(vitals::history::History::new().memory_limit(), None);
    /// ```
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory_limit
    }

    /// The directory the levels are persisted in, if any.
    ///
    /// ```
    /// assert_eq!(vitals::history::History::new().persisted_dir(), None);
    /// ```
    pub fn persisted_dir(&self) -> Option<PathBuf> {
        self.inner
            .lock()
            .disk
            .as_ref()
            .map(|d| d.dir().to_path_buf())
    }

    /// Time of the newest snapshot ingested, Unix ms.
    ///
    /// ```
    /// assert_eq!(vitals::history::History::new().newest_unix_ms(), None);
    /// ```
    pub fn newest_unix_ms(&self) -> Option<u64> {
        self.inner.lock().last.map(|(t, _)| t)
    }

    /// What ingestion has done so far and what the store holds.
    ///
    /// ```
    /// let history = vitals::history::History::new();
    /// history.ingest(&vitals::MetricsCollector::new().snapshot()).unwrap();
    /// assert_eq!(history.stats().snapshots, 1);
    /// ```
    pub fn stats(&self) -> HistoryStats {
        let inner = self.inner.lock();
        let mut stats = inner.stats.clone();
        stats.series = 0;
        stats.points = [0; 4];
        for family in inner.names.values() {
            stats.series += family.series.len();
            for s in family.series.values() {
                for (i, level) in s.levels.iter().enumerate() {
                    stats.points[i] += level.len();
                }
                for level in &Level::ALL[1..] {
                    stats.points[level.index()] += s.open_points(*level).len();
                }
            }
        }
        stats.memory_bytes = memory_of(&inner);
        stats.resident_ms = inner.resident_now;
        stats
    }

    /// Bytes of memory the points and series hold (an estimate from sizes
    /// and capacities, excluding the allocator's overhead).
    ///
    /// ```
    /// assert!(vitals::history::History::new().memory_bytes() < 1024);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        memory_of(&self.inner.lock())
    }
}

/// Decodes one level-file line as a reload does and puts the point
/// through what the store does with it (test support for the fuzzers,
/// see [`crate::fuzzing`]). Panics when a decoded point does not read back
/// the same from a [`Column`]: that would lose data on reload.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_level_line(line: &[u8]) {
    let _ = persist::line_time(line);
    let Ok(stored) = serde_json::from_slice::<persist::StoredPoint>(line) else {
        return;
    };
    let (_, _, point) = stored.into_point();
    let mut later = point.clone();
    later.t_ms = point.t_ms.saturating_add(60_000);
    let mut column = Column::default();
    column.push(&point);
    column.push(&later);
    let back: Vec<Point> = column.iter_from(0).collect();
    // Compared as written to disk: a distribution read as a list comes
    // back packed, which is the same distribution.
    let json = |p: &Point| serde_json::to_string(p).unwrap_or_default();
    assert_eq!(back.len(), 2, "a column lost points of {point:?}");
    assert_eq!(json(&back[0]), json(&point), "column round trip");
    assert_eq!(json(&back[1]), json(&later), "column round trip");
    let mut merged = point.clone();
    merged.merge(&later);
    merged.merge(&back[0]);
    for p in [&point, &merged] {
        for aggregation in Aggregation::ALL {
            let _ = aggregation.evaluate(p);
        }
    }
    column.expire_before(later.t_ms);
    column.trim();
    let _ = (column.len(), column.first_t(), column.heap_bytes());
}

#[cfg(test)]
mod tests;
