//! Secrets out of job logs before anything is stored as an analysis or sent to an LLM: cloud
//! keys, forge and registry tokens, JWTs, private-key blocks, `password=`-style assignments,
//! Authorization headers and credentials in URLs are replaced by `[REDACTED:<kind>]`; the text
//! around them is kept.

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::OnceLock;

struct Rule {
    kind: &'static str,
    pattern: Regex,
    /// Capture groups kept verbatim before the secret (a header's or variable's name).
    keep_prefix_groups: usize,
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let rule = |kind, pattern: &str, keep_prefix_groups| Rule {
            kind,
            // Word boundaries are ASCII ones: secrets are ASCII, and a Unicode boundary keeps
            // the regex engine from its fast DFA (an ASCII boundary also redacts a token glued
            // to a non-ASCII letter, which a Unicode one would leave).
            pattern: Regex::new(&pattern.replace(r"\b", r"(?-u:\b)"))
                .expect("the redaction patterns are valid"),
            keep_prefix_groups,
        };
        vec![
            rule(
                "private-key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
                0,
            ),
            rule(
                "url-credentials",
                r"(?i)([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@",
                1,
            ),
            rule(
                "authorization",
                r"(?i)((?:proxy-)?authorization\s*[:=]\s*(?:bearer|basic|token|digest|bot)?\s*)[^\s'\x22,;]+",
                1,
            ),
            rule(
                "token-header",
                r"(?i)((?:private-token|job-token|x-api-key|x-auth-token|x-gitlab-token|x-access-token|api-key)\s*:\s*)[^\s'\x22,;]+",
                1,
            ),
            rule("bearer", r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}", 1),
            rule(
                "jwt",
                r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
                0,
            ),
            rule(
                "aws-access-key",
                r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b",
                0,
            ),
            rule(
                "github-token",
                r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})",
                0,
            ),
            rule(
                "gitlab-token",
                r"\b(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|gloas)-[A-Za-z0-9_\-]{20,}|\bGR1348941[A-Za-z0-9_\-]{20,}",
                0,
            ),
            rule("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b", 0),
            rule("pypi-token", r"\bpypi-AgE[A-Za-z0-9_\-]{40,}", 0),
            rule("slack-token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", 0),
            rule(
                "slack-webhook",
                r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]+",
                0,
            ),
            rule("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}", 0),
            rule(
                "stripe-key",
                r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}",
                0,
            ),
            rule(
                "sendgrid-key",
                r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
                0,
            ),
            rule("openai-key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}", 0),
            rule("digitalocean-token", r"\bdo[opr]_v1_[a-f0-9]{64}\b", 0),
            rule("vault-token", r"\bhv[sb]\.[A-Za-z0-9_\-]{24,}", 0),
            rule("docker-hub-token", r"\bdckr_pat_[A-Za-z0-9_\-]{20,}", 0),
            rule(
                "password-flag",
                r"(?i)(--(?:password|passwd|token|api-key|secret)(?:=|\s+))[^\s'\x22]+",
                1,
            ),
            rule(
                "assignment",
                r#"(?i)(\b[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|accountkey|sharedaccesskey|credentials?|auth[_\-]?key)[A-Za-z0-9_.\-]*\x22?\s*(?:=|:|=>)\s*)("[^"\n]{3,200}"|'[^'\n]{3,200}'|[^\s,;'"]{3,})"#,
                1,
            ),
        ]
    })
}

/// The text with every secret found replaced, and how many were replaced.
pub fn redact(text: &str) -> (String, usize) {
    let mut current: Cow<'_, str> = Cow::Borrowed(text);
    let mut count = 0;
    for rule in rules() {
        if !rule.pattern.is_match(&current) {
            continue;
        }
        let replaced = rule.pattern.replace_all(&current, |caps: &Captures<'_>| {
            let prefix: String = (1..=rule.keep_prefix_groups)
                .filter_map(|group| caps.get(group).map(|m| m.as_str()))
                .collect();
            // A value that is already a redaction (or a reference to a variable) stays.
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let value = &whole[prefix.len().min(whole.len())..];
            if value.starts_with("[REDACTED") || is_placeholder(value) {
                return whole.to_string();
            }
            count += 1;
            format!("{prefix}[REDACTED:{}]", rule.kind)
        });
        current = Cow::Owned(replaced.into_owned());
    }
    (current.into_owned(), count)
}

/// Each line with every secret found replaced. Most lines hold none, so every rule looks at
/// all of them together first, and the lines are redacted one by one only when one matches
/// there. (A rule that matches a line also matches the lines joined: no rule is anchored to a
/// line's start or end, and a word boundary sees the newline between two lines as it sees the
/// ends of a text.)
pub fn redact_lines(lines: Vec<String>) -> Vec<String> {
    let joined = lines.join("\n");
    if !rules().iter().any(|rule| rule.pattern.is_match(&joined)) {
        return lines;
    }
    lines.into_iter().map(|line| redact(&line).0).collect()
}

