//! Encoding a point set as an OTLP/JSON `ExportMetricsServiceRequest`.
//! Names and values as the protobuf encoding beside it
//! ([`encode`](super::encode)) has them, in proto3's JSON mapping.

use serde_json::{json, Map, Value as Json};

use crate::key::Labels;
use crate::snapshot::Exemplar;

use super::encode::{exemplar_ids, fitted, otel_index, temporality_code, Head};
use super::set::{MetricPoints, MetricSet, Point, Shape, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
pub(super) fn encode(head: &Head, set: &MetricSet) -> Vec<u8> {
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
            let fitted = fitted(buckets, head.max_buckets);
            let (offset, counts) = fitted.offset_counts();
            o.insert("count".into(), int64(buckets.count()));
            o.insert("sum".into(), double(*sum));
            o.insert("scale".into(), json!(fitted.scale));
            o.insert("zeroCount".into(), int64(fitted.zeros));
            if !counts.is_empty() {
                o.insert(
                    "positive".into(),
                    json!({"offset": otel_index(offset), "bucketCounts": counts.iter().map(int64).collect::<Vec<_>>()}),
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
