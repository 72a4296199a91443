//! `Builder`: the settings of a `MetricsCollector`, checked before use.

use std::sync::Arc;
use std::time::Duration;

use super::*;

/// Settings for a [`MetricsCollector`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use vitals::{ManualClock, MetricsCollector, Window};
///
/// let metrics = MetricsCollector::builder()
///     .clock(Arc::new(ManualClock::new()))
///     .cardinality_limit(100)
///     .histogram_window(Window::Count { values: 500 })
///     .rate_window(Duration::from_secs(30))
///     .try_build()
///     .unwrap();
/// metrics.histogram("batch_size", &[]).record(3.0);
/// let snap = metrics.snapshot();
/// assert_eq!(snap.histogram("batch_size", &[]).unwrap().window.window, Window::Count { values: 500 });
/// assert!(MetricsCollector::builder().cardinality_limit(0).try_build().is_err());
/// ```
#[derive(Debug)]
pub struct Builder {
    pub(super) clock: Option<Arc<dyn Clock>>,
    pub(super) cardinality_limit: usize,
    pub(super) max_metrics: usize,
    pub(super) default_window: Window,
    pub(super) rate_window: Duration,
    pub(super) expire_after: Option<Duration>,
    pub(super) plugin_deadline: Duration,
    pub(super) lifetime_buckets: bool,
}

impl Builder {
    /// The clock for windows, rates and timestamps (default: the system clock).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let clock = Arc::new(vitals::ManualClock::new());
    /// let m = vitals::MetricsCollector::builder().clock(clock.clone()).build();
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(m.snapshot().uptime_seconds, 5.0);
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Label sets allowed per metric name (at least 1; default
    /// [`DEFAULT_CARDINALITY_LIMIT`]).
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().cardinality_limit(2).build();
    /// for user in ["a", "b", "c"] {
    ///     m.counter("logins_total", &[("user", user)]).inc();
    /// }
    /// assert_eq!(m.cardinality("logins_total"), Some(2));
    /// assert_eq!(m.snapshot().counter("logins_total", &[("vitals_overflow", "true")]), Some(1.0));
    /// ```
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = limit;
        self
    }

    /// Metric names allowed (at least 1; default [`DEFAULT_MAX_METRICS`]).
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().max_metrics(1).build();
    /// assert!(m.try_counter("first_total", &[]).is_ok());
    /// assert!(m.try_counter("second_total", &[]).is_err());
    /// ```
    pub fn max_metrics(mut self, max: usize) -> Self {
        self.max_metrics = max;
        self
    }

    /// The window of histograms not configured otherwise (default: 60 s in
    /// 6 slots).
    ///
    /// ```
    /// use vitals::Window;
    /// let m = vitals::MetricsCollector::builder()
    ///     .histogram_window(Window::Count { values: 1000 })
    ///     .build();
    /// m.histogram("h", &[]).record(1.0);
    /// assert_eq!(m.snapshot().histogram("h", &[]).unwrap().window.window, Window::Count { values: 1000 });
    /// ```
    pub fn histogram_window(mut self, window: Window) -> Self {
        self.default_window = window;
        self
    }

    /// How far back counter rates look (at least 1 s; default 60 s).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let clock = Arc::new(vitals::ManualClock::new());
    /// let m = vitals::MetricsCollector::builder()
    ///     .clock(clock.clone())
    ///     .rate_window(Duration::from_secs(10))
    ///     .build();
    /// let c = m.counter("c_total", &[]);
    /// for _ in 0..6 {
    ///     c.increment(10);
    ///     clock.advance(Duration::from_secs(5));
    ///     let _ = m.snapshot();
    /// }
    /// let rate = m.snapshot().counter_sample("c_total", &[]).unwrap().rate.unwrap();
    /// assert_eq!((rate.per_second, rate.span_seconds), (2.0, 10.0));
    /// ```
    pub fn rate_window(mut self, window: Duration) -> Self {
        self.rate_window = window;
        self
    }

    /// Makes snapshots carry each histogram's exponential bucket state:
    /// the window's buckets
    /// ([`HistogramSummary::window_buckets`](crate::snapshot::HistogramSummary), which
    /// make [`HistogramSummary::merge`](crate::snapshot::HistogramSummary::merge)
    /// exact) and, for time windows, the lifetime bucket counts
    /// ([`HistogramSummary::lifetime_buckets`](crate::snapshot::HistogramSummary)),
    /// which `History` (feature `history`) needs for quantiles over
    /// its intervals (default: off). Costs each time-window series 16 bytes
    /// per non-empty bucket in each of its two lists (the window's and the
    /// lifetime's: up to 2 KiB per 64 buckets it uses, 32 KiB over four
    /// decades with every bucket used), at most 2.5 KiB more while
    /// exporters ask for its lists cut to 160 buckets (OTLP, remote write,
    /// the protobuf scrape), and each snapshot line a few bytes per
    /// non-empty bucket.
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
    /// m.histogram("h", &[]).record(0.5);
    /// let snap = m.snapshot();
    /// let s = snap.histogram("h", &[]).unwrap();
    /// assert_eq!(s.lifetime_buckets.as_ref().unwrap().count(), 1);
    /// assert_eq!(s.window_buckets.as_ref().unwrap().count(), 1);
    /// ```
    pub fn lifetime_buckets(mut self, on: bool) -> Self {
        self.lifetime_buckets = on;
        self
    }

