//! One interval of one series at one level, and how intervals merge.

use serde::{Deserialize, Serialize};

use crate::metrics::sparse::SparseBuckets;
use crate::snapshot::MetricKind;

/// What one interval of a series holds, by kind. Merging two adjacent
/// intervals gives exactly what one interval covering both would hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Aggregate {
    /// How much a counter grew, and how many resets (restarts) it went
    /// through while doing so.
    Counter { increase: u64, resets: u32 },
    /// Gauge readings: how many, their sum, extremes and the last one.
    Gauge {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        last: f64,
    },
    /// Values a histogram recorded in the interval: how many, their exact
    /// sum, and their distribution when the snapshots carried bucket state.
    Histogram {
        count: u64,
        sum: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buckets: Option<SparseBuckets>,
    },
}

impl Aggregate {
    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            Aggregate::Counter { .. } => MetricKind::Counter,
            Aggregate::Gauge { .. } => MetricKind::Gauge,
            Aggregate::Histogram { .. } => MetricKind::Histogram,
        }
    }

    pub(crate) fn gauge(value: f64) -> Self {
        Aggregate::Gauge {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
        }
    }

    /// Adds a later interval of the same series. Intervals of another kind
    /// are ignored (the store never mixes kinds in one series).
    pub(crate) fn merge(&mut self, later: &Aggregate) {
        match (self, later) {
            (
                Aggregate::Counter { increase, resets },
                Aggregate::Counter {
                    increase: i,
                    resets: r,
                },
            ) => {
                *increase = increase.saturating_add(*i);
                *resets = resets.saturating_add(*r);
            }
            (
                Aggregate::Gauge {
                    count,
                    sum,
                    min,
                    max,
                    last,
                },
                Aggregate::Gauge {
                    count: c,
                    sum: s,
                    min: lo,
                    max: hi,
                    last: l,
                },
            ) => {
                *count = count.saturating_add(*c);
                *sum += s;
                *min = min.min(*lo);
                *max = max.max(*hi);
                *last = *l;
            }
            (
                Aggregate::Histogram {
                    count,
                    sum,
                    buckets,
                },
                Aggregate::Histogram {
                    count: c,
                    sum: s,
                    buckets: b,
                },
            ) => {
                // A distribution is only kept while every merged interval
                // had one (or recorded nothing): otherwise quantiles would
                // silently leave values out.
                *buckets = match (buckets.take(), b) {
                    (Some(mut mine), Some(theirs)) => {
                        mine.merge(theirs);
                        Some(mine)
                    }
                    (Some(mine), None) if *c == 0 => Some(mine),
                    (None, Some(theirs)) if *count == 0 => Some(theirs.clone()),
                    _ => None,
                };
                *count = count.saturating_add(*c);
                *sum += s;
            }
            _ => {}
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Aggregate::Histogram {
                buckets: Some(b), ..
            } => b.heap_bytes(),
            _ => 0,
        }
    }
}

/// One interval: where it starts (the snapshot time for raw points, the
/// aligned start for roll-ups), how many milliseconds of snapshot-to-snapshot
/// time it covers (for rates), and its aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Point {
    pub(crate) t_ms: u64,
    pub(crate) covered_ms: u64,
    pub(crate) agg: Aggregate,
}

impl Point {
    pub(crate) fn merge(&mut self, later: &Point) {
        self.covered_ms = self.covered_ms.saturating_add(later.covered_ms);
        self.agg.merge(&later.agg);
    }
}
