//! The JSON-Lines exporter: appending, rotating, retention, fsync, and
//! following the file it writes through deletions and moves.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::snapshot::Snapshot;

use super::rotation::{format_utc_millis, rotated_in, rotated_name, wall_millis};
use super::{FsyncPolicy, JsonLinesBuilder};
use crate::export::Exporter;

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
    /// Opens the active file of a built exporter and applies retention.
    pub(super) fn start(
        b: JsonLinesBuilder,
        dir: PathBuf,
        stem_ext: (String, Option<String>),
    ) -> Result<Self, Error> {
        let clock = b
            .clock
            .unwrap_or_else(|| Arc::new(SystemClock::new()) as Arc<dyn Clock>);
        let now = clock.monotonic();
        let mut exporter = JsonLinesExporter {
            path: b.path,
            dir,
            stem: stem_ext.0,
            ext: stem_ext.1,
            fsync: b.fsync,
            rotate_bytes: b.rotate_bytes,
            rotate_age: b.rotate_age,
            keep_files: b.keep_files,
            keep_age: b.keep_age,
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
    /// # let dir = std::env::temp_dir().join(format!("vitals-doc-builder-fn-{}", std::process::id()));
    /// let path = dir.join("metrics.jsonl");
    /// let builder = vitals::export::JsonLinesExporter::builder(&path);
    /// assert!(!path.exists()); // nothing is opened until build()
    /// let exporter = builder.build().unwrap();
    /// assert!(exporter.path().exists());
    /// # std::fs::remove_dir_all(&dir).unwrap();
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
