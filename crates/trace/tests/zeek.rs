//! Zeek's `conn_state` and `history` (docs/teardown.md "Zeek's labels"), checked against the
//! semantics Zeek documents for conn.log, on listings written as `tcpdump -nn -S` prints them.
//!
//! Each test is one connection between 192.0.2.1:40000 (`c`) and 198.51.100.2:P (`s`),
//! written as (direction, flags, seq, ack, payload length, window) with the client's ISN
//! 3000000000 and the server's 4000000000.

use tcplab_trace::{ConnState, Connection, TeardownKind};

const C_ISN: u32 = 3_000_000_000;
const S_ISN: u32 = 4_000_000_000;

type Seg = (&'static str, &'static str, u32, u32, u32, u16);

/// Render segments as tcpdump text, 1 ms apart, the server on `port`.
fn listing(port: u16, segs: &[Seg]) -> String {
    let mut out = String::new();
    for (i, &(dir, flags, seq, ack, len, win)) in segs.iter().enumerate() {
        let (src, dst) = if dir == "c" {
            (
                "192.0.2.1.40000".to_string(),
                format!("198.51.100.2.{port}"),
            )
        } else {
            (
                format!("198.51.100.2.{port}"),
                "192.0.2.1.40000".to_string(),
            )
        };
        let mut fields = Vec::new();
        let pure_ack = flags == "." && len == 0;
        if !pure_ack {
            if len > 0 {
                fields.push(format!("seq {seq}:{}", seq.wrapping_add(len)));
            } else {
                fields.push(format!("seq {seq}"));
            }
        }
        if flags.contains('.') {
            fields.push(format!("ack {ack}"));
        }
        fields.push(format!("win {win}"));
        fields.push(format!("length {len}"));
        out.push_str(&format!(
            "10:00:00.{:06} IP {src} > {dst}: Flags [{flags}], {}\n",
            1000 * (i + 1),
            fields.join(", ")
        ));
    }
    out
}

fn conns(port: u16, segs: &[Seg]) -> Vec<Connection> {
    let text = listing(port, segs);
    tcplab_trace::analyze(text.as_bytes(), "zeek.txt")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .connections
}

/// (conn_state, history) of the listing's one connection.
fn zeek(port: u16, segs: &[Seg]) -> (ConnState, String) {
    let cs = conns(port, segs);
    assert_eq!(cs.len(), 1, "{cs:#?}");
    let z = cs[0]
        .zeek
        .clone()
        .expect("Detail::Full computes Zeek's view");
    (z.conn_state, z.history)
}

const C1: u32 = C_ISN + 1;
const S1: u32 = S_ISN + 1;

/// SYN, SYN+ACK, ACK.
const HANDSHAKE: [Seg; 3] = [
    ("c", "S", C_ISN, 0, 0, 64240),
    ("s", "S.", S_ISN, C1, 0, 65160),
    ("c", ".", C1, S1, 0, 502),
];

fn with(rest: &[Seg]) -> Vec<Seg> {
    HANDSHAKE.iter().chain(rest).copied().collect()
}

