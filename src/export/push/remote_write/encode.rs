//! Encoding a snapshot as remote-write `TimeSeries` entries: the mapping
//! of each kind, label order, family clashes, timestamps.

use super::*;
use crate::export::native::{NativeBuckets, STATED_ZERO_THRESHOLD};
use crate::export::proto::Nested;
use crate::metrics::exemplar::bucket_exemplar;
use crate::snapshot::Exemplar;

/// One snapshot's series, encoded as the `timeseries` entries of a
/// `WriteRequest` (any run of them is itself a valid `WriteRequest`).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(super) bytes: Vec<u8>,
    pub(super) series: Vec<Span>,
    /// Series left out because, with the external labels added, their
    /// labels were an earlier series' (see [`SeriesOut::close`]).
    pub(super) duplicates: u64,
}

/// Where one series' entry and its labels are in a batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span {
    pub(super) entry: (usize, usize),
    pub(super) labels: (usize, usize),
}

/// Encodes snapshots into batches.
#[derive(Debug)]
pub(crate) struct SeriesWriter {
    /// Sorted by name.
    pub(super) external: Vec<(String, String)>,
    pub(super) last_timestamp: i64,
    /// The length of the last batch, to size the next one.
    pub(super) last_len: usize,
}

impl SeriesWriter {
    pub(crate) fn encode(&mut self, snapshot: &Snapshot) -> Batch {
        let ts = i64::try_from(snapshot.timestamp_unix_ms)
            .unwrap_or(i64::MAX)
            .max(self.last_timestamp.saturating_add(1));
        self.last_timestamp = ts;
        // Room for the whole batch at once (the last one's size, or a
        // guess): growing a buffer of a few hundred kilobytes copies it.
        let series =
            snapshot.counters.len() + snapshot.gauges.len() + 8 * snapshot.histograms.len();
        let guess = 112 * series + 64;
        let mut out = SeriesOut {
            w: ProtoWriter::from_vec(Vec::with_capacity(
                guess.max(self.last_len + self.last_len / 8),
            )),
            series: Vec::with_capacity(series),
            pairs: Vec::new(),
            name: String::new(),
            external: &self.external,
            ts,
            open: None,
            shadowing: false,
            seen: HashMap::new(),
            duplicates: 0,
        };
        let mut claims = Claims::default();
        for c in &snapshot.counters {
            let base = counter_base(&c.name);
            if !claims.allow(Family::Counter, &c.name, base) {
                continue;
            }
            out.series(base, "_total", &c.labels, None, counter_value(c));
            out.exemplars(c.exemplar.iter());
        }
        for g in &snapshot.gauges {
            if !claims.allow(Family::Gauge, &g.name, &g.name) {
                continue;
            }
            out.series(&g.name, "", &g.labels, None, g.value);
            out.close();
        }
        let mut bound_text = Vec::new();
        for h in &snapshot.histograms {
            let (name, labels, life) = (&*h.name, &h.labels, &h.summary.lifetime);
            let native = NativeBuckets::of_lifetime(&h.summary);
            let family = match (&h.summary.buckets, &native) {
                (None, None) => Family::Summary,
                _ => Family::Histogram,
            };
            if !claims.allow(family, &h.name, name) {
                continue;
            }
            let count = match &h.summary.buckets {
                Some(b) => {
                    bound_text.clear();
                    let mut floats = zmij::Buffer::new();
                    bound_text.extend(b.bounds.iter().map(|v| {
                        if v.is_finite() {
                            floats.format_finite(*v).to_owned()
                        } else {
                            "+Inf".to_owned()
                        }
                    }));
                    let mut last = 0u64;
                    let mut lower = f64::NEG_INFINITY;
                    for ((text, &c), &upper) in bound_text.iter().zip(&b.cumulative).zip(&b.bounds)
                    {
                        // Cumulative even for a malformed snapshot.
                        last = last.max(c).min(b.count);
                        out.series(name, "_bucket", labels, Some(("le", text)), last as f64);
                        out.exemplars(bucket_exemplar(&h.exemplars, lower, upper).into_iter());
                        lower = upper;
                    }
                    out.series(
                        name,
                        "_bucket",
                        labels,
                        Some(("le", "+Inf")),
                        b.count as f64,
                    );
                    out.exemplars(bucket_exemplar(&h.exemplars, lower, f64::INFINITY).into_iter());
                    b.count
                }
                None if native.is_some() => life.count,
                None => {
                    let q = h.summary.window.quantiles;
                    for (level, text) in Quantiles::LEVELS.into_iter().zip(QUANTILE_LABELS) {
                        let v = q.and_then(|q| q.get(level)).unwrap_or(f64::NAN);
                        out.series(name, "", labels, Some(("quantile", text)), v);
                        out.close();
                    }
                    life.count
                }
            };
            match &native {
                // A native histogram is one series of its own; with bounds
                // the classic series above go too.
                Some(n) => {
                    out.native(name, labels, n, life.sum);
                    out.exemplars(h.exemplars.iter());
                    if h.summary.buckets.is_some() {
                        out.series(name, "_sum", labels, None, life.sum);
                        out.close();
                        out.series(name, "_count", labels, None, count as f64);
                        out.close();
                    }
                }
                None => {
                    out.series(name, "_sum", labels, None, life.sum);
                    out.close();
                    out.series(name, "_count", labels, None, count as f64);
                    out.close();
                }
            }
        }
        out.close();
        self.last_len = out.w.len();
        Batch {
            bytes: out.w.into_vec(),
            series: out.series,
            duplicates: out.duplicates,
        }
    }
}

