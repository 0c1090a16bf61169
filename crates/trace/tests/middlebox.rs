//! An RST forged on the path (a firewall's, an IPS's, a load balancer's) in one endpoint's
//! name: its IP header does not match that endpoint's other segments (docs/teardown.md, "Why
//! each RST"). Captures built in code and tcpdump `-v` text, which prints TTL and id.

mod common;

use common::{ip_packets, pcap};
use tcplab_trace::{RstCause, TeardownKind};

/// Handshake, a request, the server's ACK of it, an RST in the server's name, and the
/// server's answer to the client's next segment (it was not the server that reset).
const STEPS: [(bool, &str, u32, u32, usize); 8] = [
    (true, "S", 1000, 0, 0),
    (false, "S.", 5000, 1001, 0),
    (true, ".", 1001, 5001, 0),
    (true, "P.", 1001, 5001, 3),
    (false, ".", 5001, 1004, 0),
    (false, "R.", 5001, 1004, 0),
    (true, "P.", 1004, 5001, 3),
    (false, ".", 5001, 1007, 0),
];

/// The connection's packets (the first `n` steps) with each server packet's TTL and IPv4 id
/// set, in order (the third is the RST's).
fn capture(v6: bool, n: usize, server: &[(u8, u16)]) -> Vec<u8> {
    let steps = &STEPS[..n];
    let mut ips = ip_packets(v6, steps);
    let mut next = server.iter();
    for (ip, step) in ips.iter_mut().zip(steps) {
        if step.0 {
            continue;
        }
        let &(ttl, id) = next.next().unwrap();
        if v6 {
            ip[7] = ttl;
        } else {
            ip[8] = ttl;
            ip[4..6].copy_from_slice(&id.to_be_bytes());
        }
    }
    pcap(101, &ips)
}

fn rst_cause(bytes: &[u8]) -> (RstCause, serde_json::Value) {
    let a = tcplab_trace::analyze(bytes, "built.pcap").expect("readable");
    let c = &a.connections[0];
    assert_eq!(c.teardown.kind, TeardownKind::Reset);
    assert_eq!(c.rst.len(), 1);
    let json = tcplab_trace::render::json::connection_value(c);
    (c.rst[0].cause, json["rst_cause"][0].clone())
}

#[test]
fn an_rst_with_another_ttl_is_a_middleboxs() {
    for v6 in [false, true] {
        let (cause, json) = rst_cause(&capture(v6, 6, &[(64, 100), (64, 101), (47, 102)]));
        assert_eq!(
            cause,
            RstCause::Middlebox {
                ttl: Some((47, 64)),
                ip_id: None
            },
            "v6={v6}"
        );
        assert_eq!(json["cause"], "middlebox");
        let evidence = json["evidence"].as_str().unwrap();
        assert!(
            evidence.contains("TTL is 47 where server's other segments had 64"),
            "{evidence}"
        );
    }
}

#[test]
fn an_rst_off_the_senders_ip_id_sequence_is_a_middleboxs() {
    // The server's own next segment continues its ids (102): the RST's 31337 was not its.
    let both = [(64, 100), (64, 101), (64, 31337), (64, 102)];
    let (cause, json) = rst_cause(&capture(false, 8, &both));
    assert_eq!(
        cause,
        RstCause::Middlebox {
            ttl: None,
            ip_id: Some((31337, 101))
        }
    );
    assert!(json["evidence"].as_str().unwrap().contains("IP id 31337"));
    // Nothing from the server after it: hosts number their replies without a socket apart
    // (a per-destination counter on older stacks), so the id alone says nothing.
    let (cause, _) = rst_cause(&capture(false, 6, &both[..3]));
    assert!(!matches!(cause, RstCause::Middlebox { .. }), "{cause:?}");
}

