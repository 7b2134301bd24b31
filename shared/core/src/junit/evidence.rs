//! What a job's test report tells its analysis: which tests failed, as the report names them
//! (more reliable than reading them from the log), and whether every one of them is a test
//! already known to be flaky or quarantined — a failure of known noise, not news.

use super::history::FlakySettings;
use super::ingest::{JobKey, ListedTest, TestReportStore};
use crate::ports::StoreError;
use crate::redact::Redacted;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Failed tests named in an analysis at most.
const MAX_NAMED: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportEvidence {
    /// The failed and errored tests of the job's reports (`suite.name`).
    pub failed_tests: Vec<Redacted>,
    /// The first failures' messages, as `suite.name: message`.
    pub failure_messages: Vec<Redacted>,
    /// Of the failed tests, those known flaky.
    pub flaky: Vec<Redacted>,
    /// Of the failed tests, those quarantined.
    pub quarantined: Vec<Redacted>,
    /// Every failed test is flaky or quarantined.
    pub only_known_noise: bool,
}

impl ReportEvidence {
    /// What the LLM is told: the report's failure messages, and the note when there is one.
    pub fn for_prompt(&self) -> Option<String> {
        let mut lines: Vec<String> = self
            .failure_messages
            .iter()
            .map(|message| format!("- {message}"))
            .collect();
        if let Some(note) = self.note() {
            lines.push(note);
        }
        (!lines.is_empty()).then(|| format!("from the JUnit report:\n{}", lines.join("\n")))
    }

    /// A sentence for people and the LLM; `None` when the report adds nothing to say.
    pub fn note(&self) -> Option<String> {
        if !self.only_known_noise {
            return None;
        }
        let mut known: Vec<&str> = self.flaky.iter().map(Redacted::as_str).collect();
        known.extend(self.quarantined.iter().map(Redacted::as_str));
        known.sort_unstable();
        known.dedup();
        Some(format!(
            "Every failing test is already known as flaky or quarantined ({}): this failure is likely noise, not a new regression.",
            known.join(", ")
        ))
    }
}

fn display_name(test: &ListedTest) -> String {
    if test.suite.is_empty() {
        test.name.clone()
    } else {
        format!("{}.{}", test.suite, test.name)
    }
}

/// The evidence of the job's uploaded reports; `None` when it has none or none failed.
pub async fn report_evidence<S: TestReportStore>(
    store: &S,
    job: &JobKey,
    now: DateTime<Utc>,
    settings: &FlakySettings,
) -> Result<Option<ReportEvidence>, StoreError> {
    let uploads = store.job_uploads(job).await?;
    // One entry per test, however many uploads name it.
    let failed: BTreeMap<&str, &ListedTest> = uploads
        .iter()
        .flat_map(|upload| upload.failed_tests.iter())
        .filter(|test| test.outcome.is_failure())
        .map(|test| (test.id.as_str(), test))
        .collect();
    if failed.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = failed.keys().map(|id| id.to_string()).collect();
    let states = store.load_states(&job.repo, &ids).await?;
    let mut evidence = ReportEvidence::default();
    let mut known = 0;
    for (state, _) in &states {
        let Some(test) = failed.get(state.id.as_str()) else {
            continue;
        };
        let (flaky, quarantined) = (state.is_flaky(now, settings), state.is_quarantined(now));
        if flaky {
            evidence.flaky.push(Redacted::new(&display_name(test)));
        }
        if quarantined {
            evidence
                .quarantined
                .push(Redacted::new(&display_name(test)));
        }
        known += usize::from(flaky || quarantined);
    }
    evidence.only_known_noise = known == failed.len();
    let names: Vec<String> = failed.values().map(|test| display_name(test)).collect();
    evidence.failed_tests = Redacted::lines(names.into_iter().take(MAX_NAMED).collect());
    evidence.failure_messages = Redacted::lines(
        failed
            .values()
            .filter_map(|test| {
                let message = test.detail.message.as_deref()?.lines().next()?;
                Some(format!("{}: {}", display_name(test), message))
            })
            .take(10)
            .collect(),
    );
    Ok(Some(evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_gets_the_messages_and_the_note_only_when_all_are_known_noise() {
        let mut evidence = ReportEvidence {
            failed_tests: vec![Redacted::new("shop.CartTest.case_1")],
            failure_messages: vec![Redacted::new(
                "shop.CartTest.case_1: expected 2 got 3 with token=abcdef123456",
            )],
            flaky: Vec::new(),
            quarantined: Vec::new(),
            only_known_noise: false,
        };
        let prompt = evidence.for_prompt().unwrap();
        assert!(prompt.contains("expected 2 got 3"), "{prompt}");
        assert!(!prompt.contains("abcdef123456"), "{prompt}");
        assert!(evidence.note().is_none());
        evidence.quarantined = vec![Redacted::new("shop.CartTest.case_1")];
        evidence.only_known_noise = true;
        assert!(
            evidence
                .for_prompt()
                .unwrap()
                .contains("already known as flaky or quarantined (shop.CartTest.case_1)")
        );
    }
}
