//! The CI snippets in README, sent as written: every `curl` to `$BUILDLORE_URL` in a code block
//! is read (URL, headers, body from a heredoc, a quoted `--data` or `--data-binary @job.log`), the
//! CI variables are filled with sample values, and the request must succeed.

use axum::body::Body;
use buildlore_tests::{TestStack, fixtures, keys};
use std::path::PathBuf;

const SAMPLE_VARIABLES: &[(&str, &str)] = &[
    ("BUILDLORE_INGEST_KEY", keys::INGEST),
    ("GITHUB_RUN_ID", "9001"),
    ("GITHUB_RUN_ATTEMPT", "1"),
    ("GITHUB_REPOSITORY", "octo/app"),
    ("GITHUB_REF_NAME", "main"),
    ("GITHUB_SHA", "0123abcd"),
    ("JOB_STATUS", "failure"),
    ("CI_PROJECT_PATH", "team/sub/app"),
    ("CI_PIPELINE_ID", "700"),
    ("CI_JOB_ID", "7001"),
    ("CI_JOB_NAME_SLUG", "unit-tests"),
    ("CI_COMMIT_REF_SLUG", "main"),
    ("CI_COMMIT_REF_NAME", "main"),
    ("CI_COMMIT_SHA", "4567ef"),
    ("BUILD_STATUS", "failed"),
    ("CI_PROJECT_ID", "4242"),
    ("GITHUB_REPOSITORY_ID", "55501"),
    ("GITHUB_JOB", "test"),
];

/// The JUnit files the test-report snippets send: pytest's, and a Surefire file per class.
const PYTEST_REPORT: &str = "junit/action-junit-report/test_results/python/report.xml";
const SUREFIRE_REPORT: &str = "junit/action-junit-report/test_results/tests/utils/target/surefire-reports/TEST-action.surefire.report.calc.StringUtilsTest.xml";

fn fill(text: &str) -> String {
    let mut text = text.to_string();
    for (name, value) in SAMPLE_VARIABLES {
        text = text
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    text
}

struct Request {
    path: String,
    content_type: String,
    gzip: bool,
    body: Vec<u8>,
}

/// The curl requests of one code block.
fn requests(block: &str) -> Vec<Request> {
    let joined = block.replace("\\\n", " ");
    let lines: Vec<&str> = joined.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(at) = line.find("\"$BUILDLORE_URL") else {
            continue;
        };
        let url = &line[at + 1..];
        let url = &url[..url.find('"').expect("a closing quote")];
        let path = fill(url.trim_start_matches("$BUILDLORE_URL"));
        let content_type = line
            .split("-H \"Content-Type: ")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("application/json")
            .to_string();
        let body = if line.contains("<<JSON") {
            lines[index + 1..]
                .iter()
                .take_while(|l| l.trim() != "JSON")
                .copied()
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        } else if let Some(rest) = line.split("--data '").nth(1) {
            let end = rest.find('\'').expect("a closing quote");
            rest.as_bytes()[..end].to_vec()
        } else if line.contains("--data-binary @job.log") {
            fixtures::bytes("ci-logs/github-actions/python/2446151667-orig.log")
        } else if line.contains("--data-binary @report.xml") {
            fixtures::bytes(PYTEST_REPORT)
        } else if line.contains("--data-binary \"@$report\"") {
            fixtures::bytes(SUREFIRE_REPORT)
        } else if line.contains("gzip -c report.xml |") && line.contains("--data-binary @-") {
            fixtures::bytes(PYTEST_REPORT)
        } else {
            panic!("a snippet's curl without a body I can read: {line}")
        };
        let gzip = line.contains("Content-Encoding: gzip");
        let body = if content_type == "application/xml" {
            body
        } else {
            fill(&String::from_utf8_lossy(&body)).into_bytes()
        };
        found.push(Request {
            path,
            content_type,
            gzip,
            body: if gzip {
                buildlore_core::compression::gzip(&body)
            } else {
                body
            },
        });
    }
    found
}

#[tokio::test]
async fn the_ci_snippets_in_readme_work_as_written() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let section = readme
        .split("## From your CI")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a `From your CI` section");
    let blocks: Vec<&str> = section.split("```").skip(1).step_by(2).collect();
    let all: Vec<Request> = blocks.iter().flat_map(|block| requests(block)).collect();
    assert!(all.len() >= 4, "found {} requests", all.len());
    let stack = TestStack::new().await;
    for request in &all {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(&request.path)
            .header("authorization", format!("Bearer {}", keys::INGEST))
            .header("content-type", &request.content_type);
        if request.gzip {
            builder = builder.header("content-encoding", "gzip");
        }
        let http_request = builder.body(Body::from(request.body.clone())).unwrap();
        let (status, _, answer) = stack.send(http_request).await;
        assert!(
            status.is_success(),
            "{} answered {status}: {answer}",
            request.path
        );
    }
    // What they sent is there: the GitHub build, the GitLab pipeline, the pushed log.
    let (_, builds) = stack.get("/api/v1/builds?repo=octo/app").await;
    assert_eq!(builds["builds"][0]["status"], "FAILURE", "{builds}");
    let (_, builds) = stack.get("/api/v1/builds?repo=team/sub/app").await;
    assert_eq!(builds["builds"][0]["build_id"], "700", "{builds}");
    let trace = http::Request::builder()
        .uri("/api/v1/jobs/gitlab/team%2Fsub%2Fapp/7001/trace")
        .header("authorization", format!("Bearer {}", keys::READ))
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(stack.app.clone(), trace)
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let stored = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        &stored[..],
        &fixtures::bytes("ci-logs/github-actions/python/2446151667-orig.log")[..],
        "the log arrives byte for byte"
    );

    // The test reports arrived under their jobs, with the failing tests.
    for (path, tests, failed) in [
        ("/api/v1/jobs/gitlab/team%2Fsub%2Fapp/7001/reports", 3, 2),
        ("/api/v1/jobs/github/octo%2Fapp/9001-test-1/reports", 5, 2),
        ("/api/v1/jobs/jenkins/team%2Fapp/1234/reports", 3, 2),
    ] {
        let (status, report) = stack.get(path).await;
        assert_eq!(status, http::StatusCode::OK, "{path}: {report}");
        assert_eq!(
            (report["tests"].as_u64(), report["failed"].as_u64()),
            (Some(tests), Some(failed)),
            "{path}: {report}"
        );
    }
    let (_, failing) = stack
        .get("/api/v1/repos/team%2Fsub%2Fapp/tests?state=failing")
        .await;
    assert_eq!(failing["tests"][0]["last_job"], "gitlab/7001", "{failing}");

    // A plain-text push that leaves out a field is refused, and says which.
    let incomplete = http::Request::builder()
        .method("POST")
        .uri("/api/ingest/log?provider=gitlab&project=team/app&status=failed")
        .header("authorization", format!("Bearer {}", keys::INGEST))
        .header("content-type", "text/plain")
        .body(Body::from("some log\n"))
        .unwrap();
    let (status, _, answer) = stack.send(incomplete).await;
    assert_eq!(status, http::StatusCode::BAD_REQUEST);
    assert!(
        answer["error"].as_str().unwrap().contains("job_id"),
        "{answer}"
    );
}
