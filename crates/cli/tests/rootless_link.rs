//! Link scenarios as an ordinary user inside an unprivileged user namespace (feature
//! `netns-tests`; run as root, the test drops to uid/gid 65534 with `setpriv` and enters
//! `unshare -Urn` itself). There is no TUN device and no SCHED_FIFO there: the link runs on
//! veth pairs with a packet-socket relay, at normal priority, and says so once.
#![cfg(feature = "netns-tests")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn netns_link_scenarios_run_without_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/link");
    // The kernel-state expectations need tracepoints, which an ordinary user does not have
    // (the fallback, sock_diag polling, may miss a state shorter than its interval on a busy
    // machine): the copies check what the link itself promises.
    let mut files = Vec::new();
    for name in ["lost-final-ack.toml", "simultaneous.toml"] {
        let text = std::fs::read_to_string(src.join(name)).expect("scenario");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("kernel_states"))
            .collect();
        let p = dir.path().join(name);
        std::fs::write(&p, kept.join("\n") + "\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        files.push(p);
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "-Urn"])
        .arg(env!("CARGO_BIN_EXE_tcplab"))
        .args(["run", "--json", "--repeat", "6", "--jobs", "2", "--out"])
        .arg(dir.path().join("results"))
        .args(&files)
        .output()
        .expect("setpriv runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("cannot create") && !stderr.contains("permission denied"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("real-time priority").count(),
        1,
        "said once: {stderr}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    // At normal priority on a busy machine a program may still miss its close delay after
    // the retries: such a run is a timing miss, not counted as the kernel's outcome. Every
    // counted run has the expected outcome, and counted + missed = all.
    // A batch whose every run missed (a machine too busy for the scenario) ran again at the
    // end of the suite; still all missed, it is inconclusive (not passed, not failed) and
    // the exit is 3: the one way this test accepts a non-zero exit. Such a line comes last,
    // so lines are found by their file.
    let mut all_missed = false;
    for (name, outcome) in [
        ("lost-final-ack.toml", "four-way/client"),
        ("simultaneous.toml", "simultaneous/both"),
    ] {
        let line = line_of(&lines, name);
        let counts = line["counts"].as_object().expect("counts");
        let counted: u64 = counts.values().map(|n| n.as_u64().expect("count")).sum();
        let missed = line["timing_miss_runs"].as_u64().expect("timing_miss_runs");
        // Shown with --nocapture: how often a busy machine made runs retry.
        eprintln!(
            "{outcome}: counts {} timing_misses {} timing_miss_runs {missed}",
            line["counts"], line["timing_misses"]
        );
        assert_eq!(counted + missed, 6, "{line}");
        if counted == 0 {
            all_missed = true;
            assert_busy_batch_is_inconclusive(line, 6);
            continue;
        }
        assert_eq!(
            line.get("inconclusive"),
            None,
            "written only when true: {line}"
        );
        assert_eq!(counts.len(), 1, "only {outcome}: {line}");
        assert_eq!(counts[outcome].as_u64(), Some(counted), "{line}");
        assert_eq!(line["passed"], true, "{line}");
    }
    let want = if all_missed { 3 } else { 0 };
    assert_eq!(out.status.code(), Some(want), "{stdout}\n{stderr}");
    assert_busy_said_on_stderr(&lines, &stderr);
    // Both ends' captures exist and agree, as with root.
    let summary = |name: &str| -> serde_json::Value {
        let base = dir.path().join("results").join(name);
        serde_json::from_str(
            &std::fs::read_to_string(newest_batch(&base).join("summary.json")).expect("summary"),
        )
        .expect("json")
    };
    for name in ["lost-final-ack", "simultaneous"] {
        let s = summary(name);
        for r in s["run_outcomes"].as_array().expect("run_outcomes") {
            if r["timing_miss"].is_string() {
                continue;
            }
            assert_eq!(r["views_disagree"], false, "{r}");
            assert_eq!(r["server_view"]["kind"], r["kind"], "{r}");
        }
    }
}

