//! Unit tests of the OTLP point making, coalescing and encoding.

use super::set::{MetricSet, Point, Shape, Value};
use super::*;
use crate::export::push::delivery::Backlog;
use crate::key::Labels;
use crate::snapshot::SparseBuckets;

fn at(metrics: &MetricsCollector, ms: u64) -> Snapshot {
    let mut s = metrics.snapshot();
    s.timestamp_unix_ms = ms;
    s.uptime_seconds = 10.0;
    s
}

fn point<'a>(set: &'a MetricSet, name: &str, shape: Shape) -> &'a Point {
    let m = set.metrics.get(&(Arc::from(name), shape)).unwrap();
    m.points.values().next().unwrap()
}

use std::sync::Arc;

fn int(p: &Point) -> i64 {
    match p.value {
        Value::Int(v) => v,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn cumulative_points_keep_one_start_per_series() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let c = m.counter("jobs_total", &[]);
    let h = m.histogram("latency_seconds", &[]);
    let mut maker = PointMaker::new(Temporality::Cumulative, false);
    c.increment(3);
    h.record(0.5);
    let first = maker.points(&at(&m, 100_000));
    // The collector's start: the snapshot time less the uptime.
    let origin = 90_000 * 1_000_000;
    assert_eq!(point(&first, "jobs_total", Shape::Sum).start_ns, origin);
    assert_eq!(int(point(&first, "jobs_total", Shape::Sum)), 3);
    c.increment(4);
    h.record(0.0);
    m.counter("late_total", &[]).inc();
    let second = maker.points(&at(&m, 110_000));
    let p = point(&second, "jobs_total", Shape::Sum);
    assert_eq!(
        (p.start_ns, p.time_ns, int(p)),
        (origin, 110_000_000_000, 7)
    );
    // A series that appeared later starts at the previous snapshot.
    let late = point(&second, "late_total", Shape::Sum);
    assert_eq!(late.start_ns, 100_000_000_000);
    let hp = point(&second, "latency_seconds", Shape::Exponential);
    assert_eq!(hp.start_ns, origin);
    match &hp.value {
        Value::Exponential { buckets, sum, .. } => {
            assert_eq!((buckets.count(), buckets.zeros, *sum), (2, 1, 0.5));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn delta_windows_are_contiguous_and_add_up_to_the_total() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let c = m.counter("jobs_total", &[]);
    let h = m.histogram("latency_seconds", &[]);
    let mut maker = PointMaker::new(Temporality::Delta, false);
    let (mut sum, mut count, mut end) = (0i64, 0u64, None);
    for (i, ms) in [100_000u64, 100_000, 105_000, 200_000]
        .into_iter()
        .enumerate()
    {
        c.increment(i as u64 + 1);
        h.record(i as f64);
        let set = maker.points(&at(&m, ms));
        let p = point(&set, "jobs_total", Shape::Sum);
        assert!(p.start_ns < p.time_ns);
        if let Some(e) = end {
            assert_eq!(p.start_ns, e, "windows touch");
        }
        end = Some(p.time_ns);
        sum += int(p);
        let hp = point(&set, "latency_seconds", Shape::Exponential);
        match &hp.value {
            Value::Exponential { buckets, min, .. } => {
                assert_eq!(buckets.count(), 1);
                assert_eq!(*min, None);
                count += buckets.count();
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sum, 1 + 2 + 3 + 4);
    assert_eq!(count, 4);
}

#[test]
fn a_reset_restarts_the_cumulative_run_and_the_delta_is_the_new_total() {
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let mut maker = PointMaker::new(temporality, false);
        let mut snap = MetricsCollector::new().snapshot();
        snap.uptime_seconds = 1.0;
        snap.counters = vec![crate::snapshot::CounterSample::new("c_total", &[], 10)];
        snap.timestamp_unix_ms = 5_000;
        maker.points(&snap);
        snap.counters = vec![crate::snapshot::CounterSample::new("c_total", &[], 4)];
        snap.timestamp_unix_ms = 6_000;
        let set = maker.points(&snap);
        let p = point(&set, "c_total", Shape::Sum);
        assert_eq!(int(p), 4, "{temporality:?}");
        assert_eq!(p.start_ns, 5_000_000_000, "{temporality:?}");
    }
}

fn gauge_set(name: &str, labels: &Labels, value: Value, start: u64, end: u64) -> MetricSet {
    let mut set = MetricSet::default();
    let shape = match value {
        Value::Double(_) => Shape::Gauge,
        _ => Shape::Sum,
    };
    set.metrics.entry((Arc::from(name), shape)).points.insert(
        labels.clone(),
        Point {
            start_ns: start,
            time_ns: end,
            value,
            exemplars: Vec::new(),
        },
    );
    set.points = 1;
    set
}

fn head(temporality: Temporality) -> Head {
    Head {
        resource: vec![("service.name".into(), "t".into())],
        scope_name: "vitals".into(),
        scope_version: "0".into(),
        temporality,
        max_buckets: 160,
    }
}

#[test]
fn the_backlog_adds_deltas_and_keeps_the_latest_cumulative_point() {
    let l = Labels::default();
    // Delta: a failed request's points come back merged with what came since.
    let mut b = OtlpBacklog::new(head(Temporality::Delta), OtlpFormat::Json);
    assert!(b
        .add(gauge_set("c", &l, Value::Int(2), 0, 10), false)
        .is_none());
    let first = b.next().unwrap();
    assert_eq!(first.points, 1);
    // Arrives while the first request is on the wire, which then fails.
    assert!(b
        .add(gauge_set("c", &l, Value::Int(3), 10, 20), true)
        .is_none());
    assert!(b
        .add(gauge_set("c", &l, Value::Int(5), 20, 30), false)
        .is_none());
    assert_eq!(b.points(), 1);
    let retry = b.next().unwrap();
    let text = String::from_utf8(retry.body).unwrap();
    assert!(text.contains(r#""asInt":"10""#), "{text}");
    assert!(text.contains(r#""startTimeUnixNano":"0""#), "{text}");
    assert!(text.contains(r#""timeUnixNano":"30""#), "{text}");
    assert!(text.contains(r#""aggregationTemporality":1"#), "{text}");
    b.complete(retry.ticket);
    assert_eq!((b.points(), b.bytes()), (0, 0));
    assert!(b.next().is_none());

    // Cumulative: the latest total replaces, and the older is counted.
    let mut b = OtlpBacklog::new(head(Temporality::Cumulative), OtlpFormat::Json);
    b.add(gauge_set("c", &l, Value::Int(2), 0, 10), false);
    let d = b
        .add(gauge_set("c", &l, Value::Int(5), 0, 20), false)
        .unwrap();
    assert_eq!((d.points, d.reason), (1, "superseded"));
    let out = b.next().unwrap();
    let text = String::from_utf8(out.body).unwrap();
    assert!(text.contains(r#""asInt":"5""#), "{text}");
    // A stale ticket completes nothing.
    b.complete(out.ticket + 1);
    assert_eq!(b.points(), 1);
}

#[test]
fn json_writes_64_bit_integers_as_strings_and_non_finite_doubles_by_name() {
    let m = MetricsCollector::new();
    m.gauge("g", &[]).set(f64::NAN);
    m.gauge("h", &[]).set(f64::NEG_INFINITY);
    m.counter("c_total", &[("k", "v")]).increment(u64::MAX);
    let body = encode_otlp(&m.snapshot(), OtlpFormat::Json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let metrics = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
    let by_name = |n: &str| {
        metrics
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    let c = by_name("c_total");
    // Past i64::MAX: a double.
    assert_eq!(
        c["sum"]["dataPoints"][0]["asDouble"],
        18446744073709551615.0
    );
    assert_eq!(c["sum"]["isMonotonic"], true);
    assert!(c["sum"]["dataPoints"][0]["timeUnixNano"].is_string());
    assert_eq!(
        c["sum"]["dataPoints"][0]["attributes"][0]["value"]["stringValue"],
        "v"
    );
    assert_eq!(by_name("g")["gauge"]["dataPoints"][0]["asDouble"], "NaN");
    assert_eq!(
        by_name("h")["gauge"]["dataPoints"][0]["asDouble"],
        "-Infinity"
    );
}

#[test]
fn wide_exponential_histograms_are_downscaled_to_the_bucket_limit() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = m.histogram("size_bytes", &[]);
    let mut v = 1e-3;
    let mut n = 0;
    while v < 1e6 {
        h.record(v);
        v *= 1.05;
        n += 1;
    }
    let body = encode_otlp(&m.snapshot(), OtlpFormat::Json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let p = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["exponentialHistogram"]
        ["dataPoints"][0];
    let counts: Vec<u64> = p["positive"]["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(counts.len() <= 160, "{}", counts.len());
    assert!(p["scale"].as_i64().unwrap() < 6);
    assert_eq!(counts.iter().sum::<u64>(), n);
    assert_eq!(p["count"], n.to_string());

    // The cut is kept with the snapshot's list: a second encoding (or a
    // remote write of the same snapshot) reuses it, and says the same. The
    // series moved since the encoding above, which asked for the cut: the
    // collector cut the new list as it read it.
    h.record(2.0);
    let snap = m.snapshot();
    let summary = &snap.histograms[0].summary;
    let kept = summary.memo.heap_bytes();
    assert!(kept > 0);
    let first = encode_otlp(&snap, OtlpFormat::Protobuf).unwrap();
    assert_eq!(encode_otlp(&snap, OtlpFormat::Protobuf).unwrap(), first);
    assert_eq!(summary.memo.heap_bytes(), kept);
    // A copy with the list cut by hand (not through the memo) encodes alike.
    let mut by_hand = snap.clone();
    by_hand.histograms[0].summary.memo = Default::default();
    by_hand.histograms[0].summary.limit_buckets(160);
    assert_eq!(encode_otlp(&by_hand, OtlpFormat::Protobuf).unwrap(), first);
}

#[test]
fn configured_bounds_go_as_an_explicit_histogram_whose_buckets_add_up() {
    let m = MetricsCollector::new();
    m.configure_histogram_buckets("d_seconds", &[0.1, 1.0])
        .unwrap();
    let h = m.histogram("d_seconds", &[]);
    for v in [0.05, 0.5, 0.7, 3.0] {
        h.record(v);
    }
    m.histogram("plain", &[]).record(2.0);
    let set = PointMaker::new(Temporality::Cumulative, true).points(&at(&m, 1_000));
    match &point(&set, "d_seconds", Shape::Histogram).value {
        Value::Explicit {
            count,
            counts,
            bounds,
            ..
        } => {
            assert_eq!(
                (*count, counts.as_slice(), &bounds[..]),
                (4, &[1, 2, 1][..], &[0.1, 1.0][..])
            );
        }
        other => panic!("{other:?}"),
    }
    // Without lifetime buckets: count and sum only.
    match &point(&set, "plain", Shape::Histogram).value {
        Value::Explicit {
            count,
            counts,
            bounds,
            sum,
            ..
        } => {
            assert_eq!(
                (*count, counts.as_slice(), bounds.len(), *sum),
                (1, &[1][..], 0, 2.0)
            );
        }
        other => panic!("{other:?}"),
    }
    match &point(&set, "plain_summary", Shape::Summary).value {
        Value::Summary {
            count, quantiles, ..
        } => {
            assert_eq!((*count, quantiles.unwrap().p50), (1, 2.0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn protobuf_and_json_carry_the_same_metrics() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.counter("a_total", &[]).increment(7);
    m.histogram("b", &[]).record(1.5);
    let snap = m.snapshot();
    let pb = encode_otlp(&snap, OtlpFormat::Protobuf).unwrap();
    let js = encode_otlp(&snap, OtlpFormat::Json).unwrap();
    // A (protobuf) Sum with as_int 7: field 6, fixed64, little endian.
    assert!(pb.windows(9).any(|w| w == [0x31, 7, 0, 0, 0, 0, 0, 0, 0]));
    let text = String::from_utf8(js).unwrap();
    assert!(text.contains(r#""exponentialHistogram""#), "{text}");
    assert!(text.contains(r#""service.name""#), "{text}");
}

#[test]
fn the_environment_sets_endpoint_headers_protocol_temporality_and_compression() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let b = OtlpExporter::builder("http://x:1")
        .env_from(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://m:9/custom/path",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=3"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ]))
        .unwrap();
    assert_eq!(b.url(), "http://m:9/custom/path");
    assert_eq!(
        b.headers,
        [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "3".to_owned())
        ]
    );
    assert_eq!(b.format, OtlpFormat::Json);
    assert_eq!(b.temporality, Temporality::Delta);
    assert_eq!(
        b.config.request_timeout,
        std::time::Duration::from_millis(2500)
    );
    assert!(!b.gzip);
    // Empty values count as unset.
    let b = OtlpExporter::builder("http://x:1")
        .env_from(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]))
        .unwrap();
    assert_eq!(b.url(), "http://x:1/v1/metrics");
    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            "sometimes",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        // Parses, but `build` would refuse it: named here instead.
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "99999999999"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://h:+80/v1/metrics",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "content-length=0,host=evil.example",
        ),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x=a%0D%0AEvil: 1"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "bad key=1"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k=%+A"),
    ] {
        let err = OtlpExporter::builder("http://x:1")
            .env_from(|n| (n == var).then(|| value.to_owned()))
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidEnvVar { variable, .. } if variable == var),
            "{err}"
        );
    }
    let gzip = OtlpExporter::builder("http://x:1")
        .env_from(|n| (n == "OTEL_EXPORTER_OTLP_COMPRESSION").then(|| "gzip".to_owned()));
    assert_eq!(gzip.is_ok(), cfg!(feature = "otlp-gzip"));
}

#[cfg(feature = "otlp-gzip")]
#[test]
fn gzip_bodies_unpack_to_the_plain_body() {
    use std::io::Read;
    let m = MetricsCollector::new();
    m.counter("a_total", &[]).increment(7);
    let plain = encode_otlp(&m.snapshot(), OtlpFormat::Protobuf).unwrap();
    let packed = backlog::gzip(plain.clone());
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plain);
}

#[test]
fn the_default_service_name_names_the_program_and_settings_override_it() {
    let e = OtlpExporter::builder("http://h:4318").build().unwrap();
    let program = std::env::current_exe().unwrap();
    let program = program.file_name().unwrap().to_string_lossy();
    let name = |e: &OtlpExporter| {
        e.resource()
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone())
    };
    assert_eq!(name(&e), Some(format!("unknown_service:{program}")));
    let e = OtlpExporter::builder("http://h:4318")
        .resource_attribute("service.name", "a")
        .service_name("b")
        .build()
        .unwrap();
    assert_eq!(name(&e), Some("b".to_owned()));
    assert_eq!(
        e.resource()
            .iter()
            .filter(|(k, _)| k == "service.name")
            .count(),
        1
    );
}

#[test]
fn a_one_shot_maker_makes_the_points_of_a_first_export() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    for id in ["b", "a", "c"] {
        m.counter("c_total", &[("id", id)]).increment(3);
        m.gauge("g", &[("id", id)]).set(1.5);
        m.histogram("h_seconds", &[("id", id)]).record(0.25);
    }
    let snap = at(&m, 100_000);
    let first = PointMaker::new(Temporality::Cumulative, true).points(&snap);
    let once = PointMaker::one_shot(true).points(&snap);
    assert_eq!(once, first);
    assert_eq!(once.points, 12); // 3 counters, 3 gauges, 3 histograms, 3 summaries
}

#[test]
fn a_fitted_copy_equals_fitting_a_clone() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = m.histogram("h", &[]);
    let mut v = 1e-7;
    while v < 1e7 {
        h.record(v);
        h.record(0.0);
        v *= 1.013;
    }
    let full = m.snapshot().histograms[0]
        .summary
        .lifetime_buckets
        .as_deref()
        .cloned()
        .unwrap();
    for max in [1, 2, 10, 160, 100_000] {
        let mut want = full.clone();
        want.fit(max);
        assert_eq!(
            crate::export::native::fitted_copy(&full, max, &mut Vec::new()),
            want,
            "{max}"
        );
    }
    // Input out of order or with empty buckets is normalised first.
    let odd = SparseBuckets {
        scale: 6,
        zeros: 1,
        counts: vec![(900, 2), (5, 0), (3, 1), (900, 1)],
    };
    let mut want = odd.clone();
    want.normalize();
    want.fit(160);
    assert_eq!(
        crate::export::native::fitted_copy(&odd, 160, &mut Vec::new()),
        want
    );
    let empty = SparseBuckets::default();
    assert_eq!(
        crate::export::native::fitted_copy(&empty, 160, &mut Vec::new()),
        empty
    );
}

mod coalescing {
    use super::*;
    use proptest::prelude::*;

    /// Sends until delivered: the JSON bodies delivered, in order.
    fn deliver(b: &mut OtlpBacklog, delivered: &mut Vec<serde_json::Value>, ok: bool) {
        if let Some(out) = b.next() {
            if ok {
                b.complete(out.ticket);
                delivered.push(serde_json::from_slice(&out.body).unwrap());
            }
        }
    }

    /// (start, time, value) of every `c_total` point in the bodies.
    fn points(bodies: &[serde_json::Value]) -> Vec<(u64, u64, u64, u64)> {
        let int = |v: &serde_json::Value| v.as_str().unwrap().parse::<u64>().unwrap();
        let mut out = Vec::new();
        for body in bodies {
            for m in body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
                .as_array()
                .unwrap()
            {
                let (data, value) = match m["name"].as_str().unwrap() {
                    "c_total" => (&m["sum"], "asInt"),
                    "h" => (&m["exponentialHistogram"], "count"),
                    _ => continue,
                };
                for p in data["dataPoints"].as_array().unwrap() {
                    let kind = u64::from(m["name"] == "h");
                    out.push((
                        kind,
                        int(&p["startTimeUnixNano"]),
                        int(&p["timeUnixNano"]),
                        int(&p[value]),
                    ));
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever fails and whenever, once delivery works again the
        /// delta sums equal the totals, the windows of each series touch
        /// without overlap, and cumulative delivery ends on the total.
        #[test]
        fn no_outage_pattern_loses_a_count(
            rounds in prop::collection::vec((0u64..1000, 0usize..5, any::<bool>(), any::<bool>()), 1..40),
            temporality in prop_oneof![Just(Temporality::Delta), Just(Temporality::Cumulative)],
        ) {
            let m = MetricsCollector::builder().lifetime_buckets(true).build();
            let (c, h) = (m.counter("c_total", &[]), m.histogram("h", &[]));
            let mut maker = PointMaker::new(temporality, false);
            let mut b = OtlpBacklog::new(head(temporality), OtlpFormat::Json);
            let mut delivered = Vec::new();
            let (mut total, mut count) = (0u64, 0u64);
            for (i, (add, values, on_wire, ok)) in rounds.into_iter().enumerate() {
                c.increment(add);
                total += add;
                for v in 0..values {
                    h.record(v as f64 * 0.37);
                }
                count += values as u64;
                let set = maker.points(&at(&m, 1_000 + i as u64 * 10));
                prop_assert!(b.add(set, on_wire).is_none_or(|d| d.reason == "superseded"));
                deliver(&mut b, &mut delivered, ok);
            }
            while b.points() > 0 {
                deliver(&mut b, &mut delivered, true);
            }
            let got = points(&delivered);
            for (kind, want) in [(0, total), (1, count)] {
                let series: Vec<_> = got.iter().filter(|p| p.0 == kind).collect();
                prop_assert!(!series.is_empty());
                match temporality {
                    Temporality::Delta => {
                        prop_assert_eq!(series.iter().map(|p| p.3).sum::<u64>(), want);
                        for w in series.windows(2) {
                            prop_assert_eq!(w[1].1, w[0].2, "windows touch");
                        }
                    }
                    Temporality::Cumulative => {
                        prop_assert_eq!(series.last().unwrap().3, want);
                        prop_assert!(series.iter().all(|p| p.1 == series[0].1), "one start");
                    }
                }
                prop_assert!(series.iter().all(|p| p.1 < p.2));
            }
        }
    }
}

#[test]
fn exemplar_ids_are_hex_digits_and_nothing_else() {
    let exemplar = |trace: &str| crate::snapshot::Exemplar {
        labels: Labels::from_pairs(&[("trace_id", trace), ("span_id", "00f067aa0ba902b7")]),
        value: 1.0,
        timestamp_unix_ms: 0,
    };
    let good = exemplar("4bf92f3577b34da6a3ce929d0e0e4736");
    let ids = super::encode::exemplar_ids(&good);
    assert_eq!(ids.trace.as_deref().map(<[u8]>::len), Some(16));
    assert_eq!(ids.span.as_deref().map(<[u8]>::len), Some(8));
    assert!(ids.attributes.is_empty());
    // A sign is not a digit: `+1` sixteen times stays a label, unchanged.
    let signed = "+1".repeat(16);
    let odd = exemplar(&signed);
    let ids = super::encode::exemplar_ids(&odd);
    assert_eq!(ids.trace, None);
    assert_eq!(ids.attributes, [("trace_id", signed.as_str())]);
}

#[test]
fn a_counter_wrapping_past_u64_is_a_reset_not_an_underflow() {
    for temporality in [Temporality::Cumulative, Temporality::Delta] {
        let m = MetricsCollector::new();
        let c = m.counter("c_total", &[]);
        let mut maker = PointMaker::new(temporality, false);
        c.increment(u64::MAX - 1);
        maker.points(&at(&m, 100_000));
        // Wraps to u64::MAX - 2: the same float as before, but lower.
        c.increment(u64::MAX);
        let set = maker.points(&at(&m, 110_000));
        let p = point(&set, "c_total", Shape::Sum);
        assert_eq!(p.start_ns, 100_000_000_000, "{temporality:?}: a new run");
        assert_eq!(
            p.value,
            Value::Double((u64::MAX - 2) as f64),
            "{temporality:?}"
        );
    }
}

#[test]
fn a_histogram_revived_with_more_values_is_a_reset_in_delta() {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.configure_histogram_buckets("b_seconds", &[1.0]).unwrap();
    let (h, b) = (m.histogram("h_seconds", &[]), m.histogram("b_seconds", &[]));
    let mut maker = PointMaker::new(Temporality::Delta, false);
    h.record(5.0);
    b.record(5.0);
    maker.points(&at(&m, 100_000));
    // Removed and revived: counts from zero, with more values than before.
    m.remove("h_seconds", &[]);
    m.remove("b_seconds", &[]);
    for _ in 0..2 {
        h.record(0.5);
        b.record(0.5);
    }
    let set = maker.points(&at(&m, 110_000));
    match &point(&set, "h_seconds", Shape::Exponential).value {
        Value::Exponential { buckets, sum, .. } => {
            assert_eq!((buckets.count(), *sum), (2, 1.0));
        }
        other => panic!("{other:?}"),
    }
    match &point(&set, "b_seconds", Shape::Histogram).value {
        Value::Explicit {
            count, sum, counts, ..
        } => {
            assert_eq!((*count, *sum), (2, 1.0));
            assert_eq!(counts.iter().sum::<u64>(), *count, "buckets add up");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn otel_service_name_wins_over_the_attributes_service_name() {
    let env = |name: &str| match name {
        "OTEL_RESOURCE_ATTRIBUTES" => Some("service.name=a,team=t".to_owned()),
        "OTEL_SERVICE_NAME" => Some("b".to_owned()),
        _ => None,
    };
    let e = OtlpExporter::builder("http://h:1")
        .env_from(env)
        .unwrap()
        .build()
        .unwrap();
    let names: Vec<_> = e
        .resource()
        .iter()
        .filter(|(k, _)| k == "service.name")
        .collect();
    assert_eq!(names, [&("service.name".to_owned(), "b".to_owned())]);
}

#[test]
fn a_delta_point_carries_only_the_exemplars_of_its_window() {
    let m = MetricsCollector::new();
    let c = m.counter("jobs_total", &[]);
    let mut maker = PointMaker::new(Temporality::Delta, false);
    c.increment_with_exemplar(1, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let first = maker.points(&m.snapshot());
    assert_eq!(point(&first, "jobs_total", Shape::Sum).exemplars.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    c.inc();
    let second = maker.points(&m.snapshot());
    let p = point(&second, "jobs_total", Shape::Sum);
    assert_eq!(int(p), 1);
    assert!(p.exemplars.is_empty(), "{:?}", p.exemplars);
}

#[test]
fn scope_and_units_are_as_documented() {
    let b = OtlpExporter::builder("http://h:1");
    assert_eq!(
        (b.scope_name.as_str(), b.scope_version.as_str()),
        ("vitals", env!("CARGO_PKG_VERSION"))
    );
    let b = b.scope("checkout", "2.1.0");
    assert_eq!(
        (b.scope_name.as_str(), b.scope_version.as_str()),
        ("checkout", "2.1.0")
    );
    let m = MetricsCollector::new();
    for (name, unit) in [
        ("mem_bytes", crate::Unit::Bytes),
        ("load_ratio", crate::Unit::Ratio),
        ("temp_celsius", crate::Unit::Celsius),
    ] {
        m.describe(crate::MetricKind::Gauge, name, Some(unit), "h");
        m.gauge(name, &[]).set(1.0);
    }
    let set = PointMaker::one_shot(false).points(&m.snapshot());
    let mut head = head(Temporality::Cumulative);
    head.scope_name = b.scope_name;
    head.scope_version = b.scope_version;
    let json = String::from_utf8(OtlpBacklog::new(head, OtlpFormat::Json).encode(&set)).unwrap();
    for unit in [r#""unit":"By""#, r#""unit":"1""#, r#""unit":"Cel""#] {
        assert!(json.contains(unit), "{unit}: {json}");
    }
    assert!(
        json.contains(r#""scope":{"name":"checkout","version":"2.1.0"}"#),
        "{json}"
    );
}
