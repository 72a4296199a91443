//! A model test of the history: random snapshots of four counter series
//! (gaps from a millisecond to two hours, snapshots exactly on interval
//! boundaries, resets, a series that reports rarely), with persistence,
//! short resident spans, a small memory limit and reloads with and without
//! a process restart. After many steps every level is queried and compared
//! with the raw increases grouped by interval, worked out independently.
//! A snapshot more than the clock-jump bound after the newest accepted one
//! is held until the next (see `History::ingest`): the model holds it too.

#![cfg(feature = "history")]

mod common;
use common::TempDir;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vitals::history::{Aggregation, History, Level, Query};
use vitals::snapshot::CounterSample;
use vitals::{Labels, MetricsCollector, Snapshot};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERIES: usize = 4;

/// Per series, the model's raw points: (time, increase).
type Raw = Vec<Vec<(u64, u64)>>;

fn template() -> Snapshot {
    let mut s = MetricsCollector::new().snapshot();
    s.counters.clear();
    s.gauges.clear();
    s.histograms.clear();
    s
}

#[derive(Clone, Copy, Debug)]
struct Config {
    persist: bool,
    resident: [Option<u64>; 4],
    limit: Option<usize>,
    reloads: bool,
    restart_reloads: bool,
}

fn build(cfg: &Config, dir: &std::path::Path) -> History {
    let mut b = History::builder();
    if cfg.persist {
        b = b.persist(dir);
    }
    for (i, l) in Level::ALL.into_iter().enumerate() {
        if let Some(r) = cfg.resident[i] {
            b = b.resident(l, Duration::from_millis(r));
        }
    }
    if let Some(limit) = cfg.limit {
        b = b.memory_limit(limit);
    }
    b.build().unwrap()
}

