//! Prometheus text exposition 0.0.4 and OpenMetrics 1.0 rendering of a
//! [`Snapshot`].
//!
//! # Mapping
//!
//! | vitals | exposed as |
//! |---|---|
//! | counter `x_total` or `x` | `counter`; samples `x_total` (0.0.4 family `x_total`, OpenMetrics family `x`) |
//! | gauge `x` | `gauge`; `NaN`, `+Inf`, `-Inf` spelled so |
//! | histogram `x` | `summary`: `x{quantile="0.5"…"0.999"}` over the rolling window (`NaN` while the window is empty), `x_sum` and `x_count` over the series' life |
//! | histogram `x` with [bucket bounds](crate::MetricsCollector::configure_histogram_buckets) | `histogram`: cumulative `x_bucket{le=…}` ending with `le="+Inf"`, `x_sum`, `x_count`, all over the life (its window quantiles stay in the JSON snapshot) |
//!
//! A family gets a `HELP` line when its metric was described (describe
//! every metric: `promtool check metrics` warns about a family without
//! help). OpenMetrics gets a `UNIT` line when the metric's
//! unit is described and its family name ends with `_<unit>`, as the format
//! requires. Label values are escaped (`\\`, `\"`, `\n`), help text too
//! (`\\`, `\n`, and `\"` in OpenMetrics).
//!
//! # Guarantees for any snapshot
//!
//! The series of a family are contiguous, even if the snapshot lists them
//! apart. A series whose name and labels repeat one already written is left
//! out. A family whose exposed names would clash with an earlier family's
//! (a counter `x` and a gauge `x_total`, a gauge `x_count` beside a summary
//! `x`) is left out whole; both are counted in the [`RenderReport`].
//!
//! Rendering writes into one `String` with [`std::fmt::Write`]; a
//! [`TextRenderer`] keeps its scratch buffers between calls.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::key::Labels;
use crate::metrics::histogram::{HistogramSummary, Quantiles};
use crate::snapshot::{CounterValue, Exemplar, HistogramSample, Snapshot};

use super::Exporter;
use crate::metrics::exemplar::bucket_exemplar;

mod exposure;
mod protobuf;

#[cfg(feature = "remote-write")]
pub(crate) use exposure::counter_base;
use exposure::{Exposure, FamilyHeader, FamilyType, HistogramRule};
pub use protobuf::{render_protobuf, PROTOBUF_CONTENT_TYPE};

/// HTTP `Content-Type` of the Prometheus text format 0.0.4.
///
/// ```
/// assert!(vitals::export::PROMETHEUS_CONTENT_TYPE.contains("version=0.0.4"));
/// ```
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// HTTP `Content-Type` of OpenMetrics 1.0 text.
///
/// ```
/// assert!(vitals::export::OPENMETRICS_CONTENT_TYPE.starts_with("application/openmetrics-text"));
/// ```
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format to render.
///
/// ```
/// use vitals::export::TextFormat;
/// assert_eq!(TextFormat::OpenMetrics.content_type(), vitals::export::OPENMETRICS_CONTENT_TYPE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextFormat {
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
}

impl TextFormat {
    /// The HTTP `Content-Type` of this format.
    ///
    /// ```
    /// use vitals::export::TextFormat;
    /// assert_eq!(TextFormat::Prometheus.content_type(), vitals::export::PROMETHEUS_CONTENT_TYPE);
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            TextFormat::Prometheus => PROMETHEUS_CONTENT_TYPE,
            TextFormat::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// What one rendering wrote and what it left out.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("x_total", &[]).inc();
/// metrics.gauge("x", &[]).set(1.0); // clashes with the counter's family `x`
/// let mut out = String::new();
/// let report = vitals::export::TextRenderer::new(vitals::export::TextFormat::OpenMetrics)
///     .render_into(&metrics.snapshot(), &mut out);
/// assert_eq!(report.clashing_families, ["x"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderReport {
    /// Families written.
    pub families: usize,
    /// Series written (a summary or histogram series counts once).
    pub series: usize,
    /// Series left out because the same name and labels came earlier.
    pub duplicate_series: usize,
    /// Families left out because their exposed names clash with an earlier
    /// family's.
    pub clashing_families: Vec<String>,
}

