//! The one table of routes: method, path, who may call it, which function serves it, the
//! handler and a summary. Each function's router, the scope check in front of every handler
//! and `GET /api/openapi.json` are all built from it, so a route cannot exist without a scope
//! or a document entry.

use super::webhooks;
use super::{actions, analyze, events, health, ingest, logs, query, settings, test_reports, trace};
use crate::auth::Scope;
use crate::dashboard;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, version, this document, the dashboard's assets and sign-in.
    Public,
    /// A dashboard page: anyone may ask; without a session it shows the sign-in form.
    Page,
    Ingest,
    Read,
    /// A read key, or an ingest key (the handler decides which the request needs).
    ReadOrIngest,
    Admin,
    /// GitLab's `X-Gitlab-Token` or GitHub's `X-Hub-Signature-256`, checked by the handler
    /// against the deployment's webhook secrets.
    Webhook,
}

impl Access {
    /// The key scopes that may call, tried in order; empty when no key is asked for.
    fn scopes(self) -> &'static [Scope] {
        match self {
            Access::Public | Access::Page | Access::Webhook => &[],
            Access::Ingest => &[Scope::Ingest],
            Access::Read => &[Scope::Read],
            Access::ReadOrIngest => &[Scope::Read, Scope::Ingest],
            Access::Admin => &[Scope::Admin],
        }
    }
}

/// The Lambda functions that serve HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Ingest,
    Query,
    Trace,
    Analyze,
    Events,
}

impl Function {
    pub const ALL: &'static [Function] = &[
        Function::Ingest,
        Function::Query,
        Function::Trace,
        Function::Analyze,
        Function::Events,
    ];

    /// Its resource name in `template.yaml`.
    pub fn template_name(self) -> &'static str {
        match self {
            Function::Ingest => "IngestFunction",
            Function::Query => "QueryFunction",
            Function::Trace => "TraceFunction",
            Function::Analyze => "AnalyzeFunction",
            Function::Events => "EventsFunction",
        }
    }
}

/// Which functions serve a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedBy {
    /// Health and version: every function answers them.
    Every,
    Only(Function),
}

