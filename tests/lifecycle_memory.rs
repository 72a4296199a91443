//! Expired series free their memory: a counting allocator measures the
//! bytes live in this test binary (one test, so nothing else allocates
//! meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vitals::{ManualClock, MetricsCollector};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn expiry_keeps_memory_flat() {
    let idle = Duration::from_secs(60);
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder()
        .clock(clock.clone())
        .expire_after(idle)
        .build();

    // 1. One held handle of each kind, expired and revived 1,000,000 times.
    let c = metrics.counter("held_total", &[("k", "v")]);
    let g = metrics.gauge("held_gauge", &[("k", "v")]);
    let h = metrics.histogram("held_seconds", &[("k", "v")]);
    let cycle = |round: u32| {
        clock.advance(idle);
        let gone = metrics.snapshot();
        assert!(gone.counters.iter().all(|s| &*s.name != "held_total"));
        c.inc();
        g.set(f64::from(round));
        if round % 64 == 0 {
            h.record(0.5);
        }
        let back = metrics.snapshot();
        assert_eq!(back.counter("held_total", &[("k", "v")]), Some(1.0));
    };
    for round in 0..1_000 {
        cycle(round);
    }
    let before = live();
    for round in 1_000..1_000_000 {
        cycle(round);
    }
    let growth = live() - before;
    eprintln!("1,000,000 expire/revive cycles: {growth} bytes more live");
    assert!(growth < 4096, "grew by {growth} bytes");

    // 2. 100,000 short-lived label sets (peers that come and go), each used
    // once through a lookup and never held: all freed once expired.
    clock.advance(idle);
    metrics.snapshot();
    let before = live();
    for round in 0..100u32 {
        for i in 0..1_000u32 {
            let peer = format!("10.{round}.{}.{}", i / 256, i % 256);
            metrics
                .counter("peer_bytes_total", &[("peer", &peer)])
                .increment(512);
        }
        clock.advance(idle);
        metrics.snapshot();
        clock.advance(idle);
        metrics.snapshot();
    }
    let growth = live() - before;
    eprintln!("100,000 expired label sets: {growth} bytes more live");
    assert!(growth < 64 * 1024, "grew by {growth} bytes");
    assert!(metrics
        .snapshot()
        .counters
        .iter()
        .all(|s| &*s.name != "peer_bytes_total"));
}
