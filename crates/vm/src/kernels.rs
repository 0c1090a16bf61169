//! The kernel cache: Debian kernel images fetched with `apt-get download` and unpacked with
//! `dpkg-deb` — nothing installed, no maintainer scripts, no initramfs-tools.
//!
//! ```text
//! $XDG_CACHE_HOME/tcplab/kernels/        (or --cache DIR)
//!   6.1.0-57-cloud-amd64/
//!     vmlinuz            the bzImage
//!     modules/tun.ko …   the modules a guest may need (modules::WANTED + dependencies), uncompressed
//!     kernel.json        release, package, version, size, when and where it came from
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::modules;

/// The Debian kernel flavour fetched by default: small, boots fast, has virtio and 8250.
pub const DEFAULT_FLAVOUR: &str = "cloud-amd64";

/// Name of the metadata file in a cached kernel's directory.
pub const META_FILE: &str = "kernel.json";

/// Errors of the kernel cache.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool (apt-get, dpkg-deb, xz) failed.
    #[error("{tool} failed: {message}")]
    Tool {
        /// The command.
        tool: String,
        /// Its stderr or exit status.
        message: String,
    },
    /// No package matches the SPEC.
    #[error(
        "no kernel image package matches {spec:?} (flavour {flavour}) in the apt sources{hint}"
    )]
    NoMatch {
        /// The spec as given.
        spec: String,
        /// The flavour searched.
        flavour: String,
        /// What to do about it.
        hint: String,
    },
    /// A SPEC for `run --kernel` names nothing usable.
    #[error("{0}")]
    Spec(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |source| KernelError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What `kernel.json` records about a cached kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedKernel {
    /// `uname -r` of the kernel.
    pub release: String,
    /// The Debian package it came from.
    pub package: String,
    /// The package's version.
    pub version: String,
    /// Size of the `.deb`, bytes.
    pub deb_bytes: u64,
    /// Size of the bzImage, bytes.
    pub vmlinuz_bytes: u64,
    /// UTC stamp of the fetch.
    pub fetched_utc: String,
    /// Where it came from (`apt-get download PACKAGE=VERSION`).
    pub source: String,
    /// Modules kept (name → the modules it depends on).
    pub modules: BTreeMap<String, Vec<String>>,
    /// Wanted modules the package does not carry as modules (built in, or absent).
    pub not_modules: Vec<String>,
}

/// A kernel ready to boot: its image, its modules, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// `uname -r` (from the cache, or read from the bzImage header).
    pub release: String,
    /// The bzImage.
    pub vmlinuz: PathBuf,
    /// Module files to offer the guest, in load order (dependencies first).
    pub modules: Vec<(String, PathBuf)>,
    /// Where it came from, for meta.json.
    pub source: String,
}

/// The cache directory: `dir` if given, else `$XDG_CACHE_HOME/tcplab/kernels`, else
/// `$HOME/.cache/tcplab/kernels`.
pub fn cache_dir(dir: Option<&Path>) -> Result<PathBuf, KernelError> {
    if let Some(d) = dir {
        return Ok(d.to_owned());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| {
            KernelError::Spec("neither XDG_CACHE_HOME nor HOME is set: pass --cache DIR".into())
        })?;
    Ok(base.join("tcplab").join("kernels"))
}

/// The numeric parts of a kernel version, for ordering: `6.12.117+deb12` → [6, 12, 117, 12].
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// True when `version` starts with `prefix` at a component boundary: `6.1` matches
/// `6.1.0-57` but not `6.12.117`.
pub fn matches_prefix(version: &str, prefix: &str) -> bool {
    match version.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => !rest.starts_with(|c: char| c.is_ascii_digit()),
        None => false,
    }
}

