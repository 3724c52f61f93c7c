//! `CHECKSUMS` (format §5.5): the SHA-256 of every regular file of a tree,
//! in `sha256sum(1)` format, so `sha256sum -c CHECKSUMS` works from the root.
//!
//! Writer: lines `<64 lowercase hex>␠␠<relative/path>\n`, sorted bytewise by
//! path, `CHECKSUMS` itself excluded; GNU escaping (`\`-prefixed line,
//! `\n`, `\r`, `\\`) for paths holding those bytes. The walk refuses
//! symlinks and other non-regular entries instead of skipping them.
//!
//! Verifier: every line well formed (bounded length), every path a plain
//! relative path (no absolute, `..`, `.`, empty component), no symlink on
//! any component, no duplicate, every digest right; optionally no
//! unlisted file in the tree and the canonical (writer's) form only. Memory
//! is bounded by one line plus 16 bytes per listed path (a digest of the
//! path, for the duplicate and completeness checks), never the file size.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::keymap::read_bounded_line;

/// File name of the checksum list at the tree root.
pub const CHECKSUMS_FILE: &str = "CHECKSUMS";
/// Longest accepted line (GNU paths are bounded by PATH_MAX anyway).
pub const MAX_LINE_BYTES: usize = 8 << 10;

/// Why a CHECKSUMS file or a tree failed verification.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error("CHECKSUMS line {line}: malformed: {reason}")]
    MalformedLine { line: u64, reason: String },
    #[error("CHECKSUMS line {line}: path {path:?} escapes the tree")]
    PathTraversal { line: u64, path: String },
    #[error("{path:?}: a symlink on the path (refusing to follow it)")]
    SymlinkEscape { path: String },
    #[error("{path:?}: not a regular file")]
    NotRegular { path: String },
    #[error("{path:?}: listed in CHECKSUMS but missing")]
    Missing { path: String },
    #[error("{path:?}: SHA-256 mismatch (CHECKSUMS says {expected}, file has {actual})")]
    DigestMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("CHECKSUMS line {line}: {path:?} listed twice")]
    Duplicate { line: u64, path: String },
    #[error("CHECKSUMS line {line}: not in canonical order or form ({reason})")]
    NotCanonical { line: u64, reason: &'static str },
    #[error("{path:?}: present in the tree but not listed in CHECKSUMS")]
    Unlisted { path: String },
    #[error("CHECKSUMS lists no file")]
    Empty,
    #[error("{path:?}: {source}")]
    Io { path: String, source: io::Error },
}

