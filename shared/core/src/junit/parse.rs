//! The streaming JUnit parser: events from quick-xml, never a tree of the document. Entity
//! declarations are refused (so a billion-laughs document costs nothing), undefined entities
//! are errors, and the bytes read are capped while they are read (a gzip bomb stops at the
//! cap, not at the end of its output).

use super::{FailureDetail, Outcome, ParsedReport, TestCollector, TestResult, Totals};
use crate::redact::Redacted;
use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart, Event};
use sha2::{Digest, Sha256};
use std::io::{BufReader, Read};

/// The largest document accepted, decompressed (GitLab's limit per JUnit file is 30 MB).
pub const MAX_REPORT_BYTES: u64 = 30 * 1024 * 1024;

/// Lines of a failure's text kept (the rest is a stack trace nobody reads in a listing).
const FAILURE_TEXT_LINES: usize = 12;
/// Characters of a failure's text kept, at most.
const FAILURE_TEXT_CHARS: usize = 2_000;
/// Characters of a failure's message kept.
const FAILURE_MESSAGE_CHARS: usize = 500;
/// Characters of a test or suite name kept (longer names are cut, not refused).
const NAME_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JunitError {
    #[error(
        "the report is larger than {limit} bytes (decompressed); split it into one file per module"
    )]
    TooLarge { limit: u64 },
    #[error("the body is not valid gzip (Content-Encoding: gzip)")]
    BadGzip,
    #[error("the report is empty; send a JUnit XML document")]
    Empty,
    #[error("the body is not XML (it starts with {0:?}); send a JUnit XML document")]
    NotXml(String),
    #[error("the report is not well-formed XML ({0}); nothing was stored")]
    Malformed(String),
    #[error(
        "the report declares entities in a DOCTYPE, which are refused (entity expansion is off); remove the DOCTYPE"
    )]
    EntityDeclaration,
    #[error(
        "this is {format} (root element <{root}>), not JUnit XML: send a report whose root is <testsuites> or <testsuite>{hint}"
    )]
    NotJunit {
        format: &'static str,
        root: String,
        hint: &'static str,
    },
}

/// Parses one JUnit document from `source`, reading at most `limit` bytes.
pub fn parse_report(source: impl Read, limit: u64) -> Result<ParsedReport, JunitError> {
    let counted = CountingReader {
        inner: source,
        read: 0,
        limit,
        digest: Sha256::new(),
    };
    let mut reader = Reader::from_reader(BufReader::with_capacity(64 * 1024, counted));
    reader.config_mut().check_end_names = true;
    let mut parser = Parser::default();
    let mut buffer = Vec::with_capacity(8 * 1024);
    loop {
        let event = match reader.read_event_into(&mut buffer) {
            Ok(event) => event,
            Err(error) => {
                let at = reader.error_position();
                let counted = reader.get_ref().get_ref();
                if counted.read > counted.limit {
                    return Err(JunitError::TooLarge { limit });
                }
                if let quick_xml::Error::Io(io) = &error
                    && io.get_ref().is_some_and(|inner| inner.is::<NotGzip>())
                {
                    return Err(JunitError::BadGzip);
                }
                return Err(parser.malformed(format!("{error} at byte {at}")));
            }
        };
        if parser.handle(event)? {
            break;
        }
        buffer.clear();
    }
    let counted = reader.into_inner().into_inner();
    let digest = counted.digest.finalize();
    parser.finish(
        digest.iter().map(|b| format!("{b:02x}")).collect(),
        counted.read,
    )
}

/// Parses an in-memory document.
pub fn parse_report_bytes(bytes: &[u8], limit: u64) -> Result<ParsedReport, JunitError> {
    parse_report(bytes, limit)
}

/// Parses a gzip-compressed document, decompressing as it reads: at most `limit` bytes of
/// XML are produced.
pub fn parse_gzip_report(compressed: &[u8], limit: u64) -> Result<ParsedReport, JunitError> {
    parse_report(
        GzipSource(flate2::read::MultiGzDecoder::new(compressed)),
        limit,
    )
}

