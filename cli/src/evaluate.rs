//! `buildlore analyze --evaluate`: the triage measured on labelled logs.
//!
//! - LogChunks (failed Travis CI logs with the chunk that says why, labelled by hand): is the
//!   whole chunk inside the excerpt, and how long is the excerpt; on the whole set with the
//!   shipped constants, and cross-validated by repository: the constants are chosen on the
//!   other folds' repositories from a small grid and measured on the held-out fold's.
//! - Log pairs (CiDiff: a failed log, the last green log of the same job, the lines that state
//!   the error): is every error line inside the excerpt, with and without the green log.
//! - GitHub Actions logs with BugSwarm's expected failed tests: are the names right.

use crate::bench_webhooks::read_fixture;
use crate::dev::BoxError;
use buildlore_core::triage::{LastSuccess, Triage, Tuning, triage, triage_tuned};
use std::collections::BTreeMap;
use std::path::Path;

/// Folds the repositories are split into.
const FOLDS: usize = 5;
/// The targets: the share of logs whose labelled lines the excerpt holds, at a
/// median excerpt of at most so many lines.
#[derive(Debug, Clone, Copy)]
struct Targets {
    contained_percent: f64,
    median: usize,
}

const LOGCHUNKS_TARGETS: Targets = Targets {
    contained_percent: 85.0,
    median: 40,
};
const PAIRS_TARGETS: Targets = Targets {
    contained_percent: 90.0,
    median: 30,
};

/// What the evaluation prints besides its figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The logs whose labelled lines the excerpt misses.
    pub misses: bool,
    /// The whole-set figures of every setting tried in cross-validation.
    pub settings: bool,
}

pub fn evaluate(dir: &Path, options: Options) -> Result<(), BoxError> {
    let chunks = labelled_chunks(dir)?;
    evaluate_chunks(&chunks, options);
    let pairs = log_pairs(dir)?;
    evaluate_pairs(&pairs, options);
    evaluate_failed_tests(dir)
}

/// A log to triage with the lines the excerpt must hold, and the repository it is from.
struct Labelled {
    name: String,
    repo: String,
    log: Vec<u8>,
    /// The green run of the same job, for the log pairs.
    last_success: Option<LastSuccess>,
    /// 1-based line ranges, inclusive.
    expected: Vec<(usize, usize)>,
}

impl Labelled {
    fn outcome(&self, result: &Triage) -> Outcome {
        let expected_lines: usize = self.expected.iter().map(|(a, b)| b - a + 1).sum();
        let covered = self
            .expected
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter(|&line| result.shows(line))
            .count();
        Outcome {
            contained: covered == expected_lines,
            expected_lines,
            covered_lines: covered,
            excerpt_lines: result
                .excerpt
                .iter()
                .map(|r| r.end_line - r.start_line + 1)
                .sum(),
        }
    }

    /// The fewest lines an excerpt holding every expected line can have, as the triage joins
    /// ranges (those less than 8 lines apart are one).
    fn smallest_excerpt(&self) -> usize {
        const JOINED_BELOW: usize = 8;
        let mut ranges = self.expected.clone();
        ranges.sort_unstable();
        let mut joined: Vec<(usize, usize)> = Vec::new();
        for (first, last) in ranges {
            match joined.last_mut() {
                Some(range) if first <= range.1 + JOINED_BELOW => range.1 = range.1.max(last),
                _ => joined.push((first, last)),
            }
        }
        joined.iter().map(|(first, last)| last - first + 1).sum()
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    contained: bool,
    expected_lines: usize,
    covered_lines: usize,
    excerpt_lines: usize,
}

/// What a set of outcomes adds up to.
struct Figures {
    logs: usize,
    contained: usize,
    sizes: Vec<usize>,
    expected_lines: usize,
    covered_lines: usize,
    mean_recall: f64,
}

impl Figures {
    fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Figures {
        let outcomes: Vec<&Outcome> = outcomes.into_iter().collect();
        let mut sizes: Vec<usize> = outcomes.iter().map(|o| o.excerpt_lines).collect();
        sizes.sort_unstable();
        Figures {
            logs: outcomes.len(),
            contained: outcomes.iter().filter(|o| o.contained).count(),
            sizes,
            expected_lines: outcomes.iter().map(|o| o.expected_lines).sum(),
            covered_lines: outcomes.iter().map(|o| o.covered_lines).sum(),
            mean_recall: outcomes
                .iter()
                .map(|o| o.covered_lines as f64 / o.expected_lines.max(1) as f64)
                .sum::<f64>()
                / outcomes.len().max(1) as f64,
        }
    }

