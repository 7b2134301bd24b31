//! The triage as a whole, on small handmade logs.

use super::fingerprint::normalise_line;
use super::lines::LineIndex;
use super::*;

/// Whether the excerpt holds the line.
#[test]
fn a_failing_command_is_found_and_numbered() {
    let log = b"$ npm install\r\nadded 10 packages\r\n$ npm test\r\n\r\n  1) suite\r\n     Error: boom\r\n       at thing (a.js:1:2)\r\n\r\nThe command \"npm test\" exited with 1.\r\nDone. Your build exited with 1.\r\n";
    let triage = triage(log);
    // The failing step is short: shown whole, from its command to the line saying it failed.
    assert_eq!(
        triage.excerpt,
        vec![LineRange {
            start_line: 3,
            end_line: 9
        }]
    );
    assert_eq!(triage.failing_step.as_deref(), Some("npm test"));
    assert_eq!(triage.total_lines, 10);
}

#[test]
fn fingerprints_ignore_what_varies_between_runs() {
    let first = triage(
        b"$ make\nbuild 1234 at 2024-01-02 10:11:12\nsrc/a.c:10:3: error: 'x' undeclared\nmake: *** [all] Error 1\n",
    );
    let again = triage(
        b"$ make\nbuild 9876 at 2024-03-04 01:02:03\nsrc/a.c:12:5: error: 'x' undeclared\nmake: *** [all] Error 2\n",
    );
    let other = triage(
        b"$ make\nbuild 1234 at 2024-01-02 10:11:12\nsrc/a.c:10:3: error: 'y' undeclared\nmake: *** [all] Error 1\n",
    );
    assert_eq!(first.fingerprint, again.fingerprint);
    assert_ne!(first.fingerprint, other.fingerprint);
    assert_eq!(first.category, Category::Compile);
    assert_eq!(
        normalise_line("took 12.5s in /tmp/pytest-of-x/abc123/f.py, sha deadbeef01"),
        "took #s in <tmp>, sha #"
    );
}

#[test]
fn a_retried_command_is_shown_through_its_last_attempt() {
    let mut log = String::from("$ make setup\nready\n$ git clone https://example.test/app.git\n");
    for attempt in 2..=3 {
        log.push_str(
            "Cloning into 'app'...\nfatal: Remote branch topic not found in upstream origin\n\n",
        );
        log.push_str(&format!(
            "The command \"eval git clone https://example.test/app.git\" failed. Retrying, {attempt} of 3.\n\n"
        ));
    }
    log.push_str(
        "Cloning into 'app'...\nfatal: Remote branch topic not found in upstream origin\n\n",
    );
    log.push_str("The command \"eval git clone https://example.test/app.git\" failed 3 times.\n\n");
    log.push_str("Done. Your build exited with 1.\n");
    let triage = triage(log.as_bytes());
    // From the clone's command to the line saying it failed for the last time.
    assert_eq!(
        triage.excerpt,
        vec![LineRange {
            start_line: 3,
            end_line: 17
        }]
    );
}

#[test]
fn a_command_echoed_over_several_lines_fails_where_its_echo_starts() {
    let mut log = String::from("$ ./ci.sh\n");
    for module in 0..40 {
        log.push_str(&format!("[{module} of 40] Compiling Module{module}\n"));
    }
    // Lines 42-44: the reason, 32 lines above the end of the command's echo.
    log.push_str("src/Module40.hs:94:10: error:\n    No instance for (Monoid Notebook)\nFailing due to -Werror.\n");
    log.push_str("The command \"case $MODE in\n");
    for line in 0..30 {
        log.push_str(&format!("  mode{line}) cabal build --flag={line} ;;\n"));
    }
    log.push_str("esac\n\" exited with 1.\n\nDone. Your build exited with 1.\n");
    let triage = triage(log.as_bytes());
    let shown = |line: usize| triage.shows(line);
    assert!((42..=44).all(shown), "{:?}", triage.excerpt);
    assert!(
        !shown(55),
        "the command's echo is not output: {:?}",
        triage.excerpt
    );
}

