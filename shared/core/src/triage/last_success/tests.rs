//! The triage next to the last green run, on small handmade pairs: each test shows one rule
//! at work, and fails without it.

use crate::triage::{LastSuccess, Triage, triage, triage_with_last_success};

/// A job's log: the same set-up as every run, then `body`, then the failing step's end.
fn run(body: &[String], verdict: &str) -> String {
    let mut log = String::from("$ ./setup.sh\n");
    for module in 0..30 {
        log.push_str(&format!("fetched module-{module} in 0.{module}s\n"));
    }
    log.push_str("$ ./build.sh\n");
    for line in body {
        log.push_str(line);
        log.push('\n');
    }
    log.push_str(verdict);
    log.push('\n');
    log
}

fn lines(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} {i}")).collect()
}

fn compared(failed: &str, green: &str) -> Triage {
    triage_with_last_success(failed.as_bytes(), &LastSuccess::from_log(green.as_bytes()))
}

fn shown(triage: &Triage, lines: impl IntoIterator<Item = usize>) -> bool {
    lines.into_iter().all(|line| triage.shows(line))
}

fn hidden(triage: &Triage, mut lines: impl Iterator<Item = usize>) -> bool {
    !lines.any(|line| triage.shows(line))
}

const FAILED: &str = "The command \"./build.sh\" exited with 1.";
const PASSED: &str = "The command \"./build.sh\" exited with 0.";

#[test]
fn evidence_the_green_run_printed_too_is_not_evidence() {
    // Both runs warn of an error loudly, early in the step; only the failed run ends with
    // an assertion nobody labelled an error.
    let mut green =
        vec!["[WARNING] Error injecting: plugin descriptor not found (Error code 7)".to_string()];
    green.extend(lines("compiling unit", 60));
    let mut failed = green.clone();
    failed.extend(lines("checking shard", 40));
    failed.push("value mismatch: got 4, want 3".into());
    let (failed, green) = (run(&failed, FAILED), run(&green, PASSED));
    // The warning is line 33.
    assert!(
        triage(failed.as_bytes()).shows(33),
        "alone, the loud warning is shown"
    );
    let with_green = compared(&failed, &green);
    assert!(!with_green.shows(33), "{:?}", with_green.excerpt);
    let note = with_green.last_success.expect("a green run was given");
    assert!(note.used && note.evidence_dropped >= 1, "{note:?}");
    assert!(
        !with_green
            .key_lines
            .iter()
            .any(|line| line.contains("injecting")),
        "{:?}",
        with_green.key_lines
    );
}

#[test]
fn the_new_lines_above_the_failure_are_shown_however_many() {
    // A report of 35 lines without a single error word, right above the failure: more than
    // the 24 last lines a step's tail shows.
    let common = lines("compiling unit", 50);
    let mut failed = common.clone();
    failed.extend((0..35).map(|i| format!("  mismatch in row {i}: left {i} right {}", i + 1)));
    let (failed, green) = (run(&failed, FAILED), run(&common, PASSED));
    // Set-up 32 lines, 50 common, the report at 83-117, the failure at 118.
    let alone = triage(failed.as_bytes());
    assert!(!shown(&alone, 83..=117), "{:?}", alone.excerpt);
    let with_green = compared(&failed, &green);
    assert!(shown(&with_green, 83..=118), "{:?}", with_green.excerpt);
    assert!(!with_green.shows(80), "{:?}", with_green.excerpt);
}

#[test]
fn a_few_lines_both_runs_print_do_not_split_the_report_from_its_verdict() {
    // The tool prints its banner between its report and its verdict in every run.
    let banner = [
        "------------------------------------------------",
        "BUILD FAILURE",
        "------------------------------------------------",
        "Total time: 12.3 s",
        "------------------------------------------------",
    ];
    let mut failed = lines("compiling unit", 40);
    failed.extend(lines("  at org.example.Frame.call(Frame.java:", 10));
    failed.extend(banner.iter().map(|line| line.to_string()));
    failed.push("Failed to execute goal test: there are test failures".into());
    let mut green = lines("compiling unit", 40);
    green.extend(banner.iter().map(|line| line.to_string()));
    let (failed, green) = (run(&failed, FAILED), run(&green, PASSED));
    // The frames are lines 73-82, the banner 83-87, the goal's error 88.
    let with_green = compared(&failed, &green);
    assert!(shown(&with_green, 73..=89), "{:?}", with_green.excerpt);
}

#[test]
fn lines_both_runs_print_between_a_report_and_the_summary_are_left_out() {
    // A tool reports a failure, checks 30 more files as in every run, then sums up.
    let checked: Vec<String> = (0..30)
        .map(|i| format!("checked src/file{i}.txt: ok"))
        .collect();
    let mut failed = vec![
        "Error: cannot parse src/input.txt".to_string(),
        "    unexpected token at 3:14".into(),
        "    expected one of: key, value".into(),
    ];
    failed.extend(checked.iter().cloned());
    failed.push("31 files checked, 1 failed".into());
    failed.push("Error: the check failed".into());
    let mut green = checked.clone();
    green.push("31 files checked".into());
    let (failed, green) = (run(&failed, FAILED), run(&green, PASSED));
    // The report is lines 33-35, the files checked 36-65, the summary 66-67, the end 68.
    let with_green = compared(&failed, &green);
    assert!(shown(&with_green, 33..=35), "{:?}", with_green.excerpt);
    assert!(shown(&with_green, 66..=68), "{:?}", with_green.excerpt);
    assert!(hidden(&with_green, 40..=60), "{:?}", with_green.excerpt);
    let alone = triage(failed.as_bytes());
    assert!(
        shown(&alone, 33..=68),
        "alone, one range runs from the report to the summary"
    );
}

#[test]
fn a_green_log_of_another_job_is_not_used() {
    let failed = run(&lines("compiling unit", 60), FAILED);
    let other_job = (0..200)
        .map(|i| format!("rendering page {i} of the manual\n"))
        .collect::<String>();
    let with_other = compared(&failed, &other_job);
    let alone = triage(failed.as_bytes());
    assert_eq!(with_other.excerpt, alone.excerpt);
    let note = with_other.last_success.expect("a green run was given");
    assert!(!note.used, "{note:?}");
}

#[test]
fn without_new_lines_above_the_failure_the_tail_is_the_usual_one() {
    // A run that failed printing exactly what the green run printed (a flaky exit): the
    // last lines are shown as without the green log.
    let body = lines("compiling unit", 60);
    let (failed, green) = (run(&body, FAILED), run(&body, PASSED));
    let with_green = compared(&failed, &green);
    assert_eq!(with_green.excerpt, triage(failed.as_bytes()).excerpt);
    assert!(!with_green.excerpt.is_empty());
}

#[test]
fn what_the_comparison_tells_holds_no_secret() {
    let mut failed = lines("compiling unit", 20);
    failed.push(
        "error: push to https://ci:glpat-abcdefghijklmnopqrst@gitlab.example.com failed".into(),
    );
    let green = run(&lines("compiling unit", 20), PASSED);
    let with_green = compared(&run(&failed, FAILED), &green);
    let told = serde_json::to_string(&with_green).expect("serialises");
    assert!(!told.contains("glpat-abcdefghijklmnopqrst"), "{told}");
    assert!(told.contains("\"last_success\""), "{told}");
}
