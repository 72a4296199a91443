//! Encoding a point set as a protobuf `ExportMetricsServiceRequest` with
//! the crate's one writer (OTLP/JSON is in [`json`](super::json)).
//!
//! Field numbers are those of opentelemetry-proto
//! (`collector/metrics/v1/metrics_service.proto`, `metrics/v1/metrics.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`).

use std::borrow::Cow;

use crate::export::proto::{varint_len, ProtoWriter, WireType};
use crate::key::Labels;
use crate::snapshot::{Exemplar, SparseBuckets};

use super::set::{MetricPoints, MetricSet, Point, Shape, Value};
use super::Temporality;

mod field {
    /// `ExportMetricsServiceRequest.resource_metrics`.
    pub(super) const RESOURCE_METRICS: u32 = 1;
    /// `ResourceMetrics.resource`, `.scope_metrics`.
    pub(super) const RESOURCE: u32 = 1;
    pub(super) const SCOPE_METRICS: u32 = 2;
    /// `Resource.attributes`.
    pub(super) const RESOURCE_ATTRIBUTES: u32 = 1;
    /// `ScopeMetrics.scope`, `.metrics`.
    pub(super) const SCOPE: u32 = 1;
    pub(super) const METRICS: u32 = 2;
    /// `InstrumentationScope.name`, `.version`.
    pub(super) const SCOPE_NAME: u32 = 1;
    pub(super) const SCOPE_VERSION: u32 = 2;
    /// `KeyValue.key`, `.value`; `AnyValue.string_value`.
    pub(super) const KEY: u32 = 1;
    pub(super) const VALUE: u32 = 2;
    pub(super) const STRING_VALUE: u32 = 1;
    /// `Metric.name`, `.description`, `.unit`, and the `data` oneof.
    pub(super) const NAME: u32 = 1;
    pub(super) const DESCRIPTION: u32 = 2;
    pub(super) const UNIT: u32 = 3;
    pub(super) const GAUGE: u32 = 5;
    pub(super) const SUM: u32 = 7;
    pub(super) const HISTOGRAM: u32 = 9;
    pub(super) const EXPONENTIAL_HISTOGRAM: u32 = 10;
    pub(super) const SUMMARY: u32 = 11;
    /// `Gauge`/`Sum`/`Histogram`/`ExponentialHistogram`/`Summary`
    /// `.data_points`; `.aggregation_temporality`; `Sum.is_monotonic`.
    pub(super) const DATA_POINTS: u32 = 1;
    pub(super) const TEMPORALITY: u32 = 2;
    pub(super) const IS_MONOTONIC: u32 = 3;
    /// Every data point's `start_time_unix_nano`, `time_unix_nano`.
    pub(super) const START_TIME: u32 = 2;
    pub(super) const TIME: u32 = 3;
    /// `exemplars` of `NumberDataPoint`, `HistogramDataPoint`,
    /// `ExponentialHistogramDataPoint`.
    pub(super) const NUMBER_EXEMPLARS: u32 = 5;
    pub(super) const HISTOGRAM_EXEMPLARS: u32 = 8;
    pub(super) const EXP_EXEMPLARS: u32 = 11;
    /// `Exemplar.filtered_attributes`, `.time_unix_nano`, `.as_double`,
    /// `.span_id`, `.trace_id`.
    pub(super) const EXEMPLAR_ATTRIBUTES: u32 = 7;
    pub(super) const EXEMPLAR_TIME: u32 = 2;
    pub(super) const EXEMPLAR_AS_DOUBLE: u32 = 3;
    pub(super) const EXEMPLAR_SPAN_ID: u32 = 4;
    pub(super) const EXEMPLAR_TRACE_ID: u32 = 5;
    /// `NumberDataPoint`.
    pub(super) const NUMBER_ATTRIBUTES: u32 = 7;
    pub(super) const AS_DOUBLE: u32 = 4;
    pub(super) const AS_INT: u32 = 6;
    /// `HistogramDataPoint`.
    pub(super) const HISTOGRAM_ATTRIBUTES: u32 = 9;
    pub(super) const COUNT: u32 = 4;
    pub(super) const SUM_VALUE: u32 = 5;
    pub(super) const BUCKET_COUNTS: u32 = 6;
    pub(super) const EXPLICIT_BOUNDS: u32 = 7;
    pub(super) const HISTOGRAM_MIN: u32 = 11;
    pub(super) const HISTOGRAM_MAX: u32 = 12;
    /// `ExponentialHistogramDataPoint` (and its `Buckets`).
    pub(super) const EXP_ATTRIBUTES: u32 = 1;
    pub(super) const SCALE: u32 = 6;
    pub(super) const ZERO_COUNT: u32 = 7;
    pub(super) const POSITIVE: u32 = 8;
    pub(super) const EXP_MIN: u32 = 12;
    pub(super) const EXP_MAX: u32 = 13;
    pub(super) const OFFSET: u32 = 1;
    pub(super) const EXP_BUCKET_COUNTS: u32 = 2;
    /// `SummaryDataPoint` and `ValueAtQuantile`.
    pub(super) const SUMMARY_ATTRIBUTES: u32 = 7;
    pub(super) const QUANTILE_VALUES: u32 = 6;
    pub(super) const QUANTILE: u32 = 1;
    pub(super) const QUANTILE_VALUE: u32 = 2;
}

