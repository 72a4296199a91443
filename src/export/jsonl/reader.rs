//! Reading JSON-Lines files back: one snapshot per good line, the others
//! skipped and reported.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::snapshot::Snapshot;

use super::rotation::{rotated_in, split_name};

/// A line the reader skipped: torn (a crash mid-write) or not a snapshot.
///
/// ```
/// use vitals::export::JsonLinesReader;
///
/// let torn = "{\"schema_version\":3,\"timestam\n";
/// let mut reader = JsonLinesReader::from_reader("m.jsonl", std::io::Cursor::new(torn));
/// assert!(reader.next().is_none());
/// let skipped = &reader.skipped()[0];
/// assert_eq!((skipped.line, skipped.path.to_str()), (1, Some("m.jsonl")));
/// assert!(skipped.to_string().starts_with("m.jsonl:1: "));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// to [`JsonLinesExporter`](super::JsonLinesExporter)) oldest first,
    /// then `path` itself if it exists. An error if none exists.
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