/// From `apt-cache search --names-only` output, the newest image package whose version
/// matches `spec` for `flavour`. Meta packages (`linux-image-6.12-cloud-amd64`: no patch
/// level), `-unsigned` and `-dbg` packages are skipped.
pub fn pick_package(search_output: &str, spec: &str, flavour: &str) -> Option<String> {
    let suffix = format!("-{flavour}");
    search_output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| {
            let version = name.strip_prefix("linux-image-")?.strip_suffix(&suffix)?;
            // `6.1.0-57-cloud` (another flavour's name with this one's suffix) ends in a letter.
            let real = version_key(version).len() >= 3
                && version.starts_with(|c: char| c.is_ascii_digit())
                && version.ends_with(|c: char| c.is_ascii_digit());
            (real && matches_prefix(version, spec)).then(|| (version_key(version), name))
        })
        .max()
        .map(|(_, n)| n.to_owned())
}

fn run_tool(cmd: &mut Command) -> Result<std::process::Output, KernelError> {
    let tool = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| KernelError::Tool {
        tool: tool.clone(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(KernelError::Tool {
            tool,
            message: format!("{} ({})", line.trim(), out.status),
        });
    }
    Ok(out)
}

/// The longest SPEC considered: real ones are under 50 characters.
const MAX_SPEC_LEN: usize = 100;

/// A fetch SPEC's shape, checked before any apt call: a version prefix (a digit, then
/// digits, lowercase letters and `.+~-`) or an exact package name (`linux-image-` and a
/// version: Debian's package-name characters only, so apt never reads it as a pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecShape {
    /// `6.1`: the newest matching image package.
    VersionPrefix,
    /// `linux-image-6.1.0-57-cloud-amd64`: that package, if the apt sources have it.
    PackageName,
}

/// Check a fetch SPEC's shape (one clear error, no apt call, for anything else).
pub fn spec_shape(spec: &str) -> Result<SpecShape, KernelError> {
    let version_chars = |v: &str| {
        v.starts_with(|c: char| c.is_ascii_digit())
            && v.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || ".+~-".contains(c))
    };
    let shape = match spec.strip_prefix("linux-image-") {
        // Package names have no `~` (that is only in versions).
        Some(v) if version_chars(v) && !v.contains('~') => Some(SpecShape::PackageName),
        Some(_) => None,
        None if version_chars(spec) => Some(SpecShape::VersionPrefix),
        None => None,
    };
    match shape {
        Some(s) if spec.len() <= MAX_SPEC_LEN => Ok(s),
        _ => Err(KernelError::Spec(format!(
            "{}: a kernel SPEC is a version prefix like 6.1 (a digit, then digits, lowercase letters and . + ~ -) or a package name like linux-image-6.1.0-57-cloud-amd64",
            shown(spec)
        ))),
    }
}

/// A value as a message shows it: quoted and escaped (one line whatever it holds), and cut
/// after 64 characters so that a hostile one cannot fill the screen.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!(
            "{:?}… ({} characters)",
            &value[..end],
            value.chars().count()
        ),
        None => format!("{value:?}"),
    }
}

/// Resolve a fetch SPEC to a package name: its shape checked first ([`spec_shape`]), then an
/// exact package name looked up, or a version prefix matched, in `apt-cache search`'s list
/// of image packages (so `apt-get download` only ever gets a name that exists). With no
/// match and root, runs `apt-get update` once and looks again.
pub fn resolve_package(spec: &str, flavour: &str) -> Result<String, KernelError> {
    let shape = spec_shape(spec)?;
    let search = || -> Result<Option<String>, KernelError> {
        let out = run_tool(Command::new("apt-cache").args([
            "search",
            "--names-only",
            "^linux-image-[0-9]",
        ]))?;
        let list = String::from_utf8_lossy(&out.stdout);
        Ok(match shape {
            SpecShape::VersionPrefix => pick_package(&list, spec, flavour),
            SpecShape::PackageName => list
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .find(|name| *name == spec)
                .map(str::to_owned),
        })
    };
    if let Some(p) = search()? {
        return Ok(p);
    }
    let root = nix::unistd::geteuid().is_root();
    if root {
        run_tool(Command::new("apt-get").args(["update", "-qq"]))?;
        if let Some(p) = search()? {
            return Ok(p);
        }
    }
    Err(KernelError::NoMatch {
        spec: spec.to_owned(),
        flavour: flavour.to_owned(),
        hint: if root {
            " (after apt-get update)".into()
        } else {
            "; run `apt-get update` as root, or pass an exact package name".into()
        },
    })
}

