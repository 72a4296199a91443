//! The runner: one worker thread per plug-in, deadlines, isolation of
//! panics, statistics, and the [`Plugin`] handle that controls it all at
//! run time (see the [module notes](super) for how a collection runs).

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{
    Collector, Description, PluginReport, PluginStats, PluginStatus, Sample, Samples,
    MAX_PLUGIN_SAMPLES, MIN_PERIOD,
};
use crate::clock::{instant_after, Clock};
use crate::error::Error;
use crate::metrics::histogram::Histogram;

/// The control handle of a registered plug-in: enable or disable it, change
/// its interval or deadline, at run time. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use vitals::{Collector, Error, MetricsCollector, Samples};
/// use vitals::plugin::PluginStatus;
///
/// struct Tick;
/// impl Collector for Tick {
///     fn name(&self) -> &str { "tick" }
///     fn collect(&self, out: &mut Samples) -> Result<(), Error> {
///         out.gauge("tick", &[], 1.0)
///     }
/// }
///
/// let metrics = MetricsCollector::new();
/// let plugin = metrics.register(Tick).unwrap();
/// plugin.set_deadline(Duration::from_millis(200)).unwrap();
/// plugin.set_enabled(false);
/// assert_eq!(metrics.snapshot().plugin("tick").unwrap().status, PluginStatus::Disabled);
/// ```
#[derive(Clone)]
pub struct Plugin {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.entry.name)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plug-in's name.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().name(), "p");
    /// ```
    pub fn name(&self) -> &str {
        &self.entry.name
    }

    /// Turns collection on or off. A disabled plug-in is not collected, and
    /// snapshots report it `disabled` with no series; its statistics are
    /// kept.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, out: &mut Samples) -> Result<(), Error> { out.gauge("v", &[], 1.0) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_enabled(false);
    /// assert_eq!(metrics.snapshot().gauge("v", &[]), None);
    /// p.set_enabled(true);
    /// assert_eq!(metrics.snapshot().gauge("v", &[]), Some(1.0));
    /// ```
    pub fn set_enabled(&self, enabled: bool) {
        let mut st = self.entry.state.lock();
        st.enabled = enabled;
        if !enabled {
            st.samples = Arc::default();
            // A request left waiting would count its age against the
            // deadline once enabled again.
            st.requested = None;
        }
        drop(st);
        self.entry.wake.notify_all();
    }

    /// True unless disabled.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert!(metrics.register(P).unwrap().is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.entry.state.lock().enabled
    }

    /// Samples in the background every `interval` (at least 1 ms), or with
    /// `None`, at each snapshot. Takes effect at once: the worker is woken
    /// and plans its next collection from its last one.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_interval(Some(Duration::from_secs(5))).unwrap();
    /// assert!(p.set_interval(Some(Duration::ZERO)).is_err());
    /// ```
    pub fn set_interval(&self, interval: Option<Duration>) -> Result<(), Error> {
        if let Some(i) = interval {
            check_period("interval", i)?;
        }
        self.entry.state.lock().interval = interval;
        self.entry.wake.notify_all();
        Ok(())
    }

    /// The background interval, or `None` when collected on demand.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().interval(), None);
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        self.entry.state.lock().interval
    }

    /// How long a snapshot waits for this plug-in (at least 1 ms; default
    /// [`DEFAULT_PLUGIN_DEADLINE`](super::DEFAULT_PLUGIN_DEADLINE) or the collector's setting). A deadline
    /// too long for the platform's clock to add (such as `Duration::MAX`)
    /// means the snapshot waits until the collection finishes.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// use std::time::Duration;
    /// let metrics = vitals::MetricsCollector::new();
    /// let p = metrics.register(P).unwrap();
    /// p.set_deadline(Duration::from_millis(50)).unwrap();
    /// assert_eq!(p.deadline(), Duration::from_millis(50));
    /// ```
    pub fn set_deadline(&self, deadline: Duration) -> Result<(), Error> {
        check_period("deadline", deadline)?;
        self.entry.state.lock().deadline = deadline;
        Ok(())
    }

    /// The deadline.
    ///
    /// ```
    /// # use vitals::{Collector, Error, Samples};
    /// # struct P;
    /// # impl Collector for P {
    /// #     fn name(&self) -> &str { "p" }
    /// #     fn collect(&self, _: &mut Samples) -> Result<(), Error> { Ok(()) }
    /// # }
    /// let metrics = vitals::MetricsCollector::new();
    /// assert_eq!(metrics.register(P).unwrap().deadline(), vitals::plugin::DEFAULT_PLUGIN_DEADLINE);
    /// ```
    pub fn deadline(&self) -> Duration {
        self.entry.state.lock().deadline
    }
}

