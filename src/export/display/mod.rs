//! How a value reads for a person: the one place that decides how every
//! human output (the table, the status line, the terminal dashboard, the
//! web page) shows a number, a name and a label set.
//!
//! # The rules
//!
//! The [`Quantity`] of a metric comes from the unit in the snapshot's
//! metadata ([`Snapshot::metadata`]), with the name as fallback (see
//! [`Quantity::of`]); a counter's `_total` is ignored for the name rules.
//!
//! | quantity | shown as | examples |
//! |---|---|---|
//! | durations (`seconds`, also `milliseconds`, `microseconds`, `nanoseconds`) | ns, µs, ms, s, min, h, d; three significant digits | `850ns`, `12.3µs`, `4.56ms`, `1.20s`, `2.50min`, `3.00h` |
//! | sizes (`bytes`) | B, KiB, MiB, GiB, TiB, PiB, EiB (powers of 1024) | `512B`, `2.30MiB`, `23.5GiB` |
//! | `ratio` (0 to 1) | percent, one decimal | `45.2%` |
//! | `percent` | percent, one decimal | `52.5%` |
//! | points in time (`*_timestamp_seconds`, `*start_time_seconds`, `*boot_time*`) | a UTC date, or an age next to a snapshot | `2026-11-30 11:43:36 UTC`, `3h 12m ago` |
//! | anything else | whole values without decimals, with thousands separators; other values with two decimals (three significant digits under 1) | `24,834`, `1,234.50`, `0.0456` |
//!
//! `NaN`, `+Inf` and `-Inf` read as such. Names, label values and any
//! other outside text are [`escape`]d: control characters and
//! bidirectional overrides cannot drive the terminal.
//!
//! ```
//! use vitals::export::display::{format_value, Quantity};
//!
//! assert_eq!(format_value(0.0123, Quantity::Seconds), "12.3ms");
//! assert_eq!(format_value(2_412_544.0, Quantity::Bytes), "2.30MiB");
//! assert_eq!(format_value(0.452, Quantity::Ratio), "45.2%");
//! assert_eq!(format_value(24_834.0, Quantity::Number), "24,834");
//! assert_eq!(format_value(1_796_016_102.0, Quantity::Timestamp), "2026-11-30 05:21:42 UTC");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::key::{write_printable, Labels};
use crate::snapshot::Snapshot;

mod width;

pub use width::{display_width, shorten};
pub(crate) use width::{push_left, push_right};

/// What a metric's values measure, which decides how they are shown.
///
/// ```
/// use vitals::export::display::Quantity;
///
/// assert_eq!(Quantity::of("process_resident_memory_bytes", None), Quantity::Bytes);
/// assert_eq!(Quantity::of("latency", Some("milliseconds")), Quantity::Milliseconds);
/// assert_eq!(Quantity::of("process_start_time_seconds", Some("seconds")), Quantity::Timestamp);
/// assert_eq!(Quantity::of("process_threads", None), Quantity::Number);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Quantity {
    /// A duration in seconds.
    Seconds,
    /// A duration in milliseconds.
    Milliseconds,
    /// A duration in microseconds.
    Microseconds,
    /// A duration in nanoseconds.
    Nanoseconds,
    /// A size in bytes.
    Bytes,
    /// A fraction of a whole, 0 to 1.
    Ratio,
    /// A percentage, 0 to 100.
    Percent,
    /// A point in time, in seconds since the Unix epoch.
    Timestamp,
    /// A count or any other number.
    Number,
}

