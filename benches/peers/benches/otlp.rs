//! OTLP encoding of one registry by `vitals` and by the OpenTelemetry SDK,
//! in one run.
//!
//! Both hold the same series: 1,000 counters (10 names × 100 values of
//! label `id`) and 100 histograms (10 names × 10 label values), each
//! histogram fed the same 1,000 log-uniform values, as exponential
//! histograms of at most 160 buckets. The figure is one export's encoding:
//! for `vitals` a fresh snapshot plus `encode_otlp` (protobuf, cumulative);
//! for the SDK a collect through a manual reader (cumulative) plus
//! `opentelemetry-proto`'s conversion to its prost messages and their
//! encoding.
//!
//! Two cases: the registry as it stands (every export sees the histograms
//! of the last one: `vitals` reuses what it derived from their buckets),
//! and every histogram given one more value before each export (nothing
//! can be reused: the `_changed` functions).
//!
//! Run with `cargo bench -p vitals-peer-benches --bench otlp`.

use std::hint::black_box;
use std::sync::{Arc, Weak};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Stream,
    Temporality,
};
use prost::Message;
use vitals::export::push::{encode_otlp, OtlpFormat};

const NAMES: u64 = 10;
const COUNTER_LABELS: u64 = 100;
const HISTOGRAM_LABELS: u64 = 10;
const VALUES_PER_HISTOGRAM: usize = 1000;

/// 1,000 values log-uniform over 1 µs .. 1 s, the same for both.
fn values() -> Vec<f64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..VALUES_PER_HISTOGRAM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            10f64.powf((x >> 11) as f64 / (1u64 << 53) as f64 * 6.0) / 1e6
        })
        .collect()
}

fn vitals_registry(values: &[f64]) -> vitals::MetricsCollector {
    let m = vitals::MetricsCollector::builder()
        .lifetime_buckets(true)
        .build();
    for name in 0..NAMES {
        let counter = format!("counter_{name}_total");
        for id in 0..COUNTER_LABELS {
            m.counter(&counter, &[("id", &id.to_string())])
                .increment(id * 1000 + name);
        }
        let histogram = format!("histogram_{name}_seconds");
        for id in 0..HISTOGRAM_LABELS {
            let h = m.histogram(&histogram, &[("id", &id.to_string())]);
            for v in values {
                h.record(*v);
            }
        }
    }
    m
}

/// A manual reader the bench keeps a handle on after giving it to the
/// provider.
#[derive(Debug, Clone)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

fn sdk_registry(values: &[f64]) -> (SdkMeterProvider, SharedReader) {
    let reader = SharedReader(Arc::new(
        ManualReader::builder()
            .with_temporality(Temporality::Cumulative)
            .build(),
    ));
    let provider = SdkMeterProvider::builder()
        .with_reader(reader.clone())
        .with_view(|i: &Instrument| {
            (i.kind() == InstrumentKind::Histogram).then(|| {
                Stream::builder()
                    .with_aggregation(Aggregation::Base2ExponentialHistogram {
                        max_size: 160,
                        max_scale: 6,
                        record_min_max: true,
                    })
                    .build()
                    .expect("a valid stream")
            })
        })
        .build();
    let meter = provider.meter("bench");
    for name in 0..NAMES {
        let counter = meter.u64_counter(format!("counter_{name}_total")).build();
        for id in 0..COUNTER_LABELS {
            counter.add(id * 1000 + name, &[KeyValue::new("id", id.to_string())]);
        }
        let histogram = meter
            .f64_histogram(format!("histogram_{name}_seconds"))
            .build();
        for id in 0..HISTOGRAM_LABELS {
            let attrs = [KeyValue::new("id", id.to_string())];
            for v in values {
                histogram.record(*v, &attrs);
            }
        }
    }
    (provider, reader)
}

fn sdk_encode(reader: &SharedReader) -> Vec<u8> {
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).expect("collect");
    ExportMetricsServiceRequest::from(&rm).encode_to_vec()
}

fn encode(c: &mut Criterion) {
    let values = values();
    let metrics = vitals_registry(&values);
    let (provider, reader) = sdk_registry(&values);
    let ours = encode_otlp(&metrics.snapshot(), OtlpFormat::Protobuf).expect("encode");
    let theirs = sdk_encode(&reader);
    eprintln!(
        "otlp protobuf bytes: vitals {}, opentelemetry_sdk {}",
        ours.len(),
        theirs.len()
    );
    let mut g = c.benchmark_group("otlp_encode_1000c_100h");
    g.bench_function("vitals_snapshot_encode", |b| {
        b.iter(|| {
            black_box(
                encode_otlp(&metrics.snapshot(), OtlpFormat::Protobuf)
                    .expect("encode")
                    .len(),
            )
        })
    });
    // The two halves of vitals' figure.
    g.bench_function("vitals_snapshot_only", |b| {
        b.iter(|| black_box(metrics.snapshot().histograms.len()))
    });
    let snap = metrics.snapshot();
    g.bench_function("vitals_encode_only", |b| {
        b.iter(|| {
            black_box(
                encode_otlp(black_box(&snap), OtlpFormat::Protobuf)
                    .expect("encode")
                    .len(),
            )
        })
    });
    g.bench_function("opentelemetry_sdk_collect_encode", |b| {
        b.iter(|| black_box(sdk_encode(&reader).len()))
    });
    // Every histogram series moved since the last export.
    let handles: Vec<_> = (0..NAMES)
        .flat_map(|name| {
            let metrics = &metrics;
            (0..HISTOGRAM_LABELS).map(move |id| {
                metrics.histogram(
                    &format!("histogram_{name}_seconds"),
                    &[("id", &id.to_string())],
                )
            })
        })
        .collect();
    let mut at = 0;
    g.bench_function("vitals_snapshot_encode_changed", |b| {
        b.iter(|| {
            at = (at + 1) % values.len();
            for h in &handles {
                h.record(values[at]);
            }
            black_box(
                encode_otlp(&metrics.snapshot(), OtlpFormat::Protobuf)
                    .expect("encode")
                    .len(),
            )
        })
    });
    let meter = provider.meter("bench");
    let instruments: Vec<_> = (0..NAMES)
        .map(|name| {
            meter
                .f64_histogram(format!("histogram_{name}_seconds"))
                .build()
        })
        .collect();
    let attrs: Vec<_> = (0..HISTOGRAM_LABELS)
        .map(|id| [KeyValue::new("id", id.to_string())])
        .collect();
    g.bench_function("opentelemetry_sdk_collect_encode_changed", |b| {
        b.iter(|| {
            at = (at + 1) % values.len();
            for h in &instruments {
                for a in &attrs {
                    h.record(values[at], a);
                }
            }
            black_box(sdk_encode(&reader).len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode
}
criterion_main!(benches);
