//! History persistence and replay: level files with on-disk retention, a
//! resident span with queries reaching back to disk, reopening, replay of
//! an exporter's JSON-Lines files equal to live ingestion, torn lines.

#![cfg(feature = "history")]

mod common;
use common::TempDir;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use vitals::export::{JsonLinesExporter, JsonLinesReader};
use vitals::history::{Aggregation, History, Level, Query, QueryResult};
use vitals::{ManualClock, MetricsCollector, Snapshot};

const HOUR: u64 = 3_600_000;

/// `ticks` snapshots 10 s apart of a counter, a gauge and a histogram with
/// two label sets, from a collector on a manual clock.
fn snapshots(ticks: u64) -> Vec<Snapshot> {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .lifetime_buckets(true)
        .build();
    let mut out = Vec::new();
    for i in 0..ticks {
        for route in ["/a", "/b"] {
            let k = if route == "/a" { 1 } else { 3 };
            metrics
                .counter("requests_total", &[("route", route)])
                .increment(k * (i % 7 + 1));
            let h = metrics.histogram("latency_seconds", &[("route", route)]);
            for j in 0..10 {
                h.record(0.001 * (1 + (i * 13 + j * 7) % 97) as f64 * k as f64);
            }
        }
        metrics.gauge("queue_depth", &[]).set((i % 50) as f64);
        clock.advance(Duration::from_secs(10));
        out.push(metrics.snapshot());
    }
    out
}

fn run_queries(history: &History, t0: u64) -> Vec<QueryResult> {
    let mut out = Vec::new();
    for level in Level::ALL {
        for (name, agg) in [
            ("requests_total", Aggregation::Sum),
            ("requests_total", Aggregation::Rate),
            ("queue_depth", Aggregation::Avg),
            ("queue_depth", Aggregation::Max),
            ("latency_seconds", Aggregation::P95),
            ("latency_seconds", Aggregation::Count),
        ] {
            out.push(
                history
                    .query(&Query::new(name, agg).level(level).range(t0, u64::MAX - 1))
                    .unwrap(),
            );
        }
    }
    out
}

/// Compares results one series at a time, with a short message.
fn same(a: &[QueryResult], b: &[QueryResult]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(
            x.series.len(),
            y.series.len(),
            "{:?} {:?}",
            x.level,
            x.aggregation
        );
        for (s, t) in x.series.iter().zip(&y.series) {
            let first = |s: &vitals::history::SeriesResult| s.points.first().copied();
            assert!(
                s == t,
                "{:?} {:?} {}: {} vs {} points, first {:?} vs {:?}",
                x.level,
                x.aggregation,
                s.labels,
                s.points.len(),
                t.points.len(),
                first(s),
                first(t)
            );
        }
        assert_eq!(x, y);
    }
}

#[test]
fn replay_of_exported_files_equals_live_ingestion_and_skips_a_torn_line() {
    let dir = TempDir::new("replay");
    let path = dir.0.join("metrics.jsonl");
    let snaps = snapshots(1000);
    let live = History::new();
    {
        let mut file = std::fs::File::create(&path).unwrap();
        let mut line = Vec::new();
        for s in &snaps {
            live.ingest(s).unwrap();
            line.clear();
            JsonLinesExporter::encode_line(s, &mut line).unwrap();
            file.write_all(&line).unwrap();
        }
        // A crash in the middle of a write.
        file.write_all(br#"{"schema_version":2,"timestamp_unix_ms":17"#)
            .unwrap();
    }
    let replayed = History::new();
    let report = replayed.replay_files(&path).unwrap();
    assert_eq!(report.snapshots, 1000);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].line, 1001);
    let t0 = snaps[0].timestamp_unix_ms;
    let (a, b) = (run_queries(&live, t0), run_queries(&replayed, t0));
    same(&a, &b);
    // Not trivially equal: the queries found data.
    assert!(a
        .iter()
        .all(|r| !r.series.is_empty() && !r.series[0].points.is_empty()));
    assert_eq!(live.stats().points, replayed.stats().points);
}

