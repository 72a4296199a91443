//! The `metrics` bridge's name translation always yields a name the
//! collector accepts: for any metric name and label key a library may use,
//! nothing recorded through the bridge is refused as an invalid name.
#![cfg(feature = "metrics-bridge")]

#[path = "common/gen.rs"]
mod gen;

use proptest::prelude::*;
use vitals::bridge::{label_name, metric_name, VitalsRecorder};
use vitals::MetricsCollector;

fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

proptest! {
    #![proptest_config(gen::config(256))]

    #[test]
    fn translated_names_are_always_valid(name in gen::any_text(), key in gen::any_text()) {
        let m = metric_name(&name);
        prop_assert!(valid_metric_name(&m), "{name:?} -> {m:?}");
        let l = label_name(&key);
        prop_assert!(valid_label_name(&l), "{key:?} -> {l:?}");
        // Already valid names pass through unchanged.
        if valid_metric_name(&name) {
            prop_assert_eq!(&*m, name.as_str());
        }
    }

    #[test]
    fn anything_recorded_through_the_bridge_is_accepted(
        name in gen::any_text(),
        key in gen::any_text(),
        value in gen::any_text(),
    ) {
        let metrics = MetricsCollector::new();
        let recorder = VitalsRecorder::new(metrics.clone());
        // `__` starts the reserved label names: the collector refuses those
        // by design (documented on `label_name`).
        let key = if key.starts_with("__") { format!("k{key}") } else { key };
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!(name.clone(), key.clone() => value.clone()).increment(2);
        });
        let snap = metrics.snapshot();
        let errors: u64 = snap
            .counters
            .iter()
            .filter(|c| &*c.name == "vitals_errors_total")
            .filter_map(|c| c.value.as_u64())
            .sum();
        prop_assert_eq!(errors, 0, "{:?}", snap.first_error);
        let counted = snap.counter(&metric_name(&name), &[(&label_name(&key), value.as_str())]);
        prop_assert_eq!(counted, Some(2.0));
    }
}
