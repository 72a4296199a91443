//! Arbitrary bytes as a history level file, reloaded and queried.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vitals::fuzzing::history_level_file(data));
