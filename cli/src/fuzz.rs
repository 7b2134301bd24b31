//! `buildlore fuzz`: every parser that takes outside input, fed mutated real inputs for a
//! while; any panic is a failure (the input is saved and the command exits non-zero).
//!
//! A mutation fuzzer of our own: seeds are real payloads (the webhook and JUnit fixtures,
//! builds, log pushes, headers, cursors, query values), mutated byte-wise (flips, inserts, deletions,
//! repeats, splices with other seeds, tokens that parsers trip on) and, for JSON seeds,
//! structurally (a value replaced by one of another type, a huge one, or a deep nesting).

use crate::bench_webhooks::{fixture_files, fixtures, read_fixture};
use crate::dev::BoxError;
use buildlore_core::BuildSubmission;
use buildlore_core::RepoPath;
use buildlore_core::compression::{gunzip_capped, gzip};
use buildlore_core::cursor::Cursor;
use buildlore_core::junit::gitlab::parse_pipeline_test_report;
use buildlore_core::junit::parse::parse_gzip_report;
use buildlore_core::junit::parse_report_bytes;
use buildlore_core::list_builds::{BuildQuery, RawBuildQuery};
use buildlore_core::log_push::parse_log_push;
use buildlore_core::trace::content_range_start;
use buildlore_core::webhooks::secret::WebhookSecrets;
use buildlore_core::webhooks::{github, gitlab};
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Only the targets whose name contains this.
    #[arg(long)]
    pub target: Option<String>,
    /// Seed of the random mutations (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// One parser under test: its name, its seed inputs, and how it is called.
pub struct Target {
    pub name: &'static str,
    seeds: Vec<Vec<u8>>,
    json: bool,
    call: fn(&[u8]),
}

/// What a target run found.
#[derive(Debug)]
pub struct Outcome {
    pub runs: u64,
    /// The first input that panicked, with the panic's message.
    pub panic: Option<(Vec<u8>, String)>,
}

/// A small, fast generator (xorshift64*): reproducible from its seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            0
        } else {
            (self.next() % bound as u64) as usize
        }
    }
}

/// Text that parsers trip on.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"-1",
    b"0",
    b"1e308",
    b"-0.0",
    b"18446744073709551616",
    b"99999999999999999999999",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3\x28",
    b"%FF",
    b"%",
    b"\r\n",
    b"\x1b[31m",
    b"\0",
    b"true",
    b"..",
    b"/",
    b"0000-01-01T00:00:00Z",
    b"9999-12-31T23:59:59Z",
    b"sha256=",
    b"bytes=",
    b"-",
];

