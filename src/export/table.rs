//! Output for people: a table of every series, sized to a terminal width.
//!
//! Values are shown in their units by the rules of [`display`](super::display).
//!
//! # Layout
//!
//! Each section (counters, gauges, histograms, plug-ins) is a grid whose
//! value columns are as wide as their widest cell and whose name column
//! takes the rest of the width, up to the longest name: a longer name is
//! shortened with `…`, the metric name before its label set. Every line
//! fits the width. When the name column would get less than two fifths of
//! the width (and less than its longest name), histogram columns are left
//! out, in this order: MIN, AVG, MAX, P95, COUNT (P99 always stays). Histogram columns describe the rolling window
//! (count, average, min, max, p95, p99).

use std::fmt::Write as _;

use crate::error::Error;
use crate::key::Printable;
use crate::snapshot::{CounterValue, Snapshot};

use super::display::{
    display_width, format_metric_value, format_rate, push_left, push_right, series_name, shorten,
    thousands, write_value, Quantity,
};
use super::Exporter;

/// The width [`render_table`] and [`TableExporter`] use unless told
/// otherwise: 120 columns.
///
/// ```
/// assert_eq!(vitals::export::DEFAULT_TABLE_WIDTH, 120);
/// ```
pub const DEFAULT_TABLE_WIDTH: usize = 120;

/// The name column is not squeezed below this (or two fifths of the
/// width, if more) while columns can be left out.
const MIN_NAME_WIDTH: usize = 24;

/// Renders every series of `snapshot` as a table [`DEFAULT_TABLE_WIDTH`]
/// columns wide.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// metrics.counter("requests_total", &[]).increment(1_234_567);
/// metrics.gauge("queue_depth", &[]).set(3.0);
/// metrics.histogram("latency_seconds", &[]).record(0.0123);
/// let table = vitals::export::render_table(&metrics.snapshot());
/// assert!(table.contains("1,234,567"));
/// assert!(table.contains("queue_depth  ") && !table.contains("3.00"));
/// assert!(table.contains("12.3ms"));
/// ```
pub fn render_table(snapshot: &Snapshot) -> String {
    render_table_width(snapshot, DEFAULT_TABLE_WIDTH)
}

/// Renders every series of `snapshot` as a table at most `width` columns
/// wide (a terminal's width; see the [layout rules](self)).
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let name = format!("a_rather_long_metric_name_{}_total", "x".repeat(60));
/// metrics.counter(&name, &[("route", "/api/orders")]).increment(7);
/// let table = vitals::export::table::render_table_width(&metrics.snapshot(), 80);
/// assert!(table.lines().all(|l| l.chars().count() <= 80));
/// assert!(table.contains(r#"…{route="/api/orders"}"#));
/// ```
pub fn render_table_width(snapshot: &Snapshot, width: usize) -> String {
    let mut out = String::new();
    render_into(snapshot, width, &mut out);
    out
}

/// Appends the table of [`render_table`] to `out`.
///
/// ```
/// let mut out = String::from("metrics:\n");
/// vitals::export::render_table_into(&vitals::MetricsCollector::new().snapshot(), &mut out);
/// assert!(out.starts_with("metrics:\n"));
/// ```
pub fn render_table_into(snapshot: &Snapshot, out: &mut String) {
    render_into(snapshot, DEFAULT_TABLE_WIDTH, out);
}

