//! Pipeline summaries (gitlab-summary's `/api/pipelines/summary`) computed from the per-project,
//! per-day counters alone: the items read are bounded by projects × days in the window,
//! whatever the history holds. Builds and pipelines count alike as a project's runs. Each
//! project's recent runs come from one small item kept per repo by every record write
//! ([`KeptRecentRuns`]), read for all projects at once.

use crate::Build;
use crate::counters::{DURATION_COUNT, DURATION_SUM_MS, TOTAL, status_counter};
use crate::record::Record;
use crate::repo::RepoPath;
use crate::runs::Pipeline;
use crate::status::BuildStatus;
use crate::time::InvalidTime;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::future::Future;

pub const DEFAULT_WINDOW: &str = "7d";
/// Recent runs listed per project.
pub const RECENT_RUNS: usize = 5;

/// One project's counters for one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounters {
    pub day: NaiveDate,
    pub repo: RepoPath,
    pub counters: BTreeMap<String, i64>,
}

/// Which projects a summary covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    All,
    /// Projects whose path starts with `group/`.
    Group(RepoPath),
    Project(RepoPath),
}

/// A run listed under a project: a pipeline or a build.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentRun {
    pub kind: &'static str,
    pub id: String,
    pub provider: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub status: BuildStatus,
    #[serde(serialize_with = "crate::time::millis")]
    pub created_at: DateTime<Utc>,
    pub duration_ms: Option<u64>,
    pub url: Option<String>,
    #[serde(skip)]
    pub project_id: Option<String>,
}

impl RecentRun {
    pub fn of_pipeline(pipeline: &Pipeline) -> Self {
        RecentRun {
            kind: Pipeline::KIND,
            id: pipeline.pipeline_id.clone(),
            provider: Some(pipeline.provider.clone()),
            git_ref: pipeline.git_ref.clone(),
            sha: pipeline.sha.clone(),
            status: pipeline.status,
            created_at: pipeline.first_seen,
            duration_ms: pipeline.duration_ms,
            url: pipeline.url.clone(),
            project_id: pipeline.project_id.clone(),
        }
    }

    pub fn of_build(build: &Build) -> Self {
        RecentRun {
            kind: Build::KIND,
            id: build.build_id.clone(),
            provider: None,
            git_ref: Some(build.branch.clone()),
            sha: build.commit.clone(),
            status: build.status,
            created_at: build.timestamp,
            duration_ms: build.duration_ms,
            url: None,
            project_id: None,
        }
    }

    /// Whether both describe the same pipeline or build (in any state).
    fn same_run(&self, other: &RecentRun) -> bool {
        self.kind == other.kind && self.provider == other.provider && self.id == other.id
    }
}

/// The order runs are listed in: newest first; at the same time pipelines before builds, then
/// by provider and id, descending (the order the by-time index gives).
fn newest_first(a: &RecentRun, b: &RecentRun) -> Ordering {
    let pipelines_first = |run: &RecentRun| run.kind != Pipeline::KIND;
    b.created_at
        .cmp(&a.created_at)
        .then_with(|| pipelines_first(a).cmp(&pipelines_first(b)))
        .then_with(|| (&b.provider, &b.id).cmp(&(&a.provider, &a.id)))
}

/// A run kept in its repo's recent runs, with the revision of the record it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRun {
    pub run: RecentRun,
    pub revision: u64,
}

/// A repo's newest runs as kept beside its records, so a summary reads one small item per
/// project instead of querying its history: at most [`RECENT_RUNS`], newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeptRecentRuns {
    runs: Vec<KeptRun>,
}

impl KeptRecentRuns {
    /// Kept runs in any order (as stored); the list is put in order and bounded.
    pub fn new(mut runs: Vec<KeptRun>) -> Self {
        // The newest revision of a run first, so it is the one kept.
        runs.sort_by(|a, b| newest_first(&a.run, &b.run).then(b.revision.cmp(&a.revision)));
        runs.dedup_by(|later, earlier| later.run.same_run(&earlier.run));
        runs.truncate(RECENT_RUNS);
        KeptRecentRuns { runs }
    }

    pub fn kept(&self) -> &[KeptRun] {
        &self.runs
    }

    pub fn runs(&self) -> Vec<RecentRun> {
        self.runs.iter().map(|kept| kept.run.clone()).collect()
    }