/// Fetch a kernel into the cache (a no-op when its release is already there) and return it.
pub fn fetch(cache: &Path, spec: &str, flavour: &str) -> Result<CachedKernel, KernelError> {
    let package = resolve_package(spec, flavour)?;
    let release = package
        .strip_prefix("linux-image-")
        .unwrap_or(&package)
        .to_owned();
    if let Ok(k) = read_meta(&cache.join(&release)) {
        return Ok(k);
    }
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let tmp = tempdir_in(cache)?;
    let result = fetch_into(cache, tmp.path(), &package, &release);
    drop(tmp);
    result
}

/// A temporary directory inside `dir`, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir_in(dir: &Path) -> Result<TempDir, KernelError> {
    for n in 0..1000u32 {
        let p = dir.join(format!(".fetch-{}-{n}", std::process::id()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(TempDir(p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&p)(e)),
        }
    }
    Err(KernelError::Spec(format!(
        "{}: no free temporary directory name",
        dir.display()
    )))
}

fn fetch_into(
    cache: &Path,
    tmp: &Path,
    package: &str,
    release: &str,
) -> Result<CachedKernel, KernelError> {
    run_tool(
        Command::new("apt-get")
            .args(["download", "-qq", package])
            .current_dir(tmp),
    )?;
    let deb = std::fs::read_dir(tmp)
        .map_err(io(tmp))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| KernelError::Tool {
            tool: "apt-get download".into(),
            message: format!("no .deb for {package} in {}", tmp.display()),
        })?;
    let deb_bytes = std::fs::metadata(&deb).map_err(io(&deb))?.len();
    let version = String::from_utf8_lossy(
        &run_tool(
            Command::new("dpkg-deb")
                .args(["-f"])
                .arg(&deb)
                .arg("Version"),
        )?
        .stdout,
    )
    .trim()
    .to_owned();
    let listing =
        String::from_utf8_lossy(&run_tool(Command::new("dpkg-deb").arg("-c").arg(&deb))?.stdout)
            .into_owned();
    // Member names as tar stores them (`./boot/vmlinuz-…`).
    let members: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    let vmlinuz = members
        .iter()
        .find(|m| m.starts_with("./boot/vmlinuz-"))
        .ok_or_else(|| KernelError::Tool {
            tool: "dpkg-deb -c".into(),
            message: format!("{package} has no /boot/vmlinuz-*"),
        })?
        .to_string();
    let mod_root = format!("./lib/modules/{release}/");
    // Module name → member, for every module in the package.
    let by_name: BTreeMap<String, String> = members
        .iter()
        .filter(|m| m.starts_with(&mod_root))
        .filter_map(|m| {
            let file = m.rsplit('/').next()?;
            let name = file
                .strip_suffix(".ko")
                .or_else(|| file.strip_suffix(".ko.xz"))
                .or_else(|| file.strip_suffix(".ko.zst"))
                .or_else(|| file.strip_suffix(".ko.gz"))?;
            Some((modules::canonical(name), m.to_string()))
        })
        .collect();
    let out_dir = cache.join(format!(".{release}.partial"));
    let _ = std::fs::remove_dir_all(&out_dir);
    let mod_dir = out_dir.join("modules");
    std::fs::create_dir_all(&mod_dir).map_err(io(&mod_dir))?;
    // Every pass through the package decompresses all of it (~1 s), so each pass takes all
    // that is known to be needed: the image and the wanted modules first, then the
    // dependencies found in them, round by round (usually none are left).
    let mut kept: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut not_modules = Vec::new();
    let mut wanted: Vec<String> = modules::WANTED.iter().map(|(n, _)| n.to_string()).collect();
    let mut first = true;
    while first || !wanted.is_empty() {
        let mut round: Vec<(String, String)> = Vec::new();
        for name in std::mem::take(&mut wanted) {
            if kept.contains_key(&name)
                || not_modules.contains(&name)
                || round.iter().any(|(n, _)| *n == name)
            {
                continue;
            }
            match by_name.get(&name) {
                Some(member) => round.push((name, member.clone())),
                None => not_modules.push(name),
            }
        }
        let mut members: Vec<String> = round.iter().map(|(_, m)| m.clone()).collect();
        if first {
            members.push(vmlinuz.clone());
        }
        if members.is_empty() {
            break;
        }
        extract(&deb, tmp, &members)?;
        for (name, member) in round {
            let ko = decompress(&tmp.join(&member))?;
            let deps = modules::depends(&ko);
            let p = mod_dir.join(format!("{name}.ko"));
            std::fs::write(&p, &ko).map_err(io(&p))?;
            wanted.extend(deps.iter().cloned());
            kept.insert(name, deps);
        }
        first = false;
    }
    let src = tmp.join(&vmlinuz);
    let dst = out_dir.join("vmlinuz");
    std::fs::rename(&src, &dst)
        .or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))
        .map_err(io(&dst))?;
    not_modules.sort();
    let meta = CachedKernel {
        release: release.to_owned(),
        package: package.to_owned(),
        version: version.clone(),
        deb_bytes,
        vmlinuz_bytes: std::fs::metadata(&dst).map_err(io(&dst))?.len(),
        fetched_utc: tcplab_runner::results::utc_stamp(std::time::SystemTime::now()),
        source: format!("apt-get download {package}={version}"),
        modules: kept,
        not_modules,
    };
    let p = out_dir.join(META_FILE);
    let text = serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n";
    std::fs::write(&p, text).map_err(io(&p))?;
    // Appear in the cache only when complete.
    let final_dir = cache.join(release);
    std::fs::rename(&out_dir, &final_dir).map_err(io(&final_dir))?;
    Ok(meta)
}

