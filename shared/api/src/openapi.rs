//! The OpenAPI 3.1 description of every route, served at `GET /api/openapi.json`. The table
//! below is the one list of operations; a test compares it with the routers' `.route(...)`
//! calls in both directions, so a route cannot be added or removed without it.

use crate::version::VERSION;
use serde_json::{Map, Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Ingest,
    Read,
    Admin,
    /// GitLab's `X-Gitlab-Token` or GitHub's `X-Hub-Signature-256`.
    Webhook,
}

#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

const fn op(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
) -> Operation {
    Operation {
        method,
        path,
        access,
        summary,
    }
}

pub const OPERATIONS: &[Operation] = &[
    op("get", "/api/health", Access::Public, "Liveness"),
    op(
        "get",
        "/api/version",
        Access::Public,
        "Version, git commit and build date",
    ),
    op("get", "/api/openapi.json", Access::Public, "This document"),
    op(
        "post",
        "/api/v1/builds",
        Access::Ingest,
        "Record one build (Leliel contract)",
    ),
    op(
        "post",
        "/api/v1/builds/batch",
        Access::Ingest,
        "Record up to 100 builds, answered per record",
    ),
    op(
        "get",
        "/api/v1/builds",
        Access::Read,
        "Builds of a repo, newest first (repo, branch, status, since, limit, cursor)",
    ),
    op(
        "get",
        "/api/v1/builds/{build_id}",
        Access::Read,
        "One build; repo as a query parameter",
    ),
    op(
        "get",
        "/api/v1/repos/{repo}/builds/{build_id}",
        Access::Read,
        "One build; repo URL-encoded in the path",
    ),
    op(
        "post",
        "/webhooks/gitlab",
        Access::Webhook,
        "GitLab Pipeline Hook, Job Hook, Build Hook",
    ),
    op(
        "post",
        "/webhooks/github",
        Access::Webhook,
        "GitHub workflow_run, workflow_job, check_run, check_suite, status, ping",
    ),
    op(
        "post",
        "/api/ingest/log",
        Access::Ingest,
        "Push a job's log: the Exlogare JSON, or the log as text/plain with the fields as query parameters; a failure queues one analysis",
    ),
    op(
        "patch",
        "/api/v1/jobs/{provider}/{project}/{job_id}/trace",
        Access::Ingest,
        "Append the next part of a job's log (GitLab runner semantics, Content-Range)",
    ),
    op(
        "get",
        "/api/v1/jobs/{provider}/{project}/{job_id}/trace",
        Access::Read,
        "The stored log bytes (offset, limit)",
    ),
    op(
        "get",
        "/api/pipelines/summary",
        Access::Read,
        "Per-project and overall health over a window (since, project, group)",
    ),
    op(
        "get",
        "/api/pipelines/{project_id}/details/{pipeline_id}",
        Access::Read,
        "One pipeline with its user, commit and jobs",
    ),
    op(
        "get",
        "/api/v1/repos/{repo}/analysis",
        Access::Read,
        "Trend, failures per branch, durations, MTTR, red branches, flaky jobs, top failures",
    ),
    op(
        "get",
        "/api/events/pipelines",
        Access::Read,
        "Server-Sent Events: pipeline-update, heartbeat",
    ),
    op(
        "get",
        "/api/jobtrace",
        Access::Read,
        "A job's log, stored or fetched from GitLab/GitHub (projectId or provider=github&repo, jobId, offset, limit, tail, clean, format=raw)",
    ),
    op(
        "post",
        "/api/ai/analyse",
        Access::Read,
        "Root-cause analysis of a failed job: cached (200) or queued (202)",
    ),
    op(
        "get",
        "/api/ai/cache",
        Access::Read,
        "A job's stored analysis with its conversation",
    ),
    op(
        "delete",
        "/api/ai/cache",
        Access::Admin,
        "Forget a job's analysis",
    ),
    op(
        "post",
        "/api/ai/followup",
        Access::Read,
        "Ask a question about an analysis (with Bedrock: queued for the worker, 202)",
    ),
    op(
        "get",
        "/api/ai/analyzed",
        Access::Read,
        "A project's analyses, newest first",
    ),
    op(
        "get",
        "/api/ai/history",
        Access::Read,
        "Every analysis, newest first, paged (page, pageSize)",
    ),
    op(
        "get",
        "/api/ai/system-prompt",
        Access::Read,
        "The system prompt and its version",
    ),
    op(
        "put",
        "/api/ai/system-prompt",
        Access::Admin,
        "Store the next version of the system prompt",
    ),
    op(
        "get",
        "/api/v1/failures",
        Access::Read,
        "Recurring failures of a repo (repo, since)",
    ),
    op(
        "get",
        "/api/groups/{group}",
        Access::Read,
        "A group (by path; ids are null) with the projects seen under it in 30 days; /subgroups after the path lists its subgroups",
    ),
    op(
        "get",
        "/api/groups/parent/{parent_id}",
        Access::Read,
        "Subgroups by numeric parent id: not known without GitLab's groups API (404 saying so)",
    ),
    op(
        "get",
        "/api/avatar",
        Access::Read,
        "A user's avatar (url=) from the GitLab host or the allowed avatar hosts: images only, at most 1 MB, no redirects",
    ),
    op(
        "get",
        "/api/settings",
        Access::Read,
        "The dashboard defaults: group, since (window) and gitlabUrl",
    ),
    op(
        "post",
        "/api/settings",
        Access::Admin,
        "Change the default group and window ({group?, since?}) used when a summary or stream request names none",
    ),
    op(
        "post",
        "/api/v1/jobs/{provider}/{project}/{job_id}/reports/junit",
        Access::Ingest,
        "Upload one JUnit XML report of a job (application/xml, gzip allowed; commit, branch, pipeline_id, repo); several uploads merge",
    ),
    op(
        "get",
        "/api/v1/jobs/{provider}/{project}/{job_id}/reports",
        Access::Read,
        "A job's test totals over all its uploads, with the failing and flaky tests",
    ),
    op(
        "get",
        "/api/v1/repos/{repo}/tests",
        Access::Read,
        "A repo's tracked tests (state=flaky|failing|quarantined|passing)",
    ),
    op(
        "get",
        "/api/v1/repos/{repo}/tests/{test_id}",
        Access::Read,
        "One test with its recent history (job, commit, branch, outcome)",
    ),
    op(
        "put",
        "/api/v1/repos/{repo}/quarantine/{test_id}",
        Access::Admin,
        "Quarantine a test (reason, owner, optional expires_at)",
    ),
    op(
        "delete",
        "/api/v1/repos/{repo}/quarantine/{test_id}",
        Access::Admin,
        "Lift a test's quarantine",
    ),
    op(
        "get",
        "/api/v1/repos/{repo}/quarantine",
        Access::Read,
        "Quarantined tests as JSON, or one per line with format=text (line=name|qualified|id)",
    ),
];

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

