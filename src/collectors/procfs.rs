//! Figures read straight from Linux's `/proc`, where sysinfo's way costs
//! more than the plug-ins' whole overhead budget at 1 Hz.
//!
//! * sysinfo 0.36 refreshes one process by walking every directory under
//!   `/proc` (about 150 `openat` calls on a quiet machine, a millisecond or
//!   more); three small files under `/proc/self` give the same figures for
//!   this process in a few tens of microseconds. The process plug-in still
//!   uses sysinfo for its first reading (pid, start time) and wherever these
//!   files cannot be read.
//! * sysinfo reads several files per network interface under `/sys`;
//!   `/proc/net/dev` has every interface's byte counts in one file.

use std::fs;

/// What one reading of `/proc/self` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SelfFigures {
    /// User + system CPU time, in milliseconds.
    pub(crate) cpu_ms: u64,
    pub(crate) resident_bytes: u64,
    pub(crate) virtual_bytes: u64,
    pub(crate) threads: u64,
    /// Bytes read from / written to storage (`read_bytes`, `write_bytes`
    /// of `/proc/self/io`), as sysinfo reports them.
    pub(crate) read_bytes: u64,
    pub(crate) written_bytes: u64,
}

/// Clock ticks per second of the CPU times in `/proc/<pid>/stat`: the
/// kernel's `USER_HZ`, which is 100 on every architecture Rust targets.
const USER_HZ: u64 = 100;

/// Reads the figures, or `None` if any file is missing or malformed.
pub(crate) fn read_self() -> Option<SelfFigures> {
    let cpu_ms = parse_stat(&fs::read_to_string("/proc/self/stat").ok()?)?;
    let (resident_bytes, virtual_bytes, threads) =
        parse_status(&fs::read_to_string("/proc/self/status").ok()?)?;
    let (read_bytes, written_bytes) = parse_io(&fs::read_to_string("/proc/self/io").ok()?)?;
    Some(SelfFigures {
        cpu_ms,
        resident_bytes,
        virtual_bytes,
        threads,
        read_bytes,
        written_bytes,
    })
}

/// `utime + stime` in milliseconds. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime).saturating_mul(1000) / USER_HZ)
}

/// `(VmRSS, VmSize)` in bytes and `Threads`.
fn parse_status(status: &str) -> Option<(u64, u64, u64)> {
    let (mut rss, mut size, mut threads) = (None, None, None);
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || value.split_ascii_whitespace().next()?.parse::<u64>().ok();
        match key {
            "VmRSS" => rss = number().map(|kb| kb.saturating_mul(1024)),
            "VmSize" => size = number().map(|kb| kb.saturating_mul(1024)),
            "Threads" => threads = number(),
            _ => {}
        }
    }
    Some((rss?, size?, threads?))
}

/// `(read_bytes, write_bytes)`.
fn parse_io(io: &str) -> Option<(u64, u64)> {
    let (mut read, mut written) = (None, None);
    for line in io.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().parse::<u64>().ok();
        match key {
            "read_bytes" => read = value,
            "write_bytes" => written = value,
            _ => {}
        }
    }
    Some((read?, written?))
}

/// Bytes received and transmitted per interface, from `/proc/net/dev`.
pub(crate) fn read_net_dev() -> Option<Vec<(String, u64, u64)>> {
    parse_net_dev(&fs::read_to_string("/proc/net/dev").ok()?)
}

fn parse_net_dev(dev: &str) -> Option<Vec<(String, u64, u64)>> {
    // Two header lines, then `name: rx_bytes packets ... tx_bytes ...`,
    // eight receive columns before the transmit ones.
    let mut out = Vec::new();
    for line in dev.lines().skip(2) {
        let (name, counts) = line.split_once(':')?;
        let mut fields = counts.split_ascii_whitespace();
        let rx: u64 = fields.next()?.parse().ok()?;
        let tx: u64 = fields.nth(7)?.parse().ok()?;
        out.push((name.trim().to_owned(), rx, tx));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194304 103 0 0 0 250 50 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat(stat), Some(3000));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_and_io_give_bytes_and_threads() {
        let status = "Name:\tx\nVmSize:\t    3892 kB\nVmRSS:\t    2168 kB\nThreads:\t7\n";
        assert_eq!(parse_status(status), Some((2168 * 1024, 3892 * 1024, 7)));
        assert_eq!(parse_status("Name: x\n"), None);
        let io = "rchar: 1\nread_bytes: 4096\nwrite_bytes: 512\n";
        assert_eq!(parse_io(io), Some((4096, 512)));
        assert_eq!(parse_io("read_bytes: x\n"), None);
    }

    #[test]
    fn net_dev_gives_bytes_per_interface() {
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n    lo: 100 2 0 0 0 0 0 0 300 4 0 0 0 0 0 0\n  eth0: 5 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0\n";
        let got = parse_net_dev(dev).unwrap();
        assert_eq!(got, vec![("lo".into(), 100, 300), ("eth0".into(), 5, 7)]);
        assert_eq!(parse_net_dev("a\nb\nbroken line\n"), None);
        assert!(!read_net_dev().unwrap().is_empty());
    }

    #[test]
    fn this_process_can_be_read() {
        let figures = read_self().unwrap();
        assert!(figures.resident_bytes > 0 && figures.threads >= 1);
    }
}