/// Renders snapshots as Prometheus or OpenMetrics text, keeping scratch
/// buffers between calls.
///
/// ```
/// use vitals::export::{TextFormat, TextRenderer};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("requests_total", &[("route", "/")]).increment(7);
/// let mut renderer = TextRenderer::new(TextFormat::Prometheus);
/// let mut out = String::new();
/// renderer.render_into(&metrics.snapshot(), &mut out);
/// assert!(out.contains("# TYPE requests_total counter\nrequests_total{route=\"/\"} 7\n"));
/// ```
pub struct TextRenderer {
    format: TextFormat,
    exposure: Exposure,
    /// `le` values of the current bucketed family, formatted once.
    bounds: Vec<f64>,
    bound_text: Vec<String>,
    floats: zmij::Buffer,
}

impl std::fmt::Debug for TextRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRenderer")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Renders a snapshot as Prometheus text 0.0.4.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("temperature_celsius", &[]).set(f64::NAN);
/// let text = vitals::export::render_prometheus(&metrics.snapshot());
/// assert!(text.contains("temperature_celsius NaN\n"));
/// ```
pub fn render_prometheus(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    TextRenderer::new(TextFormat::Prometheus).render_into(snapshot, &mut out);
    out
}

/// Renders a snapshot as OpenMetrics 1.0 text.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[]).inc();
/// let text = vitals::export::render_openmetrics(&metrics.snapshot());
/// assert!(text.contains("# TYPE jobs counter\njobs_total 1\n"));
/// assert!(text.ends_with("# EOF\n"));
/// ```
pub fn render_openmetrics(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    TextRenderer::new(TextFormat::OpenMetrics).render_into(snapshot, &mut out);
    out
}

impl TextRenderer {
    /// A renderer for `format`.
    ///
    /// ```
    /// let r = vitals::export::TextRenderer::new(vitals::export::TextFormat::OpenMetrics);
    /// assert_eq!(r.format(), vitals::export::TextFormat::OpenMetrics);
    /// ```
    pub fn new(format: TextFormat) -> Self {
        TextRenderer {
            format,
            exposure: Exposure::default(),
            bounds: Vec::new(),
            bound_text: Vec::new(),
            floats: zmij::Buffer::new(),
        }
    }

    /// The format this renderer writes.
    ///
    /// ```
    /// let r = vitals::export::TextRenderer::new(vitals::export::TextFormat::Prometheus);
    /// assert_eq!(r.format().content_type(), vitals::export::PROMETHEUS_CONTENT_TYPE);
    /// ```
    pub fn format(&self) -> TextFormat {
        self.format
    }

