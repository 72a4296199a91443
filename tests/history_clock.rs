//! History and clock jumps (the rule on `History::ingest`): one snapshot far
//! ahead costs only itself, a jump the next snapshot continues is taken,
//! a clock stepped back moves the history to the new timeline after three
//! snapshots without losing counts, and snapshots of an earlier process
//! never move it back. Each in memory and persisted (then reopened).

#![cfg(feature = "history")]

mod common;
use common::TempDir;

use vitals::history::{Aggregation, History, HistoryStats, Level, Query};
use vitals::snapshot::{CounterSample, GaugeSample};
use vitals::{MetricsCollector, Snapshot};

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
/// An hour-aligned start in the past (the wall clock only matters to
/// reopening, which lets past times be).
const T0: u64 = 1_700_000_000_000 / HOUR * HOUR;

/// A snapshot at `t` ms of a process up `uptime` s: `requests_total` at
/// `total` and `temp` at `temp`.
fn snap(t: u64, uptime: f64, total: u64, temp: f64) -> Snapshot {
    let mut s = MetricsCollector::new().snapshot();
    s.timestamp_unix_ms = t;
    s.uptime_seconds = uptime;
    s.counters = vec![CounterSample::new("requests_total", &[], total)];
    s.gauges = vec![GaugeSample::new("temp", &[], temp)];
    s.histograms.clear();
    s
}

/// `n` snapshots 10 s apart from `t` (the first at `t`), the counter
/// growing by 5 a snapshot from `total`, uptime from `uptime`.
fn run(t: u64, uptime: f64, total: u64, n: u64) -> Vec<Snapshot> {
    (0..n)
        .map(|i| {
            let temp = (i % 17) as f64;
            snap(
                t + i * 10_000,
                uptime + i as f64 * 10.0,
                total + 5 * i,
                temp,
            )
        })
        .collect()
}

/// The store under test: in memory, or persisted in `dir`.
fn store(dir: Option<&TempDir>) -> History {
    match dir {
        Some(dir) => History::builder().persist(dir.path()).build().unwrap(),
        None => History::new(),
    }
}

/// (time, value) of every point of `name` at `level`.
fn points(history: &History, name: &str, agg: Aggregation, level: Level) -> Vec<(u64, f64)> {
    let q = Query::new(name, agg).level(level).range(0, u64::MAX - 1);
    history
        .query(&q)
        .unwrap()
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.timestamp_unix_ms, p.value)))
        .collect()
}

/// The counter's increase summed at each level.
fn sums(history: &History) -> Vec<f64> {
    Level::ALL
        .iter()
        .map(|l| {
            points(history, "requests_total", Aggregation::Sum, *l)
                .iter()
                .map(|(_, v)| v)
                .sum()
        })
        .collect()
}

/// What a reopened store answers, compared with the one before.
fn reopens_alike(dir: &TempDir, before: &History) {
    let reopened = store(Some(dir));
    for level in Level::ALL {
        for (name, agg) in [
            ("requests_total", Aggregation::Sum),
            ("temp", Aggregation::Max),
        ] {
            assert_eq!(
                points(&reopened, name, agg, level),
                points(before, name, agg, level),
                "{name} at {level:?} after reopening"
            );
        }
    }
}

fn counts(stats: &HistoryStats) -> (u64, u64, u64, u64) {
    (
        stats.snapshots,
        stats.out_of_order,
        stats.jumps_dropped,
        stats.clock_jumps,
    )
}

/// One snapshot a year ahead, then the clock goes on as before: only that
/// snapshot is lost (it used to stall the history: every later snapshot
/// was older than it, and its time expired everything held).
#[test]
fn one_snapshot_a_year_ahead_costs_only_itself() {
    for persisted in [false, true] {
        let dir = TempDir::new("clock-ahead");
        let history = store(persisted.then_some(&dir));
        let reference = History::new();
        let before = run(T0 + 10_000, 100.0, 1_000, 360);
        let after = run(T0 + 3_610_000, 3_700.0, 2_805, 360);
        for s in &before {
            history.ingest(s).unwrap();
            reference.ingest(s).unwrap();
        }
        let mut ahead = snap(T0 + 3_605_000, 3_695.0, 2_800, 99.0);
        ahead.timestamp_unix_ms += 365 * DAY;
        history.ingest(&ahead).unwrap();
        for s in &after {
            history.ingest(s).unwrap();
            reference.ingest(s).unwrap();
        }
        assert_eq!(counts(&history.stats()), (720, 0, 1, 0), "{persisted}");
        assert_eq!(history.newest_unix_ms(), reference.newest_unix_ms());
        // The counts of the lost snapshot are in the next point.
        assert_eq!(sums(&history), [(4_600 - 1_000) as f64; 4]);
        for level in Level::ALL {
            for (name, agg) in [
                ("requests_total", Aggregation::Sum),
                ("temp", Aggregation::Max),
            ] {
                assert_eq!(
                    points(&history, name, agg, level),
                    points(&reference, name, agg, level),
                    "{name} at {level:?}"
                );
            }
        }
        if persisted {
            reopens_alike(&dir, &history);
        }
    }
}

