//! The guest's initramfs, built by tcplab itself: the running `tcplab` binary as `/bin/tcplab`
//! with `/init` linking to it, the shared libraries it needs (as `ldd` lists them — libpcap
//! among them, so the guest captures through the same libpcap code as the host), the job,
//! its scenario files and the kernel's modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cpio;
use crate::job::{self, Job, JobFile};
use crate::kernels::KernelImage;

/// Errors building an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `ldd` failed or listed a library that does not exist.
    #[error("finding the shared libraries of {binary}: {message}")]
    Libraries {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing the archive failed.
    #[error("writing the initramfs: {0}")]
    Write(#[from] std::io::Error),
}

/// The libraries `ldd` lists: (path the dynamic loader looks for, the file to copy).
/// `linux-vdso.so.1` has no file and is skipped; a static binary has none.
pub fn parse_ldd(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.is_empty() || line.contains("statically linked") || line.contains("not a dynamic") {
            continue;
        }
        if line.contains("=> not found") {
            return Err(format!("missing library: {line}"));
        }
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

fn libraries(binary: &Path) -> Result<Vec<PathBuf>, InitramfsError> {
    let err = |message: String| InitramfsError::Libraries {
        binary: binary.to_owned(),
        message,
    };
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| err(format!("running ldd: {e}")))?;
    // ldd exits 1 for a static binary ("not a dynamic executable"): no libraries then.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    parse_ldd(&text).map_err(err)
}

/// The binary's bytes without debug information when `objcopy` can strip it (a debug build
/// is ~10× larger, and the whole initramfs lives in guest RAM); else as it is. The stripped
/// copy is made in `scratch` and removed.
fn binary_bytes(binary: &Path, scratch: &Path) -> Result<Vec<u8>, InitramfsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| InitramfsError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let Ok(tmp) = tempfile_path(scratch) else {
        return read(binary);
    };
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(binary)
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success());
    let bytes = if stripped { read(&tmp) } else { read(binary) };
    let _ = std::fs::remove_file(&tmp);
    bytes
}

fn tempfile_path(dir: &Path) -> std::io::Result<PathBuf> {
    for n in 0..1000u32 {
        let p = dir.join(format!("tcplab-strip-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

/// Adds entries, creating parent directories first.
struct Tree {
    w: cpio::Writer<Vec<u8>>,
    dirs: BTreeSet<String>,
}

impl Tree {
    fn parents(&mut self, name: &str) -> std::io::Result<()> {
        let mut acc = String::new();
        let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            if self.dirs.insert(acc.clone()) {
                self.w.dir(&acc, 0o755)?;
            }
        }
        Ok(())
    }

    fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        self.parents(name)?;
        self.w.file(name, perm, data)
    }

    fn dir(&mut self, name: &str) -> std::io::Result<()> {
        self.parents(&format!("{name}/x"))
    }
}

/// Build the initramfs for `job` on `kernel`: returns the archive's bytes.
/// `files` pairs each job file with the host file to copy; `scratch` is a directory for a
/// temporary file (under `--out`: nothing is written elsewhere).
pub fn build(
    binary: &Path,
    kernel: &KernelImage,
    job: &Job,
    files: &[(JobFile, PathBuf)],
    scratch: &Path,
) -> Result<Vec<u8>, InitramfsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| InitramfsError::Read {
            path: p.to_owned(),
            source,
        })
    };
    let mut t = Tree {
        w: cpio::Writer::new(Vec::new()),
        dirs: BTreeSet::new(),
    };
    for d in ["dev", "proc", "sys", "tmp"] {
        t.dir(d)?;
    }
    t.w.chardev("dev/console", 0o600, 5, 1)?;
    t.file(job::BINARY, 0o755, &binary_bytes(binary, scratch)?)?;
    t.w.symlink("init", job::BINARY)?;
    for lib in libraries(binary)? {
        let name = lib.to_string_lossy().into_owned();
        // Copy the file behind any symlink under the name the loader asks for.
        t.file(&name, 0o755, &read(&lib)?)?;
    }
    for (name, path) in &kernel.modules {
        t.file(
            &format!("{}/{name}.ko", job::MODULE_DIR),
            0o644,
            &read(path)?,
        )?;
    }
    let job_json = serde_json::to_vec_pretty(job).map_err(std::io::Error::other)?;
    t.file(job::JOB_PATH, 0o644, &job_json)?;
    for (f, host) in files {
        t.file(
            &format!("{}/{}", job::JOB_DIR, f.guest),
            0o644,
            &read(host)?,
        )?;
    }
    Ok(t.w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_is_parsed() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibpcap.so.0.8 => /lib/x86_64-linux-gnu/libpcap.so.0.8 (0x00007f)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libpcap.so.0.8"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
        assert!(parse_ldd("\tnot a dynamic executable\n")
            .unwrap()
            .is_empty());
        assert!(parse_ldd("\tlibfoo.so => not found\n").is_err());
    }

    #[test]
    fn the_archive_holds_init_binary_libraries_job_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let scen = tmp.path().join("a.toml");
        std::fs::write(&scen, "name = \"a\"\n").unwrap();
        let ko = tmp.path().join("tun.ko");
        std::fs::write(&ko, b"\0depends=\0").unwrap();
        let kernel = KernelImage {
            release: "6.1.0-57-cloud-amd64".into(),
            vmlinuz: tmp.path().join("vmlinuz"),
            modules: vec![("tun".into(), ko)],
            source: "test".into(),
        };
        let job = Job {
            files: vec![JobFile {
                guest: "files/000/a.toml".into(),
                host: "a.toml".into(),
            }],
            modules: vec!["tun".into()],
            ..Job::default()
        };
        let binary = std::env::current_exe().unwrap();
        let bytes = build(
            &binary,
            &kernel,
            &job,
            &[(job.files[0].clone(), scen)],
            tmp.path(),
        )
        .unwrap();
        let entries = cpio::read(&bytes).unwrap();
        let find = |n: &str| entries.iter().find(|(name, _, _)| name == n);
        assert_eq!(find("init").unwrap().2, b"/bin/tcplab");
        assert_eq!(find("dev/console").unwrap().1, cpio::Kind::CharDev(5, 1));
        assert!(find("bin/tcplab").unwrap().2.starts_with(b"\x7fELF"));
        assert_eq!(find("modules/tun.ko").unwrap().2, b"\0depends=\0");
        assert_eq!(find("job/files/000/a.toml").unwrap().2, b"name = \"a\"\n");
        let j: Job = serde_json::from_slice(&find("job/job.json").unwrap().2).unwrap();
        assert_eq!(j, job);
        // The test binary is dynamic: its loader and libc come along.
        assert!(entries.iter().any(|(n, _, _)| n.contains("libc.so")));
        // Every parent directory precedes its entries.
        let pos = |n: &str| entries.iter().position(|(name, _, _)| name == n).unwrap();
        assert!(pos("job") < pos("job/files") && pos("job/files") < pos("job/files/000/a.toml"));
    }
}