impl Quantity {
    /// The quantity of metric `name` described with `unit`.
    ///
    /// In order: a name that says it is a point in time
    /// (`*_timestamp_seconds`, `*start_time_seconds`, or containing
    /// `boot_time`) is a [`Timestamp`](Quantity::Timestamp) whatever its
    /// unit; then the unit word (`seconds`, `milliseconds`, `microseconds`,
    /// `nanoseconds`, `bytes`, `ratio`, `percent`); then the name's suffix,
    /// `_total` removed (`_seconds`, `_milliseconds`, `_microseconds`,
    /// `_nanoseconds`, `_bytes`, `_ratio`, `_percent`); else
    /// [`Number`](Quantity::Number).
    ///
    /// ```
    /// use vitals::export::display::Quantity;
    ///
    /// assert_eq!(Quantity::of("process_cpu_seconds_total", None), Quantity::Seconds);
    /// assert_eq!(Quantity::of("system_boot_time_seconds", Some("seconds")), Quantity::Timestamp);
    /// assert_eq!(Quantity::of("queue", Some("bytes")), Quantity::Bytes);
    /// assert_eq!(Quantity::of("cpu_usage_percent", None), Quantity::Percent);
    /// ```
    pub fn of(name: &str, unit: Option<&str>) -> Quantity {
        let base = name.strip_suffix("_total").unwrap_or(name);
        if base.ends_with("_timestamp_seconds")
            || base.ends_with("start_time_seconds")
            || base.contains("boot_time")
        {
            return Quantity::Timestamp;
        }
        if let Some(q) = unit.and_then(Quantity::of_word) {
            return q;
        }
        match base.rsplit_once('_') {
            Some((_, word)) => Quantity::of_word(word).unwrap_or(Quantity::Number),
            None => Quantity::Number,
        }
    }

    /// The quantity of metric `name` in `snapshot`: [`Quantity::of`] with
    /// the unit of its metadata.
    ///
    /// ```
    /// use vitals::export::display::Quantity;
    /// use vitals::{MetricKind, MetricsCollector, Unit};
    ///
    /// let metrics = MetricsCollector::new();
    /// metrics.describe(MetricKind::Gauge, "queue_size", Some(Unit::Bytes), "Queued");
    /// let snap = metrics.snapshot();
    /// assert_eq!(Quantity::of_metric(&snap, "queue_size"), Quantity::Bytes);
    /// assert_eq!(Quantity::of_metric(&snap, "other"), Quantity::Number);
    /// ```
    pub fn of_metric(snapshot: &Snapshot, name: &str) -> Quantity {
        let unit = snapshot.metadata(name).and_then(|m| m.unit.as_deref());
        Quantity::of(name, unit)
    }

    /// True for the durations (seconds and their fractions).
    ///
    /// ```
    /// use vitals::export::display::Quantity;
    /// assert!(Quantity::Milliseconds.is_duration());
    /// assert!(!Quantity::Timestamp.is_duration());
    /// ```
    pub fn is_duration(self) -> bool {
        self.seconds_per_unit().is_some()
    }

    fn seconds_per_unit(self) -> Option<f64> {
        match self {
            Quantity::Seconds => Some(1.0),
            Quantity::Milliseconds => Some(1e-3),
            Quantity::Microseconds => Some(1e-6),
            Quantity::Nanoseconds => Some(1e-9),
            _ => None,
        }
    }

    fn of_word(word: &str) -> Option<Quantity> {
        Some(match word {
            "seconds" => Quantity::Seconds,
            "milliseconds" => Quantity::Milliseconds,
            "microseconds" => Quantity::Microseconds,
            "nanoseconds" => Quantity::Nanoseconds,
            "bytes" => Quantity::Bytes,
            "ratio" => Quantity::Ratio,
            "percent" => Quantity::Percent,
            _ => return None,
        })
    }
}

/// `value` as a person reads it, by the [rules](self) for `quantity`;
/// points in time as a UTC date.
///
/// ```
/// use vitals::export::display::{format_value, Quantity};
///
/// assert_eq!(format_value(4.5, Quantity::Milliseconds), "4.50ms");
/// assert_eq!(format_value(150.0, Quantity::Seconds), "2.50min");
/// assert_eq!(format_value(8.0, Quantity::Number), "8");
/// assert_eq!(format_value(1234.5, Quantity::Number), "1,234.50");
/// assert_eq!(format_value(f64::NAN, Quantity::Bytes), "NaN");
/// ```
pub fn format_value(value: f64, quantity: Quantity) -> String {
    let mut out = String::new();
    write_value(&mut out, value, quantity, None);
    out
}

/// The value of series of metric `name` in `snapshot`, shown in the unit
/// its metadata (or name) gives; a point in time as its age at the
/// snapshot's time.
///
/// ```
/// use vitals::export::display::format_metric_value;
/// use vitals::snapshot::GaugeSample;
///
/// let mut snap = vitals::MetricsCollector::new().snapshot();
/// snap.timestamp_unix_ms = 1_796_026_902_000;
/// assert_eq!(format_metric_value(&snap, "process_start_time_seconds", 1_796_016_102.0), "3h 0m ago");
/// assert_eq!(format_metric_value(&snap, "process_resident_memory_bytes", 2_412_544.0), "2.30MiB");
/// assert_eq!(format_metric_value(&snap, "process_pid", 24_834.0), "24,834");
/// ```
pub fn format_metric_value(snapshot: &Snapshot, name: &str, value: f64) -> String {
    let mut out = String::new();
    let now = snapshot.timestamp_unix_ms as f64 / 1000.0;
    write_value(
        &mut out,
        value,
        Quantity::of_metric(snapshot, name),
        Some(now),
    );
    out
}

