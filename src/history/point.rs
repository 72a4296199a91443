//! One interval of one series at one level, and how intervals merge.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::dense::Dense;
use super::varint::{get_varint, put_varint};

use super::dense::position16;
use crate::metrics::layout;
use crate::metrics::sparse::SparseBuckets;
use crate::snapshot::{CounterValue, MetricKind};

/// Two increases of one counter: whole ones stay whole (saturating), any
/// float makes the sum a float.
pub(crate) fn add_increases(a: CounterValue, b: CounterValue) -> CounterValue {
    match (a, b) {
        (CounterValue::Int(a), CounterValue::Int(b)) => CounterValue::Int(a.saturating_add(b)),
        (a, b) => CounterValue::Float(a.as_f64() + b.as_f64()),
    }
}

/// What one interval of a series holds, by kind. Merging two adjacent
/// intervals gives exactly what one interval covering both would hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Aggregate {
    /// How much a counter grew (a float for a plug-in's float total), and
    /// how many resets (restarts) it went through while doing so.
    Counter { increase: CounterValue, resets: u32 },
    /// Gauge readings: how many, their sum, extremes and the last one.
    Gauge {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        last: f64,
    },
    /// Values a histogram recorded in the interval: how many, their exact
    /// sum, and their distribution when the snapshots carried bucket state.
    Histogram {
        count: u64,
        sum: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buckets: Option<Dist>,
    },
}

impl Aggregate {
    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            Aggregate::Counter { .. } => MetricKind::Counter,
            Aggregate::Gauge { .. } => MetricKind::Gauge,
            Aggregate::Histogram { .. } => MetricKind::Histogram,
        }
    }

    pub(crate) fn gauge(value: f64) -> Self {
        Aggregate::Gauge {
            count: 1,
            sum: value,
            min: value,
            max: value,
            last: value,
        }
    }

    /// Adds a later interval of the same series. Intervals of another kind
    /// are ignored (the store never mixes kinds in one series).
    pub(crate) fn merge(&mut self, later: &Aggregate) {
        match (self, later) {
            (
                Aggregate::Counter { increase, resets },
                Aggregate::Counter {
                    increase: i,
                    resets: r,
                },
            ) => {
                *increase = add_increases(*increase, *i);
                *resets = resets.saturating_add(*r);
            }
            (
                Aggregate::Gauge {
                    count,
                    sum,
                    min,
                    max,
                    last,
                },
                Aggregate::Gauge {
                    count: c,
                    sum: s,
                    min: lo,
                    max: hi,
                    last: l,
                },
            ) => {
                *count = count.saturating_add(*c);
                *sum += s;
                *min = min.min(*lo);
                *max = max.max(*hi);
                *last = *l;
            }
            (
                Aggregate::Histogram {
                    count,
                    sum,
                    buckets,
                },
                Aggregate::Histogram {
                    count: c,
                    sum: s,
                    buckets: b,
                },
            ) => {
                // A distribution is only kept while every merged interval
                // had one (or recorded nothing): otherwise quantiles would
                // silently leave values out.
                *buckets = match (buckets.take(), b) {
                    (Some(mine), Some(theirs)) => {
                        // Merged into dense counts: each later interval
                        // then costs its own buckets, not all of them.
                        let mut mine = mine.into_dense();
                        mine.zeros = mine.zeros.saturating_add(theirs.zeros());
                        for (bucket, count) in theirs.pairs() {
                            mine.add(bucket, count);
                        }
                        Some(Dist::Dense(mine))
                    }
                    (Some(mine), None) if *c == 0 => Some(mine),
                    (None, Some(theirs)) if *count == 0 => Some(theirs.clone()),
                    _ => None,
                };
                *count = count.saturating_add(*c);
                *sum += s;
            }
            _ => {}
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Aggregate::Histogram {
                buckets: Some(b), ..
            } => b.heap_bytes(),
            _ => 0,
        }
    }
}

