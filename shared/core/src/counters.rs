//! Per-project, per-day counters. They are updated in the same transaction as the record they
//! count, so a summary reads one item per project per day whatever the history holds.

use crate::build::Build;
use crate::status::BuildStatus;
use chrono::NaiveDate;

/// Upper bounds (inclusive, milliseconds) of the duration histogram buckets; one more bucket
/// holds everything longer. Roughly log-spaced from one second to three hours.
pub const DURATION_BUCKET_BOUNDS_MS: [u64; 20] = [
    1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 180_000, 300_000, 450_000,
    600_000, 900_000, 1_200_000, 1_800_000, 2_700_000, 3_600_000, 5_400_000, 7_200_000, 10_800_000,
];
pub const DURATION_BUCKETS: usize = DURATION_BUCKET_BOUNDS_MS.len() + 1;

pub const TOTAL: &str = "total";
pub const DURATION_SUM_MS: &str = "duration_sum_ms";
pub const DURATION_COUNT: &str = "duration_count";

/// The bucket a duration falls into.
pub fn duration_bucket(duration_ms: u64) -> usize {
    DURATION_BUCKET_BOUNDS_MS.partition_point(|&bound| bound < duration_ms)
}

pub fn bucket_counter(bucket: usize) -> String {
    format!("duration_bucket_{bucket:02}")
}

pub fn status_counter(status: BuildStatus) -> String {
    format!("status_{}", status.as_str().to_ascii_lowercase())
}

/// Increments to apply atomically to one day's counters of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub day: NaiveDate,
    pub increments: Vec<(String, i64)>,
}

impl CounterDelta {
    /// A build seen for the first time.
    pub fn first_sighting(build: &Build) -> Self {
        let mut increments = vec![(TOTAL.to_string(), 1), (status_counter(build.status), 1)];
        increments.extend(duration_increments(build));
        CounterDelta {
            day: build.timestamp.date_naive(),
            increments,
        }
    }

    /// A build that moved from `from` to its current status; counted on the day it was first
    /// counted so the two updates cancel out exactly.
    pub fn transition(from: BuildStatus, build: &Build, counted_on: NaiveDate) -> Self {
        let mut increments = vec![
            (status_counter(from), -1),
            (status_counter(build.status), 1),
        ];
        increments.extend(duration_increments(build));
        CounterDelta {
            day: counted_on,
            increments,
        }
    }
}

/// Durations are counted once, when a build with a duration reaches a terminal state.
fn duration_increments(build: &Build) -> Vec<(String, i64)> {
    match build.duration_ms {
        Some(ms) if build.status.is_terminal() => {
            let ms_i64 = i64::try_from(ms).unwrap_or(i64::MAX);
            vec![
                (DURATION_SUM_MS.to_string(), ms_i64),
                (DURATION_COUNT.to_string(), 1),
                (bucket_counter(duration_bucket(ms)), 1),
            ]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BuildSubmission;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    fn build(status: &str, duration: Option<u64>) -> Build {
        let now = DateTime::parse_from_rfc3339("2026-11-22T23:59:00Z")
            .unwrap()
            .with_timezone(&Utc);
        BuildSubmission::parse(
            &json!({"build_id": "1", "repo": "a/b", "branch": "main", "status": status,
                    "duration_ms": duration, "timestamp": "2026-11-21T23:30:00-02:00"}),
            now,
        )
        .unwrap()
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(duration_bucket(0), 0);
        assert_eq!(duration_bucket(1_000), 0);
        assert_eq!(duration_bucket(1_001), 1);
        assert_eq!(duration_bucket(10_800_000), 19);
        assert_eq!(duration_bucket(u64::MAX), DURATION_BUCKETS - 1);
        assert_eq!(bucket_counter(3), "duration_bucket_03");
    }

    #[test]
    fn first_sighting_counts_on_the_utc_day() {
        let delta = CounterDelta::first_sighting(&build("success", Some(90_000)));
        assert_eq!(delta.day.to_string(), "2026-11-22");
        assert!(delta.increments.contains(&("total".into(), 1)));
        assert!(delta.increments.contains(&("status_success".into(), 1)));
        assert!(
            delta
                .increments
                .contains(&("duration_sum_ms".into(), 90_000))
        );
        assert!(delta.increments.contains(&("duration_bucket_07".into(), 1)));
    }

    #[test]
    fn running_builds_do_not_count_durations_and_transitions_move_status() {
        let running = CounterDelta::first_sighting(&build("running", Some(5)));
        assert_eq!(running.increments.len(), 2);
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let done = CounterDelta::transition(BuildStatus::Running, &build("failed", Some(5)), day);
        assert_eq!(done.day, day);
        assert!(done.increments.contains(&("status_running".into(), -1)));
        assert!(done.increments.contains(&("status_failure".into(), 1)));
        assert!(!done.increments.iter().any(|(name, _)| name == "total"));
        assert!(done.increments.contains(&("duration_count".into(), 1)));
    }
}
