//! The files tcplab wrote before these types existed (`tests/data/`, produced by the binary of
//! main c7f649a: `run --json`, `run --kernel host --json`, a failed batch, a link batch, a
//! batch killed with SIGKILL) decode into the types, and encode back to the same JSON: no
//! field renamed, dropped or changed in meaning. `problems` is the only addition.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tcplab_record::{
    parse, to_line, to_pretty, BatchLine, MetaRecord, Problem, RunRecord, Summary,
};

fn data(name: &str) -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text)
}

/// Run fields added since the shipped files were written.
const ADDED: &[&str] = &[
    "problems",
    "client_calls",
    "server_calls",
    "client_close_blocked_ms",
    "server_close_blocked_ms",
];

/// `v` without the fields added since the shipped files were written.
fn without_additions(mut v: Value) -> Value {
    let strip = |m: &mut serde_json::Map<String, Value>| {
        for f in ADDED {
            m.remove(*f);
        }
    };
    if let Some(m) = v.as_object_mut() {
        if m.contains_key("run") {
            strip(m);
        }
        if let Some(Value::Array(runs)) = m.get_mut("run_outcomes") {
            for r in runs {
                if let Some(r) = r.as_object_mut() {
                    strip(r);
                }
            }
        }
    }
    v
}

#[track_caller]
fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(p: &Path, text: &str) -> T {
    let t: T = parse(p, text).unwrap_or_else(|e| panic!("{e}"));
    let want: Value = serde_json::from_str(text).unwrap();
    let got = without_additions(serde_json::to_value(&t).unwrap());
    assert_eq!(got, want, "{}", p.display());
    t
}

#[test]
fn run_json_lines_decode_and_encode_the_same() {
    for name in [
        "run-json-host.jsonl",
        "run-json-kernel-host.jsonl",
        "run-json-failed.jsonl",
    ] {
        let (p, text) = data(name);
        for line in text.lines() {
            let l: BatchLine = round_trips(&p, line);
            // Byte for byte: the same key order and number formatting.
            assert_eq!(to_line(&l), line, "{name}");
        }
    }
    let (p, text) = data("run-json-kernel-host.jsonl");
    let l: BatchLine = parse(&p, text.trim()).unwrap();
    let BatchLine::Ran(b) = l else {
        panic!("a batch that ran")
    };
    assert_eq!(b.conditions.unwrap().describe(), "host, 2 cpus, 23 GiB");
    assert_eq!(b.place.unwrap().bytes_moved, 0);
}

#[test]
fn summaries_decode_and_encode_the_same() {
    for name in [
        "summary-host.json",
        "summary-link.json",
        "summary-kernel-host.json",
        "summary-failed.json",
    ] {
        let (p, text) = data(name);
        let s: Summary = round_trips(&p, &text);
        assert_eq!(s.batch.runs as usize, s.run_outcomes.len(), "{name}");
    }
    let (p, text) = data("summary-kernel-host.json");
    // vm rewrites summary.json pretty-printed with sorted keys: byte for byte (but for the
    // runs' new `problems`).
    let v = serde_json::to_value(parse::<Summary>(&p, &text).unwrap()).unwrap();
    assert_eq!(to_pretty(&without_additions(v)), text);
}

#[test]
fn run_records_keep_their_meaning() {
    let (p, text) = data("summary-link.json");
    let s: Summary = parse(&p, &text).unwrap();
    let r = &s.run_outcomes[0];
    assert!(r.passed());
    assert_eq!(r.server.close_delay_ms, Some(600.001198));
    assert_eq!(r.client.wake_late_ms, Some(0.064445));
    assert_eq!(r.views.server.as_ref().unwrap().packets, 11);
    assert_eq!(
        r.server.kernel_states.as_deref().unwrap().last().unwrap(),
        "CLOSED"
    );
    let (p, text) = data("summary-failed.json");
    let s: Summary = parse(&p, &text).unwrap();
    let r = &s.run_outcomes[0];
    assert!(!r.passed());
    assert_eq!(
        r.mismatch().unwrap().to_string(),
        "expected four-way/client, got three-way/server"
    );
    assert_eq!(r.error(), None);
    assert!(!s.batch.passed);
}

#[test]
fn streamed_runs_of_a_killed_batch_decode() {
    let (p, text) = data("runs-killed.jsonl");
    for line in text.lines() {
        let r: RunRecord = round_trips(&p, line);
        assert!(r.passed());
        assert_eq!(r.dir, None, "--keep-pcaps none keeps no run directory");
    }
}