    /// Appends the rendering of `snapshot` to `out` and says what was
    /// written. Never fails: see the [module notes](crate::export) for what is left
    /// out of a malformed snapshot.
    ///
    /// ```
    /// use vitals::export::{TextFormat, TextRenderer};
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.histogram("latency_seconds", &[]).record(0.25);
    /// let mut out = String::new();
    /// let report = TextRenderer::new(TextFormat::OpenMetrics)
    ///     .render_into(&metrics.snapshot(), &mut out);
    /// assert!(out.contains("latency_seconds{quantile=\"0.99\"} "));
    /// assert!(out.contains("latency_seconds_count 1\n"));
    /// assert!(report.series >= 1);
    /// ```
    pub fn render_into(&mut self, snapshot: &Snapshot, out: &mut String) -> RenderReport {
        let mut report = RenderReport::default();
        let mut exposure = std::mem::take(&mut self.exposure);
        exposure.families(snapshot, HistogramRule::Text, |exposure, family| {
            let (header, run) = (&family.header, family.run);
            match header.kind {
                FamilyType::Counter => {
                    let items = &snapshot.counters;
                    self.plain_family(
                        exposure,
                        header,
                        run,
                        |j| &items[j].labels,
                        out,
                        &mut report,
                        |r, out, i| {
                            match items[i].value {
                                CounterValue::Int(v) => write_u64(out, v),
                                CounterValue::Float(v) => r.write_f64(out, v),
                            }
                            if let Some(e) = &items[i].exemplar {
                                r.write_exemplar(out, e);
                            }
                        },
                    );
                }
                FamilyType::Gauge => {
                    let items = &snapshot.gauges;
                    self.plain_family(
                        exposure,
                        header,
                        run,
                        |j| &items[j].labels,
                        out,
                        &mut report,
                        |r, out, i| {
                            r.write_f64(out, items[i].value);
                        },
                    );
                }
                FamilyType::Summary | FamilyType::Histogram => {
                    self.histogram_family(
                        exposure,
                        header,
                        &snapshot.histograms,
                        run,
                        out,
                        &mut report,
                    );
                }
            }
        });
        self.exposure = exposure;

        if self.format == TextFormat::OpenMetrics {
            out.push_str("# EOF\n");
        }
        report
    }

