//! `tcplab run --format ktap` / `--kselftest`, and examples/selftests/ run by the kernel's own
//! kselftest runner (from Debian's linux-source-6.1, which `make deps` installs).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file with just an x86 boot setup header naming `release` (what `--kernel PATH` reads
/// before anything boots).
fn fake_bzimage(path: &Path, release: &str) {
    let mut b = vec![0u8; 0x1000];
    b[0x202..0x206].copy_from_slice(b"HdrS");
    let ptr: u16 = 0x0c00 - 0x200;
    b[0x20e..0x210].copy_from_slice(&ptr.to_le_bytes());
    b[0x0c00..0x0c00 + release.len()].copy_from_slice(release.as_bytes());
    std::fs::write(path, b).expect("write image");
}

#[test]
fn kselftest_without_qemu_is_a_skip_with_exit_4_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("bzImage");
    fake_bzimage(&image, "6.1.0-99-test (nobody@example) #1 SMP");
    let out = tcplab()
        .args([
            "run",
            "--kselftest",
            "--qemu",
            "/nonexistent/qemu",
            "--kernel",
        ])
        .arg(&image)
        .arg("--out")
        .arg(dir.path().join("results"))
        .arg(repo().join("scenarios/seed/seed-three-way.toml"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.starts_with("TAP version 13\n1..0 # SKIP cannot start /nonexistent/qemu"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(!dir.path().join("results").exists());
    // A version that is not cached is not fetched first: no QEMU, no point.
    let cache = dir.path().join("cache");
    let out = tcplab()
        .args([
            "run",
            "--kselftest",
            "--qemu",
            "/nonexistent/qemu",
            "--kernel",
            "6.1",
        ])
        .arg("--cache")
        .arg(&cache)
        .arg(repo().join("scenarios/seed/seed-three-way.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4));
    assert!(
        !cache.join("6.1").exists() && !String::from_utf8_lossy(&out.stderr).contains("fetching")
    );
    // Without --kselftest the same machine is a usage error (exit 2), nothing on stdout.
    let out = tcplab()
        .args(["run", "--qemu", "/nonexistent/qemu", "--kernel"])
        .arg(&image)
        .arg(repo().join("scenarios/seed/seed-three-way.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn json_and_format_do_not_mix() {
    let out = tcplab()
        .args(["run", "--json", "--format", "ktap"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[cfg(feature = "netns-tests")]
mod live {
    use super::*;

    /// `ok N - name` / `not ok N - name` lines of a KTAP document (top level only).
    fn results(ktap: &str) -> Vec<&str> {
        ktap.lines()
            .filter(|l| l.starts_with("ok ") || l.starts_with("not ok "))
            .collect()
    }

    #[test]
    fn netns_run_format_ktap_reports_each_scenario_with_counts_and_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = tcplab()
            .args(["run", "--format", "ktap", "--repeat", "4", "--out"])
            .arg(dir.path().join("results"))
            .arg(repo().join("scenarios/seed/seed-three-way.toml"))
            .arg(repo().join("scenarios/reset/server-linger0.toml"))
            // The linger-0 scenario without linger 0 closes with a FIN: its expectation fails.
            .args(["--set", "server.close=close"])
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines[..2], ["TAP version 13", "1..2"], "{stdout}");
        assert_eq!(
            results(&stdout),
            ["ok 1 - seed-three-way", "not ok 2 - server-linger0"],
            "{stdout}"
        );
        assert!(
            stdout.contains("# seed-three-way: three-way/server ×4"),
            "{stdout}"
        );
        assert!(
            stdout.contains("# mismatch: run 1: expected reset/server, got three-way/server"),
            "{stdout}"
        );
        assert_eq!(
            lines.last(),
            Some(&"# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0"),
            "{stdout}"
        );
        // Every other line is a diagnostic.
        for l in &lines[2..] {
            assert!(
                l.starts_with("# ") || l.starts_with("ok ") || l.starts_with("not ok "),
                "{l}"
            );
        }
    }

    #[test]
    fn netns_kselftest_with_kernels_has_one_test_per_scenario_and_kernel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = tcplab()
            .args(["run", "--kselftest", "--repeat", "2", "--kernel", "host"])
            .args(["--kernel", "host", "--out"])
            .arg(dir.path().join("results"))
            .arg(repo().join("scenarios/seed/seed-three-way.toml"))
            .arg(repo().join("scenarios/reset/server-linger0.toml"))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("uname -r");
        let release = release.trim();
        assert!(stdout.starts_with("TAP version 13\n1..4\n"), "{stdout}");
        assert_eq!(
            results(&stdout),
            [
                format!("ok 1 - seed-three-way [{release}]"),
                format!("ok 2 - server-linger0 [{release}]"),
                format!("ok 3 - seed-three-way [{release}]"),
                format!("ok 4 - server-linger0 [{release}]"),
            ],
            "{stdout}"
        );
        assert!(stdout.ends_with("# Totals: pass:4 fail:0 xfail:0 xpass:0 skip:0 error:0\n"));
    }

    /// No root and no way to get a user namespace (a namespace whose root dropped every
    /// capability and whose `user.max_user_namespaces` is 0): kselftest's skip.
    #[test]
    fn netns_kselftest_without_privileges_is_exit_4() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = assert_cmd::cargo::cargo_bin("tcplab");
        let script = format!(
            "echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv \
             --securebits +noroot,+noroot_locked,+no_setuid_fixup,+no_setuid_fixup_locked \
             --bounding-set -all --inh-caps -all '{}' run --kselftest --out '{}' '{}'",
            bin.display(),
            dir.path().join("results").display(),
            repo().join("scenarios/seed/seed-three-way.toml").display()
        );
        let out = std::process::Command::new("unshare")
            .args(["-Ur", "sh", "-c", &script])
            .output()
            .expect("unshare runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
        assert!(
            stdout.starts_with("TAP version 13\n1..0 # SKIP `tcplab run` needs root"),
            "{stdout}"
        );
        assert!(!dir.path().join("results").exists());
    }

    /// The kernel's kselftest runner (lib.mk + kselftest/runner.sh from Debian's
    /// linux-source-6.1, only those files extracted) runs examples/selftests/ as
    /// tools/testing/selftests/tcplab/: both programs pass; a program made to fail is
    /// `not ok` with our exit code; without tcplab both are kselftest skips.
    #[test]
    fn netns_examples_selftests_pass_under_the_real_kselftest_runner() {
        let tarball = Path::new("/usr/src/linux-source-6.1.tar.xz");
        assert!(
            tarball.is_file(),
            "{} is missing: `make deps` installs Debian's linux-source-6.1",
            tarball.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let st = std::process::Command::new("tar")
            .arg("-xJf")
            .arg(tarball)
            .arg("-C")
            .arg(dir.path())
            .args([
                "linux-source-6.1/tools/testing/selftests/lib.mk",
                "linux-source-6.1/tools/testing/selftests/kselftest/",
            ])
            .status()
            .expect("tar runs");
        assert!(st.success(), "extracting the kselftest runner failed");
        let selftests = dir.path().join("linux-source-6.1/tools/testing/selftests");
        assert!(selftests.join("kselftest/runner.sh").is_file());
        let ours = selftests.join("tcplab");
        let st = std::process::Command::new("cp")
            .arg("-r")
            .arg(repo().join("examples/selftests"))
            .arg(&ours)
            .status()
            .expect("cp runs");
        assert!(st.success());
        let bin = assert_cmd::cargo::cargo_bin("tcplab");
        let make = |tcplab: &Path, extra: &[(&str, &str)]| {
            let mut c = std::process::Command::new("make");
            c.arg("-s")
                .arg("-C")
                .arg(&ours)
                .arg("run_tests")
                .env("TCPLAB", tcplab)
                .env("TCPLAB_OUT", dir.path().join("results"))
                .env_remove("MAKEFLAGS")
                .env_remove("MFLAGS");
            for (k, v) in extra {
                c.env(k, v);
            }
            let out = c.output().expect("make runs");
            assert!(out.status.success(), "make run_tests: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };

        let ktap = make(&bin, &[]);
        let lines: Vec<&str> = ktap.lines().collect();
        assert_eq!(lines[..2], ["TAP version 13", "1..2"], "{ktap}");
        assert_eq!(
            results(&ktap),
            [
                "ok 1 selftests: tcplab: three_way_close.sh",
                "ok 2 selftests: tcplab: reset_linger0.sh"
            ],
            "{ktap}"
        );
        // Our own KTAP, nested by the runner's "# " prefix.
        for inner in [
            "# TAP version 13",
            "# ok 1 - ksft-three-way-close",
            "# ok 1 - ksft-reset-linger0",
            "# # ksft-reset-linger0: reset/server ×10",
            "# # Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0",
        ] {
            assert!(ktap.contains(inner), "missing {inner:?} in\n{ktap}");
        }

        // kselftest passes KSELFTEST_<PROGRAM>_ARGS on: closing without linger 0 fails.
        let ktap = make(
            &bin,
            &[
                (
                    "KSELFTEST_RESET_LINGER0_SH_ARGS",
                    "--set server.close=close",
                ),
                ("KSELFTEST_THREE_WAY_CLOSE_SH_ARGS", "--repeat 2"),
            ],
        );
        assert_eq!(
            results(&ktap),
            [
                "ok 1 selftests: tcplab: three_way_close.sh",
                "not ok 2 selftests: tcplab: reset_linger0.sh # exit=1"
            ],
            "{ktap}"
        );
        assert!(
            ktap.contains("# # mismatch: run 1: expected reset/server, got three-way/server"),
            "{ktap}"
        );

        // No tcplab on this machine: kselftest's skip code, so the runner says SKIP.
        let ktap = make(Path::new("/nonexistent/tcplab"), &[]);
        assert_eq!(
            results(&ktap),
            [
                "ok 1 selftests: tcplab: three_way_close.sh # SKIP",
                "ok 2 selftests: tcplab: reset_linger0.sh # SKIP"
            ],
            "{ktap}"
        );
    }
}