fn extract(deb: &Path, into: &Path, members: &[String]) -> Result<(), KernelError> {
    // dpkg-deb --fsys-tarfile | tar -x MEMBERS: only these files are written.
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| KernelError::Tool {
            tool: "dpkg-deb --fsys-tarfile".into(),
            message: e.to_string(),
        })?;
    let stdout = dpkg.stdout.take().ok_or_else(|| KernelError::Tool {
        tool: "dpkg-deb".into(),
        message: "no stdout".into(),
    })?;
    let tar = run_tool(
        Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(into)
            .args(members)
            .stdin(stdout),
    );
    let _ = dpkg.wait();
    tar.map(|_| ())
}

/// A module file's bytes, uncompressed (`.ko.xz` through `xz`, `.ko.zst` through `zstd`).
fn decompress(path: &Path) -> Result<Vec<u8>, KernelError> {
    let name = path.to_string_lossy();
    let tool = if name.ends_with(".xz") {
        Some("xz")
    } else if name.ends_with(".zst") {
        Some("zstd")
    } else if name.ends_with(".gz") {
        Some("gzip")
    } else {
        None
    };
    match tool {
        None => std::fs::read(path).map_err(io(path)),
        Some(t) => Ok(run_tool(Command::new(t).arg("-dc").arg(path))?.stdout),
    }
}

fn read_meta(dir: &Path) -> Result<CachedKernel, KernelError> {
    let p = dir.join(META_FILE);
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| KernelError::Spec(format!("{}: {e}", p.display())))
}

/// Every complete kernel in the cache, oldest version first.
pub fn list(cache: &Path) -> Result<Vec<(PathBuf, CachedKernel)>, KernelError> {
    let entries = match std::fs::read_dir(cache) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(cache)(e)),
    };
    let mut v: Vec<(PathBuf, CachedKernel)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter_map(|p| read_meta(&p).ok().map(|k| (p, k)))
        .collect();
    v.sort_by_key(|(_, k)| version_key(&k.release));
    Ok(v)
}

