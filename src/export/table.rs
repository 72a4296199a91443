//! Output for people: a table of every series and a one-line status.
//!
//! # Units
//!
//! A histogram's values are shown as durations (`850ns`, `12.3µs`, `4.5ms`,
//! `1.20s`) when its unit is described as `seconds` or its name ends with
//! `_seconds`; as sizes (`512B`, `1.8KB`, … powers of 1024) for `bytes` /
//! `_bytes`; otherwise as plain numbers. Histogram columns describe the
//! rolling window (count, average, min, max, p95, p99).
//!
//! # The status line
//!
//! [`status_line`] joins whichever of these the snapshot has, in this order:
//!
//! * `CPU: 45.2%` — the machine's CPU, `system_cpu_usage_percent` from the
//!   system plug-in (else the process plug-in's `process_cpu_usage_percent`,
//!   else a 0–1 gauge `process_cpu_usage_ratio` / `system_cpu_usage_ratio`).
//! * `Mem: 1.8GB` — the program's resident memory,
//!   `process_resident_memory_bytes` (else `system_memory_used_bytes`).
//!
//! Each is an unlabelled gauge series, the program's or a plug-in's.
//! * `req/s: 120` — the sum of the rates of every counter series whose name
//!   ends with `requests_total`.
//! * `p99: 12.3ms` — the window p99 of the busiest duration histogram
//!   series (unit `seconds`; most values in its window), or of the busiest
//!   histogram series if none measures time (`vitals_*` metrics excluded).
//!
//! With none of them it says `no activity`.

use std::fmt::Write as _;

use crate::error::Error;
use crate::key::{write_printable, Labels, Printable};
use crate::snapshot::{CounterValue, MetricInfo, Snapshot};

use super::Exporter;

/// Names longer than this are cut with `…` so the table stays readable.
const MAX_NAME_WIDTH: usize = 72;

/// Renders every series of `snapshot` as a table.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("requests_total", &[]).increment(1_234_567);
/// metrics.gauge("queue_depth", &[]).set(3.0);
/// metrics.histogram("latency_seconds", &[]).record(0.0123);
/// let table = vitals::export::render_table(&metrics.snapshot());
/// assert!(table.contains("1,234,567"));
/// assert!(table.contains("3.00"));
/// assert!(table.contains("ms"));
/// ```
pub fn render_table(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    render_table_into(snapshot, &mut out);
    out
}

/// A counter total: whole ones with thousands separators, float ones
/// (a plug-in's CPU seconds) with two decimals.
struct CounterCell(CounterValue);

impl std::fmt::Display for CounterCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut cell = String::new();
        match self.0 {
            CounterValue::Int(v) => cell = thousands(v),
            CounterValue::Float(v) => write_two_decimals(&mut cell, v),
        }
        f.pad(&cell)
    }
}