/// Returns a description of the first mismatch.
fn run(seed: u64, cfg: Config) -> Result<(), String> {
    let dir = TempDir::new("review");
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut history = build(&cfg, dir.path());
    let names: Arc<str> = "c_total".into();
    let labels: Vec<Labels> = (0..SERIES)
        .map(|i| Labels::from_pairs(&[("s", &i.to_string())]))
        .collect();
    let t0 = 1_700_000_000_000u64 / 3_600_000 * 3_600_000;
    let mut t = t0 + 1 + r.below(3) * 10_000;
    let mut uptime = 100.0f64;
    let mut totals = [0u64; SERIES];
    // model: the store's previous total per series (None: baseline next)
    let mut prev: [Option<u64>; SERIES] = [None; SERIES];
    let mut first_snapshot = true;
    let mut raw: Vec<Vec<(u64, u64)>> = vec![Vec::new(); SERIES];
    let mut log = Vec::new();
    let mut force_all = false;
    let mut restart_pending = false;
    let mut steps = 0;
    let mut stored_any = false;
    // The store's clock-jump rule: its newest accepted snapshot, its floor
    // after a reload (the newest point on disk), the step between its two
    // newest accepted snapshots, and the model as it was before a held
    // snapshot (what a reload goes back to if it comes first).
    let mut store_last: Option<u64> = None;
    let mut store_floor: Option<u64> = None;
    let mut store_step: Option<u64> = None;
    let mut held: Option<(u64, Raw, bool)> = None;
    let accept = |t: u64, last: &mut Option<u64>, step: &mut Option<u64>| {
        *step = last.map(|l| t - l);
        *last = Some(t);
    };
    while t < t0 + 20 * 3_600_000 && steps < 400 {
        steps += 1;
        let dt = match r.below(10) {
            0 => 60_000 - t % 60_000, // exactly onto the next minute boundary
            1 => 300_000 - t % 300_000,
            2 => 3_600_000 - t % 3_600_000,
            3 => 1,
            4 => 1 + r.below(2 * 3_600_000),
            5 => 60_000 - t % 60_000 + 1,
            _ => 10_000,
        };
        t += dt;
        uptime += dt as f64 / 1000.0;
        let newest = store_last.or(store_floor);
        let bound = HOUR.max(store_step.unwrap_or(0) * 4);
        if let Some((held_t, ..)) = held.take() {
            // The next snapshot is newer: the held one was a jump, and
            // this one goes with it.
            accept(held_t, &mut store_last, &mut store_step);
            accept(t, &mut store_last, &mut store_step);
            log.push(format!("held t+{} accepted", held_t - t0));
        } else if newest.is_some_and(|n| t > n + bound) {
            held = Some((t, raw.clone(), stored_any));
        } else {
            accept(t, &mut store_last, &mut store_step);
        }
        let mut snap = template();
        snap.timestamp_unix_ms = t;
        snap.uptime_seconds = uptime;
        for i in 0..SERIES {
            // series 3 reports rarely
            let reports = force_all
                || if i == 3 {
                    r.below(10) == 0
                } else {
                    r.below(10) < 8
                };
            if !reports {
                continue;
            }
            if r.below(30) == 0 && totals[i] > 0 {
                totals[i] = r.below(totals[i]); // a counter reset (value went down)
            } else {
                totals[i] += r.below(100);
            }
            let mut sample = CounterSample::new(&names, &[], totals[i]);
            sample.labels = labels[i].clone();
            snap.counters.push(sample);
            // model
            let inc = match prev[i] {
                None if first_snapshot => None,
                None if restart_pending && !stored_any => None,
                None if restart_pending => Some(totals[i]),
                None if force_all => None, // reload without restart: baseline
                None => Some(totals[i]),   // a new series
                Some(p) if totals[i] < p || restart_pending => Some(totals[i]),
                Some(p) => Some(totals[i] - p),
            };
            prev[i] = Some(totals[i]);
            if let Some(inc) = inc {
                stored_any = true;
                raw[i].push((t, inc));
            }
        }
        force_all = false;
        restart_pending = false;
        first_snapshot = false;
        history.ingest(&snap).map_err(|e| e.to_string())?;
        log.push(format!("t+{} ({} series)", t - t0, snap.counters.len()));
        // check (a held snapshot is not in the store yet)
        if r.below(5) == 0 || t >= t0 + 20 * 3_600_000 || steps == 400 {
            let expected = held.as_ref().map_or(&raw, |(_, before, _)| before);
            check(&history, expected, &labels, t, &log)?;
        }
        if cfg.reloads && cfg.persist && steps > 20 && r.below(40) == 0 {
            drop(history);
            history = build(&cfg, dir.path());
            // A held snapshot is lost with the store that held it.
            // (Its readings are forgotten below with the others.)
            if let Some((_, before, any)) = held.take() {
                (raw, stored_any) = (before, any);
                log.push("held snapshot lost".into());
            }
            store_last = None;
            store_step = None;
            store_floor = raw.iter().flatten().map(|(t, _)| *t).max();
            // every series reports in the next snapshot, which is a baseline
            // (same process) or counts from zero (restarted)
            force_all = true;
            if cfg.restart_reloads {
                restart_pending = true;
                totals = [0; SERIES];
                uptime = 1.0;
                t += 5_000;
                log.push("restart+reload".into());
            } else {
                log.push("reload".into());
                // store forgets the previous reading of every series
            }
            // reloaded or not, the store's previous readings are gone
            prev = [None; SERIES];
            if !cfg.restart_reloads {
                // model: the next snapshot is a baseline for all (force_all)
            }
        }
    }
    let expected = held.as_ref().map_or(&raw, |(_, before, _)| before);
    check(&history, expected, &labels, t, &log)?;
    Ok(())
}

