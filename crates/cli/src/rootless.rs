//! Running without root: when this process lacks the capabilities a live run needs and the
//! kernel lets ordinary users create user namespaces, `run` and `sweep` move themselves into
//! a new user namespace (mapping the caller to root there) and network namespace, which is
//! what `unshare -Urn tcplab run` does by hand. Inside, tcplab holds CAP_SYS_ADMIN,
//! CAP_NET_ADMIN and CAP_NET_RAW over namespaces it creates, and nothing else: the host's
//! network and files are out of reach, and files it writes belong to the caller.
//!
//! unshare(CLONE_NEWUSER) only works in a single-threaded process, so [`enter_if_needed`] must
//! run before any thread starts (before the Ctrl-C handler, progress bars, runs).

use std::path::Path;

/// Capabilities a live run uses (capabilities(7) bit numbers).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;

/// What [`enter_if_needed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    /// The process already had what a run needs.
    Had,
    /// It entered a new user + network namespace.
    EnteredUserNamespace,
    /// It could not: the one-line reason, naming the setting and the ways out.
    Blocked(String),
}

/// Enter a user + network namespace when the capabilities are missing (see module docs).
pub fn enter_if_needed(command: &str) -> Privileges {
    if has_run_capabilities() {
        return Privileges::Had;
    }
    match enter_user_namespace() {
        Ok(()) => Privileges::EnteredUserNamespace,
        Err(e) => Privileges::Blocked(blocked_message(command, Path::new("/proc/sys"), &e)),
    }
}

fn has_run_capabilities() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    [CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN]
        .iter()
        .all(|b| eff & (1 << b) != 0)
}

fn enter_user_namespace() -> Result<(), String> {
    use nix::sched::{unshare, CloneFlags};
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWUSER|CLONE_NEWNET): {e}"))?;
    // user_namespaces(7): an unprivileged process must deny setgroups before it may write
    // its gid_map; then map the caller (and only the caller) to root inside.
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ] {
        std::fs::write(file, text).map_err(|e| format!("writing {file}: {e}"))?;
    }
    Ok(())
}

/// A sysctl that blocks unprivileged user namespaces, read under `proc_sys`, with the value
/// that allows them: `(name, blocking value, allowing value)`.
fn blocking_setting(proc_sys: &Path) -> Option<(&'static str, String, &'static str)> {
    let read = |rel: &str| {
        std::fs::read_to_string(proc_sys.join(rel))
            .ok()
            .map(|s| s.trim().to_owned())
    };
    [
        (
            "kernel/apparmor_restrict_unprivileged_userns",
            "kernel.apparmor_restrict_unprivileged_userns",
            "1",
            "0",
        ),
        (
            "user/max_user_namespaces",
            "user.max_user_namespaces",
            "0",
            "10000",
        ),
        (
            "kernel/unprivileged_userns_clone",
            "kernel.unprivileged_userns_clone",
            "0",
            "1",
        ),
    ]
    .into_iter()
    .find_map(|(rel, name, blocks, allows)| {
        (read(rel).as_deref() == Some(blocks)).then(|| (name, blocks.to_owned(), allows))
    })
}

/// The one line for a run that cannot get its privileges: what blocks it and the two ways
/// out (root, or the sysctl).
pub fn blocked_message(command: &str, proc_sys: &Path, detail: &str) -> String {
    match blocking_setting(proc_sys) {
        Some((name, value, allows)) => format!(
            "`tcplab {command}` needs root or an unprivileged user namespace, and {name}={value} blocks those: run it with sudo, or allow them with `sudo sysctl {name}={allows}`"
        ),
        None => format!(
            "`tcplab {command}` needs root or an unprivileged user namespace, and this system gave neither ({detail}): run it with sudo, or allow unprivileged user namespaces (sysctl user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_sys(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for (rel, v) in files {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, format!("{v}\n")).expect("write");
        }
        d
    }

    #[test]
    fn blocked_message_names_the_setting_and_both_ways_out() {
        let d = proc_sys(&[
            ("kernel/apparmor_restrict_unprivileged_userns", "1"),
            ("user/max_user_namespaces", "15000"),
        ]);
        let m = blocked_message("run", d.path(), "EPERM");
        assert_eq!(
            m,
            "`tcplab run` needs root or an unprivileged user namespace, and kernel.apparmor_restrict_unprivileged_userns=1 blocks those: run it with sudo, or allow them with `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
        );
        let d = proc_sys(&[("user/max_user_namespaces", "0")]);
        let m = blocked_message("sweep", d.path(), "ENOSPC");
        assert!(m.contains("user.max_user_namespaces=0 blocks those"), "{m}");
        assert!(
            m.contains("sudo sysctl user.max_user_namespaces=10000"),
            "{m}"
        );
        let d = proc_sys(&[("user/max_user_namespaces", "15000")]);
        let m = blocked_message("run", d.path(), "EPERM");
        assert!(m.contains("(EPERM)") && m.contains("sudo"), "{m}");
        assert_eq!(m.lines().count(), 1);
    }
}
