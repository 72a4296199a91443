//! Prometheus / OpenMetrics text, the table and the status line, through the
//! public API: naming, escaping, non-finite values, summaries and bucketed
//! histograms, bucket validation, and malformed hand-made snapshots.

use std::sync::Arc;

use vitals::export::{
    render_openmetrics, render_prometheus, render_table, status_line, TextFormat, TextRenderer,
};
use vitals::histogram::MAX_BUCKETS;
use vitals::snapshot::{CounterSample, GaugeSample};
use vitals::{Error, MetricKind, MetricsCollector, Snapshot};

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn counters_are_named_with_total_in_both_formats() {
    let m = MetricsCollector::new();
    m.describe(MetricKind::Counter, "requests_total", None, "Requests.");
    m.counter("requests_total", &[]).increment(3);
    m.counter("jobs", &[]).increment(4);
    let snap = m.snapshot();
    let prom = render_prometheus(&snap);
    assert!(prom.contains(
        "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total 3\n"
    ));
    assert!(prom.contains("# TYPE jobs_total counter\njobs_total 4\n"));
    assert!(!prom.contains("# EOF"));
    let om = render_openmetrics(&snap);
    assert!(om.contains("# TYPE requests counter\n# HELP requests Requests.\nrequests_total 3\n"));
    assert!(om.contains("# TYPE jobs counter\njobs_total 4\n"));
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(om.matches("# EOF").count(), 1);
}

#[test]
fn label_values_and_help_are_escaped() {
    let m = MetricsCollector::new();
    m.describe(
        MetricKind::Gauge,
        "odd",
        None,
        "back\\slash, new\nline, \"quotes\"",
    );
    m.gauge("odd", &[("v", "a\"b\\c\nd ✓")]).set(1.0);
    let snap = m.snapshot();
    let prom = render_prometheus(&snap);
    assert!(
        prom.contains("# HELP odd back\\\\slash, new\\nline, \"quotes\"\n"),
        "{prom}"
    );
    assert!(
        prom.contains("odd{v=\"a\\\"b\\\\c\\nd ✓\"} 1.0\n"),
        "{prom}"
    );
    let om = render_openmetrics(&snap);
    assert!(
        om.contains("# HELP odd back\\\\slash, new\\nline, \\\"quotes\\\"\n"),
        "{om}"
    );
    assert!(om.contains("odd{v=\"a\\\"b\\\\c\\nd ✓\"} 1.0\n"), "{om}");
    // No raw newline inside any line: every line is a comment or a sample.
    for line in lines(&om) {
        assert!(line.starts_with('#') || line.starts_with("odd"), "{line}");
    }
}

#[test]
fn non_finite_gauges_are_spelled_as_the_formats_require() {
    let m = MetricsCollector::new();
    for (k, v) in [
        ("nan", f64::NAN),
        ("pos", f64::INFINITY),
        ("neg", f64::NEG_INFINITY),
        ("tiny", 1e-300),
        ("big", 1e300),
        ("int", 42.0),
    ] {
        m.gauge("g", &[("k", k)]).set(v);
    }
    let snap = m.snapshot();
    for text in [render_prometheus(&snap), render_openmetrics(&snap)] {
        assert!(text.contains("g{k=\"nan\"} NaN\n"));
        assert!(text.contains("g{k=\"pos\"} +Inf\n"));
        assert!(text.contains("g{k=\"neg\"} -Inf\n"));
        assert!(text.contains("g{k=\"tiny\"} 1e-300\n"));
        assert!(text.contains("g{k=\"big\"} 1e+300\n"));
        assert!(text.contains("g{k=\"int\"} 42.0\n"));
    }
}

#[test]
fn histograms_are_summaries_with_window_quantiles_and_lifetime_sum_and_count() {
    let m = MetricsCollector::new();
    let h = m.histogram("latency_seconds", &[("route", "/")]);
    for v in 1..=100 {
        h.record(f64::from(v));
    }
    let _ = m.histogram("latency_seconds", &[("route", "/idle")]);
    let snap = m.snapshot();
    let q = snap
        .histogram("latency_seconds", &[("route", "/")])
        .unwrap()
        .window
        .quantiles
        .unwrap();
    let prom = render_prometheus(&snap);
    assert!(prom.contains("# TYPE latency_seconds summary\n"));
    assert!(prom.contains(&format!(
        "latency_seconds{{route=\"/\",quantile=\"0.99\"}} {:?}\n",
        q.p99
    )));
    assert!(prom.contains("latency_seconds_sum{route=\"/\"} 5050.0\n"));
    assert!(prom.contains("latency_seconds_count{route=\"/\"} 100\n"));
    // An empty window has no quantiles: NaN, as Prometheus clients write.
    assert!(prom.contains("latency_seconds{route=\"/idle\",quantile=\"0.5\"} NaN\n"));
    assert!(prom.contains("latency_seconds_count{route=\"/idle\"} 0\n"));
}

