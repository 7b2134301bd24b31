//! `buildlore analyze <file>`: triage a job log on this machine, no service or LLM needed;
//! `buildlore analyze --evaluate`: measure the triage on the labelled fixture logs.

use crate::bench_webhooks::read_fixture;
use crate::dev::BoxError;
use buildlore_core::explain::numbered_excerpt;
use buildlore_core::triage::{Triage, triage};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The raw job log (`-` reads standard input).
    file: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of one log: measure excerpt recall and size on LogChunks and failed-test names
    /// on the GitHub Actions logs, from this fixtures directory (the repository's own is
    /// `tests/fixtures`; a log stored as `<name>.gz` is read decompressed).
    #[arg(long, value_name = "FIXTURES_DIR")]
    evaluate: Option<PathBuf>,
    /// With --evaluate: list the logs whose labelled chunk the excerpt misses.
    #[arg(long)]
    misses: bool,
}

pub fn run(args: AnalyzeArgs) -> Result<(), BoxError> {
    if let Some(dir) = args.evaluate {
        return evaluate(&dir, args.misses);
    }
    let file = args
        .file
        .ok_or("name a log file to analyse (or `-` for standard input)")?;
    let log = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        bytes
    } else {
        std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?
    };
    let result = triage(&log);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&log, &result);
    }
    Ok(())
}

fn print_human(log: &[u8], result: &Triage) {
    println!("category:      {}", result.category.as_str());
    if let Some(kind) = result.infrastructure {
        println!("infrastructure: {kind}");
    }
    if let Some(step) = &result.failing_step {
        println!("failing step:  {step}");
    }
    println!("fingerprint:   {}", result.fingerprint);
    if !result.failed_tests.is_empty() {
        println!("failed tests:");
        for name in &result.failed_tests {
            println!("  {name}");
        }
    }
    print!("{}", excerpt_text(log, result));
}

/// The excerpt's lines, numbered, under a header per range; redacted as one text, so that a
/// secret over several lines (a private key's block) goes whole.
fn excerpt_text(log: &[u8], result: &Triage) -> String {
    let numbered = numbered_excerpt(log, &result.excerpt);
    let mut out = String::new();
    for (range, text) in result.excerpt.iter().zip(&numbered.ranges) {
        out.push_str(&format!(
            "--- lines {}-{}\n",
            range.start_line, range.end_line
        ));
        out.push_str(text);
    }
    buildlore_core::redact::redact(&out).0
}

struct ChunkResult {
    contained: bool,
    chunk_lines: usize,
    covered_lines: usize,
    excerpt_lines: usize,
}

/// Where the labelled chunk sits, as 1-based inclusive lines (after normalising line breaks,
/// as the data set's labels are).
fn chunk_lines(log: &[u8], chunk: &str) -> Option<(usize, usize)> {
    let normal = |text: &str| text.replace("\r\n", "\n").replace('\r', "\n");
    let text = normal(&String::from_utf8_lossy(log));
    let chunk = normal(chunk);
    let chunk = chunk.trim_end_matches('\n');
    let at = text.find(chunk)?;
    let start = text[..at].matches('\n').count() + 1;
    Some((start, start + chunk.matches('\n').count()))
}

fn evaluate(dir: &Path, list_misses: bool) -> Result<(), BoxError> {
    let root = dir.join("logchunks");
    let labels = String::from_utf8(read_fixture(&root.join("labels.jsonl"))?)?;
    let mut results = Vec::new();
    let mut unlocated = 0;
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let label: serde_json::Value = serde_json::from_str(line)?;
        let path = root.join(label["log"].as_str().ok_or("a label without `log`")?);
        let log = read_fixture(&path)?;
        let Some((first, last)) = chunk_lines(&log, label["chunk"].as_str().unwrap_or("")) else {
            unlocated += 1;
            continue;
        };
        let result = triage(&log);
        let covered = (first..=last).filter(|&n| result.shows(n)).count();
        let excerpt_lines: usize = result
            .excerpt
            .iter()
            .map(|r| r.end_line - r.start_line + 1)
            .sum();
        let chunk = ChunkResult {
            contained: covered == last - first + 1,
            chunk_lines: last - first + 1,
            covered_lines: covered,
            excerpt_lines,
        };
        if list_misses && !chunk.contained {
            println!(
                "miss {} chunk {first}-{last} excerpt {:?}",
                path.display(),
                result
                    .excerpt
                    .iter()
                    .map(|r| (r.start_line, r.end_line))
                    .collect::<Vec<_>>()
            );
        }
        results.push(chunk);
    }
    let n = results.len().max(1) as f64;
    let contained = results.iter().filter(|r| r.contained).count();
    let chunk_total: usize = results.iter().map(|r| r.chunk_lines).sum();
    let covered_total: usize = results.iter().map(|r| r.covered_lines).sum();
    let excerpt_total: usize = results.iter().map(|r| r.excerpt_lines).sum();
    let mut sizes: Vec<usize> = results.iter().map(|r| r.excerpt_lines).collect();
    sizes.sort_unstable();
    let at = |q: f64| sizes[((sizes.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "LogChunks: {} labelled logs ({} chunks not found verbatim in their log, skipped)",
        results.len(),
        unlocated
    );
    println!(
        "  whole chunk inside the excerpt: {contained} ({:.1}%)",
        contained as f64 / n * 100.0
    );
    let mean_recall: f64 = results
        .iter()
        .map(|r| r.covered_lines as f64 / r.chunk_lines.max(1) as f64)
        .sum::<f64>()
        / n;
    println!(
        "  line recall: {:.1}% per log on average, {:.1}% of all labelled lines; line precision {:.1}%",
        mean_recall * 100.0,
        covered_total as f64 / chunk_total.max(1) as f64 * 100.0,
        covered_total as f64 / excerpt_total.max(1) as f64 * 100.0
    );
    println!(
        "  excerpt lines: median {}, p75 {}, p90 {}, max {}",
        at(0.5),
        at(0.75),
        at(0.9),
        sizes.last().copied().unwrap_or(0)
    );
    evaluate_failed_tests(dir)
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

    #[test]
    fn the_printed_excerpt_redacts_a_private_key_over_several_lines() {
        let log = b"$ ./deploy.sh\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\nError: token=abcdef123456 rejected\nThe command \"./deploy.sh\" exited with 1.\n";
        let text = excerpt_text(log, &triage(log));
        assert!(
            !text.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
            "{text}"
        );
        assert!(!text.contains("abcdef123456"), "{text}");
        assert!(text.contains("[REDACTED:private-key]"), "{text}");
        assert!(text.contains("     1 | $ ./deploy.sh"), "{text}");
        assert!(text.contains("     6 | The command"), "{text}");
    }
}