pub(crate) fn check_period(what: &str, period: Duration) -> Result<(), Error> {
    if period < MIN_PERIOD {
        return Err(Error::InvalidConfig(format!(
            "a plug-in {what} must be at least 1 ms, not {period:?}"
        )));
    }
    Ok(())
}

/// One registered plug-in, shared by the registry and its worker thread.
struct Entry {
    name: Arc<str>,
    collector: Box<dyn Collector>,
    clock: Arc<dyn Clock>,
    duration: Histogram,
    state: Mutex<State>,
    /// Wakes the worker: a request, a new interval, enabling, shutdown.
    wake: Condvar,
    /// Wakes waiting snapshots when a collection finishes.
    done: Condvar,
}

struct State {
    enabled: bool,
    interval: Option<Duration>,
    deadline: Duration,
    shutdown: bool,
    /// When a snapshot asked for a collection that has not started yet.
    requested: Option<Instant>,
    /// Since when the collection in flight counts against the deadline:
    /// the snapshot's request, or the start of a background collection.
    /// `None` when idle.
    running_since: Option<Instant>,
    /// The in-flight collection has already been counted as a timeout.
    timeout_counted: bool,
    last_start: Option<Instant>,
    /// Finished collections; waiters watch it change.
    finished: u64,
    status: PluginStatus,
    /// The latest good collection's samples.
    samples: Arc<Vec<Sample>>,
    /// The latest description of each name the plug-in described.
    described: Arc<HashMap<Arc<str>, Description>>,
    last_good_at: Option<Duration>,
    errors: u64,
    timeouts: u64,
    last_error: Option<String>,
    last_duration: Option<Duration>,
    dropped_samples: u64,
}

enum Outcome {
    Ok(Samples),
    /// The error, and the samples refused before it.
    Failed(String, u64),
    Unavailable,
}

impl Entry {
    /// The worker: waits for a request or its interval, collects, records.
    fn work(&self) {
        loop {
            let mut st = self.state.lock();
            loop {
                if st.shutdown {
                    return;
                }
                if st.enabled && st.requested.is_some() {
                    break;
                }
                match (st.enabled, st.interval, st.last_start) {
                    (true, Some(_), None) => break,
                    (true, Some(every), Some(last)) => match instant_after(last, every) {
                        Some(due) if Instant::now() >= due => break,
                        Some(due) => {
                            self.wake.wait_until(&mut st, due);
                        }
                        None => self.wake.wait(&mut st),
                    },
                    _ => self.wake.wait(&mut st),
                }
            }
            let started = Instant::now();
            // The deadline runs from the request: that is what the waiting
            // snapshot sees, however late this thread got to run.
            st.running_since = Some(st.requested.take().unwrap_or(started));
            st.timeout_counted = false;
            st.last_start = Some(started);
            drop(st);

            let outcome = self.run_once();
            let elapsed = started.elapsed();
            self.duration.record_duration(elapsed);

            let mut st = self.state.lock();
            let since = st.running_since.take().unwrap_or(started);
            st.finished += 1;
            st.last_duration = Some(elapsed);
            if !st.timeout_counted && since.elapsed() >= st.deadline {
                st.timeouts += 1;
            }
            match outcome {
                Outcome::Ok(samples) => {
                    st.status = PluginStatus::Ok;
                    st.dropped_samples = st.dropped_samples.saturating_add(samples.dropped);
                    if st.enabled {
                        if !samples.described.is_empty() {
                            let described = Arc::make_mut(&mut st.described);
                            for d in samples.described {
                                described.insert(Arc::clone(&d.name), d);
                            }
                            // Bounded: past the limit, keep only the names
                            // reported now.
                            if described.len() > MAX_PLUGIN_SAMPLES {
                                let now: HashSet<&str> =
                                    samples.items.iter().map(|s| &*s.name).collect();
                                described.retain(|name, _| now.contains(&**name));
                            }
                        }
                        st.samples = Arc::new(samples.items);
                    }
                    st.last_good_at = Some(self.clock.monotonic());
                }
                Outcome::Failed(message, dropped) => {
                    st.status = PluginStatus::Error;
                    st.dropped_samples = st.dropped_samples.saturating_add(dropped);
                    st.errors += 1;
                    st.last_error = Some(message);
                }
                Outcome::Unavailable => {
                    st.status = PluginStatus::Unavailable;
                    st.samples = Arc::default();
                }
            }
            drop(st);
            self.done.notify_all();
        }
    }