    /// How long a snapshot waits for each plug-in registered from now on
    /// (at least 1 ms; default [`DEFAULT_PLUGIN_DEADLINE`]).
    /// [`Plugin::set_deadline`] changes one plug-in's.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = vitals::MetricsCollector::builder()
    ///     .plugin_deadline(Duration::from_millis(250))
    ///     .build();
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let plugin = m.register(P).unwrap();
    /// assert_eq!(plugin.deadline(), Duration::from_millis(250));
    /// ```
    pub fn plugin_deadline(mut self, deadline: Duration) -> Self {
        self.plugin_deadline = deadline;
        self
    }

    /// Expires idle series: a series not updated for `idle` leaves
    /// snapshots and its memory is freed (default: never). A handle still
    /// held keeps working; its next update brings the series back, counting
    /// from zero (see [`MetricsCollector::remove`]). Checked at each
    /// snapshot: a series expires at the first snapshot that finds it
    /// unchanged since a snapshot at least `idle` earlier. The collector's
    /// own `vitals_*` series never expire. At least 1 ms.
    ///
    /// With this set, the [global collector](crate::install_global) counts
    /// references to its series (as explicit collectors do) instead of
    /// keeping them for the whole program, so that expired series free
    /// their memory.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use vitals::{ManualClock, MetricsCollector};
    ///
    /// let clock = Arc::new(ManualClock::new());
    /// let metrics = MetricsCollector::builder()
    ///     .clock(clock.clone())
    ///     .expire_after(Duration::from_secs(300))
    ///     .build();
    /// metrics.counter("conn_bytes_total", &[("peer", "10.0.0.7")]).increment(512);
    /// assert_eq!(metrics.snapshot().counters.len(), 1);
    /// clock.advance(Duration::from_secs(300));
    /// assert!(metrics.snapshot().counters.is_empty());
    /// ```
    pub fn expire_after(mut self, idle: Duration) -> Self {
        self.expire_after = Some(idle);
        self
    }

    /// Builds the collector, or says which setting is out of range.
    ///
    /// ```
    /// let err = vitals::MetricsCollector::builder().cardinality_limit(0).try_build();
    /// assert!(err.is_err());
    /// ```
    pub fn try_build(self) -> Result<MetricsCollector, Error> {
        self.validate()?;
        Ok(MetricsCollector::from_builder(self, false))
    }

    /// Builds the collector. A setting out of range is replaced by its
    /// default, and the error is counted and kept as
    /// [`Snapshot::first_error`] (use [`try_build`](Builder::try_build) to
    /// get it instead).
    ///
    /// ```
    /// let m = vitals::MetricsCollector::builder().cardinality_limit(0).build();
    /// assert!(m.snapshot().first_error.unwrap().contains("cardinality"));
    /// ```
    pub fn build(self) -> MetricsCollector {
        self.build_inner(false)
    }

    pub(super) fn build_inner(mut self, leak: bool) -> MetricsCollector {
        let problem = self.validate().err();
        if problem.is_some() {
            let defaults = MetricsCollector::builder();
            if self.cardinality_limit == 0 {
                self.cardinality_limit = defaults.cardinality_limit;
            }
            if self.max_metrics == 0 {
                self.max_metrics = defaults.max_metrics;
            }
            if self.default_window.validate().is_err() {
                self.default_window = defaults.default_window;
            }
            if self.rate_window < Duration::from_secs(1) {
                self.rate_window = defaults.rate_window;
            }
            if check_period("deadline", self.plugin_deadline).is_err() {
                self.plugin_deadline = defaults.plugin_deadline;
            }
            if self
                .expire_after
                .is_some_and(|d| d < Duration::from_millis(1))
            {
                self.expire_after = None;
            }
        }
        let collector = MetricsCollector::from_builder(self, leak);
        if let Some(err) = problem {
            collector.inner.report(err);
        }
        collector
    }

    pub(super) fn validate(&self) -> Result<(), Error> {
        if self.cardinality_limit == 0 {
            return Err(Error::InvalidConfig(
                "the cardinality limit must be at least 1".into(),
            ));
        }
        if self.max_metrics == 0 {
            return Err(Error::InvalidConfig(
                "max_metrics must be at least 1".into(),
            ));
        }
        if self.rate_window < Duration::from_secs(1) {
            return Err(Error::InvalidConfig(format!(
                "the rate window must be at least 1 s, not {:?}",
                self.rate_window
            )));
        }
        check_period("deadline", self.plugin_deadline)?;
        if let Some(idle) = self.expire_after.filter(|d| *d < Duration::from_millis(1)) {
            return Err(Error::InvalidConfig(format!(
                "series expire after at least 1 ms idle, not {idle:?}"
            )));
        }
        self.default_window.validate()
    }
}
