//! Queries over the history: what to select, how to aggregate, and the
//! plain-data results.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::point::{Aggregate, Point};
use super::Level;
use crate::error::Error;
use crate::key::Labels;
use crate::snapshot::MetricKind;

/// How the values of each step are reduced to one number.
///
/// | aggregation | counter | gauge | histogram |
/// |---|---|---|---|
/// | `sum` | increase | sum of readings | sum of values |
/// | `count` | – | readings | values recorded |
/// | `avg` | – | mean reading | mean value |
/// | `min`, `max` | – | extreme reading | extreme bucket bound (within 1/64) |
/// | `last` | – | last reading | – |
/// | `rate` | increase per second | – | values per second |
/// | `p50` … `p99` | – | – | quantile of every value in the step |
///
/// Other pairs are refused with [`Error::UnsupportedAggregation`].
///
/// ```
/// use vitals::history::Aggregation;
/// let p95: Aggregation = "p95".parse().unwrap();
/// assert_eq!(p95, Aggregation::P95);
/// assert_eq!(p95.as_str(), "p95");
/// assert!("p42".parse::<Aggregation>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Total over the step.
    Sum,
    /// Mean over the step.
    Avg,
    /// Smallest value in the step.
    Min,
    /// Largest value in the step.
    Max,
    /// Number of readings or values in the step.
    Count,
    /// The last reading of the step.
    Last,
    /// Increase (or values recorded) per second.
    Rate,
    /// Median of every value recorded in the step.
    P50,
    /// 90th percentile of every value recorded in the step.
    P90,
    /// 95th percentile of every value recorded in the step.
    P95,
    /// 99th percentile of every value recorded in the step.
    P99,
}

impl Aggregation {
    /// Every aggregation, in declaration order.
    pub const ALL: [Aggregation; 11] = [
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Count,
        Aggregation::Last,
        Aggregation::Rate,
        Aggregation::P50,
        Aggregation::P90,
        Aggregation::P95,
        Aggregation::P99,
    ];

    /// The lowercase name used in JSON and errors.
    ///
    /// ```
    /// assert_eq!(vitals::history::Aggregation::Rate.as_str(), "rate");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Count => "count",
            Aggregation::Last => "last",
            Aggregation::Rate => "rate",
            Aggregation::P50 => "p50",
            Aggregation::P90 => "p90",
            Aggregation::P95 => "p95",
            Aggregation::P99 => "p99",
        }
    }

    /// Whether this aggregation means something for a kind of metric (see
    /// the table on [`Aggregation`]).
    ///
    /// ```
    /// use vitals::{history::Aggregation, MetricKind};
    /// assert!(Aggregation::Rate.applies_to(MetricKind::Counter));
    /// assert!(!Aggregation::P99.applies_to(MetricKind::Gauge));
    /// ```
    pub fn applies_to(self, kind: MetricKind) -> bool {
        use Aggregation::*;
        match kind {
            MetricKind::Counter => matches!(self, Sum | Rate),
            MetricKind::Gauge => matches!(self, Sum | Avg | Min | Max | Count | Last),
            MetricKind::Histogram => !matches!(self, Last),
        }
    }

    fn quantile(self) -> Option<f64> {
        match self {
            Aggregation::P50 => Some(0.5),
            Aggregation::P90 => Some(0.9),
            Aggregation::P95 => Some(0.95),
            Aggregation::P99 => Some(0.99),
            _ => None,
        }
    }

    /// The value of one (merged) step, `None` when it has none (an empty
    /// histogram step, a quantile without bucket state, no time covered).
    pub(crate) fn evaluate(self, point: &Point) -> Option<f64> {
        let seconds = point.covered_ms as f64 / 1000.0;
        let rate = |n: f64| (point.covered_ms > 0).then(|| n / seconds);
        match (&point.agg, self) {
            (Aggregate::Counter { increase, .. }, Aggregation::Sum) => Some(increase.as_f64()),
            (Aggregate::Counter { increase, .. }, Aggregation::Rate) => rate(increase.as_f64()),
            (Aggregate::Gauge { count, sum, .. }, Aggregation::Avg) => {
                (*count > 0).then(|| sum / *count as f64)
            }
            (Aggregate::Gauge { sum, .. }, Aggregation::Sum) => Some(*sum),
            (Aggregate::Gauge { min, .. }, Aggregation::Min) => Some(*min),
            (Aggregate::Gauge { max, .. }, Aggregation::Max) => Some(*max),
            (Aggregate::Gauge { count, .. }, Aggregation::Count) => Some(*count as f64),
            (Aggregate::Gauge { last, .. }, Aggregation::Last) => Some(*last),
            (Aggregate::Histogram { count, .. }, Aggregation::Count) => Some(*count as f64),
            (Aggregate::Histogram { sum, .. }, Aggregation::Sum) => Some(*sum),
            (Aggregate::Histogram { count, .. }, Aggregation::Rate) => rate(*count as f64),
            (Aggregate::Histogram { count, sum, .. }, Aggregation::Avg) => {
                (*count > 0).then(|| sum / *count as f64)
            }
            (Aggregate::Histogram { buckets, .. }, Aggregation::Min) => {
                buckets.as_ref()?.min_bound()
            }
            (Aggregate::Histogram { buckets, .. }, Aggregation::Max) => {
                buckets.as_ref()?.max_bound()
            }
            (Aggregate::Histogram { buckets, .. }, q) => buckets.as_ref()?.quantile(q.quantile()?),
            _ => None,
        }
    }
}