    /// A family of one sample per series (counters and gauges): metadata,
    /// then `name{labels} value` for each series of `run` not seen before.
    #[allow(clippy::too_many_arguments)]
    fn plain_family<'a>(
        &mut self,
        exposure: &mut Exposure,
        header: &FamilyHeader<'_>,
        run: &[usize],
        labels_of: impl Fn(usize) -> &'a Labels,
        out: &mut String,
        report: &mut RenderReport,
        mut value: impl FnMut(&mut Self, &mut String, usize),
    ) {
        if !self.begin_family(exposure, header, out, report) {
            return;
        }
        let suffix = if header.kind == FamilyType::Counter {
            "_total"
        } else {
            ""
        };
        for (pos, &i) in run.iter().enumerate() {
            if exposure.is_duplicate(pos, run, &labels_of, report) {
                continue;
            }
            write_name(out, header.base, suffix);
            write_labels(out, labels_of(i), None);
            out.push(' ');
            value(self, out, i);
            out.push('\n');
            report.series += 1;
        }
    }

    fn histogram_family(
        &mut self,
        exposure: &mut Exposure,
        header: &FamilyHeader<'_>,
        items: &[HistogramSample],
        run: &[usize],
        out: &mut String,
        report: &mut RenderReport,
    ) {
        if !self.begin_family(exposure, header, out, report) {
            return;
        }
        self.bounds.clear();
        for (pos, &i) in run.iter().enumerate() {
            let s = &items[i];
            if exposure.is_duplicate(pos, run, |j| &items[j].labels, report) {
                continue;
            }
            match header.kind {
                FamilyType::Histogram => self.histogram_series(header.base, s, out),
                _ => self.summary_series(header.base, &s.labels, &s.summary, out),
            }
            report.series += 1;
        }
    }

    fn summary_series(
        &mut self,
        base: &str,
        labels: &Labels,
        summary: &HistogramSummary,
        out: &mut String,
    ) {
        let quantiles = summary.window.quantiles;
        for (level, text) in Quantiles::LEVELS.into_iter().zip(QUANTILE_LABELS) {
            write_name(out, base, "");
            write_labels(out, labels, Some(("quantile", text)));
            out.push(' ');
            let value = quantiles.and_then(|q| q.get(level)).unwrap_or(f64::NAN);
            self.write_f64(out, value);
            out.push('\n');
        }
        write_name(out, base, "_sum");
        write_labels(out, labels, None);
        out.push(' ');
        self.write_f64(out, summary.lifetime.sum);
        out.push('\n');
        write_name(out, base, "_count");
        write_labels(out, labels, None);
        out.push(' ');
        write_u64(out, summary.lifetime.count);
        out.push('\n');
    }

    fn histogram_series(&mut self, base: &str, s: &HistogramSample, out: &mut String) {
        let life = &s.summary.lifetime;
        // A series without buckets in a bucketed family (only in a
        // hand-made snapshot) still gets its `+Inf` bucket.
        let (bounds, cumulative, count): (&[f64], &[u64], u64) = match &s.summary.buckets {
            Some(b) => (&b.bounds, &b.cumulative, b.count),
            None => (&[], &[], life.count),
        };
        if self.bounds.as_slice() != bounds {
            // Series of one family share their bounds: format them once.
            self.bounds.clear();
            self.bounds.extend_from_slice(bounds);
            self.bound_text.clear();
            for b in bounds {
                self.bound_text
                    .push(self.floats.format_finite(*b).to_owned());
            }
        }
        let mut last = 0u64;
        let mut lower = f64::NEG_INFINITY;
        for (k, &c) in cumulative.iter().enumerate().take(self.bound_text.len()) {
            // Keep buckets cumulative even for a malformed snapshot.
            last = last.max(c).min(count);
            write_name(out, base, "_bucket");
            write_labels(out, &s.labels, Some(("le", &self.bound_text[k])));
            out.push(' ');
            write_u64(out, last);
            let upper = self.bounds[k];
            if let Some(e) = bucket_exemplar(&s.exemplars, lower, upper) {
                self.write_exemplar(out, e);
            }
            lower = upper;
            out.push('\n');
        }
        write_name(out, base, "_bucket");
        write_labels(out, &s.labels, Some(("le", "+Inf")));
        out.push(' ');
        write_u64(out, count);
        if let Some(e) = bucket_exemplar(&s.exemplars, lower, f64::INFINITY) {
            self.write_exemplar(out, e);
        }
        out.push('\n');
        write_name(out, base, "_sum");
        write_labels(out, &s.labels, None);
        out.push(' ');
        self.write_f64(out, life.sum);
        out.push('\n');
        write_name(out, base, "_count");
        write_labels(out, &s.labels, None);
        out.push(' ');
        write_u64(out, count);
        out.push('\n');
    }

    /// ` # {labels} value timestamp` after a counter's or a bucket's
    /// value, in OpenMetrics (Prometheus text 0.0.4 has no exemplars).
    fn write_exemplar(&mut self, out: &mut String, e: &Exemplar) {
        if self.format != TextFormat::OpenMetrics {
            return;
        }
        out.push_str(" # {");
        for (n, (k, v)) in e.labels.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_into(out, v, true);
            out.push('"');
        }
        out.push_str("} ");
        self.write_f64(out, e.value);
        let ms = e.timestamp_unix_ms;
        let _ = write!(out, " {}.{:03}", ms / 1000, ms % 1000);
    }

    /// Shortest round-trip decimal (`0.1`, `1e-7`, `3.0`, `1e+300`), or
    /// `NaN`, `+Inf`, `-Inf`, which both formats (and Go's and Python's
    /// parsers) accept.
    fn write_f64(&mut self, out: &mut String, v: f64) {
        if v.is_nan() {
            out.push_str("NaN");
        } else if v.is_infinite() {
            out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        } else {
            out.push_str(self.floats.format_finite(v));
        }
    }

    /// Claims the family's exposed names and writes its metadata lines;
    /// false (and nothing written) if a name is already taken.
    fn begin_family(
        &mut self,
        exposure: &mut Exposure,
        header: &FamilyHeader<'_>,
        out: &mut String,
        report: &mut RenderReport,
    ) -> bool {
        if !exposure.claim(header, report) {
            return false;
        }
        let kind = header.kind.as_str();
        match self.format {
            TextFormat::Prometheus => {
                // In 0.0.4 a counter's family is named like its samples.
                let suffix = if header.kind == FamilyType::Counter {
                    "_total"
                } else {
                    ""
                };
                if let Some(help) = header.help {
                    out.push_str("# HELP ");
                    write_name(out, header.base, suffix);
                    out.push(' ');
                    escape_into(out, help, false);
                    out.push('\n');
                }
                out.push_str("# TYPE ");
                write_name(out, header.base, suffix);
                let _ = writeln!(out, " {kind}");
            }
            TextFormat::OpenMetrics => {
                let _ = writeln!(out, "# TYPE {} {kind}", header.base);
                if let Some(unit) = header.stated_unit() {
                    let _ = writeln!(out, "# UNIT {} {unit}", header.base);
                }
                if let Some(help) = header.help {
                    let _ = write!(out, "# HELP {} ", header.base);
                    escape_into(out, help, true);
                    out.push('\n');
                }
            }
        }
        true
    }
}

