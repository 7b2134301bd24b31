//! Names of failed tests, read from the report lines of common test runners: pytest,
//! unittest, Jest, Mocha, Maven Surefire, Gradle, `cargo test`, `go test`, Minitest (Rails'
//! `Failure:` blocks) and XCTest (`xcodebuild`'s `Test Case '…' failed` lines and its
//! `Failing tests:` summary). Names keep each
//! runner's own form, except that pytest paths become dotted modules (`tests/a.py::t` →
//! `tests.a::t`) and Surefire's `pkg.Class.method` becomes `method(pkg.Class)`.

use super::lines::{line_bounds, next_line_start, visible_text};

/// Reads failed test names from the candidate lines (byte ranges of lines that hold a
/// triage keyword, in log order). Mocha's list after `N failing` is read from the lines that
/// follow it.
pub fn failed_tests(log: &[u8], candidates: &[(usize, usize)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: String| {
        let name = name.trim().to_string();
        if !name.is_empty() && name.len() <= 500 && !names.contains(&name) && names.len() < 500 {
            names.push(name);
        }
    };
    let mut in_jest_failure = false;
    for &(start, end) in candidates {
        let text = visible_text(&log[start..end]);
        let trimmed = text.trim();
        if let Some(name) = pytest(trimmed) {
            add(name);
        } else if let Some(name) = unittest(trimmed) {
            add(name);
        } else if let Some(name) = surefire(trimmed) {
            add(name);
        } else if let Some(name) = gradle(trimmed) {
            add(name);
        } else if let Some(name) = cargo_test(trimmed) {
            add(name);
        } else if let Some(name) = go_test(trimmed) {
            add(name);
        } else if trimmed.starts_with("FAIL ") {
            // Jest: `FAIL path/to/file.test.js`, then `● suite › test` per failure.
            in_jest_failure = true;
        } else if let Some(name) = trimmed.strip_prefix("● ") {
            if in_jest_failure && !is_jest_noise(name) {
                add(name.to_string());
            }
        } else if is_mocha_failing_header(trimmed) {
            for name in mocha_titles(log, end) {
                add(name);
            }
        } else if let Some(name) = xctest_case(trimmed) {
            add(name);
        } else if is_minitest_failure_header(trimmed) {
            if let Some(name) = minitest_name(log, end) {
                add(name);
            }
        } else if trimmed.ends_with("Failing tests:") {
            for name in xcode_failing_tests(log, end) {
                add(name);
            }
        }
    }
    names
}

/// Minitest's `Failure:` (or `  1) Failure:`), above the failed test's name.
fn is_minitest_failure_header(line: &str) -> bool {
    line == "Failure:"
        || line
            .strip_suffix(") Failure:")
            .is_some_and(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

/// The line after Minitest's `Failure:`: `Class#test_name [path:line]:` (Minitest 5) or
/// `test_name(Class) [path:line]:` (Minitest 4).
fn minitest_name(log: &[u8], header_end: usize) -> Option<String> {
    let (start, end) = line_bounds(log, next_line_start(log, header_end));
    let text = visible_text(&log[start..end]);
    let name = text.trim().strip_suffix(':')?.split(" [").next()?.trim();
    let named = name.contains('#') || (name.ends_with(')') && name.contains('('));
    (named && !name.contains(' ')).then(|| name.to_string())
}

fn is_jest_noise(name: &str) -> bool {
    matches!(name.trim(), "Console" | "Test suite failed to run")
}

/// `FAILED tests/a.py::test_x - reason`, `[gw1] [ 88%] FAILED tests/a.py::C::t`, or
/// `tests/a.py::test_x FAILED [ 50%]`.
fn pytest(line: &str) -> Option<String> {
    let leading = line.find("FAILED ").filter(|&at| {
        let before = &line[..at];
        before.is_empty() || before.ends_with("] ")
    });
    let path = if let Some(at) = leading {
        let rest = &line[at + "FAILED ".len()..];
        rest.split(" - ").next()?.trim()
    } else if let Some(at) = line.find(" FAILED") {
        line[..at].trim()
    } else {
        return None;
    };
    let (file, test) = path.split_once("::")?;
    if file.contains(' ') || !file.ends_with(".py") {
        return None;
    }
    let module = file.trim_end_matches(".py").replace('/', ".");
    Some(format!("{module}::{test}"))
}

/// `FAIL: test_x (module.Class)` / `ERROR: test_x (module.Class)` → `module.Class.test_x`;
/// `FAIL: module.test_x` (nose) as it is.
fn unittest(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("FAIL: ")
        .or_else(|| line.strip_prefix("ERROR: "))?;
    if let Some((test, owner)) = rest.split_once(" (") {
        let owner = owner.trim_end_matches(')');
        if test.contains(' ') || owner.contains(' ') {
            return None;
        }
        // Python 3.11 prints `test_x (module.Class.test_x)`.
        if owner.ends_with(&format!(".{test}")) {
            return Some(owner.to_string());
        }
        return Some(format!("{owner}.{test}"));
    }
    let name = rest.split_whitespace().next()?;
    (name.contains('.') && !name.contains(':') && rest.split_whitespace().count() == 1)
        .then(|| name.to_string())
}

/// `[ERROR] pkg.Class.method  Time elapsed: 0.1 s  <<< FAILURE!` → `method(pkg.Class)`;
/// the older `method(pkg.Class)  Time elapsed: …  <<< ERROR!` as it is.
fn surefire(line: &str) -> Option<String> {
    if !(line.ends_with("<<< FAILURE!") || line.ends_with("<<< ERROR!")) || line.contains(" - in ")
    {
        return None;
    }
    let line = line.strip_prefix("[ERROR] ").unwrap_or(line);
    let name = line.split("  ").next()?.trim();
    if name.is_empty() || name.starts_with("Tests run") {
        return None;
    }
    if name.ends_with(')') {
        return Some(name.to_string());
    }
    let (class, method) = name.rsplit_once('.')?;
    Some(format!("{method}({class})"))
}

/// `com.example.FooTest > bar FAILED` (Gradle).
fn gradle(line: &str) -> Option<String> {
    let name = line.strip_suffix(" FAILED")?;
    name.contains(" > ").then(|| name.trim().to_string())
}

/// `test tests::it_works ... FAILED` (cargo test).
fn cargo_test(line: &str) -> Option<String> {
    let rest = line.strip_prefix("test ")?;
    let name = rest.strip_suffix(" ... FAILED")?;
    (!name.contains(' ')).then(|| name.to_string())
}

/// `--- FAIL: TestName (0.01s)` (go test, subtests as `TestName/sub`).
fn go_test(line: &str) -> Option<String> {
    let rest = line.strip_prefix("--- FAIL: ")?;
    Some(rest.split(" (").next()?.trim().to_string())
}

/// Mocha's `  3 failing`.
fn is_mocha_failing_header(line: &str) -> bool {
    line.strip_suffix(" failing")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Mocha's failure titles after `N failing`: `1) suite` then deeper-indented parts, the
/// last ending with `:`; joined with spaces.
fn mocha_titles(log: &[u8], header_end: usize) -> Vec<String> {
    let mut titles = Vec::new();
    let mut at = next_line_start(log, header_end);
    let mut current: Option<Vec<String>> = None;
    let mut scanned = 0;
    while at < log.len() && scanned < 5_000 {
        scanned += 1;
        let (start, end) = line_bounds(log, at);
        let text = visible_text(&log[start..end]);
        let trimmed = text.trim();
        at = next_line_start(log, end);
        if let Some(mut parts) = current.take() {
            if trimmed.is_empty() {
                current = Some(parts);
            } else {
                parts.push(trimmed.trim_end_matches(':').to_string());
                if trimmed.ends_with(':') {
                    titles.push(parts.join(" "));
                } else if parts.len() <= 8 {
                    current = Some(parts);
                }
            }
            continue;
        }
        if let Some((number, title)) = trimmed.split_once(") ")
            && !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
        {
            if title.ends_with(':') {
                titles.push(title.trim_end_matches(':').to_string());
            } else {
                current = Some(vec![title.to_string()]);
            }
        }
        if titles.len() >= 200 {
            break;
        }
    }
    titles
}

/// `Test Case '-[Suite testX]' failed (0.012 seconds).` (XCTest on Apple platforms) or
/// `Test Case 'Suite.testX' failed (0.012 seconds)` (swift-corelibs-xctest).
fn xctest_case(line: &str) -> Option<String> {
    let rest = line.strip_prefix("Test Case '")?;
    let (name, outcome) = rest.split_once("' ")?;
    outcome
        .starts_with("failed")
        .then(|| name.trim().to_string())
}

/// `xcodebuild`'s summary: `Failing tests:`, then per test target an indented `Target:` line
/// and the failed tests indented twice (`Suite.testX()` or `-[Suite testX]`), up to the first
/// line that is not indented.
fn xcode_failing_tests(log: &[u8], header_end: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = next_line_start(log, header_end);
    for _ in 0..2_000 {
        if at >= log.len() || names.len() >= 200 {
            break;
        }
        let (start, end) = line_bounds(log, at);
        let text = visible_text(&log[start..end]);
        at = next_line_start(log, end);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            continue;
        }
        if !text.starts_with([' ', '\t']) {
            break;
        }
        if !trimmed.ends_with(':') {
            names.push(trimmed.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_report_lines() {
        assert_eq!(
            pytest("FAILED tests/bench.py::test_text - PyPDF2.errors.PdfReadWarning: x").unwrap(),
            "tests.bench::test_text"
        );
        assert_eq!(
            pytest(
                "[gw1] [ 88%] FAILED tests/integration/test_mongodb.py::TestMongoCache::test_ttl"
            )
            .unwrap(),
            "tests.integration.test_mongodb::TestMongoCache::test_ttl"
        );
        assert_eq!(
            pytest("tests/a.py::test_x FAILED [ 50%]").unwrap(),
            "tests.a::test_x"
        );
        assert!(pytest("XFAILED tests/a.py::x").is_none());
        assert_eq!(
            unittest("FAIL: test_x (pkg.mod.Case)").unwrap(),
            "pkg.mod.Case.test_x"
        );
        assert_eq!(
            unittest("FAIL: test.verify_test.test_identical").unwrap(),
            "test.verify_test.test_identical"
        );
        assert_eq!(
            surefire("[ERROR] com.a.JSONTest.test_UUID  Time elapsed: 0.006 s  <<< FAILURE!")
                .unwrap(),
            "test_UUID(com.a.JSONTest)"
        );
        assert!(
            surefire("[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.014 s <<< FAILURE! - in com.a.JSONTest").is_none()
        );
        assert_eq!(
            gradle("io.reactivex.SerializedObserverTest > notificationDelay FAILED").unwrap(),
            "io.reactivex.SerializedObserverTest > notificationDelay"
        );
        assert_eq!(
            cargo_test("test store::tests::round_trip ... FAILED").unwrap(),
            "store::tests::round_trip"
        );
        assert_eq!(
            go_test("--- FAIL: TestAlpha/Testing_Frameworks (0.00s)").unwrap(),
            "TestAlpha/Testing_Frameworks"
        );
    }

    #[test]
    fn xctest_reports() {
        assert_eq!(
            xctest_case("Test Case '-[RealmTests.SchemaTests testInit]' failed (0.105 seconds).")
                .unwrap(),
            "-[RealmTests.SchemaTests testInit]"
        );
        assert_eq!(
            xctest_case("Test Case 'SessionTestCase.testThatX' failed (1.2 seconds)").unwrap(),
            "SessionTestCase.testThatX"
        );
        assert!(xctest_case("Test Case '-[A b]' passed (0.001 seconds).").is_none());
        let log = b"Failing tests:\r\n\tAlamofire iOS Tests:\r\n\t\tSessionTestCase.testA()\r\n\r\n\t\tSessionTestCase.testB()\r\n\tTests:\r\n\t\t-[InterprocessTest testC]\r\nTest session results and logs:\r\n\t/Users/ci/x.xcresult\r\n** TEST FAILED **\r\n";
        let (start, end) = line_bounds(log, 0);
        assert_eq!(
            failed_tests(log, &[(start, end)]),
            vec![
                "SessionTestCase.testA()",
                "SessionTestCase.testB()",
                "-[InterprocessTest testC]"
            ]
        );
    }

    /// Every line of `log` as a candidate, as (start, end).
    fn every_line(log: &[u8]) -> Vec<(usize, usize)> {
        let mut lines = Vec::new();
        let mut at = 0;
        while at < log.len() {
            let (start, end) = line_bounds(log, at);
            lines.push((start, end));
            at = next_line_start(log, end);
        }
        lines
    }

    #[test]
    fn minitest_failures() {
        let log = b"# Running:\n\nF\n\nFailure:\nApplicationTests::DBConsoleTest#test_use_value [test/application/dbconsole_test.rb:40]:\n\"sqlite>\" expected, but got:\n\n  2) Failure:\ntest_old_style(LegacyTest) [test/legacy_test.rb:7]:\nExpected: 1\nFailure:\nnot a test name at all:\n";
        assert_eq!(
            failed_tests(log, &every_line(log)),
            vec![
                "ApplicationTests::DBConsoleTest#test_use_value",
                "test_old_style(LegacyTest)"
            ]
        );
    }

    #[test]
    fn jest_and_mocha_sections() {
        let log = b"FAIL test/a.spec.js\n  \xe2\x97\x8f Console\n  \xe2\x97\x8f suite \xe2\x80\xba does x\n\n  2 failing\n\n  1) Suite\n       does y:\n     Error: no\n  2) Other does z:\n     Error: no\n";
        assert_eq!(
            failed_tests(log, &every_line(log)),
            vec!["suite › does x", "Suite does y", "Other does z"]
        );
    }
}
