//! Helpers shared by the integration tests that touch the file system.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed on drop. Unique per
/// process, tag and call, so tests running in parallel never share one.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vitals-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    #[allow(dead_code)] // not every test binary asks for it
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `scripts/<script>` (a protobuf decoder) on `body` and parses the
/// JSON it prints; `None` when Python or its protobuf runtime is missing
/// (exit code 3), which fails the test under `VITALS_REQUIRE_TOOLS=1`.
#[allow(dead_code)] // not every test binary decodes protobuf
pub fn decode_with_python(script: &str, body: &[u8]) -> Option<serde_json::Value> {
    let required = std::env::var("VITALS_REQUIRE_TOOLS").as_deref() == Ok("1");
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("vitals-body-{}-{n}.bin", std::process::id()));
    std::fs::write(&path, body).unwrap();
    let script = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output();
    let Ok(out) = out else {
        assert!(
            !required,
            "python3 is required (VITALS_REQUIRE_TOOLS=1) but not installed"
        );
        return None;
    };
    let _ = std::fs::remove_file(&path);
    if out.status.code() == Some(3) {
        assert!(
            !required,
            "python protobuf is required (VITALS_REQUIRE_TOOLS=1) but not installed"
        );
        return None;
    }
    assert!(
        out.status.success(),
        "the protobuf runtime rejected the body: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}
