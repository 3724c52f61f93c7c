//! Exit codes of every subcommand, documented in `docs/cli.md` and the man
//! pages. Scripts rely on them: never renumber.

/// The process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Success.
    Ok = 0,
    /// The operation ran and failed, or (for `kv get`) the key is absent.
    Failure = 1,
    /// The command line is malformed.
    Usage = 2,
    /// An input file or tree is corrupt, truncated, tampered or foreign.
    CorruptInput = 3,
    /// The output path exists and is not empty.
    OutputExists = 4,
    /// Reading or writing files failed.
    Io = 5,
    /// The cluster could not be reached or refused the call.
    Unavailable = 6,
}

/// Marker errors the subcommands attach so the exit code is chosen by kind,
/// not by parsing messages.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    CorruptInput(String),
    #[error("{0}")]
    OutputExists(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Usage(String),
}

/// Picks the exit code for an error chain.
pub fn classify(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(cli) = cause.downcast_ref::<CliError>() {
            return match cli {
                CliError::CorruptInput(_) => ExitCode::CorruptInput,
                CliError::OutputExists(_) => ExitCode::OutputExists,
                CliError::Unavailable(_) => ExitCode::Unavailable,
                CliError::Usage(_) => ExitCode::Usage,
            };
        }
    }
    if err
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some())
    {
        return ExitCode::Io;
    }
    ExitCode::Failure
}
