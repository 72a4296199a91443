//! Levels on disk: every finished point as one JSON line, in one file per
//! level per time segment, so that on-disk retention deletes whole files.
//!
//! Layout: `<dir>/<level>/<segment start, Unix ms>.jsonl`, segments of 1 h
//! (raw), 1 day (1 min), 7 days (5 min) and 30 days (1 h). A line is
//! `{"name":…,"labels":{…},"t_ms":…,"covered_ms":…,"agg":{"kind":…,…}}`.
//! Lines that do not parse (a torn last line after a crash) are skipped and
//! counted.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::point::{Aggregate, Point};
use super::Level;
use crate::error::Error;
use crate::key::Labels;

#[derive(Serialize)]
struct LineRef<'a> {
    name: &'a str,
    labels: &'a Labels,
    t_ms: u64,
    covered_ms: u64,
    agg: &'a Aggregate,
}

/// One point read back from disk.
#[derive(Deserialize)]
pub(crate) struct StoredPoint {
    pub(crate) name: Arc<str>,
    pub(crate) labels: Labels,
    pub(crate) t_ms: u64,
    pub(crate) covered_ms: u64,
    pub(crate) agg: Aggregate,
}

impl StoredPoint {
    pub(crate) fn into_point(self) -> (Arc<str>, Labels, Point) {
        (
            self.name,
            self.labels,
            Point {
                t_ms: self.t_ms,
                covered_ms: self.covered_ms,
                agg: self.agg,
            },
        )
    }
}

pub(crate) fn segment_ms(level: Level) -> u64 {
    const HOUR: u64 = 3_600_000;
    match level {
        Level::Raw => HOUR,
        Level::Minute => 24 * HOUR,
        Level::FiveMinutes => 7 * 24 * HOUR,
        Level::Hour => 30 * 24 * HOUR,
    }
}

/// The directory of a persisted history, and the lines waiting to be
/// written by the current ingestion.
#[derive(Debug)]
pub(crate) struct Disk {
    dir: PathBuf,
    /// (level, segment start) → lines.
    pending: BTreeMap<(Level, u64), Vec<u8>>,
    /// The segment each level last wrote to: a new one triggers pruning.
    last_segment: [Option<u64>; 4],
}

impl Disk {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Disk {
            dir,
            pending: BTreeMap::new(),
            last_segment: [None; 4],
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues one finished point.
    pub(crate) fn push(&mut self, level: Level, name: &str, labels: &Labels, point: &Point) {
        let segment = point.t_ms - point.t_ms % segment_ms(level);
        let buf = self.pending.entry((level, segment)).or_default();
        let line = LineRef {
            name,
            labels,
            t_ms: point.t_ms,
            covered_ms: point.covered_ms,
            agg: &point.agg,
        };
        // Plain data with string keys: serialisation cannot fail.
        if serde_json::to_writer(&mut *buf, &line).is_ok() {
            buf.push(b'\n');
        }
    }

    /// Writes the queued lines (one append per segment file) and deletes
    /// the segment files past each level's retention.
    pub(crate) fn flush(&mut self, now: u64, retention_ms: &[u64; 4]) -> Result<(), Error> {
        let pending = std::mem::take(&mut self.pending);
        let mut first_error = None;
        for ((level, segment), bytes) in pending {
            let dir = self.dir.join(level.as_str());
            let path = dir.join(format!("{segment}.jsonl"));
            let written = fs::create_dir_all(&dir)
                .map_err(|e| Error::io("create", &dir, &e))
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|e| Error::io("open", &path, &e))
                })
                .and_then(|mut f| {
                    f.write_all(&bytes)
                        .map_err(|e| Error::io("write", &path, &e))
                });
            if let Err(e) = written {
                first_error.get_or_insert(e);
            }
            let i = level as usize;
            if self.last_segment[i] != Some(segment) {
                self.last_segment[i] = Some(segment);
                if let Err(e) = self.prune(level, now.saturating_sub(retention_ms[i])) {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Deletes the segment files of `level` that end before `horizon`.
    fn prune(&self, level: Level, horizon: u64) -> Result<(), Error> {
        for (start, path) in self.segments(level)? {
            if start.saturating_add(segment_ms(level)) <= horizon {
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, &e))?;
            }
        }
        Ok(())
    }

    /// The segment files of a level, oldest first.
    pub(crate) fn segments(&self, level: Level) -> Result<Vec<(u64, PathBuf)>, Error> {
        let dir = self.dir.join(level.as_str());
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &dir, &e)),
        };
        let mut out: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let start = name.to_str()?.strip_suffix(".jsonl")?.parse().ok()?;
                Some((start, entry.path()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Reads the points of `level` with `start <= t < end` (of metric `name`
    /// only, when given), skipping lines that do not parse. Returns the
    /// points and the number of lines skipped.
    pub(crate) fn read(
        &self,
        level: Level,
        start: u64,
        end: u64,
        name: Option<&str>,
        mut each: impl FnMut(StoredPoint),
    ) -> Result<u64, Error> {
        // Cheap pre-filter: a line of another metric is not parsed.
        let needle = name.map(|n| {
            let mut s = String::from("{\"name\":");
            s.push_str(&serde_json::to_string(n).unwrap_or_default());
            s.push(',');
            s
        });
        let mut skipped = 0;
        for (segment, path) in self.segments(level)? {
            if segment >= end || segment.saturating_add(segment_ms(level)) <= start {
                continue;
            }
            let file = fs::File::open(&path).map_err(|e| Error::io("open", &path, &e))?;
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("read", &path, &e))?;
                if n == 0 {
                    break;
                }
                if let Some(needle) = &needle {
                    if !line.starts_with(needle.as_bytes()) {
                        continue;
                    }
                }
                match serde_json::from_slice::<StoredPoint>(&line) {
                    Ok(p) if p.t_ms >= start && p.t_ms < end => each(p),
                    Ok(_) => {}
                    Err(_) => skipped += 1,
                }
            }
        }
        Ok(skipped)
    }
}