impl ChecksumError {
    /// True for the errors meaning "a listed file does not hold what was
    /// recorded" (the Go tools' `ErrChecksumMismatch`).
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ChecksumError::Missing { .. } | ChecksumError::DigestMismatch { .. }
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ChecksumError + '_ {
    move |source| ChecksumError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn display(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Formats one CHECKSUMS line (GNU `sha256sum` output, escaping included).
pub fn format_line(digest_hex: &str, path: &[u8]) -> Vec<u8> {
    let needs_escape = path.iter().any(|b| matches!(b, b'\n' | b'\r' | b'\\'));
    let mut line = Vec::with_capacity(path.len() + 70);
    if needs_escape {
        line.push(b'\\');
    }
    line.extend_from_slice(digest_hex.as_bytes());
    line.extend_from_slice(b"  ");
    for &byte in path {
        match byte {
            b'\n' if needs_escape => line.extend_from_slice(b"\\n"),
            b'\r' if needs_escape => line.extend_from_slice(b"\\r"),
            b'\\' if needs_escape => line.extend_from_slice(b"\\\\"),
            other => line.push(other),
        }
    }
    line.push(b'\n');
    line
}

/// One parsed line: digest, path bytes, and whether it used the writer's
/// canonical separator (two spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumLine {
    pub digest_hex: String,
    pub path: Vec<u8>,
    pub text_mode: bool,
}

/// Parses one line (without its `\n`).
///
/// # Errors
/// [`ChecksumError::MalformedLine`] for a bad digest, separator or escape.
pub fn parse_line(bytes: &[u8], line: u64) -> Result<ChecksumLine, ChecksumError> {
    let malformed = |reason: &str| ChecksumError::MalformedLine {
        line,
        reason: reason.to_owned(),
    };
    let (escaped, rest) = match bytes.strip_prefix(b"\\") {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    if rest.len() < 66 {
        return Err(malformed("shorter than a digest and separator"));
    }
    let (digest, rest) = rest.split_at(64);
    if !digest
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(malformed("digest is not 64 lowercase hex digits"));
    }
    let (text_mode, raw_path) = match rest.split_at(2) {
        (b"  ", path) => (true, path),
        (b" *", path) => (false, path),
        _ => return Err(malformed("digest not followed by two spaces or \" *\"")),
    };
    let path = if escaped {
        let mut out = Vec::with_capacity(raw_path.len());
        let mut iter = raw_path.iter();
        while let Some(&byte) = iter.next() {
            if byte != b'\\' {
                out.push(byte);
                continue;
            }
            match iter.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b'r') => out.push(b'\r'),
                Some(b'\\') => out.push(b'\\'),
                Some(_) => return Err(malformed("unknown escape sequence in path")),
                None => return Err(malformed("dangling escape at end of line")),
            }
        }
        out
    } else {
        raw_path.to_vec()
    };
    // sha256sum itself cannot list these paths without escaping.
    if !escaped && path.iter().any(|b| matches!(b, b'\r')) {
        return Err(malformed("carriage return in an unescaped path"));
    }
    Ok(ChecksumLine {
        digest_hex: String::from_utf8_lossy(digest).into_owned(),
        path,
        text_mode,
    })
}

/// Checks that `path` is a plain relative path inside the tree.
///
/// # Errors
/// [`ChecksumError::PathTraversal`] for absolute paths and `..`;
/// [`ChecksumError::MalformedLine`] for empty paths or `.`/empty components.
pub fn validate_rel_path(path: &[u8], line: u64) -> Result<(), ChecksumError> {
    if path.first() == Some(&b'/') || path.split(|b| *b == b'/').any(|c| c == b"..") {
        return Err(ChecksumError::PathTraversal {
            line,
            path: display(path),
        });
    }
    if path.is_empty()
        || path
            .split(|b| *b == b'/')
            .any(|c| c.is_empty() || c == b".")
    {
        return Err(ChecksumError::MalformedLine {
            line,
            reason: format!(
                "path {:?} is empty or has an empty or '.' component",
                display(path)
            ),
        });
    }
    if path.contains(&0) {
        return Err(ChecksumError::MalformedLine {
            line,
            reason: "NUL byte in path".into(),
        });
    }
    Ok(())
}

