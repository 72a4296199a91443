//! Property tests of every setting: `MetricsCollector::builder()`,
//! `Window` and `configure_histogram`, bucket bounds, plug-in deadlines and
//! intervals, `Reporter::builder`, `JsonLinesExporter::builder` and
//! `History::builder`, each with 0, 1 and the type's maximum
//! (`Duration::MAX`, `usize::MAX`, `u64::MAX`, `u32::MAX`) among the
//! values: a setting is accepted exactly when the documentation says so,
//! and whatever is accepted works (no panic, outputs parse).
//!
//! Run in the debug profile, so integer overflow panics.

#[allow(dead_code)]
mod common;
#[path = "common/exposition.rs"]
mod exposition;
#[path = "common/gen.rs"]
mod gen;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use vitals::export::{
    render_openmetrics, render_prometheus, Exporter, FsyncPolicy, JsonLinesExporter,
    JsonLinesReader, Reporter,
};
#[cfg(feature = "history")]
use vitals::history::{Aggregation, History, Level, Query};
use vitals::plugin::PluginStatus;
use vitals::{Collector, Error, ManualClock, MetricsCollector, Samples, Snapshot, Window};

use exposition::{compare, expected, parse, Format};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Both text formats parse strictly and say what the snapshot says.
fn check_texts(snap: &Snapshot) -> Result<(), TestCaseError> {
    for (format, text) in [
        (Format::Prometheus, render_prometheus(snap)),
        (Format::OpenMetrics, render_openmetrics(snap)),
    ] {
        let parsed = parse(&text, format)
            .map_err(|e| TestCaseError::fail(format!("{format:?} does not parse: {e}\n{text}")))?;
        compare(&parsed, &expected(snap, format))
            .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\n{text}")))?;
    }
    Ok(())
}

/// A plug-in that reports one gauge.
struct Tick;

impl Collector for Tick {
    fn name(&self) -> &str {
        "tick"
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        out.gauge("tick_value", &[], 1.0)
    }
}

/// An exporter that counts what it is given.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>);

impl Exporter for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn export(&mut self, _: &Snapshot) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct BuilderSettings {
    cardinality_limit: usize,
    max_metrics: usize,
    window: Window,
    rate_window: Duration,
    plugin_deadline: Duration,
    lifetime_buckets: bool,
}

fn builder_settings() -> impl Strategy<Value = BuilderSettings> {
    (
        gen::any_usize(),
        gen::any_usize(),
        gen::any_window(),
        gen::any_duration(),
        gen::any_duration(),
        any::<bool>(),
    )
        .prop_map(
            |(
                cardinality_limit,
                max_metrics,
                window,
                rate_window,
                plugin_deadline,
                lifetime_buckets,
            )| {
                BuilderSettings {
                    cardinality_limit,
                    max_metrics,
                    window,
                    rate_window,
                    plugin_deadline,
                    lifetime_buckets,
                }
            },
        )
}

fn builder(s: &BuilderSettings, clock: &Arc<ManualClock>) -> vitals::Builder {
    MetricsCollector::builder()
        .clock(clock.clone())
        .cardinality_limit(s.cardinality_limit)
        .max_metrics(s.max_metrics)
        .histogram_window(s.window)
        .rate_window(s.rate_window)
        .plugin_deadline(s.plugin_deadline)
        .lifetime_buckets(s.lifetime_buckets)
}

/// The README's bounds for a collector's settings.
fn builder_is_valid(s: &BuilderSettings) -> bool {
    s.cardinality_limit >= 1
        && s.max_metrics >= 1
        && gen::window_is_valid(&s.window)
        && s.rate_window >= Duration::from_secs(1)
        && s.plugin_deadline >= ms(1)
}

