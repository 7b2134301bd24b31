//! Repository (project) paths such as `group/sub/project`.

use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_REPO_LEN: usize = 255;

/// A validated repository path: one or more `/`-separated segments of letters, digits,
/// `.`, `_`, `-` and `~`. Validation keeps key separators (`#`) and hostile strings out of
/// storage keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRepo {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {MAX_REPO_LEN} characters")]
    TooLong,
    #[error(
        "must be a path like 'group/project' or 'group/sub/project': segments of letters, digits, '.', '_', '-' or '~' separated by single '/', got {0:?}"
    )]
    BadShape(String),
}

impl RepoPath {
    pub fn parse(raw: &str) -> Result<Self, InvalidRepo> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(InvalidRepo::Empty);
        }
        if trimmed.len() > MAX_REPO_LEN {
            return Err(InvalidRepo::TooLong);
        }
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~'))
        };
        if !trimmed.split('/').all(segment_ok) {
            let shown: String = trimmed.chars().take(80).collect();
            return Err(InvalidRepo::BadShape(shown));
        }
        Ok(RepoPath(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RepoPath {
    type Error = InvalidRepo;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RepoPath::parse(&value)
    }
}

impl From<RepoPath> for String {
    fn from(value: RepoPath) -> Self {
        value.0
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_groups() {
        assert_eq!(
            RepoPath::parse("group/sub/project").unwrap().as_str(),
            "group/sub/project"
        );
        assert!(RepoPath::parse("octo-org/hello_world.rs").is_ok());
        assert!(RepoPath::parse("single").is_ok());
    }

    #[test]
    fn rejects_separators_traversal_and_hostile_strings() {
        for bad in [
            "", "  ", "a//b", "/a", "a/", "a/../b", "a#b", "a b", "a\nb", "<script>", "a?b", "ü/x",
        ] {
            assert!(RepoPath::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(RepoPath::parse(&"a".repeat(256)), Err(InvalidRepo::TooLong));
    }
}
