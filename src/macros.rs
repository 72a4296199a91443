//! `counter!`, `gauge!`, `histogram!`, `describe_*!` and `timed!`.
//!
//! Each macro evaluates to a handle (`Counter`, `Gauge`, `Histogram`) and
//! uses the [global collector](crate::global) unless given one with
//! `collector: expr,` in front. Three call-site shapes, three costs:
//!
//! * **literal name, literal labels** (`counter!("jobs_total", "queue" => "mail")`):
//!   the handle is registered on the first call and kept in a `static` at
//!   the call site; every later call is one load and a pointer copy.
//! * **literal name, runtime label values** (`counter!("req_total", "method" => m)`):
//!   the metric's family is kept at the call site; each call hashes the
//!   borrowed labels and does one read-locked lookup, with no allocation
//!   once the series exists.
//! * **runtime name or explicit collector**: a full lookup by name and labels.
//!
//! None of them panics: a bad name, a bad label or a kind clash gives a
//! detached handle and is counted in `vitals_errors_total{kind}`.

use std::sync::{Arc, OnceLock};

use crate::key::{hash_labels, labels_match, Labels};
use crate::registry::{global, Family, MetricsCollector};

/// A counter handle from the global (or a given) collector.
///
/// ```
/// use vitals::counter;
///
/// counter!("jobs_total").increment(1);                     // cached at the call site
/// counter!("jobs_total", "queue" => "mail").inc();         // cached too
/// let method = String::from("GET");
/// counter!("requests_total", "method" => method).inc();    // one lookup, no allocation
/// let name = format!("dyn_{}_total", 3);
/// counter!(name).inc();                                    // runtime name: full lookup
///
/// let metrics = vitals::MetricsCollector::new();
/// counter!(collector: metrics, "local_total", "k" => "v").increment(2);
/// assert_eq!(metrics.snapshot().counter("local_total", &[("k", "v")]), Some(2.0));
/// ```
///
/// Malformed calls do not compile. A label value must be a string:
///
/// ```compile_fail
/// vitals::counter!("jobs_total", "attempt" => 3).inc();
/// ```
///
/// A name is required:
///
/// ```compile_fail
/// vitals::counter!().inc();
/// ```
///
/// Labels are `key => value` pairs:
///
/// ```compile_fail
/// vitals::counter!("jobs_total", "queue").inc();
/// ```
#[macro_export]
macro_rules! counter {
    ($($args:tt)*) => { $crate::__vitals_handle!($crate::Counter; $($args)*) };
}

/// A gauge handle from the global (or a given) collector.
///
/// ```
/// use vitals::gauge;
///
/// gauge!("queue_depth").set(12.0);
/// let shard = 3.to_string();
/// gauge!("shard_load", "shard" => shard).increment(0.5);
///
/// let snap = vitals::global().snapshot();
/// assert_eq!(snap.gauge("queue_depth", &[]), Some(12.0));
/// assert_eq!(snap.gauge("shard_load", &[("shard", "3")]), Some(0.5));
/// ```
#[macro_export]
macro_rules! gauge {
    ($($args:tt)*) => { $crate::__vitals_handle!($crate::Gauge; $($args)*) };
}