#[test]
fn the_hosts_own_rsts_are_not_flagged() {
    // In the sequence: the socket's own RST (SO_LINGER 0 goes out through the socket).
    let (cause, _) = rst_cause(&capture(false, 6, &[(64, 100), (64, 101), (64, 102)]));
    assert!(!matches!(cause, RstCause::Middlebox { .. }), "{cause:?}");
    // Id 0: a stateless reply without a socket (Linux's DF replies carry id 0).
    let (cause, _) = rst_cause(&capture(
        false,
        8,
        &[(64, 100), (64, 101), (64, 0), (64, 102)],
    ));
    assert!(!matches!(cause, RstCause::Middlebox { .. }), "{cause:?}");
    // Ids that follow no sequence (a random-id stack): the id says nothing.
    let (cause, _) = rst_cause(&capture(
        false,
        8,
        &[(64, 9000), (64, 17), (64, 31337), (64, 4)],
    ));
    assert!(!matches!(cause, RstCause::Middlebox { .. }), "{cause:?}");
}

#[test]
fn tcpdump_v_text_carries_ttl_and_id() {
    // `tcpdump -nn -v`: IPv4's header in parentheses, the addresses on the next line.
    let v4 = |ts: &str, ttl: u8, id: u16, line: &str| {
        format!(
            "{ts} IP (tos 0x0, ttl {ttl}, id {id}, offset 0, flags [DF], proto TCP (6), length 52)\n    {line}\n"
        )
    };
    let text = [
        v4("10:00:00.000000", 64, 500, "192.0.2.1.41334 > 198.51.100.2.80: Flags [S], cksum 0x1 (incorrect -> 0x2), seq 1000, win 64240, length 0"),
        v4("10:00:00.001000", 57, 0, "198.51.100.2.80 > 192.0.2.1.41334: Flags [S.], cksum 0x1 (correct), seq 5000, ack 1001, win 65160, length 0"),
        v4("10:00:00.002000", 64, 501, "192.0.2.1.41334 > 198.51.100.2.80: Flags [.], cksum 0x1 (correct), ack 5001, win 502, length 0"),
        v4("10:00:00.003000", 64, 502, "192.0.2.1.41334 > 198.51.100.2.80: Flags [P.], cksum 0x1 (correct), seq 1001:1004, ack 5001, win 502, length 3"),
        v4("10:00:00.004000", 57, 7001, "198.51.100.2.80 > 192.0.2.1.41334: Flags [.], cksum 0x1 (correct), ack 1004, win 509, length 0"),
        v4("10:00:00.005000", 121, 54321, "198.51.100.2.80 > 192.0.2.1.41334: Flags [R.], cksum 0x1 (correct), seq 5001, ack 1004, win 0, length 0"),
    ]
    .concat();
    let (cause, json) = rst_cause(text.as_bytes());
    assert_eq!(
        cause,
        RstCause::Middlebox {
            ttl: Some((121, 57)),
            ip_id: None
        }
    );
    assert_eq!(json["cause"], "middlebox");
    // IPv6's `-v` header stays on the packet's line: `hlim` is the hop limit.
    let v6 = |ts: &str, hlim: u8, line: &str| {
        format!("{ts} IP6 (flowlabel 0x1, hlim {hlim}, next-header TCP (6) payload length: 20) {line}\n")
    };
    let text = [
        v6("10:00:00.000000", 64, "2001:db8::1.41334 > 2001:db8::2.80: Flags [S], seq 1000, win 64240, length 0"),
        v6("10:00:00.001000", 64, "2001:db8::2.80 > 2001:db8::1.41334: Flags [S.], seq 5000, ack 1001, win 65160, length 0"),
        v6("10:00:00.002000", 64, "2001:db8::1.41334 > 2001:db8::2.80: Flags [.], ack 5001, win 502, length 0"),
        v6("10:00:00.003000", 30, "2001:db8::2.80 > 2001:db8::1.41334: Flags [R.], seq 5001, ack 1001, win 0, length 0"),
    ]
    .concat();
    let (cause, _) = rst_cause(text.as_bytes());
    assert_eq!(
        cause,
        RstCause::Middlebox {
            ttl: Some((30, 64)),
            ip_id: None
        }
    );
}
