//! Requesting the analysis of a failed job (`POST /api/ai/analyse`): answered at once from
//! the job's stored analysis, from an earlier analysis of the same failure, or (with no LLM)
//! from the triage; otherwise queued for the worker, spending one unit of the LLM budget, and
//! waited for as long as the caller allows.

use crate::analysis_request::{
    ANALYSIS_REQUEST_VERSION, AnalysisQueue, AnalysisRequest, QueueError,
};
use crate::analysis_wait::{Watch, wait_for_analysis};
use crate::budget::{BudgetCounters, BudgetError, BudgetLimits, spend};
use crate::job_analysis::{
    AnalyseError, AnalysisSettings, AnalysisSource, AnalysisStatus, AnalysisStore, JobAnalysis,
    JobToAnalyse, Llm, analyse_job, reuse_for_job,
};
use crate::junit::evidence::report_evidence;
use crate::junit::history::FlakySettings;
use crate::junit::ingest::{JobKey, TestReportStore};
use crate::last_green::GreenRunStore;
use crate::ports::StoreError;
use crate::record::RecordStore;
use crate::runs::Job;
use crate::status::BuildStatus;
use crate::system_prompt::{SystemPrompts, analysis_settings};
use crate::trace::{TraceKey, TraceStore};
use std::time::Duration;

/// The longest stored log read to decide whether a failure was seen before.
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Everything requesting an analysis reads and writes.
pub trait AnalysisRequestStore:
    AnalysisStore
    + GreenRunStore
    + TraceStore
    + RecordStore<Job>
    + TestReportStore
    + BudgetCounters
    + SystemPrompts
{
}

impl<S> AnalysisRequestStore for S where
    S: AnalysisStore
        + GreenRunStore
        + TraceStore
        + RecordStore<Job>
        + TestReportStore
        + BudgetCounters
        + SystemPrompts
{
}

/// Which LLM the API may use.
#[derive(Debug)]
pub enum LlmAccess<'a, L> {
    /// None is configured: analyses are the triage's, and there are no follow-ups.
    Absent,
    /// The API may call it itself.
    Direct(&'a L),
    /// Only the worker may call it (Bedrock): follow-ups are queued for the worker.
    WorkerOnly,
}

impl<L> LlmAccess<'_, L> {
    pub fn is_configured(&self) -> bool {
        !matches!(self, LlmAccess::Absent)
    }
}

/// What the analysis use cases talk to.
pub struct AnalysisPorts<'a, S, Q, L> {
    pub store: &'a S,
    /// `None` when no analysis queue is configured.
    pub queue: Option<&'a Q>,
    pub llm: LlmAccess<'a, L>,
}

/// What the deployment configured about analyses.
#[derive(Debug, Clone)]
pub struct AnalysisPolicy {
    /// The settings before the administrator's stored system prompt is applied.
    pub settings: AnalysisSettings,
    /// How test reports count flaky tests (for the job's report evidence).
    pub flaky: FlakySettings,
    /// The hourly LLM budgets a queued analysis or a follow-up spends from.
    pub budget: BudgetLimits,
}

