//! Command-line front: clap definitions, dispatch, exit codes, man pages.
//!
//! The binary (`src/bin/elastickv.rs`) only calls [`main`]. Every subcommand
//! returns `anyhow::Result<ExitCode>`; errors are printed once, to stderr,
//! with their chain of causes, and mapped to a documented exit code.

pub mod args;
pub mod client;
pub mod exit;
pub mod man;
pub mod serve;
pub mod snapshot_decode;
pub mod snapshot_encode;

use clap::{CommandFactory, Parser};

pub use args::{Cli, Command};
pub use exit::ExitCode;

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout and usage errors to stderr.
            let code = if err.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            let _ = err.print();
            return code as i32;
        }
    };
    match run(cli) {
        Ok(code) => code as i32,
        Err(err) => {
            eprintln!("elastickv: {err:#}");
            exit::classify(&err) as i32
        }
    }
}

/// Logs go to stderr; `RUST_LOG` chooses the level (default: info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use args::SnapshotOp;
    match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Status { conn, output } => client::status(&conn, output),
        Command::Kv { conn, op } => client::kv(&conn, &op),
        Command::Cluster { conn, op } => client::cluster(&conn, &op),
        Command::Snapshot {
            op: SnapshotOp::Create { conn },
        } => client::snapshot_create(&conn),
        Command::SnapshotDecode(args) => snapshot_decode::run(&args),
        Command::SnapshotEncode(args) => snapshot_encode::run(&args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let name = cmd.get_name().to_string();
            clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
            Ok(ExitCode::Ok)
        }
    }
}
