//! Exemplars (N4): kept per bucket and per counter under concurrent
//! writers with exact totals, refused with a typed error when their labels
//! break the rules (the value still counts), and written as OpenMetrics
//! text that the strict parser of PyPI `prometheus_client` reads back, and
//! in the protobuf exposition that the protobuf runtime decodes. The
//! Python checks skip when Python is missing, and fail instead with
//! `VITALS_REQUIRE_TOOLS=1` (as in CI).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::decode_with_python;
use serde_json::Value;
use vitals::export::{render_openmetrics, render_prometheus, render_protobuf};
use vitals::snapshot::{Exemplar, MAX_EXEMPLAR_LABEL_CHARS, MAX_NATIVE_EXEMPLARS};
use vitals::{Error, MetricsCollector};

const THREADS: u64 = 4;
const PER_THREAD: u64 = 5_000;

#[test]
fn concurrent_exemplars_keep_exact_totals_and_one_exemplar_per_bucket() {
    let m = Arc::new(MetricsCollector::builder().lifetime_buckets(true).build());
    let bounds = [0.01, 0.1, 1.0];
    m.configure_histogram_buckets("latency_seconds", &bounds)
        .unwrap();
    let h = m.histogram("latency_seconds", &[]);
    let c = m.counter("requests_total", &[]);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (h, c) = (h.clone(), c.clone());
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let value = 0.001 * (1 + (i * 7 + t) % 3000) as f64;
                    let id = format!("{t}-{i}");
                    h.record_with_exemplar(value, &[("trace_id", &id)]).unwrap();
                    c.increment_with_exemplar(1 + i % 3, &[("trace_id", &id)])
                        .unwrap();
                    // Plain calls between them are not disturbed.
                    h.record(value);
                    c.inc();
                }
            });
        }
    });
    let snap = m.snapshot();
    let sample = &snap.histograms[0];
    assert_eq!(sample.summary.lifetime.count, 2 * THREADS * PER_THREAD);
    let increments: u64 = (0..PER_THREAD).map(|i| 1 + i % 3 + 1).sum();
    assert_eq!(c.value(), THREADS * increments);

    // One exemplar per configured bucket that got values (all four), and
    // the latest per exponential bucket for at most 16 of them.
    let exemplars = &sample.exemplars;
    assert!(exemplars.len() <= MAX_NATIVE_EXEMPLARS + bounds.len() + 1);
    let mut lower = f64::NEG_INFINITY;
    for upper in bounds.iter().copied().chain([f64::INFINITY]) {
        assert!(
            exemplars
                .iter()
                .any(|e| lower < e.value && e.value <= upper),
            "no exemplar in ({lower}, {upper}]: {exemplars:?}"
        );
        lower = upper;
    }
    assert!(exemplars.windows(2).all(|w| w[0].value <= w[1].value));
    for e in exemplars {
        // Each exemplar is a value some thread recorded with that id.
        let id = e.labels.get("trace_id").unwrap();
        let (t, i) = id.split_once('-').unwrap();
        let (t, i): (u64, u64) = (t.parse().unwrap(), i.parse().unwrap());
        assert_eq!(e.value, 0.001 * (1 + (i * 7 + t) % 3000) as f64);
    }
    let counter = snap.counter_sample("requests_total", &[]).unwrap();
    let e = counter.exemplar.as_ref().unwrap();
    let (_, i) = e.labels.get("trace_id").unwrap().split_once('-').unwrap();
    assert_eq!(e.value, (1 + i.parse::<u64>().unwrap() % 3) as f64);
}

#[test]
fn a_refused_exemplar_still_counts_its_value() {
    let m = MetricsCollector::new();
    let h = m.histogram("size_bytes", &[]);
    let c = m.counter("jobs_total", &[]);
    let too_long = "x".repeat(MAX_EXEMPLAR_LABEL_CHARS);
    let bad: [&[(&str, &str)]; 5] = [
        &[("trace_id", &too_long)],
        &[("", "x")],
        &[("9lives", "x")],
        &[("a", "1"), ("a", "2")],
        &[("__name__", "x")],
    ];
    for labels in bad {
        let err = h.record_with_exemplar(10.0, labels).unwrap_err();
        assert!(matches!(err, Error::InvalidExemplar { .. }), "{err}");
        assert_eq!(err.kind(), "invalid_exemplar");
        assert!(c.increment_with_exemplar(2, labels).is_err());
    }
    // NaN and negative values are dropped, and keep no exemplar.
    h.record_with_exemplar(f64::NAN, &[("trace_id", "nan")])
        .unwrap();
    h.record_with_exemplar(-1.0, &[("trace_id", "neg")])
        .unwrap();
    let snap = m.snapshot();
    let s = &snap.histograms[0];
    assert_eq!((s.summary.lifetime.count, s.summary.dropped), (5, 2));
    assert!(s.exemplars.is_empty());
    assert_eq!(c.value(), 10);
    assert!(snap.counters[0].exemplar.is_none());
}

