//! What a person reads in a terminal: the table, the status line and the
//! dashboard, from hand-made snapshots, at 80 and 150 columns. Each
//! formatting rule of `vitals::export::display` is checked where it shows.

use std::sync::Arc;
use std::time::Duration;

use vitals::export::display::{display_width, Quantity};
use vitals::export::table::render_table_width;
use vitals::export::{service_p99, status_line, Dashboard};
use vitals::snapshot::{CounterSample, GaugeSample, HistogramSample, HistogramSummary, MetricInfo};
use vitals::{ManualClock, MetricKind, MetricsCollector, Snapshot};

/// 2026-11-30 10:00:00 UTC.
const NOW_MS: u64 = 1_796_032_800_000;

fn info(name: &str, kind: MetricKind, unit: Option<&str>) -> MetricInfo {
    let mut m = MetricInfo::new(name, kind);
    m.unit = unit.map(str::to_owned);
    m
}

/// The window summary of `values` recorded into one histogram of a
/// collector that keeps bucket state (so that merges are exact).
fn summary(values: impl IntoIterator<Item = f64>) -> HistogramSummary {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = m.histogram("h", &[]);
    values.into_iter().for_each(|v| h.record(v));
    m.snapshot().histogram("h", &[]).unwrap().clone()
}

/// A snapshot as the process, system and api plug-ins and a program would
/// leave it, with counters that have rates (taken over 10 s of a manual
/// clock).
fn service_snapshot() -> Snapshot {
    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder().clock(clock.clone()).build();
    let _ = m.counter("http_requests_total", &[("route", "/api/orders")]);
    let _ = m.counter("http_requests_total", &[("route", "/static/app.js")]);
    let _ = m.counter("sent_bytes_total", &[]);
    m.snapshot();
    clock.advance(Duration::from_secs(10));
    m.counter("http_requests_total", &[("route", "/api/orders")])
        .increment(200);
    m.counter("http_requests_total", &[("route", "/static/app.js")])
        .increment(1_000);
    m.counter("sent_bytes_total", &[]).increment(25 << 20);
    let mut snap = m.snapshot();
    snap.timestamp_unix_ms = NOW_MS;
    snap.uptime_seconds = 3723.0;
    snap.counters.push(CounterSample::new(
        "process_cpu_seconds_total",
        &[],
        vitals::snapshot::CounterValue::Float(12.345),
    ));
    let gauges = [
        ("system_memory_total_bytes", 25_276_510_208.0),
        ("system_memory_used_bytes", 14_276_510_208.0),
        ("system_cpu_usage_percent", 52.5),
        ("process_pid", 24_834.0),
        ("process_start_time_seconds", 1_796_025_600.0), // 2 h before NOW
        ("system_boot_time_seconds", 1_795_000_000.0),
        ("process_threads", 8.0),
        ("process_resident_memory_bytes", 2_412_544.0),
        ("process_cpu_usage_percent", 5.0),
        ("cache_hit_ratio", 0.873),
        ("queue_size", 3_145_728.0), // bytes by its metadata only
        ("temperature", 21.5),
    ];
    for (name, value) in gauges {
        snap.gauges.push(GaugeSample::new(name, &[], value));
    }
    snap.gauges.push(GaugeSample::new(
        "label_escapes",
        &[("user", "\x1b[2J\u{202e}evil")],
        1.0,
    ));
    snap.metadata
        .push(info("queue_size", MetricKind::Gauge, Some("bytes")));
    snap.metadata.push(info(
        "system_boot_time_seconds",
        MetricKind::Gauge,
        Some("seconds"),
    ));
    // Latency described in milliseconds: /static is busy and fast, /api/orders slow.
    snap.metadata.push(info(
        "http_request_duration",
        MetricKind::Histogram,
        Some("milliseconds"),
    ));
    let fast = summary((0..2000).map(|i| 3.0 + f64::from(i % 4)));
    let slow = summary((0..100).map(|i| 150.0 + f64::from(i)));
    snap.histograms.push(HistogramSample::new(
        "http_request_duration",
        &[("route", "/static/app.js")],
        fast,
    ));
    snap.histograms.push(HistogramSample::new(
        "http_request_duration",
        &[("route", "/api/orders")],
        slow,
    ));
    // Busier, but not a duration: not the service's p99.
    let sizes = summary((0..5000).map(f64::from));
    snap.histograms
        .push(HistogramSample::new("batch_items", &[], sizes));
    let long = format!("a_metric_name_that_goes_on_{}_seconds", "and_on_".repeat(8));
    snap.histograms.push(HistogramSample::new(
        &long,
        &[("endpoint", "/api/orders/{id}/items"), ("method", "GET")],
        summary([0.25, 0.5]),
    ));
    snap
}

