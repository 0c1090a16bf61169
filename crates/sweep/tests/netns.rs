//! Live sweeps in private network namespaces (feature `netns-tests`; needs root, and fails
//! without it rather than skipping).
#![cfg(feature = "netns-tests")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use tcplab_runner::Scenario;
use tcplab_sweep::engine::{self, RunnerError};
use tcplab_sweep::live::{LiveOptions, LiveRunner, Pcaps};
use tcplab_sweep::{Shard, Sweep, Vary};

const REPEAT: u32 = 5;

fn scenario_path() -> PathBuf {
    // The seed's four-way scenario: the client closes at once, the server after its delay.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/seed/seed-four-way.toml")
}

/// Run the small sweep (server close delay 10, 20, 60, 100 ms; 5 runs each) for one
/// shard into `dir`; return (point, outcome) → count of the whole directory.
fn sweep(dir: &Path, shard: Shard) -> BTreeMap<(usize, String), u64> {
    let path = scenario_path();
    let bytes = std::fs::read(&path).expect("scenario file");
    let scenario = Scenario::load(&path).expect("scenario loads");
    let knobs = vec![Vary::parse("server.close_delay_ms=10,20,60,100").expect("vary")];
    let s = Sweep::new(scenario.name(), &bytes, REPEAT, knobs, shard).expect("sweep");
    let live = LiveRunner::new(
        scenario,
        dir,
        LiveOptions {
            jobs: 4,
            pcaps: Pcaps::Sample,
            ..LiveOptions::default()
        },
    );
    live.check(&s.grid).expect("knobs accepted");
    let never = AtomicBool::new(false);
    let mut runner = |p: &tcplab_sweep::Point| {
        live.run_point(p, REPEAT)
            .map_err(|e| Box::new(e) as RunnerError)
    };
    // Without privileges this is Err(PermissionDenied): the test fails, as it must.
    engine::execute(&s, dir, shard, &never, &mut runner, &mut |_| {}).expect("sweep runs");
    let out = engine::finalize(dir, &s.manifest).expect("outputs written");
    out.points
        .iter()
        .flat_map(|p| {
            p.outcomes
                .iter()
                .map(move |o| ((p.point.index, o.key.to_string()), o.count))
        })
        .collect()
}

#[test]
fn netns_small_sweep_flips_at_the_delayed_ack_and_merges() {
    let whole = tempfile::tempdir().expect("tempdir");
    let counts = sweep(whole.path(), Shard::ALL);
    let kinds_at = |i: usize| -> Vec<String> {
        counts
            .iter()
            .filter(|((p, _), _)| *p == i)
            .map(|((_, k), n)| format!("{k}:{n}"))
            .collect()
    };
    // 10 and 20 ms: the server's FIN leaves before the client's delayed ACK (~40 ms) would,
    // so it carries that ACK: three-way. 60 and 100 ms: the delayed ACK goes first: four-way.
    assert_eq!(kinds_at(0), ["three-way/client:5"], "10 ms");
    assert_eq!(kinds_at(1), ["three-way/client:5"], "20 ms");
    assert_eq!(kinds_at(2), ["four-way/client:5"], "60 ms");
    assert_eq!(kinds_at(3), ["four-way/client:5"], "100 ms");
    let text = std::fs::read_to_string(whole.path().join("boundary.txt")).expect("boundary.txt");
    assert!(
        text.contains("three-way/client up to 20 ms, four-way/client from 60 ms"),
        "{text}"
    );
    // A sample pcap per point and outcome was kept.
    assert!(whole.path().join("runs").is_dir());

    // Two shards, merged: the same counts and the same boundary as the unsharded run.
    let (a, b, merged) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let ca = sweep(a.path(), Shard { index: 0, count: 2 });
    let cb = sweep(b.path(), Shard { index: 1, count: 2 });
    assert_eq!(ca.len() + cb.len(), counts.len());
    let report = engine::merge(&[a.path().into(), b.path().into()], merged.path()).expect("merge");
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let merged_counts: BTreeMap<(usize, String), u64> = report
        .outputs
        .points
        .iter()
        .flat_map(|p| {
            p.outcomes
                .iter()
                .map(move |o| ((p.point.index, o.key.to_string()), o.count))
        })
        .collect();
    assert_eq!(merged_counts, counts);
    let merged_text =
        std::fs::read_to_string(merged.path().join("boundary.txt")).expect("boundary");
    assert_eq!(merged_text, text);
}