#[test]
fn exemplars_survive_the_json_snapshot_and_stay_out_of_prometheus_text() {
    let m = MetricsCollector::new();
    m.configure_histogram_buckets("latency_seconds", &[0.5])
        .unwrap();
    m.histogram("latency_seconds", &[])
        .record_with_exemplar(0.25, &[("trace_id", "abc")])
        .unwrap();
    m.counter("requests_total", &[])
        .increment_with_exemplar(3, &[("span_id", "s\"1")])
        .unwrap();
    let snap = m.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    let back: vitals::Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let text = render_prometheus(&snap);
    assert!(!text.contains(" # {"), "{text}");
    let om = render_openmetrics(&snap);
    assert!(
        om.contains("requests_total 3 # {span_id=\"s\\\"1\"} 3.0 "),
        "{om}"
    );
    assert!(
        om.contains("latency_seconds_bucket{le=\"0.5\"} 1 # {trace_id=\"abc\"} 0.25 "),
        "{om}"
    );
    // The `+Inf` bucket has no exemplar of its own range.
    assert!(
        om.contains("latency_seconds_bucket{le=\"+Inf\"} 1\n"),
        "{om}"
    );
}

/// Runs `script` with Python on `files`; `None` when Python or its package
/// is missing (exit code 3), a failure under `VITALS_REQUIRE_TOOLS=1`.
fn python(script: &str, files: &[&std::path::Path]) -> Option<Value> {
    let required = std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1");
    let Ok(out) = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(files)
        .output()
    else {
        assert!(!required, "python3 is required (VITALS_REQUIRE_TOOLS=1)");
        return None;
    };
    if out.status.code() == Some(3) {
        assert!(
            !required,
            "a Python package is required (VITALS_REQUIRE_TOOLS=1)"
        );
        return None;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn service() -> MetricsCollector {
    let m = MetricsCollector::builder().lifetime_buckets(true).build();
    m.configure_histogram_buckets("latency_seconds", &[0.01, 0.1, 1.0])
        .unwrap();
    let h = m.histogram("latency_seconds", &[("route", "/a")]);
    for (k, v) in [0.005, 0.05, 0.5, 5.0].into_iter().enumerate() {
        let id = format!("{k:032x}");
        // Escaped characters and non-ASCII in a value. (Not `"`: the strict
        // parser of prometheus_client 0.26 refuses an escaped quote in an
        // exemplar's label value, which OpenMetrics allows; the quote's
        // escaping is checked on the text itself in the test above.)
        h.record_with_exemplar(v, &[("trace_id", &id), ("user", "ünï\\\n")])
            .unwrap();
    }
    m.counter("requests_total", &[("route", "/a")])
        .increment_with_exemplar(7, &[("trace_id", "0af7651916cd43dd8448eb211c80319c")])
        .unwrap();
    // A summary in text (no bounds), which cannot carry exemplars there; a
    // native histogram in protobuf, which lists it.
    m.histogram("batch_size", &[])
        .record_with_exemplar(3.0, &[("job", "x")])
        .unwrap();
    m
}

#[test]
fn the_strict_openmetrics_parser_reads_the_exemplars_as_written() {
    let m = service();
    let snap = m.snapshot();
    let dir = common::TempDir::new("exemplars-om");
    let path = dir.path().join("metrics.om");
    std::fs::write(&path, render_openmetrics(&snap)).unwrap();
    let script = r#"
import json, sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError:
    sys.exit(3)
out = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        if s.exemplar is not None:
            e = s.exemplar
            ts = e.timestamp
            ts = ts.sec + ts.nsec / 1e9 if hasattr(ts, "sec") else ts
            out.append([s.name, s.labels, e.labels, e.value, ts])
print(json.dumps(out))
"#;
    let Some(parsed) = python(script, &[&path]) else {
        return;
    };
    let mut want: Vec<Value> = Vec::new();
    let as_json = |e: &Exemplar| {
        let labels: serde_json::Map<String, Value> = e
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        (
            Value::Object(labels),
            e.value,
            e.timestamp_unix_ms as f64 / 1000.0,
        )
    };
    let c = snap
        .counter_sample("requests_total", &[("route", "/a")])
        .unwrap();
    let (labels, value, ts) = as_json(c.exemplar.as_ref().unwrap());
    want.push(serde_json::json!(["requests_total", {"route": "/a"}, labels, value, ts]));
    let h = snap
        .histogram_sample("latency_seconds", &[("route", "/a")])
        .unwrap();
    let mut lower = f64::NEG_INFINITY;
    for (upper, le) in [
        (0.01, "0.01"),
        (0.1, "0.1"),
        (1.0, "1.0"),
        (f64::INFINITY, "+Inf"),
    ] {
        // The latest exemplar in each bucket: here one value each.
        let e = h
            .exemplars
            .iter()
            .find(|e| lower < e.value && e.value <= upper)
            .unwrap();
        let (labels, value, ts) = as_json(e);
        want.push(serde_json::json!([
            "latency_seconds_bucket",
            {"route": "/a", "le": le},
            labels,
            value,
            ts
        ]));
        lower = upper;
    }
    let parsed = parsed.as_array().unwrap();
    assert_eq!(parsed.len(), want.len(), "{parsed:?}");
    for (got, want) in parsed.iter().zip(&want) {
        assert_eq!(got[0], want[0]);
        assert_eq!(got[1], want[1]);
        assert_eq!(got[2], want[2]);
        assert_eq!(got[3].as_f64(), want[3].as_f64());
        // Timestamps as written: milliseconds, within float error.
        assert!((got[4].as_f64().unwrap() - want[4].as_f64().unwrap()).abs() < 1e-6);
    }
}

#[test]
fn the_protobuf_runtime_reads_the_exemplars() {
    let m = service();
    let snap = m.snapshot();
    let Some(families) = decode_with_python("decode_metric_families.py", &render_protobuf(&snap).0)
    else {
        return;
    };
    let family = |name: &str| {
        families
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()
            .clone()
    };
    let decoded = |e: &Value| -> (Vec<(String, String)>, f64, u64) {
        let labels = e["label"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let secs: u64 = e["timestamp"]["seconds"].as_str().unwrap().parse().unwrap();
        let nanos = e["timestamp"]["nanos"].as_u64().unwrap_or(0);
        (
            labels,
            e["value"].as_f64().unwrap(),
            secs * 1000 + nanos / 1_000_000,
        )
    };
    let ours = |e: &Exemplar| -> (Vec<(String, String)>, f64, u64) {
        let labels = e
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        (labels, e.value, e.timestamp_unix_ms)
    };
    let c = snap
        .counter_sample("requests_total", &[("route", "/a")])
        .unwrap();
    let counter = family("requests_total");
    assert_eq!(
        decoded(&counter["metric"][0]["counter"]["exemplar"]),
        ours(c.exemplar.as_ref().unwrap())
    );
    let h = snap
        .histogram_sample("latency_seconds", &[("route", "/a")])
        .unwrap();
    let hist = &family("latency_seconds")["metric"][0]["histogram"];
    // The native histogram lists every exemplar kept.
    let native: Vec<_> = hist["exemplars"]
        .as_array()
        .unwrap()
        .iter()
        .map(decoded)
        .collect();
    let kept: Vec<_> = h.exemplars.iter().map(ours).collect();
    assert_eq!(native, kept);
    assert_eq!(kept.len(), 4);
    // Each classic bucket carries the exemplar of its range.
    let buckets = hist["bucket"].as_array().unwrap();
    let mut lower = f64::NEG_INFINITY;
    for b in buckets {
        let upper = b["upper_bound"].as_f64().unwrap();
        let want = h
            .exemplars
            .iter()
            .find(|e| lower < e.value && e.value <= upper);
        assert_eq!(decoded(&b["exemplar"]), ours(want.unwrap()));
        lower = upper;
    }
    let batch = family("batch_size");
    let listed = &batch["metric"][0]["histogram"]["exemplars"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(decoded(&listed[0]).1, 3.0);
}