impl std::str::FromStr for Aggregation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Aggregation::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::UnknownAggregation(s.to_owned()))
    }
}

/// One condition on a label of the series a query selects.
///
/// ```
/// use vitals::history::LabelMatch;
/// let route = LabelMatch::Exact { key: "route".into(), value: "/a".into() };
/// let any = LabelMatch::Any { key: "route".into() };
/// let labels = vitals::Labels::from_pairs(&[("route", "/a")]);
/// assert!(route.matches(&labels) && any.matches(&labels));
/// assert!(!any.matches(&vitals::Labels::default()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "match", rename_all = "snake_case")]
pub enum LabelMatch {
    /// The label is present with exactly this value.
    Exact {
        /// Label key.
        key: String,
        /// Required value.
        value: String,
    },
    /// The label is present, with any value.
    Any {
        /// Label key.
        key: String,
    },
}

impl LabelMatch {
    /// True when `labels` satisfy this condition.
    ///
    /// ```
    /// use vitals::history::LabelMatch;
    /// let m = LabelMatch::Exact { key: "a".into(), value: "1".into() };
    /// assert!(!m.matches(&vitals::Labels::from_pairs(&[("a", "2")])));
    /// ```
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            LabelMatch::Exact { key, value } => labels.get(key) == Some(value.as_str()),
            LabelMatch::Any { key } => labels.get(key).is_some(),
        }
    }
}

/// What to read from a [`History`](super::History): a metric name, label
/// conditions (series may carry other labels too), a time range
/// `[start, end)` in Unix milliseconds, an aggregation, at most `max_points`
/// points per series, and optionally the level to read.
///
/// ```
/// use vitals::history::{Aggregation, Level, Query};
/// let q = Query::new("request_duration_seconds", Aggregation::P95)
///     .label("route", "/checkout")
///     .any_label("method")
///     .range(1_000, 3_600_000)
///     .max_points(60)
///     .level(Level::Minute);
/// assert_eq!(q.labels.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Metric name.
    pub name: String,
    /// Conditions every selected series meets.
    pub labels: Vec<LabelMatch>,
    /// Start of the range (inclusive), Unix milliseconds.
    pub start_ms: u64,
    /// End of the range (exclusive), Unix milliseconds.
    pub end_ms: u64,
    /// How each step is reduced.
    pub aggregation: Aggregation,
    /// At most this many points per series (must be at least 1); `None`
    /// returns every point of the level.
    pub max_points: Option<usize>,
    /// The level to read; `None` picks one from the range (see
    /// [`History::query`](super::History::query)).
    pub level: Option<Level>,
}

impl Query {
    /// A query over all time, all series of `name`, every point.
    ///
    /// ```
    /// let q = vitals::history::Query::new("up", vitals::history::Aggregation::Last);
    /// assert_eq!((q.start_ms, q.end_ms), (0, u64::MAX));
    /// ```
    pub fn new(name: impl Into<String>, aggregation: Aggregation) -> Self {
        Query {
            name: name.into(),
            labels: Vec::new(),
            start_ms: 0,
            end_ms: u64::MAX,
            aggregation,
            max_points: None,
            level: None,
        }
    }

