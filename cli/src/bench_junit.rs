//! `bench junit`: parse speed of a generated 5,000-test, ~10 MB JUnit report on one core
//! (plain and gzip), the parser's peak RSS, and what storing that report with 20 failures
//! costs in DynamoDB calls and write units, on the emulator.

use crate::bench::require_emulator;
use crate::dev::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_api::auth::ApiKeys;
use buildlore_api::{function_app, routes};
use buildlore_aws::AwsClients;
use buildlore_aws::bootstrap::ensure_table;
use buildlore_core::compression::gzip;
use buildlore_core::junit::parse::parse_gzip_report;
use buildlore_core::junit::{MAX_REPORT_BYTES, parse_report_bytes};
use buildlore_core::table::TABLE;
use std::collections::HashMap;
use std::time::Instant;

const INGEST_KEY: &str = "bench-junit-ingest-key-000000";
const TESTS_PER_SUITE: usize = 100;

/// A Surefire-like report: `tests` cases in suites of 100, each with some captured output so
/// the document weighs about `bytes`; the cases at `failing` fail with a stack trace.
pub fn generate_report(tests: usize, bytes: usize, failing: &[usize]) -> Vec<u8> {
    let per_case = bytes / tests.max(1);
    // Log lines that differ like real ones (times, ids, durations), so gzip compresses the
    // report about as much as a real one, not a hundredfold.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut output_of_case = move || {
        let mut output = String::with_capacity(per_case);
        while output.len() + 150 < per_case {
            let n = next();
            output.push_str(&format!(
                "2024-05-01 12:{:02}:{:02}.{:03} INFO  [worker-{}] c.e.service.OrderService - processed order {} for customer {:x} in {} ms\n",
                n % 60,
                (n >> 8) % 60,
                (n >> 16) % 1000,
                (n >> 26) % 16,
                (n >> 30) % 1_000_000,
                n >> 40,
                (n >> 20) % 500
            ));
        }
        output
    };
    let mut xml = String::with_capacity(bytes + 64 * 1024);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for suite in 0..tests.div_ceil(TESTS_PER_SUITE) {
        let class = format!("com.example.module{}.Service{suite}Test", suite % 7);
        xml.push_str(&format!(
            "<testsuite name=\"{class}\" tests=\"{TESTS_PER_SUITE}\" time=\"12.5\">\n"
        ));
        for case in suite * TESTS_PER_SUITE..((suite + 1) * TESTS_PER_SUITE).min(tests) {
            xml.push_str(&format!(
                "<testcase classname=\"{class}\" name=\"handles_case_{case}\" time=\"0.{:03}\">",
                case % 1000
            ));
            if failing.contains(&case) {
                xml.push_str("<failure message=\"expected: &lt;200&gt; but was: &lt;500&gt;\" type=\"org.opentest4j.AssertionFailedError\">org.opentest4j.AssertionFailedError: expected: &lt;200&gt; but was: &lt;500&gt;\n");
                for frame in 0..30 {
                    xml.push_str(&format!(
                        "\tat com.example.module.Service.call{frame}(Service.java:{})\n",
                        100 + frame
                    ));
                }
                xml.push_str("</failure>");
            }
            xml.push_str("<system-out><![CDATA[");
            xml.push_str(&output_of_case());
            xml.push_str("]]></system-out></testcase>\n");
        }
        xml.push_str("</testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml.into_bytes()
}

/// Resident memory now and at its peak, in MB (Linux `VmRSS`, `VmHWM`).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak to the current RSS (Linux: writing 5 to clear_refs), so the next peak is
/// the parser's own.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// DynamoDB's item size: attribute names plus values (numbers approximately).
fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len() / 2 + 1,
                    AttributeValue::B(b) => b.as_ref().len(),
                    AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
                    _ => 8,
                }
        })
        .sum()
}

