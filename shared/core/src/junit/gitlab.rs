//! GitLab's pipeline test report (`GET /projects/:id/pipelines/:pipeline_id/test_report`):
//! GitLab has already parsed the jobs' `artifacts:reports:junit` files into JSON, one suite per
//! job name. Each suite becomes one report, counted by the same rules as an uploaded file.

use super::parse::{cut, finish_text};
use super::{FailureDetail, Outcome, ParsedReport, TestCollector, TestResult};
use crate::redact::Redacted;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Deserialize)]
struct PipelineTestReport {
    #[serde(default)]
    test_suites: Vec<Suite>,
}

#[derive(Debug, Deserialize)]
struct Suite {
    #[serde(default)]
    name: String,
    #[serde(default)]
    test_cases: Vec<Case>,
    /// Set when GitLab could not parse the job's report.
    #[serde(default)]
    suite_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Case {
    #[serde(default)]
    status: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    classname: Option<String>,
    #[serde(default)]
    execution_time: Option<f64>,
    #[serde(default)]
    system_output: Option<String>,
    #[serde(default)]
    stack_trace: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("GitLab's test report is not the documented JSON: {0}")]
pub struct GitlabReportError(String);

/// One job's part of a pipeline's test report.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteReport {
    /// The job name the suite is named after.
    pub job_name: String,
    pub report: ParsedReport,
}

fn outcome(status: &str) -> Outcome {
    match status {
        "failed" => Outcome::Failed,
        "error" => Outcome::Error,
        "skipped" => Outcome::Skipped,
        _ => Outcome::Passed,
    }
}

/// The suites of a pipeline's test report that hold cases (a suite GitLab could not parse
/// holds none and is left out).
pub fn parse_pipeline_test_report(json: &[u8]) -> Result<Vec<SuiteReport>, GitlabReportError> {
    let parsed: PipelineTestReport =
        serde_json::from_slice(json).map_err(|e| GitlabReportError(e.to_string()))?;
    let mut suites = Vec::new();
    for suite in parsed.test_suites {
        if suite.test_cases.is_empty() || suite.suite_error.is_some() {
            continue;
        }
        // What identifies this suite's content, so a second fetch is recognised.
        let mut digest = Sha256::new();
        digest.update(suite.name.as_bytes());
        let mut tests = TestCollector::default();
        for case in &suite.test_cases {
            let outcome = outcome(&case.status);
            let classname = case.classname.as_deref().unwrap_or_default().trim();
            let suite_key = if classname.is_empty() {
                suite.name.clone()
            } else {
                cut(classname, 1_000)
            };
            digest.update([0x1e]);
            for part in [&suite_key, &case.name, &case.status] {
                digest.update(part.as_bytes());
                digest.update([0x1f]);
            }
            let failure = outcome.is_failure().then(|| {
                let output = case.system_output.as_deref().unwrap_or_default();
                let trace = case.stack_trace.as_deref().unwrap_or_default();
                let message = output.lines().map(str::trim).find(|line| !line.is_empty());
                FailureDetail {
                    message: message.map(|m| Redacted::new(&cut(m, 500)).into_string()),
                    kind: None,
                    text: finish_text(if trace.trim().is_empty() {
                        output
                    } else {
                        trace
                    }),
                }
            });
            tests.add(TestResult {
                suite: suite_key,
                name: cut(case.name.trim(), 1_000),
                outcome,
                duration_seconds: case
                    .execution_time
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .unwrap_or(0.0),
                failure,
            });
        }
        let (totals, tests) = tests.finish();
        suites.push(SuiteReport {
            job_name: suite.name,
            report: ParsedReport {
                totals,
                tests,
                digest: digest
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                bytes: 0,
            },
        });
    }
    Ok(suites)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape GitLab documents for `GET /projects/:id/pipelines/:pipeline_id/test_report`.
    const REPORT: &str = r#"{
      "total_time": 5, "total_count": 4, "success_count": 2, "failed_count": 1,
      "skipped_count": 1, "error_count": 0,
      "test_suites": [
        {"name": "rspec", "total_time": 5, "total_count": 4, "success_count": 2,
         "failed_count": 1, "skipped_count": 1, "error_count": 0, "suite_error": null,
         "test_cases": [
           {"status": "success", "name": "creates an MR", "classname": "mr_spec",
            "execution_time": 1.5, "system_output": null, "stack_trace": null},
           {"status": "failed", "name": "merges", "classname": "mr_spec", "execution_time": 2,
            "system_output": "Failure/Error: expect(mr).to be_merged\n  expected merged", "stack_trace": null},
           {"status": "skipped", "name": "rebases", "classname": "mr_spec", "execution_time": 0},
           {"status": "success", "name": "closes", "classname": null, "execution_time": null}
         ]},
        {"name": "broken", "total_count": 0, "suite_error": "JUnit XML parsing failed", "test_cases": []}
      ]
    }"#;

    #[test]
    fn suites_become_reports_counted_by_our_rules() {
        let suites = parse_pipeline_test_report(REPORT.as_bytes()).unwrap();
        assert_eq!(suites.len(), 1);
        let rspec = &suites[0];
        assert_eq!(rspec.job_name, "rspec");
        let t = rspec.report.totals;
        assert_eq!((t.tests, t.passed, t.failed, t.skipped), (4, 2, 1, 1));
        let failed = &rspec.report.tests[1];
        let detail = failed.failure.as_ref().unwrap();
        assert_eq!(
            detail.message.as_deref(),
            Some("Failure/Error: expect(mr).to be_merged")
        );
        assert!(detail.text.contains("expected merged"));
        assert_eq!(
            rspec.report.tests[3].suite, "rspec",
            "no classname: the suite names it"
        );
        let again = parse_pipeline_test_report(REPORT.as_bytes()).unwrap();
        assert_eq!(again[0].report.digest, rspec.report.digest);
        assert!(parse_pipeline_test_report(b"<html>").is_err());
    }
}
