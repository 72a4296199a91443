//! The Prometheus protobuf exposition: `io.prometheus.client.MetricFamily`
//! messages, each preceded by its length as a varint (`encoding=delimited`),
//! the only format in which Prometheus scrapes native histograms.
//!
//! Field numbers are those of `io/prometheus/client/metrics.proto`
//! (prometheus/client_model). Families, their order, clashes and repeated
//! series are decided as for the text formats ([`super::exposure`]).

use crate::export::native::{NativeBuckets, STATED_ZERO_THRESHOLD};
use crate::export::proto::ProtoWriter;
use crate::key::Labels;
use crate::metrics::exemplar::bucket_exemplar;
use crate::metrics::histogram::{HistogramSummary, Quantiles};
use crate::snapshot::{CounterValue, Exemplar, HistogramSample, Snapshot};

use super::exposure::{Exposure, Family, FamilyType, HistogramRule};
use super::RenderReport;

/// HTTP `Content-Type` of the Prometheus protobuf exposition, which a
/// scraper asks for in its `Accept` header (Prometheus does with
/// `--enable-feature=native-histograms`, or `scrape_protocols:
/// [PrometheusProto]` from 2.49 on).
///
/// ```
/// assert!(vitals::export::PROTOBUF_CONTENT_TYPE.ends_with("encoding=delimited"));
/// ```
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

// io.prometheus.client.MetricFamily
const FAMILY_NAME: u32 = 1;
const FAMILY_HELP: u32 = 2;
const FAMILY_TYPE: u32 = 3;
const FAMILY_METRIC: u32 = 4;
const FAMILY_UNIT: u32 = 5;
// MetricType
const TYPE_COUNTER: u64 = 0;
const TYPE_GAUGE: u64 = 1;
const TYPE_SUMMARY: u64 = 2;
const TYPE_HISTOGRAM: u64 = 4;
// Metric
const METRIC_LABEL: u32 = 1;
const METRIC_GAUGE: u32 = 2;
const METRIC_COUNTER: u32 = 3;
const METRIC_SUMMARY: u32 = 4;
const METRIC_HISTOGRAM: u32 = 7;
// LabelPair
const LABEL_NAME: u32 = 1;
const LABEL_VALUE: u32 = 2;
// Gauge, Counter
const VALUE: u32 = 1;
const COUNTER_EXEMPLAR: u32 = 2;
// Exemplar
const EXEMPLAR_LABEL: u32 = 1;
const EXEMPLAR_VALUE: u32 = 2;
const EXEMPLAR_TIMESTAMP: u32 = 3;
// google.protobuf.Timestamp
const TIMESTAMP_SECONDS: u32 = 1;
const TIMESTAMP_NANOS: u32 = 2;
// Summary
const SUMMARY_COUNT: u32 = 1;
const SUMMARY_SUM: u32 = 2;
const SUMMARY_QUANTILE: u32 = 3;
// Quantile
const QUANTILE_LEVEL: u32 = 1;
const QUANTILE_VALUE: u32 = 2;
// Histogram
const HISTOGRAM_COUNT: u32 = 1;
const HISTOGRAM_SUM: u32 = 2;
const HISTOGRAM_BUCKET: u32 = 3;
const HISTOGRAM_SCHEMA: u32 = 5;
const HISTOGRAM_ZERO_THRESHOLD: u32 = 6;
const HISTOGRAM_ZERO_COUNT: u32 = 7;
const HISTOGRAM_POSITIVE_SPAN: u32 = 12;
const HISTOGRAM_POSITIVE_DELTA: u32 = 13;
const HISTOGRAM_EXEMPLARS: u32 = 16;
// Bucket
const BUCKET_CUMULATIVE: u32 = 1;
const BUCKET_UPPER_BOUND: u32 = 2;
const BUCKET_EXEMPLAR: u32 = 3;
// BucketSpan
const SPAN_OFFSET: u32 = 1;
const SPAN_LENGTH: u32 = 2;

