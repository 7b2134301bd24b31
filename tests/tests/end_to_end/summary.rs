//! Pipeline summaries from the counters, over webhooks and builds alike.

use buildlore_tests::TestStack;
use chrono::{Duration, Utc};
use http::StatusCode;
use serde_json::{Value, json};

fn iso(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339()
}

fn gitlab_time(at: chrono::DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

async fn seed(stack: &TestStack) {
    let now = Utc::now();
    for (id, status, duration) in [
        ("a1", "success", Some(60_000)),
        ("a2", "failed", Some(120_000)),
        ("a3", "running", None),
    ] {
        let (code, body) = stack
            .post_build(&json!({"build_id": id, "repo": "sum/alpha", "branch": "main", "status": status,
                                "duration_ms": duration, "timestamp": iso(now - Duration::minutes(60) + Duration::seconds(id[1..].parse::<i64>().unwrap()))}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let created = now - Duration::hours(2);
    let hook = json!({
        "object_kind": "pipeline",
        "object_attributes": {"id": 77, "ref": "main", "sha": "abc", "source": "push", "status": "success",
            "created_at": gitlab_time(created), "finished_at": gitlab_time(created + Duration::seconds(300)), "duration": 300},
        "project": {"id": 1234, "path_with_namespace": "sum/beta", "web_url": "https://gitlab.example.com/sum/beta"},
        "builds": [],
    });
    let (code, body) = stack
        .gitlab_hook("Pipeline Hook", &serde_json::to_vec(&hook).unwrap())
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = stack
        .post_build(
            &json!({"build_id": "g1", "repo": "other/gamma", "branch": "main", "status": "success",
                            "duration_ms": 30_000, "timestamp": iso(now - Duration::days(3))}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
}

fn project<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["projects"]
        .as_array()
        .and_then(|projects| projects.iter().find(|p| p["project_name"] == name))
        .unwrap_or_else(|| panic!("{name} missing from {summary}"))
}

#[tokio::test]
async fn summary_counts_every_run_once_per_window_and_scope() {
    let stack = TestStack::new().await;
    seed(&stack).await;

    let (status, summary) = stack.get("/api/pipelines/summary?since=2d").await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        summary["projects"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
    let alpha = project(&summary, "sum/alpha");
    assert_eq!(alpha["project_id"], "sum/alpha");
    assert_eq!(alpha["total_pipelines"], 3);
    assert_eq!(alpha["successful"], 1);
    assert_eq!(alpha["failed"], 1);
    assert_eq!(alpha["running"], 1);
    assert_eq!(alpha["total_duration"], 180.0);
    assert_eq!(alpha["success_rate"], 50.0);
    let recent: Vec<&str> = alpha["recent_pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(recent, ["a3", "a2", "a1"]);
    let beta = project(&summary, "sum/beta");
    assert_eq!(
        beta["project_id"], 1234,
        "a GitLab project's id is a number"
    );
    assert_eq!(beta["total_pipelines"], 1);
    assert_eq!(beta["successful"], 1);
    assert_eq!(beta["total_duration"], 300.0);
    assert_eq!(beta["success_rate"], 100.0);
    assert_eq!(beta["recent_pipelines"][0]["kind"], "pipeline");
    assert_eq!(beta["recent_pipelines"][0]["id"], "77");
    assert_eq!(
        beta["recent_pipelines"][0]["url"],
        "https://gitlab.example.com/sum/beta/-/pipelines/77"
    );
    assert_eq!(summary["summary"]["total_pipelines"], 4);
    assert_eq!(summary["summary"]["successful"], 2);
    assert_eq!(summary["summary"]["failed"], 1);
    assert_eq!(summary["summary"]["running"], 1);
    assert_eq!(summary["summary"]["average_duration"], 160.0);
    assert_eq!(summary["summary"]["overall_success_rate"], 66.7);

    let (_, week) = stack.get("/api/pipelines/summary?since=7d").await;
    assert_eq!(week["summary"]["total_pipelines"], 5);
    assert_eq!(project(&week, "other/gamma")["total_duration"], 30.0);
    let (_, group) = stack.get("/api/pipelines/summary?since=7d&group=sum").await;
    assert_eq!(group["summary"]["total_pipelines"], 4);
    let (_, one) = stack
        .get("/api/pipelines/summary?since=7d&project=sum/beta")
        .await;
    assert_eq!(one["projects"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["summary"]["total_pipelines"], 1);
    let (status, nobody) = stack
        .get("/api/pipelines/summary?project=nobody/here")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(nobody["projects"], json!([]));
    assert_eq!(nobody["summary"]["total_pipelines"], 0);
    assert_eq!(nobody["summary"]["overall_success_rate"], Value::Null);

    for bad in [
        "since=bogus",
        "since=1000d",
        "since=-1d",
        "group=a//b",
        "project=%3Cscript%3E",
    ] {
        let (status, body) = stack.get(&format!("/api/pipelines/summary?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // GitLab's numeric project id names the project; an unknown one gives an empty summary.
    let (_, by_id) = stack
        .get("/api/pipelines/summary?since=7d&project=1234")
        .await;
    assert_eq!(
        by_id["projects"].as_array().map(Vec::len),
        Some(1),
        "{by_id}"
    );
    assert_eq!(by_id["projects"][0]["project_name"], "sum/beta");
    let (_, unknown) = stack
        .get("/api/pipelines/summary?since=7d&project=999")
        .await;
    assert_eq!(unknown["projects"], json!([]));
    // `since` takes an RFC 3339 time too.
    let since = (Utc::now() - Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, by_time) = stack
        .get(&format!("/api/pipelines/summary?since={since}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{by_time}");
    assert_eq!(by_time["summary"]["total_pipelines"], 4);
}

#[tokio::test]
async fn recent_runs_stay_inside_the_window_and_settings_give_the_defaults() {
    let stack = TestStack::new().await;
    let now = Utc::now();
    for (id, days_ago) in [("old", 30), ("new", 0)] {
        let (code, body) = stack
            .post_build(&json!({"build_id": id, "repo": "win/app", "branch": "main", "status": "success",
                                "timestamp": iso(now - Duration::days(days_ago) - Duration::minutes(1))}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (_, week) = stack.get("/api/pipelines/summary?since=7d").await;
    let recent = &project(&week, "win/app")["recent_pipelines"];
    assert_eq!(recent.as_array().map(Vec::len), Some(1), "{recent}");
    assert_eq!(recent[0]["id"], "new");

    // The defaults: 7 days and every group, until an administrator changes them.
    let (_, settings) = stack.get("/api/settings").await;
    assert_eq!(settings["since"], "7d");
    assert_eq!(settings["group"], "");
    assert!(settings["gitlabUrl"].is_string());
    let (status, _, _) = stack
        .call(
            http::Method::POST,
            "/api/settings",
            Some(buildlore_tests::keys::READ),
            Some(&json!({"since": "30d"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, changed) = stack
        .call(
            http::Method::POST,
            "/api/settings",
            Some(buildlore_tests::keys::ADMIN),
            Some(&json!({"since": "30d", "group": "win"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed,
        json!({"success": true, "group": "win", "since": "30d"})
    );
    let (_, month) = stack.get("/api/pipelines/summary").await;
    assert_eq!(month["summary"]["total_pipelines"], 2, "{month}");
    // `group=` given empty is every group, whatever the default.
    let (code, body) = stack
        .post_build(&json!({"build_id": "elsewhere", "repo": "other/app", "branch": "main", "status": "success"}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (_, grouped) = stack.get("/api/pipelines/summary").await;
    assert_eq!(grouped["summary"]["total_pipelines"], 2, "{grouped}");
    let (_, everything) = stack.get("/api/pipelines/summary?group=").await;
    assert_eq!(everything["summary"]["total_pipelines"], 3, "{everything}");
    let (status, _, _) = stack
        .call(
            http::Method::POST,
            "/api/settings",
            Some(buildlore_tests::keys::ADMIN),
            Some(&json!({"since": "forever"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The repo's kept recent runs (what the summary reads) and the same from the history's index
/// (what it read before runs were kept), newest first, as `id status` pairs.
async fn kept_and_history(stack: &TestStack, repo: &str) -> (Vec<String>, Vec<String>) {
    use buildlore_core::summary::{RECENT_RUNS, SummarySource};
    let repo = buildlore_core::RepoPath::parse(repo).unwrap();
    let show = |runs: Vec<buildlore_core::summary::RecentRun>| {
        runs.into_iter()
            .map(|run| format!("{} {}", run.id, run.status.as_str()))
            .collect::<Vec<_>>()
    };
    let mut kept = stack
        .state
        .store
        .kept_recent_runs(std::slice::from_ref(&repo))
        .await
        .unwrap();
    let history = stack
        .state
        .store
        .recent_runs(&repo, RECENT_RUNS)
        .await
        .unwrap();
    (
        show(kept.remove(&repo).expect("runs kept for the repo")),
        show(history),
    )
}

fn gitlab_pipeline(
    id: u64,
    status: &str,
    created: chrono::DateTime<Utc>,
    updated: chrono::DateTime<Utc>,
) -> Vec<u8> {
    let finished = (status != "running").then(|| gitlab_time(updated));
    serde_json::to_vec(&json!({
        "object_kind": "pipeline",
        "object_attributes": {"id": id, "ref": "main", "sha": "abc", "source": "push", "status": status,
            "created_at": gitlab_time(created), "updated_at": gitlab_time(updated),
            "finished_at": finished, "duration": 60},
        "project": {"id": 4321, "path_with_namespace": "kept/order", "web_url": "https://gitlab.example.com/kept/order"},
        "builds": [],
    }))
    .unwrap()
}

#[tokio::test]
async fn kept_recent_runs_hold_the_latest_state_of_the_newest_runs_whatever_the_delivery_order() {
    let stack = TestStack::new().await;
    let base = Utc::now() - Duration::hours(3);
    // Seven pipelines, delivered newest first, each finishing before its `running` hook
    // arrives (late): the stale `running` must not bring a finished pipeline back.
    for id in (1..=7u64).rev() {
        let created = base + Duration::minutes(id as i64 * 10);
        let finished = created + Duration::minutes(1);
        let status = if id % 3 == 0 { "failed" } else { "success" };
        let (code, body) = stack
            .gitlab_hook(
                "Pipeline Hook",
                &gitlab_pipeline(id, status, created, finished),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let (code, body) = stack
            .gitlab_hook(
                "Pipeline Hook",
                &gitlab_pipeline(id, "running", created, created),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    // A pipeline still running, then finishing: the later state replaces the kept one.
    let created = base + Duration::minutes(80);
    for (status, updated) in [
        ("running", created),
        ("failed", created + Duration::minutes(2)),
    ] {
        let (code, body) = stack
            .gitlab_hook(
                "Pipeline Hook",
                &gitlab_pipeline(8, status, created, updated),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    let (kept, history) = kept_and_history(&stack, "kept/order").await;
    assert_eq!(
        kept,
        [
            "8 FAILURE",
            "7 SUCCESS",
            "6 FAILURE",
            "5 SUCCESS",
            "4 SUCCESS"
        ]
    );
    assert_eq!(kept, history, "the kept runs are the history's newest");
    let (_, summary) = stack.get("/api/pipelines/summary?since=1d").await;
    let order = project(&summary, "kept/order");
    let shown: Vec<&Value> = order["recent_pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(shown.len(), 5, "{order}");
    assert_eq!(shown[0]["id"], "8");
    assert_eq!(shown[0]["status"], "FAILURE");
    assert_eq!(order["project_id"], 4321);
}

#[tokio::test]
async fn kept_recent_runs_survive_concurrent_writers() {
    let stack = TestStack::new().await;
    let now = Utc::now();
    // 24 builds of one repo, each reported running and then finished, all at once: writers
    // race for the repo's one kept item.
    let reports: Vec<Value> = (0..24)
        .flat_map(|n| {
            let at = iso(now - Duration::minutes(60 - n));
            ["running", if n % 4 == 0 { "failed" } else { "success" }]
                .into_iter()
                .map(move |status| {
                    json!({"build_id": format!("c{n:02}"), "repo": "kept/race", "branch": "main",
                           "status": status, "timestamp": at})
                })
        })
        .collect();
    use futures_util::StreamExt;
    let stack_ref = &stack;
    let codes: Vec<StatusCode> = futures_util::stream::iter(reports)
        .map(|report| async move { stack_ref.post_build(&report).await.0 })
        .buffer_unordered(12)
        .collect()
        .await;
    // A `running` that lost to its build's finish is refused as stale; nothing else fails.
    assert!(
        codes
            .iter()
            .all(|code| code.is_success() || *code == StatusCode::CONFLICT),
        "{codes:?}"
    );
    let (kept, history) = kept_and_history(&stack, "kept/race").await;
    assert_eq!(
        kept,
        [
            "c23 SUCCESS",
            "c22 SUCCESS",
            "c21 SUCCESS",
            "c20 FAILURE",
            "c19 SUCCESS"
        ]
    );
    assert_eq!(kept, history);
}

#[tokio::test]
async fn kept_recent_runs_respect_the_window_and_runs_recorded_before_they_were_kept() {
    let stack = TestStack::new().await;
    let now = Utc::now();
    // A May build recorded last still never shows under `since=7d`.
    for (id, days_ago) in [("w1", 0), ("w2", 1), ("may", 40)] {
        let (code, body) = stack
            .post_build(&json!({"build_id": id, "repo": "kept/window", "branch": "main", "status": "success",
                                "timestamp": iso(now - Duration::days(days_ago) - Duration::minutes(5))}))
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let recent_ids = |summary: &Value| -> Vec<String> {
        project(summary, "kept/window")["recent_pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| run["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, week) = stack.get("/api/pipelines/summary?since=7d").await;
    assert_eq!(recent_ids(&week), ["w1", "w2"]);
    let (_, longer) = stack.get("/api/pipelines/summary?since=60d").await;
    assert_eq!(recent_ids(&longer), ["w1", "w2", "may"]);

    // A repo recorded before runs were kept (no kept item): the summary reads its history,
    // and its next write starts the kept runs from that history.
    stack
        .clients
        .dynamodb
        .delete_item()
        .table_name(&stack.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("REPO#kept/window".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("RECENT_RUNS".into()),
        )
        .send()
        .await
        .unwrap();
    let (_, week_before) = stack.get("/api/pipelines/summary?since=7d").await;
    assert_eq!(week_before["projects"], week["projects"]);
    let (code, body) = stack
        .post_build(
            &json!({"build_id": "w3", "repo": "kept/window", "branch": "main", "status": "running",
                            "timestamp": iso(now - Duration::days(3))}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (kept, history) = kept_and_history(&stack, "kept/window").await;
    assert_eq!(
        kept,
        ["w1 SUCCESS", "w2 SUCCESS", "w3 RUNNING", "may SUCCESS"]
    );
    assert_eq!(kept, history);
    let (_, week) = stack.get("/api/pipelines/summary?since=7d").await;
    assert_eq!(recent_ids(&week), ["w1", "w2", "w3"]);
}
