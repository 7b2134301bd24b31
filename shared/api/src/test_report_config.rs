//! The test-report knobs from the environment (see `FlakySettings` for what each means).

use crate::config::ConfigError;
use buildlore_core::junit::history::{FlakySettings, HISTORY_KEPT};

fn whole(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    rule: &'static str,
    valid: impl Fn(u64) -> bool,
) -> Result<u64, ConfigError> {
    match lookup(name).filter(|text| !text.trim().is_empty()) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if valid(n) => Ok(n),
            _ => Err(ConfigError::Invalid(name, rule)),
        },
    }
}

/// Test-report settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestReportConfig {
    pub flaky: FlakySettings,
    /// `GITLAB_TEST_REPORT_FETCH`: when a pipeline hook reports a finished pipeline (and a
    /// GitLab token is configured), fetch its test report from GitLab once. Off by default.
    pub fetch_from_gitlab: bool,
}

pub fn from_lookup(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<TestReportConfig, ConfigError> {
    let fetch_from_gitlab = match lookup("GITLAB_TEST_REPORT_FETCH")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("false") | Some("0") | Some("no") | Some("off") => false,
        Some("true") | Some("1") | Some("yes") | Some("on") => true,
        Some(_) => {
            return Err(ConfigError::Invalid(
                "GITLAB_TEST_REPORT_FETCH",
                "true or false",
            ));
        }
    };
    Ok(TestReportConfig {
        flaky: flaky_settings(lookup)?,
        fetch_from_gitlab,
    })
}

fn flaky_settings(lookup: &impl Fn(&str) -> Option<String>) -> Result<FlakySettings, ConfigError> {
    let defaults = FlakySettings::default();
    let default_branches = match lookup("TEST_DEFAULT_BRANCHES") {
        Some(list) if !list.trim().is_empty() => list
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(String::from)
            .collect(),
        _ => defaults.default_branches.clone(),
    };
    let infra_failure_ratio = match lookup("TEST_INFRA_FAILURE_RATIO") {
        Some(text) if !text.trim().is_empty() => match text.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                return Err(ConfigError::Invalid(
                    "TEST_INFRA_FAILURE_RATIO",
                    "a share between 0 and 1 (such as 0.8)",
                ));
            }
        },
        _ => defaults.infra_failure_ratio,
    };
    Ok(FlakySettings {
        flip_runs: whole(
            lookup,
            "TEST_FLIP_RUNS",
            defaults.flip_runs as u64,
            "a whole number of runs from 2 to 20",
            |n| (2..=HISTORY_KEPT as u64).contains(&n),
        )? as usize,
        flip_threshold: whole(
            lookup,
            "TEST_FLIP_THRESHOLD",
            defaults.flip_threshold as u64,
            "a whole number of flips",
            |_| true,
        )? as usize,
        default_branches,
        lift_after_passes: whole(
            lookup,
            "TEST_LIFT_AFTER_PASSES",
            u64::from(defaults.lift_after_passes),
            "a whole number of runs above 0",
            |n| n > 0 && n <= u64::from(u32::MAX),
        )? as u32,
        track_days: whole(
            lookup,
            "TEST_TRACK_DAYS",
            u64::from(defaults.track_days),
            "a whole number of days above 0",
            |n| n > 0 && n <= 3650,
        )? as u32,
        infra_failure_ratio,
        infra_min_tests: whole(
            lookup,
            "TEST_INFRA_MIN_TESTS",
            defaults.infra_min_tests,
            "a whole number of tests",
            |_| true,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let none = from_lookup(&|_: &str| None).unwrap();
        assert_eq!(none, TestReportConfig::default());
        assert!(!none.fetch_from_gitlab, "off unless asked for");
        let fetch =
            from_lookup(&|n: &str| (n == "GITLAB_TEST_REPORT_FETCH").then(|| "true".into()));
        assert!(fetch.unwrap().fetch_from_gitlab);
        let set = from_lookup(&|name: &str| match name {
            "TEST_DEFAULT_BRANCHES" => Some("trunk, develop".into()),
            "TEST_INFRA_FAILURE_RATIO" => Some("0.5".into()),
            "TEST_FLIP_RUNS" => Some("5".into()),
            _ => None,
        })
        .unwrap()
        .flaky;
        assert_eq!(set.default_branches, vec!["trunk", "develop"]);
        assert_eq!((set.infra_failure_ratio, set.flip_runs), (0.5, 5));
        for (name, bad) in [
            ("GITLAB_TEST_REPORT_FETCH", "maybe"),
            ("TEST_INFRA_FAILURE_RATIO", "80%"),
            ("TEST_FLIP_RUNS", "50"),
            ("TEST_TRACK_DAYS", "0"),
        ] {
            let error = from_lookup(&|n: &str| (n == name).then(|| bad.to_string())).unwrap_err();
            assert!(error.to_string().contains(name), "{error}");
        }
    }
}
