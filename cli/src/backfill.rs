//! `buildlore backfill`: asks a deployment to read history from GitLab or GitHub, then follows
//! its progress until it finishes.

use crate::dev::BoxError;
use clap::Args;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// The deployment's base URL (its API endpoint, e.g. https://abc.execute-api.eu-west-1.amazonaws.com).
    #[arg(long, env = "BUILDLORE_URL")]
    url: String,
    /// An admin key.
    #[arg(long, env = "BUILDLORE_ADMIN_KEY", hide_env_values = true)]
    key: String,
    /// gitlab or github.
    #[arg(long, default_value = "gitlab")]
    provider: String,
    /// A GitLab project path (group/app).
    #[arg(long, conflicts_with_all = ["group", "repo"])]
    project: Option<String>,
    /// A GitLab group path; its subgroups' projects are included.
    #[arg(long, conflicts_with_all = ["project", "repo"])]
    group: Option<String>,
    /// A GitHub repository (owner/name).
    #[arg(long, conflicts_with_all = ["project", "group"])]
    repo: Option<String>,
    /// How far back: 1d to 90d.
    #[arg(long, default_value = "7d")]
    since: String,
    /// Start it and print its id without following it.
    #[arg(long)]
    no_wait: bool,
}

pub async fn run(args: BackfillArgs) -> Result<(), BoxError> {
    let base = args.url.trim_end_matches('/');
    let mut body = json!({"provider": args.provider, "since": args.since});
    for (field, value) in [
        ("project", &args.project),
        ("group", &args.group),
        ("repo", &args.repo),
    ] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let answer = client
        .post(format!("{base}/api/v1/admin/backfill"))
        .bearer_auth(&args.key)
        .json(&body)
        .send()
        .await?;
    let status = answer.status();
    let started: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("the deployment answered {status}: {}", started["error"]).into());
    }
    let id = started["id"].as_str().unwrap_or_default().to_string();
    println!("backfill {id} started");
    if args.no_wait {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let progress: Value = client
            .get(format!("{base}/api/v1/admin/backfill/{id}"))
            .bearer_auth(&args.key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        println!(
            "{}: {} projects, {} pages, {} pipelines, {} jobs, {} errors, {} steps pending",
            progress["status"].as_str().unwrap_or("?"),
            progress["projects"],
            progress["pages"],
            progress["pipelines"],
            progress["jobs"],
            progress["errors"],
            progress["pending"],
        );
        if let Some(error) = progress["last_error"].as_str() {
            println!("  last error: {error}");
        }
        if progress["status"] == "finished" {
            return Ok(());
        }
    }
}
