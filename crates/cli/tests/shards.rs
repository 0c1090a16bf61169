//! Shards as a scheduler leaves them: `merge` refusing what it cannot merge (writing nothing),
//! `--allow-partial`, a re-run shard resuming, `run --shard` and `compare` over the union of
//! the shards' results. Live (real sweeps and runs), feature `netns-tests`.

#![cfg(feature = "netns-tests")]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

fn scenario(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(rel)
}

/// `tcplab sweep` of the seed's four-way scenario at 3 points, shard `shard`, into `out`.
fn sweep_shard(shard: &str, out: &Path) -> std::process::Output {
    tcplab()
        .arg("sweep")
        .arg(scenario("seed/seed-four-way.toml"))
        .args(["--vary", "server.close_delay_ms=0..100:50", "--repeat", "2"])
        .args(["--shard", shard, "--out"])
        .arg(out)
        .output()
        .expect("sweep runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn netns_merge_refuses_what_it_cannot_merge_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s0, s1) = (dir.path().join("s0"), dir.path().join("s1"));
    for (shard, out) in [("0/2", &s0), ("1/2", &s1)] {
        let o = sweep_shard(shard, out);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let merge = |dirs: &[&Path], out: &Path, extra: &[&str]| {
        tcplab()
            .arg("merge")
            .args(dirs)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .expect("merge runs")
    };

    // A missing shard: one line naming the points and the shard, exit 2, no output dir.
    let out = dir.path().join("partial");
    let o = merge(&[&s0], &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("1 of 3 points are in none of the directories (no directory of shard 1/2): server.close_delay_ms=50"),
        "{err}"
    );
    assert!(err.contains("nothing written"), "{err}");
    assert!(!out.exists(), "a refused merge created {}", out.display());
    // --allow-partial merges what is there and says what is missing.
    let o = merge(&[&s0], &out, &["--allow-partial"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("merged 1 directories: 2 of 3 points"));
    assert!(stderr(&o).contains("partial merge: 1 of 3 points"));

    // --out equal to an input: refused, the shard untouched.
    let before = std::fs::read(s1.join("results.csv")).expect("shard csv");
    let o = merge(&[&s0, &s1], &s1, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("would rewrite a shard"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(s1.join("results.csv")).expect("csv"), before);

    // A duplicate (the same shard re-run into another directory).
    let again = dir.path().join("s1-again");
    assert_eq!(sweep_shard("1/2", &again).status.code(), Some(0));
    let o = merge(&[&s0, &s1, &again], &dir.path().join("dup"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("both are shard 1/2"), "{}", stderr(&o));
    assert!(!dir.path().join("dup").exists());

    // A re-run shard resumes: nothing runs again.
    let o = sweep_shard("1/2", &s1);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 already done"), "{}", stderr(&o));

    // Any order, the whole set: 3 of 3 points.
    let o = merge(&[&s1, &s0], &dir.path().join("merged"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 of 3 points"), "{}", stderr(&o));
}

#[test]
fn netns_run_shards_split_the_scenarios_and_compare_reads_their_union() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        scenario("seed/seed-three-way.toml"),
        scenario("reset/server-linger0.toml"),
        scenario("reset/client-linger0.toml"),
    ];
    let mut ran = Vec::new();
    for i in 0..2 {
        let o = tcplab()
            .args([
                "run",
                "--json",
                "--repeat",
                "2",
                "--shard",
                &format!("{i}/2"),
            ])
            .arg("--out")
            .arg(dir.path().join(format!("shards/{i}")))
            .args(&files)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let names: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                v["scenario"].as_str().expect("scenario").to_owned()
            })
            .collect();
        ran.push(names);
    }
    assert_eq!(
        ran,
        [
            vec!["seed-three-way".to_owned(), "client-linger0".to_owned()],
            vec!["server-linger0".to_owned()]
        ]
    );
    // More tasks than scenarios: an empty shard is no failure.
    let o = tcplab()
        .args(["run", "--shard", "5/6"])
        .args(&files)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("shard 5/6: 0 of 3 scenarios"));

    // The union of the shards against an unsharded run: the same three scenarios.
    let o = tcplab()
        .args(["run", "--repeat", "2", "--out"])
        .arg(dir.path().join("whole"))
        .args(&files)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = tcplab()
        .args(["compare", "--json"])
        .arg(dir.path().join("shards"))
        .arg(dir.path().join("whole"))
        .output()
        .expect("compare");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", stderr(&o));
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(!stdout.contains("only_in"), "{stdout}");
}
