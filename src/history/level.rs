//! The four levels of the history and their defaults.

use super::*;

/// A level of the history.
///
/// ```
/// use std::time::Duration;
/// use vitals::history::Level;
/// assert_eq!(Level::FiveMinutes.interval(), Some(Duration::from_secs(300)));
/// assert_eq!(Level::Raw.interval(), None);
/// assert_eq!("1h".parse::<Level>().unwrap(), Level::Hour);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// One point per snapshot.
    #[serde(rename = "raw")]
    Raw,
    /// One point per minute.
    #[serde(rename = "1m")]
    Minute,
    /// One point per five minutes.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One point per hour.
    #[serde(rename = "1h")]
    Hour,
}

impl Level {
    /// Every level, finest first.
    pub const ALL: [Level; 4] = [Level::Raw, Level::Minute, Level::FiveMinutes, Level::Hour];

    /// The length of one interval (`None` for raw: one point per snapshot).
    ///
    /// ```
    /// assert_eq!(vitals::history::Level::Hour.interval().unwrap().as_secs(), 3600);
    /// ```
    pub fn interval(self) -> Option<Duration> {
        self.interval_ms().map(Duration::from_millis)
    }

    pub(super) fn interval_ms(self) -> Option<u64> {
        match self {
            Level::Raw => None,
            Level::Minute => Some(60_000),
            Level::FiveMinutes => Some(300_000),
            Level::Hour => Some(3_600_000),
        }
    }

    /// The short name: `raw`, `1m`, `5m`, `1h`.
    ///
    /// ```
    /// assert_eq!(vitals::history::Level::Minute.as_str(), "1m");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Raw => "raw",
            Level::Minute => "1m",
            Level::FiveMinutes => "5m",
            Level::Hour => "1h",
        }
    }

    /// The default retention: 24 h, 7 days, 30 days, 365 days.
    ///
    /// ```
    /// use vitals::history::Level;
    /// assert_eq!(Level::Minute.default_retention().as_secs(), 7 * 24 * 3600);
    /// ```
    pub fn default_retention(self) -> Duration {
        const DAY: u64 = 24 * 3600;
        Duration::from_secs(match self {
            Level::Raw => DAY,
            Level::Minute => 7 * DAY,
            Level::FiveMinutes => 30 * DAY,
            Level::Hour => 365 * DAY,
        })
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

impl std::str::FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| Error::UnknownLevel(s.to_owned()))
    }
}