    /// Applies a record's state at `revision`: a newer revision of a kept run replaces it, a
    /// run newer than the oldest kept one enters (pushing the oldest out). Returns whether
    /// anything changed: an older or the same revision, or a run older than every kept one
    /// (when the list is full), changes nothing, whatever order reports arrive in.
    pub fn apply(&mut self, run: RecentRun, revision: u64) -> bool {
        if let Some(kept) = self.runs.iter_mut().find(|kept| kept.run.same_run(&run)) {
            if kept.revision >= revision {
                return false;
            }
            *kept = KeptRun { run, revision };
        } else {
            let full = self.runs.len() >= RECENT_RUNS;
            if full
                && self
                    .runs
                    .last()
                    .is_some_and(|oldest| newest_first(&run, &oldest.run) != Ordering::Less)
            {
                return false;
            }
            self.runs.push(KeptRun { run, revision });
        }
        self.runs.sort_by(|a, b| newest_first(&a.run, &b.run));
        self.runs.truncate(RECENT_RUNS);
        true
    }
}

pub trait SummarySource: Send + Sync {
    /// Counters of the projects in `scope` on each of `days`.
    fn day_counters(
        &self,
        days: &[NaiveDate],
        scope: &ProjectScope,
    ) -> impl Future<Output = Result<Vec<DayCounters>, crate::ports::StoreError>> + Send;

    /// The kept recent runs ([`KeptRecentRuns`]) of each of `repos` that has them, newest
    /// first. A repo with no runs recorded since they are kept is absent from the answer.
    fn kept_recent_runs(
        &self,
        repos: &[RepoPath],
    ) -> impl Future<Output = Result<BTreeMap<RepoPath, Vec<RecentRun>>, crate::ports::StoreError>> + Send;

    /// The newest runs (pipelines and builds) of one project, newest first, from its history
    /// (index queries): for repos with nothing kept.
    fn recent_runs(
        &self,
        repo: &RepoPath,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecentRun>, crate::ports::StoreError>> + Send;
}

/// A project as gitlab-summary names it: GitLab's numeric id where a webhook told us, else
/// the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ProjectId {
    Number(u64),
    Path(String),
}

