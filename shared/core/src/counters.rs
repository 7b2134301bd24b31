//! Per-project, per-day counters. They are updated in the same transaction as the record they
//! count, so a summary reads one item per project per day whatever the history holds.

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

/// Which set of counters a record feeds: runs (builds and pipelines, the unit of a project's
/// health) or jobs (the steps inside a pipeline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterFamily {
    Runs,
    Jobs,
}

impl CounterFamily {
    fn prefix(self) -> &'static str {
        match self {
            CounterFamily::Runs => "",
            CounterFamily::Jobs => "job_",
        }
    }
}

/// What one record adds to its project's counters for the day it was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contribution {
    pub family: CounterFamily,
    pub status: BuildStatus,
    /// Counted only once the record is finished.
    pub duration_ms: Option<u64>,
}

impl Contribution {
    fn increments(self, sign: i64) -> Vec<(String, i64)> {
        let prefix = self.family.prefix();
        let mut increments = vec![(format!("{prefix}{}", status_counter(self.status)), sign)];
        if let Some(ms) = self.duration_ms.filter(|_| self.status.is_terminal()) {
            let ms_i64 = i64::try_from(ms).unwrap_or(i64::MAX);
            increments.push((format!("{prefix}{DURATION_SUM_MS}"), sign * ms_i64));
            increments.push((format!("{prefix}{DURATION_COUNT}"), sign));
            increments.push((
                format!("{prefix}{}", bucket_counter(duration_bucket(ms))),
                sign,
            ));
        }
        increments
    }
}

/// Increments to apply atomically to one day's counters of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDelta {
    pub day: NaiveDate,
    pub increments: Vec<(String, i64)>,
}

impl CounterDelta {
    /// A record seen for the first time: one more in total, plus what it contributes.
    pub fn first_sighting(contribution: Contribution, day: NaiveDate) -> Self {
        let mut increments = vec![(format!("{}{TOTAL}", contribution.family.prefix()), 1)];
        increments.extend(contribution.increments(1));
        CounterDelta { day, increments }
    }

    /// A record that changed: its old contribution is taken back and the new one added, on the
    /// day it was first counted, so counters always describe each record's latest state once.
    pub fn transition(old: Contribution, new: Contribution, counted_on: NaiveDate) -> Self {
        let mut merged: std::collections::BTreeMap<String, i64> = Default::default();
        for (name, amount) in old.increments(-1).into_iter().chain(new.increments(1)) {
            *merged.entry(name).or_default() += amount;
        }
        CounterDelta {
            day: counted_on,
            increments: merged
                .into_iter()
                .filter(|(_, amount)| *amount != 0)
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.increments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(status: BuildStatus, duration_ms: Option<u64>) -> Contribution {
        Contribution {
            family: CounterFamily::Runs,
            status,
            duration_ms,
        }
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
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
    fn first_sighting_counts_total_status_and_finished_duration() {
        let delta = CounterDelta::first_sighting(runs(BuildStatus::Success, Some(90_000)), day());
        assert_eq!(delta.day, day());
        assert!(delta.increments.contains(&("total".into(), 1)));
        assert!(delta.increments.contains(&("status_success".into(), 1)));
        assert!(
            delta
                .increments
                .contains(&("duration_sum_ms".into(), 90_000))
        );
        assert!(delta.increments.contains(&("duration_bucket_07".into(), 1)));
        let running = CounterDelta::first_sighting(runs(BuildStatus::Running, Some(5)), day());
        assert_eq!(running.increments.len(), 2);
    }

    #[test]
    fn transitions_move_status_and_replace_durations() {
        let done = CounterDelta::transition(
            runs(BuildStatus::Running, None),
            runs(BuildStatus::Failure, Some(5)),
            day(),
        );
        assert!(done.increments.contains(&("status_running".into(), -1)));
        assert!(done.increments.contains(&("status_failure".into(), 1)));
        assert!(!done.increments.iter().any(|(name, _)| name == "total"));
        assert!(done.increments.contains(&("duration_count".into(), 1)));
        // A retried pipeline: failed after 5 s, then succeeded after 8 s; one duration remains.
        let retried = CounterDelta::transition(
            runs(BuildStatus::Failure, Some(5_000)),
            runs(BuildStatus::Success, Some(8_000)),
            day(),
        );
        assert!(
            retried
                .increments
                .contains(&("duration_sum_ms".into(), 3_000))
        );
        assert!(
            !retried
                .increments
                .iter()
                .any(|(name, _)| name == "duration_count")
        );
        assert!(
            retried
                .increments
                .contains(&("duration_bucket_02".into(), -1))
        );
        assert!(
            retried
                .increments
                .contains(&("duration_bucket_03".into(), 1))
        );
    }

    #[test]
    fn job_counters_have_their_own_names() {
        let job = Contribution {
            family: CounterFamily::Jobs,
            status: BuildStatus::Failure,
            duration_ms: None,
        };
        let delta = CounterDelta::first_sighting(job, day());
        assert_eq!(
            delta.increments,
            vec![
                ("job_total".to_string(), 1),
                ("job_status_failure".to_string(), 1)
            ]
        );
    }
}
