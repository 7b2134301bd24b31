//! Asking a follow-up question about a job's finished analysis (`POST /api/ai/followup`):
//! answered by the LLM right away when the API may call it, else queued for the worker (which
//! appends the answer to the conversation) and waited for as long as the caller allows. Either
//! way one unit of the LLM budget is spent.

use crate::analysis_request::{
    AnalysisQueue, AnalysisRequest, FOLLOWUP_REQUEST_VERSION, QueueError,
};
use crate::analysis_wait::{Watch, wait_for_analysis};
use crate::budget::{BudgetCounters, BudgetError, BudgetLimits, spend};
use crate::explain::ChatMessage;
use crate::job_analysis::{
    AnalysisStatus, AnalysisStore, FollowUpAnswer, FollowUpError, JobAnalysis, Llm,
    answer_followup, followup_turns,
};
use crate::ports::StoreError;
use crate::redact::redact;
use crate::repo::RepoPath;
use crate::request_analysis::{AnalysisPorts, LlmAccess};
use std::time::Duration;

/// How long a follow-up may wait for the LLM (API Gateway ends requests at 30 s).
pub const FOLLOWUP_TIME_LIMIT: Duration = Duration::from_secs(25);

/// A question as someone asked it.
#[derive(Debug, Clone)]
pub struct AskedFollowUp<'a> {
    pub provider: &'a str,
    pub repo: &'a RepoPath,
    pub job_id: &'a str,
    pub question: &'a str,
    /// The opaque id of the caller's key, whose budget the question spends.
    pub caller_key: &'a str,
    /// How long to wait for the worker when the question is queued.
    pub wait: Duration,
}

/// What became of a question.
#[derive(Debug, Clone)]
pub enum FollowUpReply {
    Answered(FollowUpAnswer),
    /// Queued for the worker, which did not answer within the wait.
    Queued,
}

