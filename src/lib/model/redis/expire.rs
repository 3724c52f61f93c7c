//! Active expiry: removes the rows left behind by expired keys.
//!
//! An expired key is already invisible (its META row's version carries the
//! deadline), so expiry needs no timer for correctness; this only reclaims
//! the member rows of expired collections. It scans the namespace in
//! bounded pages, each page one transaction, retried on conflict by the
//! caller's next run.

use super::db::Db;
use super::error::ModelError;
use crate::txn::{KvBackend, Txn, TxnError};

/// What one page of active expiry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryPage {
    /// Keys whose leftover rows were removed.
    pub removed: u64,
    /// Where the next page starts (None: the namespace is done).
    pub resume: Option<Vec<u8>>,
}

/// Runs one page of at most `budget` keys from `resume` (None = start).
/// A conflicting concurrent write makes this page a no-op (the error is
/// returned); calling again with the same `resume` retries it.
pub async fn expire_page<B: KvBackend>(
    backend: &B,
    resume: Option<&[u8]>,
    budget: usize,
) -> Result<ExpiryPage, ModelError> {
    let mut txn = Txn::begin(backend).await?;
    let (removed, resume) = Db::new(&mut txn).purge_expired(resume, budget.max(1))?;
    txn.commit()
        .await
        .map_err(|e: TxnError| ModelError::Txn(e))?;
    Ok(ExpiryPage { removed, resume })
}

/// Runs pages until the whole namespace was visited; returns keys removed.
pub async fn expire_all<B: KvBackend>(backend: &B, page: usize) -> Result<u64, ModelError> {
    let mut resume: Option<Vec<u8>> = None;
    let mut total = 0;
    loop {
        let done = expire_page(backend, resume.as_deref(), page).await?;
        total += done.removed;
        match done.resume {
            Some(next) => resume = Some(next),
            None => return Ok(total),
        }
    }
}