fn write_units(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

pub async fn run(
    tests: usize,
    megabytes: usize,
    failures: usize,
    rounds: usize,
) -> Result<(), BoxError> {
    let failing: Vec<usize> = (0..failures).map(|i| i * tests / failures.max(1)).collect();
    let report = generate_report(tests, megabytes * 1024 * 1024, &failing);
    let size_mb = report.len() as f64 / (1024.0 * 1024.0);
    let packed = gzip(&report);
    println!(
        "bench junit: {tests} tests, {failures} failing, {size_mb:.1} MB of XML ({:.2} MB gzipped)",
        packed.len() as f64 / (1024.0 * 1024.0)
    );

    let (rss_before, _) = rss_mb();
    let peak_reset = reset_peak();
    let mut plain = Vec::new();
    let mut parsed = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let result = parse_report_bytes(&report, MAX_REPORT_BYTES)?;
        plain.push(size_mb / started.elapsed().as_secs_f64());
        parsed = Some(result);
    }
    let (_, peak_plain) = rss_mb();
    let mut unzipped = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        parse_gzip_report(&packed, MAX_REPORT_BYTES)?;
        unzipped.push(size_mb / started.elapsed().as_secs_f64());
    }
    let parsed = parsed.ok_or("no parse round ran")?;
    if parsed.totals.tests != tests as u64 || parsed.totals.failed != failures as u64 {
        return Err(format!(
            "parsed {:?}, expected {tests} tests, {failures} failed",
            parsed.totals
        )
        .into());
    }
    println!(
        "  parse, one core: median {:.0} MB/s plain, {:.0} MB/s gzip (MB of XML per second; {rounds} rounds)",
        median(plain),
        median(unzipped)
    );
    if peak_reset {
        println!(
            "  peak RSS while parsing: {peak_plain:.1} MB ({rss_before:.1} MB before, which holds the report and its gzip copy): +{:.1} MB for the parser",
            peak_plain - rss_before
        );
    } else {
        println!("  peak RSS (process): {peak_plain:.1} MB ({rss_before:.1} MB before parsing)");
    }

    require_emulator()?;
    let clients = AwsClients::from_env().await;
    let table = format!(
        "buildlore-bench-junit-{}",
        chrono::Utc::now().timestamp_millis()
    );
    ensure_table(&clients.dynamodb, &table, &TABLE).await?;
    let keys = ApiKeys::from_lists(INGEST_KEY, "", "")?;
    let state = crate::bench::bench_state(&clients, &table, keys, |_| {})?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, function_app(&[routes::table::INGEST], state)).await;
    });
    let http = reqwest::Client::new();
    let green = generate_report(tests, megabytes * 1024 * 1024, &[]);
    let runs: [(&str, &Vec<u8>, &str); 3] = [
        ("first upload, 20 new failures", &report, "1"),
        ("next job, the same 20 failing", &report, "2"),
        ("next job, all green", &green, "3"),
    ];
    println!("  storage (table {table}), uploads gzipped:");
    for (label, body, job) in runs {
        clients.stats.reset();
        let started = Instant::now();
        let answer: serde_json::Value = http
            .post(format!(
                "http://127.0.0.1:{port}/api/v1/jobs/gitlab/bench%2Fshop/{job}/reports/junit?commit=c{job}&branch=main"
            ))
            .bearer_auth(INGEST_KEY)
            .header("content-type", "application/xml")
            .header("content-encoding", "gzip")
            .body(gzip(body))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let calls = clients.stats.snapshot();
        let writes: u64 = calls
            .iter()
            .filter(|(op, _)| {
                [
                    "PutItem",
                    "UpdateItem",
                    "TransactWriteItems",
                    "BatchWriteItem",
                    "DeleteItem",
                ]
                .iter()
                .any(|write| op.ends_with(write))
            })
            .map(|(_, n)| n)
            .sum();
        let transaction = calls
            .iter()
            .any(|(op, n)| op.ends_with("TransactWriteItems") && *n > 0);
        // Write units, from the items as stored: every state is rewritten by each of these
        // uploads; a transaction costs twice.
        let items = clients
            .dynamodb
            .scan()
            .table_name(&table)
            .send()
            .await?
            .items
            .unwrap_or_default();
        let entity = |item: &HashMap<String, AttributeValue>| {
            item.get("entity")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let factor = if transaction { 2 } else { 1 };
        let mut units = 0;
        for item in &items {
            let sort = item
                .get("sk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let pk = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            match entity(item).as_str() {
                "test_state" => units += write_units(item_bytes(item)),
                "junit_upload" if pk.ends_with(&format!("#{job}")) => {
                    units += factor * write_units(item_bytes(item))
                }
                "tracked_tests" if transaction && sort.starts_with('#') => {
                    units += 2 * write_units(item_bytes(item))
                }
                _ => {}
            }
        }
        let summary: Vec<String> = calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        println!(
            "    {label:<32} {:>5.2} s  tests {} failed {}  write calls {writes}  ≈{units} WCU  [{}]",
            seconds,
            answer["tests"],
            answer["failed"],
            summary.join(", ")
        );
    }
    Ok(())
}