/// `AggregationTemporality` values.
pub(super) fn temporality_code(t: Temporality) -> u64 {
    match t {
        Temporality::Delta => 1,
        Temporality::Cumulative => 2,
    }
}

/// What every request says besides its points.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) scope_name: String,
    pub(crate) scope_version: String,
    pub(crate) temporality: Temporality,
    pub(crate) max_buckets: usize,
}

/// An exponential point's buckets within the bucket limit. Points are
/// fitted when made; only deltas merged while the backend was down may
/// need it again.
pub(super) fn fitted(buckets: &SparseBuckets, max: usize) -> Cow<'_, SparseBuckets> {
    if buckets.fit_steps(max) == 0 {
        Cow::Borrowed(buckets)
    } else {
        let mut b = buckets.clone();
        b.fit(max);
        Cow::Owned(b)
    }
}

/// An exponential point's count, sum, scale, zero count and `positive`
/// `Buckets`: the offset and the counts from it, empty buckets between
/// included.
///
/// The offset is OpenTelemetry's bucket index, one less than vitals' (and
/// Prometheus'): OpenTelemetry's bucket `i` holds (base^i, base^(i+1)],
/// vitals' bucket `i` holds (base^(i−1), base^i].
///
/// Hot path: points hold their buckets ascending and within the
/// trackable range, so the counts are written straight from the sparse
/// pairs in one pass (no dense copy), in messages opened with room for a
/// length of one byte a bucket; anything else is undone and goes through
/// [`SparseBuckets::offset_counts`], which sorts it out.
fn exponential_buckets(w: &mut ProtoWriter, b: &SparseBuckets, sum: f64) {
    w.fixed64(field::COUNT, b.count());
    w.double(field::SUM_VALUE, sum);
    w.sint64(field::SCALE, i64::from(b.scale));
    w.fixed64(field::ZERO_COUNT, b.zeros);
    if let Some((first, last)) = trackable_span(b) {
        let undo = w.len();
        let guess = (i64::from(last) - i64::from(first) + 1) as usize;
        let positive = w.begin_sized(field::POSITIVE, guess + 4);
        w.sint64(field::OFFSET, i64::from(otel_index(first)));
        let packed = w.begin_sized(field::EXP_BUCKET_COUNTS, guess);
        let mut next = first;
        let mut ascending = true;
        for &(i, c) in &b.counts {
            if i < next {
                ascending = false;
                break;
            }
            // An empty bucket is a varint 0, a zero byte.
            if i > next {
                w.zeroed((i - next) as usize);
            }
            w.varint(c);
            next = i + 1;
        }
        w.end(packed);
        w.end(positive);
        if ascending {
            return;
        }
        w.truncate(undo);
    }
    let (offset, counts) = b.offset_counts();
    if !counts.is_empty() {
        let positive = w.begin(field::POSITIVE);
        w.sint64(field::OFFSET, i64::from(otel_index(offset)));
        w.packed_uint64(field::EXP_BUCKET_COUNTS, counts);
        w.end(positive);
    }
}