#[test]
fn configured_buckets_render_a_cumulative_histogram_ending_with_inf() {
    let m = MetricsCollector::new();
    m.describe(
        MetricKind::Histogram,
        "size_bytes",
        Some(vitals::Unit::Bytes),
        "Sizes.",
    );
    m.configure_histogram_buckets("size_bytes", &[10.0, 100.0, 1000.0])
        .unwrap();
    let h = m.histogram("size_bytes", &[]);
    for v in [1.0, 10.0, 11.0, 500.0, 5000.0, f64::INFINITY, f64::NAN] {
        h.record(v);
    }
    let snap = m.snapshot();
    let om = render_openmetrics(&snap);
    let expected =
        "# TYPE size_bytes histogram\n# UNIT size_bytes bytes\n# HELP size_bytes Sizes.\n\
size_bytes_bucket{le=\"10.0\"} 2\n\
size_bytes_bucket{le=\"100.0\"} 3\n\
size_bytes_bucket{le=\"1000.0\"} 4\n\
size_bytes_bucket{le=\"+Inf\"} 6\n";
    assert!(om.contains(expected), "{om}");
    assert!(om.contains("size_bytes_count 6\n"));
    let prom = render_prometheus(&snap);
    assert!(prom.contains("# TYPE size_bytes histogram\n"));
    assert!(prom.contains("size_bytes_bucket{le=\"+Inf\"} 6\n"));
}

#[test]
fn bucket_bounds_are_validated() {
    let m = MetricsCollector::new();
    let bad: [&[f64]; 6] = [
        &[],
        &[1.0, 1.0],
        &[2.0, 1.0],
        &[f64::NAN],
        &[1.0, f64::INFINITY],
        &[-1.0, 1.0],
    ];
    for bounds in bad {
        let err = m.configure_histogram_buckets("h", bounds).unwrap_err();
        assert!(
            matches!(err, Error::InvalidConfig(_)),
            "{bounds:?}: {err:?}"
        );
    }
    let too_many: Vec<f64> = (0..=MAX_BUCKETS).map(|i| i as f64).collect();
    assert!(m.configure_histogram_buckets("h", &too_many).is_err());
    assert!(m
        .configure_histogram_buckets("h", &too_many[..MAX_BUCKETS])
        .is_ok());
    // After the first series, or on another kind: refused.
    m.histogram("h", &[]).record(1.0);
    assert!(m.configure_histogram_buckets("h", &[1.0]).is_err());
    m.counter("c_total", &[]).inc();
    let err = m
        .configure_histogram_buckets("c_total", &[1.0])
        .unwrap_err();
    assert!(matches!(err, Error::KindMismatch { .. }));
    assert!(m.configure_histogram_buckets("bad name", &[1.0]).is_err());
}

fn counter(name: &str, labels: &[(&str, &str)], value: u64) -> CounterSample {
    CounterSample::new(name, labels, value)
}

#[test]
fn a_malformed_snapshot_renders_without_duplicates_or_split_families() {
    let m = MetricsCollector::new();
    let mut snap: Snapshot = m.snapshot();
    snap.counters = vec![
        counter("a_total", &[("k", "1")], 1),
        counter("b_total", &[], 2),
        counter("a_total", &[("k", "2")], 3),
        counter("a_total", &[("k", "1")], 4), // duplicate series
    ];
    // Clashes with counter family `b`.
    snap.gauges = vec![GaugeSample::new("b", &[], 1.0)];
    for format in [TextFormat::Prometheus, TextFormat::OpenMetrics] {
        let mut out = String::new();
        let report = TextRenderer::new(format).render_into(&snap, &mut out);
        assert_eq!(report.duplicate_series, 1);
        assert_eq!(report.clashing_families, ["b"]);
        assert_eq!(out.matches("a_total{k=\"1\"}").count(), 1, "{out}");
        assert!(
            out.contains("a_total{k=\"1\"} 1\na_total{k=\"2\"} 3\n"),
            "{out}"
        );
        assert!(!out.contains("\nb 1.0"));
        assert_eq!(out.matches("# TYPE a").count(), 1);
    }
}