/// One interval: where it starts (the snapshot time for raw points, the
/// aligned start for roll-ups), how many milliseconds of snapshot-to-snapshot
/// time it covers (for rates), and its aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Point {
    pub(crate) t_ms: u64,
    pub(crate) covered_ms: u64,
    pub(crate) agg: Aggregate,
}

impl Point {
    pub(crate) fn merge(&mut self, later: &Point) {
        self.covered_ms = self.covered_ms.saturating_add(later.covered_ms);
        self.agg.merge(&later.agg);
    }
}

/// The distribution of an interval: the sparse difference of two readings
/// (a raw interval, or read from disk), dense while intervals are merged
/// into it, or packed once finished: each non-empty bucket is the gap from
/// the previous one and its count, as LEB128 varints, about 2 to 4 bytes a
/// bucket instead of 16.
///
/// Inside the store buckets are positions of the native layout (scale 6):
/// position `p` is bucket `layout::MIN_INDEX + p`, which fits a `u16`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dist {
    Open(SparseBuckets),
    Dense(Dense),
    Packed { zeros: u64, bytes: Box<[u8]> },
}

impl Dist {
    /// The zero count and the packed pairs, packing an open distribution.
    #[cfg(test)]
    pub(crate) fn packed_parts(&self) -> (u64, std::borrow::Cow<'_, [u8]>) {
        use std::borrow::Cow;
        match self {
            Dist::Packed { zeros, bytes } => (*zeros, Cow::Borrowed(bytes)),
            other => (other.zeros(), Cow::Owned(pack_pairs(other.pairs()))),
        }
    }

    /// Appends the packed pairs to `out`.
    pub(crate) fn write_packed(&self, out: &mut Vec<u8>) {
        match self {
            Dist::Packed { bytes, .. } => out.extend_from_slice(bytes),
            other => put_pairs(out, other.pairs()),
        }
    }

    /// A finished distribution from its zero count and packed pairs.
    pub(crate) fn from_packed(zeros: u64, pairs: &[u8]) -> Self {
        Dist::Packed {
            zeros,
            bytes: pairs.into(),
        }
    }

    fn pairs(&self) -> Pairs<'_> {
        match self {
            Dist::Open(b) => Pairs::Open(b.counts.iter()),
            Dist::Dense(d) => {
                let (first, counts) = d.range();
                Pairs::Dense {
                    first,
                    counts,
                    at: 0,
                }
            }
            Dist::Packed { bytes, .. } => Pairs::Packed {
                bytes,
                at: 0,
                bucket: 0,
            },
        }
    }

    pub(crate) fn zeros(&self) -> u64 {
        match self {
            Dist::Open(b) => b.zeros,
            Dist::Dense(d) => d.zeros,
            Dist::Packed { zeros, .. } => *zeros,
        }
    }

    #[cfg(test)]
    pub(crate) fn to_sparse(&self) -> SparseBuckets {
        match self {
            Dist::Open(b) => b.clone(),
            other => SparseBuckets {
                zeros: other.zeros(),
                counts: other.indexed().collect(),
                ..SparseBuckets::default()
            },
        }
    }

    /// Dense counts, to merge more intervals into.
    pub(crate) fn into_dense(self) -> Dense {
        match self {
            Dist::Dense(d) => d,
            other => Dense::from_pairs(other.zeros(), other.pairs()),
        }
    }

    /// The non-empty buckets as scale-6 indexes, ascending.
    fn indexed(&self) -> impl Iterator<Item = (i32, u64)> + Clone + '_ {
        self.pairs()
            .map(|(p, c)| (layout::index_at(usize::from(p)), c))
    }

    /// Nearest-rank quantile, as [`SparseBuckets::quantile`], without
    /// unpacking.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        layout::quantile(self.zeros(), self.indexed(), layout::SCALE, q)
    }

    pub(crate) fn min_bound(&self) -> Option<f64> {
        if self.zeros() > 0 {
            return Some(0.0);
        }
        self.indexed()
            .next()
            .map(|(i, _)| layout::lower_bound(i, layout::SCALE))
    }

    pub(crate) fn max_bound(&self) -> Option<f64> {
        match self.indexed().last() {
            Some((i, _)) => Some(layout::upper_bound(i, layout::SCALE)),
            None => (self.zeros() > 0).then_some(0.0),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Dist::Open(b) => b.heap_bytes(),
            Dist::Dense(d) => d.heap_bytes(),
            Dist::Packed { bytes, .. } => bytes.len(),
        }
    }
}

