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
//!   recorded in it (within the buckets' 0.79%), never an average of
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

mod column;
mod dense;
mod persist;
mod point;
mod query;
mod reload;
mod series;
mod timeline;
mod upkeep;

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
use crate::snapshot::{MetricKind, Snapshot};

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

/// A level of the history.
///
/// ```
/// use std::time::Duration;
/// use vitals::history::Level;
/// assert_eq!(Level::FiveMinutes.interval(), Some(Duration::from_secs(300)));
/// assert_eq!(Level::Raw.interval(), None);
/// assert_eq!("1h".parse::<Level>().unwrap(), Level::Hour);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// One point per snapshot.
    #[serde(rename = "raw")]
    Raw,
    /// One point per minute.
    #[serde(rename = "1m")]
    Minute,
    /// One point per five minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One point per hour.
    #[serde(rename = "1h")]
    Hour,
}

impl Level {
    /// Every level, finest first.
    pub const ALL: [Level; 4] = [Level::Raw, Level::Minute, Level::FiveMinutes, Level::Hour];

    /// The length of one interval (`None` for raw: one point per snapshot).
    ///
    /// ```
    /// assert_eq!(vitals::history::Level::Hour.interval().unwrap().as_secs(), 3600);
    /// ```
    pub fn interval(self) -> Option<Duration> {
        self.interval_ms().map(Duration::from_millis)
    }

    fn interval_ms(self) -> Option<u64> {
        match self {
            Level::Raw => None,
            Level::Minute => Some(60_000),
            Level::FiveMinutes => Some(300_000),
            Level::Hour => Some(3_600_000),
        }
    }

    /// The short name: `raw`, `1m`, `5m`, `1h`.
    ///
    /// ```
    /// assert_eq!(vitals::history::Level::Minute.as_str(), "1m");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Raw => "raw",
            Level::Minute => "1m",
            Level::FiveMinutes => "5m",
            Level::Hour => "1h",
        }
    }

    /// The default retention: 24 h, 7 days, 30 days, 365 days.
    ///
    /// ```
    /// use vitals::history::Level;
    /// assert_eq!(Level::Minute.default_retention().as_secs(), 7 * 24 * 3600);
    /// ```
    pub fn default_retention(self) -> Duration {
        const DAY: u64 = 24 * 3600;
        Duration::from_secs(match self {
            Level::Raw => DAY,
            Level::Minute => 7 * DAY,
            Level::FiveMinutes => 30 * DAY,
            Level::Hour => 365 * DAY,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::str::FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| Error::UnknownLevel(s.to_owned()))
    }
}

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
        /// The total.
        total: u64,
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
/// let report = vitals::history::ReplayReport { snapshots: 0, skipped: Vec::new() };
/// assert!(report.skipped.is_empty());
/// ```
#[derive(Debug, Clone)]
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

/// Builds a [`History`] with non-default retentions.
///
/// ```
/// use std::time::Duration;
/// use vitals::history::{History, Level};
/// let history = History::builder()
///     .retention(Level::Raw, Duration::from_secs(3600))
///     .build()
///     .unwrap();
/// assert_eq!(history.retention(Level::Raw), Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone)]
pub struct HistoryBuilder {
    retention: [Duration; 4],
    resident: [Option<Duration>; 4],
    dir: Option<PathBuf>,
    memory_limit: Option<usize>,
}

/// The memory limit of a persisted history unless
/// [`memory_limit`](HistoryBuilder::memory_limit) says otherwise: 64 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

