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

/// Item 5: a message that cannot be written (stderr on /dev/full) panicked: exit 101.
#[test]
fn an_unwritable_stderr_keeps_the_exit_code_the_error_deserves() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("bad.toml"), "name = \"x\"\n").unwrap();
    let cases: [(&[&str], i32); 4] = [
        (&["analyze", "/nonexistent"], 2),
        (&["run", "bad.toml"], 2),
        (&["sweep", "bad.toml", "--vary", "repeat=1"], 2),
        (&["compare", "/nonexistent-a", "/nonexistent-b"], 2),
    ];
    for (args, want) in cases {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
            .args(args)
            .current_dir(tmp.path())
            .stderr(full)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("runs");
        assert_eq!(status.code(), Some(want), "{args:?}");
    }
}

/// Whether /proc/PID/status shows `sig` blocked or caught: the process has reached the
/// point where a signal is no longer fatal by default.
fn signal_taken(pid: u32, sig: nix::sys::signal::Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let bit = 1u64 << (sig as i32 - 1);
    status.lines().any(|l| {
        let (key, hex) = l.split_once(':').unwrap_or_default();
        matches!(key, "SigBlk" | "SigCgt")
            && u64::from_str_radix(hex.trim(), 16).is_ok_and(|m| m & bit != 0)
    })
}

/// Item 9: SIGTERM early in a command's life exited 143 (default action) instead of 130.
/// The signal is sent at the first moment the process holds it (in `main`, before anything
/// else); without that, after 10 s in any case.
#[test]
fn sigterm_at_once_is_an_interruption_exit_130() {
    use nix::sys::signal::{kill, Signal};
    use std::process::{Command as Std, Stdio};
    use std::time::Instant;
    // `analyze -` on a pipe that never ends: it would wait forever.
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .args(["analyze", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !signal_taken(pid, Signal::SIGTERM) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).expect("kill");
    // Kept open until the child is gone: an end of input would end it another way.
    let stdin = child.stdin.take();
    let out = child.wait_with_output().expect("waits");
    drop(stdin);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
}

fn seed_scenario() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed/seed-three-way.toml")
}

/// `tcplab ARGS` with an empty PATH: no apt, no QEMU can start, so the refusals below are
/// shown to come before any of them.
fn without_tools(args: &[&str]) -> Output {
    tcplab()
        .args(args)
        .env("PATH", "")
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs")
}

