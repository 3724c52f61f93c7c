//! Writing and reading whole trees.
//!
//! [`TreeWriter`] builds the tree in a private staging directory next to the
//! requested output, writes every file as temp + rename (never over an
//! existing entry, never through a symlink: every path component is
//! `lstat`ed on every use), and publishes with one rename after writing
//! `MANIFEST.json` and then `CHECKSUMS` last and making the whole staging
//! tree durable with one `syncfs` (files are not fsynced one by one: no
//! reader can see the staging tree, so only the publishing rename needs
//! everything durable before it, and one file-system sync does that at a
//! fraction of the cost of an fsync per file).
//! A crash or an error leaves at most a hidden staging directory, never a
//! tree that looks complete at the output path. The output must not exist
//! or be an empty directory.
//!
//! [`TreeReader::open`] verifies before anything is read: the root is a real
//! directory, `CHECKSUMS` is in canonical form, lists every regular file
//! (nothing unlisted, no symlink or special file anywhere) with the right
//! digest, and `MANIFEST.json` passes the version gate and validation.
//! Files are then opened without following symlinks and must be regular
//! with a single link.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

use super::checksums::{self, CHECKSUMS_FILE, ChecksumError, ChecksumSummary, VerifyOptions};
use super::manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest, ManifestError};

/// Why a tree could not be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("output {path:?} exists and is not an empty directory")]
    OutputNotEmpty { path: PathBuf },
    #[error("{path:?}: invalid path inside the tree: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("{path:?}: a symlink (refusing to follow it)")]
    Symlink { path: PathBuf },
    #[error("{path:?}: expected a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path:?}: not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path:?}: hard-linked file (refusing to read a file shared with another path)")]
    HardLinked { path: PathBuf },
    #[error("{path:?}: already exists in the tree")]
    AlreadyExists { path: PathBuf },
    #[error("{path:?}: larger than the {limit}-byte limit")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("incomplete tree: {name} is missing")]
    Incomplete { name: &'static str },
    #[error("{count} service writer(s) were not finished before the tree was")]
    UnfinishedServices { count: usize },
    #[error("{service} records were written but MANIFEST.adapters.{service} is absent")]
    AdapterNotInManifest { service: &'static str },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Checksums(#[from] ChecksumError),
    #[error("{path:?}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that `rel` is a non-empty relative path of plain components.
fn check_rel(rel: &Path) -> Result<(), TreeError> {
    let invalid = |reason| TreeError::InvalidPath {
        path: rel.to_path_buf(),
        reason,
    };
    let bytes = rel.as_os_str().as_encoded_bytes();
    if bytes.is_empty() {
        return Err(invalid("empty"));
    }
    // `components()` silently drops interior `.` and repeated `/`.
    if bytes
        .split(|b| *b == b'/')
        .skip(1)
        .any(|part| part.is_empty() || part == b".")
    {
        return Err(invalid("'.' or empty component"));
    }
    for component in rel.components() {
        match component {
            Component::Normal(_) => {}
            Component::ParentDir => return Err(invalid("'..' component")),
            Component::RootDir | Component::Prefix(_) => return Err(invalid("absolute")),
            Component::CurDir => return Err(invalid("'.' component")),
        }
    }
    Ok(())
}

fn lstat(path: &Path) -> Result<Option<fs::Metadata>, TreeError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TreeError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn sync_dir(path: &Path) -> Result<(), TreeError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_at(path))
}

/// What [`TreeWriter::finish`] published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedTree {
    pub root: PathBuf,
    pub checksums: ChecksumSummary,
}

/// Builds a tree in staging and publishes it complete or not at all.
pub struct TreeWriter {
    output: PathBuf,
    staging: tempfile::TempDir,
    open_services: Cell<usize>,
    services: RefCell<BTreeSet<&'static str>>,
    /// Directories of the staging tree this writer created or checked:
    /// the staging root is private to it, so once checked they stay real
    /// directories and need no further `lstat` per file.
    known_dirs: RefCell<HashSet<PathBuf>>,
    /// (relative path, SHA-256, size) of every committed file, hashed as it
    /// was written, so `CHECKSUMS` needs no second read of the tree.
    digests: RefCell<Vec<checksums::FileDigest>>,
}