    /// One call of the plug-in, with its panics caught.
    fn run_once(&self) -> Outcome {
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            if !self.collector.is_available() {
                return Outcome::Unavailable;
            }
            let mut out = Samples::new();
            match self.collector.collect(&mut out) {
                Ok(()) => Outcome::Ok(out),
                Err(err) => Outcome::Failed(err.to_string(), out.dropped),
            }
        }));
        attempt.unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a non-text payload".to_owned());
            Outcome::Failed(format!("panicked: {message}"), 0)
        })
    }

    fn report(&self, now: Duration) -> Collected {
        let mut st = self.state.lock();
        let overdue = st
            .running_since
            .or(st.requested)
            .is_some_and(|since| since.elapsed() >= st.deadline);
        if overdue && !st.timeout_counted {
            st.timeout_counted = true;
            st.timeouts += 1;
        }
        let status = if !st.enabled {
            PluginStatus::Disabled
        } else if overdue {
            PluginStatus::TimedOut
        } else {
            st.status
        };
        let samples = if st.enabled {
            Arc::clone(&st.samples)
        } else {
            Arc::default()
        };
        let report = PluginReport {
            name: Arc::clone(&self.name),
            status,
            stats: PluginStats {
                collections: st.finished,
                errors: st.errors,
                timeouts: st.timeouts,
                last_error: st.last_error.clone(),
                last_duration_seconds: st.last_duration.map(|d| d.as_secs_f64()),
                last_success_age_seconds: st
                    .last_good_at
                    .map(|at| now.saturating_sub(at).as_secs_f64()),
                interval_seconds: st.interval.map(|d| d.as_secs_f64()),
                deadline_seconds: st.deadline.as_secs_f64(),
                dropped_samples: st.dropped_samples,
                // Set by the registry, which knows which series it kept.
                series: 0,
            },
        };
        Collected {
            report,
            samples,
            described: Arc::clone(&st.described),
        }
    }
}

/// One plug-in's part of a snapshot, before the registry turns its samples
/// into series.
pub(crate) struct Collected {
    pub(crate) report: PluginReport,
    pub(crate) samples: Arc<Vec<Sample>>,
    pub(crate) described: Arc<HashMap<Arc<str>, Description>>,
}

/// The plug-ins of one registry, and the runner that collects them.
#[derive(Default)]
pub(crate) struct PluginSet {
    entries: RwLock<Vec<Arc<Entry>>>,
}