/// Items 7 and 8: `kernels fetch` junk reached apt; a tampered cache reached QEMU; a
/// missing --kernel file was "fetched"; `--kernel ""` matched any cached kernel.
#[test]
fn kernel_specs_and_cache_entries_are_checked_before_any_tool_runs() {
    let cache = tempfile::tempdir().expect("tempdir");
    let c = cache.path().to_str().unwrap();
    let seed = seed_scenario();
    let seed = seed.to_str().unwrap();

    let out = without_tools(&["kernels", "fetch", "--cache", c, "6.1; rm -rf /"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "tcplab: kernels fetch 6.1; rm -rf /: \"6.1; rm -rf /\": a kernel SPEC is a version prefix like 6.1 (a digit, then digits, lowercase letters and . + ~ -) or a package name like linux-image-6.1.0-57-cloud-amd64\n"
    );
    let out = without_tools(&["kernels", "fetch", "--cache", c, "linux-image-.*"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a kernel SPEC is a version prefix"),
        "{}",
        stderr(&out)
    );

    let out = without_tools(&["run", "--kernel", "/nonexistent", "--cache", c, seed]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "tcplab: --kernel /nonexistent: No such file or directory (a --kernel path must be a bzImage file)\n"
    );

    // A cache entry whose vmlinuz is zeros, with a valid kernel.json.
    let dir = cache.path().join("6.1.0-57-cloud-amd64");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kernel.json"),
        r#"{"release":"6.1.0-57-cloud-amd64","package":"linux-image-6.1.0-57-cloud-amd64","version":"6.1.192-3","deb_bytes":1,"vmlinuz_bytes":4096,"fetched_utc":"20261201T000000Z","source":"apt-get download x","modules":{},"not_modules":[]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("vmlinuz"), vec![0u8; 4096]).unwrap();
    let out = without_tools(&["run", "--kernel", "6.1", "--cache", c, seed]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "tcplab: {}/vmlinuz: not an x86 bzImage (no setup header with a kernel version): the cached kernel 6.1.0-57-cloud-amd64 is damaged (remove {} and fetch it again)\n",
            dir.display(),
            dir.display()
        )
    );
    let out = without_tools(&["run", "--kernel", "", "--cache", c, seed]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("tcplab: an empty --kernel names no kernel"),
        "{}",
        stderr(&out)
    );

    // Item 10: a corrupt kernel.json is listed as damaged, not hidden.
    std::fs::write(dir.join("kernel.json"), "{\"release\": \"6.1").unwrap();
    let out = without_tools(&["kernels", "list", "--cache", c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with(&format!(
            "tcplab: warning: damaged cache entry {}: {}/kernel.json: EOF while parsing",
            dir.display(),
            dir.display()
        )),
        "{}",
        stderr(&out)
    );
}

/// Item 6: messages that misled, repeated the OS error, split in two or echoed a huge value.
#[test]
fn messages_say_what_is_wrong_once_and_briefly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let link = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/link/lost-fin.toml"),
    )
    .unwrap();
    let seed = std::fs::read_to_string(seed_scenario()).unwrap();
    assert!(link.contains("\nnth = 1\n") && seed.contains("\nrepeat = 20\n"));
    let files = [
        (
            "nth1.toml",
            link.replace("\nnth = 1\n", "\nnth = 4294967296\n"),
        ),
        (
            "nth2.toml",
            link.replace("\nnth = 1\n", "\nnth = 18446744073709551616\n"),
        ),
        (
            "big.toml",
            seed.replace(
                "\nrepeat = 20\n",
                "\nrepeat = 20\ntiming_tolerance_ms = 1e308\n",
            ),
        ),
        (
            "long.toml",
            seed.replace(
                "name = \"seed-three-way\"",
                &format!("name = \"{}\"", "x".repeat(10_000)),
            ),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(tmp.path().join(name), text).unwrap();
    }
    let line_of = |name: &str, needle: &str| {
        let text = &files.iter().find(|(n, _)| *n == name).unwrap().1;
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    };
    let run = |file: &str| {
        let out = tcplab()
            .args(["run", file])
            .current_dir(tmp.path())
            .timeout(Duration::from_secs(60))
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{file}: {}", stderr(&out));
        stderr(&out)
    };
    let e = run("nth1.toml");
    assert!(
        e.ends_with("nth must be at most 4294967295, got 4294967296\n"),
        "{e}"
    );
    let e = run("nth2.toml");
    assert_eq!(
        e,
        format!(
            "tcplab: nth2.toml:{}:7: integer 18446744073709551616 is out of range (a TOML integer is at most 9223372036854775807)\n",
            line_of("nth2.toml", "nth =")
        )
    );
    let e = run("big.toml");
    assert!(e.ends_with("got 1e308\n"), "{e}");
    let e = run("long.toml");
    assert!(e.len() < 400, "{e}");
    assert!(e.contains("… (10000 characters)"), "{e}");

    // The OS error once; a file in the way of --out is "not a directory".
    std::fs::write(tmp.path().join("afile"), "").unwrap();
    let out = tcplab()
        .args(["sweep", "--vary", "repeat=1", "--out", "afile"])
        .arg(seed_scenario())
        .current_dir(tmp.path())
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out), "tcplab: afile: not a directory\n");
    let out = tcplab()
        .args(["kernels", "list", "--cache", "afile"])
        .current_dir(tmp.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "tcplab: reading afile: afile: Not a directory (os error 20)\n"
    );
}

/// Item 6, the sysctl part: tried in a fresh namespace before any run (needs namespaces).
#[cfg(feature = "netns-tests")]
#[test]
fn netns_sysctl_messages_blame_the_key_or_the_value_on_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let seed = std::fs::read_to_string(seed_scenario()).unwrap();
    let with = |table: &str| format!("{seed}\n[sysctl]\n{table}\n");
    std::fs::write(
        tmp.path().join("rmem.toml"),
        with("\"net.core.rmem_max\" = \"1000\""),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("nl.toml"),
        with("\"net.ipv4.tcp_timestamps\" = \"1\\n2\""),
    )
    .unwrap();
    for (file, want) in [
        (
            "rmem.toml",
            "sysctl `net.core.rmem_max`: not settable per namespace (read-only inside a network namespace: the host's key)\n",
        ),
        (
            "nl.toml",
            "sysctl `net.ipv4.tcp_timestamps`: the kernel does not keep the value `1\\n2` (reads back `1`)\n",
        ),
    ] {
        let out = tcplab()
            .args(["run", "--repeat", "1", "--out", "results", file])
            .current_dir(tmp.path())
            .timeout(Duration::from_secs(120))
            .output()
            .expect("runs");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
        assert!(err.ends_with(want), "{file}: {err}");
    }
}