    fn share(&self) -> f64 {
        self.contained as f64 / self.logs.max(1) as f64 * 100.0
    }

    fn quantile(&self, q: f64) -> usize {
        if self.sizes.is_empty() {
            return 0;
        }
        self.sizes[((self.sizes.len() as f64 - 1.0) * q).round() as usize]
    }

    fn median(&self) -> usize {
        self.quantile(0.5)
    }

    fn excerpt_total(&self) -> usize {
        self.sizes.iter().sum()
    }

    fn summary(&self) -> String {
        format!(
            "{} of {} ({:.1}%), median excerpt {} lines",
            self.contained,
            self.logs,
            self.share(),
            self.median()
        )
    }

    /// Better for tuning: meets both targets first, then holds more logs, then is shorter.
    fn tuning_key(&self, targets: Targets) -> (bool, usize, std::cmp::Reverse<usize>) {
        let meets = self.share() >= targets.contained_percent && self.median() <= targets.median;
        (meets, self.contained, std::cmp::Reverse(self.median()))
    }
}

/// LogChunks: each labelled chunk located in its log (after normalising line breaks, as the
/// labels are); the few not found verbatim are counted and skipped.
fn labelled_chunks(dir: &Path) -> Result<(Vec<Labelled>, usize), BoxError> {
    let root = dir.join("logchunks");
    let labels = String::from_utf8(read_fixture(&root.join("labels.jsonl"))?)?;
    let mut logs = Vec::new();
    let mut unlocated = 0;
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let label: serde_json::Value = serde_json::from_str(line)?;
        let name = label["log"].as_str().ok_or("a label without `log`")?;
        let log = read_fixture(&root.join(name))?;
        let Some(chunk) = chunk_lines(&log, label["chunk"].as_str().unwrap_or("")) else {
            unlocated += 1;
            continue;
        };
        logs.push(Labelled {
            name: name.to_string(),
            repo: label["repo"].as_str().unwrap_or(name).to_string(),
            log,
            last_success: None,
            expected: vec![chunk],
        });
    }
    Ok((logs, unlocated))
}

/// Where the labelled chunk sits, as 1-based inclusive lines.
fn chunk_lines(log: &[u8], chunk: &str) -> Option<(usize, usize)> {
    let normal = |text: &str| text.replace("\r\n", "\n").replace('\r', "\n");
    let text = normal(&String::from_utf8_lossy(log));
    let chunk = normal(chunk);
    let chunk = chunk.trim_end_matches('\n');
    let at = text.find(chunk)?;
    let start = text[..at].matches('\n').count() + 1;
    Some((start, start + chunk.matches('\n').count()))
}

/// The grid the LogChunks constants are chosen from in cross-validation (the shipped values
/// are in it).
fn logchunks_grid() -> Vec<Tuning> {
    let mut grid = Vec::new();
    for step_tail_lines in [16, 24, 32] {
        for short_step_lines in [24, 40, 60] {
            for tail_reach_gap in [24, 40, 56] {
                for reach_over_stack_traces in [false, true] {
                    grid.push(Tuning {
                        step_tail_lines,
                        short_step_lines,
                        tail_reach_gap,
                        reach_over_stack_traces,
                        ..Tuning::default()
                    });
                }
            }
        }
    }
    grid
}

/// The grid the green-run constants are chosen from for the log pairs.
fn pairs_grid() -> Vec<Tuning> {
    let mut grid = Vec::new();
    for seen_gap in [2, 4, 6, 8, 12] {
        for block_lines_with_last_success in [5, 15, 30, 60] {
            grid.push(Tuning {
                seen_gap,
                block_lines_with_last_success,
                ..Tuning::default()
            });
        }
    }
    grid
}

