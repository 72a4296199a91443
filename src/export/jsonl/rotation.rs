//! The names of rotated files: `stem.YYYYMMDDTHHMMSS.mmmZ[.n].ext`, and the
//! proleptic Gregorian calendar that writes and reads the stamp.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// `(stem, extension)` of a file path: `metrics.jsonl` → `("metrics", Some("jsonl"))`.
pub(super) fn split_name(path: &Path) -> Option<(String, Option<String>)> {
    let name = path.file_name()?.to_str()?;
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some(match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
            (stem.to_owned(), Some(ext.to_owned()))
        }
        _ => (name.to_owned(), None),
    })
}

pub(super) fn rotated_name(stem: &str, ext: Option<&str>, stamp: &str, n: u32) -> String {
    let mut name = format!("{stem}.{stamp}");
    if n > 0 {
        name.push_str(&format!(".{n}"));
    }
    if let Some(ext) = ext {
        name.push('.');
        name.push_str(ext);
    }
    name
}

pub(super) struct Rotated {
    pub(super) millis: u64,
    n: u32,
    pub(super) path: PathBuf,
}

/// The rotated files of `stem` in `dir`, oldest first.
pub(super) fn rotated_in(dir: &Path, stem: &str, ext: Option<&str>) -> Result<Vec<Rotated>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(middle) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let middle = match ext {
            Some(ext) => match middle.strip_suffix(ext).and_then(|m| m.strip_suffix('.')) {
                Some(m) => m,
                None => continue,
            },
            None => middle,
        };
        let (stamp, n) = match middle.get(STAMP_LEN..) {
            Some("") => (middle, 0),
            Some(rest) => match rest.strip_prefix('.').and_then(|n| n.parse().ok()) {
                Some(n) => (&middle[..STAMP_LEN], n),
                None => continue,
            },
            None => continue,
        };
        if let Some(millis) = parse_utc_millis(stamp) {
            found.push(Rotated {
                millis,
                n,
                path: entry.path(),
            });
        }
    }
    found.sort_by_key(|r| (r.millis, r.n));
    Ok(found)
}

pub(super) fn wall_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYYMMDDTHHMMSS.mmmZ`
const STAMP_LEN: usize = 20;

pub(super) fn format_utc_millis(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

pub(super) fn parse_utc_millis(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != STAMP_LEN || b[8] != b'T' || b[15] != b'.' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se, ms) = (num(9..11)?, num(11..13)?, num(13..15)?, num(16..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = u64::try_from(days_from_civil(y as i64, mo as u32, d as u32)).ok()?;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's published algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_round_trip_and_sort_in_time_order() {
        for ms in [
            0u64,
            1,
            951_782_400_000,
            1_790_000_000_123,
            4_102_444_799_999,
        ] {
            let s = format_utc_millis(ms);
            assert_eq!(s.len(), STAMP_LEN, "{s}");
            assert_eq!(parse_utc_millis(&s), Some(ms), "{s}");
        }
        assert_eq!(format_utc_millis(951_782_400_000), "20000229T000000.000Z");
        assert!(format_utc_millis(1_000) < format_utc_millis(10_000));
        assert_eq!(parse_utc_millis("20001329T000000.000Z"), None);
        assert_eq!(parse_utc_millis("2000022xT000000.000Z"), None);
        assert_eq!(parse_utc_millis("short"), None);
    }

    #[test]
    fn names_split_and_rotated_names_parse_back() {
        assert_eq!(
            split_name(Path::new("d/metrics.jsonl")),
            Some(("metrics".into(), Some("jsonl".into())))
        );
        assert_eq!(
            split_name(Path::new("d/metrics")),
            Some(("metrics".into(), None))
        );
        assert_eq!(split_name(Path::new("/")), None);
        let name = rotated_name("m", Some("jsonl"), "20000229T000000.000Z", 2);
        assert_eq!(name, "m.20000229T000000.000Z.2.jsonl");
    }
}
