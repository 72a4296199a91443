//! The metric kinds: one file each. Handles are cheap to clone and
//! `Send + Sync`; their hot paths are single atomic operations (counters,
//! gauges) or plain loads and stores on the calling thread's own counters
//! (histograms' time windows, see `writers.rs`).

pub(crate) mod counter;
pub(crate) mod exemplar;
pub(crate) mod gauge;
pub(crate) mod histogram;
pub mod layout;
pub(crate) mod sparse;
pub(crate) mod writers;

use std::cell::Cell;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Where a handle's storage lives.
///
/// Series of the global collector are never freed (the global collector lives
/// for the whole program), so their storage is leaked once and handles are
/// plain `&'static` references: cloning one copies a pointer and touches no
/// shared reference count, which matters when many threads clone the same
/// handle out of a macro call. Series of an explicit collector are freed with
/// their last handle, so those handles count references.
pub(crate) enum Storage<T: 'static> {
    Static(&'static T),
    Counted(Arc<T>),
}

impl<T: 'static> Storage<T> {
    pub(crate) fn new(value: T, leak: bool) -> Self {
        if leak {
            Storage::Static(Box::leak(Box::new(value)))
        } else {
            Storage::Counted(Arc::new(value))
        }
    }

    /// True when both handles write to the same storage.
    pub(crate) fn same(&self, other: &Self) -> bool {
        std::ptr::eq::<T>(&**self, &**other)
    }

    /// True when a handle other than this one may exist: always for leaked
    /// storage, whose copies are not counted.
    pub(crate) fn shared(&self) -> bool {
        match self {
            Storage::Static(_) => true,
            Storage::Counted(a) => Arc::strong_count(a) > 1,
        }
    }
}

impl<T: 'static> Clone for Storage<T> {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            Storage::Static(r) => Storage::Static(r),
            Storage::Counted(a) => Storage::Counted(Arc::clone(a)),
        }
    }
}

impl<T: 'static> Deref for Storage<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        match self {
            Storage::Static(r) => r,
            Storage::Counted(a) => a,
        }
    }
}

static NEXT_THREAD_INDEX: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe index. Threads get consecutive numbers on first use,
/// so the first threads to contend land on different stripes.
#[inline]
pub(crate) fn thread_index() -> usize {
    THREAD_INDEX.with(|i| {
        let v = i.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        i.set(v);
        v
    })
}

/// Moves this thread to another stripe after it collided with another thread
/// on one (the `LongAdder` probe).
#[cold]
pub(crate) fn move_thread_index() {
    THREAD_INDEX.with(|i| {
        let v = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
        i.set(v);
    });
}

/// Stripes to allocate once a metric is found contended: a power of two
/// scaled to the machine, so that each busy thread tends to own one.
pub(crate) fn stripe_count(per_cpu: usize, max: usize) -> usize {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4);
    (cpus * per_cpu).next_power_of_two().clamp(2, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_clone_shares_and_same_detects_it() {
        let a = Storage::new(5u32, false);
        let b = a.clone();
        assert!(a.same(&b));
        assert!(!a.same(&Storage::new(5u32, false)));
        let s = Storage::new(7u32, true);
        assert_eq!(*s.clone(), 7);
        assert!(s.same(&s.clone()));
    }

    #[test]
    fn threads_get_distinct_indexes() {
        let here = thread_index();
        assert_eq!(here, thread_index());
        let there = std::thread::spawn(thread_index).join().unwrap();
        assert_ne!(here, there);
        assert!(stripe_count(2, 64).is_power_of_two());
    }
}