fn render_into(snapshot: &Snapshot, width: usize, out: &mut String) {
    let start = out.len();
    let now = snapshot.timestamp_unix_ms as f64 / 1000.0;
    let mut sections: Vec<Grid> = Vec::new();

    let mut counters = Grid::new("COUNTER", &[("VALUE", 0), ("RATE", 0)]);
    for s in &snapshot.counters {
        let quantity = Quantity::of_metric(snapshot, &s.name);
        let value = match (s.value, quantity) {
            (CounterValue::Int(v), Quantity::Number) => thousands(v),
            (v, _) => format_metric_value(snapshot, &s.name, v.as_f64()),
        };
        let rate = s
            .rate
            .map_or_else(|| "-".to_owned(), |r| format_rate(r.per_second, quantity));
        counters.row(series_name(&s.name, &s.labels), vec![value, rate]);
    }
    sections.push(counters);

    let mut gauges = Grid::new("GAUGE", &[("VALUE", 0)]);
    for s in &snapshot.gauges {
        let value = format_metric_value(snapshot, &s.name, s.value);
        gauges.row(series_name(&s.name, &s.labels), vec![value]);
    }
    sections.push(gauges);

    let mut histograms = Grid::new(
        "HISTOGRAM (window)",
        &[
            ("COUNT", 2),
            ("AVG", 5),
            ("MIN", 6),
            ("MAX", 4),
            ("P95", 3),
            ("P99", 0),
        ],
    );
    for s in &snapshot.histograms {
        let quantity = Quantity::of_metric(snapshot, &s.name);
        let w = &s.summary.window;
        let q = w.quantiles;
        let mut cells = vec![thousands(w.count)];
        for v in [w.mean, w.min, w.max, q.map(|q| q.p95), q.map(|q| q.p99)] {
            let mut cell = String::new();
            match v {
                Some(v) => write_value(&mut cell, v, quantity, Some(now)),
                None => cell.push('-'),
            }
            cells.push(cell);
        }
        histograms.row(series_name(&s.name, &s.labels), cells);
    }
    sections.push(histograms);

    for grid in sections.iter().filter(|g| !g.rows.is_empty()) {
        if out.len() > start {
            out.push('\n');
        }
        grid.render(out, width);
    }
    let mut line = String::new();
    if !snapshot.plugins.is_empty() && out.len() > start {
        out.push('\n');
    }
    for plugin in &snapshot.plugins {
        let status = serde_json::to_value(plugin.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        line.clear();
        let _ = write!(
            line,
            "PLUG-IN {} ({status}, {} series)",
            Printable(&plugin.name),
            plugin.stats.series
        );
        push_line(out, &line, width);
        if let Some(err) = &plugin.stats.last_error {
            line.clear();
            let _ = write!(line, "  last error: {}", Printable(err));
            push_line(out, &line, width);
        }
    }
    if out.len() == start {
        out.push_str("(no metrics)\n");
    }
}

/// Appends `line` cut to `width`, and a newline.
fn push_line(out: &mut String, line: &str, width: usize) {
    out.push_str(&shorten(line, width));
    out.push('\n');
}

/// A section of the table (also the dashboard's): a name column, then
/// value columns right-aligned, each with a priority (0: always shown;
/// otherwise the highest number is left out first when space runs short).
pub(crate) struct Grid {
    name_header: String,
    columns: Vec<(String, u8)>,
    left_aligned_last: bool,
    pub(crate) rows: Vec<(String, Vec<String>)>,
}

impl Grid {
    pub(crate) fn new(name_header: &str, columns: &[(&str, u8)]) -> Self {
        Grid {
            name_header: name_header.to_owned(),
            columns: columns.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect(),
            left_aligned_last: false,
            rows: Vec::new(),
        }
    }

    /// The last column is left-aligned (a sparkline).
    pub(crate) fn left_aligned_last(mut self) -> Self {
        self.left_aligned_last = true;
        self
    }

    pub(crate) fn row(&mut self, name: String, cells: Vec<String>) {
        self.rows.push((name, cells));
    }

    /// Writes the header and the rows, each line at most `width` columns.
    pub(crate) fn render(&self, out: &mut String, width: usize) {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (header, _))| {
                self.rows
                    .iter()
                    .filter_map(|(_, cells)| cells.get(i))
                    .map(|c| display_width(c))
                    .chain([display_width(header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let longest_name = self
            .rows
            .iter()
            .map(|(n, _)| display_width(n))
            .chain([display_width(&self.name_header)])
            .max()
            .unwrap_or(0);
        let mut shown: Vec<bool> = vec![true; self.columns.len()];
        let used = |shown: &[bool]| -> usize {
            widths
                .iter()
                .zip(shown)
                .filter(|(_, s)| **s)
                .map(|(w, _)| w + 2)
                .sum()
        };
        let wanted = longest_name.min(MIN_NAME_WIDTH.max(width * 2 / 5));
        while used(&shown) + wanted > width {
            let drop = (0..self.columns.len())
                .filter(|&i| shown[i] && self.columns[i].1 > 0)
                .max_by_key(|&i| self.columns[i].1);
            match drop {
                Some(i) => shown[i] = false,
                None => break,
            }
        }
        let name_width = longest_name.min(width.saturating_sub(used(&shown)));
        let mut line = String::new();
        let last = self.columns.len().saturating_sub(1);
        let mut write_line =
            |out: &mut String, name: &str, cells: &mut dyn Iterator<Item = &str>| {
                line.clear();
                push_left(&mut line, name, name_width);
                for (i, cell) in cells.enumerate() {
                    if !shown[i] {
                        continue;
                    }
                    line.push_str("  ");
                    if i == last && self.left_aligned_last {
                        line.push_str(cell);
                    } else {
                        push_right(&mut line, cell, widths[i]);
                    }
                }
                push_line(out, line.trim_end(), width);
            };
        let headers: Vec<&str> = self.columns.iter().map(|c| c.0.as_str()).collect();
        write_line(out, &self.name_header, &mut headers.iter().copied());
        for (name, cells) in &self.rows {
            write_line(out, name, &mut cells.iter().map(String::as_str));
        }
    }
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
    width: usize,
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
            width: DEFAULT_TABLE_WIDTH,
        }
    }

    /// The width of the table in columns (default [`DEFAULT_TABLE_WIDTH`]).
    ///
    /// ```
    /// use vitals::export::{Exporter, TableExporter};
    ///
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter(&format!("{}_total", "n".repeat(100)), &[]).inc();
    /// let mut exporter = TableExporter::new(Vec::new()).width(80);
    /// exporter.export(&metrics.snapshot()).unwrap();
    /// let text = String::from_utf8(exporter.into_inner()).unwrap();
    /// assert!(text.lines().all(|l| l.chars().count() <= 80));
    /// ```
    pub fn width(mut self, columns: usize) -> Self {
        self.width = columns;
        self
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
        render_into(snapshot, self.width, &mut self.buf);
        self.buf.push('\n');
        let path = std::path::Path::new("(table output)");
        self.out
            .write_all(self.buf.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io("write", path, e))
    }
}
