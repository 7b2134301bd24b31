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
