//! The plug-in runner through the public API: deadlines, panics, errors,
//! availability, enable/disable, intervals, statistics and JSON.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use vitals::plugin::PluginStatus;
use vitals::{Collector, Error, MetricsCollector, Samples, Snapshot};

/// Generous: deadline tests bound the wait from above, never time speed.
const MARGIN: Duration = Duration::from_millis(900);
// Room for a loaded CI machine: a plug-in that returns at once meets it.
const DEADLINE: Duration = Duration::from_millis(250);

/// Reports `name_value` = calls so far; what it does on each call is set
/// by `behaviour`.
struct Scripted {
    name: &'static str,
    calls: Arc<AtomicU32>,
    behaviour: fn(u32) -> Result<(), Error>,
}

impl Scripted {
    fn new(name: &'static str, behaviour: fn(u32) -> Result<(), Error>) -> (Self, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let plugin = Scripted {
            name,
            calls: Arc::clone(&calls),
            behaviour,
        };
        (plugin, calls)
    }
}

impl Collector for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        (self.behaviour)(call)?;
        out.gauge("calls", &[("plugin", self.name)], f64::from(call))
    }
}

fn fine(_: u32) -> Result<(), Error> {
    Ok(())
}

fn panics_first(call: u32) -> Result<(), Error> {
    // The default panic hook prints the message, and with RUST_BACKTRACE=1
    // symbolises a backtrace first: in a debug build that alone can outlast
    // the 100 ms deadline, and the plug-in would (rightly) be reported
    // timed out. These tests are about isolation, so the plug-ins' panics
    // stay quiet; a test's own failure still prints its message.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread::current().name().map(str::to_owned);
            if !name.is_some_and(|n| n.starts_with("vitals-plugin")) {
                default(info);
            }
        }));
    });
    if call == 1 {
        panic!("boom on call {call}");
    }
    Ok(())
}

fn sleeps_first(call: u32) -> Result<(), Error> {
    if call == 1 {
        // Far past the deadline and the margin a snapshot is given.
        thread::sleep(Duration::from_millis(2000));
    }
    Ok(())
}

fn fails_first(call: u32) -> Result<(), Error> {
    if call == 1 {
        return Err(Error::Collection("disk not mounted".into()));
    }
    Ok(())
}

fn timed_snapshot(metrics: &MetricsCollector) -> (Snapshot, Duration) {
    let start = Instant::now();
    let snap = metrics.snapshot();
    (snap, start.elapsed())
}

fn status(snap: &Snapshot, name: &str) -> PluginStatus {
    snap.plugin(name).unwrap().status
}

fn calls(snap: &Snapshot, name: &str) -> Option<f64> {
    assert!(snap.plugin(name).is_some(), "{name} not registered");
    snap.gauge("calls", &[("plugin", name)])
}

