//! Property tests of plug-ins written by users: samples of any name, label
//! set, kind and value through `Samples::counter`/`gauge`, plug-ins of any
//! name and default interval, plug-ins that fail or panic with any message.
//! Every output must still parse: both text expositions strictly and
//! faithfully, and the JSON line.
//!
//! Snapshots wait up to 60 s for a plug-in (`plugin_deadline`), so that a
//! loaded machine cannot turn a slow collection into a different status:
//! no assertion here depends on timing.

#[path = "common/exposition.rs"]
mod exposition;
#[path = "common/gen.rs"]
mod gen;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use vitals::export::{render_openmetrics, render_prometheus, JsonLinesExporter};
use vitals::plugin::{PluginStatus, SampleKind};
use vitals::{Collector, Error, MetricsCollector, Samples, Snapshot};

use exposition::{compare, expected, parse, Format};

const PATIENT: Duration = Duration::from_secs(60);

fn patient_collector() -> MetricsCollector {
    MetricsCollector::builder().plugin_deadline(PATIENT).build()
}

fn check_outputs(snap: &Snapshot) -> Result<(), TestCaseError> {
    for (format, text) in [
        (Format::Prometheus, render_prometheus(snap)),
        (Format::OpenMetrics, render_openmetrics(snap)),
    ] {
        let parsed = parse(&text, format)
            .map_err(|e| TestCaseError::fail(format!("{format:?} does not parse: {e}\n{text}")))?;
        compare(&parsed, &expected(snap, format))
            .map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\n{text}")))?;
    }
    let mut line = Vec::new();
    JsonLinesExporter::encode_line(snap, &mut line)
        .map_err(|e| TestCaseError::fail(format!("encode_line: {e}")))?;
    let back: Snapshot = serde_json::from_slice(&line).map_err(|e| {
        TestCaseError::fail(format!(
            "the JSON line does not decode: {e}\n{}",
            String::from_utf8_lossy(&line)
        ))
    })?;
    prop_assert_eq!(back.plugins.len(), snap.plugins.len());
    for (a, b) in back.plugins.iter().zip(&snap.plugins) {
        prop_assert_eq!(&a.name, &b.name);
        prop_assert_eq!(a.status, b.status);
        prop_assert_eq!(&a.stats.last_error, &b.stats.last_error);
        prop_assert_eq!(a.stats.series, b.stats.series);
    }
    // Plug-in values are series: they come back like the program's.
    prop_assert_eq!(&back.counters, &snap.counters);
    prop_assert_eq!(back.gauges.len(), snap.gauges.len());
    for (x, y) in back.gauges.iter().zip(&snap.gauges) {
        prop_assert_eq!((&x.name, &x.labels), (&y.name, &y.labels));
        let same = x.value.to_bits() == y.value.to_bits() || (x.value.is_nan() && y.value.is_nan());
        prop_assert!(same, "gauge value {} read back as {}", y.value, x.value);
    }
    Ok(())
}

type RawSample = (SampleKind, String, Vec<(String, String)>, f64);

/// A plug-in that adds the given samples, keeping what each `Samples` call
/// returned.
struct Scripted {
    name: String,
    samples: Vec<RawSample>,
    results: Arc<Mutex<Vec<Result<(), String>>>>,
}

impl Collector for Scripted {
    fn name(&self) -> &str {
        &self.name
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        let mut results = self.results.lock().unwrap();
        results.clear();
        for (kind, name, labels, value) in &self.samples {
            let l = gen::as_pairs(labels);
            let r = match kind {
                SampleKind::Counter => out.counter(name, &l, *value),
                SampleKind::Gauge => out.gauge(name, &l, *value),
            };
            results.push(r.map_err(|e| e.kind().to_owned()));
        }
        Ok(())
    }
}

/// The documented rules of `Samples`: Prometheus names, valid unique label
/// keys not starting with `__`.
fn sample_is_valid(name: &str, labels: &[(String, String)]) -> bool {
    gen::is_valid_metric_name(name)
        && labels.iter().enumerate().all(|(i, (k, _))| {
            exposition::is_label_name(k)
                && !k.starts_with("__")
                && !labels[..i].iter().any(|(o, _)| o == k)
        })
}

fn raw_samples(
    value: BoxedStrategy<f64>,
    kinds: Vec<SampleKind>,
) -> impl Strategy<Value = Vec<RawSample>> {
    prop::collection::vec(
        (
            prop::sample::select(kinds),
            gen::metric_name(),
            gen::labels(),
            value,
        ),
        0..12,
    )
}

