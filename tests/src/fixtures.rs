//! The real-world fixtures in `tests/fixtures` (sources and licences: its README.md). The large
//! files (job logs, LogChunks' labels) are stored gzip-compressed as `<name>.gz`; every helper
//! here takes and returns the name without `.gz` and decompresses on reading.

use buildlore_core::compression::gunzip_capped;
use std::path::{Path, PathBuf};

/// More than any fixture holds once decompressed.
const MAX_FIXTURE_BYTES: usize = 256 * 1024 * 1024;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The bytes of a fixture file, e.g. `webhooks/gitlab/pipeline_hook.json` or
/// `logchunks/logs/…log` (read from `…log.gz` when only that is stored).
pub fn bytes(relative: &str) -> Vec<u8> {
    let path = dir().join(relative);
    match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let packed = gz_path(&path);
            let compressed = std::fs::read(&packed).unwrap_or_else(|gz| {
                panic!(
                    "fixture {} is missing: {e} (and {}: {gz})",
                    path.display(),
                    packed.display()
                )
            });
            gunzip_capped(&compressed, MAX_FIXTURE_BYTES)
                .unwrap_or_else(|e| panic!("fixture {} does not decompress: {e}", packed.display()))
        }
        Err(e) => panic!("fixture {} cannot be read: {e}", path.display()),
    }
}

pub fn json(relative: &str) -> serde_json::Value {
    serde_json::from_slice(&bytes(relative))
        .unwrap_or_else(|e| panic!("fixture {relative} is not JSON: {e}"))
}

/// Every GitHub webhook fixture as (event, file), the event taken from its folder.
pub fn github_payloads() -> Vec<(String, String)> {
    let mut payloads = Vec::new();
    let root = dir().join("webhooks/github");
    for folder in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        if !folder.path().is_dir() {
            continue;
        }
        let event = folder.file_name().to_string_lossy().to_string();
        for file in std::fs::read_dir(folder.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().to_string();
            let name = name.strip_suffix(".gz").unwrap_or(&name);
            payloads.push((event.clone(), format!("webhooks/github/{event}/{name}")));
        }
    }
    payloads.sort();
    payloads.dedup();
    assert!(
        !payloads.is_empty(),
        "no GitHub webhook fixtures in {}",
        root.display()
    );
    payloads
}

/// `path` with `.gz` appended to its file name.
fn gz_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_compressed_fixtures_read_by_the_same_name() {
        let payloads = github_payloads();
        assert!(payloads.iter().all(|(_, file)| !file.ends_with(".gz")));
        assert!(
            bytes("webhooks/gitlab/pipeline_hook.json").starts_with(b"{"),
            "a plain fixture"
        );
        assert!(!dir().join("logchunks/labels.jsonl").exists());
        let labels = bytes("logchunks/labels.jsonl");
        assert_eq!(String::from_utf8(labels).unwrap().lines().count(), 423);
    }
}
