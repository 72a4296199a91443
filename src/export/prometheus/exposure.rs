//! What every Prometheus exposition (text 0.0.4, OpenMetrics, protobuf)
//! decides the same way: which families a snapshot has and in what order,
//! which of their exposed names are free, and which series repeat an
//! earlier one. The formats differ only in how they write what this
//! module lets through.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::key::Labels;
use crate::snapshot::{HistogramSample, Snapshot};

use super::RenderReport;

/// The exposition type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FamilyType {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl FamilyType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Summary => "summary",
            FamilyType::Histogram => "histogram",
        }
    }

    /// Suffixes a family of this type exposes, the bare name included; a
    /// family is written only if none of them is taken yet.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            FamilyType::Counter => &["", "_total", "_created"],
            FamilyType::Gauge => &[""],
            FamilyType::Summary => &["", "_sum", "_count", "_created"],
            FamilyType::Histogram => &["", "_bucket", "_sum", "_count", "_created"],
        }
    }
}

/// A family about to be written: its base name (counters without
/// `_total`), type, and metadata.
pub(super) struct FamilyHeader<'a> {
    pub(super) base: &'a str,
    pub(super) kind: FamilyType,
    pub(super) help: Option<&'a str>,
    pub(super) unit: Option<&'a str>,
}

impl FamilyHeader<'_> {
    /// The unit, when the family's name ends with `_<unit>` (the only case
    /// in which OpenMetrics lets a family state one).
    pub(super) fn stated_unit(&self) -> Option<&str> {
        let unit = self.unit?;
        self.base
            .strip_suffix(unit)
            .is_some_and(|rest| rest.ends_with('_'))
            .then_some(unit)
    }
}

/// Which series of a snapshot's histogram family to expose as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HistogramRule {
    /// Text formats: a `histogram` when the metric has configured bucket
    /// bounds, else a `summary` of window quantiles.
    Text,
    /// Protobuf: also a `histogram` when the series carry exponential
    /// buckets (a native histogram).
    Native,
}

/// One family of a snapshot: its header and the indices of its series in
/// the snapshot's counters, gauges or histograms (by `header.kind`: a
/// summary or histogram family indexes `histograms`).
pub(super) struct Family<'a, 'o> {
    pub(super) header: FamilyHeader<'a>,
    pub(super) run: &'o [usize],
}

/// The claims and scratch space of one rendering.
#[derive(Default)]
pub(super) struct Exposure {
    taken: HashSet<Box<str>>,
    /// Label hash → position in the current family's run, for finding
    /// repeated series without cloning their labels.
    seen: HashMap<u64, usize, BuildHasherDefault<crate::key::PrehashedHasher>>,
    order: Vec<usize>,
    scratch: String,
}

impl Exposure {
    /// Calls `visit` for each family of `snapshot`: counters, then gauges,
    /// then histograms, each by name (the series of a family come together
    /// even in a hand-made snapshot that lists them apart). Claims start
    /// afresh.
    pub(super) fn families(
        &mut self,
        snapshot: &Snapshot,
        rule: HistogramRule,
        mut visit: impl FnMut(&mut Self, Family<'_, '_>),
    ) {
        self.taken.clear();
        // Taken out so that `self` stays free to lend to `visit`.
        let mut order = std::mem::take(&mut self.order);
        sorted_order(&snapshot.counters, |s| &s.name, &mut order);
        for run in runs(&order, |i| &*snapshot.counters[i].name) {
            let name = &snapshot.counters[run[0]].name;
            let header = header(snapshot, counter_base(name), name, FamilyType::Counter);
            visit(self, Family { header, run });
        }
        sorted_order(&snapshot.gauges, |s| &s.name, &mut order);
        for run in runs(&order, |i| &*snapshot.gauges[i].name) {
            let name = &snapshot.gauges[run[0]].name;
            let header = header(snapshot, name, name, FamilyType::Gauge);
            visit(self, Family { header, run });
        }
        sorted_order(&snapshot.histograms, |s| &s.name, &mut order);
        for run in runs(&order, |i| &*snapshot.histograms[i].name) {
            let first = &snapshot.histograms[run[0]];
            let kind = histogram_type(first, rule);
            let header = header(snapshot, &first.name, &first.name, kind);
            visit(self, Family { header, run });
        }
        self.order = order;
    }

    /// Claims the family's exposed names: false (counted in `report`) if
    /// one is already taken, in which case nothing of it may be written.
    pub(super) fn claim(&mut self, header: &FamilyHeader<'_>, report: &mut RenderReport) -> bool {
        let suffixes = header.kind.suffixes();
        for suffix in suffixes {
            self.scratch.clear();
            self.scratch.push_str(header.base);
            self.scratch.push_str(suffix);
            if self.taken.contains(self.scratch.as_str()) {
                report.clashing_families.push(header.base.to_owned());
                return false;
            }
        }
        for suffix in suffixes {
            self.scratch.clear();
            self.scratch.push_str(header.base);
            self.scratch.push_str(suffix);
            self.taken.insert(self.scratch.as_str().into());
        }
        self.seen.clear();
        report.families += 1;
        true
    }

