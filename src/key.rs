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

/// Prometheus style: `{method="GET",route="/"}`, nothing for no labels.
/// Quotes, backslashes and newlines in values are escaped, and so is every
/// other character a terminal would act on (control characters such as
/// ESC, and the bidirectional overrides), so that printing labels cannot
/// move the cursor, recolour the screen or reorder the text.
///
/// ```
/// let labels = vitals::Labels::from_pairs(&[("route", "/a\"b")]);
/// assert_eq!(labels.to_string(), r#"{route="/a\"b"}"#);
/// let hostile = vitals::Labels::from_pairs(&[("user", "\x1b[2J\u{202e}x\ty")]);
/// assert_eq!(hostile.to_string(), r#"{user="\x1b[2J\u{202e}x\ty"}"#);
/// assert_eq!(vitals::Labels::default().to_string(), "");
/// ```
impl std::fmt::Display for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_printable(f, k, false)?;
            f.write_str("=\"")?;
            write_printable(f, v, true)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// Writes `text` for a terminal: control characters (C0, DEL, C1) and the
/// Unicode bidirectional controls become `\n`, `\t`, `\r`, `\xNN` or
/// `\u{NNNN}`, a backslash becomes `\\`, and with `quoted`, `"` becomes
/// `\"`. Everything the human outputs print from outside data goes
/// through here.
pub(crate) fn write_printable(
    f: &mut impl std::fmt::Write,
    text: &str,
    quoted: bool,
) -> std::fmt::Result {
    let plain = |c: char| !(c.is_control() || is_bidi_control(c) || c == '\\' || c == '"');
    if text.chars().all(plain) {
        return f.write_str(text);
    }
    for c in text.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' if quoted => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() && u32::from(c) < 0x100 => write!(f, "\\x{:02x}", u32::from(c))?,
            c if c.is_control() || is_bidi_control(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    Ok(())
}

/// The Unicode characters that reorder the text around them (embeddings,
/// overrides, isolates, and the marks), which a terminal obeys.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

/// A string shown to a person: [`write_printable`] as a `Display`.
pub(crate) struct Printable<'a>(pub(crate) &'a str);

impl std::fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_printable(f, self.0, false)
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

/// What is wrong with a label name, if anything: the Prometheus rule
/// `[a-zA-Z_][a-zA-Z0-9_]*`, and no reserved `__` prefix.
pub(crate) fn label_name_problem(key: &str) -> Option<&'static str> {
    let mut chars = key.chars();
    match chars.next() {
        None => return Some("the label name is empty"),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        Some(_) => return Some("the first character must be a letter or '_'"),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Some("only ASCII letters, digits and '_' are allowed");
    }
    if key.starts_with("__") {
        return Some("names starting with '__' are reserved");
    }
    None
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
        if let Some(reason) = label_name_problem(key) {
            return invalid(reason);
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
/// Callers usually pass labels in one fixed order, often the sorted one, so
/// a positional comparison settles most lookups; otherwise each given pair
/// is searched for, and stored keys are checked back so that a borrowed set
/// with a repeated key cannot match a stored set of the same length.
#[inline]
pub(crate) fn labels_match(stored: &[(Box<str>, Box<str>)], given: &[(&str, &str)]) -> bool {
    if stored.len() != given.len() {
        return false;
    }
    if stored
        .iter()
        .zip(given)
        .all(|((sk, sv), (k, v))| str_eq(sk, k) && str_eq(sv, v))
    {
        return true;
    }
    given
        .iter()
        .all(|(k, v)| stored.iter().any(|(sk, sv)| str_eq(sk, k) && str_eq(sv, v)))
        && stored
            .iter()
            .all(|(sk, _)| given.iter().any(|(k, _)| str_eq(sk, k)))
}

/// String equality without a call to `memcmp` for the short strings labels
/// usually are (the call costs more than the comparison).
#[inline(always)]
fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |s: &[u8], at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(w)
    };
    match len {
        0 => true,
        1..=3 => a[0] == b[0] && a[len / 2] == b[len / 2] && a[len - 1] == b[len - 1],
        4..=8 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        9..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// A [`Hasher`](std::hash::Hasher) for keys that are already well-mixed
/// hashes (label-set hashes, `metrics::Key`'s precomputed hash): hashing
/// them again would be wasted work. Other input is folded in byte by byte,
/// so any other use still hashes correctly.
#[derive(Debug, Default)]
pub(crate) struct PrehashedHasher(u64);

impl std::hash::Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A [`Hasher`](std::hash::Hasher) over [`hash_bytes`], for maps keyed by
/// metric name: SipHash would cost more than the rest of a name lookup.
/// Names can come from runtime data, but the number of names is capped.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }
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
        sum = sum.wrapping_add(hash_bytes(
            seed ^ key_fingerprint(k.as_bytes()),
            v.as_bytes(),
        ));
    }
    mix(sum ^ seed, labels.len() as u64 ^ MUL)
}

