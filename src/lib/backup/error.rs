//! The backup layer's error: one enum wrapping each file's own, so callers
//! (the decoder, encoder and restore CLIs) can match a precise cause or
//! just print it. Every message names the file, line or rule at fault.

use super::checksums::ChecksumError;
use super::filename::FilenameError;
use super::keymap::KeymapError;
use super::manifest::ManifestError;
use super::redis::RedisError;
use super::tree::TreeError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Filename(#[from] FilenameError),
    #[error(transparent)]
    Keymap(#[from] KeymapError),
    #[error(transparent)]
    Checksums(#[from] ChecksumError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Redis(#[from] RedisError),
}
