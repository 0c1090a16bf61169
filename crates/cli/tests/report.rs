//! `tcplab analyze --html / --annotate / --format mermaid|plantuml` on real captures; no
//! browser, no tshark (those are `tests/interop.rs`).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn live(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../trace/tests/data/live")
        .join(name)
}

const LIVE: [&str; 5] = [
    "four-way-server-delay-100ms.pcap",
    "ipv6-three-way.pcap",
    "reset-client-linger0.pcap",
    "reset-server-unread-data.pcap",
    "three-way-server-first.pcap",
];

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").expect("binary")
}

fn json(path: &Path) -> serde_json::Value {
    let out = tcplab()
        .arg("analyze")
        .arg("--json")
        .arg(path)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// What a reader of the verdicts sees: per connection, the teardown and the states.
fn verdicts(v: &serde_json::Value) -> Vec<(serde_json::Value, serde_json::Value)> {
    v["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| (c["teardown"].clone(), c["states"].clone()))
        .collect()
}

#[test]
fn annotated_pcapng_reads_back_with_the_same_verdicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in LIVE {
        let input = live(name);
        let out = dir.path().join(format!("{name}ng"));
        tcplab()
            .arg("analyze")
            .arg("--annotate")
            .arg(&out)
            .arg(&input)
            .assert()
            .success();
        let bytes = std::fs::read(&out).expect("annotated file");
        // pcapng: a section header block first, and the narration inside.
        assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a], "{name}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("client → server: client opens the connection"),
            "{name}"
        );
        assert!(text.contains("verdict of connection 1:"), "{name}");
        let (a, b) = (json(&input), json(&out));
        assert_eq!(b["format"], "pcapng", "{name}");
        assert_eq!(a["packets"], b["packets"], "{name}");
        assert_eq!(verdicts(&a), verdicts(&b), "{name}: verdicts changed");
        // And in Chinese.
        let zh = dir.path().join(format!("{name}.zh.pcapng"));
        tcplab()
            .args(["analyze", "--lang", "zh", "--annotate"])
            .arg(&zh)
            .arg(&input)
            .assert()
            .success();
        assert!(String::from_utf8_lossy(&std::fs::read(&zh).unwrap()).contains("客户端"));
    }
}

#[test]
fn annotate_refuses_text_and_two_inputs_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../trace/tests/data/seed/four-way-close.txt");
    let out = tcplab()
        .arg("analyze")
        .arg("--annotate")
        .arg(dir.path().join("x.pcapng"))
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("four-way-close.txt") && err.contains("pcap"),
        "{err}"
    );
    let out = tcplab()
        .arg("analyze")
        .arg("--annotate")
        .arg(dir.path().join("x.pcapng"))
        .arg(live(LIVE[0]))
        .arg(live(LIVE[1]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sequence_diagrams_have_one_message_per_packet_and_states_as_notes() {
    for name in LIVE {
        let input = live(name);
        let packets = json(&input)["connections"][0]["packet_count"]
            .as_u64()
            .unwrap();
        for (fmt, head, arrow, note) in [
            ("mermaid", "sequenceDiagram", "->>", "Note over "),
            ("plantuml", "@startuml", " -> ", "hnote over "),
        ] {
            let out = tcplab()
                .args(["analyze", "--format", fmt])
                .arg(&input)
                .output()
                .unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.starts_with(head), "{fmt}: {text}");
            let messages = text.lines().filter(|l| l.contains(arrow)).count() as u64;
            assert_eq!(messages, packets, "{name} {fmt}:\n{text}");
            assert!(
                text.contains(&format!("{note}client: SYN_SENT"))
                    || text.contains(&format!("{note}client : SYN_SENT")),
                "{name} {fmt}:\n{text}"
            );
            assert!(
                text.contains("TIME_WAIT") || name.starts_with("reset"),
                "{name} {fmt}"
            );
            if fmt == "plantuml" {
                assert!(text.trim_end().ends_with("@enduml"));
            }
        }
    }
}

#[test]
fn html_page_is_self_contained_and_draws_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in LIVE {
        let input = live(name);
        let page = dir.path().join(format!("{name}.html"));
        tcplab()
            .arg("analyze")
            .arg("--html")
            .arg(&page)
            .arg(&input)
            .assert()
            .success();
        let html = std::fs::read_to_string(&page).unwrap();
        let packets = json(&input)["connections"][0]["packet_count"]
            .as_u64()
            .unwrap();
        assert_eq!(
            html.matches("<g class=\"arrow ").count() as u64,
            packets,
            "{name}"
        );
        // Nothing is fetched: no scripts, no remote URLs, no external stylesheets.
        assert!(!html.contains("<script"), "{name}");
        assert!(
            !html.contains("http://") && !html.contains("https://")
                || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
        );
        assert!(!html.contains("src=") && !html.contains("<link"), "{name}");
        // On loopback the page says why the arrows are horizontal.
        assert!(html.contains("arrow is horizontal"), "{name}");
        // Deterministic: the same capture gives the same bytes.
        let again = dir.path().join("again.html");
        tcplab()
            .arg("analyze")
            .arg("--html")
            .arg(&again)
            .arg(&input)
            .assert()
            .success();
        assert_eq!(std::fs::read(&again).unwrap(), html.as_bytes(), "{name}");
    }
}
