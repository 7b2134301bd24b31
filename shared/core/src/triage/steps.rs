//! Failing-step detection: where steps start (`$ command`, GitHub's `##[group]Run`, GitLab's
//! and Travis's sections), which lines say a step failed (`The command "…" exited with 1.`,
//! `Process completed with exit code 1`, `ERROR: Job failed`), and which lines close a step
//! or a section, beyond which an excerpt does not run.

use super::lines::previous_line_start;
use super::text::{find_in, holds, line_at};
use super::vocabulary::FAILURE_END_MARKERS;
use aho_corasick::AhoCorasick;
use std::sync::OnceLock;

/// A line that starts a step.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub line: usize,
    pub start: usize,
    /// Where the line ends: its name is read again only for the step that failed.
    pub end: usize,
}

/// A line that says a step failed.
#[derive(Debug, Clone, Copy)]
pub(super) struct FailureEnd {
    pub line: usize,
    pub start: usize,
    /// The runner retried the command after this failure.
    pub retried: bool,
}

#[allow(
    clippy::expect_used,
    reason = "the literal lists are constants an automaton is always built from"
)]
fn failure_end_markers() -> &'static AhoCorasick {
    static MARKERS: OnceLock<AhoCorasick> = OnceLock::new();
    MARKERS.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(FAILURE_END_MARKERS)
            .expect("the markers are valid")
    })
}

/// Lines that end a failing step, with the step's exit.
pub(super) fn is_failure_end(text: &str) -> bool {
    // Fast path: most lines hold none of the markers, and one automaton pass rules them out.
    if !failure_end_markers().is_match(text) {
        return false;
    }
    let nonzero_after = |marker: &str| {
        find_in(text, marker).is_some_and(|at| {
            text[at + marker.len()..]
                .trim_start()
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() && b != b'0')
        })
    };
    (holds(text, "The command \"") && nonzero_after("exited with"))
        || text.starts_with("Done. Your build exited with") && nonzero_after("exited with")
        || nonzero_after("Process completed with exit code")
        || (text.trim_start().starts_with("\" exited with") && nonzero_after("exited with"))
        || text.starts_with("ERROR: Job failed")
        || (holds(text, "The command \"") && holds(text, "\" failed"))
        || holds(text, "No output has been received in the last")
        || holds(text, "The job exceeded the maximum time limit")
}

/// Where a failure that `text` (at `line`, starting at byte `start`) reports begins: a
/// command of several lines is echoed whole before `" exited with 1.`, and its failure starts
/// at `The command "`.
pub(super) fn failure_start(log: &[u8], text: &str, line: usize, start: usize) -> (usize, usize) {
    if text.trim_start().starts_with('"') {
        command_echo_start(log, line, start).unwrap_or((line, start))
    } else {
        (line, start)
    }
}

/// The line that opens the echo of a failed command of several lines (`The command "…`),
/// as (line, start), looking back at most 300 lines from the echo's last line.
fn command_echo_start(log: &[u8], line: usize, start: usize) -> Option<(usize, usize)> {
    let mut at = start;
    for back in 1..=300 {
        at = previous_line_start(log, at)?;
        let (_, _, text) = line_at(log, at);
        if holds(&text, "The command \"") {
            return Some((line - back, at));
        }
    }
    None
}

/// The step a line starts, by its name: a shell command, a GitHub `Run` group, a GitLab
/// section or a Travis fold.
pub(super) fn step_name(text: &str) -> Option<&str> {
    let name = if let Some(command) = text.strip_prefix("$ ") {
        command
    } else if let Some(at) = find_in(text, "##[group]Run ") {
        &text[at + "##[group]Run ".len()..]
    } else if let Some(at) = find_in(text, "section_start:") {
        // section_start:<time>:<name>[collapsed=true]\r\x1b[0K<title>
        let rest = &text[at + "section_start:".len()..];
        let name = rest.split(':').nth(1)?;
        name.split(['[', '\r']).next()?
    } else if let Some(at) = find_in(text, "travis_fold:start:") {
        &text[at + "travis_fold:start:".len()..]
    } else {
        return None;
    };
    let name = name.trim();
    (!name.is_empty()).then_some(name)
}

/// Lines that close a step or section: an excerpt does not run past them.
pub(super) fn is_boundary(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with("travis_time:end")
        || trimmed.starts_with("travis_fold:end")
        || trimmed.starts_with("travis_fold:start")
        || trimmed.starts_with("travis_time:start")
        || holds_section_marker(trimmed)
        || trimmed.starts_with("##[endgroup]")
        || trimmed.starts_with("##[group]")
        || trimmed.starts_with("$ ")
        || is_failure_end(trimmed)
}

/// Whether a line holds GitLab's `section_start:` or `section_end:`.
fn holds_section_marker(text: &str) -> bool {
    // Fast path: one prebuilt substring search instead of two searches per line.
    static SECTION: OnceLock<memchr::memmem::Finder<'static>> = OnceLock::new();
    let finder = SECTION.get_or_init(|| memchr::memmem::Finder::new("section_"));
    finder.find_iter(text.as_bytes()).any(|at| {
        let rest = &text.as_bytes()[at + "section_".len()..];
        rest.starts_with(b"end:") || rest.starts_with(b"start:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_fails_only_with_a_nonzero_exit() {
        for failed in [
            "The command \"npm test\" exited with 1.",
            "Done. Your build exited with 1.",
            "##[error]Process completed with exit code 2.",
            "ERROR: Job failed: exit code 1",
            "The command \"git clone x\" failed and exited with 128 during .",
            "No output has been received in the last 10m0s, this potentially indicates a stalled build",
        ] {
            assert!(is_failure_end(failed), "{failed}");
        }
        for passed in [
            "The command \"npm test\" exited with 0.",
            "Process completed with exit code 0.",
            "exit code is printed below",
        ] {
            assert!(!is_failure_end(passed), "{passed}");
        }
    }

    #[test]
    fn steps_are_named_by_their_command_group_or_section() {
        assert_eq!(step_name("$ npm test"), Some("npm test"));
        assert_eq!(
            step_name("2022-06-01T15:41:55Z ##[group]Run cargo test"),
            Some("cargo test")
        );
        assert_eq!(
            step_name("section_start:1650000000:build_script[collapsed=true]\r\x1b[0KBuild"),
            Some("build_script")
        );
        assert_eq!(step_name("travis_fold:start:install"), Some("install"));
        assert_eq!(step_name("plain output"), None);
        assert!(is_boundary("section_end:1650000000:build_script"));
        assert!(!is_boundary("sections_endless"));
    }
}
