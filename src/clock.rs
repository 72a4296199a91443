//! Time, read through a trait so that windows and rates can be tested without
//! sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// `at + by`, or `None` when that instant is too far away to represent
/// (a `Duration::MAX` interval or deadline): the caller then waits without
/// a timeout, which is what such a setting means.
pub(crate) fn instant_after(at: Instant, by: Duration) -> Option<Instant> {
    at.checked_add(by)
}

/// `at + by`, saturated: when `by` is too long for an `Instant` (a
/// `Duration::MAX` timeout), about 34 years after `at`, a deadline that
/// never comes. For loops that need an `Instant` to wait until.
#[cfg_attr(not(any(feature = "http", feature = "push")), allow(dead_code))]
pub(crate) fn deadline_after(at: Instant, by: Duration) -> Instant {
    at.checked_add(by)
        .or_else(|| at.checked_add(Duration::from_secs(1 << 30)))
        // No platform's Instant ends within 34 years of now.
        .unwrap_or(at)
}

/// A source of time for a [`MetricsCollector`](crate::MetricsCollector).
///
/// `monotonic` drives rolling windows and rates; `wall` stamps snapshots.
/// The hot path never reads the clock: only snapshots and window rotation do.
///
/// ```
/// use std::time::Duration;
/// use vitals::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.monotonic(), Duration::from_secs(5));
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Time elapsed since an arbitrary fixed origin; never goes backwards.
    ///
    /// ```
    /// use vitals::Clock;
    /// use vitals::clock::SystemClock;
    /// let clock = SystemClock::new();
    /// assert!(clock.monotonic() <= clock.monotonic());
    /// ```
    fn monotonic(&self) -> Duration;

    /// The current wall-clock time.
    ///
    /// ```
    /// use vitals::Clock;
    /// use vitals::clock::SystemClock;
    /// let now = SystemClock::new().wall();
    /// assert!(now > std::time::UNIX_EPOCH);
    /// ```
    fn wall(&self) -> SystemTime;
}

/// The real clock: [`Instant`] for windows, [`SystemTime`] for timestamps.
///
/// ```
/// use vitals::Clock;
/// use vitals::clock::SystemClock;
///
/// let clock = SystemClock::new();
/// let a = clock.monotonic();
/// assert!(clock.monotonic() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::Clock;
    ///
    /// let clock = vitals::clock::SystemClock::new();
    /// assert!(clock.monotonic() < Duration::from_secs(1));
    /// ```
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: for tests of windows, rates and
/// rotation.
///
/// Wall time is the wall time at creation plus the manual offset, so
/// snapshots still carry plausible timestamps.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use vitals::{ManualClock, MetricsCollector};
///
/// let clock = Arc::new(ManualClock::new());
/// let metrics = MetricsCollector::builder().clock(clock.clone()).build();
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(metrics.snapshot().uptime_seconds, 90.0);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicU64,
    wall_origin: SystemTime,
}

impl ManualClock {
    /// A manual clock at monotonic time zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::Clock;
    ///
    /// let clock = vitals::ManualClock::new();
    /// assert_eq!(clock.monotonic(), Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        ManualClock {
            nanos: AtomicU64::new(0),
            wall_origin: SystemTime::now(),
        }
    }

    /// Moves the clock forward by `by` (saturating at about 584 years).
    ///
    /// ```
    /// use std::time::Duration;
    /// use vitals::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(clock.monotonic(), Duration::from_millis(1500));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn monotonic(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }

    fn wall(&self) -> SystemTime {
        self.wall_origin + self.monotonic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_of_duration_max_is_far_away_not_a_panic() {
        let now = Instant::now();
        let year = Duration::from_secs(86_400 * 365);
        assert!(deadline_after(now, Duration::MAX) > now + year);
        let five = Duration::from_secs(5);
        assert_eq!(deadline_after(now, five), now + five);
    }
}
