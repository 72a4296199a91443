//! `OtlpExporter::from_env` reading the process environment: a variable
//! that is not UTF-8 is an error naming it, never taken for unset. One
//! test in its own process, since it changes the environment.
#![cfg(all(feature = "otlp", unix))]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use vitals::export::push::OtlpExporter;
use vitals::Error;

#[test]
fn a_variable_that_is_not_utf8_is_named() {
    for name in ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"] {
        std::env::set_var(
            name,
            OsString::from_vec(b"http://collector\xff:4318".to_vec()),
        );
        let result = OtlpExporter::from_env();
        std::env::remove_var(name);
        match result {
            Err(Error::InvalidEnvVar { variable, reason }) => {
                assert_eq!(variable, name);
                assert!(reason.contains("UTF-8"), "{reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Unset again: the defaults.
    let b = OtlpExporter::from_env().unwrap().build().unwrap();
    assert_eq!(b.url(), "http://localhost:4318/v1/metrics");
}
