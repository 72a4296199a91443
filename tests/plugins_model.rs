//! One data model: a plug-in's values are ordinary counter and gauge series
//! of the snapshot, with help text, unit and rates; name clashes are
//! detected and reported when they first happen; older JSON lines read with
//! their plug-in samples moved into series.

use std::sync::Arc;
use std::time::Duration;

use vitals::plugin::PluginStatus;
use vitals::snapshot::{CounterValue, SCHEMA_VERSION};
use vitals::{
    Collector, Error, ManualClock, MetricKind, MetricsCollector, Samples, Snapshot, Unit,
};

/// One sample a [`Fixed`] plug-in reports: kind, name, labels, value.
type Fixture = (
    MetricKind,
    &'static str,
    Vec<(&'static str, &'static str)>,
    f64,
);

/// Reports what it is given.
struct Fixed {
    name: &'static str,
    samples: Vec<Fixture>,
    describe: bool,
}

impl Collector for Fixed {
    fn name(&self) -> &str {
        self.name
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        for (kind, name, labels, value) in &self.samples {
            if self.describe {
                out.describe(name, Some(Unit::Bytes), "Described by its plug-in.")?;
            }
            match kind {
                MetricKind::Counter => out.counter(name, labels, *value)?,
                _ => out.gauge(name, labels, *value)?,
            }
        }
        Ok(())
    }
}

fn fixed(name: &'static str, samples: Vec<Fixture>) -> Fixed {
    Fixed {
        name,
        samples,
        describe: false,
    }
}

fn clashes(snap: &Snapshot) -> f64 {
    snap.counter("vitals_errors_total", &[("kind", "name_clash")])
        .unwrap_or(0.0)
}

#[test]
fn plugin_values_are_series_with_their_help_unit_and_rate() {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    let total = Arc::new(std::sync::Mutex::new(1.5));
    struct Cpu(Arc<std::sync::Mutex<f64>>);
    impl Collector for Cpu {
        fn name(&self) -> &str {
            "cpu"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), Error> {
            out.describe(
                "work_seconds_total",
                Some(Unit::Seconds),
                "Time spent working.",
            )?;
            out.counter("work_seconds_total", &[], *self.0.lock().unwrap())?;
            out.gauge("workers", &[("pool", "a")], 4.0)
        }
    }
    metrics.register(Cpu(Arc::clone(&total))).unwrap();
    let first = metrics.snapshot();
    let c = first.counter_sample("work_seconds_total", &[]).unwrap();
    assert_eq!(c.value, CounterValue::Float(1.5));
    assert_eq!(c.rate, None, "no rate before a second reading");
    assert_eq!(first.gauge("workers", &[("pool", "a")]), Some(4.0));
    let info = first.metadata("work_seconds_total").unwrap();
    assert_eq!(info.kind, MetricKind::Counter);
    assert_eq!(info.unit.as_deref(), Some("seconds"));
    assert_eq!(info.help.as_deref(), Some("Time spent working."));
    // Undescribed: the help names the plug-in (promtool's lint wants one).
    let workers = first.metadata("workers").unwrap();
    assert_eq!(
        workers.help.as_deref(),
        Some("Reported by the cpu plug-in.")
    );
    assert_eq!(first.plugin("cpu").unwrap().stats.series, 2);

    *total.lock().unwrap() = 4.0;
    clock.advance(Duration::from_secs(10));
    let second = metrics.snapshot();
    let rate = second
        .counter_sample("work_seconds_total", &[])
        .unwrap()
        .rate
        .unwrap();
    assert_eq!((rate.per_second, rate.span_seconds), (0.25, 10.0));
    assert_eq!(second.counter("work_seconds_total", &[]), Some(4.0));

    // Series and metadata stay in name order, the program's and the
    // plug-in's together.
    metrics.counter("alpha_total", &[]).inc();
    metrics.gauge("zeta", &[]).set(1.0);
    let snap = metrics.snapshot();
    let names: Vec<&str> = snap.counters.iter().map(|c| &*c.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(snap.metadata.windows(2).all(|w| w[0].name <= w[1].name));
    let gauges: Vec<&str> = snap.gauges.iter().map(|g| &*g.name).collect();
    assert_eq!(gauges, ["workers", "zeta"]);
}

#[test]
fn a_plugin_name_the_program_uses_is_refused_and_reported_once() {
    let metrics = MetricsCollector::new();
    metrics.gauge("queue_depth", &[]).set(7.0);
    metrics
        .register(fixed(
            "queues",
            vec![
                (
                    MetricKind::Gauge,
                    "queue_depth",
                    vec![("queue", "mail")],
                    3.0,
                ),
                (MetricKind::Gauge, "queue_age_seconds", vec![], 1.0),
            ],
        ))
        .unwrap();
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("queue_depth", &[]), Some(7.0));
    assert_eq!(snap.gauge("queue_depth", &[("queue", "mail")]), None);
    assert_eq!(snap.gauge("queue_age_seconds", &[]), Some(1.0));
    assert_eq!(snap.plugin("queues").unwrap().stats.series, 1);
    assert_eq!(clashes(&snap), 1.0, "counted in the snapshot that met it");
    let first = snap.first_error.as_deref().unwrap();
    assert!(
        first.contains("queue_depth") && first.contains("the program"),
        "{first}"
    );
    // Reported once, not at every snapshot.
    for _ in 0..3 {
        assert_eq!(clashes(&metrics.snapshot()), 1.0);
    }
}