/// A gunzip stream whose corrupt-data errors are recognisable.
struct GzipSource<R>(flate2::read::MultiGzDecoder<R>);

#[derive(Debug)]
struct NotGzip;

impl std::fmt::Display for NotGzip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not gzip")
    }
}

impl std::error::Error for NotGzip {}

impl<R: Read> Read for GzipSource<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(out).map_err(|_| std::io::Error::other(NotGzip))
    }
}

/// Counts and digests the bytes as quick-xml pulls them, and stops past the limit.
struct CountingReader<R> {
    inner: R,
    read: u64,
    limit: u64,
    digest: Sha256,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.read > self.limit {
            return Err(std::io::Error::other("report too large"));
        }
        // Never ask for more than one byte past the limit: that byte proves the excess.
        let room = (self.limit - self.read + 1).min(out.len() as u64) as usize;
        let n = self.inner.read(&mut out[..room])?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other("report too large"));
        }
        self.digest.update(&out[..n]);
        Ok(n)
    }
}

/// Counts from suite attributes, for documents without cases.
#[derive(Debug, Default, Clone, Copy)]
struct DeclaredCounts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
}

impl DeclaredCounts {
    fn of(element: &BytesStart<'_>) -> Result<Self, String> {
        let mut counts = DeclaredCounts::default();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let number = || -> Result<u64, String> {
                Ok(value(&attribute)?.trim().parse::<u64>().unwrap_or(0))
            };
            match attribute.key.local_name().as_ref() {
                b"tests" => counts.tests = number()?,
                b"failures" => counts.failures = number()?,
                b"errors" => counts.errors = number()?,
                b"skipped" | b"skips" | b"disabled" => counts.skipped += number()?,
                _ => {}
            }
        }
        Ok(counts)
    }

    fn add(&mut self, other: DeclaredCounts) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
    }

    fn totals(self) -> Totals {
        let failed = self.failures.min(self.tests);
        let errors = self.errors.min(self.tests - failed);
        let skipped = self.skipped.min(self.tests - failed - errors);
        Totals {
            tests: self.tests,
            passed: self.tests - failed - errors - skipped,
            failed,
            errors,
            skipped,
            flaky: 0,
        }
    }
}

#[derive(Debug)]
enum Frame {
    /// `<testsuites>` (the root of an aggregate).
    Suites,
    Suite {
        name: String,
        declared: DeclaredCounts,
        has_child_suite: bool,
    },
    Case,
    /// An element inside a case that says how it went.
    CaseResult,
    /// A `<failure>` or `<error>` directly inside a suite (a setup failure with no case).
    SuiteResult,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResultKind {
    Failure,
    Error,
    Skipped,
    /// `flakyFailure`, `flakyError`: failed, then passed on a rerun.
    FlakyRerun,
    /// `rerunFailure`, `rerunError`: failed again on a rerun.
    FailedRerun,
}

impl ResultKind {
    fn of(local_name: &[u8]) -> Option<Self> {
        Some(match local_name {
            b"failure" => ResultKind::Failure,
            b"error" => ResultKind::Error,
            b"skipped" => ResultKind::Skipped,
            b"flakyFailure" | b"flakyError" => ResultKind::FlakyRerun,
            b"rerunFailure" | b"rerunError" => ResultKind::FailedRerun,
            _ => return None,
        })
    }

