//! `tcplab kernels`, `tcplab run --kernel` and `tcplab compare`.
//!
//! Live tests (feature `netns-tests`, names `netns_*`) fetch a real Debian kernel with
//! apt-get and boot it in QEMU (TCG: works on any host); they need root for the host's
//! apt and fail, never skip, when something is missing.

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

// Only the live tests (feature `netns-tests`) run scenarios.
#[cfg_attr(not(feature = "netns-tests"), allow(dead_code))]
fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn kernels_fetch_rejects_a_bad_spec_in_one_line() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out = tcplab()
        .args(["kernels", "fetch", "latest", "--cache"])
        .arg(cache.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("a kernel SPEC is a version prefix"), "{err}");
}

#[test]
fn kernels_list_on_an_empty_cache_says_how_to_fill_it() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out = tcplab()
        .args(["kernels", "list", "--cache"])
        .arg(cache.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("tcplab kernels fetch"),
        "{}",
        stdout(&out)
    );
}

/// A result set with one batch of `scenario`: `counts`, deterministic or not, under `accel`.
fn result_set(root: &Path, scenario: &str, counts: serde_json::Value, det: bool, accel: &str) {
    result_set_on(root, scenario, counts, det, accel, "6.1.0-57-cloud-amd64");
}

fn result_set_on(
    root: &Path,
    scenario: &str,
    counts: serde_json::Value,
    det: bool,
    accel: &str,
    kernel: &str,
) {
    let dir = root.join(scenario).join("20261201T000000Z");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let runs: u64 = counts
        .as_object()
        .expect("object")
        .values()
        .map(|v| v.as_u64().expect("count"))
        .sum();
    let expect = if det {
        serde_json::json!({"kind": "four-way"})
    } else {
        serde_json::json!({"kinds": ["three-way", "simultaneous"]})
    };
    // A summary.json as `tcplab run --kernel` writes it (main c7f649a's binary), reshaped.
    let mut v: serde_json::Value = serde_json::from_str(include_str!(
        "../../record/tests/data/summary-kernel-host.json"
    ))
    .expect("shipped summary");
    v["scenario"] = scenario.into();
    v["runs"] = runs.into();
    v["counts"] = counts;
    v["expect"] = expect;
    v["kernel"] = kernel.into();
    v["conditions"] =
        serde_json::json!({"place": "qemu", "accel": accel, "cpus": 1, "memory_mib": 512});
    v["run_outcomes"] = serde_json::json!([]);
    std::fs::write(dir.join("summary.json"), v.to_string()).expect("write");
}