fn check(
    history: &History,
    raw: &[Vec<(u64, u64)>],
    labels: &[Labels],
    now: u64,
    log: &[String],
) -> Result<(), String> {
    for level in Level::ALL {
        let q = Query::new("c_total", Aggregation::Sum)
            .level(level)
            .range(0, u64::MAX - 1);
        let res = history.query(&q).map_err(|e| e.to_string())?;
        for (i, l) in labels.iter().enumerate() {
            let mut want: BTreeMap<u64, u64> = BTreeMap::new();
            for &(t, v) in &raw[i] {
                let key = match level.interval() {
                    None => t,
                    Some(d) => {
                        let iv = d.as_millis() as u64;
                        (t - 1) / iv * iv
                    }
                };
                *want.entry(key).or_default() += v;
            }
            // raw retention: 24h default; nothing expires in a 20h run
            let got: BTreeMap<u64, u64> = res
                .series
                .iter()
                .find(|s| &s.labels == l)
                .map(|s| {
                    let mut m = BTreeMap::new();
                    for p in &s.points {
                        if m.insert(p.timestamp_unix_ms, p.value as u64).is_some() {
                            m.insert(p.timestamp_unix_ms, u64::MAX);
                        }
                    }
                    m
                })
                .unwrap_or_default();
            if got != want {
                let diff: Vec<String> = want
                    .keys()
                    .chain(got.keys())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .filter(|k| want.get(k) != got.get(k))
                    .take(5)
                    .map(|k| format!("t={} want {:?} got {:?}", k, want.get(k), got.get(k)))
                    .collect();
                return Err(format!(
                    "{level:?} series {i} at now={now}: {diff:?}\nlast log: {:?}",
                    &log[log.len().saturating_sub(6)..]
                ));
            }
        }
    }
    Ok(())
}

fn sweep(cfg: Config, seeds: std::ops::Range<u64>) {
    let mut fails = Vec::new();
    for seed in seeds {
        if let Err(e) = run(seed, cfg) {
            fails.push(format!("seed {seed}: {e}"));
        }
    }
    if !fails.is_empty() {
        panic!(
            "{} failures; first:\n{}",
            fails.len(),
            fails[..fails.len().min(3)].join("\n")
        );
    }
}

fn config(
    persist: bool,
    resident: [Option<u64>; 4],
    limit: Option<usize>,
    reloads: bool,
    restart_reloads: bool,
) -> Config {
    Config {
        persist,
        resident,
        limit,
        reloads,
        restart_reloads,
    }
}

const MIN: u64 = 60_000;
const HOUR: u64 = 3_600_000;

#[test]
fn in_memory() {
    sweep(config(false, [None; 4], None, false, false), 0..40);
}

#[test]
fn persisted_with_short_resident_spans() {
    let resident = [
        Some(10 * MIN),
        Some(30 * MIN),
        Some(3 * HOUR),
        Some(6 * HOUR),
    ];
    sweep(config(true, resident, None, false, false), 0..20);
}

#[test]
fn persisted_under_a_small_memory_limit() {
    sweep(config(true, [None; 4], Some(12_000), false, false), 0..20);
}

#[test]
fn reloaded_after_a_restart() {
    sweep(config(true, [None; 4], None, true, true), 0..20);
}

#[test]
fn reloaded_in_the_same_process() {
    sweep(config(true, [None; 4], None, true, false), 0..20);
}

#[test]
fn reloaded_with_short_resident_spans() {
    let resident = [Some(10 * MIN), Some(HOUR), Some(30 * MIN), None];
    sweep(config(true, resident, None, true, true), 0..20);
    sweep(config(true, resident, None, true, false), 0..20);
}

#[test]
fn reloaded_under_a_small_memory_limit() {
    sweep(config(true, [None; 4], Some(12_000), true, true), 0..20);
    sweep(config(true, [None; 4], Some(12_000), true, false), 0..20);
}

fn snap_at(t: u64, uptime: f64, values: &[(usize, u64)]) -> Snapshot {
    let mut s = template();
    s.timestamp_unix_ms = t;
    s.uptime_seconds = uptime;
    for &(i, v) in values {
        s.counters
            .push(CounterSample::new("c_total", &[("s", &i.to_string())], v));
    }
    s
}

fn points(h: &History, level: Level) -> Vec<(u64, f64)> {
    let q = Query::new("c_total", Aggregation::Sum)
        .level(level)
        .range(0, u64::MAX - 1);
    h.query(&q)
        .unwrap()
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| (p.timestamp_unix_ms, p.value)))
        .collect()
}