    /// True if the labels of series `pos` of `run` repeat an earlier
    /// series' of the same run (counted in the report). Call in order of
    /// `pos`, after [`claim`](Exposure::claim).
    pub(super) fn is_duplicate<'a>(
        &mut self,
        pos: usize,
        run: &[usize],
        labels_of: impl Fn(usize) -> &'a Labels,
        report: &mut RenderReport,
    ) -> bool {
        let labels = labels_of(run[pos]);
        let hash = hash_labels(labels);
        let repeated = match self.seen.get(&hash) {
            None => {
                self.seen.insert(hash, pos);
                false
            }
            // Equal hashes: compare exactly, and scan the run on a true
            // collision, so that a distinct series is never hidden.
            Some(&at) => {
                labels_of(run[at]) == labels || run[..pos].iter().any(|&j| labels_of(j) == labels)
            }
        };
        if repeated {
            report.duplicate_series += 1;
        }
        repeated
    }

    #[cfg(test)]
    pub(super) fn pretend_seen(&mut self, hash: u64, pos: usize) {
        self.seen.insert(hash, pos);
    }
}

fn header<'a>(
    snapshot: &'a Snapshot,
    base: &'a str,
    name: &str,
    kind: FamilyType,
) -> FamilyHeader<'a> {
    let info = snapshot.metadata(name);
    FamilyHeader {
        base,
        kind,
        help: info.and_then(|m| m.help.as_deref()),
        unit: info.and_then(|m| m.unit.as_deref()),
    }
}

/// The type a histogram family is exposed as, decided by its first series
/// (the series of one metric are configured alike).
fn histogram_type(first: &HistogramSample, rule: HistogramRule) -> FamilyType {
    let native = rule == HistogramRule::Native && first.summary.lifetime_buckets.is_some();
    if first.summary.buckets.is_some() || native {
        FamilyType::Histogram
    } else {
        FamilyType::Summary
    }
}

/// The family name of a counter: its name without a trailing `_total`.
pub(crate) fn counter_base(name: &str) -> &str {
    match name.strip_suffix("_total") {
        Some(base) if !base.is_empty() => base,
        _ => name,
    }
}

/// Fills `order` with the indices of `items`, stably sorted by name.
fn sorted_order<T>(items: &[T], name: impl Fn(&T) -> &std::sync::Arc<str>, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..items.len());
    let sorted = items.windows(2).all(|w| name(&w[0]) <= name(&w[1]));
    if !sorted {
        order.sort_by(|&a, &b| name(&items[a]).cmp(name(&items[b])));
    }
}

/// Consecutive runs of `order` with the same name.
fn runs<'o, 's>(
    order: &'o [usize],
    name: impl Fn(usize) -> &'s str + 'o,
) -> impl Iterator<Item = &'o [usize]> + 'o {
    let mut rest = order;
    std::iter::from_fn(move || {
        let (&first, _) = rest.split_first()?;
        let n = name(first);
        let len = rest.iter().take_while(|&&i| name(i) == n).count();
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some(run)
    })
}

/// FNV-1a over keys and values, with separators so that `("ab","c")` and
/// `("a","bc")` differ. Collisions are resolved by an exact comparison.
pub(super) fn hash_labels(labels: &Labels) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels.iter() {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xfe]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_families_drop_one_total_suffix_but_never_everything() {
        assert_eq!(counter_base("requests_total"), "requests");
        assert_eq!(counter_base("requests"), "requests");
        assert_eq!(counter_base("a_total_total"), "a_total");
        assert_eq!(counter_base("_total"), "_total");
    }

    #[test]
    fn label_hashes_separate_keys_from_values() {
        let a = Labels::from_pairs(&[("ab", "c")]);
        let b = Labels::from_pairs(&[("a", "bc")]);
        assert_ne!(hash_labels(&a), hash_labels(&b));
    }

    #[test]
    fn a_hash_collision_never_hides_a_distinct_series() {
        let mut e = Exposure::default();
        let labels = [
            Labels::from_pairs(&[("k", "1")]),
            Labels::from_pairs(&[("k", "2")]),
            Labels::from_pairs(&[("k", "1")]),
        ];
        let run = [0, 1, 2];
        let mut report = RenderReport::default();
        // Pretend series 1 collided with series 0.
        e.pretend_seen(hash_labels(&labels[1]), 0);
        e.pretend_seen(hash_labels(&labels[0]), 0);
        assert!(!e.is_duplicate(1, &run, |j| &labels[j], &mut report));
        assert!(e.is_duplicate(2, &run, |j| &labels[j], &mut report));
        assert_eq!(report.duplicate_series, 1);
    }

    #[test]
    fn units_are_stated_only_for_names_that_end_with_them() {
        let h = |base, unit| FamilyHeader {
            base,
            kind: FamilyType::Gauge,
            help: None,
            unit: Some(unit),
        };
        assert_eq!(h("size_bytes", "bytes").stated_unit(), Some("bytes"));
        assert_eq!(h("sizebytes", "bytes").stated_unit(), None);
        assert_eq!(h("bytes", "bytes").stated_unit(), None);
    }
}
