//! JUnit uploads end to end on the emulator: totals, merging, idempotent retries, refusals
//! that store nothing, writes that grow with failing tests only, the flakiness monitors, the
//! infrastructure-failure guard, per-test history and quarantine.

use buildlore_core::compression::gzip;
use buildlore_core::junit::test_id;
use buildlore_tests::stack::{Item, keys};
use buildlore_tests::{TestStack, fixtures};
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

const REPO: &str = "shop/cart";
const REPO_PATH: &str = "shop%2Fcart";

fn upload_path(job: &str, query: &str) -> String {
    format!("/api/v1/jobs/gitlab/{REPO_PATH}/{job}/reports/junit{query}")
}

async fn upload(stack: &TestStack, job: &str, query: &str, xml: &[u8]) -> (StatusCode, Value) {
    stack
        .deliver(
            &upload_path(job, query),
            &[
                ("authorization", &format!("Bearer {}", keys::INGEST)),
                ("content-type", "application/xml"),
            ],
            xml.to_vec(),
        )
        .await
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures::bytes(&format!("junit/{name}"))
}

/// A report of `tests` cases in one class, of which the named ones fail.
fn report(tests: usize, failing: &[usize]) -> Vec<u8> {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<testsuite name=\"cart\">\n");
    for index in 0..tests {
        if failing.contains(&index) {
            xml.push_str(&format!(
                "<testcase classname=\"shop.CartTest\" name=\"case_{index}\" time=\"0.5\"><failure message=\"expected 2 got 3\">at CartTest.java:{index}</failure></testcase>\n"
            ));
        } else {
            xml.push_str(&format!(
                "<testcase classname=\"shop.CartTest\" name=\"case_{index}\" time=\"0.01\"/>\n"
            ));
        }
    }
    xml.push_str("</testsuite>\n");
    xml.into_bytes()
}

fn id(index: usize) -> String {
    test_id("shop.CartTest", &format!("case_{index}"))
}

