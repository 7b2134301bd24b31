//! Reading summaries: one query per day of the window (all projects of that day, or a group's,
//! or one project's counters), the kept recent runs of all projects (`recent_runs_item`), and,
//! for a repo with none kept, its newest runs from the by-time index.

use crate::build_item::{Item, text};
use crate::errors::store_error;
use crate::record_store::{DynamoStore, ItemCodec};
use aws_sdk_dynamodb::types::AttributeValue;
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::runs::Pipeline;
use buildlore_core::summary::{
    DayCounters, KeptRecentRuns, KeptRun, ProjectScope, RecentRun, SummarySource,
};
use buildlore_core::table::{BY_REPO_TIME, PARTITION_KEY, SORT_KEY};
use buildlore_core::{Build, RepoPath};
use chrono::NaiveDate;
use std::collections::BTreeMap;

impl DynamoStore {
    async fn newest(&self, partition: String, limit: usize) -> Result<Vec<Item>, StoreError> {
        let output = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(BY_REPO_TIME.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", BY_REPO_TIME.key.partition)
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(store_error)?;
        Ok(output.items.unwrap_or_default())
    }
}

fn day_counters_of(item: &Item, day: NaiveDate) -> Result<DayCounters, StoreError> {
    let repo = RepoPath::parse(text(item, "repo")?)
        .map_err(|_| StoreError::Corrupt("counter item has a bad `repo`".into()))?;
    let counters: BTreeMap<String, i64> = item
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), value.as_n().ok()?.parse().ok()?)))
        .collect();
    Ok(DayCounters {
        day,
        repo,
        counters,
    })
}

impl SummarySource for DynamoStore {
    async fn day_counters(
        &self,
        days: &[NaiveDate],
        scope: &ProjectScope,
    ) -> Result<Vec<DayCounters>, StoreError> {
        let mut all = Vec::new();
        for day in days {
            let mut request = self
                .client()
                .query()
                .table_name(self.table())
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(keys::counters_partition(*day)),
                );
            request = match scope {
                ProjectScope::All => request.key_condition_expression("#pk = :pk"),
                ProjectScope::Group(group) => request
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .expression_attribute_names("#sk", SORT_KEY)
                    .expression_attribute_values(
                        ":prefix",
                        AttributeValue::S(format!("{}/", keys::counters_sort_key(group))),
                    ),
                ProjectScope::Project(repo) => request
                    .key_condition_expression("#pk = :pk AND #sk = :sk")
                    .expression_attribute_names("#sk", SORT_KEY)
                    .expression_attribute_values(
                        ":sk",
                        AttributeValue::S(keys::counters_sort_key(repo)),
                    ),
            };
            for item in crate::pages::every_item(request).await? {
                all.push(day_counters_of(&item, *day)?);
            }
        }
        Ok(all)
    }

    async fn kept_recent_runs(
        &self,
        repos: &[RepoPath],
    ) -> Result<BTreeMap<RepoPath, Vec<RecentRun>>, StoreError> {
        self.read_kept_runs(repos).await
    }

    async fn recent_runs(
        &self,
        repo: &RepoPath,
        limit: usize,
    ) -> Result<Vec<RecentRun>, StoreError> {
        let mut runs = KeptRecentRuns::new(self.history_runs(repo, limit).await?).runs();
        runs.truncate(limit);
        Ok(runs)
    }
}

fn revision_of(item: &Item) -> Result<u64, StoreError> {
    match item.get("revision") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt("run item has a bad `revision`".into())),
        // Not a record written through the record store: any kept state is newer.
        _ => Ok(0),
    }
}

impl DynamoStore {
    /// The newest `limit` pipelines and newest `limit` builds of a repo from the by-time
    /// index (two queries), with the revisions of their records.
    pub(crate) async fn history_runs(
        &self,
        repo: &RepoPath,
        limit: usize,
    ) -> Result<Vec<KeptRun>, StoreError> {
        let mut runs = Vec::new();
        for item in self.newest(keys::pipelines_by_repo(repo), limit).await? {
            runs.push(KeptRun {
                run: RecentRun::of_pipeline(&Pipeline::from_item(&item)?),
                revision: revision_of(&item)?,
            });
        }
        for item in self.newest(keys::builds_by_repo(repo), limit).await? {
            runs.push(KeptRun {
                run: RecentRun::of_build(&Build::from_item(&item)?),
                revision: revision_of(&item)?,
            });
        }
        Ok(runs)
    }
}

