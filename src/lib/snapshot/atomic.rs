//! Creating a snapshot file atomically: write to a temp file beside the final
//! path, fsync, rename into place, fsync the directory.
//!
//! Invariants kept here:
//! - the final path only ever holds a complete, flushed and fsynced snapshot
//!   (or whatever was there before): a writer dropped or killed before
//!   `finish` leaves nothing at the final path;
//! - a dropped writer removes its temp file; a killed process leaves one that
//!   ends in `TEMP_SUFFIX`, which no reader ever opens by convention and
//!   `clean_stale_temps` removes.

use std::fs::{self, File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::storage::Cf;

use super::error::SnapshotError;
use super::format::{SnapshotHeader, SnapshotSummary, TEMP_SUFFIX};
use super::writer::SnapshotWriter;

const FILE_BUFFER: usize = 1 << 20;

/// Distinguishes temp files of concurrent writers in one process.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A snapshot being written to a temp file that `finish` renames into place.
pub struct AtomicSnapshotWriter {
    writer: Option<SnapshotWriter<BufWriter<File>>>,
    temp_path: PathBuf,
    final_path: PathBuf,
    renamed: bool,
}

impl SnapshotWriter<BufWriter<File>> {
    /// Starts a snapshot that will appear at `final_path` only when finished.
    pub fn create_atomic(
        final_path: &Path,
        header: &SnapshotHeader,
    ) -> Result<AtomicSnapshotWriter, SnapshotError> {
        AtomicSnapshotWriter::create(final_path, header)
    }
}

impl AtomicSnapshotWriter {
    /// Creates the temp file in `final_path`'s directory and writes the
    /// header. An existing file at `final_path` is replaced by `finish`.
    pub fn create(final_path: &Path, header: &SnapshotHeader) -> Result<Self, SnapshotError> {
        let Some(file_name) = final_path.file_name() else {
            return Err(SnapshotError::InvalidWrite(format!(
                "{} does not name a file",
                final_path.display()
            )));
        };
        let temp_name = format!(
            "{}.{}.{}{TEMP_SUFFIX}",
            file_name.to_string_lossy(),
            std::process::id(),
            TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let temp_path = final_path.with_file_name(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .map_err(|err| SnapshotError::file(&temp_path, err))?;
        let mut atomic = AtomicSnapshotWriter {
            writer: None,
            temp_path,
            final_path: final_path.to_path_buf(),
            renamed: false,
        };
        // From here on, dropping `atomic` removes the temp file.
        let writer = SnapshotWriter::new(BufWriter::with_capacity(FILE_BUFFER, file), header)?;
        atomic.writer = Some(writer);
        Ok(atomic)
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    pub fn bytes_written(&self) -> u64 {
        self.writer
            .as_ref()
            .map_or(0, SnapshotWriter::bytes_written)
    }

    /// See [`SnapshotWriter::write_record`].
    pub fn write_record(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> Result<(), SnapshotError> {
        match self.writer.as_mut() {
            Some(writer) => writer.write_record(cf, key, value),
            None => Err(SnapshotError::InvalidWrite(
                "the snapshot writer is already closed".to_string(),
            )),
        }
    }

    /// Writes the end marker and footer, fsyncs the file, renames it to the
    /// final path and fsyncs the directory.
    pub fn finish(mut self) -> Result<SnapshotSummary, SnapshotError> {
        let Some(writer) = self.writer.take() else {
            return Err(SnapshotError::InvalidWrite(
                "the snapshot writer is already closed".to_string(),
            ));
        };
        let (buffered, summary) = writer.finish()?;
        let file = buffered
            .into_inner()
            .map_err(|err| SnapshotError::file(&self.temp_path, err.into_error()))?;
        file.sync_all()
            .map_err(|err| SnapshotError::file(&self.temp_path, err))?;
        drop(file);
        fs::rename(&self.temp_path, &self.final_path)
            .map_err(|err| SnapshotError::file(&self.final_path, err))?;
        self.renamed = true;
        sync_dir(parent_dir(&self.final_path))?;
        Ok(summary)
    }
}

impl Drop for AtomicSnapshotWriter {
    fn drop(&mut self) {
        if !self.renamed {
            // Close the file before removing it; a failure to remove only
            // leaves a temp file that `clean_stale_temps` will find.
            self.writer.take();
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Removes the temp files that writers killed before `finish` left in
/// `dir`, returning their paths. Call it only when no snapshot is being
/// written into `dir` (at group start-up), since it cannot tell a dead
/// writer's temp file from a live one's.
pub fn clean_stale_temps(dir: &Path) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut removed = Vec::new();
    let entries = fs::read_dir(dir).map_err(|err| SnapshotError::file(dir, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| SnapshotError::file(dir, err))?;
        let is_temp = entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX);
        let is_file = entry
            .file_type()
            .map_err(|err| SnapshotError::file(entry.path(), err))?
            .is_file();
        if is_temp && is_file {
            let path = entry.path();
            fs::remove_file(&path).map_err(|err| SnapshotError::file(&path, err))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    removed.sort();
    Ok(removed)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|err| SnapshotError::file(dir, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.fsm")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/x.fsm")), Path::new("/a"));
    }

    #[test]
    fn temp_files_live_beside_the_final_path_and_are_recognisable() {
        let dir = tempfile::tempdir().unwrap();
        let final_path = dir.path().join("0000000000000001.fsm");
        let writer = AtomicSnapshotWriter::create(&final_path, &SnapshotHeader::default()).unwrap();
        let temp = writer.temp_path().to_path_buf();
        assert_eq!(temp.parent(), final_path.parent());
        assert!(temp.to_string_lossy().ends_with(TEMP_SUFFIX));
        assert!(temp.exists());
        drop(writer);
        assert!(!temp.exists());
        assert!(!final_path.exists());
    }
}
