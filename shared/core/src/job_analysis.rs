//! Analysing one failed job: triage its log (next to the last green log of the same job when
//! one is kept), reuse a recent analysis of the same failure (same fingerprint) without asking
//! the LLM, else ask the LLM (or, without one, let the triage speak), and store the result.
//! Idempotent: a job already analysed is not analysed again.

use crate::explain::{
    ChatMessage, DEFAULT_PROMPT_LOG_CHARS, DEFAULT_SYSTEM_PROMPT, Explanation, JobFacts,
    build_followup, build_prompt, check_prompt_not_leaked, excerpt_for_prompt,
    explanation_from_triage, parse_explanation,
};
use crate::junit::evidence::ReportEvidence;
use crate::last_green::{GreenLog, GreenRunNote, GreenRunStore, JobOnBranch, green_log_for};
use crate::ports::StoreError;
use crate::redact::{Redacted, redact};
use crate::repo::RepoPath;
use crate::trace::{TraceKey, TraceStore};
use crate::triage::{LastSuccess, LineRange, Triage, triage, triage_with_last_success};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::future::Future;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisStatus {
    Done,
    /// Could not be analysed; `error` says why (not retried).
    Failed,
}

/// How the explanation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisSource {
    Llm,
    /// No LLM configured: the triage, labelled as such.
    Triage,
    /// Copied from an earlier analysis of the same failure.
    Reused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobAnalysis {
    pub provider: String,
    pub repo: RepoPath,
    pub job_id: String,
    pub pipeline_id: Option<String>,
    pub job_name: Option<String>,
    #[serde(default)]
    pub branch: Option<String>,
    pub status: AnalysisStatus,
    pub source: AnalysisSource,
    pub model: Option<String>,
    pub fingerprint: Option<String>,
    pub category: String,
    pub failed_tests: Vec<Redacted>,
    pub failing_step: Option<Redacted>,
    pub excerpt: Vec<LineRange>,
    pub result: Option<Explanation>,
    pub error: Option<String>,
    pub analysed_at: DateTime<Utc>,
    /// The job whose analysis was reused.
    pub reused_from: Option<String>,
    /// The questions and answers after the first analysis.
    pub conversation: Vec<ChatMessage>,
    /// What the job's test reports said, when it had any (its failed tests are then the
    /// report's, and `only_known_noise` says every one is flaky or quarantined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_report: Option<ReportEvidence>,
    /// Whether the last green run of the job was compared with, and which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<GreenRunNote>,
    /// Whether the job was retried automatically, and why (or why not), when its repository
    /// opted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_retry: Option<AutoRetryNote>,
}

/// The automatic retry's decision about a failed job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoRetryNote {
    pub retried: bool,
    /// "Retried automatically because …" or "Not retried automatically: …".
    pub reason: String,
    /// The job the retry made (GitLab: a new id; GitHub: the same job's next attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_job_id: Option<String>,
}