fn operation_body(operation: &Operation) -> Value {
    let (scope, security) = match operation.access {
        Access::Public => ("none", json!([])),
        Access::Ingest => ("ingest", json!([{"bearer": ["ingest"]}])),
        Access::Read => ("read", json!([{"bearer": ["read"]}])),
        Access::Admin => ("admin", json!([{"bearer": ["admin"]}])),
        Access::Webhook => (
            "webhook",
            json!([{"gitlabToken": []}, {"githubSignature": []}]),
        ),
    };
    let error = json!({"description": "An error that says what to fix",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    responses.insert("200".into(), json!({"description": "Success"}));
    responses.insert("400".into(), error.clone());
    if operation.access != Access::Public {
        responses.insert("401".into(), error.clone());
        responses.insert("403".into(), error.clone());
    }
    let mut body = json!({
        "summary": operation.summary,
        "operationId": format!("{}{}", operation.method, operation.path.replace(['/', '{', '}', '.', '-'], "_")),
        "security": security,
        "x-scope": scope,
        "responses": responses,
    });
    let parameters = path_parameters(operation.path);
    if !parameters.is_empty() {
        body["parameters"] = Value::Array(parameters);
    }
    if matches!(operation.method, "post" | "put" | "patch") {
        body["requestBody"] = json!({"required": true, "content": {"application/json": {}}});
    }
    body
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let entry = paths
            .entry(operation.path.to_string())
            .or_insert_with(|| json!({}));
        entry[operation.method] = operation_body(operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "buildlore",
            "version": VERSION.version,
            "description": "CI build knowledge: builds, pipelines, job logs and root-cause analysis.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "A key of the ingest, read or admin scope (admin may do everything)"},
                "gitlabToken": {"type": "apiKey", "in": "header", "name": "X-Gitlab-Token"},
                "githubSignature": {"type": "apiKey", "in": "header", "name": "X-Hub-Signature-256"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "statusCode", "timestamp"],
                    "properties": {
                        "error": {"type": "string"},
                        "statusCode": {"type": "integer"},
                        "timestamp": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    })
}
