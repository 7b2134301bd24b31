//! Secrets out of everything derived from a job log before it is stored, shown or sent to an
//! LLM: cloud keys, forge, chat, registry, payment and AI-provider tokens, JWTs, private-key
//! blocks, `password=`-style assignments, password arguments of commands, Authorization and
//! cookie headers and credentials in URLs are replaced by `[REDACTED:<kind>]`; the text around
//! them is kept.
//!
//! Redaction is structural: text that leaves the triage is a [`Redacted`], and the only ways to
//! make one redact (reading one back from storage redacts again, so a rule added later also
//! covers what was stored before it).

use regex::{Captures, Regex};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::OnceLock;

/// Text with every secret the rules know replaced. Built only by [`Redacted::new`] and
/// [`Redacted::lines`] (and by deserialising, which redacts too), so a field of this type
/// cannot hold a secret the rules find.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(text: &str) -> Self {
        Redacted(redact(text).0)
    }

    /// Each text redacted; cheaper than one by one when few hold a secret (see
    /// [`redact_lines`]).
    pub fn lines(texts: Vec<String>) -> Vec<Self> {
        redact_lines(texts).into_iter().map(Redacted).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Redacted {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Redacted {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Redacted {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Redacted {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<'de> Deserialize<'de> for Redacted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Redacted::new(&text))
    }
}

struct Rule {
    kind: &'static str,
    /// The secret is the `secret` group where the pattern has one (the text around it, such
    /// as a header's or variable's name, stays), else the whole match.
    pattern: Regex,
    /// A check a match must also pass (for shapes a regular expression alone would over-match).
    accept: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

/// A bare AWS secret access key: 40 characters of base64 with upper and lower case letters
/// and a digit, and at most three slashes (a path has more). A 40-character hex string is a
/// commit hash, not a key.
fn looks_like_aws_secret(candidate: &str) -> bool {
    let bytes = candidate.as_bytes();
    bytes.len() == 40
        && bytes.iter().any(u8::is_ascii_uppercase)
        && bytes.iter().filter(|b| b.is_ascii_lowercase()).count() >= 2
        && bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().filter(|&&b| b == b'/').count() <= 3
        && !bytes.iter().all(u8::is_ascii_hexdigit)
}

fn rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let checked = |kind, pattern: &str, accept: fn(&str) -> bool| Rule {
            kind,
            // Word boundaries are ASCII ones: secrets are ASCII, and a Unicode boundary keeps
            // the regex engine from its fast DFA (an ASCII boundary also redacts a token glued
            // to a non-ASCII letter, which a Unicode one would leave).
            #[allow(clippy::expect_used)]
            pattern: Regex::new(&pattern.replace(r"\b", r"(?-u:\b)"))
                .expect("the redaction patterns are valid"),
            accept,
        };
        let rule = |kind, pattern: &str| checked(kind, pattern, any);
        vec![
            rule(
                "private-key",
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
            ),
            rule(
                "url-credentials",
                r"(?i)[a-z][a-z0-9+.\-]*://(?P<secret>[^/\s:@]+:[^/\s@]+)@",
            ),
            rule(
                "sentry-dsn",
                r"(?i)https?://(?P<secret>[0-9a-f]{32})@[a-z0-9.\-]*sentry",
            ),
            rule(
                "authorization",
                r"(?i)(?:proxy-)?authorization\s*[:=]\s*(?:(?:bearer|basic|token|digest|bot|negotiate|aws4-hmac-sha256)\s+)?(?P<secret>[^\s'\x22,;]+)",
            ),
            rule(
                "token-header",
                r"(?i)(?:private-token|job-token|deploy-token|x-api-key|x-auth-token|x-gitlab-token|x-access-token|x-vault-token|x-jfrog-art-api|x-api-token|api-key|apikey)\s*:\s*(?P<secret>[^\s'\x22,;]+)",
            ),
            rule("cookie", r"(?i)\b(?:set-)?cookie\s*:\s*(?P<secret>[^\s'\x22][^\r\n'\x22]*)"),
            rule("bearer", r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/=\-]{8,})"),
            rule(
                "jwt",
                r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
            ),
            rule(
                "aws-access-key",
                r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b",
            ),
            rule(
                "github-token",
                r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})",
            ),
            rule(
                "gitlab-token",
                r"\b(?:glpat|gldt|glrt|glcbt|glptt|glft|glimt|glagent|glsoat|gloas|glffct)-[A-Za-z0-9_\-]{20,}|\bGR1348941[A-Za-z0-9_\-]{20,}",
            ),
            rule("bitbucket-token", r"\bATBB[A-Za-z0-9]{32}|\bATATT3[A-Za-z0-9_\-=]{40,}"),
            rule("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
            rule("pypi-token", r"\bpypi-AgE[A-Za-z0-9_\-]{40,}"),
            rule("nuget-key", r"\boy2[a-z0-9]{43}\b"),
            rule("rubygems-key", r"\brubygems_[a-f0-9]{48}\b"),
            rule("crates-io-token", r"\bcio[A-Za-z0-9]{32}\b"),
            rule("jfrog-token", r"\bAKCp[A-Za-z0-9]{60,}|\bcmVmdGtuOjAxOj[A-Za-z0-9+/=]{20,}"),
            rule("slack-token", r"\bxox[abposre]-[A-Za-z0-9\-]{10,}|\bxapp-\d-[A-Za-z0-9\-]{10,}"),
            rule(
                "chat-webhook",
                r"(?i)https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+|(?:discord|discordapp)\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+|[a-z0-9\-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_\-]+|chat\.googleapis\.com/v1/spaces/[^\s'\x22]+)",
            ),
            rule("telegram-bot-token", r"\b\d{8,10}:AA[A-Za-z0-9_\-]{33}\b"),
            rule(
                "discord-bot-token",
                r"\b[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}\b",
            ),
            rule("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}"),
            rule("google-oauth-secret", r"\bGOCSPX-[A-Za-z0-9_\-]{28}"),
            rule("google-oauth-token", r"\bya29\.[A-Za-z0-9_\-]{30,}"),
            rule("azure-sas-signature", r"(?i)[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})"),
            rule(
                "azure-client-secret",
                r"\b[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}",
            ),
            rule("alibaba-access-key", r"\bLTAI[A-Za-z0-9]{12,20}\b"),
            rule(
                "stripe-key",
                r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}|\bwhsec_[A-Za-z0-9]{24,}",
            ),
            rule("square-token", r"\b(?:sq0atp|sq0csp)-[A-Za-z0-9_\-]{22,}|\bEAAA[A-Za-z0-9_\-]{60}"),
            rule(
                "braintree-token",
                r"\baccess_token\$(?:production|sandbox)\$[a-z0-9]{16}\$[a-f0-9]{32}",
            ),
            rule("shopify-token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
            rule(
                "sendgrid-key",
                r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
            ),
            rule("twilio-key", r"\bSK[0-9a-fA-F]{32}\b"),
            rule("mailgun-key", r"\bkey-[0-9a-zA-Z]{32}\b"),
            rule("mailchimp-key", r"\b[0-9a-f]{32}-us\d{1,2}\b"),
            rule("newrelic-key", r"\bNR(?:AK|AA|II)-[A-Za-z0-9]{27}\b"),
            rule("openai-key", r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
            rule("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}\b"),
            rule("groq-key", r"\bgsk_[A-Za-z0-9]{40,}\b"),
            rule("replicate-token", r"\br8_[A-Za-z0-9]{30,}\b"),
            rule("digitalocean-token", r"\bdo[opr]_v1_[a-f0-9]{64}\b"),
            rule("vault-token", r"\bhv[sbr]\.[A-Za-z0-9_\-]{24,}"),
            rule(
                "terraform-cloud-token",
                r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-=]{40,}",
            ),
            rule("doppler-token", r"\bdp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,}"),
            rule("pulumi-token", r"\bpul-[a-f0-9]{40}\b"),
            rule("databricks-token", r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
            rule("grafana-token", r"\bgl(?:c|sa)_[A-Za-z0-9+/_\-]{32,}=*"),
            rule("linear-key", r"\blin_api_[A-Za-z0-9]{40}\b"),
            rule("postman-key", r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),
            rule("supabase-token", r"\bsbp_[a-f0-9]{40}\b"),
            rule("sonarqube-token", r"\bsq[upa]_[a-f0-9]{40}\b"),
            rule("docker-hub-token", r"\bdckr_pat_[A-Za-z0-9_\-]{20,}"),
            rule("age-secret-key", r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b"),
            rule(
                "password-flag",
                r"(?i)(?:^|\s)--?(?:[a-z]+-)*(?:password|passwd|passphrase|token|api-?key|secret|secret-key|access-key|auth-token|storepass|keypass)(?:=|[ \t]+)['\x22]?(?P<secret>[^\s'\x22\-][^\s'\x22]*)",
            ),
            rule(
                "login-password-argument",
                r"(?i)\b(?:docker|podman|buildah|nerdctl|helm|skopeo|oras|crane|cf|oc)\b[^\n]*?\blogin\b[^\n]*?[ \t]-p(?:=|[ \t]+)['\x22]?(?P<secret>[^\s'\x22]+)",
            ),
            rule(
                "mysql-password-argument",
                r"\bmysql(?:dump|admin|sh|import)?\b[^\n]*?[ \t]-p(?P<secret>[^\s'\x22]+)",
            ),
            rule(
                "user-password-argument",
                r"(?i)\b(?:curl|wget|svn|sshpass)\b[^\n]*?[ \t](?:-u|--user)(?:=|[ \t]*)['\x22]?[^\s:'\x22]+:(?P<secret>[^\s'\x22]+)",
            ),
            rule(
                "assignment",
                r#"(?i)\b[A-Za-z0-9_.\-]*(?:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|accountkey|sharedaccesskey|credentials?|auth[_\-]?key|_auth|sonar\.login)[A-Za-z0-9_.\-]*\x22?\s*(?:=|:|=>)\s*(?P<secret>"[^"\n]{3,200}"|'[^'\n]{3,200}'|[^\s,;'"]{3,})"#,
            ),
            checked(
                "aws-secret-key",
                r"[A-Za-z0-9/+]{40,}",
                looks_like_aws_secret,
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
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let Some(secret) = caps.name("secret").or_else(|| caps.get(0)) else {
                return whole.to_string();
            };
            // A value that is already a redaction (or a reference to a variable) stays.
            if is_placeholder(secret.as_str()) || !(rule.accept)(secret.as_str()) {
                return whole.to_string();
            }
            count += 1;
            let offset = caps.get(0).map_or(0, |m| m.start());
            let (before, after) = (
                &whole[..secret.start() - offset],
                &whole[secret.end() - offset..],
            );
            format!("{before}[REDACTED:{}]{after}", rule.kind)
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
    value.starts_with("[REDACTED")
        || value.starts_with('$')
        || value.starts_with("${")
        || value.chars().all(|c| c == '*')
        || (value.starts_with('<') && value.ends_with('>'))
        || value.starts_with("[MASKED]")
}

#[cfg(test)]
mod tests {
    use super::{Redacted, redact, redact_lines};

    /// Secret forms users' CI logs really contain, as (form, the part that must disappear):
    /// cloud, VCS, chat, package-registry, payment and AI-provider tokens, private keys over
    /// several lines, credentials in URLs, password arguments of commands, cookies and
    /// Authorization headers.
    const SECRET_FORMS: &[(&str, &str)] = &[
        ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        (
            "Zr8+q2nQ1vT5wY7uK3mB9xC4dF6gH0jL2pS5aE8r",
            "Zr8+q2nQ1vT5wY7uK3mB9xC4dF6gH0jL2pS5aE8r",
        ),
        (
            "\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n\"",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ),
        (
            "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",
            "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",
        ),
        (
            "ya29.a0pChYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1",
            "ya29.a0pChYgCfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1",
        ),
        (
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc123def456ghi789==;",
            "abc123def456ghi789==",
        ),
        (
            "https://acct.blob.core.windows.net/c/f.zip?sv=2022-11-02&sr=b&sp=r&sig=AbCdEf0123456789%2BxyzABCDEFGH%3D",
            "AbCdEf0123456789%2BxyzABCDEFGH%3D",
        ),
        (
            "abc8Q~kWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQ",
            "abc8Q~kWvj7FAc9QeWJKY40uvSwMFLZDe1f8rESQ",
        ),
        ("LTAI5tB9xGkq2Wn7mPq3rZ8s", "LTAI5tB9xGkq2Wn7mPq3rZ8s"),
        (
            "dop_v1_219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e",
            "dop_v1_219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e",
        ),
        (
            "ghp_khvMdgaKjIg8xNbe3nNyjOq9wMxEhh2FDEEt",
            "ghp_khvMdgaKjIg8xNbe3nNyjOq9wMxEhh2FDEEt",
        ),
        (
            "gho_fjgVvVqE1SkHbn88HxjSI6bWHtP3fS2qHx6k",
            "gho_fjgVvVqE1SkHbn88HxjSI6bWHtP3fS2qHx6k",
        ),
        (
            "ghs_wXoIIXGvOoNZYW2mZp0zVZomHFwUbbYrEqmS",
            "ghs_wXoIIXGvOoNZYW2mZp0zVZomHFwUbbYrEqmS",
        ),
        (
            "ghu_M9wCZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6y",
            "ghu_M9wCZ7Uw9xfogoEmvnEN5N1aE6PwZPf1Qh6y",
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
        ),
        ("glpat-YTWmE4lBYOvfZ8UzDzV8", "glpat-YTWmE4lBYOvfZ8UzDzV8"),
        ("glrt-2CR8_eVxiioB1QmzPZwa", "glrt-2CR8_eVxiioB1QmzPZwa"),
        (
            "GR1348941aBcDeFgHiJkLmNoPqRsTu",
            "GR1348941aBcDeFgHiJkLmNoPqRsTu",
        ),
        ("gldt-fUkkibjL5DZPjN0MEQ7w", "gldt-fUkkibjL5DZPjN0MEQ7w"),
        (
            "ATBBjJJibaZUPgHV7iB3m03nbqnsGpWLuqIA",
            "ATBBjJJibaZUPgHV7iB3m03nbqnsGpWLuqIA",
        ),
        (
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "xoxp-123456789012-123456789012-123456789012-abcdef0123456789abcdef0123456789",
            "xoxp-123456789012-123456789012-123456789012-abcdef0123456789abcdef0123456789",
        ),
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/qhT61qtc4xatws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBMptUsGr7CmY_uCu3ZR",
            "https://discord.com/api/webhooks/123456789012345678/qhT61qtc4xatws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBMptUsGr7CmY_uCu3ZR",
        ),
        (
            "https://contoso.webhook.office.com/webhookb2/1234abcd-12ab-34cd-56ef-1234567890ab@abcd1234-ab12-cd34-ef56-abcdef123456/IncomingWebhook/0123456789abcdef0123456789abcdef/abcd1234-ab12-cd34-ef56-abcdef123456",
            "https://contoso.webhook.office.com/webhookb2/1234abcd-12ab-34cd-56ef-1234567890ab@abcd1234-ab12-cd34-ef56-abcdef123456/IncomingWebhook/0123456789abcdef0123456789abcdef/abcd1234-ab12-cd34-ef56-abcdef123456",
        ),
        (
            "https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token=abcdEFGH1234",
            "https://chat.googleapis.com/v1/spaces/AAAA1234/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token=abcdEFGH1234",
        ),
        (
            "123456789:AA1zTOlUcR64cXQLioDnkHIfxIq2HZt-PlJ",
            "123456789:AA1zTOlUcR64cXQLioDnkHIfxIq2HZt-PlJ",
        ),
        (
            "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.dZSlB5er8bOfZqfM2oeq3hDavJA76rNicHTp8h",
            "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.dZSlB5er8bOfZqfM2oeq3hDavJA76rNicHTp8h",
        ),
        (
            "npm_kqdlm7tOtHWnsCGRlrwZbqcabUGJmGEp7CgQ",
            "npm_kqdlm7tOtHWnsCGRlrwZbqcabUGJmGEp7CgQ",
        ),
        (
            "//registry.npmjs.org/:_authToken=npm_0PBQFI14zGtSnovm14TUOizwd1iaeOV4qBkd",
            "npm_0PBQFI14zGtSnovm14TUOizwd1iaeOV4qBkd",
        ),
        (
            "pypi-AgEIcHlwaS5vcmcCJDUwNzM1ZTYyLWIwMjQtNGE2NS1hZjI5LWQ4ZmI1YzY4ZWQzNgACJXsicGVybWlzc2lvbnMiOiAidXNlciIsICJ2ZXJzaW9uIjogMX0",
            "pypi-AgEIcHlwaS5vcmcCJDUwNzM1ZTYyLWIwMjQtNGE2NS1hZjI5LWQ4ZmI1YzY4ZWQzNgACJXsicGVybWlzc2lvbnMiOiAidXNlciIsICJ2ZXJzaW9uIjogMX0",
        ),
        (
            "oy2fy6spsc3lkr2aqxv9upctnwlavyf4r6mp6afqfjzczb",
            "oy2fy6spsc3lkr2aqxv9upctnwlavyf4r6mp6afqfjzczb",
        ),
        (
            "rubygems_99724caf4941d4072014b3ce107f80e222f828767efc2f91",
            "rubygems_99724caf4941d4072014b3ce107f80e222f828767efc2f91",
        ),
        (
            "cioNOPmeMjvqPVStNKiaEdFrRgSnRFsTHsD",
            "cioNOPmeMjvqPVStNKiaEdFrRgSnRFsTHsD",
        ),
        (
            "dckr_pat_77pzNk8cL6j5IXAAjlsHUqJoUD-",
            "dckr_pat_77pzNk8cL6j5IXAAjlsHUqJoUD-",
        ),
        (
            "AKCp54Fzbka8FRCztUjAwyuh1vauWv1zh87mTa5Vsqxezy3Lex7BWr2drgd1QsO7jprBGumXx",
            "AKCp54Fzbka8FRCztUjAwyuh1vauWv1zh87mTa5Vsqxezy3Lex7BWr2drgd1QsO7jprBGumXx",
        ),
        (
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ),
        (
            "whsec_Y9B4bZWOz648JJnUfd7UACNWiP3sFd67",
            "whsec_Y9B4bZWOz648JJnUfd7UACNWiP3sFd67",
        ),
        (
            "sq0atp-qv81RKMGHZEM9YpvujA-C5",
            "sq0atp-qv81RKMGHZEM9YpvujA-C5",
        ),
        (
            "access_token$production$v21i9mpflv9fupxq$60dcd6c8a1f8b46287cced9041dff02c",
            "access_token$production$v21i9mpflv9fupxq$60dcd6c8a1f8b46287cced9041dff02c",
        ),
        (
            "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",
            "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",
        ),
        (
            "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",
            "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",
        ),
        (
            "SKa7f770d9106fd287db7f1adbc60926f6",
            "SKa7f770d9106fd287db7f1adbc60926f6",
        ),
        (
            "key-tX0moDoqW4sg8NFNl5oFA6Qd8Mj7zdnb",
            "key-tX0moDoqW4sg8NFNl5oFA6Qd8Mj7zdnb",
        ),
        (
            "4d115cea325a65e19cbae530282bd36c-us6",
            "4d115cea325a65e19cbae530282bd36c-us6",
        ),
        (
            "NRAK-WT1FD4MX82MUX4B0PZCYC3EDQME",
            "NRAK-WT1FD4MX82MUX4B0PZCYC3EDQME",
        ),
        (
            "sk-proj-RUIQfHOJMaidDn87XG3-q-xbMtEPO6UkzYuF0ie9Pu2njHkA",
            "sk-proj-RUIQfHOJMaidDn87XG3-q-xbMtEPO6UkzYuF0ie9Pu2njHkA",
        ),
        (
            "sk-ant-api03-m1-5wDr16EpLLJIVGHz4FxFEtKyPiYGFDm7ena8D5VfLDpgyyjVw5HanSBeVRsfAGeAbP0VxNjAe-9i0mYtluYI0KN",
            "sk-ant-api03-m1-5wDr16EpLLJIVGHz4FxFEtKyPiYGFDm7ena8D5VfLDpgyyjVw5HanSBeVRsfAGeAbP0VxNjAe-9i0mYtluYI0KN",
        ),
        (
            "hf_A9dtVK4wAAb3XZxPmzUzn8aB5kBh0fzK4x",
            "hf_A9dtVK4wAAb3XZxPmzUzn8aB5kBh0fzK4x",
        ),
        (
            "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",
            "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",
        ),
        (
            "r8_TNS05kOY2oNzN2m1ElKncz8HkywhjpU05mc4J",
            "r8_TNS05kOY2oNzN2m1ElKncz8HkywhjpU05mc4J",
        ),
        (
            "hvs.CAESIJlU9JMYEhOPYv4igdhm9PnK",
            "hvs.CAESIJlU9JMYEhOPYv4igdhm9PnK",
        ),
        (
            "1WRcQ1uhyMDJ2O.atlasv1.N1NF2XV54wca_7E56w8ZniqT3Ul4ffqkOkgWrdioyq_KvCiSGuPJ6sG9AHEOVezxZuJ",
            "1WRcQ1uhyMDJ2O.atlasv1.N1NF2XV54wca_7E56w8ZniqT3Ul4ffqkOkgWrdioyq_KvCiSGuPJ6sG9AHEOVezxZuJ",
        ),
        (
            "dp.pt.Ru5ykYYqhXHdO2x93CJHLS45gqIO2zVZxqyxKjxvWfC",
            "dp.pt.Ru5ykYYqhXHdO2x93CJHLS45gqIO2zVZxqyxKjxvWfC",
        ),
        (
            "pul-751989a01749ddb14f71010b93b7d946bf54074e",
            "pul-751989a01749ddb14f71010b93b7d946bf54074e",
        ),
        (
            "dapi3248c801bef750110c57513064d6d592",
            "dapi3248c801bef750110c57513064d6d592",
        ),
        (
            "glsa_tOd4UYETIay2BV6DfVPClogqoPchv5V7_818d8962",
            "glsa_tOd4UYETIay2BV6DfVPClogqoPchv5V7_818d8962",
        ),
        (
            "lin_api_4Gakq5p1Vm8kV6um4yvMpy62O6SQ1IEE1HSa2bB9",
            "lin_api_4Gakq5p1Vm8kV6um4yvMpy62O6SQ1IEE1HSa2bB9",
        ),
        (
            "PMAK-796c25410335b400141212b6-2c376631129f34369aad80b891baf90d0d",
            "PMAK-796c25410335b400141212b6-2c376631129f34369aad80b891baf90d0d",
        ),
        (
            "sbp_3bf16295d06910bf3f5fb85967f532f3ab3cc2d0",
            "sbp_3bf16295d06910bf3f5fb85967f532f3ab3cc2d0",
        ),
        (
            "squ_b698d5c7e41ba4ea5ee874ae7689447ab57a6835",
            "squ_b698d5c7e41ba4ea5ee874ae7689447ab57a6835",
        ),
        (
            "AGE-SECRET-KEY-1GMYJJTT1RMGGRNY3CAZ1O6S3BJQZAP10OOLH31UQG0PZKQ143B07LUAY5G",
            "AGE-SECRET-KEY-1GMYJJTT1RMGGRNY3CAZ1O6S3BJQZAP10OOLH31UQG0PZKQ143B07LUAY5G",
        ),
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq4vBnAyZ1\nabcdefXYZ0123456==\n-----END RSA PRIVATE KEY-----",
            "abcdefXYZ0123456==",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGVf3x0BCAC5yK2sT9vQ\n=Xy7z\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBGVf3x0BCAC5yK2sT9vQ",
        ),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("DB_PASSWORD: 'correct horse'", "correct horse"),
        ("token=abcdef123456", "abcdef123456"),
        (
            "\"client_secret\": \"s3cr3t-value-here\"",
            "s3cr3t-value-here",
        ),
        ("API_KEY=9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        (
            "Authorization: Bearer abcdef0123456789abcdef",
            "abcdef0123456789abcdef",
        ),
        (
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "dXNlcjpwYXNzd29yZA==",
        ),
        (
            "authorization: token ghp_cqInkTY88mHwg2KDInTEGbOY1xHvAV8DnRlz",
            "ghp_cqInkTY88mHwg2KDInTEGbOY1xHvAV8DnRlz",
        ),
        (
            "PRIVATE-TOKEN: glpat-GW7hUNwOdqryzdaeA6AO",
            "glpat-GW7hUNwOdqryzdaeA6AO",
        ),
        ("JOB-TOKEN: 64_Xy7kLm9PqRs2TuVw", "64_Xy7kLm9PqRs2TuVw"),
        (
            "X-Vault-Token: s.Ab12Cd34Ef56Gh78Ij90Kl12",
            "s.Ab12Cd34Ef56Gh78Ij90Kl12",
        ),
        (
            "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
            "8f14e45fceea167a5a36dedd4bea2543",
        ),
        (
            "Set-Cookie: _gitlab_session=0a1b2c3d4e5f60718293a4b5c6d7e8f9; path=/; HttpOnly",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        ),
        (
            "https://oauth2:glpat-SRwLqgotVz89HoZ9zDnk@gitlab.com/group/app.git",
            "glpat-SRwLqgotVz89HoZ9zDnk",
        ),
        (
            "https://x-access-token:ghs_i7XeZZOmEPJUo09jwQO10Y0ADsWJPiX1EwY2@github.com/o/r",
            "ghs_i7XeZZOmEPJUo09jwQO10Y0ADsWJPiX1EwY2",
        ),
        (
            "postgres://admin:s3cretPass@db.internal:5432/app",
            "s3cretPass",
        ),
        (
            "mongodb+srv://ci:Pa55w0rdX@cluster0.example.net/db",
            "Pa55w0rdX",
        ),
        (
            "https://0123456789abcdef0123456789abcdef@o12345.ingest.sentry.io/678",
            "0123456789abcdef0123456789abcdef",
        ),
        (
            "docker login -u ci -p s3cr3tRegistryPw registry.example.com",
            "s3cr3tRegistryPw",
        ),
        (
            "docker login -u ci registry.example.com --password s3cr3tpassw0rd",
            "s3cr3tpassw0rd",
        ),
        (
            "helm registry login -u bot -p HelmPw12345x oci.example.com",
            "HelmPw12345x",
        ),
        (
            "curl -u deploy:Sup3rS3cretPw https://nexus.example.com/upload",
            "Sup3rS3cretPw",
        ),
        (
            "curl --user=admin:letmein123x https://example.com",
            "letmein123x",
        ),
        ("mysql -u root -pR00tPassw0rd -h db", "R00tPassw0rd"),
        (
            "wget --http-password=WgetPw98765 https://example.com/f",
            "WgetPw98765",
        ),
        (
            "npx release-cli --token abcdef0123456789xyz",
            "abcdef0123456789xyz",
        ),
        (
            "keytool -list -storepass StorePw12345 -keystore ks.jks",
            "StorePw12345",
        ),
        ("mvn deploy -Dsonar.login=loginTok12345 -B", "loginTok12345"),
        ("mvn -Dgpg.passphrase=MyGpgPass1 verify", "MyGpgPass1"),
    ];

    /// Where secrets turn up in a job log: a command line, an error line, an environment dump.
    const PLACES: &[(&str, &str)] = &[
        ("$ ./scripts/deploy.sh --env prod ", " --verbose"),
        ("ERROR: the request with ", " was rejected (HTTP 401)"),
        ("DEPLOY_SETTING=", ""),
    ];

    #[test]
    fn no_secret_form_survives_in_any_place_and_the_text_around_it_does() {
        assert!(SECRET_FORMS.len() >= 60);
        for (form, secret) in SECRET_FORMS {
            for (before, after) in PLACES {
                let text = format!("{before}{form}{after}\nnext line stays");
                let (redacted, count) = redact(&text);
                assert!(count >= 1, "nothing redacted in {text:?}");
                assert!(
                    !redacted.contains(secret),
                    "{secret:?} survived as {redacted:?}"
                );
                assert!(redacted.starts_with(before), "{redacted:?}");
                assert!(redacted.ends_with("\nnext line stays"), "{redacted:?}");
                assert!(redacted.contains("[REDACTED:"), "{redacted:?}");
                assert_eq!(redact(&redacted), (redacted.clone(), 0), "not idempotent");
            }
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
            "HEAD is now at 3f786850e387550fdab836ed7e6dc881de23001b Merge branch 'main'",
            "Checking out 0123456789abcdef0123456789abcdef01234567 as detached HEAD",
            "$ docker run -u 1000:1000 --rm node:20 npm test",
            "$ mkdir -p build/out && ssh -p 2222 deploy@host true",
            "$ echo \"$PW\" | docker login -u ci --password-stdin registry.example.com",
            "$ psql --no-password -h db -U app",
            "at com/example/project/service/UserService1.run(UserService1.java:42)",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "curl -fsS https://example.com/health",
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
        // Secrets among ordinary lines, and ordinary lines alone (left as they are). Forms over
        // several lines are redacted as one text elsewhere.
        let one_line = SECRET_FORMS
            .iter()
            .map(|(form, _)| *form)
            .filter(|form| !form.contains('\n'));
        for secret in one_line.chain([""]) {
            let lines: Vec<String> = [ordinary[0], secret, ordinary[1]]
                .iter()
                .filter(|line| !line.is_empty())
                .map(|line| format!("output: {line} (done)"))
                .collect();
            let one_by_one: Vec<String> = lines.iter().map(|line| redact(line).0).collect();
            assert_eq!(redact_lines(lines), one_by_one, "{secret:?}");
        }
    }

    #[test]
    fn a_redacted_text_read_back_is_redacted_again() {
        let stored = "\"$ export GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyzAB\"";
        let read: Redacted = serde_json::from_str(stored).expect("a JSON string");
        assert_eq!(read, "$ export GITHUB_TOKEN=[REDACTED:github-token]");
        assert_eq!(
            serde_json::to_string(&read).expect("serialises"),
            "\"$ export GITHUB_TOKEN=[REDACTED:github-token]\""
        );
    }
}
