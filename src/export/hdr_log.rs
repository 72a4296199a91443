//! HdrHistogram interval logs (feature `hdrhistogram`): each export writes
//! every histogram series' interval — the values recorded since the
//! previous export — as one tagged line of HdrHistogram's interval-log
//! format (tested with HdrHistogram's Python `hdrh` and the `hdrhistogram`
//! crate's `IntervalLogIterator`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

use super::base64::base64;
use super::Exporter;
use crate::error::Error;
use crate::key::Labels;
use crate::layout::midpoint_at;
use crate::snapshot::{Snapshot, SparseBuckets};

/// What [`HdrLogExporter`] multiplies values by before recording them as
/// HdrHistogram's integers unless told otherwise: seconds become
/// microseconds.
///
/// ```
/// assert_eq!(vitals::export::DEFAULT_HDR_VALUE_SCALE, 1e6);
/// ```
pub const DEFAULT_HDR_VALUE_SCALE: f64 = 1e6;

/// Writes an HdrHistogram interval log: at each export, one line per
/// histogram series with the values recorded since the previous export.
///
/// **Which series.** Histograms of a collector built with
/// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets): the
/// interval is the exact difference of two snapshots' lifetime buckets (a
/// series that was reset or is new starts from zero). Other histograms
/// have no exact interval distribution and are left out, counted in
/// [`left_out`](HdrLogExporter::left_out).
///
/// **Values.** HdrHistogram counts integers: each vitals bucket's count is
/// recorded at the bucket's midpoint times the value scale
/// ([`DEFAULT_HDR_VALUE_SCALE`], seconds to microseconds), rounded, with
/// three significant digits. A value read back is within 0.55% (the
/// bucket) + 0.1% (three digits) of the value recorded, plus the rounding
/// to an integer: half a unit (0.5 µs by default), which is over 0.5% for
/// values under 100 units. Choose the scale so that the values you care
/// about are at least 100 units. Zeros are recorded as 0.
///
/// **Lines.** `Tag=<tag>,<start>,<length>,<max>,<histogram>`: the start
/// is the previous export's time in seconds since the Unix epoch (the log's
/// `BaseTime` is 0; its `StartTime`, written at the first export, is the
/// first interval's start: the collector's creation), the length in seconds, the max in the series' own unit
/// (divided back by the scale), the histogram V2-deflate compressed and in
/// base64. The tag is the series name, then `;key=value` per label, with
/// every byte outside `[A-Za-z0-9_:./-]` of keys and values written as
/// `%XX` (so that tags have no comma, space or line break).
///
/// ```
/// use vitals::export::{Exporter, HdrLogExporter};
///
/// let dir = std::env::temp_dir().join(format!("vitals-doc-hdr-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("latency.hlog");
/// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
/// let latency = metrics.histogram("latency_seconds", &[("route", "/a b")]);
/// let mut log = HdrLogExporter::new(&path).unwrap();
/// latency.record(0.012);
/// log.export(&metrics.snapshot()).unwrap();
/// log.flush().unwrap();
/// let text = std::fs::read_to_string(&path).unwrap();
/// assert!(text.lines().any(|l| l.starts_with("Tag=latency_seconds;route=/a%20b,")));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct HdrLogExporter {
    path: PathBuf,
    out: BufWriter<File>,
    value_scale: f64,
    serializer: V2DeflateSerializer,
    /// Each series' lifetime buckets at the previous export.
    previous: HashMap<(Arc<str>, Labels), Arc<SparseBuckets>>,
    previous_unix_ms: Option<u64>,
    left_out: usize,
    /// Values of the last export past what HdrHistogram holds.
    clamped: u64,
    serialized: Vec<u8>,
    line: String,
}

impl std::fmt::Debug for HdrLogExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HdrLogExporter")
            .field("path", &self.path)
            .field("value_scale", &self.value_scale)
            .finish_non_exhaustive()
    }
}

