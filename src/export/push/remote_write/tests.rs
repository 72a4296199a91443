use super::*;
use crate::snapshot::{GaugeSample, SCHEMA_VERSION};
use std::sync::Arc;

/// A counter series: name, labels, value.
type CounterSpec<'a> = (&'a str, &'a [(&'a str, &'a str)], u64);
/// A decoded series: labels, value, timestamp.
type Decoded = (Vec<(String, String)>, f64, i64);

fn snapshot(ts: u64, counters: &[CounterSpec<'_>]) -> Snapshot {
    Snapshot {
        schema_version: SCHEMA_VERSION,
        timestamp_unix_ms: ts,
        uptime_seconds: 1.0,
        counters: counters
            .iter()
            .map(|(name, labels, value)| CounterSample {
                name: Arc::from(*name),
                labels: Labels::from_pairs(labels),
                value: (*value).into(),
                rate: None,
                exemplar: None,
            })
            .collect(),
        gauges: vec![],
        histograms: vec![],
        metadata: vec![],
        first_error: None,
        plugins: vec![],
    }
}

fn writer(external: &[(&str, &str)]) -> SeriesWriter {
    let mut external: Vec<(String, String)> = external
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    external.sort();
    SeriesWriter {
        external,
        last_timestamp: i64::MIN,
        last_len: 0,
    }
}

/// One varint of a protobuf message, at `*i`.
fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}
/// A message's fields: number, bytes (length-delimited) or number value.
fn fields(b: &[u8]) -> Vec<(u64, &[u8], u64)> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let tag = varint(b, &mut i);
        match tag & 7 {
            0 => out.push((tag >> 3, &b[0..0], varint(b, &mut i))),
            1 => {
                let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                i += 8;
                out.push((tag >> 3, &b[0..0], v));
            }
            2 => {
                let len = varint(b, &mut i) as usize;
                out.push((tag >> 3, &b[i..i + len], 0));
                i += len;
            }
            t => panic!("wire type {t}"),
        }
    }
    out
}

/// A `Label` message: name and value.
fn label_pair(b: &[u8]) -> (String, String) {
    let l = fields(b);
    (
        String::from_utf8(l[0].1.to_vec()).unwrap(),
        String::from_utf8(l[1].1.to_vec()).unwrap(),
    )
}

/// Labels and samples of every series in a batch, decoded by hand.
fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let mut series = Vec::new();
    for (f, ts_bytes, _) in fields(bytes) {
        assert_eq!(f, 1);
        let mut labels = Vec::new();
        let (mut value, mut ts) = (f64::NAN, 0);
        for (f, b, _) in fields(ts_bytes) {
            match f {
                1 => labels.push(label_pair(b)),
                2 => {
                    for (f, _, v) in fields(b) {
                        match f {
                            1 => value = f64::from_bits(v),
                            2 => ts = v as i64,
                            _ => panic!("sample field {f}"),
                        }
                    }
                }
                _ => panic!("series field {f}"),
            }
        }
        series.push((labels, value, ts));
    }
    series
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn labels_are_sorted_with_the_name_and_external_labels() {
    let mut w = writer(&[("job", "api"), ("zone", "ext"), ("A", "first")]);
    let snap = snapshot(
        1_000,
        &[("requests", &[("zone", "own"), ("code", "200")], 7)],
    );
    let batch = w.encode(&snap);
    let series = decode(&batch.bytes);
    assert_eq!(
        series,
        vec![(
            l(&[
                ("A", "first"),
                ("__name__", "requests_total"),
                ("code", "200"),
                ("job", "api"),
                ("zone", "own"),
            ]),
            7.0,
            1_000
        )]
    );
}

#[test]
fn summaries_buckets_and_gauges_become_series() {
    let metrics = MetricsCollector::new();
    metrics.gauge("temp", &[]).set(-1.5);
    let h = metrics.histogram("lat_seconds", &[("r", "/")]);
    h.record(0.5);
    h.record(1.5);
    let mut snap = metrics.snapshot();
    snap.gauges.push(GaugeSample {
        name: "temp".into(),
        labels: Labels::from_pairs(&[("quantile", "x")]),
        value: 2.0,
    });
    let series = decode(&writer(&[]).encode(&snap).bytes);
    let names: Vec<String> = series
        .iter()
        .map(|(labels, _, _)| {
            let name = &labels.iter().find(|(k, _)| k == "__name__").unwrap().1;
            match labels.iter().find(|(k, _)| k == "quantile") {
                Some((_, q)) => format!("{name}{{{q}}}"),
                None => name.clone(),
            }
        })
        .collect();
    assert_eq!(
        names,
        [
            "temp",
            "temp{x}",
            "lat_seconds{0.5}",
            "lat_seconds{0.9}",
            "lat_seconds{0.95}",
            "lat_seconds{0.99}",
            "lat_seconds{0.999}",
            "lat_seconds_sum",
            "lat_seconds_count"
        ]
    );
    assert_eq!(series[0].1, -1.5);
    assert_eq!(series[7].1, 2.0);
    assert_eq!(series[8].1, 2.0);
}