/// Renders a snapshot in the Prometheus protobuf exposition format
/// ([`PROTOBUF_CONTENT_TYPE`]), which is what the HTTP endpoint serves to a
/// scraper that asks for it.
///
/// Counters, gauges and summaries carry what the text formats carry. A
/// histogram whose series have exponential buckets (collectors built with
/// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets)) is a
/// **native histogram**: schema, zero bucket, spans and deltas of its
/// lifetime buckets, cut to at most
/// [`DEFAULT_MAX_BUCKETS`](crate::layout::DEFAULT_MAX_BUCKETS) by exact
/// downscaling, plus its classic buckets when it was given bounds; count
/// and sum over the series' life. Without exponential buckets a histogram
/// is a summary (or a classic histogram with bounds), as in text.
///
/// ```
/// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
/// metrics.histogram("latency_seconds", &[]).record(0.25);
/// let (body, report) = vitals::export::render_protobuf(&metrics.snapshot());
/// assert_eq!(report.families, 1);
/// // One length-delimited message naming the family.
/// assert_eq!(usize::from(body[0]) + 1, body.len());
/// assert!(body.windows(15).any(|w| w == b"latency_seconds"));
/// ```
pub fn render_protobuf(snapshot: &Snapshot) -> (Vec<u8>, RenderReport) {
    let mut out = ProtoWriter::new();
    let mut report = RenderReport::default();
    let mut exposure = Exposure::default();
    exposure.families(snapshot, HistogramRule::Native, |exposure, family| {
        if exposure.claim(&family.header, &mut report) {
            family_message(&mut out, exposure, snapshot, &family, &mut report);
        }
    });
    (out.into_vec(), report)
}

fn family_message(
    out: &mut ProtoWriter,
    exposure: &mut Exposure,
    snapshot: &Snapshot,
    family: &Family<'_, '_>,
    report: &mut RenderReport,
) {
    let header = &family.header;
    let message = out.begin_untagged();
    match header.kind {
        FamilyType::Counter => {
            // Named like its samples, as in text 0.0.4.
            let mut name = String::with_capacity(header.base.len() + 6);
            name.push_str(header.base);
            name.push_str("_total");
            out.string(FAMILY_NAME, &name);
        }
        _ => out.string(FAMILY_NAME, header.base),
    }
    if let Some(help) = header.help {
        out.string(FAMILY_HELP, help);
    }
    let kind = match header.kind {
        FamilyType::Counter => TYPE_COUNTER,
        FamilyType::Gauge => TYPE_GAUGE,
        FamilyType::Summary => TYPE_SUMMARY,
        FamilyType::Histogram => TYPE_HISTOGRAM,
    };
    out.uint64(FAMILY_TYPE, kind);
    let run = family.run;
    for pos in 0..run.len() {
        let i = run[pos];
        match header.kind {
            FamilyType::Counter => {
                let items = &snapshot.counters;
                if !exposure.is_duplicate(pos, run, |j| &items[j].labels, report) {
                    let value = match items[i].value {
                        CounterValue::Int(v) => v as f64,
                        CounterValue::Float(v) => v,
                    };
                    let m = out.begin(FAMILY_METRIC);
                    labels(out, &items[i].labels);
                    let c = out.begin(METRIC_COUNTER);
                    out.double(VALUE, value);
                    if let Some(e) = &items[i].exemplar {
                        exemplar(out, COUNTER_EXEMPLAR, e);
                    }
                    out.end(c);
                    out.end(m);
                    report.series += 1;
                }
            }
            FamilyType::Gauge => {
                let items = &snapshot.gauges;
                if !exposure.is_duplicate(pos, run, |j| &items[j].labels, report) {
                    value_metric(out, &items[i].labels, METRIC_GAUGE, items[i].value);
                    report.series += 1;
                }
            }
            FamilyType::Summary | FamilyType::Histogram => {
                let items = &snapshot.histograms;
                if !exposure.is_duplicate(pos, run, |j| &items[j].labels, report) {
                    let m = out.begin(FAMILY_METRIC);
                    labels(out, &items[i].labels);
                    if header.kind == FamilyType::Summary {
                        summary(out, &items[i].summary);
                    } else {
                        histogram(out, &items[i]);
                    }
                    out.end(m);
                    report.series += 1;
                }
            }
        }
    }
    if let Some(unit) = header.stated_unit() {
        out.string(FAMILY_UNIT, unit);
    }
    out.end(message);
}

fn labels(out: &mut ProtoWriter, labels: &Labels) {
    for (k, v) in labels.iter() {
        let pair = out.begin(METRIC_LABEL);
        out.string(LABEL_NAME, k);
        out.string(LABEL_VALUE, v);
        out.end(pair);
    }
}