    /// Whose text describes the failure.
    fn describes_failure(self) -> bool {
        !matches!(self, ResultKind::Skipped)
    }
}

/// The case being read.
#[derive(Debug, Default)]
struct OpenCase {
    suite: String,
    name: String,
    disabled: bool,
    duration: f64,
    failure: bool,
    error: bool,
    skipped: bool,
    flaky_rerun: bool,
    detail: Option<FailureDetail>,
    /// The detail comes from a flaky rerun, and a real failure's may replace it.
    detail_from_rerun: bool,
    capturing: bool,
}

impl OpenCase {
    fn outcome(&self) -> Outcome {
        if self.disabled {
            Outcome::Skipped
        } else if self.error {
            Outcome::Error
        } else if self.failure {
            Outcome::Failed
        } else if self.skipped {
            Outcome::Skipped
        } else if self.flaky_rerun {
            Outcome::Flaky
        } else {
            Outcome::Passed
        }
    }
}

#[derive(Debug, Default)]
struct Parser {
    stack: Vec<Frame>,
    root_seen: bool,
    root_closed: bool,
    case: Option<OpenCase>,
    tests: TestCollector,
    cases_seen: u64,
    /// Leaf suites' declared counts (a parent's count repeats its children's).
    declared_leaves: DeclaredCounts,
    declared_root: Option<DeclaredCounts>,
    suites_seen: u64,
}

fn value<'a>(attribute: &'a Attribute<'a>) -> Result<std::borrow::Cow<'a, str>, String> {
    attribute.unescape_value().map_err(|e| e.to_string())
}

pub(crate) fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// Seconds from a `time` attribute in the forms reporters write (`1.5`, `1,234.5`, `1.4e-05`);
/// anything else (missing, negative, `<<computed>>`) counts as 0.
fn seconds(raw: &str) -> f64 {
    let cleaned: String = raw.trim().chars().filter(|c| *c != ',').collect();
    match cleaned.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => value,
        _ => 0.0,
    }
}

/// What a root element that is not JUnit says about the format.
fn foreign_format(root: &str) -> (&'static str, &'static str) {
    match root.to_ascii_lowercase().as_str() {
        "test-run" => (
            "an NUnit 3 report",
            "; NUnit writes JUnit with an XSLT transform or the `--result=junit.xml;transform=...` option",
        ),
        "test-results" => ("an NUnit 2 report", ""),
        "assemblies" | "assembly" => (
            "an xUnit.net report",
            "; use the JunitXml.TestLogger (`dotnet test --logger junit`)",
        ),
        "testrun" => (
            "a Visual Studio TRX report",
            "; use the JunitXml.TestLogger (`dotnet test --logger junit`)",
        ),
        "html" => (
            "an HTML page",
            "; upload the XML report, not its HTML rendering",
        ),
        "project" => ("a Maven POM or another project file", ""),
        "coverage" => ("a coverage report (Cobertura)", ""),
        "checkstyle" => ("a Checkstyle report", ""),
        "testng-results" => (
            "a TestNG report",
            "; upload the JUnit files TestNG writes under junitreports/",
        ),
        _ => ("another XML format", ""),
    }
}

impl Parser {
    fn malformed(&self, detail: String) -> JunitError {
        JunitError::Malformed(detail)
    }

