//! Entry points for the fuzz targets in `fuzz/` and for
//! `tests/fuzz_corpus.rs`, which replays their corpora on stable Rust.
//!
//! Test support behind the `fuzzing` cargo feature, not part of the API a
//! program should use: each function feeds arbitrary bytes through one
//! parser of outside input the way the library reads it, and panics only
//! when an invariant the library promises is broken (a panic inside the
//! library is a finding too).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::export::{JsonLinesExporter, JsonLinesReader};
use crate::history::{Aggregation, History, Level, Query};
use crate::snapshot::Snapshot;

/// Reads `data` as a JSON Lines file through [`JsonLinesReader`], and
/// checks that every snapshot it yields is written back by
/// [`JsonLinesExporter::encode_line`] as a line that reads back to the same
/// snapshot.
///
/// ```
/// use vitals::export::{JsonLinesExporter, JsonLinesReader};
///
/// let mut data = Vec::new();
/// JsonLinesExporter::encode_line(&vitals::MetricsCollector::new().snapshot(), &mut data).unwrap();
/// data.extend_from_slice(b"{\"schema_version\":1}\n\xff\n");
/// vitals::fuzzing::jsonl_reader(&data); // panics if an invariant broke
///
/// // What it checked: one snapshot read and written back, two lines skipped.
/// let mut reader = JsonLinesReader::from_reader("<fuzz>", std::io::Cursor::new(data));
/// assert_eq!(reader.by_ref().count(), 1);
/// assert_eq!(reader.skipped().len(), 2);
/// ```
pub fn jsonl_reader(data: &[u8]) {
    // The panics below are this fuzz oracle's findings, not error handling:
    // a panic is what tells libFuzzer an invariant broke. Test support only
    // (feature `fuzzing`), never reached by the library's users.
    let mut reader = JsonLinesReader::from_reader("<fuzz>", std::io::Cursor::new(data.to_vec()));
    let mut lines = 0usize;
    for snapshot in reader.by_ref() {
        let Ok(snapshot) = snapshot else {
            panic!("reading bytes in memory cannot fail: {snapshot:?}");
        };
        lines += 1;
        let mut line = Vec::new();
        if JsonLinesExporter::encode_line(&snapshot, &mut line).is_err() {
            panic!("a snapshot that was read cannot be written back: {snapshot:?}");
        }
        let again: Snapshot = match serde_json::from_slice(&line) {
            Ok(again) => again,
            Err(e) => panic!("a written snapshot does not read back ({e}): {line:?}"),
        };
        // Equal as values, or for NaN gauges (never equal to themselves)
        // equal as written.
        let mut line_again = Vec::new();
        let _ = JsonLinesExporter::encode_line(&again, &mut line_again);
        assert_eq!(
            String::from_utf8_lossy(&line),
            String::from_utf8_lossy(&line_again),
            "re-encoding changed the snapshot"
        );
        if snapshot == snapshot.clone() {
            assert_eq!(again, snapshot, "the snapshot changed on a round trip");
        }
    }
    // Every line that is neither blank nor yielded was reported skipped.
    let blank = data
        .split(|b| *b == b'\n')
        .filter(|l| l.iter().all(u8::is_ascii_whitespace))
        .count();
    let all = data.split(|b| *b == b'\n').count();
    assert_eq!(lines + reader.skipped().len() + blank, all, "lines lost");
}

/// Decodes one line of a history level file directly (the fast entry):
/// the time pre-filter, the point with its packed distribution, and what
/// the in-memory store does with the point, which must read back from it
/// unchanged.
///
/// ```
/// let line = br#"{"name":"x","labels":{},"t_ms":5,"covered_ms":1,"agg":{"kind":"counter","increase":1,"resets":0}}"#;
/// // As `tests/fuzz_corpus.rs` replays an input: a panic is a finding.
/// let outcome = std::panic::catch_unwind(|| vitals::fuzzing::history_level_line(line));
/// assert!(outcome.is_ok());
/// ```
pub fn history_level_line(line: &[u8]) {
    crate::history::check_level_line(line);
}