/// Uses a collector a little: every kind, a plug-in, time passing.
fn exercise(
    m: &MetricsCollector,
    clock: &ManualClock,
    advances: &[Duration],
) -> Result<(), TestCaseError> {
    m.try_counter("jobs_total", &[("queue", "a")])
        .map_err(|e| TestCaseError::fail(format!("try_counter: {e}")))?
        .increment(3);
    m.gauge("depth", &[]).set(2.5);
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    m.register(Tick)
        .map_err(|e| TestCaseError::fail(format!("register: {e}")))?;
    for (i, d) in advances.iter().enumerate() {
        h.record(0.001 * (i + 1) as f64);
        clock.advance(*d);
        let snap = m.snapshot();
        prop_assert_eq!(snap.counter("jobs_total", &[("queue", "a")]), Some(3.0));
        // With max_metrics 1 or 2 the later names are refused.
        if let Some(summary) = snap.histogram("latency_seconds", &[("route", "/")]) {
            prop_assert!(summary.window.count <= summary.lifetime.count);
            prop_assert_eq!(summary.lifetime.count, i as u64 + 1);
        }
        let report = snap.plugin("tick").unwrap();
        // A deadline of a millisecond may pass on a loaded machine.
        prop_assert!(
            matches!(report.status, PluginStatus::Ok | PluginStatus::TimedOut),
            "{:?}",
            report
        );
        check_texts(&snap)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(gen::config(96))]

    /// `try_build` accepts exactly the documented settings; `build` never
    /// panics, and for a bad setting keeps the error and counts it; the
    /// collector then works.
    ///
    /// Failed before its fix: defect 1 (`plugin_deadline(Duration::MAX)`: the snapshot
    /// overflows computing the deadline) and defect 2 (`max_metrics(usize::MAX)`
    /// overflows at the first new name).
    #[test]
    fn collector_settings_are_checked_and_then_work(
        s in builder_settings(),
        advances in prop::collection::vec(gen::any_duration(), 1..4),
    ) {
        let clock = Arc::new(ManualClock::new());
        let valid = builder_is_valid(&s);
        match builder(&s, &clock).try_build() {
            Ok(m) => {
                prop_assert!(valid, "try_build accepted {:?}", s);
                exercise(&m, &clock, &advances)?;
            }
            Err(e) => {
                prop_assert!(!valid, "try_build refused {:?}: {}", s, e);
                prop_assert!(matches!(e, Error::InvalidConfig(_)), "{:?}", e);
            }
        }
        let clock = Arc::new(ManualClock::new());
        let m = builder(&s, &clock).build();
        let snap = m.snapshot();
        prop_assert_eq!(snap.first_error.is_some(), !valid, "{:?}", snap.first_error);
        let counted = snap.counter("vitals_errors_total", &[("kind", "invalid_config")]);
        prop_assert_eq!(counted, (!valid).then_some(1.0));
        exercise(&m, &clock, &advances)?;
    }

    /// A window is valid exactly as documented; `configure_histogram`
    /// takes the valid ones; whatever the clock does, the window never
    /// holds more than the series' life, and a count window holds the
    /// last N.
    #[test]
    fn windows_are_checked_and_hold_at_most_the_lifetime(
        window in gen::any_window(),
        steps in prop::collection::vec((gen::any_f64(), prop_oneof![3 => (0u64..100_000).prop_map(ms), 1 => gen::edge_duration()]), 1..30),
    ) {
        let valid = gen::window_is_valid(&window);
        prop_assert_eq!(window.validate().is_ok(), valid);
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder().clock(clock.clone()).build();
        let configured = m.configure_histogram("h", window);
        prop_assert_eq!(configured.is_ok(), valid, "{:?}", configured);
        let h = m.histogram("h", &[]);
        let mut accepted = 0u64;
        for (v, d) in &steps {
            h.record(*v);
            if !(v.is_nan() || *v < 0.0) {
                accepted += 1;
            }
            clock.advance(*d);
            let snap = m.snapshot();
            let s = snap.histogram("h", &[]).unwrap();
            prop_assert_eq!(s.lifetime.count, accepted);
            prop_assert!(s.window.count <= s.lifetime.count, "{:?}", s);
            if let (true, Window::Count { values }) = (valid, window) {
                prop_assert_eq!(s.window.count, accepted.min(u64::from(values)));
            }
        }
    }

    /// Whatever is recorded, every statistic of both windows stays a
    /// finite number inside the trackable range (values outside it are
    /// clamped and counted as saturated), and the JSON line reads back.
    ///
    /// Failed before its fix: defect 4 (a count window keeps 1e300 unclamped, and sums
    /// f64::MAX values to infinity, written as `null`).
    #[test]
    fn histogram_statistics_stay_finite_and_in_range(
        window in gen::valid_window(),
        values in prop::collection::vec(gen::any_f64(), 1..40),
    ) {
        let m = MetricsCollector::new();
        m.configure_histogram("h", window).unwrap();
        let h = m.histogram("h", &[]);
        for v in &values {
            h.record(*v);
        }
        let snap = m.snapshot();
        let s = snap.histogram("h", &[]).unwrap();
        let in_range = |v: f64| v == 0.0 || (vitals::histogram::MIN_TRACKABLE..=vitals::histogram::MAX_TRACKABLE).contains(&v);
        let w = &s.window;
        let mut stats = vec![("window.sum", Some(w.sum)), ("window.mean", w.mean), ("window.stddev", w.stddev), ("lifetime.sum", Some(s.lifetime.sum))];
        for (what, v) in [("window.min", w.min), ("window.max", w.max), ("lifetime.min", s.lifetime.min), ("lifetime.max", s.lifetime.max)] {
            prop_assert!(v.is_none_or(in_range), "{} = {:?} outside the trackable range", what, v);
            stats.push((what, v));
        }
        if let Some(q) = w.quantiles {
            // Time-window quantiles are bucket estimates within 0.79%.
            for v in [q.p50, q.p90, q.p95, q.p99, q.p999] {
                prop_assert!((0.0..=vitals::histogram::MAX_TRACKABLE * 1.008).contains(&v), "quantile {} outside the trackable range", v);
            }
        }
        for (what, v) in stats {
            prop_assert!(v.is_none_or(f64::is_finite), "{} = {:?}", what, v);
        }
        let outside = values.iter().filter(|v| !v.is_nan() && **v > 0.0 && !in_range(**v)).count() as u64;
        prop_assert_eq!(s.saturated, outside, "values outside the range are counted as saturated");
        let mut line = Vec::new();
        JsonLinesExporter::encode_line(&snap, &mut line).unwrap();
        let back: Result<Snapshot, _> = serde_json::from_slice(&line);
        prop_assert!(back.is_ok(), "{:?}: {}", back.err(), String::from_utf8_lossy(&line));
        check_texts(&snap)?;
    }

    /// Bucket bounds are accepted exactly as documented, and then count
    /// exactly: each bucket holds the values at or below its bound.
    #[test]
    fn bucket_bounds_are_checked_and_count_exactly(
        bounds in prop_oneof![
            prop::collection::vec(gen::any_f64(), 0..8),
            prop::collection::btree_set(0u32..1000, 1..8).prop_map(|s| s.into_iter().map(|v| f64::from(v) / 10.0).collect()),
            prop::collection::vec(0.0..1e9f64, 127..=129).prop_map(|mut v| { v.sort_by(f64::total_cmp); v.dedup(); v }),
        ],
        values in prop::collection::vec(prop_oneof![0.0..200.0f64, Just(0.0), (0u32..2000).prop_map(|v| f64::from(v) / 10.0)], 0..50),
    ) {
        let valid = (1..=vitals::histogram::MAX_BUCKETS).contains(&bounds.len())
            && bounds.iter().all(|b| b.is_finite() && *b >= 0.0)
            && bounds.windows(2).all(|w| w[0] < w[1]);
        let m = MetricsCollector::new();
        let r = m.configure_histogram_buckets("h", &bounds);
        prop_assert_eq!(r.is_ok(), valid, "{:?} for {:?}", r, bounds);
        let h = m.histogram("h", &[("k", "v")]);
        for v in &values {
            h.record(*v);
        }
        let snap = m.snapshot();
        let s = snap.histogram("h", &[("k", "v")]).unwrap();
        match (&s.buckets, valid) {
            (Some(b), true) => {
                prop_assert_eq!(&b.bounds, &bounds);
                prop_assert_eq!(b.count, values.len() as u64);
                for (bound, cum) in b.bounds.iter().zip(&b.cumulative) {
                    let want = values.iter().filter(|v| **v <= *bound).count() as u64;
                    prop_assert_eq!(*cum, want, "bucket le={}", bound);
                }
            }
            (None, false) => {}
            (b, _) => prop_assert!(false, "buckets {:?} with valid = {}", b, valid),
        }
        check_texts(&snap)?;
    }

    /// `Builder::plugin_deadline`, `Plugin::set_deadline` and
    /// `Plugin::set_interval` accept exactly the durations of at least
    /// 1 ms, and a snapshot then reports the plug-in with its settings.
    ///
    /// Failed before its fix: defect 1 (`Duration::MAX` or `u64::MAX` seconds as a
    /// deadline or interval overflows in the snapshot or the worker).
    #[test]
    fn plugin_deadlines_and_intervals_of_any_length(
        builder_deadline in gen::any_duration(),
        deadline in gen::any_duration(),
        interval in prop::option::of(gen::any_duration()),
    ) {
        let m = MetricsCollector::builder().plugin_deadline(builder_deadline).build();
        let at_least_1ms = |d: Duration| d >= ms(1);
        let plugin = m.register(Tick).unwrap();
        let expected_deadline = if at_least_1ms(builder_deadline) { builder_deadline } else { vitals::plugin::DEFAULT_PLUGIN_DEADLINE };
        prop_assert_eq!(plugin.deadline(), expected_deadline);
        let r = plugin.set_deadline(deadline);
        prop_assert_eq!(r.is_ok(), at_least_1ms(deadline), "{:?}", r);
        let deadline_now = if at_least_1ms(deadline) { deadline } else { expected_deadline };
        prop_assert_eq!(plugin.deadline(), deadline_now);
        let r = plugin.set_interval(interval);
        prop_assert_eq!(r.is_ok(), interval.is_none_or(at_least_1ms), "{:?}", r);
        let interval_now = interval.filter(|d| at_least_1ms(*d));
        prop_assert_eq!(plugin.interval(), interval_now);
        let snap = m.snapshot();
        let report = snap.plugin("tick").unwrap();
        prop_assert_eq!(report.stats.deadline_seconds, deadline_now.as_secs_f64());
        prop_assert_eq!(report.stats.interval_seconds, interval_now.map(|d| d.as_secs_f64()));
        // An on-demand plug-in has been collected by this snapshot; one
        // with an interval is collected by its worker at once (its first
        // collection is the one a snapshot waits for). A deadline of a
        // millisecond may pass on a loaded machine.
        prop_assert!(matches!(report.status, PluginStatus::Ok | PluginStatus::TimedOut), "{:?}", report);
        check_texts(&snap)?;
        let _ = m.snapshot();
    }
}

