//! Requests to AWS APIs signed by hand with SigV4 (Bedrock's Converse API, Secrets Manager):
//! the SDK's credentials and region, without a whole SDK client per service.

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use reqwest::Url;
use std::time::SystemTime;

/// The headers of a signed `POST url` with `body`: the given headers, `host` and the
/// signature's own. Errors are text for the caller's error type.
pub async fn signed_post_headers(
    credentials: &SharedCredentialsProvider,
    region: &str,
    service: &str,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let credentials = credentials
        .provide_credentials()
        .await
        .map_err(|e| format!("no AWS credentials for {service}: {e}"))?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = url.host_str().unwrap_or_default().to_string();
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let mut signed_headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    signed_headers.extend_from_slice(headers);
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        signed_headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    out.extend(
        instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    Ok(out)
}
