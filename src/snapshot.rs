//! The snapshot: plain data, the one currency between the registry and every
//! output.
//!
//! # JSON shape
//!
//! ```json
//! {
//!   "schema_version": 3,
//!   "timestamp_unix_ms": 1790000000000,
//!   "uptime_seconds": 12.5,
//!   "counters": [{"name": "requests_total", "labels": {"method": "GET"},
//!                 "value": 42, "rate": {"per_second": 3.5, "span_seconds": 12.0}},
//!                {"name": "process_cpu_seconds_total", "labels": {},
//!                 "value": 0.42, "rate": {"per_second": 0.01, "span_seconds": 12.0}}],
//!   "gauges": [{"name": "queue_depth", "labels": {}, "value": "NaN"}],
//!   "histograms": [{"name": "latency_seconds", "labels": {},
//!                   "summary": {"window": {...}, "lifetime": {...},
//!                               "saturated": 0, "dropped": 0}}],
//!   "metadata": [{"name": "requests_total", "kind": "counter",
//!                 "help": "Requests served", "unit": null}],
//!   "first_error": null,
//!   "plugins": [{"name": "process", "status": "ok",
//!                "stats": {"collections": 3, "errors": 0, "timeouts": 0,
//!                          "last_error": null, "last_duration_seconds": 0.0002,
//!                          "last_success_age_seconds": 0.4, "interval_seconds": 1.0,
//!                          "deadline_seconds": 1.0, "dropped_samples": 0,
//!                          "series": 11}}]
//! }
//! ```
//!
//! A plug-in's values are ordinary counter and gauge series; its entry in
//! `plugins` says only how its collections went.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::key::Labels;
use crate::plugin::PluginReport;

pub use crate::metrics::exemplar::{Exemplar, MAX_EXEMPLAR_LABEL_CHARS, MAX_NATIVE_EXEMPLARS};
pub use crate::metrics::histogram::{
    BucketCounts, HistogramSummary, LifetimeStats, Quantiles, WindowStats,
};
pub use crate::metrics::sparse::SparseBuckets;

mod legacy;

/// The version of the snapshot's JSON shape. Bumped when a field changes
/// meaning or is removed, or when a field is added that a reader must not
/// silently miss.
///
/// * 2 added the optional lifetime bucket counts of histograms
///   ([`HistogramSummary::lifetime_buckets`]); version-1 lines read as
///   version 2 without them.
/// * 3 moved plug-in values into `counters` and `gauges` (a counter total
///   may be a float: [`CounterValue`]) and left `plugins` with status and
///   statistics; and it counts histogram buckets in base-2 exponential
///   buckets at scale 6 ([`layout`](crate::layout)): bucket state carries a
///   `scale`, and [`HistogramSummary::window_buckets`] is new. Older lines
///   still read: their plug-in samples become series (without rates), the
///   process plug-in's per-reading disk gauges take their new names, and
///   each log-linear lifetime bucket moves to the exponential bucket of its
///   midpoint (quantiles within 1.4% instead of 0.55%; see
///   [`SparseBuckets`]).
///
/// ```
/// assert_eq!(vitals::snapshot::SCHEMA_VERSION, 3);
/// ```
pub const SCHEMA_VERSION: u32 = 3;

/// Every series of a collector at one moment, as plain data.
///
/// Series are ordered by metric name, then by creation; the series of one
/// metric are contiguous.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[("queue", "mail")]).increment(3);
/// let snap = metrics.snapshot();
/// assert_eq!(snap.schema_version, vitals::snapshot::SCHEMA_VERSION);
/// assert_eq!(snap.counter("jobs_total", &[("queue", "mail")]), Some(3.0));
/// let json = serde_json::to_string(&snap).unwrap();
/// let back: vitals::Snapshot = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, snap);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "crate::snapshot::legacy::Wire")]
#[non_exhaustive]
pub struct Snapshot {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// Wall-clock time of the snapshot, milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
    /// Seconds since the collector was created.
    pub uptime_seconds: f64,
    /// Every counter series.
    pub counters: Vec<CounterSample>,
    /// Every gauge series.
    pub gauges: Vec<GaugeSample>,
    /// Every histogram series.
    pub histograms: Vec<HistogramSample>,
    /// Kind, help text and unit of every metric name.
    pub metadata: Vec<MetricInfo>,
    /// The first registration error the collector met, if any (all of them
    /// are counted in `vitals_errors_total{kind}`).
    pub first_error: Option<String>,
    /// Every registered plug-in's status and statistics, in registration
    /// order (its values are among `counters` and `gauges`). Absent in JSON
    /// written before plug-ins existed, which reads as empty.
    pub plugins: Vec<PluginReport>,
}