/// `$TOKEN`, `${{ secrets.X }}`, `***` (already masked by the CI), `<token>`: not secrets.
fn is_placeholder(value: &str) -> bool {
    let value = value.trim_matches(['"', '\'']);
    value.starts_with('$')
        || value.starts_with("${")
        || value.chars().all(|c| c == '*')
        || (value.starts_with('<') && value.ends_with('>'))
        || value.starts_with("[MASKED]")
}

#[cfg(test)]
mod tests {
    use super::{redact, redact_lines};

    /// Secret forms seen in CI logs: each is embedded in ordinary text, which must survive.
    const SECRETS: &[&str] = &[
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAY34FZKBOKMUTVV7A",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghs_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "glrt-2CR8_eVxiioB1QmzPZwa",
        "GR1348941aBcDeFgHiJkLmNoPqRsTu",
        "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "//registry.npmjs.org/:_authToken=npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "pypi-AgEIcHlwaS5vcmcCJDUwNzM1ZTYyLWIwMjQtNGE2NS1hZjI5LWQ4ZmI1YzY4ZWQzNgACJXsicGVybWlzc2lvbnMiOiAidXNlciIsICJ2ZXJzaW9uIjogMX0",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-123456789012-123456789012-123456789012-abcdef0123456789abcdef0123456789",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq4vBnAyZ1\nabcdef==\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
        "password=hunter2hunter2",
        "DB_PASSWORD: 'correct horse'",
        "token=abcdef123456",
        "\"client_secret\": \"s3cr3t-value-here\"",
        "API_KEY=9f8e7d6c5b4a",
        "Authorization: Bearer abcdef0123456789abcdef",
        "Authorization: Basic dXNlcjpwYXNzd29yZA==",
        "authorization: token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
        "PRIVATE-TOKEN: glpat-abcdefghijklmnopqrst",
        "https://oauth2:glpat-abcdefghijklmnopqrst@gitlab.com/group/app.git",
        "https://x-access-token:ghs_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
        "postgres://admin:s3cretPass@db.internal:5432/app",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "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",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "hvs.CAESIJlU9JMYEhOPYv4igdhm9PnK",
        "docker login -u ci registry.example.com --password s3cr3tpassw0rd",
        "dckr_pat_abcdefghijklmnopqrstuvwxyz0",
        "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123def456ghi789==;",
    ];

    fn secret_part(secret: &str) -> &str {
        // The part that must disappear: the user and password of a URL; after the name for
        // assignments and headers.
        if let Some((_, rest)) = secret.split_once("://")
            && let Some((credentials, _)) = rest.split_once('@')
        {
            return credentials;
        }
        for separator in ["=", ": ", ":"] {
            if let Some((name, value)) = secret.split_once(separator)
                && !name.contains("://")
                && !name.contains(' ')
                && !value.starts_with("//")
            {
                return value.trim_matches(['"', '\'', ' ']);
            }
        }
        secret
    }

    #[test]
    fn no_secret_survives_and_the_text_around_it_does() {
        assert!(SECRETS.len() >= 30);
        for secret in SECRETS {
            let text = format!("step 3 output: {secret} (done)\nnext line stays");
            let (redacted, count) = redact(&text);
            assert!(count >= 1, "nothing redacted in {text:?}");
            let part = secret_part(secret);
            let tail: String = part.chars().rev().take(12).collect::<String>();
            let tail: String = tail.chars().rev().collect();
            assert!(
                !redacted.contains(&tail),
                "{secret:?} survived as {redacted:?}"
            );
            assert!(redacted.starts_with("step 3 output: "), "{redacted:?}");
            assert!(redacted.ends_with("\nnext line stays"), "{redacted:?}");
            assert!(redacted.contains("[REDACTED:"), "{redacted:?}");
        }
    }

    #[test]
    fn ordinary_log_lines_are_left_alone() {
        for line in [
            "Tests run: 12, Failures: 1, Errors: 0, Skipped: 0",
            "error: expected `;`, found `}` at src/main.rs:10:5",
            "Downloading https://repo1.maven.org/maven2/org/slf4j/slf4j-api/1.7.36/x.pom",
            "git clone https://github.com/octo/repo.git",
            "The token was rejected by the server",
            "export TOKEN=$CI_JOB_TOKEN",
            "password: ****",
            "Authorization: Bearer ***",
        ] {
            let (redacted, count) = redact(line);
            assert_eq!((redacted.as_str(), count), (line, 0));
        }
    }

    #[test]
    fn lines_redacted_together_are_redacted_as_each_alone() {
        let ordinary = [
            "FAILED tests/test_api.py::test_login",
            "make: *** [all] Error 2",
        ];
        // Secrets among ordinary lines, and ordinary lines alone (left as they are).
        for secret in SECRETS.iter().chain([&""]) {
            let lines: Vec<String> = [ordinary[0], secret, ordinary[1]]
                .iter()
                .filter(|line| !line.is_empty())
                .map(|line| format!("output: {line} (done)"))
                .collect();
            let one_by_one: Vec<String> = lines.iter().map(|line| redact(line).0).collect();
            assert_eq!(redact_lines(lines), one_by_one, "{secret:?}");
        }
    }
}
