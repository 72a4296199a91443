//! `GET /api/query`: the series of one metric over a recent range, reduced
//! to at most `points` steps, as JSON: what the page's charts draw.
//!
//! Parameters (percent-encoded, each at most once except `label`):
//!
//! | parameter | meaning | default |
//! |---|---|---|
//! | `name` | metric name (required) | |
//! | `label` | `key=value` (exact) or `key` (present with any value); repeatable, at most 16 | none |
//! | `range` | how far back from the newest data: `90s`, `15m`, `1h`, `7d` (1 s to 31 d) | `15m` |
//! | `agg` | `sum`, `avg`, `min`, `max`, `count`, `last`, `rate`, `p50`, `p90`, `p95`, `p99` | `last` for gauges, `rate` for counters, `p99` for histograms |
//! | `points` | at most this many points per series (1 to 1000) | `120` |
//! | `merge` | `true`: all selected series as one (counters and gauges summed, histograms merged) | `false` |
//!
//! Errors are `400` with `{"error": KIND, "parameter": NAME, "message": TEXT}`.
//! Work per request is bounded: at most [`MAX_SERIES`] series (the rest are
//! counted in `series_total` and `truncated` is set), 1000 points each, and
//! the ring or the history's levels as they are.

#[cfg(feature = "history")]
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::response::Response;
use super::Shared;
use crate::key::Labels;
use crate::snapshot::MetricKind;

/// Series in one `/api/query` answer at most; further ones are counted in
/// its `series_total`, not sent, and `truncated` is set.
///
/// ```
/// assert_eq!(vitals::export::http::MAX_SERIES, 50);
/// ```
pub const MAX_SERIES: usize = 50;
/// Points per series at most.
const MAX_POINTS: usize = 1000;
/// `label` conditions at most.
const MAX_LABELS: usize = 16;

/// How each step is reduced (the same names and meanings as the history's
/// aggregations, which this maps onto when a `History` serves the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Last,
    Rate,
    Quantile(u8),
}

impl Agg {
    fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "last" => Agg::Last,
            "rate" => Agg::Rate,
            "p50" => Agg::Quantile(50),
            "p90" => Agg::Quantile(90),
            "p95" => Agg::Quantile(95),
            "p99" => Agg::Quantile(99),
            _ => return None,
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Count => "count",
            Agg::Last => "last",
            Agg::Rate => "rate",
            Agg::Quantile(50) => "p50",
            Agg::Quantile(90) => "p90",
            Agg::Quantile(95) => "p95",
            Agg::Quantile(_) => "p99",
        }
    }

    /// The quantile level, for `p50` … `p99`.
    pub(super) fn level(self) -> Option<f64> {
        match self {
            Agg::Quantile(q) => Some(f64::from(q) / 100.0),
            _ => None,
        }
    }

    /// Whether it means something for `kind` (the history's table).
    fn applies_to(self, kind: MetricKind) -> bool {
        match kind {
            MetricKind::Counter => matches!(self, Agg::Sum | Agg::Rate),
            MetricKind::Gauge => !matches!(self, Agg::Rate | Agg::Quantile(_)),
            MetricKind::Histogram => !matches!(self, Agg::Last),
        }
    }

    #[cfg(feature = "history")]
    /// Whether series can be merged by adding their step values (all the
    /// history can merge without its internals).
    fn additive(self) -> bool {
        matches!(self, Agg::Sum | Agg::Count | Agg::Rate)
    }

    fn default_for(kind: MetricKind) -> Agg {
        match kind {
            MetricKind::Counter => Agg::Rate,
            MetricKind::Gauge => Agg::Last,
            MetricKind::Histogram => Agg::Quantile(99),
        }
    }
}

/// A parsed `/api/query` request.
#[derive(Debug, Clone)]
pub(super) struct ApiQuery {
    pub(super) name: String,
    /// `(key, Some(value))`: exactly that value; `(key, None)`: any value.
    pub(super) labels: Vec<(String, Option<String>)>,
    pub(super) range_ms: u64,
    agg: Option<Agg>,
    pub(super) points: usize,
    pub(super) merge: bool,
}

impl ApiQuery {
    pub(super) fn selects(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| match (labels.get(k), v) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        })
    }
}

/// A typed error, answered `400` as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) kind: &'static str,
    pub(super) parameter: Option<&'static str>,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(
        kind: &'static str,
        parameter: Option<&'static str>,
        message: String,
    ) -> Self {
        ApiError {
            kind,
            parameter,
            message,
        }
    }

    fn response(&self, status: u16) -> Response {
        let body = json!({
            "error": self.kind,
            "parameter": self.parameter,
            "message": self.message,
        });
        json_response(status, body)
    }
}

