//! The comment buildlore keeps on a merge request (GitLab) or pull request (GitHub) whose
//! pipeline failed: the failing jobs with their root cause, fix and failed tests, each linked
//! to its analysis in the dashboard; the same comment is updated on later failures and says
//! so when the pipeline passes again. A hidden marker finds the comment again.
//!
//! Everything in it comes from analysis fields that were redacted when they were made; the
//! whole body is redacted once more, mentions are defused (an LLM's `@all` must not ping a
//! GitLab instance), and it is cut to the provider's length limit. A [`CommentBody`] can only
//! be made here, so the comment port receives nothing else.

use crate::job_analysis::{AnalysisStatus, JobAnalysis};
use crate::provider_actions::Forge;
use crate::redact::redact;

/// The hidden line that marks buildlore's comment on a merge or pull request.
pub const MARKER: &str = "<!-- buildlore:pipeline-comment -->";

/// GitHub refuses comments longer than this many characters.
pub const GITHUB_MAX_CHARS: usize = 65_536;
/// GitLab refuses notes longer than this many characters.
pub const GITLAB_MAX_CHARS: usize = 1_000_000;

/// Longest root cause, fix and failing step shown per job; failed tests shown per job.
const MAX_ROOT_CAUSE_CHARS: usize = 1_000;
const MAX_FIX_CHARS: usize = 2_000;
const MAX_TESTS_SHOWN: usize = 10;
const MAX_TEST_NAME_CHARS: usize = 300;

/// A comment ready to post: redacted, with mentions defused, within the provider's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a comment the provider holds is buildlore's (found again after a lost id).
pub fn is_ours(body: &str) -> bool {
    body.contains(MARKER)
}

/// The pipeline the comment is about.
#[derive(Debug, Clone, Copy)]
pub struct CommentedPipeline<'a> {
    pub forge: Forge,
    pub pipeline_id: &'a str,
    /// The pipeline's page on the provider.
    pub url: Option<&'a str>,
    pub sha: Option<&'a str>,
    /// The dashboard's origin (`https://buildlore.example.com`); job links are
    /// `{origin}/job?provider=…&project=…&job=…&pipeline=…`, the dashboard's own shape.
    pub dashboard_origin: &'a str,
}

/// The comment for a failed pipeline, one section per analysed failing job (in the order
/// given); jobs that do not fit the provider's limit are counted at the end.
pub fn failing_comment(pipeline: &CommentedPipeline<'_>, analyses: &[JobAnalysis]) -> CommentBody {
    let limit = limit_of(pipeline.forge);
    let heading = format!(
        "{MARKER}\n### ❌ Pipeline {} failed\n\n{} failing job{} analysed by buildlore{}.\n",
        pipeline_link(pipeline),
        analyses.len(),
        if analyses.len() == 1 { "" } else { "s" },
        pipeline
            .sha
            .map(|sha| format!(" for commit `{}`", code(&short_sha(sha))))
            .unwrap_or_default(),
    );
    let footer =
        "\n---\n<sub>Updated by buildlore on each new pipeline of this merge request.</sub>\n";
    // Room for the "and N more" line, whatever N.
    let reserve = 120;
    let mut body = heading;
    let mut shown = 0;
    for analysis in analyses {
        let section = job_section(pipeline, analysis);
        if chars(&body) + chars(&section) + chars(footer) + reserve > limit {
            break;
        }
        body.push_str(&section);
        shown += 1;
    }
    if shown < analyses.len() {
        body.push_str(&format!(
            "\n…and {} more failing job{}: see the pipeline in the dashboard.\n",
            analyses.len() - shown,
            if analyses.len() - shown == 1 { "" } else { "s" }
        ));
    }
    body.push_str(footer);
    finish(body, limit)
}

/// The comment once the merge request's pipeline passes again.
pub fn passing_again_comment(pipeline: &CommentedPipeline<'_>) -> CommentBody {
    let body = format!(
        "{MARKER}\n### ✅ Pipeline {} passes again\n\nThe failures buildlore reported earlier on this merge request are fixed{}.\n",
        pipeline_link(pipeline),
        pipeline
            .sha
            .map(|sha| format!(" as of commit `{}`", code(&short_sha(sha))))
            .unwrap_or_default(),
    );
    finish(body, limit_of(pipeline.forge))
}

