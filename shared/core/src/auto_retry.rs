//! Whether a failed job is retried automatically. Only failures whose cause lies outside the
//! code are: the infrastructure category of the triage (a runner lost, a job stuck past its
//! timeout), GitLab's own infrastructure failure reasons, and network or registry outages the
//! evidence names. Never a test, compile, lint or configuration failure; never a job twice;
//! never past the repository's daily cap. Each decision comes with the sentence the analysis
//! shows, so a retry explains itself and so does its absence.

use crate::status::BuildStatus;

/// A repository's auto-retry settings (opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRetrySettings {
    pub enabled: bool,
    /// Automatic retries per repository per day (UTC), at most.
    pub daily_cap: u32,
}

/// What is known of the failed job.
#[derive(Debug, Clone, Copy)]
pub struct RetryCandidate<'a> {
    pub status: BuildStatus,
    /// The analysis's category (`infrastructure`, `test`, `compile`…).
    pub category: &'a str,
    /// The triage's kind of infrastructure failure (`timeout`, `oom`, `runner`), when known.
    pub infrastructure_kind: Option<&'a str>,
    /// GitLab's `failure_reason` (`runner_system_failure`, `script_failure`…).
    pub provider_failure_reason: Option<&'a str>,
    /// The job may fail without failing its pipeline.
    pub allow_failure: bool,
    /// Lines the decision may cite: the analysis's key lines and root cause (redacted).
    pub evidence: &'a [&'a str],
    /// The job was already retried, by anyone (an action is recorded for it).
    pub already_retried: bool,
    /// The job is itself buildlore's automatic retry of an earlier one.
    pub is_automatic_retry: bool,
    /// Automatic retries already made in this repository today.
    pub retries_today: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoRetryDecision {
    Retry { reason: String },
    Skip { reason: String },
}

impl AutoRetryDecision {
    pub fn retries(&self) -> bool {
        matches!(self, AutoRetryDecision::Retry { .. })
    }

    /// The sentence for the analysis: "Retried automatically because …" or "Not retried
    /// automatically: …".
    pub fn reason(&self) -> &str {
        match self {
            AutoRetryDecision::Retry { reason } | AutoRetryDecision::Skip { reason } => reason,
        }
    }
}

/// GitLab failure reasons that say the runner or GitLab failed, not the job's script.
const GITLAB_INFRASTRUCTURE_REASONS: &[(&str, &str)] = &[
    (
        "runner_system_failure",
        "GitLab reports a runner system failure",
    ),
    (
        "stuck_or_timeout_failure",
        "GitLab reports the job stuck or timed out waiting for a runner",
    ),
    ("scheduler_failure", "GitLab reports a scheduler failure"),
    (
        "api_failure",
        "GitLab reports an API failure while running the job",
    ),
    (
        "data_integrity_failure",
        "GitLab reports a data integrity failure",
    ),
    ("job_execution_timeout", "the job ran past its timeout"),
];

/// Words of a network or registry outage (as opposed to a missing package, which the
/// dependency category also holds).
const OUTAGE_WORDS: &[&str] = &[
    "ECONNRESET",
    "ETIMEDOUT",
    "EAI_AGAIN",
    "Temporary failure in name resolution",
    "Connection reset by peer",
    "TLS handshake timeout",
    "i/o timeout",
    "502 Bad Gateway",
    "503 Service Unavailable",
    "504 Gateway Time",
    "toomanyrequests",
    "net/http: request canceled",
];

const CODE_CATEGORIES: &[&str] = &["test", "compile", "lint", "configuration"];

/// Decides whether the failed job is retried now.
pub fn decide(settings: &AutoRetrySettings, job: &RetryCandidate<'_>) -> AutoRetryDecision {
    let skip = |why: &str| AutoRetryDecision::Skip {
        reason: format!("Not retried automatically: {why}."),
    };
    if !settings.enabled {
        return skip("automatic retries are off for this repository");
    }
    if job.status != BuildStatus::Failure {
        return skip("the job did not fail");
    }
    if job.allow_failure {
        return skip("the job is allowed to fail");
    }
    if job.is_automatic_retry {
        return skip(
            "this job is already buildlore's retry of an earlier failure, and failing again means the cause is not transient",
        );
    }
    if job.already_retried {
        return skip("the job was already retried once");
    }
    if job.retries_today >= settings.daily_cap {
        return skip(&format!(
            "this repository had its {} automatic retr{} for today",
            settings.daily_cap,
            if settings.daily_cap == 1 { "y" } else { "ies" }
        ));
    }
    let category = job.category.to_ascii_lowercase();
    if CODE_CATEGORIES.contains(&category.as_str()) {
        return skip(&format!(
            "a {category} failure is in the code or its configuration, and a retry would fail the same way"
        ));
    }
    let cause = infrastructure_cause(&category, job);
    match cause {
        Ok(because) => AutoRetryDecision::Retry {
            reason: format!(
                "Retried automatically because {because}; buildlore retries such a job once."
            ),
        },
        Err(why) => skip(&why),
    }
}

