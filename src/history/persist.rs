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
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
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
                .map_err(|e| Error::io("create", &dir, e))
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .map_err(|e| Error::io("open", &path, e))
                })
                .and_then(|mut f| {
                    f.write_all(&bytes)
                        .map_err(|e| Error::io("write", &path, e))
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
                fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
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
            Err(e) => return Err(Error::io("list", &dir, e)),
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
    /// number of lines skipped.
    ///
    /// Lines are appended in time order, except that the intervals one
    /// snapshot closes may be up to one interval older than those an earlier
    /// snapshot wrote. So a file is entered by bisection at the first line
    /// at most an interval before `start`, and left at the first line an
    /// interval past `end`.
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
        let slack = level.interval_ms().unwrap_or(0);
        let (enter, leave) = (start.saturating_sub(slack), end.saturating_add(slack));
        let mut skipped = 0;
        for (segment, path) in self.segments(level)? {
            if segment >= end || segment.saturating_add(segment_ms(level)) <= start {
                continue;
            }
            let mut file = fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
            let from = if enter > segment {
                entry_offset(&mut file, enter).map_err(|e| Error::io("read", &path, e))?
            } else {
                0
            };
            file.seek(SeekFrom::Start(from))
                .map_err(|e| Error::io("seek", &path, e))?;
            let mut reader = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| Error::io("read", &path, e))?;
                if n == 0 {
                    break;
                }
                if line_time(&line).is_some_and(|t| t >= leave) {
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

impl Disk {
    /// The newest distinct line times of `level`, newest first, each with
    /// the number of lines that carry it: the newest `k` at least, when the
    /// files hold that many. The files are read backwards from their end,
    /// block by block, only as far as needed (lines are in time order but
    /// for closes up to one interval late).
    pub(crate) fn newest_times(&self, level: Level, k: usize) -> Result<Vec<(u64, u64)>, Error> {
        const BLOCK: u64 = 64 * 1024;
        let slack = level.interval_ms().unwrap_or(0);
        let mut times: BTreeMap<u64, u64> = BTreeMap::new();
        for (_, path) in self.segments(level)?.into_iter().rev() {
            let io = |op, e: std::io::Error| Error::io(op, &path, e);
            let mut file = fs::File::open(&path).map_err(|e| io("open", e))?;
            let mut end = file.metadata().map_err(|e| io("read", e))?.len();
            // The start of a line that began in an earlier block.
            let mut rest: Vec<u8> = Vec::new();
            while end > 0 {
                let start = end.saturating_sub(BLOCK);
                let mut block = vec![0; usize::try_from(end - start).unwrap_or(0)];
                file.seek(SeekFrom::Start(start))
                    .and_then(|_| file.read_exact(&mut block))
                    .map_err(|e| io("read", e))?;
                block.extend_from_slice(&rest);
                // Unless at the file's start, the block opens inside a line.
                let whole_from = match block.iter().position(|b| *b == b'\n') {
                    _ if start == 0 => 0,
                    Some(at) => at + 1,
                    None => block.len(),
                };
                let mut oldest = u64::MAX;
                for line in block[whole_from..].split(|b| *b == b'\n') {
                    if let Some(t) = line_time(line) {
                        *times.entry(t).or_default() += 1;
                        oldest = oldest.min(t);
                    }
                }
                rest = block[..whole_from].to_vec();
                end = start;
                while times.len() > k {
                    times.pop_first();
                }
                // Lines further back are older, up to one late interval.
                let kth = times.keys().next().copied().unwrap_or(0);
                if times.len() >= k && oldest.saturating_add(slack) < kth {
                    return Ok(times.into_iter().rev().collect());
                }
            }
        }
        Ok(times.into_iter().rev().collect())
    }

    /// The time of the first line of `level`'s oldest segment: about its
    /// oldest point (up to one late interval).
    pub(crate) fn oldest_time(&self, level: Level) -> Result<Option<u64>, Error> {
        let Some((_, path)) = self.segments(level)?.into_iter().next() else {
            return Ok(None);
        };
        let file = fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io("read", &path, e))?;
            if n == 0 {
                return Ok(None);
            }
            if let Some(t) = line_time(&line) {
                return Ok(Some(t));
            }
        }
    }

    /// Removes the lines of `level` whose time is `cut` or later (what a
    /// clock stepped back disowns, or lines far in the future), handing
    /// each to `dropped` when given, parsed, and returns how many went.
    /// Segments from the cut on are deleted; one holding the cut is cut
    /// short at a line boundary found by bisection and the lines from there
    /// that are older than the cut are written back, so the rest of a file
    /// is not rewritten. Lines that do not parse there are removed too.
    pub(crate) fn truncate(
        &mut self,
        level: Level,
        cut: u64,
        mut dropped: Option<&mut dyn FnMut(StoredPoint)>,
    ) -> Result<u64, Error> {
        let mut removed = 0;
        let slack = level.interval_ms().unwrap_or(0);
        let enter = cut.saturating_sub(slack);
        for (segment, path) in self.segments(level)? {
            if segment.saturating_add(segment_ms(level)) <= enter {
                continue;
            }
            let io = |op, e: std::io::Error| Error::io(op, &path, e);
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io("open", e))?;
            let from = if enter > segment {
                entry_offset(&mut file, enter).map_err(|e| io("read", e))?
            } else {
                0
            };
            file.seek(SeekFrom::Start(from))
                .map_err(|e| io("seek", e))?;
            let mut kept = Vec::new();
            let mut reader = BufReader::new(&mut file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(|e| io("read", e))?;
                if n == 0 {
                    break;
                }
                match line_time(&line) {
                    Some(t) if t < cut && line.ends_with(b"\n") => kept.extend_from_slice(&line),
                    Some(t) if t >= cut => {
                        removed += 1;
                        if let Some(each) = dropped.as_mut() {
                            if let Ok(p) = serde_json::from_slice::<StoredPoint>(&line) {
                                each(p);
                            }
                        }
                    }
                    _ => {}
                }
            }
            drop(reader);
            if from == 0 && kept.is_empty() {
                fs::remove_file(&path).map_err(|e| io("remove", e))?;
                continue;
            }
            file.set_len(from)
                .and_then(|()| file.seek(SeekFrom::End(0)))
                .and_then(|_| file.write_all(&kept))
                .map_err(|e| io("write", e))?;
        }
        // Pruning goes by the segment last written to: look again.
        self.last_segment = [None; 4];
        Ok(removed)
    }
}