/// Keeps a file of Prometheus or OpenMetrics text current, for a
/// `node_exporter` textfile collector or any scraper that reads files.
///
/// Each export renders into a temporary file beside the target and renames
/// it over the target, so readers see the old text or the new, never half.
///
/// ```
/// use vitals::export::{Exporter, TextFileExporter, TextFormat};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-prom-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("app.prom");
/// let mut exporter = TextFileExporter::new(&path, TextFormat::Prometheus).unwrap();
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[]).inc();
/// exporter.export(&metrics.snapshot()).unwrap();
/// assert!(std::fs::read_to_string(&path).unwrap().contains("jobs_total 1"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct TextFileExporter {
    path: PathBuf,
    temp: PathBuf,
    renderer: TextRenderer,
    buf: String,
}

impl TextFileExporter {
    /// An exporter writing `format` to `path`, whose directory must exist
    /// and be writable (checked here by creating the temporary file).
    ///
    /// ```
    /// use vitals::export::{TextFileExporter, TextFormat};
    /// assert!(TextFileExporter::new("/nonexistent/app.prom", TextFormat::Prometheus).is_err());
    /// ```
    pub fn new(path: impl AsRef<Path>, format: TextFormat) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let name = path
            .file_name()
            .ok_or_else(|| Error::InvalidConfig(format!("{path:?} does not name a file")))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(".tmp");
        let temp = path.with_file_name(temp_name);
        std::fs::File::create(&temp).map_err(|e| Error::io("create", &temp, e))?;
        Ok(TextFileExporter {
            path,
            temp,
            renderer: TextRenderer::new(format),
            buf: String::new(),
        })
    }
}

impl Exporter for TextFileExporter {
    fn name(&self) -> &str {
        match self.renderer.format() {
            TextFormat::Prometheus => "prometheus_file",
            TextFormat::OpenMetrics => "openmetrics_file",
        }
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.buf.clear();
        self.renderer.render_into(snapshot, &mut self.buf);
        let mut file =
            std::fs::File::create(&self.temp).map_err(|e| Error::io("create", &self.temp, e))?;
        file.write_all(self.buf.as_bytes())
            .map_err(|e| Error::io("write", &self.temp, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(|e| Error::io("rename", &self.temp, e))
    }
}

fn write_name(out: &mut String, base: &str, suffix: &str) {
    out.push_str(base);
    out.push_str(suffix);
}

fn write_labels(out: &mut String, labels: &Labels, extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().chain(extra) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v, true);
        out.push('"');
    }
    out.push('}');
}

/// Escapes `\` and newline, and `"` when `quote` (label values always; help
/// text in OpenMetrics only).
fn escape_into(out: &mut String, text: &str, quote: bool) {
    if !text.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'"')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn write_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// The quantile levels as label values, formatted once.
const QUANTILE_LABELS: [&str; 5] = ["0.5", "0.9", "0.95", "0.99", "0.999"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_handles_each_special_character() {
        let mut out = String::new();
        escape_into(&mut out, "a\\b\"c\nd", true);
        assert_eq!(out, "a\\\\b\\\"c\\nd");
        out.clear();
        escape_into(&mut out, "a\\b\"c\nd", false);
        assert_eq!(out, "a\\\\b\"c\\nd");
        out.clear();
        escape_into(&mut out, "plain ✓", true);
        assert_eq!(out, "plain ✓");
    }
}
