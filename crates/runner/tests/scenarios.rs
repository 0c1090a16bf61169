//! Every shipped scenario file parses and validates (no privileges needed).

use std::path::{Path, PathBuf};
use tcplab_runner::{discover, Scenario};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn every_shipped_scenario_parses_and_validates() {
    let files = discover(&[scenarios_dir()]).expect("scenarios/ is listable");
    assert!(
        files.len() >= 12,
        "expected the shipped scenarios, found {files:?}"
    );
    let mut names = std::collections::BTreeSet::new();
    for f in &files {
        let s = Scenario::load(f).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            names.insert(s.name().to_owned()),
            "duplicate scenario name {}",
            s.name()
        );
        let text = std::fs::read_to_string(f).expect("readable");
        assert!(
            text.starts_with("# "),
            "{}: must open with a `#` comment saying what it shows and why",
            f.display()
        );
        assert!(
            text.contains("RFC"),
            "{}: the header must cite the RFC",
            f.display()
        );
    }
    for seed in ["seed-three-way", "seed-four-way"] {
        assert!(names.contains(seed), "missing {seed}");
    }
}

#[test]
fn bad_scenario_file_reports_file_line_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "# bad\nrepeat = 2\n\n[client]\nclose_delay_ms = 5\nclose_dely_ms = 7\n[expect]\nkind = \"reset\"\n")
        .expect("write");
    let e = Scenario::load(&p).expect_err("unknown key").to_string();
    let want = format!(
        "{}:6:1: unknown field `close_dely_ms`, expected one of",
        p.display()
    );
    assert!(e.starts_with(&want), "{e}");
    let missing = Scenario::load(&dir.path().join("nope.toml")).expect_err("missing file");
    assert!(missing.to_string().contains("nope.toml"), "{missing}");
}

/// Pooled mode shares one namespace; a `[link]` scenario needs its own pair per run, so the
/// batch is refused up front (before any namespace exists, so no privilege is needed).
#[test]
fn pooled_mode_rejects_a_link_scenario() {
    let mut s = Scenario::parse(
        "# x\n[link]\ndelay_ms = 10\n[expect]\nkind = \"simultaneous\"\n",
        Path::new("link.toml"),
    )
    .expect("parses");
    let opts = tcplab_runner::RunOptions {
        pooled: true,
        ..tcplab_runner::RunOptions::for_scenario(&s)
    };
    let e = tcplab_runner::run_repeated(&s, &opts).expect_err("pooled + link");
    assert!(e.to_string().contains("fresh mode only"), "{e}");
    s.set_knob("link.delay_ms", "none").expect("knob");
    assert!(s.link.is_none());
}