/// On disk a distribution is `{"scale": 6, "zeros": n, "packed": "<base64>"}`:
/// the packed pairs (bucket positions, see [`Dist`]) in base64, about a
/// third of the size of a JSON list of `[bucket, count]` pairs and quicker
/// to read back. The list form (`"counts"`, as in [`SparseBuckets`]) is
/// read too. Files written before the exponential layout have no `scale`:
/// their log-linear buckets are migrated as [`SparseBuckets`] describes
/// (each to the exponential bucket of its midpoint).
impl Serialize for Dist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut packed = Vec::new();
        self.write_packed(&mut packed);
        DiskDist {
            scale: Some(i64::from(layout::SCALE)),
            zeros: self.zeros(),
            counts: None,
            packed: Some(base64::encode(&packed)),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let disk = DiskDist::deserialize(d)?;
        let legacy = match disk.scale {
            None => true,
            Some(s) if s == i64::from(layout::SCALE) => false,
            Some(s) => {
                return Err(serde::de::Error::custom(format!(
                    "stored buckets at scale {s}, not {}",
                    layout::SCALE
                )))
            }
        };
        if let Some(text) = disk.packed {
            let bytes = base64::decode(&text)
                .ok_or_else(|| serde::de::Error::custom("packed buckets are not base64"))?;
            let dist = Dist::from_packed(disk.zeros, &bytes);
            if !dist.well_formed(legacy) {
                return Err(serde::de::Error::custom("packed buckets out of order"));
            }
            if legacy {
                return Ok(Dist::Open(migrated(disk.zeros, dist.pairs())));
            }
            return Ok(dist);
        }
        let counts = disk.counts.unwrap_or_default();
        if legacy {
            let old = counts
                .iter()
                .filter_map(|&(p, c)| Some((u16::try_from(p).ok()?, c)));
            return Ok(Dist::Open(migrated(disk.zeros, old)));
        }
        let mut b = SparseBuckets {
            zeros: disk.zeros,
            counts: counts
                .into_iter()
                .map(|(i, c)| (i32::try_from(i).unwrap_or(i32::MAX), c))
                .collect(),
            ..SparseBuckets::default()
        };
        b.normalize();
        Ok(Dist::Open(b))
    }
}

/// Buckets of the log-linear layout (files from before the exponential
/// one), each moved to the exponential bucket of its midpoint.
fn migrated(zeros: u64, old: impl Iterator<Item = (u16, u64)>) -> SparseBuckets {
    let mut b = SparseBuckets {
        zeros,
        counts: old
            .filter_map(|(p, c)| Some((layout::legacy_index(p)?, c)))
            .collect(),
        ..SparseBuckets::default()
    };
    b.normalize();
    b
}