#[test]
fn graceful_close_is_sf_whatever_tcplab_calls_it() {
    // Request, answer, then the server's FIN, the client's FIN+ACK and the final ACK: a
    // three-way close for tcplab, SF for Zeek (it does not tell closes apart).
    let segs = with(&[
        ("c", "P.", C1, S1, 3, 502),
        ("s", ".", S1, C1 + 3, 0, 509),
        ("s", "P.", S1, C1 + 3, 6, 509),
        ("s", "F.", S1 + 6, C1 + 3, 0, 509),
        ("c", "F.", C1 + 3, S1 + 7, 0, 502),
        ("s", ".", S1 + 7, C1 + 4, 0, 509),
    ]);
    let cs = conns(80, &segs);
    assert_eq!(cs[0].teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(zeek(80, &segs), (ConnState::SF, "ShADadfF".into()));
    // A four-way close is SF too.
    let segs = with(&[
        ("c", "F.", C1, S1, 0, 502),
        ("s", ".", S1, C1 + 1, 0, 509),
        ("s", "F.", S1, C1 + 1, 0, 509),
        ("c", ".", C1 + 1, S1 + 1, 0, 502),
    ]);
    assert_eq!(zeek(80, &segs), (ConnState::SF, "ShAFaf".into()));
}

#[test]
fn attempts_and_rejections() {
    // S0: a SYN (and its retransmission, same sequence number: one letter), no answer.
    let segs = [
        ("c", "S", C_ISN, 0, 0, 64240),
        ("c", "S", C_ISN, 0, 0, 64240),
    ];
    assert_eq!(zeek(80, &segs), (ConnState::S0, "S".into()));
    // REJ: the SYN answered by an RST.
    let segs = [("c", "S", C_ISN, 0, 0, 64240), ("s", "R.", 0, C1, 0, 0)];
    assert_eq!(zeek(80, &segs), (ConnState::Rej, "Sr".into()));
    // RSTOS0: the originator's SYN, then its own RST, no SYN+ACK.
    let segs = [("c", "S", C_ISN, 0, 0, 64240), ("c", "R", C1, 0, 0, 0)];
    assert_eq!(zeek(80, &segs), (ConnState::Rstos0, "SR".into()));
    // SH: the originator's SYN, then its FIN, no SYN+ACK.
    let segs = [("c", "S", C_ISN, 0, 0, 64240), ("c", "F", C1, 0, 0, 64240)];
    assert_eq!(zeek(80, &segs), (ConnState::Sh, "SF".into()));
}

#[test]
fn established_and_half_closed() {
    assert_eq!(zeek(80, &HANDSHAKE), (ConnState::S1, "ShA".into()));
    // S2: the originator's FIN, no answer; S3: the responder's.
    let segs = with(&[("c", "F.", C1, S1, 0, 502)]);
    assert_eq!(zeek(80, &segs), (ConnState::S2, "ShAF".into()));
    let segs = with(&[("s", "F.", S1, C1, 0, 509)]);
    assert_eq!(zeek(80, &segs), (ConnState::S3, "ShAf".into()));
}

#[test]
fn resets_are_checked_before_fins() {
    // RSTO / RSTR: an established connection aborted by either side.
    let segs = with(&[("c", "R.", C1, S1, 0, 0)]);
    assert_eq!(zeek(80, &segs), (ConnState::Rsto, "ShAR".into()));
    let segs = with(&[("s", "R.", S1, C1, 0, 0)]);
    assert_eq!(zeek(80, &segs), (ConnState::Rstr, "ShAr".into()));
    // An RST after one FIN still makes the state RST*.
    let segs = with(&[("c", "F.", C1, S1, 0, 502), ("s", "R.", S1, C1 + 1, 0, 0)]);
    assert_eq!(zeek(80, &segs), (ConnState::Rstr, "ShAFr".into()));
    // After both FINs it changes nothing but the history.
    let segs = with(&[
        ("c", "F.", C1, S1, 0, 502),
        ("s", "F.", S1, C1 + 1, 0, 509),
        ("c", ".", C1 + 1, S1 + 1, 0, 502),
        ("s", "R", S1 + 1, 0, 0, 0),
    ]);
    assert_eq!(zeek(80, &segs), (ConnState::SF, "ShAFfr".into()));
}

#[test]
fn responder_only_connections_are_flipped() {
    // The SYN was not captured and the first packet is the SYN+ACK from port 80: Zeek takes
    // the port for the server's and flips the roles (`^`). Then the responder's RST: RSTRH;
    // its FIN: SHR.
    let segs = [("s", "S.", S_ISN, C1, 0, 65160), ("s", "R.", S1, C1, 0, 0)];
    assert_eq!(zeek(80, &segs), (ConnState::Rstrh, "^hr".into()));
    let segs = [
        ("s", "S.", S_ISN, C1, 0, 65160),
        ("s", "F.", S1, C1, 0, 65160),
    ];
    assert_eq!(zeek(80, &segs), (ConnState::Shr, "^hf".into()));
    // From a port that is no service's, the SYN+ACK's sender stays the originator until an
    // ACK or data follows it, which a stealth scan would not send: then the roles flip and
    // the history is rewritten as if flipped from the start.
    let segs = [
        ("s", "S.", S_ISN, C1, 0, 65160),
        ("c", ".", C1, S1, 0, 502),
        ("c", "P.", C1, S1, 4, 502),
    ];
    assert_eq!(zeek(47000, &segs), (ConnState::S1, "^hAD".into()));
}

#[test]
fn midstream_traffic_is_oth() {
    let segs = [("c", "P.", C1, S1, 5, 502), ("s", ".", S1, C1 + 5, 0, 509)];
    assert_eq!(zeek(47000, &segs), (ConnState::Oth, "Da".into()));
    // Seen from a likely server port first: flipped.
    let segs = [("s", "P.", S1, C1, 5, 509), ("c", ".", C1, S1 + 5, 0, 502)];
    assert_eq!(zeek(80, &segs), (ConnState::Oth, "^dA".into()));
}

#[test]
fn retransmissions_and_zero_windows_are_logarithmic() {
    // The same 100 bytes sent 12 times: D, then T for the 1st and the 10th retransmission.
    let mut segs = HANDSHAKE.to_vec();
    for _ in 0..12 {
        segs.push(("c", "P.", C1, S1, 100, 502));
    }
    // The responder advertises a zero window (a pure ACK with win 0): `w`, once until the
    // 10th.
    segs.push(("s", ".", S1, C1 + 100, 0, 0));
    segs.push(("s", ".", S1, C1 + 100, 0, 0));
    assert_eq!(zeek(80, &segs), (ConnState::S1, "ShADTTaw".into()));
}

#[test]
fn fins_repeat_only_with_another_sequence_number() {
    // A retransmitted FIN (same number) is one `F`; a FIN at another number is a second one.
    let segs = with(&[
        ("c", "F.", C1, S1, 0, 502),
        ("c", "F.", C1, S1, 0, 502),
        ("c", "F.", C1 + 1, S1, 0, 502),
    ]);
    assert_eq!(zeek(80, &segs).1, "ShAFF");
}

#[test]
fn odd_flag_combinations() {
    // SYN+FIN: `Q`; FIN+RST: `I`; each at most once per direction.
    let segs = [
        ("c", "SF", C_ISN, 0, 0, 64240),
        ("c", "SF", C_ISN, 0, 0, 64240),
    ];
    assert_eq!(zeek(47000, &segs).1, "Q");
    let segs = with(&[("c", "FR.", C1, S1, 0, 0)]);
    assert_eq!(zeek(80, &segs), (ConnState::Rsto, "ShAI".into()));
}

#[test]
fn json_carries_the_labels() {
    let segs = with(&[("c", "R.", C1, S1, 0, 0)]);
    let a = tcplab_trace::analyze(listing(80, &segs).as_bytes(), "z.txt").unwrap();
    let v = tcplab_trace::render::json::to_value(&a);
    let c = &v["connections"][0];
    assert_eq!(c["conn_state"], "RSTO");
    assert_eq!(c["history"], "ShAR");
    assert_eq!(c["zeek_orig"], "client");
}

// ---- RST causes (docs/teardown.md "Why each RST") --------------------------------------

fn causes(port: u16, segs: &[Seg]) -> Vec<&'static str> {
    conns(port, segs)[0]
        .rst
        .iter()
        .map(|r| r.cause.code())
        .collect()
}

