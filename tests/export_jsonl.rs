//! JSON-Lines exporter and reader through the public API: rotation and
//! retention on a manual clock, torn lines, unwritable paths, a full disk and
//! a deleted directory.

mod common;
use common::TempDir;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vitals::export::{Exporter, FsyncPolicy, JsonLinesExporter, JsonLinesReader};
use vitals::{Error, ManualClock, MetricsCollector};

fn manual() -> (Arc<ManualClock>, MetricsCollector) {
    let clock = Arc::new(ManualClock::new());
    let metrics = MetricsCollector::builder().clock(clock.clone()).build();
    (clock, metrics)
}

fn read_all(path: &Path) -> (Vec<vitals::Snapshot>, Vec<vitals::export::SkippedLine>) {
    let mut reader = JsonLinesReader::open_rotated(path).unwrap();
    let snaps = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (snaps, reader.skipped().to_vec())
}

#[test]
fn rotation_by_size_keeps_every_line_and_retention_by_count_drops_the_oldest() {
    let dir = TempDir::new("size");
    let path = dir.path().join("metrics.jsonl");
    let (clock, metrics) = manual();
    let ticks = metrics.counter("ticks_total", &[]);
    // A line as the loop writes it (with a rate, once time has passed).
    ticks.inc();
    clock.advance(Duration::from_millis(1500));
    let mut line = Vec::new();
    JsonLinesExporter::encode_line(&metrics.snapshot(), &mut line).unwrap();
    // Room for two lines per file (lines grow a little as the count does).
    let mut exporter = JsonLinesExporter::builder(&path)
        .rotate_bytes(line.len() as u64 * 2 + 40)
        .keep_files(3)
        .clock(metrics.clock().clone())
        .fsync(FsyncPolicy::Never)
        .build()
        .unwrap();
    for _ in 1..12 {
        ticks.inc();
        clock.advance(Duration::from_millis(1500));
        exporter.export(&metrics.snapshot()).unwrap();
    }
    let rotated = exporter.rotated_files().unwrap();
    assert_eq!(rotated.len(), 3, "{rotated:?}");
    for file in rotated.iter().chain([&path]) {
        let lines = std::fs::read_to_string(file).unwrap().lines().count();
        assert!((1..=2).contains(&lines), "{file:?} has {lines} lines");
    }
    // What is left is the newest lines, in order, none torn.
    let (snaps, skipped) = read_all(&path);
    assert!(skipped.is_empty(), "{skipped:?}");
    let values: Vec<u64> = snaps
        .iter()
        .map(|s| {
            s.counter_sample("ticks_total", &[])
                .unwrap()
                .value
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(values.last(), Some(&12));
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1), "{values:?}");
    assert!(values.len() >= 7, "{values:?}");
}

#[test]
fn rotation_by_age_and_retention_by_age_follow_the_manual_clock() {
    let dir = TempDir::new("age");
    let path = dir.path().join("metrics.jsonl");
    let (clock, metrics) = manual();
    let mut exporter = JsonLinesExporter::builder(&path)
        .rotate_age(Duration::from_secs(3600))
        .keep_age(Duration::from_secs(3 * 3600))
        .clock(metrics.clock().clone())
        .build()
        .unwrap();
    exporter.export(&metrics.snapshot()).unwrap();
    clock.advance(Duration::from_secs(1800));
    exporter.export(&metrics.snapshot()).unwrap();
    assert!(exporter.rotated_files().unwrap().is_empty());
    clock.advance(Duration::from_secs(1800));
    exporter.export(&metrics.snapshot()).unwrap();
    let rotated = exporter.rotated_files().unwrap();
    assert_eq!(rotated.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&rotated[0])
            .unwrap()
            .lines()
            .count(),
        2
    );
    // Names carry the wall time of rotation, UTC.
    let name = rotated[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("metrics.") && name.ends_with("Z.jsonl"),
        "{name}"
    );

    // One rotation per hour, at 2 h … 7 h; at 7 h the files rotated more
    // than 3 h ago (at 1 h, 2 h and 3 h) are gone, the one at 4 h stays.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(3600));
        exporter.export(&metrics.snapshot()).unwrap();
    }
    let rotated = exporter.rotated_files().unwrap();
    assert_eq!(rotated.len(), 4, "{rotated:?}");
    assert!(!rotated.contains(&dir.path().join(&name)));
}

#[test]
fn a_torn_last_line_is_skipped_with_its_number_and_every_complete_line_is_read() {
    let dir = TempDir::new("torn");
    let path = dir.path().join("m.jsonl");
    let metrics = MetricsCollector::new();
    let jobs = metrics.counter("jobs_total", &[]);
    let mut exporter = JsonLinesExporter::new(&path).unwrap();
    for _ in 0..5 {
        jobs.inc();
        exporter.export(&metrics.snapshot()).unwrap();
    }
    drop(exporter);
    // A crash in the middle of the fifth line.
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 30)
        .unwrap();

    let mut reader = JsonLinesReader::open(&path).unwrap();
    let snaps: Vec<_> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    let values: Vec<_> = snaps.iter().map(|s| s.counter("jobs_total", &[])).collect();
    assert_eq!(values, [Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
    assert_eq!(reader.skipped().len(), 1);
    assert_eq!(reader.skipped()[0].line, 5);

    // Restarting on the torn file: the fragment stays on a line of its own.
    let mut exporter = JsonLinesExporter::new(&path).unwrap();
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    let mut reader = JsonLinesReader::open(&path).unwrap();
    let values: Vec<_> = reader
        .by_ref()
        .map(|s| s.unwrap().counter("jobs_total", &[]).unwrap())
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 6.0]);
    assert_eq!(reader.skipped().len(), 1);
}

