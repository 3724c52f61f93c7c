//! Service models: each service's records laid out over MVCC storage keys,
//! under that record's route key (ARCHITECTURE.md §4).

pub mod redis;
