//! How many live event streams one API key may hold at once. Streams on Lambda run in
//! separate execution environments, so the count lives in storage: a key has `max` numbered
//! slots, a stream leases a free one for its lifetime and releases it when it ends. A lease
//! also expires by itself, so a stream whose function died frees its slot anyway.

use crate::ports::StoreError;
use chrono::{DateTime, Duration, Utc};
use std::future::Future;

/// Leases of numbered slots.
pub trait SlotLeases: Send + Sync {
    /// Takes slot `slot` of `holder` until `until` unless a lease on it is still running at
    /// `now`: `Ok(false)` then, and nothing changes.
    fn take_slot(
        &self,
        holder: &str,
        slot: u32,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn release_slot(
        &self,
        holder: &str,
        slot: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A slot held by a running stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSlot {
    pub holder: String,
    pub slot: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamSlotError {
    #[error(
        "this key already holds {max} live event streams; close one (or wait up to {retry_after} s for one to end)"
    )]
    AllTaken { max: u32, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Leases the first free of the key's `max` slots for a stream that lasts at most `lifetime`.
pub async fn open_stream<L: SlotLeases>(
    leases: &L,
    key_id: &str,
    max: u32,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<StreamSlot, StreamSlotError> {
    let holder = format!("key#{key_id}");
    // A little past the stream's own end, so a running stream never loses its slot.
    let until = now + lifetime + Duration::seconds(60);
    for slot in 0..max {
        if leases.take_slot(&holder, slot, now, until).await? {
            return Ok(StreamSlot { holder, slot });
        }
    }
    Err(StreamSlotError::AllTaken {
        max,
        retry_after: (lifetime.num_seconds() + 60).max(1) as u64,
    })
}

/// Gives a stream's slot back.
pub async fn close_stream<L: SlotLeases>(leases: &L, slot: &StreamSlot) -> Result<(), StoreError> {
    leases.release_slot(&slot.holder, slot.slot).await
}
