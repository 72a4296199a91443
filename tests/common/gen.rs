//! Generators for the property tests: awkward strings, names, label sets,
//! values and durations, and a sequence of registry operations applied to a
//! `MetricsCollector` beside a model of what the README promises.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use vitals::histogram::{MAX_TRACKABLE, MIN_TRACKABLE};
use vitals::{Error, ManualClock, MetricKind, MetricsCollector, Window};

/// Cases per property: `PROPTEST_CASES` when set (CI may run more),
/// otherwise `default`, which keeps the debug-build run short.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config with `cases(default)` cases, regressions kept beside the test
/// file (`tests/<file>.proptest-regressions`), and a bounded shrink.
pub fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        max_shrink_iters: 512,
        ..Config::default()
    }
}

// ------------------------------------------------------------- strings

/// Characters that break formats: control characters (NUL, ESC, CR, VT,
/// FF, the separators Python's `splitlines` knows), quotes, backslashes,
/// braces, combining marks, BOM, right-to-left, astral characters.
const AWKWARD: &[char] = &[
    '\0',
    '\x01',
    '\x07',
    '\x08',
    '\t',
    '\n',
    '\x0b',
    '\x0c',
    '\r',
    '\x1b',
    '\x1c',
    '\x1d',
    '\x1e',
    '\x1f',
    '\x7f',
    '\u{80}',
    '\u{85}',
    '\u{9f}',
    '\u{a0}',
    '\u{ad}',
    '\u{200b}',
    '\u{200e}',
    '\u{202e}',
    '\u{2028}',
    '\u{2029}',
    '\u{fe0f}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10ffff}',
    '\u{0301}',
    '"',
    '\'',
    '\\',
    '{',
    '}',
    '=',
    ',',
    ' ',
    '#',
    '/',
    ':',
    '_',
    'é',
    '日',
    '🦀',
    'ß',
    'İ',
];

pub fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(AWKWARD),
        2 => prop::char::range('a', 'z'),
        1 => any::<char>(),
    ]
}

/// Short strings of any Unicode, weighted to the awkward characters.
pub fn short_text() -> impl Strategy<Value = String> {
    prop::collection::vec(awkward_char(), 0..12).prop_map(String::from_iter)
}

/// A 64 KiB string (a repeated awkward pattern), for size limits.
pub fn huge_text() -> impl Strategy<Value = String> {
    (short_text(), awkward_char()).prop_map(|(seed, c)| {
        let unit = if seed.is_empty() { c.to_string() } else { seed };
        let mut s = String::with_capacity(64 * 1024 + 16);
        while s.len() < 64 * 1024 {
            s.push_str(&unit);
        }
        s
    })
}

/// Any text: mostly short and awkward, sometimes 64 KiB.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => short_text(),
        1 => huge_text(),
    ]
}

// ------------------------------------------------------------- names

/// Names that clash through the exposition suffixes, reserved words, and
/// every first-character class.
const NAME_POOL: &[&str] = &[
    "a",
    "a_total",
    "a_total_total",
    "a_sum",
    "a_count",
    "a_bucket",
    "a_created",
    "a_info",
    "b",
    "b_seconds",
    "b_bytes",
    "c_total",
    "_total",
    "_",
    ":",
    "::a",
    "x:y_z",
    "EOF",
    "NaN",
    "le",
    "quantile",
    "vitals_overflow",
    "metric",
    "requests_total",
    "process_cpu_usage_ratio",
    "latency_seconds",
];

/// A metric name: from the clash pool, a valid generated one, or any text.
pub fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(NAME_POOL).prop_map(str::to_owned),
        3 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        2 => any_text(),
    ]
}

/// A metric name that passes validation (for tests about other things).
pub fn valid_metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NAME_POOL).prop_map(str::to_owned),
        1 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
    ]
}

const LABEL_POOL: &[&str] = &[
    "k",
    "a",
    "b",
    "le",
    "quantile",
    "vitals_overflow",
    "__reserved",
    "_",
    "__",
    "K9",
    "metric",
    "kind",
    "collector",
];

