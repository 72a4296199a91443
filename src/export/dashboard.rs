//! A live terminal dashboard, drawn from snapshots: a frame that fits a
//! given terminal size, with short histories drawn as sparklines.

use std::collections::{HashMap, VecDeque};

use crate::snapshot::Snapshot;

use super::display::{
    escape, format_age, format_rate, format_value, series_name, shorten, thousands, Quantity,
};
use super::status::status_line;
use super::table::Grid;

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Samples of history kept per series unless told otherwise.
const DEFAULT_HISTORY: usize = 30;

/// A terminal dashboard: [`update`](Dashboard::update) it with each new
/// snapshot (say once a second) and [`render`](Dashboard::render) a frame
/// for the terminal's size.
///
/// A frame, top to bottom: a title with the uptime and the time; the
/// [`status_line`]; the plug-ins and their status; the busiest counters
/// (counts of events by rate, highest first, then those measured in bytes
/// or seconds, by rate) with total, rate and a sparkline of the rate; the
/// busiest histograms (most values in the window first) with count, p50,
/// p99 and a sparkline of the p99. Values are in their units
/// ([`display`](super::display)). The frame has at most `height` lines,
/// each at most `width` columns, so nothing scrolls and the title always
/// shows: the counter and histogram sections share the rows left, and
/// their columns follow the table's [layout rules](super::table)
/// (sparklines are kept, a quarter of the width, 8 to 30 columns).
///
/// ```
/// use vitals::export::Dashboard;
///
/// let metrics = vitals::MetricsCollector::new();
/// let mut dashboard = Dashboard::new().title("my service");
/// for i in 0..40 {
///     metrics.counter("requests_total", &[("route", &format!("/r{i}"))]).inc();
///     metrics.histogram("latency_seconds", &[("route", &format!("/r{i}"))]).record(0.01);
/// }
/// let snap = metrics.snapshot();
/// dashboard.update(&snap);
/// let frame = dashboard.render(&snap, 80, 24);
/// assert!(frame.starts_with("my service"));
/// assert!(frame.lines().count() <= 24);
/// assert!(frame.lines().all(|l| vitals::export::display::display_width(l) <= 80));
/// assert!(frame.contains("10.0ms"));
/// ```
#[derive(Debug, Clone)]
pub struct Dashboard {
    title: String,
    history: usize,
    rates: HashMap<String, VecDeque<f64>>,
    p99s: HashMap<String, VecDeque<f64>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard::new()
    }
}

impl Dashboard {
    /// A dashboard titled `vitals`, keeping 30 samples of history.
    ///
    /// ```
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// assert!(vitals::export::Dashboard::new().render(&snap, 80, 24).starts_with("vitals"));
    /// ```
    pub fn new() -> Self {
        Dashboard {
            title: "vitals".to_owned(),
            history: DEFAULT_HISTORY,
            rates: HashMap::new(),
            p99s: HashMap::new(),
        }
    }

    /// The first words of the title line (escaped when drawn).
    ///
    /// ```
    /// let snap = vitals::MetricsCollector::new().snapshot();
    /// let frame = vitals::export::Dashboard::new().title("shop — Ctrl-C quits").render(&snap, 80, 24);
    /// assert!(frame.starts_with("shop — Ctrl-C quits"));
    /// ```
    pub fn title(mut self, title: &str) -> Self {
        self.title = escape(title).into_owned();
        self
    }