/// Sums per level (raw, 1m, 5m, 1h) of series `i`.
fn sums(h: &History, i: usize) -> Vec<f64> {
    let labels = Labels::from_pairs(&[("s", &i.to_string())]);
    Level::ALL
        .iter()
        .map(|&level| {
            let q = Query::new("c_total", Aggregation::Sum)
                .level(level)
                .range(0, u64::MAX - 1);
            h.query(&q)
                .unwrap()
                .series
                .iter()
                .filter(|s| s.labels == labels)
                .flat_map(|s| s.points.iter().map(|p| p.value))
                .sum()
        })
        .collect()
}

const T0: u64 = 1_700_000_000_000 / HOUR * HOUR;

/// A minute closed before the stop, whose minute point is no longer
/// resident, is not opened again (and counted twice) after a reload.
#[test]
fn a_reload_does_not_reopen_a_closed_interval() {
    let dir = TempDir::new("model-dup");
    let build = || {
        History::builder()
            .persist(dir.path())
            .resident(Level::Minute, Duration::from_secs(600))
            .build()
            .unwrap()
    };
    let h = build();
    let t0 = T0 + 5_000;
    let mut up = 100.0;
    for k in 0..180u64 {
        let mut values = vec![(1, k)];
        if k < 18 {
            values.push((0, k));
        }
        h.ingest(&snap_at(t0 + k * 10_000, up, &values)).unwrap();
        up += 10.0;
    }
    drop(h);
    let h = build();
    assert_eq!(sums(&h, 0), [17.0; 4]);
    h.ingest(&snap_at(t0 + 1_800_000, up, &[(1, 180)])).unwrap();
    h.ingest(&snap_at(t0 + 2_410_000, up + 610.0, &[(1, 181)]))
        .unwrap();
    assert_eq!(sums(&h, 0), [17.0; 4]);
}

/// A series that stopped reporting before its hour closed: after a reload
/// at any time later, its closed hour is not opened again (and counted
/// twice), however far back the hour began. (Reloads used to read four
/// hours of every level: an hour that began before those four hours was
/// not seen as closed.)
#[test]
fn a_reload_does_not_reopen_an_hour_that_closed_long_before() {
    for stop in [HOUR + 55 * MIN, 4 * HOUR + 50 * MIN] {
        let dir = TempDir::new("model-hour");
        let build = || History::builder().persist(dir.path()).build().unwrap();
        let h = build();
        let mut k = 0;
        // Series 1 throughout, series 0 from 0:50 to 0:58 only.
        while k * 10_000 <= stop {
            let t = T0 + k * 10_000;
            let mut values = vec![(1, k)];
            if (300..349).contains(&k) {
                values.push((0, k - 300));
            }
            h.ingest(&snap_at(t, 100.0 + k as f64 * 10.0, &values))
                .unwrap();
            k += 1;
        }
        assert_eq!(sums(&h, 0), [48.0; 4], "before the reload");
        drop(h);
        let h = build();
        assert_eq!(sums(&h, 0), [48.0; 4], "stopped at {stop}");
    }
}

/// The open hour rebuilt after a reload holds all of its 5-minute
/// intervals, though only half an hour of them is resident.
#[test]
fn a_reload_rebuilds_open_intervals_from_the_files() {
    let dir = TempDir::new("model-loss");
    let build = || {
        History::builder()
            .persist(dir.path())
            .resident(Level::FiveMinutes, Duration::from_secs(1800))
            .build()
            .unwrap()
    };
    let h = build();
    let t0 = T0 + 5_000;
    let mut up = 100.0;
    for k in 0..300u64 {
        h.ingest(&snap_at(t0 + k * 10_000, up, &[(0, k)])).unwrap();
        up += 10.0;
    }
    drop(h);
    let h = build();
    h.ingest(&snap_at(t0 + 3_000_000, up, &[(0, 300)])).unwrap();
    h.ingest(&snap_at(t0 + 6_600_000, up + 3600.0, &[(0, 300)]))
        .unwrap();
    assert_eq!(sums(&h, 0), [299.0; 4]);
}