/// A jump that the next snapshot continues is the clock's (or a stop of
/// the program): both are taken, nothing is lost; the held snapshot shows
/// in no query until then.
#[test]
fn a_jump_ahead_that_the_next_snapshot_continues_is_taken() {
    for persisted in [false, true] {
        let dir = TempDir::new("clock-jump");
        let history = store(persisted.then_some(&dir));
        let before = run(T0 + 10_000, 100.0, 0, 60);
        let after = run(T0 + 600_000 + 3 * HOUR, 700.0, 300, 60);
        for s in &before {
            history.ingest(s).unwrap();
        }
        history.ingest(&after[0]).unwrap();
        let newest_before = before.last().map(|s| s.timestamp_unix_ms);
        assert_eq!(history.newest_unix_ms(), newest_before);
        assert_eq!(counts(&history.stats()), (60, 0, 0, 0));
        for s in &after[1..] {
            history.ingest(s).unwrap();
        }
        assert_eq!(counts(&history.stats()), (120, 0, 0, 1), "{persisted}");
        let newest_after = after.last().map(|s| s.timestamp_unix_ms);
        assert_eq!(history.newest_unix_ms(), newest_after);
        assert_eq!(sums(&history), [5.0 * 119.0; 4]);
        let raw = points(&history, "requests_total", Aggregation::Sum, Level::Raw);
        assert_eq!(raw.len(), 119);
        assert!(raw.iter().any(|(t, _)| *t == after[0].timestamp_unix_ms));
        if persisted {
            reopens_alike(&dir, &history);
        }
    }
}

/// The clock is stepped back half an hour while the process runs on: the
/// first two snapshots behind are dropped, the third moves the history to
/// the new timeline (it used to ignore every snapshot until the old time
/// came back). The points at its time or later leave memory and the files,
/// their counts carried into its point: every increase is kept.
#[test]
fn a_clock_stepped_back_moves_the_history_to_the_new_timeline() {
    for persisted in [false, true] {
        let dir = TempDir::new("clock-back");
        let history = store(persisted.then_some(&dir));
        // An hour from T0 + 10 s, then the clock goes back 30 min (the
        // process's uptime goes on): the new timeline starts at 0:30:10 and
        // the history moves to it at 0:30:30.
        let before = run(T0 + 10_000, 100.0, 0, 360);
        let after = run(T0 + 1_810_000, 3_700.0, 1_800, 360);
        for s in &before {
            history.ingest(s).unwrap();
        }
        history.ingest(&after[0]).unwrap();
        history.ingest(&after[1]).unwrap();
        assert_eq!(counts(&history.stats()), (360, 2, 0, 0));
        assert_eq!(history.newest_unix_ms(), Some(T0 + 3_600_000));
        for s in &after[2..] {
            history.ingest(s).unwrap();
        }
        assert_eq!(counts(&history.stats()), (718, 2, 0, 1), "{persisted}");
        let newest = after.last().map(|s| s.timestamp_unix_ms);
        assert_eq!(history.newest_unix_ms(), newest);
        // Every increase is somewhere, at every level.
        assert_eq!(sums(&history), [5.0 * 719.0; 4], "{persisted}");
        // Raw points: the old timeline up to the step, then the new one
        // from its third snapshot (which holds the disowned counts).
        let raw = points(&history, "requests_total", Aggregation::Sum, Level::Raw);
        let step = after[2].timestamp_unix_ms;
        let old: Vec<_> = raw.iter().filter(|(t, _)| *t < step).collect();
        assert_eq!(old.len(), 181, "0:00:20 .. 0:30:20");
        assert!(old.iter().all(|(_, v)| *v == 5.0));
        assert_eq!(raw.len(), 181 + 358);
        // 0:30:30 .. 1:00:00 disowned, and 3 increases since 1:00:00.
        assert_eq!(raw[181], (step, 5.0 * (178.0 + 3.0)));
        assert!(raw.windows(2).all(|w| w[0].0 < w[1].0));
        // Gauge readings at the disowned times are gone, not carried.
        let temps = points(&history, "temp", Aggregation::Max, Level::Raw);
        assert_eq!(temps.len(), 182 + 358);
        if persisted {
            reopens_alike(&dir, &history);
            // The store goes on after the reopen.
            let reopened = store(Some(&dir));
            let next = run(after[359].timestamp_unix_ms + 10_000, 7_400.0, 3_600, 2);
            for s in &next {
                reopened.ingest(s).unwrap();
            }
            assert_eq!(counts(&reopened.stats()), (2, 0, 0, 0));
            assert_eq!(sums(&reopened), [5.0 * 720.0; 4]);
        }
    }
}

/// Older snapshots of a process that started before the newest one (its
/// uptime is lower: a replay of older files, a stale feeder) are dropped,
/// however many: the history never moves back for them.
#[test]
fn snapshots_of_an_earlier_process_never_move_the_history_back() {
    let history = History::new();
    for s in run(T0 + 10_000, 5_000.0, 0, 60) {
        history.ingest(&s).unwrap();
    }
    let before = sums(&history);
    for s in run(T0 - HOUR, 10.0, 0, 60) {
        history.ingest(&s).unwrap();
    }
    assert_eq!(counts(&history.stats()), (60, 60, 0, 0));
    assert_eq!(history.newest_unix_ms(), Some(T0 + 600_000));
    assert_eq!(sums(&history), before);
}

/// A history fed every few hours is not jumping: after its first two
/// steps it takes every snapshot as it comes.
#[test]
fn a_history_fed_every_few_hours_holds_nothing_after_its_second_step() {
    let history = History::new();
    for i in 0..6u64 {
        let t = T0 + i * 3 * HOUR;
        history
            .ingest(&snap(t, 100.0 + (i * 3 * 3600) as f64, i * 10, 1.0))
            .unwrap();
        if i >= 2 {
            assert_eq!(history.newest_unix_ms(), Some(t), "snapshot {i}");
        }
    }
    // The second came 3 h after the first, with no step known yet: held,
    // then taken with the third.
    assert_eq!(counts(&history.stats()), (6, 0, 0, 1));
    assert_eq!(sums(&history)[0], 50.0);
}
