//! Macro forms: literal, runtime labels, runtime names, explicit collector,
//! describe and timed; and that they all land in the same series.

use vitals::{counter, describe_counter, describe_histogram, gauge, histogram, timed};
use vitals::{MetricKind, MetricsCollector};

#[test]
fn every_form_lands_in_the_expected_series() {
    counter!("mac_form_total").inc();
    counter!("mac_form_total",).inc(); // trailing comma
    counter!("mac_form_total", "k" => "a").increment(2);
    let k = String::from("b");
    counter!("mac_form_total", "k" => k).increment(3);
    let name = String::from("mac_form_total");
    counter!(name, "k" => "b").increment(4);
    counter!(&name, "k" => "b", ).increment(5);
    let snap = vitals::global().snapshot();
    assert_eq!(snap.counter("mac_form_total", &[]), Some(2.0));
    assert_eq!(snap.counter("mac_form_total", &[("k", "a")]), Some(2.0));
    assert_eq!(snap.counter("mac_form_total", &[("k", "b")]), Some(12.0));
}

#[test]
fn label_order_does_not_matter() {
    counter!("mac_order_total", "a" => "1", "b" => "2").inc();
    counter!("mac_order_total", "b" => "2", "a" => "1").inc();
    let (a, b) = ("1".to_string(), "2".to_string());
    counter!("mac_order_total", "b" => b, "a" => a).inc();
    let snap = vitals::global().snapshot();
    assert_eq!(
        snap.counter("mac_order_total", &[("a", "1"), ("b", "2")]),
        Some(3.0)
    );
    assert_eq!(
        snap.counters
            .iter()
            .filter(|c| &*c.name == "mac_order_total")
            .count(),
        1
    );
}

#[test]
fn a_literal_call_site_hands_out_its_cached_handle() {
    fn site() -> vitals::Counter {
        counter!("mac_cached_total", "k" => "v")
    }
    let first = site();
    // The same call site, again: the same storage, and the same storage as
    // a lookup through the collector.
    assert!(first.same_series(&site()));
    assert!(first.same_series(&vitals::global().counter("mac_cached_total", &[("k", "v")])));
    for _ in 0..1000 {
        site().inc();
    }
    assert_eq!(first.value(), 1000);
}

#[test]
fn gauges_and_histograms_have_the_same_forms() {
    gauge!("mac_g").set(1.5);
    gauge!("mac_g", "k" => "v").increment(2.0);
    let v = "w".to_string();
    gauge!("mac_g", "k" => v).decrement(1.0);
    histogram!("mac_h").record(1.0);
    histogram!("mac_h", "k" => "v").record(2.0);
    let metrics = MetricsCollector::new();
    gauge!(collector: metrics, "g", "k" => "v").set(3.0);
    histogram!(collector: &metrics, "h").record(4.0);
    let snap = vitals::global().snapshot();
    assert_eq!(snap.gauge("mac_g", &[]), Some(1.5));
    assert_eq!(snap.gauge("mac_g", &[("k", "v")]), Some(2.0));
    assert_eq!(snap.gauge("mac_g", &[("k", "w")]), Some(-1.0));
    assert_eq!(
        snap.histogram("mac_h", &[("k", "v")]).unwrap().window.sum,
        2.0
    );
    let local = metrics.snapshot();
    assert_eq!(local.gauge("g", &[("k", "v")]), Some(3.0));
    assert_eq!(local.histogram("h", &[]).unwrap().window.sum, 4.0);
    assert!(
        local.counters.is_empty(),
        "nothing went to the global collector by mistake"
    );
}

