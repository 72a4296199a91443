//! Arbitrary bytes as what a client sends on one connection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vitals::fuzzing::http_request_head(data));