#[test]
fn rst_causes_from_the_capture() {
    // Close with unread data: the server got a request, never answered, reset.
    let segs = with(&[
        ("c", "P.", C1, S1, 3, 502),
        ("s", ".", S1, C1 + 3, 0, 509),
        ("s", "R.", S1, C1 + 3, 0, 509),
    ]);
    assert_eq!(causes(80, &segs), ["unread-data"]);
    // SO_LINGER 0: the client got its answer and reset instead of a FIN.
    let segs = with(&[
        ("c", "P.", C1, S1, 3, 502),
        ("s", "P.", S1, C1 + 3, 6, 509),
        ("c", ".", C1 + 3, S1 + 6, 0, 502),
        ("c", "R.", C1 + 3, S1 + 6, 0, 502),
    ]);
    assert_eq!(causes(80, &segs), ["abort"]);
    // A closed port.
    let segs = [("c", "S", C_ISN, 0, 0, 64240), ("s", "R.", 0, C1, 0, 0)];
    assert_eq!(causes(80, &segs), ["no-socket"]);
    // A late segment after the server closed: its FIN went out, then the client's data.
    let segs = with(&[
        ("s", "F.", S1, C1, 0, 509),
        ("c", "P.", C1, S1 + 1, 5, 502),
        ("s", "R", S1 + 1, 0, 0, 0),
    ]);
    assert_eq!(causes(80, &segs), ["no-socket"]);
    // After both FINs: harmless.
    let segs = with(&[
        ("c", "F.", C1, S1, 0, 502),
        ("s", "F.", S1, C1 + 1, 0, 509),
        ("c", ".", C1 + 1, S1 + 1, 0, 502),
        ("c", "R", C1 + 1, 0, 0, 0),
    ]);
    assert_eq!(causes(80, &segs), ["after-fins"]);
    // A sequence number the server did not expect, answered by a challenge ACK, then the
    // exact one (RFC 5961 §3.2).
    let segs = with(&[
        ("c", "R", C1 + 1000, 0, 0, 0),
        ("s", ".", S1, C1, 0, 509),
        ("c", "R", C1, 0, 0, 0),
    ]);
    assert_eq!(causes(80, &segs), ["challenge-ack", "abort"]);
    let segs = with(&[("c", "R", C1 + 1000, 0, 0, 0)]);
    assert_eq!(causes(80, &segs), ["out-of-window"]);
    // In the JSON, with its evidence.
    let segs = [("c", "S", C_ISN, 0, 0, 64240), ("s", "R.", 0, C1, 0, 0)];
    let a = tcplab_trace::analyze(listing(80, &segs).as_bytes(), "z.txt").unwrap();
    let v = tcplab_trace::render::json::to_value(&a);
    let r = &v["connections"][0]["rst_cause"][0];
    assert_eq!(r["cause"], "no-socket");
    assert_eq!(r["from"], "server");
    assert!(r["evidence"].as_str().unwrap().contains("SYN"), "{r}");
}