#[test]
fn version_1_lines_without_bucket_state_replay_with_counts_but_no_quantiles() {
    let snaps = snapshots(20);
    let old: Vec<Result<Snapshot, vitals::Error>> = snaps
        .iter()
        .map(|s| {
            let mut json = serde_json::to_value(s).unwrap();
            json["schema_version"] = 1.into();
            for h in json["histograms"].as_array_mut().unwrap() {
                h["summary"]
                    .as_object_mut()
                    .unwrap()
                    .remove("lifetime_buckets");
            }
            Ok(serde_json::from_value(json).unwrap())
        })
        .collect();
    let history = History::new();
    assert_eq!(history.replay(old).unwrap(), 20);
    let q = |agg| {
        Query::new("latency_seconds", agg)
            .label("route", "/a")
            .level(Level::Raw)
    };
    let counts = history.query(&q(Aggregation::Count)).unwrap();
    assert_eq!(counts.series[0].points.len(), 19);
    assert!(counts.series[0].points.iter().all(|p| p.value == 10.0));
    let p95 = history.query(&q(Aggregation::P95)).unwrap();
    assert!(p95.series[0].points.is_empty());
}

#[test]
fn replay_reads_a_rotated_set_oldest_first() {
    let dir = TempDir::new("rotated");
    let clock = Arc::new(ManualClock::new());
    let path = dir.0.join("m.jsonl");
    let mut exporter = JsonLinesExporter::builder(&path)
        .rotate_bytes(4096)
        .clock(clock.clone())
        .build()
        .unwrap();
    let snaps = snapshots(60);
    let live = History::new();
    for s in &snaps {
        use vitals::export::Exporter;
        exporter.export(s).unwrap();
        live.ingest(s).unwrap();
        clock.advance(Duration::from_secs(10));
    }
    drop(exporter);
    assert!(
        std::fs::read_dir(&dir.0).unwrap().count() > 2,
        "the set rotated"
    );
    let replayed = History::new();
    let report = replayed.replay_files(&path).unwrap();
    assert_eq!((report.snapshots, report.skipped.len()), (60, 0));
    let t0 = snaps[0].timestamp_unix_ms;
    same(&run_queries(&live, t0), &run_queries(&replayed, t0));
    // The reader is an iterator: replay() takes it directly too.
    let again = History::new();
    assert_eq!(
        again
            .replay(JsonLinesReader::open_rotated(&path).unwrap())
            .unwrap(),
        60
    );
}

