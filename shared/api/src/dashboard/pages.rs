//! The pages' HTML: the frame every page shares and each page's skeleton. The data comes from
//! the API (the same routes every client uses) through the page's module.

use super::assets;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The pages a signed-in viewer can open; the name is also the page's module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Pipeline,
    Job,
    Failures,
    Repo,
}

impl Page {
    pub fn name(self) -> &'static str {
        match self {
            Page::Overview => "overview",
            Page::Pipeline => "pipeline",
            Page::Job => "job",
            Page::Failures => "failures",
            Page::Repo => "repo",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Pipeline => "Pipeline",
            Page::Job => "Job",
            Page::Failures => "Failures",
            Page::Repo => "Repository",
        }
    }

    fn skeleton(self) -> &'static str {
        match self {
            Page::Overview => OVERVIEW,
            Page::Pipeline => PIPELINE,
            Page::Job => JOB,
            Page::Failures => FAILURES,
            Page::Repo => REPO,
        }
    }
}

fn head(title: &str, module: Option<&str>) -> String {
    let script = module
        .map(|name| {
            format!(
                r#"<script type="module" src="{}"></script>"#,
                assets::url(&format!("{name}.js"))
            )
        })
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · buildlore</title>
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{css}">
{script}
</head>
"#,
        title = escape(title),
        icon = assets::url("favicon.svg"),
        css = assets::url("app.css"),
    )
}

/// A signed-in page: the shared header and navigation, then the page's skeleton.
pub fn signed_in(page: Page, admin: bool) -> String {
    let current = |which: Page| {
        if which == page {
            r#" aria-current="page""#
        } else {
            ""
        }
    };
    format!(
        r##"{head}<body data-page="{name}" data-settings="{settings}" data-admin="{admin}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/"><img src="{icon}" alt="" width="24" height="24"> buildlore</a>
  <nav aria-label="Main">
    <a href="/"{overview}>Overview</a>
    <a href="/failures"{failures}>Failures</a>
  </nav>
  <span class="who">{scope}</span>
  <form method="post" action="/session/end" class="signout"><button type="submit" class="quiet">Sign out</button></form>
</header>
<main id="main" tabindex="-1">
{skeleton}
</main>
<noscript><p class="notice">This page needs JavaScript to load its data; the API answers the same questions as JSON.</p></noscript>
</body>
</html>
"##,
        head = head(page.title(), Some(page.name())),
        name = page.name(),
        icon = assets::url("favicon.svg"),
        overview = current(Page::Overview),
        failures = current(Page::Failures),
        scope = if admin { "admin" } else { "read-only" },
        skeleton = page.skeleton(),
        settings = service_keeps_settings(),
        admin = admin,
    )
}

/// Whether this build serves `/api/settings` (gitlab-summary's stored window and group): the
/// overview keeps its choices there when it does, else in the browser, and never asks a route
/// that is not there.
fn service_keeps_settings() -> bool {
    crate::routes::table::table()
        .iter()
        .any(|route| route.verb == crate::routes::table::Verb::Get && route.path == "/api/settings")
}

/// The sign-in form, with what went wrong last time.
pub fn sign_in(error: Option<&str>, next: &str) -> String {
    let error = error
        .map(|message| {
            format!(
                r#"<p class="error" role="alert" id="signin-error">{}</p>"#,
                escape(message)
            )
        })
        .unwrap_or_default();
    format!(
        r#"{head}<body data-page="signin" class="signin-page">
<main id="main" class="signin">
  <h1><img src="{icon}" alt="" width="40" height="40"> buildlore</h1>
  <p>CI build knowledge: how healthy each project is, what is failing, and why.</p>
  <form method="post" action="/session" class="card">
    <label for="key">API key <span class="hint">(read or admin scope)</span></label>
    <input id="key" name="key" type="password" autocomplete="current-password" required autofocus{invalid}>
    <input type="hidden" name="next" value="{next}">
    {error}
    <button type="submit">Sign in</button>
    <p class="hint">Signing in starts a session of 12 hours in this browser. The cookie holds a signed session, never the key.</p>
  </form>
</main>
</body>
</html>
"#,
        head = head("Sign in", None),
        icon = assets::url("favicon.svg"),
        next = escape(next),
        invalid = if error.is_empty() {
            ""
        } else {
            r#" aria-invalid="true" aria-describedby="signin-error""#
        },
    )
}

