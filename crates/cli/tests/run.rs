//! `tcplab run`: validation errors (no privileges needed) and live runs (feature `netns-tests`).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn run_rejects_a_bad_scenario_with_file_line_column_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "# x\n[server]\nclose_delay_ms = 1\nlinger = true\n[expect]\nkind = \"reset\"\n",
    )
    .expect("write");
    let out = tcplab().arg("run").arg(&p).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!("tcplab: {}:4:1: unknown field `linger`", p.display());
    assert!(err.starts_with(&want), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn run_rejects_unknown_set_knob() {
    let out = tcplab()
        .args(["run", "--set", "client.delay=3"])
        .arg(scenarios().join("seed/seed-three-way.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown knob `client.delay`"));
}

#[test]
fn run_checks_an_unwritable_junit_path_before_running() {
    let out = tcplab()
        .args(["run", "--junit", "/nonexistent-dir/junit.xml"])
        .arg(scenarios().join("seed/seed-three-way.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tcplab: --junit /nonexistent-dir/junit.xml:"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// A `[sysctl]` key the running kernel lacks, in a file that does not say a later kernel
/// added it (`since_kernel`), is a typo: the file's error, naming file, line and key, before
/// anything runs (no privileges needed).
#[test]
fn run_refuses_a_sysctl_key_no_kernel_gate_explains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("typo.toml");
    std::fs::write(
        &p,
        "# x\n[sysctl]\n\"net.ipv4.tcp_no_such_knob\" = 1\n[expect]\nkind = \"reset\"\n",
    )
    .expect("write");
    let out = tcplab().arg("run").arg(&p).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "tcplab: {}:3:1: sysctl `net.ipv4.tcp_no_such_knob`: no such key under /proc/sys/net on this kernel",
        p.display()
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains("since_kernel"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty());
}

/// A file gated by `since_kernel` on a kernel older than it, lacking its `[sysctl]` key.
#[cfg(feature = "netns-tests")]
const NEEDS_A_LATER_KERNEL: &str = "# x\nsince_kernel = \"99.0\"\n[sysctl]\n\"net.ipv4.tcp_no_such_knob\" = 1\n[expect]\nkind = \"reset\"\n";

#[cfg(feature = "netns-tests")]
mod live {
    use super::*;

    /// A host run skips a scenario whose `[sysctl]` key this kernel lacks (older than its
    /// since_kernel) and runs the rest, as a `run --kernel` guest does: the same reason, the
    /// same SKIP line, JUnit `<skipped>` and JSON skip record, and exit 0 when the rest pass.
    #[test]
    fn netns_run_skips_a_scenario_whose_sysctl_the_kernel_lacks_and_runs_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let later = dir.path().join("needs-later.toml");
        std::fs::write(&later, NEEDS_A_LATER_KERNEL).expect("write");
        let junit = dir.path().join("junit.xml");
        let why = "sysctl `net.ipv4.tcp_no_such_knob`: no such key under /proc/sys/net on this \
                   kernel (older than the scenario's since_kernel 99.0)";
        let out = tcplab()
            .args(["run", "--repeat", "2", "--jobs", "1", "--out"])
            .arg(dir.path().join("results"))
            .arg("--junit")
            .arg(&junit)
            .arg(&later)
            .arg(scenarios().join("seed/seed-three-way.toml"))
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text}\n{err}");
        assert!(text.contains("PASS  seed-three-way"), "{text}");
        assert!(text.contains("SKIP  needs-later "), "{text}");
        assert!(text.contains(&format!(" 0 runs  skipped: {why}")), "{text}");
        assert!(text.contains("1 passed, 0 failed, 1 skipped"), "{text}");
        assert!(
            !dir.path().join("results/needs-later").exists(),
            "a skipped scenario writes no batch"
        );
        let x = std::fs::read_to_string(&junit).expect("junit");
        assert!(x.contains("tests=\"2\" failures=\"0\""), "{x}");
        assert!(x.contains("skipped=\"1\""), "{x}");
        assert!(
            x.contains("<skipped message=\"sysctl `net.ipv4.tcp_no_such_knob`"),
            "{x}"
        );

        let out = tcplab()
            .args(["run", "--repeat", "2", "--jobs", "1", "--json", "--out"])
            .arg(dir.path().join("results"))
            .arg(&later)
            .arg(scenarios().join("seed/seed-three-way.toml"))
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["scenario"], "needs-later");
        assert_eq!(lines[0]["skipped"], why);
        assert_eq!(lines[0]["passed"], serde_json::Value::Null);
        assert_eq!(lines[1]["scenario"], "seed-three-way");
        assert_eq!(lines[1]["passed"], true);
    }

    #[test]
    fn netns_run_json_prints_one_object_per_scenario() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junit = dir.path().join("junit.xml");
        let run = |attempt: u32| {
            tcplab()
                .args(["run", "--repeat", "4", "--json", "--jobs", "2", "--out"])
                .arg(dir.path().join(format!("results-{attempt}")))
                .arg("--junit")
                .arg(&junit)
                .arg(scenarios().join("seed/seed-three-way.toml"))
                .arg(scenarios().join("seed/seed-four-way.toml"))
                .output()
                .expect("runs")
        };
        let mut out = run(1);
        // From 6.7 on, about one seed-three-way run in 1,500 is the four-way of the deferred
        // ACK (see the scenario): one in four runs breaks its 95% bound. That race, and only
        // it, gets one more try.
        let race = |stdout: &str| {
            stdout.lines().next().is_some_and(|l| {
                l.contains("\"scenario\":\"seed-three-way\"")
                    && l.contains("\"four-way/server\"")
                    && l.contains("\"passed\":false")
            })
        };
        if race(&String::from_utf8_lossy(&out.stdout)) {
            out = run(2);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{stdout}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
        assert_eq!(v["scenario"], "seed-three-way");
        // The expectation as it holds on this kernel: exact before 6.7, a bounded race
        // from 6.7 on (the file's [expect.since_kernel."6.7"]: 6.7's deferred ACK).
        match v["expect"]["kind"].as_str() {
            Some(k) => assert_eq!(k, "three-way", "{v}"),
            None => {
                assert_eq!(v["expect"]["kinds"][0], "three-way", "{v}");
                assert_eq!(v["expect"]["min_ratio"]["three-way/server"], 0.95, "{v}");
            }
        }
        assert_eq!(v["expect"]["active_closer"], "server");
        // On a busy machine a run whose programs missed their close delay three times is a
        // timing miss: counted apart, never as the kernel's outcome. Every run is one or the other.
        let misses = v["timing_miss_runs"].as_u64().expect("timing_miss_runs");
        assert_eq!(v["runs"].as_u64().expect("runs") + misses, 4, "{v}");
        assert!(v["runs"].as_u64() >= Some(1), "no run counted: {v}");
        assert_eq!(v["counts"]["three-way/server"], v["runs"], "{v}");
        assert_eq!(v["drops"], 0);
        assert_eq!(v["passed"], true);
        let rd = PathBuf::from(v["results_dir"].as_str().expect("results_dir"));
        for f in [
            "summary.json",
            "meta.json",
            "run-0001/capture.pcap",
            "run-0004/analysis.json",
            "run-0002/report.txt",
        ] {
            assert!(rd.join(f).is_file(), "{}", rd.join(f).display());
        }
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rd.join("meta.json")).expect("meta"))
                .expect("json");
        assert!(!meta["kernel"].as_str().unwrap_or("").is_empty());
        assert_eq!(meta["sysctls_pinned"]["net.ipv4.tcp_no_metrics_save"], "1");
        let v2: serde_json::Value = serde_json::from_str(lines[1]).expect("json");
        let misses2 = v2["timing_miss_runs"].as_u64().expect("timing_miss_runs");
        assert_eq!(v2["runs"].as_u64().expect("runs") + misses2, 4, "{v2}");
        assert!(v2["runs"].as_u64() >= Some(1), "no run counted: {v2}");
        assert_eq!(v2["counts"]["four-way/client"], v2["runs"], "{v2}");
        let x = std::fs::read_to_string(&junit).expect("junit written");
        assert!(x.contains("tests=\"2\" failures=\"0\""), "{x}");
    }

    #[test]
    fn netns_run_rejects_sysctls_a_namespace_does_not_take_before_any_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (body, want) in [
            // Exists on the host, but not per-namespace (absent in a fresh namespace).
            (
                "\"net.core.netdev_max_backlog\" = 2000",
                "not a per-namespace key",
            ),
            (
                "\"net.ipv4.tcp_sack\" = \"banana\"",
                "refuses the value `banana`",
            ),
        ] {
            let p = dir.path().join("s.toml");
            std::fs::write(
                &p,
                format!("# x\n[sysctl]\n{body}\n[expect]\nkind = \"reset\"\n"),
            )
            .expect("write");
            let results = dir.path().join("results");
            let out = tcplab()
                .args(["run", "--repeat", "2", "--out"])
                .arg(&results)
                .arg(&p)
                .output()
                .expect("runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(
                err.starts_with(&format!("tcplab: {}:3:1: sysctl", p.display())),
                "{err}"
            );
            assert!(err.contains(want), "{err}");
            assert!(
                !results.exists(),
                "nothing written for a run that cannot start"
            );
        }
    }

    /// Start `tcplab run ARGS`, let it work until its first run is on disk under `results`,
    /// send `signal` to its PID, and return (exit code, stdout). Waiting for a finished run
    /// rather than a fixed time: on a busy machine the first run can take seconds.
    pub(super) fn interrupt(
        args: &[&std::ffi::OsStr],
        results: &std::path::Path,
        signal: &str,
    ) -> (Option<i32>, String) {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn tcplab");
        let started = std::time::Instant::now();
        while !first_run_on_disk(results) {
            if child.try_wait().expect("try_wait").is_some() {
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "tcplab ended before its first run: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // Not a bound on speed: only a guard so a hung program fails the test (and is
            // stopped by its PID, not left behind).
            if started.elapsed() > std::time::Duration::from_secs(300) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no run finished in 300 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let status = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Some batch under `results/SCENARIO/` has a whole line in its runs.jsonl.
    fn first_run_on_disk(results: &std::path::Path) -> bool {
        let dirs = |p: &std::path::Path| -> Vec<PathBuf> {
            std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        dirs(results)
            .iter()
            .flat_map(|s| dirs(s))
            .any(|b| std::fs::read_to_string(b.join("runs.jsonl")).is_ok_and(|t| t.contains('\n')))
    }

    #[test]
    fn netns_sigterm_is_an_interrupt_and_the_scenario_is_cancelled_not_passed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("results");
        let junit = dir.path().join("junit.xml");
        let three_way = scenarios().join("seed/seed-three-way.toml");
        let (code, stdout) = interrupt(
            &[
                "run".as_ref(),
                "--repeat".as_ref(),
                "100000".as_ref(),
                "--json".as_ref(),
                "--jobs".as_ref(),
                "2".as_ref(),
                "--out".as_ref(),
                results.as_os_str(),
                "--junit".as_ref(),
                junit.as_os_str(),
                three_way.as_os_str(),
            ],
            &results,
            "-TERM",
        );
        assert_eq!(code, Some(130), "{stdout}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one json line");
        assert_eq!(v["cancelled"], true, "{v}");
        assert_eq!(v["passed"], false, "{v}");
        let rd = PathBuf::from(v["results_dir"].as_str().expect("results_dir"));
        assert!(rd.join("summary.json").is_file());
        assert!(!rd.join("INCOMPLETE").exists(), "marker removed last");
        let x = std::fs::read_to_string(&junit).expect("junit");
        assert!(
            x.contains("failures=\"0\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<skipped message=\"interrupted after"), "{x}");
    }

    #[test]
    fn netns_a_killed_batch_is_marked_incomplete_with_its_runs_so_far() {
        let dir = tempfile::tempdir().expect("tempdir");
        let results = dir.path().join("results");
        let three_way = scenarios().join("seed/seed-three-way.toml");
        let (code, _) = interrupt(
            &[
                "run".as_ref(),
                "--repeat".as_ref(),
                "100000".as_ref(),
                "--keep-pcaps".as_ref(),
                "none".as_ref(),
                "--out".as_ref(),
                results.as_os_str(),
                three_way.as_os_str(),
            ],
            &results,
            "-KILL",
        );
        assert_eq!(code, None, "killed by a signal");
        let batches: Vec<PathBuf> = std::fs::read_dir(results.join("seed-three-way"))
            .expect("scenario dir")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert!(
            b.join("INCOMPLETE").is_file(),
            "marker left by a killed batch"
        );
        assert!(!b.join("summary.json").exists());
        let runs = std::fs::read_to_string(b.join("runs.jsonl")).expect("runs so far");
        assert!(runs.lines().count() > 0, "the finished runs are on disk");
        for line in runs.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("whole json lines");
            assert!(v["run"].as_u64().is_some_and(|n| n >= 1), "{v}");
        }
    }

    #[test]
    fn netns_an_ordinary_user_sweeps_in_its_own_user_namespace() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("tcplab"))
            .arg("sweep")
            .arg(scenarios().join("seed/seed-four-way.toml"))
            .args([
                "--vary",
                // 0 would be a race (both close at once); 20 and 100 straddle the ~40 ms
                // delayed ACK: three-way below it, four-way above, on a quiet or busy machine.
                "server.close_delay_ms=20,100",
                "--repeat",
                "2",
                "--out",
            ])
            .arg(dir.path().join("sweep"))
            .output()
            .expect("setpriv runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The sweep mapped what the kernel does (not only that it exited 0): every run it
        // counted at 20 ms is three-way/client and at 100 ms four-way/client. Without root the
        // programs have no real-time priority, so on a busy machine a run may stay a timing
        // miss after its retries: the sweep lists it as `error` (never as the kernel's
        // outcome), which is what the timing-miss rule promises.
        let sweep = dir.path().join("sweep");
        let csv = std::fs::read_to_string(sweep.join("results.csv")).expect("csv");
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let counted: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r[1], r[2]))
            .filter(|(_, outcome)| *outcome != "error")
            .collect();
        assert!(!counted.is_empty(), "{csv}");
        for (point, outcome) in &counted {
            let want = match *point {
                "20" => "three-way/client",
                "100" => "four-way/client",
                p => panic!("no such point {p}: {csv}"),
            };
            assert_eq!(*outcome, want, "{csv}");
        }
        for f in ["results.csv", "boundary.txt", "summary.json"] {
            let uid = std::os::unix::fs::MetadataExt::uid(
                &std::fs::metadata(sweep.join(f)).expect("metadata"),
            );
            assert_eq!(uid, 65534, "{f} belongs to the user who ran the sweep");
        }
    }

    /// Issue 15 without root: the kernel states come from sock_diag polling, and the active
    /// closer's TIME_WAIT duration is still recorded (it was missing on rootless runs).
    #[test]
    fn netns_an_ordinary_user_records_how_long_time_wait_lasts() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(assert_cmd::cargo::cargo_bin("tcplab"))
            .args(["run", "--repeat", "2", "--out"])
            .arg(dir.path().join("results"))
            .arg(scenarios().join("seed/seed-four-way.toml"))
            .output()
            .expect("setpriv runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A batch whose every run missed its timing (a busy machine) exits 1 and says why.
        assert!(
            out.status.code() == Some(0) || stderr.contains("missed its timing"),
            "{stderr}"
        );
        let base = dir.path().join("results/seed-four-way");
        let batch = std::fs::read_dir(&base)
            .expect("batch dir")
            .flatten()
            .next()
            .expect("one batch")
            .path();
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(batch.join("summary.json")).expect("summary"),
        )
        .expect("json");
        let runs = summary["run_outcomes"].as_array().expect("run_outcomes");
        assert!(!runs.is_empty(), "{summary}");
        for r in runs {
            // The client closes first and ends in TIME_WAIT, set to last 60 s. Reckoned from
            // the first poll that saw it, so a late poll makes it shorter, never longer.
            let ms = r["client_time_wait_ms"]
                .as_u64()
                .unwrap_or_else(|| panic!("{r}"));
            assert!((50_000..=60_001).contains(&ms), "{r}");
            assert!(
                r.get("server_time_wait_ms").is_none_or(|v| v.is_null()),
                "{r}"
            );
        }
    }

    #[test]
    fn netns_a_billion_runs_stream_to_disk_and_stop_cleanly() {
        // Holding every outcome would need ~270 GB; streamed, memory is bounded by --jobs.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("huge.toml");
        std::fs::write(
            &p,
            "# huge\nrepeat = 1000000000\n[client]\nclose_delay_ms = 20\n[expect]\nkind = \"three-way\"\nactive_closer = \"server\"\n",
        )
        .expect("write");
        let results = dir.path().join("results");
        let (code, stdout) = interrupt(
            &[
                "run".as_ref(),
                "--json".as_ref(),
                "--jobs".as_ref(),
                "2".as_ref(),
                "--keep-pcaps".as_ref(),
                "none".as_ref(),
                "--out".as_ref(),
                results.as_os_str(),
                p.as_os_str(),
            ],
            &results,
            "-INT",
        );
        assert_eq!(code, Some(130), "{stdout}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one json line");
        let runs = v["runs"].as_u64().expect("runs");
        let misses = v["timing_miss_runs"].as_u64().expect("timing_miss_runs");
        // At least one run finished (on a busy machine it may be a timing miss, not counted).
        assert!(runs + misses > 0, "{v}");
        let counted: u64 = v["counts"]
            .as_object()
            .expect("counts")
            .values()
            .filter_map(|n| n.as_u64())
            .sum();
        assert_eq!(counted, runs, "{v}");
        let rd = PathBuf::from(v["results_dir"].as_str().expect("results_dir"));
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(rd.join("summary.json")).expect("summary"),
        )
        .expect("summary json");
        // run_outcomes lists every run, timing misses (counted apart from `runs`) included.
        assert_eq!(
            summary["run_outcomes"].as_array().map(Vec::len),
            Some((runs + misses) as usize),
            "{v}"
        );
        assert!(!rd.join("runs.jsonl").exists());
    }

    #[test]
    fn netns_timings_are_measured_and_a_miss_is_retried_not_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let four_way = scenarios().join("seed/seed-four-way.toml");
        let run = |extra: &[&str]| {
            let out = tcplab()
                .args(["run", "--repeat", "3", "--json", "--jobs", "1", "--out"])
                .arg(dir.path().join("results"))
                .args(extra)
                .arg(&four_way)
                .output()
                .expect("runs");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
            (out.status.code(), v)
        };
        // The programs' own close delays and the kernel's separate ACK, as the capture shows.
        let (code, v) = run(&[]);
        assert_eq!(code, Some(0), "{v}");
        let t = &v["timing"];
        assert_eq!(t["tolerance_ms"], 5.0, "{v}");
        let p50 = |k: &str| t[k]["p50"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (100.0..=105.0).contains(&p50("server_close_delay_ms")),
            "{t}"
        );
        assert!((0.0..=5.0).contains(&p50("client_close_delay_ms")), "{t}");
        assert!((30.0..=60.0).contains(&p50("fin_ack_delay_ms")), "{t}");
        // One sample per run: a retried run counts with its final try.
        assert_eq!(t["server_close_delay_ms"]["n"], 3, "{t}");
        // With no tolerance at all no real close is on time: every try misses, each run is
        // tried 1 + 3 times, and none counts as the kernel's outcome. The scenario runs again
        // at the end of the suite (twice); still all missed, it is inconclusive: exit 3.
        let (code, v) = run(&["--timing-tolerance-ms", "0"]);
        assert_eq!(code, Some(3), "{v}");
        assert_eq!(v["timing_misses"], 12, "{v}");
        assert_eq!(v["timing_miss_runs"], 3, "{v}");
        assert_eq!(v["runs"], 0, "{v}");
        assert_eq!(v["passed"], false, "{v}");
        assert_eq!(v["inconclusive"], true, "{v}");
        assert!(
            v["mismatch"]
                .as_str()
                .unwrap_or("")
                .starts_with("every run (3) missed its timing"),
            "{v}"
        );
    }

    /// A scenario whose every run is a timing miss (no tolerance: no real close is on time)
    /// is tried again at the end of the suite, after the others, twice; then it is
    /// inconclusive, in every format, and not a failure (exit 3). A real failure beside it
    /// still wins (exit 1), and as a kselftest it is a skip (exit 4).
    #[test]
    fn netns_a_scenario_too_busy_to_time_is_inconclusive_not_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = std::fs::read_to_string(scenarios().join("seed/seed-four-way.toml"))
            .expect("seed-four-way");
        let busy = dir.path().join("a-busy.toml");
        std::fs::write(
            &busy,
            seed.replace(
                "name = \"seed-four-way\"",
                "name = \"a-busy\"\ntiming_tolerance_ms = 0",
            ),
        )
        .expect("write");
        let fine = dir.path().join("b-fine.toml");
        std::fs::write(
            &fine,
            seed.replace("name = \"seed-four-way\"", "name = \"b-fine\""),
        )
        .expect("write");
        let wrong = dir.path().join("c-wrong.toml");
        std::fs::write(
            &wrong,
            seed.replace("name = \"seed-four-way\"", "name = \"c-wrong\"")
                .replace("active_closer = \"client\"", "active_closer = \"server\""),
        )
        .expect("write");
        let results = dir.path().join("results");
        let run = |extra: &[&str], files: &[&Path]| {
            let out = tcplab()
                .args(["run", "--repeat", "2", "--jobs", "1", "--out"])
                .arg(&results)
                .args(extra)
                .args(files)
                .output()
                .expect("runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let junit = dir.path().join("junit.xml");
        let junit_arg = junit.to_str().expect("utf-8 path");
        let (code, stdout, stderr) = run(&["--json", "--junit", junit_arg], &[&busy, &fine]);
        assert_eq!(code, Some(3), "{stdout}\n{stderr}");
        // Judged last, after the scenario that came after it; said on stderr when deferred.
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["scenario"].as_str())
            .collect();
        assert_eq!(names, ["b-fine", "a-busy"], "{stdout}");
        assert_eq!(lines[0]["passed"], true, "{stdout}");
        assert_eq!(
            lines[0].get("inconclusive"),
            None,
            "only when true: {stdout}"
        );
        assert_eq!(lines[1]["inconclusive"], true, "{stdout}");
        assert!(
            stderr.contains("a-busy: every run missed its timing (the machine is busy): tried again at the end of the suite"),
            "{stderr}"
        );
        // One batch for the first try and one for each try again, each with its summary.
        let tries = std::fs::read_dir(results.join("a-busy"))
            .expect("batches")
            .count();
        assert_eq!(tries, 3, "first try + 2 tries again");
        let xml = std::fs::read_to_string(&junit).expect("junit");
        assert!(
            xml.contains("<skipped message=\"inconclusive: every run (2) missed its timing"),
            "{xml}"
        );
        assert!(!xml.contains("<failure"), "{xml}");
        // Human: the verdict names the machine, the closing line counts it apart.
        let (code, stdout, _) = run(&[], &[&busy]);
        assert_eq!(code, Some(3), "{stdout}");
        assert!(stdout.contains("INCONCLUSIVE  a-busy"), "{stdout}");
        assert!(
            stdout.contains(
                "inconclusive, not a verdict on the kernel: every run (2) missed its timing"
            ),
            "{stdout}"
        );
        assert!(
            stdout.contains("1 inconclusive (the machine was too busy to time its runs)"),
            "{stdout}"
        );
        // KTAP and kselftest: a skip, exit 4 (kselftest's 3 would mean "passed unexpectedly").
        let (code, stdout, _) = run(&["--kselftest"], &[&busy]);
        assert_eq!(code, Some(4), "{stdout}");
        assert!(
            stdout.contains("ok 1 - a-busy # SKIP inconclusive: every run (2) missed"),
            "{stdout}"
        );
        // A real failure wins.
        let (code, stdout, stderr) = run(&["--json"], &[&busy, &wrong]);
        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    }

    #[test]
    fn netns_an_ordinary_user_runs_the_seed_in_its_own_user_namespace() {
        // A directory the unprivileged user may write; the binary is world-readable.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        // Without real-time priority on a busy machine every run of a batch may miss its
        // close delay, also when tried again at the end; such a batch is inconclusive
        // ("every run (4) missed its timing", exit 3), which says nothing about the kernel:
        // run it again (at most 4 times), as a user would.
        let mut attempt = 0;
        let (out, results) = loop {
            attempt += 1;
            let results = dir.path().join(format!("results-{attempt}"));
            let out = std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(assert_cmd::cargo::cargo_bin("tcplab"))
                .args(["run", "--repeat", "4", "--out"])
                .arg(&results)
                .arg(scenarios().join("seed"))
                .output()
                .expect("setpriv runs");
            let all_missed = String::from_utf8_lossy(&out.stdout).contains("missed its timing");
            if out.status.code() == Some(0) || !all_missed || attempt == 4 {
                break (out, results);
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("ran 4 scenarios: 4 passed, 0 failed"),
            "{stdout}"
        );
        // What it wrote belongs to the user, not to root.
        let meta = std::fs::metadata(&results).expect("results written");
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
    }

    #[test]
    fn netns_run_mismatch_exits_1_and_narrates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("wrong.toml");
        // The seed's three-way setup, with a wrong expectation.
        std::fs::write(
            &p,
            "# wrong on purpose\n[client]\nclose_delay_ms = 20\n[expect]\nkind = \"four-way\"\n",
        )
        .expect("write");
        // A batch whose every run missed its timing (a busy machine) fails for that reason,
        // not for the mismatch this test is about: run it again (at most 4 times).
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            let out = tcplab()
                .args(["run", "--repeat", "2", "--out"])
                .arg(dir.path().join(format!("results-{attempt}")))
                .arg(&p)
                .output()
                .expect("runs");
            let text = String::from_utf8_lossy(&out.stdout);
            if text.contains("expected four-way, got") || attempt == 4 {
                break out;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("FAIL  wrong"), "{stdout}");
        assert!(
            stdout.contains("expected four-way, got three-way/server"),
            "{stdout}"
        );
        assert!(stdout.contains("verdict: three-way close"), "{stdout}");
    }
}