/// Writes `data[1..]` as a level file (the level picked by `data[0] % 4`)
/// in a fresh directory, opens a persisted [`History`] on it, ingests a
/// snapshot and runs every aggregation over the names the file mentions:
/// the path a program takes when it restarts on files it did not write.
/// With bit 2 of `data[0]` set the content is repeated past 64 KiB, and
/// with bit 3 only a minute of each level stays in memory, so that
/// queries read the file and enter it by bisection, over lines out of
/// time order.
///
/// ```
/// let data = b"\x01{\"name\":\"x\"}\n"; // level 1, a line without a time
/// // As `tests/fuzz_corpus.rs` replays an input: a panic is a finding.
/// let outcome = std::panic::catch_unwind(|| vitals::fuzzing::history_level_file(data));
/// assert!(outcome.is_ok());
/// ```
pub fn history_level_file(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let level = Level::ALL[usize::from(pick % 4)];
    // The file is named for the segment of its first timed line, so that
    // the reload reads it whatever times the input holds.
    let first_t = content
        .split(|b| *b == b'\n')
        .find_map(crate::history::line_time);
    let span = crate::history::segment_ms(level);
    let segment = first_t.map_or(0, |t| t - t % span);
    let dir = scratch_dir();
    let files = dir.join(level.as_str());
    if std::fs::create_dir_all(&files).is_err()
        || std::fs::write(
            files.join(format!("{segment}.jsonl")),
            file_bytes(pick, content),
        )
        .is_err()
    {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let names = mentioned_names(content);
    let mut builder = History::builder().persist(&dir);
    if pick & 8 != 0 {
        // Little resident: queries read the file, entering it mid-way.
        for level in Level::ALL {
            builder = builder.resident(level, Duration::from_secs(60));
        }
    }
    if let Ok(history) = builder.build() {
        let stats = history.stats();
        let newest = history.newest_unix_ms().unwrap_or(0);
        let ranges = [
            (0, u64::MAX),
            (segment, segment.saturating_add(span)),
            (newest.saturating_sub(3_600_000), newest.saturating_add(1)),
            (segment.saturating_add(span / 3), newest),
        ];
        // A few queries per input, not every combination: each reads the
        // file again, and the fuzzer's speed is what finds bugs.
        let aggregations = [
            Aggregation::Sum,
            Aggregation::P95,
            Aggregation::ALL[usize::from(pick >> 4) % Aggregation::ALL.len()],
        ];
        // A long file is there to be entered mid-way.
        let skip = if pick & 4 == 0 { 0 } else { 2 };
        let run = |history: &History| {
            for name in &names {
                for aggregation in aggregations {
                    for (i, &(start, end)) in ranges.iter().enumerate().skip(skip) {
                        let query = Query::new(name.as_str(), aggregation).range(start, end);
                        let query = match i {
                            0 => query,
                            1 | 3 => query.level(level),
                            _ => query.max_points(7),
                        };
                        if let Ok(result) = history.query(&query) {
                            for series in &result.series {
                                assert!(
                                    series.points.windows(2).all(|w| {
                                        w[0].timestamp_unix_ms < w[1].timestamp_unix_ms
                                    }),
                                    "steps out of time order for {query:?}: {series:?}"
                                );
                            }
                        }
                    }
                }
                let _ = history.latest(name, &[]);
            }
        };
        run(&history);
        // The first snapshot after a reload, with series of those names.
        let metrics = crate::MetricsCollector::builder()
            .lifetime_buckets(true)
            .build();
        for name in &names {
            match pick % 3 {
                0 => metrics.counter(name, &[]).inc(),
                1 => metrics.gauge(name, &[]).set(1.5),
                _ => metrics.histogram(name, &[]).record(0.25),
            }
        }
        let mut snapshot = metrics.snapshot();
        snapshot.timestamp_unix_ms = newest.saturating_add(60_000);
        let _ = history.ingest(&snapshot);
        run(&history);
        let _ = (stats, history.memory_bytes());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads `data[2..]` as everything a client sends on one HTTP connection,
/// through the endpoint's request reader and parser (pipelined requests,
/// limits, `Content-Length` rules), and checks that reading it in pieces
/// (of `data[0] % 64 + 1` bytes) gives the same requests and answers as
/// reading it as it comes. `data[1]` picks the head size limit: 256 B or
/// 8 KiB.
///
/// ```
/// let data = b"\x03\x00GET / HTTP/1.1\r\n\r\n"; // 4-byte pieces, 256-byte limit
/// // As `tests/fuzz_corpus.rs` replays an input: a panic is a finding.
/// let outcome = std::panic::catch_unwind(|| vitals::fuzzing::http_request_head(data));
/// assert!(outcome.is_ok());
/// ```
pub fn http_request_head(data: &[u8]) {
    let [piece, limit, stream @ ..] = data else {
        return;
    };
    let max_request_bytes = if limit % 2 == 0 { 256 } else { 8 * 1024 };
    crate::export::http::request::check_requests(
        stream,
        usize::from(piece % 64) + 1,
        max_request_bytes,
    );
}

/// The level file's bytes: `content`, or with bit 2 of `pick` set as many
/// copies of it as pass the 64 KiB above which reads bisect.
fn file_bytes(pick: u8, content: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const BISECTED: usize = 64 * 1024;
    if pick & 4 == 0 || content.is_empty() {
        return content.into();
    }
    content.repeat(BISECTED / content.len() + 2).into()
}

/// The distinct `"name"` values of the JSON lines in `content` (at most 2).
fn mentioned_names(content: &[u8]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in content.split(|b| *b == b'\n') {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(line) else {
            continue;
        };
        if let Some(serde_json::Value::String(name)) = map.get("name") {
            if !names.contains(name) && names.len() < 2 {
                names.push(name.clone());
            }
        }
    }
    names
}

/// A directory of its own for one input.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "vitals-fuzz-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