/// The cached kernel for a version prefix (the newest match), if any. An empty spec names
/// nothing (it would match every kernel). The match's vmlinuz must be a bzImage of the
/// release its kernel.json names: a damaged entry is an error here, before any boot.
pub fn find_cached(cache: &Path, spec: &str) -> Result<Option<KernelImage>, KernelError> {
    if spec.is_empty() {
        return Err(KernelError::Spec(
            "an empty --kernel names no kernel: give host, a version prefix like 6.1, a package name or a bzImage path".into(),
        ));
    }
    let Some((dir, k)) = list(cache)?
        .into_iter()
        .filter(|(_, k)| matches_prefix(&k.release, spec) || k.release == spec || k.package == spec)
        .max_by(|a, b| version_key(&a.1.release).cmp(&version_key(&b.1.release)))
    else {
        return Ok(None);
    };
    let image = image_of(&dir, &k);
    check_image(&image, &dir)?;
    Ok(Some(image))
}

/// The cached bzImage's header names the release kernel.json records (tcplab reads that
/// header for a bzImage given by path too): a file of zeros, another kernel or a truncated
/// image is refused with the way out.
fn check_image(image: &KernelImage, dir: &Path) -> Result<(), KernelError> {
    let damaged = |why: String| {
        KernelError::Spec(format!(
            "{why}: the cached kernel {} is damaged (remove {} and fetch it again)",
            image.release,
            dir.display()
        ))
    };
    let found = crate::bzimage::release_of(&image.vmlinuz).map_err(damaged)?;
    if found != image.release {
        return Err(damaged(format!(
            "{}: the bzImage is release {}, not {}",
            image.vmlinuz.display(),
            shown(&found),
            image.release
        )));
    }
    Ok(())
}

/// Cache entries whose kernel.json exists but cannot be read as one (hand-edited, cut
/// short): [`list`] leaves them out, `kernels list` shows them as damaged.
pub fn damaged(cache: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut v: Vec<(PathBuf, String)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && p.join(META_FILE).exists()
        })
        .filter_map(|p| read_meta(&p).err().map(|e| (p, e.to_string())))
        .collect();
    v.sort();
    v
}

fn image_of(dir: &Path, k: &CachedKernel) -> KernelImage {
    KernelImage {
        release: k.release.clone(),
        vmlinuz: dir.join("vmlinuz"),
        modules: modules::load_order(&k.modules)
            .into_iter()
            .map(|m| {
                let p = dir.join("modules").join(format!("{m}.ko"));
                (m, p)
            })
            .collect(),
        source: k.source.clone(),
    }
}