/// Hashes one file, opened without following a final symlink; the file
/// must be regular.
///
/// # Errors
/// I/O errors, [`ChecksumError::NotRegular`].
pub fn sha256_file(path: &Path) -> Result<String, ChecksumError> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ELOOP) => ChecksumError::SymlinkEscape {
                path: path.display().to_string(),
            },
            _ => ChecksumError::Io {
                path: path.display().to_string(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(ChecksumError::NotRegular {
            path: path.display().to_string(),
        });
    }
    let mut hasher = Sha256::new();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Lists every regular file under `root` (excluding the root's
/// `CHECKSUMS`) as relative paths, in bytewise path order.
///
/// # Errors
/// A symlink or any non-regular, non-directory entry anywhere in the tree.
pub fn list_tree_files(root: &Path) -> Result<Vec<Vec<u8>>, ChecksumError> {
    let mut out = Vec::new();
    walk_sorted(root, &mut Vec::new(), &mut |rel| {
        out.push(rel.to_vec());
        Ok(())
    })?;
    Ok(out)
}

/// Visits regular files in global bytewise order of their relative paths:
/// a directory sorts as its name followed by `/`, which keeps each
/// subtree contiguous at the right place.
fn walk_sorted(
    root: &Path,
    prefix: &mut Vec<u8>,
    visit: &mut dyn FnMut(&[u8]) -> Result<(), ChecksumError>,
) -> Result<(), ChecksumError> {
    let dir = if prefix.is_empty() {
        root.to_path_buf()
    } else {
        root.join(std::ffi::OsStr::from_bytes(prefix))
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let entry = entry.map_err(io_err(&dir))?;
        let kind = entry.file_type().map_err(io_err(&entry.path()))?;
        let name = entry.file_name().into_vec();
        let mut rel = prefix.clone();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(&name);
        if kind.is_symlink() {
            return Err(ChecksumError::SymlinkEscape {
                path: display(&rel),
            });
        }
        if kind.is_dir() {
            let mut key = name;
            key.push(b'/');
            entries.push((key, true));
        } else if kind.is_file() {
            if prefix.is_empty() && name == CHECKSUMS_FILE.as_bytes() {
                continue;
            }
            entries.push((name, false));
        } else {
            return Err(ChecksumError::NotRegular {
                path: display(&rel),
            });
        }
    }
    entries.sort();
    for (mut name, is_dir) in entries {
        let mark = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        if is_dir {
            name.pop();
            prefix.extend_from_slice(&name);
            walk_sorted(root, prefix, visit)?;
        } else {
            prefix.extend_from_slice(&name);
            visit(prefix)?;
        }
        prefix.truncate(mark);
    }
    Ok(())
}

/// What a written or verified CHECKSUMS covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumSummary {
    pub files: u64,
    pub bytes: u64,
}

/// Builds the CHECKSUMS body for `root`.
///
/// # Errors
/// Walk and read errors ([`list_tree_files`], [`sha256_file`]).
pub fn render_checksums(root: &Path) -> Result<(Vec<u8>, ChecksumSummary), ChecksumError> {
    let mut body = Vec::new();
    let mut summary = ChecksumSummary { files: 0, bytes: 0 };
    walk_sorted(root, &mut Vec::new(), &mut |rel| {
        let path = root.join(std::ffi::OsStr::from_bytes(rel));
        let digest = sha256_file(&path)?;
        summary.bytes += fs::symlink_metadata(&path).map_err(io_err(&path))?.len();
        summary.files += 1;
        body.extend_from_slice(&format_line(&digest, rel));
        Ok(())
    })?;
    Ok((body, summary))
}

/// A file's entry for `CHECKSUMS`, computed while it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Path relative to the tree root, `/`-separated.
    pub path: Vec<u8>,
    pub sha256: [u8; 32],
    pub len: u64,
}

/// Writes `<root>/CHECKSUMS` from digests taken as the files were written
/// (sorted here into the canonical order), without reading the tree again.
/// The caller guarantees `digests` lists exactly the tree's regular files.
///
/// # Errors
/// I/O errors writing the file.
pub fn write_checksums_from(
    root: &Path,
    digests: &mut [FileDigest],
) -> Result<ChecksumSummary, ChecksumError> {
    digests.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    let target = root.join(CHECKSUMS_FILE);
    let mut tmp = tempfile::Builder::new()
        .prefix(".CHECKSUMS.tmp-")
        .tempfile_in(root)
        .map_err(io_err(root))?;
    let mut summary = ChecksumSummary { files: 0, bytes: 0 };
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        for entry in digests.iter() {
            out.write_all(&format_line(&hex::encode(entry.sha256), &entry.path))
                .map_err(io_err(&target))?;
            summary.files += 1;
            summary.bytes += entry.len;
        }
        out.flush().map_err(io_err(&target))?;
    }
    tmp.persist(&target).map_err(|err| ChecksumError::Io {
        path: target.display().to_string(),
        source: err.error,
    })?;
    Ok(summary)
}