impl buildlore_core::details::DetailsSource for DynamoStore {
    async fn resolve_project(
        &self,
        provider: &str,
        project_id: &str,
    ) -> Result<Option<RepoPath>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(
                PARTITION_KEY,
                AttributeValue::S(keys::project_alias(provider, project_id)),
            )
            .key(SORT_KEY, AttributeValue::S("PROJECT".into()))
            .send()
            .await
            .map_err(store_error)?;
        match output.item {
            None => Ok(None),
            Some(item) => RepoPath::parse(text(&item, "repo")?)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("project alias has a bad `repo`".into())),
        }
    }

    async fn pipeline(
        &self,
        repo: &RepoPath,
        provider: &str,
        pipeline_id: &str,
    ) -> Result<Option<Pipeline>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PARTITION_KEY, AttributeValue::S(keys::repo_partition(repo)))
            .key(
                SORT_KEY,
                AttributeValue::S(keys::pipeline_sort_key(provider, pipeline_id)),
            )
            .send()
            .await
            .map_err(store_error)?;
        output.item.as_ref().map(Pipeline::from_item).transpose()
    }

    async fn jobs_of(
        &self,
        repo: &RepoPath,
        provider: &str,
        pipeline_id: &str,
    ) -> Result<Vec<buildlore_core::runs::Job>, StoreError> {
        use buildlore_core::table::BY_BRANCH_TIME;
        let request = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(BY_BRANCH_TIME.name)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", BY_BRANCH_TIME.key.partition)
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::jobs_of_pipeline(provider, repo, pipeline_id)),
            );
        crate::pages::every_item(request)
            .await?
            .iter()
            .map(buildlore_core::runs::Job::from_item)
            .collect()
    }
}

impl DynamoStore {
    /// Items of a by-time index partition first seen since `since`, oldest first.
    async fn since(
        &self,
        partition: String,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Item>, StoreError> {
        let request = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(BY_REPO_TIME.name)
            .key_condition_expression("#pk = :pk AND #sk >= :since")
            .expression_attribute_names("#pk", BY_REPO_TIME.key.partition)
            .expression_attribute_names("#sk", BY_REPO_TIME.key.sort)
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .expression_attribute_values(
                ":since",
                AttributeValue::S(buildlore_core::time::sortable(since)),
            );
        crate::pages::every_item(request).await
    }
}

impl buildlore_core::analysis::AnalysisSource for DynamoStore {
    async fn runs_since(
        &self,
        repo: &RepoPath,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<buildlore_core::analysis::RunPoint>, StoreError> {
        use buildlore_core::analysis::RunPoint;
        let mut runs = Vec::new();
        for item in self.since(keys::builds_by_repo(repo), since).await? {
            let build = Build::from_item(&item)?;
            let finished = build.timestamp
                + chrono::Duration::milliseconds(build.duration_ms.unwrap_or(0) as i64);
            runs.push(RunPoint {
                branch: build.branch,
                sha: build.commit,
                status: build.status,
                at: finished,
            });
        }
        for item in self.since(keys::pipelines_by_repo(repo), since).await? {
            let pipeline = Pipeline::from_item(&item)?;
            runs.push(RunPoint {
                branch: pipeline.git_ref.unwrap_or_else(|| "(none)".into()),
                sha: pipeline.sha,
                status: pipeline.status,
                at: pipeline.finished_at.unwrap_or(pipeline.first_seen),
            });
        }
        runs.sort_by_key(|run| run.at);
        Ok(runs)
    }

    async fn jobs_since(
        &self,
        repo: &RepoPath,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<buildlore_core::analysis::JobPoint>, StoreError> {
        self.since(keys::jobs_by_repo(repo), since)
            .await?
            .iter()
            .map(|item| {
                let job = buildlore_core::runs::Job::from_item(item)?;
                Ok(buildlore_core::analysis::JobPoint {
                    name: job.name,
                    sha: job.sha,
                    status: job.status,
                })
            })
            .collect()
    }
}
