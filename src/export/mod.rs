//! Outputs: every exporter renders a [`Snapshot`], never the registry.
//!
//! * [`JsonLinesExporter`] appends one snapshot per line to a file, with
//!   rotation, retention and an fsync policy; [`JsonLinesReader`] reads the
//!   files back.
//! * [`render_prometheus`] and [`render_openmetrics`] write the Prometheus
//!   text formats; [`TextFileExporter`] keeps a `.prom` file current for a
//!   textfile collector.
//! * [`render_table`] and [`status_line`] are for people and logs;
//!   [`TableExporter`] prints the table every tick; [`Dashboard`] draws a
//!   live terminal view; [`display`] holds the rules by which every human
//!   output shows values in their units.
//! * `push` (features `push`, `remote-write`, `otlp`): exporters that send
//!   each snapshot to a Pushgateway, a remote-write receiver or an OTLP/HTTP
//!   receiver, with retries and a bounded backlog.
//! * A [`Reporter`] is the background thread that takes a snapshot every
//!   interval and hands it to each exporter, isolating their failures.
//!
//! ```no_run
//! use std::time::Duration;
//! use vitals::export::{JsonLinesExporter, Reporter};
//! use vitals::MetricsCollector;
//!
//! let metrics = MetricsCollector::new();
//! let reporter = Reporter::builder(&metrics)
//!     .interval(Duration::from_secs(10))
//!     .exporter(JsonLinesExporter::new("/var/lib/myapp/metrics.jsonl")?)
//!     .start()?;
//! metrics.counter("requests_total", &[]).inc();
//! // ... the program runs ...
//! let status = reporter.shutdown(); // writes a final snapshot
//! assert!(status.exporters[0].last_error.is_none());
//! # Ok::<(), vitals::Error>(())
//! ```

#[cfg(any(feature = "push", feature = "hdrhistogram", feature = "http"))]
pub(crate) mod base64;
pub mod dashboard;
pub mod display;
#[cfg(feature = "hdrhistogram")]
mod hdr_log;
#[cfg(feature = "http")]
pub mod http;
pub mod jsonl;
pub(crate) mod native;
pub mod prometheus;
pub(crate) mod proto;
#[cfg(feature = "push")]
pub mod push;
pub mod reporter;
pub mod status;
pub mod table;

pub use dashboard::Dashboard;
#[cfg(feature = "hdrhistogram")]
pub use hdr_log::{HdrLogExporter, DEFAULT_HDR_VALUE_SCALE};
#[cfg(feature = "http")]
pub use http::{serve, HttpAuth, HttpConfig, HttpServer, HttpServerStats};
pub use jsonl::{FsyncPolicy, JsonLinesBuilder, JsonLinesExporter, JsonLinesReader, SkippedLine};
pub use prometheus::{
    render_openmetrics, render_prometheus, render_protobuf, RenderReport, TextFileExporter,
    TextFormat, TextRenderer, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPE,
};
pub use reporter::{
    ExporterStatus, Reporter, ReporterBuilder, ReporterStatus, DEFAULT_INTERVAL,
    EXPORT_ERRORS_METRIC,
};
pub use status::{service_p99, status_line, ServiceP99};
pub use table::{render_table, render_table_into, TableExporter, DEFAULT_TABLE_WIDTH};

use crate::error::Error;
use crate::snapshot::Snapshot;

/// A destination for snapshots, fed by a [`Reporter`] (or called directly).
///
/// An exporter renders only from the [`Snapshot`] it is given. Its errors
/// are the reporter's to report and retry; a panic inside `export` is
/// caught by the reporter and treated as an error.
///
/// ```
/// use vitals::export::Exporter;
/// use vitals::{Error, Snapshot};
///
/// /// Remembers how many counter series each snapshot had.
/// #[derive(Default)]
/// struct CountingExporter(Vec<usize>);
///
/// impl Exporter for CountingExporter {
///     fn name(&self) -> &str {
///         "counting"
///     }
///     fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
///         self.0.push(snapshot.counters.len());
///         Ok(())
///     }
/// }
///
/// let metrics = vitals::MetricsCollector::new();
/// let mut exporter = CountingExporter::default();
/// exporter.export(&metrics.snapshot()).unwrap();
/// assert_eq!(exporter.0.len(), 1);
/// ```
pub trait Exporter: Send {
    /// A short name for status reports and the `exporter` label of
    /// [`EXPORT_ERRORS_METRIC`].
    fn name(&self) -> &str;

    /// Writes one snapshot.
    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error>;

    /// Makes everything written so far durable; the reporter calls it after
    /// the final snapshot. The default does nothing.
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Exporter + ?Sized> Exporter for Box<E> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        (**self).export(snapshot)
    }

    fn flush(&mut self) -> Result<(), Error> {
        (**self).flush()
    }
}