/// A retention per level: mostly at least the level's interval (up to
/// `Duration::MAX`), sometimes anything.
#[cfg(feature = "history")]
fn retentions() -> impl Strategy<Value = Vec<Duration>> {
    Level::ALL
        .into_iter()
        .map(|level| {
            let least = level.interval().unwrap_or(Duration::from_secs(1));
            prop_oneof![
                3 => prop::sample::select(vec![
                    least,
                    least * 2,
                    Duration::from_secs(86_400),
                    Duration::from_secs(366 * 86_400),
                    Duration::from_secs(u64::MAX),
                    Duration::MAX,
                ]),
                1 => gen::any_duration(),
            ]
        })
        .collect::<Vec<_>>()
}

proptest! {
    #![proptest_config(gen::config(32))]

    /// `Reporter::builder` starts exactly with an interval of at least 1 ms
    /// and at least one backoff tick; then `tick_now` and `shutdown` each
    /// give every exporter a snapshot.
    ///
    /// Failed before its fix: defect 1 (an interval of `Duration::MAX` or `u64::MAX`
    /// seconds overflows in the reporter thread, which then dies without
    /// ticking or writing the final snapshot).
    #[test]
    fn reporter_settings_are_checked_and_then_report(
        interval in prop_oneof![3 => gen::edge_duration(), 1 => (1u64..10_000).prop_map(ms)],
        max_backoff_ticks in gen::any_u32(),
    ) {
        let m = MetricsCollector::new();
        m.counter("jobs_total", &[]).inc();
        let seen = Counting::default();
        let started = Reporter::builder(&m)
            .interval(interval)
            .max_backoff_ticks(max_backoff_ticks)
            .exporter(seen.clone())
            .start();
        let valid = interval >= ms(1) && max_backoff_ticks >= 1;
        prop_assert_eq!(started.is_ok(), valid, "{:?}", started.as_ref().err());
        if let Ok(reporter) = started {
            reporter.tick_now();
            let after_tick = seen.0.load(Ordering::SeqCst);
            prop_assert!(after_tick >= 1, "tick_now returned before a snapshot was exported");
            let status = reporter.shutdown();
            let total = seen.0.load(Ordering::SeqCst);
            prop_assert!(total > after_tick, "no final snapshot at shutdown: {:?}", status);
            prop_assert_eq!(status.exporters[0].exported, total);
            prop_assert_eq!(status.ticks, total);
            prop_assert!(status.snapshot_error.is_none(), "{:?}", status.snapshot_error);
        }
    }

    /// `JsonLinesExporter::builder` accepts exactly the documented
    /// settings; then every line written reads back equal (up to defect
    /// 13's float rounding), in order, across rotations, and whatever
    /// retention keeps includes the newest line.
    #[test]
    fn json_lines_settings_are_checked_and_lines_read_back(
        rotate_bytes in prop::option::of(gen::any_u64()),
        rotate_age in prop::option::of(gen::any_duration()),
        keep_files in prop::option::of(gen::any_usize()),
        keep_age in prop::option::of(gen::any_duration()),
        fsync in prop_oneof![Just(FsyncPolicy::EveryLine), Just(FsyncPolicy::Never), gen::any_duration().prop_map(FsyncPolicy::Interval)],
        // Up to 14 lines, often in the same millisecond: rotated names then
        // get `.1`, `.2`, ... `.10` suffixes.
        steps in prop::collection::vec((gen::any_u64(), prop_oneof![2 => Just(Duration::ZERO), 3 => (0u64..10_000).prop_map(ms), 1 => gen::edge_duration()]), 1..14),
    ) {
        let dir = common::TempDir::new("prop-jsonl");
        let path = dir.path().join("metrics.jsonl");
        let clock = Arc::new(ManualClock::new());
        let mut b = JsonLinesExporter::builder(&path).fsync(fsync).clock(clock.clone());
        if let Some(n) = rotate_bytes { b = b.rotate_bytes(n); }
        if let Some(d) = rotate_age { b = b.rotate_age(d); }
        if let Some(n) = keep_files { b = b.keep_files(n); }
        if let Some(d) = keep_age { b = b.keep_age(d); }
        let valid = rotate_bytes != Some(0)
            && rotate_age != Some(Duration::ZERO)
            && fsync != FsyncPolicy::Interval(Duration::ZERO);
        let built = b.build();
        prop_assert_eq!(built.is_ok(), valid, "{:?}", built.as_ref().err());
        let Ok(mut exporter) = built else { return Ok(()) };
        let m = MetricsCollector::builder().clock(clock.clone()).build();
        let jobs = m.counter("jobs_total", &[]);
        let mut written = Vec::new();
        for (n, d) in &steps {
            jobs.increment(*n);
            clock.advance(*d);
            let snap = m.snapshot();
            exporter.export(&snap).map_err(|e| TestCaseError::fail(format!("export: {e}")))?;
            written.push(snap);
        }
        exporter.flush().map_err(|e| TestCaseError::fail(format!("flush: {e}")))?;
        let mut reader = JsonLinesReader::open_rotated(&path).map_err(|e| TestCaseError::fail(format!("open_rotated: {e}")))?;
        let read: Vec<Snapshot> = reader.by_ref().collect::<Result<_, _>>().map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
        prop_assert!(reader.skipped().is_empty(), "{:?}", reader.skipped());
        // What was read is what was written, in order, newest included
        // (compared by counter totals: defect 13 may move a float by an ulp).
        let totals = |s: &[Snapshot]| s.iter().map(|s| s.counter("jobs_total", &[])).collect::<Vec<_>>();
        let (read_totals, written_totals) = (totals(&read), totals(&written));
        prop_assert_eq!(read_totals.last(), written_totals.last());
        let mut rest = written_totals.iter();
        for t in &read_totals {
            prop_assert!(rest.any(|w| w == t), "read {:?} is not an in-order part of {:?}", read_totals, written_totals);
        }
        if keep_files.is_none() && keep_age.is_none() {
            prop_assert_eq!(read.len(), written.len());
        }
    }

    /// `History::builder` accepts exactly retentions of at least one
    /// interval of their level; then ingesting snapshots (the clock jumping
    /// far) and querying every aggregation at every level never panics.
    #[cfg(feature = "history")]
    #[test]
    fn history_settings_are_checked_and_then_ingest_and_answer(
        retention in retentions(),
        resident in prop::collection::vec(prop::option::of(gen::any_duration()), 4),
        memory_limit in prop::option::of(gen::any_usize()),
        steps in prop::collection::vec((gen::any_f64(), prop_oneof![3 => (0u64..600_000).prop_map(ms), 1 => gen::edge_duration()]), 1..8),
        queries in prop::collection::vec((prop::sample::select(Aggregation::ALL.to_vec()), prop::option::of(prop::sample::select(Level::ALL.to_vec())), gen::any_u64(), gen::any_u64(), prop::option::of(gen::any_usize())), 1..6),
    ) {
        let mut b = History::builder();
        for (level, d) in Level::ALL.into_iter().zip(&retention) {
            b = b.retention(level, *d);
        }
        for (level, d) in Level::ALL.into_iter().zip(&resident) {
            if let Some(d) = d { b = b.resident(level, *d); }
        }
        if let Some(n) = memory_limit { b = b.memory_limit(n); }
        let valid = Level::ALL.into_iter().zip(&retention).all(|(level, d)| *d >= level.interval().unwrap_or(Duration::from_secs(1)));
        let built = b.build();
        prop_assert_eq!(built.is_ok(), valid, "{:?}", built.as_ref().err());
        let Ok(history) = built else { return Ok(()) };
        let clock = Arc::new(ManualClock::new());
        let m = MetricsCollector::builder().clock(clock.clone()).lifetime_buckets(true).build();
        let c = m.counter("jobs_total", &[("k", "v")]);
        let g = m.gauge("depth", &[]);
        let h = m.histogram("latency_seconds", &[]);
        for (v, d) in &steps {
            c.inc();
            g.set(*v);
            h.record(*v);
            clock.advance(*d);
            let r = history.ingest(&m.snapshot());
            prop_assert!(r.is_ok(), "ingest: {:?}", r);
        }
        prop_assert!(history.latest("jobs_total", &[("k", "v")]).is_some());
        for (aggregation, level, a, b, points) in queries {
            for name in ["jobs_total", "depth", "latency_seconds"] {
                let mut q = Query::new(name, aggregation).range(a.min(b), a.max(b));
                if let Some(level) = level { q = q.level(level); }
                if let Some(p) = points { q = q.max_points(p); }
                let _ = history.query(&q);
            }
        }
    }
}