impl HdrLogExporter {
    /// A log at `path` (created, or truncated if it exists) with values
    /// scaled by [`DEFAULT_HDR_VALUE_SCALE`]; the header is written now.
    ///
    /// ```
    /// assert!(vitals::export::HdrLogExporter::new("/nonexistent/dir/x.hlog").is_err());
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::with_value_scale(path, DEFAULT_HDR_VALUE_SCALE)
    }

    /// A log whose values are multiplied by `value_scale` before being
    /// recorded as integers (`1e3` for milliseconds from seconds, `1.0` for
    /// byte counts). The scale must be finite and positive.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-hdr2-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let log = vitals::export::HdrLogExporter::with_value_scale(dir.join("x.hlog"), 1.0);
    /// assert!(log.is_ok());
    /// assert!(vitals::export::HdrLogExporter::with_value_scale(dir.join("y.hlog"), 0.0).is_err());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn with_value_scale(path: impl AsRef<Path>, value_scale: f64) -> Result<Self, Error> {
        if !(value_scale.is_finite() && value_scale > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "the HdrHistogram value scale must be finite and positive, not {value_scale}"
            )));
        }
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        let mut out = BufWriter::new(file);
        // `StartTime` comes with the first export: it is the start of the
        // first interval, which readers take as the log's origin (an
        // interval before it would be skipped).
        let header = format!(
            "#[Logged with vitals {}, values x {value_scale}]\n#[BaseTime: 0.000 (seconds since epoch)]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            env!("CARGO_PKG_VERSION")
        );
        out.write_all(header.as_bytes())
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(HdrLogExporter {
            path,
            out,
            value_scale,
            serializer: V2DeflateSerializer::new(),
            previous: HashMap::new(),
            previous_unix_ms: None,
            left_out: 0,
            clamped: 0,
            serialized: Vec::new(),
            line: String::new(),
        })
    }

    /// Histogram series the last export left out because they carry no
    /// exponential buckets (their collector was not built with
    /// [`lifetime_buckets(true)`](crate::Builder::lifetime_buckets)).
    ///
    /// ```
    /// use vitals::export::{Exporter, HdrLogExporter};
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-hdr3-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let metrics = vitals::MetricsCollector::new(); // no lifetime buckets
    /// metrics.histogram("h", &[]).record(1.0);
    /// let mut log = HdrLogExporter::new(dir.join("x.hlog")).unwrap();
    /// log.export(&metrics.snapshot()).unwrap();
    /// assert_eq!(log.left_out(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Values of the last export too large for an HdrHistogram once
    /// scaled (past 2⁶³ − 1 units: with the default scale, values over
    /// 9.2 × 10¹² s, some 292,000 years, and `+∞`, which histograms clamp
    /// to 2⁵⁰ s). They are written as 2⁶³ − 1 units, the largest value
    /// HdrHistogram holds.
    ///
    /// ```
    /// use vitals::export::{Exporter, HdrLogExporter};
    /// let dir = std::env::temp_dir().join(format!("vitals-doc-hdr4-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let metrics = vitals::MetricsCollector::builder().lifetime_buckets(true).build();
    /// let h = metrics.histogram("h_seconds", &[]);
    /// h.record(f64::INFINITY); // clamped to 2^50 s by the histogram
    /// h.record(0.25);
    /// let mut log = HdrLogExporter::new(dir.join("x.hlog")).unwrap();
    /// log.export(&metrics.snapshot()).unwrap();
    /// assert_eq!(log.clamped(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The interval of one series as an HdrHistogram, and how many of its
    /// values were past the largest one it holds.
    fn interval(
        &self,
        buckets: &SparseBuckets,
    ) -> Result<(hdrhistogram::Histogram<u64>, u64), Error> {
        let fail = |e: &dyn std::fmt::Display| Error::Export {
            exporter: "hdr_interval_log".into(),
            message: e.to_string(),
        };
        let mut h = hdrhistogram::Histogram::<u64>::new(3).map_err(|e| fail(&e))?;
        if buckets.zeros > 0 {
            h.record_n(0, buckets.zeros).map_err(|e| fail(&e))?;
        }
        let mut clamped = 0u64;
        for &(index, count) in &buckets.counts {
            let value = (midpoint_at(index, buckets.scale) * self.value_scale).round();
            // Past what HdrHistogram holds (2^63 - 1): that, counted.
            let value = if value >= (u64::MAX >> 1) as f64 {
                clamped = clamped.saturating_add(count);
                u64::MAX >> 1
            } else {
                // Under half a unit rounds to 0, which HdrHistogram holds.
                value as u64
            };
            h.record_n(value, count).map_err(|e| fail(&e))?;
        }
        Ok((h, clamped))
    }
}