pub fn label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(LABEL_POOL).prop_map(str::to_owned),
        3 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        1 => short_text(),
    ]
}

pub fn valid_label_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&["k", "a", "b", "K9", "metric", "kind", "_x"][..]).prop_map(str::to_owned),
        1 => "[a-zA-Z][a-zA-Z0-9_]{0,8}",
    ]
}

const VALUE_POOL: &[&str] = &[
    "",
    "v",
    "1",
    "a\"b",
    "c\\d",
    "line\nbreak",
    "\\n",
    "\\\"",
    "}",
    "{a=\"b\"}",
    " # x",
    "+Inf",
    "true",
];

pub fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUE_POOL).prop_map(str::to_owned),
        6 => short_text(),
        1 => huge_text().prop_filter("one in a few", |_| true),
    ]
}

/// 0 to 100 labels, keys from a small pool so duplicates happen; values of
/// any Unicode. Mostly small sets.
pub fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop_oneof![
        12 => prop::collection::vec((label_key(), prop_oneof![8 => short_text(), 3 => prop::sample::select(VALUE_POOL).prop_map(str::to_owned)]), 0..4),
        2 => prop::collection::vec((label_key(), label_value()), 0..8),
        1 => prop::collection::vec((label_key(), short_text()), 0..=100),
    ]
}

/// Labels that pass validation for any kind: unique valid keys, not
/// reserved; any values.
pub fn valid_labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(valid_label_key(), label_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

pub fn as_pairs(labels: &[(String, String)]) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

// ------------------------------------------------------------- numbers

/// The edges of `f64`: NaN, infinities, zeros of both signs, subnormals,
/// extremes, the histogram's trackable range and its neighbours.
pub fn edge_f64() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![
        f64::NAN,
        -f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::MIN_POSITIVE / 2.0,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        f64::MAX,
        f64::MIN,
        1e300,
        -1e300,
        1e-300,
        MIN_TRACKABLE,
        f64::from_bits(MIN_TRACKABLE.to_bits() - 1),
        MAX_TRACKABLE,
        f64::from_bits(MAX_TRACKABLE.to_bits() + 1),
        9_007_199_254_740_993.0,
        u64::MAX as f64,
        0.1,
        1.0,
        -1.0,
        0.5,
        1e-7,
        123_456.789,
    ])
}

pub fn any_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => edge_f64(),
        2 => any::<f64>(),
        2 => -1e3..1e6f64,
        1 => (0u32..1000).prop_map(f64::from),
    ]
}

pub fn any_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        2 => prop::sample::select(vec![0, 1, 2, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 53) + 1]),
        2 => any::<u64>(),
        4 => 0u64..1000,
    ]
}

pub fn any_usize() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0, 1, 2, 3, usize::MAX, usize::MAX - 1, usize::MAX / 2]),
        1 => any::<usize>(),
        2 => 0usize..2000,
    ]
}

pub fn any_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![0, 1, 2, 64, 65, 1_000_000, 1_000_001, u32::MAX]),
        1 => any::<u32>(),
        2 => 0u32..200,
    ]
}

/// Durations at the edges: zero, a nanosecond, just under and at a
/// millisecond, seconds, a year, `u64::MAX` seconds, `Duration::MAX`.
pub fn edge_duration() -> impl Strategy<Value = Duration> {
    prop::sample::select(vec![
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_nanos(999_999),
        Duration::from_millis(1),
        Duration::from_millis(10),
        Duration::from_secs(1),
        Duration::from_secs(60),
        Duration::from_secs(3600),
        Duration::from_secs(366 * 24 * 3600),
        Duration::from_secs(366 * 24 * 3600 + 1),
        Duration::from_secs(u64::MAX / 1_000_000_000),
        Duration::from_secs(u64::MAX),
        Duration::MAX,
    ])
}

pub fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        3 => edge_duration(),
        1 => (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        2 => (0u64..100_000_000_000).prop_map(Duration::from_nanos),
    ]
}

