//! Arbitrary bytes as a JSON Lines file: every line is a snapshot, blank,
//! or skipped, and every snapshot read is written back the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vitals::fuzzing::jsonl_reader(data));