#[test]
fn an_unwritable_path_is_an_error_at_construction() {
    let dir = TempDir::new("unwritable");
    // A regular file where a directory should be: fails for root too.
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let err = JsonLinesExporter::new(file.join("metrics.jsonl")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    // A directory is not a file.
    let err = JsonLinesExporter::new(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");

    // A read-only directory, where permissions bind (not for root).
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&locked, perms.clone()).unwrap();
    let probe = std::fs::write(locked.join("probe"), "x");
    let result = JsonLinesExporter::new(locked.join("metrics.jsonl"));
    if probe.is_err() {
        assert!(
            matches!(
                result,
                Err(Error::Io {
                    kind: std::io::ErrorKind::PermissionDenied,
                    ..
                })
            ),
            "{result:?}"
        );
    } else {
        // Root writes anyway; the exporter must then work.
        assert!(result.is_ok());
    }
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&locked, perms).unwrap();
}

#[test]
fn a_deleted_directory_gives_errors_and_writing_resumes_when_it_is_back() {
    let dir = TempDir::new("deleted");
    let sub = dir.path().join("sub");
    let path = sub.join("m.jsonl");
    let metrics = MetricsCollector::new();
    let jobs = metrics.counter("jobs_total", &[]);
    let mut exporter = JsonLinesExporter::new(&path).unwrap();
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();

    std::fs::remove_dir_all(&sub).unwrap();
    jobs.inc();
    let err = exporter.export(&metrics.snapshot()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    // The exporter does not recreate the directory on its own.
    assert!(!sub.exists());

    std::fs::create_dir(&sub).unwrap();
    jobs.inc();
    exporter.export(&metrics.snapshot()).unwrap();
    let (snaps, skipped) = read_all(&path);
    assert!(skipped.is_empty());
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0].counter("jobs_total", &[]), Some(3.0));
}

/// Unmounts on drop, so a failing assertion leaves nothing mounted.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts a 64 KiB tmpfs at `at` where the machine allows it (root, a
/// `mount` that works); `VITALS_TEST_NO_MOUNT=1` forces the fallback.
fn try_mount_small_tmpfs(at: &Path) -> Option<Mount> {
    if std::env::var_os("VITALS_TEST_NO_MOUNT").is_some() {
        return None;
    }
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(at)
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| Mount(at.to_path_buf()))
}

#[test]
fn a_full_disk_gives_errors_without_panics_and_writing_resumes_after() {
    let dir = TempDir::new("full");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let metrics = MetricsCollector::new();
    let jobs = metrics.counter("jobs_total", &[]);
    let labels: Vec<String> = (0..40).map(|i| format!("series-{i:03}")).collect();
    for l in &labels {
        metrics.counter("padding_total", &[("id", l)]).inc();
    }

    if let Some(_mount) = try_mount_small_tmpfs(&mnt) {
        // A real full file system: fill it, export, free it, export again.
        let path = mnt.join("m.jsonl");
        let mut exporter = JsonLinesExporter::new(&path).unwrap();
        jobs.inc();
        exporter.export(&metrics.snapshot()).unwrap();
        let filler = mnt.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut f, &block).is_ok() {}
        drop(f);
        let mut failures = 0;
        for _ in 0..3 {
            jobs.inc();
            match exporter.export(&metrics.snapshot()) {
                Ok(()) => {}
                Err(Error::Io { kind, .. }) => {
                    assert!(
                        matches!(
                            kind,
                            std::io::ErrorKind::StorageFull | std::io::ErrorKind::WriteZero
                        ),
                        "{kind:?}"
                    );
                    failures += 1;
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!(failures, 3);
        std::fs::remove_file(&filler).unwrap();
        jobs.inc();
        exporter.export(&metrics.snapshot()).unwrap();
        let (snaps, _skipped) = read_all(&path);
        let values: Vec<_> = snaps
            .iter()
            .map(|s| s.counter("jobs_total", &[]).unwrap())
            .collect();
        assert_eq!(values, [1.0, 5.0]);
    } else {
        // No mount here: point the file at /dev/full, whose writes fail
        // with ENOSPC, then put a real file back.
        let path = dir.path().join("m.jsonl");
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let mut exporter = JsonLinesExporter::builder(&path)
            .fsync(FsyncPolicy::Never)
            .build()
            .unwrap();
        for _ in 0..3 {
            jobs.inc();
            let err = exporter.export(&metrics.snapshot()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Io {
                        kind: std::io::ErrorKind::StorageFull,
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        std::fs::remove_file(&path).unwrap();
        jobs.inc();
        exporter.export(&metrics.snapshot()).unwrap();
        let (snaps, skipped) = read_all(&path);
        assert!(skipped.is_empty());
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0].counter("jobs_total", &[]), Some(4.0));
    }
}

#[test]
fn every_fsync_policy_writes_complete_lines_and_flush_succeeds() {
    let dir = TempDir::new("fsync");
    let metrics = MetricsCollector::new();
    metrics.gauge("g", &[]).set(f64::NAN);
    for (i, policy) in [
        FsyncPolicy::Never,
        FsyncPolicy::Interval(Duration::from_secs(5)),
        FsyncPolicy::EveryLine,
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("{i}.jsonl"));
        let mut exporter = JsonLinesExporter::builder(&path)
            .fsync(policy)
            .build()
            .unwrap();
        exporter.export(&metrics.snapshot()).unwrap();
        exporter.export(&metrics.snapshot()).unwrap();
        exporter.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches('\n').count(), 2);
        assert!(text.contains(r#""value":"NaN""#));
    }
    let err = JsonLinesExporter::builder(dir.path().join("x.jsonl"))
        .fsync(FsyncPolicy::Interval(Duration::ZERO))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig(_)));
}