fn json_response(status: u16, body: Value) -> Response {
    Response::shared(status, "application/json", Arc::new(body.to_string()))
        .header("Cache-Control", "no-store")
}

/// Decodes `%XX` and `+` (a space, as forms send it).
fn percent_decode(s: &str, parameter: &'static str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            "invalid_encoding",
            Some(parameter),
            format!("{parameter}: invalid percent-encoding or UTF-8"),
        )
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// `90s`, `15m`, `1h`, `7d` (or plain seconds) in milliseconds.
fn parse_range(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Parses the query string of `/api/query`.
pub(super) fn parse(query: &str) -> Result<ApiQuery, ApiError> {
    let mut name = None;
    let mut labels = Vec::new();
    let mut range = None;
    let mut agg = None;
    let mut points = None;
    let mut merge = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key, "query")?;
        let (param, slot): (&'static str, &mut Option<String>) = match key.as_str() {
            "name" => ("name", &mut name),
            "range" => ("range", &mut range),
            "agg" => ("agg", &mut agg),
            "points" => ("points", &mut points),
            "merge" => ("merge", &mut merge),
            "label" => {
                let value = percent_decode(raw, "label")?;
                if labels.len() == MAX_LABELS {
                    return Err(ApiError::new(
                        "too_many_labels",
                        Some("label"),
                        format!("at most {MAX_LABELS} label conditions"),
                    ));
                }
                let (k, v) = match value.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (value, None),
                };
                if k.is_empty() {
                    return Err(ApiError::new(
                        "invalid_label",
                        Some("label"),
                        "label: expected key=value or key".into(),
                    ));
                }
                labels.push((k, v));
                continue;
            }
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(ApiError::new(
                    "unknown_parameter",
                    None,
                    format!("unknown parameter {shown:?}: expected name, label, range, agg, points or merge"),
                ));
            }
        };
        if slot.is_some() {
            return Err(ApiError::new(
                "duplicate_parameter",
                Some(param),
                format!("{param} given more than once"),
            ));
        }
        *slot = Some(percent_decode(raw, param)?);
    }
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::new("missing_parameter", Some("name"), "name is required".into())
    })?;
    let range_ms = match range {
        None => 15 * 60_000,
        Some(r) => parse_range(&r)
            .filter(|ms| (1_000..=31 * 86_400_000).contains(ms))
            .ok_or_else(|| {
                ApiError::new(
                    "invalid_range",
                    Some("range"),
                    format!("range {r:?}: expected a duration such as 90s, 15m, 1h or 7d, from 1s to 31d"),
                )
            })?,
    };
    let agg = match agg {
        None => None,
        Some(a) => Some(Agg::parse(&a).ok_or_else(|| {
            ApiError::new(
                "unknown_aggregation",
                Some("agg"),
                format!("agg {a:?}: expected sum, avg, min, max, count, last, rate, p50, p90, p95 or p99"),
            )
        })?),
    };
    let points = match points {
        None => 120,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_POINTS).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    "invalid_points",
                    Some("points"),
                    format!("points {p:?}: expected a whole number from 1 to {MAX_POINTS}"),
                )
            })?,
    };
    let merge = match merge.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(ApiError::new(
                "invalid_merge",
                Some("merge"),
                format!("merge {other:?}: expected true or false"),
            ))
        }
    };
    Ok(ApiQuery {
        name,
        labels,
        range_ms,
        agg,
        points,
        merge,
    })
}

/// What a source found: the selected series' points, in label order.
pub(super) struct Answer {
    pub(super) source: &'static str,
    pub(super) step_ms: Option<u64>,
    pub(super) start_ms: u64,
    pub(super) end_ms: u64,
    pub(super) series: Vec<(Labels, Vec<(u64, f64)>)>,
    /// Series selected before the [`MAX_SERIES`] cut.
    pub(super) total: usize,
}

