//! Where the repository's files (fixtures, scripts, man pages) are, read
//! when the test runs rather than baked in when it was compiled: a test
//! binary reused from a shared target dir (`CARGO_TARGET_DIR` kept between
//! checkouts at different paths) must still find this checkout's files.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root: cargo's runtime `CARGO_MANIFEST_DIR`, or the one
/// this binary was compiled in when run outside cargo.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
