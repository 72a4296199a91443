//! Writes a corpus of generated registries for the real consumers of the
//! formats (`promtool check metrics`, the Python `prometheus_client`
//! parsers, `json`), which `scripts/ci_export_checks.sh` runs over it.
//!
//! ```text
//! VITALS_CORPUS_DIR=DIR [VITALS_CORPUS_SIZE=200] [VITALS_CORPUS_SEED=N] \
//!     cargo test --all-features --test properties_corpus
//! ```
//!
//! For each registry `NNN`: `NNN.prom` (Prometheus 0.0.4), `NNN.om`
//! (OpenMetrics 1.0), `NNN.jsonl` (two snapshots through the JSON-Lines
//! exporter) and `NNN.expected.json` (the families, metadata, series and
//! values each text must hold, by the renderer's documented rules, for the
//! Python checker to compare with what its parsers read). Registries come
//! from the same generators as the property tests: any names and label
//! values, every kind, clashing names, small limits, plug-in samples of any
//! value. The same seed writes the same corpus.
//!
//! Without `VITALS_CORPUS_DIR` it writes 50 registries to a temporary
//! directory (removed afterwards) and checks them with the strict in-test
//! parser only. After writing everything it runs that parser over each
//! text, so a failure there names the file the tools will look at.

#[path = "common/exposition.rs"]
mod exposition;
#[path = "common/gen.rs"]
mod gen;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use vitals::export::{render_openmetrics, render_prometheus, Exporter, JsonLinesExporter};
use vitals::ManualClock;

use exposition::{compare, expected, parse, Family, Format};

/// A JSON string literal (serde_json escapes every control character).
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn number_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Rust's Debug is the shortest text that reads back exactly.
        format!("{v:?}")
    }
}

fn families_json(families: &[Family]) -> String {
    let mut out = String::from("[");
    for (i, f) in families.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let opt = |s: &Option<String>| s.as_deref().map_or("null".to_owned(), js);
        let _ = write!(
            out,
            "{{\"name\":{},\"type\":{},\"help\":{},\"unit\":{},\"samples\":[",
            js(&f.name),
            js(&f.kind),
            opt(&f.help),
            opt(&f.unit)
        );
        for (j, s) in f.samples.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("[{},{}]", js(k), js(v)))
                .collect();
            let value = if s.raw.is_empty() {
                number_text(s.value)
            } else {
                s.raw.clone()
            };
            let _ = write!(
                out,
                "{{\"name\":{},\"labels\":[{}],\"value\":{}}}",
                js(&s.name),
                labels.join(","),
                js(&value)
            );
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

#[test]
fn write_exposition_corpus() {
    let (dir, temporary) = match std::env::var_os("VITALS_CORPUS_DIR") {
        Some(dir) => (PathBuf::from(dir), false),
        None => (
            std::env::temp_dir().join(format!("vitals-corpus-{}", std::process::id())),
            true,
        ),
    };
    let size: usize = std::env::var("VITALS_CORPUS_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if temporary { 50 } else { 200 });
    let seed: u64 = std::env::var("VITALS_CORPUS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED);
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        gen::config(1),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let registry = (
        gen::settings(),
        gen::ops(40),
        prop::collection::vec(gen::raw_samples(), 0..3),
    );
    let mut failures = Vec::new();
    for i in 0..size {
        let (settings, ops, plugins) = registry.new_tree(&mut runner).unwrap().current();
        let clock = Arc::new(ManualClock::new());
        let m = vitals::MetricsCollector::builder()
            .clock(clock.clone())
            .cardinality_limit(settings.cardinality_limit)
            .max_metrics(settings.max_metrics)
            .histogram_window(settings.window)
            .lifetime_buckets(settings.lifetime_buckets)
            .plugin_deadline(Duration::from_secs(60))
            .build();
        for (p, samples) in plugins.into_iter().enumerate() {
            m.register(gen::SamplesPlugin {
                name: format!("plugin{p}"),
                samples,
            })
            .unwrap();
        }
        let base = dir.join(format!("{i:03}"));
        let mut jsonl = JsonLinesExporter::new(base.with_extension("jsonl")).unwrap();
        let (first, second) = ops.split_at(ops.len() / 2);
        for op in first {
            gen::apply(&m, &clock, op);
        }
        jsonl.export(&m.snapshot()).unwrap();
        for op in second {
            gen::apply(&m, &clock, op);
        }
        let snap = m.snapshot();
        jsonl.export(&snap).unwrap();
        let prom = render_prometheus(&snap);
        let om = render_openmetrics(&snap);
        std::fs::write(base.with_extension("prom"), &prom).unwrap();
        std::fs::write(base.with_extension("om"), &om).unwrap();
        let (want_prom, want_om) = (
            expected(&snap, Format::Prometheus),
            expected(&snap, Format::OpenMetrics),
        );
        std::fs::write(
            base.with_extension("expected.json"),
            format!(
                "{{\"prometheus\":{},\"openmetrics\":{}}}\n",
                families_json(&want_prom),
                families_json(&want_om)
            ),
        )
        .unwrap();
        for (format, text, want) in [
            (Format::Prometheus, &prom, &want_prom),
            (Format::OpenMetrics, &om, &want_om),
        ] {
            if let Err(e) = parse(text, format).and_then(|parsed| compare(&parsed, want)) {
                failures.push(format!("{i:03} {format:?}: {e}"));
            }
        }
    }
    println!("wrote {size} registries to {}", dir.display());
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "the strict parser rejects:\n{}",
        failures.join("\n")
    );
}