/// The kind of family a series belongs to, for name claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Family {
    /// Names a family exposes, as suffixes of its base: the same claims as
    /// the text renderer's, so both outputs leave out the same families.
    pub(super) fn suffixes(self) -> &'static [&'static str] {
        match self {
            Family::Counter => &["", "_total", "_created"],
            Family::Gauge => &[""],
            Family::Summary => &["", "_sum", "_count", "_created"],
            Family::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
        }
    }
}

/// Exposed names taken by earlier families. A family whose names clash
/// with another's (a counter `x` and a gauge `x_total`) is left out whole,
/// as in the text formats: sending both would give the receiver two
/// values for one series at one time, and it would refuse the request.
#[derive(Debug, Default)]
pub(super) struct Claims {
    pub(super) owner: HashMap<String, (Family, Arc<str>)>,
    /// The family of the previous series and the verdict on it: the series
    /// of a family are contiguous, so this settles nearly every lookup.
    pub(super) last: Option<(Family, Arc<str>, bool)>,
}

impl Claims {
    pub(super) fn allow(&mut self, family: Family, name: &Arc<str>, base: &str) -> bool {
        if let Some((f, n, verdict)) = &self.last {
            if *f == family && n == name {
                return *verdict;
            }
        }
        let mut key = String::new();
        let mut verdict = true;
        for suffix in family.suffixes() {
            key.clear();
            key.push_str(base);
            key.push_str(suffix);
            if let Some((f, n)) = self.owner.get(&key) {
                if *f != family || n != name {
                    verdict = false;
                    break;
                }
            }
        }
        if verdict {
            for suffix in family.suffixes() {
                key.clear();
                key.push_str(base);
                key.push_str(suffix);
                self.owner
                    .entry(key.clone())
                    .or_insert_with(|| (family, Arc::clone(name)));
            }
        }
        self.last = Some((family, Arc::clone(name), verdict));
        verdict
    }
}

pub(super) struct SeriesOut<'a> {
    pub(super) w: ProtoWriter,
    pub(super) series: Vec<Span>,
    pub(super) pairs: Vec<(&'a str, &'a str)>,
    pub(super) name: String,
    pub(super) external: &'a [(String, String)],
    pub(super) ts: i64,
    pub(super) open: Option<Open>,
    /// A series' own label equals an external label: two series may now
    /// carry one label set, and each closed series is looked up in `seen`.
    pub(super) shadowing: bool,
    /// Hash of a series' label bytes → the series with that hash.
    pub(super) seen: HashMap<u64, Vec<usize>>,
    pub(super) duplicates: u64,
}

impl<'a> SeriesOut<'a> {
    /// Opens one `TimeSeries` with one sample; close it with
    /// [`close`](Self::close) or after its [`exemplars`](Self::exemplars).
    pub(super) fn series(
        &mut self,
        base: &str,
        suffix: &str,
        labels: &'a Labels,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        self.open(base, suffix, labels, extra);
        let w = &mut self.w;
        let sample = w.begin(field::SAMPLES);
        w.double(field::SAMPLE_VALUE, value);
        w.int64(field::SAMPLE_TIMESTAMP, self.ts);
        w.end(sample);
    }

    /// Opens one `TimeSeries` with one native histogram sample; close it
    /// like [`series`](Self::series).
    pub(super) fn native(&mut self, base: &str, labels: &'a Labels, n: &NativeBuckets, sum: f64) {
        self.open(base, "", labels, None);
        let w = &mut self.w;
        // Sized ahead (a guess, about one byte per delta) so that the
        // message, usually past 127 bytes, is not moved when closed.
        let h = w.begin_sized(field::HISTOGRAMS, 48 + 6 * n.spans.len() + n.deltas.len());
        w.uint64(field::HISTOGRAM_COUNT_INT, n.count);
        w.double(field::HISTOGRAM_SUM, sum);
        w.sint64(field::HISTOGRAM_SCHEMA, i64::from(n.scale));
        w.double(field::HISTOGRAM_ZERO_THRESHOLD, STATED_ZERO_THRESHOLD);
        w.uint64(field::HISTOGRAM_ZERO_COUNT_INT, n.zeros);
        for &(offset, len) in &n.spans {
            let span = w.begin(field::HISTOGRAM_POSITIVE_SPANS);
            w.sint64(field::SPAN_OFFSET, i64::from(offset));
            w.uint64(field::SPAN_LENGTH, u64::from(len));
            w.end(span);
        }
        w.packed_sint64(field::HISTOGRAM_POSITIVE_DELTAS, n.deltas.iter().copied());
        w.int64(field::HISTOGRAM_TIMESTAMP, self.ts);
        w.end(h);
    }