impl TreeWriter {
    /// Starts a tree that will appear at `output` when finished.
    ///
    /// # Errors
    /// [`TreeError::OutputNotEmpty`] when `output` exists and is not an
    /// empty directory (a symlink counts as not empty); I/O errors.
    pub fn create(output: impl AsRef<Path>) -> Result<TreeWriter, TreeError> {
        let output = output.as_ref().to_path_buf();
        let name = output.file_name().ok_or_else(|| TreeError::InvalidPath {
            path: output.clone(),
            reason: "output has no final component",
        })?;
        if let Some(meta) = lstat(&output)? {
            let empty_dir = meta.is_dir()
                && fs::read_dir(&output)
                    .map_err(io_at(&output))?
                    .next()
                    .is_none();
            if !empty_dir {
                return Err(TreeError::OutputNotEmpty { path: output });
            }
        }
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(io_at(&parent))?;
        let mut prefix = OsString::from(".");
        prefix.push(name);
        prefix.push(".staging-");
        let staging = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&parent)
            .map_err(io_at(&parent))?;
        Ok(TreeWriter {
            output,
            staging,
            open_services: Cell::new(0),
            services: RefCell::new(BTreeSet::new()),
            known_dirs: RefCell::new(HashSet::new()),
            digests: RefCell::new(Vec::new()),
        })
    }

    /// The staging root (where files live until publication).
    pub fn staging_root(&self) -> &Path {
        self.staging.path()
    }

    /// The path the tree will be published at.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// Creates (if needed) the directory `rel` and every ancestor, refusing
    /// symlinks and non-directories on the way. Returns its full path.
    ///
    /// # Errors
    /// [`TreeError::Symlink`], [`TreeError::NotADirectory`], I/O errors.
    pub fn ensure_dir(&self, rel: &Path) -> Result<PathBuf, TreeError> {
        let mut current = self.staging.path().to_path_buf();
        if rel.as_os_str().is_empty() {
            return Ok(current);
        }
        check_rel(rel)?;
        if self.known_dirs.borrow().contains(rel) {
            current.push(rel);
            return Ok(current);
        }
        for component in rel.components() {
            current.push(component);
            match lstat(&current)? {
                Some(meta) if meta.file_type().is_symlink() => {
                    return Err(TreeError::Symlink { path: current });
                }
                Some(meta) if !meta.is_dir() => {
                    return Err(TreeError::NotADirectory { path: current });
                }
                Some(_) => {}
                None => match DirBuilder::new().mode(0o755).create(&current) {
                    Ok(()) => {}
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                        if !lstat(&current)?.is_some_and(|m| m.is_dir()) {
                            return Err(TreeError::NotADirectory { path: current });
                        }
                    }
                    Err(source) => {
                        return Err(TreeError::Io {
                            path: current,
                            source,
                        });
                    }
                },
            }
        }
        self.known_dirs.borrow_mut().insert(rel.to_path_buf());
        Ok(current)
    }

    /// Opens a new file `rel` for streaming writes. It is created at its
    /// final place in the (private) staging tree, exclusively and without
    /// following a symlink; dropped uncommitted, it is removed again.
    ///
    /// # Errors
    /// Path errors as [`TreeWriter::ensure_dir`]; [`TreeError::AlreadyExists`].
    pub fn create_file(&self, rel: &Path) -> Result<TreeFile<'_>, TreeError> {
        check_rel(rel)?;
        let (Some(parent), Some(_)) = (rel.parent(), rel.file_name()) else {
            return Err(TreeError::InvalidPath {
                path: rel.to_path_buf(),
                reason: "no file name",
            });
        };
        self.ensure_dir(parent)?;
        let target = self.staging.path().join(rel);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&target)
            .map_err(|source| {
                if source.kind() == io::ErrorKind::AlreadyExists {
                    TreeError::AlreadyExists {
                        path: rel.to_path_buf(),
                    }
                } else {
                    TreeError::Io {
                        path: target.clone(),
                        source,
                    }
                }
            })?;
        Ok(TreeFile {
            tree: self,
            rel: rel.to_path_buf(),
            target,
            out: Some(BufWriter::with_capacity(64 << 10, file)),
            hasher: Sha256::new(),
            written: 0,
        })
    }

    /// Writes the whole file `rel` atomically (temp, rename).
    ///
    /// # Errors
    /// As [`TreeWriter::create_file`] and [`TreeFile::commit`].
    pub fn write_file(&self, rel: &Path, bytes: &[u8]) -> Result<(), TreeError> {
        let mut file = self.create_file(rel)?;
        file.write_all(bytes)?;
        file.commit()
    }

    /// Reports whether `rel` already exists in the staging tree (lstat).
    ///
    /// # Errors
    /// I/O errors other than "not found".
    pub fn exists(&self, rel: &Path) -> Result<bool, TreeError> {
        check_rel(rel)?;
        Ok(lstat(&self.staging.path().join(rel))?.is_some())
    }

    /// Marks the start of a service writer; [`TreeWriter::finish`] refuses
    /// to publish while one is open, and requires `service` to be enabled
    /// in the manifest.
    pub fn begin_service(&self, service: &'static str) {
        self.open_services.set(self.open_services.get() + 1);
        self.services.borrow_mut().insert(service);
    }

    /// Marks a service writer as finished.
    pub fn end_service(&self) {
        self.open_services
            .set(self.open_services.get().saturating_sub(1));
    }

    /// Writes `MANIFEST.json`, then `CHECKSUMS`, syncs everything and
    /// publishes the tree at the output path by one rename.
    ///
    /// # Errors
    /// Unfinished service writers, a manifest that does not validate or
    /// does not enable a service that wrote records, I/O errors, and
    /// [`TreeError::OutputNotEmpty`] if the output was filled meanwhile.
    pub fn finish(self, manifest: &Manifest) -> Result<PublishedTree, TreeError> {
        let open = self.open_services.get();
        if open != 0 {
            return Err(TreeError::UnfinishedServices { count: open });
        }
        for service in self.services.borrow().iter() {
            if !manifest.adapters.is_enabled(service) {
                return Err(TreeError::AdapterNotInManifest { service });
            }
        }
        let bytes = manifest.to_bytes()?;
        self.write_file(Path::new(MANIFEST_FILE), &bytes)?;
        let mut digests = std::mem::take(&mut *self.digests.borrow_mut());
        let summary = checksums::write_checksums_from(self.staging.path(), &mut digests)?;
        drop(digests);
        sync_file_system(self.staging.path())?;
        let staging = self.staging.keep();
        let publish = || -> Result<(), TreeError> {
            fs::set_permissions(&staging, fs::Permissions::from_mode(0o755))
                .map_err(io_at(&staging))?;
            fs::rename(&staging, &self.output).map_err(|source| match source.raw_os_error() {
                Some(libc::ENOTEMPTY) | Some(libc::EEXIST) | Some(libc::ENOTDIR) => {
                    TreeError::OutputNotEmpty {
                        path: self.output.clone(),
                    }
                }
                _ => TreeError::Io {
                    path: self.output.clone(),
                    source,
                },
            })?;
            let parent = match self.output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            sync_dir(&parent)
        };
        if let Err(err) = publish() {
            if lstat(&staging).ok().flatten().is_some() {
                let _ = fs::remove_dir_all(&staging);
            }
            return Err(err);
        }
        Ok(PublishedTree {
            root: self.output.clone(),
            checksums: summary,
        })
    }
}

