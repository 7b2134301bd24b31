//! After a failed job is analysed: retry it once, when its repository opted in and the
//! failure is the infrastructure's (see [`crate::auto_retry`]), and say in the analysis why it
//! was or was not retried. The retry is an action like an operator's, in the audit list, with
//! the automatic retry as its actor.

use crate::auto_retry::{AutoRetryDecision, AutoRetrySettings, RetryCandidate, decide};
use crate::budget::BudgetCounters;
use crate::job_analysis::{AnalysisStatus, AnalysisStore, AutoRetryNote, JobAnalysis};
use crate::keys;
use crate::ports::{Markers, StoreError};
use crate::provider_actions::{ForgeProject, ProviderAction, ProviderActions};
use crate::record::RecordStore;
use crate::recorded_actions::{
    ActOnProviderError, ActionLog, ActionRequest, Actor, act_on_provider, forge_of,
};
use crate::repo_settings::RepoSettingsStore;
use crate::runs::Job;
use chrono::{DateTime, Duration, DurationRound, Utc};

/// How long "this job was retried automatically" is remembered: longer than any retry of it
/// can take to fail again.
const RETRIED_MEMORY_DAYS: i64 = 30;

/// Everything the automatic retry reads and writes.
pub trait AutoRetryStore:
    RepoSettingsStore + Markers + BudgetCounters + ActionLog + AnalysisStore + RecordStore<Job>
{
}

impl<S> AutoRetryStore for S where
    S: RepoSettingsStore + Markers + BudgetCounters + ActionLog + AnalysisStore + RecordStore<Job>
{
}

/// Decides, retries when the decision says so, and stores the decision's sentence in the
/// analysis. `Ok(None)` when the repository has not opted in (the analysis is left as it is).
pub async fn retry_after_analysis<S: AutoRetryStore, P: ProviderActions>(
    store: &S,
    provider: &P,
    analysis: &JobAnalysis,
    now: DateTime<Utc>,
) -> Result<Option<AutoRetryNote>, StoreError> {
    let Ok(forge) = forge_of(&analysis.provider) else {
        return Ok(None);
    };
    if analysis.status != AnalysisStatus::Done {
        return Ok(None);
    }
    // Decided before (the message came again): the decision stands.
    if let Some(decided) = store
        .get_analysis(&analysis.provider, &analysis.repo, &analysis.job_id)
        .await?
        .and_then(|stored| stored.auto_retry)
    {
        return Ok(Some(decided));
    }
    let Some(settings) = store
        .repo_settings(&analysis.repo)
        .await?
        .filter(|settings| settings.auto_retry)
    else {
        return Ok(None);
    };
    let job = RecordStore::<Job>::get(
        store,
        &Job::key_of(&analysis.provider, &analysis.repo, &analysis.job_id),
    )
    .await?
    .map(|stored| stored.record);
    let Some(job) = job else {
        return Ok(Some(
            note(
                store,
                analysis,
                AutoRetryDecision::Skip {
                    reason:
                        "Not retried automatically: no webhook has reported the job's status yet."
                            .into(),
                },
                None,
            )
            .await?,
        ));
    };
    let evidence: Vec<&str> = analysis
        .result
        .iter()
        .flat_map(|result| [result.root_cause.as_str(), result.explanation.as_str()])
        .chain(analysis.failing_step.as_deref())
        .collect();
    let retry_settings = AutoRetrySettings {
        enabled: true,
        daily_cap: settings.auto_retry_daily_cap,
    };
    let candidate = RetryCandidate {
        status: job.status,
        category: &analysis.category,
        infrastructure_kind: None,
        provider_failure_reason: job.failure_reason.as_deref(),
        allow_failure: job.allow_failure.unwrap_or(false),
        evidence: &evidence,
        already_retried: false,
        is_automatic_retry: false,
        // The cap is checked when the retry spends from it, below.
        retries_today: 0,
    };
    let decision = decide(&retry_settings, &candidate);
    if !decision.retries() {
        return Ok(Some(note(store, analysis, decision, None).await?));
    }
    // Once per job name in a pipeline: GitLab's retry is a new job of the same name, and
    // failing again means the cause is not transient.
    let once = keys::auto_retry_marker(
        &analysis.provider,
        &analysis.repo,
        &match &job.pipeline_id {
            Some(pipeline) => format!("{pipeline}#{}", job.name),
            None => job.job_id.clone(),
        },
    );
    if !store
        .set_marker(&once, Duration::days(RETRIED_MEMORY_DAYS))
        .await?
    {
        let skip = AutoRetryDecision::Skip {
            reason: "Not retried automatically: this job was already retried once in its pipeline, and failing again means the cause is not transient.".into(),
        };
        return Ok(Some(note(store, analysis, skip, None).await?));
    }
    let day = now.duration_trunc(Duration::days(1)).unwrap_or(now);
    let budget = format!("auto-retry#{}", analysis.repo);
    if !store
        .spend_one(
            &budget,
            day,
            u64::from(settings.auto_retry_daily_cap),
            day + Duration::days(2),
        )
        .await?
    {
        store.clear_marker(&once).await?;
        let skip = AutoRetryDecision::Skip {
            reason: format!(
                "Not retried automatically: this repository had its {} automatic retries for today.",
                settings.auto_retry_daily_cap
            ),
        };
        return Ok(Some(note(store, analysis, skip, None).await?));
    }
    let request = ActionRequest {
        project: ForgeProject {
            forge,
            path: analysis.repo.clone(),
            id: job.project_id.clone(),
        },
        action: ProviderAction::RetryJob {
            job_id: analysis.job_id.clone(),
        },
        actor: Actor::AutoRetry,
        reason: Some(decision.reason().to_string()),
    };
    let record = match act_on_provider(provider, store, request, now).await {
        Ok(record) => record,
        Err(ActOnProviderError::NotRecorded { record, .. }) => *record,
        Err(ActOnProviderError::Provider { error, .. }) => {
            let skip = AutoRetryDecision::Skip {
                reason: format!(
                    "A retry was due ({}), but the provider refused it: {error}.",
                    decision.reason()
                ),
            };
            return Ok(Some(note(store, analysis, skip, None).await?));
        }
    };
    let new_job = record.outcome.map(|outcome| outcome.resulting_id);
    Ok(Some(note(store, analysis, decision, new_job).await?))
}

/// Stores the decision in the job's analysis.
async fn note<S: AnalysisStore>(
    store: &S,
    analysis: &JobAnalysis,
    decision: AutoRetryDecision,
    new_job_id: Option<String>,
) -> Result<AutoRetryNote, StoreError> {
    let note = AutoRetryNote {
        retried: decision.retries() && new_job_id.is_some(),
        reason: decision.reason().to_string(),
        new_job_id,
    };
    // Read again: a follow-up answered meanwhile stays, and so does a retry another delivery
    // of the same message made (its note is the true one).
    let mut annotated = store
        .get_analysis(&analysis.provider, &analysis.repo, &analysis.job_id)
        .await?
        .unwrap_or_else(|| analysis.clone());
    if let Some(retried) = annotated.auto_retry.as_ref().filter(|kept| kept.retried) {
        return Ok(retried.clone());
    }
    annotated.auto_retry = Some(note.clone());
    store.put_analysis(&annotated).await?;
    Ok(note)
}
