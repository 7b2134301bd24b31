//! User avatars for the dashboard (gitlab-summary's `/api/avatar?url=`): fetched from the
//! configured GitLab host and the well-known avatar hosts only, so a page needs no request to
//! another origin and the service cannot be turned into an open proxy.

use reqwest::Url;
use std::time::Duration;

/// The hosts avatars come from besides the configured GitLab: Gravatar (GitLab's default)
/// and GitHub's.
pub const DEFAULT_AVATAR_HOSTS: &[&str] = &[
    "www.gravatar.com",
    "secure.gravatar.com",
    "gravatar.com",
    "avatars.githubusercontent.com",
];

/// The largest avatar served.
pub const MAX_AVATAR_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AvatarError {
    #[error("`url` must be an absolute http(s) URL")]
    NotAUrl,
    #[error("avatars are served only from {0}")]
    HostNotAllowed(String),
    #[error("the avatar host answered {0}")]
    Upstream(String),
    #[error("the avatar is not an image (PNG, JPEG, GIF or WebP)")]
    NotAnImage,
    #[error("the avatar is larger than {MAX_AVATAR_BYTES} bytes")]
    TooLarge,
}

#[derive(Debug, Clone)]
pub struct AvatarClient {
    http: reqwest::Client,
    hosts: Vec<String>,
    /// Plain http is allowed only to these (a test's loopback server); everything else is
    /// fetched over https, Gravatar's http links included.
    plain_http_hosts: Vec<String>,
}

/// An avatar: its content type and bytes.
pub struct Avatar {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl AvatarClient {
    /// `hosts` are exact host names (with `:port` where not the default).
    pub fn new(hosts: Vec<String>, plain_http_hosts: Vec<String>) -> Result<Self, AvatarError> {
        crate::install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| AvatarError::Upstream(crate::without_url(e)))?;
        Ok(AvatarClient {
            http,
            hosts,
            plain_http_hosts,
        })
    }

    /// The URL to fetch, if `raw` names an allowed host: https, no credentials.
    pub fn allowed_url(&self, raw: &str) -> Result<Url, AvatarError> {
        let mut url = Url::parse(raw.trim()).map_err(|_| AvatarError::NotAUrl)?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(AvatarError::NotAUrl);
        }
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err(AvatarError::NotAUrl),
        };
        if !self
            .hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&host))
        {
            return Err(AvatarError::HostNotAllowed(self.hosts.join(", ")));
        }
        if url.scheme() == "http" && !self.plain_http_hosts.contains(&host) {
            url.set_scheme("https").map_err(|()| AvatarError::NotAUrl)?;
        }
        Ok(url)
    }

    pub async fn fetch(&self, raw: &str) -> Result<Avatar, AvatarError> {
        let url = self.allowed_url(raw)?;
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AvatarError::Upstream(e.without_url().to_string()))?;
        if !response.status().is_success() {
            // Redirects included: they are not followed.
            return Err(AvatarError::Upstream(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        // SVG can carry script: not served.
        if !matches!(
            content_type.as_str(),
            "image/png" | "image/jpeg" | "image/gif" | "image/webp"
        ) {
            return Err(AvatarError::NotAnImage);
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_AVATAR_BYTES as u64)
        {
            return Err(AvatarError::TooLarge);
        }
        let mut bytes = Vec::new();
        while let Some(piece) = response
            .chunk()
            .await
            .map_err(|e| AvatarError::Upstream(e.without_url().to_string()))?
        {
            if bytes.len() + piece.len() > MAX_AVATAR_BYTES {
                return Err(AvatarError::TooLarge);
            }
            bytes.extend_from_slice(&piece);
        }
        Ok(Avatar {
            content_type,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> AvatarClient {
        let mut hosts: Vec<String> = DEFAULT_AVATAR_HOSTS.iter().map(|h| h.to_string()).collect();
        hosts.push("gitlab.example.com".into());
        AvatarClient::new(hosts, Vec::new()).unwrap()
    }

    #[test]
    fn only_allowed_hosts_over_https_without_credentials() {
        let client = client();
        assert_eq!(
            client
                .allowed_url("http://www.gravatar.com/avatar/e32bd13e?s=80&d=identicon")
                .unwrap()
                .as_str(),
            "https://www.gravatar.com/avatar/e32bd13e?s=80&d=identicon"
        );
        assert!(
            client
                .allowed_url("https://gitlab.example.com/uploads/-/system/user/avatar/1/a.png")
                .is_ok()
        );
        for bad in [
            "https://evil.example/a.png",
            "https://www.gravatar.com.evil.example/a.png",
            "https://user:pw@www.gravatar.com/a.png",
            "file:///etc/passwd",
            "https://127.0.0.1/a.png",
            "https://gitlab.example.com:8443/a.png",
            "not a url",
        ] {
            assert!(client.allowed_url(bad).is_err(), "{bad}");
        }
    }
}