/// Item 10: `run … | true` stopped after the first scenario (one of two summaries written).
#[cfg(feature = "netns-tests")]
#[test]
fn netns_run_with_a_closed_stdout_still_writes_every_result() {
    use std::process::Stdio;
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .args(["run", "--repeat", "2", "--out"])
        .arg(tmp.path().join("results"))
        .arg(scenarios.join("seed-three-way.toml"))
        .arg(scenarios.join("seed-four-way.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().expect("waits");
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    assert!(!err.contains("Broken pipe"), "quietly: {err}");
    for name in ["seed-three-way", "seed-four-way"] {
        let batches: Vec<_> = std::fs::read_dir(tmp.path().join("results").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{err}"))
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("summary.json").is_file())
            .collect();
        assert_eq!(batches.len(), 1, "{name}: {err}");
    }
}

/// Item 10, the capture part: a tcpdump line timed `99:99:99` was dropped without a word;
/// a lone SYN warned "roles-guessed: no SYN captured".
#[test]
fn analyze_warns_of_an_impossible_time_and_trusts_a_lone_syn() {
    let text = "12:00:00.000001 IP 127.0.0.1.40000 > 127.0.0.1.60000: Flags [S], seq 1, win 1, length 0\n\
                99:99:99.000002 IP 127.0.0.1.60000 > 127.0.0.1.40000: Flags [S.], seq 5, ack 2, win 1, length 0\n";
    let out = tcplab()
        .args(["analyze", "-"])
        .write_stdin(text)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout.contains(
            "warning: damaged-packet:2:line: line 2: time \"99:99:99.000002\" is out of range"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("client 127.0.0.1:40000 → server 127.0.0.1:60000"),
        "{stdout}"
    );
    assert!(!stdout.contains("roles-guessed"), "{stdout}");
}

/// How many threads of process `pid` are called `name` now.
#[cfg(feature = "netns-tests")]
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// Item 9, live: SIGINT while the last point's runs are all in flight was ignored (exit 0,
/// no "interrupted" line); SIGTERM before `run`/`sweep` had a handler exited 143.
#[cfg(feature = "netns-tests")]
#[test]
fn netns_signals_interrupt_run_and_sweep_at_any_moment() {
    use nix::sys::signal::{kill, Signal};
    use std::io::{BufRead, BufReader};
    use std::process::{Command as Std, Stdio};
    use std::time::Instant;
    let tmp = tempfile::tempdir().expect("tempdir");
    let four_way =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed/seed-four-way.toml");
    let bin = assert_cmd::cargo::cargo_bin("tcplab");
    let pid_of = |c: &std::process::Child| nix::unistd::Pid::from_raw(c.id() as i32);

    // One point, two runs at once, each holding its close for 3 s: after the sweep's header
    // line both are in flight (or, on a very slow machine, not started: a cancel either way).
    let mut sweep = Std::new(&bin)
        .args(["sweep", "--repeat", "2", "--jobs", "2", "--out"])
        .arg(tmp.path().join("sweep"))
        .args(["--vary", "server.close_delay_ms=3000"])
        .arg(&four_way)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(sweep.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("stderr");
        let header = line.starts_with("sweep ");
        seen.push(line);
        if header {
            break;
        }
    }
    // Both runs in flight: each run's server thread (named `tcplab-server`) holds its close
    // for 3 s. Waited for, not guessed: a busy machine may take long to start them.
    let deadline = Instant::now() + Duration::from_secs(120);
    while threads_named(sweep.id(), "tcplab-server") < 2 {
        assert!(
            sweep.try_wait().expect("try_wait").is_none(),
            "the sweep ended before its runs were in flight: {seen:?}"
        );
        assert!(
            Instant::now() < deadline,
            "the runs never started: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(pid_of(&sweep), Signal::SIGINT).expect("kill");
    seen.extend(lines.map_while(Result::ok));
    let status = sweep.wait().expect("waits");
    let err = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("\ninterrupted: "), "{err}");

    // SIGTERM at the first moment the process holds it: before any handler could exist.
    for args in [
        vec!["run", "--repeat", "1", "--out"],
        vec!["sweep", "--repeat", "1", "--vary", "repeat=1", "--out"],
    ] {
        let child = Std::new(&bin)
            .args(&args)
            .arg(tmp.path().join(args[0]))
            .arg(&four_way)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !signal_taken(child.id(), Signal::SIGTERM) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        kill(pid_of(&child), Signal::SIGTERM).expect("kill");
        let out = child.wait_with_output().expect("waits");
        assert_eq!(out.status.code(), Some(130), "{args:?}: {}", stderr(&out));
    }
}