/// Windows of every shape, valid or not.
pub fn any_window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (any_duration(), any_u32()).prop_map(|(length, slots)| Window::Time { length, slots }),
        any_u32().prop_map(|values| Window::Count { values }),
        (1u32..=8, 1u64..=120).prop_map(|(slots, secs)| Window::Time {
            length: Duration::from_secs(secs),
            slots
        }),
        (1u32..=64).prop_map(|values| Window::Count { values }),
    ]
}

/// Windows that validate, small enough to roll over in a test.
pub fn valid_window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (1u32..=8, 1u64..=120).prop_map(|(slots, secs)| Window::Time {
            length: Duration::from_secs(secs),
            slots
        }),
        Just(Window::default()),
        (1u32..=64).prop_map(|values| Window::Count { values }),
    ]
}

/// What the README says a window setting must be.
pub fn window_is_valid(w: &Window) -> bool {
    match *w {
        Window::Time { length, slots } => {
            (1..=64).contains(&slots)
                && length >= Duration::from_millis(u64::from(slots))
                && length <= Duration::from_secs(366 * 24 * 3600)
        }
        Window::Count { values } => (1..=1_000_000).contains(&values),
    }
}

// ------------------------------------------------------------- operations

/// How a handle is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `try_counter` & co.
    Try,
    /// `counter` & co.
    Plain,
    /// `counter!(collector: m, name, "k" => v ...)` (up to two labels;
    /// more go through the plain method).
    Macro,
}

#[derive(Debug, Clone)]
pub enum CounterOp {
    Inc,
    Increment(u64),
    Absolute(u64),
}

#[derive(Debug, Clone)]
pub enum GaugeOp {
    Set(f64),
    Increment(f64),
    Decrement(f64),
    SetMax(f64),
    SetMin(f64),
}

#[derive(Debug, Clone)]
pub enum HistogramOp {
    Record(f64),
    RecordDuration(Duration),
    /// A timer dropped at once (records a tiny elapsed time).
    Timer,
}

#[derive(Debug, Clone)]
pub enum Op {
    Counter(Via, String, Vec<(String, String)>, CounterOp),
    Gauge(Via, String, Vec<(String, String)>, GaugeOp),
    Histogram(Via, String, Vec<(String, String)>, HistogramOp),
    Describe {
        kind: MetricKind,
        name: String,
        unit: Option<String>,
        help: String,
        try_: bool,
    },
    Configure(String, Window),
    Buckets(String, Vec<f64>),
    Advance(Duration),
    Snapshot,
}

fn via() -> impl Strategy<Value = Via> {
    prop::sample::select(vec![Via::Try, Via::Plain, Via::Macro])
}

fn kind() -> impl Strategy<Value = MetricKind> {
    prop::sample::select(vec![
        MetricKind::Counter,
        MetricKind::Gauge,
        MetricKind::Histogram,
    ])
}

fn unit() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        3 => prop::sample::select(&["seconds", "bytes", "total", "ratio", "a", "count", "sum", "_"][..]).prop_map(|s| Some(s.to_owned())),
        1 => short_text().prop_map(Some),
    ]
}

fn bounds() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        3 => prop::collection::btree_set(0u32..10_000, 1..6)
            .prop_map(|s| s.into_iter().map(|v| f64::from(v) / 100.0).collect()),
        1 => prop::collection::vec(any_f64(), 0..6),
        1 => prop::collection::vec(0.0..1e6f64, 126..=130).prop_map(|mut v| {
            v.sort_by(f64::total_cmp);
            v
        }),
    ]
}

