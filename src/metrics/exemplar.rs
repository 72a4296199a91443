//! Exemplars: one recorded value kept with labels that point elsewhere
//! (a trace id), so that a dashboard can jump from a bucket or a counter
//! to an example of what it counted.
//!
//! Storage is allocated on a handle's first exemplar; the plain `record`
//! and `increment` paths never look at it.

use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::key::Labels;

/// Characters an exemplar's label names and values may have together, the
/// OpenMetrics limit.
///
/// ```
/// assert_eq!(vitals::snapshot::MAX_EXEMPLAR_LABEL_CHARS, 128);
/// ```
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// Exemplars a histogram keeps for its exponential buckets: the latest of
/// each bucket, for the 16 buckets that received one most recently. (A
/// histogram given bucket bounds also keeps the latest of each of those
/// buckets, however many.)
///
/// ```
/// assert_eq!(vitals::snapshot::MAX_NATIVE_EXEMPLARS, 16);
/// ```
pub const MAX_NATIVE_EXEMPLARS: usize = 16;

/// One recorded value with its labels and the wall-clock time it was
/// recorded.
///
/// ```
/// let metrics = vitals::MetricsCollector::new();
/// let requests = metrics.counter("requests_total", &[]);
/// requests.increment_with_exemplar(1, &[("trace_id", "4bf92f35")]).unwrap();
/// let snap = metrics.snapshot();
/// let e = snap.counter_sample("requests_total", &[]).unwrap().exemplar.as_ref().unwrap();
/// assert_eq!((e.labels.get("trace_id"), e.value), (Some("4bf92f35"), 1.0));
/// assert!(e.timestamp_unix_ms > 0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Exemplar {
    /// The exemplar's own labels (a trace or span id, a user), not the
    /// series'.
    pub labels: Labels,
    /// The value recorded (for a counter, the increment).
    #[serde(with = "crate::non_finite")]
    pub value: f64,
    /// When it was recorded, by the system clock (not the collector's
    /// [`Clock`](crate::Clock): an exemplar points at a trace, which is
    /// stamped with real time), in milliseconds since the Unix epoch.
    pub timestamp_unix_ms: u64,
}

impl Exemplar {
    /// An exemplar, for snapshots built by hand.
    ///
    /// ```
    /// let e = vitals::snapshot::Exemplar::new(&[("trace_id", "abc")], 0.25, 1_700_000_000_000);
    /// assert_eq!(e.labels.get("trace_id"), Some("abc"));
    /// ```
    pub fn new(labels: &[(&str, &str)], value: f64, timestamp_unix_ms: u64) -> Self {
        Exemplar {
            labels: Labels::from_pairs(labels),
            value,
            timestamp_unix_ms,
        }
    }
}

/// The exemplar a bucket holding (`lower`, `upper`] shows in every format
/// that puts exemplars on buckets: the latest of those whose value falls in
/// it.
pub(crate) fn bucket_exemplar(exemplars: &[Exemplar], lower: f64, upper: f64) -> Option<&Exemplar> {
    exemplars
        .iter()
        .filter(|e| lower < e.value && e.value <= upper)
        .max_by_key(|e| e.timestamp_unix_ms)
}

