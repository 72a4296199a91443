//! JSON Lines: one [`Snapshot`](crate::Snapshot) per line in an
//! append-only file, with rotation, retention, an fsync policy, and a
//! reader that survives torn lines.
//!
//! # File layout
//!
//! The exporter appends to its *active* file, say `dir/metrics.jsonl`.
//! Rotation renames it to `dir/metrics.<UTC time>.jsonl`, the time as
//! `YYYYMMDDTHHMMSS.mmmZ` (from the clock's wall time at rotation, with
//! `.1`, `.2`, … before the extension if that name exists), and opens a
//! fresh active file. Names sort in time order; [`JsonLinesReader::open_rotated`]
//! reads the rotated files oldest first, then the active file.
//!
//! # Guarantees
//!
//! * Each line is one complete snapshot in UTF-8 JSON ending with `\n`,
//!   written with **one `write` call** on a file opened in append mode: a
//!   crash can leave at most the last line torn, and concurrent readers
//!   never see two snapshots interleaved.
//! * A torn line never spoils the next one: after a short write (or when
//!   reopening a file that does not end in `\n`) the next line starts with
//!   `\n`, so the fragment stands alone and the reader skips it.
//! * Errors are returned, never panicked: a full disk (`StorageFull`), a
//!   deleted directory (`NotFound`) or anything else. The next call tries
//!   again (reopening the file if needed) and writing resumes once the
//!   fault is gone. The exporter never recreates a directory that was
//!   deleted under it.
//! * Before each line the exporter checks that its path still names the
//!   file it holds open, so lines never vanish into a deleted file. A file
//!   moved away (log rotation by another tool) is simply followed by a new
//!   one at the path. A file *deleted* while open (on Unix: no link left)
//!   lost the lines written before: the exporter creates a new file,
//!   writes the snapshot there, and then returns
//!   `Error::Io { operation: "recreate", kind: NotFound, .. }` once, so the
//!   loss is known. That snapshot is written: do not export it again.
//!
//! The writer is in `writer.rs`, the reader in `reader.rs`, the names of
//! rotated files (and the calendar they need) in `rotation.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::Error;

mod reader;
mod rotation;
mod writer;

pub use reader::{JsonLinesReader, SkippedLine};
pub use writer::JsonLinesExporter;

use rotation::split_name;

/// When written lines are forced to stable storage with `fsync`
/// (`File::sync_data`).
///
/// Without fsync a line reaches the operating system at once (it survives
/// the program crashing) but may be lost if the machine loses power.
///
/// ```
/// use std::time::Duration;
/// use vitals::export::FsyncPolicy;
///
/// assert_eq!(FsyncPolicy::default(), FsyncPolicy::EveryLine);
/// let relaxed = FsyncPolicy::Interval(Duration::from_secs(30));
/// # let _ = relaxed;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Never: leave it to the operating system.
    Never,
    /// After a line when at least this long has passed since the last
    /// fsync (by the exporter's clock), and before rotation and on flush.
    Interval(Duration),
    /// After every line (the default: a reporter writes one line per
    /// interval, so this costs little).
    #[default]
    EveryLine,
}

/// Settings for a [`JsonLinesExporter`].
///
/// ```
/// use std::time::Duration;
/// use vitals::export::{Exporter, FsyncPolicy, JsonLinesExporter, JsonLinesReader};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-builder-{}", std::process::id()));
/// let mut exporter = JsonLinesExporter::builder(dir.join("metrics.jsonl"))
///     .fsync(FsyncPolicy::Interval(Duration::from_secs(10)))
///     .rotate_bytes(64 * 1024 * 1024)
///     .rotate_age(Duration::from_secs(24 * 3600))
///     .keep_files(7)
///     .keep_age(Duration::from_secs(30 * 24 * 3600))
///     .build()
///     .unwrap();
/// exporter.export(&vitals::MetricsCollector::new().snapshot()).unwrap();
/// assert_eq!(JsonLinesReader::open(exporter.path()).unwrap().count(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct JsonLinesBuilder {
    path: PathBuf,
    fsync: FsyncPolicy,
    rotate_bytes: Option<u64>,
    rotate_age: Option<Duration>,
    keep_files: Option<usize>,
    keep_age: Option<Duration>,
    clock: Option<Arc<dyn Clock>>,
}

impl JsonLinesBuilder {
    /// When to fsync (default [`FsyncPolicy::EveryLine`]).
    ///
    /// ```
    /// use vitals::export::{Exporter, FsyncPolicy, JsonLinesExporter, JsonLinesReader};
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-fsync-{}", std::process::id()));
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .fsync(FsyncPolicy::Never)
    ///     .build()
    ///     .unwrap();
    /// exporter.export(&vitals::MetricsCollector::new().snapshot()).unwrap();
    /// // Not fsynced, yet readers see the line at once (a power loss could lose it):
    /// assert_eq!(JsonLinesReader::open(exporter.path()).unwrap().count(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Rotates before a line would take the active file past `bytes`
    /// (a single line longer than that gets a file of its own).
    ///
    /// ```
    /// use vitals::export::{Exporter, JsonLinesExporter};
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-rotate-bytes-{}", std::process::id()));
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .rotate_bytes(1) // tiny, to show it: one line per file
    ///     .build()
    ///     .unwrap();
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// for _ in 0..3 {
    ///     exporter.export(&snap).unwrap();
    /// }
    /// assert_eq!(exporter.rotated_files().unwrap().len(), 2); // plus the active file
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn rotate_bytes(mut self, bytes: u64) -> Self {
        self.rotate_bytes = Some(bytes);
        self
    }