#[test]
fn meta_files_decode_and_encode_the_same() {
    for name in [
        "meta-host.json",
        "meta-link.json",
        "meta-kernel-host.json",
        "meta-killed.json",
    ] {
        let (p, text) = data(name);
        let m: MetaRecord = round_trips(&p, &text);
        assert_eq!(to_pretty(&m), text, "{name}");
    }
}

#[test]
fn a_run_records_its_problems_as_data_and_says_them_as_before() {
    let (p, text) = data("runs-killed.jsonl");
    let mut r: RunRecord = parse(&p, text.lines().next().unwrap()).unwrap();
    r.problems = vec![
        Problem::CaptureDropped { packets: 2 },
        Problem::TimingMiss {
            side: tcplab_record::Side::Server,
            measured_ms: 120.0,
            knob_ms: 100.0,
            tolerance_ms: 5.0,
        },
    ];
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(
        v["mismatch"],
        "the capture dropped 2 packet(s): classification not trusted"
    );
    assert_eq!(v["error"], Value::Null);
    assert!(v["timing_miss"]
        .as_str()
        .unwrap()
        .starts_with("timing miss: the server closed 120.000 ms"));
    let back: RunRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}

/// Every field README.md and docs/teardown.md promise is still written.
#[test]
fn every_promised_field_is_written() {
    let (p, text) = data("run-json-kernel-host.jsonl");
    let line = serde_json::to_value(parse::<BatchLine>(&p, text.trim()).unwrap()).unwrap();
    for f in [
        "scenario",
        "expect",
        "runs",
        "counts",
        "drops",
        "passed",
        "results_dir",
        "cancelled",
        "timing_misses",
        "timing_miss_runs",
        "timing",
        "kernel",
        "conditions",
        "place",
    ] {
        assert!(line.get(f).is_some(), "run --json lost {f}");
    }
    for f in ["place", "accel", "cpus", "memory_mib"] {
        assert!(line["conditions"].get(f).is_some(), "conditions lost {f}");
    }
    for f in ["boot_s", "guest_s", "bytes_moved"] {
        assert!(line["place"].get(f).is_some(), "place lost {f}");
    }
    for f in [
        "server_close_delay_ms",
        "client_close_delay_ms",
        "server_wake_late_ms",
        "client_wake_late_ms",
        "fin_ack_delay_ms",
    ] {
        for q in ["min", "p50", "p99", "max"] {
            assert!(line["timing"][f].get(q).is_some(), "timing.{f} lost {q}");
        }
    }
    let (p, text) = data("summary-kernel-host.json");
    let s = serde_json::to_value(parse::<Summary>(&p, &text).unwrap()).unwrap();
    for f in ["counts", "passed", "run_outcomes", "conditions", "kernel"] {
        assert!(s.get(f).is_some(), "summary.json lost {f}");
    }
    let (p, text) = data("meta-kernel-host.json");
    let m = serde_json::to_value(parse::<MetaRecord>(&p, &text).unwrap()).unwrap();
    for f in ["kernel", "sysctls_pinned", "knobs", "conditions"] {
        assert!(m.get(f).is_some(), "meta.json lost {f}");
    }
}

#[test]
fn bad_records_name_their_file_and_field() {
    let p = Path::new("x/summary.json");
    let (_, text) = data("summary-host.json");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["counts"]["four-way/client"] = (-1).into();
    let e = parse::<Summary>(p, &v.to_string()).unwrap_err();
    assert!(e.to_string().starts_with("x/summary.json:"), "{e}");
    assert!(e.to_string().contains("-1"), "{e}");
    v["counts"]["four-way/client"] = 2.into();
    v.as_object_mut().unwrap().remove("runs");
    let e = parse::<Summary>(p, &v.to_string()).unwrap_err();
    assert!(e.to_string().contains("`runs`"), "{e}");
}

/// `injected` (`[[link.inject]]`, 2026-12-07): absent in older records (decoded as none, and
/// not written back), written as a list of the segments the link sent.
#[test]
fn injected_segments_round_trip_and_older_records_have_none() {
    let (p, text) = data("summary-link.json");
    let s: Summary = parse(&p, &text).unwrap();
    let mut r = s.run_outcomes[0].clone();
    assert!(r.injected.is_empty());
    let v = serde_json::to_value(&r).unwrap();
    assert!(
        v.get("injected").is_none(),
        "not written when there are none"
    );
    r.injected.push(tcplab_record::InjectedRecord {
        inject: 1,
        to: "client".into(),
        flags: "R".into(),
        seq: 7,
        ack: 0,
        len: 0,
        replay: false,
    });
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["injected"][0]["to"], "client");
    assert_eq!(v["injected"][0]["flags"], "R");
    assert_eq!(v["injected"][0]["replay"], false);
    let back: RunRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
}
