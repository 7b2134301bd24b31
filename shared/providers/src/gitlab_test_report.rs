//! GitLab's parsed test report of a pipeline (`GET /projects/:id/pipelines/:pipeline_id/
//! test_report`), fetched once per finished pipeline when test-report fetching is on.

use crate::{FetchError, Fetched, LogDownload, ProviderClient, percent_encode};
use reqwest::Url;

impl ProviderClient {
    /// The JSON of a pipeline's test report; `project` is a numeric id or a path.
    pub async fn gitlab_pipeline_test_report(
        &self,
        project: &str,
        pipeline_id: &str,
    ) -> Result<Fetched, FetchError> {
        let token = self
            .config
            .gitlab_token
            .clone()
            .ok_or(FetchError::NoToken("GitLab"))?;
        // Pipeline ids are numbers; nothing else goes into the URL.
        if !buildlore_core::job_id::is_provider_job_id(pipeline_id) {
            return Err(FetchError::NotFound);
        }
        let project = percent_encode(project);
        let base = self.config.gitlab_base.as_str().trim_end_matches('/');
        let url = Url::parse(&format!(
            "{base}/api/v4/projects/{project}/pipelines/{pipeline_id}/test_report"
        ))
        .map_err(|e| FetchError::Unavailable(e.to_string()))?;
        let response = self.get(url, Some(("PRIVATE-TOKEN", token))).await?;
        // As large as an uploaded report may be, at most.
        let cap = self
            .config
            .max_bytes
            .min(buildlore_core::junit::MAX_REPORT_BYTES as usize);
        LogDownload::new(response, true, cap).collect().await
    }
}
