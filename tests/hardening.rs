//! Regression tests for inputs that once panicked, lost data or produced
//! output a reader rejects. Each test names the failure it guards against;
//! the README's "Bad input" table points here.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TempDir;
use vitals::export::{
    render_openmetrics, render_prometheus, render_table, status_line, Exporter, JsonLinesExporter,
    JsonLinesReader, Reporter,
};
use vitals::plugin::PluginStatus;
use vitals::{Collector, Error, MetricsCollector, Samples, Snapshot, Window};

/// A plug-in reporting one gauge; its name is chosen by the test.
struct Named(String);

impl Collector for Named {
    fn name(&self) -> &str {
        &self.0
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        out.gauge("named_value", &[], 1.0)
    }
}

/// Keeps every snapshot it is given.
#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Snapshot>>>);

impl Exporter for Keep {
    fn name(&self) -> &str {
        "keep"
    }
    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.0.lock().unwrap().push(snapshot.clone());
        Ok(())
    }
}

#[test]
fn a_plugin_deadline_of_duration_max_waits_for_the_collection() {
    let metrics = MetricsCollector::builder()
        .plugin_deadline(Duration::MAX)
        .build();
    metrics.register(Named("slowpoke".into())).unwrap();
    let snap = metrics.snapshot();
    let report = snap.plugin("slowpoke").unwrap();
    assert_eq!(report.status, PluginStatus::Ok);
    assert_eq!(snap.gauge("named_value", &[]), Some(1.0));
}

#[test]
fn set_deadline_and_set_interval_accept_duration_max() {
    let metrics = MetricsCollector::new();
    let plugin = metrics.register(Named("patient".into())).unwrap();
    plugin.set_deadline(Duration::MAX).unwrap();
    assert_eq!(
        metrics
            .snapshot()
            .plugin("patient")
            .unwrap()
            .stats
            .collections,
        1
    );

    // A background interval too long to add to an `Instant`: the worker
    // waits for a wake-up instead of dying.
    plugin.set_interval(Some(Duration::MAX)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    plugin.set_interval(None).unwrap();
    plugin.set_deadline(Duration::from_secs(5)).unwrap();
    let report = metrics.snapshot();
    let report = report.plugin("patient").unwrap();
    assert_eq!(report.status, PluginStatus::Ok, "{report:?}");
    assert!(report.stats.collections >= 2, "{report:?}");
}

#[test]
fn a_reporter_interval_of_duration_max_still_ticks_on_request_and_at_shutdown() {
    let metrics = MetricsCollector::new();
    metrics.counter("jobs_total", &[]).inc();
    let kept = Keep::default();
    let reporter = Reporter::builder(&metrics)
        .interval(Duration::MAX)
        .exporter(kept.clone())
        .start()
        .unwrap();
    reporter.tick_now();
    let status = reporter.shutdown();
    assert_eq!(status.ticks, 2, "{status:?}");
    assert!(status.snapshot_error.is_none(), "{status:?}");
    let snaps = kept.0.lock().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[1].counter("jobs_total", &[]), Some(1.0));
}

#[test]
fn max_metrics_of_usize_max_accepts_new_names() {
    let metrics = MetricsCollector::builder().max_metrics(usize::MAX).build();
    for i in 0..10 {
        metrics
            .try_counter(&format!("name_{i}_total"), &[])
            .unwrap()
            .inc();
    }
    assert_eq!(metrics.snapshot().counter("name_9_total", &[]), Some(1.0));
}

#[test]
fn a_plugin_name_with_nul_registers_and_reports() {
    let metrics = MetricsCollector::new();
    metrics.register(Named("nul\0inside".into())).unwrap();
    let snap = metrics.snapshot();
    assert_eq!(snap.plugin("nul\0inside").unwrap().status, PluginStatus::Ok);
}

#[test]
fn count_window_values_are_clamped_so_sums_stay_finite_and_lines_read_back() {
    let dir = TempDir::new("count-clamp");
    let metrics = MetricsCollector::new();
    metrics
        .configure_histogram("huge", Window::Count { values: 10 })
        .unwrap();
    let h = metrics.histogram("huge", &[]);
    h.record(f64::MAX);
    h.record(f64::MAX);
    h.record(1e300);
    h.record(f64::INFINITY);
    h.record(1e-300);
    let snap = metrics.snapshot();
    let s = snap.histogram("huge", &[]).unwrap();
    assert_eq!(s.saturated, 5);
    assert_eq!(s.window.max, Some(vitals::histogram::MAX_TRACKABLE));
    assert_eq!(s.window.min, Some(vitals::histogram::MIN_TRACKABLE));
    assert!(s.window.sum.is_finite() && s.lifetime.sum.is_finite());

    let path = dir.path().join("m.jsonl");
    JsonLinesExporter::new(&path)
        .unwrap()
        .export(&snap)
        .unwrap();
    let mut reader = JsonLinesReader::open(&path).unwrap();
    let back: Vec<Snapshot> = reader.by_ref().map(Result::unwrap).collect();
    assert!(reader.skipped().is_empty(), "{:?}", reader.skipped());
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].histogram("huge", &[]), Some(s));
}

