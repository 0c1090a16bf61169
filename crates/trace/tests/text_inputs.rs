//! tcpdump text variants that must give the same verdicts as the plain listing.

use tcplab_trace::{Closer, TeardownKind};

fn seed(name: &str) -> String {
    let path = format!("{}/tests/data/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn any_interface_loopback_copies_are_counted_once() {
    // `tcpdump -i any` on loopback prints each packet twice: `lo Out`, then `lo In`.
    let mut text = String::new();
    for line in seed("three-way-close.txt").lines() {
        let (ts, rest) = line.split_once(' ').unwrap();
        text.push_str(&format!("{ts} lo    Out {rest}\n{ts} lo    In  {rest}\n"));
    }
    let a = tcplab_trace::analyze(text.as_bytes(), "any.txt").unwrap();
    assert_eq!(a.file.packets, 20);
    assert_eq!(a.file.duplicates, 10);
    let c = &a.connections[0];
    assert_eq!(c.packet_count, 10);
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    assert_eq!(c.teardown.fin_retransmits, 0);
    // Packet numbers stay the file's (as Wireshark numbers frames): the FIN is line 13.
    assert_eq!(c.teardown_packets, vec![13, 15, 17, 19]);
}

#[test]
fn two_connections_interleaved_in_one_listing() {
    // The four-way listing's packets interleaved with the three-way listing's (different
    // 4-tuples): each connection keeps its own verdict, in first-packet order.
    // Same hour as the four-way listing, so the capture clock does not jump by hours (a
    // jump that large would rightly retire a half-closed connection as stale).
    let a: Vec<String> = seed("three-way-close.txt")
        .replace("12:43:46", "20:01:49")
        .lines()
        .map(String::from)
        .collect();
    let b: Vec<String> = seed("four-way-close.txt")
        .lines()
        .map(String::from)
        .collect();
    let mut text = String::new();
    for i in 0..a.len().max(b.len()) {
        for l in [b.get(i), a.get(i)].into_iter().flatten() {
            text.push_str(l);
            text.push('\n');
        }
    }
    let an = tcplab_trace::analyze(text.as_bytes(), "mix.txt").unwrap();
    let kinds: Vec<_> = an.connections.iter().map(|c| c.teardown.kind).collect();
    assert_eq!(kinds, vec![TeardownKind::FourWay, TeardownKind::ThreeWay]);
}

/// A relative-numbered listing (`tcpdump -nn`, no `-S`) of a three-way close whose ISNs are
/// small (1000 and 5000), so every printed number is below 2^28.
const SMALL_ISN_RELATIVE: &str = "\
10:00:00.000000 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [S], seq 1000, win 65535, length 0
10:00:00.000100 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [S.], seq 5000, ack 1001, win 65535, length 0
10:00:00.000200 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [.], ack 1, win 512, length 0
10:00:00.000300 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [P.], seq 1:4, ack 1, win 512, length 3
10:00:00.000400 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [P.], seq 1:7, ack 4, win 512, length 6
10:00:00.000500 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [F.], seq 7, ack 4, win 512, length 0
10:00:00.000600 IP 192.0.2.1.41334 > 192.0.2.2.60000: Flags [F.], seq 4, ack 8, win 512, length 0
10:00:00.000700 IP 192.0.2.2.60000 > 192.0.2.1.41334: Flags [.], ack 5, win 512, length 0
";

#[test]
fn relative_numbers_with_small_isns() {
    let a = tcplab_trace::analyze(SMALL_ISN_RELATIVE.as_bytes(), "small.txt").unwrap();
    assert_eq!(a.connections.len(), 1);
    let c = &a.connections[0];
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // Numbers are absolute again: the server's FIN is at 5007, the client's at 1004.
    let fins: Vec<(u32, u32)> = c
        .packets
        .iter()
        .filter(|p| p.flags.fin())
        .map(|p| (p.seq.0, p.ack.0))
        .collect();
    assert_eq!(fins, vec![(5007, 1004), (1004, 5008)]);
    // The same close printed with `-S` stays three-way too.
    let abs = SMALL_ISN_RELATIVE
        .replace("seq 1:4, ack 1,", "seq 1001:1004, ack 5001,")
        .replace("ack 1, win", "ack 5001, win")
        .replace("seq 1:7, ack 4,", "seq 5001:5007, ack 1004,")
        .replace("seq 7, ack 4,", "seq 5007, ack 1004,")
        .replace("seq 4, ack 8,", "seq 1004, ack 5008,")
        .replace("ack 5, win", "ack 1005, win");
    let a = tcplab_trace::analyze(abs.as_bytes(), "small-S.txt").unwrap();
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
    assert!(a.connections[0].warnings.is_empty());
}

#[test]
fn ipv6_extension_headers_in_text() {
    // tcpdump prints the addresses, the extension header, then TCP with its own addresses.
    let text = "\
10:00:00.000000 IP6 2001:db8::1.41334 > 2001:db8::2.60000: Flags [S], seq 1000, win 65535, length 0
10:00:00.000100 IP6 2001:db8::2.60000 > 2001:db8::1.41334: Flags [S.], seq 5000, ack 1001, win 65535, length 0
10:00:00.000200 IP6 2001:db8::1.41334 > 2001:db8::2.60000: Flags [.], ack 5001, win 512, length 0
10:00:00.000500 IP6 2001:db8::2 > 2001:db8::1: DSTOPT 2001:db8::2.60000 > 2001:db8::1.41334: Flags [F.], seq 5001, ack 1001, win 512, length 0
10:00:00.000600 IP6 2001:db8::1 > 2001:db8::2: frag (0|20) 2001:db8::1.41334 > 2001:db8::2.60000: Flags [F.], seq 1001, ack 5002, win 512, length 0
10:00:00.000700 IP6 2001:db8::2 > 2001:db8::1: HBH (padn) DSTOPT (padn) 2001:db8::2.60000 > 2001:db8::1.41334: Flags [.], ack 1002, win 512, length 0
";
    let a = tcplab_trace::analyze(text.as_bytes(), "ext.txt").unwrap();
    assert_eq!(a.file.non_tcp, 0);
    let c = &a.connections[0];
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    assert!(c.teardown.final_ack);
}

#[test]
fn ipv6_extension_headers_as_tcpdump_4_99_prints_them() {
    // tcpdump 4.99: the addresses before the header name, only the ports after it. Every
    // packet of this close has one (handshake included), so nothing is left to guess roles.
    let text = "\
10:00:00.000000 IP6 2001:db8::1 > 2001:db8::2: DSTOPT 36951 > 80: Flags [S], seq 1000, win 65535, length 0
10:00:00.000100 IP6 2001:db8::2 > 2001:db8::1: HBH 80 > 36951: Flags [S.], seq 5000, ack 1001, win 65535, length 0
10:00:00.000200 IP6 2001:db8::1 > 2001:db8::2: DSTOPT 36951 > 80: Flags [.], ack 5001, win 512, length 0
10:00:00.000500 IP6 2001:db8::2 > 2001:db8::1: frag (0|20) 80 > 36951: Flags [F.], seq 5001, ack 1001, win 512, length 0
10:00:00.000600 IP6 2001:db8::1 > 2001:db8::2: HBH (padn) DSTOPT 36951 > 80: Flags [F.], seq 1001, ack 5002, win 512, length 0
10:00:00.000700 IP6 2001:db8::2 > 2001:db8::1: DSTOPT 80 > 36951: Flags [.], ack 1002, win 512, length 0
";
    let a = tcplab_trace::analyze(text.as_bytes(), "ext499.txt").unwrap();
    assert_eq!(a.file.non_tcp, 0);
    assert_eq!(a.connections.len(), 1);
    let c = &a.connections[0];
    assert_eq!(c.client.to_string(), "[2001:db8::1]:36951");
    assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
    assert_eq!(c.teardown.active_closer, Some(Closer::Server));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn pppoe_and_other_link_prefixes_in_text() {
    let plain = seed("three-way-close.txt");
    for prefix in [
        "PPPoE  [ses 0x1d] ",
        "PPPoE  [ses 0x5198] [length 124 (4 extra bytes)] ",
        "MPLS (label 16, tc 0, [S], ttl 64) ",
        "PBB I-SID 0x000100 ",
    ] {
        let text: String = plain
            .lines()
            .map(|l| {
                let (ts, rest) = l.split_once(' ').unwrap();
                format!("{ts} {prefix}{rest}\n")
            })
            .collect();
        let a = tcplab_trace::analyze(text.as_bytes(), "encap.txt")
            .unwrap_or_else(|e| panic!("{prefix}: {e}"));
        assert_eq!(a.connections.len(), 1, "{prefix}");
        assert_eq!(
            a.connections[0].teardown.kind,
            TeardownKind::ThreeWay,
            "{prefix}"
        );
    }
    // A GRE tunnel: the outer header, then the inner TCP packet on the same line.
    let text: String = plain
        .lines()
        .map(|l| {
            let (ts, rest) = l.split_once(' ').unwrap();
            format!("{ts} IP 198.51.100.1 > 198.51.100.2: GREv0, length 72: {rest}\n")
        })
        .collect();
    let a = tcplab_trace::analyze(text.as_bytes(), "gre.txt").unwrap();
    assert_eq!(a.connections[0].teardown.kind, TeardownKind::ThreeWay);
}

#[test]
fn absurd_timestamps_do_not_overflow() {
    let line =
        |t: &str| format!("{t} IP 192.0.2.1.1 > 192.0.2.2.2: Flags [S], seq 1, win 1, length 0\n");
    for text in [
        line("999999999999999999:00:00.000000") + &line("10:00:00.000000"),
        line("0000-01-01 00:00:00.000000") + &line("9999-12-31 23:59:59.999999"),
        line("9999-12-31 23:59:59.999999") + &line("0000-01-01 00:00:00.000000"),
        line("999999999.999999") + &line("0.000001"),
    ] {
        let a = tcplab_trace::analyze(text.as_bytes(), "t.txt").unwrap();
        for c in &a.connections {
            let mut out = Vec::new();
            let opts = tcplab_trace::render::TextOptions {
                ladder: true,
                ..Default::default()
            };
            tcplab_trace::render::human::render_connection(c, 0, &opts, &mut out).unwrap();
        }
    }
}

#[test]
fn vxlan_inner_lines_in_text() {
    // tcpdump prints a VXLAN packet on two lines: the outer UDP header with the VNI, then
    // the inner packet without a time stamp. The same inner tuple in two VNIs is two
    // connections.
    let plain = seed("three-way-close.txt");
    let mut text = String::new();
    for l in plain.lines() {
        let (ts, rest) = l.split_once(' ').unwrap();
        for (vni, sum) in [(42, ""), (43, "[no cksum] ")] {
            text.push_str(&format!(
                "{ts} IP 198.51.100.10.50000 > 198.51.100.20.4789: {sum}VXLAN, flags [I] (0x08), vni {vni}\n{rest}\n"
            ));
        }
    }
    text.push_str("12:43:47.000000 IP 198.51.100.10.50000 > 198.51.100.20.4789: VXLAN, flags [I] (0x08), vni 42\nIP 192.0.2.1 > 192.0.2.2: ICMP echo request, id 4, seq 1, length 64\n");
    let a = tcplab_trace::analyze(text.as_bytes(), "vxlan.txt").unwrap();
    assert_eq!(a.file.packets, 21);
    // Relative numbers inside the tunnel are recognised as such too.
    let mut rel = String::new();
    for l in SMALL_ISN_RELATIVE.lines() {
        let (ts, rest) = l.split_once(' ').unwrap();
        rel.push_str(&format!(
            "{ts} IP 198.51.100.10.50000 > 198.51.100.20.4789: VXLAN, flags [I] (0x08), vni 7\n{rest}\n"
        ));
    }
    let r = tcplab_trace::analyze(rel.as_bytes(), "rel.txt").unwrap();
    assert_eq!(r.connections[0].teardown.kind, TeardownKind::ThreeWay);
    assert!(
        r.connections[0].warnings.is_empty(),
        "{:?}",
        r.connections[0].warnings
    );
    assert_eq!(a.file.non_tcp, 1);
    assert_eq!(a.connections.len(), 2);
    for (c, vni) in a.connections.iter().zip([42, 43]) {
        assert_eq!(c.teardown.kind, TeardownKind::ThreeWay);
        assert_eq!(c.packet_count, 10);
        assert_eq!(c.encap[0].to_string(), format!("vxlan:vni={vni}"));
    }
}
