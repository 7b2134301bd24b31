//! Waiting for the worker: a caller that asked for an analysis (or queued a follow-up) may
//! spend a few seconds watching the job's stored analysis for what it asked for, instead of
//! polling the API itself.

use crate::job_analysis::{AnalysisStore, JobAnalysis};
use crate::ports::StoreError;
use crate::repo::RepoPath;
use std::time::Duration;
use tokio::time::Instant;

/// How often the stored analysis is read while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What one look at the job's stored analysis (`None`: there is none) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch<T> {
    /// What the caller waits for: stop and answer with it.
    Found(T),
    /// Not there yet: look again after the next interval, until the deadline.
    KeepWaiting,
    /// It will not come (the analysis it was to join is gone): stop now.
    GiveUp,
}

/// Reads the job's analysis every [`POLL_INTERVAL`] until `judge` finds what the caller waits
/// for, gives up, or `deadline` passes (`Ok(None)` then). The first look is one interval after
/// the call: the worker has not answered sooner.
pub async fn wait_for_analysis<S, T>(
    store: &S,
    provider: &str,
    repo: &RepoPath,
    job_id: &str,
    deadline: Instant,
    mut judge: impl FnMut(Option<JobAnalysis>) -> Watch<T>,
) -> Result<Option<T>, StoreError>
where
    S: AnalysisStore,
{
    while Instant::now() < deadline {
        tokio::time::sleep(POLL_INTERVAL).await;
        let seen = store.get_analysis(provider, repo, job_id).await?;
        match judge(seen) {
            Watch::Found(found) => return Ok(Some(found)),
            Watch::KeepWaiting => {}
            Watch::GiveUp => return Ok(None),
        }
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::explain::ChatMessage;
    use crate::job_analysis::{AnalysisStatus, JobToAnalyse};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// An analysis store that answers `get_analysis` from a script, one answer per read (the
    /// last one repeats), and counts the reads.
    pub(crate) struct ScriptedAnalyses {
        answers: Mutex<VecDeque<Option<JobAnalysis>>>,
        pub(crate) reads: Mutex<usize>,
        /// Budget units spent (for the use cases that spend some).
        pub(crate) spent: Mutex<usize>,
    }

    impl ScriptedAnalyses {
        pub(crate) fn new(answers: Vec<Option<JobAnalysis>>) -> Self {
            ScriptedAnalyses {
                answers: Mutex::new(answers.into()),
                reads: Mutex::new(0),
                spent: Mutex::new(0),
            }
        }

        pub(crate) fn reads(&self) -> usize {
            *self.reads.lock().unwrap()
        }
    }

    impl AnalysisStore for ScriptedAnalyses {
        async fn get_analysis(
            &self,
            _provider: &str,
            _repo: &RepoPath,
            _job_id: &str,
        ) -> Result<Option<JobAnalysis>, StoreError> {
            *self.reads.lock().unwrap() += 1;
            let mut answers = self.answers.lock().unwrap();
            Ok(if answers.len() > 1 {
                answers.pop_front().flatten()
            } else {
                answers.front().cloned().flatten()
            })
        }

        async fn put_analysis(&self, _analysis: &JobAnalysis) -> Result<(), StoreError> {
            unimplemented!("not used by the tests")
        }

        async fn record_failure(&self, _analysis: &JobAnalysis) -> Result<(), StoreError> {
            unimplemented!("not used by the tests")
        }

        async fn append_conversation(
            &self,
            _provider: &str,
            _repo: &RepoPath,
            _job_id: &str,
            _turns: &[ChatMessage],
        ) -> Result<Option<Vec<ChatMessage>>, StoreError> {
            unimplemented!("not used by the tests")
        }

        async fn latest_for_fingerprint(
            &self,
            _fingerprint: &str,
        ) -> Result<Option<JobAnalysis>, StoreError> {
            unimplemented!("not used by the tests")
        }
    }

    pub(crate) fn repo() -> RepoPath {
        RepoPath::parse("team/app").unwrap()
    }

    /// A finished analysis of job 7 of team/app.
    pub(crate) fn finished_analysis() -> JobAnalysis {
        let repo = repo();
        let job = JobToAnalyse {
            provider: "gitlab",
            repo: &repo,
            job_id: "7",
            pipeline_id: None,
            job_name: Some("unit"),
            stage: None,
            branch: None,
            report: None,
        };
        let mut analysis = JobAnalysis::failed(&job, "placeholder");
        analysis.status = AnalysisStatus::Done;
        analysis.error = None;
        analysis.analysed_at = "2026-12-02T10:00:00Z".parse().unwrap();
        analysis
    }

    fn any_analysis(seen: Option<JobAnalysis>) -> Watch<JobAnalysis> {
        seen.map_or(Watch::KeepWaiting, Watch::Found)
    }

    #[tokio::test(start_paused = true)]
    async fn an_analysis_stored_meanwhile_is_found_at_the_next_look() {
        let store = ScriptedAnalyses::new(vec![None, None, Some(finished_analysis())]);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let found = wait_for_analysis(&store, "gitlab", &repo(), "7", deadline, any_analysis)
            .await
            .unwrap();
        assert_eq!(found, Some(finished_analysis()));
        assert_eq!(store.reads(), 3);
        assert_eq!(Instant::now() - start, POLL_INTERVAL * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_the_wait() {
        let store = ScriptedAnalyses::new(vec![None]);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(2);
        let found = wait_for_analysis(&store, "gitlab", &repo(), "7", deadline, any_analysis)
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(store.reads(), 4);
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_reads_nothing() {
        let store = ScriptedAnalyses::new(vec![Some(finished_analysis())]);
        let now = Instant::now();
        let found = wait_for_analysis(&store, "gitlab", &repo(), "7", now, any_analysis)
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(store.reads(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_stops_before_the_deadline() {
        let store = ScriptedAnalyses::new(vec![Some(finished_analysis()), None]);
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let judge = |seen: Option<JobAnalysis>| match seen {
            Some(_) => Watch::<()>::KeepWaiting,
            None => Watch::GiveUp,
        };
        let found = wait_for_analysis(&store, "gitlab", &repo(), "7", deadline, judge)
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(store.reads(), 2);
        assert_eq!(Instant::now() - start, POLL_INTERVAL * 2);
    }
}