#[test]
fn the_program_cannot_take_a_name_plugin_series_hold() {
    let metrics = MetricsCollector::new();
    metrics
        .register(fixed(
            "pool",
            vec![(MetricKind::Gauge, "pool_size", vec![], 8.0)],
        ))
        .unwrap();
    let _ = metrics.snapshot();
    let err = metrics.try_gauge("pool_size", &[]).unwrap_err();
    assert!(
        matches!(&err, Error::NameClash { name, .. } if name == "pool_size"),
        "{err:?}"
    );
    assert!(metrics
        .try_describe(MetricKind::Gauge, "pool_size", None, "x")
        .is_err());
    // The plain method hands back a detached handle and counts the error.
    metrics.gauge("pool_size", &[]).set(1.0);
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("pool_size", &[]), Some(8.0));
    assert!(clashes(&snap) >= 1.0);
}

#[test]
fn plugins_share_a_name_of_one_kind_but_never_a_series_or_a_kind() {
    let metrics = MetricsCollector::new();
    let disk = |name, mount, value| {
        fixed(
            name,
            vec![(
                MetricKind::Gauge,
                "disk_free_bytes",
                vec![("mount", mount)],
                value,
            )],
        )
    };
    metrics.register(disk("root", "/", 1.0)).unwrap();
    metrics.register(disk("data", "/data", 2.0)).unwrap();
    // The same series again, and the name as a counter.
    metrics.register(disk("again", "/", 3.0)).unwrap();
    metrics
        .register(fixed(
            "counting",
            vec![(
                MetricKind::Counter,
                "disk_free_bytes",
                vec![("mount", "/x")],
                4.0,
            )],
        ))
        .unwrap();
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("disk_free_bytes", &[("mount", "/")]), Some(1.0));
    assert_eq!(
        snap.gauge("disk_free_bytes", &[("mount", "/data")]),
        Some(2.0)
    );
    assert_eq!(snap.counter("disk_free_bytes", &[("mount", "/x")]), None);
    let series: Vec<u64> = ["root", "data", "again", "counting"]
        .iter()
        .map(|p| snap.plugin(p).unwrap().stats.series)
        .collect();
    assert_eq!(series, [1, 1, 0, 0]);
    assert_eq!(clashes(&snap), 2.0);
    assert!(snap.plugins.iter().all(|p| p.status == PluginStatus::Ok));
    // The exposition has one family, two series.
    let text = vitals::export::render_prometheus(&snap);
    assert_eq!(
        text.matches("# TYPE disk_free_bytes gauge").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("disk_free_bytes{").count(), 2, "{text}");
}