/// A histogram handle from the global (or a given) collector.
///
/// ```
/// use vitals::histogram;
///
/// histogram!("payload_bytes").record(1500.0);
/// histogram!("latency_seconds", "route" => "/api").record(0.012);
/// drop(histogram!("handler_seconds").start_timer()); // records when dropped
///
/// let snap = vitals::global().snapshot();
/// assert_eq!(snap.histogram("payload_bytes", &[]).unwrap().window.count, 1);
/// assert_eq!(snap.histogram("handler_seconds", &[]).unwrap().window.count, 1);
/// ```
#[macro_export]
macro_rules! histogram {
    ($($args:tt)*) => { $crate::__vitals_handle!($crate::Histogram; $($args)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vitals_handle {
    ($ty:ty; $(collector: $c:expr $(,)?)?) => {
        ::core::compile_error!(
            "a metric name is required, e.g. counter!(\"jobs_total\") or counter!(\"jobs_total\", \"queue\" => queue)"
        )
    };
    ($ty:ty; collector: $c:expr, $name:expr $(, $k:expr => $v:expr)* $(,)?) => {
        $crate::__private::get::<$ty>(
            &$c,
            $crate::__private::label(&$name),
            &[$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*],
        )
    };
    ($ty:ty; $name:literal $(, $k:literal => $v:literal)* $(,)?) => {{
        static SITE: $crate::__private::Site<$ty> = $crate::__private::Site::new();
        SITE.get($name, &[$(($k, $v)),*])
    }};
    ($ty:ty; $name:literal $(, $k:expr => $v:expr)* $(,)?) => {{
        static SITE: $crate::__private::FamilySite<$ty> = $crate::__private::FamilySite::new();
        SITE.get(
            $name,
            &[$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*],
        )
    }};
    ($ty:ty; $name:expr $(, $k:expr => $v:expr)* $(,)?) => {
        $crate::__private::get::<$ty>(
            $crate::global(),
            $crate::__private::label(&$name),
            &[$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*],
        )
    };
}

/// Sets the help text (and optionally the unit) of a counter.
///
/// ```
/// vitals::describe_counter!("requests_total", "Requests served");
/// vitals::describe_counter!("bytes_sent_total", vitals::Unit::Bytes, "Bytes written to clients");
///
/// let snap = vitals::global().snapshot();
/// let info = snap.metadata("bytes_sent_total").unwrap();
/// assert_eq!(info.help.as_deref(), Some("Bytes written to clients"));
/// assert_eq!(info.unit.as_deref(), Some("bytes"));
/// ```
#[macro_export]
macro_rules! describe_counter {
    ($($args:tt)*) => { $crate::__vitals_describe!($crate::MetricKind::Counter; $($args)*) };
}

/// Sets the help text (and optionally the unit) of a gauge.
///
/// ```
/// vitals::describe_gauge!("queue_depth", "Jobs waiting");
///
/// let snap = vitals::global().snapshot();
/// let info = snap.metadata("queue_depth").unwrap();
/// assert_eq!(info.kind, vitals::MetricKind::Gauge);
/// assert_eq!(info.help.as_deref(), Some("Jobs waiting"));
/// ```
#[macro_export]
macro_rules! describe_gauge {
    ($($args:tt)*) => { $crate::__vitals_describe!($crate::MetricKind::Gauge; $($args)*) };
}

/// Sets the help text (and optionally the unit) of a histogram.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// vitals::describe_histogram!(collector: metrics, "latency_seconds", vitals::Unit::Seconds, "Request latency");
/// let snap = metrics.snapshot();
/// assert_eq!(snap.metadata[0].unit.as_deref(), Some("seconds"));
/// ```
#[macro_export]
macro_rules! describe_histogram {
    ($($args:tt)*) => { $crate::__vitals_describe!($crate::MetricKind::Histogram; $($args)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vitals_describe {
    ($kind:expr; collector: $c:expr, $name:expr, $unit:expr, $help:expr $(,)?) => {
        $crate::MetricsCollector::describe(&$c, $kind, $crate::__private::label(&$name),
            ::core::option::Option::Some($crate::__private::unit($unit)),
            $crate::__private::label(&$help))
    };
    ($kind:expr; collector: $c:expr, $name:expr, $help:expr $(,)?) => {
        $crate::MetricsCollector::describe(&$c, $kind, $crate::__private::label(&$name),
            ::core::option::Option::None, $crate::__private::label(&$help))
    };
    ($kind:expr; $name:expr, $unit:expr, $help:expr $(,)?) => {
        $crate::__vitals_describe!($kind; collector: $crate::global(), $name, $unit, $help)
    };
    ($kind:expr; $name:expr, $help:expr $(,)?) => {
        $crate::__vitals_describe!($kind; collector: $crate::global(), $name, $help)
    };
}

/// Times a block into a histogram (seconds) and returns the block's value.
/// With `errors = "name"`, a block whose value is an `Err` also increments
/// that counter (with the same labels).
///
/// The time is recorded however the block is left; a `?` or `return` that
/// leaves it early is timed but not counted as an error, since the block
/// produced no value to inspect.
///
/// ```
/// use vitals::timed;
///
/// let metrics = vitals::MetricsCollector::new();
/// let sum = timed!(collector: metrics, "sum_seconds"; { (1..=10).sum::<u32>() });
/// assert_eq!(sum, 55);
///
/// let parsed: Result<u8, _> = timed!(
///     collector: metrics, "parse_seconds", "field" => "age";
///     errors = "parse_errors_total";
///     { "x".parse::<u8>() }
/// );
/// assert!(parsed.is_err());
/// let snap = metrics.snapshot();
/// assert_eq!(snap.counter("parse_errors_total", &[("field", "age")]), Some(1.0));
/// assert_eq!(snap.histogram("parse_seconds", &[("field", "age")]).unwrap().window.count, 1);
/// ```
#[macro_export]
macro_rules! timed {
    // Each shape takes its handles the way `histogram!` and `counter!` do
    // for the same call site: cached in a `static` for a literal name and
    // literal labels, a cached family for a literal name and runtime
    // labels, a full lookup otherwise. Every argument is evaluated once,
    // before the block (label values into one array both handles share).
    (collector: $c:expr, $name:expr $(, $k:expr => $v:expr)*; errors = $err:expr; $body:expr) => {
        match (
            &$c,
            $crate::__private::label(&$name),
            $crate::__private::label(&$err),
            [$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*],
        ) {
            (__vitals_c, __vitals_name, __vitals_err, __vitals_labels) => $crate::__vitals_timed!(
                $crate::__private::get::<$crate::Histogram>(
                    __vitals_c, __vitals_name, &__vitals_labels);
                $crate::__private::get::<$crate::Counter>(
                    __vitals_c, __vitals_err, &__vitals_labels);
                $body),
        }
    };
    (collector: $c:expr, $name:expr $(, $k:expr => $v:expr)*; $body:expr) => {
        match (
            &$c,
            $crate::__private::label(&$name),
            [$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*],
        ) {
            (__vitals_c, __vitals_name, __vitals_labels) => $crate::__vitals_timed!(
                $crate::__private::get::<$crate::Histogram>(
                    __vitals_c, __vitals_name, &__vitals_labels);
                $body),
        }
    };
    ($name:literal $(, $k:literal => $v:literal)*; errors = $err:literal; $body:expr) => {
        $crate::__vitals_timed!(
            {
                static SITE: $crate::__private::Site<$crate::Histogram> = $crate::__private::Site::new();
                SITE.get($name, &[$(($k, $v)),*])
            };
            {
                static SITE: $crate::__private::Site<$crate::Counter> = $crate::__private::Site::new();
                SITE.get($err, &[$(($k, $v)),*])
            };
            $body)
    };
    ($name:literal $(, $k:literal => $v:literal)*; $body:expr) => {
        $crate::__vitals_timed!(
            {
                static SITE: $crate::__private::Site<$crate::Histogram> = $crate::__private::Site::new();
                SITE.get($name, &[$(($k, $v)),*])
            };
            $body)
    };
    ($name:literal $(, $k:expr => $v:expr)*; errors = $err:literal; $body:expr) => {
        match [$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*] {
            __vitals_labels => $crate::__vitals_timed!(
                {
                    static SITE: $crate::__private::FamilySite<$crate::Histogram> =
                        $crate::__private::FamilySite::new();
                    SITE.get($name, &__vitals_labels)
                };
                {
                    static SITE: $crate::__private::FamilySite<$crate::Counter> =
                        $crate::__private::FamilySite::new();
                    SITE.get($err, &__vitals_labels)
                };
                $body),
        }
    };
    ($name:literal $(, $k:expr => $v:expr)*; $body:expr) => {
        match [$(($crate::__private::label(&$k), $crate::__private::label(&$v))),*] {
            __vitals_labels => $crate::__vitals_timed!(
                {
                    static SITE: $crate::__private::FamilySite<$crate::Histogram> =
                        $crate::__private::FamilySite::new();
                    SITE.get($name, &__vitals_labels)
                };
                $body),
        }
    };
    ($name:expr $(, $k:expr => $v:expr)*; errors = $err:expr; $body:expr) => {
        $crate::timed!(collector: *$crate::global(), $name $(, $k => $v)*; errors = $err; $body)
    };
    ($name:expr $(, $k:expr => $v:expr)*; $body:expr) => {
        $crate::timed!(collector: *$crate::global(), $name $(, $k => $v)*; $body)
    };
    ($($args:tt)*) => {
        ::core::compile_error!(
            "timed! takes a histogram name, optional labels and a block: timed!(\"work_seconds\", \"k\" => v; { ... }), with `errors = \"errors_total\";` before the block to count Err values"
        )
    };
}

/// The body of every `timed!` shape: start the histogram's timer, run the
/// block, stop the timer, count an `Err` (the counter handle is only taken
/// then).
#[doc(hidden)]
#[macro_export]
macro_rules! __vitals_timed {
    ($histogram:expr; $errors:expr; $body:expr) => {{
        let __vitals_timer = $crate::Histogram::start_timer(&$histogram);
        let __vitals_out = $body;
        __vitals_timer.stop();
        if $crate::__private::is_err(&__vitals_out) {
            $crate::Counter::inc(&$errors);
        }
        __vitals_out
    }};
    ($histogram:expr; $body:expr) => {{
        let __vitals_timer = $crate::Histogram::start_timer(&$histogram);
        let __vitals_out = $body;
        __vitals_timer.stop();
        __vitals_out
    }};
}

/// Support for the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    pub use crate::registry::family::Handle;

    /// The unit of `describe_*!`: a [`Unit`](crate::Unit) only, so that a
    /// unit and a help text cannot be swapped.
    #[inline(always)]
    pub fn unit(unit: crate::Unit) -> crate::Unit {
        unit
    }

    /// Borrows a name, label key or value as `&str` (for `&str`, `String`,
    /// `Cow<str>`, `Arc<str>` ...).
    #[inline(always)]
    pub fn label<T: AsRef<str> + ?Sized>(value: &T) -> &str {
        value.as_ref()
    }

    /// True for an `Err`; lets `timed!` count errors of any `Result`.
    pub fn is_err<T, E>(value: &Result<T, E>) -> bool {
        value.is_err()
    }

    /// The handle of series `name` with `labels` in `collector`: full
    /// lookup, never fails (what the plain methods do).
    #[inline]
    pub fn get<H: Handle>(collector: &MetricsCollector, name: &str, labels: &[(&str, &str)]) -> H {
        collector.handle(name, labels)
    }

    /// A call site with a literal name and literal labels: its handle,
    /// registered on the first successful call. Sound only because the
    /// global collector is never replaced.
    #[derive(Debug)]
    pub struct Site<H>(OnceLock<H>);

    impl<H: Handle> Site<H> {
        /// An empty site.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Site(OnceLock::new())
        }

        /// The cached handle (hot path: one load and a pointer copy).
        #[inline]
        pub fn get(&'static self, name: &str, labels: &[(&str, &str)]) -> H {
            match self.0.get() {
                Some(handle) => handle.clone(),
                None => self.register(name, labels),
            }
        }

        /// Errors are not cached: each call retries and is counted, which is
        /// what the error counter promises.
        #[cold]
        #[inline(never)]
        fn register(&'static self, name: &str, labels: &[(&str, &str)]) -> H {
            match global().try_handle::<H>(name, labels) {
                Ok(handle) => self.0.get_or_init(|| handle).clone(),
                // Past the limit: the overflow series, counted, as the
                // plain methods give (not cached: each call counts).
                Err(crate::Error::CardinalityLimit { .. }) => global().handle::<H>(name, labels),
                Err(err) => {
                    global().report_error(err);
                    H::detached()
                }
            }
        }
    }

    /// Label sets a runtime-label call site remembers.
    const SITE_CACHE: usize = 16;

    /// A call site with a literal name and runtime labels: the metric's
    /// family, found on the first successful call, and a small direct-mapped
    /// cache (two slots per hash) of the label sets seen there. Most such
    /// call sites see a few
    /// label values (methods, status classes, queue names), which then cost
    /// one hash and one comparison: no lock, no map. A cache slot is filled
    /// once, by the first regular series that hashes to it; the rest go
    /// through the family's map. Overflow and detached handles are never
    /// cached, so limits and error counts behave as without the cache.
    #[derive(Debug)]
    pub struct FamilySite<H> {
        family: OnceLock<Arc<Family>>,
        cache: [OnceLock<CachedSeries<H>>; SITE_CACHE],
    }

    #[derive(Debug)]
    struct CachedSeries<H> {
        hash: u64,
        labels: Labels,
        handle: H,
    }

    impl<H: Handle> FamilySite<H> {
        /// An empty site.
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            FamilySite {
                family: OnceLock::new(),
                cache: [const { OnceLock::new() }; SITE_CACHE],
            }
        }

        /// The series for these labels in the cached family.
        #[inline]
        pub fn get(&'static self, name: &str, labels: &[(&str, &str)]) -> H {
            // Hot path: a label set seen here before.
            let hash = hash_labels(SITE_SEED, labels);
            let first = (hash as usize) % SITE_CACHE;
            for i in [first, (first + 1) % SITE_CACHE] {
                match self.cache[i].get() {
                    Some(hit) if hit.hash == hash && labels_match(hit.labels.pairs(), labels) => {
                        return hit.handle.clone();
                    }
                    Some(_) => {}
                    None => return self.lookup(&self.cache[i], hash, name, labels),
                }
            }
            self.lookup(&self.cache[first], hash, name, labels)
        }

        #[inline(never)]
        fn lookup(
            &'static self,
            slot: &'static OnceLock<CachedSeries<H>>,
            hash: u64,
            name: &str,
            labels: &[(&str, &str)],
        ) -> H {
            let family = match self.family.get() {
                Some(family) => family,
                None => match self.register(name, labels) {
                    Some(family) => family,
                    None => return H::detached(),
                },
            };
            match global().macro_find::<H>(family, labels) {
                Some(handle) => {
                    if slot.get().is_none() {
                        let _ = slot.set(CachedSeries {
                            hash,
                            labels: Labels::from_pairs(labels),
                            handle: handle.clone(),
                        });
                    }
                    handle
                }
                None => global().macro_in::<H>(family, labels),
            }
        }

        #[cold]
        #[inline(never)]
        fn register(
            &'static self,
            name: &str,
            labels: &[(&str, &str)],
        ) -> Option<&'static Arc<Family>> {
            match global().macro_family(name, H::KIND, labels) {
                Ok(family) => Some(self.family.get_or_init(|| family)),
                Err(err) => {
                    global().report_error(err);
                    None
                }
            }
        }
    }

    /// Any fixed seed: the site cache only needs to spread label sets over
    /// its slots; collisions cost a map lookup, nothing more.
    const SITE_SEED: u64 = 0x243F_6A88_85A3_08D3;
}
