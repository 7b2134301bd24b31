//! The shared real-world fixtures (`../shared/fixtures`, beside the repository).

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// The bytes of a fixture file, e.g. `webhooks/gitlab/pipeline_hook.json`.
pub fn bytes(relative: &str) -> Vec<u8> {
    let path = dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()))
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
            payloads.push((event.clone(), format!("webhooks/github/{event}/{name}")));
        }
    }
    payloads.sort();
    payloads
}
