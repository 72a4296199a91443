//! The built-in plug-ins.
//!
//! * Polling plug-ins read the machine through `sysinfo` (cargo feature
//!   `system`, on by default): [`SystemCollector`] and [`ProcessCollector`].
//!   They sample in the background once a second unless told otherwise.
//! * Event plug-ins are façades over core metrics in the same registry:
//!   [`ApiCollector`] (requests), [`CacheCollector`] (caches),
//!   [`StageCollector`] (pipeline stages) and [`HealthCollector`]
//!   (dependencies). Recording an event is an update of core metric handles
//!   (no lock, no allocation); at collection they add derived values such
//!   as hit ratios, success rates and throughput.
//!
//! Each event plug-in hands out a handle per name (`api.endpoint("/users")`,
//! `caches.cache("users")`, `stages.stage("parse")`): resolve it once and
//! keep it, and an event costs what the core metric updates cost. The
//! convenience methods that take the name (`api.record_request("/users",
//! ...)`) do one read-locked lookup first. Names are bounded by the core's
//! cardinality limit: past it, the new names share one overflow handle whose
//! label value is [`OVERFLOW_NAME`].
//!
//! ```
//! use std::time::Duration;
//! use vitals::collectors::{ApiCollector, CacheCollector};
//! use vitals::MetricsCollector;
//!
//! let metrics = MetricsCollector::new();
//! let api = ApiCollector::new(&metrics);
//! let caches = CacheCollector::new(&metrics);
//! metrics.register(api.clone()).unwrap();
//! metrics.register(caches.clone()).unwrap();
//!
//! let users = api.endpoint("/users");
//! users.record("GET", 200, Duration::from_millis(12));
//! caches.cache("sessions").hit();
//!
//! let snap = metrics.snapshot();
//! assert_eq!(
//!     snap.counter("api_requests_total", &[("endpoint", "/users"), ("method", "GET"), ("status", "2xx")]),
//!     Some(1.0)
//! );
//! let ratio = snap.gauge("cache_lifetime_hit_ratio", &[("cache", "sessions")]);
//! assert_eq!(ratio, Some(1.0));
//! ```

mod api;
mod cache;
mod health;
mod named;
#[cfg(feature = "system")]
mod process;
#[cfg(all(feature = "system", target_os = "linux"))]
mod procfs;
mod stage;
#[cfg(feature = "system")]
mod system;

pub use api::{ApiCollector, Endpoint, InFlight, Method};
pub use cache::{Cache, CacheCollector};
pub use health::{Dependency, HealthCollector, HealthStatus};
pub use named::OVERFLOW_NAME;
#[cfg(feature = "system")]
pub use process::ProcessCollector;
pub use stage::{Stage, StageCollector, StageGuard};
#[cfg(feature = "system")]
pub use system::SystemCollector;

/// The trailing window over which event plug-ins compute rates and ratios
/// unless told otherwise.
pub const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// A plug-in's metric: name, unit and help text.
type Description = (&'static str, Option<crate::unit::Unit>, &'static str);

/// Describes every metric of a plug-in in `out` (each collection: the
/// registry keeps the latest description of each name).
fn describe_all(
    out: &mut crate::plugin::Samples,
    all: &[Description],
) -> Result<(), crate::error::Error> {
    for (name, unit, help) in all {
        out.describe(name, unit.clone(), help)?;
    }
    Ok(())
}
