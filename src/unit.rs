//! The unit of a metric: a Prometheus base unit, or a word of the user's.

use std::borrow::Cow;

/// The unit of a metric, given with its help text
/// ([`MetricsCollector::describe`](crate::MetricsCollector::describe),
/// `describe_*!`). It is written as OpenMetrics' `# UNIT` line and the
/// snapshot's metadata, and tells the human outputs how to show values.
///
/// The named variants are Prometheus' base units. Name a metric in its
/// base unit (`_seconds`, not `_milliseconds`) and convert when recording,
/// so that dashboards and alert rules written for Prometheus read it
/// unchanged. [`Unit::Other`] takes any other word (`[a-zA-Z0-9_]+`,
/// checked where it is used).
///
/// A type of its own, so that a unit and a help text cannot be swapped:
///
/// ```
/// use vitals::{MetricKind, MetricsCollector, Unit};
///
/// let metrics = MetricsCollector::new();
/// metrics.describe(MetricKind::Gauge, "queue_bytes", Some(Unit::Bytes), "Bytes queued");
/// metrics.describe(MetricKind::Counter, "widgets_total", Some(Unit::other("widgets")), "Made");
/// let snap = metrics.snapshot();
/// assert_eq!(snap.metadata("queue_bytes").unwrap().unit.as_deref(), Some("bytes"));
/// assert_eq!(Unit::Seconds.as_str(), "seconds");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// Time, in seconds.
    Seconds,
    /// Size, in bytes.
    Bytes,
    /// A fraction of a whole, 0 to 1 (not a percentage).
    Ratio,
    /// Temperature, in degrees Celsius.
    Celsius,
    /// Length, in meters.
    Meters,
    /// Mass, in grams.
    Grams,
    /// Energy, in joules.
    Joules,
    /// Electric potential, in volts.
    Volts,
    /// Electric current, in amperes.
    Amperes,
    /// Any other unit word (`[a-zA-Z0-9_]+`).
    Other(Cow<'static, str>),
}

impl Unit {
    /// A unit that is not one of the base units.
    ///
    /// ```
    /// assert_eq!(vitals::Unit::other("requests").as_str(), "requests");
    /// ```
    pub fn other(word: impl Into<Cow<'static, str>>) -> Self {
        Unit::Other(word.into())
    }

    /// The unit word, as written in OpenMetrics and the snapshot.
    ///
    /// ```
    /// assert_eq!(vitals::Unit::Ratio.as_str(), "ratio");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Ratio => "ratio",
            Unit::Celsius => "celsius",
            Unit::Meters => "meters",
            Unit::Grams => "grams",
            Unit::Joules => "joules",
            Unit::Volts => "volts",
            Unit::Amperes => "amperes",
            Unit::Other(word) => word,
        }
    }

    /// The unit a word names: a base unit, or [`Unit::Other`].
    ///
    /// ```
    /// use vitals::Unit;
    /// assert_eq!(Unit::from_word("seconds"), Unit::Seconds);
    /// assert_eq!(Unit::from_word("widgets"), Unit::other("widgets"));
    /// ```
    pub fn from_word(word: &str) -> Self {
        match word {
            "seconds" => Unit::Seconds,
            "bytes" => Unit::Bytes,
            "ratio" => Unit::Ratio,
            "celsius" => Unit::Celsius,
            "meters" => Unit::Meters,
            "grams" => Unit::Grams,
            "joules" => Unit::Joules,
            "volts" => Unit::Volts,
            "amperes" => Unit::Amperes,
            other => Unit::Other(Cow::Owned(other.to_owned())),
        }
    }

    /// True when the word is usable: `[a-zA-Z0-9_]+`.
    pub(crate) fn is_valid(&self) -> bool {
        let word = self.as_str();
        !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }
}

impl std::fmt::Display for Unit {
    /// The unit word.
    ///
    /// ```
    /// assert_eq!(vitals::Unit::Bytes.to_string(), "bytes");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_base_unit_reads_back_from_its_word() {
        for unit in [
            Unit::Seconds,
            Unit::Bytes,
            Unit::Ratio,
            Unit::Celsius,
            Unit::Meters,
            Unit::Grams,
            Unit::Joules,
            Unit::Volts,
            Unit::Amperes,
        ] {
            assert_eq!(Unit::from_word(unit.as_str()), unit);
            assert!(unit.is_valid());
        }
        assert!(!Unit::other("").is_valid());
        assert!(!Unit::other("a b").is_valid());
    }
}