#[test]
fn compare_exit_codes_follow_the_verdict() {
    let t = tempfile::tempdir().expect("tempdir");
    let (a, b, c, d) = (
        t.path().join("a"),
        t.path().join("b"),
        t.path().join("c"),
        t.path().join("d"),
    );
    let racy_a =
        serde_json::json!({"three-way/server": 196, "three-way/client": 3, "simultaneous/both": 1});
    let racy_noise =
        serde_json::json!({"three-way/server": 193, "three-way/client": 5, "simultaneous/both": 2});
    let racy_shift = serde_json::json!({"three-way/server": 106, "three-way/client": 94});
    result_set(
        &a,
        "four",
        serde_json::json!({"four-way/client": 20}),
        true,
        "tcg",
    );
    result_set(&a, "zero", racy_a, false, "tcg");
    result_set(
        &b,
        "four",
        serde_json::json!({"four-way/client": 20}),
        true,
        "tcg",
    );
    result_set(&b, "zero", racy_noise, false, "tcg");
    result_set(
        &c,
        "four",
        serde_json::json!({"four-way/client": 19, "three-way/client": 1}),
        true,
        "tcg",
    );
    result_set(&c, "zero", racy_shift.clone(), false, "tcg");
    result_set(
        &d,
        "four",
        serde_json::json!({"four-way/client": 20}),
        true,
        "kvm",
    );
    result_set(&d, "zero", racy_shift, false, "kvm");

    let same = tcplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("runs");
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(
        stdout(&same).contains("0 differences at alpha 0.01"),
        "{}",
        stdout(&same)
    );

    let changed = tcplab()
        .args(["compare", "--json"])
        .arg(&a)
        .arg(&c)
        .output()
        .expect("runs");
    assert_eq!(changed.status.code(), Some(1), "{}", stdout(&changed));
    let lines: Vec<serde_json::Value> = stdout(&changed)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["differs"] == true), "{lines:?}");

    // Other conditions: refused (exit 2) unless --force.
    let refused = tcplab()
        .arg("compare")
        .arg(&a)
        .arg(&d)
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stdout(&refused).contains("accelerator tcg vs kvm"),
        "{}",
        stdout(&refused)
    );
    let forced = tcplab()
        .args(["compare", "--force"])
        .arg(&a)
        .arg(&d)
        .output()
        .expect("runs");
    assert_eq!(forced.status.code(), Some(1), "{}", stdout(&forced));

    // A tree holding two kernels is refused: which batch would stand for a scenario?
    let mixed = t.path().join("mixed");
    result_set_on(
        &mixed.join("k1"),
        "four",
        serde_json::json!({"four-way/client": 20}),
        true,
        "tcg",
        "6.1.0-57-cloud-amd64",
    );
    result_set_on(
        &mixed.join("k2"),
        "zero",
        serde_json::json!({"three-way/server": 20}),
        false,
        "tcg",
        "6.12.117+deb12-cloud-amd64",
    );
    let refused = tcplab()
        .arg("compare")
        .arg(&mixed)
        .arg(&a)
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("holds results of several kernels"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stderr(&refused).lines().count(), 1);

    let missing = tcplab()
        .arg("compare")
        .arg(&a)
        .arg(t.path().join("nope"))
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
}

/// Issue 20 item 4: compare never says "same" about evidence it does not have.
#[test]
fn compare_refuses_evidence_that_is_not_there() {
    let t = tempfile::tempdir().expect("tempdir");
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let four = || serde_json::json!({"four-way/client": 20});
    result_set(&a, "four", four(), true, "tcg");
    result_set(&b, "four", four(), true, "tcg");
    result_set(&b, "extra", four(), true, "tcg");
    // A scenario in B only is a difference, not a silent exit 0.
    let one_sided = tcplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("runs");
    assert_eq!(one_sided.status.code(), Some(1), "{}", stdout(&one_sided));
    assert!(
        stdout(&one_sided).contains("extra  only in B"),
        "{}",
        stdout(&one_sided)
    );
    assert!(
        stdout(&one_sided).contains("1 difference"),
        "{}",
        stdout(&one_sided)
    );

    // Two sweep directories: exit 2, naming the file.
    let (sa, sb) = (t.path().join("sweep-a"), t.path().join("sweep-b"));
    for d in [&sa, &sb] {
        std::fs::create_dir_all(d).expect("mkdir");
        std::fs::write(
            d.join("summary.json"),
            include_str!("../../record/tests/data/sweep-summary.json"),
        )
        .expect("write");
    }
    let sweeps = tcplab()
        .arg("compare")
        .arg(&sa)
        .arg(&sb)
        .output()
        .expect("runs");
    assert_eq!(sweeps.status.code(), Some(2), "{}", stdout(&sweeps));
    let err = stderr(&sweeps);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&sa.join("summary.json").display().to_string()),
        "{err}"
    );
    assert!(err.contains("a sweep's summary"), "{err}");

    // Missing fields, negative or out-of-range counts: exit 2 naming the file and field.
    let batch = b.join("four/20261201T000000Z/summary.json");
    let good = std::fs::read_to_string(&batch).expect("read");
    for (edit, want) in [
        (r#""runs":20"#, r#""runz":20"#),
        (r#""four-way/client":20"#, r#""four-way/client":-20"#),
        (r#""four-way/client":20"#, r#""four-way/client":1e30"#),
        (
            r#""four-way/client":20"#,
            r#""four-way/client":18446744073709551616"#,
        ),
    ] {
        assert!(good.contains(edit), "{edit} in {good}");
        std::fs::write(&batch, good.replace(edit, want)).expect("write");
        let bad = tcplab()
            .arg("compare")
            .arg(&a)
            .arg(&b)
            .output()
            .expect("runs");
        assert_eq!(bad.status.code(), Some(2), "{want}: {}", stdout(&bad));
        let err = stderr(&bad);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&batch.display().to_string()), "{err}");
    }
    std::fs::write(&batch, "").expect("write");
    let empty = tcplab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .output()
        .expect("runs");
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains(&batch.display().to_string()));
}

