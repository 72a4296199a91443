//! Exporter costs: snapshot + Prometheus text of 1,000 counter series
//! (10 names × 100 label values) and 100 histogram series (10 × 10, with
//! window quantiles), the render alone, and JSON-Lines serialisation
//! throughput. The comparison with peer crates encoding the same registry is
//! `benches/peers/benches/encode.rs`.
//!
//! Bytes per series of a JSON line are printed when the bench starts. With
//! `--features remote-write`: the remote-write protobuf encoding and its
//! snappy compression of the same snapshot, and their bytes per series.
//! With `--features otlp`: the OTLP protobuf and JSON encodings of the same
//! registry built with lifetime buckets (so the 100 histograms are
//! exponential histograms), and their bytes per series.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vitals::export::{JsonLinesExporter, TextFormat, TextRenderer};
use vitals::MetricsCollector;

/// The registry every export bench uses (the same shape as the peer bench).
fn registry() -> MetricsCollector {
    fill(MetricsCollector::new())
}

fn fill(metrics: MetricsCollector) -> MetricsCollector {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for name in 0..10 {
        let counter = format!("counter_{name}_total");
        for label in 0..100u64 {
            metrics
                .counter(&counter, &[("id", &label.to_string())])
                .increment(label * 1000 + name);
        }
        let histogram = format!("histogram_{name}_seconds");
        for label in 0..10 {
            let h = metrics.histogram(&histogram, &[("id", &label.to_string())]);
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Log-uniform over 1 µs .. 1 s.
                h.record(10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 6.0) / 1e6);
            }
        }
    }
    metrics
}