/// A plug-in that reports counters a reader would reject, then a good one.
struct BadCounters;

impl Collector for BadCounters {
    fn name(&self) -> &str {
        "bad_counters"
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        for v in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = out.counter("odd_total", &[], v).unwrap_err();
            assert_eq!(err.kind(), "invalid_value");
        }
        out.counter("good_total", &[], -0.0)?;
        out.counter("fine_total", &[], 7.0)
    }
}

#[test]
fn plugin_counter_samples_must_be_finite_and_non_negative() {
    let metrics = MetricsCollector::new();
    metrics.register(BadCounters).unwrap();
    let snap = metrics.snapshot();
    let report = snap.plugin("bad_counters").unwrap();
    assert_eq!(report.status, PluginStatus::Ok, "{report:?}");
    assert_eq!(report.stats.dropped_samples, 4);
    assert_eq!(snap.counter("odd_total", &[]), None);
    assert_eq!(snap.counter("fine_total", &[]), Some(7.0));
    let zero = snap.counter("good_total", &[]).unwrap();
    assert!(zero == 0.0 && zero.is_sign_positive());
    let text = render_openmetrics(&snap);
    assert!(!text.contains("odd_total"), "{text}");
    assert!(
        text.contains("good_total 0\n") || text.contains("good_total 0.0\n"),
        "{text}"
    );
}