fn limit_of(forge: Forge) -> usize {
    match forge {
        Forge::GitLab => GITLAB_MAX_CHARS,
        Forge::GitHub => GITHUB_MAX_CHARS,
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

fn short_sha(sha: &str) -> String {
    sha.chars().take(12).collect()
}

fn pipeline_link(pipeline: &CommentedPipeline<'_>) -> String {
    let id = inline(pipeline.pipeline_id, 64);
    match pipeline.url.filter(|url| is_web_url(url)) {
        Some(url) => format!("[#{id}]({})", link_target(url)),
        None => format!("#{id}"),
    }
}

fn job_section(pipeline: &CommentedPipeline<'_>, analysis: &JobAnalysis) -> String {
    let name = analysis.job_name.as_deref().unwrap_or(&analysis.job_id);
    let mut section = format!(
        "\n#### `{}` — {}\n\n",
        code(&inline(name, 200)),
        inline(&analysis.category, 40)
    );
    if let Some(step) = &analysis.failing_step {
        section.push_str(&format!(
            "**Failing step:** `{}`\n\n",
            code(&inline(step, 200))
        ));
    }
    match (&analysis.result, analysis.status) {
        (Some(result), _) => {
            section.push_str(&format!(
                "**Root cause:** {}\n\n**Fix:** {}\n\n",
                inline(&result.root_cause, MAX_ROOT_CAUSE_CHARS),
                block(&result.fix, MAX_FIX_CHARS)
            ));
        }
        (None, AnalysisStatus::Failed) => {
            section.push_str("_The log could not be analysed; open the job for its log._\n\n");
        }
        (None, AnalysisStatus::Done) => {}
    }
    if !analysis.failed_tests.is_empty() {
        let tests: Vec<String> = analysis
            .failed_tests
            .iter()
            .take(MAX_TESTS_SHOWN)
            .map(|test| format!("`{}`", code(&inline(test, MAX_TEST_NAME_CHARS))))
            .collect();
        let more = analysis.failed_tests.len().saturating_sub(MAX_TESTS_SHOWN);
        section.push_str(&format!(
            "**Failed tests:** {}{}\n\n",
            tests.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    section.push_str(&format!(
        "[Open the analysis in buildlore]({})\n",
        link_target(&dashboard_job_url(pipeline, analysis))
    ));
    section
}

/// The dashboard's job page for an analysis, as its pages link to it.
pub fn dashboard_job_url(pipeline: &CommentedPipeline<'_>, analysis: &JobAnalysis) -> String {
    let mut url = format!(
        "{}/job?provider={}&project={}&job={}",
        pipeline.dashboard_origin.trim_end_matches('/'),
        crate::percent::encode_component(&analysis.provider),
        crate::percent::encode_component(analysis.repo.as_str()),
        crate::percent::encode_component(&analysis.job_id)
    );
    if let Some(id) = analysis.pipeline_id.as_deref() {
        url.push_str(&format!(
            "&pipeline={}",
            crate::percent::encode_component(id)
        ));
    }
    url
}

fn is_web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// A URL inside Markdown's `(…)`: no spaces or parentheses to end it early.
fn link_target(url: &str) -> String {
    url.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '(' => "%28".to_string(),
            ')' => "%29".to_string(),
            '<' => "%3C".to_string(),
            '>' => "%3E".to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// Text on one line, cut to `max` characters, with HTML and mentions defused.
fn inline(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    defuse(&cut(flat.trim(), max))
}

/// Multi-line text (a fix with commands), cut to `max` characters, HTML and mentions defused.
fn block(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    defuse(&cut(kept.trim(), max))
}

/// Inside a code span: a backtick would end it.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `<` as an entity (no HTML, no second marker, no hidden text), and `@` followed by a word
/// joiner, so `@all` or `@team` in an analysis notifies no one.
fn defuse(text: &str) -> String {
    text.replace('<', "&lt;").replace('@', "@\u{2060}")
}

/// Redacted once more, and cut at the limit on a character boundary.
fn finish(body: String, limit: usize) -> CommentBody {
    let (redacted, _) = redact(&body);
    if chars(&redacted) <= limit {
        return CommentBody(redacted);
    }
    CommentBody(cut(&redacted, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::Explanation;
    use crate::job_analysis::AnalysisSource;
    use crate::redact::Redacted;
    use crate::repo::RepoPath;

    fn analysis(job_id: &str, name: &str) -> JobAnalysis {
        JobAnalysis {
            provider: "gitlab".into(),
            repo: RepoPath::parse("group/app").unwrap(),
            job_id: job_id.into(),
            pipeline_id: Some("31".into()),
            job_name: Some(name.into()),
            branch: Some("feature".into()),
            status: AnalysisStatus::Done,
            source: AnalysisSource::Llm,
            model: None,
            fingerprint: Some("abc".into()),
            category: "test".into(),
            failed_tests: Redacted::lines(vec!["UserSpec#login".into(), "Cart`Spec".into()]),
            failing_step: None,
            excerpt: Vec::new(),
            result: Some(Explanation {
                root_cause: Redacted::new("The login test expects a 200 but gets 500"),
                explanation: Redacted::new("…"),
                fix: Redacted::new("Restore the session middleware\nthen rerun"),
                severity: "high".into(),
                confidence: 0.9,
                category: "test".into(),
                evidence_lines: Vec::new(),
            }),
            error: None,
            analysed_at: "2026-11-29T10:00:00Z".parse().unwrap(),
            reused_from: None,
            conversation: Vec::new(),
            test_report: None,
            last_success: None,
            auto_retry: None,
        }
    }

    fn pipeline(forge: Forge) -> CommentedPipeline<'static> {
        CommentedPipeline {
            forge,
            pipeline_id: "31",
            url: Some("https://gitlab.example.com/group/app/-/pipelines/31"),
            sha: Some("bcbb5ec396a2c0f828686f14fac9b80b780504f2"),
            dashboard_origin: "https://buildlore.example.com/",
        }
    }

    #[test]
    fn a_failing_comment_lists_each_job_with_cause_fix_tests_and_dashboard_link() {
        let body = failing_comment(&pipeline(Forge::GitLab), &[analysis("1234", "rspec")]);
        let text = body.as_str();
        assert!(text.starts_with(MARKER), "{text}");
        assert!(is_ours(text));
        assert!(text.contains("[#31](https://gitlab.example.com/group/app/-/pipelines/31)"));
        assert!(text.contains("`bcbb5ec396a2`"));
        assert!(text.contains("#### `rspec` — test"));
        assert!(text.contains("**Root cause:** The login test expects a 200 but gets 500"));
        assert!(text.contains("**Fix:** Restore the session middleware\nthen rerun"));
        assert!(text.contains("`UserSpec#login`, `Cart'Spec`"), "{text}");
        assert!(text.contains(
            "(https://buildlore.example.com/job?provider=gitlab&project=group%2Fapp&job=1234&pipeline=31)"
        ), "{text}");
    }

    #[test]
    fn secrets_html_and_mentions_in_analysis_text_do_not_reach_the_comment() {
        // The job name is the provider's, not a redacted analysis field: only the final pass
        // catches a token in it.
        let mut leaky = analysis("1", "deploy glpat-ABCDEFGHIJKLMNOPQRST");
        if let Some(result) = leaky.result.as_mut() {
            result.root_cause =
                Redacted::new("ping @all <!-- buildlore:pipeline-comment --> <img src=x>");
        }
        let text = failing_comment(&pipeline(Forge::GitLab), &[leaky])
            .as_str()
            .to_string();
        assert!(!text.contains("glpat-ABCDEFGHIJKLMNOPQRST"), "{text}");
        assert!(!text.contains("@all"), "{text}");
        assert_eq!(text.matches(MARKER).count(), 1, "{text}");
        assert!(!text.contains("<img"), "{text}");
    }

    #[test]
    fn a_comment_stays_within_githubs_limit_and_counts_what_it_left_out() {
        let mut analyses = Vec::new();
        for index in 0..400 {
            let mut one = analysis(&index.to_string(), &format!("job-{index}"));
            if let Some(result) = one.result.as_mut() {
                result.fix = Redacted::new(&"x".repeat(5_000));
            }
            analyses.push(one);
        }
        let text = failing_comment(&pipeline(Forge::GitHub), &analyses)
            .as_str()
            .to_string();
        assert!(text.chars().count() <= GITHUB_MAX_CHARS, "{}", text.len());
        let shown = text.matches("#### ").count();
        assert!(shown > 10 && shown < 400, "{shown}");
        assert!(text.contains(&format!("…and {} more failing jobs", 400 - shown)));
        // GitLab's limit fits them all.
        let text = failing_comment(&pipeline(Forge::GitLab), &analyses)
            .as_str()
            .to_string();
        assert_eq!(text.matches("#### ").count(), 400);
    }

    #[test]
    fn the_passing_again_variant_keeps_the_marker() {
        let text = passing_again_comment(&pipeline(Forge::GitHub))
            .as_str()
            .to_string();
        assert!(is_ours(&text));
        assert!(text.contains("passes again"));
        assert!(!text.contains("❌"));
    }

    #[test]
    fn an_analysis_that_failed_says_so_instead_of_a_cause() {
        let mut failed = analysis("9", "lint");
        failed.result = None;
        failed.status = AnalysisStatus::Failed;
        let text = failing_comment(&pipeline(Forge::GitLab), &[failed])
            .as_str()
            .to_string();
        assert!(text.contains("could not be analysed"));
        assert!(!text.contains("Root cause"));
    }
}