const OVERVIEW: &str = r#"<div class="titlebar">
  <h1>Overview</h1>
  <span id="live" class="live" role="status" aria-live="polite" data-state="connecting"><span class="dot" aria-hidden="true"></span><span class="text">Connecting…</span></span>
</div>
<form id="filters" class="filters" aria-label="Filters">
  <label>Window
    <select name="since">
      <option value="1d">last day</option>
      <option value="7d">last 7 days</option>
      <option value="30d">last 30 days</option>
    </select>
  </label>
  <label>Group
    <input name="group" type="text" list="groups" placeholder="all groups" autocomplete="off" spellcheck="false">
    <datalist id="groups"></datalist>
  </label>
  <button type="submit">Apply</button>
  <span id="updated" class="hint"></span>
</form>
<section id="totals" class="totals" aria-label="Overall figures"><p class="loading">Loading…</p></section>
<section id="projects" aria-label="Projects"></section>"#;

const PIPELINE: &str = r#"<nav class="crumbs" aria-label="Breadcrumb" id="crumbs"><a href="/">Overview</a></nav>
<div id="pipeline"><p class="loading">Loading…</p></div>"#;

const JOB: &str = r#"<nav class="crumbs" aria-label="Breadcrumb" id="crumbs"><a href="/">Overview</a></nav>
<div id="job-head"><p class="loading">Loading…</p></div>
<div class="job-layout">
  <section class="log-panel" aria-label="Log">
    <div class="log-tools" id="log-tools"></div>
    <div id="log" class="log"><p class="loading">Loading the log…</p></div>
  </section>
  <aside class="side" aria-label="Analysis">
    <section id="analysis" class="card"><h2>Analysis</h2><p class="loading">Loading…</p></section>
    <section id="followup" class="card" hidden></section>
    <section id="tests" class="card" hidden></section>
  </aside>
</div>"#;

const FAILURES: &str = r#"<div class="titlebar"><h1>Recurring failures</h1></div>
<form id="repo-pick" class="filters" aria-label="Repository">
  <label>Repository <input name="repo" type="text" list="repos" required placeholder="group/project" spellcheck="false" autocomplete="off"><datalist id="repos"></datalist></label>
  <label>Window
    <select name="since"><option value="7d">last 7 days</option><option value="30d">last 30 days</option><option value="90d">last 90 days</option></select>
  </label>
  <button type="submit">Show</button>
</form>
<div id="failures"><p class="loading">Loading…</p></div>"#;

const REPO: &str = r#"<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Overview</a></nav>
<div class="titlebar"><h1 id="repo-title">Repository</h1>
  <form id="repo-window" class="filters inline" aria-label="Window">
    <label>Window <select name="since"><option value="7d">last 7 days</option><option value="30d">last 30 days</option><option value="90d">last 90 days</option></select></label>
  </form>
</div>
<div id="repo"><p class="loading">Loading…</p></div>"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let page = sign_in(Some("<script>"), "/\"><script>");
        assert!(!page.contains("<script>"));
    }

    #[test]
    fn every_page_loads_its_module_from_the_versioned_assets() {
        for page in [
            Page::Overview,
            Page::Pipeline,
            Page::Job,
            Page::Failures,
            Page::Repo,
        ] {
            let html = signed_in(page, false);
            let module = assets::url(&format!("{}.js", page.name()));
            assert!(html.contains(&module), "{}", page.name());
            assert!(assets::find(&format!("{}.js", page.name())).is_some());
        }
    }
}
