//! From snapshots to OTLP data points: the per-series state that fixes
//! cumulative start times and turns totals into deltas.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use crate::key::{Labels, NameHasher};
use crate::snapshot::{CounterValue, Exemplar, HistogramSample, Snapshot, SparseBuckets};

use super::set::{MetricSet, Point, Shape, Value};
use super::Temporality;
use crate::export::native::fitted_lifetime;

/// What is remembered of a series between snapshots.
#[derive(Debug)]
struct SeriesState {
    start_ns: u64,
    last: Last,
    /// The export that last saw the series (series gone are forgotten).
    seen: u64,
}

#[derive(Debug, Clone)]
enum Last {
    Counter(CounterValue),
    Histogram {
        count: u64,
        sum: f64,
        /// Exponential or explicit counts, kept for deltas only.
        buckets: Option<Arc<SparseBuckets>>,
        explicit: Option<(Arc<[f64]>, Vec<u64>)>,
    },
    Other,
}

/// Turns snapshots into point sets: fixed start times, deltas.
#[derive(Debug)]
pub(super) struct PointMaker {
    pub(super) temporality: Temporality,
    pub(super) window_quantiles: bool,
    /// Exponential points are downscaled to this many buckets when made
    /// (the encoder checks again after deltas were merged).
    pub(super) max_buckets: usize,
    series: HashMap<(Shape, Arc<str>, Labels), SeriesState, BuildHasherDefault<NameHasher>>,
    /// Scratch space for downscaling exponential buckets.
    dense: Vec<u64>,
    /// False for a maker used once ([`PointMaker::one_shot`]): every series
    /// is new and nothing is kept for a next snapshot.
    remember: bool,
    /// The state of a series of a one-shot maker, never kept.
    passing: SeriesState,
    /// The collector's start, fixed at the first snapshot.
    origin_ns: Option<u64>,
    /// The time of the previous snapshot exported.
    last_ns: Option<u64>,
    exports: u64,
}

fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

impl PointMaker {
    pub(super) fn new(temporality: Temporality, window_quantiles: bool) -> Self {
        PointMaker {
            temporality,
            window_quantiles,
            max_buckets: crate::layout::DEFAULT_MAX_BUCKETS,
            series: HashMap::default(),
            dense: Vec::new(),
            remember: true,
            passing: SeriesState {
                start_ns: 0,
                last: Last::Other,
                seen: 0,
            },
            origin_ns: None,
            last_ns: None,
            exports: 0,
        }
    }

    /// A maker for one snapshot (cumulative, as an exporter's first
    /// request): the points are those `new(Cumulative, ..)` would make
    /// first, without building the per-series state a next snapshot
    /// would need.
    pub(super) fn one_shot(window_quantiles: bool) -> Self {
        PointMaker {
            remember: false,
            ..Self::new(Temporality::Cumulative, window_quantiles)
        }
    }

    /// The points of one snapshot.
    pub(super) fn points(&mut self, snapshot: &Snapshot) -> MetricSet {
        // Strictly later than the previous snapshot: windows never overlap,
        // even for two snapshots in one millisecond.
        let time_ns = ms_to_ns(snapshot.timestamp_unix_ms)
            .max(self.last_ns.map_or(0, |t| t.saturating_add(1)));
        let uptime_ns = if snapshot.uptime_seconds.is_finite() && snapshot.uptime_seconds > 0.0 {
            (snapshot.uptime_seconds * 1e9) as u64
        } else {
            0
        };
        let origin = *self
            .origin_ns
            .get_or_insert(time_ns.saturating_sub(uptime_ns));
        // A series first seen now began after the previous snapshot (or with
        // the collector, at the first).
        let first_start = self.last_ns.unwrap_or(origin).min(time_ns);
        self.exports += 1;
        let mut cx = Cx {
            maker: self,
            set: MetricSet::default(),
            time_ns,
            first_start,
            snapshot,
            described: None,
            run: 0,
        };
        // By runs of series of one name, so that each metric's points are
        // allocated once.
        for run in snapshot.counters.chunk_by(|a, b| a.name == b.name) {
            cx.run = run.len();
            for c in run {
                cx.counter(&c.name, &c.labels, c.value, c.exemplar.as_slice());
            }
        }
        for run in snapshot.gauges.chunk_by(|a, b| a.name == b.name) {
            cx.run = run.len();
            for g in run {
                let value = Value::Double(g.value);
                cx.simple(&g.name, Shape::Gauge, &g.labels, value);
            }
        }
        for run in snapshot.histograms.chunk_by(|a, b| a.name == b.name) {
            cx.run = run.len();
            for h in run {
                cx.histogram(h);
            }
        }
        let set = cx.set;
        let exports = self.exports;
        self.series.retain(|_, s| s.seen == exports);
        self.last_ns = Some(time_ns);
        set
    }
}

