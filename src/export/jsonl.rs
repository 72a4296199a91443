//! JSON Lines: one [`Snapshot`] per line in an append-only file, with
//! rotation, retention, an fsync policy, and a reader that survives torn
//! lines.
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

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::snapshot::Snapshot;

use super::Exporter;

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
/// use vitals::export::{FsyncPolicy, JsonLinesExporter};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-builder-{}", std::process::id()));
/// let exporter = JsonLinesExporter::builder(dir.join("metrics.jsonl"))
///     .fsync(FsyncPolicy::Interval(Duration::from_secs(10)))
///     .rotate_bytes(64 * 1024 * 1024)
///     .rotate_age(Duration::from_secs(24 * 3600))
///     .keep_files(7)
///     .keep_age(Duration::from_secs(30 * 24 * 3600))
///     .build()
///     .unwrap();
/// # drop(exporter);
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
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl")
    ///     .fsync(vitals::export::FsyncPolicy::Never);
    /// # let _ = b;
    /// ```
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Rotates before a line would take the active file past `bytes`
    /// (a single line longer than that gets a file of its own).
    ///
    /// ```
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl").rotate_bytes(1 << 20);
    /// # let _ = b;
    /// ```
    pub fn rotate_bytes(mut self, bytes: u64) -> Self {
        self.rotate_bytes = Some(bytes);
        self
    }

    /// Rotates before writing to an active file opened at least `age` ago
    /// (by the exporter's clock; a file found at start counts from then).
    ///
    /// ```
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl")
    ///     .rotate_age(std::time::Duration::from_secs(3600));
    /// # let _ = b;
    /// ```
    pub fn rotate_age(mut self, age: Duration) -> Self {
        self.rotate_age = Some(age);
        self
    }

    /// Keeps at most `files` rotated files (the active one not counted),
    /// deleting the oldest after each rotation.
    ///
    /// ```
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl").keep_files(10);
    /// # let _ = b;
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
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl")
    ///     .keep_age(std::time::Duration::from_secs(7 * 24 * 3600));
    /// # let _ = b;
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
    /// let metrics = vitals::MetricsCollector::new();
    /// let b = vitals::export::JsonLinesExporter::builder("m.jsonl").clock(metrics.clock().clone());
    /// # let _ = b;
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
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(SystemClock::new()) as Arc<dyn Clock>);
        let now = clock.monotonic();
        let mut exporter = JsonLinesExporter {
            path: self.path,
            dir,
            stem: stem_ext.0,
            ext: stem_ext.1,
            fsync: self.fsync,
            rotate_bytes: self.rotate_bytes,
            rotate_age: self.rotate_age,
            keep_files: self.keep_files,
            keep_age: self.keep_age,
            clock,
            file: None,
            size: 0,
            opened_at: now,
            last_sync: now,
            torn: false,
            line: Vec::new(),
        };
        exporter.open()?;
        exporter.apply_retention()?;
        Ok(exporter)
    }
}

/// Appends one [`Snapshot`] per line to a file; see the
/// [module notes](crate::export) for the layout and guarantees.
///
/// ```
/// use vitals::export::{Exporter, JsonLinesExporter, JsonLinesReader};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-jsonl-{}", std::process::id()));
/// let path = dir.join("metrics.jsonl");
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[]).inc();
///
/// let mut exporter = JsonLinesExporter::new(&path).unwrap();
/// exporter.export(&metrics.snapshot()).unwrap();
/// exporter.export(&metrics.snapshot()).unwrap();
///
/// let snaps: Vec<_> = JsonLinesReader::open(&path).unwrap().collect::<Result<_, _>>().unwrap();
/// assert_eq!(snaps.len(), 2);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct JsonLinesExporter {
    path: PathBuf,
    dir: PathBuf,
    stem: String,
    ext: Option<String>,
    fsync: FsyncPolicy,
    rotate_bytes: Option<u64>,
    rotate_age: Option<Duration>,
    keep_files: Option<usize>,
    keep_age: Option<Duration>,
    clock: Arc<dyn Clock>,
    file: Option<OpenFile>,
    size: u64,
    opened_at: Duration,
    last_sync: Duration,
    /// The active file ends in a fragment: start the next line with `\n`.
    torn: bool,
    /// The line being written, reused between snapshots.
    line: Vec<u8>,
}

struct OpenFile {
    file: File,
    identity: Option<(u64, u64)>,
}