/// Registers one scripted plug-in per sample list, beside a few core
/// series whose names may clash with the samples', and checks a
/// snapshot.
fn run_scripted(
    plugins: Vec<Vec<RawSample>>,
    core: &[(String, f64)],
) -> Result<Snapshot, TestCaseError> {
    let m = patient_collector();
    for (name, v) in core {
        m.gauge(name, &[]).set(*v);
    }
    let mut handles = Vec::new();
    for (i, samples) in plugins.into_iter().enumerate() {
        let results = Arc::new(Mutex::new(Vec::new()));
        let name = format!("plugin{i}");
        m.register(Scripted {
            name: name.clone(),
            samples: samples.clone(),
            results: Arc::clone(&results),
        })
        .map_err(|e| TestCaseError::fail(format!("register {name}: {e}")))?;
        handles.push((name, samples, results));
    }
    let snap = m.snapshot();
    // The model of who holds a name: the program's gauges first, then each
    // plug-in in registration order; a refused sample is a clash.
    let mut holders: HashMap<String, (String, SampleKind)> = HashMap::new();
    let mut series: HashSet<(String, vitals::Labels)> = HashSet::new();
    let mut clashes: HashSet<(String, String)> = HashSet::new();
    let mut core_names: HashSet<&str> = core.iter().map(|(n, _)| n.as_str()).collect();
    // The collector's own families exist from the start.
    core_names.extend([
        "vitals_errors_total",
        "vitals_cardinality_overflow_total",
        "vitals_collection_duration_seconds",
    ]);
    for (name, samples, results) in handles {
        let report = snap.plugin(&name).unwrap();
        prop_assert_eq!(report.status, PluginStatus::Ok, "{:?}", report);
        let results = results.lock().unwrap().clone();
        let mut kept = 0u64;
        for ((kind, sname, labels, value), r) in samples.iter().zip(&results) {
            let valid = sample_is_valid(sname, labels);
            prop_assert_eq!(
                r.is_ok(),
                valid,
                "Samples said {:?} to {:?} {:?}",
                r,
                sname,
                labels
            );
            if r.is_err() {
                continue;
            }
            let l = vitals::Labels::from_pairs(&gen::as_pairs(labels));
            let held_by_other = match holders.get(sname) {
                Some((_, k)) => k != kind,
                None => false,
            };
            if core_names.contains(sname.as_str())
                || held_by_other
                || series.contains(&(sname.clone(), l.clone()))
            {
                clashes.insert((name.clone(), sname.clone()));
                continue;
            }
            holders
                .entry(sname.clone())
                .or_insert((name.clone(), *kind));
            series.insert((sname.clone(), l.clone()));
            kept += 1;
            let pairs = gen::as_pairs(labels);
            match kind {
                SampleKind::Counter => {
                    let got = snap.counter_sample(sname, &pairs).map(|c| c.value);
                    prop_assert_eq!(got, Some(vitals::snapshot::CounterValue::Float(*value)));
                }
                SampleKind::Gauge => {
                    let got = snap.gauge(sname, &pairs);
                    let same = got.is_some_and(|g| {
                        g.to_bits() == value.to_bits() || (g.is_nan() && value.is_nan())
                    });
                    prop_assert!(
                        same,
                        "gauge {} {:?}: {:?}, sent {}",
                        sname,
                        labels,
                        got,
                        value
                    );
                }
            }
        }
        prop_assert_eq!(report.stats.series, kept, "{}", name);
    }
    let counted = snap
        .counter_sample("vitals_errors_total", &[("kind", "name_clash")])
        .and_then(|c| c.value.as_u64())
        .unwrap_or(0);
    prop_assert_eq!(counted, clashes.len() as u64, "clashes {:?}", clashes);
    // Every plug-in series of the snapshot is one the model kept.
    let plugin_series = snap
        .counters
        .iter()
        .map(|c| (&c.name, &c.labels))
        .chain(snap.gauges.iter().map(|g| (&g.name, &g.labels)))
        .filter(|(n, _)| !core_names.contains(&***n))
        .count();
    prop_assert_eq!(plugin_series, series.len());
    check_outputs(&snap)?;
    Ok(snap)
}

proptest! {
    #![proptest_config(gen::config(64))]

    /// Gauge samples of any value, and counter samples of any finite value
    /// at least 0, from several plug-ins beside clashing core names:
    /// `Samples` accepts exactly the valid names and labels, the snapshot
    /// holds exactly what was accepted, and every output parses and says
    /// the same.
    #[test]
    fn plugin_samples_reach_every_output(
        plugins in prop::collection::vec(
            prop_oneof![
                raw_samples(gen::any_f64().boxed(), vec![SampleKind::Gauge]),
                raw_samples(prop_oneof![0.0..1e15f64, Just(0.0), Just(f64::MAX), (0u64..1000).prop_map(|v| v as f64)].boxed(), vec![SampleKind::Counter]),
            ],
            1..4,
        ),
        core in prop::collection::vec((gen::valid_metric_name(), gen::any_f64()), 0..4),
    ) {
        run_scripted(plugins, &core)?;
    }

    /// Counter samples of any value: a counter `Samples` accepts is a
    /// finite number at least 0 (a total cannot be negative or NaN), and
    /// the expositions parse (counters finite and not negative).
    ///
    /// Failed before its fix: defect 5 (plug-in counters accept negative and NaN
    /// values, and the expositions then carry them).
    #[test]
    fn plugin_counters_are_finite_and_not_negative(
        samples in prop::collection::vec((gen::valid_metric_name(), gen::valid_labels(), gen::any_f64()), 1..8),
    ) {
        let results = Arc::new(Mutex::new(Vec::new()));
        let raw: Vec<RawSample> = samples
            .into_iter()
            .map(|(n, l, v)| (SampleKind::Counter, n, l, v))
            .collect();
        let m = patient_collector();
        m.register(Scripted { name: "p".into(), samples: raw.clone(), results: Arc::clone(&results) }).unwrap();
        let snap = m.snapshot();
        for c in snap.counters.iter().filter(|c| !c.name.starts_with("vitals_")) {
            let v = c.value.as_f64();
            prop_assert!(v.is_finite() && v >= 0.0, "counter sample {:?} accepted", c);
        }
        check_outputs(&snap)?;
    }
}