pub fn op_with(
    name: BoxedStrategy<String>,
    labels: BoxedStrategy<Vec<(String, String)>>,
) -> impl Strategy<Value = Op> {
    let counter_op = prop_oneof![
        Just(CounterOp::Inc),
        any_u64().prop_map(CounterOp::Increment),
        any_u64().prop_map(CounterOp::Absolute),
    ];
    let gauge_op = prop_oneof![
        any_f64().prop_map(GaugeOp::Set),
        any_f64().prop_map(GaugeOp::Increment),
        any_f64().prop_map(GaugeOp::Decrement),
        any_f64().prop_map(GaugeOp::SetMax),
        any_f64().prop_map(GaugeOp::SetMin),
    ];
    let histogram_op = prop_oneof![
        6 => any_f64().prop_map(HistogramOp::Record),
        1 => any_duration().prop_map(HistogramOp::RecordDuration),
        1 => Just(HistogramOp::Timer),
    ];
    prop_oneof![
        6 => (via(), name.clone(), labels.clone(), counter_op).prop_map(|(v, n, l, o)| Op::Counter(v, n, l, o)),
        6 => (via(), name.clone(), labels.clone(), gauge_op).prop_map(|(v, n, l, o)| Op::Gauge(v, n, l, o)),
        6 => (via(), name.clone(), labels, histogram_op).prop_map(|(v, n, l, o)| Op::Histogram(v, n, l, o)),
        2 => (kind(), name.clone(), unit(), any_text(), any::<bool>()).prop_map(|(kind, name, unit, help, try_)| Op::Describe { kind, name, unit, help, try_ }),
        1 => (name.clone(), any_window()).prop_map(|(n, w)| Op::Configure(n, w)),
        1 => (name, bounds()).prop_map(|(n, b)| Op::Buckets(n, b)),
        2 => prop_oneof![3 => (0u64..120_000).prop_map(Duration::from_millis), 1 => edge_duration()].prop_map(Op::Advance),
        1 => Just(Op::Snapshot),
    ]
}

/// Operations over every kind of input.
pub fn op() -> impl Strategy<Value = Op> {
    op_with(metric_name().boxed(), labels().boxed())
}

pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..max)
}

/// The collector settings a registry test starts from: small limits so
/// that they are reached.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cardinality_limit: usize,
    pub max_metrics: usize,
    pub window: Window,
    pub lifetime_buckets: bool,
}

pub fn settings() -> impl Strategy<Value = Settings> {
    (
        prop_oneof![Just(1usize), Just(2), Just(3), Just(1000)],
        prop_oneof![Just(1usize), Just(2), Just(4), Just(10_000)],
        valid_window(),
        any::<bool>(),
    )
        .prop_map(
            |(cardinality_limit, max_metrics, window, lifetime_buckets)| Settings {
                cardinality_limit,
                max_metrics,
                window,
                lifetime_buckets,
            },
        )
}

pub fn build(settings: &Settings, clock: &Arc<ManualClock>) -> MetricsCollector {
    MetricsCollector::builder()
        .clock(clock.clone())
        .cardinality_limit(settings.cardinality_limit)
        .max_metrics(settings.max_metrics)
        .histogram_window(settings.window)
        .lifetime_buckets(settings.lifetime_buckets)
        .try_build()
        .expect("valid settings build")
}

// ------------------------------------------------------------- applying

fn counter_op(c: &vitals::Counter, op: &CounterOp) {
    match *op {
        CounterOp::Inc => c.inc(),
        CounterOp::Increment(n) => c.increment(n),
        CounterOp::Absolute(n) => c.absolute(n),
    }
}

fn gauge_op(g: &vitals::Gauge, op: &GaugeOp) {
    match *op {
        GaugeOp::Set(v) => g.set(v),
        GaugeOp::Increment(v) => g.increment(v),
        GaugeOp::Decrement(v) => g.decrement(v),
        GaugeOp::SetMax(v) => g.set_max(v),
        GaugeOp::SetMin(v) => g.set_min(v),
    }
}

fn histogram_op(h: &vitals::Histogram, op: &HistogramOp) {
    match *op {
        HistogramOp::Record(v) => h.record(v),
        HistogramOp::RecordDuration(d) => h.record_duration(d),
        HistogramOp::Timer => drop(h.start_timer()),
    }
}

