//! The journal file (`--record FILE`): opened for append (a restart appends a new run,
//! nothing is ever truncated), never through a symlink (`O_NOFOLLOW`), created mode 0600
//! (an existing file readable or writable by others is tightened to 0600, and the log says
//! so), rotated by size between lines (`--record-max-bytes`, `--record-keep`, the plan in
//! `feedbackd_proto::journal_file`), reopened on SIGHUP for logrotate.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use feedbackd_proto::journal_file::{RotateStep, Rotation};

/// An open journal file.
#[derive(Debug)]
pub struct JournalFile {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    /// Rotations done (for the metrics).
    pub rotations: u64,
}

impl JournalFile {
    /// Opens (or creates) `path` for append; returns the file and what to log about it.
    pub fn open(path: &Path, rotation: Rotation) -> anyhow::Result<(JournalFile, Vec<String>)> {
        let (file, size, notes) = open_append(path)?;
        Ok((JournalFile { path: path.to_owned(), file, size, rotation, rotations: 0 }, notes))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes and opens the path again (after logrotate moved the file away).
    pub fn reopen(&mut self) -> anyhow::Result<Vec<String>> {
        let (file, size, notes) = open_append(&self.path)?;
        self.file = file;
        self.size = size;
        Ok(notes)
    }

    /// Appends whole lines (each without its newline), rotating between two lines when the
    /// next would take the file past the cap. Each stretch between rotations is one write.
    pub fn append(&mut self, lines: &[String]) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        for line in lines {
            let len = line.len() as u64 + 1;
            if self.rotation.before_line(self.size + buf.len() as u64, len) {
                self.write_out(&mut buf)?;
                self.rotate()?;
            }
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
        self.write_out(&mut buf)
    }

    fn write_out(&mut self, buf: &mut Vec<u8>) -> anyhow::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(buf).with_context(|| format!("writing {}", self.path.display()))?;
        self.size += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    fn rotate(&mut self) -> anyhow::Result<()> {
        for step in self.rotation.steps() {
            match step {
                RotateStep::Rename { from, to } => {
                    let (from, to) = (numbered(&self.path, from), numbered(&self.path, to));
                    match std::fs::rename(&from, &to) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("rotating {} to {}", from.display(), to.display()));
                        }
                    }
                }
                RotateStep::Remove => std::fs::remove_file(&self.path)
                    .with_context(|| format!("rotating {}: removing it", self.path.display()))?,
            }
        }
        self.reopen()?;
        self.rotations += 1;
        Ok(())
    }
}

/// `FILE` for 0, `FILE.n` otherwise.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_owned();
    }
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> anyhow::Result<(File, u64, Vec<String>)> {
    let at = path.display();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => {
                anyhow::anyhow!("--record {at} is a symbolic link: refused (name the file itself)")
            }
            _ => anyhow::anyhow!("--record {at}: cannot create it or open it for append: {e}"),
        })?;
    let meta = file.metadata().with_context(|| format!("--record {at}"))?;
    if !meta.file_type().is_file() {
        anyhow::bail!("--record {at} is not a regular file: refused");
    }
    let mut notes = Vec::new();
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .with_context(|| format!("--record {at}: tightening mode {mode:04o}"))?;
        notes.push(format!(
            "{at} had mode {mode:04o} (readable or writable by others): tightened to {:04o}",
            mode & 0o700
        ));
    }
    let size = meta.len();
    // A crash may have cut the last line: end it, so the new run's first line stands alone.
    if size > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(size - 1))
            .and_then(|_| file.read_exact(&mut last))
            .with_context(|| format!("--record {at}"))?;
        if last[0] != b'\n' {
            file.write_all(b"\n").with_context(|| format!("--record {at}"))?;
            notes.push(format!("{at} ended in the middle of a line (a crash?): ended it"));
            return Ok((file, size + 1, notes));
        }
    }
    Ok((file, size, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fbm-record-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const NO_CAP: Rotation = Rotation { max_bytes: 0, keep: 0 };

    #[test]
    fn appends_never_truncates_and_ends_a_torn_line() {
        let p = dir("append").join("j");
        std::fs::write(&p, "old 1\nold 2 torn").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (mut j, notes) = JournalFile::open(&p, NO_CAP).unwrap();
        assert!(notes[0].contains("ended in the middle of a line"), "{notes:?}");
        j.append(&["new 1".into(), "new 2".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old 1\nold 2 torn\nnew 1\nnew 2\n");
        drop(j);
        let (mut j, notes) = JournalFile::open(&p, NO_CAP).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        j.append(&["new 3".into()]).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("new 2\nnew 3\n"));
    }

    #[test]
    fn created_0600_loose_modes_tightened_symlinks_and_directories_refused() {
        let d = dir("modes");
        let p = d.join("j");
        JournalFile::open(&p, NO_CAP).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, notes) = JournalFile::open(&p, NO_CAP).unwrap();
        assert!(notes[0].contains("had mode 0666") && notes[0].contains("tightened to 0600"), "{notes:?}");
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let target = d.join("shadow");
        std::fs::write(&target, "precious\n").unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = JournalFile::open(&link, NO_CAP).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link: refused"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        let e = JournalFile::open(&d, NO_CAP).unwrap_err().to_string();
        assert!(e.contains(&d.display().to_string()), "{e}");
    }

    #[test]
    fn rotates_at_line_boundaries_keeping_n_files() {
        let p = dir("rotate").join("j");
        let (mut j, _) = JournalFile::open(&p, Rotation { max_bytes: 20, keep: 2 }).unwrap();
        // Lines of 10 bytes with the newline: two per file.
        let lines: Vec<String> = (0..9).map(|i| format!("line {i:04}")).collect();
        j.append(&lines[..3]).unwrap();
        j.append(&lines[3..]).unwrap();
        assert_eq!(j.rotations, 4);
        let read = |n| std::fs::read_to_string(numbered(&p, n)).unwrap();
        assert_eq!(read(0), "line 0008\n");
        assert_eq!(read(1), "line 0006\nline 0007\n");
        assert_eq!(read(2), "line 0004\nline 0005\n");
        assert!(!numbered(&p, 3).exists(), "only --record-keep files are kept");
        for n in 0..3 {
            assert!(read(n).ends_with('\n') && read(n).len() <= 20);
        }
    }
}