/// A plug-in of any name and default interval that fails, panics, is
/// unavailable or reports one gauge.
#[derive(Debug, Clone)]
enum Behaviour {
    Report(f64),
    Fail(String),
    Panic(String),
    Unavailable,
}

struct Named {
    name: String,
    interval: Option<Duration>,
    behaviour: Behaviour,
}

impl Collector for Named {
    fn name(&self) -> &str {
        &self.name
    }
    fn collect(&self, out: &mut Samples) -> Result<(), Error> {
        match &self.behaviour {
            Behaviour::Report(v) => out.gauge("named_value", &[("plugin", &self.name)], *v),
            Behaviour::Fail(message) => Err(Error::Collection(message.clone())),
            Behaviour::Panic(message) => std::panic::panic_any(message.clone()),
            Behaviour::Unavailable => Ok(()),
        }
    }
    fn is_available(&self) -> bool {
        !matches!(self.behaviour, Behaviour::Unavailable)
    }
    fn default_interval(&self) -> Option<Duration> {
        self.interval
    }
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        gen::any_f64().prop_map(Behaviour::Report),
        gen::any_text().prop_map(Behaviour::Fail),
        gen::any_text().prop_map(Behaviour::Panic),
        Just(Behaviour::Unavailable),
    ]
}

proptest! {
    #![proptest_config(gen::config(48))]

    /// Plug-ins named with any text (NUL, ESC, newlines, 64 KiB), with any
    /// default interval, failing or panicking with any message: `register`
    /// refuses only an empty name, a repeated name or an interval under
    /// 1 ms, never panics, and every output then parses, with the plug-in
    /// reported under its name and status.
    ///
    /// Failed before its fix: defect 3 (a name with NUL panics in `register`: the
    /// worker thread's name cannot hold it) and defect 1 (a default
    /// interval of `Duration::MAX` overflows in the worker).
    #[test]
    fn plugins_of_any_name_and_behaviour_are_reported(
        plugins in prop::collection::vec(
            (
                prop_oneof![3 => gen::any_text(), 1 => Just(String::new()), 1 => Just("dup".to_owned())],
                prop_oneof![3 => Just(None), 1 => gen::edge_duration().prop_map(Some)],
                behaviour(),
            ),
            1..4,
        ),
    ) {
        // Panics inside `collect` are expected here; keep them quiet.
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(|| {
            let default = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let from_plugin = std::thread::current().name().is_some_and(|n| n.starts_with("vitals-plugin"));
                if !from_plugin {
                    default(info);
                }
            }));
        });
        let m = patient_collector();
        let mut registered: Vec<(String, Behaviour)> = Vec::new();
        for (name, interval, behaviour) in plugins {
            let duplicate = registered.iter().any(|(n, _)| *n == name);
            let r = m.register(Named { name: name.clone(), interval, behaviour: behaviour.clone() });
            match &r {
                Err(Error::DuplicateCollector(_)) => prop_assert!(duplicate),
                Err(Error::InvalidConfig(_)) => prop_assert!(name.is_empty() || interval.is_some_and(|i| i < Duration::from_millis(1)), "{:?}", r),
                Err(e) => prop_assert!(false, "register({:?}) failed: {}", name, e),
                Ok(p) => {
                    prop_assert!(!duplicate && !name.is_empty());
                    prop_assert_eq!(p.name(), name.as_str());
                    registered.push((name, behaviour));
                }
            }
        }
        let snap = m.snapshot();
        prop_assert_eq!(snap.plugins.len(), registered.len());
        for (name, behaviour) in &registered {
            let Some(report) = snap.plugin(name) else {
                return Err(TestCaseError::fail(format!("no report for {name:?}")));
            };
            let want = match behaviour {
                Behaviour::Report(_) => PluginStatus::Ok,
                Behaviour::Fail(_) | Behaviour::Panic(_) => PluginStatus::Error,
                Behaviour::Unavailable => PluginStatus::Unavailable,
            };
            prop_assert_eq!(report.status, want, "{:?}", report);
            if let Behaviour::Fail(message) | Behaviour::Panic(message) = behaviour {
                let last = report.stats.last_error.as_deref().unwrap_or("");
                prop_assert!(last.contains(message.as_str()), "last_error {:?} lacks {:?}", last, message);
            }
            let timed = snap.histogram("vitals_collection_duration_seconds", &[("collector", name)]);
            if want != PluginStatus::Unavailable {
                prop_assert!(timed.is_some_and(|h| h.lifetime.count >= 1), "collection of {:?} not timed", name);
            }
        }
        check_outputs(&snap)?;
    }
}
