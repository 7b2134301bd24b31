//! What was built: baked in at compile time by build.rs.

use serde::Serialize;

/// gitlab-summary's names (`gitCommit`, `buildDate`), and ours beside them.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub name: &'static str,
    pub version: &'static str,
    #[serde(rename = "gitCommit")]
    pub commit: &'static str,
    #[serde(rename = "buildDate")]
    pub build_date: &'static str,
}

pub const VERSION: VersionInfo = VersionInfo {
    name: "buildlore",
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("BUILDLORE_GIT_COMMIT"),
    build_date: env!("BUILDLORE_BUILD_DATE"),
};