/// Fetch the 6.1 kernel (not the host's: the host runs 6.18) into `cache`.
#[cfg(feature = "netns-tests")]
fn fetch_6_1(cache: &Path) -> PathBuf {
    let out = tcplab()
        .args(["kernels", "fetch", "6.1", "--cache"])
        .arg(cache)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = tcplab()
        .args(["kernels", "list", "--json", "--cache"])
        .arg(cache)
        .output()
        .expect("runs");
    let k: serde_json::Value =
        serde_json::from_str(stdout(&list).lines().next().expect("one kernel")).expect("JSON");
    assert!(k["release"].as_str().expect("release").starts_with("6.1."));
    assert_ne!(
        k["release"].as_str(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .as_deref()
            .map(str::trim)
    );
    PathBuf::from(k["path"].as_str().expect("path"))
}

#[cfg(feature = "netns-tests")]
#[test]
fn netns_seed_scenarios_pass_on_another_kernel_in_qemu() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    fetch_6_1(cache.path());
    let junit = out_dir.path().join("kernel.xml");
    let out = tcplab()
        .args([
            "run", "--json", "--accel", "tcg", "--kernel", "6.1", "--cache",
        ])
        .arg(cache.path())
        .arg("--out")
        .arg(out_dir.path())
        .arg("--junit")
        .arg(&junit)
        .arg(scenarios().join("seed/seed-three-way.toml"))
        .arg(scenarios().join("seed/seed-four-way.toml"))
        .output()
        .expect("runs");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in &lines {
        assert_eq!(l["passed"], true, "{l}");
        let kernel = l["kernel"].as_str().expect("kernel");
        assert!(kernel.starts_with("6.1.0-"), "{l}");
        assert_eq!(l["conditions"]["accel"], "tcg");
        assert_eq!(l["conditions"]["memory_mib"], 512);
        assert_eq!(l["conditions"]["cpus"], 1);
        // The results came back into the host's tree, with the guest's own meta.json.
        let dir = Path::new(l["results_dir"].as_str().expect("results_dir"));
        assert!(dir.starts_with(out_dir.path().join(kernel)), "{l}");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).expect("meta"))
                .expect("JSON");
        assert_eq!(meta["kernel"], kernel, "uname -r in the guest");
        assert_eq!(meta["conditions"]["place"], "qemu");
        let pcap = std::fs::read(dir.join("run-0001/capture.pcap")).expect("capture");
        let a = tcplab_analysis(&pcap);
        assert_eq!(a["connections"].as_array().map(Vec::len), Some(1), "{a}");
    }
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| {
            l["counts"]
                .as_object()
                .expect("counts")
                .keys()
                .next()
                .expect("one")
                .as_str()
        })
        .collect();
    assert_eq!(kinds, ["three-way/server", "four-way/client"]);
    let x = std::fs::read_to_string(&junit).expect("junit");
    assert_eq!(x.matches("<testsuite ").count(), 1, "{x}");
    assert!(x.contains("failures=\"0\""), "{x}");
}

/// `tcplab analyze --json` of a capture the guest made.
#[cfg(feature = "netns-tests")]
fn tcplab_analysis(pcap: &[u8]) -> serde_json::Value {
    let out = tcplab()
        .args(["analyze", "--json", "-"])
        .write_stdin(pcap.to_vec())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_str(stdout(&out).trim()).expect("JSON")
}