#[test]
fn the_renderer_is_reusable_and_appends() {
    let m = MetricsCollector::new();
    m.counter("x_total", &[]).inc();
    let snap = m.snapshot();
    let mut renderer = TextRenderer::new(TextFormat::Prometheus);
    let mut out = String::new();
    renderer.render_into(&snap, &mut out);
    let once = out.clone();
    out.clear();
    let report = renderer.render_into(&snap, &mut out);
    assert_eq!(out, once);
    assert!(report.clashing_families.is_empty());
    assert_eq!(
        TextFormat::Prometheus.content_type(),
        vitals::export::PROMETHEUS_CONTENT_TYPE
    );
}

#[test]
fn the_table_and_status_line_show_units_and_separators() {
    let clock = Arc::new(vitals::ManualClock::new());
    let m = MetricsCollector::builder().clock(clock.clone()).build();
    m.counter("http_requests_total", &[("code", "200")])
        .increment(1_234_567);
    let _ = m.counter("http_requests_total", &[("code", "500")]);
    m.counter("unrelated_total", &[]).increment(99);
    m.gauge("queue_depth", &[]).set(12.0);
    m.gauge("process_cpu_usage_ratio", &[]).set(0.452);
    m.gauge("process_resident_memory_bytes", &[])
        .set(1.8 * 1024.0 * 1024.0 * 1024.0);
    let h = m.histogram("request_duration_seconds", &[]);
    for _ in 0..100 {
        h.record(0.0123);
    }
    m.histogram("other_seconds", &[]).record(5.0);
    clock.advance(std::time::Duration::from_secs(10));
    m.counter("http_requests_total", &[("code", "500")])
        .increment(1200);
    let snap = m.snapshot();
    let table = render_table(&snap);
    assert!(table.contains("1,234,567"), "{table}");
    // A whole gauge value has no decimals.
    assert!(
        table.contains("queue_depth ") && !table.contains("12.00"),
        "{table}"
    );
    assert!(table.contains("12.3ms"), "{table}");
    assert!(table.contains("HISTOGRAM"), "{table}");
    let status = status_line(&snap);
    // The rates of both `*requests_total` series: (1,234,567 + 1,200) / 10 s.
    assert_eq!(
        status,
        "CPU: 45.2%, Mem: 1.80GiB, req/s: 123,577, p99: 12.3ms"
    );
    assert_eq!(
        status_line(&MetricsCollector::new().snapshot()),
        "no activity"
    );
}

#[cfg(feature = "system")]
#[test]
fn plugin_samples_reach_the_text_formats_the_table_and_the_status_line() {
    use vitals::collectors::{ProcessCollector, SystemCollector};
    let m = vitals::MetricsCollector::new();
    m.register(SystemCollector::new()).unwrap();
    m.register(ProcessCollector::new()).unwrap();
    // The first CPU reading needs a baseline; the second has one.
    m.snapshot();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let snap = m.snapshot();
    let text = vitals::export::render_prometheus(&snap);
    // Plug-in values are series with the help text and unit their
    // plug-in gave them.
    assert!(
        text.contains("# HELP system_memory_total_bytes Memory of the machine.\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{text}"
    );
    assert!(snap.counter("process_cpu_seconds_total", &[]).is_some());
    assert!(text.contains("# TYPE process_resident_memory_bytes gauge\n"));
    let open = vitals::export::render_openmetrics(&snap);
    assert!(open.contains("process_resident_memory_bytes "));
    assert!(
        open.contains("# UNIT process_resident_memory_bytes bytes\n"),
        "{open}"
    );
    assert!(open.ends_with("# EOF\n"));
    let table = vitals::export::render_table(&snap);
    assert!(table.contains("PLUG-IN system (ok, "), "{table}");
    assert!(table.contains("system_memory_total_bytes"), "{table}");
    let status = vitals::export::status_line(&snap);
    assert!(status.contains("Mem: "), "{status}");
}