/// The first and last bucket of `b` when both are within the trackable
/// range of its scale (as `offset_counts` wants them).
fn trackable_span(b: &SparseBuckets) -> Option<(i32, i32)> {
    use crate::layout::{downscale_index, MAX_INDEX, MIN_INDEX, MIN_SCALE, SCALE};
    if !(MIN_SCALE..=SCALE).contains(&b.scale) {
        return None;
    }
    let steps = (SCALE - b.scale) as u32;
    let (lo, hi) = (
        downscale_index(MIN_INDEX, steps),
        downscale_index(MAX_INDEX, steps),
    );
    let (&(first, _), &(last, _)) = (b.counts.first()?, b.counts.last()?);
    (lo <= first && last <= hi).then_some((first, last))
}

/// OpenTelemetry's index of vitals' exponential bucket `index`.
pub(super) fn otel_index(index: i32) -> i32 {
    index.saturating_sub(1)
}

/// A `KeyValue` with a string value. Hot path (every attribute of every
/// point): both lengths are known, so both prefixes are written first.
fn key_value(w: &mut ProtoWriter, field: u32, key: &str, value: &str) {
    let field_len = |len: usize| 1 + varint_len(len as u64) + len;
    let any = field_len(value.len());
    w.tag(field, WireType::LengthDelimited);
    w.varint((field_len(key.len()) + field_len(any)) as u64);
    w.string(field::KEY, key);
    w.tag(field::VALUE, WireType::LengthDelimited);
    w.varint(any as u64);
    w.string(field::STRING_VALUE, value);
}

/// A guess at the encoded size of a point of a few labels.
const GUESS_PER_POINT: usize = 64;

/// A guess at the encoded size of point `p`.
fn guess(p: &Point) -> usize {
    let value = match &p.value {
        Value::Int(_) | Value::Double(_) => 0,
        Value::Explicit { counts, .. } => 32 + counts.len() * 16,
        Value::Exponential { buckets, .. } => 48 + buckets.counts.len() * 2,
        Value::Summary { .. } => 128,
    };
    GUESS_PER_POINT + value + p.exemplars.len() * 64
}

/// The protobuf `ExportMetricsServiceRequest` of `set`.
pub(crate) fn protobuf(head: &Head, set: &MetricSet) -> Vec<u8> {
    // Sizes guessed in advance leave room for the length prefixes of the
    // long messages, so that they need not be moved when closed (a guess
    // need only be as long as the size in varint bytes), and the buffer
    // is allocated once instead of grown by copying.
    let size: usize = set
        .metrics
        .values()
        .flat_map(|m| m.points.values())
        .map(guess)
        .sum();
    let mut w = ProtoWriter::from_vec(Vec::with_capacity(size + 1024));
    let rm = w.begin_sized(field::RESOURCE_METRICS, size);
    let resource = w.begin(field::RESOURCE);
    for (k, v) in &head.resource {
        key_value(&mut w, field::RESOURCE_ATTRIBUTES, k, v);
    }
    w.end(resource);
    let sm = w.begin_sized(field::SCOPE_METRICS, size);
    let scope = w.begin(field::SCOPE);
    w.string(field::SCOPE_NAME, &head.scope_name);
    w.string(field::SCOPE_VERSION, &head.scope_version);
    w.end(scope);
    for ((name, shape), m) in &set.metrics {
        if m.points.is_empty() {
            continue;
        }
        metric(&mut w, head, name, *shape, m);
    }
    w.end(sm);
    w.end(rm);
    w.into_vec()
}

