//! The one-line status: what the program costs and how it serves.
//!
//! # The rule
//!
//! [`status_line`] joins whichever of these the snapshot has, in this
//! order, each only if present (`no activity` if none is):
//!
//! 1. `CPU: 5.0%` — the **process's** CPU in percent of one core (as `top`
//!    shows it; above 100% on several cores): the unlabelled gauge
//!    `process_cpu_usage_percent` (process plug-in), else
//!    `process_cpu_usage_ratio` × 100.
//! 2. `Mem: 2.30MiB` — the process's resident memory,
//!    `process_resident_memory_bytes`.
//! 3. `req/s: 1,234` — the sum of the rates of every counter series whose
//!    name ends with `requests_total` (`vitals_*` excluded).
//! 4. `p99: 188ms` — the **service-wide** p99: every series of the busiest
//!    duration histogram merged into one distribution. Busiest: the most
//!    values in the window over all its series; duration: unit `seconds`
//!    (or `milliseconds`, …) in its metadata, else a `_seconds` name; if no
//!    histogram measures time, the busiest histogram (`vitals_*`
//!    excluded). The merge is exact when the series carry their window
//!    buckets (collectors built with
//!    [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets)) or
//!    when only one series has values. Otherwise it is the least value
//!    that the series' own quantiles prove at least 99% of all values stay
//!    under, shown as `p99 ≤ 190ms`: never below the true p99, never above
//!    the largest series p99.
//! 5. `machine CPU: 52.5%` — the whole machine, `system_cpu_usage_percent`
//!    (system plug-in), else `system_cpu_usage_ratio` × 100.
//! 6. `machine Mem: 14.2GiB/23.5GiB` — `system_memory_used_bytes`, and
//!    `system_memory_total_bytes` after the slash when present.
//!
//! The process's figures come first and the machine's are labelled, so
//! the two cannot be mistaken for each other; the machine's come last, so
//! a line cut to a narrow terminal loses them first.

use crate::snapshot::{HistogramSample, HistogramSummary, Quantiles, Snapshot};

use super::display::{format_rate, format_value, Quantity};

/// A one-line summary for logs and dashboards; see the [module
/// notes](self) for the rule.
///
/// ```
/// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
/// metrics.gauge("process_cpu_usage_percent", &[]).set(5.0);
/// metrics.gauge("process_resident_memory_bytes", &[]).set(2_412_544.0);
/// metrics.gauge("system_cpu_usage_percent", &[]).set(52.5);
/// let fast = metrics.histogram("request_duration_seconds", &[("route", "/static")]);
/// let slow = metrics.histogram("request_duration_seconds", &[("route", "/api/orders")]);
/// for _ in 0..980 {
///     fast.record(0.004);
/// }
/// for _ in 0..20 {
///     slow.record(0.188);
/// }
/// assert_eq!(
///     vitals::export::status_line(&metrics.snapshot()),
///     "CPU: 5.0%, Mem: 2.30MiB, p99: 188ms, machine CPU: 52.5%"
/// );
/// ```
pub fn status_line(snapshot: &Snapshot) -> String {
    let mut parts: Vec<String> = Vec::new();
    // The first of `names` with an unlabelled gauge series.
    let gauge = |names: &[&str]| names.iter().find_map(|n| snapshot.gauge(n, &[]));
    let percent = |p: &str, r: &str| gauge(&[p]).or_else(|| gauge(&[r]).map(|r| r * 100.0));
    if let Some(cpu) = percent("process_cpu_usage_percent", "process_cpu_usage_ratio") {
        parts.push(format!("CPU: {}", format_value(cpu, Quantity::Percent)));
    }
    if let Some(mem) = gauge(&["process_resident_memory_bytes"]) {
        parts.push(format!("Mem: {}", format_value(mem, Quantity::Bytes)));
    }
    let mut rate = None;
    for c in &snapshot.counters {
        if c.name.ends_with("requests_total") && !c.name.starts_with("vitals_") {
            *rate.get_or_insert(0.0) += c.rate.map_or(0.0, |r| r.per_second);
        }
    }
    if let Some(rate) = rate {
        let text = format_rate(rate, Quantity::Number);
        parts.push(format!("req/s: {}", text.trim_end_matches("/s")));
    }
    if let Some(p99) = service_p99(snapshot) {
        let value = format_value(p99.value, p99.quantity);
        parts.push(if p99.exact {
            format!("p99: {value}")
        } else {
            format!("p99 ≤ {value}")
        });
    }
    if let Some(cpu) = percent("system_cpu_usage_percent", "system_cpu_usage_ratio") {
        parts.push(format!(
            "machine CPU: {}",
            format_value(cpu, Quantity::Percent)
        ));
    }
    if let Some(used) = gauge(&["system_memory_used_bytes"]) {
        let mut text = format!("machine Mem: {}", format_value(used, Quantity::Bytes));
        if let Some(total) = gauge(&["system_memory_total_bytes"]) {
            text.push('/');
            text.push_str(&format_value(total, Quantity::Bytes));
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return "no activity".to_owned();
    }
    parts.join(", ")
}

/// The p99 of all series of the busiest duration histogram, merged.
///
/// ```
/// use vitals::export::display::Quantity;
///
/// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
/// for (route, latency) in [("/a", 0.001), ("/b", 0.002), ("/c", 0.5)] {
///     let h = metrics.histogram("latency_seconds", &[("route", route)]);
///     for _ in 0..100 {
///         h.record(latency);
///     }
/// }
/// let p99 = vitals::export::service_p99(&metrics.snapshot()).unwrap();
/// assert_eq!((&*p99.name, p99.series, p99.count), ("latency_seconds", 3, 300));
/// assert!(p99.exact && (p99.value - 0.5).abs() < 0.5 * 0.01);
/// assert_eq!(p99.quantity, Quantity::Seconds);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServiceP99 {
    /// The histogram (metric name) chosen.
    pub name: std::sync::Arc<str>,
    /// Its series with values in their window.
    pub series: usize,
    /// Values in their windows, all series together.
    pub count: u64,
    /// The p99, in the histogram's own unit.
    pub value: f64,
    /// False when the series had no buckets to merge and `value` is the
    /// upper bound their quantiles give.
    pub exact: bool,
    /// What the histogram measures.
    pub quantity: Quantity,
}