struct Cx<'a> {
    maker: &'a mut PointMaker,
    set: MetricSet,
    time_ns: u64,
    first_start: u64,
    snapshot: &'a Snapshot,
    described: Option<(Arc<str>, Shape)>,
    /// How many series of the current name follow.
    run: usize,
}

impl Cx<'_> {
    fn describe(&mut self, name: &Arc<str>, shape: Shape) {
        // The series of a metric are contiguous: describe it once.
        if let Some((last, last_shape)) = &self.described {
            if *last_shape == shape && Arc::ptr_eq(last, name) {
                return;
            }
        }
        self.described = Some((Arc::clone(name), shape));
        let m = self.set.metrics.entry((Arc::clone(name), shape));
        if m.points.is_empty() {
            m.points.reserve(self.run);
        }
        if m.description.is_none() && m.unit_text.is_none() {
            if let Some(info) = self.snapshot.metadata(name) {
                m.description = info.help.clone();
                m.unit = info.unit.as_deref().and_then(ucum);
                if m.unit.is_none() {
                    m.unit_text = info.unit.clone();
                }
            }
        }
    }

    /// The series' state (created on first sight) and whether it is new.
    fn state(
        &mut self,
        shape: Shape,
        name: &Arc<str>,
        labels: &Labels,
    ) -> (&mut SeriesState, bool) {
        let exports = self.maker.exports;
        let first_start = self.first_start;
        if !self.maker.remember {
            self.maker.passing = SeriesState {
                start_ns: first_start,
                last: Last::Other,
                seen: exports,
            };
            return (&mut self.maker.passing, true);
        }
        let mut new = false;
        let s = self
            .maker
            .series
            .entry((shape, Arc::clone(name), labels.clone()))
            .or_insert_with(|| {
                new = true;
                SeriesState {
                    start_ns: first_start,
                    last: Last::Other,
                    seen: exports,
                }
            });
        s.seen = exports;
        (s, new)
    }

    fn simple(&mut self, name: &Arc<str>, shape: Shape, labels: &Labels, value: Value) {
        self.describe(name, shape);
        let start_ns = self.state(shape, name, labels).0.start_ns;
        let point = Point {
            start_ns,
            time_ns: self.time_ns,
            value,
            exemplars: Vec::new(),
        };
        self.set.push(name, shape, labels, point);
    }

    fn counter(
        &mut self,
        name: &Arc<str>,
        labels: &Labels,
        value: CounterValue,
        exemplars: &[Exemplar],
    ) {
        self.describe(name, Shape::Sum);
        let (time_ns, delta) = (self.time_ns, self.maker.temporality == Temporality::Delta);
        let first_start = self.first_start;
        let (s, new) = self.state(Shape::Sum, name, labels);
        let previous = match (&s.last, new) {
            (Last::Counter(v), false) => Some(*v),
            _ => None,
        };
        // A total that went down was reset (or wrapped past u64): a new
        // cumulative run starts. Compared as integers when both are: two
        // totals past 2^53 may be one float apart or none.
        let reset = match (previous, value) {
            (Some(CounterValue::Int(p)), CounterValue::Int(v)) => v < p,
            (Some(p), v) => v.as_f64() < p.as_f64(),
            (None, _) => false,
        };
        let window_start = s.start_ns;
        if reset && !delta {
            // The old run was last seen at the previous snapshot.
            s.start_ns = first_start;
        }
        s.last = Last::Counter(value);
        let (start_ns, value) = if delta {
            s.start_ns = time_ns;
            let change = match (previous, value) {
                (Some(CounterValue::Int(p)), CounterValue::Int(v)) if !reset => {
                    CounterValue::Int(v.saturating_sub(p))
                }
                (Some(p), v) if !reset => CounterValue::Float(v.as_f64() - p.as_f64()),
                (_, v) => v,
            };
            (window_start, change)
        } else {
            (s.start_ns, value)
        };
        let value = match value {
            CounterValue::Int(v) => match i64::try_from(v) {
                Ok(v) => Value::Int(v),
                Err(_) => Value::Double(v as f64),
            },
            CounterValue::Float(v) => Value::Double(v),
        };
        self.set.push(
            name,
            Shape::Sum,
            labels,
            Point {
                start_ns,
                time_ns,
                value,
                exemplars: within(exemplars, start_ns),
            },
        );
    }

    fn histogram(&mut self, h: &HistogramSample) {
        let summary = &h.summary;
        let life = &summary.lifetime;
        let (time_ns, delta) = (self.time_ns, self.maker.temporality == Temporality::Delta);
        let explicit = summary.buckets.as_ref().map(|b| {
            let mut counts = Vec::with_capacity(b.cumulative.len() + 1);
            let mut below = 0u64;
            for &c in &b.cumulative {
                // Cumulative even for a malformed snapshot.
                let c = c.max(below).min(b.count);
                counts.push(c - below);
                below = c;
            }
            counts.push(b.count - below);
            (Arc::<[f64]>::from(b.bounds.as_slice()), counts, b.count)
        });
        let (shape, now) = match (explicit, &summary.lifetime_buckets) {
            (Some((bounds, counts, count)), _) => (
                Shape::Histogram,
                Value::Explicit {
                    count,
                    sum: life.sum,
                    min: life.min,
                    max: life.max,
                    bounds,
                    counts,
                },
            ),
            (None, Some(b)) => {
                // Delta keeps the full resolution to subtract exactly;
                // cumulative copies straight into at most max_buckets.
                let buckets = if delta {
                    let mut b = SparseBuckets::clone(b);
                    b.normalize();
                    Arc::new(b)
                } else {
                    let (max, dense) = (self.maker.max_buckets, &mut self.maker.dense);
                    fitted_lifetime(summary, max, dense).unwrap_or_else(|| Arc::clone(b))
                };
                (
                    Shape::Exponential,
                    Value::Exponential {
                        sum: life.sum,
                        min: life.min,
                        max: life.max,
                        buckets,
                    },
                )
            }
            // No buckets (a count window, or a collector without lifetime
            // buckets): count and sum, in the one overflow bucket.
            (None, None) => (
                Shape::Histogram,
                Value::Explicit {
                    count: life.count,
                    sum: life.sum,
                    min: life.min,
                    max: life.max,
                    bounds: Arc::from(&[][..]),
                    counts: vec![life.count],
                },
            ),
        };
        self.describe(&h.name, shape);
        let first_start = self.first_start;
        let remember = self.maker.remember;
        let (s, new) = self.state(shape, &h.name, &h.labels);
        // The count is kept for the next snapshot's reset check only.
        let count = if remember { value_count(&now) } else { 0 };
        let previous = match (&s.last, new) {
            (Last::Histogram { .. }, false) => Some(s.last.clone()),
            _ => None,
        };
        // Values are never negative, so neither the count nor the sum of
        // one run goes down: either going down is a reset (a series
        // removed and revived counts from zero).
        let reset = matches!(
            &previous,
            Some(Last::Histogram { count: c, sum, .. }) if count < *c || value_sum(&now) < *sum
        );
        let window_start = s.start_ns;
        s.last = Last::Histogram {
            count,
            sum: value_sum(&now),
            buckets: match (&now, delta) {
                (Value::Exponential { buckets, .. }, true) => Some(buckets.clone()),
                _ => None,
            },
            explicit: match (&now, delta) {
                (Value::Explicit { bounds, counts, .. }, true) => {
                    Some((Arc::clone(bounds), counts.clone()))
                }
                _ => None,
            },
        };
        let point = if delta {
            s.start_ns = time_ns;
            // Buckets that went down are a reset the totals did not show:
            // the whole counts then, as for any reset.
            let value = match previous {
                Some(last) if !reset => difference(now, &last).unwrap_or_else(without_extremes),
                _ => without_extremes(now),
            };
            Point {
                start_ns: window_start,
                time_ns,
                value,
                exemplars: within(&h.exemplars, window_start),
            }
        } else {
            if reset {
                s.start_ns = first_start;
            }
            Point {
                start_ns: s.start_ns,
                time_ns,
                value: now,
                exemplars: within(&h.exemplars, s.start_ns),
            }
        };
        let mut point = point;
        if let Value::Exponential { buckets, .. } = &mut point.value {
            if buckets.fit_steps(self.maker.max_buckets) > 0 {
                Arc::make_mut(buckets).fit(self.maker.max_buckets);
            }
        }
        self.set.push(&h.name, shape, &h.labels, point);
        if self.maker.window_quantiles {
            let name: Arc<str> = Arc::from(format!("{}_summary", h.name));
            let value = Value::Summary {
                count: life.count,
                sum: life.sum,
                quantiles: summary.window.quantiles,
            };
            self.simple(&name, Shape::Summary, &h.labels, value);
        }
    }
}

