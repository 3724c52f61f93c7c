//! Errors of the Redis data model.

use crate::txn::TxnError;

/// What a model operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The key holds another type.
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// A stored record does not decode: names the Redis key.
    #[error("corrupt record of redis key {key}: {detail}")]
    Corrupt { key: String, detail: String },
    /// The transaction below failed (conflict, unavailability, storage).
    #[error(transparent)]
    Txn(#[from] TxnError),
}

impl ModelError {
    pub fn corrupt(key: &[u8], detail: &str) -> ModelError {
        ModelError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            detail: detail.to_string(),
        }
    }
}
