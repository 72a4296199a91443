//! Building a history: retentions, resident spans, persistence, memory limit.

use super::*;

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
    pub(super) retention: [Duration; 4],
    pub(super) resident: [Option<Duration>; 4],
    pub(super) dir: Option<PathBuf>,
    pub(super) memory_limit: Option<usize>,
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
    pub(super) fn assemble(self) -> History {
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