#[derive(Serialize, Deserialize)]
struct DiskDist {
    /// The layout's scale; absent in files of the log-linear layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scale: Option<i64>,
    #[serde(default)]
    zeros: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counts: Option<Vec<(i64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    packed: Option<String>,
}

impl Dist {
    /// True when the packed pairs read to the end, ascending, within the
    /// layout (`legacy`: the log-linear one), without empty buckets.
    fn well_formed(&self, legacy: bool) -> bool {
        let end = if legacy { 80 * 64 } else { layout::POSITIONS };
        let Dist::Packed { bytes, .. } = self else {
            return true;
        };
        let mut pairs = Pairs::Packed {
            bytes,
            at: 0,
            bucket: 0,
        };
        let mut last = None;
        let mut read = 0;
        while let Some((bucket, count)) = pairs.next() {
            if count == 0 || usize::from(bucket) >= end || last.is_some_and(|l| bucket <= l) {
                return false;
            }
            last = Some(bucket);
            if let Pairs::Packed { at, .. } = pairs {
                read = at;
            }
        }
        read == bytes.len()
    }
}

/// Standard base64 without padding, for packed distributions on disk.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for group in bytes.chunks(3) {
            let n = group
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            }
        }
        out
    }

    /// `None` for a character outside the alphabet or a dangling one.
    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        let value = |c: u8| ALPHABET.iter().position(|a| *a == c).map(|v| v as u32);
        let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
        for group in text.as_bytes().chunks(4) {
            if group.len() == 1 {
                return None;
            }
            let mut n = 0u32;
            for (i, c) in group.iter().enumerate() {
                n |= value(*c)? << (18 - 6 * i);
            }
            for i in 0..group.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_every_length_and_refuses_junk() {
            let data: Vec<u8> = (0..=255).collect();
            for len in 0..40 {
                let text = super::encode(&data[..len]);
                assert_eq!(text.len(), (len * 4).div_ceil(3));
                assert_eq!(super::decode(&text).unwrap(), &data[..len]);
            }
            assert_eq!(super::encode(b"Man"), "TWFu");
            assert_eq!(super::encode(b"Ma"), "TWE");
            assert_eq!(super::decode("TWFu").unwrap(), b"Man");
            assert_eq!(super::decode("TW=u"), None);
            assert_eq!(super::decode("TWFuT"), None);
        }
    }
}

#[derive(Clone)]
enum Pairs<'a> {
    Open(std::slice::Iter<'a, (i32, u64)>),
    Dense {
        first: usize,
        counts: &'a [u64],
        at: usize,
    },
    Packed {
        bytes: &'a [u8],
        at: usize,
        bucket: u16,
    },
}

impl Iterator for Pairs<'_> {
    type Item = (u16, u64);

    fn next(&mut self) -> Option<(u16, u64)> {
        match self {
            // Open buckets are normalised scale-6 ones, within the range.
            Pairs::Open(it) => it.find_map(|&(i, c)| Some((position16(i)?, c))),
            Pairs::Dense { first, counts, at } => {
                while let Some(&count) = counts.get(*at) {
                    *at += 1;
                    if count > 0 {
                        // The range stays within the layout's u16 indexes.
                        return Some(((*first + *at - 1) as u16, count));
                    }
                }
                None
            }
            Pairs::Packed { bytes, at, bucket } => {
                let gap = get_varint(bytes, at)?;
                let count = get_varint(bytes, at)?;
                *bucket = bucket.wrapping_add(u16::try_from(gap).ok()?);
                Some((*bucket, count))
            }
        }
    }
}

/// Each non-empty bucket as the gap from the previous one and its count,
/// LEB128 varints.
#[cfg(test)]
fn pack_pairs(counts: impl Iterator<Item = (u16, u64)>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(counts.size_hint().0 * 3);
    put_pairs(&mut bytes, counts);
    bytes
}