/// The line that starts with `starts` and has `part` in it.
fn row_with<'a>(table: &'a str, starts: &str, part: &str) -> &'a str {
    table
        .lines()
        .find(|l| {
            l.starts_with(starts) && l.contains(part) && !l.starts_with("http_requests_total")
        })
        .unwrap_or_else(|| panic!("no row {starts:?}…{part:?} in\n{table}"))
}

fn row<'a>(table: &'a str, starts: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(starts))
        .unwrap_or_else(|| panic!("no row {starts:?} in\n{table}"))
}

/// The last `n` whitespace-separated cells of a row.
fn cells(line: &str, n: usize) -> Vec<&str> {
    let all: Vec<&str> = line.split_whitespace().collect();
    all[all.len().saturating_sub(n)..].to_vec()
}

fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            display_width(line) <= width,
            "{} > {width}: {line:?}",
            display_width(line)
        );
        assert!(line.chars().count() <= width, "{line:?}");
    }
}

#[test]
fn the_table_shows_each_value_in_its_unit_at_80_and_150_columns() {
    let snap = service_snapshot();
    for width in [80, 150] {
        let table = render_table_width(&snap, width);
        assert_fits(&table, width);
        // Sizes: from the metadata or the `_bytes` suffix, powers of 1024.
        assert!(
            row(&table, "system_memory_total_bytes ").ends_with(" 23.5GiB"),
            "{table}"
        );
        assert!(row(&table, "process_resident_memory_bytes ").ends_with(" 2.30MiB"));
        assert!(row(&table, "queue_size ").ends_with(" 3.00MiB"));
        // Whole values without decimals.
        assert!(row(&table, "process_pid ").ends_with(" 24,834"));
        assert!(row(&table, "process_threads ").ends_with(" 8"));
        assert!(row(&table, "temperature ").ends_with(" 21.50"));
        // Percent and ratio.
        assert!(row(&table, "system_cpu_usage_percent ").ends_with(" 52.5%"));
        assert!(row(&table, "cache_hit_ratio ").ends_with(" 87.3%"));
        // Points in time as ages at the snapshot's time, whatever the unit says.
        assert!(row(&table, "process_start_time_seconds ").ends_with(" 2h 0m ago"));
        assert!(row(&table, "system_boot_time_seconds ").ends_with(" 11d 22h ago"));
        // Counters: totals with separators, rates per second in their unit;
        // CPU seconds as a duration and a share of one core.
        let orders = row(&table, r#"http_requests_total{route="/api/orders"}"#);
        assert_eq!(cells(orders, 2), ["200", "20.0/s"], "{table}");
        assert_eq!(
            cells(row(&table, "sent_bytes_total "), 2),
            ["25.0MiB", "2.50MiB/s"]
        );
        assert_eq!(
            cells(row(&table, "process_cpu_seconds_total "), 2),
            ["12.3s", "-"]
        );
        // A histogram described in milliseconds: count, then durations.
        let fast = row_with(&table, "http_reque", r#"app.js"}"#);
        let fast = cells(fast, if width == 80 { 5 } else { 6 });
        assert_eq!(fast[0], "2,000");
        assert!(
            fast[1..]
                .iter()
                .all(|c| c.ends_with("ms") && c.starts_with(['3', '4', '5', '6'])),
            "{fast:?}"
        );
        // Control characters escaped.
        assert!(table.contains(r#"label_escapes{user="\x1b[2J\u{202e}evil"}"#));
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'));
    }
}

#[test]
fn narrow_tables_shorten_names_and_leave_out_columns_wide_ones_keep() {
    let snap = service_snapshot();
    let wide = render_table_width(&snap, 150);
    let narrow = render_table_width(&snap, 80);
    let header = |t: &str| {
        row(t, "HISTOGRAM (window)")
            .split_whitespace()
            .skip(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(header(&wide), "COUNT AVG MIN MAX P95 P99");
    assert_eq!(header(&narrow), "COUNT AVG MAX P95 P99");
    // The long histogram: name cut with `…`, label set kept.
    // At 80 columns the long histogram's label keys go, its values stay
    // (the long one cut in its middle); the others keep their keys.
    let long = row(&narrow, "a_metric_name…{");
    assert!(
        long.contains("…{/api") && long.contains("/items,GET}  "),
        "{long}"
    );
    assert!(row_with(&narrow, "http_reque", r#"…{route="/static/app.js"}"#).contains("2,000"));
    let long = row(&wide, "a_metric_name_that_goes_on_");
    assert!(
        long.contains(r#"…{endpoint="/api/orders/{id}/items",method="GET"}"#),
        "{long}"
    );
    // Columns sized to content: the value column is as wide as its widest
    // cell, so all gauge values end in the same column.
    let gauge_ends: Vec<usize> = narrow
        .lines()
        .skip_while(|l| !l.starts_with("GAUGE"))
        .take_while(|l| !l.is_empty())
        .map(display_width)
        .collect();
    assert!(
        gauge_ends.len() > 10 && gauge_ends.iter().all(|w| *w == gauge_ends[0]),
        "{narrow}"
    );
    assert!(
        gauge_ends[0] < 80,
        "names are short: the line is narrower than the terminal"
    );
}

#[test]
fn the_status_line_follows_its_documented_rule() {
    let snap = service_snapshot();
    // Process first, then req/s over both routes (1,200 in 10 s), the
    // service-wide p99 of both routes merged (rank 2,079 of 2,100: the 79th
    // slow value, 228 ms), then the machine, labelled.
    let p99 = service_p99(&snap).unwrap();
    let shown = vitals::export::display::format_value(p99.value, p99.quantity);
    assert_eq!(
        status_line(&snap),
        format!(
            "CPU: 5.0%, Mem: 2.30MiB, req/s: 120, p99: {shown}, machine CPU: 52.5%, \
             machine Mem: 13.3GiB/23.5GiB"
        )
    );
    assert!(p99.exact);
    assert_eq!(
        (&*p99.name, p99.series, p99.count),
        ("http_request_duration", 2, 2100)
    );
    assert_eq!(p99.quantity, Quantity::Milliseconds);
    // Neither route's own p99 is the service's.
    let own = |route| {
        snap.histogram("http_request_duration", &[("route", route)])
            .unwrap()
            .window
            .quantiles
            .unwrap()
            .p99
    };
    assert!(own("/static/app.js") < 7.0 && own("/api/orders") > 240.0);
    assert!((p99.value - 228.0).abs() <= 228.0 * 0.006, "{p99:?}");

    // Only the machine's figures: labelled as the machine's, never as the process's.
    let mut machine = MetricsCollector::new().snapshot();
    machine
        .gauges
        .push(GaugeSample::new("system_cpu_usage_percent", &[], 52.5));
    machine
        .gauges
        .push(GaugeSample::new("system_memory_used_bytes", &[], 1024.0));
    assert_eq!(
        status_line(&machine),
        "machine CPU: 52.5%, machine Mem: 1.00KiB"
    );
    // Ratios as percent.
    let mut ratio = MetricsCollector::new().snapshot();
    ratio
        .gauges
        .push(GaugeSample::new("process_cpu_usage_ratio", &[], 0.452));
    assert_eq!(status_line(&ratio), "CPU: 45.2%");
}

#[test]
fn the_dashboard_fits_80x24_and_150x50_with_its_title_and_sparklines() {
    let clock = Arc::new(ManualClock::new());
    let m = MetricsCollector::builder().clock(clock.clone()).build();
    let mut dashboard = Dashboard::new().title("shop");
    let mut snap = m.snapshot();
    for tick in 0..40u32 {
        for route in 0..30 {
            let r = format!("/api/route/with/a/long/path/{route}");
            m.counter("http_requests_total", &[("route", &r), ("method", "GET")])
                .increment(u64::from(tick % 7 + route));
            m.histogram("http_request_duration_seconds", &[("route", &r)])
                .record(0.001 * f64::from(tick % 5 + 1));
        }
        clock.advance(Duration::from_secs(1));
        snap = m.snapshot();
        dashboard.update(&snap);
    }
    for (w, h) in [(80, 24), (150, 50)] {
        let frame = dashboard.render(&snap, w, h);
        assert_fits(&frame, w);
        let lines: Vec<&str> = frame.lines().collect();
        assert!(
            lines.len() <= h && lines.len() >= h - 1,
            "{} lines at {w}x{h}",
            lines.len()
        );
        assert!(lines[0].starts_with("shop · up 40s · "), "{}", lines[0]);
        assert!(lines[1].starts_with("req/s: "), "{}", lines[1]);
        let counters = lines.iter().position(|l| l.starts_with("COUNTER")).unwrap();
        let histograms = lines
            .iter()
            .position(|l| l.starts_with("HISTOGRAM"))
            .unwrap();
        assert!(counters < histograms);
        // Both sections get rows; rows carry a sparkline of their history.
        assert!(histograms - counters > 3);
        assert!(lines.len() - histograms > 3);
        let spark = |l: &&str| l.chars().filter(|c| ('▁'..='█').contains(c)).count();
        let widths: Vec<usize> = lines[counters + 1..histograms - 1]
            .iter()
            .map(spark)
            .collect();
        assert!(
            widths.iter().all(|n| *n == (w / 4).min(30)),
            "{widths:?}\n{frame}"
        );
        // The busiest first, the end of its label values kept (the middle
        // cut at 80 columns).
        let first = lines[counters + 1];
        if w == 80 {
            assert!(
                first.starts_with("http_requests_") && first.contains("{GET,/api/"),
                "{first}"
            );
            assert!(first.contains("…") && first.contains("path/29}"), "{first}");
        } else {
            let full =
                r#"http_requests_total{method="GET",route="/api/route/with/a/long/path/29"}"#;
            assert!(first.starts_with(full), "{first}");
        }
    }
}

mod any_input {
    use super::*;
    use proptest::prelude::*;

    fn snapshot(series: &[(String, String, f64)]) -> Snapshot {
        let mut snap = MetricsCollector::new().snapshot();
        for (name, label, value) in series {
            snap.gauges
                .push(GaugeSample::new(name, &[("k", label)], *value));
            snap.counters.push(CounterSample::new(
                name,
                &[("k", label)],
                value.abs() as u64,
            ));
            snap.histograms.push(HistogramSample::new(
                name,
                &[("k", label)],
                summary([value.abs().min(1e12)]),
            ));
        }
        snap
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any names, label values (control characters, wide characters,
        /// quotes) and values, at any size: every line fits, nothing panics.
        #[test]
        fn every_line_fits_whatever_the_input_and_the_size(
            series in proptest::collection::vec(
                ("[a-z_]{1,80}(_bytes|_seconds|_ratio|_timestamp_seconds)?", "\\PC{0,60}|[\\x00-\\x1f\"\\\\,{}=東]{0,20}", proptest::num::f64::ANY),
                1..6,
            ),
            width in 0usize..200,
            height in 0usize..60,
        ) {
            let snap = snapshot(&series);
            let table = render_table_width(&snap, width);
            for line in table.lines() {
                prop_assert!(display_width(line) <= width, "{line:?} at {width}");
            }
            let mut dashboard = Dashboard::new();
            dashboard.update(&snap);
            let frame = dashboard.render(&snap, width, height);
            prop_assert!(frame.lines().count() <= height);
            for line in frame.lines() {
                prop_assert!(display_width(line) <= width, "{line:?} at {width}");
                prop_assert!(!line.chars().any(char::is_control));
            }
            let status = status_line(&snap);
            prop_assert!(!status.chars().any(char::is_control));
        }
    }
}