/// Makes every file and directory written under `root` durable: one
/// `syncfs` of the file system holding it (data and metadata of all its
/// dirty inodes), instead of an fsync per file and per directory.
fn sync_file_system(root: &Path) -> Result<(), TreeError> {
    use std::os::fd::AsRawFd;
    let dir = File::open(root).map_err(io_at(root))?;
    // SAFETY: `dir` is an open descriptor for the duration of the call;
    // syncfs only reads it.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc != 0 {
        return Err(TreeError::Io {
            path: root.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// A file being written into the staging tree; listed in `CHECKSUMS` only
/// once committed, and removed if dropped uncommitted.
pub struct TreeFile<'t> {
    tree: &'t TreeWriter,
    rel: PathBuf,
    target: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
    written: u64,
}

impl TreeFile<'_> {
    /// Appends bytes.
    ///
    /// # Errors
    /// I/O errors.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), TreeError> {
        let Some(out) = self.out.as_mut() else {
            return Err(TreeError::InvalidPath {
                path: self.rel.clone(),
                reason: "file already committed",
            });
        };
        out.write_all(bytes).map_err(io_at(&self.rel))?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Flushes the file and records its digest for `CHECKSUMS`. Durability
    /// comes once for the whole tree, before it is published
    /// ([`TreeWriter::finish`]).
    ///
    /// # Errors
    /// I/O errors.
    pub fn commit(mut self) -> Result<(), TreeError> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        out.into_inner().map_err(|err| TreeError::Io {
            path: self.rel.clone(),
            source: err.into_error(),
        })?;
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        self.tree.digests.borrow_mut().push(checksums::FileDigest {
            path: self.rel.as_os_str().as_bytes().to_vec(),
            sha256: digest,
            len: self.written,
        });
        Ok(())
    }
}