#[test]
fn describe_sets_help_and_unit() {
    let m = MetricsCollector::new();
    describe_counter!(collector: m, "jobs_total", "Jobs run");
    describe_histogram!(collector: m, "job_seconds", vitals::Unit::Seconds, "Job time");
    describe_counter!("mac_described_total", "Global help");
    let snap = m.snapshot();
    let info = |name: &str| {
        snap.metadata
            .iter()
            .find(|i| &*i.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(info("jobs_total").help.as_deref(), Some("Jobs run"));
    assert_eq!(info("jobs_total").kind, MetricKind::Counter);
    assert_eq!(info("job_seconds").unit.as_deref(), Some("seconds"));
    assert_eq!(info("job_seconds").kind, MetricKind::Histogram);
    let global = vitals::global().snapshot();
    assert!(global
        .metadata
        .iter()
        .any(|i| &*i.name == "mac_described_total"));
}

#[test]
fn timed_records_the_block_and_counts_errors() {
    let m = MetricsCollector::new();
    let value = timed!(collector: m, "work_seconds"; { 6 * 7 });
    assert_eq!(value, 42);
    for input in ["1", "x", "2", "y", "z"] {
        let _ = timed!(collector: m, "parse_seconds", "src" => "cli"; errors = "parse_errors_total"; {
            input.parse::<u32>()
        });
    }
    let parsed: Result<u32, std::num::ParseIntError> =
        timed!("mac_parse_seconds"; errors = "mac_parse_errors_total"; { "7".parse() });
    assert_eq!(parsed, Ok(7));
    let snap = m.snapshot();
    assert_eq!(snap.histogram("work_seconds", &[]).unwrap().window.count, 1);
    assert_eq!(
        snap.histogram("parse_seconds", &[("src", "cli")])
            .unwrap()
            .window
            .count,
        5
    );
    assert_eq!(
        snap.counter("parse_errors_total", &[("src", "cli")]),
        Some(3.0)
    );
    let global = vitals::global().snapshot();
    assert_eq!(
        global
            .histogram("mac_parse_seconds", &[])
            .unwrap()
            .lifetime
            .count,
        1
    );
    assert_eq!(
        global.counter("mac_parse_errors_total", &[]),
        None,
        "no error, no series"
    );
}

#[test]
fn timed_evaluates_each_argument_once_in_every_shape() {
    use std::cell::Cell;
    let m = MetricsCollector::new();
    let (collectors, names, keys, values, errs) = (
        Cell::new(0),
        Cell::new(0),
        Cell::new(0),
        Cell::new(0),
        Cell::new(0),
    );
    let bump = |c: &Cell<u32>| c.set(c.get() + 1);
    for _ in 0..3 {
        let out: Result<(), ()> = timed!(
            collector: { bump(&collectors); &m },
            { bump(&names); "once_seconds" },
            { bump(&keys); String::from("k") } => { bump(&values); format!("v{}", 1) };
            errors = { bump(&errs); "once_errors_total" };
            { Err(()) }
        );
        assert!(out.is_err());
    }
    for c in [&collectors, &names, &keys, &values, &errs] {
        assert_eq!(c.get(), 3, "one evaluation per call");
    }
    // The global shape with runtime labels and an error counter.
    let value_calls = Cell::new(0);
    for _ in 0..2 {
        let out: Result<(), ()> = timed!("mac_once_seconds", "k" => { bump(&value_calls); "v" };
            errors = "mac_once_errors_total"; { Err(()) });
        assert!(out.is_err());
    }
    assert_eq!(value_calls.get(), 2);
    let snap = m.snapshot();
    assert_eq!(snap.counter("once_errors_total", &[("k", "v1")]), Some(3.0));
    assert_eq!(
        snap.histogram("once_seconds", &[("k", "v1")])
            .unwrap()
            .window
            .count,
        3
    );
    let global = vitals::global().snapshot();
    assert_eq!(
        global.counter("mac_once_errors_total", &[("k", "v")]),
        Some(2.0)
    );
    assert_eq!(
        global
            .histogram("mac_once_seconds", &[("k", "v")])
            .unwrap()
            .window
            .count,
        2
    );
}

#[test]
fn timed_records_when_the_block_returns_early() {
    fn early(m: &MetricsCollector) -> Result<u32, String> {
        let n = timed!(collector: m, "early_seconds"; errors = "early_errors_total"; {
            let r: Result<u32, String> = Err("boom".into());
            let v = r?;
            Ok::<u32, String>(v + 1)
        });
        n
    }
    let m = MetricsCollector::new();
    assert!(early(&m).is_err());
    let snap = m.snapshot();
    assert_eq!(
        snap.histogram("early_seconds", &[]).unwrap().window.count,
        1
    );
    assert_eq!(
        snap.counter("early_errors_total", &[]),
        None,
        "left by `?`: timed, not counted"
    );
}

#[test]
fn macros_are_hygienic() {
    // Local names that a careless expansion would capture or clash with.
    #[allow(non_snake_case, unused_variables)]
    let (SITE, global, label, __private) = (1, 2, 3, 4);
    counter!("mac_hygiene_total", "k" => "v").inc();
    let value = String::from("x");
    counter!("mac_hygiene_total", "k" => value).inc();
    vitals::describe_counter!("mac_hygiene_total", vitals::Unit::other("count"), "help");
    let snap = vitals::global().snapshot();
    assert_eq!(snap.counter("mac_hygiene_total", &[("k", "v")]), Some(1.0));
}

#[test]
fn a_runtime_label_site_counts_every_label_set_exactly() {
    // More label sets than the call site's cache holds, from several threads.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                for round in 0..10 {
                    for i in 0..100 {
                        let shard = format!("s{}", (i + round) % 100);
                        counter!("mac_site_total", "shard" => shard).inc();
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let snap = vitals::global().snapshot();
    for i in 0..100 {
        let shard = format!("s{i}");
        assert_eq!(
            snap.counter("mac_site_total", &[("shard", &shard)]),
            Some(40.0),
            "{shard}"
        );
    }
}
