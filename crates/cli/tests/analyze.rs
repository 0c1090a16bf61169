//! `tcplab analyze` as a user runs it: exit codes, one-line errors, the contract's JSON.

use assert_cmd::Command;
use serde::Deserialize;
use std::path::PathBuf;

/// Test-side mirror of docs/teardown.md's JSON: every contract field, no `deny_unknown_fields`
/// (fields may be added, never renamed).
#[derive(Debug, Deserialize)]
struct Output {
    source: String,
    format: String,
    link_type: Option<String>,
    packets: u64,
    connections: Vec<Conn>,
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Conn {
    client: String,
    server: String,
    teardown: Teardown,
    packets: Vec<u64>,
    states: States,
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Teardown {
    kind: String,
    active_closer: Option<String>,
    final_ack: bool,
    fin_retransmits: u32,
}

#[derive(Debug, Deserialize)]
struct States {
    client: Vec<State>,
    server: Vec<State>,
}

#[derive(Debug, Deserialize)]
struct State {
    packet: u64,
    state: String,
    source: String,
}

fn seed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../trace/tests/data/seed")
        .join(name)
}

fn tcplab() -> Command {
    Command::cargo_bin("tcplab").unwrap()
}

fn json_of(path: &PathBuf) -> Output {
    let out = tcplab()
        .arg("analyze")
        .arg("--json")
        .arg(path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn seed_listings_give_the_contracts_kinds() {
    // docs/teardown.md's table of the seed's three captures.
    for (file, kind, closer) in [
        ("three-way-close.txt", "three-way", "server"),
        ("four-way-close.txt", "four-way", "client"),
        ("simultaneous-close.txt", "simultaneous", "both"),
    ] {
        let out = json_of(&seed(file));
        assert_eq!(out.format, "tcpdump");
        assert_eq!(out.link_type, None);
        assert!(out.source.ends_with(file));
        assert_eq!(out.connections.len(), 1, "{file}");
        let c = &out.connections[0];
        assert_eq!(c.teardown.kind, kind, "{file}");
        assert_eq!(c.teardown.active_closer.as_deref(), Some(closer), "{file}");
        assert!(c.teardown.final_ack, "{file}");
        assert_eq!(c.teardown.fin_retransmits, 0);
        assert!(out.warnings.is_empty());
        assert!(c
            .states
            .client
            .iter()
            .chain(&c.states.server)
            .all(|s| s.source == "capture" && s.packet >= 1));
    }
}

#[test]
fn three_way_seed_matches_the_contract_example() {
    let out = json_of(&seed("three-way-close.txt"));
    assert_eq!(out.packets, 10);
    let c = &out.connections[0];
    assert_eq!(c.client, "172.16.196.142:41334");
    assert_eq!(c.server, "172.16.196.145:60000");
    assert_eq!(c.packets, vec![7, 8, 9, 10]);
    assert_eq!(c.states.client[0].state, "SYN_SENT");
    assert_eq!(c.states.client[0].packet, 1);
    let server: Vec<_> = c
        .states
        .server
        .iter()
        .map(|s| (s.packet, s.state.as_str()))
        .collect();
    assert!(server.contains(&(7, "FIN_WAIT_1")), "{server:?}");
    assert!(c.warnings.is_empty());
}

#[test]
fn simultaneous_seed_warns_roles_guessed() {
    let out = json_of(&seed("simultaneous-close.txt"));
    let c = &out.connections[0];
    assert!(c.warnings.contains(&"roles-guessed".to_string()));
    assert!(c.warnings.contains(&"handshake-not-captured".to_string()));
    assert_eq!(c.server, "10.29.64.142:443");
}

#[test]
fn stdin_is_read_with_dash() {
    let text = std::fs::read(seed("four-way-close.txt")).unwrap();
    let out = tcplab()
        .args(["analyze", "--json", "-"])
        .write_stdin(text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Output = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.source, "-");
    assert_eq!(v.connections[0].teardown.kind, "four-way");
}

#[test]
fn human_output_narrates_and_gives_the_verdict() {
    let out = tcplab()
        .args(["analyze", "--color", "never"])
        .arg(seed("four-way-close.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("four-way close, started by the client"),
        "{text}"
    );
    assert!(text.contains("delayed ACK"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour when asked for none");
    let zh = tcplab()
        .args(["analyze", "--lang", "zh"])
        .arg(seed("four-way-close.txt"))
        .output()
        .unwrap();
    assert!(String::from_utf8(zh.stdout).unwrap().contains("四次挥手"));
}

fn assert_one_line_error(args: &[&str], stdin: Option<Vec<u8>>, needle: &str) {
    let mut cmd = tcplab();
    cmd.args(args);
    if let Some(s) = stdin {
        cmd.write_stdin(s);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.starts_with("tcplab: "), "{err}");
    assert!(err.contains(needle), "{err} should mention {needle}");
}

#[test]
fn unreadable_inputs_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    assert_one_line_error(
        &["analyze", missing.to_str().unwrap()],
        None,
        "missing.pcap",
    );
    // A pcap magic followed by half a header.
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0]).unwrap();
    assert_one_line_error(
        &["analyze", "--json", cut.to_str().unwrap()],
        None,
        "cut.pcap",
    );
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"\x00\x01\x02 definitely not a capture").unwrap();
    assert_one_line_error(&["analyze", junk.to_str().unwrap()], None, "unknown format");
    assert_one_line_error(&["analyze", "-"], Some(Vec::new()), "empty");
}

#[test]
fn one_object_per_file_and_exit_2_if_any_file_fails() {
    let out = tcplab()
        .args(["analyze", "--json"])
        .arg(seed("three-way-close.txt"))
        .arg("/nonexistent/x.pcap")
        .arg(seed("four-way-close.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let objs: Vec<Output> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Output>()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(objs.len(), 2, "the readable files are still analysed");
    // JSON Lines: one object per line, as `run --json` prints.
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l).expect("each line is one object");
    }
}

#[test]
fn summary_prints_counts_only() {
    let out = tcplab()
        .args(["analyze", "--summary"])
        .arg(seed("three-way-close.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("three-way"), "{text}");
    assert!(!text.contains("SYN_SENT"), "{text}");
}

#[test]
fn summary_connections_prints_one_line_per_connection() {
    // `--summary connections`, `--summary=connections`, and `--summary FILE` still counts.
    for flag in [
        &["--summary", "connections"][..],
        &["--summary=connections"][..],
    ] {
        let out = tcplab()
            .arg("analyze")
            .args(flag)
            .arg(seed("four-way-close.txt"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("CLIENT"), "{text}");
        let row = lines[2];
        assert!(row.starts_with("172.16.196.142:41424"), "{text}");
        for field in ["four-way", "client", "client@"] {
            assert!(row.contains(field), "{field}: {text}");
        }
        assert!(!text.contains("summary:"), "{text}");
    }
}

#[test]
fn regress_pcap_header_and_32_mb_of_zeros_counts_its_warnings() {
    // See: issue 8 §4. Every 16 zero bytes read as an empty record that cannot be decoded:
    // two million identical warnings, printed once with a count.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.pcap");
    let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&65535u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.resize(bytes.len() + (32 << 20), 0);
    std::fs::write(&path, &bytes).unwrap();
    let out = tcplab()
        .args(["analyze", "--summary"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.len() < 4096, "{} bytes of output", text.len());
    assert!(text.contains("2097152 packets"), "{text}");
    assert!(text.contains("and 2097151 more packets like it"), "{text}");
    let out = tcplab()
        .args(["analyze", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Output = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.packets, 2_097_152);
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
}