/// The service-wide p99 of [`status_line`] (rule 4 of the [module
/// notes](self)), or `None` when no histogram has values in its window.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// assert!(vitals::export::service_p99(&metrics.snapshot()).is_none());
/// metrics.histogram("batch_size", &[]).record(8.0);
/// assert_eq!(vitals::export::service_p99(&metrics.snapshot()).unwrap().value, 8.0);
/// ```
pub fn service_p99(snapshot: &Snapshot) -> Option<ServiceP99> {
    let candidates = || {
        snapshot
            .histograms
            .iter()
            .filter(|h| !h.name.starts_with("vitals_") && h.summary.window.count > 0)
    };
    // Window counts by metric name; series of one name are contiguous but
    // a hand-made snapshot may not keep that, so sum by name.
    let mut totals: Vec<(&str, u64, Quantity)> = Vec::new();
    for h in candidates() {
        match totals.iter_mut().find(|t| t.0 == &*h.name) {
            Some(t) => t.1 = t.1.saturating_add(h.summary.window.count),
            None => totals.push((
                &h.name,
                h.summary.window.count,
                Quantity::of_metric(snapshot, &h.name),
            )),
        }
    }
    let busiest = |durations_only: bool| {
        totals
            .iter()
            .filter(|t| !durations_only || t.2.is_duration())
            .max_by_key(|t| t.1)
    };
    let &(name, count, quantity) = busiest(true).or_else(|| busiest(false))?;
    let series: Vec<&HistogramSample> = candidates().filter(|h| &*h.name == name).collect();
    let mut merged: HistogramSummary = series[0].summary.clone();
    for h in &series[1..] {
        merged.merge(&h.summary);
    }
    let (value, exact) = match merged.window.quantiles {
        Some(q) => (q.p99, true),
        None => (p99_bound(&series)?, false),
    };
    Some(ServiceP99 {
        name: series[0].name.clone(),
        series: series.len(),
        count,
        value,
        exact,
        quantity,
    })
}

/// The least value `x` among the series' quantiles and maxima such that
/// the quantiles prove at least 99% of all values are at most `x`: series
/// `j` has at least `q · n_j` values at most its quantile `Q_j(q)`
/// (nearest rank), and all of them at most its max.
fn p99_bound(series: &[&HistogramSample]) -> Option<f64> {
    let points = |h: &HistogramSample| -> Vec<(f64, f64)> {
        let w = &h.summary.window;
        let q: Option<Quantiles> = w.quantiles;
        let mut p: Vec<(f64, f64)> = q
            .map(|q| {
                let values = [q.p50, q.p90, q.p95, q.p99, q.p999];
                Quantiles::LEVELS
                    .iter()
                    .zip(values)
                    .map(|(l, v)| (v, *l))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(max) = w.max {
            p.push((max, 1.0));
        }
        p
    };
    let all: Vec<(u64, Vec<(f64, f64)>)> = series
        .iter()
        .map(|h| (h.summary.window.count, points(h)))
        .collect();
    let total: f64 = all.iter().map(|(n, _)| *n as f64).sum();
    let mut candidates: Vec<f64> = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(v, _)| *v))
        .filter(|v| !v.is_nan())
        .collect();
    candidates.sort_by(f64::total_cmp);
    candidates.into_iter().find(|&x| {
        let proven: f64 = all
            .iter()
            .map(|(n, p)| {
                let level = p.iter().filter(|(v, _)| *v <= x).map(|(_, l)| *l);
                *n as f64 * level.fold(0.0, f64::max)
            })
            .sum();
        proven >= 0.99 * total
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::MetricsCollector;
    use crate::Window;

    /// Series with count windows carry no buckets: the bound applies.
    #[test]
    fn without_buckets_the_p99_is_a_bound_between_truth_and_the_largest_series_p99() {
        let m = MetricsCollector::new();
        m.configure_histogram("latency_seconds", Window::Count { values: 10_000 })
            .unwrap();
        let fast = m.histogram("latency_seconds", &[("route", "/static")]);
        let slow = m.histogram("latency_seconds", &[("route", "/api/orders")]);
        // 1,000 fast values, 100 slow ones spread 100..=199 ms.
        for _ in 0..1000 {
            fast.record(0.004);
        }
        for i in 0..100 {
            slow.record(0.1 + f64::from(i) * 0.001);
        }
        let snap = m.snapshot();
        let p99 = service_p99(&snap).unwrap();
        assert!(!p99.exact);
        // The true p99 is rank ceil(0.99 · 1100) = 1089: the 89th slow value.
        let truth = 0.1 + 88.0 * 0.001;
        let slow_p99 = snap
            .histogram("latency_seconds", &[("route", "/api/orders")])
            .unwrap()
            .window
            .quantiles
            .unwrap()
            .p99;
        assert!(p99.value >= truth && p99.value < slow_p99, "{p99:?}");
        // The slow series' p90 (189 ms) is the first point proving 99%.
        assert!((p99.value - 0.189).abs() < 1e-9, "{p99:?}");
        assert!(status_line(&snap).contains("p99 ≤ 189ms"));
    }
}