impl Drop for TreeFile<'_> {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.target);
        }
    }
}

/// One entry of a directory listed by [`TreeReader::list_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub name: OsString,
    pub is_dir: bool,
}

/// A verified tree, opened for reading.
#[derive(Debug)]
pub struct TreeReader {
    root: PathBuf,
    manifest: Manifest,
    checksums: ChecksumSummary,
}

impl TreeReader {
    /// Opens the tree at `root`, verifying MANIFEST.json and every
    /// checksum before returning.
    ///
    /// # Errors
    /// [`TreeError::Incomplete`] when MANIFEST.json or CHECKSUMS is
    /// missing; checksum, manifest and path errors.
    pub fn open(root: impl AsRef<Path>) -> Result<TreeReader, TreeError> {
        let root = root.as_ref().to_path_buf();
        match lstat(&root)? {
            None => {
                return Err(TreeError::Io {
                    path: root,
                    source: io::ErrorKind::NotFound.into(),
                });
            }
            Some(meta) if meta.file_type().is_symlink() => {
                return Err(TreeError::Symlink { path: root });
            }
            Some(meta) if !meta.is_dir() => return Err(TreeError::NotADirectory { path: root }),
            Some(_) => {}
        }
        for name in [MANIFEST_FILE, CHECKSUMS_FILE] {
            if lstat(&root.join(name))?.is_none() {
                return Err(TreeError::Incomplete { name });
            }
        }
        let checksums = checksums::verify_checksums(
            &root,
            VerifyOptions {
                require_complete: true,
                require_canonical: true,
            },
        )?;
        let bytes = read_checked(&root, Path::new(MANIFEST_FILE), MAX_MANIFEST_BYTES as u64)?;
        let manifest = Manifest::from_bytes(&bytes)?;
        Ok(TreeReader {
            root,
            manifest,
            checksums,
        })
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The tree root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Files and bytes covered by the verified CHECKSUMS.
    pub fn checksums(&self) -> ChecksumSummary {
        self.checksums
    }

    /// Opens `rel` for reading: no symlink on the path, a regular file
    /// with one link. `Ok(None)` when it does not exist.
    ///
    /// # Errors
    /// [`TreeError::Symlink`], [`TreeError::NotRegular`],
    /// [`TreeError::HardLinked`], I/O errors.
    pub fn open_file(&self, rel: &Path) -> Result<Option<File>, TreeError> {
        open_checked(&self.root, rel)
    }

    /// Reads the whole file `rel`, refusing files over `limit` bytes.
    ///
    /// # Errors
    /// As [`TreeReader::open_file`]; a missing file is an I/O error here.
    pub fn read_file(&self, rel: &Path, limit: u64) -> Result<Vec<u8>, TreeError> {
        read_checked(&self.root, rel, limit)
    }

    /// Lists directory `rel` sorted by name; `Ok(None)` if it does not
    /// exist. Entries other than regular files and directories are refused.
    ///
    /// # Errors
    /// [`TreeError::NotADirectory`], [`TreeError::Symlink`],
    /// [`TreeError::NotRegular`], I/O errors.
    pub fn list_dir(&self, rel: &Path) -> Result<Option<Vec<TreeEntry>>, TreeError> {
        let Some((path, meta)) = checked_path(&self.root, rel)? else {
            return Ok(None);
        };
        if !meta.is_dir() {
            return Err(TreeError::NotADirectory { path });
        }
        let mut entries = Vec::new();
        for entry in fs::read_dir(&path).map_err(io_at(&path))? {
            let entry = entry.map_err(io_at(&path))?;
            let kind = entry.file_type().map_err(io_at(&entry.path()))?;
            if kind.is_symlink() {
                return Err(TreeError::Symlink { path: entry.path() });
            }
            if !kind.is_dir() && !kind.is_file() {
                return Err(TreeError::NotRegular { path: entry.path() });
            }
            entries.push(TreeEntry {
                name: entry.file_name(),
                is_dir: kind.is_dir(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(entries))
    }
}

fn checked_path(root: &Path, rel: &Path) -> Result<Option<(PathBuf, fs::Metadata)>, TreeError> {
    check_rel(rel)?;
    let mut current = root.to_path_buf();
    let mut meta = None;
    for component in rel.components() {
        current.push(component);
        match lstat(&current)? {
            Some(m) if m.file_type().is_symlink() => {
                return Err(TreeError::Symlink { path: current });
            }
            Some(m) => meta = Some(m),
            None => return Ok(None),
        }
    }
    Ok(meta.map(|m| (current, m)))
}

fn open_checked(root: &Path, rel: &Path) -> Result<Option<File>, TreeError> {
    let Some((path, _)) = checked_path(root, rel)? else {
        return Ok(None);
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => TreeError::Symlink { path: path.clone() },
            _ => TreeError::Io {
                path: path.clone(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(io_at(&path))?;
    if !meta.is_file() {
        return Err(TreeError::NotRegular { path });
    }
    if meta.nlink() > 1 {
        return Err(TreeError::HardLinked { path });
    }
    Ok(Some(file))
}

fn read_checked(root: &Path, rel: &Path, limit: u64) -> Result<Vec<u8>, TreeError> {
    let full = root.join(rel);
    let file = open_checked(root, rel)?.ok_or_else(|| TreeError::Io {
        path: full.clone(),
        source: io::ErrorKind::NotFound.into(),
    })?;
    let mut out = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(io_at(&full))?;
    if out.len() as u64 > limit {
        return Err(TreeError::TooLarge { path: full, limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::RedisScope;
    use std::os::unix::fs::symlink;

    fn manifest() -> Manifest {
        Manifest::new_snapshot_decode(std::time::SystemTime::now(), "test.fsm")
    }

    #[test]
    fn published_tree_has_manifest_checksums_and_files() {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("dump");
        let tree = TreeWriter::create(&out).unwrap();
        tree.write_file(Path::new("a/b/c.bin"), b"hello").unwrap();
        assert!(!out.exists(), "nothing visible before finish");
        let published = tree.finish(&manifest()).unwrap();
        assert_eq!(published.checksums.files, 2);
        assert_eq!(fs::read(out.join("a/b/c.bin")).unwrap(), b"hello");
        let reader = TreeReader::open(&out).unwrap();
        assert_eq!(
            reader.manifest().source.as_ref().unwrap().fsm_path,
            "test.fsm"
        );
        let leftovers: Vec<_> = fs::read_dir(base.path()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "staging directory was renamed, not copied"
        );
    }

    #[test]
    fn output_must_be_absent_or_empty() {
        let base = tempfile::tempdir().unwrap();
        let empty = base.path().join("empty");
        fs::create_dir(&empty).unwrap();
        TreeWriter::create(&empty)
            .unwrap()
            .finish(&manifest())
            .unwrap();
        assert!(matches!(
            TreeWriter::create(&empty),
            Err(TreeError::OutputNotEmpty { .. })
        ));
        let link = base.path().join("link");
        symlink(base.path().join("elsewhere"), &link).unwrap();
        assert!(matches!(
            TreeWriter::create(&link),
            Err(TreeError::OutputNotEmpty { .. })
        ));
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("dump");
        let tree = TreeWriter::create(&out).unwrap();
        tree.write_file(Path::new("x"), b"1").unwrap();
        drop(tree);
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
    }

    #[test]
    fn paths_escaping_the_tree_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let tree = TreeWriter::create(base.path().join("dump")).unwrap();
        for bad in ["../x", "/etc/x", "a/./b", ""] {
            assert!(
                matches!(
                    tree.write_file(Path::new(bad), b""),
                    Err(TreeError::InvalidPath { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn writer_never_follows_a_symlinked_directory() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let tree = TreeWriter::create(base.path().join("dump")).unwrap();
        symlink(outside.path(), tree.staging_root().join("evil")).unwrap();
        assert!(matches!(
            tree.write_file(Path::new("evil/x"), b"1"),
            Err(TreeError::Symlink { .. })
        ));
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn files_are_never_replaced() {
        let base = tempfile::tempdir().unwrap();
        let tree = TreeWriter::create(base.path().join("dump")).unwrap();
        tree.write_file(Path::new("x"), b"1").unwrap();
        assert!(matches!(
            tree.write_file(Path::new("x"), b"2"),
            Err(TreeError::AlreadyExists { .. })
        ));
    }

    #[test]
    fn finish_refuses_unfinished_services_and_missing_adapters() {
        let base = tempfile::tempdir().unwrap();
        let tree = TreeWriter::create(base.path().join("a")).unwrap();
        tree.begin_service("redis");
        assert!(matches!(
            tree.finish(&manifest()),
            Err(TreeError::UnfinishedServices { count: 1 })
        ));
        let tree = TreeWriter::create(base.path().join("b")).unwrap();
        tree.begin_service("redis");
        tree.end_service();
        assert!(matches!(
            tree.finish(&manifest()),
            Err(TreeError::AdapterNotInManifest { service: "redis" })
        ));
        let tree = TreeWriter::create(base.path().join("c")).unwrap();
        tree.begin_service("redis");
        tree.end_service();
        let mut m = manifest();
        m.adapters.redis = Some(RedisScope::default());
        tree.finish(&m).unwrap();
    }

    #[test]
    fn reader_refuses_incomplete_or_tampered_trees() {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("dump");
        let tree = TreeWriter::create(&out).unwrap();
        tree.write_file(Path::new("x"), b"1").unwrap();
        tree.finish(&manifest()).unwrap();
        fs::write(out.join("extra"), b"").unwrap();
        assert!(matches!(
            TreeReader::open(&out),
            Err(TreeError::Checksums(ChecksumError::Unlisted { .. }))
        ));
        fs::remove_file(out.join("extra")).unwrap();
        fs::write(out.join("x"), b"2").unwrap();
        assert!(matches!(
            TreeReader::open(&out),
            Err(TreeError::Checksums(ChecksumError::DigestMismatch { .. }))
        ));
        fs::remove_file(out.join(MANIFEST_FILE)).unwrap();
        assert!(matches!(
            TreeReader::open(&out),
            Err(TreeError::Incomplete {
                name: MANIFEST_FILE
            })
        ));
    }

    #[test]
    fn reader_refuses_hard_links() {
        let base = tempfile::tempdir().unwrap();
        let out = base.path().join("dump");
        let tree = TreeWriter::create(&out).unwrap();
        tree.write_file(Path::new("x"), b"1").unwrap();
        tree.finish(&manifest()).unwrap();
        fs::hard_link(out.join("x"), base.path().join("alias")).unwrap();
        let reader = TreeReader::open(&out).unwrap();
        assert!(matches!(
            reader.open_file(Path::new("x")),
            Err(TreeError::HardLinked { .. })
        ));
    }
}
