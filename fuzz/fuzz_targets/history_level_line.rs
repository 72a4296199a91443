//! Arbitrary bytes as one line of a history level file, decoded directly.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vitals::fuzzing::history_level_line(data));