impl ServedBy {
    pub fn includes(self, function: Function) -> bool {
        match self {
            ServedBy::Every => true,
            ServedBy::Only(only) => only == function,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Verb {
    /// Lower case, as OpenAPI writes it.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Put => MethodFilter::PUT,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// One route: what the document says of it, and its handler.
pub struct Route {
    pub verb: Verb,
    /// In the router's syntax (`{name}`, `{*rest}` for a parameter that spans segments).
    pub path: &'static str,
    pub access: Access,
    pub served_by: ServedBy,
    pub summary: &'static str,
    handler: MethodRouter<AppState>,
}

impl Route {
    /// The path as OpenAPI writes it (a catch-all is a plain parameter there).
    pub fn documented_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

fn route<H, T>(
    verb: Verb,
    path: &'static str,
    access: Access,
    served_by: ServedBy,
    handler: H,
    summary: &'static str,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    Route {
        verb,
        path,
        access,
        served_by,
        summary,
        handler: on(verb.filter(), handler),
    }
}

/// Every route.
pub fn table() -> Vec<Route> {
    use Access::*;
    use Function as F;
    use ServedBy::{Every, Only};
    use Verb::*;
    vec![
        route(
            Get,
            "/api/health",
            Public,
            Every,
            health::health,
            "Liveness",
        ),
        route(
            Get,
            "/api/version",
            Public,
            Every,
            health::version,
            "Version, git commit and build date",
        ),
        route(
            Get,
            "/api/openapi.json",
            Public,
            Every,
            health::openapi,
            "This document",
        ),
        // Ingest: builds, webhooks, logs, traces, test reports.
        route(
            Post,
            "/api/v1/builds",
            Ingest,
            Only(F::Ingest),
            ingest::ingest_build,
            "Record one build (Leliel contract)",
        ),
        route(
            Post,
            "/api/v1/builds/batch",
            Ingest,
            Only(F::Ingest),
            ingest::ingest_batch,
            "Record up to 100 builds, answered per record",
        ),
        route(
            Post,
            "/webhooks/gitlab",
            Webhook,
            Only(F::Ingest),
            webhooks::gitlab_webhook,
            "GitLab Pipeline Hook, Job Hook, Build Hook",
        ),
        route(
            Post,
            "/webhooks/github",
            Webhook,
            Only(F::Ingest),
            webhooks::github_webhook,
            "GitHub workflow_run, workflow_job, check_run, check_suite, status, ping",
        ),
        route(
            Post,
            "/api/ingest/log",
            Ingest,
            Only(F::Ingest),
            logs::ingest_log,
            "Push a job's log: the Exlogare JSON, or the log as text/plain with the fields as query parameters; a failure queues one analysis",
        ),
        route(
            Patch,
            "/api/v1/jobs/{provider}/{project}/{job_id}/trace",
            Ingest,
            Only(F::Ingest),
            logs::append_trace,
            "Append the next part of a job's log (GitLab runner semantics, Content-Range)",
        ),
        route(
            Get,
            "/api/v1/jobs/{provider}/{project}/{job_id}/trace",
            Read,
            Only(F::Ingest),
            logs::read_trace,
            "The stored log bytes (offset, limit)",
        ),
        route(
            Post,
            "/api/v1/jobs/{provider}/{project}/{job_id}/reports/junit",
            Ingest,
            Only(F::Ingest),
            test_reports::upload_junit,
            "Upload one JUnit XML report of a job (application/xml, gzip allowed; commit, branch, pipeline_id, repo); several uploads merge",
        ),
        route(
            Put,
            "/api/v1/repos/{repo}/quarantine/{test_id}",
            Admin,
            Only(F::Ingest),
            test_reports::quarantine,
            "Quarantine a test (reason, owner, optional expires_at)",
        ),
        route(
            Delete,
            "/api/v1/repos/{repo}/quarantine/{test_id}",
            Admin,
            Only(F::Ingest),
            test_reports::lift,
            "Lift a test's quarantine",
        ),
        // Query: builds, summaries, details, repo figures, groups, tests, the dashboard.
        route(
            Get,
            "/api/v1/builds",
            Read,
            Only(F::Query),
            query::list_builds,
            "Builds of a repo, newest first (repo, branch, status, since, limit, cursor)",
        ),
        route(
            Get,
            "/api/v1/builds/{build_id}",
            Read,
            Only(F::Query),
            query::get_build_by_query,
            "One build; repo as a query parameter",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/builds/{build_id}",
            Read,
            Only(F::Query),
            query::get_build_by_path,
            "One build; repo URL-encoded in the path",
        ),
        route(
            Get,
            "/api/pipelines/summary",
            Read,
            Only(F::Query),
            query::pipeline_summary,
            "Per-project and overall health over a window (since, project, group)",
        ),
        route(
            Get,
            "/api/pipelines/{project_id}/details/{pipeline_id}",
            Read,
            Only(F::Query),
            query::pipeline_details,
            "One pipeline with its user, commit and jobs",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/analysis",
            Read,
            Only(F::Query),
            query::repo_analysis,
            "Trend, failures per branch, durations, MTTR, red branches, flaky jobs, top failures",
        ),
        route(
            Get,
            "/api/avatar",
            Read,
            Only(F::Query),
            query::avatar,
            "A user's avatar (url=) from the GitLab host or the allowed avatar hosts: images only, at most 1 MB, no redirects",
        ),
        route(
            Get,
            "/api/groups/parent/{parent_id}",
            Read,
            Only(F::Query),
            query::groups_of_parent,
            "Subgroups by numeric parent id: not known without GitLab's groups API (404 saying so)",
        ),
        route(
            Get,
            "/api/groups/{*group}",
            Read,
            Only(F::Query),
            query::group_or_subgroups,
            "A group (by path; ids are null) with the projects seen under it in 30 days; /subgroups after the path lists its subgroups",
        ),
        route(
            Get,
            "/api/v1/jobs/{provider}/{project}/{job_id}/reports",
            Read,
            Only(F::Query),
            test_reports::job_report,
            "A job's test totals over all its uploads, with the failing and flaky tests",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/tests",
            Read,
            Only(F::Query),
            test_reports::list_tests,
            "A repo's tracked tests (state=flaky|failing|quarantined|passing)",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/tests/{test_id}",
            Read,
            Only(F::Query),
            test_reports::one_test,
            "One test with its recent history (job, commit, branch, outcome)",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/quarantine",
            Read,
            Only(F::Query),
            test_reports::quarantine_list,
            "Quarantined tests as JSON, or one per line with format=text (line=name|qualified|id)",
        ),
        route(
            Get,
            "/",
            Page,
            Only(F::Query),
            dashboard::overview,
            "Dashboard: every project's health",
        ),
        route(
            Get,
            "/pipeline",
            Page,
            Only(F::Query),
            dashboard::pipeline,
            "Dashboard: one pipeline's jobs by stage",
        ),
        route(
            Get,
            "/job",
            Page,
            Only(F::Query),
            dashboard::job,
            "Dashboard: a job's log beside its analysis",
        ),
        route(
            Get,
            "/failures",
            Page,
            Only(F::Query),
            dashboard::failures,
            "Dashboard: recurring failures",
        ),
        route(
            Get,
            "/repo",
            Page,
            Only(F::Query),
            dashboard::repo,
            "Dashboard: a repo's trends, flaky jobs and tests",
        ),
        route(
            Post,
            "/session",
            Public,
            Only(F::Query),
            dashboard::sign_in,
            "Dashboard sign-in: a read or admin key (form field `key`) starts a session cookie",
        ),
        route(
            Post,
            "/session/end",
            Public,
            Only(F::Query),
            dashboard::sign_out,
            "Dashboard sign-out",
        ),
        route(
            Get,
            "/assets/{version}/{name}",
            Public,
            Only(F::Query),
            dashboard::asset,
            "The dashboard's scripts, styles and icon (content-hashed, cached for a year)",
        ),
        // Trace: logs fetched from the providers.
        route(
            Get,
            "/api/jobtrace",
            Read,
            Only(F::Trace),
            trace::job_trace,
            "A job's log, stored or fetched from GitLab/GitHub (projectId or provider=github&repo, jobId, offset, limit, tail, clean, format=raw)",
        ),
        // Acting on GitLab and GitHub, with the audit list (the function that holds the
        // provider tokens).
        route(
            Post,
            "/api/v1/jobs/{provider}/{project}/{job_id}/retry",
            Admin,
            Only(F::Trace),
            actions::retry_job,
            "Retry a job on GitLab (a new job) or GitHub (a new attempt); recorded in the audit list",
        ),
        route(
            Post,
            "/api/v1/jobs/{provider}/{project}/{job_id}/cancel",
            Admin,
            Only(F::Trace),
            actions::cancel_job,
            "Cancel a running GitLab job (GitHub cannot cancel one job); recorded in the audit list",
        ),
        route(
            Post,
            "/api/v1/pipelines/{provider}/{project}/{pipeline_id}/retry",
            Admin,
            Only(F::Trace),
            actions::retry_pipeline,
            "Retry a pipeline's (workflow run's) failed jobs; recorded in the audit list",
        ),
        route(
            Post,
            "/api/v1/pipelines/{provider}/{project}/{pipeline_id}/cancel",
            Admin,
            Only(F::Trace),
            actions::cancel_pipeline,
            "Cancel a pipeline (workflow run); recorded in the audit list",
        ),
        route(
            Get,
            "/api/v1/admin/actions",
            Admin,
            Only(F::Trace),
            actions::list_actions,
            "Every action taken on GitLab and GitHub, newest first: who (key id or auto-retry), what, when, the provider's answer (limit, before)",
        ),
        // Events: the live summary stream.
        route(
            Get,
            "/api/events/pipelines",
            Read,
            Only(F::Events),
            events::pipeline_events,
            "Server-Sent Events: pipeline-update, heartbeat",
        ),
        // Analyze: analyses, conversations, failures, settings.
        route(
            Post,
            "/api/ai/analyse",
            ReadOrIngest,
            Only(F::Analyze),
            analyze::analyse,
            "Root-cause analysis of a failed job: cached (200) or queued (202); a `log` in the body needs the ingest scope",
        ),
        route(
            Get,
            "/api/ai/cache",
            Read,
            Only(F::Analyze),
            analyze::cached_analysis,
            "A job's stored analysis with its conversation",
        ),
        route(
            Delete,
            "/api/ai/cache",
            Admin,
            Only(F::Analyze),
            analyze::forget_analysis,
            "Forget a job's analysis",
        ),
        route(
            Post,
            "/api/ai/followup",
            Read,
            Only(F::Analyze),
            analyze::followup,
            "Ask a question about an analysis (with Bedrock: queued for the worker, 202)",
        ),
        route(
            Get,
            "/api/ai/analyzed",
            Read,
            Only(F::Analyze),
            analyze::analyzed,
            "A project's analyses, newest first",
        ),
        route(
            Get,
            "/api/ai/history",
            Read,
            Only(F::Analyze),
            analyze::history,
            "Every analysis, newest first, paged (page, pageSize)",
        ),
        route(
            Get,
            "/api/ai/system-prompt",
            Read,
            Only(F::Analyze),
            analyze::get_system_prompt,
            "The system prompt and its version",
        ),
        route(
            Put,
            "/api/ai/system-prompt",
            Admin,
            Only(F::Analyze),
            analyze::put_system_prompt,
            "Store the next version of the system prompt",
        ),
        route(
            Get,
            "/api/v1/failures",
            Read,
            Only(F::Analyze),
            analyze::failures,
            "Recurring failures of a repo (repo, since)",
        ),
        route(
            Post,
            "/api/v1/admin/backfill",
            Admin,
            Only(F::Analyze),
            actions::start_backfill,
            "Read a project's (GitLab: or a group's, subgroups included; GitHub: a repo's) pipelines and jobs of a window from the provider's API into the records webhooks make ({provider, project|group|repo, since}); 202 with its id",
        ),
        route(
            Get,
            "/api/v1/admin/backfill/{backfill_id}",
            Admin,
            Only(F::Analyze),
            actions::backfill_progress,
            "A backfill's progress: projects, pages, pipelines and jobs recorded, errors, steps pending",
        ),
        route(
            Get,
            "/api/v1/admin/notifications",
            Admin,
            Only(F::Analyze),
            actions::read_notification_targets,
            "Where notifications go (scheme and host only, whether signed)",
        ),
        route(
            Put,
            "/api/v1/admin/notifications",
            Admin,
            Only(F::Analyze),
            actions::replace_notification_targets,
            "Set the notification targets: {targets: [{url (https), format: slack|json, secret?}]}",
        ),
        route(
            Get,
            "/api/v1/repos/{repo}/settings",
            Read,
            Only(F::Analyze),
            actions::read_repo_settings,
            "A repository's opt-ins: merge_request_comments, auto_retry, auto_retry_daily_cap (all off by default)",
        ),
        route(
            Put,
            "/api/v1/repos/{repo}/settings",
            Admin,
            Only(F::Analyze),
            actions::change_repo_settings,
            "Change a repository's opt-ins (the fields given; the rest keep their value)",
        ),
        route(
            Get,
            "/api/settings",
            Read,
            Only(F::Analyze),
            settings::read_settings,
            "The dashboard defaults: group, since (window) and gitlabUrl",
        ),
        route(
            Post,
            "/api/settings",
            Admin,
            Only(F::Analyze),
            settings::change_settings,
            "Change the default group and window ({group?, since?}) used when a summary or stream request names none",
        ),
    ]
}

/// The router of the routes `functions` serve, each behind its scope check.
pub fn router(functions: &[Function], state: &AppState) -> Router<AppState> {
    table()
        .into_iter()
        .filter(|route| {
            functions
                .iter()
                .any(|&function| route.served_by.includes(function))
        })
        .fold(Router::new(), |router, route| {
            let access = route.access;
            let handler = if access.scopes().is_empty() {
                route.handler
            } else {
                route.handler.route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    move |state: State<AppState>, request: Request, next: Next| {
                        require_key(access, state, request, next)
                    },
                ))
            };
            // Routes of one path with different methods merge into one.
            router.route(route.path, handler)
        })
}

/// Lets a request through to its handler when its key (or session) has one of the route's
/// scopes, with the [`crate::auth::Caller`] in its extensions; answers 401/403 otherwise.
async fn require_key(
    access: Access,
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let keys = &state.config.keys;
    let mut refusal = None;
    for &scope in access.scopes() {
        match keys.authorize(request.headers(), scope) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                return next.run(request).await;
            }
            // The first scope's refusal says what the route asks for.
            Err(refused) => {
                refusal.get_or_insert(refused);
            }
        }
    }
    match refusal {
        Some(refused) => refused.into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn no_route_is_listed_twice_and_every_keyed_route_names_a_scope() {
        let table = table();
        let mut seen = BTreeSet::new();
        for route in &table {
            assert!(
                seen.insert((route.verb.name(), route.path)),
                "{} {} is listed twice",
                route.verb.name(),
                route.path
            );
            assert!(!route.summary.is_empty(), "{} has no summary", route.path);
            if route.path.starts_with("/api/")
                && !matches!(
                    route.path,
                    "/api/health" | "/api/version" | "/api/openapi.json"
                )
            {
                assert!(
                    !route.access.scopes().is_empty(),
                    "{} {} is an API route without a key scope",
                    route.verb.name(),
                    route.path
                );
            }
        }
        assert!(table.len() >= 40, "{}", table.len());
    }
}