    /// Adds each series' current rate (counters) and window p99
    /// (histograms) to its history, and forgets series that are gone.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// let mut dashboard = vitals::export::Dashboard::new();
    /// metrics.histogram("latency_seconds", &[]).record(0.01);
    /// dashboard.update(&metrics.snapshot());
    /// metrics.histogram("latency_seconds", &[]).record(0.5);
    /// let snap = metrics.snapshot();
    /// dashboard.update(&snap);
    /// // Two samples: a low bar, then a full one.
    /// assert!(dashboard.render(&snap, 100, 24).contains("▁█"));
    /// ```
    pub fn update(&mut self, snapshot: &Snapshot) {
        let limit = self.history;
        let push = |map: &mut HashMap<String, VecDeque<f64>>, key: String, value: f64| {
            let history = map.entry(key).or_default();
            history.push_back(value);
            while history.len() > limit {
                history.pop_front();
            }
        };
        let mut rates = std::mem::take(&mut self.rates);
        let mut p99s = std::mem::take(&mut self.p99s);
        let mut seen_rates = HashMap::new();
        let mut seen_p99s = HashMap::new();
        for c in &snapshot.counters {
            let key = series_name(&c.name, &c.labels);
            if let Some(r) = c.rate {
                push(&mut rates, key.clone(), r.per_second);
            }
            if let Some(h) = rates.remove(&key) {
                seen_rates.insert(key, h);
            }
        }
        for h in &snapshot.histograms {
            let key = series_name(&h.name, &h.labels);
            if let Some(q) = h.summary.window.quantiles {
                push(&mut p99s, key.clone(), q.p99);
            }
            if let Some(h) = p99s.remove(&key) {
                seen_p99s.insert(key, h);
            }
        }
        self.rates = seen_rates;
        self.p99s = seen_p99s;
    }

    /// A frame for a terminal of `width` columns and `height` lines: at
    /// most `height` lines, each ending with `\n`, each at most `width`
    /// columns.
    ///
    /// ```
    /// let metrics = vitals::MetricsCollector::new();
    /// metrics.counter("jobs_total", &[]).increment(3);
    /// let snap = metrics.snapshot();
    /// let frame = vitals::export::Dashboard::new().render(&snap, 150, 50);
    /// assert!(frame.lines().any(|l| l.starts_with("jobs_total") && l.contains(" 3")));
    /// ```
    pub fn render(&self, snapshot: &Snapshot, width: usize, height: usize) -> String {
        let mut lines: Vec<String> = Vec::new();
        let now = snapshot.timestamp_unix_ms as f64 / 1000.0;
        let started = now - snapshot.uptime_seconds;
        let up = format_age(started, now);
        let clock = format_value(now, Quantity::Timestamp);
        let time = clock.get(11..).unwrap_or(&clock);
        lines.push(format!(
            "{} · up {} · {time}",
            self.title,
            up.trim_end_matches(" ago")
        ));
        lines.push(status_line(snapshot));
        if !snapshot.plugins.is_empty() {
            lines.push(plugin_line(snapshot));
        }
        let spark_width = (width / 4).clamp(8, self.history.max(8));
        let counters = self.counter_grid(snapshot, spark_width);
        let histograms = self.histogram_grid(snapshot, spark_width);
        // Rows for the sections: a blank line and a header each.
        let fixed = lines.len()
            + usize::from(!counters.rows.is_empty()) * 2
            + usize::from(!histograms.rows.is_empty()) * 2;
        let budget = height.saturating_sub(fixed);
        let (nc, nh) = (counters.rows.len(), histograms.rows.len());
        let c = nc.min((budget / 2).max(budget.saturating_sub(nh)));
        let h = nh.min(budget - c);
        for (mut grid, rows) in [(counters, c), (histograms, h)] {
            if grid.rows.is_empty() {
                continue;
            }
            grid.rows.truncate(rows);
            let mut text = String::new();
            grid.render(&mut text, width);
            lines.push(String::new());
            lines.extend(text.lines().map(str::to_owned));
        }
        let mut frame = String::new();
        for line in lines.iter().take(height) {
            frame.push_str(&shorten(line, width));
            frame.push('\n');
        }
        frame
    }