#[test]
fn persisted_levels_keep_retention_on_disk_and_answer_beyond_the_resident_span() {
    let dir = TempDir::new("persist");
    let snaps = snapshots(6 * 360); // six hours
    let persisted = History::builder()
        .retention(Level::Raw, Duration::from_secs(3 * 3600))
        .resident(Level::Raw, Duration::from_secs(1800))
        .resident(Level::Minute, Duration::from_secs(3600))
        .persist(&dir.0)
        .build()
        .unwrap();
    let reference = History::builder()
        .retention(Level::Raw, Duration::from_secs(3 * 3600))
        .build()
        .unwrap();
    for s in &snaps {
        persisted.ingest(s).unwrap();
        reference.ingest(s).unwrap();
    }
    // Memory holds the resident span only (five series) ...
    let (p, r) = (persisted.stats(), reference.stats());
    assert!(
        p.points[0] <= 5 * 181 && r.points[0] >= 5 * 1080,
        "{:?} {:?}",
        p.points,
        r.points
    );
    assert!(
        p.points[1] <= 5 * 62 && r.points[1] >= 5 * 359,
        "{:?} {:?}",
        p.points,
        r.points
    );
    assert!(
        persisted.memory_bytes() < reference.memory_bytes() / 2,
        "{} {}",
        persisted.memory_bytes(),
        reference.memory_bytes()
    );
    // ... and queries read the rest from disk: same answers.
    let t0 = snaps[0].timestamp_unix_ms;
    same(&run_queries(&persisted, t0), &run_queries(&reference, t0));
    // Raw segment files (one per hour) older than the retention are gone.
    let now = persisted.newest_unix_ms().unwrap();
    let raw_files: Vec<u64> = std::fs::read_dir(dir.0.join("raw"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .trim_end_matches(".jsonl")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(!raw_files.is_empty());
    assert!(
        raw_files.iter().all(|start| start + HOUR > now - 3 * HOUR),
        "{raw_files:?} now {now}"
    );
    assert!(raw_files.len() <= 4, "{raw_files:?}");
}

#[test]
fn a_reopened_history_answers_from_its_files_and_skips_a_torn_line() {
    let dir = TempDir::new("reopen");
    let snaps = snapshots(2 * 360);
    let t0 = snaps[0].timestamp_unix_ms;
    let closed_before;
    {
        let history = History::builder().persist(&dir.0).build().unwrap();
        for s in &snaps {
            history.ingest(s).unwrap();
        }
        let q = Query::new("requests_total", Aggregation::Sum)
            .level(Level::Minute)
            .range(t0, t0 + HOUR);
        closed_before = history.query(&q).unwrap();
    }
    // A torn line at the end of the minute level's file.
    let minute_dir = dir.0.join("1m");
    let file = std::fs::read_dir(&minute_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(br#"{"name":"requests_total","labels":{"rou"#)
        .unwrap();
    let reopened = History::builder().persist(&dir.0).build().unwrap();
    assert_eq!(reopened.stats().skipped_lines, 1);
    let q = Query::new("requests_total", Aggregation::Sum)
        .level(Level::Minute)
        .range(t0, t0 + HOUR);
    assert_eq!(reopened.query(&q).unwrap(), closed_before);
    // Older snapshots than what was reloaded are refused; newer ones go on
    // from a fresh baseline.
    reopened.ingest(&snaps[10]).unwrap();
    assert_eq!(reopened.stats().out_of_order, 1);
}

/// Ingests into both; returns the most memory `limited` held right after
/// applying its limit, which it does on the first snapshot after a minute
/// ends.
fn feed(limited: &History, other: &History, snaps: &[Snapshot]) -> usize {
    let mut peak = 0;
    let mut previous = None::<u64>;
    for s in snaps {
        limited.ingest(s).unwrap();
        other.ingest(s).unwrap();
        let now = s.timestamp_unix_ms;
        if previous.is_some_and(|p| (p - 1) / 60_000 != (now - 1) / 60_000) {
            peak = peak.max(limited.memory_bytes());
        }
        previous = Some(now);
    }
    peak
}

#[test]
fn a_memory_limit_shrinks_what_stays_in_memory_and_queries_read_the_rest_from_disk() {
    let dir = TempDir::new("limit");
    let snaps = snapshots(6 * 360); // six hours, five series
    let limit = 96 << 10;
    let limited = History::builder()
        .persist(&dir.0)
        .memory_limit(limit)
        .build()
        .unwrap();
    assert_eq!(limited.memory_limit(), Some(limit));
    let reference = History::new();
    assert_eq!(reference.memory_limit(), None);
    let peak_after_sweep = feed(&limited, &reference, &snaps);
    let (l, r) = (limited.stats(), reference.stats());
    assert!(l.shrinks > 0, "{l:?}");
    assert!(
        peak_after_sweep <= limit,
        "{peak_after_sweep} > {limit}: {l:?}"
    );
    assert!(r.memory_bytes > limit, "the reference needs more: {r:?}");
    assert!(l.resident_ms[0] < r.resident_ms[0], "{l:?}");
    assert!(l.points[0] < r.points[0] && l.points[1] < r.points[1]);
    // Same answers: what left memory is read from the level files.
    let t0 = snaps[0].timestamp_unix_ms;
    same(&run_queries(&limited, t0), &run_queries(&reference, t0));
}

#[test]
fn without_persistence_there_is_no_default_limit_and_an_explicit_one_drops_old_points() {
    let snaps = snapshots(3 * 360);
    let limit = 64 << 10;
    let limited = History::builder().memory_limit(limit).build().unwrap();
    let unlimited = History::new();
    let peak = feed(&limited, &unlimited, &snaps);
    assert!(unlimited.memory_bytes() > limit);
    assert!(peak <= limit, "{peak}");
    // What is resident is answered alike; older raw points are gone.
    let newest = limited.newest_unix_ms().unwrap();
    let resident = limited.stats().resident_ms[0];
    assert!(resident >= 60_000, "{resident}");
    let q = Query::new("requests_total", Aggregation::Sum)
        .level(Level::Raw)
        .range(newest - resident + 60_000, newest + 1);
    assert_eq!(limited.query(&q).unwrap(), unlimited.query(&q).unwrap());
    let all = Query::new("requests_total", Aggregation::Sum).level(Level::Raw);
    let count = |h: &History| h.query(&all).unwrap().series[0].points.len();
    assert!(count(&limited) < count(&unlimited));
}

#[test]
fn resident_spans_grow_back_once_memory_is_free_again() {
    let dir = TempDir::new("grow");
    let mut snaps = snapshots(12 * 360);
    let history = History::builder()
        .persist(&dir.0)
        .memory_limit(96 << 10)
        .build()
        .unwrap();
    // Six hours with the histograms: the limit shrinks the spans.
    for s in &snaps[..6 * 360] {
        history.ingest(s).unwrap();
    }
    let squeezed = history.stats();
    assert!(squeezed.shrinks > 0);
    // Then the histograms stop: as their points leave memory, the spans
    // grow back.
    for s in &mut snaps[6 * 360..] {
        s.histograms.clear();
        history.ingest(s).unwrap();
    }
    let after = history.stats();
    assert!(
        after.resident_ms[0] > squeezed.resident_ms[0] * 2,
        "{squeezed:?} then {after:?}"
    );
    assert!(after.memory_bytes <= 96 << 10);
}

/// The open intervals live in memory only; a reopened history rebuilds
/// them from the finer levels' files, so the interval in progress at the
/// stop is not lost from the coarse levels.
#[test]
fn a_reopened_history_rebuilds_its_open_intervals() {
    let dir = TempDir::new("reopen-open");
    // 100 minutes and 10 seconds: every level has an interval in progress.
    let snaps = snapshots(601);
    let reference = History::new();
    {
        let history = History::builder().persist(&dir.0).build().unwrap();
        for s in &snaps {
            history.ingest(s).unwrap();
            reference.ingest(s).unwrap();
        }
    }
    let reopened = History::builder().persist(&dir.0).build().unwrap();
    let t0 = snaps[0].timestamp_unix_ms;
    same(&run_queries(&reopened, t0), &run_queries(&reference, t0));
    // Both go on alike (the reopened one from a fresh baseline: the first
    // snapshot after the stop adds nothing to either but the reference).
    let more = snapshots(700);
    for s in &more[601..] {
        reopened.ingest(s).unwrap();
        reference.ingest(s).unwrap();
    }
    let hour = Query::new("latency_seconds", Aggregation::Count)
        .label("route", "/a")
        .level(Level::Hour);
    let (a, b) = (
        reopened.query(&hour).unwrap().series[0].points.clone(),
        reference.query(&hour).unwrap().series[0].points.clone(),
    );
    assert_eq!(a.len(), b.len());
    // Only the first snapshot after the stop is missing (a baseline).
    let total = |p: &[vitals::history::QueryPoint]| p.iter().map(|p| p.value).sum::<f64>();
    assert_eq!(total(&b) - total(&a), 10.0, "one snapshot of 10 values");
}

/// After a reload, a snapshot from a process that started after the
/// newest point on disk counts its totals from zero (nothing is lost to a
/// baseline); one from a process that was running all along is a baseline.
#[test]
fn the_first_snapshot_after_a_reload_counts_from_zero_when_the_process_restarted() {
    let snaps = snapshots(60);
    let stop = snaps.last().unwrap().timestamp_unix_ms;
    for (started_after_stop, want) in [(true, Some(5.0)), (false, None)] {
        let dir = TempDir::new("restart");
        {
            let history = History::builder().persist(&dir.0).build().unwrap();
            for s in &snaps {
                history.ingest(s).unwrap();
            }
        }
        let reopened = History::builder().persist(&dir.0).build().unwrap();
        let clock = Arc::new(ManualClock::new());
        let metrics = MetricsCollector::builder().clock(clock.clone()).build();
        let counter = metrics.counter("requests_total", &[("route", "/a")]);
        counter.increment(5);
        // Ten seconds of uptime; the snapshot comes 40 s after the stop.
        clock.advance(Duration::from_secs(10));
        let mut snap = metrics.snapshot();
        snap.timestamp_unix_ms = stop + 40_000;
        if !started_after_stop {
            snap.uptime_seconds = 3600.0;
        }
        reopened.ingest(&snap).unwrap();
        let q = Query::new("requests_total", Aggregation::Sum)
            .label("route", "/a")
            .level(Level::Raw)
            .range(stop + 1, u64::MAX);
        let result = reopened.query(&q).unwrap();
        let got = result
            .series
            .first()
            .and_then(|s| s.points.first())
            .map(|p| p.value);
        assert_eq!(got, want, "started after the stop: {started_after_stop}");
    }
}

/// Reopening reads back only what the memory limit lets stay, newest
/// first; older points are answered from the files. (It used to read every
/// resident line of every level: a 7-day store of 130 series came back
/// holding 61 MiB under a 4 MiB limit, with a peak of 794 MiB.)
#[test]
fn a_reopened_history_stays_within_its_memory_limit_and_answers_the_rest_from_its_files() {
    let dir = TempDir::new("reopen-limit");
    let snaps = snapshots(6 * 360);
    let t0 = snaps[0].timestamp_unix_ms;
    let limit = 64 << 10;
    let reference = History::new();
    {
        // The default limit holds all six hours.
        let history = History::builder().persist(&dir.0).build().unwrap();
        for s in &snaps {
            history.ingest(s).unwrap();
            reference.ingest(s).unwrap();
        }
        assert!(history.memory_bytes() > 4 * limit, "{:?}", history.stats());
    }
    let reopened = History::builder()
        .persist(&dir.0)
        .memory_limit(limit)
        .build()
        .unwrap();
    let (r, all) = (reopened.stats(), reference.stats());
    assert!(r.memory_bytes <= limit, "{r:?}");
    assert!(r.memory_bytes > limit / 2, "the limit is used: {r:?}");
    assert!(r.points[0] < all.points[0] / 4, "{r:?}");
    assert!(r
        .resident_ms
        .iter()
        .zip(all.resident_ms)
        .all(|(a, b)| *a < b));
    // Everything older than what is resident comes from the files.
    same(&run_queries(&reopened, t0), &run_queries(&reference, t0));
    // And the store goes on within its limit, as held at each minute's end
    // (the snapshots' wall times start wherever the test's clock did, so
    // the check waits for a minute to end instead of counting snapshots).
    let more = snapshots(6 * 360 + 66);
    let minute = |s: &Snapshot| s.timestamp_unix_ms / 60_000;
    let mut checked = false;
    for (i, s) in more.iter().enumerate().skip(6 * 360) {
        reopened.ingest(s).unwrap();
        reference.ingest(s).unwrap();
        if i > 6 * 360 + 54 && minute(s) != minute(&more[i - 1]) && !checked {
            assert!(reopened.memory_bytes() <= limit, "{:?}", reopened.stats());
            checked = true;
        }
    }
    assert!(checked);
    let q = Query::new("requests_total", Aggregation::Sum).level(Level::Minute);
    let total = |h: &History| -> f64 {
        let r = h.query(&q.clone().range(t0, u64::MAX - 1)).unwrap();
        r.series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.value)
            .sum()
    };
    // Only the first snapshot after the reopen is missing (a baseline).
    let first = &more[6 * 360];
    let (a, b) = (&snaps[6 * 360 - 1].counters, &first.counters);
    let baseline: u64 = b
        .iter()
        .zip(a)
        .map(|(b, a)| b.value.as_u64().unwrap() - a.value.as_u64().unwrap())
        .sum();
    assert_eq!(total(&reference) - total(&reopened), baseline as f64);
}

/// A line of the level files far in the future (a clock jump written by an
/// earlier version, or a damaged file) does not set the newest time of a
/// reopened store: it is skipped, counted and removed, and the store loads
/// and goes on as before. (A reopened store used to load nothing and take
/// no snapshot older than that line.)
#[test]
fn a_far_future_line_is_skipped_counted_and_removed_on_reopening() {
    let dir = TempDir::new("reopen-future");
    let snaps = snapshots(361);
    let t0 = snaps[0].timestamp_unix_ms;
    let before;
    let newest;
    {
        let history = History::builder().persist(&dir.0).build().unwrap();
        for s in &snaps[..360] {
            history.ingest(s).unwrap();
        }
        before = run_queries(&history, t0);
        newest = history.newest_unix_ms().unwrap();
    }
    let future = newest + 365 * 24 * HOUR;
    let line = format!(
        "{{\"name\":\"requests_total\",\"labels\":{{\"route\":\"/a\"}},\"t_ms\":{future},\
         \"covered_ms\":10000,\"agg\":{{\"kind\":\"counter\",\"increase\":7,\"resets\":0}}}}\n"
    );
    // A raw line in a segment of its own, as a jump used to write it, and
    // one at the end of the newest minute file.
    let raw_file = dir
        .0
        .join("raw")
        .join(format!("{}.jsonl", future / HOUR * HOUR));
    std::fs::write(&raw_file, &line).unwrap();
    let minute_file = std::fs::read_dir(dir.0.join("1m"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&minute_file)
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    let reopened = History::builder().persist(&dir.0).build().unwrap();
    assert_eq!(reopened.stats().future_lines, 2);
    same(&run_queries(&reopened, t0), &before);
    // The next snapshot is in order.
    reopened.ingest(&snaps[360]).unwrap();
    let stats = reopened.stats();
    assert_eq!(
        (stats.snapshots, stats.out_of_order, stats.jumps_dropped),
        (1, 0, 0)
    );
    assert_eq!(
        reopened.newest_unix_ms(),
        Some(snaps[360].timestamp_unix_ms)
    );
    let after = run_queries(&reopened, t0);
    drop(reopened);
    // The lines are gone from the files.
    assert!(!raw_file.exists());
    let minute_text = std::fs::read_to_string(&minute_file).unwrap();
    assert!(!minute_text.contains(&future.to_string()));
    let again = History::builder().persist(&dir.0).build().unwrap();
    assert_eq!(again.stats().future_lines, 0);
    same(&run_queries(&again, t0), &after);
}

/// Found by fuzzing (`fuzz/regressions/history_level_file/`): a level file
/// whose lines of one series are out of time order (edited by hand, or
/// written by another program) gave query steps out of time order, as the
/// points read from disk were reduced in file order.
#[test]
fn points_read_from_disk_out_of_order_give_steps_in_time_order() {
    let dir = TempDir::new("unordered");
    let raw = dir.0.join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    let line = |name: &str, t: u64, increase: u64| {
        format!(
            "{{\"name\":\"{name}\",\"labels\":{{}},\"t_ms\":{t},\"covered_ms\":10000,\
             \"agg\":{{\"kind\":\"counter\",\"increase\":{increase},\"resets\":0}}}}\n"
        )
    };
    let t0 = 1_700_002_800_000;
    let file = [
        line("a_total", t0 + 30_000, 3),
        line("a_total", t0 + 10_000, 1),
        line("a_total", t0 + 20_000, 2),
        line("a_total", t0 + 10_000, 4),
        // Newer, so that a_total is older than what stays in memory.
        line("b_total", t0 + 2 * HOUR, 1),
    ]
    .concat();
    std::fs::write(raw.join(format!("{t0}.jsonl")), file).unwrap();
    let history = History::builder()
        .resident(Level::Raw, Duration::from_secs(600))
        .persist(&dir.0)
        .build()
        .unwrap();
    let result = history
        .query(
            &Query::new("a_total", Aggregation::Sum)
                .level(Level::Raw)
                .range(t0, t0 + HOUR),
        )
        .unwrap();
    let points: Vec<(u64, f64)> = result.series[0]
        .points
        .iter()
        .map(|p| (p.timestamp_unix_ms - t0, p.value))
        .collect();
    // Two points at one time are one step.
    assert_eq!(points, [(10_000, 5.0), (20_000, 2.0), (30_000, 3.0)]);
}

/// Queries read the level files with the store unlocked, so ingestion goes
/// on meanwhile; points that leave memory during such a read are read
/// afterwards, so a query never misses them: the total over everything
/// never goes down from one query to the next while snapshots arrive.
#[test]
fn queries_racing_ingestion_never_lose_points_leaving_memory() {
    let dir = TempDir::new("query-race");
    let snaps = snapshots(3 * 360);
    let t0 = snaps[0].timestamp_unix_ms;
    let history = Arc::new(
        History::builder()
            .resident(Level::Raw, Duration::from_secs(600))
            .resident(Level::Minute, Duration::from_secs(1800))
            .persist(&dir.0)
            .build()
            .unwrap(),
    );
    let feeder = {
        let (history, snaps) = (Arc::clone(&history), snaps.clone());
        std::thread::spawn(move || {
            for s in &snaps {
                history.ingest(s).unwrap();
            }
        })
    };
    let q = Query::new("requests_total", Aggregation::Sum)
        .level(Level::Minute)
        .range(t0, u64::MAX - 1);
    let total = |h: &History| -> f64 {
        h.query(&q)
            .unwrap()
            .series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.value)
            .sum()
    };
    let (mut last, mut queries) = (0.0, 0);
    while !feeder.is_finished() {
        let now = total(&history);
        assert!(now >= last, "the total went down from {last} to {now}");
        (last, queries) = (now, queries + 1);
    }
    feeder.join().unwrap();
    let reference = History::new();
    for s in &snaps {
        reference.ingest(s).unwrap();
    }
    assert_eq!(total(&history), total(&reference));
    assert!(queries > 0);
}

/// Level files written before the exponential layout hold log-linear
/// buckets (64 linear sub-buckets per power of two, positions from 2⁻³⁰)
/// and no `scale`: a history opened over them reads them, each old bucket
/// moved to the exponential bucket of its midpoint, so quantiles stay
/// within the documented 1.4% of the exact values.
#[test]
fn level_files_of_the_log_linear_layout_still_read() {
    let dir = TempDir::new("legacy-buckets");
    let raw = dir.0.join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let t0 = now - now % HOUR - HOUR;
    let mut lines = String::new();
    let mut exact = Vec::new();
    for i in 0..30u64 {
        let values: Vec<f64> = (1..=100u64)
            .map(|j| 0.0001 * ((j * j * (i + 3)) % 9973 + 1) as f64)
            .collect();
        let mut old = std::collections::BTreeMap::<u64, u64>::new();
        for v in &values {
            let bits = v.to_bits();
            *old.entry(((bits >> 52) - (1023 - 30)) * 64 + ((bits >> 46) & 63))
                .or_default() += 1;
        }
        let line = serde_json::json!({
            "name": "latency_seconds",
            "labels": {},
            "t_ms": t0 + i * 10_000,
            "covered_ms": 10_000,
            "agg": {
                "kind": "histogram",
                "count": 100,
                "sum": values.iter().sum::<f64>(),
                "buckets": {"zeros": 0, "counts": old.into_iter().collect::<Vec<_>>()},
            },
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
        let mut sorted = values;
        sorted.sort_by(f64::total_cmp);
        exact.push(sorted);
    }
    std::fs::write(raw.join(format!("{t0}.jsonl")), lines).unwrap();
    let history = History::builder().persist(&dir.0).build().unwrap();
    assert_eq!(history.stats().skipped_lines, 0);
    for (agg, q) in [
        (Aggregation::P50, 0.5),
        (Aggregation::P95, 0.95),
        (Aggregation::P99, 0.99),
    ] {
        let result = history
            .query(
                &Query::new("latency_seconds", agg)
                    .level(Level::Raw)
                    .range(t0, t0 + HOUR),
            )
            .unwrap();
        let points = &result.series[0].points;
        assert_eq!(points.len(), 30);
        for (p, sorted) in points.iter().zip(&exact) {
            let want = sorted[(vitals::layout::nearest_rank(q, 100) - 1) as usize];
            assert!(
                (p.value - want).abs() / want <= 0.014,
                "p{q}: {} vs {want}",
                p.value
            );
        }
    }
}
