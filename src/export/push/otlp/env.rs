//! The standard `OTEL_*` environment variables of an OTLP exporter, and
//! the resource attributes it sends when none say otherwise.

use crate::error::Error;
use crate::export::push::check_header;
use crate::export::push::client::Endpoint;

use super::{OtlpBuilder, OtlpFormat, Temporality};

/// Every variable [`apply`] reads.
pub(super) const VARIABLES: [&str; 13] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SERVICE_NAME",
];

/// The process environment's value of `name`: an error for one that is
/// not UTF-8, which would otherwise be taken for unset.
pub(super) fn process_env(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid(name, "is not valid UTF-8")),
    }
}

/// `service.name` and the `telemetry.sdk.*` attributes.
pub(super) fn default_resource() -> Vec<(String, String)> {
    vec![
        ("service.name".to_owned(), default_service_name()),
        ("telemetry.sdk.language".to_owned(), "rust".to_owned()),
        ("telemetry.sdk.name".to_owned(), "vitals".to_owned()),
        (
            "telemetry.sdk.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ]
}

/// `unknown_service:<program name>`, the specification's default. The
/// program's path is looked up once: it is a system call, and
/// [`encode_otlp`] needs the name on every call.
fn default_service_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let program = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match program {
            Some(p) => format!("unknown_service:{p}"),
            None => "unknown_service".to_owned(),
        }
    })
    .clone()
}

fn invalid(variable: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEnvVar {
        variable: variable.to_owned(),
        reason: reason.into(),
    }
}

/// Applies the variables `lookup` finds (an empty value counts as unset).
pub(super) fn apply(
    mut b: OtlpBuilder,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<OtlpBuilder, Error> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    // A value that parses but that `build` would refuse is named here,
    // with its variable.
    fn named(name: &str) -> impl Fn(Error) -> Error + '_ {
        move |e| invalid(name, e.to_string())
    }
    for (name, append_path) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", true),
        // The signal's own endpoint is used as it is, path included.
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", false),
    ] {
        if let Some(v) = get(name) {
            b.url = v.trim().to_owned();
            b.append_path = append_path;
            Endpoint::parse(&b.url()).map_err(named(name))?;
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    ] {
        if let Some(v) = get(name) {
            for (k, v) in parse_list(name, &v)? {
                check_header(&k, &v).map_err(named(name))?;
                b = b.header(k, v);
            }
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    ] {
        if let Some(v) = get(name) {
            b.format = match v.trim() {
                "http/protobuf" => OtlpFormat::Protobuf,
                "http/json" => OtlpFormat::Json,
                "grpc" => {
                    return Err(invalid(
                        name,
                        "grpc is not supported (http/protobuf and http/json are)",
                    ))
                }
                _ => return Err(invalid(name, "must be http/protobuf or http/json")),
            };
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    ] {
        if let Some(v) = get(name) {
            let ms: u64 = v
                .trim()
                .parse()
                .map_err(|_| invalid(name, "must be a whole number of milliseconds"))?;
            b.config.request_timeout = std::time::Duration::from_millis(ms);
            b.config.timeouts().validate().map_err(named(name))?;
        }
    }
    let name = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
    if let Some(v) = get(name) {
        b.temporality = match v.trim().to_ascii_lowercase().as_str() {
            "cumulative" => Temporality::Cumulative,
            // vitals' counters and histograms are synchronous and
            // monotonic: low memory means delta for all of them.
            "delta" | "lowmemory" => Temporality::Delta,
            _ => return Err(invalid(name, "must be cumulative, delta or lowmemory")),
        };
    }
    for name in [
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
    ] {
        if let Some(v) = get(name) {
            b.gzip = match v.trim() {
                "none" => false,
                #[cfg(feature = "otlp-gzip")]
                "gzip" => true,
                #[cfg(not(feature = "otlp-gzip"))]
                "gzip" => return Err(invalid(name, "gzip needs the cargo feature otlp-gzip")),
                _ => return Err(invalid(name, "must be gzip or none")),
            };
        }
    }
    if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
        for (k, v) in parse_list("OTEL_RESOURCE_ATTRIBUTES", &v)? {
            b = b.resource_attribute(k, v);
        }
    }
    // Wins over a `service.name` in OTEL_RESOURCE_ATTRIBUTES.
    if let Some(v) = get("OTEL_SERVICE_NAME") {
        b = b.resource_attribute("service.name", v.trim());
    }
    Ok(b)
}

/// Parses `key1=value1,key2=value2` (values percent-decoded; spaces
/// around keys and values ignored), as both OTEL_RESOURCE_ATTRIBUTES and
/// OTEL_EXPORTER_OTLP_HEADERS are written.
pub(super) fn parse_list(variable: &str, text: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(invalid(
                variable,
                format!("entry {} has no '=' (want key=value,...)", i + 1),
            ));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(invalid(
                variable,
                format!("entry {} has an empty key", i + 1),
            ));
        }
        let value = percent_decode(v.trim()).ok_or_else(|| {
            invalid(
                variable,
                format!("the value of {k:?} has a bad %-escape or is not UTF-8"),
            )
        })?;
        out.push((k.to_owned(), value));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits: `from_str_radix` alone would take `+A`.
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_split_trimmed_and_percent_decoded() {
        let got = parse_list("X", " a = 1 ,b=caf%C3%A9%2C%3D, ,c=").unwrap();
        assert_eq!(
            got,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "café,=".to_owned()),
                ("c".to_owned(), String::new()),
            ]
        );
        for bad in [
            "novalue", "=x", "a=%zz", "a=%4", "a=%ff", "a=%+A", "a=%+0", "a=%-1",
        ] {
            let err = parse_list("OTEL_RESOURCE_ATTRIBUTES", bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_env", "{bad}");
            assert!(
                err.to_string().contains("OTEL_RESOURCE_ATTRIBUTES"),
                "{err}"
            );
        }
    }
}