#[test]
fn clashing_families_are_left_out_as_in_the_text_formats() {
    let metrics = MetricsCollector::new();
    metrics.counter("x", &[]).increment(1);
    metrics.gauge("x_total", &[]).set(2.0);
    metrics.counter("y_total", &[("a", "1")]).increment(3);
    metrics.counter("y", &[]).increment(4);
    metrics.gauge("h_sum", &[]).set(5.0);
    metrics.histogram("h", &[]).record(1.0);
    let snap = metrics.snapshot();
    let series = decode(&writer(&[]).encode(&snap).bytes);
    let names: Vec<(&str, f64)> = series
        .iter()
        .map(|(labels, v, _)| (labels[0].1.as_str(), *v))
        .collect();
    // Counters come first, then by name: the gauge `x_total`, the
    // counter `y_total` (after `y`, of the same base) and the histogram
    // `h` (its `h_sum` is a gauge's) are left out. The text renderer
    // agrees.
    assert_eq!(names, [("x_total", 1.0), ("y_total", 4.0), ("h_sum", 5.0)]);
    let text = crate::export::render_prometheus(&snap);
    assert!(!text.contains("x_total 2"), "{text}");
    assert!(!text.contains("y_total{a=\"1\"}"), "{text}");
    assert!(!text.contains("h_count"), "{text}");
}

#[test]
fn plug_in_values_are_sent_like_any_series() {
    struct Pool;
    impl crate::Collector for Pool {
        fn name(&self) -> &str {
            "pool"
        }
        fn collect(&self, out: &mut crate::Samples) -> Result<(), Error> {
            out.counter("pool_seconds_total", &[], 1.5)?;
            out.gauge("pool_size", &[("pool", "db")], 8.0)
        }
    }
    let metrics = MetricsCollector::new();
    metrics.register(Pool).unwrap();
    let series = decode(&writer(&[]).encode(&metrics.snapshot()).bytes);
    let find = |name: &str| {
        series
            .iter()
            .find(|(labels, _, _)| labels.iter().any(|(k, v)| k == "__name__" && v == name))
            .map(|s| s.1)
    };
    assert_eq!(find("pool_seconds_total"), Some(1.5));
    assert_eq!(find("pool_size"), Some(8.0));
}

#[test]
fn timestamps_strictly_increase() {
    let mut w = writer(&[]);
    let snap = snapshot(5, &[("c", &[], 1)]);
    let a = decode(&w.encode(&snap).bytes)[0].2;
    let b = decode(&w.encode(&snap).bytes)[0].2;
    assert_eq!((a, b), (5, 6));
    let far = snapshot(u64::MAX, &[("c", &[], 1)]);
    assert_eq!(decode(&w.encode(&far).bytes)[0].2, i64::MAX);
    assert_eq!(decode(&w.encode(&far).bytes)[0].2, i64::MAX);
}

#[test]
fn long_label_values_keep_their_spans_right() {
    let long = "v".repeat(300);
    let mut w = writer(&[]);
    let batch = w.encode(&snapshot(1, &[("a", &[("k", &long)], 1), ("b", &[], 2)]));
    for span in &batch.series {
        let entry = &batch.bytes[span.entry.0..span.entry.1];
        assert_eq!(decode(entry).len(), 1);
    }
    let labels = &batch.bytes[batch.series[0].labels.0..batch.series[0].labels.1];
    assert!(labels.windows(300).any(|w| w == long.as_bytes()));
}

#[test]
fn past_the_bound_old_points_go_but_every_series_keeps_its_latest() {
    let mut w = writer(&[]);
    let one = w
        .encode(&snapshot(1, &[("a", &[], 1), ("b", &[], 1)]))
        .bytes
        .len();
    let mut backlog = WriteBacklog::new(one * 3, 1000);
    let mut w = writer(&[]);
    let mut dropped = 0;
    // Series `b` disappears after the second snapshot.
    for i in 0..10u64 {
        let counters: Vec<CounterSpec<'_>> = if i < 2 {
            vec![("a", &[], i), ("b", &[], 100 + i)]
        } else {
            vec![("a", &[], i)]
        };
        let batch = w.encode(&snapshot(1_000 + i, &counters));
        if let Some(d) = backlog.add(batch, false) {
            dropped += d.points;
        }
        assert!(backlog.bytes() <= one * 3, "{}", backlog.bytes());
    }
    let mut delivered = Vec::new();
    while let Some(out) = backlog.next() {
        let raw = snap::raw::Decoder::new().decompress_vec(&out.body).unwrap();
        delivered.extend(decode(&raw));
        backlog.complete(out.ticket);
    }
    assert_eq!((backlog.bytes(), backlog.points()), (0, 0));
    let last_b = delivered
        .iter()
        .rfind(|(labels, _, _)| labels[0].1 == "b_total")
        .unwrap();
    assert_eq!((last_b.1, last_b.2), (101.0, 1_001));
    let last_a = delivered.last().unwrap();
    assert_eq!((last_a.1, last_a.2), (9.0, 1_009));
    // 12 points in, every one delivered or counted as dropped.
    assert_eq!(delivered.len() as u64 + dropped, 12);
    // Per series, samples in time order.
    for name in ["a_total", "b_total"] {
        let ts: Vec<i64> = delivered
            .iter()
            .filter(|(labels, _, _)| labels[0].1 == name)
            .map(|s| s.2)
            .collect();
        assert!(ts.windows(2).all(|p| p[0] < p[1]), "{name}: {ts:?}");
    }
}

