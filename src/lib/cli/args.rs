//! The command-line grammar (clap derive). Only subcommands that really work
//! are listed; each capability adds its own when it lands.

use clap::{Parser, Subcommand};

/// elastickv: a Raft-replicated, range-sharded MVCC key-value store with a
/// Redis-compatible front end, and the operator toolkit around it.
#[derive(Debug, Parser)]
#[command(name = "elastickv", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to generate completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}
