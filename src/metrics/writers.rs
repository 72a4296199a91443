//! Writer slots: a small number a thread holds while it lives, so that
//! per-thread storage indexed by it has exactly one writer at a time.
//!
//! A histogram's time window keeps one stripe of counters per writer slot
//! (see `histogram/time.rs`). Because no two live threads hold the same
//! slot, the stripe's owner updates it with plain loads and stores, no
//! locked instruction. A thread takes the lowest free slot on its first
//! write and gives it back when it exits (a thread-local destructor); the
//! next thread to take it continues the same counters. Threads that find
//! every slot taken get `None` and use the atomic path, and try again every
//! 1,024 writes; threads that write while their thread-locals are being
//! destroyed get `None` for good.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Not asked for a slot yet.
const UNASSIGNED: usize = usize::MAX;
/// The thread is ending (or gave its slot back): atomic path for good.
const NONE: usize = usize::MAX - 1;
/// Every slot was taken: atomic path, asking again now and then.
const NONE_FREE: usize = usize::MAX - 2;
/// Writes on the atomic path between two asks for a free slot.
const RETRY_EVERY: u32 = 1024;

/// One bit per slot: taken.
static TAKEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's slot, `UNASSIGNED` or `NONE`: no destructor, so
    /// reading it is one load.
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    /// Writes since the last ask, while every slot was taken.
    static SINCE_ASKED: Cell<u32> = const { Cell::new(0) };
    /// Gives the slot back when the thread exits.
    static RELEASE: Release = const { Release };
}

struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let slot = SLOT.with(|s| s.replace(NONE));
        if slot < 64 {
            // Release: the next holder's claim (Acquire) sees every store
            // this thread made to the stripes of this slot.
            TAKEN.fetch_and(!(1u64 << slot), Ordering::Release);
        }
    }
}

/// How many writer slots there are: twice the CPUs, a power of two, at
/// least 8 and at most 64. Fixed for the life of the process.
pub(crate) fn writer_slots() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| super::stripe_count(2, 64).max(8))
}

/// This thread's writer slot (below [`writer_slots`]), or `None`: use the
/// atomic path.
#[inline]
pub(crate) fn writer_slot() -> Option<usize> {
    let slot = SLOT.with(Cell::get);
    if slot < 64 {
        Some(slot)
    } else if slot == UNASSIGNED {
        claim()
    } else if slot == NONE_FREE {
        ask_again()
    } else {
        None
    }
}

/// A thread that found every slot taken asks again every
/// [`RETRY_EVERY`] writes.
#[inline(never)]
fn ask_again() -> Option<usize> {
    let since = SINCE_ASKED.with(|n| {
        let since = n.get() + 1;
        n.set(since % RETRY_EVERY);
        since
    });
    if since < RETRY_EVERY {
        return None;
    }
    claim()
}

#[cold]
#[inline(never)]
fn claim() -> Option<usize> {
    let count = writer_slots();
    let mut taken = TAKEN.load(Ordering::Relaxed);
    let slot = loop {
        let free = (!taken).trailing_zeros() as usize;
        if free >= count {
            break NONE_FREE;
        }
        // Acquire: see the stores of the thread that held it before.
        match TAKEN.compare_exchange_weak(
            taken,
            taken | 1 << free,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            Ok(_) => break free,
            Err(now) => taken = now,
        }
    };
    // Touching RELEASE registers its destructor; if this thread's locals
    // are already being destroyed, it fails and the slot goes back.
    if slot < 64 && RELEASE.try_with(|_| ()).is_err() {
        TAKEN.fetch_and(!(1u64 << slot), Ordering::Release);
        SLOT.with(|s| s.set(NONE));
        return None;
    }
    SLOT.with(|s| s.set(slot));
    (slot < 64).then_some(slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_threads_hold_distinct_slots_and_exited_ones_give_them_back() {
        let here = writer_slot();
        assert_eq!(here, writer_slot());
        // Threads alive at once never share a slot.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let slots: Vec<Option<usize>> = (0..4)
            .map(|_| {
                let b = barrier.clone();
                std::thread::spawn(move || {
                    let s = writer_slot();
                    b.wait();
                    s
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let mut held: Vec<usize> = slots.iter().flatten().copied().collect();
        held.extend(here);
        let n = held.len();
        held.sort_unstable();
        held.dedup();
        assert_eq!(held.len(), n, "{slots:?} {here:?}");
        // Those threads have exited: a new thread can take a slot again
        // (asking again while another test holds them all).
        let again = std::thread::spawn(|| {
            let start = std::time::Instant::now();
            loop {
                let slot = writer_slot();
                if slot.is_some() || start.elapsed() > std::time::Duration::from_secs(10) {
                    return slot;
                }
            }
        })
        .join()
        .unwrap();
        assert!(again.is_some_and(|s| s < writer_slots()));
    }

    /// A thread that found every slot taken gets one once a slot is free,
    /// by asking again as it keeps writing.
    #[test]
    fn a_thread_without_a_slot_gets_one_once_one_is_free() {
        use std::sync::mpsc;
        // Holders take slots until a thread finds none: that one waits.
        let mut holders = Vec::new();
        let late = loop {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let (got_tx, got_rx) = mpsc::channel();
            let thread = std::thread::spawn(move || {
                let first = writer_slot();
                got_tx.send(first).unwrap();
                if first.is_some() {
                    // Hold the slot until told.
                    let _ = done_rx.recv();
                    return None;
                }
                // Without a slot: keep writing until one comes.
                let _ = done_rx.recv();
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_secs(10) {
                    if let Some(slot) = writer_slot() {
                        return Some(slot);
                    }
                }
                None
            });
            let got = got_rx.recv().unwrap();
            holders.push((done_tx, thread));
            if got.is_none() {
                break holders.pop().unwrap();
            }
            assert!(holders.len() <= 64, "more slots than 64");
        };
        // The holders go, giving their slots back.
        for (done, thread) in holders {
            done.send(()).unwrap();
            thread.join().unwrap();
        }
        late.0.send(()).unwrap();
        let slot = late.1.join().unwrap();
        assert!(slot.is_some_and(|s| s < writer_slots()), "{slot:?}");
    }
}