/// Why the failure is transient infrastructure, or why it is not known to be.
fn infrastructure_cause(category: &str, job: &RetryCandidate<'_>) -> Result<String, String> {
    if job.infrastructure_kind == Some("oom") {
        return Err("the job ran out of memory or disk, which a retry on the same runner type usually repeats".into());
    }
    if let Some(reason) = job.provider_failure_reason
        && let Some((_, because)) = GITLAB_INFRASTRUCTURE_REASONS
            .iter()
            .find(|(name, _)| *name == reason)
    {
        return Ok((*because).to_string());
    }
    if category == "infrastructure" {
        return Ok(match job.infrastructure_kind {
            Some("timeout") => "the log shows the job timed out".to_string(),
            Some("runner") => {
                "the log shows the runner failed (lost, shut down or its Docker daemon unreachable)"
                    .to_string()
            }
            _ => "the triage puts the failure in the infrastructure".to_string(),
        });
    }
    let outage = job.evidence.iter().find_map(|line| {
        OUTAGE_WORDS
            .iter()
            .find(|word| line.contains(*word))
            .copied()
    });
    match outage {
        Some(word) => Ok(format!(
            "the log shows a network or registry outage (\u{201c}{word}\u{201d})"
        )),
        None if category == "dependency" => Err(
            "a dependency failure without signs of a network or registry outage is likely a missing or wrong package".into(),
        ),
        None => Err(format!(
            "the cause ({category}) is not known to be infrastructure"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: AutoRetrySettings = AutoRetrySettings {
        enabled: true,
        daily_cap: 5,
    };

    fn failed(category: &'static str) -> RetryCandidate<'static> {
        RetryCandidate {
            status: BuildStatus::Failure,
            category,
            infrastructure_kind: None,
            provider_failure_reason: None,
            allow_failure: false,
            evidence: &[],
            already_retried: false,
            is_automatic_retry: false,
            retries_today: 0,
        }
    }

    #[test]
    fn an_infrastructure_failure_is_retried_once_with_its_reason() {
        let job = RetryCandidate {
            infrastructure_kind: Some("runner"),
            ..failed("infrastructure")
        };
        let decision = decide(&ON, &job);
        assert!(decision.retries(), "{decision:?}");
        assert!(
            decision
                .reason()
                .starts_with("Retried automatically because the log shows the runner failed")
        );
        let again = RetryCandidate {
            already_retried: true,
            ..job
        };
        assert!(!decide(&ON, &again).retries());
        let retry_of_retry = RetryCandidate {
            is_automatic_retry: true,
            ..job
        };
        assert!(
            decide(&ON, &retry_of_retry)
                .reason()
                .contains("not transient")
        );
    }

    #[test]
    fn test_and_compile_failures_are_never_retried() {
        for category in ["test", "compile", "lint", "configuration", "Test"] {
            // Even when GitLab also reports a runner problem: the code failed first.
            let job = RetryCandidate {
                provider_failure_reason: Some("runner_system_failure"),
                evidence: &["ECONNRESET"],
                ..failed(category)
            };
            let decision = decide(&ON, &job);
            assert!(!decision.retries(), "{category}");
            assert!(decision.reason().contains("in the code"), "{decision:?}");
        }
    }

    #[test]
    fn gitlab_failure_reasons_and_outage_evidence_count_as_infrastructure() {
        let stuck = RetryCandidate {
            provider_failure_reason: Some("stuck_or_timeout_failure"),
            ..failed("unknown")
        };
        assert!(decide(&ON, &stuck).reason().contains("stuck or timed out"));
        let script = RetryCandidate {
            provider_failure_reason: Some("script_failure"),
            ..failed("unknown")
        };
        assert!(!decide(&ON, &script).retries());
        let registry = RetryCandidate {
            evidence: &["Error response from daemon: toomanyrequests: rate limit"],
            ..failed("dependency")
        };
        assert!(decide(&ON, &registry).reason().contains("toomanyrequests"));
        let missing = RetryCandidate {
            evidence: &["npm ERR! 404 Not Found - left-pad"],
            ..failed("dependency")
        };
        assert!(
            decide(&ON, &missing)
                .reason()
                .contains("missing or wrong package")
        );
    }

    #[test]
    fn out_of_memory_is_not_retried() {
        let job = RetryCandidate {
            infrastructure_kind: Some("oom"),
            ..failed("infrastructure")
        };
        assert!(!decide(&ON, &job).retries());
    }

    #[test]
    fn the_daily_cap_the_switch_and_allowed_failures_stop_a_retry() {
        let job = RetryCandidate {
            infrastructure_kind: Some("timeout"),
            ..failed("infrastructure")
        };
        assert!(
            decide(
                &ON,
                &RetryCandidate {
                    retries_today: 4,
                    ..job
                }
            )
            .retries()
        );
        let capped = decide(
            &ON,
            &RetryCandidate {
                retries_today: 5,
                ..job
            },
        );
        assert!(
            capped.reason().contains("5 automatic retries for today"),
            "{capped:?}"
        );
        let off = AutoRetrySettings {
            enabled: false,
            ..ON
        };
        assert!(!decide(&off, &job).retries());
        assert!(
            !decide(
                &ON,
                &RetryCandidate {
                    allow_failure: true,
                    ..job
                }
            )
            .retries()
        );
        assert!(
            !decide(
                &ON,
                &RetryCandidate {
                    status: BuildStatus::Canceled,
                    ..job
                }
            )
            .retries()
        );
    }
}