/// Scripted segments without root: the relay on packet sockets forges and replays segments
/// in Ethernet frames (header copied from the sender's, checksums computed) and holds one
/// behind another; the kernels answer them as over TUN, and the record lists each one.
#[test]
fn netns_scripted_segments_without_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    // As above: kernel-state expectations need tracepoints; RSTs and kinds are the capture's.
    let names = [
        ("states/stray-ack-to-closed.toml", "four-way/client", 1),
        ("states/data-after-close-resets.toml", "reset/client", 1),
        ("link/fin-overtakes-data.toml", "four-way/server", 0),
    ];
    let mut files = Vec::new();
    for (name, _, _) in names {
        let text = std::fs::read_to_string(src.join(name)).expect("scenario");
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("kernel_")).collect();
        let p = dir.path().join(name.replace('/', "-"));
        std::fs::write(&p, kept.join("\n") + "\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        files.push(p);
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "-Urn"])
        .arg(env!("CARGO_BIN_EXE_tcplab"))
        .args(["run", "--json", "--repeat", "4", "--jobs", "2", "--out"])
        .arg(dir.path().join("results"))
        .args(&files)
        .output()
        .expect("setpriv runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}\n{stderr}");
    let mut all_missed = false;
    for (name, outcome, injected) in names {
        let line = line_of(&lines, &name.replace('/', "-"));
        let counts = line["counts"].as_object().expect("counts");
        let counted: u64 = counts.values().map(|n| n.as_u64().expect("count")).sum();
        if counted == 0 {
            // A machine too busy for the programs' close delays at normal priority.
            all_missed = true;
            assert_busy_batch_is_inconclusive(line, 4);
            continue;
        }
        assert_eq!(counts[outcome].as_u64(), Some(counted), "{name}: {line}");
        assert_eq!(line["passed"], true, "{name}: {line}");
        let base = dir
            .path()
            .join("results")
            .join(Path::new(&name.replace('/', "-")).with_extension(""));
        let batch = newest_batch(&base);
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(batch.join("summary.json")).unwrap())
                .unwrap();
        for r in s["run_outcomes"].as_array().expect("run_outcomes") {
            if r["timing_miss"].is_string() {
                continue;
            }
            let n = r
                .get("injected")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len);
            assert_eq!(n, injected, "{name}: {r}");
        }
    }
    let want = if all_missed { 3 } else { 0 };
    assert_eq!(out.status.code(), Some(want), "{stdout}\n{stderr}");
    assert_busy_said_on_stderr(&lines, &stderr);
}

/// The `--json` line of the scenario copied to the file `name`.
fn line_of<'a>(lines: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["file"].as_str().is_some_and(|f| f.ends_with(name)))
        .unwrap_or_else(|| panic!("no line for {name}: {lines:?}"))
}

/// A batch none of whose `runs` could be timed, also when run again at the suite's end: not
/// passed, marked inconclusive, with the machine named as the reason (not the kernel).
fn assert_busy_batch_is_inconclusive(line: &serde_json::Value, runs: u64) {
    assert_eq!(line["passed"], false, "{line}");
    assert_eq!(line["inconclusive"], true, "{line}");
    let why = line["mismatch"].as_str().unwrap_or("");
    assert!(
        why.starts_with(&format!("every run ({runs}) missed its timing"))
            && why.contains("too busy"),
        "{line}"
    );
}

/// Each scenario that had to run again at the end was said so on stderr.
fn assert_busy_said_on_stderr(lines: &[serde_json::Value], stderr: &str) {
    for l in lines.iter().filter(|l| l["inconclusive"] == true) {
        let name = l["scenario"].as_str().expect("scenario");
        assert!(
            stderr.contains(&format!("{name}: every run missed its timing")),
            "{stderr}"
        );
    }
}

/// The newest batch directory of a scenario (its stamps sort by time): a scenario tried
/// again at the end of the suite has one per try.
fn newest_batch(base: &Path) -> std::path::PathBuf {
    let mut batches: Vec<_> = std::fs::read_dir(base)
        .expect("batch dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    batches.sort();
    batches.pop().expect("one batch")
}
