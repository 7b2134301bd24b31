//! Repository analysis (the Leliel client's `get_analysis`): success rate and its trend, where
//! failures happen, how long runs take, how fast the default branch recovers, which branches
//! are red and which jobs look flaky. Pure computation over what the store returns.

use crate::counters::{
    DURATION_BUCKET_BOUNDS_MS, DURATION_BUCKETS, bucket_counter, status_counter,
};
use crate::ports::StoreError;
use crate::repo::RepoPath;
use crate::status::BuildStatus;
use crate::summary::{DayCounters, ProjectScope, SummarySource, days_between};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

/// One finished or running run (build or pipeline) on a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPoint {
    pub branch: String,
    pub sha: Option<String>,
    pub status: BuildStatus,
    pub at: DateTime<Utc>,
}

/// One job outcome, for flakiness.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPoint {
    pub name: String,
    pub sha: Option<String>,
    pub status: BuildStatus,
}

pub trait AnalysisSource: SummarySource {
    /// Builds and pipelines of `repo` first seen since `since`, oldest first.
    fn runs_since(
        &self,
        repo: &RepoPath,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<RunPoint>, StoreError>> + Send;

    /// Jobs of `repo` first seen since `since`.
    fn jobs_since(
        &self,
        repo: &RepoPath,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<JobPoint>, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    pub branch: String,
    /// Mean seconds from the first failure to the next success.
    pub mean_seconds: Option<f64>,
    pub recoveries: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlakyCandidate {
    pub job: String,
    pub sha: String,
    pub failed: usize,
    pub passed: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepoAnalysis {
    pub repo: RepoPath,
    pub since: DateTime<Utc>,
    pub total_runs: i64,
    pub success_rate: Option<f64>,
    pub previous_success_rate: Option<f64>,
    /// Percentage points against the previous window of the same length.
    pub success_rate_change: Option<f64>,
    pub failures_by_branch: BTreeMap<String, usize>,
    /// Estimated from the duration histogram: the upper bound of the bucket holding the
    /// percentile, in seconds.
    pub duration_p50: Option<f64>,
    pub duration_p90: Option<f64>,
    pub mttr: Recovery,
    pub red_branches: Vec<String>,
    pub flaky_candidates: Vec<FlakyCandidate>,
    /// The most frequent failures (fingerprints) of analysed jobs in the window.
    pub top_failures: Vec<serde_json::Value>,
    /// The same figures day by day (UTC), oldest first, for charts.
    pub daily: Vec<DayFigures>,
}

/// One UTC day of a repo: runs, success rate and duration percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayFigures {
    pub day: chrono::NaiveDate,
    pub runs: i64,
    pub success_rate: Option<f64>,
    pub duration_p50: Option<f64>,
    pub duration_p90: Option<f64>,
}

/// Every day of the window, with or without runs (a gap in a chart is a day without runs).
fn daily_figures(days: &[chrono::NaiveDate], counters: &[DayCounters]) -> Vec<DayFigures> {
    days.iter()
        .map(|day| {
            let of_day = sums(
                &counters
                    .iter()
                    .filter(|c| c.day == *day)
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            DayFigures {
                day: *day,
                runs: of_day.get(crate::counters::TOTAL).copied().unwrap_or(0),
                success_rate: success_rate(&of_day),
                duration_p50: percentile(&of_day, 0.5),
                duration_p90: percentile(&of_day, 0.9),
            }
        })
        .collect()
}

fn sums(counters: &[DayCounters]) -> BTreeMap<String, i64> {
    let mut sums = BTreeMap::new();
    for day in counters {
        for (name, value) in &day.counters {
            *sums.entry(name.clone()).or_default() += value;
        }
    }
    sums
}

fn success_rate(sums: &BTreeMap<String, i64>) -> Option<f64> {
    let get = |s| sums.get(&status_counter(s)).copied().unwrap_or(0);
    let (ok, failed) = (get(BuildStatus::Success), get(BuildStatus::Failure));
    (ok + failed > 0).then(|| (ok as f64 * 1000.0 / (ok + failed) as f64).round() / 10.0)
}

/// The upper bound (seconds) of the histogram bucket where the cumulative count reaches
/// `fraction`; the last bucket has no bound and reports the largest one.
pub fn percentile(sums: &BTreeMap<String, i64>, fraction: f64) -> Option<f64> {
    let counts: Vec<i64> = (0..DURATION_BUCKETS)
        .map(|bucket| {
            sums.get(&bucket_counter(bucket))
                .copied()
                .unwrap_or(0)
                .max(0)
        })
        .collect();
    let total: i64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let wanted = (total as f64 * fraction).ceil() as i64;
    let mut seen = 0;
    for (bucket, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            let bound = DURATION_BUCKET_BOUNDS_MS[bucket.min(DURATION_BUCKET_BOUNDS_MS.len() - 1)];
            return Some(bound as f64 / 1000.0);
        }
    }
    None
}

/// Mean time from the first failure of a red streak to the success that ends it.
pub fn recovery(branch: &str, runs: &[RunPoint]) -> Recovery {
    let mut failing_since: Option<DateTime<Utc>> = None;
    let mut durations = Vec::new();
    for run in runs.iter().filter(|r| r.branch == branch) {
        match run.status {
            BuildStatus::Failure if failing_since.is_none() => failing_since = Some(run.at),
            BuildStatus::Success => {
                if let Some(start) = failing_since.take() {
                    durations.push((run.at - start).num_milliseconds() as f64 / 1000.0);
                }
            }
            _ => {}
        }
    }
    Recovery {
        branch: branch.to_string(),
        mean_seconds: (!durations.is_empty())
            .then(|| durations.iter().sum::<f64>() / durations.len() as f64),
        recoveries: durations.len(),
    }
}

/// Branches whose latest finished run failed.
pub fn red_branches(runs: &[RunPoint]) -> Vec<String> {
    let mut latest: BTreeMap<&str, &RunPoint> = BTreeMap::new();
    for run in runs
        .iter()
        .filter(|r| matches!(r.status, BuildStatus::Success | BuildStatus::Failure))
    {
        let entry = latest.entry(run.branch.as_str()).or_insert(run);
        if run.at >= entry.at {
            *entry = run;
        }
    }
    latest
        .into_iter()
        .filter(|(_, run)| run.status == BuildStatus::Failure)
        .map(|(branch, _)| branch.to_string())
        .collect()
}

/// Jobs that both failed and passed on the same commit.
pub fn flaky_candidates(jobs: &[JobPoint]) -> Vec<FlakyCandidate> {
    let mut outcomes: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for job in jobs {
        let Some(sha) = job.sha.as_deref() else {
            continue;
        };
        let entry = outcomes.entry((job.name.as_str(), sha)).or_default();
        match job.status {
            BuildStatus::Failure => entry.0 += 1,
            BuildStatus::Success => entry.1 += 1,
            _ => {}
        }
    }
    outcomes
        .into_iter()
        .filter(|(_, (failed, passed))| *failed > 0 && *passed > 0)
        .map(|((job, sha), (failed, passed))| FlakyCandidate {
            job: job.to_string(),
            sha: sha.to_string(),
            failed,
            passed,
        })
        .collect()
}

/// The default branch: the one asked for, else `main` or `master`, whichever has runs.
fn default_branch(requested: Option<&str>, runs: &[RunPoint]) -> String {
    if let Some(branch) = requested {
        return branch.to_string();
    }
    let branches: BTreeSet<&str> = runs.iter().map(|r| r.branch.as_str()).collect();
    if !branches.contains("main") && branches.contains("master") {
        "master"
    } else {
        "main"
    }
    .to_string()
}

pub async fn analyse<S: AnalysisSource>(
    source: &S,
    repo: &RepoPath,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    branch: Option<&str>,
) -> Result<RepoAnalysis, StoreError> {
    let scope = ProjectScope::Project(repo.clone());
    let window = now - since;
    let current_days = days_between(since, now);
    let current_counters = source.day_counters(&current_days, &scope).await?;
    let current = sums(&current_counters);
    let previous_days = days_between(since - window, since - chrono::Duration::days(1));
    let previous = sums(&source.day_counters(&previous_days, &scope).await?);
    let runs = source.runs_since(repo, since).await?;
    let jobs = source.jobs_since(repo, since).await?;
    let mut failures_by_branch = BTreeMap::new();
    for run in runs.iter().filter(|r| r.status == BuildStatus::Failure) {
        *failures_by_branch.entry(run.branch.clone()).or_default() += 1;
    }
    let (rate, previous_rate) = (success_rate(&current), success_rate(&previous));
    Ok(RepoAnalysis {
        repo: repo.clone(),
        since,
        total_runs: current.get(crate::counters::TOTAL).copied().unwrap_or(0),
        success_rate: rate,
        previous_success_rate: previous_rate,
        success_rate_change: rate
            .zip(previous_rate)
            .map(|(a, b)| ((a - b) * 10.0).round() / 10.0),
        failures_by_branch,
        duration_p50: percentile(&current, 0.5),
        duration_p90: percentile(&current, 0.9),
        mttr: recovery(&default_branch(branch, &runs), &runs),
        red_branches: red_branches(&runs),
        flaky_candidates: flaky_candidates(&jobs),
        top_failures: Vec::new(),
        daily: daily_figures(&current_days, &current_counters),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(branch: &str, status: BuildStatus, minute: i64) -> RunPoint {
        RunPoint {
            branch: branch.into(),
            sha: None,
            status,
            at: DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
                + chrono::Duration::minutes(minute),
        }
    }

    #[test]
    fn recovery_measures_red_streaks() {
        use BuildStatus::*;
        let runs = [
            run("main", Success, 0),
            run("main", Failure, 10),
            run("main", Failure, 20),
            run("dev", Success, 25),
            run("main", Success, 40),
            run("main", Failure, 50),
            run("main", Success, 60),
            run("main", Failure, 70),
        ];
        let mttr = recovery("main", &runs);
        assert_eq!(mttr.recoveries, 2);
        assert_eq!(mttr.mean_seconds, Some((30.0 * 60.0 + 10.0 * 60.0) / 2.0));
        assert_eq!(red_branches(&runs), ["main"]);
        assert_eq!(recovery("none", &runs).mean_seconds, None);
    }

    #[test]
    fn percentiles_from_buckets() {
        let mut sums = BTreeMap::new();
        sums.insert(bucket_counter(2), 5); // ≤ 5 s
        sums.insert(bucket_counter(7), 4); // ≤ 120 s
        sums.insert(bucket_counter(20), 1); // beyond the last bound
        assert_eq!(percentile(&sums, 0.5), Some(5.0));
        assert_eq!(percentile(&sums, 0.9), Some(120.0));
        assert_eq!(percentile(&sums, 1.0), Some(10_800.0));
        assert_eq!(percentile(&BTreeMap::new(), 0.5), None);
    }

    #[test]
    fn flaky_means_both_outcomes_on_one_commit() {
        let job = |name: &str, sha: &str, status| JobPoint {
            name: name.into(),
            sha: Some(sha.into()),
            status,
        };
        let candidates = flaky_candidates(&[
            job("unit", "a", BuildStatus::Failure),
            job("unit", "a", BuildStatus::Success),
            job("unit", "b", BuildStatus::Failure),
            job("lint", "a", BuildStatus::Success),
        ]);
        assert_eq!(
            candidates,
            vec![FlakyCandidate {
                job: "unit".into(),
                sha: "a".into(),
                failed: 1,
                passed: 1
            }]
        );
    }
}