/// Appends the table of [`render_table`] to `out`.
///
/// ```
/// let mut out = String::from("metrics:\n");
/// vitals::export::render_table_into(&vitals::MetricsCollector::new().snapshot(), &mut out);
/// assert!(out.starts_with("metrics:\n"));
/// ```
pub fn render_table_into(snapshot: &Snapshot, out: &mut String) {
    let width = snapshot
        .counters
        .iter()
        .map(|s| series_width(&s.name, &s.labels))
        .chain(
            snapshot
                .gauges
                .iter()
                .map(|s| series_width(&s.name, &s.labels)),
        )
        .chain(
            snapshot
                .histograms
                .iter()
                .map(|s| series_width(&s.name, &s.labels)),
        )
        .max()
        .unwrap_or(0)
        .clamp(10, MAX_NAME_WIDTH);
    let mut name = String::new();
    let mut cell = String::new();

    if !snapshot.counters.is_empty() {
        let _ = writeln!(
            out,
            "{:<width$}  {:>15}  {:>12}",
            "COUNTER", "VALUE", "RATE/s"
        );
        for s in &snapshot.counters {
            series_name(&mut name, &s.name, &s.labels);
            cell.clear();
            if let Some(rate) = s.rate {
                write_plain(&mut cell, rate.per_second);
            } else {
                cell.push('-');
            }
            let _ = writeln!(
                out,
                "{}  {:>15}  {:>12}",
                Padded(&name, width),
                CounterCell(s.value),
                cell
            );
        }
    }
    if !snapshot.gauges.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "{:<width$}  {:>15}", "GAUGE", "VALUE");
        for s in &snapshot.gauges {
            series_name(&mut name, &s.name, &s.labels);
            cell.clear();
            write_two_decimals(&mut cell, s.value);
            let _ = writeln!(out, "{}  {:>15}", Padded(&name, width), cell);
        }
    }
    if !snapshot.histograms.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:>11}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
            "HISTOGRAM (window)", "COUNT", "AVG", "MIN", "MAX", "P95", "P99"
        );
        for s in &snapshot.histograms {
            series_name(&mut name, &s.name, &s.labels);
            let unit = unit_of(&s.name, snapshot.metadata(&s.name));
            let w = &s.summary.window;
            let q = w.quantiles;
            let cols = [w.mean, w.min, w.max, q.map(|q| q.p95), q.map(|q| q.p99)];
            let _ = write!(out, "{}  {:>11}", Padded(&name, width), thousands(w.count));
            for v in cols {
                cell.clear();
                match v {
                    Some(v) => write_value(&mut cell, v, unit),
                    None => cell.push('-'),
                }
                let _ = write!(out, "  {cell:>9}");
            }
            out.push('\n');
        }
    }
    for plugin in &snapshot.plugins {
        if !out.is_empty() {
            out.push('\n');
        }
        let status = serde_json::to_value(plugin.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "PLUG-IN {} ({status}, {} series)",
            Printable(&plugin.name),
            plugin.stats.series
        );
        if let Some(err) = &plugin.stats.last_error {
            let _ = writeln!(out, "  last error: {}", Printable(err));
        }
    }
    if out.is_empty() {
        out.push_str("(no metrics)\n");
    }
}

/// A one-line summary for logs; see the [module notes](crate::export) for the rule.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.gauge("process_cpu_usage_ratio", &[]).set(0.452);
/// metrics.gauge("process_resident_memory_bytes", &[]).set(1.8 * 1024.0 * 1024.0 * 1024.0);
/// metrics.histogram("request_duration_seconds", &[]).record(0.0123);
/// assert_eq!(
///     vitals::export::status_line(&metrics.snapshot()),
///     "CPU: 45.2%, Mem: 1.8GB, p99: 12.3ms"
/// );
/// ```
pub fn status_line(snapshot: &Snapshot) -> String {
    let mut parts: Vec<String> = Vec::new();
    // The first of `names` with an unlabelled gauge series.
    let gauge = |names: &[&str]| names.iter().find_map(|n| snapshot.gauge(n, &[]));
    let percent = gauge(&["system_cpu_usage_percent", "process_cpu_usage_percent"]);
    let ratio = || gauge(&["process_cpu_usage_ratio", "system_cpu_usage_ratio"]).map(|r| r * 100.0);
    if let Some(cpu) = percent.or_else(ratio) {
        parts.push(format!("CPU: {cpu:.1}%"));
    }
    if let Some(mem) = gauge(&["process_resident_memory_bytes", "system_memory_used_bytes"]) {
        let mut s = String::from("Mem: ");
        write_bytes(&mut s, mem);
        parts.push(s);
    }
    let mut rate = None;
    for c in &snapshot.counters {
        if c.name.ends_with("requests_total") {
            *rate.get_or_insert(0.0) += c.rate.map_or(0.0, |r| r.per_second);
        }
    }
    if let Some(rate) = rate {
        parts.push(if rate >= 100.0 {
            format!("req/s: {rate:.0}")
        } else {
            format!("req/s: {rate:.1}")
        });
    }
    let candidates = || {
        snapshot
            .histograms
            .iter()
            .filter(|h| !h.name.starts_with("vitals_") && h.summary.window.count > 0)
    };
    let is_duration = |h: &&crate::snapshot::HistogramSample| {
        unit_of(&h.name, snapshot.metadata(&h.name)) == Unit::Seconds
    };
    let busiest = candidates()
        .filter(is_duration)
        .max_by_key(|h| h.summary.window.count)
        .or_else(|| candidates().max_by_key(|h| h.summary.window.count));
    if let Some(h) = busiest {
        if let Some(q) = h.summary.window.quantiles {
            let mut s = String::from("p99: ");
            write_value(&mut s, q.p99, unit_of(&h.name, snapshot.metadata(&h.name)));
            parts.push(s);
        }
    }
    if parts.is_empty() {
        return "no activity".to_owned();
    }
    parts.join(", ")
}

