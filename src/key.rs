//! Metric names and label sets: validation, ordering and hashing.
//!
//! A series is identified by its metric name and its label set, where the
//! order in which labels are given does not matter. On the runtime-label hot
//! path the caller's labels are borrowed (`&[(&str, &str)]`); they are hashed
//! with an order-independent hash and compared in place, so a lookup of an
//! existing series allocates nothing. Only a new series pays for an owned,
//! sorted copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The label set of one series: `key = value` pairs, sorted by key, keys
/// unique.
///
/// Shared, not copied, between the registry and every snapshot. In JSON it is
/// an object (`{"method": "GET"}`).
///
/// ```
/// use vitals::Labels;
///
/// let labels = Labels::from_pairs(&[("route", "/a"), ("method", "GET")]);
/// assert_eq!(labels.get("method"), Some("GET"));
/// let keys: Vec<&str> = labels.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["method", "route"]);
/// assert_eq!(serde_json::to_string(&labels).unwrap(), r#"{"method":"GET","route":"/a"}"#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Labels(Arc<[(Box<str>, Box<str>)]>);

impl Labels {
    /// Builds a label set from pairs in any order. A repeated key keeps its
    /// last value. No validation: the registry validates names it registers.
    ///
    /// ```
    /// let labels = vitals::Labels::from_pairs(&[("a", "1"), ("a", "2")]);
    /// assert_eq!(labels.get("a"), Some("2"));
    /// ```
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        Labels(
            map.into_iter()
                .map(|(k, v)| (Box::from(k), Box::from(v)))
                .collect(),
        )
    }

    /// The value of `key`, if present.
    ///
    /// ```
    /// let labels = vitals::Labels::from_pairs(&[("a", "1")]);
    /// assert_eq!(labels.get("b"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// The pairs, sorted by key.
    ///
    /// ```
    /// let labels = vitals::Labels::from_pairs(&[("b", "2"), ("a", "1")]);
    /// assert_eq!(labels.iter().next(), Some(("a", "1")));
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Number of labels.
    ///
    /// ```
    /// assert_eq!(vitals::Labels::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    ///
    /// ```
    /// assert!(vitals::Labels::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn pairs(&self) -> &[(Box<str>, Box<str>)] {
        &self.0
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        ))
    }
}

/// Checks a metric name against the Prometheus rule `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn validate_metric_name(name: &str) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidMetricName {
            name: name.to_owned(),
            reason,
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return invalid("the name is empty"),
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        Some(_) => return invalid("the first character must be a letter, '_' or ':'"),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return invalid("only ASCII letters, digits, '_' and ':' are allowed");
    }
    Ok(())
}

/// Checks label keys: the Prometheus rule `[a-zA-Z_][a-zA-Z0-9_]*`, no
/// reserved `__` prefix, no repeats, and none of `reserved` (the keys an
/// exporter adds for this kind, such as `quantile` and `le` for histograms).
pub(crate) fn validate_labels(
    metric: &str,
    labels: &[(&str, &str)],
    reserved: &[&str],
) -> Result<(), Error> {
    for (i, (key, _)) in labels.iter().enumerate() {
        let invalid = |reason| {
            Err(Error::InvalidLabelName {
                metric: metric.to_owned(),
                label: (*key).to_owned(),
                reason,
            })
        };
        let mut chars = key.chars();
        match chars.next() {
            None => return invalid("the label name is empty"),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
            Some(_) => return invalid("the first character must be a letter or '_'"),
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return invalid("only ASCII letters, digits and '_' are allowed");
        }
        if key.starts_with("__") {
            return invalid("names starting with '__' are reserved");
        }
        if reserved.contains(key) {
            return invalid("this label name is reserved for the metric's kind");
        }
        if labels[..i].iter().any(|(k, _)| k == key) {
            return invalid("the label name is given twice");
        }
    }
    Ok(())
}

/// True when the borrowed labels (any order) are the stored ones.
///
/// Checking both directions keeps a borrowed set with a repeated key from
/// matching a stored set of the same length.
#[inline]
pub(crate) fn labels_match(stored: &[(Box<str>, Box<str>)], given: &[(&str, &str)]) -> bool {
    stored.len() == given.len()
        && given
            .iter()
            .all(|(k, v)| stored.iter().any(|(sk, sv)| &**sk == *k && &**sv == *v))
        && stored
            .iter()
            .all(|(sk, _)| given.iter().any(|(k, _)| &**sk == *k))
}

/// An order-independent hash of a borrowed label set.
///
/// Each pair is hashed on its own and the pair hashes are added, so
/// `[a, b]` and `[b, a]` hash alike without sorting (which would need an
/// allocation). `seed` is random per collector, so label values chosen by an
/// outside party cannot be aimed at one bucket; the cardinality limit bounds
/// any chain anyway.
#[inline]
pub(crate) fn hash_labels(seed: u64, labels: &[(&str, &str)]) -> u64 {
    let mut sum = 0u64;
    for (k, v) in labels {
        let h = hash_bytes(seed, k.as_bytes());
        sum = sum.wrapping_add(finish(hash_bytes(h, v.as_bytes())));
    }
    finish(sum ^ (labels.len() as u64))
}

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// A word-at-a-time multiplicative hash: short keys are the common case and
/// SipHash costs more than the rest of the lookup.
#[inline]
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(MUL);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(MUL)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(MUL)
            .rotate_left(29);
    }
    h
}

/// The murmur3 finaliser: spreads every input bit over the output.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_prometheus_rules() {
        for good in ["a", "_a", ":a", "http_requests_total", "a:b_c9"] {
            assert!(validate_metric_name(good).is_ok(), "{good}");
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a.b", "a{b}"] {
            assert!(
                matches!(
                    validate_metric_name(bad),
                    Err(Error::InvalidMetricName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn label_names_follow_prometheus_rules() {
        assert!(validate_labels("m", &[("a", "x"), ("_b9", "y")], &[]).is_ok());
        for bad in ["", "9a", "a:b", "__a", "a-b", "le"] {
            let err = validate_labels("m", &[(bad, "v")], &["le"]).unwrap_err();
            assert!(matches!(err, Error::InvalidLabelName { .. }), "{bad}");
        }
        let err = validate_labels("m", &[("a", "1"), ("a", "2")], &[]).unwrap_err();
        assert!(err.to_string().contains("twice"));
    }

    #[test]
    fn label_order_does_not_change_hash_or_match() {
        let a = [("method", "GET"), ("path", "/x")];
        let b = [("path", "/x"), ("method", "GET")];
        assert_eq!(hash_labels(7, &a), hash_labels(7, &b));
        let owned = Labels::from_pairs(&a);
        let owned = owned.pairs();
        assert!(labels_match(owned, &b));
        assert!(!labels_match(owned, &[("method", "GET"), ("path", "/y")]));
        assert!(!labels_match(
            owned,
            &[("method", "GET"), ("method", "GET")]
        ));
        assert!(!labels_match(owned, &[("method", "GET")]));
    }

    #[test]
    fn hash_separates_keys_from_values() {
        let a = hash_labels(1, &[("ab", "c")]);
        let b = hash_labels(1, &[("a", "bc")]);
        assert_ne!(a, b);
        assert_ne!(hash_labels(1, &[]), hash_labels(1, &[("", "")]));
    }
}