#[test]
fn large_batches_go_in_several_requests_and_in_flight_data_stays() {
    let mut w = writer(&[]);
    let counters: Vec<(String, u64)> = (0..5).map(|i| (format!("c{i}"), i)).collect();
    let refs: Vec<CounterSpec<'_>> = counters
        .iter()
        .map(|(n, v)| (n.as_str(), &[][..], *v))
        .collect();
    let mut backlog = WriteBacklog::new(1024, 2);
    backlog.add(w.encode(&snapshot(1, &refs)), false);
    let first = backlog.next().unwrap();
    assert_eq!(first.points, 2);
    // A new batch arrives while the first request is in flight, over
    // the bound: the in-flight batch stays.
    backlog.max_bytes = 1;
    assert_eq!(backlog.add(w.encode(&snapshot(2, &refs)), true), None);
    backlog.complete(first.ticket);
    let mut sizes = Vec::new();
    while let Some(out) = backlog.next() {
        sizes.push(out.points);
        backlog.complete(out.ticket);
    }
    assert_eq!(sizes, [2, 1, 2, 2, 1]);
    // A stale ticket changes nothing.
    backlog.complete(first.ticket);
    assert_eq!(backlog.points(), 0);
}

#[test]
fn a_series_external_labels_make_another_ones_twin_is_left_out_and_counted() {
    let mut w = writer(&[("job", "a")]);
    // Either order: the twin may come before or after the shadowing one.
    for counters in [
        [("c", &[][..], 7), ("c", &[("job", "a")][..], 5)],
        [("c", &[("job", "a")][..], 5), ("c", &[][..], 7)],
    ] {
        let mut all = counters.to_vec();
        // Other series are untouched, including one whose own `job` differs.
        all.push(("c", &[("job", "b")][..], 9));
        all.push(("d", &[][..], 1));
        let batch = w.encode(&snapshot(1_000, &all));
        let series = decode(&batch.bytes);
        assert_eq!(batch.duplicates, 1);
        assert_eq!(series.len(), 3, "{series:?}");
        let first = counters[0].2 as f64;
        assert!(series.contains(&(
            l(&[("__name__", "c_total"), ("job", "a")]),
            first,
            series[0].2
        )));
        assert_eq!(batch.series.len(), 3);
    }
    // Without a shadowing label nothing is looked up or left out.
    let batch = w.encode(&snapshot(
        2_000,
        &[("c", &[][..], 7), ("c", &[("job", "b")][..], 5)],
    ));
    assert_eq!((batch.duplicates, decode(&batch.bytes).len()), (0, 2));
}

/// A series' labels, the numbers of its fields, its zero thresholds.
type Shape = (Vec<(String, String)>, Vec<u64>, Vec<f64>);

/// Each series' labels and the numbers of its fields (1 labels, 2
/// samples, 3 exemplars, 4 native histograms), with every native
/// histogram's zero threshold.
fn shapes(bytes: &[u8]) -> Vec<Shape> {
    fields(bytes)
        .into_iter()
        .map(|(_, series, _)| {
            let mut labels = Vec::new();
            let mut present = Vec::new();
            let mut zero_thresholds = Vec::new();
            for (f, b, _) in fields(series) {
                present.push(f);
                match f {
                    1 => labels.push(label_pair(b)),
                    4 => zero_thresholds.extend(
                        fields(b)
                            .into_iter()
                            .filter(|(f, _, _)| *f == 5)
                            .map(|(_, _, v)| f64::from_bits(v)),
                    ),
                    _ => {}
                }
            }
            present.dedup();
            (labels, present, zero_thresholds)
        })
        .collect()
}

#[test]
fn a_native_histogram_goes_instead_of_its_summary_with_its_exemplars() {
    let metrics = MetricsCollector::builder().lifetime_buckets(true).build();
    let h = metrics.histogram("lat_seconds", &[("r", "/")]);
    h.record(0.25);
    h.record_with_exemplar(0.5, &[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")])
        .unwrap();
    let batch = writer(&[]).encode(&metrics.snapshot());
    let shapes = shapes(&batch.bytes);
    let names: Vec<&str> = shapes
        .iter()
        .flat_map(|(labels, _, _)| labels.iter())
        .filter(|(k, _)| k == "__name__")
        .map(|(_, v)| v.as_str())
        .collect();
    // One series `x`: no quantiles, no `_sum` or `_count`.
    assert_eq!(names, ["lat_seconds"]);
    let (labels, present, zero) = &shapes[0];
    assert!(labels.iter().all(|(k, _)| k != "quantile"), "{labels:?}");
    assert_eq!(present, &[1, 4, 3], "labels, the histogram, its exemplars");
    assert_eq!(zero, &[2f64.powi(-128)]);
}