fn text(item: &Item, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

async fn tests_in(stack: &TestStack, state: &str) -> Vec<Value> {
    let (status, body) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/tests?state={state}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["tests"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_upload_answers_its_totals_and_a_retry_counts_once() {
    let stack = TestStack::new().await;
    let xml = fixture(
        "action-junit-report/test_results/tests/utils/target/surefire-reports/TEST-action.surefire.report.calc.StringUtilsTest.xml",
    );
    let (status, body) = upload(&stack, "101", "?commit=abc123&branch=main", &xml).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let totals: Vec<u64> = ["tests", "passed", "failed", "errors", "skipped", "flaky"]
        .iter()
        .map(|name| body[*name].as_u64().unwrap())
        .collect();
    assert_eq!(totals, vec![5, 2, 2, 0, 1, 0]);
    let failed = body["failed_tests"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0]["suite"],
        "action.surefire.report.calc.StringUtilsTest"
    );
    assert!(failed[0]["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(
        failed[0]["message"].is_string() || failed[0]["text"].is_string(),
        "{body}"
    );
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["commit"], "abc123");

    let items_before = stack.items().await.len();
    let (again, repeat) = upload(&stack, "101", "", &xml).await;
    assert_eq!(again, StatusCode::OK, "{repeat}");
    assert_eq!(repeat["duplicate"], true);
    assert_eq!(repeat["tests"], 5);
    assert_eq!(stack.items().await.len(), items_before);
    // The same file gzip-compressed is the same upload.
    let (packed, packed_body) = stack
        .deliver(
            &upload_path("101", ""),
            &[
                ("authorization", &format!("Bearer {}", keys::INGEST)),
                ("content-type", "application/xml"),
                ("content-encoding", "gzip"),
            ],
            gzip(&xml),
        )
        .await;
    assert_eq!(packed, StatusCode::OK, "{packed_body}");
    assert_eq!(packed_body["duplicate"], true);

    let failing = tests_in(&stack, "failing").await;
    assert_eq!(failing.len(), 2);
    assert!(
        failing.iter().all(|t| t["runs"] == 1 && t["failures"] == 1),
        "{failing:?}"
    );
    assert!(failing.iter().all(|t| t["last_job"] == "gitlab/101"));

    let (status, report) = stack
        .get(&format!("/api/v1/jobs/gitlab/{REPO_PATH}/101/reports"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["uploads"].as_u64(), report["tests"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(report["failed_tests"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn a_job_with_several_files_merges_them() {
    let stack = TestStack::new().await;
    for file in ["test_10.xml", "test_11.xml", "test_12.xml"] {
        let xml = fixture(&format!("action-junit-report/test_results/multiple/{file}"));
        let (status, body) = upload(&stack, "7", "", &xml).await;
        assert_eq!(status, StatusCode::CREATED, "{file}: {body}");
        assert_eq!(body["tests"], 3, "{file}");
    }
    let (status, report) = stack
        .get(&format!("/api/v1/jobs/gitlab/{REPO_PATH}/7/reports"))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["uploads"], 3);
    let totals: Vec<u64> = ["tests", "passed", "failed", "errors", "skipped", "flaky"]
        .iter()
        .map(|name| report[*name].as_u64().unwrap())
        .collect();
    assert_eq!(totals, vec![9, 7, 1, 0, 1, 0]);
    assert_eq!(report["failed_tests"].as_array().map(Vec::len), Some(1));
    // Another job has no report.
    let (missing, body) = stack
        .get(&format!("/api/v1/jobs/gitlab/{REPO_PATH}/8/reports"))
        .await;
    assert_eq!(missing, StatusCode::NOT_FOUND, "{body}");
}

/// What is sent, with which extra headers, and the status and word the answer must carry.
type RefusalCase = (
    &'static str,
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
    StatusCode,
    &'static str,
);

#[tokio::test]
async fn bad_uploads_are_refused_and_store_nothing() {
    let stack = TestStack::new().await;
    let mut bomb = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for level in 1..10 {
        let previous = if level == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", level - 1)
        };
        bomb.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">",
            format!("&{previous};").repeat(10)
        ));
    }
    bomb.push_str("]><testsuite name=\"&lol9;\"/>");
    let huge_plain = {
        let mut xml = b"<testsuite name=\"big\">".to_vec();
        let case = b"<testcase classname=\"c\" name=\"t\"/>\n";
        while xml.len() <= 31 * 1024 * 1024 {
            xml.extend_from_slice(case);
        }
        xml
    };
    let cases: Vec<RefusalCase> = vec![
        (
            "entity bomb",
            bomb.into_bytes(),
            vec![],
            StatusCode::BAD_REQUEST,
            "entities",
        ),
        (
            "malformed",
            fixture(
                "action-junit-report/test_results/corrupt-junit/e2e-tests/corrupt/target/sf-reports/TEST-test.CorruptTest.xml",
            ),
            vec![],
            StatusCode::BAD_REQUEST,
            "CDATA",
        ),
        (
            "not JUnit",
            fixture("action-junit-report/test_results/tests/pom.xml"),
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            "Maven POM",
        ),
        (
            "JSON",
            br#"{"tests": 1}"#.to_vec(),
            vec![],
            StatusCode::BAD_REQUEST,
            "not XML",
        ),
        (
            "empty",
            Vec::new(),
            vec![],
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            "HTML content type",
            report(3, &[]),
            vec![("content-type", "text/html")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
        ),
        (
            "broken gzip",
            b"this is not gzip".to_vec(),
            vec![("content-encoding", "gzip")],
            StatusCode::BAD_REQUEST,
            "gzip",
        ),
        (
            "gzip bomb",
            gzip(&huge_plain),
            vec![("content-encoding", "gzip")],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
        (
            "too large",
            huge_plain.clone(),
            vec![],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    for (what, body, extra, expected, word) in cases {
        let key = format!("Bearer {}", keys::INGEST);
        let mut headers = vec![("authorization", key.as_str())];
        if !extra.iter().any(|(name, _)| *name == "content-type") {
            headers.push(("content-type", "application/xml"));
        }
        headers.extend(extra.iter().copied());
        let started = std::time::Instant::now();
        let (status, answer) = stack.deliver(&upload_path("9", ""), &headers, body).await;
        assert_eq!(status, expected, "{what}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(word), "{what}: {message}");
        assert_eq!(answer["statusCode"], expected.as_u16());
        if what == "entity bomb" {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{what} was slow"
            );
        }
    }
    assert!(
        stack.items().await.is_empty(),
        "a refused upload stored something"
    );
    // Keys: none is 401, a read key is 403.
    let (status, _) = stack
        .deliver(
            &upload_path("9", ""),
            &[("content-type", "application/xml")],
            report(2, &[]),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let read = format!("Bearer {}", keys::READ);
    let (status, _) = stack
        .deliver(
            &upload_path("9", ""),
            &[("authorization", &read)],
            report(2, &[]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn writes_grow_with_failing_and_tracked_tests_not_with_tests() {
    let stack = TestStack::new().await;
    let (status, body) = upload(
        &stack,
        "1",
        "?commit=c1&branch=main",
        &report(2000, &[3, 500, 1999]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["tests"].as_u64(), body["failed"].as_u64()),
        (Some(2000), Some(3))
    );
    let items = stack.items().await;
    let kinds: Vec<String> = items.iter().map(|item| text(item, "entity")).collect();
    // The upload, three test states and the set of tracked ids: nothing per passing test.
    assert_eq!(items.len(), 5, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "test_state").count(), 3);

    // A later all-green run updates the three tracked tests only.
    stack.clients.stats.reset();
    let (status, body) = upload(&stack, "2", "?commit=c2&branch=main", &report(2000, &[])).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let calls = stack.clients.stats.snapshot();
    let writes: u64 = calls
        .iter()
        .filter(|(op, _)| {
            [
                "PutItem",
                "UpdateItem",
                "TransactWriteItems",
                "BatchWriteItem",
                "DeleteItem",
            ]
            .iter()
            .any(|w| op.ends_with(w))
        })
        .map(|(_, n)| n)
        .sum();
    assert_eq!(writes, 3 + 1, "three states and the upload: {calls:?}");
    assert_eq!(stack.items().await.len(), 6);
    let (status, one) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/tests/{}", id(500)))
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (one["runs"].as_u64(), one["failures"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(one["state"], "passing");
    let history = one["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["job"], "gitlab/2");
    assert_eq!(history[0]["outcome"], "passed");
    assert_eq!(history[1]["commit"], "c1");
    assert_eq!(history[1]["branch"], "main");
    assert_eq!(history[1]["outcome"], "failed");
    // An untracked test has no page.
    let (status, _) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/tests/{}", id(7)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn flaky_by_same_commit_and_by_rerun_and_the_infrastructure_guard() {
    let stack = TestStack::new().await;
    // Monitor 1: job 1 fails case_2 on commit abc, its retry (job 2) passes on abc.
    upload(&stack, "1", "?commit=abc&branch=feature", &report(20, &[2])).await;
    assert!(tests_in(&stack, "flaky").await.is_empty());
    upload(&stack, "2", "?commit=abc&branch=feature", &report(20, &[])).await;
    let flaky = tests_in(&stack, "flaky").await;
    assert_eq!(flaky.len(), 1, "{flaky:?}");
    assert_eq!(flaky[0]["id"], id(2));
    assert_eq!(flaky[0]["flaky_evidence"], "same_commit");
    assert_eq!(flaky[0]["flake_rate"], 0.5);
    // Monitor 2: Surefire's flakyFailure.
    let surefire =
        fixture("action-junit-report/test_results/maven_surefire_flaky/surefire-report.xml");
    let (status, body) = upload(&stack, "3", "", &surefire).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["flaky"], 1);
    assert_eq!(body["flaky_tests"][0]["name"], "createWebhook");
    let flaky = tests_in(&stack, "flaky").await;
    assert_eq!(flaky.len(), 2);
    assert!(
        flaky
            .iter()
            .any(|t| t["name"] == "createWebhook" && t["flaky_evidence"] == "rerun_within_run")
    );

    // 19 of 20 fail: one infrastructure failure, no evidence against each test.
    let before = stack.items().await.len();
    let (status, body) = upload(
        &stack,
        "4",
        "?commit=def",
        &report(20, &(0..19).collect::<Vec<_>>()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["infrastructure_failure"], true);
    assert_eq!(body["failed"], 19);
    assert_eq!(
        stack.items().await.len(),
        before + 1,
        "only the upload is stored"
    );
    let failing = tests_in(&stack, "failing").await;
    assert!(failing.is_empty(), "{failing:?}");
    let (_, report_body) = stack
        .get(&format!("/api/v1/jobs/gitlab/{REPO_PATH}/4/reports"))
        .await;
    assert_eq!(report_body["infrastructure_failures"], 1);

    // The repo analysis carries the per-test figures.
    let (status, _) = stack
        .post_build(&json!({"build_id": "b1", "repo": REPO, "branch": "main", "status": "success"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, analysis) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/analysis"))
        .await;
    assert_eq!(status, StatusCode::OK, "{analysis}");
    let tests = &analysis["tests"];
    assert_eq!(tests["flaky"], 2, "{tests}");
    assert_eq!(tests["top_flaky_tests"].as_array().map(Vec::len), Some(2));
    assert_eq!(tests["top_failing_tests"][0]["id"], id(2));
    // case_2's failed run (0.5 s) was a flake, and so was the Surefire run (0.683 s).
    let lost = tests["time_lost_to_flaky_failures_seconds"]
        .as_f64()
        .unwrap();
    assert!((lost - 1.183).abs() < 1e-6, "{lost}");
}

#[tokio::test]
async fn quarantine_put_list_and_lift() {
    let stack = TestStack::new().await;
    upload(&stack, "1", "?commit=a1&branch=main", &report(5, &[1])).await;
    let path = format!("/api/v1/repos/{REPO_PATH}/quarantine/{}", id(1));
    let request = json!({"reason": "races on the payment mock", "owner": "team-cart", "expires_at": "2099-01-01T00:00:00Z"});
    let (status, _, body) = stack
        .call(Method::PUT, &path, Some(keys::READ), Some(&request))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, body) = stack
        .call(
            Method::PUT,
            &path,
            Some(keys::ADMIN),
            Some(&json!({"owner": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("reason"));
    let (status, _, body) = stack
        .call(Method::PUT, &path, Some(keys::ADMIN), Some(&request))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "quarantined");
    assert_eq!(body["quarantine"]["owner"], "team-cart");

    // A test no report has shown yet, named by suite and name.
    let fresh = test_id("shop.PaymentTest", "refunds");
    let (status, _, body) = stack
        .call(
            Method::PUT,
            &format!("/api/v1/repos/{REPO_PATH}/quarantine/{fresh}"),
            Some(keys::ADMIN),
            Some(&json!({"reason": "r", "owner": "o"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, body) = stack
        .call(
            Method::PUT,
            &format!("/api/v1/repos/{REPO_PATH}/quarantine/{fresh}"),
            Some(keys::ADMIN),
            Some(&json!({"reason": "r", "owner": "o", "suite": "shop.PaymentTest", "name": "refunds"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, list) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/quarantine"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 2);
    let response = stack
        .app
        .clone()
        .oneshot_text(&format!(
            "/api/v1/repos/{REPO_PATH}/quarantine?format=text&line=qualified"
        ))
        .await;
    assert_eq!(response, "shop.CartTest.case_1\nshop.PaymentTest.refunds\n");

    // Results are still recorded while quarantined: a pass of the newly tracked test counts.
    let mut xml = report(5, &[]);
    xml.splice(
        xml.len() - "</testsuite>\n".len()..xml.len() - "</testsuite>\n".len(),
        b"<testcase classname=\"shop.PaymentTest\" name=\"refunds\"/>"
            .iter()
            .copied(),
    );
    let (status, body) = upload(&stack, "2", "?commit=a2&branch=main", &xml).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, payment) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/tests/{fresh}"))
        .await;
    assert_eq!(payment["runs"], 1);
    assert_eq!(payment["state"], "quarantined");
    let quarantined = tests_in(&stack, "quarantined").await;
    assert_eq!(quarantined.len(), 2);

    let (status, _, body) = stack
        .call(Method::DELETE, &path, Some(keys::ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["quarantine"], Value::Null);
    let (status, _, _) = stack
        .call(Method::DELETE, &path, Some(keys::ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(tests_in(&stack, "quarantined").await.len(), 1);
    let (_, one) = stack
        .get(&format!("/api/v1/repos/{REPO_PATH}/tests/{}", id(1)))
        .await;
    assert_eq!(one["runs"], 2, "history kept across the quarantine: {one}");
}

#[tokio::test]
async fn numeric_project_ids_need_a_webhook_or_a_repo() {
    let stack = TestStack::new().await;
    let xml = report(3, &[0]);
    let key = format!("Bearer {}", keys::INGEST);
    let headers = [
        ("authorization", key.as_str()),
        ("content-type", "text/xml"),
    ];
    let (status, body) = stack
        .deliver(
            "/api/v1/jobs/gitlab/4242/55/reports/junit",
            &headers,
            xml.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"].as_str().unwrap().contains("?repo="));
    let (status, body) = stack
        .deliver(
            &format!("/api/v1/jobs/gitlab/4242/55/reports/junit?repo={REPO}"),
            &headers,
            xml,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["job_key"], format!("gitlab/{REPO}/55"));
    assert_eq!(tests_in(&stack, "failing").await.len(), 1);
}

trait TextGet {
    async fn oneshot_text(self, path: &str) -> String;
}

impl TextGet for axum::Router {
    async fn oneshot_text(self, path: &str) -> String {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let request = Request::builder()
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", keys::READ))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = self.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

/// GitLab's parsed test report of pipeline 31 (the documented JSON shape): the suite of job
/// `test-build` with a failure, and a suite no job of the hook is named after.
const GITLAB_TEST_REPORT: &str = r#"{
  "total_time": 4, "total_count": 4, "success_count": 3, "failed_count": 1, "skipped_count": 0, "error_count": 0,
  "test_suites": [
    {"name": "test-build", "total_time": 3, "total_count": 3, "success_count": 2, "failed_count": 1,
     "skipped_count": 0, "error_count": 0, "suite_error": null,
     "test_cases": [
       {"status": "success", "name": "builds", "classname": "build_spec", "execution_time": 1, "system_output": null, "stack_trace": null},
       {"status": "failed", "name": "links", "classname": "build_spec", "execution_time": 2,
        "system_output": "Failure/Error: expect(link).to be_ok", "stack_trace": null},
       {"status": "success", "name": "packs", "classname": "build_spec", "execution_time": 0.5, "system_output": null, "stack_trace": null}
     ]},
    {"name": "lint", "total_count": 1, "suite_error": null,
     "test_cases": [{"status": "success", "name": "rubocop", "classname": "lint", "execution_time": 1}]}
  ]
}"#;

async fn gitlab_with_test_report(
    fetch: bool,
) -> (TestStack, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().route(
        "/api/v4/projects/{project}/pipelines/{pipeline}/test_report",
        axum::routing::get(
            move |headers: http::HeaderMap,
                  axum::extract::Path((project, pipeline)): axum::extract::Path<(
                String,
                String,
            )>| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let authorised = headers
                        .get("private-token")
                        .is_some_and(|t| t == "gitlab-api-token");
                    if !authorised || project != "1" || pipeline != "31" {
                        return (StatusCode::NOT_FOUND, String::from("{}"));
                    }
                    (StatusCode::OK, GITLAB_TEST_REPORT.to_string())
                }
            },
        ),
    );
    let port = buildlore_tests::fake_server::serve(router).await;
    let stack = TestStack::with_config(move |config| {
        config.providers.gitlab_base = format!("http://127.0.0.1:{port}/").parse().expect("url");
        config.providers.gitlab_token = Some("gitlab-api-token".into());
        config.test_reports.fetch_from_gitlab = fetch;
    })
    .await;
    (stack, hits)
}

#[tokio::test]
async fn a_finished_gitlab_pipeline_brings_its_test_report_once() {
    use std::sync::atomic::Ordering;
    let hook = fixtures::bytes("webhooks/gitlab/pipeline_hook.json");
    let (stack, hits) = gitlab_with_test_report(true).await;
    let (status, body) = stack.gitlab_hook("Pipeline Hook", &hook).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // The suite lands under the job it is named after, with the pipeline's commit.
    let (status, report) = stack
        .get("/api/v1/jobs/gitlab/gitlab-org%2Fgitlab-test/378/reports")
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["tests"].as_u64(), report["failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(report["failed_tests"][0]["name"], "links");
    assert_eq!(
        report["failed_tests"][0]["message"],
        "Failure/Error: expect(link).to be_ok"
    );
    let (status, lint) = stack
        .get("/api/v1/jobs/gitlab/gitlab-org%2Fgitlab-test/pipeline-31-lint/reports")
        .await;
    assert_eq!(status, StatusCode::OK, "{lint}");
    assert_eq!(lint["tests"], 1);
    let (_, failing) = stack
        .get("/api/v1/repos/gitlab-org%2Fgitlab-test/tests?state=failing")
        .await;
    assert_eq!(failing["tests"][0]["last_job"], "gitlab/378", "{failing}");
    // A second delivery of the finished pipeline does not fetch again.
    let (status, _) = stack.gitlab_hook("Pipeline Hook", &hook).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Off by default: nothing is fetched.
    let (quiet, quiet_hits) = gitlab_with_test_report(false).await;
    let (status, _) = quiet.gitlab_hook("Pipeline Hook", &hook).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(quiet_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_analysis_names_the_reports_failed_tests_and_says_when_all_are_known_noise() {
    let stack = TestStack::with_analysis_queue().await;
    let log = "$ mvn test\n[ERROR] Tests run: 5, Failures: 1\n[ERROR] BUILD FAILURE\nThe command \"mvn test\" exited with 1.\n";
    let analyse = |job: &str| json!({"projectId": REPO, "jobId": job, "log": log});
    // Job 1: case_1 fails and nothing is known about it yet.
    upload(&stack, "1", "?commit=a1&branch=main", &report(5, &[1])).await;
    let (status, first) = stack
        .post_json("/api/ai/analyse", keys::ADMIN, &analyse("1"))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        first["failed_tests"],
        json!(["shop.CartTest.case_1"]),
        "{first}"
    );
    assert_eq!(first["test_report"]["only_known_noise"], false);
    assert!(
        !first["analysis"]
            .as_str()
            .unwrap()
            .contains("**Test report:**")
    );

    // case_1 is quarantined; job 2 fails on it alone: the analysis and the failure say so.
    let path = format!("/api/v1/repos/{REPO_PATH}/quarantine/{}", id(1));
    let (status, _, body) = stack
        .call(
            Method::PUT,
            &path,
            Some(keys::ADMIN),
            Some(&json!({"reason": "races on the payment mock", "owner": "team-cart"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    upload(&stack, "2", "?commit=a2&branch=main", &report(5, &[1])).await;
    let (status, second) = stack
        .post_json("/api/ai/analyse", keys::ADMIN, &analyse("2"))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["test_report"]["only_known_noise"], true, "{second}");
    assert_eq!(
        second["test_report"]["quarantined"],
        json!(["shop.CartTest.case_1"])
    );
    assert!(
        second["analysis"]
            .as_str()
            .unwrap()
            .contains("already known as flaky or quarantined")
    );
    let (_, failures) = stack
        .get(&format!("/api/v1/failures?repo={REPO}&since=1d"))
        .await;
    assert_eq!(
        failures["failures"][0]["only_known_noise"], true,
        "{failures}"
    );
}