/// Writes `<root>/CHECKSUMS` (temp file, fsync, rename, directory fsync).
///
/// # Errors
/// As [`render_checksums`], plus I/O errors writing the file.
pub fn write_checksums(root: &Path) -> Result<ChecksumSummary, ChecksumError> {
    let (body, summary) = render_checksums(root)?;
    let target = root.join(CHECKSUMS_FILE);
    let mut tmp = tempfile::Builder::new()
        .prefix(".CHECKSUMS.tmp-")
        .tempfile_in(root)
        .map_err(io_err(root))?;
    tmp.write_all(&body).map_err(io_err(&target))?;
    tmp.as_file().sync_all().map_err(io_err(&target))?;
    tmp.persist(&target).map_err(|err| ChecksumError::Io {
        path: target.display().to_string(),
        source: err.error,
    })?;
    File::open(root)
        .and_then(|dir| dir.sync_all())
        .map_err(io_err(root))?;
    Ok(summary)
}

/// How strict [`verify_checksums`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyOptions {
    /// Refuse any regular file in the tree that CHECKSUMS does not list.
    pub require_complete: bool,
    /// Accept only the writer's form: two-space separator, strictly
    /// ascending paths, no blank line, final newline. With it, flipping
    /// any single byte of CHECKSUMS is detected.
    pub require_canonical: bool,
}

/// Lstat-checks every component of `rel` under `root`, refusing symlinks.
fn check_no_symlink(root: &Path, rel: &[u8]) -> Result<PathBuf, ChecksumError> {
    let mut current = root.to_path_buf();
    for component in Path::new(std::ffi::OsStr::from_bytes(rel)).components() {
        let Component::Normal(part) = component else {
            return Err(ChecksumError::PathTraversal {
                line: 0,
                path: display(rel),
            });
        };
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ChecksumError::SymlinkEscape { path: display(rel) });
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(ChecksumError::Missing { path: display(rel) });
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(ChecksumError::Missing { path: display(rel) });
            }
            Err(source) => {
                return Err(ChecksumError::Io {
                    path: display(rel),
                    source,
                });
            }
        }
    }
    Ok(current)
}

