//! # vitals
//!
//! An embeddable metrics library: instrument a program with macros, plug in
//! collectors, and read the numbers as snapshots.
//!
//! **The pieces.** A [`MetricsCollector`] is a registry of series, each a
//! metric name plus a label set. It hands out three kinds of handles:
//! [`Counter`] (a monotonic `u64`), [`Gauge`] (an `f64` that goes up and
//! down) and [`Histogram`] (a distribution over a rolling [`Window`], by
//! time or by count, with quantiles). Handles are cheap to clone, `Send +
//! Sync`, and their hot paths are single atomic operations: no lock, no
//! clock read, no allocation. [`MetricsCollector::snapshot`] turns every
//! series into a [`Snapshot`], plain serde data that every output renders
//! from.
//!
//! **Series come and go.** [`MetricsCollector::remove`] and
//! [`MetricsCollector::retain`] take series out, and
//! [`Builder::expire_after`] expires idle ones; a handle still held brings
//! its series back on its next update, counting from zero.
//!
//! **The macros** ([`counter!`], [`gauge!`], [`histogram!`], [`timed!`],
//! `describe_*!`) use the process-wide [`global()`] collector unless given
//! one. A call site with a literal name and labels caches its handle, so
//! after the first call it costs one load plus the atomic operation.
//!
//! **Already using the `metrics` crate?** With the `metrics-bridge` cargo
//! feature, `bridge::install` makes vitals the `metrics` recorder, so
//! `metrics::counter!` and friends from any library land in vitals series.
//!
//! **Outputs** live in [`export`]: every exporter renders a [`Snapshot`],
//! never the registry. A [`Reporter`](export::Reporter) thread snapshots
//! every interval and feeds the exporters, isolating their failures;
//! [`JsonLinesExporter`](export::JsonLinesExporter) appends one snapshot per
//! line with rotation, retention and an fsync policy, and
//! [`JsonLinesReader`](export::JsonLinesReader) reads the files back;
//! [`render_prometheus`](export::render_prometheus) and
//! [`render_openmetrics`](export::render_openmetrics) write the scrape
//! formats; [`render_table`](export::render_table) and
//! [`status_line`](export::status_line) are for people and logs.
//!
//! **History** (cargo feature `history`). `history::History` keeps snapshots as time series at
//! raw, 1 min, 5 min and 1 h levels with a retention each, rebuilt from
//! JSON-Lines files or fed live, and answers queries by name, labels and
//! time range (rates, averages, quantiles merged exactly from bucket
//! counts; see [`Builder::lifetime_buckets`]).
//!
//! **Bad input never panics.** The `try_*` methods return an [`Error`];
//! the macros and plain methods hand back a detached handle and count the
//! problem in `vitals_errors_total{kind}`. NaN gauges are kept (and spelled
//! `"NaN"` in JSON); NaN or negative histogram values are dropped and
//! counted; values outside a histogram's range are clamped and counted.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vitals::{counter, histogram, ManualClock, MetricsCollector};
//!
//! // The global collector, through the macros:
//! counter!("app_started_total").inc();
//!
//! // An explicit collector with a hand-driven clock, as in tests:
//! let clock = Arc::new(ManualClock::new());
//! let metrics = MetricsCollector::builder().clock(clock.clone()).build();
//! let served = metrics.counter("requests_total", &[("route", "/")]);
//! let latency = metrics.histogram("request_duration_seconds", &[("route", "/")]);
//! for ms in 1..=100 {
//!     served.inc();
//!     latency.record(f64::from(ms) / 1000.0);
//! }
//! clock.advance(Duration::from_secs(10));
//!
//! let snap = metrics.snapshot();
//! let rate = snap.counter_sample("requests_total", &[("route", "/")]).unwrap().rate.unwrap();
//! assert_eq!(rate.per_second, 10.0);
//! let window = &snap.histogram("request_duration_seconds", &[("route", "/")]).unwrap().window;
//! let p99 = window.quantiles.unwrap().p99;
//! assert!((p99 - 0.099).abs() / 0.099 < 0.01);
//! println!("{}", serde_json::to_string(&snap).unwrap());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

#[cfg(feature = "metrics-bridge")]
pub mod bridge;
pub mod clock;
mod error;
pub mod export;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "history")]
pub mod history;
mod key;
mod macros;
mod metrics;
mod non_finite;
pub mod plugin;
pub mod registry;
pub mod snapshot;
mod unit;

pub mod collectors;

/// Histograms: the handle, its rolling windows, its timer and its range.
///
/// ```
/// use vitals::histogram::{Window, MAX_TRACKABLE};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.configure_histogram("batch_size", Window::Count { values: 100 }).unwrap();
/// let h = metrics.histogram("batch_size", &[]);
/// h.record(MAX_TRACKABLE * 2.0); // clamped to the range, and counted
/// assert_eq!(metrics.snapshot().histogram("batch_size", &[]).unwrap().saturated, 1);
/// ```
pub mod histogram {
    pub use crate::metrics::histogram::{
        Histogram, HistogramTimer, Window, MAX_BUCKETS, MAX_TRACKABLE, MIN_TRACKABLE,
    };
}

pub use clock::{Clock, ManualClock};
pub use error::Error;
pub use key::Labels;
#[doc(hidden)]
pub use macros::__private;
pub use metrics::counter::Counter;
pub use metrics::gauge::Gauge;
pub use metrics::histogram::{Histogram, HistogramTimer, Window};
pub use metrics::layout;
pub use plugin::{Collector, Samples};
pub use registry::{global, install_global, Builder, MetricsCollector};
pub use snapshot::{MetricKind, Snapshot};
pub use unit::Unit;

/// The README's code examples, compiled and run as doc tests so that the
/// README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
