//! The Redis data model over MVCC storage.