    /// Requires label `key` to equal `value`.
    ///
    /// ```
    /// let q = vitals::history::Query::new("x", vitals::history::Aggregation::Sum).label("a", "1");
    /// assert_eq!(q.labels.len(), 1);
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(LabelMatch::Exact {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Requires label `key` to be present, with any value.
    ///
    /// ```
    /// let q = vitals::history::Query::new("x", vitals::history::Aggregation::Sum).any_label("a");
    /// assert_eq!(q.labels.len(), 1);
    /// ```
    pub fn any_label(mut self, key: impl Into<String>) -> Self {
        self.labels.push(LabelMatch::Any { key: key.into() });
        self
    }

    /// Limits the query to `[start_ms, end_ms)`.
    ///
    /// ```
    /// let q = vitals::history::Query::new("x", vitals::history::Aggregation::Sum).range(5, 10);
    /// assert_eq!((q.start_ms, q.end_ms), (5, 10));
    /// ```
    pub fn range(mut self, start_ms: u64, end_ms: u64) -> Self {
        self.start_ms = start_ms;
        self.end_ms = end_ms;
        self
    }

    /// Returns at most `points` points per series, merging neighbouring
    /// intervals (exactly, quantiles included).
    ///
    /// ```
    /// let q = vitals::history::Query::new("x", vitals::history::Aggregation::Sum).max_points(10);
    /// assert_eq!(q.max_points, Some(10));
    /// ```
    pub fn max_points(mut self, points: usize) -> Self {
        self.max_points = Some(points);
        self
    }

    /// Reads this level instead of choosing one.
    ///
    /// ```
    /// use vitals::history::{Aggregation, Level, Query};
    /// let q = Query::new("x", Aggregation::Sum).level(Level::Hour);
    /// assert_eq!(q.level, Some(Level::Hour));
    /// ```
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.start_ms >= self.end_ms {
            return Err(Error::InvalidTimeRange {
                start_ms: self.start_ms,
                end_ms: self.end_ms,
            });
        }
        if self.max_points == Some(0) {
            return Err(Error::ZeroMaxPoints);
        }
        Ok(())
    }

    pub(crate) fn selects(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|m| m.matches(labels))
    }
}

/// The answer to a [`Query`]: the level read, the width of each step, and
/// one entry per selected series. Plain data.
///
/// ```
/// use vitals::history::{Aggregation, History, Query};
/// let history = History::new();
/// let result = history.query(&Query::new("missing", Aggregation::Sum)).unwrap();
/// assert!(result.series.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryResult {
    /// The level the points come from.
    pub level: Level,
    /// Milliseconds each point covers (`None` for raw points, one per
    /// snapshot, when not downsampled).
    pub step_ms: Option<u64>,
    /// The aggregation applied.
    pub aggregation: Aggregation,
    /// One entry per selected series, ordered by labels.
    pub series: Vec<SeriesResult>,
}

/// The points of one series.
///
/// ```
/// use vitals::history::{Aggregation, History, Query};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("temp", &[("room", "a")]).set(21.5);
/// let history = History::new();
/// history.ingest(&metrics.snapshot()).unwrap();
/// let result = history.query(&Query::new("temp", Aggregation::Avg)).unwrap();
/// let s = &result.series[0];
/// assert_eq!((&*s.name, s.labels.get("room"), s.kind), ("temp", Some("a"), vitals::MetricKind::Gauge));
/// assert_eq!(s.points[0].value, 21.5);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SeriesResult {
    /// Metric name.
    pub name: Arc<str>,
    /// Label set.
    pub labels: Labels,
    /// Kind of the metric.
    pub kind: MetricKind,
    /// Points in time order; steps without a value are left out.
    pub points: Vec<QueryPoint>,
}

/// One value at one time.
///
/// ```
/// use vitals::history::{Aggregation, History, Query};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("depth", &[]).set(2.5);
/// let snap = metrics.snapshot();
/// let history = History::new();
/// history.ingest(&snap).unwrap();
/// let result = history.query(&Query::new("depth", Aggregation::Last)).unwrap();
/// let p = result.series[0].points[0];
/// assert_eq!((p.timestamp_unix_ms, p.value), (snap.timestamp_unix_ms, 2.5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryPoint {
    /// Start of the step (raw points: the snapshot's time), Unix ms.
    pub timestamp_unix_ms: u64,
    /// The aggregated value.
    pub value: f64,
}

/// Reduces the points of one series (time-ordered, the level's own
/// intervals) to the query's steps. `step` is `None` for raw points kept one
/// per snapshot; steps are counted from `origin` (at or before every point).
pub(crate) fn reduce(
    points: impl Iterator<Item = Point>,
    origin: u64,
    step: Option<u64>,
    aggregation: Aggregation,
) -> Vec<QueryPoint> {
    let mut out = Vec::new();
    let mut current: Option<(u64, Point)> = None;
    let flush = |key: u64, p: &Point, out: &mut Vec<QueryPoint>| {
        if let Some(value) = aggregation.evaluate(p) {
            out.push(QueryPoint {
                timestamp_unix_ms: key,
                value,
            });
        }
    };
    for p in points {
        let key = match step {
            Some(step) => {
                let since = p.t_ms.saturating_sub(origin);
                origin + since - since % step.max(1)
            }
            None => p.t_ms,
        };
        match &mut current {
            Some((k, acc)) if *k == key => acc.merge(&p),
            _ => {
                if let Some((k, acc)) = current.take() {
                    flush(k, &acc, &mut out);
                }
                current = Some((key, p));
            }
        }
    }
    if let Some((k, acc)) = current {
        flush(k, &acc, &mut out);
    }
    out
}