/// `GET /api/query?…`.
pub(super) fn query(raw: &str, shared: &Shared, arrived: Instant) -> Response {
    let q = match parse(raw) {
        Ok(q) => q,
        Err(e) => return e.response(400),
    };
    // The newest metadata (kind, unit, help), from the scrapes' shared
    // snapshot: a refused request does not take one.
    let snapshot = shared.snapshot(arrived);
    let info = snapshot.metadata(&q.name);
    let kind = info.map(|i| i.kind).or_else(|| shared.kind_of(&q.name));
    let Some(kind) = kind else {
        // Nothing by that name (yet): an empty answer, as the history gives.
        return json_response(
            200,
            json!({"name": q.name, "kind": null, "unit": null, "series": [],
                   "series_total": 0, "truncated": false}),
        );
    };
    let agg = q.agg.unwrap_or(Agg::default_for(kind));
    if !agg.applies_to(kind) {
        return ApiError::new(
            "unsupported_aggregation",
            Some("agg"),
            format!(
                "{} does not apply to {} {:?}",
                agg.as_str(),
                kind.as_str(),
                q.name
            ),
        )
        .response(400);
    }
    let answer = match shared.answer(&q, kind, agg) {
        Ok(a) => a,
        Err((status, e)) => return e.response(status),
    };
    let truncated = answer.total > answer.series.len();
    let series: Vec<Value> = answer
        .series
        .iter()
        .map(|(labels, points)| {
            let points: Vec<Value> = points.iter().map(|(t, v)| json!([t, finite(*v)])).collect();
            json!({"labels": labels, "points": points})
        })
        .collect();
    json_response(
        200,
        json!({
            "name": q.name,
            "kind": kind.as_str(),
            "unit": info.and_then(|i| i.unit.as_deref()),
            "help": info.and_then(|i| i.help.as_deref()),
            "aggregation": agg.as_str(),
            "merged": q.merge,
            "source": answer.source,
            "start_ms": answer.start_ms,
            "end_ms": answer.end_ms,
            "step_ms": answer.step_ms,
            "series_total": answer.total,
            "truncated": truncated,
            "series": series,
        }),
    )
}

/// JSON has no infinities or NaN: they are sent as `null`.
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

#[cfg(feature = "history")]
/// Adds up step values of several series at equal times (merging by sum).
pub(super) fn add_up(series: Vec<(Labels, Vec<(u64, f64)>)>) -> Vec<(Labels, Vec<(u64, f64)>)> {
    if series.is_empty() {
        return series;
    }
    let mut sum: BTreeMap<u64, f64> = BTreeMap::new();
    for (_, points) in series {
        for (t, v) in points {
            *sum.entry(t).or_insert(0.0) += v;
        }
    }
    vec![(Labels::default(), sum.into_iter().collect())]
}

#[cfg(feature = "history")]
/// Whether `agg` can merge series in a source that adds step values.
pub(super) fn check_additive(q: &ApiQuery, agg: Agg) -> Result<(), (u16, ApiError)> {
    if q.merge && !agg.additive() {
        return Err((
            400,
            ApiError::new(
                "merge_unsupported",
                Some("merge"),
                format!(
                    "the history merges series for sum, count and rate only, not {}",
                    agg.as_str()
                ),
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any query string is parsed or refused with a typed error, and
        /// what is accepted is within the limits.
        #[test]
        fn any_query_string_is_parsed_within_limits_or_refused(
            raw in "((name|label|range|agg|points|merge|zz)(=([a-z0-9%=+/.*:-]|%[0-9a-fA-F]{2}){0,12})?&?){0,8}"
        ) {
            match parse(&raw) {
                Ok(q) => {
                    prop_assert!(!q.name.is_empty());
                    prop_assert!((1..=MAX_POINTS).contains(&q.points));
                    prop_assert!((1_000..=31 * 86_400_000).contains(&q.range_ms));
                    prop_assert!(q.labels.len() <= MAX_LABELS);
                }
                Err(e) => prop_assert!(!e.kind.is_empty() && !e.message.is_empty()),
            }
        }

        #[test]
        fn any_bytes_as_a_query_string_never_panic(raw in ".{0,64}") {
            let _ = parse(&raw);
        }
    }

    #[test]
    fn ranges_and_decoding() {
        assert_eq!(parse_range("90s"), Some(90_000));
        assert_eq!(parse_range("15m"), Some(900_000));
        assert_eq!(parse_range("2h"), Some(7_200_000));
        assert_eq!(parse_range("7d"), Some(604_800_000));
        assert_eq!(parse_range("5"), Some(5_000));
        assert_eq!(parse_range("5w"), None);
        assert_eq!(parse_range("h"), None);
        assert_eq!(parse_range("99999999999999999999d"), None);
        assert_eq!(percent_decode("a%2Fb+c", "x").unwrap(), "a/b c");
        assert!(percent_decode("%zz", "x").is_err());
        assert!(percent_decode("%4", "x").is_err());
        assert!(percent_decode("%ff", "x").is_err());
    }
}