#[test]
fn category_words_split_by_colour_codes_still_count() {
    // cargo test colours its verdict: `test result: FAILED` is a test failure.
    let mut log = String::from("$ cargo test\n");
    for case in 0..30 {
        log.push_str(&format!("test case_{case} ... ok\n"));
    }
    log.push_str("\ntest result: \x1b[31mFAILED\x1b(B\x1b[m. 30 passed; 1 failed\n\n");
    log.push_str("The command \"cargo test\" exited with 101.\n");
    let triage = triage(log.as_bytes());
    assert_eq!(triage.category, Category::Test, "{triage:?}");
    // A long excerpt, walked in four pieces: the words are found in whichever holds them.
    let mut long = String::from("$ ./lint.sh\n");
    for line in 0..600 {
        long.push_str(&format!(
            "src/module_{line}.rs:1: \x1b[33mLine longer\x1b[0m than 80 characters\n"
        ));
    }
    long.push_str("The command \"./lint.sh\" exited with 1.\n");
    assert_eq!(triage_category(&long), Category::Lint);
}

fn triage_category(log: &str) -> Category {
    triage(log.as_bytes()).category
}

#[test]
fn a_log_that_stops_after_errors_is_shown_to_its_end() {
    let mut log = String::from("$ ./build-otp\n");
    for line in 0..400 {
        log.push_str(&format!("compiling unit {line}\n"));
    }
    // Lines 402-418: a crash, the crash dump being written, the errors of make; then the
    // log stops.
    log.push_str(
        "System process terminated: {bad_lib,\"Function not found prim_file:read/1\"}\n\n\n\n",
    );
    for part in 0..10 {
        log.push_str(&format!("writing erl_crash.dump part {part}\n"));
    }
    log.push_str("\nmake[1]: *** [emulator] Error 2\n*** Failed ***\n");
    let triage = triage(log.as_bytes());
    let shown = |line: usize| triage.shows(line);
    assert!((402..=418).all(shown), "{:?}", triage.excerpt);
    assert_eq!(triage.total_lines, 418);
}

#[test]
fn a_failed_tests_stack_trace_is_shown_whole() {
    let mut log = String::from("$ mvn test\nRunning app.OtherTest\n");
    for line in 0..200 {
        log.push_str(&format!("INFO: request {line} served\n"));
    }
    // Line 203: the report; 204-243: its stack trace.
    log.push_str(
        "raw(app.RawTest)  Time elapsed: 0.05 sec  <<< ERROR!\njava.lang.NullPointerException\n",
    );
    for frame in 0..39 {
        log.push_str(&format!(
            "\tat app.Frame{frame}.call(Frame{frame}.java:{frame})\n"
        ));
    }
    log.push('\n');
    for line in 0..200 {
        log.push_str(&format!("INFO: request {line} served\n"));
    }
    log.push_str("Tests in error:\n  RawTest.raw:46 NullPointer\n\nThe command \"mvn test\" exited with 1.\n");
    let triage = triage(log.as_bytes());
    let shown = |line: usize| triage.shows(line);
    assert!((203..=243).all(shown), "{:?}", triage.excerpt);
}

#[test]
fn werror_is_noise_as_a_flag_and_evidence_as_a_verdict() {
    let mut log = String::from("$ cabal build --ghc-options=\"-Wall -Werror -O2\"\n");
    for module in 0..200 {
        log.push_str(&format!("[{module} of 400] Compiling Mod{module}\n"));
    }
    // Lines 202-206: GHC's warning and its verdict, far above the step's end.
    log.push_str("\nsrc/Text/Ipynb.hs:94:10: Warning:\n    No explicit implementation for\n\n");
    log.push_str("<no location info>: \nFailing due to -Werror.\n");
    for module in 200..400 {
        log.push_str(&format!("[{module} of 400] Compiling Mod{module}\n"));
    }
    log.push_str("The command \"cabal build\" exited with 1.\n");
    let triage = triage(log.as_bytes());
    assert!(triage.shows(206), "{:?}", triage.excerpt);
    assert!(
        triage
            .key_lines
            .iter()
            .any(|line| line == "Failing due to -Werror."),
        "{:?}",
        triage.key_lines
    );
    assert!(!triage.key_lines.iter().any(|line| line.contains("-O2")));
    assert_eq!(triage.category, Category::Compile);
}

#[test]
fn the_tail_reaches_up_through_a_report_to_its_header() {
    let mut log = String::from("$ xcodebuild test\n");
    for file in 0..100 {
        log.push_str(&format!("Compiling file{file}.swift\n"));
    }
    // Line 102 heads the report; failures at 104 and 119, the run's summary at 151, far
    // above the 24 lines before the step fails at 177.
    log.push_str("MathTests\n\n  testAdd, XCTAssertEqual failed: (1) is not equal to (2)\n");
    for line in 0..14 {
        log.push_str(&format!("context {line}\n"));
    }
    log.push_str("  testSub, XCTAssertEqual failed: (3) is not equal to (4)\n");
    for line in 0..31 {
        log.push_str(&format!("context {line}\n"));
    }
    log.push_str("Executed 2 tests, with 2 failures\n");
    for line in 0..24 {
        log.push_str(&format!("cleanup {line}\n"));
    }
    log.push_str("** TEST FAILED **\nThe command \"xcodebuild test\" exited with 65.\n");
    let triage = triage(log.as_bytes());
    assert!(
        (102..=177).all(|line| triage.shows(line)),
        "{:?}",
        triage.excerpt
    );
    // The quiet stretch above the report is not.
    assert!(!triage.shows(100), "{:?}", triage.excerpt);
}