/// A rate (increase per second) of a counter measuring `quantity`:
/// `1,234/s`, `2.30MiB/s`; a rate of seconds per second as a share
/// (`52.0%`: CPU seconds per second are cores busy).
///
/// ```
/// use vitals::export::display::{format_rate, Quantity};
///
/// assert_eq!(format_rate(1234.4, Quantity::Number), "1,234/s");
/// assert_eq!(format_rate(12.34, Quantity::Number), "12.3/s");
/// assert_eq!(format_rate(2_412_544.0, Quantity::Bytes), "2.30MiB/s");
/// assert_eq!(format_rate(0.52, Quantity::Seconds), "52.0%");
/// ```
pub fn format_rate(per_second: f64, quantity: Quantity) -> String {
    let mut out = String::new();
    if write_non_finite(&mut out, per_second) {
        return out;
    }
    match quantity.seconds_per_unit() {
        Some(scale) => write_percent(&mut out, per_second * scale * 100.0),
        None if quantity == Quantity::Bytes => {
            write_bytes(&mut out, per_second);
            out.push_str("/s");
        }
        None => {
            write_short_number(&mut out, per_second);
            out.push_str("/s");
        }
    }
    out
}

/// How long ago `then` was at `now` (both in seconds since the Unix
/// epoch): `12s ago`, `5m 12s ago`, `3h 12m ago`, `4d 3h ago`, or `in …`
/// for a time ahead.
///
/// ```
/// use vitals::export::display::format_age;
///
/// assert_eq!(format_age(1000.0, 1012.0), "12s ago");
/// assert_eq!(format_age(0.0, 3.0 * 86400.0 + 7200.0), "3d 2h ago");
/// assert_eq!(format_age(100.0, 40.0), "in 1m 0s");
/// ```
pub fn format_age(then: f64, now: f64) -> String {
    let mut out = String::new();
    write_age(&mut out, then, now);
    out
}