impl Exporter for HdrLogExporter {
    fn name(&self) -> &str {
        "hdr_interval_log"
    }

    fn export(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        let now = snapshot.timestamp_unix_ms;
        let start = self.previous_unix_ms.unwrap_or_else(|| {
            now.saturating_sub((snapshot.uptime_seconds.max(0.0) * 1000.0) as u64)
        });
        let length = now.saturating_sub(start);
        if self.previous_unix_ms.is_none() {
            let line = format!(
                "#[StartTime: {}.{:03} (seconds since epoch)]\n",
                start / 1000,
                start % 1000
            );
            self.out
                .write_all(line.as_bytes())
                .map_err(|e| Error::io("write", &self.path, e))?;
        }
        let mut current = HashMap::with_capacity(self.previous.len());
        self.left_out = 0;
        self.clamped = 0;
        for h in &snapshot.histograms {
            let Some(buckets) = &h.summary.lifetime_buckets else {
                self.left_out += 1;
                continue;
            };
            let key = (Arc::clone(&h.name), h.labels.clone());
            let interval = self
                .previous
                .get(&key)
                .and_then(|before| buckets.checked_sub(before))
                .unwrap_or_else(|| SparseBuckets::clone(buckets));
            let (hist, clamped) = self.interval(&interval)?;
            self.clamped = self.clamped.saturating_add(clamped);
            current.insert(key, Arc::clone(buckets));

            self.serialized.clear();
            self.serializer
                .serialize(&hist, &mut self.serialized)
                .map_err(|e| Error::Export {
                    exporter: "hdr_interval_log".into(),
                    message: e.to_string(),
                })?;
            self.line.clear();
            self.line.push_str("Tag=");
            write_tag(&mut self.line, &h.name, &h.labels);
            let _ = write!(
                self.line,
                ",{}.{:03},{}.{:03},{:.3},",
                start / 1000,
                start % 1000,
                length / 1000,
                length % 1000,
                hist.max() as f64 / self.value_scale
            );
            self.line.push_str(&base64(&self.serialized, false));
            self.line.push('\n');
            self.out
                .write_all(self.line.as_bytes())
                .map_err(|e| Error::io("write", &self.path, e))?;
        }
        self.previous = current;
        self.previous_unix_ms = Some(now);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.out
            .flush()
            .map_err(|e| Error::io("flush", &self.path, e))
    }
}

/// The series name, then `;key=value` per label, with every byte outside
/// `[A-Za-z0-9_:./-]` of keys and values as `%XX`.
fn write_tag(out: &mut String, name: &str, labels: &Labels) {
    escape(out, name);
    for (k, v) in labels.iter() {
        out.push(';');
        escape(out, k);
        out.push('=');
        escape(out, v);
    }
}

fn escape(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'/' | b'-') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_have_no_separator_of_the_log_format() {
        let mut out = String::new();
        let labels = Labels::from_pairs(&[("route", "/a, b\n"), ("k", "é=%;")]);
        write_tag(&mut out, "latency_seconds", &labels);
        assert_eq!(out, "latency_seconds;k=%C3%A9%3D%25%3B;route=/a%2C%20b%0A");
    }

    #[test]
    fn values_keep_within_half_a_unit_at_both_ends() {
        let dir = std::env::temp_dir().join(format!("vitals-hdr-ends-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = HdrLogExporter::new(dir.join("x.hlog")).unwrap();
        let mut b = SparseBuckets::default();
        // 1 ns (0.001 units): under half a unit, so 0; 0.25 s within 0.65%;
        // 10^13 s past 2^63 - 1 microseconds: the largest, counted.
        for v in [1e-9, 0.25, 1e13] {
            b.record(v);
        }
        let (h, clamped) = log.interval(&b).unwrap();
        assert_eq!((h.len(), clamped), (3, 1));
        assert_eq!(h.min(), 0);
        assert_eq!(h.max(), h.highest_equivalent(u64::MAX >> 1));
        let quarter = h.value_at_quantile(0.5) as f64;
        assert!(
            (quarter - 250_000.0).abs() <= 250_000.0 * 0.0065 + 0.5,
            "{quarter}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
