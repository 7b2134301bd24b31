//! Listing builds of a repo newest first, with filters and opaque cursors.

use crate::build::{Build, MAX_BRANCH_LEN};
use crate::cursor::{Cursor, InvalidCursor};
use crate::keys;
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use crate::table::{BY_BRANCH_TIME, BY_REPO_TIME, IndexSpec, PARTITION_KEY, SORT_KEY};
use crate::time::parse_since;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct BuildQuery {
    pub repo: RepoPath,
    pub branch: Option<String>,
    pub status: Option<BuildStatus>,
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildPage {
    pub builds: Vec<Build>,
    pub next_cursor: Option<Cursor>,
}

/// The raw query string parameters, all optional strings as they arrive.
#[derive(Debug, Default, Clone)]
pub struct RawBuildQuery {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBuildQuery {
    #[error("query parameter `repo` is required (for example ?repo=group/project)")]
    MissingRepo,
    #[error("query parameter `{0}` {1}")]
    Parameter(&'static str, String),
    #[error(transparent)]
    Cursor(#[from] InvalidCursor),
}

impl BuildQuery {
    pub fn parse(raw: RawBuildQuery, now: DateTime<Utc>) -> Result<Self, InvalidBuildQuery> {
        let param = |name, message: String| InvalidBuildQuery::Parameter(name, message);
        let repo_raw = raw
            .repo
            .filter(|r| !r.trim().is_empty())
            .ok_or(InvalidBuildQuery::MissingRepo)?;
        let repo = RepoPath::parse(&repo_raw).map_err(|e| param("repo", e.to_string()))?;
        let branch = match raw.branch.filter(|b| !b.is_empty()) {
            Some(branch)
                if branch.chars().count() > MAX_BRANCH_LEN
                    || branch.chars().any(char::is_control) =>
            {
                return Err(param(
                    "branch",
                    format!("must be at most {MAX_BRANCH_LEN} printable characters"),
                ));
            }
            other => other,
        };
        let status = raw
            .status
            .filter(|s| !s.is_empty())
            .map(|s| BuildStatus::parse(&s).map_err(|e| param("status", e.to_string())))
            .transpose()?;
        let since = raw
            .since
            .filter(|s| !s.is_empty())
            .map(|s| parse_since(&s, now).map_err(|e| param("since", e.to_string())))
            .transpose()?;
        let limit = match raw.limit.filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(param(
                        "limit",
                        format!(
                            "must be a whole number from 1 to {MAX_LIMIT}, got {:?}",
                            text.chars().take(20).collect::<String>()
                        ),
                    ));
                }
            },
        };
        let cursor = raw
            .cursor
            .filter(|c| !c.is_empty())
            .map(|c| Cursor::decode(&c))
            .transpose()?;
        let query = BuildQuery {
            repo,
            branch,
            status,
            since,
            limit,
            cursor,
        };
        if let Some(cursor) = &query.cursor {
            query.check_cursor(cursor)?;
        }
        Ok(query)
    }

    /// The index to read and its partition: by branch when a branch is given.
    pub fn index(&self) -> (IndexSpec, String) {
        match &self.branch {
            Some(branch) => (BY_BRANCH_TIME, keys::builds_by_branch(&self.repo, branch)),
            None => (BY_REPO_TIME, keys::builds_by_repo(&self.repo)),
        }
    }

    /// A cursor must be a key of this query's index partition, so a cursor from another
    /// query (or a forged one) cannot read elsewhere.
    fn check_cursor(&self, cursor: &Cursor) -> Result<(), InvalidCursor> {
        let (index, partition) = self.index();
        let expected: BTreeSet<&str> =
            [PARTITION_KEY, SORT_KEY, index.key.partition, index.key.sort].into();
        let actual: BTreeSet<&str> = cursor.key.keys().map(String::as_str).collect();
        if actual != expected || cursor.key.get(index.key.partition) != Some(&partition) {
            return Err(InvalidCursor);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawBuildQuery {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        };
        RawBuildQuery {
            repo: get("repo"),
            branch: get("branch"),
            status: get("status"),
            since: get("since"),
            limit: get("limit"),
            cursor: get("cursor"),
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let now = Utc::now();
        let query = BuildQuery::parse(raw(&[("repo", "a/b/c")]), now).unwrap();
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.repo.as_str(), "a/b/c");
        assert!(BuildQuery::parse(raw(&[("repo", "a"), ("limit", "100")]), now).is_ok());
        for (key, value) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "ten"),
            ("limit", "99999999999999999999"),
            ("status", "nope"),
            ("since", "forever"),
            ("cursor", "zzz"),
            ("repo", "a//b"),
        ] {
            let mut pairs = vec![("repo", "a/b")];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            assert!(
                BuildQuery::parse(raw(&pairs), now).is_err(),
                "{key}={value}"
            );
        }
        assert_eq!(
            BuildQuery::parse(raw(&[]), now),
            Err(InvalidBuildQuery::MissingRepo)
        );
    }
}