#[test]
fn slow_panicking_and_failing_plugins_do_not_hold_up_or_hide_the_others() {
    let metrics = MetricsCollector::builder()
        .plugin_deadline(DEADLINE)
        .build();
    let (good, _) = Scripted::new("good", fine);
    let (panicky, _) = Scripted::new("panicky", panics_first);
    let (slow, slow_calls) = Scripted::new("slow", sleeps_first);
    let (failing, _) = Scripted::new("failing", fails_first);
    for plugin in [good, panicky, slow, failing] {
        metrics.register(plugin).unwrap();
    }

    let (snap, took) = timed_snapshot(&metrics);
    assert!(took < DEADLINE + MARGIN, "first snapshot took {took:?}");
    assert_eq!(status(&snap, "good"), PluginStatus::Ok);
    assert_eq!(calls(&snap, "good"), Some(1.0));
    assert_eq!(status(&snap, "panicky"), PluginStatus::Error);
    let panicked = snap.plugin("panicky").unwrap();
    assert!(panicked
        .stats
        .last_error
        .as_deref()
        .unwrap()
        .contains("boom on call 1"));
    assert_eq!(panicked.stats.series, 0);
    assert_eq!(calls(&snap, "panicky"), None);
    assert_eq!(status(&snap, "slow"), PluginStatus::TimedOut);
    assert_eq!(snap.plugin("slow").unwrap().stats.timeouts, 1);
    assert_eq!(status(&snap, "failing"), PluginStatus::Error);
    let failed = snap.plugin("failing").unwrap();
    assert!(failed
        .stats
        .last_error
        .as_deref()
        .unwrap()
        .contains("disk not mounted"));
    assert_eq!((failed.stats.collections, failed.stats.errors), (1, 1));

    // While the slow one is stuck, the next snapshot neither waits for it
    // nor starts a second collection; the others recover.
    let (snap, took) = timed_snapshot(&metrics);
    assert!(took < DEADLINE + MARGIN, "second snapshot took {took:?}");
    assert_eq!(status(&snap, "slow"), PluginStatus::TimedOut);
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);
    assert_eq!(snap.plugin("slow").unwrap().stats.timeouts, 1);
    assert_eq!(status(&snap, "panicky"), PluginStatus::Ok);
    assert_eq!(calls(&snap, "panicky"), Some(2.0));
    assert_eq!(status(&snap, "failing"), PluginStatus::Ok);
    assert_eq!(calls(&snap, "good"), Some(2.0));

    // Once the stuck collection returns, the plug-in reports again: a
    // snapshot taken as it returns may report its late values (call 1), the
    // next runs call 2. Poll rather than sleep a fixed time, so that a
    // loaded machine cannot fail it.
    let start = Instant::now();
    let snap = loop {
        let snap = metrics.snapshot();
        let reported = status(&snap, "slow") == PluginStatus::Ok;
        if reported && calls(&snap, "slow") == Some(2.0)
            || start.elapsed() > Duration::from_secs(20)
        {
            break snap;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let slow = snap.plugin("slow").unwrap();
    assert_eq!(slow.status, PluginStatus::Ok);
    assert_eq!(calls(&snap, "slow"), Some(2.0));
    assert!(slow.stats.last_duration_seconds.unwrap() < 1.0);
    assert_eq!(slow.stats.timeouts, 1);
    assert_eq!(slow_calls.load(Ordering::SeqCst), 2);
}

#[test]
fn collections_are_timed_into_the_duration_histogram() {
    let metrics = MetricsCollector::new();
    let (good, _) = Scripted::new("good", fine);
    metrics.register(good).unwrap();
    metrics.snapshot();
    let snap = metrics.snapshot();
    let timing = snap
        .histogram(
            "vitals_collection_duration_seconds",
            &[("collector", "good")],
        )
        .unwrap();
    assert_eq!(timing.lifetime.count, 2);
    let stats = &snap.plugin("good").unwrap().stats;
    assert_eq!(stats.collections, 2);
    assert!(stats.last_duration_seconds.is_some());
    assert_eq!(stats.last_success_age_seconds.map(|a| a >= 0.0), Some(true));
}

#[test]
fn disabling_a_plugin_removes_its_samples_until_enabled_again() {
    let metrics = MetricsCollector::new();
    let (good, calls_made) = Scripted::new("good", fine);
    let plugin = metrics.register(good).unwrap();
    assert_eq!(calls(&metrics.snapshot(), "good"), Some(1.0));

    plugin.set_enabled(false);
    let snap = metrics.snapshot();
    let report = snap.plugin("good").unwrap();
    assert_eq!(report.status, PluginStatus::Disabled);
    assert_eq!(report.stats.series, 0);
    assert_eq!(calls(&snap, "good"), None);
    assert_eq!(report.stats.collections, 1);
    assert_eq!(calls_made.load(Ordering::SeqCst), 1);

    metrics.plugin("good").unwrap().set_enabled(true);
    let snap = metrics.snapshot();
    assert_eq!(status(&snap, "good"), PluginStatus::Ok);
    assert_eq!(calls(&snap, "good"), Some(2.0));
}

#[test]
fn an_interval_plugin_samples_in_the_background_and_snapshots_read_its_latest() {
    let metrics = MetricsCollector::new();
    let (ticker, ticks) = Scripted::new("ticker", fine);
    let plugin = metrics.register(ticker).unwrap();
    plugin
        .set_interval(Some(Duration::from_millis(20)))
        .unwrap();
    // The first snapshot (on demand) gives a baseline; then the interval runs.
    metrics.snapshot();
    thread::sleep(Duration::from_millis(500));
    let background = ticks.load(Ordering::SeqCst);
    assert!(
        background >= 5,
        "only {background} collections in 500 ms at 20 ms"
    );

    // A long interval: snapshots read the latest samples without collecting.
    plugin
        .set_interval(Some(Duration::from_secs(3600)))
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    let settled = ticks.load(Ordering::SeqCst);
    let snap = metrics.snapshot();
    let snap2 = metrics.snapshot();
    assert_eq!(ticks.load(Ordering::SeqCst), settled);
    assert_eq!(calls(&snap, "ticker"), Some(f64::from(settled)));
    assert_eq!(calls(&snap2, "ticker"), Some(f64::from(settled)));
    assert_eq!(
        snap.plugin("ticker").unwrap().stats.interval_seconds,
        Some(3600.0)
    );

    // Back to on demand: each snapshot collects once.
    plugin.set_interval(None).unwrap();
    metrics.snapshot();
    assert_eq!(ticks.load(Ordering::SeqCst), settled + 1);
}

struct Absent;

impl Collector for Absent {
    fn name(&self) -> &str {
        "absent"
    }
    fn is_available(&self) -> bool {
        false
    }
    fn collect(&self, _: &mut Samples) -> Result<(), Error> {
        unreachable!("collect is not called on an unavailable plug-in")
    }
}

#[test]
fn an_unavailable_plugin_is_reported_and_not_collected() {
    let metrics = MetricsCollector::new();
    metrics.register(Absent).unwrap();
    let snap = metrics.snapshot();
    let report = snap.plugin("absent").unwrap();
    assert_eq!(report.status, PluginStatus::Unavailable);
    assert_eq!(report.stats.errors, 0);
}

#[test]
fn registration_rejects_duplicates_and_bad_settings() {
    let metrics = MetricsCollector::new();
    let (a, _) = Scripted::new("dup", fine);
    let (b, _) = Scripted::new("dup", fine);
    let plugin = metrics.register(a).unwrap();
    assert!(matches!(metrics.register(b), Err(Error::DuplicateCollector(n)) if n == "dup"));
    let (empty, _) = Scripted::new("", fine);
    assert!(matches!(
        metrics.register(empty),
        Err(Error::InvalidConfig(_))
    ));
    assert!(plugin.set_deadline(Duration::ZERO).is_err());
    assert!(plugin
        .set_interval(Some(Duration::from_micros(10)))
        .is_err());
    assert!(MetricsCollector::builder()
        .plugin_deadline(Duration::ZERO)
        .try_build()
        .is_err());
}

#[test]
fn a_bad_sample_name_fails_the_collection_with_a_typed_error() {
    struct BadName;
    impl Collector for BadName {
        fn name(&self) -> &str {
            "bad"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), Error> {
            out.gauge("no spaces allowed", &[], 1.0)
        }
    }
    let metrics = MetricsCollector::new();
    metrics.register(BadName).unwrap();
    let snap = metrics.snapshot();
    let report = snap.plugin("bad").unwrap();
    assert_eq!(report.status, PluginStatus::Error);
    assert!(report
        .stats
        .last_error
        .as_deref()
        .unwrap()
        .contains("invalid metric name"));
}

#[test]
fn plugin_reports_round_trip_through_json_and_old_json_still_reads() {
    let metrics = MetricsCollector::new();
    let (good, _) = Scripted::new("good", fine);
    metrics.register(good).unwrap();
    let snap = metrics.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.contains(r#""status":"ok""#));
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);

    let old = r#"{"schema_version":1,"timestamp_unix_ms":1,"uptime_seconds":0.5,
        "counters":[],"gauges":[],"histograms":[],"metadata":[],"first_error":null}"#;
    let old: Snapshot = serde_json::from_str(old).unwrap();
    assert!(old.plugins.is_empty());
}
