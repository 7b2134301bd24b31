//! GitLab and GitHub webhooks end to end on the emulator, with the real payloads.

use buildlore_tests::stack::secrets;
use buildlore_tests::{TestStack, fixtures};
use http::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn gitlab_pipeline_hook_stores_the_pipeline_and_its_jobs() {
    let stack = TestStack::new().await;
    let (status, body) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "processed");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(6));

    let repo = "gitlab-org/gitlab-test";
    let pipeline = stack
        .record_json(repo, "PIPELINE#gitlab#31")
        .await
        .expect("pipeline stored");
    assert_eq!(pipeline["provider"], "gitlab");
    assert_eq!(pipeline["repo"], repo);
    assert_eq!(pipeline["project_id"], "1");
    assert_eq!(pipeline["pipeline_id"], "31");
    assert_eq!(pipeline["name"], "Pipeline for branch: master");
    assert_eq!(pipeline["ref"], "master");
    assert_eq!(pipeline["sha"], "bcbb5ec396a2c0f828686f14fac9b80b780504f2");
    assert_eq!(pipeline["source"], "merge_request_event");
    assert_eq!(pipeline["status"], "SUCCESS");
    assert_eq!(pipeline["provider_status"], "success");
    assert_eq!(pipeline["created_at"], "2016-08-12T15:23:28Z");
    assert_eq!(pipeline["started_at"], "2016-08-12T15:24:56Z");
    assert_eq!(pipeline["finished_at"], "2016-08-12T15:26:29Z");
    assert_eq!(pipeline["duration_ms"], 63_000);
    assert_eq!(
        pipeline["user"],
        json!({"id": 1, "name": "Administrator", "username": "root",
        "avatar_url": "http://www.gravatar.com/avatar/e32bd13e2add097461cb96824b7a829c?s=80&d=identicon"})
    );
    assert_eq!(
        pipeline["commit"]["id"],
        "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
    );
    assert_eq!(pipeline["commit"]["title"], "test");
    assert_eq!(pipeline["commit"]["message"], "test");
    assert_eq!(pipeline["commit"]["author_name"], "User");
    assert_eq!(
        pipeline["url"],
        "http://example.com/gitlab-org/gitlab-test/-/pipelines/31"
    );
    assert!(
        !pipeline.to_string().contains("user_email@gitlab.com"),
        "e-mail addresses are not kept"
    );

    let failed = stack
        .record_json(repo, "JOB#gitlab#378")
        .await
        .expect("job 378 stored");
    assert_eq!(failed["name"], "test-build");
    assert_eq!(failed["stage"], "test");
    assert_eq!(failed["status"], "FAILURE");
    assert_eq!(failed["pipeline_id"], "31");
    assert_eq!(failed["started_at"], "2016-08-12T15:26:12Z");
    assert_eq!(failed["finished_at"], "2016-08-12T15:26:29Z");
    assert_eq!(failed["duration_ms"], 17_000);
    assert_eq!(failed["failure_reason"], "script_failure");
    assert_eq!(
        failed["runner"],
        json!({"id": "380987", "name": "shared-runners-manager-6.gitlab.com", "tags": ["linux", "docker"]})
    );
    assert_eq!(
        failed["url"],
        "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/378"
    );
    let manual = stack
        .record_json(repo, "JOB#gitlab#380")
        .await
        .expect("job 380 stored");
    assert_eq!(manual["status"], "SKIPPED");
    assert_eq!(manual["runner"], Value::Null);
    assert_eq!(manual["failure_reason"], Value::Null);
    let waiting = stack
        .record_json(repo, "JOB#gitlab#379")
        .await
        .expect("job 379 stored");
    assert_eq!(waiting["status"], "PENDING");

    let counters = stack.counters(repo, "2016-08-12").await;
    assert_eq!(counters.get("total"), Some(&1));
    assert_eq!(counters.get("status_success"), Some(&1));
    assert_eq!(counters.get("duration_sum_ms"), Some(&63_000));
    assert_eq!(counters.get("job_total"), Some(&5));
    assert_eq!(counters.get("job_status_success"), Some(&2));
    assert_eq!(counters.get("job_status_failure"), Some(&1));
    assert_eq!(counters.get("job_status_skipped"), Some(&1));
    assert_eq!(counters.get("job_status_pending"), Some(&1));

    // The same delivery again changes nothing.
    let before = stack.items().await;
    let (status, again) = stack
        .gitlab_hook(
            "Pipeline Hook",
            &fixtures::bytes("webhooks/gitlab/pipeline_hook.json"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "unchanged"),
        "{again}"
    );
    assert_eq!(stack.items().await, before);
}