/// Checks an exemplar's labels: valid, distinct label names (the series
/// rule), and at most [`MAX_EXEMPLAR_LABEL_CHARS`] characters of names and
/// values together.
pub(crate) fn exemplar_labels(labels: &[(&str, &str)]) -> Result<Labels, Error> {
    crate::key::validate_labels("exemplar", labels, &[]).map_err(|e| Error::InvalidExemplar {
        reason: e.to_string(),
    })?;
    let chars: usize = labels
        .iter()
        .map(|(k, v)| k.chars().count() + v.chars().count())
        .sum();
    if chars > MAX_EXEMPLAR_LABEL_CHARS {
        return Err(Error::InvalidExemplar {
            reason: format!(
                "its labels have {chars} characters, more than the {MAX_EXEMPLAR_LABEL_CHARS} OpenMetrics allows"
            ),
        });
    }
    Ok(Labels::from_pairs(labels))
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A counter's latest exemplar.
#[derive(Default)]
pub(crate) struct CounterExemplar(Mutex<Option<Exemplar>>);

impl CounterExemplar {
    pub(crate) fn offer(&self, labels: Labels, value: f64) {
        let exemplar = Exemplar {
            labels,
            value,
            timestamp_unix_ms: now_unix_ms(),
        };
        *self.0.lock() = Some(exemplar);
    }

    pub(crate) fn read(&self) -> Option<Exemplar> {
        self.0.lock().clone()
    }
}

/// Where a histogram value falls, for its exemplar: the exponential bucket
/// (`None` for the zero bucket) and the configured bucket, if any.
pub(crate) struct Place {
    pub(crate) native: Option<i32>,
    pub(crate) classic: Option<usize>,
}

/// A histogram's exemplars: the latest per configured bucket, and the
/// latest per exponential bucket for the [`MAX_NATIVE_EXEMPLARS`] buckets
/// that got one most recently.
pub(crate) struct HistogramExemplars(Mutex<Kept>);

struct Kept {
    /// Sequence number of the next exemplar, to tell copies apart.
    next: u64,
    classic: Vec<Option<(u64, Exemplar)>>,
    /// `(bucket, sequence, exemplar)`, oldest first.
    native: Vec<(Option<i32>, u64, Exemplar)>,
}

impl HistogramExemplars {
    /// Storage for a histogram with `classic_buckets` configured buckets
    /// (the `+Inf` one included; 0 without bounds).
    pub(crate) fn new(classic_buckets: usize) -> Self {
        HistogramExemplars(Mutex::new(Kept {
            next: 0,
            classic: vec![None; classic_buckets],
            native: Vec::new(),
        }))
    }

    pub(crate) fn offer(&self, labels: Labels, value: f64, place: Place) {
        let exemplar = Exemplar {
            labels,
            value,
            timestamp_unix_ms: now_unix_ms(),
        };
        let mut kept = self.0.lock();
        let seq = kept.next;
        kept.next += 1;
        if let Some(slot) = place.classic.and_then(|i| kept.classic.get_mut(i)) {
            *slot = Some((seq, exemplar.clone()));
        }
        if let Some(at) = kept.native.iter().position(|(b, ..)| *b == place.native) {
            kept.native.remove(at);
        } else if kept.native.len() >= MAX_NATIVE_EXEMPLARS {
            kept.native.remove(0);
        }
        kept.native.push((place.native, seq, exemplar));
    }

    /// Every exemplar kept, each once, in the order of their values.
    pub(crate) fn read(&self) -> Vec<Exemplar> {
        let kept = self.0.lock();
        let mut all: Vec<(u64, &Exemplar)> = kept
            .native
            .iter()
            .map(|(_, seq, e)| (*seq, e))
            .chain(kept.classic.iter().flatten().map(|(seq, e)| (*seq, e)))
            .collect();
        all.sort_by_key(|(seq, _)| *seq);
        all.dedup_by_key(|(seq, _)| *seq);
        let mut out: Vec<Exemplar> = all.into_iter().map(|(_, e)| e.clone()).collect();
        out.sort_by(|a, b| a.value.total_cmp(&b.value));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(id: &str) -> Labels {
        Labels::from_pairs(&[("trace_id", id)])
    }

    #[test]
    fn a_histogram_keeps_the_latest_per_bucket_for_the_most_recent_buckets() {
        let h = HistogramExemplars::new(2);
        for i in 0..40 {
            let place = Place {
                native: Some(i % 20),
                classic: Some(usize::from(i >= 30)),
            };
            h.offer(labels(&i.to_string()), f64::from(i), place);
        }
        let read = h.read();
        let ids: Vec<&str> = read
            .iter()
            .filter_map(|e| e.labels.get("trace_id"))
            .collect();
        // The 16 latest exponential buckets (their latest values 24..=39)
        // hold the classic buckets' latest (29 and 39) already: no copies.
        let want: Vec<String> = (24..40).map(|i| i.to_string()).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn a_classic_bucket_keeps_its_exemplar_when_native_ones_move_on() {
        let h = HistogramExemplars::new(2);
        h.offer(
            labels("old"),
            1.0,
            Place {
                native: Some(0),
                classic: Some(0),
            },
        );
        for i in 1..=20 {
            h.offer(
                labels("new"),
                100.0,
                Place {
                    native: Some(i),
                    classic: Some(1),
                },
            );
        }
        let read = h.read();
        assert_eq!(read.len(), MAX_NATIVE_EXEMPLARS + 1);
        assert_eq!(read[0].labels.get("trace_id"), Some("old"));
    }

    #[test]
    fn exemplar_labels_follow_the_openmetrics_limit() {
        assert!(exemplar_labels(&[("trace_id", "a")]).is_ok());
        let long = "x".repeat(MAX_EXEMPLAR_LABEL_CHARS - 2);
        assert!(exemplar_labels(&[("ab", &long)]).is_ok());
        let err = exemplar_labels(&[("abc", &long)]).unwrap_err();
        assert!(matches!(err, Error::InvalidExemplar { .. }), "{err}");
        assert!(exemplar_labels(&[("1x", "a")]).is_err());
        assert!(exemplar_labels(&[("a", "1"), ("a", "2")]).is_err());
        // Characters, not bytes.
        let wide = "é".repeat(MAX_EXEMPLAR_LABEL_CHARS - 1);
        assert!(exemplar_labels(&[("a", &wide)]).is_ok());
    }
}