    fn counter_grid(&self, snapshot: &Snapshot, spark_width: usize) -> Grid {
        let mut counters: Vec<_> = snapshot
            .counters
            .iter()
            .filter(|c| !c.name.starts_with("vitals_"))
            .collect();
        // Counts of events (requests, jobs) before bytes and seconds, whose
        // rates are not comparable with them; each group by rate.
        let rate = |c: &crate::snapshot::CounterSample| c.rate.map_or(0.0, |r| r.per_second);
        let measured = |c: &crate::snapshot::CounterSample| {
            Quantity::of_metric(snapshot, &c.name) != Quantity::Number
        };
        counters.sort_by(|a, b| {
            measured(a)
                .cmp(&measured(b))
                .then(rate(b).total_cmp(&rate(a)))
        });
        let mut grid = Grid::new(
            "COUNTER (busiest)",
            &[("TOTAL", 0), ("RATE", 0), ("rate history", 0)],
        )
        .left_aligned_last();
        for c in counters {
            let key = series_name(&c.name, &c.labels);
            let quantity = Quantity::of_metric(snapshot, &c.name);
            let total = match (c.value.as_u64(), quantity) {
                (Some(v), Quantity::Number) => thousands(v),
                _ => format_value(c.value.as_f64(), quantity),
            };
            let rate = c
                .rate
                .map_or_else(|| "-".to_owned(), |r| format_rate(r.per_second, quantity));
            let spark = sparkline(self.rates.get(&key), spark_width);
            grid.row(key, vec![total, rate, spark]);
        }
        grid
    }

    fn histogram_grid(&self, snapshot: &Snapshot, spark_width: usize) -> Grid {
        let mut histograms: Vec<_> = snapshot
            .histograms
            .iter()
            .filter(|h| !h.name.starts_with("vitals_"))
            .collect();
        histograms.sort_by_key(|h| std::cmp::Reverse(h.summary.window.count));
        let mut grid = Grid::new(
            "HISTOGRAM (window)",
            &[("COUNT", 2), ("P50", 1), ("P99", 0), ("p99 history", 0)],
        )
        .left_aligned_last();
        for h in histograms {
            let key = series_name(&h.name, &h.labels);
            let quantity = Quantity::of_metric(snapshot, &h.name);
            let w = &h.summary.window;
            let (p50, p99) = w.quantiles.map_or(("-".into(), "-".into()), |q| {
                (format_value(q.p50, quantity), format_value(q.p99, quantity))
            });
            let spark = sparkline(self.p99s.get(&key), spark_width);
            grid.row(key, vec![thousands(w.count), p50, p99, spark]);
        }
        grid
    }
}

/// The last `width` values as bars, scaled to the largest.
fn sparkline(values: Option<&VecDeque<f64>>, width: usize) -> String {
    let Some(values) = values else {
        return String::new();
    };
    let skip = values.len().saturating_sub(width);
    let shown = values.iter().skip(skip).copied();
    let max = shown.clone().filter(|v| v.is_finite()).fold(0.0, f64::max);
    shown
        .map(|v| {
            if max <= 0.0 || !v.is_finite() {
                SPARKS[0]
            } else {
                SPARKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// `plug-ins: system ok · process ok · api error: boom`.
fn plugin_line(snapshot: &Snapshot) -> String {
    let mut line = String::from("plug-ins:");
    for (i, p) in snapshot.plugins.iter().enumerate() {
        line.push_str(if i == 0 { " " } else { " · " });
        line.push_str(&escape(&p.name));
        let status = serde_json::to_value(p.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        line.push(' ');
        line.push_str(&status);
        if let Some(err) = p.stats.last_error.as_deref().filter(|_| status != "ok") {
            line.push_str(": ");
            line.push_str(&escape(err));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_their_largest_value_and_keep_the_latest() {
        let values: VecDeque<f64> = [0.0, 1.0, 2.0, 4.0, f64::NAN].into_iter().collect();
        assert_eq!(sparkline(Some(&values), 10), "▁▃▅█▁");
        assert_eq!(sparkline(Some(&values), 2), "█▁");
        assert_eq!(sparkline(None, 8), "");
    }
}