fn value_count(v: &Value) -> u64 {
    match v {
        Value::Explicit { count, .. } | Value::Summary { count, .. } => *count,
        Value::Exponential { buckets, .. } => buckets.count(),
        Value::Int(_) | Value::Double(_) => 1,
    }
}

fn value_sum(v: &Value) -> f64 {
    match v {
        Value::Explicit { sum, .. }
        | Value::Exponential { sum, .. }
        | Value::Summary { sum, .. } => *sum,
        Value::Int(v) => *v as f64,
        Value::Double(v) => *v,
    }
}

/// A delta point has no minimum and maximum: the lifetime's are not the
/// window's.
fn without_extremes(mut v: Value) -> Value {
    if let Value::Explicit { min, max, .. } | Value::Exponential { min, max, .. } = &mut v {
        *min = None;
        *max = None;
    }
    v
}

/// `now` less the previous totals of the series (not reset), or `now`
/// back when some bucket went down (a reset the count and sum missed).
fn difference(now: Value, last: &Last) -> Result<Value, Value> {
    let Last::Histogram {
        count: last_count,
        sum: last_sum,
        buckets: last_buckets,
        explicit: last_explicit,
    } = last
    else {
        return Ok(without_extremes(now));
    };
    match now {
        Value::Exponential {
            sum,
            buckets,
            min,
            max,
        } => {
            let Some(change) = last_buckets.as_ref().and_then(|b| buckets.checked_sub(b)) else {
                return Err(Value::Exponential {
                    sum,
                    buckets,
                    min,
                    max,
                });
            };
            Ok(Value::Exponential {
                sum: sum - last_sum,
                min: None,
                max: None,
                buckets: Arc::new(change),
            })
        }
        Value::Explicit {
            count,
            sum,
            bounds,
            counts,
            min,
            max,
        } => {
            // Other bounds than last time, or a bucket that went down:
            // nothing to subtract from.
            let comparable = last_explicit.as_ref().filter(|(b, c)| {
                *b == bounds && c.len() == counts.len() && counts.iter().zip(c).all(|(n, p)| n >= p)
            });
            let Some((_, c)) = comparable else {
                return Err(Value::Explicit {
                    count,
                    sum,
                    min,
                    max,
                    bounds,
                    counts,
                });
            };
            let counts = counts.iter().zip(c).map(|(n, p)| n - p).collect();
            Ok(Value::Explicit {
                count: count.saturating_sub(*last_count),
                sum: sum - last_sum,
                min: None,
                max: None,
                bounds,
                counts,
            })
        }
        other => Ok(other),
    }
}

/// The UCUM code OTLP uses for a vitals unit name.
fn ucum(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "seconds" => "s",
        "milliseconds" => "ms",
        "microseconds" => "us",
        "nanoseconds" => "ns",
        "bytes" => "By",
        "ratio" => "1",
        "celsius" => "Cel",
        "meters" => "m",
        "grams" => "g",
        "joules" => "J",
        "volts" => "V",
        "amperes" => "A",
        _ => return None,
    })
}

/// The exemplars recorded in or after the millisecond of `start_ns`: those
/// of the point's window. Exemplar times have millisecond precision, so one
/// recorded in the window's first millisecond can carry a time a little
/// before its start; it is kept (and may show in the window before too).
fn within(exemplars: &[Exemplar], start_ns: u64) -> Vec<Exemplar> {
    exemplars
        .iter()
        .filter(|e| e.timestamp_unix_ms >= start_ns / 1_000_000)
        .cloned()
        .collect()
}
