//! Issue 20 ("hostile input, round two"): what a careless or hostile user tried, each case
//! held to one clear line and the exit code it deserves. No privileges needed.
//!
//! Cases that used to run away (a symlink cycle, /dev/zero, a FIFO) run under a timeout and
//! an address-space limit (`ulimit -v`), so a regression fails the test instead of the machine.

use assert_cmd::Command;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

/// Address-space limit for the runaway cases: far above what a refusal needs, far below
/// what the old behaviour reached (13.6 GB for the cycle, 6 GB in 10 s for /dev/zero).
const AS_LIMIT_KIB: u64 = 2 << 20;

/// `tcplab ARGS` under `ulimit -v` and a 60 s timeout (generous for a busy machine; the
/// failures these guard against never end).
fn bounded(args: &[&str], cwd: &Path) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("tcplab");
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {AS_LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(bin)
        .args(args)
        .current_dir(cwd)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Item 1: two symlink cycles made discovery grow without end; one cycle ran a file 41×.
#[test]
fn run_walks_a_symlink_cycle_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("d/sub")).unwrap();
    // Invalid on purpose: the error is printed once per file found, before anything runs.
    std::fs::write(tmp.path().join("d/sub/a.toml"), "name = \"x\"\n").unwrap();
    std::os::unix::fs::symlink("..", tmp.path().join("d/sub/up")).unwrap();
    std::os::unix::fs::symlink("../..", tmp.path().join("d/sub/up2")).unwrap();
    let out = bounded(&["run", "d", "d", "d/sub/a.toml"], tmp.path());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err, "tcplab: d/sub/a.toml:1:1: missing field `expect`\n",
        "one file, named three ways, is loaded once"
    );
}

/// Item 2: `/dev/zero` was read until memory ran out; a FIFO blocked `run` and `analyze`.
#[test]
fn run_and_analyze_refuse_unbounded_and_blocking_files_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/dev/zero", tmp.path().join("zero.toml")).unwrap();
    nix::unistd::mkfifo(&tmp.path().join("fifo.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    std::fs::write(tmp.path().join("big.toml"), vec![b'#'; (1 << 20) + 1]).unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["run", "/dev/zero"],
            "tcplab: /dev/zero: not a regular file (a character device); a scenario is a *.toml file\n",
        ),
        (
            &["run", "zero.toml"],
            "tcplab: zero.toml: not a regular file (a character device); a scenario is a *.toml file\n",
        ),
        (
            &["run", "fifo.toml"],
            "tcplab: fifo.toml: not a regular file (a FIFO); a scenario is a *.toml file\n",
        ),
        (
            &["run", "big.toml"],
            "tcplab: big.toml: larger than 1048576 bytes, the most a scenario file may have\n",
        ),
        (
            &["sweep", "zero.toml", "--vary", "repeat=1"],
            "tcplab: zero.toml: not a regular file (a character device); a scenario is a *.toml file\n",
        ),
        (
            &["analyze", "fifo.toml"],
            "tcplab: fifo.toml: not a regular file (a FIFO); to read a stream, pipe it to `tcplab analyze -`\n",
        ),
        (
            &["analyze", "/dev/zero"],
            "tcplab: /dev/zero: not a regular file (a character device); to read a stream, pipe it to `tcplab analyze -`\n",
        ),
    ];
    for (args, want) in cases {
        let out = bounded(args, tmp.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), want, "{args:?}");
    }
    // `analyze -` still reads a stream.
    let out = tcplab()
        .args(["analyze", "--summary", "-"])
        .write_stdin(&b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00\0\0\0\0\0\0\0\0\xff\xff\0\0\x01\0\0\0"[..])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