macro_rules! through_macro {
    ($mac:ident, $m:expr, $name:expr, $labels:expr) => {{
        let l = $labels;
        match l.len() {
            0 => vitals::$mac!(collector: $m, $name),
            1 => vitals::$mac!(collector: $m, $name, l[0].0 => l[0].1),
            2 => vitals::$mac!(collector: $m, $name, l[0].0 => l[0].1, l[1].0 => l[1].1),
            _ => vitals::$mac!(collector: $m, $name, l[0].0 => l[0].1, l[1].0 => l[1].1, l[2].0 => l[2].1),
        }
    }};
}

/// What one operation returned, where it returns something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The error's `kind()`.
    Err(&'static str),
    /// No result to look at (plain methods, macros, clock, snapshots).
    Nothing,
}

fn outcome<T>(r: Result<T, Error>) -> (Outcome, Option<T>) {
    match r {
        Ok(t) => (Outcome::Ok, Some(t)),
        Err(e) => (Outcome::Err(e.kind()), None),
    }
}

/// Applies `op`; the macro path is used only when there are at most three
/// labels (a macro call site has a fixed number), otherwise the plain one.
pub fn apply(m: &MetricsCollector, clock: &ManualClock, op: &Op) -> Outcome {
    match op {
        Op::Counter(via, name, labels, cop) => {
            let l = as_pairs(labels);
            match via {
                Via::Try => {
                    let (o, h) = outcome(m.try_counter(name, &l));
                    if let Some(h) = h {
                        counter_op(&h, cop);
                    }
                    o
                }
                Via::Macro if l.len() <= 3 => {
                    counter_op(&through_macro!(counter, m, name, &l), cop);
                    Outcome::Nothing
                }
                _ => {
                    counter_op(&m.counter(name, &l), cop);
                    Outcome::Nothing
                }
            }
        }
        Op::Gauge(via, name, labels, gop) => {
            let l = as_pairs(labels);
            match via {
                Via::Try => {
                    let (o, h) = outcome(m.try_gauge(name, &l));
                    if let Some(h) = h {
                        gauge_op(&h, gop);
                    }
                    o
                }
                Via::Macro if l.len() <= 3 => {
                    gauge_op(&through_macro!(gauge, m, name, &l), gop);
                    Outcome::Nothing
                }
                _ => {
                    gauge_op(&m.gauge(name, &l), gop);
                    Outcome::Nothing
                }
            }
        }
        Op::Histogram(via, name, labels, hop) => {
            let l = as_pairs(labels);
            match via {
                Via::Try => {
                    let (o, h) = outcome(m.try_histogram(name, &l));
                    if let Some(h) = h {
                        histogram_op(&h, hop);
                    }
                    o
                }
                Via::Macro if l.len() <= 3 => {
                    histogram_op(&through_macro!(histogram, m, name, &l), hop);
                    Outcome::Nothing
                }
                _ => {
                    histogram_op(&m.histogram(name, &l), hop);
                    Outcome::Nothing
                }
            }
        }
        Op::Describe {
            kind,
            name,
            unit,
            help,
            try_,
        } => {
            if *try_ {
                let unit = unit.as_deref().map(vitals::Unit::from_word);
                outcome(m.try_describe(*kind, name, unit, help)).0
            } else {
                let unit = unit.as_deref().map(vitals::Unit::from_word);
                match (kind, unit) {
                    (MetricKind::Counter, Some(u)) => {
                        vitals::describe_counter!(collector: m, name, u, help)
                    }
                    (MetricKind::Counter, None) => {
                        vitals::describe_counter!(collector: m, name, help)
                    }
                    (MetricKind::Gauge, Some(u)) => {
                        vitals::describe_gauge!(collector: m, name, u, help)
                    }
                    (MetricKind::Gauge, None) => vitals::describe_gauge!(collector: m, name, help),
                    (MetricKind::Histogram, Some(u)) => {
                        vitals::describe_histogram!(collector: m, name, u, help)
                    }
                    (MetricKind::Histogram, None) => {
                        vitals::describe_histogram!(collector: m, name, help)
                    }
                }
                Outcome::Nothing
            }
        }
        Op::Configure(name, window) => outcome(m.configure_histogram(name, *window)).0,
        Op::Buckets(name, bounds) => outcome(m.configure_histogram_buckets(name, bounds)).0,
        Op::Advance(d) => {
            clock.advance(*d);
            Outcome::Nothing
        }
        Op::Snapshot => {
            let _ = m.snapshot();
            Outcome::Nothing
        }
    }
}

