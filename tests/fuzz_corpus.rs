//! Replays every committed fuzz corpus file and every crash the fuzzers
//! found (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through
//! the same entry points as the cargo-fuzz targets, on stable Rust, so
//! that `cargo test --all-features` keeps what fuzzing proved.
#![cfg(feature = "fuzzing")]

use std::path::{Path, PathBuf};

/// The files of `fuzz/<kind>/<target>`, sorted; none if it is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `entry` on every input of `target`, naming the file that fails.
/// Returns how many ran.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let mut ran = 0;
    for kind in ["corpus", "regressions"] {
        for path in inputs(kind, target) {
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| entry(&data));
            assert!(outcome.is_ok(), "{} fails", path.display());
            ran += 1;
        }
    }
    ran
}

#[test]
fn jsonl_reader_corpus_replays() {
    assert!(replay("jsonl_reader", vitals::fuzzing::jsonl_reader) > 0);
}

#[test]
fn history_level_line_corpus_replays() {
    assert!(replay("history_level_line", vitals::fuzzing::history_level_line) > 0);
}

#[test]
fn history_level_file_corpus_replays() {
    assert!(replay("history_level_file", vitals::fuzzing::history_level_file) > 0);
}

#[test]
fn http_request_head_corpus_replays() {
    assert!(replay("http_request_head", vitals::fuzzing::http_request_head) > 0);
}