/// The `t_ms` of a level line, read without parsing it: the first
/// `"t_ms":` is the field (inside a string a quote would be escaped).
pub(crate) fn line_time(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"t_ms\":";
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// The offset of a line boundary at or before the first line whose time is
/// at least `t`, by bisection over the file (lines in time order).
fn entry_offset(file: &mut fs::File, t: u64) -> std::io::Result<u64> {
    let (mut lo, mut hi) = (0u64, file.metadata()?.len());
    let mut buf = Vec::new();
    // Each probe reads from a byte offset to the end of the line there,
    // then the whole next line.
    while hi - lo > 64 * 1024 {
        let mid = lo + (hi - lo) / 2;
        file.seek(SeekFrom::Start(mid))?;
        let mut reader = BufReader::new(&mut *file);
        buf.clear();
        let partial = reader.read_until(b'\n', &mut buf)? as u64;
        buf.clear();
        reader.read_until(b'\n', &mut buf)?;
        match line_time(&buf) {
            // The line starting at `mid + partial` is older: enter after it.
            Some(found) if found < t => lo = mid + partial,
            // Newer, or unreadable (a torn line): look earlier.
            _ => hi = mid,
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::point::Aggregate;
    use crate::snapshot::CounterValue;

    /// A large level file, in time order but for closes up to one interval
    /// late: every range read by bisection equals a plain filter.
    #[test]
    fn bisection_reads_what_a_full_scan_reads() {
        let dir =
            std::env::temp_dir().join(format!("vitals-persist-bisect-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut disk = Disk::new(dir.clone());
        let day = segment_ms(Level::Minute);
        let base = 1_700_000_000_000 / day * day;
        let names = ["a_total", "b_total"];
        let mut written = Vec::new();
        for minute in 0..1200u64 {
            let t = base + minute * 60_000;
            for (i, name) in names.iter().enumerate() {
                for s in 0..3u64 {
                    // Every seventh close is one interval late.
                    let late = (minute + s) % 7 == 0 && minute > 0;
                    let t_ms = if late { t - 60_000 } else { t };
                    let labels = Labels::from_pairs(&[("s", &s.to_string())]);
                    let point = Point {
                        t_ms,
                        covered_ms: 60_000,
                        agg: Aggregate::Counter {
                            increase: CounterValue::Int(minute * 10 + s),
                            resets: 0,
                        },
                    };
                    disk.push(Level::Minute, name, &labels, &point);
                    written.push((i, t_ms, minute * 10 + s));
                }
            }
            disk.flush(t, &[u64::MAX; 4]).unwrap();
        }
        let size = fs::metadata(&disk.segments(Level::Minute).unwrap()[0].1)
            .unwrap()
            .len();
        assert!(size > 8 * 64 * 1024, "{size} bytes: too small to bisect");
        let read = |start: u64, end: u64, name: Option<&str>| {
            let mut got = Vec::new();
            disk.read(Level::Minute, start, end, name, |p| {
                let Aggregate::Counter { increase, .. } = p.agg else {
                    panic!("not a counter");
                };
                let i = names.iter().position(|n| **n == *p.name).unwrap();
                got.push((i, p.t_ms, increase.as_u64().unwrap()));
            })
            .unwrap();
            got.sort_unstable();
            got
        };
        for (a, b) in [
            (0, 1200),
            (1, 2),
            (500, 501),
            (600, 1199),
            (1199, 1300),
            (37, 900),
        ] {
            let (start, end) = (base + a * 60_000, base + b * 60_000);
            for (name, which) in [(None, None), (Some("b_total"), Some(1))] {
                let mut want: Vec<_> = written
                    .iter()
                    .filter(|(i, t, _)| *t >= start && *t < end && which.is_none_or(|w| w == *i))
                    .copied()
                    .collect();
                want.sort_unstable();
                assert_eq!(read(start, end, name), want, "{a}..{b} {name:?}");
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// A level file of `minutes` minutes of two series, every seventh
    /// close one interval late, flushed minute by minute; the points
    /// written, as (series, time).
    fn late_closing_file(dir: &Path, minutes: u64) -> (Disk, Vec<(u64, u64)>) {
        let _ = fs::remove_dir_all(dir);
        let mut disk = Disk::new(dir.to_path_buf());
        let day = segment_ms(Level::Minute);
        let base = 1_700_000_000_000 / day * day;
        let mut written = Vec::new();
        for minute in 0..minutes {
            let t = base + minute * 60_000;
            for s in 0..2u64 {
                let late = (minute + s) % 7 == 0 && minute > 0;
                let t_ms = if late { t - 60_000 } else { t };
                let labels = Labels::from_pairs(&[("s", &s.to_string())]);
                let point = Point {
                    t_ms,
                    covered_ms: 60_000,
                    agg: Aggregate::Counter {
                        increase: CounterValue::Int(minute),
                        resets: 0,
                    },
                };
                disk.push(Level::Minute, "a_total", &labels, &point);
                written.push((s, t_ms));
            }
            disk.flush(t, &[u64::MAX; 4]).unwrap();
        }
        (disk, written)
    }

    fn all_points(disk: &Disk) -> Vec<(u64, u64)> {
        let mut got = Vec::new();
        disk.read(Level::Minute, 0, u64::MAX, None, |p| {
            let s = p
                .labels
                .iter()
                .next()
                .map_or(0, |(_, v)| v.parse().unwrap());
            got.push((s, p.t_ms));
        })
        .unwrap();
        got.sort_unstable();
        got
    }

    /// Cutting a level at any time keeps exactly the lines before it, in a
    /// file large enough to be entered by bisection, and hands over the
    /// others.
    #[test]
    fn truncation_keeps_exactly_the_lines_before_the_cut() {
        let dir = std::env::temp_dir().join(format!("vitals-persist-cut-{}", std::process::id()));
        for cut_minute in [0, 1, 700, 1500, 2899, 5000] {
            let (mut disk, written) = late_closing_file(&dir, 2900);
            let base = written[0].1;
            let cut = base + cut_minute * 60_000;
            let mut dropped = Vec::new();
            let removed = disk
                .truncate(
                    Level::Minute,
                    cut,
                    Some(&mut |p: StoredPoint| dropped.push(p.t_ms)),
                )
                .unwrap();
            let mut want: Vec<_> = written.iter().filter(|(_, t)| *t < cut).copied().collect();
            want.sort_unstable();
            assert_eq!(all_points(&disk), want, "cut at minute {cut_minute}");
            assert_eq!(removed as usize, written.len() - want.len());
            assert_eq!(dropped.len(), written.len() - want.len());
            assert!(dropped.iter().all(|t| *t >= cut));
            // Appends go on after the cut.
            let labels = Labels::from_pairs(&[("s", "0")]);
            let point = Point {
                t_ms: cut,
                covered_ms: 1,
                agg: Aggregate::Counter {
                    increase: CounterValue::Int(1),
                    resets: 0,
                },
            };
            disk.push(Level::Minute, "a_total", &labels, &point);
            disk.flush(cut, &[u64::MAX; 4]).unwrap();
            want.push((0, cut));
            want.sort_unstable();
            assert_eq!(all_points(&disk), want);
        }
        let _ = fs::remove_dir_all(&dir);
    }

    /// The newest line times come from the end of the files, across
    /// segments, late closes included.
    #[test]
    fn newest_times_are_read_from_the_end() {
        let dir = std::env::temp_dir().join(format!("vitals-persist-tail-{}", std::process::id()));
        // Two days: two segments, the second larger than a read block.
        let (disk, written) = late_closing_file(&dir, 2900);
        let mut times: Vec<u64> = written.iter().map(|(_, t)| *t).collect();
        times.sort_unstable();
        times.dedup();
        let got = disk.newest_times(Level::Minute, 4).unwrap();
        let want: Vec<u64> = times.iter().rev().take(4).copied().collect();
        assert_eq!(got.iter().map(|(t, _)| *t).collect::<Vec<_>>(), want);
        for (t, lines) in got {
            let n = written.iter().filter(|(_, w)| *w == t).count() as u64;
            assert_eq!(lines, n, "lines at {t}");
        }
        // With few lines in the newest segment, the one before is read.
        let day = segment_ms(Level::Minute);
        let newest = *times.last().unwrap();
        let tail = times.iter().filter(|t| *t / day == newest / day).count();
        let got = disk.newest_times(Level::Minute, tail + 2).unwrap();
        assert_eq!(got.len(), tail + 2);
        assert_eq!(disk.oldest_time(Level::Minute).unwrap(), Some(times[0]));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn line_time_reads_the_field_not_a_label_value() {
        let line = br#"{"name":"x","labels":{"k":"\"t_ms\":5"},"t_ms":1234,"covered_ms":1}"#;
        assert_eq!(line_time(line), Some(1234));
        assert_eq!(line_time(b"{\"name\":\"x\",\"t_m"), None);
    }
}