#[derive(Debug, thiserror::Error)]
pub enum AskFollowUpError {
    #[error("follow-up questions need an LLM, and this deployment has LLM_PROVIDER=none")]
    NoLlm,
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error("the LLM did not answer within {} s", FOLLOWUP_TIME_LIMIT.as_secs())]
    TimedOut,
    /// No finished analysis to ask about, the LLM failed, or the conversation could not be
    /// stored.
    #[error(transparent)]
    Answer(#[from] FollowUpError),
    #[error("follow-ups are not available: no analysis queue is configured")]
    NoQueue,
    #[error("the follow-up was not queued: {0}")]
    NotQueued(#[source] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Answers a follow-up question (see the module's documentation).
pub async fn ask_followup<S, Q, L>(
    ports: &AnalysisPorts<'_, S, Q, L>,
    budget: BudgetLimits,
    asked: AskedFollowUp<'_>,
) -> Result<FollowUpReply, AskFollowUpError>
where
    S: AnalysisStore + BudgetCounters,
    Q: AnalysisQueue,
    L: Llm,
{
    let llm = match &ports.llm {
        LlmAccess::Absent => return Err(AskFollowUpError::NoLlm),
        LlmAccess::Direct(llm) => Some(*llm),
        LlmAccess::WorkerOnly => None,
    };
    spend(ports.store, budget, asked.caller_key, chrono::Utc::now()).await?;
    let Some(llm) = llm else {
        return queue_followup(ports, &asked).await;
    };
    let answering = answer_followup(
        ports.store,
        llm,
        asked.provider,
        asked.repo,
        asked.job_id,
        asked.question,
    );
    let answered = tokio::time::timeout(FOLLOWUP_TIME_LIMIT, answering)
        .await
        .map_err(|_| AskFollowUpError::TimedOut)??;
    Ok(FollowUpReply::Answered(answered))
}

/// A follow-up for an LLM only the worker may call: queued for the worker, which appends the
/// answer to the conversation; `wait` is spent watching for it.
async fn queue_followup<S, Q, L>(
    ports: &AnalysisPorts<'_, S, Q, L>,
    asked: &AskedFollowUp<'_>,
) -> Result<FollowUpReply, AskFollowUpError>
where
    S: AnalysisStore,
    Q: AnalysisQueue,
{
    let (provider, repo, job_id) = (asked.provider, asked.repo, asked.job_id);
    let analysis = ports
        .store
        .get_analysis(provider, repo, job_id)
        .await?
        .filter(|a| a.status == AnalysisStatus::Done)
        .ok_or_else(|| FollowUpError::NoAnalysis(job_id.to_string()))?;
    let queue = ports.queue.ok_or(AskFollowUpError::NoQueue)?;
    let request = followup_request(&analysis, asked.question);
    queue
        .send(&request)
        .await
        .map_err(AskFollowUpError::NotQueued)?;
    // The answer is the assistant turn right after this question (as the worker stores it).
    let [question, _] = followup_turns(request.question.as_deref().unwrap_or_default(), "");
    let asked_before = analysis.conversation.len();
    let deadline = tokio::time::Instant::now() + asked.wait;
    let answered = wait_for_analysis(ports.store, provider, repo, job_id, deadline, |seen| {
        match seen {
            // The analysis is gone: the worker has nothing to append to.
            None => Watch::GiveUp,
            Some(now) => {
                answer_after(now, &question, asked_before).map_or(Watch::KeepWaiting, Watch::Found)
            }
        }
    })
    .await?;
    Ok(answered.map_or(FollowUpReply::Queued, FollowUpReply::Answered))
}

/// The message that asks the worker to answer the question about the analysed job.
fn followup_request(analysis: &JobAnalysis, question: &str) -> AnalysisRequest {
    AnalysisRequest {
        version: FOLLOWUP_REQUEST_VERSION,
        provider: analysis.provider.clone(),
        repo: analysis.repo.clone(),
        job_id: analysis.job_id.clone(),
        pipeline_id: analysis.pipeline_id.clone(),
        job_name: analysis.job_name.clone(),
        branch: analysis.branch.clone(),
        requested_at: chrono::Utc::now(),
        origin: "followup".into(),
        // Redacted before it leaves the API: the queue holds no secret a user pasted.
        question: Some(redact(question).0),
    }
}

/// The answer to `question` among the turns appended after the first `asked_before`, with the
/// conversation it is in.
fn answer_after(
    analysis: JobAnalysis,
    question: &ChatMessage,
    asked_before: usize,
) -> Option<FollowUpAnswer> {
    let answer = analysis
        .conversation
        .windows(2)
        .skip(asked_before)
        .find_map(|pair| {
            (pair[0].role == "user"
                && pair[0].content == question.content
                && pair[1].role == "assistant")
                .then(|| pair[1].content.clone())
        })?;
    Some(FollowUpAnswer {
        answer,
        conversation: analysis.conversation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis_wait::tests::{ScriptedAnalyses, finished_analysis, repo};
    use crate::job_analysis::LlmError;
    use chrono::{DateTime, Utc};
    use std::sync::Mutex;

    impl BudgetCounters for ScriptedAnalyses {
        async fn spend_one(
            &self,
            _budget: &str,
            _window_start: DateTime<Utc>,
            _limit: u64,
            _expires: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            *self.spent.lock().unwrap() += 1;
            Ok(true)
        }
    }

    /// A queue that keeps what it is sent.
    #[derive(Default)]
    struct KeptQueue(Mutex<Vec<AnalysisRequest>>);

    impl AnalysisQueue for KeptQueue {
        async fn send(&self, request: &AnalysisRequest) -> Result<(), QueueError> {
            self.0.lock().unwrap().push(request.clone());
            Ok(())
        }
    }

    /// An LLM the API may not call.
    struct UnreachableLlm;

    impl Llm for UnreachableLlm {
        fn model(&self) -> &str {
            "unreachable"
        }

        async fn complete(&self, _messages: &[ChatMessage]) -> Result<String, LlmError> {
            unreachable!("a worker-only LLM is not called by the API")
        }
    }

    fn asked<'a>(repo: &'a RepoPath, wait: Duration) -> AskedFollowUp<'a> {
        AskedFollowUp {
            provider: "gitlab",
            repo,
            job_id: "7",
            question: "why did it fail?",
            caller_key: "k1",
            wait,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_question_is_answered_when_the_worker_appends_the_answer() {
        let before = finished_analysis();
        let mut after = before.clone();
        after.conversation = vec![
            turn("user", "why did it fail?"),
            turn("assistant", "the cache was cold"),
        ];
        let store = ScriptedAnalyses::new(vec![Some(before.clone()), Some(before), Some(after)]);
        let queue = KeptQueue::default();
        let ports = AnalysisPorts {
            store: &store,
            queue: Some(&queue),
            llm: LlmAccess::<UnreachableLlm>::WorkerOnly,
        };
        let start = tokio::time::Instant::now();
        let repo = repo();
        let reply = ask_followup(
            &ports,
            BudgetLimits::default(),
            asked(&repo, Duration::from_secs(5)),
        )
        .await
        .unwrap();
        let FollowUpReply::Answered(answered) = reply else {
            panic!("expected an answer, got {reply:?}");
        };
        assert_eq!(answered.answer, "the cache was cold");
        assert_eq!(answered.conversation.len(), 2);
        assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(1));
        assert_eq!(
            *store.spent.lock().unwrap(),
            2,
            "the key's and the deployment's budget"
        );
        let sent = queue.0.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].question.as_deref(), Some("why did it fail?"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_question_not_answered_in_time_is_queued() {
        let store = ScriptedAnalyses::new(vec![Some(finished_analysis())]);
        let queue = KeptQueue::default();
        let ports = AnalysisPorts {
            store: &store,
            queue: Some(&queue),
            llm: LlmAccess::<UnreachableLlm>::WorkerOnly,
        };
        let repo = repo();
        let reply = ask_followup(
            &ports,
            BudgetLimits::default(),
            asked(&repo, Duration::ZERO),
        )
        .await
        .unwrap();
        assert!(matches!(reply, FollowUpReply::Queued), "{reply:?}");
        assert_eq!(store.reads(), 1);
    }

    #[tokio::test]
    async fn without_an_llm_nothing_is_spent_or_queued() {
        let store = ScriptedAnalyses::new(vec![Some(finished_analysis())]);
        let queue = KeptQueue::default();
        let ports = AnalysisPorts {
            store: &store,
            queue: Some(&queue),
            llm: LlmAccess::<UnreachableLlm>::Absent,
        };
        let repo = repo();
        let error = ask_followup(
            &ports,
            BudgetLimits::default(),
            asked(&repo, Duration::ZERO),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, AskFollowUpError::NoLlm), "{error:?}");
        assert_eq!(*store.spent.lock().unwrap(), 0);
        assert!(queue.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_question_about_an_unanalysed_job_is_not_queued() {
        let store = ScriptedAnalyses::new(vec![None]);
        let queue = KeptQueue::default();
        let ports = AnalysisPorts {
            store: &store,
            queue: Some(&queue),
            llm: LlmAccess::<UnreachableLlm>::WorkerOnly,
        };
        let repo = repo();
        let error = ask_followup(
            &ports,
            BudgetLimits::default(),
            asked(&repo, Duration::ZERO),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                AskFollowUpError::Answer(FollowUpError::NoAnalysis(_))
            ),
            "{error:?}"
        );
        assert!(queue.0.lock().unwrap().is_empty());
    }

    fn turn(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn the_answer_is_the_turn_after_this_question_asked_after_the_earlier_ones() {
        let mut analysis = finished_analysis();
        analysis.conversation = vec![
            turn("user", "why?"),
            turn("assistant", "the first answer"),
            turn("user", "why?"),
            turn("assistant", "the second answer"),
        ];
        let question = turn("user", "why?");
        let found = answer_after(analysis.clone(), &question, 2).unwrap();
        assert_eq!(found.answer, "the second answer");
        assert_eq!(found.conversation.len(), 4);
        assert!(answer_after(analysis.clone(), &question, 3).is_none());
        assert!(answer_after(analysis, &turn("user", "how?"), 0).is_none());
    }

    #[test]
    fn a_queued_question_is_redacted_and_names_the_analysed_job() {
        let mut analysis = finished_analysis();
        analysis.pipeline_id = Some("70".into());
        let request = followup_request(&analysis, "is AKIAIOSFODNN7EXAMPLE the problem?");
        assert_eq!(request.version, FOLLOWUP_REQUEST_VERSION);
        assert_eq!(request.origin, "followup");
        assert_eq!(request.pipeline_id.as_deref(), Some("70"));
        let question = request.question.unwrap();
        assert!(!question.contains("AKIAIOSFODNN7EXAMPLE"), "{question}");
    }
}