fn metric(w: &mut ProtoWriter, head: &Head, name: &str, shape: Shape, m: &MetricPoints) {
    let size = m.points.len() * GUESS_PER_POINT;
    let metric = w.begin_sized(field::METRICS, size);
    w.string(field::NAME, name);
    if let Some(d) = &m.description {
        w.string(field::DESCRIPTION, d);
    }
    if !m.unit().is_empty() {
        w.string(field::UNIT, m.unit());
    }
    let data_field = match shape {
        Shape::Sum => field::SUM,
        Shape::Gauge => field::GAUGE,
        Shape::Histogram => field::HISTOGRAM,
        Shape::Exponential => field::EXPONENTIAL_HISTOGRAM,
        Shape::Summary => field::SUMMARY,
    };
    let data = w.begin_sized(data_field, size);
    for (labels, p) in &m.points {
        let dp = w.begin_sized(field::DATA_POINTS, guess(p));
        point(w, head, labels, p);
        w.end(dp);
    }
    match shape {
        Shape::Sum => {
            w.uint64(field::TEMPORALITY, temporality_code(head.temporality));
            w.bool(field::IS_MONOTONIC, true);
        }
        Shape::Histogram | Shape::Exponential => {
            w.uint64(field::TEMPORALITY, temporality_code(head.temporality));
        }
        Shape::Gauge | Shape::Summary => {}
    }
    w.end(data);
    w.end(metric);
}

/// An exemplar's labels as OTLP carries them: a `trace_id` of 32 and a
/// `span_id` of 16 hex digits as the trace and span ids (bytes), every
/// other label (and an id that is not such hex) as an attribute.
pub(super) struct ExemplarIds<'a> {
    pub(super) trace: Option<Vec<u8>>,
    pub(super) span: Option<Vec<u8>>,
    pub(super) attributes: Vec<(&'a str, &'a str)>,
}

pub(super) fn exemplar_ids(e: &Exemplar) -> ExemplarIds<'_> {
    let mut ids = ExemplarIds {
        trace: None,
        span: None,
        attributes: Vec::new(),
    };
    for (k, v) in e.labels.iter() {
        match (k, hex_bytes(v)) {
            ("trace_id", Some(b)) if b.len() == 16 && ids.trace.is_none() => ids.trace = Some(b),
            ("span_id", Some(b)) if b.len() == 8 && ids.span.is_none() => ids.span = Some(b),
            _ => ids.attributes.push((k, v)),
        }
    }
    ids
}

/// The bytes of a string of hex digits (either case), or `None`.
/// Digits only: `from_str_radix` alone would take a sign (`+1`).
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn exemplars(w: &mut ProtoWriter, field_number: u32, exemplars: &[Exemplar]) {
    for e in exemplars {
        let m = w.begin(field_number);
        let ids = exemplar_ids(e);
        for (k, v) in &ids.attributes {
            key_value(w, field::EXEMPLAR_ATTRIBUTES, k, v);
        }
        w.fixed64(
            field::EXEMPLAR_TIME,
            e.timestamp_unix_ms.saturating_mul(1_000_000),
        );
        w.double(field::EXEMPLAR_AS_DOUBLE, e.value);
        if let Some(span) = &ids.span {
            w.bytes(field::EXEMPLAR_SPAN_ID, span);
        }
        if let Some(trace) = &ids.trace {
            w.bytes(field::EXEMPLAR_TRACE_ID, trace);
        }
        w.end(m);
    }
}