#[test]
fn segments_after_zeeks_timeouts_are_its_later_rows() {
    // An unanswered SYN: Zeek gives up on it after 5 s (tcp_attempt_delay) and logs the
    // client's later data and FIN as a new connection, without a SYN (SH). tcplab keeps one
    // connection and reports Zeek's second row in `later` (zeek_later in the JSON).
    let text = "\
10:00:00.000000 IP 192.0.2.1.40000 > 198.51.100.2.22: Flags [S], seq 3000000000, win 64240, length 0
10:00:01.000000 IP 192.0.2.1.40000 > 198.51.100.2.22: Flags [.], ack 4000000001, win 502, length 0
10:00:02.000000 IP 192.0.2.1.40000 > 198.51.100.2.22: Flags [P.], seq 3000000001:3000000011, ack 4000000001, win 502, length 10
10:00:08.000000 IP 192.0.2.1.40000 > 198.51.100.2.22: Flags [P.], seq 3000000011:3000000021, ack 4000000001, win 502, length 10
10:00:08.100000 IP 192.0.2.1.40000 > 198.51.100.2.22: Flags [F.], seq 3000000021, ack 4000000001, win 502, length 0
";
    let a = tcplab_trace::analyze(text.as_bytes(), "half-duplex.txt").unwrap();
    assert_eq!(a.connections.len(), 1, "one connection for tcplab");
    let z = a.connections[0].zeek.clone().unwrap();
    assert_eq!((z.conn_state, z.history.as_str()), (ConnState::S0, "SAD"));
    assert_eq!(z.later.len(), 1, "{z:?}");
    let l = &z.later[0];
    assert_eq!(l.first_packet, 4);
    assert_eq!(
        (l.view.conn_state, l.view.history.as_str()),
        (ConnState::Sh, "DF")
    );
    assert!(l.view.orig_is_client);
    let v = tcplab_trace::render::json::to_value(&a);
    let rows = &v["connections"][0]["zeek_later"];
    assert_eq!(rows[0]["first_packet"], 4);
    assert_eq!(rows[0]["conn_state"], "SH");
    assert_eq!(rows[0]["history"], "DF");
    assert_eq!(rows[0]["zeek_orig"], "client");
    // A segment after tcplab itself retired the connection (an RST 6 s after a reset) is
    // counted in after_close, not made a connection, so no row: Zeek would log one (RSTRH).
    let text = "\
10:00:00.000000 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [S], seq 3000000000, win 64240, length 0
10:00:00.001000 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [S.], seq 4000000000, ack 3000000001, win 65160, length 0
10:00:00.002000 IP 192.0.2.1.40000 > 198.51.100.2.80: Flags [R.], seq 3000000001, ack 4000000001, win 502, length 0
10:00:06.000000 IP 198.51.100.2.80 > 192.0.2.1.40000: Flags [R], seq 4000000001, win 0, length 0
";
    let a = tcplab_trace::analyze(text.as_bytes(), "late-rst.txt").unwrap();
    assert_eq!(a.file.after_close, 1);
    assert!(a.connections[0].zeek.as_ref().unwrap().later.is_empty());
}