#[cfg(feature = "netns-tests")]
#[test]
fn netns_a_kernel_without_tun_skips_link_scenarios_with_the_reason() {
    // ... and one without a [sysctl] key a scenario's since_kernel says it predates.
    // The same 6.1 image given as a path: a path kernel comes without modules, and Debian
    // builds TUN as a module, so the guest has no /dev/net/tun.
    let cache = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    let dir = fetch_6_1(cache.path());
    let junit = out_dir.path().join("kernel.xml");
    let out = tcplab()
        .args(["run", "--accel", "tcg", "--kernel"])
        .arg(dir.join("vmlinuz"))
        .arg("--cache")
        .arg(cache.path())
        .arg("--out")
        .arg(out_dir.path())
        .arg("--junit")
        .arg(&junit)
        .arg(scenarios().join("close/simultaneous-over-delayed-link.toml"))
        .arg(scenarios().join("seed/seed-three-way.toml"))
        // 6.1 lacks net.ipv4.tcp_rto_min_us (6.11): skipped in the words a host run uses.
        .arg(scenarios().join("close/sysctl-rto-min-us.toml"))
        .output()
        .expect("runs");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("SKIP  simultaneous-over-delayed-link"),
        "{text}"
    );
    assert!(text.contains("[link] needs TUN"), "{text}");
    assert!(text.contains("SKIP  sysctl-rto-min-us"), "{text}");
    assert!(
        text.contains(
            "skipped: sysctl `net.ipv4.tcp_rto_min_us`: no such key under /proc/sys/net on this \
             kernel (older than the scenario's since_kernel 6.11)"
        ),
        "{text}"
    );
    assert!(text.contains("PASS  seed-three-way"), "{text}");
    assert!(text.contains("1 passed, 0 failed, 2 skipped"), "{text}");
    let x = std::fs::read_to_string(&junit).expect("junit");
    assert!(x.contains("skipped=\"2\""), "{x}");
    assert!(x.contains("<skipped message=\"[link] needs TUN"), "{x}");
}

/// Processes whose command line mentions `needle` (QEMU's names the initramfs under --out).
#[cfg(feature = "netns-tests")]
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
    {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(cmd);
            }
        }
    }
    found
}

#[cfg(feature = "netns-tests")]
#[test]
fn netns_sigterm_stops_the_guest_and_leaves_nothing_running() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out_dir = tempfile::tempdir().expect("tempdir");
    fetch_6_1(cache.path());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("tcplab"))
        .args([
            "run", "--accel", "tcg", "--kernel", "6.1", "--repeat", "2000", "--cache",
        ])
        .arg(cache.path())
        .arg("--out")
        .arg(out_dir.path())
        .arg(scenarios().join("seed/seed-zero-delay.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let needle = out_dir.path().display().to_string();
    // Wait until QEMU runs (its command line names the initramfs under --out).
    let t = std::time::Instant::now();
    while processes_mentioning(&needle)
        .iter()
        .all(|c| !c.contains("qemu-system"))
    {
        assert!(t.elapsed().as_secs() < 300, "QEMU never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Then until the guest's /init runs (it says "up: " on the console, which the host
    // keeps in console.log under --out). Waited for, not guessed: TCG on a busy machine
    // boots slowly.
    let t = std::time::Instant::now();
    while !walk(out_dir.path()).iter().any(|p| {
        p.file_name().is_some_and(|n| n == "console.log")
            && std::fs::read_to_string(p).is_ok_and(|c| c.contains("tcplab-guest: up: "))
    }) {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "tcplab ended before the guest ran"
        );
        assert!(t.elapsed().as_secs() < 900, "the guest never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "still running: {left:?}");
    let stray: Vec<_> = walk(out_dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cpio" || e == "bin"))
        .collect();
    assert!(stray.is_empty(), "work files left: {stray:?}");
}

#[cfg(feature = "netns-tests")]
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
