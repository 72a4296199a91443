//! Encoding a point set as an `ExportMetricsServiceRequest`: protobuf with
//! the crate's one writer, or OTLP/JSON.
//!
//! Field numbers are those of opentelemetry-proto
//! (`collector/metrics/v1/metrics_service.proto`, `metrics/v1/metrics.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`).

use serde_json::{json, Map, Value as Json};

use crate::export::proto::ProtoWriter;
use crate::key::Labels;
use crate::snapshot::Exemplar;

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
fn temporality_code(t: Temporality) -> u64 {
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

/// An exponential point's buckets within the bucket limit: scale, zero
/// count, offset and counts. Points are fitted when made; only deltas
/// merged while the backend was down may need it again.
///
/// The offset is OpenTelemetry's bucket index, one less than vitals' (and
/// Prometheus'): OpenTelemetry's bucket `i` holds (base^i, base^(i+1)],
/// vitals' bucket `i` holds (base^(i−1), base^i].
fn fitted(buckets: &crate::snapshot::SparseBuckets, max: usize) -> (i32, u64, i32, Vec<u64>) {
    let span = match (buckets.counts.first(), buckets.counts.last()) {
        (Some(a), Some(b)) => i64::from(b.0) - i64::from(a.0) + 1,
        _ => 0,
    };
    let (scale, zeros, (offset, counts)) = if usize::try_from(span).is_ok_and(|s| s <= max) {
        (buckets.scale, buckets.zeros, buckets.offset_counts())
    } else {
        let mut b = buckets.clone();
        b.fit(max);
        (b.scale, b.zeros, b.offset_counts())
    };
    (i32::from(scale), zeros, otel_index(offset), counts)
}

/// OpenTelemetry's index of vitals' exponential bucket `index`.
fn otel_index(index: i32) -> i32 {
    index.saturating_sub(1)
}

fn key_value(w: &mut ProtoWriter, field: u32, key: &str, value: &str) {
    let kv = w.begin(field);
    w.string(field::KEY, key);
    let any = w.begin(field::VALUE);
    w.string(field::STRING_VALUE, value);
    w.end(any);
    w.end(kv);
}

/// The protobuf `ExportMetricsServiceRequest` of `set`.
pub(crate) fn protobuf(head: &Head, set: &MetricSet) -> Vec<u8> {
    let mut w = ProtoWriter::from_vec(Vec::with_capacity(64 + set.points as usize * 64));
    let rm = w.begin(field::RESOURCE_METRICS);
    let resource = w.begin(field::RESOURCE);
    for (k, v) in &head.resource {
        key_value(&mut w, field::RESOURCE_ATTRIBUTES, k, v);
    }
    w.end(resource);
    let sm = w.begin(field::SCOPE_METRICS);
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
    let metric = w.begin(field::METRICS);
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
    let data = w.begin(data_field);
    for (labels, p) in &m.points {
        let dp = w.begin(field::DATA_POINTS);
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
struct ExemplarIds<'a> {
    trace: Option<Vec<u8>>,
    span: Option<Vec<u8>>,
    attributes: Vec<(&'a str, &'a str)>,
}

fn exemplar_ids(e: &Exemplar) -> ExemplarIds<'_> {
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
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

fn json_exemplars(exemplars: &[Exemplar]) -> Json {
    Json::Array(
        exemplars
            .iter()
            .map(|e| {
                let ids = exemplar_ids(e);
                let mut o = Map::new();
                if !ids.attributes.is_empty() {
                    o.insert(
                        "filteredAttributes".into(),
                        attributes(ids.attributes.iter().copied()),
                    );
                }
                o.insert(
                    "timeUnixNano".into(),
                    int64(e.timestamp_unix_ms.saturating_mul(1_000_000)),
                );
                o.insert("asDouble".into(), double(e.value));
                if let Some(span) = &ids.span {
                    o.insert("spanId".into(), Json::String(hex(span)));
                }
                if let Some(trace) = &ids.trace {
                    o.insert("traceId".into(), Json::String(hex(trace)));
                }
                Json::Object(o)
            })
            .collect(),
    )
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
            let (scale, zeros, offset, counts) = fitted(buckets, head.max_buckets);
            w.fixed64(field::COUNT, buckets.count());
            w.double(field::SUM_VALUE, *sum);
            w.sint64(field::SCALE, i64::from(scale));
            w.fixed64(field::ZERO_COUNT, zeros);
            if !counts.is_empty() {
                let positive = w.begin(field::POSITIVE);
                w.sint64(field::OFFSET, i64::from(offset));
                w.packed_uint64(field::EXP_BUCKET_COUNTS, counts);
                w.end(positive);
            }
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

/// A double as proto3 JSON writes it: a number, or `"NaN"`, `"Infinity"`,
/// `"-Infinity"`.
fn double(v: f64) -> Json {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// A 64-bit integer as OTLP/JSON writes it: a decimal string.
fn int64(v: impl std::fmt::Display) -> Json {
    Json::String(v.to_string())
}

fn attributes<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Json {
    Json::Array(
        pairs
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect(),
    )
}

/// The OTLP/JSON `ExportMetricsServiceRequest` of `set`: lowerCamelCase
/// names, 64-bit integers as strings, enums as numbers.
pub(crate) fn json(head: &Head, set: &MetricSet) -> Vec<u8> {
    let metrics: Vec<Json> = set
        .metrics
        .iter()
        .filter(|(_, m)| !m.points.is_empty())
        .map(|((name, shape), m)| json_metric(head, name, *shape, m))
        .collect();
    let body = json!({
        "resourceMetrics": [{
            "resource": {
                "attributes": attributes(head.resource.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            },
            "scopeMetrics": [{
                "scope": {"name": head.scope_name, "version": head.scope_version},
                "metrics": metrics,
            }],
        }],
    });
    // A `Value` always serialises.
    serde_json::to_vec(&body).unwrap_or_default()
}

fn json_metric(head: &Head, name: &str, shape: Shape, m: &MetricPoints) -> Json {
    let points: Vec<Json> = m
        .points
        .iter()
        .map(|(labels, p)| json_point(head, labels, p))
        .collect();
    let mut data = Map::new();
    data.insert("dataPoints".into(), Json::Array(points));
    let temporality = json!(temporality_code(head.temporality));
    let key = match shape {
        Shape::Sum => {
            data.insert("aggregationTemporality".into(), temporality);
            data.insert("isMonotonic".into(), json!(true));
            "sum"
        }
        Shape::Gauge => "gauge",
        Shape::Histogram => {
            data.insert("aggregationTemporality".into(), temporality);
            "histogram"
        }
        Shape::Exponential => {
            data.insert("aggregationTemporality".into(), temporality);
            "exponentialHistogram"
        }
        Shape::Summary => "summary",
    };
    let mut metric = Map::new();
    metric.insert("name".into(), json!(name));
    if let Some(d) = &m.description {
        metric.insert("description".into(), json!(d));
    }
    if !m.unit().is_empty() {
        metric.insert("unit".into(), json!(m.unit()));
    }
    metric.insert(key.into(), Json::Object(data));
    Json::Object(metric)
}

fn json_point(head: &Head, labels: &Labels, p: &Point) -> Json {
    let mut o = Map::new();
    o.insert("attributes".into(), attributes(labels.iter()));
    o.insert("startTimeUnixNano".into(), int64(p.start_ns));
    o.insert("timeUnixNano".into(), int64(p.time_ns));
    let extremes = |o: &mut Map<String, Json>, min: &Option<f64>, max: &Option<f64>| {
        if let Some(v) = min {
            o.insert("min".into(), double(*v));
        }
        if let Some(v) = max {
            o.insert("max".into(), double(*v));
        }
    };
    match &p.value {
        Value::Int(v) => {
            o.insert("asInt".into(), int64(v));
        }
        Value::Double(v) => {
            o.insert("asDouble".into(), double(*v));
        }
        Value::Explicit {
            count,
            sum,
            min,
            max,
            bounds,
            counts,
        } => {
            o.insert("count".into(), int64(count));
            o.insert("sum".into(), double(*sum));
            o.insert(
                "bucketCounts".into(),
                Json::Array(counts.iter().map(int64).collect()),
            );
            o.insert(
                "explicitBounds".into(),
                Json::Array(bounds.iter().map(|b| double(*b)).collect()),
            );
            extremes(&mut o, min, max);
        }
        Value::Exponential {
            sum,
            min,
            max,
            buckets,
        } => {
            let (scale, zeros, offset, counts) = fitted(buckets, head.max_buckets);
            o.insert("count".into(), int64(buckets.count()));
            o.insert("sum".into(), double(*sum));
            o.insert("scale".into(), json!(scale));
            o.insert("zeroCount".into(), int64(zeros));
            if !counts.is_empty() {
                o.insert(
                    "positive".into(),
                    json!({"offset": offset, "bucketCounts": counts.iter().map(int64).collect::<Vec<_>>()}),
                );
            }
            extremes(&mut o, min, max);
        }
        Value::Summary {
            count,
            sum,
            quantiles,
        } => {
            o.insert("count".into(), int64(count));
            o.insert("sum".into(), double(*sum));
            if let Some(q) = quantiles {
                let values: Vec<Json> = crate::snapshot::Quantiles::LEVELS
                    .iter()
                    .map(|&l| json!({"quantile": l, "value": double(q.get(l).unwrap_or(f64::NAN))}))
                    .collect();
                o.insert("quantileValues".into(), Json::Array(values));
            }
        }
    }
    if !p.exemplars.is_empty() && !matches!(p.value, Value::Summary { .. }) {
        o.insert("exemplars".into(), json_exemplars(&p.exemplars));
    }
    Json::Object(o)
}