#[test]
fn a_name_no_plugin_reports_any_more_is_free_again() {
    let metrics = MetricsCollector::new();
    let plugin = metrics
        .register(fixed(
            "temp",
            vec![(MetricKind::Gauge, "temp_celsius", vec![], 40.0)],
        ))
        .unwrap();
    assert_eq!(metrics.snapshot().gauge("temp_celsius", &[]), Some(40.0));
    plugin.set_enabled(false);
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("temp_celsius", &[]), None);
    assert_eq!(snap.plugin("temp").unwrap().status, PluginStatus::Disabled);
    // Disabled, its series left: the program may now use the name.
    metrics.try_gauge("temp_celsius", &[]).unwrap().set(1.0);
    plugin.set_enabled(true);
    let snap = metrics.snapshot();
    assert_eq!(snap.gauge("temp_celsius", &[]), Some(1.0));
    assert_eq!(clashes(&snap), 1.0);
}

#[test]
fn described_plugin_metrics_carry_their_unit_to_openmetrics() {
    let metrics = MetricsCollector::new();
    metrics
        .register(Fixed {
            name: "heap",
            samples: vec![(MetricKind::Gauge, "heap_used_bytes", vec![], 1024.0)],
            describe: true,
        })
        .unwrap();
    let text = vitals::export::render_openmetrics(&metrics.snapshot());
    assert!(text.contains("# UNIT heap_used_bytes bytes\n"), "{text}");
    assert!(
        text.contains("# HELP heap_used_bytes Described by its plug-in.\n"),
        "{text}"
    );
    assert!(text.contains("heap_used_bytes 1024"), "{text}");
}

#[test]
fn a_schema_2_line_reads_with_its_plugin_samples_as_series() {
    let line = r#"{"schema_version":2,"timestamp_unix_ms":1790000000000,"uptime_seconds":5.0,
        "counters":[{"name":"requests_total","labels":{},"value":3,"rate":null}],
        "gauges":[{"name":"queue_depth","labels":{},"value":1.0}],
        "histograms":[],
        "metadata":[{"name":"queue_depth","kind":"gauge","help":null,"unit":null},
                    {"name":"requests_total","kind":"counter","help":null,"unit":null}],
        "first_error":null,
        "plugins":[{"name":"process","status":"ok",
          "samples":[{"name":"process_cpu_seconds_total","labels":{},"kind":"counter","value":0.25},
                     {"name":"process_disk_read_bytes","labels":{},"kind":"gauge","value":512.0},
                     {"name":"queue_depth","labels":{},"kind":"gauge","value":9.0},
                     {"name":"bad_total","labels":{},"kind":"counter","value":-1.0}],
          "stats":{"collections":2,"errors":0,"timeouts":0,"last_error":null,
                   "last_duration_seconds":0.001,"last_success_age_seconds":0.5,
                   "interval_seconds":1.0,"deadline_seconds":1.0}}]}"#;
    let snap: Snapshot = serde_json::from_str(line).unwrap();
    assert_eq!(snap.schema_version, 2);
    assert_eq!(snap.counter("process_cpu_seconds_total", &[]), Some(0.25));
    assert_eq!(
        snap.counter_sample("process_cpu_seconds_total", &[])
            .unwrap()
            .rate,
        None
    );
    // The per-reading disk gauge under its new name.
    assert_eq!(
        snap.gauge("process_disk_interval_read_bytes", &[]),
        Some(512.0)
    );
    assert_eq!(snap.gauge("process_disk_read_bytes", &[]), None);
    // The program's series keep their name; a negative counter is left out.
    assert_eq!(snap.gauge("queue_depth", &[]), Some(1.0));
    assert_eq!(snap.counter("bad_total", &[]), None);
    assert_eq!(snap.counter("requests_total", &[]), Some(3.0));
    assert_eq!(
        snap.metadata("process_cpu_seconds_total").unwrap().kind,
        MetricKind::Counter
    );
    assert!(snap.counters.windows(2).all(|w| w[0].name <= w[1].name));
    assert_eq!(snap.plugin("process").unwrap().stats.series, 4);
    // Written again, it is a version-3 shape that reads back the same.
    let again: Snapshot = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
    assert_eq!(again, snap);
    assert_ne!(snap.schema_version, SCHEMA_VERSION);
}