/// An analysis as someone asked for it.
#[derive(Debug, Clone)]
pub struct RequestedAnalysis<'a> {
    /// The job and what the request says about it; what a webhook or push recorded about the
    /// job wins, and its test reports are looked up (`report` is not read).
    pub job: JobToAnalyse<'a>,
    /// A log sent with the request: stored as the job's log.
    pub log: Option<&'a [u8]>,
    /// The opaque id of the caller's key, whose budget a queued analysis spends.
    pub caller_key: &'a str,
    /// How long to wait for the worker once the job is queued.
    pub wait: Duration,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisAnswer {
    /// An analysis; `cached` when it was made before this request (of this job, or of the
    /// same failure elsewhere) rather than by it.
    Ready {
        analysis: Box<JobAnalysis>,
        cached: bool,
    },
    /// Queued for the worker, which did not finish within the wait.
    Queued,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestAnalysisError {
    #[error("job {0} succeeded: there is no failure to analyse")]
    JobSucceeded(String),
    #[error("analysis is not available: no analysis queue is configured")]
    NoQueue,
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error("the analysis request was not queued: {0}")]
    NotQueued(#[source] QueueError),
    /// The triage-only analysis made in place of the worker's failed.
    #[error(transparent)]
    Triage(AnalyseError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answers a request for the analysis of a failed job (see the module's documentation).
pub async fn request_analysis<S, Q, L>(
    ports: &AnalysisPorts<'_, S, Q, L>,
    policy: &AnalysisPolicy,
    requested: RequestedAnalysis<'_>,
) -> Result<AnalysisAnswer, RequestAnalysisError>
where
    S: AnalysisRequestStore,
    Q: AnalysisQueue,
    L: Llm,
{
    let store = ports.store;
    let asked = &requested.job;
    let (provider, repo, job_id) = (asked.provider, asked.repo, asked.job_id);
    let recorded = RecordStore::<Job>::get(store, &Job::key_of(provider, repo, job_id))
        .await?
        .map(|stored| stored.record);
    if recorded
        .as_ref()
        .is_some_and(|job| job.status == BuildStatus::Success)
    {
        return Err(RequestAnalysisError::JobSucceeded(job_id.to_string()));
    }
    let report_of = JobKey {
        provider: provider.to_string(),
        repo: repo.clone(),
        job_id: job_id.to_string(),
    };
    let report = report_evidence(store, &report_of, chrono::Utc::now(), &policy.flaky).await?;
    let job = with_recorded_facts(asked, recorded.as_ref(), report.as_ref());

    if let Some(existing) = store
        .get_analysis(provider, repo, job_id)
        .await?
        .filter(|a| a.status == AnalysisStatus::Done)
    {
        return Ok(AnalysisAnswer::Ready {
            analysis: Box::new(existing),
            cached: true,
        });
    }
    if let Some(answer) = answer_from_log(ports, policy, &job, requested.log).await? {
        return Ok(answer);
    }

    let queue = ports.queue.ok_or(RequestAnalysisError::NoQueue)?;
    spend(
        store,
        policy.budget,
        requested.caller_key,
        chrono::Utc::now(),
    )
    .await?;
    queue
        .send(&queued_request(&job))
        .await
        .map_err(RequestAnalysisError::NotQueued)?;
    let deadline = tokio::time::Instant::now() + requested.wait;
    let analysed = wait_for_analysis(store, provider, repo, job_id, deadline, |seen| {
        seen.map_or(Watch::KeepWaiting, Watch::Found)
    })
    .await?;
    Ok(match analysed {
        Some(analysis) => AnalysisAnswer::Ready {
            analysis: Box::new(analysis),
            cached: false,
        },
        None => AnalysisAnswer::Queued,
    })
}

/// The job as the request names it, with what was recorded about it (which wins over what the
/// request says) and its test report evidence.
fn with_recorded_facts<'a>(
    asked: &JobToAnalyse<'a>,
    recorded: Option<&'a Job>,
    report: Option<&'a crate::junit::evidence::ReportEvidence>,
) -> JobToAnalyse<'a> {
    JobToAnalyse {
        pipeline_id: recorded
            .and_then(|job| job.pipeline_id.as_deref())
            .or(asked.pipeline_id),
        job_name: recorded
            .map(|job| job.name.as_str())
            .filter(|name| !name.is_empty())
            .or(asked.job_name),
        stage: recorded
            .and_then(|job| job.stage.as_deref())
            .or(asked.stage),
        branch: recorded
            .and_then(|job| job.git_ref.as_deref())
            .or(asked.branch),
        report,
        ..asked.clone()
    }
}

/// Stores a sent log, then answers without the worker when the job's log allows: with no LLM
/// the triage is the answer (quick enough to give now); with one, an earlier analysis of the
/// same failure. `None`: the job needs the worker.
async fn answer_from_log<S, Q, L>(
    ports: &AnalysisPorts<'_, S, Q, L>,
    policy: &AnalysisPolicy,
    job: &JobToAnalyse<'_>,
    sent_log: Option<&[u8]>,
) -> Result<Option<AnalysisAnswer>, RequestAnalysisError>
where
    S: AnalysisRequestStore,
    L: Llm,
{
    let store = ports.store;
    let trace_key = TraceKey {
        provider: job.provider.to_string(),
        repo: job.repo.clone(),
        job_id: job.job_id.to_string(),
    };
    if let Some(log) = sent_log {
        store.replace(&trace_key, log).await?;
    }
    let Some(log) = store
        .read(&trace_key, 0, Some(MAX_LOG_BYTES))
        .await?
        .map(|slice| slice.bytes)
    else {
        return Ok(None);
    };
    let settings = analysis_settings(store, &policy.settings).await?;
    if !ports.llm.is_configured() {
        // `analyse_job` reuses an earlier analysis of the same failure itself.
        let analysis = analyse_job(store, None::<&L>, &settings, job, &log)
            .await
            .map_err(RequestAnalysisError::Triage)?;
        let cached = analysis.source == AnalysisSource::Reused;
        return Ok(Some(AnalysisAnswer::Ready {
            analysis: Box::new(analysis),
            cached,
        }));
    }
    let reused = reuse_for_job(store, &settings, job, &log, true).await?;
    Ok(reused.map(|analysis| AnalysisAnswer::Ready {
        analysis: Box::new(analysis),
        cached: true,
    }))
}

/// The message that asks the worker to analyse the job.
fn queued_request(job: &JobToAnalyse<'_>) -> AnalysisRequest {
    AnalysisRequest {
        version: ANALYSIS_REQUEST_VERSION,
        provider: job.provider.to_string(),
        repo: job.repo.clone(),
        job_id: job.job_id.to_string(),
        pipeline_id: job.pipeline_id.map(str::to_string),
        job_name: job.job_name.map(str::to_string),
        branch: job.branch.map(str::to_string),
        requested_at: chrono::Utc::now(),
        origin: "api".into(),
        question: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoPath;

    fn recorded_job(repo: &RepoPath) -> Job {
        let mut job = Job::key_of("gitlab", repo, "7");
        job.name = "unit".into();
        job.pipeline_id = Some("70".into());
        job.git_ref = Some("main".into());
        job
    }

    #[test]
    fn what_was_recorded_wins_over_what_the_request_says() {
        let repo = RepoPath::parse("team/app").unwrap();
        let asked = JobToAnalyse {
            provider: "gitlab",
            repo: &repo,
            job_id: "7",
            pipeline_id: Some("1"),
            job_name: Some("asked-name"),
            stage: Some("test"),
            branch: Some("feature"),
            report: None,
        };
        let recorded = recorded_job(&repo);
        let job = with_recorded_facts(&asked, Some(&recorded), None);
        assert_eq!(job.pipeline_id, Some("70"));
        assert_eq!(job.job_name, Some("unit"));
        assert_eq!(job.branch, Some("main"));
        // Not recorded: the request's word stands.
        assert_eq!(job.stage, Some("test"));

        let mut unnamed = recorded_job(&repo);
        unnamed.name.clear();
        let job = with_recorded_facts(&asked, Some(&unnamed), None);
        assert_eq!(job.job_name, Some("asked-name"));

        let job = with_recorded_facts(&asked, None, None);
        assert_eq!((job.pipeline_id, job.branch), (Some("1"), Some("feature")));
    }

    #[test]
    fn the_queued_message_carries_the_jobs_facts() {
        let repo = RepoPath::parse("team/app").unwrap();
        let job = JobToAnalyse {
            provider: "gitlab",
            repo: &repo,
            job_id: "7",
            pipeline_id: Some("70"),
            job_name: Some("unit"),
            stage: Some("test"),
            branch: Some("main"),
            report: None,
        };
        let request = queued_request(&job);
        assert_eq!(request.version, ANALYSIS_REQUEST_VERSION);
        assert_eq!(request.origin, "api");
        assert_eq!(request.question, None);
        assert_eq!(
            (request.job_id.as_str(), request.pipeline_id.as_deref()),
            ("7", Some("70"))
        );
        assert_eq!(request.branch.as_deref(), Some("main"));
    }
}