impl Snapshot {
    /// The help text and unit of metric `name`, if the snapshot has them.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// vitals::describe_counter!(collector: metrics, "bytes_total", vitals::Unit::Bytes, "Bytes sent");
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.metadata("bytes_total").unwrap().unit.as_deref(), Some("bytes"));
    /// assert!(snap.metadata("missing").is_none());
    /// ```
    pub fn metadata(&self, name: &str) -> Option<&MetricInfo> {
        let meta = &self.metadata;
        match meta.binary_search_by(|m| (*m.name).cmp(name)) {
            Ok(i) => Some(&meta[i]),
            // Metadata out of order (a hand-made snapshot): look everywhere.
            Err(_) => meta.iter().find(|m| &*m.name == name),
        }
    }

    /// The value of the counter series `name` with exactly these labels, as
    /// a float (exact for whole totals up to 2^53; the exact
    /// [`CounterValue`] is in [`Snapshot::counter_sample`]).
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("jobs_total", &[]).increment(3);
    /// let snap = metrics.snapshot();
    /// assert_eq!(snap.counter("jobs_total", &[]), Some(3.0));
    /// assert_eq!(snap.counter("missing_total", &[]), None);
    /// ```
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        find(&self.counters, name, labels, |s| (&*s.name, &s.labels)).map(|s| s.value.as_f64())
    }

    /// The value of the gauge series `name` with exactly these labels.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.gauge("temp", &[]).set(3.5);
    /// assert_eq!(metrics.snapshot().gauge("temp", &[]), Some(3.5));
    /// ```
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        find(&self.gauges, name, labels, |s| (&*s.name, &s.labels)).map(|s| s.value)
    }

    /// The summary of the histogram series `name` with exactly these labels.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("h", &[]).record(1.0);
    /// assert_eq!(metrics.snapshot().histogram("h", &[]).unwrap().window.count, 1);
    /// ```
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<&HistogramSummary> {
        find(&self.histograms, name, labels, |s| (&*s.name, &s.labels)).map(|s| &s.summary)
    }

    /// The report of the plug-in called `name`.
    ///
    /// ```
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// assert!(snap.plugin("system").is_none());
    /// ```
    pub fn plugin(&self, name: &str) -> Option<&PluginReport> {
        self.plugins.iter().find(|p| &*p.name == name)
    }

    /// The full counter sample (value and rate) of one series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("c_total", &[]).inc();
    /// assert!(metrics.snapshot().counter_sample("c_total", &[]).is_some());
    /// ```
    pub fn counter_sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<&CounterSample> {
        find(&self.counters, name, labels, |s| (&*s.name, &s.labels))
    }

    /// The full histogram sample (summary and exemplars) of one series.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("h", &[]).record_with_exemplar(1.0, &[("trace_id", "t")]).unwrap();
    /// assert_eq!(metrics.snapshot().histogram_sample("h", &[]).unwrap().exemplars.len(), 1);
    /// ```
    pub fn histogram_sample(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Option<&HistogramSample> {
        find(&self.histograms, name, labels, |s| (&*s.name, &s.labels))
    }
}

/// Adds `added` (in name order, each name's series in their own order) to
/// `into` (in name order): the result is in name order and each name's
/// series keep their order.
pub(crate) fn merge_by_name<T>(into: &mut Vec<T>, added: Vec<T>, name: impl Fn(&T) -> &str) {
    if added.is_empty() {
        return;
    }
    let old = std::mem::take(into);
    into.reserve(old.len() + added.len());
    let mut old = old.into_iter().peekable();
    for item in added {
        while let Some(first) = old.next_if(|o| name(o) <= name(&item)) {
            into.push(first);
        }
        into.push(item);
    }
    into.extend(old);
}