#[test]
fn count_window_count_never_exceeds_the_lifetime_count_under_load() {
    let metrics = MetricsCollector::new();
    metrics
        .configure_histogram("busy", Window::Count { values: 1000 })
        .unwrap();
    let h = metrics.histogram("busy", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (h, stop) = (h.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) || n < 10_000 {
                    h.record(f64::from(t) + 1.0);
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..2_000 {
        let snap = metrics.snapshot();
        let s = snap.histogram("busy", &[]).unwrap();
        assert!(
            s.window.count <= s.lifetime.count,
            "window {} > lifetime {}",
            s.window.count,
            s.lifetime.count
        );
    }
    stop.store(true, Ordering::Relaxed);
    let recorded: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let snap = metrics.snapshot();
    let s = snap.histogram("busy", &[]).unwrap();
    assert_eq!(s.lifetime.count, recorded);
    assert_eq!(s.window.count, 1000);
}

#[test]
fn a_refused_registration_leaves_no_trace() {
    let metrics = MetricsCollector::builder().max_metrics(1).build();
    let err = metrics.try_counter("x", &[("bad-label", "v")]).unwrap_err();
    assert_eq!(err.kind(), "invalid_label");
    let err = metrics.try_histogram("h", &[("le", "1")]).unwrap_err();
    assert_eq!(err.kind(), "invalid_label");
    // Neither the kind nor the one `max_metrics` slot was taken.
    metrics.try_gauge("x", &[]).unwrap().set(1.0);
    assert_eq!(metrics.snapshot().gauge("x", &[]), Some(1.0));

    // The same through the macros: an explicit collector, and a global call
    // site with a literal name and runtime labels (which caches the family).
    let metrics = MetricsCollector::new();
    vitals::counter!(collector: metrics, "y", "bad-label" => "v").inc();
    metrics.try_gauge("y", &[]).unwrap().set(2.0);
    let label = String::from("bad-label");
    vitals::counter!("hardening_refused_total", label.as_str() => "v").inc();
    vitals::global()
        .try_gauge("hardening_refused_total", &[])
        .unwrap()
        .set(3.0);
    let snap = vitals::global().snapshot();
    assert_eq!(snap.gauge("hardening_refused_total", &[]), Some(3.0));
}

#[test]
fn json_lines_read_back_every_float_bit_for_bit() {
    let metrics = MetricsCollector::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut values = vec![2f64.powi(-30), 0.1, 1.0 / 3.0, f64::MIN_POSITIVE, 5e-324];
    for _ in 0..2_000 {
        // xorshift: values across the whole exponent range.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = f64::from_bits(x);
        if v.is_finite() {
            values.push(v);
        }
    }
    for (i, v) in values.iter().enumerate() {
        metrics.gauge("g", &[("i", &i.to_string())]).set(*v);
    }
    let snap = metrics.snapshot();
    let mut line = Vec::new();
    JsonLinesExporter::encode_line(&snap, &mut line).unwrap();
    let back: Snapshot = serde_json::from_slice(&line).unwrap();
    let mut drifted = 0;
    for (a, b) in snap.gauges.iter().zip(&back.gauges) {
        if a.value.to_bits() != b.value.to_bits() {
            drifted += 1;
        }
    }
    assert_eq!(drifted, 0, "of {} values", values.len());
    assert_eq!(back, snap);
}

#[test]
fn terminal_outputs_escape_control_characters() {
    struct Hostile;
    impl Collector for Hostile {
        fn name(&self) -> &str {
            "evil\x1b[31m"
        }
        fn collect(&self, _: &mut Samples) -> Result<(), Error> {
            Err(Error::Collection("boom\x1b]0;title\x07\u{202e}".into()))
        }
    }
    let metrics = MetricsCollector::new();
    metrics.register(Hostile).unwrap();
    metrics
        .counter("requests_total", &[("user", "\x1b[2J\x1b[H\r\u{9b}x")])
        .inc();
    metrics
        .histogram("request_duration_seconds", &[("path", "\u{202e}/a\x00")])
        .record(0.01);
    let snap = metrics.snapshot();
    for text in [render_table(&snap), status_line(&snap)] {
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
            .collect();
        assert!(bad.is_empty(), "{bad:?} in {text}");
    }
    let table = render_table(&snap);
    assert!(table.contains(r#"user="\x1b[2J\x1b[H\r\x9bx""#), "{table}");
    assert!(table.contains(r"evil\x1b[31m"), "{table}");
    // The machine formats keep the raw value: their readers unescape it.
    assert!(render_prometheus(&snap).contains("\x1b[2J"));
    // `Labels`' `Display` escapes them too.
    let shown = vitals::Labels::from_pairs(&[("k", "a\u{1b}[31m\u{202e}b")]).to_string();
    assert!(!shown.contains(['\u{1b}', '\u{202e}']), "{shown:?}");
    assert!(
        shown.contains("\\x1b") && shown.contains("\\u{202e}"),
        "{shown}"
    );
}

#[test]
fn a_deleted_active_file_is_recreated_and_the_loss_reported() {
    let dir = TempDir::new("deleted-file");
    let path = dir.path().join("m.jsonl");
    let metrics = MetricsCollector::new();
    let jobs = metrics.counter("jobs_total", &[]);
    let mut exporter = JsonLinesExporter::new(&path).unwrap();
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();

    std::fs::remove_file(&path).unwrap();
    jobs.inc();
    let err = exporter.export(&metrics.snapshot()).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Io {
                operation: "recreate",
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    let counts: Vec<Option<f64>> = JsonLinesReader::open(&path)
        .unwrap()
        .map(|s| s.unwrap().counter("jobs_total", &[]))
        .collect();
    // The snapshot that found the file gone was written, nothing after lost.
    assert_eq!(counts, [Some(2.0), Some(3.0)]);

    // A file moved away (another tool's rotation) is not a loss.
    std::fs::rename(&path, dir.path().join("moved.jsonl")).unwrap();
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    assert_eq!(JsonLinesReader::open(&path).unwrap().count(), 1);
}

#[test]
fn every_error_kind_is_counted_whatever_the_cardinality_limit() {
    let metrics = MetricsCollector::builder()
        .cardinality_limit(1)
        .max_metrics(1)
        .build();
    metrics.counter("a_total", &[]).inc();
    let _ = metrics.gauge("a_total", &[]); // kind_mismatch
    let _ = metrics.counter("b_total", &[]); // cardinality_limit (names)
    let _ = metrics.counter("bad name", &[]); // invalid_name
    let snap = metrics.snapshot();
    for kind in ["kind_mismatch", "cardinality_limit", "invalid_name"] {
        assert_eq!(
            snap.counter("vitals_errors_total", &[("kind", kind)]),
            Some(1.0),
            "{kind}"
        );
    }
}

#[test]
fn a_counter_past_u64_max_wraps() {
    let clock = Arc::new(vitals::ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let c = metrics.counter("huge_total", &[]);
    c.increment(u64::MAX - 4);
    metrics.snapshot();
    clock.advance(Duration::from_secs(10));
    c.increment(10);
    let snap = metrics.snapshot();
    assert_eq!(snap.counter("huge_total", &[]), Some(5.0));
    // The rate is taken modulo 2^64 too: finite, never negative.
    let rate = snap
        .counter_sample("huge_total", &[])
        .unwrap()
        .rate
        .unwrap();
    assert!(
        rate.per_second.is_finite() && rate.per_second >= 0.0,
        "{rate:?}"
    );
}

#[test]
fn no_value_is_lost_while_snapshots_rotate_the_window_under_load() {
    // Found by the property tests: a writer that read the slot index just
    // before a rotation added to a slot the reader had already read or
    // retired, and the final snapshot came up short (in 2 of 3 runs of
    // 40 rounds before the fix).
    for _ in 0..200 {
        let clock = Arc::new(vitals::ManualClock::new());
        let metrics = MetricsCollector::builder().clock(clock.clone()).build();
        let h = metrics.histogram("busy_seconds", &[]);
        let start = Arc::new(std::sync::Barrier::new(6));
        let writers: Vec<_> = (0..5)
            .map(|_| {
                let (h, start) = (h.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for i in 1..=1521 {
                        h.record(f64::from(i));
                    }
                })
            })
            .collect();
        start.wait();
        while writers.iter().any(|w| !w.is_finished()) {
            clock.advance(Duration::from_millis(250));
            metrics.snapshot();
        }
        for w in writers {
            w.join().unwrap();
        }
        let snap = metrics.snapshot();
        let life = &snap.histogram("busy_seconds", &[]).unwrap().lifetime;
        assert_eq!(life.count, 5 * 1521);
        assert_eq!(life.sum, 5.0 * 1521.0 * 1522.0 / 2.0);
    }
}