// ------------------------------------------------------------- the model

pub fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The README's label rule, for a metric of `kind`.
pub fn labels_are_valid(labels: &[(String, String)], kind: MetricKind) -> bool {
    labels.iter().enumerate().all(|(i, (k, _))| {
        let mut chars = k.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with("__")
            && k != "vitals_overflow"
            && !(kind == MetricKind::Histogram && (k == "le" || k == "quantile"))
            && !labels[..i].iter().any(|(other, _)| other == k)
    })
}

pub type LabelSet = Vec<(String, String)>;

pub fn sorted(labels: &[(String, String)]) -> LabelSet {
    let mut l = labels.to_vec();
    l.sort();
    l
}

/// What a histogram series should hold, by the README's value rules.
#[derive(Debug, Clone, Default)]
pub struct HistModel {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub dropped: u64,
    pub saturated: u64,
    /// Every accepted value, after clamping (for bucket counts).
    pub values: Vec<f64>,
}

impl HistModel {
    /// NaN and negatives dropped; 0 kept; outside
    /// [MIN_TRACKABLE, MAX_TRACKABLE] clamped and counted as saturated.
    pub fn record(&mut self, v: f64) {
        if v.is_nan() || v < 0.0 {
            self.dropped += 1;
            return;
        }
        let v = if v == 0.0 {
            0.0
        } else if v < MIN_TRACKABLE {
            self.saturated += 1;
            MIN_TRACKABLE
        } else if v > MAX_TRACKABLE {
            self.saturated += 1;
            MAX_TRACKABLE
        } else {
            v
        };
        self.count += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        self.values.push(v);
    }
}

#[derive(Debug, Clone)]
pub enum SeriesModel {
    Counter(u64),
    Gauge(f64),
    /// `None` for a timer's value, which the test cannot know.
    Histogram(HistModel, bool),
}

/// The registry as the README describes it.
#[derive(Debug, Default)]
pub struct Model {
    pub kinds: HashMap<String, MetricKind>,
    /// Names in registration order (for the per-collector limit).
    pub names: usize,
    /// Label sets per name (the overflow series not counted).
    pub cardinality: HashMap<String, usize>,
    pub series: BTreeMap<(String, LabelSet), SeriesModel>,
    /// `vitals_errors_total{kind}`.
    pub errors: BTreeMap<&'static str, u64>,
    /// `vitals_cardinality_overflow_total{metric}`.
    pub overflows: BTreeMap<String, u64>,
    pub help: HashMap<String, String>,
    pub units: HashMap<String, String>,
    pub windows: HashMap<String, Window>,
    pub buckets: HashMap<String, Vec<f64>>,
}

pub const OVERFLOW_LABEL: &str = "vitals_overflow";

impl Model {
    fn report(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// The outcome of asking for a family `name` of `kind` (describe and
    /// configure): name, kind, then the name limit.
    fn family(&mut self, s: &Settings, name: &str, kind: MetricKind) -> Result<(), &'static str> {
        if !is_valid_metric_name(name) {
            return Err("invalid_name");
        }
        match self.kinds.get(name) {
            Some(k) if *k != kind => Err("kind_mismatch"),
            Some(_) => Ok(()),
            None if self.names >= s.max_metrics => Err("cardinality_limit"),
            None => {
                self.kinds.insert(name.to_owned(), kind);
                self.names += 1;
                Ok(())
            }
        }
    }

