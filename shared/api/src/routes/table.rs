//! The one table of routes: method, path, who may call it, which function serves it, the
//! handler and a summary. Each function's router, the scope check in front of every handler
//! and `GET /api/openapi.json` are all built from it, so a route cannot exist without a scope
//! or a document entry. The table is written once (`route_table!`) and becomes two things: the
//! routes' descriptions ([`table`], no handlers: the document and the tests read it), and one
//! set of handlers per function ([`INGEST`], [`QUERY`], …), so a function's binary links only
//! its own handlers.

use super::webhooks;
use super::{actions, analyze, events, health, ingest, logs, query, settings, test_reports, trace};
use crate::auth::Scope;
use crate::dashboard;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
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

/// One route as the document and the tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub verb: Verb,
    /// In the router's syntax (`{name}`, `{*rest}` for a parameter that spans segments).
    pub path: &'static str,
    pub access: Access,
    pub served_by: ServedBy,
    pub summary: &'static str,
}

impl Route {
    /// The path as OpenAPI writes it (a catch-all is a plain parameter there).
    pub fn documented_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

/// The routes of one function (or of every function), with their handlers.
#[derive(Clone, Copy)]
pub struct RouteSet {
    pub served_by: ServedBy,
    handlers: fn() -> Vec<(Route, MethodRouter<AppState>)>,
}

/// Writes [`ROUTES`] (descriptions only) and one [`RouteSet`] per function from one list.
macro_rules! route_table {
    ($(
        $set:ident, $served_by:expr, $handlers:ident {
            $( ($verb:ident, $path:literal, $access:ident, $handler:path, $summary:literal) )*
        }
    )*) => {
        /// Every route, described.
        const ROUTES: &[Route] = &[
            $( $( Route {
                verb: Verb::$verb,
                path: $path,
                access: Access::$access,
                served_by: $served_by,
                summary: $summary,
            }, )* )*
        ];

        $(
            fn $handlers() -> Vec<(Route, MethodRouter<AppState>)> {
                vec![ $( (
                    Route {
                        verb: Verb::$verb,
                        path: $path,
                        access: Access::$access,
                        served_by: $served_by,
                        summary: $summary,
                    },
                    on(Verb::$verb.filter(), $handler),
                ), )* ]
            }

            pub const $set: RouteSet = RouteSet {
                served_by: $served_by,
                handlers: $handlers,
            };
        )*
    };
}

route_table! {
    EVERY, ServedBy::Every, every_handlers {
        (Get, "/api/health", Public, health::health,
            "Liveness")
        (Get, "/api/version", Public, health::version,
            "Version, git commit and build date")
        (Get, "/api/openapi.json", Public, health::openapi,
            "This document")
    }
    INGEST, ServedBy::Only(Function::Ingest), ingest_handlers {
        (Post, "/api/v1/builds", Ingest, ingest::ingest_build,
            "Record one build (Leliel contract)")
        (Post, "/api/v1/builds/batch", Ingest, ingest::ingest_batch,
            "Record up to 100 builds, answered per record")
        (Post, "/webhooks/gitlab", Webhook, webhooks::gitlab_webhook,
            "GitLab Pipeline Hook, Job Hook, Build Hook")
        (Post, "/webhooks/github", Webhook, webhooks::github_webhook,
            "GitHub workflow_run, workflow_job, check_run, check_suite, status, ping")
        (Post, "/api/ingest/log", Ingest, logs::ingest_log,
            "Push a job's log: the Exlogare JSON, or the log as text/plain with the fields as query parameters; a failure queues one analysis")
        (Patch, "/api/v1/jobs/{provider}/{project}/{job_id}/trace", Ingest, logs::append_trace,
            "Append the next part of a job's log (GitLab runner semantics, Content-Range)")
        (Get, "/api/v1/jobs/{provider}/{project}/{job_id}/trace", Read, logs::read_trace,
            "The stored log bytes (offset, limit)")
        (Post, "/api/v1/jobs/{provider}/{project}/{job_id}/reports/junit", Ingest, test_reports::upload_junit,
            "Upload one JUnit XML report of a job (application/xml, gzip allowed; commit, branch, pipeline_id, repo); several uploads merge")
        (Put, "/api/v1/repos/{repo}/quarantine/{test_id}", Admin, test_reports::quarantine,
            "Quarantine a test (reason, owner, optional expires_at)")
        (Delete, "/api/v1/repos/{repo}/quarantine/{test_id}", Admin, test_reports::lift,
            "Lift a test's quarantine")
    }
    QUERY, ServedBy::Only(Function::Query), query_handlers {
        (Get, "/api/v1/builds", Read, query::list_builds,
            "Builds of a repo, newest first (repo, branch, status, since, limit, cursor)")
        (Get, "/api/v1/builds/{build_id}", Read, query::get_build_by_query,
            "One build; repo as a query parameter")
        (Get, "/api/v1/repos/{repo}/builds/{build_id}", Read, query::get_build_by_path,
            "One build; repo URL-encoded in the path")
        (Get, "/api/pipelines/summary", Read, query::pipeline_summary,
            "Per-project and overall health over a window (since, project, group)")
        (Get, "/api/pipelines/{project_id}/details/{pipeline_id}", Read, query::pipeline_details,
            "One pipeline with its user, commit and jobs")
        (Get, "/api/v1/repos/{repo}/analysis", Read, query::repo_analysis,
            "Trend, failures per branch, durations, MTTR, red branches, flaky jobs, top failures")
        (Get, "/api/avatar", Read, query::avatar,
            "A user's avatar (url=) from the GitLab host or the allowed avatar hosts: images only, at most 1 MB, no redirects")
        (Get, "/api/groups/parent/{parent_id}", Read, query::groups_of_parent,
            "Subgroups by numeric parent id: not known without GitLab's groups API (404 saying so)")
        (Get, "/api/groups/{*group}", Read, query::group_or_subgroups,
            "A group (by path; ids are null) with the projects seen under it in 30 days; /subgroups after the path lists its subgroups")
        (Get, "/api/v1/jobs/{provider}/{project}/{job_id}/reports", Read, test_reports::job_report,
            "A job's test totals over all its uploads, with the failing and flaky tests")
        (Get, "/api/v1/repos/{repo}/tests", Read, test_reports::list_tests,
            "A repo's tracked tests (state=flaky|failing|quarantined|passing)")
        (Get, "/api/v1/repos/{repo}/tests/{test_id}", Read, test_reports::one_test,
            "One test with its recent history (job, commit, branch, outcome)")
        (Get, "/api/v1/repos/{repo}/quarantine", Read, test_reports::quarantine_list,
            "Quarantined tests as JSON, or one per line with format=text (line=name|qualified|id)")
        (Get, "/", Page, dashboard::overview,
            "Dashboard: every project's health")
        (Get, "/pipeline", Page, dashboard::pipeline,
            "Dashboard: one pipeline's jobs by stage")
        (Get, "/job", Page, dashboard::job,
            "Dashboard: a job's log beside its analysis")
        (Get, "/failures", Page, dashboard::failures,
            "Dashboard: recurring failures")
        (Get, "/repo", Page, dashboard::repo,
            "Dashboard: a repo's trends, flaky jobs and tests")
        (Post, "/session", Public, dashboard::sign_in,
            "Dashboard sign-in: a read or admin key (form field `key`) starts a session cookie")
        (Post, "/session/end", Public, dashboard::sign_out,
            "Dashboard sign-out")
        (Get, "/assets/{version}/{name}", Public, dashboard::asset,
            "The dashboard's scripts, styles and icon (content-hashed, cached for a year)")
    }
    TRACE, ServedBy::Only(Function::Trace), trace_handlers {
        (Get, "/api/jobtrace", Read, trace::job_trace,
            "A job's log, stored or fetched from GitLab/GitHub (projectId or provider=github&repo, jobId, offset, limit, tail, clean, format=raw)")
        (Post, "/api/v1/jobs/{provider}/{project}/{job_id}/retry", Admin, actions::retry_job,
            "Retry a job on GitLab (a new job) or GitHub (a new attempt); recorded in the audit list")
        (Post, "/api/v1/jobs/{provider}/{project}/{job_id}/cancel", Admin, actions::cancel_job,
            "Cancel a running GitLab job (GitHub cannot cancel one job); recorded in the audit list")
        (Post, "/api/v1/pipelines/{provider}/{project}/{pipeline_id}/retry", Admin, actions::retry_pipeline,
            "Retry a pipeline's (workflow run's) failed jobs; recorded in the audit list")
        (Post, "/api/v1/pipelines/{provider}/{project}/{pipeline_id}/cancel", Admin, actions::cancel_pipeline,
            "Cancel a pipeline (workflow run); recorded in the audit list")
        (Get, "/api/v1/admin/actions", Admin, actions::list_actions,
            "Every action taken on GitLab and GitHub, newest first: who (key id or auto-retry), what, when, the provider's answer (limit, before)")
    }
    EVENTS, ServedBy::Only(Function::Events), events_handlers {
        (Get, "/api/events/pipelines", Read, events::pipeline_events,
            "Server-Sent Events: pipeline-update, heartbeat")
    }
    ANALYZE, ServedBy::Only(Function::Analyze), analyze_handlers {
        (Post, "/api/ai/analyse", ReadOrIngest, analyze::analyse,
            "Root-cause analysis of a failed job: cached (200) or queued (202); a `log` in the body needs the ingest scope")
        (Get, "/api/ai/cache", Read, analyze::cached_analysis,
            "A job's stored analysis with its conversation")
        (Delete, "/api/ai/cache", Admin, analyze::forget_analysis,
            "Forget a job's analysis")
        (Post, "/api/ai/followup", Read, analyze::followup,
            "Ask a question about an analysis (with Bedrock: queued for the worker, 202)")
        (Get, "/api/ai/analyzed", Read, analyze::analyzed,
            "A project's analyses, newest first")
        (Get, "/api/ai/history", Read, analyze::history,
            "Every analysis, newest first, paged (page, pageSize)")
        (Get, "/api/ai/system-prompt", Read, analyze::get_system_prompt,
            "The system prompt and its version")
        (Put, "/api/ai/system-prompt", Admin, analyze::put_system_prompt,
            "Store the next version of the system prompt")
        (Get, "/api/v1/failures", Read, analyze::failures,
            "Recurring failures of a repo (repo, since)")
        (Post, "/api/v1/admin/backfill", Admin, actions::start_backfill,
            "Read a project's (GitLab: or a group's, subgroups included; GitHub: a repo's) pipelines and jobs of a window from the provider's API into the records webhooks make ({provider, project|group|repo, since}); 202 with its id")
        (Get, "/api/v1/admin/backfill/{backfill_id}", Admin, actions::backfill_progress,
            "A backfill's progress: projects, pages, pipelines and jobs recorded, errors, steps pending")
        (Get, "/api/v1/admin/notifications", Admin, actions::read_notification_targets,
            "Where notifications go (scheme and host only, whether signed)")
        (Put, "/api/v1/admin/notifications", Admin, actions::replace_notification_targets,
            "Set the notification targets: {targets: [{url (https), format: slack|json, secret?}]}")
        (Get, "/api/v1/repos/{repo}/settings", Read, actions::read_repo_settings,
            "A repository's opt-ins: merge_request_comments, auto_retry, auto_retry_daily_cap (all off by default)")
        (Put, "/api/v1/repos/{repo}/settings", Admin, actions::change_repo_settings,
            "Change a repository's opt-ins (the fields given; the rest keep their value)")
        (Get, "/api/settings", Read, settings::read_settings,
            "The dashboard defaults: group, since (window) and gitlabUrl")
        (Post, "/api/settings", Admin, settings::change_settings,
            "Change the default group and window ({group?, since?}) used when a summary or stream request names none")
    }
}

/// Every function's routes, for `buildlore dev` and the tests, which serve them all at once.
pub const ALL: &[RouteSet] = &[INGEST, QUERY, TRACE, EVENTS, ANALYZE];

/// Every route, described.
pub fn table() -> &'static [Route] {
    ROUTES
}

/// The router of `sets` (and of the routes every function serves), each route behind its
/// scope check.
pub fn router(sets: &[RouteSet], state: &AppState) -> Router<AppState> {
    std::iter::once(&EVERY)
        .chain(sets)
        .flat_map(|set| (set.handlers)())
        .fold(Router::new(), |router, (route, handler)| {
            let access = route.access;
            let handler = if access.scopes().is_empty() {
                handler
            } else {
                handler.route_layer(middleware::from_fn_with_state(
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
        for route in table {
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

    #[test]
    fn the_sets_hold_every_described_route_once() {
        let handled: Vec<Route> = std::iter::once(&EVERY)
            .chain(ALL)
            .flat_map(|set| (set.handlers)())
            .map(|(route, _)| route)
            .collect();
        assert_eq!(handled, table());
        for set in std::iter::once(&EVERY).chain(ALL) {
            for (route, _) in (set.handlers)() {
                assert_eq!(route.served_by, set.served_by, "{}", route.path);
            }
        }
    }
}