fn find<'a, T>(
    items: &'a [T],
    name: &str,
    labels: &[(&str, &str)],
    key: impl Fn(&T) -> (&str, &Labels),
) -> Option<&'a T> {
    items.iter().find(|item| {
        let (n, l) = key(item);
        n == name && l.len() == labels.len() && labels.iter().all(|(k, v)| l.get(k) == Some(*v))
    })
}

/// The kind of a metric.
///
/// ```
/// assert_eq!(vitals::MetricKind::Counter.as_str(), "counter");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A monotonic total.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A distribution over a rolling window.
    Histogram,
}

impl MetricKind {
    /// The lowercase name used in errors and JSON.
    ///
    /// ```
    /// assert_eq!(vitals::MetricKind::Histogram.as_str(), "histogram");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One counter series.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("c_total", &[]).increment(2);
/// let snap = metrics.snapshot();
/// let sample = &snap.counters[0];
/// assert_eq!((&*sample.name, sample.value), ("c_total", vitals::snapshot::CounterValue::Int(2)));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CounterSample {
    /// Metric name.
    pub name: Arc<str>,
    /// Label set.
    pub labels: Labels,
    /// The total: a whole number for the program's counters, a float for
    /// plug-in counters such as `process_cpu_seconds_total`.
    pub value: CounterValue,
    /// Increase per second over the rate window; `None` when no time has
    /// passed since the series was created.
    pub rate: Option<Rate>,
    /// The latest exemplar
    /// ([`Counter::increment_with_exemplar`](crate::Counter::increment_with_exemplar)),
    /// if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemplar: Option<Exemplar>,
}

impl CounterSample {
    /// A counter series without a rate, for snapshots built by hand (tests,
    /// other sources).
    ///
    /// ```
    /// use vitals::snapshot::CounterSample;
    /// let c = CounterSample::new("jobs_total", &[("queue", "mail")], 7);
    /// assert_eq!((c.value, c.labels.get("queue"), c.rate), (7.into(), Some("mail"), None));
    /// ```
    pub fn new(name: &str, labels: &[(&str, &str)], value: impl Into<CounterValue>) -> Self {
        CounterSample {
            name: Arc::from(name),
            labels: Labels::from_pairs(labels),
            value: value.into(),
            rate: None,
            exemplar: None,
        }
    }
}

/// The total of a counter: a whole number (every counter the program
/// increments) or a float (a plug-in's total, such as CPU seconds).
///
/// In JSON a whole total is an integer (`42`) and a float total is written
/// with a fraction or exponent (`42.0`, `0.015`), so each reads back as what
/// it was. A float total is finite and not negative: a line holding anything
/// else is refused.
///
/// ```
/// use vitals::snapshot::CounterValue;
///
/// assert_eq!(CounterValue::Int(3), 3);
/// assert_eq!(CounterValue::Float(1.5).as_f64(), 1.5);
/// assert_eq!(CounterValue::Float(1.5).as_u64(), None);
/// assert_eq!(serde_json::to_string(&CounterValue::Float(2.0)).unwrap(), "2.0");
/// let back: CounterValue = serde_json::from_str("2.0").unwrap();
/// assert_eq!(back, CounterValue::Float(2.0));
/// assert!(serde_json::from_str::<CounterValue>("-1").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CounterValue {
    /// A whole total, exact up to `u64::MAX` (then it wraps, as counters do).
    Int(u64),
    /// A fractional total; finite and not negative.
    Float(f64),
}

impl CounterValue {
    /// The total as a float (exact for whole totals up to 2^53).
    ///
    /// ```
    /// assert_eq!(vitals::snapshot::CounterValue::Int(7).as_f64(), 7.0);
    /// ```
    pub fn as_f64(self) -> f64 {
        match self {
            CounterValue::Int(v) => v as f64,
            CounterValue::Float(v) => v,
        }
    }

