//! OTLP data points and the set of them waiting for delivery, which
//! coalesces: cumulative points keep the latest, delta points add up.

use std::sync::Arc;

use super::arrival::ArrivalMap;
use crate::key::Labels;
use crate::snapshot::{Exemplar, Quantiles, SparseBuckets};

use super::Temporality;

/// The OTLP data kind a metric is sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Shape {
    /// A monotonic `Sum` (counters).
    Sum,
    /// A `Gauge`.
    Gauge,
    /// An explicit-bucket `Histogram` (configured bounds, or count and sum
    /// only when the snapshot has no exponential buckets).
    Histogram,
    /// An `ExponentialHistogram`.
    Exponential,
    /// A `Summary` (window quantiles, when asked for).
    Summary,
}

/// One data point's value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Int(i64),
    Double(f64),
    Explicit {
        count: u64,
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
        bounds: Arc<[f64]>,
        /// One more than `bounds` (the last is the overflow bucket).
        counts: Vec<u64>,
    },
    Exponential {
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
        /// Normalised; the point's count is `buckets.count()`. Shared: a
        /// cumulative point sends the list its snapshot's series keeps
        /// (see `fitted_lifetime`), changed only by a copy of its own.
        buckets: Arc<SparseBuckets>,
    },
    Summary {
        count: u64,
        sum: f64,
        quantiles: Option<Quantiles>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Point {
    pub(super) start_ns: u64,
    pub(super) time_ns: u64,
    pub(super) value: Value,
    /// Exemplars recorded within the point's window (sums and histograms).
    pub(super) exemplars: Vec<Exemplar>,
}

impl Point {
    /// A rough size of the encoded point with `labels`.
    pub(super) fn approx_bytes(&self, labels: &Labels) -> usize {
        let labels: usize = labels.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        40 + labels
            + match &self.value {
                Value::Explicit { counts, .. } => counts.len() * 16,
                Value::Exponential { buckets, .. } => buckets.counts.len() * 2 + 40,
                Value::Summary { .. } => 100,
                Value::Int(_) | Value::Double(_) => 0,
            }
    }

    /// Adds a later delta point of the same series to this one: one window
    /// from this start to that end, the counts of both. Anything that does
    /// not add up (a different kind, different bounds) is replaced; returns
    /// false then.
    pub(super) fn add(&mut self, later: Point) -> bool {
        let merged = match (&mut self.value, &later.value) {
            (Value::Int(a), Value::Int(b)) => match a.checked_add(*b) {
                Some(v) => {
                    *a = v;
                    true
                }
                None => {
                    self.value = Value::Double(*a as f64 + *b as f64);
                    true
                }
            },
            (Value::Double(a), Value::Double(b)) => {
                *a += b;
                true
            }
            (Value::Int(a), Value::Double(b)) => {
                self.value = Value::Double(*a as f64 + b);
                true
            }
            (Value::Double(a), Value::Int(b)) => {
                *a += *b as f64;
                true
            }
            (
                Value::Explicit {
                    count,
                    sum,
                    bounds,
                    counts,
                    ..
                },
                Value::Explicit {
                    count: c2,
                    sum: s2,
                    bounds: b2,
                    counts: n2,
                    ..
                },
            ) if bounds == b2 && counts.len() == n2.len() => {
                *count = count.saturating_add(*c2);
                *sum += s2;
                for (a, b) in counts.iter_mut().zip(n2) {
                    *a = a.saturating_add(*b);
                }
                true
            }
            (
                Value::Exponential { sum, buckets, .. },
                Value::Exponential {
                    sum: s2,
                    buckets: b2,
                    ..
                },
            ) => {
                *sum += s2;
                Arc::make_mut(buckets).merge(b2);
                true
            }
            _ => false,
        };
        if merged {
            self.start_ns = self.start_ns.min(later.start_ns);
            self.time_ns = self.time_ns.max(later.time_ns);
            // The later window's exemplars are the latest; an older one
            // stays only when the later window has none.
            if !later.exemplars.is_empty() {
                self.exemplars = later.exemplars;
            }
        } else {
            *self = later;
        }
        merged
    }
}

/// A metric's description and unit, and its points by label set.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct MetricPoints {
    pub(super) description: Option<String>,
    pub(super) unit: Option<&'static str>,
    pub(super) unit_text: Option<String>,
    pub(super) points: ArrivalMap<Labels, Point>,
}

impl MetricPoints {
    /// A rough size of the encoded metric (its name apart).
    pub(super) fn approx_bytes(&self) -> usize {
        16 + self
            .points
            .iter()
            .map(|(labels, p)| p.approx_bytes(labels))
            .sum::<usize>()
    }

    /// The unit as OTLP wants it (UCUM), for the units vitals names.
    pub(super) fn unit(&self) -> &str {
        self.unit.or(self.unit_text.as_deref()).unwrap_or("")
    }
}

/// Points by metric (name and kind), metrics and points in the order they
/// first came (a snapshot's: counters, gauges, histograms, each by name).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct MetricSet {
    pub(super) metrics: ArrivalMap<(Arc<str>, Shape), MetricPoints>,
    pub(super) points: u64,
}

impl MetricSet {
    pub(super) fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Adds a later set: cumulative points, gauges and summaries replace
    /// the earlier point of their series, delta points add to it. Returns
    /// how many points were replaced (superseded).
    pub(super) fn absorb(&mut self, later: MetricSet, temporality: Temporality) -> u64 {
        if self.is_empty() {
            *self = later;
            return 0;
        }
        let mut superseded = 0;
        self.metrics.merge(later.metrics, |key, mine, m| {
            mine.description = m.description;
            mine.unit = m.unit;
            mine.unit_text = m.unit_text;
            let adds = temporality == Temporality::Delta
                && matches!(key.1, Shape::Sum | Shape::Histogram | Shape::Exponential);
            mine.points.merge(m.points, |_, old, point| {
                if !(adds && old.add(point.clone())) {
                    *old = point;
                    superseded += 1;
                }
            });
        });
        self.points = self.metrics.values().map(|m| m.points.len() as u64).sum();
        superseded
    }

    /// A rough size of the encoded set, for the queue-bytes gauge.
    pub(super) fn approx_bytes(&self) -> usize {
        self.metrics
            .iter()
            .map(|((name, _), m)| name.len() + m.approx_bytes())
            .sum()
    }

    pub(super) fn push(&mut self, name: &Arc<str>, shape: Shape, labels: &Labels, point: Point) {
        // The series of one metric come one after another: the last
        // metric is nearly always the one (same name, same `Arc`).
        let m = match self.metrics.last_mut() {
            Some(((n, s), m)) if *s == shape && Arc::ptr_eq(n, name) => m,
            _ => self.metrics.entry((Arc::clone(name), shape)),
        };
        if m.points.insert(labels.clone(), point).is_none() {
            self.points += 1;
        }
    }
}