fn evaluate_chunks((logs, unlocated): &(Vec<Labelled>, usize), options: Options) {
    let shipped = Tuning::default();
    let outcomes: Vec<Outcome> = logs
        .iter()
        .map(|labelled| labelled.outcome(&triage_tuned(&labelled.log, None, &shipped)))
        .collect();
    if options.misses {
        for (labelled, outcome) in logs.iter().zip(&outcomes) {
            if !outcome.contained {
                println!("miss {} chunk {:?}", labelled.name, labelled.expected);
            }
        }
    }
    let whole = Figures::of(&outcomes);
    println!(
        "LogChunks: {} labelled logs from {} repositories ({unlocated} chunks not found verbatim in their log, skipped)",
        whole.logs,
        repositories(logs).len()
    );
    println!(
        "  whole set, shipped constants: chunk inside the excerpt for {}",
        whole.summary()
    );
    println!(
        "  line recall: {:.1}% per log on average, {:.1}% of all labelled lines; line precision {:.1}%",
        whole.mean_recall * 100.0,
        whole.covered_lines as f64 / whole.expected_lines.max(1) as f64 * 100.0,
        whole.covered_lines as f64 / whole.excerpt_total().max(1) as f64 * 100.0
    );
    println!(
        "  excerpt lines: median {}, p75 {}, p90 {}, max {}",
        whole.median(),
        whole.quantile(0.75),
        whole.quantile(0.9),
        whole.sizes.last().copied().unwrap_or(0)
    );
    let held_out = cross_validate(logs, &logchunks_grid(), LOGCHUNKS_TARGETS, options.settings);
    println!(
        "  cross-validated ({FOLDS} folds by repository; constants chosen on 4 folds from {} settings, measured on the 5th): {}",
        logchunks_grid().len(),
        held_out.summary()
    );
    println!(
        "  overfit (whole set against held-out repositories): {:+.1} points of logs held, median {:+} lines",
        whole.share() - held_out.share(),
        whole.median() as i64 - held_out.median() as i64
    );
}

/// The repositories of the logs, each with its logs' indexes, sorted by name.
fn repositories(logs: &[Labelled]) -> BTreeMap<&str, Vec<usize>> {
    let mut repos: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, labelled) in logs.iter().enumerate() {
        repos.entry(&labelled.repo).or_default().push(index);
    }
    repos
}

/// The fold of each log: whole repositories go to the fold with the fewest logs so far,
/// largest repositories first (ties by name), so folds are of about one size.
fn folds(logs: &[Labelled]) -> Vec<usize> {
    let mut repos: Vec<(&str, Vec<usize>)> = repositories(logs).into_iter().collect();
    repos.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut sizes = [0usize; FOLDS];
    let mut fold_of = vec![0; logs.len()];
    for (_, members) in repos {
        let fold = (0..FOLDS).min_by_key(|&f| (sizes[f], f)).unwrap_or(0);
        sizes[fold] += members.len();
        for index in members {
            fold_of[index] = fold;
        }
    }
    fold_of
}

/// Each fold measured with the setting of `grid` that does best on the other folds (see
/// [`Figures::tuning_key`]); the held-out outcomes of all folds together.
fn cross_validate(
    logs: &[Labelled],
    grid: &[Tuning],
    targets: Targets,
    print_settings: bool,
) -> Figures {
    // Every log under every setting, once.
    let outcomes: Vec<Vec<Outcome>> = grid
        .iter()
        .map(|tuning| {
            logs.iter()
                .map(|labelled| {
                    let result =
                        triage_tuned(&labelled.log, labelled.last_success.as_ref(), tuning);
                    labelled.outcome(&result)
                })
                .collect()
        })
        .collect();
    if print_settings {
        for (tuning, outcomes) in grid.iter().zip(&outcomes) {
            println!(
                "    whole set with {}: {}",
                describe_setting(tuning),
                Figures::of(outcomes).summary()
            );
        }
    }
    let fold_of = folds(logs);
    let mut held_out = Vec::new();
    for fold in 0..FOLDS {
        let tuned_on = |outcomes: &Vec<Outcome>| {
            Figures::of(
                outcomes
                    .iter()
                    .zip(&fold_of)
                    .filter(|(_, f)| **f != fold)
                    .map(|(outcome, _)| outcome),
            )
            .tuning_key(targets)
        };
        let Some(best) = (0..grid.len()).max_by_key(|&setting| tuned_on(&outcomes[setting])) else {
            continue;
        };
        let measured: Vec<Outcome> = outcomes[best]
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f == fold)
            .map(|(outcome, _)| *outcome)
            .collect();
        println!(
            "    fold {}: {} logs held out, chosen {}: {}",
            fold + 1,
            measured.len(),
            describe_setting(&grid[best]),
            Figures::of(&measured).summary()
        );
        held_out.extend(measured);
    }
    Figures::of(&held_out)
}

