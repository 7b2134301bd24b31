//! A repo's kept recent runs (`REPO#<repo>` / `RECENT_RUNS`): one small item per repo, put in
//! the same transaction as every pipeline or build write that changes it (conditional on the
//! revision it was read at), and read for all of a summary's projects with `BatchGetItem`.

use crate::build_item::{Item, text};
use crate::errors::store_error;
use crate::record_store::DynamoStore;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use buildlore_core::keys;
use buildlore_core::ports::StoreError;
use buildlore_core::record::Record;
use buildlore_core::runs::Pipeline;
use buildlore_core::summary::{KeptRecentRuns, KeptRun, RecentRun};
use buildlore_core::table::{PARTITION_KEY, SORT_KEY};
use buildlore_core::{Build, BuildStatus, RepoPath};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const ENTITY: &str = "recent_runs";
const RUNS: &str = "runs";
/// Incremented by every write, as a record's revision; a write applies only to the one it read.
const REVISION: &str = "revision";
/// Keys one `BatchGetItem` call may ask for.
const BATCH_GET_KEYS: usize = 100;
/// Calls spent on keys DynamoDB left unprocessed (throttling) before giving up.
const BATCH_GET_ROUNDS: u32 = 6;

/// One kept run as stored (JSON in the item's `runs`).
#[derive(Serialize, Deserialize)]
struct StoredRun {
    kind: String,
    id: String,
    provider: Option<String>,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    sha: Option<String>,
    status: BuildStatus,
    created_at: DateTime<Utc>,
    duration_ms: Option<u64>,
    url: Option<String>,
    project_id: Option<String>,
    revision: u64,
}

impl StoredRun {
    fn of(kept: &KeptRun) -> Self {
        let run = &kept.run;
        StoredRun {
            kind: run.kind.to_string(),
            id: run.id.clone(),
            provider: run.provider.clone(),
            git_ref: run.git_ref.clone(),
            sha: run.sha.clone(),
            status: run.status,
            created_at: run.created_at,
            duration_ms: run.duration_ms,
            url: run.url.clone(),
            project_id: run.project_id.clone(),
            revision: kept.revision,
        }
    }

    fn into_kept(self) -> Result<KeptRun, StoreError> {
        let kind = match self.kind.as_str() {
            Pipeline::KIND => Pipeline::KIND,
            Build::KIND => Build::KIND,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "recent runs item holds a run of kind {other:?}"
                )));
            }
        };
        Ok(KeptRun {
            run: RecentRun {
                kind,
                id: self.id,
                provider: self.provider,
                git_ref: self.git_ref,
                sha: self.sha,
                status: self.status,
                created_at: self.created_at,
                duration_ms: self.duration_ms,
                url: self.url,
                project_id: self.project_id,
            },
            revision: self.revision,
        })
    }
}

fn recent_key(repo: &RepoPath) -> Item {
    HashMap::from([
        (
            PARTITION_KEY.to_string(),
            AttributeValue::S(keys::repo_partition(repo)),
        ),
        (
            SORT_KEY.to_string(),
            AttributeValue::S(keys::RECENT_RUNS_SORT_KEY.into()),
        ),
    ])
}

/// The repo, the kept runs and the revision of a recent runs item.
fn decode(item: &Item) -> Result<(RepoPath, KeptRecentRuns, u64), StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("recent runs item has a bad `{what}`"));
    let repo = RepoPath::parse(text(item, "repo")?).map_err(|_| corrupt("repo"))?;
    let stored: Vec<StoredRun> =
        serde_json::from_str(text(item, RUNS)?).map_err(|_| corrupt(RUNS))?;
    let revision = match item.get(REVISION) {
        Some(AttributeValue::N(n)) => n.parse().map_err(|_| corrupt(REVISION))?,
        _ => return Err(corrupt(REVISION)),
    };
    let runs = stored
        .into_iter()
        .map(StoredRun::into_kept)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((repo, KeptRecentRuns::new(runs), revision))
}

impl DynamoStore {
    /// The repo's kept runs and their revision, read consistently; `None` when nothing is kept
    /// (no run recorded since they are kept).
    async fn read_kept(
        &self,
        repo: &RepoPath,
    ) -> Result<Option<(KeptRecentRuns, u64)>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(recent_key(repo)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        output
            .item
            .as_ref()
            .map(|item| decode(item).map(|(_, runs, revision)| (runs, revision)))
            .transpose()
    }