pub trait AnalysisStore: Send + Sync {
    fn get_analysis(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<JobAnalysis>, StoreError>> + Send;

    /// Stores the job's analysis; a finished one also becomes its fingerprint's latest.
    fn put_analysis(
        &self,
        analysis: &JobAnalysis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts one more job with this analysis's failure (fingerprint) in its repo.
    fn record_failure(
        &self,
        analysis: &JobAnalysis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends turns to the conversation of the job's finished analysis, after any turns
    /// appended meanwhile (none is lost), and returns the conversation as stored; `None` when
    /// the job has no finished analysis. Nothing else of the analysis changes.
    fn append_conversation(
        &self,
        provider: &str,
        repo: &RepoPath,
        job_id: &str,
        turns: &[ChatMessage],
    ) -> impl Future<Output = Result<Option<Vec<ChatMessage>>, StoreError>> + Send;

    /// The latest finished analysis with this fingerprint.
    fn latest_for_fingerprint(
        &self,
        fingerprint: &str,
    ) -> impl Future<Output = Result<Option<JobAnalysis>, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// Rate limits, 5xx, timeouts: the same call may succeed later.
    #[error("the LLM is unavailable: {0}")]
    Retryable(String),
    /// A rejected key, an unknown model, a malformed answer: retrying will not help.
    #[error("the LLM call failed: {0}")]
    Permanent(String),
}

pub trait Llm: Send + Sync {
    /// The model's name, stored with the analysis.
    fn model(&self) -> &str;

    fn complete(
        &self,
        messages: &[ChatMessage],
    ) -> impl Future<Output = Result<String, LlmError>> + Send;
}

/// What to analyse.
#[derive(Debug, Clone)]
pub struct JobToAnalyse<'a> {
    pub provider: &'a str,
    pub repo: &'a RepoPath,
    pub job_id: &'a str,
    pub pipeline_id: Option<&'a str>,
    pub job_name: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub branch: Option<&'a str>,
    /// What the job's test reports say, when it has any.
    pub report: Option<&'a ReportEvidence>,
}

#[derive(Debug, Clone)]
pub struct AnalysisSettings {
    /// An analysis of the same fingerprint this recent is reused.
    pub reuse_within: chrono::Duration,
    pub system_prompt: String,
    pub prompt_log_chars: usize,
    /// Where the last green log of a job is looked for when its own branch has none.
    pub default_branches: Vec<String>,
    /// The most of a green log read for one analysis (its first bytes: a longer green log
    /// is compared by its start).
    pub green_log_max_bytes: u64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        AnalysisSettings {
            reuse_within: chrono::Duration::days(14),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_string(),
            prompt_log_chars: DEFAULT_PROMPT_LOG_CHARS,
            default_branches: vec!["main".into(), "master".into()],
            green_log_max_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Try again later (the LLM is rate-limited or down).
    #[error(transparent)]
    Retryable(LlmError),
}

impl JobAnalysis {
    fn new(job: &JobToAnalyse<'_>, now: DateTime<Utc>) -> Self {
        JobAnalysis {
            provider: job.provider.to_string(),
            repo: job.repo.clone(),
            job_id: job.job_id.to_string(),
            pipeline_id: job.pipeline_id.map(str::to_string),
            job_name: job.job_name.map(str::to_string),
            branch: job.branch.map(str::to_string),
            status: AnalysisStatus::Done,
            source: AnalysisSource::Triage,
            model: None,
            fingerprint: None,
            category: "unknown".into(),
            failed_tests: Vec::new(),
            failing_step: None,
            excerpt: Vec::new(),
            result: None,
            error: None,
            analysed_at: now,
            reused_from: None,
            conversation: Vec::new(),
            test_report: job.report.cloned(),
            last_success: None,
            auto_retry: None,
        }
    }

    /// An analysis that could not be made, with the reason (stored, not retried).
    pub fn failed(job: &JobToAnalyse<'_>, reason: impl Into<String>) -> Self {
        let mut analysis = JobAnalysis::new(job, Utc::now());
        analysis.status = AnalysisStatus::Failed;
        analysis.error = Some(reason.into());
        analysis
    }
}

/// A new analysis carrying the triage's findings, not yet explained.
fn from_triage(job: &JobToAnalyse<'_>, triaged: &Triage) -> JobAnalysis {
    let mut analysis = JobAnalysis::new(job, Utc::now());
    analysis.fingerprint = Some(triaged.fingerprint.clone());
    analysis.category = triaged.category.as_str().to_string();
    analysis.failed_tests = triaged.failed_tests.clone();
    analysis.failing_step = triaged.failing_step.clone();
    analysis.excerpt = triaged.excerpt.clone();
    analysis
}

/// When the same failure (fingerprint) was analysed recently, stores and returns a copy of
/// that analysis for this job: no LLM is asked. A triage-only answer is not reused once an
/// LLM is configured (it could do better).
async fn reuse_earlier<S: AnalysisStore>(
    store: &S,
    analysis: &mut JobAnalysis,
    settings: &AnalysisSettings,
    llm_configured: bool,
) -> Result<Option<JobAnalysis>, StoreError> {
    let Some(fingerprint) = analysis.fingerprint.clone() else {
        return Ok(None);
    };
    let now = analysis.analysed_at;
    let Some(earlier) = store
        .latest_for_fingerprint(&fingerprint)
        .await?
        .filter(|earlier| {
            earlier.status == AnalysisStatus::Done
                && now - earlier.analysed_at <= settings.reuse_within
                && (earlier.source != AnalysisSource::Triage || !llm_configured)
        })
    else {
        return Ok(None);
    };
    analysis.source = AnalysisSource::Reused;
    analysis.model = earlier.model.clone();
    analysis.result = earlier.result.clone();
    analysis.reused_from = Some(earlier.job_id.clone());
    store.put_analysis(analysis).await?;
    store.record_failure(analysis).await?;
    Ok(Some(analysis.clone()))
}

/// Answers from an earlier analysis of the same failure when there is one (see
/// [`analyse_job`]); `None` means the job needs its own analysis.
pub async fn reuse_for_job<S: AnalysisStore>(
    store: &S,
    settings: &AnalysisSettings,
    job: &JobToAnalyse<'_>,
    log: &[u8],
    llm_configured: bool,
) -> Result<Option<JobAnalysis>, StoreError> {
    let mut analysis = from_triage(job, &triage(log));
    reuse_earlier(store, &mut analysis, settings, llm_configured).await
}

/// The triage of a failed job's log next to the last green log of the same job (its name and
/// branch from the request, else from the records), and what the analysis says about it.
async fn triage_with_green_run<S: GreenRunStore + TraceStore>(
    store: &S,
    settings: &AnalysisSettings,
    job: &JobToAnalyse<'_>,
    log: &[u8],
) -> Result<(Triage, GreenRunNote), StoreError> {
    let trace = TraceKey {
        provider: job.provider.to_string(),
        repo: job.repo.clone(),
        job_id: job.job_id.to_string(),
    };
    let recorded = match (job.job_name, job.branch) {
        (Some(_), Some(_)) => None,
        _ => store.recorded_job(&trace).await?,
    };
    let job_name = job
        .job_name
        .or(recorded.as_ref().map(|r| r.name.as_str()))
        .unwrap_or_default();
    let branch = job
        .branch
        .or(recorded.as_ref().and_then(|r| r.branch.as_deref()))
        .unwrap_or_default();
    let on_branch = JobOnBranch {
        provider: job.provider,
        repo: job.repo,
        job_name,
        branch,
    };
    let lookup = green_log_for(
        store,
        &on_branch,
        job.job_id,
        &settings.default_branches,
        settings.green_log_max_bytes,
    )
    .await?;
    let triaged = match &lookup {
        GreenLog::Found { log: green, .. } => {
            triage_with_last_success(log, &LastSuccess::from_log(green))
        }
        _ => triage(log),
    };
    let note = GreenRunNote::from_lookup(&lookup, triaged.last_success);
    Ok((triaged, note))
}

/// Analyses the job's log and stores the result; returns what was stored (or what already was).
pub async fn analyse_job<S: AnalysisStore + GreenRunStore + TraceStore, L: Llm>(
    store: &S,
    llm: Option<&L>,
    settings: &AnalysisSettings,
    job: &JobToAnalyse<'_>,
    log: &[u8],
) -> Result<JobAnalysis, AnalyseError> {
    if let Some(existing) = store
        .get_analysis(job.provider, job.repo, job.job_id)
        .await?
        .filter(|a| a.status == AnalysisStatus::Done)
    {
        return Ok(existing);
    }
    let (mut triaged, note) = triage_with_green_run(store, settings, job, log).await?;
    // A test report names the failed tests better than the log does.
    if let Some(report) = job.report
        && !report.failed_tests.is_empty()
    {
        triaged.failed_tests = report.failed_tests.clone();
    }
    let mut analysis = from_triage(job, &triaged);
    analysis.last_success = Some(note);
    if let Some(reused) = reuse_earlier(store, &mut analysis, settings, llm.is_some()).await? {
        return Ok(reused);
    }
    match llm {
        None => {
            let mut explanation = explanation_from_triage(&triaged);
            if let Some(note) = job.report.and_then(ReportEvidence::note) {
                explanation.explanation =
                    Redacted::new(&format!("{} {note}", explanation.explanation));
            }
            analysis.result = Some(explanation);
            analysis.source = AnalysisSource::Triage;
        }
        Some(llm) => {
            let excerpt = excerpt_for_prompt(log, &triaged, settings.prompt_log_chars);
            let note = job.report.and_then(ReportEvidence::for_prompt);
            let facts = JobFacts {
                repo: job.repo.as_str(),
                job_name: job.job_name,
                stage: job.stage,
                test_report: note.as_deref(),
            };
            let messages = build_prompt(&settings.system_prompt, &facts, &triaged, &excerpt);
            analysis.model = Some(llm.model().to_string());
            analysis.source = AnalysisSource::Llm;
            match llm.complete(&messages).await {
                Ok(answer) => match parse_explanation(&answer).and_then(|explanation| {
                    check_prompt_not_leaked(&explanation, &settings.system_prompt)
                        .map(|()| explanation)
                }) {
                    Ok(explanation) => analysis.result = Some(explanation),
                    Err(error) => {
                        analysis.status = AnalysisStatus::Failed;
                        analysis.error = Some(format!("the LLM's answer was unusable: {error}"));
                    }
                },
                Err(LlmError::Permanent(reason)) => {
                    analysis.status = AnalysisStatus::Failed;
                    analysis.error = Some(reason);
                }
                Err(retryable) => return Err(AnalyseError::Retryable(retryable)),
            }
        }
    }
    store.put_analysis(&analysis).await?;
    if analysis.status == AnalysisStatus::Done {
        store.record_failure(&analysis).await?;
    }
    Ok(analysis)
}

/// Why a follow-up question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum FollowUpError {
    #[error("job {0} has no finished analysis to ask about")]
    NoAnalysis(String),
    #[error(transparent)]
    Llm(LlmError),
    #[error(transparent)]
    Store(StoreError),
}

/// The answer to a follow-up question, and the conversation it was stored in.
#[derive(Debug, Clone)]
pub struct FollowUpAnswer {
    pub answer: String,
    pub conversation: Vec<ChatMessage>,
}

/// The question and answer turns as stored: both redacted.
pub fn followup_turns(question: &str, answer: &str) -> [ChatMessage; 2] {
    [
        ChatMessage {
            role: "user".into(),
            content: redact(question).0,
        },
        ChatMessage {
            role: "assistant".into(),
            content: redact(answer.trim()).0,
        },
    ]
}

/// Asks the LLM a question about the job's finished analysis (with the analysis and the
/// conversation so far as context) and appends the question and the answer to the stored
/// conversation, after any turns stored meanwhile.
pub async fn answer_followup<S: AnalysisStore, L: Llm>(
    store: &S,
    llm: &L,
    provider: &str,
    repo: &RepoPath,
    job_id: &str,
    question: &str,
) -> Result<FollowUpAnswer, FollowUpError> {
    let no_analysis = || FollowUpError::NoAnalysis(job_id.to_string());
    let analysis = store
        .get_analysis(provider, repo, job_id)
        .await
        .map_err(FollowUpError::Store)?
        .filter(|a| a.status == AnalysisStatus::Done)
        .ok_or_else(no_analysis)?;
    let context = serde_json::json!({
        "job": analysis.job_name, "category": analysis.category,
        "failed_tests": analysis.failed_tests, "failing_step": analysis.failing_step,
        "analysis": analysis.result,
    })
    .to_string();
    let messages = build_followup(&context, &analysis.conversation, question);
    let answer = llm.complete(&messages).await.map_err(FollowUpError::Llm)?;
    let turns = followup_turns(question, &answer);
    let conversation = store
        .append_conversation(provider, repo, job_id, &turns)
        .await
        .map_err(FollowUpError::Store)?
        .ok_or_else(no_analysis)?;
    let [_, answer] = turns;
    Ok(FollowUpAnswer {
        answer: answer.content,
        conversation,
    })
}

/// A failure (fingerprint) that recurs in a repo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecurringFailure {
    pub fingerprint: String,
    pub count: u64,
    #[serde(serialize_with = "crate::time::millis")]
    pub first_seen: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::millis")]
    pub last_seen: DateTime<Utc>,
    pub branches: Vec<String>,
    pub category: String,
    pub failed_tests: Vec<String>,
    pub latest_job_id: String,
    /// The latest analysis's root cause, when there is one.
    pub root_cause: Option<String>,
    /// The latest analysed job's failing tests were all known flaky or quarantined (from its
    /// test report); `None` when it had no report.
    pub only_known_noise: Option<bool>,
}