fn mutate(random: &mut Random, seed: &[u8], seeds: &[Vec<u8>], json: bool) -> Vec<u8> {
    if json
        && random.below(3) == 0
        && let Ok(mut value) = serde_json::from_slice::<Value>(seed)
    {
        for _ in 0..1 + random.below(3) {
            replace_random_node(random, &mut value);
        }
        return serde_json::to_vec(&value).unwrap_or_default();
    }
    let mut input = seed.to_vec();
    for _ in 0..1 + random.below(4) {
        let at = random.below(input.len() + 1);
        match random.below(7) {
            0 if !input.is_empty() => {
                let at = at.min(input.len() - 1);
                input[at] ^= 1 << random.below(8);
            }
            1 => {
                let token = TOKENS[random.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            2 if !input.is_empty() => {
                let end = (at + 1 + random.below(64)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 if !input.is_empty() => {
                let end = (at + 1 + random.below(32)).min(input.len());
                let piece = input[at.min(end)..end].repeat(1 + random.below(64));
                input.splice(at..at, piece);
            }
            4 => {
                let other = &seeds[random.below(seeds.len())];
                let from = random.below(other.len() + 1);
                let end = (from + random.below(256)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
            5 => input.truncate(at),
            _ => {
                let byte = random.next() as u8;
                input.insert(at, byte);
            }
        }
    }
    input
}

/// Replaces one node of a JSON document, found by a random walk, with a surprising value.
fn replace_random_node(random: &mut Random, value: &mut Value) {
    let children = match value {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    };
    if children == 0 || random.below(3) == 0 {
        *value = surprising_value(random);
        return;
    }
    let pick = random.below(children);
    match value {
        Value::Object(map) => {
            if let Some(child) = map.values_mut().nth(pick) {
                replace_random_node(random, child);
            }
        }
        Value::Array(items) => replace_random_node(random, &mut items[pick]),
        _ => {}
    }
}

fn surprising_value(random: &mut Random) -> Value {
    match random.below(9) {
        0 => Value::Null,
        1 => json!(random.next() as i64),
        2 => json!(-1.5e308),
        3 => json!("x".repeat(random.below(70_000))),
        4 => json!([]),
        5 => json!({}),
        6 => json!(true),
        7 => {
            let mut deep = json!(1);
            for _ in 0..random.below(200) {
                deep = json!([deep]);
            }
            deep
        }
        _ => json!("\u{0}\u{202e}\u{fffd}<script>"),
    }
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// The seed inputs of the webhook targets: every fixture payload of the provider.
fn webhook_seeds(provider: &str) -> Vec<Vec<u8>> {
    let root = fixtures().join("webhooks").join(provider);
    let mut seeds = Vec::new();
    let mut folders = vec![root];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                folders.push(entry.path());
            }
        }
        for path in fixture_files(&folder).unwrap_or_default() {
            if let Ok(bytes) = read_fixture(&path) {
                seeds.push(bytes);
            }
        }
    }
    if seeds.is_empty() {
        seeds.push(b"{}".to_vec());
    }
    seeds
}

/// The JUnit fixtures of a few dialects (Surefire with reruns, pytest, jest, nested suites,
/// go), and an entity declaration.
fn junit_seeds() -> Vec<Vec<u8>> {
    let root = fixtures().join("junit");
    let mut seeds: Vec<Vec<u8>> = [
        "action-junit-report/test_results/maven_surefire_flaky/surefire-report.xml",
        "action-junit-report/test_results/python/report.xml",
        "action-junit-report/test_results/nested/junit.xml",
        "junit-plugin/src/test/resources/hudson/tasks/junit/junit-report-nested-testsuites.xml",
        "test-reporter/__tests__/fixtures/jest-junit.xml",
        "go-junit-report/testdata/013-report.xml",
    ]
    .iter()
    .filter_map(|path| read_fixture(&root.join(path)).ok())
    .collect();
    seeds.push(
        b"<!DOCTYPE t [<!ENTITY a \"aa\">]><testsuite name=\"&a;\"><testcase name=\"x\"/></testsuite>"
            .to_vec(),
    );
    seeds
}

fn json_seeds(values: &[Value]) -> Vec<Vec<u8>> {
    values
        .iter()
        .map(|value| serde_json::to_vec(value).unwrap_or_default())
        .collect()
}

fn text_seeds(values: &[&str]) -> Vec<Vec<u8>> {
    values
        .iter()
        .map(|value| value.as_bytes().to_vec())
        .collect()
}

const GITLAB_EVENTS: &[&str] = &["Pipeline Hook", "Job Hook", "Build Hook", "Push Hook", ""];
const GITHUB_EVENTS: &[&str] = &[
    "workflow_run",
    "workflow_job",
    "check_run",
    "check_suite",
    "status",
    "ping",
    "",
];

pub fn targets() -> Vec<Target> {
    let build = json!({"build_id": "4711", "repo": "group/sub/app", "branch": "main",
        "status": "failed", "commit": "abc", "priority": 2, "build_type": "ci", "change_id": "9",
        "duration_ms": 93000, "timestamp": "2026-11-22T08:30:00+01:00", "extra_data": {"a": [1]}});
    let push = json!({"provider": "gitlab", "project": "group/app", "pipeline_id": "12",
        "job_id": "4711", "job_name": "test", "status": "failed", "branch": "main",
        "commit_sha": "abc", "pipeline_url": "https://ci.example/p/12",
        "log": "$ make\nerror: boom\nThe command \"make\" exited with 2.\n"});
    let cursor = Cursor {
        key: [
            ("pk".to_string(), "REPO#a/b".to_string()),
            ("sk".to_string(), "BUILD#1".to_string()),
        ]
        .into_iter()
        .collect(),
    }
    .encode();
    vec![
        Target {
            name: "leliel-build",
            seeds: json_seeds(&[
                build.clone(),
                json!([build.clone()]),
                json!({"builds": [build]}),
            ]),
            json: true,
            call: |input| {
                if let Ok(value) = serde_json::from_slice::<Value>(input) {
                    let _ = BuildSubmission::parse(&value, now());
                }
            },
        },
        Target {
            name: "log-push-json",
            seeds: json_seeds(std::slice::from_ref(&push)),
            json: true,
            call: |input| {
                if let Ok(value) = serde_json::from_slice::<Value>(input) {
                    let _ = parse_log_push(&value, now());
                }
            },
        },
        Target {
            // The streaming reader of push bodies against serde_json: the same fields, the
            // same log, the same verdict.
            name: "log-push-stream",
            seeds: json_seeds(&[
                push.clone(),
                json!({"log": "a\u{e9}\u{1F600}\"\\\n", "x": [1, {"y": "}"}]}),
            ]),
            json: true,
            call: |input| {
                use buildlore_core::log_source::{JsonLog, LogShape, LogSource, scan_push_fields};
                let streamed = scan_push_fields(input, false, usize::MAX);
                let parsed = serde_json::from_slice::<Value>(input);
                let repeated_log = input.windows(5).filter(|w| w == b"\"log\"").count() > 1;
                match (&streamed, &parsed) {
                    (Ok((fields, shape)), Ok(Value::Object(object))) => {
                        for (name, value) in fields {
                            assert_eq!(Some(value), object.get(name), "field {name}");
                        }
                        if let (LogShape::Text(length), Some(Value::String(log))) =
                            (shape, object.get("log"))
                        {
                            assert_eq!(*length, log.len() as u64);
                            let source = JsonLog {
                                raw: input,
                                gzip: false,
                                max: usize::MAX,
                            };
                            let pieces: Result<Vec<Vec<u8>>, _> = source.pieces().collect();
                            assert_eq!(
                                pieces.map(|p| p.concat()).ok(),
                                Some(log.as_bytes().to_vec())
                            );
                        }
                    }
                    // serde_json stops at 128 levels of nesting; the stream reader reads the
                    // log's value apart, one level shallower.
                    (Ok(_), Err(error)) if error.to_string().contains("recursion limit") => {}
                    (Ok(_), _) => panic!("the stream reader accepts what serde_json refuses"),
                    (Err(_), Ok(Value::Object(_))) if !repeated_log => {
                        // Only fields over the size caps may be refused.
                        use buildlore_core::log_source::InvalidLog;
                        assert!(
                            matches!(
                                streamed,
                                Err(InvalidLog::FieldTooLong(_) | InvalidLog::FieldNameTooLong)
                            ),
                            "the stream reader refuses what serde_json accepts: {streamed:?}"
                        );
                    }
                    _ => {}
                }
            },
        },
        Target {
            name: "log-push-gzip",
            seeds: vec![
                gzip(&serde_json::to_vec(&push).unwrap_or_default()),
                gzip(b"log text\n"),
            ],
            json: false,
            call: |input| {
                if let Ok(decoded) = gunzip_capped(input, 1 << 20)
                    && let Ok(value) = serde_json::from_slice::<Value>(&decoded)
                {
                    let _ = parse_log_push(&value, now());
                }
            },
        },
        Target {
            name: "gitlab-webhook",
            seeds: webhook_seeds("gitlab"),
            json: true,
            call: |input| {
                for event in GITLAB_EVENTS {
                    let _ = gitlab::parse_bytes(event, input, now());
                }
            },
        },
        Target {
            name: "github-webhook",
            seeds: webhook_seeds("github"),
            json: true,
            call: |input| {
                for event in GITHUB_EVENTS {
                    let _ = github::parse_bytes(event, input, now());
                }
                let secrets = WebhookSecrets::from_list("fuzz-secret");
                let _ = secrets.verify_signature(b"{}", Some(input));
            },
        },
        Target {
            name: "content-range",
            seeds: text_seeds(&[
                "0-99",
                "bytes 0-99/100",
                "100-",
                "0-0",
                "18446744073709551615-1",
            ]),
            json: false,
            call: |input| {
                let _ = content_range_start(&text(input));
            },
        },
        Target {
            name: "cursor",
            seeds: vec![cursor.into_bytes(), b"e30".to_vec()],
            json: false,
            call: |input| {
                let _ = Cursor::decode(&text(input));
            },
        },
        Target {
            name: "junit-xml",
            seeds: junit_seeds(),
            json: false,
            call: |input| {
                let _ = parse_report_bytes(input, 1 << 20);
            },
        },
        Target {
            name: "junit-gzip",
            seeds: junit_seeds().iter().take(4).map(|xml| gzip(xml)).collect(),
            json: false,
            call: |input| {
                let _ = parse_gzip_report(input, 1 << 20);
            },
        },
        Target {
            name: "gitlab-test-report",
            seeds: json_seeds(&[json!({"test_suites": [{"name": "rspec", "test_cases": [
                {"status": "failed", "name": "merges", "classname": "mr_spec",
                 "execution_time": 2.5, "system_output": "Failure/Error", "stack_trace": null},
                {"status": "success", "name": "creates", "classname": null}]}]})]),
            json: true,
            call: |input| {
                let _ = parse_pipeline_test_report(input);
            },
        },
        Target {
            name: "query-parameters",
            seeds: text_seeds(&[
                "group/sub/app",
                "7d",
                "2026-11-22T08:30:00Z",
                "30m",
                "100",
                "FAILURE",
                "4711",
                "group%2Fapp",
                "sha256=00",
            ]),
            json: false,
            call: |input| {
                let value = text(input);
                let _ = RepoPath::parse(&value);
                let _ = buildlore_core::summary::parse_since(Some(&value), now());
                let _ = buildlore_core::summary::parse_scope(Some(&value), Some(&value));
                let _ = buildlore_core::details::parse_project(&value);
                let _ = buildlore_core::job_id::parse_job_id(&value);
                let _ = buildlore_core::time::parse_timestamp(&value, now());
                let _ = BuildQuery::parse(
                    RawBuildQuery {
                        repo: Some("a/b".into()),
                        branch: Some(value.clone()),
                        status: Some(value.clone()),
                        since: Some(value.clone()),
                        limit: Some(value.clone()),
                        cursor: Some(value),
                    },
                    now(),
                );
            },
        },
    ]
}

/// Runs one target for `duration`, stopping at the first panic.
pub fn run_target(target: &Target, duration: Duration, seed: u64) -> Outcome {
    let mut random = Random(seed | 1);
    let started = Instant::now();
    let mut runs = 0;
    // Seeds as they are first, then mutations.
    let mut inputs = target.seeds.clone().into_iter();
    while started.elapsed() < duration {
        let input = inputs.next().unwrap_or_else(|| {
            let seed = &target.seeds[random.below(target.seeds.len())];
            mutate(&mut random, seed, &target.seeds, target.json)
        });
        runs += 1;
        let call = target.call;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| call(&input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Outcome {
                runs,
                panic: Some((input, message)),
            };
        }
    }
    Outcome { runs, panic: None }
}

pub fn run(args: FuzzArgs) -> Result<(), BoxError> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("seed {seed}");
    // Panics are caught and reported below; the default hook would print each one as well.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = 0;
    for target in targets() {
        if args
            .target
            .as_deref()
            .is_some_and(|only| !target.name.contains(only))
        {
            continue;
        }
        let outcome = run_target(&target, Duration::from_secs_f64(args.seconds), seed);
        match outcome.panic {
            None => println!("{:<18} {:>10} inputs, no panic", target.name, outcome.runs),
            Some((input, message)) => {
                failed += 1;
                let file = format!("fuzz-panic-{}.bin", target.name);
                std::fs::write(&file, &input)?;
                println!(
                    "{:<18} PANIC after {} inputs: {message} (input saved to {file})",
                    target.name, outcome.runs
                );
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} target(s) panicked").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parser_survives_a_short_run() {
        for target in targets() {
            assert!(!target.seeds.is_empty(), "{} has no seeds", target.name);
            let outcome = run_target(&target, Duration::from_millis(400), 0x5eed);
            assert!(
                outcome.runs > target.seeds.len() as u64,
                "{}: {outcome:?}",
                target.name
            );
            if let Some((input, message)) = outcome.panic {
                panic!("{} panicked on {:?}: {message}", target.name, text(&input));
            }
        }
    }

    #[test]
    fn a_panicking_parser_is_caught_with_its_input() {
        let target = Target {
            name: "panics-on-brace",
            seeds: vec![b"{}".to_vec()],
            json: false,
            call: |input| assert!(!input.starts_with(b"{"), "a brace"),
        };
        let outcome = run_target(&target, Duration::from_secs(1), 1);
        let (input, message) = outcome.panic.expect("the seed itself panics");
        assert_eq!(input, b"{}");
        assert!(message.contains("a brace"), "{message}");
    }
}
