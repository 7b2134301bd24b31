//! The dashboard's static files, compiled into the binary (no Node build: what is in
//! `assets/` is what the browser gets). They are served under `/assets/<version>/`, where the
//! version is a hash of every file's content, so each can be cached for a year and a deploy
//! that changes any of them changes every URL; the modules' relative imports stay valid.

use sha2::{Digest, Sha256};
use std::sync::OnceLock;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

pub const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("common.js", JS),
    asset!("overview.js", JS),
    asset!("pipeline.js", JS),
    asset!("job.js", JS),
    asset!("logview.js", JS),
    asset!("failures.js", JS),
    asset!("repo.js", JS),
    asset!("charts.js", JS),
];

/// The files a page loads first: its stylesheet, its module and the module it imports.
pub fn page_files(page: &str) -> Vec<&'static Asset> {
    let mut names = vec!["app.css", "favicon.svg", "common.js"];
    match page {
        "overview" => names.push("overview.js"),
        "pipeline" => names.push("pipeline.js"),
        "job" => names.extend(["job.js", "logview.js"]),
        "failures" => names.push("failures.js"),
        "repo" => names.extend(["repo.js", "charts.js"]),
        _ => {}
    }
    names.into_iter().filter_map(find).collect()
}

pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The hash of every asset's name and content: the URL prefix of this build's assets.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for asset in ASSETS {
            hasher.update(asset.name.as_bytes());
            hasher.update([0]);
            hasher.update((asset.bytes.len() as u64).to_le_bytes());
            hasher.update(asset.bytes);
        }
        hasher.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

/// The URL of one asset in this build.
pub fn url(name: &str) -> String {
    format!("/assets/{}/{name}", version())
}