#[tokio::test]
async fn gitlab_job_hook_in_both_spellings_and_with_a_rotated_token() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes("webhooks/gitlab/job_hook.cleaned.json");
    let (status, body) = stack
        .deliver(
            "/webhooks/gitlab",
            &[
                ("x-gitlab-event", "Build Hook"),
                ("x-gitlab-token", secrets::GITLAB_PREVIOUS),
            ],
            payload.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = stack
        .record_json("gitlab-org/gitlab-test", "JOB#gitlab#1977")
        .await
        .expect("job stored, although its pipeline is unknown");
    assert_eq!(job["name"], "test");
    assert_eq!(job["stage"], "test");
    assert_eq!(job["status"], "PENDING");
    assert_eq!(job["provider_status"], "created");
    assert_eq!(job["pipeline_id"], "2366");
    assert_eq!(job["project_id"], "380");
    assert_eq!(job["ref"], "gitlab-script-trigger");
    assert_eq!(job["sha"], "2293ada6b400935a1378653304eaf6221e0fdb8f");
    assert_eq!(job["created_at"], "2021-02-23T02:41:37Z");
    assert_eq!(job["queued_duration_ms"], 1_095_589);
    assert_eq!(job["allow_failure"], false);
    assert_eq!(
        job["failure_reason"],
        Value::Null,
        "a job that has not failed has no failure reason"
    );
    assert_eq!(job["runner"]["id"], "380987");
    assert_eq!(job["runner"]["tags"], json!(["linux", "docker"]));
    let (status, _) = stack.gitlab_hook("Job Hook", &payload).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn gitlab_refuses_bad_tokens_and_invalid_json_writing_nothing() {
    let stack = TestStack::new().await;
    let payload = fixtures::bytes("webhooks/gitlab/pipeline_hook.json");
    // (headers, body, expected status, what the error says)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("x-gitlab-event", "Pipeline Hook")],
            payload.clone(),
            StatusCode::UNAUTHORIZED,
            "X-Gitlab-Token",
        ),
        (
            vec![
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-token", "wrong"),
            ],
            payload.clone(),
            StatusCode::UNAUTHORIZED,
            "does not match",
        ),
        (
            vec![("x-gitlab-token", secrets::GITLAB)],
            payload.clone(),
            StatusCode::BAD_REQUEST,
            "X-Gitlab-Event",
        ),
        (
            vec![
                ("x-gitlab-event", "Job Hook"),
                ("x-gitlab-token", secrets::GITLAB),
            ],
            fixtures::bytes("webhooks/gitlab/job_hook.verbatim.jsonc"),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            vec![
                ("x-gitlab-event", "Job Hook"),
                ("x-gitlab-token", secrets::GITLAB),
            ],
            payload.clone(),
            StatusCode::BAD_REQUEST,
            "object_kind",
        ),
        (
            vec![
                ("x-gitlab-event", "Pipeline Hook"),
                ("x-gitlab-token", secrets::GITLAB),
            ],
            payload[..payload.len() / 2].to_vec(),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
    ];
    for (headers, body, expected, says) in cases {
        let (status, answer) = stack.deliver("/webhooks/gitlab", &headers, body).await;
        assert_eq!(status, expected, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{answer} should say {says}"
        );
    }
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn unused_events_are_acknowledged_as_ignored() {
    let stack = TestStack::new().await;
    let (status, body) = stack
        .gitlab_hook("Push Hook", br#"{"object_kind": "push"}"#)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    assert!(body["reason"].as_str().unwrap().contains("Push Hook"));
    let (status, body) = stack
        .github_hook("issues", "d-1", br#"{"action": "opened"}"#)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "ignored");
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn every_github_fixture_is_accepted_and_stored() {
    let stack = TestStack::new().await;
    for (index, (event, file)) in fixtures::github_payloads().into_iter().enumerate() {
        if !file.ends_with(".json") || file.ends_with("hmac_test_vectors.json") {
            continue;
        }
        let (status, body) = stack
            .github_hook(
                &event,
                &format!("delivery-{index}"),
                &fixtures::bytes(&file),
            )
            .await;
        assert!(status == StatusCode::OK, "{file}: {status} {body}");
        let expected = if event == "ping" { "ok" } else { "processed" };
        assert_eq!(body["status"], expected, "{file}: {body}");
    }

    let run = stack
        .record_json("octo-org/octo-repo", "PIPELINE#github#289782451")
        .await
        .expect("workflow run stored");
    assert_eq!(run["status"], "SUCCESS");
    assert_eq!(run["provider_status"], "completed/success");
    assert_eq!(run["ref"], "master");
    assert_eq!(run["sha"], "3484a3fb816e0859fd6e1cea078d76385ff50625");
    assert_eq!(run["source"], "repository_dispatch");
    assert_eq!(run["attempt"], 1);
    assert_eq!(
        run["url"],
        "https://github.com/octo-org/octo-repo/actions/runs/289782451"
    );
    assert_eq!(run["commit"]["author_name"], "Matthias Fax");

    // The fixtures reuse one job id across unrelated snapshots; the one with the latest
    // event time (in_progress, 2021-09-13) wins, the older completed ones are stale.
    let job = stack
        .record_json("Codertocat/Hello-World", "JOB#github#289782451")
        .await
        .expect("workflow job stored");
    assert_eq!(job["status"], "RUNNING");
    let waiting = stack
        .record_json(
            "lineville/elastic-machines-testing",
            "JOB#github#12877621891",
        )
        .await
        .expect("waiting job stored");
    assert_eq!(waiting["status"], "PENDING");

    let (status, check) = stack
        .get("/api/v1/repos/Codertocat%2FHello-World/builds/check_run:128620228")
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["status"], "FAILURE");
    assert_eq!(check["commit"], "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    assert_eq!(check["build_type"], "check_run");
    assert_eq!(check["extra_data"]["name"], "Octocoders-linter");
    let (status, commit_status) = stack
        .get("/api/v1/builds/status:default@6113728f27ae82c7b1a177c8d03f9e96e0adf246?repo=Codertocat/Hello-World")
        .await;
    assert_eq!(status, StatusCode::OK, "{commit_status}");
    assert_eq!(commit_status["status"], "SUCCESS");
    assert_eq!(commit_status["branch"], "master");
}

#[tokio::test]
async fn github_failed_job_names_the_failing_step() {
    let stack = TestStack::new().await;
    let file = "webhooks/github/workflow_job/completed.failure.with-organization.payload.json";
    let payload = fixtures::json(file);
    let (status, body) = stack
        .github_hook("workflow_job", "f-1", &fixtures::bytes(file))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job_id = payload["workflow_job"]["id"].to_string();
    let job = stack
        .record_json("Codertocat/Hello-World", &format!("JOB#github#{job_id}"))
        .await
        .expect("job stored");
    let failing = payload["workflow_job"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["conclusion"] == "failure")
        .map(|step| step["name"].clone())
        .expect("the fixture has a failed step");
    assert_eq!(job["status"], "FAILURE");
    assert_eq!(job["name"], "linters");
    assert_eq!(job["pipeline_id"], "2202229078");
    assert_eq!(job["stage"], "CodeQL");
    assert_eq!(job["labels"], json!(["ubuntu-latest"]));
    assert_eq!(
        job["runner"],
        json!({"id": "5", "name": "GitHub Actions 5", "tags": ["ubuntu-latest"]})
    );
    assert_eq!(
        job["url"],
        "https://github.com/octo-org/octo-repo/runs/1291536064"
    );
    assert_eq!(job["failing_step"], failing);
    assert_eq!(job["duration_ms"], 198_000);
    assert_eq!(
        job["steps"].as_array().map(Vec::len),
        payload["workflow_job"]["steps"].as_array().map(Vec::len)
    );
}

#[tokio::test]
async fn github_signatures_and_deliveries() {
    let stack = TestStack::new().await;
    let file = "webhooks/github/workflow_run/completed.payload.json";
    let payload = fixtures::bytes(file);
    // A signature over a different body, a missing signature: 401, nothing written.
    let mut tampered = payload.clone();
    tampered.extend_from_slice(b" ");
    let signature =
        buildlore_core::webhooks::secret::signature_header(secrets::GITHUB.as_bytes(), &payload);
    let (status, _) = stack
        .deliver(
            "/webhooks/github",
            &[
                ("x-github-event", "workflow_run"),
                ("x-hub-signature-256", &signature),
            ],
            tampered,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = stack
        .deliver(
            "/webhooks/github",
            &[("x-github-event", "workflow_run")],
            payload.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(stack.items().await.is_empty());

    let (status, first) = stack
        .github_hook("workflow_run", "same-delivery", &payload)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["results"][0]["result"], "created");
    let before = stack.items().await;
    let (status, second) = stack
        .github_hook("workflow_run", "same-delivery", &payload)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(second["status"], "duplicate");
    assert_eq!(stack.items().await, before);
}

#[test]
fn published_hmac_vectors_verify() {
    let vectors = fixtures::json("webhooks/github/hmac_test_vectors.json");
    let vectors = vectors["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 2);
    for vector in vectors {
        let secret = vector["secret"].as_str().unwrap();
        let payload = vector["payload"].as_str().unwrap();
        let header = vector["X-Hub-Signature-256"].as_str().unwrap();
        assert_eq!(
            buildlore_core::webhooks::secret::signature_header(
                secret.as_bytes(),
                payload.as_bytes()
            ),
            header
        );
        let secrets = buildlore_core::webhooks::secret::WebhookSecrets::from_list(secret);
        assert!(
            secrets
                .verify_signature(payload.as_bytes(), Some(header.as_bytes()))
                .is_ok()
        );
        assert!(
            secrets
                .verify_signature(b"other", Some(header.as_bytes()))
                .is_err()
        );
    }
}

#[tokio::test]
async fn hostile_wrong_typed_and_huge_payloads() {
    let stack = TestStack::new().await;
    let mut pipeline = fixtures::json("webhooks/gitlab/pipeline_hook.json");

    // Wrong types: a clear 400 naming the field, nothing written.
    for (path, value, says) in [
        (
            vec!["object_attributes", "id"],
            json!(true),
            "object_attributes.id",
        ),
        (
            vec!["object_attributes", "status"],
            json!(5),
            "object_attributes.status",
        ),
        (
            vec!["object_attributes", "status"],
            json!("exploded"),
            "unknown status",
        ),
        (
            vec!["object_attributes", "created_at"],
            json!("yesterday"),
            "not a timestamp",
        ),
        (vec!["object_attributes", "duration"], json!(-3), "negative"),
        (
            vec!["project", "path_with_namespace"],
            json!("../../etc"),
            "path_with_namespace",
        ),
        (vec!["builds"], json!({"id": 1}), "builds"),
    ] {
        let mut broken = pipeline.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut broken;
        for key in parents {
            target = &mut target[*key];
        }
        target[*last] = value;
        let (status, body) = stack
            .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&broken).unwrap())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path:?}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{path:?}: {body}"
        );
    }
    let (status, body) = stack.gitlab_hook("Pipeline Hook", b"[1, 2, 3]").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = stack
        .github_hook(
            "workflow_run",
            "bad-1",
            br#"{"workflow_run": {"id": 1, "status": "done"}, "repository": {"full_name": "a/b"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        stack.items().await.is_empty(),
        "a refused delivery wrote something"
    );

    // Hostile strings are stored as text, without control characters.
    pipeline["builds"][1]["name"] =
        json!("<script>alert(1)</script>\u{0}\u{1b}[31m'; DROP TABLE builds;--");
    pipeline["commit"]["message"] = json!("line one\nline two\u{7}");
    let (status, body) = stack
        .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&pipeline).unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let job = stack
        .record_json("gitlab-org/gitlab-test", "JOB#gitlab#377")
        .await
        .unwrap();
    assert_eq!(
        job["name"],
        "<script>alert(1)</script>[31m'; DROP TABLE builds;--"
    );
    let stored = stack
        .record_json("gitlab-org/gitlab-test", "PIPELINE#gitlab#31")
        .await
        .unwrap();
    assert_eq!(stored["commit"]["message"], "line one\nline two");

    // More than the 5 MB a delivery may carry: 413.
    let huge = format!(
        r#"{{"object_kind": "pipeline", "padding": "{}"}}"#,
        "x".repeat(6 * 1024 * 1024)
    );
    let (status, body) = stack.gitlab_hook("Pipeline Hook", huge.as_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[test]
fn pruned_parsing_reads_what_full_parsing_reads() {
    use buildlore_core::webhooks::{github, gitlab};
    let now = chrono::Utc::now();
    let mut compared = 0;
    for (event, file) in [
        ("Pipeline Hook", "pipeline_hook.json"),
        ("Job Hook", "job_hook.cleaned.json"),
    ] {
        let bytes = fixtures::bytes(&format!("webhooks/gitlab/{file}"));
        let full = gitlab::parse(event, &serde_json::from_slice(&bytes).unwrap(), now).unwrap();
        assert_eq!(
            gitlab::parse_bytes(event, &bytes, now).unwrap(),
            full,
            "{file}"
        );
        compared += 1;
    }
    for (event, file) in fixtures::github_payloads() {
        if !file.ends_with(".json") || file.ends_with("hmac_test_vectors.json") {
            continue;
        }
        let bytes = fixtures::bytes(&file);
        let full = github::parse(&event, &serde_json::from_slice(&bytes).unwrap(), now).unwrap();
        assert_eq!(
            github::parse_bytes(&event, &bytes, now).unwrap(),
            full,
            "{file}"
        );
        compared += 1;
    }
    assert!(compared >= 30);
}
