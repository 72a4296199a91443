//! Hot-path cost of `vitals` next to peer metrics crates, in one run.
//!
//! Each criterion group is one operation, and every contender for that
//! operation is a function in the same group, so a ratio such as
//! "vitals / prometheus-client" comes from numbers measured minutes apart on
//! the same machine with the same build. The groups are:
//!
//! 1. `counter_inc_1thread` — one thread adds 1 to an unlabelled counter: a
//!    bare `AtomicU64` (the floor), the `metrics` facade (macro per call and a
//!    held handle, with `metrics-exporter-prometheus` as global recorder),
//!    `prometheus`, `prometheus-client`, and `vitals` (macro and held handle).
//! 2. `counter_inc_runtime_label` — one label whose value is picked at run
//!    time from four, so each call has to find the right series.
//! 3. `counter_inc_2threads_same` — two threads increment the *same* counter;
//!    the figure is wall time per increment per thread (see
//!    [`vitals_peer_benches::run_two_threads`]), so contention shows up.
//! 4. `histogram_record_1thread` — record values spread log-uniformly over
//!    1..1e6 (see [`vitals_peer_benches::log_uniform_values`]).
//! 5. `histogram_record_2threads_same` — two threads record into the same
//!    histogram.
//!
//! Run with `cargo bench -p vitals-peer-benches`. Every figure is the cost of
//! one operation: criterion prints its regression/mean estimate, and the
//! per-operation median is in `<target>/criterion/<group>/<contender>/new/
//! estimates.json` under `median.point_estimate` (nanoseconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use metrics_exporter_prometheus::PrometheusBuilder;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{
    exponential_buckets, Histogram as PcHistogram, NativeHistogramConfig,
};
use vitals_peer_benches::{log_uniform_values, run_two_threads, METHODS, VALUE_COUNT, VALUE_MASK};

/// Installs the `metrics-exporter-prometheus` recorder as the process-wide
/// `metrics` recorder, once.
///
/// `install_recorder` leaves upkeep to the caller; without it the exporter
/// keeps every histogram sample in memory until the next scrape. A background
/// thread therefore runs upkeep once a second, as a real deployment would (the
/// exporter's own HTTP listener does the same on a timer).
fn install_metrics_recorder() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .install_recorder()
            .expect("install metrics-exporter-prometheus recorder");
        thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                thread::sleep(Duration::from_secs(1));
                handle.run_upkeep();
            })
            .expect("spawn metrics upkeep thread");
    });
}

/// Label value type for the prometheus-client "enum Family" contender.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// The same four values as [`METHODS`], as enum variants.
const METHOD_ENUMS: [Method; 4] = [Method::Get, Method::Post, Method::Put, Method::Delete];

/// Label set for the prometheus-client "enum Family" contender.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: Method,
}

fn counter_inc_1thread(c: &mut Criterion) {
    install_metrics_recorder();
    let mut group = c.benchmark_group("counter_inc_1thread");

    let raw = AtomicU64::new(0);
    group.bench_function("raw_atomic", |b| {
        b.iter(|| raw.fetch_add(1, Ordering::Relaxed))
    });

    group.bench_function("metrics_macro", |b| {
        b.iter(|| metrics::counter!("peer_c").increment(1))
    });

    let metrics_handle = metrics::counter!("peer_c_handle");
    group.bench_function("metrics_handle", |b| b.iter(|| metrics_handle.increment(1)));

    let prom_registry = prometheus::Registry::new();
    let prom = prometheus::IntCounter::new("peer_c", "peer counter").expect("valid counter");
    prom_registry
        .register(Box::new(prom.clone()))
        .expect("register prometheus counter");
    group.bench_function("prometheus", |b| b.iter(|| prom.inc()));

    let mut pc_registry = prometheus_client::registry::Registry::default();
    let pc = PcCounter::<u64>::default();
    pc_registry.register("peer_c", "peer counter", pc.clone());
    group.bench_function("prometheus_client", |b| b.iter(|| pc.inc()));

    group.bench_function("vitals_macro", |b| {
        b.iter(|| vitals::counter!("vitals_c").increment(1))
    });

    let vitals_handle = vitals::global().counter("vitals_c_handle", &[]);
    group.bench_function("vitals_handle", |b| b.iter(|| vitals_handle.increment(1)));

    group.finish();
    black_box((raw.load(Ordering::Relaxed), prom.get(), pc.get()));
}

