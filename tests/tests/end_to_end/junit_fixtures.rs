//! Every JUnit fixture dialect through the parser, with its totals checked exactly. The
//! expected figures follow the contract's counting rules (one test per suite/name pair, the
//! worst case wins, Surefire flaky reruns are flaky, `status="disabled"` is skipped, suite
//! attributes only when there are no cases); they were cross-checked with an independent
//! count over a DOM parser when the table was written.

use buildlore_core::junit::{JunitError, MAX_REPORT_BYTES, Outcome, parse_report_bytes};
use buildlore_tests::fixtures;
use std::collections::BTreeSet;

/// (file under tests/fixtures/junit, [tests, passed, failed, errors, skipped, flaky])
const EXPECTED: &[(&str, [u64; 6])] = &[
    (
        "action-junit-report/test_results/catch2/report.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/cunit/testEmpty.xml",
        [0, 0, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/cunit/testFailure.xml",
        [4, 3, 1, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/flaky_retries/flaky_all_failures.xml",
        [1, 0, 0, 1, 0, 0],
    ),
    (
        "action-junit-report/test_results/flaky_retries/flaky_success_first.xml",
        [1, 0, 0, 1, 0, 0],
    ),
    (
        "action-junit-report/test_results/flaky_retries/flaky_with_classname_file.xml",
        [3, 2, 0, 1, 0, 0],
    ),
    (
        "action-junit-report/test_results/issues/testDisabled.xml",
        [22, 6, 4, 2, 10, 0],
    ),
    (
        "action-junit-report/test_results/issues/testFailedDisabled.xml",
        [1, 0, 0, 0, 1, 0],
    ),
    (
        "action-junit-report/test_results/junit-server-test/report.xml",
        [3, 1, 1, 0, 1, 0],
    ),
    (
        "action-junit-report/test_results/junit_flaky_failure/marathon_junit_report.xml",
        [1, 0, 0, 0, 0, 1],
    ),
    (
        "action-junit-report/test_results/junit_flaky_failure/mixed_flaky_and_passed.xml",
        [3, 2, 0, 0, 0, 1],
    ),
    (
        "action-junit-report/test_results/marathon_tests/com.mikepenz.DummyUtilTest#test_01_dummy.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/maven_surefire_flaky/surefire-report.xml",
        [1, 0, 0, 0, 0, 1],
    ),
    (
        "action-junit-report/test_results/mocha/mocha.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/multiple/test_10.xml",
        [3, 3, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/multiple/test_11.xml",
        [3, 2, 1, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/multiple/test_12.xml",
        [3, 2, 0, 0, 1, 0],
    ),
    (
        "action-junit-report/test_results/multiple_failures/test_multiple_errors.xml",
        [3, 1, 0, 2, 0, 0],
    ),
    (
        "action-junit-report/test_results/multiple_failures/test_multiple_failures.xml",
        [4, 1, 2, 0, 1, 0],
    ),
    (
        "action-junit-report/test_results/nested/junit.xml",
        [5, 2, 3, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/nested/multi-level.xml",
        [3, 3, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/nextest/basic.xml",
        [3, 2, 1, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/perl/result.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/python/report.xml",
        [3, 1, 2, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/python/report_flaky.xml",
        [4, 2, 2, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/tests/email/target/surefire-reports/TEST-action.surefire.report.email.EmailAddressTest.xml",
        [9, 2, 2, 5, 0, 0],
    ),
    (
        "action-junit-report/test_results/tests/utils/target/surefire-reports/TEST-action.surefire.report.calc.AllOkTest.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/tests/utils/target/surefire-reports/TEST-action.surefire.report.calc.CalcUtilsTest.xml",
        [2, 0, 2, 0, 0, 0],
    ),
    (
        "action-junit-report/test_results/tests/utils/target/surefire-reports/TEST-action.surefire.report.calc.StringUtilsTest.xml",
        [5, 2, 2, 0, 1, 0],
    ),
    (
        "action-junit-report/test_results/xunit/report.xml",
        [4, 3, 1, 0, 0, 0],
    ),
    (
        "go-junit-report/testdata/001-report.xml",
        [5, 2, 1, 0, 2, 0],
    ),
    (
        "go-junit-report/testdata/012-report.xml",
        [11, 6, 4, 0, 1, 0],
    ),
    (
        "go-junit-report/testdata/013-report.xml",
        [5, 2, 0, 3, 0, 0],
    ),
    (
        "gotestsum/internal/junitxml/testdata/junitxml-report.golden",
        [60, 42, 13, 0, 5, 0],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/JENKINS-48583/TESTS-TestSuites.xml",
        [3, 3, 0, 0, 0, 0],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/gh-237/TEST-io.olamy.AlwaysFailTest.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/gh-237/TEST-io.olamy.FlakyTest.xml",
        [1, 0, 0, 0, 0, 1],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/junit-report-bad-duration.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/junit-report-empty-testcasename.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "junit-plugin/src/test/resources/hudson/tasks/junit/junit-report-nested-testsuites.xml",
        [3, 2, 0, 1, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/empty/jest-junit-empty-testsuite.xml",
        [0, 0, 0, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/empty/phpunit-empty.xml",
        [0, 0, 0, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/java/TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/java/empty_failures.xml",
        [3, 2, 1, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/java/pulsar-test-report.xml",
        [670, 666, 1, 0, 3, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/jest/jest-react-component-test-results.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/jest/jest-test-results.xml",
        [3982, 3950, 2, 0, 30, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/external/phpunit/phpcheckstyle-phpunit.xml",
        [30, 28, 2, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/jest-junit-eslint.xml",
        [1, 1, 0, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/jest-junit.xml",
        [6, 1, 4, 0, 1, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/junit-with-message.xml",
        [1, 0, 1, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/phpunit/phpunit-paths.xml",
        [6, 0, 6, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/phpunit/phpunit.xml",
        [12, 10, 2, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/python-xunit-pytest.xml",
        [10, 6, 2, 0, 2, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/python-xunit-unittest.xml",
        [8, 4, 1, 1, 2, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/swift-xunit.xml",
        [3, 2, 1, 0, 0, 0],
    ),
    (
        "test-reporter/__tests__/fixtures/test-errors/jest/jest-test-results.xml",
        [2, 0, 0, 2, 0, 0],
    ),
];

/// Files that must be refused, with a word the error must contain.
const REFUSED: &[(&str, &str)] = &[
    (
        "action-junit-report/test_results/corrupt-junit/e2e-tests/corrupt/target/sf-reports/TEST-test.CorruptTest.xml",
        "CDATA",
    ),
    (
        "action-junit-report/test_results/junit-web-test/expected.xml",
        "raw `<`",
    ),
    (
        "action-junit-report/test_results/junit-web-test/expectedRetries.xml",
        "raw `<`",
    ),
    (
        "action-junit-report/test_results/tests/pom.xml",
        "Maven POM",
    ),
];

fn report_files() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "xml" || e == "golden")
            {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                out.insert(relative.to_string_lossy().into_owned());
            }
        }
    }
    let root = fixtures::dir().join("junit");
    let mut files = BTreeSet::new();
    walk(&root, &root, &mut files);
    files
}

fn parse(file: &str) -> Result<buildlore_core::junit::ParsedReport, JunitError> {
    parse_report_bytes(&fixtures::bytes(&format!("junit/{file}")), MAX_REPORT_BYTES)
}

#[test]
fn every_fixture_file_is_covered() {
    let covered: BTreeSet<String> = EXPECTED
        .iter()
        .map(|(file, _)| file.to_string())
        .chain(REFUSED.iter().map(|(file, _)| file.to_string()))
        .collect();
    let files = report_files();
    assert!(files.len() >= 60, "{} report files", files.len());
    let missing: Vec<_> = files.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "fixtures without expected totals: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "expected totals for missing files: {stale:?}"
    );
}

#[test]
fn totals_are_exact_for_every_dialect() {
    let mut wrong = Vec::new();
    for (file, [tests, passed, failed, errors, skipped, flaky]) in EXPECTED {
        let totals = match parse(file) {
            Ok(report) => report.totals,
            Err(error) => {
                wrong.push(format!("{file}: refused: {error}"));
                continue;
            }
        };
        let got = [
            totals.tests,
            totals.passed,
            totals.failed,
            totals.errors,
            totals.skipped,
            totals.flaky,
        ];
        if got != [*tests, *passed, *failed, *errors, *skipped, *flaky] {
            wrong.push(format!("{file}: got {got:?}"));
        }
        assert_eq!(
            totals.tests,
            totals.passed + totals.failed + totals.errors + totals.skipped + totals.flaky,
            "{file}"
        );
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn malformed_and_foreign_files_are_refused_with_the_reason() {
    for (file, word) in REFUSED {
        let error = parse(file).expect_err(file).to_string();
        assert!(error.contains(word), "{file}: {error}");
    }
}

#[test]
fn dialect_details() {
    // Surefire rerun: a flakyFailure in a finally passing case, with its message kept.
    let flaky =
        parse("action-junit-report/test_results/maven_surefire_flaky/surefire-report.xml").unwrap();
    assert_eq!(flaky.tests[0].outcome, Outcome::Flaky);
    let message = flaky.tests[0]
        .failure
        .as_ref()
        .and_then(|f| f.message.clone())
        .unwrap();
    assert!(message.contains("Expected: <false>"), "{message}");
    // Surefire counts reruns in its attributes (tests="4"); the cases say one test.
    let always = parse("junit-plugin/src/test/resources/hudson/tasks/junit/gh-237/TEST-io.olamy.AlwaysFailTest.xml").unwrap();
    assert_eq!((always.totals.tests, always.totals.failed), (1, 1));
    // jest: `classname=""` takes the suite's name; escaped markup in names is decoded.
    let react = parse(
        "test-reporter/__tests__/fixtures/external/jest/jest-react-component-test-results.xml",
    )
    .unwrap();
    assert!(
        react.tests[0].name.contains("<Component />") || react.tests[0].suite.contains('<'),
        "{:?}",
        react.tests[0]
    );
    // go test retried a test in one file: the worst case counts, as the contract says.
    let go = parse("action-junit-report/test_results/junit-server-test/report.xml").unwrap();
    let race = go
        .tests
        .iter()
        .find(|t| t.name == "TestWebSocketReconnectRace")
        .unwrap();
    assert_eq!(race.outcome, Outcome::Failed);
    assert!(
        (race.duration_seconds - 11.1).abs() < 1e-6,
        "{}",
        race.duration_seconds
    );
    // Go build failures are errors with their output as text.
    let build = parse("go-junit-report/testdata/013-report.xml").unwrap();
    assert_eq!(build.totals.errors, 3);
    // A failure with only a message attribute.
    let empty = parse("test-reporter/__tests__/fixtures/external/java/empty_failures.xml").unwrap();
    let failing: Vec<_> = empty.failing_tests().collect();
    assert_eq!(failing.len(), 1);
    assert!(failing[0].failure.as_ref().unwrap().message.is_some());
    // A huge `time` (container-structure-test) and negative durations are read, not refused.
    let odd =
        parse("junit-plugin/src/test/resources/hudson/tasks/junit/junit-report-bad-duration.xml")
            .unwrap();
    assert!(odd.tests.iter().all(|t| t.duration_seconds >= 0.0));
}
