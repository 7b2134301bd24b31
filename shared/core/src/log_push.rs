//! A failure log pushed from a CI job (the Exlogare contract): the job is recorded, the log
//! stored as its trace, a failed job queues one analysis request, and a successful job's log
//! becomes the last green log of its job name and branch.

use crate::analysis_request::{ANALYSIS_REQUEST_VERSION, AnalysisQueue, AnalysisRequest};
use crate::fields::{FieldError, Fields, type_name};
use crate::keys;
use crate::last_green::{GreenRunStore, RecordedJob, keep_if_green};
use crate::log_source::{InvalidLog, LogSource};
use crate::ports::{Markers, StoreError};
use crate::record::{RecordError, RecordOutcome, RecordStore, record};
use crate::repo::RepoPath;
use crate::runs::{Job, valid_provider};
use crate::status::BuildStatus;
use crate::trace::{ChunkBuffer, Replacement, TraceKey, TraceStore};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

/// How long a job's analysis request is remembered, so re-pushes do not queue it again.
pub const ANALYSIS_REQUEST_MEMORY_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct LogPush {
    pub job: Job,
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidLogPush {
    #[error("a log push must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("{0}")]
    Field(#[from] FieldError),
}

pub fn parse_log_push(value: &Value, now: DateTime<Utc>) -> Result<LogPush, InvalidLogPush> {
    let Value::Object(object) = value else {
        return Err(InvalidLogPush::NotAnObject(type_name(value)));
    };
    let log = match object.get("log") {
        Some(Value::String(log)) => log.clone(),
        None | Some(Value::Null) => return Err(FieldError::new("log", "is required").into()),
        Some(other) => {
            return Err(FieldError::new(
                "log",
                format!("must be a string, got {}", type_name(other)),
            )
            .into());
        }
    };
    let job = parse_push_job(object, now)?;
    Ok(LogPush { job, log })
}

/// What a log push says about its log, checked: present, a string, not empty.
pub fn check_log_shape(shape: crate::log_source::LogShape) -> Result<(), InvalidLogPush> {
    use crate::log_source::LogShape;
    match shape {
        LogShape::Text(0) => Err(FieldError::new("log", "is empty: push the job's output").into()),
        LogShape::Text(_) => Ok(()),
        LogShape::Absent | LogShape::Other("null") => {
            Err(FieldError::new("log", "is required").into())
        }
        LogShape::Other(kind) => {
            Err(FieldError::new("log", format!("must be a string, got {kind}")).into())
        }
    }
}

/// The job a log push is about, from its fields other than `log`.
pub fn parse_push_job(
    object: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Job, InvalidLogPush> {
    let fields = Fields::new(object);
    let provider_raw = fields.required_string("provider", 32)?;
    let provider = valid_provider(&provider_raw).ok_or_else(|| {
        FieldError::new(
            "provider",
            "must be a CI name such as gitlab, github or jenkins (letters, digits, '-', '_')",
        )
    })?;
    let project = fields.required_string("project", crate::repo::MAX_REPO_LEN + 1)?;
    let repo = RepoPath::parse(&project).map_err(|e| FieldError::new("project", e.to_string()))?;
    let job_id = fields.required_identifier("job_id", 128)?;
    let status_raw = fields.required_string("status", 64)?;
    let status =
        BuildStatus::parse(&status_raw).map_err(|e| FieldError::new("status", e.to_string()))?;
    let job = Job {
        provider,
        repo,
        project_id: None,
        job_id,
        pipeline_id: fields.optional_identifier("pipeline_id", 128)?,
        name: fields.required_string("job_name", 255)?,
        stage: None,
        status,
        provider_status: status_raw,
        git_ref: fields.optional_string("branch", 255)?,
        sha: fields.optional_string("commit_sha", 128)?,
        created_at: None,
        started_at: None,
        finished_at: None,
        duration_ms: None,
        queued_duration_ms: None,
        failure_reason: None,
        allow_failure: None,
        runner: None,
        labels: Vec::new(),
        steps: Vec::new(),
        failing_step: None,
        url: fields.optional_string("pipeline_url", 2048)?,
        user: None,
        attempt: 1,
        observed_at: now,
        first_seen: now,
        updated_at: now,
    };
    Ok(job)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisDecision {
    Queued,
    AlreadyRequested,
    NotFailed,
    NoQueueConfigured,
}

impl AnalysisDecision {
    pub fn queued(self) -> bool {
        self == AnalysisDecision::Queued
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisDecision::Queued => "queued",
            AnalysisDecision::AlreadyRequested => "already requested for this job",
            AnalysisDecision::NotFailed => "not needed: the job did not fail",
            AnalysisDecision::NoQueueConfigured => "no analysis queue is configured",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogPushOutcome {
    /// `None` when an earlier state was reported after a later one (stale).
    pub job_outcome: Option<RecordOutcome>,
    pub trace_key: TraceKey,
    pub trace_length: u64,
    pub analysis: AnalysisDecision,
    /// The log became the last green log of its job name and branch.
    pub kept_as_green: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogPushError {
    /// The log could not be read (corrupt gzip, too large, bad JSON); nothing was stored.
    #[error(transparent)]
    Log(#[from] InvalidLog),
    #[error(transparent)]
    Record(RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] crate::analysis_request::QueueError),
}

/// How often a log is written again when another writer replaced the trace meanwhile.
const STORE_ATTEMPTS: usize = 3;

/// Stores the log as the job's trace, read piece by piece from `log` into whole chunks: the
/// memory used is a few chunks whatever the log's length. Nothing is visible until the whole
/// log is written; a log that turns out unreadable halfway is discarded.
async fn store_log<S: TraceStore>(
    store: &S,
    key: &TraceKey,
    log: &dyn LogSource,
) -> Result<u64, LogPushError> {
    for _ in 0..STORE_ATTEMPTS {
        let replacement = store.begin_replacement(key, None).await?;
        match write_pieces(store, key, &replacement, log).await {
            Ok(0) => {
                store.discard_replacement(key, replacement).await;
                return Err(InvalidLog::Empty.into());
            }
            Ok(length) => match store.commit_replacement(key, replacement, length).await {
                Ok(()) => return Ok(length),
                // Another writer switched the trace first: write again on top of theirs.
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            },
            Err(error) => {
                store.discard_replacement(key, replacement).await;
                return Err(error);
            }
        }
    }
    Err(StoreError::Unavailable("the trace kept changing while it was replaced".into()).into())
}

/// Chunks written per store call.
const CHUNKS_PER_WRITE: usize = 2;

async fn write_pieces<S: TraceStore>(
    store: &S,
    key: &TraceKey,
    replacement: &Replacement,
    log: &dyn LogSource,
) -> Result<u64, LogPushError> {
    let mut buffer = ChunkBuffer::new(CHUNKS_PER_WRITE);
    for piece in log.pieces() {
        buffer.push(&piece?);
        if let Some((offset, bytes)) = buffer.ready() {
            store
                .write_replacement(key, replacement, offset, &bytes)
                .await?;
        }
    }
    let (offset, rest) = buffer.finish();
    if !rest.is_empty() {
        store
            .write_replacement(key, replacement, offset, &rest)
            .await?;
    }
    Ok(offset + rest.len() as u64)
}

pub async fn push_log<S, Q>(
    store: &S,
    queue: Option<&Q>,
    job: Job,
    log: &dyn LogSource,
) -> Result<LogPushOutcome, LogPushError>
where
    S: RecordStore<Job> + TraceStore + Markers + GreenRunStore,
    Q: AnalysisQueue,
{
    let trace_key = TraceKey {
        provider: job.provider.clone(),
        repo: job.repo.clone(),
        job_id: job.job_id.clone(),
    };
    // A push fills in a job's ending but never changes one the provider reported: the
    // provider's webhook knows better than a script's guess.
    let mut job = job;
    if let Some(stored) = store.get(&job).await?
        && stored.record.status.is_terminal()
        && stored.record.status != job.status
    {
        job.status = stored.record.status;
        job.provider_status = stored.record.provider_status.clone();
    }
    let request = AnalysisRequest {
        version: ANALYSIS_REQUEST_VERSION,
        provider: job.provider.clone(),
        repo: job.repo.clone(),
        job_id: job.job_id.clone(),
        pipeline_id: job.pipeline_id.clone(),
        job_name: Some(job.name.clone()),
        branch: job.git_ref.clone(),
        requested_at: job.updated_at,
        origin: "log_push".into(),
        question: None,
    };
    let failed = job.status == crate::status::BuildStatus::Failure;
    let as_recorded = RecordedJob {
        name: job.name.clone(),
        branch: job.git_ref.clone(),
        status: job.status,
        finished_at: job.finished_at,
        updated_at: job.updated_at,
    };
    // The log first: a recorded job then always has its log, and the analysis finds it.
    let trace_length = store_log(store, &trace_key, log).await?;
    let job_outcome = match record(store, job).await {
        Ok((outcome, _)) => Some(outcome),
        Err(error) if error.is_stale() => None,
        Err(error) => return Err(LogPushError::Record(error)),
    };
    let analysis = match (failed, queue) {
        (false, _) => AnalysisDecision::NotFailed,
        (true, None) => AnalysisDecision::NoQueueConfigured,
        (true, Some(queue)) => {
            let marker = keys::analysis_request(&request.provider, &request.repo, &request.job_id);
            if store
                .set_marker(&marker, Duration::days(ANALYSIS_REQUEST_MEMORY_DAYS))
                .await?
            {
                if let Err(error) = queue.send(&request).await {
                    // Forget the request so the next push (or a retry) queues it.
                    store.clear_marker(&marker).await?;
                    return Err(error.into());
                }
                AnalysisDecision::Queued
            } else {
                AnalysisDecision::AlreadyRequested
            }
        }
    };
    let kept_as_green = keep_if_green(store, &trace_key, &as_recorded).await?;
    Ok(LogPushOutcome {
        job_outcome,
        trace_key,
        trace_length,
        analysis,
        kept_as_green,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn push(overrides: Value) -> Value {
        let mut value = json!({
            "provider": "GitLab", "project": "group/app", "pipeline_id": 12, "job_id": 345,
            "job_name": "unit tests", "status": "failed", "branch": "main",
            "commit_sha": "abc", "pipeline_url": "https://ci.example/p/12", "log": "boom\n"
        });
        if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), overrides) {
            target.extend(extra);
        }
        value
    }

    #[test]
    fn parses_the_exlogare_fields() {
        let parsed = parse_log_push(&push(json!({})), Utc::now()).unwrap();
        assert_eq!(parsed.job.provider, "gitlab");
        assert_eq!(parsed.job.job_id, "345");
        assert_eq!(parsed.job.pipeline_id.as_deref(), Some("12"));
        assert_eq!(parsed.job.status, BuildStatus::Failure);
        assert_eq!(parsed.job.git_ref.as_deref(), Some("main"));
        assert_eq!(parsed.log, "boom\n");
    }

    #[test]
    fn errors_name_the_field() {
        for (overrides, says) in [
            (json!({"provider": "git lab"}), "`provider`"),
            (json!({"project": "../x"}), "`project`"),
            (json!({"job_id": null}), "`job_id` is required"),
            (json!({"status": "meh"}), "`status`"),
            (json!({"log": 5}), "`log` must be a string"),
            (json!({"log": null}), "`log` is required"),
            (json!({"job_name": ""}), "`job_name`"),
        ] {
            let message = parse_log_push(&push(overrides), Utc::now())
                .unwrap_err()
                .to_string();
            assert!(message.contains(says), "{message} should contain {says}");
        }
        assert!(parse_log_push(&json!("log"), Utc::now()).is_err());
    }
}