/// `text` with control characters and bidirectional overrides escaped
/// (`\x1b`, `\n`, `\u{202e}`), and backslashes doubled: safe to print on a
/// terminal or in a page.
///
/// ```
/// assert_eq!(vitals::export::display::escape("a\x1b[2Jb"), r"a\x1b[2Jb");
/// assert_eq!(vitals::export::display::escape("plain"), "plain");
/// ```
pub fn escape(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let _ = write_printable(&mut out, text, false);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// A series as one escaped string: `name{key="value",…}`, as in the
/// Prometheus text.
///
/// ```
/// use vitals::Labels;
/// let labels = Labels::from_pairs(&[("route", "/a\nb")]);
/// assert_eq!(vitals::export::display::series_name("hits_total", &labels), r#"hits_total{route="/a\nb"}"#);
/// ```
pub fn series_name(name: &str, labels: &Labels) -> String {
    let mut out = String::new();
    let _ = write_printable(&mut out, name, false);
    let _ = write!(out, "{labels}");
    out
}

/// Thousands separators: `1,234,567`.
pub(crate) fn thousands(v: u64) -> String {
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

/// Writes `value` by the rules; `now` (Unix seconds) turns points in
/// time into ages.
pub(crate) fn write_value(out: &mut String, value: f64, quantity: Quantity, now: Option<f64>) {
    if write_non_finite(out, value) {
        return;
    }
    if let Some(scale) = quantity.seconds_per_unit() {
        return write_duration(out, value * scale);
    }
    match quantity {
        Quantity::Bytes => write_bytes(out, value),
        Quantity::Ratio => write_percent(out, value * 100.0),
        Quantity::Percent => write_percent(out, value),
        Quantity::Timestamp => match now {
            Some(now) => write_age(out, value, now),
            None => write_date(out, value),
        },
        _ => write_number(out, value),
    }
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

fn write_sign(out: &mut String, v: f64) {
    if v < 0.0 {
        out.push('-');
    }
}

/// Whole values with separators; others with two decimals (three
/// significant digits under 1, an exponent under 0.001).
fn write_number(out: &mut String, v: f64) {
    let a = v.abs();
    if a >= 1e15 {
        let _ = write!(out, "{v:.2e}");
    } else if v.fract() == 0.0 {
        write_sign(out, v);
        out.push_str(&thousands(a as u64));
    } else if a >= 1.0 {
        let text = format!("{a:.2}");
        let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
        write_sign(out, v);
        out.push_str(&thousands(int.parse().unwrap_or(0)));
        out.push('.');
        out.push_str(frac);
    } else if a >= 1e-3 {
        let decimals = if a >= 0.1 {
            3
        } else if a >= 0.01 {
            4
        } else {
            5
        };
        let text = format!("{v:.decimals$}");
        out.push_str(text.trim_end_matches('0'));
    } else {
        let _ = write!(out, "{v:.2e}");
    }
}

/// `1.23`, `12.3`, `123`, `1,234`: about three significant digits.
fn write_short_number(out: &mut String, v: f64) {
    let a = v.abs();
    if (1000.0..1e15).contains(&a) {
        write_sign(out, v);
        out.push_str(&thousands(a.round() as u64));
    } else if a >= 1e15 {
        let _ = write!(out, "{v:.2e}");
    } else {
        write_short(out, v);
    }
}

/// `1.23`, `12.3`, `123` (values under 1000), `0` for zero.
fn write_short(out: &mut String, v: f64) {
    let a = v.abs();
    let _ = if a == 0.0 {
        write!(out, "0")
    } else if a >= 1e15 {
        write!(out, "{v:.2e}")
    } else if a >= 99.95 {
        write!(out, "{v:.0}")
    } else if a >= 9.995 {
        write!(out, "{v:.1}")
    } else {
        write!(out, "{v:.2}")
    };
}

fn write_percent(out: &mut String, percent: f64) {
    if percent.abs() >= 1000.0 {
        write_short_number(out, percent);
    } else {
        let _ = write!(out, "{percent:.1}");
    }
    out.push('%');
}

fn write_duration(out: &mut String, secs: f64) {
    const STEPS: [(f64, f64, &str); 7] = [
        (86_400.0, 86_400.0, "d"),
        (3_600.0, 3_600.0, "h"),
        (60.0, 60.0, "min"),
        (1.0, 1.0, "s"),
        (1e-3, 1e-3, "ms"),
        (1e-6, 1e-6, "µs"),
        (0.0, 1e-9, "ns"),
    ];
    let a = secs.abs();
    if a == 0.0 {
        out.push_str("0s");
        return;
    }
    let mut i = STEPS
        .iter()
        .position(|s| a >= s.0)
        .unwrap_or(STEPS.len() - 1);
    // Step up when the value rounds to the next unit's size, so that
    // 0.99996 s reads `1.00s`, not `1000ms`, and 59.99 s `1.00min`.
    if i > 0 && round_short(a / STEPS[i].1) * STEPS[i].1 >= STEPS[i - 1].0 * (1.0 - 1e-12) {
        i -= 1;
    }
    let (_, size, suffix) = STEPS[i];
    write_sign(out, secs);
    write_short(out, a / size);
    out.push_str(suffix);
}

/// What [`write_short`] shows, as a number.
fn round_short(a: f64) -> f64 {
    if a >= 99.95 {
        a.round()
    } else if a >= 9.995 {
        (a * 10.0).round() / 10.0
    } else {
        (a * 100.0).round() / 100.0
    }
}

fn write_bytes(out: &mut String, bytes: f64) {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let a = bytes.abs();
    if a < 1024.0 {
        write_sign(out, bytes);
        if a.fract() == 0.0 {
            let _ = write!(out, "{a:.0}");
        } else {
            write_short(out, a);
        }
        out.push('B');
        return;
    }
    let mut value = a;
    let mut unit = UNITS[0];
    for next in UNITS {
        unit = next;
        value /= 1024.0;
        // 1023.9 KiB would read `1024KiB`: move on while it rounds that high.
        if value < 999.5 {
            break;
        }
    }
    write_sign(out, bytes);
    write_short(out, value);
    out.push_str(unit);
}

fn write_age(out: &mut String, then: f64, now: f64) {
    let delta = now - then;
    if !delta.is_finite() {
        return write_date(out, then);
    }
    let secs = delta.abs().round() as u64;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let ahead = delta < 0.0 && secs > 0;
    if ahead {
        out.push_str("in ");
    }
    let _ = if d > 0 {
        write!(out, "{d}d {h}h")
    } else if h > 0 {
        write!(out, "{h}h {m}m")
    } else if m > 0 {
        write!(out, "{m}m {s}s")
    } else {
        write!(out, "{s}s")
    };
    if !ahead {
        out.push_str(" ago");
    }
}

/// `2026-11-30 11:43:36 UTC` (proleptic Gregorian, whole seconds).
fn write_date(out: &mut String, unix_seconds: f64) {
    // Beyond ±10,000 years a date means nothing: show the number.
    if unix_seconds.abs() > 2.5e11 {
        return write_number(out, unix_seconds);
    }
    let secs = unix_seconds.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64, q: Quantity) -> String {
        format_value(v, q)
    }

    #[test]
    fn durations_step_through_their_units() {
        use Quantity::*;
        assert_eq!(f(0.0, Seconds), "0s");
        assert_eq!(f(8e-10, Seconds), "0.80ns");
        assert_eq!(f(850e-9, Seconds), "850ns");
        assert_eq!(f(45.6e-6, Seconds), "45.6µs");
        assert_eq!(f(0.0123, Seconds), "12.3ms");
        assert_eq!(f(0.99996, Seconds), "1.00s");
        assert_eq!(f(0.0009996, Seconds), "1.00ms");
        assert_eq!(f(2.5, Seconds), "2.50s");
        assert_eq!(f(59.99, Seconds), "1.00min");
        assert_eq!(f(150.0, Seconds), "2.50min");
        assert_eq!(f(3.0 * 3600.0, Seconds), "3.00h");
        assert_eq!(f(40.0 * 86_400.0, Seconds), "40.0d");
        assert_eq!(f(-0.5, Seconds), "-500ms");
        assert_eq!(f(188.0, Milliseconds), "188ms");
        assert_eq!(f(1500.0, Microseconds), "1.50ms");
        assert_eq!(f(12.0, Nanoseconds), "12.0ns");
    }

    #[test]
    fn sizes_use_powers_of_1024() {
        use Quantity::Bytes;
        assert_eq!(f(0.0, Bytes), "0B");
        assert_eq!(f(512.0, Bytes), "512B");
        assert_eq!(f(1023.0, Bytes), "1023B");
        assert_eq!(f(1024.0, Bytes), "1.00KiB");
        assert_eq!(f(1023.9 * 1024.0, Bytes), "1.00MiB");
        assert_eq!(f(25_276_510_208.0, Bytes), "23.5GiB");
        assert_eq!(f(-2048.0, Bytes), "-2.00KiB");
        assert_eq!(f(2f64.powi(70), Bytes), "1024EiB");
        assert_eq!(f(1e300, Bytes), "8.67e281EiB");
        assert_eq!(f(1e300, Quantity::Seconds), "1.16e295d");
    }

    #[test]
    fn numbers_drop_decimals_when_whole() {
        use Quantity::Number;
        assert_eq!(f(0.0, Number), "0");
        assert_eq!(f(8.0, Number), "8");
        assert_eq!(f(-1234.0, Number), "-1,234");
        assert_eq!(f(1234.5, Number), "1,234.50");
        assert_eq!(f(-2.5, Number), "-2.50");
        assert_eq!(f(0.25, Number), "0.25");
        assert_eq!(f(0.0456, Number), "0.0456");
        assert_eq!(f(0.00012, Number), "1.20e-4");
        assert_eq!(f(1e18, Number), "1.00e18");
        assert_eq!(f(f64::NEG_INFINITY, Number), "-Inf");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn dates_and_ages() {
        assert_eq!(f(0.0, Quantity::Timestamp), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            f(951_782_400.0, Quantity::Timestamp),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(f(-1.0, Quantity::Timestamp), "1969-12-31 23:59:59 UTC");
        assert_eq!(f(1e300, Quantity::Timestamp), "1.00e300");
        assert_eq!(format_age(0.0, 0.4), "0s ago");
        assert_eq!(format_age(0.0, 312.0), "5m 12s ago");
        assert_eq!(format_age(0.0, 11_520.0), "3h 12m ago");
    }
}