    /// The outcome of asking for a series; `Ok(key)` is the series the
    /// handle writes to (the overflow series for plain methods past the
    /// per-name limit). Acceptable alternative errors are listed: the
    /// README does not order the checks when two inputs are bad at once.
    pub fn series(
        &mut self,
        s: &Settings,
        name: &str,
        labels: &[(String, String)],
        kind: MetricKind,
        plain: bool,
    ) -> Result<(String, LabelSet), Vec<&'static str>> {
        if !is_valid_metric_name(name) {
            return Err(vec!["invalid_name"]);
        }
        let labels_ok = labels_are_valid(labels, kind);
        let key = (name.to_owned(), sorted(labels));
        match self.kinds.get(name) {
            Some(k) if *k != kind => {
                return Err(if labels_ok {
                    vec!["kind_mismatch"]
                } else {
                    vec!["kind_mismatch", "invalid_label"]
                })
            }
            Some(_) => {
                if !labels_ok {
                    return Err(vec!["invalid_label"]);
                }
                if self.series.contains_key(&key) {
                    return Ok(key);
                }
            }
            None => {
                if !labels_ok {
                    // Labels are checked before a new name takes a slot: a
                    // refused registration creates nothing (defect 12).
                    return Err(vec!["invalid_label"]);
                }
                if self.names >= s.max_metrics {
                    return Err(vec!["cardinality_limit"]);
                }
                self.kinds.insert(name.to_owned(), kind);
                self.names += 1;
            }
        }
        let n = self.cardinality.entry(name.to_owned()).or_default();
        if *n >= s.cardinality_limit {
            if !plain {
                return Err(vec!["cardinality_limit"]);
            }
            *self.overflows.entry(name.to_owned()).or_default() += 1;
            return Ok((
                name.to_owned(),
                vec![(OVERFLOW_LABEL.into(), "true".into())],
            ));
        }
        *n += 1;
        Ok(key)
    }

    fn new_series(&self, s: &Settings, name: &str, kind: MetricKind) -> SeriesModel {
        match kind {
            MetricKind::Counter => SeriesModel::Counter(0),
            MetricKind::Gauge => SeriesModel::Gauge(0.0),
            MetricKind::Histogram => {
                let _ = (s, name);
                SeriesModel::Histogram(HistModel::default(), true)
            }
        }
    }

    /// Applies `op` to the model and returns the outcomes the collector
    /// may give (`Nothing` for operations without a result).
    pub fn apply(&mut self, s: &Settings, op: &Op) -> Vec<Outcome> {
        let (name, labels, kind, via) = match op {
            Op::Counter(v, n, l, _) => (n, l, MetricKind::Counter, *v),
            Op::Gauge(v, n, l, _) => (n, l, MetricKind::Gauge, *v),
            Op::Histogram(v, n, l, _) => (n, l, MetricKind::Histogram, *v),
            Op::Describe {
                kind,
                name,
                unit,
                help,
                try_,
            } => {
                let unit_ok = unit.as_ref().is_none_or(|u| {
                    !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                let r = if unit_ok {
                    self.family(s, name, *kind)
                } else {
                    Err("invalid_config")
                };
                if r.is_ok() {
                    self.help.insert(name.clone(), help.clone());
                    if let Some(u) = unit {
                        self.units.insert(name.clone(), u.clone());
                    }
                }
                return match (r, try_) {
                    (Ok(()), true) => vec![Outcome::Ok],
                    (Err(e), true) => vec![Outcome::Err(e)],
                    (Ok(()), false) => vec![Outcome::Nothing],
                    (Err(e), false) => {
                        self.report(e);
                        vec![Outcome::Nothing]
                    }
                };
            }
            Op::Configure(name, window) => {
                if !window_is_valid(window) {
                    return vec![Outcome::Err("invalid_config")];
                }
                return match self.family(s, name, MetricKind::Histogram) {
                    Err(e) => vec![Outcome::Err(e)],
                    Ok(())
                        if self.cardinality.get(name).copied().unwrap_or(0) > 0
                            || self.overflows.contains_key(name) =>
                    {
                        vec![Outcome::Err("invalid_config")]
                    }
                    Ok(()) => {
                        self.windows.insert(name.clone(), *window);
                        vec![Outcome::Ok]
                    }
                };
            }
            Op::Buckets(name, bounds) => {
                let ok = (1..=vitals::histogram::MAX_BUCKETS).contains(&bounds.len())
                    && bounds.iter().all(|b| b.is_finite() && *b >= 0.0)
                    && bounds.windows(2).all(|w| w[0] < w[1]);
                if !ok {
                    return vec![Outcome::Err("invalid_config")];
                }
                return match self.family(s, name, MetricKind::Histogram) {
                    Err(e) => vec![Outcome::Err(e)],
                    Ok(())
                        if self.cardinality.get(name).copied().unwrap_or(0) > 0
                            || self.overflows.contains_key(name) =>
                    {
                        vec![Outcome::Err("invalid_config")]
                    }
                    Ok(()) => {
                        self.buckets.insert(name.clone(), bounds.clone());
                        vec![Outcome::Ok]
                    }
                };
            }
            Op::Advance(_) | Op::Snapshot => return vec![Outcome::Nothing],
        };
        let plain = via != Via::Try;
        match self.series(s, name, labels, kind, plain) {
            Err(errs) => {
                if plain {
                    // Which error is counted is one of the acceptable ones;
                    // the test reads the count of every kind together.
                    self.report(errs[0]);
                    vec![Outcome::Nothing]
                } else {
                    errs.into_iter().map(Outcome::Err).collect()
                }
            }
            Ok(key) => {
                let fresh = self.new_series(s, name, kind);
                let series = self.series.entry(key).or_insert(fresh);
                match (op, series) {
                    (Op::Counter(_, _, _, c), SeriesModel::Counter(v)) => {
                        *v = match *c {
                            CounterOp::Inc => v.wrapping_add(1),
                            CounterOp::Increment(n) => v.wrapping_add(n),
                            CounterOp::Absolute(n) => (*v).max(n),
                        }
                    }
                    (Op::Gauge(_, _, _, g), SeriesModel::Gauge(v)) => {
                        *v = match *g {
                            GaugeOp::Set(x) => x,
                            GaugeOp::Increment(x) => *v + x,
                            GaugeOp::Decrement(x) => *v - x,
                            GaugeOp::SetMax(x) if !x.is_nan() && (v.is_nan() || x > *v) => x,
                            GaugeOp::SetMin(x) if !x.is_nan() && (v.is_nan() || x < *v) => x,
                            _ => *v,
                        }
                    }
                    (Op::Histogram(_, _, _, h), SeriesModel::Histogram(m, exact)) => match *h {
                        HistogramOp::Record(x) => m.record(x),
                        HistogramOp::RecordDuration(d) => m.record(d.as_secs_f64()),
                        HistogramOp::Timer => {
                            // Some small elapsed time: count it, value unknown.
                            *exact = false;
                            m.record(MIN_TRACKABLE);
                        }
                    },
                    _ => unreachable!("the model keeps one kind per name"),
                }
                if plain {
                    vec![Outcome::Nothing]
                } else {
                    vec![Outcome::Ok]
                }
            }
        }
    }
}

// ------------------------------------------------------------- plug-ins

pub type RawSample = (
    vitals::plugin::SampleKind,
    String,
    Vec<(String, String)>,
    f64,
);

/// A plug-in that adds the given samples, ignoring those `Samples` refuses.
pub struct SamplesPlugin {
    pub name: String,
    pub samples: Vec<RawSample>,
}

impl vitals::Collector for SamplesPlugin {
    fn name(&self) -> &str {
        &self.name
    }
    fn collect(&self, out: &mut vitals::Samples) -> Result<(), Error> {
        for (kind, name, labels, value) in &self.samples {
            let l = as_pairs(labels);
            let _ = match kind {
                vitals::plugin::SampleKind::Counter => out.counter(name, &l, *value),
                vitals::plugin::SampleKind::Gauge => out.gauge(name, &l, *value),
            };
        }
        Ok(())
    }
}

/// Samples of either kind with any name, labels and value.
pub fn raw_samples() -> impl Strategy<Value = Vec<RawSample>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                vitals::plugin::SampleKind::Counter,
                vitals::plugin::SampleKind::Gauge,
            ]),
            metric_name(),
            labels(),
            any_f64(),
        ),
        0..10,
    )
}