    /// The put of `runs` as the repo's kept runs, if the item is still at `revision` (still
    /// absent for `None`); a concurrent writer makes the transaction fail on this item.
    fn kept_put(
        &self,
        repo: &RepoPath,
        runs: &KeptRecentRuns,
        revision: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let stored: Vec<StoredRun> = runs.kept().iter().map(StoredRun::of).collect();
        let json = serde_json::to_string(&stored).map_err(|e| StoreError::Failed(e.to_string()))?;
        let mut item = recent_key(repo);
        item.insert("entity".into(), AttributeValue::S(ENTITY.into()));
        item.insert("repo".into(), AttributeValue::S(repo.to_string()));
        item.insert(RUNS.into(), AttributeValue::S(json));
        let next = revision.map_or(1, |v| v + 1);
        item.insert(REVISION.into(), AttributeValue::N(next.to_string()));
        let put = Put::builder().table_name(self.table()).set_item(Some(item));
        let put = match revision {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY),
            Some(revision) => put
                .condition_expression("#revision = :revision")
                .expression_attribute_names("#revision", REVISION)
                .expression_attribute_values(":revision", AttributeValue::N(revision.to_string())),
        };
        let put = put.build().map_err(|e| StoreError::Failed(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// What writing `record` at `revision` does to its repo's kept runs: the conditional put
    /// to add to the record's transaction, or `None` when they do not change (not a run, an
    /// older state, or older than every kept run). The first run kept for a repo starts from
    /// the repo's history, so runs recorded before runs were kept still show.
    pub(crate) async fn kept_runs_update<R: Record>(
        &self,
        record: &R,
        revision: u64,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        let Some(run) = record.recent_run() else {
            return Ok(None);
        };
        let repo = record.repo();
        match self.read_kept(repo).await? {
            Some((mut runs, item_revision)) => {
                if runs.apply(run, revision) {
                    self.kept_put(repo, &runs, Some(item_revision)).map(Some)
                } else {
                    Ok(None)
                }
            }
            None => {
                let mut runs = KeptRecentRuns::new(
                    self.history_runs(repo, buildlore_core::summary::RECENT_RUNS)
                        .await?,
                );
                runs.apply(run, revision);
                self.kept_put(repo, &runs, None).map(Some)
            }
        }
    }

    /// The kept runs of each of `repos` that has them, newest first; runs of records past
    /// the retention (their items may linger until TTL removes them) are left out.
    pub(crate) async fn read_kept_runs(
        &self,
        repos: &[RepoPath],
    ) -> Result<BTreeMap<RepoPath, Vec<RecentRun>>, StoreError> {
        let now = Utc::now();
        let retained = |run: &RecentRun| {
            self.retention()
                .is_none_or(|retention| run.created_at + retention > now)
        };
        let mut kept = BTreeMap::new();
        for chunk in repos.chunks(BATCH_GET_KEYS) {
            let mut wanted: Vec<Item> = chunk.iter().map(recent_key).collect();
            let mut round = 0;
            while !wanted.is_empty() {
                round += 1;
                if round > BATCH_GET_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "recent runs kept being left unprocessed (throttled)".into(),
                    ));
                }
                if round > 1 {
                    let backoff = 20 * 2u64.pow(round - 2);
                    tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                }
                let keys = KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                let output = self
                    .client()
                    .batch_get_item()
                    .request_items(self.table(), keys)
                    .send()
                    .await
                    .map_err(store_error)?;
                let items = output
                    .responses
                    .and_then(|mut responses| responses.remove(self.table()))
                    .unwrap_or_default();
                for item in &items {
                    let (repo, runs, _) = decode(item)?;
                    let mut runs = runs.runs();
                    runs.retain(|run| retained(run));
                    kept.insert(repo, runs);
                }
                wanted = output
                    .unprocessed_keys
                    .and_then(|mut unprocessed| unprocessed.remove(self.table()))
                    .map(|left| left.keys)
                    .unwrap_or_default();
            }
        }
        Ok(kept)
    }
}