fn describe_setting(tuning: &Tuning) -> String {
    format!(
        "tail {} / short step {} / reach gap {}{} / seen gap {} / block lines {} with green {}",
        tuning.step_tail_lines,
        tuning.short_step_lines,
        tuning.tail_reach_gap,
        if tuning.reach_over_stack_traces {
            " over stack traces"
        } else {
            ""
        },
        tuning.seen_gap,
        tuning.block_lines,
        tuning.block_lines_with_last_success
    )
}

/// The log pairs: `fail.log`, `pass.log` (read from `.gz` where only that is stored) and
/// `groundtruth` per folder; the project is the folder's name without its build number.
fn log_pairs(dir: &Path) -> Result<Vec<Labelled>, BoxError> {
    let root = dir.join("log-pairs");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut pairs = Vec::new();
    for name in names {
        let folder = root.join(&name);
        let groundtruth = String::from_utf8(read_fixture(&folder.join("groundtruth"))?)?;
        let expected = error_lines(&groundtruth);
        if expected.is_empty() {
            continue;
        }
        let project = name
            .trim_start_matches("breakages__")
            .rsplit_once('_')
            .map_or(name.as_str(), |(project, _)| project)
            .to_string();
        pairs.push(Labelled {
            log: read_fixture(&folder.join("fail.log"))?,
            last_success: Some(LastSuccess::from_log(&read_fixture(
                &folder.join("pass.log"),
            )?)),
            name,
            repo: project,
            expected,
        });
    }
    Ok(pairs)
}

/// The `E a-b` (or `E a`) lines of a CiDiff ground truth, after its first line (the format).
fn error_lines(groundtruth: &str) -> Vec<(usize, usize)> {
    groundtruth
        .lines()
        .skip(1)
        .filter_map(|line| {
            let range = line.trim().strip_prefix("E ")?.trim();
            let (first, last) = range.split_once('-').unwrap_or((range, range));
            Some((first.trim().parse().ok()?, last.trim().parse().ok()?))
        })
        .collect()
}

fn evaluate_pairs(pairs: &[Labelled], options: Options) {
    let shipped = Tuning::default();
    let without: Vec<Outcome> = pairs
        .iter()
        .map(|pair| pair.outcome(&triage_tuned(&pair.log, None, &shipped)))
        .collect();
    let with: Vec<(Outcome, Triage)> = pairs
        .iter()
        .map(|pair| {
            let result = triage_tuned(&pair.log, pair.last_success.as_ref(), &shipped);
            (pair.outcome(&result), result)
        })
        .collect();
    let mut worse = Vec::new();
    let mut not_used = 0;
    for ((pair, alone), (compared, result)) in pairs.iter().zip(&without).zip(&with) {
        if alone.contained && !compared.contained {
            worse.push(pair.name.as_str());
        }
        not_used += usize::from(result.last_success.is_some_and(|use_| !use_.used));
        if options.misses && !compared.contained {
            println!(
                "miss {} (with the green log) error lines {:?} excerpt {:?}",
                pair.name,
                pair.expected,
                result
                    .excerpt
                    .iter()
                    .map(|r| (r.start_line, r.end_line))
                    .collect::<Vec<_>>()
            );
        }
    }
    let smallest = Figures {
        sizes: {
            let mut sizes: Vec<usize> = pairs.iter().map(Labelled::smallest_excerpt).collect();
            sizes.sort_unstable();
            sizes
        },
        ..Figures::of(&without)
    };
    let projects = repositories(pairs).len();
    println!(
        "Log pairs: {} failed logs with the last green log of the same job, from {projects} projects",
        pairs.len()
    );
    println!(
        "  without the green log: every error line inside the excerpt for {}",
        Figures::of(&without).summary()
    );
    let compared: Vec<Outcome> = with.iter().map(|(outcome, _)| *outcome).collect();
    println!(
        "  with the green log:    every error line inside the excerpt for {}",
        Figures::of(&compared).summary()
    );
    println!(
        "  pairs held without the green log but not with it: {} {:?}; green log not comparable (not used): {not_used}",
        worse.len(),
        worse
    );
    println!(
        "  (the smallest excerpts that hold every error line have a median of {} lines)",
        smallest.median()
    );
    let held_out = cross_validate(pairs, &pairs_grid(), PAIRS_TARGETS, options.settings);
    println!(
        "  with the green log, cross-validated ({FOLDS} folds by project; the constants chosen on 4 folds from {} settings, measured on the 5th): {}",
        pairs_grid().len(),
        held_out.summary()
    );
}

