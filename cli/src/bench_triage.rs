//! `bench triage`: triage speed on one core over a corpus built from the fixture logs, next to
//! `grep -c -E` with the same literals on the same bytes in the same run; and the speed of the
//! comparison with the last green run, over the fixture log pairs (the green log read into
//! its set of lines, then the failed log triaged against it).

use crate::bench_webhooks::{fixture_files, fixtures, read_fixture};
use crate::dev::BoxError;
use buildlore_core::triage::{LastSuccess, PREFILTER, triage, triage_with_last_success};

use std::io::Write;
use std::time::Instant;

/// The fixture logs (LogChunks and the GitHub Actions logs).
fn fixture_logs() -> Result<Vec<Vec<u8>>, BoxError> {
    let root = fixtures();
    let mut paths = Vec::new();
    for dir in [
        root.join("logchunks/logs"),
        root.join("ci-logs/github-actions/python"),
        root.join("ci-logs/github-actions/maven"),
        root.join("ci-logs/github-actions/javascript/jest"),
    ] {
        paths.extend(fixture_files(&dir)?);
    }
    paths.sort();
    let mut logs = Vec::new();
    for path in paths {
        logs.push(read_fixture(&path)?);
    }
    Ok(logs)
}

/// A failed log and the green log of the same job.
type LogPair = (Vec<u8>, Vec<u8>);

/// The fixture log pairs.
fn fixture_pairs() -> Result<Vec<LogPair>, BoxError> {
    let root = fixtures().join("log-pairs");
    let mut folders: Vec<std::path::PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
        .iter()
        .map(|folder| {
            Ok((
                read_fixture(&folder.join("fail.log"))?,
                read_fixture(&folder.join("pass.log"))?,
            ))
        })
        .collect()
}

pub fn run(megabytes: usize, rounds: usize) -> Result<(), BoxError> {
    let logs = fixture_logs()?;
    let pairs = fixture_pairs()?;
    let target = megabytes * 1024 * 1024;
    // The corpus: the fixture logs over and over, each a separate log to triage.
    let mut corpus: Vec<&[u8]> = Vec::new();
    let mut bytes = 0usize;
    while bytes < target {
        for log in &logs {
            corpus.push(log);
            bytes += log.len();
        }
    }
    let mb = bytes as f64 / 1024.0 / 1024.0;
    println!(
        "bench triage: {} logs, {mb:.0} MB ({} distinct fixture logs repeated), one core, {rounds} rounds",
        corpus.len(),
        logs.len()
    );
    // grep reads the same bytes, as one file, with the prefilter's literals as its patterns.
    let path = std::env::temp_dir().join(format!("buildlore-triage-{}.log", std::process::id()));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for log in &corpus {
            file.write_all(log)?;
        }
    }
    let pattern = grep_pattern();
    // Warm the page cache.
    let _ = std::fs::read(&path)?;
    // The pairs over and over, to the same size (both logs of a pair counted).
    let mut pair_corpus: Vec<&LogPair> = Vec::new();
    let mut pair_bytes = 0usize;
    while pair_bytes < target && !pairs.is_empty() {
        for pair in &pairs {
            pair_corpus.push(pair);
            pair_bytes += pair.0.len() + pair.1.len();
        }
    }
    let pair_mb = pair_bytes as f64 / 1024.0 / 1024.0;
    println!(
        "pairs: {} failed logs with their green logs, {pair_mb:.0} MB in both ({} distinct pairs repeated)",
        pair_corpus.len(),
        pairs.len()
    );
    let mut ratios = Vec::new();
    let mut triage_speeds = Vec::new();
    let mut pair_speeds = Vec::new();
    for round in 1..=rounds {
        println!("round {round}");
        let started = Instant::now();
        let matches: usize = corpus
            .iter()
            .map(|log| buildlore_core::triage::prefilter_matches(log))
            .sum();
        let prefilter_seconds = started.elapsed().as_secs_f64();
        println!(
            "  prefilter alone {:>7.2} s  {:>8.0} MB/s  ({matches} matches)",
            prefilter_seconds,
            mb / prefilter_seconds
        );
        let started = Instant::now();
        let mut excerpt_lines = 0usize;
        for log in &corpus {
            let result = triage(log);
            excerpt_lines += result
                .excerpt
                .iter()
                .map(|r| r.end_line - r.start_line + 1)
                .sum::<usize>();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  triage          {:>7.2} s  {:>8.0} MB/s  ({excerpt_lines} excerpt lines)",
            seconds,
            mb / seconds
        );
        triage_speeds.push(mb / seconds);
        let started = Instant::now();
        let output = std::process::Command::new("grep")
            .env("LC_ALL", "C")
            .arg("-c")
            .arg("-E")
            .arg(&pattern.0)
            .arg(&path)
            .output();
        let grep_seconds = started.elapsed().as_secs_f64();
        match output {
            Ok(output) => {
                println!(
                    "  grep -c -E      {:>7.2} s  {:>8.0} MB/s  ({} matching lines, {} patterns)",
                    grep_seconds,
                    mb / grep_seconds,
                    String::from_utf8_lossy(&output.stdout).trim(),
                    pattern.1
                );
                ratios.push(grep_seconds / seconds);
            }
            Err(error) => println!("  grep could not run: {error}"),
        }
        if !pair_corpus.is_empty() {
            let started = Instant::now();
            let green_bytes: usize = pair_corpus.iter().map(|(_, green)| green.len()).sum();
            let distinct: usize = pair_corpus
                .iter()
                .map(|(_, green)| LastSuccess::from_log(green).distinct_lines())
                .sum();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  green logs read {:>7.2} s  {:>8.0} MB/s  ({distinct} distinct lines)",
                seconds,
                green_bytes as f64 / 1024.0 / 1024.0 / seconds
            );
            let started = Instant::now();
            let mut excerpt_lines = 0usize;
            for (failed, green) in &pair_corpus {
                let result = triage_with_last_success(failed, &LastSuccess::from_log(green));
                excerpt_lines += result
                    .excerpt
                    .iter()
                    .map(|r| r.end_line - r.start_line + 1)
                    .sum::<usize>();
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  with green log  {:>7.2} s  {:>8.0} MB/s  of both logs ({excerpt_lines} excerpt lines)",
                seconds,
                pair_mb / seconds
            );
            pair_speeds.push(pair_mb / seconds);
        }
    }
    let _ = std::fs::remove_file(&path);
    println!(
        "triage: median {:.0} MB/s over {rounds} rounds (target: at least 1 GB/s)",
        median(&mut triage_speeds)
    );
    if !pair_speeds.is_empty() {
        println!(
            "triage with the last green log: median {:.0} MB/s of both logs over {rounds} rounds (target: at least 300 MB/s)",
            median(&mut pair_speeds)
        );
    }
    if !ratios.is_empty() {
        println!(
            "triage is {:.1}x grep's speed, the median of the rounds (target: faster than grep)",
            median(&mut ratios)
        );
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// grep's pattern: the prefilter's literals, and the shell steps the triage finds by their `$`;
/// with how many alternatives it has.
fn grep_pattern() -> (String, usize) {
    let mut patterns: Vec<String> = PREFILTER
        .iter()
        .map(|literal| {
            literal
                .chars()
                .map(|c| {
                    if "\\.[]{}()*+?^$|".contains(c) {
                        format!("\\{c}")
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
        })
        .collect();
    patterns.extend(["^\\$ ", "K\\$ ", "m\\$ "].map(String::from));
    (patterns.join("|"), patterns.len())
}