    /// Writes the open series' exemplars and closes it.
    pub(super) fn exemplars<'e>(&mut self, exemplars: impl Iterator<Item = &'e Exemplar>) {
        let w = &mut self.w;
        for e in exemplars {
            let m = w.begin(field::EXEMPLARS);
            for (k, v) in e.labels.iter() {
                write_label(w, k, v);
            }
            w.double(field::EXEMPLAR_VALUE, e.value);
            w.int64(
                field::EXEMPLAR_TIMESTAMP,
                i64::try_from(e.timestamp_unix_ms).unwrap_or(i64::MAX),
            );
            w.end(m);
        }
        self.close();
    }

    /// Writes one series' labels: its own, the external ones, `__name__`
    /// and the exporter's (`quantile`, `le`), sorted by name.
    fn open(&mut self, base: &str, suffix: &str, labels: &'a Labels, extra: Option<(&str, &str)>) {
        self.name.clear();
        self.name.push_str(base);
        self.name.push_str(suffix);
        let extra_key = extra.map(|(k, _)| k);
        self.pairs.clear();
        // The exporter's own label (`quantile`, `le`) wins over a series
        // label of that name, and a series label over an external one.
        // Hot path: both lists are sorted by name (a `Labels` always is),
        // so they are merged, not sorted again.
        let mut external = self
            .external
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| Some(*k) != extra_key)
            .peekable();
        for (k, v) in labels.iter().filter(|(k, _)| Some(*k) != extra_key) {
            while let Some(e) = external.next_if(|(ek, _)| *ek < k) {
                self.pairs.push(e);
            }
            if let Some((_, ev)) = external.next_if(|(ek, _)| *ek == k) {
                // `{job="a"}` under an external `job="a"` is now the
                // label set of a series without `job`.
                self.shadowing |= ev == v;
            }
            self.pairs.push((k, v));
        }
        self.pairs.extend(external);
        // `__name__` and the exporter's label, merged in by name.
        let mut specials = [("__name__", self.name.as_str()), extra.unwrap_or(("", ""))];
        let specials = match extra {
            Some(_) => {
                specials.sort_unstable_by(|a, b| a.0.cmp(b.0));
                &specials[..]
            }
            None => &specials[..1],
        };

        let w = &mut self.w;
        let start = w.len();
        let entry = w.begin(field::TIMESERIES);
        let labels_start = w.len();
        let mut next_special = 0;
        for &(k, v) in &self.pairs {
            while next_special < specials.len() && specials[next_special].0 < k {
                write_label(w, specials[next_special].0, specials[next_special].1);
                next_special += 1;
            }
            write_label(w, k, v);
        }
        for &(k, v) in &specials[next_special..] {
            write_label(w, k, v);
        }
        self.open = Some(Open {
            start,
            entry,
            labels: (labels_start, w.len()),
        });
    }

    /// Closes the open series and notes where it is.
    pub(super) fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let w = &mut self.w;
        let before = w.len();
        w.end(open.entry);
        // `end` may have moved the entry right to lengthen its prefix.
        let shift = w.len() - before;
        let span = Span {
            entry: (open.start, w.len()),
            labels: (open.labels.0 + shift, open.labels.1 + shift),
        };
        // Once a series' own label has shadowed an external one, two
        // series may carry one label set: the receiver would keep one of
        // the two values. The later series is left out and counted.
        if self.shadowing {
            if self.seen.is_empty() {
                for (i, earlier) in self.series.iter().enumerate() {
                    let h = label_hash(&w.as_bytes()[earlier.labels.0..earlier.labels.1]);
                    self.seen.entry(h).or_default().push(i);
                }
            }
            let bytes = &w.as_bytes()[span.labels.0..span.labels.1];
            let h = label_hash(bytes);
            let twin = self.seen.get(&h).is_some_and(|same| {
                same.iter().any(|&i| {
                    let (a, b) = self.series[i].labels;
                    w.as_bytes()[a..b] == *bytes
                })
            });
            if twin {
                w.truncate(span.entry.0);
                self.duplicates += 1;
                return;
            }
            self.seen.entry(h).or_default().push(self.series.len());
        }
        self.series.push(span);
    }
}

/// A series being written.
pub(super) struct Open {
    start: usize,
    entry: Nested,
    labels: (usize, usize),
}

fn label_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

pub(super) fn write_label(w: &mut ProtoWriter, name: &str, value: &str) {
    let label = w.begin(field::LABELS);
    w.string(field::LABEL_NAME, name);
    w.string(field::LABEL_VALUE, value);
    w.end(label);
}