#[test]
fn counter_values_keep_their_type_through_json() {
    for (value, text) in [
        (CounterValue::Int(u64::MAX), "18446744073709551615"),
        (CounterValue::Int(0), "0"),
        (CounterValue::Float(2.0), "2.0"),
        (CounterValue::Float(0.1), "0.1"),
    ] {
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        assert_eq!(serde_json::from_str::<CounterValue>(text).unwrap(), value);
    }
    for bad in ["-1", "-0.5", "\"NaN\"", "null", "1e400"] {
        assert!(serde_json::from_str::<CounterValue>(bad).is_err(), "{bad}");
    }
    let negative_zero: CounterValue = serde_json::from_str("-0.0").unwrap();
    assert!(matches!(negative_zero, CounterValue::Float(z) if z == 0.0 && z.is_sign_positive()));
}

#[cfg(feature = "system")]
#[test]
fn the_process_cpu_total_is_a_counter_of_the_snapshot() {
    // Spend some CPU first: the plug-in's first reading is taken when it is
    // registered (it samples in the background), so that reading must
    // already see the time spent.
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    let metrics = MetricsCollector::new();
    metrics
        .register(vitals::collectors::ProcessCollector::new())
        .unwrap();
    let snap = metrics.snapshot();
    let cpu = snap.counter("process_cpu_seconds_total", &[]).unwrap();
    assert!(cpu > 0.0, "{cpu}");
    let info = snap.metadata("process_cpu_seconds_total").unwrap();
    assert_eq!(
        (info.kind, info.unit.as_deref()),
        (MetricKind::Counter, Some("seconds"))
    );
    assert!(snap.gauge("process_resident_memory_bytes", &[]).unwrap() > 0.0);
    assert!(snap
        .gauge("process_disk_interval_read_bytes", &[])
        .is_some());
}

#[cfg(all(feature = "system", feature = "history"))]
#[test]
fn history_keeps_the_real_process_memory_for_an_hour() {
    use vitals::history::{Aggregation, History, Query};
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    metrics
        .register(vitals::collectors::ProcessCollector::new())
        .unwrap();
    let history = History::new();
    // An hour of snapshots, one every 10 s of the manual clock.
    for _ in 0..361 {
        history.ingest(&metrics.snapshot()).unwrap();
        clock.advance(Duration::from_secs(10));
    }
    let now = history.newest_unix_ms().unwrap();
    let query = Query::new("process_resident_memory_bytes", Aggregation::Max)
        .range(now - 3_600_000, now + 1)
        .max_points(60);
    let result = history.query(&query).unwrap();
    assert_eq!(result.series.len(), 1);
    let points = &result.series[0].points;
    // The hour is covered, in at most 60 points.
    assert!((25..=60).contains(&points.len()), "{} points", points.len());
    let first = points.first().unwrap().timestamp_unix_ms;
    assert!(
        first <= now - 55 * 60_000,
        "first point {} ms before now",
        now - first
    );
    assert!(points.iter().all(|p| p.value > 1e6), "{points:?}");
    let cpu = Query::new("process_cpu_seconds_total", Aggregation::Rate)
        .range(now - 3_600_000, now + 1)
        .max_points(6);
    let cpu = history.query(&cpu).unwrap();
    assert_eq!(cpu.series.len(), 1);
    assert!(cpu.series[0].points.iter().all(|p| p.value >= 0.0));
}