fn evaluate_failed_tests(dir: &Path) -> Result<(), BoxError> {
    let root = dir.join("ci-logs/github-actions");
    let expected: serde_json::Value =
        serde_json::from_slice(&read_fixture(&root.join("expected.json"))?)?;
    let cases = expected.as_array().ok_or("expected.json is not a list")?;
    let mut matched = 0;
    for case in cases {
        let path = root.join(case["log"].as_str().unwrap_or(""));
        let log = read_fixture(&path)?;
        let mut want: Vec<&str> = case["expected"]["tr_t_failed"]
            .as_str()
            .unwrap_or("")
            .split('#')
            .filter(|s| !s.is_empty())
            .collect();
        want.sort_unstable();
        let result = triage(&log);
        let mut got: Vec<&str> = result
            .failed_tests
            .iter()
            .map(|name| name.as_str())
            .collect();
        got.sort_unstable();
        if got == want {
            matched += 1;
        } else {
            println!("  names differ for {}: got {got:?}", path.display());
        }
    }
    println!(
        "GitHub Actions logs: failed test names match for {matched} of {} ({:.1}%)",
        cases.len(),
        matched as f64 / cases.len().max(1) as f64 * 100.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labelled(repo: &str, expected: Vec<(usize, usize)>) -> Labelled {
        Labelled {
            name: repo.to_string(),
            repo: repo.to_string(),
            log: Vec::new(),
            last_success: None,
            expected,
        }
    }

    #[test]
    fn ground_truth_error_lines_are_read_and_context_lines_are_not() {
        assert_eq!(
            error_lines("DEFAULT\nE 18-61\nC 5\nE 70\n"),
            [(18, 61), (70, 70)]
        );
        // 10-30 and 36-40 are less than 8 lines apart: one range of 31 lines; 60 alone.
        assert_eq!(
            labelled("x", vec![(10, 20), (15, 30), (36, 40), (60, 60)]).smallest_excerpt(),
            32
        );
    }

    #[test]
    fn a_repository_stays_in_one_fold_and_folds_are_of_about_one_size() {
        let mut logs = Vec::new();
        for (repo, count) in [
            ("a", 9),
            ("b", 5),
            ("c", 5),
            ("d", 4),
            ("e", 3),
            ("f", 3),
            ("g", 1),
        ] {
            for _ in 0..count {
                logs.push(labelled(repo, vec![(1, 1)]));
            }
        }
        let fold_of = folds(&logs);
        for (index, labelled) in logs.iter().enumerate() {
            let first = logs
                .iter()
                .position(|l| l.repo == labelled.repo)
                .unwrap_or(0);
            assert_eq!(fold_of[index], fold_of[first]);
        }
        let mut sizes = [0; FOLDS];
        for fold in fold_of {
            sizes[fold] += 1;
        }
        assert!(
            sizes.iter().all(|&size| (5..=9).contains(&size)),
            "{sizes:?}"
        );
    }
}