impl std::fmt::Debug for JsonLinesExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesExporter")
            .field("path", &self.path)
            .field("fsync", &self.fsync)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl JsonLinesExporter {
    /// An exporter appending to `path` with default settings (fsync every
    /// line, no rotation).
    ///
    /// ```
    /// let err = vitals::export::JsonLinesExporter::new("/dev/null/x.jsonl").unwrap_err();
    /// assert_eq!(err.kind(), "io");
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::builder(path).build()
    }

    /// Settings for an exporter appending to `path`.
    ///
    /// ```
    /// let b = vitals::export::JsonLinesExporter::builder("metrics.jsonl");
    /// # let _ = b;
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> JsonLinesBuilder {
        JsonLinesBuilder {
            path: path.as_ref().to_path_buf(),
            fsync: FsyncPolicy::default(),
            rotate_bytes: None,
            rotate_age: None,
            keep_files: None,
            keep_age: None,
            clock: None,
        }
    }

    /// The active file's path.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-path-{}", std::process::id()));
    /// let e = vitals::export::JsonLinesExporter::new(dir.join("m.jsonl")).unwrap();
    /// assert!(e.path().ends_with("m.jsonl"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rotated files that exist now, oldest first (the active file not
    /// included).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-rotated-{}", std::process::id()));
    /// let e = vitals::export::JsonLinesExporter::new(dir.join("m.jsonl")).unwrap();
    /// assert!(e.rotated_files().unwrap().is_empty());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn rotated_files(&self) -> Result<Vec<PathBuf>, Error> {
        Ok(rotated_in(&self.dir, &self.stem, self.ext.as_deref())?
            .into_iter()
            .map(|r| r.path)
            .collect())
    }

    /// Serialises `snapshot` as one line (without writing it): the bytes
    /// [`export`](Exporter::export) would append, newline included.
    ///
    /// ```
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// let mut line = Vec::new();
    /// vitals::export::JsonLinesExporter::encode_line(&snap, &mut line).unwrap();
    /// assert_eq!(line.last(), Some(&b'\n'));
    /// assert!(line.starts_with(b"{\"schema_version\":"));
    /// ```
    pub fn encode_line(snapshot: &Snapshot, out: &mut Vec<u8>) -> Result<(), Error> {
        serde_json::to_writer(&mut *out, snapshot).map_err(|e| Error::Export {
            exporter: "jsonl".into(),
            message: format!("cannot serialise the snapshot: {e}"),
        })?;
        out.push(b'\n');
        Ok(())
    }

    /// Opens the active file if it is not open, or no longer the file at
    /// `path` (deleted, or its directory deleted, or replaced). Returns
    /// true when the file it held was deleted (its lines are gone).
    fn open(&mut self) -> Result<bool, Error> {
        let mut deleted = false;
        if let Some(open) = &self.file {
            match identity_of_path(&self.path) {
                Ok(id) if id == open.identity => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("stat", &self.path, e)),
            }
            deleted = is_unlinked(&open.file);
            self.file = None;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|e| Error::io("open", &self.path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("stat", &self.path, e))?;
        self.size = meta.len();
        self.torn = false;
        if self.size > 0 {
            // A crash may have left a fragment: keep the next line apart.
            let mut last = [0u8; 1];
            let read = file
                .seek(SeekFrom::End(-1))
                .and_then(|_| file.read_exact(&mut last));
            self.torn = read.is_err() || last[0] != b'\n';
        }
        self.opened_at = self.clock.monotonic();
        self.file = Some(OpenFile {
            identity: identity_of_meta(&meta),
            file,
        });
        Ok(deleted)
    }

    fn needs_rotation(&self, line_len: u64) -> bool {
        if self.size == 0 {
            return false;
        }
        let too_big = self
            .rotate_bytes
            .is_some_and(|max| self.size.saturating_add(line_len) > max);
        let too_old = self
            .rotate_age
            .is_some_and(|age| self.clock.monotonic().saturating_sub(self.opened_at) >= age);
        too_big || too_old
    }

    fn rotate(&mut self) -> Result<(), Error> {
        if let Some(open) = self.file.take() {
            if self.fsync != FsyncPolicy::Never {
                open.file
                    .sync_data()
                    .map_err(|e| Error::io("fsync", &self.path, e))?;
            }
        }
        let stamp = format_utc_millis(wall_millis(self.clock.wall()));
        let mut n = 0u32;
        let target = loop {
            let candidate = self
                .dir
                .join(rotated_name(&self.stem, self.ext.as_deref(), &stamp, n));
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        std::fs::rename(&self.path, &target).map_err(|e| Error::io("rename", &self.path, e))?;
        self.open()?;
        self.apply_retention()
    }

    fn apply_retention(&self) -> Result<(), Error> {
        if self.keep_files.is_none() && self.keep_age.is_none() {
            return Ok(());
        }
        let rotated = rotated_in(&self.dir, &self.stem, self.ext.as_deref())?;
        let now_ms = wall_millis(self.clock.wall());
        let by_count = self
            .keep_files
            .map_or(0, |keep| rotated.len().saturating_sub(keep));
        let mut first_error = None;
        for (i, r) in rotated.iter().enumerate() {
            let too_old = self.keep_age.is_some_and(|age| {
                let age_ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
                now_ms.saturating_sub(r.millis) > age_ms
            });
            if i < by_count || too_old {
                if let Err(e) = std::fs::remove_file(&r.path) {
                    if e.kind() != ErrorKind::NotFound && first_error.is_none() {
                        first_error = Some(Error::io("remove", &r.path, e));
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn write_line(&mut self) -> Result<(), Error> {
        let Some(open) = self.file.as_mut() else {
            return Err(Error::io(
                "write",
                &self.path,
                std::io::Error::from(ErrorKind::NotFound),
            ));
        };
        let written = loop {
            // One `write` per line: the whole line or (on a short write) a
            // prefix of it lands in one piece.
            match open.file.write(&self.line) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match written {
            Ok(n) if n == self.line.len() => {
                self.size += n as u64;
                self.torn = false;
                Ok(())
            }
            Ok(n) => {
                self.size += n as u64;
                self.torn = true;
                Err(Error::io(
                    "write",
                    &self.path,
                    std::io::Error::new(
                        ErrorKind::WriteZero,
                        format!("short write: {n} of {} bytes", self.line.len()),
                    ),
                ))
            }
            Err(e) => {
                // Reopen next time: the fault may be the file itself.
                self.file = None;
                Err(Error::io("write", &self.path, e))
            }
        }
    }

    fn sync_if_due(&mut self, force: bool) -> Result<(), Error> {
        let now = self.clock.monotonic();
        let due = match self.fsync {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryLine => true,
            FsyncPolicy::Interval(every) => force || now.saturating_sub(self.last_sync) >= every,
        };
        if !due {
            return Ok(());
        }
        if let Some(open) = &self.file {
            open.file
                .sync_data()
                .map_err(|e| Error::io("fsync", &self.path, e))?;
            self.last_sync = now;
        }
        Ok(())
    }
}

impl Exporter for JsonLinesExporter {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        let recreated = self.open()?;
        self.line.clear();
        if self.torn {
            self.line.push(b'\n');
        }
        Self::encode_line(snapshot, &mut self.line)?;
        if self.needs_rotation(self.line.len() as u64) {
            self.rotate()?;
            if self.line.first() == Some(&b'\n') && !self.torn {
                self.line.remove(0);
            }
        }
        self.write_line()?;
        self.sync_if_due(false)?;
        if recreated {
            return Err(Error::io(
                "recreate",
                &self.path,
                std::io::Error::new(
                    ErrorKind::NotFound,
                    "the file was deleted while open, with the lines written to it; \
                     this snapshot was written to a new file at the path",
                ),
            ));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.sync_if_due(true)
    }
}

/// A line the reader skipped: torn (a crash mid-write) or not a snapshot.
///
/// ```
/// let s = vitals::export::SkippedLine {
///     path: "m.jsonl".into(),
///     line: 3,
///     reason: "EOF while parsing".into(),
/// };
/// assert_eq!(s.to_string(), "m.jsonl:3: EOF while parsing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number in that file.
    pub line: u64,
    /// Why it was skipped.
    pub reason: String,
}

impl std::fmt::Display for SkippedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.reason)
    }
}

/// Reads [`Snapshot`]s back from JSON Lines files, in order.
///
/// A torn or invalid line is skipped and recorded in
/// [`skipped`](JsonLinesReader::skipped) with its line number; blank lines
/// are ignored. The iterator yields `Err` only for I/O failures (then moves
/// on to the next file).
///
/// ```
/// use std::io::Write;
/// use vitals::export::{Exporter, JsonLinesExporter, JsonLinesReader};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-reader-{}", std::process::id()));
/// let path = dir.join("m.jsonl");
/// let mut exporter = JsonLinesExporter::new(&path).unwrap();
/// exporter.export(&vitals::MetricsCollector::new().snapshot()).unwrap();
/// // A crash mid-line:
/// std::fs::OpenOptions::new().append(true).open(&path).unwrap()
///     .write_all(b"{\"schema_version\":1,\"times").unwrap();
///
/// let mut reader = JsonLinesReader::open(&path).unwrap();
/// assert_eq!(reader.by_ref().filter_map(Result::ok).count(), 1);
/// assert_eq!(reader.skipped()[0].line, 2);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct JsonLinesReader {
    files: VecDeque<PathBuf>,
    /// The source being read and the name its skipped lines are reported
    /// under.
    current: Option<(PathBuf, Box<dyn BufRead + Send>)>,
    line_no: u64,
    buf: Vec<u8>,
    skipped: Vec<SkippedLine>,
}

impl std::fmt::Debug for JsonLinesReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesReader")
            .field("files", &self.files)
            .field("current", &self.current.as_ref().map(|(path, _)| path))
            .field("line_no", &self.line_no)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl JsonLinesReader {
    /// Reads one file.
    ///
    /// ```
    /// let err = vitals::export::JsonLinesReader::open("/nonexistent/m.jsonl").unwrap_err();
    /// assert!(matches!(err, vitals::Error::Io { kind: std::io::ErrorKind::NotFound, .. }));
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        Ok(JsonLinesReader {
            files: VecDeque::new(),
            current: Some((path, Box::new(BufReader::new(file)))),
            line_no: 0,
            buf: Vec::new(),
            skipped: Vec::new(),
        })
    }

    /// Reads snapshots from any buffered source: a pipe, a socket, a
    /// decompressor, bytes in memory. Lines are split and skipped exactly
    /// as for a file; `name` is the path [`SkippedLine`]s report.
    ///
    /// ```
    /// use vitals::export::{JsonLinesExporter, JsonLinesReader};
    ///
    /// let mut bytes = Vec::new();
    /// JsonLinesExporter::encode_line(&vitals::MetricsCollector::new().snapshot(), &mut bytes).unwrap();
    /// bytes.extend_from_slice(b"{\"torn");
    ///
    /// let mut reader = JsonLinesReader::from_reader("<memory>", std::io::Cursor::new(bytes));
    /// assert_eq!(reader.by_ref().filter_map(Result::ok).count(), 1);
    /// assert_eq!(reader.skipped()[0].to_string().split(':').next(), Some("<memory>"));
    /// ```
    pub fn from_reader(name: impl Into<PathBuf>, reader: impl BufRead + Send + 'static) -> Self {
        JsonLinesReader {
            files: VecDeque::new(),
            current: Some((name.into(), Box::new(reader))),
            line_no: 0,
            buf: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Reads the rotated files of the active file `path` (the path given
    /// to [`JsonLinesExporter`]) oldest first, then `path` itself if it
    /// exists. An error if none exists.
    ///
    /// ```
    /// let err = vitals::export::JsonLinesReader::open_rotated("/nonexistent/m.jsonl").unwrap_err();
    /// assert_eq!(err.kind(), "io");
    /// ```
    pub fn open_rotated(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let (stem, ext) = split_name(path).ok_or_else(|| {
            Error::InvalidConfig(format!("{path:?} does not name a JSON Lines file"))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut files: VecDeque<PathBuf> = rotated_in(dir, &stem, ext.as_deref())?
            .into_iter()
            .map(|r| r.path)
            .collect();
        if path.exists() {
            files.push_back(path.to_path_buf());
        }
        if files.is_empty() {
            return Err(Error::io(
                "open",
                path,
                std::io::Error::from(ErrorKind::NotFound),
            ));
        }
        Ok(JsonLinesReader {
            files,
            current: None,
            line_no: 0,
            buf: Vec::new(),
            skipped: Vec::new(),
        })
    }

    /// Lines skipped so far, in reading order.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-skipped-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("m.jsonl");
    /// std::fs::write(&path, "not json\n").unwrap();
    /// let mut reader = vitals::export::JsonLinesReader::open(&path).unwrap();
    /// assert_eq!(reader.by_ref().count(), 0);
    /// assert_eq!(reader.skipped().len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn skipped(&self) -> &[SkippedLine] {
        &self.skipped
    }
}

impl Iterator for JsonLinesReader {
    type Item = Result<Snapshot, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let path = self.files.pop_front()?;
                self.line_no = 0;
                match File::open(&path) {
                    Ok(file) => self.current = Some((path, Box::new(BufReader::new(file)))),
                    Err(e) => return Some(Err(Error::io("open", &path, e))),
                }
            }
            let (path, reader) = self.current.as_mut()?;
            self.buf.clear();
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.current = None;
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    let err = Error::io("read", path, e);
                    self.current = None;
                    return Some(Err(err));
                }
            }
            self.line_no += 1;
            let text = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Snapshot>(text) {
                Ok(snapshot) => return Some(Ok(snapshot)),
                Err(e) => self.skipped.push(SkippedLine {
                    path: path.clone(),
                    line: self.line_no,
                    reason: e.to_string(),
                }),
            }
        }
    }
}