/// Prints [`render_table`] to a writer (standard output, a log file) at
/// every export.
///
/// ```
/// use vitals::export::{Exporter, TableExporter};
///
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("jobs_total", &[]).inc();
/// let mut exporter = TableExporter::new(Vec::new());
/// exporter.export(&metrics.snapshot()).unwrap();
/// assert!(String::from_utf8(exporter.into_inner()).unwrap().contains("jobs_total"));
/// ```
#[derive(Debug)]
pub struct TableExporter<W> {
    out: W,
    buf: String,
}

impl TableExporter<std::io::Stdout> {
    /// A table exporter printing to standard output.
    ///
    /// ```
    /// use vitals::export::{Exporter, TableExporter};
    ///
    /// let mut exporter = TableExporter::stdout();
    /// assert!(exporter.export(&vitals::MetricsCollector::new().snapshot()).is_ok());
    /// ```
    pub fn stdout() -> Self {
        TableExporter::new(std::io::stdout())
    }
}

impl<W: std::io::Write + Send> TableExporter<W> {
    /// A table exporter writing to `out`.
    ///
    /// ```
    /// use vitals::export::{Exporter, TableExporter};
    ///
    /// let mut exporter = TableExporter::new(std::io::sink());
    /// assert_eq!(exporter.name(), "table");
    /// assert!(exporter.export(&vitals::MetricsCollector::new().snapshot()).is_ok());
    /// ```
    pub fn new(out: W) -> Self {
        TableExporter {
            out,
            buf: String::new(),
        }
    }

    /// The writer back.
    ///
    /// ```
    /// let exporter = vitals::export::TableExporter::new(Vec::<u8>::new());
    /// assert!(exporter.into_inner().is_empty());
    /// ```
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: std::io::Write + Send> Exporter for TableExporter<W> {
    fn name(&self) -> &str {
        "table"
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.buf.clear();
        render_table_into(snapshot, &mut self.buf);
        self.buf.push('\n');
        let path = std::path::Path::new("(table output)");
        self.out
            .write_all(self.buf.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("write", path, e))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Bytes,
    Plain,
}

fn unit_of(name: &str, info: Option<&MetricInfo>) -> Unit {
    let unit = info.and_then(|m| m.unit.as_deref());
    if unit == Some("seconds") || name.ends_with("_seconds") {
        Unit::Seconds
    } else if unit == Some("bytes") || name.ends_with("_bytes") {
        Unit::Bytes
    } else {
        Unit::Plain
    }
}

fn series_width(name: &str, labels: &Labels) -> usize {
    let labels_width: usize = labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count() + 4)
        .sum();
    name.chars().count() + labels_width + usize::from(!labels.is_empty())
}

fn series_name(out: &mut String, name: &str, labels: &Labels) {
    out.clear();
    let _ = write_printable(out, name, false);
    // Labels as in Prometheus text; control characters would break the
    // row, so they are escaped along with quotes.
    let _ = write!(out, "{labels}");
}

/// Left-aligns to a width in characters, cutting with `…`.
struct Padded<'a>(&'a str, usize);

impl std::fmt::Display for Padded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Padded(text, width) = *self;
        let len = text.chars().count();
        if len <= width {
            f.write_str(text)?;
            for _ in len..width {
                f.write_char(' ')?;
            }
            Ok(())
        } else {
            for c in text.chars().take(width.saturating_sub(1)) {
                f.write_char(c)?;
            }
            f.write_char('…')
        }
    }
}

fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn write_non_finite(out: &mut String, v: f64) -> bool {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        return false;
    }
    true
}

fn write_two_decimals(out: &mut String, v: f64) {
    if write_non_finite(out, v) {
        return;
    }
    let text = format!("{:.2}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    if v < 0.0 && text != "0.00" {
        out.push('-');
    }
    match int.parse::<u64>() {
        Ok(i) => out.push_str(&thousands(i)),
        Err(_) => out.push_str(int),
    }
    out.push('.');
    out.push_str(frac);
}

/// Three significant digits or so, thousands separated above 1000.
fn write_plain(out: &mut String, v: f64) {
    if write_non_finite(out, v) {
        return;
    }
    let a = v.abs();
    if (1000.0..1e18).contains(&a) {
        if v < 0.0 {
            out.push('-');
        }
        out.push_str(&thousands(a.round() as u64));
    } else if a >= 100.0 || a == 0.0 {
        let _ = write!(out, "{v:.0}");
    } else if a >= 10.0 {
        let _ = write!(out, "{v:.1}");
    } else if a >= 0.01 {
        let _ = write!(out, "{v:.2}");
    } else {
        let _ = write!(out, "{v:.2e}");
    }
}

fn write_value(out: &mut String, v: f64, unit: Unit) {
    match unit {
        Unit::Seconds => write_duration(out, v),
        Unit::Bytes => write_bytes(out, v),
        Unit::Plain => write_plain(out, v),
    }
}

fn write_duration(out: &mut String, secs: f64) {
    if write_non_finite(out, secs) {
        return;
    }
    let (value, suffix) = match secs.abs() {
        0.0 => (0.0, "s"),
        a if a >= 1.0 => (secs, "s"),
        a if a >= 1e-3 => (secs * 1e3, "ms"),
        a if a >= 1e-6 => (secs * 1e6, "µs"),
        _ => (secs * 1e9, "ns"),
    };
    write_short(out, value);
    out.push_str(suffix);
}

fn write_bytes(out: &mut String, bytes: f64) {
    if write_non_finite(out, bytes) {
        return;
    }
    let mut value = bytes;
    let mut unit = "B";
    for next in ["KB", "MB", "GB", "TB", "PB"] {
        if value.abs() < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    let _ = if unit == "B" {
        write!(out, "{value:.0}")
    } else {
        write!(out, "{value:.1}")
    };
    out.push_str(unit);
}

/// `1.23`, `12.3`, `123`: three significant digits for values under 1000.
fn write_short(out: &mut String, v: f64) {
    let a = v.abs();
    let _ = if a >= 100.0 || a == 0.0 {
        write!(out, "{v:.0}")
    } else if a >= 10.0 {
        write!(out, "{v:.1}")
    } else {
        write!(out, "{v:.2}")
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        let fmt = |f: fn(&mut String, f64), v: f64| {
            let mut s = String::new();
            f(&mut s, v);
            s
        };
        assert_eq!(fmt(write_two_decimals, 1234.5), "1,234.50");
        assert_eq!(fmt(write_two_decimals, -0.001), "0.00");
        assert_eq!(fmt(write_two_decimals, -2.5), "-2.50");
        assert_eq!(fmt(write_two_decimals, f64::NAN), "NaN");
        assert_eq!(fmt(write_duration, 0.0123), "12.3ms");
        assert_eq!(fmt(write_duration, 0.000_045_6), "45.6µs");
        assert_eq!(fmt(write_duration, 2.5), "2.50s");
        assert_eq!(fmt(write_duration, 8e-10), "0.80ns");
        assert_eq!(fmt(write_bytes, 1.8 * 1024.0 * 1024.0 * 1024.0), "1.8GB");
        assert_eq!(fmt(write_bytes, 512.0), "512B");
        assert_eq!(fmt(write_plain, 123_456.7), "123,457");
        assert_eq!(fmt(write_plain, f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn long_names_are_cut_to_the_column() {
        let s = Padded("abcdef", 4).to_string();
        assert_eq!(s, "abc…");
        assert_eq!(Padded("ab", 4).to_string(), "ab  ");
    }
}
