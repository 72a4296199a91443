//! A map that keeps its entries in the order they first came, found by a
//! hash of their keys: a point set's metrics (by name and kind) and each
//! metric's points (by label set). A snapshot's order is stable from one
//! export to the next, so requests list series alike each time.
//!
//! Hot path: a snapshot's series are added one by one on every export;
//! a hash and a table insert cost less than keeping them sorted, which
//! compares label sets, string by string, at every insert (and moves the
//! entries after each one that lands in the middle).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::key::{NameHasher, PrehashedHasher};

/// Values by key, in insertion order.
#[derive(Debug, Clone)]
pub(super) struct ArrivalMap<K, V> {
    /// Each entry with the hash of its key.
    entries: Vec<(u64, K, V)>,
    /// Key hash → the first entry with that hash.
    index: HashMap<u64, usize, BuildHasherDefault<PrehashedHasher>>,
}

impl<K, V> Default for ArrivalMap<K, V> {
    fn default() -> Self {
        ArrivalMap {
            entries: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<K: PartialEq, V: PartialEq> PartialEq for ArrivalMap<K, V> {
    /// The same entries in the same order (the index follows from them).
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

fn hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = NameHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl<K: Hash + Eq, V> ArrivalMap<K, V> {
    /// Where the entry of `key` (hashing to `hash`) is.
    fn position(&self, hash: u64, key: &K) -> Option<usize> {
        let at = *self.index.get(&hash)?;
        if self.entries[at].1 == *key {
            return Some(at);
        }
        // Two keys with one hash: look at every entry, so that a distinct
        // series is never taken for another.
        self.entries.iter().position(|(_, k, _)| k == key)
    }

    fn push(&mut self, hash: u64, key: K, value: V) -> &mut V {
        self.index.entry(hash).or_insert(self.entries.len());
        self.entries.push((hash, key, value));
        let at = self.entries.len() - 1;
        &mut self.entries[at].2
    }

    /// Inserts or replaces; returns the value replaced.
    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let h = hash(&key);
        match self.position(h, &key) {
            Some(at) => Some(std::mem::replace(&mut self.entries[at].2, value)),
            None => {
                self.push(h, key, value);
                None
            }
        }
    }

    /// Room for `n` more entries.
    pub(super) fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
        self.index.reserve(n);
    }

    /// The value of `key`, inserted as the default when missing.
    pub(super) fn entry(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let h = hash(&key);
        match self.position(h, &key) {
            Some(at) => &mut self.entries[at].2,
            None => self.push(h, key, V::default()),
        }
    }

    #[cfg(test)]
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.position(hash(key), key).map(|at| &self.entries[at].2)
    }

    /// Adds `later`'s entries: those of new keys at the end, in their
    /// order, those of keys present by `both(key, mine, theirs)`.
    pub(super) fn merge(&mut self, later: ArrivalMap<K, V>, mut both: impl FnMut(&K, &mut V, V)) {
        if self.entries.is_empty() {
            *self = later;
            return;
        }
        for (h, key, value) in later.entries {
            match self.position(h, &key) {
                Some(at) => both(&key, &mut self.entries[at].2, value),
                None => {
                    self.push(h, key, value);
                }
            }
        }
    }

    /// The last entry's key and value (where a run of series of one
    /// metric goes on).
    pub(super) fn last_mut(&mut self) -> Option<(&K, &mut V)> {
        self.entries.last_mut().map(|(_, k, v)| (&*k, v))
    }
}

impl<K, V> ArrivalMap<K, V> {
    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries in insertion order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(_, l, v)| (l, v))
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, _, v)| v)
    }
}

impl<'a, K, V> IntoIterator for &'a ArrivalMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, (u64, K, V)>, fn(&'a (u64, K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(_, l, v)| (l, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Labels;

    fn labels(v: &str) -> Labels {
        Labels::from_pairs(&[("id", v)])
    }

    #[test]
    fn keeps_insertion_order_and_replaces_equal_label_sets() {
        let mut m = ArrivalMap::default();
        for (v, n) in [("10", 1), ("2", 2), ("1", 3), ("2", 4)] {
            m.insert(labels(v), n);
        }
        let got: Vec<_> = m.iter().map(|(l, n)| (l.get("id").unwrap(), *n)).collect();
        assert_eq!(got, [("10", 1), ("2", 4), ("1", 3)]);
        assert_eq!(m.get(&labels("1")), Some(&3));
        assert_eq!(m.get(&labels("3")), None);
        assert_eq!(m.get(&Labels::default()), None);
    }

    #[test]
    fn a_hash_shared_by_two_label_sets_keeps_them_apart() {
        // Forge a collision: both entries filed under one hash.
        let mut m = ArrivalMap::default();
        m.push(7, labels("a"), 1);
        m.push(7, labels("b"), 2);
        assert_eq!(m.position(7, &labels("b")), Some(1));
        assert_eq!(m.position(7, &labels("a")), Some(0));
        assert_eq!(m.position(7, &labels("c")), None);
    }

    #[test]
    fn merge_combines_equal_label_sets_and_appends_new_ones() {
        let mut a = ArrivalMap::default();
        a.insert(labels("x"), 1);
        a.insert(labels("y"), 2);
        let mut b = ArrivalMap::default();
        b.insert(labels("z"), 30);
        b.insert(labels("y"), 20);
        a.merge(b, |_, mine, theirs| *mine += theirs);
        let got: Vec<_> = a.iter().map(|(l, n)| (l.get("id").unwrap(), *n)).collect();
        assert_eq!(got, [("x", 1), ("y", 22), ("z", 30)]);
        assert_eq!(a.get(&labels("z")), Some(&30));
    }
}
