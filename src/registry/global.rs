//! The process-wide collector the macros use: installed once, never
//! replaced, which is what lets macro call sites cache their handles.

use std::sync::OnceLock;

use super::*;

static GLOBAL: OnceLock<MetricsCollector> = OnceLock::new();

/// The process-wide collector used by the macros without an explicit
/// collector. Created with default settings on first use, unless
/// [`install_global`] came first. It is never replaced or dropped, which is
/// what lets macro call sites cache their handles.
///
/// ```
/// vitals::global().counter("started_total", &[]).inc();
/// assert!(vitals::global().snapshot().counter("started_total", &[]).is_some());
/// ```
pub fn global() -> &'static MetricsCollector {
    GLOBAL.get_or_init(|| MetricsCollector::builder().build_inner(true))
}

/// Installs the global collector with these settings. Fails if the global
/// collector already exists (installed, or created by a first use).
///
/// ```
/// let installed = vitals::install_global(vitals::MetricsCollector::builder().cardinality_limit(50));
/// assert!(installed.is_ok());
/// assert!(vitals::install_global(vitals::MetricsCollector::builder()).is_err());
/// ```
pub fn install_global(builder: Builder) -> Result<&'static MetricsCollector, Error> {
    builder.validate()?;
    let mut fresh = false;
    let collector = GLOBAL.get_or_init(|| {
        fresh = true;
        // Series that may expire must be freeable: count their references.
        let leak = builder.expire_after.is_none();
        builder.build_inner(leak)
    });
    if fresh {
        Ok(collector)
    } else {
        Err(Error::InvalidConfig(
            "the global collector already exists; install it before first use".into(),
        ))
    }
}