impl HistoryBuilder {
    /// Keeps `level`'s points for `retention` (at least one interval of the
    /// level, one second for raw).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::history::{History, Level};
    /// let b = History::builder().retention(Level::Hour, Duration::from_secs(86_400 * 90));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn retention(mut self, level: Level, retention: Duration) -> Self {
        self.retention[level.index()] = retention;
        self
    }

    /// Keeps only the newest `resident` of `level` in memory (default: all
    /// of its retention). With [`persist`](HistoryBuilder::persist), older
    /// points stay on disk until their retention ends and queries read them
    /// from there; without it they are gone.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::history::{History, Level};
    /// let history = History::builder().resident(Level::Raw, Duration::from_secs(600)).build().unwrap();
    /// assert_eq!(history.resident(Level::Raw), Duration::from_secs(600));
    /// ```
    pub fn resident(mut self, level: Level, resident: Duration) -> Self {
        self.resident[level.index()] = Some(resident);
        self
    }

    /// Writes every finished point of every level as JSON Lines under
    /// `dir` (`<dir>/<level>/<segment start ms>.jsonl`), deletes files past
    /// each level's retention, and on [`build`](HistoryBuilder::build) reads
    /// back what is there, newest first, as much of each level's resident
    /// span as the [memory limit](HistoryBuilder::memory_limit) lets stay
    /// (line by line: the files are never read whole); queries read older
    /// points from the files. A newest line far beyond the rest of the
    /// files and the wall clock is skipped and removed (see
    /// [`History::ingest`]). The open (unfinished) intervals are written
    /// when they close; a reload gathers them again from the finer levels. The first snapshot after a reload is a
    /// baseline unless its process started after the newest point on disk
    /// (its uptime is shorter than the gap): then its totals count from
    /// zero.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-persist-{}", std::process::id()));
    /// let history = vitals::history::History::builder().persist(&dir).build().unwrap();
    /// assert_eq!(history.persisted_dir(), Some(dir.clone()));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// ```
    pub fn persist(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Bounds the memory the points take (as [`History::memory_bytes`]
    /// counts it). When a minute ends and the store holds more than 15/16
    /// of it (the rest is room for the next minute's points), every
    /// level's resident span shrinks by the same factor and the oldest
    /// points leave memory; the spans grow back (10% a minute) once the
    /// store is below 80% of the limit. Reopening a persisted store reads
    /// back only what fits in those 15/16, the spans shrunk alike. With
    /// [`persist`](HistoryBuilder::persist) what leaves memory stays on
    /// disk and queries read it there; without, it is gone, so the limit is
    /// then off unless set here. The default with persistence is
    /// [`DEFAULT_MEMORY_LIMIT`]. The previous readings and open intervals
    /// (about 1 KiB a series, plus 8 bytes a bucket in use for histograms)
    /// do not shrink: with too many series the spans stop at one interval
    /// per level and [`HistoryStats::memory_bytes`] stays above the limit.
    ///
    /// ```
    /// use vitals::history::{History, Level};
    /// let history = History::builder().memory_limit(8 << 20).build().unwrap();
    /// assert_eq!(history.memory_limit(), Some(8 << 20));
    /// assert_eq!(History::new().memory_limit(), None);
    /// ```
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// The store, or [`Error::InvalidConfig`] for a retention shorter than
    /// its level's interval, or [`Error::Io`] when a persisted directory
    /// cannot be read back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::history::{History, Level};
    /// let err = History::builder().retention(Level::Hour, Duration::from_secs(60)).build();
    /// assert!(matches!(err, Err(vitals::Error::InvalidConfig(_))));
    /// ```
    pub fn build(self) -> Result<History, Error> {
        for level in Level::ALL {
            let least = level.interval().unwrap_or(Duration::from_secs(1));
            let kept = self.retention[level.index()];
            if kept < least {
                return Err(Error::InvalidConfig(format!(
                    "the {} level needs a retention of at least {least:?}, not {kept:?}",
                    level.as_str()
                )));
            }
        }
        let history = self.assemble();
        history.reload()?;
        Ok(history)
    }

    /// The store these settings describe, without validation or reloading.
    fn assemble(self) -> History {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let retention_ms = self.retention.map(millis);
        let mut resident_ms = [0; 4];
        for i in 0..4 {
            resident_ms[i] = self.resident[i]
                .map_or(retention_ms[i], millis)
                .min(retention_ms[i]);
        }
        let memory_limit = match (self.memory_limit, &self.dir) {
            (Some(limit), _) => Some(limit),
            (None, Some(_)) => Some(DEFAULT_MEMORY_LIMIT),
            (None, None) => None,
        };
        History {
            retention_ms,
            resident_ms,
            memory_limit,
            inner: Mutex::new(Inner {
                disk: self.dir.map(Disk::new),
                resident_now: resident_ms,
                ..Inner::default()
            }),
        }
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
    /// let history = vitals::history::History::builder().build().unwrap();
    /// # let _ = history;
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

    /// Adds one snapshot: a raw point per series, merged into the open
    /// roll-up intervals; closes the intervals that ended before the
    /// snapshot and drops points past their level's retention (or resident
    /// span). With persistence, appends the finished points to the level
    /// files.
    ///
    /// Snapshots are taken in time order, and a clock that jumps costs at
    /// most the snapshots that left the timeline:
    ///
    /// - **Ahead.** A snapshot more than an hour (or four times the step
    ///   between the two newest accepted snapshots, when longer) after the
    ///   newest accepted one is held. If the next snapshot is newer still,
    ///   the clock did jump (or the program was stopped a while): both are
    ///   ingested, counted in [`HistoryStats::clock_jumps`]. Otherwise the
    ///   held one is dropped, counted in [`HistoryStats::jumps_dropped`],
    ///   and the next is judged by these rules. So one snapshot a year
    ///   ahead costs that snapshot, and a real jump costs nothing; a held
    ///   snapshot is in no query until the next one arrives.
    /// - **Back.** A snapshot not newer than the newest accepted one is
    ///   dropped, counted in [`HistoryStats::out_of_order`]. When three in
    ///   a row come back, each after the one before (by at most the bound
    ///   above) and from a process whose uptime did not go down, the clock
    ///   was stepped back: the third one moves the history to the new
    ///   timeline (counted in [`HistoryStats::clock_jumps`]). The points
    ///   at its time or later are removed, from memory and from the level
    ///   files; the counter increases and histogram values they held are
    ///   added to each series' next point, so sums over a range that spans
    ///   the step lose nothing (gauge readings at disowned times are
    ///   dropped). The two dropped snapshots lose only their resolution:
    ///   the next point counts from the last accepted reading.
    ///
    /// Snapshots of an earlier process (lower uptime: a replay of older
    /// files into a newer store) never move the history back.
    ///
    /// Ingestion reads no clock: replays, manual clocks and other
    /// machines' snapshots are rightly off the local clock, so the timeline
    /// is its own evidence. A reopened history judges the level files'
    /// newest lines, which it cannot see continued, with the wall clock as
    /// well: a newest line time further beyond both the next one and the
    /// wall clock than the bound above was written by a jump that nothing
    /// continued; it does not count, and its lines are removed
    /// ([`HistoryStats::future_lines`]).
    ///
    /// The only error is [`Error::Io`] from persistence; the snapshot is
    /// then still in memory. (If the level files cannot be cut back after a
    /// clock was stepped back, the history stays on its timeline and that
    /// snapshot is dropped; the next three behind try again.)
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let history = vitals::history::History::new();
    /// let snap = metrics.snapshot();
    /// history.ingest(&snap).unwrap();
    /// history.ingest(&snap).unwrap(); // the same time again: dropped
    /// assert_eq!(history.stats().out_of_order, 1);
    /// // A snapshot a year ahead is held; the next on the old timeline drops it.
    /// let mut ahead = snap.clone();
    /// ahead.timestamp_unix_ms += 365 * 86_400_000;
    /// history.ingest(&ahead).unwrap();
    /// let mut next = snap.clone();
    /// next.timestamp_unix_ms += 10_000;
    /// history.ingest(&next).unwrap();
    /// assert_eq!(history.stats().jumps_dropped, 1);
    /// assert_eq!(history.newest_unix_ms(), Some(next.timestamp_unix_ms));
    /// ```
    pub fn ingest(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let newest = match (inner.last, inner.floor) {
            (Some((t, uptime)), _) => Some((t, Some(uptime))),
            (None, Some(floor)) => Some((floor, None)),
            (None, None) => None,
        };
        match inner.timeline.judge(newest, snapshot, &mut inner.stats) {
            Verdict::Accept => self.accept(inner, snapshot),
            Verdict::Hold | Verdict::Behind => Ok(()),
            Verdict::AcceptHeldFirst(held) => {
                let first = self.accept(inner, &held);
                let second = self.accept(inner, snapshot);
                first.and(second)
            }
            Verdict::SteppedBack => {
                self.rewind(inner, snapshot.timestamp_unix_ms)?;
                self.accept(inner, snapshot)
            }
        }
    }

    /// Ingests a snapshot newer than every one accepted.
    fn accept(&self, inner: &mut Inner, snapshot: &Snapshot) -> Result<(), Error> {
        let now = snapshot.timestamp_unix_ms;
        if inner.last.is_some_and(|(t, _)| now <= t) || inner.floor.is_some_and(|t| now <= t) {
            // The rule let nothing older through; stay safe all the same.
            inner.stats.out_of_order += 1;
            return Ok(());
        }
        // A process that restarted: its uptime went down or, for the first
        // snapshot after a reload, began after the newest point on disk.
        // Its totals then started from zero.
        let restarted = match inner.last {
            Some((_, uptime)) => snapshot.uptime_seconds < uptime,
            None => inner
                .floor
                .is_some_and(|f| snapshot.uptime_seconds * 1000.0 < now.saturating_sub(f) as f64),
        };
        if inner.last.is_none() && inner.floor.is_some() {
            // The first snapshot after a reload: if its process restarted,
            // every reloaded series it reports, now or later, counts from
            // zero.
            inner.reloaded_counts_from_zero = restarted;
        }
        let previous_snapshot = inner
            .last
            .map(|(t, _)| t)
            .or(inner.floor.filter(|_| restarted));
        inner.timeline.step = inner.last.map(|(t, _)| now - t);
        inner.last = Some((now, snapshot.uptime_seconds));
        inner.first.get_or_insert(now);
        inner.stats.snapshots += 1;
        let cx = Ingest {
            reloaded_counts_from_zero: inner.reloaded_counts_from_zero,
            horizon: inner.resident_now.map(|r| now.saturating_sub(r)),
            now,
            restarted,
            previous_snapshot,
        };
        // Series expire their own points as they report.
        Self::note_horizon(inner, &cx.horizon);
        let counters = snapshot
            .counters
            .iter()
            .map(|c| (&c.name, &c.labels, Incoming::Counter(c.value)));
        cx.add_all(inner, counters);
        let gauges = snapshot
            .gauges
            .iter()
            .map(|g| (&g.name, &g.labels, Incoming::Gauge(g.value)));
        cx.add_all(inner, gauges);
        let histograms = snapshot.histograms.iter().map(|h| {
            let life = &h.summary.lifetime;
            // Checked for order where they are read (`advance`): what the
            // collector wrote is in order, other input is sorted (a copy).
            let buckets = h.summary.lifetime_buckets.as_ref().map(Cow::Borrowed);
            let reading = Incoming::Histogram {
                count: life.count,
                sum: life.sum,
                buckets,
            };
            (&h.name, &h.labels, reading)
        });
        cx.add_all(inner, histograms);
        // Series that reported closed their own finished intervals and let
        // go of their expired points above. The sweep over every series
        // (intervals of series that did not report, their expired points,
        // series to forget) runs when a minute ends, the finest roll-up
        // interval.
        let minute = Level::Minute.interval_ms().unwrap_or(1);
        let sweep = previous_snapshot
            .is_none_or(|t| t.saturating_sub(1) / minute != now.saturating_sub(1) / minute);
        if sweep {
            self.close_and_expire(inner, now);
            if let Some(limit) = self.memory_limit {
                self.hold_to(limit, inner, now);
            }
        }
        match &mut inner.disk {
            Some(disk) => disk.flush(now, &self.retention_ms),
            None => Ok(()),
        }
    }

    /// Ingests snapshots in order (a [`JsonLinesReader`]
    /// over an exporter's files, rotated sets included, which skips torn
    /// lines) and returns how many were read. Stops at the first error
    /// the iterator yields.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let history = vitals::history::History::new();
    /// let read = history.replay([Ok(metrics.snapshot())]).unwrap();
    /// assert_eq!(read, 1);
    /// ```
    pub fn replay<I>(&self, snapshots: I) -> Result<u64, Error>
    where
        I: IntoIterator<Item = Result<Snapshot, Error>>,
    {
        let mut read = 0;
        for snapshot in snapshots {
            self.ingest(&snapshot?)?;
            read += 1;
        }
        Ok(read)
    }

    /// Rebuilds history from an exporter's JSON-Lines files: `path` and its
    /// rotated siblings, oldest first (see
    /// [`JsonLinesReader::open_rotated`]). Torn or unreadable lines are
    /// skipped and listed in the report.
    ///
    /// ```
    /// use std::io::Write;
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-replay-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("metrics.jsonl");
    /// let metrics = vitals::MetricsCollector::new();
    /// let mut line = Vec::new();
    /// vitals::export::JsonLinesExporter::encode_line(&metrics.snapshot(), &mut line).unwrap();
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// file.write_all(&line).unwrap();
    /// file.write_all(b"{\"schema_version\":2,\"timest").unwrap(); // torn
    /// let history = vitals::history::History::new();
    /// let report = history.replay_files(&path).unwrap();
    /// assert_eq!((report.snapshots, report.skipped.len()), (1, 1));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// ```
    pub fn replay_files(&self, path: impl AsRef<Path>) -> Result<ReplayReport, Error> {
        let mut reader = JsonLinesReader::open_rotated(path)?;
        let snapshots = self.replay(&mut reader)?;
        Ok(ReplayReport {
            snapshots,
            skipped: reader.skipped().to_vec(),
        })
    }

    /// The most recent reading of the series `name` with exactly `labels`.
    ///
    /// ```
    /// assert_eq!(vitals::history::History::new().latest("nope", &[]), None);
    /// ```
    pub fn latest(&self, name: &str, labels: &[(&str, &str)]) -> Option<Latest> {
        let inner = self.inner.lock();
        let family = inner.names.get(name)?;
        let series = family.series.get(&Labels::from_pairs(labels))?;
        let timestamp_unix_ms = series.previous_ms;
        Some(match series.previous.as_ref()? {
            Reading::Counter(total) => Latest::Counter {
                timestamp_unix_ms,
                total: *total,
            },
            Reading::Gauge(value) => Latest::Gauge {
                timestamp_unix_ms,
                value: *value,
            },
            Reading::Histogram { count, sum, .. } => Latest::Histogram {
                timestamp_unix_ms,
                count: *count,
                sum: *sum,
            },
        })
    }

    /// The level a query without one reads: the finest level whose retention
    /// still reaches back to `start_ms`, and, with a point limit, the
    /// coarsest of those whose interval is at most `range / max_points`
    /// (fewer intervals to merge). The hourly level when none reaches back.
    ///
    /// ```
    /// use vitals::history::{Aggregation, History, Level, Query};
    /// let history = History::new();
    /// let day = 86_400_000;
    /// let q = Query::new("x", Aggregation::Sum).range(10 * day, 11 * day).max_points(100);
    /// // 24 h / 100 points = 14.4 min: the 5-minute level, three intervals a point.
    /// assert_eq!(history.choose_level(&q, 11 * day), Level::FiveMinutes);
    /// ```
    pub fn choose_level(&self, query: &Query, now_ms: u64) -> Level {
        self.pick_level(query.start_ms, query, now_ms)
    }

    fn pick_level(&self, start_ms: u64, query: &Query, now_ms: u64) -> Level {
        let covering: Vec<Level> = Level::ALL
            .into_iter()
            .filter(|l| start_ms >= now_ms.saturating_sub(self.retention_ms[l.index()]))
            .collect();
        let Some(&finest) = covering.first() else {
            return Level::Hour;
        };
        match query.max_points {
            Some(n) if n > 0 => {
                let end = query.end_ms.min(now_ms.saturating_add(1));
                // The range as asked (not clipped to the data held): a
                // day in 24 points reads hours.
                let wanted = end.saturating_sub(query.start_ms.min(start_ms)) / n as u64;
                covering
                    .iter()
                    .rev()
                    .find(|l| l.interval_ms().unwrap_or(0) <= wanted)
                    .copied()
                    .unwrap_or(finest)
            }
            _ => finest,
        }
    }

    /// Runs a query: every series of `query.name` whose labels satisfy its
    /// conditions, reduced to steps of the chosen level.
    ///
    /// A missing name, or no series matching, gives an empty result, not an
    /// error. Errors: [`Error::InvalidTimeRange`] when `start >= end`,
    /// [`Error::ZeroMaxPoints`] for a point limit of 0, and
    /// [`Error::UnsupportedAggregation`] when the aggregation has no meaning
    /// for the metric's kind (see [`Aggregation`]).
    ///
    /// ```
    /// use vitals::history::{Aggregation, History, Query};
    /// let history = History::new();
    /// let err = history.query(&Query::new("x", Aggregation::Sum).range(10, 5)).unwrap_err();
    /// assert!(matches!(err, vitals::Error::InvalidTimeRange { .. }));
    /// ```
    pub fn query(&self, query: &Query) -> Result<QueryResult, Error> {
        query.validate()?;
        let mut inner = self.inner.lock();
        // Now is the newest snapshot, or after a reload the newest point.
        let now = inner
            .last
            .map(|(t, _)| t)
            .or(inner.floor)
            .unwrap_or(query.end_ms);
        // A range reaching back past the oldest snapshot is read from
        // there: "everything" is then the finest level that has it all.
        // (A millisecond before it: a snapshot on a boundary belongs to
        // the interval that ends there.)
        let start = query
            .start_ms
            .max(inner.first.map_or(0, |f| f.saturating_sub(1)));
        let level = query
            .level
            .unwrap_or_else(|| self.pick_level(start, query, now));
        let interval = level.interval_ms();
        // Steps start at the range's start rounded down to the level's
        // interval, so that `max_points` steps cover the range.
        let origin = start - start % interval.unwrap_or(1);
        let step = match query.max_points {
            Some(n) => {
                let end = query.end_ms.min(now.saturating_add(1)).max(start + 1);
                let range = end - origin;
                let base = interval.unwrap_or(1);
                let wanted = range.div_ceil(n as u64).max(base);
                // Whole intervals per step, so that steps merge intervals
                // exactly.
                let step = wanted.div_ceil(base).saturating_mul(base);
                (step > base || interval.is_some()).then_some(step)
            }
            None => interval,
        };
        let mut result = QueryResult {
            level,
            step_ms: step,
            aggregation: query.aggregation,
            series: Vec::new(),
        };
        let i = level.index();
        let inner = &mut *inner;
        // Points evicted from memory but still within retention are read
        // from the level's files.
        let mut on_disk: HashMap<Labels, Vec<Point>> = HashMap::new();
        let mut disk_kind = None;
        // Whole segment files outlive the retention a little: the
        // retention is applied to their points here.
        let kept_from = now
            .saturating_sub(self.retention_ms[i])
            .saturating_sub(interval.unwrap_or(0));
        let memory_from = inner.memory_from[i];
        if let Some(disk) = &inner.disk {
            // Only what left memory before its retention ended is read.
            let from = query.start_ms.max(kept_from);
            let until = query.end_ms.min(
                memory_from
                    .saturating_add(interval.unwrap_or(0))
                    .saturating_add(1),
            );
            if from < memory_from && from < until {
                let skipped = disk.read(level, from, until, Some(&query.name), |p| {
                    if query.selects(&p.labels) {
                        disk_kind.get_or_insert(p.agg.kind());
                        let (_, labels, point) = p.into_point();
                        on_disk.entry(labels).or_default().push(point);
                    }
                })?;
                inner.stats.skipped_lines += skipped;
            }
        }
        // Steps are reduced in time order, and a file's lines need not be
        // (one edited by hand, or written by another program).
        for points in on_disk.values_mut() {
            points.sort_by_key(|p| p.t_ms);
        }
        let family = inner.names.get(query.name.as_str());
        let Some(kind) = family.map(|f| f.kind).or(disk_kind) else {
            return Ok(result);
        };
        if !query.aggregation.applies_to(kind) {
            return Err(Error::UnsupportedAggregation {
                aggregation: query.aggregation.as_str(),
                kind: kind.as_str(),
                name: query.name.clone(),
            });
        }
        let name: Arc<str> = inner
            .names
            .get_key_value(query.name.as_str())
            .map_or_else(|| query.name.as_str().into(), |(k, _)| k.clone());
        let mut selected: Vec<(&Labels, Option<&Series>)> = family
            .into_iter()
            .flat_map(|f| f.series.iter())
            .filter(|(labels, _)| query.selects(labels))
            .map(|(labels, s)| (labels, Some(s)))
            .collect();
        for labels in on_disk.keys() {
            if family.is_none_or(|f| !f.series.contains_key(labels)) {
                selected.push((labels, None));
            }
        }
        selected.sort_by(|a, b| a.0.cmp(b.0));
        let (start, end) = (query.start_ms, query.end_ms);
        let no_points = Column::default();
        for (labels, series) in selected {
            let open = series.map_or_else(Vec::new, |s| s.open_points(level));
            let stored = series.map_or(&no_points, |s| &s.levels[i]);
            let in_memory_from = stored
                .first_t()
                .or(open.first().map(|p| p.t_ms))
                .unwrap_or(u64::MAX);
            let disk = on_disk
                .get(labels)
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter(|p| p.t_ms < in_memory_from)
                .cloned();
            // Memory may still hold points up to a minute past their
            // retention (the sweep lets them go): the retention applies here.
            let from = start.max(kept_from);
            let points = disk
                .chain(stored.iter_from(from))
                .chain(open)
                .take_while(|p| p.t_ms < end)
                .filter(|p| p.t_ms >= from);
            result.series.push(SeriesResult {
                name: name.clone(),
                labels: labels.clone(),
                kind,
                points: query::reduce(points, origin, step, query.aggregation),
            });
        }
        Ok(result)
    }
}

/// One snapshot's ingestion context.
struct Ingest {
    now: u64,
    /// Reloaded series without a reading yet count from zero.
    reloaded_counts_from_zero: bool,
    /// Per level, the time before which points leave memory.
    horizon: [u64; 4],
    restarted: bool,
    previous_snapshot: Option<u64>,
}

impl Ingest {
    /// Adds the samples of one kind. A snapshot lists the series of a name
    /// together: the family is looked up once per run of one name.
    fn add_all<'a>(
        &self,
        inner: &mut Inner,
        samples: impl Iterator<Item = (&'a Arc<str>, &'a Labels, Incoming<'a>)>,
    ) {
        let Inner {
            names, stats, disk, ..
        } = inner;
        let mut run: Option<(&Arc<str>, &mut Family)> = None;
        for (name, labels, reading) in samples {
            let kind = reading.kind();
            let family = match run {
                Some((n, family)) if Arc::ptr_eq(n, name) || **n == **name => family,
                _ => match names.get_mut(&**name) {
                    Some(f) => f,
                    None => names.entry(name.clone()).or_insert(Family {
                        kind,
                        series: FastMap::default(),
                    }),
                },
            };
            if family.kind == kind {
                self.add(family, disk.as_mut(), name, labels, reading);
            } else {
                stats.kind_conflicts += 1;
            }
            run = Some((name, family));
        }
    }

    fn add(
        &self,
        family: &mut Family,
        disk: Option<&mut Disk>,
        name: &str,
        labels: &Labels,
        reading: Incoming<'_>,
    ) {
        let (series, created) = match family.series.get_mut(labels) {
            Some(s) => (s, false),
            None => (
                family.series.entry(labels.clone()).or_insert(Series {
                    // A series first seen after an earlier snapshot was created
                    // since (or, after a restart, counts from zero): all of its
                    // total is new. In the first snapshot it is a baseline.
                    previous: self.previous_snapshot.map(|_| reading.zero()),
                    previous_ms: self.previous_snapshot.unwrap_or(self.now),
                    levels: Default::default(),
                    open: Default::default(),
                    carry: None,
                }),
                true,
            ),
        };
        // A new series starts from zero (unless in the first snapshot): it
        // went through no reset. A series reloaded from disk has no reading
        // yet: if the process restarted since, its total went back to zero
        // (a reset) and all of it is new; otherwise it is a baseline.
        let mut restarted = self.restarted && !created;
        if series.previous.is_none() && self.reloaded_counts_from_zero {
            series.previous = Some(reading.zero());
            restarted = true;
        }
        let covered_ms = self.now.saturating_sub(series.previous_ms);
        series.previous_ms = self.now;
        let agg = match (&mut series.previous, reading) {
            (previous, Incoming::Gauge(v)) => {
                *previous = Some(Reading::Gauge(v));
                (!v.is_nan()).then(|| Aggregate::gauge(v))
            }
            (Some(Reading::Counter(before)), Incoming::Counter(now)) => {
                let agg = if restarted || now < *before {
                    Aggregate::Counter {
                        increase: now,
                        resets: 1,
                    }
                } else {
                    Aggregate::Counter {
                        increase: now - *before,
                        resets: 0,
                    }
                };
                *before = now;
                Some(agg)
            }
            (
                Some(Reading::Histogram {
                    count: c0,
                    sum: s0,
                    buckets: b0,
                    in_buckets,
                }),
                Incoming::Histogram {
                    count: c1,
                    sum: s1,
                    buckets: b1,
                },
            ) => {
                let reset = restarted || c1 < *c0;
                let (count, sum) = if reset {
                    (c1, s1)
                } else {
                    (c1 - *c0, (s1 - *s0).max(0.0))
                };
                (*c0, *s0) = (c1, s1);
                let dist = match (b1, b0.as_mut()) {
                    (None, _) => {
                        *b0 = None;
                        None
                    }
                    (Some(now), Some(before)) => {
                        let (added, now) = match advance(before, in_buckets, &now) {
                            Advanced::Unordered => {
                                let mut sorted = now.into_owned();
                                sorted.normalize();
                                (advance(before, in_buckets, &sorted), Cow::Owned(sorted))
                            }
                            added => (added, now),
                        };
                        match added {
                            _ if reset => Some(now.into_owned()),
                            Advanced::Added(d) => Some(d),
                            Advanced::Reset | Advanced::Unordered => None,
                        }
                    }
                    (Some(now), None) => {
                        let now = normalized(now);
                        let dense = Dense::from(&*now);
                        *in_buckets = dense.total();
                        *b0 = Some(dense);
                        reset.then(|| now.into_owned())
                    }
                };
                Some(Aggregate::Histogram {
                    count,
                    sum,
                    buckets: dist.map(Dist::Open),
                })
            }
            // No earlier reading (or one of another kind): a baseline only.
            (previous, reading) => {
                *previous = Some(match reading {
                    Incoming::Counter(v) => Reading::Counter(v),
                    Incoming::Gauge(v) => Reading::Gauge(v),
                    Incoming::Histogram {
                        count,
                        sum,
                        buckets,
                    } => {
                        // Dense counts add repeated buckets up and ignore
                        // the order (and buckets past the layout).
                        let buckets = buckets.map(|b| Dense::from(&*b));
                        Reading::Histogram {
                            count,
                            sum,
                            in_buckets: buckets.as_ref().map_or(0, Dense::total),
                            buckets,
                        }
                    }
                });
                None
            }
        };
        let Some(agg) = agg else { return };
        let mut point = Point {
            t_ms: self.now,
            covered_ms,
            agg,
        };
        // Counts at times a clock stepped back disowned come with the
        // first point after it.
        if let Some(mut carried) = series.carry.take() {
            carried.merge(&point);
            point = Point {
                t_ms: self.now,
                ..*carried
            };
        }
        let mut sink = Sink { disk, name, labels };
        sink.push(Level::Raw, &point);
        series.levels[0].push(&point);
        let minute = Level::Minute.interval_ms().unwrap_or(1);
        let start = self.now.saturating_sub(1) / minute * minute;
        match &mut series.open[0] {
            Some(open) if open.t_ms == start => open.merge(&point),
            _ => {
                series.roll(self.now, &mut sink);
                series.open[0] = Some(Point {
                    t_ms: start,
                    ..point
                });
            }
        }
        // The raw level lets go of its old points here (its chunk is at
        // hand); the roll-up levels and open intervals, which lose at most
        // a point an interval, when the minute's sweep passes.
        series.levels[0].expire_before(self.horizon[0]);
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