/// A `Metric` with a `Gauge`.
fn value_metric(out: &mut ProtoWriter, series: &Labels, field: u32, value: f64) {
    let m = out.begin(FAMILY_METRIC);
    labels(out, series);
    let v = out.begin(field);
    out.double(VALUE, value);
    out.end(v);
    out.end(m);
}

fn exemplar(out: &mut ProtoWriter, field: u32, e: &Exemplar) {
    let m = out.begin(field);
    for (k, v) in e.labels.iter() {
        let pair = out.begin(EXEMPLAR_LABEL);
        out.string(LABEL_NAME, k);
        out.string(LABEL_VALUE, v);
        out.end(pair);
    }
    out.double(EXEMPLAR_VALUE, e.value);
    let t = out.begin(EXEMPLAR_TIMESTAMP);
    let ms = e.timestamp_unix_ms;
    out.int64(
        TIMESTAMP_SECONDS,
        i64::try_from(ms / 1000).unwrap_or(i64::MAX),
    );
    out.int64(TIMESTAMP_NANOS, ((ms % 1000) * 1_000_000) as i64);
    out.end(t);
    out.end(m);
}

fn summary(out: &mut ProtoWriter, s: &HistogramSummary) {
    let m = out.begin(METRIC_SUMMARY);
    out.uint64(SUMMARY_COUNT, s.lifetime.count);
    out.double(SUMMARY_SUM, s.lifetime.sum);
    for level in Quantiles::LEVELS {
        let q = out.begin(SUMMARY_QUANTILE);
        out.double(QUANTILE_LEVEL, level);
        let value = s.window.quantiles.and_then(|q| q.get(level));
        out.double(QUANTILE_VALUE, value.unwrap_or(f64::NAN));
        out.end(q);
    }
    out.end(m);
}

fn histogram(out: &mut ProtoWriter, s: &HistogramSample) {
    let summary = &s.summary;
    let native = NativeBuckets::of_lifetime(summary);
    // The count the buckets add up to: the native buckets' when there are
    // some (a consumer checks that they agree), else the classic `+Inf`.
    let count = match (&native, &summary.buckets) {
        (Some(b), _) => b.count,
        (None, Some(b)) => b.count,
        (None, None) => summary.lifetime.count,
    };
    let m = out.begin(METRIC_HISTOGRAM);
    out.uint64(HISTOGRAM_COUNT, count);
    out.double(HISTOGRAM_SUM, summary.lifetime.sum);
    if let Some(classic) = &summary.buckets {
        let mut last = 0u64;
        let mut lower = f64::NEG_INFINITY;
        for (&bound, &c) in classic.bounds.iter().zip(&classic.cumulative) {
            // Cumulative, and never past the count, even for a malformed
            // snapshot.
            last = last.max(c).min(classic.count);
            let b = out.begin(HISTOGRAM_BUCKET);
            out.uint64(BUCKET_CUMULATIVE, last);
            out.double(BUCKET_UPPER_BOUND, bound);
            if let Some(e) = bucket_exemplar(&s.exemplars, lower, bound) {
                exemplar(out, BUCKET_EXEMPLAR, e);
            }
            out.end(b);
            lower = bound;
        }
    }
    if let Some(b) = &native {
        native_buckets(out, b);
        // A native histogram's exemplars go beside its buckets.
        for e in &s.exemplars {
            exemplar(out, HISTOGRAM_EXEMPLARS, e);
        }
    }
    out.end(m);
}

/// Schema, zero bucket, and the positive buckets as spans and deltas
/// ([`NativeBuckets`]).
fn native_buckets(out: &mut ProtoWriter, b: &NativeBuckets) {
    out.sint64(HISTOGRAM_SCHEMA, i64::from(b.scale));
    out.double(HISTOGRAM_ZERO_THRESHOLD, STATED_ZERO_THRESHOLD);
    out.uint64(HISTOGRAM_ZERO_COUNT, b.zeros);
    for &(offset, len) in &b.spans {
        let s = out.begin(HISTOGRAM_POSITIVE_SPAN);
        out.sint64(SPAN_OFFSET, i64::from(offset));
        out.uint64(SPAN_LENGTH, u64::from(len));
        out.end(s);
    }
    out.packed_sint64(HISTOGRAM_POSITIVE_DELTA, b.deltas.iter().copied());
}
