//! What exporters derive from a series' lifetime bucket list, worked out
//! once per list: snapshots of a series that did not move share the list
//! (`Arc`), and with it what was derived from it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::metrics::sparse::SparseBuckets;

/// The lifetime list cut to the exporters' default bucket limit, kept
/// beside the list it was cut from.
///
/// Made afresh each time the collector rewrites a series' lifetime list,
/// and shared by every snapshot that holds that list; filled by the first
/// exporter that asks (OTLP, remote write and the protobuf scrape all cut
/// to [`DEFAULT_MAX_BUCKETS`](crate::layout::DEFAULT_MAX_BUCKETS) by
/// default), or by the collector when an exporter asked for the cut of
/// the series' previous list. Not data: never serialised, and equal to
/// any other, so a summary compares and prints by its data alone.
#[derive(Clone, Default)]
pub(crate) struct LifetimeMemo(Option<Arc<MemoCell>>);

struct MemoCell {
    /// The list it was made for, weakly: the memo never keeps a list's
    /// counts alive (a summary whose list was dropped frees them), while
    /// the allocation it points to stays, so that no other list can come
    /// to have its address. A list is the one only when it is this very
    /// allocation.
    of: Weak<SparseBuckets>,
    fitted: OnceLock<Arc<SparseBuckets>>,
    /// An exporter asked for the cut (the collector filling the memo does
    /// not count): the collector then cuts the series' next list too.
    asked: AtomicBool,
}

impl LifetimeMemo {
    /// An empty memo for `list`.
    pub(crate) fn new(list: &Arc<SparseBuckets>) -> Self {
        LifetimeMemo(Some(Arc::new(MemoCell {
            of: Arc::downgrade(list),
            fitted: OnceLock::new(),
            asked: AtomicBool::new(false),
        })))
    }

    /// `list` fitted by `fit`: kept the first time and handed out after,
    /// when `list` is the list this memo was made for; else worked out and
    /// not kept (a summary whose list was replaced, changed or merged).
    pub(crate) fn fitted(
        &self,
        list: &Arc<SparseBuckets>,
        fit: impl FnOnce() -> SparseBuckets,
    ) -> Arc<SparseBuckets> {
        match &self.0 {
            Some(cell) if std::ptr::eq(cell.of.as_ptr(), Arc::as_ptr(list)) => {
                cell.asked.store(true, Ordering::Relaxed);
                Arc::clone(cell.fitted.get_or_init(|| Arc::new(fit())))
            }
            _ => Arc::new(fit()),
        }
    }

    /// True when an exporter asked for the cut of this memo's list.
    pub(crate) fn asked(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| c.asked.load(Ordering::Relaxed))
    }

    /// Keeps `fitted` as the cut of this memo's list, worked out by its
    /// maker (nothing when the memo is empty or already holds a cut).
    pub(crate) fn keep(&self, fitted: Arc<SparseBuckets>) {
        if let Some(cell) = &self.0 {
            let _ = cell.fitted.set(fitted);
        }
    }

    /// The cut kept, if any: for the maker of the next list's memo to
    /// bring up to date.
    pub(crate) fn cut(&self) -> Option<Arc<SparseBuckets>> {
        self.0.as_ref()?.fitted.get().cloned()
    }

    /// The bytes of the fitted list kept, if any.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0
            .as_ref()
            .and_then(|c| c.fitted.get())
            .map_or(0, |f| f.heap_bytes())
    }
}

impl PartialEq for LifetimeMemo {
    /// Always: a memo is derived, not data.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for LifetimeMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LifetimeMemo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(counts: Vec<(i32, u64)>) -> Arc<SparseBuckets> {
        Arc::new(SparseBuckets {
            scale: 6,
            zeros: 0,
            counts,
        })
    }

    fn fit(list: &SparseBuckets, max: usize) -> SparseBuckets {
        let mut b = list.clone();
        b.fit(max);
        b
    }

    #[test]
    fn the_list_it_was_made_for_is_fitted_once() {
        let a = list(vec![(1, 2), (700, 3)]);
        let memo = LifetimeMemo::new(&a);
        let mut calls = 0;
        let first = memo.fitted(&a, || {
            calls += 1;
            fit(&a, 2)
        });
        let second = memo.fitted(&a, || {
            calls += 1;
            fit(&a, 2)
        });
        assert_eq!(calls, 1);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.count(), 5);
        assert!(memo.heap_bytes() > 0);
    }

    #[test]
    fn another_list_even_with_equal_counts_is_fitted_apart_and_not_kept() {
        let a = list(vec![(1, 2)]);
        let b = list(vec![(1, 2)]);
        let memo = LifetimeMemo::new(&a);
        let from_b = memo.fitted(&b, || fit(&b, 160));
        assert_eq!(memo.heap_bytes(), 0);
        // A changed copy of the list is another `Arc`: not the memo's.
        let mut c = Arc::clone(&a);
        Arc::make_mut(&mut c).counts.push((5, 1));
        let from_c = memo.fitted(&c, || fit(&c, 160));
        assert_eq!((from_b.count(), from_c.count()), (2, 3));
        assert_eq!(
            LifetimeMemo::default().fitted(&a, || fit(&a, 160)).count(),
            2
        );
    }
}