    /// Handles one event; `true` at the end of the document.
    fn handle(&mut self, event: Event<'_>) -> Result<bool, JunitError> {
        match event {
            Event::Start(element) => {
                self.open(&element)?;
            }
            Event::Empty(element) => {
                self.open(&element)?;
                self.close()?;
            }
            Event::End(_) => self.close()?,
            Event::Text(text) => {
                let content = text
                    .decode()
                    .map_err(|e| self.malformed(format!("text is not UTF-8: {e}")))?;
                if !self.root_seen && !content.trim().is_empty() {
                    let start: String = content.trim().chars().take(16).collect();
                    return Err(JunitError::NotXml(start));
                }
                self.capture(&content);
            }
            Event::CData(data) => {
                let content = String::from_utf8_lossy(&data);
                self.capture(&content);
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve(&reference)?;
                let mut utf8 = [0u8; 4];
                self.capture(resolved.encode_utf8(&mut utf8));
            }
            Event::DocType(doctype) => {
                if memchr::memmem::find(&doctype, b"ENTITY").is_some() {
                    return Err(JunitError::EntityDeclaration);
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if let Some(open) = self.stack.last() {
                    let name = match open {
                        Frame::Suites => "testsuites",
                        Frame::Suite { .. } => "testsuite",
                        Frame::Case => "testcase",
                        _ => "an element",
                    };
                    return Err(self.malformed(format!(
                        "the document ends inside <{name}>: the file is cut short"
                    )));
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn open(&mut self, element: &BytesStart<'_>) -> Result<(), JunitError> {
        if memchr::memchr(b'<', element.attributes_raw()).is_some() {
            return Err(self.malformed(format!(
                "a raw `<` in the attributes of <{}>; it must be written &lt;",
                String::from_utf8_lossy(element.name().as_ref())
            )));
        }
        let local = element.local_name();
        let local = local.as_ref();
        if !self.root_seen {
            self.root_seen = true;
            let frame = match local {
                b"testsuites" => {
                    self.declared_root = Some(self.declared(element)?);
                    Frame::Suites
                }
                b"testsuite" => self.suite_frame(element)?,
                other => {
                    let root = cut(&String::from_utf8_lossy(other), 64);
                    let (format, hint) = foreign_format(&root);
                    return Err(JunitError::NotJunit { format, root, hint });
                }
            };
            self.stack.push(frame);
            return Ok(());
        }
        if self.root_closed {
            return Err(self.malformed(
                "a second root element after the first one closed; send one report per request"
                    .into(),
            ));
        }
        let frame = match (self.stack.last_mut(), local) {
            (Some(Frame::Suites), b"testsuite") => self.suite_frame(element)?,
            (
                Some(Frame::Suite {
                    has_child_suite, ..
                }),
                b"testsuite",
            ) => {
                *has_child_suite = true;
                self.suite_frame(element)?
            }
            // Some reporters put cases straight under `<testsuites>`.
            (Some(Frame::Suite { .. } | Frame::Suites), b"testcase") => {
                self.open_case(element)?;
                Frame::Case
            }
            (Some(Frame::Suite { .. }), b"failure" | b"error") => {
                self.open_suite_result(element, local == b"error")?;
                Frame::SuiteResult
            }
            (Some(Frame::Case), name) => match ResultKind::of(name) {
                Some(kind) => {
                    self.open_result(kind, element)?;
                    Frame::CaseResult
                }
                None => Frame::Other,
            },
            _ => Frame::Other,
        };
        self.stack.push(frame);
        Ok(())
    }

    fn declared(&self, element: &BytesStart<'_>) -> Result<DeclaredCounts, JunitError> {
        DeclaredCounts::of(element).map_err(|e| self.malformed(e))
    }

    fn suite_frame(&mut self, element: &BytesStart<'_>) -> Result<Frame, JunitError> {
        self.suites_seen += 1;
        let mut name = String::new();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| self.malformed(e.to_string()))?;
            if attribute.key.local_name().as_ref() == b"name" {
                name = cut(
                    &value(&attribute).map_err(|e| self.malformed(e))?,
                    NAME_CHARS,
                );
            }
        }
        Ok(Frame::Suite {
            name,
            declared: self.declared(element)?,
            has_child_suite: false,
        })
    }

    fn current_suite(&self) -> &str {
        self.stack
            .iter()
            .rev()
            .find_map(|frame| match frame {
                Frame::Suite { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn open_case(&mut self, element: &BytesStart<'_>) -> Result<(), JunitError> {
        let mut case = OpenCase::default();
        let mut classname = String::new();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| self.malformed(e.to_string()))?;
            let text = || value(&attribute).map_err(|e| self.malformed(e));
            match attribute.key.local_name().as_ref() {
                b"name" => case.name = cut(text()?.trim(), NAME_CHARS),
                b"classname" => classname = cut(text()?.trim(), NAME_CHARS),
                b"time" => case.duration = seconds(&text()?),
                b"status" => {
                    let status = text()?.trim().to_ascii_lowercase();
                    case.disabled = matches!(status.as_str(), "disabled" | "notrun");
                }
                _ => {}
            }
        }
        case.suite = if classname.is_empty() {
            self.current_suite().to_string()
        } else {
            classname
        };
        self.cases_seen += 1;
        self.case = Some(case);
        Ok(())
    }

    fn read_detail(&self, element: &BytesStart<'_>) -> Result<FailureDetail, JunitError> {
        let mut detail = FailureDetail::default();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|e| self.malformed(e.to_string()))?;
            let text = || value(&attribute).map_err(|e| self.malformed(e));
            match attribute.key.local_name().as_ref() {
                b"message" => {
                    let message = text()?;
                    let message = message.trim();
                    if !message.is_empty() {
                        detail.message =
                            Some(Redacted::new(&cut(message, FAILURE_MESSAGE_CHARS)).into_string());
                    }
                }
                b"type" => {
                    let kind = text()?;
                    if !kind.trim().is_empty() {
                        detail.kind = Some(cut(kind.trim(), 200));
                    }
                }
                _ => {}
            }
        }
        Ok(detail)
    }

    fn open_result(
        &mut self,
        kind: ResultKind,
        element: &BytesStart<'_>,
    ) -> Result<(), JunitError> {
        let detail = if kind.describes_failure() {
            Some(self.read_detail(element)?)
        } else {
            None
        };
        let Some(case) = self.case.as_mut() else {
            return Ok(());
        };
        match kind {
            ResultKind::Failure | ResultKind::FailedRerun => case.failure = true,
            ResultKind::Error => case.error = true,
            ResultKind::Skipped => case.skipped = true,
            ResultKind::FlakyRerun => case.flaky_rerun = true,
        }
        // The first real failure describes the case; a flaky rerun's only until one comes.
        let real = matches!(kind, ResultKind::Failure | ResultKind::Error);
        if let Some(detail) = detail
            && (case.detail.is_none() || (real && case.detail_from_rerun))
        {
            case.detail = Some(detail);
            case.detail_from_rerun = !real;
            case.capturing = true;
        }
        Ok(())
    }

    /// A failure or error of a whole suite (its setup failed): one test named after the suite.
    fn open_suite_result(
        &mut self,
        element: &BytesStart<'_>,
        error: bool,
    ) -> Result<(), JunitError> {
        let detail = self.read_detail(element)?;
        let suite = self.current_suite().to_string();
        self.cases_seen += 1;
        self.case = Some(OpenCase {
            name: suite.clone(),
            suite,
            failure: !error,
            error,
            detail: Some(detail),
            capturing: true,
            ..OpenCase::default()
        });
        Ok(())
    }

    /// Appends text to the failure being described, up to the kept lines.
    fn capture(&mut self, content: &str) {
        let Some(case) = self.case.as_mut() else {
            return;
        };
        let inside_result = matches!(
            self.stack.last(),
            Some(Frame::CaseResult | Frame::SuiteResult)
        );
        if !case.capturing || !inside_result {
            return;
        }
        let Some(detail) = case.detail.as_mut() else {
            return;
        };
        let lines_kept = detail.text.matches('\n').count();
        if lines_kept >= FAILURE_TEXT_LINES || detail.text.len() >= FAILURE_TEXT_CHARS * 4 {
            return;
        }
        let room = FAILURE_TEXT_LINES - lines_kept;
        let mut taken = 0;
        let end = content
            .char_indices()
            .find(|&(_, c)| {
                if c == '\n' {
                    taken += 1;
                }
                taken >= room
            })
            .map_or(content.len(), |(at, _)| at);
        detail
            .text
            .push_str(&cut(&content[..end], FAILURE_TEXT_CHARS * 4));
    }

    fn close(&mut self) -> Result<(), JunitError> {
        let Some(frame) = self.stack.pop() else {
            return Err(self.malformed("an end tag with no open element".into()));
        };
        match frame {
            Frame::Suites => {
                self.root_closed = true;
            }
            Frame::Suite {
                declared,
                has_child_suite,
                ..
            } => {
                if !has_child_suite {
                    self.declared_leaves.add(declared);
                }
                if self.stack.is_empty() {
                    self.root_closed = true;
                }
            }
            Frame::Case | Frame::SuiteResult => self.close_case(),
            Frame::CaseResult => {
                if let Some(case) = self.case.as_mut() {
                    case.capturing = false;
                }
            }
            Frame::Other => {}
        }
        Ok(())
    }

    fn close_case(&mut self) {
        let Some(mut case) = self.case.take() else {
            return;
        };
        let outcome = case.outcome();
        let failure = match outcome {
            Outcome::Failed | Outcome::Error | Outcome::Flaky => {
                let mut detail = case.detail.take().unwrap_or_default();
                detail.text = finish_text(&detail.text);
                Some(detail)
            }
            _ => None,
        };
        self.tests.add(TestResult {
            suite: case.suite,
            name: case.name,
            outcome,
            duration_seconds: case.duration,
            failure,
        });
    }

    fn finish(self, digest: String, bytes: u64) -> Result<ParsedReport, JunitError> {
        if !self.root_seen {
            return Err(JunitError::Empty);
        }
        let (counted, tests) = self.tests.finish();
        let totals = if self.cases_seen > 0 {
            counted
        } else if self.suites_seen > 0 {
            self.declared_leaves.totals()
        } else {
            self.declared_root.unwrap_or_default().totals()
        };
        Ok(ParsedReport {
            totals,
            tests,
            digest,
            bytes,
        })
    }
}

/// The kept lines of a failure's text, trimmed, cut and redacted.
pub(crate) fn finish_text(text: &str) -> String {
    let trimmed: Vec<&str> = text
        .trim_matches('\n')
        .lines()
        .take(FAILURE_TEXT_LINES)
        .collect();
    let joined = trimmed.join("\n");
    Redacted::new(&cut(joined.trim_end(), FAILURE_TEXT_CHARS)).into_string()
}

/// A character or predefined entity reference; anything else is undefined (no DOCTYPE may
/// declare entities here).
fn resolve(reference: &BytesRef<'_>) -> Result<char, JunitError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(JunitError::Malformed(format!(
                "an invalid character reference &{};",
                String::from_utf8_lossy(reference)
            ))),
        };
    }
    match reference.as_ref() {
        b"lt" => Ok('<'),
        b"gt" => Ok('>'),
        b"amp" => Ok('&'),
        b"apos" => Ok('\''),
        b"quot" => Ok('"'),
        other => Err(JunitError::Malformed(format!(
            "the undefined entity &{};",
            cut(&String::from_utf8_lossy(other), 40)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compression::gzip;

    fn parse(xml: &str) -> Result<ParsedReport, JunitError> {
        parse_report_bytes(xml.as_bytes(), MAX_REPORT_BYTES)
    }

    fn totals(xml: &str) -> Totals {
        parse(xml).unwrap_or_else(|e| panic!("{e}")).totals
    }

    fn t(tests: u64, passed: u64, failed: u64, errors: u64, skipped: u64, flaky: u64) -> Totals {
        Totals {
            tests,
            passed,
            failed,
            errors,
            skipped,
            flaky,
        }
    }

    #[test]
    fn counts_cases_not_attributes() {
        let xml = r#"<?xml version="1.0"?>
<testsuites tests="99" failures="42">
  <testsuite name="s" tests="7">
    <testcase classname="A" name="ok" time="0.5"/>
    <testcase classname="A" name="fails" time="1,234.5"><failure message="boom">trace</failure></testcase>
    <testcase classname="A" name="errs"><error/></testcase>
    <testcase classname="A" name="skip" time="&lt;&lt;x&gt;&gt;"><skipped/></testcase>
    <testcase classname="A" name="off" status="disabled"><failure>ignored</failure></testcase>
  </testsuite>
</testsuites>"#;
        let report = parse(xml).unwrap();
        assert_eq!(report.totals, t(5, 1, 1, 1, 2, 0));
        let fails = &report.tests[1];
        assert_eq!(fails.duration_seconds, 1234.5);
        let detail = fails.failure.as_ref().unwrap();
        assert_eq!(detail.message.as_deref(), Some("boom"));
        assert_eq!(detail.text, "trace");
        assert_eq!(report.failing_tests().count(), 2);
        assert_eq!(report.digest.len(), 64);
        assert_eq!(report.bytes, xml.len() as u64);
    }

    #[test]
    fn one_test_per_pair_worst_case_wins() {
        let xml = r#"<testsuite name="S">
  <testcase classname="C" name="t"/>
  <testcase classname="C" name="t"><failure/></testcase>
  <testcase classname="C" name="t"/>
  <testcase classname="D" name="t"><skipped/></testcase>
  <testcase classname="D" name="t"/>
  <testcase classname="E" name="t"><failure/></testcase>
  <testcase classname="E" name="t"><error/></testcase>
  <testcase name="t"/>
</testsuite>"#;
        let report = parse(xml).unwrap();
        // C failed, D passed, E errored, (S, t) passed.
        assert_eq!(report.totals, t(4, 2, 1, 1, 0, 0));
        assert_eq!(
            report.tests[3].suite, "S",
            "no classname: the suite names it"
        );
        let loose =
            r#"<testsuites><testcase classname="C" name="t"><failure/></testcase></testsuites>"#;
        assert_eq!(totals(loose), t(1, 0, 1, 0, 0, 0));
    }

    #[test]
    fn surefire_reruns() {
        let xml = r#"<testsuite name="S" tests="4" failures="4">
  <testcase classname="C" name="flaky"><flakyFailure message="first"><stackTrace>at x</stackTrace></flakyFailure></testcase>
  <testcase classname="C" name="flaky_error"><flakyError/><flakyError/></testcase>
  <testcase classname="C" name="always"><failure message="real"/><rerunFailure/><rerunFailure/></testcase>
  <testcase classname="C" name="ok"/>
</testsuite>"#;
        let report = parse(xml).unwrap();
        assert_eq!(report.totals, t(4, 1, 1, 0, 0, 2));
        assert_eq!(report.tests[0].outcome, Outcome::Flaky);
        let flaky = report.tests[0].failure.as_ref().unwrap();
        assert_eq!(flaky.message.as_deref(), Some("first"));
        // A flaky case beside a passing case of the same test is flaky; beside a failing
        // one it failed.
        let mixed = r#"<testsuite name="S">
  <testcase classname="C" name="a"><flakyFailure/></testcase><testcase classname="C" name="a"/>
  <testcase classname="C" name="b"><flakyFailure/></testcase><testcase classname="C" name="b"><failure/></testcase>
</testsuite>"#;
        assert_eq!(totals(mixed), t(2, 0, 1, 0, 0, 1));
    }

    #[test]
    fn nested_suites_and_suite_level_errors() {
        let xml = r#"<testsuites><testsuite name="outer"><testsuite name="A">
  <testcase classname="" name="x"/></testsuite><testsuite name="B"><testcase classname="" name="x"><failure/></testcase>
  <testsuite name="setup"><error message="BeforeAll failed">stack</error></testsuite>
</testsuite></testsuite></testsuites>"#;
        let report = parse(xml).unwrap();
        assert_eq!(report.totals, t(3, 1, 1, 1, 0, 0));
        assert_eq!(
            (
                report.tests[2].suite.as_str(),
                report.tests[2].name.as_str()
            ),
            ("setup", "setup")
        );
    }

    #[test]
    fn documents_without_cases_take_suite_attributes() {
        let xml = r#"<testsuites tests="100"><testsuite name="a" tests="5" failures="1" skipped="1"/>
<testsuite name="b" tests="3" errors="1" skips="1"/></testsuites>"#;
        assert_eq!(totals(xml), t(8, 4, 1, 1, 2, 0));
        assert_eq!(totals(r#"<testsuites tests="0"/>"#), t(0, 0, 0, 0, 0, 0));
        assert_eq!(
            totals(r#"<testsuites tests="2" failures="1"></testsuites>"#),
            t(2, 1, 1, 0, 0, 0)
        );
    }

    #[test]
    fn failure_text_keeps_the_first_lines_and_is_redacted() {
        let mut text = String::from("password=hunter2-secret-value\n");
        for line in 0..100 {
            text.push_str(&format!("  at frame {line}\n"));
        }
        let xml = format!(
            r#"<testsuite name="s"><testcase name="t"><failure message="token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB leaked"><![CDATA[{text}]]></failure></testcase></testsuite>"#
        );
        let report = parse(&xml).unwrap();
        let detail = report.tests[0].failure.as_ref().unwrap();
        assert_eq!(detail.text.lines().count(), FAILURE_TEXT_LINES);
        assert!(!detail.text.contains("hunter2"), "{}", detail.text);
        let message = detail.message.as_deref().unwrap();
        assert!(!message.contains("ghp_0123"), "{message}");
        assert!(detail.text.contains("at frame 0"));
    }

    #[test]
    fn refuses_what_is_not_junit() {
        for (xml, format) in [
            (r#"<test-run id="2"/>"#, "NUnit 3"),
            (r#"<assemblies><assembly/></assemblies>"#, "xUnit.net"),
            (
                r#"<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010"/>"#,
                "TRX",
            ),
            ("<!DOCTYPE html><html><body>502</body></html>", "HTML"),
            (
                r#"<project><modelVersion>4.0.0</modelVersion></project>"#,
                "Maven POM",
            ),
        ] {
            let error = parse(xml).unwrap_err();
            assert!(
                matches!(error, JunitError::NotJunit { .. }),
                "{xml}: {error:?}"
            );
            assert!(error.to_string().contains(format), "{error}");
        }
        assert!(matches!(
            parse(r#"{"tests": 3}"#),
            Err(JunitError::NotXml(_))
        ));
        assert_eq!(parse(""), Err(JunitError::Empty));
        assert_eq!(parse("  \n"), Err(JunitError::Empty));
    }

    #[test]
    fn refuses_malformed_xml() {
        for xml in [
            r#"<testsuite name="s"><testcase name="t"><failure><![CDATA[cut"#,
            r#"<testsuite name="s"><testcase name="t"></testsuite>"#,
            r#"<testsuite name="s"><testcase name="t" time="<<computed>>"/></testsuite>"#,
            r#"<testsuite name="s"><testcase name="t"/>"#,
            r#"<testsuite name="s">&nbsp;</testsuite>"#,
            r#"<testsuite name="&bogus;"/>"#,
            r#"<testsuite name="a"/><testsuite name="b"/>"#,
        ] {
            let error = parse(xml).unwrap_err();
            assert!(
                matches!(error, JunitError::Malformed(_)),
                "{xml}: {error:?}"
            );
        }
    }

    #[test]
    fn refuses_entity_declarations_at_once() {
        let mut bomb =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for level in 1..10 {
            let previous = if level == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", level - 1)
            };
            bomb.push_str(&format!(
                "<!ENTITY lol{level} \"{}\">\n",
                format!("&{previous};").repeat(10)
            ));
        }
        bomb.push_str("]>\n<testsuite name=\"&lol9;\"><testcase name=\"&lol9;\"/></testsuite>");
        let started = std::time::Instant::now();
        assert_eq!(parse(&bomb), Err(JunitError::EntityDeclaration));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let external =
            r#"<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite name="&xxe;"/>"#;
        assert_eq!(parse(external), Err(JunitError::EntityDeclaration));
        // A DOCTYPE without declarations is harmless.
        assert_eq!(
            totals("<!DOCTYPE testsuite><testsuite name=\"s\"><testcase name=\"t\"/></testsuite>")
                .tests,
            1
        );
    }

    #[test]
    fn caps_the_bytes_read_even_through_gzip() {
        let mut xml = String::from("<testsuite name=\"s\">");
        while xml.len() < 200_000 {
            xml.push_str("<testcase classname=\"c\" name=\"t\"/>");
        }
        xml.push_str("</testsuite>");
        assert_eq!(
            parse_report_bytes(xml.as_bytes(), 100_000),
            Err(JunitError::TooLarge { limit: 100_000 })
        );
        let exact = parse_report_bytes(xml.as_bytes(), xml.len() as u64).unwrap();
        assert_eq!(exact.totals.tests, 1);
        let packed = gzip(xml.as_bytes());
        assert_eq!(
            parse_gzip_report(&packed, 100_000),
            Err(JunitError::TooLarge { limit: 100_000 })
        );
        let unpacked = parse_gzip_report(&packed, MAX_REPORT_BYTES).unwrap();
        assert_eq!(unpacked.digest, exact.digest, "the digest is of the XML");
        assert_eq!(
            parse_gzip_report(b"not gzip", MAX_REPORT_BYTES),
            Err(JunitError::BadGzip)
        );
    }
}
