//! `buildlore analyze <file>`: triage a job log on this machine, no service or LLM needed,
//! optionally next to the log of the job's last successful run;
//! `buildlore analyze --evaluate`: measure the triage on the labelled fixture logs.

use crate::dev::BoxError;
use buildlore_core::explain::numbered_excerpt;
use buildlore_core::triage::{LastSuccess, Triage, triage, triage_with_last_success};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// The raw job log (`-` reads standard input).
    file: Option<PathBuf>,
    /// The log of the same job's last successful run: lines it printed too are not
    /// evidence, and the new lines above the failure are.
    #[arg(long, value_name = "PASS_LOG")]
    last_success: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of one log: measure the excerpt on LogChunks (whole set and cross-validated by
    /// repository) and on the log pairs (with and without the green log), and failed-test
    /// names on the GitHub Actions logs, from this fixtures directory (the repository's own
    /// is `tests/fixtures`; a log stored as `<name>.gz` is read decompressed).
    #[arg(long, value_name = "FIXTURES_DIR")]
    evaluate: Option<PathBuf>,
    /// With --evaluate: list the logs whose labelled lines the excerpt misses.
    #[arg(long)]
    misses: bool,
    /// With --evaluate: print the whole-set figures of every setting cross-validation tries.
    #[arg(long)]
    settings: bool,
}

pub fn run(args: AnalyzeArgs) -> Result<(), BoxError> {
    if let Some(dir) = args.evaluate {
        let options = crate::evaluate::Options {
            misses: args.misses,
            settings: args.settings,
        };
        return crate::evaluate::evaluate(&dir, options);
    }
    let file = args
        .file
        .ok_or("name a log file to analyse (or `-` for standard input)")?;
    let log = read_log(&file)?;
    let result = match &args.last_success {
        Some(green) => {
            if green.as_os_str() == "-" && file.as_os_str() == "-" {
                return Err("only one of the two logs can come from standard input".into());
            }
            triage_with_last_success(&log, &LastSuccess::from_log(&read_log(green)?))
        }
        None => triage(&log),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&log, &result);
    }
    Ok(())
}

/// A log file's bytes (`-`: standard input).
fn read_log(file: &Path) -> Result<Vec<u8>, BoxError> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
        return Ok(bytes);
    }
    Ok(std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?)
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
    if let Some(green) = &result.last_success {
        if green.used {
            println!(
                "last green run: compared ({} lines new, {} seen in it; {} evidence lines left out as seen)",
                green.lines_new, green.lines_seen, green.evidence_dropped
            );
        } else {
            println!(
                "last green run: not used, too little in common ({} lines seen in it, {} new)",
                green.lines_seen, green.lines_new
            );
        }
    }
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
