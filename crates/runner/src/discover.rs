//! Finding and reading scenario files, safely on any tree a user points at: each real
//! directory is walked once and each real file taken once (by device + inode, so symlink
//! cycles end and `run X X` runs X once), and a file is read only if it is a regular file of
//! at most [`MAX_SCENARIO_BYTES`] (a FIFO would block forever, `/dev/zero` never ends).

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::scenario_error::ScenarioError;

/// The largest scenario file read: real ones are a few hundred bytes to a few KiB.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// A file's identity whatever it is called: (device, inode).
type Identity = (u64, u64);

fn identity(m: &Metadata) -> Identity {
    (m.dev(), m.ino())
}

/// Expand files and directories into scenario files: a file is taken as is; a directory is
/// searched recursively for `*.toml` (sorted, so the order is stable). Symlinks are
/// followed, but every real directory is entered once and every real file listed once, under
/// the first name that reached it.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut walk = Walk::default();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk.dir(p, &m)?,
            // Whatever it is (or if it does not exist), loading it says what is wrong.
            Ok(m) => walk.file(p, Some(&m)),
            Err(_) => walk.file(p, None),
        }
    }
    Ok(walk.out)
}

#[derive(Default)]
struct Walk {
    out: Vec<PathBuf>,
    dirs: HashSet<Identity>,
    files: HashSet<Identity>,
}

impl Walk {
    fn file(&mut self, path: &Path, meta: Option<&Metadata>) {
        if meta.is_none_or(|m| self.files.insert(identity(m))) {
            self.out.push(path.to_owned());
        }
    }

    fn dir(&mut self, dir: &Path, meta: &Metadata) -> Result<(), ScenarioError> {
        if !self.dirs.insert(identity(meta)) {
            return Ok(()); // entered already: a cycle, or two names for one directory
        }
        let list_err = |source| ScenarioError::List {
            path: dir.to_owned(),
            source,
        };
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(list_err)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(list_err)?;
        entries.sort();
        for p in entries {
            let meta = std::fs::metadata(&p).ok();
            match &meta {
                Some(m) if m.is_dir() => self.dir(&p, m)?,
                // A dangling `*.toml` symlink is listed, so that loading it names it.
                _ if p.extension().is_some_and(|e| e == "toml") => self.file(&p, meta.as_ref()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Read a scenario file: refused at once unless it is a regular file (opened non-blocking,
/// so that a FIFO cannot hang us before it is looked at), and read no further than
/// [`MAX_SCENARIO_BYTES`] (the size a stat reports is not trusted: /proc files say 0).
pub fn read_scenario(path: &Path) -> Result<Vec<u8>, ScenarioError> {
    let io = |source| ScenarioError::Io {
        path: path.to_owned(),
        source,
    };
    let file = open_regular(path).map_err(|e| match e {
        Refused::Io(e) => io(e),
        Refused::NotRegular(kind) => ScenarioError::NotRegular {
            path: path.to_owned(),
            kind,
        },
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(ScenarioError::TooLarge {
            path: path.to_owned(),
            limit: MAX_SCENARIO_BYTES,
        });
    }
    Ok(bytes)
}

/// Why [`open_regular`] gave no file.
#[derive(Debug)]
pub enum Refused {
    /// Opening or inspecting it failed.
    Io(std::io::Error),
    /// It is not a regular file; what it is instead ("a FIFO", "a character device", ...).
    NotRegular(&'static str),
}

/// Open `path` for reading only if it is a regular file (symlinks followed). Opened with
/// O_NONBLOCK, which does not block on a FIFO without a writer and means nothing for a
/// regular file; a directory, device, FIFO or socket is refused without reading from it.
pub fn open_regular(path: &Path) -> Result<File, Refused> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(Refused::Io)?;
    let ft = file.metadata().map_err(Refused::Io)?.file_type();
    if ft.is_file() {
        return Ok(file);
    }
    Err(Refused::NotRegular(if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::Duration;

    /// Runs `f` on a thread and fails the test if it has not returned within 30 s (generous
    /// for a busy machine; the failure these guard against never returns at all).
    fn within_30s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(Duration::from_secs(30))
            .expect("still running after 30 s")
    }

    #[test]
    fn symlink_cycles_are_walked_once() {
        // Issue 20 item 1: two cycles grew without bound; one found the same file 41 times.
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.toml"), "name = \"x\"\n").unwrap();
        symlink("..", d.join("sub/up")).unwrap();
        symlink("../..", d.join("sub/up2")).unwrap();
        let found = within_30s({
            let d = d.clone();
            move || discover(&[d]).unwrap()
        });
        assert_eq!(found, vec![d.join("sub/a.toml")]);
    }

    #[test]
    fn a_file_named_twice_is_taken_once() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.toml");
        std::fs::write(&a, "").unwrap();
        symlink(&a, tmp.path().join("b.toml")).unwrap();
        let twice = vec![a.clone(), a.clone(), tmp.path().join("b.toml")];
        assert_eq!(discover(&twice).unwrap(), vec![a.clone()]);
        // The directory and a file in it: the file once.
        assert_eq!(
            discover(&[a.clone(), tmp.path().to_owned()]).unwrap(),
            vec![a]
        );
        // A missing name is kept, for loading to report.
        let missing = tmp.path().join("missing.toml");
        assert_eq!(
            discover(std::slice::from_ref(&missing)).unwrap(),
            vec![missing]
        );
    }

    #[test]
    fn unbounded_and_blocking_files_are_refused_at_once() {
        // Issue 20 item 2: /dev/zero was read until memory ran out; a FIFO blocked forever.
        let tmp = tempfile::tempdir().unwrap();
        let zero = tmp.path().join("zero.toml");
        symlink("/dev/zero", &zero).unwrap();
        let fifo = tmp.path().join("fifo.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let big = tmp.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_SCENARIO_BYTES as usize + 1]).unwrap();
        let at_limit = tmp.path().join("at-limit.toml");
        std::fs::write(&at_limit, vec![b'#'; MAX_SCENARIO_BYTES as usize]).unwrap();
        let errors = within_30s({
            let (zero, fifo, big) = (zero.clone(), fifo.clone(), big.clone());
            move || {
                [zero, fifo, big, "/dev/zero".into()]
                    .map(|p: PathBuf| read_scenario(&p).unwrap_err().to_string())
            }
        });
        assert_eq!(
            errors,
            [
                format!(
                    "{}: not a regular file (a character device); a scenario is a *.toml file",
                    zero.display()
                ),
                format!(
                    "{}: not a regular file (a FIFO); a scenario is a *.toml file",
                    fifo.display()
                ),
                format!(
                    "{}: larger than 1048576 bytes, the most a scenario file may have",
                    big.display()
                ),
                "/dev/zero: not a regular file (a character device); a scenario is a *.toml file"
                    .to_owned(),
            ]
        );
        assert_eq!(
            read_scenario(&at_limit).unwrap().len() as u64,
            MAX_SCENARIO_BYTES
        );
    }
}
