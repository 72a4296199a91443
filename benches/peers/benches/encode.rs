//! Text exposition of one registry by `vitals` and its peers, in one run.
//!
//! Every contender holds the same series: 1,000 counters (10 names × 100
//! values of label `id`) and 100 histograms (10 names × 10 label values),
//! each histogram fed the same 1,000 log-uniform values. The figure is one
//! scrape: for `vitals` a fresh snapshot plus the Prometheus 0.0.4 render
//! (summaries with window quantiles); for `prometheus-client` and
//! `prometheus` their text encoders (bucketed histograms, 20 buckets); for
//! `metrics-exporter-prometheus` its handle's `render`, with its default
//! summaries and with 20 buckets. `vitals` reuses a histogram's statistics
//! when nothing was written to it since the last snapshot, so it is also
//! measured with one new value in every histogram before each scrape.
//!
//! Run with `cargo bench -p vitals-peer-benches --bench encode`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram as PcHistogram};
use vitals::export::{TextFormat, TextRenderer};

type PcLabels = Vec<(String, String)>;

const NAMES: u64 = 10;
const COUNTER_LABELS: u64 = 100;
const HISTOGRAM_LABELS: u64 = 10;
const VALUES_PER_HISTOGRAM: usize = 1000;

/// 1,000 values log-uniform over 1 µs .. 1 s, the same for every contender.
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

/// 20 buckets from 1 µs doubling up to about 0.5 s.
fn buckets() -> Vec<f64> {
    exponential_buckets(1e-6, 2.0, 20).collect()
}

fn vitals_registry(values: &[f64]) -> vitals::MetricsCollector {
    let m = vitals::MetricsCollector::new();
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

fn pc_registry(values: &[f64]) -> prometheus_client::registry::Registry {
    let mut registry = prometheus_client::registry::Registry::default();
    for name in 0..NAMES {
        let counters = Family::<PcLabels, PcCounter>::default();
        for id in 0..COUNTER_LABELS {
            counters
                .get_or_create(&vec![("id".to_owned(), id.to_string())])
                .inc_by(id * 1000 + name);
        }
        registry.register(format!("counter_{name}"), "A counter", counters);
        let histograms =
            Family::<PcLabels, PcHistogram, fn() -> PcHistogram>::new_with_constructor(|| {
                PcHistogram::new(exponential_buckets(1e-6, 2.0, 20))
            });
        for id in 0..HISTOGRAM_LABELS {
            let h = histograms.get_or_create(&vec![("id".to_owned(), id.to_string())]);
            for v in values {
                h.observe(*v);
            }
        }
        registry.register(
            format!("histogram_{name}_seconds"),
            "A histogram",
            histograms,
        );
    }
    registry
}

fn prom_registry(values: &[f64]) -> prometheus::Registry {
    let registry = prometheus::Registry::new();
    for name in 0..NAMES {
        let counters = prometheus::IntCounterVec::new(
            prometheus::Opts::new(format!("counter_{name}_total"), "A counter"),
            &["id"],
        )
        .expect("valid counter");
        for id in 0..COUNTER_LABELS {
            counters
                .with_label_values(&[id.to_string().as_str()])
                .inc_by(id * 1000 + name);
        }
        registry
            .register(Box::new(counters))
            .expect("register counter");
        let histograms = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(format!("histogram_{name}_seconds"), "A histogram")
                .buckets(buckets()),
            &["id"],
        )
        .expect("valid histogram");
        for id in 0..HISTOGRAM_LABELS {
            let h = histograms.with_label_values(&[id.to_string().as_str()]);
            for v in values {
                h.observe(*v);
            }
        }
        registry
            .register(Box::new(histograms))
            .expect("register histogram");
    }
    registry
}

fn metrics_recorder(values: &[f64], bucketed: bool) -> PrometheusRecorder {
    let mut builder = PrometheusBuilder::new();
    if bucketed {
        builder = builder.set_buckets(&buckets()).expect("valid buckets");
    }
    let recorder = builder.build_recorder();
    metrics::with_local_recorder(&recorder, || {
        for name in 0..NAMES {
            let counter = format!("counter_{name}_total");
            for id in 0..COUNTER_LABELS {
                metrics::counter!(counter.clone(), "id" => id.to_string())
                    .increment(id * 1000 + name);
            }
            let histogram = format!("histogram_{name}_seconds");
            for id in 0..HISTOGRAM_LABELS {
                let h = metrics::histogram!(histogram.clone(), "id" => id.to_string());
                for v in values {
                    h.record(*v);
                }
            }
        }
    });
    recorder
}

fn encode(c: &mut Criterion) {
    let values = values();
    let mut g = c.benchmark_group("encode_1000_counters_100_histograms");

    let vitals = vitals_registry(&values);
    let mut renderer = TextRenderer::new(TextFormat::Prometheus);
    let mut out = String::new();
    g.bench_function("vitals_snapshot_and_render", |b| {
        b.iter(|| {
            out.clear();
            renderer.render_into(&vitals.snapshot(), &mut out);
            black_box(out.len())
        })
    });

    // The same, with one new value in every histogram before each scrape,
    // so that no series' statistics can come from the last snapshot: what a
    // scrape of a busy service costs. The 100 records are in the figure.
    let handles: Vec<vitals::Histogram> = (0..NAMES)
        .flat_map(|name| {
            let vitals = &vitals;
            (0..HISTOGRAM_LABELS).map(move |id| {
                vitals.histogram(
                    &format!("histogram_{name}_seconds"),
                    &[("id", &id.to_string())],
                )
            })
        })
        .collect();
    let mut next = 0;
    g.bench_function("vitals_snapshot_and_render_after_writes", |b| {
        b.iter(|| {
            for h in &handles {
                next = (next + 1) % values.len();
                h.record(values[next]);
            }
            out.clear();
            renderer.render_into(&vitals.snapshot(), &mut out);
            black_box(out.len())
        })
    });

    let pc = pc_registry(&values);
    let mut pc_out = String::new();
    g.bench_function("prometheus_client_encode", |b| {
        b.iter(|| {
            pc_out.clear();
            prometheus_client::encoding::text::encode(&mut pc_out, &pc).expect("encode");
            black_box(pc_out.len())
        })
    });

    let prom = prom_registry(&values);
    let encoder = prometheus::TextEncoder::new();
    g.bench_function("prometheus_gather_and_encode", |b| {
        b.iter(|| {
            black_box(
                encoder
                    .encode_to_string(&prom.gather())
                    .expect("encode")
                    .len(),
            )
        })
    });

    let summaries = metrics_recorder(&values, false).handle();
    g.bench_function("metrics_exporter_render_summaries", |b| {
        b.iter(|| black_box(summaries.render().len()))
    });
    let bucketed = metrics_recorder(&values, true).handle();
    g.bench_function("metrics_exporter_render_buckets", |b| {
        b.iter(|| black_box(bucketed.render().len()))
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