fn path_key(path: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(path);
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Verifies `<root>/CHECKSUMS` against the tree, line by line.
///
/// # Errors
/// The first problem found, as a [`ChecksumError`] naming the line or path.
pub fn verify_checksums(
    root: &Path,
    options: VerifyOptions,
) -> Result<ChecksumSummary, ChecksumError> {
    let list_path = root.join(CHECKSUMS_FILE);
    let meta = fs::symlink_metadata(&list_path).map_err(io_err(&list_path))?;
    if meta.file_type().is_symlink() {
        return Err(ChecksumError::SymlinkEscape {
            path: CHECKSUMS_FILE.into(),
        });
    }
    if !meta.file_type().is_file() {
        return Err(ChecksumError::NotRegular {
            path: CHECKSUMS_FILE.into(),
        });
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&list_path)
        .map_err(io_err(&list_path))?;
    verify_from_reader(root, BufReader::new(file), options)
}

/// Verifies a CHECKSUMS body read from `input` against the tree at `root`.
///
/// # Errors
/// As [`verify_checksums`].
pub fn verify_from_reader<R: io::BufRead>(
    root: &Path,
    mut input: R,
    options: VerifyOptions,
) -> Result<ChecksumSummary, ChecksumError> {
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let mut previous: Option<Vec<u8>> = None;
    let mut summary = ChecksumSummary { files: 0, bytes: 0 };
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        line_no += 1;
        let consumed = read_bounded_line(&mut input, &mut buf, MAX_LINE_BYTES)
            .map_err(io_err(Path::new(CHECKSUMS_FILE)))?
            .ok_or_else(|| ChecksumError::MalformedLine {
                line: line_no,
                reason: format!("longer than {MAX_LINE_BYTES} bytes"),
            })?;
        if consumed == 0 {
            break;
        }
        let has_newline = buf.last() == Some(&b'\n');
        let line = if has_newline {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        if options.require_canonical && !has_newline {
            return Err(ChecksumError::NotCanonical {
                line: line_no,
                reason: "no final newline",
            });
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if options.require_canonical {
                return Err(ChecksumError::NotCanonical {
                    line: line_no,
                    reason: "blank line",
                });
            }
            continue;
        }
        let parsed = parse_line(line, line_no)?;
        validate_rel_path(&parsed.path, line_no)?;
        if options.require_canonical {
            if !parsed.text_mode {
                return Err(ChecksumError::NotCanonical {
                    line: line_no,
                    reason: "\" *\" separator",
                });
            }
            if previous
                .as_deref()
                .is_some_and(|prev| prev >= parsed.path.as_slice())
            {
                if previous.as_deref() == Some(parsed.path.as_slice()) {
                    return Err(ChecksumError::Duplicate {
                        line: line_no,
                        path: display(&parsed.path),
                    });
                }
                return Err(ChecksumError::NotCanonical {
                    line: line_no,
                    reason: "paths not ascending",
                });
            }
            previous = Some(parsed.path.clone());
        }
        if !seen.insert(path_key(&parsed.path)) {
            return Err(ChecksumError::Duplicate {
                line: line_no,
                path: display(&parsed.path),
            });
        }
        if parsed.path == CHECKSUMS_FILE.as_bytes() {
            return Err(ChecksumError::MalformedLine {
                line: line_no,
                reason: "CHECKSUMS cannot list itself".into(),
            });
        }
        let full = check_no_symlink(root, &parsed.path)?;
        let actual = match sha256_file(&full) {
            Err(ChecksumError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(ChecksumError::Missing {
                    path: display(&parsed.path),
                });
            }
            Err(ChecksumError::NotRegular { .. }) => {
                return Err(ChecksumError::NotRegular {
                    path: display(&parsed.path),
                });
            }
            other => other?,
        };
        if actual != parsed.digest_hex {
            return Err(ChecksumError::DigestMismatch {
                path: display(&parsed.path),
                expected: parsed.digest_hex,
                actual,
            });
        }
        summary.files += 1;
        summary.bytes += fs::symlink_metadata(&full).map_err(io_err(&full))?.len();
    }
    if summary.files == 0 {
        return Err(ChecksumError::Empty);
    }
    if options.require_complete {
        walk_sorted(root, &mut Vec::new(), &mut |rel| {
            if seen.contains(&path_key(rel)) {
                Ok(())
            } else {
                Err(ChecksumError::Unlisted { path: display(rel) })
            }
        })?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (rel, body) in files {
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, body).unwrap();
        }
        dir
    }

    const STRICT: VerifyOptions = VerifyOptions {
        require_complete: true,
        require_canonical: true,
    };

    #[test]
    fn listing_is_sorted_two_space_forward_slash_lowercase() {
        let dir = tree(&[
            ("b.txt", b"b"),
            ("a/z.bin", b"z"),
            ("a.txt", b"a"),
            ("MANIFEST.json", b"{}"),
        ]);
        write_checksums(dir.path()).unwrap();
        let text = fs::read_to_string(dir.path().join(CHECKSUMS_FILE)).unwrap();
        let paths: Vec<&str> = text.lines().map(|l| &l[66..]).collect();
        assert_eq!(paths, ["MANIFEST.json", "a.txt", "a/z.bin", "b.txt"]);
        let first = text.lines().next().unwrap();
        assert_eq!(&first[..64], hex::encode(Sha256::digest(b"{}")));
        assert_eq!(&first[64..66], "  ");
    }

    #[test]
    fn checksums_does_not_list_itself_and_is_deterministic() {
        let dir = tree(&[("x", b"1")]);
        write_checksums(dir.path()).unwrap();
        let first = fs::read(dir.path().join(CHECKSUMS_FILE)).unwrap();
        write_checksums(dir.path()).unwrap();
        let second = fs::read(dir.path().join(CHECKSUMS_FILE)).unwrap();
        assert_eq!(first, second);
        assert!(!String::from_utf8(first).unwrap().contains(CHECKSUMS_FILE));
    }

    #[test]
    fn fresh_checksums_verify() {
        let dir = tree(&[("x", b"1"), ("d/e/f", b"2")]);
        write_checksums(dir.path()).unwrap();
        let summary = verify_checksums(dir.path(), STRICT).unwrap();
        assert_eq!(summary.files, 2);
    }

    #[test]
    fn tampering_is_a_mismatch() {
        let dir = tree(&[("x", b"1")]);
        write_checksums(dir.path()).unwrap();
        fs::write(dir.path().join("x"), b"2").unwrap();
        let err = verify_checksums(dir.path(), STRICT).unwrap_err();
        assert!(matches!(err, ChecksumError::DigestMismatch { .. }) && err.is_mismatch());
    }

    #[test]
    fn missing_target_is_a_mismatch() {
        let dir = tree(&[("x", b"1"), ("y", b"2")]);
        write_checksums(dir.path()).unwrap();
        fs::remove_file(dir.path().join("y")).unwrap();
        let err = verify_checksums(dir.path(), STRICT).unwrap_err();
        assert!(matches!(err, ChecksumError::Missing { .. }) && err.is_mismatch());
    }

    fn verify_body(
        dir: &Path,
        body: &[u8],
        options: VerifyOptions,
    ) -> Result<ChecksumSummary, ChecksumError> {
        verify_from_reader(dir, body, options)
    }

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        let dir = tree(&[("x", b"1")]);
        let digest = hex::encode(Sha256::digest(b"1"));
        for path in ["../x", "a/../../x", "/etc/passwd", ".."] {
            let body = format_line(&digest, path.as_bytes());
            let err = verify_body(dir.path(), &body, VerifyOptions::default()).unwrap_err();
            assert!(
                matches!(err, ChecksumError::PathTraversal { .. }),
                "{path}: {err}"
            );
        }
        for path in [".", "a//x", "./x", "x/"] {
            let body = format_line(&digest, path.as_bytes());
            let err = verify_body(dir.path(), &body, VerifyOptions::default()).unwrap_err();
            assert!(
                matches!(err, ChecksumError::MalformedLine { .. }),
                "{path}: {err}"
            );
        }
    }

    #[test]
    fn terminal_and_intermediate_symlinks_are_refused() {
        let outside = tree(&[("secret", b"s"), ("d/secret", b"s")]);
        let dir = tree(&[("x", b"1")]);
        symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        symlink(outside.path().join("d"), dir.path().join("dirlink")).unwrap();
        let digest = hex::encode(Sha256::digest(b"s"));
        for path in ["link", "dirlink/secret"] {
            let body = format_line(&digest, path.as_bytes());
            let err = verify_body(dir.path(), &body, VerifyOptions::default()).unwrap_err();
            assert!(
                matches!(err, ChecksumError::SymlinkEscape { .. }),
                "{path}: {err}"
            );
        }
        assert!(matches!(
            write_checksums(dir.path()),
            Err(ChecksumError::SymlinkEscape { .. })
        ));
    }

    #[test]
    fn honest_paths_are_accepted() {
        for path in [
            "MANIFEST.json",
            "redis/db_0/strings/a%20b.bin",
            "s3/b/x/.hidden",
            "a..b",
        ] {
            validate_rel_path(path.as_bytes(), 1).unwrap();
        }
    }

    #[test]
    fn escaped_paths_round_trip_in_gnu_form() {
        let path = b"we\\ird\nna\rme";
        let line = format_line(&"0".repeat(64), path);
        assert!(line.starts_with(b"\\0000"));
        assert_eq!(&line[line.len() - 1..], b"\n");
        let parsed = parse_line(&line[..line.len() - 1], 1).unwrap();
        assert_eq!(parsed.path, path);
        let plain = format_line(&"0".repeat(64), b"plain");
        assert!(plain.starts_with(b"0000"));
    }

    #[test]
    fn dangling_or_unknown_escapes_are_refused() {
        let zeros = "0".repeat(64);
        for tail in ["a\\", "a\\x"] {
            let line = format!("\\{zeros}  {tail}");
            assert!(
                matches!(
                    parse_line(line.as_bytes(), 1),
                    Err(ChecksumError::MalformedLine { .. })
                ),
                "{tail}"
            );
        }
    }

    #[test]
    fn empty_or_blank_checksums_are_refused() {
        let dir = tree(&[("x", b"1")]);
        for body in [&b""[..], b"\n\n  \n"] {
            let err = verify_body(dir.path(), body, VerifyOptions::default()).unwrap_err();
            assert!(matches!(err, ChecksumError::Empty), "{err}");
        }
    }

    #[test]
    fn duplicates_and_unlisted_files_are_refused() {
        let dir = tree(&[("x", b"1"), ("y", b"2")]);
        let digest = hex::encode(Sha256::digest(b"1"));
        let mut body = format_line(&digest, b"x");
        body.extend(format_line(&digest, b"x"));
        let err = verify_body(dir.path(), &body, VerifyOptions::default()).unwrap_err();
        assert!(
            matches!(err, ChecksumError::Duplicate { line: 2, .. }),
            "{err}"
        );
        let single = format_line(&digest, b"x");
        verify_body(dir.path(), &single, VerifyOptions::default()).unwrap();
        let strict = VerifyOptions {
            require_complete: true,
            ..VerifyOptions::default()
        };
        let err = verify_body(dir.path(), &single, strict).unwrap_err();
        assert!(
            matches!(err, ChecksumError::Unlisted { ref path } if path == "y"),
            "{err}"
        );
    }

    #[test]
    fn binary_marker_and_order_are_accepted_leniently_but_not_canonically() {
        let dir = tree(&[("x", b"1"), ("y", b"2")]);
        let mut body = format!("{} *y\n", hex::encode(Sha256::digest(b"2"))).into_bytes();
        body.extend(format_line(&hex::encode(Sha256::digest(b"1")), b"x"));
        verify_body(dir.path(), &body, VerifyOptions::default()).unwrap();
        let err = verify_body(dir.path(), &body, STRICT).unwrap_err();
        assert!(matches!(err, ChecksumError::NotCanonical { .. }), "{err}");
    }

    #[test]
    fn uppercase_digest_is_malformed() {
        let line = format!("{}  x", "A".repeat(64));
        assert!(matches!(
            parse_line(line.as_bytes(), 1),
            Err(ChecksumError::MalformedLine { .. })
        ));
    }

    #[test]
    fn a_large_checksums_file_is_verified_line_by_line() {
        let dir = tree(&[("x", b"1")]);
        let line = format_line(&hex::encode(Sha256::digest(b"1")), b"x");
        // 200k blank lines then one real line: only one line is ever buffered.
        let mut body = vec![b'\n'; 200_000];
        body.extend(line);
        let summary = verify_body(dir.path(), &body, VerifyOptions::default()).unwrap();
        assert_eq!(summary.files, 1);
    }

    #[test]
    fn fifo_in_the_tree_is_refused() {
        let dir = tree(&[("x", b"1")]);
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated path for the call's duration.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(write_checksums(dir.path()).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_lines_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&bytes, 1);
            let _ = validate_rel_path(&bytes, 1);
        }

        #[test]
        fn format_then_parse_round_trips(path in proptest::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..60)) {
            let digest = "ab".repeat(32);
            let line = format_line(&digest, &path);
            let parsed = parse_line(&line[..line.len() - 1], 1).unwrap();
            prop_assert_eq!(parsed.path, path);
            prop_assert_eq!(parsed.digest_hex, digest);
        }
    }
}