#[test]
fn a_long_excerpt_is_categorised_by_its_end() {
    let mut log = String::from("$ make\nwarning: Connection refused by mirror, retrying\n");
    // 3,000 error lines (over 64 KB) between, then the compiler's verdict.
    for unit in 0..3_000 {
        log.push_str(&format!(
            "src/unit{unit}.c:1: error: unknown type name 'foo_{unit}'\n"
        ));
    }
    log.push_str("make: *** [all] Error 2\nThe command \"make\" exited with 2.\n");
    let triage = triage(log.as_bytes());
    assert!(triage.shows(2), "{:?}", triage.excerpt);
    assert_eq!(triage.category, Category::Compile);
}

#[test]
fn shell_steps_are_found_by_their_dollar() {
    let log = b"$ make\nprice: 5$ each\n\x1b[0K$ npm test\n\x1b[32;1m$ ./deploy\nx $ y\n";
    assert_eq!(LineIndex::new(log).shell_steps(), [0, 26, 44]);
    let triage = triage(b"$ npm test\nError: boom\nThe command \"npm test\" exited with 1.\n");
    assert_eq!(triage.failing_step.as_deref(), Some("npm test"));
}

#[test]
fn what_the_triage_tells_about_a_log_holds_no_secret() {
    let log = "$ git clone https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.com/g/app.git\n\
               $ export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB && docker login -u ci -p S3cretRegistryPw reg.example.com\n\
               Error response from daemon: Get https://reg.example.com/v2/: unauthorized: incorrect username or password\n\
               error: Cookie: session=8f14e45fceea167a5a36dedd4bea2543 rejected\n\
               The command \"export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB && docker login -u ci -p S3cretRegistryPw reg.example.com\" exited with 1.\n";
    let triage = triage(log.as_bytes());
    let step = triage.failing_step.as_deref().unwrap_or_default();
    assert!(step.starts_with("export GITHUB_TOKEN=[REDACTED:"), "{step}");
    let told = serde_json::to_string(&triage).expect("serialises");
    for secret in [
        "ghp_1234567890",
        "S3cretRegistryPw",
        "8f14e45fceea167a5a36dedd4bea2543",
        "glpat-abcdefghijklmnopqrst",
    ] {
        assert!(!told.contains(secret), "{secret} in {told}");
    }
    assert!(!triage.key_lines.is_empty(), "{told}");
}

#[test]
fn an_empty_or_quiet_log_is_unknown() {
    let empty = triage(b"");
    assert!(empty.excerpt.is_empty());
    assert_eq!(empty.category, Category::Unknown);
    let quiet = triage(b"all good\nnothing to see\n");
    assert!(quiet.excerpt.is_empty());
}

#[test]
fn the_reach_up_climbs_a_stack_trace_to_its_exception() {
    let mut log = String::from("$ mvn verify\n");
    for line in 0..100 {
        log.push_str(&format!("[INFO] compiled unit {line}\n"));
    }
    // Line 102: the exception, then 60 frames (no error word among them).
    log.push_str("[WARNING] Error injecting: org.example.Plugin\n");
    for frame in 0..60 {
        log.push_str(&format!(
            "    at org.example.Frame{frame}.call (Frame{frame}.java:{frame})\n"
        ));
    }
    // Lines 163-168: the build tool's verdict, the strongest error lines, right at the end.
    log.push_str("[INFO] BUILD FAILURE\n");
    for line in [
        "Failed to execute goal verify: plugin could not be loaded",
        "-> [Help 1]",
        "Re-run Maven using the -X switch to enable full debug logging.",
        "For more information about the errors, read the following articles:",
        "[Help 1] https://maven.example/PluginContainerException",
    ] {
        log.push_str(&format!("[ERROR] {line}\n"));
    }
    log.push_str("The command \"mvn verify\" exited with 1.\n");
    let triage = triage(log.as_bytes());
    assert!(
        (102..=169).all(|line| triage.shows(line)),
        "{:?}",
        triage.excerpt
    );
    assert!(!triage.shows(90), "{:?}", triage.excerpt);
}