fn prometheus(c: &mut Criterion) {
    let metrics = registry();
    let mut g = c.benchmark_group("export_prometheus");
    let mut renderer = TextRenderer::new(TextFormat::Prometheus);
    let mut out = String::new();
    g.bench_function("snapshot_and_render_1000c_100h", |b| {
        b.iter(|| {
            out.clear();
            let snap = metrics.snapshot();
            renderer.render_into(&snap, &mut out);
            black_box(out.len())
        })
    });
    let snap = metrics.snapshot();
    g.bench_function("render_only_1000c_100h", |b| {
        b.iter(|| {
            out.clear();
            renderer.render_into(black_box(&snap), &mut out);
            black_box(out.len())
        })
    });
    let mut om = TextRenderer::new(TextFormat::OpenMetrics);
    g.bench_function("render_only_openmetrics_1000c_100h", |b| {
        b.iter(|| {
            out.clear();
            om.render_into(black_box(&snap), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("snapshot_only_1000c_100h", |b| {
        b.iter(|| black_box(metrics.snapshot()))
    });
    // One new value in every histogram before each snapshot: no series'
    // statistics come from the last snapshot (the 100 records included).
    let handles: Vec<_> = (0..10)
        .flat_map(|name| (0..10).map(move |label| (name, label)))
        .map(|(name, label)| {
            metrics.histogram(
                &format!("histogram_{name}_seconds"),
                &[("id", &label.to_string())],
            )
        })
        .collect();
    let mut v = 1e-6;
    g.bench_function("snapshot_only_after_writes_1000c_100h", |b| {
        b.iter(|| {
            for h in &handles {
                v = if v > 1.0 { 1e-6 } else { v * 1.37 };
                h.record(v);
            }
            black_box(metrics.snapshot())
        })
    });
    g.finish();
}

fn jsonl(c: &mut Criterion) {
    let metrics = registry();
    let snap = metrics.snapshot();
    let mut line = Vec::new();
    JsonLinesExporter::encode_line(&snap, &mut line).expect("serialise");
    let series = snap.counters.len() + snap.gauges.len() + snap.histograms.len();
    eprintln!(
        "jsonl: one line of {series} series is {} bytes, {:.0} bytes per series",
        line.len(),
        line.len() as f64 / series as f64
    );
    let mut g = c.benchmark_group("export_jsonl");
    g.throughput(Throughput::Bytes(line.len() as u64));
    g.bench_function("serialise_line_1000c_100h", |b| {
        b.iter(|| {
            line.clear();
            JsonLinesExporter::encode_line(black_box(&snap), &mut line).expect("serialise");
            black_box(line.len())
        })
    });
    g.finish();
}

/// Remote write (feature `remote-write`): the protobuf encoding (summaries,
/// and native histograms) and its snappy compression, each alone; bytes
/// per series printed at the start.
#[cfg(feature = "remote-write")]
fn remote_write(c: &mut Criterion) {
    use vitals::export::push::encode_write_request;
    let metrics = registry();
    let snap = metrics.snapshot();
    let labels = [("job", "bench"), ("instance", "host-1:8080")];
    let body = encode_write_request(&snap, &labels).expect("encode");
    let compressed = snap::raw::Encoder::new()
        .compress_vec(&body)
        .expect("compress");
    let series = snap.counters.len() + 7 * snap.histograms.len() + snap.gauges.len();
    eprintln!(
        "remote write: {series} series, protobuf {} bytes ({:.1} per series), snappy {} bytes ({:.1} per series)",
        body.len(),
        body.len() as f64 / series as f64,
        compressed.len(),
        compressed.len() as f64 / series as f64
    );
    let mut g = c.benchmark_group("export_remote_write");
    g.throughput(Throughput::Elements(series as u64));
    g.bench_function("encode_1000c_100h", |b| {
        b.iter(|| {
            black_box(
                encode_write_request(black_box(&snap), &labels)
                    .expect("encode")
                    .len(),
            )
        })
    });
    // The same registry with lifetime buckets: the 100 histograms go as
    // native histograms (at most 160 buckets), one series each.
    let native = fill(MetricsCollector::builder().lifetime_buckets(true).build()).snapshot();
    let native_body = encode_write_request(&native, &labels).expect("encode");
    let native_series = native.counters.len() + native.histograms.len();
    eprintln!(
        "remote write, native histograms: {native_series} series, protobuf {} bytes ({:.1} per series), snappy {} bytes",
        native_body.len(),
        native_body.len() as f64 / native_series as f64,
        snap::raw::Encoder::new()
            .compress_vec(&native_body)
            .expect("compress")
            .len()
    );
    g.bench_function("encode_native_1000c_100h", |b| {
        b.iter(|| {
            black_box(
                encode_write_request(black_box(&native), &labels)
                    .expect("encode")
                    .len(),
            )
        })
    });
    let mut encoder = snap::raw::Encoder::new();
    g.bench_function("snappy_1000c_100h", |b| {
        b.iter(|| {
            black_box(
                encoder
                    .compress_vec(black_box(&body))
                    .expect("compress")
                    .len(),
            )
        })
    });
    g.finish();
}

#[cfg(not(feature = "remote-write"))]
fn remote_write(_: &mut Criterion) {}

/// OTLP (feature `otlp`): the whole encoding of one snapshot (points,
/// start times, buckets fitted to 160, protobuf or JSON); bytes printed.
#[cfg(feature = "otlp")]
fn otlp(c: &mut Criterion) {
    use vitals::export::push::{encode_otlp, OtlpFormat};
    let metrics = fill(MetricsCollector::builder().lifetime_buckets(true).build());
    let snap = metrics.snapshot();
    let series = (snap.counters.len() + snap.histograms.len()) as u64;
    for format in [OtlpFormat::Protobuf, OtlpFormat::Json] {
        let body = encode_otlp(&snap, format).expect("encode");
        eprintln!(
            "otlp {format:?}: {series} series, {} bytes ({:.1} per series)",
            body.len(),
            body.len() as f64 / series as f64
        );
    }
    let mut g = c.benchmark_group("export_otlp");
    g.throughput(Throughput::Elements(series));
    g.bench_function("protobuf_1000c_100h", |b| {
        b.iter(|| {
            black_box(
                encode_otlp(black_box(&snap), OtlpFormat::Protobuf)
                    .expect("encode")
                    .len(),
            )
        })
    });
    g.bench_function("json_1000c_100h", |b| {
        b.iter(|| {
            black_box(
                encode_otlp(black_box(&snap), OtlpFormat::Json)
                    .expect("encode")
                    .len(),
            )
        })
    });
    g.finish();
}

#[cfg(not(feature = "otlp"))]
fn otlp(_: &mut Criterion) {}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = prometheus, jsonl, remote_write, otlp
}
criterion_main!(benches);