/// After a reload and a restart, a series the new process registers only
/// later counts from zero like the others.
#[test]
fn after_a_restart_a_lazily_registered_series_counts_from_zero() {
    let dir = TempDir::new("model-lazy");
    let build = || History::builder().persist(dir.path()).build().unwrap();
    let h = build();
    let t0 = T0 + 5_000;
    for k in 0..10u64 {
        let up = 100.0 + k as f64 * 10.0;
        h.ingest(&snap_at(t0 + k * 10_000, up, &[(0, k * 10), (1, k * 10)]))
            .unwrap();
    }
    drop(h);
    let h = build();
    let t1 = t0 + 600_000;
    h.ingest(&snap_at(t1, 1.0, &[(0, 3)])).unwrap();
    h.ingest(&snap_at(t1 + 10_000, 11.0, &[(0, 4), (1, 7), (2, 9)]))
        .unwrap();
    assert_eq!(
        [sums(&h, 0)[0], sums(&h, 1)[0], sums(&h, 2)[0]],
        [94.0, 97.0, 9.0]
    );
}

/// A first reading exactly on a minute boundary belongs to the minute that
/// ends there, not the next one.
#[test]
fn a_first_point_on_a_boundary_stays_in_its_own_interval() {
    let h = History::new();
    let mut s = template();
    s.timestamp_unix_ms = T0;
    s.uptime_seconds = 1.0;
    s.gauges
        .push(vitals::snapshot::GaugeSample::new("g", &[], 1.0));
    h.ingest(&s).unwrap();
    s.timestamp_unix_ms = T0 + 10_000;
    s.gauges[0].value = 5.0;
    h.ingest(&s).unwrap();
    let q = Query::new("g", Aggregation::Count).level(Level::Minute);
    let got: Vec<(u64, f64)> = h.query(&q).unwrap().series[0]
        .points
        .iter()
        .map(|p| (p.timestamp_unix_ms, p.value))
        .collect();
    assert_eq!(got, [(T0 - MIN, 1.0), (T0, 1.0)]);
}

/// The same after a reload: the roll-ups keep their intervals.
#[test]
fn a_reload_keeps_a_boundary_point_in_its_interval() {
    let dir = TempDir::new("model-boundary");
    let h = History::builder().persist(dir.path()).build().unwrap();
    h.ingest(&snap_at(T0 + HOUR, 100.0, &[(0, 5)])).unwrap();
    h.ingest(&snap_at(T0 + 2 * HOUR, 3700.0, &[(0, 27)]))
        .unwrap();
    let before: Vec<_> = Level::ALL.iter().map(|l| points(&h, *l)).collect();
    drop(h);
    let h = History::builder().persist(dir.path()).build().unwrap();
    let after: Vec<_> = Level::ALL.iter().map(|l| points(&h, *l)).collect();
    assert_eq!(before, after);
}

/// Between a reload and the next snapshot, a query reaching past the
/// resident span reads the files.
#[test]
fn a_query_right_after_a_reload_reads_the_files() {
    let dir = TempDir::new("model-query");
    let build = || {
        History::builder()
            .persist(dir.path())
            .resident(Level::Minute, Duration::from_secs(600))
            .build()
            .unwrap()
    };
    let h = build();
    let t0 = T0 + 5_000;
    for k in 0..180u64 {
        h.ingest(&snap_at(
            t0 + k * 10_000,
            100.0 + k as f64 * 10.0,
            &[(0, k)],
        ))
        .unwrap();
    }
    let end = t0 + 1_800_000;
    let total = |h: &History, end: u64| -> f64 {
        let q = Query::new("c_total", Aggregation::Sum)
            .level(Level::Minute)
            .range(0, end);
        h.query(&q).unwrap().series[0]
            .points
            .iter()
            .map(|p| p.value)
            .sum()
    };
    assert_eq!((total(&h, u64::MAX - 1), total(&h, end)), (179.0, 179.0));
    drop(h);
    let h = build();
    assert_eq!((total(&h, u64::MAX - 1), total(&h, end)), (179.0, 179.0));
}