// ------------------------------------------------------------- file names

/// `(stem, extension)` of a file path: `metrics.jsonl` → `("metrics", Some("jsonl"))`.
fn split_name(path: &Path) -> Option<(String, Option<String>)> {
    let name = path.file_name()?.to_str()?;
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some(match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
            (stem.to_owned(), Some(ext.to_owned()))
        }
        _ => (name.to_owned(), None),
    })
}

fn rotated_name(stem: &str, ext: Option<&str>, stamp: &str, n: u32) -> String {
    let mut name = format!("{stem}.{stamp}");
    if n > 0 {
        name.push_str(&format!(".{n}"));
    }
    if let Some(ext) = ext {
        name.push('.');
        name.push_str(ext);
    }
    name
}

struct Rotated {
    millis: u64,
    n: u32,
    path: PathBuf,
}

/// The rotated files of `stem` in `dir`, oldest first.
fn rotated_in(dir: &Path, stem: &str, ext: Option<&str>) -> Result<Vec<Rotated>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let middle = match ext {
            Some(ext) => match middle.strip_suffix(ext).and_then(|m| m.strip_suffix('.')) {
                Some(m) => m,
                None => continue,
            },
            None => middle,
        };
        let (stamp, n) = match middle.get(STAMP_LEN..) {
            Some("") => (middle, 0),
            Some(rest) => match rest.strip_prefix('.').and_then(|n| n.parse().ok()) {
                Some(n) => (&middle[..STAMP_LEN], n),
                None => continue,
            },
            None => continue,
        };
        if let Some(millis) = parse_utc_millis(stamp) {
            found.push(Rotated {
                millis,
                n,
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|r| (r.millis, r.n));
    Ok(found)
}

fn wall_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYYMMDDTHHMMSS.mmmZ`
const STAMP_LEN: usize = 20;

fn format_utc_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

fn parse_utc_millis(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se, ms) = (num(9..11)?, num(11..13)?, num(13..15)?, num(16..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y as i64, mo as u32, d as u32)).ok()?;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(unix)]
fn identity_of_meta(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity_of_meta(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// True when the open file has no name left in the file system: it was
/// deleted, not moved. Unknown (false) off Unix.
#[cfg(unix)]
fn is_unlinked(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().is_ok_and(|m| m.nlink() == 0)
}

#[cfg(not(unix))]
fn is_unlinked(_file: &File) -> bool {
    false
}

fn identity_of_path(path: &Path) -> std::io::Result<Option<(u64, u64)>> {
    std::fs::metadata(path).map(|m| identity_of_meta(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_round_trip_and_sort_in_time_order() {
        for ms in [
            0u64,
            1,
            951_782_400_000,
            1_790_000_000_123,
            4_102_444_799_999,
        ] {
            let s = format_utc_millis(ms);
            assert_eq!(s.len(), STAMP_LEN, "{s}");
            assert_eq!(parse_utc_millis(&s), Some(ms), "{s}");
        }
        assert_eq!(format_utc_millis(951_782_400_000), "20000229T000000.000Z");
        assert!(format_utc_millis(1_000) < format_utc_millis(10_000));
        assert_eq!(parse_utc_millis("20001329T000000.000Z"), None);
        assert_eq!(parse_utc_millis("2000022xT000000.000Z"), None);
        assert_eq!(parse_utc_millis("short"), None);
    }

    #[test]
    fn names_split_and_rotated_names_parse_back() {
        assert_eq!(
            split_name(Path::new("d/metrics.jsonl")),
            Some(("metrics".into(), Some("jsonl".into())))
        );
        assert_eq!(
            split_name(Path::new("d/metrics")),
            Some(("metrics".into(), None))
        );
        assert_eq!(split_name(Path::new("/")), None);
        let name = rotated_name("m", Some("jsonl"), "20000229T000000.000Z", 2);
        assert_eq!(name, "m.20000229T000000.000Z.2.jsonl");
    }
}