fn counter_inc_runtime_label(c: &mut Criterion) {
    install_metrics_recorder();
    let mut group = c.benchmark_group("counter_inc_runtime_label");

    group.bench_function("metrics_macro", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let m = METHODS[black_box(i) & 3];
            i = i.wrapping_add(1);
            metrics::counter!("peer_l", "method" => m).increment(1);
        })
    });

    let prom = prometheus::IntCounterVec::new(
        prometheus::Opts::new("peer_l", "peer labelled counter"),
        &["method"],
    )
    .expect("valid counter vec");
    group.bench_function("prometheus", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let m = METHODS[black_box(i) & 3];
            i = i.wrapping_add(1);
            prom.with_label_values(&[m]).inc();
        })
    });

    let enum_family = Family::<MethodLabels, PcCounter>::default();
    group.bench_function("prometheus_client_enum_family", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let method = METHOD_ENUMS[black_box(i) & 3];
            i = i.wrapping_add(1);
            enum_family.get_or_create(&MethodLabels { method }).inc();
        })
    });

    let string_family = Family::<Vec<(String, String)>, PcCounter>::default();
    group.bench_function("prometheus_client_string_family", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let m = METHODS[black_box(i) & 3];
            i = i.wrapping_add(1);
            // A String-keyed Family is looked up with an owned label set, so a
            // user has to build one per call: one Vec and two Strings. This
            // allocation is part of what that API costs, so it is timed.
            let labels = vec![("method".to_owned(), m.to_owned())];
            string_family.get_or_create(&labels).inc();
        })
    });

    group.bench_function("vitals_macro", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let m = METHODS[black_box(i) & 3];
            i = i.wrapping_add(1);
            vitals::counter!("vitals_l", "method" => m).increment(1);
        })
    });

    group.finish();
}

fn counter_inc_2threads_same(c: &mut Criterion) {
    install_metrics_recorder();
    let mut group = c.benchmark_group("counter_inc_2threads_same");

    let raw = AtomicU64::new(0);
    group.bench_function("raw_atomic", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    raw.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
    });

    let prom = prometheus::IntCounter::new("peer_c2", "peer counter").expect("valid counter");
    group.bench_function("prometheus", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    prom.inc();
                }
            })
        })
    });

    let metrics_handle = metrics::counter!("peer_c2_handle");
    group.bench_function("metrics_handle", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    metrics_handle.increment(1);
                }
            })
        })
    });

    let pc = PcCounter::<u64>::default();
    group.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    pc.inc();
                }
            })
        })
    });

    let vitals_handle = vitals::global().counter("vitals_c2_handle", &[]);
    group.bench_function("vitals_handle", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    vitals_handle.increment(1);
                }
            })
        })
    });

    group.bench_function("vitals_macro", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |_, n| {
                for _ in 0..n {
                    vitals::counter!("vitals_c2").increment(1);
                }
            })
        })
    });

    group.finish();
    black_box((raw.load(Ordering::Relaxed), prom.get(), pc.get()));
}

/// A bare HdrHistogram covering 1..1e7 with 3 significant digits.
fn new_hdr() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).expect("valid hdr bounds")
}

/// An OpenTelemetry SDK histogram aggregated as a base-2 exponential
/// histogram at scale 6 with 160 buckets (the OTel default size), read by a
/// manual reader; the provider must outlive the instrument's use.
fn otel_exponential_histogram() -> (
    opentelemetry_sdk::metrics::SdkMeterProvider,
    opentelemetry::metrics::Histogram<f64>,
) {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{
        Aggregation, Instrument, InstrumentKind, ManualReader, SdkMeterProvider, Stream,
    };
    let provider = SdkMeterProvider::builder()
        .with_reader(ManualReader::builder().build())
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
    let histogram = provider.meter("bench").f64_histogram("peer_exp").build();
    (provider, histogram)
}