    /// Rotates before writing to an active file opened at least `age` ago
    /// (by the exporter's clock; a file found at start counts from then).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::export::{Exporter, JsonLinesExporter};
    /// use vitals::ManualClock;
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-rotate-age-{}", std::process::id()));
    /// let clock = Arc::new(ManualClock::new());
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .rotate_age(Duration::from_secs(3600))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// exporter.export(&snap).unwrap();
    /// clock.advance(Duration::from_secs(3600));
    /// exporter.export(&snap).unwrap(); // the active file is an hour old: rotated first
    /// assert_eq!(exporter.rotated_files().unwrap().len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn rotate_age(mut self, age: Duration) -> Self {
        self.rotate_age = Some(age);
        self
    }

    /// Keeps at most `files` rotated files (the active one not counted),
    /// deleting the oldest after each rotation.
    ///
    /// ```
    /// use vitals::export::{Exporter, JsonLinesExporter};
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-keep-files-{}", std::process::id()));
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .rotate_bytes(1) // one line per file
    ///     .keep_files(2)
    ///     .build()
    ///     .unwrap();
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// for _ in 0..5 {
    ///     exporter.export(&snap).unwrap();
    /// }
    /// assert_eq!(exporter.rotated_files().unwrap().len(), 2); // 4 rotated, the 2 oldest deleted
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn keep_files(mut self, files: usize) -> Self {
        self.keep_files = Some(files);
        self
    }

    /// Deletes rotated files whose rotation time (in their name) is more
    /// than `age` before the clock's wall time, after each rotation and at
    /// construction.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::export::{Exporter, JsonLinesExporter};
    /// use vitals::ManualClock;
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-keep-age-{}", std::process::id()));
    /// const DAY: Duration = Duration::from_secs(24 * 3600);
    /// let clock = Arc::new(ManualClock::new());
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .rotate_bytes(1) // one line per file
    ///     .keep_age(7 * DAY)
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// exporter.export(&snap).unwrap();
    /// exporter.export(&snap).unwrap(); // rotates: one rotated file
    /// clock.advance(8 * DAY);
    /// exporter.export(&snap).unwrap(); // rotates, and deletes the 8-day-old file
    /// assert_eq!(exporter.rotated_files().unwrap().len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn keep_age(mut self, age: Duration) -> Self {
        self.keep_age = Some(age);
        self
    }

    /// The clock for rotation age, fsync intervals and rotated names
    /// (default: the system clock). Give it the collector's
    /// [`clock`](crate::MetricsCollector::clock) so that a
    /// [`ManualClock`](crate::ManualClock) drives rotation in tests.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use vitals::export::{Exporter, JsonLinesExporter};
    /// use vitals::{ManualClock, MetricsCollector};
    ///
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-clock-{}", std::process::id()));
    /// let clock = Arc::new(ManualClock::new());
    /// let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    /// let mut exporter = JsonLinesExporter::builder(dir.join("m.jsonl"))
    ///     .rotate_age(Duration::from_secs(60))
    ///     .clock(metrics.clock().clone())
    ///     .build()
    ///     .unwrap();
    /// exporter.export(&metrics.snapshot()).unwrap();
    /// clock.advance(Duration::from_secs(60)); // no sleeping in tests
    /// exporter.export(&metrics.snapshot()).unwrap();
    /// assert_eq!(exporter.rotated_files().unwrap().len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Creates the parent directory if needed and opens (or creates) the
    /// active file for appending: an unwritable path is an error here, not
    /// at the first export.
    ///
    /// ```
    /// // A regular file cannot be a directory.
    /// let err = vitals::export::JsonLinesExporter::builder("/dev/null/metrics.jsonl")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, vitals::Error::Io { .. }));
    /// ```
    pub fn build(self) -> Result<JsonLinesExporter, Error> {
        let stem_ext = split_name(&self.path).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "{:?} does not name a file for JSON Lines",
                self.path
            ))
        })?;
        if self.rotate_bytes == Some(0) {
            return Err(Error::InvalidConfig(
                "rotate_bytes must be at least 1".into(),
            ));
        }
        if self.rotate_age == Some(Duration::ZERO) {
            return Err(Error::InvalidConfig("rotate_age must be positive".into()));
        }
        if let FsyncPolicy::Interval(d) = self.fsync {
            if d.is_zero() {
                return Err(Error::InvalidConfig(
                    "an fsync interval must be positive (use FsyncPolicy::EveryLine)".into(),
                ));
            }
        }
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        JsonLinesExporter::start(self, dir, stem_ext)
    }
}
