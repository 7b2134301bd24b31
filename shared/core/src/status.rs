//! The one normalised status set shared by every ingest path.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildStatus {
    Pending,
    Running,
    Success,
    Failure,
    Canceled,
    Skipped,
}

/// The spellings accepted from CI systems, lower-cased, and what each means.
const ALIASES: &[(&str, BuildStatus)] = &[
    ("pending", BuildStatus::Pending),
    ("queued", BuildStatus::Pending),
    ("created", BuildStatus::Pending),
    ("waiting", BuildStatus::Pending),
    ("waiting_for_resource", BuildStatus::Pending),
    ("preparing", BuildStatus::Pending),
    ("scheduled", BuildStatus::Pending),
    ("requested", BuildStatus::Pending),
    ("manual", BuildStatus::Pending),
    ("running", BuildStatus::Running),
    ("canceling", BuildStatus::Running),
    ("in_progress", BuildStatus::Running),
    ("started", BuildStatus::Running),
    ("success", BuildStatus::Success),
    ("succeeded", BuildStatus::Success),
    ("successful", BuildStatus::Success),
    ("passed", BuildStatus::Success),
    ("ok", BuildStatus::Success),
    ("failure", BuildStatus::Failure),
    ("failed", BuildStatus::Failure),
    ("error", BuildStatus::Failure),
    ("errored", BuildStatus::Failure),
    ("timed_out", BuildStatus::Failure),
    ("canceled", BuildStatus::Canceled),
    ("cancelled", BuildStatus::Canceled),
    ("aborted", BuildStatus::Canceled),
    ("skipped", BuildStatus::Skipped),
    ("neutral", BuildStatus::Skipped),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status {0:?}; use one of SUCCESS, FAILURE, RUNNING, PENDING, CANCELED, SKIPPED (any case; common CI spellings such as 'failed', 'passed', 'in_progress', 'cancelled' are accepted too)"
)]
pub struct UnknownStatus(pub String);

impl BuildStatus {
    pub const ALL: [BuildStatus; 6] = [
        BuildStatus::Pending,
        BuildStatus::Running,
        BuildStatus::Success,
        BuildStatus::Failure,
        BuildStatus::Canceled,
        BuildStatus::Skipped,
    ];

    /// Parses any accepted spelling, ignoring case and surrounding spaces.
    pub fn parse(raw: &str) -> Result<Self, UnknownStatus> {
        let lowered = raw.trim().to_ascii_lowercase().replace('-', "_");
        ALIASES
            .iter()
            .find(|(alias, _)| *alias == lowered)
            .map(|(_, status)| *status)
            .ok_or_else(|| UnknownStatus(raw.to_string()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Pending => "PENDING",
            BuildStatus::Running => "RUNNING",
            BuildStatus::Success => "SUCCESS",
            BuildStatus::Failure => "FAILURE",
            BuildStatus::Canceled => "CANCELED",
            BuildStatus::Skipped => "SKIPPED",
        }
    }

    /// A finished build never changes status again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BuildStatus::Success
                | BuildStatus::Failure
                | BuildStatus::Canceled
                | BuildStatus::Skipped
        )
    }

    /// How far along the lifecycle a status is; state only ever moves to a higher rank.
    pub fn rank(self) -> u8 {
        match self {
            BuildStatus::Pending => 0,
            BuildStatus::Running => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_common_spellings() {
        assert_eq!(BuildStatus::parse("success"), Ok(BuildStatus::Success));
        assert_eq!(BuildStatus::parse("  FaILeD "), Ok(BuildStatus::Failure));
        assert_eq!(BuildStatus::parse("in-progress"), Ok(BuildStatus::Running));
        assert_eq!(BuildStatus::parse("Cancelled"), Ok(BuildStatus::Canceled));
        assert_eq!(BuildStatus::parse("MANUAL"), Ok(BuildStatus::Pending));
    }

    #[test]
    fn rejects_unknown_with_a_message_listing_the_set() {
        let err = BuildStatus::parse("exploded").unwrap_err();
        assert!(err.to_string().contains("SUCCESS, FAILURE, RUNNING"));
        assert!(BuildStatus::parse("").is_err());
    }

    #[test]
    fn every_status_round_trips_through_its_canonical_name() {
        for status in BuildStatus::ALL {
            assert_eq!(BuildStatus::parse(status.as_str()), Ok(status));
        }
    }

    #[test]
    fn terminal_states_outrank_live_ones() {
        assert!(BuildStatus::Running.rank() > BuildStatus::Pending.rank());
        for status in BuildStatus::ALL {
            assert_eq!(status.is_terminal(), status.rank() == 2);
        }
    }
}