fn histogram_record_1thread(c: &mut Criterion) {
    install_metrics_recorder();
    let values = log_uniform_values();
    let mut group = c.benchmark_group("histogram_record_1thread");

    let mut hdr = new_hdr();
    group.bench_function("hdrhistogram", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            hdr.saturating_record(v);
        })
    });
    black_box(hdr.len());

    let hdr_mutex = parking_lot::Mutex::new(new_hdr());
    group.bench_function("hdrhistogram_mutex", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            hdr_mutex.lock().saturating_record(v);
        })
    });

    // Default buckets (0.005 .. 10): most of these values land in +Inf, which
    // is what an unconfigured prometheus histogram does with such data.
    let prom = prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
        "peer_h",
        "peer histogram",
    ))
    .expect("valid histogram");
    group.bench_function("prometheus", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            prom.observe(v as f64);
        })
    });

    let pc = PcHistogram::new(exponential_buckets(1.0, 2.0, 20));
    group.bench_function("prometheus_client", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            pc.observe(v as f64);
        })
    });

    // The exponential (native) histograms, at vitals' scale 6.
    let pc_native = PcHistogram::new_native(NativeHistogramConfig::with_schema(6));
    group.bench_function("prometheus_client_native", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            pc_native.observe(v as f64);
        })
    });

    let (otel_provider, otel_histogram) = otel_exponential_histogram();
    group.bench_function("opentelemetry_sdk_exponential", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            otel_histogram.record(v as f64, &[]);
        })
    });
    drop(otel_provider);

    group.bench_function("metrics_macro", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            metrics::histogram!("peer_h").record(v as f64);
        })
    });

    group.bench_function("vitals_macro", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            vitals::histogram!("vitals_h").record(v as f64);
        })
    });

    let vitals_handle = vitals::global().histogram("vitals_h_handle", &[]);
    group.bench_function("vitals_handle", |b| {
        let mut i = 0usize;
        b.iter(|| {
            let v = values[i & VALUE_MASK];
            i = i.wrapping_add(1);
            vitals_handle.record(v as f64);
        })
    });

    group.finish();
    black_box((hdr_mutex.lock().len(), prom.get_sample_count()));
}

fn histogram_record_2threads_same(c: &mut Criterion) {
    let values = log_uniform_values();
    let values = values.as_slice();
    // The two threads start half the value table apart so that they do not
    // record identical sequences in lock step.
    let start = |thread: usize| thread * (VALUE_COUNT / 2);
    let mut group = c.benchmark_group("histogram_record_2threads_same");

    let hdr_mutex = parking_lot::Mutex::new(new_hdr());
    group.bench_function("hdrhistogram_mutex", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |thread, n| {
                let mut i = start(thread);
                for _ in 0..n {
                    hdr_mutex.lock().saturating_record(values[i & VALUE_MASK]);
                    i = i.wrapping_add(1);
                }
            })
        })
    });

    let pc = PcHistogram::new(exponential_buckets(1.0, 2.0, 20));
    group.bench_function("prometheus_client", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |thread, n| {
                let mut i = start(thread);
                for _ in 0..n {
                    pc.observe(values[i & VALUE_MASK] as f64);
                    i = i.wrapping_add(1);
                }
            })
        })
    });

    let prom = prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
        "peer_h2",
        "peer histogram",
    ))
    .expect("valid histogram");
    group.bench_function("prometheus", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |thread, n| {
                let mut i = start(thread);
                for _ in 0..n {
                    prom.observe(values[i & VALUE_MASK] as f64);
                    i = i.wrapping_add(1);
                }
            })
        })
    });

    let vitals_handle = vitals::global().histogram("vitals_h2_handle", &[]);
    group.bench_function("vitals_handle", |b| {
        b.iter_custom(|iters| {
            run_two_threads(iters, |thread, n| {
                let mut i = start(thread);
                for _ in 0..n {
                    vitals_handle.record(values[i & VALUE_MASK] as f64);
                    i = i.wrapping_add(1);
                }
            })
        })
    });

    group.finish();
    black_box((hdr_mutex.lock().len(), prom.get_sample_count()));
}

/// Short runs: 29 benchmarks at ~4 s each keep the whole suite to a few
/// minutes on a 2-core machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = peers;
    config = config();
    targets = counter_inc_1thread,
        counter_inc_runtime_label,
        counter_inc_2threads_same,
        histogram_record_1thread,
        histogram_record_2threads_same
}
criterion_main!(peers);