impl ProjectId {
    pub fn of(text: &str) -> Self {
        match text.parse::<u64>() {
            Ok(number) if !text.starts_with('0') || text == "0" => ProjectId::Number(number),
            _ => ProjectId::Path(text.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectSummary {
    pub project_id: ProjectId,
    pub project_name: String,
    pub total_pipelines: i64,
    pub successful: i64,
    pub failed: i64,
    pub running: i64,
    /// Seconds, summed over finished runs with a duration.
    pub total_duration: f64,
    /// Percent of finished runs that succeeded (success / (success + failure)); `null` when
    /// nothing finished.
    pub success_rate: Option<f64>,
    pub recent_pipelines: Vec<RecentRun>,
}

/// gitlab-summary's shape: the overall figures nested under `summary`, then `projects`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub summary: Overall,
    pub projects: Vec<ProjectSummary>,
    #[serde(serialize_with = "crate::time::millis")]
    pub since: DateTime<Utc>,
    /// The first UTC day counted: windows are counted in whole days.
    pub counted_from: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overall {
    pub total_pipelines: i64,
    pub successful: i64,
    pub failed: i64,
    pub running: i64,
    /// Seconds per finished run with a duration; `null` when there is none.
    pub average_duration: Option<f64>,
    pub overall_success_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSummaryQuery {
    #[error("query parameter `since` {0}")]
    Since(InvalidTime),
    #[error("query parameter `{0}` {1}")]
    Path(&'static str, String),
}

/// The UTC days a window starting at `since` touches, oldest first.
pub fn days_between(since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<NaiveDate> {
    let (first, last) = (since.date_naive(), now.date_naive());
    first.iter_days().take_while(|day| *day <= last).collect()
}

pub fn parse_scope(
    project: Option<&str>,
    group: Option<&str>,
) -> Result<ProjectScope, InvalidSummaryQuery> {
    let parse = |name: &'static str, raw: &str| {
        RepoPath::parse(raw).map_err(|e| InvalidSummaryQuery::Path(name, e.to_string()))
    };
    match (
        project.filter(|p| !p.is_empty()),
        group.filter(|g| !g.is_empty()),
    ) {
        (Some(project), _) => Ok(ProjectScope::Project(parse("project", project)?)),
        (None, Some(group)) => Ok(ProjectScope::Group(parse("group", group)?)),
        (None, None) => Ok(ProjectScope::All),
    }
}

pub fn parse_since(
    raw: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, InvalidSummaryQuery> {
    let raw = raw.filter(|s| !s.is_empty()).unwrap_or(DEFAULT_WINDOW);
    // A window (`7d`) or an RFC 3339 time, as every endpoint that takes `since` accepts.
    crate::time::parse_since(raw, now).map_err(InvalidSummaryQuery::Since)
}

fn rate(successful: i64, failed: i64) -> Option<f64> {
    let finished = successful + failed;
    (finished > 0).then(|| (successful as f64 * 1000.0 / finished as f64).round() / 10.0)
}

/// Adds up day counters into per-project and overall figures. Projects are ordered by path.
pub fn summarise(since: DateTime<Utc>, counters: &[DayCounters]) -> Summary {
    let mut per_project: BTreeMap<&RepoPath, BTreeMap<&str, i64>> = BTreeMap::new();
    for day in counters {
        let sums = per_project.entry(&day.repo).or_default();
        for (name, value) in &day.counters {
            *sums.entry(name.as_str()).or_default() += value;
        }
    }
    let status = |sums: &BTreeMap<&str, i64>, s: BuildStatus| {
        sums.get(status_counter(s).as_str()).copied().unwrap_or(0)
    };
    let mut projects = Vec::new();
    let (mut duration_sum, mut duration_count) = (0i64, 0i64);
    for (repo, sums) in &per_project {
        let total = sums.get(TOTAL).copied().unwrap_or(0);
        if total == 0 {
            continue;
        }
        let successful = status(sums, BuildStatus::Success);
        let failed = status(sums, BuildStatus::Failure);
        let running = status(sums, BuildStatus::Running) + status(sums, BuildStatus::Pending);
        let sum_ms = sums.get(DURATION_SUM_MS).copied().unwrap_or(0);
        duration_sum += sum_ms;
        duration_count += sums.get(DURATION_COUNT).copied().unwrap_or(0);
        projects.push(ProjectSummary {
            project_id: ProjectId::Path(repo.to_string()),
            project_name: repo.to_string(),
            total_pipelines: total,
            successful,
            failed,
            running,
            total_duration: sum_ms as f64 / 1000.0,
            success_rate: rate(successful, failed),
            recent_pipelines: Vec::new(),
        });
    }
    let sum = |field: fn(&ProjectSummary) -> i64| projects.iter().map(field).sum::<i64>();
    let (successful, failed) = (sum(|p| p.successful), sum(|p| p.failed));
    Summary {
        since,
        counted_from: since.date_naive(),
        summary: Overall {
            total_pipelines: sum(|p| p.total_pipelines),
            successful,
            failed,
            running: sum(|p| p.running),
            average_duration: (duration_count > 0)
                .then(|| (duration_sum as f64 / duration_count as f64 / 100.0).round() / 10.0),
            overall_success_rate: rate(successful, failed),
        },
        projects,
    }
}

/// The summary with each project's recent runs; the GitLab project id is used as
/// `project_id` where a run carries one.
pub async fn pipeline_summary<S: SummarySource>(
    source: &S,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    scope: &ProjectScope,
) -> Result<Summary, crate::ports::StoreError> {
    let counters = source
        .day_counters(&days_between(since, now), scope)
        .await?;
    let mut summary = summarise(since, &counters);
    let repos = summary
        .projects
        .iter()
        .map(|project| {
            RepoPath::parse(&project.project_name)
                .map_err(|e| crate::ports::StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut kept = source.kept_recent_runs(&repos).await?;
    for (project, repo) in summary.projects.iter_mut().zip(&repos) {
        // Repos recorded only before recent runs were kept: their history, as before.
        let mut recent = match kept.remove(repo) {
            Some(runs) => runs,
            None => source.recent_runs(repo, RECENT_RUNS).await?,
        };
        if let Some(id) = recent.iter().find_map(|run| run.project_id.clone()) {
            project.project_id = ProjectId::of(&id);
        }
        // Only runs inside the window, as the figures beside them.
        recent.retain(|run| run.created_at >= since);
        project.recent_pipelines = recent;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32, repo: &str, pairs: &[(&str, i64)]) -> DayCounters {
        DayCounters {
            day: NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
            repo: RepoPath::parse(repo).unwrap(),
            counters: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn adds_days_and_projects() {
        let since = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let summary = summarise(
            since,
            &[
                day(
                    20,
                    "g/a",
                    &[
                        ("total", 3),
                        ("status_success", 2),
                        ("status_failure", 1),
                        ("duration_sum_ms", 90_000),
                        ("duration_count", 3),
                    ],
                ),
                day(
                    21,
                    "g/a",
                    &[
                        ("total", 2),
                        ("status_running", 1),
                        ("status_success", 1),
                        ("duration_sum_ms", 30_000),
                        ("duration_count", 1),
                    ],
                ),
                day(21, "g/b", &[("total", 1), ("status_failure", 1)]),
                day(21, "g/empty", &[("total", 0)]),
            ],
        );
        assert_eq!(summary.projects.len(), 2);
        let a = &summary.projects[0];
        assert_eq!(
            (a.total_pipelines, a.successful, a.failed, a.running),
            (5, 3, 1, 1)
        );
        assert_eq!(a.total_duration, 120.0);
        assert_eq!(a.success_rate, Some(75.0));
        assert_eq!(summary.projects[1].success_rate, Some(0.0));
        let overall = &summary.summary;
        assert_eq!(
            (overall.total_pipelines, overall.successful, overall.failed),
            (6, 3, 2)
        );
        assert_eq!(overall.average_duration, Some(30.0));
        assert_eq!(overall.overall_success_rate, Some(60.0));
        assert_eq!(summarise(since, &[]).summary.overall_success_rate, None);
        // gitlab-summary's nesting; a numeric project id is a number.
        let shown = serde_json::to_value(&summary).unwrap();
        assert_eq!(shown["summary"]["total_pipelines"], 6);
        assert_eq!(
            serde_json::json!(ProjectId::of("42")),
            serde_json::json!(42)
        );
        assert_eq!(
            serde_json::json!(ProjectId::of("g/app")),
            serde_json::json!("g/app")
        );
    }

    fn run(kind: &'static str, id: &str, minute: u32, status: BuildStatus) -> RecentRun {
        RecentRun {
            kind,
            id: id.to_string(),
            provider: (kind == Pipeline::KIND).then(|| "gitlab".to_string()),
            git_ref: Some("main".into()),
            sha: None,
            status,
            created_at: DateTime::parse_from_rfc3339(&format!("2026-11-20T10:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            duration_ms: None,
            url: None,
            project_id: None,
        }
    }

    fn ids(kept: &KeptRecentRuns) -> Vec<(String, BuildStatus)> {
        kept.runs().into_iter().map(|r| (r.id, r.status)).collect()
    }

    #[test]
    fn kept_runs_hold_the_newest_runs_in_their_latest_state_whatever_the_order() {
        use BuildStatus::{Running, Success};
        let reports = [
            (run("pipeline", "p1", 1, Running), 1),
            (run("build", "b2", 2, Success), 1),
            (run("pipeline", "p1", 1, Success), 2),
            (run("pipeline", "p3", 3, Running), 1),
            (run("build", "b4", 4, Success), 1),
            (run("build", "b5", 5, Success), 1),
            (run("pipeline", "p6", 6, Success), 1),
            (run("pipeline", "p3", 3, Success), 2),
            (run("build", "b0", 0, Success), 1),
        ];
        let mut forward = KeptRecentRuns::default();
        for (run, revision) in reports.iter().cloned() {
            forward.apply(run, revision);
        }
        let expected = vec![
            ("p6".to_string(), Success),
            ("b5".to_string(), Success),
            ("b4".to_string(), Success),
            ("p3".to_string(), Success),
            ("b2".to_string(), Success),
        ];
        assert_eq!(ids(&forward), expected);
        // Any order of the same writes gives the same list: an older revision never
        // replaces a newer one, and a run older than everything kept is not let in.
        let mut backward = KeptRecentRuns::default();
        for (run, revision) in reports.iter().rev().cloned() {
            backward.apply(run, revision);
        }
        assert_eq!(ids(&backward), expected);
        assert!(!backward.apply(run("pipeline", "p3", 3, Running), 1));
        assert!(!backward.apply(run("build", "b0", 0, Success), 1));
        assert!(backward.apply(run("build", "b7", 7, Running), 1));
        assert_eq!(backward.kept().len(), RECENT_RUNS);
        // Same time: pipelines before builds, as the history's index lists them.
        let tied = KeptRecentRuns::new(vec![
            KeptRun {
                run: run("build", "b", 9, Success),
                revision: 1,
            },
            KeptRun {
                run: run("pipeline", "p", 9, Success),
                revision: 1,
            },
            KeptRun {
                run: run("pipeline", "p", 9, Running),
                revision: 0,
            },
        ]);
        assert_eq!(
            ids(&tied),
            vec![("p".to_string(), Success), ("b".to_string(), Success)]
        );
    }

    #[test]
    fn windows_cover_whole_days() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let since = parse_since(Some("2d"), now).unwrap();
        assert_eq!(days_between(since, now).len(), 3);
        assert_eq!(days_between(parse_since(None, now).unwrap(), now).len(), 8);
        assert_eq!(
            days_between(parse_since(Some("30m"), now).unwrap(), now).len(),
            1
        );
        assert!(parse_since(Some("forever"), now).is_err());
        assert_eq!(
            parse_since(Some("2026-11-21T00:00:00Z"), now).unwrap(),
            DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z").unwrap()
        );
        assert!(parse_since(Some("900d"), now).is_err());
        assert_eq!(
            parse_scope(None, Some("g")),
            Ok(ProjectScope::Group(RepoPath::parse("g").unwrap()))
        );
        assert!(parse_scope(Some("a//b"), None).is_err());
    }
}
