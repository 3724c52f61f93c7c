//! `elastickv snapshot-encode`: a logical backup tree → a `.fsm` snapshot a
//! fresh node can start from (`serve --restore-from`). Wires the Redis
//! encoder of the model into the backup layer's orchestration, shows a
//! progress spinner only when stderr is a terminal, prints a summary (text
//! or JSON) on stdout and maps failures to the documented exit codes.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::args::{OutputFormat, SnapshotEncodeArgs};
use super::exit::{CliError, ExitCode};
use crate::backup::encode::{
    self, EncodeError, EncodeErrorKind, EncodeOptions, EncodeSummary, ProgressEvent, ServiceEncoder,
};
use crate::clock::physical_ms;
use crate::model::redis::backup_encode::RedisEncoder;

/// Classifies an encoder error for [`super::exit::classify`].
fn classified(err: EncodeError) -> anyhow::Error {
    let message = err.to_string();
    match err.kind() {
        EncodeErrorKind::Usage => CliError::Usage(message).into(),
        EncodeErrorKind::CorruptInput => CliError::CorruptInput(message).into(),
        EncodeErrorKind::OutputExists => CliError::OutputExists(message).into(),
        EncodeErrorKind::Io => anyhow::Error::new(std::io::Error::other(message)),
        EncodeErrorKind::Failure => anyhow::Error::new(err),
    }
}

pub fn run(args: &SnapshotEncodeArgs) -> anyhow::Result<ExitCode> {
    let mut options = EncodeOptions::new(&args.input, &args.output);
    options.cluster_id = args.cluster_id.clone();
    options.group_id = args.group;
    options.self_test = args.self_test;
    options.memory_budget = args.sort_memory_mib.max(1) << 20;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("verifying the tree");
        bar
    });
    let progress = |event: ProgressEvent| {
        let Some(bar) = &bar else { return };
        match event {
            ProgressEvent::Verified { files, bytes } => bar.set_message(format!(
                "verified {files} files ({bytes} bytes); reading records"
            )),
            ProgressEvent::Records(n) => bar.set_message(format!("{n} records read")),
            ProgressEvent::Writing => bar.set_message("writing the snapshot"),
            ProgressEvent::SelfTest => bar.set_message("self-test: decoding and comparing"),
        }
    };
    let redis = RedisEncoder;
    let services: [&dyn ServiceEncoder; 1] = [&redis];
    let result = encode::encode(&options, &services, &progress);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let summary = result.map_err(classified)?;
    let mut out = std::io::stdout().lock();
    match args.output_format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &summary_json(&summary))?;
            writeln!(out)?;
        }
        OutputFormat::Text => write_text(&mut out, &summary)?,
    }
    Ok(ExitCode::Ok)
}

fn summary_json(summary: &EncodeSummary) -> serde_json::Value {
    let records: serde_json::Map<String, serde_json::Value> = summary
        .records
        .iter()
        .map(|((service, kind), n)| (format!("{service}.{kind}"), (*n).into()))
        .collect();
    serde_json::json!({
        "output": summary.output.display().to_string(),
        "cluster_id": summary.header.cluster_id,
        "group_id": summary.header.group_id,
        "index": summary.header.index,
        "term": summary.header.term,
        "last_commit_ts": summary.header.last_commit_ts,
        "input_files": summary.input_files,
        "input_bytes": summary.input_bytes,
        "records": records,
        "skipped_expired": summary.skipped_expired,
        "skipped_empty": summary.skipped_empty,
        "rows": summary.rows,
        "spilled_runs": summary.spilled_runs,
        "bytes_written": summary.bytes_written,
        "self_test": summary.self_test_compared.map(|compared| serde_json::json!({
            "matched": true,
            "compared": compared,
        })),
    })
}

fn write_text(out: &mut impl Write, summary: &EncodeSummary) -> std::io::Result<()> {
    let header = &summary.header;
    writeln!(out, "wrote {}", summary.output.display())?;
    writeln!(
        out,
        "  cluster {:?}, group {}, index {}, term {}, last_commit_ts {} ({} ms)",
        header.cluster_id,
        header.group_id,
        header.index,
        header.term,
        header.last_commit_ts,
        physical_ms(header.last_commit_ts)
    )?;
    writeln!(
        out,
        "  input: {} files, {} bytes (checksums verified)",
        summary.input_files, summary.input_bytes
    )?;
    for ((service, kind), n) in &summary.records {
        writeln!(out, "  {service} {kind}: {n}")?;
    }
    writeln!(
        out,
        "  skipped: {} expired, {} empty collections",
        summary.skipped_expired, summary.skipped_empty
    )?;
    writeln!(
        out,
        "  {} rows, {} bytes, {} spilled sort runs",
        summary.rows, summary.bytes_written, summary.spilled_runs
    )?;
    if let Some(compared) = summary.self_test_compared {
        writeln!(out, "  self-test: {compared} records decoded and equal")?;
    }
    Ok(())
}
