//! The one DynamoDB table, described once. The bootstrap creates it from this description and
//! a test checks that template.yaml declares the same thing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub partition: &'static str,
    pub sort: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub key: KeySpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    pub key: KeySpec,
    pub indexes: &'static [IndexSpec],
    /// Items with this numeric attribute (epoch seconds) expire.
    pub ttl_attribute: &'static str,
}

pub const PARTITION_KEY: &str = "pk";
pub const SORT_KEY: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Builds of a repo by time.
pub const BY_REPO_TIME: IndexSpec = IndexSpec {
    name: "gsi1",
    key: KeySpec {
        partition: "gsi1pk",
        sort: "gsi1sk",
    },
};

/// Builds of one branch of a repo by time.
pub const BY_BRANCH_TIME: IndexSpec = IndexSpec {
    name: "gsi2",
    key: KeySpec {
        partition: "gsi2pk",
        sort: "gsi2sk",
    },
};

pub const TABLE: TableSpec = TableSpec {
    key: KeySpec {
        partition: PARTITION_KEY,
        sort: SORT_KEY,
    },
    indexes: &[BY_REPO_TIME, BY_BRANCH_TIME],
    ttl_attribute: TTL_ATTRIBUTE,
};

impl TableSpec {
    /// Every attribute used in a key of the table or an index, each once, all strings.
    pub fn key_attributes(&self) -> Vec<(&'static str, KeyType)> {
        let mut names = vec![self.key.partition, self.key.sort];
        for index in self.indexes {
            names.push(index.key.partition);
            names.push(index.key.sort);
        }
        names.dedup();
        names
            .into_iter()
            .map(|name| (name, KeyType::String))
            .collect()
    }
}
