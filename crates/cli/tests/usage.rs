//! Usage errors of `sweep`, `merge`, `server` and `client`: one clear line, exit 2, before
//! anything runs (no privileges needed).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary tcplab")
}

fn scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed/seed-four-way.toml")
}

/// Exit status and stderr of `tcplab ARGS`.
fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = tcplab()
        .args(args)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sweep_grid_product_is_capped_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = scenario();
    let (code, err) = fails(&[
        "sweep",
        s.to_str().expect("utf-8 path"),
        "--vary",
        "server.close_delay_ms=0..9999:1",
        "--vary",
        "client.close_delay_ms=0..9999:1",
        "--out",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(
            "tcplab: the grid has 100000000 points (10000 × 10000), more than the limit of 100000"
        ),
        "{err}"
    );
}

#[test]
fn jobs_zero_is_a_usage_error() {
    let s = scenario();
    let s = s.to_str().expect("utf-8 path");
    for args in [
        vec![
            "sweep",
            s,
            "--vary",
            "server.close_delay_ms=1",
            "--jobs",
            "0",
        ],
        vec!["run", s, "--jobs", "0"],
    ] {
        let (code, err) = fails(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("--jobs"), "{err}");
        assert!(err.contains("0 is not in 1.."), "{err}");
    }
}