    /// The total if it is a whole-number one.
    ///
    /// ```
    /// assert_eq!(vitals::snapshot::CounterValue::Int(7).as_u64(), Some(7));
    /// ```
    pub fn as_u64(self) -> Option<u64> {
        match self {
            CounterValue::Int(v) => Some(v),
            CounterValue::Float(_) => None,
        }
    }
}

impl Default for CounterValue {
    fn default() -> Self {
        CounterValue::Int(0)
    }
}

impl PartialEq<u64> for CounterValue {
    fn eq(&self, other: &u64) -> bool {
        *self == CounterValue::Int(*other)
    }
}

impl PartialEq<f64> for CounterValue {
    fn eq(&self, other: &f64) -> bool {
        self.as_f64() == *other
    }
}

impl From<u64> for CounterValue {
    fn from(v: u64) -> Self {
        CounterValue::Int(v)
    }
}

impl std::fmt::Display for CounterValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CounterValue::Int(v) => write!(f, "{v}"),
            CounterValue::Float(v) => write!(f, "{v}"),
        }
    }
}

impl Serialize for CounterValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            CounterValue::Int(v) => s.serialize_u64(v),
            CounterValue::Float(v) => s.serialize_f64(v),
        }
    }
}

impl<'de> Deserialize<'de> for CounterValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CounterValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a counter total: a whole number or a finite, non-negative float")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CounterValue, E> {
                Ok(CounterValue::Int(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CounterValue, E> {
                u64::try_from(v)
                    .map(CounterValue::Int)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<CounterValue, E> {
                if v.is_finite() && v >= 0.0 {
                    // -0.0 is a zero; kept as -0.0 it would print as negative.
                    Ok(CounterValue::Float(v.abs()))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A counter's increase per second, and the time span it was measured over.
///
/// The span reaches back to the last snapshot taken at or before the start
/// of the rate window (60 s by default), or to the series' creation if that
/// is later; it is exact when snapshots come at least once per sixth of the
/// window.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// let clock = Arc::new(vitals::ManualClock::new());
/// let metrics = vitals::MetricsCollector::builder().clock(clock.clone()).build();
/// metrics.counter("c_total", &[]).increment(120);
/// clock.advance(Duration::from_secs(60));
/// let r = metrics.snapshot().counter_sample("c_total", &[]).unwrap().rate.unwrap();
/// assert_eq!((r.per_second, r.span_seconds), (2.0, 60.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rate {
    /// Increase per second.
    pub per_second: f64,
    /// Seconds the increase was measured over.
    pub span_seconds: f64,
}

/// One gauge series. Non-finite values are spelled `"NaN"`, `"+Inf"` and
/// `"-Inf"` in JSON.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("g", &[]).set(f64::INFINITY);
/// let json = serde_json::to_string(&metrics.snapshot().gauges[0]).unwrap();
/// assert!(json.contains(r#""value":"+Inf""#));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GaugeSample {
    /// Metric name.
    pub name: Arc<str>,
    /// Label set.
    pub labels: Labels,
    /// The value.
    #[serde(with = "crate::non_finite")]
    pub value: f64,
}

impl GaugeSample {
    /// A gauge series, for snapshots built by hand.
    ///
    /// ```
    /// let g = vitals::snapshot::GaugeSample::new("temp_celsius", &[], 21.5);
    /// assert_eq!((&*g.name, g.value), ("temp_celsius", 21.5));
    /// ```
    pub fn new(name: &str, labels: &[(&str, &str)], value: f64) -> Self {
        GaugeSample {
            name: Arc::from(name),
            labels: Labels::from_pairs(labels),
            value,
        }
    }
}

/// One histogram series.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.histogram("h", &[]).record(2.0);
/// assert_eq!(metrics.snapshot().histograms[0].summary.lifetime.sum, 2.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistogramSample {
    /// Metric name.
    pub name: Arc<str>,
    /// Label set.
    pub labels: Labels,
    /// Window and lifetime statistics.
    pub summary: HistogramSummary,
    /// The exemplars kept
    /// ([`Histogram::record_with_exemplar`](crate::Histogram::record_with_exemplar)),
    /// in the order of their values; empty if none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemplars: Vec<Exemplar>,
}

impl HistogramSample {
    /// A histogram series, for snapshots built by hand.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("h", &[]).record(1.0);
    /// let summary = metrics.snapshot().histogram("h", &[]).unwrap().clone();
    /// let copy = vitals::snapshot::HistogramSample::new("h2", &[("k", "v")], summary);
    /// assert_eq!(copy.summary.lifetime.count, 1);
    /// ```
    pub fn new(name: &str, labels: &[(&str, &str)], summary: HistogramSummary) -> Self {
        HistogramSample {
            name: Arc::from(name),
            labels: Labels::from_pairs(labels),
            summary,
            exemplars: Vec::new(),
        }
    }
}

/// What is known about a metric name.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.describe(vitals::MetricKind::Counter, "jobs_total", None, "Jobs run");
/// let snap = metrics.snapshot();
/// let info = snap.metadata.iter().find(|m| &*m.name == "jobs_total").unwrap();
/// assert_eq!(info.help.as_deref(), Some("Jobs run"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricInfo {
    /// Metric name.
    pub name: Arc<str>,
    /// Its kind.
    pub kind: MetricKind,
    /// Help text, if described.
    pub help: Option<String>,
    /// Unit (`seconds`, `bytes`, ...), if described.
    pub unit: Option<String>,
}

impl MetricInfo {
    /// What is known of a metric name, without help text or unit (set the
    /// public fields), for snapshots built by hand.
    ///
    /// ```
    /// use vitals::MetricKind;
    /// let mut info = vitals::snapshot::MetricInfo::new("queue_bytes", MetricKind::Gauge);
    /// info.unit = Some("bytes".into());
    /// assert_eq!((info.kind, info.help.as_deref()), (MetricKind::Gauge, None));
    /// ```
    pub fn new(name: &str, kind: MetricKind) -> Self {
        MetricInfo {
            name: Arc::from(name),
            kind,
            help: None,
            unit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_no_collector_could_take_is_refused_when_read() {
        let with = |counters: &str| {
            format!(
                r#"{{"schema_version":3,"timestamp_unix_ms":1,"uptime_seconds":1.0,"counters":[{counters}],"gauges":[],"histograms":[],"metadata":[],"first_error":null,"plugins":[]}}"#
            )
        };
        let counter = |name: &str, labels: &str| {
            format!(r#"{{"name":"{name}","labels":{labels},"value":3,"rate":null}}"#)
        };
        let good = with(&counter("c_total", r#"{"job":"a"}"#));
        assert!(serde_json::from_str::<Snapshot>(&good).is_ok());
        for (bad, why) in [
            (with(&counter("c", r#"{"__name__":"evil"}"#)), "reserved"),
            (with(&counter("c", r#"{"":"x"}"#)), "empty"),
            (with(&counter("c", r#"{"a b":"y"}"#)), "only ASCII"),
            (with(&counter("a b", "{}")), "only ASCII"),
            (
                with(&format!(
                    "{},{}",
                    counter("c", r#"{"j":"1"}"#),
                    counter("c", r#"{"j":"1"}"#)
                )),
                "twice",
            ),
        ] {
            let err = serde_json::from_str::<Snapshot>(&bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // What a collector takes always reads back.
        let m = crate::MetricsCollector::new();
        m.counter("c_total", &[("job", "a")]).inc();
        m.counter("c_total", &[]).inc();
        let json = serde_json::to_string(&m.snapshot()).unwrap();
        assert!(serde_json::from_str::<Snapshot>(&json).is_ok());
    }

    #[test]
    fn non_finite_gauges_round_trip_through_json() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.25] {
            let g = GaugeSample {
                name: "g".into(),
                labels: Labels::default(),
                value: v,
            };
            let json = serde_json::to_string(&g).unwrap();
            let back: GaugeSample = serde_json::from_str(&json).unwrap();
            assert!(
                back.value == v || (v.is_nan() && back.value.is_nan()),
                "{json}"
            );
        }
        let bad = r#"{"name":"g","labels":{},"value":"lots"}"#;
        assert!(serde_json::from_str::<GaugeSample>(bad).is_err());
    }
}