impl PluginSet {
    /// Registers `collector` and starts its worker thread.
    pub(crate) fn register(
        &self,
        collector: Box<dyn Collector>,
        clock: Arc<dyn Clock>,
        duration: Histogram,
        deadline: Duration,
    ) -> Result<Plugin, Error> {
        let name: Arc<str> = Arc::from(collector.name());
        if name.is_empty() {
            return Err(Error::InvalidConfig(
                "a plug-in collector needs a non-empty name".into(),
            ));
        }
        let interval = collector.default_interval();
        if let Some(i) = interval {
            check_period("interval", i)?;
        }
        let mut entries = self.entries.write();
        if entries.iter().any(|e| e.name == name) {
            return Err(Error::DuplicateCollector(name.to_string()));
        }
        let entry = Arc::new(Entry {
            name: Arc::clone(&name),
            collector,
            clock,
            duration,
            state: Mutex::new(State {
                enabled: true,
                interval,
                deadline,
                shutdown: false,
                requested: None,
                running_since: None,
                timeout_counted: false,
                last_start: None,
                finished: 0,
                status: PluginStatus::Pending,
                samples: Arc::default(),
                described: Arc::default(),
                last_good_at: None,
                errors: 0,
                timeouts: 0,
                last_error: None,
                last_duration: None,
                dropped_samples: 0,
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&entry);
        std::thread::Builder::new()
            // A thread name cannot hold a NUL; the plug-in's own name can.
            .name(format!("vitals-plugin-{}", name.replace('\0', "\\0")))
            .spawn(move || worker.work())
            .map_err(|e| {
                Error::Collection(format!("cannot start the worker thread of {name:?}: {e}"))
            })?;
        entries.push(Arc::clone(&entry));
        Ok(Plugin { entry })
    }

    /// The control handle of the plug-in called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Plugin> {
        self.entries
            .read()
            .iter()
            .find(|e| &*e.name == name)
            .map(|entry| Plugin {
                entry: Arc::clone(entry),
            })
    }

    /// Collects every due plug-in, each within its deadline, and reports
    /// all of them. `now` reads the registry clock for sample ages.
    pub(crate) fn collect(&self, now: impl Fn() -> Duration) -> Vec<Collected> {
        let entries: Vec<Arc<Entry>> = self.entries.read().clone();
        if entries.is_empty() {
            return Vec::new();
        }
        // Ask everyone first, so that slow plug-ins run side by side and the
        // snapshot waits for the slowest, not for the sum.
        let asked = Instant::now();
        let mut waits = Vec::with_capacity(entries.len());
        for entry in &entries {
            let mut st = entry.state.lock();
            if !st.enabled {
                continue;
            }
            let never_ran = st.finished == 0;
            let on_demand = st.interval.is_none() || never_ran;
            if let Some(since) = st.running_since.or(st.requested) {
                // At most one collection asked for or in flight: join it
                // (until its own deadline) rather than start another.
                if on_demand {
                    waits.push((
                        Arc::clone(entry),
                        st.finished,
                        instant_after(since, st.deadline),
                    ));
                }
            } else if on_demand {
                st.requested = Some(asked);
                waits.push((
                    Arc::clone(entry),
                    st.finished,
                    instant_after(asked, st.deadline),
                ));
                drop(st);
                entry.wake.notify_all();
            }
        }
        for (entry, finished, until) in waits {
            let mut st = entry.state.lock();
            while st.finished == finished && !st.shutdown && st.enabled {
                match until {
                    Some(until) => {
                        if entry.done.wait_until(&mut st, until).timed_out() {
                            break;
                        }
                    }
                    // A deadline beyond what an `Instant` holds: wait for the
                    // collection itself.
                    None => entry.done.wait(&mut st),
                }
            }
        }
        let now = now();
        entries.iter().map(|e| e.report(now)).collect()
    }
}

impl Drop for PluginSet {
    fn drop(&mut self) {
        // Workers hold their entry, not the registry: tell them to stop. A
        // worker stuck in a collection stops when that collection returns.
        for entry in self.entries.get_mut().iter() {
            entry.state.lock().shutdown = true;
            entry.wake.notify_all();
            entry.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::plugin::{DEFAULT_PLUGIN_DEADLINE, MAX_PLUGIN_SAMPLES};
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Counting {
        calls: Arc<AtomicU32>,
        sleep: Duration,
    }

    impl Collector for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn collect(&self, out: &mut Samples) -> Result<(), Error> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(self.sleep);
            out.counter("calls_total", &[], f64::from(n))
        }
    }

    fn set() -> (PluginSet, Arc<AtomicU32>, Plugin) {
        let set = PluginSet::default();
        let calls = Arc::new(AtomicU32::new(0));
        let plugin = set
            .register(
                Box::new(Counting {
                    calls: Arc::clone(&calls),
                    sleep: Duration::ZERO,
                }),
                Arc::new(ManualClock::new()),
                Histogram::detached(),
                DEFAULT_PLUGIN_DEADLINE,
            )
            .unwrap();
        (set, calls, plugin)
    }

    #[test]
    fn each_collection_calls_an_on_demand_plugin_once() {
        let (set, calls, _) = set();
        for i in 1..=3u32 {
            let reports = set.collect(|| Duration::ZERO);
            assert_eq!(reports[0].report.status, PluginStatus::Ok);
            let calls_total = &reports[0].samples[0];
            assert_eq!(
                (&*calls_total.name, calls_total.value),
                ("calls_total", f64::from(i))
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn duplicate_and_empty_names_are_refused() {
        let (set, calls, _) = set();
        let again = set.register(
            Box::new(Counting {
                calls,
                sleep: Duration::ZERO,
            }),
            Arc::new(ManualClock::new()),
            Histogram::detached(),
            DEFAULT_PLUGIN_DEADLINE,
        );
        assert!(matches!(again, Err(Error::DuplicateCollector(n)) if n == "counting"));
    }

    #[test]
    fn samples_refuse_bad_names_and_too_many_values() {
        let mut out = Samples::new();
        assert!(out.gauge("ok_name", &[("1bad", "v")], 1.0).is_err());
        for i in 0..MAX_PLUGIN_SAMPLES {
            out.counter("n_total", &[], i as f64).unwrap();
        }
        assert!(matches!(
            out.gauge("one_more", &[], 1.0),
            Err(Error::CardinalityLimit { .. })
        ));
        assert_eq!(out.len(), MAX_PLUGIN_SAMPLES);
    }

    #[test]
    fn dropping_the_set_stops_idle_workers() {
        struct Flags(Arc<AtomicU32>);
        impl Collector for Flags {
            fn name(&self) -> &str {
                "flags"
            }
            fn collect(&self, _: &mut Samples) -> Result<(), Error> {
                Ok(())
            }
        }
        impl Drop for Flags {
            fn drop(&mut self) {
                self.0.store(1, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicU32::new(0));
        let set = PluginSet::default();
        let plugin = set
            .register(
                Box::new(Flags(Arc::clone(&dropped))),
                Arc::new(ManualClock::new()),
                Histogram::detached(),
                DEFAULT_PLUGIN_DEADLINE,
            )
            .unwrap();
        set.collect(|| Duration::ZERO);
        drop(plugin);
        drop(set);
        // The plug-in is freed only once its worker thread has let go of it.
        let start = std::time::Instant::now();
        while dropped.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }
}