fn point(w: &mut ProtoWriter, head: &Head, labels: &Labels, p: &Point) {
    let attributes = match &p.value {
        Value::Int(_) | Value::Double(_) => field::NUMBER_ATTRIBUTES,
        Value::Explicit { .. } => field::HISTOGRAM_ATTRIBUTES,
        Value::Exponential { .. } => field::EXP_ATTRIBUTES,
        Value::Summary { .. } => field::SUMMARY_ATTRIBUTES,
    };
    for (k, v) in labels.iter() {
        key_value(w, attributes, k, v);
    }
    w.fixed64(field::START_TIME, p.start_ns);
    w.fixed64(field::TIME, p.time_ns);
    match &p.value {
        Value::Int(v) => w.fixed64(field::AS_INT, *v as u64),
        Value::Double(v) => w.double(field::AS_DOUBLE, *v),
        Value::Explicit {
            count,
            sum,
            min,
            max,
            bounds,
            counts,
        } => {
            w.fixed64(field::COUNT, *count);
            w.double(field::SUM_VALUE, *sum);
            w.packed_fixed64(field::BUCKET_COUNTS, counts);
            w.packed_doubles(field::EXPLICIT_BOUNDS, bounds);
            if let Some(v) = min {
                w.double(field::HISTOGRAM_MIN, *v);
            }
            if let Some(v) = max {
                w.double(field::HISTOGRAM_MAX, *v);
            }
        }
        Value::Exponential {
            sum,
            min,
            max,
            buckets,
        } => {
            exponential_buckets(w, &fitted(buckets, head.max_buckets), *sum);
            if let Some(v) = min {
                w.double(field::EXP_MIN, *v);
            }
            if let Some(v) = max {
                w.double(field::EXP_MAX, *v);
            }
        }
        Value::Summary {
            count,
            sum,
            quantiles,
        } => {
            w.fixed64(field::COUNT, *count);
            w.double(field::SUM_VALUE, *sum);
            if let Some(q) = quantiles {
                for level in crate::snapshot::Quantiles::LEVELS {
                    let vq = w.begin(field::QUANTILE_VALUES);
                    w.double(field::QUANTILE, level);
                    w.double(field::QUANTILE_VALUE, q.get(level).unwrap_or(f64::NAN));
                    w.end(vq);
                }
            }
        }
    }
    let exemplar_field = match &p.value {
        Value::Int(_) | Value::Double(_) => Some(field::NUMBER_EXEMPLARS),
        Value::Explicit { .. } => Some(field::HISTOGRAM_EXEMPLARS),
        Value::Exponential { .. } => Some(field::EXP_EXEMPLARS),
        Value::Summary { .. } => None,
    };
    if let Some(f) = exemplar_field {
        exemplars(w, f, &p.exemplars);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The long way: dense counts from `offset_counts`, the `Buckets`
    /// message opened and closed around them.
    fn by_offset_counts(b: &SparseBuckets, sum: f64) -> Vec<u8> {
        let mut w = ProtoWriter::new();
        w.fixed64(field::COUNT, b.count());
        w.double(field::SUM_VALUE, sum);
        w.sint64(field::SCALE, i64::from(b.scale));
        w.fixed64(field::ZERO_COUNT, b.zeros);
        let (offset, counts) = b.offset_counts();
        if !counts.is_empty() {
            let positive = w.begin(field::POSITIVE);
            w.sint64(field::OFFSET, i64::from(otel_index(offset)));
            w.packed_uint64(field::EXP_BUCKET_COUNTS, counts);
            w.end(positive);
        }
        w.into_vec()
    }

    fn written(b: &SparseBuckets, sum: f64) -> Vec<u8> {
        let mut w = ProtoWriter::new();
        exponential_buckets(&mut w, b, sum);
        w.into_vec()
    }

    #[test]
    fn buckets_written_in_place_equal_the_dense_encoding() {
        let b = SparseBuckets {
            scale: 3,
            zeros: 2,
            // Gaps, a count of 300 (two varint bytes), an empty bucket
            // kept, a negative index.
            counts: vec![(-5, 1), (-4, 300), (0, 0), (7, 9), (150, u64::MAX)],
        };
        assert_eq!(written(&b, 1.5), by_offset_counts(&b, 1.5));
        // Offset: OpenTelemetry's index -6 (vitals' -5), zigzag 11.
        let out = written(&b, 1.5);
        let at = out.windows(2).position(|w| w == [0x08, 11]);
        assert!(at.is_some(), "{out:?}");
    }

    proptest! {
        /// Any buckets (out of order, repeated, out of range included):
        /// the same bytes as the dense encoding.
        #[test]
        fn any_buckets_encode_as_the_dense_encoding(
            scale in -10i8..=6,
            zeros in 0u64..3,
            counts in prop::collection::vec((-4_000i32..4_000, any::<u64>()), 0..200),
            sorted in any::<bool>(),
        ) {
            let mut counts = counts;
            if sorted {
                counts.sort_unstable_by_key(|p| p.0);
                counts.dedup_by_key(|p| p.0);
            }
            let b = SparseBuckets { scale, zeros, counts };
            prop_assert_eq!(written(&b, 2.0), by_offset_counts(&b, 2.0));
        }
    }
}
