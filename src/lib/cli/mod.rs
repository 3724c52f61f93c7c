//! Command-line front: clap definitions, dispatch and exit codes.

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    0
}