/// A kernel given as a path to a bzImage (a kernel someone built): no modules come with it.
pub fn from_path(path: &Path) -> Result<KernelImage, KernelError> {
    let release = crate::bzimage::release_of(path).map_err(KernelError::Spec)?;
    Ok(KernelImage {
        release,
        vmlinuz: path.to_owned(),
        modules: Vec::new(),
        source: format!("file {}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH: &str = "\
linux-image-6.1.0-9-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-57-cloud-amd64 - Linux 6.1 for x86-64 cloud (signed)
linux-image-6.1.0-57-cloud-amd64-unsigned - Linux 6.1 for x86-64 cloud
linux-image-6.1.0-57-cloud-amd64-dbg - Debug symbols
linux-image-6.1.0-57-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.12-cloud-amd64 - Linux for x86-64 cloud (meta-package)
linux-image-6.12.9+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.117+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.101+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
";

    #[test]
    fn version_prefixes_pick_the_newest_real_package() {
        assert_eq!(
            pick_package(SEARCH, "6.1", "cloud-amd64").as_deref(),
            Some("linux-image-6.1.0-57-cloud-amd64")
        );
        assert_eq!(
            pick_package(SEARCH, "6.12", "cloud-amd64").as_deref(),
            Some("linux-image-6.12.117+deb12-cloud-amd64")
        );
        assert_eq!(
            pick_package(SEARCH, "6.12.101", "cloud-amd64").as_deref(),
            Some("linux-image-6.12.101+deb12-cloud-amd64")
        );
        assert_eq!(
            pick_package(SEARCH, "6.1", "amd64").as_deref(),
            Some("linux-image-6.1.0-57-amd64")
        );
        assert_eq!(pick_package(SEARCH, "5.10", "cloud-amd64"), None);
        assert_eq!(pick_package(SEARCH, "6.1.0-5", "cloud-amd64"), None);
    }

    #[test]
    fn prefixes_stop_at_component_boundaries() {
        assert!(matches_prefix("6.1.0-57-cloud-amd64", "6.1"));
        assert!(matches_prefix("6.1.0-57-cloud-amd64", "6.1.0-57"));
        assert!(!matches_prefix("6.12.117+deb12-cloud-amd64", "6.1"));
        assert!(matches_prefix("6.12.117+deb12-cloud-amd64", "6.12"));
        assert!(matches_prefix("6.1", "6.1"));
        assert!(version_key("6.12.117+deb12") > version_key("6.12.9+deb12"));
    }

    /// The smallest file with a setup header naming `release` (see bzimage.rs).
    fn bzimage_of(release: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        b[0x300..0x300 + release.len()].copy_from_slice(release.as_bytes());
        b
    }

    #[test]
    fn a_damaged_cache_entry_is_refused_before_any_boot() {
        // Issue 20 item 8: a vmlinuz of zeros with a valid kernel.json was booted; a corrupt
        // kernel.json was silently hidden; `--kernel ""` matched any cached kernel.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("6.1.0-57-cloud-amd64");
        std::fs::create_dir_all(&dir).unwrap();
        let k = CachedKernel {
            release: "6.1.0-57-cloud-amd64".into(),
            package: "linux-image-6.1.0-57-cloud-amd64".into(),
            version: "6.1.192-3".into(),
            deb_bytes: 1,
            vmlinuz_bytes: 1,
            fetched_utc: "20261201T000000Z".into(),
            source: "apt-get download x".into(),
            modules: BTreeMap::new(),
            not_modules: vec![],
        };
        std::fs::write(dir.join(META_FILE), serde_json::to_string(&k).unwrap()).unwrap();
        std::fs::write(dir.join("vmlinuz"), vec![0u8; 4096]).unwrap();
        let e = find_cached(tmp.path(), "6.1").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}/vmlinuz: not an x86 bzImage (no setup header with a kernel version): the cached kernel 6.1.0-57-cloud-amd64 is damaged (remove {} and fetch it again)",
                dir.display(),
                dir.display()
            )
        );
        std::fs::write(dir.join("vmlinuz"), bzimage_of("6.12.9-cloud-amd64")).unwrap();
        let e = find_cached(tmp.path(), "6.1").unwrap_err().to_string();
        assert!(
            e.contains("the bzImage is release \"6.12.9-cloud-amd64\", not 6.1.0-57-cloud-amd64"),
            "{e}"
        );
        std::fs::write(dir.join("vmlinuz"), bzimage_of("6.1.0-57-cloud-amd64")).unwrap();
        assert!(find_cached(tmp.path(), "6.1").unwrap().is_some());
        let e = find_cached(tmp.path(), "").unwrap_err().to_string();
        assert!(e.starts_with("an empty --kernel names no kernel"), "{e}");
        // A kernel.json cut short: not listed, but reported as damaged.
        let cut = tmp.path().join("6.12.9-cloud-amd64");
        std::fs::create_dir_all(&cut).unwrap();
        std::fs::write(cut.join(META_FILE), "{\"release\": \"6.12").unwrap();
        assert_eq!(list(tmp.path()).unwrap().len(), 1);
        let d = damaged(tmp.path());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, cut);
        assert!(
            d[0].1.contains("kernel.json: EOF while parsing"),
            "{}",
            d[0].1
        );
    }

    #[test]
    fn spec_shapes_are_checked_before_apt() {
        // Issue 20 item 7: junk after a digit ran `apt-get update` (≈3 s) before being
        // refused; a `linux-image-` name reached `apt-get download`, which read it as a regex.
        assert_eq!(spec_shape("6.1").ok(), Some(SpecShape::VersionPrefix));
        assert_eq!(
            spec_shape("6.12.117+deb12").ok(),
            Some(SpecShape::VersionPrefix)
        );
        assert_eq!(
            spec_shape("6.1.0-57~bpo12").ok(),
            Some(SpecShape::VersionPrefix)
        );
        assert_eq!(
            spec_shape("linux-image-6.1.0-57-cloud-amd64").ok(),
            Some(SpecShape::PackageName)
        );
        assert_eq!(
            spec_shape("linux-image-6.12.117+deb12-cloud-amd64").ok(),
            Some(SpecShape::PackageName)
        );
        let long = "6".repeat(10_000);
        for bad in [
            "",
            "6.1; rm -rf /",
            "6.1\n",
            "6.1 ",
            "6.*",
            "linux-image-.*",
            "linux-image-6.1.0-57-cloud-amd64|x",
            "linux-image-",
            "linux-image-cloud",
            "Linux-image-6.1",
            "6.1.0-57-Cloud",
            &long,
        ] {
            let e = spec_shape(bad).unwrap_err().to_string();
            assert!(
                e.contains("a kernel SPEC is a version prefix like 6.1"),
                "{bad:?}: {e}"
            );
            assert!(e.len() < 300, "{bad:?}: the message cuts the value: {e}");
        }
        assert_eq!(
            spec_shape("6.1; rm -rf /").unwrap_err().to_string(),
            "\"6.1; rm -rf /\": a kernel SPEC is a version prefix like 6.1 (a digit, then digits, lowercase letters and . + ~ -) or a package name like linux-image-6.1.0-57-cloud-amd64"
        );
        // Refused without any apt call: resolve_package fails the same way with no apt at all.
        let e = resolve_package("6.1; rm -rf /", DEFAULT_FLAVOUR).unwrap_err();
        assert!(matches!(e, KernelError::Spec(_)), "{e}");
    }

    #[test]
    fn listing_skips_partial_and_foreign_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let k = CachedKernel {
            release: "6.1.0-57-cloud-amd64".into(),
            package: "linux-image-6.1.0-57-cloud-amd64".into(),
            version: "6.1.192-3".into(),
            deb_bytes: 1,
            vmlinuz_bytes: 1,
            fetched_utc: "20261201T000000Z".into(),
            source: "apt-get download x".into(),
            modules: BTreeMap::from([
                ("tcp_diag".into(), vec!["inet_diag".into()]),
                ("inet_diag".into(), vec![]),
            ]),
            not_modules: vec!["ipv6".into()],
        };
        for d in [".6.1.0-57-cloud-amd64.partial", "6.1.0-57-cloud-amd64"] {
            let dir = tmp.path().join(d);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(META_FILE), serde_json::to_string(&k).unwrap()).unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("junk")).unwrap();
        // A valid bzImage header naming the release (what a real fetch leaves).
        let dir = tmp.path().join("6.1.0-57-cloud-amd64");
        std::fs::write(dir.join("vmlinuz"), bzimage_of("6.1.0-57-cloud-amd64")).unwrap();
        let l = list(tmp.path()).unwrap();
        assert_eq!(l.len(), 1);
        let img = find_cached(tmp.path(), "6.1").unwrap().unwrap();
        assert_eq!(img.release, "6.1.0-57-cloud-amd64");
        let names: Vec<_> = img.modules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["inet_diag", "tcp_diag"]);
        assert!(find_cached(tmp.path(), "6.12").unwrap().is_none());
        assert!(list(&tmp.path().join("missing")).unwrap().is_empty());
    }
}