fn put_pairs(out: &mut Vec<u8>, counts: impl Iterator<Item = (u16, u64)>) {
    let mut last = 0u16;
    for (bucket, count) in counts {
        put_varint(out, u64::from(bucket.wrapping_sub(last)));
        put_varint(out, count);
        last = bucket;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_distributions_answer_like_open_ones() {
        let mut b = SparseBuckets::default();
        b.record(0.0);
        for i in 1..5000u32 {
            b.record(f64::from(i).powf(1.7) * 1e-6);
        }
        for _ in 0..300 {
            b.record(1e9); // large counts in one bucket
        }
        let open = Dist::Open(b.clone());
        let (zeros, pairs) = open.packed_parts();
        let packed = Dist::from_packed(zeros, &pairs);
        assert!(packed.heap_bytes() * 4 < b.heap_bytes());
        assert_eq!(packed.to_sparse(), b);
        for q in [0.0001, 0.5, 0.9, 0.95, 0.99, 1.0] {
            assert_eq!(packed.quantile(q), open.quantile(q), "{q}");
        }
        assert_eq!(packed.min_bound(), open.min_bound());
        assert_eq!(packed.max_bound(), open.max_bound());
        // On disk: packed in base64, about a third of the list form.
        let json = serde_json::to_string(&packed).unwrap();
        assert_eq!(serde_json::from_str::<Dist>(&json).unwrap(), packed);
        assert_eq!(serde_json::to_string(&open).unwrap(), json);
        let list = serde_json::to_string(&b).unwrap();
        assert!(
            json.len() * 3 < list.len(),
            "{} vs {}",
            json.len(),
            list.len()
        );
        // The list form still reads (normalised).
        let shuffled = r#"{"scale":6,"zeros":1,"counts":[[900,2],[3,1],[900,1]]}"#;
        let d: Dist = serde_json::from_str(shuffled).unwrap();
        assert_eq!(d.to_sparse().counts, [(3, 1), (900, 3)]);
    }

    #[test]
    fn files_of_the_log_linear_layout_are_migrated() {
        // Log-linear positions 1920 and 1952: [1, 1 + 1/64) and
        // [1.5, 1.5 + 1/64), midpoints in exponential buckets 1 and 38.
        let list = r#"{"zeros":1,"counts":[[1952,2],[1920,1]]}"#;
        let d: Dist = serde_json::from_str(list).unwrap();
        assert_eq!(d.to_sparse().counts, [(1, 1), (38, 2)]);
        assert_eq!(d.zeros(), 1);
        let mut bytes = Vec::new();
        put_pairs(&mut bytes, [(1920u16, 1u64), (1952, 2)].into_iter());
        let packed = format!(r#"{{"zeros":1,"packed":"{}"}}"#, base64::encode(&bytes));
        let p: Dist = serde_json::from_str(&packed).unwrap();
        assert_eq!(p.to_sparse(), d.to_sparse());
        // Written back, it is in the exponential layout, and reads as such.
        let again: Dist = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again.to_sparse(), d.to_sparse());
        assert!(serde_json::to_string(&p)
            .unwrap()
            .starts_with(r#"{"scale":6,"#));
        // A scale the store does not keep is refused.
        assert!(serde_json::from_str::<Dist>(r#"{"scale":3,"zeros":1}"#).is_err());
    }

    #[test]
    fn malformed_packed_buckets_are_refused() {
        let mut bytes = Vec::new();
        put_pairs(&mut bytes, [(5u16, 1u64), (9, 2)].into_iter());
        let good = format!(
            r#"{{"scale":6,"zeros":0,"packed":"{}"}}"#,
            base64::encode(&bytes)
        );
        assert!(serde_json::from_str::<Dist>(&good).is_ok());
        let cases = [
            // Cut in the middle of a pair.
            base64::encode(&bytes[..bytes.len() - 1]),
            // A repeated bucket (gap 0 after the first).
            base64::encode(&[5, 1, 0, 1]),
            // An empty bucket.
            base64::encode(&[5, 0]),
            // Past the layout.
            base64::encode(&[0xff, 0xff, 0x03, 1]),
            "not base64!".to_string(),
        ];
        for packed in cases {
            let json = format!(r#"{{"scale":6,"zeros":0,"packed":"{packed}"}}"#);
            assert!(serde_json::from_str::<Dist>(&json).is_err(), "{json}");
        }
    }
}