/// Up to the first eight bytes and the length of a label key, unmixed:
/// `hash_bytes` mixes it with the value. Keys that share both only share a
/// hash when their values match too, and the comparison tells them apart.
#[inline(always)]
fn key_fingerprint(key: &[u8]) -> u64 {
    let len = key.len();
    let head = if len >= 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&key[..8]);
        u64::from_le_bytes(w)
    } else if len >= 4 {
        let mut a = [0u8; 4];
        let mut b = [0u8; 4];
        a.copy_from_slice(&key[..4]);
        b.copy_from_slice(&key[len - 4..]);
        u64::from(u32::from_le_bytes(a)) | (u64::from(u32::from_le_bytes(b)) << 32)
    } else if len > 0 {
        u64::from(key[0]) | (u64::from(key[len / 2]) << 8) | (u64::from(key[len - 1]) << 16)
    } else {
        0
    };
    head ^ ((len as u64) << 59)
}

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MUL2: u64 = 0xBF58_476D_1CE4_E5B9;

/// Multiplies to 128 bits and folds the halves: one multiplication mixes
/// every input bit into the result.
#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// A small-input hash in the style of wyhash and foldhash: label keys and
/// values are short, and SipHash would cost more than the rest of the lookup.
/// Tails are read as overlapping words, never copied byte by byte.
#[inline]
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let mut h = seed ^ (len as u64).wrapping_mul(MUL);
    let (a, b) = if len >= 8 {
        let mut at = 0;
        while at + 16 <= len {
            h = mix(word(at) ^ h, word(at + 8) ^ MUL2);
            at += 16;
        }
        if at + 8 <= len {
            h = mix(word(at) ^ h, MUL);
        }
        (word(len - 8), h)
    } else if len >= 4 {
        (half(0) | (half(len - 4) << 32), 0)
    } else if len > 0 {
        let b = |i: usize| u64::from(bytes[i]);
        (b(0) | (b(len / 2) << 8) | (b(len - 1) << 16), 0)
    } else {
        (0, 0)
    };
    mix(a ^ h ^ MUL2, b ^ MUL)
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
    fn short_string_equality_checks_every_byte() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "abcdefgh",
            "abcdefghi",
            "abcdefghijklmnop",
            "abcdefghijklmnopq",
        ];
        for a in words {
            for b in words {
                assert_eq!(str_eq(a, b), a == b, "{a:?} {b:?}");
            }
            // Same length, one byte changed at each position.
            for i in 0..a.len() {
                let mut changed = a.as_bytes().to_vec();
                changed[i] = b'Z';
                let changed = String::from_utf8(changed).unwrap();
                assert!(!str_eq(a, &changed), "{a:?} {changed:?}");
            }
        }
    }

    #[test]
    fn hash_separates_keys_from_values() {
        let a = hash_labels(1, &[("ab", "c")]);
        let b = hash_labels(1, &[("a", "bc")]);
        assert_ne!(a, b);
        assert_ne!(hash_labels(1, &[]), hash_labels(1, &[("", "")]));
    }
}
