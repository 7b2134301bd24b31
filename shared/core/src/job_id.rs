//! One rule for job ids wherever a job is named — pushed logs, trace parts, `/api/jobtrace`,
//! the analysis routes — so a job stored under an id can always be read back by it.

/// The longest job id, in characters.
pub const MAX_JOB_ID_CHARS: usize = 128;

/// What a job id may be, for error messages.
pub const JOB_ID_RULE: &str = "1 to 128 printable characters, such as 4711";

/// The job id as stored (surrounding white space removed), or `None` when it breaks the rule:
/// empty, longer than 128 characters, or holding control characters.
pub fn parse_job_id(raw: &str) -> Option<String> {
    let id = raw.trim();
    (!id.is_empty() && id.chars().count() <= MAX_JOB_ID_CHARS && !id.chars().any(char::is_control))
        .then(|| id.to_string())
}

/// Whether GitLab or GitHub could know a job by this id: theirs are numbers. Only such ids
/// are ever put into a provider's URL.
pub fn is_provider_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids() {
        assert_eq!(parse_job_id(" 4711 ").as_deref(), Some("4711"));
        assert_eq!(parse_job_id("build#12 α").as_deref(), Some("build#12 α"));
        assert_eq!(
            parse_job_id(&"é".repeat(128)).map(|id| id.chars().count()),
            Some(128)
        );
        assert!(parse_job_id(&"1".repeat(129)).is_none());
        assert!(parse_job_id("  ").is_none());
        assert!(parse_job_id("a\u{0}b").is_none());
        assert!(parse_job_id("a\nb").is_none());
        assert!(is_provider_job_id("4711"));
        assert!(!is_provider_job_id("../4711"));
        assert!(!is_provider_job_id("4711?x=1"));
        assert!(!is_provider_job_id(""));
    }
}
